// SPDX-License-Identifier: MIT
/*
 * Stopping cleanly: the stop signals stay blocked except inside ppoll, so
 * a SIGTERM is seen at the next wait and never lost between a check of
 * ga_stop and the wait. Worker threads start with every signal blocked.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "agent.h"

volatile sig_atomic_t ga_stop;
static sigset_t wait_mask;

static void on_stop(int sig)
{
	ga_stop = 1;
}

int ga_wait(struct pollfd *pfd, nfds_t n, int timeout_ms)
{
	struct timespec ts, *tp = NULL;
	int ret;

	if (ga_stop)
		return -EINTR;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		tp = &ts;
	}
	ret = ppoll(pfd, n, tp, &wait_mask);
	if (ga_stop)
		return -EINTR;
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	return ret;
}

void ga_signals_init(void)
{
	static const int stops[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa;
	sigset_t set;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_stop;	/* no SA_RESTART: waits return */
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	for (i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		sigaction(stops[i], &sa, NULL);
		sigaddset(&set, stops[i]);
	}
	pthread_sigmask(SIG_BLOCK, &set, &wait_mask);
	for (i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigdelset(&wait_mask, stops[i]);
}
