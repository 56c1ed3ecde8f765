/*
 * test_sim_bus.c: the medium simulator core with its raw RS-485 bus
 * personality (node-stubs/sim_*.c, docs/simulator.md), on real pty
 * pairs.  The test plays every endpoint: it opens the slaves with the
 * node side's own serial code (node_serial_open: real termios, 9600 8E1)
 * and runs the simulator on its own libevent loop, reading the slaves
 * as they become readable.
 *
 * Covered: the timing of a byte run at 9600 8E1 (11 bits a character)
 * and 8N1 (10) on a real-time and on a compressed clock, every
 * character paced; a collision garbles both talkers' frames; a
 * half-duplex endpoint misses what arrives while it sends; per-endpoint
 * loss statistics; rate and parity mismatches detected and decoded as
 * garbage; the parity= override; delivery delay; detach/attach, a
 * talker reset and the command parser.
 *
 * Load (run_delay.h): the simulator's own accounting, the simulated
 * times it stamps on every character and what it delivered to whom
 * (recorded through a wrapper of the rs485 personality's deliver()), is
 * checked exactly.  Real-time bounds allow for the stall measured over
 * their window, never for an early character.  A scenario that needs
 * two talkers at a given moment is repeated when the accounting shows
 * the host's scheduling moved one of them (a pause between two writes
 * is the host's, not the bus's).
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

#define NPEER		5
#define PEER_CAP	16384

/* One endpoint as its program sees it: the slave side. */
struct peer {
	struct sim_ep	*ep;
	int		 fd;
	struct event	*ev;
	uint8_t		 buf[PEER_CAP];
	uint64_t	 at[PEER_CAP];	/* real ns each byte was read */
	size_t		 len;
};

/*
 * The simulator's accounting, as the personality sees it: every
 * transmission (its characters' simulated start times) and every
 * delivery (which characters reached whom, with what status, due when).
 */
#define REC_TX		256
#define REC_CHARS	256
#define REC_RX		4096
struct rec_tx {
	uint64_t	 id;
	unsigned int	 src;
	uint64_t	 t_start, t_end, unit;
	size_t		 len;
	uint64_t	 t[REC_CHARS];
	bool		 collided;
};
struct rec_rx {
	unsigned int	 tx;		/* index in rec.tx */
	size_t		 off, n;
	enum sim_rx_status st;
	uint64_t	 at;
};
static struct {
	struct rec_tx	 tx[REC_TX];
	unsigned int	 ntx;
	struct rec_rx	 rx[NPEER][REC_RX];
	unsigned int	 nrx[NPEER];
} rec;

static void
rec_deliver(struct sim *s, struct sim_ep *rx, const struct sim_tx *tx,
    size_t off, size_t n, enum sim_rx_status st, uint64_t at)
{
	struct rec_tx	*r;
	unsigned int	 i;
	size_t		 k;

	for (i = 0; i < rec.ntx && rec.tx[i].id != tx->id; i++)
		;
	assert_true(i < REC_TX);
	if (i == rec.ntx)
		rec.ntx++;
	r = &rec.tx[i];
	r->id = tx->id;
	r->src = tx->src->idx;
	r->t_start = tx->t_start;
	r->t_end = tx->t_end;
	r->unit = tx->unit_ns;
	r->len = tx->len;
	r->collided = tx->collided;
	for (k = 0; k < tx->len && k < REC_CHARS; k++)
		r->t[k] = tx->t[k];
	assert_true(rec.nrx[rx->idx] < REC_RX);
	rec.rx[rx->idx][rec.nrx[rx->idx]++] = (struct rec_rx){ i, off, n,
	    st, at };
	sim_rs485.deliver(s, rx, tx, off, n, st, at);
}

/* The transmission of endpoint `src', in order of first delivery. */
static struct rec_tx *
rec_tx_of(unsigned int src, unsigned int nth)
{
	unsigned int	 i;

	for (i = 0; i < rec.ntx; i++)
		if (rec.tx[i].src == src && nth-- == 0)
			return (&rec.tx[i]);
	return (NULL);
}

/* Characters of `tx' that reached `rx' with status st. */
static size_t
rec_count(unsigned int rx, const struct rec_tx *tx, enum sim_rx_status st)
{
	size_t		 n = 0;
	unsigned int	 i;

	for (i = 0; i < rec.nrx[rx]; i++)
		if (&rec.tx[rec.rx[rx][i].tx] == tx && rec.rx[rx][i].st == st)
			n += rec.rx[rx][i].n;
	return (n);
}

/* Characters of x that share a moment on the bus with one of y's. */
static size_t
rec_overlapping(const struct rec_tx *x, const struct rec_tx *y)
{
	size_t	 k, j, n = 0;

	for (k = 0; k < x->len && k < REC_CHARS; k++)
		for (j = 0; j < y->len && j < REC_CHARS; j++)
			if (y->t[j] < x->t[k] + x->unit &&
			    y->t[j] + y->unit > x->t[k]) {
				n++;
				break;
			}
	return (n);
}

static struct sim_personality rec_pers;

static struct event_base *base;
static struct sim	*sim;
static struct peer	 peer[NPEER];
static unsigned int	 npeer;
static struct event	*ev_timeout;
/* Stop the loop when peer[wait_peer] holds wait_len bytes. */
static int		 wait_peer = -1;
static size_t		 wait_len;

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
	ssize_t		 n;
	size_t		 i;

	while (p->len < PEER_CAP &&
	    (n = read(p->fd, p->buf + p->len, PEER_CAP - p->len)) > 0) {
		for (i = 0; i < (size_t)n; i++)
			p->at[p->len + i] = t;
		p->len += (size_t)n;
	}
	if (wait_peer >= 0 && &peer[wait_peer] == p && p->len >= wait_len)
		event_base_loopbreak(base);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

/* Runs the loop for `ms' of real time. */
static void
run_ms(unsigned int ms)
{
	struct timeval	 tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

	wait_peer = -1;
	evtimer_add(ev_timeout, &tv);
	event_base_dispatch(base);
	evtimer_del(ev_timeout);
}

/* Runs the loop until `cond' holds (checked every 2 ms), at most `ms'. */
#define WAIT_FOR(cond, ms) do {						\
	unsigned int	 waited_;					\
									\
	for (waited_ = 0; !(cond) && waited_ < (ms); waited_ += 2)	\
		run_ms(2);						\
	if (!(cond))							\
		fail_msg("after %u ms: %s", (unsigned int)(ms), #cond);	\
} while (0)

/* Runs until peer i holds `len' bytes or `ms' pass; true if it does. */
static bool
run_until(unsigned int i, size_t len, unsigned int ms)
{
	struct timeval	 tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

	if (peer[i].len >= len)
		return (true);
	wait_peer = (int)i;
	wait_len = len;
	evtimer_add(ev_timeout, &tv);
	event_base_dispatch(base);
	evtimer_del(ev_timeout);
	wait_peer = -1;
	return (peer[i].len >= len);
}

/* A simulator of `n' endpoints a, b, c... on an RS-485 bus. */
static void
bus_new(unsigned int n, double scale, const char *format, double c_loss)
{
	struct event_config *cfg;
	struct sim_conf	 conf;
	char		*cause = NULL, name[2] = "a";
	unsigned int	 i;

	memset(&conf, 0, sizeof(conf));
	memset(&rec, 0, sizeof(rec));
	rec_pers = sim_rs485;
	rec_pers.deliver = rec_deliver;
	conf.pers = &rec_pers;
	conf.time_scale = scale;
	conf.seed = 42;
	assert_int_equal(sim_fmt_parse(format, 9600, &conf.fmt), 0);
	assert_non_null(cfg = event_config_new());
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	assert_non_null(base = event_base_new_with_config(cfg));
	event_config_free(cfg);
	assert_non_null(ev_timeout = evtimer_new(base, timeout_cb, NULL));
	sim = sim_new(base, &conf, &cause);
	assert_non_null(sim);
	npeer = n;
	for (i = 0; i < n; i++) {
		memset(&peer[i], 0, sizeof(peer[i]));
		name[0] = (char)('a' + i);
		peer[i].ep = sim_ep_add(sim, name, &cause);
		if (peer[i].ep == NULL)
			fail_msg("%s", cause);
		peer[i].fd = -1;
	}
	if (c_loss > 0) {
		char	 v[16];

		snprintf(v, sizeof(v), "%g", c_loss);
		assert_int_equal(sim_ep_set(peer[2].ep, "loss", v, &cause), 0);
	}
}

/* Opens peer i's slave as a program would, then starts reading it. */
static void
peer_open(unsigned int i, unsigned int baud, const char *format)
{
	char		*cause = NULL;

	peer[i].fd = node_serial_open(peer[i].ep->pty, baud, format, &cause);
	if (peer[i].fd == -1)
		fail_msg("%s", cause);
	assert_non_null(peer[i].ev = event_new(base, peer[i].fd,
	    EV_READ | EV_PERSIST, peer_read_cb, &peer[i]));
	event_add(peer[i].ev, NULL);
}

static void
bus_start(void)
{
	char		*cause = NULL;

	if (sim_start(sim, &cause) == -1)
		fail_msg("%s", cause);
}

static void
bus_free(void)
{
	unsigned int	 i;

	for (i = 0; i < npeer; i++) {
		if (peer[i].ev != NULL)
			event_free(peer[i].ev);
		if (peer[i].fd != -1)
			close(peer[i].fd);
		peer[i].ev = NULL;
	}
	sim_free(sim);
	event_free(ev_timeout);
	event_base_free(base);
	sim = NULL;
}

static void
peer_write(unsigned int i, const uint8_t *b, size_t n)
{
	assert_int_equal(write(peer[i].fd, b, n), (ssize_t)n);
}

/* ------------------------------------------------------------------ */

/*
 * 100 characters written at once arrive one character time apart, the
 * last 100 character times after the write: 114.583 ms at 9600 8E1.
 *
 * In the simulator's accounting, exactly: the characters go on the bus
 * one character time apart (each stamped with its start), the run
 * occupies the bus for 100 of them, and each reaches the receivers at
 * the end of its own character time, in order.
 *
 * In real time, character k is read in [t0 + (k + 1) c, t0 + (k + 1) c
 * + SLACK_MS + stall]: never early (that is the pacing: a pty alone
 * hands all 100 over at once), and late by at most SLACK_MS (the pty's
 * own latency, the simulator's 0.5 ms wake-up batches; typically well
 * under a ms, the test prints the median) plus the stall the host
 * measured over the run (run_delay.h): a 2-core host shared by several
 * builds preempts a process, or the kernel worker that moves pty bytes,
 * for tens of ms now and then, and no simulator can make up for that.
 */
#define SLACK_MS	RT_SLACK_MS
static int
cmp_double(const void *a, const void *b)
{
	double		 x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

static void
check_run(const char *format, double scale, double char_ms)
{
	uint8_t		 data[100];
	uint64_t	 t0, want, unit = (uint64_t)llround(char_ms * 1e6);
	size_t		 k, seen;
	double		 real_char_ns = char_ms * 1e6 / scale;
	double		 lateness[100], stall;
	struct stall	 st;
	struct rec_tx	*tx;
	unsigned int	 i, r;

	bus_new(3, scale, format, 0);
	peer_open(0, 9600, format);
	peer_open(1, 9600, format);
	peer_open(2, 9600, format);
	bus_start();
	for (k = 0; k < sizeof(data); k++)
		data[k] = (uint8_t)(k * 3 + 1);
	stall_mark(&st);
	t0 = mono_ns();
	peer_write(0, data, sizeof(data));
	assert_true(run_until(1, sizeof(data), 2000));
	stall = stall_ms(&st);
	assert_memory_equal(peer[1].buf, data, sizeof(data));
	for (k = 0; k < sizeof(data); k++) {
		want = t0 + (uint64_t)((double)(k + 1) * real_char_ns);
		/* 20 us: the pty's own latency and timer rounding. */
		if (peer[1].at[k] + 20000 < want)
			fail_msg("%s x%g: byte %zu early: %.3f ms, want %.3f",
			    format, scale, k, (double)(peer[1].at[k] - t0) /
			    1e6, (double)(want - t0) / 1e6);
		lateness[k] = (double)(peer[1].at[k] - want) / 1e6;
		if (lateness[k] > SLACK_MS + stall)
			fail_msg("%s x%g: byte %zu late by %.3f ms (the host "
			    "stalled %.3f ms meanwhile)", format, scale, k,
			    lateness[k], stall);
	}
	qsort(lateness, 100, sizeof(lateness[0]), cmp_double);
	fprintf(stderr, "%s x%g: last byte after %.3f ms real "
	    "(model %.3f ms real, %.3f ms simulated), median late %.3f ms, "
	    "host stall %.3f ms\n",
	    format, scale, (double)(peer[1].at[99] - t0) / 1e6,
	    100 * real_char_ns / 1e6, 100 * char_ms, lateness[50], stall);
	/* After the silence the run is one frame, everywhere. */
	WAIT_FOR(peer[1].ep->st.rx_frames == 1 &&
	    peer[2].ep->st.rx_frames == 1 && peer[2].len == 100, 1000);
	assert_int_equal(peer[0].ep->st.tx_frames, 1);
	assert_int_equal(peer[0].ep->st.tx_bytes, 100);
	assert_int_equal(peer[0].ep->st.airtime_ns,
	    100 * (uint64_t)llround(char_ms * 1e6));
	assert_int_equal(peer[1].ep->st.rx_frames, 1);
	assert_int_equal(peer[1].ep->st.rx_bytes, 100);
	assert_int_equal(peer[2].ep->st.rx_frames, 1);
	assert_int_equal(peer[2].len, 100);
	assert_int_equal(peer[0].ep->st.rx_frames, 0);
	assert_int_equal(peer[0].len, 0);
	/* The accounting: paced on the bus, each due at its own end. */
	assert_int_equal(rec.ntx, 1);
	assert_non_null(tx = rec_tx_of(0, 0));
	assert_int_equal(tx->len, 100);
	assert_int_equal(tx->unit, unit);
	for (k = 0; k < 100; k++)
		assert_int_equal(tx->t[k], tx->t_start + k * unit);
	assert_int_equal(tx->t_end, tx->t_start + 100 * unit);
	for (r = 1; r <= 2; r++) {
		for (i = 0, seen = 0; i < rec.nrx[r]; i++) {
			assert_int_equal(rec.rx[r][i].st, SIM_RX_OK);
			assert_int_equal(rec.rx[r][i].off, seen);
			seen += rec.rx[r][i].n;
			assert_int_equal(rec.rx[r][i].at,
			    tx->t[seen - 1] + unit);
		}
		assert_int_equal(seen, 100);
	}
	bus_free();
}

static void
test_timing_unscaled(void **state)
{
	/* 11 / 9600 s and 10 / 9600 s a character. */
	check_run("8E1", 1, 11.0 / 9.6);
	check_run("8N1", 1, 10.0 / 9.6);
	check_run("8N2", 1, 11.0 / 9.6);
}

static void
test_timing_scaled(void **state)
{
	/* Ten times faster in real time, the same in simulated time. */
	check_run("8E1", 10, 11.0 / 9.6);
	check_run("8N1", 10, 10.0 / 9.6);
	check_run("8N2", 10, 11.0 / 9.6);
	/* 100 x: 11.5 us of real time a character, far below the pty's
	 * own latency: what holds is the order and the exact figures. */
	check_run("8E1", 100, 11.0 / 9.6);
}

/* The simulated clock runs time_scale times faster than the real one. */
static void
test_clock(void **state)
{
	uint64_t	 s0, r0, s1, r1;

	bus_new(1, 25, "8E1", 0);
	bus_start();
	s0 = sim_now(sim);
	r0 = sim_real_ns(sim);
	run_ms(40);
	s1 = sim_now(sim);
	r1 = sim_real_ns(sim);
	assert_true(r1 - r0 >= 40000000);
	/* Both read the same monotonic clock: exact up to the reads. */
	assert_true(llabs((long long)(s1 - s0) - 25 * (long long)(r1 - r0)) <
	    25 * 1000000LL);
	bus_free();
}

/*
 * How often a scenario that needs two talkers at a given moment is
 * tried before the test gives up on the host: each try is void only if
 * the accounting shows the scheduling moved a talker.
 */
#define TRIES		20

/* Two talkers at once: both frames garbled for everyone. */
static void
test_collision(void **state)
{
	uint8_t		 x[20], y[20];
	size_t		 i, same_x = 0, same_y = 0;
	struct rec_tx	*ta, *tb;
	unsigned int	 try;
	uint64_t	 d;

	for (try = 0;; try++) {
		bus_new(3, 1, "8E1", 0);
		peer_open(0, 9600, "8E1");
		peer_open(1, 9600, "8E1");
		peer_open(2, 9600, "8E1");
		bus_start();
		memset(x, 0x55, sizeof(x));
		memset(y, 0xa3, sizeof(y));
		peer_write(0, x, sizeof(x));
		peer_write(1, y, sizeof(y));
		WAIT_FOR(peer[2].ep->st.rx_garbled + peer[2].ep->st.rx_frames
		    == 2 && peer[2].len == 40, 2000);
		/*
		 * "At once": both runs written before the loop ran.  The
		 * simulator starts each when it sees it; a pause of the host
		 * between the two makes another scenario (a talker that
		 * starts mid-frame), and so does a pty that hands a run over
		 * late, in two pieces (two frames, as from a real UART fed
		 * late): try again.
		 */
		ta = rec_tx_of(0, 0);
		tb = rec_tx_of(1, 0);
		assert_non_null(ta);
		assert_non_null(tb);
		if (ta->len == 20 && tb->len == 20 &&
		    rec_overlapping(ta, tb) == 20 &&
		    rec_overlapping(tb, ta) == 20)
			break;
		d = ta->t_start > tb->t_start ? ta->t_start - tb->t_start :
		    tb->t_start - ta->t_start;
		fprintf(stderr, "collision: the talkers started %.3f ms "
		    "apart, in %zu and %zu characters, %zu and %zu of them "
		    "together (host stall), again\n", (double)d / 1e6,
		    ta->len, tb->len, rec_overlapping(ta, tb),
		    rec_overlapping(tb, ta));
		bus_free();
		if (try + 1 == TRIES)
			fail_msg("the host never let two writes start "
			    "together in %d tries", TRIES);
	}
	WAIT_FOR(peer[2].ep->st.rx_garbled == 2 &&
	    peer[0].ep->st.rx_missed == 1 && peer[1].ep->st.rx_missed == 1,
	    1000);
	for (i = 0; i < peer[2].len; i++) {
		same_x += peer[2].buf[i] == 0x55;
		same_y += peer[2].buf[i] == 0xa3;
	}
	/* Random garbage: neither frame survives at c. */
	assert_true(same_x < 10);
	assert_true(same_y < 10);
	assert_int_equal(peer[0].ep->st.collisions, 1);
	assert_int_equal(peer[1].ep->st.collisions, 1);
	assert_int_equal(peer[2].ep->st.rx_garbled, 2);
	assert_int_equal(peer[2].ep->st.rx_frames, 0);
	assert_int_equal(rec_count(2, ta, SIM_RX_COLLIDED), 20);
	assert_int_equal(rec_count(2, tb, SIM_RX_COLLIDED), 20);
	/* Each talker was sending while the other's arrived. */
	assert_int_equal(peer[0].ep->st.rx_missed, 1);
	assert_int_equal(peer[1].ep->st.rx_missed, 1);
	assert_int_equal(rec_count(0, tb, SIM_RX_MISSED), 20);
	assert_int_equal(rec_count(1, ta, SIM_RX_MISSED), 20);
	assert_int_equal(peer[0].len, 0);
	assert_int_equal(peer[1].len, 0);
	bus_free();
}

/* b talks in the middle of a's frame: b misses that part of it. */
static void
test_half_duplex(void **state)
{
	uint8_t		 x[50], y[5];
	size_t		 i, missed;
	struct rec_tx	*ta, *tb;
	unsigned int	 try;

	for (i = 0; i < sizeof(x); i++)
		x[i] = (uint8_t)i;
	memset(y, 0x7e, sizeof(y));
	for (try = 0;; try++) {
		bus_new(3, 1, "8E1", 0);
		peer_open(0, 9600, "8E1");
		peer_open(1, 9600, "8E1");
		peer_open(2, 9600, "8E1");
		bus_start();
		peer_write(0, x, sizeof(x));
		assert_true(run_until(1, 10, 2000));
		peer_write(1, y, sizeof(y));
		WAIT_FOR(peer[2].len == 55 && peer[2].ep->st.rx_garbled +
		    peer[2].ep->st.rx_frames == 2 &&
		    peer[1].ep->st.rx_missed + peer[1].ep->st.rx_frames +
		    peer[1].ep->st.rx_garbled == 1, 2000);
		run_ms(10);	/* b's reads catch up */
		/* "In the middle": b's frame inside a's, unless the host
		 * held b's write back past a's end, or a's run reached the
		 * simulator in two pieces (two frames). */
		ta = rec_tx_of(0, 0);
		tb = rec_tx_of(1, 0);
		assert_non_null(ta);
		assert_non_null(tb);
		if (ta->len == 50 && tb->len == 5 &&
		    rec_overlapping(tb, ta) == 5)
			break;
		fprintf(stderr, "half-duplex: b's frame not inside a's "
		    "(host stall), again\n");
		bus_free();
		if (try + 1 == TRIES)
			fail_msg("the host never let b talk during a's frame "
			    "in %d tries", TRIES);
	}
	/*
	 * What a sent during b's 5 characters (5.7 ms: 5 or 6 of a's, the
	 * accounting says which) never reached b; the rest did, in order.
	 */
	missed = rec_count(1, ta, SIM_RX_MISSED);
	assert_int_equal(missed, rec_overlapping(ta, tb));
	assert_true(missed >= 5 && missed <= 6);
	assert_int_equal(rec_count(1, ta, SIM_RX_OK), 50 - missed);
	assert_int_equal(peer[1].len, 50 - missed);
	assert_memory_equal(peer[1].buf, x, 10);
	assert_int_equal(peer[1].ep->st.rx_missed, 1);
	/* a was sending all along: it missed b's frame whole. */
	assert_int_equal(peer[0].ep->st.rx_missed, 1);
	assert_int_equal(rec_count(0, tb, SIM_RX_MISSED), 5);
	assert_int_equal(peer[0].len, 0);
	/* c heard both, damaged where they overlapped. */
	assert_int_equal(peer[2].ep->st.rx_garbled, 2);
	assert_int_equal(rec_count(2, tb, SIM_RX_COLLIDED), 5);
	assert_int_equal(rec_count(2, ta, SIM_RX_COLLIDED), missed);
	assert_int_equal(peer[2].len, 55);
	assert_int_equal(peer[0].ep->st.collisions, 1);
	assert_int_equal(peer[1].ep->st.collisions, 1);
	bus_free();
}

/* c loses 20 % of the frames, independently; b none. */
static void
test_loss_statistics(void **state)
{
	uint8_t		 f[8];
	unsigned int	 i, bad = 0;
	size_t		 k;

	bus_new(3, 50, "8E1", 20);
	peer_open(0, 9600, "8E1");
	peer_open(1, 9600, "8E1");
	peer_open(2, 9600, "8E1");
	bus_start();
	for (i = 0; i < 200; i++) {
		for (k = 0; k < sizeof(f); k++)
			f[k] = (uint8_t)(i + k * 17);
		peer_write(0, f, sizeof(f));
		assert_true(run_until(1, (i + 1) * sizeof(f), 2000));
		/* The silence that ends the frame: 3.5 characters. */
		run_ms(1);
	}
	WAIT_FOR(peer[2].ep->st.rx_frames + peer[2].ep->st.rx_lost == 200 &&
	    peer[1].ep->st.rx_frames == 200 && peer[2].len == 200 * sizeof(f),
	    2000);
	assert_int_equal(peer[0].ep->st.tx_frames, 200);
	assert_int_equal(peer[1].ep->st.rx_frames, 200);
	assert_int_equal(peer[1].ep->st.rx_lost, 0);
	assert_int_equal(peer[2].ep->st.rx_frames + peer[2].ep->st.rx_lost,
	    200);
	/* Binomial(200, 0.2): 40 +- 5.7; 3.5 sigma either way. */
	assert_true(peer[2].ep->st.rx_lost >= 20);
	assert_true(peer[2].ep->st.rx_lost <= 60);
	/* Noise flips one bit of a lost frame: parity catches it (INPCK:
	 * the program reads '\0'), every character still arrives. */
	assert_int_equal(peer[2].len, 200 * sizeof(f));
	for (i = 0; i < 200; i++) {
		for (k = 0; k < sizeof(f); k++)
			f[k] = (uint8_t)(i + k * 17);
		bad += memcmp(peer[2].buf + i * sizeof(f), f, sizeof(f)) != 0;
		assert_memory_equal(peer[1].buf + i * sizeof(f), f,
		    sizeof(f));
	}
	assert_int_equal(bad, peer[2].ep->st.rx_lost);
	assert_int_equal(peer[2].ep->st.line_errors, bad);
	fprintf(stderr, "loss 20 %%: %llu of 200 frames lost\n",
	    (unsigned long long)peer[2].ep->st.rx_lost);
	bus_free();
}

/* Wrong rate, wrong parity: detected, and decoded as a UART would. */
static void
test_mismatch(void **state)
{
	struct sim_fmt	 f;
	tcflag_t	 iflag;
	uint8_t		 x[50], y[20];
	size_t		 i;

	bus_new(4, 1, "8E1", 0);
	peer_open(0, 9600, "8E1");
	peer_open(1, 19200, "8E1");	/* wrong rate */
	peer_open(2, 9600, "8N1");	/* wrong parity */
	peer_open(3, 9600, "8E1");
	bus_start();
	for (i = 0; i < sizeof(x); i++)
		x[i] = (uint8_t)(i * 5 + 3);
	peer_write(0, x, sizeof(x));
	assert_true(run_until(3, sizeof(x), 2000));
	WAIT_FOR(peer[1].ep->st.line_mismatch == 1 &&
	    peer[2].ep->st.line_mismatch == 1 &&
	    peer[3].ep->st.rx_frames == 1, 1000);
	run_ms(10);	/* b's and c's reads catch up */
	assert_memory_equal(peer[3].buf, x, sizeof(x));
	assert_int_equal(peer[3].ep->st.line_errors, 0);
	assert_int_equal(peer[3].ep->st.line_mismatch, 0);
	/* b reads twice as fast: garbage, with errors. */
	assert_true(peer[1].len > 0);
	assert_true(peer[1].len != sizeof(x) ||
	    memcmp(peer[1].buf, x, sizeof(x)) != 0);
	assert_true(peer[1].ep->st.line_errors > 0);
	assert_int_equal(peer[1].ep->st.line_mismatch, 1);
	sim_line_fmt(peer[1].ep, &f, &iflag);
	assert_int_equal(f.baud, 19200);
	assert_false(sim_fmt_eq(&f, &peer[1].ep->fmt));
	/* c (8N1) takes parity bits for stop bits. */
	assert_true(peer[2].ep->st.line_errors > 0);
	assert_int_equal(peer[2].ep->st.line_mismatch, 1);
	/* And what c sends in 8N1 is garbage to the 8E1 endpoints. */
	memset(y, 0x11, sizeof(y));
	peer_write(2, y, sizeof(y));
	assert_true(run_until(3, sizeof(x) + sizeof(y), 2000));
	WAIT_FOR(peer[3].ep->st.rx_frames == 2, 1000);
	assert_true(memcmp(peer[3].buf + sizeof(x), y, sizeof(y)) != 0);
	assert_true(peer[3].ep->st.line_errors > 0);
	assert_int_equal(peer[2].ep->st.line_mismatch, 2);
	bus_free();
}

/*
 * A program that sets PARENB without INPCK (pyserial does) looks like
 * 8N1 on a pty; parity=E says what it is.
 */
static void
test_parity_override(void **state)
{
	struct termios	 t;
	uint8_t		 x[30];
	char		*cause = NULL;
	size_t		 i;

	bus_new(2, 1, "8E1", 0);
	assert_int_equal(sim_ep_set(peer[1].ep, "parity", "E", &cause), 0);
	assert_int_equal(sim_ep_set(peer[1].ep, "parity", "X", &cause), -1);
	free(cause);
	peer_open(0, 9600, "8E1");
	peer_open(1, 9600, "8E1");
	assert_int_equal(tcgetattr(peer[1].fd, &t), 0);
	t.c_iflag &= ~(tcflag_t)INPCK;
	assert_int_equal(tcsetattr(peer[1].fd, TCSANOW, &t), 0);
	bus_start();
	for (i = 0; i < sizeof(x); i++)
		x[i] = (uint8_t)(i * 9);
	peer_write(0, x, sizeof(x));
	assert_true(run_until(1, sizeof(x), 2000));
	assert_memory_equal(peer[1].buf, x, sizeof(x));
	assert_int_equal(peer[1].ep->st.line_errors, 0);
	bus_free();
}

/* c's copy arrives its delivery delay after b's, never before. */
static void
test_delay(void **state)
{
	uint8_t		 x[10];
	char		*cause = NULL;
	uint64_t	 t0;
	double		 d, due, stall;
	struct stall	 st;

	bus_new(3, 1, "8E1", 0);
	assert_int_equal(sim_ep_set(peer[2].ep, "delay", "20", &cause), 0);
	peer_open(0, 9600, "8E1");
	peer_open(1, 9600, "8E1");
	peer_open(2, 9600, "8E1");
	bus_start();
	memset(x, 0x42, sizeof(x));
	stall_mark(&st);
	t0 = mono_ns();
	peer_write(0, x, sizeof(x));
	assert_true(run_until(2, sizeof(x), 2000));
	stall = stall_ms(&st);
	d = (double)(peer[2].at[9] - peer[1].at[9]) / 1e6;
	due = 10 * 11.0 / 9.6;
	fprintf(stderr, "delay 20 ms: c after b by %.3f ms (host stall "
	    "%.3f ms)\n", d, stall);
	/* The accounting: c's characters due exactly 20 ms after b's. */
	assert_int_equal(rec_count(1, rec_tx_of(0, 0), SIM_RX_OK), 10);
	assert_int_equal(rec_count(2, rec_tx_of(0, 0), SIM_RX_OK), 10);
	assert_int_equal(rec.rx[2][rec.nrx[2] - 1].at,
	    rec.rx[1][rec.nrx[1] - 1].at + 20 * SIM_NS_PER_MS);
	/* b's at the end of the run, c's 20 ms later, never earlier; late
	 * by what the host stalled at most (run_delay.h). */
	assert_true((double)(peer[1].at[9] - t0) / 1e6 >= due - 0.02);
	assert_true((double)(peer[1].at[9] - t0) / 1e6 <
	    due + RT_SLACK_MS + stall);
	assert_true((double)(peer[2].at[0] - t0) / 1e6 >= 20 + 11.0 / 9.6 -
	    0.02);
	assert_true((double)(peer[2].at[9] - t0) / 1e6 >= 20 + due - 0.02);
	assert_true((double)(peer[2].at[9] - t0) / 1e6 < 20 + due + 3 +
	    stall);
	bus_free();
}

static void
test_faults(void **state)
{
	uint8_t		 y[10];
	char		*cause = NULL;

	bus_new(3, 1, "8E1", 0);
	peer_open(0, 9600, "8E1");
	peer_open(1, 9600, "8E1");
	peer_open(2, 9600, "8E1");
	bus_start();
	memset(y, 0x31, sizeof(y));

	/* c drops off: it hears nothing, then returns. */
	assert_int_equal(sim_command(sim, "detach c", &cause), 0);
	peer_write(0, y, sizeof(y));
	assert_true(run_until(1, 10, 2000));
	WAIT_FOR(peer[2].ep->st.rx_detached == 1, 1000);
	assert_int_equal(peer[2].len, 0);
	assert_int_equal(peer[2].ep->st.rx_detached, 1);
	assert_int_equal(sim_command(sim, "attach c", &cause), 0);
	peer_write(0, y, sizeof(y));
	assert_true(run_until(2, 10, 2000));
	WAIT_FOR(peer[2].ep->st.rx_frames == 1, 1000);

	/* A detached talker reaches no one. */
	sim_ep_detach(peer[0].ep);
	peer_write(0, y, sizeof(y));
	WAIT_FOR(peer[0].ep->st.tx_unheard == 1, 1000);
	run_ms(40);
	assert_int_equal(peer[1].len, 20);
	assert_int_equal(peer[0].ep->st.tx_unheard, 1);
	sim_ep_attach(peer[0].ep);
	assert_int_equal(peer[0].ep->st.detaches, 1);

	/* The command parser. */
	assert_int_equal(sim_command(sim, "loss c 50", &cause), 0);
	assert_true(peer[2].ep->loss == 0.5);
	assert_int_equal(sim_command(sim, "delay c 2.5", &cause), 0);
	assert_int_equal(peer[2].ep->delay_ns, 2500000);
	assert_int_equal(sim_command(sim, "loss c 101", &cause), -1);
	free(cause);
	cause = NULL;
	assert_int_equal(sim_command(sim, "detach zz", &cause), -1);
	assert_non_null(strstr(cause, "no such endpoint"));
	free(cause);
	cause = NULL;
	assert_int_equal(sim_command(sim, "frobnicate a", &cause), -1);
	assert_non_null(strstr(cause, "unknown command"));
	free(cause);
	cause = NULL;
	assert_int_equal(sim_command(sim, "reset", &cause), -1);
	free(cause);
	bus_free();
}

/*
 * a resets 20 characters into a 200-character frame: what it had put on
 * the wire by then arrives, the rest never does.
 */
static void
test_reset(void **state)
{
	uint8_t		 x[200], y[10];
	char		*cause = NULL;
	uint64_t	 sent;
	size_t		 got;
	unsigned int	 try;

	memset(x, 0x5a, sizeof(x));
	memset(y, 0x31, sizeof(y));
	for (try = 0;; try++) {
		bus_new(3, 1, "8E1", 0);
		peer_open(0, 9600, "8E1");
		peer_open(1, 9600, "8E1");
		peer_open(2, 9600, "8E1");
		bus_start();
		peer_write(0, x, sizeof(x));
		assert_true(run_until(1, 20, 2000));
		assert_int_equal(sim_command(sim, "reset a", &cause), 0);
		sent = peer[0].ep->st.tx_bytes;
		run_ms(300);
		got = peer[1].len;
		/* Whatever the host did, what went arrives, nothing more. */
		assert_int_equal(got, sent);
		assert_int_equal(peer[0].ep->st.resets, 1);
		/* A reset after the frame ended (a long stall) cut nothing. */
		if (sent >= 20 && sent < 200)
			break;
		fprintf(stderr, "reset: the frame had ended (host stall), "
		    "again\n");
		bus_free();
		if (try + 1 == TRIES)
			fail_msg("the host never let a reset cut a frame in "
			    "%d tries", TRIES);
	}
	assert_memory_equal(peer[1].buf, x, got);
	assert_int_equal(rec_count(1, rec_tx_of(0, 0), SIM_RX_OK), sent);
	/* The line works after the reset. */
	peer_write(0, y, sizeof(y));
	assert_true(run_until(1, got + 10, 2000));
	assert_memory_equal(peer[1].buf + got, y, sizeof(y));
	bus_free();
}

/* The status object names every pty and counter. */
static void
test_status_json(void **state)
{
	char		*buf = NULL;
	size_t		 len = 0;
	FILE		*f;

	bus_new(2, 3, "8E1", 0);
	bus_start();
	assert_non_null(f = open_memstream(&buf, &len));
	sim_status_json(sim, f);
	fclose(f);
	assert_non_null(strstr(buf, "\"personality\": \"rs485\""));
	assert_non_null(strstr(buf, "\"time_scale\": 3"));
	assert_non_null(strstr(buf, "\"fmt\": \"9600 8E1\", \"char_bits\": 11"));
	assert_non_null(strstr(buf, peer[0].ep->pty));
	assert_non_null(strstr(buf, peer[1].ep->pty));
	assert_non_null(strstr(buf, "\"sim_ms\""));
	assert_non_null(strstr(buf, "\"real_ms\""));
	assert_non_null(strstr(buf, "\"collisions\""));
	assert_non_null(strstr(buf, "\"airtime_us\""));
	free(buf);
	bus_free();
}

/* The node side's serial code refuses what it cannot set. */
static void
test_serial_open(void **state)
{
	char		*cause = NULL;

	assert_int_equal(node_serial_open("/dev/null", 12345, "8N1", &cause),
	    -1);
	assert_non_null(strstr(cause, "bit rate"));
	free(cause);
	cause = NULL;
	assert_int_equal(node_serial_open("/dev/null", 9600, "8X1", &cause),
	    -1);
	assert_non_null(strstr(cause, "format"));
	free(cause);
	cause = NULL;
	assert_int_equal(node_serial_open("/dev/null", 9600, "8N1", &cause),
	    -1);
	assert_non_null(strstr(cause, "not a tty"));
	free(cause);
	cause = NULL;
	assert_int_equal(node_serial_open("/nonexistent/tty", 9600, "8N1",
	    &cause), -1);
	free(cause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timing_unscaled),
		cmocka_unit_test(test_timing_scaled),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_collision),
		cmocka_unit_test(test_half_duplex),
		cmocka_unit_test(test_loss_statistics),
		cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_parity_override),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_serial_open),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
