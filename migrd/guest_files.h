/* SPDX-License-Identifier: MIT */
/*
 * Process guests recorded by vmig-guest (lib/guest.h) in
 * $run_dir/guests/NAME.json: a guest can run here without any shim (no
 * RDMA, or not started yet), and still be migrated (plain CRIU).
 */
#ifndef MIGRD_GUEST_FILES_H
#define MIGRD_GUEST_FILES_H

#include <stdbool.h>

#include "config.h"

/* Whether vmig-guest records guest as running on this host. */
bool migrd_guest_file_running(const struct migrd_config *cfg,
			      const char *guest);
/* Calls fn for each guest recorded as running here. */
void migrd_guest_files_each(const struct migrd_config *cfg,
			    void (*fn)(const char *guest, void *arg),
			    void *arg);

#endif
