/*
 * status.c: a session's status rounds and its round-trip estimate.
 *
 * A status round ends a data pass: STATUS_REQ to the receiving nodes
 * (one frame to all, or targeted when they are few), a wait, targeted
 * STATUS_REQs to the silent ones (ENG_TRIES), and the union of what they
 * miss becomes the next pass's needed set (session.c, eng__apply).  A
 * node that made no progress for max_rounds rounds, or that never
 * answers, is written off.
 *
 * Feedback timers from a measured round trip (research/multicast-delta.md
 * §7.1: status after ~1 GRTT, repair after (K+1) GRTT; on a LAN GRTT is
 * about 1 ms).  Samples: the quickest ACCEPT after an OFFER (a node
 * answers an OFFER at once, but its first answer includes setting up
 * its slot, tens of ms on the testbed), then, once a status round to all
 * has been answered, the quickest STATUS after its STATUS_REQ: one round
 * trip plus the smallest of the nodes' random delays, an estimate that
 * errs long.  Each round's figure replaces the last, so the timers
 * follow the link as it loads.  Until a sample exists the configured
 * windows apply.
 *
 * A fast status round asks every node to answer within SESSION_K x GRTT
 * plus the time the answers take on the link (no implosion: one STATUS
 * each, at most the link's uplink frame), and waits that plus 2 GRTT and SESSION_SLACK_US for scheduling
 * on a busy host.  Only the first wait of a round is fast: a node still
 * silent is asked again (targeted) and given the configured
 * status_window_ms + margin, ENG_TRIES times, so a slow node is never
 * written off sooner than before.  The samples and the estimate live in
 * struct eng_session.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <string.h>

#include "engine_internal.h"

#define SESSION_K		1
#define SESSION_SLACK_US	20000

/* ------------------------------------------------------------------ */
/* The round trip                                                       */

/* An ACCEPT arrived: one GRTT sample against the last OFFER queued. */
void
eng__rtt_accept(struct eng_session *s)
{
	uint64_t	 now = eng__now_us(s->e), d;

	if (s->offer_us == 0 || now < s->offer_us)
		return;
	d = now - s->offer_us;
	/* Longer than the configured wait: not a LAN round trip. */
	if (s->rtt_from_status || d > (eng__window(s) + eng__margin(s)) *
	    1000)
		return;
	if (s->grtt_us == 0 || d < s->grtt_us) {
		s->grtt_us = d;
		eng__debug("session %08x: grtt %" PRIu64 " us (accept)",
		    s->id, d);
	}
}

/* A STATUS arrived during a round to all: the quickest one counts. */
void
eng__rtt_status(struct eng_session *s)
{
	uint64_t	 now = eng__now_us(s->e);

	if (s->phase != ENG_P_STATUS || s->ask_us == 0 || now < s->ask_us)
		return;
	if (s->round_us == 0 || now - s->ask_us < s->round_us)
		s->round_us = now - s->ask_us;
}

/* A status round is over: its quickest answer is the new GRTT. */
static void
status_rtt_round(struct eng_session *s)
{
	if (s->round_us != 0 && s->round_us <= (eng__window(s) +
	    eng__margin(s)) * 1000) {
		s->grtt_us = s->round_us;
		s->rtt_from_status = true;
		eng__debug("session %08x: grtt %" PRIu64 " us (status)",
		    s->id, s->grtt_us);
	}
	s->ask_us = s->round_us = 0;
}

/*
 * The window of a fast round (ms, for STATUS_REQ), or 0 when no round
 * trip is known: K x GRTT plus every asked node's STATUS on the link.
 */
static uint64_t
status_fast_window(struct eng_session *s, unsigned int nasked)
{
	struct eng_link	*l = eng__session_link(s);
	uint64_t	 us, bps;

	if (s->grtt_us == 0 || l == NULL)
		return (0);
	/* Each answer is at most the link's uplink frame (profile.c). */
	bps = l->caps.bitrate_bps != 0 ? l->caps.bitrate_bps : 1000000;
	us = SESSION_K * s->grtt_us + (uint64_t)nasked *
	    l->pf.answer_bytes * 8 * 1000000 / bps;
	us = (us + 999) / 1000;
	if (us < 1)
		us = 1;
	if (us >= eng__window(s))
		return (0);	/* not faster than the configured window */
	return (us);
}

/* How long a fast round waits: its window, 2 GRTT and some slack. */
static uint64_t
status_fast_wait(struct eng_session *s, uint64_t window)
{
	return (window + (2 * s->grtt_us + SESSION_SLACK_US + 999) / 1000);
}

/* ------------------------------------------------------------------ */
/* The round                                                            */

void
eng__status_begin(struct eng_session *s)
{
	struct eng_member	*m;
	uint64_t		 w;
	bool			 offer = false;

	s->phase = ENG_P_STATUS;
	s->step = 0;
	s->phase_ms = eng__now_ms(s->e);
	s->unanswered = 0;
	eng__batch(s);
	eng__fec_round(s);
	eng__xr_round(s);
	eng__agg_round(s);
	eng__status_form(s);
	/*
	 * Latecomers and silent nodes get the offer with the round; a
	 * latecomer only if the daemon lets it go at offer time.
	 */
	TAILQ_FOREACH(m, &s->members, entry) {
		m->asked = m->answered = false;
		if (m->state == ENG_M_PENDING) {
			if (eng__offer_member(m))
				offer = true;
		} else if (m->state == ENG_M_OFFERED)
			offer = true;
		if (m->state == ENG_M_RECEIVING ||
		    m->state == ENG_M_OFFERED) {
			m->asked = true;
			s->unanswered++;
			m->progress_held = m->held;
		}
	}
	/*
	 * With a measured round trip the first wait is short; silent
	 * nodes then get the configured window (eng__status_tick).  On a
	 * slow link the answers need a schedule of reply slots instead
	 * (reply.c): a round trip tells nothing there.
	 */
	w = s->l != NULL && s->l->pf.slow ? 0 :
	    status_fast_window(s, s->unanswered);
	/* A round to all gives a round-trip sample. */
	s->ask_us = s->nstate[ENG_M_RECEIVING] * 2 >= s->nmembers ?
	    eng__now_us(s->e) : 0;
	s->round_us = 0;
	if (w != 0) {
		eng__debug("session %08x: status round, %u nodes asked, "
		    "window %" PRIu64 " ms", s->id, s->unanswered, w);
		eng__ask(s, UP_T_STATUS_REQ, ENG_M_RECEIVING, w);
		eng__arm_after(s, status_fast_wait(s, w));
	} else {
		w = eng__ask_schedule(s, UP_T_STATUS_REQ, s->unanswered);
		eng__debug("session %08x: status round, %u nodes asked, "
		    "window %" PRIu64 " ms%s", s->id, s->unanswered, w,
		    s->sq_missing ? ", counts from nodes missing blocks" : "");
		/* Latecomers' OFFERs carry the same schedule. */
		if (offer)
			eng__send_offer(s);
		eng__ask(s, UP_T_STATUS_REQ, ENG_M_RECEIVING, w);
		eng__arm_after(s, w + 100 + w / 4);
		return;
	}
	if (offer)
		eng__send_offer(s);
}

void
eng__status_tick(struct eng_session *s)
{
	struct eng_member	*m;
	uint64_t		 w;
	unsigned int		 silent = 0;

	TAILQ_FOREACH(m, &s->members, entry)
		if (m->asked && !m->answered && m->state == ENG_M_RECEIVING)
			silent++;
	/*
	 * Asked to answer only if missing something: silence is no
	 * reason to ask again (eng__sq_missing_end).
	 */
	if (silent == 0 || s->step >= ENG_TRIES || s->sq_missing) {
		eng__status_end(s);
		return;
	}
	s->step++;
	eng__batch(s);
	/*
	 * A targeted ask has no implosion to spread: a short window when
	 * the round trip is known, but the configured wait, so a slow node
	 * gets as long as it always did before it is written off.
	 */
	w = status_fast_window(s, silent);
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->asked && !m->answered && m->state == ENG_M_RECEIVING)
			eng__target(s, UP_T_STATUS_REQ, m,
			    w != 0 ? w : eng__window(s), 0);
	eng__arm_after(s, eng__window(s) + eng__margin(s));
}

void
eng__status_end(struct eng_session *s)
{
	struct eng_member	*m, *next;
	unsigned int		 max_rounds = eng__params(s)->max_rounds;

	eng__disarm(s);
	eng__sq_missing_end(s);
	status_rtt_round(s);
	eng__fec_measure(s);
	TAILQ_FOREACH_SAFE(m, &s->members, entry, next) {
		if (!m->asked)
			continue;
		if (m->state == ENG_M_OFFERED && !m->answered) {
			m->asked = false;
			if (++m->offers >= ENG_TRIES)
				eng__offer_lost(m);
			continue;
		}
		if (m->state != ENG_M_RECEIVING) {
			m->asked = false;
			continue;
		}
		if (!m->answered) {
			/* Not silent long enough yet: asked next round. */
			m->asked = false;
			if (eng__silent(m))
				eng__write_off(m, "no answer to STATUS_REQ");
			continue;
		}
		m->asked = false;
		if (m->held > m->progress_held)
			m->stall = 0;
		else if (++m->stall > max_rounds)
			eng__write_off(m, "no progress in max_rounds "
			    "repair rounds");
	}
	s->unanswered = 0;
	eng__lone_check(s);
	eng__decide(s);
}
