// SPDX-License-Identifier: MIT
/*
 * vmig-agent [--channel PATH | --unix PATH | --serial PATH]
 *            [--shim-socket PATH] [--run-dir DIR] [--guest NAME]
 *            [--timeout MS] [--verbose]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "agent: "
#include "agent.h"
#include "log.h"
#include "session.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: vmig-agent [--channel PATH | --unix PATH | --serial PATH]\n"
		"                  [--shim-socket PATH] [--run-dir DIR] [--guest NAME]\n"
		"                  [--timeout MS] [--verbose]\n"
		"  --channel PATH   towards the host: a character device (virtio-serial\n"
		"                   port) or a unix socket to listen on (default\n"
		"                   " GA_DEFAULT_CHANNEL ")\n"
		"  --unix, --serial the same, kind given\n"
		"  --shim-socket    where shims register (default RUN_DIR/migrd.sock,\n"
		"                   the path the verbs shim looks for)\n"
		"  --run-dir        default $VMIG_RUN_DIR or /run/vmig\n"
		"  --guest          this guest's name in replies (default: hostname)\n"
		"  --timeout        bound on one step of a fan-out (default %d ms)\n",
		GA_DEFAULT_TIMEOUT_MS);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "channel", required_argument, NULL, 'c' },
		{ "unix", required_argument, NULL, 'u' },
		{ "serial", required_argument, NULL, 's' },
		{ "shim-socket", required_argument, NULL, 'S' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "guest", required_argument, NULL, 'g' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ga_agent a;
	enum ga_chan_kind kind = GA_CHAN_AUTO;
	const char *channel = GA_DEFAULT_CHANNEL, *shim_sock = NULL;
	const char *run_dir = getenv("VMIG_RUN_DIR");
	char path[sizeof(a.reg.path)], *end;
	int c, fd, ret = 1;
	long v;

	vmig_log_init("vmig-agent");
	if (!run_dir || !*run_dir)
		run_dir = "/run/vmig";
	a.timeout_ms = GA_DEFAULT_TIMEOUT_MS;
	while ((c = getopt_long(argc, argv, "c:u:s:S:r:g:t:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'u':
		case 's':
			channel = optarg;
			kind = c == 'u' ? GA_CHAN_UNIX : c == 's' ? GA_CHAN_SERIAL :
								GA_CHAN_AUTO;
			break;
		case 'S':
			shim_sock = optarg;
			break;
		case 'r':
			run_dir = optarg;
			break;
		case 'g':
			if (!*optarg || strlen(optarg) >= sizeof(a.guest))
				usage();
			snprintf(a.guest, sizeof(a.guest), "%s", optarg);
			break;
		case 't':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > 86400000)
				usage();
			a.timeout_ms = (int)v;
			break;
		case 'v':
			if (vmig_log_get_level() < VMIG_LOG_INFO)
				vmig_log_set_level(VMIG_LOG_INFO);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (gethostname(a.host, sizeof(a.host)))
		snprintf(a.host, sizeof(a.host), "?");
	a.host[sizeof(a.host) - 1] = '\0';
	if (!a.guest[0])
		snprintf(a.guest, sizeof(a.guest), "%s", a.host);
	if (!shim_sock) {
		if (snprintf(path, sizeof(path), "%s/migrd.sock", run_dir) >=
		    (int)sizeof(path)) {
			pr_err("run dir too long: %s", run_dir);
			return 2;
		}
		shim_sock = path;
	}
	ga_signals_init();

	/* the channel first: a tty must be raw before the host writes */
	if (ga_channel_open(&a.chan, channel, kind))
		goto out;
	c = ga_registry_start(&a.reg, shim_sock, run_dir);
	if (c) {
		pr_err("cannot serve shims on %s: %s", shim_sock, strerror(-c));
		goto out;
	}
	pr_info("ready: guest %s, timeout %d ms", a.guest, a.timeout_ms);
	while (!ga_stop) {
		fd = ga_channel_accept(&a.chan);
		if (fd == -EINTR)
			break;
		if (fd < 0) {
			pr_err("host channel: %s", strerror(-fd));
			goto out;
		}
		ga_session_serve(&a, fd);
		close(fd);
	}
	pr_info("stopping");
	ret = 0;
out:
	ga_registry_stop(&a.reg);
	ga_channel_close(&a.chan);
	return ret;
}
