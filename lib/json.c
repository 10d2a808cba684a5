// SPDX-License-Identifier: MIT
/* JSON parsing, typed access and QMP reply shapes for migrd and vmigrate. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "json.h"

#define SETERR(err, ...) snprintf(err, VMIG_JSON_ERR_LEN, __VA_ARGS__)

int vmig_json_parse(const char *buf, size_t len, json_t **out, char *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);

	if (!j) {
		SETERR(err, "JSON parse error at line %d column %d: %s",
		       jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	*out = j;
	return 0;
}

static int get_member(json_t *obj, const char *key, bool required,
		      json_t **val, char *err)
{
	if (!json_is_object(obj)) {
		SETERR(err, "expected an object");
		return -EINVAL;
	}
	*val = json_object_get(obj, key);
	if (!*val) {
		if (required) {
			SETERR(err, "parameter '%s' is missing", key);
			return -EINVAL;
		}
		return -ENOENT;
	}
	return 0;
}

int vmig_json_get_str(json_t *obj, const char *key, bool required,
		      const char **out, char *err)
{
	json_t *v;
	int ret = get_member(obj, key, required, &v, err);

	if (ret)
		return ret;
	if (!json_is_string(v)) {
		SETERR(err, "parameter '%s' expects a string", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

int vmig_json_get_int(json_t *obj, const char *key, bool required,
		      int64_t min, int64_t max, int64_t *out, char *err)
{
	json_t *v;
	int ret = get_member(obj, key, required, &v, err);
	json_int_t i;

	if (ret)
		return ret;
	if (!json_is_integer(v)) {
		SETERR(err, "parameter '%s' expects an integer", key);
		return -EINVAL;
	}
	i = json_integer_value(v);
	if (i < min || i > max) {
		SETERR(err, "parameter '%s' out of range [%lld, %lld]", key,
		       (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = i;
	return 0;
}

int vmig_json_get_bool(json_t *obj, const char *key, bool required,
		       bool *out, char *err)
{
	json_t *v;
	int ret = get_member(obj, key, required, &v, err);

	if (ret)
		return ret;
	if (!json_is_boolean(v)) {
		SETERR(err, "parameter '%s' expects a boolean", key);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int vmig_json_check_keys(json_t *obj, const char *const *allowed, char *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		SETERR(err, "expected an object");
		return -EINVAL;
	}
	json_object_foreach(obj, key, v) {
		const char *const *a;

		for (a = allowed; *a; a++)
			if (!strcmp(*a, key))
				break;
		if (!*a) {
			SETERR(err, "parameter '%s' is unexpected", key);
			return -EINVAL;
		}
	}
	return 0;
}

int vmig_qmp_parse_request(json_t *req, const char **execute, json_t **args,
			   json_t **id, char *err)
{
	static const char *const keys[] = { "execute", "arguments", "id", NULL };
	json_t *a;
	int ret;

	if (!json_is_object(req)) {
		SETERR(err, "a request must be a JSON object");
		return -EINVAL;
	}
	*id = json_object_get(req, "id");
	ret = vmig_json_check_keys(req, keys, err);
	if (ret)
		return ret;
	ret = vmig_json_get_str(req, "execute", true, execute, err);
	if (ret)
		return ret;
	a = json_object_get(req, "arguments");
	if (a && !json_is_object(a)) {
		SETERR(err, "'arguments' must be an object");
		return -EINVAL;
	}
	*args = a ? json_incref(a) : json_object();
	return *args ? 0 : -ENOMEM;
}

static json_t *with_id(json_t *reply, json_t *id)
{
	if (reply && id)
		json_object_set(reply, "id", id);
	return reply;
}

json_t *vmig_qmp_return(json_t *value, json_t *id)
{
	return with_id(json_pack("{s:o}", "return",
				 value ? value : json_object()), id);
}

json_t *vmig_qmp_error(const char *cls, json_t *id, const char *fmt, ...)
{
	char desc[VMIG_JSON_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	return with_id(json_pack("{s:{s:s,s:s}}", "error", "class", cls,
				 "desc", desc), id);
}

json_t *vmig_qmp_event(const char *name, json_t *data)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return json_pack("{s:s,s:o,s:{s:I,s:I}}", "event", name, "data",
			 data ? data : json_object(), "timestamp", "seconds",
			 (json_int_t)tv.tv_sec, "microseconds",
			 (json_int_t)tv.tv_usec);
}

char *vmig_json_line(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	size_t n;
	char *line;

	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}
