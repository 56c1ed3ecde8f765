/*
 * test_up_compact.c: the compact form of UP frames (up/up_cframe.c,
 * docs/up-protocol.md §11) and segmentation (up/up_seg.c, §11.8), beyond
 * the document's vectors: every message round-trips with and without
 * node ids and trailers, the gateway's fast paths give the encoder's
 * bytes, the size helpers keep every frame within the link, and the
 * reassembler follows the rules for lost, repeated, reordered and
 * contradicting segments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "up.h"
#include "up_internal.h"

#define SESSION		0x5eed0001u
#define NODE		0x0102030405060708ULL

static uint8_t	 fbuf[UP_FRAME_MAX], fbuf2[UP_FRAME_MAX];

/* Encodes, checks the size, decodes, re-encodes to the same bytes. */
static int
roundtrip(const struct up_msg *m, struct up_msg *out)
{
	int		 n, n2;

	n = up_encode(m, fbuf, sizeof(fbuf));
	assert_true(n > 0);
	assert_int_equal(fbuf[0] & UP_C_MARK, UP_C_MARK);
	assert_int_equal(up_cdecode(fbuf, (size_t)n, out), UP_OK);
	assert_int_equal(up_decode_any(fbuf, (size_t)n, out), UP_OK);
	/* A full-form decoder drops it: too short or unknown version. */
	assert_int_equal(up_decode(fbuf, (size_t)n, out),
	    n < UP_OVERHEAD ? UP_ESHORT : UP_EVERSION);
	assert_int_equal(up_cdecode(fbuf, (size_t)n, out), UP_OK);
	assert_int_equal(out->type, m->type);
	assert_int_equal(out->form, UP_FORM_COMPACT);
	n2 = up_encode(out, fbuf2, sizeof(fbuf2));
	assert_int_equal(n2, n);
	assert_memory_equal(fbuf, fbuf2, (size_t)n);
	return (n);
}

static void
cmsg(struct up_msg *m, uint8_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->form = UP_FORM_COMPACT;
	m->session = SESSION;
}

/* ------------------------------------------------------------------ */

static void
test_varint(void **state)
{
	static const uint32_t vals[] = { 0, 1, 0x7f, 0x80, 0x3fff, 0x4000,
	    0x1fffff, 0x200000, 0xfffffff, 0x10000000, 0xffffffff };
	uint8_t		 b[8];
	struct up_wr	 wr;
	struct up_rd	 rd;
	size_t		 i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		up_wr_init(&wr, b, sizeof(b));
		up__wr_varint(&wr, vals[i]);
		assert_int_equal(up_wr_err(&wr), UP_OK);
		assert_int_equal(wr.off, up__varint_len(vals[i]));
		up_rd_init(&rd, b, wr.off);
		assert_int_equal(up__rd_varint(&rd), vals[i]);
		assert_int_equal(up_rd_err(&rd), UP_OK);
		assert_int_equal(up_rd_left(&rd), 0);
		/* One byte short: ESHORT. */
		up_rd_init(&rd, b, wr.off - 1);
		(void)up__rd_varint(&rd);
		assert_int_equal(up_rd_err(&rd), UP_ESHORT);
	}
	assert_int_equal(up__varint_len(0xffffffff), 5);
	/* Overlong: 0x80 0x00 is 0 in two bytes. */
	b[0] = 0x80;
	b[1] = 0x00;
	up_rd_init(&rd, b, 2);
	(void)up__rd_varint(&rd);
	assert_int_equal(up_rd_err(&rd), UP_ERANGE);
	/* A fifth byte with its high bit set asks for a sixth. */
	memset(b, 0xff, 5);
	up_rd_init(&rd, b, 6);
	(void)up__rd_varint(&rd);
	assert_int_equal(up_rd_err(&rd), UP_ERANGE);
	/* 0x10 in the fifth byte is bit 32. */
	b[4] = 0x10;
	up_rd_init(&rd, b, 5);
	(void)up__rd_varint(&rd);
	assert_int_equal(up_rd_err(&rd), UP_ERANGE);
	b[4] = 0x0f;
	up_rd_init(&rd, b, 5);
	assert_int_equal(up__rd_varint(&rd), 0xffffffff);
}

static void
test_control_roundtrip(void **state)
{
	struct up_msg	 m, d;

	/* STATUS_REQ: every node, then one, with the schedule. */
	cmsg(&m, UP_T_STATUS_REQ);
	m.cx.req = UP_SB_COUNTS | UP_SQ_MISSING;
	m.cx.slots = 300;
	m.cx.slot_ms = 1800;
	assert_int_equal(roundtrip(&m, &d), 10);
	assert_int_equal(d.cx.slots, 300);
	assert_int_equal(d.cx.slot_ms, 1800);
	assert_int_equal(d.cx.req, UP_SB_COUNTS | UP_SQ_MISSING);
	assert_int_equal(d.u.target.node_id, 0);
	m.u.target.node_id = NODE;
	assert_int_equal(roundtrip(&m, &d), 18);
	assert_int_equal(fbuf[0] & UP_C_X, UP_C_X);
	assert_true(d.u.target.node_id == NODE);

	/* Unknown req bits are kept, not rejected. */
	m.cx.req = 0xf9;
	(void)roundtrip(&m, &d);
	assert_int_equal(d.cx.req, 0xf9);

	cmsg(&m, UP_T_VERIFY);
	m.cx.slots = 32;
	m.cx.slot_ms = 2500;
	assert_int_equal(roundtrip(&m, &d), 9);
	cmsg(&m, UP_T_ACTIVATE);
	m.u.activate.delay_ms = 12345;
	m.u.activate.node_id = NODE;
	assert_int_equal(roundtrip(&m, &d), 17);
	assert_int_equal(d.u.activate.delay_ms, 12345);

	cmsg(&m, UP_T_RESULT_ACK);
	m.u.target.node_id = NODE;
	assert_int_equal(roundtrip(&m, &d), 13);
	m.u.target.node_id = 0;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ERANGE);

	cmsg(&m, UP_T_ABORT);
	m.u.target.reason = UP_R_ABORTED;
	assert_int_equal(roundtrip(&m, &d), 6);
	assert_int_equal(d.u.target.reason, UP_R_ABORTED);

	cmsg(&m, UP_T_RESULT);
	m.u.result.state = UP_NS_UPDATED;
	m.u.result.result = UP_R_SUCCESS;
	strcpy(m.u.result.component, "app");	/* not carried */
	strcpy(m.u.result.version, "1.1.0");
	assert_int_equal(roundtrip(&m, &d), 13);
	assert_string_equal(d.u.result.version, "1.1.0");
	assert_string_equal(d.u.result.component, "");
	m.u.result.node_id = NODE;
	assert_int_equal(roundtrip(&m, &d), 21);
	m.u.result.state = 7;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ERANGE);

	cmsg(&m, UP_T_DISCOVER);
	m.session = 0;
	m.cx.slots = 1;
	m.cx.slot_ms = 1;
	assert_int_equal(roundtrip(&m, &d), 5);

	/* Session 0 is refused where the session is carried. */
	cmsg(&m, UP_T_VERIFY);
	m.session = 0;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ERANGE);
}

static void
test_trailers(void **state)
{
	struct up_msg	 m, d;
	int		 n;

	cmsg(&m, UP_T_ABORT);
	m.u.target.reason = UP_R_FAILED;
	m.u.target.node_id = NODE;
	m.cx.cflags = UP_CF_CRC;
	assert_int_equal(n = roundtrip(&m, &d), 16);
	assert_int_equal(d.cx.cflags, UP_CF_CRC);
	/* Every single-bit error is caught by the CRC-16. */
	for (int i = 0; i < n * 8; i++) {
		memcpy(fbuf2, fbuf, (size_t)n);
		fbuf2[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(up_cdecode(fbuf2, (size_t)n, &d), UP_OK);
	}
	m.cx.cflags = UP_CF_CRC | UP_CF_MIC;
	memcpy(m.cx.mic, "\x01\x02\x03\x04", 4);
	assert_int_equal(n = roundtrip(&m, &d), 20);
	assert_memory_equal(d.cx.mic, "\x01\x02\x03\x04", 4);
	/* The MIC sits before the CRC. */
	assert_memory_equal(fbuf + n - 6, "\x01\x02\x03\x04", 4);
	m.cx.cflags = UP_CF_MIC;
	assert_int_equal(roundtrip(&m, &d), 18);
	/* Unknown bits in cflags are the caller's mistake. */
	m.cx.cflags = 0x01;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_EINVAL);
	/* A SEG never carries a MIC. */
	cmsg(&m, UP_T_SEG);
	m.u.seg.n = 2;
	m.u.seg.len = 1;
	m.u.seg.chunk = (const uint8_t *)"x";
	m.cx.cflags = UP_CF_MIC;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ERANGE);
}

static void
test_offer_announce(void **state)
{
	struct up_msg	 m, d;
	struct up_offer	*o = &m.u.offer;
	struct up_announce *a;
	int		 n;

	cmsg(&m, UP_T_OFFER);
	m.cx.tag = 9;
	m.cx.fec_k = 32;
	m.cx.slots = 64;
	m.cx.slot_ms = 2000;
	m.cx.cflags = UP_CF_CRC;
	strcpy(o->component, "app");
	strcpy(o->to_version, "2.0");
	o->size = 100000;
	o->block_size = 47;
	o->nblocks = up_nblocks(o->size, o->block_size);
	n = roundtrip(&m, &d);
	assert_int_equal(d.cx.tag, 9);
	assert_int_equal(d.cx.fec_k, 32);
	assert_int_equal(d.u.offer.nblocks, 2128);
	/* The full OFFER payload, unchanged, after 11 bytes of set-up. */
	{
		struct up_msg	 full = m;
		uint8_t		 f[UP_FRAME_MAX];
		int		 fn;

		full.form = UP_FORM_FULL;
		memset(&full.cx, 0, sizeof(full.cx));
		fn = up_encode(&full, f, sizeof(f));
		assert_true(fn > 0);
		assert_int_equal(n, 11 + fn - UP_OVERHEAD + UP_C_CRC_LEN);
		assert_memory_equal(fbuf + 11, f + UP_HDR_LEN,
		    (size_t)(fn - UP_OVERHEAD));
	}
	/* Its rules are the full form's. */
	o->nblocks++;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ERANGE);

	cmsg(&m, UP_T_ANNOUNCE);
	m.session = 0;
	a = &m.u.announce;
	a->node_id = NODE;
	strcpy(a->hw, "lora-1");
	a->max_frame = 51;
	a->battery = UP_BATTERY_UNKNOWN;
	a->ncomp = 1;
	strcpy(a->comp[0].name, "app");
	strcpy(a->comp[0].version, "1.0");
	m.cx.caps = UP_CAP_XOR;
	m.cx.fec_kmax = 64;
	m.cx.uplink_mtu = 51;
	m.cx.seg_max = UP_SEG_MSG_MAX;
	(void)roundtrip(&m, &d);
	assert_int_equal(d.cx.uplink_mtu, 51);
	assert_int_equal(d.cx.seg_max, UP_SEG_MSG_MAX);
	a->node_id = 0;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ERANGE);
}

static void
test_status_forms(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 bm[4], list[64];
	struct up_bitmap held;

	/* A run list of a bitmap with holes 2, 4, 11-13 of 14. */
	up_bitmap_init(&held, bm, 14);
	up_bitmap_clear_all(&held);
	for (uint32_t i = 0; i < 14; i++)
		if (i != 2 && i != 4 && i < 11)
			up_bitmap_set(&held, i);
	cmsg(&m, UP_T_STATUS);
	m.u.status.state = UP_NS_RECEIVING;
	assert_int_equal(up_status_runs(&held, list, sizeof(list), 64,
	    &m.u.status.st), 7);
	assert_int_equal(roundtrip(&m, &d), 6 + 7);
	assert_int_equal(d.u.status.st.form, UP_SB_RUNS);
	assert_int_equal(d.u.status.st.nent, 3);
	assert_int_equal(d.u.status.st.held, 9);

	/* ACCEPT: caps nibble and form. */
	cmsg(&m, UP_T_ACCEPT);
	m.u.accept.node_id = NODE;
	m.cx.caps = UP_ACAP_PARITY;
	(void)up_status_runs(&held, list, sizeof(list), 64, &m.u.accept.st);
	(void)roundtrip(&m, &d);
	assert_int_equal(d.cx.caps, UP_ACAP_PARITY);
	assert_int_equal(d.u.accept.st.form, UP_SB_RUNS);
	/* A decline carries no status at all. */
	m.u.accept.code = UP_R_NO_SPACE;
	assert_int_equal(roundtrip(&m, &d), 14);

	/* A list that is not what nent says is refused, not written. */
	m.u.accept.code = UP_R_INITIAL;
	m.u.accept.st.nent++;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ESHORT);
	m.u.accept.st.nent -= 2;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ELEN);
	m.u.accept.st.nent++;
	m.u.accept.st.list = NULL;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_EINVAL);

	/* The full form refuses a compact status body. */
	m.form = UP_FORM_FULL;
	m.u.accept.code = UP_R_INITIAL;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_EINVAL);
}

static void
test_data_parity(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 blk[47], f1[64], f2[64];
	int		 n, n2;

	memset(blk, 0x5a, sizeof(blk));
	cmsg(&m, UP_T_DATA);
	m.session = 0;
	m.cx.tag = 3;
	m.u.data.index = 0xffff;
	m.u.data.len = sizeof(blk);
	m.u.data.data = blk;
	assert_int_equal(n = roundtrip(&m, &d), 51);
	assert_int_equal(d.session, 0);
	assert_int_equal(d.cx.tag, 3);
	assert_int_equal(d.u.data.index, 0xffff);
	/* The fast path gives the same bytes. */
	assert_int_equal(up_cdata_off(0xffff), 4);
	memcpy(f1 + 4, blk, sizeof(blk));
	assert_int_equal(up_cseal(f1, sizeof(f1), UP_T_DATA, 0, 3, 0xffff,
	    sizeof(blk)), n);
	assert_memory_equal(f1, fbuf, (size_t)n);

	/* Past 0xffff: the 3-byte index. */
	m.u.data.index = 0x10000;
	m.u.data.len = 46;
	assert_int_equal(n = roundtrip(&m, &d), 51);
	assert_int_equal(fbuf[0] & UP_C_X, UP_C_X);
	assert_int_equal(up_cdata_off(0x10000), 5);
	memcpy(f2 + 5, blk, 46);
	assert_int_equal(up_cseal(f2, sizeof(f2), UP_T_DATA, 0, 3, 0x10000,
	    46), n);
	assert_memory_equal(f2, fbuf, (size_t)n);
	/* With a CRC-16. */
	memcpy(f2 + 4, blk, 20);
	n2 = up_cseal(f2, sizeof(f2), UP_T_PARITY, UP_CF_CRC, 3, 7, 20);
	assert_int_equal(n2, 26);
	assert_int_equal(up_cdecode(f2, (size_t)n2, &d), UP_OK);
	assert_int_equal(d.type, UP_T_PARITY);
	assert_int_equal(d.u.data.index, 7);
	/* Errors: a MIC, an index past 2^24 - 1, no bytes, no room. */
	assert_int_equal(up_cseal(f2, sizeof(f2), UP_T_DATA, UP_CF_MIC, 3, 1,
	    4), UP_EINVAL);
	assert_int_equal(up_cdata_off(0x1000000), 0);
	assert_int_equal(up_cseal(f2, sizeof(f2), UP_T_DATA, 0, 3, 0x1000000,
	    4), UP_EINVAL);
	assert_int_equal(up_cseal(f2, sizeof(f2), UP_T_DATA, 0, 3, 1, 0),
	    UP_ELEN);
	assert_int_equal(up_cseal(f2, 10, UP_T_DATA, 0, 3, 1, 20),
	    UP_ENOSPC);
	assert_int_equal(up_cseal(f2, sizeof(f2), UP_T_XOR, 0, 3, 1, 4),
	    UP_EINVAL);
	m.u.data.index = 0x1000000;
	assert_int_equal(up_encode(&m, fbuf, sizeof(fbuf)), UP_ERANGE);
}

static void
test_parity_code(void **state)
{
	struct up_msg	 m;
	struct up_fec_parity p;
	uint32_t	 code, row, group, r, g, ng;
	uint8_t		 par[4] = { 1, 2, 3, 4 };

	/* 2134 blocks (100 KiB of 48-byte blocks) in groups of 64. */
	ng = up_fec_ngroups(2134, 64);
	assert_int_equal(ng, 34);
	for (r = 1; r <= 3; r++)
		for (g = 0; g < ng; g++) {
			assert_int_equal(up_cparity_code(r, g, ng, &code),
			    UP_OK);
			assert_int_equal(code, (r - 1) * ng + g);
			assert_int_equal(up_cparity_split(code, ng, &row,
			    &group), UP_OK);
			assert_int_equal(row, r);
			assert_int_equal(group, g);
		}
	assert_int_equal(up_cparity_code(0, 0, ng, &code), UP_ERANGE);
	assert_int_equal(up_cparity_code(1, ng, ng, &code), UP_ERANGE);
	assert_int_equal(up_cparity_code(UP_FEC_ROW_MAX + 1, 0, ng, &code),
	    UP_ERANGE);
	/* Row 65535 of group 0 with 1000 groups is past 2^24 - 1. */
	assert_int_equal(up_cparity_code(UP_FEC_ROW_MAX, 0, 1000, &code),
	    UP_ERANGE);
	assert_int_equal(up_cparity_split(1, 0, &row, &group), UP_ERANGE);
	assert_int_equal(up_cparity_split(UP_FEC_ROW_MAX, 1, &row, &group),
	    UP_ERANGE);

	cmsg(&m, UP_T_PARITY);
	m.u.data.index = 2 * ng + 5;	/* row 3, group 5 */
	m.u.data.len = sizeof(par);
	m.u.data.data = par;
	assert_int_equal(up_cparity_parse(&m, 64, 2134, &p), UP_OK);
	assert_int_equal(p.row, 3);
	assert_int_equal(p.group, 5);
	assert_int_equal(p.k, 64);
	assert_int_equal(p.len, 4);
	assert_int_equal(up_cparity_parse(&m, 0, 2134, &p), UP_ERANGE);
	m.form = UP_FORM_FULL;
	assert_int_equal(up_cparity_parse(&m, 64, 2134, &p), UP_EINVAL);
}

static void
test_block_size(void **state)
{
	/* A LoRa DR0 frame: 47 bytes of block, 45 with a CRC-16. */
	assert_int_equal(up_cblock_size(100 * 1024, 51, 0), 47);
	assert_int_equal(up_cblock_size(100 * 1024, 51, UP_CF_CRC), 45);
	assert_int_equal(up_cblock_size(100 * 1024, 51, UP_CF_CRC |
	    UP_CF_MIC), 41);
	/* An ATT payload before the MTU exchange. */
	assert_int_equal(up_cblock_size(100 * 1024, 20, 0), 16);
	/* 65,536 blocks of 47 still fit the 2-byte index ... */
	assert_int_equal(up_cblock_size(65536u * 47, 51, 0), 47);
	/* ... one byte more needs the 3-byte one. */
	assert_int_equal(up_cblock_size(65536u * 47 + 1, 51, 0), 46);
	/* Past 2^24 blocks: nothing. */
	assert_int_equal(up_cblock_size(0xffffffffu, 20, 0), 0);
	assert_int_equal(up_cblock_size(1000, 4, 0), 0);
	assert_int_equal(up_cblock_size(0, 51, 0), 0);
	/* A big link: the frame maximum bounds it. */
	assert_int_equal(up_cblock_size(1000000, 9000, 0),
	    UP_FRAME_MAX - UP_C_DATA_HDR);
}

static void
test_decode_errors(void **state)
{
	struct up_msg	 m;
	uint8_t		 f[UP_FRAME_MAX + 1];

	assert_int_equal(up_cdecode(NULL, 1, &m), UP_EINVAL);
	assert_int_equal(up_cdecode(f, 0, &m), UP_ESHORT);
	f[0] = UP_PROTO_VERSION;
	assert_int_equal(up_cdecode(f, 14, &m), UP_EVERSION);
	memset(f, 0, sizeof(f));
	f[0] = UP_C_MARK | UP_T_DISCOVER;
	assert_int_equal(up_cdecode(f, sizeof(f), &m), UP_ELEN);
	assert_int_equal(up_cdecode(f, 5, &m), UP_OK);
	assert_int_equal(up_cdecode(f, 4, &m), UP_ESHORT);
	assert_int_equal(up_cdecode(f, 6, &m), UP_ELEN);
	assert_int_equal(up_decode_any(f, 6, &m), UP_ELEN);
}

/* ------------------------------------------------------------------ */
/* Segmentation                                                        */

static uint8_t	 msg[700], rxbuf[UP_SEG_MSG_MAX];
static uint8_t	 segs[UP_SEG_NMAX][UP_FRAME_MAX];
static int	 seglen[UP_SEG_NMAX];

/* A compact OFFER-like message of `len' bytes with its CRC-16. */
static size_t
make_msg(size_t len)
{
	uint16_t	 crc;
	size_t		 i;

	msg[0] = UP_C_MARK | UP_CF_CRC | UP_T_OFFER;
	for (i = 1; i < len - 2; i++)
		msg[i] = (uint8_t)(i * 7 + 1);
	crc = up_crc16_ccitt(UP_CRC16_INIT, msg, len - 2);
	msg[len - 2] = (uint8_t)crc;
	msg[len - 1] = (uint8_t)(crc >> 8);
	return (len);
}

static int
cut(size_t len, size_t mtu, uint8_t mtag, uint8_t cf)
{
	int		 n, i;

	n = up_seg_count(len, mtu, cf);
	assert_true(n >= 2);
	for (i = 0; i < n; i++) {
		seglen[i] = up_seg_build(msg, len, mtu, cf, mtag, (uint8_t)i,
		    segs[i], sizeof(segs[i]));
		assert_true(seglen[i] > 0 && (size_t)seglen[i] <= mtu);
	}
	return (n);
}

static int
put(struct up_seg_rx *rx, int i)
{
	struct up_msg	 m;

	assert_int_equal(up_cdecode(segs[i], (size_t)seglen[i], &m), UP_OK);
	return (up_seg_rx_put(rx, &m.u.seg));
}

static void
test_seg_count(void **state)
{
	assert_int_equal(up_seg_count(51, 51, 0), 1);
	assert_int_equal(up_seg_count(52, 51, 0), 2);
	assert_int_equal(up_seg_count(94, 51, 0), 2);
	assert_int_equal(up_seg_count(95, 51, 0), 3);
	/* With a CRC-16 per segment: 45 bytes of chunk. */
	assert_int_equal(up_seg_count(91, 51, UP_CF_CRC), 3);
	/* 64 segments of 16 at most. */
	assert_int_equal(up_seg_count(1024, 20, 0), 64);
	assert_int_equal(up_seg_count(1025, 20, 0), UP_ELEN);
	assert_int_equal(up_seg_count(100, 19, 0), UP_ELEN);
	assert_int_equal(up_seg_count(100, 51, UP_CF_MIC), UP_ELEN);
	assert_int_equal(up_seg_build(msg, 40, 51, 0, 1, 0, segs[0], 64),
	    UP_EINVAL);
}

static void
test_seg_orders(void **state)
{
	struct up_seg_rx rx;
	size_t		 len = make_msg(645);
	int		 n, i, r;

	up_seg_rx_init(&rx, rxbuf, sizeof(rxbuf));
	n = cut(len, 20, 5, UP_CF_CRC);
	assert_int_equal(n, 47);	/* 645 bytes, 14 per segment */
	/* Lose every third segment, then get them from a repeat. */
	for (i = 0; i < n; i++)
		if (i % 3 != 1)
			assert_int_equal(put(&rx, i), 0);
	/* The last one missing is 46 (46 % 3 == 1), the last segment. */
	for (i = 0; i < n; i++) {
		r = put(&rx, i);
		if (i < n - 1)
			assert_int_equal(r, 0);
		else {
			assert_int_equal(r, (int)len);
			assert_memory_equal(rxbuf, msg, len);
		}
	}
	/* A repeat of a message acted on is ignored. */
	for (i = 0; i < n; i++)
		assert_int_equal(put(&rx, i), 0);
	assert_int_equal(rx.completed, 1);

	/* The next message (another tag), last segment first. */
	len = make_msg(300);
	n = cut(len, 51, 6, 0);
	for (i = n - 1; i >= 0; i--) {
		r = put(&rx, i);
		assert_int_equal(r, i == 0 ? (int)len : 0);
	}
	assert_memory_equal(rxbuf, msg, len);
	assert_int_equal(rx.completed, 2);
}

static void
test_seg_newest_wins(void **state)
{
	struct up_seg_rx rx;
	size_t		 len;
	int		 n, i;

	up_seg_rx_init(&rx, rxbuf, sizeof(rxbuf));
	len = make_msg(200);
	n = cut(len, 51, 1, 0);
	assert_int_equal(put(&rx, 0), 0);
	assert_int_equal(put(&rx, 1), 0);
	/* Another message starts: the first one is discarded. */
	len = make_msg(150);
	n = cut(len, 51, 2, 0);
	assert_int_equal(put(&rx, 0), 0);
	assert_int_equal(rx.discarded, 1);
	for (i = 1; i < n; i++)
		assert_int_equal(put(&rx, i), i == n - 1 ? (int)len : 0);
	assert_memory_equal(rxbuf, msg, len);
}

static void
test_seg_contradiction(void **state)
{
	struct up_seg_rx rx;
	struct up_seg	 s;
	uint8_t		 chunk[47];
	size_t		 len = make_msg(120);
	int		 n;

	up_seg_rx_init(&rx, rxbuf, sizeof(rxbuf));
	n = cut(len, 51, 9, 0);
	assert_int_equal(n, 3);
	/* A last segment longer than c after c is known: start again. */
	assert_int_equal(put(&rx, 0), 0);
	memset(chunk, 0xee, sizeof(chunk));
	s.mtag = 9;
	s.n = 3;
	s.i = 2;
	s.len = 47;		/* == c is fine for the last */
	s.chunk = chunk;
	assert_int_equal(up_seg_rx_put(&rx, &s), 0);
	/* ... but a middle one of another length is a contradiction. */
	s.i = 1;
	s.len = 40;
	assert_int_equal(up_seg_rx_put(&rx, &s), 0);
	assert_int_equal(rx.discarded, 1);
	assert_int_equal(rx.ngot, 1);
	assert_int_equal(rx.c, 40);
	/* The genuine segments then win back, and the garbage mix that
	 * completes is caught by the message's CRC-16. */
	up_seg_rx_reset(&rx);
	s.i = 2;
	s.len = 26;
	assert_int_equal(up_seg_rx_put(&rx, &s), 0);	/* parked */
	assert_int_equal(put(&rx, 0), 0);
	assert_int_equal(put(&rx, 1), UP_EBADCRC);
	/* A last segment parked longer than a later c: start again. */
	up_seg_rx_reset(&rx);
	s.i = 2;
	s.len = 47;
	assert_int_equal(up_seg_rx_put(&rx, &s), 0);
	s.i = 0;
	s.len = 30;
	assert_int_equal(up_seg_rx_put(&rx, &s), 0);
	assert_int_equal(rx.ngot, 1);
	assert_false(rx.stashed);
	(void)n;
}

static void
test_seg_limits(void **state)
{
	struct up_seg_rx rx;
	struct up_seg	 s;
	uint8_t		 small[100], chunk[47];
	size_t		 len;

	/* A message larger than the buffer is dropped whole. */
	up_seg_rx_init(&rx, small, sizeof(small));
	len = make_msg(200);
	(void)cut(len, 51, 3, 0);
	assert_int_equal(put(&rx, 0), UP_ELEN);
	assert_false(rx.active);
	/* ... also when the last segment came first. */
	assert_int_equal(put(&rx, 4), 0);
	assert_int_equal(put(&rx, 0), UP_ELEN);

	/* A complete message that is not a compact frame with C. */
	up_seg_rx_init(&rx, rxbuf, sizeof(rxbuf));
	memset(chunk, 0x11, sizeof(chunk));
	s.mtag = 1;
	s.n = 2;
	s.i = 0;
	s.len = 47;
	s.chunk = chunk;
	assert_int_equal(up_seg_rx_put(&rx, &s), 0);
	s.i = 1;
	s.len = 3;
	assert_int_equal(up_seg_rx_put(&rx, &s), UP_EBADCRC);
	/* A SEG inside a SEG. */
	chunk[0] = UP_C_MARK | UP_CF_CRC | UP_T_SEG;
	s.mtag = 2;
	s.i = 0;
	s.len = 47;
	assert_int_equal(up_seg_rx_put(&rx, &s), 0);
	s.i = 1;
	s.len = 3;
	assert_int_equal(up_seg_rx_put(&rx, &s), UP_ETYPE);
	/* Bad arguments. */
	s.n = 1;
	assert_int_equal(up_seg_rx_put(&rx, &s), UP_EINVAL);
	s.n = UP_SEG_NMAX + 1;
	assert_int_equal(up_seg_rx_put(&rx, &s), UP_EINVAL);
	s.n = 2;
	s.i = 2;
	assert_int_equal(up_seg_rx_put(&rx, &s), UP_EINVAL);
}

/* §11.4: tags in turn, never one in use or recently released. */
static void
test_ctags(void **state)
{
	struct up_ctags	 t;
	int		 a, b, c, i;

	assert_int_equal(up_ctags_init(&t, 10, 12, 11), UP_OK);
	assert_int_equal(a = up_ctags_take(&t, 100), 11);
	assert_int_equal(b = up_ctags_take(&t, 100), 12);
	assert_int_equal(c = up_ctags_take(&t, 100), 10);
	/* All three in use. */
	assert_int_equal(up_ctags_take(&t, 100), UP_ENOSPC);
	/* Released: free only after the session's staleness time. */
	up_ctags_release(&t, (uint8_t)b, 100, 300);
	assert_int_equal(up_ctags_take(&t, 399), UP_ENOSPC);
	assert_int_equal(up_ctags_take(&t, 400), 12);
	/* In turn: the next one after 12 is 10, then 11. */
	up_ctags_release(&t, (uint8_t)a, 400, 0);
	up_ctags_release(&t, (uint8_t)c, 400, 0);
	assert_int_equal(up_ctags_take(&t, 400), 10);
	assert_int_equal(up_ctags_take(&t, 400), 11);
	/* A restarted gateway holds the tags of its sessions again. */
	assert_int_equal(up_ctags_init(&t, 0, 255, 7), UP_OK);
	up_ctags_hold(&t, 7);
	assert_int_equal(up_ctags_take(&t, 0), 8);
	for (i = 0; i < 254; i++)
		assert_true(up_ctags_take(&t, 0) >= 0);
	assert_int_equal(up_ctags_take(&t, 0), UP_ENOSPC);
	assert_int_equal(up_ctags_init(&t, 5, 4, 0), UP_EINVAL);
	/* A next outside the range starts at lo. */
	assert_int_equal(up_ctags_init(&t, 5, 9, 200), UP_OK);
	assert_int_equal(up_ctags_take(&t, 0), 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint),
		cmocka_unit_test(test_control_roundtrip),
		cmocka_unit_test(test_trailers),
		cmocka_unit_test(test_offer_announce),
		cmocka_unit_test(test_status_forms),
		cmocka_unit_test(test_data_parity),
		cmocka_unit_test(test_parity_code),
		cmocka_unit_test(test_block_size),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_seg_count),
		cmocka_unit_test(test_seg_orders),
		cmocka_unit_test(test_seg_newest_wins),
		cmocka_unit_test(test_seg_contradiction),
		cmocka_unit_test(test_seg_limits),
		cmocka_unit_test(test_ctags),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
