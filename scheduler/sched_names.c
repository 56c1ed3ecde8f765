/*
 * sched_names.c: the names a deployment's target and policy use, checked
 * against what the gateway knows (docs/campaigns.md, "Names a target
 * uses").
 *
 * A name is known when something attests that it exists: the
 * deployment's packages (their hardware models, components and
 * dependencies), the registry (every node's model, tags and components,
 * whether it is a target or not) or the gateway's configuration (its
 * transport instances).  A name nothing attests is a mistake (a typo, a
 * transport of another gateway): the deployment is refused with a cause
 * naming the item, because it would plan an empty campaign, or an
 * unconstrained one when the name was meant to exclude or to order.  A
 * known name that matches no node yet is not an error (a node of that
 * model may announce tomorrow): sched_policy_warnings says it, and
 * `upctl campaign' shows it for as long as it is true.
 *
 * Exclude tags and the test tag only warn: a tag that no node carries
 * excludes nothing, which is what a gateway without such nodes should do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

static bool
in_list(const char (*list)[CACHE_NAME_MAX + 1], size_t n, const char *s)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return (true);
	return (false);
}

static size_t
node_ntags(const struct sched_node *n)
{
	return (n->ntags < SCHED_MAX_TAGS ? n->ntags : SCHED_MAX_TAGS);
}

static size_t
node_ncomp(const struct sched_node *n)
{
	return (n->ncomp < UP_MAX_COMPONENTS ? n->ncomp : UP_MAX_COMPONENTS);
}

/* Nodes of model `hw'; packages that list it. */
static size_t
nodes_hw(const struct sched_known *k, const char *hw)
{
	size_t	 i, n = 0;

	for (i = 0; i < k->nnodes; i++)
		if (strcmp(k->nodes[i].hw, hw) == 0)
			n++;
	return (n);
}

static bool
pkgs_hw(const struct sched_known *k, const char *hw)
{
	size_t	 i;

	for (i = 0; i < k->npkgs; i++)
		if (in_list(k->pkgs[i].hw, (size_t)k->pkgs[i].nhw <
		    CACHE_HW_MAX ? (size_t)k->pkgs[i].nhw : CACHE_HW_MAX, hw))
			return (true);
	return (false);
}

/* A package of the deployment is for any model (lists none). */
static bool
pkgs_any_hw(const struct sched_known *k)
{
	size_t	 i;

	for (i = 0; i < k->npkgs; i++)
		if (k->pkgs[i].nhw == 0)
			return (true);
	return (false);
}

static size_t
nodes_tag(const struct sched_known *k, const char *tag)
{
	size_t	 i, n = 0;

	for (i = 0; i < k->nnodes; i++)
		if (in_list(k->nodes[i].tags, node_ntags(&k->nodes[i]), tag))
			n++;
	return (n);
}

static size_t
nodes_transport(const struct sched_known *k, const char *tp)
{
	size_t	 i, n = 0;

	for (i = 0; i < k->nnodes; i++)
		if (strcmp(k->nodes[i].transport, tp) == 0)
			n++;
	return (n);
}

static bool
transport_known(const struct sched_known *k, const char *tp)
{
	size_t	 i;

	for (i = 0; i < k->ntransports; i++)
		if (strcmp(k->transports[i], tp) == 0)
			return (true);
	return (false);
}

/* A component a package of the deployment brings or depends on. */
static bool
pkgs_component(const struct sched_known *k, const char *comp)
{
	size_t	 i;
	int	 d;

	for (i = 0; i < k->npkgs; i++) {
		if (strcmp(k->pkgs[i].component, comp) == 0)
			return (true);
		for (d = 0; d < k->pkgs[i].ndeps && d < 4; d++)
			if (strcmp(k->pkgs[i].dep_component[d], comp) == 0)
				return (true);
	}
	return (false);
}

static size_t
nodes_component(const struct sched_known *k, const char *comp)
{
	size_t	 i, j, n = 0;

	for (i = 0; i < k->nnodes; i++)
		for (j = 0; j < node_ncomp(&k->nodes[i]); j++)
			if (strcmp(k->nodes[i].comp[j].name, comp) == 0) {
				n++;
				break;
			}
	return (n);
}

/* A component this deployment updates (a package brings it). */
static bool
pkgs_bring(const struct sched_known *k, const char *comp)
{
	size_t	 i;

	for (i = 0; i < k->npkgs; i++)
		if (strcmp(k->pkgs[i].component, comp) == 0)
			return (true);
	return (false);
}

static int
check_tags(const struct sched_policy *p, const struct sched_known *k,
    const char *what, const char (*tags)[CACHE_NAME_MAX + 1], size_t n,
    char **cause)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (nodes_tag(k, tags[i]) == 0)
			return (sched__fail(cause, "deployment '%s': %s tag "
			    "'%s': no node carries it (tag nodes first: upctl "
			    "node ID tag add %s)", p->deployment, what, tags[i],
			    tags[i]));
	return (0);
}

int
sched_policy_check(const struct sched_policy *p, const struct sched_known *k,
    char **cause)
{
	const struct sched_target	*t = &p->target;
	char				 what[96];
	size_t				 i, j;

	for (i = 0; i < t->nhw + t->nphw; i++) {
		const char *hw = i < t->nhw ? t->hw[i] : t->phw[i - t->nhw];

		/* A node of that model would get nothing from here. */
		if (!pkgs_hw(k, hw) && !pkgs_any_hw(k))
			return (sched__fail(cause, "deployment '%s': %starget "
			    "hw '%s': no package of the deployment is for it",
			    p->deployment, i < t->nhw ? "" : "policy.", hw));
		if (!pkgs_hw(k, hw) && k->gateway && nodes_hw(k, hw) == 0)
			return (sched__fail(cause, "deployment '%s': %starget "
			    "hw '%s': no package names it and no node is that "
			    "model", p->deployment, i < t->nhw ? "" :
			    "policy.", hw));
	}
	if (!k->gateway)
		goto packages;
	for (i = 0; i < t->ntransports; i++)
		if (!transport_known(k, t->transports[i]))
			return (sched__fail(cause, "deployment '%s': "
			    "policy.target.transports: '%s': this gateway has "
			    "no such transport", p->deployment,
			    t->transports[i]));
	for (i = 0; i < p->nconc; i++)
		if (!transport_known(k, p->conc[i].transport))
			return (sched__fail(cause, "deployment '%s': "
			    "policy.concurrency: '%s': this gateway has no "
			    "such transport", p->deployment,
			    p->conc[i].transport));
	if (check_tags(p, k, "target", t->tags, t->ntags, cause) == -1)
		return (-1);
	for (i = 0; i < p->nstages; i++) {
		snprintf(what, sizeof(what), "policy.stages[%zu] '%s'", i,
		    p->stages[i].name);
		if (check_tags(p, k, what, p->stages[i].tags,
		    p->stages[i].ntags, cause) == -1)
			return (-1);
	}
	for (i = 0; i < t->ncomp; i++)
		if (!pkgs_component(k, t->comp[i].component) &&
		    nodes_component(k, t->comp[i].component) == 0)
			return (sched__fail(cause, "deployment '%s': "
			    "policy.target.components: '%s': no package of the "
			    "deployment and no node has that component",
			    p->deployment, t->comp[i].component));
packages:
	for (i = 0; i < p->norder; i++)
		if (!pkgs_bring(k, p->order[i]))
			return (sched__fail(cause, "deployment '%s': "
			    "policy.order[%zu]: '%s': no package of the "
			    "deployment is that component", p->deployment, i,
			    p->order[i]));
	for (i = 0; i < p->natomic; i++)
		for (j = 0; j < p->atomic[i].ncomp; j++)
			if (!pkgs_bring(k, p->atomic[i].comp[j]))
				return (sched__fail(cause, "deployment '%s': "
				    "policy.atomic[%zu].components: '%s': no "
				    "package of the deployment is that "
				    "component", p->deployment, i,
				    p->atomic[i].comp[j]));
	return (0);
}

static void
warn(json_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warn(json_t *a, const char *fmt, ...)
{
	va_list		 ap;
	char		 buf[SCHED_REASON_MAX + 1];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(a, json_string(buf));
}

json_t *
sched_policy_warnings(const struct sched_policy *p,
    const struct sched_known *k)
{
	const struct sched_target	*t = &p->target;
	json_t				*a;
	const char			*v;
	size_t				 i, j, targets = 0, n;

	if ((a = json_array()) == NULL)
		return (NULL);
	for (i = 0; i < t->nhw + t->nphw; i++) {
		const char *hw = i < t->nhw ? t->hw[i] : t->phw[i - t->nhw];

		if (nodes_hw(k, hw) == 0)
			warn(a, "target hw '%s': no node of that model yet",
			    hw);
	}
	for (i = 0; i < t->ntransports; i++)
		if (nodes_transport(k, t->transports[i]) == 0)
			warn(a, "target transport '%s': no node on it yet",
			    t->transports[i]);
	for (i = 0; i < t->ntags; i++)
		if (nodes_tag(k, t->tags[i]) == 0)
			warn(a, "target tag '%s': no node carries it yet",
			    t->tags[i]);
	for (i = 0; i < t->nxtags; i++)
		if (nodes_tag(k, t->xtags[i]) == 0)
			warn(a, "exclude tag '%s': no node carries it, it "
			    "excludes nothing", t->xtags[i]);
	if (t->group == SCHED_GROUP_TEST && nodes_tag(k, t->test_tag) == 0)
		warn(a, "group test: no node carries the test tag '%s' yet",
		    t->test_tag);
	for (i = 0; i < t->ncomp; i++) {
		for (j = 0, n = 0; j < k->nnodes; j++)
			if ((v = sched_node_version(&k->nodes[j],
			    t->comp[i].component)) != NULL &&
			    sched_range_match(&t->comp[i].range, v))
				n++;
		if (n == 0)
			warn(a, "target component %s '%s': no node runs a "
			    "version in that range", t->comp[i].component,
			    t->comp[i].range.text);
	}
	for (i = 0; i < k->nnodes; i++)
		if (sched_target_match(t, &k->nodes[i]))
			targets++;
	if (targets == 0)
		warn(a, "the target matches no node yet (%zu node%s known)",
		    k->nnodes, k->nnodes == 1 ? "" : "s");
	for (i = 0; i < p->nstages && targets > 0; i++) {
		if (p->stages[i].sel != SCHED_SEL_TAGS)
			continue;
		for (j = 0, n = 0; j < k->nnodes; j++) {
			size_t	 g;

			if (!sched_target_match(t, &k->nodes[j]))
				continue;
			for (g = 0; g < p->stages[i].ntags; g++)
				if (in_list(k->nodes[j].tags,
				    node_ntags(&k->nodes[j]),
				    p->stages[i].tags[g]))
					break;
			if (g < p->stages[i].ntags)
				n++;
		}
		if (n == 0)
			warn(a, "stage '%s': no target carries its tags yet",
			    p->stages[i].name);
	}
	return (a);
}
