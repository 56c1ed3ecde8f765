/*
 * up_vcdiff.c: a streaming VCDIFF decoder (RFC 3284) with bounded memory.
 *
 * The delta is read through a callback (on a node it sits in the package
 * area of flash), so only a small read-ahead buffer per section is held;
 * the source (the running image) is read on demand for every COPY from
 * it; the target goes out sequentially through a write callback.  RAM is
 * the struct (address caches and section buffers) plus the caller's
 * window buffer: a target window is assembled there because a COPY may
 * point into the window's own earlier bytes (§3).  When the window does
 * not fit and the caller can read back what it wrote, the buffer is
 * flushed early and such COPYs read the bytes back (research/multicast-
 * delta.md §5.2: "that can be zero if the stub reads the bytes back from
 * the output flash slot").
 *
 * Every length is checked before it is used: a window's sections must lie
 * inside the window and the window inside the delta, every address inside
 * source + target-so-far, every size inside the target window.  Anything
 * else stops the decode with an up_err and a reason (up_vcd_why()).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

/* Header (§4.1). */
#define VCD_MAGIC0		0xd6	/* 'V' | 0x80 */
#define VCD_MAGIC1		0xc3	/* 'C' | 0x80 */
#define VCD_MAGIC2		0xc4	/* 'D' | 0x80 */
#define VCD_VERSION		0x00
#define VCD_DECOMPRESS		0x01	/* Hdr_Indicator */
#define VCD_CODETABLE		0x02
#define VCD_APPHEADER		0x04	/* xdelta3's extension */

/* Win_Indicator (§4.2), plus xdelta3's checksum bit. */
#define VCD_SOURCE		0x01
#define VCD_TARGET		0x02
#define VCD_ADLER32		0x04

/* Instruction types (§5.4) and address modes (§5.3). */
#define VCD_NOOP		0
#define VCD_ADD			1
#define VCD_RUN			2
#define VCD_COPY		3
#define VCD_SELF		0
#define VCD_HERE		1
#define VCD_MODES		(2 + UP_VCD_NEAR + UP_VCD_SAME)

/* Decoder phases. */
#define PH_HEADER		0	/* file header not read yet */
#define PH_WINDOW		1	/* next: a window header or the end */
#define PH_INST			2	/* in a window's instructions */
#define PH_DONE			3

/* Largest window header: §4.2 fields as 5-byte integers + checksum. */
#define VCD_WINHDR_MAX		48

struct vcd_inst {
	uint8_t		 type;
	uint8_t		 size;		/* 0: size follows */
	uint8_t		 mode;
};

static int
vcd_fail(struct up_vcd *v, int err, const char *why)
{
	if (v->err == UP_OK) {
		v->err = err;
		v->why = why;
	}
	return (v->err);
}

/*
 * The default instruction code table (§5.6), computed instead of stored:
 *     0        RUN 0
 *     1..18    ADD 0, 1..17
 *    19..162   COPY 0, 4..18 in modes 0..8 (16 codes per mode)
 *   163..234   ADD 1..4 + COPY 4..6, modes 0..5 (12 codes per mode)
 *   235..246   ADD 1..4 + COPY 4, modes 6..8 (4 codes per mode)
 *   247..255   COPY 4 in modes 0..8 + ADD 1
 */
static void
vcd_code(uint8_t code, struct vcd_inst *a, struct vcd_inst *b)
{
	unsigned int	 k;

	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	if (code == 0) {
		a->type = VCD_RUN;
	} else if (code <= 18) {
		a->type = VCD_ADD;
		a->size = (uint8_t)(code - 1);
	} else if (code <= 162) {
		k = code - 19u;
		a->type = VCD_COPY;
		a->mode = (uint8_t)(k / 16);
		a->size = (uint8_t)(k % 16 == 0 ? 0 : k % 16 + 3);
	} else if (code <= 234) {
		k = code - 163u;
		a->type = VCD_ADD;
		a->size = (uint8_t)(k % 12 / 3 + 1);
		b->type = VCD_COPY;
		b->size = (uint8_t)(k % 3 + 4);
		b->mode = (uint8_t)(k / 12);
	} else if (code <= 246) {
		k = code - 235u;
		a->type = VCD_ADD;
		a->size = (uint8_t)(k % 4 + 1);
		b->type = VCD_COPY;
		b->size = 4;
		b->mode = (uint8_t)(6 + k / 4);
	} else {
		a->type = VCD_COPY;
		a->size = 4;
		a->mode = (uint8_t)(code - 247u);
		b->type = VCD_ADD;
		b->size = 1;
	}
}

/* Adler-32 (RFC 1950 §8.2), what xdelta3 puts in VCD_ADLER32 windows. */
static uint32_t
vcd_adler32(uint32_t adler, const uint8_t *p, size_t n)
{
	uint32_t	 a = adler & 0xffff, b = adler >> 16;
	size_t		 k;

	while (n > 0) {
		/* 5552 bytes keep b below 2^32 before the modulo. */
		k = n < 5552 ? n : 5552;
		n -= k;
		while (k-- > 0) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return (b << 16 | a);
}

/*
 * A VCDIFF integer (§2): base 128, most significant digit first, high
 * bit set on every byte but the last.  Anything over 32 bits is refused.
 */
static uint32_t
vcd_rd_int(struct up_rd *rd)
{
	uint64_t	 v = 0;
	uint8_t		 c;
	int		 i;

	for (i = 0; i < 10; i++) {
		c = up_rd_u8(rd);
		if (up_rd_err(rd) != UP_OK)
			return (0);
		v = v << 7 | (c & 0x7f);
		if (v > UINT32_MAX) {
			rd->err = UP_ERANGE;
			return (0);
		}
		if ((c & 0x80) == 0)
			return ((uint32_t)v);
	}
	rd->err = UP_ERANGE;
	return (0);
}

/* ------------------------------------------------------------------ */
/* Sections                                                           */

static void
vcd_sec_init(struct up_vcd_sec *s, uint32_t off, uint32_t len)
{
	s->next = off;
	s->end = off + len;
	s->at = s->have = 0;
}

static uint32_t
vcd_sec_left(const struct up_vcd_sec *s)
{
	return (s->end - s->next + (uint32_t)(s->have - s->at));
}

static int
vcd_sec_fill(struct up_vcd *v, struct up_vcd_sec *s)
{
	uint32_t	 n;

	n = s->end - s->next;
	if (n > sizeof(s->buf))
		n = sizeof(s->buf);
	if (v->io->delta_read(v->ctx, s->next, s->buf, n) != 0)
		return (vcd_fail(v, UP_EPORT, "cannot read the delta"));
	s->next += n;
	s->at = 0;
	s->have = (uint16_t)n;
	return (UP_OK);
}

static uint8_t
vcd_sec_u8(struct up_vcd *v, struct up_vcd_sec *s, const char *what)
{
	if (v->err != UP_OK)
		return (0);
	if (s->at == s->have) {
		if (s->next == s->end) {
			(void)vcd_fail(v, UP_ESHORT, what);
			return (0);
		}
		if (vcd_sec_fill(v, s) != UP_OK)
			return (0);
	}
	return (s->buf[s->at++]);
}

static uint32_t
vcd_sec_int(struct up_vcd *v, struct up_vcd_sec *s, const char *what)
{
	uint64_t	 x = 0;
	uint8_t		 c;
	int		 i;

	for (i = 0; i < 10; i++) {
		c = vcd_sec_u8(v, s, what);
		if (v->err != UP_OK)
			return (0);
		x = x << 7 | (c & 0x7f);
		if (x > UINT32_MAX)
			break;
		if ((c & 0x80) == 0)
			return ((uint32_t)x);
	}
	(void)vcd_fail(v, UP_ERANGE, "integer over 32 bits");
	return (0);
}

/* Copies n section bytes to dst; large runs bypass the buffer. */
static int
vcd_sec_bytes(struct up_vcd *v, struct up_vcd_sec *s, uint8_t *dst,
    uint32_t n)
{
	uint32_t	 k;

	if (n > vcd_sec_left(s))
		return (vcd_fail(v, UP_ESHORT, "ADD/RUN data runs past the "
		    "data section"));
	k = (uint32_t)(s->have - s->at);
	if (k > n)
		k = n;
	memcpy(dst, s->buf + s->at, k);
	s->at = (uint16_t)(s->at + k);
	dst += k;
	n -= k;
	if (n == 0)
		return (UP_OK);
	if (n >= sizeof(s->buf)) {
		if (v->io->delta_read(v->ctx, s->next, dst, n) != 0)
			return (vcd_fail(v, UP_EPORT, "cannot read the delta"));
		s->next += n;
		return (UP_OK);
	}
	if (vcd_sec_fill(v, s) != UP_OK)
		return (v->err);
	memcpy(dst, s->buf, n);
	s->at = (uint16_t)n;
	return (UP_OK);
}

/* ------------------------------------------------------------------ */
/* Headers                                                            */

/* The file header (§4.1); xdelta3's application header is skipped. */
static int
vcd_header(struct up_vcd *v)
{
	uint8_t		 h[16];
	struct up_rd	 rd;
	uint32_t	 n, applen;
	uint8_t		 ind;

	n = v->delta_len < sizeof(h) ? v->delta_len : (uint32_t)sizeof(h);
	if (v->io->delta_read(v->ctx, 0, h, n) != 0)
		return (vcd_fail(v, UP_EPORT, "cannot read the delta"));
	up_rd_init(&rd, h, n);
	if (up_rd_u8(&rd) != VCD_MAGIC0 || up_rd_u8(&rd) != VCD_MAGIC1 ||
	    up_rd_u8(&rd) != VCD_MAGIC2) {
		if (up_rd_err(&rd) != UP_OK)
			return (vcd_fail(v, UP_ESHORT, "truncated header"));
		return (vcd_fail(v, UP_ERANGE, "not VCDIFF (bad magic)"));
	}
	if (up_rd_u8(&rd) != VCD_VERSION && up_rd_err(&rd) == UP_OK)
		return (vcd_fail(v, UP_EVERSION, "VCDIFF version is not 0 "
		    "(open-vcdiff extensions?)"));
	ind = up_rd_u8(&rd);
	if (up_rd_err(&rd) != UP_OK)
		return (vcd_fail(v, UP_ESHORT, "truncated header"));
	if (ind & VCD_DECOMPRESS)
		return (vcd_fail(v, UP_EVERSION, "secondary compression "
		    "(make deltas with xdelta3 -S none)"));
	if (ind & VCD_CODETABLE)
		return (vcd_fail(v, UP_EVERSION, "application-defined code "
		    "table"));
	if (ind & ~VCD_APPHEADER)
		return (vcd_fail(v, UP_EVERSION, "unknown header indicator "
		    "bits"));
	v->off = (uint32_t)rd.off;
	if (ind & VCD_APPHEADER) {
		applen = vcd_rd_int(&rd);
		if (up_rd_err(&rd) == UP_ERANGE)
			return (vcd_fail(v, UP_ERANGE, "application header "
			    "length over 32 bits"));
		if (up_rd_err(&rd) != UP_OK)
			return (vcd_fail(v, UP_ESHORT, "truncated header"));
		if (applen > v->delta_len - rd.off)
			return (vcd_fail(v, UP_ESHORT, "application header "
			    "runs past the delta"));
		v->off = (uint32_t)rd.off + applen;
	}
	v->phase = PH_WINDOW;
	return (UP_OK);
}

/* Reads the window header at v->off (§4.2, §4.3) and sets the window up. */
static int
vcd_window(struct up_vcd *v)
{
	uint8_t		 h[VCD_WINHDR_MAX];
	struct up_rd	 rd;
	uint64_t	 end;
	uint32_t	 n, enc_len, enc_start, dlen, ilen, alen, sec;
	uint8_t		 dind;

	n = v->delta_len - v->off;
	if (n > sizeof(h))
		n = sizeof(h);
	if (v->io->delta_read(v->ctx, v->off, h, n) != 0)
		return (vcd_fail(v, UP_EPORT, "cannot read the delta"));
	up_rd_init(&rd, h, n);
	v->win_ind = up_rd_u8(&rd);
	if (up_rd_err(&rd) == UP_OK &&
	    (v->win_ind & ~(VCD_SOURCE | VCD_TARGET | VCD_ADLER32)) != 0)
		return (vcd_fail(v, UP_EVERSION, "unknown window indicator "
		    "bits"));
	if ((v->win_ind & (VCD_SOURCE | VCD_TARGET)) ==
	    (VCD_SOURCE | VCD_TARGET))
		return (vcd_fail(v, UP_ERANGE, "window both VCD_SOURCE and "
		    "VCD_TARGET"));
	v->src_len = v->src_pos = 0;
	if (v->win_ind & (VCD_SOURCE | VCD_TARGET)) {
		v->src_len = vcd_rd_int(&rd);
		v->src_pos = vcd_rd_int(&rd);
	}
	enc_len = vcd_rd_int(&rd);
	enc_start = (uint32_t)rd.off;
	v->tlen = vcd_rd_int(&rd);
	dind = up_rd_u8(&rd);
	dlen = vcd_rd_int(&rd);
	ilen = vcd_rd_int(&rd);
	alen = vcd_rd_int(&rd);
	v->has_adler = (v->win_ind & VCD_ADLER32) != 0;
	v->adler = 0;
	if (v->has_adler) {
		/* xdelta3 writes it big-endian, before the data section. */
		v->adler = (uint32_t)up_rd_u8(&rd) << 24;
		v->adler |= (uint32_t)up_rd_u8(&rd) << 16;
		v->adler |= (uint32_t)up_rd_u8(&rd) << 8;
		v->adler |= up_rd_u8(&rd);
	}
	if (up_rd_err(&rd) == UP_ERANGE)
		return (vcd_fail(v, UP_ERANGE, "window integer over 32 bits"));
	if (up_rd_err(&rd) != UP_OK)
		return (vcd_fail(v, UP_ESHORT, "truncated window header"));
	if (dind != 0)
		return (vcd_fail(v, UP_EVERSION, "compressed sections "
		    "(make deltas with xdelta3 -S none)"));

	/* The delta encoding is exactly the rest of the header + sections. */
	end = (uint64_t)(rd.off - enc_start) + dlen + ilen + alen;
	if (end != enc_len)
		return (vcd_fail(v, UP_ELEN, "window lengths do not add up"));
	end = (uint64_t)v->off + enc_start + enc_len;
	if (end > v->delta_len)
		return (vcd_fail(v, UP_ESHORT, "window runs past the delta"));

	/* The source segment: the base image, or target already written. */
	if (v->win_ind & VCD_SOURCE) {
		if ((uint64_t)v->src_pos + v->src_len > v->source_len)
			return (vcd_fail(v, UP_ERANGE, "source segment "
			    "outside the source"));
	} else if (v->win_ind & VCD_TARGET) {
		if (v->io->target_read == NULL)
			return (vcd_fail(v, UP_EVERSION, "VCD_TARGET window "
			    "and no target_read"));
		if ((uint64_t)v->src_pos + v->src_len > v->written)
			return (vcd_fail(v, UP_ERANGE, "VCD_TARGET segment "
			    "outside the target written"));
	}
	if ((uint64_t)v->written + v->tlen > v->target_max)
		return (vcd_fail(v, UP_ERANGE, "target longer than "
		    "expected"));
	/* Addresses run over source + target window: both in 32 bits. */
	if ((uint64_t)v->src_len + v->tlen > UINT32_MAX)
		return (vcd_fail(v, UP_ERANGE, "window too large"));
	if (v->tlen > v->buf_len && v->io->target_read == NULL)
		return (vcd_fail(v, UP_ENOSPC, "target window larger than "
		    "the window buffer"));

	sec = v->off + (uint32_t)rd.off;
	vcd_sec_init(&v->data, sec, dlen);
	vcd_sec_init(&v->inst, sec + dlen, ilen);
	vcd_sec_init(&v->addr, sec + dlen + ilen, alen);
	v->wend = (uint32_t)end;
	v->t = v->flushed = 0;
	v->adler_run = 1;
	/* The caches start afresh in every window (§5.1). */
	memset(v->near, 0, sizeof(v->near));
	memset(v->same, 0, sizeof(v->same));
	v->next_slot = 0;
	if (v->tlen > v->max_window)
		v->max_window = v->tlen;
	v->phase = PH_INST;
	return (UP_OK);
}

/* ------------------------------------------------------------------ */
/* Target window                                                      */

/* Writes the buffered window bytes [flushed, t) out. */
static int
vcd_flush(struct up_vcd *v)
{
	uint32_t	 n = v->t - v->flushed;

	if (n == 0)
		return (UP_OK);
	if (v->io->target_write(v->ctx, v->written + v->flushed, v->buf,
	    n) != 0)
		return (vcd_fail(v, UP_EPORT, "cannot write the target"));
	if (v->has_adler)
		v->adler_run = vcd_adler32(v->adler_run, v->buf, n);
	v->flushed = v->t;
	return (UP_OK);
}

/*
 * Room for up to `want' more bytes at buf[t - flushed]: flushes when the
 * buffer is full (only possible with target_read, checked per window).
 * Returns how many bytes fit now (>= 1), or 0 after an error.
 */
static uint32_t
vcd_room(struct up_vcd *v, uint32_t want)
{
	uint32_t	 room;

	if (v->t - v->flushed == v->buf_len && vcd_flush(v) != UP_OK)
		return (0);
	room = v->buf_len - (v->t - v->flushed);
	return (want < room ? want : room);
}

/* Reads n bytes of the source segment at seg_off into dst. */
static int
vcd_source(struct up_vcd *v, uint32_t seg_off, uint8_t *dst, uint32_t n)
{
	uint32_t	 off = v->src_pos + seg_off;
	int		 r;

	if (v->win_ind & VCD_TARGET) {
		r = v->io->target_read(v->ctx, off, dst, n);
		v->readbacks++;
	} else
		r = v->io->source_read(v->ctx, off, dst, n);
	if (r != 0)
		return (vcd_fail(v, UP_EPORT, "cannot read the source"));
	return (UP_OK);
}

/*
 * COPY of `size' bytes from address `addr' of source segment + target
 * window (§3): the part below src_len comes from the segment, the rest
 * from this window's earlier bytes, which may overlap what is being
 * written (a repeating pattern), hence the forward byte copy.
 */
static int
vcd_copy(struct up_vcd *v, uint32_t addr, uint32_t size)
{
	uint32_t	 k, s, i;
	uint8_t		*dst;

	while (size > 0) {
		if ((k = vcd_room(v, size)) == 0)
			return (v->err);
		dst = v->buf + (v->t - v->flushed);
		if (addr < v->src_len) {
			if (k > v->src_len - addr)
				k = v->src_len - addr;
			if (vcd_source(v, addr, dst, k) != UP_OK)
				return (v->err);
		} else {
			s = addr - v->src_len;		/* < t */
			if (s < v->flushed) {
				/* Flushed already: read it back. */
				if (k > v->flushed - s)
					k = v->flushed - s;
				if (v->io->target_read(v->ctx,
				    v->written + s, dst, k) != 0)
					return (vcd_fail(v, UP_EPORT,
					    "cannot read the target back"));
				v->readbacks++;
			} else {
				s -= v->flushed;
				for (i = 0; i < k; i++)
					dst[i] = v->buf[s + i];
			}
		}
		v->t += k;
		addr += k;
		size -= k;
	}
	return (UP_OK);
}

static int
vcd_add(struct up_vcd *v, uint32_t size)
{
	uint32_t	 k;

	while (size > 0) {
		if ((k = vcd_room(v, size)) == 0)
			return (v->err);
		if (vcd_sec_bytes(v, &v->data, v->buf + (v->t - v->flushed),
		    k) != UP_OK)
			return (v->err);
		v->t += k;
		size -= k;
	}
	return (UP_OK);
}

static int
vcd_run(struct up_vcd *v, uint32_t size)
{
	uint32_t	 k;
	uint8_t		 b;

	b = vcd_sec_u8(v, &v->data, "RUN byte past the data section");
	if (v->err != UP_OK)
		return (v->err);
	while (size > 0) {
		if ((k = vcd_room(v, size)) == 0)
			return (v->err);
		memset(v->buf + (v->t - v->flushed), b, k);
		v->t += k;
		size -= k;
	}
	return (UP_OK);
}

/* Decodes a COPY address (§5.3) and updates the caches (§5.1). */
static uint32_t
vcd_address(struct up_vcd *v, uint8_t mode, uint32_t here)
{
	uint64_t	 a;
	uint32_t	 x, addr;

	if (mode == VCD_SELF) {
		addr = vcd_sec_int(v, &v->addr, "address past the address "
		    "section");
	} else if (mode == VCD_HERE) {
		x = vcd_sec_int(v, &v->addr, "address past the address "
		    "section");
		if (v->err == UP_OK && x > here)
			(void)vcd_fail(v, UP_ERANGE, "HERE address before "
			    "the start");
		addr = here - x;
	} else if (mode < 2 + UP_VCD_NEAR) {
		x = vcd_sec_int(v, &v->addr, "address past the address "
		    "section");
		a = (uint64_t)v->near[mode - 2] + x;
		if (a > UINT32_MAX)
			(void)vcd_fail(v, UP_ERANGE, "NEAR address over 32 "
			    "bits");
		addr = (uint32_t)a;
	} else {
		x = vcd_sec_u8(v, &v->addr, "address past the address "
		    "section");
		addr = v->same[(mode - (2 + UP_VCD_NEAR)) * 256 + x];
	}
	if (v->err != UP_OK)
		return (0);
	if (addr >= here) {
		(void)vcd_fail(v, UP_ERANGE, "COPY from beyond the bytes "
		    "decoded so far");
		return (0);
	}
	v->near[v->next_slot] = addr;
	v->next_slot = (v->next_slot + 1) % UP_VCD_NEAR;
	v->same[addr % (UP_VCD_SAME * 256)] = addr;
	return (addr);
}

/* One half of an instruction code. */
static int
vcd_half(struct up_vcd *v, const struct vcd_inst *in)
{
	uint32_t	 size, addr;

	if (in->type == VCD_NOOP)
		return (UP_OK);
	size = in->size;
	if (size == 0)
		size = vcd_sec_int(v, &v->inst, "size past the instruction "
		    "section");
	if (v->err != UP_OK)
		return (v->err);
	if (size > v->tlen - v->t)
		return (vcd_fail(v, UP_ERANGE, "instruction runs past the "
		    "target window"));
	switch (in->type) {
	case VCD_ADD:
		return (vcd_add(v, size));
	case VCD_RUN:
		return (vcd_run(v, size));
	default:
		addr = vcd_address(v, in->mode, v->src_len + v->t);
		if (v->err != UP_OK)
			return (v->err);
		return (vcd_copy(v, addr, size));
	}
}

/* The window's instructions are done: check and write it out. */
static int
vcd_window_end(struct up_vcd *v)
{
	if (v->t != v->tlen)
		return (vcd_fail(v, UP_ELEN, "instructions do not fill the "
		    "target window"));
	if (vcd_sec_left(&v->data) != 0 || vcd_sec_left(&v->addr) != 0)
		return (vcd_fail(v, UP_ELEN, "data or address section not "
		    "used up"));
	if (vcd_flush(v) != UP_OK)
		return (v->err);
	if (v->has_adler && v->adler_run != v->adler)
		return (vcd_fail(v, UP_EBADCRC, "adler32 mismatch"));
	v->written += v->tlen;
	v->off = v->wend;
	v->windows++;
	v->phase = PH_WINDOW;
	return (UP_OK);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                       */

int
up_vcd_init(struct up_vcd *v, const struct up_vcd_io *io, void *ctx,
    uint32_t delta_len, uint32_t source_len, uint32_t target_max,
    uint8_t *buf, size_t buf_len)
{
	memset(v, 0, sizeof(*v));
	if (io == NULL || io->delta_read == NULL || io->source_read == NULL ||
	    io->target_write == NULL || buf == NULL ||
	    buf_len < UP_VCD_BUF_MIN) {
		v->err = UP_EINVAL;
		v->why = "bad arguments";
		return (UP_EINVAL);
	}
	v->io = io;
	v->ctx = ctx;
	v->buf = buf;
	v->buf_len = buf_len > UINT32_MAX ? UINT32_MAX : (uint32_t)buf_len;
	v->delta_len = delta_len;
	v->source_len = source_len;
	v->target_max = target_max;
	v->why = "";
	v->phase = PH_HEADER;
	return (UP_OK);
}

/* Target bytes decoded so far, the current window's included. */
static uint32_t
vcd_produced(const struct up_vcd *v)
{
	return (v->written + (v->phase == PH_INST ? v->t : 0));
}

int
up_vcd_run(struct up_vcd *v, uint32_t budget)
{
	struct vcd_inst	 a, b;
	uint32_t	 start = vcd_produced(v);
	uint8_t		 code;

	while (v->err == UP_OK) {
		switch (v->phase) {
		case PH_HEADER:
			(void)vcd_header(v);
			break;
		case PH_WINDOW:
			if (v->off == v->delta_len) {
				v->phase = PH_DONE;
				break;
			}
			if (budget != 0 && vcd_produced(v) - start >= budget)
				return (UP_VCD_MORE);
			(void)vcd_window(v);
			break;
		case PH_INST:
			if (vcd_sec_left(&v->inst) == 0) {
				(void)vcd_window_end(v);
				break;
			}
			if (budget != 0 && vcd_produced(v) - start >= budget)
				return (UP_VCD_MORE);
			code = vcd_sec_u8(v, &v->inst, "instruction section");
			vcd_code(code, &a, &b);
			if (vcd_half(v, &a) == UP_OK)
				(void)vcd_half(v, &b);
			break;
		default:
			return (UP_OK);
		}
	}
	return (v->err);
}

uint32_t
up_vcd_written(const struct up_vcd *v)
{
	/* A window that failed may have been partly written already. */
	return (v->written + (v->phase == PH_INST ? v->flushed : 0));
}

const char *
up_vcd_why(const struct up_vcd *v)
{
	return (v->why != NULL ? v->why : "");
}
