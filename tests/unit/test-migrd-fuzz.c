// SPDX-License-Identifier: MIT
/*
 * Fuzzing migrd's inputs with a fixed seed (repeatable): mutated JSON API
 * requests into the handler, and mutated control records into a running
 * migrd's unix socket and TCP port. Every request gets a reply or the
 * connection is closed; the daemon never dies and still answers a valid
 * request afterwards. Run under ASan/valgrind for memory errors.
 * argv[1]: the migrd binary (the socket part is skipped without it).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "images.h"
#include "json.h"
#include "migrate.h"
#include "migrd.h"
#include "msg.h"
#include "sock.h"
#include "tap.h"

static unsigned int seed = 12345;

static unsigned int rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

static const char *const corpus[] = {
	"{\"execute\":\"qmp_capabilities\"}",
	"{\"execute\":\"list-guests\",\"id\":1}",
	"{\"execute\":\"query-guest\",\"arguments\":{\"guest\":\"web1\"}}",
	"{\"execute\":\"migrate\",\"arguments\":{\"guest\":\"web1\",\"host\":\"hB\"}}",
	"{\"execute\":\"query-migrate\",\"arguments\":{\"guest\":\"web1\"}}",
	"{\"execute\":\"migrate-cancel\",\"arguments\":{\"guest\":\"web1\"}}",
	"{\"execute\":\"query-commands\",\"id\":[1,{\"a\":null}]}",
};

static size_t mutate(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in), k, i;

	memcpy(out, in, n);
	for (k = 1 + rnd() % 4; k; k--) {
		switch (rnd() % 6) {
		case 0:	/* flip a byte */
			if (n)
				out[rnd() % n] ^= (char)(1 << (rnd() % 8));
			break;
		case 1:	/* truncate */
			if (n)
				n = rnd() % n;
			break;
		case 2:	/* insert a random byte */
			if (n + 1 < cap) {
				i = n ? rnd() % n : 0;
				memmove(out + i + 1, out + i, n - i);
				out[i] = (char)(rnd() & 0xff);
				n++;
			}
			break;
		case 3:	/* duplicate a slice */
			if (n && n * 2 < cap) {
				i = rnd() % n;
				memcpy(out + n, out + i, n - i);
				n += n - i;
			}
			break;
		case 4:	/* a type confusion */
			for (i = 0; i + 1 < n; i++)
				if (out[i] == '"' && out[i + 1] != ':' &&
				    rnd() % 3 == 0) {
					out[i] = '[';
					break;
				}
			break;
		default:	/* a NUL in the middle */
			if (n)
				out[rnd() % n] = '\0';
			break;
		}
	}
	return n;
}

static void fuzz_api(void)
{
	static struct migrd d;
	struct migrd_api_session s = { 0 };
	char buf[4096], err[256];
	int i, bad = 0, replies = 0;

	migrd_config_init(&d.cfg);
	migrd_config_parse(&d.cfg, "host = hA\nrun_dir = /tmp/vmig-fuzz-none\n"
			   "peer.hB = 127.0.0.1:1\n", err, sizeof(err));
	migrd_registry_init(&d.reg);
	migrd_pool_init(&d.peers);
	d.migs = migrd_mig_table_create(&d);
	for (i = 0; i < 20000; i++) {
		size_t n = mutate(corpus[rnd() % 7], buf, sizeof(buf));
		json_t *r;

		if (i % 50 == 0)	/* negotiated and not, both */
			s.negotiated = !s.negotiated;
		r = migrd_api_handle(&d, &s, buf, n);
		if (!r || (!json_object_get(r, "return") &&
			   !json_object_get(r, "error")))
			bad++;
		else
			replies++;
		json_decref(r);
	}
	is_int(bad, 0, "20000 mutated API requests: every one answered (%d)",
	       replies);
	migrd_mig_table_destroy(d.migs);
	migrd_registry_dispose(&d.reg);
}

static int forward_ok(const char *sock)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, inner = VMIG__CTL_MSG__INIT;
	Vmig__Hello h = VMIG__HELLO__INIT;
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	Vmig__CtlMsg *r = NULL;
	int fd = vmig_unix_connect(sock), ret = -1;

	if (fd < 0)
		return -1;
	vmig_sock_set_timeout(fd, 5000);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.hello = &h;
	h.has_version = h.has_role = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.role = VMIG__ROLE__ROLE_TOOL;
	if (vmig_ctl_send_header(fd) || vmig_ctl_send(fd, &m) ||
	    vmig_ctl_recv_header(fd) || vmig_ctl_recv(fd, &r) != 1)
		goto out;
	vmig_ctl_free(r);
	r = NULL;
	vmig__ctl_msg__init(&m);
	m.has_type = inner.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_FORWARD;
	inner.type = VMIG__CTL_TYPE__CTL_STATE;
	m.forward = &fw;
	fw.inner = &inner;
	if (!vmig_ctl_send(fd, &m) && vmig_ctl_recv(fd, &r) == 1 &&
	    r->type == VMIG__CTL_TYPE__CTL_OK)
		ret = 0;
out:
	vmig_ctl_free(r);
	close(fd);
	return ret;
}

/* A valid HELLO then a request, packed, with bytes mutated. */
static void fuzz_socket(const char *bin)
{
	char dir[] = "/tmp/vmig-fuzz-XXXXXX", path[128], conf[512], sock[160];
	uint8_t pkt[512];
	int i, port, fd, st = 0, lfd;
	pid_t pid;

	if (!mkdtemp(dir))
		return;
	lfd = vmig_tcp_listen("127.0.0.1", 0);
	port = vmig_sock_port(lfd);
	close(lfd);
	snprintf(path, sizeof(path), "%s/key", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (write(fd, "0123456789abcdef0123", 20) != 20)
		return;
	close(fd);
	snprintf(conf, sizeof(conf),
		 "host = hA\nlisten = 127.0.0.1\nport = %d\nrun_dir = %s/run\n"
		 "key_file = %s\n", port, dir, path);
	snprintf(path, sizeof(path), "%s/conf", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (write(fd, conf, strlen(conf)) != (ssize_t)strlen(conf))
		return;
	close(fd);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);	/* the refusals are expected: keep TAP clean */
		execl(bin, bin, "--config", path, "--foreground", NULL);
		_exit(127);
	}
	snprintf(sock, sizeof(sock), "%s/run/migrd.sock", dir);
	for (i = 0; i < 200 && access(sock, F_OK); i++)
		usleep(20000);
	ok(forward_ok(sock) == 0, "migrd answers before the fuzzing");

	for (i = 0; i < 400; i++) {
		Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, in2 = VMIG__CTL_MSG__INIT;
		Vmig__Hello h = VMIG__HELLO__INIT;
		Vmig__Forward fw = VMIG__FORWARD__INIT;
		Vmig__MigXfer x = VMIG__MIG_XFER__INIT;
		uint8_t gid[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 };
		size_t len, k;
		bool tcp = i % 3 == 0;
		uint8_t hdr[12];
		uint32_t crc;

		fd = tcp ? vmig_tcp_connect("127.0.0.1", (uint16_t)port, 2000) :
			   vmig_unix_connect(sock);
		if (fd < 0)
			continue;
		vmig_sock_set_timeout(fd, 300);
		m.has_type = 1;
		m.type = i % 2 ? VMIG__CTL_TYPE__CTL_HELLO :
				 (Vmig__CtlType)(rnd() % 26);
		m.hello = &h;
		h.has_version = h.has_role = h.has_pid = 1;
		h.version = rnd() % 4 ? 1 : rnd();
		h.role = (Vmig__Role)(rnd() % 6);
		h.pid = rnd() % 3 ? 0 : rnd();
		h.guest = rnd() % 2 ? "g" : "../../etc";
		h.ctl_path = rnd() % 2 ? "/tmp/x.sock" : "rel";
		h.has_nonce = rnd() % 2;
		h.nonce.data = gid;
		h.nonce.len = rnd() % 17;
		m.forward = rnd() % 2 ? &fw : NULL;
		fw.inner = rnd() % 2 ? &in2 : NULL;
		in2.has_type = 1;
		in2.type = (Vmig__CtlType)(rnd() % 26);
		fw.has_dest_gid = rnd() % 2;
		fw.dest_gid.data = gid;
		fw.dest_gid.len = rnd() % 17;
		m.mig = rnd() % 2 ? &x : NULL;
		x.guest = "g";
		x.file = rnd() % 2 ? "../../x" : "a/b";
		len = vmig__ctl_msg__get_packed_size(&m);
		if (len > sizeof(pkt))
			len = sizeof(pkt);
		vmig__ctl_msg__pack(&m, pkt);
		for (k = rnd() % 4; k && len; k--)
			pkt[rnd() % len] ^= (uint8_t)(1 << (rnd() % 8));
		/* a well-formed record around the mutated payload, mostly */
		crc = vmig_crc32c(0, pkt, len);
		if (rnd() % 8 == 0)
			crc ^= 1;
		hdr[0] = len & 0xff; hdr[1] = (len >> 8) & 0xff;
		hdr[2] = hdr[3] = 0;
		hdr[4] = VMIG_REC_CTL; hdr[5] = 0; hdr[6] = hdr[7] = 0;
		memcpy(hdr + 8, &crc, 4);
		if (!vmig_ctl_send_header(fd) && !vmig_ctl_recv_header(fd)) {
			char junk[256];

			/* whatever comes back, until migrd closes or waits */
			if (!vmig_write_full(fd, hdr, sizeof(hdr)) &&
			    !vmig_write_full(fd, pkt, len))
				while (read(fd, junk, sizeof(junk)) > 0)
					continue;
		}
		close(fd);
	}
	ok(kill(pid, 0) == 0, "migrd survived 400 mutated sessions");
	ok(forward_ok(sock) == 0, "and still answers a valid request");
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "and exits cleanly");
	snprintf(conf, sizeof(conf), "rm -rf %s", dir);
	if (system(conf))
		printf("# cleanup failed\n");
}

/* Checkpoint links a source may send (CRIU's parent links between
 * pre-copy rounds): inside the tree only. */
static void link_names(void)
{
	static const struct {
		const char *rel, *target;
		bool ok;
	} t[] = {
		{ "parent", "pre-2", true },
		{ "pre-2/parent", "../pre-1", true },
		{ "a/b/parent", "../../pre-1/x", true },
		{ "parent", "../in-other", false },	/* above the top */
		{ "pre-2/parent", "../../etc", false },
		{ "parent", "/etc", false },
		{ "parent", "", false },
		{ "parent", ".", false },
		{ "parent", "pre-1/", false },
		{ "parent", "pre-1//x", false },
		{ "parent", "a b", false },
		{ "../parent", "pre-1", false },	/* the name itself */
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok(migrd_images_link_valid(t[i].rel, t[i].target) == t[i].ok,
		   "link %s -> '%s' %s", t[i].rel, t[i].target,
		   t[i].ok ? "accepted" : "refused");
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	link_names();
	fuzz_api();
	if (argc > 1)
		fuzz_socket(argv[1]);
	return tap_done();
}
