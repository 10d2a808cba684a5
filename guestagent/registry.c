// SPDX-License-Identifier: MIT
/* The registration socket: HELLO from shims, kept until they hang up. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX "agent: registry: "
#include "ctlmsg.h"
#include "log.h"
#include "registry.h"
#include "sock.h"

/* A registering shim gets this long for its header and HELLO: the thread
 * serves every registration, one stalled peer must not hold it. */
#define HELLO_MS 2000

static bool name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n >= GA_SHIM_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static void entry_drop(struct ga_registry *reg, size_t i)
{
	pr_info("shim pid %d (%s) gone", reg->ents[i].shim.pid,
		reg->ents[i].shim.guest);
	close(reg->ents[i].fd);
	pthread_mutex_lock(&reg->lock);
	memmove(&reg->ents[i], &reg->ents[i + 1],
		(reg->n - i - 1) * sizeof(reg->ents[0]));
	reg->n--;
	pthread_mutex_unlock(&reg->lock);
}

/* A restarted shim reuses its ctl_path: the new registration wins. */
static int entry_add(struct ga_registry *reg, const struct ga_shim *s, int fd)
{
	size_t i;
	int old = -1, ret = 0;

	pthread_mutex_lock(&reg->lock);
	for (i = 0; i < reg->n; i++)
		if (!strcmp(reg->ents[i].shim.ctl_path, s->ctl_path)) {
			old = reg->ents[i].fd;
			reg->ents[i].shim = *s;
			reg->ents[i].shim.id = reg->next_id++;
			reg->ents[i].fd = fd;
			goto out;
		}
	if (reg->n == GA_MAX_SHIMS) {
		ret = -ENOSPC;
		goto out;
	}
	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 16;
		struct ga_reg_entry *e = realloc(reg->ents, cap * sizeof(*e));

		if (!e) {
			ret = -ENOMEM;
			goto out;
		}
		reg->ents = e;
		reg->cap = cap;
	}
	reg->ents[reg->n].shim = *s;
	reg->ents[reg->n].shim.id = reg->next_id++;
	reg->ents[reg->n].fd = fd;
	reg->n++;
out:
	pthread_mutex_unlock(&reg->lock);
	if (old >= 0)
		close(old);
	return ret;
}

static int refuse(int fd, uint32_t seq, Vmig__ErrClass cls, const char *desc)
{
	pr_warn("registration refused: %s", desc);
	ga_msg_send_free(fd, vmig_msg_error(seq, cls, 0, "%s", desc));
	return -EPROTO;
}

static int reply_hello(int fd, uint32_t seq)
{
	Vmig__CtlMsg *m = vmig_msg_new(VMIG__CTL_TYPE__CTL_HELLO, seq);

	if (!m)
		return -ENOMEM;
	m->hello = malloc(sizeof(*m->hello));
	if (!m->hello) {
		vmig_ctl_free(m);
		return -ENOMEM;
	}
	vmig__hello__init(m->hello);
	m->hello->has_version = m->hello->has_role = m->hello->has_pid = 1;
	m->hello->version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	m->hello->role = VMIG__ROLE__ROLE_AGENT;
	m->hello->pid = (uint32_t)getpid();
	return ga_msg_send_free(fd, m);
}

/* Header and HELLO of a new connection; fills s. Refusals are answered. */
static int handshake(struct ga_registry *reg, int fd, struct ga_shim *s)
{
	Vmig__CtlMsg *m = NULL;
	const Vmig__Hello *h;
	int ret;

	ret = vmig_ctl_send_header(fd);
	if (!ret)
		ret = vmig_ctl_recv_header(fd);
	if (ret) {
		pr_warn("connection without a stream header: %s",
			strerror(-ret));
		return ret;
	}
	ret = vmig_ctl_recv(fd, &m);
	if (ret <= 0) {
		if (ret)
			refuse(fd, 0, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			       "undecodable HELLO");
		return ret ? ret : -ECONNRESET;
	}
	h = m->hello;
	ret = 0;
	memset(s, 0, sizeof(*s));
	if (!m->has_type || m->type != VMIG__CTL_TYPE__CTL_HELLO || !h)
		ret = refuse(fd, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			     "the first message must be HELLO");
	else if (!h->has_version ||
		 h->version != VMIG__CTL_VERSION__CTL_VERSION_CURRENT)
		ret = refuse(fd, m->seq, VMIG__ERR_CLASS__ERR_BAD_VERSION,
			     "protocol version not supported");
	else if (!h->has_role || h->role != VMIG__ROLE__ROLE_SHIM)
		ret = refuse(fd, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			     "this socket registers shims; requests come over the host channel");
	else if (!h->has_pid || !h->pid || h->pid > 0x3fffffff)
		ret = refuse(fd, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			     "shim HELLO without a valid pid");
	else if (h->guest && *h->guest && !name_valid(h->guest))
		ret = refuse(fd, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			     "bad guest name (1-63 of A-Z a-z 0-9 . _ -)");
	else if (h->ctl_path && *h->ctl_path &&
		 (h->ctl_path[0] != '/' ||
		  strlen(h->ctl_path) >= sizeof(s->ctl_path)))
		ret = refuse(fd, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			     "ctl_path must be an absolute socket path");
	if (ret)
		goto out;
	s->pid = (pid_t)h->pid;
	if (h->guest && *h->guest)
		snprintf(s->guest, sizeof(s->guest), "%s", h->guest);
	else	/* as migrd does: the process is its own guest */
		snprintf(s->guest, sizeof(s->guest), "pid-%u", h->pid);
	if (h->ctl_path && *h->ctl_path)
		snprintf(s->ctl_path, sizeof(s->ctl_path), "%s", h->ctl_path);
	else if (snprintf(s->ctl_path, sizeof(s->ctl_path), "%s/shim-%u.sock",
			  reg->run_dir, h->pid) >= (int)sizeof(s->ctl_path)) {
		ret = refuse(fd, m->seq, VMIG__ERR_CLASS__ERR_BAD_REQUEST,
			     "no ctl_path");
		goto out;
	}
	ret = reply_hello(fd, m->seq);
out:
	vmig_ctl_free(m);
	return ret;
}

static void accept_one(struct ga_registry *reg)
{
	struct ga_shim s;
	int fd = accept4(reg->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	vmig_sock_set_timeout(fd, HELLO_MS);
	if (handshake(reg, fd, &s)) {
		close(fd);
		return;
	}
	/* registered shims idle on this connection: no bound from here */
	vmig_sock_set_timeout(fd, 0);
	if (entry_add(reg, &s, fd)) {
		pr_err("registry full: shim pid %d not registered", s.pid);
		close(fd);
		return;
	}
	pr_info("registered shim pid %d guest %s at %s", s.pid, s.guest,
		s.ctl_path);
}

/* A registered shim sends nothing; anything it does send is read and
 * answered so its connection stays in step, EOF ends the registration. */
static bool entry_readable(struct ga_registry *reg, size_t i)
{
	Vmig__CtlMsg *m = NULL;
	int fd = reg->ents[i].fd, ret;

	vmig_sock_set_timeout(fd, HELLO_MS);
	ret = vmig_ctl_recv(fd, &m);
	vmig_sock_set_timeout(fd, 0);
	if (ret <= 0 && ret != -EBADMSG) {
		entry_drop(reg, i);
		return false;
	}
	ga_msg_send_free(fd, vmig_msg_error(m ? m->seq : 0,
					    VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
					    "registration connections carry no requests"));
	vmig_ctl_free(m);
	return true;
}

static void *reg_run(void *arg)
{
	struct ga_registry *reg = arg;
	struct pollfd *pfd = NULL;
	size_t n, i, cap = 0;

	for (;;) {
		/* only this thread changes the entries: no lock to read them */
		n = reg->n + 2;
		if (n > cap) {
			struct pollfd *p = realloc(pfd, n * sizeof(*p));

			if (!p) {
				pr_err("out of memory");
				poll(NULL, 0, 100);
				continue;
			}
			pfd = p;
			cap = n;
		}
		pfd[0] = (struct pollfd){ .fd = reg->stop[0], .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = reg->lfd, .events = POLLIN };
		for (i = 0; i < reg->n; i++)
			pfd[i + 2] = (struct pollfd){ .fd = reg->ents[i].fd,
						      .events = POLLIN };
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("poll");
			break;
		}
		if (pfd[0].revents)
			break;
		/* backwards: a dropped entry shifts only those after it */
		for (i = n - 2; i-- > 0;)
			if (pfd[i + 2].revents)
				entry_readable(reg, i);
		if (pfd[1].revents & POLLIN)
			accept_one(reg);
	}
	free(pfd);
	return NULL;
}

int ga_registry_start(struct ga_registry *reg, const char *path,
		      const char *run_dir)
{
	sigset_t all, old;
	int ret;

	memset(reg, 0, sizeof(*reg));
	reg->lfd = reg->stop[0] = reg->stop[1] = -1;
	reg->next_id = 1;
	pthread_mutex_init(&reg->lock, NULL);
	reg->inited = true;
	if (strlen(path) >= sizeof(reg->path) ||
	    strlen(run_dir) >= sizeof(reg->run_dir))
		return -ENAMETOOLONG;
	snprintf(reg->path, sizeof(reg->path), "%s", path);
	snprintf(reg->run_dir, sizeof(reg->run_dir), "%s", run_dir);
	if (pipe2(reg->stop, O_CLOEXEC))
		return -errno;
	reg->lfd = vmig_unix_listen(path, 0600);
	if (reg->lfd < 0) {
		ret = reg->lfd;
		reg->lfd = -1;
		return ret;
	}
	/* signals belong to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&reg->thread, NULL, reg_run, reg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ret;
	reg->running = true;
	pr_info("shims register on %s", path);
	return 0;
}

void ga_registry_stop(struct ga_registry *reg)
{
	size_t i;

	if (!reg->inited)
		return;
	if (reg->running) {
		if (write(reg->stop[1], "x", 1) != 1)
			pr_perror("cannot stop the registry thread");
		pthread_join(reg->thread, NULL);
		reg->running = false;
	}
	if (reg->lfd >= 0) {
		close(reg->lfd);
		unlink(reg->path);
		reg->lfd = -1;
	}
	for (i = 0; i < reg->n; i++)
		close(reg->ents[i].fd);
	free(reg->ents);
	reg->ents = NULL;
	reg->n = reg->cap = 0;
	if (reg->stop[0] >= 0)
		close(reg->stop[0]);
	if (reg->stop[1] >= 0)
		close(reg->stop[1]);
	reg->stop[0] = reg->stop[1] = -1;
	pthread_mutex_destroy(&reg->lock);
	reg->inited = false;
}

int ga_registry_find(struct ga_registry *reg, pid_t pid, const char *guest,
		     struct ga_shim **out)
{
	struct ga_shim *v;
	size_t i, k = 0;

	pthread_mutex_lock(&reg->lock);
	v = malloc((reg->n ? reg->n : 1) * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&reg->lock);
		return -ENOMEM;
	}
	for (i = 0; i < reg->n; i++) {
		const struct ga_shim *s = &reg->ents[i].shim;

		if ((pid && s->pid != pid) || (guest && strcmp(s->guest, guest)))
			continue;
		v[k++] = *s;
	}
	pthread_mutex_unlock(&reg->lock);
	*out = v;
	return (int)k;
}
