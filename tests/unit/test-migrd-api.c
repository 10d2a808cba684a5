// SPDX-License-Identifier: MIT
/*
 * The JSON API handler against good and bad input (no socket): the
 * negotiation rule, malformed JSON, unknown commands, wrong argument
 * types, unknown guests and hosts, and a migration through the state
 * machine to its (for now) failure, with the reason reported. Also the
 * FORWARD destination resolution and the state machine's transitions.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "json.h"
#include "migrate.h"
#include "migrd.h"
#include "relay.h"
#include "tap.h"

static struct migrd d;

static json_t *call(struct migrd_api_session *s, const char *line)
{
	return migrd_api_handle(&d, s, line, strlen(line));
}

static const char *err_class(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "error"),
						 "class"));
}

static const char *err_desc(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "error"),
						 "desc"));
}

static void expect_error(struct migrd_api_session *s, const char *line,
			 const char *cls, const char *in_desc)
{
	json_t *r = call(s, line);
	const char *c = err_class(r), *desc = err_desc(r);

	ok(c && !strcmp(c, cls) && desc && strstr(desc, in_desc),
	   "%s -> %s", line, cls);
	if (!(c && !strcmp(c, cls) && desc && strstr(desc, in_desc)))
		printf("#   got %s: %s\n", c ? c : "-", desc ? desc : "-");
	json_decref(r);
}

static json_t *expect_return(struct migrd_api_session *s, const char *line)
{
	json_t *r = call(s, line), *ret = json_object_get(r, "return");

	ok(ret != NULL, "%s -> return", line);
	if (!ret)
		printf("#   got %s\n", err_desc(r) ? err_desc(r) : "?");
	json_incref(ret);
	json_decref(r);
	return ret;
}

static bool is_local_none(const char *addr)
{
	return !strcmp(addr, "192.168.9.9");
}

static void test_resolve(void)
{
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	struct migrd_dest dest;
	uint8_t gid[16] = { [10] = 0xff, [11] = 0xff, 10, 77, 0, 2 };
	uint8_t ll[16] = { 0xfe, 0x80, [15] = 1 };
	char err[256];

	is_int(migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
				   sizeof(err)), 0, "no destination");
	ok(dest.local, "no destination: this host");
	fw.has_dest_gid = 1;
	fw.dest_gid.data = gid;
	fw.dest_gid.len = 16;
	is_int(migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
				   sizeof(err)), 0, "GID ::ffff:10.77.0.2");
	ok(!dest.local && !strcmp(dest.name, "hB") && dest.port == 7411,
	   "GID maps to host hB");
	gid[15] = 1;
	migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
			    sizeof(err));
	ok(dest.local, "GID of this host's address: local");
	gid[15] = 99;
	migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
			    sizeof(err));
	ok(!dest.local && !strcmp(dest.addr, "10.77.0.99") &&
	   dest.port == d.cfg.port, "GID outside the config: cluster port");
	fw.dest_gid.data = ll;
	is_int(migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
				   sizeof(err)), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "link-local GID refused");
	fw.dest_gid.len = 4;
	is_int(migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
				   sizeof(err)), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "short GID refused");
	fw.dest_host = "hB";
	is_int(migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
				   sizeof(err)), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "both destinations refused");
	fw.has_dest_gid = 0;
	migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
			    sizeof(err));
	ok(!dest.local && !strcmp(dest.addr, "10.77.0.2"), "by name");
	fw.dest_host = "hA";
	migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
			    sizeof(err));
	ok(dest.local, "own name: local");
	fw.dest_host = "192.168.9.9";
	migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
			    sizeof(err));
	ok(dest.local, "an address of this machine: local");
	fw.dest_host = "ghost";
	is_int(migrd_relay_resolve(&d.cfg, &fw, is_local_none, &dest, err,
				   sizeof(err)), VMIG__ERR_CLASS__ERR_NOT_FOUND,
	       "unknown name: not found");
}

static void test_states(void)
{
	int s, t, n = 0;

	ok(migrd_mig_transition_ok(MIGRD_MIG_NONE, MIGRD_MIG_SETUP),
	   "none -> setup");
	ok(migrd_mig_transition_ok(MIGRD_MIG_SETUP, MIGRD_MIG_PRECOPY),
	   "setup -> precopy");
	ok(!migrd_mig_transition_ok(MIGRD_MIG_SETUP, MIGRD_MIG_DUMP),
	   "no skipping phases");
	ok(migrd_mig_transition_ok(MIGRD_MIG_DUMP, MIGRD_MIG_CANCELLING),
	   "cancel during dump");
	ok(!migrd_mig_transition_ok(MIGRD_MIG_RESUME, MIGRD_MIG_CANCELLING),
	   "no cancel once resuming on the destination");
	ok(migrd_mig_transition_ok(MIGRD_MIG_RESUME, MIGRD_MIG_COMPLETED),
	   "resume -> completed");
	for (s = 0; s < MIGRD_MIG__COUNT; s++)
		for (t = 0; t < MIGRD_MIG__COUNT; t++)
			if (migrd_mig_state_final(s) &&
			    migrd_mig_transition_ok(s, t))
				n++;
	is_int(n, 0, "final states are final");
	for (s = 0; s < MIGRD_MIG__COUNT; s++)
		if (!strcmp(migrd_mig_state_name(s), "invalid"))
			n++;
	is_int(n, 0, "every state has a name");
}

int main(void)
{
	struct migrd_api_session s = { 0 }, s2 = { 0 };
	char err[256];
	json_t *r;
	int i;

	migrd_config_init(&d.cfg);
	migrd_config_parse(&d.cfg,
			   "host = hA\nrun_dir = /tmp/vmig-api-test-none\n"
			   "key_file = /nonexistent\nforward_timeout_ms = 300\n"
			   "connect_timeout_ms = 300\n"
			   "peer.hA = 10.77.0.1\npeer.hB = 10.77.0.2:7411\n"
			   "peer.hC = 127.0.0.1:1\n",
			   err, sizeof(err));
	d.key.key = (const uint8_t *)"0123456789abcdef";
	d.key.len = 16;
	migrd_registry_init(&d.reg);
	migrd_pool_init(&d.peers);
	d.migs = migrd_mig_table_create(&d);
	migrd_registry_add(&d.reg, 100, 0, "web1", "/tmp/vmig-api-test-none/s");

	r = migrd_api_greeting();
	ok(json_object_get(json_object_get(r, "QMP"), "capabilities"),
	   "greeting has QMP.capabilities");
	json_decref(r);

	expect_error(&s, "{\"execute\":\"list-guests\"}", "CommandNotFound",
		     "qmp_capabilities");
	expect_error(&s, "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}",
		     "GenericError", "no capabilities");
	json_decref(expect_return(&s, "{\"execute\":\"qmp_capabilities\"}"));
	expect_error(&s, "{\"execute\":\"qmp_capabilities\"}",
		     "CommandNotFound", "already complete");

	/* malformed input of every kind */
	expect_error(&s, "", "GenericError", "parse error");
	expect_error(&s, "{", "GenericError", "parse error");
	expect_error(&s, "{\"execute\":\"list-guests\"", "GenericError",
		     "parse error");
	expect_error(&s, "\"list-guests\"", "GenericError", "JSON object");
	expect_error(&s, "null", "GenericError", "JSON object");
	expect_error(&s, "{\"execute\":5}", "GenericError", "string");
	expect_error(&s, "{\"exec\":\"list-guests\"}", "GenericError",
		     "unexpected");
	expect_error(&s, "{\"execute\":\"list-guests\",\"arguments\":[]}",
		     "GenericError", "object");
	expect_error(&s, "{\"execute\":\"x\",\"execute\":\"y\"}",
		     "GenericError", "parse error");
	expect_error(&s, "{\"execute\":\"frobnicate\"}", "CommandNotFound",
		     "frobnicate");
	expect_error(&s, "{\"execute\":\"list-guests\",\"arguments\":{\"x\":1}}",
		     "GenericError", "'x' is unexpected");
	expect_error(&s, "{\"execute\":\"query-guest\"}", "GenericError",
		     "'guest' is missing");
	expect_error(&s, "{\"execute\":\"query-guest\",\"arguments\":{\"guest\":1}}",
		     "GenericError", "expects a string");
	expect_error(&s, "{\"execute\":\"query-guest\",\"arguments\":{\"guest\":\"a b\"}}",
		     "GenericError", "not a valid name");
	expect_error(&s, "{\"execute\":\"query-guest\",\"arguments\":{\"guest\":\"nope\"}}",
		     "DeviceNotFound", "no guest 'nope'");
	expect_error(&s, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\"}}",
		     "GenericError", "'host' is missing");
	expect_error(&s, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\",\"host\":[]}}",
		     "GenericError", "expects a string");
	expect_error(&s, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\",\"host\":\"hZ\"}}",
		     "DeviceNotFound", "unknown host 'hZ'");
	expect_error(&s, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\",\"host\":\"hA\"}}",
		     "DeviceNotFound", "is this host");
	expect_error(&s, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"nope\",\"host\":\"hB\"}}",
		     "DeviceNotFound", "no guest 'nope'");
	expect_error(&s, "{\"execute\":\"migrate-cancel\",\"arguments\":{\"guest\":\"web1\"}}",
		     "DeviceNotFound", "no migration");
	expect_error(&s, "{\"execute\":\"query-migrate\",\"arguments\":{\"guest\":\"nope\"}}",
		     "DeviceNotFound", "no guest");

	/* an id comes back, whatever its type */
	r = call(&s, "{\"execute\":\"list-guests\",\"id\":{\"n\":[1]}}");
	ok(json_is_object(json_object_get(r, "id")), "id echoed");
	json_decref(r);
	r = call(&s, "{\"execute\":\"nope\",\"id\":7}");
	is_int(json_integer_value(json_object_get(r, "id")), 7,
	       "id echoed on error");
	json_decref(r);

	r = expect_return(&s, "{\"execute\":\"list-guests\"}");
	ok(json_array_size(r) == 1 &&
	   !strcmp(json_string_value(json_object_get(json_array_get(r, 0),
						     "name")), "web1"),
	   "list-guests: web1");
	json_decref(r);
	r = expect_return(&s, "{\"execute\":\"query-guest\",\"arguments\":{\"guest\":\"web1\"}}");
	ok(json_array_size(json_object_get(r, "processes")) == 1,
	   "query-guest: one process");
	ok(json_object_get(json_array_get(json_object_get(r, "shims"), 0),
			   "error") != NULL,
	   "query-guest: the unreachable shim is reported as such");
	json_decref(r);
	r = expect_return(&s, "{\"execute\":\"query-migrate\",\"arguments\":{\"guest\":\"web1\"}}");
	ok(!strcmp(json_string_value(json_object_get(r, "status")), "none"),
	   "query-migrate before any: none");
	json_decref(r);

	/* a session that did not negotiate is still refused */
	expect_error(&s2, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\",\"host\":\"hB\"}}",
		     "CommandNotFound", "qmp_capabilities");

	/* hC has no migrd: the migration fails in setup, the reason told */
	json_decref(expect_return(&s, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\",\"host\":\"hC\"}}"));
	expect_error(&s, "{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\",\"host\":\"hC\"}}",
		     "GenericError", "already migrating");
	for (i = 0; i < 100; i++) {
		const char *st;

		r = migrd_mig_query(d.migs, "web1");
		st = json_string_value(json_object_get(r, "status"));
		if (st && !strcmp(st, "failed"))
			break;
		json_decref(r);
		r = NULL;
		usleep(50 * 1000);
	}
	ok(r != NULL, "migration ends as failed");
	ok(r && strstr(json_string_value(json_object_get(r, "error-desc")),
		       "shim"), "its reason: %s",
	   r ? json_string_value(json_object_get(r, "error-desc")) : "-");
	ok(r && !strcmp(json_string_value(json_object_get(r, "failed-phase")),
			"setup"), "failed in setup");
	ok(r && json_object_get(json_object_get(r, "phase-times-ms"), "setup"),
	   "phase time of setup reported");
	json_decref(r);
	expect_error(&s, "{\"execute\":\"migrate-cancel\",\"arguments\":{\"guest\":\"web1\"}}",
		     "GenericError", "no longer be cancelled");
	r = expect_return(&s, "{\"execute\":\"query-migrate\"}");
	is_int(json_array_size(r), 1, "query-migrate without guest: all");
	json_decref(r);

	test_resolve();
	test_states();
	migrd_mig_table_destroy(d.migs);
	migrd_registry_dispose(&d.reg);
	return tap_done();
}
