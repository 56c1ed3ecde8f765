/*
 * sched_fixture.h: helpers shared by the scheduler's unit tests: a fake
 * clock, packages, nodes, and a policy parser that must succeed.
 */
#ifndef SCHED_FIXTURE_H
#define SCHED_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

struct fake_clock {
	int64_t		 now;
	int32_t		 off;
};

static int64_t
fake_now(void *arg)
{
	return (((struct fake_clock *)arg)->now);
}

static int32_t
fake_off(void *arg, int64_t t)
{
	(void)t;
	return (((struct fake_clock *)arg)->off);
}

static inline struct sched_clock
fake_clock(struct fake_clock *fc)
{
	struct sched_clock	 c = { fake_now, fake_off, fc };

	return (c);
}

/* 2026-11-23 (a Monday) 00:00:00 UTC. */
#define T_MON	1795392000LL

static inline void
mkpkg(struct cache_pkg *p, const char *id, const char *comp, const char *ver,
    const char *hw, int kind, const char *base, uint64_t size)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	snprintf(p->component, sizeof(p->component), "%s", comp);
	snprintf(p->version, sizeof(p->version), "%s", ver);
	if (hw != NULL) {
		p->nhw = 1;
		snprintf(p->hw[0], sizeof(p->hw[0]), "%s", hw);
	}
	p->kind = kind;
	if (base != NULL)
		snprintf(p->base_version, sizeof(p->base_version), "%s", base);
	p->size = size;
	p->image_size = size;
	p->sha256[0] = (uint8_t)size;
	p->sig_len = 64;
}

static inline void
mknode(struct sched_node *n, uint64_t id, const char *hw, const char *tp,
    const char *comp, const char *ver)
{
	sched_node_init(n, id);
	snprintf(n->hw, sizeof(n->hw), "%s", hw);
	snprintf(n->transport, sizeof(n->transport), "%s", tp);
	if (comp != NULL) {
		n->ncomp = 1;
		snprintf(n->comp[0].name, sizeof(n->comp[0].name), "%s", comp);
		snprintf(n->comp[0].version, sizeof(n->comp[0].version), "%s",
		    ver);
	}
}

static inline void
addcomp(struct sched_node *n, const char *comp, const char *ver)
{
	snprintf(n->comp[n->ncomp].name, sizeof(n->comp[0].name), "%s", comp);
	snprintf(n->comp[n->ncomp].version, sizeof(n->comp[0].version), "%s",
	    ver);
	n->ncomp++;
}

static inline void
addtag(struct sched_node *n, const char *tag)
{
	snprintf(n->tags[n->ntags++], sizeof(n->tags[0]), "%s", tag);
}

static inline void
policy_ok(struct sched_policy *p, const char *json)
{
	char	*cause = NULL;

	if (sched_policy_parse("d1", NULL, 0, NULL, 0, json, p, &cause) !=
	    0) {
		fprintf(stderr, "policy: %s\n", cause);
		abort();
	}
}

/* Error text of a policy that must fail (malloc'd). */
static inline char *
policy_err(const char *json)
{
	struct sched_policy	 p;
	char			*cause = NULL;

	if (sched_policy_parse("d1", NULL, 0, NULL, 0, json, &p, &cause) ==
	    0) {
		fprintf(stderr, "policy parsed but should not: %s\n", json);
		abort();
	}
	return (cause);
}

/* Counts decisions of a kind in out (for node, or any if node == 0). */
static inline size_t
count_dec(const struct sched_out *o, enum sched_dkind k, uint64_t node)
{
	size_t	 i, n = 0;

	for (i = 0; i < o->n; i++)
		if (o->d[i].kind == k && (node == 0 || o->d[i].node_id == node))
			n++;
	return (n);
}

static inline int
has_event(const struct sched_out *o, enum sched_event ev)
{
	size_t	 i;

	for (i = 0; i < o->n; i++)
		if (o->d[i].kind == SCHED_D_EVENT && o->d[i].event == ev)
			return (1);
	return (0);
}

#endif /* SCHED_FIXTURE_H */
