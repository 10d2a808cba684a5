// SPDX-License-Identifier: MIT
/* Requests from the host: selection, fan-out, rollback, one reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_PREFIX "agent: "
#include "aggregate.h"
#include "ctlmsg.h"
#include "fanout.h"
#include "log.h"
#include "request.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The requests a shim serves; the agent passes these on. */
static bool fans_out(Vmig__CtlType t)
{
	switch (t) {
	case VMIG__CTL_TYPE__CTL_STATE:
	case VMIG__CTL_TYPE__CTL_SUSPEND:
	case VMIG__CTL_TYPE__CTL_CAPTURE:
	case VMIG__CTL_TYPE__CTL_TEARDOWN:
	case VMIG__CTL_TYPE__CTL_RESTORE:
	case VMIG__CTL_TYPE__CTL_RECONNECT:
	case VMIG__CTL_TYPE__CTL_RESUME:
	case VMIG__CTL_TYPE__CTL_ABORT:
		return true;
	case VMIG__CTL_TYPE__CTL_NONE:
	case VMIG__CTL_TYPE__CTL_HELLO:
	case VMIG__CTL_TYPE__CTL_ERROR:
	case VMIG__CTL_TYPE__CTL_OK:
	case VMIG__CTL_TYPE__CTL_DRAINED:
	case VMIG__CTL_TYPE__CTL_RECONNECT_INFO:
	case VMIG__CTL_TYPE__CTL_FORWARD:
	case VMIG__CTL_TYPE__CTL_MIG_PREPARE:
	case VMIG__CTL_TYPE__CTL_MIG_FILE:
	case VMIG__CTL_TYPE__CTL_MIG_RESTORE:
	case VMIG__CTL_TYPE__CTL_MIG_ABORT:
	case VMIG__CTL_TYPE__CTL_MIG_MOVED:
	case _VMIG__CTL_TYPE_IS_INT_SIZE:
		break;
	}
	return false;
}

/* A SUSPEND waits on the shim's own drain bound, which ends in a reply:
 * give it that plus a margin unless the host set the bound itself. */
static int step_timeout(const struct ga_agent *a, const Vmig__CtlMsg *req)
{
	long t = a->timeout_ms, drain;

	if (req->type == VMIG__CTL_TYPE__CTL_SUSPEND) {
		drain = req->suspend && req->suspend->has_drain_timeout_ms ?
				(long)req->suspend->drain_timeout_ms :
				GA_SHIM_DRAIN_DEFAULT_MS;
		if (drain + GA_DRAIN_MARGIN_MS > t)
			t = drain + GA_DRAIN_MARGIN_MS;
	}
	return t > 24 * 3600 * 1000L ? 24 * 3600 * 1000 : (int)t;
}

/*
 * A SUSPEND failed somewhere: ABORT the shims that suspended, and those
 * that did not answer in time (they may suspend yet). Shims that refused
 * are running already; vanished ones cannot be helped. Writes what
 * happened to note.
 */
static void rollback(struct ga_agent *a, const Vmig__CtlMsg *req,
		     const struct ga_result *res, size_t n, char *note,
		     size_t note_len)
{
	Vmig__CtlMsg abort_msg = VMIG__CTL_MSG__INIT;
	struct ga_result *ab = NULL;
	struct ga_shim *sel;
	size_t i, k = 0, okc = 0;
	int bad;

	sel = calloc(n ? n : 1, sizeof(*sel));
	if (!sel) {
		snprintf(note, note_len, "; rollback not done: out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		const Vmig__Error *e = res[i].reply ? res[i].reply->error : NULL;

		if (res[i].ok || (!res[i].answered && e &&
				  e->class_ == VMIG__ERR_CLASS__ERR_TIMEOUT))
			sel[k++] = res[i].shim;
	}
	if (!k) {
		free(sel);
		snprintf(note, note_len, "; nothing was suspended");
		return;
	}
	abort_msg.has_type = abort_msg.has_seq = 1;
	abort_msg.type = VMIG__CTL_TYPE__CTL_ABORT;
	abort_msg.seq = req->seq;
	pr_warn("suspend failed: aborting %zu shims", k);
	if (ga_fanout(sel, k, &abort_msg, a->timeout_ms, &ab)) {
		free(sel);
		snprintf(note, note_len, "; rollback not done: out of memory");
		return;
	}
	for (i = 0; i < k; i++)
		okc += ab[i].ok;
	bad = ga_first_error(ab, k);
	if (bad < 0)
		snprintf(note, note_len, "; aborted on %zu suspended shims",
			 okc);
	else
		snprintf(note, note_len,
			 "; rollback incomplete, ABORT failed for pid %d: %s",
			 ab[bad].shim.pid,
			 ab[bad].reply->error && ab[bad].reply->error->desc ?
				 ab[bad].reply->error->desc : "?");
	ga_results_free(ab, k);
	free(sel);
}

static Vmig__CtlMsg *fan(struct ga_agent *a, uint32_t seq,
			 const Vmig__CtlMsg *req, pid_t pid, const char *guest,
			 int timeout_ms)
{
	struct ga_result *res = NULL;
	struct ga_shim *sel = NULL;
	Vmig__CtlMsg *reply;
	Vmig__StepTime *t;
	Vmig__StepTime **tv;
	uint64_t t0 = now_us();
	char note[512] = "";
	int n;

	n = ga_registry_find(&a->reg, pid, guest, &sel);
	if (n < 0)
		return vmig_msg_error(seq, VMIG__ERR_CLASS__ERR_GENERIC, -n,
				      "registry: %s", strerror(-n));
	if (!n && (pid || guest)) {
		free(sel);
		return vmig_msg_error(seq, VMIG__ERR_CLASS__ERR_NOT_FOUND, 0,
				      "no registered shim with pid %d guest %s",
				      (int)pid, guest ? guest : "(any)");
	}
	if (ga_fanout(sel, (size_t)n, req, timeout_ms, &res)) {
		free(sel);
		return NULL;
	}
	if (req->type == VMIG__CTL_TYPE__CTL_SUSPEND &&
	    ga_first_error(res, (size_t)n) >= 0)
		rollback(a, req, res, (size_t)n, note, sizeof(note));
	reply = ga_aggregate(a, req->type, seq, res, (size_t)n,
			     note[0] ? note : NULL);
	pr_info("%s to %d shims: %s in %llu us", vmig_ctl_type_name(req->type),
		n, reply ? vmig_ctl_type_name(reply->type) : "no memory",
		(unsigned long long)(now_us() - t0));
	ga_results_free(res, (size_t)n);
	free(sel);
	if (!reply)
		return NULL;
	/* the agent's own share: the whole fan-out as the host saw it */
	t = malloc(sizeof(*t));
	if (!t)
		return reply;
	vmig__step_time__init(t);
	t->has_usec = 1;
	t->usec = now_us() - t0;
	t->step = strdup("agent");
	tv = realloc(reply->times, (reply->n_times + 1) * sizeof(*tv));
	if (!t->step || !tv) {
		free(t->step);
		free(t);
		return reply;
	}
	reply->times = tv;
	reply->times[reply->n_times++] = t;
	return reply;
}

static Vmig__CtlMsg *forward(struct ga_agent *a, const Vmig__CtlMsg *m)
{
	const Vmig__Forward *fw = m->forward;
	const Vmig__CtlMsg *in = fw ? fw->inner : NULL;

	if (!fw || !in)
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "FORWARD without an inner message");
	if (fw->has_dest_gid || (fw->dest_host && *fw->dest_host))
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "the agent delivers inside its guest only: no dest_gid or dest_host");
	if (!in->has_type || !fans_out(in->type))
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "cannot forward %s to shims",
				      vmig_ctl_type_name(in->type));
	if (fw->has_dest_pid && (!fw->dest_pid || fw->dest_pid > 0x3fffffff))
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "bad dest_pid %u", fw->dest_pid);
	return fan(a, m->seq, in, fw->has_dest_pid ? (pid_t)fw->dest_pid : 0,
		   fw->dest_guest && *fw->dest_guest ? fw->dest_guest : NULL,
		   fw->has_timeout_ms && fw->timeout_ms ?
			   (int)(fw->timeout_ms > 86400000u ? 86400000u :
							      fw->timeout_ms) :
			   step_timeout(a, in));
}

Vmig__CtlMsg *ga_request(struct ga_agent *a, const Vmig__CtlMsg *m)
{
	Vmig__CtlType t = m->has_type ? m->type : VMIG__CTL_TYPE__CTL_NONE;

	if (fans_out(t))
		return fan(a, m->seq, m, 0, NULL, step_timeout(a, m));
	if (t == VMIG__CTL_TYPE__CTL_FORWARD)
		return forward(a, m);
	if (t == VMIG__CTL_TYPE__CTL_HELLO)
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				      "HELLO already done");
	return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
			      "the agent does not take %s (type %d)",
			      vmig_ctl_type_name(t), (int)t);
}
