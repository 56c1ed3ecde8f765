/*
 * test_up_modbus.c: the UP register map for Modbus (up/up_modbus.c,
 * docs/transports/modbus.md): identity and status blocks both ways and
 * their refusals, frames into registers and back (even and odd lengths,
 * a bad pad byte), which requests the map serves and which exception it
 * answers the others with, the outbox header, CRC-16/MODBUS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "up.h"

static void
test_crc16(void **state)
{
	/* The catalogue's check value of CRC-16/MODBUS. */
	assert_int_equal(up_mb_crc16((const uint8_t *)"123456789", 9), 0x4b37);
	/* Read holding 0x006B x3 of unit 0x11 (the spec's example ADU). */
	{
		const uint8_t adu[] = { 0x11, 0x03, 0x00, 0x6b, 0x00, 0x03 };

		assert_int_equal(up_mb_crc16(adu, sizeof(adu)), 0x8776);
	}
}

static void
test_ident(void **state)
{
	struct up_mb_ident a, b;
	uint16_t	 regs[UP_MB_ID_N];

	memset(&a, 0, sizeof(a));
	a.node_id = 0x0123456789abcdefULL;
	a.rx_max = 246;
	a.tx_max = 246;
	a.flags = UP_MB_IDF_COMPACT;
	strcpy(a.hw, "meter-x");
	a.ncomp = 2;
	strcpy(a.comp[0].name, "fw");
	strcpy(a.comp[0].version, "1.2.3");
	strcpy(a.comp[1].name, "a-thirty-one-character-name-abc");
	strcpy(a.comp[1].version, "2.0.0-rc.1+build.77");
	up_mb_ident_encode(&a, regs);

	/* The layout a Modbus tool sees. */
	assert_int_equal(regs[UP_MB_ID_MAGIC], 0x5550);
	assert_int_equal(regs[UP_MB_ID_MAPVER], 1);
	assert_int_equal(regs[UP_MB_ID_NODE], 0x0123);
	assert_int_equal(regs[UP_MB_ID_NODE + 3], 0xcdef);
	assert_int_equal(regs[UP_MB_ID_NCOMP], 2);
	assert_int_equal(regs[UP_MB_ID_HW], ('m' << 8) | 'e');
	assert_int_equal(regs[UP_MB_ID_HW + 3], ('x' << 8));

	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_N, &b), UP_OK);
	assert_true(b.node_id == a.node_id);
	assert_int_equal(b.rx_max, 246);
	assert_int_equal(b.flags, UP_MB_IDF_COMPACT);
	assert_string_equal(b.hw, "meter-x");
	assert_int_equal(b.ncomp, 2);
	assert_string_equal(b.comp[1].name, a.comp[1].name);
	assert_string_equal(b.comp[1].version, a.comp[1].version);

	/* The header alone (a probe) decodes; components past n do not. */
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_HDR_N, &b), UP_OK);
	assert_true(b.node_id == a.node_id);
	assert_int_equal(b.ncomp, 0);
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_COMP + 32, &b),
	    UP_OK);
	assert_int_equal(b.ncomp, 1);

	/* Refusals. */
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_HDR_N - 1, &b),
	    UP_ESHORT);
	regs[UP_MB_ID_MAGIC] = 0x1234;
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_N, &b), UP_ERANGE);
	regs[UP_MB_ID_MAGIC] = UP_MB_MAGIC;
	regs[UP_MB_ID_MAPVER] = 2;
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_N, &b), UP_ERANGE);
	regs[UP_MB_ID_MAPVER] = UP_MB_MAPVER;
	regs[UP_MB_ID_NCOMP] = UP_MAX_COMPONENTS + 1;
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_N, &b), UP_ERANGE);
	regs[UP_MB_ID_NCOMP] = 2;
	/* A string with no NUL in its 32 bytes. */
	memset(regs + UP_MB_ID_HW, 'A', UP_MB_STR_N * 2);
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_N, &b), UP_ELEN);
	up_mb_ident_encode(&a, regs);
	/* Node id 0 is no node. */
	memset(regs + UP_MB_ID_NODE, 0, 8);
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_N, &b), UP_ERANGE);
	/* A component with an empty name. */
	up_mb_ident_encode(&a, regs);
	memset(regs + UP_MB_ID_COMP, 0, UP_MB_STR_N * 2);
	assert_int_equal(up_mb_ident_decode(regs, UP_MB_ID_N, &b), UP_ERANGE);
}

static void
test_status(void **state)
{
	struct up_mb_status a, b;
	uint16_t	 r[UP_MB_ST_N];

	memset(&a, 0, sizeof(a));
	a.state = UP_NS_RECEIVING;
	a.session = 0x5e550001;
	a.nblocks = 100000;
	a.held = 99990;
	a.first_missing = 70000;
	a.block_size = 242;
	a.outbox = 2;
	a.rx_frames = 123456;
	a.rx_errors = 7;
	up_mb_status_encode(&a, r);
	assert_int_equal(r[0], 1);
	assert_int_equal(r[2], 0x5e55);
	assert_int_equal(r[3], 0x0001);
	assert_int_equal(up_mb_status_decode(r, UP_MB_ST_N, &b), UP_OK);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(up_mb_status_decode(r, UP_MB_ST_N - 1, &b),
	    UP_ESHORT);
	r[0] = 7;
	assert_int_equal(up_mb_status_decode(r, UP_MB_ST_N, &b), UP_ERANGE);
	r[0] = 1;
	a.held = a.nblocks + 1;
	up_mb_status_encode(&a, r);
	assert_int_equal(up_mb_status_decode(r, UP_MB_ST_N, &b), UP_ERANGE);
}

static void
test_frames(void **state)
{
	uint8_t		 f[UP_MB_FRAME_MAX + 1], g[UP_MB_FRAME_MAX];
	uint16_t	 regs[UP_MB_FRAME_N + 1];
	size_t		 len;
	int		 n;

	for (len = 0; len < sizeof(f); len++)
		f[len] = (uint8_t)(len * 7 + 1);
	for (len = 1; len <= UP_MB_FRAME_MAX; len++) {
		uint16_t addr = up_mb_frame_regs(f, len, regs);

		assert_int_equal(addr, len % 2 ? UP_MB_FRAME_ODD :
		    UP_MB_FRAME);
		/* First byte high: the frame goes on the wire in order. */
		assert_int_equal(regs[0] >> 8, f[0]);
		n = up_mb_frame_take(addr, regs, (len + 1) / 2, g, sizeof(g));
		assert_int_equal(n, (int)len);
		assert_memory_equal(f, g, len);
	}
	assert_int_equal(up_mb_frame_regs(f, 0, regs), 0);
	assert_int_equal(up_mb_frame_regs(f, UP_MB_FRAME_MAX + 1, regs), 0);

	/* An odd window whose pad byte is not 0 is not our writer's. */
	up_mb_frame_regs(f, 5, regs);
	regs[2] |= 0x5a;
	assert_int_equal(up_mb_frame_take(UP_MB_FRAME_ODD, regs, 3, g,
	    sizeof(g)), UP_ELEN);
	assert_int_equal(up_mb_frame_take(UP_MB_FRAME, regs, 0, g, sizeof(g)),
	    UP_ELEN);
	assert_int_equal(up_mb_frame_take(UP_MB_FRAME + 1, regs, 2, g,
	    sizeof(g)), UP_ERANGE);
	assert_int_equal(up_mb_frame_take(UP_MB_FRAME, regs,
	    UP_MB_FRAME_N + 1, g, sizeof(g)), UP_ERANGE);
	assert_int_equal(up_mb_frame_take(UP_MB_FRAME, regs, 3, g, 5),
	    UP_ENOSPC);
}

static void
test_check(void **state)
{
	enum up_mb_area	 a;

	/* Reads. */
	assert_int_equal(up_mb_check(0x04, UP_MB_ID, UP_MB_ID_HDR_N, 0, 0,
	    &a), 0);
	assert_int_equal(a, UP_MB_A_ID);
	assert_int_equal(up_mb_check(0x04, UP_MB_ST, UP_MB_ST_N, 0, 0, &a), 0);
	assert_int_equal(a, UP_MB_A_ST);
	assert_int_equal(up_mb_check(0x04, 0xff83, 125, 0, 0, &a), 0);
	assert_int_equal(a, UP_MB_A_BITMAP);
	assert_int_equal(up_mb_check(0x03, UP_MB_OB_SEQ, 18, 0, 0, &a), 0);
	assert_int_equal(a, UP_MB_A_OB);
	/* Across two areas, into a hole, past the end, too many. */
	assert_int_equal(up_mb_check(0x04, UP_MB_ST - 1, 2, 0, 0, &a),
	    UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x04, 0x0300, 1, 0, 0, &a),
	    UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x03, UP_MB_OB + UP_MB_OB_N - 1, 2, 0, 0,
	    &a), UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x03, UP_MB_OB, 126, 0, 0, &a),
	    UP_MB_EX_VALUE);
	assert_int_equal(up_mb_check(0x03, UP_MB_OB, 0, 0, 0, &a),
	    UP_MB_EX_VALUE);
	/* Input registers are not holding registers and back. */
	assert_int_equal(up_mb_check(0x03, UP_MB_ID, 1, 0, 0, &a),
	    UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x04, UP_MB_OB, 1, 0, 0, &a),
	    UP_MB_EX_ADDRESS);

	/* Writes. */
	assert_int_equal(up_mb_check(0x10, UP_MB_FRAME, 123, 0, 0, &a), 0);
	assert_int_equal(a, UP_MB_A_FRAME);
	assert_int_equal(up_mb_check(0x10, UP_MB_FRAME_ODD, 1, 0, 0, &a), 0);
	assert_int_equal(a, UP_MB_A_FRAME_ODD);
	assert_int_equal(up_mb_check(0x10, UP_MB_FRAME + 1, 2, 0, 0, &a),
	    UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x10, UP_MB_FRAME, 124, 0, 0, &a),
	    UP_MB_EX_VALUE);
	assert_int_equal(up_mb_check(0x10, UP_MB_CTRL, 3, 0, 0, &a), 0);
	assert_int_equal(a, UP_MB_A_CTRL);
	assert_int_equal(up_mb_check(0x06, UP_MB_CTRL, 1, 0, 0, &a), 0);
	assert_int_equal(up_mb_check(0x10, UP_MB_BMBASE, 2, 0, 0, &a), 0);
	assert_int_equal(up_mb_check(0x06, UP_MB_BMBASE, 1, 0, 0, &a),
	    UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x06, UP_MB_OB_ACK, 1, 0, 0, &a), 0);
	assert_int_equal(a, UP_MB_A_OB);
	/* The outbox's frame, and any register outside the map. */
	assert_int_equal(up_mb_check(0x06, UP_MB_OB_SEQ, 1, 0, 0, &a),
	    UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x10, 0x0500, 4, 0, 0, &a),
	    UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x10, 0xfff0, 4, 0, 0, &a),
	    UP_MB_EX_ADDRESS);

	/* FC 0x17: the acknowledgement and the outbox, in one request. */
	assert_int_equal(up_mb_check(0x17, UP_MB_OB_SEQ, 18, UP_MB_OB_ACK, 1,
	    &a), 0);
	assert_int_equal(a, UP_MB_A_OB);
	assert_int_equal(up_mb_check(0x17, UP_MB_OB_SEQ, 18, UP_MB_OB_SEQ, 1,
	    &a), UP_MB_EX_ADDRESS);
	assert_int_equal(up_mb_check(0x17, UP_MB_OB_SEQ, 18, UP_MB_OB_ACK, 0,
	    &a), UP_MB_EX_VALUE);

	/* Function codes the map has no use for. */
	assert_int_equal(up_mb_check(0x01, 0, 1, 0, 0, &a), UP_MB_EX_FUNCTION);
	assert_int_equal(up_mb_check(0x15, 0, 1, 0, 0, &a), UP_MB_EX_FUNCTION);
	assert_int_equal(up_mb_check(0x2b, 0, 1, 0, 0, NULL),
	    UP_MB_EX_FUNCTION);
}

static void
test_outbox(void **state)
{
	uint16_t	 r[2], seq, len;

	r[0] = 7;
	r[1] = 40;
	assert_int_equal(up_mb_ob_decode(r, &seq, &len), UP_OK);
	assert_int_equal(seq, 7);
	assert_int_equal(len, 40);
	r[0] = 0;
	r[1] = 0;
	assert_int_equal(up_mb_ob_decode(r, &seq, &len), UP_OK);
	r[1] = 3;
	assert_int_equal(up_mb_ob_decode(r, &seq, &len), UP_ERANGE);
	r[0] = 1;
	r[1] = UP_MB_OB_MAX + 1;
	assert_int_equal(up_mb_ob_decode(r, &seq, &len), UP_ELEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc16),
		cmocka_unit_test(test_ident),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_outbox),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
