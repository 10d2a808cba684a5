// SPDX-License-Identifier: MIT
/* Sessions with other migrd kept for the next request (peer_pool.h). */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "clock.h"
#include "log.h"
#include "peer_pool.h"
#include "sock.h"

void migrd_pool_init(struct migrd_peer_pool *p)
{
	int i;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	for (i = 0; i < MIGRD_POOL_SLOTS; i++)
		migrd_sess_init(&p->slot[i].sess, -1);
}

void migrd_pool_drain(struct migrd_peer_pool *p)
{
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MIGRD_POOL_SLOTS; i++)
		migrd_sess_close(&p->slot[i].sess);
	pthread_mutex_unlock(&p->lock);
}

/*
 * An idle session whose other end closed it (or sent something it was not
 * asked for) is readable: it must not carry a request.
 */
static bool still_open(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 0;
}

/* Moves a live idle session with addr:port into *out; closes stale ones. */
static bool take(struct migrd_peer_pool *p, const char *addr, uint16_t port,
		 struct migrd_sess *out)
{
	int64_t now = (int64_t)vmig_now_us();
	bool found = false;
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MIGRD_POOL_SLOTS; i++) {
		struct migrd_pool_slot *s = &p->slot[i];

		if (s->sess.fd < 0)
			continue;
		if (now - s->idle_since_us > MIGRD_POOL_IDLE_MS * 1000LL ||
		    !still_open(s->sess.fd)) {
			migrd_sess_close(&s->sess);
			continue;
		}
		if (found || s->port != port || strcmp(s->addr, addr))
			continue;
		*out = s->sess;
		migrd_sess_init(&s->sess, -1);
		p->reused++;
		found = true;
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

/* Keeps sess for the next caller, or closes it when every slot is busy. */
static void give_back(struct migrd_peer_pool *p, const char *addr,
		      uint16_t port, struct migrd_sess *sess)
{
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MIGRD_POOL_SLOTS; i++) {
		struct migrd_pool_slot *s = &p->slot[i];

		if (s->sess.fd >= 0)
			continue;
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		s->port = port;
		s->idle_since_us = (int64_t)vmig_now_us();
		s->sess = *sess;
		migrd_sess_init(sess, -1);
		break;
	}
	pthread_mutex_unlock(&p->lock);
	migrd_sess_close(sess);	/* no-op if it went into a slot */
}

int migrd_pool_call(struct migrd_peer_pool *p, const char *addr,
		    uint16_t port, const char *host,
		    const struct migrd_key *key, const Vmig__CtlMsg *req,
		    int connect_timeout_ms, int timeout_ms,
		    Vmig__CtlMsg **reply, char *err, size_t err_len)
{
	struct migrd_sess sess;
	int64_t t0 = (int64_t)vmig_now_us(), t1;
	bool reused;
	char why[256];
	int ret;

	/* a ping (no request) proves the key anew: never on an old session */
	if (!req || strlen(addr) >= sizeof(p->slot[0].addr))
		return migrd_call_peer(addr, port, host, key, req,
				       connect_timeout_ms, timeout_ms, reply,
				       err, err_len);
	reused = take(p, addr, port, &sess);
	if (reused) {
		vmig_sock_set_timeout(sess.fd, timeout_ms);
	} else {
		ret = migrd_peer_open(&sess, addr, port, host, key,
				      connect_timeout_ms, timeout_ms, err,
				      err_len);
		if (ret)
			return ret;
		pthread_mutex_lock(&p->lock);
		p->opened++;
		pthread_mutex_unlock(&p->lock);
	}
	t1 = (int64_t)vmig_now_us();
	ret = migrd_peer_request(&sess, req, reply, why, sizeof(why));
	pr_debug("peer %s:%u: %s on a %s session: open %lld us, exchange %lld us",
		 addr, port, vmig_ctl_type_name(req->type),
		 reused ? "kept" : "new", (long long)(t1 - t0),
		 (long long)((int64_t)vmig_now_us() - t1));
	if (ret) {
		snprintf(err, err_len, "migrd at %s:%u: %s", addr, port, why);
		migrd_sess_close(&sess);
		return ret;
	}
	give_back(p, addr, port, &sess);
	return 0;
}
