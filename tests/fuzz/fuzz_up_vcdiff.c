/*
 * fuzz_up_vcdiff.c: the VCDIFF decoder (up/up_vcdiff.c) fed random
 * deltas against a base image, in budgeted steps as the node engine runs
 * it (up_node.c, NODE_W_APPLY: up_vcd_run(UP_NODE_APPLY_STEP) from each
 * up_node_tick()).
 *
 * Input: a 6-byte header, then the delta.
 *   h[0]  bit 0: target_read is given (the node's port always gives it);
 *         bits 1-2: the window buffer, 64, 200, 4096 or 16384 bytes;
 *         bit 3: one callback fails, the h[5]-th one (a flash error);
 *   h[1]  the budget of a step: 0 is one call for the whole delta,
 *         else h[1] * 97 target bytes;
 *   h[2..3] the base image's length (u16 LE), h[4] the target's
 *         expected length in KiB (target_max = h[4] * 256 + 255).
 * The base image is fz_base() below: a fixed pseudo-random stream with
 * repeats, the same every run, so seeds made with xdelta3 against it
 * (`xdelta3 -e -9 -S none -A -n -s BASE NEW OUT') decode.
 *
 * Invariants (abort() on a violation):
 *  - every callback stays inside what the header of up.h promises:
 *    delta reads inside [0, delta_len), source reads inside the base,
 *    the target written in order and never past target_max, read-backs
 *    only of bytes written;
 *  - an error is one of the documented ones and sticky: a call after it
 *    returns it again and does no I/O;
 *  - every step that returns UP_VCD_MORE made progress, and produced at
 *    most the budget plus one instruction (the current window): a step
 *    stops between instructions;
 *  - on UP_OK, up_vcd_written() is what was written;
 *  - the budget changes nothing: the same delta in one call gives the
 *    same result, the same reason and the same bytes; and the window
 *    buffer changes nothing but UP_ENOSPC (or a VCD_TARGET window)
 *    without target_read: with a buffer every window fits, the result
 *    and the bytes are the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"

#define FZ_HDR		6
#define FZ_PH_INST	2	/* up_vcdiff.c PH_INST */
#define FZ_TMAX		(255 * 256 + 255)
#define FZ_BIGBUF	(FZ_TMAX + 1)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz_run {
	const uint8_t	*delta;
	uint32_t	 delta_len;
	uint32_t	 base_len;
	uint32_t	 target_max;
	uint8_t		*out;		/* target_max bytes */
	uint32_t	 written;	/* bytes written, in order */
	unsigned int	 calls;
	unsigned int	 fail_at;	/* 0: no failure */
	bool		 stopped;	/* no I/O allowed any more */
};

static uint8_t	 base[65536];
static uint8_t	 out_a[FZ_TMAX], out_b[FZ_TMAX], out_c[FZ_TMAX];
static uint8_t	 buf_a[16384], buf_b[16384];
static uint8_t	 buf_c[FZ_BIGBUF];
static struct up_vcd v_a, v_b, v_c;

/* The base image: pseudo-random bytes with copies of earlier runs. */
static void
fz_base(void)
{
	uint32_t	 x = 0x9e3779b9;
	size_t		 i = 0, n, from;

	while (i < sizeof(base)) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		n = 16 + (x >> 24) % 200;
		if (n > sizeof(base) - i)
			n = sizeof(base) - i;
		if (i > 1024 && (x & 3) == 0) {
			from = (x >> 4) % (i - n);
			memmove(base + i, base + from, n);
		} else {
			for (from = 0; from < n; from++) {
				x ^= x << 13;
				x ^= x >> 17;
				x ^= x << 5;
				base[i + from] = (uint8_t)(x >> 7);
			}
		}
		i += n;
	}
}

static bool
fz_call(struct fz_run *r)
{
	if (r->stopped)
		abort();	/* I/O after a sticky error */
	return (r->fail_at != 0 && ++r->calls == r->fail_at);
}

static int
fz_delta(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct fz_run	*r = ctx;

	if (off > r->delta_len || n > r->delta_len - off)
		abort();
	if (fz_call(r))
		return (-1);
	memcpy(p, r->delta + off, n);
	return (0);
}

static int
fz_source(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct fz_run	*r = ctx;

	if (off > r->base_len || n > r->base_len - off || n == 0)
		abort();
	if (fz_call(r))
		return (-1);
	memcpy(p, base + off, n);
	return (0);
}

static int
fz_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct fz_run	*r = ctx;

	if (off != r->written || n > r->target_max - off || n == 0)
		abort();
	if (fz_call(r))
		return (-1);
	memcpy(r->out + off, p, n);
	r->written += (uint32_t)n;
	return (0);
}

static int
fz_readback(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct fz_run	*r = ctx;

	if (off > r->written || n > r->written - off || n == 0)
		abort();
	if (fz_call(r))
		return (-1);
	memcpy(p, r->out + off, n);
	return (0);
}

static const struct up_vcd_io io_rb = {
	.delta_read = fz_delta,
	.source_read = fz_source,
	.target_write = fz_write,
	.target_read = fz_readback
};
static const struct up_vcd_io io_norb = {
	.delta_read = fz_delta,
	.source_read = fz_source,
	.target_write = fz_write
};

static uint64_t
fz_produced(const struct up_vcd *v)
{
	return ((uint64_t)v->written + (v->phase == FZ_PH_INST ? v->t : 0));
}

/* Decodes the whole delta in steps of `budget'; returns the result. */
static int
fz_decode(struct up_vcd *v, struct fz_run *r, const struct up_vcd_io *io,
    uint8_t *buf, size_t buf_len, uint32_t budget)
{
	uint64_t	 before, step, limit;
	unsigned long	 steps = 0;
	int		 e;

	if (up_vcd_init(v, io, r, r->delta_len, r->base_len, r->target_max,
	    buf, buf_len) != UP_OK)
		abort();
	for (;;) {
		before = fz_produced(v);
		e = up_vcd_run(v, budget);
		if (e != UP_VCD_MORE)
			break;
		if (budget == 0)
			abort();	/* no budget, no MORE */
		step = fz_produced(v) - before;
		/* Progress, and the budget plus one instruction at most. */
		limit = (uint64_t)budget + v->max_window;
		if (step == 0 || step > limit)
			abort();
		if (++steps > 2 * (unsigned long)FZ_TMAX + 16)
			abort();
	}
	switch (e) {
	case UP_OK:
		if (up_vcd_written(v) != r->written ||
		    r->written > r->target_max)
			abort();
		break;
	case UP_ESHORT:
	case UP_ERANGE:
	case UP_ELEN:
	case UP_EVERSION:
	case UP_ENOSPC:
	case UP_EBADCRC:
		if (up_vcd_written(v) != r->written || *up_vcd_why(v) == '\0')
			abort();
		break;
	case UP_EPORT:
		if (r->fail_at == 0 || r->calls != r->fail_at)
			abort();
		break;
	default:
		abort();
	}
	if (e != UP_OK) {
		/* Sticky, and no I/O after it. */
		r->stopped = true;
		if (up_vcd_run(v, budget) != e || up_vcd_run(v, 0) != e)
			abort();
		r->stopped = false;
	}
	return (e);
}

static void
fz_same(int ea, const struct fz_run *a, const struct up_vcd *va, int eb,
    const struct fz_run *b, const struct up_vcd *vb)
{
	if (ea != eb || a->written != b->written ||
	    memcmp(a->out, b->out, a->written) != 0 ||
	    strcmp(up_vcd_why(va), up_vcd_why(vb)) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t	 bufs[] = { 64, 200, 4096, 16384 };
	static bool		 ready;
	struct fz_run		 a, b, c;
	const struct up_vcd_io	*io;
	uint32_t		 budget;
	size_t			 buf_len;
	int			 ea, eb, ec;
	bool			 rb;

	if (!ready) {
		fz_base();
		ready = true;
	}
	if (size < FZ_HDR || size - FZ_HDR > UINT32_MAX)
		return (0);
	rb = (data[0] & 1) != 0;
	io = rb ? &io_rb : &io_norb;
	buf_len = bufs[(data[0] >> 1) & 3];
	budget = (uint32_t)data[1] * 97;

	memset(&a, 0, sizeof(a));
	a.delta = data + FZ_HDR;
	a.delta_len = (uint32_t)(size - FZ_HDR);
	a.base_len = (uint32_t)data[2] | (uint32_t)data[3] << 8;
	a.target_max = (uint32_t)data[4] * 256 + 255;
	b = c = a;
	a.out = out_a;
	b.out = out_b;
	c.out = out_c;
	if (data[0] & 8)
		a.fail_at = data[5] + 1u;

	/* As the node runs it: in steps. */
	ea = fz_decode(&v_a, &a, io, buf_a, buf_len, budget);
	if (a.fail_at != 0)
		return (0);

	/* The budget changes nothing. */
	eb = fz_decode(&v_b, &b, io, buf_b, buf_len, 0);
	fz_same(ea, &a, &v_a, eb, &b, &v_b);

	/* Nor does the buffer, but for what needs target_read. */
	ec = fz_decode(&v_c, &c, &io_rb, buf_c, sizeof(buf_c), 0);
	if (ec == UP_ENOSPC)
		abort();	/* every window fits */
	if (rb || ea == UP_OK) {
		if (ea != ec || strcmp(up_vcd_why(&v_a), up_vcd_why(&v_c)) != 0)
			abort();
		if (ea == UP_OK)
			fz_same(ea, &a, &v_a, ec, &c, &v_c);
		/* After an error, what each wrote out depends on its buffer. */
		else if (memcmp(a.out, c.out, a.written < c.written ?
		    a.written : c.written) != 0)
			abort();
	} else if (ea != UP_ENOSPC && ea != UP_EVERSION && ea != ec)
		abort();
	return (0);
}
