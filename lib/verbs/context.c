// SPDX-License-Identifier: MIT
/*
 * Devices and contexts: the shadow context with the shim's op tables, port
 * and GID queries answering with virtual values, async events.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

#undef ibv_query_port
#undef ibv_reg_mr
#undef ibv_reg_mr_iova

static int vctx_query_port(struct ibv_context *ibctx, uint8_t port,
			   struct ibv_port_attr *attr, size_t len);
static int vctx_query_device_ex(struct ibv_context *ibctx,
				const struct ibv_query_device_ex_input *in,
				struct ibv_device_attr_ex *attr, size_t len);

static struct ibv_mw *unsup_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type t)
{
	pr_warn("ibv_alloc_mw is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

static struct ibv_srq *unsup_create_srq_ex(struct ibv_context *c,
					   struct ibv_srq_init_attr_ex *a)
{
	pr_warn("ibv_create_srq_ex is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

static struct ibv_qp *unsup_open_qp(struct ibv_context *c,
				    struct ibv_qp_open_attr *a)
{
	pr_warn("ibv_open_qp (XRC) is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

static struct ibv_td *unsup_alloc_td(struct ibv_context *c,
				     struct ibv_td_init_attr *a)
{
	pr_warn("ibv_alloc_td is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

static struct ibv_pd *unsup_alloc_parent_domain(
	struct ibv_context *c, struct ibv_parent_domain_init_attr *a)
{
	pr_warn("ibv_alloc_parent_domain is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

static struct ibv_wq *unsup_create_wq(struct ibv_context *c,
				      struct ibv_wq_init_attr *a)
{
	pr_warn("ibv_create_wq is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

static int unsup_modify_cq(struct ibv_cq *cq, struct ibv_modify_cq_attr *a)
{
	pr_warn("ibv_modify_cq is not supported by vmigrate");
	return EOPNOTSUPP;
}

static struct ibv_flow *unsup_create_flow(struct ibv_qp *qp,
					  struct ibv_flow_attr *a)
{
	pr_warn("ibv_create_flow is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

static struct ibv_mr *unsup_alloc_null_mr(struct ibv_pd *pd)
{
	pr_warn("ibv_alloc_null_mr is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

void vmig_ctx_ops_install(struct vmig_ctx *ctx)
{
	struct verbs_context *v = &ctx->vctx;
	struct ibv_context *c = &v->context;

	c->ops.poll_cq = vmig_poll_cq;
	c->ops.req_notify_cq = vmig_req_notify_cq;
	c->ops.post_send = vmig_post_send;
	c->ops.post_recv = vmig_post_recv;
	c->ops.post_srq_recv = vmig_post_srq_recv;
	c->ops.alloc_mw = unsup_alloc_mw;
	c->abi_compat = __VERBS_ABI_IS_EXTENDED;
	v->sz = sizeof(*v);
	v->query_port = vctx_query_port;
	v->query_device_ex = vctx_query_device_ex;
	v->create_cq_ex = vmig_create_cq_ex;
	v->create_qp_ex = vmig_create_qp_ex;
	v->create_srq_ex = unsup_create_srq_ex;
	v->open_qp = unsup_open_qp;
	v->alloc_td = unsup_alloc_td;
	v->alloc_parent_domain = unsup_alloc_parent_domain;
	v->create_wq = unsup_create_wq;
	v->modify_cq = unsup_modify_cq;
	v->ibv_create_flow = unsup_create_flow;
	v->alloc_null_mr = unsup_alloc_null_mr;
}

/* Opens the real device (by name, or the first one) for ctx. */
int vmig_ctx_open_real(struct vmig_ctx *ctx, const char *devname)
{
	struct ibv_device **list;
	struct ibv_context *real = NULL;
	int i, n = 0, ret = -ENODEV;

	list = vmig_real.get_device_list(&n);
	if (!list)
		return -errno;
	for (i = 0; i < n; i++) {
		const char *name = list[i]->name;

		if (devname && *devname && strcmp(name, devname))
			continue;
		real = vmig_real.open_device(list[i]);
		if (!real) {
			ret = -errno;
			continue;
		}
		snprintf(ctx->devname, sizeof(ctx->devname), "%s", name);
		ctx->node_guid = __builtin_bswap64(
			(uint64_t)ibv_get_device_guid(list[i]));
		break;
	}
	/* Devices stay referenced by this list for the life of the process:
	 * the application may still hold ctx->device after a teardown. */
	if (!real)
		return ret;
	fcntl(real->async_fd, F_SETFL,
	      fcntl(real->async_fd, F_GETFL) | O_NONBLOCK);
	ctx->real = real;
	vmig_doorbell_skip_cancel();	/* the provider is loaded by now */
	ctx->vctx.context.num_comp_vectors = real->num_comp_vectors;
	for (i = 0; i < ctx->ngids; i++) {
		struct vmig_gid_ent *g = &ctx->gids[i];

		if (vmig_real.query_gid(real, g->port, g->index, &g->phys))
			pr_warn("%s: no gid %u/%d", ctx->devname, g->port,
				g->index);
	}
	vmig_events_watch_ctx(ctx);
	return 0;
}

__attribute__((visibility("default")))
struct ibv_context *ibv_open_device(struct ibv_device *dev)
{
	struct vmig_ctx *ctx;
	int p[2];

	vmig_shim_ensure();
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		errno = ENOMEM;
		return NULL;
	}
	ctx->async_rd = ctx->async_wr = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		goto err;
	ctx->async_rd = p[0];
	ctx->async_wr = p[1];
	pthread_mutex_init(&ctx->evlock, NULL);
	ctx->evq_tail = &ctx->evq;
	ctx->vctx.context.device = dev;
	ctx->vctx.context.cmd_fd = -1;
	ctx->vctx.context.async_fd = ctx->async_rd;
	pthread_mutex_init(&ctx->vctx.context.mutex, NULL);
	vmig_ctx_ops_install(ctx);
	if (vmig_events_start())
		pr_warn("no control thread: this process cannot migrate");
	pthread_mutex_lock(&vmig_shim.lock);
	if (vmig_shim.phase == VMIG_PHASE_TORN_DOWN) {
		pthread_mutex_unlock(&vmig_shim.lock);
		errno = EAGAIN;
		goto err;
	}
	{
		int ret = vmig_ctx_open_real(ctx, dev->name);

		if (ret) {
			pthread_mutex_unlock(&vmig_shim.lock);
			errno = -ret;
			goto err;
		}
	}
	ctx->id = vmig_new_id();
	vmig_list_add_tail(&vmig_shim.ctxs, &ctx->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	pr_debug("opened %s as context %u", ctx->devname, ctx->id);
	return &ctx->vctx.context;
err:
	if (ctx->async_rd >= 0)
		close(ctx->async_rd);
	if (ctx->async_wr >= 0)
		close(ctx->async_wr);
	free(ctx);
	return NULL;
}

__attribute__((visibility("default")))
int ibv_close_device(struct ibv_context *ibctx)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	struct vmig_async_ev *e;
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (ctx->real) {
		vmig_events_unwatch_fd(ctx->real->async_fd);
		ret = vmig_real.close_device(ctx->real);
		if (ret) {
			pthread_mutex_unlock(&vmig_shim.lock);
			return ret;
		}
	}
	vmig_list_del(&ctx->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	while ((e = ctx->evq)) {
		ctx->evq = e->next;
		free(e);
	}
	close(ctx->async_rd);
	close(ctx->async_wr);
	free(ctx);
	return 0;
}

__attribute__((visibility("default")))
int ibv_query_device(struct ibv_context *ibctx, struct ibv_device_attr *attr)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);

	if (!ctx->real)
		return EAGAIN;
	return vmig_real.query_device(ctx->real, attr);
}

static int vctx_query_device_ex(struct ibv_context *ibctx,
				const struct ibv_query_device_ex_input *in,
				struct ibv_device_attr_ex *attr, size_t len)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	struct verbs_context *rv;

	if (!ctx->real)
		return EAGAIN;
	rv = verbs_get_ctx_op(ctx->real, query_device_ex);
	if (!rv) {
		memset(attr, 0, len);
		return vmig_real.query_device(ctx->real, &attr->orig_attr);
	}
	return rv->query_device_ex(ctx->real, in, attr, len);
}

static void port_to_virt(struct vmig_ctx *ctx, struct ibv_port_attr *attr)
{
	if (!ctx->virt_lid)
		ctx->virt_lid = attr->lid;
	attr->lid = ctx->virt_lid;
}

static int vctx_query_port(struct ibv_context *ibctx, uint8_t port,
			   struct ibv_port_attr *attr, size_t len)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	struct verbs_context *rv;
	int ret;

	if (!ctx->real)
		return EAGAIN;
	rv = verbs_get_ctx_op(ctx->real, query_port);
	if (rv)
		ret = rv->query_port(ctx->real, port, attr, len);
	else
		ret = vmig_real.query_port(ctx->real, port, attr);
	if (!ret)
		port_to_virt(ctx, attr);
	return ret;
}

/* The classic symbol takes the old, shorter struct. */
__attribute__((visibility("default")))
int ibv_query_port(struct ibv_context *ibctx, uint8_t port,
		   struct _compat_ibv_port_attr *attr)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	int ret;

	if (!ctx->real)
		return EAGAIN;
	ret = vmig_real.query_port(ctx->real, port,
				   (struct ibv_port_attr *)attr);
	if (!ret)
		port_to_virt(ctx, (struct ibv_port_attr *)attr);
	return ret;
}

static struct vmig_gid_ent *gid_ent(struct vmig_ctx *ctx, uint8_t port,
				    int index)
{
	int i;

	for (i = 0; i < ctx->ngids; i++)
		if (ctx->gids[i].port == port && ctx->gids[i].index == index)
			return &ctx->gids[i];
	return NULL;
}

/* The first value read for (port, index) is the virtual GID for good. */
static int gid_virt(struct vmig_ctx *ctx, uint8_t port, int index,
		    union ibv_gid *gid)
{
	struct vmig_gid_ent *g;
	int ret;

	pthread_mutex_lock(&ctx->evlock);
	g = gid_ent(ctx, port, index);
	if (g) {
		*gid = g->virt;
		pthread_mutex_unlock(&ctx->evlock);
		return 0;
	}
	pthread_mutex_unlock(&ctx->evlock);
	if (!ctx->real)
		return -EAGAIN;
	ret = vmig_real.query_gid(ctx->real, port, index, gid);
	if (ret)
		return -errno;
	pthread_mutex_lock(&ctx->evlock);
	if (!gid_ent(ctx, port, index) && ctx->ngids < VMIG_MAX_GIDS &&
	    (gid->global.subnet_prefix || gid->global.interface_id)) {
		g = &ctx->gids[ctx->ngids];
		g->port = port;
		g->index = index;
		g->virt = g->phys = *gid;
		/* the data path reads the table without the lock (ud.c) */
		__atomic_store_n(&ctx->ngids, ctx->ngids + 1,
				 __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&ctx->evlock);
	return 0;
}

__attribute__((visibility("default")))
int ibv_query_gid(struct ibv_context *ibctx, uint8_t port, int index,
		  union ibv_gid *gid)
{
	int ret = gid_virt(vmig_ctx_of(ibctx), port, index, gid);

	if (ret) {
		errno = -ret;
		return -1;
	}
	return 0;
}

__attribute__((visibility("default")))
int _ibv_query_gid_ex(struct ibv_context *ibctx, uint32_t port,
		      uint32_t index, struct ibv_gid_entry *entry,
		      uint32_t flags, size_t len)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	int ret;

	if (!ctx->real)
		return EAGAIN;
	if (!vmig_real.query_gid_ex)
		return EOPNOTSUPP;
	ret = vmig_real.query_gid_ex(ctx->real, port, index, entry, flags,
				     len);
	if (!ret)
		gid_virt(ctx, (uint8_t)port, (int)index, &entry->gid);
	return ret;
}

__attribute__((visibility("default")))
ssize_t _ibv_query_gid_table(struct ibv_context *ibctx,
			     struct ibv_gid_entry *entries, size_t max,
			     uint32_t flags, size_t len)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	ssize_t n, i;

	if (!ctx->real || !vmig_real.query_gid_table)
		return -EOPNOTSUPP;
	n = vmig_real.query_gid_table(ctx->real, entries, max, flags, len);
	for (i = 0; i < n; i++) {
		struct ibv_gid_entry *e = (void *)((char *)entries + i * len);

		gid_virt(ctx, (uint8_t)e->port_num, (int)e->gid_index,
			 &e->gid);
	}
	return n;
}

__attribute__((visibility("default")))
int ibv_query_pkey(struct ibv_context *ibctx, uint8_t port, int index,
		   __be16 *pkey)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);

	if (!ctx->real) {
		errno = EAGAIN;
		return -1;
	}
	return vmig_real.query_pkey(ctx->real, port, index, pkey);
}

__attribute__((visibility("default")))
int ibv_get_pkey_index(struct ibv_context *ibctx, uint8_t port, __be16 pkey)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);

	if (!ctx->real || !vmig_real.get_pkey_index)
		return -EOPNOTSUPP;
	return vmig_real.get_pkey_index(ctx->real, port, pkey);
}

__attribute__((visibility("default")))
int ibv_fork_init(void)
{
	vmig_shim_ensure();
	return vmig_real.fork_init();
}

/* Local (this process's) GIDs: virtual -> physical, for loopback peers. */
void vmig_ctx_gid_phys(struct vmig_ctx *ctx, const union ibv_gid *virt,
		       union ibv_gid *phys)
{
	int i;

	*phys = *virt;
	for (i = 0; i < ctx->ngids; i++)
		if (!memcmp(&ctx->gids[i].virt, virt, sizeof(*virt))) {
			*phys = ctx->gids[i].phys;
			return;
		}
}

/* This process's own GIDs, physical -> virtual: false if phys is not one
 * of them (*virt = *phys then). Lock-free: for the data path. */
bool vmig_ctx_gid_virt(struct vmig_ctx *ctx, const union ibv_gid *phys,
		       union ibv_gid *virt)
{
	int n = __atomic_load_n(&ctx->ngids, __ATOMIC_ACQUIRE), i;

	for (i = 0; i < n; i++)
		if (!memcmp(&ctx->gids[i].phys, phys, sizeof(*phys))) {
			*virt = ctx->gids[i].virt;
			return true;
		}
	*virt = *phys;
	return false;
}

/* shim.lock held: does some GID of this process differ from its virtual
 * value (it moved to another host)? */
bool vmig_gids_moved(void)
{
	struct vmig_ctx *ctx;
	int i;

	vmig_list_for_each(ctx, &vmig_shim.ctxs, struct vmig_ctx, link)
		for (i = 0; i < ctx->ngids; i++)
			if (memcmp(&ctx->gids[i].virt, &ctx->gids[i].phys,
				   sizeof(ctx->gids[i].virt)))
				return true;
	return false;
}

/* shim.lock held. */
void vmig_gid_to_phys(const union ibv_gid *virt, union ibv_gid *phys)
{
	struct vmig_ctx *ctx;
	int i;

	for (i = 0; i < vmig_shim.nrgids; i++)
		if (!memcmp(&vmig_shim.rgids[i].virt, virt, sizeof(*virt))) {
			*phys = vmig_shim.rgids[i].phys;
			return;
		}
	*phys = *virt;
	vmig_list_for_each(ctx, &vmig_shim.ctxs, struct vmig_ctx, link)
		for (i = 0; i < ctx->ngids; i++)
			if (!memcmp(&ctx->gids[i].virt, virt, sizeof(*virt))) {
				*phys = ctx->gids[i].phys;
				return;
			}
}

/* shim.lock held. */
int vmig_rgid_set(const union ibv_gid *virt, const union ibv_gid *phys)
{
	int i;

	for (i = 0; i < vmig_shim.nrgids; i++)
		if (!memcmp(&vmig_shim.rgids[i].virt, virt, sizeof(*virt)))
			break;
	if (!memcmp(virt, phys, sizeof(*virt))) {
		if (i < vmig_shim.nrgids)
			vmig_shim.rgids[i] =
				vmig_shim.rgids[--vmig_shim.nrgids];
		return 0;
	}
	if (i == vmig_shim.nrgids) {
		if (i == (int)(sizeof(vmig_shim.rgids) /
			       sizeof(vmig_shim.rgids[0])))
			return -ENOSPC;
		vmig_shim.nrgids++;
	}
	vmig_shim.rgids[i].virt = *virt;
	vmig_shim.rgids[i].phys = *phys;
	return 0;
}

/* Async events: the shim thread queues them (shadow pointers) and writes a
 * byte to the shadow async fd. */
__attribute__((visibility("default")))
int ibv_get_async_event(struct ibv_context *ibctx, struct ibv_async_event *ev)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	struct vmig_async_ev *e;
	char b;

	for (;;) {
		ssize_t r = read(ctx->async_rd, &b, 1);

		if (r == 1)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		return -1;
	}
	pthread_mutex_lock(&ctx->evlock);
	e = ctx->evq;
	if (e) {
		ctx->evq = e->next;
		if (!ctx->evq)
			ctx->evq_tail = &ctx->evq;
	}
	pthread_mutex_unlock(&ctx->evlock);
	if (!e) {
		errno = EAGAIN;
		return -1;
	}
	*ev = e->ev;
	free(e);
	return 0;
}

/* The shim acked the real event when it queued it. */
__attribute__((visibility("default")))
void ibv_ack_async_event(struct ibv_async_event *ev)
{
}

__attribute__((visibility("default")))
int ibv_attach_mcast(struct ibv_qp *qp, const union ibv_gid *gid, uint16_t lid)
{
	pr_warn("multicast is not supported by vmigrate");
	return EOPNOTSUPP;
}

__attribute__((visibility("default")))
int ibv_detach_mcast(struct ibv_qp *qp, const union ibv_gid *gid, uint16_t lid)
{
	return EOPNOTSUPP;
}

__attribute__((visibility("default")))
struct ibv_mr *ibv_reg_dmabuf_mr(struct ibv_pd *pd, uint64_t offset,
				 size_t length, uint64_t iova, int fd,
				 int access)
{
	pr_warn("ibv_reg_dmabuf_mr is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

__attribute__((visibility("default")))
struct ibv_context *ibv_import_device(int cmd_fd)
{
	pr_warn("ibv_import_device is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

__attribute__((visibility("default")))
struct ibv_pd *ibv_import_pd(struct ibv_context *c, uint32_t h)
{
	errno = EOPNOTSUPP;
	return NULL;
}

__attribute__((visibility("default")))
struct ibv_mr *ibv_import_mr(struct ibv_pd *pd, uint32_t h)
{
	errno = EOPNOTSUPP;
	return NULL;
}

__attribute__((visibility("default")))
int ibv_resolve_eth_l2_from_gid(struct ibv_context *ibctx,
				struct ibv_ah_attr *attr, uint8_t eth_mac[6],
				uint16_t *vid)
{
	struct vmig_ctx *ctx = vmig_ctx_of(ibctx);
	struct ibv_ah_attr a = *attr;

	if (!ctx->real || !vmig_real.resolve_eth_l2_from_gid)
		return EOPNOTSUPP;
	pthread_mutex_lock(&vmig_shim.lock);
	vmig_gid_to_phys(&attr->grh.dgid, &a.grh.dgid);
	pthread_mutex_unlock(&vmig_shim.lock);
	return vmig_real.resolve_eth_l2_from_gid(ctx->real, &a, eth_mac, vid);
}

__attribute__((visibility("default")))
struct ibv_ah *ibv_create_ah_from_wc(struct ibv_pd *pd, struct ibv_wc *wc,
				     struct ibv_grh *grh, uint8_t port)
{
	pr_warn("ibv_create_ah_from_wc is not supported by vmigrate");
	errno = EOPNOTSUPP;
	return NULL;
}

__attribute__((visibility("default")))
int ibv_init_ah_from_wc(struct ibv_context *c, uint8_t port,
			struct ibv_wc *wc, struct ibv_grh *grh,
			struct ibv_ah_attr *ah_attr)
{
	pr_warn("ibv_init_ah_from_wc is not supported by vmigrate");
	return EOPNOTSUPP;
}
