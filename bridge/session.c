/*
 * session.c: one UP session, i.e. one campaign on one transport instance
 * (one broadcast domain).  The gateway side of the session flow in
 * /work/brief.md and docs/up-protocol.md §5:
 *
 *   OFFER     offer_repeats OFFERs across offer_window_ms; ACCEPTs carry
 *             what each node already holds (resume).
 *   DATA      one pass over the union of missing blocks ("needed"),
 *             pread straight from the cache blob into the instance's
 *             preallocated frame and sealed in place (no allocation per
 *             frame); passes after the first carry UP_F_REPAIR.
 *   STATUS    STATUS_REQ to all, wait status_window_ms + margin, then
 *             targeted STATUS_REQs to silent nodes (FO_TRIES), union the
 *             missing slices, and go back to DATA for the repair pass.
 *   VERIFY    to all, then targeted to stragglers.
 *   ACTIVATE  repeated like OFFER; the nodes then reboot.
 *   RESULT    final RESULTs until result_timeout_s (a separate timer, so
 *             latecomers are served meanwhile).
 *
 * The next phase is always chosen from the members' states
 * (session_decide), so a node that joins, comes back or reboots in the
 * middle is simply taken along by the next phase that suits it.
 *
 * Repair set.  The session keeps one "needed" bitmap (nblocks bits, ~27
 * KB for 300 MB at 1,400 B), not one bitmap per node: a node's first
 * report in a session (ACCEPT, or the first STATUS of a node that turned
 * up by ANNOUNCE) adds its slice's missing blocks and, conservatively,
 * every block past its slice; later STATUS frames add their slice.  A
 * block leaves the set when it is sent, so one retransmission serves
 * every node that lost it.  A node whose slice does not reach the end is
 * asked again next round, and a round counts against max_rounds only if
 * the node made no progress (docs/fanout.md, "Repair").
 */
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/event.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanout_internal.h"
#include "stream.h"

/*
 * Feedback timers from a measured round trip (research/multicast-delta.md
 * §7.1: status after ~1 GRTT, repair after (K+1) GRTT; on a LAN GRTT is
 * about 1 ms).  Samples: the quickest ACCEPT after an OFFER (a node
 * answers an OFFER at once, but its first answer includes setting up
 * its slot, tens of ms on the testbed), then, once a status round to all
 * has been answered, the quickest STATUS after its STATUS_REQ: one round
 * trip plus the smallest of the nodes' random delays, an estimate that
 * errs long.  Each round's figure replaces the last, so the timers
 * follow the LAN as it loads.  Until a sample exists the configured
 * windows apply.
 *
 * A fast status round asks every node to answer within
 * SESSION_K x GRTT plus the time the answers take on the link (no
 * implosion: one STATUS each), and waits that plus 2 GRTT and
 * SESSION_SLACK_US for scheduling on a busy host.  Only the first wait of
 * a round is fast: a node still silent is asked again (targeted) and
 * given the configured status_window_ms + margin, FO_TRIES times, so a
 * slow node is never written off sooner than before.
 *
 * Kept beside the session, not in struct fo_session
 * (fanout_internal.h belongs to the engine owner): one small record per
 * session, looked up per control event, never per data frame.
 */
#define SESSION_K		1
#define SESSION_SLACK_US	20000
#define SESSION_STATUS_BYTES	1600	/* a full STATUS frame on the link */

struct session_rtt {
	LIST_ENTRY(session_rtt)	 entry;
	const struct fo_session	*s;
	uint64_t		 offer_us;	/* last OFFER queued */
	uint64_t		 ask_us;	/* STATUS_REQ to all queued */
	uint64_t		 round_us;	/* quickest answer to it */
	uint64_t		 grtt_us;	/* 0: not measured yet */
	bool			 from_status;	/* grtt from a status round */
};

static LIST_HEAD(, session_rtt) session_rtts =
    LIST_HEAD_INITIALIZER(session_rtts);

static const char *const session_phase_names[] = {
	"idle", "offer", "data", "status", "verify", "activate", "result",
	"stopped"
};

static void	 session_decide(struct fo_session *);
static void	 session_status_begin(struct fo_session *);
static void	 session_status_end(struct fo_session *);
static void	 session_verify_end(struct fo_session *);
static void	 session_result_arm(struct fo_session *);
static void	 session_poll_arm(struct fo_session *, uint64_t);
static void	 session_verify_progress(struct fo_session *);

const char *
session__phase_str(enum fo_phase p)
{
	if ((size_t)p >= sizeof(session_phase_names) /
	    sizeof(session_phase_names[0]))
		return ("?");
	return (session_phase_names[p]);
}

struct fo_session *
session__find(struct fanout *f, uint32_t id)
{
	struct fo_session	*s;

	TAILQ_FOREACH(s, &f->sessions, fentry)
		if (s->id == id)
			return (s);
	return (NULL);
}

static int
session_id_used(struct fanout *f, uint32_t id)
{
	sqlite3_stmt	*st;
	int		 used = 0;

	if (session__find(f, id) != NULL)
		return (1);
	if (sqlite3_prepare_v2(f->db, "SELECT 1 FROM campaign_sessions WHERE "
	    "session = ?1", -1, &st, NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, id);
	used = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return (used);
}

static struct fo_tp *
session_tp(struct fo_session *s)
{
	if (s->t == NULL)
		s->t = fanout__tp(s->f, s->transport);
	return (s->t);
}

static uint64_t
session_window(const struct fo_session *s)
{
	unsigned int	 w = s->f->conf->status_window_ms;

	return (w > UINT16_MAX ? UINT16_MAX : w);
}

/* Time to allow for the answers of a round beyond the nodes' window. */
static uint64_t
session_margin(const struct fo_session *s)
{
	return (100 + session_window(s) / 4);
}

static struct session_rtt *
session_rtt(const struct fo_session *s)
{
	struct session_rtt	*r;

	LIST_FOREACH(r, &session_rtts, entry)
		if (r->s == s)
			return (r);
	r = xcalloc(1, sizeof(*r));
	r->s = s;
	LIST_INSERT_HEAD(&session_rtts, r, entry);
	return (r);
}

static void
session_rtt_free(const struct fo_session *s)
{
	struct session_rtt	*r;

	LIST_FOREACH(r, &session_rtts, entry)
		if (r->s == s) {
			LIST_REMOVE(r, entry);
			free(r);
			return;
		}
}

/* An ACCEPT arrived: one GRTT sample against the last OFFER queued. */
static void
session_rtt_sample(struct fo_session *s)
{
	struct session_rtt	*r = session_rtt(s);
	uint64_t		 now = fanout__now_us(), d;

	if (r->offer_us == 0 || now < r->offer_us)
		return;
	d = now - r->offer_us;
	/* Longer than the configured wait: not a LAN round trip. */
	if (r->from_status || d > (session_window(s) + session_margin(s)) *
	    1000)
		return;
	if (r->grtt_us == 0 || d < r->grtt_us) {
		r->grtt_us = d;
		log_debug("session %08x: grtt %" PRIu64 " us (accept)", s->id,
		    d);
	}
}

/* A STATUS arrived during a round to all: the quickest one counts. */
static void
session_rtt_status(struct fo_session *s)
{
	struct session_rtt	*r = session_rtt(s);
	uint64_t		 now = fanout__now_us();

	if (s->phase != FO_P_STATUS || r->ask_us == 0 || now < r->ask_us)
		return;
	if (r->round_us == 0 || now - r->ask_us < r->round_us)
		r->round_us = now - r->ask_us;
}

/* A status round is over: its quickest answer is the new GRTT. */
static void
session_rtt_round(struct fo_session *s)
{
	struct session_rtt	*r = session_rtt(s);

	if (r->round_us != 0 && r->round_us <= (session_window(s) +
	    session_margin(s)) * 1000) {
		r->grtt_us = r->round_us;
		r->from_status = true;
		log_debug("session %08x: grtt %" PRIu64 " us (status)", s->id,
		    r->grtt_us);
	}
	r->ask_us = r->round_us = 0;
}

/*
 * The window of a fast round (ms, for STATUS_REQ), or 0 when no round
 * trip is known: K x GRTT plus every asked node's STATUS on the link.
 */
static uint64_t
session_fast_window(struct fo_session *s, unsigned int nasked)
{
	struct session_rtt	*r = session_rtt(s);
	struct fo_tp		*t = session_tp(s);
	uint64_t		 us, bps;

	if (r->grtt_us == 0 || t == NULL)
		return (0);
	bps = t->caps.bitrate_bps != 0 ? t->caps.bitrate_bps : 1000000;
	us = SESSION_K * r->grtt_us + (uint64_t)nasked *
	    (SESSION_STATUS_BYTES + t->caps.frame_overhead) * 8 * 1000000 / bps;
	us = (us + 999) / 1000;
	if (us < 1)
		us = 1;
	if (us >= session_window(s))
		return (0);	/* not faster than the configured window */
	return (us);
}

/* How long a fast round waits: its window, 2 GRTT and some slack. */
static uint64_t
session_fast_wait(struct fo_session *s, uint64_t window)
{
	return (window + (2 * session_rtt(s)->grtt_us + SESSION_SLACK_US +
	    999) / 1000);
}

static void
session_arm(struct fo_session *s, uint64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

static bool
session_runnable(const struct fo_session *s)
{
	return (s->c->state == FO_C_RUNNING && s->c->ready && s->fd != -1 &&
	    s->needed_buf != NULL);
}

/* ------------------------------------------------------------------ */
/* Members                                                              */

void
session__add_member(struct fo_session *s, struct fo_member *m)
{
	m->s = s;
	m->asked = m->answered = false;
	TAILQ_INSERT_TAIL(&s->members, m, sentry);
	s->nmembers++;
	s->nstate[m->state]++;
}

void
session__remove_member(struct fo_session *s, struct fo_member *m)
{
	if (m->asked && !m->answered && s->unanswered > 0)
		s->unanswered--;
	m->asked = m->answered = false;
	TAILQ_REMOVE(&s->members, m, sentry);
	s->nmembers--;
	s->nstate[m->state]--;
	m->s = NULL;
}

static void
session_answered(struct fo_session *s, struct fo_member *m)
{
	if (m->asked && !m->answered) {
		m->answered = true;
		if (s->unanswered > 0)
			s->unanswered--;
	}
}

static void
session_started(struct fo_session *s, struct fo_member *m)
{
	if (m->started == 0)
		m->started = fanout__unix_ms();
	m->bytes_base = s->bytes_sent;
}

static void
session_write_off(struct fo_member *m, const char *why)
{
	log_info("campaign %s: node 0x%016" PRIx64 " written off: %s",
	    m->c->id, m->node, why);
	campaign__final(m, FO_M_FAILED, UP_R_CONN_LOST, NULL);
}

/* ------------------------------------------------------------------ */
/* Frames                                                               */

static const struct tp_addr *
session_dst(struct fo_session *s, const struct fo_member *m)
{
	struct fo_tp	*t = session_tp(s);

	/* Targeted frames also work broadcast: the target field filters. */
	if (t == NULL || m == NULL || m->addr.len == 0 ||
	    (t->caps.flags & TP_CAP_UNICAST) == 0)
		return (NULL);
	return (&m->addr);
}

static void
session_ctrl(struct fo_session *s, const struct fo_member *m,
    struct up_msg *msg)
{
	struct fo_tp	*t = session_tp(s);

	if (t == NULL)
		return;
	msg->session = s->id;
	msg->flags = 0;
	fanout__ctrl(t, s, session_dst(s, m), msg);
}

static void
session_target(struct fo_session *s, uint8_t type, struct fo_member *m,
    uint16_t window, uint8_t reason)
{
	struct up_msg	 msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	msg.u.target.node_id = m != NULL ? m->node : 0;
	msg.u.target.window_ms = window;
	msg.u.target.reason = reason;
	session_ctrl(s, m, &msg);
}

static void
session_send_offer(struct fo_session *s)
{
	struct up_msg	 msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_OFFER;
	msg.u.offer = s->offer;
	session_ctrl(s, NULL, &msg);
	session_rtt(s)->offer_us = fanout__now_us();
}

static void
session_send_activate(struct fo_session *s, struct fo_member *m)
{
	struct up_msg	 msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_ACTIVATE;
	msg.u.activate.node_id = m != NULL ? m->node : 0;
	msg.u.activate.delay_ms = s->f->conf->activate_delay_ms;
	session_ctrl(s, m, &msg);
}

static void
session_abort_node(struct fo_session *s, uint64_t node,
    const struct tp_addr *src)
{
	struct fo_tp	*t = session_tp(s);
	struct up_msg	 msg;

	if (t == NULL)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_ABORT;
	msg.session = s->id;
	msg.u.target.node_id = node;
	msg.u.target.reason = UP_R_ABORTED;
	fanout__ctrl(t, s, (t->caps.flags & TP_CAP_UNICAST) != 0 ? src : NULL,
	    &msg);
}

/*
 * Asks the members in state `st' (STATUS_REQ or VERIFY): one frame to
 * all when they are at least half of the session, else one targeted frame
 * each, so that a latecomer in a big session does not make every other
 * node answer again.
 */
static void
session_ask(struct fo_session *s, uint8_t type, enum fo_mstate st,
    uint64_t window)
{
	struct fo_member	*m;

	if (s->nstate[st] * 2 >= s->nmembers) {
		session_target(s, type, NULL, window, 0);
		return;
	}
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->state == st)
			session_target(s, type, m, window, 0);
}

void
session__send_abort(struct fo_session *s, uint8_t reason)
{
	int	 i;

	/* ABORT is not acknowledged: send it a few times. */
	for (i = 0; i < FO_TRIES; i++)
		session_target(s, UP_T_ABORT, NULL, 0, reason);
}

static void
session_ack(struct fo_session *s, struct fo_member *m)
{
	session_target(s, UP_T_RESULT_ACK, m, 0, 0);
}

void
session__sent(struct fo_session *s, uint8_t type, size_t len)
{
	s->bytes_sent += len;
	if (type == UP_T_DATA || type == UP_T_PARITY || type == UP_T_XOR) {
		s->data_frames++;
		if (s->pass > 1)
			s->repair_frames++;
	} else
		s->ctrl_frames++;
}

uint64_t
session__rate_bps(struct fo_session *s)
{
	uint64_t	 now = fanout__now_ms();

	if (s->rate_ms == 0) {
		s->rate_ms = now;
		s->rate_bytes = s->bytes_sent;
		return (0);
	}
	if (now - s->rate_ms >= 1000) {
		s->rate_bps = (s->bytes_sent - s->rate_bytes) * 8 * 1000 /
		    (now - s->rate_ms);
		s->rate_ms = now;
		s->rate_bytes = s->bytes_sent;
	}
	return (s->rate_bps);
}

/* ------------------------------------------------------------------ */
/* Parity repair (docs/up-protocol.md §4.6, docs/fanout.md)            */

/*
 * Per group of fec_k blocks the session keeps the next unused TS004 row
 * (rows are never repeated within a session), the rows the current round
 * asks for (fec_plan: the maximum over the nodes' reports of the rows
 * that node needs, computed exactly with up_fec_rows_needed() from its
 * missing blocks, since the rows are known in advance), the rows still to
 * send in this pass, and these flags.  About 7 bytes per group: 23 KB
 * for 300 MB in 1,400-byte blocks and k = 64.
 */
#define FO_FEC_DATA	0x01	/* this round: plain DATA for it */
#define FO_FEC_SENT	0x02	/* parity went to the group this pass */
#define FO_FEC_PREV	0x04	/* ... and in the previous repair pass */

/* A whole percent (config "auto" or 0..100) of fec_k, rounded up. */
static uint16_t
session_fec_proactive(const struct fo_session *s)
{
	const char	*v = s->f->conf->fec_proactive;
	double		 kp, r, x;
	long		 pct;
	int		 i;

	if (v != NULL && strcmp(v, "auto") != 0) {
		pct = strtol(v, NULL, 10);
		if (pct <= 0)
			return (0);
		return ((uint16_t)((s->fec_k * pct + 99) / 100));
	}
	/* research/multicast-delta.md §7.1: ceil(k p + 2 sqrt(k p)). */
	kp = (double)s->fec_k * s->f->fec_loss_ppm / 1e6;
	if (kp <= 0)
		return (0);
	for (x = kp + 1, i = 0; i < 30; i++)	/* sqrt, Newton */
		x = (x + kp / x) / 2;
	r = kp + 2 * x;
	if (r > s->fec_k)
		r = s->fec_k;
	return ((uint16_t)r + ((double)(uint16_t)r < r));
}

static void
session_fec_free(struct fo_session *s)
{
	free(s->fec_next);
	free(s->fec_plan);
	free(s->fec_pend);
	free(s->fec_flags);
	free(s->fec_buf);
	s->fec_next = s->fec_plan = s->fec_pend = NULL;
	s->fec_flags = s->fec_buf = NULL;
	s->fec_k = 0;
	s->fec_ngroups = 0;
}

/*
 * Parity only when a PARITY frame (6 bytes more than DATA) fits the
 * link and every member's max_frame: block_size was sized for DATA.
 */
static void
session_fec_open(struct fo_session *s, struct fo_tp *t)
{
	const struct ub_config		*conf = s->f->conf;
	const struct registry_node	*n;
	struct fo_member		*m;
	uint32_t			 mtu, need, g, k;

	session_fec_free(s);
	if (!conf->fec)
		return;
	k = conf->fec_k != 0 ? conf->fec_k : 64;
	if (k > UP_FEC_K_MAX)
		k = UP_FEC_K_MAX;
	mtu = t->caps.mtu != 0 && t->caps.mtu < UP_FRAME_MAX ? t->caps.mtu :
	    UP_FRAME_MAX;
	need = (uint32_t)s->block_size + UP_PARITY_OVERHEAD;
	if (need > mtu) {
		log_info("session %08x: no parity: %u-byte blocks leave no "
		    "room for its header", s->id, s->block_size);
		return;
	}
	TAILQ_FOREACH(m, &s->members, sentry)
		if ((n = registry_get(s->f->reg, m->node)) != NULL &&
		    n->max_frame != 0 && n->max_frame < need)
			return;
	s->fec_k = (uint16_t)k;
	s->fec_ngroups = up_fec_ngroups(s->nblocks, s->fec_k);
	s->fec_next = xcalloc(s->fec_ngroups, sizeof(*s->fec_next));
	s->fec_plan = xcalloc(s->fec_ngroups, sizeof(*s->fec_plan));
	s->fec_pend = xcalloc(s->fec_ngroups, sizeof(*s->fec_pend));
	s->fec_flags = xcalloc(s->fec_ngroups, 1);
	s->fec_buf = xcalloc(1, s->block_size);
	for (g = 0; g < s->fec_ngroups; g++)
		s->fec_next[g] = 1;
	s->fec_scan = 0;
}

/* A node's missing blocks of one group, gathered from a status slice. */
struct session_fec_acc {
	struct fo_session	*s;
	uint32_t		 g;		/* UINT32_MAX: none yet */
	uint8_t			 bits[UP_FEC_VEC_BYTES];
};

/* What one node misses in group g: raise the group's plan to cover it. */
static void
session_fec_flush(struct session_fec_acc *a)
{
	struct fo_session	*s = a->s;
	uint32_t		 g = a->g;
	uint16_t		 m;
	unsigned int		 i, l = 0;
	int			 need;

	if (g == UINT32_MAX || g >= s->fec_ngroups)
		return;
	m = up_fec_group_len(s->nblocks, s->fec_k, g);
	for (i = 0; i < UP_FEC_VEC_BYTES; i++)
		l += (unsigned int)__builtin_popcount(a->bits[i]);
	if (l == 0 || (s->fec_flags[g] & FO_FEC_DATA) != 0)
		goto out;
	/*
	 * Still missing after a parity round: the node lost rows or has no
	 * FEC (it ignores PARITY, §4.6).  Resend the blocks this time.  A
	 * node missing more than half the group costs about as much parity
	 * as data: resend too.
	 */
	if ((s->fec_flags[g] & FO_FEC_PREV) != 0 || l > m / 2U) {
		s->fec_flags[g] |= FO_FEC_DATA;
		goto out;
	}
	/* The rows are known in advance: count what this node needs. */
	need = up_fec_rows_needed(m, a->bits, s->fec_next[g], 2U * m + 8);
	if (need < 0 || (uint32_t)s->fec_next[g] + (uint32_t)need >
	    UP_FEC_ROW_MAX)
		s->fec_flags[g] |= FO_FEC_DATA;
	else if (need > s->fec_plan[g])
		s->fec_plan[g] = (uint16_t)need;
out:
	memset(a->bits, 0, sizeof(a->bits));
}

static void
session_fec_note_cb(void *arg, uint32_t i)
{
	struct session_fec_acc	*a = arg;
	struct fo_session	*s = a->s;
	uint32_t		 g = i / s->fec_k, b = i % s->fec_k;

	if (g != a->g) {
		session_fec_flush(a);
		a->g = g;
	}
	a->bits[b / 8] |= (uint8_t)(1u << (b % 8));
}

/*
 * A node's status body: per group, what it misses within the slice.  On
 * its first report everything past the slice counts as missing, and those
 * groups get DATA (the parity for a whole group costs more than it).
 */
static void
session_fec_note(struct fo_session *s, const struct up_status_body *st,
    bool first)
{
	struct session_fec_acc	 a;
	uint64_t		 end;
	uint32_t		 g;

	if (s->fec_k == 0 || st->first_missing >= s->nblocks)
		return;
	memset(&a, 0, sizeof(a));
	a.s = s;
	a.g = UINT32_MAX;
	session_fec_note_cb(&a, st->first_missing);
	up_status_foreach_missing(st, s->nblocks, session_fec_note_cb, &a);
	session_fec_flush(&a);
	end = (uint64_t)st->first_missing + st->nbits;
	if (first && end < s->nblocks)
		for (g = (uint32_t)(end / s->fec_k); g < s->fec_ngroups; g++)
			s->fec_flags[g] |= FO_FEC_DATA;
}

/* A status round begins: last pass's parity marks, a fresh plan. */
static void
session_fec_round(struct fo_session *s)
{
	uint32_t	 g;

	for (g = 0; g < s->fec_ngroups; g++) {
		s->fec_flags[g] = (s->fec_flags[g] & FO_FEC_SENT) != 0 ?
		    FO_FEC_PREV : 0;
		s->fec_plan[g] = 0;
	}
}

/*
 * A repair pass begins: a group whose plan costs fewer frames than
 * resending its needed blocks gets parity instead, plus a share for the
 * loss of the parity frames themselves (the measured loss).
 */
static void
session_fec_plan(struct fo_session *s)
{
	uint32_t	 g, first, i, nunion, rows;

	for (g = 0; g < s->fec_ngroups; g++) {
		s->fec_pend[g] = 0;
		if ((s->fec_flags[g] & FO_FEC_DATA) != 0) {
			if ((s->fec_flags[g] & FO_FEC_PREV) != 0)
				s->fec_fallbacks++;
			continue;
		}
		if (s->fec_plan[g] == 0)
			continue;
		first = g * s->fec_k;
		nunion = 0;
		for (i = first; i < first + up_fec_group_len(s->nblocks,
		    s->fec_k, g); i++)
			if (up_bitmap_get(&s->needed, i))
				nunion++;
		rows = s->fec_plan[g];
		rows += (uint32_t)(((uint64_t)rows * s->f->fec_loss_ppm +
		    500000) / 1000000);
		if (nunion == 0 || rows >= nunion ||
		    s->fec_next[g] + rows - 1 > UP_FEC_ROW_MAX)
			continue;
		for (i = first; i < first + up_fec_group_len(s->nblocks,
		    s->fec_k, g); i++)
			if (up_bitmap_get(&s->needed, i)) {
				up_bitmap_clear(&s->needed, i);
				s->nneeded--;
			}
		s->fec_pend[g] = (uint16_t)rows;
	}
}

/* The loss the nodes saw in the first pass, for proactive parity. */
static void
session_fec_measure(struct fo_session *s)
{
	struct fo_member	*m;
	uint64_t		 missing = 0, n = 0, ppm;

	if (s->fec_k == 0 || s->pass != 1 || s->fec_p1_blocks != s->nblocks)
		return;
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->known && m->state >= FO_M_RECEIVING &&
		    m->state <= FO_M_VERIFIED) {
			missing += s->nblocks - (m->held < s->nblocks ?
			    m->held : s->nblocks);
			n++;
		}
	if (n == 0)
		return;
	ppm = missing * 1000000 / (n * s->nblocks);
	/*
	 * With proactive parity the nodes report what it did not repair:
	 * keep most of the old estimate and add the residue, so the
	 * estimate neither collapses nor runs away.
	 */
	if (s->fec_pro > 0)
		ppm += (uint64_t)s->f->fec_loss_ppm * 9 / 10;
	s->f->fec_loss_ppm = ppm > 500000 ? 500000 : (uint32_t)ppm;
	log_debug("session %08x: loss estimate %u ppm", s->id,
	    s->f->fec_loss_ppm);
}

struct session_fec_rd {
	struct fo_session	*s;
	uint32_t		 first;
};

/* Encoder input: block first + i from the cache blob, zero-padded. */
static int
session_fec_read(void *arg, uint16_t i, uint8_t *buf, size_t blen)
{
	struct session_fec_rd	*r = arg;
	struct fo_session	*s = r->s;
	uint32_t		 b = r->first + i;
	uint64_t		 off = (uint64_t)b * s->block_size;
	size_t			 len;
	ssize_t			 n;

	len = b == s->nblocks - 1 ? s->c->pkg.size - off : s->block_size;
	memset(buf + len, 0, blen - len);
	do {
		n = pread(s->fd, buf, len, (off_t)off);
	} while (n == -1 && errno == EINTR);
	return (n == (ssize_t)len ? 0 : -1);
}

/*
 * The next PARITY frame due before block `next' (the pass's next DATA):
 * rows of every group wholly behind it.  Returns the frame length, 0 for
 * none, or (size_t)-1 after a blob error (the session was stopped).
 */
static size_t
session_fill_parity(struct fo_session *s, uint8_t *buf, size_t cap,
    uint32_t next)
{
	struct session_fec_rd	 rd;
	uint8_t			 bits[UP_FEC_VEC_BYTES];
	uint32_t		 g, end, row;
	uint16_t		 m;
	int			 rc;

	for (;;) {
		if (s->fec_scan >= s->fec_ngroups)
			return (0);
		g = s->fec_scan;
		end = g * s->fec_k + up_fec_group_len(s->nblocks, s->fec_k, g);
		if (next < s->nblocks && end > next)
			return (0);	/* the group's DATA comes first */
		if (s->fec_pend[g] > 0)
			break;
		s->fec_scan++;
	}
	if (UP_FEC_DATA_OFF + (size_t)s->block_size + UP_CRC_LEN > cap) {
		log_warnx("session %08x: parity does not fit, off", s->id);
		session_fec_free(s);
		return (0);
	}
	m = up_fec_group_len(s->nblocks, s->fec_k, g);
	row = s->fec_next[g];
	rd.s = s;
	rd.first = g * s->fec_k;
	rc = up_fec_encode(row, m, buf + UP_FEC_DATA_OFF, s->block_size,
	    bits, s->fec_buf, session_fec_read, &rd);
	if (rc == UP_EPORT) {
		fanout__data_remove(s->t, s);
		campaign__blob_error(s->c);
		return ((size_t)-1);
	}
	if (rc == UP_OK)
		rc = up_fec_seal_parity(buf, cap, s->pass > 1 ? UP_F_REPAIR : 0,
		    s->id, row, g, s->fec_k, s->block_size);
	/* Spent either way: a row is never sent twice. */
	s->fec_next[g]++;
	s->fec_pend[g]--;
	if (rc <= 0) {
		log_warnx("session %08x: parity row %u of group %u: %s",
		    s->id, row, g, up_strerror(rc));
		s->fec_pend[g] = 0;
		return (0);
	}
	if (s->pass > 1)
		s->fec_flags[g] |= FO_FEC_SENT;
	s->parity_frames++;
	return ((size_t)rc);
}

/* ------------------------------------------------------------------ */
/* XOR repair (docs/fanout.md "XOR repair", up-protocol.md §4.15)       */

static void
session_xr_free(struct fo_session *s)
{
	xr__free(s->xr);
	free(s->xr_dneed_buf);
	free(s->xr_buf);
	s->xr = NULL;
	s->xr_dneed_buf = s->xr_buf = NULL;
	s->xr_nframes = s->xr_next = 0;
	s->xr_round = false;
}

/*
 * XOR frames carry the block list in front of the data, so they need
 * room the DATA frame leaves: at least the first index and one gap, in
 * the link's mtu and every member's max_frame.
 */
static void
session_xr_open(struct fo_session *s, struct fo_tp *t)
{
	const struct registry_node	*n;
	struct fo_member		*m;
	size_t				 mtu, fixed;

	session_xr_free(s);
	if (!s->f->conf->xor_repair)
		return;
	mtu = t->caps.mtu != 0 && t->caps.mtu < UP_FRAME_MAX ? t->caps.mtu :
	    UP_FRAME_MAX;
	TAILQ_FOREACH(m, &s->members, sentry)
		if ((n = registry_get(s->f->reg, m->node)) != NULL &&
		    n->max_frame != 0 && n->max_frame < mtu)
			mtu = n->max_frame;
	fixed = UP_OVERHEAD + 1 + (size_t)s->block_size;
	if (mtu < fixed + 5) {
		log_debug("session %08x: no XOR repair: %u-byte blocks leave "
		    "no room for a block list", s->id, s->block_size);
		return;
	}
	s->xr_room = mtu - fixed;
	s->xr = xr__new(s->nblocks, FO_XR_PAIRS);
	s->xr_dneed_buf = xcalloc(1, up_bitmap_bytes(s->nblocks));
	up_bitmap_init(&s->xr_dneed, s->xr_dneed_buf, s->nblocks);
	s->xr_buf = xcalloc(1, s->block_size);
}

/*
 * A status round begins.  XOR frames are planned only once the whole
 * package is verified in the cache (a frame may name any block).
 */
static void
session_xr_round(struct fo_session *s)
{
	struct fo_member	*m;

	s->xr_nframes = s->xr_next = 0;
	s->xr_round = false;
	if (s->xr == NULL)
		return;
	xr__reset(s->xr);
	up_bitmap_clear_all(&s->xr_dneed);
	s->xr_over = false;
	s->xr_round = stream__limit(s) >= s->c->pkg.size;
	TAILQ_FOREACH(m, &s->members, sentry)
		m->xr_added = false;
}

static void
session_xr_dneed_cb(void *arg, uint32_t i)
{
	struct fo_session	*s = arg;

	if (i < s->nblocks)
		up_bitmap_set(&s->xr_dneed, i);
}

/*
 * A status body during a round that plans XOR: the node's first answer
 * goes into the plan, unless it made no progress in the last round (a
 * node without XOR support, docs/up-protocol.md §4.15: its blocks go as
 * DATA).  What the plan cannot cover goes as DATA: everything of a node
 * outside the plan, and the blocks past a first report's slice.
 */
static void
session_xr_note(struct fo_session *s, struct fo_member *m,
    const struct up_status_body *st, bool first)
{
	uint64_t	 end;
	uint32_t	 i;

	if (!s->xr_round || s->phase != FO_P_STATUS)
		return;
	if (m->xr_added)
		return;
	if (!s->xr_over && m->stall == 0) {
		if (xr__add(s->xr, st) == 0)
			m->xr_added = true;
		else {
			log_debug("session %08x: XOR plan full, this round "
			    "resends blocks", s->id);
			s->xr_over = true;
		}
	}
	/* A slice of no bits still says first_missing is missing (§4.7). */
	if (!m->xr_added || st->nbits == 0) {
		session_xr_dneed_cb(s, st->first_missing);
		up_status_foreach_missing(st, s->nblocks, session_xr_dneed_cb,
		    s);
	}
	end = (uint64_t)st->first_missing + st->nbits;
	if (first)
		for (i = (uint32_t)end; end < s->nblocks && i < s->nblocks;
		    i++)
			up_bitmap_set(&s->xr_dneed, i);
}

/*
 * A repair pass begins: pack the round's pairs into XOR frames.  The
 * pass then sends those frames and, as DATA, only the blocks the plan
 * does not cover.  Returns false to repair this round as before (union
 * DATA and parity).
 */
static bool
session_xr_plan(struct fo_session *s)
{
	const uint32_t	*idx;
	size_t		 i;
	uint32_t	 b;
	uint8_t		 n;

	if (!s->xr_round || s->xr_over || xr__npairs(s->xr) == 0)
		return (false);
	s->xr_nframes = xr__build(s->xr, s->xr_room);
	if (s->xr_nframes == 0)
		return (false);
	for (i = 0; i < s->xr_nframes; i++) {
		idx = xr__frame(s->xr, i, &n);
		if (n == 1)	/* a frame of one block is a DATA frame */
			up_bitmap_set(&s->xr_dneed, idx[0]);
	}
	memcpy(s->needed_buf, s->xr_dneed_buf, up_bitmap_bytes(s->nblocks));
	s->nneeded = up_bitmap_count(&s->needed);
	for (b = 0; b < s->fec_ngroups; b++)
		s->fec_pend[b] = 0;
	s->xr_next = 0;
	log_debug("session %08x: XOR repair: %zu pairs in %zu frames, %u "
	    "blocks as DATA", s->id, xr__npairs(s->xr), s->xr_nframes,
	    s->nneeded);
	return (true);
}

/*
 * The next XOR frame of the pass, built in place: the blocks are read
 * from the cache blob and XORed into the frame.  Returns the frame
 * length, 0 when none is left, or (size_t)-1 after a blob error.
 */
static size_t
session_fill_xor(struct fo_session *s, uint8_t *buf, size_t cap)
{
	const uint32_t	*idx;
	size_t		 off, blen, len, j;
	uint64_t	 boff;
	ssize_t		 r;
	uint8_t		 n;
	int		 rc;

	while (s->xr_next < s->xr_nframes) {
		idx = xr__frame(s->xr, s->xr_next++, &n);
		if (n < 2)
			continue;	/* went as DATA */
		off = up_xor_data_off(n, idx);
		/* Two blocks or more: one is a whole block (§4.15). */
		len = s->block_size;
		if (off == 0 || off + len + UP_CRC_LEN > cap) {
			log_warnx("session %08x: XOR frame does not fit, "
			    "XOR off", s->id);
			session_xr_free(s);
			return (0);
		}
		memset(buf + off, 0, len);
		for (j = 0; j < n; j++) {
			boff = (uint64_t)idx[j] * s->block_size;
			blen = idx[j] == s->nblocks - 1 ?
			    s->c->pkg.size - boff : s->block_size;
			do {
				r = pread(s->fd, s->xr_buf, blen,
				    (off_t)boff);
			} while (r == -1 && errno == EINTR);
			if (r != (ssize_t)blen) {
				fanout__data_remove(s->t, s);
				campaign__blob_error(s->c);
				return ((size_t)-1);
			}
			up_fec_xor(buf + off, s->xr_buf, blen);
		}
		rc = up_xor_seal(buf, cap, UP_F_REPAIR, s->id, n, idx,
		    (uint16_t)len);
		if (rc <= 0) {
			log_warnx("session %08x: XOR frame: %s", s->id,
			    up_strerror(rc));
			continue;
		}
		s->xor_frames++;
		return ((size_t)rc);
	}
	return (0);
}

/* ------------------------------------------------------------------ */
/* The needed set                                                       */

static void
session_need(struct fo_session *s, uint32_t i)
{
	if (i < s->nblocks && !up_bitmap_get(&s->needed, i)) {
		up_bitmap_set(&s->needed, i);
		s->nneeded++;
	}
}

static void
session_need_cb(void *arg, uint32_t i)
{
	session_need(arg, i);
}

static void
session_need_range(struct fo_session *s, uint32_t from, uint32_t to)
{
	uint32_t	 i;

	for (i = from; i < to && (i & 7) != 0; i++)
		session_need(s, i);
	/* Whole bytes at a time for the long runs. */
	for (; i + 8 <= to; i += 8) {
		if (s->needed_buf[i / 8] != 0xff) {
			s->nneeded += 8 - __builtin_popcount(
			    s->needed_buf[i / 8]);
			s->needed_buf[i / 8] = 0xff;
		}
	}
	for (; i < to; i++)
		session_need(s, i);
}

/*
 * Takes a node's status body (docs/up-protocol.md §4.7): blocks before
 * first_missing are held, the slice describes the next nbits, nothing is
 * known past it.
 */
static void
session_apply(struct fo_session *s, struct fo_member *m,
    const struct up_status_body *st, bool first)
{
	uint64_t	 end;

	if (st->first_missing > s->nblocks) {
		log_debug("campaign %s: node 0x%016" PRIx64 ": first_missing "
		    "%u past %u blocks, ignored", m->c->id, m->node,
		    st->first_missing, s->nblocks);
		return;
	}
	m->known = true;
	m->held = st->held > s->nblocks ? s->nblocks : st->held;
	m->first_missing = st->first_missing;
	if (st->first_missing == s->nblocks) {
		m->held = s->nblocks;
		if (m->state <= FO_M_RECEIVING)
			campaign__set_state(m, FO_M_DOWNLOADED);
		else
			campaign__put_member(m);
		return;
	}
	if (m->state != FO_M_RECEIVING)
		campaign__set_state(m, FO_M_RECEIVING);
	else
		campaign__put_member(m);
	if (s->needed_buf == NULL)
		return;
	session_need(s, st->first_missing);
	up_status_foreach_missing(st, s->nblocks, session_need_cb, s);
	if (first) {
		end = (uint64_t)st->first_missing + st->nbits;
		if (end < s->nblocks)
			session_need_range(s, (uint32_t)end, s->nblocks);
	}
	session_fec_note(s, st, first);
	session_xr_note(s, m, st, first);
}

/* ------------------------------------------------------------------ */
/* Phases                                                               */

static void
session_offer_tick(struct fo_session *s)
{
	const struct ub_config	*conf = s->f->conf;
	struct fo_member	*m, *next;
	unsigned int		 r = conf->offer_repeats != 0 ?
				    conf->offer_repeats : 1;
	uint64_t		 gap = conf->offer_window_ms / r;

	if (s->step < r) {
		session_send_offer(s);
		s->step++;
		session_arm(s, s->step < r ? gap : gap + session_margin(s));
		return;
	}
	/* The window is over: count the silent nodes' unanswered offers. */
	TAILQ_FOREACH_SAFE(m, &s->members, sentry, next) {
		if (m->state != FO_M_OFFERED)
			continue;
		if (++m->offers >= FO_TRIES)
			session_write_off(m, "no answer to the offer");
	}
	session_decide(s);
}

static void
session_offer_begin(struct fo_session *s)
{
	struct fo_member	*m;

	s->phase = FO_P_OFFER;
	s->step = 0;
	s->phase_ms = fanout__now_ms();
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->state == FO_M_PENDING)
			campaign__set_state(m, FO_M_OFFERED);
	log_debug("session %08x: offer (%u nodes)", s->id,
	    s->nstate[FO_M_OFFERED]);
	session_offer_tick(s);
}

static void
session_data_begin(struct fo_session *s)
{
	struct fo_tp	*t = session_tp(s);

	s->phase = FO_P_DATA;
	s->phase_ms = fanout__now_ms();
	s->cursor = 0;
	s->fec_scan = 0;
	if (s->pass > 0 && session_xr_plan(s))
		;	/* XOR frames and DATA; no parity this pass */
	else if (s->fec_k != 0 && s->pass > 0)
		session_fec_plan(s);
	else if (s->fec_k != 0) {
		s->fec_p1_blocks = s->nneeded;
		s->fec_pro = session_fec_proactive(s);
	}
	s->pass++;
	log_debug("session %08x: pass %u, %u blocks", s->id, s->pass,
	    s->nneeded);
	if (t != NULL)
		fanout__data_add(t, s);
}

size_t
session__fill_data(struct fo_session *s, uint8_t *buf, size_t cap,
    struct tp_addr *dst)
{
	const struct cache_pkg	*p = &s->c->pkg;
	uint32_t		 i, lb;
	uint64_t		 off, lim;
	size_t			 len;
	ssize_t			 n;
	uint8_t			 flags;
	int			 rc;

	if (s->phase != FO_P_DATA || !session_runnable(s)) {
		fanout__data_remove(s->t, s);
		return (0);
	}
	i = up_bitmap_next_set(&s->needed, s->cursor);
	/*
	 * Cut-through: only blocks wholly inside the verified prefix of a
	 * package still downloading may go (stream.c); parity only for
	 * groups wholly inside it.
	 */
	lim = stream__limit(s);
	lb = lim >= p->size ? s->nblocks : (uint32_t)(lim / s->block_size);
	/* The pass's XOR frames go first. */
	if (s->xr_next < s->xr_nframes && s->nstate[FO_M_RECEIVING] > 0 &&
	    (len = session_fill_xor(s, buf, cap)) != 0) {
		if (len == (size_t)-1)
			return (0);
		tp_addr_broadcast(dst);
		return (len);
	}
	/* Parity of the groups the pass has left behind goes first. */
	if (s->fec_k != 0 && s->nstate[FO_M_RECEIVING] > 0 &&
	    (len = session_fill_parity(s, buf, cap, i < lb ? i : lb)) != 0) {
		if (len == (size_t)-1)
			return (0);
		tp_addr_broadcast(dst);
		return (len);
	}
	if (i < s->nblocks && i >= lb && s->nstate[FO_M_RECEIVING] > 0) {
		/* Wait in the pass: stream.c re-adds us as bytes verify. */
		fanout__data_remove(s->t, s);
		return (0);
	}
	if (i >= s->nblocks || s->nstate[FO_M_RECEIVING] == 0) {
		/* Pass over: ask what is still missing. */
		fanout__data_remove(s->t, s);
		session_status_begin(s);
		return (0);
	}
	off = (uint64_t)i * s->block_size;
	len = i == s->nblocks - 1 ? p->size - off : s->block_size;
	if (UP_DATA_OFF + len + UP_CRC_LEN > cap) {
		/* Cannot happen: block_size was sized from the mtu. */
		log_warnx("session %08x: block %u does not fit", s->id, i);
		fanout__data_remove(s->t, s);
		session__stop(s);
		return (0);
	}
	do {
		n = pread(s->fd, buf + UP_DATA_OFF, len, (off_t)off);
	} while (n == -1 && errno == EINTR);
	if (n != (ssize_t)len) {
		fanout__data_remove(s->t, s);
		campaign__blob_error(s->c);
		return (0);
	}
	flags = (i == s->nblocks - 1 ? UP_F_LAST : 0) |
	    (s->pass > 1 ? UP_F_REPAIR : 0);
	rc = up_seal_data(buf, cap, UP_T_DATA, flags, s->id, i,
	    (uint16_t)len);
	if (rc <= 0) {
		log_warnx("session %08x: block %u: %s", s->id, i,
		    up_strerror(rc));
		fanout__data_remove(s->t, s);
		session__stop(s);
		return (0);
	}
	up_bitmap_clear(&s->needed, i);
	s->nneeded--;
	s->cursor = i + 1;
	/* Proactive parity follows the group's DATA in the first pass. */
	if (s->fec_k != 0 && s->pass == 1 && s->fec_pro > 0)
		s->fec_pend[i / s->fec_k] = s->fec_pro;
	tp_addr_broadcast(dst);
	return ((size_t)rc);
}

static void
session_status_begin(struct fo_session *s)
{
	struct fo_member	*m;
	uint64_t		 w;
	bool			 offer = false;

	s->phase = FO_P_STATUS;
	s->step = 0;
	s->phase_ms = fanout__now_ms();
	s->unanswered = 0;
	session_fec_round(s);
	session_xr_round(s);
	/* Latecomers and silent nodes get the offer with the round. */
	TAILQ_FOREACH(m, &s->members, sentry) {
		m->asked = m->answered = false;
		if (m->state == FO_M_PENDING) {
			campaign__set_state(m, FO_M_OFFERED);
			offer = true;
		} else if (m->state == FO_M_OFFERED)
			offer = true;
		if (m->state == FO_M_RECEIVING || m->state == FO_M_OFFERED) {
			m->asked = true;
			s->unanswered++;
			m->progress_held = m->held;
		}
	}
	if (offer)
		session_send_offer(s);
	/*
	 * With a measured round trip the first wait is short; silent
	 * nodes then get the configured window (session_status_tick).
	 */
	w = session_fast_window(s, s->unanswered);
	log_debug("session %08x: status round, %u nodes asked, window %"
	    PRIu64 " ms", s->id, s->unanswered, w != 0 ? w :
	    session_window(s));
	session_rtt(s)->ask_us = s->nstate[FO_M_RECEIVING] * 2 >=
	    s->nmembers ? fanout__now_us() : 0;	/* to all: a sample */
	session_rtt(s)->round_us = 0;
	if (w != 0) {
		session_ask(s, UP_T_STATUS_REQ, FO_M_RECEIVING, w);
		session_arm(s, session_fast_wait(s, w));
	} else {
		session_ask(s, UP_T_STATUS_REQ, FO_M_RECEIVING,
		    session_window(s));
		session_arm(s, session_window(s) + session_margin(s));
	}
}

static void
session_status_tick(struct fo_session *s)
{
	struct fo_member	*m;
	uint64_t		 w;
	unsigned int		 silent = 0;

	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->asked && !m->answered && m->state == FO_M_RECEIVING)
			silent++;
	if (silent == 0 || s->step >= FO_TRIES) {
		session_status_end(s);
		return;
	}
	s->step++;
	/*
	 * A targeted ask has no implosion to spread: a short window when
	 * the round trip is known, but the configured wait, so a slow node
	 * gets as long as it always did before it is written off.
	 */
	w = session_fast_window(s, silent);
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->asked && !m->answered && m->state == FO_M_RECEIVING)
			session_target(s, UP_T_STATUS_REQ, m,
			    w != 0 ? w : session_window(s), 0);
	session_arm(s, session_window(s) + session_margin(s));
}

static void
session_status_end(struct fo_session *s)
{
	struct fo_member	*m, *next;
	unsigned int		 max_rounds = s->f->conf->max_rounds;

	evtimer_del(s->timer);
	session_rtt_round(s);
	session_fec_measure(s);
	TAILQ_FOREACH_SAFE(m, &s->members, sentry, next) {
		if (!m->asked)
			continue;
		if (m->state == FO_M_OFFERED && !m->answered) {
			m->asked = false;
			if (++m->offers >= FO_TRIES)
				session_write_off(m, "no answer to the offer");
			continue;
		}
		if (m->state != FO_M_RECEIVING) {
			m->asked = false;
			continue;
		}
		if (!m->answered) {
			m->asked = false;
			session_write_off(m, "no answer to STATUS_REQ");
			continue;
		}
		m->asked = false;
		if (m->held > m->progress_held)
			m->stall = 0;
		else if (++m->stall > max_rounds)
			session_write_off(m, "no progress in max_rounds "
			    "repair rounds");
	}
	s->unanswered = 0;
	session_decide(s);
}

static uint64_t
session_verify_wait(const struct fo_session *s)
{
	uint64_t	 work = s->c->pkg.size;

	/*
	 * Nodes hash the package first, and a delta node then rebuilds and
	 * hashes the whole image before it answers: allow about 20 MB/s
	 * over the larger of the two.
	 */
	if (s->c->pkg.image_size > work)
		work = s->c->pkg.image_size;
	return (session_window(s) + session_margin(s) + work / 20000);
}

static void
session_verify_begin(struct fo_session *s)
{
	struct fo_member	*m;

	s->phase = FO_P_VERIFY;
	s->step = 0;
	s->phase_ms = fanout__now_ms();
	s->unanswered = 0;
	TAILQ_FOREACH(m, &s->members, sentry) {
		m->asked = m->answered = false;
		if (m->state == FO_M_DOWNLOADED) {
			m->asked = true;
			s->unanswered++;
		}
	}
	log_debug("session %08x: verify, %u nodes", s->id, s->unanswered);
	s->verify_asked = s->unanswered;
	s->verify_nudge = 0;
	session_ask(s, UP_T_VERIFY, FO_M_DOWNLOADED, session_window(s));
	session_arm(s, session_verify_wait(s));
}

/*
 * The verify wait allows for the slowest hashing we expect (20 MB/s), so
 * a node that lost the VERIFY costs that whole wait.  Once half of the
 * nodes answered, their speed is known: the silent ones are asked once
 * more after three times what the answers took.  This extra ask does not
 * count against FO_TRIES, so a slow node is not written off sooner, and
 * a node still hashing simply answers twice (§5.2 step 5).
 */
static void
session_verify_progress(struct fo_session *s)
{
	uint64_t	 took, delay;

	if (s->phase != FO_P_VERIFY || s->verify_nudge != 0 ||
	    s->unanswered == 0 ||
	    (s->verify_asked - s->unanswered) * 2 < s->verify_asked)
		return;
	took = fanout__now_ms() - s->phase_ms;
	delay = 2 * took + session_window(s) + session_margin(s);
	if (delay >= session_verify_wait(s))
		return;
	s->verify_nudge = 1;
	session_arm(s, delay);
}

static void
session_verify_tick(struct fo_session *s)
{
	struct fo_member	*m;

	if (s->unanswered == 0 || s->step >= FO_TRIES) {
		session_verify_end(s);
		return;
	}
	if (s->verify_nudge == 1)
		s->verify_nudge = 2;	/* the early ask: not a try */
	else
		s->step++;
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->asked && !m->answered && m->state == FO_M_DOWNLOADED)
			session_target(s, UP_T_VERIFY, m, session_window(s),
			    0);
	session_arm(s, session_verify_wait(s));
}

static void
session_verify_end(struct fo_session *s)
{
	struct fo_member	*m, *next;

	evtimer_del(s->timer);
	TAILQ_FOREACH_SAFE(m, &s->members, sentry, next) {
		if (m->asked && !m->answered &&
		    m->state == FO_M_DOWNLOADED) {
			m->asked = false;
			session_write_off(m, "no answer to VERIFY");
			continue;
		}
		m->asked = false;
	}
	s->unanswered = 0;
	session_decide(s);
}

static void
session_activate_tick(struct fo_session *s)
{
	const struct ub_config	*conf = s->f->conf;
	struct fo_member	*m;
	unsigned int		 r = conf->offer_repeats != 0 ?
				    conf->offer_repeats : 1;

	if (s->step < r) {
		/* Repeated like OFFER: nodes past VERIFIED ignore it. */
		if (s->nstate[FO_M_VERIFIED] > 0) {
			/* Nodes held by a rollout are VERIFIED: name each. */
			TAILQ_FOREACH(m, &s->members, sentry)
				if (m->state == FO_M_ACTIVATING)
					session_send_activate(s, m);
		} else
			session_send_activate(s, NULL);
		s->step++;
		session_arm(s, conf->offer_window_ms / r);
		return;
	}
	session_decide(s);
}

static void
session_activate_begin(struct fo_session *s)
{
	const struct ub_config	*conf = s->f->conf;
	struct fo_member	*m;
	uint64_t		 due;

	s->phase = FO_P_ACTIVATE;
	s->step = 0;
	s->phase_ms = fanout__now_ms();
	due = s->phase_ms + conf->activate_delay_ms +
	    (uint64_t)conf->result_timeout_s * 1000;
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->state == FO_M_VERIFIED && !m->hold) {
			m->result_due_ms = due;
			campaign__set_state(m, FO_M_ACTIVATING);
		}
	/*
	 * Durable before the ACTIVATE goes out: a gateway killed during
	 * the activation delay then waits for the RESULT instead of
	 * asking the rebooting nodes to VERIFY again and writing them off.
	 */
	if (s->nstate[FO_M_ACTIVATING] > 0)
		db_commit_now(s->f->db);
	log_debug("session %08x: activate, %u nodes", s->id,
	    s->nstate[FO_M_ACTIVATING]);
	session_poll_arm(s, conf->activate_delay_ms + FO_POLL_MS);
	session_result_arm(s);
	session_activate_tick(s);
}

/* The first RESULT poll `delay' ms from now, then FO_POLL_MS apart. */
static void
session_poll_arm(struct fo_session *s, uint64_t delay)
{
	s->poll_ms = fanout__now_ms() + delay;
	s->poll_gap_ms = FO_POLL_MS;
}

/*
 * A node resends its final RESULT with back-off (docs/up-protocol.md
 * §5.2 step 7) to the address it last heard the gateway from.  After a
 * gateway restart that address is stale and the back-off may have grown
 * to 30 s, longer than we wait.  So the gateway asks each node whose
 * RESULT is overdue with a targeted VERIFY: a finished node answers it
 * with its RESULT (step 5), a node still rebooting ignores it, and every
 * node learns the gateway's current address from it.
 */
static void
session_poll(struct fo_session *s)
{
	struct fo_member	*m;

	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->state == FO_M_ACTIVATING)
			session_target(s, UP_T_VERIFY, m, 0, 0);
	s->poll_ms = fanout__now_ms() + s->poll_gap_ms;
	s->poll_gap_ms = s->poll_gap_ms * 2 < FO_POLL_MAX_MS ?
	    s->poll_gap_ms * 2 : FO_POLL_MAX_MS;
}

static void
session_rtimer_cb(int fd, short ev, void *arg)
{
	struct fo_session	*s = arg;
	struct fo_member	*m, *next;
	uint64_t		 now = fanout__now_ms();

	TAILQ_FOREACH_SAFE(m, &s->members, sentry, next)
		if (m->state == FO_M_ACTIVATING && m->result_due_ms <= now)
			session_write_off(m, "no result after activation");
	if (s->nstate[FO_M_ACTIVATING] > 0 && s->poll_ms != 0 &&
	    s->poll_ms <= now)
		session_poll(s);
	session_result_arm(s);
	if (s->phase == FO_P_RESULT || s->phase == FO_P_IDLE)
		session_decide(s);
}

static void
session_result_arm(struct fo_session *s)
{
	struct fo_member	*m;
	uint64_t		 now = fanout__now_ms(), due = UINT64_MAX;
	struct timeval		 tv;

	if (s->nstate[FO_M_ACTIVATING] == 0) {
		evtimer_del(s->rtimer);
		s->poll_ms = 0;
		return;
	}
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->state == FO_M_ACTIVATING && m->result_due_ms < due)
			due = m->result_due_ms;
	if (s->poll_ms != 0 && s->poll_ms < due)
		due = s->poll_ms;
	due = due > now ? due - now : 0;
	tv.tv_sec = due / 1000;
	tv.tv_usec = (due % 1000) * 1000;
	evtimer_add(s->rtimer, &tv);
}

/*
 * Picks the next phase from the members' states: offer the ones not yet
 * in (unless others are receiving: then they get the offer with the next
 * status round), move data while someone misses blocks, then verify,
 * activate, and wait for results.
 */
static void
session_decide(struct fo_session *s)
{
	uint64_t	 now;
	uint32_t	 npend, nrecv;

	evtimer_del(s->timer);
	if (!session_runnable(s)) {
		s->phase = FO_P_STOPPED;
		return;
	}
	npend = s->nstate[FO_M_PENDING] + s->nstate[FO_M_OFFERED];
	nrecv = s->nstate[FO_M_RECEIVING];
	now = fanout__now_ms();
	if (npend > 0 && nrecv == 0 && now < s->f->settle_ms) {
		/*
		 * A DISCOVER round is under way: offer once its ANNOUNCEs
		 * are in, so the nodes are members when they accept.
		 */
		s->phase = FO_P_IDLE;
		session_arm(s, s->f->settle_ms - now);
	} else if (npend > 0 && nrecv == 0)
		session_offer_begin(s);
	else if (nrecv > 0 && s->nneeded > 0)
		session_data_begin(s);
	else if (nrecv > 0)
		session_status_begin(s);
	else if (!stream__complete(s) && (s->nstate[FO_M_DOWNLOADED] > 0 ||
	    s->nstate[FO_M_VERIFIED] > 0))
		/*
		 * Cut-through: every block went out, but the gateway has not
		 * checked the whole-file hash yet.  VERIFY and ACTIVATE wait
		 * for it (stream__package_ready pokes the session).
		 */
		s->phase = FO_P_IDLE;
	else if (s->nstate[FO_M_DOWNLOADED] > 0)
		session_verify_begin(s);
	else if (campaign__releasable(s) > 0)	/* not held by a rollout */
		session_activate_begin(s);
	else {
		s->phase = s->nstate[FO_M_ACTIVATING] > 0 ? FO_P_RESULT :
		    FO_P_IDLE;
		campaign__put_session(s);
		if (s->phase == FO_P_IDLE)
			campaign__check_done(s->c);
	}
}

static void
session_timer_cb(int fd, short ev, void *arg)
{
	struct fo_session	*s = arg;

	switch (s->phase) {
	case FO_P_OFFER:
		session_offer_tick(s);
		break;
	case FO_P_STATUS:
		session_status_tick(s);
		break;
	case FO_P_VERIFY:
		session_verify_tick(s);
		break;
	case FO_P_ACTIVATE:
		session_activate_tick(s);
		break;
	case FO_P_IDLE:
	case FO_P_RESULT:
		session_decide(s);
		break;
	default:
		break;
	}
}

/* Ends the current phase early when nobody is left to wait for. */
static void
session_check(struct fo_session *s)
{
	switch (s->phase) {
	case FO_P_OFFER:
		if (s->nstate[FO_M_PENDING] + s->nstate[FO_M_OFFERED] == 0)
			session_decide(s);
		break;
	case FO_P_STATUS:
		if (s->unanswered == 0)
			session_status_end(s);
		break;
	case FO_P_VERIFY:
		if (s->unanswered == 0)
			session_verify_end(s);
		break;
	case FO_P_IDLE:
	case FO_P_RESULT:
		session_decide(s);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

struct fo_session *
session__new(struct fo_campaign *c, const char *transport, uint32_t id,
    uint16_t block_size, char **cause)
{
	struct fanout		*f = c->f;
	struct fo_session	*s;

	if (id == 0) {
		do
			id = fanout__random_u32();
		while (session_id_used(f, id));
	} else if (session__find(f, id) != NULL) {
		xasprintf(cause, "session %08x is already in use", id);
		return (NULL);
	}
	s = xcalloc(1, sizeof(*s));
	s->f = f;
	s->c = c;
	fanout__strlcpy(s->transport, transport, sizeof(s->transport));
	s->id = id;
	s->block_size = block_size;
	s->fd = -1;
	s->phase = FO_P_STOPPED;
	TAILQ_INIT(&s->members);
	s->timer = evtimer_new(f->base, session_timer_cb, s);
	s->rtimer = evtimer_new(f->base, session_rtimer_cb, s);
	if (s->timer == NULL || s->rtimer == NULL)
		fatalx("session: evtimer_new");
	TAILQ_INSERT_TAIL(&c->sessions, s, centry);
	TAILQ_INSERT_TAIL(&f->sessions, s, fentry);
	return (s);
}

static void
session_fill_offer(struct fo_session *s)
{
	/*
	 * The descriptor fields come from the one function the publisher
	 * also uses before signing (uplink_pkg_offer), so what the nodes
	 * check is byte for byte what the cloud signed.
	 */
	if (uplink_pkg_offer(&s->c->pkg, &s->offer) != 0)
		log_warnx("session %08x: package %s does not fit an OFFER",
		    s->id, s->c->package);
	s->offer.block_size = s->block_size;
	s->offer.nblocks = s->nblocks;
	s->offer.deadline_s = s->f->conf->session_deadline_s;
}

/*
 * block_size = min(config, mtu - UP_DATA_OVERHEAD, every member's
 * max_frame - UP_DATA_OVERHEAD).  A session keeps its block size for
 * life (restarts included): nodes resume only when it is unchanged.
 */
static uint16_t
session_block_size(struct fo_session *s, struct fo_tp *t)
{
	const struct registry_node	*n;
	struct fo_member		*m;
	uint32_t			 bs, mtu;

	bs = s->f->conf->block_size != 0 ? s->f->conf->block_size : 1024;
	mtu = t->caps.mtu != 0 && t->caps.mtu < UP_FRAME_MAX ? t->caps.mtu :
	    UP_FRAME_MAX;
	if (mtu <= UP_DATA_OVERHEAD)
		return (0);
	if (bs > mtu - UP_DATA_OVERHEAD)
		bs = mtu - UP_DATA_OVERHEAD;
	TAILQ_FOREACH(m, &s->members, sentry) {
		if ((n = registry_get(s->f->reg, m->node)) == NULL ||
		    n->max_frame <= UP_DATA_OVERHEAD)
			continue;
		if (bs > (uint32_t)n->max_frame - UP_DATA_OVERHEAD)
			bs = n->max_frame - UP_DATA_OVERHEAD;
	}
	return (bs > UINT16_MAX ? UINT16_MAX : (uint16_t)bs);
}

static int
session_open(struct fo_session *s)
{
	struct fo_tp	*t;
	uint32_t	 nblocks;
	bool		 first;

	if (s->fd != -1 && s->needed_buf != NULL)
		return (0);
	if ((t = session_tp(s)) == NULL) {
		log_debug("session %08x: transport %s is not open", s->id,
		    s->transport);
		return (-1);
	}
	if (s->block_size == 0 &&
	    (s->block_size = session_block_size(s, t)) == 0) {
		log_warnx("session %08x: mtu %u of %s is too small", s->id,
		    t->caps.mtu, t->name);
		return (-1);
	}
	nblocks = up_nblocks((uint32_t)s->c->pkg.size, s->block_size);
	if (s->nblocks != 0 && s->nblocks != nblocks)
		log_warnx("session %08x: %u blocks recorded, %u computed",
		    s->id, s->nblocks, nblocks);
	s->nblocks = nblocks;
	/* A partial blob while the download streams (stream.c). */
	if ((s->fd = stream__open(s)) == -1) {
		log_warnx("session %08x: package %s is not in the cache",
		    s->id, s->c->package);
		return (-1);
	}
	free(s->needed_buf);
	s->needed_buf = xcalloc(1, up_bitmap_bytes(s->nblocks));
	up_bitmap_init(&s->needed, s->needed_buf, s->nblocks);
	s->nneeded = 0;
	s->cursor = 0;
	s->pass = 0;
	session_fec_open(s, t);
	session_xr_open(s, t);
	session_fill_offer(s);
	first = s->started == 0;
	if (first)
		s->started = fanout__unix_ms();
	campaign__put_session(s);
	/*
	 * A new id is durable before an OFFER carries it: a gateway killed
	 * while a node activates must resume this session, or the node
	 * declines the new one as busy and its RESULT finds no session.
	 */
	if (first)
		db_commit_now(s->f->db);
	log_info("campaign %s: session %08x on %s: %u blocks of %u bytes, "
	    "%zu nodes", s->c->id, s->id, s->transport, s->nblocks,
	    s->block_size, s->nmembers);
	return (0);
}

void
session__start(struct fo_session *s)
{
	struct fo_member	*m;
	uint64_t		 due;

	if (s->c->state != FO_C_RUNNING || !s->c->ready)
		return;
	if (s->phase != FO_P_STOPPED && s->phase != FO_P_IDLE &&
	    s->phase != FO_P_RESULT)
		return;
	if (session_open(s) == -1)
		return;
	/* Restored ACTIVATING nodes get a fresh deadline. */
	due = fanout__now_ms() + s->f->conf->activate_delay_ms +
	    (uint64_t)s->f->conf->result_timeout_s * 1000;
	TAILQ_FOREACH(m, &s->members, sentry)
		if (m->state == FO_M_ACTIVATING && m->result_due_ms == 0)
			m->result_due_ms = due;
	/* They may have finished while we were down: ask soon. */
	if (s->nstate[FO_M_ACTIVATING] > 0 && s->poll_ms == 0)
		session_poll_arm(s, FO_POLL_MS / 2);
	session_result_arm(s);
	session_decide(s);
}

void
session__poke(struct fo_session *s)
{
	if (s->c->state != FO_C_RUNNING || !s->c->ready)
		return;
	if (s->phase == FO_P_STOPPED)
		session__start(s);
	else
		session_check(s);
}

void
session__stop(struct fo_session *s)
{
	struct fo_member	*m;

	evtimer_del(s->timer);
	evtimer_del(s->rtimer);
	if (s->t != NULL)
		fanout__data_remove(s->t, s);
	TAILQ_FOREACH(m, &s->members, sentry)
		m->asked = m->answered = false;
	s->unanswered = 0;
	s->phase = FO_P_STOPPED;
}

void
session__close(struct fo_session *s)
{
	session__stop(s);
	if (s->data_frames > 0)
		log_info("campaign %s: session %08x closed: %" PRIu64 " block "
		    "frames (%" PRIu64 " in repair passes, %" PRIu64 " parity, "
		    "%" PRIu64 " xor), %" PRIu64 " bytes", s->c->id, s->id,
		    s->data_frames, s->repair_frames, s->parity_frames,
		    s->xor_frames, s->bytes_sent);
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
	free(s->needed_buf);
	s->needed_buf = NULL;
	memset(&s->needed, 0, sizeof(s->needed));
	s->nneeded = 0;
	session_fec_free(s);
	session_xr_free(s);
}

void
session__free(struct fo_session *s)
{
	struct fo_member	*m;

	if (s == NULL)
		return;
	session__close(s);
	if (s->t != NULL)
		fanout__forget_session(s->t, s);
	while ((m = TAILQ_FIRST(&s->members)) != NULL)
		session__remove_member(s, m);
	event_free(s->timer);
	event_free(s->rtimer);
	session_rtt_free(s);
	TAILQ_REMOVE(&s->c->sessions, s, centry);
	TAILQ_REMOVE(&s->f->sessions, s, fentry);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Frames from nodes                                                    */

/* The member `node' of this session, or NULL. */
static struct fo_member *
session_member(struct fo_session *s, uint64_t node)
{
	struct fo_member	*m;

	if ((m = campaign__member(s->c, node)) == NULL || m->s != s)
		return (NULL);
	return (m);
}

/* A written-off node that turns out alive is taken back. */
static bool
session_revive(struct fo_session *s, struct fo_member *m)
{
	if (m->state != FO_M_FAILED || m->result != UP_R_CONN_LOST ||
	    !campaign__active(s->c) || m->tries >= FO_MAX_TRIES)
		return (false);
	m->tries++;
	m->result = UP_R_INITIAL;
	m->finished = 0;
	m->known = false;
	m->offers = m->stall = 0;
	campaign__set_state(m, FO_M_PENDING);
	log_info("campaign %s: node 0x%016" PRIx64 " is back", s->c->id,
	    m->node);
	return (true);
}

void
session__accept(struct fo_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	const struct up_accept		*a = &msg->u.accept;
	const struct registry_node	*n;
	struct fo_member		*m;

	if (session_member(s, a->node_id) == NULL &&
	    campaign__member(s->c, a->node_id) == NULL &&
	    (n = registry_get(s->f->reg, a->node_id)) != NULL)
		/* Known but not assigned yet (its ANNOUNCE raced the OFFER). */
		campaign__assign_node(s->f, n);
	if ((m = session_member(s, a->node_id)) == NULL) {
		/*
		 * Not targeted by this campaign (deployment filter), or not
		 * known at all: it must not install what it was not meant
		 * to get.  A member of another of its sessions (another
		 * instance) is left alone.
		 */
		if (campaign__member(s->c, a->node_id) == NULL &&
		    a->code == UP_R_INITIAL) {
			log_debug("session %08x: ACCEPT from non-member "
			    "0x%016" PRIx64 ", aborting it", s->id,
			    a->node_id);
			session_abort_node(s, a->node_id, src);
		}
		return;
	}
	m->addr = *src;
	session_rtt_sample(s);
	if (a->code == UP_R_BUSY) {
		/*
		 * Its slot serves another session for now: not a final
		 * answer.  It stays offered, so a later offer round (or the
		 * silent-node count) decides.
		 */
		log_debug("session %08x: node 0x%016" PRIx64 " is busy",
		    s->id, m->node);
		return;
	}
	if (a->code != UP_R_INITIAL) {
		if (FO_M_FINAL(m->state) || m->state >= FO_M_VERIFIED)
			return;
		if (a->code == UP_R_ALREADY)
			campaign__final(m, FO_M_UPDATED, UP_R_ALREADY,
			    s->c->pkg.version);
		else
			campaign__final(m, FO_M_DECLINED, a->code, NULL);
		session_check(s);
		campaign__check_done(s->c);
		return;
	}
	if (FO_M_FINAL(m->state) && !session_revive(s, m)) {
		if (m->state == FO_M_CANCELLED)
			session_abort_node(s, m->node, src);
		return;
	}
	if (m->state >= FO_M_VERIFIED)
		return;
	if (m->state <= FO_M_OFFERED)
		session_started(s, m);
	session_apply(s, m, &a->st, !m->known);
	session_answered(s, m);
	session_check(s);
}

void
session__status(struct fo_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	const struct up_status	*st = &msg->u.status;
	struct fo_member	*m;

	if ((m = session_member(s, st->node_id)) == NULL) {
		log_debug("session %08x: STATUS from non-member 0x%016"
		    PRIx64, s->id, st->node_id);
		return;
	}
	m->addr = *src;
	if (m->asked && !m->answered)
		session_rtt_status(s);
	if (FO_M_FINAL(m->state) && !session_revive(s, m))
		return;
	if (st->state == UP_NS_VERIFIED && m->state <= FO_M_DOWNLOADED) {
		m->held = s->nblocks;
		campaign__set_state(m, FO_M_VERIFIED);
	} else if ((st->state == UP_NS_RECEIVING ||
	    st->state == UP_NS_DOWNLOADED) && m->state <= FO_M_DOWNLOADED) {
		if (m->state <= FO_M_OFFERED)
			session_started(s, m);
		session_apply(s, m, &st->st, !m->known);
	}
	/*
	 * A DOWNLOADED node's STATUS (its unsolicited one, or a late answer
	 * to the last STATUS_REQ) does not answer VERIFY: its RESULT will.
	 */
	if (s->phase != FO_P_VERIFY || st->state == UP_NS_RECEIVING)
		session_answered(s, m);
	session_check(s);
}

void
session__result(struct fo_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	const struct up_result_msg	*r = &msg->u.result;
	struct fo_member		*m;
	enum fo_mstate			 st;

	if ((m = session_member(s, r->node_id)) == NULL) {
		log_debug("session %08x: RESULT from non-member 0x%016"
		    PRIx64, s->id, r->node_id);
		return;
	}
	m->addr = *src;
	if (r->state == UP_NS_VERIFIED) {
		if (m->state <= FO_M_DOWNLOADED) {
			m->held = s->nblocks;
			campaign__set_state(m, FO_M_VERIFIED);
		} else if (m->state == FO_M_ACTIVATING)
			/*
			 * Answer to a poll: the gateway stopped between
			 * committing ACTIVATING and sending ACTIVATE.
			 */
			session_send_activate(s, m);
		session_answered(s, m);
		session_verify_progress(s);
		session_check(s);
		return;
	}
	if (r->state != UP_NS_UPDATED && r->state != UP_NS_FAILED) {
		log_debug("session %08x: RESULT state %s from 0x%016" PRIx64
		    " ignored", s->id, up_state_str(r->state), m->node);
		return;
	}
	st = r->state == UP_NS_UPDATED ? FO_M_UPDATED : FO_M_FAILED;
	if (m->state == st && m->result == r->result) {
		/* Our ACK was lost: acknowledge again, report once. */
		s->f->duplicate_results++;
		log_debug("session %08x: duplicate RESULT from 0x%016" PRIx64,
		    s->id, m->node);
	} else
		campaign__final(m, st, r->result, r->version);
	/* Committed above: now the node may stop resending. */
	session_ack(s, m);
	if (s->phase != FO_P_STOPPED) {
		session_result_arm(s);
		session_check(s);
	}
	campaign__check_done(s->c);
}

void
session__abort(struct fo_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	const struct up_target	*a = &msg->u.target;
	struct fo_member	*m;
	uint8_t			 reason;

	if (a->node_id == 0 || (m = session_member(s, a->node_id)) == NULL ||
	    FO_M_FINAL(m->state))
		return;
	m->addr = *src;
	reason = a->reason != UP_R_INITIAL && a->reason != UP_R_SUCCESS ?
	    a->reason : UP_R_ABORTED;
	log_info("campaign %s: node 0x%016" PRIx64 " gave up: %s", s->c->id,
	    m->node, up_result_str(reason));
	campaign__final(m, FO_M_FAILED, reason, NULL);
	if (s->phase != FO_P_STOPPED)
		session_check(s);
	campaign__check_done(s->c);
}

void
session__announced(struct fo_session *s, struct fo_member *m,
    const struct up_announce *a)
{
	switch (a->state) {
	case UP_NS_RECEIVING:
	case UP_NS_DOWNLOADED:
		/*
		 * Rebooted mid-transfer, or we restarted: it is in the
		 * session with an unknown bitmap and will be asked.
		 */
		if (m->state <= FO_M_OFFERED) {
			session_started(s, m);
			m->known = false;
			campaign__set_state(m, FO_M_RECEIVING);
		}
		break;
	case UP_NS_VERIFIED:
		if (m->state <= FO_M_DOWNLOADED) {
			m->held = s->nblocks;
			campaign__set_state(m, FO_M_VERIFIED);
		}
		break;
	default:
		return;
	}
	session__poke(s);
}
