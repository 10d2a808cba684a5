// SPDX-License-Identifier: MIT
/* Remote QPs by (GID, QPN) (see rqmap.h). */
#include <errno.h>
#include <string.h>

#include "rqmap.h"

int vmig_rqmap_init(struct vmig_rqmap *m)
{
	memset(m->gid, 0, sizeof(m->gid));
	atomic_init(&m->ngids, 0);
	pthread_mutex_init(&m->lock, NULL);
	if (vmig_hmap_init(&m->v2p))
		return -ENOMEM;
	if (vmig_hmap_init(&m->p2v)) {
		vmig_hmap_dispose(&m->v2p);
		return -ENOMEM;
	}
	return 0;
}

void vmig_rqmap_dispose(struct vmig_rqmap *m)
{
	vmig_hmap_dispose(&m->v2p);
	vmig_hmap_dispose(&m->p2v);
	pthread_mutex_destroy(&m->lock);
}

static int gid_find(const struct vmig_rqmap *m, const union ibv_gid *g)
{
	uint32_t n = atomic_load_explicit(&((struct vmig_rqmap *)m)->ngids,
					  memory_order_acquire), i;

	for (i = 0; i < n; i++)
		if (!memcmp(&m->gid[i], g, sizeof(*g)))
			return (int)i;
	return -1;
}

/* Writer: the GID's index, appended (then published) if new. */
static int gid_add(struct vmig_rqmap *m, const union ibv_gid *g)
{
	int i = gid_find(m, g);
	uint32_t n;

	if (i >= 0)
		return i;
	n = atomic_load_explicit(&m->ngids, memory_order_relaxed);
	if (n == VMIG_RQ_GIDS)
		return -ENOSPC;
	m->gid[n] = *g;
	atomic_store_explicit(&m->ngids, n + 1, memory_order_release);
	return (int)n;
}

static inline uint32_t key(int gi, uint32_t qpn)
{
	return (uint32_t)gi << 24 | (qpn & VMIG_QPN_MASK);
}

int vmig_rqmap_set(struct vmig_rqmap *m, const union ibv_gid *vgid,
		   uint32_t vqpn, const union ibv_gid *pgid, uint32_t pqpn)
{
	int vi, pi, ret;
	uint32_t vk, pk, old, back;

	pthread_mutex_lock(&m->lock);
	vi = gid_add(m, vgid);
	pi = gid_add(m, pgid);
	if (vi < 0 || pi < 0) {
		ret = -ENOSPC;
		goto out;
	}
	vk = key(vi, vqpn);
	pk = key(pi, pqpn);
	/* where it was before names nobody now (unless another QP moved
	 * there since) */
	if (vmig_hmap_lookup(&m->v2p, vk, &old) && old != pk &&
	    vmig_hmap_lookup(&m->p2v, old, &back) && back == vk)
		vmig_hmap_set(&m->p2v, old, old);
	ret = vmig_hmap_set(&m->v2p, vk, pk);
	if (!ret)
		ret = vmig_hmap_set(&m->p2v, pk, vk);
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static bool lookup(const struct vmig_rqmap *m, const struct vmig_hmap *h,
		   const union ibv_gid *g, uint32_t qpn, union ibv_gid *og,
		   uint32_t *oqpn)
{
	uint32_t v;
	int gi;

	if (!vmig_hmap_count(h))
		return false;
	gi = gid_find(m, g);
	if (gi < 0 || !vmig_hmap_lookup(h, key(gi, qpn), &v) ||
	    v == key(gi, qpn))
		return false;
	if (og)
		*og = m->gid[v >> 24];
	*oqpn = v & VMIG_QPN_MASK;
	return true;
}

bool vmig_rqmap_to_phys(const struct vmig_rqmap *m, const union ibv_gid *vgid,
			uint32_t vqpn, union ibv_gid *pgid, uint32_t *pqpn)
{
	return lookup(m, &m->v2p, vgid, vqpn, pgid, pqpn);
}

bool vmig_rqmap_to_virt(const struct vmig_rqmap *m, const union ibv_gid *pgid,
			uint32_t pqpn, union ibv_gid *vgid, uint32_t *vqpn)
{
	return lookup(m, &m->p2v, pgid, pqpn, vgid, vqpn);
}
