/*
 * tp_mem.c: the in-memory transport (see tp_mem.h).
 */
#include <sys/queue.h>
#include <sys/uio.h>

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "up.h"
#include "tclock.h"
#include "tp_mem.h"

#define TP_MEM_MAX_MEDIA	4
#define TP_MEM_RING_DEFAULT	256

struct tp_mem_frame {
	struct tp_addr		 dst;
	struct tp_mem_node	*from;	/* uplink frames */
	uint64_t		 cookie;
	bool			 poll;	/* polled bus: a poll, no frame */
	size_t			 len;
	uint8_t			 buf[UP_FRAME_MAX];
	TAILQ_ENTRY(tp_mem_frame) entry;
	/* A radio's node frame on the air. */
	struct ttimer		 t;
	uint64_t		 start;
	uint64_t		 end;
	bool			 lost;
	bool			 collided;
};
TAILQ_HEAD(tp_mem_frames, tp_mem_frame);

/* A host callback deferred out of the op that caused it. */
struct tp_mem_ev {
	int			 kind;
#define MEV_PEER	1
#define MEV_TXDONE	2
#define MEV_LINK	3
	struct tp_addr		 addr;
	int			 ev;
	uint32_t		 mtu;
	int			 reason;
	uint64_t		 cookie;
	TAILQ_ENTRY(tp_mem_ev)	 entry;
};
TAILQ_HEAD(tp_mem_evs, tp_mem_ev);

enum { MC_IDLE, MC_CONNECTING, MC_UP };

struct tp_mem_node {
	struct tp_mem_medium	*m;
	struct tp_addr		 addr;
	double			 loss;
	uint64_t		 rng;
	tp_mem_rx_fn		*fn;
	void			*arg;
	uint64_t		 acks;
	TAILQ_ENTRY(tp_mem_node) entry;
	uint64_t		 tx_from;	/* a radio: its own sending */
	uint64_t		 tx_until;

	/* Link shapes. */
	tp_mem_link_fn		*link_fn;
	tp_mem_oob_fn		*oob_fn;
	/* connect */
	int			 cstate;
	bool			 mtu_pending;
	bool			 absent;
	bool			 no_exchange;
	uint32_t		 mtu;
	struct ttimer		 ct;
	struct tp_mem_frames	 txq;	/* to it, in order */
	struct ttimer		 tx_t;
	/* polled */
	struct tp_mem_frames	 outbox;
	unsigned int		 noutbox;
	double			 busy;		/* share refused busy */
	uint64_t		 busy_until;	/* clock us */
	uint64_t		 nbusy;		/* unicast and polls refused */
	/* offload */
	bool			 off_target;
	double			 off_loss;
	uint8_t			*off_segs;	/* bitmap */
	uint32_t		 off_nsegs;
	bool			 off_over;	/* done or given up */
};

struct tp_mem_offload {
	bool			 on;
	uint32_t		 id;
	uint64_t		 size;
	uint32_t		 seg;
	uint32_t		 nseg;
	uint8_t			*file;
	uint8_t			*pulled;	/* bitmap */
	uint64_t		 pulled_bytes;
	uint32_t		 next;
	uint32_t		 round;
	struct ttimer		 t;
};

struct tp_mem_medium {
	char			 name[64];
	struct event_base	*base;
	struct tp_mem_params	 p;
	struct tp		*gw;	/* the open instance */
	struct tp_mem_frame	*ring;
	unsigned int		 ring_size;
	unsigned int		 head;
	unsigned int		 n;
	bool			 hold;
	bool			 want_writable;
	uint64_t		 outstanding;
	struct tp_mem_frames	 up;	/* receivers -> gateway */
	struct event		*up_ev;
	TAILQ_HEAD(, tp_mem_node) nodes;
	struct tp_mem_counts	 c;
	struct tclock		*tc;	/* NULL: the real clock */
	tp_mem_tx_fn		*tx_hook;
	void			*tx_arg;

	/* Link shapes. */
	struct tp_mem_evs	 evs;	/* deferred host callbacks */
	struct ttimer		 ev_t;
	unsigned int		 cqueued;	/* connect: frames queued */
	struct tp_mem_frames	 busq;	/* polled: operations */
	unsigned int		 nbusq;
	struct tp_mem_frame	*busy;	/* polled: on the bus now */
	uint64_t		 busy_us;	/* ... for this long */
	struct ttimer		 bus_t;
	struct tp_mem_offload	 off;
	bool			 down;	/* tp_mem_link(TP_LINK_DOWN) */
	/* A radio: the gateway's frame on the air, node frames on it. */
	struct ttimer		 gw_t;
	bool			 gw_on;
	uint64_t		 gw_from;
	uint64_t		 gw_until;
	struct tp_mem_frames	 air;
};

struct tp {
	struct tp_mem_medium	*m;
	const struct tp_host	*host;
	struct event		*down_ev;
};

static bool	 mem_connect_mode(const struct tp_mem_medium *);
static bool	 mem_polled_mode(const struct tp_mem_medium *);
static void	 mem_ev_push(struct tp_mem_medium *, int kind,
		    const struct tp_addr *, int ev, uint32_t mtu, int reason,
		    uint64_t cookie);
static void	 mem_off_stop(struct tp_mem_medium *);
static void	 mem_conn_timer(void *);
static void	 mem_ev_run(void *);
static void	 mem_bus_done(void *);
static void	 mem_off_tick(void *);
static void	 mem_conn_tx(void *);
static void	 mem_node_flush(struct tp_mem_node *);
static void	 mem_shapes_reset(struct tp_mem_medium *);
static void	 tp_mem_deliver(struct tp_mem_medium *, struct tp_mem_frame *);
static bool	 mem_radio_mode(const struct tp_mem_medium *);
static void	 mem_radio_start(struct tp_mem_medium *);
static void	 mem_radio_end(void *);
static void	 mem_radio_up(struct tp_mem_node *, struct tp_mem_frame *);
static void	 mem_radio_reset(struct tp_mem_medium *);
static void	 mem_count(struct tp_mem_medium *, const uint8_t *, size_t,
		    const struct tp_addr *);

static struct tp_mem_medium *tp_mem_media[TP_MEM_MAX_MEDIA];


static double
tp_mem_rand(uint64_t *s)
{
	/* xorshift64*: deterministic per receiver. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((double)((*s * 2685821657736338717ULL) >> 11) /
	    (double)(1ULL << 53));
}

static struct tp_mem_medium *
tp_mem_find(const char *name)
{
	int	 i;

	for (i = 0; i < TP_MEM_MAX_MEDIA; i++)
		if (tp_mem_media[i] != NULL &&
		    strcmp(tp_mem_media[i]->name, name) == 0)
			return (tp_mem_media[i]);
	return (NULL);
}

static void
tp_mem_up_cb(int fd, short ev, void *arg)
{
	struct tp_mem_medium	*m = arg;
	struct tp_mem_frame	*fr;
	struct tp_rxinfo	 ri;

	while ((fr = TAILQ_FIRST(&m->up)) != NULL) {
		TAILQ_REMOVE(&m->up, fr, entry);
		if (m->gw != NULL && !m->down && (!mem_connect_mode(m) ||
		    fr->from->cstate == MC_UP)) {
			ri.rssi_dbm = INT16_MAX;
			ri.snr_db = INT8_MAX;
			ri.rx_ms = m->gw->host->now_ms(m->gw->host->arg);
			m->gw->host->rx(m->gw->host->arg, m->gw,
			    &fr->from->addr, fr->buf, fr->len, &ri);
		}
		free(fr);
	}
}

struct tp_mem_medium *
tp_mem_medium_new(struct event_base *base, const char *name,
    const struct tp_mem_params *p)
{
	struct tp_mem_medium	*m;
	int			 i;

	if ((m = tp_mem_find(name)) != NULL)
		tp_mem_medium_free(m);
	m = calloc(1, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->base = base;
	m->p = *p;
	m->ring_size = p->caps.tx_queue != 0 ? p->caps.tx_queue :
	    TP_MEM_RING_DEFAULT;
	m->ring = calloc(m->ring_size, sizeof(*m->ring));
	TAILQ_INIT(&m->up);
	TAILQ_INIT(&m->nodes);
	TAILQ_INIT(&m->evs);
	TAILQ_INIT(&m->busq);
	TAILQ_INIT(&m->air);
	ttimer_init(&m->gw_t, mem_radio_end, m);
	m->up_ev = event_new(base, -1, 0, tp_mem_up_cb, m);
	ttimer_init(&m->ev_t, mem_ev_run, m);
	ttimer_init(&m->bus_t, mem_bus_done, m);
	ttimer_init(&m->off.t, mem_off_tick, m);
	for (i = 0; i < TP_MEM_MAX_MEDIA; i++)
		if (tp_mem_media[i] == NULL) {
			tp_mem_media[i] = m;
			break;
		}
	return (m);
}

void
tp_mem_medium_free(struct tp_mem_medium *m)
{
	struct tp_mem_frame	*fr;
	struct tp_mem_node	*nd;
	int			 i;

	if (m == NULL)
		return;
	for (i = 0; i < TP_MEM_MAX_MEDIA; i++)
		if (tp_mem_media[i] == m)
			tp_mem_media[i] = NULL;
	while ((fr = TAILQ_FIRST(&m->up)) != NULL) {
		TAILQ_REMOVE(&m->up, fr, entry);
		free(fr);
	}
	while ((nd = TAILQ_FIRST(&m->nodes)) != NULL)
		tp_mem_node_free(nd);
	mem_shapes_reset(m);
	mem_radio_reset(m);
	if (m->gw != NULL)
		m->gw->m = NULL;
	event_free(m->up_ev);
	free(m->ring);
	free(m);
}

void
tp_mem_hold(struct tp_mem_medium *m, bool hold)
{
	m->hold = hold;
	if (!hold && m->gw != NULL && m->n > 0) {
		if (mem_radio_mode(m))
			mem_radio_start(m);
		else
			event_active(m->gw->down_ev, EV_TIMEOUT, 1);
	}
}

struct tp_mem_counts *
tp_mem_counts(struct tp_mem_medium *m)
{
	return (&m->c);
}

unsigned int
tp_mem_queued(struct tp_mem_medium *m)
{
	return (m->n);
}

bool
tp_mem_open(struct tp_mem_medium *m)
{
	return (m->gw != NULL);
}

void
tp_mem_set_clock(struct tp_mem_medium *m, struct tclock *tc)
{
	m->tc = tc;
}

struct tclock *
tp_mem_clock(struct tp_mem_medium *m)
{
	return (m->tc);
}

void
tp_mem_set_tx_hook(struct tp_mem_medium *m, tp_mem_tx_fn *fn, void *arg)
{
	m->tx_hook = fn;
	m->tx_arg = arg;
}

struct tp_mem_node *
tp_mem_node_new(struct tp_mem_medium *m, uint8_t id, double loss_pct,
    uint32_t seed, tp_mem_rx_fn *fn, void *arg)
{
	struct tp_mem_node	*nd;

	nd = calloc(1, sizeof(*nd));
	nd->m = m;
	nd->addr.len = 1;
	nd->addr.b[0] = id;
	nd->loss = loss_pct / 100.0;
	nd->rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seed << 17 | id);
	nd->fn = fn;
	nd->arg = arg;
	TAILQ_INIT(&nd->txq);
	TAILQ_INIT(&nd->outbox);
	ttimer_init(&nd->ct, mem_conn_timer, nd);
	ttimer_init(&nd->tx_t, mem_conn_tx, nd);
	nd->off_loss = nd->loss;
	TAILQ_INSERT_TAIL(&m->nodes, nd, entry);
	/* A connect or polled link lists its nodes (configured, seen). */
	if (m->gw != NULL && (mem_connect_mode(m) || mem_polled_mode(m)))
		mem_ev_push(m, MEV_PEER, &nd->addr, TP_PEER_FOUND, 0, 0, 0);
	return (nd);
}

void
tp_mem_node_free(struct tp_mem_node *nd)
{
	struct tp_mem_frame	*fr, *next;

	if (nd == NULL)
		return;
	for (fr = TAILQ_FIRST(&nd->m->up); fr != NULL; fr = next) {
		next = TAILQ_NEXT(fr, entry);
		if (fr->from == nd) {
			TAILQ_REMOVE(&nd->m->up, fr, entry);
			free(fr);
		}
	}
	for (fr = TAILQ_FIRST(&nd->m->air); fr != NULL; fr = next) {
		next = TAILQ_NEXT(fr, entry);
		if (fr->from == nd) {
			TAILQ_REMOVE(&nd->m->air, fr, entry);
			ttimer_del(nd->m->tc, &fr->t);
			free(fr);
		}
	}
	mem_node_flush(nd);
	if (nd->m->tc != NULL) {
		ttimer_del(nd->m->tc, &nd->ct);
		ttimer_del(nd->m->tc, &nd->tx_t);
	}
	free(nd->off_segs);
	TAILQ_REMOVE(&nd->m->nodes, nd, entry);
	free(nd);
}

void
tp_mem_node_loss(struct tp_mem_node *nd, double loss_pct)
{
	nd->loss = loss_pct / 100.0;
}

void
tp_mem_node_send(struct tp_mem_node *nd, const uint8_t *buf, size_t len)
{
	struct tp_mem_frame	*fr;

	if (len > UP_FRAME_MAX)
		return;
	if (mem_connect_mode(nd->m) && nd->cstate != MC_UP) {
		/* No connection, no notification. */
		nd->m->c.ul_lost++;
		return;
	}
	fr = calloc(1, sizeof(*fr));
	memcpy(fr->buf, buf, len);
	fr->len = len;
	fr->from = nd;
	if (mem_polled_mode(nd->m)) {
		/* It waits in the node's outbox until a poll reads it. */
		if (nd->noutbox == 8) {
			struct tp_mem_frame *old = TAILQ_FIRST(&nd->outbox);

			TAILQ_REMOVE(&nd->outbox, old, entry);
			free(old);
			nd->noutbox--;
		}
		TAILQ_INSERT_TAIL(&nd->outbox, fr, entry);
		nd->noutbox++;
		return;
	}
	if (mem_radio_mode(nd->m)) {
		mem_radio_up(nd, fr);
		return;
	}
	TAILQ_INSERT_TAIL(&nd->m->up, fr, entry);
	event_active(nd->m->up_ev, EV_TIMEOUT, 1);
}

uint64_t
tp_mem_node_acks(struct tp_mem_node *nd)
{
	return (nd->acks);
}


/* ------------------------------------------------------------------ */
/* Link shapes: shared                                                  */

static bool
mem_connect_mode(const struct tp_mem_medium *m)
{
	return ((m->p.caps.flags & TP_CAP_CONNECT) != 0);
}

static bool
mem_polled_mode(const struct tp_mem_medium *m)
{
	return ((m->p.caps.flags & TP_CAP_POLLED) != 0);
}

/* The UP type of a frame, full or compact (§11.2). */
static uint8_t
mem_type(const uint8_t *buf, size_t len)
{
	if (len >= 1 && (buf[0] & 0x80) != 0)
		return (buf[0] & 0x0f);
	return (len > 1 ? buf[1] : 0);
}

static bool
mem_lost(struct tp_mem_node *nd, double loss)
{
	return (loss > 0 && tp_mem_rand(&nd->rng) < loss);
}

/* A gateway frame reaches one receiver (or is lost on the way). */
static bool
mem_give(struct tp_mem_node *nd, const uint8_t *buf, size_t len)
{
	if (mem_lost(nd, nd->loss)) {
		nd->m->c.lost++;
		return (false);
	}
	if (mem_type(buf, len) == UP_T_RESULT_ACK)
		nd->acks++;
	nd->fn(nd->arg, buf, len);
	return (true);
}

static uint64_t	 mem_now(struct tp_mem_medium *);

/* A polled node refuses this operation, busy (Modbus exception 06). */
static bool
mem_busy(struct tp_mem_node *nd)
{
	if (nd->busy <= 0 || mem_now(nd->m) >= nd->busy_until ||
	    tp_mem_rand(&nd->rng) >= nd->busy)
		return (false);
	nd->m->c.busy++;
	return (true);
}

/* The same for an operation to this node alone: counted per node. */
static bool
mem_busy_one(struct tp_mem_node *nd)
{
	if (!mem_busy(nd))
		return (false);
	nd->nbusy++;
	return (true);
}

static struct tp_mem_node *
mem_node_by_addr(struct tp_mem_medium *m, const struct tp_addr *a)
{
	struct tp_mem_node	*nd;

	TAILQ_FOREACH(nd, &m->nodes, entry)
		if (tp_addr_eq(&nd->addr, a))
			return (nd);
	return (NULL);
}

static uint64_t
mem_now(struct tp_mem_medium *m)
{
	return (tclock_now(m->tc));
}

static void
mem_ev_run(void *arg)
{
	struct tp_mem_medium	*m = arg;
	struct tp_mem_ev	*ev;
	struct tp_peer_info	 pi;
	struct tp		*tp;

	while ((ev = TAILQ_FIRST(&m->evs)) != NULL) {
		TAILQ_REMOVE(&m->evs, ev, entry);
		if ((tp = m->gw) != NULL) {
			switch (ev->kind) {
			case MEV_PEER:
				memset(&pi, 0, sizeof(pi));
				pi.mtu = ev->mtu;
				pi.rssi_dbm = INT16_MAX;
				pi.reason = ev->reason;
				tp->host->peer(tp->host->arg, tp, &ev->addr,
				    ev->ev, &pi);
				break;
			case MEV_TXDONE:
				if (m->p.tx_done)
					tp->host->tx_done(tp->host->arg, tp,
					    ev->cookie, ev->reason, 0);
				break;
			case MEV_LINK:
				tp->host->link(tp->host->arg, tp, ev->ev);
				break;
			}
		}
		free(ev);
	}
}

static void
mem_ev_push(struct tp_mem_medium *m, int kind, const struct tp_addr *a,
    int evn, uint32_t mtu, int reason, uint64_t cookie)
{
	struct tp_mem_ev	*ev;

	if (m->tc == NULL)
		abort();	/* link shapes run on the fake clock */
	ev = calloc(1, sizeof(*ev));
	ev->kind = kind;
	if (a != NULL)
		ev->addr = *a;
	ev->ev = evn;
	ev->mtu = mtu;
	ev->reason = reason;
	ev->cookie = cookie;
	TAILQ_INSERT_TAIL(&m->evs, ev, entry);
	if (!m->ev_t.on)
		ttimer_at(m->tc, &m->ev_t, mem_now(m));
}

static void
mem_writable(struct tp_mem_medium *m)
{
	if (m->gw != NULL && m->want_writable) {
		m->want_writable = false;
		m->gw->host->writable(m->gw->host->arg, m->gw);
	}
}

/* Link time of n bytes at the link's rate, us. */
static uint64_t
mem_bytes_us(const struct tp_mem_medium *m, size_t n, uint64_t bps)
{
	if (bps == 0)
		bps = m->p.caps.bitrate_bps != 0 ? m->p.caps.bitrate_bps :
		    1000000;
	return (((uint64_t)n * 8 * 1000000 + bps - 1) / bps);
}

/* ------------------------------------------------------------------ */
/* Connected peers                                                      */

static unsigned int
mem_nconnected(struct tp_mem_medium *m)
{
	struct tp_mem_node	*nd;
	unsigned int		 n = 0;

	TAILQ_FOREACH(nd, &m->nodes, entry)
		if (nd->cstate != MC_IDLE)
			n++;
	return (n);
}

unsigned int
tp_mem_connected(struct tp_mem_medium *m)
{
	return (mem_nconnected(m));
}

static void
mem_link_hook(struct tp_mem_node *nd, uint32_t mtu)
{
	if (nd->link_fn != NULL)
		nd->link_fn(nd->arg, mtu);
}

/* Frames to it are lost with the connection; tx_done says so. */
static void
mem_node_flush(struct tp_mem_node *nd)
{
	struct tp_mem_medium	*m = nd->m;
	struct tp_mem_frame	*fr;

	while ((fr = TAILQ_FIRST(&nd->txq)) != NULL) {
		TAILQ_REMOVE(&nd->txq, fr, entry);
		if (m->cqueued > 0)
			m->cqueued--;
		if (m->outstanding > 0)
			m->outstanding--;
		if (m->gw != NULL && m->tc != NULL)
			mem_ev_push(m, MEV_TXDONE, NULL, 0, 0, TP_EIO,
			    fr->cookie);
		free(fr);
	}
	while ((fr = TAILQ_FIRST(&nd->outbox)) != NULL) {
		TAILQ_REMOVE(&nd->outbox, fr, entry);
		free(fr);
	}
	nd->noutbox = 0;
	if (m->tc != NULL)
		ttimer_del(m->tc, &nd->tx_t);
}

static void
mem_conn_down(struct tp_mem_node *nd, int reason)
{
	struct tp_mem_medium	*m = nd->m;

	if (nd->cstate == MC_IDLE)
		return;
	nd->cstate = MC_IDLE;
	nd->mtu = 0;
	nd->mtu_pending = false;
	ttimer_del(m->tc, &nd->ct);
	mem_node_flush(nd);
	mem_link_hook(nd, 0);
	m->c.disconnects++;
	mem_ev_push(m, MEV_PEER, &nd->addr, TP_PEER_DOWN, 0, reason, 0);
	mem_writable(m);
}

static void
mem_conn_timer(void *arg)
{
	struct tp_mem_node	*nd = arg;
	struct tp_mem_medium	*m = nd->m;
	uint32_t		 full = m->p.caps.mtu;

	if (nd->cstate == MC_CONNECTING) {
		if (nd->absent) {
			nd->cstate = MC_IDLE;
			mem_ev_push(m, MEV_PEER, &nd->addr, TP_PEER_DOWN, 0,
			    TP_EIO, 0);
			return;
		}
		nd->cstate = MC_UP;
		nd->mtu = m->p.mtu_first != 0 && m->p.mtu_first < full ?
		    m->p.mtu_first : full;
		m->c.connects++;
		if (mem_nconnected(m) > m->c.max_connected)
			m->c.max_connected = mem_nconnected(m);
		mem_link_hook(nd, nd->mtu);
		mem_ev_push(m, MEV_PEER, &nd->addr, TP_PEER_UP, nd->mtu, 0, 0);
		if (nd->mtu < full && m->p.mtu_ms != 0 && !nd->no_exchange) {
			nd->mtu_pending = true;
			ttimer_at(m->tc, &nd->ct, mem_now(m) +
			    (uint64_t)m->p.mtu_ms * 1000);
		}
		return;
	}
	if (nd->cstate == MC_UP && nd->mtu_pending) {
		/* The MTU exchange is over. */
		nd->mtu_pending = false;
		nd->mtu = full;
		mem_link_hook(nd, nd->mtu);
		mem_ev_push(m, MEV_PEER, &nd->addr, TP_PEER_MTU, nd->mtu, 0,
		    0);
	}
}

static uint64_t
mem_conn_frame_us(struct tp_mem_medium *m, size_t len)
{
	return (mem_bytes_us(m, len + m->p.caps.frame_overhead,
	    m->p.peer_bps));
}

/* A connection moves its frames one after the other. */
static void
mem_conn_tx(void *arg)
{
	struct tp_mem_node	*nd = arg;
	struct tp_mem_medium	*m = nd->m;
	struct tp_mem_frame	*fr;
	struct tp		*tp = m->gw;

	if ((fr = TAILQ_FIRST(&nd->txq)) == NULL)
		return;
	TAILQ_REMOVE(&nd->txq, fr, entry);
	m->cqueued--;
	if (m->outstanding > 0)
		m->outstanding--;
	mem_give(nd, fr->buf, fr->len);
	if (tp != NULL && m->p.tx_done)
		tp->host->tx_done(tp->host->arg, tp, fr->cookie, TP_OK,
		    (uint32_t)mem_conn_frame_us(m, fr->len));
	free(fr);
	if ((fr = TAILQ_FIRST(&nd->txq)) != NULL)
		ttimer_at(m->tc, &nd->tx_t, mem_now(m) +
		    mem_conn_frame_us(m, fr->len));
	mem_writable(m);
}

static int
mem_conn_send(struct tp *tp, const struct tp_addr *dst, struct tp_mem_frame *in)
{
	struct tp_mem_medium	*m = tp->m;
	struct tp_mem_node	*nd;
	struct tp_mem_frame	*fr;

	if ((dst->flags & TP_ADDR_F_BROADCAST) != 0 ||
	    (nd = mem_node_by_addr(m, dst)) == NULL || nd->cstate != MC_UP)
		return (TP_ENOPEER);
	if (in->len > nd->mtu) {
		m->c.emsgsize++;
		return (TP_EMSGSIZE);
	}
	if (m->p.caps.tx_queue != 0 && m->cqueued >= m->p.caps.tx_queue) {
		m->want_writable = true;
		m->c.eagain++;
		return (TP_EAGAIN);
	}
	fr = malloc(sizeof(*fr));
	*fr = *in;
	m->cqueued++;
	if (m->p.tx_done) {
		m->outstanding++;
		if (m->outstanding > m->c.max_outstanding)
			m->c.max_outstanding = m->outstanding;
	}
	if (TAILQ_EMPTY(&nd->txq))
		ttimer_at(m->tc, &nd->tx_t, mem_now(m) +
		    mem_conn_frame_us(m, fr->len));
	TAILQ_INSERT_TAIL(&nd->txq, fr, entry);
	return (TP_OK);
}

static int
tp_mem_connect(struct tp *tp, const struct tp_addr *dst)
{
	struct tp_mem_medium	*m = tp->m;
	struct tp_mem_node	*nd;

	if ((nd = mem_node_by_addr(m, dst)) == NULL)
		return (TP_ENOPEER);
	if (nd->cstate != MC_IDLE)
		return (TP_OK);
	if (m->p.caps.max_peers != 0 &&
	    mem_nconnected(m) >= m->p.caps.max_peers)
		return (TP_EAGAIN);
	nd->cstate = MC_CONNECTING;
	ttimer_at(m->tc, &nd->ct, mem_now(m) + (uint64_t)m->p.connect_ms *
	    1000);
	return (TP_OK);
}

static void
tp_mem_disconnect(struct tp *tp, const struct tp_addr *dst)
{
	struct tp_mem_node	*nd;

	if ((nd = mem_node_by_addr(tp->m, dst)) == NULL)
		return;
	if (nd->cstate == MC_CONNECTING) {
		ttimer_del(tp->m->tc, &nd->ct);
		nd->cstate = MC_UP;	/* so that the down is reported */
	}
	mem_conn_down(nd, 0);
}

void
tp_mem_node_drop(struct tp_mem_node *nd)
{
	if (!mem_connect_mode(nd->m) || nd->cstate != MC_UP)
		return;
	nd->m->c.drops++;
	mem_conn_down(nd, TP_EIO);
}

void
tp_mem_node_absent(struct tp_mem_node *nd, bool absent)
{
	nd->absent = absent;
}

void
tp_mem_node_busy(struct tp_mem_node *nd, double pct, uint64_t until_us)
{
	nd->busy = pct / 100;
	nd->busy_until = until_us;
}

uint64_t
tp_mem_node_busy_refused(struct tp_mem_node *nd)
{
	return (nd->nbusy);
}

void
tp_mem_node_no_exchange(struct tp_mem_node *nd, bool no)
{
	nd->no_exchange = no;
}

uint32_t
tp_mem_node_mtu(struct tp_mem_node *nd)
{
	return (nd->cstate == MC_UP ? nd->mtu : 0);
}

void
tp_mem_node_hooks(struct tp_mem_node *nd, tp_mem_link_fn *link,
    tp_mem_oob_fn *oob)
{
	nd->link_fn = link;
	nd->oob_fn = oob;
}

/* ------------------------------------------------------------------ */
/* The polled bus                                                       */

#define MEM_POLL_REQ	8	/* a read request: unit, FC, addr, n, CRC */
#define MEM_POLL_EMPTY	5	/* an empty answer */

static uint64_t
mem_gap(const struct tp_mem_medium *m)
{
	return (m->p.caps.min_gap_us);
}

/* Time on the bus of an operation, without its last gap. */
static uint64_t
mem_op_us(struct tp_mem_medium *m, bool poll, bool unicast, size_t len)
{
	uint32_t	 ov = m->p.caps.frame_overhead;

	if (poll)
		return (mem_bytes_us(m, MEM_POLL_REQ, 0) + mem_gap(m) +
		    m->p.turn_us + mem_bytes_us(m, len != 0 ? len + ov :
		    MEM_POLL_EMPTY, 0));
	if (!unicast)
		return (mem_bytes_us(m, len + ov, 0) + m->p.bcast_gap_us);
	return (mem_bytes_us(m, len + ov, 0) + mem_gap(m) + m->p.turn_us +
	    mem_bytes_us(m, m->p.ack_len, 0));
}

static void	 mem_bus_next(struct tp_mem_medium *);

static void
mem_bus_done(void *arg)
{
	struct tp_mem_medium	*m = arg;
	struct tp_mem_frame	*op = m->busy, *fr;
	struct tp_mem_node	*nd, *next;
	struct tp_rxinfo	 ri;
	struct tp		*tp = m->gw;
	int			 status = TP_OK;
	bool			 bcast, lost_any = false;

	m->busy = NULL;
	if (op == NULL)
		return;
	m->c.bus_us += m->busy_us;
	bcast = (op->dst.flags & TP_ADDR_F_BROADCAST) != 0;
	nd = bcast ? NULL : mem_node_by_addr(m, &op->dst);
	if (op->poll) {
		m->c.polls++;
		if (nd == NULL)
			status = TP_ENOPEER;
		else if (mem_busy_one(nd))
			status = TP_EBUSY;	/* its outbox stays */
		else if ((fr = TAILQ_FIRST(&nd->outbox)) == NULL)
			m->c.polls_empty++;
		else if (mem_lost(nd, nd->loss)) {
			m->c.lost++;
			status = TP_EIO;	/* answer lost: it stays */
		} else {
			TAILQ_REMOVE(&nd->outbox, fr, entry);
			nd->noutbox--;
			if (tp != NULL) {
				ri.rssi_dbm = INT16_MAX;
				ri.snr_db = INT8_MAX;
				ri.rx_ms = tp->host->now_ms(tp->host->arg);
				tp->host->rx(tp->host->arg, tp, &nd->addr,
				    fr->buf, fr->len, &ri);
			}
			free(fr);
		}
	} else if (bcast) {
		for (nd = TAILQ_FIRST(&m->nodes); nd != NULL; nd = next) {
			next = TAILQ_NEXT(nd, entry);
			if (mem_busy(nd) || !mem_give(nd, op->buf, op->len))
				lost_any = true;
		}
		if (lost_any && mem_type(op->buf, op->len) == UP_T_DATA)
			m->c.data_lost_any++;
	} else if (nd == NULL)
		status = TP_ENOPEER;
	else if (mem_busy_one(nd))
		status = TP_EBUSY;	/* refused, not taken */
	else if (!mem_give(nd, op->buf, op->len))
		status = TP_EIO;	/* no confirmation */
	if (m->outstanding > 0)
		m->outstanding--;
	if (m->gw != NULL && m->p.tx_done)
		m->gw->host->tx_done(m->gw->host->arg, m->gw, op->cookie,
		    status, (uint32_t)m->busy_us);
	free(op);
	mem_bus_next(m);
	mem_writable(m);
}

static void
mem_bus_next(struct tp_mem_medium *m)
{
	struct tp_mem_frame	*op, *fr;
	struct tp_mem_node	*nd;
	size_t			 len = 0;

	if (m->busy != NULL || (op = TAILQ_FIRST(&m->busq)) == NULL)
		return;
	TAILQ_REMOVE(&m->busq, op, entry);
	m->nbusq--;
	if (op->poll) {
		nd = mem_node_by_addr(m, &op->dst);
		if (nd != NULL && (fr = TAILQ_FIRST(&nd->outbox)) != NULL)
			len = fr->len;
		m->busy_us = mem_op_us(m, true, true, len);
	} else
		m->busy_us = mem_op_us(m, false,
		    (op->dst.flags & TP_ADDR_F_BROADCAST) == 0, op->len);
	m->busy = op;
	ttimer_at(m->tc, &m->bus_t, mem_now(m) + m->busy_us + mem_gap(m));
}

static int
mem_bus_queue(struct tp *tp, struct tp_mem_frame *in)
{
	struct tp_mem_medium	*m = tp->m;
	struct tp_mem_frame	*op;

	if (m->nbusq >= (m->p.caps.tx_queue != 0 ? m->p.caps.tx_queue : 8)) {
		m->want_writable = true;
		m->c.eagain++;
		return (TP_EAGAIN);
	}
	op = malloc(sizeof(*op));
	*op = *in;
	TAILQ_INSERT_TAIL(&m->busq, op, entry);
	m->nbusq++;
	if (m->p.tx_done) {
		m->outstanding++;
		if (m->outstanding > m->c.max_outstanding)
			m->c.max_outstanding = m->outstanding;
	}
	mem_bus_next(m);
	return (TP_OK);
}

static int
tp_mem_poll(struct tp *tp, const struct tp_addr *dst, uint64_t cookie)
{
	struct tp_mem_frame	 op;

	if ((dst->flags & TP_ADDR_F_BROADCAST) != 0 ||
	    mem_node_by_addr(tp->m, dst) == NULL)
		return (TP_ENOPEER);
	memset(&op, 0, sizeof(op));
	op.dst = *dst;
	op.cookie = cookie;
	op.poll = true;
	return (mem_bus_queue(tp, &op));
}

static uint32_t
tp_mem_poll_time(struct tp *tp, const struct tp_addr *dst)
{
	return ((uint32_t)mem_op_us(tp->m, true, true, 0));
}

static uint32_t
tp_mem_bus_airtime(struct tp *tp, const struct tp_addr *dst, size_t len)
{
	return ((uint32_t)mem_op_us(tp->m, false,
	    (dst->flags & TP_ADDR_F_BROADCAST) == 0, len));
}

/* ------------------------------------------------------------------ */
/* Module offload                                                       */

static bool
mem_bit(const uint8_t *b, uint32_t i)
{
	return ((b[i / 8] >> (i % 8)) & 1);
}

static void
mem_set(uint8_t *b, uint32_t i)
{
	b[i / 8] |= (uint8_t)(1 << (i % 8));
}

static uint32_t
mem_off_seglen(const struct tp_mem_offload *o, uint32_t k)
{
	uint64_t	 off = (uint64_t)k * o->seg;

	return ((uint32_t)(o->size - off < o->seg ? o->size - off : o->seg));
}

static uint32_t
mem_off_held(const struct tp_mem_node *nd)
{
	uint32_t	 k, n = 0;

	for (k = 0; k < nd->off_nsegs; k++)
		if (mem_bit(nd->off_segs, k))
			n++;
	return (n);
}

static void
mem_off_report(struct tp_mem_medium *m, bool final)
{
	struct tp_mem_offload	*o = &m->off;
	struct tp_mem_node	*nd;
	struct tp		*tp = m->gw;
	uint32_t		 held;
	uint64_t		 bytes;

	if (tp == NULL)
		return;
	tp->host->offload_progress(tp->host->arg, tp, o->id, NULL,
	    TP_OFF_RECEIVING, o->pulled_bytes);
	TAILQ_FOREACH(nd, &m->nodes, entry) {
		if (!nd->off_target || nd->off_over)
			continue;
		held = mem_off_held(nd);
		bytes = held == o->nseg ? o->size : (uint64_t)held * o->seg;
		if (held == o->nseg) {
			nd->off_over = true;
			tp->host->offload_progress(tp->host->arg, tp, o->id,
			    &nd->addr, TP_OFF_DONE, o->size);
		} else if (final) {
			nd->off_over = true;
			tp->host->offload_progress(tp->host->arg, tp, o->id,
			    &nd->addr, TP_OFF_FAILED, bytes);
		} else
			tp->host->offload_progress(tp->host->arg, tp, o->id,
			    &nd->addr, TP_OFF_RECEIVING, bytes);
		/* The engine may cancel from inside the callback. */
		if (!o->on)
			return;
	}
}

/* Segment k to every station that misses it. */
static void
mem_off_send(struct tp_mem_medium *m, uint32_t k)
{
	struct tp_mem_offload	*o = &m->off;
	struct tp_mem_node	*nd;
	uint32_t		 len = mem_off_seglen(o, k);

	m->c.off_segments++;
	TAILQ_FOREACH(nd, &m->nodes, entry) {
		if (!nd->off_target || nd->off_over ||
		    mem_bit(nd->off_segs, k))
			continue;
		if (mem_lost(nd, nd->off_loss))
			continue;
		mem_set(nd->off_segs, k);
		if (nd->oob_fn != NULL)
			nd->oob_fn(nd->arg, (uint64_t)k * o->seg,
			    o->file + (uint64_t)k * o->seg, len);
	}
}

static bool
mem_off_wanted(struct tp_mem_medium *m, uint32_t k)
{
	struct tp_mem_node	*nd;

	TAILQ_FOREACH(nd, &m->nodes, entry)
		if (nd->off_target && !nd->off_over &&
		    !mem_bit(nd->off_segs, k))
			return (true);
	return (false);
}

static void
mem_off_tick(void *arg)
{
	struct tp_mem_medium	*m = arg;
	struct tp_mem_offload	*o = &m->off;
	struct tp		*tp = m->gw;
	struct tp_mem_node	*nd;
	uint32_t		 k, len;
	bool			 any = false;

	if (!o->on || tp == NULL)
		return;
	if (o->round == 0 && o->next < o->nseg) {
		/* The carousel: pull the segment, send it to all. */
		k = o->next++;
		len = mem_off_seglen(o, k);
		m->c.off_reads++;
		if (tp->host->offload_read(tp->host->arg, tp, o->id,
		    (uint64_t)k * o->seg, o->file + (uint64_t)k * o->seg,
		    len) == -1) {
			TAILQ_FOREACH(nd, &m->nodes, entry)
				if (nd->off_target && !nd->off_over) {
					nd->off_over = true;
					tp->host->offload_progress(
					    tp->host->arg, tp, o->id,
					    &nd->addr, TP_OFF_FAILED, 0);
				}
			mem_off_stop(m);
			return;
		}
		mem_set(o->pulled, k);
		o->pulled_bytes += len;
		mem_off_send(m, k);
		/* The module's status queries: how far each station is. */
		if ((k + 1) % 8 == 0 && o->next < o->nseg) {
			mem_off_report(m, false);
			if (!o->on)
				return;
		}
	} else if (o->round > 0) {
		/* Repair: the next segment some station misses. */
		for (k = o->next; k < o->nseg; k++)
			if (mem_off_wanted(m, k))
				break;
		if (k < o->nseg) {
			mem_off_send(m, k);
			o->next = k + 1;
		} else
			o->next = o->nseg;
	}
	if (o->next >= o->nseg) {
		/* A round is over: the status queries, then repair. */
		mem_off_report(m, o->round >= m->p.off_rounds);
		if (!o->on)
			return;
		TAILQ_FOREACH(nd, &m->nodes, entry)
			if (nd->off_target && !nd->off_over)
				any = true;
		if (!any || o->round >= m->p.off_rounds) {
			mem_off_stop(m);
			return;
		}
		o->round++;
		o->next = 0;
	}
	ttimer_at(m->tc, &o->t, mem_now(m) + (uint64_t)m->p.seg_ms * 1000);
}

static void
mem_off_stop(struct tp_mem_medium *m)
{
	struct tp_mem_offload	*o = &m->off;
	struct tp_mem_node	*nd;

	if (m->tc != NULL)
		ttimer_del(m->tc, &o->t);
	free(o->file);
	free(o->pulled);
	o->file = o->pulled = NULL;
	o->on = false;
	TAILQ_FOREACH(nd, &m->nodes, entry) {
		nd->off_target = false;
		free(nd->off_segs);
		nd->off_segs = NULL;
		nd->off_nsegs = 0;
	}
}

static int
tp_mem_offload_start(struct tp *tp, const struct tp_offload *of, char **cause)
{
	struct tp_mem_medium	*m = tp->m;
	struct tp_mem_offload	*o = &m->off;
	struct tp_mem_node	*nd;
	uint32_t		 i;

	if (o->on) {
		if (asprintf(cause, "the module is busy") == -1)
			*cause = NULL;
		return (-1);
	}
	if (of->size == 0 || m->p.caps.offload_segment == 0) {
		if (asprintf(cause, "nothing to offload") == -1)
			*cause = NULL;
		return (-1);
	}
	memset(o, 0, sizeof(*o));
	ttimer_init(&o->t, mem_off_tick, m);
	o->on = true;
	o->id = of->id;
	o->size = of->size;
	o->seg = m->p.caps.offload_segment;
	o->nseg = (uint32_t)((of->size + o->seg - 1) / o->seg);
	o->file = calloc(1, of->size);
	o->pulled = calloc(1, o->nseg / 8 + 1);
	TAILQ_FOREACH(nd, &m->nodes, entry) {
		nd->off_target = of->npeers == 0;
		for (i = 0; i < of->npeers; i++)
			if (tp_addr_eq(&of->peers[i], &nd->addr))
				nd->off_target = true;
		nd->off_over = false;
		free(nd->off_segs);
		nd->off_nsegs = o->nseg;
		nd->off_segs = calloc(1, o->nseg / 8 + 1);
	}
	ttimer_at(m->tc, &o->t, mem_now(m) + (uint64_t)m->p.seg_ms * 1000);
	return (0);
}

static void
tp_mem_offload_cancel(struct tp *tp, uint32_t id)
{
	if (tp->m->off.on && tp->m->off.id == id)
		mem_off_stop(tp->m);
}

void
tp_mem_node_off_loss(struct tp_mem_node *nd, double loss_pct)
{
	nd->off_loss = loss_pct / 100.0;
}

/* ------------------------------------------------------------------ */
/* A radio (TP_CAP_BROADCAST | TP_CAP_HALF_DUPLEX on a fake clock)      */

static bool
mem_radio_mode(const struct tp_mem_medium *m)
{
	return ((m->p.caps.flags & (TP_CAP_BROADCAST | TP_CAP_HALF_DUPLEX)) ==
	    (TP_CAP_BROADCAST | TP_CAP_HALF_DUPLEX) && !mem_connect_mode(m) &&
	    !mem_polled_mode(m) && (m->p.caps.flags & TP_CAP_OFFLOAD) == 0 &&
	    m->tc != NULL);
}

/* A frame's time on air: the test's model, else the caps' rate. */
static uint32_t
mem_air(const struct tp_mem_medium *m, size_t len)
{
	uint64_t	 bps = m->p.caps.bitrate_bps;

	if (m->p.air_fn != NULL)
		return (m->p.air_fn(len));
	if (bps == 0)
		return (m->p.airtime_us);
	return ((uint32_t)(((uint64_t)len + m->p.caps.frame_overhead) * 8 *
	    1000000 / bps));
}

static bool
mem_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return (a0 < b1 && b0 < a1);
}

/* The gateway's frame on the air ended: receivers get it, tx_done. */
static void
mem_radio_end(void *arg)
{
	struct tp_mem_medium	*m = arg;
	struct tp_mem_frame	*fr;
	struct tp		*tp = m->gw;
	uint32_t		 air = (uint32_t)(m->gw_until - m->gw_from);

	m->gw_on = false;
	if (tp == NULL || m->n == 0)
		return;
	fr = &m->ring[m->head];
	tp_mem_deliver(m, fr);
	m->head = (m->head + 1) % m->ring_size;
	m->n--;
	if (m->p.tx_done) {
		if (m->outstanding > 0)
			m->outstanding--;
		tp->host->tx_done(tp->host->arg, tp, fr->cookie, TP_OK, air);
	}
	if (m->gw != tp)
		return;		/* closed from the callback */
	if (m->want_writable) {
		m->want_writable = false;
		tp->host->writable(tp->host->arg, tp);
	}
	mem_radio_start(m);
}

/* The next gateway frame goes on the air, if one waits and none is on. */
static void
mem_radio_start(struct tp_mem_medium *m)
{
	struct tp_mem_frame	*fr, *u;
	uint64_t		 now = m->tc->now_us;
	uint32_t		 air;

	if (m->gw_on || m->hold || m->n == 0 || m->gw == NULL)
		return;
	fr = &m->ring[m->head];
	air = mem_air(m, fr->len) + m->p.air_extra_us;
	m->gw_on = true;
	m->gw_from = now;
	m->gw_until = now + air;
	m->c.air_us += air;
	/* Half-duplex: what nodes send meanwhile is not heard. */
	TAILQ_FOREACH(u, &m->air, entry)
		if (!u->lost && mem_overlap(u->start, u->end, m->gw_from,
		    m->gw_until)) {
			u->lost = true;
			m->c.deaf++;
		}
	mem_count(m, fr->buf, fr->len, &fr->dst);
	ttimer_at(m->tc, &m->gw_t, m->gw_until);
}

/* A node's frame on the air ended: the gateway hears it, or not. */
static void
mem_radio_up_end(void *arg)
{
	struct tp_mem_frame	*fr = arg;
	struct tp_mem_medium	*m = fr->from->m;
	struct tp_rxinfo	 ri;

	TAILQ_REMOVE(&m->air, fr, entry);
	if (fr->collided)
		m->c.collisions++;
	else if (!fr->lost && m->gw != NULL && !m->down) {
		ri.rssi_dbm = INT16_MAX;
		ri.snr_db = INT8_MAX;
		ri.rx_ms = m->gw->host->now_ms(m->gw->host->arg);
		m->gw->host->rx(m->gw->host->arg, m->gw, &fr->from->addr,
		    fr->buf, fr->len, &ri);
	}
	free(fr);
}

/* A node sends: after its own frames, for the frame's time on air. */
static void
mem_radio_up(struct tp_mem_node *nd, struct tp_mem_frame *fr)
{
	struct tp_mem_medium	*m = nd->m;
	struct tp_mem_frame	*u;
	uint64_t		 now = m->tc->now_us;

	fr->start = nd->tx_until > now ? nd->tx_until : now;
	fr->end = fr->start + mem_air(m, fr->len);
	nd->tx_from = fr->start;
	nd->tx_until = fr->end;
	m->c.ul_frames++;
	m->c.ul_air_us += fr->end - fr->start;
	TAILQ_FOREACH(u, &m->air, entry)
		if (u->from != nd && mem_overlap(u->start, u->end, fr->start,
		    fr->end))
			u->collided = fr->collided = true;
	if (m->gw_on && mem_overlap(m->gw_from, m->gw_until, fr->start,
	    fr->end)) {
		fr->lost = true;
		m->c.deaf++;
	}
	TAILQ_INSERT_TAIL(&m->air, fr, entry);
	ttimer_init(&fr->t, mem_radio_up_end, fr);
	ttimer_at(m->tc, &fr->t, fr->end);
}

static void
mem_radio_reset(struct tp_mem_medium *m)
{
	struct tp_mem_frame	*fr;

	while ((fr = TAILQ_FIRST(&m->air)) != NULL) {
		TAILQ_REMOVE(&m->air, fr, entry);
		if (m->tc != NULL)
			ttimer_del(m->tc, &fr->t);
		free(fr);
	}
	if (m->tc != NULL)
		ttimer_del(m->tc, &m->gw_t);
	m->gw_on = false;
}

/* ------------------------------------------------------------------ */
/* Link events                                                          */

void
tp_mem_link(struct tp_mem_medium *m, enum tp_link_event ev)
{
	struct tp_mem_node	*nd;

	if (ev == TP_LINK_DOWN)
		m->down = true;
	else if (ev == TP_LINK_UP)
		m->down = false;
	if (ev == TP_LINK_DOWN && mem_connect_mode(m))
		TAILQ_FOREACH(nd, &m->nodes, entry) {
			/* Connections die with the link (no events). */
			if (nd->cstate != MC_IDLE) {
				ttimer_del(m->tc, &nd->ct);
				mem_node_flush(nd);
				nd->cstate = MC_IDLE;
				nd->mtu = 0;
				mem_link_hook(nd, 0);
			}
		}
	mem_ev_push(m, MEV_LINK, NULL, (int)ev, 0, 0, 0);
}

void
tp_mem_set_caps(struct tp_mem_medium *m, const struct tp_caps *caps)
{
	m->p.caps = *caps;
	mem_ev_push(m, MEV_LINK, NULL, TP_CAPS_CHANGED, 0, 0, 0);
}

static void
mem_shapes_reset(struct tp_mem_medium *m)
{
	struct tp_mem_ev	*ev;
	struct tp_mem_frame	*fr;

	mem_off_stop(m);
	while ((ev = TAILQ_FIRST(&m->evs)) != NULL) {
		TAILQ_REMOVE(&m->evs, ev, entry);
		free(ev);
	}
	while ((fr = TAILQ_FIRST(&m->busq)) != NULL) {
		TAILQ_REMOVE(&m->busq, fr, entry);
		free(fr);
	}
	m->nbusq = 0;
	free(m->busy);
	m->busy = NULL;
	if (m->tc != NULL) {
		ttimer_del(m->tc, &m->ev_t);
		ttimer_del(m->tc, &m->bus_t);
	}
}

/* ------------------------------------------------------------------ */
/* The ops                                                              */

static void
tp_mem_deliver(struct tp_mem_medium *m, struct tp_mem_frame *fr)
{
	struct tp_mem_node	*nd, *next;
	uint8_t			 type = mem_type(fr->buf, fr->len);
	bool			 bcast, lost_any = false;

	bcast = (fr->dst.flags & TP_ADDR_F_BROADCAST) != 0;
	for (nd = TAILQ_FIRST(&m->nodes); nd != NULL; nd = next) {
		next = TAILQ_NEXT(nd, entry);
		if (!bcast && !tp_addr_eq(&fr->dst, &nd->addr))
			continue;
		if (mem_radio_mode(m) && mem_overlap(nd->tx_from, nd->tx_until,
		    m->gw_from, m->gw_until)) {
			m->c.missed++;	/* it was sending */
			continue;
		}
		if (nd->loss > 0 && tp_mem_rand(&nd->rng) < nd->loss) {
			m->c.lost++;
			lost_any = true;
			continue;
		}
		if (type == UP_T_RESULT_ACK)
			nd->acks++;
		nd->fn(nd->arg, fr->buf, fr->len);
	}
	if (type == UP_T_DATA && lost_any)
		m->c.data_lost_any++;
}

static void
tp_mem_down_cb(int fd, short ev, void *arg)
{
	struct tp		*tp = arg;
	struct tp_mem_medium	*m = tp->m;
	struct tp_mem_frame	*fr;
	unsigned int		 done = 0;

	if (m == NULL)
		return;
	while (!m->hold && m->n > 0 && m->gw == tp) {
		fr = &m->ring[m->head];
		tp_mem_deliver(m, fr);
		m->head = (m->head + 1) % m->ring_size;
		m->n--;
		done++;
		if (m->p.tx_done) {
			if (m->outstanding > 0)
				m->outstanding--;
			tp->host->tx_done(tp->host->arg, tp, fr->cookie, TP_OK,
			    m->p.airtime_us);
		}
	}
	if (m->gw == tp && done > 0 && m->want_writable) {
		m->want_writable = false;
		tp->host->writable(tp->host->arg, tp);
	}
}

static int
tp_mem_open_op(const struct tp_host *host, const struct tp_conf *conf,
    struct tp **out, char **cause)
{
	struct tp_mem_medium	*m;
	struct tp		*tp;

	if ((m = tp_mem_find(conf->name)) == NULL) {
		if (asprintf(cause, "no medium %s", conf->name) == -1)
			*cause = NULL;
		return (-1);
	}
	if (m->gw != NULL) {
		if (asprintf(cause, "medium %s is in use", conf->name) == -1)
			*cause = NULL;
		return (-1);
	}
	tp = calloc(1, sizeof(*tp));
	tp->m = m;
	tp->host = host;
	tp->down_ev = event_new(host->base, -1, 0, tp_mem_down_cb, tp);
	m->gw = tp;
	m->head = m->n = 0;
	m->want_writable = false;
	m->outstanding = 0;
	*out = tp;
	return (0);
}

static int
tp_mem_start(struct tp *tp, char **cause)
{
	struct tp_mem_node	*nd;

	/* A connect or polled link lists its nodes. */
	if (mem_connect_mode(tp->m) || mem_polled_mode(tp->m))
		TAILQ_FOREACH(nd, &tp->m->nodes, entry)
			mem_ev_push(tp->m, MEV_PEER, &nd->addr, TP_PEER_FOUND,
			    0, 0, 0);
	return (0);
}

static void
tp_mem_close(struct tp *tp)
{
	if (tp == NULL)
		return;
	if (tp->m != NULL && tp->m->gw == tp) {
		struct tp_mem_node *nd;

		/* Frames not yet on the "air" are lost with the instance. */
		tp->m->gw = NULL;
		tp->m->n = 0;
		TAILQ_FOREACH(nd, &tp->m->nodes, entry) {
			if (tp->m->tc != NULL)
				ttimer_del(tp->m->tc, &nd->ct);
			mem_node_flush(nd);
			nd->cstate = MC_IDLE;
			nd->mtu = 0;
		}
		mem_shapes_reset(tp->m);
		mem_radio_reset(tp->m);
		tp->m->cqueued = 0;
	}
	event_free(tp->down_ev);
	free(tp);
}

static void
tp_mem_caps(struct tp *tp, struct tp_caps *caps)
{
	*caps = tp->m->p.caps;
}

/* What the medium counts of a gateway frame it accepted. */
static void
mem_count(struct tp_mem_medium *m, const uint8_t *buf, size_t len,
    const struct tp_addr *dst)
{
	uint64_t	 now;
	uint32_t	 sess;
	uint8_t		 type = mem_type(buf, len);

	now = tclock_now(m->tc);
	if (m->c.first_us == 0)
		m->c.first_us = now;
	m->c.last_us = now;
	m->c.frames++;
	m->c.bytes += len;
	m->c.by_type[type & 15]++;
	if (len > m->c.max_frame)
		m->c.max_frame = len;
	if (type == UP_T_DATA) {
		if (m->c.first_data_us == 0)
			m->c.first_data_us = now;
		m->c.last_data_us = now;
		m->c.data_bytes += len;
		if ((dst->flags & TP_ADDR_F_BROADCAST) != 0)
			m->c.data_bcast++;
		else
			m->c.data_unicast++;
	}
	if (len >= 8 && (buf[0] & 0x80) == 0 && (sess = (uint32_t)buf[4] |
	    (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
	    (uint32_t)buf[7] << 24) != 0) {
		m->c.last_session = sess;
		if (type == UP_T_OFFER)
			m->c.last_offer_session = sess;
	}
	if (m->tx_hook != NULL)
		m->tx_hook(m->tx_arg, now, buf, len);
}

static int
tp_mem_send(struct tp *tp, const struct tp_addr *dst, const struct iovec *iov,
    int iovcnt, uint64_t cookie)
{
	struct tp_mem_medium	*m = tp->m;
	struct tp_mem_frame	*fr, tmp;
	size_t			 len = 0;
	int			 i, rc;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (m->p.caps.mtu != 0 && len > m->p.caps.mtu) {
		m->c.emsgsize++;
		return (TP_EMSGSIZE);
	}
	if (len > UP_FRAME_MAX)
		return (TP_EMSGSIZE);
	if (m->down)
		return (TP_EIO);	/* the engine should know better */
	if (mem_connect_mode(m) || mem_polled_mode(m)) {
		memset(&tmp, 0, sizeof(tmp));
		for (i = 0; i < iovcnt; i++) {
			memcpy(tmp.buf + tmp.len, iov[i].iov_base,
			    iov[i].iov_len);
			tmp.len += iov[i].iov_len;
		}
		tmp.dst = *dst;
		tmp.cookie = cookie;
		rc = mem_connect_mode(m) ? mem_conn_send(tp, dst, &tmp) :
		    mem_bus_queue(tp, &tmp);
		if (rc == TP_OK)
			mem_count(m, tmp.buf, tmp.len, dst);
		return (rc);
	}
	if (m->n == m->ring_size) {
		m->want_writable = true;
		m->c.eagain++;
		return (TP_EAGAIN);
	}
	fr = &m->ring[(m->head + m->n) % m->ring_size];
	fr->len = 0;
	for (i = 0; i < iovcnt; i++) {
		memcpy(fr->buf + fr->len, iov[i].iov_base, iov[i].iov_len);
		fr->len += iov[i].iov_len;
	}
	fr->dst = *dst;
	fr->cookie = cookie;
	m->n++;
	if (m->p.tx_done) {
		m->outstanding++;
		if (m->outstanding > m->c.max_outstanding)
			m->c.max_outstanding = m->outstanding;
	}
	if (mem_radio_mode(m)) {
		/* On the air (and counted) once the ones before it are done. */
		mem_radio_start(m);
		return (TP_OK);
	}
	mem_count(m, fr->buf, fr->len, dst);
	if (!m->hold)
		event_active(tp->down_ev, EV_TIMEOUT, 1);
	return (TP_OK);
}

static int
tp_mem_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	if (a->flags & TP_ADDR_F_BROADCAST)
		return (snprintf(buf, len, "mem:*") < (int)len ? 0 : -1);
	return (snprintf(buf, len, "mem:%u", a->len > 0 ? a->b[0] : 0) <
	    (int)len ? 0 : -1);
}

static int
tp_mem_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	unsigned int	 v;

	memset(a, 0, sizeof(*a));
	if (sscanf(s, "mem:%u", &v) != 1 || v > 255) {
		if (asprintf(cause, "bad address %s", s) == -1)
			*cause = NULL;
		return (-1);
	}
	a->len = 1;
	a->b[0] = (uint8_t)v;
	return (0);
}

static uint32_t
tp_mem_airtime(struct tp *tp, const struct tp_addr *dst, size_t len)
{
	if (tp->m->p.air_fn != NULL)
		return (tp->m->p.air_fn(len));
	return (tp->m->p.airtime_us);
}

static void
tp_mem_stats(struct tp *tp, struct tp_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (tp->m == NULL)
		return;
	st->tx_frames = tp->m->c.frames;
	st->tx_bytes = tp->m->c.bytes;
	st->eagain = tp->m->c.eagain;
	st->queued = tp->m->n;
}

static const struct tp_option tp_mem_options[] = {
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};

const struct tp_ops tp_mem_ops = {
	.name = "mem",
	.abi = TP_ABI_VERSION,
	.options = tp_mem_options,
	.open = tp_mem_open_op,
	.start = tp_mem_start,
	.close = tp_mem_close,
	.caps = tp_mem_caps,
	.send = tp_mem_send,
	.addr_fmt = tp_mem_addr_fmt,
	.addr_parse = tp_mem_addr_parse,
	.stats = tp_mem_stats,
	.connect = tp_mem_connect,
	.disconnect = tp_mem_disconnect,
	.offload_start = tp_mem_offload_start,
	.offload_cancel = tp_mem_offload_cancel,
};

/* A polled bus (TP_CAP_POLLED): exact bus times, polls. */
const struct tp_ops tp_mem_bus_ops = {
	.name = "mem-bus",
	.abi = TP_ABI_VERSION,
	.options = tp_mem_options,
	.open = tp_mem_open_op,
	.start = tp_mem_start,
	.close = tp_mem_close,
	.caps = tp_mem_caps,
	.send = tp_mem_send,
	.addr_fmt = tp_mem_addr_fmt,
	.addr_parse = tp_mem_addr_parse,
	.airtime = tp_mem_bus_airtime,
	.stats = tp_mem_stats,
	.poll = tp_mem_poll,
	.poll_time = tp_mem_poll_time,
};

/* The same with an exact airtime model (LoRa-like links). */
const struct tp_ops tp_mem_air_ops = {
	.name = "mem-air",
	.abi = TP_ABI_VERSION,
	.options = tp_mem_options,
	.open = tp_mem_open_op,
	.start = tp_mem_start,
	.close = tp_mem_close,
	.caps = tp_mem_caps,
	.send = tp_mem_send,
	.addr_fmt = tp_mem_addr_fmt,
	.addr_parse = tp_mem_addr_parse,
	.airtime = tp_mem_airtime,
	.stats = tp_mem_stats,
};
