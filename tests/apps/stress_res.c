// SPDX-License-Identifier: MIT
/*
 * rdma_stress: verbs resources (device, PD, CQs, QPs, MRs) and their
 * state transitions; everything is destroyed in stress_res_close().
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "rdma_stress.h"

static uint32_t mtu_bytes(enum ibv_mtu m)
{
	return 128u << m;
}

static bool gid_is_ipv4(const union ibv_gid *g)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					    0xff, 0xff };

	return !memcmp(g->raw, prefix, sizeof(prefix));
}

static bool gid_is_zero(const union ibv_gid *g)
{
	static const uint8_t zero[16];

	return !memcmp(g->raw, zero, sizeof(zero));
}

static int open_device(struct stress_ctx *c)
{
	const struct stress_opts *o = c->o;
	struct ibv_device **list;
	struct ibv_device *dev = NULL;
	int n = 0;

	list = ibv_get_device_list(&n);
	if (!list) {
		stress_perr("ibv_get_device_list", errno);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (!o->dev || !strcmp(ibv_get_device_name(list[i]), o->dev)) {
			dev = list[i];
			break;
		}
	}
	if (!dev) {
		if (o->dev)
			stress_err("RDMA device '%s' not found (%d devices)",
				   o->dev, n);
		else
			stress_err("no RDMA device found");
		ibv_free_device_list(list);
		return -1;
	}
	c->ctx = ibv_open_device(dev);
	if (!c->ctx) {
		fprintf(stderr, "rdma_stress: ibv_open_device(%s): %s\n",
			ibv_get_device_name(dev), strerror(errno));
		ibv_free_device_list(list);
		return -1;
	}
	ibv_free_device_list(list);
	return 0;
}

static int pick_gid(struct stress_ctx *c)
{
	const struct stress_opts *o = c->o;
	int ret;

	if (c->pattr.link_layer != IBV_LINK_LAYER_ETHERNET && o->gidx < 0) {
		c->gidx = -1;	/* InfiniBand: LID routed */
		return 0;
	}
	if (o->gidx >= 0) {
		if (o->gidx >= c->pattr.gid_tbl_len) {
			stress_err("GID index %d out of range (table of %d)",
				   o->gidx, c->pattr.gid_tbl_len);
			return -1;
		}
		c->gidx = o->gidx;
	} else {
		int first = -1;

		c->gidx = -1;
		for (int i = 0; i < c->pattr.gid_tbl_len; i++) {
			union ibv_gid g;

			if (ibv_query_gid(c->ctx, (uint8_t)o->ib_port, i, &g))
				continue;
			if (gid_is_zero(&g))
				continue;
			if (first < 0)
				first = i;
			if (gid_is_ipv4(&g)) {
				c->gidx = i;
				break;
			}
		}
		if (c->gidx < 0)
			c->gidx = first;
		if (c->gidx < 0) {
			stress_err("port %d has no usable GID (is the netdev "
				   "up with an address?)", o->ib_port);
			return -1;
		}
	}
	ret = ibv_query_gid(c->ctx, (uint8_t)o->ib_port, c->gidx, &c->gid);
	if (ret) {
		stress_perr("ibv_query_gid", ret < 0 ? errno : ret);
		return -1;
	}
	if (gid_is_zero(&c->gid)) {
		stress_err("GID index %d of port %d is empty", c->gidx,
			   o->ib_port);
		return -1;
	}
	return 0;
}

static int create_cqs(struct stress_ctx *c, int scqe, int rcqe)
{
	if ((unsigned int)scqe > (unsigned int)c->dattr.max_cqe ||
	    (unsigned int)rcqe > (unsigned int)c->dattr.max_cqe) {
		stress_err("CQs of %d and %d entries exceed the device's "
			   "max_cqe %d: lower --depth or --qps", scqe, rcqe,
			   c->dattr.max_cqe);
		return -1;
	}
	if (c->o->cq_ex) {
		struct ibv_cq_init_attr_ex a = {
			.wc_flags = IBV_WC_EX_WITH_BYTE_LEN |
				    IBV_WC_EX_WITH_IMM |
				    IBV_WC_EX_WITH_QP_NUM |
				    IBV_WC_EX_WITH_SRC_QP,
		};

		a.cqe = (uint32_t)scqe;
		c->scqx = ibv_create_cq_ex(c->ctx, &a);
		if (!c->scqx) {
			stress_perr("ibv_create_cq_ex", errno);
			return -1;
		}
		c->scq = ibv_cq_ex_to_cq(c->scqx);
		a.cqe = (uint32_t)rcqe;
		c->rcqx = ibv_create_cq_ex(c->ctx, &a);
		if (!c->rcqx) {
			stress_perr("ibv_create_cq_ex", errno);
			return -1;
		}
		c->rcq = ibv_cq_ex_to_cq(c->rcqx);
		return 0;
	}
	c->scq = ibv_create_cq(c->ctx, scqe, NULL, NULL, 0);
	if (!c->scq) {
		stress_perr("ibv_create_cq", errno);
		return -1;
	}
	c->rcq = ibv_create_cq(c->ctx, rcqe, NULL, NULL, 0);
	if (!c->rcq) {
		stress_perr("ibv_create_cq", errno);
		return -1;
	}
	return 0;
}

static void *alloc_buf(size_t len)
{
	void *p = NULL;
	size_t rounded = (len + 4095) & ~(size_t)4095;
	int ret = posix_memalign(&p, 4096, rounded);

	if (ret) {
		stress_perr("posix_memalign", ret);
		return NULL;
	}
	memset(p, 0, rounded);
	return p;
}

static struct ibv_mr *reg(struct stress_ctx *c, void *buf, size_t len,
			  int access)
{
	struct ibv_mr *mr = ibv_reg_mr(c->pd, buf, len, access);

	if (!mr)
		fprintf(stderr, "rdma_stress: ibv_reg_mr(%zu bytes): %s\n",
			len, strerror(errno));
	return mr;
}

static int create_qp(struct stress_ctx *c, struct stress_ep *ep)
{
	struct ibv_qp_cap cap = {
		.max_send_wr = ep->sq_depth,
		.max_recv_wr = ep->rq_depth,
		.max_send_sge = 1,
		.max_recv_sge = 1,
	};
	enum ibv_qp_type type = ep->ud ? IBV_QPT_UD : IBV_QPT_RC;

	if (c->o->api_wr) {
		struct ibv_qp_init_attr_ex a = {
			.send_cq = c->scq,
			.recv_cq = c->rcq,
			.cap = cap,
			.qp_type = type,
			.comp_mask = IBV_QP_INIT_ATTR_PD |
				     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
			.pd = c->pd,
		};

		if (ep->ud)
			a.send_ops_flags = IBV_QP_EX_WITH_SEND;
		else
			a.send_ops_flags = IBV_QP_EX_WITH_SEND |
				IBV_QP_EX_WITH_SEND_WITH_IMM |
				IBV_QP_EX_WITH_RDMA_WRITE |
				IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
				IBV_QP_EX_WITH_RDMA_READ |
				IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
				IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD;
		ep->qp = ibv_create_qp_ex(c->ctx, &a);
		if (!ep->qp) {
			stress_perr("ibv_create_qp_ex", errno);
			return -1;
		}
		ep->qpx = ibv_qp_to_qp_ex(ep->qp);
		if (!ep->qpx) {
			stress_err("ibv_qp_to_qp_ex: no extended QP");
			return -1;
		}
	} else {
		struct ibv_qp_init_attr a = {
			.send_cq = c->scq,
			.recv_cq = c->rcq,
			.cap = cap,
			.qp_type = type,
		};

		ep->qp = ibv_create_qp(c->pd, &a);
		if (!ep->qp) {
			stress_perr("ibv_create_qp", errno);
			return -1;
		}
	}
	return 0;
}

static int qp_to_init(struct stress_ctx *c, struct stress_ep *ep)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = (uint8_t)c->o->ib_port,
	};
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
	int ret;

	if (ep->ud) {
		a.qkey = STRESS_UD_QKEY;
		mask |= IBV_QP_QKEY;
	} else {
		a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				    IBV_ACCESS_REMOTE_READ |
				    IBV_ACCESS_REMOTE_ATOMIC;
		mask |= IBV_QP_ACCESS_FLAGS;
	}
	ret = ibv_modify_qp(ep->qp, &a, mask);
	if (ret) {
		stress_perr("ibv_modify_qp(INIT)", ret);
		return -1;
	}
	return 0;
}

int stress_post_recv(struct stress_ep *ep, uint32_t slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(ep->rbuf + (size_t)slot * ep->rbuf_size),
		.length = ep->rbuf_size,
		.lkey = ep->rmr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = stress_wrid(ep->index, true, slot),
		.sg_list = &sge,
		.num_sge = 1,
	};
	struct ibv_recv_wr *bad = NULL;
	int ret = ibv_post_recv(ep->qp, &wr, &bad);

	if (ret) {
		stress_perr("ibv_post_recv", ret);
		return -1;
	}
	return 0;
}

static int ud_to_rts(struct stress_ep *ep)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTR };
	int ret = ibv_modify_qp(ep->qp, &a, IBV_QP_STATE);

	if (ret) {
		stress_perr("ibv_modify_qp(UD RTR)", ret);
		return -1;
	}
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = ep->psn;
	ret = ibv_modify_qp(ep->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
	if (ret) {
		stress_perr("ibv_modify_qp(UD RTS)", ret);
		return -1;
	}
	return 0;
}

static int ep_open(struct stress_ctx *c, struct stress_ep *ep,
		   unsigned int index, bool ud)
{
	const struct stress_opts *o = c->o;
	uint32_t max_wr = (uint32_t)c->dattr.max_qp_wr;

	ep->index = index;
	ep->ud = ud;
	ep->rq_depth = o->depth;
	ep->sq_depth = o->depth * 2 < 16 ? 16 : o->depth * 2;
	if (ep->sq_depth > max_wr)
		ep->sq_depth = max_wr;
	if (ep->rq_depth > max_wr) {
		stress_err("--depth %u exceeds the device's max_qp_wr %u",
			   o->depth, max_wr);
		return -1;
	}
	ep->msg_size = o->size;
	if (ud) {
		uint32_t mtu = mtu_bytes(c->pattr.active_mtu);

		if (ep->msg_size > mtu)
			ep->msg_size = mtu;
		ep->rbuf_size = ep->msg_size + STRESS_GRH_LEN;
	} else {
		ep->rbuf_size = ep->msg_size;
	}
	ep->psn = (uint32_t)random() & 0xffffff;
	ep->slots = calloc(ep->sq_depth, sizeof(*ep->slots));
	if (!ep->slots) {
		stress_perr("calloc", errno);
		return -1;
	}
	ep->lbuf = alloc_buf((size_t)ep->sq_depth * ep->msg_size);
	ep->rbuf = alloc_buf((size_t)ep->rq_depth * ep->rbuf_size);
	if (!ep->lbuf || !ep->rbuf)
		return -1;
	ep->lmr = reg(c, ep->lbuf, (size_t)ep->sq_depth * ep->msg_size,
		      IBV_ACCESS_LOCAL_WRITE);
	if (!ep->lmr)
		return -1;
	ep->rmr = reg(c, ep->rbuf, (size_t)ep->rq_depth * ep->rbuf_size,
		      IBV_ACCESS_LOCAL_WRITE);
	if (!ep->rmr)
		return -1;
	if (!ud) {
		ep->xlen = stress_x_read(ep, STRESS_READ_SLOTS);
		ep->xbuf = alloc_buf(ep->xlen);
		if (!ep->xbuf)
			return -1;
		for (uint32_t s = 0; s < STRESS_READ_SLOTS; s++)
			stress_read_pattern(ep->xbuf + stress_x_read(ep, s),
					    ep->msg_size, c->seed, index, s);
		ep->xmr = reg(c, ep->xbuf, ep->xlen,
			      IBV_ACCESS_LOCAL_WRITE |
			      IBV_ACCESS_REMOTE_WRITE |
			      IBV_ACCESS_REMOTE_READ |
			      IBV_ACCESS_REMOTE_ATOMIC);
		if (!ep->xmr)
			return -1;
	}
	if (create_qp(c, ep) || qp_to_init(c, ep))
		return -1;
	for (uint32_t s = 0; s < ep->rq_depth; s++)
		if (stress_post_recv(ep, s))
			return -1;
	if (ud && ud_to_rts(ep))
		return -1;
	ep->flow.credits = o->depth;
	return 0;
}

/* Everything up to QPs in INIT (RC) or RTS (UD) with receives posted. */
int stress_res_open(struct stress_ctx *c, const struct stress_opts *o)
{
	int ret, scqe = 0, rcqe = 0;

	memset(c, 0, sizeof(*c));
	c->o = o;
	c->gidx = -1;
	c->seed = ((uint64_t)random() << 32) ^ (uint64_t)random() ^
		  (uint64_t)getpid();

	if (open_device(c))
		return -1;
	ret = ibv_query_device(c->ctx, &c->dattr);
	if (ret) {
		stress_perr("ibv_query_device", ret);
		return -1;
	}
	ret = ibv_query_port(c->ctx, (uint8_t)o->ib_port, &c->pattr);
	if (ret) {
		fprintf(stderr, "rdma_stress: ibv_query_port(%d): %s\n",
			o->ib_port, strerror(ret));
		return -1;
	}
	if (c->pattr.state != IBV_PORT_ACTIVE)
		stress_err("warning: port %d is %s, not active", o->ib_port,
			   ibv_port_state_str(c->pattr.state));
	if (pick_gid(c))
		return -1;
	if ((o->ops & STRESS_OP_ATOMIC) &&
	    c->dattr.atomic_cap == IBV_ATOMIC_NONE) {
		stress_err("device %s has no atomics: run without 'atomic' "
			   "in --ops", ibv_get_device_name(c->ctx->device));
		return -1;
	}
	c->rd_atomic = 16;
	if (c->dattr.max_qp_rd_atom < c->rd_atomic)
		c->rd_atomic = (uint8_t)c->dattr.max_qp_rd_atom;
	if (c->dattr.max_qp_init_rd_atom < c->rd_atomic)
		c->rd_atomic = (uint8_t)c->dattr.max_qp_init_rd_atom;
	if (!c->rd_atomic && (o->ops & (STRESS_OP_READ | STRESS_OP_ATOMIC))) {
		stress_err("device allows no outstanding RDMA READ/atomic");
		return -1;
	}

	c->pd = ibv_alloc_pd(c->ctx);
	if (!c->pd) {
		stress_perr("ibv_alloc_pd", errno);
		return -1;
	}
	c->nrc = o->nqps;
	c->rc = calloc(c->nrc, sizeof(*c->rc));
	if (!c->rc) {
		stress_perr("calloc", errno);
		return -1;
	}
	if (o->ops & STRESS_OP_UD) {
		c->ud = calloc(1, sizeof(*c->ud));
		if (!c->ud) {
			stress_perr("calloc", errno);
			return -1;
		}
	}
	for (unsigned int i = 0; i <= c->nrc; i++) {
		uint32_t sq = o->depth * 2 < 16 ? 16 : o->depth * 2;

		if (i == c->nrc && !c->ud)
			break;
		scqe += (int)sq;
		rcqe += (int)o->depth;
	}
	if (create_cqs(c, scqe, rcqe))
		return -1;
	for (unsigned int i = 0; i < c->nrc; i++)
		if (ep_open(c, &c->rc[i], i, false))
			return -1;
	if (c->ud && ep_open(c, c->ud, STRESS_UD_INDEX, true))
		return -1;

	if (o->verbose) {
		char gid[64] = "-";

		if (c->gidx >= 0)
			snprintf(gid, sizeof(gid), "%d", c->gidx);
		stress_err("device %s port %d gid index %s lid %u mtu %u "
			   "rd_atomic %u api %s cq %s",
			   ibv_get_device_name(c->ctx->device), o->ib_port, gid,
			   c->pattr.lid, mtu_bytes(c->pattr.active_mtu),
			   c->rd_atomic, o->api_wr ? "wr" : "classic",
			   o->cq_ex ? "ex" : "classic");
	}
	return 0;
}

void stress_res_info(const struct stress_ctx *c, struct stress_info *in)
{
	memset(in, 0, sizeof(*in));
	in->lid = c->pattr.lid;
	memcpy(in->gid, c->gid.raw, 16);
	in->mtu = (uint8_t)c->pattr.active_mtu;
	in->rd_atomic = c->rd_atomic;
	in->nqps = c->nrc;
	in->seed = c->seed;
	if (c->ud) {
		in->ud.qpn = c->ud->qp->qp_num;
		in->ud.psn = c->ud->psn;
	}
	for (unsigned int i = 0; i < c->nrc; i++) {
		const struct stress_ep *ep = &c->rc[i];

		in->rc[i].qpn = ep->qp->qp_num;
		in->rc[i].psn = ep->psn;
		in->rc[i].rkey = ep->xmr->rkey;
		in->rc[i].addr = (uintptr_t)ep->xbuf;
	}
}

static void fill_ah(const struct stress_ctx *c, const struct stress_info *peer,
		    struct ibv_ah_attr *ah)
{
	memset(ah, 0, sizeof(*ah));
	ah->dlid = peer->lid;
	ah->port_num = (uint8_t)c->o->ib_port;
	if (c->gidx >= 0) {
		ah->is_global = 1;
		memcpy(ah->grh.dgid.raw, peer->gid, 16);
		ah->grh.sgid_index = (uint8_t)c->gidx;
		ah->grh.hop_limit = 64;
	}
}

/* Moves the RC QPs to RTS against the peer and creates the UD AH. */
int stress_res_connect(struct stress_ctx *c, const struct stress_info *peer)
{
	enum ibv_mtu mtu = c->pattr.active_mtu;
	uint8_t rd_atomic = c->rd_atomic;
	int ret;

	if (peer->nqps != c->nrc) {
		stress_err("the peer has %u RC QPs, we have %u", peer->nqps,
			   c->nrc);
		return -1;
	}
	c->peer_seed = peer->seed;
	if (peer->mtu < mtu)
		mtu = (enum ibv_mtu)peer->mtu;
	if (peer->rd_atomic < rd_atomic)
		rd_atomic = peer->rd_atomic;

	for (unsigned int i = 0; i < c->nrc; i++) {
		struct stress_ep *ep = &c->rc[i];
		struct ibv_qp_attr a = {
			.qp_state = IBV_QPS_RTR,
			.path_mtu = mtu,
			.dest_qp_num = peer->rc[i].qpn,
			.rq_psn = peer->rc[i].psn,
			.max_dest_rd_atomic = c->rd_atomic,
			.min_rnr_timer = 12,
		};

		ep->rqpn = peer->rc[i].qpn;
		ep->rpsn = peer->rc[i].psn;
		ep->rkey = peer->rc[i].rkey;
		ep->raddr = peer->rc[i].addr;
		ep->rseed = peer->seed;
		fill_ah(c, peer, &a.ah_attr);
		ret = ibv_modify_qp(ep->qp, &a,
				    IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				    IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				    IBV_QP_MAX_DEST_RD_ATOMIC |
				    IBV_QP_MIN_RNR_TIMER);
		if (ret) {
			stress_perr("ibv_modify_qp(RTR)", ret);
			return -1;
		}
		memset(&a, 0, sizeof(a));
		a.qp_state = IBV_QPS_RTS;
		a.timeout = c->o->qp_timeout;
		a.retry_cnt = 7;
		a.rnr_retry = 7;	/* infinite */
		a.sq_psn = ep->psn;
		a.max_rd_atomic = rd_atomic;
		ret = ibv_modify_qp(ep->qp, &a,
				    IBV_QP_STATE | IBV_QP_TIMEOUT |
				    IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				    IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
		if (ret) {
			stress_perr("ibv_modify_qp(RTS)", ret);
			return -1;
		}
	}
	if (c->ud) {
		struct ibv_ah_attr ah;
		uint32_t peer_mtu = mtu_bytes((enum ibv_mtu)peer->mtu);

		if (!peer->ud.qpn) {
			stress_err("the peer has no UD QP");
			return -1;
		}
		fill_ah(c, peer, &ah);
		c->ud->ah = ibv_create_ah(c->pd, &ah);
		if (!c->ud->ah) {
			stress_perr("ibv_create_ah", errno);
			return -1;
		}
		c->ud->rqpn = peer->ud.qpn;
		c->ud->rpsn = peer->ud.psn;
		c->ud->rseed = peer->seed;
		c->ud->rgrh = c->gidx >= 0;
		memcpy(c->ud->rgid, peer->gid, 16);
		if (c->ud->msg_size > peer_mtu)
			c->ud->msg_size = peer_mtu;
	}
	return 0;
}

static int ep_close(struct stress_ep *ep)
{
	int ret, rc = 0;

	if (ep->qp) {
		ret = ibv_destroy_qp(ep->qp);
		if (ret) {
			stress_perr("ibv_destroy_qp", ret);
			rc = -1;
		}
	}
	if (ep->ah) {
		ret = ibv_destroy_ah(ep->ah);
		if (ret) {
			stress_perr("ibv_destroy_ah", ret);
			rc = -1;
		}
	}
	struct ibv_mr *mrs[] = { ep->lmr, ep->rmr, ep->xmr };

	for (size_t i = 0; i < sizeof(mrs) / sizeof(mrs[0]); i++) {
		if (!mrs[i])
			continue;
		ret = ibv_dereg_mr(mrs[i]);
		if (ret) {
			stress_perr("ibv_dereg_mr", ret);
			rc = -1;
		}
	}
	free(ep->lbuf);
	free(ep->rbuf);
	free(ep->xbuf);
	free(ep->slots);
	memset(ep, 0, sizeof(*ep));
	return rc;
}

/* Destroys whatever stress_res_open() and stress_res_connect() made. */
void stress_res_close(struct stress_ctx *c)
{
	int ret;

	if (c->ud) {
		ep_close(c->ud);
		free(c->ud);
		c->ud = NULL;
	}
	for (unsigned int i = 0; c->rc && i < c->nrc; i++)
		ep_close(&c->rc[i]);
	free(c->rc);
	c->rc = NULL;
	if (c->scq) {
		ret = ibv_destroy_cq(c->scq);
		if (ret)
			stress_perr("ibv_destroy_cq", ret);
	}
	if (c->rcq) {
		ret = ibv_destroy_cq(c->rcq);
		if (ret)
			stress_perr("ibv_destroy_cq", ret);
	}
	c->scq = c->rcq = NULL;
	c->scqx = c->rcqx = NULL;
	if (c->pd) {
		ret = ibv_dealloc_pd(c->pd);
		if (ret)
			stress_perr("ibv_dealloc_pd", ret);
		c->pd = NULL;
	}
	if (c->ctx) {
		ret = ibv_close_device(c->ctx);
		if (ret)
			stress_perr("ibv_close_device", ret);
		c->ctx = NULL;
	}
}
