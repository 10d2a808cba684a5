// SPDX-License-Identifier: MIT
/* Channels to shims (direct or through migrd) and the cycle orchestration. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "vmig-ctl: "
#include "ctl_client.h"
#include "log.h"
#include "sock.h"

const char *vctl_run_dir(void)
{
	const char *d = getenv("VMIG_RUN_DIR");

	return d && *d ? d : "/run/vmig";
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void vctl_gid_str(const ProtobufCBinaryData *g, char *buf, size_t len)
{
	if (!g || g->len != 16 || !inet_ntop(AF_INET6, g->data, buf,
					     (socklen_t)len))
		snprintf(buf, len, "-");
}

static int hello(int fd)
{
	Vmig__CtlMsg m, *r = NULL;
	Vmig__Hello h;
	int ret;

	vmig__ctl_msg__init(&m);
	vmig__hello__init(&h);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	h.has_version = h.has_role = h.has_pid = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.role = VMIG__ROLE__ROLE_TOOL;
	h.pid = (uint32_t)getpid();
	m.hello = &h;
	ret = vmig_ctl_send_header(fd);
	if (!ret)
		ret = vmig_ctl_recv_header(fd);
	if (!ret)
		ret = vmig_ctl_send(fd, &m);
	if (!ret) {
		ret = vmig_ctl_recv(fd, &r);
		ret = ret == 1 ? 0 : ret == 0 ? -ECONNRESET : ret;
	}
	if (!ret && (!r->has_type || r->type == VMIG__CTL_TYPE__CTL_ERROR))
		ret = -EPROTO;
	vmig_ctl_free(r);
	return ret;
}

/* /proc/pid/FILE into buf (NUL-terminated); length or -errno. */
static ssize_t read_proc(uint32_t pid, const char *file, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/%s", pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

/*
 * The control socket of the shim in process pid (as this host sees it):
 * shim-PID.sock, or for a guest's process shim-GUEST-NSPID.sock, with the
 * pid the process has in its own PID namespace (several guests share them).
 */
int vctl_shim_path(uint32_t pid, char *path, size_t len)
{
	char env[16384], st[4096], guest[128] = "";
	const char *p;
	unsigned int nspid = pid;
	ssize_t n;

	snprintf(path, len, "%s/shim-%u.sock", vctl_run_dir(), pid);
	if (!access(path, F_OK))
		return 0;
	n = read_proc(pid, "environ", env, sizeof(env));
	for (p = env; n > 0 && p < env + n; p += strlen(p) + 1)
		if (!strncmp(p, "VMIG_GUEST=", 11)) {
			snprintf(guest, sizeof(guest), "%s", p + 11);
			break;
		}
	if (!*guest)
		return -ENOENT;
	if (read_proc(pid, "status", st, sizeof(st)) > 0 &&
	    (p = strstr(st, "\nNSpid:"))) {
		const char *end = strchr(p + 1, '\n');

		/* the last field is the innermost namespace's pid */
		for (p += 7; p && (!end || p < end); p = strchr(p + 1, '\t'))
			sscanf(p, "%u", &nspid);
	}
	if (snprintf(path, len, "%s/shim-%s-%u.sock", vctl_run_dir(), guest,
		     nspid) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int vctl_open_shim(struct vctl_chan *c, uint32_t pid)
{
	char path[300];
	int ret;

	memset(c, 0, sizeof(*c));
	c->pid = pid;
	snprintf(c->name, sizeof(c->name), "pid %u", pid);
	ret = vctl_shim_path(pid, path, sizeof(path));
	if (ret)
		return ret;
	c->fd = vmig_unix_connect(path);
	if (c->fd < 0)
		return c->fd;
	vmig_sock_set_timeout(c->fd, 120000);
	ret = hello(c->fd);
	if (ret) {
		close(c->fd);
		c->fd = -1;
	}
	return ret;
}

int vctl_open_forward(struct vctl_chan *c, const uint8_t gid[16],
		      uint32_t pid)
{
	char path[300], g[64];
	ProtobufCBinaryData b = { 16, (uint8_t *)gid };
	int ret;

	memset(c, 0, sizeof(*c));
	c->forward = true;
	c->pid = pid;
	memcpy(c->gid, gid, 16);
	vctl_gid_str(&b, g, sizeof(g));
	snprintf(c->name, sizeof(c->name), "pid %u@%s", pid, g);
	snprintf(path, sizeof(path), "%s/migrd.sock", vctl_run_dir());
	c->fd = vmig_unix_connect(path);
	if (c->fd < 0)
		return c->fd;
	vmig_sock_set_timeout(c->fd, 120000);
	ret = hello(c->fd);
	if (ret) {
		close(c->fd);
		c->fd = -1;
	}
	return ret;
}

void vctl_close(struct vctl_chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static Vmig__CtlMsg *msg_dup(const Vmig__CtlMsg *m)
{
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(len ? len : 1);
	Vmig__CtlMsg *d;

	if (!buf)
		return NULL;
	protobuf_c_message_pack(&m->base, buf);
	d = vmig__ctl_msg__unpack(NULL, len, buf);
	free(buf);
	return d;
}

static Vmig__Connection *msg_dup_conn(const Vmig__Connection *m)
{
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(len ? len : 1);
	Vmig__Connection *d;

	if (!buf)
		return NULL;
	protobuf_c_message_pack(&m->base, buf);
	d = vmig__connection__unpack(NULL, len, buf);
	free(buf);
	return d;
}

int vctl_call(struct vctl_chan *c, Vmig__CtlMsg *req, Vmig__CtlMsg **reply)
{
	Vmig__CtlMsg outer, *r = NULL;
	Vmig__Forward fw;
	int ret;

	req->has_seq = 1;
	req->seq = ++c->seq;
	if (!c->forward) {
		ret = vmig_ctl_send(c->fd, req);
		if (!ret)
			ret = vmig_ctl_recv(c->fd, reply);
		return ret == 1 ? 0 : ret == 0 ? -ECONNRESET : ret;
	}
	vmig__ctl_msg__init(&outer);
	vmig__forward__init(&fw);
	outer.has_seq = 1;
	outer.seq = req->seq;
	outer.has_type = 1;
	outer.type = VMIG__CTL_TYPE__CTL_FORWARD;
	outer.forward = &fw;
	fw.has_dest_gid = 1;
	fw.dest_gid.len = 16;
	fw.dest_gid.data = c->gid;
	if (c->pid) {
		fw.has_dest_pid = 1;
		fw.dest_pid = c->pid;
	}
	fw.inner = req;
	ret = vmig_ctl_send(c->fd, &outer);
	if (!ret)
		ret = vmig_ctl_recv(c->fd, &r);
	if (ret != 1)
		return ret == 0 ? -ECONNRESET : ret;
	if (r->type == VMIG__CTL_TYPE__CTL_ERROR || !r->n_replies) {
		*reply = r;
		return 0;
	}
	*reply = msg_dup(r->replies[0]);
	vmig_ctl_free(r);
	return *reply ? 0 : -ENOMEM;
}

int vctl_do(struct vctl_chan *c, Vmig__CtlMsg *req, Vmig__CtlMsg **reply)
{
	int ret = vctl_call(c, req, reply);

	if (ret) {
		fprintf(stderr, "vmig-ctl: %s: %s\n", c->name, strerror(-ret));
		return ret;
	}
	if ((*reply)->type == VMIG__CTL_TYPE__CTL_ERROR) {
		const Vmig__Error *e = (*reply)->error;

		fprintf(stderr, "vmig-ctl: %s: %s: %s: %s\n", c->name,
			vmig_ctl_type_name(req->type),
			e ? vmig_err_class_name(e->class_) : "?",
			e && e->desc ? e->desc : "");
		return e && e->class_ == VMIG__ERR_CLASS__ERR_TIMEOUT ?
			-ETIMEDOUT : -EPROTO;
	}
	return 0;
}

static void print_ep(const char *what, const Vmig__Endpoint *e)
{
	char vg[64], pg[64];

	vctl_gid_str(&e->virt_gid, vg, sizeof(vg));
	vctl_gid_str(&e->phys_gid, pg, sizeof(pg));
	printf("    %s qpn virt %#x phys %#x gid virt %s phys %s", what,
	       e->virt_qpn, e->phys_qpn, vg, pg);
	if (e->n_rkey_map)
		printf(" rkeys-moved %zu", e->n_rkey_map);
	printf("\n");
}

void vctl_print_state(const Vmig__State *s)
{
	size_t i;

	printf("pid %u guest '%s' phase %s qps %u mrs %u cqs %u\n", s->pid,
	       s->guest ? s->guest : "", s->phase ? s->phase : "?",
	       s->num_qps, s->num_mrs, s->num_cqs);
	for (i = 0; i < s->n_lkey_map; i++)
		printf("  lkey virt %#x phys %#x\n", s->lkey_map[i]->virt,
		       s->lkey_map[i]->phys);
	for (i = 0; i < s->n_rkey_map; i++)
		printf("  rkey virt %#x phys %#x\n", s->rkey_map[i]->virt,
		       s->rkey_map[i]->phys);
	for (i = 0; i < s->n_conns; i++) {
		const Vmig__Connection *c = s->conns[i];

		printf("  qp %zu type %u state %u\n", i,
		       c->local ? c->local->qp_type : 0,
		       c->local ? c->local->state : 0);
		if (c->local)
			print_ep("local ", c->local);
		if (c->remote)
			print_ep("remote", c->remote);
	}
}

/* ---------------------------------------------------------------- cycle */

struct peer {
	struct vctl_chan ch;
	bool is_self;
	Vmig__Endpoint **remotes;	/* self's endpoints connected to it */
	size_t n_remotes;
	bool suspended;
};

static Vmig__State *get_state(struct vctl_chan *c, Vmig__CtlMsg **keep)
{
	Vmig__CtlMsg req, *r = NULL;

	vmig__ctl_msg__init(&req);
	req.has_type = 1;
	req.type = VMIG__CTL_TYPE__CTL_STATE;
	if (vctl_do(c, &req, &r) || !r->state) {
		vmig_ctl_free(r);
		return NULL;
	}
	*keep = r;
	return r->state;
}

static bool owns(const Vmig__State *s, const Vmig__Endpoint *remote)
{
	size_t i;

	for (i = 0; s && i < s->n_conns; i++) {
		const Vmig__Endpoint *l = s->conns[i]->local;

		if (l && l->virt_qpn == remote->virt_qpn &&
		    (!remote->has_virt_gid || !l->has_virt_gid ||
		     (l->virt_gid.len == remote->virt_gid.len &&
		      !memcmp(l->virt_gid.data, remote->virt_gid.data,
			      l->virt_gid.len))))
			return true;
	}
	return false;
}

static bool same_gid(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len == 16 && b->len == 16 && !memcmp(a->data, b->data, 16);
}

/* The shim on this host owning remote: scans run_dir's shim sockets. */
static int find_local_peer(uint32_t self, const Vmig__Endpoint *remote,
			   uint32_t *pid)
{
	DIR *d = opendir(vctl_run_dir());
	struct dirent *e;
	int ret = -ENOENT;

	while (d && (e = readdir(d))) {
		struct vctl_chan c;
		Vmig__CtlMsg *keep = NULL;
		unsigned int p;
		char tail;

		if (sscanf(e->d_name, "shim-%u.soc%c", &p, &tail) != 2 ||
		    p == self)
			continue;
		if (vctl_open_shim(&c, p))
			continue;
		if (owns(get_state(&c, &keep), remote)) {
			*pid = p;
			ret = 0;
		}
		vmig_ctl_free(keep);
		vctl_close(&c);
		if (!ret)
			break;
	}
	if (d)
		closedir(d);
	return ret;
}

/* The shim on remote's host owning it: a STATE fan-out through migrd. */
static int find_remote_peer(const Vmig__Endpoint *remote, uint32_t *pid)
{
	struct vctl_chan c;
	Vmig__CtlMsg outer, inner, *r = NULL;
	Vmig__Forward fw;
	size_t i;
	int ret;

	ret = vctl_open_forward(&c, remote->phys_gid.data, 0);
	if (ret)
		return ret;
	vmig__ctl_msg__init(&outer);
	vmig__ctl_msg__init(&inner);
	vmig__forward__init(&fw);
	inner.has_type = 1;
	inner.type = VMIG__CTL_TYPE__CTL_STATE;
	outer.has_type = 1;
	outer.type = VMIG__CTL_TYPE__CTL_FORWARD;
	outer.forward = &fw;
	fw.has_dest_gid = 1;
	fw.dest_gid = remote->phys_gid;
	fw.inner = &inner;
	ret = vmig_ctl_send(c.fd, &outer);
	if (!ret)
		ret = vmig_ctl_recv(c.fd, &r) == 1 ? 0 : -EPROTO;
	vctl_close(&c);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (i = 0; i < r->n_replies; i++) {
		const Vmig__CtlMsg *x = r->replies[i];

		if (x->state && owns(x->state, remote) && x->hello) {
			*pid = x->hello->pid;
			ret = 0;
			break;
		}
	}
	vmig_ctl_free(r);
	return ret;
}

static void step(const char *name, const char *who, uint64_t t0)
{
	printf("  %-14s %-28s %10llu us\n", name, who,
	       (unsigned long long)(now_us() - t0));
	fflush(stdout);
}

static void print_shim_times(const Vmig__CtlMsg *r)
{
	size_t i;

	for (i = 0; r && i < r->n_times; i++)
		printf("    %-12s %10llu %s\n", r->times[i]->step,
		       (unsigned long long)r->times[i]->usec,
		       strcmp(r->times[i]->step, "uverbs-left") ? "us" :
								  "(count)");
}

static int peers_find(struct vctl_chan *self, const Vmig__State *s,
		      struct peer **out, size_t *np)
{
	struct peer *peers = calloc(s->n_conns + 1, sizeof(*peers));
	size_t n = 0, i, j;
	int ret = 0;

	for (i = 0; i < s->n_conns; i++) {
		const Vmig__Endpoint *rem = s->conns[i]->remote;
		const Vmig__Endpoint *loc = s->conns[i]->local;
		bool local_host = false, is_self;
		uint32_t pid = 0;
		struct peer *p = NULL;

		if (!rem)
			continue;
		for (j = 0; j < s->n_conns; j++)
			if (s->conns[j]->local &&
			    same_gid(&s->conns[j]->local->phys_gid,
				     &rem->phys_gid))
				local_host = true;
		is_self = local_host && owns(s, rem);
		if (is_self)
			pid = self->pid;
		else if (local_host)
			ret = find_local_peer(self->pid, rem, &pid);
		else
			/* across hosts a relay may time out: try a few times */
			for (j = 0; j < 4; j++) {
				ret = find_remote_peer(rem, &pid);
				if (!ret)
					break;
				sleep(1 + (unsigned int)j);
			}
		if (ret) {
			char g[64];

			vctl_gid_str(&rem->virt_gid, g, sizeof(g));
			fprintf(stderr, "vmig-ctl: no shim owns qpn %#x at %s: "
				"%s\n", rem->virt_qpn, g, strerror(-ret));
			goto err;
		}
		for (j = 0; j < n; j++)
			if (peers[j].ch.pid == pid &&
			    peers[j].ch.forward == !local_host)
				p = &peers[j];
		if (!p) {
			p = &peers[n++];
			p->is_self = is_self;
			p->remotes = calloc(s->n_conns, sizeof(*p->remotes));
			if (is_self) {
				p->ch = *self;
				p->ch.fd = -1;
			} else if (local_host) {
				ret = vctl_open_shim(&p->ch, pid);
			} else {
				ret = vctl_open_forward(&p->ch,
							rem->phys_gid.data, pid);
			}
			if (ret) {
				fprintf(stderr, "vmig-ctl: peer pid %u: %s\n",
					pid, strerror(-ret));
				goto err;
			}
		}
		/* the peer's filter: its connections whose remote is us */
		p->remotes[p->n_remotes++] = (Vmig__Endpoint *)loc;
	}
	*out = peers;
	*np = n;
	return 0;
err:
	for (i = 0; i < n; i++) {
		if (!peers[i].is_self)
			vctl_close(&peers[i].ch);
		free(peers[i].remotes);
	}
	free(peers);
	return ret ? ret : -ENOENT;
}

static int do_simple(struct vctl_chan *c, Vmig__CtlMsg *m, Vmig__CtlMsg **r,
		     const char *name)
{
	uint64_t t0 = now_us();
	int ret = vctl_do(c, m, r);

	if (!ret)
		step(name, c->name, t0);
	return ret;
}

int vctl_cycle(struct vctl_chan *self, const struct vctl_cycle_opts *o)
{
	Vmig__CtlMsg *keep = NULL, *r = NULL, *restored = NULL;
	Vmig__CtlMsg m;
	Vmig__Suspend sus;
	Vmig__ConnFilter filt;
	Vmig__Restore rst;
	Vmig__Reconnect rc;
	Vmig__Connection **all = NULL;
	struct peer *peers = NULL;
	size_t np = 0, i, j, nall = 0;
	const Vmig__State *s;
	uint64_t t_all = now_us();
	bool self_suspended = false, torn = false;
	int ret;

	s = get_state(self, &keep);
	if (!s)
		return -EPROTO;
	ret = peers_find(self, s, &peers, &np);
	if (ret)
		goto out;
	printf("cycle %s: %zu connections, %zu peer processes\n", self->name,
	       s->n_conns, np);

	/* 1. suspend: this end (all), then each peer (its connections to us) */
	vmig__ctl_msg__init(&m);
	vmig__suspend__init(&sus);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_SUSPEND;
	m.suspend = &sus;
	sus.has_drain_timeout_ms = 1;
	sus.drain_timeout_ms = o->drain_timeout_ms;
	ret = do_simple(self, &m, &r, "suspend");
	vmig_ctl_free(r);
	r = NULL;
	if (ret)
		goto out;
	self_suspended = true;
	for (i = 0; i < np; i++) {
		if (peers[i].is_self)
			continue;
		vmig__conn_filter__init(&filt);
		filt.n_remote = peers[i].n_remotes;
		filt.remote = peers[i].remotes;
		sus.filter = &filt;
		ret = do_simple(&peers[i].ch, &m, &r, "suspend-peer");
		vmig_ctl_free(r);
		r = NULL;
		if (ret)
			goto out;
		peers[i].suspended = true;
	}
	sus.filter = NULL;

	/* 2. teardown and restore this end */
	vmig__ctl_msg__init(&m);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_TEARDOWN;
	ret = do_simple(self, &m, &r, "teardown");
	if (!ret && o->verbose)
		print_shim_times(r);
	if (!ret && r->image)
		printf("    image: %zu qps %zu mrs %zu cqs\n", r->image->n_qps,
		       r->image->n_mrs, r->image->n_cqs);
	for (i = 0; !ret && r && i < r->n_times; i++)
		if (!strcmp(r->times[i]->step, "uverbs-left") &&
		    r->times[i]->usec)
			printf("    WARNING: %llu uverbs fds/mappings left\n",
			       (unsigned long long)r->times[i]->usec);
	vmig_ctl_free(r);
	r = NULL;
	if (ret)
		goto out;
	torn = true;
	vmig__ctl_msg__init(&m);
	vmig__restore__init(&rst);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_RESTORE;
	rst.device = (char *)(o->device ? o->device : "");
	m.restore = &rst;
	ret = do_simple(self, &m, &restored, "restore");
	if (ret)
		goto out;
	torn = false;
	if (!restored->reconnect_info) {
		ret = -EPROTO;
		goto out;
	}

	/* 3. peers reset and reconnect to our new endpoints, then we to them */
	all = calloc(restored->reconnect_info->n_conns + 1, sizeof(*all));
	for (i = 0; i < np; i++) {
		Vmig__CtlMsg *pr = NULL;

		if (peers[i].is_self) {
			for (j = 0; j < restored->reconnect_info->n_conns; j++)
				all[nall++] = restored->reconnect_info->conns[j];
			continue;
		}
		vmig__ctl_msg__init(&m);
		vmig__reconnect__init(&rc);
		m.has_type = 1;
		m.type = VMIG__CTL_TYPE__CTL_RECONNECT;
		m.reconnect = &rc;
		rc.has_reset = 1;
		rc.reset = 1;
		rc.n_peers = restored->reconnect_info->n_conns;
		rc.peers = restored->reconnect_info->conns;
		ret = do_simple(&peers[i].ch, &m, &pr, "reset-peer");
		if (ret)
			goto out;
		if (o->verbose)
			print_shim_times(pr);
		/* keep the peer's endpoints for our own reconnect */
		for (j = 0; pr->reconnect_info &&
			    j < pr->reconnect_info->n_conns; j++) {
			Vmig__Connection **na = realloc(all, (nall + 2) *
							sizeof(*na));

			if (!na) {
				ret = -ENOMEM;
				goto out;
			}
			all = na;
			all[nall++] = msg_dup_conn(
				pr->reconnect_info->conns[j]);
		}
		vmig_ctl_free(pr);
	}
	if (nall) {
		vmig__ctl_msg__init(&m);
		vmig__reconnect__init(&rc);
		m.has_type = 1;
		m.type = VMIG__CTL_TYPE__CTL_RECONNECT;
		m.reconnect = &rc;
		rc.n_peers = nall;
		rc.peers = all;
		ret = do_simple(self, &m, &r, "reconnect");
		vmig_ctl_free(r);
		r = NULL;
		if (ret)
			goto out;
	}

	/* 4. resume both ends */
	vmig__ctl_msg__init(&m);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_RESUME;
	for (i = 0; i < np; i++) {
		if (peers[i].is_self || !peers[i].suspended)
			continue;
		ret = do_simple(&peers[i].ch, &m, &r, "resume-peer");
		vmig_ctl_free(r);
		r = NULL;
		if (ret)
			goto out;
		peers[i].suspended = false;
	}
	ret = do_simple(self, &m, &r, "resume");
	vmig_ctl_free(r);
	r = NULL;
	self_suspended = false;
	if (!ret)
		step("total", self->name, t_all);
out:
	if (ret && !torn) {
		/* roll back what is suspended; a torn-down end needs restore */
		vmig__ctl_msg__init(&m);
		m.has_type = 1;
		m.type = VMIG__CTL_TYPE__CTL_ABORT;
		for (i = 0; i < np; i++)
			if (peers[i].suspended && !vctl_call(&peers[i].ch, &m, &r)) {
				vmig_ctl_free(r);
				r = NULL;
			}
		if (self_suspended && !vctl_call(self, &m, &r))
			vmig_ctl_free(r);
		fprintf(stderr, "vmig-ctl: cycle failed, suspended ends resumed\n");
	} else if (ret) {
		fprintf(stderr, "vmig-ctl: cycle failed after teardown\n");
	}
	for (i = 0; i < np; i++) {
		if (!peers[i].is_self)
			vctl_close(&peers[i].ch);
		free(peers[i].remotes);
	}
	free(peers);
	/* the peers' connections were duplicated: free them */
	for (i = 0; all && i < nall; i++) {
		bool ours = false;

		for (j = 0; restored && restored->reconnect_info &&
			    j < restored->reconnect_info->n_conns; j++)
			if (all[i] == restored->reconnect_info->conns[j])
				ours = true;
		if (!ours)
			vmig__connection__free_unpacked(all[i], NULL);
	}
	free(all);
	vmig_ctl_free(restored);
	vmig_ctl_free(keep);
	return ret;
}
