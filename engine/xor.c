/*
 * xor.c: XOR repair frames of a session (docs/engine.md "XOR repair",
 * docs/up-protocol.md §4.15).  xrepair.c plans a round; this file feeds
 * the plan from the status round, turns the plan into the repair pass
 * (XOR frames first, then as DATA only what the plan does not cover),
 * and builds each XOR frame in place from the source.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

void
eng__xr_free(struct eng_session *s)
{
	xr__free(s->xr);
	free(s->xr_dneed_buf);
	free(s->xr_buf);
	s->xr = NULL;
	s->xr_dneed_buf = s->xr_buf = NULL;
	s->xr_nframes = s->xr_next = 0;
	s->xr_round = false;
}

/*
 * XOR frames carry the block list in front of the data, so they need
 * room the DATA frame leaves: at least the first index and one gap, in
 * the link's mtu and every member's max_frame.
 */
void
eng__xr_open(struct eng_session *s)
{
	struct eng_member	*m;
	size_t			 mtu, fixed;

	eng__xr_free(s);
	if (!eng__params(s)->xor_repair || s->l == NULL)
		return;
	mtu = eng__link_mtu(s->l);
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->max_frame != 0 && m->max_frame < mtu)
			mtu = m->max_frame;
	fixed = UP_OVERHEAD + 1 + (size_t)s->block_size;
	if (mtu < fixed + 5) {
		eng__debug("session %08x: no XOR repair: %u-byte blocks leave "
		    "no room for a block list", s->id, s->block_size);
		return;
	}
	s->xr_room = mtu - fixed;
	s->xr = xr__new(s->nblocks, ENG_XR_PAIRS);
	s->xr_dneed_buf = eng__xcalloc(1, up_bitmap_bytes(s->nblocks));
	up_bitmap_init(&s->xr_dneed, s->xr_dneed_buf, s->nblocks);
	s->xr_buf = eng__xcalloc(1, s->block_size);
}

/*
 * A status round begins.  XOR frames are planned only once the whole
 * package may be sent (a frame may name any block).
 */
void
eng__xr_round(struct eng_session *s)
{
	struct eng_member	*m;

	s->xr_nframes = s->xr_next = 0;
	s->xr_round = false;
	if (s->xr == NULL)
		return;
	xr__reset(s->xr);
	up_bitmap_clear_all(&s->xr_dneed);
	s->xr_over = false;
	s->xr_round = s->src.limit(s->src.arg) >= s->offer.size;
	TAILQ_FOREACH(m, &s->members, entry)
		m->xr_added = false;
}

static void
xor_dneed_cb(void *arg, uint32_t i)
{
	struct eng_session	*s = arg;

	if (i < s->nblocks)
		up_bitmap_set(&s->xr_dneed, i);
}

/*
 * A status body during a round that plans XOR: the node's first answer
 * goes into the plan, unless it made no progress in the last round (a
 * node without XOR support, docs/up-protocol.md §4.15: its blocks go as
 * DATA).  What the plan cannot cover goes as DATA: everything of a node
 * outside the plan, and the blocks past a first report's slice.
 */
void
eng__xr_note(struct eng_session *s, struct eng_member *m,
    const struct up_status_body *st, bool first, uint32_t end)
{
	uint32_t	 i;

	if (!s->xr_round || s->phase != ENG_P_STATUS)
		return;
	if (m->xr_added)
		return;
	if (!s->xr_over && m->stall == 0) {
		if (xr__add(s->xr, st) == 0)
			m->xr_added = true;
		else {
			eng__debug("session %08x: XOR plan full, this round "
			    "resends blocks", s->id);
			s->xr_over = true;
		}
	}
	/* A slice of no bits still says first_missing is missing (§4.7). */
	if (!m->xr_added || (st->form == UP_SB_BITMAP && st->nbits == 0)) {
		xor_dneed_cb(s, st->first_missing);
		up_status_foreach_missing(st, s->nblocks, xor_dneed_cb, s);
	}
	/* end: what the body describes (a slice, or a cut run list). */
	if (first)
		for (i = end; i < s->nblocks; i++)
			up_bitmap_set(&s->xr_dneed, i);
}

/*
 * A repair pass begins: pack the round's pairs into XOR frames.  The
 * pass then sends those frames and, as DATA, only the blocks the plan
 * does not cover.  Returns false to repair this round as before (union
 * DATA and parity).
 */
bool
eng__xr_plan(struct eng_session *s)
{
	const uint32_t	*idx;
	size_t		 i;
	uint32_t	 b;
	uint8_t		 n;

	if (!s->xr_round || s->xr_over || xr__npairs(s->xr) == 0)
		return (false);
	s->xr_nframes = xr__build(s->xr, s->xr_room);
	if (s->xr_nframes == 0)
		return (false);
	for (i = 0; i < s->xr_nframes; i++) {
		idx = xr__frame(s->xr, i, &n);
		if (n == 1)	/* a frame of one block is a DATA frame */
			up_bitmap_set(&s->xr_dneed, idx[0]);
	}
	memcpy(s->needed_buf, s->xr_dneed_buf, up_bitmap_bytes(s->nblocks));
	s->nneeded = up_bitmap_count(&s->needed);
	for (b = 0; b < s->fec_ngroups; b++)
		s->fec_pend[b] = 0;
	s->xr_next = 0;
	eng__debug("session %08x: XOR repair: %zu pairs in %zu frames, %u "
	    "blocks as DATA", s->id, xr__npairs(s->xr), s->xr_nframes,
	    s->nneeded);
	return (true);
}

/*
 * The next XOR frame of the pass, built in place: the blocks are read
 * from the source and XORed into the frame.  Returns the frame length,
 * 0 when none is left, or (size_t)-1 after a read error.
 */
size_t
eng__fill_xor(struct eng_session *s, uint8_t *buf, size_t cap)
{
	const uint32_t	*idx;
	size_t		 off, blen, len, j;
	uint8_t		 n;
	int		 rc;

	while (s->xr_next < s->xr_nframes) {
		idx = xr__frame(s->xr, s->xr_next++, &n);
		if (n < 2)
			continue;	/* went as DATA */
		off = up_xor_data_off(n, idx);
		/* Two blocks or more: one is a whole block (§4.15). */
		len = s->block_size;
		if (off == 0 || off + len + UP_CRC_LEN > cap) {
			eng__warnx("session %08x: XOR frame does not fit, "
			    "XOR off", s->id);
			eng__xr_free(s);
			return (0);
		}
		memset(buf + off, 0, len);
		for (j = 0; j < n; j++) {
			blen = eng__block_len(s, idx[j]);
			if (!eng__read(s, (uint64_t)idx[j] * s->block_size,
			    s->xr_buf, blen))
				return ((size_t)-1);
			up_fec_xor(buf + off, s->xr_buf, blen);
		}
		rc = up_xor_seal(buf, cap, UP_F_REPAIR, s->id, n, idx,
		    (uint16_t)len);
		if (rc <= 0) {
			eng__warnx("session %08x: XOR frame: %s", s->id,
			    up_strerror(rc));
			continue;
		}
		s->xor_frames++;
		return ((size_t)rc);
	}
	return (0);
}
