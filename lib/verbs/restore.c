// SPDX-License-Identifier: MIT
/*
 * RESTORE: recreate every resource behind the same shadow objects, on the
 * named device (or the one used before, or the first), MRs at the same
 * addresses; new physical handles go into the maps. QPs come back in INIT
 * with their unconsumed receives re-posted in order (UD QPs go on to RTS);
 * RC/UC QPs wait for RECONNECT. The reply carries the new endpoints.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"

static uint32_t fresh_psn(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = (uint32_t)vmig_now_us();
	return v & 0xffffff;
}

/* shim.lock held: RESET -> INIT with the attributes the application set. */
int vmig_qp_to_init(struct vmig_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = qp->attr.pkey_index,
		.port_num = qp->attr.port_num ? qp->attr.port_num : 1,
	};
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;

	if (qp->init.qp_type == IBV_QPT_UD) {
		a.qkey = qp->attr.qkey;
		mask |= IBV_QP_QKEY;
	} else {
		a.qp_access_flags = qp->attr.qp_access_flags;
		if (qp->init.qp_type == IBV_QPT_RC)	/* see qp.c */
			a.qp_access_flags |= IBV_ACCESS_REMOTE_WRITE;
		mask |= IBV_QP_ACCESS_FLAGS;
	}
	return vmig_real.modify_qp(qp->real, &a, mask) ? -errno : 0;
}

/* Re-posts the last n receives of ring to a real QP or SRQ. */
static int repost(struct vmig_rring *ring, uint32_t n, struct ibv_qp *rqp,
		  struct ibv_srq *rsrq)
{
	struct ibv_recv_wr *wrs, *bad;
	struct ibv_sge *sges;
	uint64_t posted = ring->posted;
	int ret;

	if (!n)
		return 0;
	wrs = calloc(n, sizeof(*wrs));
	sges = calloc((size_t)n * ring->max_sge, sizeof(*sges));
	if (!wrs || !sges) {
		free(wrs);
		free(sges);
		return -ENOMEM;
	}
	vmig_rring_chain(ring, n, wrs, sges);
	ret = vmig_post_recv_real(rqp, rsrq, wrs, &bad);
	/* the ring already holds them: it stays as it was */
	ring->posted = posted;
	free(wrs);
	free(sges);
	return ret ? -ret : 0;
}

/* shim.lock held: a new real QP for qp, receives re-posted, in INIT (UD:
 * RTS). Shared with a peer's reset. */
int vmig_qp_revive(struct vmig_qp *qp)
{
	int ret;

	ret = vmig_qp_to_init(qp);
	if (ret)
		return ret;
	if (!qp->srq) {
		ret = repost(&qp->ring, qp->outstanding, qp->real, NULL);
		if (ret)
			return ret;
		/* the next completion is of the oldest one re-posted */
		qp->ring.consumed = qp->ring.posted - qp->outstanding;
	}
	qp->outstanding = 0;
	if (qp->init.qp_type == IBV_QPT_UD && qp->state >= IBV_QPS_RTR &&
	    qp->state != IBV_QPS_ERR) {
		struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTR };

		if (vmig_real.modify_qp(qp->real, &a, IBV_QP_STATE))
			return -errno;
		a.qp_state = IBV_QPS_RTS;
		a.sq_psn = qp->attr.sq_psn;
		if (vmig_real.modify_qp(qp->real, &a,
					IBV_QP_STATE | IBV_QP_SQ_PSN))
			return -errno;
	}
	return 0;
}

int vmig_op_restore(struct vmig_req *r)
{
	const Vmig__Restore *rs = r->in->restore;
	const char *dev = rs && rs->device && *rs->device ? rs->device : NULL;
	struct vmig_ctx *ctx;
	struct vmig_pd *pd;
	struct vmig_mr *mr;
	struct vmig_chan *ch;
	struct vmig_cq *cq;
	struct vmig_srq *srq;
	struct vmig_qp *qp;
	struct vmig_ah *ah;
	Vmig__ReconnectInfo *ri;
	uint64_t t0 = vmig_now_us();
	int ret = 0;

	if (vmig_shim.phase != VMIG_PHASE_TORN_DOWN)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				     "restore in phase %s (teardown first)",
				     vmig_phase_name(vmig_shim.phase));
	if (rs && rs->image)
		pr_info("restore: using the shim's own objects, not the "
			"image sent");
	vmig_list_for_each(ctx, &vmig_shim.ctxs, struct vmig_ctx, link) {
		char name[IBV_SYSFS_NAME_MAX];

		snprintf(name, sizeof(name), "%s", dev ? dev : ctx->devname);
		ret = vmig_ctx_open_real(ctx, name);
		if (ret == -ENODEV && !dev)
			ret = vmig_ctx_open_real(ctx, NULL);
		if (ret)
			return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_VERBS, -ret,
					     "cannot open device %s", name);
	}
	vmig_list_for_each(pd, &vmig_shim.pds, struct vmig_pd, link) {
		pd->real = vmig_real.alloc_pd(pd->ctx->real);
		if (!pd->real)
			goto verbs_err;
	}
	vmig_list_for_each(mr, &vmig_shim.mrs, struct vmig_mr, link)
		if ((ret = vmig_mr_create_real(mr)))
			goto verbs_err;
	vmig_list_for_each(ch, &vmig_shim.chans, struct vmig_chan, link)
		if ((ret = vmig_chan_create_real(ch)))
			goto verbs_err;
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link) {
		pthread_mutex_lock(&cq->lock);
		ret = vmig_cq_create_real(cq);
		if (!ret && cq->armed)
			cq->real->context->ops.req_notify_cq(cq->real,
							     cq->solicited);
		atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_GONE);
		pthread_mutex_unlock(&cq->lock);
		if (ret)
			goto verbs_err;
	}
	vmig_list_for_each(srq, &vmig_shim.srqs, struct vmig_srq, link) {
		pthread_mutex_lock(&srq->lock);
		ret = vmig_srq_create_real(srq);
		if (!ret)
			ret = repost(&srq->ring, srq->outstanding, NULL,
				     srq->real);
		srq->ring.consumed = srq->ring.posted - srq->outstanding;
		srq->outstanding = 0;
		pthread_mutex_unlock(&srq->lock);
		if (ret)
			goto verbs_err;
	}
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		pthread_mutex_lock(&qp->lock);
		ret = vmig_qp_create_real(qp);
		if (!ret) {
			vmig_qp_set_phys(qp, qp->real->qp_num);
			ret = vmig_qp_revive(qp);
		}
		qp->psn = fresh_psn();
		qp->peer_known = false;
		/* posts stay held until RESUME */
		atomic_fetch_and(&qp->slow, ~(uint32_t)VMIG_SLOW_GONE);
		pthread_mutex_unlock(&qp->lock);
		if (ret)
			goto verbs_err;
	}
	vmig_list_for_each(ah, &vmig_shim.ahs, struct vmig_ah, link)
		if ((ret = vmig_ah_create_real(ah)))
			goto verbs_err;
	vmig_ud_learn_own();
	vmig_update_xlate();
	vmig_set_phase(VMIG_PHASE_TORN_DOWN, VMIG_PHASE_RESTORED);
	vmig_req_time(r, "recreate", vmig_now_us() - t0);
	ri = vmig_arena_alloc(r->arena, sizeof(*ri));
	vmig__reconnect_info__init(ri);
	vmig_fill_conns(r, &ri->conns, &ri->n_conns, false);
	r->out->has_type = 1;
	r->out->type = VMIG__CTL_TYPE__CTL_RECONNECT_INFO;
	r->out->reconnect_info = ri;
	return 0;
verbs_err:
	/* Left half restored: a TEARDOWN is refused, the state says so. */
	if (!ret)
		ret = -errno;
	return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_VERBS, -ret,
			     "recreating resources failed: %s",
			     strerror(-ret));
}
