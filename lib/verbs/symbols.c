// SPDX-License-Identifier: MIT
/*
 * libibverbs' own entry points, reached past the shim with dlvsym(RTLD_NEXT)
 * at the version a current application links against.
 */
#include <dlfcn.h>
#include <errno.h>

#define LOG_PREFIX "shim: "
#include "log.h"
#include "shim.h"

struct vmig_real vmig_real;

#define R(field, name, ver)                                                  \
	{ (void **)&vmig_real.field, name, ver, 1 }
#define O(field, name, ver)                                                  \
	{ (void **)&vmig_real.field, name, ver, 0 }

static const struct {
	void **slot;
	const char *name, *ver;
	int required;
} syms[] = {
	R(get_device_list, "ibv_get_device_list", "IBVERBS_1.1"),
	R(free_device_list, "ibv_free_device_list", "IBVERBS_1.1"),
	R(open_device, "ibv_open_device", "IBVERBS_1.1"),
	R(close_device, "ibv_close_device", "IBVERBS_1.1"),
	R(query_device, "ibv_query_device", "IBVERBS_1.1"),
	R(query_port, "ibv_query_port", "IBVERBS_1.1"),
	R(query_gid, "ibv_query_gid", "IBVERBS_1.1"),
	O(query_gid_ex, "_ibv_query_gid_ex", "IBVERBS_1.11"),
	O(query_gid_table, "_ibv_query_gid_table", "IBVERBS_1.11"),
	R(query_pkey, "ibv_query_pkey", "IBVERBS_1.1"),
	O(get_pkey_index, "ibv_get_pkey_index", "IBVERBS_1.5"),
	R(alloc_pd, "ibv_alloc_pd", "IBVERBS_1.1"),
	R(dealloc_pd, "ibv_dealloc_pd", "IBVERBS_1.1"),
	R(reg_mr, "ibv_reg_mr", "IBVERBS_1.1"),
	O(reg_mr_iova, "ibv_reg_mr_iova", "IBVERBS_1.7"),
	O(reg_mr_iova2, "ibv_reg_mr_iova2", "IBVERBS_1.8"),
	R(rereg_mr, "ibv_rereg_mr", "IBVERBS_1.1"),
	R(dereg_mr, "ibv_dereg_mr", "IBVERBS_1.1"),
	R(create_comp_channel, "ibv_create_comp_channel", "IBVERBS_1.0"),
	R(destroy_comp_channel, "ibv_destroy_comp_channel", "IBVERBS_1.0"),
	R(create_cq, "ibv_create_cq", "IBVERBS_1.1"),
	R(resize_cq, "ibv_resize_cq", "IBVERBS_1.1"),
	R(destroy_cq, "ibv_destroy_cq", "IBVERBS_1.1"),
	R(get_cq_event, "ibv_get_cq_event", "IBVERBS_1.1"),
	R(ack_cq_events, "ibv_ack_cq_events", "IBVERBS_1.1"),
	R(create_srq, "ibv_create_srq", "IBVERBS_1.1"),
	R(modify_srq, "ibv_modify_srq", "IBVERBS_1.1"),
	R(query_srq, "ibv_query_srq", "IBVERBS_1.1"),
	R(destroy_srq, "ibv_destroy_srq", "IBVERBS_1.1"),
	R(create_qp, "ibv_create_qp", "IBVERBS_1.1"),
	R(modify_qp, "ibv_modify_qp", "IBVERBS_1.1"),
	R(query_qp, "ibv_query_qp", "IBVERBS_1.1"),
	R(destroy_qp, "ibv_destroy_qp", "IBVERBS_1.1"),
	O(qp_to_qp_ex, "ibv_qp_to_qp_ex", "IBVERBS_1.6"),
	R(create_ah, "ibv_create_ah", "IBVERBS_1.1"),
	R(destroy_ah, "ibv_destroy_ah", "IBVERBS_1.1"),
	R(get_async_event, "ibv_get_async_event", "IBVERBS_1.1"),
	R(ack_async_event, "ibv_ack_async_event", "IBVERBS_1.1"),
	R(fork_init, "ibv_fork_init", "IBVERBS_1.1"),
	O(query_ece, "ibv_query_ece", "IBVERBS_1.10"),
	O(set_ece, "ibv_set_ece", "IBVERBS_1.10"),
	O(query_qp_data_in_order, "ibv_query_qp_data_in_order", "IBVERBS_1.14"),
	O(resolve_eth_l2_from_gid, "ibv_resolve_eth_l2_from_gid", "IBVERBS_1.1"),
};

int vmig_real_resolve(void)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *p;

		if (*syms[i].slot)
			continue;
		p = dlvsym(RTLD_NEXT, syms[i].name, syms[i].ver);
		if (!p)
			p = dlsym(RTLD_NEXT, syms[i].name);
		if (!p && syms[i].required) {
			pr_err("libibverbs has no %s@%s", syms[i].name,
			       syms[i].ver);
			ret = -ENOSYS;
		}
		*syms[i].slot = p;
	}
	return ret;
}
