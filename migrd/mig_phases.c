// SPDX-License-Identifier: MIT
/*
 * The phases of a migration, source side, in time order (DESIGN.md
 * section 1): setup, precopy, suspend, teardown, dump, transfer, restore,
 * reconnect, resume. The destination migrd only serves requests
 * (images.c); this host drives the guest's shims, the peers' shims on
 * their hosts (through FORWARD) and the destination.
 *
 * Rollback: anything that fails before the guest runs on the destination
 * puts it back on the source: suspended shims are aborted; torn-down ones
 * restored and reconnected; a dumped guest restored from its checkpoint
 * here. Once restored on the destination the guest stays there; a failure
 * after that is reported, not undone.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: migrate: "
#include "api_server.h"
#include "backend.h"
#include "call.h"
#include "clock.h"
#include "ctlmsg_heap.h"
#include "guest_files.h"
#include "images.h"
#include "log.h"
#include "migrate_priv.h"
#include "migrd.h"
#include "relay.h"
#include "shim_sockets.h"

/* A process on another host (or in another guest here) that holds the
 * other end of some of the guest's connections. */
struct mig_peer {
	char host[MIGRD_ADDR_MAX];	/* for FORWARD dest_host */
	/* pids repeat across guests (each has its own PID namespace): the
	 * guest name narrows the FORWARD to the right process */
	char guest[MIGRD_NAME_MAX];
	uint32_t pid;
	Vmig__Endpoint **ours;		/* the guest's ends it talks to */
	size_t n_ours;
	bool suspended;
};

struct mig_run {
	struct migrd *d;
	struct migrd_mig_table *t;
	struct migrd_mig *m;
	const struct migrd_backend_ops *be;
	const struct migrd_host *dest;
	Vmig__CtlMsg *states;		/* the guest's shims' STATE replies */
	struct mig_peer *peers;
	size_t n_peers;
	uint32_t processes;
	char out_dir[PATH_MAX];		/* final dump; pre-copy rounds in it */
	unsigned int rounds;		/* pre-copy rounds shipped */
	uint64_t round_bytes;		/* their images, all rounds */
	struct migrd_sess dest_s;	/* session with the destination */
	bool self_suspended, torn, dumped, prepared, on_dest;
	bool process_guest;		/* vmig-guest's: has an address */
	uint64_t suspend_us;		/* downtime starts */
	char err[512];
};

static void seterr(struct mig_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void seterr(struct mig_run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

/*
 * FORWARD inner to the shims of host (NULL: here), narrowed to guest or
 * pid. Fails if the host or any shim reached answers with an error.
 */
static int fwd(struct mig_run *r, const char *host, const char *guest,
	       uint32_t pid, Vmig__CtlMsg *inner, unsigned int timeout_ms,
	       Vmig__CtlMsg **out)
{
	Vmig__CtlMsg req = VMIG__CTL_MSG__INIT, *reply;
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	const char *what = vmig_ctl_type_name(inner->type);
	size_t i;

	req.has_type = 1;
	req.type = VMIG__CTL_TYPE__CTL_FORWARD;
	req.forward = &fw;
	fw.inner = inner;
	fw.dest_host = (char *)host;
	fw.dest_guest = (char *)guest;
	fw.has_dest_pid = pid != 0;
	fw.dest_pid = pid;
	fw.has_timeout_ms = 1;
	fw.timeout_ms = timeout_ms;
	reply = migrd_relay_forward(r->d, &req, false, 0);
	if (!reply) {
		seterr(r, "%s: out of memory", what);
		return -ENOMEM;
	}
	if (reply->type == VMIG__CTL_TYPE__CTL_ERROR) {
		seterr(r, "%s to %s on %s: %s", what,
		       guest ? guest : "peer", host ? host : r->d->cfg.host,
		       reply->error && reply->error->desc ?
			       reply->error->desc : "error");
		vmig_ctl_free(reply);
		return -EIO;
	}
	for (i = 0; i < reply->n_replies; i++) {
		const Vmig__CtlMsg *s = reply->replies[i];

		if (s->type != VMIG__CTL_TYPE__CTL_ERROR)
			continue;
		seterr(r, "%s: process %u on %s: %s", what,
		       s->hello ? s->hello->pid : 0,
		       s->hello && s->hello->host ? s->hello->host : "?",
		       s->error && s->error->desc ? s->error->desc : "error");
		vmig_ctl_free(reply);
		return -EIO;
	}
	if (out)
		*out = reply;
	else
		vmig_ctl_free(reply);
	return 0;
}

static void simple(Vmig__CtlMsg *m, Vmig__CtlType type)
{
	vmig__ctl_msg__init(m);
	m->has_type = 1;
	m->type = type;
}

static bool same_ep(const Vmig__Endpoint *a, const Vmig__Endpoint *b)
{
	return a && b && a->has_virt_qpn && b->has_virt_qpn &&
	       a->virt_qpn == b->virt_qpn &&
	       a->virt_gid.len == b->virt_gid.len &&
	       !memcmp(a->virt_gid.data, b->virt_gid.data, a->virt_gid.len);
}

/* Whether ep is a local end of one of the guest's own connections. */
static bool internal(const struct mig_run *r, const Vmig__Endpoint *ep)
{
	size_t i, j;

	for (i = 0; i < r->states->n_replies; i++) {
		const Vmig__State *s = r->states->replies[i]->state;

		for (j = 0; s && j < s->n_conns; j++)
			if (same_ep(s->conns[j]->local, ep))
				return true;
	}
	return false;
}

/* ------------------------------------------------------------------ setup */

static bool shims_here(struct mig_run *r)
{
	struct migrd_proc *procs = NULL;
	int n = migrd_registry_find(&r->d->reg, r->m->guest, 0, 0, &procs);

	free(procs);
	return n > 0;
}

/* The peer's guest for a FORWARD, NULL when its shim named none. */
static const char *peer_guest(const struct mig_peer *p)
{
	return p->guest[0] ? p->guest : NULL;
}

/* Which process on host owns remote: its pid and guest, from the host's
 * STATE. */
static int owner_on(struct mig_run *r, const char *host,
		    const Vmig__Endpoint *remote, uint32_t *pid,
		    char guest[MIGRD_NAME_MAX])
{
	Vmig__CtlMsg inner, *reply = NULL;
	size_t i, j;
	int ret;

	simple(&inner, VMIG__CTL_TYPE__CTL_STATE);
	ret = fwd(r, host, NULL, 0, &inner, r->d->cfg.forward_timeout_ms,
		  &reply);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (i = 0; i < reply->n_replies && ret; i++) {
		const Vmig__CtlMsg *s = reply->replies[i];

		for (j = 0; s->state && j < s->state->n_conns; j++)
			if (same_ep(s->state->conns[j]->local, remote) &&
			    s->hello) {
				*pid = s->hello->pid;
				snprintf(guest, MIGRD_NAME_MAX, "%s",
					 s->hello->guest ? s->hello->guest :
							   "");
				ret = 0;
				break;
			}
	}
	vmig_ctl_free(reply);
	if (ret)
		seterr(r, "no process on %s owns the peer end (qpn %#x)", host,
		       remote->virt_qpn);
	return ret;
}

static int find_peers(struct mig_run *r)
{
	size_t i, j, k;
	int ret;

	for (i = 0; i < r->states->n_replies; i++) {
		const Vmig__State *s = r->states->replies[i]->state;

		for (j = 0; s && j < s->n_conns; j++) {
			Vmig__Connection *c = s->conns[j];
			char host[MIGRD_ADDR_MAX];
			struct mig_peer *p = NULL, *np;
			uint32_t pid = 0;
			char pguest[MIGRD_NAME_MAX] = "";

			if (!c->remote || !c->local || internal(r, c->remote))
				continue;
			if (!c->remote->has_phys_gid ||
			    migrd_gid_to_addr(&c->remote->phys_gid, host,
					      r->err, sizeof(r->err)))
				return -EINVAL;
			ret = owner_on(r, host, c->remote, &pid, pguest);
			if (ret)
				return ret;
			for (k = 0; k < r->n_peers; k++)
				if (r->peers[k].pid == pid &&
				    !strcmp(r->peers[k].guest, pguest) &&
				    !strcmp(r->peers[k].host, host))
					p = &r->peers[k];
			if (!p) {
				np = realloc(r->peers,
					     (r->n_peers + 1) * sizeof(*np));
				if (!np)
					return -ENOMEM;
				r->peers = np;
				p = &r->peers[r->n_peers++];
				memset(p, 0, sizeof(*p));
				snprintf(p->host, sizeof(p->host), "%s", host);
				snprintf(p->guest, sizeof(p->guest), "%s",
					 pguest);
				p->pid = pid;
			}
			np = (void *)realloc(p->ours, (p->n_ours + 1) *
						      sizeof(*p->ours));
			if (!np)
				return -ENOMEM;
			p->ours = (Vmig__Endpoint **)np;
			p->ours[p->n_ours++] = c->local;
		}
	}
	return 0;
}

static int phase_setup(struct mig_run *r)
{
	struct migrd *d = r->d;
	Vmig__CtlMsg inner, req, *reply = NULL;
	Vmig__MigXfer x = VMIG__MIG_XFER__INIT;
	size_t i;
	int ret;

	r->dest = migrd_config_find_host(&d->cfg, r->m->host);
	if (!r->dest) {
		seterr(r, "unknown host %s", r->m->host);
		return -EINVAL;
	}
	if (!shims_here(r)) {
		/* a process guest without RDMA: a plain checkpoint moves it */
		if (!migrd_guest_file_running(&d->cfg, r->m->guest)) {
			seterr(r, "guest %s has no process here", r->m->guest);
			return -ENOENT;
		}
		r->states = vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, 0);
		if (!r->states)
			return -ENOMEM;
	} else {
		simple(&inner, VMIG__CTL_TYPE__CTL_STATE);
		ret = fwd(r, NULL, r->m->guest, 0, &inner,
			  d->cfg.forward_timeout_ms, &r->states);
		if (ret)
			return ret;
	}
	r->processes = (uint32_t)r->states->n_replies;
	r->process_guest = migrd_guest_file_running(&d->cfg, r->m->guest);
	ret = find_peers(r);
	if (ret)
		return ret;
	pthread_mutex_lock(&r->t->lock);
	r->m->processes = r->processes;
	for (i = 0; i < r->states->n_replies; i++)
		if (r->states->replies[i]->state)
			r->m->connections +=
				r->states->replies[i]->state->n_conns;
	pthread_mutex_unlock(&r->t->lock);
	pr_info("%s: %u processes, %zu peer processes", r->m->guest,
		r->processes, r->n_peers);

	if (r->be->dump == NULL || !strcmp(r->be->name, "none")) {
		r->be->dump(&d->cfg, r->m->guest, "", NULL, r->err,
			    sizeof(r->err));
		return -EOPNOTSUPP;
	}
	/* the destination takes the guest, or nothing starts */
	ret = migrd_peer_open(&r->dest_s, r->dest->addr, r->dest->port,
			      d->cfg.host, &d->key,
			      (int)d->cfg.connect_timeout_ms,
			      (int)(d->cfg.restore_timeout_ms + 10000), r->err,
			      sizeof(r->err));
	if (ret)
		return ret;
	simple(&req, VMIG__CTL_TYPE__CTL_MIG_PREPARE);
	req.mig = &x;
	x.guest = r->m->guest;
	x.src_host = d->cfg.host;
	ret = migrd_peer_request(&r->dest_s, &req, &reply, r->err,
				 sizeof(r->err));
	if (ret)
		return ret;
	if (reply->type == VMIG__CTL_TYPE__CTL_ERROR) {
		seterr(r, "%s refuses the guest: %s", r->dest->name,
		       reply->error && reply->error->desc ? reply->error->desc :
							    "no reason");
		ret = -EACCES;
	} else {
		r->prepared = true;
	}
	vmig_ctl_free(reply);
	return ret;
}

/* ---------------------------------------------------------- the RDMA side */

static int phase_suspend(struct mig_run *r)
{
	Vmig__CtlMsg m;
	Vmig__Suspend sus = VMIG__SUSPEND__INIT;
	Vmig__ConnFilter filt = VMIG__CONN_FILTER__INIT;
	unsigned int bound = r->d->cfg.drain_timeout_ms + 5000;
	size_t i;
	int ret;

	simple(&m, VMIG__CTL_TYPE__CTL_SUSPEND);
	m.suspend = &sus;
	sus.has_drain_timeout_ms = 1;
	sus.drain_timeout_ms = r->d->cfg.drain_timeout_ms;
	r->suspend_us = vmig_now_us();
	if (!r->processes)
		return 0;	/* no shims, no peers */
	r->self_suspended = true;	/* partly, maybe: abort them all */
	ret = fwd(r, NULL, r->m->guest, 0, &m, bound, NULL);
	if (ret)
		return ret;
	for (i = 0; i < r->n_peers; i++) {
		struct mig_peer *p = &r->peers[i];

		filt.n_remote = p->n_ours;
		filt.remote = p->ours;
		sus.filter = &filt;
		p->suspended = true;
		ret = fwd(r, p->host, peer_guest(p), p->pid, &m, bound, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int phase_teardown(struct mig_run *r)
{
	Vmig__CtlMsg m;
	Vmig__Teardown td = VMIG__TEARDOWN__INIT;

	if (!r->processes)
		return 0;
	simple(&m, VMIG__CTL_TYPE__CTL_TEARDOWN);
	/* CRIU dumps next: the shims let go of their connections */
	td.has_release_channels = td.release_channels = 1;
	/* the rounds hold pages the HCA wrote since, not soft-dirty */
	td.has_dirty_mrs = 1;
	td.dirty_mrs = r->rounds > 0;
	m.teardown = &td;
	r->torn = true;
	return fwd(r, NULL, r->m->guest, 0, &m,
		   r->d->cfg.drain_timeout_ms + 5000, NULL);
}

/*
 * The guest's shims, restored (on host, NULL here) from their own captured
 * state, reconnect with the peers, who reset their ends; then everybody
 * resumes. The same steps bring the guest up on the destination and, in a
 * rollback, back on the source.
 */
static int reconnect_and_resume(struct mig_run *r, const char *host)
{
	Vmig__CtlMsg m, *restored = NULL, *pr = NULL;
	Vmig__Restore rst = VMIG__RESTORE__INIT;
	Vmig__Reconnect rc = VMIG__RECONNECT__INIT;
	Vmig__Connection **ours = NULL, **all = NULL;
	Vmig__CtlMsg **peer_replies = NULL;
	unsigned int bound = r->d->cfg.drain_timeout_ms + 5000;
	size_t n_ours = 0, n_all = 0, i, j;
	int ret;

	simple(&m, VMIG__CTL_TYPE__CTL_RESTORE);
	rst.device = "";
	m.restore = &rst;
	ret = fwd(r, host, r->m->guest, 0, &m, bound, &restored);
	if (ret)
		return ret;
	r->torn = false;
	for (i = 0; i < restored->n_replies; i++) {
		const Vmig__ReconnectInfo *ri =
			restored->replies[i]->reconnect_info;

		n_ours += ri ? ri->n_conns : 0;
	}
	ours = calloc(n_ours + 1, sizeof(*ours));
	all = calloc(n_ours + 1, sizeof(*all));
	peer_replies = calloc(r->n_peers + 1, sizeof(*peer_replies));
	if (!ours || !all || !peer_replies) {
		ret = -ENOMEM;
		goto out;
	}
	n_ours = 0;
	for (i = 0; i < restored->n_replies; i++) {
		const Vmig__ReconnectInfo *ri =
			restored->replies[i]->reconnect_info;

		for (j = 0; ri && j < ri->n_conns; j++)
			ours[n_ours++] = ri->conns[j];
	}

	/* peers reset and point their QPs at our new ends */
	simple(&m, VMIG__CTL_TYPE__CTL_RECONNECT);
	m.reconnect = &rc;
	rc.has_reset = 1;
	rc.reset = 1;
	rc.n_peers = n_ours;
	rc.peers = ours;
	for (i = 0; i < r->n_peers; i++) {
		ret = fwd(r, r->peers[i].host, peer_guest(&r->peers[i]),
			  r->peers[i].pid, &m, bound, &peer_replies[i]);
		if (ret)
			goto out;
	}
	/* then ours at theirs (and at each other: internal connections) */
	for (i = 0; i < r->n_peers; i++) {
		pr = peer_replies[i];
		for (j = 0; pr && j < pr->n_replies; j++) {
			const Vmig__ReconnectInfo *ri =
				pr->replies[j]->reconnect_info;
			size_t k;

			for (k = 0; ri && k < ri->n_conns; k++) {
				Vmig__Connection **na = realloc(all,
					(n_all + n_ours + 2) * sizeof(*na));

				if (!na) {
					ret = -ENOMEM;
					goto out;
				}
				all = na;
				all[n_all++] = ri->conns[k];
			}
		}
	}
	for (i = 0; i < n_ours; i++)
		all[n_all++] = ours[i];
	rc.has_reset = 0;
	rc.reset = 0;
	rc.n_peers = n_all;
	rc.peers = all;
	if (n_all) {
		ret = fwd(r, host, r->m->guest, 0, &m, bound, NULL);
		if (ret)
			goto out;
	}

	/* resume: peers first, so the guest's first posts find them ready */
	simple(&m, VMIG__CTL_TYPE__CTL_RESUME);
	for (i = 0; i < r->n_peers; i++) {
		ret = fwd(r, r->peers[i].host, peer_guest(&r->peers[i]),
			  r->peers[i].pid, &m, bound, NULL);
		if (ret)
			goto out;
		r->peers[i].suspended = false;
	}
	ret = fwd(r, host, r->m->guest, 0, &m, bound, NULL);
	if (!ret)
		r->self_suspended = false;
out:
	if (ret == -ENOMEM)
		seterr(r, "reconnect: out of memory");
	for (i = 0; peer_replies && i < r->n_peers; i++)
		vmig_ctl_free(peer_replies[i]);
	free(peer_replies);
	free(all);
	free(ours);
	vmig_ctl_free(restored);
	return ret;
}

/* ------------------------------------------------------- checkpoint, move */

/* out_dir, fresh: the pre-copy rounds and the final dump go in it. */
static int out_dir_make(struct mig_run *r)
{
	int ret = migrd_images_fresh_dir(r->d, "out", r->m->guest, r->out_dir,
					 sizeof(r->out_dir));

	if (ret)
		seterr(r, "%s: %s", r->out_dir, strerror(-ret));
	return ret;
}

static int phase_dump(struct mig_run *r)
{
	char parent[32];
	int ret = r->out_dir[0] ? 0 : out_dir_make(r);

	if (ret)
		return ret;
	/* the last round is the parent: only what changed since is dumped */
	snprintf(parent, sizeof(parent), MIGRD_ROUND_PREFIX "%u", r->rounds);
	ret = r->be->dump(&r->d->cfg, r->m->guest, r->out_dir,
			  r->rounds ? parent : NULL, r->err, sizeof(r->err));
	if (!ret)
		r->dumped = true;
	return ret;
}

struct progress {
	struct mig_run *r;
	const char *phase;
	uint64_t base, total;	/* bytes sent before, in this transfer */
	uint64_t last_us;
};

/* Live counters for query-migrate; an event at most every 500 ms. */
static void on_progress(void *arg, uint64_t sent)
{
	struct progress *p = arg;
	struct migrd_mig *m = p->r->m;
	uint64_t now = vmig_now_us();

	pthread_mutex_lock(&p->r->t->lock);
	m->bytes_sent = p->base + sent;
	m->bytes_remaining = p->total > sent ? p->total - sent : 0;
	pthread_mutex_unlock(&p->r->t->lock);
	if (now - p->last_us < 500000 && sent < p->total)
		return;
	p->last_us = now;
	migrd_api_emit(p->r->d->api, "MIGRATION_PROGRESS",
		       json_pack("{s:s, s:s, s:I, s:I, s:I}", "guest", m->guest,
				 "phase", p->phase, "bytes-sent",
				 (json_int_t)(p->base + sent),
				 "bytes-remaining",
				 (json_int_t)(p->total > sent ? p->total - sent : 0),
				 "elapsed-ms",
				 (json_int_t)((now - m->start_us) / 1000)));
}

/* Ships out_dir/sub (NULL: the final dump, total bytes of it) to the
 * destination, counting for query-migrate. */
static int ship(struct mig_run *r, const char *sub, uint64_t total,
		const char *phase)
{
	struct progress p = { .r = r, .phase = phase, .total = total,
			      .last_us = vmig_now_us() };
	char why[400];
	uint64_t bytes = 0;
	int ret;

	pthread_mutex_lock(&r->t->lock);
	p.base = r->m->bytes_sent;
	r->m->bytes_remaining = p.total;
	pthread_mutex_unlock(&r->t->lock);
	ret = migrd_images_send(&r->dest_s, r->out_dir, sub, r->m->guest,
				r->d->cfg.host, &bytes, on_progress, &p, why,
				sizeof(why));
	if (ret)
		seterr(r, "%s to %s: %s", sub ? sub : "transfer",
		       r->dest->name, why);
	pthread_mutex_lock(&r->t->lock);
	r->m->bytes_sent = p.base + bytes;
	r->m->bytes_remaining = ret ? r->m->bytes_remaining : 0;
	pthread_mutex_unlock(&r->t->lock);
	return ret;
}

static int phase_transfer(struct mig_run *r)
{
	uint64_t all = migrd_images_size(r->out_dir);

	/* the rounds are there already */
	return ship(r, NULL, all > r->round_bytes ? all - r->round_bytes : 0,
		    "transfer");
}

static int phase_restore(struct mig_run *r)
{
	Vmig__CtlMsg req, *reply = NULL;
	Vmig__MigXfer x = VMIG__MIG_XFER__INIT;
	int ret;

	simple(&req, VMIG__CTL_TYPE__CTL_MIG_RESTORE);
	req.mig = &x;
	x.guest = r->m->guest;
	x.src_host = r->d->cfg.host;
	x.has_processes = 1;
	x.processes = r->processes;
	ret = migrd_peer_request(&r->dest_s, &req, &reply, r->err,
				 sizeof(r->err));
	if (ret)
		return ret;
	if (reply->type == VMIG__CTL_TYPE__CTL_ERROR) {
		seterr(r, "%s", reply->error && reply->error->desc ?
				     reply->error->desc : "restore failed");
		ret = -EIO;
	} else {
		r->on_dest = true;
		r->prepared = false;	/* nothing left to drop there */
	}
	vmig_ctl_free(reply);
	return ret;
}

/* ------------------------------------------------------------- rollback */

/* Waits until the guest's processes registered here again. */
static int wait_back(struct mig_run *r)
{
	int n = migrd_registry_wait(&r->d->reg, r->m->guest, r->processes,
				    r->d->cfg.restore_timeout_ms);

	if (n >= (int)r->processes)
		return 0;
	seterr(r, "restored here, but only %d of %u processes registered",
	       n, r->processes);
	return -ETIMEDOUT;
}

/* Puts the guest back to running on the source. Returns 0 when it runs. */
static int rollback(struct mig_run *r, char *why, size_t why_len)
{
	Vmig__CtlMsg m, req, *reply = NULL;
	Vmig__MigXfer x = VMIG__MIG_XFER__INIT;
	bool was_dumped = r->dumped;
	size_t i;
	int ret = 0;

	if (r->prepared && r->dest_s.fd >= 0) {
		char ignored[256];

		/* best effort: a dead destination has nothing to drop */
		simple(&req, VMIG__CTL_TYPE__CTL_MIG_ABORT);
		req.mig = &x;
		x.guest = r->m->guest;
		if (!migrd_peer_request(&r->dest_s, &req, &reply, ignored,
					sizeof(ignored)))
			vmig_ctl_free(reply);
	}
	if (r->dumped) {
		migrd_shim_sockets_unlink_stale(&r->d->cfg, r->m->guest);
		ret = r->be->restore(&r->d->cfg, r->m->guest, r->out_dir,
				     r->err, sizeof(r->err));
		if (!ret && r->processes)	/* register now, as on the dest */
			migrd_shim_sockets_poke(&r->d->cfg, r->m->guest);
		if (!ret)
			ret = wait_back(r);
		if (ret) {
			snprintf(why, why_len, "restoring on the source: %s",
				 r->err);
			return ret;
		}
		r->dumped = false;
	}
	if (r->torn) {
		/* not dumped: the shims wait, without connections, for a
		 * restore that will not come; a HELLO brings them back */
		if (!was_dumped &&
		    migrd_shim_sockets_poke(&r->d->cfg, r->m->guest) > 0)
			ret = wait_back(r);
		if (ret) {
			snprintf(why, why_len, "waking the shims: %s", r->err);
			return ret;
		}
		ret = reconnect_and_resume(r, NULL);
		if (ret)
			snprintf(why, why_len, "reconnecting on the source: %s",
				 r->err);
		return ret;
	}
	/* only suspended: lift it where it was set */
	simple(&m, VMIG__CTL_TYPE__CTL_ABORT);
	for (i = 0; i < r->n_peers; i++)
		if (r->peers[i].suspended &&
		    !fwd(r, r->peers[i].host, peer_guest(&r->peers[i]),
			 r->peers[i].pid, &m, r->d->cfg.forward_timeout_ms,
			 NULL))
			r->peers[i].suspended = false;
	if (r->self_suspended) {
		ret = fwd(r, NULL, r->m->guest, 0, &m,
			  r->d->cfg.forward_timeout_ms, NULL);
		if (ret)
			snprintf(why, why_len, "aborting the suspend: %s",
				 r->err);
	}
	return ret;
}

/* ------------------------------------------------------------ the chain */

typedef int (*phase_fn)(struct mig_run *r);

/*
 * Pre-copy: rounds of the backend's pre-dump while the guest and its RDMA
 * run, each into out_dir/pre-N with the round before as its parent, and
 * shipped at once, so the dump after the suspend writes (and the downtime
 * carries) only what changed since the last round. A round that comes out
 * small ends them: another would not shrink the dump much. A failure here
 * has suspended nothing: the rollback only drops the destination's copy.
 */
static int phase_precopy(struct mig_run *r)
{
	const struct migrd_config *cfg = &r->d->cfg;
	char sub[32], dir[PATH_MAX + 40], parent[40], why[sizeof(r->err)];
	unsigned int i;
	uint64_t t0, size;
	int ret = out_dir_make(r);

	for (i = 1; !ret && i <= cfg->precopy_rounds; i++) {
		if (migrd_mig_cancel_requested(r->t, r->m))
			return -ECANCELED;
		snprintf(sub, sizeof(sub), MIGRD_ROUND_PREFIX "%u", i);
		snprintf(parent, sizeof(parent), "../" MIGRD_ROUND_PREFIX "%u",
			 i - 1);
		snprintf(dir, sizeof(dir), "%s/%s", r->out_dir, sub);
		if (mkdir(dir, 0700) < 0) {
			ret = -errno;
			seterr(r, "%s: %s", dir, strerror(errno));
			break;
		}
		t0 = vmig_now_us();
		ret = r->be->pre_dump(cfg, r->m->guest, dir,
				      i > 1 ? parent : NULL, why, sizeof(why));
		if (ret) {
			seterr(r, "pre-copy round %u: %s", i, why);
			break;
		}
		size = migrd_images_size(dir);
		ret = ship(r, sub, size, "precopy");
		if (ret)
			break;
		r->rounds = i;
		r->round_bytes += size;
		pthread_mutex_lock(&r->t->lock);
		r->m->precopy_rounds = i;
		r->m->precopy_bytes += size;
		r->m->round_bytes[i - 1] = size;
		pthread_mutex_unlock(&r->t->lock);
		pr_info("%s: pre-copy round %u: %llu bytes, %llu ms",
			r->m->guest, i, (unsigned long long)size,
			(unsigned long long)(vmig_now_us() - t0) / 1000);
		if (size < cfg->precopy_stop_bytes)
			break;
	}
	return ret;
}

static int phase_reconnect(struct mig_run *r)
{
	if (!r->processes)
		return 0;
	return reconnect_and_resume(r, r->dest->name);
}

/* The guest's address now leads to the destination: here and on every
 * other host of the cluster (the destination routed it when restoring).
 * Best effort: a host that misses it is logged, the guest runs anyway. */
static void announce_move(struct mig_run *r)
{
	struct migrd *d = r->d;
	Vmig__CtlMsg req, *reply = NULL;
	Vmig__MigXfer x = VMIG__MIG_XFER__INIT;
	char err[512];
	int i;

	if (r->be->moved(&d->cfg, r->m->guest, r->dest->addr, err,
			 sizeof(err)))
		pr_warn("%s: routing to %s here: %s", r->m->guest,
			r->dest->addr, err);
	simple(&req, VMIG__CTL_TYPE__CTL_MIG_MOVED);
	req.mig = &x;
	x.guest = r->m->guest;
	x.src_host = d->cfg.host;
	x.dest_addr = (char *)r->dest->addr;
	for (i = 0; i < d->cfg.n_hosts; i++) {
		const struct migrd_host *h = &d->cfg.hosts[i];

		if (!strcmp(h->name, d->cfg.host) || h == r->dest)
			continue;
		if (migrd_pool_call(&d->peers, h->addr, h->port, d->cfg.host,
				    &d->key, &req,
				    (int)d->cfg.connect_timeout_ms,
				    (int)d->cfg.forward_timeout_ms, &reply, err,
				    sizeof(err))) {
			pr_warn("%s: telling %s about the move: %s",
				r->m->guest, h->name, err);
			continue;
		}
		if (reply->type == VMIG__CTL_TYPE__CTL_ERROR)
			pr_warn("%s: %s could not route to it: %s", r->m->guest,
				h->name, reply->error && reply->error->desc ?
						 reply->error->desc : "");
		vmig_ctl_free(reply);
		reply = NULL;
	}
}

static int phase_resume(struct mig_run *r)
{
	/* reconnect_and_resume resumed everybody; account the downtime */
	pthread_mutex_lock(&r->t->lock);
	r->m->downtime_us = vmig_now_us() - r->suspend_us;
	pthread_mutex_unlock(&r->t->lock);
	if (r->process_guest)
		announce_move(r);
	return 0;
}

static const struct {
	enum migrd_mig_state state;
	phase_fn fn;
} chain[] = {
	{ MIGRD_MIG_SETUP, phase_setup },
	{ MIGRD_MIG_PRECOPY, phase_precopy },
	{ MIGRD_MIG_SUSPEND, phase_suspend },
	{ MIGRD_MIG_TEARDOWN, phase_teardown },
	{ MIGRD_MIG_DUMP, phase_dump },
	{ MIGRD_MIG_TRANSFER, phase_transfer },
	{ MIGRD_MIG_RESTORE, phase_restore },
	{ MIGRD_MIG_RECONNECT, phase_reconnect },
	{ MIGRD_MIG_RESUME, phase_resume },
};

static void mig_run_dispose(struct mig_run *r)
{
	size_t i;

	for (i = 0; i < r->n_peers; i++)
		free(r->peers[i].ours);
	free(r->peers);
	vmig_ctl_free(r->states);
	migrd_sess_close(&r->dest_s);
	if (r->out_dir[0] && !r->dumped)
		migrd_rm_rf(r->out_dir);
}

void migrd_mig_run(struct migrd_mig_table *t, struct migrd_mig *m)
{
	struct mig_run r = {
		.d = t->d, .t = t, .m = m, .dest_s = { .fd = -1 },
		.be = migrd_backend_get(&t->d->cfg),
	};
	enum migrd_mig_state cur = MIGRD_MIG_SETUP;
	char why[600], cause[512], reason[1200];
	size_t i;
	int ret = 0;

	for (i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
		if (chain[i].state != cur) {
			if (migrd_mig_set_state(t, m, cur, chain[i].state,
						NULL))
				break;
			cur = chain[i].state;
		}
		/* a cancel counts until the guest runs on the destination */
		if (!r.on_dest && migrd_mig_cancel_requested(t, m)) {
			ret = -ECANCELED;
			break;
		}
		ret = chain[i].fn(&r);
		if (ret)
			break;
	}
	if (!ret) {
		/* the guest runs there: its checkpoint here is only memory */
		r.dumped = false;
		migrd_mig_set_state(t, m, cur, MIGRD_MIG_COMPLETED, NULL);
		goto out;
	}
	if (ret != -ECANCELED)
		pr_warn("%s: %s failed: %s", m->guest,
			migrd_mig_state_name(cur), r.err);
	if (r.on_dest) {
		r.dumped = false;
		snprintf(reason, sizeof(reason),
			 "%s; the guest runs on %s but did not reconnect",
			 r.err, m->host);
		migrd_mig_set_state(t, m, cur, MIGRD_MIG_FAILED, reason);
		goto out;
	}
	if (ret == -ECANCELED) {
		migrd_mig_set_state(t, m, cur, MIGRD_MIG_CANCELLING, NULL);
		cur = MIGRD_MIG_CANCELLING;
	}
	why[0] = '\0';
	/* the rollback reuses r.err: keep the cause */
	snprintf(cause, sizeof(cause), "%s",
		 ret == -ECANCELED ? "cancelled" : r.err);
	if (rollback(&r, why, sizeof(why))) {
		snprintf(reason, sizeof(reason),
			 "%s; the rollback failed too: %s", cause, why);
	} else {
		snprintf(reason, sizeof(reason), "%s; the guest runs on the source",
			 cause);
		if (r.suspend_us) {
			pthread_mutex_lock(&t->lock);
			m->downtime_us = vmig_now_us() - r.suspend_us;
			pthread_mutex_unlock(&t->lock);
		}
	}
	migrd_mig_set_state(t, m, cur,
			    ret == -ECANCELED ? MIGRD_MIG_CANCELLED :
						MIGRD_MIG_FAILED,
			    reason);
out:
	mig_run_dispose(&r);
}
