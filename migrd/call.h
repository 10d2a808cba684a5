/* SPDX-License-Identifier: MIT */
/*
 * Outgoing request/reply exchanges: to one shim over its control socket,
 * and to another host's migrd over TCP (authenticated). Each is bounded by
 * timeout_ms as a whole; err says what went wrong in words for the caller's
 * error reply.
 */
#ifndef MIGRD_CALL_H
#define MIGRD_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "peer_auth.h"
#include "session.h"

/* Returns 0 with *reply (free with vmig_ctl_free), or negative errno:
 * -ECONNREFUSED/-ENOENT: nobody listens; -ETIMEDOUT: no answer in time. */
int migrd_call_shim(const char *path, const char *host,
		    const Vmig__CtlMsg *req, int timeout_ms,
		    Vmig__CtlMsg **reply, char *err, size_t err_len);

/* A session with another migrd: connected, authenticated, its records
 * sealed (session.h), every exchange bounded by timeout_ms. 0 or -errno;
 * close it with migrd_sess_close(). */
int migrd_peer_open(struct migrd_sess *sess, const char *addr,
		    uint16_t port, const char *host,
		    const struct migrd_key *key, int connect_timeout_ms,
		    int timeout_ms, char *err, size_t err_len);
/* One request, one reply on a session. */
int migrd_peer_request(struct migrd_sess *sess, const Vmig__CtlMsg *req,
		       Vmig__CtlMsg **reply, char *err, size_t err_len);

/* -EACCES when authentication failed either way. req NULL: only
 * authenticate (a ping), *reply stays NULL. */
int migrd_call_peer(const char *addr, uint16_t port, const char *host,
		    const struct migrd_key *key, const Vmig__CtlMsg *req,
		    int connect_timeout_ms, int timeout_ms,
		    Vmig__CtlMsg **reply, char *err, size_t err_len);

#endif
