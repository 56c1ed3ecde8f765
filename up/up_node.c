/*
 * up_node.c: the node side of a UP session (docs/up-node-engine.md,
 * docs/up-protocol.md §5).
 *
 * One engine per node, driven by three calls: up_node_input() for every
 * received frame, up_node_tick() for its timers and up_node_start() after
 * every (re)boot.  Everything the node's platform does (send, clock,
 * random numbers, flash, persistence, crypto, the slot switch) goes
 * through the const port ops, so the same code runs on an MCU and in the
 * upnode simulator.  No malloc, no OS, no global state.
 *
 * Persistence: the engine saves a small state blob plus the held-block
 * bitmap through port->save on every state change; progress (blocks
 * received) every `save_every' blocks and UP_NODE_SAVE_DELAY_MS after the
 * first unsaved block, but only once the blocks recorded are worth the
 * flash the save writes (UP_NODE_SAVE_RATIO), and through
 * port->save_bitmap (the changed bytes only) when the port has it.  The
 * blob is this file's own versioned little-endian encoding with a CRC-32
 * (never a struct dump); anything that does not decode is treated as
 * "nothing saved".  A block's bit is saved only after the block went to
 * the slot, so a power cut can lose progress but never claim a block that
 * is not in flash.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

/*
 * State blob: "UPN1" little-endian, then the format version: 2 since the
 * offer carries security_version and desc_flags and the blob ends with
 * the security floors (§5.4); 3 adds the compact set-up of the session
 * after them (docs/up-protocol.md §11.4).  Formats 1 (that offer without
 * them, no floors) and 2 are still read, so a node whose engine was
 * itself the update finds the session that installed it.
 */
#define NODE_BLOB_MAGIC		0x314e5055u
#define NODE_BLOB_VERSION	3
#define NODE_BLOB_VERSION_1	1
#define NODE_BLOB_VERSION_2	2

/* Compact flags byte of the blob (format 3). */
#define NODE_BC_COMPACT		0x01	/* offered in compact form */
#define NODE_BC_TAG		0x02	/* its tag is bound */

/* Flags byte of the blob. */
#define NODE_BF_UNACKED		0x01	/* final RESULT not acked */
#define NODE_BF_SWITCHED	0x02	/* port->activate was called */
#define NODE_BF_ERASING		0x04	/* RECEIVING, area not erased yet */
#define NODE_BF_JOURNAL		0x08	/* bitmap may have grown in place */
#define NODE_BF_KNOWN		(NODE_BF_UNACKED | NODE_BF_SWITCHED | \
    NODE_BF_ERASING | NODE_BF_JOURNAL)

/*
 * Work in steps (n->work), one step per up_node_tick(): erasing the area
 * of a new transfer (RECEIVING), then for VERIFY in DOWNLOADED hashing
 * the package and, for a delta, erasing the slot, rebuilding the image
 * and hashing it.  Only the erase is persisted (NODE_BF_ERASING); a cut
 * during the others boots DOWNLOADED and the next VERIFY starts again.
 */
#define NODE_W_NONE		0
#define NODE_W_ERASE		1	/* area of a new transfer */
#define NODE_W_HASH		2	/* the package (VERIFY) */
#define NODE_W_ERASE_IMAGE	3	/* delta: the slot for the image */
#define NODE_W_APPLY		4	/* delta: rebuilding the image */
#define NODE_W_HASH_IMAGE	5	/* delta: the rebuilt image */

/* Largest wrap-safe timer delay: half the u32 millisecond range. */
#define NODE_DELAY_MAX		0x7fffffffu

/*
 * Worst-case blob size with this build's limits, checked against
 * UP_NODE_STATE_MAX at compile time (C99 has no _Static_assert).
 */
#define NODE_BLOB_FIXED		27	/* header, session, bitmap, compact
					   set-up, CRC */
#define NODE_BLOB_OFFER		(93 + (UP_MAX_HW + 1) * (UP_NAME_MAX + 1) + \
    2 * (UP_VER_MAX + 1) + UP_MAX_DEPS * (UP_NAME_MAX + UP_VER_MAX + 2) + \
    UP_SIG_MAX)
#define NODE_BLOB_FLOORS	(1 + UP_MAX_COMPONENTS * (UP_NAME_MAX + 5))
typedef char up_node_blob_fits[(NODE_BLOB_FIXED + NODE_BLOB_OFFER +
    NODE_BLOB_FLOORS <= UP_NODE_STATE_MAX) ? 1 : -1];

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

static uint32_t
node_now(const struct up_node *n)
{
	return (n->port->now_ms(n->ctx));
}

/* True when `t' is armed and its time has come (wrap-safe). */
static bool
node_timer_due(const struct up_node_timer *t, uint32_t now)
{
	return (t->armed && now - t->due < 0x80000000u);
}

/* Arms `t' at now + delay, unless it is already armed earlier. */
static void
node_timer_arm_min(struct up_node_timer *t, uint32_t now, uint32_t delay)
{
	uint32_t	 due;

	if (delay > NODE_DELAY_MAX)
		delay = NODE_DELAY_MAX;
	due = now + delay;
	/* Already armed at or before `due': the earlier reply stands. */
	if (t->armed && due - t->due < 0x80000000u)
		return;
	t->due = due;
	t->armed = true;
}

static void
node_timer_arm(struct up_node_timer *t, uint32_t now, uint32_t delay)
{
	if (delay > NODE_DELAY_MAX)
		delay = NODE_DELAY_MAX;
	t->due = now + delay;
	t->armed = true;
}

/* A random delay in [0, window_ms), for reply back-off (§5.2). */
static uint32_t
node_jitter(const struct up_node *n, uint16_t window_ms)
{
	if (window_ms == 0)
		return (0);
	return (n->port->random(n->ctx) % window_ms);
}

/*
 * The start of a random reply slot of a schedule (§11.9): s * slot_ms
 * for s uniform in [0, slots); 0 for 0 or 1 slot.  At most 65,535^2
 * ms, within a u32 (timers clamp to 2^31 - 1).
 */
static uint32_t
node_slot_delay(const struct up_node *n, uint16_t slots, uint16_t slot_ms)
{
	if (slots <= 1 || slot_ms == 0)
		return (0);
	return ((n->port->random(n->ctx) % slots) * (uint32_t)slot_ms);
}

/* A random slot of the link's boot schedule (§11.9). */
static uint32_t
node_boot_delay(const struct up_node *n)
{
	return (node_slot_delay(n, n->link.slots, n->link.slot_ms));
}

static unsigned long long
node_id(const struct up_node *n)
{
	return ((unsigned long long)n->info.node_id);
}

/* The version of `component' the node runs, or NULL. */
static const char *
node_version(const struct up_node *n, const char *component)
{
	unsigned int	 i;

	for (i = 0; i < n->info.ncomp && i < UP_MAX_COMPONENTS; i++)
		if (strcmp(n->info.comp[i].name, component) == 0)
			return (n->info.comp[i].version);
	return (NULL);
}

static bool
node_targets_me(const struct up_node *n, uint64_t target)
{
	return (target == 0 || target == n->info.node_id);
}

/* Same package bytes and block layout: resumable (§5.2 step 2). */
static bool
node_same_package(const struct up_offer *a, const struct up_offer *b)
{
	return (a->size == b->size && a->block_size == b->block_size &&
	    memcmp(a->sha256, b->sha256, sizeof(a->sha256)) == 0);
}

/* ------------------------------------------------------------------ */
/* Anti-rollback (docs/up-protocol.md §5.4)                           */

static struct up_node_floor *
node_floor_find(const struct up_node *n, const char *component)
{
	unsigned int	 i;

	for (i = 0; i < n->nfloor && i < UP_MAX_COMPONENTS; i++)
		if (strcmp(n->floor[i].component, component) == 0)
			return ((struct up_node_floor *)&n->floor[i]);
	return (NULL);
}

/* The lowest security_version the node installs for `component'. */
static uint32_t
node_floor(const struct up_node *n, const char *component)
{
	const struct up_node_floor *f;

	f = node_floor_find(n, component);
	return (f != NULL ? f->security_version : 0);
}

/* Whether a floor of `sv' for `component' has room (an entry). */
static bool
node_floor_room(const struct up_node *n, const char *component,
    uint32_t sv)
{
	return (sv == 0 || node_floor_find(n, component) != NULL ||
	    n->nfloor < UP_MAX_COMPONENTS);
}

/* Raises the floor in RAM (the caller persists); false if no room. */
static bool
node_floor_raise(struct up_node *n, const char *component, uint32_t sv)
{
	struct up_node_floor *f;
	size_t		 len;

	if ((f = node_floor_find(n, component)) == NULL) {
		if (sv == 0)
			return (true);
		if (n->nfloor >= UP_MAX_COMPONENTS)
			return (false);
		f = &n->floor[n->nfloor++];
		len = strlen(component);
		if (len > UP_NAME_MAX)
			len = UP_NAME_MAX;
		memcpy(f->component, component, len);
		f->component[len] = '\0';
		f->security_version = 0;
	}
	if (sv > f->security_version)
		f->security_version = sv;
	return (true);
}

/*
 * The anti-rollback rule (§5.4) for an image of `o' against what the
 * node runs now: UP_R_DOWNGRADE when its security version is below the
 * component's floor (whatever the descriptor allows), or when it is
 * older than the running version (§2.7) and the cloud did not sign it as
 * a downgrade; else UP_R_INITIAL.  Checked before an OFFER erases
 * anything, at ACTIVATE and at boot.
 */
static int
node_rollback_code(const struct up_node *n, const struct up_offer *o)
{
	const char	*run;

	if (o->security_version < node_floor(n, o->component))
		return (UP_R_DOWNGRADE);
	run = node_version(n, o->component);
	if (run != NULL && up_version_cmp(o->to_version, run) < 0 &&
	    (o->desc_flags & UP_DESC_DOWNGRADE) == 0)
		return (UP_R_DOWNGRADE);
	return (UP_R_INITIAL);
}

/* Copies a NUL-terminated string into dst[cap], truncating. */
static void
node_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t		 n;

	n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Sending                                                            */

static struct up_fec_dec *node_fec_slot(struct up_node *, uint32_t, uint16_t,
		    bool);
static void	 node_fec_carve(struct up_node *);

/* The largest frame the node may send (§11.1). */
static size_t
node_mtu(const struct up_node *n)
{
	if (n->link.uplink_mtu == 0 || n->link.uplink_mtu > UP_FRAME_MAX)
		return (UP_FRAME_MAX);
	return (n->link.uplink_mtu);
}

/*
 * The form of the node's unsolicited frames: the session's, else the
 * link's default (docs/up-protocol.md §11.1).
 */
static bool
node_compact(const struct up_node *n)
{
	if (n->session != 0)
		return (n->compact);
	return ((n->link.flags & UP_NL_COMPACT) != 0);
}

/* Our compact frames leave our node id out (§11.2). */
static bool
node_addressed(const struct up_node *n)
{
	return ((n->link.flags & UP_NL_ADDRESSED) != 0);
}

/* Trailer bytes of our compact frames. */
static size_t
node_ctrail(const struct up_node *n)
{
	return ((n->link.flags & UP_NL_CRC) != 0 ? UP_C_CRC_LEN : 0);
}

static int
node_tx(struct up_node *n, const uint8_t *p, size_t len, uint8_t type)
{
	if (n->port->send(n->ctx, p, len) != 0) {
		/* Datagram links may drop; every sender here retries. */
		up_logf(UP_LOG_DEBUG, "node %016llx: send %u failed",
		    node_id(n), type);
		return (UP_EPORT);
	}
	return (UP_OK);
}

/*
 * Sends one message, never in a frame larger than the uplink: in the
 * full form unless `compact' (or unless it does not fit the uplink),
 * else in the compact form, in segments when it is longer than the
 * uplink (§11.8; n->slice is free once the message is in n->frame).
 */
static int
node_send_as(struct up_node *n, struct up_msg *m, bool compact)
{
	size_t		 mtu = node_mtu(n);
	uint8_t		 seg_cf;
	int		 len, nseg, i, e;

	if (!compact) {
		m->form = UP_FORM_FULL;
		len = up_encode(m, n->frame, sizeof(n->frame));
		if (len > 0 && (size_t)len <= mtu)
			return (node_tx(n, n->frame, (size_t)len, m->type));
		if (len < 0)
			goto bad;
	}
	m->form = UP_FORM_COMPACT;
	m->cx.cflags = (n->link.flags & UP_NL_CRC) != 0 ? UP_CF_CRC : 0;
	if ((len = up_encode(m, n->frame, sizeof(n->frame))) < 0)
		goto bad;
	if ((size_t)len <= mtu)
		return (node_tx(n, n->frame, (size_t)len, m->type));
	/* A segmented message carries its CRC-16, whatever the link. */
	m->cx.cflags |= UP_CF_CRC;
	if ((len = up_encode(m, n->frame, sizeof(n->frame))) < 0)
		goto bad;
	seg_cf = UP_C_X | ((n->link.flags & UP_NL_CRC) != 0 ? UP_CF_CRC : 0);
	if ((nseg = up_seg_count((size_t)len, mtu, seg_cf)) < 2) {
		len = nseg < 0 ? nseg : UP_EINVAL;
		goto bad;
	}
	for (i = 0; i < nseg; i++) {
		e = up_seg_build(n->frame, (size_t)len, mtu, seg_cf,
		    n->seg_mtag, (uint8_t)i, n->slice, sizeof(n->slice));
		if (e < 0) {
			len = e;
			goto bad;
		}
		/* A segment lost is the whole message lost: stop. */
		if (node_tx(n, n->slice, (size_t)e, UP_T_SEG) != UP_OK) {
			n->seg_mtag++;
			return (UP_EPORT);
		}
	}
	n->seg_mtag++;
	n->seg_sent++;
	return (UP_OK);
bad:
	/* Our own message: a broken invariant, not bad input. */
	up_logf(UP_LOG_WARN, "node %016llx: cannot encode %u: %s",
	    node_id(n), m->type, up_strerror(len));
	return (len);
}

/*
 * The bitmap slice of the current session (what full ACCEPT and STATUS
 * say), at most max_bits long.
 */
static void
node_status_body(struct up_node *n, struct up_status_body *st,
    uint32_t max_bits)
{
	memset(st, 0, sizeof(*st));
	if (n->session == 0)
		return;
	if (max_bits > (uint32_t)sizeof(n->slice) * 8)
		max_bits = (uint32_t)sizeof(n->slice) * 8;
	if (max_bits > UINT16_MAX)
		max_bits = UINT16_MAX;
	up_status_from_bitmap(&n->held, n->slice, (uint16_t)max_bits, st);
}

/*
 * Bits of slice a full ACCEPT or STATUS (`fixed' payload bytes before
 * the status body) can carry on our uplink; 0 when even an empty one
 * does not fit (then the node answers in the compact form).
 */
static uint32_t
node_full_bits(const struct up_node *n, size_t fixed)
{
	size_t		 mtu = node_mtu(n), need = UP_OVERHEAD + fixed + 10;

	if (mtu <= need)
		return (0);
	return ((uint32_t)(mtu - need) * 8);
}

/* Body bytes left in a compact frame after `hdr' bytes and trailers. */
static size_t
node_cbudget(const struct up_node *n, size_t hdr)
{
	size_t		 mtu = node_mtu(n), used = hdr + node_ctrail(n);

	return (mtu > used ? mtu - used : 0);
}

struct node_need {
	struct up_node	*n;
	uint16_t	 k;
};

/*
 * Rows group g still needs (§11.7): its missing blocks, less the rows a
 * parity decoder of it holds.  k == 0: one group of every block.
 */
static uint32_t
node_group_need(void *arg, uint32_t g)
{
	struct node_need *c = arg;
	struct up_node	*n = c->n;
	struct up_fec_dec *d;
	uint32_t	 first, m, i, miss = 0, rows;

	first = c->k != 0 ? g * c->k : 0;
	m = c->k != 0 ? up_fec_group_len(n->offer.nblocks, c->k, g) :
	    n->offer.nblocks;
	for (i = 0; i < m; i++)
		if (!up_bitmap_get(&n->held, first + i))
			miss++;
	if (miss > 0 && c->k != 0 && n->fec_ws != NULL &&
	    (d = node_fec_slot(n, g, c->k, false)) != NULL) {
		rows = up_fec_dec_rows(d);
		miss = rows < miss ? miss - rows : 1;
	}
	return (miss);
}

/*
 * A compact status body of the current session in `form' (§11.7), cut
 * to `budget' bytes.  When not even an empty list fits, a small one is
 * built and the message goes in segments.
 */
static void
node_cstatus(struct up_node *n, uint8_t form, size_t budget,
    struct up_status_body *st)
{
	struct node_need c;
	uint32_t	 ng;
	int		 e;

	memset(st, 0, sizeof(*st));
	if (n->session == 0)
		return;
	if (budget < 16)
		budget = 16;
	switch (form) {
	case UP_SB_BITMAP:
		node_status_body(n, st, (uint32_t)(budget - 10) * 8);
		return;
	case UP_SB_COUNTS:
		c.n = n;
		c.k = n->sess_k <= UP_FEC_K_MAX ? n->sess_k : 0;
		ng = c.k != 0 ? up_fec_ngroups(n->offer.nblocks, c.k) : 1;
		e = up_status_counts(n->offer.nblocks - n->nheld, ng,
		    node_group_need, &c, n->slice, sizeof(n->slice), budget,
		    st);
		break;
	default:
		e = up_status_runs(&n->held, n->slice, sizeof(n->slice),
		    budget, st);
		break;
	}
	if (e < 0)
		up_logf(UP_LOG_WARN, "node %016llx: status list: %s",
		    node_id(n), up_strerror(e));
}

/* Parity of this session is of use to us (ACCEPT caps, §11.5.4). */
static bool
node_fec_usable(struct up_node *n)
{
	if (n->fec_ws == NULL || n->sess_k == 0 || n->sess_k > UP_FEC_K_MAX)
		return (false);
	if (n->fec_session != n->session ||
	    n->fec_blen != n->offer.block_size)
		node_fec_carve(n);
	return (n->fec_nslots > 0);
}

static int
node_send_announce_as(struct up_node *n, bool compact)
{
	struct up_msg	 m;
	struct up_announce *a = &m.u.announce;
	size_t		 mtu = node_mtu(n);

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ANNOUNCE;
	a->node_id = n->info.node_id;
	memcpy(a->hw, n->info.hw, sizeof(a->hw));
	a->max_frame = n->info.max_frame;
	a->free_kib = n->info.free_kib;
	if (a->free_kib == 0)
		a->free_kib = n->port->slot_capacity(n->ctx) / 1024;
	a->battery = n->info.battery;
	a->rssi_dbm = n->info.rssi_dbm;
	a->snr_db = n->info.snr_db;
	a->session = n->session;
	a->state = n->state;
	a->ncomp = n->info.ncomp;
	memcpy(a->comp, n->info.comp, sizeof(a->comp));
	/* What the gateway needs to choose forms and sizes (§11.5.1). */
	m.cx.caps = UP_CAP_XOR;
	m.cx.fec_kmax = n->fec_ws == NULL ? 0 :
	    (UP_FEC_K_MAX > 255 ? 255 : UP_FEC_K_MAX);
	m.cx.uplink_mtu = (uint16_t)(mtu < UP_C_MTU_MIN ? UP_C_MTU_MIN : mtu);
	m.cx.seg_max = (uint16_t)sizeof(n->seg_buf);
	return (node_send_as(n, &m, compact));
}

static int
node_send_announce(struct up_node *n)
{
	return (node_send_announce_as(n, node_compact(n)));
}

static int
node_send_accept(struct up_node *n, uint32_t session, uint8_t code,
    bool compact)
{
	struct up_msg	 m;
	uint32_t	 bits;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ACCEPT;
	m.session = session;
	m.u.accept.node_id = n->info.node_id;
	m.u.accept.code = code;
	if (compact && node_addressed(n))
		m.u.accept.node_id = 0;
	/* A decline describes nothing held (§5.2 step 2). */
	if (code != UP_R_INITIAL || session != n->session)
		return (node_send_as(n, &m, compact));
	if (!compact && (bits = node_full_bits(n, 9)) > 0) {
		node_status_body(n, &m.u.accept.st, bits);
		return (node_send_as(n, &m, false));
	}
	if (node_addressed(n))
		m.u.accept.node_id = 0;
	m.cx.caps = UP_ACAP_XOR | (node_fec_usable(n) ? UP_ACAP_PARITY : 0);
	node_cstatus(n, UP_SB_RUNS, node_cbudget(n, 7 +
	    (m.u.accept.node_id != 0 ? 8 : 0)), &m.u.accept.st);
	return (node_send_as(n, &m, true));
}

/* A STATUS; `req' the compact STATUS_REQ's (the form wanted). */
static int
node_send_status_as(struct up_node *n, bool compact, uint8_t req)
{
	struct up_msg	 m;
	uint32_t	 bits;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_STATUS;
	m.session = n->session;
	m.u.status.node_id = n->info.node_id;
	m.u.status.state = n->state;
	if (!compact && (bits = node_full_bits(n, 9)) > 0) {
		node_status_body(n, &m.u.status.st, bits);
		return (node_send_as(n, &m, false));
	}
	if (!compact)
		req = UP_SB_RUNS;
	if (node_addressed(n))
		m.u.status.node_id = 0;
	node_cstatus(n, req & UP_SQ_FORM, node_cbudget(n, 6 +
	    (m.u.status.node_id != 0 ? 8 : 0)), &m.u.status.st);
	return (node_send_as(n, &m, true));
}

static int
node_send_status(struct up_node *n)
{
	return (node_send_status_as(n, node_compact(n), UP_SB_RUNS));
}

static int
node_send_result_as(struct up_node *n, bool compact)
{
	struct up_msg	 m;
	const char	*v;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_RESULT;
	m.session = n->session;
	m.u.result.node_id = n->info.node_id;
	m.u.result.state = n->state;
	m.u.result.result = n->result;
	node_strlcpy(m.u.result.component, n->offer.component,
	    sizeof(m.u.result.component));
	/* RESULT carries the version that runs now (§4.12). */
	if ((v = node_version(n, n->offer.component)) != NULL)
		node_strlcpy(m.u.result.version, v,
		    sizeof(m.u.result.version));
	if (compact && node_addressed(n))
		m.u.result.node_id = 0;
	return (node_send_as(n, &m, compact));
}

static int
node_send_result(struct up_node *n)
{
	return (node_send_result_as(n, node_compact(n)));
}

/*
 * The node gives the session up itself (§5.2 step 8).  Its node id is
 * always there, so no node takes it for the gateway's (§11.5.13).
 */
static int
node_send_abort(struct up_node *n, uint8_t reason)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ABORT;
	m.session = n->session;
	m.u.target.node_id = n->info.node_id;
	m.u.target.reason = reason;
	return (node_send_as(n, &m, node_compact(n)));
}

/* ------------------------------------------------------------------ */
/* Persistence: the state blob                                        */

/* Nothing unsaved any more. */
static void
node_clean(struct up_node *n)
{
	n->dirty = 0;
	n->dirty_bytes = 0;
	n->dirty_lo = UINT32_MAX;
	n->dirty_hi = 0;
	n->t_save.armed = false;
}

static size_t
node_bitmap_len(const struct up_node *n)
{
	return (n->session != 0 ? up_bitmap_bytes(n->held.nbits) : 0);
}

/*
 * Saves state and bitmap.  Blob layout (all little-endian):
 *   u32 magic "UPN1", u8 format 3, u8 state, u8 result, u8 flags,
 *   u32 session, u32 bitmap bytes, u32 CRC-32 of the bitmap,
 *   the OFFER payload (up_offer_wr), u8 nfloor and nfloor times (str
 *   component, u32 security floor), u8 compact flags, u8 tag, u8 fec_k
 *   (docs/up-protocol.md §11.4), u32 CRC-32 of everything before it.
 * The floors ride in every save, so they are as safe as the session:
 * the port's save is atomic.
 */
static int
node_persist(struct up_node *n)
{
	uint8_t		 blob[UP_NODE_STATE_MAX];
	struct up_wr	 wr;
	size_t		 blen;
	unsigned int	 i;
	uint8_t		 flags = 0;

	blen = node_bitmap_len(n);
	if (n->unacked)
		flags |= NODE_BF_UNACKED;
	if (n->switched)
		flags |= NODE_BF_SWITCHED;
	if (n->work == NODE_W_ERASE)
		flags |= NODE_BF_ERASING;
	/* Progress may follow through save_bitmap: no CRC will hold. */
	if (n->port->save_bitmap != NULL && blen > 0)
		flags |= NODE_BF_JOURNAL;
	up_wr_init(&wr, blob, sizeof(blob));
	up_wr_u32(&wr, NODE_BLOB_MAGIC);
	up_wr_u8(&wr, NODE_BLOB_VERSION);
	up_wr_u8(&wr, n->state);
	up_wr_u8(&wr, n->result);
	up_wr_u8(&wr, flags);
	up_wr_u32(&wr, n->session);
	up_wr_u32(&wr, (uint32_t)blen);
	up_wr_u32(&wr, up_crc32(0, n->bitmap_buf, blen));
	up_offer_wr(&wr, &n->offer);
	up_wr_u8(&wr, n->nfloor);
	for (i = 0; i < n->nfloor; i++) {
		up_wr_str(&wr, n->floor[i].component);
		up_wr_u32(&wr, n->floor[i].security_version);
	}
	up_wr_u8(&wr, (uint8_t)((n->compact ? NODE_BC_COMPACT : 0) |
	    (n->tag_bound ? NODE_BC_TAG : 0)));
	up_wr_u8(&wr, n->tag);
	up_wr_u8(&wr, n->sess_k);
	if (up_wr_err(&wr) == UP_OK)
		up_wr_u32(&wr, up_crc32(0, blob, wr.off));
	if (up_wr_err(&wr) != UP_OK) {
		up_logf(UP_LOG_WARN, "node %016llx: state does not encode",
		    node_id(n));
		return (up_wr_err(&wr));
	}
	if (n->port->save(n->ctx, blob, wr.off, n->bitmap_buf, blen) != 0) {
		/* Kept dirty: the next save tries again. */
		up_logf(UP_LOG_WARN, "node %016llx: saving state failed",
		    node_id(n));
		return (UP_EPORT);
	}
	node_clean(n);
	n->save_cost = (uint32_t)(wr.off + blen);
	n->save_bytes += n->save_cost;
	return (UP_OK);
}

/*
 * A progress save (blocks received, no state change), if the blocks it
 * records are worth it: they hold at least UP_NODE_SAVE_RATIO times the
 * bytes it writes, so the bitmap never wears the flash more than the data
 * it tracks, however small the blocks (32-byte LoRa blocks and a 1 KiB
 * bitmap would otherwise rewrite more than they record).  With
 * port->save_bitmap only the changed bitmap bytes [dirty_lo, dirty_hi]
 * are written; else the blob and the whole bitmap.  Returns UP_OK when
 * saved (or nothing to save), NODE_NOT_YET when not worth it yet, or the
 * error of a failed save.
 */
#define NODE_NOT_YET		2
static int
node_save_progress(struct up_node *n)
{
	uint32_t	 cost, span = 0;

	if (n->dirty == 0)
		return (UP_OK);
	cost = n->save_cost;
	if (n->port->save_bitmap != NULL && n->dirty_lo <= n->dirty_hi) {
		span = n->dirty_hi - n->dirty_lo + 1;
		cost = span;
	}
	if ((uint64_t)n->dirty_bytes < (uint64_t)UP_NODE_SAVE_RATIO * cost)
		return (NODE_NOT_YET);
	if (span > 0 && n->port->save_bitmap(n->ctx, n->dirty_lo,
	    n->bitmap_buf + n->dirty_lo, span) == 0) {
		n->save_bytes += span;
		node_clean(n);
		return (UP_OK);
	}
	/* No span op, or it failed: the whole state, atomically. */
	return (node_persist(n));
}

/* node_load(): the port has nothing saved (not an error). */
#define NODE_NOTHING_SAVED	1

static bool	 node_delta_ok(const struct up_node *, const struct up_offer *);

/*
 * Loads the saved state into `n'.  Returns UP_OK, NODE_NOTHING_SAVED, or
 * the up_err that made the blob unusable; on anything but UP_OK `n' is
 * untouched (the bitmap buffer may have been overwritten, which the
 * caller's idle state does not read).
 */
static int
node_load(struct up_node *n)
{
	uint8_t		 blob[UP_NODE_STATE_MAX];
	struct up_offer	 o;
	struct up_node_floor fl[UP_MAX_COMPONENTS];
	struct up_rd	 rd;
	size_t		 slen = 0, blen = 0;
	uint32_t	 magic, session, bmlen, bmcrc, crc;
	unsigned int	 i, j;
	uint8_t		 ver, state, result, flags, nfl = 0;
	uint8_t		 cflags = 0, tag = 0, fec_k = 0;

	if (n->port->load(n->ctx, blob, sizeof(blob), &slen, n->bitmap_buf,
	    n->bitmap_cap, &blen) != 0)
		return (NODE_NOTHING_SAVED);
	if (slen < 4 || slen > sizeof(blob) || blen > n->bitmap_cap)
		return (UP_ELEN);
	up_rd_init(&rd, blob, slen - 4);
	magic = up_rd_u32(&rd);
	ver = up_rd_u8(&rd);
	if (up_rd_err(&rd) != UP_OK || magic != NODE_BLOB_MAGIC)
		return (UP_ERANGE);
	/* An unknown format is "nothing saved", never a guess. */
	if (ver != NODE_BLOB_VERSION && ver != NODE_BLOB_VERSION_2 &&
	    ver != NODE_BLOB_VERSION_1)
		return (UP_EVERSION);
	crc = (uint32_t)blob[slen - 4] | (uint32_t)blob[slen - 3] << 8 |
	    (uint32_t)blob[slen - 2] << 16 | (uint32_t)blob[slen - 1] << 24;
	if (up_crc32(0, blob, slen - 4) != crc)
		return (UP_EBADCRC);
	state = up_rd_u8(&rd);
	result = up_rd_u8(&rd);
	flags = up_rd_u8(&rd);
	session = up_rd_u32(&rd);
	bmlen = up_rd_u32(&rd);
	bmcrc = up_rd_u32(&rd);
	memset(&o, 0, sizeof(o));
	memset(fl, 0, sizeof(fl));
	if (ver == NODE_BLOB_VERSION_1)
		up_offer_rd_v1(&rd, &o);
	else {
		up_offer_rd(&rd, &o);
		nfl = up_rd_u8(&rd);
		/* Check the count before it indexes the array. */
		if (nfl > UP_MAX_COMPONENTS)
			return (UP_ELEN);
		for (i = 0; i < nfl; i++) {
			up_rd_str(&rd, fl[i].component, UP_NAME_MAX);
			fl[i].security_version = up_rd_u32(&rd);
		}
	}
	if (ver == NODE_BLOB_VERSION) {
		cflags = up_rd_u8(&rd);
		tag = up_rd_u8(&rd);
		fec_k = up_rd_u8(&rd);
	}
	if (up_rd_err(&rd) != UP_OK)
		return (up_rd_err(&rd));
	if (up_rd_left(&rd) != 0)
		return (UP_ELEN);
	/* One floor per component, each named. */
	for (i = 0; i < nfl; i++) {
		if (fl[i].component[0] == '\0')
			return (UP_ERANGE);
		for (j = 0; j < i; j++)
			if (strcmp(fl[i].component, fl[j].component) == 0)
				return (UP_ERANGE);
	}
	/* A full-form session has no tag and no k; a tag needs a session. */
	if ((cflags & ~(NODE_BC_COMPACT | NODE_BC_TAG)) != 0 ||
	    ((cflags & NODE_BC_COMPACT) == 0 &&
	    (cflags != 0 || tag != 0 || fec_k != 0)) ||
	    (session == 0 && cflags != 0))
		return (UP_ERANGE);

	if (state > UP_NS_FAILED || result > UP_R_DOWNGRADE ||
	    (flags & ~NODE_BF_KNOWN) != 0)
		return (UP_ERANGE);
	if ((flags & NODE_BF_ERASING) != 0 && state != UP_NS_RECEIVING)
		return (UP_ERANGE);
	if ((state == UP_NS_IDLE) != (session == 0))
		return (UP_ERANGE);
	if (session != 0) {
		if (o.component[0] == '\0' || o.to_version[0] == '\0' ||
		    o.size == 0 || o.block_size == 0 ||
		    o.nblocks != up_nblocks(o.size, o.block_size))
			return (UP_ERANGE);
		if (o.nblocks > n->bitmap_cap * 8)
			return (UP_ENOSPC);
		if (bmlen != up_bitmap_bytes(o.nblocks) || blen != bmlen)
			return (UP_ELEN);
		/* A delta resumes only where deltas work (NULL port ops). */
		if (o.kind == UP_KIND_DELTA && !node_delta_ok(n, &o))
			return (UP_EVERSION);
	} else if (bmlen != 0)
		return (UP_ELEN);
	/*
	 * The bitmap is saved with the blob; both or neither are good.
	 * Unless bits were saved in place since (NODE_BF_JOURNAL): then
	 * only the length holds, and the bits past nblocks are cleared.  A
	 * bit the port kept wrongly costs a failed VERIFY, never an image:
	 * the SHA-256 decides.
	 */
	if ((flags & NODE_BF_JOURNAL) == 0 &&
	    up_crc32(0, n->bitmap_buf, bmlen) != bmcrc)
		return (UP_EBADCRC);
	if (bmlen > 0 && o.nblocks % 8 != 0)
		n->bitmap_buf[bmlen - 1] &= (uint8_t)((1u << (o.nblocks % 8)) -
		    1);

	n->state = state;
	n->result = result;
	n->unacked = (flags & NODE_BF_UNACKED) != 0;
	n->switched = (flags & NODE_BF_SWITCHED) != 0;
	n->work = (flags & NODE_BF_ERASING) != 0 ? NODE_W_ERASE : NODE_W_NONE;
	memcpy(n->floor, fl, sizeof(n->floor));
	n->nfloor = nfl;
	n->save_cost = (uint32_t)(slen + blen);
	n->work_off = 0;
	n->session = session;
	n->offer = o;
	n->compact = (cflags & NODE_BC_COMPACT) != 0;
	n->tag_bound = (cflags & NODE_BC_TAG) != 0;
	n->tag = tag;
	n->sess_k = fec_k;
	if (session != 0) {
		up_bitmap_init(&n->held, n->bitmap_buf, o.nblocks);
		/* Cut while erasing: the erase starts again, nothing held. */
		if (n->work == NODE_W_ERASE)
			up_bitmap_clear_all(&n->held);
		n->nheld = up_bitmap_count(&n->held);
	}
	return (UP_OK);
}

/* ------------------------------------------------------------------ */
/* State changes                                                      */

/* Enters `state', persists it, logs it and tells the port. */
static void
node_set_state(struct up_node *n, uint8_t state, uint8_t result)
{
	uint8_t		 old = n->state;

	/* Work belongs to one state: the erase to RECEIVING, the checks
	 * to DOWNLOADED.  Leaving it stops the work. */
	if (!(state == UP_NS_RECEIVING && n->work == NODE_W_ERASE) &&
	    !(state == UP_NS_DOWNLOADED && n->work >= NODE_W_HASH))
		n->work = NODE_W_NONE;
	/* So does the hash on receipt: a package held, not checked. */
	if (state != UP_NS_RECEIVING && state != UP_NS_DOWNLOADED)
		n->hash_live = false;
	n->state = state;
	n->result = result;
	(void)node_persist(n);
	up_logf(UP_LOG_INFO, "node %016llx: session %08lx: %s -> %s (%s)",
	    node_id(n), (unsigned long)n->session, up_state_str(old),
	    up_state_str(state), up_result_str(result));
	if (n->port->state_changed != NULL)
		n->port->state_changed(n->ctx, state, result);
}

/*
 * Enters a final state (UPDATED or FAILED): the RESULT goes out now and
 * again after 1, 2, 4 ... UP_NODE_RESULT_MAX_MS seconds until RESULT_ACK
 * (§5.2 step 7).  Persisted first, so a reboot resends it.
 */
static void
node_finish_at(struct up_node *n, uint8_t state, uint8_t result,
    uint32_t delay)
{
	n->unacked = true;
	n->switched = false;
	n->t_activate.armed = false;
	n->t_status.armed = false;
	node_set_state(n, state, result);
	if (delay > 0) {
		/* In a reply slot (§11.9); the back-off follows from it. */
		n->result_tries = 0;
		node_timer_arm(&n->t_result, node_now(n), delay);
		return;
	}
	(void)node_send_result(n);
	n->result_tries = 1;
	node_timer_arm(&n->t_result, node_now(n), UP_NODE_RESULT_MIN_MS);
}

static void
node_finish(struct up_node *n, uint8_t state, uint8_t result)
{
	node_finish_at(n, state, result, 0);
}

/* Forgets the session: IDLE, nothing held, no timer of it. */
static void
node_drop(struct up_node *n)
{
	uint8_t		 old = n->state;

	/* A decline scheduled for another offer still goes out. */
	if (n->acc_session == n->session)
		n->t_accept.armed = false;
	n->session = 0;
	n->unacked = false;
	n->switched = false;
	n->work = NODE_W_NONE;
	n->hash_live = false;
	n->nheld = 0;
	node_clean(n);
	n->compact = n->tag_bound = false;
	n->tag = n->sess_k = 0;
	n->integrity_retry = false;
	memset(&n->offer, 0, sizeof(n->offer));
	up_bitmap_init(&n->held, n->bitmap_buf, 0);
	n->t_status.armed = false;
	n->t_result.armed = false;
	n->t_activate.armed = false;
	n->t_save.armed = false;
	n->t_vreply.armed = false;
	if (old != UP_NS_IDLE)
		node_set_state(n, UP_NS_IDLE, UP_R_INITIAL);
	else
		(void)node_persist(n);
}

/* Every block held: DOWNLOADED and one unsolicited STATUS (§5.2 step 3). */
static void
node_downloaded(struct up_node *n)
{
	node_set_state(n, UP_NS_DOWNLOADED, UP_R_INITIAL);
	(void)node_send_status(n);
}

/*
 * After port->activate returned 0 the simulator is about to "reboot" the
 * engine: nothing may be sent or changed in between.
 */
static bool
node_halted(const struct up_node *n)
{
	return (n->state == UP_NS_ACTIVATING && n->switched);
}

static int	 node_reply_verify(struct up_node *, bool, uint32_t, bool);
static bool	 node_refetch(struct up_node *);

/* ------------------------------------------------------------------ */
/* Deltas (docs/up-node-engine.md, "Deltas")                          */

/* The port and the engine can take this delta offer. */
static bool
node_delta_ok(const struct up_node *n, const struct up_offer *o)
{
	const struct up_port *p = n->port;

	return (o->delta_format == UP_DELTA_VCDIFF && n->vcd != NULL &&
	    p->pkg_capacity != NULL && p->pkg_erase != NULL &&
	    p->pkg_write != NULL && p->pkg_read != NULL &&
	    p->base_read != NULL);
}

/* Where the session's blocks go: the package area for a delta. */
static int
node_area_erase(struct up_node *n, uint32_t off, uint32_t len)
{
	if (n->offer.kind == UP_KIND_DELTA)
		return (n->port->pkg_erase(n->ctx, off, len));
	return (n->port->slot_erase(n->ctx, off, len));
}

static int
node_area_write(struct up_node *n, uint32_t off, const uint8_t *p,
    size_t len)
{
	if (n->offer.kind == UP_KIND_DELTA)
		return (n->port->pkg_write(n->ctx, off, p, len));
	return (n->port->slot_write(n->ctx, off, p, len));
}

/* The session's blocks are in the package area for a delta. */
static int
node_area_read(struct up_node *n, uint32_t off, uint8_t *p, size_t len)
{
	if (n->offer.kind == UP_KIND_DELTA && n->port->pkg_read != NULL)
		return (n->port->pkg_read(n->ctx, off, p, len));
	return (n->port->slot_read(n->ctx, off, p, len));
}

/* The decoder's I/O: package area in, running image as source, slot out. */
static int
node_vcd_delta(void *ctx, uint32_t off, uint8_t *p, size_t len)
{
	struct up_node	*n = ctx;

	return (n->port->pkg_read(n->ctx, off, p, len));
}

static int
node_vcd_source(void *ctx, uint32_t off, uint8_t *p, size_t len)
{
	struct up_node	*n = ctx;

	return (n->port->base_read(n->ctx, off, p, len));
}

static int
node_vcd_write(void *ctx, uint32_t off, const uint8_t *p, size_t len)
{
	struct up_node	*n = ctx;

	return (n->port->slot_write(n->ctx, off, p, len));
}

static int
node_vcd_readback(void *ctx, uint32_t off, uint8_t *p, size_t len)
{
	struct up_node	*n = ctx;

	return (n->port->slot_read(n->ctx, off, p, len));
}

static const struct up_vcd_io node_vcd_io = {
	.delta_read = node_vcd_delta,
	.source_read = node_vcd_source,
	.target_write = node_vcd_write,
	.target_read = node_vcd_readback
};

/* The decoder's error as a result code (docs/up-node-engine.md). */
static uint8_t
node_apply_result(int e)
{
	switch (e) {
	case UP_EVERSION:
		return (UP_R_UNSUPPORTED);
	case UP_ENOSPC:
		return (UP_R_NO_MEMORY);
	case UP_EBADCRC:
		/* The window checksum failed: the base is not the one. */
		return (UP_R_INTEGRITY);
	default:
		return (UP_R_FAILED);
	}
}

/* ------------------------------------------------------------------ */
/* Signatures (docs/up-protocol.md §5.4, §6)                          */

/*
 * The cloud's signature over the descriptor of `o': UP_R_INITIAL, or
 * the port's refusal (UP_R_SIGNATURE, UP_R_UNSUPPORTED).  The
 * descriptor is built in n->frame, the tx scratch (UP_NODE_SCRATCH holds
 * UP_DESC_MAX); nothing is sent while it is in use.
 */
static int
node_sig_check(struct up_node *n, const struct up_offer *o)
{
	int		 len;

	if (n->port->sig_verify == NULL)
		return (UP_R_INITIAL);
	if ((len = up_desc_encode(o, n->frame, sizeof(n->frame))) < 0)
		return (UP_R_SIGNATURE);
	return (n->port->sig_verify(n->ctx, o, n->frame, (size_t)len));
}

/* ------------------------------------------------------------------ */
/* Hash on receipt (docs/up-node-engine.md, "Hash on receipt")        */

/*
 * Starts the package's hash afresh over the session's area: blocks
 * stored in order from byte 0 are folded in as they come
 * (node_hash_block), blocks held already or out of order are read back
 * in steps once the gap before them fills (node_hash_catchup).  Without
 * it (UP_NODE_HASH_RX 0, or the port's begin failed) VERIFY hashes the
 * whole area.
 */
static void
node_hash_restart(struct up_node *n)
{
	n->hash_live = false;
	n->hash_off = 0;
	n->hash_rx = 0;
#if UP_NODE_HASH_RX
	if (n->session != 0 && n->port->sha256_begin(n->ctx) == 0)
		n->hash_live = true;
#endif
}

/* Block `index' (p, len) was just stored: folded in if it is next. */
static void
node_hash_block(struct up_node *n, uint32_t index, const uint8_t *p,
    size_t len)
{
	if (!n->hash_live ||
	    (uint64_t)index * n->offer.block_size != n->hash_off)
		return;
	if (n->port->sha256_update(n->ctx, p, len) != 0) {
		n->hash_live = false;
		return;
	}
	n->hash_off += (uint32_t)len;
	n->hash_rx += (uint32_t)len;
}

/* Held bytes wait at hash_off, and no other work holds the context. */
static bool
node_hash_due(const struct up_node *n)
{
	return (n->hash_live && n->work == NODE_W_NONE &&
	    (n->state == UP_NS_RECEIVING || n->state == UP_NS_DOWNLOADED) &&
	    n->hash_off < n->offer.size &&
	    up_bitmap_get(&n->held, n->hash_off / n->offer.block_size));
}

/* Where the hashing reads go: the lent buffer, or the scratch. */
static uint8_t *
node_hash_buf(struct up_node *n, uint32_t *len)
{
	if (n->hash_buf != NULL) {
		*len = n->hash_buf_len > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)n->hash_buf_len;
		return (n->hash_buf);
	}
	*len = (uint32_t)sizeof(n->slice);
	return (n->slice);
}

/*
 * One step of catching up, from up_node_tick(): folds in at most
 * UP_NODE_VERIFY_STEP held bytes past hash_off, read back from the area
 * (blocks that came out of order, or were held before a boot), a run
 * of held blocks per read.  A failed read or update drops the running
 * hash: VERIFY then hashes the whole area and reports what fails.
 */
static void
node_hash_catchup(struct up_node *n)
{
	uint64_t	 stop, lim;
	uint32_t	 end, piece, blen, bs = n->offer.block_size;
	uint8_t		*buf = node_hash_buf(n, &blen);

	end = n->offer.size - n->hash_off > UP_NODE_VERIFY_STEP ?
	    n->hash_off + UP_NODE_VERIFY_STEP : n->offer.size;
	while (n->hash_off < end) {
		if (!up_bitmap_get(&n->held, n->hash_off / bs))
			return;
		/* The held run from hash_off, within the step and buffer. */
		lim = (uint64_t)n->hash_off + blen;
		if (lim > end)
			lim = end;
		stop = ((uint64_t)n->hash_off / bs + 1) * bs;
		while (stop < lim && up_bitmap_get(&n->held,
		    (uint32_t)(stop / bs)))
			stop += bs;
		piece = (uint32_t)((stop < lim ? stop : lim) - n->hash_off);
		if (node_area_read(n, n->hash_off, buf, piece) != 0 ||
		    n->port->sha256_update(n->ctx, buf, piece) != 0) {
			up_logf(UP_LOG_DEBUG, "node %016llx: session %08lx: "
			    "hash on receipt stopped at %lu bytes",
			    node_id(n), (unsigned long)n->session,
			    (unsigned long)n->hash_off);
			n->hash_live = false;
			return;
		}
		n->hash_off += piece;
	}
}

/* ------------------------------------------------------------------ */
/* Work in steps (docs/up-node-engine.md, "Work in steps")            */

/*
 * The answer to the VERIFY that started the checks goes out in a random
 * slot of its schedule (§11.9): nodes that got one VERIFY together finish
 * their checks together.  0 for a full-form VERIFY: at once.
 */
static uint32_t
node_verify_delay(const struct up_node *n)
{
	return (node_slot_delay(n, n->vslots, n->vslot_ms));
}

static void
node_work_fail(struct up_node *n, uint8_t result, const char *what)
{
	up_logf(UP_LOG_WARN, "node %016llx: session %08lx: %s",
	    node_id(n), (unsigned long)n->session, what);
	n->work = NODE_W_NONE;
	node_finish_at(n, UP_NS_FAILED, result, node_verify_delay(n));
}

/*
 * Starts hashing (NODE_W_HASH or NODE_W_HASH_IMAGE) from byte 0, or the
 * package's from where the hash on receipt got to.
 */
static void
node_hash_begin(struct up_node *n, uint8_t work)
{
	if (work == NODE_W_HASH && n->hash_live) {
		up_logf(UP_LOG_INFO, "node %016llx: session %08lx: checks "
		    "start at %lu of %lu bytes (%lu hashed as received)",
		    node_id(n), (unsigned long)n->session,
		    (unsigned long)n->hash_off, (unsigned long)n->offer.size,
		    (unsigned long)n->hash_rx);
		/* The checks own the context from here on. */
		n->hash_live = false;
		n->work = work;
		n->work_off = n->hash_off;
		return;
	}
	n->hash_live = false;
	if (n->port->sha256_begin(n->ctx) != 0) {
		node_work_fail(n, UP_R_FAILED, "SHA-256 unavailable");
		return;
	}
	n->work = work;
	n->work_off = 0;
}

/*
 * Hashes the next UP_NODE_VERIFY_STEP bytes of the first `total' bytes
 * of the package area (`pkg') or the slot, through n->slice.  Returns 1
 * once all are in and the digest matches `want', 0 for more to do, -1
 * for a mismatch, -2 for an I/O error.
 */
static int
node_hash_step(struct up_node *n, bool pkg, uint32_t total,
    const uint8_t want[32])
{
	uint8_t		 md[32];
	uint32_t	 end, piece, blen;
	uint8_t		*buf = node_hash_buf(n, &blen);

	end = total - n->work_off > UP_NODE_VERIFY_STEP ?
	    n->work_off + UP_NODE_VERIFY_STEP : total;
	while (n->work_off < end) {
		piece = end - n->work_off;
		if (piece > blen)
			piece = blen;
		if ((pkg ? n->port->pkg_read(n->ctx, n->work_off, buf,
		    piece) : n->port->slot_read(n->ctx, n->work_off, buf,
		    piece)) != 0 ||
		    n->port->sha256_update(n->ctx, buf, piece) != 0)
			return (-2);
		n->work_off += piece;
	}
	if (n->work_off < total)
		return (0);
	if (n->port->sha256_end(n->ctx, md) != 0)
		return (-2);
	return (memcmp(md, want, sizeof(md)) == 0 ? 1 : -1);
}

/* Every check passed: VERIFIED, and the RESULT says so (§5.2 step 5). */
static void
node_verified(struct up_node *n)
{
	n->work = NODE_W_NONE;
	node_set_state(n, UP_NS_VERIFIED, UP_R_INITIAL);
	(void)node_reply_verify(n, n->vreply_compact, node_verify_delay(n),
	    true);
}

/* Erases the next step of [0, total) of the area or (image) the slot. */
static int
node_erase_step(struct up_node *n, bool image, uint32_t total)
{
	uint32_t	 len;

	len = total - n->work_off > UP_NODE_ERASE_STEP ?
	    UP_NODE_ERASE_STEP : total - n->work_off;
	if ((image ? n->port->slot_erase(n->ctx, n->work_off, len) :
	    node_area_erase(n, n->work_off, len)) != 0)
		return (-1);
	n->work_off += len;
	return (n->work_off >= total ? 1 : 0);
}

/* One step of the current work, from up_node_tick(). */
static void
node_work_step(struct up_node *n)
{
	const struct up_offer *o = &n->offer;
	int		 e, r;

	switch (n->work) {
	case NODE_W_ERASE:
		if ((e = node_erase_step(n, false, o->size)) < 0) {
			up_logf(UP_LOG_WARN, "node %016llx: session %08lx: "
			    "erase failed at %lu, giving up", node_id(n),
			    (unsigned long)n->session,
			    (unsigned long)n->work_off);
			(void)node_send_abort(n, UP_R_FAILED);
			node_drop(n);
		} else if (e > 0) {
			/* Erased: the flag goes, blocks may land anywhere. */
			n->work = NODE_W_NONE;
			(void)node_persist(n);
		}
		return;
	case NODE_W_HASH:
		e = node_hash_step(n, o->kind == UP_KIND_DELTA, o->size,
		    o->sha256);
		if (e == 0)
			return;
		if (e == -2) {
			node_work_fail(n, UP_R_INTEGRITY, "cannot hash the "
			    "package");
			return;
		}
		if (e < 0) {
			/* RESULT(RECEIVING, integrity): not final (§11.3). */
			if (node_refetch(n)) {
				(void)node_reply_verify(n, n->vreply_compact,
				    node_verify_delay(n), true);
				return;
			}
			node_work_fail(n, UP_R_INTEGRITY, "package SHA-256 "
			    "mismatch");
			return;
		}
		/* The bytes are the signed ones only if the signature is. */
		if ((r = node_sig_check(n, o)) != UP_R_INITIAL) {
			node_work_fail(n, UP_R_SIGNATURE, "the descriptor's "
			    "signature does not verify");
			return;
		}
		if (o->kind != UP_KIND_DELTA) {
			node_verified(n);
			return;
		}
		/* A delta: the image is rebuilt into the erased slot. */
		n->work = NODE_W_ERASE_IMAGE;
		n->work_off = 0;
		up_logf(UP_LOG_INFO, "node %016llx: session %08lx: applying "
		    "the %s %s -> %s delta", node_id(n),
		    (unsigned long)n->session, o->component, o->from_version,
		    o->to_version);
		return;
	case NODE_W_ERASE_IMAGE:
		if ((e = node_erase_step(n, true, o->image_size)) < 0) {
			node_work_fail(n, UP_R_FAILED, "cannot erase the "
			    "slot");
			return;
		}
		if (e == 0)
			return;
		/* The running image is a whole slot at most. */
		(void)up_vcd_init(n->vcd, &node_vcd_io, n, o->size,
		    n->port->slot_capacity(n->ctx), o->image_size, n->vcd_buf,
		    n->vcd_buf_len);
		n->work = NODE_W_APPLY;
		return;
	case NODE_W_APPLY:
		e = up_vcd_run(n->vcd, UP_NODE_APPLY_STEP);
		if (e == UP_VCD_MORE)
			return;
		if (e != UP_OK) {
			up_logf(UP_LOG_WARN, "node %016llx: session %08lx: "
			    "delta does not apply at %lu bytes: %s (%s)",
			    node_id(n), (unsigned long)n->session,
			    (unsigned long)up_vcd_written(n->vcd),
			    up_vcd_why(n->vcd), up_strerror(e));
			n->work = NODE_W_NONE;
			node_finish_at(n, UP_NS_FAILED, node_apply_result(e),
			    node_verify_delay(n));
			return;
		}
		if (up_vcd_written(n->vcd) != o->image_size) {
			node_work_fail(n, UP_R_INTEGRITY, "rebuilt image does "
			    "not have image_size bytes");
			return;
		}
		node_hash_begin(n, NODE_W_HASH_IMAGE);
		return;
	case NODE_W_HASH_IMAGE:
		e = node_hash_step(n, false, o->image_size, o->image_sha256);
		if (e == 0)
			return;
		if (e < 0) {
			node_work_fail(n, UP_R_INTEGRITY, "rebuilt image does "
			    "not match image_sha256");
			return;
		}
		node_verified(n);
		return;
	default:
		n->work = NODE_W_NONE;
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Received messages                                                  */

static int
node_on_discover(struct up_node *n, const struct up_msg *m)
{
	bool		 compact = m->form == UP_FORM_COMPACT;
	uint32_t	 d;

	d = compact ? node_slot_delay(n, m->cx.slots, m->cx.slot_ms) :
	    node_jitter(n, m->u.discover.window_ms);
	/* A compact DISCOVER (a LAN gateway's probe too) gets a compact
	 * ANNOUNCE, which tells the gateway what we can take (§11.1). */
	if (!n->t_announce.armed)
		n->ann_compact = false;
	n->ann_compact = n->ann_compact || compact;
	node_timer_arm_min(&n->t_announce, node_now(n), d);
	return (UP_OK);
}

/* An offer's session is stale after deadline_s (or UP_NODE_STALE_S). */
static bool
node_stale(const struct up_node *n, uint32_t now)
{
	uint64_t	 limit;

	limit = (uint64_t)(n->offer.deadline_s != 0 ? n->offer.deadline_s :
	    UP_NODE_STALE_S) * 1000;
	return ((uint64_t)(now - n->last_activity) >= limit);
}

/*
 * One staging slot (§5.2 step 2): may an offer for another session take
 * it from the session the node holds?  UP_R_INITIAL or UP_R_BUSY.
 *  - during ACTIVATING nothing may: the switch is under way;
 *  - the same package under a new session id resumes it;
 *  - a newer version (§2.7) of the held image's component supersedes a
 *    downloaded-but-not-activated image (RECEIVING, DOWNLOADED,
 *    VERIFIED): it would never be activated now, and holding it would
 *    strand the node behind a session that may no longer exist;
 *  - anything else waits until the held session is stale.  Otherwise two
 *    concurrent offers would evict each other's blocks forever.
 */
static int
node_slot_code(struct up_node *n, const struct up_msg *m)
{
	const struct up_offer *o = &m->u.offer, *held = &n->offer;

	if (n->session == 0 || n->session == m->session ||
	    n->state < UP_NS_RECEIVING || n->state > UP_NS_ACTIVATING)
		return (UP_R_INITIAL);
	if (n->state == UP_NS_ACTIVATING)
		return (UP_R_BUSY);
	if (node_same_package(o, held))
		return (UP_R_INITIAL);
	if (strcmp(o->component, held->component) == 0 &&
	    up_version_cmp(o->to_version, held->to_version) > 0)
		return (UP_R_INITIAL);
	if (node_stale(n, node_now(n)))
		return (UP_R_INITIAL);
	return (UP_R_BUSY);
}

/*
 * Whether to take an applicable offer: UP_R_INITIAL or the decline code,
 * in the order of §5.2 step 2: facts about the node first (cheapest
 * first), then the staging slot, the signature, local policy last.
 * Nothing here writes: a declined offer changes nothing.
 */
static int
node_offer_code(struct up_node *n, const struct up_msg *m,
    const char *running)
{
	const struct up_offer *o = &m->u.offer;
	const char	*v;
	uint32_t	 cap, need;
	size_t		 over = UP_DATA_OVERHEAD;
	unsigned int	 i;
	int		 r;

	if (strcmp(running, o->to_version) == 0)
		return (UP_R_ALREADY);
	/* A signed flag this node does not know may restrict the image. */
	if ((o->desc_flags & ~UP_DESC_KNOWN) != 0)
		return (UP_R_UNSUPPORTED);
	if ((r = node_rollback_code(n, o)) != UP_R_INITIAL)
		return (r);
	if (o->kind == UP_KIND_DELTA) {
		if (strcmp(running, o->from_version) != 0)
			return (UP_R_BASE_MISMATCH);
		if (!node_delta_ok(n, o))
			return (UP_R_UNSUPPORTED);
	} else if (o->kind != UP_KIND_FULL)
		return (UP_R_UNSUPPORTED);
	for (i = 0; i < o->ndeps; i++) {
		v = node_version(n, o->deps[i].component);
		if (v == NULL || up_version_cmp(v, o->deps[i].min_version) < 0)
			return (UP_R_DEPENDENCY);
	}
	cap = n->port->slot_capacity(n->ctx);
	need = o->size > o->image_size ? o->size : o->image_size;
	if (o->kind == UP_KIND_DELTA) {
		/* The delta in the package area, the image in the slot. */
		need = o->image_size;
		if (o->size > n->port->pkg_capacity(n->ctx))
			return (UP_R_NO_SPACE);
	}
	if (need > cap)
		return (UP_R_NO_SPACE);
	/* The bitmap buffer bounds the blocks we can track. */
	if ((uint64_t)o->nblocks > (uint64_t)n->bitmap_cap * 8)
		return (UP_R_NO_MEMORY);
	/* A DATA frame of the session must fit what we receive. */
	if (m->form == UP_FORM_COMPACT)
		over = up_cdata_off(o->nblocks - 1) + node_ctrail(n);
	if (n->info.max_frame != 0 && (over == 0 ||
	    (size_t)o->block_size + over > n->info.max_frame))
		return (UP_R_NO_MEMORY);
	/* Its floor must have a place to be kept once it is confirmed. */
	if (!node_floor_room(n, o->component, o->security_version))
		return (UP_R_NO_MEMORY);
	if ((r = node_slot_code(n, m)) != UP_R_INITIAL)
		return (r);
	/*
	 * The signature now, before anything is erased (§5.4): the checks
	 * above trusted the offer's word for the version, the security
	 * version and the downgrade permission, and a forged offer must
	 * not cost the slot.
	 */
	if ((r = node_sig_check(n, o)) != UP_R_INITIAL)
		return (r == UP_R_UNSUPPORTED ? r : UP_R_SIGNATURE);
	if (n->port->offer_check != NULL)
		return (n->port->offer_check(n->ctx, o));
	return (UP_R_INITIAL);
}

/*
 * The ACCEPT answering OFFER `m': now, or for a compact OFFER in a random
 * slot of its schedule (§11.9).  A later OFFER of the same session keeps
 * the slot and updates the answer; one of another session replaces it.
 */
static int
node_answer_offer(struct up_node *n, const struct up_msg *m, uint8_t code)
{
	bool		 compact = m->form == UP_FORM_COMPACT;
	uint32_t	 d = 0;

	if (compact)
		d = node_slot_delay(n, m->cx.slots, m->cx.slot_ms);
	if (n->t_accept.armed && n->acc_session == m->session) {
		n->acc_code = code;
		n->acc_compact = compact;
		return (UP_OK);
	}
	if (d == 0)
		return (node_send_accept(n, m->session, code, compact));
	n->acc_session = m->session;
	n->acc_code = code;
	n->acc_compact = compact;
	node_timer_arm(&n->t_accept, node_now(n), d);
	return (UP_OK);
}

/*
 * The session's form, tag and parity group size come with its OFFER
 * (docs/up-protocol.md §11.4).  Returns whether anything changed.
 */
static bool
node_setup(struct up_node *n, const struct up_msg *m)
{
	bool		 compact = m->form == UP_FORM_COMPACT, changed;
	uint8_t		 tag = compact ? m->cx.tag : 0;
	uint8_t		 k = compact ? m->cx.fec_k : 0;

	changed = n->compact != compact || n->tag_bound != compact ||
	    n->tag != tag || n->sess_k != k;
	n->compact = compact;
	n->tag_bound = compact;
	n->tag = tag;
	n->sess_k = k;
	return (changed);
}

static int
node_on_offer(struct up_node *n, const struct up_msg *m)
{
	const struct up_offer *o = &m->u.offer;
	const char	*running;
	unsigned int	 i;
	int		 code;
	bool		 live;

	/*
	 * Our tag given to another session: the gateway reuses it, so our
	 * session is over on this link (§11.4), whoever this offer is for.
	 * An OFFER of our package will bind the new tag.
	 */
	if (m->form == UP_FORM_COMPACT && n->tag_bound &&
	    m->session != n->session && m->cx.tag == n->tag) {
		n->tag_bound = false;
		(void)node_persist(n);
		up_logf(UP_LOG_INFO, "node %016llx: session %08lx: tag %u "
		    "now names session %08lx", node_id(n),
		    (unsigned long)n->session, n->tag,
		    (unsigned long)m->session);
	}

	/* Nodes the offer is not for stay silent (§5.2 step 2). */
	if ((running = node_version(n, o->component)) == NULL)
		return (UP_OK);
	if (o->nhw > 0) {
		for (i = 0; i < o->nhw; i++)
			if (strcmp(o->hw[i], n->info.hw) == 0)
				break;
		if (i == o->nhw)
			return (UP_OK);
	}

	live = n->session != 0 && n->state >= UP_NS_RECEIVING &&
	    n->state <= UP_NS_ACTIVATING;
	/* A repeated OFFER gets the same ACCEPT again (idempotent). */
	if (live && m->session == n->session &&
	    node_same_package(o, &n->offer)) {
		n->last_activity = node_now(n);
		if (node_setup(n, m))
			(void)node_persist(n);
		return (node_answer_offer(n, m, UP_R_INITIAL));
	}

	/*
	 * The session that brought the version we run, its RESULT
	 * acknowledged: the gateway holds our record.  Its OFFER again (a
	 * session reopened for latecomers) is not for us (§5.2 step 2): on
	 * a shared radio every updated node's "already" would fall into
	 * the latecomers' answer slots.
	 */
	if (m->session == n->session && n->state == UP_NS_UPDATED &&
	    !n->unacked && node_same_package(o, &n->offer) &&
	    strcmp(running, o->to_version) == 0)
		return (UP_OK);

	code = node_offer_code(n, m, running);
	if (code != UP_R_INITIAL) {
		up_logf(UP_LOG_INFO, "node %016llx: session %08lx: "
		    "declined %s %s: %s", node_id(n),
		    (unsigned long)m->session, o->component, o->to_version,
		    up_result_str(code));
		return (node_answer_offer(n, m, (uint8_t)code));
	}

	if (live && n->session != m->session &&
	    !node_same_package(o, &n->offer))
		up_logf(UP_LOG_INFO, "node %016llx: session %08lx (%s %s, %s) "
		    "given up for session %08lx (%s %s)", node_id(n),
		    (unsigned long)n->session, n->offer.component,
		    n->offer.to_version, up_state_str(n->state),
		    (unsigned long)m->session, o->component, o->to_version);
	n->t_status.armed = false;
	n->t_result.armed = false;
	n->t_activate.armed = false;
	n->unacked = false;
	n->switched = false;
	/* An erase under way goes on; checks start again at VERIFY. */
	if (n->work != NODE_W_ERASE)
		n->work = NODE_W_NONE;
	n->last_activity = node_now(n);
	if (live && n->state != UP_NS_ACTIVATING &&
	    node_same_package(o, &n->offer)) {
		/*
		 * Same bytes, new session id (a gateway restarted or
		 * retried): keep the bitmap and adopt the session.  A
		 * verification was of the old descriptor, so verify again.
		 */
		n->session = m->session;
		n->offer = *o;
		(void)node_setup(n, m);
		node_set_state(n, n->state == UP_NS_VERIFIED ?
		    UP_NS_DOWNLOADED : n->state, UP_R_INITIAL);
		/* Checks under way or done took the hash: from byte 0. */
		if (!n->hash_live)
			node_hash_restart(n);
		return (node_answer_offer(n, m, UP_R_INITIAL));
	}

	/*
	 * A new transfer.  The answer goes out now; the area is erased in
	 * steps from the next tick on (persisted as erasing, so a cut
	 * erases again), and blocks are stored only where it is erased.
	 */
	n->session = m->session;
	n->offer = *o;
	(void)node_setup(n, m);
	n->integrity_retry = false;
	up_bitmap_init(&n->held, n->bitmap_buf, o->nblocks);
	up_bitmap_clear_all(&n->held);
	n->nheld = 0;
	node_clean(n);
	/*
	 * Parity decoders hold rows of the package they were fed: none of
	 * them may serve this one, even under the same session id and
	 * block size (a gateway that reused the id, a replay), or it would
	 * "recover" blocks of the old package, past this one's end
	 * (fuzz_up_node).  Carved afresh at the next PARITY.
	 */
	n->fec_session = 0;
	n->fec_inuse = 0;
	n->work = NODE_W_ERASE;
	n->work_off = 0;
	node_set_state(n, UP_NS_RECEIVING, UP_R_INITIAL);
	node_hash_restart(n);
	return (node_answer_offer(n, m, UP_R_INITIAL));
}

/* ------------------------------------------------------------------ */
/* Parity (docs/up-protocol.md §4.6, docs/up-node-engine.md "Parity")  */

static uint32_t
node_blen(const struct up_node *n, uint32_t index)
{
	if (index == n->offer.nblocks - 1)
		return (n->offer.size - index * n->offer.block_size);
	return (n->offer.block_size);
}

/*
 * Writes block `index' (len bytes) to the staging area and marks it held.
 * Returns 0, or -1 when the port's write failed (nothing marked).  Every
 * block, whatever brought it (DATA, parity, XOR), goes through here.
 */
static int
node_put_block(struct up_node *n, uint32_t index, const uint8_t *p,
    size_t len)
{
	if (node_area_write(n, index * n->offer.block_size, p, len) != 0)
		return (-1);
	node_hash_block(n, index, p, len);
	up_bitmap_set(&n->held, index);
	n->nheld++;
	n->dirty++;
	n->dirty_bytes += (uint32_t)len;
	if (index / 8 < n->dirty_lo)
		n->dirty_lo = index / 8;
	if (index / 8 > n->dirty_hi)
		n->dirty_hi = index / 8;
	return (0);
}

static int
node_fec_read(void *ctx, uint32_t group, uint16_t i, uint8_t *buf,
    size_t blen)
{
	struct up_node	*n = ctx;
	uint32_t	 index = group * n->fec_k + i, len;

	/* TS004: a short last block is zero-padded to block_size. */
	len = node_blen(n, index);
	memset(buf + len, 0, blen - len);
	return (node_area_read(n, index * n->offer.block_size, buf, len));
}

/* A block the decoder recovered: stored and held exactly like DATA. */
static int
node_fec_write(void *ctx, uint32_t group, uint16_t i, const uint8_t *buf,
    size_t blen)
{
	struct up_node	*n = ctx;
	uint32_t	 index = group * n->fec_k + i;

	(void)blen;
	if (up_bitmap_get(&n->held, index))
		return (0);
	if (node_put_block(n, index, buf, node_blen(n, index)) != 0)
		return (-1);
	n->fec_recovered++;
	return (0);
}

/*
 * The row store offset of store row `row' of the decoder of `group'
 * (docs/up-node-engine.md, "Parity"): each decoder slot owns
 * fec_store_rows rows of it.
 */
static int
node_fec_row_off(struct up_node *n, uint32_t group, uint16_t row,
    uint32_t *off)
{
	unsigned int	 s;

	if (row >= n->fec_store_rows)
		return (-1);
	for (s = 0; s < n->fec_nslots; s++)
		if ((n->fec_inuse & (1u << s)) != 0 &&
		    n->fec_dec[s].group == group) {
			*off = ((uint32_t)s * n->fec_store_rows + row) *
			    n->fec_blen;
			return (0);
		}
	return (-1);
}

static int
node_fec_row_read(void *ctx, uint32_t group, uint16_t row, uint8_t *buf,
    size_t blen)
{
	struct up_node	*n = ctx;
	uint32_t	 off;

	if (n->port->rows_read == NULL ||
	    node_fec_row_off(n, group, row, &off) != 0)
		return (-1);
	return (n->port->rows_read(n->ctx, off, buf, blen));
}

static int
node_fec_row_write(void *ctx, uint32_t group, uint16_t row,
    const uint8_t *buf, size_t blen)
{
	struct up_node	*n = ctx;
	uint32_t	 off;

	if (n->port->rows_write == NULL ||
	    node_fec_row_off(n, group, row, &off) != 0)
		return (-1);
	return (n->port->rows_write(n->ctx, off, buf, blen));
}

static const struct up_fec_ops node_fec_ops = {
	.src_read = node_fec_read,
	.src_write = node_fec_write,
	.row_read = node_fec_row_read,
	.row_write = node_fec_row_write
};

/* Bytes of the port's parity row store, 0 without one. */
static uint32_t
node_rows_capacity(const struct up_node *n)
{
	const struct up_port *p = n->port;

	if (p->rows_capacity == NULL || p->rows_read == NULL ||
	    p->rows_write == NULL)
		return (0);
	return (p->rows_capacity(n->ctx));
}

/*
 * Cuts the workspace for this session's block size: decoders first, then
 * the scratch, then each decoder's rows in RAM, at most the row budget
 * (up_node_set_fec_rows); the port's row store, if any, is cut into as
 * many equal shares, each decoder's rows beyond the budget.  As many
 * slots as leave every decoder at least UP_NODE_FEC_MIN_ROWS rows in
 * all (at most UP_NODE_FEC_SLOTS).
 */
#define UP_NODE_FEC_MIN_ROWS	16
static void
node_fec_carve(struct up_node *n)
{
	uint8_t		*p = n->fec_ws;
	size_t		 pad, avail, per, rows = 0, store = 0, scap;
	unsigned int	 ns;
	uint16_t	 blen = n->offer.block_size;

	n->fec_nslots = 0;
	n->fec_inuse = 0;
	n->fec_session = n->session;
	n->fec_blen = blen;
	n->fec_k = 0;
	n->fec_store_rows = 0;
	if (p == NULL || blen == 0)
		return;
	pad = (16 - (size_t)((uintptr_t)p % 16)) % 16;
	if (n->fec_ws_len < pad + 2 * (size_t)blen)
		return;
	avail = n->fec_ws_len - pad - 2 * (size_t)blen;
	scap = node_rows_capacity(n);
	for (ns = UP_NODE_FEC_SLOTS; ns > 0; ns--) {
		per = avail / ns;
		if (per < sizeof(struct up_fec_dec))
			continue;
		rows = (per - sizeof(struct up_fec_dec)) / blen;
		if (rows > n->fec_budget)
			rows = n->fec_budget;
		if (rows > UP_FEC_K_MAX)
			rows = UP_FEC_K_MAX;
		store = scap / ns / blen;
		if (store > UP_FEC_K_MAX - rows)
			store = UP_FEC_K_MAX - rows;
		if (rows + store >= UP_NODE_FEC_MIN_ROWS ||
		    (ns == 1 && rows + store > 0))
			break;
	}
	if (ns == 0)
		return;
	n->fec_dec = (struct up_fec_dec *)(void *)(p + pad);
	n->fec_scratch = p + pad + ns * sizeof(struct up_fec_dec);
	n->fec_rows = n->fec_scratch + 2 * (size_t)blen;
	n->fec_rows_len = rows * blen;
	n->fec_store_rows = (uint16_t)store;
	n->fec_nslots = (uint8_t)ns;
}

/*
 * The decoder of `group', or with `make' a new one (a free slot or the
 * least recently used: its rows are lost, which costs at most a repair
 * round).  NULL when there is none.
 */
static struct up_fec_dec *
node_fec_slot(struct up_node *n, uint32_t group, uint16_t k, bool make)
{
	struct up_fec_dec *d;
	unsigned int	 s, victim = 0;
	uint32_t	 first, i, best = 0;
	uint16_t	 m;

	if (n->fec_session != n->session || n->fec_blen !=
	    n->offer.block_size)
		node_fec_carve(n);
	if (n->fec_nslots == 0 || (n->fec_k != 0 && n->fec_k != k && !make))
		return (NULL);
	if (n->fec_k != k) {
		/* One k per session (§4.6); a new k starts afresh. */
		n->fec_inuse = 0;
		n->fec_k = k;
	}
	for (s = 0; s < n->fec_nslots; s++) {
		d = &n->fec_dec[s];
		if ((n->fec_inuse & (1u << s)) != 0 && d->group == group) {
			d->stamp = ++n->fec_clock;
			return (d);
		}
	}
	if (!make)
		return (NULL);
	for (s = 0; s < n->fec_nslots; s++) {
		if ((n->fec_inuse & (1u << s)) == 0) {
			victim = s;
			break;
		}
		if (s == 0 || n->fec_clock - n->fec_dec[s].stamp > best) {
			best = n->fec_clock - n->fec_dec[s].stamp;
			victim = s;
		}
	}
	d = &n->fec_dec[victim];
	m = up_fec_group_len(n->offer.nblocks, k, group);
	if (up_fec_dec_init(d, &node_fec_ops, n, group, m, k,
	    n->offer.block_size, n->fec_scratch,
	    n->fec_rows + victim * n->fec_rows_len, n->fec_rows_len,
	    n->fec_store_rows) != UP_OK)
		return (NULL);
	n->fec_inuse |= (uint8_t)(1u << victim);
	d->stamp = ++n->fec_clock;
	/* No row stored yet: this is bookkeeping, no I/O. */
	first = group * k;
	for (i = 0; i < m; i++)
		if (up_bitmap_get(&n->held, first + i))
			(void)up_fec_dec_source(d, (uint16_t)i);
	return (d);
}

/* After the decoder ran: free a finished slot, report a port error. */
static int
node_fec_done(struct up_node *n, struct up_fec_dec *d, int e)
{
	if (e == UP_EPORT) {
		up_logf(UP_LOG_WARN, "node %016llx: session %08lx: slot I/O "
		    "failed while decoding parity, giving up", node_id(n),
		    (unsigned long)n->session);
		(void)node_send_abort(n, UP_R_FAILED);
		node_drop(n);
		return (UP_EPORT);
	}
	if (up_fec_dec_missing(d) == 0)
		n->fec_inuse &= (uint8_t)~(1u << (d - n->fec_dec));
	return (UP_OK);
}

/* Saves, or finishes, after blocks were added (DATA or parity). */
static void
node_progress(struct up_node *n, uint32_t now)
{
	if (n->nheld == n->offer.nblocks)
		node_downloaded(n);
	else if (n->dirty >= n->save_every &&
	    node_save_progress(n) != NODE_NOT_YET)
		return;
	else if (!n->t_save.armed)
		node_timer_arm(&n->t_save, now, UP_NODE_SAVE_DELAY_MS);
}

/* A DATA block arrived: a decoder of its group takes it out of its rows. */
static int
node_fec_source(struct up_node *n, uint32_t index)
{
	struct up_fec_dec *d;

	if (n->fec_ws == NULL || n->fec_k == 0 ||
	    (d = node_fec_slot(n, index / n->fec_k, n->fec_k, false)) == NULL)
		return (UP_OK);
	return (node_fec_done(n, d, up_fec_dec_source(d,
	    (uint16_t)(index % n->fec_k))));
}

/*
 * Stores a block that is not held yet, from DATA (§4.5) or recovered
 * from an XOR (§4.15): written and held, handed to a parity decoder of
 * its group, then saved or finished.  A failed write gives the session
 * up (ABORT, IDLE).
 */
static int
node_store_block(struct up_node *n, uint32_t index, const uint8_t *p,
    size_t len, uint32_t now)
{
	if (node_put_block(n, index, p, len) != 0) {
		up_logf(UP_LOG_WARN, "node %016llx: session %08lx: slot write "
		    "failed at block %lu, giving up", node_id(n),
		    (unsigned long)n->session, (unsigned long)index);
		(void)node_send_abort(n, UP_R_FAILED);
		node_drop(n);
		return (UP_EPORT);
	}
	/* A parity decoder of its group may now recover more. */
	if (node_fec_source(n, index) != UP_OK)
		return (UP_EPORT);
	node_progress(n, now);
	return (UP_OK);
}

static int
node_on_parity(struct up_node *n, const struct up_msg *m)
{
	struct up_fec_parity p;
	struct up_fec_dec *d;
	uint32_t	 now;
	int		 e;

	if (n->session == 0 || m->session != n->session)
		return (UP_OK);		/* another session's parity */
	if (m->form == UP_FORM_COMPACT) {
		/* k is the compact OFFER's (§11.5.6); 0: no parity. */
		if (n->sess_k == 0)
			return (UP_OK);
		e = up_cparity_parse(m, n->sess_k, n->offer.nblocks, &p);
	} else
		e = up_fec_parity_parse(m, &p);
	if (e != UP_OK)
		return (e);
	if (p.len != n->offer.block_size ||
	    up_fec_group_len(n->offer.nblocks, p.k, p.group) == 0)
		return (UP_ERANGE);
	now = node_now(n);
	n->last_activity = now;
	if (n->state != UP_NS_RECEIVING)
		return (UP_ESTATE);
	/*
	 * No workspace or a group too big: ignored, as §4.6 allows.  So
	 * is parity while the area is being erased: a recovered block
	 * could land where the erase has not been yet.
	 */
	if (n->fec_ws == NULL || p.k > UP_FEC_K_MAX ||
	    n->work == NODE_W_ERASE)
		return (UP_OK);
	if ((d = node_fec_slot(n, p.group, p.k, true)) == NULL)
		return (UP_OK);
	e = up_fec_dec_parity(d, p.row, p.data, p.len);
	if (e == UP_ENOSPC || e == UP_EINVAL)
		return (UP_OK);		/* no room for the row: dropped */
	n->fec_rows_rx++;
	if ((e = node_fec_done(n, d, e)) != UP_OK)
		return (e);
	node_progress(n, now);
	return (UP_OK);
}

/*
 * While the area of a new transfer is being erased, a block may be
 * stored only where the erase has been.  The first pass runs in order,
 * so it meets the erase's front: a block just past it erases one more
 * step now (one step per frame, as bounded as a tick), so the stream is
 * never held up by the background pace.  A block further ahead is
 * dropped; the repair rounds send it again.  False when the block
 * cannot be stored (the session is gone if the erase failed).
 */
static bool
node_erased(struct up_node *n, uint32_t index, size_t len)
{
	uint64_t	 end;

	end = (uint64_t)index * n->offer.block_size + len;
	if (end <= n->work_off)
		return (true);
	if (end > (uint64_t)n->work_off + UP_NODE_ERASE_STEP)
		return (false);
	node_work_step(n);
	return (n->session != 0 && (n->work != NODE_W_ERASE ||
	    end <= n->work_off));
}

/*
 * A block of the session, from a DATA frame or out of band: checked
 * against the session, then stored like any block (§4.5).  Returns 1
 * when the staging area is not erased that far yet: the block is not
 * stored (a DATA frame's is repaired later).
 */
static int
node_data(struct up_node *n, uint32_t session, uint32_t index,
    const uint8_t *p, size_t len)
{
	uint32_t	 expect, now;

	if (n->session == 0 || session != n->session)
		return (UP_OK);		/* another session's block */
	if (index >= n->offer.nblocks)
		return (UP_ERANGE);
	/* Every block is block_size long but the last (§4.5). */
	expect = n->offer.block_size;
	if (index == n->offer.nblocks - 1)
		expect = n->offer.size - index * n->offer.block_size;
	if (len != expect)
		return (UP_ELEN);
	now = node_now(n);
	n->last_activity = now;
	/* Repairs for other nodes: not an error, nothing to do (§5.2). */
	if (n->state != UP_NS_RECEIVING)
		return (UP_ESTATE);
	if (up_bitmap_get(&n->held, index))
		return (UP_OK);
	if (n->work == NODE_W_ERASE && !node_erased(n, index, len))
		return (n->session == 0 ? UP_EPORT : 1);
	return (node_store_block(n, index, p, len, now));
}

static int
node_on_data(struct up_node *n, const struct up_msg *m)
{
	const struct up_data *d = &m->u.data;
	int		 rc;

	rc = node_data(n, m->session, d->index, d->data, d->len);
	return (rc == 1 ? UP_OK : rc);
}

int
up_node_put_block(struct up_node *n, uint32_t session, uint32_t index,
    const uint8_t *data, size_t len)
{
	int	 rc;

	if (n->session == 0 || session != n->session ||
	    n->state != UP_NS_RECEIVING)
		return (UP_ESTATE);
	rc = node_data(n, session, index, data, len);
	return (rc == 1 ? UP_ESTATE : rc);
}

/*
 * XOR (§4.15): the XOR of the listed blocks, each zero-padded to the
 * longest.  With exactly one of them missing, that block is the data
 * XOR every other listed block, cut to its length; it is then stored
 * like DATA.  With none or several missing the frame is of no use here.
 *
 * Memory, without a workspace: the block is rebuilt in n->frame, the tx
 * scratch (UP_FRAME_MAX bytes: more than any XOR data, since the XOR
 * frame itself fit UP_FRAME_MAX), and the held blocks are read back
 * through n->slice, in pieces when a block is longer.  Nothing is sent
 * before the rebuilt block is written, so neither buffer is in use.
 */
static int
node_on_xor(struct up_node *n, const struct up_msg *m)
{
	const struct up_xor *x = &m->u.xor_;
	uint8_t		*acc = n->frame;
	uint32_t	 now, idx, b = 0, blen, off;
	size_t		 piece;
	unsigned int	 i, nmiss = 0;

	if (n->session == 0 || m->session != n->session)
		return (UP_OK);		/* another session's repair */
	/* up_decode: 1 <= n <= UP_XOR_MAX, indices strictly increasing. */
	if (x->index[x->n - 1] >= n->offer.nblocks)
		return (UP_ERANGE);
	/*
	 * The longest listed block: block_size, or the last block's
	 * length when it is the only one listed (it is then index[0]).
	 */
	if (x->len != node_blen(n, x->index[0]) || x->len > sizeof(n->frame))
		return (UP_ELEN);
	now = node_now(n);
	n->last_activity = now;
	if (n->state != UP_NS_RECEIVING)
		return (UP_ESTATE);
	/* While erasing, repairs wait for the next round (as parity). */
	if (n->work == NODE_W_ERASE)
		return (UP_OK);
	for (i = 0; i < x->n; i++)
		if (!up_bitmap_get(&n->held, x->index[i])) {
			b = x->index[i];
			nmiss++;
		}
	if (nmiss != 1)
		return (UP_OK);

	memcpy(acc, x->data, x->len);
	for (i = 0; i < x->n; i++) {
		if ((idx = x->index[i]) == b)
			continue;
		/* Past its own length a short block is zero: no-op. */
		blen = node_blen(n, idx);
		for (off = 0; off < blen; off += (uint32_t)piece) {
			piece = blen - off;
			if (piece > sizeof(n->slice))
				piece = sizeof(n->slice);
			if (node_area_read(n, idx * n->offer.block_size + off,
			    n->slice, piece) != 0) {
				up_logf(UP_LOG_WARN, "node %016llx: session "
				    "%08lx: slot read failed at block %lu "
				    "while decoding an XOR, giving up",
				    node_id(n), (unsigned long)n->session,
				    (unsigned long)idx);
				(void)node_send_abort(n, UP_R_FAILED);
				node_drop(n);
				return (UP_EPORT);
			}
			up_fec_xor(acc + off, n->slice, piece);
		}
	}
	return (node_store_block(n, b, acc, node_blen(n, b), now));
}

static int
node_on_status_req(struct up_node *n, const struct up_msg *m)
{
	bool		 compact = m->form == UP_FORM_COMPACT;

	if (n->session == 0 || m->session != n->session ||
	    !node_targets_me(n, m->u.target.node_id))
		return (UP_OK);
	n->last_activity = node_now(n);
	/* The latest compact request says which form (§11.5.7). */
	if (!n->t_status.armed || compact) {
		n->st_compact = compact;
		n->st_req = compact ? m->cx.req : 0;
	}
	node_timer_arm_min(&n->t_status, n->last_activity, compact ?
	    node_slot_delay(n, m->cx.slots, m->cx.slot_ms) :
	    node_jitter(n, m->u.target.window_ms));
	return (UP_OK);
}

/*
 * The answer to a VERIFY: a RESULT (`result', or in VERIFIED, UPDATED,
 * FAILED) or a STATUS (RECEIVING), now or in the reply slot `delay'
 * ms away (§11.9).  An answer already scheduled keeps its slot.
 */
static int
node_reply_verify(struct up_node *n, bool compact, uint32_t delay,
    bool result)
{
	if (delay == 0) {
		/* At once: this answers any that was scheduled too. */
		n->t_vreply.armed = false;
		return (result ? node_send_result_as(n, compact) :
		    node_send_status_as(n, compact, UP_SB_RUNS));
	}
	if (!n->t_vreply.armed) {
		n->vreply_compact = compact;
		n->vreply_result = result;
		node_timer_arm(&n->t_vreply, node_now(n), delay);
	} else
		n->vreply_result = n->vreply_result || result;
	return (UP_OK);
}

/*
 * docs/up-protocol.md §11.3: the package's hash failed, and its blocks
 * came in compact frames with nothing but the link's check.  The link,
 * not the package, is the likely culprit, and which block is bad is not
 * known: forget them all and receive again, once per session.
 */
static bool
node_refetch(struct up_node *n)
{
	if (!n->compact || (n->link.flags & UP_NL_CRC) != 0 ||
	    n->integrity_retry)
		return (false);
	up_logf(UP_LOG_WARN, "node %016llx: session %08lx: package hash "
	    "failed after a transfer the link alone checked; receiving it "
	    "again", node_id(n), (unsigned long)n->session);
	n->integrity_retry = true;
	up_bitmap_clear_all(&n->held);
	n->nheld = 0;
	node_clean(n);
	n->fec_inuse = 0;
	/* Erased in steps again, as for a new transfer (persisted). */
	n->work = NODE_W_ERASE;
	n->work_off = 0;
	node_set_state(n, UP_NS_RECEIVING, UP_R_INTEGRITY);
	node_hash_restart(n);
	return (true);
}

static int
node_on_verify(struct up_node *n, const struct up_msg *m)
{
	bool		 compact = m->form == UP_FORM_COMPACT;
	uint32_t	 d;

	if (n->session == 0 || m->session != n->session ||
	    !node_targets_me(n, m->u.target.node_id))
		return (UP_OK);
	n->last_activity = node_now(n);
	d = compact ? node_slot_delay(n, m->cx.slots, m->cx.slot_ms) : 0;
	switch (n->state) {
	case UP_NS_RECEIVING:
		/* Not complete yet: say what is missing instead. */
		return (node_reply_verify(n, compact, d, false));
	case UP_NS_DOWNLOADED:
		/*
		 * The checks run in steps from up_node_tick() (hash, then
		 * signature; for a delta the apply and the image's hash):
		 * the RESULT goes out when they are done, in a random slot
		 * of this VERIFY's schedule (§11.9).  A repeated VERIFY
		 * meanwhile changes nothing.
		 */
		if (n->work == NODE_W_NONE) {
			n->vreply_compact = compact;
			n->vslots = compact ? m->cx.slots : 0;
			n->vslot_ms = compact ? m->cx.slot_ms : 0;
			node_hash_begin(n, NODE_W_HASH);
		}
		return (UP_OK);
	case UP_NS_VERIFIED:
	case UP_NS_UPDATED:
	case UP_NS_FAILED:
		/* Repeated VERIFY gets the same answer (§5.2 step 5). */
		return (node_reply_verify(n, compact, d, true));
	default:
		return (UP_OK);
	}
}

static int
node_on_activate(struct up_node *n, const struct up_msg *m)
{
	uint32_t	 now;

	if (n->session == 0 || m->session != n->session ||
	    !node_targets_me(n, m->u.activate.node_id))
		return (UP_OK);
	now = node_now(n);
	n->last_activity = now;
	/* Only a verified image is ever activated (§5.2 step 6); a
	 * repeated ACTIVATE keeps the first delay. */
	if (n->state == UP_NS_ACTIVATING)
		return (UP_OK);
	if (n->state != UP_NS_VERIFIED)
		return (UP_ESTATE);
	/* Nor one the anti-rollback rule now refuses (§5.4). */
	if (node_rollback_code(n, &n->offer) != UP_R_INITIAL) {
		up_logf(UP_LOG_WARN, "node %016llx: session %08lx: %s %s is "
		    "a downgrade now, not activated", node_id(n),
		    (unsigned long)n->session, n->offer.component,
		    n->offer.to_version);
		node_finish(n, UP_NS_FAILED, UP_R_DOWNGRADE);
		return (UP_OK);
	}
	node_set_state(n, UP_NS_ACTIVATING, UP_R_INITIAL);
	node_timer_arm(&n->t_activate, now, m->u.activate.delay_ms);
	return (UP_OK);
}

static int
node_on_result_ack(struct up_node *n, const struct up_msg *m)
{
	if (n->session == 0 || m->session != n->session ||
	    m->u.target.node_id != n->info.node_id || !n->unacked)
		return (UP_OK);
	n->unacked = false;
	n->t_result.armed = false;
	(void)node_persist(n);
	up_logf(UP_LOG_INFO, "node %016llx: session %08lx: result %s "
	    "acknowledged", node_id(n), (unsigned long)n->session,
	    up_result_str(n->result));
	return (UP_OK);
}

static int
node_on_abort(struct up_node *n, const struct up_msg *m)
{
	if (n->session == 0 || m->session != n->session ||
	    !node_targets_me(n, m->u.target.node_id))
		return (UP_OK);
	up_logf(UP_LOG_INFO, "node %016llx: session %08lx: aborted by the "
	    "gateway (%s)", node_id(n), (unsigned long)n->session,
	    up_result_str(m->u.target.reason));
	node_drop(n);
	return (UP_OK);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                       */

void
up_node_init(struct up_node *n, const struct up_port *port, void *ctx,
    const struct up_node_info *info, uint8_t *bitmap_buf, size_t bitmap_cap)
{
	memset(n, 0, sizeof(*n));
	n->port = port;
	n->ctx = ctx;
	n->info = *info;
	if (n->info.ncomp > UP_MAX_COMPONENTS)
		n->info.ncomp = UP_MAX_COMPONENTS;
	n->bitmap_buf = bitmap_buf;
	n->bitmap_cap = bitmap_buf != NULL ? bitmap_cap : 0;
	n->save_every = UP_NODE_SAVE_EVERY;
	n->fec_budget = UP_NODE_FEC_ROWS;
	n->dirty_lo = UINT32_MAX;
	n->state = UP_NS_IDLE;
	up_bitmap_init(&n->held, bitmap_buf, 0);
	up_seg_rx_init(&n->seg_rx, n->seg_buf, sizeof(n->seg_buf));
}

void
up_node_set_link(struct up_node *n, const struct up_node_link *link)
{
	n->link = *link;
	/* No compact frame fits less than UP_C_MTU_MIN (§11.2). */
	if (n->link.uplink_mtu != 0 && n->link.uplink_mtu < UP_C_MTU_MIN) {
		up_logf(UP_LOG_WARN, "node %016llx: uplink MTU %u is below "
		    "%u bytes; using %u", node_id(n), n->link.uplink_mtu,
		    UP_C_MTU_MIN, UP_C_MTU_MIN);
		n->link.uplink_mtu = UP_C_MTU_MIN;
	}
}

int
up_node_flush(struct up_node *n)
{
	if (!n->started || n->dirty == 0)
		return (UP_OK);
	return (node_persist(n));
}

void
up_node_set_save_every(struct up_node *n, uint32_t blocks)
{
	n->save_every = blocks != 0 ? blocks : UP_NODE_SAVE_EVERY;
}

void
up_node_set_fec_workspace(struct up_node *n, void *ws, size_t len)
{
	n->fec_ws = ws;
	n->fec_ws_len = ws != NULL ? len : 0;
	n->fec_dec = NULL;
	n->fec_nslots = 0;
	n->fec_inuse = 0;
	/* Carved again (for the session's block size) at the next use. */
	n->fec_session = 0;
	n->fec_blen = 0;
	n->fec_k = 0;
}

void
up_node_set_fec_rows(struct up_node *n, uint16_t rows)
{
	n->fec_budget = rows < UP_FEC_K_MAX ? rows : UP_FEC_K_MAX;
	/* Carved again at the next use. */
	n->fec_session = 0;
	n->fec_nslots = 0;
	n->fec_inuse = 0;
}

void
up_node_set_delta_mem(struct up_node *n, struct up_vcd *vcd, uint8_t *buf,
    size_t buf_len)
{
	/* New memory: checks under way start again at the next VERIFY. */
	if (n->work >= NODE_W_HASH)
		n->work = NODE_W_NONE;
	n->vcd = buf != NULL && buf_len >= UP_VCD_BUF_MIN ? vcd : NULL;
	n->vcd_buf = buf;
	n->vcd_buf_len = buf_len;
}

void
up_node_set_hash_buf(struct up_node *n, uint8_t *buf, size_t len)
{
	n->hash_buf = buf != NULL && len >= sizeof(n->slice) ? buf : NULL;
	n->hash_buf_len = n->hash_buf != NULL ? len : 0;
}

uint32_t
up_node_get_floor(const struct up_node *n, const char *component)
{
	return (node_floor(n, component));
}

int
up_node_raise_floor(struct up_node *n, const char *component,
    uint32_t security_version)
{
	if (!n->started)
		return (UP_ESTATE);
	if (component == NULL || component[0] == '\0' ||
	    strlen(component) > UP_NAME_MAX)
		return (UP_EINVAL);
	if (security_version <= node_floor(n, component))
		return (UP_OK);
	if (!node_floor_raise(n, component, security_version))
		return (UP_ENOSPC);
	up_logf(UP_LOG_INFO, "node %016llx: security floor of %s raised to "
	    "%lu", node_id(n), component, (unsigned long)security_version);
	return (node_persist(n));
}

uint8_t
up_node_get_state(const struct up_node *n, uint32_t *session,
    uint8_t *result)
{
	if (session != NULL)
		*session = n->session;
	if (result != NULL)
		*result = n->result;
	return (n->state);
}

void
up_node_set_version(struct up_node *n, const char *component,
    const char *version)
{
	unsigned int	 i;

	for (i = 0; i < n->info.ncomp; i++)
		if (strcmp(n->info.comp[i].name, component) == 0)
			break;
	if (i == n->info.ncomp) {
		if (n->info.ncomp >= UP_MAX_COMPONENTS)
			return;
		node_strlcpy(n->info.comp[i].name, component,
		    sizeof(n->info.comp[i].name));
		n->info.ncomp++;
	}
	node_strlcpy(n->info.comp[i].version, version,
	    sizeof(n->info.comp[i].version));
}

int
up_node_start(struct up_node *n, const char *running_version)
{
	const char	*run;
	uint32_t	 now, delay;
	int		 e;

	if (n->port == NULL || n->started)
		return (UP_EINVAL);
	n->started = true;
	now = node_now(n);
	n->last_activity = now;
	/* Our message tags start anywhere (§11.8). */
	n->seg_mtag = (uint8_t)n->port->random(n->ctx);

	if ((e = node_load(n)) != UP_OK) {
		if (e != NODE_NOTHING_SAVED)
			up_logf(UP_LOG_WARN, "node %016llx: saved state "
			    "ignored: %s", node_id(n), up_strerror(e));
		n->state = UP_NS_IDLE;
		n->session = 0;
		n->unacked = n->switched = false;
		memset(&n->offer, 0, sizeof(n->offer));
		up_bitmap_init(&n->held, n->bitmap_buf, 0);
	}
	if (n->session != 0 && running_version != NULL)
		up_node_set_version(n, n->offer.component, running_version);

	if (n->session != 0)
		up_logf(UP_LOG_INFO, "node %016llx: session %08lx: resumed in "
		    "state %s with %lu of %lu blocks held", node_id(n),
		    (unsigned long)n->session, up_state_str(n->state),
		    (unsigned long)n->nheld, (unsigned long)n->offer.nblocks);
	/*
	 * Anti-rollback at boot (§5.4): an image held but not yet switched
	 * to is given up if it is a downgrade of what runs now (the
	 * platform may boot something else than it did when the offer was
	 * taken).  The floors came back with the state.
	 */
	if (n->session != 0 && n->state >= UP_NS_RECEIVING &&
	    (n->state <= UP_NS_VERIFIED || (n->state == UP_NS_ACTIVATING &&
	    !n->switched)) &&
	    node_rollback_code(n, &n->offer) != UP_R_INITIAL) {
		up_logf(UP_LOG_WARN, "node %016llx: session %08lx: %s %s is a "
		    "downgrade of what runs now, given up", node_id(n),
		    (unsigned long)n->session, n->offer.component,
		    n->offer.to_version);
		node_finish(n, UP_NS_FAILED, UP_R_DOWNGRADE);
	}
	switch (n->state) {
	case UP_NS_RECEIVING:
		/* The last block may have landed just before the cut. */
		if (n->nheld == n->offer.nblocks)
			node_downloaded(n);
		break;
	case UP_NS_ACTIVATING:
		if (!n->switched) {
			/* Cut during the ACTIVATE delay: carry on now. */
			node_timer_arm(&n->t_activate, now, 0);
			break;
		}
		/*
		 * The platform booted after the switch (§5.2 step 6):
		 * the new version runs only if it passed the health check.
		 */
		run = node_version(n, n->offer.component);
		/* In a random slot of the link's boot schedule (§11.9). */
		delay = node_boot_delay(n);
		if (run != NULL && strcmp(run, n->offer.to_version) == 0) {
			/*
			 * Confirmed: the floor rises to the image's security
			 * version in the very save that records UPDATED, so
			 * no power cut can leave one without the other.
			 */
			if (!node_floor_raise(n, n->offer.component,
			    n->offer.security_version))
				up_logf(UP_LOG_WARN, "node %016llx: no room "
				    "for the floor of %s", node_id(n),
				    n->offer.component);
			node_finish_at(n, UP_NS_UPDATED, UP_R_SUCCESS, delay);
		} else
			node_finish_at(n, UP_NS_FAILED, UP_R_ROLLED_BACK,
			    delay);
		break;
	case UP_NS_UPDATED:
	case UP_NS_FAILED:
		if (n->unacked) {
			/* In a random slot of the link's boot schedule. */
			if ((delay = node_boot_delay(n)) > 0) {
				n->result_tries = 0;
				node_timer_arm(&n->t_result, now, delay);
				break;
			}
			(void)node_send_result(n);
			n->result_tries = 1;
			node_timer_arm(&n->t_result, now,
			    UP_NODE_RESULT_MIN_MS);
		}
		break;
	default:
		break;
	}
	/* The hash on receipt is rebuilt from the area, in steps. */
	if (n->state == UP_NS_RECEIVING || n->state == UP_NS_DOWNLOADED)
		node_hash_restart(n);
	/*
	 * A street of meters regaining mains power boots at once: on a
	 * link with a boot schedule the ANNOUNCE waits for a random slot
	 * (§11.9).  After any RESULT, so the gateway hears the outcome
	 * first.
	 */
	if ((delay = node_boot_delay(n)) > 0) {
		n->ann_compact = node_compact(n);
		node_timer_arm_min(&n->t_announce, now, delay);
	} else
		(void)node_send_announce(n);
	return (UP_OK);
}

/*
 * A compact DATA, PARITY or XOR names its session by tag (§11.4): ours
 * only while the tag is bound, we receive, and the session is not
 * stale.  Fills in the session id; -1 when it is another session's.
 */
static int
node_untag(struct up_node *n, struct up_msg *m)
{
	if (n->session == 0 || !n->compact || !n->tag_bound ||
	    m->cx.tag != n->tag || node_stale(n, node_now(n)))
		return (-1);
	m->session = n->session;
	return (0);
}

static int
node_dispatch(struct up_node *n, struct up_msg *m)
{
	switch (m->type) {
	case UP_T_DATA:
	case UP_T_PARITY:
	case UP_T_XOR:
		if (m->form == UP_FORM_COMPACT && node_untag(n, m) != 0)
			return (UP_OK);	/* another session's */
		break;
	default:
		break;
	}
	switch (m->type) {
	case UP_T_DISCOVER:
		return (node_on_discover(n, m));
	case UP_T_OFFER:
		return (node_on_offer(n, m));
	case UP_T_DATA:
		return (node_on_data(n, m));
	case UP_T_STATUS_REQ:
		return (node_on_status_req(n, m));
	case UP_T_VERIFY:
		return (node_on_verify(n, m));
	case UP_T_ACTIVATE:
		return (node_on_activate(n, m));
	case UP_T_RESULT_ACK:
		return (node_on_result_ack(n, m));
	case UP_T_ABORT:
		return (node_on_abort(n, m));
	case UP_T_PARITY:
		return (node_on_parity(n, m));
	case UP_T_XOR:
		return (node_on_xor(n, m));
	default:
		/* Node-to-gateway frames (other nodes', or our own looped
		 * back by multicast) are not for us. */
		return (UP_OK);
	}
}

/*
 * A segment (§11.8): into the reassembly buffer; a completed message is
 * decoded and handled like a frame received whole.  Segments from other
 * nodes (X set: their ANNOUNCEs on a shared medium) are not ours.
 */
static int
node_on_seg(struct up_node *n, const struct up_msg *m)
{
	struct up_msg	 msg;
	int		 len, e;

	if (m->u.seg.from_node)
		return (UP_OK);
	if ((len = up_seg_rx_put(&n->seg_rx, &m->u.seg)) <= 0) {
		if (len < 0) {
			n->rx_errors++;
			up_logf(UP_LOG_DEBUG, "node %016llx: segmented message "
			    "dropped: %s", node_id(n), up_strerror(len));
		}
		return (len);
	}
	if ((e = up_cdecode(n->seg_buf, (size_t)len, &msg)) != UP_OK) {
		n->rx_errors++;
		up_logf(UP_LOG_DEBUG, "node %016llx: bad segmented message "
		    "(%d bytes): %s", node_id(n), len, up_strerror(e));
		return (e);
	}
	return (node_dispatch(n, &msg));
}

int
up_node_input(struct up_node *n, const uint8_t *buf, size_t len)
{
	struct up_msg	 m;
	int		 e;

	if (!n->started)
		return (UP_ESTATE);
	e = up_decode_any(buf, len, &m);
	/* Where the link's check is weak, only the CRC-16 vouches (§11.3). */
	if (e == UP_OK && m.form == UP_FORM_COMPACT &&
	    (n->link.flags & UP_NL_CRC) != 0 &&
	    (m.cx.cflags & UP_CF_CRC) == 0)
		e = UP_EBADCRC;
	if (e != UP_OK) {
		n->rx_errors++;
		up_logf(UP_LOG_DEBUG, "node %016llx: bad frame (%zu bytes): %s",
		    node_id(n), len, up_strerror(e));
		return (e);
	}
	n->rx_frames++;
	if (node_halted(n))
		return (UP_OK);
	if (m.type == UP_T_SEG)
		return (node_on_seg(n, &m));
	return (node_dispatch(n, &m));
}

/* The ACTIVATE delay is over: persist the switch, then switch. */
static void
node_switch(struct up_node *n)
{
	n->switched = true;
	if (node_persist(n) != UP_OK) {
		/* Unsaved, a reboot could not tell the outcome. */
		node_finish(n, UP_NS_FAILED, UP_R_FAILED);
		return;
	}
	up_logf(UP_LOG_INFO, "node %016llx: session %08lx: switching to %s "
	    "%s", node_id(n), (unsigned long)n->session, n->offer.component,
	    n->offer.to_version);
	if (n->port->activate(n->ctx, &n->offer) != 0) {
		up_logf(UP_LOG_WARN, "node %016llx: session %08lx: slot "
		    "switch failed", node_id(n), (unsigned long)n->session);
		node_finish(n, UP_NS_FAILED, UP_R_FAILED);
	}
	/* On success the platform reboots: the engine is halted. */
}

void
up_node_tick(struct up_node *n)
{
	uint64_t	 d;
	uint32_t	 now, delay;

	if (!n->started || node_halted(n))
		return;
	now = node_now(n);
	if (node_timer_due(&n->t_activate, now)) {
		n->t_activate.armed = false;
		if (n->state == UP_NS_ACTIVATING) {
			node_switch(n);
			if (node_halted(n))
				return;
		}
	}
	if (node_timer_due(&n->t_announce, now)) {
		n->t_announce.armed = false;
		(void)node_send_announce_as(n, n->ann_compact);
		n->ann_compact = false;
	}
	if (node_timer_due(&n->t_accept, now)) {
		n->t_accept.armed = false;
		(void)node_send_accept(n, n->acc_session, n->acc_code,
		    n->acc_compact);
	}
	if (node_timer_due(&n->t_status, now)) {
		n->t_status.armed = false;
		/* UP_SQ_MISSING: only a node missing blocks answers. */
		if (n->session != 0 && !(n->st_compact &&
		    (n->st_req & UP_SQ_MISSING) != 0 &&
		    n->state != UP_NS_RECEIVING))
			(void)node_send_status_as(n, n->st_compact,
			    n->st_req);
	}
	if (node_timer_due(&n->t_vreply, now)) {
		n->t_vreply.armed = false;
		if (n->session != 0 && (n->vreply_result ||
		    (n->state >= UP_NS_VERIFIED && n->state != UP_NS_ACTIVATING)))
			(void)node_send_result_as(n, n->vreply_compact);
		else if (n->state == UP_NS_RECEIVING)
			(void)node_send_status_as(n, n->vreply_compact,
			    UP_SB_RUNS);
		n->vreply_result = false;
	}
	if (node_timer_due(&n->t_result, now)) {
		n->t_result.armed = false;
		if (n->unacked) {
			(void)node_send_result(n);
			/* 1 s, 2 s, 4 s ... at most 30 s (§5.2 step 7), plus a
			 * random slot of the link's schedule (§11.9). */
			d = n->result_tries < 32 ?
			    (uint64_t)UP_NODE_RESULT_MIN_MS << n->result_tries :
			    UP_NODE_RESULT_MAX_MS;
			delay = d > UP_NODE_RESULT_MAX_MS ?
			    UP_NODE_RESULT_MAX_MS : (uint32_t)d;
			delay += node_boot_delay(n);
			n->result_tries++;
			node_timer_arm(&n->t_result, now, delay);
		}
	}
	if (node_timer_due(&n->t_save, now)) {
		n->t_save.armed = false;
		/* Not worth the flash yet: the next block arms it again. */
		if (n->dirty > 0)
			(void)node_save_progress(n);
	}
	/* One bounded step of work per tick: frames get in between. */
	if (n->work != NODE_W_NONE && !node_halted(n))
		node_work_step(n);
	else if (node_hash_due(n))
		node_hash_catchup(n);
}

uint32_t
up_node_next_ms(const struct up_node *n)
{
	const struct up_node_timer *t[7];
	uint32_t	 now, best = UP_NODE_IDLE_MS, left;
	unsigned int	 i;

	if (!n->started || node_halted(n))
		return (best);
	if (n->work != NODE_W_NONE || node_hash_due(n))
		return (0);		/* the next step of work is due now */
	t[0] = &n->t_activate;
	t[1] = &n->t_announce;
	t[2] = &n->t_status;
	t[3] = &n->t_result;
	t[4] = &n->t_save;
	t[5] = &n->t_accept;
	t[6] = &n->t_vreply;
	now = node_now(n);
	for (i = 0; i < 7; i++) {
		if (!t[i]->armed)
			continue;
		if (node_timer_due(t[i], now))
			return (0);
		left = t[i]->due - now;
		if (left < best)
			best = left;
	}
	return (best);
}
