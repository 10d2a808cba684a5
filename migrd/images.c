// SPDX-License-Identifier: MIT
/* Checkpoint directories: naming, shipping and receiving them. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: images: "
#include "backend.h"
#include "call.h"
#include "clock.h"
#include "ctlmsg_heap.h"
#include "guest_files.h"
#include "images.h"
#include "log.h"
#include "migrd.h"
#include "shim_sockets.h"

#define MAX_DEPTH 8
#define MAX_FILE_BYTES (64ull << 30)

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int migrd_rm_rf(const char *path)
{
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 &&
	    errno != ENOENT)
		return -errno;
	return 0;
}

void migrd_images_dir(struct migrd *d, const char *kind, const char *guest,
		      char *path, size_t len)
{
	snprintf(path, len, "%s/%s-%s", d->cfg.image_dir, kind, guest);
}

int migrd_images_fresh_dir(struct migrd *d, const char *kind,
			   const char *guest, char *path, size_t len)
{
	migrd_images_dir(d, kind, guest, path, len);
	if (mkdir(d->cfg.image_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	migrd_rm_rf(path);
	if (mkdir(path, 0700) < 0)
		return -errno;
	return 0;
}

bool migrd_images_name_valid(const char *rel)
{
	const char *p = rel, *c;
	int depth = 0;

	if (!*rel || strlen(rel) > 200)
		return false;
	while (*p) {
		size_t n;

		c = strchr(p, '/');
		n = c ? (size_t)(c - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.') ||
		    ++depth > MAX_DEPTH)
			return false;
		for (size_t i = 0; i < n; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
				    p[i]))
				return false;
		p += n;
		if (*p == '/')
			p++;
		if (c && !*p)
			return false;	/* trailing slash */
	}
	return true;
}

bool migrd_images_link_valid(const char *rel, const char *target)
{
	const char *p;
	int depth = 0;

	if (!migrd_images_name_valid(rel) || !*target || target[0] == '/' ||
	    strlen(target) > 200)
		return false;
	for (p = rel; (p = strchr(p, '/')); p++)
		depth++;	/* the link's own directory */
	for (p = target; *p;) {
		const char *c = strchr(p, '/');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		char comp[256];

		if (n == 0 || n >= sizeof(comp))
			return false;
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (!strcmp(comp, "..")) {
			if (--depth < 0)
				return false;	/* above the top */
		} else if (!migrd_images_name_valid(comp) ||
			   ++depth > MAX_DEPTH) {
			return false;
		}
		p += n;
		if (*p == '/' && !*++p)
			return false;	/* trailing slash */
	}
	return true;
}

/* "pre-N": a pre-copy round's directory */
static bool round_name(const char *name)
{
	size_t n = strlen(MIGRD_ROUND_PREFIX);

	return !strncmp(name, MIGRD_ROUND_PREFIX, n) && name[n] &&
	       strspn(name + n, "0123456789") == strlen(name + n);
}

/* ---------------------------------------------------------------- sending */

/* Chunks in flight before waiting for the first reply: the link, not
 * the round trip, should bound the transfer. */
#define WINDOW 8

struct sender {
	struct migrd_sess *sess;
	const char *guest, *src_host;
	bool skip_rounds;	/* top level: the rounds went before */
	uint64_t bytes;		/* acknowledged by the destination */
	void (*progress)(void *arg, uint64_t sent);
	void *arg;
	uint8_t *buf;
	size_t inflight, head;	/* ring of the lengths not yet acked */
	size_t lens[WINDOW];
	char *err;
	size_t err_len;
};

/* Waits for the reply to the oldest chunk in flight. */
static int collect_one(struct sender *s)
{
	Vmig__CtlMsg *r = NULL;
	int ret = migrd_sess_recv(s->sess, &r);

	if (ret <= 0) {
		ret = ret ? ret : -ECONNRESET;
		snprintf(s->err, s->err_len, "sending: %s",
			 ret == -EAGAIN ? "no answer in time" :
			 ret == -EBADMSG ? "a record failed its check" :
					   strerror(-ret));
		return ret == -EAGAIN ? -ETIMEDOUT : ret;
	}
	if (r->type == VMIG__CTL_TYPE__CTL_ERROR) {
		snprintf(s->err, s->err_len, "destination refused a chunk: %s",
			 r->error && r->error->desc ? r->error->desc : "");
		ret = -EIO;
	} else {
		ret = 0;
	}
	vmig_ctl_free(r);
	s->bytes += s->lens[s->head];
	s->head = (s->head + 1) % WINDOW;
	s->inflight--;
	if (!ret && s->progress)
		s->progress(s->arg, s->bytes);
	return ret;
}

/* Replies still owed: the session must be in step for what follows. */
static int collect_all(struct sender *s)
{
	int ret = 0, r;

	while (s->inflight) {
		r = collect_one(s);
		if (r && !ret)
			ret = r;
		if (r && r != -EIO)
			break;	/* the session is gone */
	}
	return ret;
}

static int send_file(struct sender *s, const char *path, const char *rel,
		     mode_t mode)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT;
	Vmig__MigXfer x = VMIG__MIG_XFER__INIT;
	uint64_t off = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(s->err, s->err_len, "%s: %s", path, strerror(errno));
		return ret;
	}
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_MIG_FILE;
	m.mig = &x;
	x.guest = (char *)s->guest;
	x.src_host = (char *)s->src_host;
	x.file = (char *)rel;
	x.has_offset = x.has_data = x.has_eof = x.has_mode = 1;
	x.mode = mode & 0777;
	do {
		ssize_t n = read(fd, s->buf, MIGRD_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(s->err, s->err_len, "%s: %s", path,
				 strerror(errno));
			break;
		}
		if (s->inflight == WINDOW) {
			ret = collect_one(s);
			if (ret)
				break;
		}
		x.offset = off;
		x.data.data = s->buf;
		x.data.len = (size_t)n;
		/* a file of exactly N chunks ends with an empty chunk */
		x.eof = n < (ssize_t)MIGRD_CHUNK;
		ret = migrd_sess_send(s->sess, &m);
		if (ret) {
			snprintf(s->err, s->err_len, "sending %s: %s", rel,
				 strerror(-ret));
			break;
		}
		s->lens[(s->head + s->inflight) % WINDOW] = (size_t)n;
		s->inflight++;
		off += n;
	} while (!x.eof);
	close(fd);
	return ret;
}

/* A link is one record: its target, no data. */
static int send_link(struct sender *s, const char *path, const char *rel)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT;
	Vmig__MigXfer x = VMIG__MIG_XFER__INIT;
	char target[256];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	int ret;

	if (n < 0) {
		snprintf(s->err, s->err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	target[n] = '\0';
	if (!migrd_images_link_valid(rel, target)) {
		snprintf(s->err, s->err_len,
			 "checkpoint link '%s' -> '%s' leaves the checkpoint",
			 rel, target);
		return -EINVAL;
	}
	if (s->inflight == WINDOW) {
		ret = collect_one(s);
		if (ret)
			return ret;
	}
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_MIG_FILE;
	m.mig = &x;
	x.guest = (char *)s->guest;
	x.src_host = (char *)s->src_host;
	x.file = (char *)rel;
	x.link = target;
	x.has_offset = x.has_eof = 1;
	x.eof = 1;
	ret = migrd_sess_send(s->sess, &m);
	if (ret) {
		snprintf(s->err, s->err_len, "sending %s: %s", rel,
			 strerror(-ret));
		return ret;
	}
	s->lens[(s->head + s->inflight) % WINDOW] = 0;
	s->inflight++;
	return 0;
}

static int send_tree(struct sender *s, const char *dir, const char *rel,
		     int depth)
{
	struct dirent *e;
	DIR *dp;
	int ret = 0;

	if (depth > MAX_DEPTH)
		return 0;
	dp = opendir(dir);
	if (!dp) {
		snprintf(s->err, s->err_len, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	while (!ret && (e = readdir(dp))) {
		char path[PATH_MAX], r[256];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (s->skip_rounds && depth == 0 && round_name(e->d_name)))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
			    (int)sizeof(path) ||
		    snprintf(r, sizeof(r), "%s%s%s", rel, *rel ? "/" : "",
			     e->d_name) >= (int)sizeof(r) ||
		    lstat(path, &st) < 0)
			continue;
		if (!migrd_images_name_valid(r)) {
			snprintf(s->err, s->err_len,
				 "checkpoint file name '%s' cannot be shipped",
				 r);
			ret = -EINVAL;
		} else if (S_ISDIR(st.st_mode)) {
			ret = send_tree(s, path, r, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			ret = send_file(s, path, r, st.st_mode);
		} else if (S_ISLNK(st.st_mode)) {
			ret = send_link(s, path, r);
		}
		/* sockets, devices: not part of a checkpoint */
	}
	closedir(dp);
	return ret;
}

static uint64_t size_total;

static int add_size(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	if (flag == FTW_F && S_ISREG(st->st_mode))
		size_total += (uint64_t)st->st_size;
	return 0;
}

uint64_t migrd_images_size(const char *dir)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	uint64_t total;

	/* nftw has no user argument: one walk at a time */
	pthread_mutex_lock(&lock);
	size_total = 0;
	nftw(dir, add_size, 16, FTW_PHYS);
	total = size_total;
	pthread_mutex_unlock(&lock);
	return total;
}

int migrd_images_send(struct migrd_sess *sess, const char *dir,
		      const char *sub, const char *guest,
		      const char *src_host, uint64_t *bytes,
		      void (*progress)(void *arg, uint64_t sent), void *arg,
		      char *err, size_t err_len)
{
	struct sender s = {
		.sess = sess, .guest = guest, .src_host = src_host,
		.skip_rounds = sub == NULL,
		.progress = progress, .arg = arg,
		.err = err, .err_len = err_len,
	};
	char top[PATH_MAX];
	int ret;

	*bytes = 0;
	if (sub && (!migrd_images_name_valid(sub) ||
		    snprintf(top, sizeof(top), "%s/%s", dir, sub) >=
			    (int)sizeof(top))) {
		snprintf(err, err_len, "bad checkpoint subdirectory '%s'", sub);
		return -EINVAL;
	}
	s.buf = malloc(MIGRD_CHUNK);
	if (!s.buf)
		return -ENOMEM;
	ret = send_tree(&s, sub ? top : dir, sub ? sub : "", sub ? 1 : 0);
	if (ret)
		collect_all(&s);	/* keep the first error */
	else
		ret = collect_all(&s);
	free(s.buf);
	*bytes = s.bytes;
	return ret;
}

/* -------------------------------------------------------------- receiving */

static int mkdirs_for(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	char *slash;

	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	for (slash = path + strlen(dir) + 1; (slash = strchr(slash, '/'));
	     slash++) {
		*slash = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -errno;
		*slash = '/';
	}
	return 0;
}

static Vmig__CtlMsg *recv_file(struct migrd *d, const Vmig__CtlMsg *m,
			       const char *dir)
{
	const Vmig__MigXfer *x = m->mig;
	char path[PATH_MAX];
	struct stat st;
	int fd, flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW;

	if (!x->file || !migrd_images_name_valid(x->file))
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
				      0, "bad file name");
	if (!x->has_offset || x->offset > MAX_FILE_BYTES ||
	    x->data.len > MIGRD_CHUNK)
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
				      0, "bad offset or chunk size");
	if (stat(dir, &st) < 0)
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_STATE,
				      0, "no migration of %s prepared here",
				      x->guest);
	if (mkdirs_for(dir, x->file) ||
	    snprintf(path, sizeof(path), "%s/%s", dir, x->file) >=
		    (int)sizeof(path))
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_GENERIC,
				      errno, "cannot create %s", x->file);
	if (x->link) {
		/* CRIU's parent link: it must lead into the tree */
		if (!migrd_images_link_valid(x->file, x->link) || x->data.len)
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_BAD_REQUEST,
					      0, "bad link %s", x->file);
		if ((unlink(path) < 0 && errno != ENOENT) ||
		    symlink(x->link, path) < 0)
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_GENERIC,
					      errno, "%s: %s", x->file,
					      strerror(errno));
		return vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, m->seq);
	}
	if (x->offset == 0)
		flags |= O_TRUNC;
	fd = open(path, flags, x->has_mode ? (x->mode & 0700) | 0600 : 0600);
	if (fd < 0)
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_GENERIC,
				      errno, "%s: %s", x->file,
				      strerror(errno));
	if (x->data.len &&
	    pwrite(fd, x->data.data, x->data.len, (off_t)x->offset) !=
		    (ssize_t)x->data.len) {
		int e = errno;

		close(fd);
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_GENERIC, e,
				      "%s: %s", x->file, strerror(e));
	}
	close(fd);
	return vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, m->seq);
}

/* After a restore: the guest's shims register again, here. */
static Vmig__CtlMsg *wait_registered(struct migrd *d, const Vmig__CtlMsg *m)
{
	const Vmig__MigXfer *x = m->mig;
	struct migrd_proc *procs = NULL;
	Vmig__CtlMsg *r;
	int n, i;

	/* woken by the registration itself, not a poll */
	migrd_registry_wait(&d->reg, x->guest, x->processes,
			    d->cfg.restore_timeout_ms);
	n = migrd_registry_find(&d->reg, x->guest, 0, 0, &procs);
	if (n < 0)
		return NULL;
	if ((uint32_t)n < x->processes) {
		free(procs);
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_TIMEOUT, 0,
				      "guest %s restored on %s, but only %d of %u processes registered within %u ms",
				      x->guest, d->cfg.host, n, x->processes,
				      d->cfg.restore_timeout_ms);
	}
	r = vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, m->seq);
	if (r) {
		r->mig = malloc(sizeof(*r->mig));
		if (r->mig) {
			vmig__mig_xfer__init(r->mig);
			r->mig->pids = calloc(n ? n : 1, sizeof(uint32_t));
			for (i = 0; r->mig->pids && i < n; i++)
				r->mig->pids[r->mig->n_pids++] =
					(uint32_t)procs[i].pid;
		}
	}
	free(procs);
	return r;
}

Vmig__CtlMsg *migrd_incoming_handle(struct migrd *d, const Vmig__CtlMsg *m)
{
	const Vmig__MigXfer *x = m->mig;
	struct migrd_proc *procs = NULL;
	char dir[PATH_MAX], err[512];
	uint64_t t0;
	int n, ret;

	if (!x || !x->guest || !migrd_name_valid(x->guest))
		return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
				      0, "%s without a valid guest name",
				      vmig_ctl_type_name(m->type));
	migrd_images_dir(d, "in", x->guest, dir, sizeof(dir));
	switch (m->type) {
	case VMIG__CTL_TYPE__CTL_MIG_PREPARE:
		n = migrd_registry_find(&d->reg, x->guest, 0, 0, &procs);
		free(procs);
		if (n > 0 || migrd_guest_file_running(&d->cfg, x->guest))
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
					      "a guest %s already runs on %s",
					      x->guest, d->cfg.host);
		if (!strcmp(migrd_backend_get(&d->cfg)->name, "none"))
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_BAD_STATE, 0,
					      "host %s has no backend to restore guests (backend = none)",
					      d->cfg.host);
		ret = migrd_images_fresh_dir(d, "in", x->guest, dir,
					     sizeof(dir));
		if (ret)
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_GENERIC,
					      -ret, "%s: %s", dir,
					      strerror(-ret));
		pr_info("guest %s coming from %s", x->guest,
			x->src_host ? x->src_host : "?");
		if (migrd_backend_get(&d->cfg)->prepare)
			migrd_backend_get(&d->cfg)->prepare(&d->cfg, x->guest,
							    dir);
		return vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, m->seq);
	case VMIG__CTL_TYPE__CTL_MIG_FILE:
		return recv_file(d, m, dir);
	case VMIG__CTL_TYPE__CTL_MIG_RESTORE:
		if (x->processes > 4096)
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_BAD_REQUEST,
					      0, "processes out of range");
		migrd_shim_sockets_unlink_stale(&d->cfg, x->guest);
		t0 = vmig_now_ms();
		ret = migrd_backend_get(&d->cfg)->restore(&d->cfg, x->guest,
							 dir, err,
							 sizeof(err));
		pr_info("backend restore of %s: %llu ms", x->guest,
			(unsigned long long)(vmig_now_ms() - t0));
		if (ret)
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_GENERIC,
					      -ret, "restore on %s: %s",
					      d->cfg.host, err);
		pr_info("guest %s restored from %s", x->guest, dir);
		/* the shims notice a restore by themselves, but only when their
		 * thread wakes up: a HELLO has them register right now */
		if (x->processes)
			migrd_shim_sockets_poke(&d->cfg, x->guest);
		/* restored processes do not read their images again */
		migrd_rm_rf(dir);
		return wait_registered(d, m);
	case VMIG__CTL_TYPE__CTL_MIG_ABORT:
		migrd_rm_rf(dir);
		pr_info("incoming guest %s dropped", x->guest);
		return vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, m->seq);
	case VMIG__CTL_TYPE__CTL_MIG_MOVED: {
		unsigned char a[16];

		if (!x->dest_addr || (inet_pton(AF_INET, x->dest_addr, a) != 1 &&
				      inet_pton(AF_INET6, x->dest_addr, a) != 1))
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_BAD_REQUEST,
					      0, "MOVED without an address");
		ret = migrd_backend_get(&d->cfg)->moved(&d->cfg, x->guest,
						       x->dest_addr, err,
						       sizeof(err));
		if (ret)
			return vmig_msg_error(m->seq,
					      VMIG__ERR_CLASS__ERR_GENERIC,
					      -ret, "%s", err);
		pr_info("guest %s now at %s", x->guest, x->dest_addr);
		return vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, m->seq);
	}
	case VMIG__CTL_TYPE__CTL_NONE:
	case VMIG__CTL_TYPE__CTL_HELLO:
	case VMIG__CTL_TYPE__CTL_ERROR:
	case VMIG__CTL_TYPE__CTL_OK:
	case VMIG__CTL_TYPE__CTL_STATE:
	case VMIG__CTL_TYPE__CTL_SUSPEND:
	case VMIG__CTL_TYPE__CTL_DRAINED:
	case VMIG__CTL_TYPE__CTL_CAPTURE:
	case VMIG__CTL_TYPE__CTL_TEARDOWN:
	case VMIG__CTL_TYPE__CTL_RESTORE:
	case VMIG__CTL_TYPE__CTL_RECONNECT_INFO:
	case VMIG__CTL_TYPE__CTL_RECONNECT:
	case VMIG__CTL_TYPE__CTL_RESUME:
	case VMIG__CTL_TYPE__CTL_FORWARD:
	case VMIG__CTL_TYPE__CTL_ABORT:
	case _VMIG__CTL_TYPE_IS_INT_SIZE:
		break;
	}
	return vmig_msg_error(m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
			      "not a migration message");
}
