// SPDX-License-Identifier: MIT
/* Parallel, bounded request/reply exchanges with the shims. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "agent: fanout: "
#include "ctlmsg.h"
#include "fanout.h"
#include "log.h"
#include "sock.h"

struct fan {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const Vmig__CtlMsg *req;
	struct timespec deadline;	/* CLOCK_MONOTONIC */
	size_t left;
	unsigned next_order;
	bool expired;
};

struct slot {
	struct fan *f;
	struct ga_result *res;
	pthread_t th;
	int fd;			/* published for shutdown at the deadline */
	int err;		/* negative errno of the exchange */
	bool started;
	bool cut;		/* ended after the deadline: cut by it */
};

static long ms_left(const struct fan *f)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (f->deadline.tv_sec - now.tv_sec) * 1000 +
	       (f->deadline.tv_nsec - now.tv_nsec) / 1000000;
}

/* Each I/O gets what is left of the deadline (the main thread's shutdown
 * cuts a peer that trickles bytes to stretch it). */
static int bound(struct slot *s)
{
	long left = ms_left(s->f);

	if (left <= 0)
		return -ETIMEDOUT;
	return vmig_sock_set_timeout(s->fd, (int)left);
}

static int recv_reply(struct slot *s, Vmig__CtlMsg **m)
{
	int ret = bound(s);

	if (!ret)
		ret = vmig_ctl_recv(s->fd, m);
	return ret < 0 ? ret : ret == 0 ? -ECONNRESET : 0;
}

static int send_hello(int fd)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT;
	Vmig__Hello h = VMIG__HELLO__INIT;

	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.hello = &h;
	h.has_version = h.has_role = h.has_pid = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.role = VMIG__ROLE__ROLE_AGENT;
	h.pid = (uint32_t)getpid();
	return vmig_ctl_send(fd, &m);
}

/*
 * Header, HELLO and the request in one go, then the replies. Sending the
 * request without waiting for HELLO's answer saves a round trip, and lets
 * a shim that is stuck (say, in a long drain) still find a rollback ABORT
 * in its socket when it comes back, after the agent gave up on it. Sets
 * s->res->reply to what the shim said (a HELLO refusal included); returns
 * 0 or the I/O error.
 */
static int exchange(struct slot *s)
{
	const struct ga_shim *sh = &s->res->shim;
	Vmig__CtlMsg *m = NULL;
	int fd, ret;

	fd = vmig_unix_connect(sh->ctl_path);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&s->f->lock);
	s->fd = fd;
	ret = s->f->expired ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&s->f->lock);
	if (ret)
		return ret;
	ret = bound(s);
	if (!ret)
		ret = vmig_ctl_send_header(fd);
	if (!ret)
		ret = send_hello(fd);
	if (!ret)
		ret = vmig_ctl_send(fd, s->f->req);
	if (!ret && !(ret = bound(s)))
		ret = vmig_ctl_recv_header(fd);
	if (!ret)
		ret = recv_reply(s, &m);
	if (ret)
		return ret;
	if (!m->has_type || m->type != VMIG__CTL_TYPE__CTL_HELLO) {
		s->res->reply = m;	/* a refusal: the shim's own words */
		return 0;
	}
	vmig_ctl_free(m);
	m = NULL;
	ret = recv_reply(s, &m);
	if (ret)
		return ret;
	if (m->seq != s->f->req->seq) {
		vmig_ctl_free(m);
		return -EPROTO;
	}
	s->res->reply = m;
	return 0;
}

static void *slot_run(void *arg)
{
	struct slot *s = arg;
	int fd;

	s->err = exchange(s);
	pthread_mutex_lock(&s->f->lock);
	fd = s->fd;
	s->fd = -1;
	s->cut = s->f->expired;
	s->res->order = ++s->f->next_order;
	s->f->left--;
	pthread_cond_signal(&s->f->cond);
	pthread_mutex_unlock(&s->f->lock);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* The reply for a shim that did not answer: an ERROR that says why. */
static Vmig__CtlMsg *no_answer(const struct slot *s, bool expired)
{
	const struct ga_shim *sh = &s->res->shim;
	const char *what = vmig_ctl_type_name(s->f->req->type);
	int e = -s->err;

	if (expired || e == ETIMEDOUT || e == EAGAIN)
		return vmig_msg_error(s->f->req->seq, VMIG__ERR_CLASS__ERR_TIMEOUT,
				      ETIMEDOUT,
				      "pid %d (%s) did not answer %s in time",
				      sh->pid, sh->guest, what);
	if (e == ECONNREFUSED || e == ENOENT)
		return vmig_msg_error(s->f->req->seq,
				      VMIG__ERR_CLASS__ERR_UNREACHABLE, e,
				      "pid %d (%s) is not listening on %s",
				      sh->pid, sh->guest, sh->ctl_path);
	if (e == EPROTO)
		return vmig_msg_error(s->f->req->seq,
				      VMIG__ERR_CLASS__ERR_BAD_REQUEST, e,
				      "pid %d (%s) answered %s out of step",
				      sh->pid, sh->guest, what);
	return vmig_msg_error(s->f->req->seq, VMIG__ERR_CLASS__ERR_UNREACHABLE, e,
			      "pid %d (%s) vanished during %s: %s", sh->pid,
			      sh->guest, what, strerror(e));
}

static void finish(struct slot *s, bool expired)
{
	struct ga_result *r = s->res;

	if (r->reply) {
		r->answered = true;
		r->ok = !r->reply->has_type ||
			r->reply->type != VMIG__CTL_TYPE__CTL_ERROR;
	} else {
		r->reply = s->started ? no_answer(s, expired) :
			vmig_msg_error(s->f->req->seq, VMIG__ERR_CLASS__ERR_GENERIC,
				       EAGAIN, "pid %d (%s): no thread for the exchange",
				       r->shim.pid, r->shim.guest);
	}
	if (r->reply &&
	    vmig_msg_tag(r->reply, r->shim.pid, r->shim.guest, NULL))
		pr_err("out of memory tagging a reply");
	if (!r->ok)
		pr_warn("pid %d: %s: %s", r->shim.pid,
			vmig_ctl_type_name(s->f->req->type),
			r->reply && r->reply->error && r->reply->error->desc ?
				r->reply->error->desc : "failed");
}

int ga_fanout(const struct ga_shim *shims, size_t n, const Vmig__CtlMsg *req,
	      int timeout_ms, struct ga_result **out)
{
	struct fan f = { .req = req };
	pthread_condattr_t ca;
	struct ga_result *res;
	struct slot *slots;
	pthread_attr_t attr;
	sigset_t all, old;
	size_t i;
	int ret = 0;

	res = calloc(n ? n : 1, sizeof(*res));
	slots = calloc(n ? n : 1, sizeof(*slots));
	if (!res || !slots) {
		free(res);
		free(slots);
		return -ENOMEM;
	}
	pthread_mutex_init(&f.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f.cond, &ca);
	pthread_condattr_destroy(&ca);
	clock_gettime(CLOCK_MONOTONIC, &f.deadline);
	f.deadline.tv_sec += timeout_ms / 1000;
	f.deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (f.deadline.tv_nsec >= 1000000000) {
		f.deadline.tv_sec++;
		f.deadline.tv_nsec -= 1000000000;
	}

	/* a thread per shim: small stacks, signals stay with the main thread */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 << 10);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < n; i++) {
		res[i].shim = shims[i];
		slots[i] = (struct slot){ .f = &f, .res = &res[i], .fd = -1 };
		pthread_mutex_lock(&f.lock);
		f.left++;
		pthread_mutex_unlock(&f.lock);
		if (pthread_create(&slots[i].th, &attr, slot_run, &slots[i])) {
			pthread_mutex_lock(&f.lock);
			f.left--;
			pthread_mutex_unlock(&f.lock);
			continue;
		}
		slots[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);

	pthread_mutex_lock(&f.lock);
	while (f.left && !ret)
		ret = pthread_cond_timedwait(&f.cond, &f.lock, &f.deadline);
	if (f.left) {
		/* past the deadline: unblock the exchanges still running */
		f.expired = true;
		for (i = 0; i < n; i++)
			if (slots[i].fd >= 0)
				shutdown(slots[i].fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&f.lock);
	for (i = 0; i < n; i++) {
		if (slots[i].started)
			pthread_join(slots[i].th, NULL);
		finish(&slots[i], slots[i].cut && !res[i].reply);
	}
	pthread_cond_destroy(&f.cond);
	pthread_mutex_destroy(&f.lock);
	free(slots);
	*out = res;
	return 0;
}

void ga_results_free(struct ga_result *res, size_t n)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < n; i++)
		vmig_ctl_free(res[i].reply);
	free(res);
}
