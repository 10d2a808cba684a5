/* SPDX-License-Identifier: MIT */
/*
 * One host session: stream header each way, HELLO (version checked, role
 * MIGRD or TOOL), then one reply per request, in order. Bad input is
 * answered with an ERROR and changes nothing; a stream that lost its
 * framing ends the session, and the agent waits for the next one.
 */
#ifndef GA_SESSION_H
#define GA_SESSION_H

#include "agent.h"

void ga_session_serve(struct ga_agent *a, int fd);

#endif
