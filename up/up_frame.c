/*
 * up_frame.c: the UP wire codec (docs/up-protocol.md §3, §4, §6).
 *
 * One frame is a 10-byte header, a payload whose layout depends on the
 * type, and a CRC-32 trailer.  Decoding is all or nothing: the whole frame
 * is checked (version, exact length, CRC, type, every payload length and
 * every field range) before the caller gets a message, and one rule table,
 * up_check_msg(), serves the encoder and the decoder alike, so anything
 * up_encode() produces up_decode() accepts and the other way round.
 * Nothing here allocates; DATA/PARITY/XOR block bytes and status bitmaps
 * are borrowed from the caller's buffer instead of copied.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"
#include "up_internal.h"

/* Header field offsets (§3.1). */
#define UP_OFF_VERSION		0
#define UP_OFF_TYPE		1
#define UP_OFF_FLAGS		2
#define UP_OFF_RESERVED		3
#define UP_OFF_SESSION		4
#define UP_OFF_LEN		8

/*
 * The magics that start a signed package descriptor (§6): "UPD1" without
 * security_version and desc_flags (both 0), "UPD2" with them.
 */
static const uint8_t up_desc_magic1[4] = { 'U', 'P', 'D', '1' };
static const uint8_t up_desc_magic2[4] = { 'U', 'P', 'D', '2' };

static uint32_t
up_le32(const uint8_t *p)
{
	return ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
	    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static void
up_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
up_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Largest XOR gap: a LEB128 varint of at most 4 bytes (§4.15). */
#define UP_XOR_GAP_MAX		((UINT32_C(1) << 28) - 1)

uint32_t
up_nblocks(uint32_t size, uint16_t block_size)
{
	if (block_size == 0)
		return (0);
	/* Not (size + bs - 1) / bs: that overflows for size near 2^32. */
	return (size / block_size + (size % block_size != 0));
}

/* ------------------------------------------------------------------ */
/* Field rules (§9), shared by encoder and decoder                    */

/*
 * A string field of a struct: NUL-terminated within its max + 1 bytes
 * (UP_ELEN otherwise, the same error the reader gives for a too long
 * string), and non-empty when `need' says so (UP_ERANGE).
 */
static int
up_check_str(const char *s, size_t max, bool need)
{
	if (memchr(s, '\0', max + 1) == NULL)
		return (UP_ELEN);
	if (need && s[0] == '\0')
		return (UP_ERANGE);
	return (UP_OK);
}

static int
up_check_desc(const struct up_offer *o)
{
	int		 e;
	unsigned int	 i;

	if ((e = up_check_str(o->component, UP_NAME_MAX, true)) != UP_OK)
		return (e);
	if (o->nhw > UP_MAX_HW)
		return (UP_ELEN);
	for (i = 0; i < o->nhw; i++)
		if ((e = up_check_str(o->hw[i], UP_NAME_MAX, true)) != UP_OK)
			return (e);
	if ((e = up_check_str(o->from_version, UP_VER_MAX, false)) != UP_OK ||
	    (e = up_check_str(o->to_version, UP_VER_MAX, true)) != UP_OK)
		return (e);
	if (o->ndeps > UP_MAX_DEPS)
		return (UP_ELEN);
	for (i = 0; i < o->ndeps; i++)
		if ((e = up_check_str(o->deps[i].component, UP_NAME_MAX,
		    true)) != UP_OK ||
		    (e = up_check_str(o->deps[i].min_version, UP_VER_MAX,
		    false)) != UP_OK)
			return (e);
	/* An empty package has no block to send (§4.3). */
	if (o->size == 0)
		return (UP_ERANGE);
	return (UP_OK);
}

static int
up_check_offer(const struct up_offer *o)
{
	int		 e;

	if ((e = up_check_desc(o)) != UP_OK)
		return (e);
	if (o->sig_len > UP_SIG_MAX)
		return (UP_ELEN);
	if (o->block_size == 0)
		return (UP_ERANGE);
	if (o->nblocks != up_nblocks(o->size, o->block_size))
		return (UP_ERANGE);
	return (UP_OK);
}

static int
up_check_status_body(const struct up_status_body *st)
{
	/* Full frames carry only the bitmap slice (§4.7). */
	if (st->form != UP_SB_BITMAP)
		return (UP_EINVAL);
	if (st->nbits > 0 && st->bits == NULL)
		return (UP_EINVAL);
	return (UP_OK);
}

/*
 * An XOR block list (§4.15): 1 <= n <= UP_XOR_MAX, and every gap between
 * neighbours 1 .. 2^28 - 1 (so the indices increase strictly).  Returns
 * the bytes of its encoding (u32 first, then the LEB128 gaps), or 0.
 */
static size_t
up_xor_list(uint8_t n, const uint32_t *index)
{
	size_t		 len = 4;
	uint32_t	 gap;
	unsigned int	 i;

	if (index == NULL || n < 1 || n > UP_XOR_MAX)
		return (0);
	for (i = 1; i < n; i++) {
		if (index[i] <= index[i - 1])
			return (0);
		gap = index[i] - index[i - 1];
		if (gap > UP_XOR_GAP_MAX)
			return (0);
		/* 7 bits per byte. */
		len += gap < 0x80 ? 1 : gap < 0x4000 ? 2 :
		    gap < 0x200000 ? 3 : 4;
	}
	return (len);
}

static int
up_check_xor(const struct up_xor *x)
{
	if (up_xor_list(x->n, x->index) == 0)
		return (UP_ERANGE);
	if (x->len == 0)
		return (UP_ELEN);
	if (x->data == NULL)
		return (UP_EINVAL);
	return (UP_OK);
}

static int
up_check_announce(const struct up_announce *a)
{
	int		 e;
	unsigned int	 i;

	if (a->node_id == 0 || a->state > UP_NS_FAILED)
		return (UP_ERANGE);
	if (a->battery > 100 && a->battery != UP_BATTERY_UNKNOWN)
		return (UP_ERANGE);
	if ((e = up_check_str(a->hw, UP_NAME_MAX, false)) != UP_OK)
		return (e);
	if (a->ncomp > UP_MAX_COMPONENTS)
		return (UP_ELEN);
	for (i = 0; i < a->ncomp; i++)
		if ((e = up_check_str(a->comp[i].name, UP_NAME_MAX,
		    true)) != UP_OK ||
		    (e = up_check_str(a->comp[i].version, UP_VER_MAX,
		    false)) != UP_OK)
			return (e);
	return (UP_OK);
}

static int
up_check_msg(const struct up_msg *m)
{
	int		 e;

	/* Everything but ANNOUNCE and DISCOVER belongs to a session (§3.3). */
	if (m->type != UP_T_ANNOUNCE && m->type != UP_T_DISCOVER &&
	    m->session == 0)
		return (UP_ERANGE);

	switch (m->type) {
	case UP_T_ANNOUNCE:
		return (up_check_announce(&m->u.announce));
	case UP_T_DISCOVER:
		return (UP_OK);
	case UP_T_OFFER:
		return (up_check_offer(&m->u.offer));
	case UP_T_ACCEPT:
		if (m->u.accept.node_id == 0)
			return (UP_ERANGE);
		return (up_check_status_body(&m->u.accept.st));
	case UP_T_DATA:
	case UP_T_PARITY:
		if (m->u.data.len == 0)
			return (UP_ELEN);
		if (m->u.data.data == NULL)
			return (UP_EINVAL);
		return (UP_OK);
	case UP_T_XOR:
		return (up_check_xor(&m->u.xor_));
	case UP_T_STATUS_REQ:
	case UP_T_VERIFY:
	case UP_T_ACTIVATE:
	case UP_T_ABORT:
		return (UP_OK);
	case UP_T_RESULT_ACK:
		if (m->u.target.node_id == 0)
			return (UP_ERANGE);
		return (UP_OK);
	case UP_T_STATUS:
		if (m->u.status.node_id == 0 ||
		    m->u.status.state > UP_NS_FAILED)
			return (UP_ERANGE);
		return (up_check_status_body(&m->u.status.st));
	case UP_T_RESULT:
		if (m->u.result.node_id == 0 ||
		    m->u.result.state > UP_NS_FAILED)
			return (UP_ERANGE);
		if ((e = up_check_str(m->u.result.component, UP_NAME_MAX,
		    false)) != UP_OK ||
		    (e = up_check_str(m->u.result.version, UP_VER_MAX,
		    false)) != UP_OK)
			return (e);
		return (UP_OK);
	}
	return (UP_ETYPE);
}

/* ------------------------------------------------------------------ */
/* Payload writers (§4); fields already checked by up_check_msg()     */

static void
up_wr_desc(struct up_wr *wr, const struct up_offer *o)
{
	unsigned int	 i;

	up_wr_str(wr, o->component);
	up_wr_u8(wr, o->nhw);
	for (i = 0; i < o->nhw; i++)
		up_wr_str(wr, o->hw[i]);
	up_wr_str(wr, o->from_version);
	up_wr_str(wr, o->to_version);
	up_wr_u8(wr, o->kind);
	up_wr_u8(wr, o->delta_format);
	up_wr_u32(wr, o->size);
	up_wr_bytes(wr, o->sha256, sizeof(o->sha256));
	up_wr_u32(wr, o->image_size);
	up_wr_bytes(wr, o->image_sha256, sizeof(o->image_sha256));
	up_wr_u8(wr, o->ndeps);
	for (i = 0; i < o->ndeps; i++) {
		up_wr_str(wr, o->deps[i].component);
		up_wr_str(wr, o->deps[i].min_version);
	}
}

static void
up_wr_status_body(struct up_wr *wr, const struct up_status_body *st)
{
	up_wr_u32(wr, st->held);
	up_wr_u32(wr, st->first_missing);
	up_wr_u16(wr, st->nbits);
	up_wr_bytes(wr, st->bits, up_bitmap_bytes(st->nbits));
}

static void
up_wr_announce(struct up_wr *wr, const struct up_announce *a)
{
	unsigned int	 i;

	up_wr_u64(wr, a->node_id);
	up_wr_str(wr, a->hw);
	up_wr_u16(wr, a->max_frame);
	up_wr_u32(wr, a->free_kib);
	up_wr_u8(wr, a->battery);
	up_wr_u16(wr, (uint16_t)a->rssi_dbm);
	up_wr_u8(wr, (uint8_t)a->snr_db);
	up_wr_u32(wr, a->session);
	up_wr_u8(wr, a->state);
	up_wr_u8(wr, a->ncomp);
	for (i = 0; i < a->ncomp; i++) {
		up_wr_str(wr, a->comp[i].name);
		up_wr_str(wr, a->comp[i].version);
	}
}

static void
up_wr_payload(struct up_wr *wr, const struct up_msg *m)
{
	switch (m->type) {
	case UP_T_ANNOUNCE:
		up_wr_announce(wr, &m->u.announce);
		break;
	case UP_T_DISCOVER:
		up_wr_u16(wr, m->u.discover.window_ms);
		break;
	case UP_T_OFFER:
		up_offer_wr(wr, &m->u.offer);
		break;
	case UP_T_ACCEPT:
		up_wr_u64(wr, m->u.accept.node_id);
		up_wr_u8(wr, m->u.accept.code);
		up_wr_status_body(wr, &m->u.accept.st);
		break;
	case UP_T_STATUS_REQ:
		up_wr_u64(wr, m->u.target.node_id);
		up_wr_u16(wr, m->u.target.window_ms);
		break;
	case UP_T_VERIFY:
	case UP_T_RESULT_ACK:
		up_wr_u64(wr, m->u.target.node_id);
		break;
	case UP_T_ABORT:
		up_wr_u64(wr, m->u.target.node_id);
		up_wr_u8(wr, m->u.target.reason);
		break;
	case UP_T_STATUS:
		up_wr_u64(wr, m->u.status.node_id);
		up_wr_u8(wr, m->u.status.state);
		up_wr_status_body(wr, &m->u.status.st);
		break;
	case UP_T_ACTIVATE:
		up_wr_u64(wr, m->u.activate.node_id);
		up_wr_u32(wr, m->u.activate.delay_ms);
		break;
	case UP_T_RESULT:
		up_wr_u64(wr, m->u.result.node_id);
		up_wr_u8(wr, m->u.result.state);
		up_wr_u8(wr, m->u.result.result);
		up_wr_str(wr, m->u.result.component);
		up_wr_str(wr, m->u.result.version);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Payload readers (§4)                                               */

static void
up_rd_desc(struct up_rd *rd, struct up_offer *o)
{
	unsigned int	 i;

	up_rd_str(rd, o->component, UP_NAME_MAX);
	o->nhw = up_rd_u8(rd);
	/* Check a count before it indexes an array. */
	if (o->nhw > UP_MAX_HW) {
		rd->err = UP_ELEN;
		return;
	}
	for (i = 0; i < o->nhw; i++)
		up_rd_str(rd, o->hw[i], UP_NAME_MAX);
	up_rd_str(rd, o->from_version, UP_VER_MAX);
	up_rd_str(rd, o->to_version, UP_VER_MAX);
	o->kind = up_rd_u8(rd);
	o->delta_format = up_rd_u8(rd);
	o->size = up_rd_u32(rd);
	up_rd_bytes(rd, o->sha256, sizeof(o->sha256));
	o->image_size = up_rd_u32(rd);
	up_rd_bytes(rd, o->image_sha256, sizeof(o->image_sha256));
	o->ndeps = up_rd_u8(rd);
	if (o->ndeps > UP_MAX_DEPS) {
		if (rd->err == UP_OK)
			rd->err = UP_ELEN;
		return;
	}
	for (i = 0; i < o->ndeps; i++) {
		up_rd_str(rd, o->deps[i].component, UP_NAME_MAX);
		up_rd_str(rd, o->deps[i].min_version, UP_VER_MAX);
	}
}

/* The signed fields after the dependencies (§4.3, §6). */
static void
up_rd_desc_tail(struct up_rd *rd, struct up_offer *o)
{
	o->security_version = up_rd_u32(rd);
	o->desc_flags = up_rd_u8(rd);
}

static void
up_rd_status_body(struct up_rd *rd, struct up_status_body *st)
{
	st->held = up_rd_u32(rd);
	st->first_missing = up_rd_u32(rd);
	st->nbits = up_rd_u16(rd);
	st->bits = up_rd_ptr(rd, up_bitmap_bytes(st->nbits));
}

void
up_offer_wr(struct up_wr *wr, const struct up_offer *o)
{
	up_wr_desc(wr, o);
	up_wr_u32(wr, o->security_version);
	up_wr_u8(wr, o->desc_flags);
	up_wr_u8(wr, o->sig_alg);
	up_wr_u8(wr, o->sig_len);
	up_wr_bytes(wr, o->sig, o->sig_len <= UP_SIG_MAX ? o->sig_len : 0);
	up_wr_u16(wr, o->block_size);
	up_wr_u32(wr, o->nblocks);
	up_wr_u32(wr, o->deadline_s);
}

/* The session part of an OFFER, after the descriptor. */
static void
up_rd_offer_tail(struct up_rd *rd, struct up_offer *o)
{
	o->sig_alg = up_rd_u8(rd);
	o->sig_len = up_rd_u8(rd);
	/* Check the count before it sizes a copy into sig[]. */
	if (o->sig_len > UP_SIG_MAX) {
		if (rd->err == UP_OK)
			rd->err = UP_ELEN;
		return;
	}
	up_rd_bytes(rd, o->sig, o->sig_len);
	o->block_size = up_rd_u16(rd);
	o->nblocks = up_rd_u32(rd);
	o->deadline_s = up_rd_u32(rd);
}

void
up_offer_rd(struct up_rd *rd, struct up_offer *o)
{
	up_rd_desc(rd, o);
	if (rd->err != UP_OK)
		return;
	up_rd_desc_tail(rd, o);
	up_rd_offer_tail(rd, o);
}

void
up_offer_rd_v1(struct up_rd *rd, struct up_offer *o)
{
	up_rd_desc(rd, o);
	if (rd->err != UP_OK)
		return;
	o->security_version = 0;
	o->desc_flags = 0;
	up_rd_offer_tail(rd, o);
}

/*
 * One XOR gap (§4.15): unsigned LEB128, low group first, at most 4
 * bytes.  Past the end of the payload is UP_ESHORT (the cursor's);
 * a gap of 0, a fourth byte with the high bit set (it asks for a
 * fifth) and an overlong encoding (a last byte of 0 after the first,
 * which would not re-encode to the same bytes) are UP_ERANGE.
 */
static uint32_t
up_rd_gap(struct up_rd *rd)
{
	uint32_t	 v = 0;
	uint8_t		 b;
	unsigned int	 i;

	for (i = 0; i < 4; i++) {
		b = up_rd_u8(rd);
		if (rd->err != UP_OK)
			return (0);
		v |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) != 0)
			continue;
		if (v == 0 || (i > 0 && b == 0)) {
			rd->err = UP_ERANGE;
			return (0);
		}
		return (v);
	}
	rd->err = UP_ERANGE;
	return (0);
}

static void
up_rd_xor(struct up_rd *rd, struct up_xor *x)
{
	uint32_t	 gap;
	unsigned int	 i;

	x->n = up_rd_u8(rd);
	if (rd->err != UP_OK)
		return;
	/* Check the count before it indexes index[]. */
	if (x->n < 1 || x->n > UP_XOR_MAX) {
		rd->err = UP_ERANGE;
		return;
	}
	x->index[0] = up_rd_u32(rd);
	for (i = 1; i < x->n; i++) {
		gap = up_rd_gap(rd);
		if (rd->err != UP_OK)
			return;
		if (gap > UINT32_MAX - x->index[i - 1]) {
			rd->err = UP_ERANGE;	/* index past 2^32 - 1 */
			return;
		}
		x->index[i] = x->index[i - 1] + gap;
	}
	/* The data is the rest of the payload; up_check_xor wants >= 1. */
	x->len = (uint16_t)up_rd_left(rd);
	x->data = up_rd_ptr(rd, x->len);
}

static void
up_rd_announce(struct up_rd *rd, struct up_announce *a)
{
	unsigned int	 i;

	a->node_id = up_rd_u64(rd);
	up_rd_str(rd, a->hw, UP_NAME_MAX);
	a->max_frame = up_rd_u16(rd);
	a->free_kib = up_rd_u32(rd);
	a->battery = up_rd_u8(rd);
	a->rssi_dbm = (int16_t)up_rd_u16(rd);
	a->snr_db = (int8_t)up_rd_u8(rd);
	a->session = up_rd_u32(rd);
	a->state = up_rd_u8(rd);
	a->ncomp = up_rd_u8(rd);
	if (a->ncomp > UP_MAX_COMPONENTS) {
		if (rd->err == UP_OK)
			rd->err = UP_ELEN;
		return;
	}
	for (i = 0; i < a->ncomp; i++) {
		up_rd_str(rd, a->comp[i].name, UP_NAME_MAX);
		up_rd_str(rd, a->comp[i].version, UP_VER_MAX);
	}
}

static void
up_rd_payload(struct up_rd *rd, struct up_msg *m)
{
	switch (m->type) {
	case UP_T_ANNOUNCE:
		up_rd_announce(rd, &m->u.announce);
		break;
	case UP_T_DISCOVER:
		m->u.discover.window_ms = up_rd_u16(rd);
		break;
	case UP_T_OFFER:
		up_offer_rd(rd, &m->u.offer);
		break;
	case UP_T_ACCEPT:
		m->u.accept.node_id = up_rd_u64(rd);
		m->u.accept.code = up_rd_u8(rd);
		up_rd_status_body(rd, &m->u.accept.st);
		break;
	case UP_T_DATA:
	case UP_T_PARITY:
		m->u.data.index = up_rd_u32(rd);
		/* The block is the rest of the payload (§4.5). */
		m->u.data.len = (uint16_t)up_rd_left(rd);
		m->u.data.data = up_rd_ptr(rd, m->u.data.len);
		break;
	case UP_T_XOR:
		up_rd_xor(rd, &m->u.xor_);
		break;
	case UP_T_STATUS_REQ:
		m->u.target.node_id = up_rd_u64(rd);
		m->u.target.window_ms = up_rd_u16(rd);
		break;
	case UP_T_VERIFY:
	case UP_T_RESULT_ACK:
		m->u.target.node_id = up_rd_u64(rd);
		break;
	case UP_T_ABORT:
		m->u.target.node_id = up_rd_u64(rd);
		m->u.target.reason = up_rd_u8(rd);
		break;
	case UP_T_STATUS:
		m->u.status.node_id = up_rd_u64(rd);
		m->u.status.state = up_rd_u8(rd);
		up_rd_status_body(rd, &m->u.status.st);
		break;
	case UP_T_ACTIVATE:
		m->u.activate.node_id = up_rd_u64(rd);
		m->u.activate.delay_ms = up_rd_u32(rd);
		break;
	case UP_T_RESULT:
		m->u.result.node_id = up_rd_u64(rd);
		m->u.result.state = up_rd_u8(rd);
		m->u.result.result = up_rd_u8(rd);
		up_rd_str(rd, m->u.result.component, UP_NAME_MAX);
		up_rd_str(rd, m->u.result.version, UP_VER_MAX);
		break;
	default:
		rd->err = UP_ETYPE;
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Frames (§3)                                                        */

static bool
up_type_known(uint8_t type)
{
	return (type >= UP_T_ANNOUNCE && type <= UP_T_XOR);
}

static void
up_put_header(uint8_t *buf, uint8_t type, uint8_t flags, uint32_t session,
    uint16_t n)
{
	buf[UP_OFF_VERSION] = UP_PROTO_VERSION;
	buf[UP_OFF_TYPE] = type;
	buf[UP_OFF_FLAGS] = flags;
	buf[UP_OFF_RESERVED] = 0;
	up_put_le32(buf + UP_OFF_SESSION, session);
	up_put_le16(buf + UP_OFF_LEN, n);
}

int
up_decode(const uint8_t *buf, size_t len, struct up_msg *m)
{
	struct up_rd	 rd;
	size_t		 n;
	int		 e;

	if (buf == NULL || m == NULL)
		return (UP_EINVAL);
	if (len < UP_OVERHEAD)
		return (UP_ESHORT);
	/*
	 * The version byte is checked before anything else that depends
	 * on the layout: a later version may change the rest (§3.1).
	 */
	if (buf[UP_OFF_VERSION] != UP_PROTO_VERSION)
		return (UP_EVERSION);
	if (len > UP_FRAME_MAX)
		return (UP_ELEN);
	n = (size_t)buf[UP_OFF_LEN] | (size_t)buf[UP_OFF_LEN + 1] << 8;
	if (UP_OVERHEAD + n > len)
		return (UP_ESHORT);
	/* One frame per datagram: trailing bytes are an error, not slack. */
	if (UP_OVERHEAD + n < len)
		return (UP_ELEN);
	if (up_crc32(0, buf, UP_HDR_LEN + n) != up_le32(buf + UP_HDR_LEN + n))
		return (UP_EBADCRC);
	if (!up_type_known(buf[UP_OFF_TYPE]))
		return (UP_ETYPE);

	memset(m, 0, sizeof(*m));
	m->type = buf[UP_OFF_TYPE];
	m->flags = buf[UP_OFF_FLAGS];
	m->session = up_le32(buf + UP_OFF_SESSION);

	up_rd_init(&rd, buf + UP_HDR_LEN, n);
	up_rd_payload(&rd, m);
	if ((e = up_rd_err(&rd)) != UP_OK)
		return (e);
	if (up_rd_left(&rd) != 0)
		return (UP_ELEN);
	return (up_check_msg(m));
}

int
up_seal_data(uint8_t *buf, size_t cap, uint8_t type, uint8_t flags,
    uint32_t session, uint32_t index, uint16_t len)
{
	size_t		 total = (size_t)UP_DATA_OVERHEAD + len;
	uint32_t	 crc;

	if (buf == NULL || (type != UP_T_DATA && type != UP_T_PARITY))
		return (UP_EINVAL);
	if (session == 0)
		return (UP_ERANGE);
	if (len == 0 || total > UP_FRAME_MAX)
		return (UP_ELEN);
	if (cap < total)
		return (UP_ENOSPC);
	up_put_header(buf, type, flags, session, (uint16_t)(4 + len));
	up_put_le32(buf + UP_HDR_LEN, index);
	crc = up_crc32(0, buf, UP_DATA_OFF + (size_t)len);
	up_put_le32(buf + UP_DATA_OFF + len, crc);
	return ((int)total);
}

size_t
up_xor_list_len(uint8_t n, const uint32_t *index)
{
	return (up_xor_list(n, index));
}

size_t
up_xor_data_off(uint8_t n, const uint32_t *index)
{
	size_t		 list;

	if ((list = up_xor_list(n, index)) == 0)
		return (0);
	/* Header, the count n, then the list (§4.15). */
	return (UP_HDR_LEN + 1 + list);
}

int
up_xor_seal(uint8_t *buf, size_t cap, uint8_t flags, uint32_t session,
    uint8_t n, const uint32_t *index, uint16_t len)
{
	size_t		 off, total;
	uint8_t		*p;
	uint32_t	 gap, crc;
	unsigned int	 i;

	if (buf == NULL || (off = up_xor_data_off(n, index)) == 0)
		return (UP_EINVAL);
	if (session == 0)
		return (UP_ERANGE);
	if (len == 0)
		return (UP_ELEN);
	total = off + len + UP_CRC_LEN;
	if (total > UP_FRAME_MAX || total > cap)
		return (UP_ENOSPC);
	up_put_header(buf, UP_T_XOR, flags, session,
	    (uint16_t)(total - UP_OVERHEAD));
	p = buf + UP_HDR_LEN;
	*p++ = n;
	up_put_le32(p, index[0]);
	p += 4;
	for (i = 1; i < n; i++) {
		/* up_xor_list checked: 1 <= gap < 2^28, four bytes at most. */
		gap = index[i] - index[i - 1];
		while (gap >= 0x80) {
			*p++ = (uint8_t)(gap | 0x80);
			gap >>= 7;
		}
		*p++ = (uint8_t)gap;
	}
	crc = up_crc32(0, buf, off + len);
	up_put_le32(buf + off + len, crc);
	return ((int)total);
}

int
up_encode(const struct up_msg *m, uint8_t *buf, size_t cap)
{
	const struct up_xor *x;
	struct up_wr	 wr;
	size_t		 n, off;
	int		 e;

	if (m == NULL || buf == NULL)
		return (UP_EINVAL);
	if (m->form == UP_FORM_COMPACT)
		return (up__cencode(m, buf, cap));
	if (m->form != UP_FORM_FULL)
		return (UP_EINVAL);
	if (!up_type_known(m->type))
		return (UP_ETYPE);
	if ((e = up_check_msg(m)) != UP_OK)
		return (e);

	if (m->type == UP_T_DATA || m->type == UP_T_PARITY) {
		if ((size_t)UP_DATA_OVERHEAD + m->u.data.len > UP_FRAME_MAX)
			return (UP_ELEN);
		if (cap < (size_t)UP_DATA_OVERHEAD + m->u.data.len)
			return (UP_ENOSPC);
		/* memmove: the block may already sit in place (§4.5). */
		memmove(buf + UP_DATA_OFF, m->u.data.data, m->u.data.len);
		return (up_seal_data(buf, cap, m->type, m->flags, m->session,
		    m->u.data.index, m->u.data.len));
	}
	if (m->type == UP_T_XOR) {
		/* The same bytes as the gateway's in-place up_xor_seal(). */
		x = &m->u.xor_;
		off = up_xor_data_off(x->n, x->index);
		if (off + x->len + UP_CRC_LEN > UP_FRAME_MAX)
			return (UP_ELEN);
		if (cap < off + x->len + UP_CRC_LEN)
			return (UP_ENOSPC);
		memmove(buf + off, x->data, x->len);
		return (up_xor_seal(buf, cap, m->flags, m->session, x->n,
		    x->index, x->len));
	}

	up_wr_init(&wr, buf, cap);
	up_wr_bytes(&wr, "\0\0\0\0\0\0\0\0\0\0", UP_HDR_LEN);
	up_wr_payload(&wr, m);
	up_wr_u32(&wr, 0);
	if ((e = up_wr_err(&wr)) != UP_OK) {
		/* A buffer of UP_FRAME_MAX always fits a valid frame. */
		if (e == UP_ENOSPC && cap >= UP_FRAME_MAX)
			return (UP_ELEN);
		return (e);
	}
	if (wr.off > UP_FRAME_MAX)
		return (UP_ELEN);
	n = wr.off - UP_OVERHEAD;
	up_put_header(buf, m->type, m->flags, m->session, (uint16_t)n);
	up_put_le32(buf + UP_HDR_LEN + n, up_crc32(0, buf, UP_HDR_LEN + n));
	return ((int)wr.off);
}

int
up_peek(const uint8_t *buf, size_t len, uint8_t *type, uint32_t *session)
{
	if (buf == NULL)
		return (UP_EINVAL);
	if (len < UP_HDR_LEN)
		return (UP_ESHORT);
	if (buf[UP_OFF_VERSION] != UP_PROTO_VERSION)
		return (UP_EVERSION);
	if (type != NULL)
		*type = buf[UP_OFF_TYPE];
	if (session != NULL)
		*session = up_le32(buf + UP_OFF_SESSION);
	return (UP_OK);
}

int
up_desc_encode(const struct up_offer *o, uint8_t *buf, size_t cap)
{
	struct up_wr	 wr;
	int		 e;

	if (o == NULL || buf == NULL)
		return (UP_EINVAL);
	if ((e = up_check_desc(o)) != UP_OK)
		return (e);
	up_wr_init(&wr, buf, cap);
	/* Form 1 keeps the signatures made before the two fields valid. */
	if (o->security_version == 0 && o->desc_flags == 0) {
		up_wr_bytes(&wr, up_desc_magic1, sizeof(up_desc_magic1));
		up_wr_desc(&wr, o);
	} else {
		up_wr_bytes(&wr, up_desc_magic2, sizeof(up_desc_magic2));
		up_wr_desc(&wr, o);
		up_wr_u32(&wr, o->security_version);
		up_wr_u8(&wr, o->desc_flags);
	}
	if ((e = up_wr_err(&wr)) != UP_OK)
		return (e);
	return ((int)wr.off);
}

/* ------------------------------------------------------------------ */
/* For the compact codec (up_internal.h)                              */

void
up__rd_announce(struct up_rd *rd, struct up_announce *a)
{
	up_rd_announce(rd, a);
}

void
up__wr_announce(struct up_wr *wr, const struct up_announce *a)
{
	up_wr_announce(wr, a);
}

int
up__check_announce(const struct up_announce *a)
{
	return (up_check_announce(a));
}

int
up__check_offer(const struct up_offer *o)
{
	return (up_check_offer(o));
}

int
up__check_str(const char *s, size_t max, bool need)
{
	return (up_check_str(s, max, need));
}

void
up__rd_xor(struct up_rd *rd, struct up_xor *x)
{
	up_rd_xor(rd, x);
}

int
up__check_xor(const struct up_xor *x)
{
	return (up_check_xor(x));
}

/* The XOR payload (§4.15), as up_xor_seal() lays it out. */
void
up__wr_xor(struct up_wr *wr, const struct up_xor *x)
{
	uint32_t	 gap;
	unsigned int	 i;

	up_wr_u8(wr, x->n);
	up_wr_u32(wr, x->index[0]);
	for (i = 1; i < x->n && i < UP_XOR_MAX; i++) {
		gap = x->index[i] - x->index[i - 1];
		while (gap >= 0x80) {
			up_wr_u8(wr, (uint8_t)(gap | 0x80));
			gap >>= 7;
		}
		up_wr_u8(wr, (uint8_t)gap);
	}
	up_wr_bytes(wr, x->data, x->len);
}

void
up__rd_status_body(struct up_rd *rd, struct up_status_body *st)
{
	up_rd_status_body(rd, st);
}

void
up__wr_status_body(struct up_wr *wr, const struct up_status_body *st)
{
	up_wr_status_body(wr, st);
}
