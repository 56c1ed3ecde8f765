/*
 * plc_topo.c: the station area's topology as the carrier module knows it
 * (docs/transports/plc.md, "Topology").
 *
 * The module routes; the concentrator only asks.  An HPLC module answers
 * "query network topology" (10H F21) with pages of nodes, each with its
 * address, its TEI, its proxy's TEI (the PCO that relays for it; the
 * CCO's TEI for a node it hears directly) and its level and role.  The
 * walk reads every page, then finds each station's parent by its proxy
 * TEI.  A module that refuses F21 (older narrowband modules) gives the
 * station list instead (10H F2: each station's relay level), and for a
 * relayed station its upper relays (10H F3): the first is its parent.
 *
 * Each station then goes to the host as a peer (TP_PEER_FOUND once, then
 * TP_PEER_ROUTE when its level or parent changes) with tp_peer_info's
 * level and parent, which the daemon writes to its registry so that
 * relays update after the stations behind them.  A walk runs when the
 * module is set up (or restarted) and every topology_interval_s.
 */
#include <string.h>

#include "up.h"
#include "plc_internal.h"

/* Bytes of a page entry: 10H F21 (address, TEI, proxy, level/role) and
 * 10H F2 (address, information word); and of a page's header. */
#define PLC_TOPO_ENTRY		11
#define PLC_NODE_ENTRY		8
#define PLC_TOPO_HDR		5

static void	 plc_topo_done(struct tp *);
static void	 plc_topo_notify(struct tp *);

struct plc_peer *
plc_topo_peer(struct tp *tp, const uint8_t addr[PLC_ADDR_LEN], bool add)
{
	struct plc_peer	*p;
	size_t		 i;

	for (i = 0; i < tp->npeers; i++)
		if (memcmp(tp->peers[i].addr, addr, PLC_ADDR_LEN) == 0)
			return (&tp->peers[i]);
	if (!add)
		return (NULL);
	if (tp->npeers == tp->max_peers) {
		tp_plc__log(tp, UP_LOG_WARN, "more than max_stations (%zu) "
		    "stations: the others are ignored", tp->max_peers);
		return (NULL);
	}
	p = &tp->peers[tp->npeers++];
	memset(p, 0, sizeof(*p));
	memcpy(p->addr, addr, PLC_ADDR_LEN);
	return (p);
}

/* Entries a page may hold, within the module's longest frame. */
static uint8_t
plc_topo_page_max(struct tp *tp, size_t entry)
{
	size_t		 n;

	n = (tp->mode.max_frame - PLC_OVERHEAD - PLC_TOPO_HDR) / entry;
	if (n > PLC_PAGE_MAX)
		n = PLC_PAGE_MAX;
	return ((uint8_t)(n < 1 ? 1 : n));
}

void
plc_topo_start(struct tp *tp)
{
	size_t		 i;

	tp->walk = tp->no_f21 ? PLC_WALK_NODES : PLC_WALK_TOPOLOGY;
	tp->walk_start = 1;
	tp->walk_relay = 0;
	tp->next_walk_ms = plc_now_ms(tp) + tp->topology_ms;
	for (i = 0; i < tp->npeers; i++)
		tp->peers[i].seen = false;
	plc_link_kick(tp);
}

bool
plc_topo_pump(struct tp *tp)
{
	struct plc_wr	 w;
	struct plc_peer	*p;
	uint8_t		 du[8];

	plc_wr_init(&w, du, sizeof(du));
	switch (tp->walk) {
	case PLC_WALK_IDLE:
		return (false);
	case PLC_WALK_TOPOLOGY:
		(void)plc_du_page(&w, tp->walk_start,
		    plc_topo_page_max(tp, PLC_TOPO_ENTRY));
		return (plc_link_request(tp, PLC_REQ_TOPOLOGY,
		    PLC_AFN_ROUTE_QUERY, PLC_FN_TOPOLOGY, NULL, du, w.len,
		    tp->timeout_ms, tp->walk_start, 0) == 0);
	case PLC_WALK_NODES:
		(void)plc_du_page(&w, tp->walk_start,
		    plc_topo_page_max(tp, PLC_NODE_ENTRY));
		return (plc_link_request(tp, PLC_REQ_NODE_INFO,
		    PLC_AFN_ROUTE_QUERY, PLC_FN_NODE_INFO, NULL, du, w.len,
		    tp->timeout_ms, tp->walk_start, 0) == 0);
	case PLC_WALK_RELAYS:
		/* The next station behind a relay. */
		for (; tp->walk_relay < tp->npeers; tp->walk_relay++) {
			p = &tp->peers[tp->walk_relay];
			if (p->seen && p->level > 1)
				break;
		}
		if (tp->walk_relay == tp->npeers) {
			plc_topo_done(tp);
			return (false);
		}
		p = &tp->peers[tp->walk_relay];
		return (plc_link_request(tp, PLC_REQ_NODE_RELAY,
		    PLC_AFN_ROUTE_QUERY, PLC_FN_NODE_RELAY, NULL, p->addr,
		    PLC_ADDR_LEN, tp->timeout_ms, (uint32_t)tp->walk_relay,
		    0) == 0);
	}
	return (false);
}

void
plc_topo_answer(struct tp *tp, const struct plc_frame *f)
{
	struct plc_topo_page tpg;
	struct plc_node_page npg;
	struct plc_peer	*p;
	unsigned int	 i;
	int		 e;

	tp->req.kind = PLC_REQ_NONE;
	switch (f->fn) {
	case PLC_FN_TOPOLOGY:
		if ((e = plc_du_topology_dec(f->data, f->len, &tpg)) !=
		    PLC_OK || tpg.start != tp->walk_start) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "topology page dropped: %s",
			    e != PLC_OK ? plc_strerror(e) : "another page");
			tp->walk = PLC_WALK_IDLE;
			return;
		}
		for (i = 0; i < tpg.n; i++) {
			if (tpg.node[i].role == PLC_ROLE_CCO ||
			    tpg.node[i].level == 0) {
				tp->cco_tei = tpg.node[i].tei;
				continue;
			}
			if ((p = plc_topo_peer(tp, tpg.node[i].addr, true)) ==
			    NULL)
				continue;
			p->seen = true;
			p->tei = tpg.node[i].tei;
			p->proxy = tpg.node[i].proxy;
			p->level = tpg.node[i].level;
			p->role = tpg.node[i].role;
		}
		if (tpg.n == 0 || (uint32_t)tp->walk_start + tpg.n >
		    tpg.total)
			plc_topo_done(tp);
		else
			tp->walk_start = (uint16_t)(tp->walk_start + tpg.n);
		return;
	case PLC_FN_NODE_INFO:
		if ((e = plc_du_node_info_dec(f->data, f->len, &npg)) !=
		    PLC_OK) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "station list page dropped: "
			    "%s",
			    plc_strerror(e));
			tp->walk = PLC_WALK_IDLE;
			return;
		}
		for (i = 0; i < npg.n; i++) {
			if ((p = plc_topo_peer(tp, npg.node[i].addr, true)) ==
			    NULL)
				continue;
			p->seen = true;
			p->tei = 0;
			p->level = (uint8_t)(npg.node[i].relay_level + 1);
			p->role = PLC_ROLE_STA;
			if (p->level == 1)
				p->has_parent = false;
		}
		if (npg.n == 0 || (uint32_t)tp->walk_start + npg.n >
		    npg.total) {
			tp->walk = PLC_WALK_RELAYS;
			tp->walk_relay = 0;
		} else
			tp->walk_start = (uint16_t)(tp->walk_start + npg.n);
		return;
	case PLC_FN_NODE_RELAY:
		p = tp->req.arg < tp->npeers ? &tp->peers[tp->req.arg] : NULL;
		if ((e = plc_du_node_relay_dec(f->data, f->len, &npg)) !=
		    PLC_OK) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO, "relay list dropped: %s",
			    plc_strerror(e));
		} else if (p != NULL && npg.n > 0) {
			/* The first upper relay is the one it uses. */
			p->has_parent = true;
			memcpy(p->parent, npg.node[0].addr, PLC_ADDR_LEN);
			if (plc_topo_peer(tp, p->parent, false) != NULL)
				plc_topo_peer(tp, p->parent, false)->role =
				    PLC_ROLE_PCO;
		}
		tp->walk_relay++;
		return;
	}
}

void
plc_topo_failed(struct tp *tp, int deny)
{
	switch (tp->req.kind) {
	case PLC_REQ_TOPOLOGY:
		if (deny == PLC_DENY_UNSUPPORTED || deny == PLC_DENY_NO_INFO ||
		    deny == PLC_DENY_BAD_DU) {
			tp_plc__log(tp, UP_LOG_INFO,
			    "the module has no network "
			    "topology (10H F21): station list and relays "
			    "instead");
			tp->no_f21 = true;
			tp->walk = PLC_WALK_NODES;
			tp->walk_start = 1;
			return;
		}
		break;
	case PLC_REQ_NODE_RELAY:
		if (deny >= 0) {
			/* That one's parent stays unknown. */
			tp->walk_relay++;
			return;
		}
		break;
	default:
		break;
	}
	/* Try the whole walk again soon. */
	tp->walk = PLC_WALK_IDLE;
	tp->next_walk_ms = plc_now_ms(tp) + 5000;
}

/* Every page is in: parents by proxy TEI, then the host hears. */
static void
plc_topo_done(struct tp *tp)
{
	struct plc_peer	*p, *q;
	size_t		 i, j;

	tp->walk = PLC_WALK_IDLE;
	for (i = 0; i < tp->npeers; i++) {
		p = &tp->peers[i];
		if (!p->seen || p->tei == 0)
			continue;
		p->has_parent = false;
		if (p->proxy == tp->cco_tei || p->level <= 1)
			continue;
		for (j = 0; j < tp->npeers; j++) {
			q = &tp->peers[j];
			if (q->seen && q->tei == p->proxy && q != p) {
				p->has_parent = true;
				memcpy(p->parent, q->addr, PLC_ADDR_LEN);
				break;
			}
		}
	}
	plc_topo_notify(tp);
}

static void
plc_topo_notify(struct tp *tp)
{
	struct tp_peer_info info;
	struct tp_addr	 a;
	struct plc_peer	*p;
	unsigned int	 found = 0, moved = 0;
	size_t		 i;
	bool		 changed;

	for (i = 0; i < tp->npeers && !tp->dead; i++) {
		p = &tp->peers[i];
		if (!p->seen)
			continue;
		changed = p->told_level != p->level ||
		    p->told_has_parent != p->has_parent ||
		    (p->has_parent && memcmp(p->told_parent, p->parent,
		    PLC_ADDR_LEN) != 0);
		if (p->told && !changed)
			continue;
		memset(&info, 0, sizeof(info));
		info.rssi_dbm = INT16_MAX;
		info.level = p->level;
		if (p->has_parent) {
			info.parent.len = PLC_ADDR_LEN;
			memcpy(info.parent.b, p->parent, PLC_ADDR_LEN);
		}
		memset(&a, 0, sizeof(a));
		a.len = PLC_ADDR_LEN;
		memcpy(a.b, p->addr, PLC_ADDR_LEN);
		if (p->told)
			moved++;
		else
			found++;
		p->told_level = p->level;
		p->told_has_parent = p->has_parent;
		memcpy(p->told_parent, p->parent, PLC_ADDR_LEN);
		if (tp->host->peer != NULL)
			tp->host->peer(tp->host->arg, tp, &a, p->told ?
			    TP_PEER_ROUTE : TP_PEER_FOUND, &info);
		p->told = true;
	}
	if (found + moved > 0)
		tp_plc__log(tp, UP_LOG_INFO,
		    "topology: %u new stations, %u moved, "
		    "%zu known",
		    found, moved, tp->npeers);
}
