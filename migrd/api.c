// SPDX-License-Identifier: MIT
/* JSON API commands: QMP conventions, every argument checked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "migrd: api: "
#include "api.h"
#include "ctlmsg_heap.h"
#include "guest_files.h"
#include "json.h"
#include "log.h"
#include "migrate.h"
#include "migrd.h"
#include "relay.h"
#include "vmig/version.h"

struct cmd {
	const char *name;
	json_t *(*fn)(struct migrd *d, struct migrd_api_session *s,
		      json_t *args, json_t *id);
	const char *const *keys;	/* allowed arguments */
};

static json_t *bad_args(json_t *id, const char *err)
{
	return vmig_qmp_error(VMIG_QMP_GENERIC, id, "%s", err);
}

/* A guest name argument: present, a string, a valid name. */
static int get_guest(json_t *args, bool required, const char **guest,
		     char *err)
{
	int ret = vmig_json_get_str(args, "guest", required, guest, err);

	if (ret)
		return ret;
	if (!migrd_name_valid(*guest)) {
		snprintf(err, VMIG_JSON_ERR_LEN,
			 "parameter 'guest' is not a valid name (1-63 of A-Z a-z 0-9 . _ -)");
		return -EINVAL;
	}
	return 0;
}

static json_t *no_guest(json_t *id, struct migrd *d, const char *guest)
{
	return vmig_qmp_error(VMIG_QMP_NOT_FOUND, id,
			      "no guest '%s' on host %s", guest, d->cfg.host);
}

static json_t *cmd_capabilities(struct migrd *d, struct migrd_api_session *s,
				json_t *args, json_t *id)
{
	json_t *en = json_object_get(args, "enable");

	if (s->negotiated)
		return vmig_qmp_error(VMIG_QMP_COMMAND_NOT_FOUND, id,
				      "Capabilities negotiation is already complete, command ignored");
	if (en && (!json_is_array(en) || json_array_size(en)))
		return vmig_qmp_error(VMIG_QMP_GENERIC, id,
				      "parameter 'enable': this server offers no capabilities");
	s->negotiated = true;
	return vmig_qmp_return(NULL, id);
}

static const char *mig_status(struct migrd *d, const char *guest)
{
	json_t *q = migrd_mig_query(d->migs, guest);
	const char *st = "none";

	if (q) {
		/* status names are static strings of migrate.c */
		const char *v = json_string_value(json_object_get(q, "status"));
		static const char *const names[] = {
			"setup", "active", "completed", "failed",
			"cancelling", "cancelled", NULL,
		};
		int i;

		for (i = 0; v && names[i]; i++)
			if (!strcmp(v, names[i]))
				st = names[i];
		json_decref(q);
	}
	return st;
}

struct list_ctx {
	struct migrd *d;
	json_t *list;
};

static void add_file_guest(const char *guest, void *arg)
{
	struct list_ctx *c = arg;
	json_t *g;
	size_t i;

	json_array_foreach(c->list, i, g)
		if (!strcmp(json_string_value(json_object_get(g, "name")),
			    guest))
			return;
	json_array_append_new(c->list, json_pack("{s:s, s:i, s:s}", "name",
						 guest, "processes", 0,
						 "migration",
						 mig_status(c->d, guest)));
}

static json_t *cmd_list_guests(struct migrd *d, struct migrd_api_session *s,
			       json_t *args, json_t *id)
{
	char (*names)[MIGRD_NAME_MAX] = NULL;
	struct migrd_proc *procs = NULL;
	json_t *list = json_array();
	int n, i, np;

	n = migrd_registry_guests(&d->reg, &names);
	if (n < 0 || !list) {
		json_decref(list);
		return vmig_qmp_error(VMIG_QMP_GENERIC, id, "out of memory");
	}
	for (i = 0; i < n; i++) {
		np = migrd_registry_find(&d->reg, names[i], 0, 0, &procs);
		free(procs);
		procs = NULL;
		json_array_append_new(list,
			json_pack("{s:s, s:i, s:s}", "name", names[i],
				  "processes", np < 0 ? 0 : np,
				  "migration", mig_status(d, names[i])));
	}
	free(names);
	/* process guests without any shim registered */
	{
		struct list_ctx c = { d, list };

		migrd_guest_files_each(&d->cfg, add_file_guest, &c);
	}
	return vmig_qmp_return(list, id);
}

/* The shims' own view: one STATE round, bounded, for query-guest. */
static json_t *guest_states(struct migrd *d, const char *guest)
{
	Vmig__CtlMsg req = VMIG__CTL_MSG__INIT, inner = VMIG__CTL_MSG__INIT;
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	Vmig__CtlMsg *reply;
	json_t *a = json_array();
	size_t i;

	req.has_type = inner.has_type = 1;
	req.type = VMIG__CTL_TYPE__CTL_FORWARD;
	inner.type = VMIG__CTL_TYPE__CTL_STATE;
	req.forward = &fw;
	fw.inner = &inner;
	fw.dest_guest = (char *)guest;
	reply = migrd_relay_forward(d, &req, true, 0);
	for (i = 0; reply && a && i < reply->n_replies; i++) {
		const Vmig__CtlMsg *r = reply->replies[i];
		json_t *o = json_pack("{s:i}", "pid",
				      r->hello ? (int)r->hello->pid : 0);

		if (!o)
			continue;
		if (r->type == VMIG__CTL_TYPE__CTL_ERROR) {
			json_object_set_new(o, "error", json_string(
				r->error && r->error->desc ? r->error->desc :
							     "no answer"));
		} else if (r->state) {
			json_object_set_new(o, "phase", json_string(
				r->state->phase ? r->state->phase : "unknown"));
			json_object_set_new(o, "connections",
					    json_integer(r->state->n_conns));
			json_object_set_new(o, "qps",
					    json_integer(r->state->num_qps));
			json_object_set_new(o, "mrs",
					    json_integer(r->state->num_mrs));
			json_object_set_new(o, "cqs",
					    json_integer(r->state->num_cqs));
		}
		json_array_append_new(a, o);
	}
	vmig_ctl_free(reply);
	return a;
}

static const char *const guest_keys[] = { "guest", NULL };

static json_t *cmd_query_guest(struct migrd *d, struct migrd_api_session *s,
			       json_t *args, json_t *id)
{
	char err[VMIG_JSON_ERR_LEN];
	struct migrd_proc *procs = NULL;
	const char *guest;
	json_t *o, *pa, *mig;
	int n, i;

	if (get_guest(args, true, &guest, err))
		return bad_args(id, err);
	n = migrd_registry_find(&d->reg, guest, 0, 0, &procs);
	if (n < 0 ||
	    (n == 0 && !migrd_guest_file_running(&d->cfg, guest))) {
		free(procs);
		return n < 0 ? vmig_qmp_error(VMIG_QMP_GENERIC, id,
					      "out of memory") :
			       no_guest(id, d, guest);
	}
	pa = json_array();
	for (i = 0; pa && i < n; i++)
		json_array_append_new(pa, json_pack("{s:i, s:i, s:s}",
			"pid", (int)procs[i].pid,
			"host-pid", (int)procs[i].host_pid,
			"ctl-path", procs[i].ctl_path));
	free(procs);
	o = json_pack("{s:s, s:s, s:o, s:o}", "name", guest, "host",
		      d->cfg.host, "processes", pa ? pa : json_array(),
		      "shims", guest_states(d, guest));
	mig = migrd_mig_query(d->migs, guest);
	if (o && mig)
		json_object_set_new(o, "migration", mig);
	else
		json_decref(mig);
	return o ? vmig_qmp_return(o, id) :
		   vmig_qmp_error(VMIG_QMP_GENERIC, id, "out of memory");
}

static const char *const migrate_keys[] = { "guest", "host", NULL };

static json_t *cmd_migrate(struct migrd *d, struct migrd_api_session *s,
			   json_t *args, json_t *id)
{
	char err[VMIG_JSON_ERR_LEN];
	const char *guest, *host;
	int ret;

	if (get_guest(args, true, &guest, err) ||
	    vmig_json_get_str(args, "host", true, &host, err))
		return bad_args(id, err);
	if (!*host)
		return bad_args(id, "parameter 'host' is empty");
	ret = migrd_mig_start(d->migs, guest, host, err, sizeof(err));
	switch (ret) {
	case 0:
		return vmig_qmp_return(NULL, id);
	case -ENOENT:
		return vmig_qmp_error(VMIG_QMP_NOT_FOUND, id, "%s", err);
	case -EINVAL:
		return vmig_qmp_error(VMIG_QMP_NOT_FOUND, id, "%s", err);
	default:
		return vmig_qmp_error(VMIG_QMP_GENERIC, id, "%s", err);
	}
}

static json_t *cmd_query_migrate(struct migrd *d,
				 struct migrd_api_session *s, json_t *args,
				 json_t *id)
{
	char err[VMIG_JSON_ERR_LEN];
	const char *guest;
	json_t *q;
	int ret = get_guest(args, false, &guest, err);

	if (ret == -ENOENT)
		return vmig_qmp_return(migrd_mig_query_all(d->migs), id);
	if (ret)
		return bad_args(id, err);
	q = migrd_mig_query(d->migs, guest);
	if (q)
		return vmig_qmp_return(q, id);
	/* a known guest that never migrated reports status none */
	{
		struct migrd_proc *procs = NULL;
		int n = migrd_registry_find(&d->reg, guest, 0, 0, &procs);

		free(procs);
		if (n <= 0)
			return no_guest(id, d, guest);
	}
	return vmig_qmp_return(json_pack("{s:s, s:s}", "guest", guest,
					 "status", "none"), id);
}

static json_t *cmd_migrate_cancel(struct migrd *d,
				  struct migrd_api_session *s, json_t *args,
				  json_t *id)
{
	char err[VMIG_JSON_ERR_LEN];
	const char *guest;

	if (get_guest(args, true, &guest, err))
		return bad_args(id, err);
	switch (migrd_mig_cancel(d->migs, guest)) {
	case 0:
		return vmig_qmp_return(NULL, id);
	case -ENOENT:
		return vmig_qmp_error(VMIG_QMP_NOT_FOUND, id,
				      "guest '%s' has no migration", guest);
	default:
		return vmig_qmp_error(VMIG_QMP_GENERIC, id,
				      "the migration of '%s' can no longer be cancelled",
				      guest);
	}
}

static json_t *cmd_query_commands(struct migrd *d,
				  struct migrd_api_session *s, json_t *args,
				  json_t *id);

static const char *const no_keys[] = { NULL };
static const char *const cap_keys[] = { "enable", NULL };
static const char *const qm_keys[] = { "guest", NULL };

static const struct cmd cmds[] = {
	{ "qmp_capabilities", cmd_capabilities, cap_keys },
	{ "query-commands", cmd_query_commands, no_keys },
	{ "list-guests", cmd_list_guests, no_keys },
	{ "query-guest", cmd_query_guest, guest_keys },
	{ "migrate", cmd_migrate, migrate_keys },
	{ "query-migrate", cmd_query_migrate, qm_keys },
	{ "migrate-cancel", cmd_migrate_cancel, guest_keys },
};

static json_t *cmd_query_commands(struct migrd *d,
				  struct migrd_api_session *s, json_t *args,
				  json_t *id)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		json_array_append_new(a, json_pack("{s:s}", "name",
						   cmds[i].name));
	return vmig_qmp_return(a, id);
}

json_t *migrd_api_greeting(void)
{
	int major = 0, minor = 0, micro = 0;

	sscanf(VMIG_VERSION_STRING, "%d.%d.%d", &major, &minor, &micro);
	return json_pack("{s:{s:{s:{s:i, s:i, s:i}, s:s}, s:[]}}", "QMP",
			 "version", "vmigrate", "major", major, "minor", minor,
			 "micro", micro, "package", "", "capabilities");
}

json_t *migrd_api_handle(struct migrd *d, struct migrd_api_session *s,
			 const char *line, size_t len)
{
	char err[VMIG_JSON_ERR_LEN];
	const char *execute;
	json_t *req = NULL, *args = NULL, *id = NULL, *reply;
	size_t i;

	if (vmig_json_parse(line, len, &req, err))
		return vmig_qmp_error(VMIG_QMP_GENERIC, NULL, "%s", err);
	if (vmig_qmp_parse_request(req, &execute, &args, &id, err)) {
		/* an id is echoed even on a malformed request */
		reply = vmig_qmp_error(VMIG_QMP_GENERIC,
				       json_is_object(req) ? id : NULL, "%s",
				       err);
		goto out;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, execute))
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		reply = vmig_qmp_error(VMIG_QMP_COMMAND_NOT_FOUND, id,
				       "The command %s has not been found",
				       execute);
		goto out;
	}
	if (!s->negotiated && cmds[i].fn != cmd_capabilities) {
		reply = vmig_qmp_error(VMIG_QMP_COMMAND_NOT_FOUND, id,
				       "Expecting capabilities negotiation with 'qmp_capabilities'");
		goto out;
	}
	if (vmig_json_check_keys(args, cmds[i].keys, err)) {
		reply = vmig_qmp_error(VMIG_QMP_GENERIC, id, "%s", err);
		goto out;
	}
	pr_debug("%s", execute);
	reply = cmds[i].fn(d, s, args, id);
out:
	json_decref(args);
	json_decref(req);
	return reply;
}
