// SPDX-License-Identifier: MIT
/*
 * vmigrate: the command line for migrd's JSON API (docs/api.md).
 *
 *   vmigrate [OPTIONS] <guest> <host>          migrate and follow it
 *   vmigrate [OPTIONS] migrate <guest> <host>  the same
 *   vmigrate [OPTIONS] list                    guests on this host
 *   vmigrate [OPTIONS] status [<guest>]        query-migrate
 *   vmigrate [OPTIONS] cancel <guest>          migrate-cancel
 *
 * Exit codes (docs/vmigrate.1.md): 0 done, 1 the migration failed or was
 * cancelled, 2 usage, 3 migrd not reachable, 4 migrd refused the request.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "record.h"
#include "sock.h"

enum {
	EXIT_OK = 0,
	EXIT_MIG_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
	EXIT_REFUSED = 4,
};

struct client {
	int fd;
	FILE *in;
	bool json;
	int next_id;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmigrate [OPTIONS] <guest> <host>\n"
		"       vmigrate [OPTIONS] migrate <guest> <host>\n"
		"       vmigrate [OPTIONS] list\n"
		"       vmigrate [OPTIONS] status [<guest>]\n"
		"       vmigrate [OPTIONS] cancel <guest>\n"
		"options:\n"
		"  --json          print migrd's JSON replies (for scripts)\n"
		"  --no-wait       migrate: return once migrd accepted it\n"
		"  --socket PATH   migrd's API socket (default\n"
		"                  $VMIG_RUN_DIR/migrd-api.sock, /run/vmig/...)\n"
		"exit: 0 done, 1 migration failed or cancelled, 2 usage,\n"
		"      3 migrd not reachable, 4 request refused\n");
}

/* The next line that is a reply (events are skipped). NULL: connection
 * lost or garbage. */
static json_t *read_reply(struct client *c)
{
	char *line = NULL;
	size_t cap = 0;
	json_t *j = NULL;
	char err[VMIG_JSON_ERR_LEN];

	while (getline(&line, &cap, c->in) > 0) {
		if (vmig_json_parse(line, strlen(line), &j, err)) {
			fprintf(stderr, "vmigrate: migrd sent bad JSON: %s\n",
				err);
			break;
		}
		if (json_object_get(j, "return") || json_object_get(j, "error"))
			break;
		json_decref(j);	/* an event */
		j = NULL;
	}
	free(line);
	return j;
}

static json_t *request(struct client *c, const char *cmd, json_t *args)
{
	json_t *req = json_pack("{s:s, s:i}", "execute", cmd, "id",
				c->next_id++);
	char *line;
	int ret;

	if (args)
		json_object_set_new(req, "arguments", args);
	line = vmig_json_line(req);
	json_decref(req);
	if (!line)
		return NULL;
	ret = vmig_write_full(c->fd, line, strlen(line));
	free(line);
	return ret ? NULL : read_reply(c);
}

static int open_client(struct client *c, const char *path)
{
	char buf[256];
	json_t *g, *r;
	const char *dir = getenv("VMIG_RUN_DIR");

	if (!path) {
		snprintf(buf, sizeof(buf), "%s/migrd-api.sock",
			 dir && *dir ? dir : "/run/vmig");
		path = buf;
	}
	c->fd = vmig_unix_connect(path);
	if (c->fd < 0) {
		fprintf(stderr, "vmigrate: cannot reach migrd at %s: %s\n",
			path, strerror(-c->fd));
		return -1;
	}
	c->in = fdopen(dup(c->fd), "r");
	if (!c->in)
		return -1;
	/* the greeting is not a reply: read it as a line */
	{
		char *line = NULL;
		size_t cap = 0;
		char err[VMIG_JSON_ERR_LEN];

		if (getline(&line, &cap, c->in) <= 0 ||
		    vmig_json_parse(line, strlen(line), &g, err) ||
		    !json_object_get(g, "QMP")) {
			fprintf(stderr, "vmigrate: %s does not greet like migrd\n",
				path);
			free(line);
			return -1;
		}
		free(line);
		json_decref(g);
	}
	r = request(c, "qmp_capabilities", NULL);
	if (!r || !json_object_get(r, "return")) {
		fprintf(stderr, "vmigrate: capabilities negotiation failed\n");
		json_decref(r);
		return -1;
	}
	json_decref(r);
	return 0;
}

/* Prints an error reply; returns the exit code for it. */
static int report_error(struct client *c, json_t *r)
{
	json_t *e = json_object_get(r, "error");

	if (!r) {
		fprintf(stderr, "vmigrate: migrd closed the connection\n");
		return EXIT_UNREACHABLE;
	}
	if (c->json) {
		char *s = vmig_json_line(r);

		fputs(s ? s : "", stdout);
		free(s);
	}
	fprintf(stderr, "vmigrate: %s\n",
		json_string_value(json_object_get(e, "desc")));
	return EXIT_REFUSED;
}

static void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));

	if (s)
		printf("%s\n", s);
	free(s);
}

static int cmd_list(struct client *c)
{
	json_t *r = request(c, "list-guests", NULL), *ret, *g;
	size_t i;

	ret = json_object_get(r, "return");
	if (!ret) {
		i = report_error(c, r);
		json_decref(r);
		return (int)i;
	}
	if (c->json) {
		print_json(ret);
	} else {
		printf("%-24s %9s  %s\n", "GUEST", "PROCESSES", "MIGRATION");
		json_array_foreach(ret, i, g)
			printf("%-24s %9lld  %s\n",
			       json_string_value(json_object_get(g, "name")),
			       json_integer_value(json_object_get(g, "processes")),
			       json_string_value(json_object_get(g, "migration")));
	}
	json_decref(r);
	return EXIT_OK;
}

static long long geti(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static const char *gets_(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static void print_mig(json_t *m)
{
	json_t *times = json_object_get(m, "phase-times-ms"), *v;
	const char *k;

	printf("guest %s -> %s: %s (phase %s), %lld ms, downtime %lld ms\n",
	       gets_(m, "guest"), gets_(m, "destination"), gets_(m, "status"),
	       gets_(m, "phase"), geti(m, "total-time-ms"),
	       geti(m, "downtime-ms"));
	if (json_object_size(times)) {
		printf("  phases:");
		json_object_foreach(times, k, v)
			printf(" %s %lld ms", k, (long long)json_integer_value(v));
		printf("\n");
	}
	if (json_object_get(m, "error-desc"))
		printf("  error: %s\n", gets_(m, "error-desc"));
}

static int cmd_status(struct client *c, const char *guest)
{
	json_t *r = request(c, "query-migrate",
			    guest ? json_pack("{s:s}", "guest", guest) : NULL);
	json_t *ret = json_object_get(r, "return"), *m;
	size_t i;
	int code = EXIT_OK;

	if (!ret) {
		code = report_error(c, r);
	} else if (c->json) {
		print_json(ret);
	} else if (json_is_array(ret)) {
		if (!json_array_size(ret))
			printf("no migrations\n");
		json_array_foreach(ret, i, m)
			print_mig(m);
	} else if (!strcmp(gets_(ret, "status"), "none")) {
		printf("guest %s: no migration\n", guest);
	} else {
		print_mig(ret);
	}
	json_decref(r);
	return code;
}

static int cmd_cancel(struct client *c, const char *guest)
{
	json_t *r = request(c, "migrate-cancel",
			    json_pack("{s:s}", "guest", guest));
	int code = EXIT_OK;

	if (!json_object_get(r, "return"))
		code = report_error(c, r);
	else if (c->json)
		print_json(json_object_get(r, "return"));
	else
		printf("cancelling the migration of %s\n", guest);
	json_decref(r);
	return code;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_migrate(struct client *c, const char *guest, const char *host,
		       bool wait)
{
	json_t *r = request(c, "migrate", json_pack("{s:s, s:s}", "guest",
						     guest, "host", host));
	bool tty = isatty(STDOUT_FILENO) && !c->json;
	char last_phase[64] = "";
	double t0 = now_s();
	int code;

	if (!json_object_get(r, "return")) {
		code = report_error(c, r);
		json_decref(r);
		return code;
	}
	json_decref(r);
	if (!wait) {
		if (c->json)
			print_json(json_object());
		else
			printf("migrating %s to %s\n", guest, host);
		return EXIT_OK;
	}
	for (;;) {
		json_t *m;
		const char *status, *phase;
		double el = now_s() - t0;
		long long sent;

		r = request(c, "query-migrate",
			    json_pack("{s:s}", "guest", guest));
		m = json_object_get(r, "return");
		if (!m) {
			code = report_error(c, r);
			json_decref(r);
			return code;
		}
		status = gets_(m, "status");
		phase = gets_(m, "phase");
		sent = geti(m, "bytes-sent");
		if (tty) {
			printf("\r%-10s %-10s %10lld bytes %8.1f MB/s %7.1f s ",
			       status, phase, sent,
			       el > 0 ? sent / el / 1e6 : 0.0, el);
			fflush(stdout);
		} else if (!c->json && strcmp(phase, last_phase)) {
			printf("%7.1f s  %s\n", el, phase);
			fflush(stdout);
		}
		snprintf(last_phase, sizeof(last_phase), "%s", phase);
		if (!strcmp(status, "completed") || !strcmp(status, "failed") ||
		    !strcmp(status, "cancelled")) {
			if (tty)
				printf("\n");
			if (c->json)
				print_json(m);
			else
				print_mig(m);
			code = strcmp(status, "completed") ? EXIT_MIG_FAILED :
							     EXIT_OK;
			json_decref(r);
			return code;
		}
		json_decref(r);
		usleep(200 * 1000);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client c = { .fd = -1, .next_id = 1 };
	const char *sock = NULL, *cmd;
	bool wait = true;
	int opt, nargs, code;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "+jns:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			c.json = true;
			break;
		case 'n':
			wait = false;
			break;
		case 's':
			sock = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	nargs = argc - optind;
	if (nargs < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	/* check the arguments before bothering migrd */
	if (!strcmp(cmd, "list") ? nargs != 1 :
	    !strcmp(cmd, "status") ? nargs > 2 :
	    !strcmp(cmd, "cancel") ? nargs != 2 :
	    !strcmp(cmd, "migrate") ? nargs != 3 : nargs != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (open_client(&c, sock))
		return EXIT_UNREACHABLE;
	if (!strcmp(cmd, "list"))
		code = cmd_list(&c);
	else if (!strcmp(cmd, "status"))
		code = cmd_status(&c, nargs == 2 ? argv[optind + 1] : NULL);
	else if (!strcmp(cmd, "cancel"))
		code = cmd_cancel(&c, argv[optind + 1]);
	else if (!strcmp(cmd, "migrate"))
		code = cmd_migrate(&c, argv[optind + 1], argv[optind + 2],
				   wait);
	else
		code = cmd_migrate(&c, argv[optind], argv[optind + 1], wait);
	fclose(c.in);
	close(c.fd);
	return code;
}
