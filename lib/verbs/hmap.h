/* SPDX-License-Identifier: MIT */
/*
 * Handle maps: virtual -> physical 32-bit handles (QPN, lkey, rkey).
 * Readers on the data path take no lock: open addressing, a key word
 * published with release after its value, tables never shrink and a grown
 * table keeps the old one alive until dispose. Writers serialize on a mutex.
 * An absent key maps to itself: before any migration every map is empty and
 * the translation is the identity.
 */
#ifndef VMIG_VERBS_HMAP_H
#define VMIG_VERBS_HMAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vmig_hmap_tab {
	struct vmig_hmap_tab *retired;	/* older table, freed at dispose */
	uint32_t mask;
	uint32_t used;
	_Atomic uint64_t *key;		/* 1 << 32 | virt, 0 = empty */
	_Atomic uint32_t *val;
};

struct vmig_hmap {
	_Atomic(struct vmig_hmap_tab *) tab;
	_Atomic uint32_t count;		/* entries whose phys != virt */
	pthread_mutex_t lock;
};

int vmig_hmap_init(struct vmig_hmap *m);
void vmig_hmap_dispose(struct vmig_hmap *m);
/* Sets virt -> phys (phys == virt makes the entry the identity again). */
int vmig_hmap_set(struct vmig_hmap *m, uint32_t virt, uint32_t phys);
bool vmig_hmap_lookup(const struct vmig_hmap *m, uint32_t virt, uint32_t *phys);
/* Calls fn for every non-identity entry (writers excluded meanwhile). */
void vmig_hmap_foreach(struct vmig_hmap *m,
		       void (*fn)(uint32_t virt, uint32_t phys, void *arg),
		       void *arg);
void vmig_hmap_clear(struct vmig_hmap *m);

static inline uint32_t vmig_hmap_get(const struct vmig_hmap *m, uint32_t virt)
{
	uint32_t phys;

	if (!atomic_load_explicit(&((struct vmig_hmap *)m)->count,
				  memory_order_relaxed))
		return virt;
	return vmig_hmap_lookup(m, virt, &phys) ? phys : virt;
}

static inline uint32_t vmig_hmap_count(const struct vmig_hmap *m)
{
	return atomic_load_explicit(&((struct vmig_hmap *)m)->count,
				    memory_order_relaxed);
}

#endif
