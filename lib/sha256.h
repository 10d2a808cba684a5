/* SPDX-License-Identifier: MIT */
/* SHA-256 (FIPS 180-4), the hash under the cluster HMAC (hmac.h). */
#ifndef VMIG_SHA256_H
#define VMIG_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define VMIG_SHA256_LEN 32
#define VMIG_SHA256_BLOCK 64

struct vmig_sha256 {
	uint32_t h[8];
	uint64_t total;		/* bytes hashed so far */
	uint8_t buf[VMIG_SHA256_BLOCK];
	size_t used;		/* bytes pending in buf */
};

void vmig_sha256_init(struct vmig_sha256 *s);
void vmig_sha256_update(struct vmig_sha256 *s, const void *data, size_t len);
/* Writes the digest and wipes the state. */
void vmig_sha256_final(struct vmig_sha256 *s, uint8_t out[VMIG_SHA256_LEN]);
void vmig_sha256(const void *data, size_t len, uint8_t out[VMIG_SHA256_LEN]);

#endif
