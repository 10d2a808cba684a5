// SPDX-License-Identifier: MIT
/*
 * tcpcount: a TCP counter service for the process-guest tests.
 *   tcpcount server PORT
 *	serves any number of connections; on each line "SEQ" it answers
 *	"SEQ COUNT PID": COUNT counts this connection's requests (state in the
 *	server's memory, so a checkpoint that loses it shows), PID is the
 *	server's pid as it sees it (in its own pid namespace).
 *   tcpcount client ADDR PORT [--count N] [--interval-ms MS]
 *		[--stop-file PATH] [--timeout S] [--progress-file PATH]
 *	one connection, one request every MS (default 100) until N replies
 *	(default 10) or until PATH exists; every reply must echo SEQ and have
 *	COUNT == SEQ. Prints "ok replies=N pid=P max-gap-ms=G" and exits 0,
 *	or says what went wrong and exits 1. --progress-file gets the number
 *	of replies so far, rewritten after each.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 64
#define LINE_MAX_LEN 128

struct conn {
	int fd;
	unsigned long count;
	char buf[LINE_MAX_LEN];
	size_t used;
};

static long parse_num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max) {
		fprintf(stderr, "tcpcount: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static int serve_line(struct conn *c, const char *line)
{
	char out[LINE_MAX_LEN];
	int n;

	c->count++;
	n = snprintf(out, sizeof(out), "%s %lu %d\n", line, c->count, (int)getpid());
	return send(c->fd, out, n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static int server(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct pollfd pfd[MAX_CONN + 1];
	struct conn conns[MAX_CONN];
	int ls, one = 1, n = 0;

	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 16)) {
		perror("tcpcount: listen");
		return 1;
	}
	printf("tcpcount: serving port %d as pid %d\n", port, (int)getpid());
	fflush(stdout);
	for (;;) {
		pfd[0].fd = ls;
		pfd[0].events = POLLIN;
		for (int i = 0; i < n; i++) {
			pfd[i + 1].fd = conns[i].fd;
			pfd[i + 1].events = POLLIN;
		}
		if (poll(pfd, n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("tcpcount: poll");
			return 1;
		}
		for (int i = n - 1; i >= 0; i--) {
			struct conn *c = &conns[i];
			ssize_t r;
			char *nl;

			if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = recv(c->fd, c->buf + c->used, sizeof(c->buf) - 1 - c->used, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r > 0) {
				c->used += r;
				c->buf[c->used] = '\0';
				while ((nl = strchr(c->buf, '\n'))) {
					*nl = '\0';
					if (serve_line(c, c->buf) < 0) {
						r = 0;
						break;
					}
					c->used -= nl + 1 - c->buf;
					memmove(c->buf, nl + 1, c->used + 1);
				}
				if (c->used == sizeof(c->buf) - 1)
					r = 0; /* a line too long: drop the peer */
			}
			if (r <= 0) {
				close(c->fd);
				conns[i] = conns[--n];
			}
		}
		if ((pfd[0].revents & POLLIN) && n < MAX_CONN) {
			int fd = accept(ls, NULL, NULL);

			if (fd >= 0) {
				conns[n].fd = fd;
				conns[n].count = 0;
				conns[n].used = 0;
				n++;
			}
		}
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads one line within timeout_ms; 0, or -1 with a message printed. */
static int read_line(int fd, char *line, size_t len, int timeout_ms)
{
	size_t used = 0;
	double end = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(end - now_ms());
		ssize_t r;

		if (left <= 0) {
			fprintf(stderr, "tcpcount: no reply within %d ms\n", timeout_ms);
			return -1;
		}
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return -1;
		if (!p.revents)
			continue;
		/* one byte at a time: a reply is short and must not be overread */
		r = recv(fd, line + used, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "tcpcount: connection %s\n",
				r == 0 ? "closed by the server" : strerror(errno));
			return -1;
		}
		if (line[used] == '\n') {
			line[used] = '\0';
			return 0;
		}
		if (++used == len - 1) {
			fprintf(stderr, "tcpcount: reply too long\n");
			return -1;
		}
	}
}

static int client(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *stop = NULL, *progress = NULL;
	long count = 10, interval = 100, timeout = 120, seq;
	double last, gap = 0;
	int fd, one = 1, pid = -1;

	if (argc < 4 || inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) {
		fprintf(stderr, "tcpcount: client needs ADDR PORT\n");
		return 2;
	}
	sa.sin_port = htons(parse_num(argv[3], 1, 65535));
	for (int i = 4; i < argc; i++) {
		if (i + 1 >= argc) {
			fprintf(stderr, "tcpcount: %s needs a value\n", argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--count"))
			count = parse_num(argv[++i], 1, 100000000);
		else if (!strcmp(argv[i], "--interval-ms"))
			interval = parse_num(argv[++i], 0, 60000);
		else if (!strcmp(argv[i], "--timeout"))
			timeout = parse_num(argv[++i], 1, 3600);
		else if (!strcmp(argv[i], "--stop-file"))
			stop = argv[++i];
		else if (!strcmp(argv[i], "--progress-file"))
			progress = argv[++i];
		else {
			fprintf(stderr, "tcpcount: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (stop)
		count = 100000000;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "tcpcount: connect to %s:%s: %s\n", argv[2], argv[3],
			strerror(errno));
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	last = now_ms();
	for (seq = 1; seq <= count; seq++) {
		char req[32], line[LINE_MAX_LEN];
		unsigned long rseq, rcount;
		int n, rpid;

		if (stop && access(stop, F_OK) == 0)
			break;
		n = snprintf(req, sizeof(req), "%ld\n", seq);
		if (send(fd, req, n, MSG_NOSIGNAL) != n) {
			fprintf(stderr, "tcpcount: send: %s\n", strerror(errno));
			return 1;
		}
		if (read_line(fd, line, sizeof(line), timeout * 1000))
			return 1;
		if (sscanf(line, "%lu %lu %d", &rseq, &rcount, &rpid) != 3 ||
		    rseq != (unsigned long)seq || rcount != (unsigned long)seq) {
			fprintf(stderr, "tcpcount: request %ld got '%s': expected "
				"'%ld %ld PID'\n", seq, line, seq, seq);
			return 1;
		}
		if (pid >= 0 && rpid != pid) {
			fprintf(stderr, "tcpcount: server pid changed %d -> %d\n", pid, rpid);
			return 1;
		}
		pid = rpid;
		if (now_ms() - last > gap)
			gap = now_ms() - last;
		last = now_ms();
		if (progress) {
			FILE *f = fopen(progress, "w");

			if (f) {
				fprintf(f, "%ld\n", seq);
				fclose(f);
			}
		}
		if (interval)
			usleep(interval * 1000);
		last += interval; /* the gap measures the server, not our sleep */
	}
	printf("ok replies=%ld pid=%d max-gap-ms=%.0f\n", seq - 1, pid, gap);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(parse_num(argv[2], 1, 65535));
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client(argc, argv);
	fprintf(stderr, "usage: tcpcount server PORT | client ADDR PORT [options]\n");
	return 2;
}
