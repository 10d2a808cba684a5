// SPDX-License-Identifier: MIT
/*
 * rdma_stress: a traffic checker for RDMA verbs (see docs/rdma_stress.md).
 *
 * main(): the command line, the side channel handshake, the final reports
 * and the one summary line. The traffic is in stress_traffic.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "rdma_stress.h"

static int handshake(struct stress_ctx *c, struct stress_opts *o, int chan)
{
	struct stress_info mine, peer;
	uint8_t b;

	if (o->server) {
		if (stress_chan_recv_opts(chan, o))
			return -1;
		if (stress_res_open(c, o))
			return -1;
		if (stress_chan_recv_info(chan, &peer))
			return -1;
		stress_res_info(c, &mine);
		if (stress_chan_send_info(chan, &mine))
			return -1;
	} else {
		if (stress_chan_send_opts(chan, o))
			return -1;
		stress_res_info(c, &mine);
		if (stress_chan_send_info(chan, &mine))
			return -1;
		if (stress_chan_recv_info(chan, &peer))
			return -1;
	}
	if (stress_res_connect(c, &peer))
		return -1;
	/* both sides have receives posted and QPs in RTS from here */
	if (stress_chan_send_byte(chan, 'R') || stress_chan_recv_byte(chan, &b))
		return -1;
	if (b != 'R') {
		stress_err("side channel: unexpected byte 0x%02x", b);
		return -1;
	}
	return 0;
}

/*
 * --close-chan: the server listens again, the client connects again; both
 * prove they are the same pair as before with their seeds.
 */
static int rejoin(const struct stress_ctx *c, const struct stress_opts *o)
{
	unsigned int t = o->timeout_s + 60;
	uint64_t seed;
	int chan;

	stress_verbose(o, "side channel: %s again for the reports",
			o->server ? "listening" : "connecting");
	chan = o->server ? stress_chan_listen(o->port, t) :
			   stress_chan_connect(o->host, o->port, t);
	if (chan < 0)
		return -1;
	if (stress_chan_set_timeout(chan, t) ||
	    stress_chan_send_u64(chan, c->seed) ||
	    stress_chan_recv_u64(chan, &seed))
		goto fail;
	if (seed != c->peer_seed) {
		stress_err("side channel: another rdma_stress connected "
			   "(seed %016" PRIx64 ", expected %016" PRIx64 ")",
			   seed, c->peer_seed);
		goto fail;
	}
	return chan;
fail:
	close(chan);
	return -1;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* Compares our counts with the peer's report; returns true if all is well. */
static bool judge(const struct stress_ctx *c, const struct stress_report *peer,
		  bool aborted, struct stress_counts *cnt)
{
	bool atomics = c->o->ops & STRESS_OP_ATOMIC;

	if (peer->nqps != c->nrc) {
		stress_err("the peer reported %u QPs, we have %u", peer->nqps,
			   c->nrc);
		cnt->errors++;
		return false;
	}
	for (unsigned int i = 0; i < c->nrc; i++) {
		const struct stress_ep *ep = &c->rc[i];
		uint64_t lost = sub0(peer->rc_sent[i], ep->flow.rcvd);

		if (lost)
			stress_err("RC qp %u: the peer sent %" PRIu64
				   " messages, %" PRIu64 " arrived",
				   ep->qp->qp_num, peer->rc_sent[i],
				   ep->flow.rcvd);
		cnt->lost += lost;
		if (!atomics || aborted || peer->aborted)
			continue;
		if (peer->faa_word[i] != ep->faa_posted) {
			stress_err("RC qp %u: the peer's counter is %" PRIu64
				   " after our %" PRIu64 " fetch-and-adds",
				   ep->qp->qp_num, peer->faa_word[i],
				   ep->faa_posted);
			cnt->atomic_bad++;
		}
		if (peer->cas_word[i] != ep->cas_value) {
			stress_err("RC qp %u: the peer's CAS word is %" PRIu64
				   ", expected %" PRIu64, ep->qp->qp_num,
				   peer->cas_word[i], ep->cas_value);
			cnt->atomic_bad++;
		}
	}
	if (c->ud) {
		uint64_t lost = sub0(peer->ud_sent, c->ud->flow.rcvd);

		if (lost)
			stress_err("UD: the peer sent %" PRIu64 " datagrams, %"
				   PRIu64 " arrived", peer->ud_sent,
				   c->ud->flow.rcvd);
		cnt->lost += lost;
	}
	return !aborted && !peer->aborted && !cnt->lost && !cnt->dup &&
	       !cnt->reord && !cnt->corrupt && !cnt->atomic_bad &&
	       !cnt->errors;
}

static void make_report(const struct stress_ctx *c, bool aborted,
			struct stress_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->aborted = aborted;
	rep->nqps = c->nrc;
	if (c->ud)
		rep->ud_sent = c->ud->flow.sent;
	for (unsigned int i = 0; i < c->nrc; i++) {
		const struct stress_ep *ep = &c->rc[i];

		rep->rc_sent[i] = ep->flow.sent;
		rep->faa_word[i] = *(volatile uint64_t *)(ep->xbuf +
							  STRESS_X_FAA);
		rep->cas_word[i] = *(volatile uint64_t *)(ep->xbuf +
							  STRESS_X_CAS);
	}
}

/*
 * After the traffic: (re)join the side channel if needed, tell the peer how
 * it ended, exchange reports and verdicts. Returns the peer's state for the
 * summary: "ok", "failed", or "unreachable" when the exchange broke.
 */
static const char *finish(const struct stress_ctx *c,
			  const struct stress_opts *o, int *chan, bool aborted,
			  struct stress_counts *cnt, bool *ok, bool *peer_ok)
{
	struct stress_report mine, peer;
	uint8_t b;

	*ok = *peer_ok = false;
	if (o->close_chan && (*chan = rejoin(c, o)) < 0)
		return "unreachable";
	/* the peer may still be waiting for completions for a while */
	if (stress_chan_set_timeout(*chan, o->timeout_s + 60) ||
	    stress_chan_send_byte(*chan, aborted ? 'A' : 'F'))
		return "unreachable";
	make_report(c, aborted, &mine);
	if (stress_chan_send_report(*chan, &mine) ||
	    stress_chan_recv_byte(*chan, &b) ||
	    stress_chan_recv_report(*chan, &peer))
		return "unreachable";
	*ok = judge(c, &peer, aborted, cnt);
	if (stress_chan_send_byte(*chan, *ok) ||
	    stress_chan_recv_byte(*chan, &b))
		return "unreachable";
	*peer_ok = b == 1;
	return *peer_ok ? "ok" : "failed";
}

int main(int argc, char **argv)
{
	struct stress_opts o;
	struct stress_ctx c;
	struct stress_counts cnt = { 0 };
	bool aborted = false, ok = false, peer_ok = false;
	const char *peer_state;
	double t0, elapsed;
	char ops[64];
	int chan = -1, ret;

	ret = stress_opts_parse(&o, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	srandom((unsigned int)time(NULL) ^ ((unsigned int)getpid() << 16));
	memset(&c, 0, sizeof(c));

	if (o.server) {
		stress_verbose(&o, "listening on port %s", o.port);
		chan = stress_chan_listen(o.port, o.connect_timeout_s);
		if (chan < 0)
			goto out;
		if (stress_chan_set_timeout(chan, o.connect_timeout_s))
			goto out;
	} else {
		if (stress_res_open(&c, &o))
			goto out;
		chan = stress_chan_connect(o.host, o.port, o.connect_timeout_s);
		if (chan < 0)
			goto out;
		if (stress_chan_set_timeout(chan, o.connect_timeout_s))
			goto out;
	}
	if (handshake(&c, &o, chan))
		goto out;
	stress_verbose(&o, "%s: ops %s, %" PRIu64 " iterations%s, %u QPs, "
			"size %u, depth %u, signal every %u, pause %u ms%s",
			o.server ? "server" : "client",
			stress_ops_str(o.ops, ops, sizeof(ops)), o.iters,
			o.iters ? "" : " (timed)", o.nqps, o.size, o.depth,
			o.signal_every, o.pause_ms,
			o.close_chan ? ", side channel closed meanwhile" : "");
	if (!o.iters)
		stress_verbose(&o, "running for %u s", o.secs);

	if (o.close_chan) {
		close(chan);
		chan = -1;
	}

	t0 = stress_now();
	if (stress_run(&c, chan, &cnt, &aborted))
		goto out;
	elapsed = stress_now() - t0;
	peer_state = finish(&c, &o, &chan, aborted, &cnt, &ok, &peer_ok);

	printf("rdma_stress: sent=%" PRIu64 " received=%" PRIu64
	       " lost=%" PRIu64 " duplicated=%" PRIu64 " reordered=%" PRIu64
	       " corrupted=%" PRIu64 " rdma_write_ok=%" PRIu64
	       " rdma_read_ok=%" PRIu64 " atomic_ok=%" PRIu64 " ud_ok=%" PRIu64
	       " atomic_bad=%" PRIu64 " errors=%" PRIu64 " atomic_unwritten=%"
	       PRIu64 " role=%s api=%s cq=%s elapsed=%.2fs peer=%s result=%s\n",
	       cnt.sent, cnt.rcvd, cnt.lost, cnt.dup, cnt.reord, cnt.corrupt,
	       cnt.write_ok, cnt.read_ok, cnt.atomic_ok, cnt.ud_ok,
	       cnt.atomic_bad, cnt.errors, cnt.atomic_unwritten,
	       o.server ? "server" : "client",
	       o.api_wr ? "wr" : "classic", o.cq_ex ? "ex" : "classic",
	       elapsed, peer_state, ok && peer_ok ? "ok" : "FAILED");
out:
	if (chan >= 0)
		close(chan);
	stress_res_close(&c);
	return ok && peer_ok ? 0 : 1;
}
