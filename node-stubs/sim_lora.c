/*
 * sim_lora.c: LoRa air with RAKwireless RUI3 modems, the "lora"
 * personality of the medium simulator (docs/simulator.md, "lora").
 *
 * Every endpoint is a LoRa radio module on a UART speaking the AT
 * dialect of RUI3 in P2P mode (docs/transports/lora.md lists the lines):
 * the gateway's transport (transports/lora/tp_lora.c) and every `upnode
 * --transport lora' open their pty as they would /dev/ttyUSB0 and drive
 * it with the same commands they would send to a RAK3172.  The modem
 * model answers those commands, keeps each radio's settings, receive
 * mode and duty-cycle ledger, puts frames on the air and reports what
 * arrives:
 *  - time on air: Semtech's formula (computed here again, independently
 *    of the driver's copy, so the tests compare two implementations),
 *    with the preamble the modem is set to;
 *  - the air: the core's medium.  Transmissions on the same frequency,
 *    spreading factor and bandwidth (one channel number) collide
 *    whatever their power; a half-duplex radio misses what arrives
 *    while it sends; each receiver has its own loss (loss=PCT: the frame
 *    is not detected) and its own RSSI and SNR (rssi=, snr=);
 *  - receive modes: AT+PRECV=0 (off: RUI3's default "TX mode"), 65533
 *    (continuous, sending allowed), 65534 (continuous, sending refused
 *    with AT_BUSY_ERROR), 65535 (until one frame), 1-65532 ms (a window,
 *    then +EVT:RXP2P RECEIVE TIMEOUT).  A radio catches a frame when it
 *    listened at some moment of the frame's preamble up to two symbols
 *    before its end (a sleeping node waking in a window inside a long
 *    preamble catches the frame; one that wakes after it does not); once
 *    locked it receives the frame to the end;
 *  - the regulator: a modem with duty=on (the default) refuses a frame
 *    that would put its sub-band over its duty cycle in the last hour
 *    (EU868, ETSI EN 300 220-2 V3.2.1) with AT_DUTYCYLE_RESTRICTED, the
 *    status RAK3172 firmware 1.0.x documents for exactly this;
 *  - faults (control socket): `reset EP' reboots the modem (banner and
 *    all), `garble EP', `truncate EP', `silence EP on|off', `busy EP N',
 *    `error EP N'.
 * What is not modelled is in docs/simulator.md.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "upsim.h"

#define LM_LINE_MAX		600	/* "AT+PSEND=" + 500 hex digits */
#define LM_PAYLOAD_MAX		250
#define LM_HIST			32	/* receive on/off transitions kept */
#define LM_LEDGER		16384	/* transmissions kept for an hour */
#define LM_WINDOW_NS		(3600ULL * SIM_NS_PER_S)
#define LM_BOOT_NS		(50 * SIM_NS_PER_MS)
#define LM_LISTEN		65533

enum lm_rx {
	LM_RX_OFF = 0,
	LM_RX_CONT_TX,		/* 65533: listen, may send */
	LM_RX_CONT,		/* 65534: listen, may not send */
	LM_RX_ONCE,		/* 65535: until one frame */
	LM_RX_TIMED		/* 1-65532 ms */
};

struct lm_cfg {
	uint32_t	 freq;
	uint8_t		 sf;
	uint16_t	 bw;		/* kHz */
	uint8_t		 cr;		/* 0-3: 4/5-4/8 */
	uint16_t	 pre;
	int8_t		 pow;
};

struct lm_spend {
	uint64_t	 a, b;		/* on air from a to b */
	int8_t		 band;
};

struct lmodem {
	struct sim_ep	*ep;
	/* Its UART: the command being typed. */
	char		 line[LM_LINE_MAX + 1];
	size_t		 len;
	bool		 line_bad;	/* a character arrived damaged */
	bool		 line_long;
	bool		 echo;
	bool		 p2p;		/* AT+NWM: 0 = P2P */
	bool		 booting;	/* deaf until its banner */
	struct lm_cfg	 cfg;
	enum lm_rx	 rx;
	uint64_t	 rx_until;
	struct {
		uint64_t t;
		bool	 on;
	}		 hist[LM_HIST];
	unsigned int	 hist_n;	/* entries, newest at hist_n - 1 */
	bool		 sending;
	struct event	*ev_rxto;
	struct event	*ev_boot;
	/* The regulator. */
	bool		 duty;
	struct lm_spend	*ledger;
	unsigned int	 led_head, led_n;
	/* Faults. */
	bool		 silent;
	unsigned int	 busy_n, error_n;
	bool		 truncate_next;
	/* Link budget. */
	int		 rssi, snr;
	/* Counters (status). */
	uint64_t	 cmds, cmds_bad, refused_duty, refused_busy;
	uint64_t	 rx_events, rx_asleep, rx_crc, tx_done;
};

struct lsim {
	const struct lm_band	*bands;
	unsigned int		 nbands;
	struct lmodem		*m;	/* per endpoint */
};

/* ------------------------------------------------------------------ */
/* The regulator's table (ETSI EN 300 220-2, as LoRaWAN uses it)        */

struct lm_band {
	const char	*name;
	uint32_t	 lo, hi;
	uint32_t	 ppm;
};

static const struct lm_band eu868[] = {
	{ "K", 863000000, 865000000, 1000 },
	{ "L", 865000000, 868000000, 10000 },
	{ "M", 868000000, 868600000, 10000 },
	{ "N", 868700000, 869200000, 1000 },
	{ "P", 869400000, 869650000, 100000 },
	{ "Q", 869700000, 870000000, 10000 }
};

static int
lm_band(const struct lsim *ls, const struct lm_cfg *c)
{
	uint32_t	 half = (uint32_t)c->bw * 500;
	unsigned int	 i;

	for (i = 0; i < ls->nbands; i++)
		if (c->freq >= half && c->freq - half >= ls->bands[i].lo &&
		    c->freq + half <= ls->bands[i].hi)
			return ((int)i);
	return (-1);
}

/* ------------------------------------------------------------------ */
/* Time on air (Semtech SX1272/3 4.1.1.7; SX1261/2 6.1.4)               */

static uint64_t
lm_tsym_ns(const struct lm_cfg *c)
{
	return (((uint64_t)1 << c->sf) * 1000000ULL / c->bw);
}

/* RUI3 P2P: explicit header, CRC on, LDRO when a symbol tops 16 ms. */
static uint64_t
lm_toa_ns(const struct lm_cfg *c, size_t len, uint16_t pre)
{
	uint64_t	 tsym = lm_tsym_ns(c);
	int		 de = tsym > 16000000ULL;
	long		 num, den, nsym = 0;

	num = 8 * (long)len - 4 * c->sf + 28 + 16;
	den = 4 * (c->sf - 2 * de);
	if (num > 0)
		nsym = (num + den - 1) / den * (c->cr + 1 + 4);
	nsym += 8;
	return ((4 * (uint64_t)pre + 17 + 4 * (uint64_t)nsym) * tsym / 4);
}

static uint32_t
lm_channel(const struct lm_cfg *c)
{
	unsigned int	 bwi = c->bw == 125 ? 0 : c->bw == 250 ? 1 : 2;

	return ((c->freq / 1000) * 64 + (uint32_t)(c->sf - 5) * 4 + bwi);
}

/* ------------------------------------------------------------------ */
/* Options                                                              */

static const struct sim_opt lora_options[] = {
	{ "region", "eu868", "duty-cycle sub-bands: eu868 or none" },
	{ "freq", "869525000", "every modem's frequency at power-up, Hz" },
	{ "sf", "7", "spreading factor at power-up" },
	{ "bw", "125", "bandwidth at power-up, kHz" },
	{ NULL, NULL, NULL }
};

static const struct sim_opt lora_ep_options[] = {
	{ "rssi", "-80", "RSSI of what this radio receives, dBm" },
	{ "snr", "9", "SNR of what this radio receives, dB" },
	{ "duty", "on", "the modem enforces its sub-band's duty cycle" },
	{ "mode", "p2p", "work mode at power-up: p2p or lorawan" },
	{ NULL, NULL, NULL }
};

static struct lmodem *
lm_of(struct sim *sim, const struct sim_ep *ep)
{
	struct lsim	*ls = sim_priv(sim);

	return (&ls->m[ep->idx]);
}

static int
lm_cause(char **cause, const char *fmt, ...)
    __attribute__((__format__(__printf__, 2, 3)));

static int
lm_cause(char **cause, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
	return (-1);
}

static int
lm_int(const char *s, long lo, long hi, long *v)
{
	char	*end;

	if (s == NULL || *s == '\0')
		return (-1);
	*v = strtol(s, &end, 10);
	if (*end != '\0' || *v < lo || *v > hi)
		return (-1);
	return (0);
}

/* ------------------------------------------------------------------ */
/* The modem's UART towards its program                                 */

static void
lm_say(struct lmodem *m, const char *s)
{
	char	 buf[LM_LINE_MAX + 64];
	size_t	 n;

	n = (size_t)snprintf(buf, sizeof(buf), "%s\r\n", s);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (m->truncate_next) {
		/* Half a line, then the end of line a reset would give. */
		m->truncate_next = false;
		n = n > 4 ? (n - 2) / 2 : 1;
		buf[n++] = '\r';
		buf[n++] = '\n';
	}
	sim_line_send(m->ep, (const uint8_t *)buf, n);
}

/* ------------------------------------------------------------------ */
/* Receive mode                                                         */

static bool
lm_listening(const struct lmodem *m)
{
	return (m->p2p && !m->booting && m->rx != LM_RX_OFF);
}

static void
lm_hist(struct lmodem *m, uint64_t t)
{
	bool	 on = lm_listening(m);

	if (m->hist_n > 0 && m->hist[m->hist_n - 1].on == on)
		return;
	if (m->hist_n == LM_HIST) {
		memmove(m->hist, m->hist + 1, (LM_HIST - 1) *
		    sizeof(m->hist[0]));
		m->hist_n--;
	}
	m->hist[m->hist_n].t = t;
	m->hist[m->hist_n].on = on;
	m->hist_n++;
}

static void
lm_set_rx(struct sim *sim, struct lmodem *m, enum lm_rx rx, uint64_t until)
{
	m->rx = rx;
	m->rx_until = until;
	evtimer_del(m->ev_rxto);
	if (rx == LM_RX_TIMED)
		sim_timer_at(sim, m->ev_rxto, until);
	lm_hist(m, sim_now(sim));
}

/* Did it listen at some moment of [a, b]? */
static bool
lm_listened(const struct lmodem *m, uint64_t a, uint64_t b)
{
	unsigned int	 i;
	bool		 on = false;

	/* The state at a: the last transition at or before it. */
	for (i = 0; i < m->hist_n && m->hist[i].t <= a; i++)
		on = m->hist[i].on;
	if (on)
		return (true);
	for (; i < m->hist_n && m->hist[i].t <= b; i++)
		if (m->hist[i].on)
			return (true);
	return (false);
}

static void
lm_rxto_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lmodem	*m = arg;
	struct sim	*sim = m->ep->sim;

	if (m->rx != LM_RX_TIMED)
		return;
	lm_set_rx(sim, m, LM_RX_OFF, 0);
	lm_say(m, "+EVT:RXP2P RECEIVE TIMEOUT");
}

/* ------------------------------------------------------------------ */
/* Boot                                                                 */

static void
lm_boot_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lmodem	*m = arg;

	m->booting = false;
	lm_say(m, "");
	lm_say(m, "LoRa (R) is a registered trademark or service mark of "
	    "Semtech Corporation or its affiliates. LoRaWAN (R) is a "
	    "licensed mark.");
	lm_say(m, "RAK3172 Version:upsim-rui3-model");
	lm_say(m, m->p2p ? "Current Work Mode: LoRa P2P." :
	    "Current Work Mode: LoRaWAN.");
	lm_hist(m, sim_now(m->ep->sim));
}

/* The module restarts: RAM state is lost, flash settings kept. */
static void
lm_reboot(struct sim *sim, struct lmodem *m)
{
	m->booting = true;
	m->len = 0;
	m->line_bad = m->line_long = false;
	m->echo = false;
	m->sending = false;
	m->silent = false;
	m->busy_n = m->error_n = 0;
	lm_set_rx(sim, m, LM_RX_OFF, 0);
	sim_timer_at(sim, m->ev_boot, sim_now(sim) + LM_BOOT_NS);
}

/* ------------------------------------------------------------------ */
/* The regulator                                                        */

/* Airtime of band `band' on the air within [a, b]. */
static uint64_t
lm_spent(const struct lmodem *m, int band, uint64_t a, uint64_t b)
{
	const struct lm_spend *s;
	uint64_t	 sum = 0, x, y;
	unsigned int	 i;

	for (i = 0; i < m->led_n; i++) {
		s = &m->ledger[(m->led_head + m->led_n - 1 - i) % LM_LEDGER];
		if (s->b <= a)
			break;		/* older ones end earlier still */
		if (s->band != band)
			continue;
		x = s->a > a ? s->a : a;
		y = s->b < b ? s->b : b;
		if (y > x)
			sum += y - x;
	}
	return (sum);
}

/*
 * Would a frame of `air' ns starting now keep the band within its duty
 * cycle over the hour that ends with it?
 */
static bool
lm_duty_ok(struct sim *sim, struct lmodem *m, uint64_t air)
{
	struct lsim	*ls = sim_priv(sim);
	uint64_t	 now = sim_now(sim), end = now + air, from;
	int		 band;

	if (!m->duty || (band = lm_band(ls, &m->cfg)) < 0)
		return (true);
	from = end > LM_WINDOW_NS ? end - LM_WINDOW_NS : 0;
	return ((lm_spent(m, band, from, now) + air) * 1000000ULL <=
	    (uint64_t)ls->bands[band].ppm * LM_WINDOW_NS);
}

static void
lm_spend(struct sim *sim, struct lmodem *m, uint64_t a, uint64_t b)
{
	struct lsim	*ls = sim_priv(sim);
	struct lm_spend	*s;

	if (m->led_n == LM_LEDGER) {
		m->led_head = (m->led_head + 1) % LM_LEDGER;
		m->led_n--;
	}
	s = &m->ledger[(m->led_head + m->led_n) % LM_LEDGER];
	s->a = a;
	s->b = b;
	s->band = (int8_t)lm_band(ls, &m->cfg);
	m->led_n++;
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */

static bool
lm_cfg_ok(const struct lm_cfg *c)
{
	return (c->freq >= 150000000 && c->freq <= 960000000 &&
	    c->sf >= 5 && c->sf <= 12 &&
	    (c->bw == 125 || c->bw == 250 || c->bw == 500) && c->cr <= 3 &&
	    c->pre >= 5 && c->pow >= 5 && c->pow <= 22);
}

/* AT+P2P=f:sf:bw:cr:pre:pow */
static int
lm_parse_p2p(const char *s, struct lm_cfg *c)
{
	long		 v[6];
	char		 buf[80], *p, *q, *save = NULL;
	int		 i = 0;

	if (strlen(s) >= sizeof(buf))
		return (-1);
	snprintf(buf, sizeof(buf), "%s", s);
	for (p = buf; i < 6; p = NULL, i++) {
		if ((q = strtok_r(p, ":", &save)) == NULL ||
		    lm_int(q, -1000000000L, 1000000000L, &v[i]) == -1)
			return (-1);
	}
	if (strtok_r(NULL, ":", &save) != NULL)
		return (-1);
	c->freq = (uint32_t)v[0];
	c->sf = (uint8_t)v[1];
	c->bw = (uint16_t)v[2];
	c->cr = (uint8_t)v[3];
	c->pre = (uint16_t)(v[4] > 65535 ? 0 : v[4]);
	c->pow = (int8_t)(v[5] > 127 || v[5] < -128 ? 0 : v[5]);
	if (v[1] < 0 || v[1] > 12 || v[2] < 0 || v[3] < 0 || v[4] < 0)
		return (-1);
	return (lm_cfg_ok(c) ? 0 : -1);
}

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

static void
lm_send(struct sim *sim, struct lmodem *m, const char *hex)
{
	uint8_t		 b[LM_PAYLOAD_MAX];
	size_t		 n = strlen(hex), i;
	uint64_t	 air;

	if (n < 2 || n > 2 * LM_PAYLOAD_MAX || n % 2 != 0) {
		lm_say(m, "AT_PARAM_ERROR");
		return;
	}
	for (i = 0; i < n; i += 2) {
		if (hexval(hex[i]) < 0 || hexval(hex[i + 1]) < 0) {
			lm_say(m, "AT_PARAM_ERROR");
			return;
		}
		b[i / 2] = (uint8_t)(hexval(hex[i]) << 4 | hexval(hex[i + 1]));
	}
	if (m->sending || (m->rx != LM_RX_OFF && m->rx != LM_RX_CONT_TX)) {
		m->refused_busy++;
		lm_say(m, "AT_BUSY_ERROR");
		return;
	}
	air = lm_toa_ns(&m->cfg, n / 2, m->cfg.pre);
	if (!lm_duty_ok(sim, m, air)) {
		m->refused_duty++;
		sim_debug(sim, "%s: duty cycle: %zu-byte frame refused",
		    m->ep->name, n / 2);
		lm_say(m, "AT_DUTYCYLE_RESTRICTED");
		return;
	}
	lm_say(m, "OK");
	m->sending = true;
	lm_spend(sim, m, sim_now(sim), sim_now(sim) + air);
	sim_frame_send(sim, m->ep, lm_channel(&m->cfg), b, n / 2);
}

/* One setting of AT+PFREQ, PSF, PBW, PCR, PPL, PTP. */
static bool
lm_setting(struct lmodem *m, const char *name, const char *arg)
{
	static const struct {
		const char	*name;
		long		 lo, hi;
	} set[] = {
		{ "PFREQ", 150000000, 960000000 }, { "PSF", 5, 12 },
		{ "PBW", 125, 500 }, { "PCR", 0, 3 }, { "PPL", 5, 65535 },
		{ "PTP", 5, 22 }
	};
	char		 out[64];
	struct lm_cfg	 c = m->cfg;
	long		 v, cur[6];
	size_t		 i;

	for (i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		if (strcmp(name, set[i].name) == 0)
			break;
	if (i == sizeof(set) / sizeof(set[0]))
		return (false);
	cur[0] = c.freq; cur[1] = c.sf; cur[2] = c.bw; cur[3] = c.cr;
	cur[4] = c.pre; cur[5] = c.pow;
	if (strcmp(arg, "?") == 0) {
		snprintf(out, sizeof(out), "AT+%s=%ld", name, cur[i]);
		lm_say(m, out);
		lm_say(m, "OK");
		return (true);
	}
	if (lm_int(arg, set[i].lo, set[i].hi, &v) == -1) {
		lm_say(m, "AT_PARAM_ERROR");
		return (true);
	}
	switch (i) {
	case 0: c.freq = (uint32_t)v; break;
	case 1: c.sf = (uint8_t)v; break;
	case 2: c.bw = (uint16_t)v; break;
	case 3: c.cr = (uint8_t)v; break;
	case 4: c.pre = (uint16_t)v; break;
	case 5: c.pow = (int8_t)v; break;
	}
	if (!lm_cfg_ok(&c)) {
		lm_say(m, "AT_PARAM_ERROR");
		return (true);
	}
	if (m->rx != LM_RX_OFF && i != 4) {
		/* The radio is receiving: no new channel now. */
		lm_say(m, "AT_BUSY_ERROR");
		return (true);
	}
	m->cfg = c;
	lm_say(m, "OK");
	return (true);
}

static void
lm_command(struct sim *sim, struct lmodem *m, char *cmd)
{
	char		 out[96];
	struct lm_cfg	 c;
	char		*eq, *name;
	long		 v;

	m->cmds++;
	if (m->echo)
		lm_say(m, cmd);
	if (m->busy_n > 0) {
		m->busy_n--;
		lm_say(m, "AT_BUSY_ERROR");
		return;
	}
	if (m->error_n > 0) {
		m->error_n--;
		lm_say(m, "AT_ERROR");
		return;
	}
	if (strcasecmp(cmd, "AT") == 0) {
		lm_say(m, "OK");
		return;
	}
	if (strcasecmp(cmd, "ATE") == 0) {
		m->echo = !m->echo;
		lm_say(m, "OK");
		return;
	}
	if (strcasecmp(cmd, "ATZ") == 0) {
		lm_reboot(sim, m);
		return;
	}
	if (strncasecmp(cmd, "AT+", 3) != 0) {
		m->cmds_bad++;
		lm_say(m, "AT_COMMAND_NOT_FOUND");
		return;
	}
	name = cmd + 3;
	if ((eq = strchr(name, '=')) == NULL) {
		m->cmds_bad++;
		lm_say(m, strcmp(name, "VER?") == 0 ? "OK" : "AT_ERROR");
		return;
	}
	*eq++ = '\0';
	if (strcmp(name, "NWM") == 0) {
		if (strcmp(eq, "?") == 0) {
			lm_say(m, m->p2p ? "AT+NWM=0" : "AT+NWM=1");
			lm_say(m, "OK");
		} else if (strcmp(eq, "0") == 0 || strcmp(eq, "1") == 0) {
			/* A new work mode restarts the module. */
			lm_say(m, "OK");
			m->p2p = eq[0] == '0';
			lm_reboot(sim, m);
		} else
			lm_say(m, "AT_PARAM_ERROR");
		return;
	}
	if (strcmp(name, "VER") == 0 && strcmp(eq, "?") == 0) {
		lm_say(m, "AT+VER=upsim-rui3-model");
		lm_say(m, "OK");
		return;
	}
	if (!m->p2p) {
		/* The P2P commands answer this in LoRaWAN mode. */
		lm_say(m, "AT_MODE_NO_SUPPORT");
		return;
	}
	if (strcmp(name, "P2P") == 0) {
		if (strcmp(eq, "?") == 0) {
			snprintf(out, sizeof(out), "AT+P2P=%u:%u:%u:%u:%u:%d",
			    m->cfg.freq, m->cfg.sf, m->cfg.bw, m->cfg.cr,
			    m->cfg.pre, m->cfg.pow);
			lm_say(m, out);
			lm_say(m, "OK");
		} else if (lm_parse_p2p(eq, &c) == -1)
			lm_say(m, "AT_PARAM_ERROR");
		else if (m->rx != LM_RX_OFF)
			lm_say(m, "AT_BUSY_ERROR");
		else {
			m->cfg = c;
			lm_say(m, "OK");
		}
		return;
	}
	if (strcmp(name, "PRECV") == 0) {
		if (strcmp(eq, "?") == 0) {
			lm_say(m, "AT_PARAM_ERROR");
			return;
		}
		if (lm_int(eq, 0, 65535, &v) == -1) {
			lm_say(m, "AT_PARAM_ERROR");
			return;
		}
		if (v != 0 && m->rx == LM_RX_CONT) {
			/* 65534 holds until AT+PRECV=0. */
			lm_say(m, "AT_BUSY_ERROR");
			return;
		}
		lm_say(m, "OK");
		if (v == 0)
			lm_set_rx(sim, m, LM_RX_OFF, 0);
		else if (v == LM_LISTEN)
			lm_set_rx(sim, m, LM_RX_CONT_TX, 0);
		else if (v == 65534)
			lm_set_rx(sim, m, LM_RX_CONT, 0);
		else if (v == 65535)
			lm_set_rx(sim, m, LM_RX_ONCE, 0);
		else
			lm_set_rx(sim, m, LM_RX_TIMED, sim_now(sim) +
			    (uint64_t)v * SIM_NS_PER_MS);
		return;
	}
	if (strcmp(name, "PSEND") == 0) {
		lm_send(sim, m, eq);
		return;
	}
	if (lm_setting(m, name, eq))
		return;
	m->cmds_bad++;
	lm_say(m, "AT_COMMAND_NOT_FOUND");
}

/* ------------------------------------------------------------------ */
/* The personality                                                      */

static int
lora_init(struct sim *sim, char **cause)
{
	const struct sim_conf *conf = sim_conf(sim);
	struct lsim	*ls;
	struct lmodem	*m;
	struct sim_ep	*ep;
	struct lm_cfg	 c;
	const char	*s;
	long		 v;
	unsigned int	 i;

	memset(&c, 0, sizeof(c));
	if (lm_int(sim_opt(sim, "freq"), 150000000, 960000000, &v) == -1)
		return (lm_cause(cause, "lora: freq: %s",
		    sim_opt(sim, "freq")));
	c.freq = (uint32_t)v;
	if (lm_int(sim_opt(sim, "sf"), 5, 12, &v) == -1)
		return (lm_cause(cause, "lora: sf: 5 to 12: %s",
		    sim_opt(sim, "sf")));
	c.sf = (uint8_t)v;
	if (lm_int(sim_opt(sim, "bw"), 125, 500, &v) == -1 ||
	    (v != 125 && v != 250 && v != 500))
		return (lm_cause(cause, "lora: bw: 125, 250 or 500: %s",
		    sim_opt(sim, "bw")));
	c.bw = (uint16_t)v;
	c.cr = 0;
	c.pre = 8;
	c.pow = 14;
	if ((ls = calloc(1, sizeof(*ls))) == NULL ||
	    (ls->m = calloc(sim_nep(sim) ? sim_nep(sim) : 1,
	    sizeof(*ls->m))) == NULL) {
		free(ls);
		*cause = strdup("lora: out of memory");
		return (-1);
	}
	sim_set_priv(sim, ls);
	s = sim_opt(sim, "region");
	if (strcmp(s, "eu868") == 0) {
		ls->bands = eu868;
		ls->nbands = sizeof(eu868) / sizeof(eu868[0]);
	} else if (strcmp(s, "none") != 0)
		return (lm_cause(cause, "lora: region: eu868 or none: %s", s));
	for (i = 0; i < sim_nep(sim); i++) {
		ep = sim_ep(sim, i);
		m = &ls->m[i];
		m->ep = ep;
		/* The modem's UART is the medium's line format. */
		ep->fmt = conf->fmt;
		m->cfg = c;
		m->p2p = true;
		if (lm_int(sim_ep_opt(ep, "rssi"), -200, 0, &v) == -1)
			return (lm_cause(cause, "lora: rssi: -200 to 0: %s",
			    sim_ep_opt(ep, "rssi")));
		m->rssi = (int)v;
		if (lm_int(sim_ep_opt(ep, "snr"), -30, 30, &v) == -1)
			return (lm_cause(cause, "lora: snr: -30 to 30: %s",
			    sim_ep_opt(ep, "snr")));
		m->snr = (int)v;
		s = sim_ep_opt(ep, "duty");
		if (strcmp(s, "on") == 0 || strcmp(s, "yes") == 0)
			m->duty = true;
		else if (strcmp(s, "off") != 0 && strcmp(s, "no") != 0)
			return (lm_cause(cause, "lora: duty: on or off: %s",
			    s));
		s = sim_ep_opt(ep, "mode");
		if (strcmp(s, "lorawan") == 0)
			m->p2p = false;
		else if (strcmp(s, "p2p") != 0)
			return (lm_cause(cause, "lora: mode: p2p or lorawan: "
			    "%s", s));
		m->ev_rxto = evtimer_new(sim_base(sim), lm_rxto_cb, m);
		m->ev_boot = evtimer_new(sim_base(sim), lm_boot_cb, m);
		m->ledger = calloc(LM_LEDGER, sizeof(*m->ledger));
		if (m->ev_rxto == NULL || m->ev_boot == NULL ||
		    m->ledger == NULL) {
			*cause = strdup("lora: out of memory");
			return (-1);
		}
		lm_hist(m, 0);
	}
	return (0);
}

static void
lora_fini(struct sim *sim)
{
	struct lsim	*ls = sim_priv(sim);
	unsigned int	 i;

	if (ls == NULL)
		return;
	for (i = 0; i < sim_nep(sim) && ls->m != NULL; i++) {
		if (ls->m[i].ev_rxto != NULL)
			event_free(ls->m[i].ev_rxto);
		if (ls->m[i].ev_boot != NULL)
			event_free(ls->m[i].ev_boot);
		free(ls->m[i].ledger);
	}
	free(ls->m);
	free(ls);
	sim_set_priv(sim, NULL);
}

/* Characters from the program, decoded by the modem's UART. */
static void
lora_line_rx(struct sim *sim, struct sim_ep *ep, const uint8_t *b,
    const uint8_t *err, size_t n, const struct sim_fmt *fmt,
    uint64_t t_first, uint64_t unit_ns)
{
	struct lmodem	*m = lm_of(sim, ep);
	size_t		 i;

	for (i = 0; i < n; i++) {
		if (m->booting || m->silent)
			continue;	/* a deaf or hung module */
		if (b[i] == '\r' || b[i] == '\n') {
			if (m->len == 0 && !m->line_bad && !m->line_long)
				continue;
			m->line[m->len] = '\0';
			if (m->line_long) {
				m->cmds_bad++;
				lm_say(m, "AT_TEST_PARAM_OVERFLOW");
			} else if (m->line_bad) {
				/* A character with a parity or framing
				 * error: the command was not understood. */
				m->cmds_bad++;
				lm_say(m, "AT_RX_ERROR");
			} else
				lm_command(sim, m, m->line);
			m->len = 0;
			m->line_bad = m->line_long = false;
			continue;
		}
		if (err[i] != 0 || b[i] < 0x20 || b[i] > 0x7e)
			m->line_bad = true;
		if (m->len >= LM_LINE_MAX)
			m->line_long = true;
		else
			m->line[m->len++] = (char)b[i];
	}
}

static void
lora_deliver(struct sim *sim, struct sim_ep *rx, const struct sim_tx *tx,
    size_t off, size_t n, enum sim_rx_status status, uint64_t at)
{
	struct lmodem	*m = lm_of(sim, rx);
	struct lmodem	*src = lm_of(sim, tx->src);
	char		 line[LM_LINE_MAX + 64];
	uint64_t	 lock, pre_end;
	size_t		 i, k;
	int		 rssi, snr;

	if (status != SIM_RX_OK && status != SIM_RX_COLLIDED)
		return;		/* not detected at all */
	if (!m->p2p || m->booting || lm_channel(&m->cfg) != tx->channel)
		return;
	/*
	 * Caught if it listened during the preamble, up to two symbols
	 * before its end: the preamble is what the frame's time on air has
	 * beyond a frame with none.
	 */
	pre_end = tx->t_end - lm_toa_ns(&src->cfg, tx->len, 0);
	lock = pre_end > tx->t_start + 2 * lm_tsym_ns(&src->cfg) ?
	    pre_end - 2 * lm_tsym_ns(&src->cfg) : tx->t_start;
	if (!lm_listened(m, tx->t_start, lock)) {
		m->rx_asleep++;
		return;
	}
	if (status == SIM_RX_COLLIDED) {
		/* Header heard, payload damaged: its CRC fails. */
		m->rx_crc++;
		lm_say(m, "+EVT:RXP2P RECEIVE ERROR");
	} else {
		/* The link budget, with a little jitter. */
		rssi = m->rssi + (int)(sim_rand(rx) % 3) - 1;
		snr = m->snr + (int)(sim_rand(rx) % 3) - 1;
		k = (size_t)snprintf(line, sizeof(line), "+EVT:RXP2P:%d:%d:",
		    rssi, snr);
		for (i = 0; i < tx->len && k + 3 < sizeof(line); i++)
			k += (size_t)snprintf(line + k, sizeof(line) - k,
			    "%02X", tx->buf[i]);
		m->rx_events++;
		lm_say(m, line);
	}
	if (m->rx == LM_RX_ONCE || m->rx == LM_RX_TIMED)
		lm_set_rx(sim, m, LM_RX_OFF, 0);
}

static uint64_t
lora_airtime(struct sim *sim, const struct sim_ep *src, size_t len)
{
	struct lmodem	*m = lm_of(sim, src);

	return (lm_toa_ns(&m->cfg, len, m->cfg.pre));
}

/* Only radios tuned to the transmission's channel hear it at all. */
static bool
lora_hears(struct sim *sim, const struct sim_ep *rx, const struct sim_tx *tx)
{
	struct lmodem	*m = lm_of(sim, rx);

	return (m->p2p && lm_channel(&m->cfg) == tx->channel);
}

static void
lora_tx_done(struct sim *sim, const struct sim_tx *tx)
{
	struct lmodem	*m = lm_of(sim, tx->src);

	if (tx->cut || !m->sending)
		return;		/* reset on the air: no TX DONE */
	m->sending = false;
	m->tx_done++;
	lm_say(m, "+EVT:TXP2P DONE");
}

static void
lora_reset(struct sim *sim, struct sim_ep *ep)
{
	lm_reboot(sim, lm_of(sim, ep));
}

static int
lora_command(struct sim *sim, int argc, char **argv, char **cause)
{
	struct sim_ep	*ep;
	struct lmodem	*m;
	long		 v;
	char		 junk[48];
	size_t		 i;

	if (strcmp(argv[0], "garble") != 0 && strcmp(argv[0], "truncate") &&
	    strcmp(argv[0], "silence") != 0 && strcmp(argv[0], "busy") != 0 &&
	    strcmp(argv[0], "error") != 0)
		return (1);
	if (argc < 2 || (ep = sim_ep_find(sim, argv[1])) == NULL) {
		*cause = strdup("usage: garble|truncate EP, silence EP on|off, "
		    "busy|error EP N");
		return (-1);
	}
	m = lm_of(sim, ep);
	if (strcmp(argv[0], "garble") == 0 && argc == 2) {
		/* Noise on the UART: bytes that are not text. */
		for (i = 0; i < sizeof(junk) - 2; i++)
			junk[i] = (char)(sim_rand(ep) & 0xff);
		junk[i++] = '\r';
		junk[i++] = '\n';
		sim_line_send(ep, (const uint8_t *)junk, i);
		return (0);
	}
	if (strcmp(argv[0], "truncate") == 0 && argc == 2) {
		m->truncate_next = true;
		return (0);
	}
	if (strcmp(argv[0], "silence") == 0 && argc == 3 &&
	    (strcmp(argv[2], "on") == 0 || strcmp(argv[2], "off") == 0)) {
		m->silent = argv[2][1] == 'n';
		return (0);
	}
	if ((strcmp(argv[0], "busy") == 0 || strcmp(argv[0], "error") == 0) &&
	    argc == 3 && lm_int(argv[2], 0, 1000, &v) == 0) {
		if (argv[0][0] == 'b')
			m->busy_n = (unsigned int)v;
		else
			m->error_n = (unsigned int)v;
		return (0);
	}
	*cause = strdup("usage: garble|truncate EP, silence EP on|off, "
	    "busy|error EP N");
	return (-1);
}

static void
lora_status(struct sim *sim, struct sim_ep *ep, FILE *f)
{
	struct lsim	*ls = sim_priv(sim);
	struct lmodem	*m = lm_of(sim, ep);
	uint64_t	 now = sim_now(sim);
	int		 band = lm_band(ls, &m->cfg);
	static const char *const rx[] = { "off", "continuous", "continuous-rx",
			    "once", "window" };

	fprintf(f, ", \"modem\": {\"mode\": \"%s\", \"freq\": %u, \"sf\": %u, "
	    "\"bw\": %u, \"cr\": %u, \"preamble\": %u, \"power\": %d, "
	    "\"rx\": \"%s\", \"booting\": %s, \"band\": \"%s\", "
	    "\"duty_ppm\": %u, \"duty_used_us\": %llu, \"cmds\": %llu, "
	    "\"cmds_bad\": %llu, \"refused_duty\": %llu, "
	    "\"refused_busy\": %llu, \"tx_done\": %llu, "
	    "\"rx_events\": %llu, \"rx_asleep\": %llu, \"rx_crc\": %llu}",
	    m->p2p ? "p2p" : "lorawan", m->cfg.freq, m->cfg.sf, m->cfg.bw,
	    m->cfg.cr, m->cfg.pre, m->cfg.pow, rx[m->rx],
	    m->booting ? "true" : "false", band >= 0 ? ls->bands[band].name :
	    "none", band >= 0 ? ls->bands[band].ppm : 0,
	    band >= 0 ? (unsigned long long)(lm_spent(m, band,
	    now > LM_WINDOW_NS ? now - LM_WINDOW_NS : 0, now) / 1000) : 0ULL,
	    (unsigned long long)m->cmds, (unsigned long long)m->cmds_bad,
	    (unsigned long long)m->refused_duty,
	    (unsigned long long)m->refused_busy,
	    (unsigned long long)m->tx_done,
	    (unsigned long long)m->rx_events,
	    (unsigned long long)m->rx_asleep, (unsigned long long)m->rx_crc);
}

const struct sim_personality sim_lora = {
	.name = "lora",
	.help = "LoRa air with RUI3 AT modems (P2P): time on air, "
	    "collisions, half-duplex, receive windows, duty cycle",
	.options = lora_options,
	.ep_options = lora_ep_options,
	.flags = 0,
	.init = lora_init,
	.fini = lora_fini,
	.line_rx = lora_line_rx,
	.deliver = lora_deliver,
	.airtime_ns = lora_airtime,
	.hears = lora_hears,
	.tx_done = lora_tx_done,
	.reset = lora_reset,
	.command = lora_command,
	.status = lora_status
};
