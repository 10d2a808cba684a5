// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: "
#include "log.h"
#include "msg.h"
#include "shim_sockets.h"
#include "sock.h"

typedef int (*sock_fn)(const char *path, int fd, int err);

/* Calls fn for every shim-GUEST-<digits>.sock with a connect attempt's
 * result (fd >= 0, or err). */
static int each_socket(const struct migrd_config *cfg, const char *guest,
		       sock_fn fn)
{
	char prefix[96], path[PATH_MAX];
	size_t pl;
	struct dirent *e;
	DIR *dir = opendir(cfg->run_dir);
	int n = 0;

	if (!dir)
		return -errno;
	pl = (size_t)snprintf(prefix, sizeof(prefix), "shim-%s-", guest);
	while ((e = readdir(dir))) {
		const char *p = e->d_name + pl;
		int fd;

		if (strncmp(e->d_name, prefix, pl) || strlen(p) <= 5 ||
		    strspn(p, "0123456789") != strlen(p) - 5 ||
		    strcmp(p + strlen(p) - 5, ".sock"))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", cfg->run_dir,
			     e->d_name) >= (int)sizeof(path))
			continue;
		fd = vmig_unix_connect(path);
		n += fn(path, fd, fd < 0 ? -fd : 0);
		if (fd >= 0)
			close(fd);
	}
	closedir(dir);
	return n;
}

static int unlink_if_dead(const char *path, int fd, int err)
{
	if (fd >= 0 || err != ECONNREFUSED)
		return 0;
	pr_info("stale shim socket %s removed", path);
	return !unlink(path);
}

int migrd_shim_sockets_unlink_stale(const struct migrd_config *cfg,
				    const char *guest)
{
	return each_socket(cfg, guest, unlink_if_dead);
}

static int say_hello(const char *path, int fd, int err)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, *reply = NULL;
	Vmig__Hello h = VMIG__HELLO__INIT;
	int ok;

	(void)err;
	if (fd < 0)
		return 0;
	vmig_sock_set_timeout(fd, 3000);
	h.has_version = h.has_role = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.role = VMIG__ROLE__ROLE_MIGRD;
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.hello = &h;
	ok = !vmig_ctl_send_header(fd) && !vmig_ctl_recv_header(fd) &&
	     !vmig_ctl_send(fd, &m) && vmig_ctl_recv(fd, &reply) == 1 &&
	     reply->has_type && reply->type == VMIG__CTL_TYPE__CTL_HELLO;
	vmig_ctl_free(reply);
	if (!ok)
		pr_warn("%s: no HELLO back", path);
	return ok;
}

int migrd_shim_sockets_poke(const struct migrd_config *cfg, const char *guest)
{
	return each_socket(cfg, guest, say_hello);
}
