/* SPDX-License-Identifier: MIT */
/*
 * Remote QPs that moved, named by the peer's identity. A virtual QPN is
 * unique in its own process only (fresh hosts number their first QPs
 * alike), so a remote QP is a (GID, QPN) pair, mapped both ways:
 *   (virtual GID, virtual QPN) -> (physical GID, physical QPN): sends;
 *   (physical GID, physical QPN) -> (virtual GID, virtual QPN): receives.
 * GIDs go into an append-only table whose entries never change once
 * published, and a pair becomes the 32-bit key index << 24 | QPN of two
 * handle maps (hmap.h): readers take no lock, an absent pair is the
 * identity, and with nothing learned a lookup is one load and a branch.
 */
#ifndef VMIG_VERBS_RQMAP_H
#define VMIG_VERBS_RQMAP_H

#include <infiniband/verbs.h>
#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"

#define VMIG_RQ_GIDS 255	/* index 255 would not fit beside a QPN */
#define VMIG_QPN_MASK 0xffffffu

struct vmig_rqmap {
	_Atomic uint32_t ngids;
	union ibv_gid gid[VMIG_RQ_GIDS];
	struct vmig_hmap v2p, p2v;
	pthread_mutex_t lock;		/* writers */
};

int vmig_rqmap_init(struct vmig_rqmap *m);
void vmig_rqmap_dispose(struct vmig_rqmap *m);
/* Learns that the remote QP (vgid, vqpn) is now (pgid, pqpn); its former
 * physical pair maps to itself again. -ENOSPC: GID table full. */
int vmig_rqmap_set(struct vmig_rqmap *m, const union ibv_gid *vgid,
		   uint32_t vqpn, const union ibv_gid *pgid, uint32_t pqpn);
/* false: nothing learned for the pair (it is the identity). pgid/vgid may
 * be NULL. */
bool vmig_rqmap_to_phys(const struct vmig_rqmap *m, const union ibv_gid *vgid,
			uint32_t vqpn, union ibv_gid *pgid, uint32_t *pqpn);
bool vmig_rqmap_to_virt(const struct vmig_rqmap *m, const union ibv_gid *pgid,
			uint32_t pqpn, union ibv_gid *vgid, uint32_t *vqpn);

static inline bool vmig_rqmap_empty(const struct vmig_rqmap *m)
{
	return !vmig_hmap_count(&m->v2p) && !vmig_hmap_count(&m->p2v);
}

#endif
