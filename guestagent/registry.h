/* SPDX-License-Identifier: MIT */
/*
 * The shims of this guest. A shim registers the way it registers with
 * migrd on a host (HELLO role SHIM with pid, guest, ctl_path on the socket
 * it knows as migrd.sock) and stays registered as long as that connection
 * is open. Served by one thread, so a fan-out in progress never delays a
 * registration; lookups copy entries out under the lock.
 */
#ifndef GA_REGISTRY_H
#define GA_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

#define GA_SHIM_NAME_MAX 64
#define GA_SHIM_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define GA_MAX_SHIMS 1024

struct ga_shim {
	int id;				/* > 0 */
	pid_t pid;			/* as the shim reported it */
	char guest[GA_SHIM_NAME_MAX];
	char ctl_path[GA_SHIM_PATH_MAX];
};

struct ga_reg_entry {
	struct ga_shim shim;
	int fd;				/* the registration connection */
};

struct ga_registry {
	pthread_mutex_t lock;
	struct ga_reg_entry *ents;
	size_t n, cap;
	int next_id;
	int lfd;			/* listening socket, -1 when closed */
	int stop[2];			/* wakes the thread to end it */
	char path[GA_SHIM_PATH_MAX];
	char run_dir[GA_SHIM_PATH_MAX];	/* default ctl_path's directory */
	pthread_t thread;
	bool inited, running;
};

/* Listens on path (mode 0600) and starts the thread. */
int ga_registry_start(struct ga_registry *reg, const char *path,
		      const char *run_dir);
/* Ends the thread, closes every connection, removes the socket file;
 * safe on a registry that never started. */
void ga_registry_stop(struct ga_registry *reg);
/*
 * Copies the shims that match (pid 0: any; guest NULL: any) into a
 * malloc'ed array, in registration order. Returns the count or -errno.
 */
int ga_registry_find(struct ga_registry *reg, pid_t pid, const char *guest,
		     struct ga_shim **out);

#endif
