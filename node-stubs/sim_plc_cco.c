/*
 * sim_plc_cco.c: the carrier module at `gw' (the CCO) of the station-area
 * simulator: 1376.2 requests answered one at a time, reports repeated
 * until confirmed, the file kept in flash, and the distribution of that
 * file to the stations (sim_plc.c's comment describes them).
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

static uint64_t	 cco_answer_frame(uint8_t afn, uint16_t fn, bool addressed,
		    const uint8_t *src, const uint8_t *du, size_t dulen);
static void	 cco_deny(uint8_t);
static void	 cco_req_done(void);
static void	 cco_report_pump(void);

/* ------------------------------------------------------------------ */
/* The coordinator (the module at gw)                                   */

/* The answer to the request being served (PRM 0, DIR 1); returns when
 * its last character is due. */
static uint64_t
cco_answer_frame(uint8_t afn, uint16_t fn, bool addressed,
    const uint8_t *src, const uint8_t *du, size_t dulen)
{
	uint64_t	 t;

	t = plc__line_frame(plcs->cco, Q_DIR_UP | Q_COMM_HPLC, plcs->req_seq,
	    addressed, src, plcs->cco->addr, afn, fn, du, dulen);
	cco_req_done();
	return (t);
}

static void
cco_confirm(uint16_t wait_s)
{
	uint8_t		 du[6];

	(void)q_put(du, sizeof(du), 0, 1, 4);
	(void)q_put(du, sizeof(du), 4, wait_s, 2);
	cco_answer_frame(AFN_ACK, 1, false, NULL, du, sizeof(du));
}

void
plc__cco_confirm_now(void)
{
	cco_confirm(0);
}

static void
cco_deny(uint8_t code)
{
	plcs->denied++;
	cco_answer_frame(AFN_ACK, 2, false, NULL, &code, 1);
}

static void
cco_req_done(void)
{
	plcs->req = R_IDLE;
	event_del(plcs->ev_req);
}

size_t
plc__cco_run_mode(uint8_t *du, size_t cap)
{
	size_t		 o = 0;

	o = q_put(du, cap, o, 0x12, 1);		/* HPLC, routing */
	o = q_put(du, cap, o, 0x00, 1);		/* confirms after a broadcast */
	o = q_put(du, cap, o, 1, 1);		/* one channel */
	o = q_put(du, cap, o, 1, 1);		/* one rate */
	o = q_put(du, cap, o, 0, 2);
	o = q_put(du, cap, o, plcs->monitor_s, 1);
	o = q_put(du, cap, o, plcs->broadcast_s, 2);
	o = q_put(du, cap, o, plcs->max_frame, 2);
	o = q_put(du, cap, o, plcs->segment, 2);
	o = q_put(du, cap, o, plcs->wait_min, 1);
	o = q_put_bytes(du, cap, o, plcs->cco->addr, 6);
	o = q_put(du, cap, o, 1024, 2);
	o = q_put(du, cap, o, plcs->n - 1, 2);
	o = q_put_bytes(du, cap, o, "\x01\x01\x13\x15\x06\x13", 6);
	o = q_put_bytes(du, cap, o, "SMSM", 4);	/* vendor, chip: simulator */
	o = q_put_bytes(du, cap, o, "\x07\x12\x26\x00\x01", 5);
	o = q_put(du, cap, o, 0x8000 | (plcs->rate / 1000 > 0x7fff ? 0x7fff :
	    plcs->rate / 1000), 2);
	return (o);
}

/* Stations in endpoint order: index 1 is the first station. */
static struct plc_node *
station_at(unsigned int k)
{
	unsigned int	 i, j = 0;

	for (i = 0; i < plcs->n; i++)
		if (!plcs->node[i].cco && ++j == k)
			return (&plcs->node[i]);
	return (NULL);
}

static void
cco_topology(const struct q_frame *f)
{
	uint8_t		 du[Q_MAX];
	size_t		 o = 0, off = 0;
	bool		 ok = true;
	unsigned int	 start, count, k, total = plcs->n, n = 0;
	struct plc_node	*nd;

	start = q_get(f->data, f->len, &off, 2, &ok);
	count = q_get(f->data, f->len, &off, 1, &ok);
	if (!ok || off != f->len || start == 0) {
		cco_deny(DENY_FORMAT);
		return;
	}
	o = q_put(du, sizeof(du), o, total, 2);
	o = q_put(du, sizeof(du), o, start, 2);
	o = q_put(du, sizeof(du), o, 0, 1);	/* n, below */
	for (k = start; k < start + count && k <= total; k++) {
		/* Index 1: the CCO itself; k: station k - 1. */
		nd = k == 1 ? plcs->cco : station_at(k - 1);
		o = q_put_bytes(du, sizeof(du), o, nd->addr, 6);
		o = q_put(du, sizeof(du), o, plc__node_idx(nd) + 1, 2);
		o = q_put(du, sizeof(du), o, nd->cco ? 0 : (unsigned int)
		    nd->parent + 1, 2);
		o = q_put(du, sizeof(du), o, nd->level | (nd->cco ? 4 :
		    nd->nchild > 0 ? 2 : 1) << 4, 1);
		n++;
	}
	du[4] = (uint8_t)n;
	cco_answer_frame(AFN_ROUTE_QUERY, 21, false, NULL, du, o);
}

static void
cco_nodes(const struct q_frame *f)
{
	uint8_t		 du[Q_MAX];
	size_t		 o = 0, off = 0;
	bool		 ok = true;
	unsigned int	 start, count, k, n = 0;
	struct plc_node	*nd;

	start = q_get(f->data, f->len, &off, 2, &ok);
	count = q_get(f->data, f->len, &off, 1, &ok);
	if (!ok || off != f->len || start == 0) {
		cco_deny(DENY_FORMAT);
		return;
	}
	o = q_put(du, sizeof(du), o, plcs->n - 1, 2);
	o = q_put(du, sizeof(du), o, 0, 1);
	for (k = start; k < start + count && (nd = station_at(k)) != NULL;
	    k++) {
		o = q_put_bytes(du, sizeof(du), o, nd->addr, 6);
		o = q_put(du, sizeof(du), o, (nd->level - 1) | 0x5 << 4 |
		    1 << 8, 2);
		n++;
	}
	du[2] = (uint8_t)n;
	cco_answer_frame(AFN_ROUTE_QUERY, 2, false, NULL, du, o);
}

static void
cco_relays(const struct q_frame *f)
{
	uint8_t		 du[16];
	size_t		 o = 0;
	struct plc_node	*nd, *p;

	if (f->len != 6 || (nd = plc__node_by_addr(f->data)) == NULL) {
		cco_deny(f->len != 6 ? DENY_FORMAT : DENY_NOT_IN_NET);
		return;
	}
	if (nd->parent < 0 || plcs->node[nd->parent].cco) {
		o = q_put(du, sizeof(du), o, 0, 1);
	} else {
		p = &plcs->node[nd->parent];
		o = q_put(du, sizeof(du), o, 1, 1);
		o = q_put_bytes(du, sizeof(du), o, p->addr, 6);
		o = q_put(du, sizeof(du), o, (p->level - 1) | 0x5 << 4, 2);
	}
	cco_answer_frame(AFN_ROUTE_QUERY, 3, false, NULL, du, o);
}

static void
cco_route_state(void)
{
	uint8_t		 du[16];
	size_t		 o = 0;
	bool		 upg = plcs->dist != D_IDLE && plcs->dist != D_DONE;

	o = q_put(du, sizeof(du), o, 0x03, 1);
	o = q_put(du, sizeof(du), o, plcs->n - 1, 2);
	o = q_put(du, sizeof(du), o, 0, 2);
	o = q_put(du, sizeof(du), o, 0, 2);
	o = q_put(du, sizeof(du), o, (upg ? 2u : 0u) << 6, 1);
	o = q_put(du, sizeof(du), o, 0, 2);
	o = q_put_bytes(du, sizeof(du), o, "\x02\x02\x02\x08\x08\x08", 6);
	cco_answer_frame(AFN_ROUTE_QUERY, 4, false, NULL, du, o);
}

static void
cco_upg_status(const struct q_frame *f)
{
	uint8_t		 du[Q_MAX];
	size_t		 o = 0, off = 0;
	bool		 ok = true;
	unsigned int	 start, count, k, n = 0;
	struct plc_node	*nd;
	uint64_t	 held, recv;

	if (!plcs->status_ext) {
		cco_deny(DENY_UNSUPPORTED);
		return;
	}
	start = q_get(f->data, f->len, &off, 2, &ok);
	count = q_get(f->data, f->len, &off, 1, &ok);
	if (!ok || off != f->len || start == 0 || count > 16) {
		cco_deny(DENY_FORMAT);
		return;
	}
	o = q_put(du, sizeof(du), o, plcs->n - 1, 2);
	o = q_put(du, sizeof(du), o, start, 2);
	o = q_put(du, sizeof(du), o, plcs->file_id, 1);
	o = q_put(du, sizeof(du), o, plcs->file_size, 4);
	o = q_put(du, sizeof(du), o, 0, 1);
	for (k = start; k < start + count && (nd = station_at(k)) != NULL;
	    k++) {
		held = (uint64_t)nd->view.held * plcs->block;
		recv = (uint64_t)nd->view.have * plcs->block;
		if (held > plcs->file_size)
			held = plcs->file_size;
		if (recv > plcs->file_size)
			recv = plcs->file_size;
		if (recv < held)
			recv = held;
		o = q_put_bytes(du, sizeof(du), o, nd->addr, 6);
		o = q_put(du, sizeof(du), o, nd->view.state, 1);
		o = q_put(du, sizeof(du), o, (uint32_t)held, 4);
		o = q_put(du, sizeof(du), o, (uint32_t)recv, 4);
		n++;
	}
	du[9] = (uint8_t)n;
	cco_answer_frame(AFN_VENDOR, 201, false, NULL, du, o);
}

/* 15H F1: a file segment, stored after module-ms. */
static void
cco_segment(const struct q_frame *f)
{
	size_t		 off = 0;
	bool		 ok = true;
	uint32_t	 file, attr, total, idx, len;
	uint8_t		 du[4];
	uint32_t	 ack;
	uint64_t	 t;

	file = q_get(f->data, f->len, &off, 1, &ok);
	attr = q_get(f->data, f->len, &off, 1, &ok);
	(void)q_get(f->data, f->len, &off, 1, &ok);
	total = q_get(f->data, f->len, &off, 2, &ok);
	idx = q_get(f->data, f->len, &off, 4, &ok);
	len = q_get(f->data, f->len, &off, 2, &ok);
	if (!ok || f->len - off != len) {
		cco_deny(DENY_FORMAT);
		return;
	}
	plcs->segments_in++;
	ack = idx;
	if (plcs->resets > 0 && plcs->resume_seg < 0) {
		if (file == 0x00)
			plcs->resume_cleared = true;
		else
			plcs->resume_seg = (int)idx;
	}
	if (file == 0x00) {
		/* Clear: forget the file, stop distributing. */
		free(plcs->file);
		plcs->file = NULL;
		plcs->file_total = plcs->file_have = 0;
		plcs->file_done = false;
		plcs->dist = D_IDLE;
		event_del(plcs->ev_dist);
		goto answer;
	}
	if ((file != 0x07 && file != 0x08) || total == 0 || len == 0 ||
	    len > plcs->segment || idx >= total) {
		ack = SEG_ERROR;
		goto answer;
	}
	if (plcs->file == NULL || plcs->file_total != total) {
		/* A new file: segment 0 first. */
		if (idx != 0) {
			ack = SEG_ERROR;
			goto answer;
		}
		free(plcs->file);
		if ((plcs->file = calloc(total, plcs->segment)) == NULL) {
			ack = SEG_ERROR;
			goto answer;
		}
		plcs->file_id = (uint8_t)file;
		plcs->file_total = (uint16_t)total;
		plcs->file_seg = (uint16_t)len;
		plcs->file_have = 0;
		plcs->file_done = false;
	}
	if (idx > plcs->file_have ||
	    (idx + 1 < total && len != plcs->file_seg) ||
	    (idx + 1 == total && attr != 1)) {
		/* Out of order, or not the segment size: refused. */
		ack = SEG_ERROR;
		goto answer;
	}
	memcpy(plcs->file + (size_t)idx * plcs->file_seg, f->data + off, len);
	if (idx == plcs->file_have)
		plcs->file_have++;
	if (plcs->file_have == total && !plcs->file_done) {
		plcs->file_done = true;
		plcs->file_gen++;
		plcs->file_size = (uint32_t)(total - 1) * plcs->file_seg + len;
		plcs->t_file_ns = sim_now(plcs->sim);
		sim_debug(plcs->sim, "plc: the module holds a file of %u bytes",
		    plcs->file_size);
		plcs->dist = D_START;
		plcs->starts = 0;
		plc__dist_kick(sim_now(plcs->sim) + plcs->module_ns);
	}
answer:
	(void)q_put(du, sizeof(du), 0, ack, 4);
	t = cco_answer_frame(AFN_FILE, 1, false, NULL, du, 4);
	/* Hop 1's time: segment 0's request to the last one's answer. */
	if (file != 0x00 && ack == 0)
		plcs->seg0_ns = plcs->req_t0;
	if (file != 0x00 && ack != SEG_ERROR && ack + 1 == total)
		plcs->segn_ns = t;
	if (file != 0x00 && ack != SEG_ERROR) {
		plcs->ack_idx = (int)ack;
		plcs->ack_ns = t;
	} else if (file == 0x00)
		plcs->ack_idx = -1;
}

/* The request's processing time is over: serve it. */
static void
cco_serve(void)
{
	struct q_frame	 f;
	struct plc_node	*st;
	const char	*why;
	uint8_t		 du[Q_MAX], b[M_HDR + 255];
	size_t		 dulen, off = 0, mlen;
	bool		 ok = true;

	if (q_decode(plcs->req_frame, plcs->req_len, &f, &why) != 0) {
		cco_req_done();
		return;
	}
	switch (f.afn << 8 | (f.fn & 0xff)) {
	case AFN_QUERY << 8 | 10:
		dulen = plc__cco_run_mode(du, sizeof(du));
		cco_answer_frame(AFN_QUERY, 10, false, NULL, du, dulen);
		return;
	case AFN_ROUTE_QUERY << 8 | 21:
		if (!plcs->f21) {
			cco_deny(DENY_UNSUPPORTED);
			return;
		}
		cco_topology(&f);
		return;
	case AFN_ROUTE_QUERY << 8 | 2:
		cco_nodes(&f);
		return;
	case AFN_ROUTE_QUERY << 8 | 3:
		cco_relays(&f);
		return;
	case AFN_ROUTE_QUERY << 8 | 4:
		cco_route_state();
		return;
	case AFN_VENDOR << 8 | 201:
		cco_upg_status(&f);
		return;
	case AFN_FILE << 8 | 1:
		cco_segment(&f);
		return;
	case AFN_ROUTE_FWD << 8 | 1:
		/* protocol, delay flag, attached n (0), length, message */
		(void)q_get(f.data, f.len, &off, 2, &ok);
		if (q_get(f.data, f.len, &off, 1, &ok) != 0 || !ok) {
			cco_deny(DENY_FORMAT);
			return;
		}
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		if (!ok || f.len - off != mlen || !f.addressed) {
			cco_deny(DENY_FORMAT);
			return;
		}
		if ((st = plc__node_by_addr(f.dst)) == NULL) {
			cco_deny(DENY_NOT_IN_NET);
			return;
		}
		plcs->req = R_FWD;
		plcs->req_station = (int)plc__node_idx(st);
		plcs->req_id = ++plcs->ids;
		plc__msg_build(b, M_FWD, st->addr, plcs->cco->addr,
		    plcs->req_id);
		memcpy(b + M_HDR, f.data + off, mlen);
		plc__msg_route(plcs->cco, b, M_HDR + mlen);
		/* The station's answer, or a deny after the monitoring
		 * time. */
		sim_timer_at(plcs->sim, plcs->ev_req, sim_now(plcs->sim) +
		    (uint64_t)plcs->monitor_s * SIM_NS_PER_S);
		return;
	case AFN_CONTROL << 8 | 3:
		/* control word, length, message */
		(void)q_get(f.data, f.len, &off, 1, &ok);
		mlen = q_get(f.data, f.len, &off, 1, &ok);
		if (!ok || f.len - off != mlen) {
			cco_deny(DENY_FORMAT);
			return;
		}
		plcs->req = R_BCAST;
		plcs->req_id = ++plcs->ids;
		plc__msg_build(b, M_BCAST, plc__all_stations, plcs->cco->addr,
		    plcs->req_id);
		memcpy(b + M_HDR, f.data + off, mlen);
		plc__msg_route(plcs->cco, b, M_HDR + mlen);
		/* Confirmed when the module's frame has left the medium
		 * (mac_complete); at the latest after the broadcast time. */
		sim_timer_at(plcs->sim, plcs->ev_req, sim_now(plcs->sim) +
		    (uint64_t)plcs->broadcast_s * SIM_NS_PER_S);
		return;
	}
	cco_deny(DENY_NO_INFO);
}

void
plc__cco_req_cb(evutil_socket_t fd, short what, void *arg)
{
	switch (plcs->req) {
	case R_IDLE:
		return;
	case R_PROC:
		cco_serve();
		return;
	case R_FWD:
		/* The monitoring time passed without the station. */
		cco_deny(DENY_NODE_SILENT);
		return;
	case R_BCAST:
		cco_confirm(0);
		return;
	}
}

/* A frame from the concentrator. */
void
plc__cco_frame(const uint8_t *p, size_t len, uint64_t t_end)
{
	struct q_frame	 f;
	const char	*why;

	if (plcs->booting)
		return;
	if (q_decode(p, len, &f, &why) != 0) {
		sim_debug(plcs->sim, "plc: gw: frame dropped: %s", why);
		return;
	}
	if (f.c & Q_DIR_UP)
		return;		/* not for a module */
	if (!(f.c & Q_PRM)) {
		/* The concentrator's confirm of our report. */
		if (plcs->rep_out && Q_SEQ(&f) == plcs->rep_seq) {
			plcs->rep_out = false;
			event_del(plcs->ev_rep);
			plcs->rep_head = (plcs->rep_head + 1) % 64;
			plcs->rep_len--;
			plcs->rep_tries = 0;
			cco_report_pump();
		}
		return;
	}
	plcs->requests++;
	if (plcs->req != R_IDLE) {
		/* A repeat of the request being served: it is. */
		if (Q_SEQ(&f) == plcs->req_seq)
			return;
		/* Another one at once: the module is busy. */
		sim_debug(plcs->sim, "plc: gw: AFN %02X F%u seq %u while "
		    "serving seq %u: busy", f.afn, f.fn, Q_SEQ(&f),
		    plcs->req_seq);
		plc__line_frame(plcs->cco, Q_DIR_UP | Q_COMM_HPLC, Q_SEQ(&f),
		    false, NULL, NULL, AFN_ACK, 2, (const uint8_t *)"\x09", 1);
		plcs->denied++;
		return;
	}
	plcs->req = R_PROC;
	plcs->req_seq = Q_SEQ(&f);
	plcs->req_station = -1;
	memcpy(plcs->req_frame, p, len);
	plcs->req_len = len;
	/* Its characters came back to back at the line's rate. */
	plcs->req_t0 = t_end - len * sim_fmt_char_ns(&plcs->cco->ep->fmt);
	sim_timer_at(plcs->sim, plcs->ev_req, t_end + (f.afn == AFN_FILE ?
	    plcs->module_ns : plcs->answer_ns));
}

/* A station's answer to a 13H F1 came up. */
void
plc__cco_fwd_reply(const uint8_t *b, size_t len)
{
	size_t		 off = 15;
	bool		 ok = true;
	uint32_t	 id;
	uint8_t		 du[4 + 255];
	size_t		 o = 0;
	struct plc_node	*st;

	id = q_get(b, len, &off, 4, &ok);
	if (!ok || len < M_HDR + 1 || plcs->req != R_FWD || id != plcs->req_id)
		return;		/* late: the request was answered */
	st = &plcs->node[plcs->req_station];
	if (b[M_HDR] == 0) {
		cco_deny(DENY_METER_SILENT);
		return;
	}
	o = q_put(du, sizeof(du), o, 1, 2);
	o = q_put(du, sizeof(du), o, 0, 1);
	o = q_put(du, sizeof(du), o, len - M_HDR - 1, 1);
	o = q_put_bytes(du, sizeof(du), o, b + M_HDR + 1, len - M_HDR - 1);
	cco_answer_frame(AFN_ROUTE_FWD, 1, true, st->addr, du, o);
}

/* Reports to the concentrator: one at a time until confirmed. */
void
plc__cco_report(const uint8_t addr[6], bool run_mode, const uint8_t *b,
    size_t len)
{
	unsigned int	 k;

	if (plcs->rep_len == 64 || len > 255) {
		plcs->reports_lost++;
		return;
	}
	k = (plcs->rep_head + plcs->rep_len) % 64;
	if (addr != NULL)
		memcpy(plcs->rep[k].addr, addr, 6);
	plcs->rep[k].run_mode = run_mode;
	plcs->rep[k].len = (uint8_t)len;
	if (len > 0)
		memcpy(plcs->rep[k].b, b, len);
	plcs->rep_len++;
	plcs->rep_tries = 0;
	cco_report_pump();
}

static void
cco_report_send(void)
{
	uint8_t		 du[Q_MAX];
	size_t		 o = 0;
	unsigned int	 k = plcs->rep_head;

	plcs->rep_seq = ++plcs->cco->seq;
	plcs->rep_out = true;
	plcs->reports++;
	if (plcs->rep[k].run_mode) {
		o = plc__cco_run_mode(du, sizeof(du));
		plc__line_frame(plcs->cco, Q_DIR_UP | Q_PRM | Q_COMM_HPLC,
		    plcs->rep_seq, false, NULL, NULL, AFN_QUERY, 10, du, o);
	} else {
		o = q_put(du, sizeof(du), o, 1, 1);	/* a meter */
		o = q_put(du, sizeof(du), o, 0, 1);	/* transparent */
		o = q_put(du, sizeof(du), o, plcs->rep[k].len, 1);
		o = q_put_bytes(du, sizeof(du), o, plcs->rep[k].b,
		    plcs->rep[k].len);
		plc__line_frame(plcs->cco, Q_DIR_UP | Q_PRM | Q_COMM_HPLC,
		    plcs->rep_seq, true, plcs->rep[k].addr, plcs->cco->addr,
		    AFN_REPORT, 5, du, o);
	}
	sim_timer_at(plcs->sim, plcs->ev_rep, sim_now(plcs->sim) +
	    SIM_NS_PER_S);
}

static void
cco_report_pump(void)
{
	if (plcs->rep_out || plcs->rep_len == 0 || plcs->booting)
		return;
	cco_report_send();
}

void
plc__cco_report_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!plcs->rep_out)
		return;
	if (++plcs->rep_tries > 2) {
		/* Never confirmed: given up. */
		plcs->reports_lost++;
		plcs->rep_out = false;
		plcs->rep_head = (plcs->rep_head + 1) % 64;
		plcs->rep_len--;
		plcs->rep_tries = 0;
		cco_report_pump();
		return;
	}
	cco_report_send();
}

void
plc__cco_boot_cb(evutil_socket_t fd, short what, void *arg)
{
	plcs->booting = false;
	plc__cco_report(NULL, true, NULL, 0);
	if (plcs->file_done && plcs->dist != D_IDLE) {
		/* The file is in flash: distribute it again. */
		plcs->dist = D_START;
		plcs->starts = 0;
		plc__dist_kick(sim_now(plcs->sim));
	}
}

/* ------------------------------------------------------------------ */
/* The distribution                                                     */

void
plc__dist_kick(uint64_t at)
{
	sim_timer_at(plcs->sim, plcs->ev_dist, at);
}

static bool
dist_all_done(void)
{
	unsigned int	 i;

	for (i = 0; i < plcs->n; i++)
		if (!plcs->node[i].cco &&
		    plcs->node[i].view.state != UPG_DONE &&
		    plcs->node[i].view.state != UPG_FAILED)
			return (false);
	return (true);
}

/* The blocks some station has not reported holding. */
static uint32_t
dist_plan_round(void)
{
	uint32_t	 b, n = 0;
	unsigned int	 i, k;
	struct plc_view	*v;

	memset(plcs->need, 0, (plcs->nblocks + 7) / 8);
	for (i = 0; i < plcs->n; i++) {
		v = &plcs->node[i].view;
		if (plcs->node[i].cco || v->state == UPG_DONE ||
		    v->state == UPG_FAILED)
			continue;
		if (plcs->round == 0 || !v->answered) {
			/* Nothing known: everything. */
			memset(plcs->need, 0xff, (plcs->nblocks + 7) / 8);
			return (plcs->nblocks);
		}
		for (k = 0; k < v->nmissing; k++)
			if (v->missing[k] < plcs->nblocks)
				plc__bit_set(plcs->need, v->missing[k]);
		/* Past the listed ones, whatever it may lack. */
		if (v->have < plcs->nblocks && v->nmissing == M_MISSING_MAX)
			for (b = v->missing[M_MISSING_MAX - 1]; b <
			    plcs->nblocks; b++)
				plc__bit_set(plcs->need, b);
	}
	for (b = 0; b < plcs->nblocks; b++)
		if (plc__bit_get(plcs->need, b))
			n++;
	return (n);
}

static void
dist_block(struct plc_node *to, uint32_t b)
{
	uint8_t		 m[M_HDR + 12 + 4096];
	uint32_t	 len = plcs->block;

	if ((uint64_t)b * plcs->block + len > plcs->file_size)
		len = plcs->file_size - b * plcs->block;
	plc__msg_build(m, M_BLOCK, to != NULL ? to->addr : plc__all_stations,
	    plcs->cco->addr, ++plcs->ids);
	/* The file's size and block size too: a station that missed the
	 * start notice still knows where the block goes. */
	(void)q_put(m, sizeof(m), M_HDR, b, 4);
	(void)q_put(m, sizeof(m), M_HDR + 4, plcs->file_gen, 2);
	(void)q_put(m, sizeof(m), M_HDR + 6, plcs->file_size, 4);
	(void)q_put(m, sizeof(m), M_HDR + 10, plcs->block, 2);
	memcpy(m + M_HDR + 12, plcs->file + (size_t)b * plcs->block, len);
	plc__msg_route(plcs->cco, m, M_HDR + 12 + len);
	if (to == NULL)
		plcs->blocks_bc++;
	else
		plcs->blocks_uc++;
}

static void
dist_query(struct plc_node *st)
{
	uint8_t		 m[M_HDR];

	plcs->qid = ++plcs->ids;
	plc__msg_build(m, M_QUERY, st->addr, plcs->cco->addr, plcs->qid);
	plc__msg_route(plcs->cco, m, M_HDR);
	plcs->queries++;
}

/* The next station (from index i) the status round should ask. */
static int
dist_next_station(unsigned int i)
{
	for (; i < plcs->n; i++)
		if (!plcs->node[i].cco &&
		    plcs->node[i].view.state != UPG_DONE &&
		    plcs->node[i].view.state != UPG_FAILED)
			return ((int)i);
	return (-1);
}

static void
dist_finish(void)
{
	plcs->dist = D_DONE;
	plcs->t_done_ns = sim_now(plcs->sim);
	sim_debug(plcs->sim,
	    "plc: distribution over in %.1f s: %llu blocks "
	    "broadcast, %llu unicast, %llu queries",
	    (double)(plcs->t_done_ns - plcs->t_file_ns) / 1e9,
	    (unsigned long long)plcs->blocks_bc,
	    (unsigned long long)plcs->blocks_uc,
	    (unsigned long long)plcs->queries);
}

void
plc__dist_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	 now = sim_now(plcs->sim);
	uint8_t		 m[M_HDR + 8];
	struct plc_node	*st;
	int		 i;

	switch (plcs->dist) {
	case D_IDLE:
	case D_DONE:
		return;
	case D_START:
		if (plcs->starts == 0) {
			plcs->nblocks =
			    (plcs->file_size + plcs->block - 1) / plcs->block;
			free(plcs->need);
			plcs->need = calloc(1, (plcs->nblocks + 7) / 8);
			plcs->round = 0;
			for (i = 0; i < (int)plcs->n; i++)
				if (!plcs->node[i].cco) {
					memset(&plcs->node[i].view, 0,
					    sizeof(plcs->node[i].view));
					plcs->node[i].view.state =
					    UPG_RECEIVING;
				}
		}
		plc__msg_build(m, M_START, plc__all_stations, plcs->cco->addr,
		    ++plcs->ids);
		(void)q_put(m, sizeof(m), M_HDR, plcs->file_gen, 2);
		(void)q_put(m, sizeof(m), M_HDR + 2, plcs->file_size, 4);
		(void)q_put(m, sizeof(m), M_HDR + 6, plcs->block, 2);
		plc__msg_route(plcs->cco, m, M_HDR + 8);
		if (++plcs->starts < 2) {
			plc__dist_kick(now + plcs->pace_ns);
			return;
		}
		plcs->dist = D_ROUND;
		(void)dist_plan_round();
		plcs->next_block = 0;
		plc__dist_kick(now + plcs->pace_ns);
		return;
	case D_ROUND:
		/* One block per pace, and never faster than the medium. */
		if (plcs->mac.head != NULL) {
			plc__dist_kick(now + plcs->pace_ns / 4);
			return;
		}
		while (plcs->next_block < plcs->nblocks &&
		    !plc__bit_get(plcs->need, plcs->next_block))
			plcs->next_block++;
		if (plcs->next_block < plcs->nblocks) {
			dist_block(NULL, plcs->next_block++);
			plc__dist_kick(now + plcs->pace_ns);
			return;
		}
		/* The round is over: ask every station. */
		plcs->round++;
		plcs->dist = D_STATUS;
		for (i = 0; i < (int)plcs->n; i++) {
			plcs->node[i].view.answered = false;
			plcs->node[i].view.asked = false;
		}
		plcs->qidx = 0;
		/* FALLTHROUGH */
	case D_STATUS:
		/* One station at a time: its answer, or query-ms. */
		if ((i = dist_next_station(plcs->qidx)) >= 0) {
			st = &plcs->node[i];
			if (!st->view.asked) {
				st->view.asked = true;
				dist_query(st);
				plc__dist_kick(now + plcs->query_ns);
				return;
			}
			plcs->qidx = (unsigned int)i + 1;
			plc__dist_kick(now);
			return;
		}
		if (dist_all_done()) {
			dist_finish();
			return;
		}
		if (plcs->round < plcs->rounds && dist_plan_round() > 0) {
			plcs->dist = D_ROUND;
			plcs->next_block = 0;
			plc__dist_kick(now + plcs->pace_ns);
			return;
		}
		/* Stragglers: unicast repair, one at a time. */
		plcs->dist = D_REPAIR;
		plcs->ridx = 0;
		plcs->rblk = 0;
		for (i = 0; i < (int)plcs->n; i++)
			plcs->node[i].view.asked = false;
		/* FALLTHROUGH */
	case D_REPAIR:
		if (plcs->mac.head != NULL) {
			plc__dist_kick(now + plcs->pace_ns / 4);
			return;
		}
		if ((i = dist_next_station(plcs->ridx)) < 0) {
			if (dist_all_done()) {
				dist_finish();
				return;
			}
			plcs->ridx = 0;	/* another pass */
			plc__dist_kick(now + plcs->pace_ns);
			return;
		}
		st = &plcs->node[i];
		if (!st->view.answered) {
			if (!st->view.asked) {
				st->view.asked = true;
				dist_query(st);
				plc__dist_kick(now + plcs->query_ns);
				return;
			}
			/* No answer in time: a pass without progress. */
			st->view.asked = false;
			if (++st->view.tries > plcs->repair_rounds) {
				st->view.state = UPG_FAILED;
				sim_debug(plcs->sim, "plc: %s silent: given up",
				    st->ep->name);
			}
			plcs->ridx = (unsigned int)i + 1;
			plcs->rblk = 0;
			plc__dist_kick(now + plcs->pace_ns);
			return;
		}
		if (plcs->rblk < st->view.nmissing) {
			dist_block(st, st->view.missing[plcs->rblk++]);
			plc__dist_kick(now + plcs->pace_ns);
			return;
		}
		/* Its listed blocks went out (or it lacked none): ask it
		 * again on the next pass. */
		st->view.answered = false;
		st->view.asked = false;
		plcs->ridx = (unsigned int)i + 1;
		plcs->rblk = 0;
		plc__dist_kick(now + plcs->pace_ns);
		return;
	}
}

/* A station's status came up. */
void
plc__cco_qreply(struct plc_node *st, const uint8_t *b, size_t len)
{
	struct plc_view	*v = &st->view;
	size_t		 off = M_HDR;
	bool		 ok = true;
	uint32_t	 have, dev, held;
	unsigned int	 n, k;

	have = q_get(b, len, &off, 4, &ok);
	dev = q_get(b, len, &off, 4, &ok);
	held = q_get(b, len, &off, 4, &ok);
	n = q_get(b, len, &off, 1, &ok);
	if (!ok || n > M_MISSING_MAX || v->state == UPG_FAILED ||
	    v->state == UPG_DONE)
		return;
	/* A repair pass without progress counts against the station. */
	if (plcs->dist == D_REPAIR && have <= v->have && dev <= v->dev)
		v->tries++;
	else if (have > v->have || dev > v->dev)
		v->tries = 0;
	v->have = have;
	v->dev = dev;
	v->held = held;
	v->nmissing = (uint8_t)n;
	for (k = 0; k < n; k++)
		v->missing[k] = q_get(b, len, &off, 4, &ok);
	v->answered = true;
	if (plcs->nblocks > 0 && dev >= plcs->nblocks && held >= plcs->nblocks)
		v->state = UPG_DONE;
	else if (v->tries > plcs->repair_rounds) {
		v->state = UPG_FAILED;
		sim_debug(plcs->sim, "plc: %s given up after %u repair rounds",
		    st->ep->name, plcs->repair_rounds);
	}
	/* It answered: no need to wait out the query time. */
	if ((plcs->dist == D_STATUS || plcs->dist == D_REPAIR) && v->asked)
		plc__dist_kick(sim_now(plcs->sim) + plcs->pace_ns / 4);
}

