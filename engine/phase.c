/*
 * phase.c: a session's phase machine, the gateway side of the session
 * flow in docs/up-protocol.md §5:
 *
 *   OFFER     offer_repeats OFFERs across offer_window_ms; ACCEPTs carry
 *             what each node already holds (resume).
 *   DATA      one pass over the union of missing blocks ("needed"),
 *             read from the source straight into the link's
 *             preallocated frame and sealed in place (no allocation per
 *             frame); passes after the first carry UP_F_REPAIR; parity
 *             and XOR frames of the pass go with it (parity.c, xor.c).
 *   STATUS    the status round (status.c), then back to DATA.
 *   VERIFY    to all, then targeted to stragglers.
 *   ACTIVATE  repeated like OFFER; the nodes then reboot (result.c).
 *   RESULT    final RESULTs until result_timeout_s (result.c, its own
 *             timer, so latecomers are served meanwhile).
 *
 * The next phase is always chosen from the members' states
 * (eng__decide), so a node that joins, comes back or reboots in the
 * middle is simply taken along by the next phase that suits it.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <string.h>

#include "engine_internal.h"

static void	 phase_verify_end(struct eng_session *);

/* ------------------------------------------------------------------ */
/* Timers                                                               */

/* The link's floor for an answer window (profile.c), ms. */
uint64_t
eng__window(const struct eng_session *s)
{
	return (s->l != NULL ? s->l->pf.status_window_ms :
	    eng__params(s)->status_window_ms);
}

/* Time to allow for the answers of a round beyond the nodes' window. */
uint64_t
eng__margin(const struct eng_session *s)
{
	return (100 + eng__window(s) / 4);
}

void
eng__arm(struct eng_session *s, uint64_t ms)
{
	s->timer_at = eng__now_us(s->e) + ms * 1000;
	eng__touch(s->e);
}

void
eng__disarm(struct eng_session *s)
{
	s->timer_at = ENG_NEVER;
	s->arm_wait = false;
}

/*
 * Timers from the real send time (docs/engine.md, "Timers").  A window
 * for answers starts when the request is on the air: on a duty-cycled
 * link a STATUS_REQ may wait minutes behind pacing, and a window counted
 * from when it was queued would be over before it left.  The session
 * counts its control frames queued or on their way (txq, link.c); a
 * window armed with eng__arm_after() starts when the last of them has
 * left (tx_done, or the end of its estimated airtime for plugins that
 * report none), or was dropped.
 */
void
eng__arm_after(struct eng_session *s, uint64_t ms)
{
	if (s->txq == 0) {
		s->arm_wait = false;
		eng__arm(s, ms);
		return;
	}
	s->timer_at = ENG_NEVER;
	s->arm_wait = true;
	s->arm_ms = ms;
}

void
eng__batch(struct eng_session *s)
{
	s->epoch++;
}

void
eng__frame_left(struct eng_session *s, uint8_t type, uint64_t left_us)
{
	if (s->txq > 0)
		s->txq--;
	/* Round-trip samples count from when the request left. */
	if (type == UP_T_OFFER)
		s->offer_us = left_us;
	else if (type == UP_T_STATUS_REQ && s->ask_us != 0 &&
	    s->phase == ENG_P_STATUS && s->step == 0)
		s->ask_us = left_us;
	if (s->txq == 0 && s->arm_wait) {
		s->arm_wait = false;
		s->timer_at = left_us + s->arm_ms * 1000;
		eng__touch(s->e);
	}
}

/* ------------------------------------------------------------------ */
/* OFFER                                                                */

/*
 * The wait after each OFFER: the link's offer window spread over the
 * repeats, and at least the reply schedule of the nodes offered.
 */
static uint64_t
phase_offer_gap(struct eng_session *s, unsigned int r)
{
	uint64_t	 gap, w;

	gap = (s->l != NULL ? s->l->pf.offer_window_ms :
	    eng__params(s)->offer_window_ms) / r;
	/* The ACCEPTs' schedule, which the compact OFFER carries. */
	if (s->l != NULL && s->l->pf.slow && (w = eng__ask_schedule(s,
	    UP_T_OFFER, s->nstate[ENG_M_OFFERED])) > gap)
		gap = w;
	return (gap);
}

static void
phase_offer_tick(struct eng_session *s)
{
	const struct eng_params	*p = eng__params(s);
	struct eng_member	*m, *next;
	unsigned int		 r = p->offer_repeats != 0 ?
				    p->offer_repeats : 1;
	uint64_t		 gap = phase_offer_gap(s, r);

	if (s->step < r) {
		eng__batch(s);
		eng__send_offer(s);
		s->step++;
		if (s->step < r)
			eng__arm_after(s, gap);
		else if (s->polled)
			/* No window on a polled link: the nodes are polled. */
			eng__poll_round(s, ENG_M_OFFERED);
		else
			eng__arm_after(s, gap + eng__margin(s));
		return;
	}
	eng__poll_round_end(s);
	/*
	 * The window is over: count the unanswered offers.  A node that
	 * answered busy each time is declined so, a silent one is written
	 * off once silent for the link's silence (eng__offer_lost).
	 */
	TAILQ_FOREACH_SAFE(m, &s->members, entry, next) {
		if (m->state != ENG_M_OFFERED)
			continue;
		if (++m->offers >= ENG_TRIES)
			eng__offer_lost(m);
	}
	eng__decide(s);
}

static void
phase_offer_begin(struct eng_session *s)
{
	struct eng_member	*m;

	/* Offer time: the daemon looks at each node as it is now. */
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_PENDING)
			(void)eng__offer_member(m);
	if (s->nstate[ENG_M_OFFERED] == 0) {
		/* Nobody to offer after all, or not yet (the daemon said). */
		s->phase = ENG_P_IDLE;
		if (s->nstate[ENG_M_PENDING] == 0)
			eng__decide(s);
		else
			eng__arm(s, eng__params(s)->offer_window_ms);
		return;
	}
	s->phase = ENG_P_OFFER;
	s->step = 0;
	s->phase_ms = eng__now_ms(s->e);
	eng__debug("session %08x: offer (%u nodes)", s->id,
	    s->nstate[ENG_M_OFFERED]);
	phase_offer_tick(s);
}

/* ------------------------------------------------------------------ */
/* DATA                                                                 */

static void
phase_data_begin(struct eng_session *s)
{
	struct eng_link	*l = eng__session_link(s);

	s->phase = ENG_P_DATA;
	s->phase_ms = eng__now_ms(s->e);
	s->cursor = 0;
	s->fec_scan = 0;
	if (s->pass > 0 && eng__xr_plan(s))
		;	/* XOR frames and DATA; no parity this pass */
	else if (s->fec_k != 0 && s->pass > 0)
		eng__fec_plan(s);
	else if (s->fec_k != 0) {
		s->fec_p1_blocks = s->nneeded;
		s->fec_pro = eng__fec_proactive(s);
	}
	s->pass++;
	eng__debug("session %08x: pass %u, %u blocks", s->id, s->pass,
	    s->nneeded);
	if (l != NULL)
		eng__data_add(l, s);
}

size_t
eng__fill_data(struct eng_session *s, uint8_t *buf, size_t cap,
    struct tp_addr *dst)
{
	uint32_t	 i, lb;
	uint64_t	 off, lim;
	size_t		 len;
	uint8_t		 flags;
	int		 rc;

	if (s->phase == ENG_P_SERVE)
		return (eng__u_fill(s, buf, cap, dst));
	if (s->phase != ENG_P_DATA || !eng__runnable(s) || s->mtu_short) {
		/* (A session whose blocks no longer fit waits: replan.) */
		eng__data_remove(s->l, s);
		return (0);
	}
	i = up_bitmap_next_set(&s->needed, s->cursor);
	/*
	 * A package still downloading: only blocks wholly inside the
	 * verified prefix may go (the source says how far it reaches);
	 * parity only for groups wholly inside it.
	 */
	lim = s->src.limit(s->src.arg);
	lb = lim >= s->offer.size ? s->nblocks :
	    (uint32_t)(lim / s->block_size);
	/* The pass's XOR frames go first. */
	if (s->xr_next < s->xr_nframes && s->nstate[ENG_M_RECEIVING] > 0 &&
	    (len = eng__fill_xor(s, buf, cap)) != 0) {
		if (len == (size_t)-1)
			return (0);
		tp_addr_broadcast(dst);
		return (len);
	}
	/* Parity of the groups the pass has left behind goes first. */
	if (s->fec_k != 0 && s->nstate[ENG_M_RECEIVING] > 0 &&
	    (len = eng__fill_parity(s, buf, cap, i < lb ? i : lb)) != 0) {
		if (len == (size_t)-1)
			return (0);
		tp_addr_broadcast(dst);
		return (len);
	}
	if (i < s->nblocks && i >= lb && s->nstate[ENG_M_RECEIVING] > 0) {
		/* Wait in the pass: a poke re-adds us as bytes verify. */
		eng__data_remove(s->l, s);
		return (0);
	}
	if (i >= s->nblocks || s->nstate[ENG_M_RECEIVING] == 0) {
		/*
		 * Pass over: ask what is still missing.  On a polled bus
		 * the first pass was the one to all; now each node alone.
		 */
		eng__data_remove(s->l, s);
		if (s->shape == ENG_SHAPE_POLLED) {
			/* Each node's answer first, then the plan (rplan.c). */
			s->plan_open = true;
			eng__decide(s);
		} else
			eng__status_begin(s);
		return (0);
	}
	off = (uint64_t)i * s->block_size;
	len = eng__block_len(s, i);
	if (s->compact) {
		/*
		 * Compact DATA (§11.5.5); a frame larger than the link takes
		 * now goes in segments (cframe.c).
		 */
		if (!eng__read(s, off, buf + up_cdata_off(i), len))
			return (0);
		rc = (int)eng__cf_seal(s, buf, UP_FRAME_MAX, UP_T_DATA, i,
		    len);
		if (rc == 0)
			rc = UP_EINVAL;
	} else if (UP_DATA_OFF + len + UP_CRC_LEN > cap) {
		/* The mtu shrank under the session (eng__replan): wait. */
		s->mtu_short = true;
		eng__data_remove(s->l, s);
		return (0);
	} else {
		if (!eng__read(s, off, buf + UP_DATA_OFF, len))
			return (0);
		flags = (i == s->nblocks - 1 ? UP_F_LAST : 0) |
		    (s->pass > 1 ? UP_F_REPAIR : 0);
		rc = up_seal_data(buf, cap, UP_T_DATA, flags, s->id, i,
		    (uint16_t)len);
	}
	if (rc <= 0) {
		eng__warnx("session %08x: block %u: %s", s->id, i,
		    up_strerror(rc));
		eng__data_remove(s->l, s);
		eng_session_stop(s);
		return (0);
	}
	up_bitmap_clear(&s->needed, i);
	s->nneeded--;
	s->cursor = i + 1;
	/* Proactive parity follows the group's DATA in the first pass. */
	if (s->fec_k != 0 && s->pass == 1 && s->fec_pro > 0)
		s->fec_pend[i / s->fec_k] = eng__fec_pro_group(s,
		    i / s->fec_k);
	tp_addr_broadcast(dst);
	return ((size_t)rc);
}

/* ------------------------------------------------------------------ */
/* VERIFY                                                               */

uint64_t
eng__verify_wait(const struct eng_session *s)
{
	uint64_t	 work = s->offer.size;

	/*
	 * Nodes hash the package first, and a delta node then rebuilds and
	 * hashes the whole image before it answers: allow for the link's
	 * nodes' hashing speed (profile.c) over the larger of the two.
	 */
	if (s->offer.image_size > work)
		work = s->offer.image_size;
	return (eng__window(s) + eng__margin(s) + s->sched_wait_ms + work /
	    (s->l != NULL ? s->l->pf.hash_kbs : 20000));
}

static void
phase_verify_begin(struct eng_session *s)
{
	struct eng_member	*m;
	uint64_t		 w;

	s->phase = ENG_P_VERIFY;
	s->step = 0;
	s->phase_ms = eng__now_ms(s->e);
	s->unanswered = 0;
	TAILQ_FOREACH(m, &s->members, entry) {
		m->asked = m->answered = false;
		if (m->state == ENG_M_DOWNLOADED) {
			m->asked = true;
			s->unanswered++;
		}
	}
	eng__debug("session %08x: verify, %u nodes", s->id, s->unanswered);
	s->verify_asked = s->unanswered;
	s->verify_nudge = 0;
	eng__batch(s);
	/* On a slow link the answers come in reply slots (reply.c). */
	w = eng__ask_schedule(s, UP_T_VERIFY, s->unanswered);
	s->sched_wait_ms = w > eng__window(s) ? w - eng__window(s) : 0;
	eng__ask(s, UP_T_VERIFY, ENG_M_DOWNLOADED, w);
	eng__arm_after(s, eng__verify_wait(s));
}

/*
 * The verify wait allows for the slowest hashing we expect (20 MB/s), so
 * a node that lost the VERIFY costs that whole wait.  Once half of the
 * nodes answered, their speed is known: the silent ones are asked once
 * more after three times what the answers took.  This extra ask does not
 * count against ENG_TRIES, so a slow node is not written off sooner, and
 * a node still hashing simply answers twice (§5.2 step 5).
 */
void
eng__verify_progress(struct eng_session *s)
{
	uint64_t	 took, delay;

	if (s->phase != ENG_P_VERIFY || s->verify_nudge != 0 ||
	    s->unanswered == 0 ||
	    (s->verify_asked - s->unanswered) * 2 < s->verify_asked)
		return;
	took = eng__now_ms(s->e) - s->phase_ms;
	delay = 2 * took + eng__window(s) + eng__margin(s);
	if (delay >= eng__verify_wait(s))
		return;
	s->verify_nudge = 1;
	eng__arm(s, delay);
}

static void
phase_verify_tick(struct eng_session *s)
{
	struct eng_member	*m;

	if (s->unanswered == 0 || s->step >= ENG_TRIES) {
		phase_verify_end(s);
		return;
	}
	if (s->verify_nudge == 1)
		s->verify_nudge = 2;	/* the early ask: not a try */
	else
		s->step++;
	eng__batch(s);
	s->sched_wait_ms = 0;	/* targeted: answered at once */
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->asked && !m->answered && m->state == ENG_M_DOWNLOADED)
			eng__target(s, UP_T_VERIFY, m, eng__window(s), 0);
	eng__arm_after(s, eng__verify_wait(s));
}

static void
phase_verify_end(struct eng_session *s)
{
	struct eng_member	*m, *next;

	eng__disarm(s);
	TAILQ_FOREACH_SAFE(m, &s->members, entry, next) {
		if (m->asked && !m->answered &&
		    m->state == ENG_M_DOWNLOADED) {
			/* Rebooting, perhaps: asked again in the next round. */
			m->asked = false;
			if (eng__silent(m))
				eng__write_off(m, "no answer to VERIFY");
			continue;
		}
		m->asked = false;
	}
	s->unanswered = 0;
	eng__decide(s);
}

/* ------------------------------------------------------------------ */
/* The machine                                                          */

/* Nothing to send: results awaited, or idle until a member changes. */
static void
phase_rest(struct eng_session *s)
{
	s->phase = s->nstate[ENG_M_ACTIVATING] > 0 ? ENG_P_RESULT : ENG_P_IDLE;
	s->e->cb.session_save(s->e->cb.arg, s, false);
	if (s->phase == ENG_P_IDLE)
		eng__settle(s);
}

/*
 * Members are served alone: on a link that cannot broadcast (connect,
 * unicast-only) always; on a polled bus once its OFFER round and first
 * pass to all are over (poll_broadcast), since its repair goes to each
 * node alone, polled for its own bitmap.
 */
static bool
phase_serving(const struct eng_session *s, uint32_t npend, uint32_t nrecv)
{
	if (s->shape == ENG_SHAPE_UNICAST)
		return (true);
	if (s->shape != ENG_SHAPE_POLLED)
		return (false);
	if (s->pass > 0)
		return (true);
	return (!(npend > 0 && nrecv == 0) && !(nrecv > 0 && s->nneeded > 0));
}

/* A member offered and silent so far, with offer rounds left. */
static bool
phase_offers_left(const struct eng_session *s)
{
	const struct eng_member	*m;

	TAILQ_FOREACH(m, &s->members, entry)
		if (!m->gone && m->state == ENG_M_OFFERED &&
		    m->offers < ENG_TRIES)
			return (true);
	return (false);
}

/*
 * Picks the next phase from the members' states: offer the ones not yet
 * in (unless others are receiving: then they get the offer with the next
 * status round), move data while someone misses blocks, then verify,
 * activate, and wait for results.
 */
void
eng__decide(struct eng_session *s)
{
	struct eng_link	*l = s->l;
	uint64_t	 now;
	uint32_t	 npend, nrecv;

	eng__disarm(s);
	if (!eng__runnable(s)) {
		s->phase = ENG_P_STOPPED;
		return;
	}
	npend = s->nstate[ENG_M_PENDING] + s->nstate[ENG_M_OFFERED];
	nrecv = s->nstate[ENG_M_RECEIVING];
	now = eng__now_ms(s->e);
	if (s->off_state == ENG_OFF_RUN || s->off_state == ENG_OFF_START) {
		/*
		 * The module has the package: its progress decides (the
		 * phase timer, so offload_start() and offload_cancel() are
		 * called from eng_run, never from a plugin's callback).
		 */
		s->phase = ENG_P_OFFLOAD;
		s->timer_at = s->off_state == ENG_OFF_RUN && s->off_peers > 0 ?
		    s->off_idle_at : 0;
		eng__touch(s->e);
		return;
	}
	/*
	 * Module offload: once the offers are answered (on a link where
	 * each member is offered alone, every one of them), the accepted
	 * nodes' package goes to the module.  A member silent to the offer
	 * so far with offer rounds left gets them first: the module takes a
	 * list of stations, and a slow one that accepted once the list was
	 * handed over would wait for an offload of its own, or (a module
	 * that sends to every station) be served by the module off the
	 * list, its progress unseen.
	 */
	if (nrecv > 0 && eng__off_wanted(s) && (npend == 0 ||
	    s->shape != ENG_SHAPE_UNICAST)) {
		if (phase_offers_left(s))
			phase_offer_begin(s);
		else
			eng__off_begin(s);
		return;
	}
	/*
	 * Members served alone (docs/engine.md "Link shapes"): on a link
	 * that cannot broadcast, from the start; on a polled bus, after the
	 * OFFER round and the first pass to all.
	 */
	if (phase_serving(s, npend, nrecv)) {
		if (eng__plan_round(s)) {
			/* Blocks to all again, then each node asked again. */
			phase_data_begin(s);
			return;
		}
		if (!eng__u_serve(s))
			phase_rest(s);
		return;
	}
	if (npend > 0 && nrecv == 0 && l != NULL && now < l->settle_ms) {
		/*
		 * A DISCOVER round is under way: offer once its ANNOUNCEs
		 * are in, so the nodes are members when they accept.
		 */
		s->phase = ENG_P_IDLE;
		eng__arm(s, l->settle_ms - now);
	} else if (npend > 0 && nrecv == 0)
		phase_offer_begin(s);
	else if (nrecv > 0 && (s->nneeded > 0 || s->fec_counted))
		phase_data_begin(s);
	else if (nrecv > 0)
		eng__status_begin(s);
	else if (!s->src.complete(s->src.arg) &&
	    (s->nstate[ENG_M_DOWNLOADED] > 0 ||
	    s->nstate[ENG_M_VERIFIED] > 0))
		/*
		 * Every block went out, but the daemon has not checked the
		 * whole-file hash of the streaming package yet.  VERIFY and
		 * ACTIVATE wait for it (the daemon pokes the session).
		 */
		s->phase = ENG_P_IDLE;
	else if (s->nstate[ENG_M_DOWNLOADED] > 0)
		phase_verify_begin(s);
	else if (eng__releasable(s) > 0)
		eng__activate_begin(s);
	else
		phase_rest(s);
}

void
eng__phase_timer(struct eng_session *s)
{
	switch (s->phase) {
	case ENG_P_OFFER:
		phase_offer_tick(s);
		break;
	case ENG_P_STATUS:
		eng__status_tick(s);
		break;
	case ENG_P_VERIFY:
		phase_verify_tick(s);
		break;
	case ENG_P_ACTIVATE:
		eng__activate_tick(s);
		break;
	case ENG_P_IDLE:
	case ENG_P_RESULT:
		eng__decide(s);
		break;
	case ENG_P_OFFLOAD:
		eng__off_timer(s);
		break;
	default:
		break;
	}
}

void
eng__check(struct eng_session *s)
{
	switch (s->phase) {
	case ENG_P_OFFER:
		if (s->nstate[ENG_M_PENDING] + s->nstate[ENG_M_OFFERED] == 0)
			eng__decide(s);
		break;
	case ENG_P_STATUS:
		if (s->unanswered == 0)
			eng__status_end(s);
		break;
	case ENG_P_VERIFY:
		if (s->unanswered == 0)
			phase_verify_end(s);
		break;
	case ENG_P_IDLE:
	case ENG_P_RESULT:
		eng__decide(s);
		break;
	default:
		break;
	}
}
