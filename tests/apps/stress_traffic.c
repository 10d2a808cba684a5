// SPDX-License-Identifier: MIT
/*
 * rdma_stress: the traffic engine, the same on both sides.
 *
 * Every endpoint (RC QP or the UD QP) repeats an iteration of steps (SEND,
 * WRITE + notify, READ, FAA, CAS, or a UD SEND) -n times or for -t seconds,
 * then sends DONE. Receivers never run dry: a message that consumes a
 * receive needs a credit. Credits come back piggy-backed on every message
 * (hdr.credits), or in a CREDIT message once half the queue is owed. Data
 * and DONE need two credits, a CREDIT message one: the last credit is kept
 * for returning credits, so the two sides cannot both wait for credits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "rdma_stress.h"

enum step {
	STEP_SEND,
	STEP_WRITE,
	STEP_READ,
	STEP_FAA,
	STEP_CAS,
	STEP_UD,
};

#define MAX_STEPS 8
#define MAX_ERR_LINES 10

/*
 * What an atomic's local buffer holds until the response's value lands
 * there: a fetch that returns it was completed without being written.
 */
#define ATOMIC_POISON 0xa5a5a5a5a5a5a5a5ull

struct run {
	struct stress_ctx *c;
	const struct stress_opts *o;
	struct stress_counts *cnt;
	int chan;
	bool watch_chan;
	bool abort;
	double start;
	double deadline;	/* -t */
	double last_progress;
	double next_print;
	unsigned int nsteps;
	enum step steps[MAX_STEPS];
	uint32_t threshold;
	uint32_t signal_every;
	unsigned int err_lines;
	uint8_t *tmp;		/* msg_size scratch for READ checks */
	uint64_t flushed;	/* WRs completed with IBV_WC_WR_FLUSH_ERR */
	uint64_t wc_errors;	/* other failed completions */
	uint64_t atomics_done;
};

static void fail(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	r->cnt->errors++;
	if (r->err_lines++ >= MAX_ERR_LINES)
		return;
	va_start(ap, fmt);
	fputs("rdma_stress: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* A mismatch in data: counted as corrupted (or atomic_bad) by the caller. */
static void bad(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bad(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->err_lines++ >= MAX_ERR_LINES)
		return;
	va_start(ap, fmt);
	fputs("rdma_stress: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static struct stress_ep *ep_of(struct run *r, uint64_t wr_id)
{
	unsigned int i = (unsigned int)(wr_id >> 56);

	if (i == STRESS_UD_INDEX)
		return r->c->ud;
	if (i < r->c->nrc)
		return &r->c->rc[i];
	return NULL;
}

static uint64_t wrid_slot(uint64_t wr_id)
{
	return wr_id & ((1ull << 55) - 1);
}

static bool sq_room(const struct stress_ep *ep, unsigned int n)
{
	return ep->posted - ep->completed + n <= ep->sq_depth;
}

/* Fills the common fields of the next send WR and returns its buffer. */
static uint8_t *prep(struct run *r, struct stress_ep *ep, struct stress_wr *w,
		     enum stress_slot_kind kind, bool force_signal)
{
	uint64_t p = ep->posted++;
	uint32_t slot = (uint32_t)(p % ep->sq_depth);
	uint8_t *buf = ep->lbuf + (size_t)slot * ep->msg_size;

	memset(w, 0, sizeof(*w));
	w->wr_id = stress_wrid(ep->index, false, p);
	w->signaled = force_signal || (p + 1) % r->signal_every == 0 ||
		      p + 1 - ep->completed >= ep->sq_depth;
	w->addr = buf;
	w->len = ep->msg_size;
	w->lkey = ep->lmr->lkey;
	ep->slots[slot] = (struct stress_slot){ .kind = (uint8_t)kind };
	return buf;
}

static void fill_msg(struct stress_ep *ep, uint8_t *buf, uint8_t type,
		     uint32_t len, uint64_t seq, uint32_t credits)
{
	struct stress_hdr *h = (struct stress_hdr *)buf;

	*h = (struct stress_hdr){
		.magic = STRESS_MAGIC,
		.type = type,
		.qp = (uint8_t)ep->index,
		.len = len,
		.credits = credits,
		.seq = seq,
	};
	if (len > STRESS_HDR_LEN)
		stress_fill(buf + STRESS_HDR_LEN, len - STRESS_HDR_LEN,
			    ((uint64_t)ep->index << 40) ^ type, seq);
	stress_msg_seal(buf);
}

/* A message that consumes one of the peer's receives was posted. */
static void consumed(struct stress_ep *ep, bool counted)
{
	ep->flow.credits--;
	ep->flow.tx_seq++;
	if (counted)
		ep->flow.sent++;
}

static int post(struct run *r, struct stress_ep *ep, struct stress_wr *w,
		unsigned int n)
{
	if (stress_post_send(r->c, ep, w, n)) {
		r->cnt->errors++;
		r->abort = true;
		return -1;
	}
	r->last_progress = stress_now();
	return 0;
}

/* Posts a message of the given type (DATA, CREDIT or DONE). */
static int send_msg(struct run *r, struct stress_ep *ep, uint8_t type)
{
	struct stress_flow *f = &ep->flow;
	bool data = type == STRESS_MSG_DATA;
	uint32_t len = data ? ep->msg_size : STRESS_HDR_LEN;
	struct stress_wr w;
	uint8_t *buf;
	int inject;

	if (f->credits < (type == STRESS_MSG_CREDIT ? 1u : 2u) ||
	    !sq_room(ep, 1))
		return 0;
	buf = prep(r, ep, &w, STRESS_SLOT_SEND, type != STRESS_MSG_DATA);
	inject = data && !ep->ud && ep->index == 0 &&
		 ep->data_count == STRESS_INJECT_AT ? r->o->inject : 0;
	if (inject == STRESS_INJECT_RKEY)
		inject = 0;	/* step_write() plants that one */
	if (inject == STRESS_INJECT_SEQGAP)
		f->tx_seq++;
	else if (inject == STRESS_INJECT_DUP && f->tx_seq)
		f->tx_seq--;
	fill_msg(ep, buf, type, len, f->tx_seq, f->owed);
	if (inject == STRESS_INJECT_CORRUPT)
		buf[len - 1] ^= 0x01;
	if (inject)
		stress_err("injecting a fault (%d) in seq %" PRIu64
			   " on qp %u", inject, f->tx_seq, ep->qp->qp_num);
	w.len = len;
	w.op = STRESS_WR_SEND;
	if (data && !ep->ud && ep->data_count % 3 == 2) {
		w.op = STRESS_WR_SEND_IMM;
		w.imm = (uint32_t)f->tx_seq;
	}
	if (post(r, ep, &w, 1))
		return -1;
	f->owed = 0;
	consumed(ep, data);
	if (data)
		ep->data_count++;
	if (type == STRESS_MSG_DONE)
		f->done_sent = true;
	return 1;
}

static int step_write(struct run *r, struct stress_ep *ep)
{
	struct stress_flow *f = &ep->flow;
	struct stress_wr w[2];
	uint64_t seq = f->tx_seq;
	uint64_t wslot = seq % ep->rq_depth;
	bool imm = ep->write_count % 2;
	const struct stress_hdr *h;
	uint8_t *buf;

	if (f->credits < 2 || !sq_room(ep, imm ? 1 : 2))
		return 0;
	buf = prep(r, ep, &w[0], STRESS_SLOT_WRITE, false);
	fill_msg(ep, buf, STRESS_MSG_WDATA, ep->msg_size, seq, 0);
	h = (const struct stress_hdr *)buf;
	w[0].raddr = ep->raddr + stress_x_write(ep, wslot);
	w[0].rkey = ep->rkey;
	if (r->o->inject == STRESS_INJECT_RKEY && ep->index == 0 &&
	    ep->write_count == STRESS_INJECT_AT) {
		w[0].rkey ^= 0x5a5a00;
		stress_err("injecting a WRITE with a wrong rkey on qp %u",
			   ep->qp->qp_num);
	}
	if (imm) {
		w[0].op = STRESS_WR_WRITE_IMM;
		w[0].imm = (uint32_t)seq;
		if (post(r, ep, w, 1))
			return -1;
	} else {
		struct stress_hdr *n;

		w[0].op = STRESS_WR_WRITE;
		buf = prep(r, ep, &w[1], STRESS_SLOT_SEND, false);
		fill_msg(ep, buf, STRESS_MSG_WNOTIFY, STRESS_HDR_LEN, seq,
			 f->owed);
		n = (struct stress_hdr *)buf;
		n->aux = wslot;
		n->wcsum = h->csum;
		stress_msg_seal(buf);
		w[1].op = STRESS_WR_SEND;
		w[1].len = STRESS_HDR_LEN;
		if (post(r, ep, w, 2))
			return -1;
		f->owed = 0;
	}
	consumed(ep, true);
	ep->write_count++;
	return 1;
}

static int step_read(struct run *r, struct stress_ep *ep)
{
	struct stress_wr w;
	uint32_t rslot = (uint32_t)(ep->read_count % STRESS_READ_SLOTS);

	if (!sq_room(ep, 1))
		return 0;
	prep(r, ep, &w, STRESS_SLOT_READ, true);
	ep->slots[(ep->posted - 1) % ep->sq_depth].rslot = rslot;
	w.op = STRESS_WR_READ;
	w.raddr = ep->raddr + stress_x_read(ep, rslot);
	w.rkey = ep->rkey;
	if (post(r, ep, &w, 1))
		return -1;
	ep->read_count++;
	return 1;
}

static int step_atomic(struct run *r, struct stress_ep *ep, bool cas)
{
	const uint64_t poison = ATOMIC_POISON;
	struct stress_wr w;
	struct stress_slot *s;
	uint8_t *buf;

	if (!sq_room(ep, 1))
		return 0;
	buf = prep(r, ep, &w, cas ? STRESS_SLOT_CAS : STRESS_SLOT_FAA, true);
	memcpy(buf, &poison, sizeof(poison));
	s = &ep->slots[(ep->posted - 1) % ep->sq_depth];
	w.len = 8;
	w.rkey = ep->rkey;
	if (!cas) {
		w.op = STRESS_WR_FAA;
		w.raddr = ep->raddr + STRESS_X_FAA;
		w.compare_add = 1;
		s->expect = ep->faa_posted++;
	} else {
		w.op = STRESS_WR_CAS;
		w.raddr = ep->raddr + STRESS_X_CAS;
		s->expect = ep->cas_value;
		if (ep->cas_posted % 4 == 3) {
			/* one in four must fail: the word stays */
			w.compare_add = ep->cas_value ^ 0x5a5a5a5a5a5a5a5aull;
			w.swap = 0xdeadbeefull;
		} else {
			w.compare_add = ep->cas_value;
			w.swap = ep->cas_value + 1;
			ep->cas_value++;
		}
		ep->cas_posted++;
	}
	if (post(r, ep, &w, 1))
		return -1;
	return 1;
}

static int do_step(struct run *r, struct stress_ep *ep, enum step s)
{
	switch (s) {
	case STEP_SEND:
	case STEP_UD:
		return send_msg(r, ep, STRESS_MSG_DATA);
	case STEP_WRITE:
		return step_write(r, ep);
	case STEP_READ:
		return step_read(r, ep);
	case STEP_FAA:
		return step_atomic(r, ep, false);
	case STEP_CAS:
		return step_atomic(r, ep, true);
	}
	return -1;
}

static bool ep_traffic_done(const struct run *r, const struct stress_ep *ep)
{
	if (r->o->iters)
		return ep->iter >= r->o->iters;
	return false;	/* -t: decided when an iteration would start */
}

/* Posts what the endpoint can post now. Returns -1 on error. */
static int ep_advance(struct run *r, struct stress_ep *ep, double now)
{
	unsigned int nsteps = ep->ud ? 1 : r->nsteps;
	static const enum step ud_steps[] = { STEP_UD };
	const enum step *steps = ep->ud ? ud_steps : r->steps;
	int ret;

	while (!ep->flow.done_sent) {
		if (!nsteps || ep_traffic_done(r, ep) ||
		    (!r->o->iters && ep->step == 0 && now >= r->deadline)) {
			if (send_msg(r, ep, STRESS_MSG_DONE) < 0)
				return -1;
			break;
		}
		if (ep->step == 0 && now < ep->next_time)
			break;
		ret = do_step(r, ep, steps[ep->step]);
		if (ret < 0)
			return -1;
		if (ret == 0)
			break;	/* waits for credits or send queue room */
		if (++ep->step == nsteps) {
			ep->step = 0;
			ep->iter++;
			if (r->o->pause_ms)
				ep->next_time = now + r->o->pause_ms / 1000.0;
		}
	}
	/* return credits that no data will carry soon */
	if (ep->flow.owed >= r->threshold) {
		ret = send_msg(r, ep, STRESS_MSG_CREDIT);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void wc_failed(struct run *r, const struct stress_wc *wc, bool recv,
		      const struct stress_ep *ep)
{
	r->abort = true;
	if (wc->status == IBV_WC_WR_FLUSH_ERR) {
		/* a consequence: drain_errors() looks for the cause */
		if (!r->flushed++)
			r->cnt->errors++;
		return;
	}
	r->wc_errors++;
	fail(r, "%s completion failed on %s qp %u (wr_id 0x%" PRIx64 "): %s "
	     "(status %d, vendor_err 0x%x)", recv ? "receive" : "send",
	     !ep ? "unknown" : ep->ud ? "UD" : "RC",
	     ep && ep->qp ? ep->qp->qp_num : 0, wc->wr_id,
	     ibv_wc_status_str(wc->status), wc->status, wc->vendor_err);
}

static void send_done(struct run *r, const struct stress_wc *wc)
{
	struct stress_ep *ep = ep_of(r, wc->wr_id);
	uint64_t p = wrid_slot(wc->wr_id);
	struct stress_slot *s;
	uint8_t *buf;
	uint64_t v;

	if (!ep) {
		fail(r, "send completion with unknown wr_id 0x%" PRIx64,
		     wc->wr_id);
		r->abort = true;
		return;
	}
	if (wc->status != IBV_WC_SUCCESS) {
		wc_failed(r, wc, false, ep);
		return;
	}
	if (p < ep->completed || p >= ep->posted) {
		fail(r, "send completion out of order on qp %u: WR %" PRIu64
		     ", %" PRIu64 " already complete, %" PRIu64 " posted",
		     ep->qp->qp_num, p, ep->completed, ep->posted);
		r->abort = true;
		return;
	}
	s = &ep->slots[p % ep->sq_depth];
	buf = ep->lbuf + (size_t)(p % ep->sq_depth) * ep->msg_size;
	switch ((enum stress_slot_kind)s->kind) {
	case STRESS_SLOT_READ:
		stress_read_pattern(r->tmp, ep->msg_size, ep->rseed, ep->index,
				    s->rslot);
		if (wc->opcode != IBV_WC_RDMA_READ) {
			fail(r, "READ completion with opcode %d", wc->opcode);
		} else if (memcmp(r->tmp, buf, ep->msg_size)) {
			r->cnt->read_bad++;
			bad(r, "RDMA READ of slot %u on qp %u returned wrong "
			    "data", s->rslot, ep->qp->qp_num);
		} else {
			r->cnt->read_ok++;
		}
		break;
	case STRESS_SLOT_FAA:
	case STRESS_SLOT_CAS:
		memcpy(&v, buf, sizeof(v));
		if (v != s->expect) {
			r->cnt->atomic_bad++;
			if (v == ATOMIC_POISON)
				r->cnt->atomic_unwritten++;
			bad(r, "%s on qp %u fetched %" PRIu64 ", expected %"
			    PRIu64 " (WR %" PRIu64 ", %" PRIu64 " completed, %"
			    PRIu64 " posted, opcode %d)%s",
			    s->kind == STRESS_SLOT_FAA ?
			    "fetch-and-add" : "compare-and-swap",
			    ep->qp->qp_num, v, s->expect, p, ep->completed,
			    ep->posted, wc->opcode, v == ATOMIC_POISON ?
			    ": the buffer was never written, the WR completed"
			    " without the atomic's response" : "");
		} else {
			r->cnt->atomic_ok++;
		}
		break;
	case STRESS_SLOT_FREE:
	case STRESS_SLOT_SEND:
	case STRESS_SLOT_WRITE:
		break;
	}
	ep->completed = p + 1;
}

static bool check_written(struct run *r, struct stress_ep *ep, uint64_t seq,
			  uint64_t wslot, const uint32_t *wcsum)
{
	const uint8_t *d = ep->xbuf + stress_x_write(ep, wslot);
	struct stress_hdr h;

	memcpy(&h, d, sizeof(h));
	if (!stress_msg_check(d, ep->msg_size) ||
	    h.type != STRESS_MSG_WDATA || h.seq != seq || h.qp != ep->index ||
	    (wcsum && h.csum != *wcsum)) {
		bad(r, "RDMA WRITE data in slot %" PRIu64 " of qp %u is wrong "
		    "(seq %" PRIu64 " expected, header seq %" PRIu64 ")",
		    wslot, ep->qp->qp_num, seq, h.seq);
		return false;
	}
	return true;
}

static const char *gid_str(const uint8_t *gid)
{
	static char buf[INET6_ADDRSTRLEN];

	if (!inet_ntop(AF_INET6, gid, buf, sizeof(buf)))
		return "?";
	return buf;
}

/*
 * The 40 bytes ahead of a UD message: a GRH whose source GID is the
 * sender's, or with RoCE v2 over IPv4, 20 unused bytes then the IPv4
 * header, whose source address is the sender's (the GID's last 4 bytes).
 */
static bool grh_from_peer(const struct stress_ep *ep, const uint8_t *grh)
{
	static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					0xff, 0xff };

	if (!memcmp(ep->rgid, v4, sizeof(v4)))
		return !memcmp(grh + 20 + 12, ep->rgid + 12, 4);
	return !memcmp(grh + 8, ep->rgid, 16);
}

/* Sequence number from the low 32 bits carried in an immediate. */
static uint64_t seq_from_imm(const struct stress_flow *f, uint32_t imm)
{
	uint64_t s = (f->rx_expect & ~0xffffffffull) | imm;

	if (s + 0x80000000ull < f->rx_expect)
		s += 1ull << 32;
	return s;
}

static void recv_done(struct run *r, const struct stress_wc *wc)
{
	struct stress_ep *ep = ep_of(r, wc->wr_id);
	uint64_t slot = wrid_slot(wc->wr_id);
	struct stress_flow *f;
	struct stress_hdr h;
	const uint8_t *msg;
	uint64_t expect;
	uint32_t len;
	int acc;

	if (!ep || !(wc->wr_id & STRESS_WRID_RECV) || slot >= ep->rq_depth) {
		fail(r, "receive completion with unknown wr_id 0x%" PRIx64,
		     wc->wr_id);
		r->abort = true;
		return;
	}
	if (wc->status != IBV_WC_SUCCESS) {
		wc_failed(r, wc, true, ep);
		return;
	}
	f = &ep->flow;
	if (wc->qp_num != ep->qp->qp_num) {
		fail(r, "receive completion of qp %u reports qp_num %u",
		     ep->qp->qp_num, wc->qp_num);
	}
	msg = ep->rbuf + slot * ep->rbuf_size;
	len = wc->byte_len;

	if (!ep->ud && wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
		uint64_t seq = seq_from_imm(f, wc->imm);

		acc = stress_seq_accept(f, seq);
		if (acc >= 0)
			f->rcvd++;
		if (check_written(r, ep, seq, seq % ep->rq_depth, NULL))
			r->cnt->write_ok++;
		else
			f->corrupt++;
		goto repost;
	}
	if (wc->opcode != IBV_WC_RECV) {
		fail(r, "receive completion with opcode %d", wc->opcode);
		r->abort = true;
		return;
	}
	if (ep->ud) {
		if (wc->src_qp != ep->rqpn)
			fail(r, "UD receive from qp %u, expected the peer's %u",
			     wc->src_qp, ep->rqpn);
		if (!(wc->wc_flags & IBV_WC_GRH) || len < STRESS_GRH_LEN) {
			fail(r, "UD receive without GRH (byte_len %u)", len);
			r->abort = true;
			return;
		}
		if (ep->rgrh && !grh_from_peer(ep, msg))
			fail(r, "UD receive: the GRH does not hold the peer's "
			     "GID %s", gid_str(ep->rgid));
		msg += STRESS_GRH_LEN;
		len -= STRESS_GRH_LEN;
	}
	if (!stress_msg_check(msg, len)) {
		f->corrupt++;
		bad(r, "corrupted message on %s qp %u (%u bytes)",
		    ep->ud ? "UD" : "RC", ep->qp->qp_num, len);
		/* its credits and sequence number cannot be trusted */
		r->abort = true;
		return;
	}
	memcpy(&h, msg, sizeof(h));
	if (h.qp != (uint8_t)ep->index ||
	    ((wc->wc_flags & IBV_WC_WITH_IMM) && wc->imm != (uint32_t)h.seq) ||
	    h.credits > ep->rq_depth) {
		f->corrupt++;
		bad(r, "message on qp %u has qp %u, credits %u, imm %u for seq "
		    "%" PRIu64, ep->qp->qp_num, h.qp, h.credits, wc->imm,
		    h.seq);
		r->abort = true;
		return;
	}
	expect = f->rx_expect;
	acc = stress_seq_accept(f, h.seq);
	if (acc > 0)
		bad(r, "%s qp %u: seq %" PRIu64 " arrived, expected %" PRIu64,
		    ep->ud ? "UD" : "RC", ep->qp->qp_num, h.seq, expect);
	else if (acc < 0)
		bad(r, "%s qp %u: duplicate seq %" PRIu64,
		    ep->ud ? "UD" : "RC", ep->qp->qp_num, h.seq);
	f->credits += h.credits;
	switch (h.type) {
	case STRESS_MSG_DATA:
		if (acc >= 0) {
			f->rcvd++;
			if (ep->ud)
				r->cnt->ud_ok++;
		}
		break;
	case STRESS_MSG_WNOTIFY:
		if (ep->ud || h.aux >= ep->rq_depth) {
			f->corrupt++;
			bad(r, "bad write notice on qp %u", ep->qp->qp_num);
			break;
		}
		if (acc >= 0)
			f->rcvd++;
		if (check_written(r, ep, h.seq, h.aux, &h.wcsum))
			r->cnt->write_ok++;
		else
			f->corrupt++;
		break;
	case STRESS_MSG_CREDIT:
		break;
	case STRESS_MSG_DONE:
		f->done_rcvd = true;
		break;
	default:
		f->corrupt++;
		bad(r, "message of unknown type %u on qp %u", h.type,
		    ep->qp->qp_num);
		break;
	}
repost:
	if (stress_post_recv(ep, (uint32_t)slot)) {
		r->cnt->errors++;
		r->abort = true;
		return;
	}
	f->owed++;
}

static int poll_all(struct run *r)
{
	struct stress_wc wc[16];
	int n, total = 0;

	for (int recv = 0; recv < 2; recv++) {
		n = stress_poll(r->c, recv, wc, 16);
		if (n < 0) {
			r->cnt->errors++;
			r->abort = true;
			return -1;
		}
		for (int i = 0; i < n && !r->abort; i++) {
			if (recv)
				recv_done(r, &wc[i]);
			else
				send_done(r, &wc[i]);
		}
		total += n;
	}
	if (total)
		r->last_progress = stress_now();
	return total;
}

/*
 * After a failed completion: the QP is in the error state and flushes its
 * WRs; read the CQs a little longer so that the completion which caused it
 * gets printed even when flushes came first.
 */
static void drain_errors(struct run *r)
{
	double end = stress_now() + 1.0;
	struct stress_wc wc[16];

	while (stress_now() < end) {
		int got = 0;

		for (int recv = 0; recv < 2; recv++) {
			int n = stress_poll(r->c, recv, wc, 16);

			for (int i = 0; i < n; i++) {
				if (wc[i].status != IBV_WC_SUCCESS)
					wc_failed(r, &wc[i], recv,
						  ep_of(r, wc[i].wr_id));
			}
			got += n > 0 ? n : 0;
		}
		if (!got) {
			struct timespec ts = { .tv_nsec = 10 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (r->flushed)
		stress_err("%" PRIu64 " work requests flushed (a QP went to "
			   "the error state)%s", r->flushed,
			   r->wc_errors ? "" : "; no other failed completion");
}

static bool ep_finished(const struct stress_ep *ep)
{
	return ep->flow.done_sent && ep->flow.done_rcvd &&
	       ep->posted == ep->completed;
}

/* Looks at the side channel: the peer's end marker, abort, or close. */
static void watch_chan(struct run *r, int wait_us)
{
	struct pollfd p = { .fd = r->chan, .events = POLLIN };
	struct timespec ts = { .tv_nsec = wait_us * 1000L };
	uint8_t b;
	ssize_t n;

	if (!r->watch_chan) {
		nanosleep(&ts, NULL);
		return;
	}
	if (ppoll(&p, 1, &ts, NULL) <= 0)
		return;
	n = recv(r->chan, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		fail(r, "the peer closed the side channel");
		r->abort = true;
		r->watch_chan = false;
	} else if (b == 'A') {
		fail(r, "the peer aborted");
		r->abort = true;
		r->watch_chan = false;
	} else {
		r->watch_chan = false;	/* 'F': the peer is done, we go on */
	}
}

static void print_progress(struct run *r, double now)
{
	uint64_t sent = 0, rcvd = 0;

	for (unsigned int i = 0; i < r->c->nrc; i++) {
		sent += r->c->rc[i].flow.sent;
		rcvd += r->c->rc[i].flow.rcvd;
	}
	if (r->c->ud) {
		sent += r->c->ud->flow.sent;
		rcvd += r->c->ud->flow.rcvd;
	}
	fprintf(stderr, "rdma_stress: progress %.1fs sent=%" PRIu64
		" received=%" PRIu64 " rdma_write_ok=%" PRIu64
		" rdma_read_ok=%" PRIu64 " atomic_ok=%" PRIu64 " ud_ok=%"
		PRIu64 "\n", now - r->start, sent, rcvd, r->cnt->write_ok,
		r->cnt->read_ok, r->cnt->atomic_ok, r->cnt->ud_ok);
}

static void print_stuck(struct run *r, double now)
{
	fail(r, "no progress for %.0f s: giving up", now - r->last_progress);
	for (unsigned int i = 0; i <= r->c->nrc; i++) {
		struct stress_ep *ep = i < r->c->nrc ? &r->c->rc[i] : r->c->ud;

		if (!ep)
			continue;
		fprintf(stderr, "rdma_stress:   %s qp %u: iter %" PRIu64
			" credits %u owed %u posted %" PRIu64 " completed %"
			PRIu64 " done_sent %d done_rcvd %d\n",
			ep->ud ? "UD" : "RC", ep->qp->qp_num, ep->iter,
			ep->flow.credits, ep->flow.owed, ep->posted,
			ep->completed, ep->flow.done_sent, ep->flow.done_rcvd);
	}
}

static void setup_steps(struct run *r)
{
	uint32_t ops = r->o->ops;

	if (ops & STRESS_OP_SEND)
		r->steps[r->nsteps++] = STEP_SEND;
	if (ops & STRESS_OP_WRITE)
		r->steps[r->nsteps++] = STEP_WRITE;
	if (ops & STRESS_OP_READ)
		r->steps[r->nsteps++] = STEP_READ;
	if (ops & STRESS_OP_ATOMIC) {
		r->steps[r->nsteps++] = STEP_FAA;
		r->steps[r->nsteps++] = STEP_CAS;
	}
}

/*
 * Runs the traffic until every endpoint has sent and received DONE and all
 * its WRs completed, or until something fails. Meanwhile the side channel
 * (when open: chan >= 0) is watched for the peer's end: 'F' finished,
 * 'A' aborted, or a close.
 */
int stress_run(struct stress_ctx *c, int chan, struct stress_counts *cnt,
	       bool *aborted)
{
	struct run r = {
		.c = c,
		.o = c->o,
		.cnt = cnt,
		.chan = chan,
		.watch_chan = chan >= 0,
	};
	unsigned int idle = 0;

	setup_steps(&r);
	r.threshold = c->o->depth / 2;
	r.signal_every = c->o->signal_every;
	if (r.signal_every > c->o->depth)
		r.signal_every = c->o->depth;
	r.tmp = malloc(c->o->size);
	if (!r.tmp) {
		stress_perr("malloc", errno);
		cnt->errors++;
		r.abort = true;
	}
	r.start = r.last_progress = stress_now();
	r.deadline = r.start + c->o->secs;
	r.next_print = r.start + c->o->progress;

	while (!r.abort) {
		double now = stress_now();
		bool all_done = true;
		uint64_t before = 0, after = 0;
		int n;

		for (unsigned int i = 0; i <= c->nrc && !r.abort; i++) {
			struct stress_ep *ep = i < c->nrc ? &c->rc[i] : c->ud;

			if (!ep)
				continue;
			before += ep->posted;
			if (ep_advance(&r, ep, now) < 0)
				break;
			after += ep->posted;
			if (!ep_finished(ep))
				all_done = false;
		}
		if (r.abort)
			break;
		n = poll_all(&r);
		if (n < 0 || r.abort)
			break;
		if (all_done)
			break;
		if (c->o->progress && now >= r.next_print) {
			print_progress(&r, now);
			r.next_print = now + c->o->progress;
		}
		if (n || after != before) {
			idle = 0;
			continue;
		}
		if (++idle < 64)
			continue;
		if (now - r.last_progress > c->o->timeout_s) {
			print_stuck(&r, now);
			r.abort = true;
			break;
		}
		watch_chan(&r, 200);
	}

	if (r.flushed || r.wc_errors)
		drain_errors(&r);
	for (unsigned int i = 0; i <= c->nrc; i++) {
		struct stress_ep *ep = i < c->nrc ? &c->rc[i] : c->ud;

		if (!ep)
			continue;
		cnt->sent += ep->flow.sent;
		cnt->rcvd += ep->flow.rcvd;
		cnt->dup += ep->flow.dup;
		cnt->reord += ep->flow.reord;
		cnt->corrupt += ep->flow.corrupt;
	}
	cnt->corrupt += cnt->read_bad;
	if (c->o->progress)
		print_progress(&r, stress_now());
	free(r.tmp);
	*aborted = r.abort;
	return 0;
}
