/* SPDX-License-Identifier: MIT */
/*
 * vmig-agent: the in-guest stand-in for migrd. Shims inside the guest
 * register with it; requests from the host fan out to them and come back
 * as one reply. The pieces: channel (towards the host), registry (the
 * shims), fanout (parallel bounded exchanges), aggregate (one reply),
 * request (what a request means), session (one host connection).
 */
#ifndef GA_AGENT_H
#define GA_AGENT_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>

#include "channel.h"
#include "registry.h"

#define GA_NAME_MAX 64
#define GA_DEFAULT_TIMEOUT_MS 30000
/* What a shim may spend past its own drain bound before the agent gives up:
 * the drain is the shim's to time out, with a reply, not the agent's. */
#define GA_DRAIN_MARGIN_MS 2000
/* The shim's drain bound when SUSPEND names none (lib/verbs/suspend.c). */
#define GA_SHIM_DRAIN_DEFAULT_MS 10000

struct ga_agent {
	char guest[GA_NAME_MAX];	/* how the host knows this guest */
	char host[GA_NAME_MAX];		/* this guest's hostname, for HELLO */
	int timeout_ms;			/* bound on one step of a fan-out */
	struct ga_registry reg;
	struct ga_channel chan;
};

/* signals.c. Set by SIGTERM/SIGINT/SIGHUP; the main loop ends at its
 * next wait. */
extern volatile sig_atomic_t ga_stop;

/*
 * poll() that a stop signal interrupts: SIGTERM/SIGINT stay blocked in
 * every thread but here, so none slips in between a check and the wait.
 * Returns what poll returns (0 also for other signals), -EINTR to stop.
 */
int ga_wait(struct pollfd *pfd, nfds_t n, int timeout_ms);
/* Handlers, SIGPIPE ignored, stops blocked; call before any thread. */
void ga_signals_init(void);

#endif
