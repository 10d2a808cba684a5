/* SPDX-License-Identifier: MIT */
/*
 * A control channel after its handshake. Between two migrd the records are
 * sealed: each carries HMAC-SHA256(session key, direction || counter ||
 * message), the session key derived from both nonces of the
 * authentication (peer_auth.h). A record that was changed, dropped,
 * replayed or reflected fails the check and ends the session. Unix
 * channels (shims, tools on this host) stay plain.
 */
#ifndef MIGRD_SESSION_H
#define MIGRD_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

/* Record type of a sealed CtlMsg: 32-byte MAC, then the packed message. */
#define MIGRD_REC_SEALED 0x101

struct migrd_sess {
	int fd;
	bool sealed;
	char side;		/* 'C' or 'S': what this end sends as */
	uint8_t key[32];
	uint64_t tx, rx;	/* records sent, received */
};

void migrd_sess_init(struct migrd_sess *s, int fd);
void migrd_sess_seal(struct migrd_sess *s, char side, const uint8_t key[32]);
int migrd_sess_send(struct migrd_sess *s, const Vmig__CtlMsg *m);
/* 1 with *m, 0 at a clean end, negative errno; -EBADMSG when a sealed
 * record fails its check. */
int migrd_sess_recv(struct migrd_sess *s, Vmig__CtlMsg **m);
/* Closes the fd (if any) and wipes the key. */
void migrd_sess_close(struct migrd_sess *s);

#endif
