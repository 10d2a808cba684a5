/* SPDX-License-Identifier: MIT */
/* The daemon's shared state: one struct migrd per process. */
#ifndef MIGRD_H
#define MIGRD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "peer_auth.h"
#include "peer_pool.h"
#include "registry.h"

struct migrd_api;
struct migrd_mig_table;

struct migrd {
	struct migrd_config cfg;
	uint8_t *key_buf;		/* owned */
	struct migrd_key key;
	struct migrd_peer_pool peers;	/* sessions with other migrd */
	struct migrd_registry reg;
	struct migrd_api *api;		/* events go out through it */
	struct migrd_mig_table *migs;
	char ctl_path[MIGRD_PATH_MAX];	/* migrd.sock */
	char api_path[MIGRD_PATH_MAX];	/* migrd-api.sock */
	volatile sig_atomic_t stop;
};

#endif
