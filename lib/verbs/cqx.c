// SPDX-License-Identifier: MIT
/*
 * CQs made by ibv_create_cq_ex: the shadow ibv_cq_ex forwards the polling
 * API to the real one, translating QP numbers. Completions the shim holds
 * (drained at capture) are handed out first, in poll sessions of their own.
 * A completion of a UD QP is seen once, as the poll reaches it (ud.c).
 */
#include <errno.h>

#include "grh.h"

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

static inline struct vmig_cq *to_cq(struct ibv_cq_ex *x)
{
	return (struct vmig_cq *)x;
}

static void from_buf(struct vmig_cq *cq)
{
	cq->ex_cur = cq->buf[cq->buf_head++];
	cq->buf_n--;
	if (!cq->buf_n) {
		cq->buf_head = 0;
		atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_BUF);
	}
	cq->ib.status = cq->ex_cur.status;
	cq->ib.wr_id = cq->ex_cur.wr_id;
}

/* The current completion, if it is a UD QP's: its receive counted, and
 * with translation on, src_qp and the GRH made virtual. */
static void ex_ud(struct vmig_cq *cq)
{
	struct ibv_cq_ex *r = cq->realx;
	struct ibv_wc wc = {
		.wr_id = r->wr_id,
		.status = r->status,
		.byte_len = VMIG_GRH_LEN,
	};
	struct vmig_qp *qp;

	cq->ex_src_set = false;
	wc.qp_num = r->read_qp_num(r);
	qp = vmig_udrq_find(cq, wc.qp_num);
	if (!qp)
		return;
	if (wc.status == IBV_WC_SUCCESS) {
		wc.opcode = r->read_opcode(r);
		if (r->read_wc_flags)
			wc.wc_flags = r->read_wc_flags(r);
		if (r->read_byte_len)
			wc.byte_len = r->read_byte_len(r);
		if (r->read_src_qp)
			wc.src_qp = r->read_src_qp(r);
	}
	if (!(atomic_load_explicit(&cq->slow, memory_order_relaxed) &
	      VMIG_SLOW_XLATE)) {
		vmig_ud_count(cq, &wc, 1);
		return;
	}
	vmig_ud_recv(cq, qp, &wc);
	cq->ex_src_qp = wc.src_qp;
	cq->ex_src_set = true;
}

static int x_start_poll(struct ibv_cq_ex *x, struct ibv_poll_cq_attr *attr)
{
	struct vmig_cq *cq = to_cq(x);
	uint32_t slow;
	int ret;

	atomic_fetch_add_explicit(&cq->inflight, 1, memory_order_seq_cst);
	slow = atomic_load_explicit(&cq->slow, memory_order_seq_cst);
	if (unlikely(slow & (VMIG_SLOW_BUF | VMIG_SLOW_GONE |
			     VMIG_SLOW_FENCE | VMIG_SLOW_MARK))) {
		atomic_fetch_sub(&cq->inflight, 1);
		pthread_mutex_lock(&cq->lock);
		/* markers to filter: take the real CQ's completions first */
		if (cq->real && !(atomic_load(&cq->slow) &
				  (VMIG_SLOW_GONE | VMIG_SLOW_FENCE)))
			vmig_cq_drain(cq);
		if (!cq->buf_n) {
			pthread_mutex_unlock(&cq->lock);
			return ENOENT;
		}
		cq->ex_from_buf = true;
		from_buf(cq);
		return 0;	/* cq->lock held until end_poll */
	}
	cq->ex_from_buf = false;
	ret = cq->realx->start_poll(cq->realx, attr);
	if (ret) {
		atomic_fetch_sub_explicit(&cq->inflight, 1,
					  memory_order_release);
		return ret;
	}
	cq->ib.status = cq->realx->status;
	cq->ib.wr_id = cq->realx->wr_id;
	if (unlikely(atomic_load_explicit(&cq->n_udrq, memory_order_relaxed)))
		ex_ud(cq);
	return 0;
}

static int x_next_poll(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);
	int ret;

	if (unlikely(cq->ex_from_buf)) {
		if (!cq->buf_n)
			return ENOENT;
		from_buf(cq);
		return 0;
	}
	ret = cq->realx->next_poll(cq->realx);
	if (!ret) {
		cq->ib.status = cq->realx->status;
		cq->ib.wr_id = cq->realx->wr_id;
		if (unlikely(atomic_load_explicit(&cq->n_udrq,
						  memory_order_relaxed)))
			ex_ud(cq);
	}
	return ret;
}

static void x_end_poll(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	if (unlikely(cq->ex_from_buf)) {
		cq->ex_from_buf = false;
		pthread_mutex_unlock(&cq->lock);
		return;
	}
	cq->realx->end_poll(cq->realx);
	atomic_fetch_sub_explicit(&cq->inflight, 1, memory_order_release);
}

static enum ibv_wc_opcode x_read_opcode(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.opcode :
				 cq->realx->read_opcode(cq->realx);
}

static uint32_t x_read_vendor_err(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.vendor_err :
				 cq->realx->read_vendor_err(cq->realx);
}

static uint32_t x_read_byte_len(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.byte_len :
				 cq->realx->read_byte_len(cq->realx);
}

static __be32 x_read_imm_data(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.imm_data :
				 cq->realx->read_imm_data(cq->realx);
}

static uint32_t x_read_qp_num(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	if (cq->ex_from_buf)
		return cq->ex_cur.qp_num;
	return vmig_hmap_get(&vmig_shim.qpn_p2v,
			     cq->realx->read_qp_num(cq->realx));
}

/* Only a UD QP's src_qp means something: ex_ud() made it virtual. */
static uint32_t x_read_src_qp(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	if (cq->ex_from_buf)
		return cq->ex_cur.src_qp;
	if (cq->ex_src_set)
		return cq->ex_src_qp;
	return cq->realx->read_src_qp(cq->realx);
}

static unsigned int x_read_wc_flags(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.wc_flags :
				 cq->realx->read_wc_flags(cq->realx);
}

/* Passed through: RoCE has no LIDs, the HCA reports 0. */
static uint32_t x_read_slid(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.slid :
				 cq->realx->read_slid(cq->realx);
}

static uint8_t x_read_sl(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.sl : cq->realx->read_sl(cq->realx);
}

static uint8_t x_read_dlid_path_bits(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? cq->ex_cur.dlid_path_bits :
				 cq->realx->read_dlid_path_bits(cq->realx);
}

static uint64_t x_read_completion_ts(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? 0 : cq->realx->read_completion_ts(cq->realx);
}

static uint64_t x_read_completion_wallclock_ns(struct ibv_cq_ex *x)
{
	struct vmig_cq *cq = to_cq(x);

	return cq->ex_from_buf ? 0 :
		cq->realx->read_completion_wallclock_ns(cq->realx);
}

void vmig_cqx_install(struct vmig_cq *cq)
{
	struct ibv_cq_ex *x = &cq->ib;

	x->comp_mask = cq->realx->comp_mask;
	x->start_poll = x_start_poll;
	x->next_poll = x_next_poll;
	x->end_poll = x_end_poll;
	x->read_opcode = x_read_opcode;
	x->read_vendor_err = x_read_vendor_err;
	x->read_byte_len = x_read_byte_len;
	x->read_imm_data = x_read_imm_data;
	x->read_qp_num = x_read_qp_num;
	x->read_src_qp = x_read_src_qp;
	x->read_wc_flags = x_read_wc_flags;
	x->read_slid = x_read_slid;
	x->read_sl = x_read_sl;
	x->read_dlid_path_bits = x_read_dlid_path_bits;
	if (cq->realx->read_completion_ts)
		x->read_completion_ts = x_read_completion_ts;
	if (cq->realx->read_completion_wallclock_ns)
		x->read_completion_wallclock_ns =
			x_read_completion_wallclock_ns;
}

struct ibv_cq_ex *vmig_create_cq_ex(struct ibv_context *ibctx,
				    struct ibv_cq_init_attr_ex *attr)
{
	struct vmig_cq *cq;

	if (attr->comp_mask & ~(uint32_t)IBV_CQ_INIT_ATTR_MASK_FLAGS) {
		pr_warn("ibv_create_cq_ex comp_mask %#x is not supported",
			attr->comp_mask);
		errno = EOPNOTSUPP;
		return NULL;
	}
	cq = vmig_cq_new(vmig_ctx_of(ibctx), (int)attr->cqe, attr->cq_context,
			 attr->channel, (int)attr->comp_vector, true,
			 attr->wc_flags);
	if (!cq)
		return NULL;
	vmig_cqx_install(cq);
	return &cq->ib;
}
