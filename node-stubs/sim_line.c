/*
 * sim_line.c: each endpoint's serial line in the medium simulator
 * (upsim.h, docs/simulator.md "Line model").
 *
 * Towards the simulator, the line is the program's UART sending: the
 * simulator reads the pty master only as fast as the program's own bit
 * rate lets characters out, one character time (start, data, parity,
 * stop bits at its rate) after the other: a character is taken when it
 * has left the UART.  So a program's write() returns at once as on a
 * real port with a kernel buffer, tcdrain() waits until the last
 * character has gone, and a program that writes faster than its line
 * fills the buffer and blocks: the backpressure of a real UART.  Every
 * character is stamped with the simulated time it started; the far side
 * (a modem personality) gets it when it has ended.
 *
 * Towards the program, characters are written to the master when due,
 * decoded with the program's own format (sim_uart.c) and filtered by its
 * input flags.  A program that does not read loses characters once the
 * pty is full (an overrun), as a real UART's FIFO overruns.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "sim_internal.h"

/* Characters taken from a program per wake-up, at most. */
#define LINE_IN_BATCH	4096
/* Characters due to a program, queued at most (64 KiB, a big FIFO). */
#define LINE_OUT_CAP	65536

static void	 line_in_cb(evutil_socket_t, short, void *);
static void	 line_in_timer_cb(evutil_socket_t, short, void *);
static void	 line_out_cb(evutil_socket_t, short, void *);
static void	 line_out_flush(struct sim_ep *);

void
sim_line_fmt(struct sim_ep *ep, struct sim_fmt *f, tcflag_t *iflag)
{
	struct termios	 t;

	if (tcgetattr(ep->master, &t) == -1) {
		/* Cannot happen on a pty we hold; read as "unknown". */
		memset(f, 0, sizeof(*f));
		f->data_bits = 8;
		f->parity = SIM_PAR_NONE;
		f->stop_bits = 1;
		*iflag = 0;
		return;
	}
	sim_fmt_from_termios(&t, ep->parity, f);
	*iflag = t.c_iflag;
}

int
sim__line_start(struct sim_ep *ep, char **cause)
{
	struct event_base *base = ep->sim->base;

	ep->out_cap = LINE_OUT_CAP;
	ep->in_raw = malloc(LINE_IN_BATCH);
	ep->out_b = malloc(ep->out_cap);
	ep->out_t = malloc(ep->out_cap * sizeof(*ep->out_t));
	ep->ev_in = event_new(base, ep->master, EV_READ, line_in_cb, ep);
	ep->ev_in_timer = evtimer_new(base, line_in_timer_cb, ep);
	ep->ev_out_timer = evtimer_new(base, line_out_cb, ep);
	if (ep->in_raw == NULL || ep->out_b == NULL || ep->out_t == NULL ||
	    ep->ev_in == NULL ||
	    ep->ev_in_timer == NULL || ep->ev_out_timer == NULL) {
		*cause = strdup("out of memory");
		return (-1);
	}
	event_add(ep->ev_in, NULL);
	return (0);
}

void
sim__line_free(struct sim_ep *ep)
{
	if (ep->ev_in != NULL)
		event_free(ep->ev_in);
	if (ep->ev_in_timer != NULL)
		event_free(ep->ev_in_timer);
	if (ep->ev_out_timer != NULL)
		event_free(ep->ev_out_timer);
	free(ep->in_raw);
	free(ep->out_b);
	free(ep->out_t);
}

/*
 * Hands the far side (a modem personality) a run the program sent in
 * another format, decoded whole: the bit model needs the run as one
 * stream (a receiver's character may span two of the sender's), so it
 * waits for the run's end.
 */
static void
line_raw_flush(struct sim_ep *ep)
{
	static uint8_t	 out[LINE_IN_BATCH * 2], err[LINE_IN_BATCH * 2];
	struct sim	*sim = ep->sim;
	size_t		 nout, i;

	if (ep->in_raw_len == 0)
		return;
	ep->st.line_mismatch++;
	nout = sim_uart_convert(&ep->in_raw_fmt, &ep->fmt, ep->in_raw,
	    ep->in_raw_len, out, err, sizeof(out));
	ep->in_raw_len = 0;
	for (i = 0; i < nout; i++)
		if (err[i] != 0)
			ep->st.line_errors++;
	if (nout > 0)
		sim->pers->line_rx(sim, ep, out, err, nout, &ep->fmt,
		    ep->in_raw_t, ep->in_raw_unit);
}

/* Characters from the program for a far side that is not a wire. */
static void
line_to_far_side(struct sim_ep *ep, const uint8_t *b, size_t n,
    const struct sim_fmt *f, uint64_t t_first, uint64_t unit)
{
	static uint8_t	 zero[LINE_IN_BATCH];
	struct sim	*sim = ep->sim;

	if (sim_fmt_eq(f, &ep->fmt)) {
		line_raw_flush(ep);
		sim->pers->line_rx(sim, ep, b, zero, n, &ep->fmt, t_first,
		    unit);
		return;
	}
	if (ep->in_raw_len > 0 && (!sim_fmt_eq(f, &ep->in_raw_fmt) ||
	    ep->in_raw_len + n > LINE_IN_BATCH))
		line_raw_flush(ep);
	if (ep->in_raw_len == 0) {
		ep->in_raw_fmt = *f;
		ep->in_raw_t = t_first;
		ep->in_raw_unit = unit;
	}
	memcpy(ep->in_raw + ep->in_raw_len, b, n);
	ep->in_raw_len += n;
}

/* ------------------------------------------------------------------ */
/* The program sends                                                   */

/*
 * Takes the characters the program's UART has finished sending by now:
 * one every character time from ep->in_next (when the first of them
 * started), as many as it has written.
 */
static void
line_pump(struct sim_ep *ep)
{
	static uint8_t	 buf[LINE_IN_BATCH];
	struct sim	*sim = ep->sim;
	struct sim_fmt	 f;
	tcflag_t	 iflag;
	uint64_t	 now = sim_now(sim), unit, k, wake;
	ssize_t		 m;

	sim_line_fmt(ep, &f, &iflag);
	/* A rate the model does not know moves at the line's own. */
	if ((unit = sim_fmt_char_ns(&f)) == 0)
		unit = sim_fmt_char_ns(&ep->fmt);
	k = now >= ep->in_next + unit ? (now - ep->in_next) / unit : 0;
	if (k > LINE_IN_BATCH)
		k = LINE_IN_BATCH;
	m = 0;
	if (k > 0) {
		m = read(ep->master, buf, (size_t)k);
		if (m <= 0) {
			/* Nothing written (EAGAIN), or the pty hiccuped:
			 * the UART idles until the program writes. */
			ep->in_busy = false;
			event_add(ep->ev_in, NULL);
			line_raw_flush(ep);
			sim__medium_poke(sim);
			return;
		}
		ep->st.line_in += (uint64_t)m;
		if (sim->pers->flags & SIM_P_WIRE) {
			sim->pers->line_rx(sim, ep, buf, NULL, (size_t)m, &f,
			    ep->in_next, unit);
		} else
			line_to_far_side(ep, buf, (size_t)m, &f, ep->in_next,
			    unit);
		ep->in_next += (uint64_t)m * unit;
		/*
		 * A short read is not the end yet: a pty moves a write to
		 * the master in pieces (the kernel's flip buffer), so what
		 * arrives before the next character would have ended still
		 * follows back to back, as from a real UART's buffer.
		 */
	}
	/* More may be waiting: look when the next character would end,
	 * in batches of at least SIM_WAKE_MIN_NS of real time. */
	wake = ep->in_next + unit;
	if (wake < now + sim__from_real(sim, SIM_WAKE_MIN_NS))
		wake = now + sim__from_real(sim, SIM_WAKE_MIN_NS);
	sim_timer_at(sim, ep->ev_in_timer, wake);
}

static void
line_in_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sim_ep	*ep = arg;
	uint64_t	 now = sim_now(ep->sim);

	/* The idle UART starts the first character now, or when the one
	 * it is still sending ends. */
	if (ep->in_next < now)
		ep->in_next = now;
	ep->in_busy = true;
	line_pump(ep);
}

static void
line_in_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	line_pump(arg);
}

void
sim__line_catch_up(struct sim_ep *ep)
{
	if (ep->in_busy && ep->ev_in_timer != NULL)
		line_pump(ep);
}

/* ------------------------------------------------------------------ */
/* The program receives                                                */

static void
line_queue(struct sim_ep *ep, uint8_t c, uint64_t at)
{
	size_t		 tail;

	if (ep->out_len == ep->out_cap) {
		ep->st.overruns++;
		return;
	}
	/* In order: a character never overtakes an earlier one. */
	if (ep->out_len > 0) {
		tail = (ep->out_head + ep->out_len - 1) % ep->out_cap;
		if (at < ep->out_t[tail])
			at = ep->out_t[tail];
	}
	tail = (ep->out_head + ep->out_len) % ep->out_cap;
	ep->out_b[tail] = c;
	ep->out_t[tail] = at;
	ep->out_len++;
}

/* Queues `n' characters sent in `from', the i-th due at at + i * unit. */
static void
line_put(struct sim_ep *ep, const uint8_t *b, const uint8_t *err, size_t n,
    const struct sim_fmt *from, uint64_t at, uint64_t unit)
{
	static uint8_t	 out[8 * 512 + 8], oerr[8 * 512 + 8];
	struct sim_fmt	 f;
	tcflag_t	 iflag;
	size_t		 off, chunk, nout, i;
	uint8_t		 c, e;
	bool		 same;

	if (n == 0)
		return;
	sim_line_fmt(ep, &f, &iflag);
	same = sim_fmt_eq(from, &f);
	/* A paced message from the far side is one run; on a wire the
	 * medium counts per transmission. */
	if (!same && unit != 0)
		ep->st.line_mismatch++;
	for (off = 0; off < n; off += chunk) {
		chunk = n - off < 512 ? n - off : 512;
		nout = sim_uart_convert(from, &f, b + off, chunk, out, oerr,
		    sizeof(out));
		for (i = 0; i < nout; i++) {
			e = oerr[i];
			/* Damage the caller flagged shows only where the
			 * characters map one to one. */
			if (same && err != NULL)
				e |= err[off + i];
			if (e != 0)
				ep->st.line_errors++;
			if (sim_uart_iflag(iflag, out[i], e, &c) == 1)
				line_queue(ep, c, at + (same ? (off + i) *
				    unit : (off + i * chunk / nout) * unit));
		}
	}
	line_out_flush(ep);
}

void
sim_line_deliver(struct sim_ep *ep, const uint8_t *b, const uint8_t *err,
    size_t n, const struct sim_fmt *from, uint64_t at)
{
	line_put(ep, b, err, n, from, at, 0);
}

uint64_t
sim_line_send(struct sim_ep *ep, const uint8_t *b, size_t n)
{
	uint64_t	 now = sim_now(ep->sim), unit, first;

	unit = sim_fmt_char_ns(&ep->fmt);
	first = (ep->out_next > now ? ep->out_next : now) + unit;
	ep->out_next = first + (n > 0 ? (n - 1) * unit : 0);
	line_put(ep, b, NULL, n, &ep->fmt, first, unit);
	return (ep->out_next);
}

/*
 * Writes what is due; arms the timer for the rest: in batches of at
 * least SIM_WAKE_MIN_NS, but the last character queued on its time.
 */
static void
line_out_flush(struct sim_ep *ep)
{
	struct sim	*sim = ep->sim;
	uint64_t	 now = sim_now(sim), wake, last;
	size_t		 n, run;
	ssize_t		 w;

	n = 0;
	while (n < ep->out_len &&
	    ep->out_t[(ep->out_head + n) % ep->out_cap] <= now)
		n++;
	while (n > 0) {
		run = ep->out_cap - ep->out_head;
		if (run > n)
			run = n;
		w = write(ep->master, ep->out_b + ep->out_head, run);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			/* The program's input is full: what is due now
			 * is lost, as in a UART's overrun. */
			w = 0;
		}
		ep->st.line_out += (uint64_t)w;
		if ((size_t)w < run) {
			ep->st.overruns += n - (size_t)w;
			ep->out_head = (ep->out_head + n) % ep->out_cap;
			ep->out_len -= n;
			break;
		}
		ep->out_head = (ep->out_head + run) % ep->out_cap;
		ep->out_len -= run;
		n -= run;
	}
	if (ep->out_len == 0) {
		evtimer_del(ep->ev_out_timer);
		return;
	}
	wake = ep->out_t[ep->out_head];
	last = ep->out_t[(ep->out_head + ep->out_len - 1) % ep->out_cap];
	if (wake < now + sim__from_real(sim, SIM_WAKE_MIN_NS))
		wake = now + sim__from_real(sim, SIM_WAKE_MIN_NS);
	if (wake > last)
		wake = last;
	sim_timer_at(sim, ep->ev_out_timer, wake);
}

static void
line_out_cb(evutil_socket_t fd, short what, void *arg)
{
	line_out_flush(arg);
}

void
sim_line_flush(struct sim_ep *ep)
{
	uint8_t		 buf[4096];
	int		 i;

	ep->out_head = ep->out_len = 0;
	ep->out_next = 0;
	ep->in_raw_len = 0;
	if (ep->ev_out_timer != NULL)
		evtimer_del(ep->ev_out_timer);
	/* What the program wrote and its UART had not sent is gone. */
	for (i = 0; i < 64 && read(ep->master, buf, sizeof(buf)) > 0; i++)
		;
	if (ep->ev_in_timer != NULL && ep->in_busy) {
		evtimer_del(ep->ev_in_timer);
		ep->in_busy = false;
		event_add(ep->ev_in, NULL);
	}
	ep->in_next = sim_now(ep->sim);
	sim__medium_poke(ep->sim);
}
