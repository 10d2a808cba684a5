/* SPDX-License-Identifier: MIT */
/*
 * The shim's control requests. Each handler runs in the shim thread with
 * shim.lock held, fills r->out (allocating from r->arena) and returns 0,
 * or calls vmig_req_fail() and returns its -1: then nothing has changed
 * (checks come before the first change).
 */
#ifndef VMIG_VERBS_CTL_OPS_H
#define VMIG_VERBS_CTL_OPS_H

#include "msg.h"
#include "shim.h"

struct vmig_arena {
	void **blocks;
	size_t n, cap;
};

void *vmig_arena_alloc(struct vmig_arena *a, size_t size);
char *vmig_arena_strdup(struct vmig_arena *a, const char *s);
void vmig_arena_dispose(struct vmig_arena *a);

struct vmig_req {
	const Vmig__CtlMsg *in;
	Vmig__CtlMsg *out;
	struct vmig_arena *arena;
	Vmig__Error err;
	char desc[256];
};

int vmig_req_fail(struct vmig_req *r, Vmig__ErrClass cls, int err_no,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void vmig_req_time(struct vmig_req *r, const char *step, uint64_t usec);
uint64_t vmig_now_us(void);

/* Endpoint helpers (state.c) */
Vmig__Endpoint *vmig_qp_local_ep(struct vmig_req *r, struct vmig_qp *qp);
Vmig__Endpoint *vmig_qp_remote_ep(struct vmig_req *r, struct vmig_qp *qp);
bool vmig_qp_matches(struct vmig_qp *qp, const Vmig__ConnFilter *f);
bool vmig_qp_connected(struct vmig_qp *qp);
int vmig_fill_conns(struct vmig_req *r, Vmig__Connection ***conns,
		    size_t *n, bool selected_only);

int vmig_op_state(struct vmig_req *r);
int vmig_op_suspend(struct vmig_req *r);
int vmig_op_resume(struct vmig_req *r);
int vmig_op_abort(struct vmig_req *r);
int vmig_op_capture(struct vmig_req *r);
int vmig_op_teardown(struct vmig_req *r);
int vmig_op_restore(struct vmig_req *r);
int vmig_op_reconnect(struct vmig_req *r);

/* capture.c: the ERR flush shared by teardown and a peer's reset */
int vmig_qp_flush_recvs(struct vmig_qp **qps, size_t n);
Vmig__VerbsImage *vmig_image_build(struct vmig_req *r);

#endif
