/* SPDX-License-Identifier: MIT */
/*
 * Logging: levels, a per-file prefix and errno kept across the call.
 * Define LOG_PREFIX ("shim: ", "migrd: ", ...) before including this file.
 * Data-path logging (pr_dp) compiles to nothing unless VMIG_DATA_PATH_DEBUG.
 */
#ifndef VMIG_LOG_H
#define VMIG_LOG_H

#include <stdarg.h>

enum vmig_log_level {
	VMIG_LOG_ERR = 1,
	VMIG_LOG_WARN = 2,
	VMIG_LOG_INFO = 3,
	VMIG_LOG_DEBUG = 4,
};

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

/* Level from VMIG_LOG_LEVEL (err, warn, info, debug or 1..4), default warn. */
void vmig_log_init(const char *ident);
void vmig_log_set_level(enum vmig_log_level level);
enum vmig_log_level vmig_log_get_level(void);
/* Send log lines to fd instead of stderr (-1 restores stderr). */
void vmig_log_set_fd(int fd);

void vmig_log(enum vmig_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vmig_vlog(enum vmig_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define pr_err(fmt, ...) vmig_log(VMIG_LOG_ERR, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...) vmig_log(VMIG_LOG_WARN, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) vmig_log(VMIG_LOG_INFO, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) vmig_log(VMIG_LOG_DEBUG, LOG_PREFIX fmt, ##__VA_ARGS__)
/* Appends ": strerror(errno)"; errno is unchanged afterwards. */
#define pr_perror(fmt, ...) \
	vmig_log(VMIG_LOG_ERR, LOG_PREFIX fmt ": %m", ##__VA_ARGS__)

#ifdef VMIG_DATA_PATH_DEBUG
#define pr_dp(fmt, ...) pr_debug(fmt, ##__VA_ARGS__)
#else
#define pr_dp(fmt, ...) do { } while (0)
#endif

#endif
