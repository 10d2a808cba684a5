/* SPDX-License-Identifier: MIT */
/* Internals shared by the guest_*.c files (not for other components). */
#ifndef VMIG_GUEST_PRIV_H
#define VMIG_GUEST_PRIV_H

#include <stdio.h>

#include "guest.h"

/* Sets err (VMIG_GUEST_ERR_LEN bytes); a long path is cut, never overflows. */
void guest_seterr(char *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define GUEST_SETERR(err, ...) guest_seterr(err, __VA_ARGS__)

/* Files in a checkpoint directory besides CRIU's images. */
#define VMIG_GUEST_CKPT_RECORD "vmig-guest.json"
#define VMIG_GUEST_CKPT_LOG "vmig-guest.log"

/* guest_state.c */
/* An exclusive lock on the run directory (created); returns an fd. */
int guest_lock(char *err);
void guest_unlock(int fd);
int guest_save(const struct vmig_guest *g, char *err);
int guest_save_to(const struct vmig_guest *g, const char *path, char *err);
int guest_load_from(const char *path, struct vmig_guest *g, char *err);
void guest_forget(const char *name);
int guest_pid_start_time(pid_t pid, unsigned long long *t);
/* Another guest here that runs with addr, or NULL. */
int guest_addr_in_use(const struct vmig_guest *g, char *who, size_t len);

/* guest_net.c */
/* Runs `ip ARGS...` (NULL-terminated); on failure err holds its stderr. */
int guest_ip(char *err, const char *arg, ...) __attribute__((sentinel));
bool guest_link_exists(const char *ifname);
/* Deletes ifname (and so its veth peer and routes); quiet if absent. */
void guest_link_del(const char *ifname);
/* Creates the veth pair with its guest end in pid's netns. */
int guest_veth_create(const struct vmig_guest *g, pid_t pid, char *err);
/* Host end: gateway address, up, proxy_arp, forwarding, route to the guest.
 * Idempotent. */
int guest_host_net_up(const struct vmig_guest *g, char *err);
/* Inside the guest's netns: lo, eth0 address and default route. */
int guest_inner_net_up(const struct vmig_guest *g, char *err);

/* guest_nft.c: deletes CRIU 3.17's stale lock table "inet CRIU-<dumped>"
 * in guest's netns; 0, -ENOENT (no such table) or -errno. */
int guest_nft_unlock(pid_t guest, pid_t dumped, char *err);
/* The same in two halves, to do something else meanwhile: start returns
 * the child's pid (or -errno), finish waits for it and returns as above. */
pid_t guest_nft_unlock_start(pid_t guest, pid_t dumped, char *err);
int guest_nft_unlock_finish(pid_t child, char *err);

/* guest_init.c: PID 1 of the guest; never returns. */
void guest_init_main(const struct vmig_guest *g, char *const argv[],
		     int go_fd, int status_fd) __attribute__((noreturn));

#endif
