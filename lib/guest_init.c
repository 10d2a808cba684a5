// SPDX-License-Identifier: MIT
/*
 * PID 1 of a process guest. It configures the guest's side of the network,
 * starts the command as PID 2 in its own process group, reaps every child,
 * forwards SIGTERM/SIGINT/SIGHUP/SIGUSR1/SIGUSR2 to the command's group and
 * exits with the command's status. It holds no fd but stdin (/dev/null)
 * and stdout/stderr (the guest's log), so CRIU has nothing odd to dump, and
 * it waits in sigwaitinfo(), which CRIU restores and restarts cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest_priv.h"

static const int fwd_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };

static void report(int fd, const char *what, const char *detail)
{
	dprintf(fd, "%s%s", what, detail);
}

/* Closes every fd from lowest on but keep (-1: none). */
static void close_from(int lowest, int keep)
{
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowest; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

/* stdin /dev/null, stdout and stderr to the log; 0 or -errno. */
static int redirect_stdio(const char *log)
{
	int in = open("/dev/null", O_RDONLY);
	int out = open(log, O_WRONLY | O_APPEND | O_CREAT, 0640);
	int ret = 0;

	if (in < 0 || out < 0)
		ret = -errno;
	else if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
		 dup2(out, STDERR_FILENO) < 0)
		ret = -errno;
	if (in > STDERR_FILENO)
		close(in);
	if (out > STDERR_FILENO)
		close(out);
	return ret;
}

static void noop(int sig)
{
	(void)sig;
}

void guest_init_main(const struct vmig_guest *g, char *const argv[],
		     int go_fd, int status_fd)
{
	char err[VMIG_GUEST_ERR_LEN], c;
	struct sigaction sa = { .sa_handler = noop };
	sigset_t set, old;
	int epipe[2], st;
	pid_t cmd, pid;
	ssize_t n;

	/* the parent gives the go once eth0 has arrived in our netns */
	do
		n = read(go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(1); /* the parent gave up: it cleans up */
	close(go_fd);
	prctl(PR_SET_NAME, "vmig-init", 0, 0, 0);
	if (setsid() < 0) {
		report(status_fd, "setsid in the guest: ", strerror(errno));
		_exit(1);
	}
	if (guest_inner_net_up(g, err)) {
		report(status_fd, "guest network: ", err);
		_exit(1);
	}

	/*
	 * Blocked signals are queued for a pidns init even from the parent
	 * namespace; the handler makes sure none is dropped as "ignored".
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(fwd_signals) / sizeof(fwd_signals[0]); i++) {
		sigaddset(&set, fwd_signals[i]);
		sigaction(fwd_signals[i], &sa, NULL);
	}
	sigprocmask(SIG_BLOCK, &set, &old);

	if (pipe2(epipe, O_CLOEXEC) < 0) {
		report(status_fd, "pipe in the guest: ", strerror(errno));
		_exit(1);
	}
	cmd = fork();
	if (cmd < 0) {
		report(status_fd, "fork in the guest: ", strerror(errno));
		_exit(1);
	}
	if (cmd == 0) {
		close(epipe[0]);
		setpgid(0, 0);
		sa.sa_handler = SIG_DFL;
		for (size_t i = 0; i < sizeof(fwd_signals) / sizeof(fwd_signals[0]); i++)
			sigaction(fwd_signals[i], &sa, NULL);
		/* a fresh mask: vmig_guest_run's caller blocks what it forwards */
		sigemptyset(&old);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (redirect_stdio(g->log_path) < 0) {
			dprintf(epipe[1], "cannot open the guest log %s: %s",
				g->log_path, strerror(errno));
			_exit(127);
		}
		/* what we inherited from outside could not move with the guest */
		close_from(STDERR_FILENO + 1, epipe[1]);
		execvp(argv[0], argv);
		dprintf(epipe[1], "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(epipe[1]);
	/* EOF without a word: the exec succeeded */
	do
		n = read(epipe[0], err, sizeof(err) - 1);
	while (n < 0 && errno == EINTR);
	close(epipe[0]);
	if (n > 0) {
		err[n] = '\0';
		report(status_fd, "", err);
		_exit(1);
	}
	/*
	 * CRIU's parasite in a pidns init mounts a proc of the guest's pidns
	 * in a directory it makes in the init's cwd: that must be writable,
	 * and exist on every host the guest goes to. The command keeps the
	 * cwd it was started in.
	 */
	if (chdir(vmig_guest_dir()) < 0) {
		report(status_fd, "chdir in the guest: ", strerror(errno));
		kill(cmd, SIGKILL);
		_exit(1);
	}
	if (write(status_fd, "OK", 2) != 2)
		_exit(1);

	/* From here on the guest runs alone: stdio to the log, nothing else. */
	if (redirect_stdio(g->log_path) < 0)
		_exit(1);
	close_from(STDERR_FILENO + 1, -1);

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);

		if (sig < 0)
			continue; /* EINTR, e.g. across a CRIU dump/restore */
		if (sig != SIGCHLD) {
			kill(-cmd, sig);
			continue;
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			if (pid != cmd)
				continue;
			if (WIFEXITED(st))
				_exit(WEXITSTATUS(st));
			_exit(128 + WTERMSIG(st));
		}
	}
}
