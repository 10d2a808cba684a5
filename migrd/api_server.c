// SPDX-License-Identifier: MIT
/* JSON API sessions (placeholder until api.c lands). */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "api_server.h"

struct migrd_api {
	struct migrd *d;
};

struct migrd_api *migrd_api_create(struct migrd *d)
{
	struct migrd_api *api = calloc(1, sizeof(*api));

	if (api)
		api->d = d;
	return api;
}

void migrd_api_destroy(struct migrd_api *api)
{
	free(api);
}

int migrd_api_serve(struct migrd_api *api, int fd)
{
	close(fd);
	return 0;
}

void migrd_api_emit(struct migrd_api *api, const char *name, json_t *data)
{
	json_decref(data);
}
