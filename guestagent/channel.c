// SPDX-License-Identifier: MIT
/* Choosing and serving the host channel; the unix socket kind. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_PREFIX "agent: channel: "
#include "agent.h"
#include "channel.h"
#include "log.h"
#include "session.h"
#include "sock.h"

/* A character device is a port (virtio-serial, a tty); a socket or a
 * path not there yet is ours to listen on. */
static int detect(const char *path, enum ga_chan_kind *kind)
{
	struct stat st;

	if (stat(path, &st)) {
		if (errno != ENOENT)
			return -errno;
		*kind = GA_CHAN_UNIX;
		return 0;
	}
	if (S_ISCHR(st.st_mode))
		*kind = GA_CHAN_SERIAL;
	else if (S_ISSOCK(st.st_mode))
		*kind = GA_CHAN_UNIX;
	else
		return -EINVAL;
	return 0;
}

int ga_channel_open(struct ga_channel *ch, const char *path,
		    enum ga_chan_kind kind)
{
	int ret;

	memset(ch, 0, sizeof(*ch));
	ch->lfd = ch->port = -1;
	ch->handoff[0] = ch->handoff[1] = ch->stop[0] = ch->stop[1] = -1;
	if (strlen(path) >= sizeof(ch->path))
		return -ENAMETOOLONG;
	snprintf(ch->path, sizeof(ch->path), "%s", path);
	if (kind == GA_CHAN_AUTO) {
		ret = detect(path, &kind);
		if (ret) {
			pr_err("%s: neither a character device nor a socket path%s%s",
			       path, ret == -EINVAL ? "" : ": ",
			       ret == -EINVAL ? "" : strerror(-ret));
			return ret;
		}
	}
	ch->kind = kind;
	if (kind == GA_CHAN_SERIAL)
		return ga_serial_open(ch);
	ch->lfd = vmig_unix_listen(path, 0600);
	if (ch->lfd < 0) {
		ret = ch->lfd;
		ch->lfd = -1;
		pr_err("cannot listen on %s: %s", path, strerror(-ret));
		return ret;
	}
	pr_info("host channel: unix socket %s", path);
	return 0;
}

int ga_channel_accept(struct ga_channel *ch)
{
	struct pollfd pfd = { .fd = ch->lfd, .events = POLLIN };
	int ret, fd;

	if (ch->kind == GA_CHAN_SERIAL)
		return ga_serial_accept(ch);
	for (;;) {
		ret = ga_wait(&pfd, 1, -1);
		if (ret < 0)
			return ret;
		if (!ret)
			continue;
		fd = accept4(ch->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
			return -errno;
	}
}

int ga_channel_extra_fd(const struct ga_channel *ch)
{
	return ch->kind == GA_CHAN_SERIAL ? -1 : ch->lfd;
}

void ga_channel_close(struct ga_channel *ch)
{
	if (ch->kind == GA_CHAN_SERIAL) {
		ga_serial_close(ch);
		return;
	}
	if (ch->lfd >= 0) {
		close(ch->lfd);
		unlink(ch->path);
		ch->lfd = -1;
	}
}
