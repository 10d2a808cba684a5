// SPDX-License-Identifier: MIT
/* Logging to stderr (or a chosen fd) with a level filter; errno preserved. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum vmig_log_level log_level = VMIG_LOG_WARN;
static int log_fd = -1;
static char log_ident[32];

static const char *const level_names[] = {
	[VMIG_LOG_ERR] = "error",
	[VMIG_LOG_WARN] = "warn",
	[VMIG_LOG_INFO] = "info",
	[VMIG_LOG_DEBUG] = "debug",
};

void vmig_log_init(const char *ident)
{
	const char *env = getenv("VMIG_LOG_LEVEL");

	snprintf(log_ident, sizeof(log_ident), "%s", ident ? ident : "");
	if (!env || !*env)
		return;
	for (int l = VMIG_LOG_ERR; l <= VMIG_LOG_DEBUG; l++) {
		if (!strcasecmp(env, level_names[l]) ||
		    (env[0] == '0' + l && !env[1]))
			log_level = l;
	}
}

void vmig_log_set_level(enum vmig_log_level level)
{
	log_level = level;
}

enum vmig_log_level vmig_log_get_level(void)
{
	return log_level;
}

void vmig_log_set_fd(int fd)
{
	log_fd = fd;
}

void vmig_vlog(enum vmig_log_level level, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	char line[1024];
	struct timespec ts;
	int n, m;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "%s%s[%ld.%06ld] %s: ", log_ident,
		     *log_ident ? " " : "", (long)ts.tv_sec,
		     ts.tv_nsec / 1000, level_names[level]);
	errno = saved_errno; /* for %m */
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved_errno;
}

void vmig_log(enum vmig_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmig_vlog(level, fmt, ap);
	va_end(ap);
}
