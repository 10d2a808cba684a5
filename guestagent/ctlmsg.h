/* SPDX-License-Identifier: MIT */
/*
 * The agent's messages are heap-built (lib/ctlmsg_heap.h), so
 * vmig_ctl_free() releases a message whether the agent built it or decoded
 * it, and a shim's decoded reply can be moved into an aggregated one.
 */
#ifndef GA_CTLMSG_H
#define GA_CTLMSG_H

#include "ctlmsg_heap.h"

/* Sends m (NULL: out of memory, -ENOMEM) and frees it. */
int ga_msg_send_free(int fd, Vmig__CtlMsg *m);

#endif
