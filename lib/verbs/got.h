/* SPDX-License-Identifier: MIT */
/* Redirecting one imported function of chosen shared objects (got.c). */
#ifndef VMIG_VERBS_GOT_H
#define VMIG_VERBS_GOT_H

#include <stddef.h>

/*
 * Points the PLT slot of `sym` in every loaded object whose path contains
 * one of `objs` at `fn`. Other objects keep calling the real `sym`.
 * Returns the number of slots that now hold fn (already holding it counts),
 * or -errno when a slot could not be written; 0 on targets where this is
 * not supported.
 */
int vmig_got_redirect(const char *const *objs, size_t nobjs, const char *sym,
		      void *fn);

#endif
