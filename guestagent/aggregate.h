/* SPDX-License-Identifier: MIT */
/*
 * Many shims' replies as one: what the guest as a whole answers. All
 * answered well: the replies' common type, with the payloads that add up
 * merged (STATE: one State with every connection; DRAINED: sums; RECONNECT
 * INFO: every endpoint). Otherwise the first error (in time) wins, its
 * description naming the failing pid. Either way replies[] carries every
 * shim's own reply, tagged with its pid and guest.
 */
#ifndef GA_AGGREGATE_H
#define GA_AGGREGATE_H

#include "agent.h"
#include "fanout.h"

/*
 * Moves the replies out of res into the result (res[i].reply becomes
 * NULL). note: appended to an error's description (may be NULL). NULL on
 * out of memory.
 */
Vmig__CtlMsg *ga_aggregate(const struct ga_agent *a, Vmig__CtlType req_type,
			   uint32_t seq, struct ga_result *res, size_t n,
			   const char *note);
/* Index of the first failure in completion order, -1 if none. */
int ga_first_error(const struct ga_result *res, size_t n);

#endif
