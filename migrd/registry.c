// SPDX-License-Identifier: MIT
/* Registry of the shims on this host: a small array under one mutex. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"

void migrd_registry_init(struct migrd_registry *reg)
{
	pthread_condattr_t ca;

	memset(reg, 0, sizeof(*reg));
	pthread_mutex_init(&reg->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&reg->changed, &ca);
	pthread_condattr_destroy(&ca);
	reg->next_id = 1;
}

void migrd_registry_dispose(struct migrd_registry *reg)
{
	free(reg->procs);
	reg->procs = NULL;
	reg->n = reg->cap = 0;
	pthread_cond_destroy(&reg->changed);
	pthread_mutex_destroy(&reg->lock);
}

static void remove_at(struct migrd_registry *reg, size_t i)
{
	memmove(&reg->procs[i], &reg->procs[i + 1],
		(reg->n - i - 1) * sizeof(reg->procs[0]));
	reg->n--;
}

int migrd_registry_add(struct migrd_registry *reg, pid_t pid, pid_t host_pid,
		       const char *guest, const char *ctl_path)
{
	struct migrd_proc *p;
	size_t i;
	int id;

	if (pid <= 0 || !guest || !ctl_path ||
	    strlen(guest) >= MIGRD_NAME_MAX ||
	    strlen(ctl_path) >= MIGRD_PATH_MAX)
		return -EINVAL;
	pthread_mutex_lock(&reg->lock);
	for (i = 0; i < reg->n; i++)
		if (!strcmp(reg->procs[i].ctl_path, ctl_path)) {
			remove_at(reg, i);
			break;
		}
	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? 2 * reg->cap : 16;

		p = realloc(reg->procs, cap * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&reg->lock);
			return -ENOMEM;
		}
		reg->procs = p;
		reg->cap = cap;
	}
	p = &reg->procs[reg->n++];
	memset(p, 0, sizeof(*p));
	id = p->id = reg->next_id++;
	if (reg->next_id <= 0)	/* wrapped: ids stay positive */
		reg->next_id = 1;
	p->pid = pid;
	p->host_pid = host_pid;
	strcpy(p->guest, guest);
	strcpy(p->ctl_path, ctl_path);
	pthread_cond_broadcast(&reg->changed);
	pthread_mutex_unlock(&reg->lock);
	return id;
}

void migrd_registry_remove(struct migrd_registry *reg, int id)
{
	size_t i;

	pthread_mutex_lock(&reg->lock);
	for (i = 0; i < reg->n; i++)
		if (reg->procs[i].id == id) {
			remove_at(reg, i);
			break;
		}
	pthread_cond_broadcast(&reg->changed);
	pthread_mutex_unlock(&reg->lock);
}

int migrd_registry_find(struct migrd_registry *reg, const char *guest,
			pid_t pid, pid_t skip_pid, struct migrd_proc **out)
{
	struct migrd_proc *res;
	size_t i;
	int n = 0;

	pthread_mutex_lock(&reg->lock);
	res = malloc((reg->n ? reg->n : 1) * sizeof(*res));
	if (!res) {
		pthread_mutex_unlock(&reg->lock);
		return -ENOMEM;
	}
	for (i = 0; i < reg->n; i++) {
		const struct migrd_proc *p = &reg->procs[i];

		if (guest && strcmp(p->guest, guest))
			continue;
		if (pid && p->pid != pid)
			continue;
		if (skip_pid && p->pid == skip_pid)
			continue;
		res[n++] = *p;
	}
	pthread_mutex_unlock(&reg->lock);
	*out = res;
	return n;
}

static size_t count_locked(struct migrd_registry *reg, const char *guest)
{
	size_t i, n = 0;

	for (i = 0; i < reg->n; i++)
		n += !strcmp(reg->procs[i].guest, guest);
	return n;
}

int migrd_registry_wait(struct migrd_registry *reg, const char *guest,
			size_t n, unsigned int timeout_ms)
{
	struct timespec end;
	size_t have;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&reg->lock);
	while (count_locked(reg, guest) < n &&
	       pthread_cond_timedwait(&reg->changed, &reg->lock, &end) !=
		       ETIMEDOUT)
		;
	have = count_locked(reg, guest);
	pthread_mutex_unlock(&reg->lock);
	return (int)have;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int migrd_registry_guests(struct migrd_registry *reg,
			  char (**out)[MIGRD_NAME_MAX])
{
	char (*names)[MIGRD_NAME_MAX];
	size_t i;
	int n = 0, j;

	pthread_mutex_lock(&reg->lock);
	names = malloc((reg->n ? reg->n : 1) * sizeof(*names));
	if (!names) {
		pthread_mutex_unlock(&reg->lock);
		return -ENOMEM;
	}
	for (i = 0; i < reg->n; i++) {
		for (j = 0; j < n; j++)
			if (!strcmp(names[j], reg->procs[i].guest))
				break;
		if (j == n)
			strcpy(names[n++], reg->procs[i].guest);
	}
	pthread_mutex_unlock(&reg->lock);
	qsort(names, n, sizeof(*names), cmp_name);
	*out = names;
	return n;
}
