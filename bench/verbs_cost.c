// SPDX-License-Identifier: MIT
/*
 * verbs_cost: the data path in a loop, for counting instructions per verb
 * under callgrind, plain and under the shim. Two RC QPs of one device are
 * connected to each other through the device's own GID; each iteration
 * posts one small signaled RDMA WRITE (or SEND, with a receive posted
 * first), waits for the completion event outside the measured code and
 * polls each completion with one ibv_poll_cq call.
 *
 * The verbs are called through the noinline wrappers cost_post_send,
 * cost_post_recv and cost_poll: run under
 *   valgrind --tool=callgrind --collect-atstart=no \
 *     --toggle-collect=cost_post_send --toggle-collect=cost_post_recv \
 *     --toggle-collect=cost_poll verbs_cost ...
 * and each wrapper's inclusive cost divided by its call count (printed) is
 * the cost of one verb. Warm-up iterations run first and their costs are
 * zeroed. Without valgrind the program runs the same loop and prints the
 * time per iteration. --idle-thread starts a thread that only sleeps, to
 * tell the cost of being multi-threaded (the shim starts a thread, and
 * libc's syscall wrappers then take their cancellation path) from the
 * shim's own instructions.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define RUNNING_ON_VALGRIND 0
#endif

#include "bv.h"

#define MSG 64

struct cost {
	struct bv_dev d;
	struct ibv_comp_channel *ch;
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *a, *b;
	struct ibv_mr *mr;
	char *buf;
	bool send, busy;
	unsigned long posts, recvs, polls, comps, misses;
};

/* The measured calls: one verb each, never inlined or cloned. */
int cost_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
		   struct ibv_send_wr **bad);
int cost_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
		   struct ibv_recv_wr **bad);
int cost_poll(struct ibv_cq *cq, struct ibv_wc *wc);

__attribute__((noinline, noclone)) int
cost_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
	       struct ibv_send_wr **bad)
{
	return ibv_post_send(qp, wr, bad);
}

__attribute__((noinline, noclone)) int
cost_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
	       struct ibv_recv_wr **bad)
{
	return ibv_post_recv(qp, wr, bad);
}

__attribute__((noinline, noclone)) int
cost_poll(struct ibv_cq *cq, struct ibv_wc *wc)
{
	return ibv_poll_cq(cq, 1, wc);
}

/* Waits for one completion on some armed CQ and polls it; -1 on error. */
static int reap_one(struct cost *c, bool *got_s, bool *got_r)
{
	struct ibv_cq *cq;
	struct ibv_wc wc;
	void *cctx;
	int n;

	for (;;) {
		if (c->busy) {
			cq = !*got_s ? c->scq : c->rcq;
		} else {
			if (ibv_get_cq_event(c->ch, &cq, &cctx)) {
				perror("ibv_get_cq_event");
				return -1;
			}
			ibv_ack_cq_events(cq, 1);
		}
		n = cost_poll(cq, &wc);
		c->polls++;
		if (n < 0) {
			fprintf(stderr, "ibv_poll_cq: %d\n", n);
			return -1;
		}
		if (n == 1)
			break;
		/* an event without a completion: re-arm, wait again */
		c->misses++;
		if (!c->busy && ibv_req_notify_cq(cq, 0))
			return -1;
	}
	if (wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "completion: %s\n", ibv_wc_status_str(wc.status));
		return -1;
	}
	c->comps++;
	if (cq == c->scq)
		*got_s = true;
	else
		*got_r = true;
	return 0;
}

static int one_iter(struct cost *c)
{
	struct ibv_sge ss = {
		.addr = (uintptr_t)c->buf, .length = MSG, .lkey = c->mr->lkey,
	};
	struct ibv_sge rs = {
		.addr = (uintptr_t)c->buf + 4096, .length = MSG,
		.lkey = c->mr->lkey,
	};
	struct ibv_send_wr sw = {
		.wr_id = 1, .sg_list = &ss, .num_sge = 1,
		.opcode = c->send ? IBV_WR_SEND : IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = {
			.remote_addr = (uintptr_t)c->buf + 4096,
			.rkey = c->mr->rkey,
		},
	}, *sbad;
	struct ibv_recv_wr rw = { .wr_id = 2, .sg_list = &rs, .num_sge = 1 },
		*rbad;
	bool got_s = false, got_r = !c->send;

	if (c->send) {
		if (cost_post_recv(c->b, &rw, &rbad))
			return -1;
		c->recvs++;
	}
	if (!c->busy && (ibv_req_notify_cq(c->scq, 0) ||
			 (c->send && ibv_req_notify_cq(c->rcq, 0))))
		return -1;
	if (cost_post_send(c->a, &sw, &sbad)) {
		perror("ibv_post_send");
		return -1;
	}
	c->posts++;
	while (!got_s || !got_r)
		if (reap_one(c, &got_s, &got_r))
			return -1;
	return 0;
}

static int setup(struct cost *c, const char *dev, int gidx)
{
	if (bv_open(&c->d, dev, gidx))
		return -1;
	c->buf = aligned_alloc(4096, 8192);
	if (!c->buf)
		return -1;
	memset(c->buf, 0x5a, 8192);
	c->mr = ibv_reg_mr(c->d.pd, c->buf, 8192, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE);
	c->ch = ibv_create_comp_channel(c->d.ctx);
	if (!c->mr || !c->ch)
		return -1;
	c->scq = ibv_create_cq(c->d.ctx, 16, NULL, c->ch, 0);
	c->rcq = ibv_create_cq(c->d.ctx, 16, NULL, c->ch, 0);
	if (!c->scq || !c->rcq)
		return -1;
	c->a = bv_rc_qp(&c->d, c->scq, c->rcq, 8);
	c->b = bv_rc_qp(&c->d, c->scq, c->rcq, 8);
	if (!c->a || !c->b)
		return -1;
	if (bv_connect(&c->d, c->a, c->b->qp_num) ||
	    bv_connect(&c->d, c->b, c->a->qp_num))
		return -1;
	return 0;
}

static void *idle_main(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static void usage(void)
{
	fprintf(stderr, "usage: verbs_cost [-d DEV] [-g GIDX] [-n ITERS] "
		"[-w WARMUP] [--send] [--busy] [--idle-thread]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "send", no_argument, NULL, 's' },
		{ "busy", no_argument, NULL, 'b' },
		{ "idle-thread", no_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct cost c = { 0 };
	const char *dev = "rxe0";
	long iters = 200, warm = 20, i;
	int gidx = 1, o;
	bool idle = false;
	pthread_t th;
	uint64_t t0, t1;

	while ((o = getopt_long(argc, argv, "d:g:n:w:", lo, NULL)) != -1) {
		switch (o) {
		case 'd': dev = optarg; break;
		case 'g': gidx = atoi(optarg); break;
		case 'n': iters = atol(optarg); break;
		case 'w': warm = atol(optarg); break;
		case 's': c.send = true; break;
		case 'b': c.busy = true; break;
		case 't': idle = true; break;
		default: usage();
		}
	}
	if (iters <= 0 || warm < 0)
		usage();
	if (idle && pthread_create(&th, NULL, idle_main, NULL)) {
		fprintf(stderr, "verbs_cost: cannot start a thread\n");
		return 1;
	}
	if (setup(&c, dev, gidx)) {
		fprintf(stderr, "verbs_cost: setup failed: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < warm; i++)
		if (one_iter(&c))
			goto fail;
	c.posts = c.recvs = c.polls = c.comps = c.misses = 0;
	CALLGRIND_ZERO_STATS;
	t0 = bv_now_ns();
	for (i = 0; i < iters; i++)
		if (one_iter(&c))
			goto fail;
	t1 = bv_now_ns();
	printf("verbs_cost op=%s wait=%s iters=%ld post_send=%lu post_recv=%lu "
	       "polls=%lu completions=%lu empty_polls=%lu ns_per_iter=%llu "
	       "idle_thread=%d valgrind=%d\n", c.send ? "send" : "write",
	       c.busy ? "busy" : "event", iters, c.posts, c.recvs, c.polls,
	       c.comps, c.misses, (unsigned long long)((t1 - t0) / iters),
	       (int)idle, (int)RUNNING_ON_VALGRIND);
	ibv_destroy_qp(c.a);
	ibv_destroy_qp(c.b);
	ibv_destroy_cq(c.scq);
	ibv_destroy_cq(c.rcq);
	ibv_destroy_comp_channel(c.ch);
	ibv_dereg_mr(c.mr);
	bv_close(&c.d);
	free(c.buf);
	return 0;
fail:
	fprintf(stderr, "verbs_cost: iteration %ld failed\n", i);
	return 1;
}
