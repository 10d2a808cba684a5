// SPDX-License-Identifier: MIT
/*
 * shim_rnr: an RC pair on one device (loopback through its own GID) whose
 * receiver posts no buffer for a while, so a SEND waits on RNR retries and a
 * drain cannot finish. After DELAY seconds the receiver posts its buffers;
 * the pending SEND and NSENDS more must then complete: the connection kept
 * working. Prints "ready PID" once the SEND is posted; exit 0 on success.
 *
 *   shim_rnr [-d DEV] [-g GIDIDX] [--delay S] [--sends N]
 */
#include <infiniband/verbs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define die(...) do { fprintf(stderr, "shim_rnr: " __VA_ARGS__); \
	fprintf(stderr, "\n"); exit(1); } while (0)

static struct ibv_qp *mkqp(struct ibv_pd *pd, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr a = {
		.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16, .max_recv_wr = 16,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp *qp = ibv_create_qp(pd, &a);
	struct ibv_qp_attr m = {
		.qp_state = IBV_QPS_INIT, .port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	if (!qp || ibv_modify_qp(qp, &m, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				 IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("create/init qp");
	return qp;
}

static void connect_qp(struct ibv_qp *qp, uint32_t dqpn, union ibv_gid *gid,
		       int gidx)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_1024,
		.dest_qp_num = dqpn, .rq_psn = 1, .max_dest_rd_atomic = 1,
		.min_rnr_timer = 12,
		.ah_attr = { .is_global = 1, .port_num = 1,
			     .grh = { .dgid = *gid, .sgid_index = (uint8_t)gidx,
				      .hop_limit = 1 } },
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("rtr");
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 1;
	a.timeout = 18;
	a.retry_cnt = 7;
	a.rnr_retry = 7;	/* infinite: the send waits for a buffer */
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT |
			  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			  IBV_QP_MAX_QP_RD_ATOMIC))
		die("rts");
}

static void wait_wc(struct ibv_cq *cq, int n, int secs)
{
	time_t end = time(NULL) + secs;
	struct ibv_wc wc;

	while (n > 0) {
		int r = ibv_poll_cq(cq, 1, &wc);

		if (r < 0)
			die("poll");
		if (r && wc.status != IBV_WC_SUCCESS)
			die("completion %s (wr %llu)", ibv_wc_status_str(wc.status),
			    (unsigned long long)wc.wr_id);
		n -= r;
		if (!r) {
			if (time(NULL) > end)
				die("timeout waiting for %d completions", n);
			usleep(1000);
		}
	}
}

int main(int argc, char **argv)
{
	const char *dev = "rxe0";
	int gidx = 1, delay = 15, nsends = 5, i, n;
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	struct ibv_qp *a, *b;
	union ibv_gid gid;
	static char buf[2][4096];

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d") && i + 1 < argc)
			dev = argv[++i];
		else if (!strcmp(argv[i], "-g") && i + 1 < argc)
			gidx = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--delay") && i + 1 < argc)
			delay = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--sends") && i + 1 < argc)
			nsends = atoi(argv[++i]);
		else
			die("usage: shim_rnr [-d DEV] [-g GIDIDX] [--delay S] [--sends N]");
	}
	list = ibv_get_device_list(&n);
	for (i = 0; list && i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), dev))
			ctx = ibv_open_device(list[i]);
	if (!ctx)
		die("no device %s", dev);
	pd = ibv_alloc_pd(ctx);
	cq = ibv_create_cq(ctx, 64, NULL, NULL, 0);
	mr = ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE);
	if (!pd || !cq || !mr || ibv_query_gid(ctx, 1, gidx, &gid))
		die("resources");
	a = mkqp(pd, cq);
	b = mkqp(pd, cq);
	connect_qp(a, b->qp_num, &gid, gidx);
	connect_qp(b, a->qp_num, &gid, gidx);

	struct ibv_sge ss = { (uintptr_t)buf[0], 64, mr->lkey };
	struct ibv_sge rs = { (uintptr_t)buf[1], 4096, mr->lkey };
	struct ibv_send_wr sw = { .wr_id = 1, .sg_list = &ss, .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED }, *sbad;
	struct ibv_recv_wr rw = { .wr_id = 2, .sg_list = &rs, .num_sge = 1 },
			   *rbad;

	strcpy(buf[0], "rnr");
	if (ibv_post_send(a, &sw, &sbad))
		die("post send");
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	sleep(delay);
	/* now the receiver is there: the waiting send completes */
	if (ibv_post_recv(b, &rw, &rbad))
		die("post recv");
	wait_wc(cq, 2, 120);
	for (i = 0; i < nsends; i++) {
		if (ibv_post_recv(b, &rw, &rbad) || ibv_post_send(a, &sw, &sbad))
			die("post %d", i);
		wait_wc(cq, 2, 120);
	}
	if (strcmp(buf[1], "rnr"))
		die("wrong data");
	printf("ok: %d sends after the RNR wait\n", nsends + 1);
	return 0;
}
