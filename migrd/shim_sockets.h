/* SPDX-License-Identifier: MIT */
/*
 * A guest's shim sockets in run_dir, shim-GUEST-PID.sock (PID in the
 * guest's own namespace). Between a checkpoint's TEARDOWN and its restore
 * the shims hold no connection; these reach them through the files.
 */
#ifndef MIGRD_SHIM_SOCKETS_H
#define MIGRD_SHIM_SOCKETS_H

#include "config.h"

/* Removes the guest's socket files that nobody listens on any more (a
 * process checkpointed away): CRIU binds the restored ones again. */
int migrd_shim_sockets_unlink_stale(const struct migrd_config *cfg,
				    const char *guest);
/* Says HELLO on each live one: a shim that released its channels for a
 * checkpoint that did not happen registers again. Returns how many. */
int migrd_shim_sockets_poke(const struct migrd_config *cfg, const char *guest);

#endif
