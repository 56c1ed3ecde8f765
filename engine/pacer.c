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
 *     On a fast link (a full frame takes at most a quarter of
 *     PACER_BATCH_NS at the paced rate: the LAN) a wait for the rate is
 *     stretched by PACER_BATCH_NS, so each wake-up sends the 2 ms of
 *     frames that became due (8-9 at 50 Mbit/s) instead of one: a timer, a
 *     loop turn and a wake-up of every receiver per batch, not per frame.
 *     The long-run rate is the same; slower links pace frame by frame.
 *  2. Duty cycle: one ledger per regulated band (duty.c), the airtime of
 *     the frames in any window of duty_window_ms at most its share: a
 *     frame goes in its band (the plugin's band() op) once it fits there.
 *     A frame costs its airtime, from the plugin's airtime() model when it
 *     has one, else (len + overhead) * 8 / bitrate; the airtime the plugin
 *     measured (tx_done) replaces what that frame was charged.
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
#define PACER_BATCH_NS		2000000ULL	/* 2 ms, < PACER_BURST_NS */
#define PACER_BATCH_MIN		4		/* full frames per batch */
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
    unsigned int rate_pct, uint64_t now_us)
{
	unsigned int	 i, n;
	uint32_t	 ppm, win, mtu;

	if (rate_pct == 0 || rate_pct > 100)
		rate_pct = 100;
	p->link_bps = caps->bitrate_bps;
	p->rate_bps = caps->bitrate_bps * rate_pct / 100;
	p->overhead = caps->frame_overhead;
	p->min_gap_us = caps->min_gap_us;
	p->tx_queue = caps->tx_queue;

	/* One ledger per band: the caps' sub-bands, or one of its own. */
	n = caps->nbands > 0 ? caps->nbands : 1;
	if (n > TP_BANDS_MAX)
		n = TP_BANDS_MAX;
	p->duty_ppm = 0;
	for (i = 0; i < TP_BANDS_MAX; i++) {
		ppm = win = 0;
		if (i < n && caps->nbands > 0) {
			ppm = caps->band[i].duty_ppm;
			win = caps->band[i].window_ms;
		} else if (i < n) {
			ppm = caps->duty_cycle_ppm;
			win = caps->duty_window_ms;
		}
		eng__ledger_conf(&p->band[i], ppm, win, now_us);
		if (p->band[i].ppm > p->duty_ppm)
			p->duty_ppm = p->band[i].ppm;
	}
	p->nbands = (uint8_t)n;

	/*
	 * The tolerance only absorbs timer lateness: a frame longer than
	 * it still goes when its turn comes, so slow links get no burst
	 * beyond their rate.
	 */
	p->burst_ns = PACER_BURST_NS;

	/*
	 * Batched wake-ups only where they change nothing but the CPU: a
	 * fast full-duplex link paced by its byte rate alone (no duty
	 * cycle, no gap, no connections or polls whose turns the batch
	 * would hold).
	 */
	p->batch_ns = 0;
	mtu = caps->mtu != 0 && caps->mtu < UP_FRAME_MAX ? caps->mtu :
	    UP_FRAME_MAX;
	if (p->rate_bps != 0 && p->duty_ppm == 0 && p->min_gap_us == 0 &&
	    (caps->flags & (TP_CAP_HALF_DUPLEX | TP_CAP_CONNECT |
	    TP_CAP_POLLED)) == 0 &&
	    ((uint64_t)mtu + p->overhead) * 8 * 1000000000ULL /
	    p->rate_bps * PACER_BATCH_MIN <= PACER_BATCH_NS)
		p->batch_ns = PACER_BATCH_NS;
}

void
pacer__init(struct pacer *p, const struct tp_caps *caps,
    unsigned int rate_pct, uint64_t now_us)
{
	memset(p, 0, sizeof(*p));
	pacer__reconf(p, caps, rate_pct, now_us);
	p->tat_ns = now_us * 1000;
}

void
pacer__free(struct pacer *p)
{
	unsigned int	 i;

	for (i = 0; i < TP_BANDS_MAX; i++)
		eng__ledger_free(&p->band[i]);
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

static struct eng_ledger *
pacer_band(struct pacer *p, unsigned int band)
{
	return (&p->band[band < p->nbands ? band : 0]);
}

uint64_t
pacer__delay(struct pacer *p, uint64_t now_us, size_t len,
    uint32_t airtime_us, unsigned int band)
{
	uint64_t	 now_ns = now_us * 1000, wait = 0, w;

	if (p->blocked)
		return (PACER_WAIT);
	if (p->track_inflight && p->tx_queue != 0 &&
	    p->inflight >= p->tx_queue)
		return (PACER_WAIT);

	if (p->rate_bps != 0 && p->tat_ns > now_ns + p->burst_ns) {
		/* Until a batch is due (batch_ns, fast links), or one frame. */
		w = p->tat_ns - p->burst_ns - now_ns + p->batch_ns;
		wait = (w + 999) / 1000;
	}
	if (p->min_gap_us != 0 && p->gap_until_us > now_us &&
	    p->gap_until_us - now_us > wait)
		wait = p->gap_until_us - now_us;
	if (p->duty_ppm != 0 &&
	    (w = eng__ledger_wait(pacer_band(p, band), now_us,
	    airtime_us)) > wait)
		wait = w;
	if (wait != 0)
		p->waits++;
	return (wait);
}

uint64_t
pacer__sent(struct pacer *p, uint64_t now_us, size_t len,
    uint32_t airtime_us, unsigned int band)
{
	uint64_t	 now_ns = now_us * 1000, cost, rem, slot = 0, start;

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
	/*
	 * A frame handed over while another is on the air goes after it:
	 * it is booked where it will end, not where it would if it went
	 * now (booked too early, it would leave the ledger too soon).
	 */
	start = p->air_until_us > now_us ? p->air_until_us : now_us;
	p->air_until_us = start + airtime_us;
	if (p->duty_ppm != 0)
		slot = eng__ledger_charge(pacer_band(p, band), start,
		    airtime_us);
	if (p->min_gap_us != 0)
		p->gap_until_us = start + airtime_us + p->min_gap_us;
	if (p->track_inflight)
		p->inflight++;
	p->frames++;
	p->bytes += len;
	p->airtime_us += airtime_us;
	return (slot);
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
pacer__tx_done(struct pacer *p, bool known, unsigned int band, uint64_t slot,
    uint32_t charged_us, uint32_t airtime_us)
{
	int64_t		 d;

	if (!p->track_inflight) {
		/* First tx_done: from now on count frames in flight. */
		p->track_inflight = true;
		p->inflight = 0;
	} else if (p->inflight > 0)
		p->inflight--;
	/*
	 * The measured airtime replaces what this frame was charged (not
	 * a guess at it: a short frame charged its own airtime and
	 * "corrected" against a full frame's would hand back credit it
	 * never used).
	 */
	if (!known || airtime_us == 0 || airtime_us == charged_us)
		return;
	d = (int64_t)airtime_us - (int64_t)charged_us;
	p->airtime_us += (uint64_t)d;
	if (p->duty_ppm != 0)
		eng__ledger_adjust(pacer_band(p, band), slot, d);
}

void
pacer__info(struct pacer *p, uint64_t now_us, struct eng_pacer_info *pi)
{
	struct eng_ledger	*d;
	unsigned int		 i;

	memset(pi, 0, sizeof(*pi));
	pi->rate_bps = p->rate_bps;
	pi->link_bps = p->link_bps;
	pi->frame_overhead = p->overhead;
	pi->duty_cycle_ppm = p->duty_ppm;
	pi->nbands = p->duty_ppm != 0 ? p->nbands : 0;
	for (i = 0; i < pi->nbands; i++) {
		d = &p->band[i];
		pi->band[i].duty_ppm = d->ppm;
		pi->band[i].budget_us = d->budget_us;
		pi->band[i].used_us = eng__ledger_used(d, now_us);
		pi->band[i].spent_us = d->spent;
		/* The first regulated band, as the single figures. */
		if (d->ppm != 0 && pi->duty_cap_us == 0) {
			pi->duty_cap_us = d->budget_us;
			pi->duty_credit_us = d->budget_us > pi->band[i].used_us ?
			    d->budget_us - pi->band[i].used_us : 0;
		}
	}
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
