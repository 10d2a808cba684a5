/* SPDX-License-Identifier: MIT */
/*
 * Heap-built control messages: every part malloc'ed, so vmig_ctl_free()
 * releases a message whether the agent built it or decoded it, and a shim's
 * decoded reply can be moved into an aggregated one.
 */
#ifndef GA_CTLMSG_H
#define GA_CTLMSG_H

#include <stdint.h>
#include <sys/types.h>

#include "msg.h"

Vmig__CtlMsg *ga_msg_new(Vmig__CtlType type, uint32_t seq);
Vmig__CtlMsg *ga_msg_error(uint32_t seq, Vmig__ErrClass cls, int err_no,
			   const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Makes sure m->hello exists and names the process the reply came from. */
int ga_msg_tag(Vmig__CtlMsg *m, pid_t pid, const char *guest);
/* Sends m (NULL: out of memory, -ENOMEM) and frees it. */
int ga_msg_send_free(int fd, Vmig__CtlMsg *m);

#endif
