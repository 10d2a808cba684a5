/* SPDX-License-Identifier: MIT */
/*
 * CTL_FORWARD: deliver a request to the shims of a host, this one or
 * another one through its migrd, and aggregate their replies.
 *
 * The reply is CTL_OK with one entry in `replies` per shim reached: the
 * shim's own reply, tagged with hello{pid, guest, host}; a shim that did not
 * answer appears as CTL_ERROR{ERR_UNREACHABLE} with the same tag. A host
 * that does not answer gives CTL_ERROR{ERR_UNREACHABLE}.
 */
#ifndef MIGRD_RELAY_H
#define MIGRD_RELAY_H

#include <stdbool.h>
#include <sys/types.h>

#include "migrd.h"
#include "msg.h"

struct migrd_dest {
	bool local;
	char name[MIGRD_NAME_MAX];	/* config name, or the address */
	char addr[MIGRD_ADDR_MAX];
	uint16_t port;
};

/* The host address in a RoCE v2 GID (addr: MIGRD_ADDR_MAX bytes); an
 * error class with err filled for a GID without one. */
Vmig__ErrClass migrd_gid_to_addr(const ProtobufCBinaryData *gid, char *addr,
				 char *err, size_t err_len);

/* Whether addr is one of this machine's addresses. */
typedef bool (*migrd_is_local_fn)(const char *addr);
bool migrd_addr_is_local(const char *addr);

/* Where a Forward goes: no dest_gid nor dest_host means this host. Returns
 * 0, or an error class (with err filled) for the error reply. */
Vmig__ErrClass migrd_relay_resolve(const struct migrd_config *cfg,
				   const Vmig__Forward *fw,
				   migrd_is_local_fn is_local,
				   struct migrd_dest *dest, char *err,
				   size_t err_len);

/*
 * Handles a FORWARD request. from_peer: it came from another migrd, so it
 * is delivered here whatever its destination (no second hop). skip_pid:
 * the requesting shim, left out of a local fan-out. NULL only on ENOMEM.
 */
Vmig__CtlMsg *migrd_relay_forward(struct migrd *d, const Vmig__CtlMsg *req,
				  bool from_peer, pid_t skip_pid);

#endif
