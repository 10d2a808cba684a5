/* SPDX-License-Identifier: MIT */
/*
 * rdma_stress: a traffic checker for the verbs shim.
 *
 * Shared types of the files in tests/apps/stress_*.c. One process is the
 * server (listens on a TCP side channel), the other the client; after the
 * connection info is exchanged both run the same symmetric traffic engine.
 */
#ifndef RDMA_STRESS_H
#define RDMA_STRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <infiniband/verbs.h>

#define STRESS_MAX_QPS		64
#define STRESS_GRH_LEN		40
#define STRESS_UD_QKEY		0x11111111u
#define STRESS_READ_SLOTS	16
#define STRESS_MAX_SIZE		(1u << 20)
#define STRESS_MAX_DEPTH	4096
#define STRESS_UD_INDEX		0xffu	/* qp index of the UD endpoint in wr_ids */

enum stress_op {
	STRESS_OP_SEND = 1u << 0,
	STRESS_OP_WRITE = 1u << 1,
	STRESS_OP_READ = 1u << 2,
	STRESS_OP_ATOMIC = 1u << 3,
	STRESS_OP_UD = 1u << 4,
	STRESS_OP_ALL = (1u << 5) - 1,
};

/* Command line. Traffic fields are the client's; the server adopts them. */
struct stress_opts {
	bool server;
	const char *host;	/* client: server address */
	const char *port;	/* TCP side channel port */
	const char *dev;	/* NULL: first device */
	int ib_port;
	int gidx;		/* -1: pick automatically */
	bool api_wr;		/* ibv_wr_* instead of ibv_post_send */
	bool cq_ex;		/* ibv_create_cq_ex + ibv_start_poll */
	bool verbose;
	unsigned int progress;	/* seconds between progress lines, 0: off */
	unsigned int timeout_s;	/* no-progress limit while waiting */
	unsigned int connect_timeout_s;
	uint8_t qp_timeout;	/* IB local ack timeout exponent */

	/* traffic, sent by the client to the server */
	uint32_t ops;		/* enum stress_op bits */
	uint32_t size;		/* RC message size, bytes */
	uint32_t depth;		/* receive queue depth = credits */
	uint32_t nqps;
	uint64_t iters;		/* 0: run for secs */
	uint32_t secs;
	uint32_t pause_ms;
	uint32_t signal_every;
	bool close_chan;	/* no side channel while the traffic runs */
	int inject;		/* enum stress_inject: a fault, to test the checks */
};

/* Faults --inject plants once, in the 10th message on RC QP 0. */
enum stress_inject {
	STRESS_INJECT_NONE = 0,
	STRESS_INJECT_CORRUPT,	/* a payload byte flipped after the CRC */
	STRESS_INJECT_SEQGAP,	/* a sequence number skipped */
	STRESS_INJECT_DUP,	/* a sequence number sent twice */
	STRESS_INJECT_RKEY,	/* an RDMA WRITE with a wrong rkey */
};
#define STRESS_INJECT_AT	10

/* Header at the start of every SEND payload and every written slot. */
enum stress_msg_type {
	STRESS_MSG_DATA = 1,	/* counted */
	STRESS_MSG_WNOTIFY = 2,	/* counted: announces an RDMA WRITE */
	STRESS_MSG_WDATA = 3,	/* the header of written data, never sent */
	STRESS_MSG_CREDIT = 4,	/* control: returns credits only */
	STRESS_MSG_DONE = 5,	/* control: sender has no more data */
};

struct stress_hdr {
	uint32_t magic;
	uint8_t type;
	uint8_t qp;
	uint16_t reserved;
	uint32_t len;		/* bytes including this header */
	uint32_t credits;	/* receives re-posted since the last report */
	uint64_t seq;
	uint64_t aux;		/* WNOTIFY: the slot written */
	uint32_t wcsum;		/* WNOTIFY: checksum of the written data */
	uint32_t csum;		/* of the whole message, this field zero */
};

#define STRESS_MAGIC		0x76537472u	/* "vStr" */
#define STRESS_HDR_LEN		((uint32_t)sizeof(struct stress_hdr))

/* Credit flow control and ordering checks of one endpoint (one QP). */
struct stress_flow {
	uint32_t credits;	/* receives the peer has for us */
	uint32_t owed;		/* receives we re-posted, not yet reported */
	uint64_t tx_seq;	/* next sequence number to send */
	uint64_t rx_expect;	/* next sequence number expected */
	bool done_sent;
	bool done_rcvd;

	uint64_t sent;		/* counted messages sent */
	uint64_t rcvd;		/* counted messages received, unique */
	uint64_t dup;
	uint64_t reord;
	uint64_t corrupt;
};

struct stress_counts {
	uint64_t sent;
	uint64_t rcvd;
	uint64_t lost;
	uint64_t dup;
	uint64_t reord;
	uint64_t corrupt;
	uint64_t write_ok;
	uint64_t read_ok;
	uint64_t read_bad;
	uint64_t atomic_ok;
	uint64_t atomic_bad;
	uint64_t atomic_unwritten;	/* of atomic_bad: buffer never written */
	uint64_t ud_ok;
	uint64_t errors;	/* failed completions, verbs and protocol errors */
};

/* What a signaled or unsignaled send WR slot carries. */
enum stress_slot_kind {
	STRESS_SLOT_FREE = 0,
	STRESS_SLOT_SEND,
	STRESS_SLOT_WRITE,
	STRESS_SLOT_READ,
	STRESS_SLOT_FAA,
	STRESS_SLOT_CAS,
};

struct stress_slot {
	uint8_t kind;
	uint32_t rslot;		/* READ: remote slot read */
	uint64_t expect;	/* FAA, CAS: the value the fetch must return */
};

/* One queue pair and its buffers (RC or UD). */
struct stress_ep {
	unsigned int index;	/* RC: 0..nqps-1, UD: STRESS_UD_INDEX */
	bool ud;
	struct ibv_qp *qp;
	struct ibv_qp_ex *qpx;	/* --api wr */
	uint32_t psn;

	uint32_t sq_depth;
	uint32_t rq_depth;
	uint32_t msg_size;	/* bytes per message (UD: without GRH) */
	uint32_t rbuf_size;	/* bytes per receive buffer */

	uint8_t *lbuf;		/* sq_depth slots of msg_size: send, read, atomic */
	struct ibv_mr *lmr;
	uint8_t *rbuf;		/* rq_depth receive buffers */
	struct ibv_mr *rmr;
	uint8_t *xbuf;		/* RC: remote-accessible region, see below */
	size_t xlen;
	struct ibv_mr *xmr;

	struct stress_slot *slots;
	uint64_t posted;	/* send WRs posted */
	uint64_t completed;	/* send WRs known complete */

	/* peer */
	uint32_t rqpn;
	uint32_t rpsn;
	uint32_t rkey;
	uint64_t raddr;		/* base of the peer's xbuf */
	uint64_t rseed;
	struct ibv_ah *ah;	/* UD */
	bool rgrh;		/* UD: receives carry the peer's GID */
	uint8_t rgid[16];	/* UD: the peer's GID */

	/* traffic progress */
	uint64_t iter;
	unsigned int step;
	double next_time;
	uint64_t write_count;
	uint64_t read_count;
	uint64_t faa_posted;
	uint64_t cas_posted;
	uint64_t cas_value;	/* what the peer's CAS word holds after ours */
	uint64_t data_count;

	struct stress_flow flow;
};

/*
 * Layout of an RC endpoint's remote-accessible region (xbuf):
 *   [0, 16)                      FAA counter, CAS word (the peer's atomics)
 *   [64, 64 + depth * size)      write slots (the peer's RDMA WRITEs)
 *   [.., + READ_SLOTS * size)    read slots (a pattern the peer reads)
 */
#define STRESS_X_FAA		0
#define STRESS_X_CAS		8
#define STRESS_X_WRITE		64

static inline size_t stress_x_write(const struct stress_ep *ep, uint64_t slot)
{
	return STRESS_X_WRITE + (size_t)slot * ep->msg_size;
}

static inline size_t stress_x_read(const struct stress_ep *ep, uint32_t slot)
{
	return STRESS_X_WRITE + ((size_t)ep->rq_depth + slot) * ep->msg_size;
}

/* Connection info of one side, sent over the side channel. */
struct stress_remote_ep {
	uint32_t qpn;
	uint32_t psn;
	uint32_t rkey;
	uint64_t addr;
};

struct stress_info {
	uint16_t lid;
	uint8_t gid[16];
	uint8_t mtu;		/* enum ibv_mtu */
	uint8_t rd_atomic;	/* max_dest_rd_atomic we accept */
	uint32_t nqps;
	uint64_t seed;		/* of our read-slot pattern */
	struct stress_remote_ep ud;
	struct stress_remote_ep rc[STRESS_MAX_QPS];
};

/* Final report of one side, sent over the side channel. */
struct stress_report {
	uint8_t aborted;
	uint32_t nqps;
	uint64_t ud_sent;
	uint64_t rc_sent[STRESS_MAX_QPS];
	uint64_t faa_word[STRESS_MAX_QPS];	/* our counter after the peer's FAAs */
	uint64_t cas_word[STRESS_MAX_QPS];
};

/* Verbs resources of one process. */
struct stress_ctx {
	const struct stress_opts *o;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq;
	struct ibv_cq *rcq;
	struct ibv_cq_ex *scqx;	/* --cq ex */
	struct ibv_cq_ex *rcqx;
	struct ibv_device_attr dattr;
	struct ibv_port_attr pattr;
	int gidx;		/* -1: no GRH (InfiniBand, LID routed) */
	union ibv_gid gid;
	uint64_t seed;
	uint64_t peer_seed;
	uint8_t rd_atomic;

	unsigned int nrc;
	struct stress_ep *rc;	/* nrc endpoints */
	struct stress_ep *ud;	/* NULL without --ops ud */
};

/* A send work request in API-neutral form (stress_post.c). */
enum stress_wr_op {
	STRESS_WR_SEND,
	STRESS_WR_SEND_IMM,
	STRESS_WR_WRITE,
	STRESS_WR_WRITE_IMM,
	STRESS_WR_READ,
	STRESS_WR_FAA,
	STRESS_WR_CAS,
};

struct stress_wr {
	enum stress_wr_op op;
	uint64_t wr_id;
	bool signaled;
	uint32_t imm;		/* host order; sent as big endian */
	void *addr;
	uint32_t len;
	uint32_t lkey;
	uint64_t raddr;
	uint32_t rkey;
	uint64_t compare_add;
	uint64_t swap;
};

/* A work completion in API-neutral form. */
struct stress_wc {
	uint64_t wr_id;
	enum ibv_wc_status status;
	enum ibv_wc_opcode opcode;
	uint32_t vendor_err;
	uint32_t byte_len;
	uint32_t imm;		/* host order */
	unsigned int wc_flags;
	uint32_t qp_num;
	uint32_t src_qp;
};

/* wr_id: endpoint index in bits 56..63, receive flag in 55, slot below. */
#define STRESS_WRID_RECV	(1ull << 55)
static inline uint64_t stress_wrid(unsigned int ep, bool recv, uint64_t slot)
{
	return ((uint64_t)ep << 56) | (recv ? STRESS_WRID_RECV : 0) |
	       (slot & ((1ull << 55) - 1));
}

/* stress_opts.c */
int stress_opts_parse(struct stress_opts *o, int argc, char **argv);
void stress_usage(FILE *f);
const char *stress_ops_str(uint32_t ops, char *buf, size_t len);

/* stress_check.c */
uint32_t stress_crc32(uint32_t crc, const void *buf, size_t len);
void stress_msg_seal(void *buf);
bool stress_msg_check(const void *buf, uint32_t byte_len);
void stress_fill(void *buf, size_t len, uint64_t seed, uint64_t n);
void stress_read_pattern(void *buf, size_t len, uint64_t seed,
			 unsigned int qp, uint32_t slot);
int stress_seq_accept(struct stress_flow *f, uint64_t seq);
double stress_now(void);

/* stress_chan.c */
int stress_chan_listen(const char *port, unsigned int timeout_s);
int stress_chan_connect(const char *host, const char *port,
			unsigned int timeout_s);
int stress_chan_set_timeout(int fd, unsigned int timeout_s);
int stress_chan_send_opts(int fd, const struct stress_opts *o);
int stress_chan_recv_opts(int fd, struct stress_opts *o);
int stress_chan_send_info(int fd, const struct stress_info *in);
int stress_chan_recv_info(int fd, struct stress_info *in);
int stress_chan_send_report(int fd, const struct stress_report *r);
int stress_chan_recv_report(int fd, struct stress_report *r);
int stress_chan_send_byte(int fd, uint8_t b);
int stress_chan_recv_byte(int fd, uint8_t *b);
int stress_chan_send_u64(int fd, uint64_t v);
int stress_chan_recv_u64(int fd, uint64_t *v);

/* stress_res.c */
int stress_res_open(struct stress_ctx *c, const struct stress_opts *o);
void stress_res_info(const struct stress_ctx *c, struct stress_info *in);
int stress_res_connect(struct stress_ctx *c, const struct stress_info *peer);
int stress_post_recv(struct stress_ep *ep, uint32_t slot);
void stress_res_close(struct stress_ctx *c);

/* stress_post.c */
int stress_post_send(const struct stress_ctx *c, struct stress_ep *ep,
		     struct stress_wr *wr, unsigned int n);
int stress_poll(const struct stress_ctx *c, bool recv, struct stress_wc *wc,
		int max);

/* stress_traffic.c */
int stress_run(struct stress_ctx *c, int chan, struct stress_counts *cnt,
	       bool *aborted);

/* logging */
#define stress_err(fmt, ...) \
	fprintf(stderr, "rdma_stress: " fmt "\n", ##__VA_ARGS__)
#define stress_perr(verb, err) \
	fprintf(stderr, "rdma_stress: %s: %s\n", (verb), strerror(err))
#define stress_verbose(o, fmt, ...)                                         \
	do {                                                                 \
		if ((o)->verbose)                                            \
			fprintf(stderr, "rdma_stress: " fmt "\n",            \
				##__VA_ARGS__);                              \
	} while (0)

#endif /* RDMA_STRESS_H */
