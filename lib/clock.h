/* SPDX-License-Identifier: MIT */
/* The monotonic clock in microseconds: phase times, timeouts, idle ages. */
#ifndef VMIG_CLOCK_H
#define VMIG_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vmig_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline uint64_t vmig_now_ms(void)
{
	return vmig_now_us() / 1000;
}

#endif
