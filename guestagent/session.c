// SPDX-License-Identifier: MIT
/* Serving one host connection (unix socket or a serial port's session). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX "agent: session: "
#include "ctlmsg.h"
#include "log.h"
#include "request.h"
#include "session.h"
#include "sock.h"

/* Bound on one record's bytes once they started coming, and on a header. */
#define IO_MS 10000

/* Only one host at a time: a second one is told so and dropped. */
static void refuse_extra(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	pr_warn("second host connection refused");
	vmig_sock_set_timeout(fd, 1000);
	if (!vmig_ctl_send_header(fd))
		ga_msg_send_free(fd, vmig_msg_error(0,
			VMIG__ERR_CLASS__ERR_BAD_STATE, EBUSY,
			"another host connection is active"));
	close(fd);
}

static Vmig__CtlMsg *hello_reply(const struct ga_agent *a, uint32_t seq)
{
	Vmig__CtlMsg *m = vmig_msg_new(VMIG__CTL_TYPE__CTL_HELLO, seq);
	Vmig__Hello *h;

	if (!m)
		return NULL;
	h = m->hello = malloc(sizeof(*h));
	if (!h)
		goto fail;
	vmig__hello__init(h);
	h->has_version = h->has_role = h->has_pid = 1;
	h->version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h->role = VMIG__ROLE__ROLE_AGENT;
	h->pid = (uint32_t)getpid();
	h->guest = strdup(a->guest);
	h->host = strdup(a->host);
	if (!h->guest || !h->host)
		goto fail;
	return m;
fail:
	vmig_ctl_free(m);
	return NULL;
}

/* The first message: HELLO from migrd or a tool, our version. */
static Vmig__CtlMsg *hello(const struct ga_agent *a, const Vmig__CtlMsg *m,
			   bool *done)
{
	const Vmig__Hello *h = m->hello;

	if (!m->has_type || m->type != VMIG__CTL_TYPE__CTL_HELLO || !h)
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "HELLO first");
	if (!h->has_version ||
	    h->version != VMIG__CTL_VERSION__CTL_VERSION_CURRENT)
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_VERSION, 0,
				      "protocol version %u, this agent speaks %d",
				      h->version,
				      VMIG__CTL_VERSION__CTL_VERSION_CURRENT);
	if (!h->has_role || (h->role != VMIG__ROLE__ROLE_MIGRD &&
			     h->role != VMIG__ROLE__ROLE_TOOL))
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "the host channel takes migrd or a tool, not role %d",
				      h->has_role ? (int)h->role : 0);
	*done = true;
	return hello_reply(a, m->seq);
}

void ga_session_serve(struct ga_agent *a, int fd)
{
	int lfd = ga_channel_extra_fd(&a->chan), ret;
	struct pollfd pfd[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = lfd, .events = POLLIN },
	};
	Vmig__CtlMsg *m;
	bool said_hello = false;

	vmig_sock_set_timeout(fd, IO_MS);
	ret = vmig_ctl_send_header(fd);
	if (!ret)
		ret = vmig_ctl_recv_header(fd);
	if (ret) {
		pr_warn("host sent no stream header: %s", strerror(-ret));
		ga_msg_send_free(fd, vmig_msg_error(0,
			VMIG__ERR_CLASS__ERR_BAD_REQUEST, -ret,
			"not a vmig control stream: %s", strerror(-ret)));
		return;
	}
	pr_info("host session open");
	for (;;) {
		ret = ga_wait(pfd, lfd >= 0 ? 2 : 1, -1);
		if (ret < 0)
			break;
		/* the host first: if it just hung up, a waiting connection
		 * is the next host, not a second one */
		if (!pfd[0].revents) {
			if (lfd >= 0 && (pfd[1].revents & POLLIN))
				refuse_extra(lfd);
			continue;
		}
		m = NULL;
		ret = vmig_ctl_recv(fd, &m);
		if (ret == 0)
			break;
		if (ret < 0) {
			int err = ret;

			pr_warn("bad record from the host: %s", strerror(-err));
			ret = ga_msg_send_free(fd, vmig_msg_error(0,
				VMIG__ERR_CLASS__ERR_BAD_REQUEST, -err,
				"bad record: %s", strerror(-err)));
			/* a payload that did not decode leaves the stream in
			 * step; anything else lost the framing */
			if (ret || err != -EBADMSG)
				break;
			continue;
		}
		pr_debug("%s seq %u", vmig_ctl_type_name(m->type), m->seq);
		if (!said_hello)
			ret = ga_msg_send_free(fd, hello(a, m, &said_hello));
		else
			ret = ga_msg_send_free(fd, ga_request(a, m));
		vmig_ctl_free(m);
		if (ret) {
			pr_warn("reply lost: %s", strerror(-ret));
			break;
		}
	}
	pr_info("host session closed");
}
