/*
 * up_cframe.c: the compact form of UP frames (docs/up-protocol.md §11).
 *
 * The same messages as up_frame.c, laid out for links of 20 to 255
 * bytes: a one-byte form byte instead of the 10-byte header, no length
 * (the link delivers whole frames), a one-byte session tag instead of
 * the session id in the per-block frames, optional node ids, varints,
 * and two optional trailers (a MIC, kept but not yet checked, §11.10,
 * and a CRC-16 where the link's own check is too weak, §11.3).  The
 * ANNOUNCE, OFFER and XOR payloads of the full form are carried
 * unchanged and read with the full codec's functions (up_internal.h).
 *
 * As in up_frame.c one rule table, up_ccheck_msg(), serves encoder and
 * decoder, and every choice of encoding (the X bit, varint lengths) is
 * forced by the values, so a frame that decodes re-encodes to the same
 * bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"
#include "up_internal.h"

/* Largest index or code of the 2-byte form, and of the 3-byte one. */
#define UP_C_NARROW_MAX		0xffffu
#define UP_C_WIDE_MAX		0xffffffu

static uint16_t
up_le16(const uint8_t *p)
{
	return ((uint16_t)(p[0] | p[1] << 8));
}

static void
up_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* ------------------------------------------------------------------ */
/* Varints (§11.2)                                                    */

uint32_t
up__rd_varint(struct up_rd *rd)
{
	uint32_t	 v = 0;
	uint8_t		 b;
	unsigned int	 i;

	for (i = 0; i < 5; i++) {
		b = up_rd_u8(rd);
		if (rd->err != UP_OK)
			return (0);
		/* The fifth byte holds bits 28-31 and ends the varint. */
		if (i == 4 && b > 0x0f) {
			rd->err = UP_ERANGE;
			return (0);
		}
		v |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) != 0)
			continue;
		/* Shortest form only: a last byte of 0 after the first. */
		if (i > 0 && b == 0) {
			rd->err = UP_ERANGE;
			return (0);
		}
		return (v);
	}
	/* Not reached: the fifth byte has no high bit (checked above). */
	rd->err = UP_ERANGE;
	return (0);
}

void
up__wr_varint(struct up_wr *wr, uint32_t v)
{
	while (v >= 0x80) {
		up_wr_u8(wr, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	up_wr_u8(wr, (uint8_t)v);
}

size_t
up__varint_len(uint32_t v)
{
	size_t		 n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return (n);
}

/* ------------------------------------------------------------------ */
/* What the form byte allows (§11.2, §11.8)                           */

/* The rules on X and M that need no field: UP_OK or UP_ERANGE. */
static int
up_c_form_rule(uint8_t type, uint8_t f)
{
	bool		 x = (f & UP_C_X) != 0;

	switch (type) {
	case UP_T_ANNOUNCE:
	case UP_T_DISCOVER:
	case UP_T_OFFER:
	case UP_T_XOR:
		return (x ? UP_ERANGE : UP_OK);
	case UP_T_SEG:
		/* A segmented message carries its own MIC; X: from a node. */
		return ((f & UP_CF_MIC) != 0 ? UP_ERANGE : UP_OK);
	case UP_T_RESULT_ACK:
		return (x ? UP_OK : UP_ERANGE);
	default:
		return (UP_OK);
	}
}

/* ------------------------------------------------------------------ */
/* Field rules, shared by encoder and decoder                         */

static int
up_c_check_body(const struct up_status_body *st)
{
	switch (st->form) {
	case UP_SB_BITMAP:
		if (st->nbits > 0 && st->bits == NULL)
			return (UP_EINVAL);
		return (UP_OK);
	case UP_SB_RUNS:
	case UP_SB_COUNTS:
		return (up__check_status_list(st));
	default:
		return (UP_ERANGE);
	}
}

static int
up_ccheck_msg(const struct up_msg *m)
{
	const struct up_cx *cx = &m->cx;
	int		 e;

	switch (m->type) {
	case UP_T_ANNOUNCE:
		if (cx->uplink_mtu < UP_C_MTU_MIN)
			return (UP_ERANGE);
		return (up__check_announce(&m->u.announce));
	case UP_T_DISCOVER:
		return (UP_OK);
	case UP_T_DATA:
	case UP_T_PARITY:
		if (m->u.data.index > UP_C_WIDE_MAX)
			return (UP_ERANGE);
		if (m->u.data.len == 0)
			return (UP_ELEN);
		if (m->u.data.data == NULL)
			return (UP_EINVAL);
		return (UP_OK);
	case UP_T_XOR:
		return (up__check_xor(&m->u.xor_));
	case UP_T_SEG:
		if (m->u.seg.n < 2 || m->u.seg.n > UP_SEG_NMAX ||
		    m->u.seg.i >= m->u.seg.n)
			return (UP_ERANGE);
		if (m->u.seg.len == 0)
			return (UP_ELEN);
		if (m->u.seg.chunk == NULL)
			return (UP_EINVAL);
		return (UP_OK);
	default:
		break;
	}

	/* The control messages name their session (§11.2). */
	if (m->session == 0)
		return (UP_ERANGE);
	switch (m->type) {
	case UP_T_OFFER:
		return (up__check_offer(&m->u.offer));
	case UP_T_ACCEPT:
		if (m->u.accept.code != UP_R_INITIAL)
			return (UP_OK);
		return (up_c_check_body(&m->u.accept.st));
	case UP_T_STATUS_REQ:
		if ((cx->req & UP_SQ_FORM) > UP_SB_COUNTS)
			return (UP_ERANGE);
		return (UP_OK);
	case UP_T_STATUS:
		if (m->u.status.state > UP_NS_FAILED)
			return (UP_ERANGE);
		return (up_c_check_body(&m->u.status.st));
	case UP_T_RESULT:
		if (m->u.result.state > UP_NS_FAILED)
			return (UP_ERANGE);
		if ((e = up__check_str(m->u.result.version, UP_VER_MAX,
		    false)) != UP_OK)
			return (e);
		return (UP_OK);
	case UP_T_RESULT_ACK:
		if (m->u.target.node_id == 0)
			return (UP_ERANGE);
		return (UP_OK);
	case UP_T_VERIFY:
	case UP_T_ACTIVATE:
	case UP_T_ABORT:
		return (UP_OK);
	}
	return (UP_ETYPE);
}

/* ------------------------------------------------------------------ */
/* Bodies (§11.5)                                                     */

static void
up_c_rd_node(struct up_rd *rd, uint8_t f, uint64_t *id)
{
	*id = 0;
	if ((f & UP_C_X) == 0)
		return;
	*id = up_rd_u64(rd);
	/* A node id that is present is never 0 (§11.2). */
	if (rd->err == UP_OK && *id == 0)
		rd->err = UP_ERANGE;
}

static void
up_c_rd_sched(struct up_rd *rd, struct up_cx *cx)
{
	cx->slots = up_rd_u16(rd);
	cx->slot_ms = up_rd_u16(rd);
}

/* A DATA index or PARITY code: 2 bytes, 3 exactly when it needs them. */
static uint32_t
up_c_rd_index(struct up_rd *rd, uint8_t f)
{
	uint32_t	 v;

	if ((f & UP_C_X) == 0)
		return (up_rd_u16(rd));
	v = up_rd_u16(rd);
	v |= (uint32_t)up_rd_u8(rd) << 16;
	if (rd->err == UP_OK && v <= UP_C_NARROW_MAX)
		rd->err = UP_ERANGE;
	return (v);
}

static void
up_c_rd_body_form(struct up_rd *rd, uint8_t form, struct up_status_body *st)
{
	if (rd->err != UP_OK)
		return;
	if (form > UP_SB_COUNTS) {
		rd->err = UP_ERANGE;
		return;
	}
	if (form == UP_SB_BITMAP)
		up__rd_status_body(rd, st);
	else
		up__rd_status_list(rd, form, st);
}

static void
up_c_rd_body(struct up_rd *rd, uint8_t f, struct up_msg *m)
{
	struct up_cx	*cx = &m->cx;
	uint8_t		 b;

	switch (m->type) {
	case UP_T_ANNOUNCE:
		cx->caps = up_rd_u8(rd);
		cx->fec_kmax = up_rd_u8(rd);
		cx->uplink_mtu = up_rd_u16(rd);
		cx->seg_max = up_rd_u16(rd);
		up__rd_announce(rd, &m->u.announce);
		break;
	case UP_T_DISCOVER:
		up_c_rd_sched(rd, cx);
		break;
	case UP_T_OFFER:
		m->session = up_rd_u32(rd);
		cx->tag = up_rd_u8(rd);
		cx->fec_k = up_rd_u8(rd);
		up_c_rd_sched(rd, cx);
		up_offer_rd(rd, &m->u.offer);
		break;
	case UP_T_ACCEPT:
		m->session = up_rd_u32(rd);
		up_c_rd_node(rd, f, &m->u.accept.node_id);
		m->u.accept.code = up_rd_u8(rd);
		if (rd->err != UP_OK || m->u.accept.code != UP_R_INITIAL)
			break;		/* a decline ends here */
		b = up_rd_u8(rd);
		cx->caps = b & 0x0f;
		up_c_rd_body_form(rd, b >> 4, &m->u.accept.st);
		break;
	case UP_T_DATA:
	case UP_T_PARITY:
		cx->tag = up_rd_u8(rd);
		m->u.data.index = up_c_rd_index(rd, f);
		/* The block is the rest of the body. */
		m->u.data.len = (uint16_t)up_rd_left(rd);
		m->u.data.data = up_rd_ptr(rd, m->u.data.len);
		break;
	case UP_T_STATUS_REQ:
		m->session = up_rd_u32(rd);
		cx->req = up_rd_u8(rd);
		up_c_rd_sched(rd, cx);
		up_c_rd_node(rd, f, &m->u.target.node_id);
		break;
	case UP_T_STATUS:
		m->session = up_rd_u32(rd);
		up_c_rd_node(rd, f, &m->u.status.node_id);
		b = up_rd_u8(rd);
		m->u.status.state = b & 0x0f;
		up_c_rd_body_form(rd, b >> 4, &m->u.status.st);
		break;
	case UP_T_VERIFY:
		m->session = up_rd_u32(rd);
		up_c_rd_sched(rd, cx);
		up_c_rd_node(rd, f, &m->u.target.node_id);
		break;
	case UP_T_ACTIVATE:
		m->session = up_rd_u32(rd);
		m->u.activate.delay_ms = up_rd_u32(rd);
		up_c_rd_node(rd, f, &m->u.activate.node_id);
		break;
	case UP_T_RESULT:
		m->session = up_rd_u32(rd);
		up_c_rd_node(rd, f, &m->u.result.node_id);
		m->u.result.state = up_rd_u8(rd);
		m->u.result.result = up_rd_u8(rd);
		up_rd_str(rd, m->u.result.version, UP_VER_MAX);
		break;
	case UP_T_RESULT_ACK:
		m->session = up_rd_u32(rd);
		m->u.target.node_id = up_rd_u64(rd);
		break;
	case UP_T_ABORT:
		m->session = up_rd_u32(rd);
		m->u.target.reason = up_rd_u8(rd);
		up_c_rd_node(rd, f, &m->u.target.node_id);
		break;
	case UP_T_XOR:
		cx->tag = up_rd_u8(rd);
		up__rd_xor(rd, &m->u.xor_);
		break;
	case UP_T_SEG:
		m->u.seg.from_node = (f & UP_C_X) != 0;
		m->u.seg.mtag = up_rd_u8(rd);
		m->u.seg.i = up_rd_u8(rd);
		m->u.seg.n = up_rd_u8(rd);
		if (rd->err != UP_OK)
			break;
		/* Check the counts before anything relies on them. */
		if (m->u.seg.n < 2 || m->u.seg.n > UP_SEG_NMAX ||
		    m->u.seg.i >= m->u.seg.n) {
			rd->err = UP_ERANGE;
			break;
		}
		m->u.seg.len = (uint16_t)up_rd_left(rd);
		m->u.seg.chunk = up_rd_ptr(rd, m->u.seg.len);
		break;
	default:
		rd->err = UP_ETYPE;
		break;
	}
}

static void
up_c_wr_node(struct up_wr *wr, uint64_t id)
{
	if (id != 0)
		up_wr_u64(wr, id);
}

static void
up_c_wr_sched(struct up_wr *wr, const struct up_cx *cx)
{
	up_wr_u16(wr, cx->slots);
	up_wr_u16(wr, cx->slot_ms);
}

static void
up_c_wr_index(struct up_wr *wr, uint32_t v)
{
	up_wr_u16(wr, (uint16_t)v);
	if (v > UP_C_NARROW_MAX)
		up_wr_u8(wr, (uint8_t)(v >> 16));
}

static void
up_c_wr_body_form(struct up_wr *wr, const struct up_status_body *st)
{
	if (st->form == UP_SB_BITMAP)
		up__wr_status_body(wr, st);
	else
		up__wr_status_list(wr, st);
}

/* The X bit a message's fields call for. */
static bool
up_c_x(const struct up_msg *m)
{
	switch (m->type) {
	case UP_T_DATA:
	case UP_T_PARITY:
		return (m->u.data.index > UP_C_NARROW_MAX);
	case UP_T_RESULT_ACK:
		return (true);
	case UP_T_SEG:
		return (m->u.seg.from_node);
	case UP_T_ACCEPT:
		return (m->u.accept.node_id != 0);
	case UP_T_STATUS:
		return (m->u.status.node_id != 0);
	case UP_T_ACTIVATE:
		return (m->u.activate.node_id != 0);
	case UP_T_RESULT:
		return (m->u.result.node_id != 0);
	case UP_T_STATUS_REQ:
	case UP_T_VERIFY:
	case UP_T_ABORT:
		return (m->u.target.node_id != 0);
	default:
		return (false);
	}
}

static void
up_c_wr_body(struct up_wr *wr, const struct up_msg *m)
{
	const struct up_cx *cx = &m->cx;

	switch (m->type) {
	case UP_T_ANNOUNCE:
		up_wr_u8(wr, cx->caps);
		up_wr_u8(wr, cx->fec_kmax);
		up_wr_u16(wr, cx->uplink_mtu);
		up_wr_u16(wr, cx->seg_max);
		up__wr_announce(wr, &m->u.announce);
		break;
	case UP_T_DISCOVER:
		up_c_wr_sched(wr, cx);
		break;
	case UP_T_OFFER:
		up_wr_u32(wr, m->session);
		up_wr_u8(wr, cx->tag);
		up_wr_u8(wr, cx->fec_k);
		up_c_wr_sched(wr, cx);
		up_offer_wr(wr, &m->u.offer);
		break;
	case UP_T_ACCEPT:
		up_wr_u32(wr, m->session);
		up_c_wr_node(wr, m->u.accept.node_id);
		up_wr_u8(wr, m->u.accept.code);
		if (m->u.accept.code != UP_R_INITIAL)
			break;
		up_wr_u8(wr, (uint8_t)((cx->caps & 0x0f) |
		    m->u.accept.st.form << 4));
		up_c_wr_body_form(wr, &m->u.accept.st);
		break;
	case UP_T_DATA:
	case UP_T_PARITY:
		up_wr_u8(wr, cx->tag);
		up_c_wr_index(wr, m->u.data.index);
		up_wr_bytes(wr, m->u.data.data, m->u.data.len);
		break;
	case UP_T_STATUS_REQ:
		up_wr_u32(wr, m->session);
		up_wr_u8(wr, cx->req);
		up_c_wr_sched(wr, cx);
		up_c_wr_node(wr, m->u.target.node_id);
		break;
	case UP_T_STATUS:
		up_wr_u32(wr, m->session);
		up_c_wr_node(wr, m->u.status.node_id);
		up_wr_u8(wr, (uint8_t)(m->u.status.state |
		    m->u.status.st.form << 4));
		up_c_wr_body_form(wr, &m->u.status.st);
		break;
	case UP_T_VERIFY:
		up_wr_u32(wr, m->session);
		up_c_wr_sched(wr, cx);
		up_c_wr_node(wr, m->u.target.node_id);
		break;
	case UP_T_ACTIVATE:
		up_wr_u32(wr, m->session);
		up_wr_u32(wr, m->u.activate.delay_ms);
		up_c_wr_node(wr, m->u.activate.node_id);
		break;
	case UP_T_RESULT:
		up_wr_u32(wr, m->session);
		up_c_wr_node(wr, m->u.result.node_id);
		up_wr_u8(wr, m->u.result.state);
		up_wr_u8(wr, m->u.result.result);
		up_wr_str(wr, m->u.result.version);
		break;
	case UP_T_RESULT_ACK:
		up_wr_u32(wr, m->session);
		up_wr_u64(wr, m->u.target.node_id);
		break;
	case UP_T_ABORT:
		up_wr_u32(wr, m->session);
		up_wr_u8(wr, m->u.target.reason);
		up_c_wr_node(wr, m->u.target.node_id);
		break;
	case UP_T_XOR:
		up_wr_u8(wr, cx->tag);
		up__wr_xor(wr, &m->u.xor_);
		break;
	case UP_T_SEG:
		up_wr_u8(wr, m->u.seg.mtag);
		up_wr_u8(wr, m->u.seg.i);
		up_wr_u8(wr, m->u.seg.n);
		up_wr_bytes(wr, m->u.seg.chunk, m->u.seg.len);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Frames                                                             */

int
up_cdecode(const uint8_t *buf, size_t len, struct up_msg *m)
{
	struct up_rd	 rd;
	size_t		 end, trail;
	uint8_t		 f, type;
	int		 e;

	if (buf == NULL || m == NULL)
		return (UP_EINVAL);
	if (len < 1)
		return (UP_ESHORT);
	f = buf[0];
	if ((f & UP_C_MARK) == 0)
		return (UP_EVERSION);
	if (len > UP_FRAME_MAX)
		return (UP_ELEN);
	trail = ((f & UP_CF_MIC) != 0 ? UP_C_MIC_LEN : 0) +
	    ((f & UP_CF_CRC) != 0 ? UP_C_CRC_LEN : 0);
	if (len < 1 + trail)
		return (UP_ESHORT);
	end = len;
	if ((f & UP_CF_CRC) != 0) {
		end -= UP_C_CRC_LEN;
		if (up_crc16_ccitt(UP_CRC16_INIT, buf, end) !=
		    up_le16(buf + end))
			return (UP_EBADCRC);
	}
	if ((f & UP_CF_MIC) != 0)
		end -= UP_C_MIC_LEN;
	if ((type = f & UP_C_TYPE) == 0)
		return (UP_ETYPE);
	if ((e = up_c_form_rule(type, f)) != UP_OK)
		return (e);

	memset(m, 0, sizeof(*m));
	m->type = type;
	m->form = UP_FORM_COMPACT;
	m->cx.cflags = f & (UP_CF_MIC | UP_CF_CRC);
	if ((f & UP_CF_MIC) != 0)
		memcpy(m->cx.mic, buf + end, UP_C_MIC_LEN);

	up_rd_init(&rd, buf + 1, end - 1);
	up_c_rd_body(&rd, f, m);
	if ((e = up_rd_err(&rd)) != UP_OK)
		return (e);
	if (up_rd_left(&rd) != 0)
		return (UP_ELEN);
	return (up_ccheck_msg(m));
}

int
up_decode_any(const uint8_t *buf, size_t len, struct up_msg *m)
{
	if (buf != NULL && len >= 1 && (buf[0] & UP_C_MARK) != 0)
		return (up_cdecode(buf, len, m));
	return (up_decode(buf, len, m));
}

/* Writes the trailers after `body' bytes of buf; returns the length. */
static int
up_c_trail(uint8_t *buf, size_t cap, size_t body, uint8_t cflags,
    const uint8_t *mic)
{
	size_t		 total = body;

	if ((cflags & UP_CF_MIC) != 0)
		total += UP_C_MIC_LEN;
	if ((cflags & UP_CF_CRC) != 0)
		total += UP_C_CRC_LEN;
	if (total > UP_FRAME_MAX)
		return (UP_ELEN);
	if (total > cap)
		return (UP_ENOSPC);
	if ((cflags & UP_CF_MIC) != 0) {
		memcpy(buf + body, mic, UP_C_MIC_LEN);
		body += UP_C_MIC_LEN;
	}
	if ((cflags & UP_CF_CRC) != 0)
		up_put_le16(buf + body, up_crc16_ccitt(UP_CRC16_INIT, buf,
		    body));
	return ((int)total);
}

/* DATA and PARITY around a block already at buf + up_cdata_off(). */
static int
up_c_seal(uint8_t *buf, size_t cap, uint8_t type, uint8_t cflags,
    const uint8_t *mic, uint8_t tag, uint32_t index, uint16_t len)
{
	size_t		 off;

	if (buf == NULL || (type != UP_T_DATA && type != UP_T_PARITY) ||
	    (off = up_cdata_off(index)) == 0 ||
	    (cflags & ~(UP_CF_MIC | UP_CF_CRC)) != 0)
		return (UP_EINVAL);
	if (len == 0 || off + len > UP_FRAME_MAX)
		return (UP_ELEN);
	if (off + len > cap)
		return (UP_ENOSPC);
	buf[0] = (uint8_t)(UP_C_MARK | cflags | type |
	    (index > UP_C_NARROW_MAX ? UP_C_X : 0));
	buf[1] = tag;
	up_put_le16(buf + 2, (uint16_t)index);
	if (index > UP_C_NARROW_MAX)
		buf[4] = (uint8_t)(index >> 16);
	return (up_c_trail(buf, cap, off + len, cflags, mic));
}

int
up__cencode(const struct up_msg *m, uint8_t *buf, size_t cap)
{
	struct up_wr	 wr;
	uint8_t		 f;
	size_t		 off;
	int		 e;

	if (m->type == 0 || m->type > UP_T_SEG)
		return (UP_ETYPE);
	if ((m->cx.cflags & ~(UP_CF_MIC | UP_CF_CRC)) != 0)
		return (UP_EINVAL);
	if ((e = up_ccheck_msg(m)) != UP_OK)
		return (e);
	f = (uint8_t)(UP_C_MARK | m->cx.cflags | m->type |
	    (up_c_x(m) ? UP_C_X : 0));
	if ((e = up_c_form_rule(m->type, f)) != UP_OK)
		return (e);

	if (m->type == UP_T_DATA || m->type == UP_T_PARITY) {
		/* memmove: the block may already sit in place (§4.5). */
		off = up_cdata_off(m->u.data.index);
		if (off + m->u.data.len > UP_FRAME_MAX)
			return (UP_ELEN);
		if (off + m->u.data.len > cap)
			return (UP_ENOSPC);
		memmove(buf + off, m->u.data.data, m->u.data.len);
		return (up_c_seal(buf, cap, m->type, m->cx.cflags, m->cx.mic,
		    m->cx.tag, m->u.data.index, m->u.data.len));
	}

	up_wr_init(&wr, buf, cap);
	up_wr_u8(&wr, f);
	up_c_wr_body(&wr, m);
	if ((e = up_wr_err(&wr)) != UP_OK) {
		/* A buffer of UP_FRAME_MAX always fits a valid frame. */
		if (e == UP_ENOSPC && cap >= UP_FRAME_MAX)
			return (UP_ELEN);
		return (e);
	}
	return (up_c_trail(buf, cap, wr.off, m->cx.cflags, m->cx.mic));
}

/* ------------------------------------------------------------------ */
/* The gateway's fast paths and sizes                                 */

size_t
up_cdata_off(uint32_t index)
{
	if (index <= UP_C_NARROW_MAX)
		return (UP_C_DATA_HDR);
	if (index <= UP_C_WIDE_MAX)
		return (UP_C_DATA_HDR + 1);
	return (0);
}

int
up_cseal(uint8_t *buf, size_t cap, uint8_t type, uint8_t cflags,
    uint8_t tag, uint32_t index, uint16_t len)
{
	/* There is no MIC to seal until §11.10 defines one. */
	if ((cflags & UP_CF_MIC) != 0)
		return (UP_EINVAL);
	return (up_c_seal(buf, cap, type, cflags, NULL, tag, index, len));
}

int
up_cparity_code(uint32_t row, uint32_t group, uint32_t ngroups,
    uint32_t *code)
{
	uint64_t	 c;

	if (row < 1 || row > UP_FEC_ROW_MAX || group >= ngroups)
		return (UP_ERANGE);
	c = (uint64_t)(row - 1) * ngroups + group;
	if (c > UP_C_WIDE_MAX)
		return (UP_ERANGE);
	*code = (uint32_t)c;
	return (UP_OK);
}

int
up_cparity_split(uint32_t code, uint32_t ngroups, uint32_t *row,
    uint32_t *group)
{
	uint32_t	 r;

	if (ngroups == 0)
		return (UP_ERANGE);
	r = code / ngroups + 1;
	if (r > UP_FEC_ROW_MAX)
		return (UP_ERANGE);
	*row = r;
	*group = code % ngroups;
	return (UP_OK);
}

int
up_cparity_parse(const struct up_msg *m, uint16_t k, uint32_t nblocks,
    struct up_fec_parity *p)
{
	uint32_t	 row, group;

	if (m == NULL || p == NULL || m->type != UP_T_PARITY ||
	    m->form != UP_FORM_COMPACT)
		return (UP_EINVAL);
	if (k == 0 || nblocks == 0)
		return (UP_ERANGE);
	if (up_cparity_split(m->u.data.index, up_fec_ngroups(nblocks, k),
	    &row, &group) != UP_OK)
		return (UP_ERANGE);
	p->row = row;
	p->group = group;
	p->k = k;
	p->len = m->u.data.len;
	p->data = m->u.data.data;
	return (UP_OK);
}

uint16_t
up_cblock_size(uint32_t size, uint32_t mtu, uint8_t cflags)
{
	uint32_t	 trail = 0, hdr, bs;

	if (mtu > UP_FRAME_MAX)
		mtu = UP_FRAME_MAX;
	if ((cflags & UP_CF_MIC) != 0)
		trail += UP_C_MIC_LEN;
	if ((cflags & UP_CF_CRC) != 0)
		trail += UP_C_CRC_LEN;
	if (size == 0)
		return (0);
	/* Try the 2-byte index first; a big package needs the 3-byte one. */
	for (hdr = UP_C_DATA_HDR; hdr <= UP_C_DATA_HDR + 1; hdr++) {
		if (mtu <= hdr + trail)
			return (0);
		bs = mtu - hdr - trail;
		if (bs > UINT16_MAX)
			bs = UINT16_MAX;
		if (up_nblocks(size, (uint16_t)bs) - 1 <=
		    (hdr == UP_C_DATA_HDR ? UP_C_NARROW_MAX : UP_C_WIDE_MAX))
			return ((uint16_t)bs);
	}
	return (0);
}

/* ------------------------------------------------------------------ */
/* Session tags (§11.4)                                               */

int
up_ctags_init(struct up_ctags *t, uint8_t lo, uint8_t hi, uint8_t next)
{
	if (t == NULL || lo > hi)
		return (UP_EINVAL);
	memset(t, 0, sizeof(*t));
	t->lo = lo;
	t->hi = hi;
	t->next = next < lo || next > hi ? lo : next;
	return (UP_OK);
}

static bool
up_ctags_used(const struct up_ctags *t, uint8_t tag)
{
	return ((t->used[tag / 8] >> (tag % 8)) & 1);
}

int
up_ctags_take(struct up_ctags *t, uint32_t now_s)
{
	unsigned int	 i, span = (unsigned int)(t->hi - t->lo) + 1;
	uint8_t		 tag = t->next;

	for (i = 0; i < span; i++) {
		/* Wrap-safe: free_at is "due" once now_s passed it. */
		if (!up_ctags_used(t, tag) &&
		    now_s - t->free_at[tag] < 0x80000000u) {
			t->used[tag / 8] |= (uint8_t)(1u << (tag % 8));
			t->next = tag == t->hi ? t->lo : (uint8_t)(tag + 1);
			return (tag);
		}
		tag = tag == t->hi ? t->lo : (uint8_t)(tag + 1);
	}
	return (UP_ENOSPC);
}

void
up_ctags_hold(struct up_ctags *t, uint8_t tag)
{
	t->used[tag / 8] |= (uint8_t)(1u << (tag % 8));
}

void
up_ctags_release(struct up_ctags *t, uint8_t tag, uint32_t now_s,
    uint32_t stale_s)
{
	t->used[tag / 8] &= (uint8_t)~(1u << (tag % 8));
	/* A node may hold the session until it goes stale. */
	t->free_at[tag] = now_s + stale_s;
}
