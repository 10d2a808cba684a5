// SPDX-License-Identifier: MIT
/*
 * The network of a process guest: the veth pair, the addresses and routes on
 * both ends. Done with iproute2's `ip` (present wherever CRIU runs: CRIU
 * itself calls it to dump and restore addresses and routes), whose error
 * messages are clear enough to pass on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest_priv.h"

#define IP_MAX_ARGS 24

/* Runs `ip ARGV...` with input (or /dev/null) on its stdin; cmd names it
 * in the error, which is ip's own message. */
static int run_ip(char *err, const char *const *argv, const char *cmd,
		  const char *input)
{
	char out[VMIG_GUEST_ERR_LEN / 2] = "";
	size_t used = 0;
	int pfd[2], ifd[2] = { -1, -1 }, status, ret = 0;
	pid_t pid;
	ssize_t n;

	/* input first, whole, into a pipe nobody reads yet: a few short
	 * lines fit, and an ip that exits early cannot SIGPIPE us */
	if (input) {
		size_t len = strlen(input);

		if (pipe2(ifd, O_CLOEXEC) < 0) {
			ret = -errno;
			GUEST_SETERR(err, "%s: pipe: %s", cmd, strerror(errno));
			return ret;
		}
		n = write(ifd[1], input, len);
		close(ifd[1]);
		if (n != (ssize_t)len) {
			GUEST_SETERR(err, "%s: too long for a pipe", cmd);
			close(ifd[0]);
			return -E2BIG;
		}
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		ret = -errno;
		GUEST_SETERR(err, "%s: pipe: %s", cmd, strerror(errno));
		if (input)
			close(ifd[0]);
		return ret;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		GUEST_SETERR(err, "%s: fork: %s", cmd, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		if (input)
			close(ifd[0]);
		return ret;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		if (input)
			dup2(ifd[0], STDIN_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		signal(SIGPIPE, SIG_DFL);
		execvp("ip", (char *const *)argv);
		dprintf(STDERR_FILENO, "cannot run ip (is iproute2 installed?): %s",
			strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	if (input)
		close(ifd[0]);
	while ((n = read(pfd[0], out + used, sizeof(out) - 1 - used)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		used += n;
		if (used == sizeof(out) - 1) {
			char sink[256];

			/* keep the start, drain the rest so ip never blocks */
			while (read(pfd[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	close(pfd[0]);
	out[used] = '\0';
	while (used && (out[used - 1] == '\n' || out[used - 1] == ' '))
		out[--used] = '\0';
	/* one line: callers report the last line of a tool's output */
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	if (status != 0) {
		GUEST_SETERR(err, "`%s` failed: %s", cmd,
			     used ? out : "(no message)");
		ret = -EIO;
	}
	return ret;
}

int guest_ip(char *err, const char *arg, ...)
{
	const char *argv[IP_MAX_ARGS + 2] = { "ip" };
	char cmd[VMIG_GUEST_ERR_LEN / 2] = "ip";
	size_t argc = 1;
	va_list ap;

	va_start(ap, arg);
	for (const char *a = arg; a; a = va_arg(ap, const char *)) {
		if (argc == IP_MAX_ARGS + 1)
			break;
		argv[argc++] = a;
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", a);
	}
	va_end(ap);
	argv[argc] = NULL;
	return run_ip(err, argv, cmd, NULL);
}

/* Several ip commands, one a line, in one `ip -batch -`: one exec instead
 * of one each (0.1 s apiece on the testbed). Stops at the first failure. */
static int guest_ip_batch(char *err, const char *lines)
{
	static const char *const argv[] = { "ip", "-batch", "-", NULL };
	char cmd[VMIG_GUEST_ERR_LEN / 2];
	size_t l;

	snprintf(cmd, sizeof(cmd), "ip -batch: %.*s", (int)sizeof(cmd) - 12,
		 lines);
	l = strlen(cmd);
	while (l && cmd[l - 1] == '\n')
		cmd[--l] = '\0';
	for (char *p = cmd; *p; p++)
		if (*p == '\n')
			*p = ';';
	return run_ip(err, argv, cmd, lines);
}

/*
 * Not if_nametoindex(): SIOCGIFINDEX on a missing name makes the kernel try
 * `modprobe netdev-NAME` and `modprobe NAME` (dev_load), 0.2 s a call on
 * the testbed, and a restore asks twice for a name that is not there.
 * if_nameindex() is one netlink dump and loads nothing.
 */
bool guest_link_exists(const char *ifname)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	bool found = false;

	if (!ifs)
		return if_nametoindex(ifname) != 0;
	for (i = ifs; i->if_index && !found; i++)
		found = !strcmp(i->if_name, ifname);
	if_freenameindex(ifs);
	return found;
}

void guest_link_del(const char *ifname)
{
	char err[VMIG_GUEST_ERR_LEN];

	if (guest_link_exists(ifname))
		guest_ip(err, "link", "del", ifname, NULL);
}

int guest_veth_create(const struct vmig_guest *g, pid_t pid, char *err)
{
	char pidstr[16];

	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	return guest_ip(err, "link", "add", g->host_veth, "type", "veth",
			"peer", "name", VMIG_GUEST_IFNAME, "netns", pidstr, NULL);
}

static int write_sysctl(const char *path, const char *val, char *err)
{
	size_t len = strlen(val);
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || write(fd, val, len) != (ssize_t)len) {
		ret = -errno;
		GUEST_SETERR(err, "cannot set %s to %s: %s", path, val,
			     strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * The source address this host uses towards guests: its first global IPv4
 * address outside the guests' veths. Without it the kernel would pick the
 * gateway address of vg-NAME, which means "this host" on every host and
 * would break the connection when the guest moves.
 */
static bool host_src(char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		struct sockaddr_in *sin = (struct sockaddr_in *)i->ifa_addr;
		uint32_t h;

		if (!sin || sin->sin_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP) ||
		    !strncmp(i->ifa_name, VMIG_GUEST_VETH_PREFIX,
			     strlen(VMIG_GUEST_VETH_PREFIX)))
			continue;
		h = ntohl(sin->sin_addr.s_addr);
		if ((h >> 16) == 0xa9fe || (h >> 24) == 127)
			continue;
		found = inet_ntop(AF_INET, &sin->sin_addr, buf, len) != NULL;
	}
	freeifaddrs(ifa);
	return found;
}

int guest_host_net_up(const struct vmig_guest *g, char *err)
{
	char path[128], addr[INET_ADDRSTRLEN + 3], src[INET_ADDRSTRLEN];
	char lines[512];
	bool have_src;
	int ret;

	/* routed, not bridged: the host forwards, and answers ARP for
	 * the addresses it routes (guests with a prefix shorter than /32) */
	ret = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1", err);
	if (ret)
		return ret;
	inet_ntop(AF_INET, &g->addr, addr, INET_ADDRSTRLEN);
	strcat(addr, "/32");
	have_src = host_src(src, sizeof(src));
	snprintf(lines, sizeof(lines),
		 "addr replace " VMIG_GUEST_GATEWAY "/32 dev %s scope link\n"
		 "link set %s up\n"
		 "route replace %s dev %s%s%s\n",
		 g->host_veth, g->host_veth, addr, g->host_veth,
		 have_src ? " src " : "", have_src ? src : "");
	ret = guest_ip_batch(err, lines);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/proxy_arp",
		 g->host_veth);
	return write_sysctl(path, "1", err);
}

int guest_inner_net_up(const struct vmig_guest *g, char *err)
{
	char addr[INET_ADDRSTRLEN + 4];
	int ret;

	inet_ntop(AF_INET, &g->addr, addr, INET_ADDRSTRLEN);
	snprintf(addr + strlen(addr), 4, "/%u", g->prefix);
	ret = guest_ip(err, "link", "set", "lo", "up", NULL);
	if (!ret)
		ret = guest_ip(err, "addr", "add", addr, "dev", VMIG_GUEST_IFNAME,
			       NULL);
	if (!ret)
		ret = guest_ip(err, "link", "set", VMIG_GUEST_IFNAME, "up", NULL);
	if (!ret)
		ret = guest_ip(err, "route", "add", VMIG_GUEST_GATEWAY, "dev",
			       VMIG_GUEST_IFNAME, "scope", "link", NULL);
	if (!ret)
		ret = guest_ip(err, "route", "add", "default", "via",
			       VMIG_GUEST_GATEWAY, "dev", VMIG_GUEST_IFNAME,
			       NULL);
	return ret;
}
