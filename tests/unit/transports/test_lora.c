/*
 * test_lora.c: the pure parts of the "lora" transport: time on air
 * against published figures, the data rate's frame size, the EU868
 * sub-bands, the AT line assembler, hex, and the RUI3 dialect against
 * transcripts of the module's manual.
 *
 * Published figures: ../shared/research/transports.md §1.3 (raw LoRa
 * through a serial modem, 255-byte payload, CRC on: SF7/125 400 ms,
 * SF7/250 200 ms, SF7/500 100 ms, SF9/125 1.25 s, SF12/125 9.0 s; and the
 * class-C multicast table of LoRaWAN downlinks, no CRC, payload =
 * fragment + 3 + 13: DR0 48 B 2793 ms ... DR6 232 B 192 ms).  The
 * transcripts are the examples of the RUI3 AT Command Manual and the
 * RAK3172 Quick Start Guide ("LoRa P2P Mode"), docs/transports/lora.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora_internal.h"

static struct lora_phy
phy(uint8_t sf, uint16_t bw)
{
	struct lora_phy	 p;

	memset(&p, 0, sizeof(p));
	p.freq_hz = 869525000;
	p.sf = sf;
	p.bw_khz = bw;
	p.cr = 1;
	p.preamble = 8;
	p.power_dbm = 14;
	p.crc = true;
	p.ldro = -1;
	return (p);
}

/* ------------------------------------------------------------------ */
/* Time on air                                                          */

static void
test_toa_published(void **state)
{
	static const struct {
		uint8_t		 sf;
		uint16_t	 bw;
		uint64_t	 us;	/* exact */
		uint64_t	 published_ms;
	} v[] = {
		{ 7, 125, 399616, 400 },
		{ 7, 250, 199808, 200 },
		{ 7, 500, 99904, 100 },
		{ 9, 125, 1250304, 1250 },
		{ 12, 125, 9019392, 9000 }
	};
	struct lora_phy	 p;
	uint64_t	 ns;
	size_t		 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		p = phy(v[i].sf, v[i].bw);
		ns = lora_toa_ns(&p, 255, 0);
		assert_int_equal(ns, v[i].us * 1000);
		/* The published figure, to its own rounding (1 %). */
		assert_true(ns / 1000000 * 100 >= v[i].published_ms * 99 &&
		    ns / 1000000 * 100 <= v[i].published_ms * 101);
	}
}

/* LoRaWAN downlinks (no payload CRC), the research table of §1.3. */
static void
test_toa_lorawan_table(void **state)
{
	static const struct {
		uint8_t		 sf;
		uint16_t	 bw;
		size_t		 frag;
		uint64_t	 ms;
	} v[] = {
		{ 12, 125, 48, 2793 }, { 10, 125, 48, 698 },
		{ 9, 125, 112, 677 }, { 8, 125, 219, 646 },
		{ 7, 125, 219, 369 }, { 7, 125, 232, 384 },
		{ 7, 250, 232, 192 }
	};
	struct lora_phy	 p;
	uint64_t	 ns;
	size_t		 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		p = phy(v[i].sf, v[i].bw);
		p.crc = false;
		ns = lora_toa_ns(&p, v[i].frag + 3 + 13, 0);
		/* Rounded to the ms in the table. */
		assert_int_equal((ns + 500000) / 1000000, v[i].ms);
	}
}

static void
test_toa_terms(void **state)
{
	struct lora_phy	 p = phy(7, 125);
	struct lora_phy	 q = phy(12, 125);

	/* Tsym: 2^SF / BW. */
	assert_int_equal(lora_tsym_ns(&p), 1024000);
	assert_int_equal(lora_tsym_ns(&q), 32768000);
	/* LDRO on above 16 ms a symbol only. */
	assert_int_equal(lora_ldro(&p), 0);
	assert_int_equal(lora_ldro(&q), 1);
	q = phy(11, 125);
	assert_int_equal(lora_ldro(&q), 1);
	q = phy(11, 250);
	assert_int_equal(lora_ldro(&q), 0);
	q = phy(12, 250);
	assert_int_equal(lora_ldro(&q), 1);
	/* Forcing it changes the figure: SF12, 255 bytes, DE 0. */
	q = phy(12, 125);
	q.ldro = 0;
	assert_true(lora_toa_ns(&q, 255, 0) < 9019392000ULL);
	/* Each preamble symbol adds one symbol. */
	assert_int_equal(lora_toa_ns(&p, 10, 9) - lora_toa_ns(&p, 10, 8),
	    1024000);
	/* Implicit header saves 20 bits; CR 4/8 costs more than 4/5. */
	q = p;
	q.implicit = true;
	assert_true(lora_toa_ns(&q, 51, 0) < lora_toa_ns(&p, 51, 0));
	q = p;
	q.cr = 4;
	assert_true(lora_toa_ns(&q, 51, 0) > lora_toa_ns(&p, 51, 0));
	/* An empty payload: preamble, sync and 8 header symbols. */
	assert_int_equal(lora_toa_ns(&p, 0, 0), 25856000);
	/* A wake preamble lasts at least what was asked. */
	assert_true(lora_preamble_for_ms(&p, 1000) * 1024000ULL >=
	    1000000000ULL);
	assert_int_equal(lora_preamble_for_ms(&p, 0), 8);
	assert_int_equal(lora_preamble_for_ms(&q, 3600000), 65535);
}

static void
test_mtu_bitrate(void **state)
{
	struct lora_phy	 p;
	static const struct {
		uint8_t		 sf;
		uint16_t	 bw;
		uint32_t	 mtu;
	} v[] = {
		{ 12, 125, 51 }, { 11, 125, 51 }, { 10, 125, 51 },
		{ 9, 125, 115 }, { 8, 125, 222 }, { 7, 125, 222 },
		{ 7, 250, 222 }, { 12, 500, 51 }, { 10, 250, 115 }
	};
	size_t		 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		p = phy(v[i].sf, v[i].bw);
		assert_int_equal(lora_mtu(&p), v[i].mtu);
	}
	/* SF7/125 CR 4/5: 5469 bit/s; SF12: 293 bit/s (LoRaWAN DR5, DR0). */
	p = phy(7, 125);
	assert_int_equal(lora_bitrate(&p), 5468);
	p = phy(12, 125);
	assert_int_equal(lora_bitrate(&p), 292);
}

static void
test_phy_check(void **state)
{
	struct lora_phy	 p = phy(7, 125);

	assert_null(lora_phy_check(&p));
	p.sf = 6;
	assert_non_null(lora_phy_check(&p));
	p = phy(7, 200);
	assert_non_null(lora_phy_check(&p));
	p = phy(7, 125);
	p.cr = 5;
	assert_non_null(lora_phy_check(&p));
	p = phy(7, 125);
	p.preamble = 4;
	assert_non_null(lora_phy_check(&p));
	p = phy(7, 125);
	p.freq_hz = 100000000;
	assert_non_null(lora_phy_check(&p));
	/* RUI3 cannot turn the CRC off nor send implicit headers. */
	p = phy(7, 125);
	assert_null(lora_dialect_rui3.phy_check(&p));
	p.crc = false;
	assert_non_null(lora_dialect_rui3.phy_check(&p));
	p = phy(7, 125);
	p.power_dbm = 30;
	assert_non_null(lora_dialect_rui3.phy_check(&p));
}

static void
test_eu868_bands(void **state)
{
	const struct lora_region *r = lora_region_find("eu868");
	struct lora_phy	 p = phy(7, 125);
	static const struct {
		uint32_t	 freq;
		uint16_t	 bw;
		const char	*band;	/* NULL: none */
		uint32_t	 ppm;
	} v[] = {
		{ 868100000, 125, "M", 10000 },	/* LoRaWAN's default channel */
		{ 868300000, 125, "M", 10000 },
		{ 868500000, 125, "M", 10000 },
		{ 868550000, 125, NULL, 0 },	/* past 868.6 with 62.5 kHz */
		{ 869525000, 125, "P", 100000 },	/* RX2: 10 % */
		{ 869525000, 500, NULL, 0 },	/* 250 kHz wide: no */
		{ 867100000, 125, "L", 10000 },
		{ 864000000, 125, "K", 1000 },
		{ 869000000, 125, "N", 1000 },
		{ 869850000, 125, "Q", 10000 },
		{ 868650000, 125, NULL, 0 },	/* the gap */
		{ 433175000, 125, NULL, 0 }
	};
	size_t		 i;
	int		 b;

	assert_non_null(r);
	assert_null(lora_region_find("us915"));
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		p.freq_hz = v[i].freq;
		p.bw_khz = v[i].bw;
		b = lora_region_band(r, &p);
		if (v[i].band == NULL) {
			assert_int_equal(b, -1);
			continue;
		}
		assert_true(b >= 0);
		assert_string_equal(r->bands[b].name, v[i].band);
		assert_int_equal(r->bands[b].duty_ppm, v[i].ppm);
	}
	r = lora_region_find("none");
	assert_non_null(r);
	assert_int_equal(lora_region_band(r, &p), -1);
}

/* ------------------------------------------------------------------ */
/* Lines and hex                                                        */

static void
test_lines(void **state)
{
	struct lora_lines	 l;
	const char		*line;
	const uint8_t		*in = (const uint8_t *)
	    "\r\nOK\r\n\r\n+EVT:TXP2P DONE\r\nAT_BUSY_ERROR\n\rOK";
	size_t			 n = strlen((const char *)in), off = 0, i;
	char			 got[8][64];
	int			 k = 0;

	memset(&l, 0, sizeof(l));
	lora_lines_reset(&l);
	/* Byte by byte: lines come out whole however the UART splits. */
	for (i = 0; i < n; i++) {
		off = 0;
		while (lora_lines_feed(&l, in + i, 1, &off, &line) ==
		    LORA_LINE_OK)
			snprintf(got[k++], sizeof(got[0]), "%s", line);
	}
	assert_int_equal(k, 3);
	assert_string_equal(got[0], "OK");
	assert_string_equal(got[1], "+EVT:TXP2P DONE");
	assert_string_equal(got[2], "AT_BUSY_ERROR");
	/* "OK" with no end of line yet waits. */
	off = 0;
	assert_int_equal(lora_lines_feed(&l, (const uint8_t *)"\n", 1, &off,
	    &line), LORA_LINE_OK);
	assert_string_equal(line, "OK");
}

static void
test_lines_bounded(void **state)
{
	struct lora_lines	 l;
	uint8_t			 big[LORA_LINE_MAX + 100];
	const char		*line;
	size_t			 off = 0;

	memset(&l, 0, sizeof(l));
	memset(big, 'A', sizeof(big));
	/* An overlong line is dropped whole, counted once. */
	assert_int_equal(lora_lines_feed(&l, big, sizeof(big), &off, &line),
	    LORA_LINE_NONE);
	off = 0;
	assert_int_equal(lora_lines_feed(&l, (const uint8_t *)"AAA\r\nOK\r\n",
	    9, &off, &line), LORA_LINE_OVERLONG);
	assert_int_equal(l.n_overlong, 1);
	/* The next line is intact. */
	assert_int_equal(lora_lines_feed(&l, (const uint8_t *)"AAA\r\nOK\r\n",
	    9, &off, &line), LORA_LINE_OK);
	assert_string_equal(line, "OK");
	/* A line exactly LORA_LINE_MAX long is a line. */
	off = 0;
	assert_int_equal(lora_lines_feed(&l, big, LORA_LINE_MAX, &off, &line),
	    LORA_LINE_NONE);
	off = 0;
	assert_int_equal(lora_lines_feed(&l, (const uint8_t *)"\n", 1, &off,
	    &line), LORA_LINE_OK);
	assert_int_equal(strlen(line), LORA_LINE_MAX);
	/* Noise: bytes that are not text mark the line garbled. */
	off = 0;
	assert_int_equal(lora_lines_feed(&l, (const uint8_t *)"O\x00K\xff\r\n",
	    6, &off, &line), LORA_LINE_GARBLED);
	assert_string_equal(line, "O?K?");
	assert_int_equal(l.n_garbled, 1);
}

static void
test_hex(void **state)
{
	uint8_t		 b[4], in[3] = { 0x00, 0xab, 0xff };
	char		 s[8];
	const char	*why;

	assert_int_equal(lora_hex_encode(in, 3, s, sizeof(s)), 6);
	assert_string_equal(s, "00ABFF");
	assert_int_equal(lora_hex_encode(in, 3, s, 6), -1);
	assert_int_equal(lora_hex_decode("00abFF", 6, b, sizeof(b), &why), 3);
	assert_memory_equal(b, in, 3);
	assert_int_equal(lora_hex_decode("00a", 3, b, sizeof(b), &why), -1);
	assert_string_equal(why, "hex payload of odd length");
	assert_int_equal(lora_hex_decode("0g", 2, b, sizeof(b), &why), -1);
	assert_string_equal(why, "payload is not hex");
	assert_int_equal(lora_hex_decode("0102030405", 10, b, sizeof(b),
	    &why), -1);
	assert_string_equal(why, "payload longer than the largest frame");
}

static void
test_parse_int(void **state)
{
	long	 v;

	assert_int_equal(lora_parse_int("-112", 4, -200, 50, &v), 0);
	assert_int_equal(v, -112);
	assert_int_equal(lora_parse_int("5", 1, -64, 64, &v), 0);
	assert_int_equal(lora_parse_int("", 0, -64, 64, &v), -1);
	assert_int_equal(lora_parse_int("-", 1, -64, 64, &v), -1);
	assert_int_equal(lora_parse_int("1a", 2, -64, 64, &v), -1);
	assert_int_equal(lora_parse_int("99", 2, -64, 64, &v), -1);
	assert_int_equal(lora_parse_int("12345678901", 11, 0, 10, &v), -1);
}

/* ------------------------------------------------------------------ */
/* RUI3                                                                 */

static struct lora_event
parse(const char *line, const char *cmd, uint8_t *buf, size_t cap)
{
	struct lora_event ev;

	lora_dialect_rui3.parse(line, cmd, &ev, buf, cap);
	return (ev);
}

/* The manual's lines, one by one. */
static void
test_rui3_transcripts(void **state)
{
	uint8_t			 b[256];
	struct lora_event	 ev;

	assert_int_equal(parse("OK", NULL, b, sizeof(b)).type, LORA_EV_OK);
	ev = parse("AT_PARAM_ERROR", NULL, b, sizeof(b));
	assert_int_equal(ev.type, LORA_EV_ERROR);
	assert_int_equal(ev.err, LORA_ERR_PARAM);
	ev = parse("AT_BUSY_ERROR", NULL, b, sizeof(b));
	assert_int_equal(ev.err, LORA_ERR_BUSY);
	ev = parse("AT_ERROR", NULL, b, sizeof(b));
	assert_int_equal(ev.err, LORA_ERR_GENERIC);
	ev = parse("AT_DUTYCYLE_RESTRICTED", NULL, b, sizeof(b));
	assert_int_equal(ev.type, LORA_EV_ERROR);
	assert_int_equal(ev.err, LORA_ERR_DUTY);
	ev = parse("AT_COMMAND_NOT_FOUND", NULL, b, sizeof(b));
	assert_int_equal(ev.err, LORA_ERR_UNKNOWN);
	ev = parse("AT_MODE_NO_SUPPORT", NULL, b, sizeof(b));
	assert_int_equal(ev.err, LORA_ERR_MODE);
	assert_int_equal(parse("+EVT:TXP2P DONE", NULL, b, sizeof(b)).type,
	    LORA_EV_TX_DONE);
	assert_int_equal(parse("+EVT:RXP2P RECEIVE ERROR", NULL, b,
	    sizeof(b)).type, LORA_EV_RX_ERROR);
	assert_int_equal(parse("+EVT:RXP2P RECEIVE TIMEOUT", NULL, b,
	    sizeof(b)).type, LORA_EV_RX_END);
	/* A forum transcript of RUI3 receiving "Hello Rak3172". */
	ev = parse("+EVT:RXP2P:-28:5:48656C6C6F2052616B33313732", NULL, b,
	    sizeof(b));
	assert_int_equal(ev.type, LORA_EV_RX);
	assert_int_equal(ev.rssi_dbm, -28);
	assert_int_equal(ev.snr_db, 5);
	assert_int_equal(ev.len, 13);
	assert_memory_equal(b, "Hello Rak3172", 13);
	ev = parse("+EVT:RXP2P:-112:-1:1234", NULL, b, sizeof(b));
	assert_int_equal(ev.type, LORA_EV_RX);
	assert_int_equal(ev.rssi_dbm, -112);
	assert_int_equal(ev.snr_db, -1);
	assert_int_equal(ev.len, 2);
	/* The banner's last line, after ATZ or AT+NWM. */
	assert_int_equal(parse("Current Work Mode: LoRa P2P.", NULL, b,
	    sizeof(b)).type, LORA_EV_BOOT);
	assert_int_equal(parse("Current Work Mode: LoRaWAN.", NULL, b,
	    sizeof(b)).type, LORA_EV_BOOT);
	/* Query values, with and without RUI3 4.x's prefix. */
	ev = parse("AT+P2P=868000000:7:125:0:10:14", NULL, b, sizeof(b));
	assert_int_equal(ev.type, LORA_EV_VALUE);
	assert_string_equal(ev.value, "AT+P2P=868000000:7:125:0:10:14");
	assert_int_equal(parse("0", NULL, b, sizeof(b)).type, LORA_EV_VALUE);
	/* ATE's echo of the command in flight. */
	assert_int_equal(parse("AT+PRECV=65533", "AT+PRECV=65533", b,
	    sizeof(b)).type, LORA_EV_IGNORE);
}

/* Malformed lines: refused with a reason, nothing taken from them. */
static void
test_rui3_bad_lines(void **state)
{
	static const struct {
		const char	*line;
		const char	*why;
	} v[] = {
		{ "+EVT:RXP2P:-28:5:ABC", "hex payload of odd length" },
		{ "+EVT:RXP2P:-28:5:ZZ", "payload is not hex" },
		{ "+EVT:RXP2P:-28:5:", "receive line with an empty payload" },
		{ "+EVT:RXP2P:-28:5", "receive line without RSSI, SNR and "
		    "payload" },
		{ "+EVT:RXP2P:x:5:00", "receive line with a bad RSSI" },
		{ "+EVT:RXP2P:-28:99:00", "receive line with a bad SNR" },
		{ "+EVT:RXP2P:-999:5:00", "receive line with a bad RSSI" },
		{ "+EVT:RXP2P:-28:5:0102030405", "payload longer than the "
		    "largest frame" },
		{ "+EVT:SOMETHING", "an event this driver does not know" }
	};
	uint8_t			 b[4];
	struct lora_event	 ev;
	size_t			 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(b, 0x55, sizeof(b));
		ev = parse(v[i].line, NULL, b, sizeof(b));
		assert_int_equal(ev.type, LORA_EV_BAD);
		assert_string_equal(ev.why, v[i].why);
	}
}

static void
test_rui3_commands(void **state)
{
	struct lora_phy	 p = phy(7, 125);
	struct lora_step st;
	char		 cmd[LORA_LINE_MAX];
	const char	*why;
	uint8_t		 b[250];
	unsigned int	 i;
	static const char *const script[] = {
		"AT", "AT+NWM=?", "AT+NWM=0", "AT+PRECV=0",
		"AT+P2P=869525000:7:125:0:8:14", "AT+P2P=?", "AT+PRECV=65533"
	};

	for (i = 0; lora_dialect_rui3.init_step(&p, i, &st); i++) {
		assert_true(i < sizeof(script) / sizeof(script[0]));
		assert_string_equal(st.cmd, script[i]);
		assert_int_equal(st.want_value, i == 1 || i == 5);
		assert_int_equal(st.reboots, i == 2);
	}
	assert_int_equal(i, 7);
	/* P2P mode already: skip AT+NWM=0; LoRaWAN: switch. */
	assert_int_equal(lora_dialect_rui3.init_check(&p, 1, "0", &why), 1);
	assert_int_equal(lora_dialect_rui3.init_check(&p, 1, "AT+NWM=0",
	    &why), 1);
	assert_int_equal(lora_dialect_rui3.init_check(&p, 1, "1", &why), 0);
	assert_int_equal(lora_dialect_rui3.init_check(&p, 1, "banana", &why),
	    -1);
	/* The settings read back, or the modem is not set as asked. */
	assert_int_equal(lora_dialect_rui3.init_check(&p, 5,
	    "AT+P2P=869525000:7:125:0:8:14", &why), 0);
	assert_int_equal(lora_dialect_rui3.init_check(&p, 5,
	    "869525000:7:125:0:8:14", &why), 0);
	assert_int_equal(lora_dialect_rui3.init_check(&p, 5,
	    "868000000:7:125:0:8:14", &why), -1);
	assert_non_null(why);
	/* CR 4/8, SF12, 500 kHz, 22 dBm. */
	p = phy(12, 500);
	p.cr = 4;
	p.power_dbm = 22;
	p.preamble = 16;
	assert_true(lora_dialect_rui3.init_step(&p, 4, &st));
	assert_string_equal(st.cmd, "AT+P2P=869525000:12:500:3:16:22");
	/* Sending: the manual's example payload 0x03 0xAA 0x32. */
	b[0] = 0x03;
	b[1] = 0xaa;
	b[2] = 0x32;
	assert_int_equal(lora_dialect_rui3.send_cmd(b, 3, cmd, sizeof(cmd)),
	    15);
	assert_string_equal(cmd, "AT+PSEND=03AA32");
	memset(b, 0xee, sizeof(b));
	assert_int_equal(lora_dialect_rui3.send_cmd(b, 250, cmd, sizeof(cmd)),
	    509);
	assert_int_equal(lora_dialect_rui3.send_cmd(b, 0, cmd, sizeof(cmd)),
	    -1);
	assert_int_equal(lora_dialect_rui3.send_cmd(b, 251, cmd, sizeof(cmd)),
	    -1);
	assert_int_equal(lora_dialect_rui3.send_cmd(b, 100, cmd, 100), -1);
	assert_true(lora_dialect_rui3.preamble_cmd(2000, cmd, sizeof(cmd)) >
	    0);
	assert_string_equal(cmd, "AT+PPL=2000");
	assert_int_equal(lora_dialect_rui3.preamble_cmd(70000, cmd,
	    sizeof(cmd)), -1);
	assert_true(lora_dialect_rui3.listen_cmd(true, cmd, sizeof(cmd)) > 0);
	assert_string_equal(cmd, "AT+PRECV=65533");
	assert_true(lora_dialect_rui3.listen_cmd(false, cmd, sizeof(cmd)) > 0);
	assert_string_equal(cmd, "AT+PRECV=0");
	assert_true(lora_dialect_rui3.reset_cmd(cmd, sizeof(cmd)) > 0);
	assert_string_equal(cmd, "ATZ");
	assert_ptr_equal(lora_dialect_find("rui3"), &lora_dialect_rui3);
	assert_null(lora_dialect_find("wio-e5"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toa_published),
		cmocka_unit_test(test_toa_lorawan_table),
		cmocka_unit_test(test_toa_terms),
		cmocka_unit_test(test_mtu_bitrate),
		cmocka_unit_test(test_phy_check),
		cmocka_unit_test(test_eu868_bands),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_lines_bounded),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_rui3_transcripts),
		cmocka_unit_test(test_rui3_bad_lines),
		cmocka_unit_test(test_rui3_commands)
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
