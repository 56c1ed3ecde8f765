/*
 * sim_plc.c: the station-area personality of the medium simulator
 * (docs/simulator.md, "plc"): a Q/GDW 1376.2 carrier module behind a pty
 * and the power-line station area behind it.
 *
 * Endpoints.  `gw' is the concentrator's UART to its carrier module (the
 * CCO): the program there (upbridged's plc transport, a test) speaks
 * 1376.2 as a concentrator and the simulator answers as the module.
 * Every other endpoint is a station: a device (`upnode --transport plc',
 * a test) on the UART of its station module (STA).  The stations form a
 * routing tree (`--endpoint n7,parent=n3'), whose depth is each
 * station's relay level.
 *
 * The carrier.  Modules talk to each other in frames on the one medium
 * of the core (sim_frame_send): a frame from a node is heard by its
 * parent and its children (hears()), with the loss and delay of the hop
 * (a station's loss= and delay= describe the hop to its parent, both
 * ways), for (bytes + frame-bytes) × 8 / rate of time on air.  The
 * module schedules the medium as HPLC's coordinator does (its beacon
 * period hands out the slots): one frame at a time, network-wide
 * (struct plc_mac), so there are no collisions between its own frames;
 * a unicast hop is acknowledged and repeated up to `retries' times, a
 * broadcast hop is not.  Messages to a station go hop by hop down the
 * tree, answers hop by hop up; a broadcast floods (each relay repeats it
 * once for its children).  The messages between modules are the
 * simulator's own (struct layout below): Q/GDW 11612's application layer
 * is not modelled, only its effect.
 *
 * The module (the CCO, at `gw').  It answers 1376.2 requests one at a
 * time like a module (docs/transports/plc.md has the subset): its run
 * mode (03H F10: the declared segment size and upgrade wait time), its
 * topology (10H F2, F3, F21), its route state (10H F4), forwarding to a
 * station (13H F1: the station's answer, or a deny after its monitoring
 * time), broadcasts (05H F3), the file transfer (15H F1: kept in
 * "flash", so it survives a reset; a segment out of order gets the error
 * index FFFFH), the per-station upgrade status (F0H F201, the transport's
 * vendor extension), and it reports station events (06H F5) and its own
 * power-up (03H F10) by itself, repeating a report until confirmed.
 *
 * The distribution (offload).  When the file is complete the module
 * distributes it as research/transports.md §4.2 describes HiSilicon's
 * CCO doing: a start notice flooded twice, then a paced broadcast
 * carousel (one block every pace-ms, or when the medium is free, at
 * most `rounds' rounds), status queries to every station after each
 * round (each station answers with its counts and its first missing
 * blocks), rounds over the blocks someone still misses, then unicast
 * repair per straggler (at most repair-rounds rounds each, then it is
 * given up).  A station module hands each block it holds to its device
 * over its UART (15H F1, acknowledged); "done" means the device
 * acknowledged every block.
 *
 * A station (STA).  It hands the device what the module forwards (13H
 * F1, waiting device-ms for an answer), broadcasts (05H F3) and file
 * blocks (15H F1), one at a time; what the device sends unprompted (06H
 * F5) goes up as an event.  The station port's framing is 1376.2 with the
 * STA as the initiating side (docs/simulator.md says why).
 *
 * Faults: `reset gw' (the module loses what it was doing, keeps its
 * file, reboots in boot-ms and reports its run mode), `reboot NAME [MS]'
 * (a station module, e.g. a relay, is off the network for MS and loses
 * what it was doing), and the core's `detach'/`attach' (a station drops
 * off the network and returns).
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "q1376.h"
#include "sim_plc.h"

struct plc_sim	*plcs;

static const struct sim_opt plc_options[] = {
	{ "segment", "1024", "largest file segment the module declares "
	  "(03H F10), bytes" },
	{ "max-frame", "1100", "longest 1376.2 frame the module takes" },
	{ "wait", "10", "upgrade wait time the module declares, minutes" },
	{ "monitor", "5", "how long the module waits for a station, s" },
	{ "broadcast-time", "10", "longest broadcast, s (declared)" },
	{ "module-ms", "50", "module time to store a file segment" },
	{ "answer-ms", "20", "module time to answer a local request" },
	{ "boot-ms", "500", "module boot after a reset, then it reports" },
	{ "rate", "100000", "carrier bit rate of a hop, bit/s" },
	{ "frame-bytes", "50", "carrier bytes per frame (PHY and MAC)" },
	{ "block", "400", "distribution block size, bytes" },
	{ "pace-ms", "200", "carousel: one block every pace-ms at most" },
	{ "rounds", "4", "carousel rounds at most" },
	{ "query-ms", "2000", "wait for a station's status answer" },
	{ "repair-rounds", "10", "unicast repair rounds per straggler" },
	{ "status", "yes", "answer F0H F201 (per-station upgrade status)" },
	{ "topology", "f21", "f21: answer 10H F21; f2: deny it" },
	{ "flash", "yes", "the module keeps its file across a reset" },
	{ "device-ms", "500", "a station module waits this for its device" },
	{ "retries", "3", "repeats of an unacknowledged unicast hop" },
	{ NULL, NULL, NULL }
};

static const struct sim_opt plc_ep_options[] = {
	{ "parent", "gw", "the endpoint that relays for it (gw: none)" },
	{ "addr", NULL, "station address, 12 hex digits (default from "
	  "its index)" },
	{ "rate", NULL, "bit rate of its hop to its parent" },
	{ NULL, NULL, NULL }
};

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

int
plc__cause(char **cause, const char *fmt, ...)
{
	va_list		 ap;

	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
	return (-1);
}

bool
plc__opt_uint(const char *key, unsigned long max, unsigned long *v,
    char **cause)
{
	const char	*s = sim_opt(plcs->sim, key);
	char		*end;

	*v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || *v > max) {
		(void)plc__cause(cause, "plc: %s: not a number in range", key);
		return (false);
	}
	return (true);
}

bool
plc__opt_bool(const char *key)
{
	const char	*s = sim_opt(plcs->sim, key);

	return (strcmp(s, "yes") == 0 || strcmp(s, "1") == 0 ||
	    strcmp(s, "on") == 0 || strcmp(s, "true") == 0);
}

struct plc_node *
plc__node_of(const struct sim_ep *ep)
{
	return (&plcs->node[ep->idx]);
}

struct plc_node *
plc__node_by_addr(const uint8_t addr[6])
{
	unsigned int	 i;

	for (i = 0; i < plcs->n; i++)
		if (!plcs->node[i].cco &&
		    memcmp(plcs->node[i].addr, addr, 6) == 0)
			return (&plcs->node[i]);
	return (NULL);
}

unsigned int
plc__node_idx(const struct plc_node *n)
{
	return ((unsigned int)(n - plcs->node));
}

/* Is a an plc__ancestor of (or) b? */
bool
plc__ancestor(const struct plc_node *a, const struct plc_node *b)
{
	while (b != NULL) {
		if (b == a)
			return (true);
		b = b->parent < 0 ? NULL : &plcs->node[b->parent];
	}
	return (false);
}

bool
plc__bit_get(const uint8_t *m, uint32_t i)
{
	return ((m[i / 8] >> (i % 8)) & 1);
}

void
plc__bit_set(uint8_t *m, uint32_t i)
{
	m[i / 8] |= (uint8_t)(1u << (i % 8));
}

uint32_t
plc__contiguous(const uint8_t *m, uint32_t n)
{
	uint32_t	 i;

	for (i = 0; i < n && plc__bit_get(m, i); i++)
		;
	return (i);
}

/* ------------------------------------------------------------------ */
/* The carrier medium                                                   */

uint64_t
plc__airtime(struct sim *sim, const struct sim_ep *src, size_t len)
{
	uint64_t	 rate = plc__node_of(src)->rate;

	return ((uint64_t)(len + plcs->frame_bytes) * 8 * SIM_NS_PER_S / rate);
}

/* The hop between rx and the talker: a tree edge, or none. */
static struct plc_node *
hop_child(const struct sim_ep *rx, const struct sim_ep *src)
{
	struct plc_node	*a = plc__node_of(rx), *b = plc__node_of(src);

	if (a->parent == (int)src->idx)
		return (a);
	if (b->parent == (int)rx->idx)
		return (b);
	return (NULL);
}

static bool
plc_hears(struct sim *sim, const struct sim_ep *rx, const struct sim_tx *tx)
{
	return (hop_child(rx, tx->src) != NULL);
}

static double
plc_loss(struct sim *sim, const struct sim_ep *rx, const struct sim_tx *tx)
{
	struct plc_node	*c = hop_child(rx, tx->src);

	return (c != NULL ? c->ep->loss : 0);
}

static uint64_t
plc_delay(struct sim *sim, const struct sim_ep *rx, const struct sim_tx *tx)
{
	struct plc_node	*c = hop_child(rx, tx->src);

	return (c != NULL ? c->ep->delay_ns : 0);
}

/* Queues a frame from `from' to endpoint `to' (-1: its children). */
void
plc__mac_send(struct plc_node *from, int to, const uint8_t *b, size_t len)
{
	struct plc_msg	*m;

	if ((m = malloc(sizeof(*m) + len)) == NULL)
		return;
	m->next = NULL;
	m->from = plc__node_idx(from);
	m->to = to;
	m->tries = 0;
	m->len = len;
	memcpy(m->b, b, len);
	/* The hop target in the header. */
	m->b[1] = (uint8_t)(to < 0 ? 0xff : to);
	m->b[2] = (uint8_t)(to < 0 ? 0xff : to >> 8);
	*plcs->mac.tail = m;
	plcs->mac.tail = &m->next;
	plc__mac_pump();
}

void
plc__mac_pump(void)
{
	struct plc_mac	*mac = &plcs->mac;
	struct plc_msg	*m;

	while (mac->air == NULL && (m = mac->head) != NULL) {
		if ((mac->head = m->next) == NULL)
			mac->tail = &mac->head;
		if (plcs->node[m->from].rebooting) {
			free(m);	/* its module is down: lost */
			continue;
		}
		mac->air = m;
		mac->acked = false;
		mac->ended = false;
		mac->delivered = false;
		mac->frames++;
		m->tries++;
		/* NULL: a detached talker; its tx_done still comes. */
		mac->tx = sim_frame_send(plcs->sim, plcs->node[m->from].ep,
		    0, m->b, m->len);
	}
}

/*
 * The frame on the medium is over: a broadcast hop when it left, a
 * unicast hop when its target's delivery came (the acknowledgement), or
 * again, first, when that delivery was not intact.
 */
static void
mac_complete(void)
{
	struct plc_mac	*mac = &plcs->mac;
	struct plc_msg	*m = mac->air;
	bool		 bcast_done;

	mac->air = NULL;
	mac->tx = NULL;
	bcast_done = m->b[0] == M_BCAST &&
	    m->from == plc__node_idx(plcs->cco) && plcs->req == R_BCAST;
	if (m->to >= 0 && !mac->acked && m->tries <= plcs->retries) {
		mac->retries++;
		m->next = mac->head;
		mac->head = m;
		if (m->next == NULL)
			mac->tail = &m->next;
	} else {
		if (m->to >= 0 && !mac->acked)
			mac->lost++;
		free(m);
	}
	if (bcast_done) {
		/* The module's own broadcast frame has left: confirmed. */
		plcs->req = R_IDLE;
		event_del(plcs->ev_req);
		plc__cco_confirm_now();
	}
	plc__mac_pump();
}

static void
plc_tx_done(struct sim *sim, const struct sim_tx *tx)
{
	struct plc_mac	*mac = &plcs->mac;

	if (mac->air == NULL || tx->src != plcs->node[mac->air->from].ep ||
	    (mac->tx != NULL && tx != mac->tx))
		return;
	mac->ended = true;
	if (mac->tx == NULL)
		mac->delivered = true;	/* unheard: no delivery will come */
	if (mac->air->to < 0 || mac->delivered)
		mac_complete();
}

static void
plc_deliver(struct sim *sim, struct sim_ep *rx, const struct sim_tx *tx,
    size_t off, size_t n, enum sim_rx_status status, uint64_t at)
{
	struct plc_node	*r = plc__node_of(rx);
	struct plc_mac	*mac = &plcs->mac;
	unsigned int	 hop;

	if (tx->len < M_HDR)
		return;
	hop = (unsigned int)tx->buf[1] | (unsigned int)tx->buf[2] << 8;
	if (hop == M_HOP_ALL) {
		/* A flood: the talker's children take it. */
		if (r->parent != (int)tx->src->idx)
			return;
	} else if (hop != rx->idx)
		return;
	if (hop != M_HOP_ALL && mac->air != NULL && mac->tx == tx) {
		mac->delivered = true;
		mac->acked = status == SIM_RX_OK && !r->rebooting;
	}
	if (status == SIM_RX_OK && !r->rebooting)
		plc__message(r, tx->buf, tx->len);
	if (hop != M_HOP_ALL && mac->air != NULL && mac->tx == tx &&
	    mac->ended)
		mac_complete();
}

/* A message for the coordinator or a station, or to pass on. */
void
plc__msg_build(uint8_t *b, uint8_t type, const uint8_t dst[6],
    const uint8_t org[6], uint32_t id)
{
	b[0] = type;
	b[1] = b[2] = 0;
	memcpy(b + 3, dst, 6);
	memcpy(b + 9, org, 6);
	(void)q_put(b, M_HDR, 15, id, 4);
}

const uint8_t		 plc__all_stations[6] = { 0xff, 0xff, 0xff, 0xff, 0xff,
			    0xff };

/* Sends a message from `from' toward its destination. */
void
plc__msg_route(struct plc_node *from, const uint8_t *b, size_t len)
{
	struct plc_node	*dst, *c;
	unsigned int	 i;

	if (memcmp(b + 3, plc__all_stations, 6) == 0) {
		if (from->cco || from->nchild > 0)
			plc__mac_send(from, -1, b, len);
		return;
	}
	if (memcmp(b + 3, plcs->cco->addr, 6) == 0) {
		if (from->parent >= 0)
			plc__mac_send(from, from->parent, b, len);
		return;
	}
	if ((dst = plc__node_by_addr(b + 3)) == NULL)
		return;
	if (!plc__ancestor(from, dst)) {
		if (from->parent >= 0)
			plc__mac_send(from, from->parent, b, len);
		return;
	}
	/* Down: to the child on the path. */
	for (i = 0; i < plcs->n; i++) {
		c = &plcs->node[i];
		if (c->parent == (int)plc__node_idx(from) &&
		    plc__ancestor(c, dst)) {
			plc__mac_send(from, (int)i, b, len);
			return;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Frames to the programs                                               */

/* Sends a 1376.2 frame to ep's program. */
uint64_t
plc__line_frame(struct plc_node *nd, uint8_t c, uint8_t seq, bool addressed,
    const uint8_t *src, const uint8_t *dst, uint8_t afn, uint16_t fn,
    const uint8_t *du, size_t dulen)
{
	struct q_frame	 f;
	uint8_t		 out[Q_MAX];
	int		 n;

	memset(&f, 0, sizeof(f));
	f.c = c;
	f.r[5] = seq;
	f.addressed = addressed;
	if (addressed) {
		memcpy(f.src, src, 6);
		memcpy(f.dst, dst, 6);
	}
	f.afn = afn;
	f.fn = fn;
	f.data = du;
	f.len = dulen;
	if ((n = q_encode(&f, out, sizeof(out))) > 0)
		return (sim_line_send(nd->ep, out, (size_t)n));
	return (sim_now(plcs->sim));
}

/* A carrier message reached node nd. */
void
plc__message(struct plc_node *nd, const uint8_t *b, size_t len)
{
	size_t		 off = 15;
	bool		 ok = true, flood;
	uint32_t	 id, idx, size;
	uint16_t	 gen, bsize;
	struct plc_node	*from;
	const uint8_t	*body = b + M_HDR;
	size_t		 blen = len - M_HDR;

	id = q_get(b, len, &off, 4, &ok);
	flood = memcmp(b + 3, plc__all_stations, 6) == 0;
	if (!flood && memcmp(b + 3, nd->addr, 6) != 0) {
		/* Not ours: on toward its destination. */
		plc__msg_route(nd, b, len);
		return;
	}
	if (flood && !nd->cco && nd->nchild > 0 && id != nd->flood_seen) {
		nd->flood_seen = id;
		plc__mac_send(nd, -1, b, len);
	}
	if (nd->cco) {
		from = plc__node_by_addr(b + 9);
		if (from == NULL)
			return;
		switch (b[0]) {
		case M_FWD_REPLY:
			plc__cco_fwd_reply(b, len);
			return;
		case M_EVENT:
			plc__cco_report(from->addr, false, body, blen);
			return;
		case M_QREPLY:
			plc__cco_qreply(from, b, len);
			return;
		}
		return;
	}
	switch (b[0]) {
	case M_FWD:
		plc__devq_push(nd, M_FWD, id, body, blen);
		return;
	case M_BCAST:
		plc__devq_push(nd, M_BCAST, id, body, blen);
		return;
	case M_START:
		off = M_HDR;
		gen = (uint16_t)q_get(b, len, &off, 2, &ok);
		size = q_get(b, len, &off, 4, &ok);
		bsize = (uint16_t)q_get(b, len, &off, 2, &ok);
		if (ok)
			plc__sta_file_init(nd, gen, size, bsize);
		return;
	case M_BLOCK:
		off = M_HDR;
		idx = q_get(b, len, &off, 4, &ok);
		gen = (uint16_t)q_get(b, len, &off, 2, &ok);
		size = q_get(b, len, &off, 4, &ok);
		bsize = (uint16_t)q_get(b, len, &off, 2, &ok);
		if (ok)
			plc__sta_file_init(nd, gen, size, bsize);
		if (!ok || nd->have == NULL || idx >= nd->nblocks ||
		    plc__bit_get(nd->have, idx))
			return;
		blen = nd->bsize;
		if ((uint64_t)idx * nd->bsize + blen > nd->size)
			blen = nd->size - idx * nd->bsize;
		if (off + blen > len)
			return;		/* shorter than its block */
		memcpy(nd->data + (size_t)idx * nd->bsize, b + off, blen);
		plc__bit_set(nd->have, idx);
		nd->nhave++;
		plc__dev_pump(nd);
		return;
	case M_QUERY:
		plc__sta_qreply(nd, id);
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Lines                                                                */

void
plc__stale_cb(evutil_socket_t fd, short what, void *arg)
{
	struct plc_node	*nd = arg;

	q_rx_stale(&nd->rx);
}

static void
plc_line_rx(struct sim *sim, struct sim_ep *ep, const uint8_t *b,
    const uint8_t *err, size_t n, const struct sim_fmt *fmt,
    uint64_t t_first, uint64_t unit_ns)
{
	struct plc_node	*nd = plc__node_of(ep);
	const uint8_t	*p;
	size_t		 len, off, k;
	int		 r;
	uint64_t	 t_end = t_first + n * unit_ns;

	for (off = 0; off < n; off += k) {
		k = q_rx_feed(&nd->rx, b + off, n - off);
		while ((r = q_rx_next(&nd->rx, &p, &len)) != 0) {
			if (r < 0)
				continue;
			if (nd->cco)
				plc__cco_frame(p, len, t_end);
			else
				plc__sta_frame(nd, p, len);
		}
		if (k == 0)
			q_rx_stale(&nd->rx);
	}
	if (nd->rx.len > nd->rx.used)
		sim_timer_at(sim, nd->ev_stale, t_end + 20 *
		    sim_fmt_char_ns(&ep->fmt));
}

/* ------------------------------------------------------------------ */
/* Set-up, faults, status                                               */

static int
plc_init(struct sim *sim, char **cause)
{
	const struct sim_conf *conf = sim_conf(sim);
	struct plc_node	*nd;
	struct sim_ep	*pe;
	unsigned long	 v;
	unsigned int	 i, depth;
	const char	*s;
	char		 name[32];

	if ((plcs = calloc(1, sizeof(*plcs))) == NULL)
		return (plc__cause(cause, "%s", "plc: out of memory"));
	plcs->sim = sim;
	plcs->n = sim_nep(sim);
	plcs->mac.tail = &plcs->mac.head;
	if ((plcs->node = calloc(plcs->n, sizeof(*plcs->node))) == NULL)
		return (plc__cause(cause, "%s", "plc: out of memory"));
	sim_set_priv(sim, plcs);

#define U(key, max, field, mul)                                                \
	do {                                                                   \
		if (!plc__opt_uint(key, max, &v, cause))                       \
			return (-1);                                           \
		plcs->field = v * (mul);                                       \
	} while (0)
	U("segment", 4096, segment, 1);
	U("max-frame", 4096, max_frame, 1);
	U("wait", 255, wait_min, 1);
	U("monitor", 255, monitor_s, 1);
	U("broadcast-time", 65535, broadcast_s, 1);
	U("module-ms", 600000, module_ns, SIM_NS_PER_MS);
	U("answer-ms", 600000, answer_ns, SIM_NS_PER_MS);
	U("boot-ms", 600000, boot_ns, SIM_NS_PER_MS);
	U("rate", 1000000000, rate, 1);
	U("frame-bytes", 4096, frame_bytes, 1);
	U("block", 4000, block, 1);
	U("pace-ms", 600000, pace_ns, SIM_NS_PER_MS);
	U("rounds", 100, rounds, 1);
	U("query-ms", 600000, query_ns, SIM_NS_PER_MS);
	U("repair-rounds", 1000, repair_rounds, 1);
	U("device-ms", 600000, device_ns, SIM_NS_PER_MS);
	U("retries", 100, retries, 1);
#undef U
	if (plcs->rate == 0 || plcs->block < 16 || plcs->segment < 16 ||
	    plcs->max_frame < plcs->segment + 26)
		return (plc__cause(cause, "%s", "plc: rate 0, block or segment "
		    "under 16, or max-frame under segment + 26"));
	plcs->status_ext = plc__opt_bool("status");
	plcs->flash = plc__opt_bool("flash");
	plcs->reset_have = plcs->resume_seg = -1;
	plcs->ack_idx = plcs->reset_acked = -1;
	s = sim_opt(sim, "topology");
	if (strcmp(s, "f21") != 0 && strcmp(s, "f2") != 0)
		return (plc__cause(cause, "plc: topology: f21 or f2: %s", s));
	plcs->f21 = strcmp(s, "f21") == 0;

	for (i = 0; i < plcs->n; i++) {
		nd = &plcs->node[i];
		nd->ep = sim_ep(sim, i);
		nd->ep->fmt = conf->fmt;	/* the modules' UARTs */
		nd->cco = strcmp(nd->ep->name, "gw") == 0;
		nd->parent = -1;
		nd->rate = plcs->rate;
		q_rx_init(&nd->rx);
		if (nd->cco) {
			if (plcs->cco != NULL)
				return (plc__cause(cause, "%s",
				    "plc: two endpoints named gw"));
			plcs->cco = nd;
			(void)q_addr_parse("000000000001", nd->addr);
		} else if ((s = sim_ep_opt(nd->ep, "addr")) != NULL) {
			if (q_addr_parse(s, nd->addr) != 0)
				return (plc__cause(cause, "plc: addr: %s", s));
		} else {
			snprintf(name, sizeof(name), "20190500%04u", i);
			(void)q_addr_parse(name, nd->addr);
		}
		if ((s = sim_ep_opt(nd->ep, "rate")) != NULL &&
		    (nd->rate = strtoull(s, NULL, 10)) == 0)
			return (plc__cause(cause, "plc: rate: %s", s));
		nd->ev_stale = evtimer_new(sim_base(sim), plc__stale_cb, nd);
		nd->ev_dev = evtimer_new(sim_base(sim), plc__dev_cb, nd);
	}
	if (plcs->cco == NULL)
		return (plc__cause(cause, "%s",
		    "plc: no endpoint named gw (the "
		    "concentrator's module)"));
	for (i = 0; i < plcs->n; i++) {
		nd = &plcs->node[i];
		if (nd->cco)
			continue;
		s = sim_ep_opt(nd->ep, "parent");
		if ((pe = sim_ep_find(sim, s)) == NULL || pe == nd->ep)
			return (plc__cause(cause, "plc: parent: %s", s));
		nd->parent = (int)pe->idx;
		plcs->node[pe->idx].nchild++;
	}
	for (i = 0; i < plcs->n; i++) {
		/* Levels; a loop in the parents is an error. */
		nd = &plcs->node[i];
		for (depth = 0, pe = nd->ep; !plc__node_of(pe)->cco; depth++) {
			if (depth > plcs->n)
				return (plc__cause(cause,
				    "plc: %s: its parents "
				    "make a loop",
				    nd->ep->name));
			pe =
			    sim_ep(sim, (unsigned int)plc__node_of(pe)->parent);
		}
		nd->level = depth;
		if (depth > 15)
			return (plc__cause(cause, "plc: %s: more than 15 "
			    "relay levels", nd->ep->name));
	}
	plcs->ev_req = evtimer_new(sim_base(sim), plc__cco_req_cb, NULL);
	plcs->ev_rep = evtimer_new(sim_base(sim), plc__cco_report_cb, NULL);
	plcs->ev_dist = evtimer_new(sim_base(sim), plc__dist_cb, NULL);
	plcs->ev_boot = evtimer_new(sim_base(sim), plc__cco_boot_cb, NULL);
	/* Power-up: boot, then report the run mode. */
	plcs->booting = true;
	sim_timer_at(sim, plcs->ev_boot, sim_now(sim) + plcs->boot_ns);
	return (0);
}

static void
plc_fini(struct sim *sim)
{
	struct plc_msg	*m;
	unsigned int	 i;

	if (plcs == NULL)
		return;
	while ((m = plcs->mac.head) != NULL) {
		plcs->mac.head = m->next;
		free(m);
	}
	free(plcs->mac.air);
	for (i = 0; i < plcs->n; i++) {
		if (plcs->node[i].ev_stale != NULL)
			event_free(plcs->node[i].ev_stale);
		if (plcs->node[i].ev_dev != NULL)
			event_free(plcs->node[i].ev_dev);
		if (plcs->node[i].ev_reboot != NULL)
			event_free(plcs->node[i].ev_reboot);
		free(plcs->node[i].have);
		free(plcs->node[i].dev);
		free(plcs->node[i].data);
	}
	if (plcs->ev_req != NULL)
		event_free(plcs->ev_req);
	if (plcs->ev_rep != NULL)
		event_free(plcs->ev_rep);
	if (plcs->ev_dist != NULL)
		event_free(plcs->ev_dist);
	if (plcs->ev_boot != NULL)
		event_free(plcs->ev_boot);
	free(plcs->file);
	free(plcs->need);
	free(plcs->node);
	free(plcs);
	plcs = NULL;
}

/* A station module loses what it was doing (its blocks are in flash). */
void
plc__sta_reset(struct plc_node *st)
{
	event_del(st->ev_dev);
	st->dev_busy = 0;
	st->devq_len = 0;
	q_rx_init(&st->rx);
}

static void
plc_reset(struct sim *sim, struct sim_ep *ep)
{
	struct plc_node	*nd = plc__node_of(ep);

	if (!nd->cco) {
		plc__sta_reset(nd);
		return;
	}
	/* The module: what it was doing is lost, the file stays when it is
	 * in flash; it boots and reports its run mode. */
	plcs->resets++;
	plcs->reset_have = plcs->file_done ? -1 : (int)plcs->file_have;
	plcs->reset_acked = plcs->ack_idx < 0 ? 0 : plcs->ack_ns <=
	    sim_now(sim) ? plcs->ack_idx + 1 : plcs->ack_idx;
	plcs->resume_seg = -1;
	plcs->resume_cleared = false;
	event_del(plcs->ev_req);
	event_del(plcs->ev_rep);
	event_del(plcs->ev_dist);
	plcs->req = R_IDLE;
	plcs->rep_len = 0;
	plcs->rep_out = false;
	q_rx_init(&nd->rx);
	if (!plcs->flash) {
		free(plcs->file);
		plcs->file = NULL;
		plcs->file_total = plcs->file_have = 0;
		plcs->file_done = false;
		plcs->dist = D_IDLE;
	}
	plcs->booting = true;
	sim_timer_at(sim, plcs->ev_boot, sim_now(sim) + plcs->boot_ns);
	sim_debug(sim, "plc: the module resets (file %s)", plcs->file != NULL ?
	    "kept" : "lost");
}

static void
reboot_cb(evutil_socket_t fd, short what, void *arg)
{
	struct plc_node	*st = arg;

	st->rebooting = false;
	sim_ep_attach(st->ep);
	sim_debug(plcs->sim, "plc: %s is back", st->ep->name);
	plc__dev_pump(st);
}

static int
plc_command(struct sim *sim, int argc, char **argv, char **cause)
{
	struct sim_ep	*ep;
	struct plc_node	*st;
	unsigned long	 ms = 5000;
	char		*end;

	if (strcmp(argv[0], "reboot") != 0)
		return (1);
	if (argc < 2 || argc > 3)
		return (plc__cause(cause, "%s", "usage: reboot STATION [MS]"));
	if ((ep = sim_ep_find(sim, argv[1])) == NULL ||
	    plc__node_of(ep)->cco)
		return (plc__cause(cause, "%s: no such station", argv[1]));
	if (argc == 3 && ((ms = strtoul(argv[2], &end, 10)) == 0 ||
	    *end != '\0'))
		return (plc__cause(cause, "%s: not a time in ms", argv[2]));
	st = plc__node_of(ep);
	if (st->ev_reboot == NULL &&
	    (st->ev_reboot = evtimer_new(sim_base(sim), reboot_cb, st)) ==
	    NULL)
		return (plc__cause(cause, "%s", "out of memory"));
	plc__sta_reset(st);
	st->rebooting = true;
	sim_ep_detach(ep);
	sim_timer_at(sim, st->ev_reboot, sim_now(sim) + ms * SIM_NS_PER_MS);
	sim_debug(sim, "plc: %s reboots for %lu ms", ep->name, ms);
	return (0);
}

static void
plc_status(struct sim *sim, struct sim_ep *ep, FILE *f)
{
	struct plc_node	*nd = plc__node_of(ep);
	char		 a[16];

	q_addr_fmt(nd->addr, a, sizeof(a));
	fprintf(f, ", \"plc\": {\"addr\": \"%s\", \"level\": %u, "
	    "\"parent\": ", a, nd->level);
	if (nd->parent < 0)
		fprintf(f, "null");
	else
		fprintf(f, "\"%s\"", plcs->node[nd->parent].ep->name);
	if (nd->cco) {
		fprintf(f, ", \"requests\": %llu, \"denied\": %llu, "
		    "\"segments\": %llu, \"file_segments\": %u, "
		    "\"file_total\": %u, \"file_bytes\": %u, ",
		    (unsigned long long)plcs->requests,
		    (unsigned long long)plcs->denied,
		    (unsigned long long)plcs->segments_in, plcs->file_have,
		    plcs->file_total, plcs->file_done ? plcs->file_size : 0);
		fprintf(f, "\"transfer_ms\": %.3f, \"distribution\": %d, "
		    "\"round\": %u, \"blocks_broadcast\": %llu, "
		    "\"blocks_unicast\": %llu, \"queries\": %llu, "
		    "\"distribution_ms\": %.3f, ",
		    plcs->segn_ns > plcs->seg0_ns ? (double)(plcs->segn_ns -
		    plcs->seg0_ns) / 1e6 : 0.0, (int)plcs->dist, plcs->round,
		    (unsigned long long)plcs->blocks_bc,
		    (unsigned long long)plcs->blocks_uc,
		    (unsigned long long)plcs->queries,
		    plcs->dist == D_DONE ? (double)(plcs->t_done_ns -
		    plcs->t_file_ns) / 1e6 : 0.0);
		fprintf(f, "\"resets\": %u, \"reset_segments\": %d, "
		    "\"reset_acked\": %d, \"resume_segment\": %d, "
		    "\"resume_cleared\": %s, ", plcs->resets,
		    plcs->reset_have, plcs->reset_acked, plcs->resume_seg,
		    plcs->resume_cleared ? "true" : "false");
		fprintf(f, "\"reports\": %llu, \"reports_lost\": %llu, "
		    "\"mac_frames\": %llu, \"mac_retries\": %llu, "
		    "\"mac_lost\": %llu}",
		    (unsigned long long)plcs->reports,
		    (unsigned long long)plcs->reports_lost,
		    (unsigned long long)plcs->mac.frames,
		    (unsigned long long)plcs->mac.retries,
		    (unsigned long long)plcs->mac.lost);
		return;
	}
	fprintf(f, ", \"blocks\": %u, \"device_blocks\": %u, "
	    "\"nblocks\": %u, \"state\": %u}", nd->nhave, nd->ndev,
	    nd->nblocks, nd->view.state);
}

const struct sim_personality sim_plc = {
	.name = "plc",
	.help = "a Q/GDW 1376.2 carrier module (endpoint gw) and its "
	    "station area: stations in relay levels (parent=), forwarding, "
	    "broadcast, file distribution",
	.options = plc_options,
	.ep_options = plc_ep_options,
	.flags = 0,
	.init = plc_init,
	.fini = plc_fini,
	.line_rx = plc_line_rx,
	.deliver = plc_deliver,
	.airtime_ns = plc__airtime,
	.hears = plc_hears,
	.loss = plc_loss,
	.delay_ns = plc_delay,
	.tx_done = plc_tx_done,
	.reset = plc_reset,
	.command = plc_command,
	.status = plc_status
};

