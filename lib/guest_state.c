// SPDX-License-Identifier: MIT
/*
 * The records of process guests: names, addresses, the JSON state files in
 * $VMIG_RUN_DIR/guests and the lock that serializes changes to them.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest_priv.h"
#include "json.h"

void guest_seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, VMIG_GUEST_ERR_LEN, fmt, ap);
	va_end(ap);
}

static const char *const state_names[] = {
	[VMIG_GUEST_RUNNING] = "running",
	[VMIG_GUEST_CHECKPOINTING] = "checkpointing",
	[VMIG_GUEST_AWAY] = "away",
};

const char *vmig_guest_state_name(enum vmig_guest_state s)
{
	switch (s) {
	case VMIG_GUEST_RUNNING:
	case VMIG_GUEST_CHECKPOINTING:
	case VMIG_GUEST_AWAY:
		return state_names[s];
	}
	return "?";
}

const char *vmig_guest_dir(void)
{
	static char dir[PATH_MAX];
	const char *run = getenv("VMIG_RUN_DIR");

	if (!run || !*run)
		run = "/run/vmig";
	snprintf(dir, sizeof(dir), "%s/guests", run);
	return dir;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int guest_lock(char *err)
{
	char path[PATH_MAX];
	int fd, ret;

	ret = mkdir_p(vmig_guest_dir(), 0755);
	if (ret) {
		GUEST_SETERR(err, "cannot create %s: %s", vmig_guest_dir(),
			     strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/.lock", vmig_guest_dir());
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		GUEST_SETERR(err, "cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		ret = -errno;
		GUEST_SETERR(err, "cannot lock %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

void guest_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int vmig_guest_check_name(const char *name, char *err)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > VMIG_GUEST_NAME_MAX) {
		GUEST_SETERR(err, "guest name must have 1 to %d characters",
			     VMIG_GUEST_NAME_MAX);
		return -EINVAL;
	}
	if (!islower((unsigned char)name[0]) && !isdigit((unsigned char)name[0])) {
		GUEST_SETERR(err, "guest name '%s' must start with a-z or 0-9", name);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = name[i];

		if (!islower(c) && !isdigit(c) && c != '-') {
			GUEST_SETERR(err, "guest name '%s': only a-z, 0-9 and '-' are allowed",
				     name);
			return -EINVAL;
		}
	}
	return 0;
}

int vmig_guest_parse_addr(const char *s, struct in_addr *addr,
			  unsigned int *prefix, char *err)
{
	char buf[INET_ADDRSTRLEN + 4];
	const char *slash;
	unsigned long p = 32;
	uint32_t h;

	if (!s || strlen(s) >= sizeof(buf)) {
		GUEST_SETERR(err, "bad address '%s': expected A.B.C.D or A.B.C.D/NN",
			     s ? s : "");
		return -EINVAL;
	}
	strcpy(buf, s);
	slash = strchr(s, '/');
	if (slash) {
		char *end;

		buf[slash - s] = '\0';
		errno = 0;
		p = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end || errno ||
		    p < 8 || p > 32) {
			GUEST_SETERR(err, "bad prefix length in '%s': expected 8..32", s);
			return -EINVAL;
		}
	}
	if (inet_pton(AF_INET, buf, addr) != 1) {
		GUEST_SETERR(err, "bad address '%s': expected A.B.C.D or A.B.C.D/NN", s);
		return -EINVAL;
	}
	h = ntohl(addr->s_addr);
	if ((h >> 24) == 0 || (h >> 24) == 127 || (h >> 28) >= 14 ||
	    (h >> 16) == 0xa9fe) {
		GUEST_SETERR(err, "'%s' is not a usable unicast address for a guest", s);
		return -EINVAL;
	}
	if (p < 31) {
		uint32_t host = h & ((1u << (32 - p)) - 1);

		if (host == 0 || host == (1u << (32 - p)) - 1) {
			GUEST_SETERR(err, "'%s' is the network or broadcast address of its subnet",
				     s);
			return -EINVAL;
		}
	}
	*prefix = p;
	return 0;
}

void vmig_guest_default_addr(const char *name, struct in_addr *addr)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	uint32_t host;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	/* 10.78.1.1 .. 10.78.254.254: never .0 or .255 in either octet */
	host = (((h >> 8) % 254 + 1) << 8) | (h % 254 + 1);
	addr->s_addr = htonl((10u << 24) | (78u << 16) | host);
}

int vmig_guest_init(struct vmig_guest *g, const char *name, const char *addr,
		    char *err)
{
	int ret;

	memset(g, 0, sizeof(*g));
	ret = vmig_guest_check_name(name, err);
	if (ret)
		return ret;
	strcpy(g->name, name);
	if (addr) {
		ret = vmig_guest_parse_addr(addr, &g->addr, &g->prefix, err);
		if (ret)
			return ret;
	} else {
		vmig_guest_default_addr(name, &g->addr);
		g->prefix = 32;
	}
	snprintf(g->host_veth, sizeof(g->host_veth), VMIG_GUEST_VETH_PREFIX "%s",
		 name);
	if (snprintf(g->log_path, sizeof(g->log_path), "%s/%s.log",
		     vmig_guest_dir(), name) >= (int)sizeof(g->log_path)) {
		GUEST_SETERR(err, "run directory path too long: %s", vmig_guest_dir());
		return -ENAMETOOLONG;
	}
	g->state = VMIG_GUEST_RUNNING;
	return 0;
}

int guest_pid_start_time(pid_t pid, unsigned long long *t)
{
	char path[64], buf[1024], *p, state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may hold spaces and ')': the fields start after the last ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u"
			 " %*u %*u %*d %*d %*d %*d %*d %*d %llu", &state, t) != 2)
		return -EIO;
	if (state == 'Z' || state == 'X')
		return -ESRCH;
	return 0;
}

bool vmig_guest_alive(const struct vmig_guest *g)
{
	unsigned long long t;

	if (g->pid <= 0 || guest_pid_start_time(g->pid, &t))
		return false;
	return t == g->start_time;
}

static json_t *to_json(const struct vmig_guest *g)
{
	char addr[INET_ADDRSTRLEN + 4], via[INET_ADDRSTRLEN] = "";

	inet_ntop(AF_INET, &g->addr, addr, INET_ADDRSTRLEN);
	snprintf(addr + strlen(addr), 4, "/%u", g->prefix);
	if (g->via.s_addr)
		inet_ntop(AF_INET, &g->via, via, sizeof(via));
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}",
			 "name", g->name,
			 "state", vmig_guest_state_name(g->state),
			 "address", addr,
			 "host-veth", g->host_veth,
			 "pid", (json_int_t)g->pid,
			 "start-time", (json_int_t)g->start_time,
			 "via", via,
			 "log", g->log_path);
}

int guest_save_to(const struct vmig_guest *g, const char *path, char *err)
{
	char tmp[PATH_MAX + 8];
	json_t *j = to_json(g);
	int ret = 0;

	if (!j) {
		GUEST_SETERR(err, "out of memory");
		return -ENOMEM;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) < 0) {
		ret = errno ? -errno : -EIO;
		GUEST_SETERR(err, "cannot write %s: %s", tmp, strerror(-ret));
	} else if (rename(tmp, path) < 0) {
		ret = -errno;
		GUEST_SETERR(err, "cannot rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
	}
	json_decref(j);
	return ret;
}

static void state_path(const char *name, char *buf, size_t len)
{
	/* the run directory was checked short enough by vmig_guest_init */
	if (snprintf(buf, len, "%s/%s.json", vmig_guest_dir(), name) >= (int)len)
		buf[0] = '\0';
}

int guest_save(const struct vmig_guest *g, char *err)
{
	char path[PATH_MAX];

	state_path(g->name, path, sizeof(path));
	return guest_save_to(g, path, err);
}

void guest_forget(const char *name)
{
	char path[PATH_MAX];

	state_path(name, path, sizeof(path));
	unlink(path);
}

static int from_json(json_t *j, const char *path, struct vmig_guest *g,
		     char *err)
{
	static const char *const keys[] = {
		"name", "state", "address", "host-veth", "pid", "start-time",
		"via", "log", NULL,
	};
	char jerr[VMIG_JSON_ERR_LEN];
	const char *name, *state, *addr, *veth, *via, *log;
	int64_t pid, start;
	size_t i;

	memset(g, 0, sizeof(*g));
	if (vmig_json_check_keys(j, keys, jerr) ||
	    vmig_json_get_str(j, "name", true, &name, jerr) ||
	    vmig_json_get_str(j, "state", true, &state, jerr) ||
	    vmig_json_get_str(j, "address", true, &addr, jerr) ||
	    vmig_json_get_str(j, "host-veth", true, &veth, jerr) ||
	    vmig_json_get_int(j, "pid", true, 0, 4194304, &pid, jerr) ||
	    vmig_json_get_int(j, "start-time", true, 0, INT64_MAX, &start, jerr) ||
	    vmig_json_get_str(j, "via", true, &via, jerr) ||
	    vmig_json_get_str(j, "log", true, &log, jerr)) {
		GUEST_SETERR(err, "%s: %s", path, jerr);
		return -EINVAL;
	}
	if (vmig_guest_init(g, name, addr, jerr)) {
		GUEST_SETERR(err, "%s: %s", path, jerr);
		return -EINVAL;
	}
	for (i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (!strcmp(state, state_names[i]))
			break;
	if (i == sizeof(state_names) / sizeof(state_names[0])) {
		GUEST_SETERR(err, "%s: unknown state '%s'", path, state);
		return -EINVAL;
	}
	g->state = i;
	if (strcmp(veth, g->host_veth)) {
		GUEST_SETERR(err, "%s: host-veth '%s' is not %s", path, veth,
			     g->host_veth);
		return -EINVAL;
	}
	if (*via && inet_pton(AF_INET, via, &g->via) != 1) {
		GUEST_SETERR(err, "%s: bad via address '%s'", path, via);
		return -EINVAL;
	}
	if (log[0] != '/' || strlen(log) >= sizeof(g->log_path)) {
		GUEST_SETERR(err, "%s: log must be an absolute path", path);
		return -EINVAL;
	}
	strcpy(g->log_path, log);
	g->pid = pid;
	g->start_time = start;
	return 0;
}

int guest_load_from(const char *path, struct vmig_guest *g, char *err)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	int ret;

	if (!j) {
		if (access(path, F_OK) < 0 && errno == ENOENT) {
			GUEST_SETERR(err, "%s does not exist", path);
			return -ENOENT;
		}
		GUEST_SETERR(err, "%s: %s (line %d)", path, jerr.text, jerr.line);
		return -EINVAL;
	}
	ret = from_json(j, path, g, err);
	json_decref(j);
	return ret;
}

int vmig_guest_load(const char *name, struct vmig_guest *g, char *err)
{
	char path[PATH_MAX];
	int ret = vmig_guest_check_name(name, err);

	if (ret)
		return ret;
	state_path(name, path, sizeof(path));
	ret = guest_load_from(path, g, err);
	if (ret == -ENOENT)
		GUEST_SETERR(err, "no guest '%s' on this host", name);
	else if (!ret && strcmp(g->name, name)) {
		GUEST_SETERR(err, "%s holds guest '%s'", path, g->name);
		ret = -EINVAL;
	}
	return ret;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_state_file(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return len > 5 && d->d_name[0] != '.' &&
	       !strcmp(d->d_name + len - 5, ".json");
}

int vmig_guest_list(int (*fn)(const struct vmig_guest *g, void *arg),
		    void *arg, char *err)
{
	struct dirent **ents = NULL;
	int n, ret = 0;

	n = scandir(vmig_guest_dir(), &ents, is_state_file, name_cmp);
	if (n < 0) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		GUEST_SETERR(err, "cannot read %s: %s", vmig_guest_dir(),
			     strerror(errno));
		return ret;
	}
	for (int i = 0; i < n; i++) {
		struct vmig_guest g;
		char name[VMIG_GUEST_NAME_MAX + 1];
		size_t len = strlen(ents[i]->d_name) - 5;

		if (!ret && len <= VMIG_GUEST_NAME_MAX) {
			memcpy(name, ents[i]->d_name, len);
			name[len] = '\0';
			/* a broken record is skipped, not fatal to the walk */
			if (!vmig_guest_load(name, &g, err))
				ret = fn(&g, arg);
		}
		free(ents[i]);
	}
	free(ents);
	return ret;
}

struct in_use {
	const struct vmig_guest *self;
	char *who;
	size_t len;
};

static int check_in_use(const struct vmig_guest *g, void *arg)
{
	struct in_use *u = arg;

	if (strcmp(g->name, u->self->name) && g->addr.s_addr == u->self->addr.s_addr &&
	    g->state != VMIG_GUEST_AWAY && vmig_guest_alive(g)) {
		snprintf(u->who, u->len, "%s", g->name);
		return 1;
	}
	return 0;
}

int guest_addr_in_use(const struct vmig_guest *g, char *who, size_t len)
{
	struct in_use u = { .self = g, .who = who, .len = len };
	char err[VMIG_GUEST_ERR_LEN];

	return vmig_guest_list(check_in_use, &u, err) == 1;
}
