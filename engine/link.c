/*
 * link.c: links, i.e. transport instances (one broadcast domain each):
 * opening a plugin, its callbacks, the control ring, the transmit loop,
 * the receive dispatch and discovery.
 *
 * Transmit loop, per link: a control-frame ring (OFFER, STATUS_REQ,
 * VERIFY, ACTIVATE, RESULT_ACK, ABORT, DISCOVER; encoded once when
 * queued) goes before data; data frames come round robin from the
 * sessions in a data pass, read from the source straight into one
 * preallocated frame.  The loop runs when the link's deadline (tx_at)
 * comes, which is exactly when the pacer allows the next frame, sends
 * what is due (at most ENG_TX_BURST frames, then yields to the daemon's
 * loop), stops on TP_EAGAIN and resumes from writable(), and ends with
 * the plugin's flush() (a plugin may send the run's frames together).
 * A frame refused with TP_EAGAIN is kept and sent first later.
 *
 * The plugin's callbacks are entry points of the engine (eng__enter /
 * eng__leave): they never send from inside themselves, they make the
 * link due ("kick") and the next eng_run() sends, as a plugin may not be
 * called back from inside its own callback.
 */
#include <sys/queue.h>
#include <sys/uio.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* ------------------------------------------------------------------ */
/* Transmit                                                             */

size_t
eng__link_mtu(const struct eng_link *l)
{
	if (l->caps.mtu != 0 && l->caps.mtu < UP_FRAME_MAX)
		return (l->caps.mtu);
	return (UP_FRAME_MAX);
}

void
eng__kick(struct eng_link *l)
{
	if (l->tp == NULL || l->pacer.blocked)
		return;
	/* Due for pacing already: that run serves the new frame too. */
	if (l->tx_at != ENG_NEVER)
		return;
	l->tx_at = 0;
	eng__touch(l->e);
}

/* The node a control message names, 0 for every node. */
static uint64_t
link_target(const struct up_msg *m)
{
	switch (m->type) {
	case UP_T_STATUS_REQ:
	case UP_T_VERIFY:
	case UP_T_RESULT_ACK:
	case UP_T_ABORT:
		return (m->u.target.node_id);
	case UP_T_ACTIVATE:
		return (m->u.activate.node_id);
	default:
		return (0);
	}
}

int
eng__ctrl_to(struct eng_link *l, struct eng_session *s, struct eng_member *mb,
    const struct tp_addr *dst, const struct up_msg *min)
{
	struct eng_ctrl	*c;
	struct up_msg	 mm, *m = &mm;
	int		 n;

	if (l->ring_n == ENG_CTRL_RING) {
		l->ctrl_dropped++;
		eng__debug("%s: control ring full, type %u dropped", l->name,
		    min->type);
		return (-1);
	}
	c = &l->ring[(l->ring_head + l->ring_n) % ENG_CTRL_RING];
	/*
	 * In the form of its session (or link): a compact message larger
	 * than its destination takes goes in segments (cframe.c); a full
	 * one must fit the link.
	 */
	eng__cf_msg(l, s, min, &mm);
	if ((n = up_encode(m, c->frame, m->form == UP_FORM_COMPACT ?
	    UP_FRAME_MAX : eng__link_mtu(l))) <= 0) {
		l->ctrl_dropped++;
		eng__warnx("%s: cannot encode a frame of type %u: %s",
		    l->name, m->type, up_strerror(n));
		return (-1);
	}
	if (dst != NULL)
		c->dst = *dst;
	else
		tp_addr_broadcast(&c->dst);
	c->s = s;
	c->m = mb;
	c->len = (uint16_t)n;
	c->type = m->type;
	c->node = link_target(m);
	c->epoch = s != NULL ? s->epoch : 0;
	c->reply_ms = eng__reply_ms(l, m);
	if (s != NULL)
		s->txq++;
	l->ring_n++;
	eng__peer_queued(l, &c->dst, 1);
	eng__kick(l);
	return (0);
}

int
eng__ctrl(struct eng_link *l, struct eng_session *s, const struct tp_addr *dst,
    const struct up_msg *m)
{
	return (eng__ctrl_to(l, s, NULL, dst, m));
}

void
eng__data_add(struct eng_link *l, struct eng_session *s)
{
	if (s->in_data)
		return;
	TAILQ_INSERT_TAIL(&l->data_sessions, s, tentry);
	l->ndata++;
	s->in_data = true;
	eng__kick(l);
}

void
eng__data_remove(struct eng_link *l, struct eng_session *s)
{
	if (l == NULL || !s->in_data)
		return;
	TAILQ_REMOVE(&l->data_sessions, s, tentry);
	l->ndata--;
	s->in_data = false;
	/* A data frame of it that waits after TP_EAGAIN still goes. */
}

void
eng__forget_session(struct eng_link *l, struct eng_session *s)
{
	unsigned int	 i;

	eng__data_remove(l, s);
	if (l->pend_len != 0 && l->pend_s == s) {
		if (l->pend_ctrl)
			l->pend_s = NULL;
		else
			l->pend_len = 0;	/* its source is going */
	}
	for (i = 0; i < l->ring_n; i++)
		if (l->ring[(l->ring_head + i) % ENG_CTRL_RING].s == s)
			l->ring[(l->ring_head + i) % ENG_CTRL_RING].s = NULL;
	for (i = 0; i < l->txr_n; i++)
		if (l->txr[(l->txr_head + i) % ENG_TXREC].s == s)
			l->txr[(l->txr_head + i) % ENG_TXREC].s = NULL;
}

void
eng__forget_member(struct eng_link *l, struct eng_member *m)
{
	unsigned int	 i;

	if (l->pend_m == m)
		l->pend_m = NULL;
	for (i = 0; i < l->ring_n; i++)
		if (l->ring[(l->ring_head + i) % ENG_CTRL_RING].m == m)
			l->ring[(l->ring_head + i) % ENG_CTRL_RING].m = NULL;
}

/*
 * A control frame that came due but no longer means anything: a request
 * of a batch its session has moved past (a repeat, a round, a step: the
 * session asked again since, or went on), of a session stopped since, a
 * targeted ask to a node that answered or left the state it was asked
 * in.  On a duty-cycled link a request may wait minutes behind pacing;
 * sending it then costs airtime and makes nodes answer what nobody
 * waits for.  Answers that must arrive (RESULT_ACK, ABORT), DISCOVER and
 * the frames of members served alone (unicast.c keeps their own clocks)
 * are never stale.
 */
static bool
link_stale(const struct eng_ctrl *c)
{
	struct eng_session	*s = c->s;
	struct eng_member	*m = NULL;

	if (s == NULL || c->m != NULL)
		return (false);
	switch (c->type) {
	case UP_T_OFFER:
	case UP_T_STATUS_REQ:
	case UP_T_VERIFY:
	case UP_T_ACTIVATE:
		if (!s->running)
			return (true);		/* stopped since */
		if (c->node != 0 && (m = eng__member(s, c->node)) == NULL)
			return (true);		/* no member any more */
		break;
	default:
		return (false);
	}
	switch (c->type) {
	case UP_T_OFFER:
		return (c->epoch != s->epoch);
	case UP_T_STATUS_REQ:
		if (c->epoch != s->epoch)
			return (true);
		return (m != NULL && (m->answered ||
		    (m->state != ENG_M_RECEIVING &&
		    m->state != ENG_M_OFFERED)));
	case UP_T_VERIFY:
		if (m == NULL)
			return (c->epoch != s->epoch);
		/* A verify ask, or a RESULT poll (result.c). */
		if (m->state == ENG_M_ACTIVATING)
			return (false);
		return (m->state != ENG_M_DOWNLOADED ||
		    (m->asked && m->answered));
	default:	/* ACTIVATE */
		if (m != NULL)
			return (m->state != ENG_M_ACTIVATING);
		return (c->epoch != s->epoch);
	}
}

/* The head of the control ring is dropped (stale, or it cannot go). */
static void
link_ctrl_drop(struct eng_link *l)
{
	struct eng_ctrl	*c = &l->ring[l->ring_head];

	if (c->s != NULL)
		eng__frame_left(c->s, c->type, eng__now_us(l->e));
	eng__peer_queued(l, &c->dst, -1);
	l->ring_head = (l->ring_head + 1) % ENG_CTRL_RING;
	l->ring_n--;
}

/*
 * Picks the next frame to send into l->pend; false if none.  Control
 * frames first, then polls that are due, then data round robin from the
 * sessions in a data pass (a session whose members served alone have
 * nothing ready now stays in the rotation; its pass over, it leaves).
 */
static bool
link_fill(struct eng_link *l)
{
	struct eng_session	*s;
	struct eng_ctrl		*c;
	struct eng_peer		*p;
	size_t			 n, cap = eng__link_mtu(l);
	unsigned int		 tries;

	l->pend_m = NULL;
	l->pend_p = NULL;
	while (l->ring_n > 0 && link_stale(&l->ring[l->ring_head])) {
		l->ctrl_stale++;
		eng__debug("%s: stale control frame of type %u dropped",
		    l->name, l->ring[l->ring_head].type);
		link_ctrl_drop(l);
	}
	if (l->ring_n > 0) {
		c = &l->ring[l->ring_head];
		l->pend = c->frame;
		l->pend_len = c->len;
		l->pend_dst = c->dst;
		l->pend_s = c->s;
		l->pend_m = c->m;
		l->pend_ctrl = true;
		l->pend_type = c->type;
		return (true);
	}
	if ((p = eng__poll_next(l, eng__now_us(l->e))) != NULL) {
		l->pend = NULL;
		l->pend_len = 1;	/* a poll carries no frame */
		l->pend_dst = p->addr;
		l->pend_s = NULL;
		l->pend_p = p;
		l->pend_ctrl = false;
		l->pend_type = 0;
		return (true);
	}
	for (tries = l->ndata; tries > 0; tries--) {
		if ((s = TAILQ_FIRST(&l->data_sessions)) == NULL)
			return (false);
		TAILQ_REMOVE(&l->data_sessions, s, tentry);
		TAILQ_INSERT_TAIL(&l->data_sessions, s, tentry);
		n = eng__fill_data(s, l->data_frame, cap, &l->pend_dst);
		if (n > 0) {
			l->pend = l->data_frame;
			l->pend_len = n;
			l->pend_s = s;
			l->pend_ctrl = false;
			l->pend_type = (l->data_frame[0] & UP_C_MARK) != 0 ?
			    (l->data_frame[0] & UP_C_TYPE) : l->data_frame[1];
			return (true);
		}
	}
	return (false);
}

static void
link_sent(struct eng_link *l)
{
	l->seg_len = 0;
	if (l->pend_ctrl) {
		eng__peer_queued(l, &l->pend_dst, -1);
		l->ring_head = (l->ring_head + 1) % ENG_CTRL_RING;
		l->ring_n--;
	}
	l->pend_len = 0;
	l->pend = NULL;
	l->pend_m = NULL;
	l->pend_p = NULL;
}

static uint32_t
link_airtime(struct eng_link *l, const struct tp_addr *dst, size_t len)
{
	if (l->ops->airtime != NULL)
		return (l->ops->airtime(l->tp, dst, len));
	return (pacer__airtime(&l->pacer, len));
}

uint32_t
eng__link_airtime(struct eng_link *l, const struct tp_addr *dst, size_t len)
{
	return (link_airtime(l, dst, len));
}

/* The duty-cycle band a frame will use (the plugin's band() op). */
static unsigned int
link_band(struct eng_link *l, const struct tp_addr *dst, size_t len)
{
	unsigned int	 b;

	if (l->caps.nbands == 0 || l->ops->band == NULL)
		return (0);
	b = l->ops->band(l->tp, dst, len);
	return (b < l->caps.nbands ? b : 0);
}

/* ------------------------------------------------------------------ */
/* Frames on their way: what waits for them to leave                    */

/*
 * A half-duplex link keeps quiet for the answers a request asked for
 * (docs/engine.md, "Half-duplex links").  On a polled link nothing
 * answers unasked: the polls are the engine's (poll.c).
 */
static bool
link_quiets(const struct eng_link *l)
{
	return ((l->caps.flags & (TP_CAP_HALF_DUPLEX | TP_CAP_POLLED)) ==
	    TP_CAP_HALF_DUPLEX);
}

/*
 * A frame left the link at left_us: a half-duplex link keeps quiet for
 * the answers it asked for, and its session's window starts.
 */
static void
link_left(struct eng_link *l, struct eng_txrec *r, uint64_t left_us)
{
	uint64_t	 q;

	/*
	 * On a polled link nothing answers unasked: the polls are the
	 * engine's (poll.c), no quiet is needed.
	 */
	if (r->reply_ms != 0 && link_quiets(l)) {
		q = left_us + (uint64_t)r->reply_ms * 1000;
		if (q > l->quiet_until)
			l->quiet_until = q;
		if (l->quiet_cookie == r->cookie)
			l->quiet_cookie = 0;
	}
	if (r->anchor) {
		r->anchor = false;
		if (r->s != NULL)
			eng__frame_left(r->s, r->type, left_us);
	}
}

/* Remembers a frame the plugin took (cookie), until its tx_done. */
static struct eng_txrec *
link_rec(struct eng_link *l, uint64_t cookie)
{
	struct eng_txrec	*r;

	if (l->txr_n == ENG_TXREC) {
		/* The oldest never got a tx_done: it left long ago. */
		r = &l->txr[l->txr_head];
		if (r->cookie != 0)
			link_left(l, r, eng__now_us(l->e));
		l->txr_head = (l->txr_head + 1) % ENG_TXREC;
		l->txr_n--;
	}
	r = &l->txr[(l->txr_head + l->txr_n) % ENG_TXREC];
	memset(r, 0, sizeof(*r));
	r->cookie = cookie;
	l->txr_n++;
	return (r);
}

/* The record of a frame by its cookie, or NULL. */
static struct eng_txrec *
link_rec_find(struct eng_link *l, uint64_t cookie)
{
	struct eng_txrec	*r;
	unsigned int		 i;

	for (i = 0; i < l->txr_n; i++) {
		r = &l->txr[(l->txr_head + i) % ENG_TXREC];
		if (r->cookie == cookie)
			return (r);
	}
	return (NULL);
}

/* Done records leave from the front. */
static void
link_rec_trim(struct eng_link *l)
{
	while (l->txr_n > 0 && l->txr[l->txr_head].cookie == 0) {
		l->txr_head = (l->txr_head + 1) % ENG_TXREC;
		l->txr_n--;
	}
}

/* A poll of l->pend_p: its time on the link is charged before. */
static int
link_poll(struct eng_link *l, uint64_t now)
{
	struct eng_peer	*p = l->pend_p;
	uint64_t	 wait, cookie;
	uint32_t	 air;
	unsigned int	 band;
	int		 rc;

	if (l->ops->poll == NULL) {
		link_sent(l);
		return (0);
	}
	air = l->ops->poll_time != NULL ? l->ops->poll_time(l->tp,
	    &p->addr) : pacer__airtime(&l->pacer, 8);
	band = link_band(l, &p->addr, 8);
	wait = pacer__delay(&l->pacer, now, 0, air, band);
	if (wait == PACER_WAIT)
		return (-1);
	if (wait > 0) {
		l->tx_at = now + wait;
		return (-1);
	}
	cookie = ++l->cookie << 16;
	rc = l->ops->poll(l->tp, &p->addr, cookie);
	switch (rc) {
	case TP_OK:
		p->poll_slot = pacer__sent(&l->pacer, now, 0, air, band);
		p->poll_band = (uint8_t)band;
		eng__poll_sent(p, cookie, air);
		break;
	case TP_EAGAIN:
		pacer__eagain(&l->pacer);
		return (-1);
	default:
		/* Unknown or gone: as a poll that brought nothing. */
		l->tx_errors++;
		eng__debug("%s: poll: error %d", l->name, rc);
		if (p->m != NULL)
			eng__u_poll_empty(p->m);
		break;
	}
	link_sent(l);
	return (0);
}

/*
 * The pending message could not go (its connection is gone, it does not
 * fit): it is dropped; the protocol repeats what matters, and a member
 * waiting for an answer to it times out as if it had been lost.
 */
static void
link_drop(struct eng_link *l)
{
	l->tx_errors++;
	if (l->pend_m != NULL)
		eng__u_sent(l->pend_m);
	if (l->pend_ctrl && l->pend_s != NULL)
		eng__frame_left(l->pend_s, l->pend_type, eng__now_us(l->e));
	link_sent(l);
}

static void
link_tx(struct eng_link *l)
{
	struct eng_peer		*p;
	struct eng_txrec	*r;
	struct iovec		 iov;
	const uint8_t		*frame;
	uint64_t		 now, wait, cookie, slot;
	uint32_t		 air;
	size_t			 mtu, flen;
	unsigned int		 band;
	bool			 last;
	int			 n, rc;

	for (n = 0; n < ENG_TX_BURST; n++) {
		if (!l->up || l->tp == NULL || l->pacer.blocked)
			return;
		now = eng__now_us(l->e);
		/*
		 * Half-duplex: the answers asked for have the air.  Nothing
		 * is handed over behind a request until it has left (the
		 * plugin would send it at once after the request).
		 */
		if (l->quiet_cookie != 0)
			return;		/* its tx_done says when */
		if (l->quiet_until > now) {
			l->quiet_waits++;
			l->tx_at = l->quiet_until;
			return;
		}
		if (l->pend_len == 0 && !link_fill(l))
			return;
		if (l->pend_ctrl && l->seg_len == 0 &&
		    link_stale(&l->ring[l->ring_head])) {
			/* Refused before (TP_EAGAIN), stale since. */
			l->ctrl_stale++;
			link_ctrl_drop(l);
			l->pend_len = 0;
			l->pend = NULL;
			l->pend_m = NULL;
			continue;
		}
		if (l->pend_p != NULL) {
			if (link_poll(l, now) == -1)
				return;
			continue;
		}
		p = NULL;
		if ((l->pend_dst.flags & TP_ADDR_F_BROADCAST) == 0 &&
		    (p = eng__peer_find(l, &l->pend_dst)) != NULL &&
		    (l->caps.flags & TP_CAP_CONNECT) != 0 &&
		    p->state != ENG_PS_UP && p->state != ENG_PS_CLOSING) {
			/* Its connection is gone: the frame is of no use. */
			link_drop(l);
			continue;
		}
		mtu = eng__dst_mtu(l, &l->pend_dst);
		if (l->seg_len == 0 && l->pend_len > mtu &&
		    !eng__cf_segment(l, mtu)) {
			eng__debug("%s: %zu-byte frame of type %u larger than "
			    "its destination takes", l->name, l->pend_len,
			    l->pend_type);
			link_drop(l);
			continue;
		}
		frame = l->pend;
		flen = l->pend_len;
		if (l->seg_len != 0) {
			/* The message goes in segments, one per frame. */
			if (mtu < l->seg_flen) {
				link_drop(l);	/* the mtu shrank under it */
				continue;
			}
			rc = up_seg_build(l->seg_msg, l->seg_len, l->seg_flen,
			    eng__link_cflags(l), l->seg_mtag, l->seg_i,
			    l->seg_frame, UP_FRAME_MAX);
			if (rc <= 0) {
				link_drop(l);
				continue;
			}
			frame = l->seg_frame;
			flen = (size_t)rc;
		}
		air = link_airtime(l, &l->pend_dst, flen);
		band = link_band(l, &l->pend_dst, flen);
		wait = pacer__delay(&l->pacer, now, flen, air, band);
		if (wait == PACER_WAIT)
			return;
		if (wait > 0) {
			l->tx_at = now + wait;
			return;
		}
		iov.iov_base = (void *)frame;
		iov.iov_len = flen;
		/* The peer's index rides in the cookie for tx_done. */
		cookie = ++l->cookie << 16 | (p != NULL ? p->idx + 1 : 0);
		rc = l->ops->send(l->tp, &l->pend_dst, &iov, 1, cookie);
		switch (rc) {
		case TP_OK:
			slot = pacer__sent(&l->pacer, now, flen, air, band);
			/*
			 * Its record, until tx_done: the charge, and on the
			 * message's last frame what waits for it to leave.
			 */
			last = l->seg_len == 0 || l->seg_i + 1 == l->seg_n;
			r = link_rec(l, cookie);
			r->slot = slot;
			r->charged_us = air;
			r->band = (uint8_t)band;
			r->type = l->pend_type;
			if (l->pend_ctrl && last) {
				r->s = l->pend_s;
				r->anchor = l->pend_s != NULL;
				r->reply_ms = l->ring[l->ring_head].reply_ms;
				if (r->reply_ms != 0 && link_quiets(l) &&
				    l->pacer.track_inflight)
					l->quiet_cookie = cookie;
			}
			/*
			 * Without tx_done reports the frame leaves as it is
			 * handed over, and is on air for `air'.
			 */
			if (!l->pacer.track_inflight)
				link_left(l, r, now + air);
			if (p != NULL)
				eng__peer_sent(p, flen);
			if (l->seg_len != 0) {
				l->tx_segments++;
				if (++l->seg_i < l->seg_n)
					break;	/* more of the message */
			}
			if (l->pend_ctrl)
				l->tx_ctrl++;
			else {
				l->tx_data++;
				if (l->pend_len > 2 && (l->pend[0] &
				    UP_C_MARK) == 0 &&
				    (l->pend[2] & UP_F_REPAIR) != 0)
					l->tx_repair++;
			}
			if (l->pend_s != NULL)
				eng__sent(l->pend_s, l->pend_type,
				    l->pend_len, !(l->pend_dst.flags &
				    TP_ADDR_F_BROADCAST));
			if (l->pend_m != NULL) {
				l->pend_m->u_cookie = cookie;
				eng__u_sent(l->pend_m);
			}
			link_sent(l);
			break;
		case TP_EAGAIN:
			/* Keep the frame; writable() resumes. */
			pacer__eagain(&l->pacer);
			return;
		default:
			eng__debug("%s: send type %u: error %d", l->name,
			    l->pend_type, rc);
			link_drop(l);
			break;
		}
	}
	/* Burst done: let the daemon's loop breathe, then go on. */
	l->tx_at = 0;
}

/* ------------------------------------------------------------------ */
/* Discovery                                                            */

static void
link_discover(struct eng_link *l, uint64_t now_us)
{
	struct up_msg	 m;
	uint64_t	 w, settle, every;
	unsigned int	 n;

	/*
	 * On a slow link the ANNOUNCEs come in reply slots (§11.9) sized
	 * to the nodes heard last time (at least ENG_DISC_MIN) and to an
	 * ANNOUNCE in segments of the uplink (about 100 bytes).
	 */
	l->disc_slots = l->disc_slot_ms = 0;
	n = l->disc_count > ENG_DISC_MIN ? l->disc_count : ENG_DISC_MIN;
	if (l->pf.slow && eng__link_compact(l))
		eng__schedule(l, n, eng__ann_frames(l), &l->disc_slots,
		    &l->disc_slot_ms);
	w = eng__disc_ms(l, n);
	l->disc_count = 0;
	memset(&m, 0, sizeof(m));
	m.type = UP_T_DISCOVER;
	m.u.discover.window_ms = w > UINT16_MAX ? UINT16_MAX : (uint16_t)w;
	/*
	 * A DISCOVER to all only where nodes may answer it by themselves:
	 * connected and polled links find their nodes by visits (peer.c).
	 */
	if (l->up && (l->caps.flags & TP_CAP_BROADCAST) != 0 &&
	    (l->caps.flags & (TP_CAP_CONNECT | TP_CAP_POLLED)) == 0)
		eng__ctrl(l, NULL, NULL, &m);
	/* Offers wait for the answers, so nodes join before the OFFER. */
	settle = w + 100 + w / 4;
	l->settle_ms = now_us / 1000 + settle;
	if (l->pf.discover_s == 0) {
		l->discover_at = ENG_NEVER;
		return;
	}
	/*
	 * The next round (docs/engine.md, "The link profile"): the
	 * profile's interval; on a slow link without a duty cycle the
	 * answers of the nodes heard take a tenth of its time at most, as
	 * many as they are (the profile's figure is for ENG_DISC_MIN);
	 * and never before this round's answers are in and offers had as
	 * long again, even where the link's section set the interval: a
	 * DISCOVER sent while the last one's answers are still due moves
	 * the offers' wait on, and every session would wait for ever.
	 */
	every = (uint64_t)l->pf.discover_s * 1000;
	if ((l->p.fixed & ENG_FIX_DISCOVER) == 0 && l->pf.slow &&
	    l->pf.duty_ppm == 0 && w * ENG_DISC_SHARE > every)
		every = w * ENG_DISC_SHARE;
	if (2 * settle > every)
		every = 2 * settle;
	l->discover_at = now_us + every * 1000;
}

/* ------------------------------------------------------------------ */
/* From eng_run                                                         */

uint64_t
eng__link_deadline(const struct eng_link *l)
{
	uint64_t	 d = l->tx_at < l->discover_at ? l->tx_at :
			    l->discover_at, x;

	if (!l->up)
		return (d);
	if ((x = eng__peers_deadline(l)) < d)
		d = x;
	if (l->pend_len == 0 && l->tx_at == ENG_NEVER &&
	    (x = eng__poll_deadline(l)) < d)
		d = x;
	return (d);
}

void
eng__link_run(struct eng_link *l, uint64_t now_us)
{
	if (l->discover_at <= now_us)
		link_discover(l, now_us);
	if (l->up)
		eng__peers_run(l, now_us);
	if (l->tx_at <= now_us || (l->up && l->pend_len == 0 &&
	    l->tx_at == ENG_NEVER && eng__poll_deadline(l) <= now_us)) {
		l->tx_at = ENG_NEVER;
		link_tx(l);
		/* What the plugin held of this run goes now (host.flushes). */
		if (l->tp != NULL && l->ops->flush != NULL)
			l->ops->flush(l->tp);
	}
	if (l->up)
		eng__peer_idle(l);
}

/* ------------------------------------------------------------------ */
/* The plugin's callbacks: entry points of the engine                  */

static uint64_t
link_host_now_ms(void *arg)
{
	struct eng_link	*l = arg;

	return (eng__now_ms(l->e));
}

static void
link_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	struct eng_link		*l = arg;
	struct eng		*e = l->e;
	struct eng_session	*s;
	struct up_msg		 m;
	uint8_t			 msg[UP_FRAME_MAX];
	size_t			 mlen;
	int			 rc;

	eng__enter(e);
	l->rx_frames++;
	if ((rc = up_decode_any(frame, len, &m)) != UP_OK) {
		l->rx_bad++;
		eng__debug("%s: bad frame (%zu bytes): %s", l->name, len,
		    up_strerror(rc));
		eng__peer_rx(l, src, NULL);
		goto out;
	}
	if (m.type == UP_T_SEG) {
		/* A slice of a node's message (§11.8): whole, it goes on. */
		eng__peer_rx(l, src, NULL);
		if (!eng__cf_reassemble(l, src, &m, msg, &mlen))
			goto out;
		if ((rc = up_cdecode(msg, mlen, &m)) != UP_OK ||
		    m.type == UP_T_SEG) {
			l->rx_bad++;
			eng__debug("%s: bad segmented message: %s", l->name,
			    up_strerror(rc));
			goto out;
		}
	}
	/* A compact node frame may leave its node id to its address. */
	eng__cf_node_id(l, src, &m);
	/* Peers: a poll brought something, a visit its ANNOUNCE. */
	eng__peer_rx(l, src, &m);
	switch (m.type) {
	case UP_T_ANNOUNCE:
		l->disc_count++;
		/* The session first: the daemon then sees the new state. */
		if (m.u.announce.session != 0 &&
		    (s = eng_session_find(e, m.u.announce.session)) != NULL)
			eng__rx_announce(s, l, src, &m.u.announce);
		e->cb.announce(e->cb.arg, l, src, &m.u.announce);
		goto out;
	case UP_T_ACCEPT:
	case UP_T_STATUS:
	case UP_T_RESULT:
	case UP_T_ABORT:
		break;
	default:
		/* Our own frames, heard back on the group. */
		l->rx_ignored++;
		goto out;
	}
	if (m.type == UP_T_ABORT && m.u.target.node_id == 0) {
		l->rx_ignored++;	/* ours, to every node */
		goto out;
	}
	if ((s = eng_session_find(e, m.session)) == NULL) {
		/* The daemon may know it (a late result): ask, look again. */
		e->cb.unknown_session(e->cb.arg, l, m.session, &m);
		s = eng_session_find(e, m.session);
	}
	if (s == NULL) {
		e->stats.rx_unknown_session++;
		eng__debug("%s: type %u for unknown session %08x", l->name,
		    m.type, m.session);
		goto out;
	}
	switch (m.type) {
	case UP_T_ACCEPT:
		eng__rx_accept(s, &m, src);
		break;
	case UP_T_STATUS:
		eng__rx_status(s, &m, src);
		break;
	case UP_T_RESULT:
		eng__rx_result(s, &m, src);
		break;
	case UP_T_ABORT:
		eng__rx_abort(s, &m, src);
		break;
	}
out:
	eng__leave(e);
}

static void
link_writable(void *arg, struct tp *tp)
{
	struct eng_link	*l = arg;

	eng__enter(l->e);
	pacer__writable(&l->pacer);
	eng__kick(l);
	eng__leave(l->e);
}

static void
link_tx_done(void *arg, struct tp *tp, uint64_t cookie, int status,
    uint32_t airtime_us)
{
	struct eng_link	 *l = arg;
	struct eng_txrec *r;

	eng__enter(l->e);
	if (!eng__poll_done(l, cookie, status, airtime_us)) {
		/* Its own record: what it was charged, what waits for it. */
		r = link_rec_find(l, cookie);
		if (r != NULL)
			pacer__tx_done(&l->pacer, true, r->band, r->slot,
			    r->charged_us, airtime_us);
		else
			pacer__tx_done(&l->pacer, false, 0, 0, 0, airtime_us);
		eng__peer_tx_done(l, cookie, status);
		if (status != TP_OK)
			l->tx_errors++;
		if (r != NULL) {
			link_left(l, r, eng__now_us(l->e));
			r->cookie = 0;
			r->s = NULL;
			link_rec_trim(l);
		}
	}
	eng__kick(l);
	eng__leave(l->e);
}

/*
 * Link down is not node failure: the sessions on it freeze (no write-
 * offs, no rounds; their timers resume shifted by the time it was down)
 * and members served alone go back to the front of the queue.  A smaller
 * mtu after a reconnect re-plans the sessions instead of stopping them.
 */
static void
link_event(void *arg, struct tp *tp, enum tp_link_event ev)
{
	struct eng_link		*l = arg;
	struct eng_session	*s;
	uint64_t		 now;

	eng__enter(l->e);
	now = eng__now_us(l->e);
	switch (ev) {
	case TP_LINK_UP:
		if (l->up)
			break;
		eng__info("%s: link up", l->name);
		l->up = true;
		if (l->down_us != 0 && now > l->down_us)
			l->down_total_us += now - l->down_us;
		l->down_us = 0;
		TAILQ_FOREACH(s, &l->e->sessions, entry)
			if (s->l == l)
				eng__thaw(s, now);
		l->sched_at = 0;
		eng__kick(l);
		break;
	case TP_LINK_DOWN:
		if (!l->up)
			break;
		eng__warnx("%s: link down; its sessions wait", l->name);
		l->up = false;
		l->quiet_cookie = 0;	/* no tx_done will come for it */
		l->down_us = now != 0 ? now : 1;
		eng__peers_down(l);
		TAILQ_FOREACH(s, &l->e->sessions, entry)
			if (s->l == l)
				eng__freeze(s, now);
		break;
	case TP_CAPS_CHANGED:
		l->ops->caps(l->tp, &l->caps);
		pacer__reconf(&l->pacer, &l->caps, l->p.rate_pct, now);
		eng__profile(l);
		eng__slots(l);
		eng__info("%s: capabilities changed (mtu %u, %" PRIu64
		    " bit/s)", l->name, l->caps.mtu, l->caps.bitrate_bps);
		TAILQ_FOREACH(s, &l->e->sessions, entry)
			if (s->l == l)
				eng__replan(s);
		eng__kick(l);
		break;
	}
	eng__leave(l->e);
}

static void
link_peer(void *arg, struct tp *tp, const struct tp_addr *a,
    enum tp_peer_event ev, const struct tp_peer_info *info)
{
	struct eng_link	*l = arg;

	eng__enter(l->e);
	eng__peer_event(l, a, ev, info);
	eng__leave(l->e);
}

static int
link_offload_read(void *arg, struct tp *tp, uint32_t id, uint64_t off,
    uint8_t *buf, size_t len)
{
	struct eng_link	*l = arg;
	int		 rc;

	eng__enter(l->e);
	rc = eng__off_read(l, id, off, buf, len);
	eng__leave(l->e);
	return (rc);
}

static void
link_offload_progress(void *arg, struct tp *tp, uint32_t id,
    const struct tp_addr *peer, enum tp_offload_state st, uint64_t bytes)
{
	struct eng_link	*l = arg;

	eng__enter(l->e);
	eng__off_progress(l, id, peer, st, bytes);
	eng__leave(l->e);
}

/* ------------------------------------------------------------------ */
/* Public                                                               */

void
eng__link_close(struct eng_link *l)
{
	if (l->tp != NULL)
		l->ops->close(l->tp);
	l->tp = NULL;
	eng__peers_free(l);
	eng__cf_link_close(l);
	pacer__free(&l->pacer);
	free(l->txr);
	free(l->ring);
	free(l->data_frame);
	free(l);
}

void
eng_link_abort(struct eng_link *l, uint32_t session, uint64_t node,
    const struct tp_addr *addr, uint8_t reason)
{
	struct up_msg	 msg;
	int		 i;

	if (session == 0 || node == 0)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_ABORT;
	msg.session = session;
	msg.u.target.node_id = node;
	msg.u.target.reason = reason;
	/* ABORT is not acknowledged: a few times. */
	for (i = 0; i < ENG_TRIES; i++)
		eng__ctrl(l, eng_session_find(l->e, session),
		    (l->caps.flags & TP_CAP_UNICAST) != 0 && addr != NULL &&
		    addr->len > 0 ? addr : NULL, &msg);
	eng__touch(l->e);
}

struct eng_link *
eng_link_open(struct eng *e, const char *name, const struct tp_ops *ops,
    const struct tp_conf *conf, const struct eng_params *p, char **cause)
{
	struct eng_session	*s;
	struct eng_link		*l;
	char			*why = NULL;
	uint64_t		 now;

	*cause = NULL;
	if (eng_link_find(e, name) != NULL) {
		if (asprintf(cause, "transport %s is open already", name) ==
		    -1)
			*cause = NULL;
		return (NULL);
	}
	if (ops == NULL || ops->abi != TP_ABI_VERSION) {
		if (asprintf(cause, "transport %s: no plugin of ABI %d", name,
		    TP_ABI_VERSION) == -1)
			*cause = NULL;
		return (NULL);
	}
	if (e->nlinks == ENG_MAX_LINKS) {
		if (asprintf(cause, "too many transports") == -1)
			*cause = NULL;
		return (NULL);
	}
	l = eng__xcalloc(1, sizeof(*l));
	l->e = e;
	eng__strlcpy(l->name, name, sizeof(l->name));
	eng__strlcpy(l->type, ops->name, sizeof(l->type));
	l->ops = ops;
	l->p = p != NULL ? *p : e->defaults;
	l->tx_at = ENG_NEVER;
	l->discover_at = ENG_NEVER;
	l->host.base = e->base;
	l->host.arg = l;
	l->host.now_ms = link_host_now_ms;
	l->host.time_scale = e->clock.scale > 0 ? e->clock.scale : 1;
	l->host.flushes = 1;
	l->host.rx = link_rx;
	l->host.writable = link_writable;
	l->host.tx_done = link_tx_done;
	l->host.link = link_event;
	l->host.peer = link_peer;
	l->host.offload_read = link_offload_read;
	l->host.offload_progress = link_offload_progress;
	l->ring = eng__xcalloc(ENG_CTRL_RING, sizeof(*l->ring));
	l->txr = eng__xcalloc(ENG_TXREC, sizeof(*l->txr));
	l->data_frame = eng__xcalloc(1, UP_FRAME_MAX);
	TAILQ_INIT(&l->data_sessions);
	TAILQ_INIT(&l->uqueue);
	TAILQ_INIT(&l->pollq);
	TAILQ_INIT(&l->pollfly);
	l->sched_at = l->visit_at = ENG_NEVER;
	if (ops->open(&l->host, conf, &l->tp, &why) == -1) {
		if (asprintf(cause, "transport %s: %s", name,
		    why != NULL ? why : "cannot open") == -1)
			*cause = NULL;
		free(why);
		l->tp = NULL;
		eng__link_close(l);
		return (NULL);
	}
	ops->caps(l->tp, &l->caps);
	now = eng__now_us(e);
	pacer__init(&l->pacer, &l->caps, l->p.rate_pct, now);
	eng__profile(l);
	eng__slots(l);
	eng__cf_link_open(l);
	e->links[e->nlinks++] = l;
	if (ops->start(l->tp, &why) == -1) {
		if (asprintf(cause, "transport %s: %s", name,
		    why != NULL ? why : "cannot start") == -1)
			*cause = NULL;
		free(why);
		return (NULL);
	}
	l->up = true;
	eng__info("transport %s (%s): mtu %u, %" PRIu64 " bit/s, paced at %"
	    PRIu64 " bit/s, node silence limit %u ms", l->name, l->type,
	    l->caps.mtu, l->caps.bitrate_bps, l->pacer.rate_bps,
	    l->silence_ms);
	/* Sessions created before their link was open. */
	TAILQ_FOREACH(s, &e->sessions, entry)
		if (s->l == NULL && strcmp(s->link, l->name) == 0) {
			s->l = l;
			if (s->running)
				eng_session_poke(s);
		}
	link_discover(l, now);
	eng__touch(e);
	return (l);
}

struct eng_link *
eng_link_find(struct eng *e, const char *name)
{
	size_t	 i;

	for (i = 0; i < e->nlinks; i++)
		if (strcmp(e->links[i]->name, name) == 0)
			return (e->links[i]);
	return (NULL);
}

struct eng_link *
eng_link_at(struct eng *e, size_t i)
{
	return (i < e->nlinks ? e->links[i] : NULL);
}

const char *
eng_link_name(const struct eng_link *l)
{
	return (l->name);
}

void
eng_link_set_params(struct eng_link *l, const struct eng_params *p)
{
	uint32_t	 disc = l->pf.discover_s;

	l->p = *p;
	pacer__reconf(&l->pacer, &l->caps, l->p.rate_pct, eng__now_us(l->e));
	eng__profile(l);
	eng__slots(l);
	if (disc != l->pf.discover_s)
		l->discover_at = l->pf.discover_s == 0 ? ENG_NEVER :
		    eng__now_us(l->e) + (uint64_t)l->pf.discover_s * 1000000;
	eng__touch(l->e);
}

void
eng_link_set_ctag_next(struct eng_link *l, uint8_t next)
{
	if (next >= l->ctags.lo && next <= l->ctags.hi && next != 0)
		l->ctags.next = next;
}

int
eng_link_addr_fmt(struct eng_link *l, const struct tp_addr *a, char *buf,
    size_t len)
{
	if (l->ops->addr_fmt == NULL)
		return (-1);
	return (l->ops->addr_fmt(a, buf, len));
}

void
eng_link_info(struct eng_link *l, struct eng_link_info *li)
{
	size_t	 i;

	memset(li, 0, sizeof(*li));
	li->name = l->name;
	li->type = l->type;
	li->up = l->up;
	li->caps = l->caps;
	if (l->ops->stats != NULL && l->tp != NULL)
		l->ops->stats(l->tp, &li->tp);
	li->rx_frames = l->rx_frames;
	li->rx_bad = l->rx_bad;
	li->rx_ignored = l->rx_ignored;
	li->tx_ctrl = l->tx_ctrl;
	li->tx_data = l->tx_data;
	li->tx_repair = l->tx_repair;
	li->tx_errors = l->tx_errors;
	li->ctrl_dropped = l->ctrl_dropped;
	li->ctrl_stale = l->ctrl_stale;
	li->quiet_waits = l->quiet_waits;
	li->ctrl_queued = l->ring_n;
	li->data_sessions = l->ndata;
	li->loss_ppm = l->loss_ppm;
	li->node_silence_ms = l->silence_ms;
	li->ctag_next = l->ctags.next;
	li->status_window_ms = l->pf.status_window_ms;
	li->offer_window_ms = l->pf.offer_window_ms;
	li->discover_interval_s = l->pf.discover_s;
	li->result_timeout_s = l->pf.result_timeout_s;
	li->poll_ms = l->pf.poll_ms;
	li->node_hash_kbs = l->pf.hash_kbs;
	li->frame_us = l->pf.frame_us;
	li->answer_us = l->pf.answer_us;
	pacer__info(&l->pacer, eng__now_us(l->e), &li->pacer);
	for (i = 0; i < l->npeers; i++) {
		if (l->peers[i] == NULL)
			continue;
		li->npeers++;
		if (l->peers[i]->state == ENG_PS_UP)
			li->peers_up++;
	}
	li->slots = l->slots;
	li->served = l->nslots;
	li->queued = l->nqueued;
	li->polls = l->polls;
	li->polls_empty = l->polls_empty;
	li->rx_segments = l->rx_segments;
	li->tx_segments = l->tx_segments;
	li->down_ms = (l->down_total_us + (l->down_us != 0 ?
	    eng__now_us(l->e) - l->down_us : 0)) / 1000;
}
