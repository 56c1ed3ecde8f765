/*
 * fo_session.c: a campaign's session on one link, as the daemon sees it.
 *
 * The session itself (phases, repair, timers) is the engine's
 * (engine/session.c); this file holds what the daemon adds to it: the
 * campaign it belongs to, the block source it reads (the package's
 * cache blob, or the partial blob of a download still streaming, which
 * stream.c says how far it may be read), the choice of a new session
 * id, and the members it puts in (with what the registry knows of them).
 */
#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanout_internal.h"
#include "stream.h"

/* ------------------------------------------------------------------ */
/* The block source                                                     */

static int
session_src_read(void *arg, uint64_t off, uint8_t *buf, size_t len)
{
	struct fo_session	*s = arg;
	ssize_t			 n;

	if (s->fd == -1)
		return (-1);
	do {
		n = pread(s->fd, buf, len, (off_t)off);
	} while (n == -1 && errno == EINTR);
	return (n == (ssize_t)len ? 0 : -1);
}

static uint64_t
session_src_limit(void *arg)
{
	return (stream__limit(arg));
}

static bool
session_src_complete(void *arg)
{
	return (stream__complete(arg));
}

/* ------------------------------------------------------------------ */

struct fo_session *
session__find(struct fanout *f, uint32_t id)
{
	struct eng_session	*es;

	if ((es = eng_session_find(f->eng, id)) == NULL)
		return (NULL);
	return (eng_session_udata(es));
}

static int
session_id_used(struct fanout *f, uint32_t id)
{
	sqlite3_stmt	*st;
	int		 used = 0;

	if (eng_session_find(f->eng, id) != NULL)
		return (1);
	if (sqlite3_prepare_v2(f->db, "SELECT 1 FROM campaign_sessions WHERE "
	    "session = ?1", -1, &st, NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, id);
	used = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return (used);
}

struct fo_session *
session__new(struct fo_campaign *c, const char *transport, uint32_t id,
    uint16_t block_size, uint32_t nblocks, uint64_t bytes_sent, uint8_t tag,
    char **cause)
{
	struct fanout		*f = c->f;
	struct fo_session	*s;
	struct eng_session_conf	 conf;
	struct up_offer		 offer;
	char			*why = NULL;

	if (id == 0) {
		do
			id = fanout__random_u32();
		while (session_id_used(f, id));
	}
	/*
	 * The descriptor fields come from the one function the publisher
	 * also uses before signing (uplink_pkg_offer), so what the nodes
	 * check is byte for byte what the cloud signed.
	 */
	memset(&offer, 0, sizeof(offer));
	if (uplink_pkg_offer(&c->pkg, &offer) != 0)
		log_warnx("campaign %s: package %s does not fit an OFFER",
		    c->id, c->package);
	s = xcalloc(1, sizeof(*s));
	memset(&conf, 0, sizeof(conf));
	conf.id = id;
	conf.link = transport;
	conf.block_size = block_size;
	conf.nblocks = nblocks;
	conf.bytes_sent = bytes_sent;
	conf.tag = tag;
	conf.offer = &offer;
	/* The way, per campaign (policy "offload", docs/campaigns.md). */
	conf.offload = rollout__offload(f, c->rollout);
	if ((s->es = eng_session_new(f->eng, &conf, s, &why)) == NULL) {
		*cause = why != NULL ? why : xstrdup("cannot make a session");
		free(s);
		return (NULL);
	}
	s->f = f;
	s->c = c;
	fanout__strlcpy(s->transport, transport, sizeof(s->transport));
	s->id = id;
	s->fd = -1;
	TAILQ_INSERT_TAIL(&c->sessions, s, centry);
	return (s);
}

void
session__free(struct fo_session *s)
{
	struct fo_member	*m;

	if (s == NULL)
		return;
	TAILQ_FOREACH(m, &s->c->members, centry)
		if (m->s == s) {
			m->s = NULL;
			m->em = NULL;
		}
	eng_session_free(s->es);
	if (s->fd != -1)
		close(s->fd);
	TAILQ_REMOVE(&s->c->sessions, s, centry);
	free(s);
}

void
session__add_member(struct fo_session *s, struct fo_member *m)
{
	const struct registry_node	*n;
	struct eng_member_conf		 mc;

	memset(&mc, 0, sizeof(mc));
	mc.node = m->node;
	mc.state = m->state;
	mc.result = m->result;
	mc.held = m->held;
	mc.addr = m->addr;
	mc.hold = m->hold;
	if ((n = registry_get(s->f->reg, m->node)) != NULL)
		mc.max_frame = n->max_frame;
	if ((m->em = eng_member_add(s->es, &mc, m)) == NULL)
		fatalx("session %08x: node 0x%016" PRIx64 " added twice",
		    s->id, m->node);
	m->s = s;
}

void
session__remove_member(struct fo_session *s, struct fo_member *m)
{
	if (m->em != NULL)
		eng_member_remove(m->em);
	m->em = NULL;
	m->s = NULL;
}

void
session__run(struct fo_session *s)
{
	struct eng_source	 src;

	if (s->c->state != FO_C_RUNNING || !s->c->ready)
		return;
	/* A partial blob while the download streams (stream.c). */
	if (s->fd == -1) {
		if ((s->fd = stream__open(s)) == -1) {
			log_warnx("campaign %s: package %s is not in the cache",
			    s->c->id, s->c->package);
			return;
		}
		log_info("campaign %s: session %08x on %s", s->c->id, s->id,
		    s->transport);
	}
	memset(&src, 0, sizeof(src));
	src.arg = s;
	src.read = session_src_read;
	src.limit = session_src_limit;
	src.complete = session_src_complete;
	eng_session_start(s->es, &src);
}

void
session__stop(struct fo_session *s)
{
	eng_session_stop(s->es);
}

void
session__close(struct fo_session *s)
{
	eng_session_close(s->es);
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
}

void
session__info(const struct fo_session *s, struct eng_session_info *si)
{
	eng_session_info(s->es, si);
}

uint64_t
session__rate_bps(struct fo_session *s)
{
	struct eng_session_info	 si;
	uint64_t		 now = fanout__now_ms();

	eng_session_info(s->es, &si);
	if (s->rate_ms == 0) {
		s->rate_ms = now;
		s->rate_bytes = si.bytes_sent;
		return (0);
	}
	if (now - s->rate_ms >= 1000) {
		s->rate_bps = (si.bytes_sent - s->rate_bytes) * 8 * 1000 /
		    (now - s->rate_ms);
		s->rate_ms = now;
		s->rate_bytes = si.bytes_sent;
	}
	return (s->rate_bps);
}
