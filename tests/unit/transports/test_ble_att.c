/*
 * test_ble_att.c: the ble transport's ATT codec, advertising report
 * parser and addresses (transports/ble/ble_att.c), on byte vectors
 * written from the Core specification's layouts (Vol 3 Part F §3.4,
 * Vol 4 Part E §7.7.65.2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ble_internal.h"

#define DEC(v, m)	ble_att_decode((v), sizeof(v), (m))

static void
t_decode_responses(void **state)
{
	struct ble_att_msg	 m;
	struct ble_att_chr	 c;
	static const uint8_t	 err[] = { 0x01, 0x08, 0x10, 0x00, 0x0a };
	static const uint8_t	 mtu[] = { 0x03, 0xf7, 0x00 };
	static const uint8_t	 ftype[] = { 0x07, 0x10, 0x00, 0x19, 0x00 };
	static const uint8_t	 rtype16[] = { 0x09, 0x07, 0x02, 0x00, 0x02,
				    0x03, 0x00, 0x00, 0x2a };
	uint8_t			 rtype128[2 + 21];
	static const uint8_t	 finfo[] = { 0x05, 0x01, 0x15, 0x00, 0x02,
				    0x29, 0x16, 0x00, 0x03, 0x28 };
	static const uint8_t	 rd[] = { 0x0b, 0x10, 0x00, 0x00, 0x00 };
	static const uint8_t	 ntf[] = { 0x1b, 0x14, 0x00, 0xaa, 0xbb };

	assert_int_equal(DEC(err, &m), BLE_OK);
	assert_int_equal(m.u.err.req, BLE_ATT_READ_TYPE_REQ);
	assert_int_equal(m.u.err.handle, 0x0010);
	assert_int_equal(m.u.err.code, BLE_ATT_E_NOT_FOUND);

	assert_int_equal(DEC(mtu, &m), BLE_OK);
	assert_int_equal(m.u.mtu, 247);

	assert_int_equal(DEC(ftype, &m), BLE_OK);
	assert_int_equal(m.u.list.count, 1);

	assert_int_equal(DEC(rtype16, &m), BLE_OK);
	assert_int_equal(m.u.list.count, 1);
	assert_int_equal(ble_att_chr_at(&m, 0, &c), BLE_OK);
	assert_int_equal(c.decl, 2);
	assert_int_equal(c.props, BLE_PROP_READ);
	assert_int_equal(c.value, 3);
	assert_int_equal(c.uuid_len, 2);

	rtype128[0] = BLE_ATT_READ_TYPE_RSP;
	rtype128[1] = 21;
	rtype128[2] = 0x11;
	rtype128[3] = 0x00;
	rtype128[4] = BLE_PROP_WRITE_CMD;
	rtype128[5] = 0x12;
	rtype128[6] = 0x00;
	memcpy(rtype128 + 7, ble_uuid_up_data, 16);
	assert_int_equal(DEC(rtype128, &m), BLE_OK);
	assert_int_equal(ble_att_chr_at(&m, 0, &c), BLE_OK);
	assert_int_equal(c.value, 0x12);
	assert_int_equal(c.uuid_len, 16);
	assert_memory_equal(c.uuid, ble_uuid_up_data, 16);
	assert_int_equal(ble_att_chr_at(&m, 1, &c), BLE_EFORMAT);

	assert_int_equal(DEC(finfo, &m), BLE_OK);
	assert_int_equal(m.u.list.format, 1);
	assert_int_equal(m.u.list.count, 2);

	assert_int_equal(DEC(rd, &m), BLE_OK);
	assert_int_equal(m.u.value.len, 4);

	assert_int_equal(DEC(ntf, &m), BLE_OK);
	assert_int_equal(m.u.hv.handle, 0x14);
	assert_int_equal(m.u.hv.len, 2);
}

static void
t_decode_malformed(void **state)
{
	struct ble_att_msg	 m;
	static const uint8_t	 err_short[] = { 0x01, 0x08, 0x10, 0x00 };
	static const uint8_t	 err_long[] = { 0x01, 0x08, 0x10, 0x00, 0x0a,
				    0x00 };
	static const uint8_t	 err_zero[] = { 0x01, 0x08, 0x10, 0x00, 0x00 };
	static const uint8_t	 mtu_short[] = { 0x03, 0xf7 };
	static const uint8_t	 ftype_odd[] = { 0x07, 0x10, 0x00, 0x19 };
	static const uint8_t	 ftype_rev[] = { 0x07, 0x19, 0x00, 0x10,
				    0x00 };
	static const uint8_t	 rtype_len[] = { 0x09, 0x07, 0x02, 0x00, 0x02,
				    0x03, 0x00, 0x00 };
	static const uint8_t	 rtype_small[] = { 0x09, 0x01, 0x02 };
	static const uint8_t	 rtype_h0[] = { 0x09, 0x07, 0x00, 0x00, 0x02,
				    0x03, 0x00, 0x00, 0x2a };
	static const uint8_t	 finfo_fmt[] = { 0x05, 0x03, 0x15, 0x00, 0x02,
				    0x29 };
	static const uint8_t	 finfo_len[] = { 0x05, 0x02, 0x15, 0x00, 0x02,
				    0x29 };
	static const uint8_t	 ntf_short[] = { 0x1b, 0x14 };
	static const uint8_t	 ntf_h0[] = { 0x1b, 0x00, 0x00, 0x01 };
	static const uint8_t	 wrsp_long[] = { 0x13, 0x00 };
	static const uint8_t	 unknown[] = { 0x7f, 0x00 };
	static const uint8_t	 range_rev[] = { 0x08, 0x10, 0x00, 0x01, 0x00,
				    0x03, 0x28 };
	struct ble_att_chr	 c;
	static const uint8_t	 chr_back[] = { 0x09, 0x07, 0x05, 0x00, 0x02,
				    0x04, 0x00, 0x00, 0x2a };

	assert_int_equal(ble_att_decode(NULL, 0, &m), BLE_ESHORT);
	assert_int_equal(DEC(err_short, &m), BLE_ESHORT);
	assert_int_equal(DEC(err_long, &m), BLE_ELEN);
	assert_int_equal(DEC(err_zero, &m), BLE_EFORMAT);
	assert_int_equal(DEC(mtu_short, &m), BLE_ESHORT);
	assert_int_equal(DEC(ftype_odd, &m), BLE_ESHORT);
	assert_int_equal(DEC(ftype_rev, &m), BLE_EFORMAT);
	assert_int_equal(DEC(rtype_len, &m), BLE_ESHORT);
	assert_int_equal(DEC(rtype_small, &m), BLE_EFORMAT);
	assert_int_equal(DEC(rtype_h0, &m), BLE_EFORMAT);
	assert_int_equal(DEC(finfo_fmt, &m), BLE_EFORMAT);
	assert_int_equal(DEC(finfo_len, &m), BLE_ESHORT);
	assert_int_equal(DEC(ntf_short, &m), BLE_ESHORT);
	assert_int_equal(DEC(ntf_h0, &m), BLE_EFORMAT);
	assert_int_equal(DEC(wrsp_long, &m), BLE_ELEN);
	assert_int_equal(DEC(unknown, &m), BLE_EOPCODE);
	assert_int_equal(DEC(range_rev, &m), BLE_EFORMAT);
	/* A declaration whose value handle is not after it. */
	assert_int_equal(DEC(chr_back, &m), BLE_OK);
	assert_int_equal(ble_att_chr_at(&m, 0, &c), BLE_EFORMAT);
}

static void
t_encode(void **state)
{
	uint8_t		 b[32];
	static const uint8_t	 mtu[] = { 0x02, 0xf7, 0x00 };
	static const uint8_t	 rtype[] = { 0x08, 0x10, 0x00, 0x19, 0x00,
				    0x03, 0x28 };
	static const uint8_t	 finfo[] = { 0x04, 0x15, 0x00, 0x15, 0x00 };
	static const uint8_t	 wreq[] = { 0x12, 0x15, 0x00, 0x01, 0x00 };
	static const uint8_t	 err[] = { 0x01, 0x0a, 0x00, 0x00, 0x06 };
	uint8_t		 on[2] = { 1, 0 };

	assert_int_equal(ble_att_enc_mtu(b, sizeof(b), BLE_ATT_MTU_REQ, 247),
	    3);
	assert_memory_equal(b, mtu, 3);
	/* The service search fits the default MTU exactly. */
	assert_int_equal(ble_att_enc_find_type(b, sizeof(b), 1, 0xffff,
	    BLE_UUID_PRIMARY, ble_uuid_up_service, 16), 23);
	assert_int_equal(b[0], BLE_ATT_FIND_TYPE_REQ);
	assert_memory_equal(b + 7, ble_uuid_up_service, 16);
	assert_int_equal(ble_att_enc_range(b, sizeof(b),
	    BLE_ATT_READ_TYPE_REQ, 0x10, 0x19, BLE_UUID_CHARACTERISTIC), 7);
	assert_memory_equal(b, rtype, 7);
	assert_int_equal(ble_att_enc_find_info(b, sizeof(b), 0x15, 0x15), 5);
	assert_memory_equal(b, finfo, 5);
	assert_int_equal(ble_att_enc_write(b, sizeof(b), BLE_ATT_WRITE_REQ,
	    0x15, on, 2), 5);
	assert_memory_equal(b, wreq, 5);
	assert_int_equal(ble_att_enc_error(b, sizeof(b), BLE_ATT_READ_REQ, 0,
	    BLE_ATT_E_NOT_SUPPORTED), 5);
	assert_memory_equal(b, err, 5);
	assert_int_equal(ble_att_enc_find_type(b, 10, 1, 0xffff,
	    BLE_UUID_PRIMARY, ble_uuid_up_service, 16), BLE_ESPACE);
	assert_int_equal(ble_att_enc_mtu(b, 2, BLE_ATT_MTU_REQ, 23),
	    BLE_ESPACE);
}

static void
t_uuid_text(void **state)
{
	char	 u[40];

	ble_uuid_fmt(ble_uuid_up_service, u, sizeof(u));
	assert_string_equal(u, "e84f0001-5a6a-4d2f-b31b-6c73e1665fa7");
	ble_uuid_fmt(ble_uuid_up_data, u, sizeof(u));
	assert_string_equal(u, "e84f0002-5a6a-4d2f-b31b-6c73e1665fa7");
	ble_uuid_fmt(ble_uuid_up_reply, u, sizeof(u));
	assert_string_equal(u, "e84f0003-5a6a-4d2f-b31b-6c73e1665fa7");
	ble_uuid_fmt(ble_uuid_up_credit, u, sizeof(u));
	assert_string_equal(u, "e84f0004-5a6a-4d2f-b31b-6c73e1665fa7");
}

/* A report: ADV_IND, random address, flags and the UP service's UUID. */
static size_t
mk_report(uint8_t *b, uint8_t evt, const uint8_t *uuid, int8_t rssi)
{
	size_t	 n = 0, d;

	b[n++] = evt;
	b[n++] = 0x01;				/* random */
	b[n++] = 0x66; b[n++] = 0x55; b[n++] = 0x44;
	b[n++] = 0x33; b[n++] = 0x22; b[n++] = 0xc1;	/* C1:22:...:66 */
	d = n++;
	b[n++] = 2; b[n++] = 0x01; b[n++] = 0x06;	/* flags */
	b[n++] = 17; b[n++] = 0x07;			/* all 128-bit */
	memcpy(b + n, uuid, 16);
	n += 16;
	b[d] = (uint8_t)(n - d - 1);
	b[n++] = (uint8_t)rssi;
	return (n);
}

static void
t_adv(void **state)
{
	struct ble_adv	 a;
	uint8_t		 b[64], two[128];
	size_t		 n, used, m;
	char		 s[TP_ADDR_TEXT_MAX];

	n = mk_report(b, 0x00, ble_uuid_up_service, -60);
	assert_int_equal(ble_adv_parse(b, n, &used, &a), BLE_OK);
	assert_int_equal(used, n);
	assert_true(a.connectable);
	assert_true(a.up_service);
	assert_int_equal(a.rssi, -60);
	assert_int_equal(ble_addr_fmt(&a.addr, s, sizeof(s)), 0);
	assert_string_equal(s, "ble:C1:22:33:44:55:66/random");

	/* Another service; not connectable; RSSI unknown. */
	n = mk_report(b, 0x03, ble_uuid_up_data, 127);
	assert_int_equal(ble_adv_parse(b, n, &used, &a), BLE_OK);
	assert_false(a.up_service);
	assert_false(a.connectable);
	assert_int_equal(a.rssi, INT16_MAX);

	/* Two reports back to back, as in one LE Meta event. */
	n = mk_report(two, 0x00, ble_uuid_up_service, -50);
	m = mk_report(two + n, 0x01, ble_uuid_up_service, -70);
	assert_int_equal(ble_adv_parse(two, n + m, &used, &a), BLE_OK);
	assert_int_equal(used, n);
	assert_int_equal(ble_adv_parse(two + n, m, &used, &a), BLE_OK);
	assert_int_equal(a.rssi, -70);
	assert_true(a.connectable);

	/* An AD structure running past the data. */
	n = mk_report(b, 0x00, ble_uuid_up_service, -60);
	b[12] = 30;
	assert_int_equal(ble_adv_parse(b, n, &used, &a), BLE_ELEN);
	/* A UUID list that is not a whole number of UUIDs. */
	n = mk_report(b, 0x00, ble_uuid_up_service, -60);
	b[12] = 16;
	b[9 + 3 + 17] = 0;	/* end the data early: zero-length AD */
	assert_int_equal(ble_adv_parse(b, n, &used, &a), BLE_ELEN);
	/* Data length past the report. */
	n = mk_report(b, 0x00, ble_uuid_up_service, -60);
	assert_int_equal(ble_adv_parse(b, n - 2, &used, &a), BLE_ESHORT);
	/* More than legacy advertising allows. */
	b[8] = 32;
	assert_int_equal(ble_adv_parse(b, sizeof(b), &used, &a), BLE_EFORMAT);
	assert_int_equal(ble_adv_parse(b, 5, &used, &a), BLE_ESHORT);
}

static void
t_addr(void **state)
{
	struct tp_addr	 a, b;
	char		 s[TP_ADDR_TEXT_MAX], *cause = NULL;

	assert_int_equal(ble_addr_parse("ble:00:1A:7d:da:71:13", &a, &cause),
	    0);
	assert_int_equal(a.len, BLE_ADDR_LEN);
	assert_int_equal(a.b[0], BLE_ADDR_PUBLIC);
	assert_int_equal(a.b[1], 0x00);
	assert_int_equal(a.b[6], 0x13);
	assert_int_equal(ble_addr_fmt(&a, s, sizeof(s)), 0);
	assert_string_equal(s, "ble:00:1A:7D:DA:71:13");
	assert_int_equal(ble_addr_parse("ble:C0:00:00:00:00:2A/random", &b,
	    &cause), 0);
	assert_int_equal(b.b[0], BLE_ADDR_RANDOM);
	assert_int_equal(ble_addr_parse("ble:00:1A:7D:DA:71:13/public", &b,
	    &cause), 0);
	assert_true(tp_addr_eq(&a, &b));
	assert_int_equal(ble_addr_fmt(&a, s, 10), -1);

	assert_int_equal(ble_addr_parse("ble:00:1A:7D:DA:71", &a, &cause),
	    -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "ble:AA:BB:CC:DD:EE:FF"));
	free(cause);
	cause = NULL;
	assert_int_equal(ble_addr_parse("lan:1.2.3.4:5", &a, NULL), -1);
	assert_int_equal(ble_addr_parse("ble:00-1A-7D-DA-71-13", &a, NULL),
	    -1);
	assert_int_equal(ble_addr_parse("ble:00:1A:7D:DA:71:1G", &a, NULL),
	    -1);
	assert_int_equal(ble_addr_parse("ble:00:1A:7D:DA:71:13/x", &a, NULL),
	    -1);
	assert_int_equal(ble_addr_parse("ble:00:1A:7D:DA:71:13x", &a, NULL),
	    -1);
	tp_addr_broadcast(&a);
	assert_int_equal(ble_addr_fmt(&a, s, sizeof(s)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_decode_responses),
		cmocka_unit_test(t_decode_malformed),
		cmocka_unit_test(t_encode),
		cmocka_unit_test(t_uuid_text),
		cmocka_unit_test(t_adv),
		cmocka_unit_test(t_addr),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
