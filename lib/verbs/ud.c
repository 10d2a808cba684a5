// SPDX-License-Identifier: MIT
/*
 * UD translation. A UD QP talks to many peers, so each datagram is
 * translated on its own, and a remote QP is named by (GID, QPN) (rqmap.h):
 * a send by its shadow AH's virtual dgid and its remote_qpn, a receive by
 * the sender's GID, which only the network header at the head of the
 * receive buffer holds (grh.h); that header is rewritten to virtual GIDs.
 *
 * Which buffer: receive queues complete in order, so a completion took the
 * next receive of its QP's ring. Each CQ counts the receives of the UD QPs
 * that complete in it, on the fast path too (a compare and an add per
 * completion, for CQs with a UD QP only: everyone else pays one branch per
 * poll), and the wr_id confirms the entry or finds it again after a
 * completion the count could not place (an error completion, when the QP's
 * sends complete in the same CQ: its opcode is undefined).
 */
#include <errno.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "grh.h"
#include "log.h"
#include "shim.h"

uint32_t vmig_ud_remote_qpn(const struct vmig_ah *ah, uint32_t vqpn)
{
	uint32_t p;

	if (ah->attr.is_global &&
	    vmig_rqmap_to_phys(&vmig_shim.rqps, &ah->attr.grh.dgid, vqpn, NULL,
			       &p))
		return p;
	return vqpn;
}

/* shim.lock held, after a restore: this process's own QPs under each of
 * its GIDs, for datagrams it sends to itself (loopback). */
void vmig_ud_learn_own(void)
{
	struct vmig_qp *qp;
	int i;

	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!qp->phys_qpn)
			continue;
		for (i = 0; i < qp->ctx->ngids; i++)
			if (vmig_rqmap_set(&vmig_shim.rqps,
					   &qp->ctx->gids[i].virt,
					   qp->ib.qp_base.qp_num,
					   &qp->ctx->gids[i].phys,
					   qp->phys_qpn))
				pr_warn("remote QP map full");
	}
}

/* shim.lock held: qp (UD) is counted by its receive CQ from now on. */
void vmig_udrq_add(struct vmig_qp *qp)
{
	struct vmig_cq *cq = qp->rcq;
	int n;

	if (!cq || qp->init.qp_type != IBV_QPT_UD)
		return;
	n = atomic_load(&cq->n_udrq);
	if (n == (int)(sizeof(cq->udrq) / sizeof(cq->udrq[0]))) {
		pr_warn("qp %#x: more than %d UD QPs on one CQ: its receives "
			"are not translated", qp->ib.qp_base.qp_num, n);
		return;
	}
	cq->udrq[n] = qp;
	/* a new QP has no completions yet: readers may see either count */
	atomic_store_explicit(&cq->n_udrq, n + 1, memory_order_release);
}

/* shim.lock held: before qp is freed. */
void vmig_udrq_del(struct vmig_qp *qp)
{
	struct vmig_cq *cq = qp->rcq;
	uint32_t prev;
	int i, n;

	if (!cq || qp->init.qp_type != IBV_QPT_UD)
		return;
	/* no poll may walk the list meanwhile */
	prev = atomic_load(&cq->slow);
	vmig_quiesce_cq(cq, VMIG_SLOW_FENCE);
	pthread_mutex_lock(&cq->lock);
	n = atomic_load(&cq->n_udrq);
	for (i = 0; i < n; i++) {
		if (cq->udrq[i] != qp)
			continue;
		cq->udrq[i] = cq->udrq[n - 1];
		atomic_store(&cq->n_udrq, n - 1);
		break;
	}
	cq->ex_src_set = false;
	pthread_mutex_unlock(&cq->lock);
	if (!(prev & VMIG_SLOW_FENCE))
		atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_FENCE);
}

struct vmig_qp *vmig_udrq_find(struct vmig_cq *cq, uint32_t phys_qpn)
{
	int n = atomic_load_explicit(&cq->n_udrq, memory_order_acquire), i;

	for (i = 0; i < n; i++)
		if (cq->udrq[i]->phys_qpn == phys_qpn)
			return cq->udrq[i];
	return NULL;
}

/* Did this completion of qp in cq consume one of its receives? */
static inline bool is_recv(const struct vmig_cq *cq, const struct vmig_qp *qp,
			   const struct ibv_wc *wc)
{
	if (qp->scq != cq)
		return true;
	return wc->status == IBV_WC_SUCCESS && wc->opcode & IBV_WC_RECV;
}

/* The fast path (nothing to translate): count only. */
void vmig_ud_count(struct vmig_cq *cq, const struct ibv_wc *wc, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		struct vmig_qp *qp = vmig_udrq_find(cq, wc[i].qp_num);

		if (qp && !qp->srq && is_recv(cq, qp, &wc[i]))
			__atomic_fetch_add(&qp->ring.consumed, 1,
					   __ATOMIC_RELAXED);
	}
}

/* The receive a completion of qp consumed: the one the count expects if
 * its wr_id agrees, else the nearest one with that wr_id in the ring. */
static const struct vmig_recv_ent *ring_take(struct vmig_qp *qp,
					     uint64_t wr_id)
{
	struct vmig_rring *r = qp->srq ? &qp->srq->ring : &qp->ring;
	uint64_t posted = __atomic_load_n(&r->posted, __ATOMIC_ACQUIRE);
	uint64_t c = __atomic_load_n(&r->consumed, __ATOMIC_RELAXED);
	uint64_t lo = posted > r->size ? posted - r->size : 0, s;
	const struct vmig_recv_ent *e;

	if (qp->srq) {
		/* the CQ counts an SRQ's receives (datapath.c) */
		e = vmig_rring_at(r, c);
		return e && e->wr_id == wr_id ? e : NULL;
	}
	if (c < lo)
		c = lo;
	for (s = c; s < posted; s++)
		if ((e = vmig_rring_at(r, s)) && e->wr_id == wr_id)
			goto found;
	for (s = lo; s < c; s++)
		if ((e = vmig_rring_at(r, s)) && e->wr_id == wr_id)
			goto found;
	__atomic_store_n(&r->consumed, c + 1, __ATOMIC_RELAXED);
	return NULL;
found:
	if (s != c)
		pr_dp("qp %#x: receive count %llu, wr_id says %llu",
		      qp->ib.qp_base.qp_num, (unsigned long long)c,
		      (unsigned long long)s);
	__atomic_store_n(&r->consumed, s + 1, __ATOMIC_RELAXED);
	return e;
}

/*
 * A completion of UD QP qp in cq, made virtual: the receive it consumed is
 * counted, and for a datagram the sender's (GID, QPN) gives wc->src_qp,
 * and the header in the buffer gets the virtual GIDs. cq->lock held (or in
 * an ibv_cq_ex poll session, which the provider serializes).
 */
void vmig_ud_recv(struct vmig_cq *cq, struct vmig_qp *qp, struct ibv_wc *wc)
{
	union ibv_gid sgid, dgid, vsgid, vdgid;
	const struct vmig_recv_ent *e;
	uint8_t h[VMIG_GRH_LEN];
	enum vmig_grh_kind k;
	uint32_t vqpn;

	if (!is_recv(cq, qp, wc))
		return;
	e = ring_take(qp, wc->wr_id);
	if (!e || wc->status != IBV_WC_SUCCESS ||
	    !(wc->wc_flags & IBV_WC_GRH) || wc->byte_len < VMIG_GRH_LEN ||
	    vmig_sge_read(e->sge, e->num_sge, h, sizeof(h)) < sizeof(h))
		return;
	k = vmig_grh_parse(h, &sgid, &dgid);
	if (k == VMIG_GRH_NONE)
		return;
	vsgid = sgid;
	if (vmig_rqmap_to_virt(&vmig_shim.rqps, &sgid, wc->src_qp, &vsgid,
			       &vqpn))
		wc->src_qp = vqpn;
	vmig_ctx_gid_virt(qp->ctx, &dgid, &vdgid);
	if (vmig_grh_rewrite(h, k, &vsgid, &vdgid))
		vmig_sge_write(e->sge, e->num_sge, h, sizeof(h));
}
