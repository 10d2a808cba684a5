// SPDX-License-Identifier: MIT
/*
 * vmig-agent on a unix channel with stand-in shims (migrd-probe) that
 * register with it as they would with migrd: fan-out and aggregation,
 * FORWARD narrowing, the rollback of a SUSPEND that failed on one shim,
 * hung and killed shims (bounded, parallel), garbage on both sockets, and
 * a second agent on a pty standing in for a virtio-serial port.
 * argv[1]: vmig-agent, argv[2]: migrd-probe. Under valgrind the agents run
 * under memcheck too, and their exit status says whether it found errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "msg.h"
#include "record.h"
#include "sock.h"
#include "tap.h"

#define TIMEOUT_MS 1500
#define NPROBES 5

static const char *agent_bin, *probe_bin;
static char base[] = "/tmp/vmig-agent-XXXXXX";
static char run_dir[128], chan[160], shim_sock[160];
static pid_t probes[NPROBES];
static char probe_log[NPROBES][160];
static uint32_t seq = 100;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static bool wait_for(const char *path)
{
	int i;

	for (i = 0; i < 1500 && access(path, F_OK); i++)
		sleep_ms(20);
	return !access(path, F_OK);
}

static pid_t start_agent(const char *const *args, const char *log)
{
	const char *argv[24];
	int n = 0, fd;
	pid_t pid;

	if (RUNNING_ON_VALGRIND) {
		argv[n++] = "valgrind";
		argv[n++] = "--error-exitcode=3";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite,indirect";
		argv[n++] = "--show-leak-kinds=definite,indirect";
		argv[n++] = "--quiet";
	}
	argv[n++] = agent_bin;
	while (*args)
		argv[n++] = *args++;
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		setenv("VMIG_RUN_DIR", run_dir, 1);
		setenv("VMIG_LOG_LEVEL", "info", 1);
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	return pid;
}

static int stop_agent(pid_t pid)
{
	int st = -1;

	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static pid_t start_probe(int i, const char *dir, bool fail_suspend,
			 const char *conn1, const char *conn2)
{
	char guest[16];
	pid_t pid;

	snprintf(guest, sizeof(guest), "app%d", i);
	snprintf(probe_log[i], sizeof(probe_log[i]), "%s/probe%d.log", base, i);
	pid = fork();
	if (pid == 0) {
		const char *argv[12];
		int n = 0, fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		setenv("VMIG_RUN_DIR", dir, 1);
		argv[n++] = probe_bin;
		argv[n++] = "shim";
		argv[n++] = guest;
		argv[n++] = "--log";
		argv[n++] = probe_log[i];
		if (fail_suspend)
			argv[n++] = "--fail-suspend";
		if (conn1) {
			argv[n++] = "--conn";
			argv[n++] = conn1;
		}
		if (conn2) {
			argv[n++] = "--conn";
			argv[n++] = conn2;
		}
		argv[n] = NULL;
		execv(probe_bin, (char **)argv);
		_exit(127);
	}
	return pid;
}

/* How often a probe was asked for type (its log: one request a line,
 * "CTL_SUSPEND filter=0"). */
static int asked(int i, const char *what)
{
	char line[256], type[64];
	FILE *f = fopen(probe_log[i], "r");
	size_t l;
	int n = 0;

	if (!f)
		return 0;
	snprintf(type, sizeof(type), "CTL_%s", what);
	l = strlen(type);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, type, l) &&
		    (line[l] == '\n' || line[l] == ' '))
			n++;
	fclose(f);
	return n;
}

static int send_hello(int fd, Vmig__Role role, uint32_t version)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT;
	Vmig__Hello h = VMIG__HELLO__INIT;

	m.has_type = m.has_seq = 1;
	m.type = VMIG__CTL_TYPE__CTL_HELLO;
	m.seq = ++seq;
	m.hello = &h;
	h.has_version = h.has_role = 1;
	h.version = version;
	h.role = role;
	return vmig_ctl_send(fd, &m);
}

static int hello(int fd, Vmig__Role role, uint32_t version,
		 Vmig__CtlMsg **reply)
{
	if (send_hello(fd, role, version) || vmig_ctl_recv(fd, reply) != 1)
		return -EPROTO;
	return 0;
}

/* A host session: header each way and HELLO as migrd. */
static int host_connect(void)
{
	Vmig__CtlMsg *r = NULL;
	int fd = vmig_unix_connect(chan);

	if (fd < 0)
		return fd;
	vmig_sock_set_timeout(fd, 20000);
	if (vmig_ctl_send_header(fd) || vmig_ctl_recv_header(fd) ||
	    hello(fd, VMIG__ROLE__ROLE_MIGRD, 1, &r) ||
	    r->type != VMIG__CTL_TYPE__CTL_HELLO) {
		vmig_ctl_free(r);
		close(fd);
		return -EPROTO;
	}
	vmig_ctl_free(r);
	return fd;
}

static int send_req(int fd, Vmig__CtlType type, Vmig__Forward *fw,
		    Vmig__Suspend *su)
{
	Vmig__CtlMsg m = VMIG__CTL_MSG__INIT;

	m.has_type = m.has_seq = 1;
	m.type = type;
	m.seq = ++seq;
	m.forward = fw;
	m.suspend = su;
	return vmig_ctl_send(fd, &m);
}

static Vmig__CtlMsg *recv_reply(int fd)
{
	Vmig__CtlMsg *r = NULL;

	if (vmig_ctl_recv(fd, &r) != 1)
		return NULL;
	if (r->seq != seq)
		printf("# reply seq %u, want %u\n", r->seq, seq);
	return r;
}

static Vmig__CtlMsg *req(int fd, Vmig__CtlType type)
{
	if (send_req(fd, type, NULL, NULL))
		return NULL;
	return recv_reply(fd);
}

static Vmig__CtlMsg *forward(int fd, Vmig__CtlType type, uint32_t pid,
			     const char *host, uint32_t timeout_ms)
{
	Vmig__CtlMsg inner = VMIG__CTL_MSG__INIT;
	Vmig__Forward fw = VMIG__FORWARD__INIT;

	inner.has_type = 1;
	inner.type = type;
	fw.inner = &inner;
	fw.has_dest_pid = pid != 0;
	fw.dest_pid = pid;
	fw.dest_host = (char *)host;
	fw.has_timeout_ms = timeout_ms != 0;
	fw.timeout_ms = timeout_ms;
	if (send_req(fd, VMIG__CTL_TYPE__CTL_FORWARD, &fw, NULL))
		return NULL;
	return recv_reply(fd);
}

static Vmig__CtlMsg *suspend(int fd, uint32_t drain_ms)
{
	Vmig__Suspend su = VMIG__SUSPEND__INIT;

	su.has_drain_timeout_ms = 1;
	su.drain_timeout_ms = drain_ms;
	if (send_req(fd, VMIG__CTL_TYPE__CTL_SUSPEND, NULL, &su))
		return NULL;
	return recv_reply(fd);
}

static int err_class(const Vmig__CtlMsg *r)
{
	return r && r->type == VMIG__CTL_TYPE__CTL_ERROR && r->error ?
		       (int)r->error->class_ : -1;
}

static bool desc_has(const Vmig__CtlMsg *r, const char *what)
{
	bool y = r && r->error && r->error->desc &&
		 strstr(r->error->desc, what);

	if (!y)
		printf("# desc '%s' lacks '%s'\n",
		       r && r->error && r->error->desc ? r->error->desc : "",
		       what);
	return y;
}

static bool replied_by(const Vmig__CtlMsg *r, pid_t pid)
{
	size_t i;

	for (i = 0; r && i < r->n_replies; i++)
		if (r->replies[i]->hello && r->replies[i]->hello->pid ==
						    (uint32_t)pid)
			return true;
	return false;
}

/* Until STATE lists n shims (registration is asynchronous). */
static size_t wait_shims(int fd, size_t n)
{
	Vmig__CtlMsg *r;
	size_t got = 0;
	int i;

	for (i = 0; i < 500; i++) {
		r = req(fd, VMIG__CTL_TYPE__CTL_STATE);
		got = r ? r->n_replies : 0;
		vmig_ctl_free(r);
		if (got == n)
			break;
		sleep_ms(20);
	}
	return got;
}

static void test_fanout(int fd)
{
	Vmig__CtlMsg *r;
	size_t i;
	int k, s0, s1, s2;

	r = req(fd, VMIG__CTL_TYPE__CTL_STATE);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_STATE && r->state &&
		   r->n_replies == 0 && r->state->phase &&
		   !strcmp(r->state->phase, "none"),
	   "STATE with no shims: an empty guest");
	vmig_ctl_free(r);

	probes[0] = start_probe(0, run_dir, false, "17:18:10.0.0.2", NULL);
	probes[1] = start_probe(1, run_dir, false, "19:20:10.0.0.3",
				"21:22:10.0.0.4");
	probes[2] = start_probe(2, run_dir, false, NULL, NULL);
	is_int(wait_shims(fd, 3), 3, "three shims registered with the agent");

	r = req(fd, VMIG__CTL_TYPE__CTL_STATE);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_STATE && r->state,
	   "STATE: one merged State");
	if (r && r->state) {
		is_int(r->n_replies, 3, "STATE: one reply per shim");
		is_int(r->state->n_conns, 3, "STATE: every shim's connections in one list");
		is_str(r->state->phase, "running", "STATE: phases merged");
		is_str(r->state->guest, "vm1", "STATE: the agent's guest name");
		ok(replied_by(r, probes[0]) && replied_by(r, probes[1]) &&
			   replied_by(r, probes[2]),
		   "STATE: replies tagged with each shim's pid");
		for (i = 0, k = 0; i < r->n_replies; i++)
			k += r->replies[i]->state && r->replies[i]->state->phase &&
			     !strcmp(r->replies[i]->state->phase, "running");
		is_int(k, 3, "STATE: each shim's phase listed");
	}
	vmig_ctl_free(r);

	r = suspend(fd, 500);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_DRAINED && r->drained &&
		   r->n_replies == 3,
	   "SUSPEND: DRAINED from all three");
	vmig_ctl_free(r);
	ok(asked(0, "SUSPEND") == 1 && asked(1, "SUSPEND") == 1 &&
		   asked(2, "SUSPEND") == 1,
	   "SUSPEND reached every shim once");
	r = req(fd, VMIG__CTL_TYPE__CTL_RESTORE);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_RECONNECT_INFO &&
		   r->reconnect_info && r->reconnect_info->n_conns == 3,
	   "RESTORE: every shim's endpoints in one RECONNECT_INFO");
	vmig_ctl_free(r);
	r = req(fd, VMIG__CTL_TYPE__CTL_RESUME);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_OK && r->n_replies == 3,
	   "RESUME: OK");
	vmig_ctl_free(r);
	ok(asked(0, "ABORT") == 0, "no ABORT when nothing failed");

	s0 = asked(0, "STATE");
	s1 = asked(1, "STATE");
	s2 = asked(2, "STATE");
	r = forward(fd, VMIG__CTL_TYPE__CTL_STATE, (uint32_t)probes[1], NULL, 0);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_STATE && r->n_replies == 1 &&
		   replied_by(r, probes[1]) && r->state && r->state->n_conns == 2,
	   "FORWARD dest_pid: only that shim");
	vmig_ctl_free(r);
	ok(asked(0, "STATE") == s0 && asked(1, "STATE") == s1 + 1 &&
		   asked(2, "STATE") == s2,
	   "FORWARD dest_pid: the others were not asked");
	r = forward(fd, VMIG__CTL_TYPE__CTL_STATE, 999999, NULL, 0);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_NOT_FOUND,
	       "FORWARD to an unknown pid: NOT_FOUND");
	vmig_ctl_free(r);
	r = forward(fd, VMIG__CTL_TYPE__CTL_STATE, 0, "elsewhere", 0);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "FORWARD with a dest_host: refused");
	vmig_ctl_free(r);
	r = forward(fd, VMIG__CTL_TYPE__CTL_MIG_FILE, 0, NULL, 0);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "FORWARD of a non-shim request: refused");
	vmig_ctl_free(r);
}

static void test_rollback(int fd)
{
	Vmig__CtlMsg *r;
	char pid[16];

	probes[3] = start_probe(3, run_dir, true, NULL, NULL);
	is_int(wait_shims(fd, 4), 4, "a fourth shim, one that fails SUSPEND");
	r = suspend(fd, 500);
	snprintf(pid, sizeof(pid), "pid %d", probes[3]);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_TIMEOUT,
	       "SUSPEND failing on one shim: its error class");
	ok(desc_has(r, pid), "the error names the failing pid");
	ok(desc_has(r, "aborted on 3"), "the error says the others were aborted");
	ok(r && r->n_replies == 4, "every shim's reply attached");
	vmig_ctl_free(r);
	ok(asked(0, "ABORT") == 1 && asked(1, "ABORT") == 1 &&
		   asked(2, "ABORT") == 1,
	   "the shims that had suspended got ABORT");
	is_int(asked(3, "ABORT"), 0, "the failing shim got no ABORT");
}

static void test_hung(int fd)
{
	Vmig__CtlMsg *r;
	char pid[32];
	long t0, dt;
	int held;

	kill(probes[2], SIGSTOP);
	t0 = now_ms();
	r = req(fd, VMIG__CTL_TYPE__CTL_STATE);
	dt = now_ms() - t0;
	snprintf(pid, sizeof(pid), "pid %d", probes[2]);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_TIMEOUT,
	       "a hung shim: TIMEOUT");
	ok(desc_has(r, pid), "the timeout names the hung pid");
	ok(dt >= TIMEOUT_MS - 100 && dt < TIMEOUT_MS + 1500,
	   "bounded by the timeout (%ld ms)", dt);
	vmig_ctl_free(r);

	kill(probes[1], SIGSTOP);
	t0 = now_ms();
	r = req(fd, VMIG__CTL_TYPE__CTL_STATE);
	dt = now_ms() - t0;
	ok(err_class(r) == VMIG__ERR_CLASS__ERR_TIMEOUT &&
		   dt < 2 * TIMEOUT_MS - 200,
	   "two hung shims cost one bound: in parallel (%ld ms)", dt);
	vmig_ctl_free(r);
	kill(probes[1], SIGCONT);

	/* a SUSPEND that times out on one: the silent one is aborted too,
	 * so whatever it does when it wakes, it ends up not suspended */
	held = asked(2, "SUSPEND") - asked(2, "ABORT") - asked(2, "RESUME");
	r = suspend(fd, 200);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_TIMEOUT,
	       "SUSPEND with a hung shim: TIMEOUT");
	vmig_ctl_free(r);
	ok(asked(0, "ABORT") == 2 && asked(1, "ABORT") == 2,
	   "the suspended ones were aborted");
	kill(probes[2], SIGCONT);
	sleep_ms(500);
	is_int(asked(2, "SUSPEND") - asked(2, "ABORT") - asked(2, "RESUME"),
	       held, "the hung one, once awake, is not left suspended");
}

static void test_killed(int fd)
{
	Vmig__CtlMsg *r;
	char pid[32];
	long t0, dt;
	int st;

	r = NULL;
	if (!send_req(fd, VMIG__CTL_TYPE__CTL_FORWARD, NULL, NULL))
		r = recv_reply(fd);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "FORWARD without inner: BAD_REQUEST");
	vmig_ctl_free(r);

	kill(probes[2], SIGSTOP);

	{
		Vmig__CtlMsg inner = VMIG__CTL_MSG__INIT;
		Vmig__Forward fw = VMIG__FORWARD__INIT;

		inner.has_type = 1;
		inner.type = VMIG__CTL_TYPE__CTL_STATE;
		fw.inner = &inner;
		fw.has_timeout_ms = 1;
		fw.timeout_ms = 10000;
		t0 = now_ms();
		send_req(fd, VMIG__CTL_TYPE__CTL_FORWARD, &fw, NULL);
	}
	sleep_ms(400);
	kill(probes[2], SIGKILL);
	waitpid(probes[2], &st, 0);
	r = recv_reply(fd);
	dt = now_ms() - t0;
	snprintf(pid, sizeof(pid), "pid %d", probes[2]);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_UNREACHABLE,
	       "a shim killed mid-request: UNREACHABLE");
	ok(desc_has(r, pid) && desc_has(r, "vanished"),
	   "the error says which shim vanished");
	ok(dt < 5000, "no waiting for the 10 s bound (%ld ms)", dt);
	vmig_ctl_free(r);
	probes[2] = 0;
	is_int(wait_shims(fd, 3), 3, "the dead shim left the registry");
}

static int raw_connect(void)
{
	int fd = vmig_unix_connect(chan);

	if (fd >= 0)
		vmig_sock_set_timeout(fd, 10000);
	return fd;
}

static int total_asked(void)
{
	int i, n = 0;

	for (i = 0; i < NPROBES; i++)
		if (probe_log[i][0])
			n += asked(i, "STATE") + asked(i, "SUSPEND") +
			     asked(i, "RESUME") + asked(i, "ABORT") +
			     asked(i, "RESTORE") + asked(i, "TEARDOWN");
	return n;
}

/* A record with a payload checksum that does not match. */
static int write_bad_crc(int fd)
{
	uint8_t rec[12 + 4] = { 4, 0, 0, 0, VMIG_REC_CTL, 0, 0, 0,
				0xde, 0xad, 0xbe, 0xef, 8, 1, 16, 4 };

	return vmig_write_full(fd, rec, sizeof(rec));
}

static void test_garbage(int *host)
{
	Vmig__CtlMsg *r = NULL, m = VMIG__CTL_MSG__INIT;
	int fd, before = total_asked();
	char junk[64];

	/* a second host while one is connected */
	fd = raw_connect();
	ok(fd >= 0 && !vmig_ctl_recv_header(fd) && vmig_ctl_recv(fd, &r) == 1 &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_STATE,
	   "a second host connection: BAD_STATE");
	vmig_ctl_free(r);
	r = NULL;
	close(fd);
	close(*host);

	/* not a vmig stream at all */
	fd = raw_connect();
	memset(junk, 'x', sizeof(junk));
	ok(fd >= 0 && write(fd, junk, sizeof(junk)) == sizeof(junk) &&
		   !vmig_ctl_recv_header(fd) && vmig_ctl_recv(fd, &r) == 1 &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	   "garbage instead of a stream header: ERROR");
	vmig_ctl_free(r);
	r = NULL;
	close(fd);

	fd = raw_connect();
	ok(fd >= 0 && !vmig_ctl_send_header(fd) && !vmig_ctl_recv_header(fd),
	   "a new session after the garbage");
	r = req(fd, VMIG__CTL_TYPE__CTL_STATE);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "a request before HELLO: BAD_REQUEST");
	vmig_ctl_free(r);
	r = NULL;
	ok(!hello(fd, VMIG__ROLE__ROLE_MIGRD, 99, &r) &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_VERSION,
	   "HELLO with version 99: BAD_VERSION");
	vmig_ctl_free(r);
	r = NULL;
	ok(!hello(fd, VMIG__ROLE__ROLE_SHIM, 1, &r) &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	   "HELLO as a shim on the host channel: BAD_REQUEST");
	vmig_ctl_free(r);
	r = NULL;
	ok(!write_bad_crc(fd) && vmig_ctl_recv(fd, &r) == 1 &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	   "a record with a bad checksum: BAD_REQUEST");
	vmig_ctl_free(r);
	r = NULL;
	ok(!vmig_record_write(fd, VMIG_REC_CTL, "\xff\xff\xff\xff", 4) &&
		   vmig_ctl_recv(fd, &r) == 1 &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	   "a payload that does not decode: BAD_REQUEST");
	vmig_ctl_free(r);
	r = NULL;
	ok(!hello(fd, VMIG__ROLE__ROLE_MIGRD, 1, &r) && r &&
		   r->type == VMIG__CTL_TYPE__CTL_HELLO && r->hello &&
		   r->hello->role == VMIG__ROLE__ROLE_AGENT,
	   "the session goes on: HELLO answered as AGENT");
	vmig_ctl_free(r);
	r = NULL;
	ok(!hello(fd, VMIG__ROLE__ROLE_MIGRD, 1, &r) &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_STATE,
	   "HELLO twice: BAD_STATE");
	vmig_ctl_free(r);
	r = req(fd, (Vmig__CtlType)77);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "an unknown type: BAD_REQUEST");
	vmig_ctl_free(r);
	r = req(fd, VMIG__CTL_TYPE__CTL_MIG_FILE);
	is_int(err_class(r), VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	       "a migrd-to-migrd request: BAD_REQUEST");
	vmig_ctl_free(r);
	is_int(total_asked(), before, "no shim was asked anything meanwhile");

	/* garbage on the shims' socket */
	{
		int s = vmig_unix_connect(shim_sock);

		vmig_sock_set_timeout(s, 10000);
		ok(s >= 0 && write(s, junk, sizeof(junk)) == sizeof(junk) &&
			   !vmig_ctl_recv_header(s) && vmig_ctl_recv(s, &r) <= 0,
		   "garbage on the shim socket: dropped");
		close(s);
		s = vmig_unix_connect(shim_sock);
		vmig_sock_set_timeout(s, 10000);
		m.has_type = 1;
		m.type = VMIG__CTL_TYPE__CTL_HELLO;
		m.hello = &(Vmig__Hello)VMIG__HELLO__INIT;
		m.hello->has_version = m.hello->has_role = 1;
		m.hello->version = 1;
		m.hello->role = VMIG__ROLE__ROLE_SHIM;
		r = NULL;
		ok(s >= 0 && !vmig_ctl_send_header(s) && !vmig_ctl_send(s, &m) &&
			   !vmig_ctl_recv_header(s) && vmig_ctl_recv(s, &r) == 1 &&
			   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_REQUEST,
		   "a shim HELLO without a pid: refused");
		vmig_ctl_free(r);
		close(s);
	}
	r = req(fd, VMIG__CTL_TYPE__CTL_STATE);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_STATE && r->n_replies == 3,
	   "still serving: STATE from the three shims");
	vmig_ctl_free(r);
	*host = fd;
}

/* Reads one reply from a pty master within 10 s. */
static int pty_recv(int fd, Vmig__CtlMsg **r)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 10000) != 1)
		return -ETIMEDOUT;
	return vmig_ctl_recv(fd, r);
}

static void test_serial(void)
{
	char dir[160], sock[200], log[200], name[64], *junk;
	const char *args[12];
	struct termios tio;
	Vmig__CtlMsg *r = NULL;
	int master, slave, st, n = 0;
	pid_t agent;

	if (openpty(&master, &slave, name, NULL, NULL)) {
		ok(0, "openpty: %s", strerror(errno));
		return;
	}
	/* raw before anyone writes: the agent sets it too, later */
	tcgetattr(slave, &tio);
	cfmakeraw(&tio);
	tcsetattr(slave, TCSANOW, &tio);
	snprintf(dir, sizeof(dir), "%s/run2", base);
	snprintf(sock, sizeof(sock), "%s/migrd.sock", dir);
	snprintf(log, sizeof(log), "%s/agent2.log", base);
	args[n++] = "--channel";
	args[n++] = name;
	args[n++] = "--run-dir";
	args[n++] = dir;
	args[n++] = "--guest";
	args[n++] = "vm2";
	args[n++] = "--timeout";
	args[n++] = "3000";
	args[n] = NULL;
	agent = start_agent(args, log);
	ok(wait_for(sock), "agent on a character device (%s) is up", name);
	close(slave);
	probes[4] = start_probe(4, dir, false, "30:31:10.0.0.9", NULL);
	sleep_ms(300);

	ok(!vmig_ctl_send_header(master) &&
		   !send_hello(master, VMIG__ROLE__ROLE_MIGRD, 1),
	   "host session on the port");
	ok(!vmig_ctl_recv_header(master), "the agent's stream header on the port");
	ok(pty_recv(master, &r) == 1 && r->type == VMIG__CTL_TYPE__CTL_HELLO,
	   "HELLO over the port");
	vmig_ctl_free(r);
	r = NULL;
	{
		int i;

		for (i = 0; i < 100; i++) {
			if (send_req(master, VMIG__CTL_TYPE__CTL_STATE, NULL, NULL) ||
			    pty_recv(master, &r) != 1)
				break;
			if (r->n_replies == 1)
				break;
			vmig_ctl_free(r);
			r = NULL;
			sleep_ms(50);
		}
	}
	ok(r && r->type == VMIG__CTL_TYPE__CTL_STATE && r->n_replies == 1 &&
		   replied_by(r, probes[4]) && r->state && r->state->n_conns == 1,
	   "STATE over the port: the guest's shim");
	vmig_ctl_free(r);
	r = NULL;

	/* garbage mid-stream: an ERROR, then a fresh start after a pause */
	junk = calloc(1, 64);
	memset(junk, 0xff, 64);
	ok(vmig_write_full(master, junk, 64) == 0 && pty_recv(master, &r) == 1 &&
		   err_class(r) == VMIG__ERR_CLASS__ERR_BAD_REQUEST,
	   "garbage on the port: ERROR");
	free(junk);
	vmig_ctl_free(r);
	r = NULL;
	sleep_ms(600);
	ok(!vmig_ctl_send_header(master) && !vmig_ctl_recv_header(master) &&
		   !hello(master, VMIG__ROLE__ROLE_MIGRD, 1, &r) && r &&
		   r->type == VMIG__CTL_TYPE__CTL_HELLO,
	   "a new session on the port after the garbage");
	vmig_ctl_free(r);
	r = NULL;
	r = req(master, VMIG__CTL_TYPE__CTL_RESUME);
	ok(r && r->type == VMIG__CTL_TYPE__CTL_OK, "RESUME over the port");
	vmig_ctl_free(r);

	st = stop_agent(agent);
	is_int(st, 0, "serial agent exits cleanly on SIGTERM%s",
	       RUNNING_ON_VALGRIND ? " (memcheck clean)" : "");
	close(master);
	kill(probes[4], SIGTERM);
	waitpid(probes[4], NULL, 0);
	probes[4] = 0;
}

int main(int argc, char **argv)
{
	const char *args[12];
	char log[200];
	pid_t agent;
	int fd, i, n = 0, st;

	if (argc != 3) {
		fprintf(stderr, "usage: test-agent VMIG_AGENT MIGRD_PROBE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (RUNNING_ON_VALGRIND)
		printf("# the agents run under memcheck too\n");
	agent_bin = argv[1];
	probe_bin = argv[2];
	if (!mkdtemp(base))
		return 2;
	snprintf(run_dir, sizeof(run_dir), "%s/run", base);
	snprintf(chan, sizeof(chan), "%s/chan.sock", base);
	snprintf(shim_sock, sizeof(shim_sock), "%s/migrd.sock", run_dir);
	snprintf(log, sizeof(log), "%s/agent.log", base);
	args[n++] = "--unix";
	args[n++] = chan;
	args[n++] = "--guest";
	args[n++] = "vm1";
	args[n++] = "--timeout";
	args[n++] = "1500";
	args[n] = NULL;
	agent = start_agent(args, log);
	ok(wait_for(chan) && wait_for(shim_sock),
	   "agent listens on the channel and on RUN_DIR/migrd.sock");
	fd = host_connect();
	ok(fd >= 0, "host HELLO answered");
	if (fd >= 0) {
		test_fanout(fd);
		test_rollback(fd);
		test_hung(fd);
		test_killed(fd);
		test_garbage(&fd);
		close(fd);
	}
	test_serial();

	for (i = 0; i < NPROBES; i++)
		if (probes[i] > 0) {
			kill(probes[i], SIGCONT);
			kill(probes[i], SIGTERM);
			waitpid(probes[i], NULL, 0);
		}
	st = stop_agent(agent);
	is_int(st, 0, "agent exits cleanly on SIGTERM%s",
	       RUNNING_ON_VALGRIND ? " (memcheck clean)" : "");
	ok(access(chan, F_OK) && access(shim_sock, F_OK),
	   "its sockets are removed");
	if (tap_failed) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "sed 's/^/# /' %s/agent*.log", base);
		fflush(stdout);
		if (system(cmd))
			printf("# no agent log\n");
	}
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
		if (system(cmd))
			printf("# could not remove %s\n", base);
	}
	return tap_done();
}
