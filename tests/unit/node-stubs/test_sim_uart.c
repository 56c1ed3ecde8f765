/*
 * test_sim_uart.c: the simulator's character formats and UART bit model
 * (node-stubs/sim_uart.c, docs/simulator.md "Line model"): bits per
 * character, character times, formats read from termios the way a pty
 * keeps them, and what a receiver set to another rate or parity decodes,
 * checked against values worked out by hand from the bit patterns.
 */
#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <termios.h>

#include <cmocka.h>

#include "upsim.h"

static struct sim_fmt
fmt(const char *s, uint32_t baud)
{
	struct sim_fmt	 f;

	assert_int_equal(sim_fmt_parse(s, baud, &f), 0);
	return (f);
}

static void
test_formats(void **state)
{
	struct sim_fmt	 f;
	char		 buf[32];

	/* 11 bits for 8E1 and 8N2, 10 for 8N1 (Modbus over Serial Line
	 * V1.02 §2.5.1), 9 for 7N1. */
	f = fmt("8E1", 9600);
	assert_int_equal(sim_fmt_char_bits(&f), 11);
	/* 11 / 9600 s = 1,145,833.3 ns */
	assert_int_equal(sim_fmt_char_ns(&f), 1145833);
	f = fmt("8N2", 9600);
	assert_int_equal(sim_fmt_char_bits(&f), 11);
	f = fmt("8N1", 9600);
	assert_int_equal(sim_fmt_char_bits(&f), 10);
	assert_int_equal(sim_fmt_char_ns(&f), 1041667);
	f = fmt("7N1", 115200);
	assert_int_equal(sim_fmt_char_bits(&f), 9);
	sim_fmt_str(&f, buf, sizeof(buf));
	assert_string_equal(buf, "115200 7N1");

	assert_int_equal(sim_fmt_parse("8X1", 9600, &f), -1);
	assert_int_equal(sim_fmt_parse("9N1", 9600, &f), -1);
	assert_int_equal(sim_fmt_parse("8N3", 9600, &f), -1);
	assert_int_equal(sim_fmt_parse("8N", 9600, &f), -1);
	assert_int_equal(sim_fmt_parse("", 9600, &f), -1);
}

/* What survives on a pty: speed, CSTOPB, PARODD, CMSPAR, c_iflag. */
static void
test_from_termios(void **state)
{
	struct termios	 t;
	struct sim_fmt	 f;

	memset(&t, 0, sizeof(t));
	cfsetospeed(&t, B19200);
	t.c_cflag = CS8 | CREAD;
	cfsetospeed(&t, B19200);
	sim_fmt_from_termios(&t, 0, &f);
	assert_true(sim_fmt_eq(&f, &(struct sim_fmt){ 19200, 8, 'N', 1 }));
	t.c_iflag = INPCK;
	sim_fmt_from_termios(&t, 0, &f);
	assert_int_equal(f.parity, 'E');
	t.c_cflag |= PARODD | CSTOPB;
	sim_fmt_from_termios(&t, 0, &f);
	assert_int_equal(f.parity, 'O');
	assert_int_equal(f.stop_bits, 2);
	t.c_cflag |= CMSPAR;
	sim_fmt_from_termios(&t, 0, &f);
	assert_int_equal(f.parity, 'M');
	/* The endpoint's parity= option wins. */
	sim_fmt_from_termios(&t, 'N', &f);
	assert_int_equal(f.parity, 'N');
	/* A speed the model does not know. */
	cfsetospeed(&t, B0);
	sim_fmt_from_termios(&t, 0, &f);
	assert_int_equal(f.baud, 0);
}

static void
test_same_format(void **state)
{
	struct sim_fmt	 a = fmt("8E1", 9600);
	uint8_t		 in[256], out[256], err[256];
	size_t		 i, n;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	n = sim_uart_convert(&a, &a, in, sizeof(in), out, err, sizeof(out));
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	for (i = 0; i < n; i++)
		assert_int_equal(err[i], 0);
}

/* Even parity sent, odd expected: every character has a parity error. */
static void
test_parity_mismatch(void **state)
{
	struct sim_fmt	 e = fmt("8E1", 9600), o = fmt("8O1", 9600);
	uint8_t		 in[64], out[64], err[64];
	size_t		 i, n;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	n = sim_uart_convert(&e, &o, in, sizeof(in), out, err, sizeof(out));
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	for (i = 0; i < n; i++)
		assert_int_equal(err[i], SIM_CH_PARITY);
}

/*
 * 8E1 sent to an 8N1 receiver: the "stop bit" it samples is the parity
 * bit.  Characters with an odd number of ones (parity bit 1) pass; the
 * first with an even number has a framing error, and the receiver then
 * takes that 0 for a start bit (16550) and is out of step: worked out
 * by hand, 0x10 0x20 read as 0x41 (FE), 0x06 (FE), 0xf9.
 */
static void
test_8e1_to_8n1(void **state)
{
	struct sim_fmt	 e = fmt("8E1", 9600), n1 = fmt("8N1", 9600);
	const uint8_t	 in[] = { 0x01, 0x07, 0x0b, 0x03, 0x10, 0x20 };
	const uint8_t	 want[] = { 0x01, 0x07, 0x0b, 0x03, 0x41, 0x06, 0xf9 };
	const uint8_t	 werr[] = { 0, 0, 0, SIM_CH_FRAME, SIM_CH_FRAME,
			    SIM_CH_FRAME, 0 };
	uint8_t		 out[16], err[16];
	size_t		 n;

	n = sim_uart_convert(&e, &n1, in, sizeof(in), out, err, sizeof(out));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_memory_equal(err, werr, sizeof(werr));
}

/*
 * 8N1 sent back to back to an 8E1 receiver: it takes the stop bit (1)
 * for the parity bit and the next start bit (0) for its stop bit, so all
 * but the last character have a framing error, and a parity error when
 * the data has an even number of ones.
 */
static void
test_8n1_to_8e1(void **state)
{
	struct sim_fmt	 n1 = fmt("8N1", 9600), e = fmt("8E1", 9600);
	uint8_t		 in[16], out[16], err[16];
	size_t		 i, n;
	uint8_t		 want;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 19 + 3);
	n = sim_uart_convert(&n1, &e, in, sizeof(in), out, err, sizeof(out));
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	for (i = 0; i < n; i++) {
		want = __builtin_popcount(in[i]) % 2 == 0 ? SIM_CH_PARITY : 0;
		if (i + 1 < n)
			want |= SIM_CH_FRAME;
		assert_int_equal(err[i], want);
	}
}

/*
 * Rates apart, worked out from the bits.  0x00 at 9600 8N1 read at
 * 19200: the receiver's character spans 5 sender bits (start + 4 data
 * bits, all 0), its stop sample falls in sender bit 4 (0): 0x00 with a
 * framing error; that 0 starts a second character, whose stop sample
 * falls in the sender's stop bit: 0x00, good.  0xFF: its data bit 0 is
 * sampled in the start bit, the rest in the 1s: 0xFE, stop bit good.
 */
static void
test_rate_mismatch(void **state)
{
	struct sim_fmt	 slow = fmt("8N1", 9600), fast = fmt("8N1", 19200);
	uint8_t		 in[64], out[1024], err[1024];
	size_t		 i, n, same;

	in[0] = 0x00;
	n = sim_uart_convert(&slow, &fast, in, 1, out, err, sizeof(out));
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(err[0], SIM_CH_FRAME);
	assert_int_equal(out[1], 0x00);
	assert_int_equal(err[1], 0);
	in[0] = 0xff;
	n = sim_uart_convert(&slow, &fast, in, 1, out, err, sizeof(out));
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 0xfe);
	assert_int_equal(err[0], 0);

	/* A longer run at either side's rate is garbage, not the data. */
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 13 + 5);
	n = sim_uart_convert(&slow, &fast, in, sizeof(in), out, err,
	    sizeof(out));
	assert_true(n > 0);
	for (i = same = 0; i < n && i < sizeof(in); i++)
		same += out[i] == in[i];
	assert_true(same < sizeof(in) / 4);
	n = sim_uart_convert(&fast, &slow, in, sizeof(in), out, err,
	    sizeof(out));
	/* A slow receiver sees fewer characters than were sent. */
	assert_true(n > 0 && n < sizeof(in));
	/* The output never overruns the room given. */
	n = sim_uart_convert(&slow, &fast, in, sizeof(in), out, err, 3);
	assert_int_equal(n, 3);
}

/* 8N2 and 8E1 have the same 11 bits but not the same meaning. */
static void
test_8n2_vs_8e1(void **state)
{
	struct sim_fmt	 n2 = fmt("8N2", 9600), e = fmt("8E1", 9600);
	uint8_t		 in[8] = { 0x00, 0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f,
			    0x7f }, out[8], err[8];
	size_t		 i, n;

	n = sim_uart_convert(&n2, &e, in, sizeof(in), out, err, sizeof(out));
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	/* The first stop bit (1) read as parity: even-weight data fail. */
	for (i = 0; i < n; i++)
		assert_int_equal(err[i], __builtin_popcount(in[i]) % 2 == 0 ?
		    SIM_CH_PARITY : 0);
}

/* IGNPAR drops, INPCK turns into '\0', otherwise as received. */
static void
test_iflag(void **state)
{
	uint8_t		 c;

	assert_int_equal(sim_uart_iflag(0, 0x41, 0, &c), 1);
	assert_int_equal(c, 0x41);
	assert_int_equal(sim_uart_iflag(INPCK, 0x41, 0, &c), 1);
	assert_int_equal(c, 0x41);
	assert_int_equal(sim_uart_iflag(0, 0x41, SIM_CH_PARITY, &c), 1);
	assert_int_equal(c, 0x41);
	assert_int_equal(sim_uart_iflag(INPCK, 0x41, SIM_CH_PARITY, &c), 1);
	assert_int_equal(c, 0);
	assert_int_equal(sim_uart_iflag(INPCK, 0x41, SIM_CH_FRAME, &c), 1);
	assert_int_equal(c, 0);
	assert_int_equal(sim_uart_iflag(IGNPAR, 0x41, SIM_CH_FRAME, &c), 0);
	assert_int_equal(sim_uart_iflag(IGNPAR | INPCK, 0x41, SIM_CH_PARITY,
	    &c), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_from_termios),
		cmocka_unit_test(test_same_format),
		cmocka_unit_test(test_parity_mismatch),
		cmocka_unit_test(test_8e1_to_8n1),
		cmocka_unit_test(test_8n1_to_8e1),
		cmocka_unit_test(test_rate_mismatch),
		cmocka_unit_test(test_8n2_vs_8e1),
		cmocka_unit_test(test_iflag),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
