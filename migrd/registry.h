/* SPDX-License-Identifier: MIT */
/*
 * The processes (shims) on this host, by guest. An entry lives as long as
 * the shim's registration connection to migrd.sock; thread-safe.
 */
#ifndef MIGRD_REGISTRY_H
#define MIGRD_REGISTRY_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct migrd_proc {
	int id;			/* registry handle, > 0 */
	pid_t pid;		/* as the shim reported it (its namespace) */
	pid_t host_pid;		/* from SO_PEERCRED; 0 when unknown */
	char guest[MIGRD_NAME_MAX];
	char ctl_path[MIGRD_PATH_MAX];
};

struct migrd_registry {
	pthread_mutex_t lock;
	pthread_cond_t changed;	/* broadcast on every add and remove */
	struct migrd_proc *procs;
	size_t n, cap;
	int next_id;
};

void migrd_registry_init(struct migrd_registry *reg);
void migrd_registry_dispose(struct migrd_registry *reg);
/* Returns the entry's id (> 0) or -errno. A new registration with the same
 * ctl_path replaces the old one (a restarted shim). */
int migrd_registry_add(struct migrd_registry *reg, pid_t pid, pid_t host_pid,
		       const char *guest, const char *ctl_path);
void migrd_registry_remove(struct migrd_registry *reg, int id);

/*
 * Copies the entries that match (guest NULL: any; pid 0: any; skip_pid:
 * leave that pid out) into a malloc'ed array. Returns the count or -errno.
 */
int migrd_registry_find(struct migrd_registry *reg, const char *guest,
			pid_t pid, pid_t skip_pid, struct migrd_proc **out);
/* Waits until guest has n entries or more, at most timeout_ms; returns
 * how many it has then. */
int migrd_registry_wait(struct migrd_registry *reg, const char *guest,
			size_t n, unsigned int timeout_ms);
/* Distinct guest names, sorted, malloc'ed array of n names. */
int migrd_registry_guests(struct migrd_registry *reg,
			  char (**out)[MIGRD_NAME_MAX]);

#endif
