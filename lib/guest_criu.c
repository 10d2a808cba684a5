// SPDX-License-Identifier: MIT
/*
 * Checkpoint and restore of a process guest with CRIU (lib/criu_swrk):
 * the whole pid namespace from its init, the network namespace with its
 * established TCP connections, and the veth named as an external so the
 * restore recreates the host end as vg-NAME. See docs/design.md, "Process
 * guests", for the options and why.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "criu_swrk.h"
#include "guest_priv.h"

/*
 * CRIU 3.17 locks the network with iptables unless told otherwise, and
 * Debian's criu is built with libnftables while iptables is not installed
 * where we run: dumps and restores ask for nftables (RPC field 64).
 */
#define GUEST_NETLOCK VMIG_CRIU_NETLOCK_NFTABLES

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= n;
	}
	return 0;
}

static int copy_file(const char *src, const char *dst, char *err)
{
	char buf[65536];
	int in = -1, out = -1, ret = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		ret = -errno;
		GUEST_SETERR(err, "cannot open %s: %s", src, strerror(errno));
		goto out;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		ret = -errno;
		GUEST_SETERR(err, "cannot create %s: %s", dst, strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (ret = write_all(out, buf, n))) {
			ret = ret ? ret : -errno;
			GUEST_SETERR(err, "copying %s to %s: %s", src, dst,
				     strerror(-ret));
			goto out;
		}
	}
	if (fsync(out) < 0 && errno != EINVAL) {
		ret = -errno;
		GUEST_SETERR(err, "fsync %s: %s", dst, strerror(errno));
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}

static int path_in(char *buf, const char *dir, const char *file, char *err)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, file) >= PATH_MAX) {
		GUEST_SETERR(err, "path too long: %s/%s", dir, file);
		return -ENAMETOOLONG;
	}
	return 0;
}

struct dump_ctx {
	const struct vmig_guest *g;
	const char *dir;
	char err[VMIG_GUEST_ERR_LEN];
};

/*
 * After the dump, while the guest is still frozen: its log is final, and
 * a copy that fails fails the dump, so the guest resumes here.
 */
static int dump_notify(const char *script, int pid, void *arg)
{
	struct dump_ctx *c = arg;
	char dst[PATH_MAX];

	(void)pid;
	if (strcmp(script, "post-dump"))
		return 0;
	if (path_in(dst, c->dir, VMIG_GUEST_CKPT_LOG, c->err))
		return -1;
	return copy_file(c->g->log_path, dst, c->err) ? -1 : 0;
}

/* Checks dir and parent, loads the running guest, makes dir. */
static int dump_prepare(const char *name, const char *dir, const char *parent,
			struct vmig_guest *g, char *err)
{
	char path[PATH_MAX];
	bool made = false;
	int ret;

	if (!dir || !*dir) {
		GUEST_SETERR(err, "no checkpoint directory given");
		return -EINVAL;
	}
	/* CRIU links dir/parent to it: relative, so the chain can move */
	if (parent && (!*parent || parent[0] == '/')) {
		GUEST_SETERR(err, "parent '%s' must be a path relative to %s",
			     parent, dir);
		return -EINVAL;
	}
	ret = vmig_guest_load(name, g, err);
	if (ret)
		return ret;
	if (g->state != VMIG_GUEST_RUNNING || !vmig_guest_alive(g)) {
		GUEST_SETERR(err, "guest '%s' is not running here (%s)", name,
			     g->state == VMIG_GUEST_RUNNING ? "its init is gone" :
			     vmig_guest_state_name(g->state));
		return -ESRCH;
	}
	if (mkdir(dir, 0700) == 0) {
		made = true;
	} else if (errno != EEXIST) {
		ret = -errno;
		GUEST_SETERR(err, "cannot create %s: %s", dir, strerror(errno));
		return ret;
	}
	ret = path_in(path, dir, "inventory.img", err);
	if (ret)
		goto fail;
	if (access(path, F_OK) == 0) {
		GUEST_SETERR(err, "%s already holds a checkpoint", dir);
		ret = -EEXIST;
		goto fail;
	}
	/* resolved from dir, which must exist for that */
	if (parent && (snprintf(path, sizeof(path), "%s/%s/inventory.img", dir,
				parent) >= (int)sizeof(path) ||
		       access(path, F_OK) < 0)) {
		GUEST_SETERR(err, "parent %s/%s holds no images", dir, parent);
		ret = -ENOENT;
		goto fail;
	}
	return 0;
fail:
	if (made)
		rmdir(dir);
	return ret;
}

int vmig_guest_pre_dump(const char *name, const char *dir, const char *parent,
			char *err)
{
	struct vmig_guest g;
	char cerr[VMIG_CRIU_ERR_LEN];
	struct vmig_criu_opts o = {
		.images_dir = dir,
		.log_file = "pre-dump.log",
		.log_level = 4,
		.parent_img = parent,
		.track_mem = true,
		.ext_unix_sk = true,
	};
	int lock, ret;

	ret = vmig_guest_check_name(name, err);
	if (ret)
		return ret;
	lock = guest_lock(err);
	if (lock < 0)
		return lock;
	ret = dump_prepare(name, dir, parent, &g, err);
	if (ret)
		goto out;
	o.pid = g.pid;
	o.plugin_dir = vmig_criu_plugin_dir();
	ret = vmig_criu_pre_dump(&o, cerr);
	if (ret)
		GUEST_SETERR(err, "%s (CRIU log: %s/pre-dump.log%s)", cerr, dir,
			     o.plugin_dir ? "" : "; no " VMIG_CRIU_PLUGIN_SO
			     " found, so live uverbs mappings are refused");
out:
	guest_unlock(lock);
	return ret;
}

int vmig_guest_checkpoint(const char *name, const char *dir, const char *parent,
			  char *err)
{
	struct vmig_guest g;
	struct dump_ctx ctx = { .g = &g, .dir = dir, .err = "" };
	char path[PATH_MAX], cerr[VMIG_CRIU_ERR_LEN];
	struct vmig_criu_opts o = {
		.images_dir = dir,
		.log_file = "dump.log",
		.log_level = 4,
		.parent_img = parent,
		.track_mem = parent != NULL,
		.tcp_established = true,
		.ext_unix_sk = true,
		.network_lock = GUEST_NETLOCK,
		.notify = dump_notify,
		.notify_arg = &ctx,
	};
	int lock, ret;

	ret = vmig_guest_check_name(name, err);
	if (ret)
		return ret;
	lock = guest_lock(err);
	if (lock < 0)
		return lock;
	ret = dump_prepare(name, dir, parent, &g, err);
	if (ret)
		goto out;
	ret = path_in(path, dir, VMIG_GUEST_CKPT_RECORD, err);
	if (!ret)
		ret = guest_save_to(&g, path, err);
	if (ret)
		goto out;

	/* vmig_guest_run's waiter learns from this that the guest moved */
	g.state = VMIG_GUEST_CHECKPOINTING;
	ret = guest_save(&g, err);
	if (ret)
		goto out;
	o.pid = g.pid;
	ret = vmig_criu_dump(&o, cerr);
	if (ret) {
		char lerr[VMIG_GUEST_ERR_LEN];

		g.state = VMIG_GUEST_RUNNING;
		guest_save(&g, lerr);
		GUEST_SETERR(err, "%s%s%s (CRIU log: %s/dump.log)", cerr,
			     ctx.err[0] ? "; " : "", ctx.err, dir);
		goto out;
	}
	/* the netns dies asynchronously: do not wait for it to take the veth */
	guest_link_del(g.host_veth);
	g.state = VMIG_GUEST_AWAY;
	g.pid = 0;
	g.start_time = 0;
	g.via.s_addr = 0;
	ret = guest_save(&g, err);
	unlink(g.log_path);
out:
	guest_unlock(lock);
	return ret;
}

struct restore_ctx {
	const struct vmig_guest *g;
	pid_t dumped;		/* the init's pid where it was dumped */
	bool net_done;		/* post-restore unlocked and routed */
	char err[VMIG_GUEST_ERR_LEN];
};

/* The host end exists once the namespaces are restored: route to it before
 * CRIU unlocks the network, so the guest's peers lose nothing more. */
static int restore_notify(const char *script, int pid, void *arg)
{
	struct restore_ctx *c = arg;
	char nerr[VMIG_GUEST_ERR_LEN] = "";
	pid_t nft;
	int ret, up;

	if (strcmp(script, "post-restore"))
		return 0;
	/* at once: the nft child works in the guest's netns, ip in ours */
	nft = pid > 0 ? guest_nft_unlock_start(pid, c->dumped, nerr) : -ENOENT;
	up = guest_host_net_up(c->g, c->err);
	ret = guest_nft_unlock_finish(nft, nerr);
	if (up)
		return -1;
	if (nerr[0])
		snprintf(c->err, sizeof(c->err), "%s", nerr);
	/* a CRIU that named no pid gets both done again after the restore */
	c->net_done = ret == 0 || (ret == -ENOENT && pid > 0);
	return 0;
}

static int wait_no_link(const char *ifname)
{
	struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };

	for (int i = 0; i < 100 && guest_link_exists(ifname); i++)
		nanosleep(&ts, NULL);
	return guest_link_exists(ifname) ? -EEXIST : 0;
}

int vmig_guest_restore(const char *name, const char *dir,
		       struct vmig_guest *out, char *err)
{
	struct vmig_guest g, cur;
	struct restore_ctx ctx = { .g = &g, .err = "" };
	char path[PATH_MAX], ext[64], cerr[VMIG_CRIU_ERR_LEN];
	char who[VMIG_GUEST_NAME_MAX + 1], lerr[VMIG_GUEST_ERR_LEN];
	const char *externals[] = { ext, NULL };
	struct vmig_criu_opts o = {
		.images_dir = dir,
		.log_file = "restore.log",
		.log_level = 4,
		.tcp_established = true,
		.ext_unix_sk = true,
		.network_lock = GUEST_NETLOCK,
		.external = externals,
		.notify = restore_notify,
		.notify_arg = &ctx,
	};
	bool log_made = false;
	pid_t pid = -1;
	char *slash;
	int lock, ret;

	ret = vmig_guest_check_name(name, err);
	if (ret)
		return ret;
	if (!dir || !*dir) {
		GUEST_SETERR(err, "no checkpoint directory given");
		return -EINVAL;
	}
	lock = guest_lock(err);
	if (lock < 0)
		return lock;
	ret = path_in(path, dir, VMIG_GUEST_CKPT_RECORD, err);
	if (ret)
		goto out;
	ret = guest_load_from(path, &g, err);
	if (ret) {
		if (ret == -ENOENT)
			GUEST_SETERR(err, "%s is not a guest checkpoint (no %s)",
				     dir, VMIG_GUEST_CKPT_RECORD);
		goto out;
	}
	if (strcmp(g.name, name)) {
		GUEST_SETERR(err, "%s holds guest '%s', not '%s'", dir, g.name, name);
		ret = -EINVAL;
		goto out;
	}
	ret = vmig_guest_load(name, &cur, lerr);
	if (ret)
		memset(&cur, 0, sizeof(cur));
	if (!ret && cur.state != VMIG_GUEST_AWAY && vmig_guest_alive(&cur)) {
		GUEST_SETERR(err, "guest '%s' already runs here (init pid %d)",
			     name, (int)cur.pid);
		ret = -EEXIST;
		goto out;
	}
	if (ret && ret != -ENOENT) {
		GUEST_SETERR(err, "%s", lerr);
		goto out;
	}
	/* a guest checkpointed here a moment ago may still hold the name */
	if (wait_no_link(g.host_veth)) {
		GUEST_SETERR(err, "interface %s already exists", g.host_veth);
		ret = -EEXIST;
		goto out;
	}
	if (guest_addr_in_use(&g, who, sizeof(who))) {
		inet_ntop(AF_INET, &g.addr, path, INET_ADDRSTRLEN);
		GUEST_SETERR(err, "address %s is taken by guest '%s'", path, who);
		ret = -EADDRINUSE;
		goto out;
	}

	/* CRIU reopens the log by its path, and wants it no shorter */
	slash = strrchr(g.log_path, '/');
	if (slash && slash != g.log_path) {
		*slash = '\0';
		mkdir(g.log_path, 0755);
		*slash = '/';
	}
	ret = path_in(path, dir, VMIG_GUEST_CKPT_LOG, err);
	if (!ret)
		ret = copy_file(path, g.log_path, err);
	if (ret)
		goto out;
	log_made = true;

	ctx.dumped = g.pid;
	snprintf(ext, sizeof(ext), "veth[%s]:%s", VMIG_GUEST_IFNAME, g.host_veth);
	ret = vmig_criu_restore(&o, &pid, cerr);
	if (ret) {
		GUEST_SETERR(err, "%s%s%s (CRIU log: %s/restore.log)", cerr,
			     ctx.err[0] ? "; " : "", ctx.err, dir);
		goto fail;
	}
	g.pid = pid;
	/* each is a fork and exec or three: 0.4 s on the testbed, twice */
	ret = ctx.net_done ? 0 : guest_nft_unlock(pid, ctx.dumped, err);
	if (ret == -ENOENT)
		ret = 0; /* done in post-restore, or a CRIU without the bug */
	if (!ret && !ctx.net_done)
		ret = guest_host_net_up(&g, err);
	if (!ret) {
		ret = guest_pid_start_time(pid, &g.start_time);
		if (ret)
			GUEST_SETERR(err, "the restored init (pid %d) died at once",
				     (int)pid);
	}
	if (ret)
		goto fail;
	g.state = VMIG_GUEST_RUNNING;
	g.via.s_addr = 0;
	ret = guest_save(&g, err);
	if (ret)
		goto fail;
	if (out)
		*out = g;
	goto out;

fail:
	guest_link_del(g.host_veth);
	if (pid > 0)
		kill(pid, SIGKILL);
	if (log_made)
		unlink(g.log_path);
	/* the route this host had to the guest elsewhere, as it was */
	if (cur.state == VMIG_GUEST_AWAY && cur.via.s_addr) {
		char dst[INET_ADDRSTRLEN + 3], via[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &g.addr, dst, INET_ADDRSTRLEN);
		strcat(dst, "/32");
		inet_ntop(AF_INET, &cur.via, via, sizeof(via));
		guest_ip(lerr, "route", "replace", dst, "via", via, NULL);
	}
out:
	guest_unlock(lock);
	return ret;
}
