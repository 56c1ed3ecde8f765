/*
 * test_up_buf.c: checksums, cursors, names and the log hook of up/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "up.h"

static void
test_crc32_check(void **state)
{
	const char	*s = "123456789";
	uint32_t	 c;
	size_t		 i;

	assert_int_equal(up_crc32(0, s, 9), 0xcbf43926u);
	assert_int_equal(up_crc32(0, "", 0), 0);
	assert_int_equal(up_crc32(0,
	    "The quick brown fox jumps over the lazy dog", 43), 0x414fa339u);
	/* Fed one byte at a time it must give the same value. */
	c = 0;
	for (i = 0; i < 9; i++)
		c = up_crc32(c, s + i, 1);
	assert_int_equal(c, 0xcbf43926u);
}

/*
 * Eight bytes per step (UP_CRC32_SLICE8) against one byte per step (the
 * tail loop), at every alignment and length around the 8-byte steps and
 * up to a whole frame.
 */
static void
test_crc32_slices(void **state)
{
	static uint8_t	 buf[UP_FRAME_MAX + 16];
	uint32_t	 x = 0x12345678, c, d;
	size_t		 i, off, len;

	for (i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 23);
	}
	for (off = 0; off < 8; off++)
		for (len = 0; len + off <= sizeof(buf); len += len < 40 ?
		    1 : 97) {
			c = up_crc32(0, buf + off, len);
			for (d = 0, i = 0; i < len; i++)
				d = up_crc32(d, buf + off + i, 1);
			assert_int_equal(c, d);
			/* Split anywhere, it continues. */
			d = up_crc32(up_crc32(0, buf + off, len / 3),
			    buf + off + len / 3, len - len / 3);
			assert_int_equal(c, d);
		}
}

static void
test_crc16_check(void **state)
{
	const char	*s = "123456789";
	uint16_t	 c;

	assert_int_equal(up_crc16_ccitt(UP_CRC16_INIT, s, 9), 0x29b1);
	c = up_crc16_ccitt(UP_CRC16_INIT, s, 4);
	assert_int_equal(up_crc16_ccitt(c, s + 4, 5), 0x29b1);
	assert_int_equal(up_crc16_ccitt(UP_CRC16_INIT, s, 0), 0xffff);
}

static void
test_rd_ints(void **state)
{
	const uint8_t	 b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };
	struct up_rd	 rd;

	up_rd_init(&rd, b, sizeof(b));
	assert_int_equal(up_rd_u8(&rd), 0x01);
	assert_int_equal(up_rd_u16(&rd), 0x0302);
	assert_int_equal(up_rd_u32(&rd), 0x07060504u);
	assert_true(up_rd_u64(&rd) == 0x0f0e0d0c0b0a0908ull);
	assert_int_equal(up_rd_err(&rd), UP_OK);
	assert_int_equal(up_rd_left(&rd), 0);
	/* One more byte: short, and the error sticks. */
	assert_int_equal(up_rd_u8(&rd), 0);
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);
}

/* Every read that needs one byte more than is left fails. */
static void
test_rd_short_each(void **state)
{
	uint8_t		 b[16], out[8];
	struct up_rd	 rd;
	size_t		 need[] = { 1, 2, 4, 8 };
	size_t		 i, avail;

	memset(b, 0xaa, sizeof(b));
	for (i = 0; i < 4; i++) {
		for (avail = 0; avail < need[i]; avail++) {
			up_rd_init(&rd, b, avail);
			switch (need[i]) {
			case 1:
				assert_int_equal(up_rd_u8(&rd), 0);
				break;
			case 2:
				assert_int_equal(up_rd_u16(&rd), 0);
				break;
			case 4:
				assert_int_equal(up_rd_u32(&rd), 0);
				break;
			case 8:
				assert_true(up_rd_u64(&rd) == 0);
				break;
			}
			assert_int_equal(up_rd_err(&rd), UP_ESHORT);
			assert_int_equal(up_rd_left(&rd), 0);
		}
		/* Exactly enough succeeds. */
		up_rd_init(&rd, b, need[i]);
		switch (need[i]) {
		case 1:
			assert_int_equal(up_rd_u8(&rd), 0xaa);
			break;
		case 2:
			assert_int_equal(up_rd_u16(&rd), 0xaaaa);
			break;
		case 4:
			assert_int_equal(up_rd_u32(&rd), 0xaaaaaaaau);
			break;
		case 8:
			assert_true(up_rd_u64(&rd) == 0xaaaaaaaaaaaaaaaaull);
			break;
		}
		assert_int_equal(up_rd_err(&rd), UP_OK);
	}

	up_rd_init(&rd, b, 7);
	memset(out, 0x55, sizeof(out));
	up_rd_bytes(&rd, out, 8);
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);
	/* A failed copy leaves zeros, not stale bytes. */
	for (i = 0; i < 8; i++)
		assert_int_equal(out[i], 0);

	up_rd_init(&rd, b, 3);
	assert_null(up_rd_ptr(&rd, 4));
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);

	up_rd_init(&rd, NULL, 10);
	assert_int_equal(up_rd_u8(&rd), 0);
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);
}

static void
test_rd_sticky(void **state)
{
	const uint8_t	 b[] = { 0x11, 0x22, 0x33 };
	struct up_rd	 rd;
	char		 s[8];

	up_rd_init(&rd, b, sizeof(b));
	assert_int_equal(up_rd_u32(&rd), 0);
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);
	/* Enough bytes for a u8 remain, but the error sticks. */
	assert_int_equal(up_rd_u8(&rd), 0);
	assert_null(up_rd_ptr(&rd, 0));
	strcpy(s, "junk");
	up_rd_str(&rd, s, 7);
	assert_string_equal(s, "");
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);
	assert_int_equal(up_rd_left(&rd), 0);
}

static void
test_rd_ptr(void **state)
{
	const uint8_t	 b[] = { 1, 2, 3, 4 };
	struct up_rd	 rd;
	const uint8_t	*p;

	up_rd_init(&rd, b, sizeof(b));
	assert_int_equal(up_rd_u8(&rd), 1);
	p = up_rd_ptr(&rd, 2);
	assert_ptr_equal(p, b + 1);
	assert_int_equal(up_rd_left(&rd), 1);
	p = up_rd_ptr(&rd, 0);
	assert_ptr_equal(p, b + 3);
	assert_int_equal(up_rd_err(&rd), UP_OK);
}

static void
test_rd_str(void **state)
{
	const uint8_t	 ok[] = { 3, 'a', 'b', 'c', 0 };
	const uint8_t	 nul[] = { 3, 'a', 0, 'c' };
	const uint8_t	 lng[] = { 4, 'a', 'b', 'c', 'd' };
	const uint8_t	 shrt[] = { 4, 'a', 'b', 'c' };
	struct up_rd	 rd;
	char		 s[4], s5[5];

	up_rd_init(&rd, ok, sizeof(ok));
	up_rd_str(&rd, s, 3);
	assert_int_equal(up_rd_err(&rd), UP_OK);
	assert_string_equal(s, "abc");
	up_rd_str(&rd, s, 3);
	assert_int_equal(up_rd_err(&rd), UP_OK);
	assert_string_equal(s, "");
	assert_int_equal(up_rd_left(&rd), 0);

	up_rd_init(&rd, nul, sizeof(nul));
	up_rd_str(&rd, s, 3);
	assert_int_equal(up_rd_err(&rd), UP_ERANGE);
	assert_string_equal(s, "");

	up_rd_init(&rd, lng, sizeof(lng));
	up_rd_str(&rd, s, 3);
	assert_int_equal(up_rd_err(&rd), UP_ELEN);
	assert_string_equal(s, "");

	up_rd_init(&rd, shrt, sizeof(shrt));
	up_rd_str(&rd, s5, 4);
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);
	assert_string_equal(s5, "");

	up_rd_init(&rd, ok, 0);
	up_rd_str(&rd, s, 3);
	assert_int_equal(up_rd_err(&rd), UP_ESHORT);
}

static void
test_wr(void **state)
{
	uint8_t		 b[32];
	struct up_wr	 wr;
	const uint8_t	 want[] = { 0x01, 0x03, 0x02, 0x07, 0x06, 0x05, 0x04,
	    0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 2, 'h', 'i',
	    0xde, 0xad };

	up_wr_init(&wr, b, sizeof(b));
	up_wr_u8(&wr, 0x01);
	up_wr_u16(&wr, 0x0203);
	up_wr_u32(&wr, 0x04050607u);
	up_wr_u64(&wr, 0x08090a0b0c0d0e0full);
	up_wr_str(&wr, "hi");
	up_wr_bytes(&wr, "\xde\xad", 2);
	assert_int_equal(up_wr_err(&wr), UP_OK);
	assert_int_equal(wr.off, sizeof(want));
	assert_memory_equal(b, want, sizeof(want));
}

static void
test_wr_bounds(void **state)
{
	uint8_t		 b[8], big[300];
	struct up_wr	 wr;
	size_t		 cap;

	/* Every write that does not fit fails and writes nothing. */
	for (cap = 0; cap < 8; cap++) {
		memset(b, 0xee, sizeof(b));
		up_wr_init(&wr, b, cap);
		up_wr_u64(&wr, 0);
		assert_int_equal(up_wr_err(&wr), UP_ENOSPC);
		assert_int_equal(wr.off, 0);
		assert_int_equal(b[0], 0xee);
	}
	up_wr_init(&wr, b, 3);
	up_wr_u16(&wr, 0x1234);
	up_wr_u16(&wr, 0x5678);
	assert_int_equal(up_wr_err(&wr), UP_ENOSPC);
	/* Sticky: a u8 would fit but is refused. */
	up_wr_u8(&wr, 0x9a);
	assert_int_equal(wr.off, 2);
	assert_int_equal(b[2], 0xee);

	up_wr_init(&wr, b, sizeof(b));
	up_wr_str(&wr, "12345678");
	assert_int_equal(up_wr_err(&wr), UP_ENOSPC);

	/* A string longer than its u8 length prefix can say. */
	memset(big, 'x', sizeof(big));
	big[256] = '\0';
	up_wr_init(&wr, big, sizeof(big));
	up_wr_str(&wr, (const char *)big);
	assert_int_equal(up_wr_err(&wr), UP_ELEN);
}

static void
test_names(void **state)
{
	assert_string_equal(up_result_str(UP_R_INITIAL), "initial");
	assert_string_equal(up_result_str(UP_R_SUCCESS), "success");
	assert_string_equal(up_result_str(UP_R_PROTOCOL), "protocol");
	assert_string_equal(up_result_str(UP_R_SIGNATURE), "signature");
	assert_string_equal(up_result_str(UP_R_ROLLED_BACK), "rolled_back");
	assert_string_equal(up_result_str(UP_R_ALREADY), "already");
	assert_string_equal(up_result_str(UP_R_BUSY), "busy");
	assert_string_equal(up_result_str(UP_R_DOWNGRADE), "downgrade");
	assert_string_equal(up_result_str(21), "unknown");
	assert_string_equal(up_result_str(-1), "unknown");
	assert_string_equal(up_state_str(UP_NS_IDLE), "idle");
	assert_string_equal(up_state_str(UP_NS_UPDATED), "updated");
	assert_string_equal(up_state_str(UP_NS_FAILED), "failed");
	assert_string_equal(up_state_str(7), "unknown");
	assert_string_equal(up_strerror(UP_OK), "ok");
	assert_string_equal(up_strerror(UP_EBADCRC), "bad frame CRC");
	assert_string_equal(up_strerror(UP_EPORT),
	    "platform operation failed");
	assert_string_equal(up_strerror(-99), "unknown error");
}

static int	 hook_calls, hook_level;
static char	 hook_line[64];

static void
hook(int level, const char *fmt, va_list ap)
{
	hook_calls++;
	hook_level = level;
	vsnprintf(hook_line, sizeof(hook_line), fmt, ap);
}

static void
test_log_hook(void **state)
{
	hook_calls = 0;
	up_logf(UP_LOG_INFO, "nobody listens %d", 1);
	assert_int_equal(hook_calls, 0);
	up_log_set_hook(hook);
	up_logf(UP_LOG_WARN, "node %d: %s", 7, "late");
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_level, UP_LOG_WARN);
	assert_string_equal(hook_line, "node 7: late");
	up_log_set_hook(NULL);
	up_logf(UP_LOG_DEBUG, "gone");
	assert_int_equal(hook_calls, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_check),
		cmocka_unit_test(test_crc32_slices),
		cmocka_unit_test(test_crc16_check),
		cmocka_unit_test(test_rd_ints),
		cmocka_unit_test(test_rd_short_each),
		cmocka_unit_test(test_rd_sticky),
		cmocka_unit_test(test_rd_ptr),
		cmocka_unit_test(test_rd_str),
		cmocka_unit_test(test_wr),
		cmocka_unit_test(test_wr_bounds),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_log_hook),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
