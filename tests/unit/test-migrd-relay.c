// SPDX-License-Identifier: MIT
/*
 * Two (and a wrong-key third) migrd on loopback: a fake shim registers with
 * migrd B, a tool asks migrd A to FORWARD a request to host B, and gets the
 * shim's reply back through the authenticated TCP hop. Also: unknown and
 * unreachable hosts, a wrong-key host, garbage on migrd.sock, unregistering
 * when the shim's connection closes. argv[1]: the migrd binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "sock.h"
#include "tap.h"

static char base[] = "/tmp/vmig-relay-XXXXXX";
static pid_t daemons[3];
static int ports[3];
static char shim_path[256];
static volatile int shim_requests;

static void write_file(const char *path, const char *text, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		perror(path);
	close(fd);
}

static int free_port(void)
{
	int fd = vmig_tcp_listen("127.0.0.1", 0), port = vmig_sock_port(fd);

	close(fd);
	return port;
}

static void wait_for(const char *path)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int i;

	for (i = 0; i < 250 && access(path, F_OK); i++)
		nanosleep(&ts, NULL);
}

/* host i: hA, hB share key "k", hC has another key. */
static pid_t start_migrd(const char *bin, int i)
{
	char dir[128], cfg[160], text[1024], sock[160];
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/h%c", base, 'A' + i);
	mkdir(dir, 0700);
	snprintf(cfg, sizeof(cfg), "%s/migrd.conf", dir);
	snprintf(text, sizeof(text),
		 "host = h%c\nlisten = 127.0.0.1\nport = %d\n"
		 "run_dir = %s/run\nkey_file = %s/%s\n"
		 "forward_timeout_ms = 1500\nconnect_timeout_ms = 1000\n"
		 "peer.hA = 127.0.0.1:%d\npeer.hB = 127.0.0.1:%d\n"
		 "peer.hC = 127.0.0.1:%d\npeer.hD = 127.0.0.1:1\n",
		 'A' + i, ports[i], dir, base, i == 2 ? "other.key" : "cluster.key",
		 ports[0], ports[1], ports[2]);
	write_file(cfg, text, 0600);
	pid = fork();
	if (pid == 0) {
		execl(bin, bin, "--config", cfg, "--foreground", NULL);
		_exit(127);
	}
	snprintf(sock, sizeof(sock), "%s/run/migrd.sock", dir);
	wait_for(sock);
	return pid;
}

static int ctl_connect(const char *path, Vmig__Role role, uint32_t pid,
		       const char *guest, const char *ctl_path,
		       Vmig__CtlMsg **reply)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT;
	Vmig__Hello h = VMIG__HELLO__INIT;
	int fd = vmig_unix_connect(path);

	if (fd < 0)
		return fd;
	vmig_sock_set_timeout(fd, 10000);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.hello = &h;
	h.has_version = h.has_role = h.has_pid = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.role = role;
	h.pid = pid;
	h.guest = (char *)guest;
	h.ctl_path = (char *)ctl_path;
	if (vmig_ctl_send_header(fd) || vmig_ctl_send(fd, &m) ||
	    vmig_ctl_recv_header(fd) || vmig_ctl_recv(fd, reply) != 1) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

/* The fake shim: answers HELLO, then STATE with its pid and guest. */
static void *shim_serve(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		Vmig__CtlMsg *in = NULL, out = VMIG__CTL_MSG__INIT;
		Vmig__Hello h = VMIG__HELLO__INIT;
		Vmig__State st = VMIG__STATE__INIT;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			return NULL;
		if (vmig_ctl_send_header(fd) || vmig_ctl_recv_header(fd) ||
		    vmig_ctl_recv(fd, &in) != 1)
			goto next;
		out.has_type = 1;
		out.type = VMIG__CTL_TYPE__CTL_HELLO;
		out.hello = &h;
		h.has_version = h.has_role = 1;
		h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
		h.role = VMIG__ROLE__ROLE_SHIM;
		vmig_ctl_free(in);
		in = NULL;
		if (vmig_ctl_send(fd, &out) || vmig_ctl_recv(fd, &in) != 1)
			goto next;
		shim_requests++;
		vmig__ctl_msg__init(&out);
		out.has_type = out.has_seq = 1;
		out.seq = in->seq;
		out.type = VMIG__CTL_TYPE__CTL_STATE;
		out.state = &st;
		st.has_pid = 1;
		st.pid = 4242;
		st.guest = "web1";
		st.phase = "running";
		vmig_ctl_send(fd, &out);
next:
		vmig_ctl_free(in);
		close(fd);
	}
}

static Vmig__CtlMsg *forward(int fd, const char *host, const char *guest,
			     uint32_t seq)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, inner = VMIG__CTL_MSG__INIT;
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	Vmig__CtlMsg *reply = NULL;

	m.has_type = m.has_seq = inner.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_FORWARD;
	m.seq = seq;
	inner.type = VMIG__CTL_TYPE__CTL_STATE;
	m.forward = &fw;
	fw.inner = &inner;
	fw.dest_host = (char *)host;
	fw.dest_guest = (char *)guest;
	if (vmig_ctl_send(fd, &m) || vmig_ctl_recv(fd, &reply) != 1)
		return NULL;
	return reply;
}

static Vmig__CtlMsg *forward_gid(int fd, const uint8_t gid[16])
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, inner = VMIG__CTL_MSG__INIT;
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	Vmig__CtlMsg *reply = NULL;

	m.has_type = inner.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_FORWARD;
	inner.type = VMIG__CTL_TYPE__CTL_STATE;
	m.forward = &fw;
	fw.inner = &inner;
	fw.has_dest_gid = 1;
	fw.dest_gid.len = 16;
	fw.dest_gid.data = (uint8_t *)gid;
	if (vmig_ctl_send(fd, &m) || vmig_ctl_recv(fd, &reply) != 1)
		return NULL;
	return reply;
}

static int err_class(const Vmig__CtlMsg *r)
{
	return r && r->type == VMIG__CTL_TYPE__CTL_ERROR && r->error ?
		       (int)r->error->class_ : -1;
}

int main(int argc, char **argv)
{
	char path[256], sockA[256], sockB[256];
	Vmig__CtlMsg *r = NULL;
	int tool, shim_reg, lfd, i;
	pthread_t th;
	uint8_t gid[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 };

	if (argc < 2) {
		printf("1..0 # SKIP no migrd binary given\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(base))
		return 1;
	snprintf(path, sizeof(path), "%s/cluster.key", base);
	write_file(path, "0123456789abcdef-cluster-key\n", 0600);
	snprintf(path, sizeof(path), "%s/other.key", base);
	write_file(path, "a-different-key-entirely-here\n", 0600);
	for (i = 0; i < 3; i++)
		ports[i] = free_port();
	for (i = 0; i < 3; i++)
		daemons[i] = start_migrd(argv[1], i);
	snprintf(sockA, sizeof(sockA), "%s/hA/run/migrd.sock", base);
	snprintf(sockB, sizeof(sockB), "%s/hB/run/migrd.sock", base);

	/* the fake shim on host B */
	snprintf(shim_path, sizeof(shim_path), "%s/hB/shim-fake.sock", base);
	lfd = vmig_unix_listen(shim_path, 0600);
	ok(lfd >= 0, "fake shim listens");
	pthread_create(&th, NULL, shim_serve, (void *)(intptr_t)lfd);
	shim_reg = ctl_connect(sockB, VMIG__ROLE__ROLE_SHIM, 4242, "web1",
			       shim_path, &r);
	ok(shim_reg >= 0 && r && r->type == VMIG__CTL_TYPE__CTL_HELLO,
	   "shim registers with migrd B");
	ok(r && r->hello && r->hello->host && !strcmp(r->hello->host, "hB"),
	   "migrd B says its host name");
	vmig_ctl_free(r);

	tool = ctl_connect(sockA, VMIG__ROLE__ROLE_TOOL, 1, NULL, NULL, &r);
	ok(tool >= 0 && r && r->type == VMIG__CTL_TYPE__CTL_HELLO,
	   "tool says hello to migrd A");
	vmig_ctl_free(r);

	r = forward(tool, "hB", NULL, 7);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_OK, "forward to hB: OK");
	is_int(r ? r->seq : 0, 7, "reply carries the request's seq");
	is_int(r ? r->n_replies : 0, 1, "one shim reply");
	if (r && r->n_replies == 1) {
		Vmig__CtlMsg *s = r->replies[0];

		ok(s->type == VMIG__CTL_TYPE__CTL_STATE && s->state &&
		   s->state->pid == 4242, "the shim's STATE came back");
		ok(s->hello && s->hello->pid == 4242 && s->hello->host &&
		   !strcmp(s->hello->host, "hB") && s->hello->guest &&
		   !strcmp(s->hello->guest, "web1"),
		   "tagged with pid, guest, host");
	}
	vmig_ctl_free(r);

	r = forward(tool, "hB", "db9", 8);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_NOT_FOUND,
	       "unknown guest on hB: ERR_NOT_FOUND");
	vmig_ctl_free(r);

	r = forward(tool, "nosuchhost", NULL, 9);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_NOT_FOUND,
	       "unknown host: ERR_NOT_FOUND");
	if (r && r->error)
		printf("# %s\n", r->error->desc);
	vmig_ctl_free(r);

	r = forward(tool, "hD", NULL, 10);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_UNREACHABLE,
	       "host without migrd: ERR_UNREACHABLE");
	if (r && r->error)
		printf("# %s\n", r->error->desc);
	vmig_ctl_free(r);

	r = forward(tool, "hC", NULL, 11);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_AUTH,
	       "host with another key: ERR_AUTH");
	if (r && r->error)
		printf("# %s\n", r->error->desc);
	vmig_ctl_free(r);

	/* ::ffff:127.0.0.1 is hA's own address: delivered on hA, no shims */
	r = forward_gid(tool, gid);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_OK && r->n_replies == 0,
	   "forward by GID to this host: OK, no shims here");
	vmig_ctl_free(r);

	/* a shim on A sending to B: the shim's own request is delivered */
	r = forward(tool, "hB", NULL, 12);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_OK && r->n_replies == 1,
	   "migrd A still serves after the refusals");
	vmig_ctl_free(r);

	/* garbage on migrd.sock: refused, daemon keeps going */
	{
		int g = vmig_unix_connect(sockA);

		ok(g >= 0 && write(g, "GET / HTTP/1.0\r\n\r\n", 18) == 18,
		   "garbage sent");
		close(g);
	}
	r = forward(tool, "hB", NULL, 13);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_OK, "still serving after garbage");
	vmig_ctl_free(r);

	/* unregister: close the shim's connection; forward finds nobody */
	close(shim_reg);
	usleep(200 * 1000);
	r = forward(tool, "hB", "web1", 14);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_NOT_FOUND,
	       "closed registration: the guest is gone from hB");
	vmig_ctl_free(r);

	close(tool);
	for (i = 0; i < 3; i++) {
		int st = 0;

		kill(daemons[i], SIGTERM);
		waitpid(daemons[i], &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "migrd h%c exits cleanly on SIGTERM", 'A' + i);
	}
	(void)shim_requests;
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
		if (system(cmd))
			printf("# cleanup failed\n");
	}
	return tap_done();
}
