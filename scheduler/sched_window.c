/*
 * sched_window.c: decisions that depend only on the time and on a
 * node's last report: maintenance windows, retry back-off, the
 * battery/link gate, and the system clock the daemon injects.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sched_internal.h"

static int64_t
clock_sys_now(void *arg)
{
	return ((int64_t)time(NULL));
}

static int32_t
clock_sys_offset(void *arg, int64_t t)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;

	if (localtime_r(&tt, &tm) == NULL)
		return (0);
	return ((int32_t)tm.tm_gmtoff);
}

const struct sched_clock sched_clock_system = {
	clock_sys_now, clock_sys_offset, NULL
};

static int64_t
floordiv(int64_t a, int64_t b)
{
	return (a >= 0 ? a / b : -((-a + b - 1) / b));
}

/* Monday = 0 ... Sunday = 6; day 0 (1970-01-01) was a Thursday. */
static int
weekday(int64_t day)
{
	return ((int)(((day + 3) % 7 + 7) % 7));
}

static bool
window_in(const struct sched_window *w, int64_t day, int64_t sec)
{
	int64_t	 s = (int64_t)w->start_min * 60, e = (int64_t)w->end_min * 60;

	if (e > s)
		return ((w->days >> weekday(day) & 1) && sec >= s && sec < e);
	/* Crosses midnight: the part after midnight belongs to the day
	 * the window opened on, i.e. the previous one. */
	return (((w->days >> weekday(day) & 1) && sec >= s) ||
	    ((w->days >> weekday(day - 1) & 1) && sec < e));
}

bool
sched_window_open(const struct sched_policy *p, int64_t now, int32_t offset,
    int64_t *next_open)
{
	int64_t		 local, day, sec, best = INT64_MAX, t;
	size_t		 i;
	int		 k;

	if (p->nwindows == 0) {
		if (next_open != NULL)
			*next_open = now;
		return (true);
	}
	if (p->has_utc_offset)
		offset = p->utc_offset_s;
	local = now + offset;
	day = floordiv(local, 86400);
	sec = local - day * 86400;
	for (i = 0; i < p->nwindows; i++)
		if (window_in(&p->windows[i], day, sec)) {
			if (next_open != NULL)
				*next_open = now;
			return (true);
		}
	for (k = 0; k <= 7; k++)
		for (i = 0; i < p->nwindows; i++) {
			if (!(p->windows[i].days >> weekday(day + k) & 1))
				continue;
			t = (day + k) * 86400 +
			    (int64_t)p->windows[i].start_min * 60;
			if (t > local && t < best)
				best = t;
		}
	if (next_open != NULL)
		*next_open = best == INT64_MAX ? INT64_MAX : best - offset;
	return (false);
}

uint32_t
sched_retry_delay(const struct sched_policy *p, uint32_t tries)
{
	uint64_t	 d = p->retry_interval_s;
	uint32_t	 i;

	for (i = 1; i < tries && d < p->retry_max_s; i++)
		d *= p->backoff > 0 ? p->backoff : 1;
	if (p->retry_max_s > 0 && d > p->retry_max_s)
		d = p->retry_max_s;
	return ((uint32_t)d);
}

int
sched_gate_ok(const struct sched_policy *p, const struct sched_node *n,
    char *why, size_t len)
{
	if (p->min_battery > 0 && n->battery != UP_BATTERY_UNKNOWN &&
	    n->battery < p->min_battery) {
		snprintf(why, len, "battery %u%% < %u%%", n->battery,
		    p->min_battery);
		return (0);
	}
	if (p->has_min_rssi && n->rssi_dbm != UP_RSSI_UNKNOWN &&
	    n->rssi_dbm < p->min_rssi_dbm) {
		snprintf(why, len, "rssi %d dBm < %d dBm", n->rssi_dbm,
		    p->min_rssi_dbm);
		return (0);
	}
	if (p->has_min_snr && n->snr_db != UP_SNR_UNKNOWN &&
	    n->snr_db < p->min_snr_db) {
		snprintf(why, len, "snr %d dB < %d dB", n->snr_db,
		    p->min_snr_db);
		return (0);
	}
	return (1);
}
