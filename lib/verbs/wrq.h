/* SPDX-License-Identifier: MIT */
/*
 * Work-request copies the shim keeps: the hold queue of sends posted while
 * a QP is suspended (replayed in order at resume), and the receive ring of
 * the last receives posted to a QP or SRQ (re-posted after teardown or a
 * reset). Both copy what the application passed, with its virtual keys.
 */
#ifndef VMIG_VERBS_WRQ_H
#define VMIG_VERBS_WRQ_H

#include <infiniband/verbs.h>
#include <stdint.h>

struct vmig_held_wr {
	struct vmig_held_wr *next;
	struct ibv_send_wr wr;	/* next = NULL, sg_list points below */
	struct ibv_sge sge[];	/* then the inline payload, if any */
};

struct vmig_wrq {
	struct vmig_held_wr *head, **tail;
	uint32_t count;
};

void vmig_wrq_init(struct vmig_wrq *q);
void vmig_wrq_dispose(struct vmig_wrq *q);
/* Deep-copies one WR (not its chain): SGEs, and the bytes of an inline send
 * since the application may reuse its buffer once the post returns. */
int vmig_wrq_push(struct vmig_wrq *q, const struct ibv_send_wr *wr);
/* Copies the whole chain; on failure *bad is the WR that was not held. */
int vmig_wrq_push_chain(struct vmig_wrq *q, struct ibv_send_wr *wr,
			struct ibv_send_wr **bad);
/* Detaches the first WR; the caller frees it with free(). */
struct vmig_held_wr *vmig_wrq_pop(struct vmig_wrq *q);
static inline struct vmig_held_wr *vmig_wrq_peek(struct vmig_wrq *q)
{
	return q->head;
}

struct vmig_recv_ent {
	uint64_t wr_id;
	uint32_t num_sge;
	struct ibv_sge *sge;	/* max_sge entries */
};

/* The last `size` receives posted, oldest first from (posted - size). */
struct vmig_rring {
	uint32_t size, max_sge;
	uint64_t posted;	/* receives ever posted */
	uint64_t consumed;	/* counted completions (SRQ; UD QP) */
	struct vmig_recv_ent *ent;
	struct ibv_sge *sge;
};

int vmig_rring_init(struct vmig_rring *r, uint32_t size, uint32_t max_sge);
void vmig_rring_dispose(struct vmig_rring *r);
int vmig_rring_push(struct vmig_rring *r, const struct ibv_recv_wr *wr);
/* The i-th of the last n receives posted (i = 0 the oldest of them). */
const struct vmig_recv_ent *vmig_rring_last(const struct vmig_rring *r,
					    uint32_t n, uint32_t i);
/* The seq-th receive ever posted (from 0), or NULL if it was not posted
 * or the ring has since reused its entry. */
const struct vmig_recv_ent *vmig_rring_at(const struct vmig_rring *r,
					  uint64_t seq);
/* Builds a chain of the last n receives (virtual keys) in wrs/sges, which
 * hold n entries and n * max_sge SGEs. */
void vmig_rring_chain(const struct vmig_rring *r, uint32_t n,
		      struct ibv_recv_wr *wrs, struct ibv_sge *sges);

#endif
