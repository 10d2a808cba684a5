// SPDX-License-Identifier: MIT
/* Sealed control records between migrd (session.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "migrd: session: "
#include "hmac.h"
#include "log.h"
#include "session.h"

void migrd_sess_init(struct migrd_sess *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
}

void migrd_sess_seal(struct migrd_sess *s, char side, const uint8_t key[32])
{
	s->sealed = true;
	s->side = side;
	memcpy(s->key, key, sizeof(s->key));
	s->tx = s->rx = 0;
}

static void seal_mac(const struct migrd_sess *s, char side, uint64_t ctr,
		     const uint8_t *msg, size_t len, uint8_t mac[32])
{
	struct vmig_hmac h;
	uint8_t c[8];
	int i;

	for (i = 0; i < 8; i++)
		c[i] = (uint8_t)(ctr >> (8 * i));
	vmig_hmac_init(&h, s->key, sizeof(s->key));
	vmig_hmac_update(&h, &side, 1);
	vmig_hmac_update(&h, c, sizeof(c));
	vmig_hmac_update(&h, msg, len);
	vmig_hmac_final(&h, mac);
}

int migrd_sess_send(struct migrd_sess *s, const Vmig__CtlMsg *m)
{
	size_t len;
	uint8_t *buf;
	int ret;

	if (!s->sealed)
		return vmig_ctl_send(s->fd, m);
	len = vmig__ctl_msg__get_packed_size(m);
	if (len > VMIG_RECORD_MAX_CTL - 32)
		return -EMSGSIZE;
	buf = malloc(32 + len);
	if (!buf)
		return -ENOMEM;
	vmig__ctl_msg__pack(m, buf + 32);
	seal_mac(s, s->side, s->tx, buf + 32, len, buf);
	ret = vmig_record_write(s->fd, MIGRD_REC_SEALED, buf, 32 + len);
	free(buf);
	if (!ret)
		s->tx++;
	return ret;
}

int migrd_sess_recv(struct migrd_sess *s, Vmig__CtlMsg **m)
{
	struct vmig_record rec = { 0 };
	uint8_t mac[32];
	Vmig__CtlMsg *msg;
	int ret;

	if (!s->sealed)
		return vmig_ctl_recv(s->fd, m);
	ret = vmig_record_read(s->fd, VMIG_RECORD_MAX_CTL, &rec);
	if (ret <= 0)
		return ret;
	if (rec.type != MIGRD_REC_SEALED || rec.len < 32) {
		pr_warn("unsealed record (type %u) on a sealed session",
			rec.type);
		vmig_record_dispose(&rec);
		return -EBADMSG;
	}
	/* what the other end sends is under its side byte */
	seal_mac(s, s->side == 'C' ? 'S' : 'C', s->rx, rec.data + 32,
		 rec.len - 32, mac);
	if (!vmig_memeq_ct(mac, rec.data, sizeof(mac))) {
		pr_warn("record %llu fails its MAC: changed, replayed or out of order",
			(unsigned long long)s->rx);
		vmig_record_dispose(&rec);
		return -EBADMSG;
	}
	msg = vmig__ctl_msg__unpack(NULL, rec.len - 32, rec.data + 32);
	vmig_record_dispose(&rec);
	if (!msg)
		return -EBADMSG;
	s->rx++;
	*m = msg;
	return 1;
}

void migrd_sess_close(struct migrd_sess *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	explicit_bzero(s->key, sizeof(s->key));
	s->sealed = false;
}
