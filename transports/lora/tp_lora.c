/*
 * tp_lora.c: the "lora" transport, UP over a LoRa point-to-point radio
 * modem on a UART, driven with its AT commands (one instance = one radio
 * = one broadcast domain).  docs/transports/lora.md has the options,
 * the dialect, the faults and what the tests cover.
 *
 * The modem.  A module family's AT dialect (struct lora_dialect,
 * lora_rui3.c) says what to send and what each line means; this file
 * does the I/O and the timing, one command at a time:
 *  - initialisation: the dialect's script (probe, mode, settings read
 *    back, continuous receive); a modem that does not answer the probe
 *    is reset (ATZ) and waited for; a failed attempt is retried after
 *    1, 2, 4 ... 30 s while the link is down;
 *  - ready: the radio listens between sends; frames the engine hands
 *    over wait in a small queue (caps.tx_queue) and go out one by one:
 *    the send command, its OK, then the modem's TX-done event, which
 *    alone makes the frame sent: tx_done() reports it with its exact
 *    time on air (lora_phy.c), and a frame the modem did not confirm
 *    is reported failed (TP_EIO) or refused (TP_EAGAIN: the modem's
 *    own duty-cycle ledger said no), never counted as sent;
 *  - faults: a modem that stops answering a command or never reports
 *    TX done, that prints its boot banner out of turn (it reset), a
 *    serial line that hangs up, a run of busy answers: the frames in
 *    flight and queued fail, the engine hears TP_LINK_DOWN (its
 *    sessions freeze), the modem is initialised again and TP_LINK_UP
 *    follows.  Garbled, overlong and malformed lines are counted and
 *    logged (rate-limited) and change nothing.
 *
 * Sleeping nodes.  With wake_ms set, nodes are not class C: they sleep
 * and listen a moment every wake_ms.  A frame sent after the gateway
 * was silent for node_awake_ms (nodes have gone back to sleep) is sent
 * with a preamble lasting wake_ms, which every sleeping node's listen
 * window catches; its whole time on air is what airtime() and tx_done()
 * report, so the engine's duty-cycle ledger pays for the wake-up.
 *
 * Time.  Timeouts are libevent timers in real time.  The time on air of
 * a frame is link time: on a simulated medium running on a compressed
 * clock (host->time_scale) it lasts that much less real time; the
 * margins for the UART and the modem's firmware do not shrink.
 *
 * No host callback is called from inside an op: send() queues and
 * activates an event; every callback comes from the event loop.
 */
#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transports_internal.h"
#include "lora_internal.h"

#define TP_LORA_PREFIX		"lora:"
/* Node addresses: raw LoRa has none; UP frames carry node ids. */
#define TP_LORA_ADDR_AIR	1

#define LORA_TXQ_MAX		8	/* tx_queue option's maximum */
/* Real-time margins (ms): the UART, the modem's firmware, the host. */
#define LORA_CMD_TIMEOUT_MS	1500
#define LORA_TX_MARGIN_MS	1500
#define LORA_BOOT_TIMEOUT_MS	5000
#define LORA_PROBE_TRIES	3
#define LORA_BUSY_TRIES		8
#define LORA_BUSY_BACKOFF_MS	20
#define LORA_RETRY_MIN_MS	1000
#define LORA_RETRY_MAX_MS	30000
/* Logged at warn level: this many bad lines a minute, then debug. */
#define LORA_WARN_PER_MIN	5
#define LORA_OUT_MAX		(LORA_LINE_MAX + 8)

/* What the command in flight is for. */
enum lora_purpose {
	LP_NONE = 0,
	LP_INIT,		/* step `step' of the dialect's script */
	LP_TX,			/* step `tx_step' of the head frame */
	LP_LISTEN		/* receive again after the modem stopped */
};

/* The steps of sending one frame. */
enum lora_txs {
	TXS_RX_OFF,		/* wake frame: stop receiving, */
	TXS_PREAMBLE,		/* set the long preamble, */
	TXS_SEND,		/* the frame itself */
	TXS_PREAMBLE_BACK,	/* wake frame: the usual preamble, */
	TXS_RX_ON,		/* receive again */
	TXS_END
};

struct lora_frame {
	uint64_t	 cookie;
	uint16_t	 len;
	uint8_t		 b[LORA_PHY_MAX];
};

enum lora_state {
	LS_DOWN = 0,		/* waiting to (re)initialise */
	LS_INIT,		/* running the init script */
	LS_READY		/* listening; sends frames */
};

struct tp {
	const struct tp_host	*host;
	char			*name;
	const struct lora_dialect *d;
	struct lora_phy		 phy;
	const struct lora_region *region;
	int			 band;		/* index in region, or -1 */
	uint32_t		 mtu;
	uint32_t		 wake_ms;	/* 0: nodes listen always */
	uint32_t		 awake_ms;
	double			 scale;		/* host->time_scale, >= 1e-6 */

	char			*device;
	unsigned int		 baud;
	char			 format[4];
	int			 fd;
	struct event		*ev_rd;
	struct event		*ev_wr;		/* output pending */
	struct event		*ev_to;		/* command / TX / boot timer */
	struct event		*ev_retry;	/* re-init, busy back-off */
	struct event		*ev_kick;	/* start sending (from send()) */
	struct event		*ev_notify;	/* link events, writable */

	enum lora_state		 state;
	struct lora_lines	 lines;
	uint8_t			 rxbuf[LORA_PHY_MAX];
	char			 out[LORA_OUT_MAX];
	size_t			 out_len, out_off;

	/* The command in flight (one at a time). */
	enum lora_purpose	 purpose;
	bool			 awaiting;	/* its status line is due */
	bool			 want_value;
	bool			 got_value;
	char			 value[128];
	char			 cmd[LORA_LINE_MAX + 1];
	unsigned int		 tries;		/* of this command */
	/* Initialisation. */
	unsigned int		 step;
	bool			 boot_wait;	/* a reset: wait for BOOT */
	bool			 reset_sent;	/* ATZ sent this attempt */
	unsigned int		 fails;		/* attempts failed in a row */
	bool			 relisten;	/* RX_END heard: listen again */

	/* Transmit queue; q[q_head] is in flight while tx_active. */
	struct lora_frame	 q[LORA_TXQ_MAX];
	unsigned int		 q_head, q_len, q_cap;
	bool			 tx_active;
	bool			 tx_wake;	/* head frame has the long preamble */
	uint32_t		 tx_preamble;
	enum lora_txs		 tx_step;
	bool			 tx_air;	/* send accepted: TX DONE due */
	int			 tx_status;	/* head frame's fate */
	bool			 tx_decided;
	uint64_t		 last_tx_ms;	/* host clock, end of last frame */
	bool			 ever_sent;

	int			 started;
	int			 link_up;
	int			 link_told;	/* -1 never */
	bool			 want_writable;
	int			 in_cb;
	int			 dead;

	struct tp_stats		 st;
	uint64_t		 n_bad;		/* malformed or unknown lines */
	uint64_t		 n_unexpected;	/* answers nobody asked for */
	uint64_t		 n_busy;
	uint64_t		 n_duty;	/* sends the modem refused */
	uint64_t		 n_resets;	/* modem resets seen */
	uint64_t		 n_inits;
	uint64_t		 warn_min;	/* minute of the warn budget */
	unsigned int		 warn_n;
};

static int	 tp_lora_open(const struct tp_host *, const struct tp_conf *,
		    struct tp **, char **);
static int	 tp_lora_start(struct tp *, char **);
static void	 tp_lora_close(struct tp *);
static void	 tp_lora_caps(struct tp *, struct tp_caps *);
static int	 tp_lora_send(struct tp *, const struct tp_addr *,
		    const struct iovec *, int, uint64_t);
static int	 tp_lora_addr_fmt(const struct tp_addr *, char *, size_t);
static int	 tp_lora_addr_parse(const char *, struct tp_addr *, char **);
static uint32_t	 tp_lora_airtime(struct tp *, const struct tp_addr *,
		    size_t);
static void	 tp_lora_stats(struct tp *, struct tp_stats *);
static unsigned int tp_lora_band(struct tp *, const struct tp_addr *,
		    size_t);

static const char *tp_lora_check_format(const char *);
static const char *tp_lora_check_dialect(const char *);
static const char *tp_lora_check_region(const char *);
static const char *tp_lora_check_baud(const char *);

static void	 lora_rd_cb(evutil_socket_t, short, void *);
static void	 lora_wr_cb(evutil_socket_t, short, void *);
static void	 lora_to_cb(evutil_socket_t, short, void *);
static void	 lora_retry_cb(evutil_socket_t, short, void *);
static void	 lora_kick_cb(evutil_socket_t, short, void *);
static void	 lora_notify_cb(evutil_socket_t, short, void *);
static void	 lora_init_begin(struct tp *);
static void	 lora_init_next(struct tp *);
static void	 lora_fault(struct tp *, const char *);
static void	 lora_tx_next(struct tp *);
static void	 lora_tx_finish(struct tp *);
static void	 lora_kick(struct tp *);

static const struct tp_option tp_lora_options[] = {
	{ "device", TP_OPT_STRING, NULL, 0, 0, NULL,
	  "the modem's serial device (/dev/ttyUSB0)", NULL },
	{ "baud", TP_OPT_INT, "115200", 1200, 921600, "bit/s",
	  "the UART's bit rate", tp_lora_check_baud },
	{ "format", TP_OPT_STRING, "8N1", 0, 0, NULL,
	  "data bits, parity (N, E, O), stop bits", tp_lora_check_format },
	{ "dialect", TP_OPT_STRING, "rui3", 0, 0, NULL,
	  "the modem's AT command set (rui3: RAKwireless RUI3 P2P)",
	  tp_lora_check_dialect },
	{ "frequency_hz", TP_OPT_INT, "869525000", 150000000, 960000000,
	  "Hz", "the channel's centre frequency", NULL },
	{ "sf", TP_OPT_INT, "7", LORA_SF_MIN, LORA_SF_MAX, NULL,
	  "spreading factor", NULL },
	{ "bandwidth_khz", TP_OPT_INT, "125", 125, 500, "kHz",
	  "bandwidth: 125, 250 or 500", NULL },
	{ "coding_rate", TP_OPT_INT, "5", 5, 8, NULL,
	  "coding rate 4/N, N = 5 to 8", NULL },
	{ "preamble", TP_OPT_INT, "8", 5, 65535, "symbols",
	  "preamble length", NULL },
	{ "power_dbm", TP_OPT_INT, "14", -9, 22, "dBm",
	  "transmit power", NULL },
	{ "region", TP_OPT_STRING, "eu868", 0, 0, NULL,
	  "regulated sub-bands: eu868 (ETSI duty cycles) or none",
	  tp_lora_check_region },
	{ "mtu", TP_OPT_INT, "0", 0, 250, "bytes",
	  "largest frame, 0 = the data rate's (51, 115 or 222)", NULL },
	{ "tx_queue", TP_OPT_INT, "2", 1, LORA_TXQ_MAX, "frames",
	  "frames the driver holds for the modem", NULL },
	{ "wake_ms", TP_OPT_INT, "0", 0, 60000, "ms",
	  "nodes sleep and listen every this long: wake them with a "
	  "preamble this long (0: nodes always listen)", NULL },
	{ "node_awake_ms", TP_OPT_INT, "30000", 1000, 3600000, "ms",
	  "a woken node sleeps again after this long without a frame",
	  NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};

const struct tp_ops tp_lora_ops = {
	.name = "lora",
	.abi = TP_ABI_VERSION,
	.options = tp_lora_options,
	.open = tp_lora_open,
	.start = tp_lora_start,
	.close = tp_lora_close,
	.caps = tp_lora_caps,
	.send = tp_lora_send,
	.addr_fmt = tp_lora_addr_fmt,
	.addr_parse = tp_lora_addr_parse,
	.airtime = tp_lora_airtime,
	.stats = tp_lora_stats,
	.band = tp_lora_band
};

/* ------------------------------------------------------------------ */
/* Options                                                              */

static const struct {
	unsigned int	 baud;
	speed_t		 speed;
} lora_speeds[] = {
	{ 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 },
	{ 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 },
	{ 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 },
	{ 921600, B921600 }, { 0, B0 }
};

static speed_t
lora_speed(unsigned int baud)
{
	size_t	 i;

	for (i = 0; lora_speeds[i].baud != 0; i++)
		if (lora_speeds[i].baud == baud)
			return (lora_speeds[i].speed);
	return (B0);
}

static const char *
tp_lora_check_baud(const char *v)
{
	long long	 n;

	if (tp__parse_int(v, &n) != 0 || n <= 0 || n > 921600 ||
	    lora_speed((unsigned int)n) == B0)
		return ("not a UART bit rate (1200 ... 921600)");
	return (NULL);
}

static const char *
tp_lora_check_format(const char *v)
{
	if (strlen(v) != 3 || (v[0] != '7' && v[0] != '8') ||
	    strchr("NEO", v[1]) == NULL || (v[2] != '1' && v[2] != '2'))
		return ("not a character format (8N1, 8E1, 8O1, 8N2, 7E1 ...)");
	return (NULL);
}

static const char *
tp_lora_check_dialect(const char *v)
{
	return (lora_dialect_find(v) == NULL ? "no such dialect (rui3)" :
	    NULL);
}

static const char *
tp_lora_check_region(const char *v)
{
	return (lora_region_find(v) == NULL ? "no such region (eu868, none)" :
	    NULL);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static uint64_t
lora_now_ms(struct tp *tp)
{
	return (tp->host->now_ms != NULL ? tp->host->now_ms(tp->host->arg) :
	    0);
}

static void
lora_timer(struct event *ev, uint64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* Real ms a stretch of link time takes. */
static uint64_t
lora_real_ms(struct tp *tp, uint64_t link_ns)
{
	return ((uint64_t)((double)link_ns / 1e6 / tp->scale) + 1);
}

/* Real ms the UART needs for n characters (unscaled: conservative). */
static uint64_t
lora_uart_ms(struct tp *tp, size_t n)
{
	return ((uint64_t)n * 11 * 1000 / tp->baud + 1);
}

/* Warn about bad input at most LORA_WARN_PER_MIN times a minute. */
static int
lora_warn_level(struct tp *tp)
{
	uint64_t	 min = lora_now_ms(tp) / 60000;

	if (min != tp->warn_min) {
		tp->warn_min = min;
		tp->warn_n = 0;
	}
	return (tp->warn_n++ < LORA_WARN_PER_MIN ? UP_LOG_WARN :
	    UP_LOG_DEBUG);
}

/* Around every host callback: the host may close us inside it. */
static void
lora_enter(struct tp *tp)
{
	tp->in_cb++;
}

static void	 lora_free(struct tp *);

/*
 * false when the host closed us meanwhile and we are gone.  (Not
 * inlined: GCC would follow the free() into the callers' later, guarded,
 * uses of tp and warn.)
 */
static bool __attribute__((__noinline__))
lora_leave(struct tp *tp)
{
	bool	 dead = tp->dead != 0;

	if (--tp->in_cb > 0 || !dead)
		return (!dead);
	lora_free(tp);
	return (false);
}

/* ------------------------------------------------------------------ */
/* The serial line                                                      */

static int
lora_serial_open(struct tp *tp, char **cause)
{
	static const tcflag_t csize[] = { CS7, CS8 };
	struct termios	 t;
	int		 fd;

	if ((fd = open(tp->device, O_RDWR | O_NOCTTY | O_NONBLOCK |
	    O_CLOEXEC)) == -1)
		return (tp__cause(cause, "transport.%s: %s: %s", tp->name,
		    tp->device, strerror(errno)));
	if (tcgetattr(fd, &t) == -1) {
		tp__cause(cause, "transport.%s: %s: not a tty: %s", tp->name,
		    tp->device, strerror(errno));
		close(fd);
		return (-1);
	}
	/*
	 * Raw, as a modem's UART needs: no echo, no line editing, no CR/LF
	 * translation, no flow control; the parity bit checked (INPCK).
	 */
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= csize[tp->format[0] - '7'];
	t.c_iflag &= ~(INPCK | IGNPAR | PARMRK | ISTRIP | IXON | IXOFF |
	    IXANY);
	if (tp->format[1] != 'N') {
		t.c_cflag |= PARENB;
		if (tp->format[1] == 'O')
			t.c_cflag |= PARODD;
		t.c_iflag |= INPCK;
	}
	if (tp->format[2] == '2')
		t.c_cflag |= CSTOPB;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, lora_speed(tp->baud)) == -1 ||
	    cfsetospeed(&t, lora_speed(tp->baud)) == -1 ||
	    tcsetattr(fd, TCSANOW, &t) == -1) {
		tp__cause(cause, "transport.%s: %s: termios: %s", tp->name,
		    tp->device, strerror(errno));
		close(fd);
		return (-1);
	}
	(void)tcflush(fd, TCIOFLUSH);
	tp->fd = fd;
	return (0);
}

static void
lora_serial_close(struct tp *tp)
{
	if (tp->ev_rd != NULL) {
		event_free(tp->ev_rd);
		tp->ev_rd = NULL;
	}
	if (tp->ev_wr != NULL) {
		event_free(tp->ev_wr);
		tp->ev_wr = NULL;
	}
	if (tp->fd != -1)
		close(tp->fd);
	tp->fd = -1;
	tp->out_len = tp->out_off = 0;
}

static int
lora_serial_events(struct tp *tp)
{
	tp->ev_rd = event_new(tp->host->base, tp->fd, EV_READ | EV_PERSIST,
	    lora_rd_cb, tp);
	tp->ev_wr = event_new(tp->host->base, tp->fd, EV_WRITE, lora_wr_cb,
	    tp);
	if (tp->ev_rd == NULL || tp->ev_wr == NULL ||
	    event_add(tp->ev_rd, NULL) == -1)
		return (-1);
	return (0);
}

static void
lora_flush_out(struct tp *tp)
{
	ssize_t	 n;

	while (tp->out_off < tp->out_len) {
		n = write(tp->fd, tp->out + tp->out_off, tp->out_len -
		    tp->out_off);
		if (n > 0) {
			tp->out_off += (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(tp->ev_wr, NULL);
			return;
		}
		if (n == -1 && errno == EINTR)
			continue;
		/* The line is gone; the command will time out. */
		up_logf(UP_LOG_WARN, "transport.%s: write %s: %s", tp->name,
		    tp->device, n == -1 ? strerror(errno) : "short write");
		tp->out_len = tp->out_off = 0;
		return;
	}
	tp->out_len = tp->out_off = 0;
}

static void
lora_wr_cb(evutil_socket_t fd, short what, void *arg)
{
	lora_flush_out(arg);
}

/*
 * Writes one command with its CR LF and arms its timeout.  Its status
 * line (or the dialect's events) resolve it.
 */
static void
lora_cmd(struct tp *tp, const char *cmd, enum lora_purpose purpose,
    bool want_value)
{
	size_t	 n = strlen(cmd);

	/* Closed by the host inside a callback: nothing more. */
	if (tp->dead)
		return;

	if (tp->fd == -1 || n + 2 > sizeof(tp->out) - tp->out_len) {
		lora_fault(tp, "cannot write to the modem");
		return;
	}
	if (cmd != tp->cmd)
		snprintf(tp->cmd, sizeof(tp->cmd), "%s", cmd);
	tp->purpose = purpose;
	tp->awaiting = true;
	tp->want_value = want_value;
	tp->got_value = false;
	tp->value[0] = '\0';
	memcpy(tp->out + tp->out_len, cmd, n);
	memcpy(tp->out + tp->out_len + n, "\r\n", 2);
	tp->out_len += n + 2;
	up_logf(UP_LOG_DEBUG, "transport.%s: > %.60s%s", tp->name, cmd,
	    n > 60 ? "..." : "");
	lora_timer(tp->ev_to, LORA_CMD_TIMEOUT_MS + lora_uart_ms(tp, n + 2));
	lora_flush_out(tp);
}

static void
lora_cmd_clear(struct tp *tp)
{
	tp->purpose = LP_NONE;
	tp->awaiting = false;
	tp->want_value = false;
	evtimer_del(tp->ev_to);
}

/* ------------------------------------------------------------------ */
/* Link state                                                           */

static void
lora_set_link(struct tp *tp, int up)
{
	if (tp->dead)
		return;
	tp->link_up = up;
	if (tp->link_told != up)
		event_active(tp->ev_notify, EV_TIMEOUT, 0);
}

static void
lora_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;
	int		 up = tp->link_up;

	if (tp->link_told != up) {
		tp->link_told = up;
		up_logf(up ? UP_LOG_INFO : UP_LOG_WARN, "transport.%s: link "
		    "%s", tp->name, up ? "up" : "down");
		if (tp->host->link != NULL) {
			lora_enter(tp);
			tp->host->link(tp->host->arg, tp, up ? TP_LINK_UP :
			    TP_LINK_DOWN);
			if (!lora_leave(tp))
				return;
		}
	}
	if (tp->want_writable && tp->state == LS_READY &&
	    tp->q_len < tp->q_cap) {
		tp->want_writable = false;
		if (tp->host->writable != NULL) {
			lora_enter(tp);
			tp->host->writable(tp->host->arg, tp);
			if (!lora_leave(tp))
				return;
		}
	}
}

/* Reports the head frame's fate and removes it.  false: we were closed. */
static bool
lora_tx_report(struct tp *tp, int status, uint32_t airtime_us)
{
	struct lora_frame *f = &tp->q[tp->q_head];
	uint64_t	 cookie = f->cookie;
	size_t		 len = f->len;

	tp->q_head = (tp->q_head + 1) % LORA_TXQ_MAX;
	tp->q_len--;
	tp->tx_active = false;
	if (status == TP_OK) {
		tp->st.tx_frames++;
		tp->st.tx_bytes += len;
	} else
		tp->st.tx_errors++;
	if (tp->q_len < tp->q_cap && tp->want_writable)
		event_active(tp->ev_notify, EV_TIMEOUT, 0);
	if (tp->host->tx_done == NULL)
		return (true);
	lora_enter(tp);
	tp->host->tx_done(tp->host->arg, tp, cookie, status, airtime_us);
	return (lora_leave(tp));
}

/*
 * The modem misbehaved: every frame it holds or that waits fails (none
 * was confirmed), the link goes down, and it is initialised again.
 */
static void
lora_fault(struct tp *tp, const char *why)
{
	bool	 was_ready = tp->state == LS_READY;

	/* Closed by the host inside a callback: nothing more. */
	if (tp->dead)
		return;

	up_logf(UP_LOG_WARN, "transport.%s: modem fault: %s%s", tp->name,
	    why, was_ready ? "; re-initialising" : "");
	lora_cmd_clear(tp);
	tp->boot_wait = false;
	tp->tx_air = false;
	tp->state = LS_DOWN;
	lora_set_link(tp, 0);
	while (tp->q_len > 0) {
		if (!lora_tx_report(tp, TP_EIO, 0))
			return;
	}
	if (tp->fails < 16)
		tp->fails++;
	if (was_ready)
		lora_init_begin(tp);
	else {
		uint64_t ms = (uint64_t)LORA_RETRY_MIN_MS << (tp->fails - 1);

		lora_timer(tp->ev_retry, ms > LORA_RETRY_MAX_MS ?
		    LORA_RETRY_MAX_MS : ms);
	}
}

/* ------------------------------------------------------------------ */
/* Initialisation                                                       */

static void
lora_init_begin(struct tp *tp)
{
	char	*cause = NULL;

	/* Closed by the host inside a callback: nothing more. */
	if (tp->dead)
		return;

	evtimer_del(tp->ev_retry);
	if (tp->fd == -1) {
		if (lora_serial_open(tp, &cause) == -1 ||
		    lora_serial_events(tp) == -1) {
			up_logf(UP_LOG_WARN, "%s", cause != NULL ? cause :
			    "transport: cannot reopen the modem");
			free(cause);
			lora_serial_close(tp);
			lora_fault(tp, "the serial line is gone");
			return;
		}
	}
	tp->n_inits++;
	tp->state = LS_INIT;
	tp->step = 0;
	tp->tries = 0;
	tp->reset_sent = false;
	tp->boot_wait = false;
	tp->relisten = false;
	lora_lines_reset(&tp->lines);
	lora_init_next(tp);
}

/* Sends step tp->step of the script, or finishes. */
static void
lora_init_next(struct tp *tp)
{
	struct lora_step st;

	/* Closed by the host inside a callback: nothing more. */
	if (tp->dead)
		return;

	if (!tp->d->init_step(&tp->phy, tp->step, &st)) {
		lora_cmd_clear(tp);
		tp->state = LS_READY;
		tp->fails = 0;
		up_logf(UP_LOG_INFO, "transport.%s: modem ready (%s), %u Hz "
		    "SF%u/%u kHz CR 4/%u, %u-byte frames", tp->name,
		    tp->d->name, tp->phy.freq_hz, tp->phy.sf, tp->phy.bw_khz,
		    4 + tp->phy.cr, tp->mtu);
		lora_set_link(tp, 1);
		lora_kick(tp);
		return;
	}
	lora_cmd(tp, st.cmd, LP_INIT, st.want_value);
}

/* Sends the reset command and waits for the boot banner. */
static void
lora_init_reset(struct tp *tp)
{
	char	 cmd[LORA_CMD_MAX];

	if (tp->d->reset_cmd(cmd, sizeof(cmd)) == -1) {
		lora_fault(tp, "the modem does not answer");
		return;
	}
	lora_cmd(tp, cmd, LP_INIT, false);
	tp->reset_sent = true;
	tp->awaiting = false;
	tp->boot_wait = true;
	evtimer_del(tp->ev_to);
	lora_timer(tp->ev_to, LORA_BOOT_TIMEOUT_MS);
}

static void
lora_init_answer(struct tp *tp, bool ok, enum lora_err err)
{
	struct lora_step st;
	const char	*why = NULL;
	int		 skip = 0;

	if (!ok) {
		if (err == LORA_ERR_BUSY && ++tp->tries < LORA_BUSY_TRIES) {
			tp->n_busy++;
			lora_cmd_clear(tp);
			lora_timer(tp->ev_retry, LORA_BUSY_BACKOFF_MS <<
			    tp->tries);
			return;
		}
		up_logf(UP_LOG_WARN, "transport.%s: %s: %s", tp->name,
		    tp->cmd, lora_err_str(err));
		lora_fault(tp, "the modem refused its settings");
		return;
	}
	if (tp->want_value) {
		if (!tp->got_value) {
			lora_fault(tp, "a query was answered without a value");
			return;
		}
		if ((skip = tp->d->init_check(&tp->phy, tp->step, tp->value,
		    &why)) < 0) {
			up_logf(UP_LOG_WARN, "transport.%s: %s answered \"%s\"",
			    tp->name, tp->cmd, tp->value);
			lora_fault(tp, why != NULL ? why : "unexpected value");
			return;
		}
	}
	if (tp->d->init_step(&tp->phy, tp->step, &st) && st.reboots) {
		/* The modem restarts: the script starts over after it. */
		lora_cmd_clear(tp);
		tp->boot_wait = true;
		lora_timer(tp->ev_to, LORA_BOOT_TIMEOUT_MS);
		return;
	}
	tp->step += 1 + (unsigned int)skip;
	tp->tries = 0;
	lora_init_next(tp);
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

/* Will a frame handed over now be a wake frame? */
static bool
lora_wake_due(struct tp *tp)
{
	uint64_t	 gap;

	if (tp->wake_ms == 0 || tp->d->preamble_cmd == NULL)
		return (false);
	if (!tp->ever_sent)
		return (true);
	/* Nodes sleep node_awake_ms after the last frame they heard. */
	gap = tp->awake_ms - tp->awake_ms / 10;
	return (lora_now_ms(tp) >= tp->last_tx_ms + gap);
}

static uint32_t
lora_wake_preamble(struct tp *tp)
{
	return (lora_preamble_for_ms(&tp->phy, tp->wake_ms));
}

static void
lora_kick(struct tp *tp)
{
	if (tp->dead || tp->state != LS_READY || tp->awaiting || tp->tx_active ||
	    tp->boot_wait)
		return;
	if (tp->q_len == 0) {
		if (tp->relisten) {
			char	 cmd[LORA_CMD_MAX];

			tp->relisten = false;
			if (tp->d->listen_cmd(true, cmd, sizeof(cmd)) != -1)
				lora_cmd(tp, cmd, LP_LISTEN, false);
		}
		return;
	}
	tp->tx_active = true;
	tp->tx_wake = lora_wake_due(tp);
	tp->tx_preamble = tp->tx_wake ? lora_wake_preamble(tp) :
	    tp->phy.preamble;
	tp->tx_step = tp->tx_wake ? TXS_RX_OFF : TXS_SEND;
	tp->tx_decided = false;
	tp->tx_status = TP_EIO;
	tp->tx_air = false;
	tp->tries = 0;
	lora_tx_next(tp);
}

static void
lora_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	lora_kick(arg);
}

/* Sends the command of tx_step. */
static void
lora_tx_next(struct tp *tp)
{
	struct lora_frame *f = &tp->q[tp->q_head];
	char		 cmd[LORA_LINE_MAX + 1];
	int		 n = -1;

	/* Closed by the host inside a callback: nothing more. */
	if (tp->dead)
		return;

	switch (tp->tx_step) {
	case TXS_RX_OFF:
		n = tp->d->listen_cmd(false, cmd, sizeof(cmd));
		break;
	case TXS_PREAMBLE:
		n = tp->d->preamble_cmd(tp->tx_preamble, cmd, sizeof(cmd));
		break;
	case TXS_SEND:
		n = tp->d->send_cmd(f->b, f->len, cmd, sizeof(cmd));
		break;
	case TXS_PREAMBLE_BACK:
		n = tp->d->preamble_cmd(tp->phy.preamble, cmd, sizeof(cmd));
		break;
	case TXS_RX_ON:
		n = tp->d->listen_cmd(true, cmd, sizeof(cmd));
		break;
	case TXS_END:
		lora_tx_finish(tp);
		return;
	}
	if (n < 0) {
		lora_fault(tp, "cannot build a command");
		return;
	}
	lora_cmd(tp, cmd, LP_TX, false);
}

/* The head frame's steps are over: report it, go on. */
static void
lora_tx_finish(struct tp *tp)
{
	uint32_t	 air = 0;

	lora_cmd_clear(tp);
	if (tp->tx_status == TP_OK)
		air = (uint32_t)(lora_toa_ns(&tp->phy, tp->q[tp->q_head].len,
		    tp->tx_preamble) / 1000);
	if (!lora_tx_report(tp, tp->tx_status, air))
		return;
	lora_kick(tp);
}

/* After the frame's fate: the steps that restore the radio, or the end. */
static void
lora_tx_after_send(struct tp *tp)
{
	tp->tx_air = false;
	tp->tries = 0;
	tp->tx_step = tp->tx_wake ? TXS_PREAMBLE_BACK : TXS_END;
	lora_tx_next(tp);
}

/* The modem confirmed the frame on the air. */
static void
lora_tx_done(struct tp *tp)
{
	tp->tx_status = TP_OK;
	tp->tx_decided = true;
	tp->ever_sent = true;
	tp->last_tx_ms = lora_now_ms(tp);
	lora_cmd_clear(tp);
	lora_tx_after_send(tp);
}

static void
lora_tx_answer(struct tp *tp, bool ok, enum lora_err err)
{
	struct lora_frame *f = &tp->q[tp->q_head];
	uint64_t	 toa;

	if (ok) {
		if (tp->tx_step != TXS_SEND) {
			tp->tx_step++;
			tp->tries = 0;
			lora_tx_next(tp);
			return;
		}
		/* Accepted: the frame is on the air until TX DONE. */
		tp->awaiting = false;
		tp->tx_air = true;
		evtimer_del(tp->ev_to);
		toa = lora_toa_ns(&tp->phy, f->len, tp->tx_preamble);
		lora_timer(tp->ev_to, lora_real_ms(tp, toa) +
		    LORA_TX_MARGIN_MS);
		return;
	}
	if (err == LORA_ERR_BUSY) {
		tp->n_busy++;
		if (++tp->tries >= LORA_BUSY_TRIES) {
			lora_fault(tp, "the modem stays busy");
			return;
		}
		lora_cmd_clear(tp);
		lora_timer(tp->ev_retry, LORA_BUSY_BACKOFF_MS << tp->tries);
		return;
	}
	if (tp->tx_step != TXS_SEND) {
		up_logf(UP_LOG_WARN, "transport.%s: %s: %s", tp->name, tp->cmd,
		    lora_err_str(err));
		lora_fault(tp, "the modem refused a setting");
		return;
	}
	if (err == LORA_ERR_DUTY) {
		/*
		 * The modem keeps its own duty-cycle ledger and says no: the
		 * frame was not sent.  The engine's ledger should never let
		 * this happen; say so loudly, and go on.
		 */
		tp->n_duty++;
		up_logf(UP_LOG_WARN, "transport.%s: the modem refused a "
		    "%u-byte frame: duty cycle restricted (its ledger is "
		    "ahead of the engine's)", tp->name, f->len);
		tp->tx_status = TP_EAGAIN;
		tp->tx_decided = true;
		lora_cmd_clear(tp);
		lora_tx_after_send(tp);
		return;
	}
	/* A command garbled on the way in: once more, then give up. */
	if (++tp->tries < 2) {
		lora_tx_next(tp);
		return;
	}
	up_logf(UP_LOG_WARN, "transport.%s: the modem refused a %u-byte "
	    "frame: %s", tp->name, f->len, lora_err_str(err));
	tp->tx_status = TP_EIO;
	tp->tx_decided = true;
	lora_cmd_clear(tp);
	lora_tx_after_send(tp);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                            */

static void
lora_rx_frame(struct tp *tp, const struct lora_event *ev)
{
	struct tp_addr		 src;
	struct tp_rxinfo	 ri;

	tp->st.rx_frames++;
	tp->st.rx_bytes += ev->len;
	memset(&src, 0, sizeof(src));
	src.len = 1;
	src.b[0] = TP_LORA_ADDR_AIR;
	ri.rssi_dbm = ev->rssi_dbm;
	ri.snr_db = ev->snr_db;
	ri.rx_ms = lora_now_ms(tp);
	if (tp->host->rx == NULL)
		return;
	lora_enter(tp);
	tp->host->rx(tp->host->arg, tp, &src, tp->rxbuf, ev->len, &ri);
	(void)lora_leave(tp);
}

/* One line from the modem. */
static void
lora_line(struct tp *tp, const char *line)
{
	struct lora_event ev;

	/* A frame longer than our data rate's is bad input: refused. */
	tp->d->parse(line, tp->awaiting ? tp->cmd : NULL, &ev, tp->rxbuf,
	    tp->mtu);
	switch (ev.type) {
	case LORA_EV_IGNORE:
		return;
	case LORA_EV_RX:
		lora_rx_frame(tp, &ev);
		return;
	case LORA_EV_RX_ERROR:
		tp->st.rx_errors++;
		up_logf(UP_LOG_DEBUG, "transport.%s: a frame failed its CRC",
		    tp->name);
		return;
	case LORA_EV_RX_END:
		/* The receiver stopped: listen again when idle. */
		tp->relisten = true;
		lora_kick(tp);
		return;
	case LORA_EV_BAD:
		tp->n_bad++;
		tp->st.rx_errors++;
		up_logf(lora_warn_level(tp), "transport.%s: bad line from the "
		    "modem (%s): \"%.80s\"", tp->name, ev.why, line);
		return;
	case LORA_EV_BOOT:
		tp->n_resets++;
		if (tp->boot_wait) {
			up_logf(UP_LOG_INFO, "transport.%s: the modem "
			    "restarted", tp->name);
			tp->boot_wait = false;
			evtimer_del(tp->ev_to);
			tp->step = 0;
			tp->tries = 0;
			lora_init_next(tp);
			return;
		}
		if (tp->state == LS_INIT || tp->state == LS_DOWN) {
			/*
			 * Restarted under our feet while we set it up, or
			 * back while we waited to try again: from the top.
			 */
			lora_init_begin(tp);
			return;
		}
		lora_fault(tp, "the modem reset");
		return;
	case LORA_EV_TX_DONE:
		if (tp->tx_active && tp->tx_step == TXS_SEND &&
		    !tp->tx_decided) {
			/* (Its OK may have been lost on the line.) */
			lora_tx_done(tp);
			return;
		}
		tp->n_unexpected++;
		up_logf(lora_warn_level(tp), "transport.%s: TX DONE with no "
		    "frame on the air", tp->name);
		return;
	case LORA_EV_VALUE:
		if (tp->awaiting && tp->want_value && !tp->got_value) {
			tp->got_value = true;
			snprintf(tp->value, sizeof(tp->value), "%s", ev.value);
			return;
		}
		/* Banner text, or an answer nobody asked for. */
		if (!tp->boot_wait)
			tp->n_unexpected++;
		up_logf(UP_LOG_DEBUG, "transport.%s: < %.80s", tp->name, line);
		return;
	case LORA_EV_OK:
	case LORA_EV_ERROR:
		if (!tp->awaiting) {
			tp->n_unexpected++;
			up_logf(lora_warn_level(tp), "transport.%s: \"%s\" "
			    "with no command in flight", tp->name, line);
			return;
		}
		tp->awaiting = false;
		evtimer_del(tp->ev_to);
		switch (tp->purpose) {
		case LP_INIT:
			lora_init_answer(tp, ev.type == LORA_EV_OK, ev.err);
			break;
		case LP_TX:
			lora_tx_answer(tp, ev.type == LORA_EV_OK, ev.err);
			break;
		case LP_LISTEN:
			lora_cmd_clear(tp);
			if (ev.type == LORA_EV_ERROR &&
			    ev.err != LORA_ERR_BUSY) {
				lora_fault(tp, "the modem will not listen");
				return;
			}
			lora_kick(tp);
			break;
		case LP_NONE:
			break;
		}
		return;
	}
}

static void
lora_rd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp		*tp = arg;
	uint8_t			 b[512];
	const char		*line;
	enum lora_line_st	 ls;
	size_t			 off;
	ssize_t			 n;
	int			 rounds;

	for (rounds = 0; rounds < 16; rounds++) {
		n = read(tp->fd, b, sizeof(b));
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return;
		if (n <= 0) {
			up_logf(UP_LOG_WARN, "transport.%s: read %s: %s",
			    tp->name, tp->device, n == 0 ? "hang-up" :
			    strerror(errno));
			lora_serial_close(tp);
			tp->state = LS_INIT;	/* not ready: no re-init now */
			lora_fault(tp, "the serial line hung up");
			return;
		}
		off = 0;
		while ((ls = lora_lines_feed(&tp->lines, b, (size_t)n, &off,
		    &line)) != LORA_LINE_NONE) {
			lora_enter(tp);
			switch (ls) {
			case LORA_LINE_OK:
				lora_line(tp, line);
				break;
			case LORA_LINE_OVERLONG:
				tp->n_bad++;
				tp->st.rx_errors++;
				up_logf(lora_warn_level(tp), "transport.%s: a "
				    "line longer than %u bytes from the modem "
				    "dropped", tp->name, LORA_LINE_MAX);
				break;
			case LORA_LINE_GARBLED:
				tp->n_bad++;
				tp->st.rx_errors++;
				up_logf(lora_warn_level(tp), "transport.%s: a "
				    "garbled line from the modem dropped: "
				    "\"%.60s\"", tp->name, line);
				break;
			case LORA_LINE_NONE:
				break;
			}
			if (!lora_leave(tp) || tp->fd != fd)
				return;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Timers                                                               */

static void
lora_to_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	lora_enter(tp);
	if (tp->boot_wait) {
		tp->boot_wait = false;
		lora_fault(tp, "the modem did not restart");
	} else if (tp->tx_air) {
		lora_fault(tp, "no TX DONE from the modem");
	} else if (tp->awaiting && tp->purpose == LP_INIT && tp->step == 0) {
		/* The probe: a few tries, then a reset. */
		if (++tp->tries < LORA_PROBE_TRIES)
			lora_cmd(tp, tp->cmd, LP_INIT, false);
		else if (!tp->reset_sent)
			lora_init_reset(tp);
		else
			lora_fault(tp, "the modem does not answer");
	} else if (tp->awaiting) {
		up_logf(UP_LOG_WARN, "transport.%s: no answer to %.40s",
		    tp->name, tp->cmd);
		lora_fault(tp, "the modem stopped answering");
	}
	(void)lora_leave(tp);
}

static void
lora_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	lora_enter(tp);
	switch (tp->state) {
	case LS_DOWN:
		lora_init_begin(tp);
		break;
	case LS_INIT:
		/* A busy answer's back-off ended. */
		lora_init_next(tp);
		break;
	case LS_READY:
		if (tp->tx_active)
			lora_tx_next(tp);
		else
			lora_kick(tp);
		break;
	}
	(void)lora_leave(tp);
}

/* ------------------------------------------------------------------ */
/* Open, start, close                                                   */

static void
lora_teardown(struct tp *tp)
{
	struct event	**evs[] = { &tp->ev_to, &tp->ev_retry, &tp->ev_kick,
			    &tp->ev_notify };
	size_t		  i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (*evs[i] != NULL) {
			event_free(*evs[i]);
			*evs[i] = NULL;
		}
	}
	lora_serial_close(tp);
}

static void
lora_free(struct tp *tp)
{
	free(tp->device);
	free(tp->name);
	free(tp);
}

static int
tp_lora_open(const struct tp_host *host, const struct tp_conf *conf,
    struct tp **tpp, char **cause)
{
	struct tp	*tp;
	const char	*dev, *fmt, *dia, *reg, *why;
	long long	 mtu, bw;

	*tpp = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (host == NULL || host->base == NULL)
		return (tp__cause(cause, "transport.%s: no event base",
		    conf->name != NULL ? conf->name : "?"));
	if ((tp = calloc(1, sizeof(*tp))) == NULL)
		return (tp__cause(cause, "transport: out of memory"));
	tp->fd = -1;
	tp->link_told = -1;
	tp->host = host;
	tp->scale = host->time_scale >= 1e-6 ? host->time_scale : 1;
	if ((tp->name = strdup(conf->name != NULL ? conf->name : "lora")) ==
	    NULL) {
		free(tp);
		return (tp__cause(cause, "transport: out of memory"));
	}

	dev = tp_conf_str(conf, "device");
	fmt = tp_conf_str(conf, "format");
	dia = tp_conf_str(conf, "dialect");
	reg = tp_conf_str(conf, "region");
	if (dev == NULL || *dev == '\0') {
		tp__cause(cause, "transport.%s: device is required", tp->name);
		goto fail;
	}
	if (fmt == NULL || tp_lora_check_format(fmt) != NULL ||
	    dia == NULL || (tp->d = lora_dialect_find(dia)) == NULL ||
	    reg == NULL || (tp->region = lora_region_find(reg)) == NULL) {
		tp__cause(cause, "transport.%s: format, dialect or region "
		    "out of range (was the section checked?)", tp->name);
		goto fail;
	}
	if ((tp->device = strdup(dev)) == NULL) {
		tp__cause(cause, "transport: out of memory");
		goto fail;
	}
	memcpy(tp->format, fmt, 3);
	tp->baud = (unsigned int)tp_conf_int(conf, "baud");
	if (lora_speed(tp->baud) == B0) {
		tp__cause(cause, "transport.%s: baud = %u: not a UART bit rate",
		    tp->name, tp->baud);
		goto fail;
	}
	bw = tp_conf_int(conf, "bandwidth_khz");
	tp->phy.freq_hz = (uint32_t)tp_conf_int(conf, "frequency_hz");
	tp->phy.sf = (uint8_t)tp_conf_int(conf, "sf");
	tp->phy.bw_khz = (uint16_t)(bw > 0 && bw <= 500 ? bw : 0);
	tp->phy.cr = (uint8_t)(tp_conf_int(conf, "coding_rate") - 4);
	tp->phy.preamble = (uint16_t)tp_conf_int(conf, "preamble");
	tp->phy.power_dbm = (int8_t)tp_conf_int(conf, "power_dbm");
	tp->phy.crc = true;
	tp->phy.implicit = false;
	tp->phy.ldro = -1;
	if ((why = lora_phy_check(&tp->phy)) != NULL ||
	    (why = tp->d->phy_check(&tp->phy)) != NULL) {
		tp__cause(cause, "transport.%s: %s", tp->name, why);
		goto fail;
	}
	tp->band = lora_region_band(tp->region, &tp->phy);
	if (tp->region->nbands > 0 && tp->band < 0) {
		tp__cause(cause, "transport.%s: %u Hz with %u kHz is not "
		    "inside one %s sub-band", tp->name, tp->phy.freq_hz,
		    tp->phy.bw_khz, tp->region->name);
		goto fail;
	}
	mtu = tp_conf_int(conf, "mtu");
	tp->mtu = mtu > 0 ? (uint32_t)mtu : lora_mtu(&tp->phy);
	if (tp->mtu > tp->d->payload_max)
		tp->mtu = (uint32_t)tp->d->payload_max;
	if (tp->mtu < 20) {
		tp__cause(cause, "transport.%s: mtu = %u: UP needs 20 bytes "
		    "at least", tp->name, tp->mtu);
		goto fail;
	}
	tp->q_cap = (unsigned int)tp_conf_int(conf, "tx_queue");
	if (tp->q_cap < 1 || tp->q_cap > LORA_TXQ_MAX)
		tp->q_cap = 2;
	tp->wake_ms = (uint32_t)tp_conf_int(conf, "wake_ms");
	tp->awake_ms = (uint32_t)tp_conf_int(conf, "node_awake_ms");
	if (tp->wake_ms > 0 && tp->awake_ms <= tp->wake_ms) {
		tp__cause(cause, "transport.%s: node_awake_ms must exceed "
		    "wake_ms", tp->name);
		goto fail;
	}

	if (lora_serial_open(tp, cause) == -1)
		goto fail;
	tp->ev_to = evtimer_new(host->base, lora_to_cb, tp);
	tp->ev_retry = evtimer_new(host->base, lora_retry_cb, tp);
	tp->ev_kick = event_new(host->base, -1, 0, lora_kick_cb, tp);
	tp->ev_notify = event_new(host->base, -1, 0, lora_notify_cb, tp);
	if (tp->ev_to == NULL || tp->ev_retry == NULL || tp->ev_kick == NULL ||
	    tp->ev_notify == NULL) {
		tp__cause(cause, "transport.%s: cannot create events",
		    tp->name);
		goto fail;
	}
	up_logf(UP_LOG_INFO, "transport.%s: lora on %s (%u %s, %s), %u Hz "
	    "SF%u/%u kHz CR 4/%u, %u-byte frames, %s%s%s", tp->name,
	    tp->device, tp->baud, tp->format, tp->d->name, tp->phy.freq_hz,
	    tp->phy.sf, tp->phy.bw_khz, 4 + tp->phy.cr, tp->mtu,
	    tp->band >= 0 ? "sub-band " : "no duty cycle",
	    tp->band >= 0 ? tp->region->bands[tp->band].name : "",
	    tp->wake_ms > 0 ? ", sleeping nodes" : "");
	*tpp = tp;
	return (0);
fail:
	lora_teardown(tp);
	lora_free(tp);
	return (-1);
}

static int
tp_lora_start(struct tp *tp, char **cause)
{
	if (cause != NULL)
		*cause = NULL;
	if (tp->started)
		return (0);
	if (lora_serial_events(tp) == -1)
		return (tp__cause(cause, "transport.%s: cannot add events",
		    tp->name));
	tp->started = 1;
	tp->link_up = 0;
	lora_init_begin(tp);
	return (0);
}

static void
tp_lora_close(struct tp *tp)
{
	if (tp == NULL || tp->dead)
		return;
	up_logf(UP_LOG_DEBUG, "transport.%s: close (tx %llu frames, rx %llu "
	    "frames, %llu bad lines, %llu resets, %llu inits)", tp->name,
	    (unsigned long long)tp->st.tx_frames,
	    (unsigned long long)tp->st.rx_frames,
	    (unsigned long long)tp->n_bad, (unsigned long long)tp->n_resets,
	    (unsigned long long)tp->n_inits);
	lora_teardown(tp);
	if (tp->in_cb) {
		tp->dead = 1;
		return;
	}
	lora_free(tp);
}

/* ------------------------------------------------------------------ */
/* Facts                                                                */

static void
tp_lora_caps(struct tp *tp, struct tp_caps *c)
{
	const struct lora_band *b;
	unsigned int	 i;

	memset(c, 0, sizeof(*c));
	c->mtu = tp->mtu;
	/*
	 * Every frame is heard by every radio in range; a frame "to one
	 * node" is the same transmission, addressed by UP's node id (so
	 * not TP_CAP_ADDRESSED).  UP's compact form is LoRa's default, and
	 * the payload CRC the driver switches on checks every frame (docs/
	 * up-protocol.md §11.1, §11.3; docs/transports/lora.md).
	 */
	c->flags = TP_CAP_BROADCAST | TP_CAP_UNICAST | TP_CAP_HALF_DUPLEX |
	    TP_CAP_COMPACT | (tp->phy.crc ? TP_CAP_FCS : 0);
	c->bitrate_bps = lora_bitrate(&tp->phy);
	/* Preamble and header, in bytes at the nominal rate. */
	c->frame_overhead = (uint32_t)(lora_toa_ns(&tp->phy, 0, 0) *
	    c->bitrate_bps / 8 / 1000000000ULL);
	c->tx_queue = tp->q_cap;
	c->uplink_mtu = tp->mtu;
	if (tp->band >= 0) {
		b = &tp->region->bands[tp->band];
		c->duty_cycle_ppm = b->duty_ppm;
		c->duty_window_ms = LORA_DUTY_WINDOW_MS;
		c->nbands = (uint8_t)tp->region->nbands;
		for (i = 0; i < c->nbands; i++) {
			c->band[i].duty_ppm = tp->region->bands[i].duty_ppm;
			c->band[i].window_ms = LORA_DUTY_WINDOW_MS;
		}
	}
}

static unsigned int
tp_lora_band(struct tp *tp, const struct tp_addr *dst, size_t len)
{
	/* One channel: every frame goes in the band of its frequency. */
	return (tp->band >= 0 ? (unsigned int)tp->band : 0);
}

static uint32_t
tp_lora_airtime(struct tp *tp, const struct tp_addr *dst, size_t len)
{
	uint32_t	 pre = tp->phy.preamble;

	/* Handed over now, with nothing queued: it wakes the nodes. */
	if (tp->q_len == 0 && !tp->tx_active && lora_wake_due(tp))
		pre = lora_wake_preamble(tp);
	return ((uint32_t)(lora_toa_ns(&tp->phy, len, pre) / 1000));
}

static void
tp_lora_stats(struct tp *tp, struct tp_stats *s)
{
	*s = tp->st;
	s->queued = tp->q_len;
}

/* ------------------------------------------------------------------ */
/* send                                                                 */

static int
tp_lora_send(struct tp *tp, const struct tp_addr *dst,
    const struct iovec *iov, int iovcnt, uint64_t cookie)
{
	struct lora_frame *f;
	size_t		 len = 0;
	int		 i;

	if (tp->dead)
		return (TP_EIO);
	if (iovcnt < 0 || (iovcnt > 0 && iov == NULL))
		return (TP_EMSGSIZE);
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > tp->mtu - len)
			return (TP_EMSGSIZE);
		len += iov[i].iov_len;
	}
	if (len == 0)
		return (TP_EMSGSIZE);
	if (!(dst->flags & TP_ADDR_F_BROADCAST) &&
	    (dst->len != 1 || dst->b[0] != TP_LORA_ADDR_AIR))
		return (TP_ENOPEER);
	if (tp->state != LS_READY || tp->q_len >= tp->q_cap) {
		tp->st.eagain++;
		tp->want_writable = true;
		return (TP_EAGAIN);
	}
	f = &tp->q[(tp->q_head + tp->q_len) % LORA_TXQ_MAX];
	f->cookie = cookie;
	f->len = (uint16_t)len;
	for (len = 0, i = 0; i < iovcnt; i++) {
		memcpy(f->b + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	tp->q_len++;
	/* The modem is driven from the loop, never from inside send(). */
	event_active(tp->ev_kick, EV_TIMEOUT, 0);
	return (TP_OK);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

static int
tp_lora_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	int	 n;

	if (a->flags & TP_ADDR_F_BROADCAST)
		n = snprintf(buf, len, TP_LORA_PREFIX "broadcast");
	else if (a->len == 1 && a->b[0] == TP_LORA_ADDR_AIR)
		n = snprintf(buf, len, TP_LORA_PREFIX "air");
	else
		return (-1);
	return (n < 0 || (size_t)n >= len ? -1 : 0);
}

static int
tp_lora_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	if (s != NULL && strcmp(s, TP_LORA_PREFIX "broadcast") == 0) {
		tp_addr_broadcast(a);
		return (0);
	}
	if (s != NULL && strcmp(s, TP_LORA_PREFIX "air") == 0) {
		memset(a, 0, sizeof(*a));
		a->len = 1;
		a->b[0] = TP_LORA_ADDR_AIR;
		return (0);
	}
	return (tp__cause(cause, "bad lora address \"%s\": expected "
	    "lora:air or lora:broadcast", s != NULL ? s : ""));
}
