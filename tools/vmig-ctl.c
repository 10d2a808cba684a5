// SPDX-License-Identifier: MIT
/*
 * vmig-ctl PID COMMAND [options]: drives one process's verbs shim.
 *   state                 endpoints, virtual and physical, and their peers
 *   suspend [--timeout MS]  hold posts and drain (exit 3 on drain timeout)
 *   resume | abort | capture | teardown | restore [--device DEV]
 *   cycle [--count N] [--timeout MS] [--device DEV] [-v]
 *                         suspend both ends, teardown, restore on this host,
 *                         reconnect, resume; each step with its time
 * Test helpers (bad input, must be refused): bad-version, garbage, bad-type.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "vmig-ctl: "
#include "ctl_client.h"
#include "log.h"
#include "record.h"
#include "sock.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: vmig-ctl PID state|suspend|resume|abort|capture|"
		"teardown|restore|cycle\n"
		"                [--timeout MS] [--device DEV] [--count N] [-v]\n"
		"       vmig-ctl PID bad-version|garbage|bad-type\n");
	exit(2);
}

static int exit_of(int ret)
{
	return !ret ? 0 : ret == -ETIMEDOUT ? 3 : 1;
}

static int simple(struct vctl_chan *c, Vmig__CtlType t, uint32_t tmo,
		  const char *dev)
{
	Vmig__CtlMsg m, *r = NULL;
	Vmig__Suspend s;
	Vmig__Restore rs;
	size_t i;
	int ret;

	vmig__ctl_msg__init(&m);
	m.has_type = 1;
	m.type = t;
	if (t == VMIG__CTL_TYPE__CTL_SUSPEND) {
		vmig__suspend__init(&s);
		s.has_drain_timeout_ms = 1;
		s.drain_timeout_ms = tmo;
		m.suspend = &s;
	} else if (t == VMIG__CTL_TYPE__CTL_RESTORE) {
		vmig__restore__init(&rs);
		rs.device = (char *)(dev ? dev : "");
		m.restore = &rs;
	}
	ret = vctl_do(c, &m, &r);
	if (!ret) {
		printf("%s: %s\n", vmig_ctl_type_name(t),
		       vmig_ctl_type_name(r->type));
		if (r->state)
			vctl_print_state(r->state);
		if (r->drained)
			printf("  drained %u qps in %llu us, %u posts held\n",
			       r->drained->qps,
			       (unsigned long long)r->drained->drain_us,
			       r->drained->held_posts);
		if (r->image)
			printf("  image: %zu devices %zu pds %zu mrs %zu cqs "
			       "%zu srqs %zu qps %zu ahs\n",
			       r->image->n_devices, r->image->n_pds,
			       r->image->n_mrs, r->image->n_cqs,
			       r->image->n_srqs, r->image->n_qps,
			       r->image->n_ahs);
		for (i = 0; i < r->n_times; i++)
			printf("  %-12s %llu\n", r->times[i]->step,
			       (unsigned long long)r->times[i]->usec);
	}
	vmig_ctl_free(r);
	return ret;
}

/* Bad input on a raw connection: must get an ERROR reply. */
static int bad_input(uint32_t pid, const char *what)
{
	char path[300];
	Vmig__CtlMsg m, *r = NULL;
	Vmig__Hello h;
	int fd, ret;

	fd = vctl_shim_path(pid, path, sizeof(path));
	if (fd)
		return fd;
	fd = vmig_unix_connect(path);
	if (fd < 0)
		return fd;
	vmig_sock_set_timeout(fd, 10000);
	vmig_ctl_send_header(fd);
	if (vmig_ctl_recv_header(fd)) {
		close(fd);
		return -EPROTO;
	}
	vmig__ctl_msg__init(&m);
	vmig__hello__init(&h);
	m.has_type = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.hello = &h;
	h.has_version = h.has_role = 1;
	h.role = VMIG__ROLE__ROLE_TOOL;
	h.version = !strcmp(what, "bad-version") ? 99 :
		VMIG__CTL_VERSION__CTL_VERSION_CURRENT;
	vmig_ctl_send(fd, &m);
	ret = vmig_ctl_recv(fd, &r);
	if (ret != 1) {
		close(fd);
		return -EPROTO;
	}
	if (!strcmp(what, "bad-version"))
		goto check;
	vmig_ctl_free(r);
	r = NULL;
	if (!strcmp(what, "garbage")) {
		static const char junk[] = "\x01\x02this is not protobuf\xff\xff";

		vmig_record_write(fd, VMIG_REC_CTL, junk, sizeof(junk));
	} else {
		vmig__ctl_msg__init(&m);
		m.has_type = 1;
		m.type = (Vmig__CtlType)77;
		vmig_ctl_send(fd, &m);
	}
	if (vmig_ctl_recv(fd, &r) != 1) {
		close(fd);
		return -EPROTO;
	}
check:
	close(fd);
	printf("%s: %s %s: %s\n", what, vmig_ctl_type_name(r->type),
	       r->error ? vmig_err_class_name(r->error->class_) : "",
	       r->error && r->error->desc ? r->error->desc : "");
	ret = r->type == VMIG__CTL_TYPE__CTL_ERROR ? 0 : -EPROTO;
	vmig_ctl_free(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct vctl_cycle_opts o = { .drain_timeout_ms = 30000 };
	struct vctl_chan c;
	const char *cmd;
	unsigned long pid;
	long count = 1, i;
	char *end;
	int ret, a;

	vmig_log_init("vmig-ctl");
	if (argc < 3)
		usage();
	pid = strtoul(argv[1], &end, 10);
	if (*end || !pid)
		usage();
	cmd = argv[2];
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "--timeout") && a + 1 < argc)
			o.drain_timeout_ms = (uint32_t)strtoul(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--device") && a + 1 < argc)
			o.device = argv[++a];
		else if (!strcmp(argv[a], "--count") && a + 1 < argc)
			count = strtol(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "-v"))
			o.verbose = true;
		else
			usage();
	}
	if (!strcmp(cmd, "bad-version") || !strcmp(cmd, "garbage") ||
	    !strcmp(cmd, "bad-type")) {
		ret = bad_input((uint32_t)pid, cmd);
		return exit_of(ret);
	}
	ret = vctl_open_shim(&c, (uint32_t)pid);
	if (ret) {
		fprintf(stderr, "vmig-ctl: no shim at pid %lu: %s\n", pid,
			strerror(-ret));
		return 1;
	}
	if (!strcmp(cmd, "state"))
		ret = simple(&c, VMIG__CTL_TYPE__CTL_STATE, 0, NULL);
	else if (!strcmp(cmd, "suspend"))
		ret = simple(&c, VMIG__CTL_TYPE__CTL_SUSPEND,
			     o.drain_timeout_ms, NULL);
	else if (!strcmp(cmd, "resume"))
		ret = simple(&c, VMIG__CTL_TYPE__CTL_RESUME, 0, NULL);
	else if (!strcmp(cmd, "abort"))
		ret = simple(&c, VMIG__CTL_TYPE__CTL_ABORT, 0, NULL);
	else if (!strcmp(cmd, "capture"))
		ret = simple(&c, VMIG__CTL_TYPE__CTL_CAPTURE, 0, NULL);
	else if (!strcmp(cmd, "teardown"))
		ret = simple(&c, VMIG__CTL_TYPE__CTL_TEARDOWN, 0, NULL);
	else if (!strcmp(cmd, "restore"))
		ret = simple(&c, VMIG__CTL_TYPE__CTL_RESTORE, 0, o.device);
	else if (!strcmp(cmd, "cycle"))
		for (i = 0, ret = 0; !ret && i < count; i++) {
			if (count > 1)
				printf("cycle %ld/%ld\n", i + 1, count);
			ret = vctl_cycle(&c, &o);
		}
	else
		usage();
	vctl_close(&c);
	return exit_of(ret);
}
