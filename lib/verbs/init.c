// SPDX-License-Identifier: MIT
/* The process-wide shim state: set up once, before the first verbs call. */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

struct vmig_shim vmig_shim = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.epfd = -1,
};

__attribute__((visibility("default"))) const char vmig_shim_version[] =
	"vmig-verbs 1";

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* VMIG_DEBUG_CRASH=1: a backtrace on stderr when the process crashes. */
static void crash_handler(int sig)
{
	void *bt[64];
	int n = backtrace(bt, 64);

	backtrace_symbols_fd(bt, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void shim_init(void)
{
	const char *s;
	int n;

	vmig_log_init("vmig-shim");
	vmig_list_init(&vmig_shim.ctxs);
	vmig_list_init(&vmig_shim.pds);
	vmig_list_init(&vmig_shim.mrs);
	vmig_list_init(&vmig_shim.chans);
	vmig_list_init(&vmig_shim.cqs);
	vmig_list_init(&vmig_shim.srqs);
	vmig_list_init(&vmig_shim.qps);
	vmig_list_init(&vmig_shim.ahs);
	if (vmig_hmap_init(&vmig_shim.lkeys) ||
	    vmig_hmap_init(&vmig_shim.rkeys) ||
	    vmig_hmap_init(&vmig_shim.qpn_p2v) ||
	    vmig_rqmap_init(&vmig_shim.rqps))
		pr_err("out of memory for handle maps");
	vmig_shim.next_id = 1;
	vmig_shim.phase = VMIG_PHASE_RUNNING;
	if (getenv("VMIG_DEBUG_CRASH")) {
		signal(SIGSEGV, crash_handler);
		signal(SIGABRT, crash_handler);
		signal(SIGBUS, crash_handler);
	}
	s = getenv("VMIG_GUEST");
	snprintf(vmig_shim.guest, sizeof(vmig_shim.guest), "%s", s ? s : "");
	s = getenv("VMIG_RUN_DIR");
	snprintf(vmig_shim.run_dir, sizeof(vmig_shim.run_dir), "%s",
		 s && *s ? s : "/run/vmig");
	/* a guest's pids are those of its own PID namespace: several guests
	 * on one host share them, their names tell the sockets apart */
	if (*vmig_shim.guest)
		n = snprintf(vmig_shim.ctl_path, sizeof(vmig_shim.ctl_path),
			     "%s/shim-%s-%d.sock", vmig_shim.run_dir,
			     vmig_shim.guest, (int)getpid());
	else
		n = snprintf(vmig_shim.ctl_path, sizeof(vmig_shim.ctl_path),
			     "%s/shim-%d.sock", vmig_shim.run_dir,
			     (int)getpid());
	if (n >= (int)sizeof(vmig_shim.ctl_path))
		pr_err("control socket path too long: %s...", vmig_shim.ctl_path);
	if (vmig_real_resolve())
		pr_err("cannot reach libibverbs: verbs calls will fail");
}

/* Every interposed entry point calls this first. */
void vmig_shim_ensure(void)
{
	pthread_once(&once, shim_init);
}

/* The control thread starts with the first opened device: processes that
 * never use verbs get no socket. */
uint32_t vmig_new_id(void)
{
	return __atomic_fetch_add(&vmig_shim.next_id, 1, __ATOMIC_RELAXED);
}

const char *vmig_phase_name(enum vmig_phase p)
{
	switch (p) {
	case VMIG_PHASE_RUNNING:
		return "running";
	case VMIG_PHASE_SUSPENDED:
		return "suspended";
	case VMIG_PHASE_TORN_DOWN:
		return "torn-down";
	case VMIG_PHASE_RESTORED:
		return "restored";
	}
	return "unknown";
}

/* shim.lock held. */
void vmig_set_phase(enum vmig_phase old, enum vmig_phase next)
{
	if (vmig_shim.phase != old)
		pr_warn("phase %s, expected %s", vmig_phase_name(vmig_shim.phase),
			vmig_phase_name(old));
	pr_info("phase %s -> %s", vmig_phase_name(vmig_shim.phase),
		vmig_phase_name(next));
	vmig_shim.phase = next;
}

/* Recomputes whether any translation is needed; shim.lock held. Sets or
 * clears VMIG_SLOW_XLATE on every QP and CQ. UD QPs always translate: their
 * WRs carry shadow AHs. */
void vmig_update_xlate(void)
{
	struct vmig_qp *qp;
	struct vmig_cq *cq;
	bool x = vmig_hmap_count(&vmig_shim.lkeys) ||
		 vmig_hmap_count(&vmig_shim.qpn_p2v) ||
		 !vmig_rqmap_empty(&vmig_shim.rqps) || vmig_shim.nrgids ||
		 vmig_gids_moved();

	vmig_shim.xlate = x;
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		bool q = x || qp->init.qp_type == IBV_QPT_UD ||
			 atomic_load(&qp->peer_rkeys);

		if (q)
			atomic_fetch_or(&qp->slow, VMIG_SLOW_XLATE);
		else
			atomic_fetch_and(&qp->slow, ~(uint32_t)VMIG_SLOW_XLATE);
	}
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link) {
		if (x)
			atomic_fetch_or(&cq->slow, VMIG_SLOW_XLATE);
		else
			atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_XLATE);
	}
}
