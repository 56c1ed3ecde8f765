/*
 * up_seg.c: segmentation of compact messages (docs/up-protocol.md
 * §11.8).
 *
 * A compact message longer than the link's MTU (an OFFER, an ANNOUNCE,
 * a RESULT with a node id on a 20-byte link) travels as SEG frames:
 * slice i of n, every slice but the last c bytes long.  The receiver
 * keeps one message in reassembly in a fixed buffer; segments may come
 * in any order, repeated, from several repeats of the message, and the
 * last one may come first (it is parked at the end of the buffer until
 * a full-size segment tells where it goes).  The message carries its
 * own CRC-16, so a reassembly that mixed two messages is caught before
 * anything acts on it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

#if UP_SEG_NMAX > 64 || UP_SEG_NMAX < 2
#error "UP_SEG_NMAX must be 2 to 64: segments are tracked in a uint64_t"
#endif

/* Chunk bytes of one SEG frame on a link of mtu bytes. */
static size_t
up_seg_chunk(size_t mtu, uint8_t seg_cflags)
{
	if (mtu > UP_FRAME_MAX)
		mtu = UP_FRAME_MAX;
	return (mtu - UP_SEG_HDR_LEN -
	    ((seg_cflags & UP_CF_CRC) != 0 ? UP_C_CRC_LEN : 0));
}

int
up_seg_count(size_t msg_len, size_t mtu, uint8_t seg_cflags)
{
	size_t		 c, n;

	if (mtu < UP_C_MTU_MIN || (seg_cflags & ~(UP_CF_CRC | UP_C_X)) != 0)
		return (UP_ELEN);
	if (msg_len <= mtu && msg_len <= UP_FRAME_MAX)
		return (1);
	c = up_seg_chunk(mtu, seg_cflags);
	n = msg_len / c + (msg_len % c != 0);
	if (n > UP_SEG_NMAX)
		return (UP_ELEN);
	return ((int)n);
}

int
up_seg_build(const uint8_t *msg, size_t msg_len, size_t mtu,
    uint8_t seg_cflags, uint8_t mtag, uint8_t i, uint8_t *out, size_t cap)
{
	struct up_msg	 m;
	size_t		 c, off;
	int		 n;

	if (msg == NULL || out == NULL)
		return (UP_EINVAL);
	if ((n = up_seg_count(msg_len, mtu, seg_cflags)) < 0)
		return (n);
	if (n < 2 || i >= n)
		return (UP_EINVAL);
	c = up_seg_chunk(mtu, seg_cflags);
	off = (size_t)i * c;
	memset(&m, 0, sizeof(m));
	m.type = UP_T_SEG;
	m.form = UP_FORM_COMPACT;
	m.cx.cflags = seg_cflags & UP_CF_CRC;
	m.u.seg.from_node = (seg_cflags & UP_C_X) != 0;
	m.u.seg.mtag = mtag;
	m.u.seg.i = i;
	m.u.seg.n = (uint8_t)n;
	m.u.seg.len = (uint16_t)(msg_len - off < c ? msg_len - off : c);
	m.u.seg.chunk = msg + off;
	return (up_encode(&m, out, cap < mtu ? cap : mtu));
}

void
up_seg_rx_init(struct up_seg_rx *rx, uint8_t *buf, size_t cap)
{
	memset(rx, 0, sizeof(*rx));
	rx->buf = buf;
	rx->cap = buf != NULL ? cap : 0;
}

void
up_seg_rx_reset(struct up_seg_rx *rx)
{
	rx->active = false;
	rx->done = false;
	rx->stashed = false;
}

/* Starts reassembling the message that `s' belongs to. */
static void
up_seg_start(struct up_seg_rx *rx, const struct up_seg *s)
{
	if (rx->active)
		rx->discarded++;
	rx->active = true;
	rx->done = false;
	rx->stashed = false;
	rx->mtag = s->mtag;
	rx->n = s->n;
	rx->got = 0;
	rx->ngot = 0;
	rx->c = 0;
	rx->last_len = 0;
}

/* Drops the message in reassembly; returns `e'. */
static int
up_seg_drop(struct up_seg_rx *rx, int e)
{
	rx->active = false;
	rx->stashed = false;
	rx->discarded++;
	return (e);
}

/*
 * Places `s' in the message under way.  Returns 1 when it contradicts
 * what is held (start again with it), 0 when placed, or an error.
 */
static int
up_seg_place(struct up_seg_rx *rx, const struct up_seg *s)
{
	bool		 last = s->i == s->n - 1;
	size_t		 at;

	if (!last) {
		if (rx->c == 0) {
			/* The first full-size segment: c is known now. */
			if ((size_t)(rx->n - 1) * s->len +
			    (rx->stashed ? rx->last_len : 1) > rx->cap)
				return (UP_ELEN);
			if (rx->stashed && rx->last_len > s->len)
				return (1);
			rx->c = s->len;
			if (rx->stashed) {
				memmove(rx->buf + (size_t)(rx->n - 1) * rx->c,
				    rx->buf + rx->cap - rx->last_len,
				    rx->last_len);
				rx->stashed = false;
			}
		} else if (s->len != rx->c)
			return (1);
		memcpy(rx->buf + (size_t)s->i * rx->c, s->chunk, s->len);
		return (0);
	}
	if (rx->c == 0) {
		/* Park the last segment at the end until c is known. */
		if (s->len > rx->cap)
			return (UP_ELEN);
		memcpy(rx->buf + rx->cap - s->len, s->chunk, s->len);
		rx->stashed = true;
		rx->last_len = s->len;
		return (0);
	}
	if (s->len > rx->c)
		return (1);
	at = (size_t)(rx->n - 1) * rx->c;
	if (at + s->len > rx->cap)
		return (UP_ELEN);
	memcpy(rx->buf + at, s->chunk, s->len);
	rx->last_len = s->len;
	return (0);
}

int
up_seg_rx_put(struct up_seg_rx *rx, const struct up_seg *s)
{
	size_t		 len;
	uint16_t	 crc;
	int		 e;

	if (rx == NULL || s == NULL || rx->buf == NULL || s->chunk == NULL ||
	    s->n < 2 || s->n > UP_SEG_NMAX || s->i >= s->n || s->len == 0)
		return (UP_EINVAL);
	if (!rx->active || s->mtag != rx->mtag || s->n != rx->n) {
		/* A message acted on already: its repeats are ignored. */
		if (rx->done && s->mtag == rx->done_mtag && s->n == rx->done_n)
			return (0);
		up_seg_start(rx, s);
	}
	if ((rx->got >> s->i) & 1)
		return (0);		/* a duplicate */
	if ((e = up_seg_place(rx, s)) == 1) {
		/* It contradicts the others: the newest wins. */
		up_seg_start(rx, s);
		e = up_seg_place(rx, s);
	}
	if (e != 0)
		return (up_seg_drop(rx, e < 0 ? e : UP_ELEN));
	rx->got |= (uint64_t)1 << s->i;
	if (++rx->ngot < rx->n)
		return (0);

	/* Complete: n >= 2, so c is known and nothing is parked. */
	len = (size_t)(rx->n - 1) * rx->c + rx->last_len;
	rx->active = false;
	rx->done = true;
	rx->done_mtag = rx->mtag;
	rx->done_n = rx->n;
	/* A compact message, not a SEG, with its CRC-16 (§11.8). */
	if (len < 1 + UP_C_CRC_LEN || (rx->buf[0] & UP_C_MARK) == 0 ||
	    (rx->buf[0] & UP_CF_CRC) == 0) {
		rx->discarded++;
		return (UP_EBADCRC);
	}
	if ((rx->buf[0] & UP_C_TYPE) == UP_T_SEG) {
		rx->discarded++;
		return (UP_ETYPE);
	}
	crc = (uint16_t)(rx->buf[len - 2] | rx->buf[len - 1] << 8);
	if (up_crc16_ccitt(UP_CRC16_INIT, rx->buf, len - 2) != crc) {
		rx->discarded++;
		return (UP_EBADCRC);
	}
	rx->completed++;
	return ((int)len);
}
