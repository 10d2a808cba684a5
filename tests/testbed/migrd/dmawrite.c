// SPDX-License-Identifier: MIT
/*
 * dmawrite: a peer RDMA-WRITEs into a process that migrates (DESIGN.md
 * section 3: DMA writes are not soft-dirty). Two roles:
 *
 *   dmawrite target PORT PAGES [shared|private [BALLAST_MB]]
 *	registers PAGES pages (MAP_SHARED when "shared") with remote write,
 *	plus BALLAST_MB of memory written once and never again (what
 *	pre-copy moves ahead of the suspend),
 *	hands address and rkey to the writer that connects to PORT, then
 *	only reads: every 100 ms it prints the buffer's state when it
 *	changed, "buf min=A max=B bad=N" (the oldest and newest pattern
 *	found in its pages, words matching no pattern). It never writes the
 *	buffer: a CPU write would make the page soft-dirty itself.
 *
 *   dmawrite writer ADDR PORT STATEDIR
 *	connects, then writes pattern 1, 2, ... over the whole buffer, one
 *	RDMA WRITE every 200 ms, each waited for, and records the last one
 *	completed in STATEDIR/last. It stops posting once STATEDIR/stop
 *	exists (and says "stopped last=K" in STATEDIR/last) and keeps its QP
 *	until STATEDIR/quit exists.
 *
 * Pattern K in word i of the buffer: K << 40 | i (i < 2^40).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct info {
	uint32_t qpn, psn, rkey, pad;
	uint64_t addr, len;
	uint8_t gid[16];
};

struct rdma {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	int gidx;
	union ibv_gid gid;
};

static void die(const char *what)
{
	fprintf(stderr, "dmawrite: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The first IPv4-mapped GID: RoCE v2 between the testbed's hosts. */
static void rdma_open(struct rdma *r)
{
	struct ibv_device **l = ibv_get_device_list(NULL);
	struct ibv_port_attr pa;
	int i;

	if (!l || !l[0])
		die("no RDMA device");
	r->ctx = ibv_open_device(l[0]);
	ibv_free_device_list(l);
	if (!r->ctx || ibv_query_port(r->ctx, 1, &pa))
		die("open device");
	r->gidx = -1;
	for (i = 0; i < pa.gid_tbl_len && r->gidx < 0; i++) {
		union ibv_gid g;
		static const uint8_t v4[12] = { [10] = 0xff, [11] = 0xff };

		if (!ibv_query_gid(r->ctx, 1, i, &g) && !memcmp(g.raw, v4, 12))
			r->gidx = i;
	}
	if (r->gidx < 0 || ibv_query_gid(r->ctx, 1, r->gidx, &r->gid))
		die("no IPv4 GID");
	r->pd = ibv_alloc_pd(r->ctx);
	r->cq = r->pd ? ibv_create_cq(r->ctx, 16, NULL, NULL, 0) : NULL;
	if (!r->cq)
		die("pd/cq");
	struct ibv_qp_init_attr qa = {
		.send_cq = r->cq, .recv_cq = r->cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 8, .max_recv_wr = 8,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	r->qp = ibv_create_qp(r->pd, &qa);
	if (!r->qp)
		die("create qp");
}

static void rdma_connect(struct rdma *r, const struct info *peer,
			 uint32_t my_psn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	if (ibv_modify_qp(r->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("INIT");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = peer->qpn;
	a.rq_psn = peer->psn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.port_num = 1;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.grh.sgid_index = (uint8_t)r->gidx;
	memcpy(a.ah_attr.grh.dgid.raw, peer->gid, 16);
	if (ibv_modify_qp(r->qp, &a, IBV_QP_STATE | IBV_QP_AV |
			  IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("RTR");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = my_psn;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(r->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			  IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			  IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC))
		die("RTS");
}

static void xfer(int fd, void *buf, size_t len, int out)
{
	ssize_t n;
	size_t done = 0;

	while (done < len) {
		n = out ? write(fd, (char *)buf + done, len - done) :
			  read(fd, (char *)buf + done, len - done);
		if (n <= 0)
			die(out ? "send info" : "receive info");
		done += (size_t)n;
	}
}

static void my_info(const struct rdma *r, struct info *i, uint32_t psn)
{
	memset(i, 0, sizeof(*i));
	i->qpn = r->qp->qp_num;
	i->psn = psn;
	memcpy(i->gid, r->gid.raw, 16);
	if (r->mr) {
		i->rkey = r->mr->rkey;
		i->addr = (uint64_t)(uintptr_t)r->mr->addr;
		i->len = r->mr->length;
	}
}

static _Noreturn void target(int port, unsigned long pages, int shared,
			     unsigned long ballast_mb)
{
	void *ballast = ballast_mb ? malloc(ballast_mb << 20) : NULL;

	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	size_t len = pages * (size_t)sysconf(_SC_PAGESIZE);
	uint64_t lo = 0, hi = 0, bad = 0, plo = ~0ull, phi = ~0ull, pbad = 0;
	volatile uint64_t *w;
	struct info me, peer;
	struct rdma r = { 0 };
	int ls, fd, one = 1;
	size_t i, n = len / 8;

	w = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_ANONYMOUS | (shared ? MAP_SHARED : MAP_PRIVATE), -1, 0);
	if (w == MAP_FAILED)
		die("mmap");
	memset((void *)w, 0, len);	/* pattern 0, pages present */
	if (ballast)
		memset(ballast, 0x5a, ballast_mb << 20);
	rdma_open(&r);
	r.mr = ibv_reg_mr(r.pd, (void *)w, len, IBV_ACCESS_LOCAL_WRITE |
			  IBV_ACCESS_REMOTE_WRITE);
	if (!r.mr)
		die("reg_mr");
	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (void *)&sa, sizeof(sa)) || listen(ls, 1))
		die("listen");
	printf("target: %lu pages (%s) at %p, port %d\n", pages,
	       shared ? "shared" : "private", (void *)w, port);
	fflush(stdout);
	fd = accept(ls, NULL, NULL);
	if (fd < 0)
		die("accept");
	my_info(&r, &me, 100);
	xfer(fd, &peer, sizeof(peer), 0);
	xfer(fd, &me, sizeof(me), 1);
	rdma_connect(&r, &peer, 100);
	printf("target: connected to qpn %#x\n", peer.qpn);
	fflush(stdout);
	for (;;) {
		lo = ~0ull;
		hi = 0;
		bad = 0;
		for (i = 0; i < n; i++) {
			uint64_t v = w[i], k = v >> 40;

			if ((v & ((1ull << 40) - 1)) != (k ? i : 0)) {
				bad++;
				continue;
			}
			lo = k < lo ? k : lo;
			hi = k > hi ? k : hi;
		}
		if (lo != plo || hi != phi || bad != pbad) {
			printf("buf min=%llu max=%llu bad=%llu\n",
			       (unsigned long long)lo, (unsigned long long)hi,
			       (unsigned long long)bad);
			fflush(stdout);
			plo = lo;
			phi = hi;
			pbad = bad;
		}
		msleep(100);
	}
}

static int exists(const char *dir, const char *name)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void record(const char *dir, const char *what, uint64_t k)
{
	char p[512], t[520];
	FILE *f;

	snprintf(p, sizeof(p), "%s/last", dir);
	snprintf(t, sizeof(t), "%s.tmp", p);
	f = fopen(t, "w");
	if (!f)
		die(t);
	fprintf(f, "%s%llu\n", what, (unsigned long long)k);
	fclose(f);
	rename(t, p);
}

static int writer(const char *addr, int port, const char *dir)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	struct info me, peer;
	struct rdma r = { 0 };
	uint64_t *buf, k;
	size_t i;
	int fd = -1, tries;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		die("address");
	for (tries = 0; tries < 300; tries++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0 && !connect(fd, (void *)&sa, sizeof(sa)))
			break;
		close(fd);
		fd = -1;
		msleep(200);
	}
	if (fd < 0)
		die("connect");
	rdma_open(&r);
	my_info(&r, &me, 200);
	xfer(fd, &me, sizeof(me), 1);
	xfer(fd, &peer, sizeof(peer), 0);
	buf = malloc(peer.len);
	if (!buf)
		die("malloc");
	r.mr = ibv_reg_mr(r.pd, buf, peer.len, IBV_ACCESS_LOCAL_WRITE);
	if (!r.mr)
		die("reg_mr");
	rdma_connect(&r, &peer, 200);
	printf("writer: %llu bytes at %#llx rkey %#x\n",
	       (unsigned long long)peer.len, (unsigned long long)peer.addr,
	       peer.rkey);
	fflush(stdout);
	for (k = 1; !exists(dir, "stop"); k++) {
		struct ibv_sge sge = { .addr = (uintptr_t)buf,
				       .length = (uint32_t)peer.len,
				       .lkey = r.mr->lkey };
		struct ibv_send_wr wr = {
			.wr_id = k, .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_RDMA_WRITE,
			.send_flags = IBV_SEND_SIGNALED,
			.wr.rdma = { .remote_addr = peer.addr,
				     .rkey = peer.rkey },
		}, *bad;
		struct ibv_wc wc;
		int got;

		for (i = 0; i < peer.len / 8; i++)
			buf[i] = k << 40 | i;
		if (ibv_post_send(r.qp, &wr, &bad))
			die("post_send");
		while (!(got = ibv_poll_cq(r.cq, 1, &wc)))
			msleep(1);
		if (got < 0 || wc.status != IBV_WC_SUCCESS) {
			fprintf(stderr, "dmawrite: write %llu: %s\n",
				(unsigned long long)k,
				got < 0 ? "poll failed" :
					  ibv_wc_status_str(wc.status));
			return 1;
		}
		record(dir, "", k);
		msleep(200);
	}
	record(dir, "stopped last=", k - 1);
	printf("writer: stopped after pattern %llu\n",
	       (unsigned long long)(k - 1));
	fflush(stdout);
	while (!exists(dir, "quit"))
		msleep(200);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "target"))
		target(atoi(argv[2]), strtoul(argv[3], NULL, 10),
			      argc > 4 && !strcmp(argv[4], "shared"),
			      argc > 5 ? strtoul(argv[5], NULL, 10) : 0);
	if (argc == 5 && !strcmp(argv[1], "writer"))
		return writer(argv[2], atoi(argv[3]), argv[4]);
	fprintf(stderr, "usage: dmawrite target PORT PAGES [shared|private [MB]] | "
			"writer ADDR PORT STATEDIR\n");
	return 2;
}
