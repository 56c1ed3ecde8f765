/*
 * plc_frame.c: the Q/GDW 1376.2 frame, both directions (docs/transports/
 * plc.md, "Frame").
 *
 * Q/GDW 1376.2-2013 §4.3 (frame format, the FT1.2 asynchronous frame of
 * IEC 60870-5-1 with a two-byte length): 68H, L (2 bytes, the whole
 * frame), control field C, user data, CS, 16H.  CS is the sum mod 256 of
 * C and the user data.  The user data (§5.1) is the information field R
 * (§5.2, six bytes each way), the address field A (§5.3: source A1,
 * relays A2, destination A3, six bytes each) when R's communication
 * module flag says a station is concerned, then the application data
 * (§5.4): AFN, the data unit identifier DT1 DT2 and the data unit.
 *
 * Decoders read through struct plc_cur, which checks every length before
 * it reads; the deframer drops a bad frame whole and looks for the next
 * 68H one byte after the bad one's start, so one corrupt byte costs one
 * frame, never the stream.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "plc_internal.h"

/* ------------------------------------------------------------------ */
/* Cursors                                                              */

void
plc_cur_init(struct plc_cur *c, const uint8_t *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->off = 0;
	c->err = 0;
}

static int
plc_cur_need(struct plc_cur *c, size_t n)
{
	if (c->err != 0 || c->len - c->off < n) {
		c->err = PLC_E_SHORT;
		return (0);
	}
	return (1);
}

uint8_t
plc_get_u8(struct plc_cur *c)
{
	if (!plc_cur_need(c, 1))
		return (0);
	return (c->p[c->off++]);
}

uint16_t
plc_get_u16(struct plc_cur *c)
{
	uint16_t	 v;

	if (!plc_cur_need(c, 2))
		return (0);
	v = (uint16_t)(c->p[c->off] | c->p[c->off + 1] << 8);
	c->off += 2;
	return (v);
}

uint32_t
plc_get_u32(struct plc_cur *c)
{
	uint32_t	 v;

	if (!plc_cur_need(c, 4))
		return (0);
	v = (uint32_t)c->p[c->off] | (uint32_t)c->p[c->off + 1] << 8 |
	    (uint32_t)c->p[c->off + 2] << 16 | (uint32_t)c->p[c->off + 3] << 24;
	c->off += 4;
	return (v);
}

void
plc_get_bytes(struct plc_cur *c, uint8_t *out, size_t n)
{
	if (!plc_cur_need(c, n)) {
		memset(out, 0, n);
		return;
	}
	memcpy(out, c->p + c->off, n);
	c->off += n;
}

const uint8_t *
plc_get_ref(struct plc_cur *c, size_t n)
{
	const uint8_t	*p;

	if (!plc_cur_need(c, n))
		return (NULL);
	p = c->p + c->off;
	c->off += n;
	return (p);
}

size_t
plc_cur_left(const struct plc_cur *c)
{
	return (c->err != 0 ? 0 : c->len - c->off);
}

void
plc_wr_init(struct plc_wr *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->len = 0;
	w->err = 0;
}

static int
plc_wr_need(struct plc_wr *w, size_t n)
{
	if (w->err != 0 || w->cap - w->len < n) {
		w->err = PLC_E_SPACE;
		return (0);
	}
	return (1);
}

void
plc_put_u8(struct plc_wr *w, uint8_t v)
{
	if (plc_wr_need(w, 1))
		w->p[w->len++] = v;
}

void
plc_put_u16(struct plc_wr *w, uint16_t v)
{
	if (!plc_wr_need(w, 2))
		return;
	w->p[w->len++] = (uint8_t)v;
	w->p[w->len++] = (uint8_t)(v >> 8);
}

void
plc_put_u32(struct plc_wr *w, uint32_t v)
{
	if (!plc_wr_need(w, 4))
		return;
	w->p[w->len++] = (uint8_t)v;
	w->p[w->len++] = (uint8_t)(v >> 8);
	w->p[w->len++] = (uint8_t)(v >> 16);
	w->p[w->len++] = (uint8_t)(v >> 24);
}

void
plc_put_bytes(struct plc_wr *w, const void *p, size_t n)
{
	if (n == 0 || !plc_wr_need(w, n))
		return;
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

/* ------------------------------------------------------------------ */
/* Names                                                                */

const char *
plc_strerror(int e)
{
	switch (e) {
	case PLC_OK:
		return ("ok");
	case PLC_E_SHORT:
		return ("frame shorter than its length says");
	case PLC_E_START:
		return ("first byte is not 68H");
	case PLC_E_LENGTH:
		return ("length field out of range");
	case PLC_E_END:
		return ("last byte is not 16H");
	case PLC_E_CHECKSUM:
		return ("checksum does not match");
	case PLC_E_FORMAT:
		return ("fields inconsistent");
	case PLC_E_UNKNOWN:
		return ("AFN or Fn not known");
	case PLC_E_SPACE:
		return ("buffer too small");
	case PLC_E_RANGE:
		return ("value out of range");
	}
	return ("unknown error");
}

const char *
plc_deny_str(unsigned int code)
{
	static const char *const names[] = {
		"communication timeout", "invalid data unit", "length error",
		"checksum error", "information class does not exist",
		"format error", "duplicate meter number", "no such meter",
		"meter application did not answer", "master node busy",
		"master node does not support the command",
		"station did not answer", "station not in the network"
	};

	if (code < sizeof(names) / sizeof(names[0]))
		return (names[code]);
	return ("reserved error code");
}

/* ------------------------------------------------------------------ */
/* Fn, checksum                                                         */

int
plc_fn_to_dt(unsigned int fn, uint8_t *dt1, uint8_t *dt2)
{
	/* DT2 counts groups of eight from 0 and 248 is the last Fn the
	 * 1376.x family assigns (DT2 = 30, D7). */
	if (fn < 1 || fn > 248)
		return (PLC_E_RANGE);
	*dt1 = (uint8_t)(1u << ((fn - 1) % 8));
	*dt2 = (uint8_t)((fn - 1) / 8);
	return (PLC_OK);
}

unsigned int
plc_dt_to_fn(uint8_t dt1, uint8_t dt2)
{
	unsigned int	 bit;

	if (dt1 == 0 || (dt1 & (dt1 - 1)) != 0 || dt2 > 30)
		return (0);
	for (bit = 0; (dt1 >> bit) != 1; bit++)
		;
	return ((unsigned int)dt2 * 8 + bit + 1);
}

uint8_t
plc_sum(const uint8_t *p, size_t n)
{
	uint8_t		 s = 0;

	while (n-- > 0)
		s = (uint8_t)(s + *p++);
	return (s);
}

/* ------------------------------------------------------------------ */
/* Encode                                                               */

static void
plc_info_put(struct plc_wr *w, bool up, const struct plc_info *r)
{
	uint8_t		 b0;

	b0 = (uint8_t)((r->route & 1) | (r->module & 1) << 2 |
	    (r->relay_level & 0x0f) << 4);
	if (!up) {
		b0 |=
		    (uint8_t)((r->attached & 1) << 1 | (r->collision & 1) << 3);
		plc_put_u8(w, b0);
		plc_put_u8(w, (uint8_t)((r->channel & 0x0f) |
		    (r->ecc & 0x0f) << 4));
		plc_put_u8(w, r->reply_bytes);
		plc_put_u16(w, r->rate);
	} else {
		plc_put_u8(w, b0);
		plc_put_u8(w, (uint8_t)(r->channel & 0x0f));
		plc_put_u8(w, (uint8_t)((r->phase & 0x0f) |
		    (r->meter_ch & 0x0f) << 4));
		plc_put_u8(w, (uint8_t)((r->q_cmd & 0x0f) |
		    (r->q_reply & 0x0f) << 4));
		plc_put_u8(w, (uint8_t)(r->event & 1));
	}
	plc_put_u8(w, r->seq);
}

int
plc_encode(const struct plc_frame *f, uint8_t *buf, size_t cap)
{
	struct plc_wr	 w;
	size_t		 ud, total;
	uint8_t		 dt1, dt2;
	unsigned int	 i;

	if (f->info.relay_level > PLC_RELAY_MAX)
		return (PLC_E_RANGE);
	if (!f->info.module && f->info.relay_level != 0)
		return (PLC_E_RANGE);
	if (plc_fn_to_dt(f->fn, &dt1, &dt2) != PLC_OK)
		return (PLC_E_RANGE);
	if (f->len > PLC_FRAME_MAX)
		return (PLC_E_RANGE);
	ud = PLC_INFO_LEN + 3 + f->len;
	if (f->info.module)
		ud += PLC_ADDR_LEN * (2 + (size_t)f->info.relay_level);
	total = ud + 6;
	if (total > PLC_FRAME_MAX)
		return (PLC_E_RANGE);
	if (total > cap)
		return (PLC_E_SPACE);

	plc_wr_init(&w, buf, cap);
	plc_put_u8(&w, PLC_START);
	plc_put_u16(&w, (uint16_t)total);
	plc_put_u8(&w, f->c);
	plc_info_put(&w, PLC_FRAME_UP(f), &f->info);
	if (f->info.module) {
		plc_put_bytes(&w, f->src, PLC_ADDR_LEN);
		for (i = 0; i < f->info.relay_level; i++)
			plc_put_bytes(&w, f->relay[i], PLC_ADDR_LEN);
		plc_put_bytes(&w, f->dst, PLC_ADDR_LEN);
	}
	plc_put_u8(&w, f->afn);
	plc_put_u8(&w, dt1);
	plc_put_u8(&w, dt2);
	plc_put_bytes(&w, f->data, f->len);
	plc_put_u8(&w, plc_sum(buf + 3, w.len - 3));
	plc_put_u8(&w, PLC_END);
	if (w.err != 0)
		return (w.err);
	return ((int)w.len);
}

/* ------------------------------------------------------------------ */
/* Decode                                                               */

static void
plc_info_get(struct plc_cur *c, bool up, struct plc_info *r)
{
	uint8_t		 b;

	memset(r, 0, sizeof(*r));
	b = plc_get_u8(c);
	r->route = b & 1;
	r->module = (b >> 2) & 1;
	r->relay_level = b >> 4;
	if (!up) {
		r->attached = (b >> 1) & 1;
		r->collision = (b >> 3) & 1;
		b = plc_get_u8(c);
		r->channel = b & 0x0f;
		r->ecc = b >> 4;
		r->reply_bytes = plc_get_u8(c);
		r->rate = plc_get_u16(c);
	} else {
		r->channel = plc_get_u8(c) & 0x0f;
		b = plc_get_u8(c);
		r->phase = b & 0x0f;
		r->meter_ch = b >> 4;
		b = plc_get_u8(c);
		r->q_cmd = b & 0x0f;
		r->q_reply = b >> 4;
		r->event = plc_get_u8(c) & 1;
	}
	r->seq = plc_get_u8(c);
}

int
plc_decode(const uint8_t *buf, size_t len, struct plc_frame *f)
{
	struct plc_cur	 c;
	size_t		 total;
	uint8_t		 dt1, dt2;
	unsigned int	 i;

	if (len < 3)
		return (PLC_E_SHORT);
	if (buf[0] != PLC_START)
		return (PLC_E_START);
	total = (size_t)buf[1] | (size_t)buf[2] << 8;
	if (total < PLC_FRAME_MIN || total > PLC_FRAME_MAX)
		return (PLC_E_LENGTH);
	if (len < total)
		return (PLC_E_SHORT);
	if (len > total)
		return (PLC_E_LENGTH);
	if (buf[total - 1] != PLC_END)
		return (PLC_E_END);
	if (plc_sum(buf + 3, total - 5) != buf[total - 2])
		return (PLC_E_CHECKSUM);

	/* C through the data unit: everything between L and CS. */
	memset(f, 0, sizeof(*f));
	plc_cur_init(&c, buf + 3, total - 5);
	f->c = plc_get_u8(&c);
	plc_info_get(&c, PLC_FRAME_UP(f), &f->info);
	if (f->info.module) {
		plc_get_bytes(&c, f->src, PLC_ADDR_LEN);
		for (i = 0; i < f->info.relay_level; i++)
			plc_get_bytes(&c, f->relay[i], PLC_ADDR_LEN);
		plc_get_bytes(&c, f->dst, PLC_ADDR_LEN);
	} else if (f->info.relay_level != 0)
		return (PLC_E_FORMAT);	/* relays but no address field */
	f->afn = plc_get_u8(&c);
	dt1 = plc_get_u8(&c);
	dt2 = plc_get_u8(&c);
	if (c.err != 0)
		return (PLC_E_FORMAT);	/* the fields do not fit in L */
	if ((f->fn = (uint16_t)plc_dt_to_fn(dt1, dt2)) == 0)
		return (PLC_E_FORMAT);
	f->len = plc_cur_left(&c);
	f->data = f->len > 0 ? plc_get_ref(&c, f->len) : NULL;
	return (PLC_OK);
}

/* ------------------------------------------------------------------ */
/* The stream deframer                                                  */

void
plc_rx_init(struct plc_rx *rx, size_t max)
{
	memset(rx, 0, sizeof(*rx));
	rx->max = max < PLC_FRAME_MIN || max > PLC_FRAME_MAX ?
	    PLC_FRAME_MAX : max;
}

void
plc_rx_reset(struct plc_rx *rx)
{
	rx->len = 0;
	rx->used = 0;
}

static void
plc_rx_drop(struct plc_rx *rx, size_t n)
{
	if (n >= rx->len) {
		rx->len = 0;
		return;
	}
	memmove(rx->buf, rx->buf + n, rx->len - n);
	rx->len -= n;
}

size_t
plc_rx_feed(struct plc_rx *rx, const uint8_t *p, size_t n)
{
	size_t		 room;

	if (rx->used > 0) {
		plc_rx_drop(rx, rx->used);
		rx->used = 0;
	}
	room = sizeof(rx->buf) - rx->len;
	if (n > room)
		n = room;
	memcpy(rx->buf + rx->len, p, n);
	rx->len += n;
	return (n);
}

int
plc_rx_next(struct plc_rx *rx, const uint8_t **frame, size_t *len)
{
	const uint8_t	*s;
	size_t		 total, skip;

	if (rx->used > 0) {
		plc_rx_drop(rx, rx->used);
		rx->used = 0;
	}
	/* Skip to the next start character. */
	s = memchr(rx->buf, PLC_START, rx->len);
	skip = s == NULL ? rx->len : (size_t)(s - rx->buf);
	if (skip > 0) {
		rx->skipped += skip;
		plc_rx_drop(rx, skip);
	}
	if (rx->len < 3)
		return (0);
	total = (size_t)rx->buf[1] | (size_t)rx->buf[2] << 8;
	if (total < PLC_FRAME_MIN || total > rx->max) {
		rx->last_err = PLC_E_LENGTH;
		goto bad;
	}
	if (rx->len < total)
		return (0);
	if (rx->buf[total - 1] != PLC_END) {
		rx->last_err = PLC_E_END;
		goto bad;
	}
	if (plc_sum(rx->buf + 3, total - 5) != rx->buf[total - 2]) {
		rx->last_err = PLC_E_CHECKSUM;
		goto bad;
	}
	*frame = rx->buf;
	*len = total;
	rx->used = total;
	return (1);
bad:
	/* This 68H did not start a frame: look again one byte on. */
	rx->bad++;
	rx->skipped++;
	plc_rx_drop(rx, 1);
	return (rx->last_err);
}

int
plc_rx_stale(struct plc_rx *rx)
{
	if (rx->used > 0) {
		plc_rx_drop(rx, rx->used);
		rx->used = 0;
	}
	if (rx->len == 0)
		return (0);
	rx->bad++;
	rx->skipped++;
	rx->last_err = PLC_E_SHORT;
	plc_rx_drop(rx, 1);
	return (1);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

static int
plc_hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return (ch - '0');
	ch = toupper((unsigned char)ch);
	if (ch >= 'A' && ch <= 'F')
		return (ch - 'A' + 10);
	return (-1);
}

int
plc_addr_parse(const char *s, uint8_t out[PLC_ADDR_LEN])
{
	int		 hi, lo;
	unsigned int	 i;

	if (strlen(s) != 2 * PLC_ADDR_LEN)
		return (-1);
	for (i = 0; i < PLC_ADDR_LEN; i++) {
		if ((hi = plc_hexval(s[2 * i])) < 0 ||
		    (lo = plc_hexval(s[2 * i + 1])) < 0)
			return (-1);
		/* Most significant pair first in text, last on the wire. */
		out[PLC_ADDR_LEN - 1 - i] = (uint8_t)(hi << 4 | lo);
	}
	return (0);
}

void
plc_addr_fmt(const uint8_t in[PLC_ADDR_LEN], char *buf, size_t len)
{
	snprintf(buf, len, "%02X%02X%02X%02X%02X%02X", in[5], in[4], in[3],
	    in[2], in[1], in[0]);
}
