/*
 * cframe.c: UP's compact form on the links that use it (docs/up-
 * protocol.md §11; docs/engine.md "Link shapes").
 *
 * A link whose transport page makes compact frames its default
 * (TP_CAP_COMPACT: every link but the LAN) carries its sessions in
 * compact frames: the same messages, with short headers, a one-byte
 * session tag in DATA, run lists for status, and segmentation for what
 * does not fit.  This file holds what is particular to that form, so the
 * phases, the members served alone and the tx loop stay form-agnostic:
 *
 *  - the session's form, its trailers (a CRC-16 unless the link checks
 *    its frames itself, TP_CAP_FCS, §11.3) and its tag, taken from the
 *    link's tag counter when it opens and given back when it closes
 *    (up_ctags, §11.4);
 *  - control messages in the session's form: an OFFER with its tag, a
 *    STATUS_REQ asking for a run list, the full form's answer window as
 *    a reply schedule of one-millisecond slots (the same thing, §11.9);
 *  - segmentation at send time (§11.8): a message larger than what its
 *    destination takes now (a BLE connection before its MTU exchange)
 *    goes in SEG frames, so a session's block size, fixed for its life
 *    because nodes resume only with it, never depends on one
 *    connection's MTU: on ATT's 20 bytes a 240-byte block goes in 16
 *    segments of 16 bytes, about what 16-byte blocks would cost;
 *  - reassembly of what nodes send in segments, one message per peer
 *    address (a link without addresses: one for the link), and node ids
 *    from the link address where the node leaves them out (§11.2).
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

bool
eng__link_compact(const struct eng_link *l)
{
	return ((l->caps.flags & TP_CAP_COMPACT) != 0);
}

uint8_t
eng__link_cflags(const struct eng_link *l)
{
	return ((l->caps.flags & TP_CAP_FCS) != 0 ? 0 : UP_CF_CRC);
}

void
eng__cf_link_open(struct eng_link *l)
{
	uint64_t	 now = eng__now_us(l->e);
	uint8_t		 next;

	/*
	 * Tags in turn from a counter (§11.4).  The daemon persists it and
	 * sets it back when the link opens (eng_link_set_ctag_next); until
	 * then it starts somewhere else each time.
	 */
	next = (uint8_t)(now ^ now >> 8 ^ now >> 16 ^ now >> 24);
	(void)up_ctags_init(&l->ctags, 1, 255, next != 0 ? next : 1);
	l->seg_mtag = (uint8_t)(now >> 4);
}

void
eng__cf_link_close(struct eng_link *l)
{
	free(l->seg_msg);
	free(l->seg_frame);
	free(l->seg_rxbuf);
	l->seg_msg = l->seg_frame = l->seg_rxbuf = NULL;
}

void
eng__cf_open(struct eng_session *s)
{
	struct eng_link	*l = s->l;
	int		 tag;

	s->compact = eng__link_compact(l);
	s->cflags = eng__link_cflags(l);
	if (!s->compact)
		return;
	if (s->tagged) {
		/* Resumed with its tag: in use again (§11.4). */
		up_ctags_hold(&l->ctags, s->tag);
		return;
	}
	if ((tag = up_ctags_take(&l->ctags, (uint32_t)(eng__now_ms(s->e) /
	    1000))) < 0) {
		/* Every tag in use: full frames, which §11 nodes decode. */
		eng__warnx("session %08x: %s has no free session tag: full "
		    "frames", s->id, l->name);
		s->compact = false;
		return;
	}
	s->tag = (uint8_t)tag;
	s->tagged = true;
}

void
eng__cf_close(struct eng_session *s)
{
	uint32_t	 stale;

	if (!s->tagged || s->l == NULL)
		return;
	stale = s->offer.deadline_s != 0 ? s->offer.deadline_s :
	    UP_NODE_STALE_S;
	up_ctags_release(&s->l->ctags, s->tag, (uint32_t)(eng__now_ms(s->e) /
	    1000), stale);
	s->tagged = false;
}

/* ------------------------------------------------------------------ */
/* Messages and blocks                                                  */

/*
 * A request's reply schedule (§11.9): on a slow link the one reply.c
 * sized to the nodes asked and the link (the session's, or the link's
 * for DISCOVER); elsewhere the full form's answer window as
 * one-millisecond slots (the same thing).  One node asked answers at
 * once.
 */
static void
cf_window(struct up_msg *m, uint16_t window_ms, bool targeted,
    uint16_t slots, uint16_t slot_ms)
{
	if (targeted) {
		m->cx.slots = m->cx.slot_ms = 0;
		return;
	}
	if (slot_ms != 0) {
		m->cx.slots = slots;
		m->cx.slot_ms = slot_ms;
		return;
	}
	m->cx.slots = window_ms;
	m->cx.slot_ms = m->cx.slots != 0 ? 1 : 0;
}

void
eng__cf_msg(struct eng_link *l, struct eng_session *s, const struct up_msg *in,
    struct up_msg *out)
{
	if (out != in)
		*out = *in;
	if (in->form == UP_FORM_COMPACT)
		return;		/* the caller chose its compact fields */
	if (!(s != NULL ? s->compact : eng__link_compact(l))) {
		out->form = UP_FORM_FULL;
		return;
	}
	out->form = UP_FORM_COMPACT;
	memset(&out->cx, 0, sizeof(out->cx));
	out->cx.cflags = s != NULL ? s->cflags : eng__link_cflags(l);
	switch (in->type) {
	case UP_T_OFFER:
		out->cx.tag = s != NULL ? s->tag : 0;
		out->cx.fec_k = s != NULL && s->fec_k <= UINT8_MAX ?
		    (uint8_t)s->fec_k : 0;
		if (s != NULL && s->sched_slot_ms != 0)
			cf_window(out, 0, false, s->sched_slots,
			    s->sched_slot_ms);
		break;
	case UP_T_DISCOVER:
		cf_window(out, in->u.discover.window_ms, false, l->disc_slots,
		    l->disc_slot_ms);
		break;
	case UP_T_STATUS_REQ:
		/*
		 * Run lists, a member's exact needed set, or count lists
		 * from the nodes missing something where uplink airtime is
		 * dear (reply.c, §11.7); a node asked alone answers even if
		 * it misses nothing (§11.5.7).
		 */
		out->cx.req = s != NULL && s->sched_req != 0 ? s->sched_req :
		    UP_SB_RUNS;
		if (in->u.target.node_id != 0)
			out->cx.req &= (uint8_t)~UP_SQ_MISSING;
		cf_window(out, in->u.target.window_ms,
		    in->u.target.node_id != 0, s != NULL ? s->sched_slots : 0,
		    s != NULL ? s->sched_slot_ms : 0);
		break;
	case UP_T_VERIFY:
		cf_window(out, in->u.target.window_ms,
		    in->u.target.node_id != 0, s != NULL ? s->sched_slots : 0,
		    s != NULL ? s->sched_slot_ms : 0);
		break;
	default:
		break;
	}
}

size_t
eng__data_off(const struct eng_session *s, uint32_t i)
{
	return (s->compact ? up_cdata_off(i) : UP_DATA_OFF);
}

size_t
eng__cf_seal(struct eng_session *s, uint8_t *buf, size_t cap, uint8_t type,
    uint32_t i, size_t len)
{
	int	 rc;

	rc = up_cseal(buf, cap, type, s->cflags, s->tag, i, (uint16_t)len);
	if (rc <= 0) {
		eng__warnx("session %08x: block %u: %s", s->id, i,
		    up_strerror(rc));
		return (0);
	}
	return ((size_t)rc);
}

/* ------------------------------------------------------------------ */
/* Segmentation (§11.8)                                                 */

bool
eng__cf_segment(struct eng_link *l, size_t mtu)
{
	size_t		 len = l->pend_len;
	uint16_t	 crc;
	int		 n;

	if (l->pend == NULL || len == 0 || (l->pend[0] & UP_C_MARK) == 0 ||
	    (l->pend[0] & UP_C_TYPE) == UP_T_SEG || len > UP_FRAME_MAX)
		return (false);
	if (l->seg_msg == NULL) {
		l->seg_msg = eng__xcalloc(1, UP_FRAME_MAX + UP_C_CRC_LEN);
		l->seg_frame = eng__xcalloc(1, UP_FRAME_MAX);
	}
	memcpy(l->seg_msg, l->pend, len);
	if ((l->seg_msg[0] & UP_CF_CRC) == 0) {
		/* A segmented message carries its CRC-16 on any link. */
		l->seg_msg[0] |= UP_CF_CRC;
		crc = up_crc16_ccitt(UP_CRC16_INIT, l->seg_msg, len);
		l->seg_msg[len] = (uint8_t)crc;
		l->seg_msg[len + 1] = (uint8_t)(crc >> 8);
		len += UP_C_CRC_LEN;
	}
	if ((n = up_seg_count(len, mtu, eng__link_cflags(l))) < 2) {
		eng__debug("%s: a %zu-byte message cannot go in segments of "
		    "%zu bytes", l->name, len, mtu);
		return (false);
	}
	l->seg_len = len;
	l->seg_n = (uint8_t)n;
	l->seg_i = 0;
	l->seg_mtag++;	/* a new message, a new tag */
	l->seg_flen = mtu;	/* every segment for the same mtu */
	return (true);
}

/* ------------------------------------------------------------------ */
/* What nodes send                                                      */

bool
eng__cf_reassemble(struct eng_link *l, const struct tp_addr *src,
    const struct up_msg *m, uint8_t *out, size_t *len)
{
	struct up_seg_rx	*rx;
	struct eng_peer		*p;
	int			 rc;

	if (!m->u.seg.from_node)
		return (false);	/* a gateway's, heard back */
	l->rx_segments++;
	if (src != NULL && src->len > 0 &&
	    (src->flags & TP_ADDR_F_BROADCAST) == 0 &&
	    (p = eng__peer_get(l, src)) != NULL) {
		if (p->seg_buf == NULL) {
			p->seg_buf = eng__xcalloc(1, UP_FRAME_MAX);
			up_seg_rx_init(&p->seg, p->seg_buf, UP_FRAME_MAX);
		}
		rx = &p->seg;
	} else {
		/* No addresses: the nodes answer in slots, one at a time. */
		if (l->seg_rxbuf == NULL) {
			l->seg_rxbuf = eng__xcalloc(1, UP_FRAME_MAX);
			up_seg_rx_init(&l->seg_rx, l->seg_rxbuf,
			    UP_FRAME_MAX);
		}
		rx = &l->seg_rx;
	}
	if ((rc = up_seg_rx_put(rx, &m->u.seg)) <= 0) {
		if (rc < 0)
			eng__debug("%s: a segmented message dropped: %s",
			    l->name, up_strerror(rc));
		return (false);
	}
	memcpy(out, rx->buf, (size_t)rc);
	*len = (size_t)rc;
	return (true);
}

void
eng__cf_node_id(struct eng_link *l, const struct tp_addr *src,
    struct up_msg *m)
{
	struct eng_session	*s;
	struct eng_member	*mb;
	uint64_t		*id;

	if (m->form != UP_FORM_COMPACT)
		return;
	switch (m->type) {
	case UP_T_ACCEPT:
		id = &m->u.accept.node_id;
		break;
	case UP_T_STATUS:
		id = &m->u.status.node_id;
		break;
	case UP_T_RESULT:
		id = &m->u.result.node_id;
		break;
	default:
		return;
	}
	if (*id != 0 || (s = eng_session_find(l->e, m->session)) == NULL ||
	    (mb = eng__member_by_addr(s, src)) == NULL)
		return;
	*id = mb->node;
}

bool
eng__status_ok(const struct eng_session *s, const struct up_status_body *st,
    uint32_t *end)
{
	uint32_t	 ng = s->fec_k != 0 ? s->fec_ngroups : 0;

	if (up_status_check(st, s->nblocks, ng) != UP_OK)
		return (false);
	*end = up_status_described(st, s->nblocks, ng);
	return (true);
}
