/* SPDX-License-Identifier: MIT */
/*
 * The few bits of CRIU's plugin ABI that vmig_criu_plugin uses, declared
 * here so the build needs no CRIU headers. They match CRIU 3.17
 * (criu/include/criu-plugin.h: plugin ABI version 0.2.0, hooks 0..9).
 *
 * CRIU dlopen()s every *.so in its plugin directory, looks up the symbol
 * CR_PLUGIN_DESC and reads hooks[0 .. max_hooks-1]; it refuses a plugin
 * whose version or max_hooks is above its own. Declaring only the hooks up
 * to the one we use keeps the plugin loadable by 3.17 and later CRIUs,
 * whose hook numbers only grow.
 */
#ifndef VMIG_CRIU_PLUGIN_ABI_H
#define VMIG_CRIU_PLUGIN_ABI_H

#include <sys/stat.h>

#define CR_PLUGIN_GEN_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))
#define CR_PLUGIN_VERSION_3_17 CR_PLUGIN_GEN_VERSION(0, 2, 0)

/* criu-plugin.h's hook numbers, as far as we go */
enum {
	CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA = 7,
	VMIG_CR_PLUGIN_HOOKS, /* our max_hooks */
};

/* the stage CRIU passes to init() and exit() */
enum {
	CR_PLUGIN_STAGE__DUMP = 0,
	CR_PLUGIN_STAGE__PRE_DUMP = 1,
	CR_PLUGIN_STAGE__RESTORE = 2,
};

/*
 * HANDLE_DEVICE_VMA(fd, st): called for a mapping of a file that is neither
 * regular nor /dev/zero. 0 claims it; -ENOTSUP passes it to the next
 * plugin (CRIU fails the dump when nobody claims it).
 */
typedef int cr_handle_device_vma_t(int fd, const struct stat *st);

typedef struct {
	const char *name;
	int (*init)(int stage);
	void (*exit)(int stage, int ret);
	unsigned int version;
	unsigned int max_hooks;
	void *hooks[VMIG_CR_PLUGIN_HOOKS];
} cr_plugin_desc_t;

/* exported by the criu binary (its log: the -o file at -v level) */
#define CR_LOG_ERROR 1
#define CR_LOG_INFO 3
extern void print_on_level(unsigned int loglevel, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

#endif
