/* SPDX-License-Identifier: MIT */
/*
 * migrd configuration: a key = value file (docs/design.md, migrd section).
 *
 *   host = h1                    this host's name (default: hostname)
 *   listen = 0.0.0.0             address of the peer TCP port
 *   port = 7410                  peer TCP port
 *   run_dir = /run/vmig          migrd.sock, migrd-api.sock, shim-*.sock
 *   key_file = /etc/vmig/cluster.key
 *   forward_timeout_ms = 5000    bound on a delivery to shims or a host
 *   connect_timeout_ms = 2000    bound on connecting to another migrd
 *   peer.h2 = 10.77.0.2[:port]   the cluster's hosts (this one may be listed);
 *                                without a port, the cluster's 'port'
 *   backend = exec               how guests are dumped and restored: none,
 *                                or exec (backend_exec PROG dump|restore
 *                                GUEST DIR; migrd/backend-criu.sh runs
 *                                vmig-guest, i.e. CRIU)
 *   backend_exec = /usr/lib/vmigrate/backend-criu.sh
 *   image_dir = /run/vmig/images checkpoints, outgoing and incoming
 *   drain_timeout_ms = 10000     bound on a suspend (drain) of the shims
 *   restore_timeout_ms = 60000   bound on a dump, restore, re-registration
 *   precopy_rounds = 2           pre-dump rounds while RDMA runs (0: none)
 *   precopy_stop_bytes = 1048576 no further round after one this small
 *   http_listen = 127.0.0.1:7480 the JSON API over HTTP (default: off)
 *   http_token_file = /etc/vmig/api.token  its bearer token (required)
 *
 * '#' starts a comment; blank lines are ignored; unknown keys are errors.
 */
#ifndef MIGRD_CONFIG_H
#define MIGRD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIGRD_NAME_MAX 64	/* host and guest names, with the NUL */
#define MIGRD_ADDR_MAX 64
#define MIGRD_PATH_MAX 108	/* fits sun_path */
#define MIGRD_MAX_HOSTS 64
#define MIGRD_DEFAULT_PORT 7410
#define MIGRD_DEFAULT_RUN_DIR "/run/vmig"
#define MIGRD_KEY_MIN 16
#define MIGRD_KEY_MAX 4096
#define MIGRD_PRECOPY_MAX 16	/* pre-dump rounds */

struct migrd_host {
	char name[MIGRD_NAME_MAX];
	char addr[MIGRD_ADDR_MAX];
	uint16_t port;
};

struct migrd_config {
	char host[MIGRD_NAME_MAX];
	char listen[MIGRD_ADDR_MAX];
	uint16_t port;
	char run_dir[MIGRD_PATH_MAX];
	char key_file[MIGRD_PATH_MAX];
	unsigned int forward_timeout_ms;
	unsigned int connect_timeout_ms;
	struct migrd_host hosts[MIGRD_MAX_HOSTS];
	int n_hosts;
	char backend[16];
	char backend_exec[MIGRD_PATH_MAX];
	char image_dir[MIGRD_PATH_MAX];
	unsigned int drain_timeout_ms;
	unsigned int restore_timeout_ms;
	unsigned int precopy_rounds;
	uint64_t precopy_stop_bytes;
	char http_addr[MIGRD_ADDR_MAX];	/* empty: no HTTP API */
	uint16_t http_port;
	char http_token_file[MIGRD_PATH_MAX];
};

/* Defaults: hostname, 0.0.0.0:7410, $VMIG_RUN_DIR or /run/vmig. */
void migrd_config_init(struct migrd_config *cfg);
/* Parses text over the current values; on error err says which line. */
int migrd_config_parse(struct migrd_config *cfg, const char *text,
		       char *err, size_t err_len);
int migrd_config_load(struct migrd_config *cfg, const char *path,
		      char *err, size_t err_len);
/* Checks the whole: key file set, host name valid, ... */
int migrd_config_check(const struct migrd_config *cfg, char *err,
		       size_t err_len);

/* By name, then by address (NULL when unknown). */
const struct migrd_host *migrd_config_find_host(const struct migrd_config *cfg,
						const char *name_or_addr);
bool migrd_name_valid(const char *name);

/* Reads the cluster key: MIGRD_KEY_MIN..MIGRD_KEY_MAX bytes, used as is;
 * refuses a file that others may read. *key is malloc'ed. */
int migrd_key_load(const char *path, uint8_t **key, size_t *key_len,
		   char *err, size_t err_len);

#endif
