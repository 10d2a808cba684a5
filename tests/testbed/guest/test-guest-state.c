// SPDX-License-Identifier: MIT
/*
 * Unit test of the process guests' records (lib/guest_state.c): names,
 * addresses, derived addresses, state files and how bad ones are refused.
 * No namespaces, no root: runs anywhere, under valgrind and ASan too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../unit/tap.h"
#include "guest_priv.h"

static char dir[] = "/tmp/vmig-guest-test.XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/guests/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int count_one(const struct vmig_guest *g, void *arg)
{
	char *names = arg;

	strcat(names, g->name);
	strcat(names, " ");
	return 0;
}

static void test_names(void)
{
	char err[VMIG_GUEST_ERR_LEN];

	ok(!vmig_guest_check_name("g1", err), "g1 is a name");
	ok(!vmig_guest_check_name("web-1", err), "web-1 is a name");
	ok(!vmig_guest_check_name("abcdefghijkl", err), "12 characters are allowed");
	ok(vmig_guest_check_name("abcdefghijklm", err) == -EINVAL &&
		   strstr(err, "1 to 12"), "13 characters are refused: %s", err);
	ok(vmig_guest_check_name("", err) == -EINVAL, "empty name refused");
	ok(vmig_guest_check_name(NULL, err) == -EINVAL, "NULL name refused");
	ok(vmig_guest_check_name("-x", err) == -EINVAL, "leading '-' refused: %s", err);
	ok(vmig_guest_check_name("G1", err) == -EINVAL, "upper case refused");
	ok(vmig_guest_check_name("a/b", err) == -EINVAL, "'/' refused");
	ok(vmig_guest_check_name("../x", err) == -EINVAL, "path tricks refused");
}

static void test_addrs(void)
{
	char err[VMIG_GUEST_ERR_LEN], buf[INET_ADDRSTRLEN];
	struct in_addr a, b;
	unsigned int p;

	ok(!vmig_guest_parse_addr("10.78.1.2", &a, &p, err) && p == 32,
	   "bare address is /32");
	ok(!vmig_guest_parse_addr("192.168.5.9/24", &a, &p, err) && p == 24,
	   "prefix taken");
	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	is_str(buf, "192.168.5.9", "address kept");
	ok(vmig_guest_parse_addr("10.0.0.0/8", &a, &p, err) == -EINVAL,
	   "network address refused: %s", err);
	ok(vmig_guest_parse_addr("10.0.0.255/24", &a, &p, err) == -EINVAL,
	   "broadcast address refused");
	ok(vmig_guest_parse_addr("10.1.2.3/7", &a, &p, err) == -EINVAL,
	   "prefix 7 refused: %s", err);
	ok(vmig_guest_parse_addr("10.1.2.3/33", &a, &p, err) == -EINVAL,
	   "prefix 33 refused");
	ok(vmig_guest_parse_addr("10.1.2.3/", &a, &p, err) == -EINVAL,
	   "empty prefix refused");
	ok(vmig_guest_parse_addr("10.1.2.3/+8", &a, &p, err) == -EINVAL,
	   "signed prefix refused");
	ok(vmig_guest_parse_addr("300.1.2.3", &a, &p, err) == -EINVAL,
	   "bad octet refused: %s", err);
	ok(vmig_guest_parse_addr("127.0.0.2", &a, &p, err) == -EINVAL,
	   "loopback refused");
	ok(vmig_guest_parse_addr("224.0.0.1", &a, &p, err) == -EINVAL,
	   "multicast refused");
	ok(vmig_guest_parse_addr("169.254.78.1", &a, &p, err) == -EINVAL,
	   "link-local (the gateway) refused");
	ok(vmig_guest_parse_addr("10.78.1.2.3.4.5.6.7.8.9", &a, &p, err) == -EINVAL,
	   "too long refused");

	vmig_guest_default_addr("g1", &a);
	vmig_guest_default_addr("g1", &b);
	ok(a.s_addr == b.s_addr, "derived address is stable");
	ok((ntohl(a.s_addr) >> 16) == ((10u << 8) | 78), "derived address in 10.78/16");
	vmig_guest_default_addr("g2", &b);
	ok(a.s_addr != b.s_addr, "g1 and g2 get different addresses");
	for (int i = 0; i < 2000; i++) {
		char name[16];
		uint32_t h;

		snprintf(name, sizeof(name), "n%d", i);
		vmig_guest_default_addr(name, &a);
		h = ntohl(a.s_addr);
		if ((h & 0xff) == 0 || (h & 0xff) == 255 ||
		    ((h >> 8) & 0xff) == 0 || ((h >> 8) & 0xff) == 255) {
			ok(0, "derived address of %s avoids .0 and .255", name);
			return;
		}
	}
	ok(1, "2000 derived addresses avoid .0 and .255");
}

static void test_records(void)
{
	char err[VMIG_GUEST_ERR_LEN], want[600], names[256] = "";
	struct vmig_guest g, l;

	ok(!vmig_guest_init(&g, "g1", NULL, err), "init g1");
	is_str(g.host_veth, "vg-g1", "host veth name");
	snprintf(want, sizeof(want), "%s/guests/g1.log", dir);
	is_str(g.log_path, want, "log under $VMIG_RUN_DIR/guests");
	ok(vmig_guest_init(&g, "g1", "1.2.3", err) == -EINVAL, "init refuses a bad --addr");

	ok(vmig_guest_load("g1", &l, err) == -ENOENT && strstr(err, "no guest 'g1'"),
	   "no record yet: %s", err);
	ok(guest_lock(err) >= 0, "lock creates the run directory");

	ok(!vmig_guest_init(&g, "g1", "10.78.3.4/24", err), "init g1 with an address");
	g.pid = 4242;
	g.start_time = 123456789;
	g.state = VMIG_GUEST_AWAY;
	inet_pton(AF_INET, "10.77.0.2", &g.via);
	ok(!guest_save(&g, err), "save");
	ok(!vmig_guest_load("g1", &l, err), "load: %s", err);
	ok(!memcmp(&g, &l, sizeof(g)) || (!strcmp(g.name, l.name) &&
	   g.addr.s_addr == l.addr.s_addr && g.prefix == l.prefix &&
	   g.pid == l.pid && g.start_time == l.start_time &&
	   g.state == l.state && g.via.s_addr == l.via.s_addr &&
	   !strcmp(g.log_path, l.log_path)), "record round-trips");
	ok(!vmig_guest_alive(&l), "a record with another start time is not alive");
	l.pid = getpid();
	ok(!guest_pid_start_time(getpid(), &l.start_time), "own start time");
	ok(vmig_guest_alive(&l), "our own pid and start time are alive");

	write_file("g2.json", "{\"name\": \"g2\", \"state\": \"running\"}");
	ok(vmig_guest_load("g2", &l, err) == -EINVAL && strstr(err, "missing"),
	   "incomplete record refused: %s", err);
	write_file("g3.json", "{\"name\": \"g3\", \"state\": \"flying\", \"address\": \"10.78.1.1/32\","
		   " \"host-veth\": \"vg-g3\", \"pid\": 1, \"start-time\": 1, \"via\": \"\","
		   " \"log\": \"/x\"}");
	ok(vmig_guest_load("g3", &l, err) == -EINVAL && strstr(err, "flying"),
	   "unknown state refused: %s", err);
	write_file("g4.json", "{\"name\": \"g4\", \"state\": \"running\", \"address\": \"10.78.1.1/32\","
		   " \"host-veth\": \"eth0\", \"pid\": 1, \"start-time\": 1, \"via\": \"\","
		   " \"log\": \"/x\"}");
	ok(vmig_guest_load("g4", &l, err) == -EINVAL && strstr(err, "host-veth"),
	   "foreign veth refused: %s", err);
	write_file("g5.json", "{\"name\": \"g9\", \"state\": \"running\", \"address\": \"10.78.1.1/32\","
		   " \"host-veth\": \"vg-g9\", \"pid\": 1, \"start-time\": 1, \"via\": \"\","
		   " \"log\": \"/x\"}");
	ok(vmig_guest_load("g5", &l, err) == -EINVAL && strstr(err, "holds guest 'g9'"),
	   "record of another guest refused: %s", err);
	write_file("g6.json", "{\"name\": \"g6\", \"state\": \"running\", \"address\": \"10.78.1.1/32\","
		   " \"host-veth\": \"vg-g6\", \"pid\": -5, \"start-time\": 1, \"via\": \"\","
		   " \"log\": \"/x\"}");
	ok(vmig_guest_load("g6", &l, err) == -EINVAL, "negative pid refused: %s", err);
	write_file("g7.json", "{\"name\": \"g7\", \"state\": \"running\", \"address\": \"10.78.1.1/32\","
		   " \"host-veth\": \"vg-g7\", \"pid\": 5, \"start-time\": 1, \"via\": \"\","
		   " \"log\": \"/x\", \"extra\": 1}");
	ok(vmig_guest_load("g7", &l, err) == -EINVAL && strstr(err, "extra"),
	   "unknown member refused: %s", err);
	write_file("g8.json", "not json");
	ok(vmig_guest_load("g8", &l, err) == -EINVAL, "garbage refused: %s", err);
	write_file("g9.json", "{\"name\": \"g9\", \"state\": \"running\", \"address\": \"10.78.1.1/32\","
		   " \"host-veth\": \"vg-g9\", \"pid\": 5, \"start-time\": 1, \"via\": \"\","
		   " \"log\": \"relative\"}");
	ok(vmig_guest_load("g9", &l, err) == -EINVAL && strstr(err, "absolute"),
	   "relative log path refused: %s", err);

	ok(!vmig_guest_list(count_one, names, err), "list");
	is_str(names, "g1 ", "list skips broken records");

	ok(!vmig_guest_init(&g, "g10", "10.78.3.4", err), "init g10 with g1's address");
	ok(!guest_addr_in_use(&g, names, sizeof(names)),
	   "an address of a guest that is away is free");
}

int main(void)
{
	char cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("VMIG_RUN_DIR", dir, 1);
	test_names();
	test_addrs();
	test_records();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
