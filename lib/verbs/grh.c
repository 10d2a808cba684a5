// SPDX-License-Identifier: MIT
/* The network header ahead of UD receives (see grh.h). */
#include <string.h>

#include "grh.h"

#define IP4 20			/* where the IPv4 header starts */
#define IP4_CSUM (IP4 + 10)
#define IP4_SADDR (IP4 + 12)
#define IP4_DADDR (IP4 + 16)

static const uint8_t v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				       0xff, 0xff };

static bool zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static void v4_gid(union ibv_gid *g, const uint8_t *addr)
{
	memcpy(g->raw, v4_prefix, sizeof(v4_prefix));
	memcpy(g->raw + 12, addr, 4);
}

enum vmig_grh_kind vmig_grh_parse(const uint8_t *h, union ibv_gid *sgid,
				  union ibv_gid *dgid)
{
	if (h[0] >> 4 == 6) {
		memcpy(sgid->raw, h + 8, 16);
		memcpy(dgid->raw, h + 24, 16);
		return VMIG_GRH_IP6;
	}
	if (zero(h, IP4) && h[IP4] >> 4 == 4) {
		v4_gid(sgid, h + IP4_SADDR);
		v4_gid(dgid, h + IP4_DADDR);
		return VMIG_GRH_IP4;
	}
	return VMIG_GRH_NONE;
}

/* RFC 1624: HC' = ~(~HC + ~m + m'), over the 16-bit words that changed
 * (big-endian, as on the wire). */
static void csum_update(uint8_t *c, const uint8_t *old, const uint8_t *new,
			size_t len)
{
	uint32_t s = (uint16_t)~(c[0] << 8 | c[1]);
	size_t i;

	for (i = 0; i < len; i += 2) {
		s += (uint16_t)~(old[i] << 8 | old[i + 1]);
		s += (uint32_t)(new[i] << 8 | new[i + 1]);
	}
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	s = (uint16_t)~s;
	c[0] = (uint8_t)(s >> 8);
	c[1] = (uint8_t)s;
}

static bool put_v4(uint8_t *h, size_t off, const union ibv_gid *g)
{
	uint8_t old[4];

	if (memcmp(g->raw, v4_prefix, sizeof(v4_prefix)) ||
	    !memcmp(h + off, g->raw + 12, 4))
		return false;
	memcpy(old, h + off, 4);
	memcpy(h + off, g->raw + 12, 4);
	/* 0: no checksum was set (none to keep right) */
	if (h[IP4_CSUM] || h[IP4_CSUM + 1])
		csum_update(h + IP4_CSUM, old, h + off, 4);
	return true;
}

bool vmig_grh_rewrite(uint8_t *h, enum vmig_grh_kind k,
		      const union ibv_gid *sgid, const union ibv_gid *dgid)
{
	bool changed = false;

	switch (k) {
	case VMIG_GRH_IP6:
		changed = memcmp(h + 8, sgid->raw, 16) ||
			  memcmp(h + 24, dgid->raw, 16);
		memcpy(h + 8, sgid->raw, 16);
		memcpy(h + 24, dgid->raw, 16);
		break;
	case VMIG_GRH_IP4:
		changed = put_v4(h, IP4_SADDR, sgid);
		changed |= put_v4(h, IP4_DADDR, dgid);
		break;
	case VMIG_GRH_NONE:
		break;
	}
	return changed;
}

size_t vmig_sge_read(const struct ibv_sge *sge, uint32_t n, void *dst,
		     size_t len)
{
	uint8_t *d = dst;
	size_t done = 0;
	uint32_t i;

	for (i = 0; i < n && done < len; i++) {
		size_t c = sge[i].length < len - done ? sge[i].length :
							len - done;

		memcpy(d + done, (const void *)(uintptr_t)sge[i].addr, c);
		done += c;
	}
	return done;
}

size_t vmig_sge_write(const struct ibv_sge *sge, uint32_t n, const void *src,
		      size_t len)
{
	const uint8_t *s = src;
	size_t done = 0;
	uint32_t i;

	for (i = 0; i < n && done < len; i++) {
		size_t c = sge[i].length < len - done ? sge[i].length :
							len - done;

		memcpy((void *)(uintptr_t)sge[i].addr, s + done, c);
		done += c;
	}
	return done;
}
