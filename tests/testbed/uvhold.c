// SPDX-License-Identifier: MIT
/*
 * uvhold: a process with live uverbs mappings that can drop them and keep
 * running, for the pre-dump chain check in t-criu-plugin.sh. It fills a
 * buffer (each page holds its index), registers it, and holds a PD, a CQ
 * and an RC QP: rxe maps their queues from /dev/infiniband/uverbsN.
 *   SIGUSR1: destroy everything and close the device (as the shim's
 *            teardown does), then rewrite the second half of the buffer
 *            (pages dirtied after a pre-dump), print "released".
 *   SIGUSR2: check every page, print "verify ok" or "verify bad N".
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define PAGES 1024 /* 4 MiB */
#define PG 4096

static volatile sig_atomic_t want_release, want_verify;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_release = 1;
	else
		want_verify = 1;
}

/* first half: page index; second half after release: index + 1000000 */
static uint64_t expected(unsigned int i, int released)
{
	return released && i >= PAGES / 2 ? i + 1000000 : i;
}

int main(void)
{
	struct ibv_device **list = NULL;
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd = NULL;
	struct ibv_cq *cq = NULL;
	struct ibv_qp *qp = NULL;
	struct ibv_mr *mr = NULL;
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 64, .max_recv_wr = 64,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	sigset_t block, wait_set;
	int released = 0;
	char *buf;

	buf = aligned_alloc(PG, (size_t)PAGES * PG);
	if (!buf)
		return 1;
	for (unsigned int i = 0; i < PAGES; i++)
		*(uint64_t *)(buf + (size_t)i * PG) = expected(i, 0);
	list = ibv_get_device_list(NULL);
	if (list && list[0])
		ctx = ibv_open_device(list[0]);
	if (ctx)
		pd = ibv_alloc_pd(ctx);
	if (pd)
		cq = ibv_create_cq(ctx, 64, NULL, NULL, 0);
	if (cq) {
		qa.send_cq = cq;
		qa.recv_cq = cq;
		qp = ibv_create_qp(pd, &qa);
	}
	if (qp)
		mr = ibv_reg_mr(pd, buf, (size_t)PAGES * PG,
				IBV_ACCESS_LOCAL_WRITE);
	if (!mr) {
		perror("uvhold: verbs setup");
		return 1;
	}
	ibv_free_device_list(list);
	/* blocked but while waiting: no signal slips between check and wait */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &wait_set);
	signal(SIGUSR1, on_signal);
	signal(SIGUSR2, on_signal);
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		sigsuspend(&wait_set);
		if (want_release && !released) {
			ibv_dereg_mr(mr);
			ibv_destroy_qp(qp);
			ibv_destroy_cq(cq);
			ibv_dealloc_pd(pd);
			ibv_close_device(ctx);
			for (unsigned int i = PAGES / 2; i < PAGES; i++)
				*(uint64_t *)(buf + (size_t)i * PG) =
					expected(i, 1);
			released = 1;
			printf("released\n");
			fflush(stdout);
		}
		if (want_verify) {
			unsigned int bad = 0;

			want_verify = 0;
			for (unsigned int i = 0; i < PAGES; i++)
				bad += *(uint64_t *)(buf + (size_t)i * PG) !=
				       expected(i, released);
			if (bad)
				printf("verify bad %u\n", bad);
			else
				printf("verify ok\n");
			fflush(stdout);
		}
	}
}
