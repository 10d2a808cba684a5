// SPDX-License-Identifier: MIT
/* migrd's config file: key = value lines, every value checked. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static int fail(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err && err_len) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void migrd_config_init(struct migrd_config *cfg)
{
	const char *run = getenv("VMIG_RUN_DIR");

	memset(cfg, 0, sizeof(*cfg));
	if (gethostname(cfg->host, sizeof(cfg->host)) < 0 ||
	    !migrd_name_valid(cfg->host))
		snprintf(cfg->host, sizeof(cfg->host), "localhost");
	cfg->host[sizeof(cfg->host) - 1] = '\0';
	snprintf(cfg->listen, sizeof(cfg->listen), "0.0.0.0");
	cfg->port = MIGRD_DEFAULT_PORT;
	if (run && *run == '/' && strlen(run) < sizeof(cfg->run_dir) - 32)
		snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", run);
	else
		snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s",
			 MIGRD_DEFAULT_RUN_DIR);
	cfg->forward_timeout_ms = 5000;
	cfg->connect_timeout_ms = 2000;
	snprintf(cfg->backend, sizeof(cfg->backend), "none");
	cfg->drain_timeout_ms = 10000;
	cfg->restore_timeout_ms = 60000;
	cfg->precopy_rounds = 2;
	cfg->precopy_stop_bytes = 1 << 20;
}

bool migrd_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= MIGRD_NAME_MAX || name[0] == '-' || name[0] == '.')
		return false;
	for (; *name; name++)
		if (!isalnum((unsigned char)*name) && !strchr("._-", *name))
			return false;
	return true;
}

/* Numeric IPv4/IPv6, or a DNS-style name. */
static bool addr_valid(const char *a)
{
	unsigned char buf[16];
	size_t n = strlen(a);

	if (inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1)
		return true;
	if (n == 0 || n >= MIGRD_ADDR_MAX)
		return false;
	for (; *a; a++)
		if (!isalnum((unsigned char)*a) && !strchr(".-", *a))
			return false;
	return true;
}

static int parse_uint(const char *v, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	char *end;
	unsigned long x;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

/* "addr", "addr:port", "[v6]:port"; no port gives 0: the cluster's */
static int parse_hostport(const char *v, char *addr, uint16_t *port)
{
	char buf[MIGRD_ADDR_MAX + 8];
	unsigned long p = 0;
	char *colon, *a = buf;

	if (strlen(v) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, v);
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close)
			return -EINVAL;
		*close = '\0';
		a = buf + 1;
		if (close[1] == ':') {
			if (parse_uint(close + 2, 1, 65535, &p))
				return -EINVAL;
		} else if (close[1]) {
			return -EINVAL;
		}
	} else {
		colon = strchr(buf, ':');
		/* more than one colon: a bare IPv6 address, no port */
		if (colon && !strchr(colon + 1, ':')) {
			*colon = '\0';
			if (parse_uint(colon + 1, 1, 65535, &p))
				return -EINVAL;
		}
	}
	if (strlen(a) >= MIGRD_ADDR_MAX || !addr_valid(a))
		return -EINVAL;
	memcpy(addr, a, strlen(a) + 1);
	*port = (uint16_t)p;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int set_path(char *dst, const char *v)
{
	if (v[0] != '/' || strlen(v) >= MIGRD_PATH_MAX)
		return -EINVAL;
	strcpy(dst, v);
	return 0;
}

static int parse_line(struct migrd_config *cfg, char *key, char *val,
		      int lineno, char *err, size_t err_len)
{
	unsigned long x;

	if (!strcmp(key, "host")) {
		if (!migrd_name_valid(val))
			return fail(err, err_len, "line %d: bad host name '%s'",
				    lineno, val);
		strcpy(cfg->host, val);
	} else if (!strcmp(key, "listen")) {
		if (!addr_valid(val))
			return fail(err, err_len,
				    "line %d: bad listen address '%s'", lineno,
				    val);
		strcpy(cfg->listen, val);
	} else if (!strcmp(key, "port")) {
		if (parse_uint(val, 1, 65535, &x))
			return fail(err, err_len, "line %d: bad port '%s'",
				    lineno, val);
		cfg->port = (uint16_t)x;
	} else if (!strcmp(key, "run_dir")) {
		/* leave room for "/shim-<pid>.sock" and "/migrd-api.sock" */
		if (strlen(val) > MIGRD_PATH_MAX - 32 ||
		    set_path(cfg->run_dir, val))
			return fail(err, err_len,
				    "line %d: run_dir must be an absolute path of at most %d characters",
				    lineno, MIGRD_PATH_MAX - 32);
	} else if (!strcmp(key, "key_file")) {
		if (set_path(cfg->key_file, val))
			return fail(err, err_len,
				    "line %d: key_file must be an absolute path",
				    lineno);
	} else if (!strcmp(key, "forward_timeout_ms") ||
		   !strcmp(key, "connect_timeout_ms") ||
		   !strcmp(key, "drain_timeout_ms") ||
		   !strcmp(key, "restore_timeout_ms")) {
		if (parse_uint(val, 10, 600000, &x))
			return fail(err, err_len,
				    "line %d: %s must be 10..600000", lineno,
				    key);
		if (key[0] == 'f')
			cfg->forward_timeout_ms = (unsigned int)x;
		else if (key[0] == 'c')
			cfg->connect_timeout_ms = (unsigned int)x;
		else if (key[0] == 'd')
			cfg->drain_timeout_ms = (unsigned int)x;
		else
			cfg->restore_timeout_ms = (unsigned int)x;
	} else if (!strcmp(key, "precopy_rounds")) {
		if (parse_uint(val, 0, MIGRD_PRECOPY_MAX, &x))
			return fail(err, err_len,
				    "line %d: precopy_rounds must be 0..%d",
				    lineno, MIGRD_PRECOPY_MAX);
		cfg->precopy_rounds = (unsigned int)x;
	} else if (!strcmp(key, "precopy_stop_bytes")) {
		if (parse_uint(val, 0, ULONG_MAX, &x))
			return fail(err, err_len,
				    "line %d: bad precopy_stop_bytes '%s'",
				    lineno, val);
		cfg->precopy_stop_bytes = x;
	} else if (!strcmp(key, "backend")) {
		if (strcmp(val, "none") && strcmp(val, "exec"))
			return fail(err, err_len,
				    "line %d: backend must be none or exec",
				    lineno);
		strcpy(cfg->backend, val);
	} else if (!strcmp(key, "backend_exec")) {
		if (set_path(cfg->backend_exec, val))
			return fail(err, err_len,
				    "line %d: backend_exec must be an absolute path",
				    lineno);
	} else if (!strcmp(key, "http_listen")) {
		if (parse_hostport(val, cfg->http_addr, &cfg->http_port) ||
		    !cfg->http_port)
			return fail(err, err_len,
				    "line %d: http_listen must be ADDR:PORT",
				    lineno);
	} else if (!strcmp(key, "http_token_file")) {
		if (set_path(cfg->http_token_file, val))
			return fail(err, err_len,
				    "line %d: http_token_file must be an absolute path",
				    lineno);
	} else if (!strcmp(key, "image_dir")) {
		if (strlen(val) > MIGRD_PATH_MAX - 40 ||
		    set_path(cfg->image_dir, val))
			return fail(err, err_len,
				    "line %d: image_dir must be an absolute path of at most %d characters",
				    lineno, MIGRD_PATH_MAX - 40);
	} else if (!strncmp(key, "peer.", 5)) {
		struct migrd_host *h;
		const char *name = key + 5;
		int i;

		if (!migrd_name_valid(name))
			return fail(err, err_len, "line %d: bad peer name '%s'",
				    lineno, name);
		for (i = 0; i < cfg->n_hosts; i++)
			if (!strcmp(cfg->hosts[i].name, name))
				return fail(err, err_len,
					    "line %d: peer '%s' listed twice",
					    lineno, name);
		if (cfg->n_hosts == MIGRD_MAX_HOSTS)
			return fail(err, err_len, "line %d: more than %d peers",
				    lineno, MIGRD_MAX_HOSTS);
		h = &cfg->hosts[cfg->n_hosts];
		if (parse_hostport(val, h->addr, &h->port))
			return fail(err, err_len,
				    "line %d: bad peer address '%s' (ADDR or ADDR:PORT)",
				    lineno, val);
		strcpy(h->name, name);
		cfg->n_hosts++;
	} else {
		return fail(err, err_len, "line %d: unknown key '%s'", lineno,
			    key);
	}
	return 0;
}

int migrd_config_parse(struct migrd_config *cfg, const char *text,
		       char *err, size_t err_len)
{
	char *copy, *line, *next, *eq, *hash;
	int lineno = 0, ret = 0;

	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	for (line = copy; line && !ret; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		line = trim(line);
		if (!*line)
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			ret = fail(err, err_len, "line %d: expected KEY = VALUE",
				   lineno);
			break;
		}
		*eq = '\0';
		ret = parse_line(cfg, trim(line), trim(eq + 1), lineno, err,
				 err_len);
	}
	free(copy);
	/* peers without a port use the cluster's, wherever 'port' was set */
	for (lineno = 0; !ret && lineno < cfg->n_hosts; lineno++)
		if (!cfg->hosts[lineno].port)
			cfg->hosts[lineno].port = cfg->port;
	return ret;
}

int migrd_config_load(struct migrd_config *cfg, const char *path,
		      char *err, size_t err_len)
{
	char buf[65536];
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fail(err, err_len, "%s: %s", path, strerror(-ret));
		return ret;
	}
	n = read(fd, buf, sizeof(buf));
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (ret) {
		fail(err, err_len, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (n == (ssize_t)sizeof(buf))
		return fail(err, err_len, "%s: larger than %zu bytes", path,
			    sizeof(buf) - 1);
	if (memchr(buf, '\0', n))
		return fail(err, err_len, "%s: not a text file", path);
	buf[n] = '\0';
	ret = migrd_config_parse(cfg, buf, err, err_len);
	if (ret && err && err_len) {
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, err_len, "%s: %s", path, tmp);
	}
	return ret;
}

int migrd_config_check(const struct migrd_config *cfg, char *err,
		       size_t err_len)
{
	if (!cfg->key_file[0])
		return fail(err, err_len,
			    "key_file is required (peers authenticate with it)");
	if (!migrd_name_valid(cfg->host))
		return fail(err, err_len, "bad host name '%s'", cfg->host);
	if (cfg->http_addr[0] && !cfg->http_token_file[0])
		return fail(err, err_len,
			    "http_listen needs http_token_file (the API moves guests)");
	if (!strcmp(cfg->backend, "exec") && !cfg->backend_exec[0])
		return fail(err, err_len,
			    "backend = exec needs backend_exec = PROGRAM");
	return 0;
}

const struct migrd_host *migrd_config_find_host(const struct migrd_config *cfg,
						const char *name_or_addr)
{
	int i;

	for (i = 0; i < cfg->n_hosts; i++)
		if (!strcmp(cfg->hosts[i].name, name_or_addr))
			return &cfg->hosts[i];
	for (i = 0; i < cfg->n_hosts; i++)
		if (!strcmp(cfg->hosts[i].addr, name_or_addr))
			return &cfg->hosts[i];
	return NULL;
}

int migrd_key_load(const char *path, uint8_t **key, size_t *key_len,
		   char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fail(err, err_len, "key file %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = fail(err, err_len, "key file %s: %s", path,
			   strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0077)) {
		ret = fail(err, err_len,
			   "key file %s: must be a regular file readable by its owner only (chmod 600)",
			   path);
		goto out;
	}
	buf = malloc(MIGRD_KEY_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	n = read(fd, buf, MIGRD_KEY_MAX + 1);
	if (n < MIGRD_KEY_MIN || n > MIGRD_KEY_MAX) {
		ret = fail(err, err_len, "key file %s: must hold %d to %d bytes",
			   path, MIGRD_KEY_MIN, MIGRD_KEY_MAX);
		goto out;
	}
	*key = buf;
	*key_len = (size_t)n;
	buf = NULL;
out:
	if (buf) {
		explicit_bzero(buf, MIGRD_KEY_MAX + 1);
		free(buf);
	}
	close(fd);
	return ret;
}
