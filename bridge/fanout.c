/*
 * fanout.c: the daemon's side of the fan-out engine, and the public API
 * of upbridged.h that the daemon and the control socket call.
 *
 * The engine (engine/engine.h) owns the links, the UP sessions, the
 * repair planners and the pacer; it knows no campaign.  This file gives
 * it what it needs and hears what happens:
 *  - a clock: CLOCK_MONOTONIC, and the engine's one deadline as one
 *    libevent timer (eng_ev) that calls eng_run();
 *  - the transport instances of the config, opened as links with the
 *    profile of the [fanout] section;
 *  - its callbacks, wired to campaigns (campaign.c): a member's state
 *    and progress are persisted, its final result is reported and
 *    committed before the engine acknowledges it, a session that
 *    settles may finish its campaign, an ANNOUNCE goes to the registry
 *    and the deployments, a late RESULT loads the campaign it belongs to.
 * Campaigns live in campaign.c, a campaign's session on one link in
 * fo_session.c, cut-through in stream.c, the views in fanout_json.c;
 * docs/fanout.md has the design of this side, docs/engine.md the engine.
 */
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/time.h>

#include <event2/event.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fanout_internal.h"
#include "stream.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

uint64_t
fanout__now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

uint64_t
fanout__now_ms(void)
{
	return (fanout__now_us() / 1000);
}

int64_t
fanout__unix_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

uint32_t
fanout__random_u32(void)
{
	uint32_t	 v = 0;

	while (v == 0) {
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			fatal("getrandom");
	}
	return (v);
}

void
fanout__strlcpy(char *dst, const char *src, size_t size)
{
	size_t	 n = strlen(src);

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
fanout__set_report_hook(struct fanout *f, fanout_report_fn *fn, void *arg)
{
	f->report_hook = fn;
	f->report_arg = arg;
}

void
fanout__params(const struct ub_config *c, struct eng_params *p)
{
	const char	*v = c->fec_proactive;
	long		 pct;

	memset(p, 0, sizeof(*p));
	p->block_size = c->block_size;
	p->rate_pct = c->rate_pct;
	p->offer_window_ms = c->offer_window_ms;
	p->offer_repeats = c->offer_repeats;
	p->status_window_ms = c->status_window_ms;
	p->max_rounds = c->max_rounds;
	p->activate_delay_ms = c->activate_delay_ms;
	p->result_timeout_s = c->result_timeout_s;
	p->discover_interval_s = c->discover_interval_s;
	p->session_deadline_s = c->session_deadline_s;
	p->fec = c->fec != 0;
	p->fec_k = c->fec_k;
	p->fec_proactive = ENG_FEC_AUTO;
	if (v != NULL && strcmp(v, "auto") != 0) {
		pct = strtol(v, NULL, 10);
		p->fec_proactive = pct <= 0 ? 0 : pct > 100 ? 100 : (int)pct;
	}
	p->xor_repair = c->xor_repair != 0;
	p->node_hash_kbs = c->node_hash_kbs;
	p->unicast_slots = c->unicast_slots;
	p->poll_broadcast = c->poll_broadcast != 0;
	p->node_busy_ms = c->node_busy_s * 1000;
	p->offload = c->offload != 0;
	p->offload_idle_s = c->offload_idle_s;
}

/* A transport's profile: [fanout] with its section's overrides. */
static void
fanout_link_params(const struct ub_config *c,
    const struct ub_transport_conf *tc, struct eng_params *p)
{
	static const struct {
		const char	*key;
		uint32_t	 bit;
	} fixed[] = {
		{ "offer_window_ms", ENG_FIX_OFFER_WINDOW },
		{ "status_window_ms", ENG_FIX_STATUS_WINDOW },
		{ "discover_interval_s", ENG_FIX_DISCOVER },
		{ "result_timeout_s", ENG_FIX_RESULT_TIMEOUT }
	};
	struct ub_config	 lc;
	size_t			 i, j;

	if (config_link(c, tc, &lc) == -1)
		lc = *c;	/* checked at load: cannot happen */
	fanout__params(&lc, p);
	/*
	 * What the transport's own section sets is used as given; the rest
	 * the engine derives from the link, never below [fanout]'s
	 * (docs/engine.md, "The link profile").
	 */
	for (i = 0; i < tc->nlink; i++)
		for (j = 0; j < sizeof(fixed) / sizeof(fixed[0]); j++)
			if (strcmp(tc->link_kv[i].key, fixed[j].key) == 0)
				p->fixed |= fixed[j].bit;
	/*
	 * [fanout] values the operator chose: the engine warns where a link
	 * needs longer ones (docs/upbridged.conf.5, "Link profiles").
	 */
	for (j = 0; j < sizeof(fixed) / sizeof(fixed[0]); j++)
		if (config_given(c, "fanout", fixed[j].key))
			p->given |= fixed[j].bit;
}

/* ------------------------------------------------------------------ */
/* The engine's clock: one libevent timer for its one deadline          */

/*
 * CLOCK_MONOTONIC, or, with [fanout] time_scale S (a simulated medium on
 * a compressed clock, docs/simulator.md), a clock that runs S times as
 * fast from the engine's start on: windows, pacing and the duty-cycle
 * ledger then count simulated time, as the simulator and the nodes do.
 */
static uint64_t
fanout_clock_now(void *arg)
{
	struct fanout	*f = arg;
	uint64_t	 now = fanout__now_us();

	if (f->time_scale <= 1)
		return (now);
	return (f->clock_t0 + (now - f->clock_t0) * f->time_scale);
}

static void
fanout_clock_arm(void *arg, uint64_t at)
{
	struct fanout	*f = arg;
	struct timeval	 tv;
	uint64_t	 now, d;

	if (f->eng_ev == NULL)
		return;
	if (at == UINT64_MAX) {
		evtimer_del(f->eng_ev);
		return;
	}
	now = fanout_clock_now(f);
	d = at > now ? at - now : 0;
	if (f->time_scale > 1)
		d /= f->time_scale;
	tv.tv_sec = d / 1000000;
	tv.tv_usec = d % 1000000;
	evtimer_add(f->eng_ev, &tv);
}

static void
fanout_eng_cb(int fd, short ev, void *arg)
{
	struct fanout	*f = arg;

	eng_run(f->eng);
}

/* ------------------------------------------------------------------ */
/* The engine's callbacks                                               */

/* The member's facts as the engine has them. */
static void
fanout_mirror(struct fo_member *m)
{
	struct eng_member_info	 mi;

	eng_member_info(m->em, &mi);
	m->state = mi.state;
	m->result = mi.result;
	m->held = mi.held;
	m->addr = mi.addr;
}

static void
fanout_cb_member(void *arg, struct eng_member *em, enum eng_mev ev)
{
	struct fo_member	*m = eng_member_udata(em);
	struct eng_session_info	 si;

	if (m == NULL)
		return;
	fanout_mirror(m);
	if (ev == ENG_MEV_STARTED) {
		/* Its share of the session's bytes counts from here. */
		if (m->started == 0)
			m->started = fanout__unix_ms();
		session__info(m->s, &si);
		m->bytes_base = si.bytes_sent;
		return;
	}
	campaign__put_member(m);
	if (ev == ENG_MEV_STATE && m->state == ENG_M_VERIFIED &&
	    m->c->rollout[0] != '\0')
		rollout__verified(m);
}

static void
fanout_cb_member_final(void *arg, struct eng_member *em, const char *version,
    const char *why)
{
	struct fo_member	*m = eng_member_udata(em);
	struct eng_session_info	 si;

	if (m == NULL)
		return;
	/* The session's bytes while it took part, up to now. */
	session__info(m->s, &si);
	if (!ENG_M_FINAL(m->state) && m->started != 0 &&
	    si.bytes_sent >= m->bytes_base) {
		m->bytes_sent += si.bytes_sent - m->bytes_base;
		m->bytes_base = si.bytes_sent;
	}
	fanout_mirror(m);
	/* A write-off, or a busy decline: the real reason (issue 7). */
	if (why != NULL)
		log_info("campaign %s: node 0x%016" PRIx64 " %s: %s",
		    m->c->id, m->node, m->state == ENG_M_DECLINED ?
		    "declined" : "written off", why);
	campaign__final(m, version, why == NULL);
}

static bool
fanout_cb_member_revive(void *arg, struct eng_member *em)
{
	struct fo_member	*m = eng_member_udata(em);

	/* Lost, busy or reset within its tries; a rollout's if it retries. */
	if (m == NULL || !campaign__active(m->c) || !campaign__revivable(m))
		return (false);
	m->tries++;
	m->result = UP_R_INITIAL;
	m->finished = 0;
	log_info("campaign %s: node 0x%016" PRIx64 " is back", m->c->id,
	    m->node);
	return (true);
}

/* Offer time: the node as it is now (campaign__offer_ok, issue 7). */
static bool
fanout_cb_member_offer(void *arg, struct eng_member *em)
{
	struct fo_member	*m = eng_member_udata(em);

	return (m == NULL || campaign__offer_ok(m));
}

static int
fanout_cb_stranger(void *arg, struct eng_session *es, uint64_t node,
    const struct tp_addr *src)
{
	struct fanout			*f = arg;
	struct fo_session		*s = eng_session_udata(es);
	const struct registry_node	*n;
	struct fo_member		*m;

	if (campaign__member(s->c, node) == NULL &&
	    (n = registry_get(f->reg, node)) != NULL)
		/* Known but not assigned yet (its ANNOUNCE raced the OFFER). */
		campaign__assign_node(f, n);
	if ((m = campaign__member(s->c, node)) == NULL)
		return (-1);	/* not targeted: it must not install this */
	return (m->s == s && m->em != NULL ? 1 : 0);
}

static void
fanout_cb_session_save(void *arg, struct eng_session *es, bool durable)
{
	struct fanout		*f = arg;
	struct fo_session	*s = eng_session_udata(es);
	struct eng_link		*l;
	struct eng_link_info	 li;

	campaign__put_session(s);
	/* The link's tag counter moved when the session took its tag. */
	if ((l = eng_link_find(f->eng, s->transport)) != NULL) {
		eng_link_info(l, &li);
		campaign__ctag_put(f, s->transport, li.ctag_next);
	}
	if (durable)
		db_commit_now(f->db);
}

static void
fanout_cb_session_settled(void *arg, struct eng_session *es)
{
	struct fo_session	*s = eng_session_udata(es);

	campaign__check_done(s->c);
}

static void
fanout_cb_session_error(void *arg, struct eng_session *es)
{
	struct fo_session	*s = eng_session_udata(es);

	campaign__blob_error(s->c);
}

static void
fanout_cb_announce(void *arg, struct eng_link *l, const struct tp_addr *src,
    const struct up_announce *a)
{
	struct fanout			*f = arg;
	const struct registry_node	*node;
	char				 text[TP_ADDR_TEXT_MAX];

	if (eng_link_addr_fmt(l, src, text, sizeof(text)) == -1)
		snprintf(text, sizeof(text), "?");
	if (registry_announce(f->reg, a, eng_link_name(l), src, text,
	    fanout__unix_ms() / 1000) == -1) {
		log_debug("%s: ANNOUNCE from %s not recorded",
		    eng_link_name(l), text);
		return;
	}
	if ((node = registry_get(f->reg, a->node_id)) != NULL)
		campaign__node_seen(f, node, a);
	fanout__route_heard(f, l, src, a->node_id);
}

static void
fanout_cb_peer_route(void *arg, struct eng_link *l,
    const struct tp_addr *peer, const struct tp_addr *parent, uint8_t level)
{
	fanout__route(arg, l, peer, parent, level);
}

static void
fanout_cb_unknown_session(void *arg, struct eng_link *l, uint32_t id,
    const struct up_msg *m)
{
	struct fanout	*f = arg;

	/* A late result: the campaign that owned the session, from disk. */
	if (m->type == UP_T_RESULT)
		campaign__load_by_session(f, id);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

static void
fanout_start_cb(int fd, short ev, void *arg)
{
	campaign__start_all(arg);
	stream__watch(arg);
}

struct fanout *
fanout_new(struct event_base *base, const struct ub_config *conf,
    sqlite3 *db, struct cache *cache, struct registry *reg, char **cause)
{
	struct fanout		*f;
	struct eng_clock	 clock;
	struct eng_cb		 cb;
	struct eng_params	 p;

	f = xcalloc(1, sizeof(*f));
	f->base = base;
	f->conf = conf;
	f->db = db;
	f->cache = cache;
	f->reg = reg;
	TAILQ_INIT(&f->deploys);
	TAILQ_INIT(&f->campaigns);
	TAILQ_INIT(&f->rollouts);

	if ((f->eng_ev = evtimer_new(base, fanout_eng_cb, f)) == NULL)
		fatalx("fanout: evtimer_new");
	f->time_scale = conf->time_scale > 1 ? conf->time_scale : 1;
	f->clock_t0 = fanout__now_us();
	if (f->time_scale > 1)
		log_warnx("fanout: time_scale %u: the engine's clock runs %u "
		    "times real time (simulation only)", f->time_scale,
		    f->time_scale);
	memset(&clock, 0, sizeof(clock));
	clock.arg = f;
	clock.now_us = fanout_clock_now;
	clock.arm = fanout_clock_arm;
	clock.scale = f->time_scale;
	memset(&cb, 0, sizeof(cb));
	cb.arg = f;
	cb.member = fanout_cb_member;
	cb.member_final = fanout_cb_member_final;
	cb.member_revive = fanout_cb_member_revive;
	cb.member_offer = fanout_cb_member_offer;
	cb.stranger = fanout_cb_stranger;
	cb.session_save = fanout_cb_session_save;
	cb.session_settled = fanout_cb_session_settled;
	cb.session_error = fanout_cb_session_error;
	cb.announce = fanout_cb_announce;
	cb.unknown_session = fanout_cb_unknown_session;
	cb.peer_route = fanout_cb_peer_route;
	fanout__params(conf, &p);
	f->eng = eng_new(base, &clock, &cb, &p);

	if (campaign__init(f, cause) == -1 ||
	    campaign__load_all(f, cause) == -1 ||
	    rollout__init(f, cause) == -1) {
		fanout_free(f);
		return (NULL);
	}
	/* Resumed campaigns fetch and verify once the loop runs. */
	if ((f->start_ev = evtimer_new(base, fanout_start_cb, f)) == NULL)
		fatalx("fanout: evtimer_new");
	event_active(f->start_ev, EV_TIMEOUT, 1);
	return (f);
}

void
fanout_free(struct fanout *f)
{
	if (f == NULL)
		return;
	if (!f->stopping)
		fanout_shutdown(f);
	rollout__fini(f);
	stream__fini(f);
	campaign__fini(f);
	eng_free(f->eng);
	fanout__route_fini(f);
	if (f->eng_ev != NULL)
		event_free(f->eng_ev);
	if (f->start_ev != NULL)
		event_free(f->start_ev);
	free(f);
}

void
fanout_set_uplink(struct fanout *f, struct uplink *u)
{
	f->uplink = u;
	campaign__flush_unreported(f);
}

int
fanout_open_transports(struct fanout *f, char **cause)
{
	const struct ub_transport_conf	*tc;
	struct eng_params		 p;
	struct eng_link			*l;
	size_t				 i;
	int				 next;

	for (i = 0; i < f->conf->ntransports; i++) {
		tc = &f->conf->transports[i];
		if (eng_link_find(f->eng, tc->name) != NULL)
			continue;	/* already open */
		if (tc->ops == NULL || tc->ops->abi != TP_ABI_VERSION) {
			xasprintf(cause, "transport %s: no plugin \"%s\" of "
			    "ABI %d", tc->name, tc->type != NULL ? tc->type :
			    "?", TP_ABI_VERSION);
			return (-1);
		}
		/* [fanout], its own overrides and node_silence_s. */
		fanout_link_params(f->conf, tc, &p);
		p.node_silence_ms = tc->node_silence_s * 1000;
		if ((l = eng_link_open(f->eng, tc->name, tc->ops, &tc->conf,
		    &p, cause)) == NULL) {
			if (*cause == NULL)
				*cause = xstrdup("cannot open a transport");
			return (-1);
		}
		/* Session tags go on from where they were (§11.4). */
		if ((next = campaign__ctag_get(f, tc->name)) > 0)
			eng_link_set_ctag_next(l, (uint8_t)next);
	}
	return (0);
}

void
fanout_reconfig(struct fanout *f, const struct ub_config *conf)
{
	struct eng_params	 p;
	struct eng_link		*l;
	size_t			 i;

	f->conf = conf;
	fanout__params(conf, &p);
	eng_set_params(f->eng, &p);
	/*
	 * Each link: its own [fanout] overrides and node_silence_s (a
	 * restart changes that).
	 */
	for (i = 0; i < conf->ntransports; i++) {
		if ((l = eng_link_find(f->eng, conf->transports[i].name)) ==
		    NULL)
			continue;
		fanout_link_params(conf, &conf->transports[i], &p);
		p.node_silence_ms = conf->transports[i].node_silence_s * 1000;
		eng_link_set_params(l, &p);
	}
}

void
fanout_manifest(struct fanout *f, const struct uplink_manifest *m)
{
	campaign__manifest(f, m);
	stream__watch(f);	/* cut-through as the downloads begin */
}

void
fanout_package_ready(struct fanout *f, const uint8_t *sha)
{
	stream__package_ready(f, sha);
	campaign__package_ready(f, sha);
}

void
fanout_package_progress(struct fanout *f, const uint8_t *sha,
    uint64_t verified)
{
	stream__progress(f, sha, verified);
}

void
fanout_package_failed(struct fanout *f, const uint8_t *sha, const char *why)
{
	campaign__package_failed(f, sha, why);
	stream__package_failed(f, sha);
}

void
fanout_cron(struct fanout *f)
{
	if (f->stopping)
		return;
	/* DISCOVER rounds are the engine's (discover_interval_s). */
	campaign__cron(f);
	rollout__cron(f);
	stream__watch(f);
}

void
fanout_shutdown(struct fanout *f)
{
	struct fo_campaign	*c;
	struct fo_session	*s;
	struct fo_member	*m;

	f->stopping = true;
	if (f->start_ev != NULL)
		event_del(f->start_ev);
	if (f->tick_ev != NULL)
		event_del(f->tick_ev);
	if (f->place_ev != NULL)
		event_del(f->place_ev);
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (c->check_ev != NULL)
			event_del(c->check_ev);
		TAILQ_FOREACH(s, &c->sessions, centry) {
			session__stop(s);
			campaign__put_session(s);
		}
		TAILQ_FOREACH(m, &c->members, centry)
			if (!ENG_M_FINAL(m->state))
				campaign__put_member(m);
	}
	db_commit_now(f->db);
}

int
fanout_campaign_pause(struct fanout *f, const char *id, char **cause)
{
	struct fo_campaign	*c;

	if ((c = campaign__find(f, id)) == NULL) {
		xasprintf(cause, "unknown campaign %s", id);
		return (-1);
	}
	return (campaign__pause(c, cause));
}

int
fanout_campaign_resume(struct fanout *f, const char *id, char **cause)
{
	struct fo_campaign	*c;

	if ((c = campaign__find(f, id)) == NULL) {
		xasprintf(cause, "unknown campaign %s", id);
		return (-1);
	}
	return (campaign__resume(c, cause));
}

int
fanout_campaign_cancel(struct fanout *f, const char *id, char **cause)
{
	struct fo_campaign	*c;

	if ((c = campaign__find(f, id)) == NULL) {
		xasprintf(cause, "unknown campaign %s", id);
		return (-1);
	}
	return (campaign__cancel(c, cause));
}
