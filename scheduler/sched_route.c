/*
 * sched_route.c: full, delta or a chain of deltas per node, and per
 * group of nodes on a broadcast medium (docs/campaigns.md, "Routes").
 *
 * A delta applies on top of exactly its base version (the node checks
 * that and declines with UP_R_BASE_MISMATCH otherwise), so versions are
 * matched as strings here, not by sched_version_cmp().
 */
#include <string.h>

#include "sched_internal.h"

#define ROUTE_MAXV	(SCHED_MAX_PKGS + 2)
#define ROUTE_INF	UINT64_MAX

const char *
sched_target_version(const struct cache_pkg *pkgs, size_t n, const char *hw,
    const char *component)
{
	const char	*best = NULL;
	size_t		 i;

	for (i = 0; i < n; i++) {
		if (strcmp(pkgs[i].component, component) != 0 ||
		    !sched_hw_ok(&pkgs[i], hw))
			continue;
		if (best == NULL || sched_version_cmp(pkgs[i].version,
		    best) > 0)
			best = pkgs[i].version;
	}
	return (best);
}

/*
 * May package p take a node from `from' one step towards `to'?  Up, not
 * past `to'; or, for a package the cloud signed as a downgrade (docs/
 * up-protocol.md §5.4), down straight onto `to'.
 */
static bool
route_step_ok(const struct cache_pkg *p, const char *from, const char *to)
{
	int	 c = sched_version_cmp(p->version, from);

	if (c > 0)
		return (sched_version_cmp(p->version, to) <= 0);
	return (c < 0 && p->allow_downgrade &&
	    sched_version_cmp(p->version, to) == 0);
}

static int
route_vertex(const char **v, int *nv, const char *s)
{
	int	 i;

	for (i = 0; i < *nv; i++)
		if (strcmp(v[i], s) == 0)
			return (i);
	if (*nv == ROUTE_MAXV)
		return (-1);
	v[*nv] = s;
	return ((*nv)++);
}

int
sched_route(const struct cache_pkg *pkgs, size_t n, const char *hw,
    const char *component, const char *from, const char *to,
    uint64_t step_cost, int no_full, struct sched_route *r)
{
	const char		*v[ROUTE_MAXV];
	uint64_t		 dist[SCHED_MAX_STEPS + 1][ROUTE_MAXV], c;
	int			 pk[SCHED_MAX_STEPS + 1][ROUTE_MAXV];
	int			 pv[SCHED_MAX_STEPS + 1][ROUTE_MAXV];
	const struct cache_pkg	*p;
	int			 nv = 0, l, u, w, t, best_l = -1;
	size_t			 i;

	memset(r, 0, sizeof(*r));
	if (n > SCHED_MAX_PKGS)
		n = SCHED_MAX_PKGS;
	route_vertex(v, &nv, from);
	for (i = 0; i < n; i++)
		if (strcmp(pkgs[i].component, component) == 0)
			route_vertex(v, &nv, pkgs[i].version);
	t = route_vertex(v, &nv, to);
	if (t <= 0)
		return (-1);		/* nothing to do is not a route */
	for (l = 0; l <= SCHED_MAX_STEPS; l++)
		for (u = 0; u < nv; u++)
			dist[l][u] = ROUTE_INF, pk[l][u] = pv[l][u] = -1;
	dist[0][0] = 0;
	/*
	 * Bellman-Ford by number of steps: dist[l][v] is the cheapest way
	 * to v in exactly l steps.  Routes never go down (an intermediate
	 * version lies above `from' and not above `to'), but for one step
	 * the cloud signed as a downgrade, which lands on `to' itself.
	 */
	for (l = 1; l <= SCHED_MAX_STEPS; l++)
		for (u = 0; u < nv; u++) {
			if (dist[l - 1][u] == ROUTE_INF)
				continue;
			for (i = 0; i < n; i++) {
				p = &pkgs[i];
				if (strcmp(p->component, component) != 0 ||
				    !sched_hw_ok(p, hw))
					continue;
				if (p->kind == UP_KIND_DELTA) {
					if (strcmp(p->base_version, v[u]) != 0)
						continue;
				} else if (no_full)
					continue;
				if (!route_step_ok(p, v[u], to))
					continue;
				w = route_vertex(v, &nv, p->version);
				c = dist[l - 1][u] + p->size + step_cost;
				if (c < dist[l][w]) {
					dist[l][w] = c;
					pk[l][w] = (int)i;
					pv[l][w] = u;
				}
			}
		}
	for (l = 1; l <= SCHED_MAX_STEPS; l++)
		if (dist[l][t] != ROUTE_INF &&
		    (best_l < 0 || dist[l][t] < dist[best_l][t]))
			best_l = l;
	if (best_l < 0)
		return (-1);
	r->nsteps = best_l;
	for (l = best_l, u = t; l > 0; l--) {
		r->step[l - 1] = &pkgs[pk[l][u]];
		r->bytes += pkgs[pk[l][u]].size;
		u = pv[l][u];
	}
	r->full = (r->nsteps == 1 && r->step[0]->kind == UP_KIND_FULL);
	return (0);
}

/* The smallest full image of `to' for hw, or NULL. */
static const struct cache_pkg *
route_full(const struct cache_pkg *pkgs, size_t n, const char *hw,
    const char *component, const char *to)
{
	const struct cache_pkg	*best = NULL;
	size_t			 i;

	for (i = 0; i < n; i++)
		if (pkgs[i].kind == UP_KIND_FULL &&
		    strcmp(pkgs[i].component, component) == 0 &&
		    strcmp(pkgs[i].version, to) == 0 &&
		    sched_hw_ok(&pkgs[i], hw) &&
		    (best == NULL || pkgs[i].size < best->size))
			best = &pkgs[i];
	return (best);
}

/* Airtime a route adds to what `used' already sends; marks it used. */
static uint64_t
route_marginal(const struct sched_route *r, const struct cache_pkg **used,
    size_t *nused, int commit)
{
	uint64_t	 add = 0;
	size_t		 j, k, n0 = *nused;
	int		 s;

	for (s = 0; s < r->nsteps; s++) {
		for (j = 0; j < *nused; j++)
			if (used[j] == r->step[s])
				break;
		if (j < *nused)
			continue;
		add += r->step[s]->size;
		if (*nused < SCHED_MAX_PKGS)
			used[(*nused)++] = r->step[s];
	}
	if (!commit) {
		for (k = n0; k < *nused; k++)
			used[k] = NULL;
		*nused = n0;
	}
	return (add);
}

uint64_t
sched_broadcast_choose(const struct cache_pkg *pkgs, size_t n,
    const char *hw, const char *component, const char *to,
    unsigned int listen_pct, struct sched_bgroup *g, size_t ng)
{
	const struct cache_pkg	*full, *used[SCHED_MAX_PKGS];
	struct sched_route	 dr[64];
	int			 has[64], order[64];
	uint64_t		 off = 0, on, a, d, f;
	size_t			 i, j, nused = 0;
	int			 all = 1, tmp;

	if (ng > 64)
		return (UINT64_MAX);
	full = route_full(pkgs, n, hw, component, to);
	for (i = 0; i < ng; i++) {
		has[i] = sched_route(pkgs, n, hw, component, g[i].base, to, 0,
		    1, &dr[i]) == 0;
		all &= has[i];
		order[i] = (int)i;
	}
	if (!all && full == NULL)
		return (UINT64_MAX);
	/* Largest groups first: they gain most from their own session. */
	for (i = 1; i < ng; i++)
		for (j = i; j > 0 && g[order[j]].nnodes >
		    g[order[j - 1]].nnodes; j--)
			tmp = order[j], order[j] = order[j - 1],
			    order[j - 1] = tmp;

	/* Costs are kept x100 so listen_pct needs no floating point. */
	if (all) {
		for (i = 0; i < ng; i++)
			off += 100 * route_marginal(&dr[i], used, &nused, 1) +
			    (uint64_t)listen_pct * g[i].nnodes * dr[i].bytes;
	} else
		off = UINT64_MAX;
	on = UINT64_MAX;
	if (full != NULL) {
		nused = 0;
		on = 100 * full->size;
		for (i = 0; i < ng; i++) {
			j = (size_t)order[i];
			f = (uint64_t)listen_pct * g[j].nnodes * full->size;
			if (has[j]) {
				a = route_marginal(&dr[j], used, &nused, 0);
				d = 100 * a + (uint64_t)listen_pct *
				    g[j].nnodes * dr[j].bytes;
			} else
				d = UINT64_MAX;
			if (d < f) {
				route_marginal(&dr[j], used, &nused, 1);
				on += d;
			} else
				on += f;
		}
	}
	/* Apply the cheaper plan (ties go to deltas: fewer bytes per node). */
	nused = 0;
	for (i = 0; i < ng; i++) {
		j = (size_t)order[i];
		memset(&g[j].route, 0, sizeof(g[j].route));
		g[j].use_full = 0;
		if (off <= on) {
			g[j].route = dr[j];
			continue;
		}
		f = (uint64_t)listen_pct * g[j].nnodes * full->size;
		d = UINT64_MAX;
		if (has[j])
			d = 100 * route_marginal(&dr[j], used, &nused, 0) +
			    (uint64_t)listen_pct * g[j].nnodes * dr[j].bytes;
		if (d < f) {
			route_marginal(&dr[j], used, &nused, 1);
			g[j].route = dr[j];
		} else {
			g[j].use_full = 1;
			g[j].route.nsteps = 1;
			g[j].route.step[0] = full;
			g[j].route.bytes = full->size;
			g[j].route.full = 1;
		}
	}
	return ((off <= on ? off : on) / 100);
}
