// SPDX-License-Identifier: MIT
/* Building heap control messages that vmig_ctl_free() can release. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlmsg_heap.h"

Vmig__CtlMsg *vmig_msg_new(Vmig__CtlType type, uint32_t seq)
{
	Vmig__CtlMsg *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	vmig__ctl_msg__init(m);
	m->has_type = 1;
	m->type = type;
	m->has_seq = 1;
	m->seq = seq;
	return m;
}

Vmig__CtlMsg *vmig_msg_error(uint32_t seq, Vmig__ErrClass cls, int err_no,
			     const char *fmt, ...)
{
	Vmig__CtlMsg *m = vmig_msg_new(VMIG__CTL_TYPE__CTL_ERROR, seq);
	char desc[1024];
	va_list ap;

	if (!m)
		return NULL;
	m->error = malloc(sizeof(*m->error));
	if (!m->error)
		goto fail;
	vmig__error__init(m->error);
	m->error->has_class_ = 1;
	m->error->class_ = cls;
	if (err_no) {
		m->error->has_err_no = 1;
		m->error->err_no = err_no;
	}
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	m->error->desc = strdup(desc);
	if (!m->error->desc)
		goto fail;
	return m;
fail:
	vmig_ctl_free(m);
	return NULL;
}

int vmig_msg_tag(Vmig__CtlMsg *m, pid_t pid, const char *guest,
		 const char *host)
{
	Vmig__Hello *h = m->hello;

	if (!h) {
		h = malloc(sizeof(*h));
		if (!h)
			return -ENOMEM;
		vmig__hello__init(h);
		m->hello = h;
	}
	if (pid > 0 && !h->has_pid) {
		h->has_pid = 1;
		h->pid = (uint32_t)pid;
	}
	if (guest && *guest && !h->guest) {
		h->guest = strdup(guest);
		if (!h->guest)
			return -ENOMEM;
	}
	if (host && !h->host) {
		h->host = strdup(host);
		if (!h->host)
			return -ENOMEM;
	}
	return 0;
}

Vmig__CtlMsg *vmig_msg_dup(const Vmig__CtlMsg *m)
{
	size_t len = vmig__ctl_msg__get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	Vmig__CtlMsg *copy;

	if (!buf)
		return NULL;
	vmig__ctl_msg__pack(m, buf);
	copy = vmig__ctl_msg__unpack(NULL, len, buf);
	free(buf);
	return copy;
}
