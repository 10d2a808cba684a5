// SPDX-License-Identifier: MIT
/* migrd's config file and key file: good input, and every kind of bad. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static int parse(const char *text, struct migrd_config *cfg, char *err)
{
	migrd_config_init(cfg);
	return migrd_config_parse(cfg, text, err, 256);
}

static void bad(const char *text, const char *want_in_err)
{
	struct migrd_config cfg;
	char err[256] = "";
	int ret = parse(text, &cfg, err);

	ok(ret < 0 && strstr(err, want_in_err), "refused: %s", want_in_err);
	if (ret >= 0 || !strstr(err, want_in_err))
		printf("#   err '%s'\n", err);
}

static void test_good(void)
{
	struct migrd_config cfg;
	const struct migrd_host *h;
	char err[256] = "";

	is_int(parse("# cluster\n"
		     "host = h1\n"
		     "  listen=10.77.0.1   # the segment\n"
		     "port = 7411\n"
		     "run_dir = /tmp/vmig\n"
		     "key_file = /etc/vmig/cluster.key\n"
		     "forward_timeout_ms = 3000\n"
		     "precopy_rounds = 0\n"
		     "precopy_stop_bytes = 65536\n"
		     "\n"
		     "peer.h1 = 10.77.0.1\n"
		     "peer.h2 = 10.77.0.2:7500\n"
		     "peer.h3 = [fd00::3]:7412\n"
		     "peer.h4 = fd00::4\n"
		     "peer.h5 = host5.example\n",
		     &cfg, err), 0, "good config parses");
	if (err[0])
		printf("#   %s\n", err);
	is_str(cfg.host, "h1", "host");
	is_str(cfg.listen, "10.77.0.1", "listen");
	is_int(cfg.port, 7411, "port");
	is_str(cfg.run_dir, "/tmp/vmig", "run_dir");
	is_str(cfg.key_file, "/etc/vmig/cluster.key", "key_file");
	is_int(cfg.forward_timeout_ms, 3000, "forward_timeout_ms");
	is_int(cfg.connect_timeout_ms, 2000, "connect_timeout_ms default");
	is_int(cfg.precopy_rounds, 0, "precopy_rounds = 0 (pre-copy off)");
	is_int((int)cfg.precopy_stop_bytes, 65536, "precopy_stop_bytes");
	is_int(cfg.n_hosts, 5, "five peers");
	h = migrd_config_find_host(&cfg, "h2");
	ok(h && !strcmp(h->addr, "10.77.0.2") && h->port == 7500,
	   "peer with port");
	h = migrd_config_find_host(&cfg, "10.77.0.1");
	ok(h && !strcmp(h->name, "h1") && h->port == 7411,
	   "find by address; no port: the cluster's port");
	h = migrd_config_find_host(&cfg, "h3");
	ok(h && !strcmp(h->addr, "fd00::3") && h->port == 7412,
	   "bracketed IPv6 with port");
	h = migrd_config_find_host(&cfg, "h4");
	ok(h && !strcmp(h->addr, "fd00::4") && h->port == 7411, "bare IPv6");
	ok(!migrd_config_find_host(&cfg, "h9"), "unknown host: NULL");
	is_int(migrd_config_check(&cfg, err, sizeof(err)), 0, "check passes");

	migrd_config_init(&cfg);
	ok(migrd_config_check(&cfg, err, sizeof(err)) < 0 &&
	   strstr(err, "key_file"), "check wants a key file");
	is_int(cfg.port, MIGRD_DEFAULT_PORT, "default port");
	is_int(cfg.precopy_rounds, 2, "default: 2 pre-copy rounds");
	is_int((int)cfg.precopy_stop_bytes, 1 << 20,
	       "default: a round under 1 MiB ends pre-copy");
}

static void test_bad(void)
{
	bad("host\n", "line 1: expected KEY = VALUE");
	bad("host = h1\nfoo = 1\n", "line 2: unknown key 'foo'");
	bad("host = -h\n", "bad host name");
	bad("host = a/b\n", "bad host name");
	bad("port = 0\n", "bad port");
	bad("port = 65536\n", "bad port");
	bad("port = 12x\n", "bad port");
	bad("port = -1\n", "bad port");
	bad("listen = 1.2.3.4 5\n", "bad listen address");
	bad("run_dir = relative\n", "run_dir must be an absolute path");
	bad("run_dir = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "run_dir must be an absolute path");
	bad("key_file = k\n", "key_file must be an absolute path");
	bad("forward_timeout_ms = 5\n", "forward_timeout_ms must be");
	bad("connect_timeout_ms = 99999999999999999999\n",
	    "connect_timeout_ms must be");
	bad("precopy_rounds = 17\n", "precopy_rounds must be 0..16");
	bad("precopy_rounds = two\n", "precopy_rounds must be");
	bad("precopy_stop_bytes = -1\n", "bad precopy_stop_bytes");
	bad("peer.h1 = 1.2.3.4\npeer.h1 = 1.2.3.5\n", "listed twice");
	bad("peer. = 1.2.3.4\n", "bad peer name");
	bad("peer.h1 = 1.2.3.4:0\n", "bad peer address");
	bad("peer.h1 = [fd00::1\n", "bad peer address");
	bad("peer.h1 = 1.2.3.4:80x\n", "bad peer address");
	bad("peer.h1 = bad_name!\n", "bad peer address");
}

static void test_key(void)
{
	char dir[] = "/tmp/vmig-key-XXXXXX", path[64], err[256];
	uint8_t *key = NULL;
	size_t len = 0;
	int fd;

	if (!mkdtemp(dir))
		return;
	snprintf(path, sizeof(path), "%s/k", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ok(fd >= 0 && write(fd, "0123456789abcdef!", 17) == 17, "key written");
	close(fd);
	is_int(migrd_key_load(path, &key, &len, err, sizeof(err)), 0,
	       "key loads");
	is_int(len, 17, "key length");
	free(key);
	chmod(path, 0644);
	ok(migrd_key_load(path, &key, &len, err, sizeof(err)) < 0 &&
	   strstr(err, "chmod 600"), "world-readable key refused");
	chmod(path, 0600);
	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd >= 0 && write(fd, "short", 5) == 5, "short key written");
	close(fd);
	ok(migrd_key_load(path, &key, &len, err, sizeof(err)) < 0 &&
	   strstr(err, "16 to 4096"), "short key refused");
	unlink(path);
	ok(migrd_key_load(path, &key, &len, err, sizeof(err)) < 0 &&
	   strstr(err, "No such file"), "missing key refused");
	rmdir(dir);
}

int main(void)
{
	test_good();
	test_bad();
	test_key();
	ok(migrd_name_valid("web-1.a_b"), "name valid");
	ok(!migrd_name_valid(""), "empty name invalid");
	ok(!migrd_name_valid("a b"), "name with space invalid");
	ok(!migrd_name_valid("0123456789012345678901234567890123456789012345678901234567890123"),
	   "64-char name invalid");
	return tap_done();
}
