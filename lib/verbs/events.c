// SPDX-License-Identifier: MIT
/*
 * The shim thread: one epoll loop over the real async fds (events are
 * translated to shadow objects, the shim's own SQ_DRAINED filtered out),
 * the real completion channels (forwarded to the shadow channels' pipes)
 * and the control sockets. All signals are blocked in it: the application's
 * signals stay the application's.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "ctl_ops.h"

enum watch_type { W_ASYNC, W_CHAN, W_LISTEN, W_CLIENT };

struct watch {
	struct watch *next;
	enum watch_type type;
	int fd;
	void *obj;
};

static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watches;
static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static int start_ret;

static int watch_add(enum watch_type type, int fd, void *obj)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!w)
		return -ENOMEM;
	w->type = type;
	w->fd = fd;
	w->obj = obj;
	ev.data.ptr = w;
	pthread_mutex_lock(&wlock);
	if (epoll_ctl(vmig_shim.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;

		pthread_mutex_unlock(&wlock);
		free(w);
		return -e;
	}
	w->next = watches;
	watches = w;
	pthread_mutex_unlock(&wlock);
	return 0;
}

void vmig_events_unwatch_fd(int fd)
{
	struct watch **p, *w;

	pthread_mutex_lock(&wlock);
	for (p = &watches; (w = *p); p = &w->next)
		if (w->fd == fd) {
			*p = w->next;
			epoll_ctl(vmig_shim.epfd, EPOLL_CTL_DEL, fd, NULL);
			free(w);
			break;
		}
	pthread_mutex_unlock(&wlock);
}

int vmig_events_watch_ctx(struct vmig_ctx *ctx)
{
	if (vmig_shim.epfd < 0)
		return -ENOTCONN;
	return watch_add(W_ASYNC, ctx->real->async_fd, ctx);
}

int vmig_events_watch_chan(struct vmig_chan *ch)
{
	if (vmig_shim.epfd < 0)
		return -ENOTCONN;
	return watch_add(W_CHAN, ch->real->fd, ch);
}

int vmig_events_watch_client(int fd)
{
	return watch_add(W_CLIENT, fd, NULL);
}

static void async_queue(struct vmig_ctx *ctx, const struct ibv_async_event *ev)
{
	struct vmig_async_ev *e = malloc(sizeof(*e));
	char b = 0;

	if (!e)
		return;
	e->next = NULL;
	e->ev = *ev;
	pthread_mutex_lock(&ctx->evlock);
	*ctx->evq_tail = e;
	ctx->evq_tail = &e->next;
	pthread_mutex_unlock(&ctx->evlock);
	if (write(ctx->async_wr, &b, 1) != 1)
		pr_warn("async event lost");
}

/* wlock held. */
static void handle_async(struct vmig_ctx *ctx)
{
	struct ibv_async_event ev;

	while (ctx->real && !vmig_real.get_async_event(ctx->real, &ev)) {
		struct ibv_async_event sh = ev;
		bool forward = true;

		switch (ev.event_type) {
		case IBV_EVENT_CQ_ERR: {
			struct vmig_cq *cq = ev.element.cq->cq_context;

			sh.element.cq = (struct ibv_cq *)&cq->ib;
			break;
		}
		case IBV_EVENT_QP_FATAL:
		case IBV_EVENT_QP_REQ_ERR:
		case IBV_EVENT_QP_ACCESS_ERR:
		case IBV_EVENT_COMM_EST:
		case IBV_EVENT_SQ_DRAINED:
		case IBV_EVENT_PATH_MIG:
		case IBV_EVENT_PATH_MIG_ERR:
		case IBV_EVENT_QP_LAST_WQE_REACHED: {
			struct vmig_qp *qp = ev.element.qp->qp_context;

			sh.element.qp = &qp->ib.qp_base;
			if (ev.event_type == IBV_EVENT_SQ_DRAINED &&
			    qp->draining) {
				qp->drained = true;
				forward = false;
			}
			/* our own ERR/reset of a QP on an SRQ */
			if (ev.event_type == IBV_EVENT_QP_LAST_WQE_REACHED &&
			    (atomic_load(&qp->slow) & VMIG_SLOW_HELD))
				forward = false;
			break;
		}
		case IBV_EVENT_SRQ_ERR:
		case IBV_EVENT_SRQ_LIMIT_REACHED: {
			struct vmig_srq *srq = ev.element.srq->srq_context;

			sh.element.srq = &srq->ib;
			break;
		}
		case IBV_EVENT_DEVICE_FATAL:
		case IBV_EVENT_PORT_ACTIVE:
		case IBV_EVENT_PORT_ERR:
		case IBV_EVENT_LID_CHANGE:
		case IBV_EVENT_PKEY_CHANGE:
		case IBV_EVENT_SM_CHANGE:
		case IBV_EVENT_CLIENT_REREGISTER:
		case IBV_EVENT_GID_CHANGE:
		case IBV_EVENT_WQ_FATAL:
			break;
		}
		vmig_real.ack_async_event(&ev);
		if (forward)
			async_queue(ctx, &sh);
	}
}

/* wlock held. */
static void handle_chan(struct vmig_chan *ch)
{
	struct ibv_cq *rcq;
	void *cctx;

	while (ch->real && !vmig_real.get_cq_event(ch->real, &rcq, &cctx)) {
		struct vmig_cq *cq = cctx;

		vmig_real.ack_cq_events(rcq, 1);
		vmig_chan_inject(ch, cq);
	}
}

/* One round of epoll; ctl: also serve the control sockets. */
static void events_once(int ms, bool ctl)
{
	struct epoll_event evs[16];
	int n, i;

	n = epoll_wait(vmig_shim.epfd, evs, 16, ms);
	for (i = 0; i < n; i++) {
		struct watch *w = evs[i].data.ptr, *p;
		enum watch_type type;
		int fd;

		pthread_mutex_lock(&wlock);
		for (p = watches; p && p != w; p = p->next)
			;
		if (!p) {
			pthread_mutex_unlock(&wlock);
			continue;
		}
		type = w->type;
		fd = w->fd;
		switch (type) {
		case W_ASYNC:
			handle_async(w->obj);
			break;
		case W_CHAN:
			handle_chan(w->obj);
			break;
		case W_LISTEN:
		case W_CLIENT:
			break;
		}
		pthread_mutex_unlock(&wlock);
		if (!ctl)
			continue;
		if (type == W_LISTEN)
			vmig_ctl_accept(fd);
		else if (type == W_CLIENT)
			vmig_ctl_readable(fd);
	}
}

/* Control handlers wait for events with this (they run in the thread). */
void vmig_events_pump(int ms)
{
	events_once(ms, false);
}

static void *events_main(void *arg)
{
	for (;;) {
		/* register first: migrd may be asked to move us right away */
		vmig_migrd_register_kick();
		events_once(1000, true);
	}
	return NULL;
}

static void events_start_once(void)
{
	sigset_t all, old;
	int lfd;

	vmig_shim.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (vmig_shim.epfd < 0) {
		start_ret = -errno;
		return;
	}
	lfd = vmig_ctl_listen();
	if (lfd >= 0)
		watch_add(W_LISTEN, lfd, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	start_ret = -pthread_create(&vmig_shim.thread, NULL, events_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!start_ret) {
		pthread_detach(vmig_shim.thread);
		vmig_shim.started = true;
	}
}

int vmig_events_start(void)
{
	pthread_once(&start_once, events_start_once);
	return start_ret;
}
