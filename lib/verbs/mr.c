// SPDX-License-Identifier: MIT
/* Protection domains and memory regions: virtual lkeys and rkeys. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

#undef ibv_reg_mr
#undef ibv_reg_mr_iova

__attribute__((visibility("default")))
struct ibv_pd *ibv_alloc_pd(struct ibv_context *ibctx)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	struct vmig_pd *pd;

	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&vmig_shim.lock);
	if (!ctx->real) {
		pthread_mutex_unlock(&vmig_shim.lock);
		free(pd);
		errno = EAGAIN;
		return NULL;
	}
	pd->real = vmig_real.alloc_pd(ctx->real);
	if (!pd->real) {
		int e = errno;

		pthread_mutex_unlock(&vmig_shim.lock);
		free(pd);
		errno = e;
		return NULL;
	}
	pd->ctx = ctx;
	pd->id = vmig_new_id();
	pd->ib.context = ibctx;
	pd->ib.handle = pd->real->handle;
	vmig_list_add_tail(&vmig_shim.pds, &pd->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	return &pd->ib;
}

__attribute__((visibility("default")))
int ibv_dealloc_pd(struct ibv_pd *ibpd)
{
	struct vmig_pd *pd = vmig_container_of(ibpd, struct vmig_pd, ib);
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (pd->real)
		ret = vmig_real.dealloc_pd(pd->real);
	if (!ret)
		vmig_list_del(&pd->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	if (!ret)
		free(pd);
	return ret;
}

/* A virtual key must be unique among this process's live MRs: a key
 * handed out after a restore may equal an older MR's virtual key. */
static bool key_in_use(uint32_t key, bool rkey)
{
	struct vmig_mr *mr;

	vmig_list_for_each(mr, &vmig_shim.mrs, struct vmig_mr, link)
		if ((rkey ? mr->ib.rkey : mr->ib.lkey) == key)
			return true;
	return false;
}

static uint32_t pick_virt(uint32_t phys, bool rkey)
{
	uint32_t v = phys;

	/* no remote access: rkey 0 on every MR, nothing to translate */
	if (rkey && !phys)
		return 0;
	while (key_in_use(v, rkey))
		v = (v + 0x9e3779b9u) | 1u;
	return v;
}

/* shim.lock held: gives mr its virtual keys and maps them. */
static void mr_set_keys(struct vmig_mr *mr, bool fresh)
{
	if (fresh) {
		mr->ib.lkey = pick_virt(mr->real->lkey, false);
		mr->ib.rkey = pick_virt(mr->real->rkey, true);
	}
	vmig_hmap_set(&vmig_shim.lkeys, mr->ib.lkey, mr->real->lkey);
	if (mr->ib.rkey || mr->real->rkey)
		vmig_hmap_set(&vmig_shim.rkeys, mr->ib.rkey, mr->real->rkey);
}

/*
 * libibverbs' own ibv_reg_mr and ibv_reg_mr_iova call ibv_reg_mr_iova2
 * through its PLT, which the preload binds to the shim: always call the
 * real ibv_reg_mr_iova2 so a real PD never reaches a shim entry point.
 */
static struct ibv_mr *mr_real_reg(struct vmig_mr *mr, void *addr, size_t len)
{
	if (vmig_real.reg_mr_iova2)
		return vmig_real.reg_mr_iova2(mr->pd->real, addr, len, mr->iova,
					      (unsigned int)mr->access);
	if (mr->iova == (uintptr_t)addr)
		return vmig_real.reg_mr(mr->pd->real, addr, len, mr->access);
	errno = EOPNOTSUPP;
	return NULL;
}

/* Used by restore: registers the same range again; shim.lock held. */
int vmig_mr_create_real(struct vmig_mr *mr)
{
	mr->real = mr_real_reg(mr, mr->ib.addr, mr->ib.length);
	if (!mr->real)
		return -errno;
	mr_set_keys(mr, false);
	return 0;
}

static struct ibv_mr *mr_reg(struct ibv_pd *ibpd, void *addr, size_t len,
			     uint64_t iova, int access)
{
	struct vmig_pd *pd = vmig_container_of(ibpd, struct vmig_pd, ib);
	struct vmig_mr *mr;
	int e;

	vmig_shim_ensure();
	mr = calloc(1, sizeof(*mr));
	if (!mr) {
		errno = ENOMEM;
		return NULL;
	}
	mr->pd = pd;
	mr->iova = iova;
	mr->access = access;
	pthread_mutex_lock(&vmig_shim.lock);
	if (!pd->real) {
		e = EAGAIN;
		goto err;
	}
	mr->real = mr_real_reg(mr, addr, len);
	if (!mr->real) {
		e = errno;
		goto err;
	}
	mr->id = vmig_new_id();
	mr->ib.context = pd->ib.context;
	mr->ib.pd = ibpd;
	mr->ib.addr = addr;
	mr->ib.length = len;
	mr->ib.handle = mr->real->handle;
	mr_set_keys(mr, true);
	vmig_list_add_tail(&vmig_shim.mrs, &mr->link);
	if (vmig_hmap_count(&vmig_shim.lkeys))
		vmig_update_xlate();
	pthread_mutex_unlock(&vmig_shim.lock);
	return &mr->ib;
err:
	pthread_mutex_unlock(&vmig_shim.lock);
	free(mr);
	errno = e;
	return NULL;
}

__attribute__((visibility("default")))
struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t len,
			  int access)
{
	return mr_reg(pd, addr, len, (uintptr_t)addr, access);
}

__attribute__((visibility("default")))
struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t len,
			       uint64_t iova, int access)
{
	return mr_reg(pd, addr, len, iova, access);
}

__attribute__((visibility("default")))
struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t len,
				uint64_t iova, unsigned int access)
{
	return mr_reg(pd, addr, len, iova, (int)access);
}

__attribute__((visibility("default")))
int ibv_dereg_mr(struct ibv_mr *ibmr)
{
	struct vmig_mr *mr = vmig_container_of(ibmr, struct vmig_mr, ib);
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (mr->real)
		ret = vmig_real.dereg_mr(mr->real);
	if (!ret) {
		vmig_hmap_set(&vmig_shim.lkeys, mr->ib.lkey, mr->ib.lkey);
		vmig_hmap_set(&vmig_shim.rkeys, mr->ib.rkey, mr->ib.rkey);
		vmig_list_del(&mr->link);
	}
	pthread_mutex_unlock(&vmig_shim.lock);
	if (!ret)
		free(mr);
	return ret;
}

__attribute__((visibility("default")))
int ibv_rereg_mr(struct ibv_mr *ibmr, int flags, struct ibv_pd *ibpd,
		 void *addr, size_t len, int access)
{
	struct vmig_mr *mr = vmig_container_of(ibmr, struct vmig_mr, ib);
	struct vmig_pd *pd = ibpd ?
		vmig_container_of(ibpd, struct vmig_pd, ib) : NULL;
	int ret;

	pthread_mutex_lock(&vmig_shim.lock);
	if (!mr->real) {
		pthread_mutex_unlock(&vmig_shim.lock);
		return IBV_REREG_MR_ERR_INPUT;
	}
	ret = vmig_real.rereg_mr(mr->real, flags,
				 (flags & IBV_REREG_MR_CHANGE_PD) && pd ?
				 pd->real : NULL, addr, len, access);
	if (!ret) {
		if (flags & IBV_REREG_MR_CHANGE_PD && pd) {
			mr->pd = pd;
			mr->ib.pd = ibpd;
		}
		if (flags & IBV_REREG_MR_CHANGE_TRANSLATION) {
			mr->ib.addr = addr;
			mr->ib.length = len;
			mr->iova = (uintptr_t)addr;
		}
		if (flags & IBV_REREG_MR_CHANGE_ACCESS)
			mr->access = access;
		/* the keys may have changed: the old virtual ones stay */
		mr_set_keys(mr, false);
		if (vmig_hmap_count(&vmig_shim.lkeys))
			vmig_update_xlate();
	}
	pthread_mutex_unlock(&vmig_shim.lock);
	return ret;
}
