/* SPDX-License-Identifier: MIT */
/*
 * The 40 bytes the HCA writes ahead of every UD receive: a GRH (IB, RoCE
 * v1 and RoCE v2 over IPv6: IP version 6 in the first nibble, source GID
 * at 8, destination GID at 24), or for RoCE v2 over IPv4 20 bytes of zero
 * and then the IPv4 header as it came off the wire (rxe copies ip_hdr(),
 * checksum included; mlx5 writes the same layout). They hold physical
 * GIDs: the shim rewrites them to virtual ones.
 */
#ifndef VMIG_VERBS_GRH_H
#define VMIG_VERBS_GRH_H

#include <infiniband/verbs.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMIG_GRH_LEN 40

enum vmig_grh_kind {
	VMIG_GRH_NONE,		/* neither layout: leave it alone */
	VMIG_GRH_IP6,		/* a GRH / IPv6 header */
	VMIG_GRH_IP4,		/* 20 bytes of zero, an IPv4 header */
};

/* The sender's and receiver's GIDs (IPv4: as IPv4-mapped GIDs). */
enum vmig_grh_kind vmig_grh_parse(const uint8_t *h, union ibv_gid *sgid,
				  union ibv_gid *dgid);
/* Writes sgid and dgid back into h; for IPv4 only IPv4-mapped GIDs fit,
 * and a checksum that was set is updated. true if a byte changed. */
bool vmig_grh_rewrite(uint8_t *h, enum vmig_grh_kind k,
		      const union ibv_gid *sgid, const union ibv_gid *dgid);
/* Copies the first len bytes of a scattered buffer out or in; returns
 * how many the SGEs held. */
size_t vmig_sge_read(const struct ibv_sge *sge, uint32_t n, void *dst,
		     size_t len);
size_t vmig_sge_write(const struct ibv_sge *sge, uint32_t n, const void *src,
		      size_t len);

#endif
