/*
 * plc_offload.c: module offload, the package handed to the carrier module
 * by file transfer (AFN 15H F1) for it to distribute to its stations
 * itself (docs/transports/plc.md, "Module offload").
 *
 * The transfer (Q/GDW 1376.2-2013, AFN 15H F1 "file transfer mode 1"):
 *  1. clear: file id 00H clears what the module downloaded before;
 *  2. segments 0 .. n-1 of the module's declared size (03H F10), stop and
 *     wait: each carries the file id (08H: every station; 07H: the module
 *     too), the attribute (01H on the last), the command (00H: download
 *     by messages), the total n, its index i and its length; the module
 *     answers with the index it received.  An answer naming another
 *     segment is not an answer to this one and is dropped (the request
 *     times out and goes again); the error index FFFFH means the module
 *     has no usable file (it lost it, or refused a segment out of order):
 *     the transfer starts over from the clear, at most three times;
 *  3. after a module reset (it reports its run mode, or it stops
 *     answering and comes back) the transfer resumes at the first
 *     segment not acknowledged: resume by segment id.  A module that kept
 *     its file in flash takes it; one that did not answers FFFFH, and the
 *     transfer starts over;
 *  4. distribution: the module sends the file to its stations by its own
 *     means (research/transports.md §4.2: a paced broadcast carousel,
 *     status queries, unicast repair per straggler).  1376.2-2013 has no
 *     frame for per-station progress; this transport asks for it with a
 *     vendor extension in the standard's internal AFN (F0H F201, the
 *     layout is in docs/transports/plc.md), every status_interval_s, and
 *     reports each target's state and bytes to the engine.  A module that
 *     refuses F0H F201 is followed with the route run state (10H F4) only:
 *     the engine then learns per station through UP (VERIFY).  Targets not
 *     done by the deadline (the module's upgrade wait time, or
 *     offload_timeout_s, after the last segment) are given up.
 *
 * The segments are read from the engine (host->offload_read) one at a
 * time into one buffer allocated at open.
 */
#include <string.h>

#include "up.h"
#include "transports_internal.h"
#include "plc_internal.h"

/* Starts over from segment 0 after a file error, at most. */
#define PLC_OFF_RESTARTS	3
/* Deadline when neither the module nor the instance gives one. */
#define PLC_OFF_DEADLINE_MS	(600 * 1000)

static void	 plc_off_report(struct tp *, struct plc_peer *, uint8_t,
		    uint64_t);
static void	 plc_off_fail_all(struct tp *, const char *);

static const char *
plc_off_state_str(uint8_t s)
{
	static const char *const names[] = { "queued", "receiving", "done",
	    "failed" };

	return (s < 4 ? names[s] : "?");
}

int
plc_off_start(struct tp *tp, const struct tp_offload *o, char **cause)
{
	struct plc_offload *off = &tp->off;
	struct plc_peer	*p;
	uint32_t	 seg = tp_plc__segment(tp);
	uint64_t	 nseg;
	size_t		 i;

	if (off->phase != PLC_OFF_NONE && off->phase != PLC_OFF_DONE)
		return (tp__cause(cause, "%s: offload %u is running", tp->name,
		    off->id));
	if (!tp->link_up)
		return (tp__cause(cause, "%s: the module is not ready",
		    tp->name));
	if (seg == 0)
		return (tp__cause(cause, "%s: the module declares no file "
		    "segment size", tp->name));
	nseg = (o->size + seg - 1) / seg;
	if (o->size == 0 || nseg > 0xffff)
		return (tp__cause(cause, "%s: %llu bytes do not fit a file "
		    "transfer of at most 65535 segments of %u bytes", tp->name,
		    (unsigned long long)o->size, seg));

	memset(off, 0, sizeof(*off));
	off->id = o->id;
	off->size = o->size;
	if (o->sha256 != NULL)
		memcpy(off->sha256, o->sha256, sizeof(off->sha256));
	off->file = tp->offload_file;
	off->seg = (uint16_t)seg;
	off->nseg = (uint32_t)nseg;
	off->all = o->npeers == 0;
	off->t_start_ms = plc_now_ms(tp);
	for (i = 0; i < tp->npeers; i++) {
		tp->peers[i].off_target = off->all && tp->peers[i].seen;
		tp->peers[i].off_state = 0;
		tp->peers[i].off_bytes = 0;
	}
	for (i = 0; i < o->npeers; i++) {
		if (o->peers[i].len != PLC_ADDR_LEN)
			continue;
		if ((p = plc_topo_peer(tp, o->peers[i].b, true)) != NULL)
			p->off_target = true;
	}
	for (i = 0; i < tp->npeers; i++)
		if (tp->peers[i].off_target)
			off->ntargets++;
	off->pending = off->ntargets;
	off->phase = PLC_OFF_CLEAR;
	tp_plc__log(tp, UP_LOG_INFO,
	    "offload %u: %llu bytes in %u segments of %u "
	    "to %s (%u stations)",
	    off->id, (unsigned long long)off->size, off->nseg, off->seg,
	    off->all ? "every station"
		     : "the listed "
		       "stations",
	    off->ntargets);
	plc_link_kick(tp);
	return (0);
}

void
plc_off_cancel(struct tp *tp, uint32_t id)
{
	struct plc_offload *off = &tp->off;

	if (off->id != id || off->phase == PLC_OFF_NONE ||
	    off->phase == PLC_OFF_CANCEL)
		return;
	tp_plc__log(tp, UP_LOG_INFO, "offload %u cancelled", id);
	/* Clear the module's file so that it stops distributing. */
	off->phase = off->phase == PLC_OFF_DONE ? PLC_OFF_NONE :
	    PLC_OFF_CANCEL;
	plc_link_kick(tp);
}

bool
plc_off_pump(struct tp *tp)
{
	struct plc_offload *off = &tp->off;
	struct plc_segment s;
	struct plc_wr	 w;
	uint8_t		 du[8];
	uint64_t	 at;
	int		 r;

	switch (off->phase) {
	case PLC_OFF_NONE:
	case PLC_OFF_DONE:
		return (false);
	case PLC_OFF_CLEAR:
	case PLC_OFF_CANCEL:
		memset(&s, 0, sizeof(s));
		s.file = PLC_FILE_CLEAR;
		plc_wr_init(&w, tp->segbuf, PLC_FRAME_MAX);
		(void)plc_du_segment(&w, &s);
		return (plc_link_request(tp, PLC_REQ_CLEAR, PLC_AFN_FILE,
		    PLC_FN_FILE, NULL, tp->segbuf, w.len, tp->timeout_ms, 0,
		    0) == 0);
	case PLC_OFF_SEND:
		at = (uint64_t)off->next * off->seg;
		memset(&s, 0, sizeof(s));
		s.file = off->file;
		s.attr = off->next + 1 == off->nseg ? PLC_ATTR_LAST :
		    PLC_ATTR_MIDDLE;
		s.cmd = PLC_CMD_MESSAGE;
		s.total = (uint16_t)off->nseg;
		s.index = off->next;
		s.len = (uint16_t)(off->size - at < off->seg ? off->size - at :
		    off->seg);
		/* The data into the buffer's second half, the data unit
		 * into its first. */
		s.data = tp->segbuf + PLC_FRAME_MAX;
		if (tp->host->offload_read == NULL ||
		    tp->host->offload_read(tp->host->arg, tp, off->id, at,
		    tp->segbuf + PLC_FRAME_MAX, s.len) != 0) {
			plc_off_fail_all(tp, "the package could not be read");
			return (false);
		}
		plc_wr_init(&w, tp->segbuf, PLC_FRAME_MAX);
		(void)plc_du_segment(&w, &s);
		r = plc_link_request(tp, PLC_REQ_SEGMENT, PLC_AFN_FILE,
		    PLC_FN_FILE, NULL, tp->segbuf, w.len, tp->timeout_ms,
		    off->next, 0);
		return (r == 0);
	case PLC_OFF_DISTRIBUTE:
		if (plc_now_ms(tp) < off->next_poll_ms)
			return (false);
		plc_wr_init(&w, du, sizeof(du));
		if (off->no_status)
			return (plc_link_request(tp, PLC_REQ_ROUTE_STATE,
			    PLC_AFN_ROUTE_QUERY, PLC_FN_ROUTE_STATE, NULL, NULL,
			    0, tp->timeout_ms, 0, 0) == 0);
		if (off->poll_start == 0)
			off->poll_start = 1;
		(void)plc_du_page(&w, off->poll_start, PLC_UPG_PAGE_MAX);
		return (plc_link_request(tp, PLC_REQ_UPG_STATUS,
		    PLC_AFN_VENDOR, PLC_FN_UPG_STATUS, NULL, du, w.len,
		    tp->timeout_ms, off->poll_start, 0) == 0);
	}
	return (false);
}

/* The last segment is acknowledged: the module distributes now. */
static void
plc_off_sent(struct tp *tp)
{
	struct plc_offload *off = &tp->off;
	uint64_t	 now = plc_now_ms(tp), wait;

	off->phase = PLC_OFF_DISTRIBUTE;
	off->t_sent_ms = now;
	off->next_poll_ms = now + tp->status_ms;
	off->poll_start = 1;
	wait = tp->offload_timeout_ms != 0 ? tp->offload_timeout_ms :
	    (uint64_t)tp->mode.upgrade_wait * 60 * 1000;
	off->deadline_ms = now + (wait != 0 ? wait : PLC_OFF_DEADLINE_MS);
	tp_plc__log(tp, UP_LOG_INFO, "offload %u: the module has the file (%u "
	    "segments in %llu ms, %u resumed, %u restarts); it distributes",
	    off->id, off->nseg, (unsigned long long)(now - off->t_start_ms),
	    off->resumes, off->restarts);
	if (tp->host->offload_progress != NULL)
		tp->host->offload_progress(tp->host->arg, tp, off->id, NULL,
		    TP_OFF_DONE, off->size);
	if (off->ntargets == 0 && !off->all)
		off->phase = PLC_OFF_DONE;
}

static void
plc_off_file_error(struct tp *tp, const char *why)
{
	struct plc_offload *off = &tp->off;

	if (++off->restarts > PLC_OFF_RESTARTS) {
		plc_off_fail_all(tp, why);
		return;
	}
	tp_plc__log(tp, UP_LOG_INFO, "offload %u: %s at segment %u: starting "
	    "over (%u)", off->id, why, off->next, off->restarts);
	off->phase = PLC_OFF_CLEAR;
	off->next = 0;
}

/* One status page: each entry to the engine. */
static void
plc_off_status(struct tp *tp, const struct plc_frame *f)
{
	struct plc_offload *off = &tp->off;
	struct plc_upg_page pg;
	struct plc_peer	*p;
	char		 s[PLC_ADDR_TEXT];
	unsigned int	 i;
	int		 e;

	tp->req.kind = PLC_REQ_NONE;
	if ((e = plc_du_upg_status_dec(f->data, f->len, &pg)) != PLC_OK ||
	    pg.start != off->poll_start) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_INFO, "upgrade status dropped: %s",
		    e != PLC_OK ? plc_strerror(e) : "another page");
		off->next_poll_ms = plc_now_ms(tp) + tp->status_ms;
		off->poll_start = 1;
		return;
	}
	if (pg.size != 0 && pg.size != off->size) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_INFO,
		    "upgrade status of a file of %u bytes "
		    "(ours has %llu) dropped",
		    pg.size, (unsigned long long)off->size);
		off->next_poll_ms = plc_now_ms(tp) + tp->status_ms;
		return;
	}
	for (i = 0; i < pg.n && !tp->dead; i++) {
		p = plc_topo_peer(tp, pg.st[i].addr, false);
		if (p != NULL && off->all && !p->off_target) {
			p->off_target = true;
			off->ntargets++;
			off->pending++;
		}
		/*
		 * A station the module knows but the engine did not list:
		 * 08H goes to every station, so the module reports them
		 * all; not ours to report, and no bad input.
		 */
		if (p != NULL && !p->off_target)
			continue;
		if (p == NULL) {
			plc_addr_fmt(pg.st[i].addr, s, sizeof(s));
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "upgrade status for unknown "
			    "station %s dropped",
			    s);
			continue;
		}
		plc_off_report(tp, p, pg.st[i].state, pg.st[i].held);
	}
	if (tp->dead || off->phase != PLC_OFF_DISTRIBUTE)
		return;
	if (pg.n == 0 || (uint32_t)off->poll_start + pg.n > pg.total) {
		/* A round over every station is done. */
		off->poll_start = 1;
		off->next_poll_ms = plc_now_ms(tp) + tp->status_ms;
		if (off->pending == 0) {
			off->phase = PLC_OFF_DONE;
			tp_plc__log(tp, UP_LOG_INFO,
			    "offload %u: every station "
			    "done or given up by the module (%llu ms)",
			    off->id,
			    (unsigned long long)(plc_now_ms(tp) -
				off->t_start_ms));
		}
	} else
		off->poll_start = (uint16_t)(off->poll_start + pg.n);
}

/* A target's state from the module (PLC_UPG_*), to the engine. */
static void
plc_off_report(struct tp *tp, struct plc_peer *p, uint8_t upg,
    uint64_t held)
{
	struct plc_offload *off = &tp->off;
	struct tp_addr	 a;
	enum tp_offload_state st;
	char		 s[PLC_ADDR_TEXT];
	bool		 was_final;

	switch (upg) {
	case PLC_UPG_RECEIVING:
		st = TP_OFF_RECEIVING;
		break;
	case PLC_UPG_DONE:
		st = TP_OFF_DONE;
		held = off->size;
		break;
	case PLC_UPG_FAILED:
		st = TP_OFF_FAILED;
		break;
	default:
		st = TP_OFF_QUEUED;
		break;
	}
	if (held > off->size)
		held = off->size;
	if (p->off_state == (uint8_t)st + 1 && p->off_bytes == held)
		return;
	was_final = p->off_state == TP_OFF_DONE + 1 ||
	    p->off_state == TP_OFF_FAILED + 1;
	if (was_final && st != TP_OFF_DONE && st != TP_OFF_FAILED)
		off->pending++;		/* restarted by the module */
	else if (!was_final && (st == TP_OFF_DONE || st == TP_OFF_FAILED))
		off->pending--;
	p->off_state = (uint8_t)st + 1;
	p->off_bytes = held;
	if (st == TP_OFF_DONE || st == TP_OFF_FAILED) {
		plc_addr_fmt(p->addr, s, sizeof(s));
		tp_plc__log(tp, UP_LOG_INFO, "offload %u: station %s %s",
		    off->id, s, plc_off_state_str((uint8_t)st));
	}
	memset(&a, 0, sizeof(a));
	a.len = PLC_ADDR_LEN;
	memcpy(a.b, p->addr, PLC_ADDR_LEN);
	if (tp->host->offload_progress != NULL)
		tp->host->offload_progress(tp->host->arg, tp, off->id, &a, st,
		    held);
}

/* The offload cannot go on: every target not done is given up. */
static void
plc_off_fail_all(struct tp *tp, const char *why)
{
	struct plc_offload *off = &tp->off;
	size_t		 i;

	tp_plc__log(tp, UP_LOG_WARN, "offload %u failed: %s", off->id, why);
	off->phase = PLC_OFF_DONE;
	for (i = 0; i < tp->npeers && !tp->dead; i++)
		if (tp->peers[i].off_target &&
		    tp->peers[i].off_state != TP_OFF_DONE + 1 &&
		    tp->peers[i].off_state != TP_OFF_FAILED + 1)
			plc_off_report(tp, &tp->peers[i], PLC_UPG_FAILED,
			    tp->peers[i].off_bytes);
}

void
plc_off_answer(struct tp *tp, const struct plc_frame *f)
{
	struct plc_offload *off = &tp->off;
	struct plc_route_state rs;
	uint32_t	 index;
	int		 e;

	switch (tp->req.kind) {
	case PLC_REQ_UPG_STATUS:
		if (f->afn != PLC_AFN_VENDOR || f->fn != PLC_FN_UPG_STATUS)
			break;
		if (off->phase != PLC_OFF_DISTRIBUTE) {
			tp->req.kind = PLC_REQ_NONE;
			return;
		}
		plc_off_status(tp, f);
		return;
	case PLC_REQ_ROUTE_STATE:
		if (f->afn != PLC_AFN_ROUTE_QUERY ||
		    f->fn != PLC_FN_ROUTE_STATE)
			break;
		tp->req.kind = PLC_REQ_NONE;
		if ((e = plc_du_route_state_dec(f->data, f->len, &rs)) !=
		    PLC_OK) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO, "route state dropped: %s",
			    plc_strerror(e));
		} else if (off->phase == PLC_OFF_DISTRIBUTE &&
		    rs.work != PLC_WORK_UPGRADE) {
			tp_plc__log(tp, UP_LOG_INFO, "offload %u: the module "
			    "finished distributing (no per-station status)",
			    off->id);
			off->phase = PLC_OFF_DONE;
		}
		off->next_poll_ms = plc_now_ms(tp) + tp->status_ms;
		return;
	case PLC_REQ_CLEAR:
		if (f->afn == PLC_AFN_ACK) {
			index = 0;	/* a module that confirms the clear */
		} else if (f->afn != PLC_AFN_FILE || f->fn != PLC_FN_FILE ||
		    plc_du_segment_ack_dec(f->data, f->len, &index) !=
		    PLC_OK)
			break;
		tp->req.kind = PLC_REQ_NONE;
		if (off->phase == PLC_OFF_CANCEL) {
			off->phase = PLC_OFF_NONE;
			return;
		}
		if (off->phase != PLC_OFF_CLEAR)
			return;
		if (index == PLC_SEG_ERROR) {
			plc_off_fail_all(tp, "the module refused to clear its "
			    "file");
			return;
		}
		off->phase = PLC_OFF_SEND;
		off->next = 0;
		return;
	case PLC_REQ_SEGMENT:
		if (f->afn != PLC_AFN_FILE || f->fn != PLC_FN_FILE)
			break;
		if ((e = plc_du_segment_ack_dec(f->data, f->len, &index)) !=
		    PLC_OK) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "segment answer dropped: %s", plc_strerror(e));
			return;
		}
		if (index != PLC_SEG_ERROR && index != tp->req.arg) {
			/* Not the answer to this segment: the request
			 * stays, and goes again at its timeout. */
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "acknowledgement of segment %u "
			    "dropped: segment %u was sent",
			    index, tp->req.arg);
			return;
		}
		tp->req.kind = PLC_REQ_NONE;
		if (off->phase != PLC_OFF_SEND || tp->req.arg != off->next)
			return;		/* cancelled meanwhile */
		if (index == PLC_SEG_ERROR) {
			plc_off_file_error(tp, "file error from the module");
			return;
		}
		off->next++;
		off->bytes_taken = (uint64_t)off->next * off->seg;
		if (off->bytes_taken > off->size)
			off->bytes_taken = off->size;
		if (off->next == off->nseg)
			plc_off_sent(tp);
		else if (tp->host->offload_progress != NULL)
			tp->host->offload_progress(tp->host->arg, tp, off->id,
			    NULL, TP_OFF_RECEIVING, off->bytes_taken);
		return;
	default:
		return;
	}
	tp->rx_dropped++;
	tp_plc__log(tp, UP_LOG_INFO,
	    "answer AFN %02XH F%u to %s dropped: not its "
	    "answer",
	    f->afn, f->fn, plc_req_str(tp->req.kind));
}

void
plc_off_failed(struct tp *tp, int deny)
{
	struct plc_offload *off = &tp->off;
	uint64_t	 now = plc_now_ms(tp);

	switch (tp->req.kind) {
	case PLC_REQ_UPG_STATUS:
		if (deny == PLC_DENY_UNSUPPORTED || deny == PLC_DENY_NO_INFO ||
		    deny == PLC_DENY_BAD_DU) {
			tp_plc__log(tp, UP_LOG_INFO, "the module gives no "
			    "per-station upgrade status (F0H F201): following "
			    "its route state (10H F4)");
			off->no_status = true;
			off->next_poll_ms = now;
		} else
			off->next_poll_ms = now + tp->status_ms;
		break;
	case PLC_REQ_ROUTE_STATE:
		off->next_poll_ms = now + tp->status_ms;
		break;
	case PLC_REQ_CLEAR:
	case PLC_REQ_SEGMENT:
		if (deny == PLC_DENY_BUSY)
			tp->hold_until_ms = now + 1000;
		else if (deny >= 0 && off->phase == PLC_OFF_SEND)
			plc_off_file_error(tp,
			    plc_deny_str((unsigned int)deny));
		else if (deny >= 0 && off->phase == PLC_OFF_CANCEL)
			off->phase = PLC_OFF_NONE;
		/* A timeout: the link counts it; the same segment goes
		 * again when the module answers again. */
		break;
	default:
		break;
	}
}

void
plc_off_module_reset(struct tp *tp)
{
	struct plc_offload *off = &tp->off;

	if (off->phase == PLC_OFF_SEND) {
		off->resumes++;
		tp_plc__log(tp, UP_LOG_INFO,
		    "offload %u: the module restarted; "
		    "resuming at segment %u of %u",
		    off->id, off->next, off->nseg);
	}
}

void
plc_off_tick(struct tp *tp)
{
	struct plc_offload *off = &tp->off;
	uint64_t	 now = plc_now_ms(tp);

	if (off->phase != PLC_OFF_DISTRIBUTE)
		return;
	if (now >= off->deadline_ms) {
		plc_off_fail_all(tp, "the stations' deadline passed");
		return;
	}
	if (now >= off->next_poll_ms)
		plc_link_kick(tp);
}
