// SPDX-License-Identifier: MIT
/*
 * JSON API sessions on migrd-api.sock: greeting, one JSON request per
 * line, replies in order, events to every negotiated session. A session
 * that sends an over-long line gets an error and is closed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: api: "
#include "api.h"
#include "api_server.h"
#include "json.h"
#include "log.h"
#include "record.h"
#include "sock.h"

#define LINE_MAX_LEN (64 * 1024)
#define MAX_SESSIONS 64

struct session {
	struct migrd_api *api;
	int fd;
	pthread_mutex_t wlock;	/* replies and events interleave whole */
	struct migrd_api_session st;
	bool negotiated;	/* copy for the event thread, under api->lock */
	struct session *next;
};

struct migrd_api {
	struct migrd *d;
	pthread_mutex_t lock;
	struct session *sessions;
	int n;
};

struct migrd_api *migrd_api_create(struct migrd *d)
{
	struct migrd_api *api = calloc(1, sizeof(*api));

	if (!api)
		return NULL;
	api->d = d;
	pthread_mutex_init(&api->lock, NULL);
	return api;
}

void migrd_api_destroy(struct migrd_api *api)
{
	if (!api)
		return;
	pthread_mutex_destroy(&api->lock);
	free(api);
}

/* Writes one JSON value as a line; consumes j. */
static int send_json(struct session *s, json_t *j)
{
	char *line = j ? vmig_json_line(j) : NULL;
	int ret;

	json_decref(j);
	if (!line)
		return -ENOMEM;
	pthread_mutex_lock(&s->wlock);
	ret = vmig_write_full(s->fd, line, strlen(line));
	pthread_mutex_unlock(&s->wlock);
	free(line);
	return ret;
}

void migrd_api_emit(struct migrd_api *api, const char *name, json_t *data)
{
	struct session *s;
	json_t *ev;
	char *line;

	if (!api) {
		json_decref(data);
		return;
	}
	ev = vmig_qmp_event(name, data);
	line = ev ? vmig_json_line(ev) : NULL;
	json_decref(ev);
	if (!line)
		return;
	pthread_mutex_lock(&api->lock);
	for (s = api->sessions; s; s = s->next) {
		if (!s->negotiated)
			continue;
		pthread_mutex_lock(&s->wlock);
		/* a slow reader: its socket send timeout bounds the wait */
		if (vmig_write_full(s->fd, line, strlen(line)))
			pr_debug("event to session fd %d lost", s->fd);
		pthread_mutex_unlock(&s->wlock);
	}
	pthread_mutex_unlock(&api->lock);
	free(line);
}

static void unlink_session(struct session *s)
{
	struct migrd_api *api = s->api;
	struct session **pp;

	pthread_mutex_lock(&api->lock);
	for (pp = &api->sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			api->n--;
			break;
		}
	pthread_mutex_unlock(&api->lock);
}

static void *session_run(void *arg)
{
	struct session *s = arg;
	char *buf = malloc(LINE_MAX_LEN + 1);
	size_t used = 0;
	ssize_t n;

	if (!buf || send_json(s, migrd_api_greeting()))
		goto out;
	for (;;) {
		char *nl;

		n = read(s->fd, buf + used, LINE_MAX_LEN - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += n;
		while ((nl = memchr(buf, '\n', used))) {
			size_t len = nl - buf;
			json_t *reply;

			/* blank lines (and \r\n endings) are tolerated */
			if (len && buf[len - 1] == '\r')
				len--;
			if (len) {
				reply = migrd_api_handle(s->api->d, &s->st,
							 buf, len);
				pthread_mutex_lock(&s->api->lock);
				s->negotiated = s->st.negotiated;
				pthread_mutex_unlock(&s->api->lock);
				if (send_json(s, reply))
					goto out;
			}
			used -= nl + 1 - buf;
			memmove(buf, nl + 1, used);
		}
		if (used == LINE_MAX_LEN) {
			send_json(s, vmig_qmp_error(VMIG_QMP_GENERIC, NULL,
				  "request longer than %d bytes", LINE_MAX_LEN));
			break;
		}
	}
out:
	unlink_session(s);
	free(buf);
	close(s->fd);
	pthread_mutex_destroy(&s->wlock);
	free(s);
	return NULL;
}

int migrd_api_serve(struct migrd_api *api, int fd)
{
	pthread_attr_t attr;
	struct session *s;
	pthread_t th;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->api = api;
	s->fd = fd;
	pthread_mutex_init(&s->wlock, NULL);
	/* a client that stops reading must not stall event delivery */
	vmig_sock_set_timeout(fd, 0);
	{
		struct timeval tv = { .tv_sec = 5 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	pthread_mutex_lock(&api->lock);
	if (api->n >= MAX_SESSIONS) {
		pthread_mutex_unlock(&api->lock);
		pr_warn("too many API sessions, refusing one");
		send_json(s, vmig_qmp_error(VMIG_QMP_GENERIC, NULL,
					    "too many sessions"));
		close(fd);
		pthread_mutex_destroy(&s->wlock);
		free(s);
		return -EBUSY;
	}
	s->next = api->sessions;
	api->sessions = s;
	api->n++;
	pthread_mutex_unlock(&api->lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&th, &attr, session_run, s);
	pthread_attr_destroy(&attr);
	if (ret) {
		unlink_session(s);
		close(fd);
		pthread_mutex_destroy(&s->wlock);
		free(s);
	}
	return ret;
}
