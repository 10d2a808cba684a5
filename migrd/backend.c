// SPDX-License-Identifier: MIT
/*
 * Backends: "none" (no guest can move; the API says so) and "exec", which
 * runs `backend_exec pre-dump|dump GUEST DIR [PARENT]`, `backend_exec
 * restore GUEST DIR`, `backend_exec prepare GUEST DIR` (detached, its
 * result ignored) and `backend_exec moved GUEST ADDR` with VMIG_RUN_DIR
 * and VMIG_HOST set. migrd/backend-criu.sh is the exec program for process
 * guests (vmig-guest, i.e. CRIU 3.17 through its swrk RPC).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: backend: "
#include "backend.h"
#include "clock.h"
#include "config.h"
#include "log.h"

static int no_op(const struct migrd_config *cfg, const char *guest,
		 const char *dir, char *err, size_t err_len)
{
	snprintf(err, err_len,
		 "backend '%s' cannot checkpoint or restore guests (set backend = exec in migrd's config)",
		 cfg->backend);
	return -EOPNOTSUPP;
}

static int no_dump(const struct migrd_config *cfg, const char *guest,
		   const char *dir, const char *parent, char *err,
		   size_t err_len)
{
	return no_op(cfg, guest, dir, err, err_len);
}

static int nothing_to_route(const struct migrd_config *cfg,
			    const char *guest, const char *addr, char *err,
			    size_t err_len)
{
	return 0;
}

static const struct migrd_backend_ops backend_none = {
	.name = "none",
	.pre_dump = no_dump,
	.dump = no_dump,
	.restore = no_op,
	.moved = nothing_to_route,
};

/* Runs the program with a bound; its last line of stderr is the error. */
static int run_exec(const struct migrd_config *cfg, const char *op,
		    const char *guest, const char *dir, const char *parent,
		    char *err, size_t err_len)
{
	uint64_t deadline = vmig_now_ms() + cfg->restore_timeout_ms;
	char out[4096];
	size_t used = 0;
	int p[2], status = 0, ret = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(p[0]);
		close(p[1]);
		return ret;
	}
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		dup2(p[1], STDOUT_FILENO);
		setenv("VMIG_RUN_DIR", cfg->run_dir, 1);
		setenv("VMIG_HOST", cfg->host, 1);
		signal(SIGPIPE, SIG_DFL);
		execl(cfg->backend_exec, cfg->backend_exec, op, guest, dir,
		      parent, (char *)NULL);
		fprintf(stderr, "cannot run %s: %m\n", cfg->backend_exec);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int64_t left = (int64_t)(deadline - vmig_now_ms());
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			ret = -ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (used == sizeof(out) - 1) {	/* keep the tail */
			memmove(out, out + 2048, used - 2048);
			used -= 2048;
		}
		n = read(p[0], out + used, sizeof(out) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += n;
	}
	close(p[0]);
	waitpid(pid, &status, 0);
	out[used] = '\0';
	while (used && out[used - 1] == '\n')
		out[--used] = '\0';
	if (used)
		pr_info("%s %s %s: %s", cfg->backend_exec, op, guest, out);
	if (ret == -ETIMEDOUT) {
		snprintf(err, err_len, "%s %s took longer than %u ms",
			 cfg->backend_exec, op, cfg->restore_timeout_ms);
		return ret;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		const char *last = strrchr(out, '\n');

		snprintf(err, err_len, "%s %s failed (%s %d)%s%s",
			 cfg->backend_exec, op,
			 WIFEXITED(status) ? "exit" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) :
					     WTERMSIG(status),
			 used ? ": " : "", last ? last + 1 : out);
		return -EIO;
	}
	return 0;
}

static int exec_pre_dump(const struct migrd_config *cfg, const char *guest,
			 const char *dir, const char *parent, char *err,
			 size_t err_len)
{
	return run_exec(cfg, "pre-dump", guest, dir, parent, err, err_len);
}

static int exec_dump(const struct migrd_config *cfg, const char *guest,
		     const char *dir, const char *parent, char *err,
		     size_t err_len)
{
	return run_exec(cfg, "dump", guest, dir, parent, err, err_len);
}

static int exec_restore(const struct migrd_config *cfg, const char *guest,
			const char *dir, char *err, size_t err_len)
{
	return run_exec(cfg, "restore", guest, dir, NULL, err, err_len);
}

/* Detached (a grandchild nobody waits for), output dropped. */
static void exec_prepare(const struct migrd_config *cfg, const char *guest,
			 const char *dir)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return;
	if (pid == 0) {
		int null;

		if (fork())
			_exit(0);
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		setenv("VMIG_RUN_DIR", cfg->run_dir, 1);
		setenv("VMIG_HOST", cfg->host, 1);
		signal(SIGPIPE, SIG_DFL);
		execl(cfg->backend_exec, cfg->backend_exec, "prepare", guest,
		      dir, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

static int exec_moved(const struct migrd_config *cfg, const char *guest,
		      const char *addr, char *err, size_t err_len)
{
	return run_exec(cfg, "moved", guest, addr, NULL, err, err_len);
}

static const struct migrd_backend_ops backend_exec = {
	.name = "exec",
	.pre_dump = exec_pre_dump,
	.dump = exec_dump,
	.restore = exec_restore,
	.prepare = exec_prepare,
	.moved = exec_moved,
};

const struct migrd_backend_ops *migrd_backend_get(const struct migrd_config *cfg)
{
	if (!strcmp(cfg->backend, "exec"))
		return &backend_exec;
	return &backend_none;
}
