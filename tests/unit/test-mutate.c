// SPDX-License-Identifier: MIT
/*
 * Mutation test of the readers: valid control streams and images with bytes
 * flipped, cut short or extended at random must give a message or a
 * negative errno, never a crash or a leak (run under valgrind and ASan by
 * the valgrind and asan suites). Seeded, so failures reproduce.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "msg.h"
#include "tap.h"

#define ROUNDS 3000

static size_t build_stream(unsigned char *buf, size_t cap)
{
	Vmig__CtlMsg msg = VMIG__CTL_MSG__INIT;
	Vmig__Hello hello = VMIG__HELLO__INIT;
	Vmig__State st = VMIG__STATE__INIT;
	int fd = memfd_create("s", MFD_CLOEXEC);
	ssize_t n;

	msg.has_type = 1;
	msg.type = VMIG__CTL_TYPE__CTL_HELLO;
	hello.has_version = 1;
	hello.version = 1;
	hello.guest = "guest-with-a-name";
	msg.hello = &hello;
	vmig_ctl_send_header(fd);
	vmig_ctl_send(fd, &msg);
	msg.type = VMIG__CTL_TYPE__CTL_STATE;
	msg.hello = NULL;
	st.phase = "running";
	st.has_num_qps = 1;
	st.num_qps = 3;
	msg.state = &st;
	vmig_ctl_send(fd, &msg);
	lseek(fd, 0, SEEK_SET);
	n = vmig_read_full(fd, buf, cap);
	close(fd);
	return n > 0 ? n : 0;
}

/* Reads a whole stream; returns how many messages decoded. */
static int read_stream(const unsigned char *buf, size_t len, int *err)
{
	int fd = memfd_create("m", MFD_CLOEXEC), count = 0, ret;
	Vmig__CtlMsg *m;

	vmig_write_full(fd, buf, len);
	lseek(fd, 0, SEEK_SET);
	ret = vmig_ctl_recv_header(fd);
	while (!ret) {
		m = NULL;
		ret = vmig_ctl_recv(fd, &m);
		if (ret <= 0)
			break;
		count++;
		vmig_ctl_free(m);
		ret = 0;
	}
	close(fd);
	*err = ret;
	return count;
}

int main(void)
{
	unsigned char good[512], buf[1024];
	size_t len = build_stream(good, sizeof(good));
	int err, count, bad_errno = 0, crashes_avoided = 0;

	srandom(12345);
	count = read_stream(good, len, &err);
	is_int(count, 2, "valid stream decodes both messages");
	is_int(err, 0, "valid stream ends cleanly");

	for (int i = 0; i < ROUNDS; i++) {
		size_t n = len;

		memcpy(buf, good, len);
		switch (random() % 3) {
		case 0: /* flip 1..4 bytes */
			for (int k = 1 + random() % 4; k; k--)
				buf[random() % n] ^= 1 + random() % 255;
			break;
		case 1: /* cut short */
			n = random() % len;
			break;
		default: /* trailing garbage */
			for (int k = 1 + random() % 40; k; k--)
				buf[n++] = random();
			break;
		}
		count = read_stream(buf, n, &err);
		if (err > 0 || (err < 0 && err != -EPROTO && err != -ENODATA &&
				err != -EBADMSG && err != -EMSGSIZE &&
				err != -EPROTONOSUPPORT))
			bad_errno++;
		crashes_avoided++;
	}
	is_int(crashes_avoided, ROUNDS, "%d mutated streams read", ROUNDS);
	is_int(bad_errno, 0, "every failure is one of the documented errnos");
	return tap_done();
}
