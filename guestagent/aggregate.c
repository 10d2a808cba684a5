// SPDX-License-Identifier: MIT
/* Merging the shims' replies into the guest's one reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PREFIX "agent: "
#include "aggregate.h"
#include "ctlmsg.h"
#include "log.h"

/* What a shim answers to each request when it succeeds. */
static Vmig__CtlType reply_type(Vmig__CtlType req)
{
	switch (req) {
	case VMIG__CTL_TYPE__CTL_STATE:
		return VMIG__CTL_TYPE__CTL_STATE;
	case VMIG__CTL_TYPE__CTL_SUSPEND:
		return VMIG__CTL_TYPE__CTL_DRAINED;
	case VMIG__CTL_TYPE__CTL_CAPTURE:
		return VMIG__CTL_TYPE__CTL_CAPTURE;
	case VMIG__CTL_TYPE__CTL_RESTORE:
	case VMIG__CTL_TYPE__CTL_RECONNECT:
		return VMIG__CTL_TYPE__CTL_RECONNECT_INFO;
	case VMIG__CTL_TYPE__CTL_NONE:
	case VMIG__CTL_TYPE__CTL_HELLO:
	case VMIG__CTL_TYPE__CTL_ERROR:
	case VMIG__CTL_TYPE__CTL_OK:
	case VMIG__CTL_TYPE__CTL_DRAINED:
	case VMIG__CTL_TYPE__CTL_TEARDOWN:
	case VMIG__CTL_TYPE__CTL_RECONNECT_INFO:
	case VMIG__CTL_TYPE__CTL_RESUME:
	case VMIG__CTL_TYPE__CTL_FORWARD:
	case VMIG__CTL_TYPE__CTL_ABORT:
	case VMIG__CTL_TYPE__CTL_MIG_PREPARE:
	case VMIG__CTL_TYPE__CTL_MIG_FILE:
	case VMIG__CTL_TYPE__CTL_MIG_RESTORE:
	case VMIG__CTL_TYPE__CTL_MIG_ABORT:
	case VMIG__CTL_TYPE__CTL_MIG_MOVED:
	case _VMIG__CTL_TYPE_IS_INT_SIZE:
		break;
	}
	return VMIG__CTL_TYPE__CTL_OK;
}

int ga_first_error(const struct ga_result *res, size_t n)
{
	size_t i;
	int best = -1;

	for (i = 0; i < n; i++)
		if (!res[i].ok &&
		    (best < 0 || res[i].order < res[best].order))
			best = (int)i;
	return best;
}

/* Moves *n_from pointers of from onto the end of *to. */
static int move_conns(Vmig__Connection ***to, size_t *n_to,
		      Vmig__Connection ***from, size_t *n_from)
{
	Vmig__Connection **v;

	if (!*n_from)
		return 0;
	v = realloc(*to, (*n_to + *n_from) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v + *n_to, *from, *n_from * sizeof(*v));
	*to = v;
	*n_to += *n_from;
	free(*from);
	*from = NULL;
	*n_from = 0;
	return 0;
}

static int merge_state(const struct ga_agent *a, Vmig__CtlMsg *m,
		       struct ga_result *res, size_t n)
{
	Vmig__State *s = malloc(sizeof(*s));
	const char *phase = NULL;
	size_t i;

	if (!s)
		return -ENOMEM;
	vmig__state__init(s);
	m->state = s;
	s->has_pid = s->has_num_qps = s->has_num_mrs = s->has_num_cqs = 1;
	s->pid = (uint32_t)getpid();
	for (i = 0; i < n; i++) {
		Vmig__State *r = res[i].reply->state;

		if (!r)
			continue;
		if (!phase)
			phase = r->phase ? r->phase : "unknown";
		else if (strcmp(phase, r->phase ? r->phase : "unknown"))
			phase = "mixed";
		s->num_qps += r->num_qps;
		s->num_mrs += r->num_mrs;
		s->num_cqs += r->num_cqs;
		/* every endpoint names its pid: the list can be one */
		if (move_conns(&s->conns, &s->n_conns, &r->conns, &r->n_conns))
			return -ENOMEM;
	}
	s->guest = strdup(a->guest);
	s->phase = strdup(phase ? phase : "none");
	return s->guest && s->phase ? 0 : -ENOMEM;
}

static int merge_drained(Vmig__CtlMsg *m, struct ga_result *res, size_t n)
{
	Vmig__Drained *d = malloc(sizeof(*d));
	size_t i;

	if (!d)
		return -ENOMEM;
	vmig__drained__init(d);
	m->drained = d;
	d->has_qps = d->has_drain_us = d->has_held_posts = 1;
	for (i = 0; i < n; i++) {
		const Vmig__Drained *r = res[i].reply->drained;

		if (!r)
			continue;
		d->qps += r->qps;
		d->held_posts += r->held_posts;
		/* the guest is drained when its slowest process is */
		if (r->drain_us > d->drain_us)
			d->drain_us = r->drain_us;
	}
	return 0;
}

static int merge_reconnect_info(const struct ga_agent *a, Vmig__CtlMsg *m,
				struct ga_result *res, size_t n)
{
	Vmig__ReconnectInfo *ri = malloc(sizeof(*ri));
	size_t i;

	if (!ri)
		return -ENOMEM;
	vmig__reconnect_info__init(ri);
	m->reconnect_info = ri;
	for (i = 0; i < n; i++) {
		Vmig__ReconnectInfo *r = res[i].reply->reconnect_info;

		if (r && move_conns(&ri->conns, &ri->n_conns, &r->conns,
				    &r->n_conns))
			return -ENOMEM;
	}
	ri->host = strdup(a->host);
	return ri->host ? 0 : -ENOMEM;
}

/* Per step, the slowest process's time: the guest waited that long. */
static int merge_times(Vmig__CtlMsg *m, const struct ga_result *res, size_t n)
{
	size_t i, j, k;

	for (i = 0; i < n; i++) {
		const Vmig__CtlMsg *r = res[i].reply;

		for (j = 0; j < r->n_times; j++) {
			const Vmig__StepTime *t = r->times[j];
			Vmig__StepTime **v, *nt;

			if (!t->step)
				continue;
			for (k = 0; k < m->n_times; k++)
				if (!strcmp(m->times[k]->step, t->step))
					break;
			if (k < m->n_times) {
				if (t->usec > m->times[k]->usec)
					m->times[k]->usec = t->usec;
				continue;
			}
			v = realloc(m->times, (m->n_times + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			m->times = v;
			nt = malloc(sizeof(*nt));
			if (!nt)
				return -ENOMEM;
			vmig__step_time__init(nt);
			nt->has_usec = 1;
			nt->usec = t->usec;
			nt->step = strdup(t->step);
			m->times[m->n_times++] = nt;
			if (!nt->step)
				return -ENOMEM;
		}
	}
	return 0;
}

static Vmig__CtlMsg *error_reply(uint32_t seq, const struct ga_result *r,
				 const char *note)
{
	const Vmig__Error *e = r->reply->error;
	const char *desc = e && e->desc ? e->desc : "failed";
	Vmig__ErrClass cls = e && e->has_class_ ? e->class_ :
						  VMIG__ERR_CLASS__ERR_GENERIC;
	int err_no = e && e->has_err_no ? e->err_no : 0;

	/* the agent's own words about a silent shim already name it */
	if (r->answered)
		return vmig_msg_error(seq, cls, err_no, "pid %d (%s): %s%s",
				      r->shim.pid, r->shim.guest, desc,
				      note ? note : "");
	return vmig_msg_error(seq, cls, err_no, "%s%s", desc, note ? note : "");
}

Vmig__CtlMsg *ga_aggregate(const struct ga_agent *a, Vmig__CtlType req_type,
			   uint32_t seq, struct ga_result *res, size_t n,
			   const char *note)
{
	Vmig__CtlType type = reply_type(req_type);
	Vmig__CtlMsg *m;
	int bad = ga_first_error(res, n), ret = 0;
	size_t i;

	if (bad >= 0) {
		m = error_reply(seq, &res[bad], note);
	} else {
		if (n && res[0].reply->has_type) {
			/* the shims' own type when they agree */
			type = res[0].reply->type;
			for (i = 1; i < n; i++)
				if (res[i].reply->type != type)
					type = reply_type(req_type);
		}
		m = vmig_msg_new(type, seq);
	}
	if (!m)
		return NULL;
	if (bad < 0) {
		switch (type) {
		case VMIG__CTL_TYPE__CTL_STATE:
			ret = merge_state(a, m, res, n);
			break;
		case VMIG__CTL_TYPE__CTL_DRAINED:
			ret = merge_drained(m, res, n);
			break;
		case VMIG__CTL_TYPE__CTL_RECONNECT_INFO:
			ret = merge_reconnect_info(a, m, res, n);
			break;
		case VMIG__CTL_TYPE__CTL_NONE:
		case VMIG__CTL_TYPE__CTL_HELLO:
		case VMIG__CTL_TYPE__CTL_ERROR:
		case VMIG__CTL_TYPE__CTL_OK:
		case VMIG__CTL_TYPE__CTL_SUSPEND:
		case VMIG__CTL_TYPE__CTL_CAPTURE:
		case VMIG__CTL_TYPE__CTL_TEARDOWN:
		case VMIG__CTL_TYPE__CTL_RESTORE:
		case VMIG__CTL_TYPE__CTL_RECONNECT:
		case VMIG__CTL_TYPE__CTL_RESUME:
		case VMIG__CTL_TYPE__CTL_FORWARD:
		case VMIG__CTL_TYPE__CTL_ABORT:
		case VMIG__CTL_TYPE__CTL_MIG_PREPARE:
		case VMIG__CTL_TYPE__CTL_MIG_FILE:
		case VMIG__CTL_TYPE__CTL_MIG_RESTORE:
		case VMIG__CTL_TYPE__CTL_MIG_ABORT:
		case VMIG__CTL_TYPE__CTL_MIG_MOVED:
		case _VMIG__CTL_TYPE_IS_INT_SIZE:
			/* images and the like stay per process in replies[] */
			break;
		}
		if (!ret)
			ret = merge_times(m, res, n);
	}
	if (!ret && n) {
		m->replies = calloc(n, sizeof(*m->replies));
		if (!m->replies)
			ret = -ENOMEM;
	}
	for (i = 0; !ret && i < n; i++) {
		m->replies[m->n_replies++] = res[i].reply;
		res[i].reply = NULL;
	}
	if (ret) {
		pr_err("out of memory building the reply");
		vmig_ctl_free(m);
		return NULL;
	}
	return m;
}
