// SPDX-License-Identifier: MIT
/* Hold queue and receive ring (see wrq.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wrq.h"

void vmig_wrq_init(struct vmig_wrq *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->count = 0;
}

void vmig_wrq_dispose(struct vmig_wrq *q)
{
	struct vmig_held_wr *h;

	while ((h = vmig_wrq_pop(q)))
		free(h);
}

int vmig_wrq_push(struct vmig_wrq *q, const struct ibv_send_wr *wr)
{
	size_t inl = 0, nsge = wr->num_sge > 0 ? (size_t)wr->num_sge : 0;
	struct vmig_held_wr *h;
	size_t i;

	if (wr->num_sge < 0)
		return -EINVAL;
	if (wr->send_flags & IBV_SEND_INLINE) {
		for (i = 0; i < nsge; i++)
			inl += wr->sg_list[i].length;
		h = malloc(sizeof(*h) + sizeof(struct ibv_sge) + inl);
	} else {
		h = malloc(sizeof(*h) + nsge * sizeof(struct ibv_sge));
	}
	if (!h)
		return -ENOMEM;
	h->next = NULL;
	h->wr = *wr;
	h->wr.next = NULL;
	h->wr.sg_list = h->sge;
	if (wr->send_flags & IBV_SEND_INLINE) {
		uint8_t *p = (uint8_t *)&h->sge[1];

		for (i = 0; i < nsge; i++) {
			memcpy(p, (void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			p += wr->sg_list[i].length;
		}
		h->sge[0].addr = (uintptr_t)&h->sge[1];
		h->sge[0].length = (uint32_t)inl;
		h->sge[0].lkey = 0;
		h->wr.num_sge = inl ? 1 : 0;
	} else if (nsge) {
		memcpy(h->sge, wr->sg_list, nsge * sizeof(struct ibv_sge));
	}
	*q->tail = h;
	q->tail = &h->next;
	q->count++;
	return 0;
}

int vmig_wrq_push_chain(struct vmig_wrq *q, struct ibv_send_wr *wr,
			struct ibv_send_wr **bad)
{
	int ret;

	for (; wr; wr = wr->next) {
		ret = vmig_wrq_push(q, wr);
		if (ret) {
			*bad = wr;
			return ret;
		}
	}
	return 0;
}

struct vmig_held_wr *vmig_wrq_pop(struct vmig_wrq *q)
{
	struct vmig_held_wr *h = q->head;

	if (!h)
		return NULL;
	q->head = h->next;
	if (!q->head)
		q->tail = &q->head;
	q->count--;
	h->next = NULL;
	return h;
}

int vmig_rring_init(struct vmig_rring *r, uint32_t size, uint32_t max_sge)
{
	uint32_t i;

	memset(r, 0, sizeof(*r));
	if (!size)
		size = 1;
	if (!max_sge)
		max_sge = 1;
	r->size = size;
	r->max_sge = max_sge;
	r->ent = calloc(size, sizeof(*r->ent));
	r->sge = calloc((size_t)size * max_sge, sizeof(*r->sge));
	if (!r->ent || !r->sge) {
		vmig_rring_dispose(r);
		return -ENOMEM;
	}
	for (i = 0; i < size; i++)
		r->ent[i].sge = &r->sge[(size_t)i * max_sge];
	return 0;
}

void vmig_rring_dispose(struct vmig_rring *r)
{
	free(r->ent);
	free(r->sge);
	r->ent = NULL;
	r->sge = NULL;
}

int vmig_rring_push(struct vmig_rring *r, const struct ibv_recv_wr *wr)
{
	struct vmig_recv_ent *e;
	int i;

	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > r->max_sge)
		return -EINVAL;
	e = &r->ent[r->posted % r->size];
	e->wr_id = wr->wr_id;
	e->num_sge = (uint32_t)wr->num_sge;
	/* mostly one or two: a loop beats memcpy's call and dispatch */
	for (i = 0; i < wr->num_sge; i++)
		e->sge[i] = wr->sg_list[i];
	/* pollers read the entry without the poster's lock */
	__atomic_store_n(&r->posted, r->posted + 1, __ATOMIC_RELEASE);
	return 0;
}

const struct vmig_recv_ent *vmig_rring_last(const struct vmig_rring *r,
					    uint32_t n, uint32_t i)
{
	if (n > r->size || n > r->posted || i >= n)
		return NULL;
	return &r->ent[(r->posted - n + i) % r->size];
}

const struct vmig_recv_ent *vmig_rring_at(const struct vmig_rring *r,
					  uint64_t seq)
{
	if (seq >= r->posted || r->posted - seq > r->size)
		return NULL;
	return &r->ent[seq % r->size];
}

void vmig_rring_chain(const struct vmig_rring *r, uint32_t n,
		      struct ibv_recv_wr *wrs, struct ibv_sge *sges)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		const struct vmig_recv_ent *e = vmig_rring_last(r, n, i);

		memcpy(&sges[(size_t)i * r->max_sge], e->sge,
		       e->num_sge * sizeof(struct ibv_sge));
		wrs[i].wr_id = e->wr_id;
		wrs[i].sg_list = &sges[(size_t)i * r->max_sge];
		wrs[i].num_sge = (int)e->num_sge;
		wrs[i].next = i + 1 < n ? &wrs[i + 1] : NULL;
	}
}
