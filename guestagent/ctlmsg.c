// SPDX-License-Identifier: MIT
/* Replies the agent builds (lib/ctlmsg_heap.h) and sends once. */
#include <errno.h>

#include "ctlmsg.h"

int ga_msg_send_free(int fd, Vmig__CtlMsg *m)
{
	int ret;

	if (!m)
		return -ENOMEM;
	ret = vmig_ctl_send(fd, m);
	vmig_ctl_free(m);
	return ret;
}
