// SPDX-License-Identifier: MIT
/*
 * rdma_stress: checksums, payload patterns and sequence checks.
 */
#include <time.h>

#include "rdma_stress.h"

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* CRC-32 (IEEE 802.3, as zlib's crc32()). Start with crc = 0. */
uint32_t stress_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!crc_table[1])
		crc_init();
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* Compute the checksum of a message whose header is filled in. */
void stress_msg_seal(void *buf)
{
	struct stress_hdr *h = buf;

	h->csum = 0;
	h->csum = stress_crc32(0, buf, h->len);
}

/* True if buf holds a whole, intact message of byte_len bytes. */
bool stress_msg_check(const void *buf, uint32_t byte_len)
{
	struct stress_hdr h;
	uint32_t crc;

	if (byte_len < STRESS_HDR_LEN)
		return false;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != STRESS_MAGIC || h.len != byte_len)
		return false;
	/* crc over the header with csum zero, then the payload */
	h.csum = 0;
	crc = stress_crc32(0, &h, sizeof(h));
	crc = stress_crc32(crc, (const uint8_t *)buf + sizeof(h),
			   byte_len - sizeof(h));
	return crc == ((const struct stress_hdr *)buf)->csum;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Fill len bytes with a pseudo-random pattern determined by (seed, n). */
void stress_fill(void *buf, size_t len, uint64_t seed, uint64_t n)
{
	uint64_t s = seed ^ (n * 0xd1b54a32d192ed03ull);
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = splitmix(&s);

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = splitmix(&s);

		memcpy(p, &v, len);
	}
}

/* The content of read slot 'slot' of RC endpoint 'qp' of a side. */
void stress_read_pattern(void *buf, size_t len, uint64_t seed,
			 unsigned int qp, uint32_t slot)
{
	stress_fill(buf, len, seed, ((uint64_t)qp << 32) | slot);
}

/*
 * Account one received sequence number. Returns 0 if it is the expected
 * one, 1 if it skipped ahead (reordered, or the ones between are lost),
 * -1 if it was already seen (duplicate).
 */
int stress_seq_accept(struct stress_flow *f, uint64_t seq)
{
	if (seq == f->rx_expect) {
		f->rx_expect++;
		return 0;
	}
	if (seq < f->rx_expect) {
		f->dup++;
		return -1;
	}
	f->reord++;
	f->rx_expect = seq + 1;
	return 1;
}

double stress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
