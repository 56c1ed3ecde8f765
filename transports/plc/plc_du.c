/*
 * plc_du.c: the data units of the AFNs the plc transport speaks (Q/GDW
 * 1376.2-2013 §5.5; docs/transports/plc.md has each layout with its
 * section).
 *
 * Each data unit has an encoder (into a struct plc_wr) and a decoder
 * (from the frame's data unit).  Decoders check every length before they
 * read, refuse counts over what the page structs hold and refuse bytes
 * left over after the last field: a data unit is taken whole or not at
 * all.  Both directions are here because the unit tests check each
 * against the standard's layouts both ways; the module side of the
 * simulator (node-stubs/) has its own codec and does not link this one.
 */
#include <string.h>

#include "plc_internal.h"

/* The end of a decoder: short input, then leftovers, are errors. */
static int
plc_du_end(const struct plc_cur *c)
{
	if (c->err != 0)
		return (PLC_E_SHORT);
	if (c->off != c->len)
		return (PLC_E_FORMAT);
	return (PLC_OK);
}

/* ------------------------------------------------------------------ */
/* 00H: confirm / deny                                                  */

int
plc_du_confirm(struct plc_wr *w, const struct plc_confirm *a)
{
	plc_put_u32(w, (a->channels << 1) | (a->done ? 1u : 0u));
	plc_put_u16(w, a->wait_s);
	return (w->err);
}

int
plc_du_confirm_dec(const uint8_t *p, size_t len, struct plc_confirm *a)
{
	struct plc_cur	 c;
	uint32_t	 bits;

	plc_cur_init(&c, p, len);
	bits = plc_get_u32(&c);
	a->done = (bits & 1) != 0;
	a->channels = bits >> 1;
	a->wait_s = plc_get_u16(&c);
	return (plc_du_end(&c));
}

int
plc_du_deny_dec(const uint8_t *p, size_t len, unsigned int *code)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	*code = plc_get_u8(&c);
	return (plc_du_end(&c));
}

/* ------------------------------------------------------------------ */
/* 03H F10: the module's run mode information                           */

int
plc_du_run_mode(struct plc_wr *w, const struct plc_run_mode *m)
{
	unsigned int	 i;

	if (m->nrates > PLC_RATES_MAX)
		return (PLC_E_RANGE);
	/* The six-byte mode word. */
	plc_put_u8(w, (uint8_t)((m->comm & 0x0f) | (m->routing ? 0x10 : 0) |
	    (m->need_list ? 0x20 : 0) | (m->read_mode & 3) << 6));
	plc_put_u8(w, (uint8_t)((m->delay_support & 7) |
	    (m->bc_confirm_first ? 0x20 : 0)));
	plc_put_u8(w, (uint8_t)(m->channels & 0x1f));
	plc_put_u8(w, (uint8_t)(m->nrates & 0x0f));
	plc_put_u8(w, 0);
	plc_put_u8(w, 0);
	plc_put_u8(w, m->monitor_s);
	plc_put_u16(w, m->broadcast_s);
	plc_put_u16(w, m->max_frame);
	plc_put_u16(w, m->max_segment);
	plc_put_u8(w, m->upgrade_wait);
	plc_put_bytes(w, m->master, PLC_ADDR_LEN);
	plc_put_u16(w, m->max_nodes);
	plc_put_u16(w, m->nodes);
	plc_put_bytes(w, m->published, 3);
	plc_put_bytes(w, m->recorded, 3);
	plc_put_bytes(w, m->vendor, 2);
	plc_put_bytes(w, m->chip, 2);
	plc_put_bytes(w, m->ver_date, 3);
	plc_put_u8(w, (uint8_t)(m->version >> 8));
	plc_put_u8(w, (uint8_t)m->version);
	for (i = 0; i < m->nrates; i++)
		plc_put_u16(w, m->rate[i]);
	return (w->err);
}

int
plc_du_run_mode_dec(const uint8_t *p, size_t len, struct plc_run_mode *m)
{
	struct plc_cur	 c;
	uint8_t		 b;
	unsigned int	 i;

	memset(m, 0, sizeof(*m));
	plc_cur_init(&c, p, len);
	b = plc_get_u8(&c);
	m->comm = b & 0x0f;
	m->routing = (b & 0x10) != 0;
	m->need_list = (b & 0x20) != 0;
	m->read_mode = b >> 6;
	b = plc_get_u8(&c);
	m->delay_support = b & 7;
	m->bc_confirm_first = (b & 0x20) != 0;
	m->channels = plc_get_u8(&c) & 0x1f;
	m->nrates = plc_get_u8(&c) & 0x0f;
	(void)plc_get_u8(&c);
	(void)plc_get_u8(&c);
	m->monitor_s = plc_get_u8(&c);
	m->broadcast_s = plc_get_u16(&c);
	m->max_frame = plc_get_u16(&c);
	m->max_segment = plc_get_u16(&c);
	m->upgrade_wait = plc_get_u8(&c);
	plc_get_bytes(&c, m->master, PLC_ADDR_LEN);
	m->max_nodes = plc_get_u16(&c);
	m->nodes = plc_get_u16(&c);
	plc_get_bytes(&c, m->published, 3);
	plc_get_bytes(&c, m->recorded, 3);
	plc_get_bytes(&c, (uint8_t *)m->vendor, 2);
	plc_get_bytes(&c, (uint8_t *)m->chip, 2);
	plc_get_bytes(&c, m->ver_date, 3);
	m->version = (uint16_t)(plc_get_u8(&c) << 8);
	m->version |= plc_get_u8(&c);
	for (i = 0; i < m->nrates; i++)
		m->rate[i] = plc_get_u16(&c);
	return (plc_du_end(&c));
}

/* ------------------------------------------------------------------ */
/* 05H F3, 06H F5, 13H F1: messages carried for a station               */

int
plc_du_broadcast(struct plc_wr *w, uint8_t ctrl, const uint8_t *msg,
    size_t len)
{
	if (len > 255)
		return (PLC_E_RANGE);
	plc_put_u8(w, ctrl);
	plc_put_u8(w, (uint8_t)len);
	plc_put_bytes(w, msg, len);
	return (w->err);
}

int
plc_du_broadcast_dec(const uint8_t *p, size_t len, uint8_t *ctrl,
    const uint8_t **msg, size_t *msglen)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	*ctrl = plc_get_u8(&c);
	*msglen = plc_get_u8(&c);
	*msg = plc_get_ref(&c, *msglen);
	return (plc_du_end(&c));
}

int
plc_du_event(struct plc_wr *w, uint8_t devtype, uint8_t proto,
    const uint8_t *msg, size_t len)
{
	if (len > 255)
		return (PLC_E_RANGE);
	plc_put_u8(w, devtype);
	plc_put_u8(w, proto);
	plc_put_u8(w, (uint8_t)len);
	plc_put_bytes(w, msg, len);
	return (w->err);
}

int
plc_du_event_dec(const uint8_t *p, size_t len, uint8_t *devtype,
    uint8_t *proto, const uint8_t **msg, size_t *msglen)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	*devtype = plc_get_u8(&c);
	*proto = plc_get_u8(&c);
	*msglen = plc_get_u8(&c);
	*msg = plc_get_ref(&c, *msglen);
	return (plc_du_end(&c));
}

int
plc_du_monitor(struct plc_wr *w, uint8_t proto, const uint8_t *msg,
    size_t len)
{
	if (len > 255)
		return (PLC_E_RANGE);
	plc_put_u8(w, proto);
	plc_put_u8(w, 0);		/* not related to the line delay */
	plc_put_u8(w, 0);		/* no attached nodes */
	plc_put_u8(w, (uint8_t)len);
	plc_put_bytes(w, msg, len);
	return (w->err);
}

int
plc_du_monitor_dec(const uint8_t *p, size_t len, uint8_t *proto,
    const uint8_t **msg, size_t *msglen)
{
	struct plc_cur	 c;
	uint8_t		 nattached;

	plc_cur_init(&c, p, len);
	*proto = plc_get_u8(&c);
	(void)plc_get_u8(&c);		/* delay-related flag */
	nattached = plc_get_u8(&c);
	(void)plc_get_ref(&c, (size_t)nattached * PLC_ADDR_LEN);
	*msglen = plc_get_u8(&c);
	*msg = plc_get_ref(&c, *msglen);
	return (plc_du_end(&c));
}

int
plc_du_monitor_up(struct plc_wr *w, uint16_t time_s, uint8_t proto,
    const uint8_t *msg, size_t len)
{
	if (len > 255)
		return (PLC_E_RANGE);
	plc_put_u16(w, time_s);
	plc_put_u8(w, proto);
	plc_put_u8(w, (uint8_t)len);
	plc_put_bytes(w, msg, len);
	return (w->err);
}

int
plc_du_monitor_up_dec(const uint8_t *p, size_t len, uint16_t *time_s,
    uint8_t *proto, const uint8_t **msg, size_t *msglen)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	*time_s = plc_get_u16(&c);
	*proto = plc_get_u8(&c);
	*msglen = plc_get_u8(&c);
	*msg = plc_get_ref(&c, *msglen);
	return (plc_du_end(&c));
}

/* ------------------------------------------------------------------ */
/* 10H: routing queries                                                 */

int
plc_du_node_count_dec(const uint8_t *p, size_t len, uint16_t *count,
    uint16_t *max)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	*count = plc_get_u16(&c);
	*max = plc_get_u16(&c);
	return (plc_du_end(&c));
}

int
plc_du_page(struct plc_wr *w, uint16_t start, uint8_t count)
{
	plc_put_u16(w, start);
	plc_put_u8(w, count);
	return (w->err);
}

int
plc_du_page_dec(const uint8_t *p, size_t len, uint16_t *start,
    uint8_t *count)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	*start = plc_get_u16(&c);
	*count = plc_get_u8(&c);
	return (plc_du_end(&c));
}

/* Station information word (§5.5, 10H F2): D0-D3 relay level, D4-D7
 * signal quality, D8-D10 phase, D11-D13 protocol. */
static void
plc_node_put(struct plc_wr *w, const struct plc_node *n)
{
	plc_put_bytes(w, n->addr, PLC_ADDR_LEN);
	plc_put_u16(w, (uint16_t)((n->relay_level & 0x0f) |
	    (n->quality & 0x0f) << 4 | (n->phase & 7) << 8 |
	    (n->proto & 7) << 11));
}

static void
plc_node_get(struct plc_cur *c, struct plc_node *n)
{
	uint16_t	 v;

	plc_get_bytes(c, n->addr, PLC_ADDR_LEN);
	v = plc_get_u16(c);
	n->relay_level = v & 0x0f;
	n->quality = (v >> 4) & 0x0f;
	n->phase = (v >> 8) & 7;
	n->proto = (v >> 11) & 7;
}

int
plc_du_node_info(struct plc_wr *w, const struct plc_node_page *pg)
{
	unsigned int	 i;

	if (pg->n > PLC_PAGE_MAX)
		return (PLC_E_RANGE);
	plc_put_u16(w, pg->total);
	plc_put_u8(w, pg->n);
	for (i = 0; i < pg->n; i++)
		plc_node_put(w, &pg->node[i]);
	return (w->err);
}

int
plc_du_node_info_dec(const uint8_t *p, size_t len, struct plc_node_page *pg)
{
	struct plc_cur	 c;
	unsigned int	 i;

	memset(pg, 0, sizeof(*pg));
	plc_cur_init(&c, p, len);
	pg->total = plc_get_u16(&c);
	pg->n = plc_get_u8(&c);
	if (c.err == 0 && pg->n > PLC_PAGE_MAX)
		return (PLC_E_RANGE);
	for (i = 0; i < pg->n; i++)
		plc_node_get(&c, &pg->node[i]);
	return (plc_du_end(&c));
}

int
plc_du_node_relay_dec(const uint8_t *p, size_t len, struct plc_node_page *pg)
{
	struct plc_cur	 c;
	unsigned int	 i;

	memset(pg, 0, sizeof(*pg));
	plc_cur_init(&c, p, len);
	pg->n = plc_get_u8(&c);
	if (c.err == 0 && pg->n > PLC_PAGE_MAX)
		return (PLC_E_RANGE);
	pg->total = pg->n;
	for (i = 0; i < pg->n; i++)
		plc_node_get(&c, &pg->node[i]);
	return (plc_du_end(&c));
}

int
plc_du_route_state(struct plc_wr *w, const struct plc_route_state *s)
{
	unsigned int	 i;

	plc_put_u8(w, (uint8_t)((s->learned ? 1 : 0) | (s->working ? 2 : 0)));
	plc_put_u16(w, s->nodes);
	plc_put_u16(w, s->read);
	plc_put_u16(w, s->read_relayed);
	plc_put_u8(w, (uint8_t)((s->work & 3) << 6));
	plc_put_u16(w, s->rate);
	for (i = 0; i < 3; i++)
		plc_put_u8(w, s->relay_level[i]);
	for (i = 0; i < 3; i++)
		plc_put_u8(w, s->step[i]);
	return (w->err);
}

int
plc_du_route_state_dec(const uint8_t *p, size_t len,
    struct plc_route_state *s)
{
	struct plc_cur	 c;
	uint8_t		 b;
	unsigned int	 i;

	memset(s, 0, sizeof(*s));
	plc_cur_init(&c, p, len);
	b = plc_get_u8(&c);
	s->learned = (b & 1) != 0;
	s->working = (b & 2) != 0;
	s->nodes = plc_get_u16(&c);
	s->read = plc_get_u16(&c);
	s->read_relayed = plc_get_u16(&c);
	s->work = plc_get_u8(&c) >> 6;
	s->rate = plc_get_u16(&c);
	for (i = 0; i < 3; i++)
		s->relay_level[i] = plc_get_u8(&c);
	for (i = 0; i < 3; i++)
		s->step[i] = plc_get_u8(&c);
	return (plc_du_end(&c));
}

int
plc_du_topology(struct plc_wr *w, const struct plc_topo_page *pg)
{
	const struct plc_topo *t;
	unsigned int	 i;

	if (pg->n > PLC_PAGE_MAX)
		return (PLC_E_RANGE);
	plc_put_u16(w, pg->total);
	plc_put_u16(w, pg->start);
	plc_put_u8(w, pg->n);
	for (i = 0; i < pg->n; i++) {
		t = &pg->node[i];
		if (t->tei > 0x0fff || t->proxy > 0x0fff || t->level > 15 ||
		    t->role > 15)
			return (PLC_E_RANGE);
		plc_put_bytes(w, t->addr, PLC_ADDR_LEN);
		plc_put_u16(w, t->tei);
		plc_put_u16(w, t->proxy);
		plc_put_u8(w, (uint8_t)(t->level | t->role << 4));
	}
	return (w->err);
}

int
plc_du_topology_dec(const uint8_t *p, size_t len, struct plc_topo_page *pg)
{
	struct plc_cur	 c;
	struct plc_topo	*t;
	uint8_t		 b;
	unsigned int	 i;

	memset(pg, 0, sizeof(*pg));
	plc_cur_init(&c, p, len);
	pg->total = plc_get_u16(&c);
	pg->start = plc_get_u16(&c);
	pg->n = plc_get_u8(&c);
	if (c.err == 0 && pg->n > PLC_PAGE_MAX)
		return (PLC_E_RANGE);
	for (i = 0; i < pg->n; i++) {
		t = &pg->node[i];
		plc_get_bytes(&c, t->addr, PLC_ADDR_LEN);
		t->tei = plc_get_u16(&c) & 0x0fff;
		t->proxy = plc_get_u16(&c) & 0x0fff;
		b = plc_get_u8(&c);
		t->level = b & 0x0f;
		t->role = b >> 4;
	}
	return (plc_du_end(&c));
}

/* ------------------------------------------------------------------ */
/* 15H F1: file transfer                                                */

int
plc_du_segment(struct plc_wr *w, const struct plc_segment *s)
{
	plc_put_u8(w, s->file);
	plc_put_u8(w, s->attr);
	plc_put_u8(w, s->cmd);
	plc_put_u16(w, s->total);
	plc_put_u32(w, s->index);
	plc_put_u16(w, s->len);
	plc_put_bytes(w, s->data, s->len);
	return (w->err);
}

int
plc_du_segment_dec(const uint8_t *p, size_t len, struct plc_segment *s)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	s->file = plc_get_u8(&c);
	s->attr = plc_get_u8(&c);
	s->cmd = plc_get_u8(&c);
	s->total = plc_get_u16(&c);
	s->index = plc_get_u32(&c);
	s->len = plc_get_u16(&c);
	s->data = plc_get_ref(&c, s->len);
	return (plc_du_end(&c));
}

int
plc_du_segment_ack(struct plc_wr *w, uint32_t index)
{
	plc_put_u32(w, index);
	return (w->err);
}

int
plc_du_segment_ack_dec(const uint8_t *p, size_t len, uint32_t *index)
{
	struct plc_cur	 c;

	plc_cur_init(&c, p, len);
	*index = plc_get_u32(&c);
	return (plc_du_end(&c));
}

/* ------------------------------------------------------------------ */
/* F0H F201: upgrade status (vendor extension)                          */

int
plc_du_upg_status(struct plc_wr *w, const struct plc_upg_page *pg)
{
	unsigned int	 i;

	if (pg->n > PLC_UPG_PAGE_MAX)
		return (PLC_E_RANGE);
	plc_put_u16(w, pg->total);
	plc_put_u16(w, pg->start);
	plc_put_u8(w, pg->file);
	plc_put_u32(w, pg->size);
	plc_put_u8(w, pg->n);
	for (i = 0; i < pg->n; i++) {
		plc_put_bytes(w, pg->st[i].addr, PLC_ADDR_LEN);
		plc_put_u8(w, pg->st[i].state);
		plc_put_u32(w, pg->st[i].held);
		plc_put_u32(w, pg->st[i].received);
	}
	return (w->err);
}

int
plc_du_upg_status_dec(const uint8_t *p, size_t len, struct plc_upg_page *pg)
{
	struct plc_cur	 c;
	unsigned int	 i;

	memset(pg, 0, sizeof(*pg));
	plc_cur_init(&c, p, len);
	pg->total = plc_get_u16(&c);
	pg->start = plc_get_u16(&c);
	pg->file = plc_get_u8(&c);
	pg->size = plc_get_u32(&c);
	pg->n = plc_get_u8(&c);
	if (c.err == 0 && pg->n > PLC_UPG_PAGE_MAX)
		return (PLC_E_RANGE);
	for (i = 0; i < pg->n; i++) {
		plc_get_bytes(&c, pg->st[i].addr, PLC_ADDR_LEN);
		pg->st[i].state = plc_get_u8(&c);
		pg->st[i].held = plc_get_u32(&c);
		pg->st[i].received = plc_get_u32(&c);
		if (c.err == 0 && (pg->st[i].state > PLC_UPG_FAILED ||
		    pg->st[i].held > pg->st[i].received ||
		    pg->st[i].received > pg->size))
			return (PLC_E_RANGE);
	}
	return (plc_du_end(&c));
}
