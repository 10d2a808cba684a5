/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint directories: where they live (image_dir/out-GUEST on the
 * source, image_dir/in-GUEST on the destination), shipping one to another
 * migrd as CTL_MIG_FILE chunks, and receiving it with every name checked.
 *
 * With pre-copy the directory is a chain: round N in the subdirectory
 * pre-N (its CRIU "parent" link to ../pre-<N-1>), the final dump at the
 * top (parent -> pre-<last>). Each round ships as soon as it is written;
 * restoring the top directory finds the chain through the links.
 */
#ifndef MIGRD_IMAGES_H
#define MIGRD_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "session.h"

struct migrd;

#define MIGRD_CHUNK (1u << 20)
#define MIGRD_ROUND_PREFIX "pre-"	/* pre-copy round N: pre-N */

/* image_dir/<kind>-<guest>, created empty (an old one is removed). */
int migrd_images_fresh_dir(struct migrd *d, const char *kind,
			   const char *guest, char *path, size_t len);
void migrd_images_dir(struct migrd *d, const char *kind, const char *guest,
		      char *path, size_t len);
int migrd_rm_rf(const char *path);
/* A relative path of [A-Za-z0-9._-] components, no "." or "..". */
bool migrd_images_name_valid(const char *rel);

/* Whether a link at rel (a valid name) to target stays inside the tree:
 * relative, valid components or "..", never above the top. */
bool migrd_images_link_valid(const char *rel, const char *target);

/* Bytes in the regular files under dir. */
uint64_t migrd_images_size(const char *dir);
/* Sends the regular files and symbolic links under dir/sub (sub NULL:
 * under dir, leaving out the pre-copy rounds' subdirectories, which went
 * before) on a peer session, named relative to dir; *bytes counts the
 * payload; progress (may be NULL) is called after each chunk. */
int migrd_images_send(struct migrd_sess *sess, const char *dir,
		      const char *sub, const char *guest,
		      const char *src_host, uint64_t *bytes,
		      void (*progress)(void *arg, uint64_t sent), void *arg,
		      char *err, size_t err_len);

/* Destination: CTL_MIG_PREPARE, FILE, RESTORE, ABORT from a peer migrd. */
Vmig__CtlMsg *migrd_incoming_handle(struct migrd *d, const Vmig__CtlMsg *m);

#endif
