// SPDX-License-Identifier: MIT
/* The shim registry: add, replace, find with filters, guests, remove,
 * wait for registrations. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"
#include "tap.h"

static void *late_shim(void *arg)
{
	struct timespec ts = { .tv_nsec = 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	migrd_registry_add(arg, 30, 0, "late", "/run/vmig/shim-30.sock");
	return NULL;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(void)
{
	struct timespec t0;
	pthread_t th;
	struct migrd_registry reg;
	struct migrd_proc *p = NULL;
	char (*names)[MIGRD_NAME_MAX] = NULL;
	char longname[200];
	int a, b, c, n;

	migrd_registry_init(&reg);
	a = migrd_registry_add(&reg, 10, 1010, "web", "/run/vmig/shim-10.sock");
	b = migrd_registry_add(&reg, 11, 1011, "web", "/run/vmig/shim-11.sock");
	c = migrd_registry_add(&reg, 12, 1012, "db", "/run/vmig/shim-12.sock");
	ok(a > 0 && b > 0 && c > 0 && a != b && b != c, "three added");
	is_int(migrd_registry_add(&reg, 0, 0, "x", "/p"), -EINVAL,
	       "pid 0 refused");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	is_int(migrd_registry_add(&reg, 5, 0, longname, "/p"), -EINVAL,
	       "long guest refused");
	is_int(migrd_registry_add(&reg, 5, 0, "g", longname), -EINVAL,
	       "long path refused");

	n = migrd_registry_find(&reg, NULL, 0, 0, &p);
	is_int(n, 3, "find all");
	free(p);
	n = migrd_registry_find(&reg, "web", 0, 0, &p);
	is_int(n, 2, "find by guest");
	free(p);
	n = migrd_registry_find(&reg, "web", 0, 10, &p);
	ok(n == 1 && p[0].pid == 11, "skip_pid leaves the sender out");
	free(p);
	n = migrd_registry_find(&reg, NULL, 12, 0, &p);
	ok(n == 1 && !strcmp(p[0].guest, "db") && p[0].host_pid == 1012,
	   "find by pid");
	free(p);
	n = migrd_registry_find(&reg, "nope", 0, 0, &p);
	is_int(n, 0, "unknown guest: none");
	free(p);

	n = migrd_registry_guests(&reg, &names);
	ok(n == 2 && !strcmp(names[0], "db") && !strcmp(names[1], "web"),
	   "guests, sorted, distinct");
	free(names);

	/* a restarted shim re-registers on the same socket path */
	c = migrd_registry_add(&reg, 13, 1013, "db", "/run/vmig/shim-12.sock");
	n = migrd_registry_find(&reg, "db", 0, 0, &p);
	ok(n == 1 && p[0].pid == 13, "same ctl_path replaces the entry");
	free(p);

	migrd_registry_remove(&reg, a);
	migrd_registry_remove(&reg, a);	/* twice: harmless */
	n = migrd_registry_find(&reg, "web", 0, 0, &p);
	ok(n == 1 && p[0].pid == 11, "removed by id");
	free(p);
	/* waiting for registrations: met at once, timed out, woken */
	is_int(migrd_registry_wait(&reg, "web", 1, 5000), 1, "wait: met at once");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	is_int(migrd_registry_wait(&reg, "web", 2, 200), 1,
	       "wait: the count at the timeout");
	ok(ms_since(&t0) >= 190, "wait: bounded by the timeout");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&th, NULL, late_shim, &reg);
	is_int(migrd_registry_wait(&reg, "late", 1, 10000), 1,
	       "wait: woken by the registration");
	ok(ms_since(&t0) < 5000, "wait: not left to the timeout");
	pthread_join(th, NULL);
	n = migrd_registry_find(&reg, "late", 0, 0, &p);
	if (n == 1)
		migrd_registry_remove(&reg, p[0].id);
	free(p);

	migrd_registry_remove(&reg, b);
	migrd_registry_remove(&reg, c);
	n = migrd_registry_guests(&reg, &names);
	is_int(n, 0, "empty again");
	free(names);
	migrd_registry_dispose(&reg);
	return tap_done();
}
