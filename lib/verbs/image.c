// SPDX-License-Identifier: MIT
/* The verbs image (proto/verbs_image.proto) of this process's shadow
 * objects: what CAPTURE and TEARDOWN report and a restore elsewhere needs. */
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"

#define ARR(r, n, type) vmig_arena_alloc((r)->arena, ((n) + 1) * sizeof(type))
#define NEW(r, var, init) do { \
	var = vmig_arena_alloc((r)->arena, sizeof(*var)); \
	init(var); \
} while (0)
#define SET(m, f, v) do { (m)->has_##f = 1; (m)->f = (v); } while (0)

static ProtobufCBinaryData bytes(struct vmig_req *r, const void *p, size_t n)
{
	ProtobufCBinaryData b = { n, vmig_arena_alloc(r->arena, n) };

	memcpy(b.data, p, n);
	return b;
}

static Vmig__AhAttrImage *ah_attr(struct vmig_req *r,
				  const struct ibv_ah_attr *a)
{
	Vmig__AhAttrImage *m;

	NEW(r, m, vmig__ah_attr_image__init);
	SET(m, dgid, bytes(r, &a->grh.dgid, 16));
	SET(m, flow_label, a->grh.flow_label);
	SET(m, sgid_index, a->grh.sgid_index);
	SET(m, hop_limit, a->grh.hop_limit);
	SET(m, traffic_class, a->grh.traffic_class);
	SET(m, dlid, a->dlid);
	SET(m, sl, a->sl);
	SET(m, src_path_bits, a->src_path_bits);
	SET(m, static_rate, a->static_rate);
	SET(m, is_global, a->is_global);
	SET(m, port_num, a->port_num);
	return m;
}

static Vmig__RecvWrImage **recvs(struct vmig_req *r,
				 const struct vmig_rring *ring, uint32_t n)
{
	Vmig__RecvWrImage **v = ARR(r, n, *v);
	uint32_t i, k;

	for (i = 0; i < n; i++) {
		const struct vmig_recv_ent *e = vmig_rring_last(ring, n, i);
		Vmig__RecvWrImage *w;

		NEW(r, w, vmig__recv_wr_image__init);
		SET(w, wr_id, e->wr_id);
		w->sg = ARR(r, e->num_sge, *w->sg);
		for (k = 0; k < e->num_sge; k++) {
			Vmig__SgeImage *s;

			NEW(r, s, vmig__sge_image__init);
			SET(s, addr, e->sge[k].addr);
			SET(s, length, e->sge[k].length);
			SET(s, virt_lkey, e->sge[k].lkey);
			w->sg[w->n_sg++] = s;
		}
		v[i] = w;
	}
	return v;
}

struct map_acc {
	struct vmig_req *r;
	Vmig__HandleMap ***v;
	size_t *n;
};

static void map_add(uint32_t virt, uint32_t phys, void *arg)
{
	struct map_acc *a = arg;
	Vmig__HandleMap *m, **nv;

	NEW(a->r, m, vmig__handle_map__init);
	SET(m, virt, virt);
	SET(m, phys, phys);
	nv = ARR(a->r, *a->n + 1, *nv);
	if (*a->n)
		memcpy(nv, *a->v, *a->n * sizeof(*nv));
	nv[(*a->n)++] = m;
	*a->v = nv;
}

static void maps(struct vmig_req *r, struct vmig_hmap *h,
		 Vmig__HandleMap ***v, size_t *n)
{
	struct map_acc a = { r, v, n };

	vmig_hmap_foreach(h, map_add, &a);
}

Vmig__VerbsImage *vmig_image_build(struct vmig_req *r)
{
	Vmig__VerbsImage *img;
	struct vmig_ctx *ctx;
	struct vmig_pd *pd;
	struct vmig_mr *mr;
	struct vmig_chan *ch;
	struct vmig_cq *cq;
	struct vmig_srq *srq;
	struct vmig_qp *qp;
	struct vmig_ah *ah;
	size_t n;

	NEW(r, img, vmig__verbs_image__init);
	SET(img, version, 1);
	img->guest = vmig_shim.guest;
	SET(img, pid, (uint32_t)getpid());
#define COUNT(list, type) ({ size_t c_ = 0; type *p_; \
	vmig_list_for_each(p_, &vmig_shim.list, type, link) { c_++; } c_; })
	n = COUNT(ctxs, struct vmig_ctx);
	img->devices = ARR(r, n, *img->devices);
	vmig_list_for_each(ctx, &vmig_shim.ctxs, struct vmig_ctx, link) {
		Vmig__DeviceImage *d;

		NEW(r, d, vmig__device_image__init);
		d->name = ctx->devname;
		SET(d, node_guid, ctx->node_guid);
		SET(d, vctx_id, ctx->id);
		SET(d, virt_lid, ctx->virt_lid);
		if (ctx->ngids) {
			SET(d, port_num, ctx->gids[0].port);
			SET(d, gid_index, (uint32_t)ctx->gids[0].index);
			SET(d, virt_gid, bytes(r, &ctx->gids[0].virt, 16));
		}
		img->devices[img->n_devices++] = d;
	}
	n = COUNT(pds, struct vmig_pd);
	img->pds = ARR(r, n, *img->pds);
	vmig_list_for_each(pd, &vmig_shim.pds, struct vmig_pd, link) {
		Vmig__PdImage *m;

		NEW(r, m, vmig__pd_image__init);
		SET(m, id, pd->id);
		SET(m, vctx_id, pd->ctx->id);
		img->pds[img->n_pds++] = m;
	}
	n = COUNT(mrs, struct vmig_mr);
	img->mrs = ARR(r, n, *img->mrs);
	vmig_list_for_each(mr, &vmig_shim.mrs, struct vmig_mr, link) {
		Vmig__MrImage *m;

		NEW(r, m, vmig__mr_image__init);
		SET(m, id, mr->id);
		SET(m, pd_id, mr->pd->id);
		SET(m, addr, (uintptr_t)mr->ib.addr);
		SET(m, length, mr->ib.length);
		SET(m, iova, mr->iova);
		SET(m, access, (uint32_t)mr->access);
		SET(m, virt_lkey, mr->ib.lkey);
		SET(m, virt_rkey, mr->ib.rkey);
		img->mrs[img->n_mrs++] = m;
	}
	n = COUNT(chans, struct vmig_chan);
	img->channels = ARR(r, n, *img->channels);
	vmig_list_for_each(ch, &vmig_shim.chans, struct vmig_chan, link) {
		Vmig__CompChannelImage *m;

		NEW(r, m, vmig__comp_channel_image__init);
		SET(m, id, ch->id);
		SET(m, vctx_id, ch->ctx->id);
		img->channels[img->n_channels++] = m;
	}
	n = COUNT(cqs, struct vmig_cq);
	img->cqs = ARR(r, n, *img->cqs);
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link) {
		Vmig__CqImage *m;
		uint32_t i;

		NEW(r, m, vmig__cq_image__init);
		SET(m, id, cq->id);
		SET(m, vctx_id, cq->ctx->id);
		SET(m, cqe, (uint32_t)cq->cqe);
		SET(m, comp_vector, cq->comp_vector);
		SET(m, channel_id, cq->chan ? cq->chan->id : 0);
		SET(m, extended, cq->extended);
		SET(m, wc_flags, cq->wc_flags);
		pthread_mutex_lock(&cq->lock);
		m->buffered = ARR(r, cq->buf_n, *m->buffered);
		for (i = 0; i < cq->buf_n; i++) {
			const struct ibv_wc *wc = &cq->buf[cq->buf_head + i];
			Vmig__CompletionImage *c;

			NEW(r, c, vmig__completion_image__init);
			SET(c, wr_id, wc->wr_id);
			SET(c, status, wc->status);
			SET(c, opcode, wc->opcode);
			SET(c, vendor_err, wc->vendor_err);
			SET(c, byte_len, wc->byte_len);
			SET(c, imm_data, wc->imm_data);
			SET(c, virt_qp_num, wc->qp_num);
			SET(c, virt_src_qp, wc->src_qp);
			SET(c, wc_flags, wc->wc_flags);
			SET(c, pkey_index, wc->pkey_index);
			SET(c, slid, wc->slid);
			SET(c, sl, wc->sl);
			SET(c, dlid_path_bits, wc->dlid_path_bits);
			m->buffered[m->n_buffered++] = c;
		}
		pthread_mutex_unlock(&cq->lock);
		img->cqs[img->n_cqs++] = m;
	}
	n = COUNT(srqs, struct vmig_srq);
	img->srqs = ARR(r, n, *img->srqs);
	vmig_list_for_each(srq, &vmig_shim.srqs, struct vmig_srq, link) {
		Vmig__SrqImage *m;
		uint32_t o = srq->real ? 0 : srq->outstanding;

		NEW(r, m, vmig__srq_image__init);
		SET(m, id, srq->id);
		SET(m, pd_id, srq->pd->id);
		SET(m, max_wr, srq->attr.max_wr);
		SET(m, max_sge, srq->attr.max_sge);
		SET(m, srq_limit, srq->attr.srq_limit);
		m->posted = recvs(r, &srq->ring, o);
		m->n_posted = o;
		img->srqs[img->n_srqs++] = m;
	}
	n = COUNT(qps, struct vmig_qp);
	img->qps = ARR(r, n, *img->qps);
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		Vmig__QpImage *m;
		const struct ibv_qp_attr *a = &qp->attr;
		uint32_t o = qp->real ? 0 : qp->outstanding;

		NEW(r, m, vmig__qp_image__init);
		SET(m, id, qp->id);
		SET(m, virt_qpn, qp->ib.qp_base.qp_num);
		SET(m, qp_type, qp->init.qp_type);
		SET(m, pd_id, qp->pd->id);
		SET(m, send_cq_id, qp->scq ? qp->scq->id : 0);
		SET(m, recv_cq_id, qp->rcq ? qp->rcq->id : 0);
		SET(m, srq_id, qp->srq ? qp->srq->id : 0);
		SET(m, max_send_wr, qp->init.cap.max_send_wr);
		SET(m, max_recv_wr, qp->init.cap.max_recv_wr);
		SET(m, max_send_sge, qp->init.cap.max_send_sge);
		SET(m, max_recv_sge, qp->init.cap.max_recv_sge);
		SET(m, max_inline_data, qp->init.cap.max_inline_data);
		SET(m, sq_sig_all, qp->init.sq_sig_all);
		SET(m, send_ops_flags, qp->init.send_ops_flags);
		SET(m, state, qp->state);
		SET(m, qkey, a->qkey);
		SET(m, pkey_index, a->pkey_index);
		SET(m, port_num, a->port_num);
		SET(m, access_flags, a->qp_access_flags);
		SET(m, path_mtu, a->path_mtu);
		SET(m, virt_dest_qpn, a->dest_qp_num);
		m->ah_attr = ah_attr(r, &a->ah_attr);
		SET(m, timeout, a->timeout);
		SET(m, retry_cnt, a->retry_cnt);
		SET(m, rnr_retry, a->rnr_retry);
		SET(m, min_rnr_timer, a->min_rnr_timer);
		SET(m, max_rd_atomic, a->max_rd_atomic);
		SET(m, max_dest_rd_atomic, a->max_dest_rd_atomic);
		m->posted_recv = recvs(r, &qp->ring, o);
		m->n_posted_recv = o;
		SET(m, from_rdma_cm, qp->from_rdma_cm);
		img->qps[img->n_qps++] = m;
	}
	n = COUNT(ahs, struct vmig_ah);
	img->ahs = ARR(r, n, *img->ahs);
	vmig_list_for_each(ah, &vmig_shim.ahs, struct vmig_ah, link) {
		Vmig__AhImage *m;

		NEW(r, m, vmig__ah_image__init);
		SET(m, id, ah->id);
		SET(m, pd_id, ah->pd->id);
		m->attr = ah_attr(r, &ah->attr);
		img->ahs[img->n_ahs++] = m;
	}
	maps(r, &vmig_shim.qpn_p2v, &img->qpn_map, &img->n_qpn_map);
	maps(r, &vmig_shim.lkeys, &img->lkey_map, &img->n_lkey_map);
	maps(r, &vmig_shim.rkeys, &img->rkey_map, &img->n_rkey_map);
	return img;
}
