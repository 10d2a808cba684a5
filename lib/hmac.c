// SPDX-License-Identifier: MIT
/* HMAC-SHA256 (RFC 2104): keys longer than a block are hashed first. */
#include <string.h>

#include "hmac.h"

void vmig_hmac_init(struct vmig_hmac *h, const void *key, size_t key_len)
{
	uint8_t k[VMIG_SHA256_BLOCK] = { 0 }, ikey[VMIG_SHA256_BLOCK];
	int i;

	if (key_len > VMIG_SHA256_BLOCK)
		vmig_sha256(key, key_len, k);
	else if (key_len)
		memcpy(k, key, key_len);
	for (i = 0; i < VMIG_SHA256_BLOCK; i++) {
		ikey[i] = k[i] ^ 0x36;
		h->okey[i] = k[i] ^ 0x5c;
	}
	vmig_sha256_init(&h->inner);
	vmig_sha256_update(&h->inner, ikey, sizeof(ikey));
	explicit_bzero(k, sizeof(k));
	explicit_bzero(ikey, sizeof(ikey));
}

void vmig_hmac_update(struct vmig_hmac *h, const void *data, size_t len)
{
	vmig_sha256_update(&h->inner, data, len);
}

void vmig_hmac_final(struct vmig_hmac *h, uint8_t out[VMIG_HMAC_LEN])
{
	uint8_t ihash[VMIG_SHA256_LEN];
	struct vmig_sha256 outer;

	vmig_sha256_final(&h->inner, ihash);
	vmig_sha256_init(&outer);
	vmig_sha256_update(&outer, h->okey, sizeof(h->okey));
	vmig_sha256_update(&outer, ihash, sizeof(ihash));
	vmig_sha256_final(&outer, out);
	explicit_bzero(h, sizeof(*h));
	explicit_bzero(ihash, sizeof(ihash));
}

void vmig_hmac_sha256(const void *key, size_t key_len, const void *data,
		      size_t len, uint8_t out[VMIG_HMAC_LEN])
{
	struct vmig_hmac h;

	vmig_hmac_init(&h, key, key_len);
	vmig_hmac_update(&h, data, len);
	vmig_hmac_final(&h, out);
}

bool vmig_memeq_ct(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t diff = 0;
	size_t i;

	for (i = 0; i < len; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}
