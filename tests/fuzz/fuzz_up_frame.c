/*
 * fuzz_up_frame.c: the UP frame decoder on arbitrary bytes.
 *
 * Invariants checked (abort() on a violation, which both libFuzzer and
 * the gcc corpus replay report):
 *  - up_decode() never reads outside the input (ASan) and returns UP_OK
 *    or one of the decoder errors of docs/up-protocol.md §8;
 *  - a frame it accepts re-encodes, and the encoding decodes again;
 *  - the re-encoding is the input itself, except the reserved header
 *    byte (sent as 0) and therefore the CRC;
 *  - encoding the second decode gives the same bytes again (fixed point);
 *  - up_peek() agrees with up_decode() on type and session.
 * Each input is tried twice: as it is, and with its length field and CRC
 * made consistent, because random mutations almost never get past a
 * CRC-32 and the payload readers are where the bugs would be.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint8_t	 out1[UP_FRAME_MAX], out2[UP_FRAME_MAX];
static uint8_t	 fixed[UP_FRAME_MAX];

static void
check(const uint8_t *data, size_t size)
{
	struct up_msg	 m, m2;
	uint8_t		 type;
	uint32_t	 session;
	int		 e, n1, n2;

	e = up_decode(data, size, &m);
	if (e != UP_OK) {
		if (e != UP_ESHORT && e != UP_EBADCRC && e != UP_EVERSION &&
		    e != UP_ETYPE && e != UP_ELEN && e != UP_ERANGE)
			abort();
		return;
	}
	if (up_peek(data, size, &type, &session) != UP_OK ||
	    type != m.type || session != m.session)
		abort();

	n1 = up_encode(&m, out1, sizeof(out1));
	if (n1 <= 0 || (size_t)n1 != size)
		abort();
	/* Identical but for the reserved byte and the CRC it changes. */
	if (memcmp(out1, data, 3) != 0 ||
	    memcmp(out1 + 4, data + 4, size - 4 - UP_CRC_LEN) != 0 ||
	    out1[3] != 0)
		abort();
	if (data[3] == 0 && memcmp(out1, data, size) != 0)
		abort();

	if (up_decode(out1, (size_t)n1, &m2) != UP_OK)
		abort();
	n2 = up_encode(&m2, out2, sizeof(out2));
	if (n2 != n1 || memcmp(out1, out2, (size_t)n1) != 0)
		abort();

	/* The signed descriptor of any valid OFFER can be produced. */
	if (m.type == UP_T_OFFER &&
	    up_desc_encode(&m.u.offer, out2, sizeof(out2)) <= 4)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		 n;
	uint32_t	 crc;

	check(data, size);
	if (size < UP_OVERHEAD || size > sizeof(fixed))
		return (0);
	memcpy(fixed, data, size);
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
