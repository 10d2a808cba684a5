/* SPDX-License-Identifier: MIT */
/*
 * Talking to shims from a tool: directly over a shim's socket (same host),
 * or through the local migrd's CTL_FORWARD to the host owning a GID. The
 * cycle orchestration (suspend both ends, teardown, restore, reconnect,
 * resume) works on either kind of channel.
 */
#ifndef VMIG_TOOLS_CTL_CLIENT_H
#define VMIG_TOOLS_CTL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

struct vctl_chan {
	int fd;
	bool forward;		/* through migrd */
	uint8_t gid[16];	/* forward: the destination host's GID */
	uint32_t pid;		/* the shim's pid */
	uint32_t seq;
	char name[96];		/* for messages: "pid 123" or "pid 123@gid" */
};

const char *vctl_run_dir(void);
int vctl_shim_path(uint32_t pid, char *path, size_t len);
int vctl_open_shim(struct vctl_chan *c, uint32_t pid);
int vctl_open_forward(struct vctl_chan *c, const uint8_t gid[16],
		      uint32_t pid);
void vctl_close(struct vctl_chan *c);
/* Sends req, returns the shim's reply (an ERROR reply is returned too);
 * negative errno when the channel failed. */
int vctl_call(struct vctl_chan *c, Vmig__CtlMsg *req, Vmig__CtlMsg **reply);
/* vctl_call and a check: 0 when the reply is not an ERROR (printed). */
int vctl_do(struct vctl_chan *c, Vmig__CtlMsg *req, Vmig__CtlMsg **reply);

struct vctl_cycle_opts {
	uint32_t drain_timeout_ms;
	const char *device;
	bool verbose;
};

/* One cycle of the shim at pid (a channel to it), with its peers found
 * from its STATE: on this host through their sockets, elsewhere through
 * migrd. Prints each step and its time; 0 or negative errno. */
int vctl_cycle(struct vctl_chan *self, const struct vctl_cycle_opts *o);
void vctl_print_state(const Vmig__State *s);
void vctl_gid_str(const ProtobufCBinaryData *g, char *buf, size_t len);

#endif
