// SPDX-License-Identifier: MIT
/*
 * TEARDOWN and CAPTURE. Teardown moves every QP to ERR so the HCA flushes
 * the receives it still holds: their count, per QP, says which of the last
 * receives posted were not consumed (receive queues complete in order).
 * Every completion the application has not polled is drained into the
 * shim's CQ buffers; then every HCA resource is destroyed and the devices
 * closed, so no uverbs fd or mapping is left. The image records it all.
 * After pre-copy rounds, teardown first writes to every page the HCA may
 * have written (dirty_mrs below).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"

/* wr_id of the receive posted after the ERR transition: its flush comes
 * after the flushes of every receive posted before it (queues are FIFO). */
#define VMIG_FLUSH_MARKER 0x766d69676d61726bull

static bool in_set(struct vmig_qp **qps, size_t n, uint32_t virt_qpn,
		   struct vmig_qp **hit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (qps[i]->ib.qp_base.qp_num == virt_qpn) {
			*hit = qps[i];
			return true;
		}
	return false;
}

/* Drains a CQ into its buffer and takes the flush completions of the QPs
 * in qps out of it, counting them per QP in qp->outstanding. */
static int cq_take_flushes(struct vmig_cq *cq, struct vmig_qp **qps,
			   size_t n)
{
	uint32_t i, j = 0;
	int got;

	pthread_mutex_lock(&cq->lock);
	got = vmig_cq_drain(cq);
	for (i = 0; i < cq->buf_n; i++) {
		struct ibv_wc *wc = &cq->buf[cq->buf_head + i];
		struct vmig_qp *qp;

		if (wc->status == IBV_WC_WR_FLUSH_ERR &&
		    in_set(qps, n, wc->qp_num, &qp)) {
			if (wc->wr_id == VMIG_FLUSH_MARKER && qp->marker_posted)
				qp->marker_seen = true;
			else
				qp->outstanding++;
			continue;
		}
		cq->buf[cq->buf_head + j++] = *wc;
	}
	cq->buf_n = j;
	if (!j) {
		cq->buf_head = 0;
		atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_BUF);
	}
	pthread_mutex_unlock(&cq->lock);
	return got;
}

/* shim.lock held, the QPs quiesced: ERR, then count the flushed receives.
 * The HCA flushes asynchronously: a marker receive posted after the ERR
 * transition tells when a QP's flushes are all in (a full receive queue
 * takes no marker, but then every receive the ring holds was posted). */
int vmig_qp_flush_recvs(struct vmig_qp **qps, size_t n)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
	uint64_t t0 = vmig_now_us(), last = t0;
	uint64_t expect = 0, seen = 0, prev = 0;
	bool done;
	size_t i;
	int ret = 0;

	/* the application must not poll the flushes: fence the CQs */
	for (i = 0; i < n; i++) {
		vmig_quiesce_cq(qps[i]->rcq, VMIG_SLOW_FENCE);
		vmig_quiesce_cq(qps[i]->scq, VMIG_SLOW_FENCE);
	}
	for (i = 0; i < n; i++) {
		struct vmig_qp *qp = qps[i];

		qp->outstanding = 0;
		if (!qp->srq)
			expect += qp->ring.posted < qp->ring.size ?
				qp->ring.posted : qp->ring.size;
		if (vmig_real.modify_qp(qp->real, &a, IBV_QP_STATE)) {
			pr_perror("qp %#x: to ERR", qp->ib.qp_base.qp_num);
			ret = -errno;
			goto out;
		}
		qp->marker_seen = qp->marker_posted = false;
		if (!qp->srq) {
			struct ibv_recv_wr mk = { .wr_id = VMIG_FLUSH_MARKER };
			struct ibv_recv_wr *bad;

			qp->marker_posted = !qp->real->context->ops.post_recv(
				qp->real, &mk, &bad);
			/* rxe (6.1) flushes its receive queue when a QP enters
			 * ERR, not for a receive posted in ERR: ERR again
			 * (always legal) has the marker flushed too */
			if (qp->marker_posted)
				vmig_real.modify_qp(qp->real, &a, IBV_QP_STATE);
		}
	}
	for (;;) {
		for (i = 0; i < n; i++) {
			cq_take_flushes(qps[i]->rcq, qps, n);
			if (qps[i]->scq != qps[i]->rcq)
				cq_take_flushes(qps[i]->scq, qps, n);
		}
		seen = 0;
		done = true;
		for (i = 0; i < n; i++) {
			struct vmig_qp *qp = qps[i];

			seen += qp->outstanding;
			if (qp->srq)
				continue;
			if (qp->marker_posted ? !qp->marker_seen :
			    qp->outstanding < qp->ring.size)
				done = false;
		}
		if (seen != prev) {
			prev = seen;
			last = vmig_now_us();
		}
		/* without a marker (or one never flushed), quiet for 800 ms
		 * means done */
		if (done || seen >= expect + n ||
		    vmig_now_us() - last > 800000 ||
		    vmig_now_us() - t0 > 5000000)
			break;
		vmig_events_pump(5);
	}
	for (i = 0; i < n; i++) {
		struct vmig_qp *qp = qps[i];
		uint32_t cap = qp->ring.posted < qp->ring.size ?
			(uint32_t)qp->ring.posted : qp->ring.size;

		if (!qp->srq && qp->marker_posted && !qp->marker_seen)
			pr_debug("qp %#x: flush incomplete after %llu ms: %u "
				"receives counted", qp->ib.qp_base.qp_num,
				(unsigned long long)(last - t0) / 1000,
				qp->outstanding);
		if (qp->outstanding > cap) {
			pr_warn("qp %#x: %u flushes for %u receives",
				qp->ib.qp_base.qp_num, qp->outstanding, cap);
			qp->outstanding = cap;
		}
		pr_debug("qp %#x: %u receives were still posted",
			 qp->ib.qp_base.qp_num, qp->outstanding);
	}
out:
	for (i = 0; i < n; i++) {
		atomic_fetch_and(&qps[i]->rcq->slow, ~(uint32_t)VMIG_SLOW_FENCE);
		atomic_fetch_and(&qps[i]->scq->slow, ~(uint32_t)VMIG_SLOW_FENCE);
	}
	return ret;
}

static int count_uverbs(void)
{
	char link[256], path[300], line[512];
	struct dirent *d;
	DIR *dir;
	FILE *f;
	int n = 0;

	dir = opendir("/proc/self/fd");
	while (dir && (d = readdir(dir))) {
		ssize_t l;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l > 0) {
			link[l] = 0;
			n += strstr(link, "uverbs") != NULL;
		}
	}
	if (dir)
		closedir(dir);
	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "uverbs") != NULL;
	if (f)
		fclose(f);
	return n;
}

struct span {
	uintptr_t lo, hi;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* One CPU write to each page of [lo, hi): a locked add of zero changes
 * no byte, even against an application thread writing the same one. */
static uint64_t touch(uintptr_t lo, uintptr_t hi, uintptr_t page)
{
	uintptr_t p;
	uint64_t n = 0;

	for (p = lo & ~(page - 1); p < hi; p += page, n++)
		__atomic_fetch_add((volatile uint8_t *)(p < lo ? lo : p), 0,
				   __ATOMIC_RELAXED);
	return n;
}

/*
 * DMA writes set no soft-dirty bit (DESIGN.md section 3): what a peer
 * RDMA-wrote, or a received SEND put, after a pre-copy round took a page
 * would be restored from that round's stale copy. The QPs are in ERR, so
 * the HCA writes no more; a CPU write to every page of every MR the HCA
 * may write marks them for the final dump. Overlapping MRs are merged
 * (one touch per page), and only what /proc/self/maps shows writable is
 * touched: an application may unmap a buffer it never deregistered.
 * Linear in registered writable memory; returns the pages touched.
 */
static uint64_t dirty_mrs(struct vmig_req *r)
{
	const int writes = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			   IBV_ACCESS_REMOTE_ATOMIC;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	struct span *sp;
	struct vmig_mr *mr;
	size_t n = 0, i, j;
	uint64_t pages = 0;
	char line[512];
	FILE *f;

	vmig_list_for_each(mr, &vmig_shim.mrs, struct vmig_mr, link)
		n++;
	sp = vmig_arena_alloc(r->arena, (n + 1) * sizeof(*sp));
	n = 0;
	vmig_list_for_each(mr, &vmig_shim.mrs, struct vmig_mr, link) {
		if (!(mr->access & writes) || !mr->ib.length)
			continue;
		sp[n].lo = (uintptr_t)mr->ib.addr;
		sp[n].hi = sp[n].lo + mr->ib.length;
		n++;
	}
	if (!n)
		return 0;
	qsort(sp, n, sizeof(*sp), span_cmp);
	for (i = 0, j = 1; j < n; j++) {
		if (sp[j].lo <= sp[i].hi) {
			if (sp[j].hi > sp[i].hi)
				sp[i].hi = sp[j].hi;
		} else {
			sp[++i] = sp[j];
		}
	}
	n = i + 1;
	f = fopen("/proc/self/maps", "re");
	if (!f) {
		pr_perror("dirty MRs: /proc/self/maps");
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 ||
		    perms[1] != 'w')
			continue;
		for (i = 0; i < n; i++) {
			uintptr_t a = sp[i].lo > lo ? sp[i].lo : lo;
			uintptr_t b = sp[i].hi < hi ? sp[i].hi : hi;

			if (a < b)
				pages += touch(a, b, page);
		}
	}
	fclose(f);
	return pages;
}

/* A negative control for tests: VMIG_NO_DIRTY_MRS=1 in the process's
 * environment skips the touch that TEARDOWN asked for. */
static bool dirty_mrs_wanted(const Vmig__Teardown *td)
{
	const char *no = getenv("VMIG_NO_DIRTY_MRS");

	if (!td || !td->has_dirty_mrs || !td->dirty_mrs)
		return false;
	if (no && !strcmp(no, "1")) {
		pr_warn("dirty MRs asked for, skipped (VMIG_NO_DIRTY_MRS=1)");
		return false;
	}
	return true;
}

int vmig_op_teardown(struct vmig_req *r)
{
	struct vmig_qp *qp, **qps;
	struct vmig_cq *cq;
	struct vmig_srq *srq;
	struct vmig_mr *mr;
	struct vmig_ah *ah;
	struct vmig_chan *ch;
	struct vmig_pd *pd;
	struct vmig_ctx *ctx;
	uint64_t t0 = vmig_now_us(), t1;
	size_t n = 0;
	int left;

	if (vmig_shim.phase != VMIG_PHASE_SUSPENDED)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				     "teardown in phase %s (suspend first)",
				     vmig_phase_name(vmig_shim.phase));
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!qp->selected)
			return vmig_req_fail(r,
				VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				"qp %#x is not suspended: suspend all first",
				qp->ib.qp_base.qp_num);
		n++;
	}
	qps = vmig_arena_alloc(r->arena, (n + 1) * sizeof(*qps));
	n = 0;
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		vmig_quiesce_qp(qp, VMIG_SLOW_GONE);
		qp->draining = false;
		qps[n++] = qp;
	}
	/* from here the application polls only the shim's buffers */
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link)
		vmig_quiesce_cq(cq, VMIG_SLOW_GONE);
	if (vmig_qp_flush_recvs(qps, n))
		pr_warn("flush failed: receives may be lost");
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link) {
		pthread_mutex_lock(&cq->lock);
		vmig_cq_drain(cq);
		pthread_mutex_unlock(&cq->lock);
	}
	vmig_list_for_each(srq, &vmig_shim.srqs, struct vmig_srq, link) {
		uint64_t o = srq->ring.posted - srq->ring.consumed;

		srq->outstanding = o > srq->ring.size ? srq->ring.size :
							(uint32_t)o;
	}
	t1 = vmig_now_us();
	vmig_req_time(r, "flush", t1 - t0);
	if (dirty_mrs_wanted(r->in->teardown)) {
		uint64_t pages = dirty_mrs(r);

		t0 = t1;
		t1 = vmig_now_us();
		pr_info("%llu pages of writable MRs dirtied in %llu us",
			(unsigned long long)pages,
			(unsigned long long)(t1 - t0));
		vmig_req_time(r, "dirty-mrs", t1 - t0);
		vmig_req_time(r, "dirty-pages", pages);
	}

	vmig_list_for_each(ah, &vmig_shim.ahs, struct vmig_ah, link) {
		vmig_real.destroy_ah(ah->real);
		ah->real = NULL;
	}
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		pthread_mutex_lock(&qp->lock);
		if (qp->marker_ah)
			vmig_real.destroy_ah(qp->marker_ah);
		qp->marker_ah = NULL;
		if (vmig_real.destroy_qp(qp->real))
			pr_perror("destroy qp %#x", qp->ib.qp_base.qp_num);
		qp->real = NULL;
		qp->realx = NULL;
		pthread_mutex_unlock(&qp->lock);
	}
	vmig_list_for_each(srq, &vmig_shim.srqs, struct vmig_srq, link) {
		pthread_mutex_lock(&srq->lock);
		vmig_real.destroy_srq(srq->real);
		srq->real = NULL;
		pthread_mutex_unlock(&srq->lock);
	}
	vmig_list_for_each(mr, &vmig_shim.mrs, struct vmig_mr, link) {
		vmig_real.dereg_mr(mr->real);
		mr->real = NULL;
	}
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link) {
		pthread_mutex_lock(&cq->lock);
		if (vmig_real.destroy_cq(cq->real))
			pr_perror("destroy cq %u", cq->id);
		cq->real = NULL;
		cq->realx = NULL;
		pthread_mutex_unlock(&cq->lock);
	}
	vmig_list_for_each(ch, &vmig_shim.chans, struct vmig_chan, link) {
		vmig_events_unwatch_fd(ch->real->fd);
		vmig_real.destroy_comp_channel(ch->real);
		ch->real = NULL;
	}
	vmig_list_for_each(pd, &vmig_shim.pds, struct vmig_pd, link) {
		vmig_real.dealloc_pd(pd->real);
		pd->real = NULL;
	}
	vmig_list_for_each(ctx, &vmig_shim.ctxs, struct vmig_ctx, link) {
		vmig_events_unwatch_fd(ctx->real->async_fd);
		if (vmig_real.close_device(ctx->real))
			pr_perror("close %s", ctx->devname);
		ctx->real = NULL;
	}
	vmig_req_time(r, "destroy", vmig_now_us() - t1);
	vmig_set_phase(VMIG_PHASE_SUSPENDED, VMIG_PHASE_TORN_DOWN);
	left = count_uverbs();
	if (left)
		pr_err("%d uverbs fds or mappings left after teardown", left);
	vmig_req_time(r, "uverbs-left", (uint64_t)left);
	r->out->has_type = 1;
	r->out->type = VMIG__CTL_TYPE__CTL_OK;
	r->out->image = vmig_image_build(r);
	return 0;
}

int vmig_op_capture(struct vmig_req *r)
{
	if (vmig_shim.phase != VMIG_PHASE_SUSPENDED &&
	    vmig_shim.phase != VMIG_PHASE_TORN_DOWN)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				     "capture in phase %s",
				     vmig_phase_name(vmig_shim.phase));
	r->out->has_type = 1;
	r->out->type = VMIG__CTL_TYPE__CTL_CAPTURE;
	r->out->image = vmig_image_build(r);
	return 0;
}
