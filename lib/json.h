/* SPDX-License-Identifier: MIT */
/*
 * JSON helpers for the QMP-style API (DESIGN.md section 4): parsing with a
 * clear message, typed member access, and the reply/event shapes
 *   {"return": ...}  {"error": {"class": ..., "desc": ...}}
 *   {"event": NAME, "data": ..., "timestamp": {"seconds", "microseconds"}}
 * Getters return 0, -ENOENT (optional member absent) or -EINVAL with a
 * message in err; they never abort.
 */
#ifndef VMIG_JSON_H
#define VMIG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMIG_JSON_ERR_LEN 256

/* QMP error classes */
#define VMIG_QMP_GENERIC "GenericError"
#define VMIG_QMP_NOT_FOUND "DeviceNotFound"
#define VMIG_QMP_COMMAND_NOT_FOUND "CommandNotFound"

int vmig_json_parse(const char *buf, size_t len, json_t **out, char *err);

int vmig_json_get_str(json_t *obj, const char *key, bool required,
		      const char **out, char *err);
int vmig_json_get_int(json_t *obj, const char *key, bool required,
		      int64_t min, int64_t max, int64_t *out, char *err);
int vmig_json_get_bool(json_t *obj, const char *key, bool required,
		       bool *out, char *err);
/* Rejects members not in the NULL-terminated list (catches typos). */
int vmig_json_check_keys(json_t *obj, const char *const *allowed, char *err);

/*
 * Splits a request {"execute": S, "arguments": {...}, "id": any}. *args is
 * an empty object when absent (borrowed or new: release with json_decref);
 * *id borrowed, NULL when absent.
 */
int vmig_qmp_parse_request(json_t *req, const char **execute, json_t **args,
			   json_t **id, char *err);

/* Reply builders; each returns a new reference (NULL only on ENOMEM). */
json_t *vmig_qmp_return(json_t *value, json_t *id); /* steals value */
json_t *vmig_qmp_error(const char *cls, json_t *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
json_t *vmig_qmp_event(const char *name, json_t *data); /* steals data */

/* One line of compact JSON with a trailing newline; free() the result. */
char *vmig_json_line(json_t *j);

#endif
