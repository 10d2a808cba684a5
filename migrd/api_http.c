// SPDX-License-Identifier: MIT
/* Minimal HTTP/1.1 front of the JSON API: one request per connection. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: http: "
#include "api.h"
#include "api_http.h"
#include "hmac.h"
#include "json.h"
#include "log.h"
#include "migrd.h"
#include "record.h"
#include "sock.h"

#define HEAD_MAX 8192
#define BODY_MAX (64 * 1024)

struct http_conn {
	struct migrd *d;
	int fd;
};

static void respond(int fd, int code, const char *reason, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 code, reason, strlen(body));

	if (n > 0 && !vmig_write_full(fd, head, (size_t)n))
		vmig_write_full(fd, body, strlen(body));
}

static void respond_error(int fd, int code, const char *reason,
			  const char *desc)
{
	json_t *e = vmig_qmp_error(VMIG_QMP_GENERIC, NULL, "%s", desc);
	char *line = e ? vmig_json_line(e) : NULL;

	respond(fd, code, reason, line ? line : "{}\n");
	free(line);
	json_decref(e);
}

/* The header's value (trimmed) or NULL; head is NUL-terminated. */
static const char *header(char *head, const char *name, char *out,
			  size_t len)
{
	size_t n = strlen(name);
	char *p = strstr(head, "\r\n");

	while (p && p[2]) {
		char *line = p + 2, *end = strstr(line, "\r\n");

		if (!end)
			break;
		if ((size_t)(end - line) > n && !strncasecmp(line, name, n) &&
		    line[n] == ':') {
			char *v = line + n + 1;
			size_t vl;

			while (*v == ' ' || *v == '\t')
				v++;
			vl = (size_t)(end - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= len)
				return NULL;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return out;
		}
		p = end;
	}
	return NULL;
}

/* The configured token, or NULL (then nothing is served). */
static char *load_token(const char *path)
{
	char buf[512];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	return n >= 16 ? strdup(buf) : NULL;
}

static bool authorized(struct migrd *d, char *head)
{
	char got[600], *token = load_token(d->cfg.http_token_file);
	bool ok = false;

	if (token && header(head, "Authorization", got, sizeof(got)) &&
	    !strncmp(got, "Bearer ", 7) && strlen(got + 7) == strlen(token))
		ok = vmig_memeq_ct(got + 7, token, strlen(token));
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return ok;
}

static void *http_run(void *arg)
{
	struct http_conn *c = arg;
	char *buf = malloc(HEAD_MAX + BODY_MAX + 1), *end = NULL, cl[32];
	size_t used = 0, body_len = 0, head_len;
	struct migrd_api_session s = { .negotiated = true };
	json_t *reply;
	char *line;
	ssize_t n;

	if (!buf)
		goto out;
	vmig_sock_set_timeout(c->fd, 10000);
	while (!end) {
		if (used == HEAD_MAX) {
			respond_error(c->fd, 431, "Request Header Fields Too Large",
				      "headers too long");
			goto out;
		}
		n = read(c->fd, buf + used, HEAD_MAX - used);
		if (n <= 0)
			goto out;
		used += (size_t)n;
		buf[used] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	head_len = (size_t)(end - buf) + 4;
	end[2] = '\0';	/* headers as a string, ending in one CRLF */
	if (strncmp(buf, "POST ", 5)) {
		respond_error(c->fd, 405, "Method Not Allowed",
			      "use POST /api with a JSON request");
		goto out;
	}
	if (strncmp(buf + 5, "/api ", 5)) {
		respond_error(c->fd, 404, "Not Found", "the API is at /api");
		goto out;
	}
	if (!authorized(c->d, buf)) {
		pr_warn("refused an HTTP request without the right token");
		respond_error(c->fd, 401, "Unauthorized",
			      "Authorization: Bearer TOKEN required");
		goto out;
	}
	if (!header(buf, "Content-Length", cl, sizeof(cl)) ||
	    strspn(cl, "0123456789") != strlen(cl) || !*cl ||
	    (body_len = strtoul(cl, NULL, 10)) > BODY_MAX) {
		respond_error(c->fd, body_len > BODY_MAX ? 413 : 411,
			      body_len > BODY_MAX ? "Payload Too Large" :
						    "Length Required",
			      "a Content-Length of at most 65536 is required");
		goto out;
	}
	/* the body: what came with the headers, then the rest */
	memmove(buf, buf + head_len, used - head_len);
	used -= head_len;
	while (used < body_len) {
		n = read(c->fd, buf + used, body_len - used);
		if (n <= 0)
			goto out;
		used += (size_t)n;
	}
	reply = migrd_api_handle(c->d, &s, buf, body_len);
	line = reply ? vmig_json_line(reply) : NULL;
	json_decref(reply);
	respond(c->fd, 200, "OK", line ? line : "{}\n");
	free(line);
out:
	free(buf);
	close(c->fd);
	free(c);
	return NULL;
}

int migrd_http_serve(struct migrd *d, int fd)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	pthread_attr_t attr;
	pthread_t th;
	int ret;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->d = d;
	c->fd = fd;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&th, &attr, http_run, c);
	pthread_attr_destroy(&attr);
	if (ret) {
		close(fd);
		free(c);
	}
	return ret;
}
