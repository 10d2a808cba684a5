// SPDX-License-Identifier: MIT
/* Reading vmig-guest's records: {"name": ..., "state": "running", ...}. */
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "guest_files.h"

bool migrd_guest_file_running(const struct migrd_config *cfg,
			      const char *guest)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *j;
	const char *st;
	bool running;

	if (!migrd_name_valid(guest) ||
	    snprintf(path, sizeof(path), "%s/guests/%s.json", cfg->run_dir,
		     guest) >= (int)sizeof(path))
		return false;
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return false;
	st = json_string_value(json_object_get(j, "state"));
	running = st && !strcmp(st, "running");
	json_decref(j);
	return running;
}

void migrd_guest_files_each(const struct migrd_config *cfg,
			    void (*fn)(const char *guest, void *arg),
			    void *arg)
{
	char dir[PATH_MAX], name[MIGRD_NAME_MAX];
	struct dirent *e;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/guests", cfg->run_dir);
	dp = opendir(dir);
	if (!dp)
		return;
	while ((e = readdir(dp))) {
		size_t n = strlen(e->d_name);

		if (n <= 5 || n - 5 >= sizeof(name) ||
		    strcmp(e->d_name + n - 5, ".json"))
			continue;
		memcpy(name, e->d_name, n - 5);
		name[n - 5] = '\0';
		if (migrd_guest_file_running(cfg, name))
			fn(name, arg);
	}
	closedir(dp);
}
