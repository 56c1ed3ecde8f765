/*
 * offload.c: module offload (TP_CAP_OFFLOAD), docs/engine.md "Link
 * shapes".
 *
 * A PLC concentrator's carrier module (CCO) distributes a file to the
 * stations behind it by itself (Q/GDW 1376.2 AFN 15H: the file goes to
 * the module segment by segment, the module broadcasts it over the power
 * line, queries the stations and repairs; research/transports.md §4.2),
 * far better than the gateway could through the module's forwarding
 * frames.  So on a link that has it, a session hands the module the
 * whole package:
 *
 *  1. OFFER and ACCEPT as always (the stations' UP engines set up their
 *     slot and say what they hold), over the link's frames;
 *  2. offload_start() with the accepted members' addresses: the plugin
 *     pulls the package through offload_read() (from the session's block
 *     source, never past its verified end) at the module's pace and
 *     reports per-station progress through offload_progress(), which
 *     goes into the same member states as UP's own: RECEIVING with what
 *     it holds, DOWNLOADED when the module says the station has it all;
 *     the station's link layer hands its UP engine each block that came
 *     out of band (up_node_put_block()), so it is DOWNLOADED too;
 *  3. when every station is done or given up (or the module went quiet
 *     for offload_idle_s), the session goes on as on any link: VERIFY,
 *     ACTIVATE, RESULT over UP, and status rounds and data passes for
 *     the stations the module did not serve.
 *
 * The module may resume a transfer it interrupted by itself (its own
 * segment ids); the engine does not hand a member to a module twice.
 * Members that accept after an offload is over (a later wave: relays
 * go after the stations behind them) get one of their own, once the
 * members of the first one are done or given up.  A session stopped or
 * closed cancels its offload.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

static uint64_t
off_idle_us(const struct eng_session *s)
{
	unsigned int	 idle = eng__params(s)->offload_idle_s;

	return ((uint64_t)(idle != 0 ? idle : ENG_OFFLOAD_IDLE_S) * 1000000);
}

/* The link, the way chosen and the package allow an offload. */
static bool
off_able(const struct eng_session *s)
{
	const struct eng_link	*l = s->l;

	if (l == NULL || (l->caps.flags & TP_CAP_OFFLOAD) == 0 ||
	    l->ops->offload_start == NULL)
		return (false);
	if (s->offload_conf < 0 || (s->offload_conf == 0 && !l->p.offload))
		return (false);
	/* The module takes the whole package: it must be whole. */
	return (s->src.complete(s->src.arg) &&
	    s->src.limit(s->src.arg) >= s->offer.size);
}

/*
 * A receiving member whose blocks are to come from the module: it was
 * never handed to one in this session.  A member the module served or
 * gave up, or that accepted while no offload was possible, is UP's.
 */
bool
eng__off_pending(const struct eng_member *m)
{
	return (!m->gone && !m->off_tried && m->state == ENG_M_RECEIVING &&
	    m->addr.len != 0 && off_able(m->s));
}

/*
 * An offload is to begin: none ran yet, or one is over and members
 * accepted since (a later wave of the same session: the scheduler
 * releases relays after the stations behind them).
 */
bool
eng__off_wanted(const struct eng_session *s)
{
	const struct eng_member	*m;

	if (!off_able(s))
		return (false);
	if (s->off_state == ENG_OFF_NONE)
		return (true);
	if (s->off_state != ENG_OFF_DONE)
		return (false);
	TAILQ_FOREACH(m, &s->members, entry)
		if (eng__off_pending(m))
			return (true);
	return (false);
}

/*
 * The accepted members go to the module.  offload_start() is called
 * from the phase timer (eng_run), never from inside a plugin callback.
 */
void
eng__off_begin(struct eng_session *s)
{
	s->off_state = ENG_OFF_START;
	s->phase = ENG_P_OFFLOAD;
	s->timer_at = 0;
	eng__touch(s->e);
}

static void
off_start(struct eng_session *s)
{
	struct eng_link		*l = s->l;
	struct eng_member	*m;
	struct tp_offload	 o;
	struct tp_addr		*peers;
	char			*cause = NULL;
	uint32_t		 n = 0;

	peers = eng__xcalloc(s->nmembers, sizeof(*peers));
	TAILQ_FOREACH(m, &s->members, entry) {
		if (!eng__off_pending(m))
			continue;
		peers[n++] = m->addr;
		m->off = true;
		m->off_tried = true;	/* once: then UP's, whatever comes */
	}
	memset(&o, 0, sizeof(o));
	o.id = s->id;
	o.size = s->offer.size;
	o.sha256 = s->offer.sha256;
	o.npeers = n;
	o.peers = peers;
	if (n == 0 || l->ops->offload_start(l->tp, &o, &cause) == -1) {
		eng__warnx("session %08x: %s: no offload: %s", s->id, l->name,
		    n == 0 ? "no station to offload to" : cause != NULL ?
		    cause : "refused");
		free(cause);
		free(peers);
		TAILQ_FOREACH(m, &s->members, entry)
			m->off = false;
		s->off_state = ENG_OFF_DONE;
		eng__decide(s);
		return;
	}
	free(peers);
	s->off_state = ENG_OFF_RUN;
	s->off_peers = n;
	s->off_bytes = 0;
	s->off_idle_at = eng__now_us(s->e) + off_idle_us(s);
	s->timer_at = s->off_idle_at;
	eng__info("session %08x: the module of %s distributes it to %u "
	    "stations", s->id, l->name, n);
}

/* The module is done (or given up): UP carries on. */
static void
off_end(struct eng_session *s, bool cancel)
{
	struct eng_member	*m;
	uint32_t		 left = 0;

	if (cancel && s->l != NULL && s->l->tp != NULL &&
	    s->l->ops->offload_cancel != NULL)
		s->l->ops->offload_cancel(s->l->tp, s->id);
	TAILQ_FOREACH(m, &s->members, entry) {
		if (!m->off)
			continue;
		/* Not served by the module: asked for its bitmap. */
		m->off = false;
		m->known = false;
		left++;
	}
	s->off_peers = 0;
	s->off_state = ENG_OFF_DONE;
	eng__info("session %08x: offload over (%" PRIu64 " bytes to the "
	    "module), %u stations left to UP", s->id, s->off_bytes, left);
}

void
eng__off_cancel(struct eng_session *s)
{
	if (s->off_state == ENG_OFF_RUN)
		off_end(s, true);
	if (s->off_state == ENG_OFF_START)
		s->off_state = ENG_OFF_NONE;
}

void
eng__off_timer(struct eng_session *s)
{
	uint64_t	 now = eng__now_us(s->e);

	switch (s->off_state) {
	case ENG_OFF_START:
		off_start(s);
		return;
	case ENG_OFF_RUN:
		if (s->off_peers > 0 && now < s->off_idle_at) {
			s->timer_at = s->off_idle_at;
			return;
		}
		if (s->off_peers > 0)
			eng__warnx("session %08x: the module reported nothing "
			    "for %u s: given up", s->id,
			    (unsigned int)(off_idle_us(s) / 1000000));
		off_end(s, s->off_peers > 0);
		break;
	default:
		break;
	}
	eng__decide(s);
}

/* ------------------------------------------------------------------ */
/* The plugin's callbacks                                               */

static struct eng_session *
off_session(struct eng_link *l, uint32_t id)
{
	struct eng_session	*s;

	if ((s = eng_session_find(l->e, id)) == NULL || s->l != l ||
	    s->off_state != ENG_OFF_RUN)
		return (NULL);
	return (s);
}

int
eng__off_read(struct eng_link *l, uint32_t id, uint64_t off, uint8_t *buf,
    size_t len)
{
	struct eng_session	*s;

	if ((s = off_session(l, id)) == NULL || s->src.read == NULL ||
	    off > s->offer.size || len > s->offer.size - off ||
	    off + len > s->src.limit(s->src.arg))
		return (-1);
	if (s->src.read(s->src.arg, off, buf, len) != 0) {
		eng__warnx("session %08x: cannot read the package for the "
		    "module", s->id);
		return (-1);
	}
	return (0);
}

void
eng__off_progress(struct eng_link *l, uint32_t id, const struct tp_addr *peer,
    enum tp_offload_state st, uint64_t bytes)
{
	struct eng_session	*s;
	struct eng_member	*m;
	uint64_t		 held;

	if ((s = off_session(l, id)) == NULL)
		return;
	s->off_idle_at = eng__now_us(s->e) + off_idle_us(s);
	if (peer == NULL) {
		s->off_bytes = bytes;
		return;
	}
	if ((m = eng__member_by_addr(s, peer)) == NULL || !m->off) {
		eng__debug("session %08x: offload progress of a station not "
		    "in it, ignored", s->id);
		return;
	}
	switch (st) {
	case TP_OFF_QUEUED:
		break;
	case TP_OFF_RECEIVING:
		held = s->block_size != 0 ? bytes / s->block_size : 0;
		if (held >= s->nblocks)
			held = s->nblocks - 1;	/* DONE says it has all */
		if (held > m->held) {
			m->held = (uint32_t)held;
			eng__progress(m);
		}
		break;
	case TP_OFF_DONE:
		m->off = false;
		s->off_peers--;
		m->known = true;
		m->held = m->first_missing = s->nblocks;
		if (m->state <= ENG_M_RECEIVING)
			eng__set_state(m, ENG_M_DOWNLOADED);
		break;
	case TP_OFF_FAILED:
		m->off = false;
		s->off_peers--;
		m->known = false;	/* asked for its bitmap, then UP */
		eng__info("session %08x: the module gave a station up: UP "
		    "carries its package", s->id);
		break;
	}
	if (s->off_peers == 0) {
		/* Every station done or given up: go on (eng_run). */
		s->timer_at = 0;
		eng__touch(s->e);
	}
}
