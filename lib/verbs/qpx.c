// SPDX-License-Identifier: MIT
/*
 * The ibv_wr_* API of QPs made by ibv_create_qp_ex: the shadow ibv_qp_ex
 * forwards each builder to the real one (wr_id and wr_flags copied, keys
 * translated). Between wr_start and wr_complete the QP counts as in flight,
 * so a suspend waits for the batch. On a suspended QP the builders build
 * ibv_send_wr copies instead, queued at wr_complete and replayed at resume.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

static inline struct vmig_qp *to_qp(struct ibv_qp_ex *x)
{
	return (struct vmig_qp *)x;
}

static inline struct ibv_qp_ex *real_x(struct vmig_qp *qp)
{
	qp->realx->wr_id = qp->ib.wr_id;
	qp->realx->wr_flags = qp->ib.wr_flags;
	return qp->realx;
}

static inline uint32_t rkey_x(struct vmig_qp *qp, uint32_t rkey)
{
	struct vmig_hmap *rk = atomic_load_explicit(&qp->peer_rkeys,
						    memory_order_relaxed);

	return rk ? vmig_hmap_get(rk, rkey) : rkey;
}

/* Held mode: ends the WR being built and starts one for opcode. */
static void held_next(struct vmig_qp *qp, enum ibv_wr_opcode op)
{
	if (qp->wr_cur.num_sge >= 0 &&
	    vmig_wrq_push(&qp->wr_build, &qp->wr_cur))
		qp->wr_err = ENOMEM;
	memset(&qp->wr_cur, 0, sizeof(qp->wr_cur));
	qp->wr_cur.wr_id = qp->ib.wr_id;
	qp->wr_cur.send_flags = qp->ib.wr_flags;
	qp->wr_cur.opcode = op;
	qp->wr_cur.sg_list = qp->wr_sge;
}

static void x_wr_start(struct ibv_qp_ex *x)
{
	struct vmig_qp *qp = to_qp(x);

	atomic_fetch_add_explicit(&qp->inflight, 1, memory_order_seq_cst);
	if (unlikely(atomic_load_explicit(&qp->slow, memory_order_seq_cst) &
		     (VMIG_SLOW_HELD | VMIG_SLOW_GONE))) {
		atomic_fetch_sub(&qp->inflight, 1);
		qp->wr_held = true;
		qp->wr_err = 0;
		memset(&qp->wr_cur, 0, sizeof(qp->wr_cur));
		qp->wr_cur.num_sge = -1;	/* nothing being built */
		return;
	}
	qp->wr_held = false;
	qp->realx->wr_start(qp->realx);
}

static int x_wr_complete(struct ibv_qp_ex *x)
{
	struct vmig_qp *qp = to_qp(x);
	struct vmig_held_wr *h;
	int ret;

	if (unlikely(qp->wr_held)) {
		if (qp->wr_cur.num_sge >= 0 &&
		    vmig_wrq_push(&qp->wr_build, &qp->wr_cur))
			qp->wr_err = ENOMEM;
		ret = qp->wr_err;
		pthread_mutex_lock(&qp->lock);
		while ((h = vmig_wrq_pop(&qp->wr_build))) {
			if (!ret)
				ret = vmig_wrq_push(&qp->held, &h->wr) ?
					ENOMEM : 0;
			free(h);
		}
		pthread_mutex_unlock(&qp->lock);
		qp->wr_held = false;
		return ret;
	}
	ret = qp->realx->wr_complete(qp->realx);
	atomic_fetch_sub_explicit(&qp->inflight, 1, memory_order_release);
	if (unlikely(ret == EACCES))	/* queued, doorbell refused */
		ret = vmig_doorbell(qp->real);
	return ret;
}

static void x_wr_abort(struct ibv_qp_ex *x)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		vmig_wrq_dispose(&qp->wr_build);
		qp->wr_held = false;
		return;
	}
	qp->realx->wr_abort(qp->realx);
	atomic_fetch_sub_explicit(&qp->inflight, 1, memory_order_release);
}

static void x_wr_send(struct ibv_qp_ex *x)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		held_next(qp, IBV_WR_SEND);
		return;
	}
	qp->realx->wr_send(real_x(qp));
}

static void x_wr_send_imm(struct ibv_qp_ex *x, __be32 imm)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		held_next(qp, IBV_WR_SEND_WITH_IMM);
		qp->wr_cur.imm_data = imm;
		return;
	}
	qp->realx->wr_send_imm(real_x(qp), imm);
}

static void x_wr_rdma_write(struct ibv_qp_ex *x, uint32_t rkey, uint64_t ra)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		held_next(qp, IBV_WR_RDMA_WRITE);
		qp->wr_cur.wr.rdma.rkey = rkey;
		qp->wr_cur.wr.rdma.remote_addr = ra;
		return;
	}
	qp->realx->wr_rdma_write(real_x(qp), rkey_x(qp, rkey), ra);
}

static void x_wr_rdma_write_imm(struct ibv_qp_ex *x, uint32_t rkey,
				uint64_t ra, __be32 imm)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		held_next(qp, IBV_WR_RDMA_WRITE_WITH_IMM);
		qp->wr_cur.wr.rdma.rkey = rkey;
		qp->wr_cur.wr.rdma.remote_addr = ra;
		qp->wr_cur.imm_data = imm;
		return;
	}
	qp->realx->wr_rdma_write_imm(real_x(qp), rkey_x(qp, rkey), ra, imm);
}

static void x_wr_rdma_read(struct ibv_qp_ex *x, uint32_t rkey, uint64_t ra)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		held_next(qp, IBV_WR_RDMA_READ);
		qp->wr_cur.wr.rdma.rkey = rkey;
		qp->wr_cur.wr.rdma.remote_addr = ra;
		return;
	}
	qp->realx->wr_rdma_read(real_x(qp), rkey_x(qp, rkey), ra);
}

static void x_wr_atomic_cmp_swp(struct ibv_qp_ex *x, uint32_t rkey,
				uint64_t ra, uint64_t cmp, uint64_t swp)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		held_next(qp, IBV_WR_ATOMIC_CMP_AND_SWP);
		qp->wr_cur.wr.atomic.rkey = rkey;
		qp->wr_cur.wr.atomic.remote_addr = ra;
		qp->wr_cur.wr.atomic.compare_add = cmp;
		qp->wr_cur.wr.atomic.swap = swp;
		return;
	}
	qp->realx->wr_atomic_cmp_swp(real_x(qp), rkey_x(qp, rkey), ra, cmp,
				     swp);
}

static void x_wr_atomic_fetch_add(struct ibv_qp_ex *x, uint32_t rkey,
				  uint64_t ra, uint64_t add)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		held_next(qp, IBV_WR_ATOMIC_FETCH_AND_ADD);
		qp->wr_cur.wr.atomic.rkey = rkey;
		qp->wr_cur.wr.atomic.remote_addr = ra;
		qp->wr_cur.wr.atomic.compare_add = add;
		return;
	}
	qp->realx->wr_atomic_fetch_add(real_x(qp), rkey_x(qp, rkey), ra, add);
}

static void x_wr_set_ud_addr(struct ibv_qp_ex *x, struct ibv_ah *ibah,
			     uint32_t rqpn, uint32_t qkey)
{
	struct vmig_qp *qp = to_qp(x);
	struct vmig_ah *ah = vmig_container_of(ibah, struct vmig_ah, ib);

	if (unlikely(qp->wr_held)) {
		qp->wr_cur.wr.ud.ah = ibah;
		qp->wr_cur.wr.ud.remote_qpn = rqpn;
		qp->wr_cur.wr.ud.remote_qkey = qkey;
		return;
	}
	qp->realx->wr_set_ud_addr(qp->realx, ah->real,
				  vmig_ud_remote_qpn(ah, rqpn),
				  qkey);
}

static void x_wr_set_sge(struct ibv_qp_ex *x, uint32_t lkey, uint64_t addr,
			 uint32_t len)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		qp->wr_sge[0] = (struct ibv_sge){ addr, len, lkey };
		qp->wr_cur.num_sge = 1;
		return;
	}
	qp->realx->wr_set_sge(qp->realx, vmig_hmap_get(&vmig_shim.lkeys, lkey),
			      addr, len);
}

static void x_wr_set_sge_list(struct ibv_qp_ex *x, size_t n,
			      const struct ibv_sge *sg)
{
	struct vmig_qp *qp = to_qp(x);
	struct ibv_sge s[16];
	size_t i;

	if (n > 16) {
		qp->wr_err = EINVAL;
		return;
	}
	if (unlikely(qp->wr_held)) {
		memcpy(qp->wr_sge, sg, n * sizeof(*sg));
		qp->wr_cur.num_sge = (int)n;
		return;
	}
	if (!vmig_hmap_count(&vmig_shim.lkeys)) {
		qp->realx->wr_set_sge_list(qp->realx, n, sg);
		return;
	}
	for (i = 0; i < n; i++) {
		s[i] = sg[i];
		s[i].lkey = vmig_hmap_get(&vmig_shim.lkeys, sg[i].lkey);
	}
	qp->realx->wr_set_sge_list(qp->realx, n, s);
}

static void x_wr_set_inline_data(struct ibv_qp_ex *x, void *addr, size_t len)
{
	struct vmig_qp *qp = to_qp(x);

	if (unlikely(qp->wr_held)) {
		qp->wr_sge[0] = (struct ibv_sge){ (uintptr_t)addr,
						  (uint32_t)len, 0 };
		qp->wr_cur.num_sge = 1;
		qp->wr_cur.send_flags |= IBV_SEND_INLINE;
		return;
	}
	qp->realx->wr_set_inline_data(qp->realx, addr, len);
}

static void x_wr_set_inline_data_list(struct ibv_qp_ex *x, size_t n,
				      const struct ibv_data_buf *b)
{
	struct vmig_qp *qp = to_qp(x);
	size_t i;

	if (unlikely(qp->wr_held)) {
		if (n > 16) {
			qp->wr_err = EINVAL;
			return;
		}
		for (i = 0; i < n; i++)
			qp->wr_sge[i] = (struct ibv_sge){
				(uintptr_t)b[i].addr, (uint32_t)b[i].length, 0 };
		qp->wr_cur.num_sge = (int)n;
		qp->wr_cur.send_flags |= IBV_SEND_INLINE;
		return;
	}
	qp->realx->wr_set_inline_data_list(qp->realx, n, b);
}

static void x_unsupported(struct vmig_qp *qp, const char *what)
{
	pr_warn("%s is not supported by vmigrate", what);
	qp->wr_err = EOPNOTSUPP;
}

static void x_wr_bind_mw(struct ibv_qp_ex *x, struct ibv_mw *mw, uint32_t rk,
			 const struct ibv_mw_bind_info *bi)
{
	x_unsupported(to_qp(x), "ibv_wr_bind_mw");
}

static void x_wr_local_inv(struct ibv_qp_ex *x, uint32_t rk)
{
	x_unsupported(to_qp(x), "ibv_wr_local_inv");
}

static void x_wr_send_inv(struct ibv_qp_ex *x, uint32_t rk)
{
	x_unsupported(to_qp(x), "ibv_wr_send_inv");
}

static void x_wr_send_tso(struct ibv_qp_ex *x, void *hdr, uint16_t sz,
			  uint16_t mss)
{
	x_unsupported(to_qp(x), "ibv_wr_send_tso");
}

static void x_wr_set_xrc_srqn(struct ibv_qp_ex *x, uint32_t n)
{
	x_unsupported(to_qp(x), "ibv_wr_set_xrc_srqn");
}

static void x_wr_atomic_write(struct ibv_qp_ex *x, uint32_t rk, uint64_t ra,
			      const void *v)
{
	x_unsupported(to_qp(x), "ibv_wr_atomic_write");
}

void vmig_qpx_install(struct vmig_qp *qp)
{
	struct ibv_qp_ex *x = &qp->ib;

	x->comp_mask = qp->realx->comp_mask;
	x->wr_start = x_wr_start;
	x->wr_complete = x_wr_complete;
	x->wr_abort = x_wr_abort;
	x->wr_send = x_wr_send;
	x->wr_send_imm = x_wr_send_imm;
	x->wr_rdma_write = x_wr_rdma_write;
	x->wr_rdma_write_imm = x_wr_rdma_write_imm;
	x->wr_rdma_read = x_wr_rdma_read;
	x->wr_atomic_cmp_swp = x_wr_atomic_cmp_swp;
	x->wr_atomic_fetch_add = x_wr_atomic_fetch_add;
	x->wr_set_ud_addr = x_wr_set_ud_addr;
	x->wr_set_sge = x_wr_set_sge;
	x->wr_set_sge_list = x_wr_set_sge_list;
	x->wr_set_inline_data = x_wr_set_inline_data;
	x->wr_set_inline_data_list = x_wr_set_inline_data_list;
	x->wr_bind_mw = x_wr_bind_mw;
	x->wr_local_inv = x_wr_local_inv;
	x->wr_send_inv = x_wr_send_inv;
	x->wr_send_tso = x_wr_send_tso;
	x->wr_set_xrc_srqn = x_wr_set_xrc_srqn;
	x->wr_atomic_write = x_wr_atomic_write;
}
