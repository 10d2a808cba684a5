// SPDX-License-Identifier: MIT
/*
 * SUSPEND: hold new posts on the selected QPs and drain every posted send.
 * SQD is not enough: it completes the WQEs in flight but leaves posted,
 * not yet started ones in the queue (rxe's req_next_wqe raises SQ_DRAINED
 * as soon as nothing is outstanding). So the shim posts a signaled,
 * zero-length RDMA WRITE as a marker behind the application's WRs: an RC
 * QP completes in order, so when the marker completes every WR before it
 * has, signaled or not. The marker's completion is filtered out of the
 * application's CQ. Bounded: on timeout the held posts are replayed at
 * once (the QP never left RTS, the connection keeps working), the marker
 * is still filtered whenever it completes, and the reply is ERR_TIMEOUT.
 * RESUME replays the held posts in order; ABORT resumes a suspension.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"

/* Replays qp's held posts in order and lets posts through again. */
static int qp_release(struct vmig_qp *qp)
{
	struct vmig_held_wr *h;
	int ret = 0, n = 0;

	pthread_mutex_lock(&qp->lock);
	while ((h = vmig_wrq_peek(&qp->held))) {
		struct ibv_send_wr *bad;

		ret = vmig_post_send_real(qp, &h->wr, &bad);
		if (ret) {
			pr_err("qp %#x: replay of a held post failed: %s",
			       qp->ib.qp_base.qp_num, strerror(ret));
			break;
		}
		free(vmig_wrq_pop(&qp->held));
		n++;
	}
	if (!ret) {
		atomic_fetch_and(&qp->slow, ~(uint32_t)(VMIG_SLOW_HELD |
							VMIG_SLOW_GONE));
		qp->selected = false;
	}
	pthread_mutex_unlock(&qp->lock);
	if (n)
		pr_debug("qp %#x: %d held posts replayed",
			 qp->ib.qp_base.qp_num, n);
	return ret;
}

/* An AH from qp's port to this host's own GID (for a UD marker). */
static struct ibv_ah *self_ah(struct vmig_qp *qp)
{
	struct vmig_ctx *ctx = qp->ctx;
	struct ibv_ah_attr a = {
		.is_global = 1,
		.port_num = qp->attr.port_num ? qp->attr.port_num : 1,
	};
	int i;

	for (i = 0; i < ctx->ngids; i++) {
		/* a RoCE v2 IPv4 GID routes on rxe; link-local ones too */
		a.grh.dgid = ctx->gids[i].phys;
		a.grh.sgid_index = (uint8_t)ctx->gids[i].index;
		a.grh.hop_limit = 1;
		if (ctx->gids[i].port != a.port_num)
			continue;
		return vmig_real.create_ah(qp->pd->real, &a);
	}
	return NULL;
}

/* Posts qp's drain marker; qp quiesced, shim.lock held. */
static int post_marker(struct vmig_qp *qp)
{
	struct ibv_send_wr wr = {
		.wr_id = VMIG_DRAIN_MARKER,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct vmig_cq *cq = qp->scq;
	int ret;

	if (qp->init.qp_type == IBV_QPT_UD) {
		/* to this QP itself with a wrong qkey: the receiver drops it
		 * before it takes a receive, the send completes in order */
		if (!qp->marker_ah)
			qp->marker_ah = self_ah(qp);
		if (!qp->marker_ah)
			return ENOENT;
		wr.opcode = IBV_WR_SEND;
		wr.wr.ud.ah = qp->marker_ah;
		wr.wr.ud.remote_qpn = qp->phys_qpn;
		wr.wr.ud.remote_qkey = qp->attr.qkey ^ 0x5a5a5a5au;
	}
	/* The QP's marker may have completed since the caller looked (the
	 * application polls meanwhile): one marker per drain. */
	pthread_mutex_lock(&cq->lock);
	if (qp->marker_out || __atomic_load_n(&qp->drained, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&cq->lock);
		return 0;
	}
	cq->mark_pending++;
	pthread_mutex_unlock(&cq->lock);
	/* no application poll may be inside the provider when it lands */
	vmig_quiesce_cq(cq, VMIG_SLOW_MARK);
	pthread_mutex_lock(&cq->lock);
	cq->mark_pending--;
	if (cq->n_mark == (int)(sizeof(cq->mark_qps) / sizeof(cq->mark_qps[0]))) {
		ret = EBUSY;
	} else {
		ret = qp->real->context->ops.post_send(qp->real, &wr, &bad);
		if (!ret) {
			qp->marker_out = true;
			cq->mark_qps[cq->n_mark++] = qp;
		}
		pr_debug("qp %#x: drain marker posted: %d",
			 qp->ib.qp_base.qp_num, ret);
	}
	if (!cq->n_mark && !cq->mark_pending)
		atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_MARK);
	pthread_mutex_unlock(&cq->lock);
	return ret;
}

static void drain_abort(void)
{
	struct vmig_qp *qp;

	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!qp->selected)
			continue;
		qp->draining = false;
		qp_release(qp);
	}
}

#define VMIG_UD_GRACE_US 300000

static bool vmig_suspend_any_connected(void)
{
	struct vmig_qp *qp;

	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
		if (qp->selected && qp->init.qp_type != IBV_QPT_UD)
			return true;
	return false;
}

int vmig_op_suspend(struct vmig_req *r)
{
	const Vmig__Suspend *s = r->in->suspend;
	const Vmig__ConnFilter *f = s ? s->filter : NULL;
	uint32_t tmo = s && s->has_drain_timeout_ms ? s->drain_timeout_ms :
						       10000;
	uint64_t t0 = vmig_now_us(), deadline;
	Vmig__Drained *d;
	struct vmig_qp *qp;
	uint32_t nsel = 0, held = 0;
	bool all;

	if (vmig_shim.phase != VMIG_PHASE_RUNNING)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				     "suspend in phase %s",
				     vmig_phase_name(vmig_shim.phase));
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		/* a UD QP may send to the moving peer: hold it too (its
		 * datagrams go out at resume, to the peer's new QPN) */
		qp->selected = vmig_qp_matches(qp, f) ||
			       qp->init.qp_type == IBV_QPT_UD;
		qp->drained = qp->draining = false;
		nsel += qp->selected;
		if (qp->selected && qp->marker_out)
			return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE,
				EBUSY, "qp %#x: the drain of an aborted suspend "
				"is still pending", qp->ib.qp_base.qp_num);
	}
	if (f && f->n_remote && !vmig_suspend_any_connected())
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_NOT_FOUND, 0,
				     "no connection matches the filter");
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!qp->selected)
			continue;
		vmig_quiesce_qp(qp, VMIG_SLOW_HELD);
		/* RESET/INIT QPs have sent nothing */
		if (qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_SQD)
			continue;
		qp->draining = true;
	}
	deadline = t0 + (uint64_t)tmo * 1000;
	for (;;) {
		all = true;
		vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
			if (!qp->draining || qp->drained)
				continue;
			all = false;
			/* a full send queue takes the marker later */
			if (!qp->marker_out && post_marker(qp) &&
			    vmig_now_us() - t0 > 1000000)
				pr_debug("qp %#x: marker not posted yet",
					 qp->ib.qp_base.qp_num);
		}
		if (all || vmig_now_us() >= deadline)
			break;
		/* the markers complete in the send CQs: poll them here too,
		 * the application's completions go to the shim's buffer */
		vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
			if (!qp->draining || qp->drained || !qp->marker_out)
				continue;
			pthread_mutex_lock(&qp->scq->lock);
			vmig_cq_drain(qp->scq);
			pthread_mutex_unlock(&qp->scq->lock);
		}
		vmig_events_pump(2);
	}
	/* UD sends have no in-order acknowledgement to wait for: give the
	 * datagrams already posted time to leave and land before the peer
	 * tears its QP down (they are lost otherwise) */
	if (all) {
		uint64_t grace = vmig_now_us() + VMIG_UD_GRACE_US;

		vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
			if (qp->selected && qp->init.qp_type == IBV_QPT_UD &&
			    qp->state == IBV_QPS_RTS)
				break;
		if (&qp->link != &vmig_shim.qps)
			while (vmig_now_us() < grace && vmig_now_us() < deadline)
				vmig_events_pump(10);
	}
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (qp->draining && qp->drained &&
		    qp->drain_status != IBV_WC_SUCCESS)
			pr_warn("qp %#x: drain marker completed with %s",
				qp->ib.qp_base.qp_num,
				ibv_wc_status_str(qp->drain_status));
	}
	if (!all) {
		drain_abort();
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_TIMEOUT, ETIMEDOUT,
				     "drain not finished in %u ms (a receiver "
				     "without buffers?); resumed", tmo);
	}
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
		if (qp->selected)
			held += qp->held.count;
	all = true;
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
		if (!qp->selected)
			all = false;
	vmig_set_phase(VMIG_PHASE_RUNNING, VMIG_PHASE_SUSPENDED);
	d = vmig_arena_alloc(r->arena, sizeof(*d));
	vmig__drained__init(d);
	d->has_qps = d->has_drain_us = d->has_held_posts = 1;
	d->qps = nsel;
	d->drain_us = vmig_now_us() - t0;
	d->held_posts = held;
	r->out->has_type = 1;
	r->out->type = VMIG__CTL_TYPE__CTL_DRAINED;
	r->out->drained = d;
	vmig_req_time(r, "drain", d->drain_us);
	pr_info("suspended %u QPs%s in %llu us", nsel, all ? " (all)" : "",
		(unsigned long long)d->drain_us);
	return 0;
}

int vmig_op_resume(struct vmig_req *r)
{
	struct vmig_qp *qp;
	struct vmig_cq *cq;
	int ret = 0;

	if (vmig_shim.phase != VMIG_PHASE_SUSPENDED &&
	    vmig_shim.phase != VMIG_PHASE_RESTORED)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				     "resume in phase %s",
				     vmig_phase_name(vmig_shim.phase));
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!qp->selected)
			continue;
		qp->draining = false;
		if (qp_release(qp))
			ret = -1;
	}
	/* completions the shim holds: wake the application's pollers */
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link) {
		pthread_mutex_lock(&cq->lock);
		if (cq->buf_n && cq->chan && cq->armed)
			vmig_chan_inject(cq->chan, cq);
		pthread_mutex_unlock(&cq->lock);
	}
	vmig_set_phase(vmig_shim.phase, VMIG_PHASE_RUNNING);
	if (ret)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_VERBS, EIO,
				     "some held posts could not be replayed");
	return 0;
}

int vmig_op_abort(struct vmig_req *r)
{
	if (vmig_shim.phase == VMIG_PHASE_RUNNING)
		return 0;
	if (vmig_shim.phase == VMIG_PHASE_TORN_DOWN)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				     "torn down: restore first");
	return vmig_op_resume(r);
}
