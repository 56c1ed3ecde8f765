/*
 * xrepair.c: plans one round of XOR repair frames from the round's
 * STATUS answers.
 *
 * Why.  An XOR frame (docs/up-protocol.md §4.15) carries the XOR of up
 * to UP_XOR_MAX blocks; a node that misses exactly one of the listed
 * blocks recovers it, any other node drops the frame.  Resending the
 * union of the missing blocks costs one frame per block some node lost,
 * and with independent per-node loss that union grows with the number
 * of nodes.  research/multicast-delta.md (§0, tables in §4.2) puts pure
 * retransmission at 1.26 sends per block for 30 nodes at 1 % loss and
 * above 2 for 1,000 nodes, and argues (§4.3) that the repair coding, not
 * the feedback, decides the cost: repair in which each frame fixes a
 * different loss at every node scales with the worst receiver's loss, not
 * with the union.  An XOR frame does that without parity coding, so a
 * round costs about as many frames as the worst node lost blocks (the
 * floor: a frame repairs at most one block per node).
 *
 * What a plan guarantees.  Node i's STATUS (§4.7) gives its missing set
 * M_i (the set bits of its slice, walked with up_status_foreach_missing)
 * and its known range K_i = [0, first_missing + nbits), cut at nblocks:
 * inside K_i a block not in M_i is held, past it nothing is known.  A
 * frame F covers node i for block b when b is in M_i and every other
 * block of F is in K_i and not in M_i.  After xr__build:
 *  - every (node, missing block) pair added this round is covered by the
 *    one frame that lists the block (each missing block is listed in
 *    exactly one frame);
 *  - a node that misses (per its STATUS) any block of a frame misses
 *    exactly one of them and knows every other one as held;
 *  - each frame lists 1 .. UP_XOR_MAX strictly increasing indices whose
 *    encoding (u32 first + LEB128 gaps, each gap < 2^28) takes at most
 *    `room' bytes.
 * A node that reports none of a frame's blocks missing is not covered:
 * if some of them lie past its K_i it may in truth miss them; missing
 * one it recovers it, missing more it drops the frame (§4.15).  Either
 * way the next STATUS round reports what is left.
 *
 * The constraint.  Adding block b (missed by the node set S_b) to a
 * frame F whose blocks are missed by the node set C needs, for every i
 * in S_b, that i misses no block of F and that every block of F is in
 * K_i; and for every j in C, that b is in K_j and not in M_j.  Since
 * K_i is a prefix and "j misses b" means "j is in S_b", this reduces to
 * three cheap tests: no node of S_b is in C (a per-node stamp holding
 * the number of the frame that last covered it, so sets are never
 * cleared), max(F) < end(K_i) for every i in S_b, and b < the least
 * end(K_j) over C, kept as the frame grows.
 *
 * The greedy.  Distinct missing blocks are ordered by how many nodes
 * miss them (most first: one listing then serves them all), then by
 * index.  Each frame scans the blocks not yet placed, in that order,
 * and takes every block that passes the constraint and keeps the list
 * within UP_XOR_MAX entries and `room' encoded bytes, counted after
 * inserting the index in sorted position (the gap it splits is replaced
 * by two).  A block that does not fit waits for a later frame; a block
 * alone always fits in 4 bytes, so every block ends in some frame.
 * Scanning in index order among equals keeps gaps short: 30 nodes at
 * 1 % loss get ~22 blocks into a 53-byte list and the round costs
 * max |M_i| frames (tests/unit/engine/test_eng_xrepair.c), against
 * one frame per distinct lost block (~20 times more) for the union.
 *
 * Cost.  With P pairs, D <= P distinct blocks and R frames: sorting is
 * O(P log P); testing a block costs O(|S_b| + log UP_XOR_MAX).  Each
 * frame walks the unplaced blocks of each count class in index order
 * (linked lists, placed blocks unlinked) and stops a class at the first
 * block past the least end(K_j) of its nodes, and the whole frame once
 * it is full or every node still missing something is covered.  The
 * worst case stays O(P log P + R * D); at P = 65,536 a build measured
 * 2-20 ms when slices are short or nodes many, and up to ~75 ms (gcc
 * -O2) when a few dozen nodes with full slices lose 2-3 % each.
 * Nothing depends on nblocks: no array is indexed by block.  Memory:
 * 8 bytes per pair, 12 per node with pairs, 29 per distinct block; it
 * grows in xr__add and xr__build up to max_pairs and is kept across
 * xr__reset, so a steady session stops allocating.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* An unencodable gap (>= 2^28, §4.15): never fits. */
#define XR_GAP_BAD	((size_t)1 << 20)
#define XR_NONE		UINT32_MAX

struct xr_node {
	uint32_t	 kend;		/* end of K_i, <= nblocks */
	uint32_t	 stamp;		/* frame that last covered it */
	uint32_t	 left;		/* its pairs not yet placed */
};

struct xr_pair {
	uint32_t	 block;
	uint32_t	 node;		/* index into nodes */
};

struct xr_group {
	uint32_t	 block;
	uint32_t	 first;		/* first pair, pairs sorted by block */
	uint32_t	 cnt;		/* nodes missing the block */
};

struct xr_plan {
	uint32_t	 nblocks;
	size_t		 max_pairs;
	bool		 overflow;

	struct xr_node	*nodes;
	size_t		 nnodes;
	size_t		 nodes_cap;

	struct xr_pair	*pairs;
	size_t		 npairs;
	size_t		 pairs_cap;

	/* Per distinct block, sized at build. */
	struct xr_group	*groups;
	uint32_t	*next;		/* next unplaced group of its class */
	uint32_t	*heads;		/* first unplaced group of each class */
	uint32_t	*fidx;		/* every frame's indices, in a row */
	uint32_t	*foff;		/* frame i starts at fidx[foff[i]] */
	uint8_t		*fn;		/* frame i lists fn[i] blocks */
	size_t		 groups_cap;
	size_t		 nframes;

	uint32_t	 stamp;		/* current frame's stamp, never 0 */
};

/* Walk callbacks for up_status_foreach_missing. */
struct xr_walk {
	struct xr_plan	*p;
	uint32_t	 node;
	size_t		 count;
};

struct xr_plan *
xr__new(uint32_t nblocks, size_t max_pairs)
{
	struct xr_plan	*p;

	p = eng__xcalloc(1, sizeof *p);
	p->nblocks = nblocks;
	/* Pair positions and node numbers are kept in u32. */
	if (max_pairs > UINT32_MAX)
		max_pairs = UINT32_MAX;
	p->max_pairs = max_pairs;
	return (p);
}

void
xr__free(struct xr_plan *p)
{
	if (p == NULL)
		return;
	free(p->nodes);
	free(p->pairs);
	free(p->groups);
	free(p->next);
	free(p->heads);
	free(p->fidx);
	free(p->foff);
	free(p->fn);
	free(p);
}

void
xr__reset(struct xr_plan *p)
{
	p->overflow = false;
	p->nnodes = 0;
	p->npairs = 0;
	p->nframes = 0;
}

static void
xr_count(void *arg, uint32_t block)
{
	struct xr_walk	*w = arg;

	(void)block;
	w->count++;
}

static void
xr_append(void *arg, uint32_t block)
{
	struct xr_walk	*w = arg;
	struct xr_plan	*p = w->p;

	p->pairs[p->npairs].block = block;
	p->pairs[p->npairs].node = w->node;
	p->npairs++;
}

int
xr__add(struct xr_plan *p, const struct up_status_body *st)
{
	struct xr_walk	 w;
	struct xr_node	*n;
	uint64_t	 kend;
	size_t		 cap;

	if (p->overflow)
		return (-1);
	/*
	 * The missing set is exactly what up_status_foreach_missing visits:
	 * the set bits of the slice, cut at nblocks.  With nbits == 0 it
	 * visits nothing, although §4.7 says first_missing is missing: such
	 * a node (and a complete one, first_missing >= nblocks) adds no
	 * pair, so no frame claims anything about it and it is not kept.
	 * The session's union resend walks the same function, so both agree.
	 */
	memset(&w, 0, sizeof w);
	w.p = p;
	up_status_foreach_missing(st, p->nblocks, xr_count, &w);
	if (w.count == 0)
		return (0);
	if (w.count > p->max_pairs - p->npairs) {
		p->overflow = true;
		return (-1);
	}

	if (p->npairs + w.count > p->pairs_cap) {
		cap = p->pairs_cap == 0 ? 1024 : p->pairs_cap;
		while (cap < p->npairs + w.count)
			cap *= 2;
		if (cap > p->max_pairs)
			cap = p->max_pairs;
		p->pairs = eng__xreallocarray(p->pairs, cap, sizeof *p->pairs);
		p->pairs_cap = cap;
	}
	if (p->nnodes == p->nodes_cap) {
		cap = p->nodes_cap == 0 ? 64 : p->nodes_cap * 2;
		p->nodes = eng__xreallocarray(p->nodes, cap, sizeof *p->nodes);
		p->nodes_cap = cap;
	}

	n = &p->nodes[p->nnodes];
	/* What the body describes: a slice's end, or a run list's. */
	kend = st->form == UP_SB_BITMAP ? (uint64_t)st->first_missing +
	    st->nbits : up_status_described(st, p->nblocks, 0);
	n->kend = kend > p->nblocks ? p->nblocks : (uint32_t)kend;
	n->stamp = 0;
	n->left = (uint32_t)w.count;
	w.node = (uint32_t)p->nnodes;
	p->nnodes++;
	up_status_foreach_missing(st, p->nblocks, xr_append, &w);
	return (0);
}

size_t
xr__npairs(const struct xr_plan *p)
{
	return (p->npairs);
}

static int
xr_pair_cmp(const void *a, const void *b)
{
	const struct xr_pair	*x = a, *y = b;

	if (x->block != y->block)
		return (x->block < y->block ? -1 : 1);
	if (x->node != y->node)
		return (x->node < y->node ? -1 : 1);
	return (0);
}

static int
xr_group_cmp(const void *a, const void *b)
{
	const struct xr_group	*x = a, *y = b;

	if (x->cnt != y->cnt)
		return (x->cnt > y->cnt ? -1 : 1);
	if (x->block != y->block)
		return (x->block < y->block ? -1 : 1);
	return (0);
}

/* Bytes of a gap as an unsigned LEB128 of at most 4 bytes (§4.15). */
static size_t
xr_leb(uint32_t gap)
{
	if (gap < (1u << 7))
		return (1);
	if (gap < (1u << 14))
		return (2);
	if (gap < (1u << 21))
		return (3);
	if (gap < (1u << 28))
		return (4);
	return (XR_GAP_BAD);
}

/*
 * Position at which b goes in the sorted f[0..n-1] (b is not in it) and
 * how many bytes inserting it adds to the encoded list.
 */
static size_t
xr_insert_cost(const uint32_t *f, size_t n, uint32_t b, size_t *pos)
{
	size_t	 lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (f[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	if (n == 0)
		return (4);
	if (lo == 0)
		return (xr_leb(f[0] - b));
	if (lo == n)
		return (xr_leb(b - f[n - 1]));
	/* Splits the gap f[lo-1] .. f[lo], which was encodable. */
	return (xr_leb(b - f[lo - 1]) + xr_leb(f[lo] - b) -
	    xr_leb(f[lo] - f[lo - 1]));
}

static void
xr_grow_groups(struct xr_plan *p, size_t need)
{
	if (need <= p->groups_cap)
		return;
	p->groups = eng__xreallocarray(p->groups, need, sizeof *p->groups);
	p->next = eng__xreallocarray(p->next, need, sizeof *p->next);
	p->heads = eng__xreallocarray(p->heads, need, sizeof *p->heads);
	p->fidx = eng__xreallocarray(p->fidx, need, sizeof *p->fidx);
	p->foff = eng__xreallocarray(p->foff, need, sizeof *p->foff);
	p->fn = eng__xreallocarray(p->fn, need, sizeof *p->fn);
	p->groups_cap = need;
}

/* Starts a frame's stamp; on wrap-around, forgets every old stamp. */
static uint32_t
xr_next_stamp(struct xr_plan *p)
{
	size_t	 i;

	if (p->stamp == UINT32_MAX) {
		for (i = 0; i < p->nnodes; i++)
			p->nodes[i].stamp = 0;
		p->stamp = 0;
	}
	return (++p->stamp);
}

/*
 * Whether every node missing group g can take it into a frame of n
 * blocks whose largest is fmax: the node misses none of them (it is not
 * stamped with this frame) and knows them all (fmax inside its K_i).
 */
static bool
xr_nodes_fit(const struct xr_plan *p, const struct xr_group *g,
    uint32_t fmax, size_t n, uint32_t stamp)
{
	const struct xr_node	*nd;
	uint32_t		 j;

	for (j = 0; j < g->cnt; j++) {
		nd = &p->nodes[p->pairs[g->first + j].node];
		if (nd->stamp == stamp || (n > 0 && fmax >= nd->kend))
			return (false);
	}
	return (true);
}

size_t
xr__build(struct xr_plan *p, size_t room)
{
	struct xr_group	*g;
	struct xr_node	*nd;
	uint32_t	*f, *link, gi, stamp, ckend, b;
	size_t		 ngroups, nclass, left, c, i, j, n, size, cost, pos;
	size_t		 used, active, busy;

	p->nframes = 0;
	/*
	 * An overflowed round has lost pairs (the caller resends the union);
	 * and with room < 4 not even one index (its u32) fits, so no frame
	 * can be made and nothing is covered.
	 */
	if (p->overflow || p->npairs == 0 || room < 4)
		return (0);

	qsort(p->pairs, p->npairs, sizeof *p->pairs, xr_pair_cmp);
	for (i = 0; i < p->nnodes; i++)
		p->nodes[i].left = 0;
	for (i = 0; i < p->npairs; i++)
		p->nodes[p->pairs[i].node].left++;
	active = p->nnodes;
	ngroups = 0;
	for (i = 0; i < p->npairs; i++)
		if (i == 0 || p->pairs[i].block != p->pairs[i - 1].block)
			ngroups++;
	xr_grow_groups(p, ngroups);
	ngroups = 0;
	for (i = 0; i < p->npairs; i++) {
		if (i == 0 || p->pairs[i].block != p->pairs[i - 1].block) {
			g = &p->groups[ngroups++];
			g->block = p->pairs[i].block;
			g->first = (uint32_t)i;
			g->cnt = 0;
		}
		p->groups[ngroups - 1].cnt++;
	}
	qsort(p->groups, ngroups, sizeof *p->groups, xr_group_cmp);

	/*
	 * A class is the run of groups missed by the same number of nodes,
	 * in index order; each keeps its unplaced groups in a linked list.
	 * Since K_j is a prefix, the least end(K_j) over the frame's nodes
	 * only falls as the frame grows, so once a block of a class is past
	 * it every later block of the class is too: the scan of that class
	 * stops there, and a frame touches only the blocks it could take.
	 */
	nclass = 0;
	for (i = 0; i < ngroups; i++) {
		if (i == 0 || p->groups[i].cnt != p->groups[i - 1].cnt)
			p->heads[nclass++] = (uint32_t)i;
		p->next[i] = (i + 1 < ngroups &&
		    p->groups[i + 1].cnt == p->groups[i].cnt) ?
		    (uint32_t)(i + 1) : XR_NONE;
	}

	left = ngroups;
	used = 0;
	while (left > 0) {
		stamp = xr_next_stamp(p);
		f = &p->fidx[used];
		n = 0;
		size = 0;
		ckend = UINT32_MAX;	/* least end(K_j) over covered nodes */
		busy = 0;
		/*
		 * busy counts the nodes this frame covers that still miss
		 * more: once it equals active (nodes with blocks left), no
		 * block left can join the frame.
		 */
		for (c = 0; c < nclass && n < UP_XOR_MAX && busy < active;
		    c++) {
			link = &p->heads[c];
			while ((gi = *link) != XR_NONE) {
				g = &p->groups[gi];
				b = g->block;
				if (n == UP_XOR_MAX || busy == active ||
				    b >= ckend)
					break;
				cost = xr_insert_cost(f, n, b, &pos);
				if (cost > room || size + cost > room ||
				    !xr_nodes_fit(p, g, n > 0 ? f[n - 1] : 0,
				    n, stamp)) {
					link = &p->next[gi];
					continue;
				}
				memmove(&f[pos + 1], &f[pos],
				    (n - pos) * sizeof *f);
				f[pos] = b;
				n++;
				size += cost;
				for (j = 0; j < g->cnt; j++) {
					nd = &p->nodes[
					    p->pairs[g->first + j].node];
					nd->stamp = stamp;
					if (--nd->left == 0)
						active--;
					else
						busy++;
					if (nd->kend < ckend)
						ckend = nd->kend;
				}
				*link = p->next[gi];	/* placed */
				left--;
			}
		}
		/* The first block left always fits: no frame is empty. */
		p->foff[p->nframes] = (uint32_t)used;
		p->fn[p->nframes] = (uint8_t)n;
		p->nframes++;
		used += n;
	}
	return (p->nframes);
}

const uint32_t *
xr__frame(const struct xr_plan *p, size_t i, uint8_t *n)
{
	if (i >= p->nframes) {
		*n = 0;
		return (NULL);
	}
	*n = p->fn[i];
	return (&p->fidx[p->foff[i]]);
}
