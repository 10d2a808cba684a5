// SPDX-License-Identifier: MIT
/* Protobuf control messages and images: field by field, and bad input. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "tap.h"

static void test_ctl_round_trip(void)
{
	Vmig__CtlMsg msg = VMIG__CTL_MSG__INIT, *got = NULL;
	Vmig__Hello hello = VMIG__HELLO__INIT;
	Vmig__Suspend sus = VMIG__SUSPEND__INIT;
	Vmig__ConnFilter filter = VMIG__CONN_FILTER__INIT;
	Vmig__Endpoint ep = VMIG__ENDPOINT__INIT, *eps[1] = { &ep };
	uint8_t gid[16] = { [10] = 0xff, [11] = 0xff, 10, 77, 0, 1 };
	int sv[2];

	msg.has_seq = 1;
	msg.seq = 42;
	msg.has_type = 1;
	msg.type = VMIG__CTL_TYPE__CTL_SUSPEND;
	hello.has_version = 1;
	hello.version = VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	hello.has_role = 1;
	hello.role = VMIG__ROLE__ROLE_SHIM;
	hello.has_pid = 1;
	hello.pid = 1234;
	hello.guest = "web1";
	msg.hello = &hello;
	ep.has_virt_qpn = 1;
	ep.virt_qpn = 0x11;
	ep.has_virt_gid = 1;
	ep.virt_gid.len = 16;
	ep.virt_gid.data = gid;
	filter.n_remote = 1;
	filter.remote = eps;
	sus.filter = &filter;
	sus.has_drain_timeout_ms = 1;
	sus.drain_timeout_ms = 5000;
	msg.suspend = &sus;

	ok(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	is_int(vmig_ctl_send_header(sv[0]), 0, "send header");
	is_int(vmig_ctl_send(sv[0], &msg), 0, "send message");
	close(sv[0]);
	is_int(vmig_ctl_recv_header(sv[1]), 0, "receive header");
	is_int(vmig_ctl_recv(sv[1], &got), 1, "receive message");
	if (!got)
		return;
	ok(got->has_seq && got->seq == 42, "seq");
	ok(got->has_type && got->type == VMIG__CTL_TYPE__CTL_SUSPEND, "type");
	ok(got->hello && got->hello->version == 1, "hello.version");
	ok(got->hello && got->hello->role == VMIG__ROLE__ROLE_SHIM,
	   "hello.role");
	ok(got->hello && got->hello->pid == 1234, "hello.pid");
	is_str(got->hello ? got->hello->guest : NULL, "web1", "hello.guest");
	ok(got->hello && !got->hello->host, "absent string stays absent");
	ok(got->suspend && got->suspend->drain_timeout_ms == 5000,
	   "suspend.drain_timeout_ms");
	ok(got->suspend && got->suspend->filter &&
	   got->suspend->filter->n_remote == 1 &&
	   got->suspend->filter->remote[0]->virt_qpn == 0x11,
	   "filter endpoint qpn");
	ok(got->suspend && got->suspend->filter->remote[0]->virt_gid.len == 16 &&
	   !memcmp(got->suspend->filter->remote[0]->virt_gid.data, gid, 16),
	   "filter endpoint gid");
	ok(!got->error && !got->image, "absent submessages stay absent");
	is_str(vmig_ctl_type_name(got->type), "CTL_SUSPEND", "type name");
	vmig_ctl_free(got);
	got = NULL;
	is_int(vmig_ctl_recv(sv[1], &got), 0, "end of channel");
	close(sv[1]);
}

static void test_ctl_garbage(void)
{
	Vmig__CtlMsg *got = NULL;
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	/* A valid record whose payload is not a CtlMsg. */
	vmig_record_write(sv[0], VMIG_REC_CTL, "\xff\xff\xff\xff\xff", 5);
	/* A record of the wrong type. */
	vmig_record_write(sv[0], VMIG_REC_IMAGE, "", 0);
	/* Raw garbage where a header is expected. */
	vmig_write_full(sv[0], "GET / HTTP/1.0\r\n\r\n", 18);
	close(sv[0]);
	is_int(vmig_ctl_recv(sv[1], &got), -EBADMSG, "undecodable payload");
	is_int(vmig_ctl_recv(sv[1], &got), -EBADMSG, "wrong record type");
	ok(vmig_ctl_recv_header(sv[1]) == -EPROTO, "garbage header rejected");
	ok(got == NULL, "nothing returned on errors");
	close(sv[1]);
}

static void test_error_reply(void)
{
	Vmig__CtlMsg reply, *got = NULL;
	Vmig__Error err;
	int sv[2];

	vmig_ctl_error_init(&reply, &err, 9, VMIG__ERR_CLASS__ERR_BAD_STATE,
			    EBUSY, "not suspended");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	vmig_ctl_send(sv[0], &reply);
	is_int(vmig_ctl_recv(sv[1], &got), 1, "error reply received");
	ok(got && got->type == VMIG__CTL_TYPE__CTL_ERROR && got->seq == 9,
	   "error reply type and seq");
	ok(got && got->error && got->error->class_ ==
	   VMIG__ERR_CLASS__ERR_BAD_STATE, "error class");
	ok(got && got->error && got->error->err_no == EBUSY, "error errno");
	is_str(got && got->error ? got->error->desc : NULL, "not suspended",
	       "error desc");
	is_str(vmig_err_class_name(VMIG__ERR_CLASS__ERR_TIMEOUT), "ERR_TIMEOUT",
	       "error class name");
	vmig_ctl_free(got);
	close(sv[0]);
	close(sv[1]);
}

static void test_image_file(void)
{
	char dir[] = "/tmp/vmig-test-XXXXXX", path[64];
	Vmig__VerbsImage img = VMIG__VERBS_IMAGE__INIT, *got = NULL;
	Vmig__MrImage mr = VMIG__MR_IMAGE__INIT, *mrs[1] = { &mr };
	Vmig__QpImage qp = VMIG__QP_IMAGE__INIT, *qps[1] = { &qp };
	Vmig__RecvWrImage rwr = VMIG__RECV_WR_IMAGE__INIT, *rwrs[1] = { &rwr };
	Vmig__SgeImage sge = VMIG__SGE_IMAGE__INIT, *sges[1] = { &sge };
	Vmig__HandleMap map = VMIG__HANDLE_MAP__INIT, *maps[1] = { &map };
	FILE *f;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/img", dir);
	img.has_version = 1;
	img.version = 1;
	img.guest = "g";
	mr.has_addr = 1;
	mr.addr = 0x7f0000001000ull;
	mr.has_length = 1;
	mr.length = 1 << 20;
	mr.has_access = 1;
	mr.access = 0xf;
	mr.has_virt_rkey = 1;
	mr.virt_rkey = 0x1234;
	img.n_mrs = 1;
	img.mrs = mrs;
	qp.has_virt_qpn = 1;
	qp.virt_qpn = 17;
	qp.has_qp_type = 1;
	qp.qp_type = 2;
	sge.has_addr = 1;
	sge.addr = 0x1000;
	sge.has_length = 1;
	sge.length = 64;
	sge.has_virt_lkey = 1;
	sge.virt_lkey = 0x1234;
	rwr.has_wr_id = 1;
	rwr.wr_id = 99;
	rwr.n_sg = 1;
	rwr.sg = sges;
	qp.n_posted_recv = 1;
	qp.posted_recv = rwrs;
	img.n_qps = 1;
	img.qps = qps;
	map.has_virt = map.has_phys = 1;
	map.virt = 17;
	map.phys = 33;
	img.n_qpn_map = 1;
	img.qpn_map = maps;

	is_int(vmig_image_save(path, &img), 0, "image saved");
	is_int(vmig_image_load(path, &got), 0, "image loaded");
	if (got) {
		is_str(got->guest, "g", "guest");
		ok(got->n_mrs == 1 && got->mrs[0]->addr == mr.addr &&
		   got->mrs[0]->length == mr.length &&
		   got->mrs[0]->access == 0xf &&
		   got->mrs[0]->virt_rkey == 0x1234, "mr fields");
		ok(got->n_qps == 1 && got->qps[0]->virt_qpn == 17 &&
		   got->qps[0]->qp_type == 2, "qp fields");
		ok(got->qps[0]->n_posted_recv == 1 &&
		   got->qps[0]->posted_recv[0]->wr_id == 99 &&
		   got->qps[0]->posted_recv[0]->sg[0]->length == 64,
		   "posted receives");
		ok(got->n_qpn_map == 1 && got->qpn_map[0]->phys == 33,
		   "qpn map");
		vmig_image_free(got);
	}

	/* Truncate the file by one byte: the loader must refuse it. */
	f = fopen(path, "r+");
	fseek(f, 0, SEEK_END);
	if (ftruncate(fileno(f), ftell(f) - 1))
		abort();
	fclose(f);
	got = NULL;
	is_int(vmig_image_load(path, &got), -ENODATA, "truncated image");
	ok(got == NULL, "nothing returned for a truncated image");

	f = fopen(path, "w");
	fputs("not an image at all", f);
	fclose(f);
	is_int(vmig_image_load(path, &got), -EPROTO, "garbage image");

	is_int(vmig_image_load("/nonexistent/img", &got), -ENOENT,
	       "missing image file");
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_ctl_round_trip();
	test_ctl_garbage();
	test_error_reply();
	test_image_file();
	return tap_done();
}
