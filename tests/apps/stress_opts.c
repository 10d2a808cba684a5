// SPDX-License-Identifier: MIT
/*
 * rdma_stress: command line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#include "rdma_stress.h"

static const struct {
	const char *name;
	uint32_t bit;
} op_names[] = {
	{ "send", STRESS_OP_SEND },
	{ "write", STRESS_OP_WRITE },
	{ "read", STRESS_OP_READ },
	{ "atomic", STRESS_OP_ATOMIC },
	{ "ud", STRESS_OP_UD },
};

#define N_OPS (sizeof(op_names) / sizeof(op_names[0]))

void stress_usage(FILE *f)
{
	fprintf(f,
"usage: rdma_stress [OPTIONS]           run as the server\n"
"       rdma_stress [OPTIONS] SERVER    run as the client\n"
"\n"
"Exchanges checked RDMA traffic between two processes; the server takes the\n"
"traffic options (marked *) from the client.\n"
"\n"
"  -d, --dev DEV          RDMA device (default: the first one)\n"
"  -i, --ib-port N        device port (default 1)\n"
"  -g, --gid-idx N        GID index (default: an IPv4-mapped RoCE GID)\n"
"  -p, --port PORT        TCP port of the side channel (default 18515)\n"
"  -n, --iters N        * iterations per QP (default 100 unless -t)\n"
"  -t, --time SEC       * run for SEC seconds instead of -n\n"
"  -s, --size BYTES     * RC message size (default 256, min %u, max %u)\n"
"  -r, --depth N        * receive queue depth / credits (default 16)\n"
"  -q, --qps N          * number of RC QPs (default 2, max %u)\n"
"      --ops LIST       * comma list of send,write,read,atomic,ud or all\n"
"      --pause-ms MS    * pause between iterations (default 0)\n"
"  -k, --signal K       * signal every K-th send WR (default 4)\n"
"      --api classic|wr   post with ibv_post_send or ibv_wr_* (default classic)\n"
"      --cq classic|ex    poll with ibv_poll_cq or ibv_start_poll (default classic)\n"
"      --close-chan     * close the TCP side channel while the traffic runs and\n"
"                         reconnect for the reports (a process checkpointed\n"
"                         meanwhile carries no TCP connection)\n"
"      --timeout SEC      give up after SEC s without progress (default 300)\n"
"      --connect-timeout SEC  side channel connect/accept limit (default 120)\n"
"      --qp-timeout N     RC local ACK timeout exponent (default 20, ~4 s)\n"
"      --progress[=SEC]   print progress every SEC seconds (default 1)\n"
"      --inject corrupt|seqgap|dup|rkey  plant one fault (in the 10th\n"
"                         message of RC QP 0) to see the checks fail\n"
"  -v, --verbose          print what is set up\n"
"  -h, --help             this text\n"
"\n"
"Exit status: 0 when nothing was lost, duplicated, reordered or corrupted and\n"
"nothing failed on either side; 1 otherwise; 2 on bad arguments.\n",
		STRESS_HDR_LEN, STRESS_MAX_SIZE, STRESS_MAX_QPS);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 0);
	if (errno || *end || x < min || x > max)
		return -1;
	*v = x;
	return 0;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *v)
{
	uint64_t x;

	if (parse_u64(s, min, max, &x))
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int parse_ops(const char *s, uint32_t *ops)
{
	char buf[128];
	char *save = NULL;
	uint32_t v = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		size_t i;

		if (!strcmp(t, "all")) {
			v |= STRESS_OP_ALL;
			continue;
		}
		for (i = 0; i < N_OPS; i++)
			if (!strcmp(t, op_names[i].name))
				break;
		if (i == N_OPS)
			return -1;
		v |= op_names[i].bit;
	}
	if (!v)
		return -1;
	*ops = v;
	return 0;
}

const char *stress_ops_str(uint32_t ops, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; i < N_OPS; i++) {
		if (!(ops & op_names[i].bit))
			continue;
		off += snprintf(buf + off, off < len ? len - off : 0, "%s%s",
				off ? "," : "", op_names[i].name);
	}
	return buf;
}

enum {
	OPT_OPS = 256,
	OPT_PAUSE,
	OPT_API,
	OPT_CQ,
	OPT_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_QP_TIMEOUT,
	OPT_PROGRESS,
	OPT_CLOSE_CHAN,
	OPT_INJECT,
};

static const struct option long_opts[] = {
	{ "dev", required_argument, NULL, 'd' },
	{ "ib-port", required_argument, NULL, 'i' },
	{ "gid-idx", required_argument, NULL, 'g' },
	{ "port", required_argument, NULL, 'p' },
	{ "iters", required_argument, NULL, 'n' },
	{ "time", required_argument, NULL, 't' },
	{ "size", required_argument, NULL, 's' },
	{ "depth", required_argument, NULL, 'r' },
	{ "qps", required_argument, NULL, 'q' },
	{ "signal", required_argument, NULL, 'k' },
	{ "ops", required_argument, NULL, OPT_OPS },
	{ "pause-ms", required_argument, NULL, OPT_PAUSE },
	{ "api", required_argument, NULL, OPT_API },
	{ "cq", required_argument, NULL, OPT_CQ },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "qp-timeout", required_argument, NULL, OPT_QP_TIMEOUT },
	{ "progress", optional_argument, NULL, OPT_PROGRESS },
	{ "close-chan", no_argument, NULL, OPT_CLOSE_CHAN },
	{ "inject", required_argument, NULL, OPT_INJECT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Returns 0, 1 after --help, or -1 after printing what is wrong. */
int stress_opts_parse(struct stress_opts *o, int argc, char **argv)
{
	uint32_t v32 = 0;
	bool have_n = false, have_t = false;
	int c;

	*o = (struct stress_opts){
		.port = "18515",
		.ib_port = 1,
		.gidx = -1,
		.timeout_s = 300,
		.connect_timeout_s = 120,
		.qp_timeout = 20,
		.ops = STRESS_OP_ALL,
		.size = 256,
		.depth = 16,
		.nqps = 2,
		.iters = 100,
		.signal_every = 4,
	};

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:i:g:p:n:t:s:r:q:k:vh",
				long_opts, NULL)) != -1) {
		const char *bad = NULL;

		switch (c) {
		case 'd':
			o->dev = optarg;
			break;
		case 'i':
			if (parse_u32(optarg, 1, 255, &v32))
				bad = "--ib-port";
			o->ib_port = (int)v32;
			break;
		case 'g':
			if (parse_u32(optarg, 0, 65535, &v32))
				bad = "--gid-idx";
			o->gidx = (int)v32;
			break;
		case 'p':
			if (parse_u32(optarg, 1, 65535, &v32))
				bad = "--port";
			o->port = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, 1, UINT64_MAX / 2, &o->iters))
				bad = "--iters";
			have_n = true;
			break;
		case 't':
			if (parse_u32(optarg, 1, 30 * 24 * 3600, &o->secs))
				bad = "--time";
			have_t = true;
			break;
		case 's':
			if (parse_u32(optarg, STRESS_HDR_LEN, STRESS_MAX_SIZE,
				      &o->size))
				bad = "--size";
			break;
		case 'r':
			if (parse_u32(optarg, 2, STRESS_MAX_DEPTH, &o->depth))
				bad = "--depth";
			break;
		case 'q':
			if (parse_u32(optarg, 1, STRESS_MAX_QPS, &o->nqps))
				bad = "--qps";
			break;
		case 'k':
			if (parse_u32(optarg, 1, 1024, &o->signal_every))
				bad = "--signal";
			break;
		case OPT_OPS:
			if (parse_ops(optarg, &o->ops))
				bad = "--ops";
			break;
		case OPT_PAUSE:
			if (parse_u32(optarg, 0, 3600 * 1000, &o->pause_ms))
				bad = "--pause-ms";
			break;
		case OPT_API:
			if (!strcmp(optarg, "classic"))
				o->api_wr = false;
			else if (!strcmp(optarg, "wr"))
				o->api_wr = true;
			else
				bad = "--api";
			break;
		case OPT_CQ:
			if (!strcmp(optarg, "classic"))
				o->cq_ex = false;
			else if (!strcmp(optarg, "ex"))
				o->cq_ex = true;
			else
				bad = "--cq";
			break;
		case OPT_TIMEOUT:
			if (parse_u32(optarg, 1, 86400 * 7, &o->timeout_s))
				bad = "--timeout";
			break;
		case OPT_CONNECT_TIMEOUT:
			if (parse_u32(optarg, 1, 86400 * 7,
				      &o->connect_timeout_s))
				bad = "--connect-timeout";
			break;
		case OPT_QP_TIMEOUT:
			if (parse_u32(optarg, 0, 31, &v32))
				bad = "--qp-timeout";
			o->qp_timeout = (uint8_t)v32;
			break;
		case OPT_PROGRESS:
			o->progress = 1;
			if (optarg && parse_u32(optarg, 1, 3600, &o->progress))
				bad = "--progress";
			break;
		case OPT_INJECT:
			if (!strcmp(optarg, "corrupt"))
				o->inject = STRESS_INJECT_CORRUPT;
			else if (!strcmp(optarg, "seqgap"))
				o->inject = STRESS_INJECT_SEQGAP;
			else if (!strcmp(optarg, "dup"))
				o->inject = STRESS_INJECT_DUP;
			else if (!strcmp(optarg, "rkey"))
				o->inject = STRESS_INJECT_RKEY;
			else
				bad = "--inject";
			break;
		case OPT_CLOSE_CHAN:
			o->close_chan = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			stress_usage(stdout);
			return 1;
		case ':':
			stress_err("option %s needs a value",
				   argv[optind - 1]);
			goto usage;
		case '?':
		default:
			if (optopt)
				stress_err("unknown option -%c", optopt);
			else
				stress_err("unknown option %s",
					   argv[optind - 1]);
			goto usage;
		}
		if (bad) {
			stress_err("bad value for %s: '%s'", bad, optarg);
			goto usage;
		}
	}
	if (have_n && have_t) {
		stress_err("-n and -t exclude each other");
		goto usage;
	}
	if (have_t)
		o->iters = 0;
	if (optind < argc)
		o->host = argv[optind++];
	if (optind < argc) {
		stress_err("unexpected argument '%s'", argv[optind]);
		goto usage;
	}
	o->server = !o->host;
	return 0;

usage:
	stress_usage(stderr);
	return -1;
}
