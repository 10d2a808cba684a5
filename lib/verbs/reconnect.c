// SPDX-License-Identifier: MIT
/*
 * RECONNECT: point RC/UC QPs at their peers' current physical endpoints and
 * bring them to RTS with fresh PSNs. The restored side's QPs are in INIT;
 * with reset=true (the peer side of a moved QP) the local QP is first
 * flushed (counting the receives it still held), reset and re-armed with
 * those receives. Each side's rq PSN is the `psn` of its endpoint; its sq
 * PSN is the peer's. The peers' rkey maps become the QPs' rkey translation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"

static const Vmig__Connection *find_peer(const Vmig__Reconnect *rc,
					 struct vmig_qp *qp)
{
	size_t i;

	for (i = 0; i < rc->n_peers; i++) {
		const Vmig__Endpoint *p = rc->peers[i]->local;
		const Vmig__Endpoint *them = rc->peers[i]->remote;

		if (!p || !p->has_virt_qpn || p->virt_qpn != qp->attr.dest_qp_num)
			continue;
		if (p->has_virt_gid && p->virt_gid.len == 16 &&
		    memcmp(p->virt_gid.data, &qp->attr.ah_attr.grh.dgid, 16))
			continue;
		/* the peer's own peer, when given, must be this QP */
		if (them && them->has_virt_qpn &&
		    them->virt_qpn != qp->ib.qp_base.qp_num)
			continue;
		return rc->peers[i];
	}
	return NULL;
}

static uint32_t fresh_psn(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = (uint32_t)vmig_now_us();
	return v & 0xffffff;
}

/* Learns where the remote QP of endpoint p is now: its GID, and its QPN
 * under that GID (a QPN alone names no peer: rqmap.h). */
static void learn(const Vmig__Endpoint *p)
{
	const union ibv_gid *vg, *pg;

	if (!p->has_virt_gid || p->virt_gid.len != 16) {
		pr_warn("peer qpn %#x without a GID: not learned",
			p->virt_qpn);
		return;
	}
	vg = (const union ibv_gid *)p->virt_gid.data;
	pg = p->has_phys_gid && p->phys_gid.len == 16 ?
		(const union ibv_gid *)p->phys_gid.data : vg;
	if (vmig_rgid_set(vg, pg) ||
	    vmig_rqmap_set(&vmig_shim.rqps, vg, p->virt_qpn, pg, p->phys_qpn))
		pr_warn("peer qpn %#x: GID or remote QP map full", p->virt_qpn);
}

static int set_peer(struct vmig_qp *qp, const Vmig__Endpoint *p)
{
	struct vmig_hmap *old = atomic_load(&qp->peer_rkeys), *m = NULL;
	size_t i;

	learn(p);
	if (p->n_rkey_map) {
		m = malloc(sizeof(*m));
		if (!m || vmig_hmap_init(m)) {
			free(m);
			return -ENOMEM;
		}
		for (i = 0; i < p->n_rkey_map; i++)
			vmig_hmap_set(m, p->rkey_map[i]->virt,
				      p->rkey_map[i]->phys);
	}
	/* the QP is quiesced: nobody reads the old map any more */
	atomic_store(&qp->peer_rkeys, m);
	if (old) {
		vmig_hmap_dispose(old);
		free(old);
	}
	qp->peer_phys_qpn = p->phys_qpn;
	qp->peer_known = true;
	return 0;
}

static int to_rtr_rts(struct vmig_qp *qp, uint32_t sq_psn)
{
	struct ibv_qp_attr a = qp->attr;
	int mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
		   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
	int ret;

	a.qp_state = IBV_QPS_RTR;
	a.rq_psn = qp->psn;
	if (qp->init.qp_type == IBV_QPT_RC)
		mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	ret = vmig_qp_modify_real(qp, &a, mask);
	if (ret)
		return -ret;
	a = qp->attr;
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = sq_psn;
	mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	if (qp->init.qp_type == IBV_QPT_RC)
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_MAX_QP_RD_ATOMIC;
	ret = vmig_qp_modify_real(qp, &a, mask);
	return -ret;
}

int vmig_op_reconnect(struct vmig_req *r)
{
	const Vmig__Reconnect *rc = r->in->reconnect;
	bool reset = rc && rc->has_reset && rc->reset;
	struct vmig_qp *qp, **qps;
	Vmig__ReconnectInfo *ri;
	uint64_t t0 = vmig_now_us();
	size_t n = 0, nud = 0, i;
	int ret = 0;

	if (!rc || !rc->n_peers)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				     "reconnect without peers");
	if (reset ? vmig_shim.phase != VMIG_PHASE_SUSPENDED :
		    vmig_shim.phase != VMIG_PHASE_RESTORED)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
				     "reconnect%s in phase %s",
				     reset ? " (reset)" : "",
				     vmig_phase_name(vmig_shim.phase));
	for (i = 0; i < rc->n_peers; i++) {
		const Vmig__Endpoint *p = rc->peers[i]->local;

		if (!p || !p->has_virt_qpn || !p->has_phys_qpn || !p->has_psn)
			return vmig_req_fail(r,
				VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				"peer %zu lacks virt/phys qpn or psn", i);
	}
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
		n++;
	qps = vmig_arena_alloc(r->arena, (n + 1) * sizeof(*qps));
	n = 0;
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		if (!vmig_qp_connected(qp) || !qp->selected ||
		    !vmig_qp_matches(qp, rc->filter) || !find_peer(rc, qp))
			continue;
		qps[n++] = qp;
	}
	/* UD endpoints have no connection: learn where they are now, so
	 * remote_qpn and src_qp translate (datagrams to and from them) */
	for (i = 0; i < rc->n_peers; i++) {
		const Vmig__Endpoint *p = rc->peers[i]->local;

		if (!p->has_qp_type || p->qp_type != IBV_QPT_UD)
			continue;
		learn(p);
		nud++;
	}
	/* the UD QPs are held: their AHs may follow a peer's new GID now */
	if (nud)
		vmig_ah_repoint();
	if (!n && !nud)
		return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_NOT_FOUND, 0,
				     "no suspended connection to these peers");
	if (reset && n) {
		ret = vmig_qp_flush_recvs(qps, n);
		for (i = 0; !ret && i < n; i++) {
			struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

			qps[i]->draining = false;
			if (vmig_real.modify_qp(qps[i]->real, &a,
						IBV_QP_STATE))
				ret = -errno;
			else
				ret = vmig_qp_revive(qps[i]);
			qps[i]->psn = fresh_psn();
		}
		if (ret)
			return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_VERBS, -ret,
					     "reset of the local QPs failed");
		vmig_req_time(r, "reset", vmig_now_us() - t0);
	}
	for (i = 0; i < n; i++) {
		const Vmig__Endpoint *p = find_peer(rc, qps[i])->local;

		pthread_mutex_lock(&qps[i]->lock);
		ret = set_peer(qps[i], p);
		if (!ret)
			ret = to_rtr_rts(qps[i], p->psn);
		pthread_mutex_unlock(&qps[i]->lock);
		if (ret)
			return vmig_req_fail(r, VMIG__ERR_CLASS__ERR_VERBS, -ret,
					     "qp %#x: RTR/RTS against %#x: %s",
					     qps[i]->ib.qp_base.qp_num,
					     p->phys_qpn, strerror(-ret));
	}
	vmig_update_xlate();
	vmig_req_time(r, "connect", vmig_now_us() - t0);
	ri = vmig_arena_alloc(r->arena, sizeof(*ri));
	vmig__reconnect_info__init(ri);
	ri->conns = vmig_arena_alloc(r->arena, n * sizeof(*ri->conns));
	for (i = 0; i < n; i++) {
		Vmig__Connection *c = vmig_arena_alloc(r->arena, sizeof(*c));

		vmig__connection__init(c);
		c->local = vmig_qp_local_ep(r, qps[i]);
		c->remote = vmig_qp_remote_ep(r, qps[i]);
		ri->conns[ri->n_conns++] = c;
	}
	r->out->has_type = 1;
	r->out->type = VMIG__CTL_TYPE__CTL_RECONNECT_INFO;
	r->out->reconnect_info = ri;
	pr_info("reconnected %zu QPs%s, %zu UD peers learned", n,
		reset ? " (reset)" : "", nud);
	return 0;
}
