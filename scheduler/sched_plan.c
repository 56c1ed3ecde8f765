/*
 * sched_plan.c: from a policy, packages and nodes to a campaign: target
 * selection, routes, stages, and the dependency graph over (node,
 * component, version) with its topology rules (docs/campaigns.md,
 * "Planning").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

static bool
has_name(const char (*list)[CACHE_NAME_MAX + 1], size_t n, const char *s)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return (true);
	return (false);
}

static bool
node_has_tag(const struct sched_node *n, const char *tag)
{
	return (has_name(n->tags, n->ntags < SCHED_MAX_TAGS ? n->ntags :
	    SCHED_MAX_TAGS, tag));
}

bool
sched_target_match(const struct sched_target *t, const struct sched_node *n)
{
	const char	*v;
	size_t		 i;

	if (t->nhw > 0 && !has_name(t->hw, t->nhw, n->hw))
		return (false);
	if (t->nphw > 0 && !has_name(t->phw, t->nphw, n->hw))
		return (false);
	for (i = 0; i < t->ntags; i++)
		if (!node_has_tag(n, t->tags[i]))
			return (false);
	for (i = 0; i < t->nxtags; i++)
		if (node_has_tag(n, t->xtags[i]))
			return (false);
	if (t->ntransports > 0) {
		for (i = 0; i < t->ntransports; i++)
			if (strcmp(t->transports[i], n->transport) == 0)
				break;
		if (i == t->ntransports)
			return (false);
	}
	for (i = 0; i < t->ncomp; i++) {
		v = sched_node_version(n, t->comp[i].component);
		if (v == NULL || !sched_range_match(&t->comp[i].range, v))
			return (false);
	}
	if (t->group == SCHED_GROUP_TEST && !node_has_tag(n, t->test_tag))
		return (false);
	if (t->group == SCHED_GROUP_PRODUCTION && node_has_tag(n, t->test_tag))
		return (false);
	return (true);
}

/* ------------------------------------------------------------------ */
/* Members and items                                                    */

size_t
sched__member_find(const struct sched_campaign *c, uint64_t id)
{
	size_t	 i;

	for (i = 0; i < c->nmembers; i++)
		if (c->members[i].node.node_id == id)
			return (i);
	return (SCHED_NOMEMBER);
}

int
sched__member_add(struct sched_campaign *c, const struct sched_node *n,
    int stage)
{
	struct sched_member	*m;
	size_t			 cap;

	if (c->nmembers == c->members_cap) {
		cap = c->members_cap ? c->members_cap * 2 : 16;
		if ((m = reallocarray(c->members, cap, sizeof(*m))) == NULL)
			return (-1);
		c->members = m;
		c->members_cap = cap;
	}
	m = &c->members[c->nmembers++];
	memset(m, 0, sizeof(*m));
	m->node = *n;
	if (m->node.ncomp > UP_MAX_COMPONENTS)
		m->node.ncomp = UP_MAX_COMPONENTS;
	if (m->node.ntags > SCHED_MAX_TAGS)
		m->node.ntags = SCHED_MAX_TAGS;
	m->stage = stage;
	m->dirty = 1;
	c->members_dirty = 1;
	return (0);
}

struct sched_item *
sched__item_add(struct sched_campaign *c)
{
	struct sched_item	*it;
	size_t			 cap;

	if (c->nitems == c->items_cap) {
		cap = c->items_cap ? c->items_cap * 2 : 16;
		if ((it = reallocarray(c->items, cap, sizeof(*it))) == NULL)
			return (NULL);
		c->items = it;
		c->items_cap = cap;
	}
	it = &c->items[c->nitems++];
	memset(it, 0, sizeof(*it));
	it->atomic = -1;
	it->dirty = 1;
	return (it);
}

struct sched_member *
sched_member_get(struct sched_campaign *c, uint64_t id)
{
	size_t	 i = sched__member_find(c, id);

	return (i == SCHED_NOMEMBER ? NULL : &c->members[i]);
}

struct sched_item *
sched_item_find(struct sched_campaign *c, uint64_t node, const char *comp)
{
	size_t	 i;

	for (i = 0; i < c->nitems; i++)
		if (c->items[i].node_id == node &&
		    strcmp(c->items[i].component, comp) == 0)
			return (&c->items[i]);
	return (NULL);
}

const struct cache_pkg *
sched_item_pkg(const struct sched_campaign *c, const struct sched_item *it)
{
	size_t	 i;

	if (it->step < 0 || it->step >= it->nsteps)
		return (NULL);
	for (i = 0; i < c->npkgs; i++)
		if (strcmp(c->pkgs[i].id, it->steps[it->step]) == 0)
			return (&c->pkgs[i]);
	return (NULL);
}

static void
item_set_route(struct sched_item *it, const struct sched_route *r)
{
	int	 s;

	it->nsteps = r->nsteps;
	for (s = 0; s < r->nsteps; s++)
		strcpy(it->steps[s], r->step[s]->id);
	it->bytes = r->bytes;
}

static int
atomic_of(const struct sched_policy *p, const struct sched_item *it)
{
	const struct sched_atomic	*a;
	size_t				 i, j;

	for (i = 0; i < p->natomic; i++) {
		a = &p->atomic[i];
		if (a->ncomp > 0 && !has_name(a->comp, a->ncomp,
		    it->component))
			continue;
		if (a->nnodes > 0) {
			for (j = 0; j < a->nnodes; j++)
				if (a->nodes[j] == it->node_id)
					break;
			if (j == a->nnodes)
				continue;
		}
		return ((int)i);
	}
	return (-1);
}

/*
 * May some package of `component' at `version' for `hw' go to a node that
 * runs `running' (sched_may_offer: newer, or a signed downgrade)?
 */
static bool
plan_may_offer(const struct sched_campaign *c, const char *hw,
    const char *component, const char *version, const char *running)
{
	size_t	 i;

	for (i = 0; i < c->npkgs; i++)
		if (strcmp(c->pkgs[i].component, component) == 0 &&
		    strcmp(c->pkgs[i].version, version) == 0 &&
		    sched_hw_ok(&c->pkgs[i], hw) &&
		    sched_may_offer(&c->pkgs[i], running))
			return (true);
	return (false);
}

/*
 * Adds the items a member needs (newest version per component and the
 * cheapest route to it).  The newest version of the deployment may be
 * older than what a node runs: a downgrade the cloud signed as one.  Broadcast members are routed later, per group
 * (plan_broadcast); their items get nsteps 0 for now.  Returns the
 * number of items added or -1.
 */
static int
plan_items(struct sched_campaign *c, size_t mi, int64_t now)
{
	const struct sched_node	*n = &c->members[mi].node;
	struct sched_item	*it;
	struct sched_route	 r;
	const char		*to;
	size_t			 k;
	int			 added = 0;

	for (k = 0; k < n->ncomp; k++) {
		to = sched_target_version(c->pkgs, c->npkgs, n->hw,
		    n->comp[k].name);
		if (to == NULL || !plan_may_offer(c, n->hw, n->comp[k].name,
		    to, n->comp[k].version))
			continue;
		if ((it = sched__item_add(c)) == NULL)
			return (-1);
		it->node_id = n->node_id;
		it->member = mi;
		strcpy(it->component, n->comp[k].name);
		strcpy(it->from, n->comp[k].version);
		strcpy(it->to, to);
		it->atomic = atomic_of(&c->policy, it);
		added++;
		if (n->broadcast)
			continue;
		if (sched_route(c->pkgs, c->npkgs, n->hw, it->component,
		    it->from, to, c->policy.step_cost, 0, &r) == 0)
			item_set_route(it, &r);
		else
			sched__item_final(it, SCHED_I_SKIPPED, UP_R_UNSUPPORTED,
			    now, "no route from %s to %s: no full image for "
			    "hw '%s' and no delta chain from %s", it->from, to,
			    n->hw, it->from);
	}
	return (added);
}

static bool
bkey_eq(const struct sched_campaign *c, const struct sched_item *a,
    const struct sched_item *b)
{
	const struct sched_node	*na = &c->members[a->member].node;
	const struct sched_node	*nb = &c->members[b->member].node;

	return (strcmp(na->transport, nb->transport) == 0 &&
	    strcmp(na->hw, nb->hw) == 0 &&
	    strcmp(a->component, b->component) == 0 &&
	    strcmp(a->to, b->to) == 0);
}

/*
 * Broadcast media: items of one (transport, hw, component, target) are
 * grouped by base version and routed together (sched_broadcast_choose).
 * Items from `first' on that still lack a route are considered.
 */
static void
plan_broadcast(struct sched_campaign *c, size_t first, int64_t now)
{
	struct sched_bgroup	 g[64];
	struct sched_item	*a, *b;
	const struct sched_node	*n;
	size_t			 i, j, k, ng;
	uint64_t		 cost;

	for (i = first; i < c->nitems; i++) {
		a = &c->items[i];
		if (a->nsteps != 0 || a->state != SCHED_I_PENDING)
			continue;
		n = &c->members[a->member].node;
		ng = 0;
		for (j = i; j < c->nitems; j++) {
			b = &c->items[j];
			if (b->nsteps != 0 || b->state != SCHED_I_PENDING ||
			    !c->members[b->member].node.broadcast ||
			    !bkey_eq(c, a, b))
				continue;
			for (k = 0; k < ng; k++)
				if (strcmp(g[k].base, b->from) == 0)
					break;
			if (k == ng) {
				if (ng == 64)
					continue;	/* routed alone below */
				memset(&g[ng], 0, sizeof(g[ng]));
				strcpy(g[ng].base, b->from);
				ng++;
			}
			g[k].nnodes++;
		}
		cost = sched_broadcast_choose(c->pkgs, c->npkgs, n->hw,
		    a->component, a->to, c->policy.listen_pct, g, ng);
		if (cost == UINT64_MAX) {
			/* No full image and some base without a delta: plan
			 * the bases that have one; the others are skipped. */
			struct sched_route	 r;
			size_t			 m = 0;

			for (k = 0; k < ng; k++)
				if (sched_route(c->pkgs, c->npkgs, n->hw,
				    a->component, g[k].base, a->to, 0, 1,
				    &r) == 0)
					g[m++] = g[k];
			ng = m;
			cost = sched_broadcast_choose(c->pkgs, c->npkgs, n->hw,
			    a->component, a->to, c->policy.listen_pct, g, ng);
		}
		for (j = i; j < c->nitems; j++) {
			b = &c->items[j];
			if (b->nsteps != 0 || b->state != SCHED_I_PENDING ||
			    !c->members[b->member].node.broadcast ||
			    !bkey_eq(c, a, b))
				continue;
			for (k = 0; k < ng; k++)
				if (strcmp(g[k].base, b->from) == 0)
					break;
			if (k < ng && cost != UINT64_MAX &&
			    g[k].route.nsteps > 0) {
				item_set_route(b, &g[k].route);
				continue;
			}
			sched__item_final(b, SCHED_I_SKIPPED, UP_R_UNSUPPORTED,
			    now, "no route from %s to %s: no full image for "
			    "hw '%s' and no delta chain from %s", b->from,
			    b->to, n->hw, b->from);
		}
	}
}

static int
topo_cmp(const void *k, const void *e)
{
	uint64_t			 id = *(const uint64_t *)k;
	const struct sched_topo		*t = e;

	return (id < t->node_id ? -1 : id > t->node_id);
}

const struct sched_topo *
sched__topo_get(const struct sched_campaign *c, uint64_t id)
{
	if (c->ntopo == 0)
		return (NULL);
	return (bsearch(&id, c->topo, c->ntopo, sizeof(*c->topo), topo_cmp));
}

int
sched__topo_set(struct sched_campaign *c, uint64_t id, uint64_t parent,
    enum sched_role role)
{
	struct sched_topo	*t;
	size_t			 lo = 0, hi = c->ntopo, mid, cap;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (c->topo[mid].node_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->ntopo && c->topo[lo].node_id == id) {
		if (c->topo[lo].parent != parent || c->topo[lo].role != role)
			c->topo_dirty = 1;
		c->topo[lo].parent = parent;
		c->topo[lo].role = role;
		return (0);
	}
	/* Leaves without a parent say nothing: not kept. */
	if (parent == 0 && role == SCHED_ROLE_LEAF)
		return (0);
	if (c->ntopo == c->topo_cap) {
		cap = c->topo_cap ? c->topo_cap * 2 : 16;
		if ((t = reallocarray(c->topo, cap, sizeof(*t))) == NULL)
			return (-1);
		c->topo = t;
		c->topo_cap = cap;
	}
	memmove(&c->topo[lo + 1], &c->topo[lo], (c->ntopo - lo) *
	    sizeof(*c->topo));
	c->topo[lo].node_id = id;
	c->topo[lo].parent = parent;
	c->topo[lo].role = role;
	c->ntopo++;
	c->topo_dirty = 1;
	return (0);
}

/* ------------------------------------------------------------------ */
/* Stages                                                               */

int
sched__stage_add_rest(struct sched_campaign *c)
{
	struct sched_stage	*s;

	if (c->nstages > SCHED_MAX_STAGES)
		return (-1);
	s = &c->stages[c->nstages];
	memset(s, 0, sizeof(*s));
	s->sel = SCHED_SEL_REST;
	if (c->nstages == 0) {
		/* No stages: one stage, no thresholds (issue-2 behaviour). */
		strcpy(s->name, "all");
		s->success_pct = 0;
		s->failure_pct = 100;
	} else {
		strcpy(s->name, "rest");
		s->success_pct = c->stages[c->nstages - 1].success_pct;
		s->failure_pct = c->stages[c->nstages - 1].failure_pct;
	}
	c->nstages++;
	return (0);
}

static bool
listed(const struct sched_campaign *c, uint64_t id, int *stage)
{
	size_t	 s, j;

	for (s = 0; s < c->nstages; s++) {
		if (c->stages[s].sel != SCHED_SEL_NODES)
			continue;
		for (j = 0; j < c->stages[s].nnodes; j++)
			if (c->stages[s].nodes[j] == id) {
				*stage = (int)s;
				return (true);
			}
	}
	return (false);
}

static bool
stage_tags_match(const struct sched_stage *s, const struct sched_node *n)
{
	size_t	 j;

	for (j = 0; j < s->ntags; j++)
		if (node_has_tag(n, s->tags[j]))
			return (true);
	return (false);
}

static int
member_cmp(const void *a, const void *b)
{
	const struct sched_member *x = a, *y = b;

	return (x->node.node_id < y->node.node_id ? -1 :
	    x->node.node_id > y->node.node_id);
}

/* Initial stage assignment, in node id order (deterministic). */
static void
plan_stages(struct sched_campaign *c)
{
	size_t	 s, i, assigned = 0, want, total = c->nmembers, taken;
	int	 st;

	for (i = 0; i < total; i++) {
		c->members[i].stage = -1;
		if (listed(c, c->members[i].node.node_id, &st)) {
			c->members[i].stage = st;
			assigned++;
		}
	}
	for (s = 0; s < c->nstages; s++) {
		const struct sched_stage *sg = &c->stages[s];

		taken = 0;
		for (i = 0; i < total; i++) {
			if (c->members[i].stage != -1)
				continue;
			switch (sg->sel) {
			case SCHED_SEL_NODES:
				continue;
			case SCHED_SEL_TAGS:
				if (!stage_tags_match(sg, &c->members[i].node))
					continue;
				break;
			case SCHED_SEL_COUNT:
				if (taken >= sg->amount)
					continue;
				break;
			case SCHED_SEL_PERCENT:
				want = (total * sg->amount + 99) / 100;
				if (assigned >= want)
					continue;
				break;
			case SCHED_SEL_REST:
				break;
			}
			c->members[i].stage = (int)s;
			assigned++;
			taken++;
		}
	}
	for (i = 0; i < total; i++)
		if (c->members[i].stage == -1) {
			/* Nodes beyond the listed stages: a "rest" stage. */
			if (c->nstages == c->policy.nstages &&
			    sched__stage_add_rest(c) == -1)
				return;
			c->members[i].stage = (int)c->nstages - 1;
		}
}

/* Stage for a late joiner: its listed stage, else the first not passed. */
static int
late_stage(struct sched_campaign *c, const struct sched_node *n)
{
	size_t	 s;
	int	 st;

	if (listed(c, n->node_id, &st))
		return (st);
	for (s = 0; s < c->nstages; s++) {
		if (c->stages[s].sel == SCHED_SEL_NODES)
			continue;
		if (c->stages[s].sel == SCHED_SEL_TAGS &&
		    !stage_tags_match(&c->stages[s], n))
			continue;
		if (c->srt[s].state == SCHED_S_PENDING ||
		    c->srt[s].state == SCHED_S_ACTIVE ||
		    c->srt[s].state == SCHED_S_SOAKING)
			return ((int)s);
	}
	return ((int)c->nstages - 1);
}

/* ------------------------------------------------------------------ */
/* The dependency graph                                                 */

static void
item_name(const struct sched_item *it, char *buf, size_t len)
{
	snprintf(buf, len, "node 0x%016" PRIx64 " %s %s", it->node_id,
	    it->component, it->to);
}

static struct sched_item *
node_item(struct sched_campaign *c, size_t member, const char *comp)
{
	size_t	 i;

	/* Items of a member are contiguous only at plan time: scan. */
	for (i = 0; i < c->nitems; i++)
		if (c->items[i].member == member &&
		    strcmp(c->items[i].component, comp) == 0)
			return (&c->items[i]);
	return (NULL);
}

static int
edge_add(struct sched_campaign *c, size_t from, size_t to,
    enum sched_edge_kind kind, const char *why)
{
	struct sched_edge	*e;
	size_t			 cap, i;

	if (from == to)
		return (0);
	/* Skipped items never run: no edge waits for or on them. */
	if (c->items[from].state == SCHED_I_SKIPPED ||
	    c->items[to].state == SCHED_I_SKIPPED)
		return (0);
	for (i = 0; i < c->nedges; i++)
		if (c->edges[i].from == from && c->edges[i].to == to) {
			if (kind == SCHED_E_REQUIRE)
				c->edges[i].kind = kind;
			return (0);
		}
	if (c->nedges == c->edges_cap) {
		cap = c->edges_cap ? c->edges_cap * 2 : 32;
		if ((e = reallocarray(c->edges, cap, sizeof(*e))) == NULL)
			return (-1);
		c->edges = e;
		c->edges_cap = cap;
	}
	e = &c->edges[c->nedges++];
	e->from = from;
	e->to = to;
	e->kind = kind;
	snprintf(e->why, sizeof(e->why), "%s", why);
	return (0);
}

/*
 * One constraint "item needs `comp' in `range'" on the item's node:
 * satisfied by what the node runs, or by the campaign's update of comp
 * (then an edge), or unsatisfiable.
 */
static int
constrain(struct sched_campaign *c, size_t ii, const char *comp,
    const struct sched_range *range, const char *why, char **cause)
{
	struct sched_item	*it = &c->items[ii], *o;
	const char		*cur;
	char			 name[96];

	cur = sched_node_version(&c->members[it->member].node, comp);
	o = node_item(c, it->member, comp);
	if (o != NULL && o->state != SCHED_I_SKIPPED) {
		cur = o->from;
		if (sched_range_match(range, o->to)) {
			if (sched_range_match(range, cur))
				return (0);
			return (edge_add(c, (size_t)(o - c->items), ii,
			    SCHED_E_REQUIRE, why));
		}
		item_name(it, name, sizeof(name));
		return (sched__fail(cause, "%s requires %s '%s', but the "
		    "campaign moves %s from %s to %s", name, comp, range->text,
		    comp, o->from, o->to));
	}
	if (cur != NULL && sched_range_match(range, cur))
		return (0);
	item_name(it, name, sizeof(name));
	if (cur == NULL)
		return (sched__fail(cause, "%s requires %s '%s': the node "
		    "does not run %s and the deployment does not bring it",
		    name, comp, range->text, comp));
	return (sched__fail(cause, "%s requires %s '%s': the node runs %s "
	    "%s and the deployment brings no version in range", name, comp,
	    range->text, comp, cur));
}

static int
edges_components(struct sched_campaign *c, size_t ii, char **cause)
{
	const struct sched_policy	*p = &c->policy;
	struct sched_item		*it = &c->items[ii], *o;
	const struct cache_pkg		*pk;
	struct sched_range		 r;
	size_t				 k, j, i;
	int				 s, d;

	for (k = 0; k < p->nrequires; k++) {
		if (strcmp(p->requires[k].component, it->component) != 0 ||
		    !sched_range_match(&p->requires[k].when, it->to))
			continue;
		if (constrain(c, ii, p->requires[k].requires,
		    &p->requires[k].range, "requires", cause) == -1)
			return (-1);
	}
	/* Dependencies the packages themselves declare (UP deps). */
	for (s = 0; s < it->nsteps; s++) {
		pk = NULL;
		for (i = 0; i < c->npkgs; i++)
			if (strcmp(c->pkgs[i].id, it->steps[s]) == 0)
				pk = &c->pkgs[i];
		if (pk == NULL)
			continue;
		for (d = 0; d < pk->ndeps && d < 4; d++) {
			memset(&r, 0, sizeof(r));
			r.ncmp = 1;
			r.cmp[0].op = SCHED_OP_GE;
			strcpy(r.cmp[0].ver, pk->dep_min_version[d]);
			snprintf(r.text, sizeof(r.text), ">=%s",
			    pk->dep_min_version[d]);
			if (constrain(c, ii, pk->dep_component[d], &r,
			    "package dep", cause) == -1)
				return (-1);
		}
	}
	/* policy.order: each component waits for the ones listed before. */
	for (k = 0; k < p->norder; k++) {
		if (strcmp(p->order[k], it->component) != 0)
			continue;
		for (j = 0; j < k; j++)
			if ((o = node_item(c, it->member, p->order[j])) !=
			    NULL && edge_add(c, (size_t)(o - c->items), ii,
			    SCHED_E_REQUIRE, "order") == -1)
				return (-1);
	}
	return (0);
}

static int
edges_member_all(struct sched_campaign *c, size_t from_m, size_t to_m,
    enum sched_edge_kind kind, const char *why)
{
	size_t	 i, j;

	for (i = 0; i < c->nitems; i++) {
		if (c->items[i].member != from_m)
			continue;
		for (j = 0; j < c->nitems; j++)
			if (c->items[j].member == to_m &&
			    edge_add(c, i, j, kind, why) == -1)
				return (-1);
	}
	return (0);
}

/* Topology: coordinators before their nodes, relays after them. */
static int
edges_topology(struct sched_campaign *c, char **cause)
{
	const struct sched_topo	*t;
	size_t			 m, a, hops, i;
	uint64_t		 up;
	bool			*has;

	/* Members with items only: others impose nothing. */
	if ((has = calloc(c->nmembers + 1, sizeof(*has))) == NULL)
		return (sched__fail(cause, "out of memory"));
	for (i = 0; i < c->nitems; i++)
		if (c->items[i].state != SCHED_I_SKIPPED)
			has[c->items[i].member] = true;
	for (m = 0; m < c->nmembers; m++) {
		if (!has[m])
			continue;
		up = c->members[m].node.parent;
		for (hops = 0; up != 0; hops++) {
			if (hops > c->ntopo || up ==
			    c->members[m].node.node_id) {
				free(has);
				return (sched__fail(cause, "topology cycle: "
				    "node 0x%016" PRIx64 " routes through "
				    "itself", c->members[m].node.node_id));
			}
			if ((t = sched__topo_get(c, up)) == NULL)
				break;
			a = sched__member_find(c, up);
			if (a != SCHED_NOMEMBER && has[a] &&
			    t->role == SCHED_ROLE_COORDINATOR &&
			    edges_member_all(c, a, m, SCHED_E_REQUIRE,
			    "coordinator") == -1)
				goto oom;
			if (a != SCHED_NOMEMBER && has[a] &&
			    t->role == SCHED_ROLE_RELAY &&
			    edges_member_all(c, m, a, SCHED_E_ORDER,
			    "relay") == -1)
				goto oom;
			up = t->parent;
		}
	}
	/* The gateway's own update last: after every other item. */
	for (m = 0; m < c->nmembers; m++) {
		if (!has[m] || c->members[m].node.role != SCHED_ROLE_GATEWAY)
			continue;
		for (a = 0; a < c->nmembers; a++)
			if (has[a] && c->members[a].node.role !=
			    SCHED_ROLE_GATEWAY &&
			    edges_member_all(c, a, m, SCHED_E_ORDER,
			    "gateway last") == -1)
				goto oom;
	}
	free(has);
	return (0);
oom:
	free(has);
	return (sched__fail(cause, "out of memory"));
}

static bool
same_atomic(const struct sched_campaign *c, const struct sched_item *a,
    const struct sched_item *b)
{
	return (a->atomic >= 0 && a->atomic == b->atomic &&
	    (c->policy.atomic[a->atomic].nnodes > 0 ||
	    a->node_id == b->node_id));
}

static int
edge_cmp(const void *a, const void *b)
{
	const struct sched_edge *x = a, *y = b;

	if (x->to != y->to)
		return (x->to < y->to ? -1 : 1);
	return (x->from < y->from ? -1 : x->from > y->from);
}

/* Kahn's algorithm; on a cycle, walks it back and names its items. */
static int
check_cycles(struct sched_campaign *c, char **cause)
{
	size_t	*indeg, *queue, *mark, qh = 0, qt = 0, i, e, done = 0, cur, n;
	char	 buf[1024], name[96];
	size_t	 len;

	n = c->nitems;
	indeg = calloc(n + 1, sizeof(*indeg));
	queue = calloc(n + 1, sizeof(*queue));
	mark = calloc(n + 1, sizeof(*mark));
	if (indeg == NULL || queue == NULL || mark == NULL) {
		free(indeg), free(queue), free(mark);
		return (sched__fail(cause, "out of memory"));
	}
	for (e = 0; e < c->nedges; e++)
		indeg[c->edges[e].to]++;
	for (i = 0; i < n; i++)
		if (indeg[i] == 0)
			queue[qt++] = i;
	/* Out-edges by scanning: edges are sorted by `to', fine for plans. */
	while (qh < qt) {
		cur = queue[qh++];
		done++;
		for (e = 0; e < c->nedges; e++)
			if (c->edges[e].from == cur &&
			    --indeg[c->edges[e].to] == 0)
				queue[qt++] = c->edges[e].to;
	}
	if (done == n) {
		free(indeg), free(queue), free(mark);
		return (0);
	}
	/* Every remaining item has a remaining predecessor: walk back. */
	for (cur = 0; cur < n && indeg[cur] == 0; cur++)
		;
	for (i = 1; mark[cur] == 0; i++) {
		mark[cur] = i;
		for (e = c->edge_in[cur]; e < c->edge_in[cur + 1]; e++)
			if (indeg[c->edges[e].from] > 0)
				break;
		cur = c->edges[e].from;
	}
	/* cur is on the cycle; print it forwards (walk back, reverse). */
	{
		size_t	 path[64], np = 0, start = cur;

		do {
			path[np++] = cur;
			for (e = c->edge_in[cur]; e < c->edge_in[cur + 1]; e++)
				if (indeg[c->edges[e].from] > 0 &&
				    mark[c->edges[e].from] != 0)
					break;
			cur = c->edges[e].from;
		} while (cur != start && np < 63);
		item_name(&c->items[start], name, sizeof(name));
		len = (size_t)snprintf(buf, sizeof(buf), "dependency cycle: "
		    "%s", name);
		/* path[] runs backwards (to predecessors): print reversed. */
		while (np > 1 && len < sizeof(buf)) {
			item_name(&c->items[path[--np]], name, sizeof(name));
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
			    " -> %s", name);
		}
		item_name(&c->items[start], name, sizeof(name));
		if (len < sizeof(buf))
			snprintf(buf + len, sizeof(buf) - len, " -> %s", name);
	}
	free(indeg), free(queue), free(mark);
	return (sched__fail(cause, "%s", buf));
}

/* (Re)builds edges and their index from items, policy and topology. */
int
sched__build_edges(struct sched_campaign *c, char **cause)
{
	size_t	 i, e;
	char	 a[96], b[96];

	c->nedges = 0;
	for (i = 0; i < c->nitems; i++) {
		if (c->items[i].state == SCHED_I_SKIPPED)
			continue;
		if (edges_components(c, i, cause) == -1)
			return (-1);
	}
	if (edges_topology(c, cause) == -1)
		return (-1);
	for (e = 0; e < c->nedges; e++)
		if (c->edges[e].kind == SCHED_E_REQUIRE &&
		    same_atomic(c, &c->items[c->edges[e].from],
		    &c->items[c->edges[e].to])) {
			item_name(&c->items[c->edges[e].to], a, sizeof(a));
			item_name(&c->items[c->edges[e].from], b, sizeof(b));
			return (sched__fail(cause, "atomic group '%s': %s "
			    "waits for %s (%s) in the same group, which "
			    "activates together", c->policy.atomic[
			    c->items[c->edges[e].to].atomic].name, a, b,
			    c->edges[e].why));
		}
	if (c->nedges > 0)
		qsort(c->edges, c->nedges, sizeof(*c->edges), edge_cmp);
	free(c->edge_in);
	if ((c->edge_in = calloc(c->nitems + 1, sizeof(*c->edge_in))) == NULL)
		return (sched__fail(cause, "out of memory"));
	for (e = 0; e < c->nedges; e++)
		c->edge_in[c->edges[e].to + 1]++;
	for (i = 0; i < c->nitems; i++)
		c->edge_in[i + 1] += c->edge_in[i];
	return (check_cycles(c, cause));
}

/*
 * A node never sits in an earlier stage than a node it waits for, and
 * the nodes of one atomic group share a stage; else the rollout would
 * deadlock (stage 1 waiting for a node of stage 2 that waits for stage
 * 1).  Only members whose stage has not started may move.
 */
static void
push_stages(struct sched_campaign *c)
{
	struct sched_member	*a, *b;
	size_t			 e, i, j, pass;
	int			 moved = 1;

	for (pass = 0; moved && pass <= c->nitems; pass++) {
		moved = 0;
		for (e = 0; e < c->nedges; e++) {
			a = &c->members[c->items[c->edges[e].from].member];
			b = &c->members[c->items[c->edges[e].to].member];
			if (b->stage < a->stage &&
			    c->srt[b->stage].state == SCHED_S_PENDING) {
				b->stage = a->stage;
				b->dirty = 1;
				c->members_dirty = 1;
				moved = 1;
			}
		}
		for (i = 0; i < c->nitems; i++)
			for (j = i + 1; j < c->nitems; j++) {
				if (!same_atomic(c, &c->items[i],
				    &c->items[j]))
					continue;
				a = &c->members[c->items[i].member];
				b = &c->members[c->items[j].member];
				if (a->stage == b->stage)
					continue;
				if (a->stage < b->stage)
					a = b, b = &c->members[
					    c->items[i].member];
				if (c->srt[b->stage].state ==
				    SCHED_S_PENDING) {
					b->stage = a->stage;
					b->dirty = 1;
					c->members_dirty = 1;
					moved = 1;
				}
			}
	}
}

/* ------------------------------------------------------------------ */

struct sched_campaign *
sched_campaign_plan(const char *id, const struct sched_policy *policy,
    const struct cache_pkg *pkgs, size_t npkgs,
    const struct sched_node *nodes, size_t n, int64_t now, char **cause)
{
	struct sched_campaign	*c;
	size_t			 i, s, j;

	if (npkgs > SCHED_MAX_PKGS) {
		sched__fail(cause, "campaign '%s': more than %d packages", id,
		    SCHED_MAX_PKGS);
		return (NULL);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		sched__fail(cause, "out of memory");
		return (NULL);
	}
	c->final_after_s = SCHED_FINAL_AFTER_S;
	if (sched__copy(c->id, sizeof(c->id), id) == -1) {
		sched__fail(cause, "campaign id too long");
		goto fail;
	}
	if (sched_policy_copy(&c->policy, policy) == -1) {
		sched__fail(cause, "out of memory");
		goto fail;
	}
	memcpy(c->pkgs, pkgs, npkgs * sizeof(*pkgs));
	c->npkgs = npkgs;
	c->nstages = policy->nstages;
	memcpy(c->stages, policy->stages, policy->nstages *
	    sizeof(policy->stages[0]));
	c->state = policy->approve ? SCHED_C_APPROVAL : SCHED_C_RUNNING;
	c->stage = 0;
	c->created = now;
	c->dirty = 1;

	/* A stage that names a node must name a known target. */
	for (s = 0; s < c->nstages; s++)
		for (j = 0; j < c->stages[s].nnodes; j++) {
			for (i = 0; i < n; i++)
				if (nodes[i].node_id == c->stages[s].nodes[j])
					break;
			if (i == n || !sched_target_match(&policy->target,
			    &nodes[i])) {
				sched__fail(cause, "deployment '%s': policy."
				    "stages[%zu] '%s': node 0x%016" PRIx64
				    " is %s", policy->deployment, s,
				    c->stages[s].name, c->stages[s].nodes[j],
				    i == n ? "unknown" : "not a target");
				goto fail;
			}
		}
	for (i = 0; i < n; i++)
		if (sched__topo_set(c, nodes[i].node_id, nodes[i].parent,
		    nodes[i].role) == -1)
			goto oom;
	for (i = 0; i < n; i++) {
		if (!sched_target_match(&policy->target, &nodes[i]) ||
		    sched__member_find(c, nodes[i].node_id) != SCHED_NOMEMBER)
			continue;
		if (sched__member_add(c, &nodes[i], -1) == -1)
			goto oom;
		switch (plan_items(c, c->nmembers - 1, now)) {
		case -1:
			goto oom;
		case 0:
			c->nmembers--;		/* up to date */
			break;
		}
	}
	if (c->nmembers > 1)
		qsort(c->members, c->nmembers, sizeof(*c->members),
		    member_cmp);
	/* Members moved: point items at their new places. */
	for (i = 0; i < c->nitems; i++)
		c->items[i].member = sched__member_find(c,
		    c->items[i].node_id);
	plan_broadcast(c, 0, now);
	plan_stages(c);
	if (c->nstages == 0)
		sched__stage_add_rest(c);
	if (sched__build_edges(c, cause) == -1)
		goto fail;
	push_stages(c);
	return (c);
oom:
	sched__fail(cause, "out of memory");
fail:
	sched_campaign_free(c);
	return (NULL);
}

void
sched_campaign_free(struct sched_campaign *c)
{
	if (c == NULL)
		return;
	sched_policy_clear(&c->policy);
	free(c->members);
	free(c->items);
	free(c->edges);
	free(c->edge_in);
	free(c->topo);
	free(c);
}

int
sched_node_seen(struct sched_campaign *c, const struct sched_node *n,
    int64_t now)
{
	size_t	 mi, first, i;
	char	*cause = NULL;
	int	 added;

	if (sched__topo_set(c, n->node_id, n->parent, n->role) == -1)
		return (-1);
	if ((mi = sched__member_find(c, n->node_id)) != SCHED_NOMEMBER) {
		/* Facts only: versions, battery, link, where it is. */
		c->members[mi].node = *n;
		if (c->members[mi].node.ncomp > UP_MAX_COMPONENTS)
			c->members[mi].node.ncomp = UP_MAX_COMPONENTS;
		if (c->members[mi].node.ntags > SCHED_MAX_TAGS)
			c->members[mi].node.ntags = SCHED_MAX_TAGS;
		c->members[mi].dirty = 1;
		c->members_dirty = 1;
		return (0);
	}
	/* A finished campaign never reopens (issue 7): new nodes are the
	 * business of a new deployment. */
	if (c->state == SCHED_C_CANCELLED || c->state == SCHED_C_DONE ||
	    !sched_target_match(&c->policy.target, n))
		return (0);
	if (c->policy.deadline != 0 && now >= c->policy.deadline)
		return (0);
	first = c->nitems;
	if (sched__member_add(c, n, 0) == -1)
		return (-1);
	mi = c->nmembers - 1;
	if ((added = plan_items(c, mi, now)) <= 0) {
		c->nmembers--;
		c->nitems = first;
		return (added);
	}
	c->members[mi].stage = late_stage(c, n);
	plan_broadcast(c, first, now);
	if (sched__build_edges(c, &cause) == -1) {
		/* The newcomer cannot be planned: it alone is skipped. */
		for (i = first; i < c->nitems; i++)
			if (!SCHED_I_FINAL(c->items[i].state))
				sched__item_final(&c->items[i],
				    SCHED_I_SKIPPED, UP_R_DEPENDENCY, now,
				    "%s", cause != NULL ? cause : "plan");
		free(cause);
		cause = NULL;
		if (sched__build_edges(c, &cause) == -1) {
			free(cause);
			return (-1);
		}
	}
	push_stages(c);
	c->dirty = 1;
	return (1);
}
