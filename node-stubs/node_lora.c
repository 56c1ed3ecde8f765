/*
 * node_lora.c: the LoRa link of a simulated node, `upnode --transport
 * lora' (docs/upnode.md, "LoRa link").
 *
 * The node's radio is a RAKwireless RUI3 module in P2P mode on a UART
 * (the simulator's modem, docs/simulator.md "lora", or a real RAK3172):
 * the node drives it with the AT commands docs/transports/lora.md
 * lists, as its firmware would.  This is the node's own small driver,
 * not the gateway's (a node cannot link transports/): one command at a
 * time, the settings read back at start, a modem that stops answering
 * or restarts is set up again, frames queued while it was are dropped
 * (the UP engine repeats what it must).
 *
 * Class C or asleep.  By default the radio listens continuously
 * (AT+PRECV=65533).  With sleep=on it is off, and opens a receive window
 * of listen_ms every wake_ms (a random phase per node): a gateway frame
 * with a preamble longer than wake_ms (the gateway's wake_ms option)
 * reaches it in one of those windows.  Any frame heard wakes the node:
 * it listens continuously until it has heard nothing for awake_ms, then
 * sleeps again.  The node may send whenever its receiver is not in a
 * window.
 *
 * Time: the schedule (wake_ms, listen_ms, awake_ms) is link time and
 * runs --time-scale times faster in real time; the timeouts that guard
 * the modem are real time.  No address: raw LoRa has none; compact UP
 * frames carry node ids (docs/up-protocol.md §11.1).
 */
#include <sys/types.h>
#include <sys/timerfd.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "up.h"
#include "upnode.h"

#define NL_LINE_MAX		600
#define NL_PAYLOAD_MAX		250
#define NL_TXQ			8
#define NL_CMD_TIMEOUT_MS	1500
/* The longest frame a node sends, SF12/125 250 bytes: 9.0 s on air. */
#define NL_TX_AIR_MS		9500
#define NL_BOOT_TIMEOUT_MS	5000
#define NL_RETRY_MS		2000
#define NL_NS			1000000ULL

enum nl_state {
	NL_INIT = 0,
	NL_READY
};

enum nl_rx {
	NL_RX_OFF = 0,		/* asleep, or about to be set */
	NL_RX_CONT,		/* 65533 */
	NL_RX_WINDOW		/* listen_ms, then RECEIVE TIMEOUT */
};

/* What the command in flight is. */
enum nl_cmd {
	NC_NONE = 0,
	NC_INIT,
	NC_SEND,
	NC_RX			/* a change of receive mode */
};

struct nl_frame {
	uint16_t	 len;
	uint8_t		 b[NL_PAYLOAD_MAX];
};

struct node_link {
	const struct node_conf	*conf;
	const char		*device;	/* conf's, borrowed */
	const char		*format;
	unsigned int		 baud;
	int			 fd;		/* -1 while hung up */
	int			 tfd;
	double			 scale;
	/* Settings. */
	uint32_t		 freq;
	unsigned int		 sf, bw, cr, pre;
	int			 pow;
	size_t			 mtu;
	bool			 sleep;
	uint32_t		 wake_ms, listen_ms, awake_ms;
	uint16_t		 boot_slots, boot_slot_ms;

	enum nl_state		 state;
	unsigned int		 step;
	bool			 boot_wait;
	bool			 reset_sent;
	unsigned int		 probes;
	uint64_t		 retry_at;	/* real ns; 0 none */
	uint64_t		 hold_until;	/* no send before (busy) */
	/* The command in flight. */
	enum nl_cmd		 cmd_kind;
	enum nl_rx		 cmd_rx;	/* NC_RX: the mode asked */
	bool			 want_value, got_value;
	char			 value[128];
	char			 cmd[NL_LINE_MAX + 1];
	uint64_t		 deadline;	/* real ns; 0 none */
	bool			 tx_air;	/* send accepted: TX DONE due */
	/* Receiver. */
	enum nl_rx		 rx;
	bool			 awake;
	uint64_t		 awake_until;	/* real ns */
	uint64_t		 next_window;	/* real ns */
	uint64_t		 rng;
	/* Transmit queue. */
	struct nl_frame		 q[NL_TXQ];
	unsigned int		 q_head, q_len;
	/* The UART. */
	uint8_t			 in[1024];
	size_t			 in_len, in_off;
	char			 line[NL_LINE_MAX + 1];
	size_t			 line_len;
	bool			 line_long, line_bad;
	char			 out[NL_LINE_MAX + 8];
	size_t			 out_len, out_off;
	/* Counters (logged at close). */
	uint64_t		 n_rx, n_bad, n_tx, n_tx_fail, n_inits;
};

static const char *nl_check_freq(const char *);
static const char *nl_check_sf(const char *);
static const char *nl_check_bw(const char *);
static const char *nl_check_cr(const char *);
static const char *nl_check_pre(const char *);
static const char *nl_check_pow(const char *);
static const char *nl_check_mtu(const char *);
static const char *nl_check_baud(const char *);
static const char *nl_check_format(const char *);
static const char *nl_check_onoff(const char *);
static const char *nl_check_ms(const char *);
static const char *nl_check_slots(const char *);
static const char *nl_check_slot_ms(const char *);

static const struct node_link_opt lora_options[] = {
	{ "device", NULL, "the radio module's serial device", NULL },
	{ "baud", "115200", "the UART's bit rate", nl_check_baud },
	{ "format", "8N1", "the UART's character format", nl_check_format },
	{ "freq", "869525000", "frequency, Hz", nl_check_freq },
	{ "sf", "7", "spreading factor, 7 to 12", nl_check_sf },
	{ "bw", "125", "bandwidth, kHz: 125, 250, 500", nl_check_bw },
	{ "cr", "5", "coding rate 4/N, N = 5 to 8", nl_check_cr },
	{ "preamble", "8", "preamble, symbols", nl_check_pre },
	{ "power", "14", "transmit power, dBm (5 to 22)", nl_check_pow },
	{ "mtu", "0", "largest frame, 0 = the data rate's (51, 115, 222)",
	    nl_check_mtu },
	{ "sleep", "off", "on: listen only listen_ms every wake_ms until a "
	    "frame wakes the node", nl_check_onoff },
	{ "wake_ms", "1000", "time between receive windows asleep",
	    nl_check_ms },
	{ "listen_ms", "30", "a receive window asleep", nl_check_ms },
	{ "awake_ms", "30000", "silence after which a woken node sleeps",
	    nl_check_ms },
	{ "boot_slots", "32", "a boot ANNOUNCE or RESULT waits a random "
	    "one of this many slots (0: at once)", nl_check_slots },
	{ "boot_slot_ms", "0", "a slot, ms; 0 = a full frame's time on air "
	    "and 50 ms", nl_check_slot_ms },
	{ NULL, NULL, NULL, NULL }
};

/* ------------------------------------------------------------------ */
/* Options                                                              */

static long
nl_num(const char *v, long lo, long hi, bool *ok)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(v, &end, 10);
	*ok = v[0] != '\0' && *end == '\0' && errno == 0 && n >= lo &&
	    n <= hi;
	return (n);
}

#define NL_CHECK(fn, lo, hi, why)					\
static const char *							\
fn(const char *v)							\
{									\
	bool	 ok;							\
									\
	(void)nl_num(v, lo, hi, &ok);					\
	return (ok ? NULL : why);					\
}
NL_CHECK(nl_check_freq, 150000000, 960000000, "150000000 to 960000000 Hz")
NL_CHECK(nl_check_sf, 7, 12, "7 to 12")
NL_CHECK(nl_check_cr, 5, 8, "5 to 8 (4/5 to 4/8)")
NL_CHECK(nl_check_pre, 5, 65535, "5 to 65535 symbols")
NL_CHECK(nl_check_pow, 5, 22, "5 to 22 dBm")
NL_CHECK(nl_check_mtu, 0, NL_PAYLOAD_MAX, "0, or 20 to 250 bytes")
NL_CHECK(nl_check_ms, 1, 3600000, "1 to 3600000 ms")
NL_CHECK(nl_check_slots, 0, 1024, "0 to 1024")
NL_CHECK(nl_check_slot_ms, 0, 60000, "0 to 60000 ms")

static const char *
nl_check_bw(const char *v)
{
	bool	 ok;
	long	 n = nl_num(v, 125, 500, &ok);

	return (ok && (n == 125 || n == 250 || n == 500) ? NULL :
	    "125, 250 or 500");
}

static const char *
nl_check_baud(const char *v)
{
	bool	 ok;
	long	 n = nl_num(v, 300, 2000000, &ok);

	return (ok && node_serial_speed((unsigned int)n) != B0 ? NULL :
	    "not a serial bit rate");
}

static const char *
nl_check_format(const char *v)
{
	return (strlen(v) == 3 && v[0] >= '5' && v[0] <= '8' &&
	    strchr("NEO", v[1]) != NULL && (v[2] == '1' || v[2] == '2') ?
	    NULL : "a character format: 8N1, 8E1 ...");
}

static const char *
nl_check_onoff(const char *v)
{
	return (strcmp(v, "on") == 0 || strcmp(v, "off") == 0 ? NULL :
	    "on or off");
}

static long
nl_opt(const struct node_conf *conf, const char *key)
{
	bool	 ok;

	return (nl_num(node_conf_link_opt(conf, key), LONG_MIN, LONG_MAX,
	    &ok));
}

/* ------------------------------------------------------------------ */
/* Time                                                                 */

static uint64_t
nl_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

/* Real ns of `ms' link time. */
static uint64_t
nl_link_ns(struct node_link *l, uint64_t ms)
{
	return ((uint64_t)((double)ms * (double)NL_NS / l->scale));
}

static void
nl_arm(struct node_link *l)
{
	struct itimerspec its;
	uint64_t	 now = nl_now(), at = UINT64_MAX, d;

	if (l->deadline != 0)
		at = l->deadline;
	if (l->retry_at != 0 && l->retry_at < at)
		at = l->retry_at;
	if (l->state == NL_READY && l->q_len > 0 && l->hold_until > now &&
	    l->hold_until < at)
		at = l->hold_until;
	if (l->state == NL_READY && l->sleep) {
		if (l->awake && l->awake_until < at)
			at = l->awake_until;
		if (!l->awake && l->next_window < at)
			at = l->next_window;
	}
	memset(&its, 0, sizeof(its));
	if (at != UINT64_MAX) {
		d = at > now ? at - now : 1;
		its.it_value.tv_sec = (time_t)(d / 1000000000ULL);
		its.it_value.tv_nsec = (long)(d % 1000000000ULL);
	}
	(void)timerfd_settime(l->tfd, 0, &its, NULL);
}

/* ------------------------------------------------------------------ */
/* The UART                                                             */

static void
nl_flush(struct node_link *l)
{
	ssize_t	 n;

	if (l->fd == -1) {
		l->out_len = l->out_off = 0;
		return;
	}
	while (l->out_off < l->out_len) {
		n = write(l->fd, l->out + l->out_off, l->out_len - l->out_off);
		if (n > 0) {
			l->out_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		up_logf(UP_LOG_WARN, "lora: write: %s", n == -1 ?
		    strerror(errno) : "short");
		break;
	}
	l->out_len = l->out_off = 0;
}

static void
nl_cmd(struct node_link *l, const char *cmd, enum nl_cmd kind,
    bool want_value, uint64_t timeout_ms)
{
	size_t	 n = strlen(cmd);

	if (n + 2 > sizeof(l->out) - l->out_len)
		return;
	if (cmd != l->cmd)
		snprintf(l->cmd, sizeof(l->cmd), "%s", cmd);
	l->cmd_kind = kind;
	l->want_value = want_value;
	l->got_value = false;
	l->value[0] = '\0';
	memcpy(l->out + l->out_len, cmd, n);
	memcpy(l->out + l->out_len + n, "\r\n", 2);
	l->out_len += n + 2;
	l->deadline = nl_now() + timeout_ms * NL_NS;
	up_logf(UP_LOG_DEBUG, "lora: > %.50s", cmd);
	nl_flush(l);
}

static void
nl_cmd_done(struct node_link *l)
{
	l->cmd_kind = NC_NONE;
	l->deadline = 0;
}

/* ------------------------------------------------------------------ */
/* The modem's life                                                     */

static void	 nl_pump(struct node_link *);

static int
nl_reopen(struct node_link *l)
{
	char	*why = NULL;

	l->fd = node_serial_open(l->device, l->baud, l->format, &why);
	if (l->fd == -1) {
		up_logf(UP_LOG_DEBUG, "lora: %s", why != NULL ? why : "?");
		free(why);
		return (-1);
	}
	l->in_len = l->in_off = l->line_len = 0;
	l->out_len = l->out_off = 0;
	return (0);
}

static void
nl_init_begin(struct node_link *l)
{
	l->state = NL_INIT;
	l->step = 0;
	l->probes = 0;
	l->boot_wait = false;
	l->reset_sent = false;
	l->retry_at = 0;
	l->tx_air = false;
	l->rx = NL_RX_OFF;
	l->awake = false;
	l->n_inits++;
	nl_cmd_done(l);
	/* Frames the modem never confirmed are gone; UP repeats. */
	l->n_tx_fail += l->q_len;
	l->q_len = 0;
}

static void
nl_fault(struct node_link *l, const char *why)
{
	up_logf(UP_LOG_WARN, "lora: modem fault: %s; setting it up again",
	    why);
	nl_init_begin(l);
	l->retry_at = nl_now() + NL_RETRY_MS * NL_NS;
}

/* The init script (the gateway's, lora_rui3.c, in the node's words). */
static void
nl_init_step(struct node_link *l)
{
	char	 c[96];

	switch (l->step) {
	case 0:
		nl_cmd(l, "AT", NC_INIT, false, NL_CMD_TIMEOUT_MS);
		return;
	case 1:
		nl_cmd(l, "AT+NWM=?", NC_INIT, true, NL_CMD_TIMEOUT_MS);
		return;
	case 2:
		nl_cmd(l, "AT+NWM=0", NC_INIT, false, NL_CMD_TIMEOUT_MS);
		return;
	case 3:
		nl_cmd(l, "AT+PRECV=0", NC_INIT, false, NL_CMD_TIMEOUT_MS);
		return;
	case 4:
		snprintf(c, sizeof(c), "AT+P2P=%u:%u:%u:%u:%u:%d", l->freq,
		    l->sf, l->bw, l->cr, l->pre, l->pow);
		nl_cmd(l, c, NC_INIT, false, NL_CMD_TIMEOUT_MS);
		return;
	case 5:
		nl_cmd(l, "AT+P2P=?", NC_INIT, true, NL_CMD_TIMEOUT_MS);
		return;
	default:
		nl_cmd_done(l);
		l->state = NL_READY;
		l->rx = NL_RX_OFF;
		l->awake = false;
		up_logf(UP_LOG_INFO, "lora: radio ready, %u Hz SF%u/%u kHz, "
		    "%zu-byte frames%s", l->freq, l->sf, l->bw, l->mtu,
		    l->sleep ? ", asleep" : "");
		if (l->sleep)
			l->next_window = nl_now() + nl_link_ns(l,
			    node_rand(&l->rng) % l->wake_ms);
		return;
	}
}

static void
nl_init_answer(struct node_link *l, bool ok)
{
	char		 want[96];
	const char	*v = l->value;

	if (!ok) {
		nl_fault(l, "the modem refused its settings");
		return;
	}
	if (l->step == 1) {
		if (strncmp(v, "AT+NWM=", 7) == 0)
			v += 7;
		if (strcmp(v, "0") == 0)
			l->step++;	/* P2P already */
	} else if (l->step == 2) {
		/* The module restarts in P2P mode. */
		nl_cmd_done(l);
		l->boot_wait = true;
		l->deadline = nl_now() + NL_BOOT_TIMEOUT_MS * NL_NS;
		return;
	} else if (l->step == 5) {
		snprintf(want, sizeof(want), "%u:%u:%u:%u:%u:%d", l->freq,
		    l->sf, l->bw, l->cr, l->pre, l->pow);
		if (strncmp(v, "AT+P2P=", 7) == 0)
			v += 7;
		if (strcmp(v, want) != 0) {
			nl_fault(l, "the radio does not read back its settings");
			return;
		}
	}
	l->step++;
	nl_init_step(l);
}

/* Starts what is due: a send, a receive mode, sleep and wake. */
static void
nl_pump(struct node_link *l)
{
	struct nl_frame	*f;
	char		 c[NL_LINE_MAX + 1];
	uint64_t	 now = nl_now();
	size_t		 i;
	int		 n;

	if (l->state == NL_INIT) {
		if (l->cmd_kind == NC_NONE && !l->boot_wait &&
		    (l->retry_at == 0 || now >= l->retry_at)) {
			l->retry_at = 0;
			if (l->fd == -1 && nl_reopen(l) == -1) {
				l->retry_at = now + NL_RETRY_MS * NL_NS;
				nl_arm(l);
				return;
			}
			nl_init_step(l);
		}
		nl_arm(l);
		return;
	}
	if (l->cmd_kind != NC_NONE || l->tx_air) {
		nl_arm(l);
		return;
	}
	/* A woken node goes back to sleep after awake_ms of silence. */
	if (l->sleep && l->awake && now >= l->awake_until) {
		l->awake = false;
		l->next_window = now + nl_link_ns(l, l->wake_ms);
		up_logf(UP_LOG_DEBUG, "lora: asleep");
		l->cmd_rx = NL_RX_OFF;
		nl_cmd(l, "AT+PRECV=0", NC_RX, false, NL_CMD_TIMEOUT_MS);
		nl_arm(l);
		return;
	}
	/* Send when the receiver is not in a window. */
	if (l->q_len > 0 && l->rx != NL_RX_WINDOW && now >= l->hold_until) {
		f = &l->q[l->q_head];
		n = snprintf(c, sizeof(c), "AT+PSEND=");
		for (i = 0; i < f->len; i++)
			n += snprintf(c + n, sizeof(c) - (size_t)n, "%02X",
			    f->b[i]);
		nl_cmd(l, c, NC_SEND, false, NL_CMD_TIMEOUT_MS);
		nl_arm(l);
		return;
	}
	if (!l->sleep || l->awake) {
		if (l->rx != NL_RX_CONT) {
			l->cmd_rx = NL_RX_CONT;
			nl_cmd(l, "AT+PRECV=65533", NC_RX, false,
			    NL_CMD_TIMEOUT_MS);
		}
	} else if (l->rx == NL_RX_OFF && now >= l->next_window) {
		/* Asleep: a short window, then sleep again. */
		while (l->next_window <= now)
			l->next_window += nl_link_ns(l, l->wake_ms);
		snprintf(c, sizeof(c), "AT+PRECV=%u", l->listen_ms);
		l->cmd_rx = NL_RX_WINDOW;
		nl_cmd(l, c, NC_RX, false, NL_CMD_TIMEOUT_MS);
	}
	nl_arm(l);
}

/* ------------------------------------------------------------------ */
/* Lines from the modem                                                 */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

/* +EVT:RXP2P:<rssi>:<snr>:<hex>: the payload's length, or -1. */
static ssize_t
nl_rx_line(struct node_link *l, const char *s, uint8_t *buf, size_t cap)
{
	const char	*p;
	size_t		 n, i;
	int		 k;

	/* Skip RSSI and SNR (checked as signed integers). */
	for (k = 0; k < 2; k++) {
		if (*s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return (-1);
		while (*s >= '0' && *s <= '9')
			s++;
		if (*s++ != ':')
			return (-1);
	}
	p = s;
	n = strlen(p);
	if (n == 0 || n % 2 != 0 || n / 2 > cap || n / 2 > l->mtu)
		return (-1);
	for (i = 0; i < n; i += 2) {
		if (hexval(p[i]) < 0 || hexval(p[i + 1]) < 0)
			return (-1);
		buf[i / 2] = (uint8_t)(hexval(p[i]) << 4 | hexval(p[i + 1]));
	}
	return ((ssize_t)(n / 2));
}

/* A frame was heard: a sleeping node wakes, an awake one stays so. */
static void
nl_heard(struct node_link *l)
{
	if (l->rx == NL_RX_WINDOW)
		l->rx = NL_RX_OFF;	/* the window ended with the frame */
	if (!l->sleep)
		return;
	if (!l->awake)
		up_logf(UP_LOG_INFO, "lora: woken by a frame");
	l->awake = true;
	l->awake_until = nl_now() + nl_link_ns(l, l->awake_ms);
}

/* One line; returns a frame's length into buf, or 0. */
static ssize_t
nl_line(struct node_link *l, const char *s, uint8_t *buf, size_t cap)
{
	ssize_t	 n;
	bool	 ok;

	if (strcmp(s, l->cmd) == 0 && l->cmd_kind != NC_NONE)
		return (0);	/* echo */
	if (strncmp(s, "+EVT:RXP2P:", 11) == 0) {
		if ((n = nl_rx_line(l, s + 11, buf, cap)) < 0) {
			l->n_bad++;
			up_logf(UP_LOG_WARN, "lora: bad receive line from the "
			    "modem: \"%.60s\"", s);
			return (0);
		}
		l->n_rx++;
		nl_heard(l);
		return (n);
	}
	if (strcmp(s, "+EVT:RXP2P RECEIVE TIMEOUT") == 0) {
		if (l->rx == NL_RX_WINDOW)
			l->rx = NL_RX_OFF;
		return (0);
	}
	if (strcmp(s, "+EVT:RXP2P RECEIVE ERROR") == 0) {
		/* Something was on the air: stay awake for what follows. */
		if (l->sleep && l->awake)
			nl_heard(l);
		return (0);
	}
	if (strcmp(s, "+EVT:TXP2P DONE") == 0) {
		if (l->tx_air || l->cmd_kind == NC_SEND) {
			l->tx_air = false;
			nl_cmd_done(l);
			l->q_head = (l->q_head + 1) % NL_TXQ;
			l->q_len--;
			l->n_tx++;
		}
		return (0);
	}
	if (strncmp(s, "Current Work Mode:", 18) == 0) {
		if (l->boot_wait) {
			l->boot_wait = false;
			l->deadline = 0;
			l->step = 0;
			return (0);
		}
		up_logf(UP_LOG_WARN, "lora: the modem restarted");
		nl_init_begin(l);
		return (0);
	}
	ok = strcmp(s, "OK") == 0;
	if (!ok && strncmp(s, "AT_", 3) != 0) {
		/* A query's value, or banner text. */
		if (l->want_value && !l->got_value) {
			l->got_value = true;
			snprintf(l->value, sizeof(l->value), "%.127s", s);
		}
		return (0);
	}
	switch (l->cmd_kind) {
	case NC_NONE:
		return (0);
	case NC_INIT:
		nl_cmd_done(l);
		if (ok && l->want_value && !l->got_value) {
			nl_fault(l, "a query was answered without a value");
			return (0);
		}
		nl_init_answer(l, ok);
		return (0);
	case NC_SEND:
		if (ok) {
			l->cmd_kind = NC_NONE;
			l->tx_air = true;
			l->deadline = nl_now() + (NL_CMD_TIMEOUT_MS +
			    (uint64_t)((double)NL_TX_AIR_MS / l->scale)) *
			    NL_NS;
			return (0);
		}
		nl_cmd_done(l);
		if (strcmp(s, "AT_BUSY_ERROR") == 0) {
			/* Again shortly. */
			l->hold_until = nl_now() + 50 * NL_NS;
			return (0);
		}
		/* Refused (duty cycle, a damaged command): dropped. */
		up_logf(UP_LOG_WARN, "lora: the modem refused a %u-byte "
		    "frame: %s", l->q[l->q_head].len, s);
		l->q_head = (l->q_head + 1) % NL_TXQ;
		l->q_len--;
		l->n_tx_fail++;
		return (0);
	case NC_RX:
		nl_cmd_done(l);
		if (ok)
			l->rx = l->cmd_rx;
		else if (strcmp(s, "AT_BUSY_ERROR") != 0)
			nl_fault(l, "the modem will not change its receiver");
		return (0);
	}
	return (0);
}

/* Timers: a command not answered, a reset not finished. */
static void
nl_timers(struct node_link *l)
{
	uint64_t	 now = nl_now();

	if (l->deadline == 0 || now < l->deadline)
		return;
	l->deadline = 0;
	if (l->boot_wait) {
		nl_fault(l, "the modem did not restart");
		return;
	}
	if (l->state == NL_INIT && l->step == 0) {
		if (++l->probes < 3) {
			nl_cmd(l, l->cmd, NC_INIT, false, NL_CMD_TIMEOUT_MS);
			return;
		}
		if (!l->reset_sent) {
			l->reset_sent = true;
			nl_cmd(l, "ATZ", NC_INIT, false, NL_CMD_TIMEOUT_MS);
			l->cmd_kind = NC_NONE;
			l->boot_wait = true;
			l->deadline = now + NL_BOOT_TIMEOUT_MS * NL_NS;
			return;
		}
	}
	nl_fault(l, l->tx_air ? "no TX DONE" : "no answer from the modem");
}

/* ------------------------------------------------------------------ */
/* The link's ops                                                       */

/*
 * A frame's time on air with our settings, ms rounded up (Semtech's
 * formula, docs/transports/lora.md "Time on air"; RUI3 P2P: explicit
 * header, CRC on, LDRO above 16 ms a symbol).
 */
static uint32_t
nl_toa_ms(const struct node_link *l, size_t len)
{
	uint64_t	 tsym = ((uint64_t)1 << l->sf) * 1000000ULL / l->bw;
	long		 de = tsym > 16000000ULL, num, den, nsym = 0;

	num = 8 * (long)len - 4 * (long)l->sf + 28 + 16;
	den = 4 * ((long)l->sf - 2 * de);
	if (num > 0)
		nsym = (num + den - 1) / den * ((long)l->cr + 1 + 4);
	nsym += 8;
	return ((uint32_t)(((4 * (uint64_t)l->pre + 17 + 4 * (uint64_t)nsym) *
	    tsym / 4 + 999999) / 1000000));
}

static struct node_link *
lora_open(const struct node_conf *conf, int dirfd, char **cause)
{
	struct node_link *l;
	long		 mtu;
	char		*why = NULL;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*cause = strdup("out of memory");
		return (NULL);
	}
	l->conf = conf;
	l->tfd = -1;
	l->scale = conf->time_scale > 0 ? conf->time_scale : 1;
	l->freq = (uint32_t)nl_opt(conf, "freq");
	l->sf = (unsigned int)nl_opt(conf, "sf");
	l->bw = (unsigned int)nl_opt(conf, "bw");
	l->cr = (unsigned int)nl_opt(conf, "cr") - 4 - 1;
	l->pre = (unsigned int)nl_opt(conf, "preamble");
	l->pow = (int)nl_opt(conf, "power");
	mtu = nl_opt(conf, "mtu");
	if (mtu == 0) {
		/* The data rate's, as the gateway's lora_mtu(). */
		uint64_t tsym = ((uint64_t)1 << l->sf) * 1000000ULL / l->bw;

		mtu = tsym >= 8192000 ? 51 : tsym >= 4096000 ? 115 : 222;
	}
	if (mtu < 20) {
		*cause = strdup("mtu: UP needs 20 bytes at least");
		free(l);
		return (NULL);
	}
	l->mtu = (size_t)mtu;
	l->sleep = strcmp(node_conf_link_opt(conf, "sleep"), "on") == 0;
	l->wake_ms = (uint32_t)nl_opt(conf, "wake_ms");
	l->listen_ms = (uint32_t)nl_opt(conf, "listen_ms");
	l->awake_ms = (uint32_t)nl_opt(conf, "awake_ms");
	l->rng = conf->seed ^ (conf->id * 0x2545f4914f6cdd1dULL) ^ 0x10ad;
	l->boot_slots = (uint16_t)nl_opt(conf, "boot_slots");
	l->boot_slot_ms = (uint16_t)nl_opt(conf, "boot_slot_ms");
	if (l->boot_slot_ms == 0)
		l->boot_slot_ms = (uint16_t)(nl_toa_ms(l, l->mtu) + 50);
	if (l->listen_ms > 65532 || (l->sleep && l->listen_ms >= l->wake_ms)) {
		*cause = strdup("listen_ms: shorter than wake_ms and at most "
		    "65532");
		free(l);
		return (NULL);
	}
	l->device = node_conf_link_opt(conf, "device");
	l->format = node_conf_link_opt(conf, "format");
	l->baud = (unsigned int)nl_opt(conf, "baud");
	l->fd = node_serial_open(l->device, l->baud, l->format, &why);
	if (l->fd == -1) {
		*cause = why;
		free(l);
		return (NULL);
	}
	if ((l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC)) == -1) {
		if (asprintf(cause, "timerfd: %s", strerror(errno)) == -1)
			*cause = NULL;
		close(l->fd);
		free(l);
		return (NULL);
	}
	nl_init_begin(l);
	l->n_inits = 0;
	nl_pump(l);
	return (l);
}

static void
lora_close(struct node_link *l)
{
	if (l == NULL)
		return;
	up_logf(UP_LOG_DEBUG, "lora: close (rx %llu frames, tx %llu, %llu "
	    "not sent, %llu bad lines, %llu restarts)",
	    (unsigned long long)l->n_rx, (unsigned long long)l->n_tx,
	    (unsigned long long)l->n_tx_fail, (unsigned long long)l->n_bad,
	    (unsigned long long)l->n_inits);
	nl_flush(l);
	if (l->fd != -1)
		close(l->fd);
	close(l->tfd);
	free(l);
}

/*
 * UP on this link (docs/up-protocol.md §11.1, docs/transports/lora.md
 * "UP on LoRa"): compact frames by default; the LoRa payload CRC-16,
 * always on in RUI3 P2P, is the frame check, so compact frames go
 * without UP's CRC-16; raw LoRa has no addresses, so node frames carry
 * node ids; boot-time ANNOUNCEs and RESULTs spread over random slots of
 * a full frame's time on air, so that nodes powered up together do not
 * all collide.
 */
static void
lora_caps(const struct node_link *l, struct node_link_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->rx_max = l->mtu;
	caps->mtu_up = l->mtu;
	caps->flags = NODE_LINK_BROADCAST | NODE_LINK_HALF_DUPLEX |
	    NODE_LINK_COMPACT;
	caps->boot_slots = l->boot_slots;
	caps->boot_slot_ms = l->boot_slot_ms;
}

static int
lora_pollfds(struct node_link *l, struct pollfd *pfd, int max)
{
	if (max < 2)
		return (0);
	pfd[0].fd = l->tfd;
	pfd[0].events = POLLIN;
	if (l->fd == -1)
		return (1);
	pfd[1].fd = l->fd;
	pfd[1].events = POLLIN | (l->out_off < l->out_len ? POLLOUT : 0);
	return (2);
}

static ssize_t
lora_recv(struct node_link *l, const struct pollfd *pfd, uint8_t *buf,
    size_t cap, struct node_link_src *src)
{
	uint64_t	 exp;
	ssize_t		 n, frame;
	uint8_t		 c;

	src->len = 0;
	if (pfd->fd == l->tfd) {
		while (read(l->tfd, &exp, sizeof(exp)) > 0)
			;
		nl_timers(l);
		nl_pump(l);
		return (0);
	}
	if (pfd->revents & POLLOUT)
		nl_flush(l);
	for (;;) {
		while (l->in_off < l->in_len) {
			c = l->in[l->in_off++];
			if (c != '\r' && c != '\n') {
				if (c < 0x20 || c > 0x7e)
					l->line_bad = true;
				if (l->line_len < NL_LINE_MAX)
					l->line[l->line_len++] = (char)c;
				else
					l->line_long = true;
				continue;
			}
			if (l->line_len == 0 && !l->line_long)
				continue;
			l->line[l->line_len] = '\0';
			frame = 0;
			if (l->line_long || l->line_bad) {
				l->n_bad++;
				up_logf(UP_LOG_WARN, "lora: %s line from the "
				    "modem dropped", l->line_long ?
				    "an overlong" : "a garbled");
			} else
				frame = nl_line(l, l->line, buf, cap);
			l->line_len = 0;
			l->line_long = l->line_bad = false;
			nl_pump(l);
			if (frame > 0)
				return (frame);
		}
		l->in_off = l->in_len = 0;
		n = read(l->fd, l->in, sizeof(l->in));
		if (n > 0) {
			l->in_len = (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return (0);
		/*
		 * The line hung up (EIO, or end of file, on a gone pty or
		 * USB device): stop polling it; it is reopened every
		 * NL_RETRY_MS.
		 */
		up_logf(UP_LOG_WARN, "lora: %s: %s; reopening it", l->device,
		    n == 0 ? "hang-up" : strerror(errno));
		close(l->fd);
		l->fd = -1;
		nl_init_begin(l);
		l->retry_at = nl_now() + NL_RETRY_MS * NL_NS;
		nl_arm(l);
		return (0);
	}
}

static int
lora_send(struct node_link *l, const uint8_t *frame, size_t len)
{
	struct nl_frame	*f;

	/* Queued while the radio is set up too (the boot ANNOUNCE). */
	if (len == 0 || len > l->mtu || l->q_len == NL_TXQ)
		return (-1);
	f = &l->q[(l->q_head + l->q_len) % NL_TXQ];
	memcpy(f->b, frame, len);
	f->len = (uint16_t)len;
	l->q_len++;
	nl_pump(l);
	return (0);
}

const struct node_link_ops node_link_lora = {
	.name = "lora",
	.help = "a LoRa radio module (RUI3 AT, P2P) on a serial line",
	.options = lora_options,
	.open = lora_open,
	.close = lora_close,
	.caps = lora_caps,
	.pollfds = lora_pollfds,
	.recv = lora_recv,
	.send = lora_send
};
