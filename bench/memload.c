// SPDX-License-Identifier: MIT
/*
 * memload: a plain process (no RDMA) with MIB MiB of touched memory that
 * keeps dirtying it at a steady rate: the baseline that CRIU migrates.
 * Every 10 ms it writes one byte into each of the next --dirty pages
 * (default 16: 6.4 MiB/s with 4 KiB pages). When the memory is touched it
 * writes its pid to --ready. No open files but the ones it inherits.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: memload -m MIB [--dirty PAGES] [--ready FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dirty", required_argument, NULL, 'D' },
		{ "ready", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct timespec tick = { .tv_nsec = 10000000 };
	const char *ready = NULL;
	long mib = 64, dirty = 16, pg = sysconf(_SC_PAGESIZE);
	size_t len, npg, pos = 0, i;
	unsigned char *mem, gen = 1;
	FILE *f;
	int o;

	while ((o = getopt_long(argc, argv, "m:", lo, NULL)) != -1) {
		switch (o) {
		case 'm': mib = atol(optarg); break;
		case 'D': dirty = atol(optarg); break;
		case 'r': ready = optarg; break;
		default: usage();
		}
	}
	if (mib <= 0 || dirty < 0 || pg <= 0)
		usage();
	len = (size_t)mib << 20;
	npg = len / (size_t)pg;
	mem = malloc(len);
	if (!mem) {
		perror("memload");
		return 1;
	}
	/* distinct contents, so that nothing is a zero page */
	for (i = 0; i < len; i += 64)
		mem[i] = (unsigned char)(i / 64);
	if (ready) {
		f = fopen(ready, "w");
		if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
			perror(ready);
			return 1;
		}
	}
	for (;;) {
		nanosleep(&tick, NULL);
		for (i = 0; i < (size_t)dirty; i++) {
			mem[pos * (size_t)pg] = gen;
			if (++pos == npg) {
				pos = 0;
				gen++;
			}
		}
	}
}
