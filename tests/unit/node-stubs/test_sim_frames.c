/*
 * test_sim_frames.c: the frame side of the medium simulator core (what
 * the LoRa air and the PLC station area will build on), driven by a toy
 * personality defined here: each line a program writes to its modem
 * ("hello\n") goes on the air as one frame on the endpoint's channel,
 * for 5 ms + 1 ms a byte; a receiver's modem prints it when it arrives
 * whole; the sender's prints "DONE" when it left the air.  On real pty
 * pairs, the modem's UART at 9600 8N1.
 *
 * Covered: a frame's time on air and the UART time around it, tx_done,
 * exact airtime; collisions on one channel and none across channels;
 * hears() (out of range: never there, not counted); the per-pair loss
 * and delay hooks; a half-duplex radio missing a frame while sending;
 * a reset cutting a frame on the air; a program at the wrong rate seen
 * by the modem as errors (line_errors, line_mismatch).
 *
 * Load (run_delay.h): the simulator's own accounting (when each frame
 * was on the air, when and how it reached each modem: the toy's
 * callbacks record it) is checked exactly; real-time bounds allow for
 * the stall the host measured over their window, never for an early
 * character; a scenario that needs frames on the air at the same moment
 * is repeated when the accounting shows the host's scheduling moved one.
 */
#include <sys/types.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "run_delay.h"
#include "upnode.h"
#include "upsim.h"
#include "ub_test.h"

#define NPEER		4
#define LINE_MAX_	128

/* ------------------------------------------------------------------ */
/* The toy personality                                                 */

struct toy_ep {
	uint8_t		 line[LINE_MAX_];
	size_t		 len;
	unsigned int	 errors;	/* characters the modem got damaged */
};

static struct toy_ep	 toy[NPEER];
/* What the test sets: who cannot hear whom, per-pair loss and delay. */
static bool		 deaf[NPEER][NPEER];	/* [rx][src] */
static double		 pair_loss[NPEER][NPEER];
static uint64_t		 pair_delay[NPEER][NPEER];
/* What happened: statuses delivered, per receiver. */
static unsigned int	 got_status[NPEER][SIM_RX_DETACHED + 1];
static unsigned int	 resets[NPEER];
/*
 * The simulator's accounting: each sender's last frame on the air
 * (simulated start and end), and when the last frame from each sender
 * reached each receiver.
 */
static struct {
	uint64_t	 t_start, t_end;
	bool		 cut;
	bool		 on;
} air[NPEER];
static uint64_t		 got_at[NPEER][NPEER];	/* [rx][src] */

/* Were frames from a and b on the air at the same moment? */
static bool
on_air_together(unsigned int a, unsigned int b)
{
	return (air[a].on && air[b].on && air[a].t_start < air[b].t_end &&
	    air[b].t_start < air[a].t_end);
}

/* Tries of a scenario that needs frames on the air together. */
#define TRIES	20

static const struct sim_opt toy_ep_options[] = {
	{ "ch", "0", "channel" },
	{ NULL, NULL, NULL }
};

static int
toy_init(struct sim *sim, char **cause)
{
	memset(toy, 0, sizeof(toy));
	return (0);
}

static void
toy_line_rx(struct sim *sim, struct sim_ep *ep, const uint8_t *b,
    const uint8_t *err, size_t n, const struct sim_fmt *fmt,
    uint64_t t_first, uint64_t unit_ns)
{
	struct toy_ep	*t = &toy[ep->idx];
	size_t		 i;

	assert_non_null(err);
	for (i = 0; i < n; i++) {
		if (err[i] != 0)
			t->errors++;
		if (b[i] == '\n') {
			sim_frame_send(sim, ep, (uint32_t)atoi(sim_ep_opt(ep,
			    "ch")), t->line, t->len);
			t->len = 0;
		} else if (t->len < LINE_MAX_)
			t->line[t->len++] = b[i];
	}
}

static void
toy_deliver(struct sim *sim, struct sim_ep *rx, const struct sim_tx *tx,
    size_t off, size_t n, enum sim_rx_status status, uint64_t at)
{
	assert_int_equal(off, 0);
	assert_int_equal(n, tx->len);
	got_status[rx->idx][status]++;
	got_at[rx->idx][tx->src->idx] = at;
	air[tx->src->idx].t_start = tx->t_start;
	air[tx->src->idx].t_end = tx->t_end;
	air[tx->src->idx].cut = tx->cut;
	air[tx->src->idx].on = true;
	if (status == SIM_RX_OK) {
		sim_line_send(rx, tx->buf, tx->len);
		sim_line_send(rx, (const uint8_t *)"\n", 1);
	}
}

static uint64_t
toy_airtime(struct sim *sim, const struct sim_ep *src, size_t len)
{
	return ((5 + len) * SIM_NS_PER_MS);
}

static bool
toy_hears(struct sim *sim, const struct sim_ep *rx, const struct sim_tx *tx)
{
	return (!deaf[rx->idx][tx->src->idx]);
}

static double
toy_loss(struct sim *sim, const struct sim_ep *rx, const struct sim_tx *tx)
{
	return (pair_loss[rx->idx][tx->src->idx]);
}

static uint64_t
toy_delay(struct sim *sim, const struct sim_ep *rx, const struct sim_tx *tx)
{
	return (pair_delay[rx->idx][tx->src->idx]);
}

static void
toy_tx_done(struct sim *sim, const struct sim_tx *tx)
{
	air[tx->src->idx].t_start = tx->t_start;
	air[tx->src->idx].t_end = tx->t_end;
	air[tx->src->idx].cut = tx->cut;
	air[tx->src->idx].on = true;
	sim_line_send(tx->src, (const uint8_t *)"DONE\n", 5);
}

static void
toy_reset(struct sim *sim, struct sim_ep *ep)
{
	resets[ep->idx]++;
	toy[ep->idx].len = 0;
}

static const struct sim_personality toy_pers = {
	.name = "toy",
	.help = "a line a frame",
	.ep_options = toy_ep_options,
	.init = toy_init,
	.line_rx = toy_line_rx,
	.deliver = toy_deliver,
	.airtime_ns = toy_airtime,
	.hears = toy_hears,
	.loss = toy_loss,
	.delay_ns = toy_delay,
	.tx_done = toy_tx_done,
	.reset = toy_reset
};

/* ------------------------------------------------------------------ */
/* Endpoints as their programs see them                                */

struct peer {
	struct sim_ep	*ep;
	int		 fd;
	struct event	*ev;
	char		 buf[4096];
	size_t		 len;
	uint64_t	 at_nl[16];	/* real ns of each '\n' read */
	unsigned int	 nl;
};

static struct event_base *base;
static struct sim	*sim;
static struct peer	 peer[NPEER];

static uint64_t
mono_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static void
peer_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer	*p = arg;
	uint64_t	 t = mono_ns();
	ssize_t		 n, i;

	while (p->len < sizeof(p->buf) - 1 && (n = read(p->fd, p->buf +
	    p->len, sizeof(p->buf) - 1 - p->len)) > 0) {
		for (i = 0; i < n; i++)
			if (p->buf[p->len + (size_t)i] == '\n' && p->nl < 16)
				p->at_nl[p->nl++] = t;
		p->len += (size_t)n;
		p->buf[p->len] = '\0';
	}
}

static void
run_ms(unsigned int ms)
{
	ubt_run_ms(base, ms);
}

#define WAIT_FOR(cond, ms)	UBT_WAIT_FOR(base, cond, ms)

static void
air_new(double scale, const char *ch[NPEER])
{
	struct event_config *cfg;
	struct sim_conf	 conf;
	char		*cause = NULL, name[2] = "a";
	unsigned int	 i;

	memset(deaf, 0, sizeof(deaf));
	memset(pair_loss, 0, sizeof(pair_loss));
	memset(pair_delay, 0, sizeof(pair_delay));
	memset(got_status, 0, sizeof(got_status));
	memset(resets, 0, sizeof(resets));
	memset(air, 0, sizeof(air));
	memset(got_at, 0, sizeof(got_at));
	memset(&conf, 0, sizeof(conf));
	conf.pers = &toy_pers;
	conf.time_scale = scale;
	conf.seed = 9;
	assert_int_equal(sim_fmt_parse("8N1", 9600, &conf.fmt), 0);
	assert_non_null(cfg = event_config_new());
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	assert_non_null(base = event_base_new_with_config(cfg));
	event_config_free(cfg);
	assert_non_null(sim = sim_new(base, &conf, &cause));
	for (i = 0; i < NPEER; i++) {
		memset(&peer[i], 0, sizeof(peer[i]));
		name[0] = (char)('a' + i);
		assert_non_null(peer[i].ep = sim_ep_add(sim, name, &cause));
		if (ch != NULL && ch[i] != NULL)
			assert_int_equal(sim_ep_set(peer[i].ep, "ch", ch[i],
			    &cause), 0);
		peer[i].fd = node_serial_open(peer[i].ep->pty,
		    i == 3 && ch != NULL && ch[3] != NULL &&
		    strcmp(ch[3], "wrong") == 0 ? 19200 : 9600, "8N1", &cause);
		assert_true(peer[i].fd != -1);
		assert_non_null(peer[i].ev = event_new(base, peer[i].fd,
		    EV_READ | EV_PERSIST, peer_read_cb, &peer[i]));
		event_add(peer[i].ev, NULL);
	}
	if (sim_start(sim, &cause) == -1)
		fail_msg("%s", cause);
}

static void
air_free(void)
{
	unsigned int	 i;

	for (i = 0; i < NPEER; i++) {
		event_free(peer[i].ev);
		close(peer[i].fd);
	}
	sim_free(sim);
	event_base_free(base);
}

static void
say(unsigned int i, const char *s)
{
	assert_int_equal(write(peer[i].fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* ------------------------------------------------------------------ */

/*
 * "hello\n" at 9600 8N1: 6 characters to the modem (6.25 ms), 10 ms on
 * the air, "hello\n" from b's modem (6.25 ms): b's newline 22.5 ms after
 * the write at the earliest; "DONE\n" at a 5.2 ms after the air ended.
 * The accounting exactly: 10 ms on the air, delivered at its end.  In
 * real time never early, and late by at most RT_SLACK_MS (pty latency,
 * wake-up batches) plus the stall the host measured meanwhile
 * (run_delay.h).
 */
static void
test_frame_timing(void **state)
{
	uint64_t	 t0;
	double		 b_ms, a_ms, stall;
	struct stall	 st;

	air_new(1, NULL);
	stall_mark(&st);
	t0 = mono_ns();
	say(0, "hello\n");
	WAIT_FOR(peer[1].nl == 1 && peer[0].nl == 1 && peer[2].nl == 1, 2000);
	stall = stall_ms(&st);
	assert_string_equal(peer[1].buf, "hello\n");
	assert_string_equal(peer[2].buf, "hello\n");
	assert_string_equal(peer[0].buf, "DONE\n");
	b_ms = (double)(peer[1].at_nl[0] - t0) / 1e6;
	a_ms = (double)(peer[0].at_nl[0] - t0) / 1e6;
	fprintf(stderr, "frame: b after %.3f ms (model 22.5), DONE after "
	    "%.3f ms (model 21.458), host stall %.3f ms\n", b_ms, a_ms,
	    stall);
	assert_int_equal(air[0].t_end - air[0].t_start, 10 * SIM_NS_PER_MS);
	assert_int_equal(got_at[1][0], air[0].t_end);
	assert_int_equal(got_at[2][0], air[0].t_end);
	assert_true(b_ms >= 22.5 - 0.05 &&
	    b_ms < 22.5 + RT_SLACK_MS + stall);
	assert_true(a_ms >= 6.25 + 10 + 5 * 1.0417 - 0.05 &&
	    a_ms < 6.25 + 10 + 5 * 1.0417 + RT_SLACK_MS + stall);
	assert_int_equal(peer[0].ep->st.tx_frames, 1);
	assert_int_equal(peer[0].ep->st.tx_bytes, 5);
	assert_int_equal(peer[0].ep->st.airtime_ns, 10 * SIM_NS_PER_MS);
	assert_int_equal(peer[1].ep->st.rx_frames, 1);
	assert_int_equal(peer[0].ep->st.line_in, 6);
	assert_int_equal(peer[1].ep->st.line_out, 6);
	assert_int_equal(got_status[1][SIM_RX_OK], 1);
	air_free();
}

/* Same channel: both lost everywhere; other channels: both heard. */
static void
test_frame_collision(void **state)
{
	const char	*ch[NPEER] = { "1", "1", "1", "2" };
	unsigned int	 try;

	for (try = 0;; try++) {
		air_new(5, ch);
		say(0, "one\n");
		say(1, "two\n");
		say(3, "three\n");
		/* Every frame is over for c. */
		WAIT_FOR(got_status[2][SIM_RX_OK] +
		    got_status[2][SIM_RX_COLLIDED] == 3 &&
		    peer[0].nl + peer[1].nl + peer[3].nl >= 3, 2000);
		run_ms(10);
		/* "At once": unless the host held a line back. */
		if (on_air_together(0, 1) && on_air_together(0, 3) &&
		    on_air_together(1, 3))
			break;
		fprintf(stderr, "collision: frames not on the air together "
		    "(host stall), again\n");
		air_free();
		if (try + 1 == TRIES)
			fail_msg("the host never let three frames go on the "
			    "air together in %d tries", TRIES);
	}
	assert_int_equal(peer[0].ep->st.collisions, 1);
	assert_int_equal(got_status[2][SIM_RX_COLLIDED], 2);
	assert_int_equal(peer[3].nl, 1);
	assert_int_equal(peer[2].nl, 1);
	assert_int_equal(peer[1].ep->st.collisions, 1);
	assert_int_equal(peer[3].ep->st.collisions, 0);
	assert_int_equal(peer[2].ep->st.rx_garbled, 2);
	/* c (whose modem hears every channel here: hears() decides) got
	 * d's frame on the other channel intact. */
	assert_string_equal(peer[2].buf, "three\n");
	assert_int_equal(peer[2].ep->st.rx_frames, 1);
	/* a, b and d were all on the air at once (a half-duplex radio
	 * hears nothing while it sends, on any channel): each missed the
	 * other two. */
	assert_int_equal(peer[0].ep->st.rx_missed, 2);
	assert_int_equal(peer[1].ep->st.rx_missed, 2);
	assert_int_equal(peer[3].ep->st.rx_missed, 2);
	air_free();
}

/* Out of range: never there, not counted; per-pair loss and delay. */
static void
test_hears_loss_delay(void **state)
{
	uint64_t	 t0;
	double		 d, stall;
	struct stall	 st;

	air_new(1, NULL);
	deaf[2][0] = true;		/* c cannot hear a */
	pair_loss[3][0] = 1;		/* d loses everything from a */
	pair_delay[1][0] = 30 * SIM_NS_PER_MS;	/* b hears a 30 ms late */
	stall_mark(&st);
	t0 = mono_ns();
	say(0, "x\n");
	WAIT_FOR(peer[1].nl == 1, 2000);
	stall = stall_ms(&st);
	run_ms(20);
	d = (double)(peer[1].at_nl[0] - t0) / 1e6;
	/* The accounting: b's copy due exactly 30 ms after the air. */
	assert_int_equal(got_at[1][0], air[0].t_end + 30 * SIM_NS_PER_MS);
	/* 2 + 6 ms air + 30 ms + 2 characters back, late by at most
	 * RT_SLACK_MS and what the host stalled (run_delay.h). */
	assert_true(d >= 2.083 + 6 + 30 + 2.083 - 0.05 &&
	    d < 2.083 + 6 + 30 + 2.083 + RT_SLACK_MS + stall);
	assert_int_equal(peer[2].len, 0);
	assert_int_equal(peer[2].ep->st.rx_frames + peer[2].ep->st.rx_lost +
	    peer[2].ep->st.rx_garbled, 0);
	assert_int_equal(got_status[2][SIM_RX_OK], 0);
	assert_int_equal(peer[3].len, 0);
	assert_int_equal(peer[3].ep->st.rx_lost, 1);
	assert_int_equal(got_status[3][SIM_RX_NOISE], 1);
	air_free();
}

/* b starts sending while a's frame is on the air: b misses it. */
static void
test_half_duplex_frames(void **state)
{
	const char	*ch[NPEER] = { "1", "2", "1", "1" };
	unsigned int	 try;

	for (try = 0;; try++) {
		air_new(1, ch);
		say(0, "a long frame of forty bytes, 44 ms air\n");
		/* 40 characters to the modem (41.7 ms), then 44 ms on the
		 * air. */
		WAIT_FOR(peer[0].ep->st.tx_frames == 1, 2000);
		run_ms(10);
		say(1, "b\n");	/* another channel: no collision */
		WAIT_FOR(peer[2].nl == 2 && peer[1].nl == 1 &&
		    got_status[1][SIM_RX_OK] + got_status[1][SIM_RX_MISSED]
		    == 1, 2000);
		run_ms(20);
		/* While a's frame was on the air, unless the host held b's
		 * line back past it. */
		if (on_air_together(0, 1))
			break;
		fprintf(stderr, "half-duplex: b's frame after a's (host "
		    "stall), again\n");
		air_free();
		if (try + 1 == TRIES)
			fail_msg("the host never let b send during a's frame "
			    "in %d tries", TRIES);
	}
	assert_int_equal(peer[1].ep->st.rx_missed, 1);
	assert_int_equal(got_status[1][SIM_RX_MISSED], 1);
	assert_int_equal(peer[0].ep->st.collisions, 0);
	/* c, not sending, got both (hears() lets it hear every channel). */
	assert_int_equal(peer[2].ep->st.rx_frames, 2);
	/* b's own "DONE". */
	assert_string_equal(peer[1].buf, "DONE\n");
	air_free();
}

/* A reset cuts a's frame on the air: damaged for everyone. */
static void
test_reset_cuts(void **state)
{
	unsigned int	 try;

	for (try = 0;; try++) {
		air_new(1, NULL);
		say(0, "a long frame of forty bytes, 44 ms air\n");
		WAIT_FOR(peer[0].ep->st.tx_frames == 1, 2000);
		run_ms(10);
		sim_ep_reset(peer[0].ep);
		WAIT_FOR(got_status[1][SIM_RX_COLLIDED] +
		    got_status[1][SIM_RX_OK] == 1, 2000);
		/* A reset after the air ended (the host stalled past the
		 * 44 ms) cut nothing. */
		if (air[0].cut)
			break;
		assert_int_equal(got_status[1][SIM_RX_OK], 1);
		fprintf(stderr, "reset: the frame had left the air (host "
		    "stall), again\n");
		air_free();
		if (try + 1 == TRIES)
			fail_msg("the host never let a reset cut a frame in "
			    "%d tries", TRIES);
	}
	assert_int_equal(got_status[1][SIM_RX_COLLIDED], 1);
	assert_int_equal(peer[1].len, 0);
	assert_int_equal(peer[1].ep->st.rx_garbled, 1);
	assert_int_equal(resets[0], 1);
	assert_int_equal(peer[0].ep->st.resets, 1);
	/* The frame ended at the reset: DONE comes at once. */
	WAIT_FOR(peer[0].nl == 1, 1000);
	air_free();
}

/*
 * A program at 19200 talking to a 9600 modem: the modem reads garbage
 * (worked out with the bit model: bc ad e8 bc be f8, no newline).
 */
static void
test_line_mismatch(void **state)
{
	const char	*ch[NPEER] = { NULL, NULL, NULL, "wrong" };
	const uint8_t	 want[] = { 0xbc, 0xad, 0xe8, 0xbc, 0xbe, 0xf8 };

	air_new(1, ch);
	say(3, "hello there\n");
	/* The run is decoded whole when it ends (6.25 ms). */
	WAIT_FOR(peer[3].ep->st.line_mismatch == 1, 2000);
	run_ms(20);
	assert_int_equal(toy[3].len, sizeof(want));
	assert_memory_equal(toy[3].line, want, sizeof(want));
	assert_int_equal(peer[3].ep->st.line_mismatch, 1);
	/* No newline survived: nothing went on the air. */
	assert_int_equal(peer[3].ep->st.tx_frames, 0);
	assert_int_equal(peer[0].len, 0);
	air_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_timing),
		cmocka_unit_test(test_frame_collision),
		cmocka_unit_test(test_hears_loss_delay),
		cmocka_unit_test(test_half_duplex_frames),
		cmocka_unit_test(test_reset_cuts),
		cmocka_unit_test(test_line_mismatch),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
