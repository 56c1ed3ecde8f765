/*
 * test_eng_pacer.c: the engine's pacer on a simulated clock: byte rate, duty
 * cycle credits, minimum gap, queue depth and TP_EAGAIN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "airlog.h"
#include "engine_internal.h"

struct sim {
	uint64_t	 now;		/* us */
	uint64_t	 frames;
	uint64_t	 bytes;		/* with overhead */
	uint64_t	 airtime;
	uint64_t	 first;
	uint64_t	 last;
	uint64_t	 min_spacing;
	uint64_t	 wakes;		/* sleeps that ended in a send */
	uint64_t	 max_batch;	/* most frames sent at one instant */
};

/*
 * Sends frames of `len' bytes for `span_us' of simulated time the way
 * the engine does: ask, sleep until allowed (rounded up to `tick_us',
 * like a millisecond event loop), send what is due.
 */
static void
simulate(struct pacer *p, struct sim *s, size_t len, uint32_t air,
    uint64_t span_us, uint64_t tick_us, uint32_t overhead)
{
	uint64_t	 end = s->now + span_us, w, prev = UINT64_MAX;
	uint64_t	 batch = 0;

	s->first = UINT64_MAX;
	s->min_spacing = UINT64_MAX;
	while (s->now < end) {
		w = pacer__delay(p, s->now, len, air, 0);
		assert_true(w != PACER_WAIT);
		if (w > 0) {
			if (tick_us > 1)
				w = (w + tick_us - 1) / tick_us * tick_us;
			s->now += w;
			s->wakes++;
			batch = 0;
			continue;
		}
		pacer__sent(p, s->now, len, air, 0);
		if (++batch > s->max_batch)
			s->max_batch = batch;
		if (s->first == UINT64_MAX)
			s->first = s->now;
		if (prev != UINT64_MAX && s->now - prev < s->min_spacing)
			s->min_spacing = s->now - prev;
		prev = s->now;
		s->last = s->now;
		s->frames++;
		s->bytes += len + overhead;
		s->airtime += air;
	}
}

static void
caps_init(struct tp_caps *c, uint64_t bps, uint32_t overhead)
{
	memset(c, 0, sizeof(*c));
	c->mtu = 1472;
	c->bitrate_bps = bps;
	c->frame_overhead = overhead;
	c->flags = TP_CAP_BROADCAST;
}

static void
check_rate(uint64_t bps, unsigned int pct, size_t len, uint64_t tick_us)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	struct sim	 s;
	double		 rate, want;

	caps_init(&caps, bps, 42);
	memset(&s, 0, sizeof(s));
	s.now = 5000000;
	pacer__init(&p, &caps, pct, s.now);
	simulate(&p, &s, len, 0, 10000000, tick_us, 42);
	want = (double)bps * pct / 100;
	/* Frames 2..n over the time from the first to the last. */
	rate = (double)(s.bytes - len - 42) * 8 /
	    ((double)(s.last - s.first) / 1e6);
	print_message("%" PRIu64 " bit/s x %u%%, tick %" PRIu64 " us: %.1f "
	    "bit/s (%.3f %%), %" PRIu64 " frames\n", bps, pct, tick_us, rate,
	    (rate - want) / want * 100, s.frames);
	assert_true(rate > want * 0.98 && rate < want * 1.02);
	/* Counted with the per-frame overhead: bytes / (len+42). */
	assert_int_equal(p.frames, s.frames);
	assert_int_equal(p.bytes, s.frames * len);
}

static void
test_rate(void **state)
{
	/* 100 Mbit/s at 90 %: about 8,000 frames of 1,400 B a second. */
	check_rate(100000000, 90, 1418, 1);
	check_rate(100000000, 90, 1418, 1000);
	/* libevent on CLOCK_MONOTONIC_COARSE: 4 ms wake-ups. */
	check_rate(100000000, 90, 1418, 4000);
	check_rate(2000000, 100, 1042, 4000);
	/* A slow serial link and odd sizes. */
	check_rate(19200, 100, 97, 1);
	check_rate(1000000, 33, 1000, 1000);
}

static void
test_burst_is_bounded(void **state)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	uint64_t	 now = 1000000;
	int		 n = 0;

	caps_init(&caps, 100000000, 0);
	pacer__init(&p, &caps, 100, now);
	/* 80 us per frame at 100 Mbit/s: 8 ms of tolerance is 100 frames. */
	while (pacer__delay(&p, now, 1000, 0, 0) == 0) {
		pacer__sent(&p, now, 1000, 0, 0);
		n++;
		assert_true(n < 200);
	}
	assert_true(n >= 100 && n <= 101);
	n = 0;
	caps_init(&caps, 1000000, 0);
	pacer__init(&p, &caps, 100, now);
	/* After idle, only the burst tolerance goes out at once. */
	while (pacer__delay(&p, now, 1000, 0, 0) == 0) {
		pacer__sent(&p, now, 1000, 0, 0);
		n++;
		assert_true(n < 100);
	}
	/* 8 ms per frame at 1 Mbit/s, 8 ms of tolerance: two frames. */
	assert_int_equal(n, 2);
	assert_true(pacer__delay(&p, now, 1000, 0, 0) > 0);
}

/*
 * A fast link: each wake-up sends the 2 ms of frames that became due, at
 * the same long-run rate; a slow link or one with a gap is paced frame
 * by frame as before.
 */
static void
test_batched_wakeups(void **state)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	struct sim	 s;
	double		 rate, want;

	/* 50 Mbit/s at 95 %: 255 us a frame, 7.8 frames in 2 ms. */
	caps_init(&caps, 50000000, 42);
	memset(&s, 0, sizeof(s));
	s.now = 5000000;
	pacer__init(&p, &caps, 95, s.now);
	simulate(&p, &s, 1418, 0, 2000000, 1, 42);
	want = 50000000.0 * 95 / 100;
	rate = (double)(s.bytes - 1418 - 42) * 8 /
	    ((double)(s.last - s.first) / 1e6);
	print_message("50 Mbit/s: %" PRIu64 " frames, %" PRIu64 " wake-ups, "
	    "at most %" PRIu64 " at once, %.3f %% off the rate\n", s.frames,
	    s.wakes, s.max_batch, (rate - want) / want * 100);
	assert_true(rate > want * 0.99 && rate < want * 1.01);
	/* The first 8 ms (the tolerance) go at once, then about 9 a time. */
	assert_true(s.wakes * 6 < s.frames);
	assert_true(s.wakes * 10 > s.frames);

	/* 1 Mbit/s: 11.7 ms a frame, one frame per wake-up. */
	caps_init(&caps, 1000000, 42);
	memset(&s, 0, sizeof(s));
	s.now = 5000000;
	pacer__init(&p, &caps, 100, s.now);
	simulate(&p, &s, 1418, 0, 2000000, 1, 42);
	assert_true(s.wakes + 2 >= s.frames);
	assert_true(s.max_batch <= 2);

	/* A half-duplex link is never batched, however fast. */
	caps_init(&caps, 50000000, 42);
	caps.flags |= TP_CAP_HALF_DUPLEX;
	memset(&s, 0, sizeof(s));
	s.now = 5000000;
	pacer__init(&p, &caps, 95, s.now);
	simulate(&p, &s, 1418, 0, 2000000, 1, 42);
	assert_true(s.wakes + 40 >= s.frames);
}

/* LoRa-like: 1 % duty cycle, 100 ms frames, one-hour window. */
static void
test_duty_cycle(void **state)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	struct sim	 s;
	struct airlog	 log;
	uint64_t	 hour = 3600ULL * 1000000, w, slot;
	size_t		 n = 0;

	caps_init(&caps, 0, 0);		/* no byte rate: only duty */
	caps.duty_cycle_ppm = 10000;
	caps.duty_window_ms = 3600000;
	memset(&s, 0, sizeof(s));
	pacer__init(&p, &caps, 100, 0);
	airlog_init(&log, hour, 10000);

	/* An empty ledger: 36 s of airtime = 360 frames at once. */
	while ((w = pacer__delay(&p, s.now, 50, 100000, 0)) == 0) {
		pacer__sent(&p, s.now, 50, 100000, 0);
		airlog_add(&log, s.now, 100000);
		n++;
		s.now += 100000;	/* one after the other on air */
	}
	assert_int_equal(n, 360);
	/* The next one waits until the first ones are an hour old. */
	assert_true(s.now + w >= hour && s.now + w <= hour + hour / 128);

	/* Ten hours of a radio that never idles while budget is left. */
	while (s.now < 11 * hour) {
		w = pacer__delay(&p, s.now, 50, 100000, 0);
		if (w > 0) {
			s.now += w;
			continue;
		}
		pacer__sent(&p, s.now, 50, 100000, 0);
		airlog_add(&log, s.now, 100000);
		n++;
		s.now += 100000;
	}
	print_message("duty: %zu frames in 11 h, most in an hour %.4f %%\n",
	    n, airlog_max(&log) * 100.0 / hour);
	/* Never more than 1 % in any hour, at any frame. */
	assert_false(log.over);
	assert_true(airlog_max(&log) <= hour / 100);
	assert_true(n >= 11 * 360 * 255 / 256 - 360 && n <= 11 * 360);

	/*
	 * A frame charged 100 ms that the plugin measured at 300 ms: the
	 * difference is booked; one measured shorter gives it back.
	 */
	w = eng__ledger_used(&p.band[0], s.now);
	slot = pacer__sent(&p, s.now, 50, 100000, 0);
	pacer__tx_done(&p, true, 0, slot, 100000, 300000);
	assert_true(p.track_inflight);
	assert_int_equal(eng__ledger_used(&p.band[0], s.now), w + 300000);
	slot = pacer__sent(&p, s.now, 50, 100000, 0);
	pacer__tx_done(&p, true, 0, slot, 100000, 40000);
	assert_int_equal(eng__ledger_used(&p.band[0], s.now), w + 340000);
	/* A tx_done the engine has no record of changes no ledger. */
	pacer__tx_done(&p, false, 0, 0, 0, 900000);
	assert_int_equal(eng__ledger_used(&p.band[0], s.now), w + 340000);
	pacer__free(&p);
	airlog_free(&log);
}

/*
 * Sub-bands (EU868: 0.1 %, 1 % and 10 %): each band has its ledger; a
 * spent band does not hold frames of another.
 */
static void
test_duty_bands(void **state)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	struct eng_pacer_info pi;
	uint64_t	 now = 0;
	int		 n;

	caps_init(&caps, 0, 0);
	caps.nbands = 3;
	caps.band[0].duty_ppm = 1000;		/* 0.1 %: 3.6 s an hour */
	caps.band[1].duty_ppm = 10000;		/* 1 %: 36 s */
	caps.band[2].duty_ppm = 100000;		/* 10 %: 360 s */
	caps.band[0].window_ms = caps.band[1].window_ms =
	    caps.band[2].window_ms = 3600000;
	pacer__init(&p, &caps, 100, now);
	for (n = 0; pacer__delay(&p, now, 20, 1000000, 0) == 0; n++)
		pacer__sent(&p, now, 20, 1000000, 0);
	assert_int_equal(n, 3);
	assert_true(pacer__delay(&p, now, 20, 1000000, 0) > 0);
	/* Band 2 is untouched by band 0's spending. */
	for (n = 0; pacer__delay(&p, now, 20, 1000000, 2) == 0; n++)
		pacer__sent(&p, now, 20, 1000000, 2);
	assert_int_equal(n, 360);
	assert_int_equal(pacer__delay(&p, now, 20, 1000000, 1), 0);
	pacer__info(&p, now, &pi);
	assert_int_equal(pi.nbands, 3);
	assert_int_equal(pi.band[0].used_us, 3000000);
	assert_int_equal(pi.band[2].used_us, 360000000);
	assert_int_equal(pi.band[1].used_us, 0);
	assert_int_equal(pi.duty_cap_us, 3600000);
	/* A band index past the caps' is band 0. */
	assert_true(pacer__delay(&p, now, 20, 1000000, 7) > 0);
	pacer__free(&p);
}

/* Modbus RTU-like: 3.5 characters of silence after each frame. */
static void
test_min_gap(void **state)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	struct sim	 s;
	uint32_t	 air;

	caps_init(&caps, 19200, 0);
	caps.min_gap_us = 2005;
	memset(&s, 0, sizeof(s));
	pacer__init(&p, &caps, 100, 0);
	air = pacer__airtime(&p, 200);		/* 200 B at 19200 bit/s */
	assert_int_equal(air, 83334);
	simulate(&p, &s, 200, air, 2000000, 1, 0);
	assert_true(s.min_spacing >= air + 2005);
}

static void
test_queue_and_eagain(void **state)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	uint64_t	 now = 0;

	caps_init(&caps, 0, 0);
	caps.tx_queue = 2;
	pacer__init(&p, &caps, 100, now);
	/* Without tx_done reports, the plugin's TP_EAGAIN is the limit. */
	assert_int_equal(pacer__delay(&p, now, 100, 0, 0), 0);
	pacer__eagain(&p);
	assert_int_equal(pacer__delay(&p, now, 100, 0, 0), PACER_WAIT);
	pacer__writable(&p);
	assert_int_equal(pacer__delay(&p, now, 100, 0, 0), 0);

	/* Once the plugin reports tx_done, count frames in flight. */
	pacer__tx_done(&p, false, 0, 0, 0, 0);
	pacer__sent(&p, now, 100, 0, 0);
	pacer__sent(&p, now, 100, 0, 0);
	assert_int_equal(pacer__delay(&p, now, 100, 0, 0), PACER_WAIT);
	pacer__tx_done(&p, false, 0, 0, 0, 0);
	assert_int_equal(pacer__delay(&p, now, 100, 0, 0), 0);
}

static void
test_reconf(void **state)
{
	struct tp_caps	 caps;
	struct pacer	 p;
	struct eng_pacer_info pi;

	caps_init(&caps, 10000000, 42);
	pacer__init(&p, &caps, 90, 0);
	assert_int_equal(p.rate_bps, 9000000);
	pacer__reconf(&p, &caps, 50, 0);
	assert_int_equal(p.rate_bps, 5000000);
	/* Out-of-range percentages mean the whole link. */
	pacer__reconf(&p, &caps, 0, 0);
	assert_int_equal(p.rate_bps, 10000000);
	pacer__info(&p, 0, &pi);
	assert_int_equal(pi.rate_bps, 10000000);
	assert_int_equal(pi.link_bps, 10000000);
	assert_int_equal(pi.frame_overhead, 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_burst_is_bounded),
		cmocka_unit_test(test_batched_wakeups),
		cmocka_unit_test(test_duty_cycle),
		cmocka_unit_test(test_duty_bands),
		cmocka_unit_test(test_min_gap),
		cmocka_unit_test(test_queue_and_eagain),
		cmocka_unit_test(test_reconf),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
