// SPDX-License-Identifier: MIT
/*
 * qp_scale: holds K connected RC QPs for `vmig-ctl PID cycle` to time.
 * The QPs are connected in loopback pairs on one device (K = 1: one QP
 * connected to itself; odd K: the last one too). Every QP RDMA-WRITEs one
 * slot of its peer's memory and the data is checked, before the cycle and
 * after it; in between the program writes its pid to the --ready file and
 * waits for the --go file. --mem MIB adds that much touched memory (the
 * size of a guest that migrd migrates).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bv.h"

#define SLOT 64

struct scale {
	struct bv_dev d;
	struct ibv_cq *cq;
	struct ibv_qp **qp;
	uint32_t *peer;		/* index of each QP's peer */
	struct ibv_mr *mr;
	unsigned char *src, *dst;
	long k;
};

/* One signaled RDMA WRITE per QP into its peer's slot, all reaped and the
 * data checked; 0 or -1. */
static int traffic(struct scale *s, unsigned char round)
{
	struct ibv_wc wc[32];
	long i, done = 0, posted = 0;
	int n;

	for (i = 0; i < s->k; i++)
		memset(s->src + i * SLOT, (int)(round + i) & 0xff, SLOT);
	memset(s->dst, 0, (size_t)s->k * SLOT);
	for (i = 0; i < s->k; i++) {
		struct ibv_sge sge = {
			.addr = (uintptr_t)(s->src + i * SLOT),
			.length = SLOT, .lkey = s->mr->lkey,
		};
		struct ibv_send_wr wr = {
			.wr_id = (uint64_t)i, .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_RDMA_WRITE,
			.send_flags = IBV_SEND_SIGNALED,
			.wr.rdma = {
				.remote_addr = (uintptr_t)(s->dst + i * SLOT),
				.rkey = s->mr->rkey,
			},
		}, *bad;

		if (ibv_post_send(s->qp[i], &wr, &bad)) {
			fprintf(stderr, "qp_scale: post on qp %ld: %s\n", i,
				strerror(errno));
			return -1;
		}
		posted++;
		/* keep the CQ from overflowing */
		while (posted - done >= 512) {
			n = ibv_poll_cq(s->cq, 32, wc);
			if (n < 0)
				return -1;
			done += n;
		}
	}
	for (uint64_t t0 = bv_now_ns(); done < posted;) {
		n = ibv_poll_cq(s->cq, 32, wc);
		if (n < 0)
			return -1;
		for (int j = 0; j < n; j++)
			if (wc[j].status != IBV_WC_SUCCESS) {
				fprintf(stderr, "qp_scale: qp %llu: %s\n",
					(unsigned long long)wc[j].wr_id,
					ibv_wc_status_str(wc[j].status));
				return -1;
			}
		done += n;
		if (!n && bv_now_ns() - t0 > 300000000000ull) {
			fprintf(stderr, "qp_scale: %ld of %ld completions\n",
				done, posted);
			return -1;
		}
		if (!n)
			usleep(100);
	}
	for (i = 0; i < s->k; i++)
		if (memcmp(s->dst + i * SLOT, s->src + i * SLOT, SLOT)) {
			fprintf(stderr, "qp_scale: slot %ld: wrong data\n", i);
			return -1;
		}
	return 0;
}

static int setup(struct scale *s)
{
	struct ibv_device_attr da;
	size_t len = (size_t)s->k * SLOT * 2;
	int cqe;
	long i;

	if (ibv_query_device(s->d.ctx, &da))
		return -1;
	if (s->k > da.max_qp) {
		fprintf(stderr, "qp_scale: %ld QPs, the device allows %d\n",
			s->k, da.max_qp);
		return -1;
	}
	cqe = 1024 < da.max_cqe ? 1024 : da.max_cqe;
	s->cq = ibv_create_cq(s->d.ctx, cqe, NULL, NULL, 0);
	s->qp = calloc((size_t)s->k, sizeof(*s->qp));
	s->peer = calloc((size_t)s->k, sizeof(*s->peer));
	s->src = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
	if (!s->cq || !s->qp || !s->peer || !s->src)
		return -1;
	s->dst = s->src + (size_t)s->k * SLOT;
	s->mr = ibv_reg_mr(s->d.pd, s->src, len, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE);
	if (!s->mr)
		return -1;
	for (i = 0; i < s->k; i++) {
		s->qp[i] = bv_rc_qp(&s->d, s->cq, s->cq, 4);
		if (!s->qp[i]) {
			fprintf(stderr, "qp_scale: qp %ld of %ld: %s\n", i + 1,
				s->k, strerror(errno));
			return -1;
		}
	}
	for (i = 0; i < s->k; i++)
		s->peer[i] = (uint32_t)(i + 1 < s->k || i % 2 ? i ^ 1 : i);
	for (i = 0; i < s->k; i++)
		if (bv_connect(&s->d, s->qp[i], s->qp[s->peer[i]]->qp_num)) {
			fprintf(stderr, "qp_scale: connect qp %ld: %s\n", i,
				strerror(errno));
			return -1;
		}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: qp_scale -k QPS [-d DEV] [-g GIDX] "
		"[--ready FILE --go FILE] [--wait S] [--mem MIB]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ready", required_argument, NULL, 'r' },
		{ "go", required_argument, NULL, 'G' },
		{ "wait", required_argument, NULL, 'W' },
		{ "mem", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	struct scale s = { .k = 1 };
	const char *dev = "rxe0", *ready = NULL, *go = NULL;
	long wait_s = 1800, mib = 0, i;
	unsigned char *mem = NULL;
	int gidx = 1, o;
	uint64_t t0, t1;
	FILE *f;

	while ((o = getopt_long(argc, argv, "d:g:k:", lo, NULL)) != -1) {
		switch (o) {
		case 'd': dev = optarg; break;
		case 'g': gidx = atoi(optarg); break;
		case 'k': s.k = atol(optarg); break;
		case 'r': ready = optarg; break;
		case 'G': go = optarg; break;
		case 'W': wait_s = atol(optarg); break;
		case 'M': mib = atol(optarg); break;
		default: usage();
		}
	}
	if (s.k <= 0 || mib < 0 || !ready != !go)
		usage();
	if (mib) {
		mem = malloc((size_t)mib << 20);
		if (!mem) {
			perror("qp_scale: --mem");
			return 1;
		}
		for (size_t j = 0; j < (size_t)mib << 20; j += 64)
			mem[j] = (unsigned char)(j / 64);
	}
	t0 = bv_now_ns();
	if (bv_open(&s.d, dev, gidx) || setup(&s)) {
		fprintf(stderr, "qp_scale: setup of %ld QPs failed\n", s.k);
		return 1;
	}
	t1 = bv_now_ns();
	if (traffic(&s, 1))
		return 1;
	printf("qp_scale qps=%ld setup_ms=%llu traffic=ok\n", s.k,
	       (unsigned long long)((t1 - t0) / 1000000));
	fflush(stdout);
	if (ready) {
		f = fopen(ready, "w");
		if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
			perror(ready);
			return 1;
		}
		for (i = 0; access(go, F_OK); i++) {
			if (i >= wait_s * 10) {
				fprintf(stderr, "qp_scale: no %s\n", go);
				return 1;
			}
			usleep(100000);
		}
		if (traffic(&s, 2))
			return 1;
		printf("qp_scale qps=%ld after=ok\n", s.k);
	}
	for (i = 0; i < s.k; i++)
		ibv_destroy_qp(s.qp[i]);
	ibv_destroy_cq(s.cq);
	ibv_dereg_mr(s.mr);
	bv_close(&s.d);
	free(s.src);
	free(s.qp);
	free(s.peer);
	free(mem);
	return 0;
}
