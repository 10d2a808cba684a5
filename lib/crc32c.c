// SPDX-License-Identifier: MIT
/* CRC-32C (Castagnoli), table driven: checks records of streams and images. */
#include <stddef.h>
#include <stdint.h>

#include "record.h"

static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t vmig_crc32c(uint32_t crc, const void *buf, size_t len)
{
	static int ready;
	const uint8_t *p = buf;

	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		crc_table_init(); /* idempotent: racing callers write the same */
		__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	}
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
