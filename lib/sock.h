/* SPDX-License-Identifier: MIT */
/* Socket helpers: unix and TCP, close-on-exec, negative errno on failure. */
#ifndef VMIG_SOCK_H
#define VMIG_SOCK_H

#include <stdint.h>

/* Creates the parent directory if needed, removes a stale socket file. */
int vmig_unix_listen(const char *path, int mode);
int vmig_unix_connect(const char *path);
/* host: numeric IPv4/IPv6 or a name; port 0 picks a free one (see
 * vmig_sock_port). */
int vmig_tcp_listen(const char *host, uint16_t port);
int vmig_tcp_connect(const char *host, uint16_t port, int timeout_ms);
int vmig_sock_port(int fd);
/* Applies SO_RCVTIMEO/SO_SNDTIMEO (0 = none). */
int vmig_sock_set_timeout(int fd, int timeout_ms);

#endif
