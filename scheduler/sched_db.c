/*
 * sched_db.c: campaign state in SQLite (tables sched_*, schema_version
 * row "scheduler"), so a kill -9 at any moment resumes every campaign
 * where it was (docs/campaigns.md, "What is persisted").
 *
 * The daemon keeps one write transaction open and commits it on a timer
 * (and at once after a per-node result), so nothing here BEGINs or
 * COMMITs: a save is one SAVEPOINT, all of its rows or none.  Rows are
 * plain: one per campaign, stage, package, member, topology entry and
 * item; structured facts are small JSON texts.  The dependency graph is
 * not stored: it is derived, and rebuilt on load from the same inputs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

static const char *const sched_steps[] = {
	/* 1 */
	"CREATE TABLE sched_campaigns ("
	"  id TEXT PRIMARY KEY,"
	"  deployment TEXT NOT NULL,"
	"  policy TEXT NOT NULL,"		/* the policy JSON as given */
	"  target TEXT NOT NULL,"		/* deployment {hw, tags} */
	"  state TEXT NOT NULL,"
	"  paused_from TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  stage INTEGER NOT NULL,"
	"  nstages INTEGER NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  started INTEGER NOT NULL,"
	"  finished INTEGER NOT NULL);"
	"CREATE TABLE sched_stages ("
	"  campaign TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  started INTEGER NOT NULL,"
	"  met_at INTEGER NOT NULL,"
	"  finished INTEGER NOT NULL,"
	"  overridden INTEGER NOT NULL,"
	"  PRIMARY KEY (campaign, idx));"
	"CREATE TABLE sched_packages ("
	"  campaign TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  pkg TEXT NOT NULL,"			/* JSON */
	"  PRIMARY KEY (campaign, idx));"
	"CREATE TABLE sched_members ("
	"  campaign TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  node INTEGER NOT NULL,"
	"  stage INTEGER NOT NULL,"
	"  facts TEXT NOT NULL,"		/* JSON */
	"  PRIMARY KEY (campaign, idx));"
	"CREATE TABLE sched_topology ("
	"  campaign TEXT NOT NULL,"
	"  node INTEGER NOT NULL,"
	"  parent INTEGER NOT NULL,"
	"  role INTEGER NOT NULL,"
	"  PRIMARY KEY (campaign, node));"
	"CREATE TABLE sched_items ("
	"  campaign TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  node INTEGER NOT NULL,"
	"  member INTEGER NOT NULL,"
	"  component TEXT NOT NULL,"
	"  from_version TEXT NOT NULL,"
	"  to_version TEXT NOT NULL,"
	"  steps TEXT NOT NULL,"		/* JSON array of package ids */
	"  step INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  atomic INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  result INTEGER NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  wait TEXT NOT NULL,"
	"  tries INTEGER NOT NULL,"
	"  next_try INTEGER NOT NULL,"
	"  deadline INTEGER NOT NULL,"
	"  started INTEGER NOT NULL,"
	"  finished INTEGER NOT NULL,"
	"  bytes_sent INTEGER NOT NULL,"
	"  PRIMARY KEY (campaign, idx));",
	/*
	 * 2 (issue 7): precise attempt times, the delta fallback, and what
	 * went upstream (provisional or final), so an item's final state
	 * is reported exactly once across restarts.
	 */
	"ALTER TABLE sched_items ADD COLUMN started_ms INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE sched_items ADD COLUMN finished_ms INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE sched_items ADD COLUMN fell_back INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE sched_items ADD COLUMN provisional INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE sched_items ADD COLUMN reported INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE sched_items ADD COLUMN rep_mark INTEGER NOT NULL "
	"  DEFAULT 0;"
	/* What was final before went upstream then (or never will). */
	"UPDATE sched_items SET reported = 2 WHERE state IN ('succeeded', "
	"  'downloaded', 'failed', 'skipped', 'cancelled', 'expired');"
};

enum {
	ST_CAMP_PUT, ST_STAGE_PUT, ST_PKG_PUT, ST_MEMBER_PUT, ST_TOPO_DEL,
	ST_TOPO_PUT, ST_ITEM_PUT, ST_CAMP_GET, ST_STAGE_GET, ST_PKG_GET,
	ST_MEMBER_GET, ST_TOPO_GET, ST_ITEM_GET, ST_ACTIVE, ST_MAX
};

static const char *const sched_sql[ST_MAX] = {
	"INSERT OR REPLACE INTO sched_campaigns (id, deployment, policy, "
	"target, state, paused_from, reason, stage, nstages, created, "
	"started, finished) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
	"?11, ?12)",
	"INSERT OR REPLACE INTO sched_stages (campaign, idx, state, started, "
	"met_at, finished, overridden) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	"INSERT OR REPLACE INTO sched_packages (campaign, idx, pkg) "
	"VALUES (?1, ?2, ?3)",
	"INSERT OR REPLACE INTO sched_members (campaign, idx, node, stage, "
	"facts) VALUES (?1, ?2, ?3, ?4, ?5)",
	"DELETE FROM sched_topology WHERE campaign = ?1",
	"INSERT INTO sched_topology (campaign, node, parent, role) "
	"VALUES (?1, ?2, ?3, ?4)",
	"INSERT OR REPLACE INTO sched_items (campaign, idx, node, member, "
	"component, from_version, to_version, steps, step, bytes, atomic, "
	"state, result, reason, wait, tries, next_try, deadline, started, "
	"finished, bytes_sent, started_ms, finished_ms, fell_back, "
	"provisional, reported, rep_mark) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
	"?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
	"?21, ?22, ?23, ?24, ?25, ?26, ?27)",
	"SELECT deployment, policy, target, state, paused_from, reason, "
	"stage, nstages, created, started, finished FROM sched_campaigns "
	"WHERE id = ?1",
	"SELECT idx, state, started, met_at, finished, overridden FROM "
	"sched_stages WHERE campaign = ?1 ORDER BY idx",
	"SELECT pkg FROM sched_packages WHERE campaign = ?1 ORDER BY idx",
	"SELECT node, stage, facts FROM sched_members WHERE campaign = ?1 "
	"ORDER BY idx",
	"SELECT node, parent, role FROM sched_topology WHERE campaign = ?1 "
	"ORDER BY node",
	"SELECT node, member, component, from_version, to_version, steps, "
	"step, bytes, atomic, state, result, reason, wait, tries, next_try, "
	"deadline, started, finished, bytes_sent, started_ms, finished_ms, "
	"fell_back, provisional, reported, rep_mark FROM sched_items WHERE "
	"campaign = ?1 ORDER BY idx",
	"SELECT id FROM sched_campaigns WHERE state NOT IN ('done', "
	"'cancelled') ORDER BY created, id",
};

struct sched_db {
	sqlite3		*db;
	sqlite3_stmt	*st[ST_MAX];
};

static int
db_exec(sqlite3 *db, const char *sql, char **cause)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		sched__fail(cause, "scheduler: %s", err != NULL ? err :
		    sqlite3_errmsg(db));
		sqlite3_free(err);
		return (-1);
	}
	return (0);
}

static int
db_migrate(sqlite3 *db, char **cause)
{
	sqlite3_stmt	*st;
	int		 have = 0, n, rc;
	char		 sql[160];

	if (db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
	    "component TEXT PRIMARY KEY, version INTEGER)", cause) == -1)
		return (-1);
	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version "
	    "WHERE component = 'scheduler'", -1, &st, NULL) != SQLITE_OK)
		return (sched__fail(cause, "scheduler: %s",
		    sqlite3_errmsg(db)));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		have = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return (sched__fail(cause, "scheduler: %s",
		    sqlite3_errmsg(db)));
	n = (int)(sizeof(sched_steps) / sizeof(sched_steps[0]));
	if (have > n)
		return (sched__fail(cause, "scheduler: database schema %d is "
		    "newer than this program (%d)", have, n));
	if (have == n)
		return (0);
	if (db_exec(db, "SAVEPOINT sched_migrate", cause) == -1)
		return (-1);
	for (; have < n; have++)
		if (db_exec(db, sched_steps[have], cause) == -1)
			goto fail;
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO schema_version "
	    "(component, version) VALUES ('scheduler', %d)", n);
	if (db_exec(db, sql, cause) == -1)
		goto fail;
	return (db_exec(db, "RELEASE sched_migrate", cause));
fail:
	sqlite3_exec(db, "ROLLBACK TO sched_migrate; RELEASE sched_migrate",
	    NULL, NULL, NULL);
	return (-1);
}

struct sched_db *
sched_db_open(sqlite3 *db, char **cause)
{
	struct sched_db	*sd;
	int		 i;

	if (db_migrate(db, cause) == -1)
		return (NULL);
	if ((sd = calloc(1, sizeof(*sd))) == NULL) {
		sched__fail(cause, "out of memory");
		return (NULL);
	}
	sd->db = db;
	for (i = 0; i < ST_MAX; i++)
		if (sqlite3_prepare_v3(db, sched_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &sd->st[i], NULL) != SQLITE_OK) {
			sched__fail(cause, "scheduler: %s",
			    sqlite3_errmsg(db));
			sched_db_free(sd);
			return (NULL);
		}
	return (sd);
}

void
sched_db_free(struct sched_db *sd)
{
	int	 i;

	if (sd == NULL)
		return;
	for (i = 0; i < ST_MAX; i++)
		sqlite3_finalize(sd->st[i]);
	free(sd);
}

/* ------------------------------------------------------------------ */
/* JSON of packages and node facts                                      */

static void
hex(const uint8_t *b, size_t n, char *out)
{
	static const char	 d[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
unhex(const char *s, uint8_t *b, size_t n)
{
	size_t		 i;
	unsigned int	 v;

	if (s == NULL || strlen(s) != 2 * n)
		return (-1);
	for (i = 0; i < n; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return (-1);
		b[i] = (uint8_t)v;
	}
	return (0);
}

static char *
pkg_json(const struct cache_pkg *p)
{
	json_t	*o, *a;
	char	 h[129], *s;
	int	 i;

	o = json_object();
	json_object_set_new(o, "id", json_string(p->id));
	json_object_set_new(o, "component", json_string(p->component));
	json_object_set_new(o, "version", json_string(p->version));
	a = json_array();
	for (i = 0; i < p->nhw && i < CACHE_HW_MAX; i++)
		json_array_append_new(a, json_string(p->hw[i]));
	json_object_set_new(o, "hw", a);
	json_object_set_new(o, "kind", json_integer(p->kind));
	json_object_set_new(o, "delta_format", json_integer(p->delta_format));
	json_object_set_new(o, "base_version", json_string(p->base_version));
	json_object_set_new(o, "size", json_integer((json_int_t)p->size));
	hex(p->sha256, CACHE_SHA_LEN, h);
	json_object_set_new(o, "sha256", json_string(h));
	json_object_set_new(o, "image_size",
	    json_integer((json_int_t)p->image_size));
	hex(p->image_sha256, CACHE_SHA_LEN, h);
	json_object_set_new(o, "image_sha256", json_string(h));
	json_object_set_new(o, "url", json_string(p->url));
	hex(p->sig, p->sig_len <= 64 ? p->sig_len : 64, h);
	json_object_set_new(o, "sig", json_string(h));
	a = json_array();
	for (i = 0; i < p->ndeps && i < 4; i++)
		json_array_append_new(a, json_pack("[ss]", p->dep_component[i],
		    p->dep_min_version[i]));
	json_object_set_new(o, "deps", a);
	json_object_set_new(o, "serial", json_integer(p->manifest_serial));
	json_object_set_new(o, "security_version",
	    json_integer((json_int_t)p->security_version));
	json_object_set_new(o, "allow_downgrade",
	    json_boolean(p->allow_downgrade));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return (s);
}

static int
get_str(json_t *o, const char *k, char *dst, size_t len)
{
	json_t	*v = json_object_get(o, k);

	if (!json_is_string(v))
		return (-1);
	return (sched__copy(dst, len, json_string_value(v)));
}

static int
pkg_from_json(const char *s, struct cache_pkg *p)
{
	json_t	*o, *a, *e;
	size_t	 i;
	int	 rc = -1;

	memset(p, 0, sizeof(*p));
	if ((o = json_loads(s, 0, NULL)) == NULL)
		return (-1);
	if (get_str(o, "id", p->id, sizeof(p->id)) == -1 ||
	    get_str(o, "component", p->component, sizeof(p->component)) ==
	    -1 || get_str(o, "version", p->version, sizeof(p->version)) ==
	    -1 || get_str(o, "base_version", p->base_version,
	    sizeof(p->base_version)) == -1 ||
	    get_str(o, "url", p->url, sizeof(p->url)) == -1)
		goto out;
	a = json_object_get(o, "hw");
	json_array_foreach(a, i, e) {
		if (i >= CACHE_HW_MAX || !json_is_string(e) ||
		    sched__copy(p->hw[i], sizeof(p->hw[i]),
		    json_string_value(e)) == -1)
			goto out;
		p->nhw = (int)i + 1;
	}
	p->kind = (int)json_integer_value(json_object_get(o, "kind"));
	p->delta_format = (int)json_integer_value(json_object_get(o,
	    "delta_format"));
	p->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
	p->image_size = (uint64_t)json_integer_value(json_object_get(o,
	    "image_size"));
	p->manifest_serial = json_integer_value(json_object_get(o, "serial"));
	/* Absent in rows of before: 0 and false (anti-rollback). */
	p->security_version = (uint32_t)json_integer_value(json_object_get(o,
	    "security_version"));
	p->allow_downgrade = json_is_true(json_object_get(o,
	    "allow_downgrade"));
	if (unhex(json_string_value(json_object_get(o, "sha256")), p->sha256,
	    CACHE_SHA_LEN) == -1 || unhex(json_string_value(
	    json_object_get(o, "image_sha256")), p->image_sha256,
	    CACHE_SHA_LEN) == -1)
		goto out;
	e = json_object_get(o, "sig");
	if (json_is_string(e) && strlen(json_string_value(e)) <= 128 &&
	    unhex(json_string_value(e), p->sig,
	    strlen(json_string_value(e)) / 2) == 0)
		p->sig_len = strlen(json_string_value(e)) / 2;
	a = json_object_get(o, "deps");
	json_array_foreach(a, i, e) {
		if (i >= 4 || !json_is_string(json_array_get(e, 0)) ||
		    !json_is_string(json_array_get(e, 1)) ||
		    sched__copy(p->dep_component[i],
		    sizeof(p->dep_component[i]),
		    json_string_value(json_array_get(e, 0))) == -1 ||
		    sched__copy(p->dep_min_version[i],
		    sizeof(p->dep_min_version[i]),
		    json_string_value(json_array_get(e, 1))) == -1)
			goto out;
		p->ndeps = (int)i + 1;
	}
	rc = 0;
out:
	json_decref(o);
	return (rc);
}

static char *
facts_json(const struct sched_node *n)
{
	json_t	*o, *a;
	char	*s;
	size_t	 i;

	o = json_object();
	json_object_set_new(o, "hw", json_string(n->hw));
	json_object_set_new(o, "transport", json_string(n->transport));
	json_object_set_new(o, "broadcast", json_boolean(n->broadcast));
	a = json_array();
	for (i = 0; i < n->ntags; i++)
		json_array_append_new(a, json_string(n->tags[i]));
	json_object_set_new(o, "tags", a);
	a = json_array();
	for (i = 0; i < n->ncomp; i++)
		json_array_append_new(a, json_pack("[ss]", n->comp[i].name,
		    n->comp[i].version));
	json_object_set_new(o, "comp", a);
	json_object_set_new(o, "battery", json_integer(n->battery));
	json_object_set_new(o, "rssi", json_integer(n->rssi_dbm));
	json_object_set_new(o, "snr", json_integer(n->snr_db));
	json_object_set_new(o, "reported", json_integer(n->reported));
	json_object_set_new(o, "parent", json_integer((json_int_t)n->parent));
	json_object_set_new(o, "level", json_integer(n->level));
	json_object_set_new(o, "role", json_integer(n->role));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return (s);
}

static int
facts_from_json(const char *s, uint64_t id, struct sched_node *n)
{
	json_t	*o, *a, *e;
	size_t	 i;
	int	 rc = -1;

	sched_node_init(n, id);
	if ((o = json_loads(s, 0, NULL)) == NULL)
		return (-1);
	if (get_str(o, "hw", n->hw, sizeof(n->hw)) == -1 ||
	    get_str(o, "transport", n->transport, sizeof(n->transport)) == -1)
		goto out;
	n->broadcast = json_is_true(json_object_get(o, "broadcast"));
	a = json_object_get(o, "tags");
	json_array_foreach(a, i, e) {
		if (i >= SCHED_MAX_TAGS || !json_is_string(e) ||
		    sched__copy(n->tags[i], sizeof(n->tags[i]),
		    json_string_value(e)) == -1)
			goto out;
		n->ntags = i + 1;
	}
	a = json_object_get(o, "comp");
	json_array_foreach(a, i, e) {
		if (i >= UP_MAX_COMPONENTS ||
		    !json_is_string(json_array_get(e, 0)) ||
		    !json_is_string(json_array_get(e, 1)) ||
		    sched__copy(n->comp[i].name, sizeof(n->comp[i].name),
		    json_string_value(json_array_get(e, 0))) == -1 ||
		    sched__copy(n->comp[i].version,
		    sizeof(n->comp[i].version),
		    json_string_value(json_array_get(e, 1))) == -1)
			goto out;
		n->ncomp = i + 1;
	}
	n->battery = (uint8_t)json_integer_value(json_object_get(o,
	    "battery"));
	n->rssi_dbm = (int16_t)json_integer_value(json_object_get(o, "rssi"));
	n->snr_db = (int8_t)json_integer_value(json_object_get(o, "snr"));
	n->reported = json_integer_value(json_object_get(o, "reported"));
	n->parent = (uint64_t)json_integer_value(json_object_get(o,
	    "parent"));
	n->level = (uint8_t)json_integer_value(json_object_get(o, "level"));
	n->role = (enum sched_role)json_integer_value(json_object_get(o,
	    "role"));
	rc = 0;
out:
	json_decref(o);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* Save                                                                 */

static int
run(struct sched_db *sd, sqlite3_stmt *st, char **cause)
{
	int	 rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return (sched__fail(cause, "scheduler: %s",
		    sqlite3_errmsg(sd->db)));
	return (0);
}

static int
save_item(struct sched_db *sd, const struct sched_campaign *c, size_t i,
    char **cause)
{
	const struct sched_item	*it = &c->items[i];
	sqlite3_stmt		*st = sd->st[ST_ITEM_PUT];
	json_t			*a;
	char			*steps;
	int			 s, rc;

	a = json_array();
	for (s = 0; s < it->nsteps; s++)
		json_array_append_new(a, json_string(it->steps[s]));
	steps = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (steps == NULL)
		return (sched__fail(cause, "out of memory"));
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)it->node_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)it->member);
	sqlite3_bind_text(st, 5, it->component, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, it->from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, it->to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, steps, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, it->step);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)it->bytes);
	sqlite3_bind_int(st, 11, it->atomic);
	sqlite3_bind_text(st, 12, sched_istate_str(it->state), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 13, it->result);
	sqlite3_bind_text(st, 14, it->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, it->wait, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 16, it->tries);
	sqlite3_bind_int64(st, 17, it->next_try);
	sqlite3_bind_int64(st, 18, it->deadline);
	sqlite3_bind_int64(st, 19, it->started);
	sqlite3_bind_int64(st, 20, it->finished);
	sqlite3_bind_int64(st, 21, (sqlite3_int64)it->bytes_sent);
	sqlite3_bind_int64(st, 22, it->started_ms);
	sqlite3_bind_int64(st, 23, it->finished_ms);
	sqlite3_bind_int(st, 24, it->fell_back);
	sqlite3_bind_int(st, 25, it->provisional);
	sqlite3_bind_int(st, 26, it->reported);
	sqlite3_bind_int64(st, 27, it->rep_mark);
	rc = run(sd, st, cause);
	free(steps);
	return (rc);
}

static int
save_rows(struct sched_db *sd, struct sched_campaign *c, char **cause)
{
	sqlite3_stmt	*st;
	char		*s;
	size_t		 i;
	int		 all = !c->saved, rc;

	if (all || c->dirty) {
		st = sd->st[ST_CAMP_PUT];
		sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c->policy.deployment, -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 3, c->policy.json != NULL ?
		    c->policy.json : "{}", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, c->policy.target_json != NULL ?
		    c->policy.target_json : "{}", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, sched_cstate_str(c->state), -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 6, sched_cstate_str(c->paused_from), -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 7, c->reason, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 8, c->stage);
		sqlite3_bind_int64(st, 9, (sqlite3_int64)c->nstages);
		sqlite3_bind_int64(st, 10, c->created);
		sqlite3_bind_int64(st, 11, c->started);
		sqlite3_bind_int64(st, 12, c->finished);
		if (run(sd, st, cause) == -1)
			return (-1);
		st = sd->st[ST_STAGE_PUT];
		for (i = 0; i < c->nstages; i++) {
			sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
			sqlite3_bind_text(st, 3,
			    sched_sstate_str(c->srt[i].state), -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, c->srt[i].started);
			sqlite3_bind_int64(st, 5, c->srt[i].met_at);
			sqlite3_bind_int64(st, 6, c->srt[i].finished);
			sqlite3_bind_int(st, 7, c->srt[i].overridden);
			if (run(sd, st, cause) == -1)
				return (-1);
		}
	}
	if (all) {
		st = sd->st[ST_PKG_PUT];
		for (i = 0; i < c->npkgs; i++) {
			if ((s = pkg_json(&c->pkgs[i])) == NULL)
				return (sched__fail(cause, "out of memory"));
			sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
			sqlite3_bind_text(st, 3, s, -1, SQLITE_STATIC);
			rc = run(sd, st, cause);
			free(s);
			if (rc == -1)
				return (-1);
		}
	}
	if (all || c->members_dirty) {
		st = sd->st[ST_MEMBER_PUT];
		for (i = 0; i < c->nmembers; i++) {
			if (!all && !c->members[i].dirty)
				continue;
			if ((s = facts_json(&c->members[i].node)) == NULL)
				return (sched__fail(cause, "out of memory"));
			sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
			sqlite3_bind_int64(st, 3,
			    (sqlite3_int64)c->members[i].node.node_id);
			sqlite3_bind_int(st, 4, c->members[i].stage);
			sqlite3_bind_text(st, 5, s, -1, SQLITE_STATIC);
			rc = run(sd, st, cause);
			free(s);
			if (rc == -1)
				return (-1);
		}
	}
	if (all || c->topo_dirty) {
		sqlite3_bind_text(sd->st[ST_TOPO_DEL], 1, c->id, -1,
		    SQLITE_STATIC);
		if (run(sd, sd->st[ST_TOPO_DEL], cause) == -1)
			return (-1);
		st = sd->st[ST_TOPO_PUT];
		for (i = 0; i < c->ntopo; i++) {
			sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2,
			    (sqlite3_int64)c->topo[i].node_id);
			sqlite3_bind_int64(st, 3,
			    (sqlite3_int64)c->topo[i].parent);
			sqlite3_bind_int(st, 4, c->topo[i].role);
			if (run(sd, st, cause) == -1)
				return (-1);
		}
	}
	for (i = 0; i < c->nitems; i++)
		if ((all || c->items[i].dirty) &&
		    save_item(sd, c, i, cause) == -1)
			return (-1);
	return (0);
}

int
sched_db_save(struct sched_db *sd, struct sched_campaign *c, char **cause)
{
	size_t	 i;

	if (db_exec(sd->db, "SAVEPOINT sched_save", cause) == -1)
		return (-1);
	if (save_rows(sd, c, cause) == -1) {
		sqlite3_exec(sd->db, "ROLLBACK TO sched_save; "
		    "RELEASE sched_save", NULL, NULL, NULL);
		return (-1);
	}
	if (db_exec(sd->db, "RELEASE sched_save", cause) == -1)
		return (-1);
	/* Written: only now are the flags cleared. */
	c->saved = 1;
	c->dirty = c->members_dirty = c->topo_dirty = 0;
	for (i = 0; i < c->nmembers; i++)
		c->members[i].dirty = 0;
	for (i = 0; i < c->nitems; i++)
		c->items[i].dirty = 0;
	return (0);
}

/* ------------------------------------------------------------------ */
/* Load                                                                 */

static int
enum_parse(const char *s, const char *(*fn)(int), int max)
{
	int	 i;

	for (i = 0; i < max; i++)
		if (strcmp(s, fn(i)) == 0)
			return (i);
	return (-1);
}

static const char *
cstr(int i)
{
	return (sched_cstate_str((enum sched_cstate)i));
}

static const char *
sstr(int i)
{
	return (sched_sstate_str((enum sched_sstate)i));
}

static const char *
istr(int i)
{
	return (sched_istate_str((enum sched_istate)i));
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char	*s = sqlite3_column_text(st, i);

	return (s != NULL ? (const char *)s : "");
}

static int
load_target(const char *json, char hw[CACHE_HW_MAX][CACHE_NAME_MAX + 1],
    size_t *nhw, char tags[2 * SCHED_MAX_TAGS][CACHE_NAME_MAX + 1],
    size_t *ntags)
{
	json_t	*o, *e;
	size_t	 i;
	int	 rc = -1;

	*nhw = *ntags = 0;
	if ((o = json_loads(json, 0, NULL)) == NULL)
		return (-1);
	json_array_foreach(json_object_get(o, "hw"), i, e) {
		if (i >= CACHE_HW_MAX || !json_is_string(e) ||
		    sched__copy(hw[i], CACHE_NAME_MAX + 1,
		    json_string_value(e)) == -1)
			goto out;
		*nhw = i + 1;
	}
	json_array_foreach(json_object_get(o, "tags"), i, e) {
		if (i >= 2 * SCHED_MAX_TAGS || !json_is_string(e) ||
		    sched__copy(tags[i], CACHE_NAME_MAX + 1,
		    json_string_value(e)) == -1)
			goto out;
		*ntags = i + 1;
	}
	rc = 0;
out:
	json_decref(o);
	return (rc);
}

static int
load_rows(struct sched_db *sd, struct sched_campaign *c, char **cause)
{
	sqlite3_stmt		*st;
	struct sched_node	 n;
	struct sched_item	*it;
	json_t			*a, *e;
	size_t			 i;
	int			 rc, v;

	st = sd->st[ST_STAGE_GET];
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		i = (size_t)sqlite3_column_int64(st, 0);
		if (i >= c->nstages ||
		    (v = enum_parse(col(st, 1), sstr, 5)) < 0)
			goto bad;
		c->srt[i].state = (enum sched_sstate)v;
		c->srt[i].started = sqlite3_column_int64(st, 2);
		c->srt[i].met_at = sqlite3_column_int64(st, 3);
		c->srt[i].finished = sqlite3_column_int64(st, 4);
		c->srt[i].overridden = sqlite3_column_int(st, 5);
	}
	sqlite3_reset(st);
	st = sd->st[ST_PKG_GET];
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (c->npkgs == SCHED_MAX_PKGS ||
		    pkg_from_json(col(st, 0), &c->pkgs[c->npkgs]) == -1)
			goto bad;
		c->npkgs++;
	}
	sqlite3_reset(st);
	st = sd->st[ST_MEMBER_GET];
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (facts_from_json(col(st, 2),
		    (uint64_t)sqlite3_column_int64(st, 0), &n) == -1 ||
		    sched__member_add(c, &n, sqlite3_column_int(st, 1)) == -1)
			goto bad;
		if (c->members[c->nmembers - 1].stage < 0 ||
		    c->members[c->nmembers - 1].stage >= (int)c->nstages)
			goto bad;
	}
	sqlite3_reset(st);
	st = sd->st[ST_TOPO_GET];
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (sched__topo_set(c, (uint64_t)sqlite3_column_int64(st, 0),
		    (uint64_t)sqlite3_column_int64(st, 1),
		    (enum sched_role)sqlite3_column_int(st, 2)) == -1)
			goto bad;
	sqlite3_reset(st);
	st = sd->st[ST_ITEM_GET];
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((it = sched__item_add(c)) == NULL)
			goto bad;
		it->node_id = (uint64_t)sqlite3_column_int64(st, 0);
		it->member = (size_t)sqlite3_column_int64(st, 1);
		if (it->member >= c->nmembers ||
		    c->members[it->member].node.node_id != it->node_id ||
		    sched__copy(it->component, sizeof(it->component),
		    col(st, 2)) == -1 ||
		    sched__copy(it->from, sizeof(it->from), col(st, 3)) == -1 ||
		    sched__copy(it->to, sizeof(it->to), col(st, 4)) == -1)
			goto bad;
		if ((a = json_loads(col(st, 5), 0, NULL)) == NULL)
			goto bad;
		json_array_foreach(a, i, e) {
			if (i >= SCHED_MAX_STEPS || !json_is_string(e) ||
			    sched__copy(it->steps[i], sizeof(it->steps[i]),
			    json_string_value(e)) == -1) {
				json_decref(a);
				goto bad;
			}
			it->nsteps = (int)i + 1;
		}
		json_decref(a);
		it->step = sqlite3_column_int(st, 6);
		it->bytes = (uint64_t)sqlite3_column_int64(st, 7);
		it->atomic = sqlite3_column_int(st, 8);
		if ((v = enum_parse(col(st, 9), istr, 11)) < 0 ||
		    it->atomic >= (int)c->policy.natomic || it->step < 0 ||
		    it->step > it->nsteps)
			goto bad;
		it->state = (enum sched_istate)v;
		it->result = sqlite3_column_int(st, 10);
		sched__copy(it->reason, sizeof(it->reason), col(st, 11));
		sched__copy(it->wait, sizeof(it->wait), col(st, 12));
		it->tries = (uint32_t)sqlite3_column_int64(st, 13);
		it->next_try = sqlite3_column_int64(st, 14);
		it->deadline = sqlite3_column_int64(st, 15);
		it->started = sqlite3_column_int64(st, 16);
		it->finished = sqlite3_column_int64(st, 17);
		it->bytes_sent = (uint64_t)sqlite3_column_int64(st, 18);
		it->started_ms = sqlite3_column_int64(st, 19);
		it->finished_ms = sqlite3_column_int64(st, 20);
		it->fell_back = sqlite3_column_int(st, 21);
		it->provisional = sqlite3_column_int(st, 22);
		it->reported = sqlite3_column_int(st, 23);
		it->rep_mark = (uint32_t)sqlite3_column_int64(st, 24);
		it->dirty = 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (sched__fail(cause, "scheduler: %s",
		    sqlite3_errmsg(sd->db)));
	return (0);
bad:
	sqlite3_reset(st);
	return (sched__fail(cause, "campaign '%s': unreadable row in the "
	    "scheduler's tables", c->id));
}

struct sched_campaign *
sched_db_load(struct sched_db *sd, const char *id, char **cause)
{
	sqlite3_stmt		*st = sd->st[ST_CAMP_GET];
	struct sched_campaign	*c;
	char			 hw[CACHE_HW_MAX][CACHE_NAME_MAX + 1];
	char			 tags[2 * SCHED_MAX_TAGS][CACHE_NAME_MAX + 1];
	char			 dep[CACHE_ID_MAX + 1], *sub = NULL;
	size_t			 nhw, ntags, i;
	int			 rc, v, w;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		sched__fail(cause, "out of memory");
		return (NULL);
	}
	c->final_after_s = SCHED_FINAL_AFTER_S;
	if (sched__copy(c->id, sizeof(c->id), id) == -1)
		goto bad;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sched__fail(cause, rc == SQLITE_DONE ? "campaign '%s': "
		    "unknown" : "campaign '%s': database error", id);
		free(c);
		return (NULL);
	}
	if (sched__copy(dep, sizeof(dep), col(st, 0)) == -1 ||
	    load_target(col(st, 2), hw, &nhw, tags, &ntags) == -1 ||
	    sched_policy_parse(dep, (const char (*)[CACHE_NAME_MAX + 1])hw,
	    nhw, (const char (*)[CACHE_NAME_MAX + 1])tags, ntags, col(st, 1),
	    &c->policy, &sub) == -1) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sched__fail(cause, "campaign '%s': stored policy: %s", id,
		    sub != NULL ? sub : "unreadable");
		free(sub);
		free(c);
		return (NULL);
	}
	v = enum_parse(col(st, 3), cstr, 6);
	w = enum_parse(col(st, 4), cstr, 6);
	sched__copy(c->reason, sizeof(c->reason), col(st, 5));
	c->stage = sqlite3_column_int(st, 6);
	c->nstages = (size_t)sqlite3_column_int64(st, 7);
	c->created = sqlite3_column_int64(st, 8);
	c->started = sqlite3_column_int64(st, 9);
	c->finished = sqlite3_column_int64(st, 10);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (v < 0 || w < 0 || c->nstages < c->policy.nstages ||
	    c->nstages > c->policy.nstages + 1 || c->nstages == 0 ||
	    c->stage < 0 || c->stage >= (int)c->nstages)
		goto bad;
	c->state = (enum sched_cstate)v;
	c->paused_from = (enum sched_cstate)w;
	memcpy(c->stages, c->policy.stages, c->policy.nstages *
	    sizeof(c->stages[0]));
	i = c->nstages;
	c->nstages = c->policy.nstages;
	if (i > c->nstages)
		sched__stage_add_rest(c);
	if (load_rows(sd, c, cause) == -1)
		goto fail;
	if (sched__build_edges(c, &sub) == -1) {
		sched__fail(cause, "campaign '%s': %s", id, sub);
		free(sub);
		goto fail;
	}
	c->saved = 1;
	c->dirty = c->members_dirty = c->topo_dirty = 0;
	for (i = 0; i < c->nmembers; i++)
		c->members[i].dirty = 0;
	return (c);
bad:
	sched__fail(cause, "campaign '%s': unreadable row in the scheduler's "
	    "tables", id);
fail:
	sched_campaign_free(c);
	return (NULL);
}

int
sched_db_foreach_active(struct sched_db *sd,
    void (*fn)(void *, const char *), void *arg)
{
	sqlite3_stmt	*st = sd->st[ST_ACTIVE];
	char		**ids = NULL, **t;
	size_t		 n = 0, i;
	int		 rc;

	/* Collected first: fn may load, which uses other statements. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((t = reallocarray(ids, n + 1, sizeof(*ids))) == NULL ||
		    (t[n] = strdup(col(st, 0))) == NULL) {
			if (t != NULL)
				ids = t;
			rc = SQLITE_NOMEM;
			break;
		}
		ids = t;
		n++;
	}
	sqlite3_reset(st);
	for (i = 0; i < n; i++) {
		if (rc == SQLITE_DONE)
			fn(arg, ids[i]);
		free(ids[i]);
	}
	free(ids);
	return (rc == SQLITE_DONE ? 0 : -1);
}

int
sched_db_delete(struct sched_db *sd, const char *id, char **cause)
{
	static const char *const tabs[] = { "sched_items", "sched_members",
	    "sched_topology", "sched_packages", "sched_stages" };
	sqlite3_stmt	*st;
	char		 sql[96];
	size_t		 i;
	int		 rc;

	if (db_exec(sd->db, "SAVEPOINT sched_del", cause) == -1)
		return (-1);
	for (i = 0; i <= sizeof(tabs) / sizeof(tabs[0]); i++) {
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?1",
		    i < 5 ? tabs[i] : "sched_campaigns", i < 5 ? "campaign" :
		    "id");
		if (sqlite3_prepare_v2(sd->db, sql, -1, &st, NULL) !=
		    SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	return (db_exec(sd->db, "RELEASE sched_del", cause));
fail:
	sched__fail(cause, "scheduler: %s", sqlite3_errmsg(sd->db));
	sqlite3_exec(sd->db, "ROLLBACK TO sched_del; RELEASE sched_del", NULL,
	    NULL, NULL);
	return (-1);
}
