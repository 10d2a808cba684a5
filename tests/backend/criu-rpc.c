// SPDX-License-Identifier: MIT
/*
 * criu-rpc: drives lib/criu_swrk from the command line, so the testbed can
 * exercise the CRIU backend's transport against the real criu:
 *   criu-rpc version
 *   criu-rpc pre-dump PID DIR [PARENT]
 *   criu-rpc dump PID DIR [PARENT]
 *   criu-rpc restore DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "criu_swrk.h"
#include "log.h"

static int usage(void)
{
	fprintf(stderr, "usage: criu-rpc version | pre-dump PID DIR [PARENT] |"
			" dump PID DIR [PARENT] | restore DIR\n");
	return 2;
}

static int parse_pid(const char *s, pid_t *pid)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v <= 0 || v > 4194304)
		return -1;
	*pid = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct vmig_criu_opts o = {
		.log_file = "criu.log",
		.log_level = 4,
		.shell_job = 1,
		.timeout_s = 60,
	};
	char err[VMIG_CRIU_ERR_LEN] = "";
	int ret, major, minor;
	pid_t pid;

	vmig_log_init("criu-rpc");
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "version") && argc == 2) {
		ret = vmig_criu_version(NULL, &major, &minor, err);
		if (!ret)
			printf("criu %d.%d\n", major, minor);
	} else if ((!strcmp(argv[1], "dump") || !strcmp(argv[1], "pre-dump")) &&
		   (argc == 4 || argc == 5)) {
		if (parse_pid(argv[2], &o.pid))
			return usage();
		o.images_dir = argv[3];
		o.parent_img = argc == 5 ? argv[4] : NULL;
		o.track_mem = 1;
		if (argv[1][0] == 'p')
			ret = vmig_criu_pre_dump(&o, err);
		else
			ret = vmig_criu_dump(&o, err);
		if (!ret)
			printf("%s of %d done\n", argv[1], o.pid);
	} else if (!strcmp(argv[1], "restore") && argc == 3) {
		o.images_dir = argv[2];
		ret = vmig_criu_restore(&o, &pid, err);
		if (!ret)
			printf("restored pid %d\n", pid);
	} else {
		return usage();
	}
	if (ret) {
		fprintf(stderr, "criu-rpc: %s\n", err);
		return 1;
	}
	return 0;
}
