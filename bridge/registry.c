/*
 * registry.c: the node registry.
 *
 * Every node heard on any transport, keyed by its stable UP node id
 * (docs/up-protocol.md, ANNOUNCE), with the (instance, link address) it
 * was last heard at: link addresses change (DHCP, BLE random addresses),
 * the node id does not.  The table lives in memory as a hash table with
 * chaining (O(1) lookups whatever the fleet size; it grows by doubling at
 * a load factor of 1) and is written through to the tables nodes and
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
 * Memory (issue 3: the daemon within 8 MiB with 10,000 nodes).  A node
 * is kept as a compact record, not as the 1 KiB struct registry_node the
 * API hands out: every text (hw model, transport instance, component
 * names and versions, the address text, tags) is an index into one
 * reference-counted string table, so "app" and "1.0.0" are stored once
 * for the fleet, and tags and topology, which few nodes have, sit in a
 * side record allocated only for those.  A struct registry_node is
 * filled on demand: registry_get fills a view slot, registry_foreach a
 * record on its stack.  About 200 bytes a node instead of 1,100.
 */
struct reg_str {
	char		*s;		/* NULL: on the free list */
	uint32_t	 ref;
	uint32_t	 next;		/* hash chain or free list; 0 ends */
};

struct reg_comp {
	uint32_t	 name;
	uint32_t	 version;
};

/* Set by the technician (upctl node ID tag|topology); rare. */
struct reg_extra {
	uint64_t	 parent;
	uint8_t		 level;
	uint8_t		 role;
	uint8_t		 ntags;
	uint32_t	 tag[REGISTRY_MAX_TAGS];
};

struct reg_entry {
	uint64_t		 id;
	struct reg_entry	*hnext;
	struct reg_comp		*comp;		/* ncomp of them */
	struct reg_extra	*extra;		/* NULL: no tags, no topology */
	int64_t			 first_seen;
	int64_t			 last_seen;
	int64_t			 written;	/* last_seen last written */
	uint32_t		 hw;		/* string indexes */
	uint32_t		 transport;
	uint32_t		 addr_text;
	uint32_t		 free_kib;
	uint16_t		 max_frame;
	int16_t			 rssi_dbm;
	int8_t			 snr_db;
	uint8_t			 battery;
	uint8_t			 state;
	uint8_t			 ncomp;
	struct tp_addr		 addr;
};

struct registry {
	sqlite3			*db;
	struct reg_entry	**b;
	size_t			 nb;		/* power of two */
	size_t			 n;
	struct reg_entry	**order;	/* insertion order */
	size_t			 norder;

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

/* Replaces the reference *ip by one to `s' (taken before it drops). */
static void
registry_str_set(struct registry *r, uint32_t *ip, const char *s,
    size_t max)
{
	uint32_t	 old = *ip;

	*ip = registry_intern(r, s, max);
	registry_unref(r, old);
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

	for (e = r->b[registry_hash(id) & (r->nb - 1)]; e != NULL;
	    e = e->hnext)
		if (e->id == id)
			return (e);
	return (NULL);
}

static void
registry_grow(struct registry *r)
{
	struct reg_entry	**nb, *e, *next;
	size_t			  i, n = r->nb * 2, h;

	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < r->nb; i++) {
		for (e = r->b[i]; e != NULL; e = next) {
			next = e->hnext;
			h = registry_hash(e->id) & (n - 1);
			e->hnext = nb[h];
			nb[h] = e;
		}
	}
	free(r->b);
	r->b = nb;
	r->nb = n;
}

static void
registry_insert(struct registry *r, struct reg_entry *e)
{
	size_t	 h;

	if (r->n + 1 > r->nb)
		registry_grow(r);
	h = registry_hash(e->id) & (r->nb - 1);
	e->hnext = r->b[h];
	r->b[h] = e;
	if (r->n == r->norder) {
		r->norder = r->norder != 0 ? r->norder * 2 : 64;
		r->order = xreallocarray(r->order, r->norder,
		    sizeof(*r->order));
	}
	r->order[r->n++] = e;
}

static void
registry_entry_free(struct registry *r, struct reg_entry *e)
{
	size_t	 i;

	registry_unref(r, e->hw);
	registry_unref(r, e->transport);
	registry_unref(r, e->addr_text);
	for (i = 0; i < e->ncomp; i++) {
		registry_unref(r, e->comp[i].name);
		registry_unref(r, e->comp[i].version);
	}
	free(e->comp);
	if (e->extra != NULL)
		for (i = 0; i < e->extra->ntags; i++)
			registry_unref(r, e->extra->tag[i]);
	free(e->extra);
	free(e);
}

/* The API's record of one node, from its compact one. */
static void
registry_fill(const struct registry *r, const struct reg_entry *e,
    struct registry_node *n)
{
	size_t	 i;

	memset(n, 0, sizeof(*n));
	n->id = e->id;
	registry_strlcpy(n->hw, registry_str(r, e->hw), sizeof(n->hw));
	registry_strlcpy(n->transport, registry_str(r, e->transport),
	    sizeof(n->transport));
	n->addr = e->addr;
	registry_strlcpy(n->addr_text, registry_str(r, e->addr_text),
	    sizeof(n->addr_text));
	n->max_frame = e->max_frame;
	n->free_kib = e->free_kib;
	n->battery = e->battery;
	n->rssi_dbm = e->rssi_dbm;
	n->snr_db = e->snr_db;
	n->state = e->state;
	n->first_seen = e->first_seen;
	n->last_seen = e->last_seen;
	n->ncomp = e->ncomp;
	for (i = 0; i < e->ncomp; i++) {
		registry_strlcpy(n->comp[i].name,
		    registry_str(r, e->comp[i].name), sizeof(n->comp[i].name));
		registry_strlcpy(n->comp[i].version,
		    registry_str(r, e->comp[i].version),
		    sizeof(n->comp[i].version));
	}
	if (e->extra == NULL)
		return;
	n->ntags = e->extra->ntags;
	for (i = 0; i < n->ntags; i++)
		registry_strlcpy(n->tags[i], registry_str(r, e->extra->tag[i]),
		    sizeof(n->tags[i]));
	n->parent = e->extra->parent;
	n->level = e->extra->level;
	n->role = e->extra->role;
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
	struct reg_extra	 x;
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

	if (e->extra != NULL) {
		for (i = 0; i < e->extra->ntags; i++)
			registry_unref(r, e->extra->tag[i]);
		if (x.ntags == 0 && !topo) {
			free(e->extra);
			e->extra = NULL;
		}
	}
	if (x.ntags == 0 && !topo)
		return;
	if (e->extra == NULL)
		e->extra = xmalloc(sizeof(*e->extra));
	*e->extra = x;
}

/* Sets the components of a node (ncomp <= UP_MAX_COMPONENTS). */
static void
registry_set_comps(struct registry *r, struct reg_entry *e,
    const struct up_component *comp, size_t ncomp)
{
	struct reg_comp	*c;
	size_t		 i;

	c = ncomp != 0 ? xreallocarray(NULL, ncomp, sizeof(*c)) : NULL;
	for (i = 0; i < ncomp; i++) {
		c[i].name = registry_intern(r, comp[i].name, UP_NAME_MAX);
		c[i].version = registry_intern(r, comp[i].version,
		    UP_VER_MAX);
	}
	for (i = 0; i < e->ncomp; i++) {
		registry_unref(r, e->comp[i].name);
		registry_unref(r, e->comp[i].version);
	}
	free(e->comp);
	e->comp = c;
	e->ncomp = (uint8_t)ncomp;
}

static int
registry_load(struct registry *r, char **cause)
{
	sqlite3_stmt		*st = NULL, *cs = NULL;
	struct reg_entry	*e;
	struct up_component	 c;
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
		e = xcalloc(1, sizeof(*e));
		e->id = (uint64_t)sqlite3_column_int64(st, 0);
		e->hw = registry_intern(r, registry_col(st, 1), UP_NAME_MAX);
		e->transport = registry_intern(r, registry_col(st, 2),
		    sizeof(((struct registry_node *)0)->transport) - 1);
		blob = sqlite3_column_blob(st, 3);
		len = sqlite3_column_bytes(st, 3);
		if (blob != NULL && len > 0 &&
		    (size_t)len <= sizeof(e->addr)) {
			memcpy(&e->addr, blob, len);
			if (e->addr.len > TP_ADDR_MAX)
				memset(&e->addr, 0, sizeof(e->addr));
		}
		e->addr_text = registry_intern(r, registry_col(st, 4),
		    TP_ADDR_TEXT_MAX - 1);
		e->max_frame = sqlite3_column_int(st, 5);
		e->free_kib = sqlite3_column_int64(st, 6);
		e->battery = sqlite3_column_int(st, 7);
		e->rssi_dbm = sqlite3_column_type(st, 8) == SQLITE_NULL ?
		    UP_RSSI_UNKNOWN : sqlite3_column_int(st, 8);
		e->snr_db = sqlite3_column_type(st, 9) == SQLITE_NULL ?
		    UP_SNR_UNKNOWN : sqlite3_column_int(st, 9);
		e->state = sqlite3_column_int(st, 10);
		e->first_seen = sqlite3_column_int64(st, 11);
		e->last_seen = sqlite3_column_int64(st, 12);
		e->written = e->last_seen;
		registry_insert(r, e);
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
		if (e == NULL || e->ncomp >= UP_MAX_COMPONENTS)
			continue;
		e->comp = xreallocarray(e->comp, e->ncomp + 1,
		    sizeof(*e->comp));
		registry_strlcpy(c.name, registry_col(cs, 1), sizeof(c.name));
		registry_strlcpy(c.version, registry_col(cs, 2),
		    sizeof(c.version));
		e->comp[e->ncomp].name = registry_intern(r, c.name,
		    UP_NAME_MAX);
		e->comp[e->ncomp].version = registry_intern(r, c.version,
		    UP_VER_MAX);
		e->ncomp++;
	}
	sqlite3_finalize(cs);
	if (rc != SQLITE_DONE) {
		xasprintf(cause, "registry: load: %s", sqlite3_errmsg(r->db));
		return (-1);
	}
	for (i = 0; i < r->n; i++)
		registry_load_extra(r, r->order[i]);
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
	log_debug("registry: %zu nodes, %u strings", r->n, r->nlive);
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
	for (i = 0; i < r->n; i++)
		registry_entry_free(r, r->order[i]);
	free(r->order);
	free(r->b);
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
	sqlite3_stmt	*st = r->st_node;

	sqlite3_bind_int64(st, 1, (int64_t)e->id);
	sqlite3_bind_text(st, 2, registry_str(r, e->hw), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, registry_str(r, e->transport), -1,
	    SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, &e->addr, sizeof(e->addr), SQLITE_STATIC);
	sqlite3_bind_text(st, 5, registry_str(r, e->addr_text), -1,
	    SQLITE_STATIC);
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
	size_t	 i;

	sqlite3_bind_int64(r->st_comp_del, 1, (int64_t)e->id);
	if (registry_step(r, r->st_comp_del) == -1)
		return (-1);
	for (i = 0; i < e->ncomp; i++) {
		sqlite3_bind_int64(r->st_comp_ins, 1, (int64_t)e->id);
		sqlite3_bind_text(r->st_comp_ins, 2,
		    registry_str(r, e->comp[i].name), -1, SQLITE_STATIC);
		sqlite3_bind_text(r->st_comp_ins, 3,
		    registry_str(r, e->comp[i].version), -1, SQLITE_STATIC);
		if (registry_step(r, r->st_comp_ins) == -1)
			return (-1);
	}
	return (0);
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

static int
registry_comps_equal(const struct registry *r, const struct reg_entry *e,
    const struct up_announce *a)
{
	size_t	 i;

	if (e->ncomp != a->ncomp)
		return (0);
	for (i = 0; i < e->ncomp; i++)
		if (!registry_str_eq(r, e->comp[i].name, a->comp[i].name,
		    UP_NAME_MAX) ||
		    !registry_str_eq(r, e->comp[i].version,
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
	int			 isnew = 0, changed, comps;
	const size_t		 tmax = sizeof(((struct registry_node *)0)->
				    transport) - 1;

	if (a->node_id == 0 || a->ncomp > UP_MAX_COMPONENTS ||
	    transport == NULL || addr == NULL || addr->len > TP_ADDR_MAX)
		return (-1);
	if (addr_text == NULL)
		addr_text = "";
	if ((e = registry_find(r, a->node_id)) == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->id = a->node_id;
		e->first_seen = now;
		registry_insert(r, e);
		/* Tags a technician gave it before it first announced. */
		registry_load_extra(r, e);
		isnew = 1;
	}

	comps = isnew || !registry_comps_equal(r, e, a);
	changed = comps || !registry_str_eq(r, e->hw, a->hw, UP_NAME_MAX) ||
	    !registry_str_eq(r, e->transport, transport, tmax) ||
	    !tp_addr_eq(&e->addr, addr) || e->max_frame != a->max_frame ||
	    e->free_kib != a->free_kib || e->battery != a->battery ||
	    e->state != a->state;

	if (changed) {
		registry_str_set(r, &e->hw, a->hw, UP_NAME_MAX);
		registry_str_set(r, &e->transport, transport, tmax);
	}
	if (!registry_str_eq(r, e->addr_text, addr_text,
	    TP_ADDR_TEXT_MAX - 1))
		registry_str_set(r, &e->addr_text, addr_text,
		    TP_ADDR_TEXT_MAX - 1);
	e->addr = *addr;
	e->max_frame = a->max_frame;
	e->free_kib = a->free_kib;
	e->battery = a->battery;
	e->rssi_dbm = a->rssi_dbm;
	e->snr_db = a->snr_db;
	e->state = a->state;
	e->last_seen = now;
	if (comps)
		registry_set_comps(r, e, a->comp, a->ncomp);
	registry_refresh(r, e);

	if (changed || now - e->written >= REGISTRY_SEEN_WRITE_S) {
		if (registry_write_node(r, e) == -1)
			return (-1);
		e->written = now;
	}
	if (comps && registry_write_comps(r, e) == -1)
		return (-1);
	if (isnew)
		log_info("registry: new node 0x%016" PRIx64 " hw %s on %s "
		    "(%s)", e->id, registry_str(r, e->hw), transport,
		    registry_str(r, e->addr_text));
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
	size_t			 i;

	if ((e = registry_find(r, id)) == NULL || component == NULL ||
	    version == NULL || strlen(component) > UP_NAME_MAX ||
	    strlen(version) > UP_VER_MAX)
		return (-1);
	for (i = 0; i < e->ncomp; i++)
		if (registry_str_eq(r, e->comp[i].name, component,
		    UP_NAME_MAX))
			break;
	if (i == e->ncomp) {
		if (e->ncomp >= UP_MAX_COMPONENTS)
			return (-1);
		e->comp = xreallocarray(e->comp, e->ncomp + 1,
		    sizeof(*e->comp));
		e->comp[i].name = registry_intern(r, component, UP_NAME_MAX);
		e->comp[i].version = 0;
		e->ncomp++;
	}
	registry_str_set(r, &e->comp[i].version, version, UP_VER_MAX);
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
		ntags = e->extra != NULL ? e->extra->ntags : 0;
		for (i = 0; i < ntags; i++)
			if (strcmp(registry_str(r, e->extra->tag[i]), tag) == 0)
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
		if (e->extra == NULL)
			e->extra = xcalloc(1, sizeof(*e->extra));
		e->extra->parent = parent;
		e->extra->level = level;
		e->extra->role = role;
		registry_refresh(r, e);
	}
	return (0);
}

size_t
registry_count(struct registry *r)
{
	return (r->n);
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
		registry_fill(r, r->order[i], &n);
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
