/* SPDX-License-Identifier: MIT */
/*
 * migrd's control channel: migrd.sock for shims and tools on this host,
 * the TCP port for other hosts' migrd. One thread per connection; a shim's
 * registration lasts as long as its connection.
 */
#ifndef MIGRD_CTL_SERVER_H
#define MIGRD_CTL_SERVER_H

#include <stdbool.h>

#include "migrd.h"

/* Takes fd; serves it on a detached thread. Returns 0 or -errno (fd is
 * closed then). */
int migrd_ctl_serve(struct migrd *d, int fd, bool tcp);

#endif
