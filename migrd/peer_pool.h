/* SPDX-License-Identifier: MIT */
/*
 * Authenticated sessions with other migrd, kept open between requests.
 * A migration sends a handful of requests to each peer host in its
 * downtime (restore, reconnect, resume); opening a TCP connection and
 * proving the cluster key for each one costs round trips and two threads'
 * start-up per request. A session is taken by one caller at a time, given
 * back after a complete exchange, and dropped after any error, when the
 * other end has closed it, or after MIGRD_POOL_IDLE_MS unused (well inside
 * the serving side's idle bound, so it is never closed under a request).
 */
#ifndef MIGRD_PEER_POOL_H
#define MIGRD_PEER_POOL_H

#include <pthread.h>
#include <stdint.h>

#include "msg.h"
#include "peer_auth.h"
#include "session.h"

#define MIGRD_POOL_SLOTS 16
#define MIGRD_POOL_IDLE_MS 60000

struct migrd_pool_slot {
	char addr[64];
	uint16_t port;
	int64_t idle_since_us;
	struct migrd_sess sess;	/* fd < 0: the slot is free */
};

struct migrd_peer_pool {
	pthread_mutex_t lock;
	struct migrd_pool_slot slot[MIGRD_POOL_SLOTS];
	uint64_t opened, reused;	/* sessions, for the log and tests */
};

void migrd_pool_init(struct migrd_peer_pool *p);
/* Closes every idle session. */
void migrd_pool_drain(struct migrd_peer_pool *p);

/*
 * migrd_call_peer() through the pool: one request, one reply, on an idle
 * session with addr:port if there is a live one, else on a new one, kept
 * for the next caller if the exchange completed. Same returns and errors.
 * A request is never sent twice: a session found dead before sending is
 * replaced, one that fails during the exchange fails the call. req NULL (a
 * ping: authenticate only) always opens a new session.
 */
int migrd_pool_call(struct migrd_peer_pool *p, const char *addr,
		    uint16_t port, const char *host,
		    const struct migrd_key *key, const Vmig__CtlMsg *req,
		    int connect_timeout_ms, int timeout_ms,
		    Vmig__CtlMsg **reply, char *err, size_t err_len);

#endif
