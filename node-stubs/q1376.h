/*
 * q1376.h: the module's side of Q/GDW 1376.2, for the station-area
 * simulator (sim_plc.c: the carrier module a concentrator talks to) and
 * for the station link (node_plc.c: a device behind a station's module).
 *
 * node-stubs/ may not use transports/ (the folder rules), so the module's
 * side has its own small codec: frames in and out, and the stream
 * deframer.  Data units are read and written in place by the callers
 * with the q_get/q_put helpers.  The layouts are docs/transports/plc.md's.
 * Every read is bounded by the frame's length.
 */
#ifndef Q1376_H
#define Q1376_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define Q_START			0x68
#define Q_END			0x16
#define Q_MIN			15
#define Q_MAX			4096
#define Q_DIR_UP		0x80
#define Q_PRM			0x40
#define Q_COMM_HPLC		3

struct q_frame {
	uint8_t		 c;
	uint8_t		 r[6];		/* information field as sent */
	bool		 addressed;	/* R byte 1 D2: A present */
	uint8_t		 src[6];	/* A1 */
	uint8_t		 dst[6];	/* A3 (relays A2 are skipped) */
	uint8_t		 afn;
	uint16_t	 fn;
	const uint8_t	*data;		/* into the decoded buffer */
	size_t		 len;
};
#define Q_SEQ(f)	((f)->r[5])

/*
 * Encodes f into buf[cap]: R is taken as is, except byte 1's D2 and
 * relay level, set from `addressed' (no relays).  Returns the length or
 * -1 (no room, bad Fn).
 */
int	 q_encode(const struct q_frame *, uint8_t *buf, size_t cap);
/* Decodes one whole frame; 0 or -1 (with a reason in *why). */
int	 q_decode(const uint8_t *, size_t, struct q_frame *, const char **why);

/* A stream deframer: bytes in, whole frames out (checksum checked). */
struct q_rx {
	uint8_t		 buf[Q_MAX];
	size_t		 len;
	size_t		 used;
	uint64_t	 bad;		/* frames dropped */
};
void	 q_rx_init(struct q_rx *);
size_t	 q_rx_feed(struct q_rx *, const uint8_t *, size_t);
/* 1 with a frame (valid until the next call), 0 more bytes needed,
 * -1 a bad frame dropped (call again). */
int	 q_rx_next(struct q_rx *, const uint8_t **, size_t *);
/* The line went quiet on a partial frame: drop its first byte. */
void	 q_rx_stale(struct q_rx *);

/* Little-endian helpers with bounds: q_get* set *ok = false on a short
 * read (and return 0); q_put* return the new offset or cap + 1. */
uint32_t q_get(const uint8_t *, size_t len, size_t *off, size_t n,
	    bool *ok);
size_t	 q_put(uint8_t *, size_t cap, size_t off, uint32_t v, size_t n);
size_t	 q_put_bytes(uint8_t *, size_t cap, size_t off, const void *,
	    size_t n);

/* "201905000017" <-> the six bytes, low first; 0 or -1. */
int	 q_addr_parse(const char *, uint8_t out[6]);
void	 q_addr_fmt(const uint8_t in[6], char *buf, size_t len);

#endif /* Q1376_H */
