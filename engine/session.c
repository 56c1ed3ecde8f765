/*
 * session.c: one UP session, i.e. one package on one link (one broadcast
 * domain): its life (new, start, stop, close, free), the frames it
 * queues, the blocks it reads and the "needed" set of its data passes.
 * The phases are in phase.c and status.c, the repair planners in
 * parity.c and xor.c, what the nodes say in answer.c.
 *
 * Life.  eng_session_new() makes a STOPPED session with no member; the
 * daemon adds members (member.c) and starts it with a block source.
 * Starting opens it once (block size, the needed bitmap, the repair
 * planners, the OFFER descriptor; session_save fires, durable for a new
 * id, because the id must be on disk before a frame carries it: a
 * gateway killed while a node activates must resume this session, or the
 * node declines the new one as busy and its RESULT finds no session),
 * and then the phase machine runs (eng__decide).  Stop (pause) keeps the
 * buffers, close releases them and the source.
 *
 * Repair set.  The session keeps one "needed" bitmap (nblocks bits, ~27
 * KB for 300 MB at 1,400 B), not one bitmap per node: a node's first
 * report in a session (ACCEPT, or the first STATUS of a node that turned
 * up by ANNOUNCE) adds its slice's missing blocks and, conservatively,
 * every block past its slice; later STATUS frames add their slice.  A
 * block leaves the set when it is sent, so one retransmission serves
 * every node that lost it (docs/engine.md, "Repair").
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

static const char *const eng_phase_names[] = {
	"idle", "offer", "data", "status", "verify", "activate", "result",
	"stopped", "serve", "offload"
};

static const char *const eng_shape_names[] = {
	"broadcast", "polled", "unicast", "offload"
};

const char *
eng_shape_str(enum eng_shape sh)
{
	if ((size_t)sh >= sizeof(eng_shape_names) / sizeof(eng_shape_names[0]))
		return ("?");
	return (eng_shape_names[sh]);
}

const char *
eng_phase_str(enum eng_phase p)
{
	if ((size_t)p >= sizeof(eng_phase_names) / sizeof(eng_phase_names[0]))
		return ("?");
	return (eng_phase_names[p]);
}

const struct eng_params *
eng__params(const struct eng_session *s)
{
	return (s->l != NULL ? &s->l->p : &s->e->defaults);
}

struct eng_link *
eng__session_link(struct eng_session *s)
{
	if (s->l == NULL)
		s->l = eng_link_find(s->e, s->link);
	return (s->l);
}

bool
eng__runnable(const struct eng_session *s)
{
	return (s->running && s->needed_buf != NULL);
}

uint64_t
eng__session_deadline(const struct eng_session *s)
{
	uint64_t	 d, x;

	if (s->frozen_us != 0)
		return (ENG_NEVER);	/* its link is down */
	d = s->timer_at < s->rtimer_at ? s->timer_at : s->rtimer_at;
	if (s->nuactive > 0 && (x = eng__u_deadline(s)) < d)
		d = x;
	return (d);
}

/* ------------------------------------------------------------------ */
/* Deferred callbacks                                                   */

void
eng__settle(struct eng_session *s)
{
	s->settle_pending = true;
	s->e->post = true;
}

/* The source failed: stop here, the daemon hears it in eng__leave. */
void
eng__blob_error(struct eng_session *s)
{
	eng__warnx("session %08x: cannot read the package", s->id);
	eng_session_stop(s);
	s->error_pending = true;
	s->e->post = true;
}

/* ------------------------------------------------------------------ */
/* Frames                                                               */

static const struct tp_addr *
session_dst(struct eng_session *s, const struct eng_member *m)
{
	struct eng_link	*l = eng__session_link(s);

	/* Targeted frames also work broadcast: the target field filters. */
	if (l == NULL || m == NULL || m->addr.len == 0 ||
	    (l->caps.flags & TP_CAP_UNICAST) == 0)
		return (NULL);
	return (&m->addr);
}

void
eng__send(struct eng_session *s, const struct eng_member *m,
    struct up_msg *msg)
{
	struct eng_link	*l = eng__session_link(s);

	if (l == NULL)
		return;
	msg->session = s->id;
	msg->flags = 0;
	eng__ctrl(l, s, session_dst(s, m), msg);
}

/*
 * A full-frame session whose package a bitmap slice does not cover (more
 * blocks than one STATUS frame's slice, 11,512 on a LAN) asks for run
 * lists too: a compact STATUS_REQ goes with each full one.  A node that
 * speaks the compact form answers once, in the compact form (the latest
 * compact request decides, docs/up-protocol.md §11.7, §11.1), with a run
 * list that describes the whole package in one frame where it fits; a
 * node that speaks only full frames drops the compact request and
 * answers the full one with its slice.
 */
static bool
session_runs_twin(const struct eng_session *s)
{
	const struct eng_link	*l = s->l;
	uint32_t		 slice;

	if (s->compact || l == NULL || s->shape != ENG_SHAPE_BROADCAST ||
	    l->pf.answer_bytes <= l->caps.frame_overhead + UP_OVERHEAD + 32)
		return (false);
	slice = (l->pf.answer_bytes - l->caps.frame_overhead - UP_OVERHEAD -
	    32) * 8;
	return (s->nblocks > slice);
}

static void
session_ask_runs(struct eng_session *s, const struct eng_member *m,
    uint64_t window)
{
	struct up_msg	 msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_STATUS_REQ;
	msg.form = UP_FORM_COMPACT;
	msg.cx.cflags = eng__link_cflags(s->l);
	msg.cx.req = UP_SB_RUNS;
	msg.u.target.node_id = m != NULL ? m->node : 0;
	/* The full form's window as one-millisecond slots (§11.9). */
	if (m == NULL) {
		msg.cx.slots = window > UINT16_MAX ? UINT16_MAX :
		    (uint16_t)window;
		msg.cx.slot_ms = msg.cx.slots != 0 ? 1 : 0;
	}
	s->runs_asked++;
	eng__send(s, m, &msg);
}

void
eng__target(struct eng_session *s, uint8_t type, const struct eng_member *m,
    uint64_t window, uint8_t reason)
{
	struct up_msg	 msg;

	if (type == UP_T_STATUS_REQ && session_runs_twin(s))
		session_ask_runs(s, m, window);
	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	msg.u.target.node_id = m != NULL ? m->node : 0;
	/* A full frame's window is a u16; a longer wait goes on anyway. */
	msg.u.target.window_ms = window > UINT16_MAX ? UINT16_MAX :
	    (uint16_t)window;
	msg.u.target.reason = reason;
	eng__send(s, m, &msg);
}

void
eng__send_offer(struct eng_session *s)
{
	struct up_msg	 msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_OFFER;
	msg.u.offer = s->offer;
	eng__send(s, NULL, &msg);
	s->offer_us = eng__now_us(s->e);
}

void
eng__send_activate(struct eng_session *s, const struct eng_member *m)
{
	struct up_msg	 msg;

	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_ACTIVATE;
	msg.u.activate.node_id = m != NULL ? m->node : 0;
	msg.u.activate.delay_ms = eng__params(s)->activate_delay_ms;
	eng__send(s, m, &msg);
}

void
eng__abort_node(struct eng_session *s, uint64_t node,
    const struct tp_addr *src)
{
	eng__to_node(s, UP_T_ABORT, node, src);
}

/* A targeted ABORT or RESULT_ACK to a node that may be no member. */
void
eng__to_node(struct eng_session *s, uint8_t type, uint64_t node,
    const struct tp_addr *src)
{
	struct eng_link	*l = eng__session_link(s);
	struct up_msg	 msg;

	if (l == NULL)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = type;
	msg.session = s->id;
	msg.u.target.node_id = node;
	if (type == UP_T_ABORT)
		msg.u.target.reason = UP_R_ABORTED;
	eng__ctrl(l, s, (l->caps.flags & TP_CAP_UNICAST) != 0 ? src : NULL,
	    &msg);
}

/*
 * Asks the members in state `st' (STATUS_REQ or VERIFY): one frame to
 * all when they are at least half of the session, else one targeted frame
 * each, so that a latecomer in a big session does not make every other
 * node answer again.
 */
void
eng__ask(struct eng_session *s, uint8_t type, enum eng_mstate st,
    uint64_t window)
{
	struct eng_member	*m;

	if (s->nstate[st] * 2 >= s->nmembers) {
		eng__target(s, type, NULL, window, 0);
		return;
	}
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == st)
			eng__target(s, type, m, window, 0);
}

void
eng_session_abort(struct eng_session *s, uint8_t reason)
{
	int	 i;

	/* ABORT is not acknowledged: send it a few times. */
	for (i = 0; i < ENG_TRIES; i++)
		eng__target(s, UP_T_ABORT, NULL, 0, reason);
}

void
eng__sent(struct eng_session *s, uint8_t type, size_t len, bool unicast)
{
	s->bytes_sent += len;
	if (type == UP_T_DATA || type == UP_T_PARITY || type == UP_T_XOR) {
		s->data_frames++;
		if (s->pass > 1)
			s->repair_frames++;
		if (unicast)
			s->unicast_frames++;
	} else
		s->ctrl_frames++;
}

/* ------------------------------------------------------------------ */
/* Blocks                                                               */

size_t
eng__block_len(const struct eng_session *s, uint32_t i)
{
	uint64_t	 off = (uint64_t)i * s->block_size;

	return (i == s->nblocks - 1 ? s->offer.size - off : s->block_size);
}

bool
eng__read(struct eng_session *s, uint64_t off, uint8_t *buf, size_t len)
{
	if (s->src.read == NULL ||
	    s->src.read(s->src.arg, off, buf, len) != 0) {
		eng__data_remove(s->l, s);
		eng__blob_error(s);
		return (false);
	}
	return (true);
}

/* ------------------------------------------------------------------ */
/* The needed set                                                       */

void
eng__need(struct eng_session *s, uint32_t i)
{
	if (i < s->nblocks && !up_bitmap_get(&s->needed, i)) {
		up_bitmap_set(&s->needed, i);
		s->nneeded++;
	}
}

static void
session_need_cb(void *arg, uint32_t i)
{
	eng__need(arg, i);
}

static void
session_need_range(struct eng_session *s, uint32_t from, uint32_t to)
{
	uint32_t	 i;

	for (i = from; i < to && (i & 7) != 0; i++)
		eng__need(s, i);
	/* Whole bytes at a time for the long runs. */
	for (; i + 8 <= to; i += 8) {
		if (s->needed_buf[i / 8] != 0xff) {
			s->nneeded += 8 - __builtin_popcount(
			    s->needed_buf[i / 8]);
			s->needed_buf[i / 8] = 0xff;
		}
	}
	for (; i < to; i++)
		eng__need(s, i);
}

/*
 * Takes a node's status body (docs/up-protocol.md §4.7): blocks before
 * first_missing are held, the slice describes the next nbits, nothing is
 * known past it.
 */
void
eng__apply(struct eng_session *s, struct eng_member *m,
    const struct up_status_body *st, bool first)
{
	uint64_t	 end;
	uint32_t	 described;

	if (st->form == UP_SB_COUNTS) {
		/* How many rows, not which blocks (reply.c). */
		eng__counts_apply(s, m, st);
		return;
	}
	if (st->first_missing > s->nblocks ||
	    !eng__status_ok(s, st, &described)) {
		eng__debug("session %08x: node 0x%016" PRIx64 ": status past "
		    "its %u blocks, ignored", s->id, m->node, s->nblocks);
		return;
	}
	m->known = true;
	m->held = st->held > s->nblocks ? s->nblocks : st->held;
	m->first_missing = st->first_missing;
	if (st->first_missing == s->nblocks) {
		m->held = s->nblocks;
		if (m->ustep >= ENG_U_CONNECT)
			eng__u_status(m, st);
		if (m->state <= ENG_M_RECEIVING)
			eng__set_state(m, ENG_M_DOWNLOADED);
		else
			eng__progress(m);
		return;
	}
	if (m->state != ENG_M_RECEIVING)
		eng__set_state(m, ENG_M_RECEIVING);
	else
		eng__progress(m);
	if (m->ustep >= ENG_U_CONNECT) {
		/* Served alone: its own exact needed set. */
		eng__u_status(m, st);
		return;
	}
	if (s->needed_buf == NULL)
		return;
	eng__need(s, st->first_missing);
	up_status_foreach_missing(st, s->nblocks, session_need_cb, s);
	if (first) {
		end = described;
		if (end < s->nblocks)
			session_need_range(s, (uint32_t)end, s->nblocks);
	}
	eng__agg_add(s, st);
	eng__fec_note(s, st, first, described);
	eng__xr_note(s, m, st, first, described);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

struct eng_session *
eng_session_new(struct eng *e, const struct eng_session_conf *c, void *udata,
    char **cause)
{
	struct eng_session	*s;

	*cause = NULL;
	if (c->id == 0 || eng_session_find(e, c->id) != NULL) {
		if (asprintf(cause, "session %08x is already in use", c->id) ==
		    -1)
			*cause = NULL;
		return (NULL);
	}
	s = eng__xcalloc(1, sizeof(*s));
	s->e = e;
	eng__strlcpy(s->link, c->link, sizeof(s->link));
	s->l = eng_link_find(e, s->link);
	s->udata = udata;
	s->id = c->id;
	s->block_size = c->block_size;
	s->nblocks = c->nblocks;
	s->bytes_sent = c->bytes_sent;
	/* A resumed session keeps its tag: nodes bound it (§11.4). */
	s->tag = c->tag;
	s->tagged = c->tag != 0;
	if (c->offer != NULL)
		s->offer = *c->offer;
	s->phase = ENG_P_STOPPED;
	s->timer_at = s->rtimer_at = ENG_NEVER;
	s->offload_conf = c->offload;
	TAILQ_INIT(&s->members);
	TAILQ_INIT(&s->uactive);
	TAILQ_INSERT_TAIL(&e->sessions, s, entry);
	return (s);
}

struct eng_session *
eng_session_find(struct eng *e, uint32_t id)
{
	struct eng_session	*s;

	TAILQ_FOREACH(s, &e->sessions, entry)
		if (s->id == id)
			return (s);
	return (NULL);
}

void *
eng_session_udata(const struct eng_session *s)
{
	return (s->udata);
}

/*
 * block_size = min(profile, mtu - UP_DATA_OVERHEAD, every member's
 * max_frame - UP_DATA_OVERHEAD).  A session keeps its block size for
 * life (restarts included): nodes resume only when it is unchanged.
 */
static uint16_t
session_block_size(struct eng_session *s, struct eng_link *l)
{
	struct eng_member	*m;
	uint32_t		 bs, mtu = (uint32_t)eng__link_mtu(l), hdr;

	bs = l->p.block_size != 0 ? l->p.block_size : 1024;
	if (s->compact) {
		/*
		 * Compact DATA (§11.5.5): a 4- or 5-byte header and the
		 * link's trailers (§11.1).  A block too large for one
		 * connection goes in segments (cframe.c), which the node
		 * reassembles in at most UP_SEG_MSG_MAX bytes.
		 */
		if ((hdr = up_cblock_size(s->offer.size, mtu, s->cflags)) == 0)
			return (0);
		if (bs > hdr)
			bs = hdr;
		hdr = mtu - hdr;
		if ((l->caps.flags & TP_CAP_CONNECT) != 0 &&
		    bs > UP_SEG_MSG_MAX - hdr - UP_C_CRC_LEN)
			bs = UP_SEG_MSG_MAX - hdr - UP_C_CRC_LEN;
	} else {
		/*
		 * Where the mtu sets the block size, a PARITY frame (6 bytes
		 * more than DATA) must still fit, or parity would switch
		 * itself off; its 6 bytes also give an XOR frame room for a
		 * list of a few blocks (§4.15: DATA minus 3 plus the list).
		 */
		hdr = l->p.fec ? UP_PARITY_OVERHEAD : UP_DATA_OVERHEAD;
		if (mtu <= hdr)
			return (0);
		if (bs > mtu - hdr)
			bs = mtu - hdr;
	}
	TAILQ_FOREACH(m, &s->members, entry) {
		if (m->max_frame <= hdr)
			continue;
		if (bs > (uint32_t)m->max_frame - hdr)
			bs = m->max_frame - hdr;
	}
	return (bs > UINT16_MAX ? UINT16_MAX : (uint16_t)bs);
}

/*
 * How the session uses its link (docs/engine.md, "Link shapes"):
 *  - a connect link, or one that cannot broadcast: each member alone;
 *  - a polled link that can broadcast: the first pass to all, then each
 *    node alone (poll_broadcast; otherwise alone from the start);
 *  - anything else: broadcast with status rounds.
 * Module offload (offload.c) comes on top of the shape, which then
 * carries what the module did not deliver.
 */
static void
session_shape(struct eng_session *s, struct eng_link *l)
{
	uint32_t	 f = l->caps.flags;

	s->polled = (f & TP_CAP_POLLED) != 0 && l->ops->poll != NULL;
	if ((f & TP_CAP_CONNECT) != 0 || (f & TP_CAP_BROADCAST) == 0)
		s->shape = ENG_SHAPE_UNICAST;
	else if (s->polled)
		s->shape = l->p.poll_broadcast ? ENG_SHAPE_POLLED :
		    ENG_SHAPE_UNICAST;
	else
		s->shape = ENG_SHAPE_BROADCAST;
}

static int
session_open(struct eng_session *s)
{
	struct eng		*e = s->e;
	struct eng_link		*l;
	uint32_t		 nblocks;
	bool			 first;

	if (s->needed_buf != NULL)
		return (0);
	if ((l = eng__session_link(s)) == NULL) {
		eng__debug("session %08x: transport %s is not open", s->id,
		    s->link);
		return (-1);
	}
	s->l = l;
	eng__cf_open(s);
	if (s->block_size == 0 &&
	    (s->block_size = session_block_size(s, l)) == 0) {
		eng__warnx("session %08x: mtu %u of %s is too small", s->id,
		    l->caps.mtu, l->name);
		return (-1);
	}
	nblocks = up_nblocks(s->offer.size, s->block_size);
	if (s->nblocks != 0 && s->nblocks != nblocks)
		eng__warnx("session %08x: %u blocks recorded, %u computed",
		    s->id, s->nblocks, nblocks);
	s->nblocks = nblocks;
	s->needed_buf = eng__xcalloc(1, up_bitmap_bytes(s->nblocks));
	up_bitmap_init(&s->needed, s->needed_buf, s->nblocks);
	s->nneeded = 0;
	s->cursor = 0;
	s->pass = 0;
	session_shape(s, l);
	if (s->shape == ENG_SHAPE_BROADCAST) {
		/*
		 * Members served alone need neither: their sets are exact.
		 * Compact sessions repair with compact PARITY; an XOR frame
		 * is 3 bytes and its list longer than a compact DATA, so
		 * where blocks fill the mtu (every link of 255 bytes or
		 * less) it has no room (§11.5.14).
		 */
		eng__fec_open(s);
		if (!s->compact)
			eng__xr_open(s);
		eng__agg_open(s);
	}
	s->offer.block_size = s->block_size;
	s->offer.nblocks = s->nblocks;
	s->offer.deadline_s = l->p.session_deadline_s;
	first = !s->opened;
	s->opened = true;
	/* A new id is durable before an OFFER carries it. */
	e->cb.session_save(e->cb.arg, s, first);
	eng__info("%s: session %08x: %u blocks of %u bytes, %zu nodes, %s%s",
	    s->link, s->id, s->nblocks, s->block_size, s->nmembers,
	    eng_shape_str(s->shape), eng__off_wanted(s) || s->offload_conf > 0 ?
	    ", module offload" : "");
	return (0);
}

void
eng__session_start_now(struct eng_session *s)
{
	if (!s->running)
		return;
	if (s->phase != ENG_P_STOPPED && s->phase != ENG_P_IDLE &&
	    s->phase != ENG_P_RESULT)
		return;
	if (session_open(s) == -1)
		return;
	eng__result_resume(s);
	eng__decide(s);
	if (s->l != NULL && !s->l->up && s->frozen_us == 0)
		eng__freeze(s, eng__now_us(s->e));
}

void
eng__session_poke_now(struct eng_session *s)
{
	if (!s->running)
		return;
	if (s->phase == ENG_P_STOPPED)
		eng__session_start_now(s);
	else if (s->phase == ENG_P_DATA && !s->in_data && s->l != NULL)
		/* Waiting in its pass for more of a streaming package. */
		eng__data_add(s->l, s);
	else if (s->phase == ENG_P_SERVE) {
		/* Newcomers, released members, more of the package. */
		if (s->l != NULL && s->nuactive > 0)
			eng__data_add(s->l, s);
		eng__decide(s);
	} else
		eng__check(s);
}

void
eng_session_start(struct eng_session *s, const struct eng_source *src)
{
	s->src = *src;
	s->running = true;
	s->start_pending = true;
	s->e->pending = true;
	eng__touch(s->e);
}

void
eng_session_poke(struct eng_session *s)
{
	if (!s->running)
		return;
	s->poke_pending = true;
	s->e->pending = true;
	eng__touch(s->e);
}

void
eng_session_set_offload(struct eng_session *s, int offload)
{
	s->offload_conf = offload < 0 ? -1 : offload > 0 ? 1 : 0;
}

void
eng_session_stop(struct eng_session *s)
{
	struct eng_member	*m;

	eng__disarm(s);
	eng__batch(s);		/* its queued requests are stale */
	s->rtimer_at = ENG_NEVER;
	if (s->l != NULL)
		eng__data_remove(s->l, s);
	eng__u_forget_session(s);
	eng__poll_round_end(s);
	eng__off_cancel(s);
	s->frozen_us = 0;
	TAILQ_FOREACH(m, &s->members, entry)
		m->asked = m->answered = false;
	s->unanswered = 0;
	s->phase = ENG_P_STOPPED;
	s->running = false;
	s->start_pending = s->poke_pending = false;
	eng__touch(s->e);
}

void
eng_session_close(struct eng_session *s)
{
	eng_session_stop(s);
	if (s->data_frames > 0)
		eng__info("session %08x closed: %" PRIu64 " block frames (%"
		    PRIu64 " in repair passes, %" PRIu64 " parity, %" PRIu64
		    " xor), %" PRIu64 " to one node alone, %" PRIu64 " bytes",
		    s->id, s->data_frames, s->repair_frames, s->parity_frames,
		    s->xor_frames, s->unicast_frames, s->bytes_sent);
	memset(&s->src, 0, sizeof(s->src));
	eng__cf_close(s);
	free(s->needed_buf);
	s->needed_buf = NULL;
	memset(&s->needed, 0, sizeof(s->needed));
	s->nneeded = 0;
	eng__fec_free(s);
	eng__xr_free(s);
	eng__agg_free(s);
}

void
eng_session_free(struct eng_session *s)
{
	struct eng		*e;
	struct eng_member	*m;

	if (s == NULL)
		return;
	e = s->e;
	eng_session_close(s);
	if (s->l != NULL) {
		eng__forget_session(s->l, s);
		TAILQ_FOREACH(m, &s->members, entry)
			eng__u_forget(m);
	}
	while ((m = TAILQ_FIRST(&s->members)) != NULL) {
		TAILQ_REMOVE(&s->members, m, entry);
		if (m->gone)
			TAILQ_REMOVE(&e->graveyard, m, gentry);
		free(m);
	}
	free(s->hash);
	TAILQ_REMOVE(&e->sessions, s, entry);
	free(s);
	eng__touch(e);
}

void
eng_session_info(const struct eng_session *s, struct eng_session_info *si)
{
	memset(si, 0, sizeof(*si));
	si->id = s->id;
	si->link = s->link;
	si->phase = s->phase;
	si->running = s->running;
	si->block_size = s->block_size;
	si->nblocks = s->nblocks;
	si->needed = s->nneeded;
	si->pass = s->pass;
	si->bytes_sent = s->bytes_sent;
	si->data_frames = s->data_frames;
	si->repair_frames = s->repair_frames;
	si->unicast_frames = s->unicast_frames;
	si->parity_frames = s->parity_frames;
	si->xor_frames = s->xor_frames;
	si->ctrl_frames = s->ctrl_frames;
	si->fec_fallbacks = s->fec_fallbacks;
	si->grtt_us = s->grtt_us;
	si->nmembers = s->nmembers;
	memcpy(si->nstate, s->nstate, sizeof(si->nstate));
	si->shape = s->off_state != ENG_OFF_NONE ? ENG_SHAPE_OFFLOAD :
	    s->shape;
	si->frozen = s->frozen_us != 0;
	si->served = s->nuactive;
	si->queued = s->nuqueued;
	si->polls = s->polls;
	si->offload_bytes = s->off_bytes;
	si->compact = s->compact;
	si->tag = s->tagged ? s->tag : 0;
	si->fec_k = s->fec_k;
	si->count_rounds = s->count_rounds;
	si->runs_asked = s->runs_asked;
	si->counts_heard = s->counts_heard;
	si->lone_rounds = s->lone_rounds;
}

/* ------------------------------------------------------------------ */
/* Link down, link changed                                              */

void
eng__freeze(struct eng_session *s, uint64_t now)
{
	if (!s->running || s->frozen_us != 0)
		return;
	s->frozen_us = now != 0 ? now : 1;
	eng__info("session %08x: its link is down: frozen", s->id);
}

static void
session_shift(uint64_t *at, uint64_t d)
{
	if (*at != ENG_NEVER && *at != 0)
		*at += d;
}

/*
 * The link is back: every deadline of the session moves on by the time
 * it was down, so no node is written off, no round cut short and no
 * result deadline spent while nothing could be heard.  Round-trip
 * samples across the gap are dropped.
 */
void
eng__thaw(struct eng_session *s, uint64_t now)
{
	struct eng_member	*m;
	uint64_t		 d, dms;

	if (s->frozen_us == 0)
		return;
	d = now > s->frozen_us ? now - s->frozen_us : 0;
	dms = d / 1000;
	s->frozen_us = 0;
	session_shift(&s->timer_at, d);
	session_shift(&s->rtimer_at, d);
	session_shift(&s->off_idle_at, d);
	if (s->poll_ms != 0)
		s->poll_ms += dms;
	s->phase_ms += dms;
	s->offer_us = s->ask_us = s->round_us = 0;
	TAILQ_FOREACH(m, &s->members, entry) {
		if (m->state == ENG_M_ACTIVATING && m->result_due_ms != 0)
			m->result_due_ms += dms;
		if (m->joined_ms != 0)
			m->joined_ms += dms;
	}
	eng__info("session %08x: its link is back after %" PRIu64 " ms",
	    s->id, dms);
	if (s->in_data || s->phase == ENG_P_DATA || s->nuactive > 0)
		eng__data_add(s->l, s);
	eng__touch(s->e);
}

/*
 * New capabilities: frames are planned again for the new mtu.  A block
 * frame is sealed per frame with the link's mtu, so DATA needs nothing;
 * parity and XOR frames stop when they no longer fit; a session whose
 * blocks no longer fit a full frame waits (it is not stopped, and goes
 * on when the mtu grows back): nodes resume only with the same block
 * size, which is the session's for life.
 */
void
eng__replan(struct eng_session *s)
{
	struct eng_link	*l = s->l;
	size_t		 mtu;
	bool		 was;

	if (l == NULL || s->needed_buf == NULL)
		return;
	mtu = eng__link_mtu(l);
	if (s->fec_k != 0 && !s->compact &&
	    (size_t)s->block_size + UP_PARITY_OVERHEAD > mtu) {
		eng__info("session %08x: no more parity at mtu %zu", s->id,
		    mtu);
		eng__fec_free(s);
	}
	if (s->xr != NULL) {
		if (mtu < UP_OVERHEAD + 1 + (size_t)s->block_size + 5) {
			eng__info("session %08x: no more XOR at mtu %zu",
			    s->id, mtu);
			eng__xr_free(s);
		} else
			s->xr_room = mtu - UP_OVERHEAD - 1 - s->block_size;
	}
	was = s->mtu_short;
	/* Compact frames too large for the link go in segments. */
	s->mtu_short = !s->compact &&
	    UP_DATA_OFF + (size_t)s->block_size + UP_CRC_LEN > mtu;
	if (s->mtu_short && !was)
		eng__warnx("session %08x: %u-byte blocks do not fit mtu %zu: "
		    "waiting for it to grow", s->id, s->block_size, mtu);
	else if (!s->mtu_short && was) {
		eng__info("session %08x: blocks fit again", s->id);
		if (s->phase == ENG_P_DATA)
			eng__data_add(l, s);
	}
}

struct eng_member *
eng__member_by_addr(struct eng_session *s, const struct tp_addr *a)
{
	struct eng_member	*m;
	struct eng_peer		*p;

	if (s->l != NULL && (p = eng__peer_find(s->l, a)) != NULL &&
	    p->m != NULL && p->m->s == s)
		return (p->m);
	TAILQ_FOREACH(m, &s->members, entry)
		if (!m->gone && tp_addr_eq(&m->addr, a))
			return (m);
	return (NULL);
}
