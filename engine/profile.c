/*
 * profile.c: a link's profile, the figures its sessions run by
 * (docs/engine.md, "The link profile").
 *
 * The daemon gives each link its configured values (struct eng_params:
 * [fanout], and what the instance's own section sets).  Values the
 * instance set are used as given (eng_params.fixed).  The others are
 * derived from the link's facts (caps, the plugin's airtime model, the
 * duty cycle of the band its broadcasts use) and never fall below the
 * configured ones, which were chosen for a LAN: on a LAN every derived
 * figure is smaller, so the LAN runs as configured, and a 51-byte radio
 * at 1 % duty gets windows in seconds and minutes instead of a LAN's
 * milliseconds.  So the precedence is: the instance's section, what the
 * link needs, [fanout]; a [fanout] value the operator wrote
 * (eng_params.given) that the link must exceed is named in a warning.
 *
 * What is derived here:
 *  - the answer a node sends: the uplink MTU (caps.uplink_mtu, else the
 *    MTU) and its time on air, which sizes reply slots and windows;
 *  - reply schedules (docs/up-protocol.md §11.9): for n answers of k
 *    frames each, slot_ms = k answers' airtime plus a turnaround, slots
 *    about 2.5 n (a given answer then collides with none of the others
 *    with probability (1 - 1/slots)^(n - 1): 67 % for 20 nodes), so the
 *    window is slots x slot_ms; on a fast link (an answer on air in less
 *    than a millisecond) one-millisecond slots across the configured
 *    window, as a full frame's window_ms means;
 *  - the discovery interval: a DISCOVER and the ANNOUNCEs it asks for
 *    take at most ENG_DISC_SHARE of the duty budget (a DISCOVER every
 *    30 s at SF12 alone is 4 % of the airtime, 4 times a 1 % budget),
 *    or on a slow link without a duty cycle of its time (link.c scales
 *    it to the nodes heard at each DISCOVER);
 *  - the RESULT polls after ACTIVATE: at least a targeted ask and its
 *    answer apart, and no more airtime than ENG_POLL_SHARE of the budget;
 *  - how fast a node hashes the package before it answers VERIFY
 *    (node_hash_kbs): 20 MB/s on a LAN's nodes, 1 MB/s on a small link's
 *    microcontrollers, unless configured;
 *  - how long a node may stay silent before it is written off
 *    (node_silence_ms, issue 7): 10 s plus four MTU frames on air at the
 *    link's rate and duty cycle, at most an hour.
 */
#include <string.h>

#include "engine_internal.h"

#define ENG_POLL_SHARE	4	/* RESULT polls: 1/4 of it */
#define ENG_HASH_LAN	20000	/* kB/s: a LAN node hashes its package */
#define ENG_HASH_SMALL	1000	/* kB/s: a microcontroller's SHA-256 */
#define ENG_FAST_US	1000	/* an answer this short needs no slots */

unsigned int
eng__ann_frames(const struct eng_link *l)
{
	uint32_t	 up;

	up = l->pf.answer_bytes > l->caps.frame_overhead + UP_SEG_HDR_LEN +
	    1 ? l->pf.answer_bytes - l->caps.frame_overhead - UP_SEG_HDR_LEN :
	    1;
	return ((100 + up - 1) / up);
}

uint64_t
eng__disc_ms(struct eng_link *l, unsigned int n)
{
	uint64_t	 w = l->pf.status_window_ms, x;

	if (l->pf.slow && eng__link_compact(l)) {
		if (n < ENG_DISC_MIN)
			n = ENG_DISC_MIN;
		if ((x = eng__schedule_ms(l, n, eng__ann_frames(l))) > w)
			w = x;
	}
	return (w);
}

/* Time on air of a frame of len bytes: the plugin's model, else the rate. */
uint32_t
eng__air(struct eng_link *l, size_t len)
{
	struct tp_addr	 all;

	if (l->ops->airtime != NULL && l->tp != NULL) {
		tp_addr_broadcast(&all);
		return (l->ops->airtime(l->tp, &all, len));
	}
	return (pacer__airtime(&l->pacer, len));
}

/* The duty share of the band broadcasts use, ppm (0: unregulated). */
static uint32_t
profile_duty(struct eng_link *l)
{
	struct tp_addr	 all;
	unsigned int	 b = 0;

	if (l->caps.nbands == 0)
		return (l->caps.duty_cycle_ppm);
	if (l->ops->band != NULL && l->tp != NULL) {
		tp_addr_broadcast(&all);
		b = l->ops->band(l->tp, &all, eng__link_mtu(l));
	}
	return (b < l->caps.nbands ? l->caps.band[b].duty_ppm : 0);
}

/*
 * Time a frame costs the link, ms: its airtime stretched by the duty
 * cycle (at 1 %, 100 times its airtime).
 */
static uint64_t
profile_cost_ms(const struct eng_link *l, uint64_t air_us)
{
	if (l->pf.duty_ppm != 0)
		air_us = air_us * 1000000 / l->pf.duty_ppm;
	return ((air_us + 999) / 1000);
}

/*
 * A figure of the profile.  The link's own section: as given.  Else the
 * larger of the configured value ([fanout], chosen for a LAN) and the
 * one the link needs: a value the link cannot keep is never used.
 * When the operator set that [fanout] value (eng_params.given) and the
 * link needs more, it is said once, as a warning: a LAN-sized [fanout]
 * section silently stretched on a slow link would look like a bug.
 */
static unsigned int
profile_pick(struct eng_link *l, uint32_t bit, unsigned int conf,
    uint64_t derived, unsigned int was)
{
	static const struct {
		uint32_t	 bit;
		const char	*key;
		const char	*unit;
	} names[] = {
		{ ENG_FIX_OFFER_WINDOW, "offer_window_ms", "ms" },
		{ ENG_FIX_STATUS_WINDOW, "status_window_ms", "ms" },
		{ ENG_FIX_DISCOVER, "discover_interval_s", "s" },
		{ ENG_FIX_RESULT_TIMEOUT, "result_timeout_s", "s" }
	};
	const struct eng_params	*p = &l->p;
	unsigned int		 v;
	size_t			 i;

	if ((p->fixed & bit) != 0 || derived <= conf)
		return (conf);
	v = derived > UINT32_MAX ? UINT32_MAX : (unsigned int)derived;
	if ((p->given & bit) != 0 && v != was) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (names[i].bit == bit)
				break;
		if (i < sizeof(names) / sizeof(names[0]))
			eng__warnx("link %s: [fanout] %s = %u is too short "
			    "for this link: %u %s, derived from its rate and "
			    "airtime, is used instead (its own "
			    "[transport.%s] section may set a value)",
			    l->name, names[i].key, conf, v, names[i].unit,
			    l->name);
	}
	return (v);
}

void
eng__profile(struct eng_link *l)
{
	struct eng_profile	*pf = &l->pf, was = l->pf;
	const struct eng_params	*p = &l->p;
	uint32_t		 mtu = (uint32_t)eng__link_mtu(l), up;
	uint64_t		 ms, air, disc, ann;

	memset(pf, 0, sizeof(*pf));
	pf->duty_ppm = profile_duty(l);
	up = l->caps.uplink_mtu != 0 && l->caps.uplink_mtu < mtu ?
	    l->caps.uplink_mtu : mtu;
	pf->answer_bytes = up + l->caps.frame_overhead;
	pf->frame_us = eng__air(l, mtu);
	pf->answer_us = eng__air(l, up);
	/* A radio turns around and a node's loop wakes: a tenth, 20 ms. */
	pf->turn_ms = 20 + pf->answer_us / 10000;
	/*
	 * Answers that take a while on the air need reply slots, where
	 * nodes answer by themselves on a shared medium: not on a polled
	 * link (they answer the engine's polls) nor on connections.
	 */
	pf->slow = pf->answer_us >= ENG_FAST_US && (l->caps.flags &
	    (TP_CAP_POLLED | TP_CAP_CONNECT)) == 0;

	/*
	 * Windows: a round's window is at least what one answer per node
	 * needs (eng__schedule); the figures here are the floors.
	 */
	ms = pf->slow ? 2 * ((uint64_t)pf->answer_us / 1000 + pf->turn_ms) : 0;
	pf->status_window_ms = profile_pick(l, ENG_FIX_STATUS_WINDOW,
	    p->status_window_ms, ms, was.status_window_ms);
	pf->offer_window_ms = profile_pick(l, ENG_FIX_OFFER_WINDOW,
	    p->offer_window_ms, (uint64_t)(p->offer_repeats != 0 ?
	    p->offer_repeats : 1) * ms, was.offer_window_ms);

	/*
	 * Discovery: one DISCOVER, and each node's ANNOUNCE (about 100
	 * bytes, in segments where the uplink is small), within a tenth of
	 * the budget.  A slow link without a duty cycle (a PLC module at
	 * 9,600 baud) has its time for a budget: a DISCOVER and the reply
	 * schedule of its answers (eng__disc_ms) take a tenth of it at
	 * most.  A LAN answers in no time and keeps its interval.
	 */
	air = eng__air(l, 16);
	ann = (uint64_t)eng__ann_frames(l) * pf->answer_us;
	disc = air > ann ? air : ann;
	ms = 0;
	if (pf->duty_ppm != 0)
		ms = profile_cost_ms(l, disc) * ENG_DISC_SHARE;
	else if (pf->slow)
		ms = eng__disc_ms(l, ENG_DISC_MIN) * ENG_DISC_SHARE;
	pf->discover_s = p->discover_interval_s == 0 ? 0 :
	    profile_pick(l, ENG_FIX_DISCOVER, p->discover_interval_s,
	    (ms + 999) / 1000, was.discover_s);

	/*
	 * RESULT polls: a targeted VERIFY and its answer at least, within a
	 * quarter of the budget.
	 */
	air = eng__air(l, 24);
	ms = (uint64_t)pf->answer_us / 1000 + pf->turn_ms +
	    profile_cost_ms(l, air) * ENG_POLL_SHARE;
	pf->poll_ms = ms > ENG_POLL_MS ? (uint32_t)ms : ENG_POLL_MS;
	pf->poll_max_ms = 4 * pf->poll_ms > ENG_POLL_MAX_MS ?
	    4 * pf->poll_ms : ENG_POLL_MAX_MS;
	/* On a slow link the RESULT wait holds a few polls. */
	pf->result_timeout_s = profile_pick(l, ENG_FIX_RESULT_TIMEOUT,
	    p->result_timeout_s, pf->slow ? ((uint64_t)4 * pf->poll_max_ms +
	    999) / 1000 : 0, was.result_timeout_s);

	pf->hash_kbs = p->node_hash_kbs != 0 ? p->node_hash_kbs :
	    (l->caps.flags & TP_CAP_HALF_DUPLEX) != 0 || mtu < 512 ?
	    ENG_HASH_SMALL : ENG_HASH_LAN;

	/* Node silence (issue 7): 10 s, plus four MTU frames' cost. */
	if (p->node_silence_ms != 0)
		l->silence_ms = p->node_silence_ms;
	else {
		ms = ENG_SILENCE_MS;
		if (l->caps.bitrate_bps > 0) {
			air = (uint64_t)(mtu + l->caps.frame_overhead) * 8 *
			    1000000 / l->caps.bitrate_bps;
			if (l->caps.duty_cycle_ppm > 0)
				air = air * 1000000 / l->caps.duty_cycle_ppm;
			ms += 4 * air / 1000;
		}
		l->silence_ms = ms > 3600000 ? 3600000 : (uint32_t)ms;
	}
}

void
eng__schedule(struct eng_link *l, unsigned int n, unsigned int frames,
    uint16_t *slots, uint16_t *slot_ms)
{
	const struct eng_profile *pf = &l->pf;
	uint64_t		 ms, k;

	if (!pf->slow) {
		/* One-millisecond slots across the window: the LAN's way. */
		*slots = pf->status_window_ms > UINT16_MAX ? UINT16_MAX :
		    (uint16_t)pf->status_window_ms;
		*slot_ms = 1;
		return;
	}
	if (frames == 0)
		frames = 1;
	ms = (uint64_t)frames * pf->answer_us / 1000 + pf->turn_ms;
	*slot_ms = ms > UINT16_MAX ? UINT16_MAX : (uint16_t)ms;
	k = n <= 1 ? 1 : ((uint64_t)n * 5 + 1) / 2;
	*slots = k > UINT16_MAX ? UINT16_MAX : (uint16_t)k;
}

uint64_t
eng__schedule_ms(struct eng_link *l, unsigned int n, unsigned int frames)
{
	uint16_t	 slots, slot_ms;

	eng__schedule(l, n, frames, &slots, &slot_ms);
	return ((uint64_t)(slots != 0 ? slots : 1) * slot_ms +
	    (l->pf.slow ? (uint64_t)frames * l->pf.answer_us / 1000 : 0));
}

/*
 * How long after a control message left its answers may come, ms, for
 * a half-duplex link's quiet time: the window it gives (a reply schedule,
 * a full frame's window_ms), or one answer's airtime and turnaround for
 * what is answered at once.  0: nothing answers it.
 */
uint32_t
eng__reply_ms(struct eng_link *l, const struct up_msg *m)
{
	uint64_t	 w = 0, once;

	once = (uint64_t)l->pf.answer_us / 1000 + l->pf.turn_ms;
	switch (m->type) {
	case UP_T_DISCOVER:
		w = m->form == UP_FORM_COMPACT ? (uint64_t)m->cx.slots *
		    m->cx.slot_ms : m->u.discover.window_ms;
		break;
	case UP_T_STATUS_REQ:
		w = m->form == UP_FORM_COMPACT ? (uint64_t)m->cx.slots *
		    m->cx.slot_ms : m->u.target.window_ms;
		break;
	case UP_T_OFFER:
	case UP_T_VERIFY:
		w = m->form == UP_FORM_COMPACT ? (uint64_t)m->cx.slots *
		    m->cx.slot_ms : 0;
		break;
	case UP_T_ACTIVATE:
	case UP_T_RESULT_ACK:
	case UP_T_ABORT:
		return (0);
	default:
		return (0);
	}
	w += once;
	return (w > UINT32_MAX ? UINT32_MAX : (uint32_t)w);
}
