// SPDX-License-Identifier: MIT
/*
 * rdma_stress: the TCP side channel (connection info, options, reports).
 *
 * Every message is: magic (4 bytes), body length (4), body; integers in
 * network byte order.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "rdma_stress.h"

#define CHAN_OPTS	0x564d5331u	/* "VMS1" */
#define CHAN_INFO	0x564d5332u
#define CHAN_REPORT	0x564d5333u
#define CHAN_MAX	8192

struct wbuf {
	uint8_t b[CHAN_MAX];
	size_t n;
};

struct rbuf {
	const uint8_t *b;
	size_t n;
	size_t off;
	bool bad;
};

static void put(struct wbuf *w, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		w->b[w->n++] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static void put_raw(struct wbuf *w, const void *p, size_t len)
{
	memcpy(w->b + w->n, p, len);
	w->n += len;
}

static uint64_t get(struct rbuf *r, unsigned int bytes)
{
	uint64_t v = 0;

	if (r->off + bytes > r->n) {
		r->bad = true;
		return 0;
	}
	for (unsigned int i = 0; i < bytes; i++)
		v = (v << 8) | r->b[r->off++];
	return v;
}

static void get_raw(struct rbuf *r, void *p, size_t len)
{
	if (r->off + len > r->n) {
		r->bad = true;
		memset(p, 0, len);
		return;
	}
	memcpy(p, r->b + r->off, len);
	r->off += len;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			return -1;
		}
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_msg(int fd, uint32_t magic, const struct wbuf *w)
{
	uint8_t h[8];

	for (int i = 0; i < 4; i++) {
		h[i] = (uint8_t)(magic >> (24 - 8 * i));
		h[4 + i] = (uint8_t)(w->n >> (24 - 8 * i));
	}
	if (write_all(fd, h, sizeof(h)) || write_all(fd, w->b, w->n)) {
		stress_perr("side channel send", errno);
		return -1;
	}
	return 0;
}

static int recv_msg(int fd, uint32_t magic, uint8_t *body, struct rbuf *r)
{
	uint8_t h[8];
	uint32_t m = 0, len = 0;

	if (read_all(fd, h, sizeof(h))) {
		stress_perr("side channel receive", errno);
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		m = (m << 8) | h[i];
		len = (len << 8) | h[4 + i];
	}
	if (m != magic || len > CHAN_MAX) {
		stress_err("side channel: unexpected message (magic 0x%08x, "
			   "%u bytes; expected magic 0x%08x): is the peer an "
			   "rdma_stress of the same version?", m, len, magic);
		return -1;
	}
	if (read_all(fd, body, len)) {
		stress_perr("side channel receive", errno);
		return -1;
	}
	*r = (struct rbuf){ .b = body, .n = len };
	return 0;
}

static int chan_tune(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) {
		stress_perr("setsockopt(TCP_NODELAY)", errno);
		return -1;
	}
	return 0;
}

int stress_chan_set_timeout(int fd, unsigned int timeout_s)
{
	struct timeval tv = { .tv_sec = timeout_s };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		stress_perr("setsockopt(SO_RCVTIMEO)", errno);
		return -1;
	}
	return 0;
}

int stress_chan_listen(const char *port, unsigned int timeout_s)
{
	struct addrinfo hints = {
		.ai_flags = AI_PASSIVE,
		.ai_family = AF_INET6,
		.ai_socktype = SOCK_STREAM,
	};
	struct addrinfo *res = NULL;
	int lfd = -1, fd = -1, one = 1, zero = 0, ret;
	struct pollfd pfd;

	ret = getaddrinfo(NULL, port, &hints, &res);
	if (ret) {
		/* no IPv6 at all: IPv4 only */
		hints.ai_family = AF_INET;
		ret = getaddrinfo(NULL, port, &hints, &res);
	}
	if (ret) {
		stress_err("getaddrinfo(port %s): %s", port, gai_strerror(ret));
		return -1;
	}
	lfd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
		     res->ai_protocol);
	if (lfd < 0 && res->ai_family == AF_INET6) {
		freeaddrinfo(res);
		res = NULL;
		hints.ai_family = AF_INET;
		ret = getaddrinfo(NULL, port, &hints, &res);
		if (ret) {
			stress_err("getaddrinfo(port %s): %s", port,
				   gai_strerror(ret));
			return -1;
		}
		lfd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
			     res->ai_protocol);
	}
	if (lfd < 0) {
		stress_perr("socket", errno);
		goto out;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(lfd, res->ai_addr, res->ai_addrlen)) {
		fprintf(stderr, "rdma_stress: bind(port %s): %s\n", port,
			strerror(errno));
		goto out;
	}
	if (listen(lfd, 1)) {
		stress_perr("listen", errno);
		goto out;
	}
	pfd = (struct pollfd){ .fd = lfd, .events = POLLIN };
	do {
		ret = poll(&pfd, 1, (int)timeout_s * 1000);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		stress_perr("poll", errno);
		goto out;
	}
	if (ret == 0) {
		stress_err("no client connected within %u s", timeout_s);
		goto out;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		stress_perr("accept", errno);
		goto out;
	}
	if (chan_tune(fd)) {
		close(fd);
		fd = -1;
	}
out:
	if (lfd >= 0)
		close(lfd);
	freeaddrinfo(res);
	return fd;
}

int stress_chan_connect(const char *host, const char *port,
			unsigned int timeout_s)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	double deadline = stress_now() + timeout_s;
	int last_err = 0;

	for (;;) {
		struct addrinfo *res = NULL;
		int ret = getaddrinfo(host, port, &hints, &res);

		if (ret == EAI_NONAME || ret == EAI_SERVICE || ret == EAI_FAIL) {
			stress_err("cannot resolve %s port %s: %s", host, port,
				   gai_strerror(ret));
			return -1;
		}
		for (struct addrinfo *a = ret ? NULL : res; a; a = a->ai_next) {
			int fd = socket(a->ai_family,
					a->ai_socktype | SOCK_CLOEXEC,
					a->ai_protocol);

			if (fd < 0) {
				last_err = errno;
				continue;
			}
			if (!connect(fd, a->ai_addr, a->ai_addrlen)) {
				freeaddrinfo(res);
				if (chan_tune(fd)) {
					close(fd);
					return -1;
				}
				return fd;
			}
			last_err = errno;
			close(fd);
		}
		if (res)
			freeaddrinfo(res);
		if (stress_now() >= deadline)
			break;
		usleep(200 * 1000);
	}
	stress_err("connect to %s port %s: %s (gave up after %u s)", host, port,
		   last_err ? strerror(last_err) : "name resolution failed",
		   timeout_s);
	return -1;
}

int stress_chan_send_opts(int fd, const struct stress_opts *o)
{
	struct wbuf w = { .n = 0 };

	put(&w, o->ops, 4);
	put(&w, o->size, 4);
	put(&w, o->depth, 4);
	put(&w, o->nqps, 4);
	put(&w, o->iters, 8);
	put(&w, o->secs, 4);
	put(&w, o->pause_ms, 4);
	put(&w, o->signal_every, 4);
	put(&w, o->close_chan, 1);
	return send_msg(fd, CHAN_OPTS, &w);
}

/* Takes the client's traffic options, checking them as the parser does. */
int stress_chan_recv_opts(int fd, struct stress_opts *o)
{
	uint8_t body[CHAN_MAX];
	struct rbuf r;
	struct stress_opts t = *o;

	if (recv_msg(fd, CHAN_OPTS, body, &r))
		return -1;
	t.ops = (uint32_t)get(&r, 4);
	t.size = (uint32_t)get(&r, 4);
	t.depth = (uint32_t)get(&r, 4);
	t.nqps = (uint32_t)get(&r, 4);
	t.iters = get(&r, 8);
	t.secs = (uint32_t)get(&r, 4);
	t.pause_ms = (uint32_t)get(&r, 4);
	t.signal_every = (uint32_t)get(&r, 4);
	t.close_chan = get(&r, 1) != 0;
	if (r.bad || !t.ops || (t.ops & ~(uint32_t)STRESS_OP_ALL) ||
	    t.size < STRESS_HDR_LEN || t.size > STRESS_MAX_SIZE ||
	    t.depth < 2 || t.depth > STRESS_MAX_DEPTH || !t.nqps ||
	    t.nqps > STRESS_MAX_QPS || (!t.iters && !t.secs) ||
	    !t.signal_every || t.signal_every > 1024) {
		stress_err("side channel: the client sent invalid options");
		return -1;
	}
	*o = t;
	return 0;
}

static void put_ep(struct wbuf *w, const struct stress_remote_ep *e)
{
	put(w, e->qpn, 4);
	put(w, e->psn, 4);
	put(w, e->rkey, 4);
	put(w, e->addr, 8);
}

static void get_ep(struct rbuf *r, struct stress_remote_ep *e)
{
	e->qpn = (uint32_t)get(r, 4);
	e->psn = (uint32_t)get(r, 4);
	e->rkey = (uint32_t)get(r, 4);
	e->addr = get(r, 8);
}

int stress_chan_send_info(int fd, const struct stress_info *in)
{
	struct wbuf w = { .n = 0 };

	put(&w, in->lid, 2);
	put_raw(&w, in->gid, 16);
	put(&w, in->mtu, 1);
	put(&w, in->rd_atomic, 1);
	put(&w, in->nqps, 4);
	put(&w, in->seed, 8);
	put_ep(&w, &in->ud);
	for (uint32_t i = 0; i < in->nqps; i++)
		put_ep(&w, &in->rc[i]);
	return send_msg(fd, CHAN_INFO, &w);
}

int stress_chan_recv_info(int fd, struct stress_info *in)
{
	uint8_t body[CHAN_MAX];
	struct rbuf r;

	if (recv_msg(fd, CHAN_INFO, body, &r))
		return -1;
	memset(in, 0, sizeof(*in));
	in->lid = (uint16_t)get(&r, 2);
	get_raw(&r, in->gid, 16);
	in->mtu = (uint8_t)get(&r, 1);
	in->rd_atomic = (uint8_t)get(&r, 1);
	in->nqps = (uint32_t)get(&r, 4);
	in->seed = get(&r, 8);
	get_ep(&r, &in->ud);
	if (in->nqps > STRESS_MAX_QPS)
		r.bad = true;
	for (uint32_t i = 0; i < in->nqps && !r.bad; i++)
		get_ep(&r, &in->rc[i]);
	if (r.bad || in->mtu < IBV_MTU_256 || in->mtu > IBV_MTU_4096) {
		stress_err("side channel: the peer sent invalid connection "
			   "info");
		return -1;
	}
	return 0;
}

int stress_chan_send_report(int fd, const struct stress_report *rep)
{
	struct wbuf w = { .n = 0 };

	put(&w, rep->aborted, 1);
	put(&w, rep->nqps, 4);
	put(&w, rep->ud_sent, 8);
	for (uint32_t i = 0; i < rep->nqps; i++) {
		put(&w, rep->rc_sent[i], 8);
		put(&w, rep->faa_word[i], 8);
		put(&w, rep->cas_word[i], 8);
	}
	return send_msg(fd, CHAN_REPORT, &w);
}

int stress_chan_recv_report(int fd, struct stress_report *rep)
{
	uint8_t body[CHAN_MAX];
	struct rbuf r;

	if (recv_msg(fd, CHAN_REPORT, body, &r))
		return -1;
	memset(rep, 0, sizeof(*rep));
	rep->aborted = (uint8_t)get(&r, 1);
	rep->nqps = (uint32_t)get(&r, 4);
	rep->ud_sent = get(&r, 8);
	if (rep->nqps > STRESS_MAX_QPS)
		r.bad = true;
	for (uint32_t i = 0; i < rep->nqps && !r.bad; i++) {
		rep->rc_sent[i] = get(&r, 8);
		rep->faa_word[i] = get(&r, 8);
		rep->cas_word[i] = get(&r, 8);
	}
	if (r.bad) {
		stress_err("side channel: the peer sent an invalid report");
		return -1;
	}
	return 0;
}

int stress_chan_send_byte(int fd, uint8_t b)
{
	if (write_all(fd, &b, 1)) {
		stress_perr("side channel send", errno);
		return -1;
	}
	return 0;
}

int stress_chan_recv_byte(int fd, uint8_t *b)
{
	if (read_all(fd, b, 1)) {
		stress_perr("side channel receive", errno);
		return -1;
	}
	return 0;
}

int stress_chan_send_u64(int fd, uint64_t v)
{
	struct wbuf w = { .n = 0 };

	put(&w, v, 8);
	if (write_all(fd, w.b, w.n)) {
		stress_perr("side channel send", errno);
		return -1;
	}
	return 0;
}

int stress_chan_recv_u64(int fd, uint64_t *v)
{
	uint8_t b[8];
	struct rbuf r = { .b = b, .n = sizeof(b) };

	if (read_all(fd, b, sizeof(b))) {
		stress_perr("side channel receive", errno);
		return -1;
	}
	*v = get(&r, 8);
	return 0;
}
