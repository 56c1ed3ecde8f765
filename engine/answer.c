/*
 * answer.c: what the nodes say to a session: ACCEPT, STATUS, RESULT,
 * ABORT, and an ANNOUNCE that names the session.  Frames arrive decoded
 * (link.c), with the address they came from, which becomes the member's
 * address: targeted frames follow a node that moved.
 *
 * A node that is no member and accepts (the OFFER is broadcast) is the
 * daemon's to judge (cb.stranger): it may make it a member there and
 * then; a node that was not targeted gets an ABORT, so it never installs
 * what it was not meant to get.  A member in a final state (written off,
 * declined busy, cancelled) that turns out alive in the session is the
 * daemon's to take back (cb.member_revive); if the daemon does not, the
 * node holds an image of a session finished for it and gets an ABORT, so
 * it never sits there declining later offers as busy (issue 7).
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <string.h>

#include "engine_internal.h"

/* A final node that turns out alive is taken back if the daemon says so. */
static bool
answer_revive(struct eng_session *s, struct eng_member *m)
{
	struct eng	*e = s->e;

	if (m->state == ENG_M_UPDATED ||
	    !e->cb.member_revive(e->cb.arg, m) || m->gone)
		return (false);
	m->result = UP_R_INITIAL;
	m->known = false;
	m->offers = m->stall = 0;
	eng__set_state(m, ENG_M_PENDING);
	eng__info("session %08x: node 0x%016" PRIx64 " is back", s->id,
	    m->node);
	return (true);
}

/*
 * A STATUS or RESULT from a node that is no member.  It heard the
 * broadcast OFFER and took the session up; the ABORT its ACCEPT drew
 * was lost (a radio loses one frame in ten), and a class-C node hears
 * every DATA and VERIFY after it.  The daemon may take it now
 * (cb.stranger); one that was not targeted and holds an image of this
 * session is aborted again, so it never installs what it was not meant
 * to get.  Returns the member, or NULL when the frame is done with.
 */
static struct eng_member *
answer_stranger(struct eng_session *s, uint64_t node,
    const struct tp_addr *src, uint8_t state, const char *what)
{
	struct eng	*e = s->e;
	int		 rc;

	rc = e->cb.stranger(e->cb.arg, s, node, src);
	if (rc == 1)
		return (eng__member(s, node));
	eng__debug("session %08x: %s from non-member 0x%016" PRIx64 "%s",
	    s->id, what, node, rc == -1 && (state == UP_NS_RECEIVING ||
	    state == UP_NS_DOWNLOADED || state == UP_NS_VERIFIED) ?
	    ", aborting it" : "");
	if (rc == -1 && (state == UP_NS_RECEIVING ||
	    state == UP_NS_DOWNLOADED || state == UP_NS_VERIFIED)) {
		s->strangers++;
		eng__abort_node(s, node, src);
	}
	/*
	 * A final RESULT of a node never targeted (it installed the image
	 * before an ABORT reached it): acknowledged, so it stops resending
	 * into the members' answers; not reported, no campaign had it.
	 */
	if (rc == -1 && (state == UP_NS_UPDATED || state == UP_NS_FAILED)) {
		e->stats.stranger_results++;
		eng__info("session %08x: node 0x%016" PRIx64 " is no member "
		    "and reports %s: acknowledged, not reported", s->id, node,
		    up_state_str(state));
		eng__to_node(s, UP_T_RESULT_ACK, node, src);
	}
	return (NULL);
}

void
eng__rx_accept(struct eng_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	struct eng			*e = s->e;
	const struct up_accept		*a = &msg->u.accept;
	struct eng_member		*m;
	int				 rc;

	if ((m = eng__member(s, a->node_id)) == NULL) {
		/*
		 * Not a member: the daemon may take it now (its ANNOUNCE
		 * raced the OFFER), leave it alone (a member of another of
		 * its sessions), or have it aborted (not targeted).
		 */
		rc = e->cb.stranger(e->cb.arg, s, a->node_id, src);
		if (rc == 1)
			m = eng__member(s, a->node_id);
		if (m == NULL) {
			if (rc == -1 && a->code == UP_R_INITIAL) {
				eng__debug("session %08x: ACCEPT from "
				    "non-member 0x%016" PRIx64 ", aborting it",
				    s->id, a->node_id);
				s->strangers++;
				eng__abort_node(s, a->node_id, src);
			}
			return;
		}
	}
	eng__heard(m, src);
	eng__rtt_accept(s);
	if (msg->form == UP_FORM_COMPACT && a->code == UP_R_INITIAL) {
		/* What it can use in this session (§11.5.4). */
		m->acaps = msg->cx.caps;
		m->acaps_known = true;
	}
	if (a->code == UP_R_BUSY) {
		/*
		 * Its slot serves another session for now: not a final
		 * answer.  It stays offered, so a later offer round decides;
		 * the result remembers why (eng__offer_lost).
		 */
		eng__debug("session %08x: node 0x%016" PRIx64 " is busy",
		    s->id, m->node);
		if (m->state == ENG_M_OFFERED)
			m->result = UP_R_BUSY;
		eng__u_heard(m, UP_T_ACCEPT);
		return;
	}
	if (a->code != UP_R_INITIAL) {
		if (ENG_M_FINAL(m->state) || m->state >= ENG_M_VERIFIED)
			return;
		if (a->code == UP_R_ALREADY)
			eng__final(m, ENG_M_UPDATED, UP_R_ALREADY,
			    s->offer.to_version, NULL);
		else
			eng__final(m, ENG_M_DECLINED, a->code, NULL, NULL);
		eng__check(s);
		return;
	}
	if (ENG_M_FINAL(m->state) && !answer_revive(s, m)) {
		/*
		 * The session is finished for this node: it must not take
		 * it up again (it would sit downloaded forever).
		 */
		eng__abort_node(s, m->node, src);
		return;
	}
	if (m->state >= ENG_M_VERIFIED) {
		eng__u_heard(m, UP_T_ACCEPT);
		return;
	}
	if (m->result == UP_R_BUSY)
		m->result = UP_R_INITIAL;	/* busy no more */
	if (m->state <= ENG_M_OFFERED)
		eng__started(m);
	eng__apply(s, m, &a->st, !m->known);
	eng__answered(m);
	eng__u_heard(m, UP_T_ACCEPT);
	eng__check(s);
}

void
eng__rx_status(struct eng_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	const struct up_status	*st = &msg->u.status;
	struct eng_member	*m;

	if ((m = eng__member(s, st->node_id)) == NULL &&
	    (m = answer_stranger(s, st->node_id, src, st->state,
	    "STATUS")) == NULL)
		return;
	eng__heard(m, src);
	if (m->asked && !m->answered)
		eng__rtt_status(s);
	if (ENG_M_FINAL(m->state) && !answer_revive(s, m)) {
		/* It holds an image of a session finished for it: release. */
		if (st->state == UP_NS_RECEIVING ||
		    st->state == UP_NS_DOWNLOADED ||
		    st->state == UP_NS_VERIFIED)
			eng__abort_node(s, m->node, src);
		return;
	}
	if (st->state == UP_NS_VERIFIED && m->state <= ENG_M_DOWNLOADED) {
		m->held = s->nblocks;
		eng__set_state(m, ENG_M_VERIFIED);
	} else if ((st->state == UP_NS_RECEIVING ||
	    st->state == UP_NS_DOWNLOADED) && m->state <= ENG_M_DOWNLOADED) {
		if (m->state <= ENG_M_OFFERED)
			eng__started(m);
		eng__apply(s, m, &st->st, !m->known);
	}
	/*
	 * A DOWNLOADED node's STATUS (its unsolicited one, or a late answer
	 * to the last STATUS_REQ) does not answer VERIFY: its RESULT will.
	 */
	if (s->phase != ENG_P_VERIFY || st->state == UP_NS_RECEIVING)
		eng__answered(m);
	eng__u_heard(m, UP_T_STATUS);
	eng__check(s);
}

void
eng__rx_result(struct eng_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	const struct up_result_msg	*r = &msg->u.result;
	struct eng_member		*m;
	enum eng_mstate			 st;

	if ((m = eng__member(s, r->node_id)) == NULL &&
	    (m = answer_stranger(s, r->node_id, src, r->state,
	    "RESULT")) == NULL)
		return;
	eng__heard(m, src);
	if (r->state == UP_NS_VERIFIED) {
		if (ENG_M_FINAL(m->state) && !answer_revive(s, m)) {
			/* A verified image nobody will activate: drop it. */
			eng__abort_node(s, m->node, src);
			return;
		}
		if (m->state <= ENG_M_DOWNLOADED) {
			m->held = s->nblocks;
			eng__set_state(m, ENG_M_VERIFIED);
		} else if (m->state == ENG_M_ACTIVATING)
			/*
			 * Answer to a poll: the gateway stopped between
			 * committing ACTIVATING and sending ACTIVATE.
			 */
			eng__send_activate(s, m);
		eng__answered(m);
		eng__u_heard(m, UP_T_RESULT);
		eng__verify_progress(s);
		eng__check(s);
		return;
	}
	if (r->state == UP_NS_RECEIVING && m->ustep >= ENG_U_OFFER &&
	    m->state <= ENG_M_DOWNLOADED) {
		/*
		 * Served alone, it answered VERIFY with RECEIVING (§11.3:
		 * an integrity retry, it forgot its blocks): ask it again.
		 */
		m->known = false;
		if (m->state != ENG_M_RECEIVING)
			eng__set_state(m, ENG_M_RECEIVING);
		eng__u_heard(m, UP_T_RESULT);
		return;
	}
	if (r->state != UP_NS_UPDATED && r->state != UP_NS_FAILED) {
		eng__debug("session %08x: RESULT state %s from 0x%016" PRIx64
		    " ignored", s->id, up_state_str(r->state), m->node);
		return;
	}
	st = r->state == UP_NS_UPDATED ? ENG_M_UPDATED : ENG_M_FAILED;
	/* Served alone: its turn acknowledges it (unicast.c). */
	m->u_keep = m->ustep >= ENG_U_OFFER;
	if (m->state == st && m->result == r->result) {
		/* Our ACK was lost: acknowledge again, report once. */
		s->e->stats.duplicate_results++;
		eng__debug("session %08x: duplicate RESULT from 0x%016" PRIx64,
		    s->id, m->node);
	} else if (ENG_M_FINAL(m->state) && m->node_final) {
		/*
		 * The node gave its final word already (a RESULT, a decline,
		 * its ABORT) and it was reported: a RESULT that says
		 * otherwise (stale, reordered, forged) is not a second
		 * final result.  Acknowledged, so that the node stops
		 * resending it; not reported.
		 */
		s->e->stats.conflicting_results++;
		eng__info("session %08x: node 0x%016" PRIx64 " sent RESULT "
		    "%s/%s after its final %s/%s: ignored", s->id, m->node,
		    up_state_str(r->state), up_result_str(r->result),
		    eng_mstate_str(m->state), up_result_str(m->result));
	} else
		eng__final(m, st, r->result, r->version, NULL);
	/* Durable (member_final returned): the node may stop resending. */
	if (m->u_keep && !m->gone)
		eng__u_ack(m);
	else
		eng__target(s, UP_T_RESULT_ACK, m, 0, 0);
	m->u_keep = false;
	if (s->phase != ENG_P_STOPPED) {
		eng__result_arm(s);
		eng__check(s);
	}
}

void
eng__rx_abort(struct eng_session *s, const struct up_msg *msg,
    const struct tp_addr *src)
{
	const struct up_target	*a = &msg->u.target;
	struct eng_member	*m;
	uint8_t			 reason;

	if (a->node_id == 0 || (m = eng__member(s, a->node_id)) == NULL ||
	    ENG_M_FINAL(m->state))
		return;
	eng__heard(m, src);
	reason = a->reason != UP_R_INITIAL && a->reason != UP_R_SUCCESS ?
	    a->reason : UP_R_ABORTED;
	eng__info("session %08x: node 0x%016" PRIx64 " gave up: %s", s->id,
	    m->node, up_result_str(reason));
	eng__final(m, ENG_M_FAILED, reason, NULL, NULL);
	if (s->phase != ENG_P_STOPPED)
		eng__check(s);
}

/*
 * An ANNOUNCE naming this session: the node rebooted mid-transfer, or
 * the gateway restarted.  A member not yet in (offered) that announces
 * on another link has moved: the daemon moves it, not this session.
 */
void
eng__rx_announce(struct eng_session *s, struct eng_link *l,
    const struct tp_addr *src, const struct up_announce *a)
{
	struct eng_member	*m;

	if ((m = eng__member(s, a->node_id)) == NULL ||
	    ENG_M_FINAL(m->state))
		return;
	if (m->state <= ENG_M_OFFERED && eng__session_link(s) != l)
		return;
	eng__heard(m, src);
	switch (a->state) {
	case UP_NS_RECEIVING:
	case UP_NS_DOWNLOADED:
		/*
		 * Rebooted mid-transfer, or we restarted: it is in the
		 * session with an unknown bitmap and will be asked.
		 */
		if (m->state <= ENG_M_OFFERED) {
			eng__started(m);
			m->known = false;
			eng__set_state(m, ENG_M_RECEIVING);
		}
		break;
	case UP_NS_VERIFIED:
		if (m->state <= ENG_M_DOWNLOADED) {
			m->held = s->nblocks;
			eng__set_state(m, ENG_M_VERIFIED);
		}
		break;
	default:
		return;
	}
	eng__session_poke_now(s);
}
