// SPDX-License-Identifier: MIT
/* Driving CRIU through its swrk RPC: one child per request. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_PREFIX "criu: "
#include "criu_rpc.pb-c.h"
#include "criu_swrk.h"
#include "log.h"

#define RESP_MAX (64 * 1024)

#ifndef VMIG_CRIU_PLUGIN_DIR
#define VMIG_CRIU_PLUGIN_DIR "/usr/lib/criu"
#endif
#ifndef VMIG_CRIU_PLUGIN_BUILD_DIR
#define VMIG_CRIU_PLUGIN_BUILD_DIR ""
#endif

extern char **environ;

#define SETERR(err, ...) snprintf(err, VMIG_CRIU_ERR_LEN, __VA_ARGS__)

struct swrk {
	int sk;		/* our end of the socket pair */
	pid_t child;	/* criu swrk */
};

/*
 * Our environment with CRIU_LIBS_DIR=plugin_dir in place of an inherited
 * one; built before fork, as the child of a threaded daemon must not
 * allocate. The strings are environ's, only the array and libs are ours.
 */
static char **child_env(const char *plugin_dir, char **libs)
{
	size_t n = 0, j = 0;
	char **env;

	if (asprintf(libs, "CRIU_LIBS_DIR=%s", plugin_dir) < 0) {
		*libs = NULL;
		return NULL;
	}
	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "CRIU_LIBS_DIR=", 14))
			env[j++] = environ[i];
	env[j] = *libs;
	return env;
}

static int swrk_start(struct swrk *s, const char *criu_path,
		      const char *plugin_dir, char *err)
{
	char fdstr[16], *libs = NULL, **env = NULL;
	int sv[2], ret = 0;

	s->sk = -1;
	s->child = -1;
	if (plugin_dir) {
		env = child_env(plugin_dir, &libs);
		if (!env) {
			SETERR(err, "out of memory");
			ret = -ENOMEM;
			goto out;
		}
		pr_debug("CRIU plugins from %s", plugin_dir);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
		ret = -errno;
		SETERR(err, "socketpair: %s", strerror(errno));
		goto out;
	}
	s->child = fork();
	if (s->child < 0) {
		ret = -errno;
		SETERR(err, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		goto out;
	}
	if (s->child == 0) {
		char *argv[] = { "criu", "swrk", fdstr, NULL };

		close(sv[0]);
		snprintf(fdstr, sizeof(fdstr), "%d", sv[1]);
		execvpe(criu_path ? criu_path : "criu", argv,
			env ? env : environ);
		_exit(127);
	}
	close(sv[1]);
	s->sk = sv[0];
out:
	free(env);
	free(libs);
	return ret;
}

/* Waits for the swrk child; it exits once its one request is served. */
static void swrk_stop(struct swrk *s)
{
	if (s->sk >= 0)
		close(s->sk);
	s->sk = -1;
	if (s->child > 0) {
		int status;

		while (waitpid(s->child, &status, 0) < 0 && errno == EINTR)
			;
	}
	s->child = -1;
}

static int send_req(struct swrk *s, const CriuRpc__Req *req, char *err)
{
	size_t len = criu_rpc__req__get_packed_size(req);
	uint8_t *buf = malloc(len);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	criu_rpc__req__pack(req, buf);
	n = send(s->sk, buf, len, MSG_NOSIGNAL);
	free(buf);
	if (n != (ssize_t)len) {
		SETERR(err, "sending to criu: %s",
		       n < 0 ? strerror(errno) : "short write");
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

static int recv_resp(struct swrk *s, CriuRpc__Resp **out, char *err)
{
	uint8_t *buf = malloc(RESP_MAX);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	do
		n = recv(s->sk, buf, RESP_MAX, MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		free(buf);
		SETERR(err, "criu exited without an answer%s%s",
		       n < 0 ? ": " : " (is criu installed and are we root?)",
		       n < 0 ? strerror(errno) : "");
		return n < 0 ? -errno : -EPIPE;
	}
	if (n > RESP_MAX) {
		free(buf);
		SETERR(err, "criu answer of %zd bytes is too large", n);
		return -EMSGSIZE;
	}
	*out = criu_rpc__resp__unpack(NULL, n, buf);
	free(buf);
	if (!*out) {
		SETERR(err, "criu answer does not decode");
		return -EBADMSG;
	}
	return 0;
}

/* Sends req and serves notifications until the final answer. */
static int transact(struct swrk *s, const CriuRpc__Req *req,
		    const struct vmig_criu_opts *o, CriuRpc__Resp **out,
		    char *err)
{
	CriuRpc__Resp *resp = NULL;
	int ret = send_req(s, req, err);

	while (!ret) {
		CriuRpc__Req ack = CRIU_RPC__REQ__INIT;
		int cb = 0;

		ret = recv_resp(s, &resp, err);
		if (ret)
			break;
		if (!resp->has_type || resp->type != CRIU_RPC__REQ_TYPE__NOTIFY) {
			*out = resp;
			return 0;
		}
		if (o && o->notify)
			cb = o->notify(resp->notify && resp->notify->script ?
					       resp->notify->script : "",
				       resp->notify ? resp->notify->pid : 0,
				       o->notify_arg);
		pr_debug("notify %s -> %d",
			 resp->notify ? resp->notify->script : "?", cb);
		criu_rpc__resp__free_unpacked(resp, NULL);
		resp = NULL;
		ack.has_type = 1;
		ack.type = CRIU_RPC__REQ_TYPE__NOTIFY;
		ack.has_notify_success = 1;
		ack.notify_success = cb == 0;
		ret = send_req(s, &ack, err);
	}
	return ret;
}

static int check_resp(CriuRpc__Resp *resp, const char *what, char *err)
{
	if (resp->has_success && resp->success)
		return 0;
	SETERR(err, "criu %s failed: %s%s(errno %d)", what,
	       resp->cr_errmsg ? resp->cr_errmsg : "",
	       resp->cr_errmsg ? " " : "", resp->cr_errno);
	return resp->cr_errno ? -resp->cr_errno : -EIO;
}

/*
 * Runs one request of type t with opts o. The images and work directory
 * fds are opened without O_CLOEXEC: CRIU, our child, uses them by number.
 */
static int run_req(CriuRpc__ReqType t, const struct vmig_criu_opts *o,
		   pid_t *restored, char *err)
{
	static const char *const what[] = {
		[CRIU_RPC__REQ_TYPE__DUMP] = "dump",
		[CRIU_RPC__REQ_TYPE__RESTORE] = "restore",
		[CRIU_RPC__REQ_TYPE__PRE_DUMP] = "pre-dump",
	};
	CriuRpc__Req req = CRIU_RPC__REQ__INIT;
	CriuRpc__Opts opts = CRIU_RPC__OPTS__INIT;
	CriuRpc__Resp *resp = NULL;
	struct swrk s = { .sk = -1, .child = -1 };
	int dir_fd = -1, work_fd = -1, ret;
	size_t n_ext = 0;

	if (!o->images_dir) {
		SETERR(err, "no images directory given");
		return -EINVAL;
	}
	dir_fd = open(o->images_dir, O_DIRECTORY | O_RDONLY);
	if (dir_fd < 0) {
		ret = -errno;
		SETERR(err, "images directory %s: %s", o->images_dir,
		       strerror(errno));
		goto out;
	}
	if (o->work_dir) {
		work_fd = open(o->work_dir, O_DIRECTORY | O_RDONLY);
		if (work_fd < 0) {
			ret = -errno;
			SETERR(err, "work directory %s: %s", o->work_dir,
			       strerror(errno));
			goto out;
		}
	}
	opts.has_images_dir_fd = 1;
	opts.images_dir_fd = dir_fd;
	if (work_fd >= 0) {
		opts.has_work_dir_fd = 1;
		opts.work_dir_fd = work_fd;
	}
	if (o->pid > 0 && t != CRIU_RPC__REQ_TYPE__RESTORE) {
		opts.has_pid = 1;
		opts.pid = o->pid;
	}
	opts.log_file = (char *)o->log_file;
	opts.has_log_level = o->log_level > 0;
	opts.log_level = o->log_level;
	opts.parent_img = (char *)o->parent_img;
#define SET_BOOL(f)                       \
	do {                              \
		if (o->f) {               \
			opts.has_##f = 1; \
			opts.f = 1;       \
		}                         \
	} while (0)
	SET_BOOL(leave_running);
	SET_BOOL(track_mem);
	SET_BOOL(shell_job);
	SET_BOOL(tcp_established);
	SET_BOOL(ext_unix_sk);
	SET_BOOL(file_locks);
#undef SET_BOOL
	opts.has_notify_scripts = o->notify != NULL;
	opts.notify_scripts = o->notify != NULL;
	opts.has_empty_ns = o->empty_ns != 0;
	opts.empty_ns = o->empty_ns;
	opts.has_timeout = o->timeout_s != 0;
	opts.timeout = o->timeout_s;
	opts.has_network_lock = o->network_lock != VMIG_CRIU_NETLOCK_DEFAULT;
	opts.network_lock = (CriuRpc__NetworkLock)o->network_lock;
	if (o->external) {
		while (o->external[n_ext])
			n_ext++;
		opts.n_external = n_ext;
		opts.external = (char **)o->external;
	}
	req.has_type = 1;
	req.type = t;
	req.opts = &opts;

	ret = swrk_start(&s, o->criu_path, o->plugin_dir, err);
	if (ret)
		goto out;
	ret = transact(&s, &req, o, &resp, err);
	if (ret)
		goto out;
	ret = check_resp(resp, what[t], err);
	if (!ret && restored)
		*restored = resp->restore ? resp->restore->pid : -1;
out:
	if (resp)
		criu_rpc__resp__free_unpacked(resp, NULL);
	swrk_stop(&s);
	if (dir_fd >= 0)
		close(dir_fd);
	if (work_fd >= 0)
		close(work_fd);
	return ret;
}

int vmig_criu_pre_dump(const struct vmig_criu_opts *opts, char *err)
{
	return run_req(CRIU_RPC__REQ_TYPE__PRE_DUMP, opts, NULL, err);
}

int vmig_criu_dump(const struct vmig_criu_opts *opts, char *err)
{
	return run_req(CRIU_RPC__REQ_TYPE__DUMP, opts, NULL, err);
}

int vmig_criu_restore(const struct vmig_criu_opts *opts, pid_t *pid,
		      char *err)
{
	return run_req(CRIU_RPC__REQ_TYPE__RESTORE, opts, pid, err);
}

static bool has_plugin(const char *dir)
{
	char path[PATH_MAX];

	return *dir && snprintf(path, sizeof(path), "%s/%s", dir,
				VMIG_CRIU_PLUGIN_SO) < (int)sizeof(path) &&
	       access(path, R_OK) == 0;
}

const char *vmig_criu_plugin_dir(void)
{
	const char *env = getenv("VMIG_CRIU_PLUGIN_DIR");

	if (env)
		return *env ? env : NULL;
	if (has_plugin(VMIG_CRIU_PLUGIN_DIR))
		return VMIG_CRIU_PLUGIN_DIR;
	if (has_plugin(VMIG_CRIU_PLUGIN_BUILD_DIR))
		return VMIG_CRIU_PLUGIN_BUILD_DIR;
	return NULL;
}

int vmig_criu_version(const char *criu_path, int *major, int *minor,
		      char *err)
{
	CriuRpc__Req req = CRIU_RPC__REQ__INIT;
	CriuRpc__Resp *resp = NULL;
	struct swrk s = { .sk = -1, .child = -1 };
	int ret;

	req.has_type = 1;
	req.type = CRIU_RPC__REQ_TYPE__VERSION;
	ret = swrk_start(&s, criu_path, NULL, err);
	if (!ret)
		ret = transact(&s, &req, NULL, &resp, err);
	if (!ret)
		ret = check_resp(resp, "version", err);
	if (!ret && !resp->version) {
		SETERR(err, "criu gave no version");
		ret = -EBADMSG;
	}
	if (!ret) {
		*major = resp->version->major_number;
		*minor = resp->version->minor_number;
	}
	if (resp)
		criu_rpc__resp__free_unpacked(resp, NULL);
	swrk_stop(&s);
	return ret;
}
