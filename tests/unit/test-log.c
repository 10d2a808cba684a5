// SPDX-License-Identifier: MIT
/* Logging: level filter, prefix, errno kept across the call. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_PREFIX "unit: "
#include "log.h"
#include "tap.h"

static int pipefd[2];

static const char *drain(void)
{
	static char buf[4096];
	ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

int main(void)
{
	const char *out;

	if (pipe(pipefd))
		abort();
	vmig_log_set_fd(pipefd[1]);
	setenv("VMIG_LOG_LEVEL", "info", 1);
	vmig_log_init("t");
	is_int(vmig_log_get_level(), VMIG_LOG_INFO, "level from environment");

	errno = ENOENT;
	pr_perror("open %s", "x");
	ok(errno == ENOENT, "errno preserved");
	out = drain();
	ok(strstr(out, "error: unit: open x: No such file or directory") != NULL,
	   "perror line: %s", out);
	ok(!strncmp(out, "t [", 3), "ident first");

	pr_info("info %d", 1);
	out = drain();
	ok(strstr(out, "info: unit: info 1\n") != NULL, "info shown");

	pr_debug("hidden");
	pr_warn("shown");
	out = drain();
	ok(!strstr(out, "hidden") && strstr(out, "shown"),
	   "debug filtered at info level");
	return tap_done();
}
