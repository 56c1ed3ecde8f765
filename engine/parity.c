/*
 * parity.c: TS004 parity repair of a session (docs/up-protocol.md §4.6,
 * docs/engine.md "Parity repair").
 *
 * Per group of fec_k blocks the session keeps the next unused TS004 row
 * (rows are never repeated within a session), the rows the current round
 * asks for (fec_plan: the maximum over the nodes' reports of the rows
 * that node needs, computed exactly with up_fec_rows_needed() from its
 * missing blocks, since the rows are known in advance), the rows still to
 * send in this pass, and flags.  About 7 bytes per group: 23 KB for
 * 300 MB in 1,400-byte blocks and k = 64.
 *
 * Proactive parity: fec_proactive rows per group right after its DATA in
 * the first pass, "auto" from the loss the nodes reported after earlier
 * first passes on the same link (the link's loss_ppm).
 */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* The link's loss estimate, or 0 before the link is known. */
static uint32_t
parity_loss(const struct eng_session *s)
{
	return (s->l != NULL ? s->l->loss_ppm : 0);
}

static double
parity_sqrt(double v)
{
	double	 x;
	int	 i;

	if (v <= 0)
		return (0);
	for (x = v + 1, i = 0; i < 30; i++)	/* Newton */
		x = (x + v / x) / 2;
	return (x);
}

static uint16_t
parity_ceil(double r, uint16_t k)
{
	if (r <= 0)
		return (0);
	if (r > k)
		r = k;
	return ((uint16_t)r + ((double)(uint16_t)r < r));
}

/*
 * The first parity batch of a group of k blocks on a slow link, from
 * the loss the nodes reported last time (research/transports.md §1.2):
 * a node needs N99 = (k + 7 + 2.33 sqrt(k p / (1 - p))) / (1 - p)
 * frames of the group to decode with 99 % probability (TS004 needs on
 * average k + 2 received, k + 7 for 99 %), so the batch is N99 - k
 * rows.  0 while no loss was measured: a clean link gets no parity
 * before a node asks for it.
 */
uint16_t
eng__fec_rows_n99(uint16_t k, uint32_t loss_ppm)
{
	double	 p = loss_ppm / 1e6;

	if (k == 0 || loss_ppm == 0 || p >= 0.5)
		return (p >= 0.5 ? k : 0);
	return (parity_ceil((k + 7 + 2.33 * parity_sqrt(k * p / (1 - p))) /
	    (1 - p) - k, k));
}

/*
 * A whole percent (the profile's) of fec_k, rounded up; auto: the N99
 * batch on a slow link, where every repair round costs a status round
 * of airtime, else research/multicast-delta.md §7.1's lighter
 * ceil(k p + 2 sqrt(k p)) (a LAN round costs milliseconds).
 */
uint16_t
eng__fec_proactive(const struct eng_session *s)
{
	int		 pct = eng__params(s)->fec_proactive;
	double		 kp;

	if (pct != ENG_FEC_AUTO) {
		if (pct <= 0)
			return (0);
		return ((uint16_t)((s->fec_k * pct + 99) / 100));
	}
	if (s->l != NULL && s->l->pf.slow)
		return (eng__fec_rows_n99(s->fec_k, parity_loss(s)));
	kp = (double)s->fec_k * parity_loss(s) / 1e6;
	if (kp <= 0)
		return (0);
	return (parity_ceil(kp + 2 * parity_sqrt(kp), s->fec_k));
}

/*
 * The proactive rows of group g: the session's figure; with the N99
 * batch (auto on a slow link) a short last group gets the batch of its
 * own length (30 blocks need fewer rows than 64).
 */
uint16_t
eng__fec_pro_group(const struct eng_session *s, uint32_t g)
{
	uint16_t	 m = up_fec_group_len(s->nblocks, s->fec_k, g);

	if (s->fec_pro != 0 && m < s->fec_k &&
	    eng__params(s)->fec_proactive == ENG_FEC_AUTO && s->l != NULL &&
	    s->l->pf.slow)
		return (eng__fec_rows_n99(m, parity_loss(s)));
	return (s->fec_pro);
}

void
eng__fec_free(struct eng_session *s)
{
	free(s->fec_next);
	free(s->fec_plan);
	free(s->fec_pend);
	free(s->fec_flags);
	free(s->fec_buf);
	s->fec_next = s->fec_plan = s->fec_pend = NULL;
	s->fec_flags = s->fec_buf = NULL;
	s->fec_k = 0;
	s->fec_ngroups = 0;
}

/*
 * Parity only when a PARITY frame fits the link and every member's
 * max_frame.  A full PARITY is 6 bytes longer than DATA (the block size
 * leaves room for it where the mtu sets it, session.c); a compact one
 * has DATA's header (§11.5.6: the group size travels in the OFFER), so
 * it fits wherever a block does, with k at most 255.
 */
void
eng__fec_open(struct eng_session *s)
{
	const struct eng_params	*p = eng__params(s);
	struct eng_member	*m;
	uint32_t		 mtu, need, g, k;

	eng__fec_free(s);
	if (!p->fec || s->l == NULL)
		return;
	k = p->fec_k != 0 ? p->fec_k : 64;
	if (k > UP_FEC_K_MAX)
		k = UP_FEC_K_MAX;
	if (s->compact && k > UINT8_MAX)
		k = UINT8_MAX;
	mtu = (uint32_t)eng__link_mtu(s->l);
	need = (uint32_t)s->block_size + (s->compact ?
	    (uint32_t)(mtu - up_cblock_size(s->offer.size, mtu, s->cflags)) :
	    UP_PARITY_OVERHEAD);
	if (need > mtu) {
		eng__info("session %08x: no parity: %u-byte blocks leave no "
		    "room for its header", s->id, s->block_size);
		return;
	}
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->max_frame != 0 && m->max_frame < need)
			return;
	s->fec_k = (uint16_t)k;
	s->fec_ngroups = up_fec_ngroups(s->nblocks, s->fec_k);
	s->fec_next = eng__xcalloc(s->fec_ngroups, sizeof(*s->fec_next));
	s->fec_plan = eng__xcalloc(s->fec_ngroups, sizeof(*s->fec_plan));
	s->fec_pend = eng__xcalloc(s->fec_ngroups, sizeof(*s->fec_pend));
	s->fec_flags = eng__xcalloc(s->fec_ngroups, 1);
	s->fec_buf = eng__xcalloc(1, s->block_size);
	for (g = 0; g < s->fec_ngroups; g++)
		s->fec_next[g] = 1;
	s->fec_scan = 0;
}

/* A node's missing blocks of one group, gathered from a status slice. */
struct parity_acc {
	struct eng_session	*s;
	uint32_t		 g;		/* UINT32_MAX: none yet */
	uint8_t			 bits[UP_FEC_VEC_BYTES];
};

/* What one node misses in group g: raise the group's plan to cover it. */
static void
parity_flush(struct parity_acc *a)
{
	struct eng_session	*s = a->s;
	uint32_t		 g = a->g;
	uint16_t		 m;
	unsigned int		 i, l = 0;
	int			 need;

	if (g == UINT32_MAX || g >= s->fec_ngroups)
		return;
	m = up_fec_group_len(s->nblocks, s->fec_k, g);
	for (i = 0; i < UP_FEC_VEC_BYTES; i++)
		l += (unsigned int)__builtin_popcount(a->bits[i]);
	if (l == 0 || (s->fec_flags[g] & ENG_FEC_DATA) != 0)
		goto out;
	/*
	 * Still missing after a parity round: the node lost rows or has no
	 * FEC (it ignores PARITY, §4.6).  Resend the blocks this time.  A
	 * node missing more than half the group costs about as much parity
	 * as data: resend too.
	 */
	if ((s->fec_flags[g] & ENG_FEC_PREV) != 0 || l > m / 2U) {
		s->fec_flags[g] |= ENG_FEC_DATA;
		goto out;
	}
	/* The rows are known in advance: count what this node needs. */
	need = up_fec_rows_needed(m, a->bits, s->fec_next[g], 2U * m + 8);
	if (need < 0 || (uint32_t)s->fec_next[g] + (uint32_t)need >
	    UP_FEC_ROW_MAX)
		s->fec_flags[g] |= ENG_FEC_DATA;
	else if (need > s->fec_plan[g])
		s->fec_plan[g] = (uint16_t)need;
out:
	memset(a->bits, 0, sizeof(a->bits));
}

static void
parity_note_cb(void *arg, uint32_t i)
{
	struct parity_acc	*a = arg;
	struct eng_session	*s = a->s;
	uint32_t		 g = i / s->fec_k, b = i % s->fec_k;

	if (g != a->g) {
		parity_flush(a);
		a->g = g;
	}
	a->bits[b / 8] |= (uint8_t)(1u << (b % 8));
}

/*
 * A node's status body: per group, what it misses within the slice.  On
 * its first report everything past the slice counts as missing, and those
 * groups get DATA (the parity for a whole group costs more than it).
 */
void
eng__fec_note(struct eng_session *s, const struct up_status_body *st,
    bool first, uint32_t end)
{
	struct parity_acc	 a;
	uint32_t		 g;

	if (s->fec_k == 0 || st->first_missing >= s->nblocks)
		return;
	memset(&a, 0, sizeof(a));
	a.s = s;
	a.g = UINT32_MAX;
	parity_note_cb(&a, st->first_missing);
	up_status_foreach_missing(st, s->nblocks, parity_note_cb, &a);
	parity_flush(&a);
	/* end: what the body describes (a slice, or a cut run list). */
	if (first && end < s->nblocks)
		for (g = end / s->fec_k; g < s->fec_ngroups; g++)
			s->fec_flags[g] |= ENG_FEC_DATA;
}

/* A status round begins: last pass's parity marks, a fresh plan. */
void
eng__fec_round(struct eng_session *s)
{
	uint32_t	 g;

	s->fec_counted = false;
	for (g = 0; g < s->fec_ngroups; g++) {
		s->fec_flags[g] = (s->fec_flags[g] & ENG_FEC_SENT) != 0 ?
		    ENG_FEC_PREV : 0;
		s->fec_plan[g] = 0;
	}
}

/*
 * A repair pass begins: a group whose plan costs fewer frames than
 * resending its needed blocks gets parity instead, plus a share for the
 * loss of the parity frames themselves (the measured loss).
 */
void
eng__fec_plan(struct eng_session *s)
{
	uint32_t	 g, first, i, nunion, rows, len;

	for (g = 0; g < s->fec_ngroups; g++) {
		s->fec_pend[g] = 0;
		if ((s->fec_flags[g] & ENG_FEC_DATA) != 0) {
			if ((s->fec_flags[g] & ENG_FEC_PREV) != 0)
				s->fec_fallbacks++;
			continue;
		}
		if (s->fec_plan[g] == 0)
			continue;
		first = g * s->fec_k;
		len = up_fec_group_len(s->nblocks, s->fec_k, g);
		nunion = 0;
		for (i = first; i < first + len; i++)
			if (up_bitmap_get(&s->needed, i))
				nunion++;
		rows = s->fec_plan[g];
		rows += (uint32_t)(((uint64_t)rows * parity_loss(s) +
		    500000) / 1000000);
		if (s->fec_next[g] + rows - 1 > UP_FEC_ROW_MAX)
			continue;
		/*
		 * From count lists (reply.c) the blocks are unknown: parity
		 * is the only repair.  Otherwise parity where it is cheaper
		 * than resending the blocks.
		 */
		if ((s->fec_flags[g] & ENG_FEC_COUNT) == 0 &&
		    (nunion == 0 || rows >= nunion))
			continue;
		for (i = first; i < first + len; i++)
			if (up_bitmap_get(&s->needed, i)) {
				up_bitmap_clear(&s->needed, i);
				s->nneeded--;
			}
		s->fec_pend[g] = (uint16_t)rows;
	}
}

/* The loss the nodes saw in the first pass, for proactive parity. */
void
eng__fec_measure(struct eng_session *s)
{
	struct eng_member	*m;
	uint64_t		 missing = 0, n = 0, ppm;

	if (s->fec_k == 0 || s->pass != 1 || s->fec_p1_blocks != s->nblocks ||
	    s->l == NULL)
		return;
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->known && m->state >= ENG_M_RECEIVING &&
		    m->state <= ENG_M_VERIFIED) {
			missing += s->nblocks - (m->held < s->nblocks ?
			    m->held : s->nblocks);
			n++;
		}
	if (n == 0)
		return;
	ppm = missing * 1000000 / (n * s->nblocks);
	/*
	 * With proactive parity the nodes report what it did not repair:
	 * keep most of the old estimate and add the residue, so the
	 * estimate neither collapses nor runs away.
	 */
	if (s->fec_pro > 0)
		ppm += (uint64_t)s->l->loss_ppm * 9 / 10;
	s->l->loss_ppm = ppm > 500000 ? 500000 : (uint32_t)ppm;
	eng__debug("session %08x: loss estimate %u ppm", s->id,
	    s->l->loss_ppm);
}

struct parity_rd {
	struct eng_session	*s;
	uint32_t		 first;
};

/* Encoder input: block first + i from the source, zero-padded. */
static int
parity_read(void *arg, uint16_t i, uint8_t *buf, size_t blen)
{
	struct parity_rd	*r = arg;
	struct eng_session	*s = r->s;
	uint32_t		 b = r->first + i;
	size_t			 len = eng__block_len(s, b);

	memset(buf + len, 0, blen - len);
	return (s->src.read(s->src.arg, (uint64_t)b * s->block_size, buf,
	    len) == 0 ? 0 : -1);
}

/*
 * The next PARITY frame due before block `next' (the pass's next DATA):
 * rows of every group wholly behind it.  Returns the frame length, 0 for
 * none, or (size_t)-1 after a read error (the session was stopped).
 */
size_t
eng__fill_parity(struct eng_session *s, uint8_t *buf, size_t cap,
    uint32_t next)
{
	struct parity_rd	 rd;
	uint8_t			 bits[UP_FEC_VEC_BYTES];
	uint32_t		 g, end, row, code = 0;
	uint16_t		 m;
	size_t			 off;
	int			 rc;

	for (;;) {
		if (s->fec_scan >= s->fec_ngroups)
			return (0);
		g = s->fec_scan;
		end = g * s->fec_k + up_fec_group_len(s->nblocks, s->fec_k, g);
		if (next < s->nblocks && end > next)
			return (0);	/* the group's DATA comes first */
		if (s->fec_pend[g] > 0)
			break;
		s->fec_scan++;
	}
	m = up_fec_group_len(s->nblocks, s->fec_k, g);
	row = s->fec_next[g];
	if (s->compact) {
		/*
		 * Compact PARITY (§11.5.6): the code (row - 1) * ngroups +
		 * group where DATA has its index.  A code that needs the
		 * 3-byte index where blocks have a 2-byte one would not fit:
		 * the group's rows are spent, its blocks go as DATA.
		 */
		if (up_cparity_code(row, g, s->fec_ngroups, &code) != UP_OK ||
		    (off = up_cdata_off(code)) == 0 ||
		    off > up_cdata_off(s->nblocks - 1)) {
			s->fec_pend[g] = 0;
			s->fec_flags[g] |= ENG_FEC_DATA;
			s->want_runs = true;
			return (eng__fill_parity(s, buf, cap, next));
		}
	} else {
		off = UP_FEC_DATA_OFF;
		if (off + (size_t)s->block_size + UP_CRC_LEN > cap) {
			eng__warnx("session %08x: parity does not fit, off",
			    s->id);
			eng__fec_free(s);
			return (0);
		}
	}
	rd.s = s;
	rd.first = g * s->fec_k;
	rc = up_fec_encode(row, m, buf + off, s->block_size,
	    bits, s->fec_buf, parity_read, &rd);
	if (rc == UP_EPORT) {
		eng__data_remove(s->l, s);
		eng__blob_error(s);
		return ((size_t)-1);
	}
	if (rc == UP_OK && s->compact)
		rc = up_cseal(buf, cap, UP_T_PARITY, s->cflags, s->tag, code,
		    s->block_size);
	else if (rc == UP_OK)
		rc = up_fec_seal_parity(buf, cap, s->pass > 1 ? UP_F_REPAIR : 0,
		    s->id, row, g, s->fec_k, s->block_size);
	/* Spent either way: a row is never sent twice. */
	s->fec_next[g]++;
	s->fec_pend[g]--;
	if (rc <= 0) {
		eng__warnx("session %08x: parity row %u of group %u: %s",
		    s->id, row, g, up_strerror(rc));
		s->fec_pend[g] = 0;
		return (0);
	}
	if (s->pass > 1)
		s->fec_flags[g] |= ENG_FEC_SENT;
	s->parity_frames++;
	return ((size_t)rc);
}
