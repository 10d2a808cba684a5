/* SPDX-License-Identifier: MIT */
/*
 * Protobuf records on top of the stream framing: control messages on a
 * channel and verbs images on disk. Same return conventions as record.h;
 * a record that does not decode as the expected message gives -EBADMSG.
 */
#ifndef VMIG_MSG_H
#define VMIG_MSG_H

#include <protobuf-c/protobuf-c.h>

#include "ctl.pb-c.h"
#include "record.h"
#include "verbs_image.pb-c.h"

enum vmig_record_type {
	VMIG_REC_CTL = 1,	/* Vmig__CtlMsg */
	VMIG_REC_IMAGE = 2,	/* Vmig__VerbsImage */
};

int vmig_msg_write(int fd, uint16_t type, const ProtobufCMessage *msg);
/* Returns 1 with *out set, 0 at a clean end of stream, negative errno. */
int vmig_msg_read(int fd, uint16_t type, size_t max_len,
		  const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* A control channel: stream header each way, then CtlMsg records. */
int vmig_ctl_send_header(int fd);
int vmig_ctl_recv_header(int fd);
int vmig_ctl_send(int fd, const Vmig__CtlMsg *msg);
int vmig_ctl_recv(int fd, Vmig__CtlMsg **out);
void vmig_ctl_free(Vmig__CtlMsg *msg);
/* Fills an error reply for request seq (strings are copied, free with
 * vmig_ctl_error_dispose). */
void vmig_ctl_error_init(Vmig__CtlMsg *reply, Vmig__Error *err, uint32_t seq,
			 Vmig__ErrClass cls, int err_no, const char *desc);
const char *vmig_ctl_type_name(Vmig__CtlType type);
const char *vmig_err_class_name(Vmig__ErrClass cls);

/* Verbs image files, written atomically (temp file + rename). */
int vmig_image_save(const char *path, const Vmig__VerbsImage *img);
int vmig_image_load(const char *path, Vmig__VerbsImage **out);
void vmig_image_free(Vmig__VerbsImage *img);

#endif
