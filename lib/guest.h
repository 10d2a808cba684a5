/* SPDX-License-Identifier: MIT */
/*
 * Process guests ("containers"): a command run in its own PID and network
 * namespaces, with its own IPv4 address on a veth pair routed through the
 * host, so that CRIU can dump it on one host and restore it on another where
 * its PIDs are taken, with its established TCP connections (docs/design.md,
 * "Process guests").
 *
 * Layout of a guest NAME on a host:
 *   host netns:  vg-NAME (169.254.78.1/32, proxy_arp), route ADDR/32 dev vg-NAME
 *   guest netns: lo, eth0 ADDR/PREFIX, default via 169.254.78.1 dev eth0
 *   guest pidns: PID 1 is a small init (reaps, forwards SIGTERM/SIGINT/SIGHUP/
 *                SIGUSR1/SIGUSR2 to the command's process group, exits with
 *                its status); it is a fork of the calling program, so that
 *                program must exist at the same path where the guest is
 *                restored. The command runs in its own process group with
 *                stdin /dev/null, stdout/stderr to the guest's log file (no
 *                tty: nothing CRIU cannot move) and no other inherited fd
 *   state:       $VMIG_RUN_DIR/guests/NAME.json (VMIG_RUN_DIR defaults to
 *                /run/vmig): name, state, pid of the init on this host,
 *                its start time, address, host veth, log file, and for a
 *                guest that left, the host it went to (via).
 * The gateway address is the same on every host, so a restored guest's
 * routes work unchanged wherever it lands.
 *
 * Calls return 0 or a negative errno and put a sentence in err
 * (VMIG_GUEST_ERR_LEN bytes). Mutating calls hold a lock on the run
 * directory; they leave nothing half done: a failed start removes the veth,
 * the route and the state file and kills what it started.
 *
 * For vmig-run (a shell script today): keep LD_PRELOAD out of vmig-guest
 * itself (its fork is the guest's init, which must not carry the shim) and
 * give it to the command through env(1):
 *	exec "$here/vmig-guest" run "$guest" [--addr A.B.C.D[/NN]] -- \
 *		env LD_PRELOAD="$lib" VMIG_GUEST="$guest" "$@"
 * vmig-guest run calls vmig_guest_run() and exits with what it returns
 * (0 when the guest was checkpointed away). From C, with the preload
 * environment set for the command only as above, or in your own
 * environment if the caller has no shim loaded:
 *	struct vmig_guest g;
 *	if (vmig_guest_init(&g, name, addr_or_NULL, err))
 *		... usage error ...
 *	ret = vmig_guest_run(&g, argv, err);
 * vmig_guest_run() creates the guest, execs argv inside it (PATH lookup, the
 * environment inherited), waits for it while forwarding SIGTERM, SIGINT and
 * SIGHUP to it, tears everything down but the log (the command's stdout
 * and stderr, $VMIG_RUN_DIR/guests/NAME.log: a tty or pipe could not move
 * with the guest; the next guest of that name overwrites it) and returns
 * the command's status as a shell reports it (0..255, 128+N for signal N),
 * VMIG_GUEST_CHECKPOINTED if the guest was checkpointed away from this host
 * meanwhile (its init was killed by CRIU: the guest lives on elsewhere), or
 * a negative errno when the guest could not be created (err says why).
 */
#ifndef VMIG_GUEST_H
#define VMIG_GUEST_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>

#define VMIG_GUEST_ERR_LEN 512
/* "vg-" + name must fit an interface name (IFNAMSIZ - 1 = 15). */
#define VMIG_GUEST_NAME_MAX 12
/* Addresses derived from a guest's name are taken from this subnet. */
#define VMIG_GUEST_SUBNET "10.78.0.0/16"
/* The guests' default gateway: the host end of every guest's veth. */
#define VMIG_GUEST_GATEWAY "169.254.78.1"
#define VMIG_GUEST_IFNAME "eth0"
#define VMIG_GUEST_VETH_PREFIX "vg-"
/* vmig_guest_run(): the guest was checkpointed and left this host. */
#define VMIG_GUEST_CHECKPOINTED 256

enum vmig_guest_state {
	VMIG_GUEST_RUNNING,
	VMIG_GUEST_CHECKPOINTING,	/* a dump is in progress */
	VMIG_GUEST_AWAY,		/* checkpointed or routed elsewhere */
};

struct vmig_guest {
	char name[VMIG_GUEST_NAME_MAX + 1];
	enum vmig_guest_state state;
	struct in_addr addr;
	unsigned int prefix;		/* of addr inside the guest, 8..32 */
	char host_veth[IFNAMSIZ];
	pid_t pid;			/* the guest's init here; 0 when away */
	unsigned long long start_time;	/* of pid (clock ticks): pid reuse guard */
	struct in_addr via;		/* away: the host it went to, or 0 */
	char log_path[PATH_MAX];
};

/* $VMIG_RUN_DIR/guests, or /run/vmig/guests. */
const char *vmig_guest_dir(void);

/* 1..VMIG_GUEST_NAME_MAX of [a-z0-9-], starting with a letter or digit. */
int vmig_guest_check_name(const char *name, char *err);
/* "A.B.C.D" or "A.B.C.D/NN" (NN 8..32, default 32), a unicast host address. */
int vmig_guest_parse_addr(const char *s, struct in_addr *addr,
			  unsigned int *prefix, char *err);
/* A stable address for name in VMIG_GUEST_SUBNET (hash of the name). */
void vmig_guest_default_addr(const char *name, struct in_addr *addr);

/*
 * Fills g for a new guest: name checked, address from addr (NULL: derived
 * from the name), veth and log file names. Touches nothing on the system.
 */
int vmig_guest_init(struct vmig_guest *g, const char *name, const char *addr,
		    char *err);

/*
 * Creates the guest described by g (from vmig_guest_init) running argv, and
 * returns once the command has been exec'd; the guest then runs detached
 * (its init is reparented to this host's init). Sets g->pid.
 */
int vmig_guest_start(struct vmig_guest *g, char *const argv[], char *err);
/* Like start, but waits for the guest: see the comment at the top. */
int vmig_guest_run(struct vmig_guest *g, char *const argv[], char *err);
/*
 * Stops a running guest (SIGTERM to its init, SIGKILL after timeout_s) and
 * removes its veth, route, log and state; for a guest that is away, removes
 * the route to it and forgets it.
 */
int vmig_guest_stop(const char *name, unsigned int timeout_s, char *err);

/* Reads the state of guest name; -ENOENT when this host knows no such guest. */
int vmig_guest_load(const char *name, struct vmig_guest *g, char *err);
/* True when g's init still runs (same pid and start time, not a zombie). */
bool vmig_guest_alive(const struct vmig_guest *g);
/* Calls fn for every guest this host knows, in name order; fn's non-zero
 * return stops the walk and is returned. */
int vmig_guest_list(int (*fn)(const struct vmig_guest *g, void *arg),
		    void *arg, char *err);
const char *vmig_guest_state_name(enum vmig_guest_state s);

/*
 * Points this host's route to a guest that runs elsewhere at via (the
 * address of the host it runs on): ADDR/32 via VIA. The address is addr if
 * given, else the one this host recorded for name, else the one derived
 * from name. Refused while the guest runs here.
 */
int vmig_guest_route(const char *name, const char *addr, const char *via,
		     char *err);

/*
 * Pre-copy: dumps the memory of a running guest into dir (created if
 * missing, must hold no images) and leaves it running, with soft-dirty
 * tracking so the next dump writes only what changed since. parent, if not
 * NULL, is the previous pre-dump's directory relative to dir ("../1").
 * CRIU's log is dir/pre-dump.log.
 */
int vmig_guest_pre_dump(const char *name, const char *dir, const char *parent,
			char *err);
/*
 * Dumps a running guest with CRIU into dir (created if missing, must hold
 * no checkpoint): the guest stops here and its record is marked away.
 * parent: as for vmig_guest_pre_dump, NULL for a dump without pre-copy;
 * restore then needs the parent directories at the same relative place.
 * dir also gets vmig-guest.json (the guest's record) and vmig-guest.log
 * (its log so far), which restore needs. CRIU's log is dir/dump.log.
 */
int vmig_guest_checkpoint(const char *name, const char *dir, const char *parent,
			  char *err);
/*
 * Restores the guest checkpointed in dir on this host, with the same
 * address, recreates vg-NAME and the route to it, and records it as running
 * (g, if not NULL, receives the record). CRIU's log is dir/restore.log.
 */
int vmig_guest_restore(const char *name, const char *dir,
		       struct vmig_guest *g, char *err);

#endif
