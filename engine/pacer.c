/*
 * pacer.c: per link pacing, the same for every link.
 *
 * Pacing is the engine's job, computed from the plugin's capability facts
 * (ARCHITECTURE.md, "Transport plugin"; research/c-style.md, "Pacing"):
 *
 *  1. Byte rate.  A GCRA (the ATM "virtual scheduling" form of a token
 *     bucket): each frame moves the theoretical arrival time (TAT) on by
 *     (len + frame_overhead) * 8 / rate; a frame may go when TAT is at
 *     most `burst' ahead of now.  Kept in nanoseconds with the division
 *     remainder carried, so the long-run rate is exact at 100 Mbit/s
 *     (about 8,000 frames of 1,400 bytes a second).  The burst tolerance
 *     (8 ms) absorbs timer lateness, so the frames that became due go in
 *     one callback without losing rate: about 1 ms with a base created
 *     with EVENT_BASE_FLAG_PRECISE_TIMER, up to ~7 ms without it (libevent
 *     2.1 then uses CLOCK_MONOTONIC_COARSE, 4 ms jiffies).
 *  2. Duty cycle (LoRaMac-node Band_t TimeCredits/MaxTimeCredits): credits
 *     in microseconds of airtime refill at elapsed * ppm / 1e6 and are
 *     capped at duty_window_ms * ppm / 1e6; a frame costs its airtime, from
 *     the plugin's airtime() model when it has one, else len * 8 / bitrate.
 *     Credits are kept multiplied by 1e6 so refills are exact integers.
 *     The bucket starts full, as LoRaMac's does.
 *  3. min_gap_us of silence after the estimated end of the last frame
 *     (Modbus RTU's 3.5 characters, PLC inter-frame gaps).
 *  4. Queue depth: at most tx_queue frames outstanding once the plugin
 *     reports tx_done; TP_EAGAIN stops everything until writable().
 *  5. Polls (polled links): a poll is charged like a frame of
 *     ops->poll_time() on the link, for the rate, the duty cycle and the
 *     gap; tx_done corrects it with the time it really took.
 */
#include <string.h>

#include "engine_internal.h"

#define PACER_BURST_NS		8000000ULL	/* 8 ms */
#define PACER_DEF_WINDOW_MS	3600000ULL	/* 1 h, ETSI EN 300 220 */
#define PACER_MIL		1000000ULL

static uint64_t
pacer_cost_ns(const struct pacer *p, size_t len, uint64_t *rem)
{
	uint64_t	 num;

	num = ((uint64_t)len + p->overhead) * 8 * 1000000000ULL;
	*rem = num % p->rate_bps;
	return (num / p->rate_bps);
}

void
pacer__reconf(struct pacer *p, const struct tp_caps *caps,
    unsigned int rate_pct)
{
	uint64_t	 window;

	if (rate_pct == 0 || rate_pct > 100)
		rate_pct = 100;
	p->link_bps = caps->bitrate_bps;
	p->rate_bps = caps->bitrate_bps * rate_pct / 100;
	p->overhead = caps->frame_overhead;
	p->min_gap_us = caps->min_gap_us;
	p->tx_queue = caps->tx_queue;
	p->duty_ppm = caps->duty_cycle_ppm > PACER_MIL ? PACER_MIL :
	    caps->duty_cycle_ppm;
	window = caps->duty_window_ms != 0 ? caps->duty_window_ms :
	    PACER_DEF_WINDOW_MS;
	p->duty_cap = window * 1000 * p->duty_ppm;
	if (p->duty_credit > p->duty_cap)
		p->duty_credit = p->duty_cap;

	/*
	 * The tolerance only absorbs timer lateness: a frame longer than
	 * it still goes when its turn comes, so slow links get no burst
	 * beyond their rate.
	 */
	p->burst_ns = PACER_BURST_NS;
}

void
pacer__init(struct pacer *p, const struct tp_caps *caps,
    unsigned int rate_pct, uint64_t now_us)
{
	memset(p, 0, sizeof(*p));
	pacer__reconf(p, caps, rate_pct);
	p->tat_ns = now_us * 1000;
	p->duty_credit = p->duty_cap;
	p->duty_last_us = now_us;
}

uint32_t
pacer__airtime(const struct pacer *p, size_t len)
{
	uint64_t	 us;

	if (p->link_bps == 0)
		return (0);
	us = (((uint64_t)len + p->overhead) * 8 * PACER_MIL +
	    p->link_bps - 1) / p->link_bps;
	return (us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
}

static void
pacer_refill(struct pacer *p, uint64_t now_us)
{
	uint64_t	 dt;

	if (p->duty_ppm == 0 || now_us <= p->duty_last_us)
		return;
	dt = now_us - p->duty_last_us;
	p->duty_last_us = now_us;
	/* Avoid overflow after a very long idle time: the cap wins. */
	if (dt >= p->duty_cap / p->duty_ppm + 1) {
		p->duty_credit = p->duty_cap;
		return;
	}
	p->duty_credit += dt * p->duty_ppm;
	if (p->duty_credit > p->duty_cap)
		p->duty_credit = p->duty_cap;
}

uint64_t
pacer__delay(struct pacer *p, uint64_t now_us, size_t len,
    uint32_t airtime_us)
{
	uint64_t	 now_ns = now_us * 1000, wait = 0, w, cost, need;

	if (p->blocked)
		return (PACER_WAIT);
	if (p->track_inflight && p->tx_queue != 0 &&
	    p->inflight >= p->tx_queue)
		return (PACER_WAIT);

	if (p->rate_bps != 0 && p->tat_ns > now_ns + p->burst_ns) {
		w = p->tat_ns - p->burst_ns - now_ns;
		wait = (w + 999) / 1000;
	}
	if (p->min_gap_us != 0 && p->gap_until_us > now_us &&
	    p->gap_until_us - now_us > wait)
		wait = p->gap_until_us - now_us;
	if (p->duty_ppm != 0) {
		pacer_refill(p, now_us);
		cost = (uint64_t)airtime_us * PACER_MIL;
		/* A frame longer than the window goes on a full bucket. */
		need = cost > p->duty_cap ? p->duty_cap : cost;
		if (p->duty_credit < need) {
			w = (need - p->duty_credit + p->duty_ppm - 1) /
			    p->duty_ppm;
			if (w > wait)
				wait = w;
		}
	}
	if (wait != 0)
		p->waits++;
	return (wait);
}

void
pacer__sent(struct pacer *p, uint64_t now_us, size_t len,
    uint32_t airtime_us)
{
	uint64_t	 now_ns = now_us * 1000, cost, rem, c;

	if (p->rate_bps != 0) {
		if (len == 0) {
			/*
			 * A poll (poll.c): no frame of ours, its time on the
			 * link is what it costs, stretched like a frame's
			 * when the rate is a share of the link.
			 */
			cost = (uint64_t)airtime_us * 1000;
			if (p->link_bps > p->rate_bps)
				cost = cost * (p->link_bps / p->rate_bps);
		} else {
			cost = pacer_cost_ns(p, len, &rem);
			p->rem += rem;
			if (p->rem >= p->rate_bps) {
				cost++;
				p->rem -= p->rate_bps;
			}
		}
		if (p->tat_ns < now_ns)
			p->tat_ns = now_ns;
		p->tat_ns += cost;
	}
	if (p->duty_ppm != 0) {
		pacer_refill(p, now_us);
		c = (uint64_t)airtime_us * PACER_MIL;
		p->duty_credit = c >= p->duty_credit ? 0 : p->duty_credit - c;
	}
	if (p->min_gap_us != 0)
		p->gap_until_us = now_us + airtime_us + p->min_gap_us;
	if (p->track_inflight)
		p->inflight++;
	p->frames++;
	p->bytes += len;
	p->airtime_us += airtime_us;
}

void
pacer__eagain(struct pacer *p)
{
	p->blocked = true;
	p->eagain++;
}

void
pacer__writable(struct pacer *p)
{
	p->blocked = false;
}

void
pacer__tx_done(struct pacer *p, uint32_t est_us, uint32_t airtime_us)
{
	uint64_t	 d;

	if (!p->track_inflight) {
		/* First tx_done: from now on count frames in flight. */
		p->track_inflight = true;
		p->inflight = 0;
	} else if (p->inflight > 0)
		p->inflight--;
	/* The measured airtime corrects the duty-cycle charge. */
	if (p->duty_ppm == 0 || airtime_us == 0 || airtime_us == est_us)
		return;
	if (airtime_us > est_us) {
		d = (uint64_t)(airtime_us - est_us) * PACER_MIL;
		p->duty_credit = d >= p->duty_credit ? 0 : p->duty_credit - d;
	} else {
		d = (uint64_t)(est_us - airtime_us) * PACER_MIL;
		p->duty_credit += d;
		if (p->duty_credit > p->duty_cap)
			p->duty_credit = p->duty_cap;
	}
}

void
pacer__info(struct pacer *p, uint64_t now_us, struct eng_pacer_info *pi)
{
	pacer_refill(p, now_us);
	pi->rate_bps = p->rate_bps;
	pi->link_bps = p->link_bps;
	pi->frame_overhead = p->overhead;
	pi->duty_cycle_ppm = p->duty_ppm;
	pi->duty_credit_us = p->duty_credit / PACER_MIL;
	pi->duty_cap_us = p->duty_cap / PACER_MIL;
	pi->min_gap_us = p->min_gap_us;
	pi->tx_queue = p->tx_queue;
	pi->inflight = p->inflight;
	pi->blocked = p->blocked;
	pi->backlog_us = p->tat_ns > now_us * 1000 ?
	    (p->tat_ns - now_us * 1000) / 1000 : 0;
	pi->frames = p->frames;
	pi->bytes = p->bytes;
	pi->airtime_us = p->airtime_us;
	pi->waits = p->waits;
	pi->eagain = p->eagain;
}
