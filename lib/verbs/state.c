// SPDX-License-Identifier: MIT
/* STATE: the endpoints of this process and their peers, virtual and
 * physical, and the connection filter the other requests use. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "shim: "
#include "ctl_ops.h"
#include "log.h"

static ProtobufCBinaryData gid_bytes(struct vmig_req *r,
				     const union ibv_gid *g)
{
	ProtobufCBinaryData b;

	b.len = sizeof(*g);
	b.data = vmig_arena_alloc(r->arena, sizeof(*g));
	memcpy(b.data, g, sizeof(*g));
	return b;
}

/* The GID the QP sends from (its AV's sgid_index), virtual and physical. */
static void qp_local_gid(struct vmig_qp *qp, union ibv_gid *virt,
			 union ibv_gid *phys)
{
	int idx = qp->attr.ah_attr.grh.sgid_index, i;
	uint8_t port = qp->attr.port_num ? qp->attr.port_num : 1;

	/* a UD QP has no AV: its datagrams carry its AHs' source GID, which
	 * its peers know it by (ud.c) */
	if (qp->init.qp_type == IBV_QPT_UD) {
		i = vmig_ah_sgid_index(qp->ctx, port);
		if (i >= 0)
			idx = i;
	}
	memset(virt, 0, sizeof(*virt));
	memset(phys, 0, sizeof(*phys));
	for (i = 0; i < qp->ctx->ngids; i++)
		if (qp->ctx->gids[i].port == port &&
		    qp->ctx->gids[i].index == idx) {
			*virt = qp->ctx->gids[i].virt;
			*phys = qp->ctx->gids[i].phys;
			return;
		}
	if (qp->ctx->ngids) {
		*virt = qp->ctx->gids[0].virt;
		*phys = qp->ctx->gids[0].phys;
	} else if (qp->ctx->real &&
		   !vmig_real.query_gid(qp->ctx->real, port, idx, phys)) {
		*virt = *phys;
	}
}

static void add_rkey(uint32_t virt, uint32_t phys, void *arg)
{
	struct {
		struct vmig_req *r;
		Vmig__Endpoint *ep;
	} *a = arg;
	Vmig__HandleMap *m = vmig_arena_alloc(a->r->arena, sizeof(*m));
	Vmig__HandleMap **v = vmig_arena_alloc(a->r->arena,
					       (a->ep->n_rkey_map + 1) *
					       sizeof(*v));

	vmig__handle_map__init(m);
	m->has_virt = m->has_phys = 1;
	m->virt = virt;
	m->phys = phys;
	if (a->ep->n_rkey_map)
		memcpy(v, a->ep->rkey_map, a->ep->n_rkey_map * sizeof(*v));
	v[a->ep->n_rkey_map++] = m;
	a->ep->rkey_map = v;
}

Vmig__Endpoint *vmig_qp_local_ep(struct vmig_req *r, struct vmig_qp *qp)
{
	Vmig__Endpoint *ep = vmig_arena_alloc(r->arena, sizeof(*ep));
	union ibv_gid virt, phys;
	struct {
		struct vmig_req *r;
		Vmig__Endpoint *ep;
	} a = { r, ep };

	vmig__endpoint__init(ep);
	qp_local_gid(qp, &virt, &phys);
	ep->has_virt_qpn = ep->has_phys_qpn = 1;
	ep->virt_qpn = qp->ib.qp_base.qp_num;
	ep->phys_qpn = qp->phys_qpn;
	ep->has_virt_gid = ep->has_phys_gid = 1;
	ep->virt_gid = gid_bytes(r, &virt);
	ep->phys_gid = gid_bytes(r, &phys);
	ep->has_qp_type = ep->has_psn = ep->has_state = ep->has_pid = 1;
	ep->qp_type = qp->init.qp_type;
	ep->psn = qp->psn;
	ep->state = qp->state;
	ep->pid = (uint32_t)getpid();
	ep->guest = vmig_shim.guest;
	ep->has_qp_id = 1;
	ep->qp_id = qp->id;
	vmig_hmap_foreach(&vmig_shim.rkeys, add_rkey, &a);
	return ep;
}

bool vmig_qp_connected(struct vmig_qp *qp)
{
	return qp->init.qp_type != IBV_QPT_UD &&
	       (qp->attr_mask & IBV_QP_DEST_QPN);
}

Vmig__Endpoint *vmig_qp_remote_ep(struct vmig_req *r, struct vmig_qp *qp)
{
	Vmig__Endpoint *ep;
	union ibv_gid phys;
	uint32_t pq;

	if (!vmig_qp_connected(qp))
		return NULL;
	ep = vmig_arena_alloc(r->arena, sizeof(*ep));
	vmig__endpoint__init(ep);
	ep->has_virt_qpn = ep->has_phys_qpn = 1;
	ep->virt_qpn = qp->attr.dest_qp_num;
	/* the peer this QP learned first: QPNs alone may collide */
	if (qp->peer_known)
		pq = qp->peer_phys_qpn;
	else if (!vmig_rqmap_to_phys(&vmig_shim.rqps,
				     &qp->attr.ah_attr.grh.dgid, ep->virt_qpn,
				     NULL, &pq))
		pq = ep->virt_qpn;
	ep->phys_qpn = pq;
	vmig_gid_to_phys(&qp->attr.ah_attr.grh.dgid, &phys);
	ep->has_virt_gid = ep->has_phys_gid = 1;
	ep->virt_gid = gid_bytes(r, &qp->attr.ah_attr.grh.dgid);
	ep->phys_gid = gid_bytes(r, &phys);
	ep->has_qp_type = 1;
	ep->qp_type = qp->init.qp_type;
	return ep;
}

/* Empty filter: every QP. Otherwise QPs whose peer is one of the remotes
 * (virtual QPN, and virtual GID when given). */
bool vmig_qp_matches(struct vmig_qp *qp, const Vmig__ConnFilter *f)
{
	size_t i;

	if (!f || !f->n_remote)
		return true;
	if (!vmig_qp_connected(qp))
		return false;
	for (i = 0; i < f->n_remote; i++) {
		const Vmig__Endpoint *e = f->remote[i];

		if (!e->has_virt_qpn || e->virt_qpn != qp->attr.dest_qp_num)
			continue;
		if (e->has_virt_gid && e->virt_gid.len == 16 &&
		    memcmp(e->virt_gid.data, &qp->attr.ah_attr.grh.dgid, 16))
			continue;
		return true;
	}
	return false;
}

int vmig_fill_conns(struct vmig_req *r, Vmig__Connection ***conns,
		    size_t *n, bool selected_only)
{
	struct vmig_qp *qp;
	size_t cnt = 0, i = 0;

	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link)
		if (!selected_only || qp->selected)
			cnt++;
	*conns = vmig_arena_alloc(r->arena, cnt * sizeof(**conns));
	vmig_list_for_each(qp, &vmig_shim.qps, struct vmig_qp, link) {
		Vmig__Connection *c;

		if (selected_only && !qp->selected)
			continue;
		c = vmig_arena_alloc(r->arena, sizeof(*c));
		vmig__connection__init(c);
		c->local = vmig_qp_local_ep(r, qp);
		c->remote = vmig_qp_remote_ep(r, qp);
		(*conns)[i++] = c;
	}
	*n = i;
	return 0;
}

struct keys_acc {
	struct vmig_req *r;
	Vmig__HandleMap ***v;
	size_t *n;
};

static void key_add(uint32_t virt, uint32_t phys, void *arg)
{
	struct keys_acc *a = arg;
	Vmig__HandleMap *m = vmig_arena_alloc(a->r->arena, sizeof(*m));
	Vmig__HandleMap **nv = vmig_arena_alloc(a->r->arena,
						(*a->n + 1) * sizeof(*nv));

	vmig__handle_map__init(m);
	m->has_virt = m->has_phys = 1;
	m->virt = virt;
	m->phys = phys;
	if (*a->n)
		memcpy(nv, *a->v, *a->n * sizeof(*nv));
	nv[(*a->n)++] = m;
	*a->v = nv;
}

int vmig_op_state(struct vmig_req *r)
{
	Vmig__State *s = vmig_arena_alloc(r->arena, sizeof(*s));
	struct vmig_mr *mr;
	struct vmig_cq *cq;

	vmig__state__init(s);
	s->has_pid = 1;
	s->pid = (uint32_t)getpid();
	s->guest = vmig_shim.guest;
	s->phase = (char *)vmig_phase_name(vmig_shim.phase);
	vmig_fill_conns(r, &s->conns, &s->n_conns, false);
	s->has_num_qps = s->has_num_mrs = s->has_num_cqs = 1;
	s->num_qps = (uint32_t)s->n_conns;
	vmig_list_for_each(mr, &vmig_shim.mrs, struct vmig_mr, link)
		s->num_mrs++;
	vmig_list_for_each(cq, &vmig_shim.cqs, struct vmig_cq, link)
		s->num_cqs++;
	{
		struct keys_acc l = { r, &s->lkey_map, &s->n_lkey_map };
		struct keys_acc k = { r, &s->rkey_map, &s->n_rkey_map };

		vmig_hmap_foreach(&vmig_shim.lkeys, key_add, &l);
		vmig_hmap_foreach(&vmig_shim.rkeys, key_add, &k);
	}
	r->out->has_type = 1;
	r->out->type = VMIG__CTL_TYPE__CTL_STATE;
	r->out->state = s;
	return 0;
}
