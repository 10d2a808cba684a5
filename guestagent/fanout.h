/* SPDX-License-Identifier: MIT */
/*
 * One request to many shims at once: a thread per shim connects to its
 * control socket, says HELLO, sends the request and reads the reply. The
 * whole exchange has one deadline; at the deadline the sockets still open
 * are shut down, so a shim that hangs costs the bound and no more, and one
 * that dies costs nothing (its socket closes).
 */
#ifndef GA_FANOUT_H
#define GA_FANOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "msg.h"
#include "registry.h"

struct ga_result {
	struct ga_shim shim;
	/* heap, tagged with the shim's pid and guest: the shim's own reply,
	 * or an ERROR the agent wrote for a shim that did not answer */
	Vmig__CtlMsg *reply;
	bool ok;		/* answered, and not with ERROR */
	bool answered;		/* the reply is the shim's own */
	unsigned order;		/* completion order, 1 = first */
};

/*
 * Sends req to every shim in parallel; returns when all answered or
 * timeout_ms passed. *out: n results in the order of shims, every reply
 * set. Returns 0 or -errno (out of memory, nothing sent).
 */
int ga_fanout(const struct ga_shim *shims, size_t n, const Vmig__CtlMsg *req,
	      int timeout_ms, struct ga_result **out);
void ga_results_free(struct ga_result *res, size_t n);

#endif
