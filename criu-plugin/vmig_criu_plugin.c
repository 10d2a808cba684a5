// SPDX-License-Identifier: MIT
/*
 * vmig_criu_plugin.so: lets CRIU pre-dump a process that has live uverbs
 * mappings (libibverbs mmaps /dev/infiniband/uverbsN for queue buffers and
 * doorbells), so migrd can pre-copy memory while RDMA runs.
 *
 * CRIU 3.17 sends every mapping of a file that is neither regular nor
 * /dev/zero to HANDLE_DEVICE_VMA, and without a plugin that claims it fails
 * with "Can't handle non-regular mapping". Claiming one only sets
 * VMA_EXT_PLUGIN on it; the VMA stays VMA_FILE_SHARED (providers map the
 * device MAP_SHARED), and pre-dump copies pages of private and anonymous
 * shared VMAs only, so none of the device's pages land in the images.
 *
 * We claim them in pre-dumps only. A dump would record the mapping as a
 * file mapping of the device, which no restore can bring back: the shim
 * tears the RDMA resources down before the final dump, so there a uverbs
 * mapping is a bug and CRIU must refuse it as it does without us.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "criu_plugin_abi.h"

static int cur_stage = -1;

static int vmig_plugin_init(int stage)
{
	cur_stage = stage;
	return 0;
}

/* /sys/dev/char/MAJ:MIN links to .../infiniband_verbs/uverbsN for uverbs. */
static int is_uverbs(const struct stat *st)
{
	char path[64], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u",
		 major(st->st_rdev), minor(st->st_rdev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	return strstr(link, "/infiniband_verbs/uverbs") != NULL;
}

static int vmig_handle_device_vma(int fd, const struct stat *st)
{
	unsigned int maj = major(st->st_rdev), min = minor(st->st_rdev);

	if (!S_ISCHR(st->st_mode) || !is_uverbs(st))
		return -ENOTSUP;
	if (cur_stage != CR_PLUGIN_STAGE__PRE_DUMP) {
		print_on_level(CR_LOG_ERROR,
			       "vmig: uverbs mapping of %u:%u outside a pre-dump: "
			       "release the RDMA resources before dumping\n",
			       maj, min);
		return -ENOTSUP;
	}
	print_on_level(CR_LOG_INFO,
		       "vmig: uverbs mapping of %u:%u left out of the pre-dump\n",
		       maj, min);
	return 0;
}

__attribute__((visibility("default"))) cr_plugin_desc_t CR_PLUGIN_DESC = {
	.name = "vmig",
	.init = vmig_plugin_init,
	.version = CR_PLUGIN_VERSION_3_17,
	.max_hooks = VMIG_CR_PLUGIN_HOOKS,
	.hooks = {
		[CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA] = (void *)vmig_handle_device_vma,
	},
};
