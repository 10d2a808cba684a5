// SPDX-License-Identifier: MIT
/*
 * Queue pairs: virtual QPNs, the attributes the application set (virtual
 * values, replayed after a restore) and the translation of dest_qp_num and
 * the AV on the way in, of query_qp's answer on the way out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

struct vmig_qp *vmig_qp_from_ibv(struct ibv_qp *ibqp)
{
	struct vmig_qp *qp;

	pthread_mutex_lock(&vmig_shim.lock);
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
		if (&qp->ib.qp_base == ibqp) {
			pthread_mutex_unlock(&vmig_shim.lock);
			return qp;
		}
	pthread_mutex_unlock(&vmig_shim.lock);
	return NULL;
}

void vmig_qp_mark_rdma_cm(struct ibv_qp *ibqp)
{
	struct vmig_qp *qp = vmig_qp_from_ibv(ibqp);

	if (qp)
		qp->from_rdma_cm = true;
}

static bool qpn_in_use(uint32_t v)
{
	struct vmig_qp *qp;

	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
		if (qp->ib.qp_base.qp_num == v)
			return true;
	return false;
}

/* shim.lock held: records phys as qp's physical QPN. */
void vmig_qp_set_phys(struct vmig_qp *qp, uint32_t phys)
{
	if (qp->phys_qpn && qp->phys_qpn != phys)
		vmig_hmap_set(&vmig_shim.qpn_p2v, qp->phys_qpn, qp->phys_qpn);
	qp->phys_qpn = phys;
	vmig_hmap_set(&vmig_shim.qpn_p2v, phys, qp->ib.qp_base.qp_num);
}

/* shim.lock held: creates qp->real from qp->init. */
int vmig_qp_create_real(struct vmig_qp *qp)
{
	struct ibv_qp_init_attr_ex a = qp->init;

	a.qp_context = qp;
	a.pd = qp->pd->real;
	a.send_cq = qp->scq ? qp->scq->real : NULL;
	a.recv_cq = qp->rcq ? qp->rcq->real : NULL;
	a.srq = qp->srq ? qp->srq->real : NULL;
	if (qp->is_ex) {
		struct verbs_context *rv =
			verbs_get_ctx_op(qp->ctx->real, create_qp_ex);

		if (!rv)
			return -EOPNOTSUPP;
		qp->real = rv->create_qp_ex(qp->ctx->real, &a);
	} else {
		qp->real = vmig_real.create_qp(a.pd,
					       (struct ibv_qp_init_attr *)&a);
	}
	if (!qp->real)
		return -errno;
	qp->realx = NULL;
	if (qp->is_ex && (qp->init.comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) &&
	    vmig_real.qp_to_qp_ex)
		qp->realx = vmig_real.qp_to_qp_ex(qp->real);
	/* a restore asks for what the first creation got */
	qp->init.cap = a.cap;
	qp->ib.qp_base.handle = qp->real->handle;
	return 0;
}

static struct ibv_qp *qp_create(struct vmig_ctx *ctx,
				struct ibv_qp_init_attr_ex *attr, bool is_ex)
{
	struct vmig_qp *qp;
	int ret;

	if (attr->qp_type != IBV_QPT_RC && attr->qp_type != IBV_QPT_UC &&
	    attr->qp_type != IBV_QPT_UD) {
		pr_warn("QP type %d is not supported by vmigrate",
			attr->qp_type);
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (is_ex && (attr->comp_mask & ~(uint32_t)(IBV_QP_INIT_ATTR_PD |
			IBV_QP_INIT_ATTR_SEND_OPS_FLAGS))) {
		pr_warn("ibv_create_qp_ex comp_mask %#x is not supported",
			attr->comp_mask);
		errno = EOPNOTSUPP;
		return NULL;
	}
	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		errno = ENOMEM;
		return NULL;
	}
	qp->ctx = ctx;
	qp->is_ex = is_ex;
	qp->init = *attr;
	if (!is_ex)
		qp->init.comp_mask = 0;
	qp->pd = vmig_container_of(attr->pd, struct vmig_pd, ib);
	qp->scq = (struct vmig_cq *)attr->send_cq;
	qp->rcq = (struct vmig_cq *)attr->recv_cq;
	qp->srq = attr->srq ?
		vmig_container_of(attr->srq, struct vmig_srq, ib) : NULL;
	qp->state = IBV_QPS_RESET;
	pthread_mutex_init(&qp->lock, NULL);
	vmig_wrq_init(&qp->held);
	vmig_wrq_init(&qp->wr_build);
	pthread_mutex_lock(&vmig_shim.lock);
	ret = ctx->real ? vmig_qp_create_real(qp) : -EAGAIN;
	if (ret)
		goto err;
	attr->cap = qp->init.cap;
	ret = vmig_rring_init(&qp->ring, qp->init.cap.max_recv_wr,
			      qp->init.cap.max_recv_sge);
	if (ret) {
		vmig_real.destroy_qp(qp->real);
		goto err;
	}
	qp->id = vmig_new_id();
	qp->ib.qp_base.context = &ctx->vctx.context;
	qp->ib.qp_base.qp_context = attr->qp_context;
	qp->ib.qp_base.pd = attr->pd;
	qp->ib.qp_base.send_cq = attr->send_cq;
	qp->ib.qp_base.recv_cq = attr->recv_cq;
	qp->ib.qp_base.srq = attr->srq;
	qp->ib.qp_base.state = IBV_QPS_RESET;
	qp->ib.qp_base.qp_type = attr->qp_type;
	pthread_mutex_init(&qp->ib.qp_base.mutex, NULL);
	pthread_cond_init(&qp->ib.qp_base.cond, NULL);
	{
		uint32_t v = qp->real->qp_num;

		while (qpn_in_use(v))
			v = (v + 0x1001) & 0xffffff;
		qp->ib.qp_base.qp_num = v;
	}
	vmig_qp_set_phys(qp, qp->real->qp_num);
	if (qp->realx)
		vmig_qpx_install(qp);
	if (qp->srq && qp->rcq) {
		qp->rcq->srq_count = qp->srq;
		atomic_fetch_or(&qp->rcq->slow, VMIG_SLOW_SRQ);
	}
	vmig_udrq_add(qp);
	vmig_list_add_tail(&vmig_shim.qps, &qp->link);
	vmig_update_xlate();
	pthread_mutex_unlock(&vmig_shim.lock);
	pr_debug("qp %u: virt qpn %#x phys %#x type %d", qp->id,
		 qp->ib.qp_base.qp_num, qp->phys_qpn, attr->qp_type);
	return &qp->ib.qp_base;
err:
	pthread_mutex_unlock(&vmig_shim.lock);
	free(qp);
	errno = -ret;
	return NULL;
}

__attribute__((visibility("default")))
struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct ibv_qp_init_attr_ex ax;
	struct ibv_qp *qp;

	memset(&ax, 0, sizeof(ax));
	memcpy(&ax, attr, sizeof(*attr));
	ax.comp_mask = IBV_QP_INIT_ATTR_PD;
	ax.pd = pd;
	qp = qp_create(vmig_ctx_of(pd->context), &ax, false);
	if (qp)
		attr->cap = ax.cap;
	return qp;
}

struct ibv_qp *vmig_create_qp_ex(struct ibv_context *ibctx,
				 struct ibv_qp_init_attr_ex *attr)
{
	if (!(attr->comp_mask & IBV_QP_INIT_ATTR_PD)) {
		errno = EINVAL;
		return NULL;
	}
	return qp_create(vmig_ctx_of(ibctx), attr, true);
}

__attribute__((visibility("default")))
struct ibv_qp_ex *ibv_qp_to_qp_ex(struct ibv_qp *ibqp)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;

	if (!qp->is_ex ||
	    !(qp->init.comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return &qp->ib;
}

/* Is g (virtual) one of this process's own GIDs: a loopback connection? */
static bool gid_is_own(const union ibv_gid *g)
{
	struct vmig_ctx *ctx;
	int i;

	vmig_list_for_each(ctx, &vmig_shim.ctxs, struct vmig_ctx, link)
		for (i = 0; i < ctx->ngids; i++)
			if (!memcmp(&ctx->gids[i].virt, g, sizeof(*g)))
				return true;
	return false;
}

/*
 * Remote QPN virtual -> physical for qp's connection; shim.lock held.
 * Virtual QPNs are unique per process only: every host numbers its first
 * QPs alike, so a QPN alone does not name a peer. The peer RECONNECT taught
 * this QP comes first, then a peer that moved, then one of this process's
 * own QPs recreated since, but only when the path loops back to this host.
 */
static uint32_t dest_qpn_phys(struct vmig_qp *qp, const struct ibv_qp_attr *a,
			      int mask)
{
	const union ibv_gid *dgid = mask & IBV_QP_AV ? &a->ah_attr.grh.dgid :
				    &qp->attr.ah_attr.grh.dgid;
	uint32_t v = a->dest_qp_num, p;
	struct vmig_qp *q;

	if (qp->peer_known && v == qp->attr.dest_qp_num &&
	    !memcmp(dgid, &qp->attr.ah_attr.grh.dgid, sizeof(*dgid)))
		return qp->peer_phys_qpn;
	if (vmig_rqmap_to_phys(&vmig_shim.rqps, dgid, v, NULL, &p))
		return p;
	if (!gid_is_own(dgid))
		return v;
	vmig_list_for_each(q, &vmig_shim.qps, struct vmig_qp, link)
		if (q->ib.qp_base.qp_num == v && q->phys_qpn)
			return q->phys_qpn;
	return v;
}

/* shim.lock and qp->lock held: attr (virtual) -> the real QP. */
int vmig_qp_modify_real(struct vmig_qp *qp, struct ibv_qp_attr *attr,
			int mask)
{
	struct ibv_qp_attr a = *attr;

	if (mask & IBV_QP_AV && a.ah_attr.is_global)
		vmig_gid_to_phys(&attr->ah_attr.grh.dgid, &a.ah_attr.grh.dgid);
	if (mask & IBV_QP_ALT_PATH && a.alt_ah_attr.is_global)
		vmig_gid_to_phys(&attr->alt_ah_attr.grh.dgid,
				 &a.alt_ah_attr.grh.dgid);
	if (mask & IBV_QP_DEST_QPN)
		a.dest_qp_num = dest_qpn_phys(qp, attr, mask);
	/* the peer's drain marker is a zero-length RDMA WRITE: rxe checks
	 * the QP's access before the length (no memory is exposed: an MR
	 * still needs its own remote-write access and rkey) */
	if (mask & IBV_QP_ACCESS_FLAGS && qp->init.qp_type == IBV_QPT_RC)
		a.qp_access_flags |= IBV_ACCESS_REMOTE_WRITE;
	return vmig_real.modify_qp(qp->real, &a, mask);
}

/* Keeps what the application set, for query_qp and for a restore. */
static void qp_save_attr(struct vmig_qp *qp, const struct ibv_qp_attr *a,
			 int mask)
{
	struct ibv_qp_attr *s = &qp->attr;

	if (mask & IBV_QP_STATE)
		qp->state = s->qp_state = a->qp_state;
	if (mask & IBV_QP_PKEY_INDEX)
		s->pkey_index = a->pkey_index;
	if (mask & IBV_QP_PORT)
		s->port_num = a->port_num;
	if (mask & IBV_QP_QKEY)
		s->qkey = a->qkey;
	if (mask & IBV_QP_ACCESS_FLAGS)
		s->qp_access_flags = a->qp_access_flags;
	if (mask & IBV_QP_PATH_MTU)
		s->path_mtu = a->path_mtu;
	if (mask & IBV_QP_DEST_QPN) {
		/* a new peer chosen by the application */
		if (s->dest_qp_num != a->dest_qp_num)
			qp->peer_known = false;
		s->dest_qp_num = a->dest_qp_num;
	}
	if (mask & IBV_QP_RQ_PSN)
		s->rq_psn = a->rq_psn;
	if (mask & IBV_QP_SQ_PSN)
		s->sq_psn = a->sq_psn;
	if (mask & IBV_QP_AV)
		s->ah_attr = a->ah_attr;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC)
		s->max_dest_rd_atomic = a->max_dest_rd_atomic;
	if (mask & IBV_QP_MIN_RNR_TIMER)
		s->min_rnr_timer = a->min_rnr_timer;
	if (mask & IBV_QP_TIMEOUT)
		s->timeout = a->timeout;
	if (mask & IBV_QP_RETRY_CNT)
		s->retry_cnt = a->retry_cnt;
	if (mask & IBV_QP_RNR_RETRY)
		s->rnr_retry = a->rnr_retry;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC)
		s->max_rd_atomic = a->max_rd_atomic;
	if (mask & IBV_QP_CAP)
		s->cap = a->cap;
	if (mask & IBV_QP_EN_SQD_ASYNC_NOTIFY)
		s->en_sqd_async_notify = a->en_sqd_async_notify;
	qp->attr_mask |= mask;
}

__attribute__((visibility("default")))
int ibv_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;
	int ret;

	pthread_mutex_lock(&vmig_shim.lock);
	pthread_mutex_lock(&qp->lock);
	if (!qp->real || (atomic_load(&qp->slow) & VMIG_SLOW_HELD)) {
		/* Suspended or torn down: the QP belongs to the shim now. */
		pr_warn("qp %#x: modify while suspended refused",
			ibqp->qp_num);
		ret = EAGAIN;
		goto out;
	}
	ret = vmig_qp_modify_real(qp, attr, mask);
	if (!ret) {
		qp_save_attr(qp, attr, mask);
		if (mask & IBV_QP_STATE)
			ibqp->state = attr->qp_state;
		if (mask & IBV_QP_STATE && attr->qp_state == IBV_QPS_RESET) {
			/* a reset drops every posted receive */
			qp->ring.posted = 0;
			qp->ring.consumed = 0;
		}
	}
out:
	pthread_mutex_unlock(&qp->lock);
	pthread_mutex_unlock(&vmig_shim.lock);
	return ret;
}

__attribute__((visibility("default")))
int ibv_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask,
		 struct ibv_qp_init_attr *init)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;
	int ret = 0;

	pthread_mutex_lock(&qp->lock);
	if (qp->real)
		ret = vmig_real.query_qp(qp->real, attr, mask, init);
	else
		*attr = qp->attr;
	if (!ret) {
		/* what the application set, never the shim's SQD or peer */
		attr->qp_state = qp->state;
		attr->cur_qp_state = qp->state;
		attr->dest_qp_num = qp->attr.dest_qp_num;
		attr->ah_attr.grh.dgid = qp->attr.ah_attr.grh.dgid;
		attr->ah_attr.dlid = qp->attr.ah_attr.dlid;
		attr->sq_draining = 0;
		memset(init, 0, sizeof(*init));
		init->qp_context = ibqp->qp_context;
		init->send_cq = ibqp->send_cq;
		init->recv_cq = ibqp->recv_cq;
		init->srq = ibqp->srq;
		init->cap = qp->init.cap;
		init->qp_type = qp->init.qp_type;
		init->sq_sig_all = qp->init.sq_sig_all;
		attr->cap = qp->init.cap;
	}
	pthread_mutex_unlock(&qp->lock);
	return ret;
}

__attribute__((visibility("default")))
int ibv_destroy_qp(struct ibv_qp *ibqp)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (qp->real) {
		vmig_quiesce_qp(qp, VMIG_SLOW_GONE);
		if (qp->marker_ah)
			vmig_real.destroy_ah(qp->marker_ah);
		qp->marker_ah = NULL;
		ret = vmig_real.destroy_qp(qp->real);
		if (ret) {
			atomic_fetch_and(&qp->slow, ~(uint32_t)VMIG_SLOW_GONE);
			pthread_mutex_unlock(&vmig_shim.lock);
			return ret;
		}
	}
	vmig_hmap_set(&vmig_shim.qpn_p2v, qp->phys_qpn, qp->phys_qpn);
	vmig_udrq_del(qp);
	vmig_list_del(&qp->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	vmig_rring_dispose(&qp->ring);
	vmig_wrq_dispose(&qp->held);
	vmig_wrq_dispose(&qp->wr_build);
	free(qp);
	return 0;
}

__attribute__((visibility("default")))
int ibv_query_ece(struct ibv_qp *ibqp, struct ibv_ece *ece)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;

	if (!qp->real || !vmig_real.query_ece)
		return EOPNOTSUPP;
	return vmig_real.query_ece(qp->real, ece);
}

__attribute__((visibility("default")))
int ibv_set_ece(struct ibv_qp *ibqp, struct ibv_ece *ece)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;

	if (!qp->real || !vmig_real.set_ece)
		return EOPNOTSUPP;
	return vmig_real.set_ece(qp->real, ece);
}

__attribute__((visibility("default")))
int ibv_query_qp_data_in_order(struct ibv_qp *ibqp, enum ibv_wr_opcode op,
			       uint32_t flags)
{
	struct vmig_qp *qp = (struct vmig_qp *)ibqp;

	if (!qp->real || !vmig_real.query_qp_data_in_order)
		return 0;
	return vmig_real.query_qp_data_in_order(qp->real, op, flags);
}
