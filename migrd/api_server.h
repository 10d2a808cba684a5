/* SPDX-License-Identifier: MIT */
/*
 * The JSON API socket (migrd-api.sock): QMP-style sessions, one thread
 * each, and events broadcast to every session past capabilities
 * negotiation. The request handling itself is in api.h.
 */
#ifndef MIGRD_API_SERVER_H
#define MIGRD_API_SERVER_H

#include <jansson.h>

struct migrd;
struct migrd_api;

struct migrd_api *migrd_api_create(struct migrd *d);
void migrd_api_destroy(struct migrd_api *api);
/* Takes fd; serves the session on a detached thread. */
int migrd_api_serve(struct migrd_api *api, int fd);
/* Sends {"event": name, "data": data, "timestamp": ...} to every session;
 * steals data. api may be NULL (no API: the event is dropped). */
void migrd_api_emit(struct migrd_api *api, const char *name, json_t *data);

#endif
