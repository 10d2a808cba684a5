// SPDX-License-Identifier: MIT
/*
 * atomic_ack: does an RC atomic complete without its result? For
 * t-atomic-ack.sh. One RC QP each side over rxe0 (GID index 1); the TCP
 * connection only exchanges the QP's parameters.
 *   atomic_ack -s PORT
 *   atomic_ack -c HOST PORT ROUNDS BLOCK UNBLOCK [send|none]
 * Each round the client runs the shell command BLOCK (the peer's RoCE
 * dropped here), posts a SEND (with "send", the default) then a
 * compare-and-swap of the peer's word from ROUNDS - 1 to ROUNDS, whose
 * result buffer holds a poison, waits a second (the peer executes both,
 * its responses are lost), runs UNBLOCK and waits for the completions:
 * the QP retransmits. It prints one line per round whose fetch is wrong
 * and then "rounds=N ok=N unwritten=N bad=N failed=N": unwritten, the
 * CAS completed successfully but its buffer still holds the poison. The
 * server prints "word=N", its word at the end: N = ROUNDS when every CAS
 * ran once.
 */
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define POISON 0xa5a5a5a5a5a5a5a5ull
#define NRECV 16
#define MSG 64

struct peer {
	uint32_t qpn;
	uint32_t psn;
	uint32_t rkey;
	uint64_t addr;
	union ibv_gid gid;
};

struct ep {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint64_t *buf;		/* [0] the word, [8..] send, [16] result */
};

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static int tcp(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *ai;
	int s, c, one = 1;

	if (getaddrinfo(host, port, &hints, &ai))
		die("getaddrinfo");
	s = socket(ai->ai_family, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	if (host) {
		for (int i = 0; connect(s, ai->ai_addr, ai->ai_addrlen); i++) {
			if (i == 120)
				die("connect");
			sleep(1);
		}
		freeaddrinfo(ai);
		return s;
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, ai->ai_addr, ai->ai_addrlen) || listen(s, 1))
		die("listen");
	c = accept(s, NULL, NULL);
	if (c < 0)
		die("accept");
	close(s);
	freeaddrinfo(ai);
	return c;
}

static void exchange(int s, const void *out, void *in, size_t n)
{
	if (write(s, out, n) != (ssize_t)n ||
	    recv(s, in, n, MSG_WAITALL) != (ssize_t)n)
		die("exchange");
}

static void setup(struct ep *e)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		     IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16, .max_recv_wr = NRECV,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};

	if (!list || !list[0])
		die("no RDMA device");
	e->ctx = ibv_open_device(list[0]);
	if (!e->ctx)
		die("ibv_open_device");
	e->pd = ibv_alloc_pd(e->ctx);
	e->cq = ibv_create_cq(e->ctx, 64, NULL, NULL, 0);
	e->buf = aligned_alloc(4096, 4096);
	if (!e->pd || !e->cq || !e->buf)
		die("resources");
	memset(e->buf, 0, 4096);
	e->mr = ibv_reg_mr(e->pd, e->buf, 4096, access);
	ia.send_cq = ia.recv_cq = e->cq;
	e->qp = ibv_create_qp(e->pd, &ia);
	if (!e->mr || !e->qp)
		die("ibv_reg_mr/ibv_create_qp");
}

static void connect_qp(struct ep *e, const struct peer *me,
		       const struct peer *p)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
	};

	if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("INIT");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = p->qpn;
	a.rq_psn = p->psn;
	a.max_dest_rd_atomic = 16;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.port_num = 1;
	a.ah_attr.grh.dgid = p->gid;
	a.ah_attr.grh.sgid_index = 1;
	a.ah_attr.grh.hop_limit = 64;
	if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_AV |
			  IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("RTR");
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 16;		/* ~268 ms */
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = me->psn;
	a.max_rd_atomic = 16;
	if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT |
			  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
			  IBV_QP_MAX_QP_RD_ATOMIC))
		die("RTS");
}

static void post_recv(struct ep *e, uint64_t i)
{
	struct ibv_sge sg = {
		.addr = (uintptr_t)e->buf + 512 + i * MSG,
		.length = MSG,
		.lkey = e->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sg, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	if (ibv_post_recv(e->qp, &wr, &bad))
		die("ibv_post_recv");
}

/* Receives until the client closes the connection, then prints the word. */
static int serve(struct ep *e, int s)
{
	struct ibv_wc wc;
	char c;

	for (uint64_t i = 0; i < NRECV; i++)
		post_recv(e, i);
	exchange(s, "r", &c, 1);
	while (recv(s, &c, 1, MSG_DONTWAIT) != 0) {
		while (ibv_poll_cq(e->cq, 1, &wc) > 0) {
			if (wc.status != IBV_WC_SUCCESS) {
				fprintf(stderr, "atomic_ack: receive: %s\n",
					ibv_wc_status_str(wc.status));
				return 1;
			}
			post_recv(e, wc.wr_id);
		}
		usleep(1000);
	}
	printf("word=%" PRIu64 "\n", __atomic_load_n(&e->buf[0],
						    __ATOMIC_ACQUIRE));
	return 0;
}

static bool wait_wc(struct ibv_cq *cq, struct ibv_wc *wc, int secs)
{
	time_t end = time(NULL) + secs;
	int n;

	while (!(n = ibv_poll_cq(cq, 1, wc)) && time(NULL) < end)
		usleep(1000);
	return n > 0;
}

/* One round; returns 0 ok, 1 unwritten, 2 other wrong value, -1 failed. */
static int round_trip(struct ep *e, const struct peer *p, uint64_t r,
		      bool send, const char *block, const char *unblock)
{
	volatile uint64_t *res = &e->buf[16];
	struct ibv_sge ss = { (uintptr_t)&e->buf[8], MSG, e->mr->lkey };
	struct ibv_sge cs = { (uintptr_t)&e->buf[16], 8, e->mr->lkey };
	struct ibv_send_wr cas = {
		.wr_id = 2, .sg_list = &cs, .num_sge = 1,
		.opcode = IBV_WR_ATOMIC_CMP_AND_SWP,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.atomic = { .remote_addr = p->addr, .rkey = p->rkey,
			       .compare_add = r, .swap = r + 1 },
	};
	struct ibv_send_wr snd = {
		.wr_id = 1, .sg_list = &ss, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		.next = &cas,
	};
	struct ibv_send_wr *bad;
	struct ibv_wc wc;
	int want = send ? 2 : 1;
	uint64_t v;

	*res = POISON;
	if (system(block))
		die("BLOCK");
	if (ibv_post_send(e->qp, send ? &snd : &cas, &bad))
		die("ibv_post_send");
	sleep(1);
	if (system(unblock))
		die("UNBLOCK");
	while (want--) {
		if (!wait_wc(e->cq, &wc, 120)) {
			printf("round %" PRIu64 ": no completion\n", r);
			return -1;
		}
		if (wc.status != IBV_WC_SUCCESS) {
			printf("round %" PRIu64 ": WR %" PRIu64 ": %s\n", r,
			       wc.wr_id, ibv_wc_status_str(wc.status));
			return -1;
		}
	}
	v = *res;
	if (v == r)
		return 0;
	printf("round %" PRIu64 ": the CAS completed successfully and "
	       "fetched %#" PRIx64 ", expected %" PRIu64 "%s\n", r, v, r,
	       v == POISON ? ": its buffer was never written" : "");
	return v == POISON ? 1 : 2;
}

int main(int argc, char **argv)
{
	bool client = argc >= 7 && !strcmp(argv[1], "-c");
	bool send = !(argc >= 8 && !strcmp(argv[7], "none"));
	unsigned int n[4] = { 0 };	/* ok, unwritten, bad, failed */
	struct peer me = { 0 }, p;
	struct ep e;
	int s, rounds;

	if (!client && (argc != 3 || strcmp(argv[1], "-s"))) {
		fprintf(stderr, "usage: atomic_ack -s PORT\n"
			"       atomic_ack -c HOST PORT ROUNDS BLOCK UNBLOCK "
			"[send|none]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup(&e);
	if (ibv_query_gid(e.ctx, 1, 1, &me.gid))
		die("ibv_query_gid");
	srand48(getpid());
	me.qpn = e.qp->qp_num;
	me.psn = lrand48() & 0xffffff;
	me.rkey = e.mr->rkey;
	me.addr = (uintptr_t)e.buf;
	s = tcp(client ? argv[2] : NULL, client ? argv[3] : argv[2]);
	exchange(s, &me, &p, sizeof(me));
	connect_qp(&e, &me, &p);
	if (!client)
		return serve(&e, s);

	rounds = atoi(argv[4]);
	{
		char c;

		exchange(s, "r", &c, 1);
	}
	for (int r = 0; r < rounds; r++) {
		int ret = round_trip(&e, &p, r, send, argv[5], argv[6]);

		n[ret < 0 ? 3 : ret]++;
		if (ret < 0)
			break;
	}
	printf("rounds=%d ok=%u unwritten=%u bad=%u failed=%u\n", rounds,
	       n[0], n[1], n[2], n[3]);
	close(s);
	return n[3] ? 1 : 0;
}
