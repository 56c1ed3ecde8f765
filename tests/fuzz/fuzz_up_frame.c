/*
 * fuzz_up_frame.c: the UP frame decoders, full (§3) and compact (§11),
 * on arbitrary bytes.
 *
 * Invariants checked (abort() on a violation, which both libFuzzer and
 * the gcc corpus replay report):
 *  - up_decode_any() never reads outside the input (ASan) and returns
 *    UP_OK or one of the decoder errors of docs/up-protocol.md §8, the
 *    same as up_decode() (full frames) or up_cdecode() (compact ones);
 *  - a frame it accepts re-encodes, and the encoding decodes again;
 *  - the re-encoding is the input itself: exactly, for a compact frame
 *    (§11.2: one encoding per frame); but for the reserved header byte
 *    (sent as 0) and therefore the CRC, for a full frame;
 *  - encoding the second decode gives the same bytes again (fixed point);
 *  - up_peek() agrees with up_decode() on type and session;
 *  - a decoded status body walks without leaving its package, and one
 *    that up_status_check() accepts goes into an aggregator.
 * Each input is tried twice: as it is, and with its length field and
 * CRC-32 (full) or CRC-16 (compact, when C is set) made consistent,
 * because random mutations almost never get past a CRC and the payload
 * readers are where the bugs would be.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint8_t	 out1[UP_FRAME_MAX], out2[UP_FRAME_MAX];
static uint8_t	 fixed[UP_FRAME_MAX];
static uint8_t	 agg_bits[1024], agg_need[256];

static void
visit(void *arg, uint32_t a, uint32_t b)
{
	uint32_t	*lim = arg;

	/* Walkers stay inside the package (blocks) or groups. */
	if (b == 0 || a >= lim[0] || b > lim[0] - a)
		abort();
}

static void
visit_need(void *arg, uint32_t g, uint32_t need)
{
	uint32_t	*lim = arg;

	if (g >= lim[1] || need == 0)
		abort();
}

/* A status body against a small session derived from its own fields. */
static void
status(const struct up_status_body *st)
{
	struct up_status_agg agg;
	uint32_t	 lim[2];

	lim[0] = 4096;		/* blocks */
	lim[1] = 256;		/* groups of 16 */
	if (up_status_check(st, lim[0], lim[1]) != UP_OK)
		return;
	if (up_status_foreach_run(st, lim[0], visit, lim) != UP_OK ||
	    up_status_foreach_need(st, lim[1], visit_need, lim) != UP_OK)
		abort();
	if (up_status_described(st, lim[0], lim[1]) > lim[0])
		abort();
	if (up_status_agg_init(&agg, lim[0], 16, agg_bits, sizeof(agg_bits),
	    agg_need, sizeof(agg_need)) != UP_OK ||
	    up_status_agg_add(&agg, st) != UP_OK || agg.bodies != 1)
		abort();
}

static void
check(const uint8_t *data, size_t size)
{
	struct up_msg	 m, m2;
	uint8_t		 type;
	uint32_t	 session;
	int		 e, n1, n2, e1;
	bool		 compact;

	e = up_decode_any(data, size, &m);
	compact = size > 0 && (data[0] & UP_C_MARK) != 0;
	e1 = compact ? up_cdecode(data, size, &m2) :
	    up_decode(data, size, &m2);
	if (e != e1)
		abort();
	if (e != UP_OK) {
		if (e != UP_ESHORT && e != UP_EBADCRC && e != UP_EVERSION &&
		    e != UP_ETYPE && e != UP_ELEN && e != UP_ERANGE)
			abort();
		return;
	}
	if (m.form != (compact ? UP_FORM_COMPACT : UP_FORM_FULL))
		abort();
	if (!compact && (up_peek(data, size, &type, &session) != UP_OK ||
	    type != m.type || session != m.session))
		abort();

	n1 = up_encode(&m, out1, sizeof(out1));
	if (n1 <= 0 || (size_t)n1 != size)
		abort();
	if (compact) {
		if (memcmp(out1, data, size) != 0)
			abort();
	} else {
		/* Identical but for the reserved byte and the CRC. */
		if (memcmp(out1, data, 3) != 0 ||
		    memcmp(out1 + 4, data + 4, size - 4 - UP_CRC_LEN) != 0 ||
		    out1[3] != 0)
			abort();
		if (data[3] == 0 && memcmp(out1, data, size) != 0)
			abort();
	}

	if (up_decode_any(out1, (size_t)n1, &m2) != UP_OK)
		abort();
	n2 = up_encode(&m2, out2, sizeof(out2));
	if (n2 != n1 || memcmp(out1, out2, (size_t)n1) != 0)
		abort();

	/* The signed descriptor of any valid OFFER can be produced. */
	if (m.type == UP_T_OFFER &&
	    up_desc_encode(&m.u.offer, out2, sizeof(out2)) <= 4)
		abort();
	if (m.type == UP_T_STATUS)
		status(&m.u.status.st);
	if (m.type == UP_T_ACCEPT && m.u.accept.code == UP_R_INITIAL)
		status(&m.u.accept.st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		 n;
	uint32_t	 crc;
	uint16_t	 c16;

	check(data, size);
	if (size < 1 || size > sizeof(fixed))
		return (0);
	memcpy(fixed, data, size);
	if ((data[0] & UP_C_MARK) != 0) {
		/* Compact: a good CRC-16 where C asks for one. */
		if ((data[0] & UP_CF_CRC) == 0 || size < 3)
			return (0);
		c16 = up_crc16_ccitt(UP_CRC16_INIT, fixed, size - 2);
		fixed[size - 2] = (uint8_t)c16;
		fixed[size - 1] = (uint8_t)(c16 >> 8);
		check(fixed, size);
		return (0);
	}
	if (size < UP_OVERHEAD)
		return (0);
	n = size - UP_OVERHEAD;
	fixed[8] = (uint8_t)n;
	fixed[9] = (uint8_t)(n >> 8);
	crc = up_crc32(0, fixed, UP_HDR_LEN + n);
	fixed[UP_HDR_LEN + n] = (uint8_t)crc;
	fixed[UP_HDR_LEN + n + 1] = (uint8_t)(crc >> 8);
	fixed[UP_HDR_LEN + n + 2] = (uint8_t)(crc >> 16);
	fixed[UP_HDR_LEN + n + 3] = (uint8_t)(crc >> 24);
	check(fixed, size);
	return (0);
}
