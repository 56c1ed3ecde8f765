/*
 * sched_choose.c: which package a node gets.
 */
#include <string.h>

#include "sched.h"

int
sched_hw_ok(const struct cache_pkg *p, const char *hw)
{
	int	 i;

	if (p->nhw == 0)
		return (1);
	for (i = 0; i < p->nhw; i++)
		if (strcmp(p->hw[i], hw) == 0)
			return (1);
	return (0);
}

static const char *
sched__running(const struct sched_node *node, const char *component)
{
	size_t	 i;

	for (i = 0; i < node->ncomp; i++)
		if (strcmp(node->comp[i].name, component) == 0)
			return (node->comp[i].version);
	return (NULL);
}

const struct cache_pkg *
sched_choose(const struct cache_pkg *pkgs, size_t n,
    const struct sched_node *node, const char *component)
{
	const struct cache_pkg	*best = NULL, *p;
	const char		*running;
	size_t			 i;
	int			 c;

	if ((running = sched__running(node, component)) == NULL)
		return (NULL);
	for (i = 0; i < n; i++) {
		p = &pkgs[i];
		if (strcmp(p->component, component) != 0 ||
		    !sched_hw_ok(p, node->hw) || !sched_may_offer(p, running))
			continue;
		/* A delta only applies on top of exactly its base. */
		if (p->kind == UP_KIND_DELTA &&
		    strcmp(p->base_version, running) != 0)
			continue;
		if (best == NULL) {
			best = p;
			continue;
		}
		c = sched_version_cmp(p->version, best->version);
		if (c > 0 || (c == 0 && p->size < best->size))
			best = p;
	}
	return (best);
}
