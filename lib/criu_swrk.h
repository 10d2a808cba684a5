/* SPDX-License-Identifier: MIT */
/*
 * The CRIU backend's transport: CRIU 3.17 run as `criu swrk FD`, a child
 * process speaking CRIU's RPC (proto/criu_rpc.proto) over a SOCK_SEQPACKET
 * socket pair, one message per packet. Debian 12 ships no libcriu, and the
 * RPC gives us CRIU's own error number and message, and its notifications.
 *
 * Calls return 0 or a negative errno; on failure err holds CRIU's reason
 * (cr_errmsg, or what went wrong around it).
 */
#ifndef VMIG_CRIU_SWRK_H
#define VMIG_CRIU_SWRK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define VMIG_CRIU_ERR_LEN 512

/*
 * Called for each CRIU notification ("pre-dump", "post-dump",
 * "network-lock", "post-restore", ...) when opts.notify is set; a non-zero
 * return makes CRIU fail the operation.
 */
typedef int (*vmig_criu_notify_fn)(const char *script, int pid, void *arg);

/* CRIU's network lock methods (RPC field 64); 0 leaves CRIU's default. */
enum vmig_criu_netlock {
	VMIG_CRIU_NETLOCK_DEFAULT = 0,
	VMIG_CRIU_NETLOCK_IPTABLES = 1,
	VMIG_CRIU_NETLOCK_NFTABLES = 2,
};

/* The plugin that lets a pre-dump leave live uverbs mappings out. */
#define VMIG_CRIU_PLUGIN_SO "vmig_criu_plugin.so"

struct vmig_criu_opts {
	const char *criu_path;		/* NULL: "criu" from PATH */
	const char *images_dir;		/* must exist */
	const char *work_dir;		/* logs; NULL: images_dir */
	const char *log_file;		/* inside work_dir; NULL: no log */
	int log_level;			/* 0..4; 0 means CRIU's default (2) */
	pid_t pid;			/* dump: root of the tree */
	const char *parent_img;		/* relative to images_dir: pre-dump chain */
	bool leave_running;
	bool track_mem;			/* soft-dirty tracking for pre-dumps */
	bool shell_job;
	bool tcp_established;
	bool ext_unix_sk;
	bool file_locks;
	unsigned int empty_ns;		/* CLONE_NEW* flags CRIU must not dump */
	const char *const *external;	/* NULL-terminated --external values */
	unsigned int timeout_s;		/* 0: CRIU's default */
	enum vmig_criu_netlock network_lock;
	/*
	 * CRIU's plugin directory for this request (CRIU_LIBS_DIR of the swrk
	 * child: 3.17's RPC has no field for it); NULL: CRIU's default.
	 */
	const char *plugin_dir;
	vmig_criu_notify_fn notify;
	void *notify_arg;
};

int vmig_criu_pre_dump(const struct vmig_criu_opts *opts, char *err);
int vmig_criu_dump(const struct vmig_criu_opts *opts, char *err);
/* *pid receives the pid of the restored tree's root. */
int vmig_criu_restore(const struct vmig_criu_opts *opts, pid_t *pid,
		      char *err);
/*
 * The directory holding VMIG_CRIU_PLUGIN_SO: $VMIG_CRIU_PLUGIN_DIR if set
 * (empty: none), else the installed one, else the build tree's; NULL when
 * there is none.
 */
const char *vmig_criu_plugin_dir(void);
/* CRIU's version, e.g. 3.17 as major 3 minor 17. */
int vmig_criu_version(const char *criu_path, int *major, int *minor,
		      char *err);

#endif
