/*
 * sim_medium.c: transmissions on the shared medium of the simulator
 * (upsim.h, docs/simulator.md "Medium model").
 *
 * A transmission occupies the medium from its start to its end: a frame
 * for its whole time on air (the personality's airtime function), a
 * wire run character by character.  Each receiver gets each part of it
 * at its end plus the receiver's delivery delay, with a status decided
 * then, from every transmission that overlapped that part:
 *  - the receiver was off the medium (detached): nothing;
 *  - the receiver was sending itself and is half-duplex: missed;
 *  - a third talker was on the same channel at the same time: collided
 *    (both talkers' transmissions are damaged, for every receiver; no
 *    capture effect);
 *  - the receiver's own loss draw (one per transmission) hit it: a
 *    frame is lost, on a wire one of its first characters is hit;
 *  - else intact.
 * The personality decides what the receiver's program then sees.
 */
#include <sys/types.h>
#include <sys/ioctl.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>

#include <event2/event.h>

#include "sim_internal.h"

/* On a wire, noise hits one of a lost run's first characters. */
#define NOISE_SPAN	4

static void	 medium_cb(evutil_socket_t, short, void *);
static void	 medium_run(struct sim *);
static void	 medium_schedule(struct sim *);

const char *
sim_rx_status_str(enum sim_rx_status s)
{
	switch (s) {
	case SIM_RX_OK:
		return ("ok");
	case SIM_RX_NOISE:
		return ("noise");
	case SIM_RX_COLLIDED:
		return ("collided");
	case SIM_RX_MISSED:
		return ("missed");
	case SIM_RX_DETACHED:
		return ("detached");
	}
	return ("?");
}

int
sim__medium_start(struct sim *sim, char **cause)
{
	if ((sim->ev_medium = evtimer_new(sim->base, medium_cb, sim)) ==
	    NULL) {
		*cause = strdup("out of memory");
		return (-1);
	}
	return (0);
}

static void
tx_free(struct sim_tx *tx)
{
	free(tx->buf);
	free(tx->t);
	free(tx->rx);
	free(tx);
}

void
sim__medium_free(struct sim *sim)
{
	struct sim_tx	*tx, *next;

	for (tx = sim->txs; tx != NULL; tx = next) {
		next = tx->next;
		tx_free(tx);
	}
	sim->txs = NULL;
	sim->txtail = &sim->txs;
	if (sim->ev_medium != NULL)
		event_free(sim->ev_medium);
	sim->ev_medium = NULL;
}

void
sim_medium_set_gap(struct sim *sim, uint64_t gap_ns)
{
	sim->gap_ns = gap_ns;
}

/* ------------------------------------------------------------------ */
/* Time geometry                                                       */

/* Does `tx' occupy the medium anywhere in (a, b)? */
static bool
tx_overlaps(const struct sim_tx *tx, uint64_t a, uint64_t b)
{
	size_t		 lo, hi, mid;

	if (tx->unit_ns == 0 || tx->len == 0)
		return (tx->t_start < b && a < tx->t_end);
	if (tx->t_start >= b || tx->t_end <= a)
		return (false);
	/* The last character starting before b is the only one that can
	 * reach past a: characters of one talker do not overlap. */
	lo = 0;
	hi = tx->len;
	while (hi - lo > 1) {
		mid = (lo + hi) / 2;
		if (tx->t[mid] < b)
			lo = mid;
		else
			hi = mid;
	}
	return (tx->t[lo] < b && tx->t[lo] + tx->unit_ns > a);
}

/* When character k of tx is complete at a receiver (before its delay). */
static uint64_t
tx_due(const struct sim_tx *tx, size_t k)
{
	return (tx->unit_ns == 0 ? tx->t_end : tx->t[k] + tx->unit_ns);
}

static void
tx_span(const struct sim_tx *tx, size_t k, uint64_t *a, uint64_t *b)
{
	if (tx->unit_ns == 0) {
		*a = tx->t_start;
		*b = tx->t_end;
	} else {
		*a = tx->t[k];
		*b = tx->t[k] + tx->unit_ns;
	}
}

/* Marks tx and every other talker's transmission on its channel that
 * overlaps (a, b) as collided, counting each once. */
static void
mark_collisions(struct sim *sim, struct sim_tx *tx, uint64_t a, uint64_t b)
{
	struct sim_tx	*o;

	if (tx->unheard)
		return;
	for (o = sim->txs; o != NULL; o = o->next) {
		if (o == tx || o->src == tx->src || o->channel != tx->channel ||
		    o->unheard || !tx_overlaps(o, a, b))
			continue;
		if (!o->collided) {
			o->collided = true;
			o->src->st.collisions++;
		}
		if (!tx->collided) {
			tx->collided = true;
			tx->src->st.collisions++;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Starting transmissions                                              */

static struct sim_tx *
tx_new(struct sim *sim, struct sim_ep *src, uint32_t channel, uint64_t t,
    uint64_t unit, size_t cap)
{
	struct sim_tx	*tx;
	struct sim_ep	*r;
	unsigned int	 i;
	double		 loss;

	if ((tx = calloc(1, sizeof(*tx))) == NULL ||
	    (tx->rx = calloc(sim->nep, sizeof(*tx->rx))) == NULL ||
	    (tx->buf = malloc(cap > 0 ? cap : 1)) == NULL ||
	    (unit > 0 && (tx->t = malloc(cap * sizeof(*tx->t))) == NULL)) {
		if (tx != NULL)
			tx_free(tx);
		return (NULL);
	}
	tx->id = ++sim->tx_ids;
	tx->src = src;
	tx->channel = channel;
	tx->t_start = tx->t_end = t;
	tx->unit_ns = unit;
	tx->cap = cap;
	tx->unheard = !src->attached;
	src->st.tx_frames++;
	if (tx->unheard)
		src->st.tx_unheard++;
	for (i = 0; i < sim->nep; i++) {
		r = sim->ep[i];
		tx->rx[i].noise_at = SIZE_MAX;
		if (r == src || tx->unheard) {
			/* No one hears a detached talker, nor itself. */
			tx->rx[i].done = true;
			continue;
		}
		tx->rx[i].hears = true;
		/* One loss draw per transmission and receiver, from the
		 * receiver's or the personality's figure for the pair. */
		loss = sim->pers->loss != NULL ? sim->pers->loss(sim, r, tx) :
		    r->loss;
		if (loss > 0 && (double)(sim_rand(r) >> 11) /
		    9007199254740992.0 < loss)
			tx->rx[i].noise_at = unit == 0 ? 0 :
			    (size_t)(sim_rand(r) % NOISE_SPAN);
		tx->rx[i].delay_ns = sim->pers->delay_ns != NULL ?
		    sim->pers->delay_ns(sim, r, tx) : r->delay_ns;
	}
	*sim->txtail = tx;
	sim->txtail = &tx->next;
	return (tx);
}

struct sim_tx *
sim_frame_send(struct sim *sim, struct sim_ep *src, uint32_t channel,
    const uint8_t *buf, size_t len)
{
	struct sim_tx	*tx;
	uint64_t	 now = sim_now(sim), air;
	unsigned int	 i;

	/* Without an airtime function, a frame takes its characters'
	 * time in the medium's format. */
	air = sim->pers->airtime_ns != NULL ?
	    sim->pers->airtime_ns(sim, src, len) :
	    len * sim_fmt_char_ns(&sim->conf.fmt);
	if ((tx = tx_new(sim, src, channel, now, 0, len)) == NULL)
		return (NULL);
	memcpy(tx->buf, buf, len);
	tx->len = len;
	tx->t_end = now + air;
	src->st.tx_bytes += len;
	src->st.airtime_ns += air;
	/* Range and frequency, decided once for the whole frame. */
	if (sim->pers->hears != NULL)
		for (i = 0; i < sim->nep; i++)
			if (!tx->rx[i].done && !sim->pers->hears(sim,
			    sim->ep[i], tx))
				tx->rx[i].hears = false;
	mark_collisions(sim, tx, tx->t_start, tx->t_end);
	sim_debug(sim, "%s: frame %llu, %zu bytes, %.3f ms on air",
	    src->name, (unsigned long long)tx->id, len, (double)air / 1e6);
	medium_schedule(sim);
	return (tx);
}

/* Ends src's open wire run: no more characters join it. */
static void
wire_close(struct sim_ep *src)
{
	if (src->wire != NULL) {
		src->wire->open = false;
		src->wire = NULL;
	}
}

/* Doubles a wire run's room, up to SIM_TX_MAX characters. */
static int
wire_grow(struct sim_tx *tx)
{
	uint8_t		*b;
	uint64_t	*t;
	size_t		 cap = tx->cap * 2;

	if (cap > SIM_TX_MAX)
		cap = SIM_TX_MAX;
	if ((b = realloc(tx->buf, cap)) == NULL)
		return (-1);
	tx->buf = b;
	if ((t = realloc(tx->t, cap * sizeof(*t))) == NULL)
		return (-1);
	tx->t = t;
	tx->cap = cap;
	return (0);
}

void
sim_wire_put(struct sim *sim, struct sim_ep *src, uint32_t channel,
    const uint8_t *b, size_t n, const struct sim_fmt *fmt, uint64_t t_first,
    uint64_t unit_ns)
{
	struct sim_tx	*tx;
	size_t		 i, take;
	unsigned int	 r;

	while (n > 0) {
		tx = src->wire;
		if (tx != NULL && (t_first >= tx->t_end + sim->gap_ns ||
		    tx->unit_ns != unit_ns || tx->channel != channel ||
		    !sim_fmt_eq(&tx->fmt, fmt) || tx->len == SIM_TX_MAX)) {
			wire_close(src);
			tx = NULL;
		}
		if (tx == NULL) {
			if ((tx = tx_new(sim, src, channel, t_first, unit_ns,
			    SIM_TX_CAP0)) == NULL) {
				sim_debug(sim, "%s: out of memory, %zu "
				    "characters dropped", src->name, n);
				return;
			}
			tx->open = true;
			tx->fmt = *fmt;
			if (sim->pers->hears != NULL)
				for (r = 0; r < sim->nep; r++)
					if (!tx->rx[r].done && !sim->pers->
					    hears(sim, sim->ep[r], tx))
						tx->rx[r].hears = false;
			src->wire = tx;
			if (!sim_fmt_eq(fmt, &sim->conf.fmt))
				src->st.line_mismatch++;
		}
		if (tx->len == tx->cap && wire_grow(tx) == -1) {
			sim_debug(sim, "%s: out of memory, %zu characters "
			    "dropped", src->name, n);
			return;
		}
		take = tx->cap - tx->len;
		if (take > n)
			take = n;
		for (i = 0; i < take; i++) {
			tx->buf[tx->len] = b[i];
			tx->t[tx->len] = t_first + i * unit_ns;
			tx->len++;
		}
		tx->t_end = t_first + take * unit_ns;
		src->st.tx_bytes += take;
		src->st.airtime_ns += take * unit_ns;
		mark_collisions(sim, tx, t_first, tx->t_end);
		b += take;
		n -= take;
		t_first += take * unit_ns;
	}
	medium_schedule(sim);
}

bool
sim_ep_sending(const struct sim_ep *ep, uint64_t t)
{
	const struct sim_tx *tx;

	for (tx = ep->sim->txs; tx != NULL; tx = tx->next)
		if (tx->src == ep && tx_overlaps(tx, t, t + 1))
			return (true);
	return (false);
}

bool
sim_channel_busy(const struct sim *sim, uint32_t channel, uint64_t t)
{
	const struct sim_tx *tx;

	for (tx = sim->txs; tx != NULL; tx = tx->next)
		if (tx->channel == channel && !tx->unheard &&
		    tx_overlaps(tx, t, t + 1))
			return (true);
	return (false);
}

/* ------------------------------------------------------------------ */
/* Faults                                                              */

void
sim__medium_detach(struct sim_ep *ep)
{
	/* What it sends from now on is a new transmission, heard or not. */
	wire_close(ep);
}

void
sim__medium_reset(struct sim_ep *ep)
{
	struct sim	*sim = ep->sim;
	struct sim_tx	*tx;
	uint64_t	 now = sim_now(sim);

	wire_close(ep);
	/* A frame on the air stops where it is: no one gets it whole. */
	for (tx = sim->txs; tx != NULL; tx = tx->next)
		if (tx->src == ep && tx->unit_ns == 0 && tx->t_end > now) {
			tx->cut = true;
			tx->t_end = now;
		}
	medium_schedule(sim);
}

/* ------------------------------------------------------------------ */
/* Delivery                                                            */

/*
 * On a wire, is `ep' driving the bus somewhere in (a, b) with the
 * character its UART is sending now?  A character becomes part of a
 * transmission only once it ended (sim_line.c takes it then), but it is
 * on the wires from its start: ep->in_next, while the program's bytes
 * still wait in the pty.  Without this, a character that ended while
 * another talker's was half sent would be judged against a free bus.
 */
static bool
wire_sending(const struct sim *sim, struct sim_ep *ep, uint64_t a,
    uint64_t b)
{
	struct sim_fmt	 f;
	tcflag_t	 iflag;
	uint64_t	 unit;
	int		 n = 0;

	if (!(sim->pers->flags & SIM_P_WIRE) || !ep->in_busy ||
	    !ep->attached || ep->in_next >= b ||
	    ioctl(ep->master, FIONREAD, &n) == -1 || n <= 0)
		return (false);
	sim_line_fmt(ep, &f, &iflag);
	if ((unit = sim_fmt_char_ns(&f)) == 0)
		unit = sim_fmt_char_ns(&ep->fmt);
	return (ep->in_next + unit > a);
}

static enum sim_rx_status
rx_status(struct sim *sim, const struct sim_tx *tx, size_t k,
    struct sim_ep *r)
{
	const struct sim_tx *o;
	uint64_t	 a, b;
	unsigned int	 i;

	if (!r->attached)
		return (SIM_RX_DETACHED);
	tx_span(tx, k, &a, &b);
	if (r->half_duplex) {
		for (o = sim->txs; o != NULL; o = o->next)
			if (o->src == r && tx_overlaps(o, a, b))
				return (SIM_RX_MISSED);
		if (wire_sending(sim, r, a, b))
			return (SIM_RX_MISSED);
	}
	if (tx->cut)
		return (SIM_RX_COLLIDED);
	for (o = sim->txs; o != NULL; o = o->next)
		if (o != tx && o->src != tx->src && o->src != r &&
		    o->channel == tx->channel && !o->unheard &&
		    tx_overlaps(o, a, b))
			return (SIM_RX_COLLIDED);
	for (i = 0; i < sim->nep; i++)
		if (sim->ep[i] != tx->src && sim->ep[i] != r &&
		    tx->channel == 0 && wire_sending(sim, sim->ep[i], a, b))
			return (SIM_RX_COLLIDED);
	/* A full-duplex receiver's own talk still garbles the medium. */
	if (!r->half_duplex) {
		for (o = sim->txs; o != NULL; o = o->next)
			if (o->src == r && o->channel == tx->channel &&
			    tx_overlaps(o, a, b))
				return (SIM_RX_COLLIDED);
		if (tx->channel == 0 && wire_sending(sim, r, a, b))
			return (SIM_RX_COLLIDED);
	}
	if (tx->rx[r->idx].noise_at != SIZE_MAX &&
	    (tx->unit_ns == 0 || tx->rx[r->idx].noise_at == k))
		return (SIM_RX_NOISE);
	return (SIM_RX_OK);
}

/* A transmission is over for receiver r: one count in its stats. */
static void
rx_count(const struct sim_tx *tx, struct sim_ep *r, struct sim_rx *rx)
{
	struct sim_fmt	 f;
	tcflag_t	 iflag;

	rx->done = true;
	/* On a wire, a receiver set to another format than the talker's
	 * decoded garbage (sim_line_deliver counted the errors). */
	if (tx->unit_ns != 0 && (rx->seen & (1u << SIM_RX_OK |
	    1u << SIM_RX_NOISE | 1u << SIM_RX_COLLIDED))) {
		sim_line_fmt(r, &f, &iflag);
		if (!sim_fmt_eq(&f, &tx->fmt))
			r->st.line_mismatch++;
	}
	if (rx->seen & (1u << SIM_RX_DETACHED))
		r->st.rx_detached++;
	else if (rx->seen & (1u << SIM_RX_MISSED))
		r->st.rx_missed++;
	else if (rx->seen & (1u << SIM_RX_COLLIDED))
		r->st.rx_garbled++;
	else if (rx->seen & (1u << SIM_RX_NOISE))
		r->st.rx_lost++;
	else
		r->st.rx_frames++;
}

static void
deliver(struct sim *sim, struct sim_tx *tx, struct sim_ep *r,
    size_t off, size_t n, enum sim_rx_status s, uint64_t at)
{
	tx->rx[r->idx].seen |= (uint8_t)(1u << s);
	if (s == SIM_RX_OK)
		r->st.rx_bytes += n;
	sim->pers->deliver(sim, r, tx, off, n, s, at);
}

/* Hands receiver r what of tx is due by `now'. */
static void
rx_run(struct sim *sim, struct sim_tx *tx, struct sim_ep *r, uint64_t now)
{
	struct sim_rx	*rx = &tx->rx[r->idx];
	enum sim_rx_status s;
	size_t		 k, n;

	if (rx->done)
		return;
	if (!rx->hears) {
		/* Out of range: never there, not counted. */
		if (!tx->open && now >= tx->t_end)
			rx->done = true;
		return;
	}
	if (tx->unit_ns == 0) {
		if (now < tx->t_end + rx->delay_ns)
			return;
		deliver(sim, tx, r, 0, tx->len, rx_status(sim, tx, 0, r),
		    tx->t_end + rx->delay_ns);
		rx->next = tx->len;
		rx_count(tx, r, rx);
		return;
	}
	while (rx->next < tx->len &&
	    tx_due(tx, rx->next) + rx->delay_ns <= now) {
		k = rx->next;
		s = rx_status(sim, tx, k, r);
		n = 1;
		while (k + n < tx->len &&
		    tx_due(tx, k + n) + rx->delay_ns <= now &&
		    rx_status(sim, tx, k + n, r) == s)
			n++;
		deliver(sim, tx, r, k, n, s,
		    tx_due(tx, k + n - 1) + rx->delay_ns);
		rx->next = k + n;
	}
	if (!tx->open && rx->next == tx->len)
		rx_count(tx, r, rx);
}

static void
medium_run(struct sim *sim)
{
	struct sim_tx	*tx, **pp;
	uint64_t	 now = sim_now(sim), keep, pending;
	unsigned int	 i;
	bool		 done;

	if (sim->medium_running)
		return;
	sim->medium_running = true;
	/*
	 * Every talker's characters that ended by now first: after the
	 * simulator ran late (a loaded host), its timers fire in any order,
	 * and a character delivered before the overlapping ones of another
	 * talker were taken would arrive intact, or at a half-duplex
	 * talker that was sending, as if the bus had been free.
	 */
	for (i = 0; i < sim->nep; i++)
		sim__line_catch_up(sim->ep[i]);
	for (tx = sim->txs; tx != NULL; tx = tx->next) {
		/* A wire run ends after a silence of the gap, once the
		 * talker's line has nothing more (it may lag behind). */
		if (tx->open && !tx->src->in_busy &&
		    now >= tx->t_end + sim->gap_ns)
			wire_close(tx->src);
		for (i = 0; i < sim->nep; i++)
			rx_run(sim, tx, sim->ep[i], now);
		if (!tx->ended && !tx->open && now >= tx->t_end) {
			tx->ended = true;
			if (sim->pers->tx_done != NULL)
				sim->pers->tx_done(sim, tx);
		}
	}
	/*
	 * Forget what is over and can no longer overlap anything: ended
	 * a while ago, handed to every receiver, and before the start of
	 * every transmission some receiver still waits for.
	 */
	keep = sim__from_real(sim, SIM_TX_KEEP_NS);
	keep = now > keep ? now - keep : 0;
	pending = UINT64_MAX;
	for (tx = sim->txs; tx != NULL; tx = tx->next)
		for (i = 0; i < sim->nep; i++)
			if (!tx->rx[i].done && tx->t_start < pending)
				pending = tx->t_start;
	for (pp = &sim->txs; (tx = *pp) != NULL;) {
		done = tx->ended && !tx->open && tx->t_end < keep &&
		    tx->t_end <= pending;
		for (i = 0; done && i < sim->nep; i++)
			if (!tx->rx[i].done)
				done = false;
		if (!done) {
			pp = &tx->next;
			continue;
		}
		*pp = tx->next;
		if (sim->txtail == &tx->next)
			sim->txtail = pp;
		tx_free(tx);
	}
	sim->medium_running = false;
	medium_schedule(sim);
}

static void
medium_cb(evutil_socket_t fd, short what, void *arg)
{
	medium_run(arg);
}

void
sim__medium_poke(struct sim *sim)
{
	medium_schedule(sim);
}

static void
next_at(uint64_t *best, uint64_t t)
{
	if (t < *best)
		*best = t;
}

/*
 * Arms the medium's timer for its next event: a frame leaving the air,
 * a wire run's silence, characters due at a receiver (in batches of at
 * least SIM_WAKE_MIN_NS of real time, the last one known on its time).
 */
static void
medium_schedule(struct sim *sim)
{
	const struct sim_tx *tx;
	const struct sim_rx *rx;
	uint64_t	 now, best = UINT64_MAX, first, last, wmin;
	unsigned int	 i;

	if (sim->medium_running || sim->ev_medium == NULL)
		return;
	now = sim_now(sim);
	wmin = sim__from_real(sim, SIM_WAKE_MIN_NS);
	for (tx = sim->txs; tx != NULL; tx = tx->next) {
		if (tx->open) {
			/* A busy line pokes the medium when it idles. */
			if (!tx->src->in_busy)
				next_at(&best, tx->t_end + sim->gap_ns);
		} else if (!tx->ended)
			next_at(&best, tx->t_end);
		for (i = 0; i < sim->nep; i++) {
			rx = &tx->rx[i];
			if (rx->done)
				continue;
			if (!rx->hears) {
				/* Counted off when the run is over. */
				if (!tx->open)
					next_at(&best, tx->t_end);
				continue;
			}
			if (tx->unit_ns == 0) {
				next_at(&best, tx->t_end + rx->delay_ns);
				continue;
			}
			if (rx->next >= tx->len)
				continue;
			first = tx_due(tx, rx->next) + rx->delay_ns;
			last = tx_due(tx, tx->len - 1) + rx->delay_ns;
			if (first < now + wmin)
				first = now + wmin < last ? now + wmin : last;
			next_at(&best, first);
		}
	}
	if (best == UINT64_MAX) {
		evtimer_del(sim->ev_medium);
		return;
	}
	sim_timer_at(sim, sim->ev_medium, best);
}
