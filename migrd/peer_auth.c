// SPDX-License-Identifier: MIT
/* migrd <-> migrd challenge-response with the cluster key (peer_auth.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define LOG_PREFIX "migrd: auth: "
#include "config.h"
#include "hmac.h"
#include "log.h"
#include "msg.h"
#include "peer_auth.h"

#define AUTH_TAG "vmig-auth-1"

static int fail(int ret, char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(int ret, char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err && err_len) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return ret;
}

void migrd_auth_mac(const struct migrd_key *key, char side,
		    const uint8_t nonce[MIGRD_NONCE_LEN], const char *host,
		    uint8_t mac[32])
{
	struct vmig_hmac h;
	uint8_t role = VMIG__ROLE__ROLE_MIGRD;

	vmig_hmac_init(&h, key->key, key->len);
	vmig_hmac_update(&h, AUTH_TAG, sizeof(AUTH_TAG) - 1);
	vmig_hmac_update(&h, &side, 1);
	vmig_hmac_update(&h, nonce, MIGRD_NONCE_LEN);
	vmig_hmac_update(&h, &role, 1);
	vmig_hmac_update(&h, host, strlen(host));
	vmig_hmac_final(&h, mac);
}

static void session_key(const struct migrd_key *key,
			const uint8_t nc[MIGRD_NONCE_LEN],
			const uint8_t ns[MIGRD_NONCE_LEN], const char *client,
			const char *server, uint8_t out[32])
{
	static const char tag[] = "vmig-session-1";
	struct vmig_hmac h;
	uint8_t zero = 0;

	vmig_hmac_init(&h, key->key, key->len);
	vmig_hmac_update(&h, tag, sizeof(tag) - 1);
	vmig_hmac_update(&h, nc, MIGRD_NONCE_LEN);
	vmig_hmac_update(&h, ns, MIGRD_NONCE_LEN);
	vmig_hmac_update(&h, client, strlen(client));
	vmig_hmac_update(&h, &zero, 1);
	vmig_hmac_update(&h, server, strlen(server));
	vmig_hmac_final(&h, out);
}

static int make_nonce(uint8_t nonce[MIGRD_NONCE_LEN])
{
	size_t got = 0;

	while (got < MIGRD_NONCE_LEN) {
		ssize_t n = getrandom(nonce + got, MIGRD_NONCE_LEN - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += n;
	}
	return 0;
}

static void hello_init(Vmig__CtlMsg *m, Vmig__Hello *h, const char *host)
{
	vmig__ctl_msg__init(m);
	vmig__hello__init(h);
	m->has_type = 1;
	m->type = VMIG__CTL_TYPE__CTL_HELLO;
	m->hello = h;
	h->has_version = 1;
	h->version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	h->has_role = 1;
	h->role = VMIG__ROLE__ROLE_MIGRD;
	h->host = (char *)host;
}

/* The peer's HELLO as a migrd: version, role, a valid host name. */
static int check_hello(const Vmig__CtlMsg *m, bool want_nonce, bool want_mac,
		       char *err, size_t err_len)
{
	const Vmig__Hello *h = m->hello;

	if (m->type == VMIG__CTL_TYPE__CTL_ERROR && m->error)
		return fail(-EACCES, err, err_len, "peer refused: %s",
			    m->error->desc ? m->error->desc : "no reason");
	if (m->type != VMIG__CTL_TYPE__CTL_HELLO || !h)
		return fail(-EPROTO, err, err_len, "expected HELLO, got %s",
			    vmig_ctl_type_name(m->type));
	if (!want_mac || want_nonce) {
		if (!h->has_version ||
		    h->version != VMIG__CTL_VERSION__CTL_VERSION_CURRENT)
			return fail(-EPROTONOSUPPORT, err, err_len,
				    "protocol version %u, this migrd speaks %d",
				    h->version,
				    VMIG__CTL_VERSION__CTL_VERSION_CURRENT);
		if (!h->has_role || h->role != VMIG__ROLE__ROLE_MIGRD)
			return fail(-EPROTO, err, err_len, "peer is not a migrd");
		if (!h->host || !migrd_name_valid(h->host))
			return fail(-EPROTO, err, err_len,
				    "peer sent no valid host name");
	}
	if (want_nonce && (!h->has_nonce || h->nonce.len != MIGRD_NONCE_LEN))
		return fail(-EPROTO, err, err_len, "peer sent no %d-byte nonce",
			    MIGRD_NONCE_LEN);
	if (want_mac && (!h->has_mac || h->mac.len != VMIG_HMAC_LEN))
		return fail(-EACCES, err, err_len, "peer sent no %d-byte MAC",
			    VMIG_HMAC_LEN);
	return 0;
}

static int recv_msg(int fd, Vmig__CtlMsg **m, char *err, size_t err_len)
{
	int ret = vmig_ctl_recv(fd, m);

	if (ret == 0)
		return fail(-ECONNRESET, err, err_len,
			    "peer closed the connection");
	if (ret < 0)
		return fail(ret, err, err_len, "receive: %s", strerror(-ret));
	return 0;
}

static void send_refusal(int fd, const char *desc)
{
	Vmig__CtlMsg m;
	Vmig__Error e;

	vmig_ctl_error_init(&m, &e, 0, VMIG__ERR_CLASS__ERR_AUTH, 0, desc);
	vmig_ctl_send(fd, &m);
}

int migrd_auth_client(int fd, const struct migrd_key *key, const char *host,
		      char *peer_host, size_t peer_host_len,
		      uint8_t skey[32], char *err, size_t err_len)
{
	uint8_t nc[MIGRD_NONCE_LEN], mac[VMIG_HMAC_LEN], k[32] = { 0 };
	Vmig__CtlMsg out, *in = NULL;
	Vmig__Hello h;
	int ret;

	ret = make_nonce(nc);
	if (ret)
		return fail(ret, err, err_len, "getrandom: %s", strerror(-ret));
	hello_init(&out, &h, host);
	h.has_nonce = 1;
	h.nonce.data = nc;
	h.nonce.len = sizeof(nc);
	ret = vmig_ctl_send(fd, &out);
	if (ret)
		return fail(ret, err, err_len, "send: %s", strerror(-ret));

	ret = recv_msg(fd, &in, err, err_len);
	if (ret)
		return ret;
	ret = check_hello(in, true, true, err, err_len);
	if (ret)
		goto out;
	migrd_auth_mac(key, 'S', nc, in->hello->host, mac);
	if (!vmig_memeq_ct(mac, in->hello->mac.data, sizeof(mac))) {
		send_refusal(fd, "authentication failed");
		ret = fail(-EACCES, err, err_len,
			   "host '%s' failed to prove the cluster key",
			   in->hello->host);
		goto out;
	}
	snprintf(peer_host, peer_host_len, "%s", in->hello->host);
	session_key(key, nc, in->hello->nonce.data, host, in->hello->host, k);

	/* answer the server's challenge */
	hello_init(&out, &h, host);
	migrd_auth_mac(key, 'C', in->hello->nonce.data, host, mac);
	h.has_mac = 1;
	h.mac.data = mac;
	h.mac.len = sizeof(mac);
	ret = vmig_ctl_send(fd, &out);
	if (ret) {
		fail(ret, err, err_len, "send: %s", strerror(-ret));
		goto out;
	}
	vmig_ctl_free(in);
	in = NULL;
	ret = recv_msg(fd, &in, err, err_len);
	if (ret)
		goto out;
	if (in->type == VMIG__CTL_TYPE__CTL_ERROR) {
		ret = fail(-EACCES, err, err_len, "host '%s' refused us: %s",
			   peer_host,
			   in->error && in->error->desc ? in->error->desc :
							  "no reason");
	} else if (in->type != VMIG__CTL_TYPE__CTL_OK) {
		ret = fail(-EPROTO, err, err_len, "expected OK, got %s",
			   vmig_ctl_type_name(in->type));
	} else if (skey) {
		memcpy(skey, k, sizeof(k));
	}
out:
	vmig_ctl_free(in);
	explicit_bzero(mac, sizeof(mac));
	explicit_bzero(k, sizeof(k));
	return ret;
}

int migrd_auth_server(int fd, const struct migrd_key *key, const char *host,
		      const Vmig__CtlMsg *hello, char *peer_host,
		      size_t peer_host_len, uint8_t skey[32], char *err,
		      size_t err_len)
{
	uint8_t ns[MIGRD_NONCE_LEN], mac[VMIG_HMAC_LEN];
	char client[MIGRD_NAME_MAX];
	Vmig__CtlMsg out, *in = NULL;
	Vmig__Hello h;
	int ret;

	ret = check_hello(hello, true, false, err, err_len);
	if (ret) {
		send_refusal(fd, err);
		return ret;
	}
	snprintf(client, sizeof(client), "%s", hello->hello->host);
	ret = make_nonce(ns);
	if (ret)
		return fail(ret, err, err_len, "getrandom: %s", strerror(-ret));
	migrd_auth_mac(key, 'S', hello->hello->nonce.data, host, mac);
	hello_init(&out, &h, host);
	h.has_nonce = 1;
	h.nonce.data = ns;
	h.nonce.len = sizeof(ns);
	h.has_mac = 1;
	h.mac.data = mac;
	h.mac.len = sizeof(mac);
	ret = vmig_ctl_send(fd, &out);
	if (ret)
		return fail(ret, err, err_len, "send: %s", strerror(-ret));

	ret = recv_msg(fd, &in, err, err_len);
	if (ret)
		return ret;
	ret = check_hello(in, false, true, err, err_len);
	if (ret) {
		send_refusal(fd, "authentication failed");
		goto out;
	}
	migrd_auth_mac(key, 'C', ns, client, mac);
	if (!vmig_memeq_ct(mac, in->hello->mac.data, sizeof(mac))) {
		/* the client learns only that it failed, not why */
		send_refusal(fd, "authentication failed");
		ret = fail(-EACCES, err, err_len,
			   "peer claiming to be '%s' failed to prove the cluster key",
			   client);
		goto out;
	}
	vmig__ctl_msg__init(&out);
	out.has_type = 1;
	out.type = VMIG__CTL_TYPE__CTL_OK;
	ret = vmig_ctl_send(fd, &out);
	if (ret) {
		fail(ret, err, err_len, "send: %s", strerror(-ret));
		goto out;
	}
	snprintf(peer_host, peer_host_len, "%s", client);
	if (skey)
		session_key(key, hello->hello->nonce.data, ns, client, host,
			    skey);
out:
	vmig_ctl_free(in);
	explicit_bzero(mac, sizeof(mac));
	return ret;
}
