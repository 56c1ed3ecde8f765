/*
 * lora_internal.h: what the files of the "lora" transport share
 * (transports/lora/, docs/transports/lora.md).
 *
 *  - lora_phy.c: the radio's arithmetic: Semtech's time on air, the
 *    largest frame a data rate carries, the nominal bit rate, and the
 *    EU868 sub-bands with their duty-cycle budgets (ETSI EN 300 220-2).
 *    Pure code.
 *  - lora_at.c: the UART's side of an AT modem: a bounded line
 *    assembler, hex, strict integers.  Pure code.
 *  - lora_rui3.c: one AT dialect (RAKwireless RUI3, LoRa P2P) behind
 *    struct lora_dialect: the commands the driver sends and what each
 *    received line means.  A second module family is one more file with
 *    one more struct lora_dialect.
 *  - tp_lora.c: the plugin: termios, the modem's state machine, the
 *    transmit queue, faults, capabilities.
 *
 * Nothing outside transports/ (and its unit tests) includes this header.
 */
#ifndef LORA_INTERNAL_H
#define LORA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* lora_phy.c: the radio's arithmetic                                  */

/* LoRa modulation and packet settings of one radio. */
struct lora_phy {
	uint32_t	 freq_hz;
	uint8_t		 sf;		/* spreading factor, 7 to 12 */
	uint16_t	 bw_khz;	/* 125, 250 or 500 */
	uint8_t		 cr;		/* coding rate 4/(4 + cr), cr 1 to 4 */
	uint16_t	 preamble;	/* programmed preamble, symbols, 5.. */
	int8_t		 power_dbm;
	bool		 crc;		/* payload CRC-16 on */
	bool		 implicit;	/* implicit header (no PHY header) */
	int8_t		 ldro;		/* low data rate optimisation:
					 * -1 auto (Tsym > 16 ms), 0, 1 */
};

#define LORA_SF_MIN		7
#define LORA_SF_MAX		12
#define LORA_PHY_MAX		255	/* a LoRa PHY payload, bytes */

/* Symbol time, ns (exact for 125, 250 and 500 kHz). */
uint64_t	 lora_tsym_ns(const struct lora_phy *);
/* 1 when low data rate optimisation is on for these settings. */
int		 lora_ldro(const struct lora_phy *);
/*
 * Time on air of a frame of `len' payload bytes sent with `preamble'
 * symbols of preamble (0: the phy's own), ns, by Semtech's formula
 * (SX1272/3 datasheet 4.1.1.7, SX1261/2 datasheet 6.1.4 for SF7-12):
 *   Tsym = 2^SF / BW
 *   Tpreamble = (Npreamble + 4.25) Tsym
 *   Npayload = 8 + max(ceil((8 PL - 4 SF + 28 + 16 CRC - 20 IH) /
 *                           (4 (SF - 2 DE))) (CR + 4), 0)
 * Exact: every term is a whole number of quarter symbols.
 */
uint64_t	 lora_toa_ns(const struct lora_phy *, size_t len,
		    uint32_t preamble);
/* Preamble symbols that last at least `ms' (capped at 65535). */
uint32_t	 lora_preamble_for_ms(const struct lora_phy *, uint32_t ms);
/*
 * Largest frame of the data rate: the EU868 payload limits of LoRaWAN's
 * regional parameters (RP002-1.0.3, N = 51 for DR0-2, 115 for DR3, 222
 * for DR4-6), which keep a frame's time on air near 2.5 s at most: by
 * symbol time, 51 bytes when Tsym >= 8.192 ms (SF10-12 at 125 kHz), 115
 * at 4.096 ms (SF9/125), 222 below.
 */
uint32_t	 lora_mtu(const struct lora_phy *);
/* The nominal bit rate, SF * BW / 2^SF * 4 / (4 + CR), bit/s. */
uint64_t	 lora_bitrate(const struct lora_phy *);
/*
 * Checks the settings (ranges, a bandwidth the radio has).  NULL when
 * good, else a static reason.
 */
const char	*lora_phy_check(const struct lora_phy *);

/*
 * Regulated sub-bands.  A region is a table of bands; a channel (its
 * centre frequency +- half its bandwidth) must lie inside one of them.
 */
struct lora_band {
	const char	*name;		/* "h1.4" (ETSI's table) */
	uint32_t	 lo_hz;
	uint32_t	 hi_hz;
	uint32_t	 duty_ppm;	/* 1000 = 0.1 %, 10000 = 1 % */
};
#define LORA_DUTY_WINDOW_MS	3600000	/* ETSI: one hour of observation */

struct lora_region {
	const char		*name;	/* "eu868", "none" */
	unsigned int		 nbands;
	const struct lora_band	*bands;
};
/* The region called `name', or NULL. */
const struct lora_region *lora_region_find(const char *name);
/*
 * The band of `region' the channel of `phy' lies in, or -1 when it
 * straddles a band edge or lies outside every band (a region with no
 * bands, "none", has none: -1 too).
 */
int		 lora_region_band(const struct lora_region *,
		    const struct lora_phy *);

/* ------------------------------------------------------------------ */
/* lora_at.c: AT lines, hex, integers                                  */

/*
 * A bounded line assembler.  Bytes from the UART go in; whole lines
 * come out, without their CR LF, NUL-terminated, one at a time.  A line
 * longer than the buffer is dropped whole (up to its end of line) and
 * reported once as overlong; a NUL byte or a byte above 0x7e (noise on
 * the line, a UART at the wrong rate) marks the line as garbled.
 */
#define LORA_LINE_MAX		640	/* "+EVT:RXP2P:-120:-20:" + 510 hex */
struct lora_lines {
	char		 buf[LORA_LINE_MAX + 1];
	size_t		 len;
	bool		 overlong;	/* dropping until the end of line */
	bool		 garbled;	/* a byte of the line was not text */
	uint64_t	 n_overlong;
	uint64_t	 n_garbled;
};
enum lora_line_st {
	LORA_LINE_NONE = 0,	/* need more bytes */
	LORA_LINE_OK,		/* *line is a whole line */
	LORA_LINE_OVERLONG,	/* a line was too long and was dropped */
	LORA_LINE_GARBLED	/* *line held bytes that are not text */
};
void		 lora_lines_reset(struct lora_lines *);
/*
 * Feeds bytes [*off, n) of `b'; stops at the first event and advances
 * *off past what it consumed.  *line (valid until the next call) is set
 * for LORA_LINE_OK and LORA_LINE_GARBLED.  Empty lines are skipped.
 */
enum lora_line_st lora_lines_feed(struct lora_lines *, const uint8_t *b,
		    size_t n, size_t *off, const char **line);

/* Upper-case hex of `len' bytes into out[cap]; returns its length or -1. */
int		 lora_hex_encode(const uint8_t *, size_t len, char *out,
		    size_t cap);
/*
 * Decodes `n' hex digits (either case) into out[cap].  Returns the byte
 * count, or -1 with *why set: odd length, not a hex digit, too long.
 */
int		 lora_hex_decode(const char *, size_t n, uint8_t *out,
		    size_t cap, const char **why);
/*
 * A decimal integer in [min, max]: an optional '-' and 1 to 10 digits,
 * nothing else in [s, s + n).  0 or -1.
 */
int		 lora_parse_int(const char *s, size_t n, long min, long max,
		    long *v);

/* ------------------------------------------------------------------ */
/* The AT dialect of a module family (lora_rui3.c)                     */

/* What a line from the modem means. */
enum lora_ev_type {
	LORA_EV_IGNORE = 0,	/* blank, banner text, an echo */
	LORA_EV_OK,		/* the command succeeded */
	LORA_EV_ERROR,		/* the command failed (err says why) */
	LORA_EV_VALUE,		/* a query's answer, before its OK */
	LORA_EV_TX_DONE,	/* the frame being sent left the radio */
	LORA_EV_RX,		/* a frame arrived */
	LORA_EV_RX_ERROR,	/* a frame arrived damaged (CRC) */
	LORA_EV_RX_END,		/* the receiver stopped listening */
	LORA_EV_BOOT,		/* the modem (re)started */
	LORA_EV_BAD		/* not a line of the dialect, or a malformed
				 * receive line: `why' says what */
};

/* Why a command failed. */
enum lora_err {
	LORA_ERR_GENERIC = 0,	/* AT_ERROR */
	LORA_ERR_PARAM,		/* a parameter is wrong */
	LORA_ERR_BUSY,		/* busy: try later */
	LORA_ERR_DUTY,		/* the modem's duty cycle forbids it now */
	LORA_ERR_OVERFLOW,	/* the line or a parameter is too long */
	LORA_ERR_UNKNOWN,	/* no such command */
	LORA_ERR_MODE		/* not in this mode */
};
const char	*lora_err_str(enum lora_err);

struct lora_event {
	enum lora_ev_type type;
	enum lora_err	 err;
	int16_t		 rssi_dbm;	/* LORA_EV_RX */
	int8_t		 snr_db;
	size_t		 len;		/* bytes in the caller's buffer */
	const char	*value;		/* LORA_EV_VALUE: within the line */
	const char	*why;		/* LORA_EV_BAD: static */
};

/* One step of the modem's initialisation. */
#define LORA_CMD_MAX		96
struct lora_step {
	char		 cmd[LORA_CMD_MAX];
	bool		 want_value;	/* a value line comes before OK */
	bool		 reboots;	/* the modem restarts: wait for BOOT */
};

/*
 * A module family's AT dialect.  Every function is pure (formats or
 * parses text); the plugin does the I/O and the timing.
 */
struct lora_dialect {
	const char	*name;		/* "rui3" */
	const char	*family;	/* for logs and docs */
	size_t		 payload_max;	/* most bytes one send command takes */
	/* Settings the family cannot make: NULL, or a static reason. */
	const char	*(*phy_check)(const struct lora_phy *);
	/*
	 * Step `i' of the initialisation that puts the modem in continuous
	 * receive with `phy''s settings: fills *st, returns 1, or 0 when
	 * there is no step i.
	 */
	int	 (*init_step)(const struct lora_phy *, unsigned int i,
		    struct lora_step *st);
	/*
	 * The value answered to step i: returns how many of the following
	 * steps to skip (0 or more), or -1 when the modem is not set as
	 * asked (*why says how).
	 */
	int	 (*init_check)(const struct lora_phy *, unsigned int i,
		    const char *value, const char **why);
	/* The command that sends `len' bytes; its length or -1. */
	int	 (*send_cmd)(const uint8_t *, size_t len, char *out,
		    size_t cap);
	/* The command that sets the preamble to `symbols' (wake frames). */
	int	 (*preamble_cmd)(uint32_t symbols, char *out, size_t cap);
	/*
	 * The command that starts (on) continuous receive between sends,
	 * or stops it (off) so the radio takes new settings.
	 */
	int	 (*listen_cmd)(bool on, char *out, size_t cap);
	/* The command that resets the modem. */
	int	 (*reset_cmd)(char *out, size_t cap);
	/*
	 * What one line (no CR LF, NUL-terminated) means.  A received
	 * frame's payload goes into buf[cap].  `last_cmd' is the command
	 * in flight (or NULL), so an echo of it is recognised.
	 */
	void	 (*parse)(const char *line, const char *last_cmd,
		    struct lora_event *, uint8_t *buf, size_t cap);
};

extern const struct lora_dialect lora_dialect_rui3;
/* The dialect called `name', or NULL. */
const struct lora_dialect *lora_dialect_find(const char *name);

#endif /* LORA_INTERNAL_H */
