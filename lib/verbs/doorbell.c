// SPDX-License-Identifier: MIT
/*
 * The send doorbell through ioctl, for providers that ring it with write().
 *
 * rxe (and siw) tell the kernel about new send WQEs with a POST_SEND
 * command of zero WRs written to the uverbs fd. The kernel refuses a
 * write() unless the caller's credentials are the very object that opened
 * the fd (ib_safe_file_access compares the pointers). In one process all
 * threads share that object, until CRIU restores them: it sets each
 * thread's credentials on its own, so every thread gets its own copy. The
 * shim reopens the device from its own thread at RESTORE, and from then
 * the application's posts fail with EACCES after their WQEs were queued.
 * The same command through the ioctl interface (UVERBS_METHOD_INVOKE_WRITE)
 * has no such check: the shim rings the doorbell that way instead. The
 * ioctl header must name the device's driver; the providers that ring with
 * write() are rxe and siw: the first one the kernel accepts is kept.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_ioctl_cmds.h>

#include "shim.h"

static const uint32_t drivers[] = { RDMA_DRIVER_RXE, RDMA_DRIVER_SIW };
static _Atomic unsigned int driver_idx;

static int ring(struct ibv_qp *real, uint32_t driver_id)
{
	struct ib_uverbs_post_send cmd = {
		.qp_handle = real->handle,
		.wqe_size = sizeof(struct ib_uverbs_send_wr),
	};
	struct ib_uverbs_post_send_resp resp = { 0 };
	struct {
		struct ib_uverbs_ioctl_hdr hdr;
		struct ib_uverbs_attr attrs[3];
	} req;

	memset(&req, 0, sizeof(req));
	req.hdr.length = sizeof(req);
	req.hdr.object_id = UVERBS_OBJECT_DEVICE;
	req.hdr.method_id = UVERBS_METHOD_INVOKE_WRITE;
	req.hdr.num_attrs = 3;
	req.hdr.driver_id = driver_id;
	req.attrs[0].attr_id = UVERBS_ATTR_WRITE_CMD;
	req.attrs[0].len = sizeof(uint64_t);		/* a constant, inline */
	req.attrs[0].data = IB_USER_VERBS_CMD_POST_SEND;
	req.attrs[1].attr_id = UVERBS_ATTR_CORE_IN;
	req.attrs[1].len = sizeof(cmd);
	req.attrs[1].data = (uintptr_t)&cmd;
	req.attrs[2].attr_id = UVERBS_ATTR_CORE_OUT;
	req.attrs[2].len = sizeof(resp);
	req.attrs[2].data = (uintptr_t)&resp;
	if (ioctl(real->context->cmd_fd, RDMA_VERBS_IOCTL, &req))
		return errno;
	return 0;
}

int vmig_doorbell(struct ibv_qp *real)
{
	unsigned int i = driver_idx, n = sizeof(drivers) / sizeof(drivers[0]);
	int ret = ring(real, drivers[i]), k;

	/* EINVAL: another driver id (or a QP not ready: then all refuse) */
	for (k = 1; ret == EINVAL && k < (int)n; k++) {
		i = (i + 1) % n;
		ret = ring(real, drivers[i]);
		if (!ret)
			driver_idx = i;
	}
	return ret;
}
