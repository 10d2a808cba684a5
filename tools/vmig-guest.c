// SPDX-License-Identifier: MIT
/*
 * vmig-guest: process guests from the command line (lib/guest.h).
 *   vmig-guest start NAME [--addr A.B.C.D[/NN]] -- CMD ARGS...
 *   vmig-guest run NAME [--addr A.B.C.D[/NN]] -- CMD ARGS...
 *   vmig-guest list
 *   vmig-guest stop NAME [--timeout S]
 *   vmig-guest route NAME VIA [--addr A.B.C.D]
 *   vmig-guest pre-dump NAME DIR [--parent REL]
 *   vmig-guest checkpoint NAME DIR [--parent REL]
 *   vmig-guest restore NAME DIR
 * Exit codes: 0 done, 1 failed, 2 usage; run exits with the command's
 * status (128+N for signal N), or 0 when the guest was checkpointed away.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "vmig-guest: "
#include "guest.h"
#include "log.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: vmig-guest start NAME [--addr A.B.C.D[/NN]] -- CMD [ARGS...]\n"
		"       vmig-guest run NAME [--addr A.B.C.D[/NN]] -- CMD [ARGS...]\n"
		"       vmig-guest list\n"
		"       vmig-guest stop NAME [--timeout SECONDS]\n"
		"       vmig-guest route NAME VIA [--addr A.B.C.D]\n"
		"       vmig-guest pre-dump NAME DIR [--parent REL]\n"
		"       vmig-guest checkpoint NAME DIR [--parent REL]\n"
		"       vmig-guest restore NAME DIR\n"
		"Guests get an address derived from NAME in %s unless --addr\n"
		"is given; state lives in %s ($VMIG_RUN_DIR).\n",
		VMIG_GUEST_SUBNET, vmig_guest_dir());
	return 2;
}

static int fail(const char *what, const char *err)
{
	fprintf(stderr, "vmig-guest: %s: %s\n", what, err);
	return 1;
}

/* start: detached, prints the init's pid; run: waits, as vmig-run does */
static int cmd_start(int argc, char **argv, bool wait)
{
	char err[VMIG_GUEST_ERR_LEN];
	const char *addr = NULL;
	struct vmig_guest g;
	int i;

	if (argc < 2)
		return usage();
	for (i = 2; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--addr") && i + 1 < argc)
			addr = argv[++i];
		else
			return usage();
	}
	if (i + 1 >= argc)
		return usage();
	if (vmig_guest_init(&g, argv[1], addr, err))
		return fail("start", err);
	if (wait) {
		int ret = vmig_guest_run(&g, argv + i + 1, err);

		if (ret < 0)
			return fail("run", err);
		if (ret == VMIG_GUEST_CHECKPOINTED) {
			fprintf(stderr, "vmig-guest: guest '%s' was checkpointed and left this host\n",
				g.name);
			return 0;
		}
		return ret;
	}
	if (vmig_guest_start(&g, argv + i + 1, err))
		return fail("start", err);
	printf("%d\n", (int)g.pid);
	return 0;
}

static int print_one(const struct vmig_guest *g, void *arg)
{
	char addr[INET_ADDRSTRLEN], where[64];

	(void)arg;
	inet_ntop(AF_INET, &g->addr, addr, sizeof(addr));
	if (g->state == VMIG_GUEST_AWAY) {
		if (g->via.s_addr) {
			strcpy(where, "via ");
			inet_ntop(AF_INET, &g->via, where + 4, sizeof(where) - 4);
		} else {
			strcpy(where, "-");
		}
	} else {
		snprintf(where, sizeof(where), "%s", g->host_veth);
	}
	printf("%-12s %-13s %-7d %-18s %s\n", g->name,
	       g->state == VMIG_GUEST_RUNNING && !vmig_guest_alive(g) ?
		       "dead" : vmig_guest_state_name(g->state),
	       (int)g->pid, addr, where);
	return 0;
}

static int cmd_list(int argc)
{
	char err[VMIG_GUEST_ERR_LEN];

	if (argc != 1)
		return usage();
	printf("%-12s %-13s %-7s %-18s %s\n", "NAME", "STATE", "PID", "ADDRESS",
	       "VETH/VIA");
	if (vmig_guest_list(print_one, NULL, err))
		return fail("list", err);
	return 0;
}

static int cmd_stop(int argc, char **argv)
{
	char err[VMIG_GUEST_ERR_LEN], *end;
	unsigned long timeout = 10;

	if (argc == 4 && !strcmp(argv[2], "--timeout")) {
		errno = 0;
		timeout = strtoul(argv[3], &end, 10);
		if (!*argv[3] || *end || errno || timeout > 3600)
			return usage();
	} else if (argc != 2) {
		return usage();
	}
	if (vmig_guest_stop(argv[1], timeout, err))
		return fail("stop", err);
	return 0;
}

static int cmd_route(int argc, char **argv)
{
	char err[VMIG_GUEST_ERR_LEN];
	const char *addr = NULL;

	if (argc == 5 && !strcmp(argv[3], "--addr"))
		addr = argv[4];
	else if (argc != 3)
		return usage();
	if (vmig_guest_route(argv[1], addr, argv[2], err))
		return fail("route", err);
	return 0;
}

/* REL: the previous pre-dump's directory, relative to DIR ("../1") */
static int cmd_dump(int argc, char **argv, bool pre)
{
	char err[VMIG_GUEST_ERR_LEN];
	const char *parent = NULL;
	int ret;

	if (argc == 5 && !strcmp(argv[3], "--parent"))
		parent = argv[4];
	else if (argc != 3)
		return usage();
	if (pre)
		ret = vmig_guest_pre_dump(argv[1], argv[2], parent, err);
	else
		ret = vmig_guest_checkpoint(argv[1], argv[2], parent, err);
	if (ret)
		return fail(pre ? "pre-dump" : "checkpoint", err);
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	char err[VMIG_GUEST_ERR_LEN];
	struct vmig_guest g;

	if (argc != 3)
		return usage();
	if (vmig_guest_restore(argv[1], argv[2], &g, err))
		return fail("restore", err);
	printf("%d\n", (int)g.pid);
	return 0;
}

int main(int argc, char **argv)
{
	vmig_log_init("vmig-guest");
	if (argc < 2)
		return usage();
	/* subcommands see argv[0] = their own name */
	if (!strcmp(argv[1], "start"))
		return cmd_start(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "run"))
		return cmd_start(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc - 1);
	if (!strcmp(argv[1], "stop"))
		return cmd_stop(argc - 1, argv + 1);
	if (!strcmp(argv[1], "route"))
		return cmd_route(argc - 1, argv + 1);
	if (!strcmp(argv[1], "checkpoint"))
		return cmd_dump(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "pre-dump"))
		return cmd_dump(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage();
		return 0;
	}
	fprintf(stderr, "vmig-guest: unknown command '%s'\n", argv[1]);
	return usage();
}
