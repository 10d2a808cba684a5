// SPDX-License-Identifier: MIT
/* migrd <-> migrd authentication over a socketpair: right key, wrong key
 * either way, and a peer that is not a migrd or sends no nonce. */
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "peer_auth.h"
#include "session.h"
#include "sock.h"
#include "tap.h"

struct server {
	int fd;
	struct migrd_key key;
	int ret;
	char peer[64];
	char err[256];
	uint8_t skey[32];
};

static uint8_t last_ckey[32], last_skey[32];

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
				   sizeof(s->peer), s->skey, s->err,
				   sizeof(s->err));
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
	memset(last_ckey, 0, 32);
	*cret = migrd_auth_client(sv[0], &k, "cli", cpeer, 64, last_ckey, cerr,
				  256);
	close(sv[0]);
	pthread_join(th, NULL);
	close(sv[1]);
	*sret = s.ret;
	memcpy(last_skey, s.skey, 32);
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

static int raw_record(int fd, uint16_t type, const void *p, size_t n)
{
	return vmig_record_write(fd, type, p, n);
}

/* Sealed records: pass; changed, replayed, reflected or unsealed: refused. */
static void test_sealed(void)
{
	uint8_t key[32] = { 1, 2, 3 }, other[32] = { 9 };
	struct migrd_sess c, s;
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, *got = NULL;
	struct vmig_record rec = { 0 };
	int sv[2], p[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	migrd_sess_init(&c, sv[0]);
	migrd_sess_init(&s, sv[1]);
	migrd_sess_seal(&c, 'C', key);
	migrd_sess_seal(&s, 'S', key);
	m.has_type = m.has_seq = 1;
	m.type = VMIG__CTL_TYPE__CTL_STATE;
	m.seq = 5;
	is_int(migrd_sess_send(&c, &m), 0, "sealed send");
	ok(migrd_sess_recv(&s, &got) == 1 && got->seq == 5, "sealed receive");
	vmig_ctl_free(got);
	got = NULL;
	is_int(migrd_sess_send(&s, &m), 0, "reply sealed");
	ok(migrd_sess_recv(&c, &got) == 1, "reply received");
	vmig_ctl_free(got);
	got = NULL;

	/* capture a sealed record off a pipe to replay and alter it */
	if (pipe(p))
		return;
	{
		struct migrd_sess tap = c;

		tap.fd = p[1];
		migrd_sess_send(&tap, &m);	/* what c would send as record 1 */
		vmig_record_read(p[0], VMIG_RECORD_MAX_CTL, &rec);
	}
	raw_record(sv[0], MIGRD_REC_SEALED, rec.data, rec.len);
	ok(migrd_sess_recv(&s, &got) == 1, "record 1 as sent: accepted");
	vmig_ctl_free(got);
	got = NULL;
	raw_record(sv[0], MIGRD_REC_SEALED, rec.data, rec.len);
	is_int(migrd_sess_recv(&s, &got), -EBADMSG, "the same record replayed: refused");
	rec.data[rec.len - 1] ^= 1;
	s.rx = 1;
	raw_record(sv[0], MIGRD_REC_SEALED, rec.data, rec.len);
	is_int(migrd_sess_recv(&s, &got), -EBADMSG, "a changed record: refused");
	vmig_record_dispose(&rec);

	/* the server's own record sent back to it (reflection) */
	{
		struct migrd_sess tap = s;

		tap.fd = p[1];
		tap.tx = 1;
		migrd_sess_send(&tap, &m);
		vmig_record_read(p[0], VMIG_RECORD_MAX_CTL, &rec);
		raw_record(sv[0], MIGRD_REC_SEALED, rec.data, rec.len);
		s.rx = 1;
		is_int(migrd_sess_recv(&s, &got), -EBADMSG,
		       "its own record reflected back: refused");
		vmig_record_dispose(&rec);
	}
	/* a plain record on a sealed session, another key */
	vmig_ctl_send(sv[0], &m);
	is_int(migrd_sess_recv(&s, &got), -EBADMSG, "an unsealed record: refused");
	migrd_sess_seal(&c, 'C', other);
	s.rx = c.tx = 0;
	migrd_sess_send(&c, &m);
	is_int(migrd_sess_recv(&s, &got), -EBADMSG, "another key: refused");
	close(p[0]);
	close(p[1]);
	migrd_sess_close(&c);
	migrd_sess_close(&s);
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
	{
		static const uint8_t zero[32];

		ok(!memcmp(last_ckey, last_skey, 32) &&
		   memcmp(last_ckey, zero, 32), "both ends derive the same session key");
	}

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
	test_sealed();
	return tap_done();
}
