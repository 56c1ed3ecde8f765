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
#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upbridged.h"

/* Seconds between two writes of an otherwise unchanged node row. */
#define REGISTRY_SEEN_WRITE_S	60
#define REGISTRY_MIN_BUCKETS	64

struct reg_entry {
	struct registry_node	 n;
	struct reg_entry	*hnext;
	TAILQ_ENTRY(reg_entry)	 entry;
	int64_t			 written;	/* last_seen last written */
};

struct registry {
	sqlite3			*db;
	struct reg_entry	**b;
	size_t			 nb;		/* power of two */
	size_t			 n;
	TAILQ_HEAD(, reg_entry)	 list;		/* insertion order */

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
		if (e->n.id == id)
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
			h = registry_hash(e->n.id) & (n - 1);
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
	h = registry_hash(e->n.id) & (r->nb - 1);
	e->hnext = r->b[h];
	r->b[h] = e;
	TAILQ_INSERT_TAIL(&r->list, e, entry);
	r->n++;
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

static void
registry_copy_text(char *dst, size_t size, const unsigned char *src)
{
	if (src == NULL)
		src = (const unsigned char *)"";
	registry_strlcpy(dst, (const char *)src, size);
}

/* Tags and topology of one node, from their tables. */
static void
registry_load_extra(struct registry *r, struct registry_node *n)
{
	sqlite3_stmt	*st;

	n->ntags = 0;
	st = r->st_tags_get;
	sqlite3_bind_int64(st, 1, (int64_t)n->id);
	while (sqlite3_step(st) == SQLITE_ROW && n->ntags < REGISTRY_MAX_TAGS)
		registry_copy_text(n->tags[n->ntags++], sizeof(n->tags[0]),
		    sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	st = r->st_topo_get;
	sqlite3_bind_int64(st, 1, (int64_t)n->id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		n->parent = (uint64_t)sqlite3_column_int64(st, 0);
		n->level = (uint8_t)sqlite3_column_int(st, 1);
		n->role = (uint8_t)sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int
registry_load(struct registry *r, char **cause)
{
	sqlite3_stmt		*st = NULL, *cs = NULL;
	struct reg_entry	*e;
	const void		*blob;
	int			 rc, len;

	if (registry_prepare(r, &st, "SELECT id, hw, transport, addr, "
	    "addr_text, max_frame, free_kib, battery, rssi, snr, state, "
	    "first_seen, last_seen FROM nodes ORDER BY id", cause) == -1)
		return (-1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e = xcalloc(1, sizeof(*e));
		e->n.id = (uint64_t)sqlite3_column_int64(st, 0);
		registry_copy_text(e->n.hw, sizeof(e->n.hw),
		    sqlite3_column_text(st, 1));
		registry_copy_text(e->n.transport, sizeof(e->n.transport),
		    sqlite3_column_text(st, 2));
		blob = sqlite3_column_blob(st, 3);
		len = sqlite3_column_bytes(st, 3);
		if (blob != NULL && len > 0 &&
		    (size_t)len <= sizeof(e->n.addr)) {
			memcpy(&e->n.addr, blob, len);
			if (e->n.addr.len > TP_ADDR_MAX)
				memset(&e->n.addr, 0, sizeof(e->n.addr));
		}
		registry_copy_text(e->n.addr_text, sizeof(e->n.addr_text),
		    sqlite3_column_text(st, 4));
		e->n.max_frame = sqlite3_column_int(st, 5);
		e->n.free_kib = sqlite3_column_int64(st, 6);
		e->n.battery = sqlite3_column_int(st, 7);
		e->n.rssi_dbm = sqlite3_column_type(st, 8) == SQLITE_NULL ?
		    UP_RSSI_UNKNOWN : sqlite3_column_int(st, 8);
		e->n.snr_db = sqlite3_column_type(st, 9) == SQLITE_NULL ?
		    UP_SNR_UNKNOWN : sqlite3_column_int(st, 9);
		e->n.state = sqlite3_column_int(st, 10);
		e->n.first_seen = sqlite3_column_int64(st, 11);
		e->n.last_seen = sqlite3_column_int64(st, 12);
		e->written = e->n.last_seen;
		if (registry_find(r, e->n.id) != NULL) {
			free(e);
			continue;
		}
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
		if (e == NULL || e->n.ncomp >= UP_MAX_COMPONENTS)
			continue;
		registry_copy_text(e->n.comp[e->n.ncomp].name,
		    sizeof(e->n.comp[0].name), sqlite3_column_text(cs, 1));
		registry_copy_text(e->n.comp[e->n.ncomp].version,
		    sizeof(e->n.comp[0].version), sqlite3_column_text(cs, 2));
		e->n.ncomp++;
	}
	sqlite3_finalize(cs);
	if (rc != SQLITE_DONE) {
		xasprintf(cause, "registry: load: %s", sqlite3_errmsg(r->db));
		return (-1);
	}
	TAILQ_FOREACH(e, &r->list, entry)
		registry_load_extra(r, &e->n);
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
	TAILQ_INIT(&r->list);

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
	log_debug("registry: %zu nodes", r->n);
	return (r);
}

void
registry_free(struct registry *r)
{
	struct reg_entry	*e;

	if (r == NULL)
		return;
	while ((e = TAILQ_FIRST(&r->list)) != NULL) {
		TAILQ_REMOVE(&r->list, e, entry);
		free(e);
	}
	free(r->b);
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
registry_write_node(struct registry *r, const struct registry_node *n)
{
	sqlite3_stmt	*st = r->st_node;

	sqlite3_bind_int64(st, 1, (int64_t)n->id);
	sqlite3_bind_text(st, 2, n->hw, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, n->transport, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, &n->addr, sizeof(n->addr), SQLITE_STATIC);
	sqlite3_bind_text(st, 5, n->addr_text, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, n->max_frame);
	sqlite3_bind_int64(st, 7, n->free_kib);
	sqlite3_bind_int(st, 8, n->battery);
	if (n->rssi_dbm != UP_RSSI_UNKNOWN)
		sqlite3_bind_int(st, 9, n->rssi_dbm);
	if (n->snr_db != UP_SNR_UNKNOWN)
		sqlite3_bind_int(st, 10, n->snr_db);
	sqlite3_bind_int(st, 11, n->state);
	sqlite3_bind_int64(st, 12, n->first_seen);
	sqlite3_bind_int64(st, 13, n->last_seen);
	return (registry_step(r, st));
}

static int
registry_write_comps(struct registry *r, const struct registry_node *n)
{
	size_t	 i;

	sqlite3_bind_int64(r->st_comp_del, 1, (int64_t)n->id);
	if (registry_step(r, r->st_comp_del) == -1)
		return (-1);
	for (i = 0; i < n->ncomp; i++) {
		sqlite3_bind_int64(r->st_comp_ins, 1, (int64_t)n->id);
		sqlite3_bind_text(r->st_comp_ins, 2, n->comp[i].name, -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(r->st_comp_ins, 3, n->comp[i].version, -1,
		    SQLITE_STATIC);
		if (registry_step(r, r->st_comp_ins) == -1)
			return (-1);
	}
	return (0);
}

static int
registry_comps_equal(const struct registry_node *n,
    const struct up_announce *a)
{
	size_t	 i;

	if (n->ncomp != a->ncomp)
		return (0);
	for (i = 0; i < n->ncomp; i++)
		if (strcmp(n->comp[i].name, a->comp[i].name) != 0 ||
		    strcmp(n->comp[i].version, a->comp[i].version) != 0)
			return (0);
	return (1);
}

int
registry_announce(struct registry *r, const struct up_announce *a,
    const char *transport, const struct tp_addr *addr,
    const char *addr_text, int64_t now)
{
	struct reg_entry	*e;
	struct registry_node	*n;
	int			 isnew = 0, changed, comps;
	size_t			 i, ncomp;

	if (a->node_id == 0 || a->ncomp > UP_MAX_COMPONENTS ||
	    transport == NULL || addr == NULL || addr->len > TP_ADDR_MAX)
		return (-1);
	if ((e = registry_find(r, a->node_id)) == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->n.id = a->node_id;
		e->n.first_seen = now;
		registry_insert(r, e);
		/* Tags a technician gave it before it first announced. */
		registry_load_extra(r, &e->n);
		isnew = 1;
	}
	n = &e->n;

	comps = isnew || !registry_comps_equal(n, a);
	changed = comps || strcmp(n->hw, a->hw) != 0 ||
	    strcmp(n->transport, transport) != 0 ||
	    !tp_addr_eq(&n->addr, addr) || n->max_frame != a->max_frame ||
	    n->free_kib != a->free_kib || n->battery != a->battery ||
	    n->state != a->state;

	registry_strlcpy(n->hw, a->hw, sizeof(n->hw));
	registry_strlcpy(n->transport, transport, sizeof(n->transport));
	n->addr = *addr;
	registry_strlcpy(n->addr_text, addr_text != NULL ? addr_text : "",
	    sizeof(n->addr_text));
	n->max_frame = a->max_frame;
	n->free_kib = a->free_kib;
	n->battery = a->battery;
	n->rssi_dbm = a->rssi_dbm;
	n->snr_db = a->snr_db;
	n->state = a->state;
	n->last_seen = now;
	if (comps) {
		ncomp = a->ncomp;
		for (i = 0; i < ncomp; i++)
			n->comp[i] = a->comp[i];
		n->ncomp = ncomp;
	}

	if (changed || now - e->written >= REGISTRY_SEEN_WRITE_S) {
		if (registry_write_node(r, n) == -1)
			return (-1);
		e->written = now;
	}
	if (comps && registry_write_comps(r, n) == -1)
		return (-1);
	if (isnew)
		log_info("registry: new node 0x%016" PRIx64 " hw %s on %s "
		    "(%s)", n->id, n->hw, transport, n->addr_text);
	return (isnew);
}

const struct registry_node *
registry_get(struct registry *r, uint64_t id)
{
	struct reg_entry	*e;

	if ((e = registry_find(r, id)) == NULL)
		return (NULL);
	return (&e->n);
}

int
registry_set_version(struct registry *r, uint64_t id, const char *component,
    const char *version)
{
	struct reg_entry	*e;
	struct registry_node	*n;
	size_t			 i;

	if ((e = registry_find(r, id)) == NULL || component == NULL ||
	    version == NULL || strlen(component) > UP_NAME_MAX ||
	    strlen(version) > UP_VER_MAX)
		return (-1);
	n = &e->n;
	for (i = 0; i < n->ncomp; i++)
		if (strcmp(n->comp[i].name, component) == 0)
			break;
	if (i == n->ncomp) {
		if (n->ncomp >= UP_MAX_COMPONENTS)
			return (-1);
		registry_strlcpy(n->comp[i].name, component,
		    sizeof(n->comp[i].name));
		n->ncomp++;
	}
	registry_strlcpy(n->comp[i].version, version,
	    sizeof(n->comp[i].version));

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
	if (e->n.state == state)
		return (0);
	e->n.state = state;
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
	struct registry_node	*n = e != NULL ? &e->n : NULL;
	sqlite3_stmt		*st = add ? r->st_tag_add : r->st_tag_del;
	size_t			 i;

	if (id == 0) {
		xasprintf(cause, "node id 0 is not a node");
		return (-1);
	}
	if (!registry_tag_ok(tag)) {
		xasprintf(cause, "bad tag \"%s\" (1 to %zu characters of "
		    "A-Z a-z 0-9 . _ : -)", tag, sizeof(n->tags[0]) - 1);
		return (-1);
	}
	if (n != NULL) {
		for (i = 0; i < n->ntags; i++)
			if (strcmp(n->tags[i], tag) == 0)
				break;
		if (add && i == n->ntags && n->ntags >= REGISTRY_MAX_TAGS) {
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
	if (n != NULL)
		registry_load_extra(r, n);
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
		e->n.parent = parent;
		e->n.level = level;
		e->n.role = role;
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
	struct reg_entry	*e, *next;

	/* The callback may not change the registry; be safe anyway. */
	for (e = TAILQ_FIRST(&r->list); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		fn(arg, &e->n);
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
