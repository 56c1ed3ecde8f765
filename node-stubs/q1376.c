/*
 * q1376.c: the module's side of the Q/GDW 1376.2 frame (q1376.h), for
 * the station-area simulator and the station link.
 *
 * The frame (docs/transports/plc.md, "The frame"): 68H, L (2, the whole
 * frame), C, R (6), A (12 when R says a station is addressed, plus 6 per
 * relay), AFN, DT1 DT2, data unit, CS (sum of C .. data mod 256), 16H.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "q1376.h"

static uint8_t
q_sum(const uint8_t *p, size_t n)
{
	uint8_t		 s = 0;

	while (n-- > 0)
		s = (uint8_t)(s + *p++);
	return (s);
}

int
q_encode(const struct q_frame *f, uint8_t *buf, size_t cap)
{
	size_t		 total, o = 0;

	if (f->fn < 1 || f->fn > 248)
		return (-1);
	total = 6 + 6 + 3 + f->len + (f->addressed ? 12 : 0);
	if (total > cap || total > Q_MAX)
		return (-1);
	buf[o++] = Q_START;
	buf[o++] = (uint8_t)total;
	buf[o++] = (uint8_t)(total >> 8);
	buf[o++] = f->c;
	memcpy(buf + o, f->r, 6);
	buf[o] = (uint8_t)((buf[o] & ~0xf4) | (f->addressed ? 0x04 : 0));
	o += 6;
	if (f->addressed) {
		memcpy(buf + o, f->src, 6);
		memcpy(buf + o + 6, f->dst, 6);
		o += 12;
	}
	buf[o++] = f->afn;
	buf[o++] = (uint8_t)(1u << ((f->fn - 1) % 8));
	buf[o++] = (uint8_t)((f->fn - 1) / 8);
	if (f->len > 0)
		memcpy(buf + o, f->data, f->len);
	o += f->len;
	buf[o] = q_sum(buf + 3, o - 3);
	o++;
	buf[o++] = Q_END;
	return ((int)o);
}

int
q_decode(const uint8_t *b, size_t len, struct q_frame *f, const char **why)
{
	size_t		 total, o, relays;
	unsigned int	 bit;
	uint8_t		 dt1, dt2;

	*why = NULL;
	if (len < Q_MIN || b[0] != Q_START) {
		*why = "not a frame";
		return (-1);
	}
	total = (size_t)b[1] | (size_t)b[2] << 8;
	if (total != len || b[len - 1] != Q_END ||
	    q_sum(b + 3, len - 5) != b[len - 2]) {
		*why = "bad length, end or checksum";
		return (-1);
	}
	memset(f, 0, sizeof(*f));
	f->c = b[3];
	memcpy(f->r, b + 4, 6);
	f->addressed = (f->r[0] & 0x04) != 0;
	relays = f->r[0] >> 4;
	o = 10;
	if (f->addressed) {
		if (o + 12 + 6 * relays + 3 > len - 2) {
			*why = "address field past the frame";
			return (-1);
		}
		memcpy(f->src, b + o, 6);
		o += 6 + 6 * relays;
		memcpy(f->dst, b + o, 6);
		o += 6;
	} else if (relays != 0) {
		*why = "relays without an address field";
		return (-1);
	}
	if (o + 3 > len - 2) {
		*why = "no AFN";
		return (-1);
	}
	f->afn = b[o];
	dt1 = b[o + 1];
	dt2 = b[o + 2];
	o += 3;
	if (dt1 == 0 || (dt1 & (dt1 - 1)) != 0 || dt2 > 30) {
		*why = "not one Fn";
		return (-1);
	}
	for (bit = 0; (dt1 >> bit) != 1; bit++)
		;
	f->fn = (uint16_t)(dt2 * 8 + bit + 1);
	f->data = b + o;
	f->len = len - 2 - o;
	return (0);
}

void
q_rx_init(struct q_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
}

static void
q_rx_drop(struct q_rx *rx, size_t n)
{
	if (n >= rx->len) {
		rx->len = 0;
		return;
	}
	memmove(rx->buf, rx->buf + n, rx->len - n);
	rx->len -= n;
}

size_t
q_rx_feed(struct q_rx *rx, const uint8_t *p, size_t n)
{
	if (rx->used > 0) {
		q_rx_drop(rx, rx->used);
		rx->used = 0;
	}
	if (n > sizeof(rx->buf) - rx->len)
		n = sizeof(rx->buf) - rx->len;
	memcpy(rx->buf + rx->len, p, n);
	rx->len += n;
	return (n);
}

int
q_rx_next(struct q_rx *rx, const uint8_t **frame, size_t *len)
{
	const uint8_t	*s;
	size_t		 total;

	if (rx->used > 0) {
		q_rx_drop(rx, rx->used);
		rx->used = 0;
	}
	s = memchr(rx->buf, Q_START, rx->len);
	q_rx_drop(rx, s == NULL ? rx->len : (size_t)(s - rx->buf));
	if (rx->len < 3)
		return (0);
	total = (size_t)rx->buf[1] | (size_t)rx->buf[2] << 8;
	if (total < Q_MIN || total > Q_MAX)
		goto bad;
	if (rx->len < total)
		return (0);
	if (rx->buf[total - 1] != Q_END ||
	    q_sum(rx->buf + 3, total - 5) != rx->buf[total - 2])
		goto bad;
	*frame = rx->buf;
	*len = total;
	rx->used = total;
	return (1);
bad:
	rx->bad++;
	q_rx_drop(rx, 1);
	return (-1);
}

void
q_rx_stale(struct q_rx *rx)
{
	if (rx->used > 0) {
		q_rx_drop(rx, rx->used);
		rx->used = 0;
	}
	if (rx->len > 0) {
		rx->bad++;
		q_rx_drop(rx, 1);
	}
}

uint32_t
q_get(const uint8_t *p, size_t len, size_t *off, size_t n, bool *ok)
{
	uint32_t	 v = 0;
	size_t		 i;

	if (!*ok || n > 4 || len < n || *off > len - n) {
		*ok = false;
		return (0);
	}
	for (i = 0; i < n; i++)
		v |= (uint32_t)p[*off + i] << (8 * i);
	*off += n;
	return (v);
}

size_t
q_put(uint8_t *p, size_t cap, size_t off, uint32_t v, size_t n)
{
	size_t		 i;

	if (off > cap || cap - off < n)
		return (cap + 1);
	for (i = 0; i < n; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
	return (off + n);
}

size_t
q_put_bytes(uint8_t *p, size_t cap, size_t off, const void *b, size_t n)
{
	if (off > cap || cap - off < n)
		return (cap + 1);
	if (n > 0)
		memcpy(p + off, b, n);
	return (off + n);
}

int
q_addr_parse(const char *s, uint8_t out[6])
{
	unsigned int	 i;
	int		 hi, lo;

	if (strlen(s) != 12)
		return (-1);
	for (i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[2 * i]) ||
		    !isxdigit((unsigned char)s[2 * i + 1]))
			return (-1);
		hi = isdigit((unsigned char)s[2 * i]) ? s[2 * i] - '0' :
		    toupper((unsigned char)s[2 * i]) - 'A' + 10;
		lo = isdigit((unsigned char)s[2 * i + 1]) ?
		    s[2 * i + 1] - '0' :
		    toupper((unsigned char)s[2 * i + 1]) - 'A' + 10;
		out[5 - i] = (uint8_t)(hi << 4 | lo);
	}
	return (0);
}

void
q_addr_fmt(const uint8_t in[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02X%02X%02X%02X%02X%02X", in[5], in[4], in[3],
	    in[2], in[1], in[0]);
}
