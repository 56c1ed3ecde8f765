/*
 * fo_route.c: topology from the link (docs/fanout.md, "Topology from
 * the link").
 *
 * A link that relays through its own nodes knows where each sits: a PLC
 * carrier module keeps a routing tree of its stations (Q/GDW 1376.2 AFN
 * 10H F21, docs/transports/plc.md "Topology") and the plugin reports
 * each station's relay level and parent (TP_PEER_FOUND, TP_PEER_ROUTE,
 * engine callback peer_route).  The plugin speaks of link addresses;
 * the registry and the scheduler of node ids.  So each route is kept
 * here by (link, address) until the node at that address is known (its
 * ANNOUNCE from there), and then, as the parent's node becomes known
 * too, written to the registry: parent (the node at the parent's
 * address, 0 when the module itself hears it or the parent is not known
 * yet), level, and role: a node that other nodes route through is a
 * relay, so the scheduler updates it after every node behind it
 * (docs/campaigns.md, topology edges).  A node no longer relaying goes
 * back to leaf; a coordinator or gateway role a technician set is kept.
 * What the link says wins over `upctl node ID topology' for parent and
 * level: the module sees the live tree.
 *
 * Routes are few (one per station behind a module, a few thousand at
 * most) and change rarely (a topology walk, a station that moved): a
 * change applies the routes it touches (the peer's, its old and new
 * parent's, and, when its node becomes known, its children's), each in
 * a linear pass over the table; a new route looks its node up in the
 * registry by address (a scan), for nodes that announced first.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fanout_internal.h"

struct fo_route {
	char		 link[FO_NAME_MAX + 1];
	struct tp_addr	 addr;
	struct tp_addr	 parent;	/* len 0: none */
	uint8_t		 level;
	uint64_t	 node;		/* heard at addr, 0: not yet */
};

static struct fo_route *
route_find(struct fanout *f, const char *link, const struct tp_addr *a)
{
	size_t	 i;

	if (a->len == 0)
		return (NULL);
	for (i = 0; i < f->nroutes; i++)
		if (strcmp(f->routes[i].link, link) == 0 &&
		    tp_addr_eq(&f->routes[i].addr, a))
			return (&f->routes[i]);
	return (NULL);
}

/* Does any route of `link' name `a' as its parent? */
static bool
route_relays(struct fanout *f, const struct fo_route *r)
{
	size_t	 i;

	for (i = 0; i < f->nroutes; i++)
		if (strcmp(f->routes[i].link, r->link) == 0 &&
		    f->routes[i].parent.len != 0 &&
		    tp_addr_eq(&f->routes[i].parent, &r->addr))
			return (true);
	return (false);
}

/*
 * Writes what route r says of its node if that differs: parent, level,
 * role.  Returns the node when it changed, else 0.
 */
static uint64_t
route_apply(struct fanout *f, struct fo_route *r)
{
	const struct registry_node	*rn;
	struct fo_route			*pr;
	uint64_t			 parent = 0;
	uint8_t				 role;
	char				*cause = NULL;

	if (r->node == 0 || (rn = registry_get(f->reg, r->node)) == NULL)
		return (0);
	if ((pr = route_find(f, r->link, &r->parent)) != NULL &&
	    pr->node != r->node)
		parent = pr->node;
	else if (pr == NULL && r->parent.len != 0 &&
	    (parent = registry_find_addr(f->reg, r->link, &r->parent)) ==
	    r->node)
		parent = 0;
	role = rn->role;
	if (role == SCHED_ROLE_LEAF || role == SCHED_ROLE_RELAY)
		role = route_relays(f, r) ? SCHED_ROLE_RELAY : SCHED_ROLE_LEAF;
	if (rn->parent == parent && rn->level == r->level && rn->role == role)
		return (0);
	if (registry_set_topology(f->reg, r->node, parent, r->level, role,
	    &cause) != 0) {
		log_warnx("%s: node 0x%016" PRIx64 ": %s", r->link, r->node,
		    cause);
		free(cause);
		return (0);
	}
	log_info("%s: node 0x%016" PRIx64 " at level %u, parent 0x%016"
	    PRIx64 "%s (from the link)", r->link, r->node, r->level, parent,
	    role == SCHED_ROLE_RELAY ? ", a relay" : "");
	return (r->node);
}

/*
 * Applies the routes at the addresses in a[0..n) (some may be absent),
 * then tells the scheduler of each node that changed.  Routes are
 * looked up by address, not kept as pointers: the table may move.
 */
static void
route_update(struct fanout *f, const char *link, const struct tp_addr *a,
    size_t n)
{
	struct fo_route	*r;
	uint64_t	 changed[8];
	size_t		 i, k = 0;

	for (i = 0; i < n && k < sizeof(changed) / sizeof(changed[0]); i++)
		if ((r = route_find(f, link, &a[i])) != NULL &&
		    (changed[k] = route_apply(f, r)) != 0)
			k++;
	for (i = 0; i < k; i++)
		fanout_node_changed(f, changed[i]);
}

/* The engine's peer_route callback. */
void
fanout__route(struct fanout *f, struct eng_link *l,
    const struct tp_addr *peer, const struct tp_addr *parent, uint8_t level)
{
	const char	*link = eng_link_name(l);
	struct fo_route	*r;
	struct tp_addr	 a[3];

	if (peer->len == 0 || level == 0)
		return;
	if ((r = route_find(f, link, peer)) == NULL) {
		if (f->nroutes == f->routes_cap) {
			f->routes_cap = f->routes_cap == 0 ? 64 :
			    f->routes_cap * 2;
			f->routes = xreallocarray(f->routes, f->routes_cap,
			    sizeof(*f->routes));
		}
		r = &f->routes[f->nroutes++];
		memset(r, 0, sizeof(*r));
		fanout__strlcpy(r->link, link, sizeof(r->link));
		r->addr = *peer;
		/* Its node may have announced already. */
		r->node = registry_find_addr(f->reg, link, peer);
	} else if (r->level == level && ((r->parent.len == 0 &&
	    parent->len == 0) || tp_addr_eq(&r->parent, parent)))
		return;		/* nothing moved */
	/* It, its old parent and its new one (their relay roles). */
	a[0] = *peer;
	a[1] = r->parent;
	a[2] = *parent;
	r->level = level;
	if (parent->len != 0)
		r->parent = *parent;
	else
		memset(&r->parent, 0, sizeof(r->parent));
	route_update(f, link, a, 3);
}

/* A node announced itself on link l from `src'. */
void
fanout__route_heard(struct fanout *f, struct eng_link *l,
    const struct tp_addr *src, uint64_t node)
{
	const char	*link = eng_link_name(l);
	struct fo_route	*r;
	size_t		 i;

	if ((r = route_find(f, link, src)) == NULL || r->node == node)
		return;
	/* Another route that had this node (it moved) lets it go. */
	for (i = 0; i < f->nroutes; i++)
		if (f->routes[i].node == node)
			f->routes[i].node = 0;
	r->node = node;
	route_update(f, link, src, 1);
	/* The routes behind it now know their parent's node. */
	for (i = 0; i < f->nroutes; i++)
		if (strcmp(f->routes[i].link, link) == 0 &&
		    f->routes[i].parent.len != 0 &&
		    tp_addr_eq(&f->routes[i].parent, src))
			route_update(f, link, &f->routes[i].addr, 1);
}

void
fanout__route_fini(struct fanout *f)
{
	free(f->routes);
	f->routes = NULL;
	f->nroutes = f->routes_cap = 0;
}
