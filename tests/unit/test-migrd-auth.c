// SPDX-License-Identifier: MIT
/* migrd <-> migrd authentication over a socketpair: right key, wrong key
 * either way, and a peer that is not a migrd or sends no nonce. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "peer_auth.h"
#include "sock.h"
#include "tap.h"

struct server {
	int fd;
	struct migrd_key key;
	int ret;
	char peer[64];
	char err[256];
};

static void *serve(void *arg)
{
	struct server *s = arg;
	Vmig__CtlMsg *hello = NULL;

	s->ret = vmig_ctl_recv(s->fd, &hello);
	if (s->ret != 1) {
		s->ret = -EPROTO;
		return NULL;
	}
	s->ret = migrd_auth_server(s->fd, &s->key, "srv", hello, s->peer,
				   sizeof(s->peer), s->err, sizeof(s->err));
	vmig_ctl_free(hello);
	return NULL;
}

static void run(const char *ckey, const char *skey, int *cret, int *sret,
		char *cerr, char *serr, char *cpeer, char *speer)
{
	struct server s = { 0 };
	struct migrd_key k = { (const uint8_t *)ckey, strlen(ckey) };
	pthread_t th;
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	vmig_sock_set_timeout(sv[0], 5000);
	vmig_sock_set_timeout(sv[1], 5000);
	s.fd = sv[1];
	s.key.key = (const uint8_t *)skey;
	s.key.len = strlen(skey);
	pthread_create(&th, NULL, serve, &s);
	*cret = migrd_auth_client(sv[0], &k, "cli", cpeer, 64, cerr, 256);
	close(sv[0]);
	pthread_join(th, NULL);
	close(sv[1]);
	*sret = s.ret;
	strcpy(serr, s.err);
	strcpy(speer, s.peer);
}

/* A raw first message from a hand-made client. */
static int raw_hello(Vmig__Role role, size_t nonce_len, char *err)
{
	struct server s = { 0 };
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, *reply = NULL;
	Vmig__Hello h = VMIG__HELLO__INIT;
	uint8_t nonce[64] = { 1 };
	pthread_t th;
	int sv[2], got;

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	vmig_sock_set_timeout(sv[0], 5000);
	vmig_sock_set_timeout(sv[1], 5000);
	s.fd = sv[1];
	s.key.key = (const uint8_t *)"0123456789abcdef";
	s.key.len = 16;
	pthread_create(&th, NULL, serve, &s);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.hello = &h;
	h.has_version = h.has_role = 1;
	h.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h.role = role;
	h.host = "evil";
	h.has_nonce = nonce_len > 0;
	h.nonce.data = nonce;
	h.nonce.len = nonce_len;
	vmig_ctl_send(sv[0], &m);
	got = vmig_ctl_recv(sv[0], &reply);
	ok(got == 1 && reply->type == VMIG__CTL_TYPE__CTL_ERROR &&
	   reply->error && reply->error->class_ == VMIG__ERR_CLASS__ERR_AUTH,
	   "refusal sent as ERROR{ERR_AUTH}");
	vmig_ctl_free(reply);
	close(sv[0]);
	pthread_join(th, NULL);
	close(sv[1]);
	strcpy(err, s.err);
	return s.ret;
}

int main(void)
{
	char cerr[256], serr[256], cpeer[64], speer[64];
	int cret, sret;

	signal(SIGPIPE, SIG_IGN);
	run("0123456789abcdef", "0123456789abcdef", &cret, &sret, cerr, serr,
	    cpeer, speer);
	is_int(cret, 0, "same key: client accepts");
	is_int(sret, 0, "same key: server accepts");
	is_str(cpeer, "srv", "client learns the server's name");
	is_str(speer, "cli", "server learns the client's name");

	/* the server holds the wrong key: the client catches it first */
	cerr[0] = serr[0] = '\0';
	run("0123456789abcdef", "fedcba9876543210", &cret, &sret, cerr, serr,
	    cpeer, speer);
	is_int(cret, -EACCES, "server with another key: client refuses");
	ok(strstr(cerr, "failed to prove"), "client says why: %s", cerr);
	ok(sret != 0, "server does not accept either (%d: %s)", sret, serr);

	/* the client holds the wrong key: the server refuses it */
	cerr[0] = serr[0] = '\0';
	run("fedcba9876543210", "0123456789abcdef", &cret, &sret, cerr, serr,
	    cpeer, speer);
	ok(cret != 0, "client with another key is refused (%s)", cerr);
	ok(sret != 0, "server side fails too (%s)", serr);

	/* a key that is a prefix of the other is still another key */
	run("0123456789abcdef", "0123456789abcdef0", &cret, &sret, cerr, serr,
	    cpeer, speer);
	ok(cret != 0 && sret != 0, "prefix key refused");

	ok(raw_hello(VMIG__ROLE__ROLE_TOOL, 32, serr) < 0 &&
	   strstr(serr, "not a migrd"), "a tool over TCP refused: %s", serr);
	ok(raw_hello(VMIG__ROLE__ROLE_MIGRD, 0, serr) < 0 &&
	   strstr(serr, "nonce"), "no nonce refused: %s", serr);
	ok(raw_hello(VMIG__ROLE__ROLE_MIGRD, 8, serr) < 0 &&
	   strstr(serr, "nonce"), "short nonce refused: %s", serr);

	/* MAC inputs: side and host both matter */
	{
		struct migrd_key k = { (const uint8_t *)"0123456789abcdef", 16 };
		uint8_t n[MIGRD_NONCE_LEN] = { 7 }, a[32], b[32];

		migrd_auth_mac(&k, 'C', n, "h1", a);
		migrd_auth_mac(&k, 'S', n, "h1", b);
		ok(memcmp(a, b, 32), "MAC depends on the side");
		migrd_auth_mac(&k, 'C', n, "h2", b);
		ok(memcmp(a, b, 32), "MAC depends on the host");
		migrd_auth_mac(&k, 'C', n, "h1", b);
		ok(!memcmp(a, b, 32), "MAC is deterministic");
	}
	return tap_done();
}
