// SPDX-License-Identifier: MIT
/*
 * Works around CRIU 3.17's nftables network lock in a pid namespace: the
 * dump locks the guest's netns with a table "inet CRIU-<pid of the root
 * task on the dumping host>", the table is dumped with the rest of the
 * netns' ruleset and restored with it, and after the restore CRIU deletes
 * "CRIU-<pid on the restoring host>", which does not exist: the guest stays
 * cut off (upstream criu#2550, fixed after 3.17 by remembering the name).
 * We delete the dumped table ourselves, through libnftables (a dependency
 * of Debian's criu; the nft command is not installed), loaded at run time
 * so that building vmigrate does not need its headers. With a CRIU that
 * names the table otherwise there is no such table and nothing to do.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest_priv.h"

#define NFT_LIB "libnftables.so.1"

struct nft_ctx;

pid_t guest_nft_unlock_start(pid_t guest, pid_t dumped, char *err)
{
	char path[64];
	pid_t child;

	child = fork();
	if (child < 0) {
		int ret = -errno;

		GUEST_SETERR(err, "fork: %s", strerror(errno));
		return ret;
	}
	if (child == 0) {
		struct nft_ctx *(*ctx_new)(unsigned int);
		int (*run)(struct nft_ctx *, const char *);
		int (*buffer_error)(struct nft_ctx *);
		struct nft_ctx *ctx;
		char cmd[64];
		void *lib;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)guest);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(2);
		lib = dlopen(NFT_LIB, RTLD_NOW | RTLD_LOCAL);
		if (!lib)
			_exit(3);
		*(void **)&ctx_new = dlsym(lib, "nft_ctx_new");
		*(void **)&run = dlsym(lib, "nft_run_cmd_from_buffer");
		*(void **)&buffer_error = dlsym(lib, "nft_ctx_buffer_error");
		if (!ctx_new || !run)
			_exit(3);
		ctx = ctx_new(0);
		if (!ctx)
			_exit(3);
		if (buffer_error)
			buffer_error(ctx); /* "no such table" is not worth a word */
		snprintf(cmd, sizeof(cmd), "delete table inet CRIU-%d", (int)dumped);
		_exit(run(ctx, cmd) ? 1 : 0);
	}
	return child;
}

int guest_nft_unlock_finish(pid_t child, char *err)
{
	int st;

	if (child < 0)
		return child;
	while (waitpid(child, &st, 0) < 0) {
		if (errno != EINTR) {
			st = -1;
			break;
		}
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) <= 1)
		return WEXITSTATUS(st) ? -ENOENT : 0;
	GUEST_SETERR(err, "cannot %s to unlock the guest's network",
		     WIFEXITED(st) && WEXITSTATUS(st) == 3 ?
			     "use " NFT_LIB : "enter the guest's netns");
	return -EIO;
}

int guest_nft_unlock(pid_t guest, pid_t dumped, char *err)
{
	return guest_nft_unlock_finish(guest_nft_unlock_start(guest, dumped,
							      err), err);
}
