// SPDX-License-Identifier: MIT
/* The shim's handle maps: identity when empty, set/get, growth while a
 * reader thread keeps looking up, clear, foreach. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "tap.h"
#include "verbs/hmap.h"

static struct vmig_hmap m;
static atomic_int stop, bad;

static void *reader(void *arg)
{
	while (!atomic_load(&stop)) {
		/* entry 7 is set before the thread starts and never changes */
		if (vmig_hmap_get(&m, 7) != 700)
			atomic_fetch_add(&bad, 1);
	}
	return NULL;
}

static void count_cb(uint32_t virt, uint32_t phys, void *arg)
{
	if (phys == virt * 100)
		(*(int *)arg)++;
}

int main(void)
{
	pthread_t t;
	uint32_t i, p;
	int n = 0, wrong = 0;

	is_int(vmig_hmap_init(&m), 0, "init");
	is_int(vmig_hmap_get(&m, 42), 42, "empty map is the identity");
	is_int(vmig_hmap_count(&m), 0, "no entries");
	is_int(vmig_hmap_set(&m, 5, 5), 0, "identity set");
	is_int(vmig_hmap_count(&m), 0, "identity set adds no entry");
	is_int(vmig_hmap_set(&m, 7, 700), 0, "set 7 -> 700");
	is_int(vmig_hmap_get(&m, 7), 700, "get 7");
	is_int(vmig_hmap_get(&m, 8), 8, "absent key maps to itself");
	ok(!vmig_hmap_lookup(&m, 8, &p), "lookup of an absent key fails");
	ok(pthread_create(&t, NULL, reader, NULL) == 0, "reader started");
	for (i = 100; i < 5100; i++)
		vmig_hmap_set(&m, i, i * 100);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	is_int(atomic_load(&bad), 0, "reader never saw a wrong value during growth");
	for (i = 100; i < 5100; i++)
		if (vmig_hmap_get(&m, i) != i * 100)
			wrong++;
	is_int(wrong, 0, "5000 entries after growth");
	is_int(vmig_hmap_count(&m), 5001, "count");
	vmig_hmap_foreach(&m, count_cb, &n);
	is_int(n, 5001, "foreach visits every non-identity entry");
	vmig_hmap_set(&m, 7, 7);
	is_int(vmig_hmap_count(&m), 5000, "back to identity drops the count");
	is_int(vmig_hmap_get(&m, 7), 7, "7 is the identity again");
	vmig_hmap_set(&m, 0, 1);
	is_int(vmig_hmap_get(&m, 0), 1, "key 0 works");
	vmig_hmap_clear(&m);
	is_int(vmig_hmap_count(&m), 0, "clear");
	is_int(vmig_hmap_get(&m, 150), 150, "cleared entries are the identity");
	vmig_hmap_dispose(&m);
	return tap_done();
}
