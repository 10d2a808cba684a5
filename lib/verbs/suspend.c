// SPDX-License-Identifier: MIT
/*
 * SUSPEND: hold new posts on the selected QPs and drain every posted send
 * with SQD (the QP's IBV_EVENT_SQ_DRAINED, filtered by the shim thread).
 * Bounded: on timeout the QPs go back to RTS (or, when the HCA refuses
 * SQD->RTS while still draining, as soon as the drain ends) and their held
 * posts are replayed: the connection keeps working, the reply is
 * ERR_TIMEOUT. RESUME replays the held posts in order; ABORT is a resume
 * of a suspension.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"

static bool abort_pending;

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

static int qp_to_rts(struct vmig_qp *qp)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTS };

	return vmig_real.modify_qp(qp->real, &a, IBV_QP_STATE);
}

/* Shim thread, every round: finishes the drains a timeout left behind. */
void vmig_suspend_poll_aborts(void)
{
	struct vmig_qp *qp;
	bool left = false;

	if (!abort_pending)
		return;
	pthread_mutex_lock(&vmig_shim.lock);
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!qp->draining)
			continue;
		if (!qp->drained) {
			left = true;
			continue;
		}
		qp->draining = false;
		if (qp_to_rts(qp))
			pr_err("qp %#x: SQD->RTS failed after a late drain",
			       qp->ib.qp_base.qp_num);
		qp_release(qp);
		pr_info("qp %#x: late drain done, running again",
			qp->ib.qp_base.qp_num);
	}
	abort_pending = left;
	pthread_mutex_unlock(&vmig_shim.lock);
}

static void drain_abort(void)
{
	struct vmig_qp *qp;

	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!qp->selected)
			continue;
		if (qp->draining && !qp->drained) {
			if (!qp_to_rts(qp)) {
				qp->draining = false;
				qp_release(qp);
			} else {
				/* still draining: finish when it ends */
				abort_pending = true;
			}
			continue;
		}
		if (qp->draining) {
			qp->draining = false;
			qp_to_rts(qp);
		}
		qp_release(qp);
	}
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
	if (abort_pending)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, EBUSY,
				     "an aborted drain is still finishing");
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		qp->selected = vmig_qp_matches(qp, f);
		qp->drained = qp->draining = false;
		nsel += qp->selected;
	}
	if (f && f->n_remote && !nsel)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_NOT_FOUND, 0,
				     "no connection matches the filter");
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		struct ibv_qp_attr a = {
			.qp_state = IBV_QPS_SQD,
			.en_sqd_async_notify = 1,
		};

		if (!qp->selected)
			continue;
		vmig_quiesce_qp(qp, VMIG_SLOW_HELD);
		if (qp->state != IBV_QPS_RTS ||
		    qp->init.qp_type == IBV_QPT_UD)
			continue;
		qp->draining = true;
		if (vmig_real.modify_qp(qp->real, &a, IBV_QP_STATE |
					IBV_QP_EN_SQD_ASYNC_NOTIFY)) {
			pr_perror("qp %#x: RTS->SQD", qp->ib.qp_base.qp_num);
			qp->draining = false;
			drain_abort();
			return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_VERBS,
					     errno, "modify to SQD failed");
		}
	}
	deadline = t0 + (uint64_t)tmo * 1000;
	for (;;) {
		all = true;
		vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
			if (qp->draining && !qp->drained)
				all = false;
		if (all || vmig_now_us() >= deadline)
			break;
		vmig_events_pump(5);
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
		if (qp->draining) {
			qp->draining = false;
			if (qp_to_rts(qp))
				pr_perror("qp %#x: SQD->RTS",
					  qp->ib.qp_base.qp_num);
		}
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
