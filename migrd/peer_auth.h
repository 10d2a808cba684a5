/* SPDX-License-Identifier: MIT */
/*
 * Mutual authentication of two migrd over a fresh control channel (stream
 * headers already exchanged), with the cluster key K:
 *
 *   C -> S  HELLO {version, role=MIGRD, host=C, nonce=Nc}
 *   S -> C  HELLO {version, role=MIGRD, host=S, nonce=Ns,
 *                  mac=HMAC(K, "vmig-auth-1" 'S' Nc role host_S)}
 *   C -> S  HELLO {mac=HMAC(K, "vmig-auth-1" 'C' Ns role host_C)}
 *   S -> C  OK, or ERROR{ERR_AUTH} and the connection closes
 *
 * Nonces are 32 random bytes. The side byte keeps one side's MAC from being
 * replayed as the other's; each side proves the key on a nonce it did not
 * choose. Both then hold the session key
 *   HMAC(K, "vmig-session-1" Nc Ns host_C 0 host_S)
 * that seals every later record (session.h).
 */
#ifndef MIGRD_PEER_AUTH_H
#define MIGRD_PEER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "ctl.pb-c.h"

#define MIGRD_NONCE_LEN 32

struct migrd_key {
	const uint8_t *key;
	size_t len;
};

/* Client side, after the stream headers. On success 0 and the server's host
 * name in peer_host; -EACCES when the server failed to prove the key; other
 * negative errno for I/O or protocol errors. err says what happened. */
int migrd_auth_client(int fd, const struct migrd_key *key, const char *host,
		      char *peer_host, size_t peer_host_len,
		      uint8_t session_key[32], char *err, size_t err_len);

/* Server side, with the client's first HELLO already read. Same returns;
 * the refusal is sent to the client before returning -EACCES. */
int migrd_auth_server(int fd, const struct migrd_key *key, const char *host,
		      const Vmig__CtlMsg *hello, char *peer_host,
		      size_t peer_host_len, uint8_t session_key[32],
		      char *err, size_t err_len);

/* The MAC a side proves itself with (exported for the unit tests). */
void migrd_auth_mac(const struct migrd_key *key, char side,
		    const uint8_t nonce[MIGRD_NONCE_LEN], const char *host,
		    uint8_t mac[32]);

#endif
