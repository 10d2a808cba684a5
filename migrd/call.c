// SPDX-License-Identifier: MIT
/* migrd's outgoing exchanges: one request, one reply, bounded in time. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: call: "
#include "call.h"
#include "config.h"
#include "log.h"
#include "session.h"
#include "sock.h"

/* Socket timeouts turn a silent peer into EAGAIN; name it for the caller. */
static int norm(int ret)
{
	return ret == -EAGAIN || ret == -EWOULDBLOCK ? -ETIMEDOUT : ret;
}

static int recv_one(int fd, Vmig__CtlMsg **m)
{
	int ret = vmig_ctl_recv(fd, m);

	if (ret == 0)
		return -ECONNRESET;
	return ret < 0 ? norm(ret) : 0;
}

int migrd_call_shim(const char *path, const char *host,
		    const Vmig__CtlMsg *req, int timeout_ms,
		    Vmig__CtlMsg **reply, char *err, size_t err_len)
{
	Vmig__CtlMsg hello = VMIG__CTL_MSG__INIT, *in = NULL;
	Vmig__Hello h = VMIG__HELLO__INIT;
	const char *step = "connect";
	int fd, ret;

	fd = vmig_unix_connect(path);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	vmig_sock_set_timeout(fd, timeout_ms);
	hello.has_type = 1;
	hello.type = VMIG__CTL_TYPE__CTL_HELLO;
	hello.hello = &h;
	h.has_version = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.has_role = 1;
	h.role = VMIG__ROLE__ROLE_MIGRD;
	h.host = (char *)host;
	h.has_pid = 1;
	h.pid = (uint32_t)getpid();

	step = "handshake";
	ret = vmig_ctl_send_header(fd);
	if (!ret)
		ret = vmig_ctl_send(fd, &hello);
	if (!ret)
		ret = norm(vmig_ctl_recv_header(fd));
	if (!ret)
		ret = recv_one(fd, &in);
	if (ret)
		goto out;
	if (in->type != VMIG__CTL_TYPE__CTL_HELLO) {
		ret = -EPROTO;
		snprintf(err, err_len, "shim at %s answered HELLO with %s%s%s",
			 path, vmig_ctl_type_name(in->type),
			 in->error && in->error->desc ? ": " : "",
			 in->error && in->error->desc ? in->error->desc : "");
		vmig_ctl_free(in);
		close(fd);
		return ret;
	}
	vmig_ctl_free(in);
	in = NULL;

	step = "request";
	ret = vmig_ctl_send(fd, req);
	if (!ret)
		ret = recv_one(fd, &in);
	if (ret)
		goto out;
	*reply = in;
out:
	if (ret)
		snprintf(err, err_len, "shim at %s: %s: %s", path, step,
			 ret == -ETIMEDOUT ? "no answer in time" :
					     strerror(-ret));
	if (fd >= 0)
		close(fd);
	return ret;
}

int migrd_peer_open(struct migrd_sess *sess, const char *addr,
		    uint16_t port, const char *host,
		    const struct migrd_key *key, int connect_timeout_ms,
		    int timeout_ms, char *err, size_t err_len)
{
	char peer[MIGRD_NAME_MAX], why[256] = "";
	uint8_t skey[32];
	int fd, ret;

	migrd_sess_init(sess, -1);
	fd = vmig_tcp_connect(addr, port, connect_timeout_ms);
	if (fd < 0) {
		ret = norm(fd);
		snprintf(err, err_len, "cannot connect to migrd at %s:%u: %s",
			 addr, port,
			 ret == -ETIMEDOUT ? "no answer in time" :
					     strerror(-ret));
		return ret;
	}
	vmig_sock_set_timeout(fd, timeout_ms);
	ret = vmig_ctl_send_header(fd);
	if (!ret)
		ret = norm(vmig_ctl_recv_header(fd));
	if (ret) {
		snprintf(err, err_len, "migrd at %s:%u: handshake: %s", addr,
			 port, strerror(-ret));
		close(fd);
		return ret;
	}
	ret = migrd_auth_client(fd, key, host, peer, sizeof(peer), skey, why,
				sizeof(why));
	if (ret) {
		ret = norm(ret);
		snprintf(err, err_len, "migrd at %s:%u: authentication: %s",
			 addr, port,
			 ret == -ETIMEDOUT ? "no answer in time" : why);
		close(fd);
		return ret;
	}
	migrd_sess_init(sess, fd);
	migrd_sess_seal(sess, 'C', skey);
	explicit_bzero(skey, sizeof(skey));
	return 0;
}

int migrd_peer_request(struct migrd_sess *sess, const Vmig__CtlMsg *req,
		       Vmig__CtlMsg **reply, char *err, size_t err_len)
{
	Vmig__CtlMsg *in = NULL;
	int ret = migrd_sess_send(sess, req);

	if (!ret) {
		ret = migrd_sess_recv(sess, &in);
		ret = ret == 0 ? -ECONNRESET : ret < 0 ? norm(ret) : 0;
	}
	if (ret) {
		snprintf(err, err_len, "%s",
			 ret == -ETIMEDOUT ? "no answer in time" :
			 ret == -EBADMSG ? "a record failed its check (tampered with?)" :
					   strerror(-ret));
		return ret;
	}
	*reply = in;
	return 0;
}

int migrd_call_peer(const char *addr, uint16_t port, const char *host,
		    const struct migrd_key *key, const Vmig__CtlMsg *req,
		    int connect_timeout_ms, int timeout_ms,
		    Vmig__CtlMsg **reply, char *err, size_t err_len)
{
	struct migrd_sess sess;
	char why[256];
	int ret;

	ret = migrd_peer_open(&sess, addr, port, host, key, connect_timeout_ms,
			      timeout_ms, err, err_len);
	if (ret)
		return ret;
	if (req) {
		ret = migrd_peer_request(&sess, req, reply, why, sizeof(why));
		if (ret)
			snprintf(err, err_len, "migrd at %s:%u: %s", addr,
				 port, why);
	}
	migrd_sess_close(&sess);
	return ret;
}
