/*
 * fanout.c: the fan-out engine.
 *
 * Owns the transport instances (one per configured [transport.NAME]
 * section, each one broadcast domain), their pacers and their transmit
 * loops, dispatches received frames to the registry and the sessions, and
 * carries the public API of upbridged.h.  Campaigns live in campaign.c,
 * UP sessions in session.c, pacing in pacer.c, the views in
 * fanout_json.c; docs/fanout.md has the design.
 *
 * Transmit loop, per instance: a control-frame ring (OFFER, STATUS_REQ,
 * VERIFY, ACTIVATE, RESULT_ACK, ABORT, DISCOVER; encoded once when queued)
 * goes before data; data frames come round robin from the sessions in a
 * data pass, read from the cache straight into one preallocated frame.
 * The loop runs from a timer armed for exactly when the pacer allows the
 * next frame, sends what is due (at most FO_TX_BURST frames, then yields
 * to the loop), stops on TP_EAGAIN and resumes from writable().  A frame
 * refused with TP_EAGAIN is kept and sent first later.
 */
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <event2/event.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fanout_internal.h"
#include "stream.h"

static void	 fanout_tx_cb(int, short, void *);
static void	 fanout_discover(struct fanout *);

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

struct fo_tp *
fanout__tp(struct fanout *f, const char *name)
{
	size_t	 i;

	for (i = 0; i < f->ntps; i++)
		if (strcmp(f->tps[i]->name, name) == 0)
			return (f->tps[i]);
	return (NULL);
}

/* ------------------------------------------------------------------ */
/* Transmit                                                             */

void
fanout__kick(struct fo_tp *t)
{
	if (t->tp == NULL || t->tx_ev == NULL || t->pacer.blocked)
		return;
	/* Armed for pacing: that timer will serve the new frame too. */
	if (evtimer_pending(t->tx_ev, NULL))
		return;
	event_active(t->tx_ev, EV_TIMEOUT, 1);
}

int
fanout__ctrl(struct fo_tp *t, struct fo_session *s, const struct tp_addr *dst,
    const struct up_msg *m)
{
	struct fo_ctrl	*e;
	size_t		 cap;
	int		 n;

	if (t->ring_n == FO_CTRL_RING) {
		t->ctrl_dropped++;
		log_debug("%s: control ring full, type %u dropped", t->name,
		    m->type);
		return (-1);
	}
	e = &t->ring[(t->ring_head + t->ring_n) % FO_CTRL_RING];
	cap = sizeof(e->frame);
	if (t->caps.mtu != 0 && t->caps.mtu < cap)
		cap = t->caps.mtu;
	if ((n = up_encode(m, e->frame, cap)) <= 0) {
		t->ctrl_dropped++;
		log_warnx("%s: cannot encode a frame of type %u: %s", t->name,
		    m->type, up_strerror(n));
		return (-1);
	}
	if (dst != NULL)
		e->dst = *dst;
	else
		tp_addr_broadcast(&e->dst);
	e->s = s;
	e->len = (uint16_t)n;
	e->type = m->type;
	t->ring_n++;
	fanout__kick(t);
	return (0);
}

void
fanout__data_add(struct fo_tp *t, struct fo_session *s)
{
	if (s->in_data)
		return;
	TAILQ_INSERT_TAIL(&t->data_sessions, s, tentry);
	s->in_data = true;
	fanout__kick(t);
}

void
fanout__data_remove(struct fo_tp *t, struct fo_session *s)
{
	if (t == NULL || !s->in_data)
		return;
	TAILQ_REMOVE(&t->data_sessions, s, tentry);
	s->in_data = false;
	/* A data frame of it that waits after TP_EAGAIN still goes. */
}

void
fanout__forget_session(struct fo_tp *t, struct fo_session *s)
{
	unsigned int	 i;

	fanout__data_remove(t, s);
	if (t->pend_len != 0 && t->pend_s == s) {
		if (t->pend_ctrl)
			t->pend_s = NULL;
		else
			t->pend_len = 0;	/* its fd is closing */
	}
	for (i = 0; i < t->ring_n; i++)
		if (t->ring[(t->ring_head + i) % FO_CTRL_RING].s == s)
			t->ring[(t->ring_head + i) % FO_CTRL_RING].s = NULL;
}

/* Picks the next frame to send into t->pend; false if none. */
static bool
fanout_fill(struct fo_tp *t)
{
	struct fo_session	*s;
	struct fo_ctrl		*e;
	size_t			 n, cap;

	cap = UP_FRAME_MAX;
	if (t->caps.mtu != 0 && t->caps.mtu < cap)
		cap = t->caps.mtu;
	for (;;) {
		if (t->ring_n > 0) {
			e = &t->ring[t->ring_head];
			t->pend = e->frame;
			t->pend_len = e->len;
			t->pend_dst = e->dst;
			t->pend_s = e->s;
			t->pend_ctrl = true;
			t->pend_type = e->type;
			return (true);
		}
		if ((s = TAILQ_FIRST(&t->data_sessions)) == NULL)
			return (false);
		TAILQ_REMOVE(&t->data_sessions, s, tentry);
		TAILQ_INSERT_TAIL(&t->data_sessions, s, tentry);
		n = session__fill_data(s, t->data_frame, cap, &t->pend_dst);
		if (n > 0) {
			t->pend = t->data_frame;
			t->pend_len = n;
			t->pend_s = s;
			t->pend_ctrl = false;
			t->pend_type = UP_T_DATA;
			return (true);
		}
		/* The pass is over; fill_data took it out of the rotation. */
		if (s->in_data)
			fanout__data_remove(t, s);
	}
}

static void
fanout_sent(struct fo_tp *t)
{
	if (t->pend_ctrl) {
		t->ring_head = (t->ring_head + 1) % FO_CTRL_RING;
		t->ring_n--;
	}
	t->pend_len = 0;
	t->pend = NULL;
}

static void
fanout_tx_arm(struct fo_tp *t, uint64_t us)
{
	struct timeval	 tv;

	tv.tv_sec = us / 1000000;
	tv.tv_usec = us % 1000000;
	evtimer_add(t->tx_ev, &tv);
}

static uint32_t
fanout_airtime(struct fo_tp *t, const struct tp_addr *dst, size_t len)
{
	if (t->ops->airtime != NULL)
		return (t->ops->airtime(t->tp, dst, len));
	return (pacer__airtime(&t->pacer, len));
}

static void
fanout_tx_cb(int fd, short ev, void *arg)
{
	struct fo_tp	*t = arg;
	struct iovec	 iov;
	uint64_t	 now, wait;
	uint32_t	 air;
	int		 n, rc;

	for (n = 0; n < FO_TX_BURST; n++) {
		if (!t->up || t->tp == NULL || t->pacer.blocked)
			return;
		if (t->pend_len == 0 && !fanout_fill(t))
			return;
		now = fanout__now_us();
		air = fanout_airtime(t, &t->pend_dst, t->pend_len);
		wait = pacer__delay(&t->pacer, now, t->pend_len, air);
		if (wait == PACER_WAIT)
			return;
		if (wait > 0) {
			fanout_tx_arm(t, wait);
			return;
		}
		iov.iov_base = (void *)t->pend;
		iov.iov_len = t->pend_len;
		rc = t->ops->send(t->tp, &t->pend_dst, &iov, 1, ++t->cookie);
		switch (rc) {
		case TP_OK:
			pacer__sent(&t->pacer, now, t->pend_len, air);
			if (t->pend_ctrl)
				t->tx_ctrl++;
			else {
				t->tx_data++;
				if (t->pend_len > 2 &&
				    (t->pend[2] & UP_F_REPAIR) != 0)
					t->tx_repair++;
			}
			if (t->pend_s != NULL)
				session__sent(t->pend_s, t->pend_type,
				    t->pend_len);
			fanout_sent(t);
			break;
		case TP_EAGAIN:
			/* Keep the frame; writable() resumes. */
			pacer__eagain(&t->pacer);
			return;
		default:
			t->tx_errors++;
			log_debug("%s: send type %u: error %d", t->name,
			    t->pend_type, rc);
			fanout_sent(t);
			break;
		}
	}
	/* Burst done: let the loop breathe, then go on. */
	fanout_tx_arm(t, 0);
}

/* ------------------------------------------------------------------ */
/* Host callbacks                                                       */

static uint64_t
fanout_host_now_ms(void *arg)
{
	return (fanout__now_ms());
}

static void
fanout_announce(struct fo_tp *t, const struct tp_addr *src,
    const struct up_announce *a)
{
	struct fanout			*f = t->f;
	const struct registry_node	*node;
	char				 text[TP_ADDR_TEXT_MAX];

	if (t->ops->addr_fmt == NULL ||
	    t->ops->addr_fmt(src, text, sizeof(text)) == -1)
		snprintf(text, sizeof(text), "?");
	if (registry_announce(f->reg, a, t->name, src, text,
	    fanout__unix_ms() / 1000) == -1) {
		log_debug("%s: ANNOUNCE from %s not recorded", t->name, text);
		return;
	}
	if ((node = registry_get(f->reg, a->node_id)) != NULL)
		campaign__node_seen(f, node, a);
}

static void
fanout_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	struct fo_tp		*t = arg;
	struct fanout		*f = t->f;
	struct fo_session	*s;
	struct up_msg		 m;
	int			 rc;

	t->rx_frames++;
	if ((rc = up_decode(frame, len, &m)) != UP_OK) {
		t->rx_bad++;
		log_debug("%s: bad frame (%zu bytes): %s", t->name, len,
		    up_strerror(rc));
		return;
	}
	switch (m.type) {
	case UP_T_ANNOUNCE:
		fanout_announce(t, src, &m.u.announce);
		return;
	case UP_T_ACCEPT:
	case UP_T_STATUS:
	case UP_T_RESULT:
	case UP_T_ABORT:
		break;
	default:
		/* Our own frames, heard back on the group. */
		t->rx_ignored++;
		return;
	}
	if (m.type == UP_T_ABORT && m.u.target.node_id == 0) {
		t->rx_ignored++;	/* ours, to every node */
		return;
	}
	if ((s = session__find(f, m.session)) == NULL &&
	    m.type == UP_T_RESULT &&
	    campaign__load_by_session(f, m.session) != NULL)
		s = session__find(f, m.session);	/* a late result */
	if (s == NULL) {
		f->rx_unknown_session++;
		log_debug("%s: type %u for unknown session %08x", t->name,
		    m.type, m.session);
		return;
	}
	switch (m.type) {
	case UP_T_ACCEPT:
		session__accept(s, &m, src);
		break;
	case UP_T_STATUS:
		session__status(s, &m, src);
		break;
	case UP_T_RESULT:
		session__result(s, &m, src);
		break;
	case UP_T_ABORT:
		session__abort(s, &m, src);
		break;
	}
}

static void
fanout_writable(void *arg, struct tp *tp)
{
	struct fo_tp	*t = arg;

	pacer__writable(&t->pacer);
	fanout__kick(t);
}

static void
fanout_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t airtime_us)
{
	struct fo_tp	*t = arg;

	pacer__tx_done(&t->pacer, pacer__airtime(&t->pacer, t->caps.mtu),
	    airtime_us);
	if (status != TP_OK)
		t->tx_errors++;
	fanout__kick(t);
}

static void
fanout_link(void *arg, struct tp *tp, enum tp_link_event ev)
{
	struct fo_tp	*t = arg;

	switch (ev) {
	case TP_LINK_UP:
		log_info("%s: link up", t->name);
		t->up = true;
		fanout__kick(t);
		break;
	case TP_LINK_DOWN:
		log_warnx("%s: link down", t->name);
		t->up = false;
		break;
	case TP_CAPS_CHANGED:
		t->ops->caps(t->tp, &t->caps);
		pacer__reconf(&t->pacer, &t->caps, t->f->conf->rate_pct);
		log_info("%s: capabilities changed (mtu %u, %" PRIu64
		    " bit/s)", t->name, t->caps.mtu, t->caps.bitrate_bps);
		fanout__kick(t);
		break;
	}
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
	struct fanout	*f;

	f = xcalloc(1, sizeof(*f));
	f->base = base;
	f->conf = conf;
	f->db = db;
	f->cache = cache;
	f->reg = reg;
	TAILQ_INIT(&f->deploys);
	TAILQ_INIT(&f->campaigns);
	TAILQ_INIT(&f->sessions);
	TAILQ_INIT(&f->rollouts);
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

static void
fanout_tp_close(struct fo_tp *t)
{
	if (t->tp != NULL)
		t->ops->close(t->tp);
	t->tp = NULL;
	if (t->tx_ev != NULL)
		event_free(t->tx_ev);
	free(t->ring);
	free(t->data_frame);
	free(t);
}

void
fanout_free(struct fanout *f)
{
	size_t	 i;

	if (f == NULL)
		return;
	if (!f->stopping)
		fanout_shutdown(f);
	rollout__fini(f);
	stream__fini(f);
	campaign__fini(f);
	for (i = 0; i < f->ntps; i++)
		fanout_tp_close(f->tps[i]);
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
	struct fo_session		*s;
	struct fo_tp			*t;
	char				*why = NULL;
	size_t				 i;

	for (i = 0; i < f->conf->ntransports; i++) {
		tc = &f->conf->transports[i];
		if (fanout__tp(f, tc->name) != NULL)
			continue;	/* already open */
		if (tc->ops == NULL || tc->ops->abi != TP_ABI_VERSION) {
			xasprintf(cause, "transport %s: no plugin \"%s\" of "
			    "ABI %d", tc->name, tc->type != NULL ? tc->type :
			    "?", TP_ABI_VERSION);
			return (-1);
		}
		if (f->ntps == UB_MAX_TRANSPORTS) {
			xasprintf(cause, "too many transports");
			return (-1);
		}
		t = xcalloc(1, sizeof(*t));
		t->f = f;
		fanout__strlcpy(t->name, tc->name, sizeof(t->name));
		fanout__strlcpy(t->type, tc->ops->name, sizeof(t->type));
		t->ops = tc->ops;
		t->host.base = f->base;
		t->host.arg = t;
		t->host.now_ms = fanout_host_now_ms;
		t->host.rx = fanout_rx;
		t->host.writable = fanout_writable;
		t->host.tx_done = fanout_tx_done;
		t->host.link = fanout_link;
		t->ring = xcalloc(FO_CTRL_RING, sizeof(*t->ring));
		t->data_frame = xcalloc(1, UP_FRAME_MAX);
		TAILQ_INIT(&t->data_sessions);
		if ((t->tx_ev = evtimer_new(f->base, fanout_tx_cb, t)) == NULL)
			fatalx("fanout: evtimer_new");
		if (t->ops->open(&t->host, &tc->conf, &t->tp, &why) == -1) {
			xasprintf(cause, "transport %s: %s", tc->name,
			    why != NULL ? why : "cannot open");
			free(why);
			t->tp = NULL;
			fanout_tp_close(t);
			return (-1);
		}
		t->ops->caps(t->tp, &t->caps);
		pacer__init(&t->pacer, &t->caps, f->conf->rate_pct,
		    fanout__now_us());
		f->tps[f->ntps++] = t;
		if (t->ops->start(t->tp, &why) == -1) {
			xasprintf(cause, "transport %s: %s", tc->name,
			    why != NULL ? why : "cannot start");
			free(why);
			return (-1);
		}
		t->up = true;
		log_info("transport %s (%s): mtu %u, %" PRIu64 " bit/s, "
		    "paced at %" PRIu64 " bit/s", t->name, t->type,
		    t->caps.mtu, t->caps.bitrate_bps, t->pacer.rate_bps);
	}
	/* Sessions restored before their instance was open. */
	TAILQ_FOREACH(s, &f->sessions, fentry)
		if (s->t == NULL && (s->t = fanout__tp(f, s->transport)) !=
		    NULL)
			session__poke(s);
	fanout_discover(f);
	return (0);
}

void
fanout_reconfig(struct fanout *f, const struct ub_config *conf)
{
	size_t	 i;

	f->conf = conf;
	for (i = 0; i < f->ntps; i++)
		pacer__reconf(&f->tps[i]->pacer, &f->tps[i]->caps,
		    conf->rate_pct);
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

static void
fanout_discover(struct fanout *f)
{
	struct up_msg	 m;
	size_t		 i;
	unsigned int	 w = f->conf->status_window_ms;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_DISCOVER;
	m.u.discover.window_ms = w > UINT16_MAX ? UINT16_MAX : w;
	for (i = 0; i < f->ntps; i++)
		if (f->tps[i]->up)
			fanout__ctrl(f->tps[i], NULL, NULL, &m);
	f->last_discover_ms = fanout__now_ms();
	/* Offers wait for the answers, so nodes join before the OFFER. */
	f->settle_ms = f->last_discover_ms + m.u.discover.window_ms + 100 +
	    m.u.discover.window_ms / 4;
}

void
fanout_cron(struct fanout *f)
{
	uint64_t	 now = fanout__now_ms();

	if (f->stopping)
		return;
	if (f->conf->discover_interval_s != 0 && now - f->last_discover_ms >=
	    (uint64_t)f->conf->discover_interval_s * 1000)
		fanout_discover(f);
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
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (c->check_ev != NULL)
			event_del(c->check_ev);
		TAILQ_FOREACH(s, &c->sessions, centry) {
			session__stop(s);
			campaign__put_session(s);
		}
		TAILQ_FOREACH(m, &c->members, centry)
			if (!FO_M_FINAL(m->state))
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
