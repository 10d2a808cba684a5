// SPDX-License-Identifier: MIT
/*
 * A stand-in for a shim and a tool, to test migrd on the testbed before
 * (and besides) the real shim:
 *
 *   migrd-probe shim GUEST [--addr A.B.C.D] [--conn LQPN:RQPN:A.B.C.D]...
 *                    [--log FILE] [--fail-suspend]
 *                                register with migrd as a shim of GUEST,
 *                                answer HELLO, STATE (with the given
 *                                connections: local GID ::ffff:--addr),
 *                                SUSPEND (DRAINED, or a drain timeout),
 *                                RESTORE/RECONNECT (its endpoints), the
 *                                rest (OK) until killed; logs requests to
 *                                FILE; writes probe-GUEST.pid
 *   migrd-probe forward [--host H | --gid GID] [--guest G] [--timeout MS]
 *                                FORWARD a STATE request, print the replies
 *
 * GID: a 16-byte GID as /sys/class/infiniband/DEV/ports/1/gids/N prints it.
 * Sockets in $VMIG_RUN_DIR (default /run/vmig). Exit 0 on OK, 1 on an
 * error reply, 2 on usage or I/O errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "sock.h"

static char run_dir[200] = "/run/vmig";

/* shim options: its connections, a log of what it was asked, failures */
#define MAX_CONNS 8
static struct {
	uint8_t laddr[4];
	int n;
	uint32_t lqpn[MAX_CONNS], rqpn[MAX_CONNS];
	uint8_t raddr[MAX_CONNS][4];
	const char *log;
	bool fail_suspend;
} opt = { .laddr = { 127, 0, 0, 1 } };

static Vmig__Endpoint ep_store[2 * MAX_CONNS];
static Vmig__Connection conn_store[MAX_CONNS], *conn_ptrs[MAX_CONNS];
static uint8_t gid_store[2 * MAX_CONNS][16];

static void make_ep(Vmig__Endpoint *e, uint8_t *gid, uint32_t qpn,
		    const uint8_t addr[4])
{
	vmig__endpoint__init(e);
	memset(gid, 0, 16);
	gid[10] = gid[11] = 0xff;
	memcpy(gid + 12, addr, 4);
	e->has_virt_qpn = e->has_phys_qpn = 1;
	e->virt_qpn = e->phys_qpn = qpn;
	e->has_virt_gid = e->has_phys_gid = 1;
	e->virt_gid.data = e->phys_gid.data = gid;
	e->virt_gid.len = e->phys_gid.len = 16;
}

static void build_conns(void)
{
	int i;

	for (i = 0; i < opt.n; i++) {
		vmig__connection__init(&conn_store[i]);
		make_ep(&ep_store[2 * i], gid_store[2 * i], opt.lqpn[i],
			opt.laddr);
		make_ep(&ep_store[2 * i + 1], gid_store[2 * i + 1],
			opt.rqpn[i], opt.raddr[i]);
		conn_store[i].local = &ep_store[2 * i];
		conn_store[i].remote = &ep_store[2 * i + 1];
		conn_ptrs[i] = &conn_store[i];
	}
}

static void log_request(const Vmig__CtlMsg *in)
{
	FILE *f;

	if (!opt.log)
		return;
	f = fopen(opt.log, "a");
	if (!f)
		return;
	fprintf(f, "%s", vmig_ctl_type_name(in->type));
	if (in->suspend)
		fprintf(f, " filter=%zu", in->suspend->filter ?
				in->suspend->filter->n_remote : 0);
	if (in->reconnect)
		fprintf(f, " reset=%d peers=%zu", in->reconnect->reset,
			in->reconnect->n_peers);
	fprintf(f, "\n");
	fclose(f);
}

static int hello(int fd, Vmig__Role role, const char *guest,
		 const char *ctl_path, Vmig__CtlMsg **reply)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT;
	Vmig__Hello h = VMIG__HELLO__INIT;

	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.hello = &h;
	h.has_version = h.has_role = h.has_pid = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.role = role;
	h.pid = (uint32_t)getpid();
	h.guest = (char *)guest;
	h.ctl_path = (char *)ctl_path;
	if (vmig_ctl_send_header(fd) || vmig_ctl_send(fd, &m) ||
	    vmig_ctl_recv_header(fd) || vmig_ctl_recv(fd, reply) != 1)
		return -EPROTO;
	return 0;
}

static int connect_migrd(void)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/migrd.sock", run_dir);
	fd = vmig_unix_connect(path);
	if (fd < 0)
		fprintf(stderr, "migrd-probe: %s: %s\n", path, strerror(-fd));
	return fd;
}

static void serve_one(int fd, const char *guest)
{
	Vmig__CtlMsg *in = NULL, out = VMIG__CTL_MSG__INIT;
	Vmig__Hello h = VMIG__HELLO__INIT;
	Vmig__State st = VMIG__STATE__INIT;
	Vmig__ReconnectInfo ri = VMIG__RECONNECT_INFO__INIT;
	Vmig__Error e = VMIG__ERROR__INIT;

	vmig_sock_set_timeout(fd, 10000);
	if (vmig_ctl_send_header(fd) || vmig_ctl_recv_header(fd))
		return;
	while (vmig_ctl_recv(fd, &in) == 1) {
		vmig__ctl_msg__init(&out);
		out.has_type = out.has_seq = 1;
		out.seq = in->seq;
		/* a stand-in: what it does not know it acknowledges */
		if (in->type == VMIG__CTL_TYPE__CTL_HELLO) {
			out.type = VMIG__CTL_TYPE__CTL_HELLO;
			out.hello = &h;
			h.has_version = h.has_role = h.has_pid = 1;
			h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
			h.role = VMIG__ROLE__ROLE_SHIM;
			h.pid = (uint32_t)getpid();
		} else if (in->type == VMIG__CTL_TYPE__CTL_SUSPEND &&
			   opt.fail_suspend) {
			out.type = VMIG__CTL_TYPE__CTL_ERROR;
			out.error = &e;
			e.has_class_ = 1;
			e.class_ = VMIG__ERR_CLASS__ERR_TIMEOUT;
			e.desc = "drain did not finish within the bound";
		} else if (in->type == VMIG__CTL_TYPE__CTL_SUSPEND) {
			out.type = VMIG__CTL_TYPE__CTL_DRAINED;
		} else if (in->type == VMIG__CTL_TYPE__CTL_STATE) {
			out.type = VMIG__CTL_TYPE__CTL_STATE;
			out.state = &st;
			st.has_pid = 1;
			st.pid = (uint32_t)getpid();
			st.guest = (char *)guest;
			st.phase = "running";
			st.n_conns = (size_t)opt.n;
			st.conns = conn_ptrs;
		} else if (in->type == VMIG__CTL_TYPE__CTL_RESTORE ||
			   in->type == VMIG__CTL_TYPE__CTL_RECONNECT) {
			/* its endpoints, as a restored or reset shim says */
			out.type = VMIG__CTL_TYPE__CTL_RECONNECT_INFO;
			out.reconnect_info = &ri;
			ri.n_conns = (size_t)opt.n;
			ri.conns = conn_ptrs;
		} else {
			out.type = VMIG__CTL_TYPE__CTL_OK;
		}
		log_request(in);
		printf("probe shim: %s\n", vmig_ctl_type_name(in->type));
		fflush(stdout);
		vmig_ctl_free(in);
		in = NULL;
		if (vmig_ctl_send(fd, &out))
			break;
	}
	vmig_ctl_free(in);
}

static int cmd_shim(const char *guest)
{
	char path[256];
	Vmig__CtlMsg *r = NULL;
	int lfd, mfd, fd;

	snprintf(path, sizeof(path), "%s/shim-%d.sock", run_dir, getpid());
	lfd = vmig_unix_listen(path, 0600);
	if (lfd < 0) {
		fprintf(stderr, "migrd-probe: %s: %s\n", path, strerror(-lfd));
		return 2;
	}
	mfd = connect_migrd();
	if (mfd < 0 || hello(mfd, VMIG__ROLE__ROLE_SHIM, guest, path, &r) ||
	    r->type != VMIG__CTL_TYPE__CTL_HELLO) {
		fprintf(stderr, "migrd-probe: registration failed\n");
		return 2;
	}
	/* for test backends that stop and restart this stand-in */
	snprintf(path, sizeof(path), "%s/probe-%s.pid", run_dir, guest);
	{
		FILE *f = fopen(path, "w");

		if (f) {
			fprintf(f, "%d\n", getpid());
			fclose(f);
		}
	}
	printf("probe shim: registered pid %d guest %s with migrd of %s\n",
	       getpid(), guest, r->hello && r->hello->host ? r->hello->host : "?");
	fflush(stdout);
	vmig_ctl_free(r);
	/* mfd stays open: the registration lives as long as it does */
	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		serve_one(fd, guest);
		close(fd);
	}
	return 0;
}

static int cmd_forward(int argc, char **argv)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, inner = VMIG__CTL_MSG__INIT;
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	Vmig__CtlMsg *r = NULL;
	uint8_t gid[16];
	size_t i;
	int fd, a;

	for (a = 0; a < argc; a++) {
		if (!strcmp(argv[a], "--host") && a + 1 < argc) {
			fw.dest_host = argv[++a];
		} else if (!strcmp(argv[a], "--gid") && a + 1 < argc) {
			if (inet_pton(AF_INET6, argv[++a], gid) != 1) {
				fprintf(stderr, "migrd-probe: bad GID %s\n",
					argv[a]);
				return 2;
			}
			fw.has_dest_gid = 1;
			fw.dest_gid.data = gid;
			fw.dest_gid.len = 16;
		} else if (!strcmp(argv[a], "--guest") && a + 1 < argc) {
			fw.dest_guest = argv[++a];
		} else if (!strcmp(argv[a], "--timeout") && a + 1 < argc) {
			fw.has_timeout_ms = 1;
			fw.timeout_ms = (uint32_t)atoi(argv[++a]);
		} else {
			fprintf(stderr, "migrd-probe: bad argument %s\n",
				argv[a]);
			return 2;
		}
	}
	fd = connect_migrd();
	if (fd < 0 || hello(fd, VMIG__ROLE__ROLE_TOOL, NULL, NULL, &r))
		return 2;
	vmig_ctl_free(r);
	r = NULL;
	m.has_type = m.has_seq = inner.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_FORWARD;
	m.seq = 1;
	inner.type = VMIG__CTL_TYPE__CTL_STATE;
	m.forward = &fw;
	fw.inner = &inner;
	if (vmig_ctl_send(fd, &m) || vmig_ctl_recv(fd, &r) != 1) {
		fprintf(stderr, "migrd-probe: no reply\n");
		return 2;
	}
	if (r->type == VMIG__CTL_TYPE__CTL_ERROR) {
		printf("ERROR %s: %s\n",
		       vmig_err_class_name(r->error ? r->error->class_ : 0),
		       r->error && r->error->desc ? r->error->desc : "");
		vmig_ctl_free(r);
		return 1;
	}
	printf("%s replies=%zu\n", vmig_ctl_type_name(r->type), r->n_replies);
	for (i = 0; i < r->n_replies; i++) {
		const Vmig__CtlMsg *s = r->replies[i];
		const Vmig__Hello *h = s->hello;

		printf("reply %s pid=%u guest=%s host=%s%s%s\n",
		       vmig_ctl_type_name(s->type), h ? h->pid : 0,
		       h && h->guest ? h->guest : "-",
		       h && h->host ? h->host : "-",
		       s->error && s->error->desc ? " error=" : "",
		       s->error && s->error->desc ? s->error->desc : "");
	}
	vmig_ctl_free(r);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *d = getenv("VMIG_RUN_DIR");

	signal(SIGPIPE, SIG_IGN);
	if (d && *d)
		snprintf(run_dir, sizeof(run_dir), "%s", d);
	if (argc >= 3 && !strcmp(argv[1], "shim")) {
		int a;

		for (a = 3; a < argc; a++) {
			unsigned int l, r, b[4];

			if (!strcmp(argv[a], "--addr") && a + 1 < argc &&
			    sscanf(argv[++a], "%u.%u.%u.%u", &b[0], &b[1],
				   &b[2], &b[3]) == 4) {
				for (l = 0; l < 4; l++)
					opt.laddr[l] = (uint8_t)b[l];
			} else if (!strcmp(argv[a], "--conn") && a + 1 < argc &&
				   opt.n < MAX_CONNS &&
				   sscanf(argv[++a], "%i:%i:%u.%u.%u.%u", (int *)&l,
					  (int *)&r, &b[0], &b[1], &b[2],
					  &b[3]) == 6) {
				opt.lqpn[opt.n] = l;
				opt.rqpn[opt.n] = r;
				for (l = 0; l < 4; l++)
					opt.raddr[opt.n][l] = (uint8_t)b[l];
				opt.n++;
			} else if (!strcmp(argv[a], "--log") && a + 1 < argc) {
				opt.log = argv[++a];
			} else if (!strcmp(argv[a], "--fail-suspend")) {
				opt.fail_suspend = true;
			} else {
				fprintf(stderr, "migrd-probe: bad argument %s\n",
					argv[a]);
				return 2;
			}
		}
		build_conns();
		return cmd_shim(argv[2]);
	}
	if (argc >= 2 && !strcmp(argv[1], "forward"))
		return cmd_forward(argc - 2, argv + 2);
	fprintf(stderr,
		"usage: migrd-probe shim GUEST\n"
		"       migrd-probe forward [--host H | --gid GID] [--guest G] [--timeout MS]\n");
	return 2;
}
