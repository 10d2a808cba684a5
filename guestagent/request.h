/* SPDX-License-Identifier: MIT */
/*
 * What a request from the host means inside the guest: which shims it
 * goes to (all, or those a FORWARD's dest_pid/dest_guest selects), how long
 * it may take, and what to undo when it fails halfway (a SUSPEND that
 * failed for one shim is ABORTed on the others).
 */
#ifndef GA_REQUEST_H
#define GA_REQUEST_H

#include "agent.h"
#include "msg.h"

/* The reply to m (heap; NULL only when out of memory). m is past HELLO. */
Vmig__CtlMsg *ga_request(struct ga_agent *a, const Vmig__CtlMsg *m);

#endif
