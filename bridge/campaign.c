/*
 * campaign.c: campaigns and their member nodes.
 *
 * A campaign is one package of one deployment (issue-2 policy): every
 * node of the registry that the deployment targets (hardware list, empty
 * = any) gets, for every component it runs, the package sched_choose()
 * picks; the nodes that get the same package form the campaign, and the
 * nodes of a campaign that sit on the same transport instance (broadcast
 * domain) share one UP session of the engine (fo_session.c, engine/).
 * Nodes that announce later and match join the campaign (dynamic
 * membership); a node written off with UP_R_CONN_LOST is taken again
 * when it next shows up, up to FO_MAX_TRIES participations.  What
 * happens to a member in its session comes from the engine's callbacks
 * (fanout.c): campaign.c never drives a session's phases itself.
 *
 * Lifecycle: waiting-package (pinned, fetched, then verified once with
 * cache_check in budgeted steps from a deferred event) -> running ->
 * done when every member has a final state (then unpinned); paused and
 * cancelled by the technician.
 *
 * Persistence (tables campaigns, campaign_sessions, campaign_nodes,
 * fanout_meta; migrations "fanout"): every change is written in the
 * daemon's batched transaction; a final per-node result is written, its
 * report queued in the uplink outbox and the transaction committed before
 * the RESULT_ACK goes out, so a result acknowledged to a node is never
 * lost (ARCHITECTURE.md, "State").  The package's offer fields are kept
 * with the campaign as JSON, so a campaign resumes after a restart even
 * if the next manifest no longer lists its package.
 */
#include <sys/queue.h>

#include <event2/event.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fanout_internal.h"

#define CAMPAIGN_CHECK_BUDGET	(256 * 1024)	/* bytes hashed per step */

static const char *const campaign_steps[] = {
	/* 1: campaigns, their sessions and their nodes. */
	"CREATE TABLE campaigns ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  deployment TEXT NOT NULL,"
	"  package TEXT NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  component TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  pkg TEXT NOT NULL,"			/* offer fields, JSON */
	"  target TEXT NOT NULL,"		/* deployment hw list, JSON */
	"  state TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  started INTEGER,"
	"  finished INTEGER,"
	"  UNIQUE (deployment, package));"
	"CREATE TABLE campaign_sessions ("
	"  campaign INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  transport TEXT NOT NULL,"
	"  session INTEGER NOT NULL UNIQUE,"
	"  block_size INTEGER NOT NULL,"
	"  nblocks INTEGER NOT NULL,"
	"  bytes_sent INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (campaign, transport));"
	"CREATE TABLE campaign_nodes ("
	"  campaign INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  node INTEGER NOT NULL,"
	"  transport TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  result INTEGER NOT NULL DEFAULT 0,"
	"  held INTEGER NOT NULL DEFAULT 0,"
	"  nblocks INTEGER NOT NULL DEFAULT 0,"
	"  bytes_sent INTEGER NOT NULL DEFAULT 0,"
	"  tries INTEGER NOT NULL DEFAULT 0,"
	"  started INTEGER,"
	"  finished INTEGER,"
	"  reported INTEGER NOT NULL DEFAULT 0,"
	"  from_version TEXT NOT NULL DEFAULT '',"
	"  addr BLOB,"
	"  PRIMARY KEY (campaign, node));"
	"CREATE INDEX campaign_nodes_unreported ON campaign_nodes (reported)"
	"  WHERE reported = 0;"
	"CREATE TABLE fanout_meta ("
	"  key TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL);",
	/*
	 * 2 (issue 4): the scheduler campaign (rollout.c) a campaign
	 * carries out, '' for the issue-2 policy; a member held at
	 * VERIFIED until the scheduler says ACTIVATE.
	 */
	"ALTER TABLE campaigns ADD COLUMN rollout TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE campaign_nodes ADD COLUMN hold INTEGER NOT NULL "
	"  DEFAULT 0;",
	/*
	 * 3 (issue 7): every item's final state goes upstream exactly once
	 * (docs/manifest.md, "Final and provisional records").  A final
	 * state whose truth may still change is `provisional'; `closed'
	 * says the item's final record went (only late_result records
	 * follow it).  Rows reported before were final unless written off
	 * (conn_lost) or declined busy / released within their tries.
	 */
	"ALTER TABLE campaign_nodes ADD COLUMN provisional INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE campaign_nodes ADD COLUMN closed INTEGER NOT NULL "
	"  DEFAULT 0;"
	"UPDATE campaign_nodes SET provisional = 1 WHERE state IN ('failed', "
	"  'declined', 'cancelled') AND (result = 4 OR (result IN (15, 19) "
	"  AND tries < 3));"
	"UPDATE campaign_nodes SET closed = 1 WHERE reported = 1 AND "
	"  provisional = 0 AND state IN ('updated', 'failed', 'declined', "
	"  'cancelled', 'skipped');"
	"CREATE INDEX campaign_nodes_open ON campaign_nodes (finished)"
	"  WHERE provisional = 1 AND closed = 0;",
	/*
	 * 4 (issue 8): a session's compact tag (docs/up-protocol.md §11.4),
	 * which it resumes with; the links' tag counters are kept in
	 * fanout_meta as 'ctag.NAME'.
	 */
	"ALTER TABLE campaign_sessions ADD COLUMN tag INTEGER NOT NULL "
	"  DEFAULT 0;"
};

static const char *const campaign_state_names[] = {
	"waiting-package", "running", "paused", "done", "cancelled"
};
static const char *const campaign_mstate_names[] = {
	"pending", "offered", "receiving", "downloaded", "verified",
	"activating", "updated", "failed", "declined", "cancelled", "skipped"
};

static void	 campaign_want_package(struct fo_campaign *);
static void	 campaign_place_soon(struct fanout *);
static void	 campaign_supersede(struct fo_member *, struct fo_campaign *);
static void	 campaign_wake(struct fo_campaign *, struct fo_member *);
static void	 campaign_run(struct fo_campaign *);
static struct fo_campaign *campaign_load_row(struct fanout *,
		    sqlite3_stmt *);

#define CAMPAIGN_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* Names <-> enum values, shared by both state tables. */
static const char *
campaign_name(const char *const *names, size_t n, unsigned int v)
{
	return (v < n ? names[v] : "?");
}

static int
campaign_name_parse(const char *const *names, size_t n, const char *s,
    unsigned int *out)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (unsigned int)i;
			return (0);
		}
	return (-1);
}

const char *
campaign__state_str(enum fo_cstate s)
{
	return (campaign_name(campaign_state_names,
	    CAMPAIGN_NELEM(campaign_state_names), s));
}

const char *
campaign__mstate_str(enum eng_mstate s)
{
	return (campaign_name(campaign_mstate_names,
	    CAMPAIGN_NELEM(campaign_mstate_names), s));
}

static int
campaign_state_parse(const char *s, enum fo_cstate *out)
{
	unsigned int	 v;

	if (campaign_name_parse(campaign_state_names,
	    CAMPAIGN_NELEM(campaign_state_names), s, &v) == -1)
		return (-1);
	*out = (enum fo_cstate)v;
	return (0);
}

static int
campaign_mstate_parse(const char *s, enum eng_mstate *out)
{
	unsigned int	 v;

	if (campaign_name_parse(campaign_mstate_names,
	    CAMPAIGN_NELEM(campaign_mstate_names), s, &v) == -1)
		return (-1);
	*out = (enum eng_mstate)v;
	return (0);
}

bool
campaign__active(const struct fo_campaign *c)
{
	return (c->state == FO_C_WAITING || c->state == FO_C_RUNNING ||
	    c->state == FO_C_PAUSED);
}

/* ------------------------------------------------------------------ */
/* SQL                                                                  */

static int
campaign_prepare(struct fanout *f, sqlite3_stmt **st, const char *sql,
    char **cause)
{
	if (sqlite3_prepare_v3(f->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
	    NULL) != SQLITE_OK) {
		xasprintf(cause, "fanout: %s", sqlite3_errmsg(f->db));
		return (-1);
	}
	return (0);
}

static int
campaign_step(struct fanout *f, sqlite3_stmt *st)
{
	int	 rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_warnx("fanout: %s", sqlite3_errmsg(f->db));
		return (-1);
	}
	return (0);
}

int
campaign__init(struct fanout *f, char **cause)
{
	if (db_migrate(f->db, "fanout", campaign_steps,
	    (int)(sizeof(campaign_steps) / sizeof(campaign_steps[0])),
	    cause) == -1)
		return (-1);
	if (campaign_prepare(f, &f->st_camp_ins, "INSERT INTO campaigns "
	    "(deployment, package, sha256, component, version, pkg, target, "
	    "state, created, rollout) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
	    "?9, ?10)",
	    cause) == -1 ||
	    campaign_prepare(f, &f->st_camp_upd, "UPDATE campaigns SET "
	    "state = ?2, started = ?3, finished = ?4 WHERE id = ?1",
	    cause) == -1 ||
	    campaign_prepare(f, &f->st_node_put, "INSERT OR REPLACE INTO "
	    "campaign_nodes (campaign, node, transport, state, result, held, "
	    "nblocks, bytes_sent, tries, started, finished, reported, "
	    "from_version, addr, hold, provisional, closed) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
	    "?17)", cause) == -1 ||
	    campaign_prepare(f, &f->st_sess_put, "INSERT OR REPLACE INTO "
	    "campaign_sessions (campaign, transport, session, block_size, "
	    "nblocks, bytes_sent, tag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	    cause) == -1 ||
	    campaign_prepare(f, &f->st_meta_get, "SELECT value FROM "
	    "fanout_meta WHERE key = ?1", cause) == -1 ||
	    campaign_prepare(f, &f->st_meta_put, "INSERT OR REPLACE INTO "
	    "fanout_meta (key, value) VALUES (?1, ?2)", cause) == -1 ||
	    campaign_prepare(f, &f->st_seq_get, "SELECT value FROM "
	    "fanout_meta WHERE key = 'report_seq'", cause) == -1 ||
	    campaign_prepare(f, &f->st_seq_put, "INSERT OR REPLACE INTO "
	    "fanout_meta (key, value) VALUES ('report_seq', ?1)",
	    cause) == -1)
		return (-1);
	return (0);
}

void
campaign__put(struct fo_campaign *c)
{
	sqlite3_stmt	*st = c->f->st_camp_upd;

	sqlite3_bind_int64(st, 1, c->rowid);
	sqlite3_bind_text(st, 2, campaign__state_str(c->state), -1,
	    SQLITE_STATIC);
	if (c->started != 0)
		sqlite3_bind_int64(st, 3, c->started);
	if (c->finished != 0)
		sqlite3_bind_int64(st, 4, c->finished);
	campaign_step(c->f, st);
}

void
campaign__put_member(struct fo_member *m)
{
	struct fo_campaign	*c = m->c;
	sqlite3_stmt		*st = c->f->st_node_put;
	struct eng_session_info	 si;
	uint64_t		 bytes = m->bytes_sent;

	memset(&si, 0, sizeof(si));
	if (m->s != NULL)
		session__info(m->s, &si);
	if (!ENG_M_FINAL(m->state) && m->s != NULL && m->started != 0 &&
	    si.bytes_sent >= m->bytes_base)
		bytes = m->bytes_sent + (si.bytes_sent - m->bytes_base);
	sqlite3_bind_int64(st, 1, c->rowid);
	sqlite3_bind_int64(st, 2, (int64_t)m->node);
	sqlite3_bind_text(st, 3, m->transport, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, campaign__mstate_str(m->state), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 5, m->result);
	sqlite3_bind_int64(st, 6, m->held);
	sqlite3_bind_int64(st, 7, si.nblocks);
	sqlite3_bind_int64(st, 8, (int64_t)bytes);
	sqlite3_bind_int(st, 9, (int)m->tries);
	if (m->started != 0)
		sqlite3_bind_int64(st, 10, m->started);
	if (m->finished != 0)
		sqlite3_bind_int64(st, 11, m->finished);
	sqlite3_bind_int(st, 12, m->reported ? 1 : 0);
	sqlite3_bind_text(st, 13, m->from, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 14, &m->addr, sizeof(m->addr), SQLITE_STATIC);
	sqlite3_bind_int(st, 15, m->hold ? 1 : 0);
	sqlite3_bind_int(st, 16, m->provisional ? 1 : 0);
	sqlite3_bind_int(st, 17, m->closed ? 1 : 0);
	campaign_step(c->f, st);
}

void
campaign__put_session(struct fo_session *s)
{
	sqlite3_stmt		*st = s->f->st_sess_put;
	struct eng_session_info	 si;

	session__info(s, &si);
	sqlite3_bind_int64(st, 1, s->c->rowid);
	sqlite3_bind_text(st, 2, s->transport, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, s->id);
	sqlite3_bind_int(st, 4, si.block_size);
	sqlite3_bind_int64(st, 5, si.nblocks);
	sqlite3_bind_int64(st, 6, (int64_t)si.bytes_sent);
	sqlite3_bind_int(st, 7, si.tag);
	campaign_step(s->f, st);
}

/*
 * A link's compact session tag counter (§11.4), kept so that a
 * restarted gateway goes on from it: -1 when none was kept.
 */
int
campaign__ctag_get(struct fanout *f, const char *link)
{
	sqlite3_stmt	*st = f->st_meta_get;
	char		 key[80];
	int		 v = -1;

	snprintf(key, sizeof(key), "ctag.%s", link);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (v);
}

void
campaign__ctag_put(struct fanout *f, const char *link, uint8_t next)
{
	sqlite3_stmt	*st = f->st_meta_put;
	char		 key[80];

	snprintf(key, sizeof(key), "ctag.%s", link);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, next);
	campaign_step(f, st);
}

/* ------------------------------------------------------------------ */
/* Package metadata as JSON (the campaigns.pkg column)                 */

static json_t *
campaign_pkg_json(const struct cache_pkg *p)
{
	char	 sha[CACHE_HEX_LEN + 1], isha[CACHE_HEX_LEN + 1];
	char	 sig[2 * sizeof(p->sig) + 1];
	json_t	*o, *hw, *deps;
	size_t	 i;
	int	 n;

	cache_hex(p->sha256, sha);
	cache_hex(p->image_sha256, isha);
	for (i = 0; i < p->sig_len && i < sizeof(p->sig); i++)
		snprintf(sig + 2 * i, 3, "%02x", p->sig[i]);
	sig[2 * i] = '\0';
	hw = json_array();
	for (n = 0; n < p->nhw && n < CACHE_HW_MAX; n++)
		json_array_append_new(hw, json_string(p->hw[n]));
	deps = json_array();
	for (n = 0; n < p->ndeps && n < 4; n++)
		json_array_append_new(deps, json_pack("{s:s, s:s}",
		    "component", p->dep_component[n],
		    "min_version", p->dep_min_version[n]));
	o = json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:s, s:I, s:s, s:I, "
	    "s:s, s:s, s:s, s:o, s:I, s:I, s:b}",
	    "id", p->id, "component", p->component, "version", p->version,
	    "hw", hw, "kind", p->kind, "delta_format", p->delta_format,
	    "base_version", p->base_version, "size", (json_int_t)p->size,
	    "sha256", sha, "image_size", (json_int_t)p->image_size,
	    "image_sha256", isha, "url", p->url, "sig", sig, "deps", deps,
	    "manifest_serial", (json_int_t)p->manifest_serial,
	    "security_version", (json_int_t)p->security_version,
	    "allow_downgrade", p->allow_downgrade != 0);
	return (o);
}

static int
campaign_str(json_t *o, const char *key, char *dst, size_t size)
{
	json_t		*v = json_object_get(o, key);
	const char	*s;

	if (!json_is_string(v) || strlen(s = json_string_value(v)) >= size)
		return (-1);
	memcpy(dst, s, strlen(s) + 1);
	return (0);
}

static int
campaign_pkg_parse(const char *text, struct cache_pkg *p)
{
	json_t		*o, *a, *v;
	json_error_t	 err;
	const char	*sig;
	size_t		 i, n;
	unsigned int	 b;
	int		 rc = -1;

	memset(p, 0, sizeof(*p));
	if ((o = json_loads(text, 0, &err)) == NULL)
		return (-1);
	if (campaign_str(o, "id", p->id, sizeof(p->id)) == -1 ||
	    campaign_str(o, "component", p->component,
	    sizeof(p->component)) == -1 ||
	    campaign_str(o, "version", p->version, sizeof(p->version)) == -1 ||
	    campaign_str(o, "base_version", p->base_version,
	    sizeof(p->base_version)) == -1 ||
	    campaign_str(o, "url", p->url, sizeof(p->url)) == -1)
		goto out;
	a = json_object_get(o, "hw");
	if (!json_is_array(a) || json_array_size(a) > CACHE_HW_MAX)
		goto out;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) > CACHE_NAME_MAX)
			goto out;
		memcpy(p->hw[i], json_string_value(v),
		    strlen(json_string_value(v)) + 1);
		p->nhw++;
	}
	a = json_object_get(o, "deps");
	if (!json_is_array(a) || json_array_size(a) > 4)
		goto out;
	json_array_foreach(a, i, v) {
		if (campaign_str(v, "component", p->dep_component[i],
		    sizeof(p->dep_component[i])) == -1 ||
		    campaign_str(v, "min_version", p->dep_min_version[i],
		    sizeof(p->dep_min_version[i])) == -1)
			goto out;
		p->ndeps++;
	}
	p->kind = json_integer_value(json_object_get(o, "kind"));
	p->delta_format = json_integer_value(json_object_get(o,
	    "delta_format"));
	p->size = json_integer_value(json_object_get(o, "size"));
	p->image_size = json_integer_value(json_object_get(o, "image_size"));
	p->manifest_serial = json_integer_value(json_object_get(o,
	    "manifest_serial"));
	/*
	 * The signed anti-rollback fields: the OFFER must carry them, or
	 * the nodes' signature check fails.  A row of before has neither:
	 * 0 and false, which is what its package was signed with.
	 */
	p->security_version = (uint32_t)json_integer_value(
	    json_object_get(o, "security_version"));
	p->allow_downgrade = json_is_true(json_object_get(o,
	    "allow_downgrade"));
	v = json_object_get(o, "sha256");
	if (!json_is_string(v) ||
	    cache_unhex(json_string_value(v), p->sha256) == -1)
		goto out;
	v = json_object_get(o, "image_sha256");
	if (!json_is_string(v) ||
	    cache_unhex(json_string_value(v), p->image_sha256) == -1)
		goto out;
	v = json_object_get(o, "sig");
	if (!json_is_string(v))
		goto out;
	sig = json_string_value(v);
	n = strlen(sig);
	if (n % 2 != 0 || n / 2 > sizeof(p->sig))
		goto out;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(sig + 2 * i, "%2x", &b) != 1)
			goto out;
		p->sig[i] = (uint8_t)b;
	}
	p->sig_len = n / 2;
	rc = 0;
out:
	json_decref(o);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* Members                                                              */

static void
campaign_hash_grow(struct fo_campaign *c)
{
	struct fo_member	**nh, *m, *next;
	size_t			  i, n = c->nhash != 0 ? c->nhash * 2 : 64, h;

	nh = xcalloc(n, sizeof(*nh));
	for (i = 0; i < c->nhash; i++)
		for (m = c->hash[i]; m != NULL; m = next) {
			next = m->hnext;
			h = (m->node * 0x9e3779b97f4a7c15ULL) >> 32 & (n - 1);
			m->hnext = nh[h];
			nh[h] = m;
		}
	free(c->hash);
	c->hash = nh;
	c->nhash = n;
}

struct fo_member *
campaign__member(struct fo_campaign *c, uint64_t node)
{
	struct fo_member	*m;
	size_t			 h;

	if (c->nhash == 0)
		return (NULL);
	h = (node * 0x9e3779b97f4a7c15ULL) >> 32 & (c->nhash - 1);
	for (m = c->hash[h]; m != NULL; m = m->hnext)
		if (m->node == node)
			return (m);
	return (NULL);
}

static struct fo_member *
campaign_member_add(struct fo_campaign *c, uint64_t node)
{
	struct fo_member	*m;
	size_t			 h;

	if (c->nmembers + 1 > c->nhash)
		campaign_hash_grow(c);
	m = xcalloc(1, sizeof(*m));
	m->node = node;
	m->c = c;
	h = (node * 0x9e3779b97f4a7c15ULL) >> 32 & (c->nhash - 1);
	m->hnext = c->hash[h];
	c->hash[h] = m;
	TAILQ_INSERT_TAIL(&c->members, m, centry);
	c->nmembers++;
	return (m);
}

void
campaign__set_state(struct fo_member *m, enum eng_mstate st)
{
	m->state = st;
	campaign__put_member(m);
	if (st == ENG_M_VERIFIED && m->c->rollout[0] != '\0')
		rollout__verified(m);
}

/* ------------------------------------------------------------------ */
/* Delta fallback of issue-2 deployments                               */

/*
 * Results of a delta the node could not apply (a wrong base, an option
 * it lacks, a decoder short of memory): the same delta would fail again
 * (docs/campaigns.md, "Delta fallback").
 */
static bool
campaign_delta_failure(const struct fo_campaign *c, enum eng_mstate st,
    uint8_t result)
{
	if (c->pkg.kind != UP_KIND_DELTA ||
	    (st != ENG_M_FAILED && st != ENG_M_DECLINED))
		return (false);
	switch (result) {
	case UP_R_INTEGRITY:
	case UP_R_UNSUPPORTED:
	case UP_R_BASE_MISMATCH:
	case UP_R_FAILED:
	case UP_R_NO_MEMORY:
		return (true);
	default:
		return (false);
	}
}

/* The full image of c's version in c's (issue-2) deployment, or NULL. */
static const struct cache_pkg *
campaign_full_of(struct fo_campaign *c, const char *hw)
{
	struct fo_deploy	*d;
	size_t			 i;

	TAILQ_FOREACH(d, &c->f->deploys, entry) {
		if (strcmp(d->id, c->deployment) != 0)
			continue;
		for (i = 0; i < d->npkgs; i++)
			if (d->pkgs[i].kind == UP_KIND_FULL &&
			    strcmp(d->pkgs[i].component,
			    c->pkg.component) == 0 &&
			    strcmp(d->pkgs[i].version, c->pkg.version) == 0 &&
			    (hw == NULL || sched_hw_ok(&d->pkgs[i], hw)))
				return (&d->pkgs[i]);
	}
	return (NULL);
}

/* Did `node' fail delta `p' of deployment `d' (so it gets the full)? */
static bool
campaign_delta_failed(struct fanout *f, const char *deployment,
    const struct cache_pkg *p, uint64_t node)
{
	struct fo_campaign	*c;
	struct fo_member	*m;

	TAILQ_FOREACH(c, &f->campaigns, entry)
		if (strcmp(c->deployment, deployment) == 0 &&
		    strcmp(c->package, p->id) == 0)
			break;
	return (c != NULL && (m = campaign__member(c, node)) != NULL &&
	    ENG_M_FINAL(m->state) && campaign_delta_failure(c, m->state,
	    m->result));
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */

static uint64_t
campaign_next_seq(struct fanout *f)
{
	sqlite3_stmt	*st = f->st_seq_get;
	uint64_t	 seq = 0;

	if (sqlite3_step(st) == SQLITE_ROW)
		seq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	seq++;
	sqlite3_bind_int64(f->st_seq_put, 1, (int64_t)seq);
	campaign_step(f, f->st_seq_put);
	return (seq);
}

static void
campaign_iso_time(int64_t unix_ms, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 t = (time_t)(unix_ms / 1000);

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * What the node said after its item's final record went (docs/manifest.md,
 * "Late results"): a "late_result" record, never a second "result".
 * The daemon recorded the truth locally (registry, member, item).
 */
static char *
campaign_late_line(struct fo_member *m)
{
	struct fo_campaign	*c = m->c;
	struct fanout		*f = c->f;
	json_t			*o;
	char			 node[24], ts[32], *line;

	snprintf(node, sizeof(node), "0x%016" PRIx64, m->node);
	campaign_iso_time(fanout__unix_ms(), ts, sizeof(ts));
	/* Its seq is the outbox's (docs/manifest.md, "Reports"). */
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:i, s:s, s:s}",
	    "type", "late_result",
	    "gateway", f->conf->gateway_id != NULL ? f->conf->gateway_id : "",
	    "node", node,
	    "campaign", c->rollout[0] != '\0' ? c->rollout : c->id,
	    "session_campaign", c->id, "deployment", c->deployment,
	    "package", c->package, "component", c->pkg.component,
	    "to", c->pkg.version,
	    "state", campaign__mstate_str(m->state),
	    "result", (int)m->result, "result_str", up_result_str(m->result),
	    "ts", ts);
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return (line);
}

/*
 * Builds the report record of a final member (one line, owned), or
 * returns NULL with *none set when no record may go: the item's final
 * record went already, and the node said nothing new (a late truth
 * from the node, `heard', is a late_result record instead).  An issue-2
 * member's record is final unless m->provisional; a rollout's follows
 * its item (docs/fanout.md, "Results").
 */
static char *
campaign_report_line(struct fo_member *m, bool heard, bool *none, bool *fin)
{
	struct fo_campaign	*c = m->c;
	struct fanout		*f = c->f;
	const struct cache_pkg	*full;
	json_t			*o;
	char			 node[24], ts[32], *line, *why;
	int64_t			 dur = 0;
	int			 rc;

	*none = *fin = false;
	if (c->rollout[0] == '\0' && m->closed) {
		if (heard)
			return (campaign_late_line(m));
		*none = true;
		return (NULL);
	}
	snprintf(node, sizeof(node), "0x%016" PRIx64, m->node);
	campaign_iso_time(m->finished != 0 ? m->finished :
	    fanout__unix_ms(), ts, sizeof(ts));
	if (m->started != 0 && m->finished >= m->started)
		dur = m->finished - m->started;
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:i, s:s, s:I, s:I, s:s}",
	    "type", "result",
	    "gateway", f->conf->gateway_id != NULL ? f->conf->gateway_id : "",
	    "node", node, "campaign", c->id, "deployment", c->deployment,
	    "package", c->package, "component", c->pkg.component,
	    "from", m->from, "to", c->pkg.version,
	    "state", campaign__mstate_str(m->state),
	    "result", (int)m->result, "result_str", up_result_str(m->result),
	    "bytes_sent", (json_int_t)m->bytes_sent,
	    "duration_ms", (json_int_t)dur, "ts", ts);
	/* A provisional record may be followed by the node's truth. */
	json_object_set_new(o, "final", json_boolean(!m->provisional));
	if (m->state == ENG_M_SKIPPED) {
		xasprintf(&why, "not offered: the node runs %s %s, not older "
		    "than %s", c->pkg.component, m->from, c->pkg.version);
		json_object_set_new(o, "reason", json_string(why));
		free(why);
	} else if (m->result == UP_R_BUSY)
		json_object_set_new(o, "reason", json_string("the node is "
		    "busy with another session"));
	else if (c->rollout[0] == '\0' && ENG_M_FINAL(m->state) &&
	    campaign_delta_failure(c, m->state, m->result) &&
	    (full = campaign_full_of(c, NULL)) != NULL) {
		xasprintf(&why, "delta %s failed on the node (%s): falls back "
		    "to the full image %s", c->package,
		    up_result_str(m->result), full->id);
		json_object_set_new(o, "reason", json_string(why));
		free(why);
	}
	if (c->rollout[0] != '\0' &&
	    (rc = rollout__report_extra(m, o)) != 0) {
		json_decref(o);
		if (rc == 1 && heard)
			return (campaign_late_line(m));
		*none = true;
		return (NULL);
	}
	/* Numbered last: a record not sent takes no number. */
	json_object_set_new(o, "seq", json_integer((json_int_t)
	    campaign_next_seq(f)));
	/* The issue-2 item's final record: closed once it is queued. */
	*fin = c->rollout[0] == '\0' && !m->provisional;
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return (line);
}

static void
campaign_report(struct fo_member *m, bool heard)
{
	struct fanout	*f = m->c->f;
	char		*line;
	bool		 none, fin;

	if ((line = campaign_report_line(m, heard, &none, &fin)) == NULL) {
		if (none)
			m->reported = true;	/* nothing is owed */
		else
			log_warnx("campaign %s: cannot build a report",
			    m->c->id);
		return;
	}
	if (strncmp(line, "{\"type\":\"late_result\"", 23) == 0)
		log_info("campaign %s: node 0x%016" PRIx64 " reported %s (%s) "
		    "after its final record: sent as a late result",
		    m->c->id, m->node, campaign__mstate_str(m->state),
		    up_result_str(m->result));
	if (f->uplink != NULL) {
		if (uplink_report(f->uplink, line) == 0) {
			m->reported = true;
			m->closed = m->closed || fin;
		} else
			log_warnx("campaign %s: node 0x%016" PRIx64 ": cannot "
			    "queue the report", m->c->id, m->node);
	}
	if (f->report_hook != NULL)
		f->report_hook(f->report_arg, line);
	f->reports++;
	free(line);
}

/*
 * A rollout member that stops at VERIFIED for good (download-only): the
 * cloud hears it like a final result, with state "verified".
 */
void
campaign__report_verified(struct fo_member *m)
{
	campaign_report(m, true);
}

/*
 * May the campaign still change an issue-2 member's final state?  A
 * write-off, a busy decline or a technician's release is taken back
 * when the node shows up, within its tries (campaign__revivable); a
 * node cancelled while it activated may still switch.  Not once the
 * campaign is cancelled, nor with final_after_s 0.
 */
static bool
campaign_open_end(const struct fo_member *m, bool switching)
{
	if (m->c->state == FO_C_CANCELLED || m->c->f->conf->final_after_s == 0)
		return (false);
	if (switching)
		return (true);
	return ((m->result == UP_R_CONN_LOST || m->result == UP_R_BUSY ||
	    m->result == UP_R_ABORTED) && m->tries < FO_MAX_TRIES);
}

/*
 * The daemon's part of a final state (m->state and m->result set): the
 * registry, the rollout, the report and the row.  `switching': the node
 * was activating, and may run the new version whatever we say.
 * `heard': the state is the node's own word (a RESULT, a decline), not
 * a write-off or a cancel.
 */
static void
campaign_final_nocommit(struct fo_member *m, const char *version,
    bool switching, bool heard)
{
	struct fo_campaign	*c = m->c;
	struct fanout		*f = c->f;
	enum eng_mstate		 st = m->state;
	int64_t			 due;

	/*
	 * Provisional (issue-2 members; a rollout's item decides its own):
	 * nobody heard the node, or it may still switch, or it will be
	 * offered again when it shows up (docs/fanout.md, "Results").
	 */
	m->provisional = c->rollout[0] == '\0' && !m->closed &&
	    campaign_open_end(m, switching);
	m->finished = fanout__unix_ms();
	due = m->finished + (int64_t)f->conf->final_after_s * 1000;
	/* campaign__cron: -1 nothing due, 0 look (at start), else when. */
	if (m->provisional && (f->close_next < 0 || (f->close_next > 0 &&
	    due < f->close_next)))
		f->close_next = due;
	m->reported = false;
	if (st == ENG_M_UPDATED && version != NULL && *version != '\0')
		registry_set_version(f->reg, m->node, c->pkg.component,
		    version);
	registry_set_state(f->reg, m->node, st == ENG_M_UPDATED ?
	    UP_NS_UPDATED : st == ENG_M_FAILED ? UP_NS_FAILED : UP_NS_IDLE);
	/* The scheduler learns first, so the report carries its verdict. */
	if (c->rollout[0] != '\0')
		rollout__result(m, st, m->result);
	campaign_report(m, heard);
	campaign__put_member(m);
	f->results++;
	log_info("campaign %s: node 0x%016" PRIx64 " %s (%s)", c->id, m->node,
	    campaign__mstate_str(st), up_result_str(m->result));
	/*
	 * An issue-2 delta the node cannot apply: it is assigned again,
	 * without that delta, so it gets the full image if the deployment
	 * has one (a rollout's scheduler falls back by itself).
	 */
	if (c->rollout[0] == '\0' && campaign_delta_failure(c, st,
	    m->result) && campaign_full_of(c, NULL) != NULL) {
		log_info("campaign %s: node 0x%016" PRIx64 ": delta %s failed "
		    "on the node (%s): falls back to the full image %s",
		    c->id, m->node, c->package, up_result_str(m->result),
		    campaign_full_of(c, NULL)->id);
		if (f->nfallback == f->fallback_cap) {
			f->fallback_cap = f->fallback_cap != 0 ?
			    f->fallback_cap * 2 : 16;
			f->fallback = xreallocarray(f->fallback,
			    f->fallback_cap, sizeof(*f->fallback));
		}
		f->fallback[f->nfallback++] = m->node;
	}
	/* Another campaign may have waited for this node. */
	campaign_place_soon(f);
}

void
campaign__final(struct fo_member *m, const char *version, bool heard)
{
	campaign_final_nocommit(m, version, false, heard);
	/* The result is durable before the node hears RESULT_ACK. */
	db_commit_now(m->c->f->db);
}

/*
 * The campaign can no longer change an issue-2 member's provisional
 * final state (final_after_s passed since the write-off, the campaign
 * was cancelled): its final record goes now, once (docs/manifest.md,
 * "Final and provisional records").  The node's later word is a late
 * result.  Returns whether a record went.
 */
static bool
campaign_close(struct fo_member *m, const char *why)
{
	if (m->c->rollout[0] != '\0' || m->closed || !m->provisional ||
	    !ENG_M_FINAL(m->state))
		return (false);
	log_info("campaign %s: node 0x%016" PRIx64 " %s (%s) is final: %s",
	    m->c->id, m->node, campaign__mstate_str(m->state),
	    up_result_str(m->result), why);
	m->provisional = false;
	m->reported = false;
	campaign_report(m, false);
	campaign__put_member(m);
	return (true);
}

void
campaign__cron(struct fanout *f)
{
	struct fo_campaign	*c;
	struct fo_member	*m;
	sqlite3_stmt		*st;
	int64_t			 now = fanout__unix_ms(), cutoff;
	int64_t			 next = 0, grace;
	char			 id[24], *why;
	int			 n = 0;

	if (f->close_next < 0 || (f->close_next > 0 && now < f->close_next))
		return;
	grace = (int64_t)f->conf->final_after_s * 1000;
	cutoff = now - grace;
	/* On disk, so that finished campaigns are found too. */
	if (sqlite3_prepare_v2(f->db, "SELECT campaign, node, finished FROM "
	    "campaign_nodes WHERE provisional = 1 AND closed = 0 ORDER BY "
	    "finished", -1, &st, NULL) != SQLITE_OK) {
		log_warnx("fanout: %s", sqlite3_errmsg(f->db));
		return;
	}
	xasprintf(&why, "no word from the node for %u s",
	    f->conf->final_after_s);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 2) > cutoff) {
			next = sqlite3_column_int64(st, 2) + grace;
			break;
		}
		snprintf(id, sizeof(id), "%" PRId64,
		    (int64_t)sqlite3_column_int64(st, 0));
		if ((c = campaign__find(f, id)) != NULL &&
		    (m = campaign__member(c, (uint64_t)sqlite3_column_int64(st,
		    1))) != NULL && m->finished <= cutoff &&
		    campaign_close(m, why))
			n++;
	}
	sqlite3_finalize(st);
	free(why);
	/* Nothing more until then, or a new write-off (final_nocommit). */
	f->close_next = next != 0 ? next : -1;
	if (n > 0)
		db_commit_now(f->db);
}

/*
 * The daemon cancels a member (technician, scheduler): the engine's
 * member goes CANCELLED too (with `tell', its node hears ABORT).
 */
static void
campaign_cancel_member(struct fo_member *m, uint8_t code, bool tell)
{
	struct eng_session_info	 si;
	bool			 switching = m->state == ENG_M_ACTIVATING;

	if (m->s != NULL) {
		session__info(m->s, &si);
		if (m->started != 0 && si.bytes_sent >= m->bytes_base) {
			m->bytes_sent += si.bytes_sent - m->bytes_base;
			m->bytes_base = si.bytes_sent;
		}
	}
	if (m->em != NULL)
		eng_member_cancel(m->em, code, tell);
	if (m->parked) {
		m->parked = false;
		m->c->nparked--;
	}
	m->state = ENG_M_CANCELLED;
	m->result = code;
	campaign_final_nocommit(m, NULL, switching, false);
}

void
campaign__flush_unreported(struct fanout *f)
{
	sqlite3_stmt		*st;
	struct fo_campaign	*c;
	struct fo_member	*m;
	char			 id[24], *line;
	int64_t			 rowid;
	uint64_t		 node;
	int			 n = 0;
	bool			 none, fin;

	if (f->uplink == NULL)
		return;
	if (sqlite3_prepare_v2(f->db, "SELECT campaign, node FROM "
	    "campaign_nodes WHERE reported = 0 AND state IN ('updated', "
	    "'failed', 'declined', 'cancelled', 'skipped') ORDER BY campaign, "
	    "node",
	    -1, &st, NULL) != SQLITE_OK) {
		log_warnx("fanout: %s", sqlite3_errmsg(f->db));
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		rowid = sqlite3_column_int64(st, 0);
		node = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(id, sizeof(id), "%" PRId64, rowid);
		if ((c = campaign__find(f, id)) == NULL ||
		    (m = campaign__member(c, node)) == NULL ||
		    m->reported || !ENG_M_FINAL(m->state))
			continue;
		if ((line = campaign_report_line(m, false, &none, &fin)) ==
		    NULL) {
			if (none) {
				m->reported = true;
				campaign__put_member(m);
			}
			continue;
		}
		if (uplink_report(f->uplink, line) == 0) {
			m->reported = true;
			m->closed = m->closed || fin;
			campaign__put_member(m);
			n++;
		}
		free(line);
	}
	sqlite3_finalize(st);
	if (n > 0) {
		log_info("fanout: queued %d earlier results", n);
		db_commit_now(f->db);
	}
}

/* ------------------------------------------------------------------ */
/* Campaign objects                                                     */

static struct fo_campaign *
campaign_alloc(struct fanout *f)
{
	struct fo_campaign	*c;

	c = xcalloc(1, sizeof(*c));
	c->f = f;
	TAILQ_INIT(&c->members);
	TAILQ_INIT(&c->sessions);
	return (c);
}

void
campaign__free(struct fo_campaign *c)
{
	struct fo_session	*s;
	struct fo_member	*m;

	if (c == NULL)
		return;
	while ((s = TAILQ_FIRST(&c->sessions)) != NULL)
		session__free(s);
	while ((m = TAILQ_FIRST(&c->members)) != NULL) {
		TAILQ_REMOVE(&c->members, m, centry);
		free(m);
	}
	if (c->check_ev != NULL)
		event_free(c->check_ev);
	cache_check_free(c->check);
	free(c->hash);
	free(c);
}

struct fo_campaign *
campaign__find(struct fanout *f, const char *id)
{
	struct fo_campaign	*c;
	sqlite3_stmt		*st;
	char			*end;
	long long		 rowid;

	TAILQ_FOREACH(c, &f->campaigns, entry)
		if (strcmp(c->id, id) == 0)
			return (c);
	rowid = strtoll(id, &end, 10);
	if (*id == '\0' || *end != '\0' || rowid <= 0)
		return (NULL);
	/* A finished campaign: load it for its views and late results. */
	if (sqlite3_prepare_v2(f->db, "SELECT id, deployment, package, pkg, "
	    "target, state, created, started, finished, rollout FROM "
	    "campaigns WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return (NULL);
	sqlite3_bind_int64(st, 1, rowid);
	c = NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		c = campaign_load_row(f, st);
	sqlite3_finalize(st);
	return (c);
}

static struct fo_campaign *
campaign_find_dp(struct fanout *f, const char *deployment,
    const char *package)
{
	struct fo_campaign	*c;
	sqlite3_stmt		*st;
	char			 id[24];

	TAILQ_FOREACH(c, &f->campaigns, entry)
		if (strcmp(c->deployment, deployment) == 0 &&
		    strcmp(c->package, package) == 0)
			return (c);
	if (sqlite3_prepare_v2(f->db, "SELECT id FROM campaigns WHERE "
	    "deployment = ?1 AND package = ?2", -1, &st, NULL) != SQLITE_OK)
		return (NULL);
	sqlite3_bind_text(st, 1, deployment, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, package, -1, SQLITE_STATIC);
	id[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(id, sizeof(id), "%lld", sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	if (id[0] == '\0')
		return (NULL);
	return (campaign__find(f, id));
}

static struct fo_campaign *
campaign_create(struct fanout *f, const struct fo_deploy *d,
    const struct cache_pkg *p, const char *rollout)
{
	struct fo_campaign	*c;
	sqlite3_stmt		*st = f->st_camp_ins;
	json_t			*pj, *tj;
	char			 sha[CACHE_HEX_LEN + 1], *ptext, *ttext;
	struct up_offer		 o;
	size_t			 i;

	if (p->size == 0 || uplink_pkg_offer(p, &o) != 0) {
		log_warnx("deployment %s: package %s (%" PRIu64 " bytes) does "
		    "not fit an UP offer", d->id, p->id, p->size);
		return (NULL);
	}
	c = campaign_alloc(f);
	fanout__strlcpy(c->deployment, d->id, sizeof(c->deployment));
	fanout__strlcpy(c->package, p->id, sizeof(c->package));
	c->pkg = *p;
	fanout__strlcpy(c->rollout, rollout, sizeof(c->rollout));
	c->nhw = d->nhw;
	for (i = 0; i < d->nhw; i++)
		memcpy(c->hw[i], d->hw[i], sizeof(c->hw[i]));
	c->state = FO_C_WAITING;
	c->created = fanout__unix_ms() / 1000;

	pj = campaign_pkg_json(p);
	tj = json_array();
	for (i = 0; i < c->nhw; i++)
		json_array_append_new(tj, json_string(c->hw[i]));
	ptext = json_dumps(pj, JSON_COMPACT);
	ttext = json_dumps(tj, JSON_COMPACT);
	json_decref(pj);
	json_decref(tj);
	cache_hex(p->sha256, sha);
	sqlite3_bind_text(st, 1, c->deployment, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->package, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, p->component, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, p->version, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ptext, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, ttext, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, campaign__state_str(c->state), -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, c->created);
	sqlite3_bind_text(st, 10, c->rollout, -1, SQLITE_STATIC);
	if (campaign_step(f, st) == -1) {
		free(ptext);
		free(ttext);
		free(c);
		return (NULL);
	}
	free(ptext);
	free(ttext);
	c->rowid = sqlite3_last_insert_rowid(f->db);
	snprintf(c->id, sizeof(c->id), "%" PRId64, c->rowid);
	TAILQ_INSERT_TAIL(&f->campaigns, c, entry);
	log_info("campaign %s: deployment %s, package %s (%s %s, %" PRIu64
	    " bytes)", c->id, c->deployment, c->package, p->component,
	    p->version, p->size);
	return (c);
}

/* Finds or creates the session of c on a transport instance. */
static struct fo_session *
campaign_session(struct fo_campaign *c, const char *transport)
{
	struct fo_session	*s;
	struct fo_member	*m;
	char			*cause = NULL;

	TAILQ_FOREACH(s, &c->sessions, centry)
		if (strcmp(s->transport, transport) == 0)
			return (s);
	if ((s = session__new(c, transport, 0, 0, 0, 0, 0, &cause)) == NULL) {
		log_warnx("campaign %s: %s", c->id, cause);
		free(cause);
		return (NULL);
	}
	/*
	 * A session reopened for latecomers takes its members that are
	 * final already, as one loaded from disk does: a node whose
	 * RESULT_ACK was lost resends its RESULT, and only a member's is
	 * acknowledged.  Unacknowledged, a field of radio nodes repeats
	 * RESULTs into the latecomers' answer slots.
	 */
	TAILQ_FOREACH(m, &c->members, centry)
		if (m->s == NULL && ENG_M_FINAL(m->state) &&
		    strcmp(m->transport, transport) == 0)
			session__add_member(s, m);
	return (s);
}

/*
 * Two campaigns never target the same node and component at once (issue
 * 7).  The member of another campaign that holds `node' for c's
 * component: it was offered (or further) and is not final.  A member
 * only placed in a session (pending) holds nothing yet; whoever is
 * offered first holds the node.
 */
static struct fo_member *
campaign_holder(struct fo_campaign *c, uint64_t node)
{
	struct fo_campaign	*c2;
	struct fo_member	*m2;

	TAILQ_FOREACH(c2, &c->f->campaigns, entry) {
		if (c2 == c || strcmp(c2->pkg.component,
		    c->pkg.component) != 0 ||
		    (m2 = campaign__member(c2, node)) == NULL)
			continue;
		if (!ENG_M_FINAL(m2->state) && m2->s != NULL &&
		    m2->state >= ENG_M_OFFERED)
			return (m2);
	}
	return (NULL);
}

/*
 * A held image (download-only, install-at, an atomic group: VERIFIED and
 * waiting only for the scheduler's ACTIVATE) does not block a later
 * campaign of a version at least as new: that offer supersedes it.
 */
static bool
campaign_supersedes(const struct fo_campaign *c, const struct fo_member *h)
{
	return (h->hold && h->state == ENG_M_VERIFIED &&
	    sched_version_cmp(c->pkg.version, h->c->pkg.version) >= 0);
}

static void
campaign_park(struct fo_member *m, const struct fo_member *h)
{
	if (m->s != NULL)
		session__remove_member(m->s, m);
	if (m->parked)
		return;
	m->parked = true;
	m->c->nparked++;
	log_info("campaign %s: node 0x%016" PRIx64 " waits: its %s is in "
	    "campaign %s (%s %s, %s)", m->c->id, m->node, m->c->pkg.component,
	    h->c->rollout[0] != '\0' ? h->c->rollout : h->c->id,
	    h->c->pkg.component, h->c->pkg.version,
	    campaign__mstate_str(h->state));
}

/*
 * Who may be placed now: a member whose node no other campaign holds, or
 * whose holder it supersedes.  Returns false when it must wait (parked).
 */
static bool
campaign_may_place(struct fo_member *m)
{
	struct fo_member	*h;

	if ((h = campaign_holder(m->c, m->node)) == NULL)
		return (true);
	if (campaign_supersedes(m->c, h)) {
		campaign_supersede(h, m->c);
		return (true);
	}
	campaign_park(m, h);
	return (false);
}

/* Puts members without a session into the session of their instance. */
static void
campaign_place(struct fo_campaign *c)
{
	struct fo_member	*m;
	struct fo_session	*s;

	TAILQ_FOREACH(m, &c->members, centry) {
		if (m->s != NULL && m->state <= ENG_M_OFFERED &&
		    strcmp(m->s->transport, m->transport) != 0)
			session__remove_member(m->s, m);
		if (m->s != NULL || ENG_M_FINAL(m->state))
			continue;
		if (!campaign_may_place(m))
			continue;
		if ((s = campaign_session(c, m->transport)) == NULL)
			continue;
		if (m->parked) {
			m->parked = false;
			c->nparked--;
			log_info("campaign %s: node 0x%016" PRIx64 " no longer "
			    "waits for another campaign", c->id, m->node);
		}
		session__add_member(s, m);
	}
}

/* Deferred: members that waited for another campaign may go now. */
static void
campaign_place_cb(int fd, short ev, void *arg)
{
	struct fanout			*f = arg;
	const struct registry_node	*rn;
	struct fo_campaign		*c;
	struct fo_session		*s;
	size_t				 before, i;

	f->place_soon = false;
	if (f->stopping)
		return;
	/* Issue-2 delta fallbacks: the assignment skips the failed delta. */
	for (i = 0; i < f->nfallback; i++)
		if ((rn = registry_get(f->reg, f->fallback[i])) != NULL)
			campaign__assign_node(f, rn);
	f->nfallback = 0;
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (c->nparked == 0 || c->state != FO_C_RUNNING || !c->ready)
			continue;
		before = c->nparked;
		campaign_place(c);
		if (c->nparked != before)
			TAILQ_FOREACH(s, &c->sessions, centry)
				session__run(s);
	}
}

static void
campaign_place_soon(struct fanout *f)
{
	struct fo_campaign	*c;
	struct timeval		 tv = { 0, 0 };

	if (f->place_soon || f->stopping)
		return;
	TAILQ_FOREACH(c, &f->campaigns, entry)
		if (c->nparked > 0)
			break;
	if (c == NULL && f->nfallback == 0)
		return;
	if (f->place_ev == NULL && (f->place_ev = evtimer_new(f->base,
	    campaign_place_cb, f)) == NULL)
		fatalx("campaign: evtimer_new");
	f->place_soon = true;
	evtimer_add(f->place_ev, &tv);
}

bool
campaign__offer_ok(struct fo_member *m)
{
	struct fo_campaign		*c = m->c;
	struct fanout			*f = c->f;
	const struct registry_node	*rn;
	const char			*running = NULL;
	char				*why;
	size_t				 i;

	if ((rn = registry_get(f->reg, m->node)) != NULL)
		for (i = 0; i < rn->ncomp && i < UP_MAX_COMPONENTS; i++)
			if (strcmp(rn->comp[i].name, c->pkg.component) == 0)
				running = rn->comp[i].version;
	/*
	 * Only versions newer than what the node runs now, read now, not
	 * when the campaign was planned (sched_may_offer: the one place of
	 * the rule and of its signed-downgrade exception).  The same
	 * version is left to the node, which declines it as "already".
	 */
	if (running != NULL && strcmp(running, c->pkg.version) != 0 &&
	    !sched_may_offer(&c->pkg, running)) {
		fanout__strlcpy(m->from, running, sizeof(m->from));
		xasprintf(&why, "node 0x%016" PRIx64 " runs %s %s by now, not "
		    "older than %s: not offered", m->node, c->pkg.component,
		    running, c->pkg.version);
		log_info("campaign %s: %s", c->id, why);
		/*
		 * The scheduler learns first, so the record has its verdict.
		 * The result is the one the node's anti-rollback would give.
		 */
		if (c->rollout[0] != '\0')
			rollout__skipped(m, UP_R_DOWNGRADE, why);
		free(why);
		if (m->s != NULL)
			session__remove_member(m->s, m);
		m->state = ENG_M_SKIPPED;
		m->result = UP_R_DOWNGRADE;
		f->sched_quiet = true;
		campaign_final_nocommit(m, NULL, false, false);
		f->sched_quiet = false;
		db_commit_now(f->db);
		return (false);
	}
	return (campaign_may_place(m));
}

static void
campaign_unpin(struct fo_campaign *c)
{
	char	 owner[64];

	if (!c->pinned)
		return;
	snprintf(owner, sizeof(owner), "campaign:%s", c->id);
	if (cache_unpin(c->f->cache, c->pkg.sha256, owner) == -1)
		log_warnx("campaign %s: cannot unpin its package", c->id);
	c->pinned = false;
}

static void
campaign_pin(struct fo_campaign *c)
{
	char	 owner[64];

	if (c->pinned)
		return;
	snprintf(owner, sizeof(owner), "campaign:%s", c->id);
	if (cache_pin(c->f->cache, c->pkg.sha256, owner) == 0)
		c->pinned = true;
}

void
campaign__check_done(struct fo_campaign *c)
{
	struct fo_member	*m;
	struct fo_session	*s;
	struct eng_session_info	 si;
	unsigned int		 nup = 0, nfail = 0;
	int			 i;

	if (c->state != FO_C_RUNNING)
		return;
	/* Cheap first: the sessions count their members' states. */
	TAILQ_FOREACH(s, &c->sessions, centry) {
		session__info(s, &si);
		for (i = ENG_M_PENDING; i < ENG_M_UPDATED; i++)
			if (si.nstate[i] != 0 && (i != ENG_M_VERIFIED ||
			    c->rollout[0] == '\0'))
				return;
	}
	TAILQ_FOREACH(m, &c->members, centry) {
		/* A rollout's held node waits for the scheduler, idle. */
		if (!ENG_M_FINAL(m->state) && !(m->hold &&
		    m->state == ENG_M_VERIFIED))
			return;
		if (m->state == ENG_M_UPDATED)
			nup++;
		else
			nfail++;
	}
	c->state = FO_C_DONE;
	c->finished = fanout__unix_ms() / 1000;
	/* Unpinned below: a reopened campaign verifies (or fetches) again. */
	c->ready = false;
	TAILQ_FOREACH(s, &c->sessions, centry) {
		campaign__put_session(s);
		session__close(s);
	}
	campaign_unpin(c);
	campaign__put(c);
	db_commit_now(c->f->db);
	log_info("campaign %s: done, %u updated, %u not", c->id, nup, nfail);
}

bool
campaign__revivable(const struct fo_member *m)
{
	if (!ENG_M_FINAL(m->state) || m->c->state == FO_C_CANCELLED)
		return (false);
	/* A rollout's retries are the scheduler's. */
	if (m->c->rollout[0] == '\0' && (m->closed || !m->provisional))
		return (false);
	if (m->c->rollout[0] != '\0')
		return (rollout__will_retry((struct fo_member *)m));
	return ((m->state == ENG_M_FAILED || m->state == ENG_M_DECLINED ||
	    m->state == ENG_M_CANCELLED) && (m->result == UP_R_CONN_LOST ||
	    m->result == UP_R_BUSY || m->result == UP_R_ABORTED) &&
	    m->tries < FO_MAX_TRIES);
}

/*
 * Adds `node' to c, or takes back a member written off for a lost
 * connection, declined as busy or released by a technician (its record
 * said it was provisional).  An issue-2 deployment is a standing order
 * while the manifest lists it ("every compatible node gets the newest
 * version"), so a node that shows up after its campaign is done still
 * joins it; what made that dangerous, a downgrade or an orphan session,
 * is ruled out at offer time and by the session (docs/campaigns.md,
 * "Versions only go up").  A rollout never takes a node once it is done:
 * the scheduler decides that (sched_node_seen).  Returns the member if
 * it (re)joined.
 */
static struct fo_member *
campaign_join(struct fo_campaign *c, const struct registry_node *node,
    const char *from)
{
	struct fo_member	*m;

	if (c->state == FO_C_CANCELLED)
		return (NULL);
	if ((m = campaign__member(c, node->id)) != NULL) {
		if (!campaign__revivable(m))
			return (NULL);
		log_info("campaign %s: node 0x%016" PRIx64 " back, try %u",
		    c->id, m->node, m->tries + 1);
	} else {
		m = campaign_member_add(c, node->id);
		fanout__strlcpy(m->from, from, sizeof(m->from));
		log_info("campaign %s: node 0x%016" PRIx64 " joins (%s %s -> "
		    "%s)", c->id, node->id, c->pkg.component, from,
		    c->pkg.version);
	}
	fanout__strlcpy(m->transport, node->transport, sizeof(m->transport));
	m->addr = node->addr;
	m->result = UP_R_INITIAL;
	m->finished = 0;
	m->reported = false;
	m->provisional = false;
	m->tries++;
	if (m->em != NULL) {
		eng_member_set_addr(m->em, &m->addr, node->max_frame);
		eng_member_restart(m->em);
	}
	campaign__set_state(m, ENG_M_PENDING);
	campaign_wake(c, m);
	return (m);
}

/* A member (re)joined or was released: get the campaign going. */
static void
campaign_wake(struct fo_campaign *c, struct fo_member *m)
{
	if (c->state == FO_C_DONE) {
		/* A latecomer reopens a finished campaign. */
		c->state = FO_C_WAITING;
		c->finished = 0;
		campaign__put(c);
		campaign_want_package(c);
	} else if (c->state == FO_C_WAITING) {
		/* New campaign: pin, fetch, verify (no-op when under way). */
		campaign_want_package(c);
	} else if (c->state == FO_C_RUNNING && c->ready) {
		campaign_place(c);
		if (m->s != NULL)
			session__run(m->s);
	}
}

static int
campaign_hw_ok(const struct fo_deploy *d, const char *hw)
{
	size_t	 i;

	if (d->nhw == 0)
		return (1);
	for (i = 0; i < d->nhw; i++)
		if (strcmp(d->hw[i], hw) == 0)
			return (1);
	return (0);
}

/* Assigns a node to the campaigns of one deployment. */
static void
campaign_assign(struct fanout *f, const struct fo_deploy *d,
    const struct registry_node *node)
{
	const struct cache_pkg	*p;
	struct cache_pkg	*pkgs = NULL;
	struct fo_campaign	*c;
	struct sched_node	 sn;
	size_t			 i, npkgs = 0;

	/* The registry has no tags yet: a tagged deployment matches none. */
	if (d->ntags > 0 || !campaign_hw_ok(d, node->hw))
		return;
	memset(&sn, 0, sizeof(sn));
	sn.node_id = node->id;
	memcpy(sn.hw, node->hw, sizeof(sn.hw));
	sn.ncomp = node->ncomp;
	for (i = 0; i < node->ncomp; i++)
		sn.comp[i] = node->comp[i];
	/* A delta this node failed is not chosen again (fallback). */
	for (i = 0; i < d->npkgs; i++)
		if (d->pkgs[i].kind == UP_KIND_DELTA &&
		    campaign_delta_failed(f, d->id, &d->pkgs[i], node->id))
			break;
	if (i < d->npkgs) {
		pkgs = xcalloc(d->npkgs, sizeof(*pkgs));
		for (i = 0; i < d->npkgs; i++)
			if (d->pkgs[i].kind != UP_KIND_DELTA ||
			    !campaign_delta_failed(f, d->id, &d->pkgs[i],
			    node->id))
				pkgs[npkgs++] = d->pkgs[i];
	}
	for (i = 0; i < node->ncomp; i++) {
		p = sched_choose(pkgs != NULL ? pkgs : d->pkgs, pkgs != NULL ?
		    npkgs : d->npkgs, &sn, node->comp[i].name);
		if (p == NULL)
			continue;
		if ((c = campaign_find_dp(f, d->id, p->id)) == NULL &&
		    (c = campaign_create(f, d, p, "")) == NULL)
			continue;
		campaign_join(c, node, node->comp[i].version);
	}
	free(pkgs);
}

struct campaign_assign_arg {
	struct fanout		*f;
	const struct fo_deploy	*d;
};

static void
campaign_assign_cb(void *arg, const struct registry_node *node)
{
	struct campaign_assign_arg	*a = arg;

	campaign_assign(a->f, a->d, node);
}

static void
campaign_deploys_free(struct fanout *f)
{
	struct fo_deploy	*d;

	while ((d = TAILQ_FIRST(&f->deploys)) != NULL) {
		TAILQ_REMOVE(&f->deploys, d, entry);
		free(d->pkgs);
		free(d);
	}
}

void
campaign__manifest(struct fanout *f, const struct uplink_manifest *mf)
{
	struct campaign_assign_arg	 a;
	const struct uplink_deployment	*ud;
	struct fo_deploy		*d;
	struct fo_campaign		*c;
	size_t				 i, j, k;

	campaign_deploys_free(f);
	for (i = 0; i < mf->ndeps; i++) {
		ud = &mf->deps[i];
		/* A policy or tags: the scheduler's (rollout.c). */
		if (rollout__deployment(f, mf, ud))
			continue;
		d = xcalloc(1, sizeof(*d));
		fanout__strlcpy(d->id, ud->id, sizeof(d->id));
		d->nhw = ud->nhw > CACHE_HW_MAX ? CACHE_HW_MAX : ud->nhw;
		for (j = 0; j < d->nhw; j++)
			memcpy(d->hw[j], ud->hw[j], sizeof(d->hw[j]));
		d->ntags = ud->ntags;
		d->pkgs = xcalloc(ud->npkgs + 1, sizeof(*d->pkgs));
		for (j = 0; j < ud->npkgs; j++)
			for (k = 0; k < mf->npkgs; k++)
				if (strcmp(mf->pkgs[k].id, ud->pkgs[j]) == 0) {
					d->pkgs[d->npkgs++] = mf->pkgs[k];
					break;
				}
		TAILQ_INSERT_TAIL(&f->deploys, d, entry);
	}
	log_info("fanout: manifest %" PRId64 ": %zu packages, %zu "
	    "deployments", mf->serial, mf->npkgs, mf->ndeps);

	a.f = f;
	TAILQ_FOREACH(d, &f->deploys, entry) {
		a.d = d;
		registry_foreach(f->reg, campaign_assign_cb, &a);
	}
	/* Campaigns still waiting may now be fetchable. */
	TAILQ_FOREACH(c, &f->campaigns, entry)
		if (c->state == FO_C_WAITING && !c->ready && c->check == NULL)
			campaign_want_package(c);
}

/*
 * Session ids are never reused for other content, and a node must never
 * sit forever in a session nobody runs for it (issue 7): its ANNOUNCE
 * names its session and state.  A node that holds an unactivated image
 * (receiving, downloaded, verified) of a session this gateway does not
 * run, or of one that is finished for it (not a member, or a final
 * member that will not be taken back), gets a targeted ABORT of that
 * session: the node engine drops the image and goes back to IDLE
 * (docs/up-protocol.md §5.2 step 8).  It is then free for any later offer.
 */
void
campaign__orphan_check(struct fanout *f, const struct registry_node *node,
    const struct up_announce *a)
{
	struct fo_session	*s;
	struct fo_member	*m = NULL;
	const char		*why;

	if (a->session == 0 || (a->state != UP_NS_RECEIVING &&
	    a->state != UP_NS_DOWNLOADED && a->state != UP_NS_VERIFIED))
		return;
	/* A finished campaign's session: loaded to look at its member. */
	if ((s = session__find(f, a->session)) == NULL &&
	    campaign__load_by_session(f, a->session) != NULL)
		s = session__find(f, a->session);
	if (s != NULL && (m = campaign__member(s->c, node->id)) != NULL &&
	    (m->s == s || m->parked) &&
	    (!ENG_M_FINAL(m->state) || campaign__revivable(m)))
		return;		/* its session, still running for it */
	if (s == NULL)
		why = "a session this gateway does not run";
	else if (m == NULL || m->s != s)
		why = "a session it is no member of";
	else
		why = "a session finished for it";
	log_info("node 0x%016" PRIx64 " holds a %s image of %s (%08x): "
	    "released", node->id, up_state_str(a->state), why, a->session);
	campaign__send_abort(f, node->transport, &node->addr, a->session,
	    node->id, UP_R_ABORTED);
}

void
campaign__node_seen(struct fanout *f, const struct registry_node *node,
    const struct up_announce *a)
{
	struct fo_campaign	*c;
	struct fo_member	*m;
	struct fo_session	*s;

	campaign__orphan_check(f, node, a);
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (!campaign__active(c) ||
		    (m = campaign__member(c, node->id)) == NULL ||
		    ENG_M_FINAL(m->state))
			continue;
		m->addr = node->addr;
		/* Heard: also restarts its silence clock (engine). */
		if (m->em != NULL)
			eng_member_set_addr(m->em, &node->addr,
			    node->max_frame);
		if (strcmp(m->transport, node->transport) != 0 &&
		    m->state <= ENG_M_OFFERED) {
			/* It moved to another broadcast domain. */
			fanout__strlcpy(m->transport, node->transport,
			    sizeof(m->transport));
			if (c->state == FO_C_RUNNING && c->ready) {
				campaign_place(c);
				if (m->s != NULL)
					session__run(m->s);
			}
			continue;
		}
		if ((s = m->s) == NULL)
			continue;
		/* An ANNOUNCE naming its session: the engine took it. */
		if (a->session == s->id)
			;
		else if (a->state == UP_NS_IDLE &&
		    (m->state == ENG_M_RECEIVING ||
		    m->state == ENG_M_DOWNLOADED ||
		    m->state == ENG_M_VERIFIED)) {
			/* It lost the session (reflashed, aborted). */
			log_info("campaign %s: node 0x%016" PRIx64 " lost "
			    "session %08x, offering again", c->id, m->node,
			    s->id);
			if (m->em != NULL)
				eng_member_restart(m->em);
			campaign__set_state(m, ENG_M_PENDING);
			session__run(s);
		}
	}
	campaign__assign_node(f, node);
	rollout__node_seen(f, node);
}

void
campaign__assign_node(struct fanout *f, const struct registry_node *node)
{
	struct fo_deploy	*d;

	TAILQ_FOREACH(d, &f->deploys, entry)
		campaign_assign(f, d, node);
}

/* ------------------------------------------------------------------ */
/* Rollouts: the scheduler decides who gets what (rollout.c)           */

struct fo_campaign *
campaign__for_rollout(struct fanout *f, const char *ro,
    const struct cache_pkg *p)
{
	struct fo_campaign	*c;
	struct fo_deploy	 d;

	if ((c = campaign_find_dp(f, ro, p->id)) != NULL) {
		if (c->rollout[0] == '\0')
			fanout__strlcpy(c->rollout, ro, sizeof(c->rollout));
		if (c->state == FO_C_CANCELLED) {
			/* A new rollout of the same deployment id. */
			c->state = FO_C_DONE;
			campaign__put(c);
		}
		return (c);
	}
	memset(&d, 0, sizeof(d));
	fanout__strlcpy(d.id, ro, sizeof(d.id));
	return (campaign_create(f, &d, p, ro));
}

struct fo_member *
campaign__offer(struct fo_campaign *c, uint64_t node, const char *transport,
    const struct tp_addr *addr, const char *from, bool hold)
{
	struct fo_member	*m;

	if ((m = campaign__member(c, node)) != NULL && !ENG_M_FINAL(m->state)) {
		/* Still under way (resumed after a restart): keep going. */
		if (m->hold != hold) {
			m->hold = hold;
			if (m->em != NULL)
				eng_member_set_hold(m->em, hold);
			campaign__put_member(m);
		}
		campaign_wake(c, m);
		return (m);
	}
	if (m == NULL) {
		m = campaign_member_add(c, node);
		log_info("campaign %s: node 0x%016" PRIx64 " offered (%s %s "
		    "-> %s)", c->id, node, c->pkg.component, from,
		    c->pkg.version);
	} else
		log_info("campaign %s: node 0x%016" PRIx64 " offered again, "
		    "try %u", c->id, node, m->tries + 1);
	fanout__strlcpy(m->from, from, sizeof(m->from));
	if (transport != NULL)
		fanout__strlcpy(m->transport, transport,
		    sizeof(m->transport));
	if (addr != NULL)
		m->addr = *addr;
	m->hold = hold;
	m->result = UP_R_INITIAL;
	m->finished = 0;
	m->reported = false;
	m->provisional = false;
	m->tries++;
	if (m->em != NULL) {
		if (addr != NULL)
			eng_member_set_addr(m->em, addr, 0);
		eng_member_set_hold(m->em, hold);
		eng_member_restart(m->em);
	}
	campaign__set_state(m, ENG_M_PENDING);
	campaign_wake(c, m);
	return (m);
}

void
campaign__release(struct fo_member *m)
{
	if (!m->hold)
		return;
	m->hold = false;
	if (m->em != NULL)
		eng_member_set_hold(m->em, false);
	campaign__put_member(m);
	if (m->state == ENG_M_VERIFIED)
		campaign_wake(m->c, m);
}

void
campaign__send_abort(struct fanout *f, const char *transport,
    const struct tp_addr *addr, uint32_t session, uint64_t node,
    uint8_t reason)
{
	struct eng_link	*l;

	if (session != 0 && (l = eng_link_find(f->eng, transport)) != NULL)
		eng_link_abort(l, session, node, addr, reason);
}

/*
 * A later campaign of a version at least as new takes a node whose image
 * another campaign holds (issue 7): the node is told to drop the held
 * image (a targeted ABORT of the holder's session) and the holder's
 * member ends, cancelled, "superseded" in its rollout's reason.
 */
static void
campaign_supersede(struct fo_member *h, struct fo_campaign *c)
{
	struct fanout	*f = c->f;
	char		*why;

	xasprintf(&why, "superseded by campaign %s (%s %s)",
	    c->rollout[0] != '\0' ? c->rollout : c->id, c->pkg.component,
	    c->pkg.version);
	log_info("campaign %s: node 0x%016" PRIx64 ": held image %s",
	    h->c->id, h->node, why);
	if (h->c->rollout[0] != '\0')
		rollout__skipped(h, UP_R_ABORTED, why);
	free(why);
	f->sched_quiet = true;
	campaign_cancel_member(h, UP_R_ABORTED, true);
	f->sched_quiet = false;
	campaign__check_done(h->c);
	db_commit_now(f->db);
}

void
campaign__abort_member(struct fo_member *m, uint8_t code)
{
	struct fo_campaign	*c = m->c;
	struct fanout		*f = c->f;

	if (ENG_M_FINAL(m->state))
		return;
	/* The scheduler decided this: do not feed it back as a result. */
	f->sched_quiet = true;
	campaign_cancel_member(m, code, true);
	f->sched_quiet = false;
	campaign__check_done(c);
}

/* ------------------------------------------------------------------ */
/* Package: pin, fetch, verify once, run                               */

static void
campaign_check_cb(int fd, short ev, void *arg)
{
	struct fo_campaign	*c = arg;
	char			*cause = NULL;
	int			 rc;

	rc = cache_check_step(c->check, CAMPAIGN_CHECK_BUDGET, &cause);
	if (rc == 1) {
		event_active(c->check_ev, EV_TIMEOUT, 1);
		return;
	}
	cache_check_free(c->check);
	c->check = NULL;
	if (rc == -1) {
		/* Deleted and marked corrupt by the cache: fetch again. */
		log_warnx("campaign %s: package %s is corrupt in the cache: "
		    "%s", c->id, c->package, cause != NULL ? cause : "?");
		free(cause);
		c->fetching = false;
		if (c->f->uplink != NULL) {
			c->fetching = true;
			if (uplink_fetch(c->f->uplink, c->pkg.sha256) == -1)
				c->fetching = false;
		}
		return;
	}
	free(cause);
	log_info("campaign %s: package %s verified", c->id, c->package);
	c->ready = true;
	campaign_pin(c);
	if (c->state == FO_C_WAITING)
		campaign_run(c);
}

static void
campaign_check_start(struct fo_campaign *c)
{
	char	*cause = NULL;

	if (c->check != NULL || c->ready)
		return;
	if ((c->check = cache_check_start(c->f->cache, c->pkg.sha256,
	    &cause)) == NULL) {
		log_warnx("campaign %s: cannot verify package %s: %s", c->id,
		    c->package, cause != NULL ? cause : "?");
		free(cause);
		return;
	}
	if (c->check_ev == NULL)
		c->check_ev = evtimer_new(c->f->base, campaign_check_cb, c);
	event_active(c->check_ev, EV_TIMEOUT, 1);
}

static void
campaign_want_package(struct fo_campaign *c)
{
	struct cache_entry	 e;

	campaign_pin(c);
	if (c->ready) {
		if (c->state == FO_C_WAITING)
			campaign_run(c);
		return;
	}
	if (c->check != NULL || c->fetching)
		return;
	if (c->f->uplink != NULL) {
		c->fetching = true;
		if (uplink_fetch(c->f->uplink, c->pkg.sha256) == -1) {
			c->fetching = false;
			log_warnx("campaign %s: the uplink does not know "
			    "package %s yet", c->id, c->package);
		}
		return;
	}
	/* No uplink (tests, offline): use what the cache holds. */
	if (cache_lookup(c->f->cache, c->pkg.sha256, &e) == 0 &&
	    e.state == CACHE_COMPLETE)
		campaign_check_start(c);
	else
		log_info("campaign %s: waiting for package %s", c->id,
		    c->package);
}

void
campaign__blob_error(struct fo_campaign *c)
{
	struct fo_session	*s;

	if (c->state != FO_C_RUNNING)
		return;
	log_warnx("campaign %s: cannot read package %s, verifying it again",
	    c->id, c->package);
	TAILQ_FOREACH(s, &c->sessions, centry) {
		campaign__put_session(s);
		session__close(s);
	}
	c->ready = false;
	c->state = FO_C_WAITING;
	campaign__put(c);
	campaign_want_package(c);
}

void
campaign__package_ready(struct fanout *f, const uint8_t *sha)
{
	struct fo_campaign	*c;

	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (!campaign__active(c) ||
		    memcmp(c->pkg.sha256, sha, CACHE_SHA_LEN) != 0)
			continue;
		c->fetching = false;
		if (c->ready) {
			if (c->state == FO_C_WAITING)
				campaign_run(c);
			continue;
		}
		campaign_check_start(c);
	}
}

void
campaign__package_failed(struct fanout *f, const uint8_t *sha,
    const char *why)
{
	struct fo_campaign	*c;

	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (!campaign__active(c) ||
		    memcmp(c->pkg.sha256, sha, CACHE_SHA_LEN) != 0)
			continue;
		/* The uplink retries by itself; we only say so. */
		c->fetching = false;
		log_warnx("campaign %s: package %s: %s", c->id, c->package,
		    why != NULL ? why : "failed");
	}
}

static void
campaign_run(struct fo_campaign *c)
{
	struct fo_session	*s;

	if (c->state != FO_C_WAITING || !c->ready)
		return;
	c->state = FO_C_RUNNING;
	if (c->started == 0)
		c->started = fanout__unix_ms() / 1000;
	campaign__put(c);
	campaign_place(c);
	TAILQ_FOREACH(s, &c->sessions, centry)
		session__run(s);
	campaign__check_done(c);
}

void
campaign__start_all(struct fanout *f)
{
	struct fo_campaign	*c;

	TAILQ_FOREACH(c, &f->campaigns, entry)
		if (c->state == FO_C_WAITING)
			campaign_want_package(c);
}

/* ------------------------------------------------------------------ */
/* Technician actions                                                   */

int
campaign__pause(struct fo_campaign *c, char **cause)
{
	struct fo_session	*s;

	if (c->state == FO_C_PAUSED)
		return (0);
	if (!campaign__active(c)) {
		xasprintf(cause, "campaign %s is %s", c->id,
		    campaign__state_str(c->state));
		return (-1);
	}
	TAILQ_FOREACH(s, &c->sessions, centry) {
		session__stop(s);
		campaign__put_session(s);
	}
	c->state = FO_C_PAUSED;
	campaign__put(c);
	db_commit_now(c->f->db);
	log_info("campaign %s: paused", c->id);
	return (0);
}

int
campaign__resume(struct fo_campaign *c, char **cause)
{
	if (c->state == FO_C_RUNNING || c->state == FO_C_WAITING)
		return (0);
	if (c->state != FO_C_PAUSED) {
		xasprintf(cause, "campaign %s is %s", c->id,
		    campaign__state_str(c->state));
		return (-1);
	}
	c->state = FO_C_WAITING;
	campaign__put(c);
	log_info("campaign %s: resumed", c->id);
	campaign_want_package(c);
	db_commit_now(c->f->db);
	return (0);
}

int
campaign__cancel(struct fo_campaign *c, char **cause)
{
	struct fo_session	*s;
	struct fo_member	*m;
	struct eng_session_info	 si;

	if (c->state == FO_C_CANCELLED)
		return (0);
	if (!campaign__active(c)) {
		xasprintf(cause, "campaign %s is %s", c->id,
		    campaign__state_str(c->state));
		return (-1);
	}
	TAILQ_FOREACH(s, &c->sessions, centry) {
		session__stop(s);
		session__info(s, &si);
		if (si.nmembers > 0)
			eng_session_abort(s->es, UP_R_ABORTED);
	}
	/*
	 * Cancelled first: nothing the campaign did can change any more,
	 * so every item's record is final now, also a write-off's that was
	 * provisional until here.  A node's later word is a late result.
	 */
	c->state = FO_C_CANCELLED;
	TAILQ_FOREACH(m, &c->members, centry)
		if (!ENG_M_FINAL(m->state))
			campaign_cancel_member(m, UP_R_ABORTED, false);
		else
			(void)campaign_close(m, "its campaign was cancelled");
	TAILQ_FOREACH(s, &c->sessions, centry) {
		campaign__put_session(s);
		session__close(s);
	}
	c->finished = fanout__unix_ms() / 1000;
	c->ready = false;
	campaign_unpin(c);
	campaign__put(c);
	db_commit_now(c->f->db);
	log_info("campaign %s: cancelled", c->id);
	return (0);
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

static void
campaign_load_members(struct fo_campaign *c)
{
	struct fanout		*f = c->f;
	struct fo_member	*m;
	sqlite3_stmt		*st;
	const void		*blob;
	const char		*text;
	enum eng_mstate		 ms;
	int			 len;

	if (sqlite3_prepare_v2(f->db, "SELECT node, transport, state, "
	    "result, held, bytes_sent, tries, started, finished, reported, "
	    "from_version, addr, hold, provisional, closed FROM campaign_nodes "
	    "WHERE campaign = ?1 ORDER BY node", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, c->rowid);
	while (sqlite3_step(st) == SQLITE_ROW) {
		text = (const char *)sqlite3_column_text(st, 2);
		if (text == NULL || campaign_mstate_parse(text, &ms) == -1)
			continue;
		m = campaign_member_add(c,
		    (uint64_t)sqlite3_column_int64(st, 0));
		text = (const char *)sqlite3_column_text(st, 1);
		fanout__strlcpy(m->transport, text != NULL ? text : "",
		    sizeof(m->transport));
		m->state = ms;
		m->result = sqlite3_column_int(st, 3);
		m->held = sqlite3_column_int64(st, 4);
		m->bytes_sent = sqlite3_column_int64(st, 5);
		m->tries = sqlite3_column_int(st, 6);
		m->started = sqlite3_column_int64(st, 7);
		m->finished = sqlite3_column_int64(st, 8);
		m->reported = sqlite3_column_int(st, 9) != 0;
		text = (const char *)sqlite3_column_text(st, 10);
		fanout__strlcpy(m->from, text != NULL ? text : "",
		    sizeof(m->from));
		blob = sqlite3_column_blob(st, 11);
		len = sqlite3_column_bytes(st, 11);
		if (blob != NULL && (size_t)len == sizeof(m->addr))
			memcpy(&m->addr, blob, len);
		if (m->addr.len > TP_ADDR_MAX)
			memset(&m->addr, 0, sizeof(m->addr));
		m->hold = sqlite3_column_int(st, 12) != 0;
		m->provisional = sqlite3_column_int(st, 13) != 0;
		m->closed = sqlite3_column_int(st, 14) != 0;

		/*
		 * After a restart the nodes still hold their blocks; the
		 * session offers again with the same id and each node
		 * answers with what it holds (docs/fanout.md, "Restart").
		 */
		if (m->state <= ENG_M_DOWNLOADED)
			m->state = ENG_M_PENDING;
	}
	sqlite3_finalize(st);
}

static void
campaign_load_sessions(struct fo_campaign *c)
{
	struct fanout		*f = c->f;
	struct fo_session	*s;
	struct fo_member	*m;
	struct eng_session_info	 si;
	sqlite3_stmt		*st;
	const char		*tp;
	char			*cause = NULL;

	if (sqlite3_prepare_v2(f->db, "SELECT transport, session, "
	    "block_size, nblocks, bytes_sent, tag FROM campaign_sessions "
	    "WHERE campaign = ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, c->rowid);
	while (sqlite3_step(st) == SQLITE_ROW) {
		tp = (const char *)sqlite3_column_text(st, 0);
		s = session__new(c, tp != NULL ? tp : "",
		    (uint32_t)sqlite3_column_int64(st, 1),
		    (uint16_t)sqlite3_column_int(st, 2),
		    (uint32_t)sqlite3_column_int64(st, 3),
		    (uint64_t)sqlite3_column_int64(st, 4),
		    (uint8_t)sqlite3_column_int(st, 5), &cause);
		if (s == NULL) {
			log_warnx("campaign %s: %s", c->id, cause);
			free(cause);
			cause = NULL;
			continue;
		}
	}
	sqlite3_finalize(st);

	/* Members go back to the session of their instance. */
	TAILQ_FOREACH(m, &c->members, centry) {
		TAILQ_FOREACH(s, &c->sessions, centry)
			if (strcmp(s->transport, m->transport) == 0)
				break;
		if (s != NULL) {
			session__add_member(s, m);
			session__info(s, &si);
			m->bytes_base = si.bytes_sent;
		}
	}
}

/* Columns: id, deployment, package, pkg, target, state, created,
 * started, finished, rollout. */
static struct fo_campaign *
campaign_load_row(struct fanout *f, sqlite3_stmt *st)
{
	struct fo_campaign	*c;
	const char		*text;
	json_t			*tj, *v;
	json_error_t		 err;
	size_t			 i;

	c = campaign_alloc(f);
	c->rowid = sqlite3_column_int64(st, 0);
	snprintf(c->id, sizeof(c->id), "%" PRId64, c->rowid);
	text = (const char *)sqlite3_column_text(st, 1);
	fanout__strlcpy(c->deployment, text != NULL ? text : "",
	    sizeof(c->deployment));
	text = (const char *)sqlite3_column_text(st, 2);
	fanout__strlcpy(c->package, text != NULL ? text : "",
	    sizeof(c->package));
	text = (const char *)sqlite3_column_text(st, 3);
	if (text == NULL || campaign_pkg_parse(text, &c->pkg) == -1) {
		log_warnx("campaign %s: bad package record, skipped", c->id);
		free(c);
		return (NULL);
	}
	text = (const char *)sqlite3_column_text(st, 4);
	if (text != NULL && (tj = json_loads(text, 0, &err)) != NULL) {
		json_array_foreach(tj, i, v) {
			if (i >= CACHE_HW_MAX || !json_is_string(v))
				break;
			fanout__strlcpy(c->hw[i], json_string_value(v),
			    sizeof(c->hw[i]));
			c->nhw++;
		}
		json_decref(tj);
	}
	text = (const char *)sqlite3_column_text(st, 5);
	if (text == NULL || campaign_state_parse(text, &c->state) == -1)
		c->state = FO_C_WAITING;
	c->created = sqlite3_column_int64(st, 6);
	c->started = sqlite3_column_int64(st, 7);
	c->finished = sqlite3_column_int64(st, 8);
	text = (const char *)sqlite3_column_text(st, 9);
	fanout__strlcpy(c->rollout, text != NULL ? text : "",
	    sizeof(c->rollout));
	/* The blob is verified again before anything is sent. */
	if (c->state == FO_C_RUNNING)
		c->state = FO_C_WAITING;
	campaign_load_members(c);
	campaign_load_sessions(c);
	TAILQ_INSERT_TAIL(&f->campaigns, c, entry);
	return (c);
}

/* Rebuilds a deployment from a restored campaign until a manifest. */
static void
campaign_restore_deploy(struct fanout *f, const struct fo_campaign *c)
{
	struct fo_deploy	*d;
	size_t			 i;

	TAILQ_FOREACH(d, &f->deploys, entry)
		if (strcmp(d->id, c->deployment) == 0)
			break;
	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		fanout__strlcpy(d->id, c->deployment, sizeof(d->id));
		d->nhw = c->nhw;
		for (i = 0; i < c->nhw; i++)
			memcpy(d->hw[i], c->hw[i], sizeof(d->hw[i]));
		TAILQ_INSERT_TAIL(&f->deploys, d, entry);
	}
	d->pkgs = xreallocarray(d->pkgs, d->npkgs + 1, sizeof(*d->pkgs));
	d->pkgs[d->npkgs++] = c->pkg;
}

int
campaign__load_all(struct fanout *f, char **cause)
{
	struct fo_campaign	*c;
	sqlite3_stmt		*st;
	int			 n = 0;

	/*
	 * Unfinished campaigns, and finished ones that still hold a node
	 * (a rollout's held image): two campaigns never target a node at
	 * once, so the holders must be known (campaign_holder).
	 */
	if (sqlite3_prepare_v2(f->db, "SELECT id, deployment, package, pkg, "
	    "target, state, created, started, finished, rollout FROM "
	    "campaigns WHERE state NOT IN ('done', 'cancelled') OR id IN "
	    "(SELECT campaign FROM campaign_nodes WHERE state NOT IN "
	    "('updated', 'failed', 'declined', 'cancelled', 'skipped')) "
	    "ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		xasprintf(cause, "fanout: %s", sqlite3_errmsg(f->db));
		return (-1);
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if ((c = campaign_load_row(f, st)) == NULL)
			continue;
		/* A rollout's members come from the scheduler, not here. */
		if (c->rollout[0] == '\0' && campaign__active(c))
			campaign_restore_deploy(f, c);
		n++;
	}
	sqlite3_finalize(st);
	if (n > 0)
		log_info("fanout: resuming %d campaigns", n);
	return (0);
}

struct fo_campaign *
campaign__load_by_session(struct fanout *f, uint32_t id)
{
	sqlite3_stmt	*st;
	char		 cid[24];

	if (sqlite3_prepare_v2(f->db, "SELECT campaign FROM campaign_sessions "
	    "WHERE session = ?1", -1, &st, NULL) != SQLITE_OK)
		return (NULL);
	sqlite3_bind_int64(st, 1, id);
	cid[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(cid, sizeof(cid), "%lld",
		    sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	if (cid[0] == '\0')
		return (NULL);
	return (campaign__find(f, cid));
}

void
campaign__fini(struct fanout *f)
{
	struct fo_campaign	*c;

	while ((c = TAILQ_FIRST(&f->campaigns)) != NULL) {
		TAILQ_REMOVE(&f->campaigns, c, entry);
		campaign__free(c);
	}
	if (f->place_ev != NULL)
		event_free(f->place_ev);
	f->place_ev = NULL;
	free(f->fallback);
	f->fallback = NULL;
	f->nfallback = f->fallback_cap = 0;
	campaign_deploys_free(f);
	sqlite3_finalize(f->st_camp_ins);
	sqlite3_finalize(f->st_camp_upd);
	sqlite3_finalize(f->st_node_put);
	sqlite3_finalize(f->st_sess_put);
	sqlite3_finalize(f->st_seq_get);
	sqlite3_finalize(f->st_seq_put);
	sqlite3_finalize(f->st_meta_get);
	sqlite3_finalize(f->st_meta_put);
}

/* ------------------------------------------------------------------ */
/* Public API (upbridged.h): who holds a node, reset                   */

json_t *
fanout_node_campaigns_json(struct fanout *f, uint64_t id)
{
	struct fo_campaign	*c;
	struct fo_member	*m;
	json_t			*a = json_array();

	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if ((m = campaign__member(c, id)) == NULL ||
		    ENG_M_FINAL(m->state))
			continue;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, "
		    "s:s, s:b, s:b}", "campaign", c->rollout[0] != '\0' ?
		    c->rollout : c->id, "session_campaign", c->id, "package",
		    c->package, "component", c->pkg.component, "version",
		    c->pkg.version, "state", campaign__mstate_str(m->state),
		    "hold", m->hold, "parked", m->parked));
	}
	return (a);
}

int
fanout_node_reset(struct fanout *f, uint64_t id, char **cause)
{
	struct fo_campaign	*c;
	struct fo_member	*m;
	int			 n = 0;

	if (registry_get(f->reg, id) == NULL) {
		xasprintf(cause, "unknown node 0x%016" PRIx64, id);
		return (-1);
	}
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if ((m = campaign__member(c, id)) == NULL ||
		    ENG_M_FINAL(m->state))
			continue;
		log_info("campaign %s: node 0x%016" PRIx64 " released by a "
		    "technician (%s)", c->id, id,
		    campaign__mstate_str(m->state));
		/* An aborted attempt: the scheduler retries it (budget). */
		campaign_cancel_member(m, UP_R_ABORTED, true);
		campaign__check_done(c);
		n++;
	}
	db_commit_now(f->db);
	return (n);
}
