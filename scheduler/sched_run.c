/*
 * sched_run.c: runtime decisions (docs/campaigns.md, "Decisions").
 *
 * Everything here is a function of the campaign's state and the time the
 * caller's clock gives: no time() call, no I/O.  The caller carries the
 * decisions out (offers, activations, aborts, report records) and saves
 * the campaign (sched_db_save) after each call that changed it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

static const char *const cstate_names[] = { "running", "approval",
    "paused", "halted", "done", "cancelled" };
static const char *const sstate_names[] = { "pending", "active", "soaking",
    "passed", "halted" };
static const char *const istate_names[] = { "pending", "retry", "active",
    "held", "activating", "succeeded", "downloaded", "failed", "skipped",
    "cancelled", "expired" };
static const char *const event_names[] = { "started", "stage-started",
    "stage-passed", "halted", "done", "expired", "cancelled", "approval",
    "paused", "resumed" };
static const char *const action_names[] = { "approve", "pause", "resume",
    "cancel", "force-cancel" };

/* The reason of a running campaign whose plan has no item yet. */
#define SCHED_NO_TARGETS	"waits for targets: no node needs this " \
				"deployment yet"

#define NAME(tab, i)	((size_t)(i) < sizeof(tab) / sizeof(tab[0]) ? \
			    tab[i] : "?")

const char *
sched_cstate_str(enum sched_cstate s)
{
	return (NAME(cstate_names, s));
}

const char *
sched_sstate_str(enum sched_sstate s)
{
	return (NAME(sstate_names, s));
}

const char *
sched_istate_str(enum sched_istate s)
{
	return (NAME(istate_names, s));
}

const char *
sched_event_str(enum sched_event e)
{
	return (NAME(event_names, e));
}

int
sched_action_parse(const char *s)
{
	size_t	 i;

	for (i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (strcmp(s, action_names[i]) == 0)
			return ((int)i);
	return (-1);
}

void
sched_out_reset(struct sched_out *o)
{
	o->n = 0;
}

void
sched_out_free(struct sched_out *o)
{
	free(o->d);
	memset(o, 0, sizeof(*o));
}

static struct sched_decision *
out_add(struct sched_out *o, enum sched_dkind kind)
{
	struct sched_decision	*d;
	size_t			 cap;

	if (o->n == o->cap) {
		cap = o->cap ? o->cap * 2 : 32;
		if ((d = reallocarray(o->d, cap, sizeof(*d))) == NULL)
			return (NULL);
		o->d = d;
		o->cap = cap;
	}
	d = &o->d[o->n++];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->stage = -1;
	return (d);
}

static int
out_item(struct sched_out *o, enum sched_dkind kind,
    const struct sched_campaign *c, size_t i, int code)
{
	const struct sched_item	*it = &c->items[i];
	struct sched_decision	*d;

	if ((d = out_add(o, kind)) == NULL)
		return (-1);
	d->item = i;
	d->node_id = it->node_id;
	strcpy(d->component, it->component);
	if (it->step >= 0 && it->step < it->nsteps)
		strcpy(d->pkg, it->steps[it->step]);
	d->code = code;
	return (0);
}

static int
out_event(struct sched_out *o, enum sched_event ev, int stage,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
out_event(struct sched_out *o, enum sched_event ev, int stage,
    const char *fmt, ...)
{
	struct sched_decision	*d;
	va_list			 ap;

	if ((d = out_add(o, SCHED_D_EVENT)) == NULL)
		return (-1);
	d->event = ev;
	d->stage = stage;
	va_start(ap, fmt);
	vsnprintf(d->text, sizeof(d->text), fmt, ap);
	va_end(ap);
	return (0);
}

void
sched__item_final(struct sched_item *it, enum sched_istate st, int result,
    int64_t now, const char *fmt, ...)
{
	va_list	 ap;

	char	 buf[sizeof(it->reason)];

	/* Formatted first: the reason may quote the old wait text. */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(it->reason, buf, sizeof(buf));
	it->state = st;
	it->result = result;
	it->finished = now;
	it->deadline = 0;
	it->wait[0] = '\0';
	/* Callers whose final state the node may still contradict say so. */
	it->provisional = 0;
	it->dirty = 1;
}

static void
item_wait(struct sched_item *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
item_wait(struct sched_item *it, const char *fmt, ...)
{
	char	 buf[sizeof(it->wait)];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, it->wait) != 0) {
		strcpy(it->wait, buf);
		it->dirty = 1;
	}
}

static void
item_label(const struct sched_item *it, char *buf, size_t len)
{
	snprintf(buf, len, "node 0x%016" PRIx64 " %s %s", it->node_id,
	    it->component, it->to);
}

/* Transient failures are retried; the rest would fail the same again. */
static bool
retryable(int code)
{
	switch (code) {
	case UP_R_CONN_LOST:
	case UP_R_NO_MEMORY:
	case UP_R_LOW_BATTERY:
	case UP_R_ABORTED:
	case UP_R_INTEGRITY:
	case UP_R_FAILED:
	case UP_R_DECLINED:
	case UP_R_BUSY:		/* its slot served another session */
		return (true);
	default:
		return (false);
	}
}

/*
 * A delta step that fails on the node (issue 7, bad input): retrying the
 * same delta fails the same way, so the item falls back to the full
 * image of its target, at once, if the campaign has one for the node's
 * hardware.  The failed delta stays named in the reason.  Returns true
 * when the item fell back.
 */
static bool
delta_fallback(struct sched_campaign *c, struct sched_item *it, int code,
    int64_t now)
{
	const struct cache_pkg	*p, *f = NULL;
	const char		*hw = c->members[it->member].node.hw;
	uint64_t		 bytes = 0;
	size_t			 i;
	int			 s;

	switch (code) {
	case UP_R_INTEGRITY:		/* rebuilt image does not match */
	case UP_R_UNSUPPORTED:		/* format or options the node lacks */
	case UP_R_BASE_MISMATCH:	/* the node runs another base */
	case UP_R_FAILED:		/* the apply failed */
	case UP_R_NO_MEMORY:		/* the decoder's window is too small */
		break;
	default:
		return (false);
	}
	if ((p = sched_item_pkg(c, it)) == NULL || p->kind != UP_KIND_DELTA)
		return (false);
	for (i = 0; i < c->npkgs && f == NULL; i++)
		if (c->pkgs[i].kind == UP_KIND_FULL &&
		    strcmp(c->pkgs[i].component, it->component) == 0 &&
		    strcmp(c->pkgs[i].version, it->to) == 0 &&
		    sched_hw_ok(&c->pkgs[i], hw))
			f = &c->pkgs[i];
	if (f == NULL)
		return (false);
	snprintf(it->reason, sizeof(it->reason), "delta %s failed on the "
	    "node (%s): falls back to the full image %s", p->id,
	    up_result_str(code), f->id);
	/* The steps before this one ran; the full image replaces the rest. */
	strcpy(it->steps[it->step], f->id);
	it->nsteps = it->step + 1;
	for (s = 0; s < it->nsteps; s++)
		for (i = 0; i < c->npkgs; i++)
			if (strcmp(c->pkgs[i].id, it->steps[s]) == 0)
				bytes += c->pkgs[i].size;
	it->bytes = bytes;
	it->fell_back = 1;
	it->result = code;
	it->deadline = 0;
	it->state = SCHED_I_PENDING;
	it->wait[0] = '\0';
	it->dirty = 1;
	(void)now;
	return (true);
}

static void
item_fail(struct sched_campaign *c, struct sched_item *it, int code,
    int64_t now, const char *why)
{
	char	 t[21];

	it->result = code;
	it->deadline = 0;
	it->dirty = 1;
	if (retryable(code) && it->tries <= c->policy.retries) {
		it->state = SCHED_I_RETRY;
		it->next_try = now + sched_retry_delay(&c->policy, it->tries);
		sched_format_time(it->next_try, t);
		snprintf(it->reason, sizeof(it->reason), "%s", why);
		item_wait(it, "retry %u of %u at %s after %s", it->tries,
		    c->policy.retries, t, why);
		return;
	}
	if (retryable(code))
		sched__item_final(it, SCHED_I_FAILED, code, now, "%s (after "
		    "%u attempts)", why, it->tries);
	else
		sched__item_final(it, SCHED_I_FAILED, code, now, "%s", why);
	/* Nobody heard the node: it may still report its truth. */
	it->provisional = code == UP_R_CONN_LOST;
}

/* ------------------------------------------------------------------ */
/* Counts                                                               */

enum mstat { M_NONE = 0, M_PENDING, M_ACTIVE, M_SUCCEEDED, M_SKIPPED,
	M_CANCELLED, M_EXPIRED, M_FAILED };

/* Per member: the aggregate of its items (worst final wins). */
static enum mstat *
member_stats(const struct sched_campaign *c)
{
	enum mstat	*ms, v;
	size_t		 i;
	int		 open;

	if ((ms = calloc(c->nmembers + 1, sizeof(*ms))) == NULL)
		return (NULL);
	for (i = 0; i < c->nitems; i++) {
		const struct sched_item *it = &c->items[i];

		switch (it->state) {
		case SCHED_I_PENDING:
			v = M_PENDING;
			break;
		case SCHED_I_RETRY:
		case SCHED_I_ACTIVE:
		case SCHED_I_HELD:
		case SCHED_I_ACTIVATING:
			v = M_ACTIVE;
			break;
		case SCHED_I_SUCCEEDED:
		case SCHED_I_DOWNLOADED:
			v = M_SUCCEEDED;
			break;
		case SCHED_I_SKIPPED:
			v = M_SKIPPED;
			break;
		case SCHED_I_CANCELLED:
			v = M_CANCELLED;
			break;
		case SCHED_I_EXPIRED:
			v = M_EXPIRED;
			break;
		default:
			v = M_FAILED;
			break;
		}
		open = ms[it->member] == M_PENDING ||
		    ms[it->member] == M_ACTIVE;
		if (v == M_PENDING || v == M_ACTIVE) {
			if (!open || v == M_ACTIVE)
				ms[it->member] = v;
		} else if (!open && v > ms[it->member])
			ms[it->member] = v;
	}
	return (ms);
}

static void
counts_from(const struct sched_campaign *c, const enum mstat *ms, int stage,
    struct sched_counts *k)
{
	size_t	 m;

	memset(k, 0, sizeof(*k));
	for (m = 0; m < c->nmembers; m++) {
		if (c->members[m].stage != stage || ms[m] == M_NONE)
			continue;
		k->nodes++;
		switch (ms[m]) {
		case M_PENDING:
			k->pending++;
			break;
		case M_ACTIVE:
			k->active++;
			break;
		case M_SUCCEEDED:
			k->succeeded++;
			break;
		case M_SKIPPED:
			k->skipped++;
			break;
		case M_CANCELLED:
			k->cancelled++;
			break;
		case M_EXPIRED:
			k->expired++;
			break;
		case M_FAILED:
			k->failed++;
			break;
		default:
			break;
		}
	}
	if (k->nodes > 0) {
		k->success_pct = k->succeeded * 100 / k->nodes;
		k->failure_pct = k->failed * 100 / k->nodes;
	}
}

void
sched_stage_counts(const struct sched_campaign *c, int stage,
    struct sched_counts *k)
{
	enum mstat	*ms;

	memset(k, 0, sizeof(*k));
	if ((ms = member_stats(c)) == NULL)
		return;
	counts_from(c, ms, stage, k);
	free(ms);
}

/* ------------------------------------------------------------------ */
/* The tick                                                             */

static void
wake(struct sched_campaign *c, int64_t t)
{
	if (t > 0 && t < c->next_wake)
		c->next_wake = t;
}

static bool
item_open(enum sched_istate s)
{
	return (s == SCHED_I_ACTIVE || s == SCHED_I_HELD ||
	    s == SCHED_I_ACTIVATING);
}

static int
tick_deadline(struct sched_campaign *c, int64_t now, struct sched_out *o)
{
	enum sched_istate was;
	char	 t[21];
	size_t	 i;

	sched_format_time(c->policy.deadline, t);
	for (i = 0; i < c->nitems; i++) {
		struct sched_item *it = &c->items[i];

		if (SCHED_I_FINAL(it->state))
			continue;
		if (item_open(it->state) &&
		    out_item(o, SCHED_D_ABORT, c, i, UP_R_ABORTED) == -1)
			return (-1);
		was = it->state;
		sched__item_final(it, SCHED_I_EXPIRED, it->result, now,
		    "deadline %s passed%s%s", t, it->wait[0] ? "; was: " : "",
		    it->wait);
		/* An activating node may be switching: its result decides. */
		it->provisional = was == SCHED_I_ACTIVATING;
	}
	c->state = SCHED_C_DONE;
	c->finished = now;
	snprintf(c->reason, sizeof(c->reason), "deadline %s passed", t);
	c->dirty = 1;
	return (out_event(o, SCHED_EV_EXPIRED, c->stage, "%s", c->reason));
}

static int
tick_watchdog(struct sched_campaign *c, int64_t now, struct sched_out *o)
{
	char	 why[96];
	size_t	 i;

	for (i = 0; i < c->nitems; i++) {
		struct sched_item *it = &c->items[i];

		if ((it->state != SCHED_I_ACTIVE &&
		    it->state != SCHED_I_ACTIVATING) || it->deadline == 0)
			continue;
		if (now < it->deadline) {
			wake(c, it->deadline);
			continue;
		}
		if (out_item(o, SCHED_D_ABORT, c, i, UP_R_CONN_LOST) == -1)
			return (-1);
		snprintf(why, sizeof(why), "watchdog: no result within %u s",
		    c->policy.node_timeout_s);
		if (c->state == SCHED_C_CANCELLED) {
			sched__item_final(it, SCHED_I_CANCELLED, UP_R_CONN_LOST,
			    now, "cancelled; %s", why);
			it->provisional = 1;
		} else
			item_fail(c, it, UP_R_CONN_LOST, now, why);
	}
	return (0);
}

static bool
atomic_peer(const struct sched_campaign *c, const struct sched_item *a,
    const struct sched_item *b)
{
	return (a != b && a->atomic >= 0 && a->atomic == b->atomic &&
	    (c->policy.atomic[a->atomic].nnodes > 0 ||
	    a->node_id == b->node_id));
}

/* Dependants of failed items stop; so do atomic peers. */
static int
tick_propagate(struct sched_campaign *c, int64_t now, struct sched_out *o)
{
	struct sched_item	*it, *f;
	char			 name[96];
	size_t			 i, e, j;
	int			 changed = 1, activated;

	while (changed) {
		changed = 0;
		for (i = 0; i < c->nitems; i++) {
			it = &c->items[i];
			if (it->state != SCHED_I_PENDING &&
			    it->state != SCHED_I_RETRY)
				continue;
			for (e = c->edge_in[i]; e < c->edge_in[i + 1]; e++) {
				f = &c->items[c->edges[e].from];
				if (c->edges[e].kind != SCHED_E_REQUIRE ||
				    !SCHED_I_FINAL(f->state) ||
				    f->state == SCHED_I_SUCCEEDED ||
				    f->state == SCHED_I_DOWNLOADED)
					continue;
				item_label(f, name, sizeof(name));
				sched__item_final(it, SCHED_I_SKIPPED,
				    UP_R_DEPENDENCY, now, "%s %s: %s (%s)",
				    c->edges[e].why, name,
				    sched_istate_str(f->state),
				    up_result_str(f->result));
				changed = 1;
				break;
			}
		}
	}
	/* Atomic groups: all activate or none does. */
	for (i = 0; i < c->nitems; i++) {
		f = &c->items[i];
		if (f->atomic < 0 || !SCHED_I_FINAL(f->state) ||
		    f->state == SCHED_I_SUCCEEDED ||
		    f->state == SCHED_I_DOWNLOADED)
			continue;
		activated = 0;
		for (j = 0; j < c->nitems; j++)
			if (atomic_peer(c, f, &c->items[j]) &&
			    (c->items[j].state == SCHED_I_ACTIVATING ||
			    c->items[j].state == SCHED_I_SUCCEEDED))
				activated = 1;
		item_label(f, name, sizeof(name));
		for (j = 0; j < c->nitems; j++) {
			it = &c->items[j];
			if (!atomic_peer(c, f, it))
				continue;
			if (it->state == SCHED_I_SUCCEEDED && activated &&
			    f->result == UP_R_ROLLED_BACK) {
				sched__item_final(it, SCHED_I_FAILED,
				    UP_R_DEPENDENCY, now, "atomic group '%s': "
				    "%s rolled back after activation; this "
				    "node runs %s %s and needs a rollback",
				    c->policy.atomic[f->atomic].name, name,
				    it->component, it->to);
				continue;
			}
			if (SCHED_I_FINAL(it->state) ||
			    it->state == SCHED_I_ACTIVATING)
				continue;
			if (item_open(it->state) && out_item(o, SCHED_D_ABORT,
			    c, j, UP_R_DEPENDENCY) == -1)
				return (-1);
			sched__item_final(it, SCHED_I_SKIPPED, UP_R_DEPENDENCY,
			    now, "atomic group '%s': %s %s",
			    c->policy.atomic[f->atomic].name, name,
			    sched_istate_str(f->state));
		}
	}
	return (0);
}

/* Stage advance/halt.  Returns 0, or -1 on allocation failure. */
static int
tick_stages(struct sched_campaign *c, int64_t now, struct sched_out *o)
{
	struct sched_counts	 k;
	struct sched_stage_rt	*r;
	struct sched_stage	*s;
	enum mstat		*ms;
	int			 st;

	if ((ms = member_stats(c)) == NULL)
		return (-1);
	for (st = c->stage; st < (int)c->nstages; st++) {
		c->stage = st;
		r = &c->srt[st];
		s = &c->stages[st];
		counts_from(c, ms, st, &k);
		if (r->state == SCHED_S_PENDING) {
			if (s->approve) {
				c->state = SCHED_C_APPROVAL;
				snprintf(c->reason, sizeof(c->reason), "stage "
				    "'%s' waits for approval", s->name);
				c->dirty = 1;
				free(ms);
				return (out_event(o, SCHED_EV_APPROVAL, st,
				    "%s", c->reason));
			}
			r->state = SCHED_S_ACTIVE;
			r->started = now;
			c->dirty = 1;
			if (out_event(o, SCHED_EV_STAGE_STARTED, st, "stage "
			    "'%s' started: %u nodes", s->name, k.nodes) == -1)
				goto oom;
		}
		if (r->state == SCHED_S_PASSED)
			continue;
		if (k.nodes == 0) {
			r->state = SCHED_S_PASSED;
			r->finished = now;
			c->dirty = 1;
			continue;
		}
		if ((r->state == SCHED_S_ACTIVE ||
		    r->state == SCHED_S_SOAKING) && !r->overridden &&
		    k.failed > 0 && k.failure_pct > s->failure_pct) {
			r->state = SCHED_S_HALTED;
			c->state = SCHED_C_HALTED;
			snprintf(c->reason, sizeof(c->reason), "stage '%s': "
			    "%u of %u nodes failed (%u%% > %u%%)", s->name,
			    k.failed, k.nodes, k.failure_pct, s->failure_pct);
			c->dirty = 1;
			free(ms);
			return (out_event(o, SCHED_EV_HALTED, st, "%s",
			    c->reason));
		}
		if (r->state == SCHED_S_ACTIVE) {
			/*
			 * A success threshold of 0 is no threshold (the
			 * implicit stage of a policy without stages): the
			 * stage passes once its nodes are final, never
			 * halts for want of successes.
			 */
			if (k.success_pct >= s->success_pct &&
			    k.succeeded > 0) {
				r->state = SCHED_S_SOAKING;
				r->met_at = now;
				c->dirty = 1;
			} else if (k.pending + k.active == 0 &&
			    !r->overridden && s->success_pct > 0) {
				r->state = SCHED_S_HALTED;
				c->state = SCHED_C_HALTED;
				snprintf(c->reason, sizeof(c->reason),
				    "stage '%s': %u of %u nodes succeeded "
				    "(%u%% < %u%%)", s->name, k.succeeded,
				    k.nodes, k.success_pct, s->success_pct);
				c->dirty = 1;
				free(ms);
				return (out_event(o, SCHED_EV_HALTED, st, "%s",
				    c->reason));
			} else if (k.pending + k.active == 0) {
				r->state = SCHED_S_SOAKING;
				r->met_at = now;
				c->dirty = 1;
			}
		}
		if (r->state == SCHED_S_SOAKING) {
			if (now < r->met_at + (int64_t)s->soak_s) {
				wake(c, r->met_at + s->soak_s);
				break;
			}
			r->state = SCHED_S_PASSED;
			r->finished = now;
			c->dirty = 1;
			if (out_event(o, SCHED_EV_STAGE_PASSED, st, "stage "
			    "'%s' passed: %u of %u nodes succeeded (%u%%)",
			    s->name, k.succeeded, k.nodes,
			    k.success_pct) == -1)
				goto oom;
			continue;
		}
		break;
	}
	if (c->stage >= (int)c->nstages)
		c->stage = (int)c->nstages - 1;
	free(ms);
	return (0);
oom:
	free(ms);
	return (-1);
}

struct tp_count {
	const char	*transport;
	uint32_t	 n;
};

static uint32_t *
conc_slot(struct tp_count *tc, size_t *ntc, const char *tp)
{
	size_t	 i;

	for (i = 0; i < *ntc; i++)
		if (strcmp(tc[i].transport, tp) == 0)
			return (&tc[i].n);
	if (*ntc == 64)
		return (NULL);
	tc[*ntc].transport = tp;
	tc[*ntc].n = 0;
	return (&tc[(*ntc)++].n);
}

static uint32_t
conc_limit(const struct sched_policy *p, const char *tp)
{
	size_t	 i;

	for (i = 0; i < p->nconc; i++)
		if (strcmp(p->conc[i].transport, tp) == 0)
			return (p->conc[i].max);
	return (p->concurrency);
}

/* Are the item's predecessors done?  If not, why[] says which. */
static bool
preds_ok(const struct sched_campaign *c, size_t i, char *why, size_t len)
{
	const struct sched_item	*f;
	char			 name[96];
	size_t			 e;

	for (e = c->edge_in[i]; e < c->edge_in[i + 1]; e++) {
		f = &c->items[c->edges[e].from];
		if (f->state == SCHED_I_SUCCEEDED ||
		    f->state == SCHED_I_DOWNLOADED)
			continue;
		if (c->edges[e].kind == SCHED_E_ORDER &&
		    SCHED_I_FINAL(f->state))
			continue;
		item_label(f, name, sizeof(name));
		snprintf(why, len, "waits for %s (%s)", name, c->edges[e].why);
		return (false);
	}
	return (true);
}

static int
tick_offers(struct sched_campaign *c, int64_t now, int32_t off,
    struct sched_out *o)
{
	const struct sched_policy	*p = &c->policy;
	struct tp_count			 tc[64];
	struct sched_item		*it;
	const struct sched_node		*n;
	size_t				 ntc = 0, i;
	uint32_t			*cnt, lim;
	int64_t				 next_open;
	bool				 open;
	char				 t[21], why[SCHED_REASON_MAX + 1];

	for (i = 0; i < c->nitems; i++)
		if (c->items[i].state == SCHED_I_ACTIVE &&
		    (cnt = conc_slot(tc, &ntc,
		    c->members[c->items[i].member].node.transport)) != NULL)
			(*cnt)++;
	open = sched_window_open(p, now, off, &next_open);
	for (i = 0; i < c->nitems; i++) {
		it = &c->items[i];
		if (it->state != SCHED_I_PENDING &&
		    it->state != SCHED_I_RETRY)
			continue;
		n = &c->members[it->member].node;
		if (c->srt[c->members[it->member].stage].state ==
		    SCHED_S_PENDING) {
			item_wait(it, "stage '%s' not started",
			    c->stages[c->members[it->member].stage].name);
			continue;
		}
		if (now < p->start) {
			sched_format_time(p->start, t);
			item_wait(it, "campaign starts at %s", t);
			wake(c, p->start);
			continue;
		}
		if (!preds_ok(c, i, why, sizeof(why))) {
			item_wait(it, "%s", why);
			continue;
		}
		if (it->state == SCHED_I_RETRY && now < it->next_try) {
			wake(c, it->next_try);
			continue;
		}
		if (!open) {
			if (next_open == INT64_MAX)
				item_wait(it, "no maintenance window opens");
			else {
				sched_format_time(next_open, t);
				item_wait(it, "window closed; opens %s", t);
				wake(c, next_open);
			}
			continue;
		}
		if (!sched_gate_ok(p, n, why, sizeof(why))) {
			item_wait(it, "gate: %s", why);
			continue;
		}
		lim = conc_limit(p, n->transport);
		cnt = conc_slot(tc, &ntc, n->transport);
		if (lim > 0 && cnt != NULL && *cnt >= lim) {
			item_wait(it, "concurrency: %u in progress on '%s'",
			    *cnt, n->transport);
			continue;
		}
		if (out_item(o, SCHED_D_OFFER, c, i, 0) == -1)
			return (-1);
		o->d[o->n - 1].hold = p->mode != SCHED_MODE_INSTALL_NOW ||
		    it->atomic >= 0;
		if (cnt != NULL)
			(*cnt)++;
		it->state = SCHED_I_ACTIVE;
		it->tries++;
		if (it->started == 0)
			it->started = now;
		it->deadline = now + p->node_timeout_s;
		wake(c, it->deadline);
		it->wait[0] = '\0';
		it->dirty = 1;
	}
	return (0);
}

/* Held items: install-at time reached, atomic group complete. */
static int
tick_activate(struct sched_campaign *c, int64_t now, int32_t off,
    struct sched_out *o)
{
	const struct sched_policy	*p = &c->policy;
	struct sched_item		*it;
	size_t				 i, j;
	int64_t				 next_open;
	bool				 ready;
	char				 t[21];

	for (i = 0; i < c->nitems; i++) {
		it = &c->items[i];
		if (it->state != SCHED_I_HELD)
			continue;
		if (p->mode == SCHED_MODE_INSTALL_AT && now < p->install_at) {
			sched_format_time(p->install_at, t);
			item_wait(it, "installs at %s", t);
			wake(c, p->install_at);
			continue;
		}
		ready = true;
		for (j = 0; j < c->nitems && ready; j++)
			if (atomic_peer(c, it, &c->items[j]) &&
			    c->items[j].state != SCHED_I_HELD &&
			    c->items[j].state != SCHED_I_ACTIVATING)
				ready = false;
		if (!ready) {
			item_wait(it, "atomic group '%s': waits for its "
			    "members", p->atomic[it->atomic].name);
			continue;
		}
		if (!sched_window_open(p, now, off, &next_open)) {
			if (next_open != INT64_MAX) {
				sched_format_time(next_open, t);
				item_wait(it, "activation: window opens %s", t);
				wake(c, next_open);
			}
			continue;
		}
		if (out_item(o, SCHED_D_ACTIVATE, c, i, 0) == -1)
			return (-1);
		it->state = SCHED_I_ACTIVATING;
		it->deadline = now + p->node_timeout_s;
		wake(c, it->deadline);
		it->wait[0] = '\0';
		it->dirty = 1;
	}
	return (0);
}

int
sched_tick(struct sched_campaign *c, const struct sched_clock *clk,
    struct sched_out *o)
{
	size_t		 n0 = o->n, i, nfinal = 0, ok = 0;
	int64_t		 now;
	int32_t		 off;

	now = clk->now(clk->arg);
	off = clk->utc_offset != NULL ? clk->utc_offset(clk->arg, now) : 0;
	c->next_wake = INT64_MAX;
	if (c->state == SCHED_C_DONE)
		return (0);
	if (c->policy.deadline != 0 && now >= c->policy.deadline &&
	    c->state != SCHED_C_CANCELLED) {
		if (tick_deadline(c, now, o) == -1)
			return (-1);
		c->next_wake = INT64_MAX;
		return ((int)(o->n - n0));
	}
	if (c->policy.deadline != 0 && c->state != SCHED_C_CANCELLED)
		wake(c, c->policy.deadline);
	if (tick_watchdog(c, now, o) == -1)
		return (-1);
	if (c->state == SCHED_C_RUNNING && c->started == 0) {
		c->started = now;
		c->dirty = 1;
		if (out_event(o, SCHED_EV_STARTED, -1, "campaign started: %zu "
		    "items on %zu nodes", c->nitems, c->nmembers) == -1)
			return (-1);
	}
	/*
	 * Dependants of a failed item are skipped whatever waits: a stage's
	 * approval, a pause or a halt stops offers, not the truth (and the
	 * skip's record goes upstream now, not after the approval).
	 */
	if (c->state != SCHED_C_CANCELLED)
		if (tick_propagate(c, now, o) == -1)
			return (-1);
	if (c->state == SCHED_C_RUNNING && tick_stages(c, now, o) == -1)
		return (-1);
	if (c->state == SCHED_C_RUNNING) {
		if (tick_offers(c, now, off, o) == -1 ||
		    tick_activate(c, now, off, o) == -1)
			return (-1);
	}
	/* A provisional record becomes final after final_after_s. */
	for (i = 0; i < c->nitems; i++)
		if (SCHED_I_FINAL(c->items[i].state) &&
		    c->items[i].provisional &&
		    c->items[i].reported != SCHED_REP_FINAL &&
		    c->final_after_s >= 0)
			wake(c, c->items[i].finished + c->final_after_s);
	if (c->state != SCHED_C_RUNNING && c->state != SCHED_C_HALTED)
		return ((int)(o->n - n0));
	for (i = 0; i < c->nitems; i++)
		if (SCHED_I_FINAL(c->items[i].state)) {
			nfinal++;
			if (c->items[i].state == SCHED_I_SUCCEEDED ||
			    c->items[i].state == SCHED_I_DOWNLOADED)
				ok++;
		}
	if (c->nitems == 0) {
		/*
		 * Nothing planned yet: the campaign waits for targets (a
		 * finished one never takes new nodes, so an empty plan is
		 * not finished).
		 */
		if (strcmp(c->reason, SCHED_NO_TARGETS) != 0) {
			snprintf(c->reason, sizeof(c->reason), "%s",
			    SCHED_NO_TARGETS);
			c->dirty = 1;
		}
	} else if (nfinal == c->nitems) {
		if (c->state == SCHED_C_RUNNING)
			snprintf(c->reason, sizeof(c->reason), "%zu of %zu "
			    "items succeeded", ok, c->nitems);
		c->state = SCHED_C_DONE;
		c->finished = now;
		c->next_wake = INT64_MAX;
		c->dirty = 1;
		if (out_event(o, SCHED_EV_DONE, c->stage, "%s",
		    c->reason) == -1)
			return (-1);
	} else if (strcmp(c->reason, SCHED_NO_TARGETS) == 0) {
		c->reason[0] = '\0';
		c->dirty = 1;
	}
	return ((int)(o->n - n0));
}

/* ------------------------------------------------------------------ */
/* Reports from the nodes                                               */

int
sched_item_verified(struct sched_campaign *c, uint64_t node,
    const char *component, int64_t now)
{
	struct sched_item	*it;

	if ((it = sched_item_find(c, node, component)) == NULL ||
	    it->state != SCHED_I_ACTIVE)
		return (-1);
	it->dirty = 1;
	if (c->policy.mode == SCHED_MODE_DOWNLOAD_ONLY) {
		sched__item_final(it, SCHED_I_DOWNLOADED, UP_R_INITIAL, now,
		    "downloaded and verified (step %d of %d); not activated",
		    it->step + 1, it->nsteps);
		return (0);
	}
	if (c->policy.mode == SCHED_MODE_INSTALL_AT || it->atomic >= 0)
		it->state = SCHED_I_HELD;
	else
		it->state = SCHED_I_ACTIVATING;
	return (0);
}

int
sched_item_result(struct sched_campaign *c, uint64_t node,
    const char *component, int result, uint64_t bytes, int64_t now)
{
	struct sched_item	*it;
	struct sched_member	*m;
	size_t			 k;
	bool			 success;
	char			 why[96];

	if ((it = sched_item_find(c, node, component)) == NULL)
		return (-1);
	success = result == UP_R_SUCCESS || result == UP_R_ALREADY;
	it->bytes_sent += bytes;
	it->dirty = 1;
	if (SCHED_I_FINAL(it->state) || it->state == SCHED_I_PENDING ||
	    it->state == SCHED_I_RETRY) {
		/* Late: only the truth "it runs the new version" matters. */
		if (success && it->state != SCHED_I_SUCCEEDED &&
		    it->step == it->nsteps - 1) {
			sched__item_final(it, SCHED_I_SUCCEEDED, result, now,
			    "late result after %s: %s",
			    sched_istate_str(it->state), it->reason);
			it->step = it->nsteps;
		} else if (success && !SCHED_I_FINAL(it->state)) {
			it->step++;
			it->state = SCHED_I_PENDING;
		}
		return (0);
	}
	if (!success) {
		if (delta_fallback(c, it, result, now))
			return (0);
		snprintf(why, sizeof(why), "%s", up_result_str(result));
		item_fail(c, it, result, now, why);
		return (0);
	}
	/* It runs the step's version now: keep the facts true. */
	m = &c->members[it->member];
	{
		const struct cache_pkg	*p = sched_item_pkg(c, it);

		for (k = 0; p != NULL && k < m->node.ncomp; k++)
			if (strcmp(m->node.comp[k].name, it->component) == 0) {
				strcpy(m->node.comp[k].version, p->version);
				m->dirty = 1;
				c->members_dirty = 1;
			}
	}
	it->step++;
	it->result = result;
	it->deadline = 0;
	if (it->step < it->nsteps) {
		it->state = SCHED_I_PENDING;	/* the chain's next delta */
		return (0);
	}
	sched__item_final(it, SCHED_I_SUCCEEDED, result, now, "%s",
	    it->fell_back ? "full image, after the delta failed" :
	    it->nsteps > 1 ? "chain of deltas applied" : "");
	return (0);
}

int
sched_item_skip(struct sched_campaign *c, uint64_t node,
    const char *component, int result, int64_t now, const char *reason)
{
	struct sched_item	*it;

	if ((it = sched_item_find(c, node, component)) == NULL ||
	    !item_open(it->state))
		return (-1);
	sched__item_final(it, SCHED_I_SKIPPED, result, now, "%s", reason);
	return (0);
}

void
sched_item_attempt(struct sched_campaign *c, uint64_t node,
    const char *component, int64_t started_ms, int64_t finished_ms)
{
	struct sched_item	*it;

	if ((it = sched_item_find(c, node, component)) == NULL ||
	    started_ms <= 0 || finished_ms < started_ms)
		return;
	if (it->started_ms == 0 || started_ms < it->started_ms)
		it->started_ms = started_ms;
	if (finished_ms > it->finished_ms)
		it->finished_ms = finished_ms;
	it->dirty = 1;
}

bool
sched_item_final_record(const struct sched_item *it)
{
	return (SCHED_I_FINAL(it->state) && (!it->provisional ||
	    it->reported == SCHED_REP_FINAL));
}

bool
sched_campaign_live(const struct sched_campaign *c)
{
	size_t	 i;

	if (c->state == SCHED_C_DONE)
		return (false);
	if (c->state != SCHED_C_CANCELLED)
		return (true);
	/* A plain cancel lets activating nodes finish: their watchdog. */
	for (i = 0; i < c->nitems; i++)
		if (!SCHED_I_FINAL(c->items[i].state))
			return (true);
	return (false);
}

/* What a record is about: the attempt and the state. */
static uint32_t
rep_mark(const struct sched_item *it)
{
	return (it->tries << 4 | (uint32_t)it->state);
}

/*
 * A provisional final state the campaign can no longer change: it is
 * done or cancelled, or final_after_s passed (issue 7: a node that never
 * speaks again still gets its final record).
 */
static bool
item_closed(const struct sched_campaign *c, const struct sched_item *it,
    int64_t now)
{
	return (c->state == SCHED_C_DONE || c->state == SCHED_C_CANCELLED ||
	    (c->final_after_s >= 0 && now >= it->finished + c->final_after_s));
}

int
sched_item_report_due(const struct sched_campaign *c, size_t i, int64_t now)
{
	const struct sched_item	*it = &c->items[i];

	/* Nothing follows a final record; open items report attempts. */
	if (it->reported == SCHED_REP_FINAL || !SCHED_I_FINAL(it->state))
		return (SCHED_REP_NONE);
	if (!it->provisional || item_closed(c, it, now))
		return (SCHED_REP_FINAL);
	if (it->reported == SCHED_REP_PROVISIONAL &&
	    it->rep_mark == rep_mark(it))
		return (SCHED_REP_NONE);
	return (SCHED_REP_PROVISIONAL);
}

void
sched_item_reported(struct sched_campaign *c, size_t i, int level)
{
	struct sched_item	*it = &c->items[i];

	if (it->reported == SCHED_REP_FINAL)
		return;
	it->reported = level;
	it->rep_mark = rep_mark(it);
	it->dirty = 1;
}

/* ------------------------------------------------------------------ */
/* upctl actions                                                        */

static int
cancel_items(struct sched_campaign *c, int force, int64_t now,
    struct sched_out *o)
{
	struct sched_item	*it;
	enum sched_istate	 was;
	size_t			 i;

	for (i = 0; i < c->nitems; i++) {
		it = &c->items[i];
		if (SCHED_I_FINAL(it->state))
			continue;
		/* An activating node reboots anyway: plain cancel lets its
		 * result come in; force-cancel writes it off. */
		if (it->state == SCHED_I_ACTIVATING && !force)
			continue;
		if (item_open(it->state) && out_item(o, SCHED_D_ABORT, c, i,
		    UP_R_ABORTED) == -1)
			return (-1);
		was = it->state;
		sched__item_final(it, SCHED_I_CANCELLED, UP_R_ABORTED, now,
		    "%s by the technician", force ? "force-cancelled" :
		    "cancelled");
		it->provisional = was == SCHED_I_ACTIVATING;
	}
	return (0);
}

int
sched_campaign_action(struct sched_campaign *c, enum sched_action a,
    int64_t now, struct sched_out *o, char **cause)
{
	const char	*name = NAME(action_names, a);
	size_t		 n0 = o->n;

	switch (a) {
	case SCHED_A_APPROVE:
		if (c->state != SCHED_C_APPROVAL)
			break;
		if (c->srt[c->stage].state == SCHED_S_PENDING) {
			c->srt[c->stage].state = SCHED_S_ACTIVE;
			c->srt[c->stage].started = now;
		}
		c->state = SCHED_C_RUNNING;
		c->reason[0] = '\0';
		c->dirty = 1;
		return (out_event(o, SCHED_EV_RESUMED, c->stage, "approved "
		    "stage '%s'", c->stages[c->stage].name));
	case SCHED_A_PAUSE:
		if (c->state != SCHED_C_RUNNING &&
		    c->state != SCHED_C_APPROVAL && c->state != SCHED_C_HALTED)
			break;
		c->paused_from = c->state;
		c->state = SCHED_C_PAUSED;
		c->dirty = 1;
		return (out_event(o, SCHED_EV_PAUSED, c->stage, "paused"));
	case SCHED_A_RESUME:
		if (c->state == SCHED_C_PAUSED &&
		    c->paused_from != SCHED_C_HALTED) {
			c->state = c->paused_from;
			c->dirty = 1;
			return (out_event(o, SCHED_EV_RESUMED, c->stage,
			    "resumed"));
		}
		if (c->state != SCHED_C_HALTED && c->state != SCHED_C_PAUSED)
			break;
		/* Resuming a halted campaign overrides the stage's limit. */
		c->srt[c->stage].overridden = 1;
		if (c->srt[c->stage].state == SCHED_S_HALTED)
			c->srt[c->stage].state = SCHED_S_ACTIVE;
		c->state = SCHED_C_RUNNING;
		c->dirty = 1;
		if (out_event(o, SCHED_EV_RESUMED, c->stage, "resumed after "
		    "halt (%s); stage '%s' limit overridden", c->reason,
		    c->stages[c->stage].name) == -1)
			return (-1);
		c->reason[0] = '\0';
		return (0);
	case SCHED_A_CANCEL:
	case SCHED_A_FORCE_CANCEL:
		if (c->state == SCHED_C_DONE ||
		    (c->state == SCHED_C_CANCELLED && a == SCHED_A_CANCEL))
			break;
		if (cancel_items(c, a == SCHED_A_FORCE_CANCEL, now, o) == -1)
			return (-1);
		c->state = SCHED_C_CANCELLED;
		c->finished = now;
		snprintf(c->reason, sizeof(c->reason), "%s by the technician",
		    a == SCHED_A_CANCEL ? "cancelled" : "force-cancelled");
		c->dirty = 1;
		return (out_event(o, SCHED_EV_CANCELLED, c->stage, "%s",
		    c->reason));
	}
	o->n = n0;
	return (sched__fail(cause, "campaign '%s' is %s: cannot %s", c->id,
	    sched_cstate_str(c->state), name));
}
