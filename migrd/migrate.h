/* SPDX-License-Identifier: MIT */
/*
 * Migrations this host runs as the source: one per guest at a time, a
 * state machine whose transitions all go through migrd_mig_set_state().
 */
#ifndef MIGRD_MIGRATE_H
#define MIGRD_MIGRATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct migrd;

/* In time order; failed and cancelled end a migration like completed. */
enum migrd_mig_state {
	MIGRD_MIG_NONE,
	MIGRD_MIG_SETUP,	/* checks, peers found, destination asked */
	MIGRD_MIG_PRECOPY,	/* memory pre-copy while RDMA runs */
	MIGRD_MIG_SUSPEND,	/* both ends stop posting and drain */
	MIGRD_MIG_TEARDOWN,	/* shims capture and release HCA resources */
	MIGRD_MIG_DUMP,		/* final dump, stop-and-copy */
	MIGRD_MIG_TRANSFER,	/* images to the destination */
	MIGRD_MIG_RESTORE,	/* restore and recreate on the destination */
	MIGRD_MIG_RECONNECT,	/* QPs back to RTS against the peers */
	MIGRD_MIG_RESUME,	/* held posts replayed, guest running */
	MIGRD_MIG_COMPLETED,
	MIGRD_MIG_CANCELLING,	/* rolling back on request */
	MIGRD_MIG_CANCELLED,
	MIGRD_MIG_FAILED,	/* rolled back; reason says why */
	MIGRD_MIG__COUNT,
};

const char *migrd_mig_state_name(enum migrd_mig_state s);
/* QMP-like status: none, setup, active, completed, failed, cancelling,
 * cancelled. */
const char *migrd_mig_status_name(enum migrd_mig_state s);
bool migrd_mig_state_final(enum migrd_mig_state s);
/* Whether old -> new is allowed. */
bool migrd_mig_transition_ok(enum migrd_mig_state old,
			     enum migrd_mig_state new_state);

struct migrd_mig_table;

struct migrd_mig_table *migrd_mig_table_create(struct migrd *d);
void migrd_mig_table_destroy(struct migrd_mig_table *t);

/* Starts migrating guest to host (a config name). 0, or -EBUSY (already
 * migrating), -ENOENT (unknown guest), -EINVAL (host: err says why). */
int migrd_mig_start(struct migrd_mig_table *t, const char *guest,
		    const char *host, char *err, size_t err_len);
/* -ENOENT when the guest has no migration, -EALREADY when it ended. */
int migrd_mig_cancel(struct migrd_mig_table *t, const char *guest);
/* The query-migrate object of guest's last migration (NULL: none). */
json_t *migrd_mig_query(struct migrd_mig_table *t, const char *guest);
/* All of them, as an array. */
json_t *migrd_mig_query_all(struct migrd_mig_table *t);

#endif
