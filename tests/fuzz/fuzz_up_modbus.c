/*
 * fuzz_up_modbus.c: the UP register map's decoders (up/up_modbus.c):
 * the identity and status blocks, a FRAME window's registers, the
 * outbox header and the request check, on registers made of the input.
 * Whatever decodes must encode back to registers that decode the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint16_t	 regs[UP_MB_ID_N], again[UP_MB_ID_N];
	struct up_mb_ident id, id2;
	struct up_mb_status st, st2;
	uint8_t		 buf[UP_MB_FRAME_MAX];
	uint16_t	 seq, len, addr;
	size_t		 n, i;
	int		 r;

	if (size < 10)
		return (0);
	/* The request check takes any five fields. */
	(void)up_mb_check(data[0], (uint16_t)(data[1] << 8 | data[2]),
	    (uint16_t)(data[3] << 8 | data[4]),
	    (uint16_t)(data[5] << 8 | data[6]),
	    (uint16_t)(data[7] << 8 | data[8]), NULL);
	addr = data[9] & 1 ? UP_MB_FRAME_ODD : UP_MB_FRAME;
	data += 10;
	size -= 10;

	n = size / 2;
	if (n > UP_MB_ID_N)
		n = UP_MB_ID_N;
	memset(regs, 0, sizeof(regs));
	for (i = 0; i < n; i++)
		regs[i] = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]);

	if (up_mb_ident_decode(regs, n, &id) == UP_OK) {
		up_mb_ident_encode(&id, again);
		if (up_mb_ident_decode(again, UP_MB_ID_N, &id2) != UP_OK ||
		    id2.node_id != id.node_id || id2.ncomp != id.ncomp ||
		    strcmp(id2.hw, id.hw) != 0)
			__builtin_trap();
	}
	if (up_mb_status_decode(regs, n, &st) == UP_OK) {
		up_mb_status_encode(&st, again);
		if (up_mb_status_decode(again, UP_MB_ST_N, &st2) != UP_OK ||
		    memcmp(&st, &st2, sizeof(st)) != 0)
			__builtin_trap();
	}
	if (n >= 2)
		(void)up_mb_ob_decode(regs, &seq, &len);
	r = up_mb_frame_take(addr, regs, n, buf, sizeof(buf));
	if (r > 0) {
		/* Back into registers: the same window, the same bytes. */
		if (up_mb_frame_regs(buf, (size_t)r, again) != addr ||
		    memcmp(again, regs, ((size_t)r / 2) * 2) != 0)
			__builtin_trap();
	}
	return (0);
}
