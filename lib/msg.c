// SPDX-License-Identifier: MIT
/* Protobuf messages as vmig records: control messages and image files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "msg: "
#include "log.h"
#include "msg.h"

int vmig_msg_write(int fd, uint16_t type, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int ret;

	if (len > VMIG_RECORD_MAX_IMAGE)
		return -EMSGSIZE;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	ret = vmig_record_write(fd, type, buf, len);
	free(buf);
	return ret;
}

int vmig_msg_read(int fd, uint16_t type, size_t max_len,
		  const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	struct vmig_record rec = { 0 };
	ProtobufCMessage *msg;
	int ret;

	ret = vmig_record_read(fd, max_len, &rec);
	if (ret <= 0)
		return ret;
	if (rec.type != type) {
		pr_warn("record type %u, expected %u", rec.type, type);
		vmig_record_dispose(&rec);
		return -EBADMSG;
	}
	msg = protobuf_c_message_unpack(desc, NULL, rec.len, rec.data);
	vmig_record_dispose(&rec);
	if (!msg) {
		pr_warn("record does not decode as %s", desc->name);
		return -EBADMSG;
	}
	*out = msg;
	return 1;
}

int vmig_ctl_send_header(int fd)
{
	return vmig_stream_write_header(fd, VMIG_STREAM_CTL);
}

int vmig_ctl_recv_header(int fd)
{
	return vmig_stream_read_header(fd, VMIG_STREAM_CTL);
}

int vmig_ctl_send(int fd, const Vmig__CtlMsg *msg)
{
	return vmig_msg_write(fd, VMIG_REC_CTL, &msg->base);
}

int vmig_ctl_recv(int fd, Vmig__CtlMsg **out)
{
	return vmig_msg_read(fd, VMIG_REC_CTL, VMIG_RECORD_MAX_CTL,
			     &vmig__ctl_msg__descriptor,
			     (ProtobufCMessage **)out);
}

void vmig_ctl_free(Vmig__CtlMsg *msg)
{
	if (msg)
		vmig__ctl_msg__free_unpacked(msg, NULL);
}

void vmig_ctl_error_init(Vmig__CtlMsg *reply, Vmig__Error *err, uint32_t seq,
			 Vmig__ErrClass cls, int err_no, const char *desc)
{
	vmig__ctl_msg__init(reply);
	vmig__error__init(err);
	reply->has_seq = 1;
	reply->seq = seq;
	reply->has_type = 1;
	reply->type = VMIG__CTL_TYPE__CTL_ERROR;
	err->has_class_ = 1;
	err->class_ = cls;
	err->has_err_no = err_no != 0;
	err->err_no = err_no;
	err->desc = (char *)desc;
	reply->error = err;
}

const char *vmig_ctl_type_name(Vmig__CtlType type)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&vmig__ctl_type__descriptor, type);

	return v ? v->name : "unknown";
}

const char *vmig_err_class_name(Vmig__ErrClass cls)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&vmig__err_class__descriptor, cls);

	return v ? v->name : "unknown";
}

int vmig_image_save(const char *path, const Vmig__VerbsImage *img)
{
	char tmp[PATH_MAX];
	int fd = -1, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = vmig_stream_write_header(fd, VMIG_STREAM_IMAGE);
	if (!ret)
		ret = vmig_msg_write(fd, VMIG_REC_IMAGE, &img->base);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int vmig_image_load(const char *path, Vmig__VerbsImage **out)
{
	Vmig__VerbsImage *img = NULL;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = vmig_stream_read_header(fd, VMIG_STREAM_IMAGE);
	if (!ret) {
		ret = vmig_msg_read(fd, VMIG_REC_IMAGE, VMIG_RECORD_MAX_IMAGE,
				    &vmig__verbs_image__descriptor,
				    (ProtobufCMessage **)&img);
		if (ret == 0)
			ret = -ENODATA; /* header but no image */
		else if (ret > 0)
			ret = 0;
	}
	close(fd);
	if (ret)
		return ret;
	*out = img;
	return 0;
}

void vmig_image_free(Vmig__VerbsImage *img)
{
	if (img)
		vmig__verbs_image__free_unpacked(img, NULL);
}
