/*
 * test_up_frame.c: the UP frame codec (docs/up-protocol.md §3, §4, §6,
 * §9): round trips of every message type, and rejection of every kind of
 * malformed frame, by the decoder and by the encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "up.h"

#define SESS		0x5eed0001u
#define NODE		0x0102030405060708ull

static uint8_t	 bits_a[] = { 0x05, 0x02 };
static uint8_t	 block_a[] = "a block of test data";

/* ------------------------------------------------------------------ */
/* Sample messages: one or more of every type                          */

static void
mk_announce(struct up_msg *m)
{
	struct up_announce *a = &m->u.announce;

	memset(m, 0, sizeof(*m));
	m->type = UP_T_ANNOUNCE;
	a->node_id = NODE;
	strcpy(a->hw, "stm32wl");
	a->max_frame = 1472;
	a->free_kib = 512;
	a->battery = 87;
	a->rssi_dbm = -72;
	a->snr_db = -3;
	a->session = SESS;
	a->state = UP_NS_RECEIVING;
	a->ncomp = 2;
	strcpy(a->comp[0].name, "app");
	strcpy(a->comp[0].version, "1.0.0");
	strcpy(a->comp[1].name, "boot");
	strcpy(a->comp[1].version, "");
}

static void
mk_offer(struct up_msg *m)
{
	struct up_offer	*o = &m->u.offer;
	int		 i;

	memset(m, 0, sizeof(*m));
	m->type = UP_T_OFFER;
	m->session = SESS;
	strcpy(o->component, "app");
	o->nhw = 2;
	strcpy(o->hw[0], "stm32wl");
	strcpy(o->hw[1], "esp32");
	strcpy(o->from_version, "1.0.0");
	strcpy(o->to_version, "1.1.0");
	o->kind = UP_KIND_DELTA;
	o->delta_format = UP_DELTA_VCDIFF;
	o->size = 70000;
	for (i = 0; i < 32; i++) {
		o->sha256[i] = (uint8_t)i;
		o->image_sha256[i] = (uint8_t)(0xff - i);
	}
	o->image_size = 300000;
	o->ndeps = 1;
	strcpy(o->deps[0].component, "boot");
	strcpy(o->deps[0].min_version, "2.0");
	o->sig_alg = UP_SIG_ED25519;
	o->sig_len = 64;
	for (i = 0; i < 64; i++)
		o->sig[i] = (uint8_t)(0xa0 + i);
	o->block_size = 1400;
	o->nblocks = up_nblocks(o->size, o->block_size);
	o->deadline_s = 3600;
}

/* Every count and string at its maximum. */
static void
mk_offer_max(struct up_msg *m)
{
	struct up_offer	*o = &m->u.offer;
	int		 i;

	mk_offer(m);
	memset(o->component, 'c', UP_NAME_MAX);
	o->component[UP_NAME_MAX] = '\0';
	o->nhw = UP_MAX_HW;
	for (i = 0; i < UP_MAX_HW; i++) {
		memset(o->hw[i], 'h', UP_NAME_MAX);
		o->hw[i][UP_NAME_MAX] = '\0';
		o->hw[i][0] = (char)('0' + i);
	}
	memset(o->from_version, 'f', UP_VER_MAX);
	o->from_version[UP_VER_MAX] = '\0';
	memset(o->to_version, 't', UP_VER_MAX);
	o->to_version[UP_VER_MAX] = '\0';
	o->ndeps = UP_MAX_DEPS;
	for (i = 0; i < UP_MAX_DEPS; i++) {
		memset(o->deps[i].component, 'd', UP_NAME_MAX);
		o->deps[i].component[UP_NAME_MAX] = '\0';
		memset(o->deps[i].min_version, 'v', UP_VER_MAX);
		o->deps[i].min_version[UP_VER_MAX] = '\0';
	}
	/* Form 2 of the descriptor (§6): the longer one. */
	o->security_version = 0xfedcba98u;
	o->desc_flags = UP_DESC_DOWNGRADE;
	o->sig_len = UP_SIG_MAX;
}

static void
mk_announce_max(struct up_msg *m)
{
	struct up_announce *a = &m->u.announce;
	int		 i;

	mk_announce(m);
	memset(a->hw, 'h', UP_NAME_MAX);
	a->hw[UP_NAME_MAX] = '\0';
	a->ncomp = UP_MAX_COMPONENTS;
	for (i = 0; i < UP_MAX_COMPONENTS; i++) {
		memset(a->comp[i].name, 'n', UP_NAME_MAX);
		a->comp[i].name[UP_NAME_MAX] = '\0';
		a->comp[i].name[0] = (char)('a' + i);
		memset(a->comp[i].version, 'v', UP_VER_MAX);
		a->comp[i].version[UP_VER_MAX] = '\0';
	}
}

/* Builds sample number i, 0 .. NSAMPLES - 1. */
#define NSAMPLES	20
static void
mk_sample(int i, struct up_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->session = SESS;
	switch (i) {
	case 0:
		mk_announce(m);
		break;
	case 1:
		mk_announce_max(m);
		break;
	case 2:
		m->type = UP_T_DISCOVER;
		m->session = 0;
		m->u.discover.window_ms = 1000;
		break;
	case 3:
		mk_offer(m);
		break;
	case 4:
		mk_offer_max(m);
		break;
	case 5:
		m->type = UP_T_ACCEPT;
		m->u.accept.node_id = NODE;
		m->u.accept.code = UP_R_INITIAL;
		m->u.accept.st.held = 5;
		m->u.accept.st.first_missing = 2;
		m->u.accept.st.nbits = 10;
		m->u.accept.st.bits = bits_a;
		break;
	case 6:
		m->type = UP_T_ACCEPT;
		m->u.accept.node_id = NODE;
		m->u.accept.code = UP_R_NO_SPACE;
		break;
	case 7:
		m->type = UP_T_DATA;
		m->flags = UP_F_LAST | UP_F_REPAIR | 0x80;
		m->u.data.index = 0xfffffffeu;
		m->u.data.len = sizeof(block_a);
		m->u.data.data = block_a;
		break;
	case 8:
		m->type = UP_T_PARITY;
		m->flags = UP_F_REPAIR;
		m->u.data.index = 1;
		m->u.data.len = 1;
		m->u.data.data = block_a;
		break;
	case 9:
		m->type = UP_T_STATUS_REQ;
		m->u.target.window_ms = 500;
		break;
	case 10:
		m->type = UP_T_STATUS;
		m->u.status.node_id = NODE;
		m->u.status.state = UP_NS_RECEIVING;
		m->u.status.st.held = 1;
		m->u.status.st.first_missing = 1;
		m->u.status.st.nbits = 2;
		m->u.status.st.bits = bits_a;
		break;
	case 11:
		m->type = UP_T_STATUS;
		m->u.status.node_id = NODE;
		m->u.status.state = UP_NS_DOWNLOADED;
		m->u.status.st.held = 3;
		m->u.status.st.first_missing = 3;
		break;
	case 12:
		m->type = UP_T_VERIFY;
		m->u.target.node_id = NODE;
		break;
	case 13:
		m->type = UP_T_ACTIVATE;
		m->u.activate.delay_ms = 2000;
		break;
	case 14:
		m->type = UP_T_RESULT;
		m->u.result.node_id = NODE;
		m->u.result.state = UP_NS_UPDATED;
		m->u.result.result = UP_R_SUCCESS;
		strcpy(m->u.result.component, "app");
		strcpy(m->u.result.version, "1.1.0");
		break;
	case 15:
		m->type = UP_T_RESULT_ACK;
		m->u.target.node_id = NODE;
		break;
	case 16:
		m->type = UP_T_ABORT;
		m->u.target.reason = UP_R_ABORTED;
		break;
	case 17:
		m->type = UP_T_RESULT;
		m->u.result.node_id = UINT64_MAX;
		m->u.result.state = UP_NS_FAILED;
		m->u.result.result = 200;
		break;
	case 18:
		m->type = UP_T_XOR;
		m->flags = UP_F_REPAIR;
		m->u.xor_.n = 1;
		m->u.xor_.index[0] = 7;
		m->u.xor_.len = sizeof(block_a);
		m->u.xor_.data = block_a;
		break;
	case 19:
		/* Gaps of 1, 2 and 3 bytes (§4.15). */
		m->type = UP_T_XOR;
		m->u.xor_.n = 4;
		m->u.xor_.index[0] = 0x01020304;
		m->u.xor_.index[1] = 0x01020305;
		m->u.xor_.index[2] = 0x01020305 + 200;
		m->u.xor_.index[3] = 0x01020305 + 200 + (1u << 21);
		m->u.xor_.len = 3;
		m->u.xor_.data = block_a;
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Field-by-field comparison                                           */

static void
assert_body_equal(const struct up_status_body *a,
    const struct up_status_body *b)
{
	assert_int_equal(a->held, b->held);
	assert_int_equal(a->first_missing, b->first_missing);
	assert_int_equal(a->nbits, b->nbits);
	if (a->nbits > 0)
		assert_memory_equal(a->bits, b->bits,
		    up_bitmap_bytes(a->nbits));
}

static void
assert_msg_equal(const struct up_msg *a, const struct up_msg *b)
{
	const struct up_offer *x, *y;
	int		 i;

	assert_int_equal(a->type, b->type);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->session, b->session);
	switch (a->type) {
	case UP_T_ANNOUNCE:
		assert_true(a->u.announce.node_id == b->u.announce.node_id);
		assert_string_equal(a->u.announce.hw, b->u.announce.hw);
		assert_int_equal(a->u.announce.max_frame,
		    b->u.announce.max_frame);
		assert_int_equal(a->u.announce.free_kib,
		    b->u.announce.free_kib);
		assert_int_equal(a->u.announce.battery, b->u.announce.battery);
		assert_int_equal(a->u.announce.rssi_dbm,
		    b->u.announce.rssi_dbm);
		assert_int_equal(a->u.announce.snr_db, b->u.announce.snr_db);
		assert_int_equal(a->u.announce.session, b->u.announce.session);
		assert_int_equal(a->u.announce.state, b->u.announce.state);
		assert_int_equal(a->u.announce.ncomp, b->u.announce.ncomp);
		for (i = 0; i < a->u.announce.ncomp; i++) {
			assert_string_equal(a->u.announce.comp[i].name,
			    b->u.announce.comp[i].name);
			assert_string_equal(a->u.announce.comp[i].version,
			    b->u.announce.comp[i].version);
		}
		break;
	case UP_T_DISCOVER:
		assert_int_equal(a->u.discover.window_ms,
		    b->u.discover.window_ms);
		break;
	case UP_T_OFFER:
		x = &a->u.offer;
		y = &b->u.offer;
		assert_string_equal(x->component, y->component);
		assert_int_equal(x->nhw, y->nhw);
		for (i = 0; i < x->nhw; i++)
			assert_string_equal(x->hw[i], y->hw[i]);
		assert_string_equal(x->from_version, y->from_version);
		assert_string_equal(x->to_version, y->to_version);
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->delta_format, y->delta_format);
		assert_int_equal(x->size, y->size);
		assert_memory_equal(x->sha256, y->sha256, 32);
		assert_int_equal(x->image_size, y->image_size);
		assert_memory_equal(x->image_sha256, y->image_sha256, 32);
		assert_int_equal(x->ndeps, y->ndeps);
		for (i = 0; i < x->ndeps; i++) {
			assert_string_equal(x->deps[i].component,
			    y->deps[i].component);
			assert_string_equal(x->deps[i].min_version,
			    y->deps[i].min_version);
		}
		assert_int_equal(x->sig_alg, y->sig_alg);
		assert_int_equal(x->sig_len, y->sig_len);
		if (x->sig_len > 0)
			assert_memory_equal(x->sig, y->sig, x->sig_len);
		assert_int_equal(x->block_size, y->block_size);
		assert_int_equal(x->nblocks, y->nblocks);
		assert_int_equal(x->deadline_s, y->deadline_s);
		break;
	case UP_T_ACCEPT:
		assert_true(a->u.accept.node_id == b->u.accept.node_id);
		assert_int_equal(a->u.accept.code, b->u.accept.code);
		assert_body_equal(&a->u.accept.st, &b->u.accept.st);
		break;
	case UP_T_DATA:
	case UP_T_PARITY:
		assert_int_equal(a->u.data.index, b->u.data.index);
		assert_int_equal(a->u.data.len, b->u.data.len);
		assert_memory_equal(a->u.data.data, b->u.data.data,
		    a->u.data.len);
		break;
	case UP_T_XOR:
		assert_int_equal(a->u.xor_.n, b->u.xor_.n);
		for (i = 0; i < a->u.xor_.n; i++)
			assert_int_equal(a->u.xor_.index[i],
			    b->u.xor_.index[i]);
		assert_int_equal(a->u.xor_.len, b->u.xor_.len);
		assert_memory_equal(a->u.xor_.data, b->u.xor_.data,
		    a->u.xor_.len);
		break;
	case UP_T_STATUS_REQ:
		assert_true(a->u.target.node_id == b->u.target.node_id);
		assert_int_equal(a->u.target.window_ms, b->u.target.window_ms);
		break;
	case UP_T_VERIFY:
	case UP_T_RESULT_ACK:
		assert_true(a->u.target.node_id == b->u.target.node_id);
		break;
	case UP_T_ABORT:
		assert_true(a->u.target.node_id == b->u.target.node_id);
		assert_int_equal(a->u.target.reason, b->u.target.reason);
		break;
	case UP_T_STATUS:
		assert_true(a->u.status.node_id == b->u.status.node_id);
		assert_int_equal(a->u.status.state, b->u.status.state);
		assert_body_equal(&a->u.status.st, &b->u.status.st);
		break;
	case UP_T_ACTIVATE:
		assert_true(a->u.activate.node_id == b->u.activate.node_id);
		assert_int_equal(a->u.activate.delay_ms,
		    b->u.activate.delay_ms);
		break;
	case UP_T_RESULT:
		assert_true(a->u.result.node_id == b->u.result.node_id);
		assert_int_equal(a->u.result.state, b->u.result.state);
		assert_int_equal(a->u.result.result, b->u.result.result);
		assert_string_equal(a->u.result.component,
		    b->u.result.component);
		assert_string_equal(a->u.result.version, b->u.result.version);
		break;
	default:
		fail_msg("unexpected type %d", a->type);
	}
}

/* Recomputes the length field and CRC after a test edited a payload. */
static size_t
reseal(uint8_t *f, size_t n)
{
	uint32_t	 crc;

	f[8] = (uint8_t)n;
	f[9] = (uint8_t)(n >> 8);
	crc = up_crc32(0, f, UP_HDR_LEN + n);
	f[UP_HDR_LEN + n] = (uint8_t)crc;
	f[UP_HDR_LEN + n + 1] = (uint8_t)(crc >> 8);
	f[UP_HDR_LEN + n + 2] = (uint8_t)(crc >> 16);
	f[UP_HDR_LEN + n + 3] = (uint8_t)(crc >> 24);
	return (UP_OVERHEAD + n);
}

/* A frame around a payload written by the test itself. */
static size_t
mkframe(uint8_t *f, uint8_t type, uint32_t session, const uint8_t *pl,
    size_t n)
{
	f[0] = UP_PROTO_VERSION;
	f[1] = type;
	f[2] = 0;
	f[3] = 0;
	f[4] = (uint8_t)session;
	f[5] = (uint8_t)(session >> 8);
	f[6] = (uint8_t)(session >> 16);
	f[7] = (uint8_t)(session >> 24);
	memcpy(f + UP_HDR_LEN, pl, n);
	return (reseal(f, n));
}

/* ------------------------------------------------------------------ */
/* Round trips                                                         */

static void
test_roundtrip_all(void **state)
{
	struct up_msg	 m, d, d2;
	uint8_t		 f[UP_FRAME_MAX], f2[UP_FRAME_MAX];
	int		 i, n, n2, seen[16];

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < NSAMPLES; i++) {
		mk_sample(i, &m);
		n = up_encode(&m, f, sizeof(f));
		assert_true(n >= UP_OVERHEAD);
		assert_int_equal(f[0], UP_PROTO_VERSION);
		assert_int_equal(f[1], m.type);
		assert_int_equal(f[8] | f[9] << 8, n - UP_OVERHEAD);
		assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
		assert_msg_equal(&m, &d);
		n2 = up_encode(&d, f2, sizeof(f2));
		assert_int_equal(n2, n);
		assert_memory_equal(f, f2, (size_t)n);
		assert_int_equal(up_decode(f2, (size_t)n2, &d2), UP_OK);
		assert_msg_equal(&d, &d2);
		seen[m.type] = 1;
	}
	for (i = UP_T_ANNOUNCE; i <= UP_T_XOR; i++)
		assert_true(seen[i]);
}

static void
test_roundtrip_data_borrowed(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[64];
	int		 n;

	mk_sample(7, &m);
	n = up_encode(&m, f, sizeof(f));
	assert_int_equal(n, UP_DATA_OVERHEAD + (int)sizeof(block_a));
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	/* The block is borrowed from the frame, not copied. */
	assert_ptr_equal(d.u.data.data, f + UP_DATA_OFF);
	/* Unknown flag bits are kept (§3.4). */
	assert_int_equal(d.flags, UP_F_LAST | UP_F_REPAIR | 0x80);
}

static void
test_sizes(void **state)
{
	struct up_msg	 m;
	uint8_t		 f[UP_FRAME_MAX], desc[1024];
	int		 n;

	/* Fixed-size payloads, §4. */
	mk_sample(2, &m);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 2);
	mk_sample(9, &m);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 10);
	mk_sample(12, &m);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 8);
	mk_sample(13, &m);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 12);
	mk_sample(15, &m);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 8);
	mk_sample(16, &m);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 9);
	mk_sample(11, &m);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 19);

	/* The largest descriptor is 565 bytes (§6). */
	mk_offer_max(&m);
	n = up_desc_encode(&m.u.offer, desc, sizeof(desc));
	assert_int_equal(n, 565);
	assert_int_equal(n, UP_DESC_MAX);
	assert_int_equal(up_desc_encode(&m.u.offer, desc, UP_DESC_MAX), n);
	assert_memory_equal(desc, "UPD2", 4);
	n = up_encode(&m, f, sizeof(f));
	/* Descriptor without magic + sig 2 + 64 + 10. */
	assert_int_equal(n, UP_OVERHEAD + 561 + 2 + 64 + 10);
	/* Form 1, without the two anti-rollback fields, is 5 bytes less. */
	m.u.offer.security_version = 0;
	m.u.offer.desc_flags = 0;
	n = up_desc_encode(&m.u.offer, desc, sizeof(desc));
	assert_int_equal(n, 560);
	assert_memory_equal(desc, "UPD1", 4);
}

static void
test_desc(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX], a[700], b[700];
	int		 n, na, nb;

	mk_offer(&m);
	n = up_encode(&m, f, sizeof(f));
	assert_true(n > 0);
	na = up_desc_encode(&m.u.offer, a, sizeof(a));
	assert_true(na > 4);
	/*
	 * Form 1 (security_version and desc_flags 0): the OFFER payload up
	 * to the dependencies behind "UPD1", the 5 bytes of those two
	 * fields left out.
	 */
	assert_memory_equal(a, "UPD1", 4);
	assert_memory_equal(a + 4, f + UP_HDR_LEN, (size_t)na - 4);
	assert_memory_equal(f + UP_HDR_LEN + na - 4, "\0\0\0\0\0", 5);

	/* Session fields and the signature are not part of it. */
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	d.u.offer.block_size = 512;
	d.u.offer.nblocks = up_nblocks(d.u.offer.size, 512);
	d.u.offer.deadline_s = 1;
	d.u.offer.sig[0] ^= 0xff;
	d.u.offer.sig_len = 10;
	nb = up_desc_encode(&d.u.offer, b, sizeof(b));
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, (size_t)na);

	/* Every signed field is. */
	d.u.offer.size++;
	nb = up_desc_encode(&d.u.offer, b, sizeof(b));
	assert_int_equal(na, nb);
	assert_memory_not_equal(a, b, (size_t)na);

	/* Too small a buffer, at every length. */
	for (nb = 0; nb < na; nb++)
		assert_int_equal(up_desc_encode(&m.u.offer, b, (size_t)nb),
		    UP_ENOSPC);
	m.u.offer.component[0] = '\0';
	assert_int_equal(up_desc_encode(&m.u.offer, b, sizeof(b)),
	    UP_ERANGE);
}

/*
 * Form 2 of the descriptor (§6): "UPD2" and the OFFER payload through
 * desc_flags.  Either anti-rollback field alone selects it, and both are
 * signed: a changed security version or downgrade flag is another
 * descriptor, and never the form-1 bytes of the same package.
 */
static void
test_desc_form2(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX], a[700], b[700], c[700];
	int		 n, na, nb, nc;

	mk_offer(&m);
	nc = up_desc_encode(&m.u.offer, c, sizeof(c));
	m.u.offer.security_version = 7;
	n = up_encode(&m, f, sizeof(f));
	assert_true(n > 0);
	na = up_desc_encode(&m.u.offer, a, sizeof(a));
	assert_int_equal(na, nc + 5);
	assert_memory_equal(a, "UPD2", 4);
	assert_memory_equal(a + 4, f + UP_HDR_LEN, (size_t)na - 4);
	assert_memory_equal(a + 4, c + 4, (size_t)nc - 4);
	assert_memory_equal(a + na - 5, "\x07\0\0\0\0", 5);

	/* Round trip through the codec keeps both fields. */
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	assert_int_equal(d.u.offer.security_version, 7);
	assert_int_equal(d.u.offer.desc_flags, 0);

	/* The downgrade flag alone: form 2 as well. */
	m.u.offer.security_version = 0;
	m.u.offer.desc_flags = UP_DESC_DOWNGRADE;
	nb = up_desc_encode(&m.u.offer, b, sizeof(b));
	assert_int_equal(nb, na);
	assert_memory_equal(b, "UPD2", 4);
	assert_int_equal(b[nb - 1], UP_DESC_DOWNGRADE);
	assert_memory_not_equal(a, b, (size_t)na);

	/* Unknown flag bits pass the codec; the node declines them. */
	m.u.offer.desc_flags = 0x80 | UP_DESC_DOWNGRADE;
	n = up_encode(&m, f, sizeof(f));
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	assert_int_equal(d.u.offer.desc_flags, 0x81);
}

static void
test_seal_data(void **state)
{
	uint8_t		 f[UP_FRAME_MAX + 8];
	struct up_msg	 d;
	uint16_t	 max = UP_FRAME_MAX - UP_DATA_OVERHEAD;
	int		 n;

	memset(f + UP_DATA_OFF, 0x5a, max);
	n = up_seal_data(f, sizeof(f), UP_T_DATA, UP_F_LAST, SESS, 41, max);
	assert_int_equal(n, UP_FRAME_MAX);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	assert_int_equal(d.type, UP_T_DATA);
	assert_int_equal(d.flags, UP_F_LAST);
	assert_int_equal(d.session, SESS);
	assert_int_equal(d.u.data.index, 41);
	assert_int_equal(d.u.data.len, max);
	assert_ptr_equal(d.u.data.data, f + UP_DATA_OFF);

	n = up_seal_data(f, sizeof(f), UP_T_PARITY, 0, SESS, 3, 1);
	assert_int_equal(n, UP_DATA_OVERHEAD + 1);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	assert_int_equal(d.type, UP_T_PARITY);

	assert_int_equal(up_seal_data(f, sizeof(f), UP_T_DATA, 0, SESS, 0,
	    max + 1), UP_ELEN);
	assert_int_equal(up_seal_data(f, sizeof(f), UP_T_DATA, 0, SESS, 0,
	    0), UP_ELEN);
	assert_int_equal(up_seal_data(f, sizeof(f), UP_T_STATUS, 0, SESS, 0,
	    1), UP_EINVAL);
	assert_int_equal(up_seal_data(f, sizeof(f), UP_T_DATA, 0, 0, 0, 1),
	    UP_ERANGE);
	assert_int_equal(up_seal_data(f, UP_DATA_OVERHEAD + 9, UP_T_DATA, 0,
	    SESS, 0, 10), UP_ENOSPC);
	assert_int_equal(up_seal_data(NULL, 100, UP_T_DATA, 0, SESS, 0, 10),
	    UP_EINVAL);

	/* up_encode of a block that already sits in the frame. */
	memset(&d, 0, sizeof(d));
	d.type = UP_T_DATA;
	d.session = SESS;
	d.u.data.len = 100;
	d.u.data.data = f + UP_DATA_OFF;
	memset(f + UP_DATA_OFF, 0x33, 100);
	n = up_encode(&d, f, sizeof(f));
	assert_int_equal(n, UP_DATA_OVERHEAD + 100);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	assert_int_equal(d.u.data.data[99], 0x33);
}

static void
test_peek(void **state)
{
	struct up_msg	 m;
	uint8_t		 f[UP_FRAME_MAX], type = 0;
	uint32_t	 session = 0;
	int		 n;

	mk_sample(14, &m);
	n = up_encode(&m, f, sizeof(f));
	assert_int_equal(up_peek(f, (size_t)n, &type, &session), UP_OK);
	assert_int_equal(type, UP_T_RESULT);
	assert_int_equal(session, SESS);
	/* No CRC check: a corrupted payload still peeks. */
	f[UP_HDR_LEN] ^= 1;
	assert_int_equal(up_peek(f, (size_t)n, NULL, NULL), UP_OK);
	assert_int_equal(up_peek(f, UP_HDR_LEN - 1, &type, &session),
	    UP_ESHORT);
	f[0] = 2;
	assert_int_equal(up_peek(f, (size_t)n, &type, &session),
	    UP_EVERSION);
}

static void
test_nblocks(void **state)
{
	assert_int_equal(up_nblocks(0, 1024), 0);
	assert_int_equal(up_nblocks(1, 1024), 1);
	assert_int_equal(up_nblocks(1024, 1024), 1);
	assert_int_equal(up_nblocks(1025, 1024), 2);
	assert_int_equal(up_nblocks(3000, 1024), 3);
	assert_int_equal(up_nblocks(700, 256), 3);
	assert_int_equal(up_nblocks(UINT32_MAX, 1), UINT32_MAX);
	assert_int_equal(up_nblocks(UINT32_MAX, 65535), 65537);
	assert_int_equal(up_nblocks(UINT32_MAX, 65534), 65539);
	assert_int_equal(up_nblocks(12345, 0), 0);
}

/* ------------------------------------------------------------------ */
/* Decoder rejections                                                  */

/* A frame cut at every length is short. */
static void
test_reject_truncated(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX];
	int		 i, n, k;

	for (i = 0; i < NSAMPLES; i++) {
		mk_sample(i, &m);
		n = up_encode(&m, f, sizeof(f));
		assert_true(n > 0);
		for (k = 0; k < n; k++)
			assert_int_equal(up_decode(f, (size_t)k, &d),
			    UP_ESHORT);
	}
}

/*
 * A payload cut at every length, with the length field and the CRC
 * made consistent again, is short too: only the field reader can tell.
 * DATA and PARITY are the exception (a shorter block is still a block).
 */
static void
test_reject_payload_truncated(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX];
	int		 i, n, k, e, list;

	for (i = 0; i < NSAMPLES; i++) {
		mk_sample(i, &m);
		n = up_encode(&m, f, sizeof(f)) - UP_OVERHEAD;
		assert_true(n >= 0);
		for (k = 0; k < n; k++) {
			mk_sample(i, &m);
			(void)up_encode(&m, f, sizeof(f));
			e = up_decode(f, reseal(f, (size_t)k), &d);
			if (m.type == UP_T_DATA || m.type == UP_T_PARITY) {
				if (k < 5)
					assert_int_not_equal(e, UP_OK);
				else
					assert_int_equal(e, UP_OK);
				continue;
			}
			if (m.type == UP_T_XOR) {
				/* Cut in n or the list; no data; less. */
				list = 1 + (int)up_xor_list_len(m.u.xor_.n,
				    m.u.xor_.index);
				if (k < list)
					assert_int_equal(e, UP_ESHORT);
				else if (k == list)
					assert_int_equal(e, UP_ELEN);
				else
					assert_int_equal(e, UP_OK);
				continue;
			}
			assert_int_equal(e, UP_ESHORT);
		}
	}
}

/* Any single flipped bit is caught (CRC-32 detects all of them). */
static void
test_reject_bitflip(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX];
	int		 i, n, bit;

	for (i = 0; i < NSAMPLES; i++) {
		mk_sample(i, &m);
		n = up_encode(&m, f, sizeof(f));
		for (bit = 0; bit < n * 8; bit++) {
			/* The reserved byte is outside of the rules... */
			if (bit / 8 == 3)
				continue;
			f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_not_equal(up_decode(f, (size_t)n, &d),
			    UP_OK);
			f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		/* ...but it is covered by the CRC. */
		f[3] = 0x80;
		assert_int_equal(up_decode(f, (size_t)n, &d), UP_EBADCRC);
		(void)reseal(f, (size_t)n - UP_OVERHEAD);
		assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	}
}

static void
test_reject_header(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX + 16];
	int		 n;

	mk_sample(14, &m);
	n = up_encode(&m, f, sizeof(f));

	/* Bad CRC. */
	f[n - 1] ^= 0x40;
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_EBADCRC);
	f[n - 1] ^= 0x40;
	f[UP_HDR_LEN + 12] ^= 0x01;
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_EBADCRC);
	f[UP_HDR_LEN + 12] ^= 0x01;
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);

	/* Bad version, with a good CRC and with a bad one. */
	f[0] = 0;
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_EVERSION);
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_EVERSION);
	f[0] = 2;
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_EVERSION);
	f[0] = UP_PROTO_VERSION;

	/* Unknown types, with a good CRC. */
	f[1] = 0;
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_ETYPE);
	f[1] = UP_T_XOR + 1;
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_ETYPE);
	f[1] = 0xff;
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_ETYPE);
	f[1] = UP_T_RESULT;
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);

	/* Trailing bytes after the CRC. */
	f[n] = 0;
	assert_int_equal(up_decode(f, (size_t)n + 1, &d), UP_ELEN);
	/* Length field larger than the frame. */
	f[8]++;
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_ESHORT);
	f[8]--;

	/* The wrong type for the payload: a length mismatch somewhere. */
	f[1] = UP_T_VERIFY;
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_ELEN);

	/* Larger than UP_FRAME_MAX, even if self-consistent. */
	{
		static uint8_t	 pl[UP_FRAME_MAX];

		n = (int)mkframe(f, UP_T_DATA, SESS, pl,
		    UP_FRAME_MAX - UP_OVERHEAD + 1);
		assert_int_equal(n, UP_FRAME_MAX + 1);
		assert_int_equal(up_decode(f, (size_t)n, &d), UP_ELEN);
		n = (int)mkframe(f, UP_T_DATA, SESS, pl,
		    UP_FRAME_MAX - UP_OVERHEAD);
		assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	}

	assert_int_equal(up_decode(NULL, 10, &d), UP_EINVAL);
	assert_int_equal(up_decode(f, 10, NULL), UP_EINVAL);
}

/* Payload offset of the `component' string of a RESULT. */
#define RESULT_COMP	10

static void
test_reject_strings(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX], pl[128];
	struct up_wr	 wr;
	size_t		 n;
	char		 name[UP_NAME_MAX + 2];

	/* A NUL inside a string, with a good CRC. */
	mk_sample(14, &m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	assert_int_equal(f[UP_HDR_LEN + RESULT_COMP], 3);
	f[UP_HDR_LEN + RESULT_COMP + 2] = '\0';
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ERANGE);

	/* UP_NAME_MAX bytes are fine, one more is not. */
	memset(name, 'x', sizeof(name));
	name[UP_NAME_MAX] = '\0';
	up_wr_init(&wr, pl, sizeof(pl));
	up_wr_u64(&wr, NODE);
	up_wr_u8(&wr, UP_NS_UPDATED);
	up_wr_u8(&wr, UP_R_SUCCESS);
	up_wr_str(&wr, name);
	up_wr_str(&wr, "1.0");
	assert_int_equal(up_wr_err(&wr), UP_OK);
	n = mkframe(f, UP_T_RESULT, SESS, pl, wr.off);
	assert_int_equal(up_decode(f, n, &d), UP_OK);
	assert_string_equal(d.u.result.component, name);

	name[UP_NAME_MAX] = 'x';
	name[UP_NAME_MAX + 1] = '\0';
	up_wr_init(&wr, pl, sizeof(pl));
	up_wr_u64(&wr, NODE);
	up_wr_u8(&wr, UP_NS_UPDATED);
	up_wr_u8(&wr, UP_R_SUCCESS);
	up_wr_str(&wr, name);
	up_wr_str(&wr, "1.0");
	n = mkframe(f, UP_T_RESULT, SESS, pl, wr.off);
	assert_int_equal(up_decode(f, n, &d), UP_ELEN);

	/* A version of UP_VER_MAX + 1 bytes. */
	memset(name, '9', sizeof(name));
	name[UP_VER_MAX + 1] = '\0';
	up_wr_init(&wr, pl, sizeof(pl));
	up_wr_u64(&wr, NODE);
	up_wr_u8(&wr, UP_NS_UPDATED);
	up_wr_u8(&wr, UP_R_SUCCESS);
	up_wr_str(&wr, "app");
	up_wr_str(&wr, name);
	n = mkframe(f, UP_T_RESULT, SESS, pl, wr.off);
	assert_int_equal(up_decode(f, n, &d), UP_ELEN);

	/* An empty component name in an ANNOUNCE. */
	mk_announce(&m);
	m.u.announce.ncomp = 1;
	strcpy(m.u.announce.comp[0].name, "x");
	n = (size_t)up_encode(&m, f, sizeof(f));
	assert_int_equal(up_decode(f, n, &d), UP_OK);
	/* Turn "x" (len 1) into "" (len 0) + one spare byte dropped. */
	assert_int_equal(f[n - UP_CRC_LEN - 8], 1);
	f[n - UP_CRC_LEN - 8] = 0;
	memmove(f + n - UP_CRC_LEN - 7, f + n - UP_CRC_LEN - 6, 6);
	n = reseal(f, n - UP_OVERHEAD - 1);
	assert_int_equal(up_decode(f, n, &d), UP_ERANGE);
}

/*
 * An OFFER payload written field by field, so that the test can break
 * every rule on its own.
 */
static size_t
raw_offer(uint8_t *pl, size_t cap, unsigned int nhw, unsigned int ndeps,
    unsigned int sig_len, uint32_t size, uint16_t block_size,
    uint32_t nblocks, const char *to_version)
{
	struct up_wr	 wr;
	uint8_t		 zero[UP_SIG_MAX + 8];
	unsigned int	 i;

	memset(zero, 0, sizeof(zero));
	up_wr_init(&wr, pl, cap);
	up_wr_str(&wr, "app");
	up_wr_u8(&wr, (uint8_t)nhw);
	for (i = 0; i < nhw; i++)
		up_wr_str(&wr, "hw");
	up_wr_str(&wr, "");
	up_wr_str(&wr, to_version);
	up_wr_u8(&wr, UP_KIND_FULL);
	up_wr_u8(&wr, UP_DELTA_NONE);
	up_wr_u32(&wr, size);
	up_wr_bytes(&wr, zero, 32);
	up_wr_u32(&wr, size);
	up_wr_bytes(&wr, zero, 32);
	up_wr_u8(&wr, (uint8_t)ndeps);
	for (i = 0; i < ndeps; i++) {
		up_wr_str(&wr, "dep");
		up_wr_str(&wr, "1");
	}
	up_wr_u32(&wr, 0);		/* security_version */
	up_wr_u8(&wr, 0);		/* desc_flags */
	up_wr_u8(&wr, UP_SIG_ED25519);
	up_wr_u8(&wr, (uint8_t)sig_len);
	up_wr_bytes(&wr, zero, sig_len < sizeof(zero) ? sig_len : 0);
	up_wr_u16(&wr, block_size);
	up_wr_u32(&wr, nblocks);
	up_wr_u32(&wr, 0);
	assert_int_equal(up_wr_err(&wr), UP_OK);
	return (wr.off);
}

static int
decode_offer(unsigned int nhw, unsigned int ndeps, unsigned int sig_len,
    uint32_t size, uint16_t block_size, uint32_t nblocks, const char *to)
{
	uint8_t		 pl[1200], f[UP_FRAME_MAX];
	struct up_msg	 d;
	size_t		 n;

	n = raw_offer(pl, sizeof(pl), nhw, ndeps, sig_len, size, block_size,
	    nblocks, to);
	n = mkframe(f, UP_T_OFFER, SESS, pl, n);
	return (up_decode(f, n, &d));
}

static void
test_reject_offer(void **state)
{
	/* Valid at the maxima. */
	assert_int_equal(decode_offer(UP_MAX_HW, UP_MAX_DEPS, UP_SIG_MAX,
	    3000, 1024, 3, "1.1"), UP_OK);
	assert_int_equal(decode_offer(0, 0, 0, 1, 1, 1, "1.1"), UP_OK);
	assert_int_equal(decode_offer(0, 0, 0, UINT32_MAX, 1, UINT32_MAX,
	    "1.1"), UP_OK);

	/* Too many hw, deps, signature bytes. */
	assert_int_equal(decode_offer(UP_MAX_HW + 1, 0, 0, 3000, 1024, 3,
	    "1.1"), UP_ELEN);
	assert_int_equal(decode_offer(255, 0, 0, 3000, 1024, 3, "1.1"),
	    UP_ELEN);
	assert_int_equal(decode_offer(0, UP_MAX_DEPS + 1, 0, 3000, 1024, 3,
	    "1.1"), UP_ELEN);
	assert_int_equal(decode_offer(0, 0, UP_SIG_MAX + 1, 3000, 1024, 3,
	    "1.1"), UP_ELEN);

	/* nblocks inconsistent, block_size 0, size 0. */
	assert_int_equal(decode_offer(0, 0, 0, 3000, 1024, 2, "1.1"),
	    UP_ERANGE);
	assert_int_equal(decode_offer(0, 0, 0, 3000, 1024, 4, "1.1"),
	    UP_ERANGE);
	assert_int_equal(decode_offer(0, 0, 0, 3072, 1024, 4, "1.1"),
	    UP_ERANGE);
	assert_int_equal(decode_offer(0, 0, 0, 3000, 0, 0, "1.1"),
	    UP_ERANGE);
	assert_int_equal(decode_offer(0, 0, 0, 0, 1024, 0, "1.1"),
	    UP_ERANGE);
	/* to_version must not be empty. */
	assert_int_equal(decode_offer(0, 0, 0, 3000, 1024, 3, ""),
	    UP_ERANGE);
}

static void
test_reject_counts(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX];
	size_t		 n, off;

	/* ncomp over UP_MAX_COMPONENTS. */
	mk_announce(&m);
	m.u.announce.ncomp = 0;
	n = (size_t)up_encode(&m, f, sizeof(f));
	off = n - UP_CRC_LEN - 1;
	assert_int_equal(f[off], 0);
	f[off] = UP_MAX_COMPONENTS + 1;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ELEN);
	f[off] = 0xff;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ELEN);
}

static void
test_reject_fields(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX];
	size_t		 n;

	/* node_id 0 in a STATUS (payload offset 0). */
	mk_sample(11, &m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	memset(f + UP_HDR_LEN, 0, 8);
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ERANGE);

	/* State 7 in a STATUS (payload offset 8). */
	mk_sample(11, &m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	f[UP_HDR_LEN + 8] = UP_NS_FAILED + 1;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ERANGE);

	/* Session 0 in a session message. */
	mk_sample(12, &m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	memset(f + 4, 0, 4);
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ERANGE);

	/* A non-zero session in DISCOVER is ignored, not rejected. */
	mk_sample(2, &m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	f[4] = 1;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_OK);

	/* RESULT_ACK to node 0. */
	mk_sample(15, &m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	memset(f + UP_HDR_LEN, 0, 8);
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ERANGE);

	/* Battery 101 in ANNOUNCE (payload offset 8 + 8 + 2 + 4 = 22). */
	mk_announce(&m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	assert_int_equal(f[UP_HDR_LEN + 22], 87);
	f[UP_HDR_LEN + 22] = 101;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ERANGE);
	f[UP_HDR_LEN + 22] = UP_BATTERY_UNKNOWN;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_OK);

	/* A status body whose bitmap is one byte short (nbits 10 -> 17). */
	mk_sample(5, &m);
	n = (size_t)up_encode(&m, f, sizeof(f));
	assert_int_equal(f[UP_HDR_LEN + 17], 10);
	f[UP_HDR_LEN + 17] = 17;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ESHORT);
	/* ...and one byte long (nbits 10 -> 8). */
	f[UP_HDR_LEN + 17] = 8;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_ELEN);

	/* Bitmap padding bits are ignored (§2.5). */
	f[UP_HDR_LEN + 17] = 10;
	f[UP_HDR_LEN + 20] |= 0xf0;
	(void)reseal(f, n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, n, &d), UP_OK);
}

/* ------------------------------------------------------------------ */
/* Encoder rejections                                                  */

static void
test_encode_reject(void **state)
{
	struct up_msg	 m;
	uint8_t		 f[UP_FRAME_MAX + 64];
	int		 i, n, cap;

	/* Too small a buffer, at every size, for every sample. */
	for (i = 0; i < NSAMPLES; i++) {
		mk_sample(i, &m);
		n = up_encode(&m, f, sizeof(f));
		assert_true(n > 0);
		for (cap = 0; cap < n; cap++)
			assert_int_equal(up_encode(&m, f, (size_t)cap),
			    UP_ENOSPC);
		assert_int_equal(up_encode(&m, f, (size_t)n), n);
	}

	mk_announce(&m);
	m.u.announce.ncomp = UP_MAX_COMPONENTS + 1;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	mk_announce(&m);
	m.u.announce.node_id = 0;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_announce(&m);
	m.u.announce.state = 7;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	/* A string with no NUL inside its array. */
	mk_announce(&m);
	memset(m.u.announce.hw, 'x', sizeof(m.u.announce.hw));
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);

	mk_offer(&m);
	m.u.offer.nhw = UP_MAX_HW + 1;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	mk_offer(&m);
	m.u.offer.ndeps = UP_MAX_DEPS + 1;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	mk_offer(&m);
	m.u.offer.sig_len = UP_SIG_MAX + 1;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	mk_offer(&m);
	m.u.offer.nblocks++;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_offer(&m);
	m.u.offer.block_size = 0;
	m.u.offer.nblocks = 0;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_offer(&m);
	m.session = 0;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_offer(&m);
	m.u.offer.deps[0].component[0] = '\0';
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);

	/* The largest status slice fits UP_FRAME_MAX; one bit more does not. */
	memset(&m, 0, sizeof(m));
	m.type = UP_T_STATUS;
	m.session = SESS;
	m.u.status.node_id = NODE;
	m.u.status.st.nbits = 11512;
	{
		static uint8_t	 big[UP_FRAME_MAX * 2];
		static uint8_t	 bits[2048];

		m.u.status.st.bits = bits;
		assert_int_equal(up_encode(&m, big, sizeof(big)),
		    UP_FRAME_MAX);
		m.u.status.st.nbits = 11513;
		assert_int_equal(up_encode(&m, big, sizeof(big)), UP_ELEN);
		m.u.status.st.bits = NULL;
		assert_int_equal(up_encode(&m, big, sizeof(big)), UP_EINVAL);
	}

	/* DATA: empty, too large, no bytes. */
	mk_sample(7, &m);
	m.u.data.len = 0;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	mk_sample(7, &m);
	m.u.data.len = UP_FRAME_MAX - UP_DATA_OVERHEAD + 1;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	mk_sample(7, &m);
	m.u.data.data = NULL;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_EINVAL);

	/* Unknown type, NULL arguments. */
	memset(&m, 0, sizeof(m));
	m.type = 0x0f;
	m.session = SESS;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ETYPE);
	m.type = 0;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ETYPE);
	mk_sample(2, &m);
	assert_int_equal(up_encode(NULL, f, sizeof(f)), UP_EINVAL);
	assert_int_equal(up_encode(&m, NULL, sizeof(f)), UP_EINVAL);
}

/* ------------------------------------------------------------------ */
/* XOR (§4.15)                                                         */

static uint8_t	 xor_data[UP_FRAME_MAX];

static void
mk_xor(struct up_msg *m, uint8_t n, const uint32_t *index, uint16_t len)
{
	unsigned int	 i;

	memset(m, 0, sizeof(*m));
	m->type = UP_T_XOR;
	m->flags = UP_F_REPAIR;
	m->session = SESS;
	m->u.xor_.n = n;
	for (i = 0; i < n && i < UP_XOR_MAX; i++)
		m->u.xor_.index[i] = index[i];
	m->u.xor_.len = len;
	for (i = 0; i < sizeof(xor_data); i++)
		xor_data[i] = (uint8_t)(i * 13 + 1);
	m->u.xor_.data = xor_data;
}

/*
 * Encodes m, checks the length (14 + 5 + gaps + data), decodes it back
 * field by field with the data borrowed at up_xor_data_off(), and checks
 * that up_xor_seal() around data put in place gives the same bytes.
 */
static int
xor_roundtrip(const struct up_msg *m, size_t gaps)
{
	const struct up_xor *x = &m->u.xor_;
	struct up_msg	 d;
	uint8_t		 f[UP_FRAME_MAX], g[UP_FRAME_MAX];
	size_t		 off;
	int		 n;

	n = up_encode(m, f, sizeof(f));
	assert_int_equal(n, UP_OVERHEAD + 5 + (int)gaps + x->len);
	assert_int_equal(up_xor_list_len(x->n, x->index), 4 + gaps);
	off = up_xor_data_off(x->n, x->index);
	assert_int_equal(off, UP_HDR_LEN + 5 + gaps);
	assert_int_equal(f[UP_HDR_LEN], x->n);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	assert_msg_equal(m, &d);
	assert_ptr_equal(d.u.xor_.data, f + off);

	memset(g, 0xee, sizeof(g));
	memcpy(g + off, x->data, x->len);
	assert_int_equal(up_xor_seal(g, sizeof(g), m->flags, m->session,
	    x->n, x->index, x->len), n);
	assert_memory_equal(f, g, (size_t)n);
	return (n);
}

static void
test_xor_roundtrip(void **state)
{
	struct up_msg	 m;
	uint32_t	 idx[UP_XOR_MAX];
	uint8_t		 f[UP_FRAME_MAX];
	size_t		 gaps;
	unsigned int	 i;

	/* n = 1: no gap; the first index is a plain u32. */
	idx[0] = 0xfffffffeu;
	mk_xor(&m, 1, idx, 1);
	(void)xor_roundtrip(&m, 0);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 6);
	assert_memory_equal(f + UP_HDR_LEN, "\x01\xfe\xff\xff\xff", 5);

	/* n = 2, neighbours. */
	idx[0] = 10;
	idx[1] = 11;
	mk_xor(&m, 2, idx, 1400);
	(void)xor_roundtrip(&m, 1);

	/* Each varint length at its bounds. */
	idx[0] = 0;
	idx[1] = 127;			/* 1 byte */
	idx[2] = idx[1] + 128;		/* 2 bytes */
	idx[3] = idx[2] + 16383;	/* 2 */
	idx[4] = idx[3] + 16384;	/* 3 */
	idx[5] = idx[4] + 2097151;	/* 3 */
	idx[6] = idx[5] + 2097152;	/* 4 */
	mk_xor(&m, 7, idx, 100);
	(void)xor_roundtrip(&m, 1 + 2 + 2 + 3 + 3 + 4);
	(void)up_encode(&m, f, sizeof(f));
	/* 127 = 7f; 128 = 80 01 (LEB128, low group first). */
	assert_memory_equal(f + UP_HDR_LEN + 5, "\x7f\x80\x01", 3);

	/* The largest gap, 2^28 - 1, up to the last u32 index. */
	idx[0] = UINT32_MAX - ((1u << 28) - 1);
	idx[1] = UINT32_MAX;
	mk_xor(&m, 2, idx, 17);
	(void)xor_roundtrip(&m, 4);
	(void)up_encode(&m, f, sizeof(f));
	assert_memory_equal(f + UP_HDR_LEN + 5, "\xff\xff\xff\x7f", 4);

	/* n = UP_XOR_MAX, gaps of every size, filling UP_FRAME_MAX. */
	idx[0] = 5;
	gaps = 0;
	for (i = 1; i < UP_XOR_MAX; i++) {
		idx[i] = idx[i - 1] + (i % 4 == 0 ? 1 : i % 4 == 1 ? 300 :
		    i % 4 == 2 ? 70000 : 3000000);
		gaps += i % 4 == 0 ? 1 : i % 4 == 1 ? 2 : i % 4 == 2 ? 3 : 4;
	}
	mk_xor(&m, UP_XOR_MAX, idx, (uint16_t)(UP_FRAME_MAX - UP_OVERHEAD -
	    5 - gaps));
	assert_int_equal(xor_roundtrip(&m, gaps), UP_FRAME_MAX);
	/* One data byte more does not fit a frame. */
	m.u.xor_.len++;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	assert_int_equal(up_xor_seal(f, sizeof(f), 0, SESS, m.u.xor_.n,
	    m.u.xor_.index, m.u.xor_.len), UP_ENOSPC);

	/* The encoder takes data that already sits in place. */
	idx[0] = 3;
	idx[1] = 9;
	mk_xor(&m, 2, idx, 50);
	memset(f + up_xor_data_off(2, idx), 0x77, 50);
	m.u.xor_.data = f + up_xor_data_off(2, idx);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_OVERHEAD + 6 + 50);
	assert_int_equal(up_decode(f, UP_OVERHEAD + 6 + 50, &m), UP_OK);
	assert_int_equal(m.u.xor_.data[0], 0x77);
	assert_int_equal(m.u.xor_.data[49], 0x77);
}

static void
test_xor_seal_reject(void **state)
{
	uint32_t	 idx[UP_XOR_MAX + 1];
	uint8_t		 f[UP_FRAME_MAX + 64];
	unsigned int	 i;

	for (i = 0; i <= UP_XOR_MAX; i++)
		idx[i] = i * 2;
	/* Invalid lists: sizes 0, seal UP_EINVAL. */
	assert_int_equal(up_xor_list_len(0, idx), 0);
	assert_int_equal(up_xor_data_off(0, idx), 0);
	assert_int_equal(up_xor_list_len(UP_XOR_MAX + 1, idx), 0);
	assert_int_equal(up_xor_list_len(UP_XOR_MAX, idx), 4 + 47);
	assert_int_equal(up_xor_list_len(1, NULL), 0);
	assert_int_equal(up_xor_seal(f, sizeof(f), 0, SESS, 0, idx, 1),
	    UP_EINVAL);
	assert_int_equal(up_xor_seal(f, sizeof(f), 0, SESS, UP_XOR_MAX + 1,
	    idx, 1), UP_EINVAL);
	idx[2] = idx[1];		/* not increasing */
	assert_int_equal(up_xor_list_len(3, idx), 0);
	assert_int_equal(up_xor_data_off(3, idx), 0);
	assert_int_equal(up_xor_seal(f, sizeof(f), 0, SESS, 3, idx, 1),
	    UP_EINVAL);
	idx[2] = idx[1] - 1;		/* decreasing */
	assert_int_equal(up_xor_list_len(3, idx), 0);
	idx[2] = idx[1] + (1u << 28);	/* gap of 2^28 */
	assert_int_equal(up_xor_list_len(3, idx), 0);
	assert_int_equal(up_xor_seal(f, sizeof(f), 0, SESS, 3, idx, 1),
	    UP_EINVAL);
	idx[2] = idx[1] + (1u << 28) - 1;
	assert_int_equal(up_xor_list_len(3, idx), 4 + 1 + 4);
	assert_int_equal(up_xor_data_off(3, idx), UP_HDR_LEN + 1 + 9);

	/* Other arguments. */
	assert_int_equal(up_xor_seal(NULL, sizeof(f), 0, SESS, 3, idx, 1),
	    UP_EINVAL);
	assert_int_equal(up_xor_seal(f, sizeof(f), 0, 0, 3, idx, 1),
	    UP_ERANGE);
	assert_int_equal(up_xor_seal(f, sizeof(f), 0, SESS, 3, idx, 0),
	    UP_ELEN);
	/* Buffer too small, by one byte. */
	assert_int_equal(up_xor_seal(f, UP_HDR_LEN + 10 + 10 + UP_CRC_LEN - 1,
	    0, SESS, 3, idx, 10), UP_ENOSPC);
	assert_int_equal(up_xor_seal(f, UP_HDR_LEN + 10 + 10 + UP_CRC_LEN,
	    0, SESS, 3, idx, 10), UP_HDR_LEN + 10 + 10 + UP_CRC_LEN);
}

/* An XOR payload written by hand: n, first, raw gap bytes, data. */
static int
xor_raw(uint8_t n, uint32_t first, const char *gaps, size_t ngaps,
    size_t ndata)
{
	uint8_t		 f[UP_FRAME_MAX], pl[UP_FRAME_MAX];
	struct up_msg	 d;
	size_t		 len = 0;

	pl[len++] = n;
	pl[len++] = (uint8_t)first;
	pl[len++] = (uint8_t)(first >> 8);
	pl[len++] = (uint8_t)(first >> 16);
	pl[len++] = (uint8_t)(first >> 24);
	memcpy(pl + len, gaps, ngaps);
	len += ngaps;
	memset(pl + len, 0xa5, ndata);
	len += ndata;
	return (up_decode(f, mkframe(f, UP_T_XOR, SESS, pl, len), &d));
}

static void
test_xor_reject(void **state)
{
	struct up_msg	 m, d;
	uint8_t		 f[UP_FRAME_MAX];
	uint32_t	 idx[3] = { 1, 2, 3 };
	int		 n;

	/* Valid by hand: the reference the rejections differ from. */
	assert_int_equal(xor_raw(1, 5, "", 0, 1), UP_OK);
	assert_int_equal(xor_raw(3, 5, "\x01\x80\x01", 3, 4), UP_OK);
	assert_int_equal(xor_raw(2, 5, "\xff\xff\xff\x7f", 4, 4), UP_OK);

	/* n out of 1 .. UP_XOR_MAX. */
	assert_int_equal(xor_raw(0, 5, "", 0, 4), UP_ERANGE);
	assert_int_equal(xor_raw(UP_XOR_MAX + 1, 5, "", 0, 200), UP_ERANGE);
	assert_int_equal(xor_raw(0xff, 5, "", 0, 400), UP_ERANGE);
	/* A gap of 0, also spelt in two bytes. */
	assert_int_equal(xor_raw(2, 5, "\x00", 1, 4), UP_ERANGE);
	assert_int_equal(xor_raw(2, 5, "\x80\x00", 2, 4), UP_ERANGE);
	/* A fifth varint byte, with or without more to come. */
	assert_int_equal(xor_raw(2, 5, "\xff\xff\xff\xff\x01", 5, 4),
	    UP_ERANGE);
	assert_int_equal(xor_raw(2, 5, "\x80\x80\x80\x80", 4, 0),
	    UP_ERANGE);
	/* Overlong: 1 spelt 81 00, 128 spelt 80 81 00. */
	assert_int_equal(xor_raw(2, 5, "\x81\x00", 2, 4), UP_ERANGE);
	assert_int_equal(xor_raw(2, 5, "\x80\x81\x00", 3, 4), UP_ERANGE);
	/* Truncated varint; a missing gap; a truncated first index. */
	assert_int_equal(xor_raw(2, 5, "\x80", 1, 0), UP_ESHORT);
	assert_int_equal(xor_raw(2, 5, "\xff\xff\xff", 3, 0), UP_ESHORT);
	assert_int_equal(xor_raw(3, 5, "\x01", 1, 0), UP_ESHORT);
	{
		static const uint8_t pl[] = { 0x01, 0x05, 0x00, 0x00 };

		assert_int_equal(up_decode(f, mkframe(f, UP_T_XOR, SESS, pl,
		    sizeof(pl)), &d), UP_ESHORT);
		assert_int_equal(up_decode(f, mkframe(f, UP_T_XOR, SESS, pl,
		    0), &d), UP_ESHORT);
	}
	/* An index past 2^32 - 1. */
	assert_int_equal(xor_raw(2, 0xfffffff0u, "\x0f", 1, 4), UP_OK);
	assert_int_equal(xor_raw(2, 0xfffffff0u, "\x10", 1, 4), UP_ERANGE);
	assert_int_equal(xor_raw(2, UINT32_MAX, "\x01", 1, 4), UP_ERANGE);
	assert_int_equal(xor_raw(3, 0xf0000000u, "\xff\xff\xff\x7f\x01", 5,
	    4), UP_ERANGE);
	/* No data after the list. */
	assert_int_equal(xor_raw(1, 5, "", 0, 0), UP_ELEN);
	assert_int_equal(xor_raw(3, 5, "\x01\x02", 2, 0), UP_ELEN);
	/* Session 0. */
	mk_xor(&m, 3, idx, 8);
	n = up_encode(&m, f, sizeof(f));
	assert_true(n > 0);
	memset(f + 4, 0, 4);
	(void)reseal(f, (size_t)n - UP_OVERHEAD);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_ERANGE);
	/* Bad CRC. */
	n = up_encode(&m, f, sizeof(f));
	f[n - 2] ^= 0x10;
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_EBADCRC);
	f[n - 2] ^= 0x10;
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);

	/* The encoder refuses what the decoder would. */
	mk_xor(&m, 0, idx, 8);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_xor(&m, 3, idx, 8);
	m.u.xor_.n = UP_XOR_MAX + 1;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_xor(&m, 3, idx, 8);
	m.u.xor_.index[2] = 2;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_xor(&m, 3, idx, 8);
	m.u.xor_.index[2] = 2 + (1u << 28);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
	mk_xor(&m, 3, idx, 0);
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ELEN);
	mk_xor(&m, 3, idx, 8);
	m.u.xor_.data = NULL;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_EINVAL);
	mk_xor(&m, 3, idx, 8);
	m.session = 0;
	assert_int_equal(up_encode(&m, f, sizeof(f)), UP_ERANGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_roundtrip_data_borrowed),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_desc),
		cmocka_unit_test(test_desc_form2),
		cmocka_unit_test(test_seal_data),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_nblocks),
		cmocka_unit_test(test_reject_truncated),
		cmocka_unit_test(test_reject_payload_truncated),
		cmocka_unit_test(test_reject_bitflip),
		cmocka_unit_test(test_reject_header),
		cmocka_unit_test(test_reject_strings),
		cmocka_unit_test(test_reject_offer),
		cmocka_unit_test(test_reject_counts),
		cmocka_unit_test(test_reject_fields),
		cmocka_unit_test(test_encode_reject),
		cmocka_unit_test(test_xor_roundtrip),
		cmocka_unit_test(test_xor_seal_reject),
		cmocka_unit_test(test_xor_reject),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
