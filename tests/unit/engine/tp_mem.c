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
	size_t			 len;
	uint8_t			 buf[UP_FRAME_MAX];
	TAILQ_ENTRY(tp_mem_frame) entry;
};
TAILQ_HEAD(tp_mem_frames, tp_mem_frame);

struct tp_mem_node {
	struct tp_mem_medium	*m;
	struct tp_addr		 addr;
	double			 loss;
	uint64_t		 rng;
	tp_mem_rx_fn		*fn;
	void			*arg;
	uint64_t		 acks;
	TAILQ_ENTRY(tp_mem_node) entry;
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
};

struct tp {
	struct tp_mem_medium	*m;
	const struct tp_host	*host;
	struct event		*down_ev;
};

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
		if (m->gw != NULL) {
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
	m->up_ev = event_new(base, -1, 0, tp_mem_up_cb, m);
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
	while ((nd = TAILQ_FIRST(&m->nodes)) != NULL) {
		TAILQ_REMOVE(&m->nodes, nd, entry);
		free(nd);
	}
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
	if (!hold && m->gw != NULL && m->n > 0)
		event_active(m->gw->down_ev, EV_TIMEOUT, 1);
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
	TAILQ_INSERT_TAIL(&m->nodes, nd, entry);
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
	fr = calloc(1, sizeof(*fr));
	memcpy(fr->buf, buf, len);
	fr->len = len;
	fr->from = nd;
	TAILQ_INSERT_TAIL(&nd->m->up, fr, entry);
	event_active(nd->m->up_ev, EV_TIMEOUT, 1);
}

uint64_t
tp_mem_node_acks(struct tp_mem_node *nd)
{
	return (nd->acks);
}

/* ------------------------------------------------------------------ */
/* The ops                                                              */

static void
tp_mem_deliver(struct tp_mem_medium *m, struct tp_mem_frame *fr)
{
	struct tp_mem_node	*nd, *next;
	uint8_t			 type = fr->len > 1 ? fr->buf[1] : 0;
	bool			 bcast, lost_any = false;

	bcast = (fr->dst.flags & TP_ADDR_F_BROADCAST) != 0;
	for (nd = TAILQ_FIRST(&m->nodes); nd != NULL; nd = next) {
		next = TAILQ_NEXT(nd, entry);
		if (!bcast && !tp_addr_eq(&fr->dst, &nd->addr))
			continue;
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
	return (0);
}

static void
tp_mem_close(struct tp *tp)
{
	if (tp == NULL)
		return;
	if (tp->m != NULL && tp->m->gw == tp) {
		/* Frames not yet on the "air" are lost with the instance. */
		tp->m->gw = NULL;
		tp->m->n = 0;
	}
	event_free(tp->down_ev);
	free(tp);
}

static void
tp_mem_caps(struct tp *tp, struct tp_caps *caps)
{
	*caps = tp->m->p.caps;
}

static int
tp_mem_send(struct tp *tp, const struct tp_addr *dst, const struct iovec *iov,
    int iovcnt, uint64_t cookie)
{
	struct tp_mem_medium	*m = tp->m;
	struct tp_mem_frame	*fr;
	size_t			 len = 0;
	uint64_t		 now;
	uint32_t		 sess;
	uint8_t			 type;
	int			 i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (m->p.caps.mtu != 0 && len > m->p.caps.mtu)
		return (TP_EMSGSIZE);
	if (len > UP_FRAME_MAX)
		return (TP_EMSGSIZE);
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

	type = len > 1 ? fr->buf[1] : 0;
	now = tclock_now(m->tc);
	if (m->c.first_us == 0)
		m->c.first_us = now;
	m->c.last_us = now;
	m->c.frames++;
	m->c.bytes += len;
	m->c.by_type[type & 15]++;
	if (type == UP_T_DATA) {
		if (m->c.first_data_us == 0)
			m->c.first_data_us = now;
		m->c.last_data_us = now;
		m->c.data_bytes += len;
	}
	if (len >= 8 && (sess = (uint32_t)fr->buf[4] |
	    (uint32_t)fr->buf[5] << 8 | (uint32_t)fr->buf[6] << 16 |
	    (uint32_t)fr->buf[7] << 24) != 0) {
		m->c.last_session = sess;
		if (type == UP_T_OFFER)
			m->c.last_offer_session = sess;
	}
	if (m->tx_hook != NULL)
		m->tx_hook(m->tx_arg, now, fr->buf, fr->len);
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
