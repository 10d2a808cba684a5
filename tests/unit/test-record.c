// SPDX-License-Identifier: MIT
/* Stream framing: round trips and every kind of bad input. */
#include <errno.h>
#include <stdlib.h>
#include <endian.h>
#include <sys/mman.h>
#include <unistd.h>

#include "record.h"
#include "tap.h"

/* A memfd holding buf, positioned at its start. */
static int mkfd(const void *buf, size_t len)
{
	int fd = memfd_create("rec", MFD_CLOEXEC);

	if (fd < 0 || vmig_write_full(fd, buf, len) ||
	    lseek(fd, 0, SEEK_SET) < 0)
		abort();
	return fd;
}

/* Reads back everything written to fd so far. */
static size_t slurp(int fd, unsigned char *buf, size_t cap)
{
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	n = vmig_read_full(fd, buf, cap);
	if (n < 0)
		abort();
	return n;
}

static void test_round_trip(void)
{
	int fd = memfd_create("rt", MFD_CLOEXEC);
	struct vmig_record rec = { 0 };
	const char *payloads[] = { "", "a", "hello, world" };

	ok(vmig_stream_write_header(fd, VMIG_STREAM_CTL) == 0, "write header");
	for (int i = 0; i < 3; i++)
		ok(vmig_record_write(fd, 7 + i, payloads[i],
				     strlen(payloads[i])) == 0,
		   "write record %d", i);
	lseek(fd, 0, SEEK_SET);
	is_int(vmig_stream_read_header(fd, VMIG_STREAM_CTL), 0, "read header");
	for (int i = 0; i < 3; i++) {
		is_int(vmig_record_read(fd, 1024, &rec), 1, "read record %d", i);
		is_int(rec.type, 7 + i, "record %d type", i);
		is_int(rec.len, strlen(payloads[i]), "record %d length", i);
		ok(!memcmp(rec.data, payloads[i], rec.len), "record %d data", i);
		vmig_record_dispose(&rec);
	}
	is_int(vmig_record_read(fd, 1024, &rec), 0, "clean end of stream");
	ok(rec.data == NULL, "no record on end of stream");
	close(fd);
}

static void test_bad_headers(void)
{
	unsigned char good[64], bad[64];
	int fd = memfd_create("h", MFD_CLOEXEC);
	size_t n;

	vmig_stream_write_header(fd, VMIG_STREAM_IMAGE);
	n = slurp(fd, good, sizeof(good));
	close(fd);
	is_int(n, VMIG_STREAM_HDR_LEN, "header is 16 bytes");

	fd = mkfd(good, 7);
	is_int(vmig_stream_read_header(fd, VMIG_STREAM_IMAGE), -ENODATA,
	       "truncated header rejected");
	close(fd);

	fd = mkfd("", 0);
	is_int(vmig_stream_read_header(fd, VMIG_STREAM_IMAGE), -ENODATA,
	       "empty input rejected");
	close(fd);

	memcpy(bad, good, n);
	bad[0] ^= 0xff;
	fd = mkfd(bad, n);
	is_int(vmig_stream_read_header(fd, VMIG_STREAM_IMAGE), -EPROTO,
	       "bad magic rejected");
	close(fd);

	fd = mkfd(good, n);
	is_int(vmig_stream_read_header(fd, VMIG_STREAM_CTL), -EPROTO,
	       "wrong stream kind rejected");
	close(fd);

	/* A newer version with a valid checksum: a future writer. */
	memcpy(bad, good, n);
	bad[4] = VMIG_STREAM_VERSION + 1;
	{
		uint32_t crc = htole32(vmig_crc32c(0, bad, 12));

		memcpy(bad + 12, &crc, 4);
	}
	fd = mkfd(bad, n);
	is_int(vmig_stream_read_header(fd, VMIG_STREAM_IMAGE),
	       -EPROTONOSUPPORT, "newer version rejected");
	close(fd);

	/* Version bytes changed without fixing the checksum: corruption. */
	memcpy(bad, good, n);
	bad[4] ^= 1;
	fd = mkfd(bad, n);
	is_int(vmig_stream_read_header(fd, VMIG_STREAM_IMAGE), -EPROTO,
	       "header checksum checked");
	close(fd);
}

static void test_bad_records(void)
{
	unsigned char good[256], bad[256];
	struct vmig_record rec = { 0 };
	int fd = memfd_create("r", MFD_CLOEXEC);
	size_t n;

	vmig_record_write(fd, 1, "0123456789", 10);
	n = slurp(fd, good, sizeof(good));
	close(fd);
	is_int(n, VMIG_RECORD_HDR_LEN + 10, "record size");

	fd = mkfd(good, 5);
	is_int(vmig_record_read(fd, 1024, &rec), -ENODATA,
	       "truncated record header rejected");
	close(fd);

	fd = mkfd(good, n - 1);
	is_int(vmig_record_read(fd, 1024, &rec), -ENODATA,
	       "truncated payload rejected");
	close(fd);

	fd = mkfd(good, n);
	is_int(vmig_record_read(fd, 9, &rec), -EMSGSIZE,
	       "record over the limit rejected");
	close(fd);

	/* A huge length must be refused before any allocation. */
	memcpy(bad, good, n);
	bad[0] = bad[1] = bad[2] = bad[3] = 0xff;
	fd = mkfd(bad, n);
	is_int(vmig_record_read(fd, VMIG_RECORD_MAX_IMAGE, &rec), -EMSGSIZE,
	       "4 GiB length rejected");
	close(fd);

	memcpy(bad, good, n);
	bad[VMIG_RECORD_HDR_LEN + 3] ^= 0x10;
	fd = mkfd(bad, n);
	is_int(vmig_record_read(fd, 1024, &rec), -EBADMSG,
	       "corrupt payload rejected");
	close(fd);

	memcpy(bad, good, n);
	bad[6] = 1;
	fd = mkfd(bad, n);
	is_int(vmig_record_read(fd, 1024, &rec), -EBADMSG,
	       "unknown record flags rejected");
	close(fd);
	ok(rec.data == NULL, "no record returned on errors");

	is_int(vmig_record_write(-1, 1, "x", 1), -EBADF,
	       "write error reported as negative errno");
}

static void test_crc(void)
{
	/* The standard CRC-32C check value. */
	is_int(vmig_crc32c(0, "123456789", 9), 0xe3069283u, "crc32c check");
}

int main(void)
{
	test_crc();
	test_round_trip();
	test_bad_headers();
	test_bad_records();
	return tap_done();
}
