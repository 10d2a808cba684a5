// SPDX-License-Identifier: MIT
/* Building heap control messages that vmig_ctl_free() can release. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"

Vmig__CtlMsg *ga_msg_new(Vmig__CtlType type, uint32_t seq)
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

Vmig__CtlMsg *ga_msg_error(uint32_t seq, Vmig__ErrClass cls, int err_no,
			   const char *fmt, ...)
{
	Vmig__CtlMsg *m = ga_msg_new(VMIG__CTL_TYPE__CTL_ERROR, seq);
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
	m->error->has_err_no = err_no != 0;
	m->error->err_no = err_no;
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

int ga_msg_tag(Vmig__CtlMsg *m, pid_t pid, const char *guest)
{
	Vmig__Hello *h = m->hello;

	if (!h) {
		h = malloc(sizeof(*h));
		if (!h)
			return -ENOMEM;
		vmig__hello__init(h);
		m->hello = h;
	}
	h->has_pid = 1;
	h->pid = (uint32_t)pid;
	if (guest && *guest && !h->guest) {
		h->guest = strdup(guest);
		if (!h->guest)
			return -ENOMEM;
	}
	return 0;
}

int ga_msg_send_free(int fd, Vmig__CtlMsg *m)
{
	int ret;

	if (!m)
		return -ENOMEM;
	ret = vmig_ctl_send(fd, m);
	vmig_ctl_free(m);
	return ret;
}
