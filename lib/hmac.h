/* SPDX-License-Identifier: MIT */
/*
 * HMAC-SHA256 (RFC 2104) for the migrd <-> migrd challenge-response, and a
 * constant-time comparison so a MAC check leaks no timing.
 */
#ifndef VMIG_HMAC_H
#define VMIG_HMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define VMIG_HMAC_LEN VMIG_SHA256_LEN

struct vmig_hmac {
	struct vmig_sha256 inner;
	uint8_t okey[VMIG_SHA256_BLOCK];	/* key ^ opad */
};

void vmig_hmac_init(struct vmig_hmac *h, const void *key, size_t key_len);
void vmig_hmac_update(struct vmig_hmac *h, const void *data, size_t len);
/* Writes the MAC and wipes the state. */
void vmig_hmac_final(struct vmig_hmac *h, uint8_t out[VMIG_HMAC_LEN]);
void vmig_hmac_sha256(const void *key, size_t key_len, const void *data,
		      size_t len, uint8_t out[VMIG_HMAC_LEN]);

/* True when a and b hold the same len bytes; time depends on len only. */
bool vmig_memeq_ct(const void *a, const void *b, size_t len);

#endif
