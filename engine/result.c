/*
 * result.c: ACTIVATE, and the wait for each member's final RESULT.
 *
 * ACTIVATE goes to the verified members the daemon does not hold,
 * repeated like OFFER (a node already past VERIFIED ignores it); held
 * members (a rollout's download-only or gated node) stop at VERIFIED, so
 * when some are held each of the others is named.  The members go
 * ACTIVATING durably before the first ACTIVATE leaves (session_save).
 *
 * Every ACTIVATING member has a deadline (activate_delay_ms +
 * result_timeout_s from its ACTIVATE); a member that misses it is
 * written off, but a late RESULT still replaces the write-off (answer.c).
 * The wait runs on the session's second timer (rtimer_at), apart from
 * the phase timer, so other members are served meanwhile.
 *
 * Polls.  A node resends its final RESULT with back-off (docs/up-
 * protocol.md §5.2 step 7) to the address it last heard the gateway
 * from.  After a gateway restart that address is stale and the back-off
 * may have grown to 30 s, longer than we wait.  So the gateway asks each
 * node whose RESULT is overdue with a targeted VERIFY: a finished node
 * answers it with its RESULT (step 5), a node still rebooting ignores
 * it, and every node learns the gateway's current address from it.  The
 * first poll goes ENG_POLL_MS after the activation delay, then the gap
 * doubles up to ENG_POLL_MAX_MS.
 */
#include <sys/queue.h>

#include <string.h>

#include "engine_internal.h"

/* The RESULT wait after ACTIVATE: the link's (profile.c). */
static uint32_t
result_timeout_s(const struct eng_session *s)
{
	return (s->l != NULL ? s->l->pf.result_timeout_s :
	    eng__params(s)->result_timeout_s);
}

/* The link's first poll gap (profile.c), ENG_POLL_MS on a LAN. */
static uint32_t
result_poll_first(const struct eng_session *s)
{
	return (s->l != NULL ? s->l->pf.poll_ms : ENG_POLL_MS);
}

/* The first RESULT poll `delay' ms from now, then the link's gap. */
static void
result_poll_arm(struct eng_session *s, uint64_t delay)
{
	/* Members served alone are visited for their RESULT (unicast.c). */
	if (eng__unicast(s))
		return;
	s->poll_ms = eng__now_ms(s->e) + delay;
	s->poll_gap_ms = result_poll_first(s);
}

static void
result_poll(struct eng_session *s)
{
	struct eng_member	*m;
	uint32_t		 max;

	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_ACTIVATING)
			eng__target(s, UP_T_VERIFY, m, 0, 0);
	max = s->l != NULL ? s->l->pf.poll_max_ms : ENG_POLL_MAX_MS;
	s->poll_ms = eng__now_ms(s->e) + s->poll_gap_ms;
	s->poll_gap_ms = s->poll_gap_ms * 2 < max ? s->poll_gap_ms * 2 : max;
}

void
eng__result_arm(struct eng_session *s)
{
	struct eng_member	*m;
	uint64_t		 due = UINT64_MAX;

	if (s->nstate[ENG_M_ACTIVATING] == 0 || eng__unicast(s)) {
		/* (Members served alone: their visits keep the time.) */
		s->rtimer_at = ENG_NEVER;
		s->poll_ms = 0;
		return;
	}
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_ACTIVATING && m->result_due_ms < due)
			due = m->result_due_ms;
	if (s->poll_ms != 0 && s->poll_ms < due)
		due = s->poll_ms;
	s->rtimer_at = due * 1000;
	eng__touch(s->e);
}

void
eng__result_timer(struct eng_session *s)
{
	struct eng_member	*m, *next;
	uint64_t		 now = eng__now_ms(s->e);

	/*
	 * Members served alone are written off by their own visits
	 * (unicast.c): a visit may wait for a slot, which is no fault of
	 * the node.
	 */
	TAILQ_FOREACH_SAFE(m, &s->members, entry, next)
		if (m->state == ENG_M_ACTIVATING && m->result_due_ms <= now &&
		    !eng__unicast(s))
			eng__write_off(m, "no result after activation");
	if (s->nstate[ENG_M_ACTIVATING] > 0 && s->poll_ms != 0 &&
	    s->poll_ms <= now)
		result_poll(s);
	eng__result_arm(s);
	if (s->phase == ENG_P_RESULT || s->phase == ENG_P_IDLE)
		eng__decide(s);
}

/* The members just set ACTIVATING: their deadline, the first poll. */
void
eng__activating(struct eng_session *s)
{
	const struct eng_params	*p = eng__params(s);
	struct eng_member	*m;
	uint64_t		 due;

	due = eng__now_ms(s->e) + p->activate_delay_ms +
	    (uint64_t)result_timeout_s(s) * 1000;
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_ACTIVATING && m->result_due_ms == 0)
			m->result_due_ms = due;
	result_poll_arm(s, p->activate_delay_ms + result_poll_first(s));
	eng__result_arm(s);
}

/* A (re)started session: restored ACTIVATING nodes get a deadline. */
void
eng__result_resume(struct eng_session *s)
{
	const struct eng_params	*p = eng__params(s);
	struct eng_member	*m;
	uint64_t		 due;

	due = eng__now_ms(s->e) + p->activate_delay_ms +
	    (uint64_t)result_timeout_s(s) * 1000;
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_ACTIVATING && m->result_due_ms == 0)
			m->result_due_ms = due;
	/* They may have finished while we were down: ask soon. */
	if (s->nstate[ENG_M_ACTIVATING] > 0 && s->poll_ms == 0)
		result_poll_arm(s, result_poll_first(s) / 2);
	eng__result_arm(s);
}

/* ------------------------------------------------------------------ */
/* ACTIVATE                                                             */

void
eng__activate_tick(struct eng_session *s)
{
	const struct eng_params	*p = eng__params(s);
	struct eng_member	*m;
	unsigned int		 r = p->offer_repeats != 0 ?
				    p->offer_repeats : 1;

	if (s->step < r) {
		eng__batch(s);
		/* Repeated like OFFER: nodes past VERIFIED ignore it. */
		if (s->nstate[ENG_M_VERIFIED] > 0 || s->strangers > 0) {
			/*
			 * Held nodes are VERIFIED, or a node no member may
			 * hold the image: name each of the others.
			 */
			TAILQ_FOREACH(m, &s->members, entry)
				if (m->state == ENG_M_ACTIVATING)
					eng__send_activate(s, m);
		} else
			eng__send_activate(s, NULL);
		s->step++;
		eng__arm_after(s, (s->l != NULL ? s->l->pf.offer_window_ms :
		    p->offer_window_ms) / r);
		return;
	}
	eng__decide(s);
}

void
eng__activate_begin(struct eng_session *s)
{
	struct eng		*e = s->e;
	struct eng_member	*m;

	s->phase = ENG_P_ACTIVATE;
	s->step = 0;
	s->phase_ms = eng__now_ms(e);
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_VERIFIED && !m->hold) {
			m->result_due_ms = 0;	/* eng__activating sets it */
			eng__set_state(m, ENG_M_ACTIVATING);
		}
	eng__activating(s);
	/*
	 * Durable before the ACTIVATE goes out: a gateway killed during
	 * the activation delay then waits for the RESULT instead of
	 * asking the rebooting nodes to VERIFY again and writing them off.
	 */
	if (s->nstate[ENG_M_ACTIVATING] > 0)
		e->cb.session_save(e->cb.arg, s, true);
	eng__debug("session %08x: activate, %u nodes", s->id,
	    s->nstate[ENG_M_ACTIVATING]);
	eng__activate_tick(s);
}

/* Verified members that may activate (not held). */
uint32_t
eng__releasable(const struct eng_session *s)
{
	const struct eng_member	*m;
	uint32_t		 n = 0;

	if (s->nstate[ENG_M_VERIFIED] == 0)
		return (0);
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_VERIFIED && !m->hold)
			n++;
	return (n);
}
