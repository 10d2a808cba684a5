// SPDX-License-Identifier: MIT
/* The shim's UD translation logic: remote QPs by (GID, QPN), and the
 * network header ahead of UD receives (RoCE v2 over IPv6 and IPv4). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "verbs/grh.h"
#include "verbs/rqmap.h"

static union ibv_gid gid4(const char *ip)
{
	union ibv_gid g;

	memset(&g, 0, sizeof(g));
	g.raw[10] = g.raw[11] = 0xff;
	inet_pton(AF_INET, ip, g.raw + 12);
	return g;
}

static union ibv_gid gid6(const char *ip)
{
	union ibv_gid g;

	inet_pton(AF_INET6, ip, g.raw);
	return g;
}

static void test_rqmap(void)
{
	union ibv_gid h1 = gid4("10.77.0.1"), h2 = gid4("10.77.0.2");
	union ibv_gid h3 = gid4("10.77.0.3"), g;
	struct vmig_rqmap m;
	uint32_t q;

	is_int(vmig_rqmap_init(&m), 0, "init");
	ok(vmig_rqmap_empty(&m) && !vmig_rqmap_to_phys(&m, &h1, 0x11, &g, &q),
	   "empty: every pair is the identity");
	/* the QP 0x11 of h1 was restored on h1 as 0x17 */
	is_int(vmig_rqmap_set(&m, &h1, 0x11, &h1, 0x17), 0, "learn h1 0x11");
	ok(vmig_rqmap_to_phys(&m, &h1, 0x11, &g, &q) && q == 0x17 &&
	   !memcmp(&g, &h1, 16), "h1/0x11 -> h1/0x17");
	ok(!vmig_rqmap_to_phys(&m, &h2, 0x11, &g, &q),
	   "h2/0x11 (same QPN, another peer) stays itself");
	ok(vmig_rqmap_to_virt(&m, &h1, 0x17, &g, &q) && q == 0x11,
	   "a datagram from h1/0x17 is from virtual 0x11");
	ok(!vmig_rqmap_to_virt(&m, &h2, 0x17, &g, &q),
	   "one from h2/0x17 is not");
	/* then it moved to h3 as 0x12 */
	is_int(vmig_rqmap_set(&m, &h1, 0x11, &h3, 0x12), 0, "learn the move");
	ok(vmig_rqmap_to_phys(&m, &h1, 0x11, &g, &q) && q == 0x12 &&
	   !memcmp(&g, &h3, 16), "h1/0x11 -> h3/0x12");
	ok(vmig_rqmap_to_virt(&m, &h3, 0x12, &g, &q) && q == 0x11 &&
	   !memcmp(&g, &h1, 16), "h3/0x12 -> h1/0x11");
	ok(!vmig_rqmap_to_virt(&m, &h1, 0x17, &g, &q),
	   "its former place names nobody");
	/* a native QP of h3 with the number a moved one had: itself */
	ok(!vmig_rqmap_to_virt(&m, &h3, 0x11, &g, &q), "h3/0x11 is itself");
	/* back home with its first number: the identity again */
	is_int(vmig_rqmap_set(&m, &h1, 0x11, &h1, 0x11), 0, "moved back");
	ok(!vmig_rqmap_to_phys(&m, &h1, 0x11, &g, &q) &&
	   !vmig_rqmap_to_virt(&m, &h3, 0x12, &g, &q), "identity both ways");
	vmig_rqmap_dispose(&m);
}

static uint16_t ip4_sum(const uint8_t *h)
{
	uint32_t s = 0;
	int i;

	for (i = 0; i < 20; i += 2)
		s += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void test_grh_ip4(void)
{
	union ibv_gid a = gid4("10.77.0.2"), b = gid4("10.77.0.1");
	union ibv_gid va = gid4("10.77.0.9"), vb = gid4("10.77.0.8"), s, d;
	uint8_t h[VMIG_GRH_LEN] = { 0 }, *ip = h + 20;
	uint16_t c;

	ip[0] = 0x45;
	ip[3] = 84;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, a.raw + 12, 4);
	memcpy(ip + 16, b.raw + 12, 4);
	c = (uint16_t)~ip4_sum(ip);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	is_int(ip4_sum(ip), 0xffff, "a valid IPv4 header");
	is_int(vmig_grh_parse(h, &s, &d), VMIG_GRH_IP4, "IPv4 layout seen");
	ok(!memcmp(&s, &a, 16) && !memcmp(&d, &b, 16),
	   "its addresses as IPv4-mapped GIDs");
	ok(!vmig_grh_rewrite(h, VMIG_GRH_IP4, &a, &b), "same GIDs: untouched");
	ok(vmig_grh_rewrite(h, VMIG_GRH_IP4, &va, &vb), "rewritten");
	ok(!memcmp(ip + 12, va.raw + 12, 4) && !memcmp(ip + 16, vb.raw + 12, 4),
	   "virtual addresses in the header");
	is_int(ip4_sum(ip), 0xffff, "checksum still valid");
	ok(vmig_grh_rewrite(h, VMIG_GRH_IP4, &a, &vb) && ip4_sum(ip) == 0xffff,
	   "and again, one address");
	ok(!vmig_grh_rewrite(h, VMIG_GRH_IP4, &(union ibv_gid){ .raw = { 0xfe, 0x80 } },
			     &vb), "a non-IPv4 GID does not fit: untouched");
	/* no checksum set: none made up */
	ip[10] = ip[11] = 0;
	ok(vmig_grh_rewrite(h, VMIG_GRH_IP4, &va, &vb) && !ip[10] && !ip[11],
	   "checksum 0 stays 0");
}

static void test_grh_ip6(void)
{
	union ibv_gid a = gid6("fe80::5054:ff:fe12:3401");
	union ibv_gid b = gid6("fe80::5054:ff:fe12:3402");
	union ibv_gid va = gid6("fe80::1"), vb = gid6("fe80::2"), s, d;
	uint8_t h[VMIG_GRH_LEN] = { 0x60, 0, 0, 0, 0, 64, 0x11, 64 };

	memcpy(h + 8, a.raw, 16);
	memcpy(h + 24, b.raw, 16);
	is_int(vmig_grh_parse(h, &s, &d), VMIG_GRH_IP6, "GRH seen");
	ok(!memcmp(&s, &a, 16) && !memcmp(&d, &b, 16), "its GIDs");
	ok(vmig_grh_rewrite(h, VMIG_GRH_IP6, &va, &vb) &&
	   !memcmp(h + 8, va.raw, 16) && !memcmp(h + 24, vb.raw, 16) &&
	   h[0] == 0x60 && h[5] == 64, "GIDs rewritten, the rest kept");
	memset(h, 0, sizeof(h));
	is_int(vmig_grh_parse(h, &s, &d), VMIG_GRH_NONE, "zeros: no header");
}

static void test_sge(void)
{
	uint8_t a[10], b[100], out[40], in[40];
	struct ibv_sge sge[2] = { { (uintptr_t)a, sizeof(a), 1 },
				  { (uintptr_t)b, sizeof(b), 2 } };
	int i;

	for (i = 0; i < 40; i++)
		in[i] = (uint8_t)i;
	is_int(vmig_sge_write(sge, 2, in, 40), 40, "40 bytes over two SGEs");
	ok(a[9] == 9 && b[0] == 10 && b[29] == 39, "split where the SGE ends");
	is_int(vmig_sge_read(sge, 2, out, 40), 40, "read back");
	ok(!memcmp(in, out, 40), "same bytes");
	is_int(vmig_sge_read(sge, 1, out, 40), 10, "one short SGE: 10 bytes");
}

int main(void)
{
	test_rqmap();
	test_grh_ip4();
	test_grh_ip6();
	test_sge();
	return tap_done();
}
