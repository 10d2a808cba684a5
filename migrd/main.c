// SPDX-License-Identifier: MIT
/*
 * migrd, the host daemon: `migrd --config FILE [--host NAME] [--foreground]`.
 * Listens on $run_dir/migrd.sock (shims, tools), $run_dir/migrd-api.sock
 * (JSON API) and TCP (other hosts' migrd); logs to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: "
#include "api_http.h"
#include "api_server.h"
#include "ctl_server.h"
#include "log.h"
#include "migrate.h"
#include "migrd.h"
#include "sock.h"

static struct migrd *the_daemon;

static void on_signal(int sig)
{
	if (the_daemon)
		the_daemon->stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: migrd --config FILE [--host NAME] [--foreground] [--verbose]\n"
		"  --config FILE   key = value configuration (see migrd(8))\n"
		"  --host NAME     this host's name, overriding the file's 'host'\n"
		"  --foreground    stay in the foreground (systemd, tests)\n"
		"  --verbose       log at info level (VMIG_LOG_LEVEL also works)\n");
}

/* Forks; the parent exits once the child reports its sockets ready, so
 * that `migrd --config F && vmigrate list` works. */
static int daemonize(int *ready_fd)
{
	int p[2], null;
	char c;
	pid_t pid;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		_exit(read(p[0], &c, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	*ready_fd = p[1];
	return 0;
}

static int open_listeners(struct migrd *d, int fds[4])
{
	int ret;

	if (mkdir(d->cfg.run_dir, 0755) < 0 && errno != EEXIST) {
		pr_perror("cannot create %s", d->cfg.run_dir);
		return -errno;
	}
	/* config.c keeps run_dir short enough; checked anyway */
	if (snprintf(d->ctl_path, sizeof(d->ctl_path), "%s/migrd.sock",
		     d->cfg.run_dir) >= (int)sizeof(d->ctl_path) ||
	    snprintf(d->api_path, sizeof(d->api_path), "%s/migrd-api.sock",
		     d->cfg.run_dir) >= (int)sizeof(d->api_path)) {
		pr_err("run_dir %s is too long for a socket path",
		       d->cfg.run_dir);
		return -ENAMETOOLONG;
	}
	fds[0] = vmig_unix_listen(d->ctl_path, 0600);
	if (fds[0] < 0) {
		pr_err("cannot listen on %s: %s", d->ctl_path,
		       strerror(-fds[0]));
		return fds[0];
	}
	fds[1] = vmig_unix_listen(d->api_path, 0600);
	if (fds[1] < 0) {
		pr_err("cannot listen on %s: %s", d->api_path,
		       strerror(-fds[1]));
		return fds[1];
	}
	fds[2] = vmig_tcp_listen(d->cfg.listen, d->cfg.port);
	if (fds[2] < 0) {
		ret = fds[2];
		pr_err("cannot listen on %s:%u: %s", d->cfg.listen,
		       d->cfg.port, strerror(-ret));
		return ret;
	}
	if (d->cfg.http_addr[0]) {
		fds[3] = vmig_tcp_listen(d->cfg.http_addr, d->cfg.http_port);
		if (fds[3] < 0) {
			pr_err("cannot listen on %s:%u (http): %s",
			       d->cfg.http_addr, d->cfg.http_port,
			       strerror(-fds[3]));
			return fds[3];
		}
	}
	pr_info("host %s: %s, %s, tcp %s:%u", d->cfg.host, d->ctl_path,
		d->api_path, d->cfg.listen, d->cfg.port);
	return 0;
}

static void serve(struct migrd *d, int fds[4])
{
	struct pollfd pfd[4];
	int i, fd;

	for (i = 0; i < 4; i++) {
		pfd[i].fd = fds[i];	/* -1 (no HTTP) is ignored by poll */
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	while (!d->stop) {
		if (poll(pfd, 4, 500) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("poll");
			break;
		}
		for (i = 0; i < 4; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno != EINTR && errno != EAGAIN &&
				    errno != ECONNABORTED)
					pr_perror("accept");
				continue;
			}
			if (i == 1)
				migrd_api_serve(d->api, fd);
			else if (i == 3)
				migrd_http_serve(d, fd);
			else
				migrd_ctl_serve(d, fd, i == 2);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct migrd d;
	const char *config = NULL, *host = NULL;
	int fds[4] = { -1, -1, -1, -1 }, ready = -1, opt, ret = 1, i;
	bool foreground = false;
	char err[512];
	struct sigaction sa = { .sa_handler = on_signal };

	vmig_log_init("migrd");
	while ((opt = getopt_long(argc, argv, "c:H:fvh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'v':
			if (vmig_log_get_level() < VMIG_LOG_INFO)
				vmig_log_set_level(VMIG_LOG_INFO);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config || optind != argc) {
		usage(stderr);
		return 2;
	}
	migrd_config_init(&d.cfg);
	if (migrd_config_load(&d.cfg, config, err, sizeof(err))) {
		fprintf(stderr, "migrd: %s\n", err);
		return 2;
	}
	if (host) {
		if (!migrd_name_valid(host)) {
			fprintf(stderr, "migrd: bad --host name '%s'\n", host);
			return 2;
		}
		snprintf(d.cfg.host, sizeof(d.cfg.host), "%s", host);
	}
	if (migrd_config_check(&d.cfg, err, sizeof(err)) ||
	    migrd_key_load(d.cfg.key_file, &d.key_buf, &d.key.len, err,
			   sizeof(err))) {
		fprintf(stderr, "migrd: %s\n", err);
		return 2;
	}
	d.key.key = d.key_buf;
	if (!d.cfg.image_dir[0])
		snprintf(d.cfg.image_dir, sizeof(d.cfg.image_dir), "%.*s/images",
			 (int)sizeof(d.cfg.image_dir) - 8, d.cfg.run_dir);

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	the_daemon = &d;
	migrd_registry_init(&d.reg);
	migrd_pool_init(&d.peers);
	d.migs = migrd_mig_table_create(&d);
	d.api = migrd_api_create(&d);
	if (!d.migs || !d.api) {
		pr_err("out of memory");
		goto out;
	}
	if (!foreground && daemonize(&ready)) {
		pr_perror("cannot daemonize");
		goto out;
	}
	if (open_listeners(&d, fds))
		goto out;
	if (ready >= 0) {
		if (write(ready, "r", 1) < 0)
			pr_perror("readiness pipe");
		close(ready);
		ready = -1;
	}
	serve(&d, fds);
	pr_info("stopping");
	ret = 0;
out:
	for (i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (fds[0] >= 0)
		unlink(d.ctl_path);
	if (fds[1] >= 0)
		unlink(d.api_path);
	/* connection threads may still run: the process exits under them,
	 * so the shared state is left to the exit */
	if (d.key_buf)
		explicit_bzero(d.key_buf, d.key.len);
	return ret;
}
