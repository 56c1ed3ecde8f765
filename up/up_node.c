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
 * bitmap through port->save on every state change, every `save_every'
 * blocks and UP_NODE_SAVE_DELAY_MS after the first unsaved block.  The
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

/* State blob: "UPN1" little-endian, then format version 1. */
#define NODE_BLOB_MAGIC		0x314e5055u
#define NODE_BLOB_VERSION	1

/* Flags byte of the blob. */
#define NODE_BF_UNACKED		0x01	/* final RESULT not acked */
#define NODE_BF_SWITCHED	0x02	/* port->activate was called */

/* Largest wrap-safe timer delay: half the u32 millisecond range. */
#define NODE_DELAY_MAX		0x7fffffffu

/*
 * Worst-case blob size with this build's limits, checked against
 * UP_NODE_STATE_MAX at compile time (C99 has no _Static_assert).
 */
#define NODE_BLOB_FIXED		24	/* header, session, bitmap, CRC */
#define NODE_BLOB_OFFER		(88 + (UP_MAX_HW + 1) * (UP_NAME_MAX + 1) + \
    2 * (UP_VER_MAX + 1) + UP_MAX_DEPS * (UP_NAME_MAX + UP_VER_MAX + 2) + \
    UP_SIG_MAX)
typedef char up_node_blob_fits[(NODE_BLOB_FIXED + NODE_BLOB_OFFER <=
    UP_NODE_STATE_MAX) ? 1 : -1];

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

static bool
node_numeric(const char *p, size_t n)
{
	size_t		 i;

	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return (false);
	return (true);
}

/*
 * One dotted field: numbers by value (as digit strings without leading
 * zeros, so nothing overflows; an empty field is 0), anything else byte
 * by byte.
 */
static int
node_field_cmp(const char *a, size_t la, const char *b, size_t lb)
{
	size_t		 n;
	int		 c;

	if (node_numeric(a, la) && node_numeric(b, lb)) {
		while (la > 0 && *a == '0') {
			a++;
			la--;
		}
		while (lb > 0 && *b == '0') {
			b++;
			lb--;
		}
		if (la != lb)
			return (la < lb ? -1 : 1);
	}
	n = la < lb ? la : lb;
	if ((c = memcmp(a, b, n)) != 0)
		return (c < 0 ? -1 : 1);
	if (la != lb)
		return (la < lb ? -1 : 1);
	return (0);
}

/* Dotted fields of a[0, la) and b[0, lb); missing fields count as 0. */
static int
node_fields_cmp(const char *a, size_t la, const char *b, size_t lb)
{
	size_t		 i = 0, j = 0, ea, eb;
	int		 c;

	while (i < la || j < lb) {
		for (ea = i; ea < la && a[ea] != '.'; ea++)
			;
		for (eb = j; eb < lb && b[eb] != '.'; eb++)
			;
		if ((c = node_field_cmp(a + i, ea - i, b + j, eb - j)) != 0)
			return (c);
		i = ea < la ? ea + 1 : la;
		j = eb < lb ? eb + 1 : lb;
	}
	return (0);
}

/*
 * Compares versions as the scheduler does (semantic-versioning order):
 * "1.10" > "1.9", "1.2" == "1.2.0", "2.0.0-rc1" < "2.0.0", and "+build"
 * metadata is ignored.  A node and its gateway must agree on whether a
 * dependency holds.
 */
static int
node_vercmp(const char *a, const char *b)
{
	const char	*pa, *pb;
	size_t		 la, lb, ca, cb;
	int		 c;

	la = strcspn(a, "+");
	lb = strcspn(b, "+");
	pa = memchr(a, '-', la);
	pb = memchr(b, '-', lb);
	ca = pa != NULL ? (size_t)(pa - a) : la;
	cb = pb != NULL ? (size_t)(pb - b) : lb;
	if ((c = node_fields_cmp(a, ca, b, cb)) != 0)
		return (c);
	/* A pre-release comes before its release. */
	if (pa == NULL || pb == NULL)
		return (pa == pb ? 0 : (pa == NULL ? 1 : -1));
	return (node_fields_cmp(pa + 1, la - ca - 1, pb + 1, lb - cb - 1));
}

/* ------------------------------------------------------------------ */
/* Sending                                                            */

static int
node_send(struct up_node *n, const struct up_msg *m)
{
	int		 len;

	len = up_encode(m, n->frame, sizeof(n->frame));
	if (len < 0) {
		/* Our own message: a broken invariant, not bad input. */
		up_logf(UP_LOG_WARN, "node %016llx: cannot encode %u: %s",
		    node_id(n), m->type, up_strerror(len));
		return (len);
	}
	if (n->port->send(n->ctx, n->frame, (size_t)len) != 0) {
		/* Datagram links may drop; every sender here retries. */
		up_logf(UP_LOG_DEBUG, "node %016llx: send %u failed",
		    node_id(n), m->type);
		return (UP_EPORT);
	}
	return (UP_OK);
}

/* The status body of the current session (what ACCEPT and STATUS say). */
static void
node_status_body(struct up_node *n, struct up_status_body *st)
{
	uint32_t	 max_bits;

	memset(st, 0, sizeof(*st));
	if (n->session == 0)
		return;
	max_bits = (uint32_t)sizeof(n->slice) * 8;
	if (max_bits > UINT16_MAX)
		max_bits = UINT16_MAX;
	up_status_from_bitmap(&n->held, n->slice, (uint16_t)max_bits, st);
}

static int
node_send_announce(struct up_node *n)
{
	struct up_msg	 m;
	struct up_announce *a = &m.u.announce;

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
	return (node_send(n, &m));
}

static int
node_send_accept(struct up_node *n, uint32_t session, uint8_t code)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ACCEPT;
	m.session = session;
	m.u.accept.node_id = n->info.node_id;
	m.u.accept.code = code;
	/* A decline describes nothing held (§5.2 step 2). */
	if (code == UP_R_INITIAL)
		node_status_body(n, &m.u.accept.st);
	return (node_send(n, &m));
}

static int
node_send_status(struct up_node *n)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_STATUS;
	m.session = n->session;
	m.u.status.node_id = n->info.node_id;
	m.u.status.state = n->state;
	node_status_body(n, &m.u.status.st);
	return (node_send(n, &m));
}

static int
node_send_result(struct up_node *n)
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
	return (node_send(n, &m));
}

/* The node gives the session up itself (§5.2 step 8). */
static int
node_send_abort(struct up_node *n, uint8_t reason)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ABORT;
	m.session = n->session;
	m.u.target.node_id = n->info.node_id;
	m.u.target.reason = reason;
	return (node_send(n, &m));
}

/* ------------------------------------------------------------------ */
/* Persistence: the state blob                                        */

static void
node_wr_offer(struct up_wr *wr, const struct up_offer *o)
{
	unsigned int	 i;

	up_wr_str(wr, o->component);
	up_wr_u8(wr, o->nhw);
	for (i = 0; i < o->nhw && i < UP_MAX_HW; i++)
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
	for (i = 0; i < o->ndeps && i < UP_MAX_DEPS; i++) {
		up_wr_str(wr, o->deps[i].component);
		up_wr_str(wr, o->deps[i].min_version);
	}
	up_wr_u8(wr, o->sig_alg);
	up_wr_u8(wr, o->sig_len);
	up_wr_bytes(wr, o->sig, o->sig_len <= UP_SIG_MAX ? o->sig_len : 0);
	up_wr_u16(wr, o->block_size);
	up_wr_u32(wr, o->nblocks);
	up_wr_u32(wr, o->deadline_s);
}

/* Reads what node_wr_offer wrote; counts are checked before use. */
static void
node_rd_offer(struct up_rd *rd, struct up_offer *o)
{
	unsigned int	 i;

	up_rd_str(rd, o->component, UP_NAME_MAX);
	o->nhw = up_rd_u8(rd);
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
		rd->err = UP_ELEN;
		return;
	}
	for (i = 0; i < o->ndeps; i++) {
		up_rd_str(rd, o->deps[i].component, UP_NAME_MAX);
		up_rd_str(rd, o->deps[i].min_version, UP_VER_MAX);
	}
	o->sig_alg = up_rd_u8(rd);
	o->sig_len = up_rd_u8(rd);
	if (o->sig_len > UP_SIG_MAX) {
		rd->err = UP_ELEN;
		return;
	}
	up_rd_bytes(rd, o->sig, o->sig_len);
	o->block_size = up_rd_u16(rd);
	o->nblocks = up_rd_u32(rd);
	o->deadline_s = up_rd_u32(rd);
}

static size_t
node_bitmap_len(const struct up_node *n)
{
	return (n->session != 0 ? up_bitmap_bytes(n->held.nbits) : 0);
}

/*
 * Saves state and bitmap.  Blob layout (all little-endian):
 *   u32 magic "UPN1", u8 format 1, u8 state, u8 result, u8 flags,
 *   u32 session, u32 bitmap bytes, u32 CRC-32 of the bitmap,
 *   the offer (node_wr_offer), u32 CRC-32 of everything before it.
 */
static int
node_persist(struct up_node *n)
{
	uint8_t		 blob[UP_NODE_STATE_MAX];
	struct up_wr	 wr;
	size_t		 blen;
	uint8_t		 flags = 0;

	blen = node_bitmap_len(n);
	if (n->unacked)
		flags |= NODE_BF_UNACKED;
	if (n->switched)
		flags |= NODE_BF_SWITCHED;
	up_wr_init(&wr, blob, sizeof(blob));
	up_wr_u32(&wr, NODE_BLOB_MAGIC);
	up_wr_u8(&wr, NODE_BLOB_VERSION);
	up_wr_u8(&wr, n->state);
	up_wr_u8(&wr, n->result);
	up_wr_u8(&wr, flags);
	up_wr_u32(&wr, n->session);
	up_wr_u32(&wr, (uint32_t)blen);
	up_wr_u32(&wr, up_crc32(0, n->bitmap_buf, blen));
	node_wr_offer(&wr, &n->offer);
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
	n->dirty = 0;
	n->t_save.armed = false;
	return (UP_OK);
}

/* node_load(): the port has nothing saved (not an error). */
#define NODE_NOTHING_SAVED	1

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
	struct up_rd	 rd;
	size_t		 slen = 0, blen = 0;
	uint32_t	 magic, session, bmlen, bmcrc, crc;
	uint8_t		 ver, state, result, flags;

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
	if (ver != NODE_BLOB_VERSION)
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
	node_rd_offer(&rd, &o);
	if (up_rd_err(&rd) != UP_OK)
		return (up_rd_err(&rd));
	if (up_rd_left(&rd) != 0)
		return (UP_ELEN);

	if (state > UP_NS_FAILED || result > UP_R_ALREADY ||
	    (flags & ~(NODE_BF_UNACKED | NODE_BF_SWITCHED)) != 0)
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
	} else if (bmlen != 0)
		return (UP_ELEN);
	/* The bitmap is saved with the blob; both or neither are good. */
	if (up_crc32(0, n->bitmap_buf, bmlen) != bmcrc)
		return (UP_EBADCRC);

	n->state = state;
	n->result = result;
	n->unacked = (flags & NODE_BF_UNACKED) != 0;
	n->switched = (flags & NODE_BF_SWITCHED) != 0;
	n->session = session;
	n->offer = o;
	if (session != 0) {
		up_bitmap_init(&n->held, n->bitmap_buf, o.nblocks);
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
node_finish(struct up_node *n, uint8_t state, uint8_t result)
{
	n->unacked = true;
	n->switched = false;
	n->t_activate.armed = false;
	n->t_status.armed = false;
	node_set_state(n, state, result);
	(void)node_send_result(n);
	n->result_tries = 1;
	node_timer_arm(&n->t_result, node_now(n), 1000);
}

/* Forgets the session: IDLE, nothing held, no timer of it. */
static void
node_drop(struct up_node *n)
{
	uint8_t		 old = n->state;

	n->session = 0;
	n->unacked = false;
	n->switched = false;
	n->nheld = 0;
	n->dirty = 0;
	memset(&n->offer, 0, sizeof(n->offer));
	up_bitmap_init(&n->held, n->bitmap_buf, 0);
	n->t_status.armed = false;
	n->t_result.armed = false;
	n->t_activate.armed = false;
	n->t_save.armed = false;
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

/* ------------------------------------------------------------------ */
/* Received messages                                                  */

static int
node_on_discover(struct up_node *n, const struct up_msg *m)
{
	node_timer_arm_min(&n->t_announce, node_now(n),
	    node_jitter(n, m->u.discover.window_ms));
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
 * Whether to take an applicable offer for a new package: UP_R_INITIAL
 * or the decline code, in the order of §5.2 step 2: facts about the node
 * first, local policy last.
 */
static int
node_offer_code(struct up_node *n, const struct up_msg *m,
    const char *running)
{
	const struct up_offer *o = &m->u.offer;
	const char	*v;
	uint32_t	 cap, need;
	unsigned int	 i;

	if (strcmp(running, o->to_version) == 0)
		return (UP_R_ALREADY);
	if (o->kind == UP_KIND_DELTA) {
		if (strcmp(running, o->from_version) != 0)
			return (UP_R_BASE_MISMATCH);
		/* No delta decoder in up/ yet (docs/up-node-engine.md). */
		return (UP_R_UNSUPPORTED);
	}
	if (o->kind != UP_KIND_FULL)
		return (UP_R_UNSUPPORTED);
	for (i = 0; i < o->ndeps; i++) {
		v = node_version(n, o->deps[i].component);
		if (v == NULL || node_vercmp(v, o->deps[i].min_version) < 0)
			return (UP_R_DEPENDENCY);
	}
	cap = n->port->slot_capacity(n->ctx);
	need = o->size > o->image_size ? o->size : o->image_size;
	if (need > cap)
		return (UP_R_NO_SPACE);
	/* The bitmap buffer bounds the blocks we can track. */
	if ((uint64_t)o->nblocks > (uint64_t)n->bitmap_cap * 8)
		return (UP_R_NO_MEMORY);
	if (n->info.max_frame != 0 &&
	    (size_t)o->block_size + UP_DATA_OVERHEAD > n->info.max_frame)
		return (UP_R_NO_MEMORY);
	/*
	 * One staging slot: a live session for another package keeps it
	 * until it finishes, is aborted or goes stale.  Otherwise two
	 * concurrent offers would evict each other's blocks forever.  The
	 * same package under a new session id is a resume, not a rival,
	 * unless the slot switch is already under way.
	 */
	if (n->session != 0 && n->session != m->session &&
	    n->state >= UP_NS_RECEIVING && n->state <= UP_NS_ACTIVATING &&
	    (n->state == UP_NS_ACTIVATING ||
	    (!node_same_package(o, &n->offer) &&
	    !node_stale(n, node_now(n)))))
		return (UP_R_DECLINED);
	if (n->port->offer_check != NULL)
		return (n->port->offer_check(n->ctx, o));
	return (UP_R_INITIAL);
}

static int
node_on_offer(struct up_node *n, const struct up_msg *m)
{
	const struct up_offer *o = &m->u.offer;
	const char	*running;
	unsigned int	 i;
	int		 code;
	bool		 live;

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
		return (node_send_accept(n, m->session, UP_R_INITIAL));
	}

	code = node_offer_code(n, m, running);
	if (code != UP_R_INITIAL) {
		up_logf(UP_LOG_INFO, "node %016llx: session %08lx: "
		    "declined %s %s: %s", node_id(n),
		    (unsigned long)m->session, o->component, o->to_version,
		    up_result_str(code));
		return (node_send_accept(n, m->session, (uint8_t)code));
	}

	n->t_status.armed = false;
	n->t_result.armed = false;
	n->t_activate.armed = false;
	n->unacked = false;
	n->switched = false;
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
		node_set_state(n, n->state == UP_NS_VERIFIED ?
		    UP_NS_DOWNLOADED : n->state, UP_R_INITIAL);
		return (node_send_accept(n, m->session, UP_R_INITIAL));
	}

	if (n->port->slot_prepare(n->ctx, o->size) != 0) {
		up_logf(UP_LOG_WARN, "node %016llx: session %08lx: cannot "
		    "prepare the slot", node_id(n), (unsigned long)m->session);
		return (node_send_accept(n, m->session, UP_R_FAILED));
	}
	n->session = m->session;
	n->offer = *o;
	up_bitmap_init(&n->held, n->bitmap_buf, o->nblocks);
	up_bitmap_clear_all(&n->held);
	n->nheld = 0;
	n->dirty = 0;
	node_set_state(n, UP_NS_RECEIVING, UP_R_INITIAL);
	return (node_send_accept(n, m->session, UP_R_INITIAL));
}

static int
node_on_data(struct up_node *n, const struct up_msg *m)
{
	const struct up_data *d = &m->u.data;
	uint32_t	 expect, now;

	if (n->session == 0 || m->session != n->session)
		return (UP_OK);		/* another session's block */
	if (d->index >= n->offer.nblocks)
		return (UP_ERANGE);
	/* Every block is block_size long but the last (§4.5). */
	expect = n->offer.block_size;
	if (d->index == n->offer.nblocks - 1)
		expect = n->offer.size - d->index * n->offer.block_size;
	if (d->len != expect)
		return (UP_ELEN);
	now = node_now(n);
	n->last_activity = now;
	/* Repairs for other nodes: not an error, nothing to do (§5.2). */
	if (n->state != UP_NS_RECEIVING)
		return (UP_ESTATE);
	if (up_bitmap_get(&n->held, d->index))
		return (UP_OK);

	if (n->port->slot_write(n->ctx, d->index * n->offer.block_size,
	    d->data, d->len) != 0) {
		up_logf(UP_LOG_WARN, "node %016llx: session %08lx: slot write "
		    "failed at block %lu, giving up", node_id(n),
		    (unsigned long)n->session, (unsigned long)d->index);
		(void)node_send_abort(n, UP_R_FAILED);
		node_drop(n);
		return (UP_EPORT);
	}
	up_bitmap_set(&n->held, d->index);
	n->nheld++;
	n->dirty++;
	if (n->nheld == n->offer.nblocks)
		node_downloaded(n);
	else if (n->dirty >= n->save_every)
		(void)node_persist(n);
	else if (!n->t_save.armed)
		node_timer_arm(&n->t_save, now, UP_NODE_SAVE_DELAY_MS);
	return (UP_OK);
}

static int
node_on_status_req(struct up_node *n, const struct up_msg *m)
{
	if (n->session == 0 || m->session != n->session ||
	    !node_targets_me(n, m->u.target.node_id))
		return (UP_OK);
	n->last_activity = node_now(n);
	node_timer_arm_min(&n->t_status, n->last_activity,
	    node_jitter(n, m->u.target.window_ms));
	return (UP_OK);
}

static int
node_on_verify(struct up_node *n, const struct up_msg *m)
{
	int		 r;

	if (n->session == 0 || m->session != n->session ||
	    !node_targets_me(n, m->u.target.node_id))
		return (UP_OK);
	n->last_activity = node_now(n);
	switch (n->state) {
	case UP_NS_RECEIVING:
		/* Not complete yet: say what is missing instead. */
		return (node_send_status(n));
	case UP_NS_DOWNLOADED:
		r = n->port->image_verify(n->ctx, &n->offer);
		if (r == UP_R_INITIAL) {
			node_set_state(n, UP_NS_VERIFIED, UP_R_INITIAL);
			return (node_send_result(n));
		}
		if (r != UP_R_INTEGRITY && r != UP_R_SIGNATURE)
			r = UP_R_FAILED;
		node_finish(n, UP_NS_FAILED, (uint8_t)r);
		return (UP_OK);
	case UP_NS_VERIFIED:
	case UP_NS_UPDATED:
	case UP_NS_FAILED:
		/* Repeated VERIFY gets the same answer (§5.2 step 5). */
		return (node_send_result(n));
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
	n->state = UP_NS_IDLE;
	up_bitmap_init(&n->held, bitmap_buf, 0);
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
	uint32_t	 now;
	int		 e;

	if (n->port == NULL || n->started)
		return (UP_EINVAL);
	n->started = true;
	now = node_now(n);
	n->last_activity = now;

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
		if (run != NULL && strcmp(run, n->offer.to_version) == 0)
			node_finish(n, UP_NS_UPDATED, UP_R_SUCCESS);
		else
			node_finish(n, UP_NS_FAILED, UP_R_ROLLED_BACK);
		break;
	case UP_NS_UPDATED:
	case UP_NS_FAILED:
		if (n->unacked) {
			(void)node_send_result(n);
			n->result_tries = 1;
			node_timer_arm(&n->t_result, now, 1000);
		}
		break;
	default:
		break;
	}
	(void)node_send_announce(n);
	return (UP_OK);
}

int
up_node_input(struct up_node *n, const uint8_t *buf, size_t len)
{
	struct up_msg	 m;
	int		 e;

	if (!n->started)
		return (UP_ESTATE);
	if ((e = up_decode(buf, len, &m)) != UP_OK) {
		n->rx_errors++;
		up_logf(UP_LOG_DEBUG, "node %016llx: bad frame (%zu bytes): %s",
		    node_id(n), len, up_strerror(e));
		return (e);
	}
	n->rx_frames++;
	if (node_halted(n))
		return (UP_OK);

	switch (m.type) {
	case UP_T_DISCOVER:
		return (node_on_discover(n, &m));
	case UP_T_OFFER:
		return (node_on_offer(n, &m));
	case UP_T_DATA:
		return (node_on_data(n, &m));
	case UP_T_STATUS_REQ:
		return (node_on_status_req(n, &m));
	case UP_T_VERIFY:
		return (node_on_verify(n, &m));
	case UP_T_ACTIVATE:
		return (node_on_activate(n, &m));
	case UP_T_RESULT_ACK:
		return (node_on_result_ack(n, &m));
	case UP_T_ABORT:
		return (node_on_abort(n, &m));
	case UP_T_PARITY:
		/* No TS004 decoder on the node yet: parity is ignored. */
	default:
		/* Node-to-gateway frames (other nodes', or our own looped
		 * back by multicast) are not for us. */
		return (UP_OK);
	}
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
		(void)node_send_announce(n);
	}
	if (node_timer_due(&n->t_status, now)) {
		n->t_status.armed = false;
		if (n->session != 0)
			(void)node_send_status(n);
	}
	if (node_timer_due(&n->t_result, now)) {
		n->t_result.armed = false;
		if (n->unacked) {
			(void)node_send_result(n);
			/* 1 s, 2 s, 4 s ... at most 30 s (§5.2 step 7). */
			delay = n->result_tries < 16 ?
			    1000u << n->result_tries : UP_NODE_RESULT_MAX_MS;
			if (delay > UP_NODE_RESULT_MAX_MS)
				delay = UP_NODE_RESULT_MAX_MS;
			n->result_tries++;
			node_timer_arm(&n->t_result, now, delay);
		}
	}
	if (node_timer_due(&n->t_save, now)) {
		n->t_save.armed = false;
		if (n->dirty > 0)
			(void)node_persist(n);
	}
}

uint32_t
up_node_next_ms(const struct up_node *n)
{
	const struct up_node_timer *t[5];
	uint32_t	 now, best = UP_NODE_IDLE_MS, left;
	unsigned int	 i;

	if (!n->started || node_halted(n))
		return (best);
	t[0] = &n->t_activate;
	t[1] = &n->t_announce;
	t[2] = &n->t_status;
	t[3] = &n->t_result;
	t[4] = &n->t_save;
	now = node_now(n);
	for (i = 0; i < 5; i++) {
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
