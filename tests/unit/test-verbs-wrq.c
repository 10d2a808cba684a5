// SPDX-License-Identifier: MIT
/* The shim's hold queue (deep copies, inline payloads, order) and the
 * receive ring (the last N receives, wrap-around, chains). */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "verbs/wrq.h"

static void test_hold(void)
{
	struct vmig_wrq q;
	struct vmig_held_wr *h;
	struct ibv_sge sge[2] = { { 0x1000, 64, 11 }, { 0x2000, 32, 12 } };
	struct ibv_send_wr w[3], *bad = NULL;
	char payload[8] = "inline!";
	struct ibv_sge isge = { (uintptr_t)payload, 8, 99 };

	vmig_wrq_init(&q);
	memset(w, 0, sizeof(w));
	w[0].wr_id = 1;
	w[0].opcode = IBV_WR_RDMA_WRITE;
	w[0].sg_list = sge;
	w[0].num_sge = 2;
	w[0].wr.rdma.rkey = 0x55;
	w[0].next = &w[1];
	w[1].wr_id = 2;
	w[1].opcode = IBV_WR_SEND;
	w[1].send_flags = IBV_SEND_INLINE;
	w[1].sg_list = &isge;
	w[1].num_sge = 1;
	w[1].next = &w[2];
	w[2].wr_id = 3;
	w[2].opcode = IBV_WR_SEND;
	is_int(vmig_wrq_push_chain(&q, w, &bad), 0, "chain of 3 held");
	is_int(q.count, 3, "count");
	/* the application reuses everything after the post returned */
	memset(sge, 0, sizeof(sge));
	memcpy(payload, "XXXXXXX", 8);
	h = vmig_wrq_pop(&q);
	ok(h && h->wr.wr_id == 1 && h->wr.num_sge == 2 &&
	   h->wr.sg_list[1].addr == 0x2000 && h->wr.sg_list[1].lkey == 12 &&
	   h->wr.wr.rdma.rkey == 0x55 && !h->wr.next,
	   "first WR deep-copied with its SGEs");
	free(h);
	h = vmig_wrq_pop(&q);
	ok(h && h->wr.wr_id == 2 && h->wr.num_sge == 1 &&
	   h->wr.sg_list[0].length == 8 &&
	   !memcmp((void *)(uintptr_t)h->wr.sg_list[0].addr, "inline!", 8),
	   "inline payload copied at post time");
	free(h);
	h = vmig_wrq_pop(&q);
	ok(h && h->wr.wr_id == 3 && h->wr.num_sge == 0, "third in order");
	free(h);
	ok(!vmig_wrq_pop(&q), "empty");
	is_int(vmig_wrq_push(&q, &w[2]), 0, "reusable after empty");
	vmig_wrq_dispose(&q);
	is_int(q.count, 0, "dispose");
}

static void test_ring(void)
{
	struct vmig_rring r;
	struct ibv_recv_wr wr, wrs[4];
	struct ibv_sge sge[2], out[8];
	const struct vmig_recv_ent *e;
	uint32_t i;

	is_int(vmig_rring_init(&r, 4, 2), 0, "ring of 4");
	memset(&wr, 0, sizeof(wr));
	wr.sg_list = sge;
	wr.num_sge = 1;
	for (i = 0; i < 10; i++) {
		wr.wr_id = i;
		sge[0] = (struct ibv_sge){ 0x100 * i, 16, i };
		vmig_rring_push(&r, &wr);
	}
	is_int(r.posted, 10, "10 posted");
	e = vmig_rring_last(&r, 3, 0);
	ok(e && e->wr_id == 7 && e->sge[0].lkey == 7, "oldest of the last 3 is #7");
	e = vmig_rring_last(&r, 3, 2);
	ok(e && e->wr_id == 9, "newest is #9");
	ok(!vmig_rring_last(&r, 5, 0), "cannot ask beyond the ring size");
	vmig_rring_chain(&r, 4, wrs, out);
	ok(wrs[0].wr_id == 6 && wrs[3].wr_id == 9 && wrs[0].next == &wrs[1] &&
	   !wrs[3].next && wrs[2].sg_list[0].addr == 0x800,
	   "chain of the last 4 in posting order");
	e = vmig_rring_at(&r, 6);
	ok(e && e->wr_id == 6 && e->sge[0].addr == 0x600,
	   "receive #6 by its sequence number");
	ok(vmig_rring_at(&r, 9) && !vmig_rring_at(&r, 10) &&
	   !vmig_rring_at(&r, 5), "#10 not posted, #5 overwritten");
	wr.num_sge = 3;
	ok(vmig_rring_push(&r, &wr) != 0, "more SGEs than the QP allows refused");
	vmig_rring_dispose(&r);
}

int main(void)
{
	test_hold();
	test_ring();
	return tap_done();
}
