// SPDX-License-Identifier: MIT
/* Serving control connections: HELLO, registration, FORWARD. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: ctl: "
#include "api_server.h"
#include "ctl_server.h"
#include "ctlmsg_heap.h"
#include "images.h"
#include "log.h"
#include "msg.h"
#include "relay.h"
#include "session.h"
#include "sock.h"

/* A peer gets this long for the handshake; registered shims then idle. */
#define HANDSHAKE_MS 10000

struct conn {
	struct migrd *d;
	int fd;
	struct migrd_sess sess;	/* sealed after a peer's authentication */
	bool tcp;
	char who[96];		/* for the log: address or pid */
	Vmig__Role role;
	pid_t pid;		/* a shim's pid, for skip_pid */
	char guest[MIGRD_NAME_MAX];
	int reg_id;		/* registry entry, 0 if none */
};

static void describe_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	struct ucred cred;

	if (c->tcp) {
		if (!getpeername(c->fd, (struct sockaddr *)&ss, &len)) {
			if (ss.ss_family == AF_INET)
				inet_ntop(AF_INET,
					  &((struct sockaddr_in *)&ss)->sin_addr,
					  addr, sizeof(addr));
			else if (ss.ss_family == AF_INET6)
				inet_ntop(AF_INET6,
					  &((struct sockaddr_in6 *)&ss)->sin6_addr,
					  addr, sizeof(addr));
		}
		snprintf(c->who, sizeof(c->who), "tcp %s", addr);
		return;
	}
	len = sizeof(cred);
	if (!getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		snprintf(c->who, sizeof(c->who), "unix pid %d", cred.pid);
	else
		snprintf(c->who, sizeof(c->who), "unix");
}

static pid_t peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return 0;
	return cred.pid;
}

static int send_and_free(struct conn *c, Vmig__CtlMsg *m)
{
	int ret;

	if (!m)
		return -ENOMEM;
	ret = migrd_sess_send(&c->sess, m);
	vmig_ctl_free(m);
	return ret;
}

static int send_hello(struct conn *c, uint32_t seq)
{
	Vmig__CtlMsg *m = vmig_msg_new(VMIG__CTL_TYPE__CTL_HELLO, seq);

	if (!m || vmig_msg_tag(m, getpid(), NULL, c->d->cfg.host)) {
		vmig_ctl_free(m);
		return -ENOMEM;
	}
	m->hello->has_version = 1;
	m->hello->version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	m->hello->has_role = 1;
	m->hello->role = VMIG__ROLE__ROLE_MIGRD;
	return send_and_free(c, m);
}

static int refuse(struct conn *c, uint32_t seq, Vmig__ErrClass cls,
		  const char *desc)
{
	pr_warn("%s refused: %s", c->who, desc);
	return send_and_free(c, vmig_msg_error(seq, cls, 0, "%s", desc));
}

/* A shim's HELLO: pid, guest and its control socket. */
static int register_shim(struct conn *c, const Vmig__CtlMsg *m)
{
	const Vmig__Hello *h = m->hello;
	struct migrd *d = c->d;
	char guest[MIGRD_NAME_MAX], path[MIGRD_PATH_MAX];
	int id;

	if (!h->has_pid || h->pid == 0 || h->pid > 0x3fffffff)
		return refuse(c, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			      "shim HELLO without a valid pid");
	if (h->guest && *h->guest) {
		if (!migrd_name_valid(h->guest))
			return refuse(c, m->seq,
				      VMIG__ERR_CLASS__ERR_BAD_REQUEST,
				      "bad guest name (1-63 of A-Z a-z 0-9 . _ -)");
		snprintf(guest, sizeof(guest), "%s", h->guest);
	} else {
		/* vmig-run without --guest: the process is its own guest */
		snprintf(guest, sizeof(guest), "pid-%u", h->pid);
	}
	if (h->ctl_path && *h->ctl_path) {
		if (h->ctl_path[0] != '/' ||
		    strlen(h->ctl_path) >= sizeof(path))
			return refuse(c, m->seq,
				      VMIG__ERR_CLASS__ERR_BAD_REQUEST,
				      "ctl_path must be an absolute socket path");
		snprintf(path, sizeof(path), "%s", h->ctl_path);
	} else if (snprintf(path, sizeof(path), "%s/shim-%u.sock",
			    d->cfg.run_dir, h->pid) >= (int)sizeof(path)) {
		return refuse(c, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			      "no ctl_path");
	}
	id = migrd_registry_add(&d->reg, (pid_t)h->pid, peer_pid(c->fd), guest,
				path);
	if (id < 0)
		return refuse(c, m->seq, VMIG__ERR_CLASS__ERR_GENERIC,
			      "registry full");
	c->reg_id = id;
	c->pid = (pid_t)h->pid;
	snprintf(c->who, sizeof(c->who), "shim %u (%s)", h->pid, guest);
	pr_info("registered shim pid %u guest %s at %s", h->pid, guest, path);
	snprintf(c->guest, sizeof(c->guest), "%s", guest);
	migrd_api_emit(d->api, "PROCESS_REGISTERED",
		       json_pack("{s:s, s:i, s:s}", "guest", guest, "pid",
				 (int)h->pid, "host", d->cfg.host));
	return send_hello(c, m->seq);
}

static int handshake(struct conn *c)
{
	struct migrd *d = c->d;
	Vmig__CtlMsg *m = NULL;
	char err[256], peer[MIGRD_NAME_MAX];
	uint8_t skey[32];
	int ret;

	vmig_sock_set_timeout(c->fd, HANDSHAKE_MS);
	ret = vmig_ctl_send_header(c->fd);
	if (!ret)
		ret = vmig_ctl_recv_header(c->fd);
	if (ret) {
		pr_warn("%s: bad stream header: %s", c->who, strerror(-ret));
		return ret;
	}
	ret = vmig_ctl_recv(c->fd, &m);
	if (ret <= 0) {
		pr_warn("%s: no HELLO: %s", c->who,
			ret ? strerror(-ret) : "connection closed");
		return ret ? ret : -ECONNRESET;
	}
	ret = -EPROTO;
	if (m->type != VMIG__CTL_TYPE__CTL_HELLO || !m->hello) {
		refuse(c, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
		       "the first message must be HELLO");
		goto out;
	}
	if (!m->hello->has_version ||
	    m->hello->version != VMIG__CTL_VERSION__CTL_VERSION_CURRENT) {
		snprintf(err, sizeof(err),
			 "protocol version %u not supported (this migrd speaks %d)",
			 m->hello->version,
			 VMIG__CTL_VERSION__CTL_VERSION_CURRENT);
		refuse(c, m->seq, VMIG__ERR_CLASS__ERR_BAD_VERSION, err);
		goto out;
	}
	c->role = m->hello->has_role ? m->hello->role : VMIG__ROLE__ROLE_NONE;
	if (c->tcp) {
		/* only other migrd come over TCP, and only with the key */
		ret = migrd_auth_server(c->fd, &d->key, d->cfg.host, m, peer,
					sizeof(peer), skey, err, sizeof(err));
		if (ret) {
			pr_warn("%s: refused: %s", c->who, err);
			goto out;
		}
		migrd_sess_seal(&c->sess, 'S', skey);
		explicit_bzero(skey, sizeof(skey));
		snprintf(c->who + strlen(c->who),
			 sizeof(c->who) - strlen(c->who), " (migrd %s)", peer);
		pr_info("%s authenticated", c->who);
		c->role = VMIG__ROLE__ROLE_MIGRD;
		goto out;
	}
	switch (c->role) {
	case VMIG__ROLE__ROLE_SHIM:
		ret = register_shim(c, m);
		if (!ret && !c->reg_id)
			ret = -EPROTO;	/* refused */
		break;
	case VMIG__ROLE__ROLE_TOOL:
	case VMIG__ROLE__ROLE_AGENT:
		ret = send_hello(c, m->seq);
		break;
	case VMIG__ROLE__ROLE_MIGRD:
		refuse(c, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
		       "migrd peers connect over TCP");
		break;
	case VMIG__ROLE__ROLE_NONE:
	case _VMIG__ROLE_IS_INT_SIZE:
	default:
		refuse(c, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
		       "HELLO without a known role");
		break;
	}
out:
	vmig_ctl_free(m);
	return ret;
}

static Vmig__CtlMsg *handle(struct conn *c, const Vmig__CtlMsg *m)
{
	switch (m->has_type ? m->type : VMIG__CTL_TYPE__CTL_NONE) {
	case VMIG__CTL_TYPE__CTL_FORWARD:
		return migrd_relay_forward(c->d, m,
					   c->role == VMIG__ROLE__ROLE_MIGRD,
					   c->pid);
	case VMIG__CTL_TYPE__CTL_HELLO:
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_STATE,
				      0, "HELLO already done");
	case VMIG__CTL_TYPE__CTL_MIG_PREPARE:
	case VMIG__CTL_TYPE__CTL_MIG_FILE:
	case VMIG__CTL_TYPE__CTL_MIG_RESTORE:
	case VMIG__CTL_TYPE__CTL_MIG_ABORT:
	case VMIG__CTL_TYPE__CTL_MIG_MOVED:
		/* only an authenticated migrd moves guests here */
		if (c->role != VMIG__ROLE__ROLE_MIGRD)
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_BAD_REQUEST,
					      0, "%s comes from another migrd only",
					      vmig_ctl_type_name(m->type));
		return migrd_incoming_handle(c->d, m);
	case VMIG__CTL_TYPE__CTL_NONE:
	case VMIG__CTL_TYPE__CTL_ERROR:
	case VMIG__CTL_TYPE__CTL_OK:
	case VMIG__CTL_TYPE__CTL_STATE:
	case VMIG__CTL_TYPE__CTL_SUSPEND:
	case VMIG__CTL_TYPE__CTL_DRAINED:
	case VMIG__CTL_TYPE__CTL_CAPTURE:
	case VMIG__CTL_TYPE__CTL_TEARDOWN:
	case VMIG__CTL_TYPE__CTL_RESTORE:
	case VMIG__CTL_TYPE__CTL_RECONNECT_INFO:
	case VMIG__CTL_TYPE__CTL_RECONNECT:
	case VMIG__CTL_TYPE__CTL_RESUME:
	case VMIG__CTL_TYPE__CTL_ABORT:
	case _VMIG__CTL_TYPE_IS_INT_SIZE:
	default:
		break;
	}
	return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
			      "migrd takes FORWARD requests, not %s (wrap it in FORWARD without a destination for this host's shims)",
			      vmig_ctl_type_name(m->type));
}

static void *conn_run(void *arg)
{
	struct conn *c = arg;
	Vmig__CtlMsg *m;
	int ret;

	describe_peer(c);
	if (handshake(c))
		goto out;
	/* registered shims stay connected while idle; others get a bound */
	vmig_sock_set_timeout(c->fd, c->reg_id ? 0 : 10 * 60 * 1000);
	for (;;) {
		m = NULL;
		ret = migrd_sess_recv(&c->sess, &m);
		if (ret <= 0) {
			if (ret && ret != -ECONNRESET)
				pr_warn("%s: %s", c->who, strerror(-ret));
			if (ret == -EBADMSG || ret == -EMSGSIZE)
				send_and_free(c, vmig_msg_error(0,
					VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
					"undecodable record: %s",
					strerror(-ret)));
			break;
		}
		pr_debug("%s: %s seq %u", c->who, vmig_ctl_type_name(m->type),
			 m->seq);
		ret = send_and_free(c, handle(c, m));
		vmig_ctl_free(m);
		if (ret)
			break;
	}
out:
	if (c->reg_id) {
		migrd_registry_remove(&c->d->reg, c->reg_id);
		pr_info("%s: unregistered", c->who);
		migrd_api_emit(c->d->api, "PROCESS_GONE",
			       json_pack("{s:s, s:i, s:s}", "guest", c->guest,
					 "pid", (int)c->pid, "host",
					 c->d->cfg.host));
	}
	migrd_sess_close(&c->sess);
	free(c);
	return NULL;
}

int migrd_ctl_serve(struct migrd *d, int fd, bool tcp)
{
	pthread_attr_t attr;
	pthread_t th;
	struct conn *c;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->d = d;
	c->fd = fd;
	c->tcp = tcp;
	migrd_sess_init(&c->sess, fd);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&th, &attr, conn_run, c);
	pthread_attr_destroy(&attr);
	if (ret) {
		close(fd);
		free(c);
	}
	return ret;
}
