// SPDX-License-Identifier: MIT
/*
 * Creating, waiting for, stopping and routing process guests. The guest's
 * init is cloned straight into new PID and network namespaces (so it is
 * PID 1 there, as CRIU needs of a pidns dump); the parent then creates the
 * veth pair into the new netns, configures the host end, and lets the init
 * go on. The mount namespace is the host's: CRIU then has no mounts to
 * dump, and the guest sees the host's /sys/class/infiniband and
 * /dev/infiniband, so it can use this host's RDMA device.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest_priv.h"

/* fork() into new pid and net namespaces: the child is PID 1 there. */
static pid_t clone_guest(void)
{
	return syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNET | SIGCHLD, NULL,
		       NULL, NULL, 0);
}

struct spawn {
	int go[2];	/* parent -> init: eth0 is there, go on */
	int status[2];	/* init -> parent: "OK" or why not */
	pid_t pid;	/* the init, in our pid ns */
	pid_t helper;	/* detached start: the process that cloned it */
};

static void spawn_close(struct spawn *s)
{
	for (int i = 0; i < 2; i++) {
		if (s->go[i] >= 0)
			close(s->go[i]);
		if (s->status[i] >= 0)
			close(s->status[i]);
		s->go[i] = s->status[i] = -1;
	}
}

static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return st;
}

/*
 * Clones the init. Detached: through a helper that starts a new session and
 * exits after the clone, so the init is not our child and survives us; the
 * helper sends us the init's pid.
 */
static int spawn_init(struct spawn *s, const struct vmig_guest *g,
		      char *const argv[], bool detached, char *err)
{
	int ret;

	if (pipe2(s->go, O_CLOEXEC) < 0 || pipe2(s->status, O_CLOEXEC) < 0) {
		ret = -errno;
		GUEST_SETERR(err, "pipe: %s", strerror(errno));
		return ret;
	}
	if (detached) {
		s->helper = fork();
		if (s->helper < 0) {
			ret = -errno;
			GUEST_SETERR(err, "fork: %s", strerror(errno));
			return ret;
		}
		if (s->helper > 0) {
			int st = reap(s->helper);
			ssize_t n = read(s->status[0], &s->pid, sizeof(s->pid));

			s->helper = -1;
			if (st != 0 || n != sizeof(s->pid) || s->pid <= 0) {
				GUEST_SETERR(err, "cannot create the guest's namespaces "
					     "(clone with CLONE_NEWPID|CLONE_NEWNET: are we root?)");
				return -EPERM;
			}
			return 0;
		}
		setsid();
	}
	s->pid = clone_guest();
	if (s->pid == 0) {
		close(s->go[1]);
		close(s->status[0]);
		guest_init_main(g, argv, s->go[0], s->status[1]);
	}
	if (detached) {
		int e = errno;

		if (s->pid > 0 && write(s->status[1], &s->pid, sizeof(s->pid)) ==
					  sizeof(s->pid))
			_exit(0);
		dprintf(STDERR_FILENO, "guest: clone: %s\n", strerror(e));
		_exit(1);
	}
	if (s->pid < 0) {
		ret = -errno;
		GUEST_SETERR(err, "cannot create the guest's namespaces "
			     "(clone with CLONE_NEWPID|CLONE_NEWNET): %s",
			     strerror(errno));
		return ret;
	}
	return 0;
}

/* Reads the init's verdict: "OK", or a message then EOF. */
static int read_status(int fd, char *err)
{
	char buf[VMIG_GUEST_ERR_LEN - 32];
	size_t used = 0;
	ssize_t n;

	while (used < sizeof(buf) - 1) {
		n = read(fd, buf + used, sizeof(buf) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += n;
		if (used == 2 && !memcmp(buf, "OK", 2))
			return 0;
	}
	buf[used] = '\0';
	GUEST_SETERR(err, "%s", used ? buf : "the guest's init died while starting");
	return -EIO;
}

static int check_free(const struct vmig_guest *g, char *err)
{
	struct vmig_guest old;
	char who[VMIG_GUEST_NAME_MAX + 1], addr[INET_ADDRSTRLEN];
	char lerr[VMIG_GUEST_ERR_LEN];
	int ret = vmig_guest_load(g->name, &old, lerr);

	if (!ret) {
		if (old.state == VMIG_GUEST_AWAY)
			GUEST_SETERR(err, "guest '%s' is known to be on another host "
				     "(`vmig-guest stop %s` forgets it)", g->name, g->name);
		else if (vmig_guest_alive(&old))
			GUEST_SETERR(err, "guest '%s' already runs here (init pid %d)",
				     g->name, (int)old.pid);
		else
			ret = 1; /* a stale record of a dead guest: replace it */
		if (!ret)
			return -EEXIST;
	} else if (ret != -ENOENT) {
		GUEST_SETERR(err, "%s", lerr);
		return ret;
	}
	if (guest_link_exists(g->host_veth)) {
		GUEST_SETERR(err, "interface %s already exists", g->host_veth);
		return -EEXIST;
	}
	if (guest_addr_in_use(g, who, sizeof(who))) {
		inet_ntop(AF_INET, &g->addr, addr, sizeof(addr));
		GUEST_SETERR(err, "address %s is taken by guest '%s'", addr, who);
		return -EADDRINUSE;
	}
	return 0;
}

/* Everything but the wait: the guest runs when this returns 0. */
static int start(struct vmig_guest *g, char *const argv[], bool detached,
		 char *err)
{
	struct spawn s = { .go = { -1, -1 }, .status = { -1, -1 },
			   .pid = -1, .helper = -1 };
	bool veth = false, saved = false;
	int lock, ret, logfd;

	if (!argv || !argv[0] || !*argv[0]) {
		GUEST_SETERR(err, "no command to run in guest '%s'", g->name);
		return -EINVAL;
	}
	lock = guest_lock(err);
	if (lock < 0)
		return lock;
	ret = check_free(g, err);
	if (ret)
		goto out;
	logfd = open(g->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (logfd < 0) {
		ret = -errno;
		GUEST_SETERR(err, "cannot create the guest log %s: %s",
			     g->log_path, strerror(errno));
		goto out;
	}
	close(logfd);

	ret = spawn_init(&s, g, argv, detached, err);
	if (ret)
		goto fail;
	close(s.go[0]);
	close(s.status[1]);
	s.go[0] = s.status[1] = -1;
	ret = guest_veth_create(g, s.pid, err);
	if (ret)
		goto fail;
	veth = true;
	ret = guest_host_net_up(g, err);
	if (ret)
		goto fail;
	if (write(s.go[1], "g", 1) != 1) {
		ret = -EIO;
		GUEST_SETERR(err, "the guest's init died while starting");
		goto fail;
	}
	ret = read_status(s.status[0], err);
	if (ret)
		goto fail;
	ret = guest_pid_start_time(s.pid, &g->start_time);
	if (ret) {
		GUEST_SETERR(err, "the guest's init (pid %d) died at once", (int)s.pid);
		goto fail;
	}
	g->pid = s.pid;
	g->state = VMIG_GUEST_RUNNING;
	g->via.s_addr = 0;
	ret = guest_save(g, err);
	if (ret)
		goto fail;
	saved = true;
	spawn_close(&s);
	guest_unlock(lock);
	return 0;

fail:
	/* the veth first: the netns (and so its end) dies asynchronously */
	if (veth)
		guest_link_del(g->host_veth);
	if (s.pid > 0) {
		kill(s.pid, SIGKILL);
		if (!detached)
			reap(s.pid);
	}
	if (saved)
		guest_forget(g->name);
	unlink(g->log_path);
out:
	spawn_close(&s);
	guest_unlock(lock);
	return ret;
}

int vmig_guest_start(struct vmig_guest *g, char *const argv[], char *err)
{
	return start(g, argv, true, err);
}

/*
 * Removes what a guest that ran here left, if the record is still its own.
 * The log stays: it is the command's output, which the caller of
 * vmig_guest_run() saw nowhere else.
 */
static void teardown(const struct vmig_guest *g)
{
	char err[VMIG_GUEST_ERR_LEN];
	struct vmig_guest cur;

	if (vmig_guest_load(g->name, &cur, err) == 0 &&
	    cur.state == VMIG_GUEST_RUNNING && cur.pid == g->pid &&
	    cur.start_time == g->start_time) {
		guest_link_del(g->host_veth);
		guest_forget(g->name);
	}
}

int vmig_guest_run(struct vmig_guest *g, char *const argv[], char *err)
{
	static const int fwd[] = { SIGTERM, SIGINT, SIGHUP };
	struct vmig_guest cur;
	sigset_t set, old;
	int ret, st = 0, lock;
	bool moved;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaddset(&set, fwd[i]);
	/* blocked before the clone: no signal is lost between the two */
	sigprocmask(SIG_BLOCK, &set, &old);
	ret = start(g, argv, false, err);
	if (ret) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return ret;
	}
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		pid_t pid;

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(g->pid, sig);
			continue;
		}
		pid = waitpid(g->pid, &st, WNOHANG);
		if (pid == g->pid || (pid < 0 && errno == ECHILD))
			break;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);

	lock = guest_lock(err);
	/* checkpoint marks the record before CRIU kills the init */
	moved = vmig_guest_load(g->name, &cur, err) == 0 &&
		cur.state != VMIG_GUEST_RUNNING;
	if (!moved)
		teardown(g);
	guest_unlock(lock);
	if (moved)
		return VMIG_GUEST_CHECKPOINTED;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

static void wait_gone(const struct vmig_guest *g, unsigned int timeout_ms)
{
	struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };

	for (unsigned int t = 0; t < timeout_ms && vmig_guest_alive(g); t += 20)
		nanosleep(&ts, NULL);
}

int vmig_guest_stop(const char *name, unsigned int timeout_s, char *err)
{
	struct vmig_guest g;
	char addr[INET_ADDRSTRLEN + 3];
	int lock, ret;

	lock = guest_lock(err);
	if (lock < 0)
		return lock;
	ret = vmig_guest_load(name, &g, err);
	if (ret)
		goto out;
	switch (g.state) {
	case VMIG_GUEST_AWAY:
		inet_ntop(AF_INET, &g.addr, addr, INET_ADDRSTRLEN);
		strcat(addr, "/32");
		if (g.via.s_addr) {
			char lerr[VMIG_GUEST_ERR_LEN];

			guest_ip(lerr, "route", "del", addr, NULL);
		}
		break;
	case VMIG_GUEST_CHECKPOINTING:
		GUEST_SETERR(err, "guest '%s' is being checkpointed", name);
		ret = -EBUSY;
		goto out;
	case VMIG_GUEST_RUNNING:
		if (vmig_guest_alive(&g)) {
			kill(g.pid, SIGTERM);
			wait_gone(&g, timeout_s * 1000);
			if (vmig_guest_alive(&g)) {
				kill(g.pid, SIGKILL);
				wait_gone(&g, 5000);
			}
			if (vmig_guest_alive(&g)) {
				GUEST_SETERR(err, "guest '%s' (init pid %d) does not die",
					     name, (int)g.pid);
				ret = -EBUSY;
				goto out;
			}
		}
		guest_link_del(g.host_veth);
		unlink(g.log_path);
		break;
	}
	guest_forget(name);
out:
	guest_unlock(lock);
	return ret;
}

int vmig_guest_route(const char *name, const char *addr, const char *via,
		     char *err)
{
	struct vmig_guest g;
	struct in_addr via_addr;
	char dst[INET_ADDRSTRLEN + 3], lerr[VMIG_GUEST_ERR_LEN];
	int lock, ret;

	ret = vmig_guest_check_name(name, err);
	if (ret)
		return ret;
	if (!via || inet_pton(AF_INET, via, &via_addr) != 1) {
		GUEST_SETERR(err, "bad host address '%s': expected A.B.C.D",
			     via ? via : "");
		return -EINVAL;
	}
	lock = guest_lock(err);
	if (lock < 0)
		return lock;
	ret = vmig_guest_load(name, &g, lerr);
	if (!ret && g.state != VMIG_GUEST_AWAY && vmig_guest_alive(&g)) {
		GUEST_SETERR(err, "guest '%s' runs on this host: no route elsewhere",
			     name);
		ret = -EBUSY;
		goto out;
	}
	if (ret || addr) {
		ret = vmig_guest_init(&g, name, addr, err);
		if (ret)
			goto out;
	}
	guest_link_del(g.host_veth); /* a dead guest's leftover */
	inet_ntop(AF_INET, &g.addr, dst, INET_ADDRSTRLEN);
	strcat(dst, "/32");
	ret = guest_ip(err, "route", "replace", dst, "via", via, NULL);
	if (ret)
		goto out;
	g.state = VMIG_GUEST_AWAY;
	g.pid = 0;
	g.start_time = 0;
	g.via = via_addr;
	ret = guest_save(&g, err);
	if (ret)
		guest_ip(lerr, "route", "del", dst, NULL);
out:
	guest_unlock(lock);
	return ret;
}
