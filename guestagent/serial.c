// SPDX-License-Identifier: MIT
/*
 * A character-device channel (virtio-serial port, tty). The port has no
 * connections, so the pump thread makes them: data arriving while idle
 * opens a session (a socket pair, one end handed to the main thread), the
 * host going away (EOF, EIO, HUP) closes it, and a session the agent ended
 * (garbage) is followed by discarding input until the line is quiet, so the
 * host's next stream header starts clean. Host absent: virtio-serial polls
 * HUP until the host side opens; the pump sleeps between looks, as the
 * QEMU guest agent does.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "agent: serial: "
#include "agent.h"
#include "channel.h"
#include "log.h"
#include "record.h"

#define QUIET_MS 200
#define ABSENT_SLEEP_MS 200

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static bool stopping(struct ga_channel *ch)
{
	struct pollfd p = { .fd = ch->stop[0], .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* Non-blocking port: a host that stops reading must not keep the pump
 * from seeing the stop request. */
static int port_write(struct ga_channel *ch, const char *buf, size_t len)
{
	struct pollfd p[2] = {
		{ .fd = ch->port, .events = POLLOUT },
		{ .fd = ch->stop[0], .events = POLLIN },
	};

	while (len) {
		ssize_t n = write(ch->port, buf, len);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(p, 2, 1000) > 0 && p[1].revents)
			return -ECANCELED;
	}
	return 0;
}

static void discard_until_quiet(struct ga_channel *ch)
{
	struct pollfd p = { .fd = ch->port, .events = POLLIN };
	char buf[4096];
	size_t n = 0;
	ssize_t r;

	while (!stopping(ch) && poll(&p, 1, QUIET_MS) > 0 &&
	       (p.revents & POLLIN)) {
		r = read(ch->port, buf, sizeof(buf));
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (n)
		pr_warn("dropped %zu bytes to resynchronize", n);
}

/* One session: copy both ways until either end is done. */
static void session(struct ga_channel *ch, int end)
{
	struct pollfd p[3] = {
		{ .fd = ch->port, .events = POLLIN },
		{ .fd = end, .events = POLLIN },
		{ .fd = ch->stop[0], .events = POLLIN },
	};
	char buf[65536];
	ssize_t n;

	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents)
			break;
		if (p[0].revents & POLLIN) {
			n = read(ch->port, buf, sizeof(buf));
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				pr_info("host closed the port");
				break;
			}
			if (n > 0 && vmig_write_full(end, buf, (size_t)n)) {
				discard_until_quiet(ch);
				break;
			}
		} else if (p[0].revents & (POLLHUP | POLLERR)) {
			pr_info("host closed the port");
			break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(end, buf, sizeof(buf));
			if (n <= 0) {
				/* the agent ended the session: start clean */
				discard_until_quiet(ch);
				break;
			}
			if (port_write(ch, buf, (size_t)n))
				break;
		}
	}
}

static void *pump_run(void *arg)
{
	struct ga_channel *ch = arg;
	struct pollfd p[2] = {
		{ .fd = ch->port, .events = POLLIN },
		{ .fd = ch->stop[0], .events = POLLIN },
	};
	int sv[2];

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("poll");
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN)) {
			sleep_ms(ABSENT_SLEEP_MS);	/* host not there */
			continue;
		}
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
			pr_perror("socketpair");
			sleep_ms(ABSENT_SLEEP_MS);
			continue;
		}
		if (write(ch->handoff[1], &sv[0], sizeof(sv[0])) !=
		    sizeof(sv[0])) {
			close(sv[0]);
			close(sv[1]);
			continue;
		}
		pr_debug("host session starts");
		session(ch, sv[1]);
		close(sv[1]);
	}
	return NULL;
}

int ga_serial_open(struct ga_channel *ch)
{
	struct termios tio;
	sigset_t all, old;
	int ret;

	ch->port = open(ch->path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (ch->port < 0) {
		ret = -errno;
		pr_perror("cannot open %s", ch->path);
		return ret;
	}
	/* a tty would echo and translate the binary stream */
	if (isatty(ch->port) && !tcgetattr(ch->port, &tio)) {
		cfmakeraw(&tio);
		if (tcsetattr(ch->port, TCSANOW, &tio))
			pr_perror("%s: raw mode", ch->path);
	}
	if (pipe2(ch->handoff, O_CLOEXEC) || pipe2(ch->stop, O_CLOEXEC))
		return -errno;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&ch->pump, NULL, pump_run, ch);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ret;
	ch->pumping = true;
	pr_info("host channel: character device %s", ch->path);
	return 0;
}

int ga_serial_accept(struct ga_channel *ch)
{
	struct pollfd p = { .fd = ch->handoff[0], .events = POLLIN };
	int fd, ret;

	for (;;) {
		ret = ga_wait(&p, 1, -1);
		if (ret < 0)
			return ret;
		if (!ret)
			continue;
		if (read(ch->handoff[0], &fd, sizeof(fd)) == sizeof(fd))
			return fd;
		if (errno != EINTR)
			return -EIO;
	}
}

void ga_serial_close(struct ga_channel *ch)
{
	int i, fd;

	if (ch->pumping) {
		if (write(ch->stop[1], "x", 1) != 1)
			pr_perror("cannot stop the pump");
		pthread_join(ch->pump, NULL);
		ch->pumping = false;
	}
	/* a session handed over but never taken */
	if (ch->handoff[0] >= 0) {
		fcntl(ch->handoff[0], F_SETFL, O_NONBLOCK);
		while (read(ch->handoff[0], &fd, sizeof(fd)) == sizeof(fd))
			close(fd);
	}
	for (i = 0; i < 2; i++) {
		if (ch->handoff[i] >= 0)
			close(ch->handoff[i]);
		if (ch->stop[i] >= 0)
			close(ch->stop[i]);
		ch->handoff[i] = ch->stop[i] = -1;
	}
	if (ch->port >= 0)
		close(ch->port);
	ch->port = -1;
}
