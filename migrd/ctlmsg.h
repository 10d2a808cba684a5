/* SPDX-License-Identifier: MIT */
/*
 * Heap-built control messages: every part malloc'ed, so one vmig_ctl_free()
 * (protobuf-c's free_unpacked with the default allocator) releases a reply
 * whether migrd built it or received it.
 */
#ifndef MIGRD_CTLMSG_H
#define MIGRD_CTLMSG_H

#include <stdint.h>
#include <sys/types.h>

#include "msg.h"

Vmig__CtlMsg *migrd_msg_new(Vmig__CtlType type, uint32_t seq);
Vmig__CtlMsg *migrd_msg_error(uint32_t seq, Vmig__ErrClass cls, int err_no,
			      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Makes sure m->hello exists and carries pid (if not 0), guest and host (if
 * not NULL and not already set). Returns 0 or -ENOMEM. */
int migrd_msg_tag(Vmig__CtlMsg *m, pid_t pid, const char *guest,
		  const char *host);
/* Deep copy through pack/unpack (NULL on ENOMEM). */
Vmig__CtlMsg *migrd_msg_dup(const Vmig__CtlMsg *m);

#endif
