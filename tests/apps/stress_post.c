// SPDX-License-Identifier: MIT
/*
 * rdma_stress: posting and polling through either API: ibv_post_send or
 * ibv_wr_*, ibv_poll_cq or ibv_start_poll/ibv_next_poll/ibv_end_poll.
 */
#include <endian.h>
#include <errno.h>

#include "rdma_stress.h"

#define MAX_CHAIN 4

static int post_classic(struct stress_ep *ep, struct stress_wr *w,
			unsigned int n)
{
	struct ibv_send_wr wr[MAX_CHAIN], *bad = NULL;
	struct ibv_sge sge[MAX_CHAIN];
	int ret;

	memset(wr, 0, sizeof(wr));
	for (unsigned int i = 0; i < n; i++) {
		sge[i] = (struct ibv_sge){
			.addr = (uintptr_t)w[i].addr,
			.length = w[i].len,
			.lkey = w[i].lkey,
		};
		wr[i].wr_id = w[i].wr_id;
		wr[i].sg_list = &sge[i];
		wr[i].num_sge = 1;
		wr[i].send_flags = w[i].signaled ? IBV_SEND_SIGNALED : 0;
		wr[i].next = i + 1 < n ? &wr[i + 1] : NULL;
		switch (w[i].op) {
		case STRESS_WR_SEND:
			wr[i].opcode = IBV_WR_SEND;
			break;
		case STRESS_WR_SEND_IMM:
			wr[i].opcode = IBV_WR_SEND_WITH_IMM;
			wr[i].imm_data = htobe32(w[i].imm);
			break;
		case STRESS_WR_WRITE:
			wr[i].opcode = IBV_WR_RDMA_WRITE;
			break;
		case STRESS_WR_WRITE_IMM:
			wr[i].opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
			wr[i].imm_data = htobe32(w[i].imm);
			break;
		case STRESS_WR_READ:
			wr[i].opcode = IBV_WR_RDMA_READ;
			break;
		case STRESS_WR_FAA:
			wr[i].opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
			break;
		case STRESS_WR_CAS:
			wr[i].opcode = IBV_WR_ATOMIC_CMP_AND_SWP;
			break;
		}
		switch (w[i].op) {
		case STRESS_WR_SEND:
		case STRESS_WR_SEND_IMM:
			break;
		case STRESS_WR_WRITE:
		case STRESS_WR_WRITE_IMM:
		case STRESS_WR_READ:
			wr[i].wr.rdma.remote_addr = w[i].raddr;
			wr[i].wr.rdma.rkey = w[i].rkey;
			break;
		case STRESS_WR_FAA:
		case STRESS_WR_CAS:
			wr[i].wr.atomic.remote_addr = w[i].raddr;
			wr[i].wr.atomic.rkey = w[i].rkey;
			wr[i].wr.atomic.compare_add = w[i].compare_add;
			wr[i].wr.atomic.swap = w[i].swap;
			break;
		}
		if (ep->ud) {
			wr[i].wr.ud.ah = ep->ah;
			wr[i].wr.ud.remote_qpn = ep->rqpn;
			wr[i].wr.ud.remote_qkey = STRESS_UD_QKEY;
		}
	}
	ret = ibv_post_send(ep->qp, wr, &bad);
	if (ret) {
		fprintf(stderr, "rdma_stress: ibv_post_send (qp %u, wr %td of "
			"%u): %s\n", ep->qp->qp_num, bad ? bad - wr : -1, n,
			strerror(ret));
		return -1;
	}
	return 0;
}

static int post_wr(struct stress_ep *ep, struct stress_wr *w, unsigned int n)
{
	struct ibv_qp_ex *qx = ep->qpx;
	int ret;

	ibv_wr_start(qx);
	for (unsigned int i = 0; i < n; i++) {
		qx->wr_id = w[i].wr_id;
		qx->wr_flags = w[i].signaled ? IBV_SEND_SIGNALED : 0;
		switch (w[i].op) {
		case STRESS_WR_SEND:
			ibv_wr_send(qx);
			break;
		case STRESS_WR_SEND_IMM:
			ibv_wr_send_imm(qx, htobe32(w[i].imm));
			break;
		case STRESS_WR_WRITE:
			ibv_wr_rdma_write(qx, w[i].rkey, w[i].raddr);
			break;
		case STRESS_WR_WRITE_IMM:
			ibv_wr_rdma_write_imm(qx, w[i].rkey, w[i].raddr,
					      htobe32(w[i].imm));
			break;
		case STRESS_WR_READ:
			ibv_wr_rdma_read(qx, w[i].rkey, w[i].raddr);
			break;
		case STRESS_WR_FAA:
			ibv_wr_atomic_fetch_add(qx, w[i].rkey, w[i].raddr,
						w[i].compare_add);
			break;
		case STRESS_WR_CAS:
			ibv_wr_atomic_cmp_swp(qx, w[i].rkey, w[i].raddr,
					      w[i].compare_add, w[i].swap);
			break;
		}
		if (ep->ud)
			ibv_wr_set_ud_addr(qx, ep->ah, ep->rqpn,
					   STRESS_UD_QKEY);
		ibv_wr_set_sge(qx, w[i].lkey, (uintptr_t)w[i].addr, w[i].len);
	}
	ret = ibv_wr_complete(qx);
	if (ret) {
		fprintf(stderr, "rdma_stress: ibv_wr_complete (qp %u, %u "
			"WRs): %s\n", ep->qp->qp_num, n, strerror(ret));
		return -1;
	}
	return 0;
}

/* Posts a chain of n (<= MAX_CHAIN) WRs in one call. */
int stress_post_send(const struct stress_ctx *c, struct stress_ep *ep,
		     struct stress_wr *wr, unsigned int n)
{
	if (n > MAX_CHAIN) {
		stress_err("internal: chain of %u WRs", n);
		return -1;
	}
	return c->o->api_wr ? post_wr(ep, wr, n) : post_classic(ep, wr, n);
}

static void read_ex(struct ibv_cq_ex *cq, struct stress_wc *wc)
{
	memset(wc, 0, sizeof(*wc));
	wc->wr_id = cq->wr_id;
	wc->status = cq->status;
	wc->opcode = ibv_wc_read_opcode(cq);
	wc->vendor_err = ibv_wc_read_vendor_err(cq);
	if (wc->status != IBV_WC_SUCCESS)
		return;	/* only wr_id, status and vendor_err are valid */
	wc->wc_flags = ibv_wc_read_wc_flags(cq);
	wc->byte_len = ibv_wc_read_byte_len(cq);
	if (wc->wc_flags & IBV_WC_WITH_IMM)
		wc->imm = be32toh(ibv_wc_read_imm_data(cq));
	wc->qp_num = ibv_wc_read_qp_num(cq);
	wc->src_qp = ibv_wc_read_src_qp(cq);
}

/*
 * Polls up to max completions. With --cq ex every batch holds a single
 * completion (start_poll, end_poll): rxe's next_poll already ends the batch
 * when it finds the CQ empty, so ending it again after ENOENT would be wrong
 * there, while other providers require end_poll after it.
 */
int stress_poll(const struct stress_ctx *c, bool recv, struct stress_wc *wc,
		int max)
{
	if (c->o->cq_ex) {
		struct ibv_cq_ex *cq = recv ? c->rcqx : c->scqx;
		struct ibv_poll_cq_attr attr = { .comp_mask = 0 };
		int n = 0;

		while (n < max) {
			int ret = ibv_start_poll(cq, &attr);

			if (ret == ENOENT)
				break;
			if (ret) {
				stress_perr("ibv_start_poll", ret);
				return -1;
			}
			read_ex(cq, &wc[n++]);
			ibv_end_poll(cq);
		}
		return n;
	}

	struct ibv_wc w[16];
	int n;

	if (max > 16)
		max = 16;
	n = ibv_poll_cq(recv ? c->rcq : c->scq, max, w);
	if (n < 0) {
		stress_err("ibv_poll_cq: failed (%d)", n);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		wc[i] = (struct stress_wc){
			.wr_id = w[i].wr_id,
			.status = w[i].status,
			.opcode = w[i].opcode,
			.vendor_err = w[i].vendor_err,
			.byte_len = w[i].byte_len,
			.imm = (w[i].wc_flags & IBV_WC_WITH_IMM) ?
				       be32toh(w[i].imm_data) : 0,
			.wc_flags = w[i].wc_flags,
			.qp_num = w[i].qp_num,
			.src_qp = w[i].src_qp,
		};
	}
	return n;
}
