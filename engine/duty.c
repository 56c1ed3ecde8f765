/*
 * duty.c: the duty-cycle ledger of one regulated band (docs/engine.md,
 * "Duty cycle").
 *
 * ETSI EN 300 220 limits the time a transmitter is on in a sub-band to a
 * share of any one-hour period (EU868: 0.1 %, 1 % or 10 % per band,
 * research/transports.md §1.3).  A credit bucket refilled at that share
 * and capped at a window's worth (LoRaMac-node's Band_t) allows twice the
 * budget in a window that starts with a full bucket, so the ledger here
 * is the rule itself, over a sliding window: the airtime of the frames
 * that overlap any window of `window_us' never exceeds `budget_us'.
 *
 * The window is cut into LEDGER_SLOTS slots; a frame's airtime is booked
 * in the slot of its end (the estimate at send time, corrected by the
 * plugin's tx_done), and a slot leaves the ledger only once its whole
 * span lies a window in the past.  So the ledger may count a frame up to
 * one slot (1/256 of the window) longer than it has to, never shorter:
 * it never overspends, and it leaves at most 1/512 of the budget unused
 * on average.  Memory is fixed per band (LEDGER_RING slots), allocated
 * when a band is configured; checks and charges are O(1) amortised, the
 * wait for a frame that does not fit walks the ring once.
 *
 * Why this never lets a window overspend: take any window (t - W, t] and
 * the last frame F that started in it.  Every frame G that is on air in
 * the window ends after t - W, which is after F's start minus W, so G's
 * slot had not left the ledger when F was checked; G started no later
 * than F, so it was booked by then.  F went only if the ledger plus F
 * fitted the budget.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#define LEDGER_MIL	1000000ULL

void
eng__ledger_free(struct eng_ledger *d)
{
	free(d->no);
	free(d->used);
	memset(d, 0, sizeof(*d));
}

/* Forgets the slots that lie a whole window in the past. */
static void
ledger_expire(struct eng_ledger *d, uint64_t now_us)
{
	uint64_t	 lim, x;
	unsigned int	 i;

	if (d->ppm == 0 || now_us < d->window_us + d->slot_us)
		return;
	/* Slot x has left once (x + 1) * slot + window <= now: x < lim. */
	lim = (now_us - d->window_us) / d->slot_us;
	if (lim <= d->tail)
		return;
	if (lim > d->head) {
		/* Everything booked has left. */
		d->total = 0;
		d->tail = d->head = lim;
		return;
	}
	for (x = d->tail; x < lim; x++) {
		i = (unsigned int)(x % LEDGER_RING);
		if (d->no[i] == x) {
			d->total -= d->used[i];
			d->used[i] = 0;
		}
	}
	d->tail = lim;
}

void
eng__ledger_conf(struct eng_ledger *d, uint32_t ppm, uint32_t window_ms,
    uint64_t now_us)
{
	uint64_t	 window, slot, keep;

	if (ppm > LEDGER_MIL)
		ppm = LEDGER_MIL;
	window = (uint64_t)(window_ms != 0 ? window_ms : ENG_DUTY_WINDOW_MS) *
	    1000;
	if (ppm == 0) {
		eng__ledger_free(d);
		return;
	}
	slot = (window + LEDGER_SLOTS - 1) / LEDGER_SLOTS;
	if (d->ppm != 0 && d->slot_us == slot) {
		/* Same slots: only the share changed. */
		d->ppm = ppm;
		d->window_us = window;
		d->budget_us = window * ppm / LEDGER_MIL;
		return;
	}
	/*
	 * New slots: what the old ledger holds stays booked, all of it in
	 * the newest slot (it leaves later than it would have, never
	 * sooner).
	 */
	ledger_expire(d, now_us);
	keep = d->total;
	eng__ledger_free(d);
	d->no = eng__xcalloc(LEDGER_RING, sizeof(*d->no));
	d->used = eng__xcalloc(LEDGER_RING, sizeof(*d->used));
	d->ppm = ppm;
	d->window_us = window;
	d->slot_us = slot;
	d->budget_us = window * ppm / LEDGER_MIL;
	d->head = d->tail = now_us / slot;
	if (keep > 0) {
		d->no[d->head % LEDGER_RING] = d->head;
		d->used[d->head % LEDGER_RING] = keep;
		d->total = keep;
	}
}

uint64_t
eng__ledger_used(struct eng_ledger *d, uint64_t now_us)
{
	ledger_expire(d, now_us);
	return (d->total);
}

uint64_t
eng__ledger_wait(struct eng_ledger *d, uint64_t now_us, uint32_t air_us)
{
	uint64_t	 need, freed = 0, x, at;
	unsigned int	 i;

	if (d->ppm == 0)
		return (0);
	ledger_expire(d, now_us);
	/* A frame longer than the whole budget goes on an empty ledger. */
	need = air_us > d->budget_us ? d->budget_us : air_us;
	if (d->total + need <= d->budget_us)
		return (0);
	/* The oldest slots leave first: find how many must go. */
	for (x = d->tail; x <= d->head; x++) {
		i = (unsigned int)(x % LEDGER_RING);
		if (d->no[i] != x || d->used[i] == 0)
			continue;
		freed += d->used[i];
		if (d->total - freed + need <= d->budget_us)
			break;
	}
	if (x > d->head)
		x = d->head;	/* cannot happen: the last slot frees all */
	at = (x + 1) * d->slot_us + d->window_us;
	return (at > now_us ? at - now_us : 1);
}

uint64_t
eng__ledger_charge(struct eng_ledger *d, uint64_t now_us, uint32_t air_us)
{
	uint64_t	 x;
	unsigned int	 i;

	if (d->ppm == 0)
		return (0);
	ledger_expire(d, now_us);
	/* Booked where the frame ends (at most a ring ahead). */
	x = (now_us + air_us) / d->slot_us;
	if (x > now_us / d->slot_us + LEDGER_RING - LEDGER_SLOTS - 2)
		x = now_us / d->slot_us + LEDGER_RING - LEDGER_SLOTS - 2;
	if (x < d->tail)
		x = d->tail;
	/* Ring entries are checked by their slot number: no clearing. */
	if (x > d->head)
		d->head = x;
	i = (unsigned int)(x % LEDGER_RING);
	if (d->no[i] != x) {
		d->no[i] = x;
		d->used[i] = 0;
	}
	d->used[i] += air_us;
	d->total += air_us;
	d->spent += air_us;
	return (x);
}

void
eng__ledger_adjust(struct eng_ledger *d, uint64_t slot_no, int64_t delta_us)
{
	unsigned int	 i;

	if (d->ppm == 0 || delta_us == 0)
		return;
	d->spent = delta_us < 0 && (uint64_t)-delta_us > d->spent ? 0 :
	    d->spent + (uint64_t)delta_us;
	i = (unsigned int)(slot_no % LEDGER_RING);
	if (slot_no < d->tail || d->no[i] != slot_no) {
		if (delta_us < 0)
			return;		/* it left already: nothing to give */
		/* Gone from its slot: book the rest in the newest one. */
		slot_no = d->head;
		i = (unsigned int)(slot_no % LEDGER_RING);
		if (d->no[i] != slot_no) {
			d->no[i] = slot_no;
			d->used[i] = 0;
		}
	}
	if (delta_us < 0 && (uint64_t)-delta_us > d->used[i])
		delta_us = -(int64_t)d->used[i];
	d->used[i] += (uint64_t)delta_us;
	d->total += (uint64_t)delta_us;
}
