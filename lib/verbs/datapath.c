// SPDX-License-Identifier: MIT
/*
 * The data path: post_send, post_recv, post_srq_recv, poll_cq and
 * req_notify_cq of the shadow context. The fast path (no suspension, every
 * map the identity) is an in-flight count, one load of the QP's or CQ's
 * `slow` word and the provider's call. Anything else takes the object's
 * lock: held posts, translation, buffered completions.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

/* Sets bit on qp and waits until no fast-path post is inside the
 * provider; after this, posts take the slow path under qp->lock. */
void vmig_quiesce_qp(struct vmig_qp *qp, uint32_t bit)
{
	atomic_fetch_or(&qp->slow, bit);
	while (atomic_load(&qp->inflight))
		sched_yield();
	pthread_mutex_lock(&qp->lock);
	pthread_mutex_unlock(&qp->lock);
}

void vmig_quiesce_cq(struct vmig_cq *cq, uint32_t bit)
{
	atomic_fetch_or(&cq->slow, bit);
	while (atomic_load(&cq->inflight))
		sched_yield();
	pthread_mutex_lock(&cq->lock);
	pthread_mutex_unlock(&cq->lock);
}

#define XL_WRS 16
#define XL_SGES 64

/* Posts wr to the real QP with lkeys, rkeys, AHs and remote QPNs
 * translated; qp->lock held (or the QP quiesced). */
int vmig_post_send_real(struct vmig_qp *qp, struct ibv_send_wr *wr,
			struct ibv_send_wr **bad)
{
	struct ibv_send_wr wbuf[XL_WRS], *w = wbuf, *rbad = NULL, *p;
	struct ibv_sge sbuf[XL_SGES], *s = sbuf;
	struct vmig_hmap *rk = atomic_load(&qp->peer_rkeys);
	size_t nw = 0, ns = 0, i, j;
	int ret;

	for (p = wr; p; p = p->next) {
		nw++;
		ns += p->num_sge > 0 ? (size_t)p->num_sge : 0;
	}
	if (nw > XL_WRS)
		w = malloc(nw * sizeof(*w));
	if (ns > XL_SGES)
		s = malloc(ns * sizeof(*s));
	if (!w || !s) {
		ret = ENOMEM;
		*bad = wr;
		goto out;
	}
	for (p = wr, i = 0, j = 0; p; p = p->next, i++) {
		struct ibv_send_wr *c = &w[i];
		int k;

		*c = *p;
		c->next = p->next ? &w[i + 1] : NULL;
		c->sg_list = &s[j];
		for (k = 0; k < p->num_sge; k++, j++) {
			s[j] = p->sg_list[k];
			if (!(p->send_flags & IBV_SEND_INLINE))
				s[j].lkey = vmig_hmap_get(&vmig_shim.lkeys,
							  s[j].lkey);
		}
		switch (p->opcode) {
		case IBV_WR_RDMA_WRITE:
		case IBV_WR_RDMA_WRITE_WITH_IMM:
		case IBV_WR_RDMA_READ:
			if (rk)
				c->wr.rdma.rkey = vmig_hmap_get(rk,
							p->wr.rdma.rkey);
			break;
		case IBV_WR_ATOMIC_CMP_AND_SWP:
		case IBV_WR_ATOMIC_FETCH_AND_ADD:
			if (rk)
				c->wr.atomic.rkey = vmig_hmap_get(rk,
							p->wr.atomic.rkey);
			break;
		case IBV_WR_SEND:
		case IBV_WR_SEND_WITH_IMM:
		case IBV_WR_SEND_WITH_INV:
		case IBV_WR_LOCAL_INV:
		case IBV_WR_BIND_MW:
		case IBV_WR_TSO:
		case IBV_WR_DRIVER1:
		case IBV_WR_ATOMIC_WRITE:
			break;
		}
		if (qp->init.qp_type == IBV_QPT_UD) {
			struct vmig_ah *ah = vmig_container_of(p->wr.ud.ah,
							struct vmig_ah, ib);

			if (!p->wr.ud.ah || !ah->real) {
				ret = EINVAL;
				*bad = p;
				goto out;
			}
			c->wr.ud.ah = ah->real;
			c->wr.ud.remote_qpn = vmig_ud_remote_qpn(ah,
							p->wr.ud.remote_qpn);
		}
	}
	rbad = NULL;
	ret = qp->real->context->ops.post_send(qp->real, w, &rbad);
	if (unlikely(ret == EACCES) && !rbad)	/* doorbell.c */
		ret = vmig_doorbell(qp->real);
	if (ret) {
		/* the same position in the application's list */
		for (p = wr, i = 0; p && &w[i] != rbad; p = p->next, i++)
			;
		*bad = p ? p : wr;
	}
out:
	if (w != wbuf)
		free(w);
	if (s != sbuf)
		free(s);
	return ret;
}

static int post_send_slow(struct vmig_qp *qp, struct ibv_send_wr *wr,
			  struct ibv_send_wr **bad)
{
	int ret;

	pthread_mutex_lock(&qp->lock);
	if (atomic_load(&qp->slow) & (VMIG_SLOW_HELD | VMIG_SLOW_GONE)) {
		/* never an error to the application: replayed at resume */
		ret = vmig_wrq_push_chain(&qp->held, wr, bad) ? ENOMEM : 0;
		pr_dp("qp %#x: held, %u waiting", qp->ib.qp_base.qp_num,
		      qp->held.count);
	} else {
		ret = vmig_post_send_real(qp, wr, bad);
	}
	pthread_mutex_unlock(&qp->lock);
	return ret;
}

int vmig_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		   struct ibv_send_wr **bad)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;
	struct ibv_qp *real;
	int ret;

	atomic_fetch_add_explicit(&qp->inflight, 1, memory_order_seq_cst);
	if (unlikely(atomic_load_explicit(&qp->slow, memory_order_seq_cst))) {
		atomic_fetch_sub_explicit(&qp->inflight, 1,
					  memory_order_release);
		return post_send_slow(qp, wr, bad);
	}
	real = qp->real;
	ret = real->context->ops.post_send(real, wr, bad);
	atomic_fetch_sub_explicit(&qp->inflight, 1, memory_order_release);
	/* every WR queued, the doorbell refused (doorbell.c) */
	if (unlikely(ret == EACCES) && !*bad)
		ret = vmig_doorbell(real);
	return ret;
}

/* The receives copied with their lkeys translated, then posted. Apart so
 * that the identity case does not pay for its stack frame. */
static __attribute__((noinline)) int
post_recv_xlate(struct ibv_qp *real, struct ibv_srq *rsrq,
		struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	struct ibv_recv_wr wbuf[XL_WRS], *w = wbuf, *rbad = NULL, *p;
	struct ibv_sge sbuf[XL_SGES], *s = sbuf;
	size_t nw = 0, ns = 0, i, j;
	int ret;

	for (p = wr; p; p = p->next) {
		nw++;
		ns += p->num_sge > 0 ? (size_t)p->num_sge : 0;
	}
	if (nw > XL_WRS)
		w = malloc(nw * sizeof(*w));
	if (ns > XL_SGES)
		s = malloc(ns * sizeof(*s));
	if (!w || !s) {
		ret = ENOMEM;
		*bad = wr;
		goto out;
	}
	for (p = wr, i = 0, j = 0; p; p = p->next, i++) {
		int k;

		w[i] = *p;
		w[i].next = p->next ? &w[i + 1] : NULL;
		w[i].sg_list = &s[j];
		for (k = 0; k < p->num_sge; k++, j++) {
			s[j] = p->sg_list[k];
			s[j].lkey = vmig_hmap_get(&vmig_shim.lkeys, s[j].lkey);
		}
	}
	ret = rsrq ? rsrq->context->ops.post_srq_recv(rsrq, w, &rbad) :
		     real->context->ops.post_recv(real, w, &rbad);
	if (ret) {
		for (p = wr, i = 0; p && &w[i] != rbad; p = p->next, i++)
			;
		*bad = p ? p : wr;
	}
out:
	if (w != wbuf)
		free(w);
	if (s != sbuf)
		free(s);
	return ret;
}

/* Posts receives to a real QP (rsrq NULL) or SRQ with lkeys translated. */
int vmig_post_recv_real(struct ibv_qp *real, struct ibv_srq *rsrq,
			struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	if (vmig_hmap_count(&vmig_shim.lkeys))
		return post_recv_xlate(real, rsrq, wr, bad);
	return rsrq ? rsrq->context->ops.post_srq_recv(rsrq, wr, bad) :
		      real->context->ops.post_recv(real, wr, bad);
}

/* Keeps a copy of every receive, before the provider takes them: the
 * completion of one may be polled before the post returns (ud.c reads
 * the buffer by it). */
static void ring_record(struct vmig_rring *ring, struct ibv_recv_wr *wr,
			struct ibv_recv_wr *end)
{
	for (; wr && wr != end; wr = wr->next)
		vmig_rring_push(ring, wr);
}

/* Posts wr to the real QP or SRQ, recorded in ring; on failure only the
 * receives the provider took stay recorded. */
static int ring_post(struct vmig_rring *ring, struct ibv_qp *rqp,
		     struct ibv_srq *rsrq, struct ibv_recv_wr *wr,
		     struct ibv_recv_wr **bad)
{
	uint64_t posted = ring->posted;
	int ret;

	ring_record(ring, wr, NULL);
	ret = vmig_post_recv_real(rqp, rsrq, wr, bad);
	if (ret) {
		__atomic_store_n(&ring->posted, posted, __ATOMIC_RELEASE);
		ring_record(ring, wr, *bad);
	}
	return ret;
}

/* While torn down, receives only go to the ring (re-posted at restore). */
static int ring_hold(struct vmig_rring *ring, uint32_t *outstanding,
		     struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	for (; wr; wr = wr->next) {
		if (*outstanding >= ring->size ||
		    vmig_rring_push(ring, wr)) {
			*bad = wr;
			return ENOMEM;
		}
		(*outstanding)++;
	}
	return 0;
}

int vmig_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		   struct ibv_recv_wr **bad)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;
	int ret;

	pthread_mutex_lock(&qp->lock);
	if (!qp->real) {
		ret = ring_hold(&qp->ring, &qp->outstanding, wr, bad);
	} else {
		ret = ring_post(&qp->ring, qp->real, NULL, wr, bad);
	}
	pthread_mutex_unlock(&qp->lock);
	return ret;
}

int vmig_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		       struct ibv_recv_wr **bad)
{
	struct vmig_srq *srq = vmig_container_of(ibsrq, struct vmig_srq, ib);
	int ret;

	pthread_mutex_lock(&srq->lock);
	if (!srq->real) {
		ret = ring_hold(&srq->ring, &srq->outstanding, wr, bad);
	} else {
		ret = ring_post(&srq->ring, NULL, srq->real, wr, bad);
	}
	pthread_mutex_unlock(&srq->lock);
	return ret;
}

/* A completion of cq as the application must see it. wc.slid passes
 * through: RoCE has no LIDs, the HCA reports 0 (docs/design.md). */
void vmig_wc_to_virt(struct vmig_cq *cq, struct ibv_wc *wc)
{
	struct vmig_qp *ud = NULL;

	if (atomic_load_explicit(&cq->n_udrq, memory_order_relaxed))
		ud = vmig_udrq_find(cq, wc->qp_num);
	wc->qp_num = vmig_hmap_get(&vmig_shim.qpn_p2v, wc->qp_num);
	/* src_qp means something for UD only, and names a QP of the sender
	 * in the GRH */
	if (ud)
		vmig_ud_recv(cq, ud, wc);
}

/* A drain marker's completion: its QP's send queue is empty. */
static bool take_marker(struct vmig_cq *cq, const struct ibv_wc *wc)
{
	int i;

	if (wc->wr_id != VMIG_DRAIN_MARKER)
		return false;
	for (i = 0; i < cq->n_mark; i++) {
		struct vmig_qp *qp = cq->mark_qps[i];

		if (qp->phys_qpn != wc->qp_num)
			continue;
		qp->drain_status = wc->status;
		qp->marker_out = false;
		pr_debug("qp %#x: drain marker completed: %s",
			 qp->ib.qp_base.qp_num, ibv_wc_status_str(wc->status));
		__atomic_store_n(&qp->drained, true, __ATOMIC_RELEASE);
		cq->mark_qps[i] = cq->mark_qps[--cq->n_mark];
		/* another marker may be on its way: keep pollers slow */
		if (!cq->n_mark && !cq->mark_pending)
			atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_MARK);
		return true;
	}
	return false;
}

/* Polls the real CQ and makes the completions virtual; cq->lock held. */
static int poll_real(struct vmig_cq *cq, int n, struct ibv_wc *wc)
{
	int got, i, j;

	got = cq->real->context->ops.poll_cq(cq->real, n, wc);
	for (i = 0, j = 0; i < got; i++) {
		if (cq->n_mark && take_marker(cq, &wc[i]))
			continue;
		if (j != i)
			wc[j] = wc[i];
		vmig_wc_to_virt(cq, &wc[j]);
		if (cq->srq_count && wc[j].opcode & IBV_WC_RECV)
			cq->srq_count->ring.consumed++;
		j++;
	}
	return got < 0 ? got : j;
}

/* Appends a virtual completion to cq's buffer; cq->lock held. */
int vmig_cq_buffer(struct vmig_cq *cq, const struct ibv_wc *wc)
{
	if (cq->buf_head + cq->buf_n == cq->buf_cap) {
		uint32_t cap = cq->buf_cap ? cq->buf_cap * 2 : 64;
		struct ibv_wc *b;

		if (cq->buf_head) {
			memmove(cq->buf, cq->buf + cq->buf_head,
				cq->buf_n * sizeof(*b));
			cq->buf_head = 0;
		}
		if (cq->buf_n == cq->buf_cap) {
			b = realloc(cq->buf, cap * sizeof(*b));
			if (!b)
				return -ENOMEM;
			cq->buf = b;
			cq->buf_cap = cap;
		}
	}
	cq->buf[cq->buf_head + cq->buf_n++] = *wc;
	atomic_fetch_or(&cq->slow, VMIG_SLOW_BUF);
	return 0;
}

/* Drains the real CQ into the buffer (capture, reset); cq->lock held. */
int vmig_cq_drain(struct vmig_cq *cq)
{
	struct ibv_wc wc[16];
	int got, i, total = 0;

	if (!cq->real)
		return 0;
	do {
		got = poll_real(cq, 16, wc);
		if (got < 0)
			return got;
		for (i = 0; i < got; i++)
			if (vmig_cq_buffer(cq, &wc[i]))
				return -ENOMEM;
		total += got;
	} while (got > 0);
	return total;
}

static int poll_cq_slow(struct vmig_cq *cq, int n, struct ibv_wc *wc)
{
	int got = 0, r;

	pthread_mutex_lock(&cq->lock);
	while (got < n && cq->buf_n) {
		wc[got++] = cq->buf[cq->buf_head++];
		cq->buf_n--;
	}
	if (!cq->buf_n) {
		cq->buf_head = 0;
		atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_BUF);
	}
	if (got < n && cq->real &&
	    !(atomic_load(&cq->slow) & (VMIG_SLOW_GONE | VMIG_SLOW_FENCE))) {
		r = poll_real(cq, n - got, wc + got);
		if (r < 0 && !got)
			got = r;
		else if (r > 0)
			got += r;
	}
	pthread_mutex_unlock(&cq->lock);
	return got;
}

int vmig_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	struct vmig_cq *cq = (struct vmig_cq *)ibcq;
	struct ibv_cq *real;
	int ret;

	atomic_fetch_add_explicit(&cq->inflight, 1, memory_order_seq_cst);
	if (unlikely(atomic_load_explicit(&cq->slow, memory_order_seq_cst))) {
		atomic_fetch_sub_explicit(&cq->inflight, 1,
					  memory_order_release);
		return poll_cq_slow(cq, n, wc);
	}
	real = cq->real;
	ret = real->context->ops.poll_cq(real, n, wc);
	/* UD QPs complete here: count their receives (ud.c) */
	if (unlikely(atomic_load_explicit(&cq->n_udrq, memory_order_relaxed)) &&
	    ret > 0)
		vmig_ud_count(cq, wc, ret);
	atomic_fetch_sub_explicit(&cq->inflight, 1, memory_order_release);
	return ret;
}

int vmig_req_notify_cq(struct ibv_cq *ibcq, int solicited)
{
	struct vmig_cq *cq = (struct vmig_cq *)ibcq;
	int ret = 0;

	pthread_mutex_lock(&cq->lock);
	cq->armed = true;
	cq->solicited = solicited;
	if (cq->buf_n && cq->chan) {
		/* completions are waiting in the shim: wake the poller */
		vmig_chan_inject(cq->chan, cq);
	} else if (cq->real && !(atomic_load(&cq->slow) & VMIG_SLOW_GONE)) {
		ret = cq->real->context->ops.req_notify_cq(cq->real,
							   solicited);
	}
	pthread_mutex_unlock(&cq->lock);
	return ret;
}
