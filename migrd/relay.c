// SPDX-License-Identifier: MIT
/* Forwarding requests to the shims of this host or of another host. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "migrd: relay: "
#include "call.h"
#include "ctlmsg_heap.h"
#include "log.h"
#include "relay.h"

/* Spare time for the remote migrd to report its own shims' timeouts. */
#define REMOTE_MARGIN_MS 2000
#define MAX_TARGETS 256

bool migrd_addr_is_local(const char *addr)
{
	struct in6_addr a6, b6;
	struct in_addr a4;
	struct ifaddrs *ifa, *i;
	bool v4 = inet_pton(AF_INET, addr, &a4) == 1, found = false;

	if (!v4 && inet_pton(AF_INET6, addr, &a6) != 1)
		return false;
	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (v4 && i->ifa_addr->sa_family == AF_INET)
			found = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
				a4.s_addr;
		else if (!v4 && i->ifa_addr->sa_family == AF_INET6) {
			b6 = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
			found = !memcmp(&a6, &b6, sizeof(a6));
		}
	}
	freeifaddrs(ifa);
	return found;
}

/* RoCE v2 GIDs are IP addresses: IPv4-mapped or plain IPv6. */
Vmig__ErrClass migrd_gid_to_addr(const ProtobufCBinaryData *gid, char *addr,
				  char *err, size_t err_len)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (gid->len != 16) {
		snprintf(err, err_len, "dest_gid must be 16 bytes, not %zu",
			 gid->len);
		return VMIG__ERR_CLASS__ERR_BAD_REQUEST;
	}
	if (!memcmp(gid->data, mapped, sizeof(mapped))) {
		inet_ntop(AF_INET, gid->data + 12, addr, MIGRD_ADDR_MAX);
		return 0;
	}
	inet_ntop(AF_INET6, gid->data, addr, MIGRD_ADDR_MAX);
	if (gid->data[0] == 0xfe && (gid->data[1] & 0xc0) == 0x80) {
		snprintf(err, err_len,
			 "dest_gid %s is link-local (RoCE v1 or no IP on the port): no host address in it",
			 addr);
		return VMIG__ERR_CLASS__ERR_BAD_REQUEST;
	}
	return 0;
}

Vmig__ErrClass migrd_relay_resolve(const struct migrd_config *cfg,
				   const Vmig__Forward *fw,
				   migrd_is_local_fn is_local,
				   struct migrd_dest *dest, char *err,
				   size_t err_len)
{
	const struct migrd_host *self, *h;
	char addr[MIGRD_ADDR_MAX];
	unsigned char buf[16];
	Vmig__ErrClass cls;

	memset(dest, 0, sizeof(*dest));
	if (fw->has_dest_gid && fw->dest_host) {
		snprintf(err, err_len, "give dest_gid or dest_host, not both");
		return VMIG__ERR_CLASS__ERR_BAD_REQUEST;
	}
	if (!fw->has_dest_gid && (!fw->dest_host || !*fw->dest_host)) {
		dest->local = true;
		snprintf(dest->name, sizeof(dest->name), "%s", cfg->host);
		return 0;
	}
	if (fw->has_dest_gid) {
		cls = migrd_gid_to_addr(&fw->dest_gid, addr, err, err_len);
		if (cls)
			return cls;
	} else {
		if (strlen(fw->dest_host) >= MIGRD_ADDR_MAX) {
			snprintf(err, err_len, "dest_host too long");
			return VMIG__ERR_CLASS__ERR_BAD_REQUEST;
		}
		snprintf(addr, sizeof(addr), "%s", fw->dest_host);
	}
	if (!strcmp(addr, cfg->host))
		goto local;
	self = migrd_config_find_host(cfg, cfg->host);
	/* two migrd may share an address (loopback tests): prefer this one */
	if (self && !strcmp(self->addr, addr))
		goto local;
	h = migrd_config_find_host(cfg, addr);
	if (h) {
		snprintf(dest->name, sizeof(dest->name), "%s", h->name);
		snprintf(dest->addr, sizeof(dest->addr), "%s", h->addr);
		dest->port = h->port;
		return 0;
	}
	if (is_local && is_local(addr))
		goto local;
	if (inet_pton(AF_INET, addr, buf) != 1 &&
	    inet_pton(AF_INET6, addr, buf) != 1) {
		snprintf(err, err_len, "unknown host '%s' (not in the config)",
			 addr);
		return VMIG__ERR_CLASS__ERR_NOT_FOUND;
	}
	/* an address outside the config: its migrd on the cluster's port */
	snprintf(dest->name, sizeof(dest->name), "%s", addr);
	snprintf(dest->addr, sizeof(dest->addr), "%s", addr);
	dest->port = cfg->port;
	return 0;
local:
	dest->local = true;
	snprintf(dest->name, sizeof(dest->name), "%s", cfg->host);
	return 0;
}

struct target {
	struct migrd_proc proc;
	bool scanned;		/* found as a socket file, never registered */
	const char *host;
	const Vmig__CtlMsg *req;
	int timeout_ms;
	pthread_t th;
	bool started;
	int ret;
	Vmig__CtlMsg *reply;
	char err[256];
};

static void *target_run(void *arg)
{
	struct target *t = arg;

	t->ret = migrd_call_shim(t->proc.ctl_path, t->host, t->req,
				 t->timeout_ms, &t->reply, t->err,
				 sizeof(t->err));
	return NULL;
}

/* Shim sockets in run_dir whose shim never registered (or lost its
 * registration connection but still serves). */
static int add_scanned(struct migrd *d, struct target **tp, int n,
		       const Vmig__Forward *fw, pid_t skip_pid)
{
	struct target *t = *tp;
	struct dirent *e;
	DIR *dir;
	int pid, i, len;

	if (fw && fw->dest_guest)	/* unregistered: guest unknown */
		return n;
	dir = opendir(d->cfg.run_dir);
	if (!dir)
		return n;
	while ((e = readdir(dir)) && n < MAX_TARGETS) {
		char path[MIGRD_PATH_MAX];
		struct target *nt;

		if (sscanf(e->d_name, "shim-%d.sock%n", &pid, &len) != 1 ||
		    e->d_name[len] || pid <= 0)
			continue;
		if ((fw && fw->has_dest_pid && (pid_t)fw->dest_pid != pid) ||
		    pid == skip_pid)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", d->cfg.run_dir,
			     e->d_name) >= (int)sizeof(path))
			continue;
		for (i = 0; i < n; i++)
			if (!strcmp(t[i].proc.ctl_path, path))
				break;
		if (i < n)
			continue;
		nt = realloc(t, (n + 1) * sizeof(*t));
		if (!nt)
			break;
		t = nt;
		memset(&t[n], 0, sizeof(t[n]));
		t[n].proc.pid = pid;
		t[n].scanned = true;
		strcpy(t[n].proc.ctl_path, path);
		n++;
	}
	closedir(dir);
	*tp = t;
	return n;
}

static Vmig__CtlMsg *deliver_local(struct migrd *d, const Vmig__CtlMsg *req,
				   const Vmig__Forward *fw, pid_t skip_pid)
{
	const Vmig__CtlMsg *inner = fw->inner;
	struct migrd_proc *procs = NULL;
	struct target *t = NULL;
	Vmig__CtlMsg *reply = NULL;
	int timeout_ms = fw->has_timeout_ms && fw->timeout_ms ?
				 (int)fw->timeout_ms :
				 (int)d->cfg.forward_timeout_ms;
	int n, i, k;

	n = migrd_registry_find(&d->reg, fw->dest_guest,
				fw->has_dest_pid ? (pid_t)fw->dest_pid : 0,
				skip_pid, &procs);
	if (n < 0)
		return NULL;
	if (n > MAX_TARGETS)
		n = MAX_TARGETS;
	t = calloc(n ? n : 1, sizeof(*t));
	if (!t)
		goto out;
	for (i = 0; i < n; i++)
		t[i].proc = procs[i];
	n = add_scanned(d, &t, n, fw, skip_pid);
	if (n == 0 && (fw->dest_guest || fw->has_dest_pid)) {
		reply = vmig_msg_error(req->seq, VMIG__ERR_CLASS__ERR_NOT_FOUND,
				       0, "no process%s%s%s on host %s",
				       fw->dest_guest ? " of guest " : "",
				       fw->dest_guest ? fw->dest_guest : "",
				       fw->has_dest_pid ? " with that pid" : "",
				       d->cfg.host);
		goto out;
	}
	pr_debug("%s to %d shim(s), bound %d ms",
		 vmig_ctl_type_name(inner->type), n, timeout_ms);
	for (i = 0; i < n; i++) {
		t[i].host = d->cfg.host;
		t[i].req = inner;
		t[i].timeout_ms = timeout_ms;
		t[i].started = !pthread_create(&t[i].th, NULL, target_run,
					       &t[i]);
		if (!t[i].started)	/* out of threads: do it inline */
			target_run(&t[i]);
	}
	for (i = 0; i < n; i++)
		if (t[i].started)
			pthread_join(t[i].th, NULL);

	reply = vmig_msg_new(VMIG__CTL_TYPE__CTL_OK, req->seq);
	if (!reply)
		goto out;
	reply->replies = calloc(n ? n : 1, sizeof(*reply->replies));
	if (!reply->replies) {
		vmig_ctl_free(reply);
		reply = NULL;
		goto out;
	}
	for (i = 0, k = 0; i < n; i++) {
		Vmig__CtlMsg *r = t[i].reply;

		if (t[i].ret && t[i].scanned) {
			/* a stale socket file: its process is gone */
			pr_debug("skipping %s: %s", t[i].proc.ctl_path,
				 t[i].err);
			continue;
		}
		if (t[i].ret) {
			pr_warn("%s", t[i].err);
			r = vmig_msg_error(inner->seq,
					   VMIG__ERR_CLASS__ERR_UNREACHABLE,
					   -t[i].ret, "%s", t[i].err);
			if (!r)
				continue;
		}
		t[i].reply = NULL;
		reply->replies[k++] = r;
		vmig_msg_tag(r, t[i].proc.pid, t[i].proc.guest, d->cfg.host);
	}
	reply->n_replies = k;
out:
	if (t)
		for (i = 0; i < n; i++)
			vmig_ctl_free(t[i].reply);
	free(t);
	free(procs);
	return reply;
}

static Vmig__CtlMsg *deliver_remote(struct migrd *d, const Vmig__CtlMsg *req,
				    const struct migrd_dest *dest)
{
	const Vmig__Forward *fw = req->forward;
	int bound = (fw->has_timeout_ms && fw->timeout_ms ?
			     (int)fw->timeout_ms :
			     (int)d->cfg.forward_timeout_ms) +
		    REMOTE_MARGIN_MS;
	Vmig__CtlMsg *reply = NULL;
	char err[512];
	int ret;

	ret = migrd_pool_call(&d->peers, dest->addr, dest->port, d->cfg.host,
			      &d->key, req, (int)d->cfg.connect_timeout_ms,
			      bound, &reply, err, sizeof(err));
	if (ret) {
		pr_warn("forward to host %s: %s", dest->name, err);
		return vmig_msg_error(req->seq,
				      ret == -EACCES ?
					       VMIG__ERR_CLASS__ERR_AUTH :
					       VMIG__ERR_CLASS__ERR_UNREACHABLE,
				      -ret, "host %s: %s", dest->name, err);
	}
	reply->has_seq = 1;
	reply->seq = req->seq;
	return reply;
}

Vmig__CtlMsg *migrd_relay_forward(struct migrd *d, const Vmig__CtlMsg *req,
				  bool from_peer, pid_t skip_pid)
{
	const Vmig__Forward *fw = req->forward;
	struct migrd_dest dest;
	Vmig__ErrClass cls;
	char err[256];

	if (!fw || !fw->inner)
		return vmig_msg_error(req->seq,
				      VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "FORWARD without an inner message");
	if (!fw->inner->has_type ||
	    fw->inner->type == VMIG__CTL_TYPE__CTL_HELLO ||
	    fw->inner->type == VMIG__CTL_TYPE__CTL_FORWARD ||
	    fw->inner->type == VMIG__CTL_TYPE__CTL_NONE)
		return vmig_msg_error(req->seq,
				      VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "FORWARD cannot carry %s",
				      vmig_ctl_type_name(fw->inner->type));
	if (fw->dest_guest && !migrd_name_valid(fw->dest_guest))
		return vmig_msg_error(req->seq,
				      VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "bad dest_guest name");
	if (fw->has_timeout_ms && fw->timeout_ms > 600000)
		return vmig_msg_error(req->seq,
				      VMIG__ERR_CLASS__ERR_BAD_REQUEST, 0,
				      "timeout_ms above 600000");
	if (from_peer)
		return deliver_local(d, req, fw, 0);
	cls = migrd_relay_resolve(&d->cfg, fw, migrd_addr_is_local, &dest, err,
				  sizeof(err));
	if (cls)
		return vmig_msg_error(req->seq, cls, 0, "%s", err);
	if (dest.local)
		return deliver_local(d, req, fw, skip_pid);
	return deliver_remote(d, req, &dest);
}
