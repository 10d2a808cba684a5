// SPDX-License-Identifier: MIT
/*
 * The shim's control socket, $VMIG_RUN_DIR/shim-<pid>.sock: stream header
 * each way, HELLO with a version check, then one reply per request in
 * order. Garbage, a wrong version or a request in the wrong state gets an
 * ERROR and changes nothing. Also registers with migrd when it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"
#include "sock.h"

struct client {
	struct client *next;
	int fd;
	bool hdr, hello;
	bool migrd;
};

static struct client *clients;
static int migrd_fd = -1;
/* Channels released for a checkpoint: no connection until the process was
 * restored (its start time changed) or somebody says HELLO again. */
static bool quiet;
static unsigned long long quiet_start;

void *vmig_arena_alloc(struct vmig_arena *a, size_t size)
{
	void *p;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		void **b = realloc(a->blocks, cap * sizeof(*b));

		if (!b)
			abort();
		a->blocks = b;
		a->cap = cap;
	}
	p = calloc(1, size ? size : 1);
	if (!p)
		abort();	/* control path: out of memory is fatal here */
	a->blocks[a->n++] = p;
	return p;
}

char *vmig_arena_strdup(struct vmig_arena *a, const char *s)
{
	size_t l = strlen(s) + 1;
	char *p = vmig_arena_alloc(a, l);

	memcpy(p, s, l);
	return p;
}

void vmig_arena_dispose(struct vmig_arena *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(*a));
}

int vmig_req_fail(struct vmig_req *r, Vmig__ErrClass cls, int err_no,
		  const char *fmt, ...)
{
	va_list ap;
	uint32_t seq = r->in && r->in->has_seq ? r->in->seq : 0;

	va_start(ap, fmt);
	vsnprintf(r->desc, sizeof(r->desc), fmt, ap);
	va_end(ap);
	pr_warn("request failed: %s", r->desc);
	vmig_ctl_error_init(r->out, &r->err, seq, cls, err_no, r->desc);
	return -1;
}

uint64_t vmig_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void vmig_req_time(struct vmig_req *r, const char *step, uint64_t usec)
{
	Vmig__StepTime *t = vmig_arena_alloc(r->arena, sizeof(*t));
	Vmig__StepTime **v = vmig_arena_alloc(r->arena,
					      (r->out->n_times + 1) * sizeof(*v));

	vmig__step_time__init(t);
	t->step = vmig_arena_strdup(r->arena, step);
	t->has_usec = 1;
	t->usec = usec;
	if (r->out->n_times)
		memcpy(v, r->out->times, r->out->n_times * sizeof(*v));
	v[r->out->n_times++] = t;
	r->out->times = v;
}

int vmig_ctl_listen(void)
{
	int fd;

	mkdir(vmig_shim.run_dir, 0755);
	fd = vmig_unix_listen(vmig_shim.ctl_path, 0600);
	if (fd < 0) {
		errno = -fd;
		pr_perror("cannot listen on %s", vmig_shim.ctl_path);
		return fd;
	}
	pr_info("control socket %s", vmig_shim.ctl_path);
	return fd;
}

__attribute__((destructor)) static void ctl_cleanup(void)
{
	if (vmig_shim.started)
		unlink(vmig_shim.ctl_path);
}

static struct client *client_find(int fd)
{
	struct client *c;

	for (c = clients; c; c = c->next)
		if (c->fd == fd)
			return c;
	return NULL;
}

static void client_close(struct client *c)
{
	struct client **p;

	vmig_events_unwatch_fd(c->fd);
	for (p = &clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	if (c->fd == migrd_fd)
		migrd_fd = -1;
	close(c->fd);
	free(c);
}

/* Field 22 of /proc/self/stat: a restored process is a new process. */
static unsigned long long proc_start_time(void)
{
	char buf[1024], *p;
	unsigned long long t = 0;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), i;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');	/* the command name may hold spaces */
	for (i = 2; p && i < 22; i++)
		p = strchr(p + 1, ' ');
	if (p)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/* After a TEARDOWN for a checkpoint: CRIU cannot dump one end of a unix
 * stream, so every connection goes (the reply was sent); the listening
 * socket stays, CRIU restores it. */
static void release_channels(void)
{
	while (clients)
		client_close(clients);
	quiet = true;
	quiet_start = proc_start_time();
	pr_info("control connections released for a checkpoint");
}

static struct client *client_add(int fd, bool hdr, bool hello)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->hdr = hdr;
	c->hello = hello;
	c->next = clients;
	clients = c;
	if (vmig_events_watch_client(fd)) {
		client_close(c);
		return NULL;
	}
	return c;
}

void vmig_ctl_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* a peer that stops mid-message must not stall the shim thread */
	vmig_sock_set_timeout(fd, 5000);
	if (vmig_ctl_send_header(fd)) {
		close(fd);
		return;
	}
	client_add(fd, false, false);
}

static void fill_hello(Vmig__CtlMsg *m, Vmig__Hello *h)
{
	vmig__hello__init(h);
	h->has_version = 1;
	h->version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h->has_role = 1;
	h->role = VMIG__ROLE__ROLE_SHIM;
	h->has_pid = 1;
	h->pid = (uint32_t)getpid();
	h->guest = vmig_shim.guest;
	h->ctl_path = vmig_shim.ctl_path;
	m->has_type = 1;
	m->type = VMIG__CTL_TYPE__CTL_HELLO;
	m->hello = h;
}

static int dispatch(struct vmig_req *r)
{
	Vmig__CtlType t = r->in->has_type ? r->in->type :
					    VMIG__CTL_TYPE__CTL_NONE;

	switch (t) {
	case VMIG__CTL_TYPE__CTL_STATE:
		return vmig_op_state(r);
	case VMIG__CTL_TYPE__CTL_SUSPEND:
		return vmig_op_suspend(r);
	case VMIG__CTL_TYPE__CTL_RESUME:
		return vmig_op_resume(r);
	case VMIG__CTL_TYPE__CTL_ABORT:
		return vmig_op_abort(r);
	case VMIG__CTL_TYPE__CTL_CAPTURE:
		return vmig_op_capture(r);
	case VMIG__CTL_TYPE__CTL_TEARDOWN:
		return vmig_op_teardown(r);
	case VMIG__CTL_TYPE__CTL_RESTORE:
		return vmig_op_restore(r);
	case VMIG__CTL_TYPE__CTL_RECONNECT:
		return vmig_op_reconnect(r);
	case VMIG__CTL_TYPE__CTL_HELLO:
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				     "HELLO again");
	case VMIG__CTL_TYPE__CTL_NONE:
	case VMIG__CTL_TYPE__CTL_ERROR:
	case VMIG__CTL_TYPE__CTL_OK:
	case VMIG__CTL_TYPE__CTL_DRAINED:
	case VMIG__CTL_TYPE__CTL_RECONNECT_INFO:
	case VMIG__CTL_TYPE__CTL_FORWARD:
	case VMIG__CTL_TYPE__CTL_MIG_PREPARE:
	case VMIG__CTL_TYPE__CTL_MIG_FILE:
	case VMIG__CTL_TYPE__CTL_MIG_RESTORE:
	case VMIG__CTL_TYPE__CTL_MIG_ABORT:
	case VMIG__CTL_TYPE__CTL_MIG_MOVED:
	case _VMIG__CTL_TYPE_IS_INT_SIZE:
		break;
	}
	return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
			     "unexpected message %s", vmig_ctl_type_name(t));
}

static void handle(struct client *c, const Vmig__CtlMsg *in)
{
	struct vmig_arena arena = { 0 };
	Vmig__CtlMsg out;
	Vmig__Hello h;
	struct vmig_req r = { .in = in, .out = &out, .arena = &arena };
	uint64_t t0 = vmig_now_us();

	vmig__ctl_msg__init(&out);
	if (!c->hello) {
		if (!in->has_type || in->type != VMIG__CTL_TYPE__CTL_HELLO ||
		    !in->hello) {
			vmig_req_fail(&r, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "HELLO first");
		} else if (!in->hello->has_version ||
			   in->hello->version !=
				   VMIG__CTL_VERSION__CTL_VERSION_CURRENT) {
			vmig_req_fail(&r, VMIG__ERR_CLASS__ERR_BAD_VERSION, 0,
				      "protocol version %u, this shim speaks %u",
				      in->hello->version,
				      VMIG__CTL_VERSION__CTL_VERSION_CURRENT);
		} else {
			c->hello = true;
			fill_hello(&out, &h);
			if (quiet) {
				/* poked: the checkpoint is over (a rollback) */
				quiet = false;
				pr_info("poked after a release: registering again");
			}
		}
	} else {
		pthread_mutex_lock(&vmig_shim.lock);
		if (!dispatch(&r) && !out.has_type) {
			out.has_type = 1;
			out.type = VMIG__CTL_TYPE__CTL_OK;
		}
		pthread_mutex_unlock(&vmig_shim.lock);
		pr_info("%s: %s in %llu us", vmig_ctl_type_name(in->type),
			vmig_ctl_type_name(out.type),
			(unsigned long long)(vmig_now_us() - t0));
	}
	out.has_seq = in->has_seq;
	out.seq = in->seq;
	if (vmig_ctl_send(c->fd, &out))
		pr_warn("reply lost");
	vmig_arena_dispose(&arena);
	if (in->has_type && in->type == VMIG__CTL_TYPE__CTL_TEARDOWN &&
	    out.type == VMIG__CTL_TYPE__CTL_OK && in->teardown &&
	    in->teardown->has_release_channels &&
	    in->teardown->release_channels)
		release_channels();
}

void vmig_ctl_readable(int fd)
{
	struct client *c = client_find(fd);
	Vmig__CtlMsg *in = NULL;
	int ret;

	if (!c)
		return;
	if (!c->hdr) {
		if (vmig_ctl_recv_header(fd)) {
			pr_warn("control client without a stream header");
			client_close(c);
			return;
		}
		c->hdr = true;
		return;
	}
	ret = vmig_ctl_recv(fd, &in);
	if (ret == 0) {
		client_close(c);
		return;
	}
	if (ret < 0) {
		struct vmig_req r;
		Vmig__CtlMsg out;

		vmig__ctl_msg__init(&out);
		memset(&r, 0, sizeof(r));
		r.out = &out;
		vmig_req_fail(&r, VMIG__ERR_CLASS__ERR_BAD_REQUEST, -ret,
			      "bad record: %s", strerror(-ret));
		vmig_ctl_send(fd, &out);
		/* a payload that did not decode leaves the stream in step */
		if (ret != -EBADMSG)
			client_close(c);
		return;
	}
	handle(c, in);
	vmig_ctl_free(in);
}

/* Registration with migrd: HELLO on migrd.sock, kept open; migrd may send
 * requests on it like any client. Retried every second until it works. */
void vmig_migrd_register_kick(void)
{
	char path[300];
	Vmig__CtlMsg m, *reply = NULL;
	Vmig__Hello h;
	struct client *c;
	int fd;

	if (migrd_fd >= 0)
		return;
	if (quiet) {
		if (proc_start_time() == quiet_start)
			return;
		quiet = false;
		pr_info("restored from a checkpoint: registering again");
	}
	snprintf(path, sizeof(path), "%s/migrd.sock", vmig_shim.run_dir);
	if (access(path, F_OK))
		return;
	fd = vmig_unix_connect(path);
	if (fd < 0)
		return;
	vmig_sock_set_timeout(fd, 3000);
	vmig__ctl_msg__init(&m);
	fill_hello(&m, &h);
	if (vmig_ctl_send_header(fd) || vmig_ctl_recv_header(fd) ||
	    vmig_ctl_send(fd, &m) || vmig_ctl_recv(fd, &reply) != 1 ||
	    !reply->has_type || reply->type == VMIG__CTL_TYPE__CTL_ERROR) {
		pr_debug("migrd registration failed");
		vmig_ctl_free(reply);
		close(fd);
		return;
	}
	vmig_ctl_free(reply);
	c = client_add(fd, true, true);
	if (c) {
		c->migrd = true;
		migrd_fd = fd;
		pr_info("registered with migrd");
	}
}
