/* SPDX-License-Identifier: MIT */
/*
 * The JSON API's commands (docs/api.md), one request line in, one reply
 * out. Kept apart from the socket handling so the unit tests drive it with
 * any input.
 */
#ifndef MIGRD_API_H
#define MIGRD_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct migrd;

struct migrd_api_session {
	bool negotiated;	/* qmp_capabilities done */
};

/* The greeting sent when a session opens. */
json_t *migrd_api_greeting(void);
/* Handles one request (a line without its newline). Always returns a
 * reply (NULL only on ENOMEM); never aborts on bad input. */
json_t *migrd_api_handle(struct migrd *d, struct migrd_api_session *s,
			 const char *line, size_t len);

#endif
