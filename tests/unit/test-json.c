// SPDX-License-Identifier: MIT
/* JSON helpers: parse errors, typed getters, QMP request and reply shapes. */
#include <errno.h>
#include <stdlib.h>

#include "json.h"
#include "tap.h"

static json_t *parse(const char *s)
{
	char err[VMIG_JSON_ERR_LEN];
	json_t *j = NULL;

	if (vmig_json_parse(s, strlen(s), &j, err))
		abort();
	return j;
}

static void test_parse(void)
{
	char err[VMIG_JSON_ERR_LEN] = "";
	json_t *j = NULL;

	is_int(vmig_json_parse("{\"a\":", 5, &j, err), -EINVAL, "truncated");
	ok(strstr(err, "parse error") != NULL, "message says parse error: %s",
	   err);
	is_int(vmig_json_parse("{\"a\":1,\"a\":2}", 13, &j, err), -EINVAL,
	       "duplicate keys rejected");
	ok(j == NULL, "nothing returned");
}

static void test_getters(void)
{
	json_t *o = parse("{\"s\":\"x\",\"i\":5,\"b\":true,\"n\":null}");
	char err[VMIG_JSON_ERR_LEN];
	const char *s;
	int64_t i;
	bool b;

	is_int(vmig_json_get_str(o, "s", true, &s, err), 0, "string");
	is_str(s, "x", "string value");
	is_int(vmig_json_get_str(o, "i", true, &s, err), -EINVAL,
	       "int is not a string");
	is_str(err, "parameter 'i' expects a string", "type error message");
	is_int(vmig_json_get_str(o, "zz", true, &s, err), -EINVAL,
	       "required missing");
	is_str(err, "parameter 'zz' is missing", "missing message");
	is_int(vmig_json_get_str(o, "zz", false, &s, err), -ENOENT,
	       "optional missing");
	is_int(vmig_json_get_int(o, "i", true, 0, 10, &i, err), 0, "int");
	is_int(i, 5, "int value");
	is_int(vmig_json_get_int(o, "i", true, 6, 10, &i, err), -EINVAL,
	       "int out of range");
	is_int(vmig_json_get_bool(o, "b", true, &b, err), 0, "bool");
	ok(b, "bool value");
	is_int(vmig_json_get_bool(o, "n", true, &b, err), -EINVAL,
	       "null is not a bool");
	{
		static const char *const keys[] = { "s", "i", "b", NULL };

		is_int(vmig_json_check_keys(o, keys, err), -EINVAL,
		       "unexpected key");
		is_str(err, "parameter 'n' is unexpected", "unexpected message");
	}
	json_decref(o);
	o = parse("[1]");
	is_int(vmig_json_get_str(o, "s", true, &s, err), -EINVAL,
	       "array is not an object");
	json_decref(o);
}

static void test_qmp(void)
{
	char err[VMIG_JSON_ERR_LEN];
	const char *exec;
	json_t *req, *args, *id, *r;
	char *line;

	req = parse("{\"execute\":\"query-migrate\",\"id\":7}");
	is_int(vmig_qmp_parse_request(req, &exec, &args, &id, err), 0,
	       "request without arguments");
	is_str(exec, "query-migrate", "execute");
	ok(json_is_object(args) && json_object_size(args) == 0,
	   "empty arguments");
	ok(json_integer_value(id) == 7, "id");
	r = vmig_qmp_return(json_pack("{s:s}", "status", "active"), id);
	line = vmig_json_line(r);
	is_str(line, "{\"return\":{\"status\":\"active\"},\"id\":7}\n",
	       "return shape");
	free(line);
	json_decref(r);
	json_decref(args);
	json_decref(req);

	req = parse("{\"execute\":1}");
	is_int(vmig_qmp_parse_request(req, &exec, &args, &id, err), -EINVAL,
	       "execute must be a string");
	json_decref(req);
	req = parse("{\"execute\":\"x\",\"arguments\":[]}");
	is_int(vmig_qmp_parse_request(req, &exec, &args, &id, err), -EINVAL,
	       "arguments must be an object");
	json_decref(req);
	req = parse("{\"exec\":\"x\"}");
	is_int(vmig_qmp_parse_request(req, &exec, &args, &id, err), -EINVAL,
	       "unknown request key");
	json_decref(req);
	req = parse("\"query\"");
	is_int(vmig_qmp_parse_request(req, &exec, &args, &id, err), -EINVAL,
	       "request must be an object");
	json_decref(req);

	r = vmig_qmp_error(VMIG_QMP_COMMAND_NOT_FOUND, NULL,
			   "The command %s has not been found", "foo");
	line = vmig_json_line(r);
	is_str(line, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":"
	       "\"The command foo has not been found\"}}\n", "error shape");
	free(line);
	json_decref(r);

	r = vmig_qmp_event("MIGRATION", json_pack("{s:s}", "status", "x"));
	ok(json_is_integer(json_object_get(json_object_get(r, "timestamp"),
					   "seconds")), "event timestamp");
	is_str(json_string_value(json_object_get(r, "event")), "MIGRATION",
	       "event name");
	json_decref(r);
}

int main(void)
{
	test_parse();
	test_getters();
	test_qmp();
	return tap_done();
}
