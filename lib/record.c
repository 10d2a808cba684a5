// SPDX-License-Identifier: MIT
/* Stream header and length-prefixed records; see record.h for the format. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "record: "
#include "log.h"
#include "record.h"

static void put_u16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put_u32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t get_u16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

int vmig_write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

ssize_t vmig_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

int vmig_stream_write_header(int fd, enum vmig_stream_kind kind)
{
	uint8_t hdr[VMIG_STREAM_HDR_LEN];

	put_u32(hdr, VMIG_STREAM_MAGIC);
	put_u16(hdr + 4, VMIG_STREAM_VERSION);
	put_u16(hdr + 6, kind);
	put_u32(hdr + 8, 0);
	put_u32(hdr + 12, vmig_crc32c(0, hdr, 12));
	return vmig_write_full(fd, hdr, sizeof(hdr));
}

int vmig_stream_read_header(int fd, enum vmig_stream_kind kind)
{
	uint8_t hdr[VMIG_STREAM_HDR_LEN];
	ssize_t n = vmig_read_full(fd, hdr, sizeof(hdr));
	uint16_t version;

	if (n < 0)
		return n;
	if (n < (ssize_t)sizeof(hdr)) {
		pr_warn("stream header truncated (%zd of %d bytes)", n,
			VMIG_STREAM_HDR_LEN);
		return -ENODATA;
	}
	if (get_u32(hdr) != VMIG_STREAM_MAGIC ||
	    get_u32(hdr + 12) != vmig_crc32c(0, hdr, 12)) {
		pr_warn("not a vmig stream (bad magic or header checksum)");
		return -EPROTO;
	}
	version = get_u16(hdr + 4);
	if (version == 0 || version > VMIG_STREAM_VERSION) {
		pr_warn("stream version %u not supported (this reader knows %u)",
			version, VMIG_STREAM_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (get_u16(hdr + 6) != kind) {
		pr_warn("stream kind %u, expected %u", get_u16(hdr + 6), kind);
		return -EPROTO;
	}
	return 0;
}

int vmig_record_write(int fd, uint16_t type, const void *buf, size_t len)
{
	uint8_t hdr[VMIG_RECORD_HDR_LEN];
	int ret;

	if (len > VMIG_RECORD_MAX_IMAGE)
		return -EMSGSIZE;
	put_u32(hdr, len);
	put_u16(hdr + 4, type);
	put_u16(hdr + 6, 0);
	put_u32(hdr + 8, vmig_crc32c(0, buf, len));
	ret = vmig_write_full(fd, hdr, sizeof(hdr));
	if (!ret && len)
		ret = vmig_write_full(fd, buf, len);
	return ret;
}

int vmig_record_read(int fd, size_t max_len, struct vmig_record *rec)
{
	uint8_t hdr[VMIG_RECORD_HDR_LEN];
	uint32_t len;
	uint8_t *data;
	ssize_t n;

	n = vmig_read_full(fd, hdr, sizeof(hdr));
	if (n < 0)
		return n;
	if (n == 0)
		return 0;
	if (n < (ssize_t)sizeof(hdr)) {
		pr_warn("record header truncated (%zd of %d bytes)", n,
			VMIG_RECORD_HDR_LEN);
		return -ENODATA;
	}
	len = get_u32(hdr);
	if (len > max_len) {
		pr_warn("record of %u bytes exceeds the limit of %zu", len,
			max_len);
		return -EMSGSIZE;
	}
	if (get_u16(hdr + 6) != 0) {
		pr_warn("record flags 0x%x unknown", get_u16(hdr + 6));
		return -EBADMSG;
	}
	data = malloc(len ? len : 1);
	if (!data)
		return -ENOMEM;
	n = vmig_read_full(fd, data, len);
	if (n < 0 || (size_t)n < len) {
		free(data);
		if (n < 0)
			return n;
		pr_warn("record truncated (%zd of %u bytes)", n, len);
		return -ENODATA;
	}
	if (vmig_crc32c(0, data, len) != get_u32(hdr + 8)) {
		free(data);
		pr_warn("record checksum mismatch");
		return -EBADMSG;
	}
	rec->type = get_u16(hdr + 4);
	rec->flags = 0;
	rec->len = len;
	rec->data = data;
	return 1;
}

void vmig_record_dispose(struct vmig_record *rec)
{
	if (!rec)
		return;
	free(rec->data);
	rec->data = NULL;
	rec->len = 0;
}
