// SPDX-License-Identifier: MIT
/*
 * The migration state machine (source side). Each migration runs its
 * phases in time order on its own thread; every transition goes through
 * set_state(), which checks it, logs it, stamps the phase times and emits
 * the MIGRATION event. The CRIU backend plugs into the phases from PRECOPY
 * on; until it exists a migration stops there, and the guest, never
 * suspended, keeps running on the source.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: migrate: "
#include "api_server.h"
#include "call.h"
#include "clock.h"
#include "ctlmsg_heap.h"
#include "guest_files.h"
#include "log.h"
#include "migrate.h"
#include "migrate_priv.h"
#include "migrd.h"
#include "relay.h"

static const char *const state_names[MIGRD_MIG__COUNT] = {
	[MIGRD_MIG_NONE] = "none",
	[MIGRD_MIG_SETUP] = "setup",
	[MIGRD_MIG_PRECOPY] = "precopy",
	[MIGRD_MIG_SUSPEND] = "suspend",
	[MIGRD_MIG_TEARDOWN] = "teardown",
	[MIGRD_MIG_DUMP] = "dump",
	[MIGRD_MIG_TRANSFER] = "transfer",
	[MIGRD_MIG_RESTORE] = "restore",
	[MIGRD_MIG_RECONNECT] = "reconnect",
	[MIGRD_MIG_RESUME] = "resume",
	[MIGRD_MIG_COMPLETED] = "completed",
	[MIGRD_MIG_CANCELLING] = "cancelling",
	[MIGRD_MIG_CANCELLED] = "cancelled",
	[MIGRD_MIG_FAILED] = "failed",
};

const char *migrd_mig_state_name(enum migrd_mig_state s)
{
	return s < MIGRD_MIG__COUNT ? state_names[s] : "invalid";
}

const char *migrd_mig_status_name(enum migrd_mig_state s)
{
	switch (s) {
	case MIGRD_MIG_NONE:
		return "none";
	case MIGRD_MIG_SETUP:
		return "setup";
	case MIGRD_MIG_PRECOPY:
	case MIGRD_MIG_SUSPEND:
	case MIGRD_MIG_TEARDOWN:
	case MIGRD_MIG_DUMP:
	case MIGRD_MIG_TRANSFER:
	case MIGRD_MIG_RESTORE:
	case MIGRD_MIG_RECONNECT:
	case MIGRD_MIG_RESUME:
		return "active";
	case MIGRD_MIG_COMPLETED:
		return "completed";
	case MIGRD_MIG_CANCELLING:
		return "cancelling";
	case MIGRD_MIG_CANCELLED:
		return "cancelled";
	case MIGRD_MIG_FAILED:
		return "failed";
	case MIGRD_MIG__COUNT:
		break;
	}
	return "invalid";
}

bool migrd_mig_state_final(enum migrd_mig_state s)
{
	return s == MIGRD_MIG_COMPLETED || s == MIGRD_MIG_CANCELLED ||
	       s == MIGRD_MIG_FAILED;
}

bool migrd_mig_transition_ok(enum migrd_mig_state old,
			     enum migrd_mig_state new_state)
{
	if (old >= MIGRD_MIG__COUNT || new_state >= MIGRD_MIG__COUNT ||
	    migrd_mig_state_final(old))
		return false;
	switch (new_state) {
	case MIGRD_MIG_NONE:
		return false;
	case MIGRD_MIG_SETUP:
		return old == MIGRD_MIG_NONE;
	case MIGRD_MIG_PRECOPY:
	case MIGRD_MIG_SUSPEND:
	case MIGRD_MIG_TEARDOWN:
	case MIGRD_MIG_DUMP:
	case MIGRD_MIG_TRANSFER:
	case MIGRD_MIG_RESTORE:
	case MIGRD_MIG_RECONNECT:
	case MIGRD_MIG_RESUME:
	case MIGRD_MIG_COMPLETED:
		/* forward one phase at a time */
		return old != MIGRD_MIG_CANCELLING && new_state == old + 1;
	case MIGRD_MIG_CANCELLING:
		/* once resuming on the destination, it is too late */
		return old >= MIGRD_MIG_SETUP && old < MIGRD_MIG_RESUME;
	case MIGRD_MIG_CANCELLED:
		return old == MIGRD_MIG_CANCELLING;
	case MIGRD_MIG_FAILED:
		return old != MIGRD_MIG_NONE;
	case MIGRD_MIG__COUNT:
		break;
	}
	return false;
}

/* Caller holds t->lock. */
static json_t *mig_json(const struct migrd_mig *m)
{
	json_t *o, *times;
	uint64_t end = m->end_us ? m->end_us : vmig_now_us();
	int s;

	times = json_object();
	for (s = MIGRD_MIG_SETUP; s <= MIGRD_MIG_RESUME; s++)
		if (m->phase_start_us[s])
			json_object_set_new(times, state_names[s],
					    json_integer((json_int_t)(m->phase_us[s] / 1000)));
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:I, s:I, s:i, s:I, s:o}",
		      "guest", m->guest, "destination", m->host,
		      "status", migrd_mig_status_name(m->state),
		      "phase", migrd_mig_state_name(m->state),
		      "total-time-ms", (json_int_t)((end - m->start_us) / 1000),
		      "processes", (int)m->processes,
		      "connections", (int)m->connections,
		      "bytes-sent", (json_int_t)m->bytes_sent,
		      "bytes-remaining", (json_int_t)m->bytes_remaining,
		      "precopy-rounds", (int)m->precopy_rounds,
		      "downtime-ms", (json_int_t)(m->downtime_us / 1000),
		      "phase-times-ms", times);
	if (o) {
		json_t *rounds = json_array();
		uint32_t i;

		for (i = 0; i < m->precopy_rounds && i < MIGRD_PRECOPY_MAX; i++)
			json_array_append_new(rounds,
				json_integer((json_int_t)m->round_bytes[i]));
		json_object_set_new(o, "precopy-bytes",
				    json_integer((json_int_t)m->precopy_bytes));
		json_object_set_new(o, "precopy-round-bytes", rounds);
	}
	if (o && m->reason[0])
		json_object_set_new(o, "error-desc", json_string(m->reason));
	if (o && m->state == MIGRD_MIG_FAILED)
		json_object_set_new(o, "failed-phase",
				    json_string(migrd_mig_state_name(m->failed_in)));
	return o;
}

/*
 * The one place a migration changes state. Returns -EINVAL (and logs) for
 * a transition the machine does not allow.
 */
int migrd_mig_set_state(struct migrd_mig_table *t, struct migrd_mig *m,
			enum migrd_mig_state old,
			enum migrd_mig_state new_state, const char *reason)
{
	uint64_t now = vmig_now_us();
	json_t *ev;

	pthread_mutex_lock(&t->lock);
	if (m->state != old || !migrd_mig_transition_ok(old, new_state)) {
		pr_err("%s: refused transition %s -> %s (now %s)", m->guest,
		       migrd_mig_state_name(old),
		       migrd_mig_state_name(new_state),
		       migrd_mig_state_name(m->state));
		pthread_mutex_unlock(&t->lock);
		return -EINVAL;
	}
	if (m->phase_start_us[old])
		m->phase_us[old] = now - m->phase_start_us[old];
	m->state = new_state;
	m->phase_start_us[new_state] = now;
	if (new_state == MIGRD_MIG_FAILED)
		m->failed_in = old;
	if (reason)
		snprintf(m->reason, sizeof(m->reason), "%s", reason);
	if (migrd_mig_state_final(new_state))
		m->end_us = now;
	ev = mig_json(m);
	pthread_mutex_unlock(&t->lock);
	if (reason)
		pr_info("%s: %s -> %s: %s", m->guest, migrd_mig_state_name(old),
			migrd_mig_state_name(new_state), reason);
	else
		pr_info("%s: %s -> %s", m->guest, migrd_mig_state_name(old),
			migrd_mig_state_name(new_state));
	migrd_api_emit(t->d->api, "MIGRATION", ev);
	return 0;
}

bool migrd_mig_cancel_requested(struct migrd_mig_table *t,
				struct migrd_mig *m)
{
	bool c;

	pthread_mutex_lock(&t->lock);
	c = m->cancel;
	pthread_mutex_unlock(&t->lock);
	return c;
}

struct mig_job {
	struct migrd_mig_table *t;
	struct migrd_mig *m;
};

static void *job_run(void *arg)
{
	struct mig_job *job = arg;
	struct migrd_mig_table *t = job->t;
	struct migrd_mig *m = job->m;

	free(job);
	migrd_mig_run(t, m);
	pthread_mutex_lock(&t->lock);
	m->busy = false;
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct migrd_mig_table *migrd_mig_table_create(struct migrd *d)
{
	struct migrd_mig_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->d = d;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void migrd_mig_table_destroy(struct migrd_mig_table *t)
{
	int i, tries;
	bool busy = true;

	if (!t)
		return;
	/* migration threads hold pointers into the table: let them end */
	for (tries = 0; busy && tries < 600; tries++) {
		pthread_mutex_lock(&t->lock);
		for (busy = false, i = 0; i < t->n; i++)
			busy |= t->migs[i].busy;
		pthread_mutex_unlock(&t->lock);
		if (busy)
			usleep(100 * 1000);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Caller holds the lock. The guest's latest migration, or NULL. */
static struct migrd_mig *find(struct migrd_mig_table *t, const char *guest)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->migs[i].guest, guest))
			return &t->migs[i];
	return NULL;
}

int migrd_mig_start(struct migrd_mig_table *t, const char *guest,
		    const char *host, char *err, size_t err_len)
{
	struct migrd *d = t->d;
	struct migrd_proc *procs = NULL;
	struct migrd_mig *m;
	struct mig_job *job;
	pthread_attr_t attr;
	pthread_t th;
	int n, ret, i;

	if (!migrd_config_find_host(&d->cfg, host) ||
	    !strcmp(migrd_config_find_host(&d->cfg, host)->name, d->cfg.host)) {
		snprintf(err, err_len, !strcmp(host, d->cfg.host) ?
			 "'%s' is this host" : "unknown host '%s'", host);
		return -EINVAL;
	}
	n = migrd_registry_find(&d->reg, guest, 0, 0, &procs);
	free(procs);
	if (n <= 0 && !migrd_guest_file_running(&d->cfg, guest)) {
		snprintf(err, err_len, "no guest '%s' on this host", guest);
		return -ENOENT;
	}
	job = malloc(sizeof(*job));
	if (!job)
		return -ENOMEM;
	pthread_mutex_lock(&t->lock);
	m = find(t, guest);
	if (m && (m->busy || !migrd_mig_state_final(m->state))) {
		pthread_mutex_unlock(&t->lock);
		free(job);
		snprintf(err, err_len, "guest '%s' is already migrating",
			 guest);
		return -EBUSY;
	}
	if (!m && t->n < MAX_MIGS)
		m = &t->migs[t->n++];
	/* full: the record of the migration that ended first makes room */
	for (i = 0; !m && i < t->n; i++)
		if (!t->migs[i].busy && migrd_mig_state_final(t->migs[i].state) &&
		    (!m || t->migs[i].end_us < m->end_us))
			m = &t->migs[i];
	if (!m) {
		pthread_mutex_unlock(&t->lock);
		free(job);
		snprintf(err, err_len, "%d migrations under way already",
			 MAX_MIGS);
		return -ENOSPC;
	}
	memset(m, 0, sizeof(*m));
	m->busy = true;
	snprintf(m->guest, sizeof(m->guest), "%s", guest);
	snprintf(m->host, sizeof(m->host), "%s",
		 migrd_config_find_host(&d->cfg, host)->name);
	m->start_us = vmig_now_us();
	pthread_mutex_unlock(&t->lock);

	migrd_mig_set_state(t, m, MIGRD_MIG_NONE, MIGRD_MIG_SETUP, NULL);
	job->t = t;
	job->m = m;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&th, &attr, job_run, job);
	pthread_attr_destroy(&attr);
	if (ret) {
		free(job);
		migrd_mig_set_state(t, m, MIGRD_MIG_SETUP, MIGRD_MIG_FAILED,
			  "cannot start a thread");
		pthread_mutex_lock(&t->lock);
		m->busy = false;
		pthread_mutex_unlock(&t->lock);
	}
	return 0;
}

int migrd_mig_cancel(struct migrd_mig_table *t, const char *guest)
{
	struct migrd_mig *m;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	m = find(t, guest);
	if (!m)
		ret = -ENOENT;
	else if (migrd_mig_state_final(m->state) ||
		 !migrd_mig_transition_ok(m->state, MIGRD_MIG_CANCELLING))
		ret = -EALREADY;
	else
		m->cancel = true;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

json_t *migrd_mig_query(struct migrd_mig_table *t, const char *guest)
{
	struct migrd_mig *m;
	json_t *o = NULL;

	pthread_mutex_lock(&t->lock);
	m = find(t, guest);
	if (m)
		o = mig_json(m);
	pthread_mutex_unlock(&t->lock);
	return o;
}

json_t *migrd_mig_query_all(struct migrd_mig_table *t)
{
	json_t *a = json_array();
	int i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; a && i < t->n; i++)
		json_array_append_new(a, mig_json(&t->migs[i]));
	pthread_mutex_unlock(&t->lock);
	return a;
}
