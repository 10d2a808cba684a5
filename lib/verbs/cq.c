// SPDX-License-Identifier: MIT
/*
 * Completion channels and CQs. A shadow channel's fd is a shim pipe fed by
 * the shim thread from the real channel, so it survives a teardown; the
 * thread acks every real event at once and the shadow ack only counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

/* shim.lock held. */
int vmig_chan_create_real(struct vmig_chan *ch)
{
	ch->real = vmig_real.create_comp_channel(ch->ctx->real);
	if (!ch->real)
		return -errno;
	fcntl(ch->real->fd, F_SETFL, fcntl(ch->real->fd, F_GETFL) | O_NONBLOCK);
	return vmig_events_watch_chan(ch);
}

__attribute__((visibility("default")))
struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ibctx)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	struct vmig_chan *ch;
	int p[2], ret;

	ch = calloc(1, sizeof(*ch));
	if (!ch || pipe2(p, O_CLOEXEC) < 0) {
		free(ch);
		errno = ENOMEM;
		return NULL;
	}
	ch->ib.fd = p[0];
	ch->wfd = p[1];
	ch->ib.context = ibctx;
	ch->ctx = ctx;
	pthread_mutex_lock(&vmig_shim.lock);
	ret = ctx->real ? vmig_chan_create_real(ch) : -EAGAIN;
	if (ret) {
		pthread_mutex_unlock(&vmig_shim.lock);
		close(p[0]);
		close(p[1]);
		free(ch);
		errno = -ret;
		return NULL;
	}
	ch->id = vmig_new_id();
	vmig_list_add_tail(&vmig_shim.chans, &ch->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	return &ch->ib;
}

__attribute__((visibility("default")))
int ibv_destroy_comp_channel(struct ibv_comp_channel *ibch)
{
	struct vmig_chan *ch = vmig_container_of(ibch, struct vmig_chan, ib);
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (ch->real) {
		vmig_events_unwatch_fd(ch->real->fd);
		ret = vmig_real.destroy_comp_channel(ch->real);
	}
	if (!ret)
		vmig_list_del(&ch->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	if (ret)
		return ret;
	close(ch->ib.fd);
	close(ch->wfd);
	free(ch);
	return 0;
}

/* Called by the shim thread for a completion event of cq. */
void vmig_chan_inject(struct vmig_chan *ch, struct vmig_cq *cq)
{
	ssize_t r;

	cq->armed = false;
	r = write(ch->wfd, &cq, sizeof(cq));
	if (r != (ssize_t)sizeof(cq))
		pr_warn("completion event lost: %zd", r);
}

__attribute__((visibility("default")))
int ibv_get_cq_event(struct ibv_comp_channel *ibch, struct ibv_cq **cq,
		     void **cq_context)
{
	struct vmig_chan *ch = vmig_container_of(ibch, struct vmig_chan, ib);
	struct vmig_cq *vcq;

	for (;;) {
		ssize_t r = read(ch->ib.fd, &vcq, sizeof(vcq));

		if (r == (ssize_t)sizeof(vcq))
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r >= 0)
			errno = EIO;
		return -1;
	}
	*cq = (struct ibv_cq *)&vcq->ib;
	*cq_context = vcq->ib.cq_context;
	return 0;
}

__attribute__((visibility("default")))
void ibv_ack_cq_events(struct ibv_cq *ibcq, unsigned int n)
{
	pthread_mutex_lock(&ibcq->mutex);
	ibcq->comp_events_completed += n;
	pthread_cond_signal(&ibcq->cond);
	pthread_mutex_unlock(&ibcq->mutex);
}

/* shim.lock held: (re)creates cq's real CQ. */
int vmig_cq_create_real(struct vmig_cq *cq)
{
	struct ibv_comp_channel *rch = cq->chan ? cq->chan->real : NULL;

	if (cq->extended) {
		struct verbs_context *rv =
			verbs_get_ctx_op(cq->ctx->real, create_cq_ex);
		struct ibv_cq_init_attr_ex a = {
			.cqe = (uint32_t)cq->cqe,
			.cq_context = cq,
			.channel = rch,
			.comp_vector = (uint32_t)cq->comp_vector,
			.wc_flags = cq->wc_flags,
		};

		if (!rv)
			return -EOPNOTSUPP;
		cq->realx = rv->create_cq_ex(cq->ctx->real, &a);
		if (!cq->realx)
			return -errno;
		cq->real = ibv_cq_ex_to_cq(cq->realx);
	} else {
		cq->real = vmig_real.create_cq(cq->ctx->real, cq->cqe, cq, rch,
					       cq->comp_vector);
		if (!cq->real)
			return -errno;
	}
	return 0;
}

/* Common to ibv_create_cq and ibv_create_cq_ex; shim.lock not held. */
struct vmig_cq *vmig_cq_new(struct vmig_ctx *ctx, int cqe, void *cq_context,
			    struct ibv_comp_channel *ibch, int comp_vector,
			    bool extended, uint64_t wc_flags)
{
	struct vmig_cq *cq = calloc(1, sizeof(*cq));
	int ret;

	if (!cq) {
		errno = ENOMEM;
		return NULL;
	}
	cq->ctx = ctx;
	cq->chan = ibch ? vmig_container_of(ibch, struct vmig_chan, ib) : NULL;
	cq->cqe = cqe;
	cq->comp_vector = comp_vector;
	cq->extended = extended;
	cq->wc_flags = wc_flags;
	pthread_mutex_init(&cq->lock, NULL);
	pthread_mutex_lock(&vmig_shim.lock);
	ret = ctx->real ? vmig_cq_create_real(cq) : -EAGAIN;
	if (ret) {
		pthread_mutex_unlock(&vmig_shim.lock);
		free(cq);
		errno = -ret;
		return NULL;
	}
	cq->id = vmig_new_id();
	cq->ib.context = &ctx->vctx.context;
	cq->ib.channel = ibch;
	cq->ib.cq_context = cq_context;
	cq->ib.handle = cq->real->handle;
	cq->ib.cqe = cq->real->cqe;
	pthread_mutex_init(&cq->ib.mutex, NULL);
	pthread_cond_init(&cq->ib.cond, NULL);
	if (vmig_shim.xlate)
		atomic_fetch_or(&cq->slow, VMIG_SLOW_XLATE);
	vmig_list_add_tail(&vmig_shim.cqs, &cq->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	return cq;
}

__attribute__((visibility("default")))
struct ibv_cq *ibv_create_cq(struct ibv_context *ibctx, int cqe,
			     void *cq_context, struct ibv_comp_channel *ch,
			     int comp_vector)
{
	struct vmig_cq *cq = vmig_cq_new(vmig_ctx_of(ibctx), cqe, cq_context,
					 ch, comp_vector, false, 0);

	return cq ? (struct ibv_cq *)&cq->ib : NULL;
}

__attribute__((visibility("default")))
int ibv_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct vmig_cq *cq = (struct vmig_cq *)ibcq;
	int ret;

	pthread_mutex_lock(&cq->lock);
	if (!cq->real) {
		pthread_mutex_unlock(&cq->lock);
		return EAGAIN;
	}
	ret = vmig_real.resize_cq(cq->real, cqe);
	if (!ret) {
		cq->cqe = cqe;
		ibcq->cqe = cq->real->cqe;
	}
	pthread_mutex_unlock(&cq->lock);
	return ret;
}

__attribute__((visibility("default")))
int ibv_destroy_cq(struct ibv_cq *ibcq)
{
	struct vmig_cq *cq = (struct vmig_cq *)ibcq;
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (cq->real) {
		vmig_quiesce_cq(cq, VMIG_SLOW_GONE);
		ret = vmig_real.destroy_cq(cq->real);
		if (ret) {
			atomic_fetch_and(&cq->slow, ~(uint32_t)VMIG_SLOW_GONE);
			pthread_mutex_unlock(&vmig_shim.lock);
			return ret;
		}
	}
	vmig_list_del(&cq->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	free(cq->buf);
	free(cq);
	return 0;
}
