/* SPDX-License-Identifier: MIT */
/*
 * The vmig stream framing, used for every control message and every image:
 *
 *   stream header (16 bytes, once):  magic "VMIG", u16 version, u16 kind,
 *                                    u32 flags, u32 header crc32c
 *   record (repeated):               u32 length, u16 type, u16 flags,
 *                                    u32 crc32c of the payload, payload
 *
 * All integers little-endian. Readers enforce a hard maximum record size
 * before allocating. Functions return 0 (or a positive count) on success and
 * a negative errno on failure:
 *   -EPROTO           bad magic or header checksum
 *   -EPROTONOSUPPORT  newer stream version than this reader knows
 *   -EMSGSIZE         record longer than the limit
 *   -EBADMSG          payload checksum mismatch or bad record flags
 *   -ENODATA          input ended inside a header or record (truncated)
 */
#ifndef VMIG_RECORD_H
#define VMIG_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMIG_STREAM_MAGIC 0x47494d56u /* "VMIG" read as little-endian */
#define VMIG_STREAM_VERSION 1
#define VMIG_STREAM_HDR_LEN 16
#define VMIG_RECORD_HDR_LEN 12
/* Hard limits: control messages are small, images may carry many QPs. */
#define VMIG_RECORD_MAX_CTL (4u << 20)
#define VMIG_RECORD_MAX_IMAGE (256u << 20)

enum vmig_stream_kind {
	VMIG_STREAM_CTL = 1,	/* control channel, CtlMsg records */
	VMIG_STREAM_IMAGE = 2,	/* verbs state image file, VerbsImage */
	VMIG_STREAM_XFER = 3,	/* migration data between hosts */
};

struct vmig_record {
	uint16_t type;
	uint16_t flags;
	uint32_t len;
	uint8_t *data;	/* malloc'ed, owned by the caller */
};

uint32_t vmig_crc32c(uint32_t crc, const void *buf, size_t len);

int vmig_stream_write_header(int fd, enum vmig_stream_kind kind);
/* kind: the kind expected, checked (-EPROTO on mismatch). */
int vmig_stream_read_header(int fd, enum vmig_stream_kind kind);

int vmig_record_write(int fd, uint16_t type, const void *buf, size_t len);
/*
 * Reads one record. Returns 1 with *rec filled, 0 on a clean end of stream
 * (no byte of a new record read), negative errno otherwise (*rec untouched).
 */
int vmig_record_read(int fd, size_t max_len, struct vmig_record *rec);
void vmig_record_dispose(struct vmig_record *rec);

/* Full read/write, retrying EINTR and short transfers. */
int vmig_write_full(int fd, const void *buf, size_t len);
/* Returns bytes read: less than len only at end of input. */
ssize_t vmig_read_full(int fd, void *buf, size_t len);

#endif
