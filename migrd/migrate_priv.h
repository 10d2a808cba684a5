/* SPDX-License-Identifier: MIT */
/* Shared by the migration table (migrate.c) and its phases (mig_phases.c). */
#ifndef MIGRD_MIGRATE_PRIV_H
#define MIGRD_MIGRATE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "migrate.h"

#define MAX_MIGS 64

struct migrd_mig {
	char guest[MIGRD_NAME_MAX];
	char host[MIGRD_NAME_MAX];	/* destination */
	enum migrd_mig_state state;
	enum migrd_mig_state failed_in;	/* phase that failed */
	char reason[512];
	bool cancel;			/* requested, seen between phases */
	bool busy;			/* its thread runs: slot not reusable */
	uint64_t start_us, end_us;
	uint64_t phase_start_us[MIGRD_MIG__COUNT];
	uint64_t phase_us[MIGRD_MIG__COUNT];
	uint32_t processes;
	uint32_t connections;
	uint64_t bytes_sent, bytes_remaining;
	uint32_t precopy_rounds;
	uint64_t precopy_bytes;		/* images of every round */
	uint64_t round_bytes[MIGRD_PRECOPY_MAX];
	uint64_t downtime_us;
};

struct migrd_mig_table {
	struct migrd *d;
	pthread_mutex_t lock;
	struct migrd_mig migs[MAX_MIGS];	/* state NONE: free slot */
	int n;
};

/* The one place a migration changes state: checks the transition, stamps
 * the phase times, logs, emits MIGRATION. -EINVAL if not allowed. */
int migrd_mig_set_state(struct migrd_mig_table *t, struct migrd_mig *m,
			enum migrd_mig_state old,
			enum migrd_mig_state new_state, const char *reason);
bool migrd_mig_cancel_requested(struct migrd_mig_table *t,
				struct migrd_mig *m);
/* Runs a migration from SETUP to its end (mig_phases.c). */
void migrd_mig_run(struct migrd_mig_table *t, struct migrd_mig *m);

#endif
