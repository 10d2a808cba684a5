/* SPDX-License-Identifier: MIT */
/*
 * The verbs shim's object model. The application holds SHADOW objects whose
 * first member is the libibverbs struct it expects (the shadow context
 * carries the shim's op tables); the real libibverbs objects live inside and
 * are destroyed and recreated across a migration while the shadows, and the
 * virtual handles in them, stay. Every shadow object is on a list of the
 * process-wide struct vmig_shim under shim.lock, with a stable id that the
 * verbs image uses.
 *
 * Registering objects created elsewhere (librdmacm): rdma_create_qp() calls
 * ibv_create_qp() on a PD of a context that librdmacm opened through
 * ibv_open_device(), both interposed, so its QPs are shadow QPs already;
 * vmig_qp_from_ibv() maps any ibv_qp the application holds to its shadow
 * (NULL if it is not one) and vmig_qp_mark_rdma_cm() tags it so that
 * capture records from_rdma_cm.
 */
#ifndef VMIG_VERBS_SHIM_H
#define VMIG_VERBS_SHIM_H

#include <infiniband/verbs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "rqmap.h"
#include "verbs_image.pb-c.h"
#include "wrq.h"

#define vmig_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct vmig_list {
	struct vmig_list *next, *prev;
};

static inline void vmig_list_init(struct vmig_list *l)
{
	l->next = l->prev = l;
}

static inline void vmig_list_add_tail(struct vmig_list *l, struct vmig_list *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}

static inline void vmig_list_del(struct vmig_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

#define vmig_list_for_each(pos, head, type, member)                          \
	for (pos = vmig_container_of((head)->next, type, member);            \
	     &pos->member != (head);                                          \
	     pos = vmig_container_of(pos->member.next, type, member))

/* Bits of the `slow` word that sends the data path off the fast path. */
enum {
	VMIG_SLOW_HELD = 1u << 0,	/* QP: posts are held (suspended) */
	VMIG_SLOW_XLATE = 1u << 1,	/* handles need translating */
	VMIG_SLOW_GONE = 1u << 2,	/* no real object (torn down) */
	VMIG_SLOW_BUF = 1u << 3,	/* CQ: buffered completions first */
	VMIG_SLOW_SRQ = 1u << 4,	/* CQ: count SRQ receive completions */
	VMIG_SLOW_FENCE = 1u << 5,	/* CQ: the shim polls it (flush) */
	VMIG_SLOW_MARK = 1u << 6,	/* CQ: drain markers to filter out */
};

/* The phases of a shim; transitions only through vmig_set_phase(). */
enum vmig_phase {
	VMIG_PHASE_RUNNING,
	VMIG_PHASE_SUSPENDED,
	VMIG_PHASE_TORN_DOWN,
	VMIG_PHASE_RESTORED,
};

struct vmig_gid_ent {
	uint8_t port;
	int index;
	union ibv_gid virt, phys;
};

#define VMIG_MAX_GIDS 8

struct vmig_async_ev {
	struct vmig_async_ev *next;
	struct ibv_async_event ev;	/* with shadow element pointers */
};

struct vmig_ctx {
	struct vmig_list link;
	uint32_t id;
	struct ibv_context *real;	/* NULL when torn down */
	char devname[IBV_SYSFS_NAME_MAX];
	uint64_t node_guid;
	int async_rd, async_wr;		/* shim-owned async event pipe */
	pthread_mutex_t evlock;
	struct vmig_async_ev *evq, **evq_tail;
	int ngids;
	struct vmig_gid_ent gids[VMIG_MAX_GIDS];
	uint16_t virt_lid;
	struct verbs_context vctx;	/* must be last: context is last */
};

struct vmig_pd {
	struct ibv_pd ib;
	struct vmig_list link;
	uint32_t id;
	struct ibv_pd *real;
	struct vmig_ctx *ctx;
};

struct vmig_mr {
	struct ibv_mr ib;		/* lkey/rkey: virtual */
	struct vmig_list link;
	uint32_t id;
	struct ibv_mr *real;
	struct vmig_pd *pd;
	uint64_t iova;
	int access;
};

struct vmig_chan {
	struct ibv_comp_channel ib;	/* fd: read end of a shim pipe */
	struct vmig_list link;
	uint32_t id;
	struct ibv_comp_channel *real;
	int wfd;
	struct vmig_ctx *ctx;
};

struct vmig_cq {
	struct ibv_cq_ex ib;		/* starts with the ibv_cq layout */
	_Atomic uint32_t slow;
	_Atomic int inflight;
	struct ibv_cq *real;
	struct ibv_cq_ex *realx;	/* for ibv_create_cq_ex CQs */
	struct vmig_list link;
	uint32_t id;
	struct vmig_ctx *ctx;
	struct vmig_chan *chan;
	int cqe, comp_vector;
	bool extended, armed, solicited;
	uint64_t wc_flags;
	pthread_mutex_t lock;
	/* completions drained by the shim, handed out first */
	struct ibv_wc *buf;
	uint32_t buf_head, buf_n, buf_cap;
	/* ibv_cq_ex polling state when serving from buf */
	bool ex_from_buf;
	struct ibv_wc ex_cur;
	struct vmig_srq *srq_count;	/* SRQ whose receives complete here */
	/* QPs whose drain marker (a signaled empty RDMA WRITE) completes here */
	struct vmig_qp *mark_qps[16];
	int n_mark;
	int mark_pending;	/* post_marker between quiesce and post */
	/* UD QPs receiving here: their receives are counted (ud.c) */
	struct vmig_qp *udrq[8];
	_Atomic int n_udrq;
	uint32_t ex_src_qp;	/* read_src_qp of the current ex completion */
	bool ex_src_set;
};

struct vmig_srq {
	struct ibv_srq ib;
	struct vmig_list link;
	uint32_t id;
	struct ibv_srq *real;
	struct vmig_pd *pd;
	struct ibv_srq_attr attr;
	pthread_mutex_t lock;
	struct vmig_rring ring;
	uint32_t outstanding;		/* valid while torn down */
};

struct vmig_ah {
	struct ibv_ah ib;
	struct vmig_list link;
	uint32_t id;
	struct ibv_ah *real;
	struct vmig_pd *pd;
	struct ibv_ah_attr attr;	/* virtual dgid */
	union ibv_gid phys_dgid;	/* the real AH's */
};

struct vmig_qp {
	struct ibv_qp_ex ib;		/* qp_base.qp_num: virtual */
	_Atomic uint32_t slow;
	_Atomic int inflight;
	struct ibv_qp *real;
	struct ibv_qp_ex *realx;
	struct vmig_hmap *_Atomic peer_rkeys;	/* NULL: identity */
	struct vmig_list link;
	uint32_t id;
	struct vmig_ctx *ctx;
	struct vmig_pd *pd;
	struct vmig_cq *scq, *rcq;
	struct vmig_srq *srq;
	struct ibv_qp_init_attr_ex init;	/* shadow pointers, real caps */
	bool is_ex, from_rdma_cm;
	uint32_t phys_qpn;
	/* attributes the application set, virtual values */
	struct ibv_qp_attr attr;
	int attr_mask;
	enum ibv_qp_state state;
	uint32_t psn;			/* our rq psn after a reconnect */
	uint32_t peer_phys_qpn;
	union ibv_gid peer_phys_gid;
	bool peer_known;
	pthread_mutex_t lock;
	struct vmig_rring ring;
	uint32_t outstanding;		/* receives to re-post (torn down) */
	bool marker_seen, marker_posted;	/* flush in progress */
	struct vmig_wrq held;
	/* suspend */
	bool selected, drained, draining;
	bool marker_out;		/* drain marker posted, not completed */
	struct ibv_ah *marker_ah;	/* real AH to ourselves (UD marker) */
	int drain_status;		/* the marker's wc status */
	/* ibv_wr_* while held: the WR being built, then queued */
	bool wr_held;
	struct vmig_wrq wr_build;
	struct ibv_send_wr wr_cur;
	struct ibv_sge wr_sge[16];
	int wr_err;
};

struct vmig_shim {
	pthread_mutex_t lock;		/* lists, phase, control operations */
	uint32_t next_id;
	enum vmig_phase phase;
	struct vmig_list ctxs, pds, mrs, chans, cqs, srqs, qps, ahs;
	/* local: virtual -> physical */
	struct vmig_hmap lkeys, rkeys;
	/* local: physical QPN -> virtual */
	struct vmig_hmap qpn_p2v;
	/* remote QPs by (GID, QPN), virtual <-> physical (UD, dest_qp_num) */
	struct vmig_rqmap rqps;
	/* remote GIDs: virtual -> physical (mutex, control path only) */
	int nrgids;
	struct { union ibv_gid virt, phys; } rgids[64];
	bool xlate;			/* some map is not the identity */
	char guest[128];
	char ctl_path[256];
	char run_dir[200];
	int epfd;
	pthread_t thread;
	bool started;
	Vmig__VerbsImage *image;	/* last capture */
	void *image_cqs_unused;
};

extern struct vmig_shim vmig_shim;

/* symbols.c: libibverbs' own entry points */
struct vmig_real {
	struct ibv_device **(*get_device_list)(int *);
	void (*free_device_list)(struct ibv_device **);
	struct ibv_context *(*open_device)(struct ibv_device *);
	int (*close_device)(struct ibv_context *);
	int (*query_device)(struct ibv_context *, struct ibv_device_attr *);
	int (*query_port)(struct ibv_context *, uint8_t, struct ibv_port_attr *);
	int (*query_gid)(struct ibv_context *, uint8_t, int, union ibv_gid *);
	int (*query_gid_ex)(struct ibv_context *, uint32_t, uint32_t,
			    struct ibv_gid_entry *, uint32_t, size_t);
	ssize_t (*query_gid_table)(struct ibv_context *, struct ibv_gid_entry *,
				   size_t, uint32_t, size_t);
	int (*query_pkey)(struct ibv_context *, uint8_t, int, __be16 *);
	int (*get_pkey_index)(struct ibv_context *, uint8_t, __be16);
	struct ibv_pd *(*alloc_pd)(struct ibv_context *);
	int (*dealloc_pd)(struct ibv_pd *);
	struct ibv_mr *(*reg_mr)(struct ibv_pd *, void *, size_t, int);
	struct ibv_mr *(*reg_mr_iova)(struct ibv_pd *, void *, size_t,
				      uint64_t, int);
	struct ibv_mr *(*reg_mr_iova2)(struct ibv_pd *, void *, size_t,
				       uint64_t, unsigned int);
	int (*rereg_mr)(struct ibv_mr *, int, struct ibv_pd *, void *, size_t,
			int);
	int (*dereg_mr)(struct ibv_mr *);
	struct ibv_comp_channel *(*create_comp_channel)(struct ibv_context *);
	int (*destroy_comp_channel)(struct ibv_comp_channel *);
	struct ibv_cq *(*create_cq)(struct ibv_context *, int, void *,
				    struct ibv_comp_channel *, int);
	int (*resize_cq)(struct ibv_cq *, int);
	int (*destroy_cq)(struct ibv_cq *);
	int (*get_cq_event)(struct ibv_comp_channel *, struct ibv_cq **,
			    void **);
	void (*ack_cq_events)(struct ibv_cq *, unsigned int);
	struct ibv_srq *(*create_srq)(struct ibv_pd *, struct ibv_srq_init_attr *);
	int (*modify_srq)(struct ibv_srq *, struct ibv_srq_attr *, int);
	int (*query_srq)(struct ibv_srq *, struct ibv_srq_attr *);
	int (*destroy_srq)(struct ibv_srq *);
	struct ibv_qp *(*create_qp)(struct ibv_pd *, struct ibv_qp_init_attr *);
	int (*modify_qp)(struct ibv_qp *, struct ibv_qp_attr *, int);
	int (*query_qp)(struct ibv_qp *, struct ibv_qp_attr *, int,
			struct ibv_qp_init_attr *);
	int (*destroy_qp)(struct ibv_qp *);
	struct ibv_qp_ex *(*qp_to_qp_ex)(struct ibv_qp *);
	struct ibv_ah *(*create_ah)(struct ibv_pd *, struct ibv_ah_attr *);
	int (*destroy_ah)(struct ibv_ah *);
	int (*get_async_event)(struct ibv_context *, struct ibv_async_event *);
	void (*ack_async_event)(struct ibv_async_event *);
	int (*fork_init)(void);
	int (*query_ece)(struct ibv_qp *, struct ibv_ece *);
	int (*set_ece)(struct ibv_qp *, struct ibv_ece *);
	int (*query_qp_data_in_order)(struct ibv_qp *, enum ibv_wr_opcode,
				      uint32_t);
	int (*resolve_eth_l2_from_gid)(struct ibv_context *,
				       struct ibv_ah_attr *, uint8_t *,
				       uint16_t *);
};

extern struct vmig_real vmig_real;
int vmig_real_resolve(void);

/* init.c */
void vmig_shim_ensure(void);
uint32_t vmig_new_id(void);
const char *vmig_phase_name(enum vmig_phase p);
void vmig_set_phase(enum vmig_phase old, enum vmig_phase next);
void vmig_update_xlate(void);

/* context.c */
void vmig_ctx_ops_install(struct vmig_ctx *ctx);
int vmig_ctx_open_real(struct vmig_ctx *ctx, const char *devname);
void vmig_ctx_gid_phys(struct vmig_ctx *ctx, const union ibv_gid *virt,
		       union ibv_gid *phys);
void vmig_gid_to_phys(const union ibv_gid *virt, union ibv_gid *phys);
int vmig_rgid_set(const union ibv_gid *virt, const union ibv_gid *phys);
bool vmig_ctx_gid_virt(struct vmig_ctx *ctx, const union ibv_gid *phys,
		       union ibv_gid *virt);
bool vmig_gids_moved(void);

static inline struct vmig_ctx *vmig_ctx_of(struct ibv_context *ibctx)
{
	return vmig_container_of(ibctx, struct vmig_ctx, vctx.context);
}

/* datapath.c: the ops the shadow context carries */
int vmig_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
		   struct ibv_send_wr **bad);
int vmig_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
		   struct ibv_recv_wr **bad);
int vmig_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr,
		       struct ibv_recv_wr **bad);
int vmig_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
int vmig_req_notify_cq(struct ibv_cq *cq, int solicited);
/* Posts to the real QP with translation; lock held or quiesced. */
int vmig_post_send_real(struct vmig_qp *qp, struct ibv_send_wr *wr,
			struct ibv_send_wr **bad);
int vmig_post_recv_real(struct ibv_qp *real, struct ibv_srq *rsrq,
			struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);
void vmig_wc_to_virt(struct vmig_cq *cq, struct ibv_wc *wc);
void vmig_quiesce_qp(struct vmig_qp *qp, uint32_t bit);
void vmig_quiesce_cq(struct vmig_cq *cq, uint32_t bit);
int vmig_cq_buffer(struct vmig_cq *cq, const struct ibv_wc *wc);
int vmig_cq_drain(struct vmig_cq *cq);
/* doorbell.c: rings a QP's send doorbell through ioctl */
int vmig_doorbell(struct ibv_qp *real);
/* doorbell_write.c: the providers' doorbell write() as a bare syscall */
void vmig_doorbell_skip_cancel(void);

/* wr_id of the shim's drain marker (filtered from the application's CQ) */
#define VMIG_DRAIN_MARKER 0x766d69676472616eull

/* qpx.c / cqx.c: extended APIs */
void vmig_qpx_install(struct vmig_qp *qp);
void vmig_cqx_install(struct vmig_cq *cq);
struct ibv_qp *vmig_create_qp_ex(struct ibv_context *ibctx,
				 struct ibv_qp_init_attr_ex *attr);
struct ibv_cq_ex *vmig_create_cq_ex(struct ibv_context *ibctx,
				    struct ibv_cq_init_attr_ex *attr);

/* qp.c */
struct vmig_qp *vmig_qp_from_ibv(struct ibv_qp *qp);
void vmig_qp_mark_rdma_cm(struct ibv_qp *qp);
int vmig_qp_create_real(struct vmig_qp *qp);
int vmig_qp_to_init(struct vmig_qp *qp);
int vmig_qp_revive(struct vmig_qp *qp);
void vmig_qp_set_phys(struct vmig_qp *qp, uint32_t phys);
int vmig_qp_modify_real(struct vmig_qp *qp, struct ibv_qp_attr *attr,
			int mask);

/* mr.c */
int vmig_mr_create_real(struct vmig_mr *mr);

/* srq.c, ah.c */
int vmig_srq_create_real(struct vmig_srq *srq);
int vmig_ah_create_real(struct vmig_ah *ah);
void vmig_ah_repoint(void);
int vmig_ah_sgid_index(struct vmig_ctx *ctx, uint8_t port);

/* ud.c: UD translation (remote QPN of sends; src_qp and GRH of receives) */
uint32_t vmig_ud_remote_qpn(const struct vmig_ah *ah, uint32_t vqpn);
void vmig_ud_learn_own(void);
void vmig_udrq_add(struct vmig_qp *qp);
void vmig_udrq_del(struct vmig_qp *qp);
struct vmig_qp *vmig_udrq_find(struct vmig_cq *cq, uint32_t phys_qpn);
void vmig_ud_count(struct vmig_cq *cq, const struct ibv_wc *wc, int n);
void vmig_ud_recv(struct vmig_cq *cq, struct vmig_qp *qp, struct ibv_wc *wc);

/* cq.c */
int vmig_cq_create_real(struct vmig_cq *cq);
struct vmig_cq *vmig_cq_new(struct vmig_ctx *ctx, int cqe, void *cq_context,
			    struct ibv_comp_channel *ibch, int comp_vector,
			    bool extended, uint64_t wc_flags);
int vmig_chan_create_real(struct vmig_chan *ch);

/* events.c: the shim thread (async events, comp channels, control) */
int vmig_events_start(void);
int vmig_events_watch_ctx(struct vmig_ctx *ctx);
int vmig_events_watch_chan(struct vmig_chan *ch);
void vmig_events_unwatch_fd(int fd);
int vmig_events_watch_client(int fd);
/* Serves async and completion events for up to ms (control fds excluded). */
void vmig_events_pump(int ms);
void vmig_chan_inject(struct vmig_chan *ch, struct vmig_cq *cq);

/* ctl_server.c */
int vmig_ctl_listen(void);
void vmig_ctl_readable(int fd);
void vmig_ctl_accept(int lfd);
void vmig_migrd_register_kick(void);

#endif
