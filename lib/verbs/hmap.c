// SPDX-License-Identifier: MIT
/* Lock-free-reader handle maps (see hmap.h). */
#include <errno.h>
#include <stdlib.h>

#include "hmap.h"

#define HMAP_USED (1ull << 32)

static inline uint32_t hmap_hash(uint32_t v)
{
	v ^= v >> 16;
	v *= 0x7feb352du;
	v ^= v >> 15;
	return v;
}

static struct vmig_hmap_tab *tab_alloc(uint32_t size)
{
	struct vmig_hmap_tab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->mask = size - 1;
	t->key = calloc(size, sizeof(*t->key));
	t->val = calloc(size, sizeof(*t->val));
	if (!t->key || !t->val) {
		free(t->key);
		free(t->val);
		free(t);
		return NULL;
	}
	return t;
}

static void tab_free_chain(struct vmig_hmap_tab *t)
{
	while (t) {
		struct vmig_hmap_tab *next = t->retired;

		free(t->key);
		free(t->val);
		free(t);
		t = next;
	}
}

int vmig_hmap_init(struct vmig_hmap *m)
{
	struct vmig_hmap_tab *t = tab_alloc(16);

	if (!t)
		return -ENOMEM;
	atomic_init(&m->tab, t);
	atomic_init(&m->count, 0);
	pthread_mutex_init(&m->lock, NULL);
	return 0;
}

void vmig_hmap_dispose(struct vmig_hmap *m)
{
	tab_free_chain(atomic_load(&m->tab));
	atomic_store(&m->tab, NULL);
	pthread_mutex_destroy(&m->lock);
}

bool vmig_hmap_lookup(const struct vmig_hmap *m, uint32_t virt, uint32_t *phys)
{
	struct vmig_hmap_tab *t = atomic_load_explicit(
		&((struct vmig_hmap *)m)->tab, memory_order_acquire);
	uint32_t h = hmap_hash(virt) & t->mask;

	for (;;) {
		uint64_t k = atomic_load_explicit(&t->key[h],
						  memory_order_acquire);

		if (!k)
			return false;
		if ((uint32_t)k == virt) {
			*phys = atomic_load_explicit(&t->val[h],
						     memory_order_relaxed);
			return true;
		}
		h = (h + 1) & t->mask;
	}
}

/* Writer side, lock held: returns the slot of virt or the empty slot. */
static uint32_t tab_slot(struct vmig_hmap_tab *t, uint32_t virt)
{
	uint32_t h = hmap_hash(virt) & t->mask;

	for (;;) {
		uint64_t k = atomic_load_explicit(&t->key[h],
						  memory_order_relaxed);

		if (!k || (uint32_t)k == virt)
			return h;
		h = (h + 1) & t->mask;
	}
}

static void tab_put(struct vmig_hmap_tab *t, uint32_t virt, uint32_t phys)
{
	uint32_t h = tab_slot(t, virt);

	atomic_store_explicit(&t->val[h], phys, memory_order_relaxed);
	if (!atomic_load_explicit(&t->key[h], memory_order_relaxed)) {
		t->used++;
		atomic_store_explicit(&t->key[h], HMAP_USED | virt,
				      memory_order_release);
	}
}

static int hmap_grow(struct vmig_hmap *m, struct vmig_hmap_tab *old)
{
	struct vmig_hmap_tab *t = tab_alloc((old->mask + 1) * 2);
	uint32_t i;

	if (!t)
		return -ENOMEM;
	for (i = 0; i <= old->mask; i++) {
		uint64_t k = atomic_load_explicit(&old->key[i],
						  memory_order_relaxed);

		if (k)
			tab_put(t, (uint32_t)k, atomic_load_explicit(
				&old->val[i], memory_order_relaxed));
	}
	/* Readers may still walk the old table: keep it until dispose. */
	t->retired = old;
	atomic_store_explicit(&m->tab, t, memory_order_release);
	return 0;
}

int vmig_hmap_set(struct vmig_hmap *m, uint32_t virt, uint32_t phys)
{
	struct vmig_hmap_tab *t;
	uint32_t h, old_phys = virt;
	bool had;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	t = atomic_load_explicit(&m->tab, memory_order_relaxed);
	h = tab_slot(t, virt);
	had = atomic_load_explicit(&t->key[h], memory_order_relaxed) != 0;
	if (had)
		old_phys = atomic_load_explicit(&t->val[h],
						memory_order_relaxed);
	if (!had && phys == virt)
		goto out;
	if (!had && (t->used + 1) * 2 > t->mask + 1) {
		ret = hmap_grow(m, t);
		if (ret)
			goto out;
		t = atomic_load_explicit(&m->tab, memory_order_relaxed);
	}
	tab_put(t, virt, phys);
	if (old_phys == virt && phys != virt)
		atomic_fetch_add(&m->count, 1);
	else if (old_phys != virt && phys == virt)
		atomic_fetch_sub(&m->count, 1);
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void vmig_hmap_foreach(struct vmig_hmap *m,
		       void (*fn)(uint32_t virt, uint32_t phys, void *arg),
		       void *arg)
{
	struct vmig_hmap_tab *t;
	uint32_t i;

	pthread_mutex_lock(&m->lock);
	t = atomic_load_explicit(&m->tab, memory_order_relaxed);
	for (i = 0; i <= t->mask; i++) {
		uint64_t k = atomic_load_explicit(&t->key[i],
						  memory_order_relaxed);
		uint32_t v = atomic_load_explicit(&t->val[i],
						  memory_order_relaxed);

		if (k && v != (uint32_t)k)
			fn((uint32_t)k, v, arg);
	}
	pthread_mutex_unlock(&m->lock);
}

void vmig_hmap_clear(struct vmig_hmap *m)
{
	struct vmig_hmap_tab *t;
	uint32_t i;

	/* Entries become the identity; slots stay so readers stay safe. */
	pthread_mutex_lock(&m->lock);
	t = atomic_load_explicit(&m->tab, memory_order_relaxed);
	for (i = 0; i <= t->mask; i++) {
		uint64_t k = atomic_load_explicit(&t->key[i],
						  memory_order_relaxed);

		if (k)
			atomic_store_explicit(&t->val[i], (uint32_t)k,
					      memory_order_relaxed);
	}
	atomic_store(&m->count, 0);
	pthread_mutex_unlock(&m->lock);
}
