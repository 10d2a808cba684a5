// SPDX-License-Identifier: MIT
/* Shared receive queues: the ring of posted receives survives teardown. */
#include <errno.h>
#include <stdlib.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

/* shim.lock held. */
int vmig_srq_create_real(struct vmig_srq *srq)
{
	struct ibv_srq_init_attr a = {
		.srq_context = srq,
		.attr = srq->attr,
	};

	srq->real = vmig_real.create_srq(srq->pd->real, &a);
	return srq->real ? 0 : -errno;
}

__attribute__((visibility("default")))
struct ibv_srq *ibv_create_srq(struct ibv_pd *ibpd,
			       struct ibv_srq_init_attr *attr)
{
	struct vmig_pd *pd = vmig_container_of(ibpd, struct vmig_pd, ib);
	struct vmig_srq *srq = calloc(1, sizeof(*srq));
	int ret;

	if (!srq) {
		errno = ENOMEM;
		return NULL;
	}
	srq->pd = pd;
	srq->attr = attr->attr;
	pthread_mutex_init(&srq->lock, NULL);
	pthread_mutex_lock(&vmig_shim.lock);
	ret = pd->real ? vmig_srq_create_real(srq) : -EAGAIN;
	if (!ret) {
		/* the real queue may be larger than asked */
		vmig_real.query_srq(srq->real, &srq->attr);
		attr->attr.max_wr = srq->attr.max_wr;
		attr->attr.max_sge = srq->attr.max_sge;
		ret = vmig_rring_init(&srq->ring, srq->attr.max_wr,
				      srq->attr.max_sge);
		if (ret)
			vmig_real.destroy_srq(srq->real);
	}
	if (ret) {
		pthread_mutex_unlock(&vmig_shim.lock);
		free(srq);
		errno = -ret;
		return NULL;
	}
	srq->id = vmig_new_id();
	srq->ib.context = pd->ib.context;
	srq->ib.srq_context = attr->srq_context;
	srq->ib.pd = ibpd;
	srq->ib.handle = srq->real->handle;
	pthread_mutex_init(&srq->ib.mutex, NULL);
	pthread_cond_init(&srq->ib.cond, NULL);
	vmig_list_add_tail(&vmig_shim.srqs, &srq->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	return &srq->ib;
}

__attribute__((visibility("default")))
int ibv_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr, int mask)
{
	struct vmig_srq *srq = vmig_container_of(ibsrq, struct vmig_srq, ib);
	int ret = 0;

	pthread_mutex_lock(&srq->lock);
	if (srq->real)
		ret = vmig_real.modify_srq(srq->real, attr, mask);
	if (!ret && (mask & IBV_SRQ_LIMIT))
		srq->attr.srq_limit = attr->srq_limit;
	pthread_mutex_unlock(&srq->lock);
	return ret;
}

__attribute__((visibility("default")))
int ibv_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	struct vmig_srq *srq = vmig_container_of(ibsrq, struct vmig_srq, ib);
	int ret = 0;

	pthread_mutex_lock(&srq->lock);
	if (srq->real)
		ret = vmig_real.query_srq(srq->real, attr);
	else
		*attr = srq->attr;
	pthread_mutex_unlock(&srq->lock);
	return ret;
}

__attribute__((visibility("default")))
int ibv_destroy_srq(struct ibv_srq *ibsrq)
{
	struct vmig_srq *srq = vmig_container_of(ibsrq, struct vmig_srq, ib);
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (srq->real)
		ret = vmig_real.destroy_srq(srq->real);
	if (!ret)
		vmig_list_del(&srq->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	if (ret)
		return ret;
	vmig_rring_dispose(&srq->ring);
	free(srq);
	return 0;
}
