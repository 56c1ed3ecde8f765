/*
 * rollout.c: scheduler campaigns carried out by the fan-out engine.
 *
 * A deployment with a policy (or target tags) becomes one scheduler
 * campaign (scheduler/, docs/campaigns.md), its "rollout", whose id is
 * the deployment id.  The scheduler decides who gets which package and
 * when; this file carries the decisions out with the engine's own
 * machinery (campaign.c and the engine) and feeds back what the nodes say:
 *
 *   OFFER(node, pkg, hold) -> the campaign of (rollout, pkg), which runs
 *	one UP session per broadcast domain; the node becomes a member of
 *	it (held members stop at VERIFIED)
 *   ACTIVATE		    -> the held member is released
 *   ABORT		    -> a targeted ABORT, the member is cancelled
 *   EVENT		    -> a {"type":"campaign"} record upstream
 *   VERIFIED / final RESULT / decline -> sched_item_verified/result
 *   ANNOUNCE		    -> sched_node_seen (facts, late joiners)
 *
 * Deployments without a policy ("{}" or none) and without tags keep the
 * issue-2 path in campaign.c (every compatible node gets the newest
 * version), so the foundation's behaviour does not change.
 *
 * Ticks never run inside another module's work: rollout__kick() arms a
 * zero timer, and the timer re-arms itself for the scheduler's next_wake.
 * Every change is saved with sched_db_save into the daemon's open
 * transaction; results are committed by campaign.c before the RESULT_ACK.
 */
#include <sys/queue.h>

#include <event2/event.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fanout_internal.h"

#define ROLLOUT_MAX_WAIT_S	60	/* tick at least this often */

/*
 * Migrations "rollout": deployments the gateway refused, so that
 * `upctl campaign <id>' can say why (a refusal creates nothing else).
 */
static const char *const rollout_steps[] = {
	"CREATE TABLE rollout_refusals ("
	"  deployment TEXT PRIMARY KEY,"
	"  reason TEXT NOT NULL,"
	"  serial INTEGER NOT NULL,"
	"  at INTEGER NOT NULL);"
};

static void	 rollout_tick_cb(int, short, void *);

static int64_t
rollout_now(void)
{
	return (sched_clock_system.now(sched_clock_system.arg));
}

/* Sends a record upstream (and to the test hook). */
static void
rollout_send(struct fanout *f, json_t *o)
{
	char	*line;

	if (o == NULL)
		return;
	if (json_object_get(o, "gateway") == NULL)
		json_object_set_new(o, "gateway", json_string(
		    f->conf->gateway_id != NULL ? f->conf->gateway_id : ""));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return;
	if (f->uplink != NULL && uplink_report(f->uplink, line) != 0)
		log_warnx("rollout: cannot queue a report");
	if (f->report_hook != NULL)
		f->report_hook(f->report_arg, line);
	f->reports++;
	free(line);
}

/* A deployment that cannot be planned: log it, say so upstream. */
static void
rollout_refused(struct fanout *f, const struct uplink_manifest *mf,
    const char *id, const char *why)
{
	sqlite3_stmt	*st;

	log_warnx("rollout %s: %s", id, why);
	rollout_send(f, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
	    "type", "campaign", "campaign", id, "deployment", id,
	    "event", "refused", "state", "refused", "reason", why));
	/* Kept for `upctl campaign ID' until a manifest plans it. */
	if (sqlite3_prepare_v2(f->db, "INSERT OR REPLACE INTO "
	    "rollout_refusals (deployment, reason, serial, at) VALUES (?1, "
	    "?2, ?3, ?4)", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, mf->serial);
	sqlite3_bind_int64(st, 4, rollout_now());
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warnx("rollout %s: %s", id, sqlite3_errmsg(f->db));
	sqlite3_finalize(st);
}

/*
 * The prefix "deployment 'ID': " once: the policy parser and some plan
 * errors already name the deployment.
 */
static void
rollout_why(char **why, const char *id, const char *cause)
{
	char	*prefix;

	xasprintf(&prefix, "deployment '%s': ", id);
	if (cause != NULL && strncmp(cause, prefix, strlen(prefix)) == 0)
		*why = xstrdup(cause);
	else
		xasprintf(why, "%s%s", prefix, cause != NULL ? cause :
		    "cannot plan");
	free(prefix);
}

static void
rollout_save(struct fo_rollout *ro)
{
	char	*cause = NULL;

	if (sched_db_save(ro->f->sdb, ro->sc, &cause) == -1) {
		log_warnx("rollout %s: %s", ro->sc->id, cause);
		free(cause);
	}
}

static struct fo_rollout *
rollout_add(struct fanout *f, struct sched_campaign *sc)
{
	struct fo_rollout	*ro;

	ro = xcalloc(1, sizeof(*ro));
	ro->f = f;
	ro->sc = sc;
	TAILQ_INSERT_TAIL(&f->rollouts, ro, entry);
	return (ro);
}

static bool
rollout_live(const struct fo_rollout *ro)
{
	return (ro->sc->state != SCHED_C_DONE &&
	    ro->sc->state != SCHED_C_CANCELLED);
}

/*
 * Ticks: a live rollout, and a cancelled one whose activating nodes may
 * still report (their watchdog ends them, with a final record).
 */
static bool
rollout_ticks(const struct fo_rollout *ro)
{
	return (sched_campaign_live(ro->sc));
}

/* ------------------------------------------------------------------ */
/* Nodes                                                                */

/* What the scheduler knows of a node, from the registry. */
static void
rollout_node(struct fanout *f, const struct registry_node *rn,
    struct sched_node *sn)
{
	struct eng_link		*l;
	struct eng_link_info	 li;
	size_t			 i;

	sched_node_init(sn, rn->id);
	fanout__strlcpy(sn->hw, rn->hw, sizeof(sn->hw));
	sn->ncomp = rn->ncomp;
	for (i = 0; i < rn->ncomp && i < UP_MAX_COMPONENTS; i++)
		sn->comp[i] = rn->comp[i];
	fanout__strlcpy(sn->transport, rn->transport, sizeof(sn->transport));
	if ((l = eng_link_find(f->eng, rn->transport)) != NULL) {
		eng_link_info(l, &li);
		sn->broadcast = (li.caps.flags & TP_CAP_BROADCAST) != 0;
	}
	for (i = 0; i < rn->ntags && i < SCHED_MAX_TAGS; i++)
		fanout__strlcpy(sn->tags[i], rn->tags[i], sizeof(sn->tags[i]));
	sn->ntags = i;
	/* The registry keeps the ANNOUNCE's "unknown" values as they are. */
	sn->battery = rn->battery;
	sn->rssi_dbm = rn->rssi_dbm;
	sn->snr_db = rn->snr_db;
	sn->reported = rn->last_seen;
	sn->parent = rn->parent;
	sn->level = rn->level;
	sn->role = rn->role <= SCHED_ROLE_GATEWAY ?
	    (enum sched_role)rn->role : SCHED_ROLE_LEAF;
}

struct rollout_nodes {
	struct fanout		*f;
	struct sched_node	*v;
	size_t			 n, cap;
};

static void
rollout_nodes_cb(void *arg, const struct registry_node *rn)
{
	struct rollout_nodes	*a = arg;

	if (a->n == a->cap) {
		a->cap = a->cap != 0 ? a->cap * 2 : 64;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	rollout_node(a->f, rn, &a->v[a->n++]);
}

void
rollout__node_seen(struct fanout *f, const struct registry_node *rn)
{
	struct fo_rollout	*ro;
	struct sched_node	 sn;
	int64_t			 now = rollout_now();
	int			 rc;

	if (TAILQ_EMPTY(&f->rollouts))
		return;
	rollout_node(f, rn, &sn);
	TAILQ_FOREACH(ro, &f->rollouts, entry) {
		if (ro->sc->state == SCHED_C_CANCELLED)
			continue;
		if ((rc = sched_node_seen(ro->sc, &sn, now)) == -1) {
			log_warnx("rollout %s: out of memory", ro->sc->id);
			continue;
		}
		if (rc == 1)
			log_info("rollout %s: node 0x%016" PRIx64 " joins",
			    ro->sc->id, rn->id);
		rollout_save(ro);
	}
	/* Facts may open a gate; a newcomer may be offered. */
	rollout__kick(f);
}

/* Every node of the registry, as the scheduler sees them (owned v). */
static void
rollout_registry(struct fanout *f, struct rollout_nodes *a)
{
	memset(a, 0, sizeof(*a));
	a->f = f;
	registry_foreach(f->reg, rollout_nodes_cb, a);
}

/*
 * What a deployment's names may refer to here (sched_names.c): its
 * packages, the registry's nodes and the transport instances we run.
 * `tps' has room for UB_MAX_TRANSPORTS names.
 */
static void
rollout_known(struct fanout *f, const struct cache_pkg *pkgs, size_t npkgs,
    const struct rollout_nodes *a, const char **tps, struct sched_known *k)
{
	struct eng_link	*l;
	size_t		 i;

	memset(k, 0, sizeof(*k));
	k->pkgs = pkgs;
	k->npkgs = npkgs;
	k->gateway = 1;
	k->nodes = a->v;
	k->nnodes = a->n;
	for (i = 0; i < UB_MAX_TRANSPORTS &&
	    (l = eng_link_at(f->eng, i)) != NULL; i++)
		tps[i] = eng_link_name(l);
	k->transports = tps;
	k->ntransports = i;
}

/* ------------------------------------------------------------------ */
/* Manifest                                                             */

static void
rollout_refusal_forget(struct fanout *f, const char *id)
{
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(f->db, "DELETE FROM rollout_refusals WHERE "
	    "deployment = ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	(void)sqlite3_step(st);
	sqlite3_finalize(st);
}

/* The refusal of deployment `id' as a view, or NULL. */
static json_t *
rollout_refusal_json(struct fanout *f, const char *id)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL;
	char		 t[21];

	if (sqlite3_prepare_v2(f->db, "SELECT reason, serial, at FROM "
	    "rollout_refusals WHERE deployment = ?1", -1, &st,
	    NULL) != SQLITE_OK)
		return (NULL);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		sched_format_time(sqlite3_column_int64(st, 2), t);
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}",
		    "id", id, "kind", "refused", "deployment", id,
		    "state", "refused", "reason",
		    (const char *)sqlite3_column_text(st, 0),
		    "manifest_serial", (json_int_t)sqlite3_column_int64(st, 1),
		    "refused", t);
	}
	sqlite3_finalize(st);
	return (o);
}

int
rollout__deployment(struct fanout *f, const struct uplink_manifest *mf,
    const struct uplink_deployment *ud)
{
	const char		*pj = ud->policy_json;
	struct sched_policy	 p;
	struct sched_campaign	*sc;
	struct rollout_nodes	 a;
	struct sched_known	 known;
	const char		*tps[UB_MAX_TRANSPORTS];
	struct cache_pkg	*pkgs;
	json_t			*warnings, *w;
	size_t			 i, k, n = 0;
	char			*cause = NULL, *why = NULL;
	bool			 plain;

	/*
	 * No policy and no tags: campaign.c's issue-2 path plans it, once
	 * its names are checked here.
	 */
	plain = (pj == NULL || *pj == '\0' || strcmp(pj, "{}") == 0) &&
	    ud->ntags == 0;
	if (plain && ud->nhw == 0)
		return (0);
	/* One campaign per deployment; a manifest seen again changes none. */
	if (!plain && rollout__find(f, ud->id) != NULL)
		return (1);

	if (sched_policy_parse(ud->id,
	    (const char (*)[CACHE_NAME_MAX + 1])ud->hw, ud->nhw,
	    (const char (*)[CACHE_NAME_MAX + 1])ud->tags, ud->ntags, pj, &p,
	    &cause) == -1) {
		rollout_why(&why, ud->id, cause != NULL ? cause :
		    "bad policy");
		rollout_refused(f, mf, ud->id, why);
		free(why);
		free(cause);
		return (1);
	}
	pkgs = xcalloc(SCHED_MAX_PKGS, sizeof(*pkgs));
	for (i = 0; i < ud->npkgs; i++)
		for (k = 0; k < mf->npkgs; k++)
			if (strcmp(mf->pkgs[k].id, ud->pkgs[i]) == 0) {
				if (n == SCHED_MAX_PKGS) {
					xasprintf(&why, "deployment '%s': more "
					    "than %d packages", ud->id,
					    SCHED_MAX_PKGS);
					goto refuse;
				}
				pkgs[n++] = mf->pkgs[k];
				break;
			}
	rollout_registry(f, &a);
	/* A name nothing attests is a mistake: refuse, naming it. */
	rollout_known(f, pkgs, n, &a, tps, &known);
	if (sched_policy_check(&p, &known, &cause) == -1) {
		free(a.v);
		why = cause;
		goto refuse;
	}
	if (plain) {
		free(a.v);
		free(pkgs);
		sched_policy_clear(&p);
		return (0);
	}
	warnings = sched_policy_warnings(&p, &known);
	json_array_foreach(warnings, i, w)
		log_warnx("rollout %s: %s", ud->id, json_string_value(w));
	json_decref(warnings);
	sc = sched_campaign_plan(ud->id, &p, pkgs, n, a.v, a.n, rollout_now(),
	    &cause);
	free(a.v);
	if (sc == NULL) {
		rollout_why(&why, ud->id, cause);
		free(cause);
		goto refuse;
	}
	free(pkgs);
	sched_policy_clear(&p);
	rollout_refusal_forget(f, ud->id);
	log_info("rollout %s: planned, %zu nodes, %zu items, %zu stages",
	    sc->id, sc->nmembers, sc->nitems, sc->nstages);
	rollout_save(rollout_add(f, sc));
	db_commit_now(f->db);
	rollout__kick(f);
	return (1);

refuse:
	rollout_refused(f, mf, ud->id, why);
	free(why);
	free(pkgs);
	sched_policy_clear(&p);
	return (1);
}

/* ------------------------------------------------------------------ */
/* Decisions                                                            */

/* The campaign member carrying out an item's current step, or NULL. */
static struct fo_member *
rollout_member(struct fo_rollout *ro, const struct sched_item *it)
{
	const struct cache_pkg	*p;
	struct fo_campaign	*c;

	if ((p = sched_item_pkg(ro->sc, it)) == NULL ||
	    (c = campaign__for_rollout(ro->f, ro->sc->id, p)) == NULL)
		return (NULL);
	return (campaign__member(c, it->node_id));
}

static void
rollout_offer(struct fo_rollout *ro, const struct sched_decision *d)
{
	struct sched_campaign		*sc = ro->sc;
	struct sched_item		*it = &sc->items[d->item];
	const struct registry_node	*rn;
	const struct cache_pkg		*p = NULL;
	struct sched_member		*sm = &sc->members[it->member];
	struct fo_campaign		*c;
	const char			*from;
	size_t				 i;

	for (i = 0; i < sc->npkgs; i++)
		if (strcmp(sc->pkgs[i].id, d->pkg) == 0)
			p = &sc->pkgs[i];
	if (p == NULL || (c = campaign__for_rollout(ro->f, sc->id, p)) ==
	    NULL) {
		log_warnx("rollout %s: node 0x%016" PRIx64 ": package %s "
		    "cannot be offered", sc->id, d->node_id, d->pkg);
		sched_item_result(sc, d->node_id, d->component,
		    UP_R_UNSUPPORTED, 0, rollout_now());
		return;
	}
	/* A delta starts from its base; a full image from what runs. */
	if (p->kind == UP_KIND_DELTA && p->base_version[0] != '\0')
		from = p->base_version;
	else if ((from = sched_node_version(&sm->node, d->component)) == NULL)
		from = it->from;
	rn = registry_get(ro->f->reg, d->node_id);
	campaign__offer(c, d->node_id, rn != NULL ? rn->transport :
	    sm->node.transport, rn != NULL ? &rn->addr : NULL, from,
	    d->hold != 0);
}

static void
rollout_apply(struct fo_rollout *ro, const struct sched_out *out)
{
	struct sched_campaign	*sc = ro->sc;
	const struct sched_decision *d;
	struct fo_member	*m;
	size_t			 i;

	for (i = 0; i < out->n; i++) {
		d = &out->d[i];
		switch (d->kind) {
		case SCHED_D_OFFER:
			rollout_offer(ro, d);
			break;
		case SCHED_D_ACTIVATE:
			if ((m = rollout_member(ro, &sc->items[d->item])) !=
			    NULL) {
				log_info("rollout %s: node 0x%016" PRIx64
				    " %s may activate", sc->id, d->node_id,
				    d->component);
				campaign__release(m);
			}
			break;
		case SCHED_D_ABORT:
			if ((m = rollout_member(ro, &sc->items[d->item])) !=
			    NULL)
				campaign__abort_member(m, (uint8_t)d->code);
			break;
		case SCHED_D_EVENT:
			log_info("rollout %s: %s%s%s", sc->id,
			    sched_event_str(d->event), d->text[0] != '\0' ?
			    ": " : "", d->text);
			rollout_send(ro->f, sched_event_json(sc, d));
			break;
		}
	}
}

/*
 * Every item's final state goes upstream exactly once (issue 7).  The
 * items that end through a node's answer are reported with its record
 * (rollout__report_extra); the others (skipped, cancelled or expired
 * before anything was sent, failed by propagation) here, from the
 * scheduler's item.  sched_item_report_due keeps the count: nothing
 * follows a final record, and a provisional one says so.
 */
static void
rollout_flush(struct fo_rollout *ro)
{
	struct sched_campaign	*sc = ro->sc;
	json_t			*o;
	size_t			 i;
	int			 level;
	char			 ts[21];

	sc->final_after_s = ro->f->conf->final_after_s;
	for (i = 0; i < sc->nitems; i++) {
		if ((level = sched_item_report_due(sc, i, rollout_now())) ==
		    SCHED_REP_NONE || (o = sched_item_json(sc, i)) == NULL)
			continue;
		json_object_set_new(o, "final",
		    json_boolean(level == SCHED_REP_FINAL));
		json_object_set(o, "item_state", json_object_get(o, "state"));
		sched_format_time(rollout_now(), ts);
		json_object_set_new(o, "ts", json_string(ts));
		rollout_send(ro->f, o);
		sched_item_reported(sc, i, level);
	}
}

static void
rollout_tick(struct fo_rollout *ro)
{
	struct sched_out	 out;
	int			 n;

	memset(&out, 0, sizeof(out));
	ro->sc->final_after_s = ro->f->conf->final_after_s;
	if ((n = sched_tick(ro->sc, &sched_clock_system, &out)) == -1)
		log_warnx("rollout %s: tick: out of memory", ro->sc->id);
	else if (n > 0)
		rollout_apply(ro, &out);
	sched_out_free(&out);
	rollout_flush(ro);
	rollout_save(ro);
	if (n > 0)
		db_commit_now(ro->f->db);
}

static void
rollout_tick_cb(int fd, short ev, void *arg)
{
	struct fanout		*f = arg;
	struct fo_rollout	*ro;
	struct timeval		 tv;
	int64_t			 now, wake;

	f->tick_soon = false;
	if (f->stopping)
		return;
	TAILQ_FOREACH(ro, &f->rollouts, entry)
		if (rollout_ticks(ro))
			rollout_tick(ro);
	now = rollout_now();
	wake = now + ROLLOUT_MAX_WAIT_S;
	TAILQ_FOREACH(ro, &f->rollouts, entry)
		if (rollout_ticks(ro) && ro->sc->next_wake > 0 &&
		    ro->sc->next_wake < wake)
			wake = ro->sc->next_wake;
	if (TAILQ_EMPTY(&f->rollouts))
		return;
	/* Whole seconds: windows and soak times are in seconds. */
	tv.tv_sec = wake > now ? wake - now : 1;
	tv.tv_usec = 0;
	evtimer_add(f->tick_ev, &tv);
}

void
rollout__kick(struct fanout *f)
{
	struct timeval	 tv = { 0, 0 };

	if (f->tick_ev == NULL || f->tick_soon || f->stopping)
		return;
	f->tick_soon = true;
	evtimer_add(f->tick_ev, &tv);
}

void
rollout__cron(struct fanout *f)
{
	struct fo_rollout	*ro;
	int64_t			 now = rollout_now();

	TAILQ_FOREACH(ro, &f->rollouts, entry)
		if (rollout_ticks(ro) && ro->sc->next_wake <= now) {
			rollout__kick(f);
			break;
		}
}

/* ------------------------------------------------------------------ */
/* What the nodes say                                                   */

/* The item a member's result is about: its current step's package. */
static struct sched_item *
rollout_item(struct fo_member *m, struct fo_rollout **rop)
{
	struct fo_rollout	*ro;
	struct sched_item	*it;
	const struct cache_pkg	*p;

	if ((ro = rollout__find(m->c->f, m->c->rollout)) == NULL ||
	    (it = sched_item_find(ro->sc, m->node, m->c->pkg.component)) ==
	    NULL)
		return (NULL);
	/* A late answer about an earlier step of a chain is history. */
	if ((p = sched_item_pkg(ro->sc, it)) != NULL &&
	    strcmp(p->id, m->c->package) != 0)
		return (NULL);
	*rop = ro;
	return (it);
}

void
rollout__verified(struct fo_member *m)
{
	struct fo_rollout	*ro;
	struct sched_item	*it;

	if ((it = rollout_item(m, &ro)) == NULL ||
	    it->state != SCHED_I_ACTIVE)
		return;
	if (sched_item_verified(ro->sc, m->node, it->component,
	    rollout_now()) == 0) {
		/* Download-only ends here: that is the item's result. */
		if (it->state == SCHED_I_DOWNLOADED) {
			sched_item_attempt(ro->sc, m->node, it->component,
			    m->started, fanout__unix_ms());
			campaign__report_verified(m);
		}
		rollout_save(ro);
		rollout__kick(ro->f);
	}
}

void
rollout__result(struct fo_member *m, enum eng_mstate st, uint8_t result)
{
	struct fanout		*f = m->c->f;
	struct fo_rollout	*ro;
	struct sched_item	*it;
	uint64_t		 bytes;

	(void)st;
	if (f->sched_quiet || (it = rollout_item(m, &ro)) == NULL)
		return;
	bytes = m->bytes_sent >= m->bytes_told ?
	    m->bytes_sent - m->bytes_told : 0;
	m->bytes_told = m->bytes_sent;
	sched_item_attempt(ro->sc, m->node, it->component, m->started,
	    m->finished != 0 ? m->finished : fanout__unix_ms());
	sched_item_result(ro->sc, m->node, it->component, result, bytes,
	    rollout_now());
	if (it->fell_back && it->state == SCHED_I_PENDING)
		log_info("rollout %s: node 0x%016" PRIx64 ": %s", ro->sc->id,
		    m->node, it->reason);
	rollout_save(ro);
	rollout__kick(f);
}

void
rollout__skipped(struct fo_member *m, int result, const char *why)
{
	struct fo_rollout	*ro;
	struct sched_item	*it;

	if ((it = rollout_item(m, &ro)) == NULL)
		return;
	if (sched_item_skip(ro->sc, m->node, it->component, result,
	    rollout_now(), why) == 0) {
		rollout_save(ro);
		rollout__kick(ro->f);
	}
}

bool
rollout__will_retry(struct fo_member *m)
{
	struct fo_rollout	*ro;
	struct sched_item	*it;

	/* Its item still wants this package: the node is offered again. */
	if ((it = rollout_item(m, &ro)) == NULL)
		return (false);
	return (it->state == SCHED_I_RETRY || it->state == SCHED_I_PENDING ||
	    it->state == SCHED_I_ACTIVE);
}

int
rollout__report_extra(struct fo_member *m, json_t *o)
{
	struct fo_rollout	*ro;
	struct sched_item	*it;
	json_t			*r;
	const char		*k;
	static const char *const keys[] = { "reason", "path", "packages",
	    "stage", "retries", NULL };
	size_t			 i, idx;
	int			 level;

	if ((ro = rollout__find(m->c->f, m->c->rollout)) == NULL ||
	    (it = sched_item_find(ro->sc, m->node, m->c->pkg.component)) ==
	    NULL)
		return (0);
	idx = (size_t)(it - ro->sc->items);
	/*
	 * An attempt of an open item is provisional; a final item's record
	 * is final unless its truth may still change, and never repeated:
	 * nothing follows a final record (docs/campaigns.md, "Reports").
	 */
	ro->sc->final_after_s = ro->f->conf->final_after_s;
	if (SCHED_I_FINAL(it->state)) {
		if ((level = sched_item_report_due(ro->sc, idx,
		    rollout_now())) == SCHED_REP_NONE) {
			log_debug("rollout %s: node 0x%016" PRIx64 " %s: its "
			    "record went already", ro->sc->id, m->node,
			    it->component);
			return (it->reported == SCHED_REP_FINAL ? 1 : -1);
		}
	} else
		level = SCHED_REP_PROVISIONAL;
	if ((r = sched_item_json(ro->sc, idx)) == NULL)
		return (0);
	sched_item_reported(ro->sc, idx, level);
	rollout_save(ro);
	json_object_set_new(o, "final", json_boolean(level ==
	    SCHED_REP_FINAL));
	/* A final record spans the item's attempts. */
	if (level == SCHED_REP_FINAL)
		json_object_set(o, "duration_ms", json_object_get(r,
		    "duration_ms"));
	/* "campaign" is the rollout; the package's campaign stays too. */
	json_object_set(o, "session_campaign", json_object_get(o,
	    "campaign"));
	json_object_set_new(o, "campaign", json_string(ro->sc->id));
	for (i = 0; (k = keys[i]) != NULL; i++)
		if (json_object_get(r, k) != NULL)
			json_object_set(o, k, json_object_get(r, k));
	json_object_set(o, "item_state", json_object_get(r, "state"));
	json_object_set(o, "item_from", json_object_get(r, "from"));
	json_object_set(o, "item_to", json_object_get(r, "to"));
	json_decref(r);
	return (0);
}

/* ------------------------------------------------------------------ */
/* Technician actions, views                                            */

struct fo_rollout *
rollout__find(struct fanout *f, const char *id)
{
	struct fo_rollout	*ro;
	struct sched_campaign	*sc;
	char			*cause = NULL;

	TAILQ_FOREACH(ro, &f->rollouts, entry)
		if (strcmp(ro->sc->id, id) == 0)
			return (ro);
	if (f->sdb == NULL || *id == '\0')
		return (NULL);
	/* A finished one: loaded for its views. */
	if ((sc = sched_db_load(f->sdb, id, &cause)) == NULL) {
		free(cause);
		return (NULL);
	}
	return (rollout_add(f, sc));
}

int
rollout__offload(struct fanout *f, const char *id)
{
	struct fo_rollout	*ro;

	if (*id == '\0')
		return (0);
	TAILQ_FOREACH(ro, &f->rollouts, entry) {
		if (strcmp(ro->sc->id, id) != 0)
			continue;
		switch (ro->sc->policy.offload) {
		case SCHED_OFFLOAD_MODULE:
			return (1);
		case SCHED_OFFLOAD_UP:
			return (-1);
		default:
			return (0);
		}
	}
	return (0);
}

int
rollout__action(struct fo_rollout *ro, const char *action, char **cause)
{
	struct sched_out	 out;
	int			 a, rc;

	if ((a = sched_action_parse(action)) == -1) {
		xasprintf(cause, "unknown action \"%s\" (approve, pause, "
		    "resume, cancel or force-cancel)", action);
		return (-1);
	}
	memset(&out, 0, sizeof(out));
	rc = sched_campaign_action(ro->sc, (enum sched_action)a,
	    rollout_now(), &out, cause);
	if (rc == 0) {
		rollout_apply(ro, &out);
		rollout_flush(ro);
		rollout_save(ro);
		db_commit_now(ro->f->db);
		rollout__kick(ro->f);
	}
	sched_out_free(&out);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

static void
rollout_load_cb(void *arg, const char *id)
{
	struct fanout		*f = arg;
	struct sched_campaign	*sc;
	char			*cause = NULL;

	if ((sc = sched_db_load(f->sdb, id, &cause)) == NULL) {
		log_warnx("rollout %s: cannot resume: %s", id,
		    cause != NULL ? cause : "?");
		free(cause);
		return;
	}
	log_info("rollout %s: resumed (%s, stage %d)", sc->id,
	    sched_cstate_str(sc->state), sc->stage);
	rollout_add(f, sc);
}

int
rollout__init(struct fanout *f, char **cause)
{
	struct fo_campaign	*c;
	struct fo_session	*s;

	if (db_migrate(f->db, "rollout", rollout_steps,
	    (int)(sizeof(rollout_steps) / sizeof(rollout_steps[0])),
	    cause) == -1)
		return (-1);
	if ((f->sdb = sched_db_open(f->db, cause)) == NULL)
		return (-1);
	if ((f->tick_ev = evtimer_new(f->base, rollout_tick_cb, f)) == NULL)
		fatalx("rollout: evtimer_new");
	if (sched_db_foreach_active(f->sdb, rollout_load_cb, f) == -1) {
		xasprintf(cause, "rollout: cannot list active campaigns");
		return (-1);
	}
	/* Sessions loaded before their rollout: the campaign's way. */
	TAILQ_FOREACH(c, &f->campaigns, entry)
		TAILQ_FOREACH(s, &c->sessions, centry)
			eng_session_set_offload(s->es,
			    rollout__offload(f, c->rollout));
	if (!TAILQ_EMPTY(&f->rollouts))
		rollout__kick(f);
	return (0);
}

void
rollout__fini(struct fanout *f)
{
	struct fo_rollout	*ro;

	while ((ro = TAILQ_FIRST(&f->rollouts)) != NULL) {
		TAILQ_REMOVE(&f->rollouts, ro, entry);
		sched_campaign_free(ro->sc);
		free(ro);
	}
	if (f->tick_ev != NULL)
		event_free(f->tick_ev);
	f->tick_ev = NULL;
	sched_db_free(f->sdb);
	f->sdb = NULL;
}

/* ------------------------------------------------------------------ */
/* Public API (upbridged.h)                                             */

json_t *
fanout_rollout_json(struct fanout *f, const char *id)
{
	struct fo_rollout	*ro;
	struct fo_campaign	*c;
	json_t			*o, *a;

	if ((ro = rollout__find(f, id)) == NULL)
		return (rollout_refusal_json(f, id));
	if ((o = sched_report_json(ro->sc)) == NULL)
		return (NULL);
	json_object_set_new(o, "kind", json_string("rollout"));
	/*
	 * Names that match no node yet, from the registry as it is now:
	 * while the campaign runs, or when it ended having had no item.
	 */
	if (rollout_live(ro) || ro->sc->nitems == 0) {
		struct rollout_nodes	 nodes;
		struct sched_known	 known;
		const char		*tps[UB_MAX_TRANSPORTS];

		rollout_registry(f, &nodes);
		rollout_known(f, ro->sc->pkgs, ro->sc->npkgs, &nodes, tps,
		    &known);
		json_object_set_new(o, "warnings",
		    sched_policy_warnings(&ro->sc->policy, &known));
		free(nodes.v);
	}
	/* The package campaigns (UP sessions) that carry it out. */
	a = json_array();
	TAILQ_FOREACH(c, &f->campaigns, entry)
		if (strcmp(c->rollout, ro->sc->id) == 0)
			json_array_append_new(a, json_pack("{s:s, s:s, s:s}",
			    "id", c->id, "package", c->package, "state",
			    campaign__state_str(c->state)));
	json_object_set_new(o, "campaigns", a);
	return (o);
}

char *
fanout_rollout_csv(struct fanout *f, const char *id)
{
	struct fo_rollout	*ro;

	if ((ro = rollout__find(f, id)) == NULL)
		return (NULL);
	return (sched_report_csv(ro->sc));
}

int
fanout_rollout_action(struct fanout *f, const char *id, const char *action,
    char **cause)
{
	struct fo_rollout	*ro;

	if ((ro = rollout__find(f, id)) == NULL)
		return (1);
	return (rollout__action(ro, action, cause) == 0 ? 0 : -1);
}

json_t *
fanout_rollouts_json(struct fanout *f)
{
	struct fo_rollout	*ro;
	struct sched_counts	 sum, k;
	json_t			*a;
	int			 s;

	a = json_array();
	TAILQ_FOREACH(ro, &f->rollouts, entry) {
		memset(&sum, 0, sizeof(sum));
		for (s = 0; s < (int)ro->sc->nstages; s++) {
			sched_stage_counts(ro->sc, s, &k);
			sum.nodes += k.nodes;
			sum.active += k.active + k.pending;
			sum.succeeded += k.succeeded;
			sum.failed += k.failed;
			sum.skipped += k.skipped;
			sum.cancelled += k.cancelled;
			sum.expired += k.expired;
		}
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, "
		    "s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "id", ro->sc->id,
		    "kind", "rollout", "deployment", ro->sc->policy.deployment,
		    "package", "-", "state", sched_cstate_str(ro->sc->state),
		    "nodes", sum.nodes, "active", sum.active, "updated",
		    sum.succeeded, "failed", sum.failed, "skipped",
		    sum.skipped, "cancelled", sum.cancelled, "expired",
		    sum.expired));
	}
	return (a);
}

/*
 * The watch's rows for live rollouts (`upctl watch'): a rollout that
 * soaks, waits for approval, a window or a retry has no node in a
 * session, and is not "no active campaign".
 */
void
rollout__progress(struct fanout *f, json_t *rows)
{
	struct fo_rollout	*ro;
	struct sched_campaign	*sc;
	const char		*state;
	json_t			*o;

	TAILQ_FOREACH(ro, &f->rollouts, entry) {
		if (!rollout_live(ro))
			continue;
		sc = ro->sc;
		state = sched_cstate_str(sc->state);
		if (sc->state == SCHED_C_RUNNING && sc->nstages > 0 &&
		    sc->srt[sc->stage].state == SCHED_S_SOAKING)
			state = "soaking";
		o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "campaign", sc->id,
		    "kind", "rollout", "state", state, "stage",
		    sc->nstages > 0 ? sc->stages[sc->stage].name : "",
		    "reason", sc->reason);
		json_array_append_new(rows, o);
	}
}

void
fanout_node_changed(struct fanout *f, uint64_t id)
{
	const struct registry_node	*rn;

	if ((rn = registry_get(f->reg, id)) != NULL)
		rollout__node_seen(f, rn);
}
