/*
 * sim_plc_sta.c: the station modules (STA) of the station-area
 * simulator: what the coordinator's messages ask of a station, and its
 * device port (sim_plc.c's comment describes both).
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

/* ------------------------------------------------------------------ */
/* Stations                                                             */

void
plc__sta_file_init(struct plc_node *st, uint16_t gen, uint32_t size,
    uint16_t bsize)
{
	uint32_t	 n;

	if (bsize == 0 || size == 0)
		return;
	if (st->have != NULL && st->gen == gen && st->size == size &&
	    st->bsize == bsize)
		return;
	st->gen = gen;
	free(st->have);
	free(st->dev);
	free(st->data);
	n = (size + bsize - 1) / bsize;
	st->have = calloc(1, (n + 7) / 8);
	st->dev = calloc(1, (n + 7) / 8);
	st->data = malloc(size);
	if (st->have == NULL || st->dev == NULL || st->data == NULL) {
		free(st->have);
		free(st->dev);
		free(st->data);
		st->have = st->dev = st->data = NULL;
		return;
	}
	st->size = size;
	st->bsize = bsize;
	st->nblocks = n;
	st->nhave = st->ndev = 0;
}

void
plc__sta_qreply(struct plc_node *st, uint32_t id)
{
	uint8_t		 m[M_HDR + 13 + 4 * M_MISSING_MAX];
	size_t		 o = M_HDR;
	uint32_t	 b;
	unsigned int	 n = 0;

	plc__msg_build(m, M_QREPLY, plcs->cco->addr, st->addr, id);
	o = q_put(m, sizeof(m), o, st->nhave, 4);
	o = q_put(m, sizeof(m), o, st->ndev, 4);
	o = q_put(m, sizeof(m), o, st->have != NULL ? plc__contiguous(st->dev,
	    st->nblocks) : 0, 4);
	o = q_put(m, sizeof(m), o, 0, 1);
	for (b = 0; st->have != NULL && b < st->nblocks &&
	    n < M_MISSING_MAX; b++)
		if (!plc__bit_get(st->have, b)) {
			o = q_put(m, sizeof(m), o, b, 4);
			n++;
		}
	if (st->have == NULL) {
		/* It never heard the start: all of it. */
		for (b = 0; b < plcs->nblocks && n < M_MISSING_MAX; b++) {
			o = q_put(m, sizeof(m), o, b, 4);
			n++;
		}
	}
	m[M_HDR + 12] = (uint8_t)n;
	plc__msg_route(st, m, o);
}

/* What the device must be handed next, one at a time. */
void
plc__dev_pump(struct plc_node *st)
{
	struct plc_devq	*q;
	uint8_t		 du[16 + 4096];
	size_t		 o = 0;
	uint32_t	 b, len;

	if (st->dev_busy != 0 || st->rebooting)
		return;
	if (st->devq_len > 0) {
		q = &st->devq[st->devq_head];
		st->devq_head = (st->devq_head + 1) % DEVQ_MAX;
		st->devq_len--;
		st->dev_seq++;
		if (q->kind == M_FWD) {
			o = q_put(du, sizeof(du), o, 0, 1);
			o = q_put(du, sizeof(du), o, 0, 1);
			o = q_put(du, sizeof(du), o, 0, 1);
			o = q_put(du, sizeof(du), o, q->len, 1);
			o = q_put_bytes(du, sizeof(du), o, q->b, q->len);
			plc__line_frame(st, Q_PRM | Q_COMM_HPLC, st->dev_seq,
			    false, NULL, NULL, AFN_ROUTE_FWD, 1, du, o);
			st->dev_busy = M_FWD;
			st->dev_id = q->id;
			sim_timer_at(plcs->sim, st->ev_dev, sim_now(plcs->sim) +
			    plcs->device_ns);
			return;
		}
		/* A broadcast: handed over, nothing awaited. */
		o = q_put(du, sizeof(du), o, 0, 1);
		o = q_put(du, sizeof(du), o, q->len, 1);
		o = q_put_bytes(du, sizeof(du), o, q->b, q->len);
		plc__line_frame(st, Q_PRM | Q_COMM_HPLC, st->dev_seq, false,
		    NULL, NULL, AFN_CONTROL, 3, du, o);
		plc__dev_pump(st);
		return;
	}
	if (st->have == NULL || st->ndev == st->nhave)
		return;
	for (b = 0; b < st->nblocks; b++)
		if (plc__bit_get(st->have, b) && !plc__bit_get(st->dev, b))
			break;
	if (b == st->nblocks)
		return;
	len = st->bsize;
	if ((uint64_t)b * st->bsize + len > st->size)
		len = st->size - b * st->bsize;
	st->dev_seq++;
	o = q_put(du, sizeof(du), o, 0x08, 1);
	o = q_put(du, sizeof(du), o, b + 1 == st->nblocks ? 1 : 0, 1);
	o = q_put(du, sizeof(du), o, 0, 1);
	o = q_put(du, sizeof(du), o, st->nblocks, 2);
	o = q_put(du, sizeof(du), o, b, 4);
	o = q_put(du, sizeof(du), o, len, 2);
	/* The block's bytes: the station's own copy. */
	o = q_put_bytes(du, sizeof(du), o, st->data + (size_t)b * st->bsize,
	    len);
	plc__line_frame(st, Q_PRM | Q_COMM_HPLC, st->dev_seq, false, NULL, NULL,
	    AFN_FILE, 1, du, o);
	st->dev_busy = M_BLOCK;
	st->dev_block = b;
	sim_timer_at(plcs->sim, st->ev_dev,
	    sim_now(plcs->sim) + plcs->device_ns +
		(uint64_t)o * sim_fmt_char_ns(&st->ep->fmt));
}

void
plc__dev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct plc_node	*st = arg;
	uint8_t		 m[M_HDR + 1];

	if (st->dev_busy == M_FWD) {
		/* The device said nothing: tell the coordinator so. */
		plc__msg_build(m, M_FWD_REPLY, plcs->cco->addr, st->addr,
		    st->dev_id);
		m[M_HDR] = 0;
		plc__msg_route(st, m, M_HDR + 1);
	}
	st->dev_busy = 0;
	plc__dev_pump(st);
}

void
plc__devq_push(struct plc_node *st, uint8_t kind, uint32_t id, const uint8_t *b,
    size_t len)
{
	struct plc_devq	*q;

	if (st->devq_len == DEVQ_MAX || len > 255)
		return;
	q = &st->devq[(st->devq_head + st->devq_len) % DEVQ_MAX];
	q->kind = kind;
	q->id = id;
	q->len = (uint8_t)len;
	memcpy(q->b, b, len);
	st->devq_len++;
	plc__dev_pump(st);
}

/* A frame from a station's device. */
void
plc__sta_frame(struct plc_node *st, const uint8_t *p, size_t len)
{
	struct q_frame	 f;
	const char	*why;
	uint8_t		 m[M_HDR + 1 + 255], du[6];
	size_t		 off = 0, mlen;
	bool		 ok = true;
	uint32_t	 idx;

	if (q_decode(p, len, &f, &why) != 0 || !(f.c & Q_DIR_UP)) {
		sim_debug(plcs->sim, "plc: %s: frame dropped: %s", st->ep->name,
		    why != NULL ? why : "not from a device");
		return;
	}
	if (f.afn == AFN_ROUTE_FWD && f.fn == 1 && !(f.c & Q_PRM)) {
		/* time (2), protocol, length, message */
		off = 3;
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		if (!ok || f.len - off != mlen)
			return;
		if (st->dev_busy == M_FWD && Q_SEQ(&f) == st->dev_seq) {
			plc__msg_build(m, M_FWD_REPLY, plcs->cco->addr,
			    st->addr, st->dev_id);
			m[M_HDR] = 1;
			memcpy(m + M_HDR + 1, f.data + off, mlen);
			plc__msg_route(st, m, M_HDR + 1 + mlen);
			event_del(st->ev_dev);
			st->dev_busy = 0;
			plc__dev_pump(st);
			return;
		}
		/* Too late for its request: an event then. */
		plc__msg_build(m, M_EVENT, plcs->cco->addr, st->addr,
		    ++plcs->ids);
		memcpy(m + M_HDR, f.data + off, mlen);
		plc__msg_route(st, m, M_HDR + mlen);
		return;
	}
	if (f.afn == AFN_REPORT && f.fn == 5 && (f.c & Q_PRM)) {
		(void)q_put(du, sizeof(du), 0, 1, 4);
		(void)q_put(du, sizeof(du), 4, 0, 2);
		plc__line_frame(st, Q_COMM_HPLC, Q_SEQ(&f), false, NULL, NULL,
		    AFN_ACK, 1, du, 6);
		off = 2;
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		if (!ok || f.len - off != mlen || mlen == 0)
			return;
		plc__msg_build(m, M_EVENT, plcs->cco->addr, st->addr,
		    ++plcs->ids);
		memcpy(m + M_HDR, f.data + off, mlen);
		plc__msg_route(st, m, M_HDR + mlen);
		return;
	}
	if (f.afn == AFN_FILE && f.fn == 1 && !(f.c & Q_PRM)) {
		idx = q_get(f.data, f.len, &off, 4, &ok);
		if (!ok || st->dev_busy != M_BLOCK || Q_SEQ(&f) !=
		    st->dev_seq || idx != st->dev_block)
			return;
		if (st->dev != NULL && !plc__bit_get(st->dev, idx)) {
			plc__bit_set(st->dev, idx);
			st->ndev++;
		}
		event_del(st->ev_dev);
		st->dev_busy = 0;
		plc__dev_pump(st);
		return;
	}
	/* Confirms of broadcasts and anything else: nothing to do. */
}

