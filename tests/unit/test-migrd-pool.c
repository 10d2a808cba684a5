// SPDX-License-Identifier: MIT
/*
 * Sessions with another migrd reused (peer_pool.h), against the real
 * serving side (ctl_server.c) on loopback: requests in a row share one
 * authenticated session; a session the other end closed, one idle too
 * long, and one that failed are not used again; a wrong key and nobody
 * listening fail as before and leave nothing pooled; concurrent callers
 * each get a session of their own.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_server.h"
#include "migrd.h"
#include "msg.h"
#include "peer_pool.h"
#include "sock.h"
#include "tap.h"

static struct migrd srv;
static int srv_port, accepted;
static pthread_mutex_t acc_lock = PTHREAD_MUTEX_INITIALIZER;

static void *accept_loop(void *arg)
{
	int lfd = *(int *)arg;

	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&acc_lock);
		accepted++;
		pthread_mutex_unlock(&acc_lock);
		migrd_ctl_serve(&srv, fd, true);
	}
}

static int n_accepted(void)
{
	int n;

	pthread_mutex_lock(&acc_lock);
	n = accepted;
	pthread_mutex_unlock(&acc_lock);
	return n;
}

static const uint8_t key_bytes[] = "0123456789abcdef0123456789abcdef";
static const struct migrd_key key = { key_bytes, 32 };

/* A FORWARD to the server's own shims (it has none): an OK with no reply. */
static int call(struct migrd_peer_pool *p, const struct migrd_key *k,
		int port, char *err)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT, inner = VMIG__CTL_MSG__INIT;
	Vmig__Forward fw = VMIG__FORWARD__INIT;
	Vmig__CtlMsg *r = NULL;
	int ret;

	m.has_type = inner.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_FORWARD;
	inner.type = VMIG__CTL_TYPE__CTL_STATE;
	m.forward = &fw;
	fw.inner = &inner;
	err[0] = '\0';
	ret = migrd_pool_call(p, "127.0.0.1", (uint16_t)port, "hA", k, &m,
			      2000, 5000, &r, err, 256);
	if (!ret && r->type != VMIG__CTL_TYPE__CTL_OK)
		ret = -EPROTO;
	vmig_ctl_free(r);
	return ret;
}

static int pooled(struct migrd_peer_pool *p)
{
	int i, n = 0;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MIGRD_POOL_SLOTS; i++)
		n += p->slot[i].sess.fd >= 0;
	pthread_mutex_unlock(&p->lock);
	return n;
}

static int the_pooled_fd(struct migrd_peer_pool *p)
{
	int i;

	for (i = 0; i < MIGRD_POOL_SLOTS; i++)
		if (p->slot[i].sess.fd >= 0)
			return i;
	return -1;
}

struct worker {
	struct migrd_peer_pool *p;
	int fails;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	char err[256];
	int i;

	for (i = 0; i < 25; i++)
		if (call(w->p, &key, srv_port, err))
			w->fails++;
	return NULL;
}

int main(void)
{
	struct migrd_peer_pool p;
	struct worker w[4];
	pthread_t th[4], acc;
	char err[256], cfg_err[256];
	int i, lfd, fails, slot, dead_port;

	signal(SIGPIPE, SIG_IGN);
	migrd_config_init(&srv.cfg);
	if (migrd_config_parse(&srv.cfg, "host = hB\nrun_dir = /tmp/vmig-pool-none\n",
			       cfg_err, sizeof(cfg_err))) {
		printf("Bail out! config: %s\n", cfg_err);
		return 1;
	}
	srv.key = key;
	migrd_registry_init(&srv.reg);
	migrd_pool_init(&srv.peers);
	lfd = vmig_tcp_listen("127.0.0.1", 0);
	srv_port = vmig_sock_port(lfd);
	pthread_create(&acc, NULL, accept_loop, &lfd);
	migrd_pool_init(&p);

	/* in a row: one session */
	fails = 0;
	for (i = 0; i < 5; i++)
		fails += call(&p, &key, srv_port, err) != 0;
	is_int(fails, 0, "5 requests in a row answered (%s)", err[0] ? err : "no error");
	is_int(n_accepted(), 1, "... over one connection");
	ok(p.opened == 1 && p.reused == 4, "... opened 1, reused 4 (%llu, %llu)",
	   (unsigned long long)p.opened, (unsigned long long)p.reused);
	is_int(pooled(&p), 1, "... and kept for the next");

	/* the other end closed it: not used, a new one */
	slot = the_pooled_fd(&p);
	shutdown(p.slot[slot].sess.fd, SHUT_RDWR);
	is_int(call(&p, &key, srv_port, err), 0, "a session closed under the pool: the request goes on a new one");
	is_int(n_accepted(), 2, "... a second connection");
	is_int(pooled(&p), 1, "... the dead one dropped, the new one kept");

	/* idle too long: not used */
	slot = the_pooled_fd(&p);
	p.slot[slot].idle_since_us -= (MIGRD_POOL_IDLE_MS + 1000) * 1000LL;
	is_int(call(&p, &key, srv_port, err), 0, "a session idle past %d ms: replaced", MIGRD_POOL_IDLE_MS);
	is_int(n_accepted(), 3, "... by a third connection");

	/* a wrong key: refused as before, nothing pooled for it */
	{
		static const uint8_t bad_bytes[] = "fedcba9876543210fedcba9876543210";
		struct migrd_key bad = { bad_bytes, 32 };
		struct migrd_peer_pool q;

		migrd_pool_init(&q);
		is_int(call(&q, &bad, srv_port, err), -EACCES, "wrong key: -EACCES (%s)", err);
		is_int(pooled(&q), 0, "... nothing pooled");
		migrd_pool_drain(&q);
	}

	/* nobody listening */
	{
		int tmp = vmig_tcp_listen("127.0.0.1", 0);

		dead_port = vmig_sock_port(tmp);
		close(tmp);
	}
	i = call(&p, &key, dead_port, err);
	ok(i == -ECONNREFUSED, "nobody listening: -ECONNREFUSED (%d: %s)", i, err);
	ok(strstr(err, "cannot connect") != NULL, "... said so");
	is_int(pooled(&p), 1, "... the pool as it was");

	/* concurrent callers: each on a session of its own, all answered */
	for (i = 0; i < 4; i++) {
		w[i].p = &p;
		w[i].fails = 0;
		pthread_create(&th[i], NULL, hammer, &w[i]);
	}
	fails = 0;
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		fails += w[i].fails;
	}
	is_int(fails, 0, "4 threads x 25 requests: all answered");
	ok(n_accepted() <= 3 + 4, "... over at most 4 more connections (%d in all)", n_accepted());
	ok(pooled(&p) >= 1 && pooled(&p) <= 4, "... 1 to 4 sessions kept (%d)", pooled(&p));

	migrd_pool_drain(&p);
	is_int(pooled(&p), 0, "drain closes every kept session");
	shutdown(lfd, SHUT_RDWR);	/* wakes the accept loop */
	pthread_join(acc, NULL);
	close(lfd);
	return tap_done();
}
