/*
 * registry.c: the node registry.
 *
 * Every node heard on any transport, keyed by its stable UP node id
 * (docs/up-protocol.md, ANNOUNCE), with the (instance, link address) it
 * was last heard at: link addresses change (DHCP, BLE random addresses),
 * the node id does not.  The table lives in memory as a hash table with
 * chaining (O(1) lookups whatever the fleet size; it grows by doubling at
 * a load factor of 2) and is written through to the tables nodes and
 * node_components inside the daemon's batched transaction.
 *
 * An ANNOUNCE that changes nothing but last_seen and the radio figures is
 * written at most once a minute per node, so a DISCOVER round over ten
 * thousand nodes does not turn into ten thousand row writes.
 */
#include <event2/event.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upbridged.h"

/* Seconds between two writes of an otherwise unchanged node row. */
#define REGISTRY_SEEN_WRITE_S	60
#define REGISTRY_MIN_BUCKETS	64
/* registry_get results alive at once (see registry_get). */
#define REGISTRY_VIEWS		32
/* View slots kept allocated across releases. */
#define REGISTRY_VIEWS_KEEP	4
/*
 * Nodes a hash bucket, on average, before the buckets double: chains
 * of one or two records, and 2 bytes of buckets a node, not 4.
 */
#define REGISTRY_LOAD		2
/* Records a slab (48 bytes each: 12 KiB). */
#define REGISTRY_SLAB		256
/* Bytes a chunk of the address pool. */
#define REGISTRY_POOL_CHUNK	16384
/* Bytes of an address record: text length, len, flags, b[len], text. */
#define REGISTRY_REC_HDR	3

/*
 * Memory (issue 3: the daemon within 8 MiB with 10,000 nodes).  A node
 * is kept as a compact record, not as the 1 KiB struct registry_node the
 * API hands out; a struct registry_node is filled on demand
 * (registry_get fills a view slot, registry_foreach a record on its
 * stack).  Per node there is:
 *
 * - a struct reg_entry of 48 bytes, in slabs of REGISTRY_SLAB records
 *   (no malloc header and rounding per node; the slabs never move, and
 *   their order is the order nodes were first heard, which
 *   registry_foreach follows).  Times are u32 unix seconds (enough until
 *   2106; a time outside 0..UINT32_MAX is clamped).  The hash chain is
 *   an index, the buckets u32 indexes at a load factor of 2 (32 KiB for
 *   10,000 nodes; rebuilt from the records when they double, so the old
 *   and new arrays are never held at once).
 * - its link address and address text, which are per node (interning
 *   them would cost a string slot, a hash bucket and a malloc'd string
 *   each), as one record of 3 + len + strlen(text) bytes (24 for a LAN
 *   node at 127.0.0.1:40000: 6 bytes of address, 15 of text) in an
 *   append-only pool of REGISTRY_POOL_CHUNK chunks (no doubling
 *   realloc).  A changed address of the same size is rewritten in
 *   place; otherwise the new record is appended and the old one counted
 *   as garbage, and once the garbage exceeds the live bytes the pool is
 *   compacted in place.
 * - nothing else in the common case: what a fleet shares (hw model,
 *   transport instance, the list of component names and versions) is
 *   one reference-counted "shape", so ten thousand nodes of one model
 *   running the same firmware share one; each text in a shape is an
 *   index into a reference-counted string table.  Tags and topology,
 *   which few nodes have, sit in a side record (struct reg_extra).
 *
 * So about 75 bytes a node (48 + 24 + 3), from about 180 before (a
 * malloc'd 112-byte record in a 128-byte chunk, a malloc'd component
 * array, an array of pointers in insertion order, 8-byte buckets).
 * Measured with bench/rss.py --only registry (static build, 10,000 LAN
 * nodes): VmHWM 8976 -> 8000 KiB, idle 7164 KiB, so 86 bytes a node
 * with SQLite's page cache filling up to its cap.
 */
struct reg_str {
	char		*s;		/* NULL: on the free list */
	uint32_t	 ref;
	uint32_t	 next;		/* hash chain or free list; 0 ends */
};

struct reg_comp {
	uint32_t	 name;		/* string indexes */
	uint32_t	 version;
};

/*
 * What many nodes share: hw, transport and components (in the order the
 * node gave them).  Compared and hashed by its string indexes.
 */
struct reg_shape {
	uint32_t	 ref;
	uint32_t	 hw;
	uint32_t	 transport;
	uint8_t		 ncomp;
	struct reg_comp	 comp[];
};

struct reg_shape_slot {
	struct reg_shape *s;		/* NULL: on the free list */
	uint32_t	 next;		/* hash chain or free list; 0 ends */
};

/* A shape being built: its string references are owned by the key. */
struct reg_shape_key {
	uint32_t	 hw;
	uint32_t	 transport;
	uint8_t		 ncomp;
	struct reg_comp	 comp[UP_MAX_COMPONENTS];
};

/* Set by the technician (upctl node ID tag|topology); rare. */
struct reg_extra {
	uint64_t	 parent;
	uint32_t	 next;		/* free list (index + 1), 0 ends */
	uint8_t		 level;
	uint8_t		 role;
	uint8_t		 ntags;
	uint32_t	 tag[REGISTRY_MAX_TAGS];
};

struct reg_entry {
	uint64_t	 id;
	uint32_t	 hnext;		/* hash chain: index + 1, 0 ends */
	uint32_t	 shape;		/* index into the shape table */
	uint32_t	 extra;		/* index + 1 into r->xt, 0: none */
	uint32_t	 addr;		/* offset of its record in the pool */
	uint32_t	 first_seen;	/* unix seconds */
	uint32_t	 last_seen;
	uint32_t	 written;	/* last_seen last written */
	uint32_t	 free_kib;
	uint16_t	 max_frame;
	int16_t		 rssi_dbm;
	int8_t		 snr_db;
	uint8_t		 battery;
	uint8_t		 state;
};

struct registry {
	sqlite3			*db;

	/* Records, REGISTRY_SLAB a slab; index i is the i-th node heard. */
	struct reg_entry	**slab;
	uint32_t		 nslab;
	uint32_t		 capslab;
	size_t			 n;
	uint32_t		*b;		/* hash buckets: index + 1 */
	size_t			 nb;		/* power of two */

	/* The address pool (see "Memory"). */
	uint8_t			**pc;		/* chunks */
	uint32_t		 npc;
	uint32_t		 cappc;
	uint32_t		 pend;		/* offset of the next record */
	size_t			 plive;		/* bytes of live records */
	size_t			 pgarbage;	/* bytes of replaced ones */

	/* Shapes; slot 0 is the empty shape and never freed. */
	struct reg_shape_slot	*shp;
	uint32_t		 nshp;		/* slots used */
	uint32_t		 capshp;
	uint32_t		 shfree;	/* free list head, 0 none */
	uint32_t		 nshlive;
	uint32_t		*shb;		/* hash buckets, 0 empty */
	uint32_t		 nshb;		/* power of two */

	/* Tags and topology. */
	struct reg_extra	*xt;
	uint32_t		 nxt;		/* slots used */
	uint32_t		 capxt;
	uint32_t		 xfree;		/* free list: index + 1 */

	/* The string table; slot 0 is "" and never freed. */
	struct reg_str		*str;
	uint32_t		 nstr;		/* slots used */
	uint32_t		 capstr;
	uint32_t		 sfree;		/* free list head, 0 none */
	uint32_t		 nlive;
	uint32_t		*sb;		/* hash buckets, 0 empty */
	uint32_t		 nsb;		/* power of two */

	/* registry_get's views, released once the loop turn is over. */
	struct registry_node	*view[REGISTRY_VIEWS];
	size_t			 nview;
	struct event		*ev_release;

	sqlite3_stmt		*st_node;
	sqlite3_stmt		*st_comp_del;
	sqlite3_stmt		*st_comp_ins;
	sqlite3_stmt		*st_state;
	sqlite3_stmt		*st_version;
	sqlite3_stmt		*st_tags_get;
	sqlite3_stmt		*st_tag_add;
	sqlite3_stmt		*st_tag_del;
	sqlite3_stmt		*st_topo_get;
	sqlite3_stmt		*st_topo_put;
};

/* The shape of a node not yet described (slot 0). */
static const struct reg_shape registry_noshape;

static const char *const registry_steps[] = {
	/* 1: nodes and their components. */
	"CREATE TABLE nodes ("
	"  id INTEGER PRIMARY KEY,"		/* u64 node id, as int64 */
	"  hw TEXT NOT NULL,"
	"  transport TEXT NOT NULL,"
	"  addr BLOB,"
	"  addr_text TEXT,"
	"  max_frame INTEGER NOT NULL DEFAULT 0,"
	"  free_kib INTEGER NOT NULL DEFAULT 0,"
	"  battery INTEGER NOT NULL DEFAULT 255,"
	"  rssi INTEGER,"
	"  snr INTEGER,"
	"  state INTEGER NOT NULL DEFAULT 0,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL);"
	"CREATE TABLE node_components ("
	"  node INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  PRIMARY KEY (node, name));",
	/*
	 * 2 (issue 4): tags and topology, for the scheduler's targets and
	 * ordering.  Set by the technician (upctl node ID tag|topology), so
	 * they live apart from the rows ANNOUNCE writes and may name a node
	 * that has not announced yet (pre-provisioning).
	 */
	"CREATE TABLE node_tags ("
	"  node INTEGER NOT NULL,"
	"  tag TEXT NOT NULL,"
	"  PRIMARY KEY (node, tag));"
	"CREATE TABLE node_topology ("
	"  node INTEGER PRIMARY KEY,"
	"  parent INTEGER NOT NULL DEFAULT 0,"
	"  level INTEGER NOT NULL DEFAULT 0,"
	"  role INTEGER NOT NULL DEFAULT 0);"
};

/* glibc 2.36 has no strlcpy(3). */
static void
registry_strlcpy(char *dst, const char *src, size_t size)
{
	size_t	 n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Clamps unix seconds to what a record keeps (see "Memory"). */
static uint32_t
registry_t32(int64_t t)
{
	if (t < 0)
		return (0);
	if (t > (int64_t)UINT32_MAX)
		return (UINT32_MAX);
	return ((uint32_t)t);
}

/* ------------------------------------------------------------------ */
/* The string table                                                    */

static uint32_t
registry_str_hash(const char *s, size_t len)
{
	uint32_t	 h = 2166136261U;	/* FNV-1a */
	size_t		 i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619U;
	}
	return (h);
}

static const char *
registry_str(const struct registry *r, uint32_t i)
{
	return (i == 0 ? "" : r->str[i].s);
}

static void
registry_str_rehash(struct registry *r, uint32_t nsb)
{
	uint32_t	 i, h;

	free(r->sb);
	r->sb = xcalloc(nsb, sizeof(*r->sb));
	r->nsb = nsb;
	for (i = 1; i < r->nstr; i++) {
		if (r->str[i].s == NULL)
			continue;
		h = registry_str_hash(r->str[i].s, strlen(r->str[i].s)) &
		    (nsb - 1);
		r->str[i].next = r->sb[h];
		r->sb[h] = i;
	}
}

/*
 * A reference to the string `s', cut to `max' bytes (the size of the
 * field registry_node gives it, less its NUL).
 */
static uint32_t
registry_intern(struct registry *r, const char *s, size_t max)
{
	struct reg_str	*e;
	size_t		 len = strnlen(s, max);
	uint32_t	 h, i;

	if (len == 0)
		return (0);
	h = registry_str_hash(s, len);
	for (i = r->sb[h & (r->nsb - 1)]; i != 0; i = r->str[i].next) {
		e = &r->str[i];
		if (strncmp(e->s, s, len) == 0 && e->s[len] == '\0') {
			e->ref++;
			return (i);
		}
	}
	if (r->nlive + 1 > r->nsb)
		registry_str_rehash(r, r->nsb * 2);
	if ((i = r->sfree) != 0)
		r->sfree = r->str[i].next;
	else {
		if (r->nstr == r->capstr) {
			r->capstr *= 2;
			r->str = xreallocarray(r->str, r->capstr,
			    sizeof(*r->str));
		}
		i = r->nstr++;
	}
	e = &r->str[i];
	e->s = xmalloc(len + 1);
	memcpy(e->s, s, len);
	e->s[len] = '\0';
	e->ref = 1;
	h &= r->nsb - 1;
	e->next = r->sb[h];
	r->sb[h] = i;
	r->nlive++;
	return (i);
}

/* One more reference to string `i'. */
static void
registry_ref(struct registry *r, uint32_t i)
{
	if (i != 0)
		r->str[i].ref++;
}

static void
registry_unref(struct registry *r, uint32_t i)
{
	struct reg_str	*e = &r->str[i];
	uint32_t	*pp;

	if (i == 0 || --e->ref > 0)
		return;
	pp = &r->sb[registry_str_hash(e->s, strlen(e->s)) & (r->nsb - 1)];
	while (*pp != i)
		pp = &r->str[*pp].next;
	*pp = e->next;
	free(e->s);
	e->s = NULL;
	e->next = r->sfree;
	r->sfree = i;
	r->nlive--;
}

/* Does string `i' equal `s' cut to `max' bytes, as intern would keep it? */
static int
registry_str_eq(const struct registry *r, uint32_t i, const char *s,
    size_t max)
{
	const char	*t = registry_str(r, i);
	size_t		 len = strnlen(s, max);

	return (strncmp(t, s, len) == 0 && t[len] == '\0');
}

/* ------------------------------------------------------------------ */
/* Shapes: hw, transport and components, shared                        */

static const struct reg_shape *
registry_shape(const struct registry *r, uint32_t i)
{
	return (i == 0 ? &registry_noshape : r->shp[i].s);
}

static uint32_t
registry_shape_hash(uint32_t hw, uint32_t transport, uint8_t ncomp,
    const struct reg_comp *comp)
{
	uint32_t	 h = 2166136261U, v[4];
	size_t		 i, j, nv;

	for (i = 0; i <= ncomp; i++) {
		if (i == 0) {
			v[0] = hw;
			v[1] = transport;
			v[2] = ncomp;
			nv = 3;
		} else {
			v[0] = comp[i - 1].name;
			v[1] = comp[i - 1].version;
			nv = 2;
		}
		for (j = 0; j < nv; j++) {
			h ^= v[j];
			h *= 16777619U;
		}
	}
	return (h ^ (h >> 15));
}

static void
registry_shape_rehash(struct registry *r, uint32_t nshb)
{
	const struct reg_shape	*s;
	uint32_t		 i, h;

	free(r->shb);
	r->shb = xcalloc(nshb, sizeof(*r->shb));
	r->nshb = nshb;
	for (i = 1; i < r->nshp; i++) {
		if ((s = r->shp[i].s) == NULL)
			continue;
		h = registry_shape_hash(s->hw, s->transport, s->ncomp,
		    s->comp) & (nshb - 1);
		r->shp[i].next = r->shb[h];
		r->shb[h] = i;
	}
}

/* A key holding its own references to the strings of shape `i'. */
static void
registry_shape_key(struct registry *r, uint32_t i, struct reg_shape_key *k)
{
	const struct reg_shape	*s = registry_shape(r, i);
	size_t			 j;

	k->hw = s->hw;
	k->transport = s->transport;
	k->ncomp = s->ncomp;
	registry_ref(r, k->hw);
	registry_ref(r, k->transport);
	for (j = 0; j < s->ncomp; j++) {
		k->comp[j] = s->comp[j];
		registry_ref(r, k->comp[j].name);
		registry_ref(r, k->comp[j].version);
	}
}

static void
registry_key_unref(struct registry *r, const struct reg_shape_key *k)
{
	size_t	 j;

	registry_unref(r, k->hw);
	registry_unref(r, k->transport);
	for (j = 0; j < k->ncomp; j++) {
		registry_unref(r, k->comp[j].name);
		registry_unref(r, k->comp[j].version);
	}
}

/*
 * A reference to the shape described by `k', which gives up its string
 * references (to the new shape, or dropped if the shape exists).
 */
static uint32_t
registry_shape_get(struct registry *r, const struct reg_shape_key *k)
{
	struct reg_shape	*s;
	size_t			 csz = k->ncomp * sizeof(k->comp[0]);
	uint32_t		 h, i;

	if (k->hw == 0 && k->transport == 0 && k->ncomp == 0)
		return (0);
	h = registry_shape_hash(k->hw, k->transport, k->ncomp, k->comp);
	for (i = r->shb[h & (r->nshb - 1)]; i != 0; i = r->shp[i].next) {
		s = r->shp[i].s;
		if (s->hw == k->hw && s->transport == k->transport &&
		    s->ncomp == k->ncomp &&
		    memcmp(s->comp, k->comp, csz) == 0) {
			s->ref++;
			registry_key_unref(r, k);
			return (i);
		}
	}
	if (r->nshlive + 1 > r->nshb)
		registry_shape_rehash(r, r->nshb * 2);
	if ((i = r->shfree) != 0)
		r->shfree = r->shp[i].next;
	else {
		if (r->nshp == r->capshp) {
			r->capshp *= 2;
			r->shp = xreallocarray(r->shp, r->capshp,
			    sizeof(*r->shp));
		}
		i = r->nshp++;
	}
	s = xmalloc(sizeof(*s) + csz);
	s->ref = 1;
	s->hw = k->hw;
	s->transport = k->transport;
	s->ncomp = k->ncomp;
	memcpy(s->comp, k->comp, csz);
	r->shp[i].s = s;
	h &= r->nshb - 1;
	r->shp[i].next = r->shb[h];
	r->shb[h] = i;
	r->nshlive++;
	return (i);
}

static void
registry_shape_unref(struct registry *r, uint32_t i)
{
	struct reg_shape	*s;
	uint32_t		*pp;
	size_t			 j;

	if (i == 0 || --(s = r->shp[i].s)->ref > 0)
		return;
	pp = &r->shb[registry_shape_hash(s->hw, s->transport, s->ncomp,
	    s->comp) & (r->nshb - 1)];
	while (*pp != i)
		pp = &r->shp[*pp].next;
	*pp = r->shp[i].next;
	registry_unref(r, s->hw);
	registry_unref(r, s->transport);
	for (j = 0; j < s->ncomp; j++) {
		registry_unref(r, s->comp[j].name);
		registry_unref(r, s->comp[j].version);
	}
	free(s);
	r->shp[i].s = NULL;
	r->shp[i].next = r->shfree;
	r->shfree = i;
	r->nshlive--;
}

/* Replaces the shape reference *ip by one from `k' (see shape_get). */
static void
registry_shape_set(struct registry *r, uint32_t *ip,
    const struct reg_shape_key *k)
{
	uint32_t	 old = *ip;

	*ip = registry_shape_get(r, k);
	registry_shape_unref(r, old);
}

/* ------------------------------------------------------------------ */
/* The address pool                                                    */

static uint8_t *
registry_pool_at(const struct registry *r, uint32_t off)
{
	return (r->pc[off / REGISTRY_POOL_CHUNK] + off % REGISTRY_POOL_CHUNK);
}

static size_t
registry_rec_size(const uint8_t *p)
{
	return (REGISTRY_REC_HDR + (size_t)p[1] + p[0]);
}

/* Encodes an address record into `p'; returns its size. */
static size_t
registry_rec_encode(uint8_t *p, const struct tp_addr *a, const char *text,
    size_t tlen)
{
	p[0] = (uint8_t)tlen;
	p[1] = a->len;
	p[2] = a->flags;
	memcpy(p + REGISTRY_REC_HDR, a->b, a->len);
	memcpy(p + REGISTRY_REC_HDR + a->len, text, tlen);
	return (REGISTRY_REC_HDR + a->len + tlen);
}

/* The address (unused tail zeroed) and text (not NUL-terminated). */
static const char *
registry_addr(const struct registry *r, const struct reg_entry *e,
    struct tp_addr *a, size_t *tlen)
{
	const uint8_t	*p = registry_pool_at(r, e->addr);

	if (a != NULL) {
		memset(a, 0, sizeof(*a));
		a->len = p[1];
		a->flags = p[2];
		memcpy(a->b, p + REGISTRY_REC_HDR, a->len);
	}
	*tlen = p[0];
	return ((const char *)p + REGISTRY_REC_HDR + p[1]);
}

/* Appends `size' bytes; returns their offset. */
static uint32_t
registry_pool_alloc(struct registry *r, size_t size)
{
	uint32_t	 off = r->pend, c;

	/* A record never straddles two chunks. */
	if (off % REGISTRY_POOL_CHUNK + size > REGISTRY_POOL_CHUNK)
		off = (off / REGISTRY_POOL_CHUNK + 1) * REGISTRY_POOL_CHUNK;
	c = off / REGISTRY_POOL_CHUNK;
	if (c == r->npc) {
		if (r->npc == r->cappc) {
			r->cappc = r->cappc != 0 ? r->cappc * 2 : 16;
			r->pc = xreallocarray(r->pc, r->cappc,
			    sizeof(*r->pc));
		}
		r->pc[r->npc++] = xmalloc(REGISTRY_POOL_CHUNK);
	}
	r->pend = off + (uint32_t)size;
	return (off);
}

static struct reg_entry *
registry_entry(const struct registry *r, size_t i)
{
	return (&r->slab[i / REGISTRY_SLAB][i % REGISTRY_SLAB]);
}

static int
registry_cmp_u64(const void *a, const void *b)
{
	uint64_t	 x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/*
 * Slides every live record down over the garbage, in pool order, and
 * frees the chunks left empty.  A record only moves to a lower offset
 * (a chunk that holds it from its old offset holds it from any lower
 * one), so this needs no second pool, only a sorted list of the nodes.
 */
static void
registry_pool_compact(struct registry *r)
{
	struct reg_entry	*e;
	uint64_t		*k;
	uint32_t		 dst = 0, keep;
	size_t			 i, size;
	uint8_t			*p;

	k = xreallocarray(NULL, r->n != 0 ? r->n : 1, sizeof(*k));
	for (i = 0; i < r->n; i++)
		k[i] = (uint64_t)registry_entry(r, i)->addr << 32 | i;
	qsort(k, r->n, sizeof(*k), registry_cmp_u64);
	for (i = 0; i < r->n; i++) {
		e = registry_entry(r, (uint32_t)k[i]);
		p = registry_pool_at(r, e->addr);
		size = registry_rec_size(p);
		if (dst % REGISTRY_POOL_CHUNK + size > REGISTRY_POOL_CHUNK)
			dst = (dst / REGISTRY_POOL_CHUNK + 1) *
			    REGISTRY_POOL_CHUNK;
		if (dst != e->addr)
			memmove(registry_pool_at(r, dst), p, size);
		e->addr = dst;
		dst += (uint32_t)size;
	}
	free(k);
	keep = (dst + REGISTRY_POOL_CHUNK - 1) / REGISTRY_POOL_CHUNK;
	while (r->npc > keep)
		free(r->pc[--r->npc]);
	r->pend = dst;
	r->pgarbage = 0;
	log_debug("registry: address pool compacted to %zu bytes, %u chunks",
	    r->plive, r->npc);
}

/*
 * Sets the address of `e' (`old': it has one already).  Text is cut to
 * what registry_node's field holds.
 */
static void
registry_addr_set(struct registry *r, struct reg_entry *e, int old,
    const struct tp_addr *a, const char *text)
{
	uint8_t		 rec[REGISTRY_REC_HDR + TP_ADDR_MAX + TP_ADDR_TEXT_MAX];
	size_t		 size, osize = 0;
	uint8_t		*p = NULL;

	size = registry_rec_encode(rec, a, text,
	    strnlen(text, TP_ADDR_TEXT_MAX - 1));
	if (old) {
		p = registry_pool_at(r, e->addr);
		osize = registry_rec_size(p);
		if (osize == size) {
			/* Unchanged, or rewritten where it is. */
			if (memcmp(p, rec, size) != 0)
				memcpy(p, rec, size);
			return;
		}
	}
	e->addr = registry_pool_alloc(r, size);
	memcpy(registry_pool_at(r, e->addr), rec, size);
	r->plive += size;
	if (!old)
		return;
	r->plive -= osize;
	r->pgarbage += osize;
	if (r->pgarbage > r->plive && r->pgarbage >= REGISTRY_POOL_CHUNK)
		registry_pool_compact(r);
}

/* ------------------------------------------------------------------ */
/* Records and views                                                   */

static uint64_t
registry_hash(uint64_t id)
{
	/* splitmix64 finaliser: node ids are often small and sequential. */
	id ^= id >> 30;
	id *= 0xbf58476d1ce4e5b9ULL;
	id ^= id >> 27;
	id *= 0x94d049bb133111ebULL;
	id ^= id >> 31;
	return (id);
}

static struct reg_entry *
registry_find(struct registry *r, uint64_t id)
{
	struct reg_entry	*e;
	uint32_t		 i;

	for (i = r->b[registry_hash(id) & (r->nb - 1)]; i != 0;
	    i = e->hnext) {
		e = registry_entry(r, i - 1);
		if (e->id == id)
			return (e);
	}
	return (NULL);
}

static void
registry_grow(struct registry *r)
{
	struct reg_entry	*e;
	uint32_t		*nb;
	size_t			 i, n = r->nb * 2, h;

	/* Rebuilt from the records: no chains to walk, same result. */
	free(r->b);
	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < r->n; i++) {
		e = registry_entry(r, i);
		h = registry_hash(e->id) & (n - 1);
		e->hnext = nb[h];
		nb[h] = (uint32_t)(i + 1);
	}
	r->b = nb;
	r->nb = n;
}

/* A new, zeroed record for node `id', in the table. */
static struct reg_entry *
registry_entry_new(struct registry *r, uint64_t id)
{
	struct reg_entry	*e;
	size_t			 h;

	if (r->n + 1 > REGISTRY_LOAD * r->nb)
		registry_grow(r);
	if (r->n == (size_t)r->nslab * REGISTRY_SLAB) {
		if (r->nslab == r->capslab) {
			r->capslab = r->capslab != 0 ? r->capslab * 2 : 16;
			r->slab = xreallocarray(r->slab, r->capslab,
			    sizeof(*r->slab));
		}
		r->slab[r->nslab++] = xreallocarray(NULL, REGISTRY_SLAB,
		    sizeof(**r->slab));
	}
	e = registry_entry(r, r->n);
	memset(e, 0, sizeof(*e));
	e->id = id;
	h = registry_hash(id) & (r->nb - 1);
	e->hnext = r->b[h];
	r->b[h] = (uint32_t)(++r->n);
	return (e);
}

static struct reg_extra *
registry_extra(const struct registry *r, const struct reg_entry *e)
{
	return (e->extra != 0 ? &r->xt[e->extra - 1] : NULL);
}

/* Gives `e' a zeroed side record. */
static struct reg_extra *
registry_extra_new(struct registry *r, struct reg_entry *e)
{
	uint32_t	 i;

	if ((i = r->xfree) != 0)
		r->xfree = r->xt[i - 1].next;
	else {
		if (r->nxt == r->capxt) {
			r->capxt = r->capxt != 0 ? r->capxt * 2 : 16;
			r->xt = xreallocarray(r->xt, r->capxt,
			    sizeof(*r->xt));
		}
		i = ++r->nxt;
	}
	memset(&r->xt[i - 1], 0, sizeof(r->xt[i - 1]));
	e->extra = i;
	return (&r->xt[i - 1]);
}

/* Drops the side record of `e' (its tags already unreferenced). */
static void
registry_extra_free(struct registry *r, struct reg_entry *e)
{
	if (e->extra == 0)
		return;
	r->xt[e->extra - 1].next = r->xfree;
	r->xfree = e->extra;
	e->extra = 0;
}

/* The API's record of one node, from its compact one. */
static void
registry_fill(const struct registry *r, const struct reg_entry *e,
    struct registry_node *n)
{
	const struct reg_shape	*s = registry_shape(r, e->shape);
	const struct reg_extra	*x = registry_extra(r, e);
	const char		*text;
	size_t			 i, tlen;

	memset(n, 0, sizeof(*n));
	n->id = e->id;
	registry_strlcpy(n->hw, registry_str(r, s->hw), sizeof(n->hw));
	registry_strlcpy(n->transport, registry_str(r, s->transport),
	    sizeof(n->transport));
	text = registry_addr(r, e, &n->addr, &tlen);
	memcpy(n->addr_text, text, tlen);	/* < TP_ADDR_TEXT_MAX */
	n->max_frame = e->max_frame;
	n->free_kib = e->free_kib;
	n->battery = e->battery;
	n->rssi_dbm = e->rssi_dbm;
	n->snr_db = e->snr_db;
	n->state = e->state;
	n->first_seen = e->first_seen;
	n->last_seen = e->last_seen;
	n->ncomp = s->ncomp;
	for (i = 0; i < s->ncomp; i++) {
		registry_strlcpy(n->comp[i].name,
		    registry_str(r, s->comp[i].name), sizeof(n->comp[i].name));
		registry_strlcpy(n->comp[i].version,
		    registry_str(r, s->comp[i].version),
		    sizeof(n->comp[i].version));
	}
	if (x == NULL)
		return;
	n->ntags = x->ntags;
	for (i = 0; i < n->ntags; i++)
		registry_strlcpy(n->tags[i], registry_str(r, x->tag[i]),
		    sizeof(n->tags[i]));
	n->parent = x->parent;
	n->level = x->level;
	n->role = x->role;
}

/* A changed node: views handed out for it show the change, as before. */
static void
registry_refresh(struct registry *r, const struct reg_entry *e)
{
	size_t	 i;

	for (i = 0; i < r->nview; i++)
		if (r->view[i]->id == e->id)
			registry_fill(r, e, r->view[i]);
}

/*
 * The end of a loop turn: no callback holds a view any more (they are
 * borrowed for the duration of a call), so every slot is free again.
 */
static void
registry_release(evutil_socket_t fd, short what, void *arg)
{
	struct registry	*r = arg;
	size_t		 i;

	r->nview = 0;
	for (i = REGISTRY_VIEWS_KEEP; i < REGISTRY_VIEWS; i++) {
		free(r->view[i]);
		r->view[i] = NULL;
	}
}

static int
registry_prepare(struct registry *r, sqlite3_stmt **st, const char *sql,
    char **cause)
{
	if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
	    NULL) != SQLITE_OK) {
		xasprintf(cause, "registry: %s", sqlite3_errmsg(r->db));
		return (-1);
	}
	return (0);
}

static const char *
registry_col(sqlite3_stmt *st, int col)
{
	const unsigned char	*s = sqlite3_column_text(st, col);

	return (s != NULL ? (const char *)s : "");
}

/* Tags and topology of one node, from their tables. */
static void
registry_load_extra(struct registry *r, struct reg_entry *e)
{
	struct reg_extra	 x, *ox;
	sqlite3_stmt		*st;
	bool			 topo = false;
	size_t			 i;

	memset(&x, 0, sizeof(x));
	st = r->st_tags_get;
	sqlite3_bind_int64(st, 1, (int64_t)e->id);
	while (sqlite3_step(st) == SQLITE_ROW && x.ntags < REGISTRY_MAX_TAGS)
		x.tag[x.ntags++] = registry_intern(r, registry_col(st, 0),
		    sizeof(((struct registry_node *)0)->tags[0]) - 1);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	st = r->st_topo_get;
	sqlite3_bind_int64(st, 1, (int64_t)e->id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		x.parent = (uint64_t)sqlite3_column_int64(st, 0);
		x.level = (uint8_t)sqlite3_column_int(st, 1);
		x.role = (uint8_t)sqlite3_column_int(st, 2);
		topo = x.parent != 0 || x.level != 0 || x.role != 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);

	if ((ox = registry_extra(r, e)) != NULL) {
		for (i = 0; i < ox->ntags; i++)
			registry_unref(r, ox->tag[i]);
		if (x.ntags == 0 && !topo)
			registry_extra_free(r, e);
	}
	if (x.ntags == 0 && !topo)
		return;
	if ((ox = registry_extra(r, e)) == NULL)
		ox = registry_extra_new(r, e);
	*ox = x;
}

/*
 * Sets component `name' of `e' to `version', appended if it has none
 * of that name (the caller checked there is room).
 */
static void
registry_set_comp(struct registry *r, struct reg_entry *e, const char *name,
    const char *version)
{
	struct reg_shape_key	 k;
	size_t			 i;

	registry_shape_key(r, e->shape, &k);
	for (i = 0; i < k.ncomp; i++)
		if (registry_str_eq(r, k.comp[i].name, name, UP_NAME_MAX))
			break;
	if (i == k.ncomp) {
		k.comp[i].name = registry_intern(r, name, UP_NAME_MAX);
		k.comp[i].version = 0;
		k.ncomp++;
	}
	registry_unref(r, k.comp[i].version);
	k.comp[i].version = registry_intern(r, version, UP_VER_MAX);
	registry_shape_set(r, &e->shape, &k);
}

static int
registry_load(struct registry *r, char **cause)
{
	sqlite3_stmt		*st = NULL, *cs = NULL;
	struct reg_entry	*e;
	struct reg_shape_key	 k;
	struct up_component	 c;
	struct tp_addr		 a;
	const void		*blob;
	size_t			 i;
	int			 rc, len;

	if (registry_prepare(r, &st, "SELECT id, hw, transport, addr, "
	    "addr_text, max_frame, free_kib, battery, rssi, snr, state, "
	    "first_seen, last_seen FROM nodes ORDER BY id", cause) == -1)
		return (-1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (registry_find(r, (uint64_t)sqlite3_column_int64(st, 0)) !=
		    NULL)
			continue;
		e = registry_entry_new(r,
		    (uint64_t)sqlite3_column_int64(st, 0));
		memset(&k, 0, sizeof(k));
		k.hw = registry_intern(r, registry_col(st, 1), UP_NAME_MAX);
		k.transport = registry_intern(r, registry_col(st, 2),
		    sizeof(((struct registry_node *)0)->transport) - 1);
		registry_shape_set(r, &e->shape, &k);
		memset(&a, 0, sizeof(a));
		blob = sqlite3_column_blob(st, 3);
		len = sqlite3_column_bytes(st, 3);
		if (blob != NULL && len > 0 && (size_t)len <= sizeof(a)) {
			memcpy(&a, blob, len);
			if (a.len > TP_ADDR_MAX)
				memset(&a, 0, sizeof(a));
		}
		registry_addr_set(r, e, 0, &a, registry_col(st, 4));
		e->max_frame = sqlite3_column_int(st, 5);
		e->free_kib = sqlite3_column_int64(st, 6);
		e->battery = sqlite3_column_int(st, 7);
		e->rssi_dbm = sqlite3_column_type(st, 8) == SQLITE_NULL ?
		    UP_RSSI_UNKNOWN : sqlite3_column_int(st, 8);
		e->snr_db = sqlite3_column_type(st, 9) == SQLITE_NULL ?
		    UP_SNR_UNKNOWN : sqlite3_column_int(st, 9);
		e->state = sqlite3_column_int(st, 10);
		e->first_seen = registry_t32(sqlite3_column_int64(st, 11));
		e->last_seen = registry_t32(sqlite3_column_int64(st, 12));
		e->written = e->last_seen;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		xasprintf(cause, "registry: load: %s", sqlite3_errmsg(r->db));
		return (-1);
	}

	if (registry_prepare(r, &cs, "SELECT node, name, version FROM "
	    "node_components ORDER BY node, name", cause) == -1)
		return (-1);
	while ((rc = sqlite3_step(cs)) == SQLITE_ROW) {
		e = registry_find(r, (uint64_t)sqlite3_column_int64(cs, 0));
		if (e == NULL ||
		    registry_shape(r, e->shape)->ncomp >= UP_MAX_COMPONENTS)
			continue;
		registry_strlcpy(c.name, registry_col(cs, 1), sizeof(c.name));
		registry_strlcpy(c.version, registry_col(cs, 2),
		    sizeof(c.version));
		registry_set_comp(r, e, c.name, c.version);
	}
	sqlite3_finalize(cs);
	if (rc != SQLITE_DONE) {
		xasprintf(cause, "registry: load: %s", sqlite3_errmsg(r->db));
		return (-1);
	}
	for (i = 0; i < r->n; i++)
		registry_load_extra(r, registry_entry(r, i));
	return (0);
}

struct registry *
registry_open(sqlite3 *db, char **cause)
{
	struct registry	*r;

	if (db_migrate(db, "registry", registry_steps,
	    (int)(sizeof(registry_steps) / sizeof(registry_steps[0])),
	    cause) == -1)
		return (NULL);

	r = xcalloc(1, sizeof(*r));
	r->db = db;
	r->nb = REGISTRY_MIN_BUCKETS;
	r->b = xcalloc(r->nb, sizeof(*r->b));
	r->capshp = 16;
	r->shp = xcalloc(r->capshp, sizeof(*r->shp));
	r->nshp = 1;			/* slot 0: the empty shape */
	r->nshb = 16;
	r->shb = xcalloc(r->nshb, sizeof(*r->shb));
	r->capstr = 64;
	r->str = xcalloc(r->capstr, sizeof(*r->str));
	r->nstr = 1;			/* slot 0: "" */
	r->nsb = 64;
	r->sb = xcalloc(r->nsb, sizeof(*r->sb));

	if (registry_prepare(r, &r->st_node, "INSERT INTO nodes (id, hw, "
	    "transport, addr, addr_text, max_frame, free_kib, battery, rssi, "
	    "snr, state, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, "
	    "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (id) DO UPDATE "
	    "SET hw = ?2, transport = ?3, addr = ?4, addr_text = ?5, "
	    "max_frame = ?6, free_kib = ?7, battery = ?8, rssi = ?9, "
	    "snr = ?10, state = ?11, last_seen = ?13", cause) == -1 ||
	    registry_prepare(r, &r->st_comp_del, "DELETE FROM node_components "
	    "WHERE node = ?1", cause) == -1 ||
	    registry_prepare(r, &r->st_comp_ins, "INSERT OR REPLACE INTO "
	    "node_components (node, name, version) VALUES (?1, ?2, ?3)",
	    cause) == -1 ||
	    registry_prepare(r, &r->st_state, "UPDATE nodes SET state = ?2 "
	    "WHERE id = ?1", cause) == -1 ||
	    registry_prepare(r, &r->st_version, "INSERT OR REPLACE INTO "
	    "node_components (node, name, version) VALUES (?1, ?2, ?3)",
	    cause) == -1 ||
	    registry_prepare(r, &r->st_tags_get, "SELECT tag FROM node_tags "
	    "WHERE node = ?1 ORDER BY tag", cause) == -1 ||
	    registry_prepare(r, &r->st_tag_add, "INSERT OR IGNORE INTO "
	    "node_tags (node, tag) VALUES (?1, ?2)", cause) == -1 ||
	    registry_prepare(r, &r->st_tag_del, "DELETE FROM node_tags "
	    "WHERE node = ?1 AND tag = ?2", cause) == -1 ||
	    registry_prepare(r, &r->st_topo_get, "SELECT parent, level, role "
	    "FROM node_topology WHERE node = ?1", cause) == -1 ||
	    registry_prepare(r, &r->st_topo_put, "INSERT OR REPLACE INTO "
	    "node_topology (node, parent, level, role) VALUES (?1, ?2, ?3, "
	    "?4)", cause) == -1 ||
	    registry_load(r, cause) == -1) {
		registry_free(r);
		return (NULL);
	}
	log_debug("registry: %zu nodes, %u shapes, %u strings", r->n,
	    r->nshlive, r->nlive);
	return (r);
}

void
registry_set_base(struct registry *r, struct event_base *base)
{
	if (r->ev_release != NULL)
		event_free(r->ev_release);
	r->ev_release = NULL;
	if (base != NULL &&
	    (r->ev_release = evtimer_new(base, registry_release, r)) == NULL)
		fatalx("registry: evtimer_new");
}

void
registry_free(struct registry *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	/* Every string, shape and side record goes: no counts to drop. */
	for (i = 0; i < r->nslab; i++)
		free(r->slab[i]);
	free(r->slab);
	free(r->b);
	for (i = 0; i < r->npc; i++)
		free(r->pc[i]);
	free(r->pc);
	for (i = 1; i < r->nshp; i++)
		free(r->shp[i].s);
	free(r->shp);
	free(r->shb);
	free(r->xt);
	for (i = 1; i < r->nstr; i++)
		free(r->str[i].s);
	free(r->str);
	free(r->sb);
	for (i = 0; i < REGISTRY_VIEWS; i++)
		free(r->view[i]);
	if (r->ev_release != NULL)
		event_free(r->ev_release);
	sqlite3_finalize(r->st_node);
	sqlite3_finalize(r->st_comp_del);
	sqlite3_finalize(r->st_comp_ins);
	sqlite3_finalize(r->st_state);
	sqlite3_finalize(r->st_version);
	sqlite3_finalize(r->st_tags_get);
	sqlite3_finalize(r->st_tag_add);
	sqlite3_finalize(r->st_tag_del);
	sqlite3_finalize(r->st_topo_get);
	sqlite3_finalize(r->st_topo_put);
	free(r);
}

static int
registry_step(struct registry *r, sqlite3_stmt *st)
{
	int	 rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		log_warnx("registry: %s", sqlite3_errmsg(r->db));
		return (-1);
	}
	return (0);
}

static int
registry_write_node(struct registry *r, const struct reg_entry *e)
{
	const struct reg_shape	*s = registry_shape(r, e->shape);
	sqlite3_stmt		*st = r->st_node;
	struct tp_addr		 a;
	const char		*text;
	size_t			 tlen;

	text = registry_addr(r, e, &a, &tlen);
	sqlite3_bind_int64(st, 1, (int64_t)e->id);
	sqlite3_bind_text(st, 2, registry_str(r, s->hw), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, registry_str(r, s->transport), -1,
	    SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, &a, sizeof(a), SQLITE_STATIC);
	sqlite3_bind_text(st, 5, text, (int)tlen, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, e->max_frame);
	sqlite3_bind_int64(st, 7, e->free_kib);
	sqlite3_bind_int(st, 8, e->battery);
	if (e->rssi_dbm != UP_RSSI_UNKNOWN)
		sqlite3_bind_int(st, 9, e->rssi_dbm);
	if (e->snr_db != UP_SNR_UNKNOWN)
		sqlite3_bind_int(st, 10, e->snr_db);
	sqlite3_bind_int(st, 11, e->state);
	sqlite3_bind_int64(st, 12, e->first_seen);
	sqlite3_bind_int64(st, 13, e->last_seen);
	return (registry_step(r, st));
}

static int
registry_write_comps(struct registry *r, const struct reg_entry *e)
{
	const struct reg_shape	*s = registry_shape(r, e->shape);
	size_t			 i;

	sqlite3_bind_int64(r->st_comp_del, 1, (int64_t)e->id);
	if (registry_step(r, r->st_comp_del) == -1)
		return (-1);
	for (i = 0; i < s->ncomp; i++) {
		sqlite3_bind_int64(r->st_comp_ins, 1, (int64_t)e->id);
		sqlite3_bind_text(r->st_comp_ins, 2,
		    registry_str(r, s->comp[i].name), -1, SQLITE_STATIC);
		sqlite3_bind_text(r->st_comp_ins, 3,
		    registry_str(r, s->comp[i].version), -1, SQLITE_STATIC);
		if (registry_step(r, r->st_comp_ins) == -1)
			return (-1);
	}
	return (0);
}

static int
registry_comps_equal(const struct registry *r, const struct reg_shape *s,
    const struct up_announce *a)
{
	size_t	 i;

	if (s->ncomp != a->ncomp)
		return (0);
	for (i = 0; i < s->ncomp; i++)
		if (!registry_str_eq(r, s->comp[i].name, a->comp[i].name,
		    UP_NAME_MAX) ||
		    !registry_str_eq(r, s->comp[i].version,
		    a->comp[i].version, UP_VER_MAX))
			return (0);
	return (1);
}

int
registry_announce(struct registry *r, const struct up_announce *a,
    const char *transport, const struct tp_addr *addr,
    const char *addr_text, int64_t now)
{
	struct reg_entry	*e;
	const struct reg_shape	*s;
	struct reg_shape_key	 k;
	struct tp_addr		 old;
	const char		*text;
	size_t			 i, tlen;
	uint32_t		 now32 = registry_t32(now);
	int			 isnew = 0, changed, comps;
	const size_t		 tmax = sizeof(((struct registry_node *)0)->
				    transport) - 1;

	if (a->node_id == 0 || a->ncomp > UP_MAX_COMPONENTS ||
	    transport == NULL || addr == NULL || addr->len > TP_ADDR_MAX)
		return (-1);
	if (addr_text == NULL)
		addr_text = "";
	if ((e = registry_find(r, a->node_id)) == NULL) {
		e = registry_entry_new(r, a->node_id);
		e->first_seen = now32;
		registry_addr_set(r, e, 0, addr, addr_text);
		/* Tags a technician gave it before it first announced. */
		registry_load_extra(r, e);
		isnew = 1;
	}

	s = registry_shape(r, e->shape);
	registry_addr(r, e, &old, &tlen);
	comps = isnew || !registry_comps_equal(r, s, a);
	changed = comps || !registry_str_eq(r, s->hw, a->hw, UP_NAME_MAX) ||
	    !registry_str_eq(r, s->transport, transport, tmax) ||
	    !tp_addr_eq(&old, addr) || e->max_frame != a->max_frame ||
	    e->free_kib != a->free_kib || e->battery != a->battery ||
	    e->state != a->state;

	if (changed) {
		memset(&k, 0, sizeof(k));
		k.hw = registry_intern(r, a->hw, UP_NAME_MAX);
		k.transport = registry_intern(r, transport, tmax);
		if (comps) {
			k.ncomp = a->ncomp;
			for (i = 0; i < a->ncomp; i++) {
				k.comp[i].name = registry_intern(r,
				    a->comp[i].name, UP_NAME_MAX);
				k.comp[i].version = registry_intern(r,
				    a->comp[i].version, UP_VER_MAX);
			}
		} else {
			k.ncomp = s->ncomp;
			for (i = 0; i < s->ncomp; i++) {
				k.comp[i] = s->comp[i];
				registry_ref(r, k.comp[i].name);
				registry_ref(r, k.comp[i].version);
			}
		}
		registry_shape_set(r, &e->shape, &k);
	}
	if (!isnew)
		registry_addr_set(r, e, 1, addr, addr_text);
	e->max_frame = a->max_frame;
	e->free_kib = a->free_kib;
	e->battery = a->battery;
	e->rssi_dbm = a->rssi_dbm;
	e->snr_db = a->snr_db;
	e->state = a->state;
	e->last_seen = now32;
	registry_refresh(r, e);

	if (changed || (int64_t)now32 - e->written >= REGISTRY_SEEN_WRITE_S) {
		if (registry_write_node(r, e) == -1)
			return (-1);
		e->written = now32;
	}
	if (comps && registry_write_comps(r, e) == -1)
		return (-1);
	if (isnew) {
		text = registry_addr(r, e, NULL, &tlen);
		log_info("registry: new node 0x%016" PRIx64 " hw %s on %s "
		    "(%.*s)", e->id, registry_str(r,
		    registry_shape(r, e->shape)->hw), transport, (int)tlen,
		    text);
	}
	return (isnew);
}

/*
 * The record is filled into one of REGISTRY_VIEWS slots, which stay
 * valid, and show later changes of their node, until the current loop
 * turn is over (a deferred event releases them all: callers borrow it
 * for the duration of a call, never keep it).  A node asked for twice
 * gets the same slot.  When every slot is taken within one turn the
 * newest is reused: that is a loop over many nodes (session.c's
 * block-size scan of every member), whose previous item is no longer
 * looked at, while the first slots, taken by the callers that hold a
 * record across such a loop, stay intact.  Without an event base (unit
 * tests) slots are released only when they run out.
 */
const struct registry_node *
registry_get(struct registry *r, uint64_t id)
{
	struct reg_entry	*e;
	size_t			 i;

	if ((e = registry_find(r, id)) == NULL)
		return (NULL);
	for (i = 0; i < r->nview; i++)
		if (r->view[i]->id == id)
			break;
	if (i == r->nview) {
		if (r->nview < REGISTRY_VIEWS)
			i = r->nview++;
		else
			i = REGISTRY_VIEWS - 1;
		if (r->view[i] == NULL)
			r->view[i] = xmalloc(sizeof(*r->view[i]));
	}
	registry_fill(r, e, r->view[i]);
	if (r->ev_release != NULL && !evtimer_pending(r->ev_release, NULL))
		event_active(r->ev_release, EV_TIMEOUT, 1);
	return (r->view[i]);
}

int
registry_set_version(struct registry *r, uint64_t id, const char *component,
    const char *version)
{
	struct reg_entry	*e;
	const struct reg_shape	*s;
	size_t			 i;

	if ((e = registry_find(r, id)) == NULL || component == NULL ||
	    version == NULL || strlen(component) > UP_NAME_MAX ||
	    strlen(version) > UP_VER_MAX)
		return (-1);
	s = registry_shape(r, e->shape);
	for (i = 0; i < s->ncomp; i++)
		if (registry_str_eq(r, s->comp[i].name, component,
		    UP_NAME_MAX))
			break;
	if (i == s->ncomp && s->ncomp >= UP_MAX_COMPONENTS)
		return (-1);
	registry_set_comp(r, e, component, version);
	registry_refresh(r, e);

	sqlite3_bind_int64(r->st_version, 1, (int64_t)id);
	sqlite3_bind_text(r->st_version, 2, component, -1, SQLITE_STATIC);
	sqlite3_bind_text(r->st_version, 3, version, -1, SQLITE_STATIC);
	return (registry_step(r, r->st_version));
}

int
registry_set_state(struct registry *r, uint64_t id, uint8_t state)
{
	struct reg_entry	*e;

	if ((e = registry_find(r, id)) == NULL)
		return (-1);
	if (e->state == state)
		return (0);
	e->state = state;
	registry_refresh(r, e);
	sqlite3_bind_int64(r->st_state, 1, (int64_t)id);
	sqlite3_bind_int(r->st_state, 2, state);
	return (registry_step(r, r->st_state));
}

/* A tag: 1..31 characters of [A-Za-z0-9._:-]. */
static int
registry_tag_ok(const char *tag)
{
	size_t	 i, n = strlen(tag);

	if (n == 0 || n >= sizeof(((struct registry_node *)0)->tags[0]))
		return (0);
	for (i = 0; i < n; i++)
		if (!((tag[i] >= 'a' && tag[i] <= 'z') ||
		    (tag[i] >= 'A' && tag[i] <= 'Z') ||
		    (tag[i] >= '0' && tag[i] <= '9') || tag[i] == '.' ||
		    tag[i] == '_' || tag[i] == ':' || tag[i] == '-'))
			return (0);
	return (1);
}

int
registry_tag(struct registry *r, uint64_t id, const char *tag, int add,
    char **cause)
{
	struct reg_entry	*e = registry_find(r, id);
	const struct reg_extra	*x;
	sqlite3_stmt		*st = add ? r->st_tag_add : r->st_tag_del;
	size_t			 i, ntags;

	if (id == 0) {
		xasprintf(cause, "node id 0 is not a node");
		return (-1);
	}
	if (!registry_tag_ok(tag)) {
		xasprintf(cause, "bad tag \"%s\" (1 to %zu characters of "
		    "A-Z a-z 0-9 . _ : -)", tag,
		    sizeof(((struct registry_node *)0)->tags[0]) - 1);
		return (-1);
	}
	if (e != NULL) {
		x = registry_extra(r, e);
		ntags = x != NULL ? x->ntags : 0;
		for (i = 0; i < ntags; i++)
			if (strcmp(registry_str(r, x->tag[i]), tag) == 0)
				break;
		if (add && i == ntags && ntags >= REGISTRY_MAX_TAGS) {
			xasprintf(cause, "node 0x%016" PRIx64 " has %d tags "
			    "already", id, REGISTRY_MAX_TAGS);
			return (-1);
		}
	}
	sqlite3_bind_int64(st, 1, (int64_t)id);
	sqlite3_bind_text(st, 2, tag, -1, SQLITE_STATIC);
	if (registry_step(r, st) == -1) {
		xasprintf(cause, "registry: cannot write the tag");
		return (-1);
	}
	if (e != NULL) {
		registry_load_extra(r, e);
		registry_refresh(r, e);
	}
	return (0);
}

int
registry_set_topology(struct registry *r, uint64_t id, uint64_t parent,
    uint8_t level, uint8_t role, char **cause)
{
	struct reg_entry	*e = registry_find(r, id);
	struct reg_extra	*x;
	sqlite3_stmt		*st = r->st_topo_put;

	if (id == 0 || parent == id) {
		xasprintf(cause, "node 0x%016" PRIx64 " cannot route through "
		    "itself", id);
		return (-1);
	}
	if (role > 3) {
		xasprintf(cause, "bad role %u", role);
		return (-1);
	}
	sqlite3_bind_int64(st, 1, (int64_t)id);
	sqlite3_bind_int64(st, 2, (int64_t)parent);
	sqlite3_bind_int(st, 3, level);
	sqlite3_bind_int(st, 4, role);
	if (registry_step(r, st) == -1) {
		xasprintf(cause, "registry: cannot write the topology");
		return (-1);
	}
	if (e != NULL) {
		if ((x = registry_extra(r, e)) == NULL)
			x = registry_extra_new(r, e);
		x->parent = parent;
		x->level = level;
		x->role = role;
		registry_refresh(r, e);
	}
	return (0);
}

size_t
registry_count(struct registry *r)
{
	return (r->n);
}

/*
 * The node last heard on `transport' at `a', 0 if none: a linear scan of
 * the records (no index by address: lookups are rare, a link's topology
 * reports, and addresses change).
 */
uint64_t
registry_find_addr(struct registry *r, const char *transport,
    const struct tp_addr *a)
{
	const struct reg_entry	*e, *best = NULL;
	const uint8_t		*p;
	size_t			 i;

	for (i = 0; i < r->n; i++) {
		e = registry_entry(r, i);
		p = registry_pool_at(r, e->addr);
		if (p[1] != a->len || p[2] != a->flags ||
		    memcmp(p + REGISTRY_REC_HDR, a->b, a->len) != 0 ||
		    !registry_str_eq(r, registry_shape(r, e->shape)->transport,
		    transport, strlen(transport)))
			continue;
		if (best == NULL || e->last_seen >= best->last_seen)
			best = e;
	}
	return (best != NULL ? best->id : 0);
}

void
registry_foreach(struct registry *r,
    void (*fn)(void *, const struct registry_node *), void *arg)
{
	struct registry_node	 n;
	size_t			 i;

	/*
	 * One record on the stack, filled for each node: the callback
	 * borrows it for its call (and may call registry_get meanwhile).
	 * The callback may not add nodes; a node added anyway (appended)
	 * is visited too.
	 */
	for (i = 0; i < r->n; i++) {
		registry_fill(r, registry_entry(r, i), &n);
		fn(arg, &n);
	}
}

static json_t *
registry_time_json(int64_t t)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;
	char		 buf[32];

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		return (json_null());
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (json_string(buf));
}

json_t *
registry_node_json(const struct registry_node *n)
{
	json_t	*o, *comps, *tags;
	char	 id[24];
	size_t	 i;

	snprintf(id, sizeof(id), "0x%016" PRIx64, n->id);
	comps = json_array();
	for (i = 0; i < n->ncomp; i++)
		json_array_append_new(comps, json_pack("{s:s, s:s}",
		    "name", n->comp[i].name, "version", n->comp[i].version));
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:s}",
	    "id", id, "hw", n->hw, "transport", n->transport,
	    "addr", n->addr_text, "max_frame", (int)n->max_frame,
	    "free_kib", (json_int_t)n->free_kib,
	    "state", up_state_str(n->state));
	json_object_set_new(o, "battery", n->battery == UP_BATTERY_UNKNOWN ?
	    json_null() : json_integer(n->battery));
	json_object_set_new(o, "rssi_dbm", n->rssi_dbm == UP_RSSI_UNKNOWN ?
	    json_null() : json_integer(n->rssi_dbm));
	json_object_set_new(o, "snr_db", n->snr_db == UP_SNR_UNKNOWN ?
	    json_null() : json_integer(n->snr_db));
	json_object_set_new(o, "first_seen", registry_time_json(n->first_seen));
	json_object_set_new(o, "last_seen", registry_time_json(n->last_seen));
	json_object_set_new(o, "last_seen_unix", json_integer(n->last_seen));
	json_object_set_new(o, "components", comps);
	tags = json_array();
	for (i = 0; i < n->ntags; i++)
		json_array_append_new(tags, json_string(n->tags[i]));
	json_object_set_new(o, "tags", tags);
	if (n->parent != 0) {
		snprintf(id, sizeof(id), "0x%016" PRIx64, n->parent);
		json_object_set_new(o, "parent", json_string(id));
	} else
		json_object_set_new(o, "parent", json_null());
	json_object_set_new(o, "level", json_integer(n->level));
	json_object_set_new(o, "role", json_string(n->role == 1 ? "relay" :
	    n->role == 2 ? "coordinator" : n->role == 3 ? "gateway" :
	    "leaf"));
	return (o);
}
