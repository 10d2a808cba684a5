/* SPDX-License-Identifier: MIT */
/*
 * Hypervisor backends: how a guest's processes are checkpointed into a
 * directory and brought back from one. An ops table per backend; an op a
 * backend does not fill returns -EOPNOTSUPP.
 *
 * The shims are suspended and torn down before dump (no HCA resources
 * left), so the backend sees plain processes.
 */
#ifndef MIGRD_BACKEND_H
#define MIGRD_BACKEND_H

#include <stddef.h>

struct migrd_config;

struct migrd_backend_ops {
	const char *name;
	/* A pre-copy round: guest's memory into dir (exists, empty) while it keeps running, RDMA included; parent, if not
	 * NULL, is the previous round's directory relative to dir, and only
	 * what changed since goes in. */
	int (*pre_dump)(const struct migrd_config *cfg, const char *guest,
			const char *dir, const char *parent, char *err,
			size_t err_len);
	/* Final checkpoint of guest into dir (exists; parent as for
	 * pre_dump: restoring dir then needs that chain beside it); the
	 * guest's processes stop here. */
	int (*dump)(const struct migrd_config *cfg, const char *guest,
		    const char *dir, const char *parent, char *err,
		    size_t err_len);
	/* Runs guest from the checkpoint in dir on this host. */
	int (*restore)(const struct migrd_config *cfg, const char *guest,
		       const char *dir, char *err, size_t err_len);
	/* May be NULL. guest is about to come here into dir: get ready in
	 * the background (CRIU's first run after boot probes the kernel for
	 * seconds, which a restore in the downtime should not). Returns at
	 * once; what it does is neither waited for nor checked. */
	void (*prepare)(const struct migrd_config *cfg, const char *guest,
			const char *dir);
	/* guest now runs on the host at addr: reach it there (routes). */
	int (*moved)(const struct migrd_config *cfg, const char *guest,
		     const char *addr, char *err, size_t err_len);
};

/* The table for cfg->backend (never NULL). */
const struct migrd_backend_ops *migrd_backend_get(const struct migrd_config *cfg);

#endif
