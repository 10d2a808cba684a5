// SPDX-License-Identifier: MIT
/* Address handles: the application's AV holds virtual GIDs; the real AH
 * points where that GID is now. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

/* shim.lock held. */
int vmig_ah_create_real(struct vmig_ah *ah)
{
	struct ibv_ah_attr a = ah->attr;

	if (a.is_global)
		vmig_gid_to_phys(&ah->attr.grh.dgid, &a.grh.dgid);
	ah->real = vmig_real.create_ah(ah->pd->real, &a);
	ah->phys_dgid = a.grh.dgid;
	return ah->real ? 0 : -errno;
}

/* shim.lock held: the GID index the AHs of ctx's port send from, which
 * the datagrams of its UD QPs carry as their source GID; -1: no AH. */
int vmig_ah_sgid_index(struct vmig_ctx *ctx, uint8_t port)
{
	struct vmig_ah *ah;

	vmig_list_for_each(ah, &vmig_shim.ahs, struct vmig_ah, link)
		if (ah->pd->ctx == ctx && ah->attr.is_global &&
		    (ah->attr.port_num ? ah->attr.port_num : 1) == port)
			return ah->attr.grh.sgid_index;
	return -1;
}

/*
 * shim.lock held, every UD QP held (suspended): AHs whose destination
 * moved to another GID get a new real AH. A peer's move changes its GID
 * for an AH this process made long before, which the datagrams held
 * meanwhile and every later one must follow.
 */
void vmig_ah_repoint(void)
{
	struct vmig_ah *ah;

	vmig_list_for_each(ah, &vmig_shim.ahs, struct vmig_ah, link) {
		struct ibv_ah *old = ah->real;
		union ibv_gid phys;

		if (!old || !ah->attr.is_global)
			continue;
		vmig_gid_to_phys(&ah->attr.grh.dgid, &phys);
		if (!memcmp(&phys, &ah->phys_dgid, sizeof(phys)))
			continue;
		if (vmig_ah_create_real(ah)) {
			pr_perror("ah %u: to the peer's new GID", ah->id);
			ah->real = old;
			continue;
		}
		ah->ib.handle = ah->real->handle;
		vmig_real.destroy_ah(old);
		pr_debug("ah %u: repointed to the peer's new GID", ah->id);
	}
}

__attribute__((visibility("default")))
struct ibv_ah *ibv_create_ah(struct ibv_pd *ibpd, struct ibv_ah_attr *attr)
{
	struct vmig_pd *pd = vmig_container_of(ibpd, struct vmig_pd, ib);
	struct vmig_ah *ah = calloc(1, sizeof(*ah));
	int ret;

	if (!ah) {
		errno = ENOMEM;
		return NULL;
	}
	ah->pd = pd;
	ah->attr = *attr;
	pthread_mutex_lock(&vmig_shim.lock);
	ret = pd->real ? vmig_ah_create_real(ah) : -EAGAIN;
	if (ret) {
		pthread_mutex_unlock(&vmig_shim.lock);
		free(ah);
		errno = -ret;
		return NULL;
	}
	ah->id = vmig_new_id();
	ah->ib.context = ibpd->context;
	ah->ib.pd = ibpd;
	ah->ib.handle = ah->real->handle;
	vmig_list_add_tail(&vmig_shim.ahs, &ah->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	return &ah->ib;
}

__attribute__((visibility("default")))
int ibv_destroy_ah(struct ibv_ah *ibah)
{
	struct vmig_ah *ah = vmig_container_of(ibah, struct vmig_ah, ib);
	int ret = 0;

	pthread_mutex_lock(&vmig_shim.lock);
	if (ah->real)
		ret = vmig_real.destroy_ah(ah->real);
	if (!ret)
		vmig_list_del(&ah->link);
	pthread_mutex_unlock(&vmig_shim.lock);
	if (!ret)
		free(ah);
	return ret;
}
