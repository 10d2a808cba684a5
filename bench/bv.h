/* SPDX-License-Identifier: MIT */
/*
 * Small verbs helpers shared by the bench programs: open a device, make RC
 * QPs and connect them in loopback through the device's own RoCE GID.
 */
#ifndef VMIG_BENCH_BV_H
#define VMIG_BENCH_BV_H

#include <infiniband/verbs.h>
#include <stdint.h>

struct bv_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_port_attr port;
	union ibv_gid gid;
	int gid_index;
};

/* Opens device name (NULL: the first), port 1, GID gid_index; 0 or -1. */
int bv_open(struct bv_dev *d, const char *name, int gid_index);
void bv_close(struct bv_dev *d);

/* An RC QP with nwr send and receive slots on scq/rcq; NULL on error. */
struct ibv_qp *bv_rc_qp(struct bv_dev *d, struct ibv_cq *scq,
			struct ibv_cq *rcq, uint32_t nwr);

/* Moves qp to RTS connected to remote_qpn at this device's GID; 0 or -1. */
int bv_connect(struct bv_dev *d, struct ibv_qp *qp, uint32_t remote_qpn);

/* Monotonic time in nanoseconds. */
uint64_t bv_now_ns(void);

#endif
