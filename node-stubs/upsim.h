/*
 * upsim.h: the medium simulator core (docs/simulator.md).
 *
 * A simulated medium (an RS-485 bus, LoRa air, a power-line station area)
 * joins endpoints.  Each endpoint is a pty pair: the program playing it
 * (upbridged's transport, `upnode --transport ...', a test) opens the
 * slave like a real /dev/ttyUSB0 and runs its real termios and framing
 * code; the simulator holds the master and imposes what a pty does not:
 * character timing at the endpoint's bit rate, the character format
 * (a receiver set to another rate or parity gets what a real UART would
 * decode), half-duplex, collisions, time on air, per-endpoint loss and
 * delivery delay, and faults (an endpoint drops off and returns, a
 * talker resets).
 *
 * Three layers, one file each, all single-threaded on one libevent base:
 *  - sim_uart.c: character formats and the UART bit model (pure code);
 *  - sim_line.c: each endpoint's serial line: characters taken from the
 *    program at its UART's pace, characters handed to it when due;
 *  - sim_medium.c: transmissions on the shared medium: who hears what,
 *    when, and intact or not.
 * sim_core.c holds the simulator, its endpoints, the clock, faults and
 * the status report.  A personality (struct sim_personality, one file
 * each: sim_rs485.c ...) decides what a frame is on its medium and what
 * an endpoint's program sees: raw byte runs for RS-485, AT command lines
 * for a LoRa modem, 1376.2 frames for a carrier module.
 *
 * Time.  Every time here is simulated time: nanoseconds since the
 * simulator started, sim = real elapsed x time_scale (sim_now()).
 * Modelled durations (character times, time on air, delivery delays,
 * silence gaps) are computed in simulated time and are exact; the
 * programs on the endpoints run on the real clock, so with a time scale
 * of 10 they see a 9600 bit/s line move 96,000 bits a second of their
 * time.  docs/simulator.md, "Time scale", says what scales and what
 * does not.
 *
 * Errors: functions return 0/-1 (or NULL); those a person reads the
 * reason of fill a malloc'd `char **cause' the caller frees.
 */
#ifndef UPSIM_H
#define UPSIM_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <termios.h>

struct event;
struct event_base;

struct sim;
struct sim_ep;
struct sim_tx;
struct sim_personality;

#define SIM_NS_PER_US		1000ULL
#define SIM_NS_PER_MS		1000000ULL
#define SIM_NS_PER_S		1000000000ULL

/* Endpoint names: [A-Za-z0-9_.-], 1 to SIM_NAME_MAX bytes. */
#define SIM_NAME_MAX		31
#define SIM_EP_MAX		256
/* Personality and endpoint options (KEY=VALUE). */
#define SIM_OPTS_MAX		32
/* Longest transmission; a longer wire run is cut into several. */
#define SIM_TX_MAX		65536

/* ------------------------------------------------------------------ */
/* sim_uart.c: character formats and the UART bit model                */

/* The parity bit of a format. */
enum sim_parity {
	SIM_PAR_NONE = 'N',
	SIM_PAR_EVEN = 'E',
	SIM_PAR_ODD = 'O',
	SIM_PAR_MARK = 'M',
	SIM_PAR_SPACE = 'S'
};

/* A serial character format: 9600 8E1. */
struct sim_fmt {
	uint32_t	 baud;		/* bit/s; 0 = none the model knows */
	uint8_t		 data_bits;	/* 5 to 8 */
	uint8_t		 parity;	/* enum sim_parity */
	uint8_t		 stop_bits;	/* 1 or 2 */
};

/* Error flags of one received character, as a real UART reports them. */
#define SIM_CH_PARITY		0x01	/* parity bit wrong */
#define SIM_CH_FRAME		0x02	/* stop bit was 0 */

/* "8E1" (data bits, N/E/O/M/S, stop bits) at `baud'; 0 or -1. */
int		 sim_fmt_parse(const char *, uint32_t baud, struct sim_fmt *);
/* "9600 8E1" into buf[len] (at least 24 bytes). */
void		 sim_fmt_str(const struct sim_fmt *, char *buf, size_t len);
bool		 sim_fmt_eq(const struct sim_fmt *, const struct sim_fmt *);
/* Bits on the line per character: start + data + parity + stop. */
unsigned int	 sim_fmt_char_bits(const struct sim_fmt *);
/* Time of one character in simulated ns (0 when baud is 0). */
uint64_t	 sim_fmt_char_ns(const struct sim_fmt *);
/*
 * The format a program set on a pty, read through the master.  The
 * kernel keeps a pty's speed, CSTOPB, PARODD, CMSPAR and c_iflag but
 * clears PARENB and forces CS8 (drivers/tty/pty.c): so data bits are 8,
 * and parity is on when INPCK is set (odd with PARODD, mark/space with
 * CMSPAR), unless `parity' (an endpoint's parity= option) says what it
 * is.  baud is 0 for a speed the model does not know (B0, BOTHER).
 */
void		 sim_fmt_from_termios(const struct termios *, uint8_t parity,
		    struct sim_fmt *);
/*
 * The UART model: `n' characters sent back to back in format `tx', as
 * a receiver set to `rx' decodes them.  It serialises the characters
 * into bits (start, data LSB first, parity, stop, then the idle line),
 * finds each start bit by its falling edge and samples the middle of
 * every bit at the receiver's own rate, checking parity and the first
 * stop bit.  Writes at most `cap' characters to out[] with their
 * SIM_CH_* flags in err[]; returns how many.  Same formats: a copy.
 */
size_t		 sim_uart_convert(const struct sim_fmt *tx,
		    const struct sim_fmt *rx, const uint8_t *in, size_t n,
		    uint8_t *out, uint8_t *err, size_t cap);
/*
 * What a Linux serial driver and n_tty hand a program for one received
 * character with flags `err', given its c_iflag: IGNPAR drops a
 * character with a parity or framing error, INPCK turns it into '\0',
 * otherwise it passes as received.  Returns 0 or 1 (bytes in *out).
 * PARMRK is not modelled (its '\377' marks would be doubled by the
 * pty's own n_tty): it reads as INPCK.
 */
size_t		 sim_uart_iflag(tcflag_t iflag, uint8_t c, uint8_t err,
		    uint8_t *out);

/* ------------------------------------------------------------------ */
/* Counters of one endpoint (status report, sim_ep_stats)              */

struct sim_stats {
	/* Its serial line (bytes between its program and the simulator). */
	uint64_t	 line_in;	/* characters its program sent */
	uint64_t	 line_out;	/* characters written to its program */
	uint64_t	 line_errors;	/* of those, with a parity/framing error */
	uint64_t	 line_mismatch;	/* transmissions it sent or received
					 * on a wire, or runs of characters
					 * to or from a modem, in a format
					 * other than the far end's */
	uint64_t	 overruns;	/* characters lost: it did not read */
	/* Its transmissions on the medium. */
	uint64_t	 tx_frames;
	uint64_t	 tx_bytes;
	uint64_t	 airtime_ns;	/* simulated time it occupied the medium */
	uint64_t	 collisions;	/* its transmissions that overlapped */
	uint64_t	 tx_unheard;	/* sent while detached: reached no one */
	/* What reached it, one count per transmission. */
	uint64_t	 rx_frames;	/* intact */
	uint64_t	 rx_bytes;	/* characters delivered intact */
	uint64_t	 rx_garbled;	/* damaged by a collision */
	uint64_t	 rx_lost;	/* lost (or hit by noise): its loss draw */
	uint64_t	 rx_missed;	/* arrived while it was sending */
	uint64_t	 rx_detached;	/* arrived while it was detached */
	/* Faults. */
	uint64_t	 detaches;
	uint64_t	 resets;
};

/* ------------------------------------------------------------------ */
/* sim_core.c: the simulator, its endpoints, clock, faults, status      */

/* A KEY=VALUE option. */
struct sim_kv {
	const char	*key;
	const char	*value;
};

/* An option a personality declares (--opt, or --endpoint NAME,KEY=V). */
struct sim_opt {
	const char	*name;
	const char	*def;		/* default as text, NULL = none */
	const char	*help;
};

struct sim_conf {
	const struct sim_personality *pers;
	double		 time_scale;	/* > 0; 1 = real time */
	uint64_t	 seed;		/* loss draws and garbling */
	struct sim_fmt	 fmt;		/* the medium's line format */
	double		 loss_pct;	/* every endpoint's default */
	double		 delay_ms;	/* every endpoint's default (sim) */
	unsigned int	 nopt;		/* personality options */
	struct sim_kv	 opt[SIM_OPTS_MAX];
	bool		 verbose;
};

/*
 * One endpoint.  The core owns it; a personality may read every field,
 * keeps its own state behind `priv' and changes the rest only through
 * the functions below.
 */
struct sim_ep {
	struct sim	*sim;
	unsigned int	 idx;
	char		 name[SIM_NAME_MAX + 1];
	char		 pty[64];	/* the slave's path */
	int		 master;
	int		 hold;		/* our own slave fd (see sim_ep_add) */
	struct sim_fmt	 fmt;		/* the far side of its line: the
					 * medium's (a bus) or a modem's UART */
	uint8_t		 parity;	/* parity= option, 0 = from termios */
	bool		 attached;
	bool		 half_duplex;
	double		 loss;		/* 0 to 1, per transmission */
	uint64_t	 delay_ns;	/* delivery delay (simulated) */
	uint64_t	 rng;
	unsigned int	 nopt;
	struct sim_kv	 opt[SIM_OPTS_MAX];
	struct sim_stats st;
	void		*priv;		/* the personality's */

	/* sim_line.c: its UART towards the simulator (the program sends). */
	struct event	*ev_in;		/* master readable, line idle */
	struct event	*ev_in_timer;	/* next character may start */
	bool		 in_busy;
	uint64_t	 in_next;	/* when the next character may start */
	/* A run sent in a format the far side does not use, decoded
	 * whole when the run ends (SIM_P_WIRE not set). */
	uint8_t		*in_raw;
	size_t		 in_raw_len;
	struct sim_fmt	 in_raw_fmt;
	uint64_t	 in_raw_t, in_raw_unit;
	/* sim_line.c: characters due at its program. */
	struct event	*ev_out_timer;
	uint8_t		*out_b;
	uint64_t	*out_t;
	size_t		 out_head, out_len, out_cap;
	uint64_t	 out_next;	/* end of the last paced character */

	/* sim_medium.c */
	struct sim_tx	*wire;		/* its open wire transmission */
};

/*
 * A new simulator on `base' (create the base with
 * EVENT_BASE_FLAG_PRECISE_TIMER: character times are sub-millisecond).
 * The conf is copied (its strings must outlive the simulator).
 */
struct sim	*sim_new(struct event_base *, const struct sim_conf *,
		    char **cause);
/*
 * Adds an endpoint: a new pty pair, raw and non-blocking.  The simulator
 * keeps a slave fd of its own open, so the master never reports a
 * hang-up while the program is away or restarting (what the program
 * sent before it went away stays in the line, as in a real UART's
 * buffer; programs flush on open).  Before sim_start().
 */
struct sim_ep	*sim_ep_add(struct sim *, const char *name, char **cause);
/*
 * Sets an endpoint option: loss=PCT, delay=MS, half-duplex=yes|no,
 * parity=N|E|O|M|S|auto, or one of the personality's ep_options.
 */
int		 sim_ep_set(struct sim_ep *, const char *key, const char *value,
		    char **cause);
/* Starts the personality and the lines.  0 or -1. */
int		 sim_start(struct sim *, char **cause);
void		 sim_free(struct sim *);

struct event_base *sim_base(const struct sim *);
const struct sim_conf *sim_conf(const struct sim *);
const struct sim_personality *sim_pers(const struct sim *);
unsigned int	 sim_nep(const struct sim *);
struct sim_ep	*sim_ep(const struct sim *, unsigned int idx);
struct sim_ep	*sim_ep_find(const struct sim *, const char *name);
/* The personality's state. */
void		*sim_priv(const struct sim *);
void		 sim_set_priv(struct sim *, void *);
/* A personality option (--opt), else its default, else NULL. */
const char	*sim_opt(const struct sim *, const char *key);
const char	*sim_ep_opt(const struct sim_ep *, const char *key);

/* Simulated now, ns. */
uint64_t	 sim_now(const struct sim *);
/* Real ns since the simulator started (CLOCK_MONOTONIC). */
uint64_t	 sim_real_ns(const struct sim *);
/* Arms a timer event to fire at simulated time `at' (now if past). */
void		 sim_timer_at(struct sim *, struct event *, uint64_t at);
/* A pseudo-random number from the endpoint's own generator. */
uint64_t	 sim_rand(struct sim_ep *);
/* Logs when verbose ("upsim: " prefix on stderr). */
void		 sim_debug(const struct sim *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));

/* Faults (docs/simulator.md, "Faults"). */
/* The endpoint drops off the medium: it hears nothing, no one hears it. */
void		 sim_ep_detach(struct sim_ep *);
void		 sim_ep_attach(struct sim_ep *);
/*
 * The talker resets: its transmission stops where it is, what its
 * program had written and the line had not yet sent is discarded, so is
 * what was due to its program, then the personality's reset() runs.
 */
void		 sim_ep_reset(struct sim_ep *);
/*
 * A fault or setting by name, as the control socket takes it:
 * "detach EP", "attach EP", "reset EP", "loss EP PCT", "delay EP MS",
 * or a personality's command.  0, or -1 with *cause.
 */
int		 sim_command(struct sim *, const char *line, char **cause);

/* The whole status as one JSON object (docs/simulator.md, "Status"). */
void		 sim_status_json(struct sim *, FILE *);
/* Writes it to `path' atomically (temp file and rename). */
int		 sim_status_write(struct sim *, const char *path, char **cause);

/* ------------------------------------------------------------------ */
/* sim_line.c: each endpoint's serial line                             */

/*
 * The format the endpoint's program has set on its pty now (termios
 * read through the master, with the parity= override), and its c_iflag.
 */
void		 sim_line_fmt(struct sim_ep *, struct sim_fmt *,
		    tcflag_t *iflag);
/*
 * Hands characters to the endpoint's program: `b' were sent in format
 * `from' and reach its UART at time `at' (simulated; now or later);
 * `err' (may be NULL) flags characters already damaged.  They are
 * decoded with the program's own format (sim_uart_convert) when it
 * differs, filtered by its c_iflag (sim_uart_iflag) and written when
 * due.  A full queue or a full pty drops them (overruns).
 */
void		 sim_line_deliver(struct sim_ep *, const uint8_t *b,
		    const uint8_t *err, size_t n, const struct sim_fmt *from,
		    uint64_t at);
/*
 * Sends characters from the far side of the line (a modem's UART) to
 * the program, paced at ep->fmt after whatever is still being sent.
 * Returns the simulated time the last one is due.
 */
uint64_t	 sim_line_send(struct sim_ep *, const uint8_t *, size_t);
/* Discards what the program wrote and what is due to it (a reset). */
void		 sim_line_flush(struct sim_ep *);

/* ------------------------------------------------------------------ */
/* sim_medium.c: transmissions on the shared medium                    */

/* What became of (part of) a transmission at one receiver. */
enum sim_rx_status {
	SIM_RX_OK = 0,
	SIM_RX_NOISE,		/* the receiver's loss draw: a frame is lost;
				 * on a wire one character is hit by noise */
	SIM_RX_COLLIDED,	/* overlapped another talker's transmission */
	SIM_RX_MISSED,		/* the receiver was sending (half-duplex) */
	SIM_RX_DETACHED		/* the receiver was off the medium */
};
const char	*sim_rx_status_str(enum sim_rx_status);

/* One receiver's progress through a transmission. */
struct sim_rx {
	size_t		 next;		/* characters handled so far */
	size_t		 noise_at;	/* SIZE_MAX: no noise */
	uint64_t	 delay_ns;	/* its delivery delay for this one */
	uint8_t		 seen;		/* 1 << enum sim_rx_status */
	bool		 hears;		/* the personality's hears() */
	bool		 done;		/* counted */
};

/*
 * A transmission: a frame (the whole of it arrives after its time on
 * air) or a wire run (characters arrive one by one, each at the end of
 * its own character time, and the run stays open while the talker keeps
 * sending with gaps shorter than the medium's silence gap).
 */
struct sim_tx {
	struct sim_tx	*next;
	uint64_t	 id;
	struct sim_ep	*src;
	uint32_t	 channel;	/* transmissions on different channels
					 * do not collide (who hears which
					 * channel is the personality's
					 * hears()) */
	uint64_t	 t_start;
	uint64_t	 t_end;		/* end of the last character / of air */
	uint64_t	 unit_ns;	/* wire: character time; frame: 0 */
	bool		 open;		/* wire: more characters may follow */
	bool		 collided;
	bool		 ended;		/* tx_done() ran */
	bool		 cut;		/* stopped by a reset */
	bool		 unheard;	/* sent while detached */
	struct sim_fmt	 fmt;		/* wire: the talker's format */
	size_t		 len, cap;
	uint8_t		*buf;
	uint64_t	*t;		/* wire: start of each character */
	struct sim_rx	*rx;		/* per endpoint, by idx */
};

/*
 * Puts a frame on the medium from `src' now, for the personality's
 * airtime_ns(src, len).  Returns the transmission (owned by the medium,
 * valid until its tx_done() returns), or NULL when `src' is detached
 * (counted in tx_unheard; tx_done still fires) or out of memory.
 */
struct sim_tx	*sim_frame_send(struct sim *, struct sim_ep *src,
		    uint32_t channel, const uint8_t *buf, size_t len);
/*
 * Puts characters on a wire from `src': they were sent in format `fmt',
 * the first starting at `t_first' and each `unit_ns' after the previous
 * one.  They extend src's open wire run, or start a new one after a
 * silence of at least the medium's gap.
 */
void		 sim_wire_put(struct sim *, struct sim_ep *src,
		    uint32_t channel, const uint8_t *b, size_t n,
		    const struct sim_fmt *fmt, uint64_t t_first,
		    uint64_t unit_ns);
/* Silence that ends a wire run (a frame), simulated ns. */
void		 sim_medium_set_gap(struct sim *, uint64_t gap_ns);
/* Is `ep' transmitting at simulated time `t'? */
bool		 sim_ep_sending(const struct sim_ep *, uint64_t t);
/* Is anything on `channel' at simulated time `t' (carrier sense)? */
bool		 sim_channel_busy(const struct sim *, uint32_t channel,
		    uint64_t t);

/* ------------------------------------------------------------------ */
/* Personalities                                                       */

struct sim_personality {
	const char	*name;		/* "rs485", "lora", ... */
	const char	*help;
	const struct sim_opt *options;	/* --opt KEY=VALUE; NULL-terminated */
	const struct sim_opt *ep_options; /* --endpoint NAME,KEY=VALUE */
	uint32_t	 flags;
#define SIM_P_WIRE	0x0001	/* the line is the medium: line_rx gets the
				 * characters in the sender's own format */

	/* After the endpoints were added: check options, set ep->fmt. */
	int	 (*init)(struct sim *, char **cause);
	void	 (*fini)(struct sim *);
	/*
	 * Characters the endpoint's program sent: the first started at
	 * `t_first', each `unit_ns' after the previous one.  With
	 * SIM_P_WIRE they are as sent, in the program's format `fmt';
	 * otherwise decoded by the far side of the line (ep->fmt) with
	 * their SIM_CH_* flags in `err' (never NULL then).
	 */
	void	 (*line_rx)(struct sim *, struct sim_ep *, const uint8_t *b,
		    const uint8_t *err, size_t n, const struct sim_fmt *fmt,
		    uint64_t t_first, uint64_t unit_ns);
	/*
	 * Characters [off, off + n) of `tx' reached `rx' at time `at' (now),
	 * all with the same status.  A frame arrives whole, once.
	 */
	void	 (*deliver)(struct sim *, struct sim_ep *rx,
		    const struct sim_tx *, size_t off, size_t n,
		    enum sim_rx_status, uint64_t at);
	/* Time on air of a frame of `len' bytes from `src' (frames). */
	uint64_t (*airtime_ns)(struct sim *, const struct sim_ep *src,
		    size_t len);
	/* Optional: can `rx' hear `tx' at all (range, frequency)? */
	bool	 (*hears)(struct sim *, const struct sim_ep *rx,
		    const struct sim_tx *);
	/*
	 * Optional, per pair (a link budget, a relay hop): the probability
	 * (0 to 1) that `rx' loses `tx', and its delivery delay, instead of
	 * rx->loss and rx->delay_ns.  Asked when `tx' starts (src, channel
	 * and t_start are set; not yet its bytes).
	 */
	double	 (*loss)(struct sim *, const struct sim_ep *rx,
		    const struct sim_tx *);
	uint64_t (*delay_ns)(struct sim *, const struct sim_ep *rx,
		    const struct sim_tx *);
	/* Optional: a transmission left the medium (frame: end of air). */
	void	 (*tx_done)(struct sim *, const struct sim_tx *);
	/* Optional: the endpoint was reset (after the core's part). */
	void	 (*reset)(struct sim *, struct sim_ep *);
	/* Optional: a command the core does not know; 1 = not mine. */
	int	 (*command)(struct sim *, int argc, char **argv,
		    char **cause);
	/* Optional: extra members of the endpoint's status object, each
	 * written as `, "key": value'. */
	void	 (*status)(struct sim *, struct sim_ep *, FILE *);
};

/* sim_rs485.c */
extern const struct sim_personality sim_rs485;
/* sim_lora.c: LoRa air with RUI3 AT modems (docs/simulator.md, "lora") */
extern const struct sim_personality sim_lora;
/* sim_plc.c: a Q/GDW 1376.2 carrier module and its station area */
extern const struct sim_personality sim_plc;

/* The compiled-in personalities (sim_core.c's table). */
const struct sim_personality *sim_personality_find(const char *name);
const struct sim_personality *const *sim_personality_list(void);

#endif /* UPSIM_H */
