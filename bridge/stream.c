/*
 * stream.c: cut-through fan-out (docs/cache.md, "Cut-through").
 *
 * Without it a gateway downloads a package whole, hashes it, and only
 * then multicasts it: wall time = WAN time + LAN time.  With it the
 * sessions start as soon as the cache holds a *verified prefix* and send
 * blocks while the download goes on, so wall time ~ max(WAN, LAN).
 *
 * Integrity first: the manifest (signed) lists the SHA-256 of every
 * chunk (1 MiB by default) of each package; the cache's writer checks
 * each chunk as it completes and advances the verified prefix only over
 * chunks that match (cache/cache.c).  A session reads the partial blob
 * but never past that prefix (stream__limit), so the gateway multicasts
 * only bytes the cloud signed.  VERIFY and ACTIVATE wait for the whole-
 * file SHA-256 (package_ready), as before.  Nodes change nothing: they
 * check the image hash and the descriptor signature before activating.
 *
 * State: one entry per package being streamed, per engine.  It lives
 * from the first verified chunk to package_ready (or a failure that lost
 * the blob); "no entry" means the blob the session reads is complete.
 * The campaign's `ready' means "sendable" from the start of the stream:
 * the campaign runs exactly as with a complete blob (members, sessions,
 * latecomers), and only the data pass and VERIFY look here.
 *
 * The daemon passes the uplink's package_progress on to
 * stream__progress (upbridged.c, fanout_package_progress): the uplink
 * calls it from a deferred event as soon as a chunk is verified, so a
 * session sends the new blocks in the same loop turn.  From the first
 * such call on the engine is event-driven and stops polling; the
 * housekeeping cron's stream__watch (once a second) stays as the safety
 * net for a prefix that no call announces (a partial resumed at start-
 * up, a campaign that starts waiting for a download under way).  An
 * engine that never hears one (unit tests that drive the cache alone)
 * polls the cache's open writers (memory only, no SQL) every
 * STREAM_POLL_MS while a campaign waits for a download or a stream is
 * under way, as before.
 */
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/event.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fanout_internal.h"
#include "stream.h"

/* Idle poll while campaigns wait for a download that has not begun. */
#define STREAM_IDLE_MS	500

struct stream {
	TAILQ_ENTRY(stream)	 entry;
	uint8_t			 sha[CACHE_SHA_LEN];
	uint64_t		 size;
	uint64_t		 verified;	/* what sessions may send */
	uint64_t		 started_ms;
};

/* The streams of one engine (tests may run several engines). */
struct stream_fo {
	LIST_ENTRY(stream_fo)	 entry;
	struct fanout		*f;
	struct event		*ev;
	bool			 driven;	/* package_progress is wired */
	TAILQ_HEAD(, stream)	 streams;
};

static LIST_HEAD(, stream_fo) stream_fos = LIST_HEAD_INITIALIZER(stream_fos);

static void	 stream_tick(evutil_socket_t, short, void *);

static struct stream_fo *
stream_fo(struct fanout *f, bool create)
{
	struct stream_fo	*sf;

	LIST_FOREACH(sf, &stream_fos, entry)
		if (sf->f == f)
			return (sf);
	if (!create)
		return (NULL);
	sf = xcalloc(1, sizeof(*sf));
	sf->f = f;
	TAILQ_INIT(&sf->streams);
	if ((sf->ev = evtimer_new(f->base, stream_tick, sf)) == NULL)
		fatalx("stream: evtimer_new");
	LIST_INSERT_HEAD(&stream_fos, sf, entry);
	return (sf);
}

static struct stream *
stream_find(const struct stream_fo *sf, const uint8_t *sha)
{
	struct stream	*st;

	if (sf == NULL)
		return (NULL);
	TAILQ_FOREACH(st, &sf->streams, entry)
		if (memcmp(st->sha, sha, CACHE_SHA_LEN) == 0)
			return (st);
	return (NULL);
}

static void
stream_free(struct stream_fo *sf, struct stream *st)
{
	TAILQ_REMOVE(&sf->streams, st, entry);
	free(st);
}

static void
stream_arm(struct stream_fo *sf, uint64_t ms)
{
	struct timeval	 tv;

	if (evtimer_pending(sf->ev, NULL))
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(sf->ev, &tv);
}

/* Sessions waiting in their data pass for more verified bytes go on. */
static void
stream_kick(struct fanout *f, const uint8_t *sha)
{
	struct fo_campaign	*c;
	struct fo_session	*s;

	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (c->state != FO_C_RUNNING ||
		    memcmp(c->pkg.sha256, sha, CACHE_SHA_LEN) != 0)
			continue;
		/* A session waiting in its data pass goes on. */
		TAILQ_FOREACH(s, &c->sessions, centry)
			session__run(s);
	}
}

static void
stream_advance(struct fanout *f, struct stream *st, uint64_t v)
{
	char	 hex[CACHE_HEX_LEN + 1];

	if (v <= st->verified)
		return;
	st->verified = v > st->size ? st->size : v;
	cache_hex(st->sha, hex);
	log_debug("stream %.16s...: %" PRIu64 " of %" PRIu64 " bytes "
	    "verified", hex, st->verified, st->size);
	stream_kick(f, st->sha);
}

/* A campaign that may start on a verified prefix. */
static bool
stream_waiting(const struct fo_campaign *c)
{
	return (c->state == FO_C_WAITING && !c->ready && c->check == NULL);
}

/*
 * The first verified chunk of a package some campaign waits for: the
 * campaigns run from here on the partial blob.
 */
static void
stream_start(struct stream_fo *sf, const struct fo_campaign *first,
    uint64_t v)
{
	struct fanout		*f = sf->f;
	struct fo_campaign	*c;
	struct stream		*st;

	if ((st = stream_find(sf, first->pkg.sha256)) == NULL) {
		st = xcalloc(1, sizeof(*st));
		memcpy(st->sha, first->pkg.sha256, CACHE_SHA_LEN);
		st->size = first->pkg.size;
		st->started_ms = fanout__now_ms();
		TAILQ_INSERT_TAIL(&sf->streams, st, entry);
	}
	if (v > st->verified)
		st->verified = v > st->size ? st->size : v;
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (!stream_waiting(c) ||
		    memcmp(c->pkg.sha256, st->sha, CACHE_SHA_LEN) != 0)
			continue;
		log_info("campaign %s: cut-through: package %s starts with "
		    "%" PRIu64 " of %" PRIu64 " bytes verified", c->id,
		    c->package, st->verified, st->size);
		c->ready = true;
	}
	/* Runs every waiting campaign that is ready (campaign.c). */
	campaign__start_all(f);
}

static void
stream_tick(evutil_socket_t fd, short what, void *arg)
{
	struct stream_fo	*sf = arg;
	struct fanout		*f = sf->f;
	struct fo_campaign	*c;
	struct stream		*st;
	uint64_t		 v, next = 0;

	if (f->stopping || f->cache == NULL)
		return;
	TAILQ_FOREACH(st, &sf->streams, entry) {
		v = cache_writer_verified(f->cache, st->sha);
		if (v != UINT64_MAX)
			stream_advance(f, st, v);
		next = STREAM_POLL_MS;
	}
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (!stream_waiting(c))
			continue;
		if ((st = stream_find(sf, c->pkg.sha256)) != NULL) {
			/* Another campaign streams it already: join. */
			stream_start(sf, c, st->verified);
			break;	/* the list may have changed; next tick */
		}
		v = cache_writer_verified(f->cache, c->pkg.sha256);
		if (v == UINT64_MAX) {
			if (next == 0)
				next = STREAM_IDLE_MS;
			continue;
		}
		next = STREAM_POLL_MS;
		if (v > 0) {
			stream_start(sf, c, v);
			break;
		}
	}
	/* Event-driven: progress calls and the cron's watch do the rest. */
	if (next != 0 && !sf->driven)
		stream_arm(sf, next);
}

void
stream__watch(struct fanout *f)
{
	struct stream_fo	*sf;

	if (f->cache == NULL || f->stopping)
		return;
	sf = stream_fo(f, true);
	if (!evtimer_pending(sf->ev, NULL))
		event_active(sf->ev, EV_TIMEOUT, 1);
}

void
stream__progress(struct fanout *f, const uint8_t *sha, uint64_t verified)
{
	struct stream_fo	*sf;
	struct stream		*st;

	if (f->cache == NULL || f->stopping)
		return;
	sf = stream_fo(f, true);
	if (!sf->driven) {
		sf->driven = true;
		/* The poll is not needed any more. */
		evtimer_del(sf->ev);
	}
	if ((st = stream_find(sf, sha)) != NULL)
		stream_advance(f, st, verified);
	else
		stream__watch(f);
}

void
stream__package_ready(struct fanout *f, const uint8_t *sha)
{
	struct stream_fo	*sf = stream_fo(f, false);
	struct fo_campaign	*c;
	struct fo_session	*s;
	struct stream		*st;
	char			 hex[CACHE_HEX_LEN + 1];

	if ((st = stream_find(sf, sha)) == NULL)
		return;
	cache_hex(sha, hex);
	log_info("stream %.16s...: download complete and verified, %" PRIu64
	    " ms after the first chunk", hex,
	    fanout__now_ms() - st->started_ms);
	stream_advance(f, st, st->size);
	stream_free(sf, st);
	/* Sessions that wait for the whole-file hash: VERIFY may go. */
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (c->state != FO_C_RUNNING ||
		    memcmp(c->pkg.sha256, sha, CACHE_SHA_LEN) != 0)
			continue;
		TAILQ_FOREACH(s, &c->sessions, centry)
			session__run(s);
	}
}

void
stream__package_failed(struct fanout *f, const uint8_t *sha)
{
	struct stream_fo	*sf = stream_fo(f, false);
	struct fo_campaign	*c, *next;
	struct fo_session	*s;
	struct cache_entry	 e;
	struct stream		*st;

	if ((st = stream_find(sf, sha)) == NULL)
		return;
	/*
	 * A bad chunk or an HTTP error keeps the partial and its verified
	 * prefix: the sessions wait for the retry.  A blob that is gone
	 * (whole-file hash mismatch: the chunk list and the sha256 of the
	 * manifest disagree) stops them; it is fetched and verified anew.
	 */
	if (cache_lookup(f->cache, sha, &e) == 0 &&
	    (e.state == CACHE_PARTIAL || e.state == CACHE_COMPLETE))
		return;
	stream_free(sf, st);
	TAILQ_FOREACH_SAFE(c, &f->campaigns, entry, next) {
		if (!c->ready ||
		    memcmp(c->pkg.sha256, sha, CACHE_SHA_LEN) != 0)
			continue;
		log_warnx("campaign %s: cut-through: package %s lost, "
		    "sessions stopped", c->id, c->package);
		if (c->state == FO_C_RUNNING) {
			campaign__blob_error(c);
			continue;
		}
		TAILQ_FOREACH(s, &c->sessions, centry)
			session__close(s);
		c->ready = false;
	}
}

void
stream__fini(struct fanout *f)
{
	struct stream_fo	*sf = stream_fo(f, false);
	struct stream		*st;

	if (sf == NULL)
		return;
	while ((st = TAILQ_FIRST(&sf->streams)) != NULL)
		stream_free(sf, st);
	event_free(sf->ev);
	LIST_REMOVE(sf, entry);
	free(sf);
}

/* ------------------------------------------------------------------ */
/* Sessions                                                             */

uint64_t
stream__limit(const struct fo_session *s)
{
	struct stream	*st;

	if ((st = stream_find(stream_fo(s->f, false), s->c->pkg.sha256)) ==
	    NULL)
		return (s->c->pkg.size);
	return (st->verified);
}

bool
stream__complete(const struct fo_session *s)
{
	return (stream_find(stream_fo(s->f, false), s->c->pkg.sha256) ==
	    NULL);
}

int
stream__open(struct fo_session *s)
{
	int	 fd;

	if ((fd = cache_open_blob(s->f->cache, s->c->pkg.sha256)) != -1 ||
	    stream__complete(s))
		return (fd);
	/* Same inode after completion (rename): the fd stays good. */
	return (cache_open_read(s->f->cache, s->c->pkg.sha256));
}
