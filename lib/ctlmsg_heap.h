/* SPDX-License-Identifier: MIT */
/*
 * Heap-built control messages: every part malloc'ed, so one vmig_ctl_free()
 * (protobuf-c's free_unpacked with the default allocator) releases a
 * message whether this program built it or received it (migrd, vmig-agent).
 */
#ifndef VMIG_CTLMSG_HEAP_H
#define VMIG_CTLMSG_HEAP_H

#include <stdint.h>
#include <sys/types.h>

#include "msg.h"

Vmig__CtlMsg *vmig_msg_new(Vmig__CtlType type, uint32_t seq);
Vmig__CtlMsg *vmig_msg_error(uint32_t seq, Vmig__ErrClass cls, int err_no,
			     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Makes sure m->hello exists and carries pid (if not 0), guest and host (if
 * not NULL and not already set). Returns 0 or -ENOMEM. */
int vmig_msg_tag(Vmig__CtlMsg *m, pid_t pid, const char *guest,
		 const char *host);
/* Deep copy through pack/unpack (NULL on ENOMEM). */
Vmig__CtlMsg *vmig_msg_dup(const Vmig__CtlMsg *m);

#endif
