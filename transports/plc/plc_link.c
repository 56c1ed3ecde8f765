/*
 * plc_link.c: the concentrator's side of the Q/GDW 1376.2 link to its
 * carrier module, on a termios UART (docs/transports/plc.md, "Link").
 *
 * §4.4 (link transmission): the concentrator starts an exchange (PRM=1,
 * DIR=0) and waits for the module's answer (PRM=0, DIR=1) before the
 * next one, so there is one request outstanding at a time.  Each request
 * carries a sequence number in the information field (§5.2, byte 6); the
 * answer repeats it, and a retry repeats the request with the same one,
 * so a late answer to an earlier try still completes it and an answer
 * with another number is not ours.  The module also starts exchanges by
 * itself (a station's event, 06H; its run mode after a power-up, 03H
 * F10): the concentrator confirms each (00H F1 with the module's number)
 * at once, whatever it is waiting for.  A confirm's wait time (00H F1)
 * holds the next request back.
 *
 * Timeouts are per request: the module's own figure where it declares
 * one (03H F10: the longest it monitors a station, the longest a
 * broadcast takes), else the instance's timeout_ms, counted from the
 * moment the request has left the UART.  After timeout_ms x (1 +
 * retries) without an answer the request fails; two failures in a row
 * take the link down (tp_plc.c).
 *
 * The module's figures and the host's clock are link time: on a
 * simulated medium with a compressed clock (host->time_scale) a timer
 * lasts that much less real time (plc_real_ms); the UART's time does not
 * shrink.
 *
 * The UART is opened raw at the instance's rate and format (9600 8E1 by
 * default) with INPCK, so a character with a parity error reaches us as
 * 0 and fails the frame's checksum; it is also how the medium simulator
 * reads the parity of a pty (docs/simulator.md, "Formats").
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transports_internal.h"
#include "plc_internal.h"

/* Bytes read per readable event, so a chatty module cannot hold the loop. */
#define PLC_READ_BUDGET		4096
/*
 * A partial frame the line left quiet this long (or 20 character times)
 * is stale.  Generous: a USB adapter's latency timer (16 ms on FTDI) and
 * a busy host make real gaps of tens of ms inside a frame.
 */
#define PLC_STALE_MS		250

static const struct {
	unsigned int	 baud;
	speed_t		 speed;
} plc_speeds[] = {
	{ 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 },
	{ 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 },
	{ 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 },
	{ 921600, B921600 }, { 0, B0 }
};

static void	 plc_link_read_cb(evutil_socket_t, short, void *);
static void	 plc_link_write_cb(evutil_socket_t, short, void *);
static void	 plc_link_timeout_cb(evutil_socket_t, short, void *);
static void	 plc_link_stale_cb(evutil_socket_t, short, void *);
static void	 plc_link_pump_cb(evutil_socket_t, short, void *);
static void	 plc_link_frames(struct tp *);
static void	 plc_link_frame(struct tp *, const uint8_t *, size_t);
static void	 plc_link_flush(struct tp *);
static int	 plc_link_out(struct tp *, const uint8_t *, size_t);
static void	 plc_link_ack(struct tp *, const struct plc_frame *, int deny);
static void	 plc_link_arm(struct tp *, uint64_t ms);
static void	 plc_link_done(struct tp *);

const char *
plc_req_str(enum plc_req_kind k)
{
	static const char *const names[] = {"none", "run mode (03H F10)",
	    "topology (10H F21)", "station list (10H F2)",
	    "station relays (10H F3)", "route state (10H F4)",
	    "upgrade status (F0H F201)", "file clear (15H F1)",
	    "file segment (15H F1)", "forward (13H F1)", "broadcast (05H F3)"};

	if ((size_t)k < sizeof(names) / sizeof(names[0]))
		return (names[k]);
	return ("?");
}

uint64_t
plc_now_ms(struct tp *tp)
{
	return (tp->host->now_ms(tp->host->arg));
}

/*
 * Real ms a stretch of link time lasts: the host's clock (now_ms) and the
 * module's figures are link time, which runs host->time_scale times
 * faster than real time on a simulated medium (docs/simulator.md).
 */
uint64_t
plc_real_ms(struct tp *tp, uint64_t ms)
{
	double	 s = tp->host->time_scale;

	if (!(s > 1))
		return (ms);
	return ((uint64_t)((double)ms / s) + (ms != 0));
}

uint32_t
plc_line_us(struct tp *tp, size_t n)
{
	return ((uint32_t)(((uint64_t)n * tp->char_bits * 1000000ULL +
	    tp->baud - 1) / tp->baud));
}

/* ------------------------------------------------------------------ */
/* Open, close                                                          */

/*
 * tcsetattr() failed: did the settings take anyway?  On a pty (the
 * medium simulator's) the driver clears PARENB and glibc's tcsetattr,
 * reading the termios back, reports EINVAL for it; the speed, the stop
 * bits, PARODD and INPCK that the simulator reads did take.
 */
static int
plc_link_took(int fd, const struct termios *want)
{
	struct termios	 t;
	int		 saved = errno;

	if (saved != EINVAL || tcgetattr(fd, &t) == -1 ||
	    cfgetispeed(&t) != cfgetispeed(want) ||
	    cfgetospeed(&t) != cfgetospeed(want) ||
	    t.c_iflag != want->c_iflag ||
	    (t.c_cflag & (CSTOPB | PARODD)) != (want->c_cflag & (CSTOPB |
	    PARODD))) {
		errno = saved;
		return (0);
	}
	return (1);
}

static int
plc_link_termios(struct tp *tp, int fd, char **cause)
{
	static const tcflag_t csize[] = { CS5, CS6, CS7, CS8 };
	struct termios	 t;
	speed_t		 sp = B0;
	size_t		 i;

	for (i = 0; plc_speeds[i].baud != 0; i++)
		if (plc_speeds[i].baud == tp->baud)
			sp = plc_speeds[i].speed;
	if (sp == B0)
		return (tp__cause(cause, "%s: baud %u: not a serial rate",
		    tp->name, tp->baud));
	if (tcgetattr(fd, &t) == -1)
		return (tp__cause(cause, "%s: %s: not a tty: %s", tp->name,
		    tp->device, strerror(errno)));
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= csize[tp->format[0] - '5'];
	t.c_iflag &= ~(INPCK | IGNPAR | PARMRK | ISTRIP | IXON | IXOFF |
	    IXANY);
	if (tp->format[1] != 'N') {
		/* INPCK: a parity error reads as 0 and fails the CS. */
		t.c_cflag |= PARENB;
		if (tp->format[1] == 'O')
			t.c_cflag |= PARODD;
		t.c_iflag |= INPCK;
	}
	if (tp->format[2] == '2')
		t.c_cflag |= CSTOPB;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, sp) == -1 || cfsetospeed(&t, sp) == -1 ||
	    (tcsetattr(fd, TCSANOW, &t) == -1 && !plc_link_took(fd, &t)))
		return (tp__cause(cause, "%s: %s: termios: %s", tp->name,
		    tp->device, strerror(errno)));
	(void)tcflush(fd, TCIOFLUSH);
	return (0);
}

/* Opens the UART and its two events. */
static int
plc_link_line(struct tp *tp, char **cause)
{
	struct event_base *base = tp->host->base;
	int		 fd;

	fd = open(tp->device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return (tp__cause(cause, "%s: %s: %s", tp->name, tp->device,
		    strerror(errno)));
	if (plc_link_termios(tp, fd, cause) != 0) {
		close(fd);
		return (-1);
	}
	tp->ev_rd = event_new(base, fd, EV_READ | EV_PERSIST,
	    plc_link_read_cb, tp);
	tp->ev_wr = event_new(base, fd, EV_WRITE, plc_link_write_cb, tp);
	if (tp->ev_rd == NULL || tp->ev_wr == NULL) {
		close(fd);
		return (tp__cause(cause, "%s: out of memory", tp->name));
	}
	tp->fd = fd;
	plc_rx_reset(&tp->rx);
	tp->outlen = 0;
	return (0);
}

int
plc_link_open(struct tp *tp, char **cause)
{
	struct event_base *base = tp->host->base;

	plc_rx_init(&tp->rx, PLC_FRAME_MAX);
	if (plc_link_line(tp, cause) != 0)
		return (-1);
	tp->ev_req = evtimer_new(base, plc_link_timeout_cb, tp);
	tp->ev_stale = evtimer_new(base, plc_link_stale_cb, tp);
	tp->ev_pump = evtimer_new(base, plc_link_pump_cb, tp);
	if (tp->ev_req == NULL || tp->ev_stale == NULL || tp->ev_pump == NULL)
		return (tp__cause(cause, "%s: out of memory", tp->name));
	return (0);
}

/*
 * The UART is gone (a USB adapter unplugged, the simulator stopped: read
 * gives EIO or end of file): close it, fail what was asked, take the link
 * down; plc_link_reopen() tries it again.
 */
static void
plc_link_lost(struct tp *tp, const char *why)
{
	tp_plc__log(tp, UP_LOG_WARN, "%s: %s: closed, opened again every "
	    "2 s", tp->device, why);
	event_free(tp->ev_rd);
	event_free(tp->ev_wr);
	tp->ev_rd = tp->ev_wr = NULL;
	evtimer_del(tp->ev_stale);
	close(tp->fd);
	tp->fd = -1;
	tp->outlen = 0;
	plc_rx_reset(&tp->rx);
	tp->fails = 2;
	if (tp->req.kind != PLC_REQ_NONE) {
		tp_plc__failed(tp, -1);
		tp->req.kind = PLC_REQ_NONE;
		evtimer_del(tp->ev_req);
	}
	if (!tp->dead)
		tp_plc__lost(tp);
}

int
plc_link_reopen(struct tp *tp)
{
	char		*cause = NULL;

	if (tp->fd != -1)
		return (0);
	if (plc_link_line(tp, &cause) != 0) {
		tp_plc__log(tp, UP_LOG_DEBUG, "%s", cause != NULL ? cause :
		    "reopen failed");
		free(cause);
		return (-1);
	}
	if (tp->started)
		event_add(tp->ev_rd, NULL);
	tp_plc__log(tp, UP_LOG_INFO, "%s: open again", tp->device);
	return (0);
}

void
plc_link_close(struct tp *tp)
{
	struct event	**evs[] = { &tp->ev_rd, &tp->ev_wr, &tp->ev_req,
			    &tp->ev_stale, &tp->ev_pump };
	size_t		 i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (*evs[i] != NULL)
			event_free(*evs[i]);
		*evs[i] = NULL;
	}
	if (tp->fd != -1)
		close(tp->fd);
	tp->fd = -1;
	tp->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

/* Queues a whole frame for the UART; -1 when the out buffer is full. */
static int
plc_link_out(struct tp *tp, const uint8_t *p, size_t n)
{
	if (n > sizeof(tp->out) - tp->outlen) {
		tp->st.tx_errors++;
		return (-1);
	}
	memcpy(tp->out + tp->outlen, p, n);
	tp->outlen += n;
	tp->st.tx_bytes += n;
	plc_link_flush(tp);
	return (0);
}

static void
plc_link_flush(struct tp *tp)
{
	ssize_t		 n;

	while (tp->outlen > 0) {
		n = write(tp->fd, tp->out, tp->outlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			if (errno != EAGAIN) {
				tp->st.tx_errors++;
				tp->outlen = 0;
			}
			break;
		}
		memmove(tp->out, tp->out + n, tp->outlen - (size_t)n);
		tp->outlen -= (size_t)n;
	}
	if (tp->outlen > 0)
		event_add(tp->ev_wr, NULL);
}

static void
plc_link_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	if (!tp->dead)
		plc_link_flush(tp);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

bool
plc_link_idle(struct tp *tp)
{
	return (tp->req.kind == PLC_REQ_NONE &&
	    plc_now_ms(tp) >= tp->hold_until_ms);
}

/*
 * The request's timer: the module's time (link time, which a simulated
 * medium compresses by host->time_scale) plus the UART's time for the
 * request (real time: the margin for the line does not shrink).
 */
static void
plc_link_arm(struct tp *tp, uint64_t module_ms)
{
	struct timeval	 tv;
	uint64_t	 ms;

	ms = plc_real_ms(tp, module_ms) + plc_line_us(tp, tp->outlen) / 1000 +
	    1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(tp->ev_req, &tv);
}

int
plc_link_request(struct tp *tp, enum plc_req_kind kind, uint8_t afn,
    uint16_t fn, const uint8_t *dst, const uint8_t *du, size_t dulen,
    uint32_t timeout_ms, uint32_t arg, uint64_t cookie)
{
	struct plc_req	*r = &tp->req;
	struct plc_frame f;
	int		 n;

	memset(&f, 0, sizeof(f));
	f.c = (uint8_t)(PLC_C_PRM | (tp->comm & PLC_C_TYPE_MASK));
	f.info.seq = ++tp->seq;
	if (dst != NULL) {
		f.info.module = 1;
		memcpy(f.src, tp->master, PLC_ADDR_LEN);
		memcpy(f.dst, dst, PLC_ADDR_LEN);
	}
	f.afn = afn;
	f.fn = fn;
	f.data = du;
	f.len = dulen;
	if ((n = plc_encode(&f, r->frame, sizeof(r->frame))) < 0) {
		tp_plc__log(tp, UP_LOG_WARN, "%s: %s", plc_req_str(kind),
		    plc_strerror(n));
		return (-1);
	}
	r->kind = kind;
	r->afn = afn;
	r->fn = fn;
	r->seq = f.info.seq;
	r->addressed = dst != NULL;
	if (dst != NULL)
		memcpy(r->dst, dst, PLC_ADDR_LEN);
	r->tries = 1;
	r->timeout_ms = timeout_ms;
	r->arg = arg;
	r->cookie = cookie;
	r->len = (size_t)n;
	r->sent_ms = plc_now_ms(tp);
	r->line_us = plc_line_us(tp, r->len);
	tp->st.tx_frames++;
	if (plc_link_out(tp, r->frame, r->len) != 0) {
		r->kind = PLC_REQ_NONE;
		return (-1);
	}
	/* The answer can only start once what is queued has left. */
	plc_link_arm(tp, timeout_ms);
	return (0);
}

void
plc_link_resend(struct tp *tp)
{
	struct plc_req	*r = &tp->req;

	if (r->kind == PLC_REQ_NONE || tp->fd == -1)
		return;
	tp_plc__log(tp, UP_LOG_DEBUG, "%s: again (seq %u), the module "
	    "restarted", plc_req_str(r->kind), r->seq);
	r->tries = 1;
	tp->st.tx_frames++;
	(void)plc_link_out(tp, r->frame, r->len);
	plc_link_arm(tp, r->timeout_ms);
}

static void
plc_link_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;
	struct plc_req	*r = &tp->req;

	if (r->kind == PLC_REQ_NONE)
		return;
	tp->in_cb++;
	if (r->tries <= tp->retries) {
		r->tries++;
		tp_plc__log(tp, UP_LOG_DEBUG, "%s: no answer (seq %u), try %u",
		    plc_req_str(r->kind), r->seq, r->tries);
		tp->st.tx_frames++;
		(void)plc_link_out(tp, r->frame, r->len);
		plc_link_arm(tp, r->timeout_ms);
		(void)tp_plc__leave(tp);
		return;
	}
	tp_plc__log(tp, UP_LOG_INFO, "%s: no answer after %u tries",
	    plc_req_str(r->kind), r->tries);
	tp->fails++;
	tp_plc__failed(tp, -1);
	if (!tp->dead)
		plc_link_done(tp);
	(void)tp_plc__leave(tp);
}

/* The request is over, one way or the other. */
static void
plc_link_done(struct tp *tp)
{
	tp->req.kind = PLC_REQ_NONE;
	evtimer_del(tp->ev_req);
	plc_link_kick(tp);
}

void
plc_link_kick(struct tp *tp)
{
	struct timeval	 tv = { 0, 0 };
	uint64_t	 now = plc_now_ms(tp);

	if (tp->fd == -1 || tp->ev_pump == NULL)
		return;
	if (tp->hold_until_ms > now) {
		uint64_t	 ms = plc_real_ms(tp, tp->hold_until_ms - now);

		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	}
	evtimer_add(tp->ev_pump, &tv);
}

static void
plc_link_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	tp->in_cb++;
	if (plc_link_idle(tp))
		tp_plc__pump(tp);
	(void)tp_plc__leave(tp);
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

static void
plc_link_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;
	uint8_t		 buf[512];
	size_t		 total = 0, off, k;
	ssize_t		 n;

	tp->in_cb++;
	while (total < PLC_READ_BUDGET && !tp->dead) {
		n = read(tp->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			plc_link_lost(tp, n == 0 ? "end of file" :
			    strerror(errno));
			(void)tp_plc__leave(tp);
			return;
		}
		if (n == -1)
			break;
		total += (size_t)n;
		tp->st.rx_bytes += (uint64_t)n;
		for (off = 0; off < (size_t)n; off += k) {
			k = plc_rx_feed(&tp->rx, buf + off, (size_t)n - off);
			plc_link_frames(tp);
			if (tp->dead)
				break;
			if (k == 0) {
				/* A full buffer that holds no frame. */
				(void)plc_rx_stale(&tp->rx);
				tp->st.rx_errors++;
			}
		}
	}
	if (!tp->dead && tp->rx.len > tp->rx.used) {
		struct timeval	 tv;
		uint64_t	 us = plc_line_us(tp, 20);

		if (us < PLC_STALE_MS * 1000)
			us = PLC_STALE_MS * 1000;
		tv.tv_sec = (time_t)(us / 1000000);
		tv.tv_usec = (suseconds_t)(us % 1000000);
		evtimer_add(tp->ev_stale, &tv);
	}
	(void)tp_plc__leave(tp);
}

static void
plc_link_stale_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	tp->in_cb++;
	if (plc_rx_stale(&tp->rx)) {
		tp->st.rx_errors++;
		tp_plc__log(tp, UP_LOG_INFO, "partial frame dropped (the line "
		    "went quiet)");
		plc_link_frames(tp);
	}
	(void)tp_plc__leave(tp);
}

/* Every whole frame the deframer has. */
static void
plc_link_frames(struct tp *tp)
{
	const uint8_t	*p;
	size_t		 len;
	int		 r;

	while (!tp->dead && (r = plc_rx_next(&tp->rx, &p, &len)) != 0) {
		if (r < 0) {
			tp->st.rx_errors++;
			tp_plc__log(tp, UP_LOG_INFO, "frame dropped: %s",
			    plc_strerror(r));
			continue;
		}
		plc_link_frame(tp, p, len);
	}
}

/* Confirms (deny < 0) or denies a frame the module started. */
static void
plc_link_ack(struct tp *tp, const struct plc_frame *in, int deny)
{
	struct plc_frame f;
	struct plc_confirm a;
	struct plc_wr	 w;
	uint8_t		 du[8], out[64];
	int		 n;

	memset(&f, 0, sizeof(f));
	f.c = (uint8_t)(tp->comm & PLC_C_TYPE_MASK);
	f.info.seq = in->info.seq;
	if (in->info.module) {
		/* Answer the station's report in its own terms. */
		f.info.module = 1;
		memcpy(f.src, tp->master, PLC_ADDR_LEN);
		memcpy(f.dst, in->src, PLC_ADDR_LEN);
	}
	f.afn = PLC_AFN_ACK;
	plc_wr_init(&w, du, sizeof(du));
	if (deny < 0) {
		memset(&a, 0, sizeof(a));
		a.done = true;
		(void)plc_du_confirm(&w, &a);
		f.fn = PLC_FN_CONFIRM;
	} else {
		plc_put_u8(&w, (uint8_t)deny);
		f.fn = PLC_FN_DENY;
	}
	f.data = du;
	f.len = w.len;
	if ((n = plc_encode(&f, out, sizeof(out))) > 0) {
		tp->st.tx_frames++;
		(void)plc_link_out(tp, out, (size_t)n);
	}
}

static void
plc_link_frame(struct tp *tp, const uint8_t *p, size_t len)
{
	struct plc_frame f;
	struct plc_req	*r = &tp->req;
	struct plc_confirm a;
	unsigned int	 code;
	char		 s1[PLC_ADDR_TEXT], s2[PLC_ADDR_TEXT];
	int		 e;

	tp->st.rx_frames++;
	if ((e = plc_decode(p, len, &f)) != PLC_OK) {
		tp->st.rx_errors++;
		tp_plc__log(tp, UP_LOG_INFO, "frame dropped: %s",
		    plc_strerror(e));
		return;
	}
	if (!PLC_FRAME_UP(&f)) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_INFO, "frame dropped: a downlink frame "
		    "(AFN %02XH F%u) on the module's line", f.afn, f.fn);
		return;
	}

	if (PLC_FRAME_PRM(&f)) {
		/* The module starts: its reports, its power-up. */
		if (f.afn == PLC_AFN_REPORT || (f.afn == PLC_AFN_QUERY &&
		    f.fn == PLC_FN_RUN_MODE)) {
			plc_link_ack(tp, &f, -1);
			tp_plc__report(tp, &f);
		} else {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO, "module request AFN %02XH "
			    "F%u not supported: denied", f.afn, f.fn);
			plc_link_ack(tp, &f, PLC_DENY_UNSUPPORTED);
		}
		return;
	}

	/* An answer: to the request outstanding, or to nothing. */
	if (r->kind == PLC_REQ_NONE || f.info.seq != r->seq) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_INFO,
		    "answer AFN %02XH F%u seq %u dropped: "
		    "%s",
		    f.afn, f.fn, f.info.seq,
		    r->kind == PLC_REQ_NONE
			? "nothing asked"
			: "another request's sequence number");
		return;
	}
	if (r->addressed && f.info.module &&
	    memcmp(f.src, r->dst, PLC_ADDR_LEN) != 0) {
		plc_addr_fmt(f.src, s1, sizeof(s1));
		plc_addr_fmt(r->dst, s2, sizeof(s2));
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_WARN,
		    "answer from station %s to a request "
		    "for %s dropped",
		    s1, s2);
		return;
	}
	if (!r->addressed && f.info.module && f.afn != PLC_AFN_ACK) {
		plc_addr_fmt(f.src, s1, sizeof(s1));
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_WARN,
		    "answer from station %s to a request "
		    "for the module dropped",
		    s1);
		return;
	}

	if (f.afn == PLC_AFN_ACK && f.fn == PLC_FN_DENY) {
		if (plc_du_deny_dec(f.data, f.len, &code) != PLC_OK) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "deny with a bad data unit "
			    "dropped");
			return;
		}
		tp_plc__log(tp, UP_LOG_DEBUG, "%s: denied: %s (%u)",
		    plc_req_str(r->kind), plc_deny_str(code), code);
		tp->fails = 0;
		tp_plc__failed(tp, (int)code);
		if (!tp->dead)
			plc_link_done(tp);
		return;
	}
	if (f.afn == PLC_AFN_ACK && f.fn == PLC_FN_CONFIRM) {
		if (plc_du_confirm_dec(f.data, f.len, &a) != PLC_OK) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "confirm with a bad data unit "
			    "dropped");
			return;
		}
		if (a.wait_s > 0)
			tp->hold_until_ms = plc_now_ms(tp) +
			    (uint64_t)a.wait_s * 1000;
	} else if (f.afn == PLC_AFN_ACK) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_INFO,
		    "answer AFN 00H F%u dropped: not a "
		    "confirm or deny",
		    f.fn);
		return;
	}
	/* tp_plc__answer() completes the request when the frame is the
	 * answer it waits for; otherwise it logged why and we wait on. */
	tp_plc__answer(tp, &f);
	if (!tp->dead && tp->req.kind == PLC_REQ_NONE) {
		tp->fails = 0;
		plc_link_done(tp);
	}
}
