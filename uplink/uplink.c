/*
 * uplink.c: the cloud client (uplink.h, docs/manifest.md).
 *
 * Three independent activities on the daemon's event loop, each with its
 * own HTTPS channel (uplink_http.c):
 *
 *  - Polling: GET manifest.json.sig, then manifest.json (unconditional:
 *    nginx's ETag is mtime+size, which misses a same-size rewrite within
 *    a second); the signature must verify with the
 *    configured cloud key, the manifest must parse, every package's
 *    up_sig must verify over its UP descriptor, and the serial must not
 *    go back.  Only then does anything change: cache/'s package table,
 *    the stored manifest (the replay guard, uplink_store.c), the owner's
 *    callback.  A rejected manifest changes nothing and says why.
 *
 *  - Downloads: one job per package, at most UPLINK_MAX_ACTIVE at once.
 *    A job resumes a partial blob (cache_writer_open + prime, hashed in
 *    PRIME_STEP steps so the loop never stalls), then GETs one Range of
 *    range_bytes at a time, streaming each body into the cache writer as
 *    it arrives, so an interrupted range keeps what did arrive.  A 200
 *    answer (a server that ignores Range, RFC 9110 §14.2) is taken too:
 *    the bytes already held are skipped.  cache_writer_finish checks size
 *    and SHA-256; a mismatch deletes the blob, calls package_failed and
 *    the job retries later with back-off (job_fail: attempts that keep
 *    bytes reset it).
 *
 *  - Reports: every report_interval_s (or on uplink_flush) the oldest
 *    unacknowledged batch, or a new one, is PUT to
 *    reports/<gateway>/<batch>.jsonl (uplink_outbox.c).
 *
 * Callbacks to the owner run from uplink's own events, never from inside
 * an uplink_*() call; the state they see is already consistent.
 */
#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "uplink_internal.h"

#define UPLINK_MAX_ACTIVE	2	/* concurrent downloads */
#define PRIME_STEP		(4 * 1024 * 1024)
#define SIG_MAX			1024
#define RETRY_MIN_S		2
#define RETRY_MAX_S		300	/* downloads */
#define REPORT_RETRY_MAX_S	60
#define POLL_RETRY_MIN_S	5

enum job_state {
	J_QUEUED,	/* waiting for a download slot */
	J_OPEN,		/* opening (or resuming) the blob */
	J_PRIME,	/* re-hashing the bytes already on disk */
	J_FETCH,	/* about to ask for the next range */
	J_HTTP,		/* a range request in flight */
	J_BACKOFF,	/* failed; retried when the timer fires */
	J_NOTIFY	/* already complete: package_ready is due */
};

struct uplink_job {
	TAILQ_ENTRY(uplink_job) entry;
	struct uplink	*u;
	uint8_t		 sha[CACHE_SHA_LEN];
	char		 hex[CACHE_HEX_LEN + 1];
	char		 id[CACHE_ID_MAX + 1];
	char		 url[CACHE_URL_MAX + 1];
	uint64_t	 size;
	enum job_state	 state;
	struct cache_writer *w;
	int		 primed;
	struct uplink_chan *chan;
	struct event	*ev;
	struct event	*pev;		/* deferred package_progress */
	uint64_t	 told;		/* verified prefix last reported */
	unsigned int	 fails;		/* no-progress attempts in a row */

	/* The attempt in flight: where it started and when (back-off). */
	uint64_t	 att_off;
	int64_t		 att_ms;	/* monotonic; 0 = no attempt */

	/* The range in flight. */
	uint64_t	 req_off;
	uint64_t	 req_end;	/* inclusive */
	uint64_t	 skip;		/* body bytes to drop (a 200) */
	uint64_t	 expect_end;	/* writer offset when it is all in */
	char		 why[256];
};
TAILQ_HEAD(uplink_jobs, uplink_job);

struct uplink {
	struct event_base *base;
	sqlite3		*db;
	struct cache	*cache;
	struct uplink_config cfg;	/* strings below are owned copies */
	char		*base_url;
	char		*ca_file;
	char		*gateway_id;
	struct uplink_cb cb;
	void		*arg;
	int		 started;

	struct uplink_http *http;
	struct uplink_outbox *outbox;

	/* Polling. */
	struct uplink_chan *mchan;
	struct event	*start_ev;
	struct event	*poll_ev;
	int		 poll_again;
	unsigned int	 poll_fails;
	uint8_t		*mbody;		/* manifest.json being read */
	size_t		 mlen;
	size_t		 mcap;		/* mbody holds mcap + 1 bytes */
	uint8_t		 msig[SIG_MAX];	/* manifest.json.sig, read first */
	size_t		 msiglen;
	int		 have_last;
	int64_t		 last_serial;
	uint8_t		 last_sha[CACHE_SHA_LEN];
	uint8_t		 last_sig[SIG_MAX];	/* with last_sha, once */
	size_t		 last_siglen;		/* seen again; 0 = none */

	/* Downloads. */
	struct uplink_jobs jobs;

	/* Reports. */
	struct uplink_chan *rchan;
	struct event	*report_ev;
	struct event	*retry_ev;
	struct event	*flush_ev;
	int		 flush_again;
	unsigned int	 report_fails;
	int64_t		 report_next;	/* monotonic s; no PUT before */
	int64_t		 report_batch;
	unsigned int	 report_lines;
	int64_t		 committed_batch;

	struct uplink_stats stats;
	uint64_t	 status_errors;
};

static void	 poll_start(struct uplink *);
static void	 jobs_schedule(struct uplink *);
static void	 report_try(struct uplink *, int);

static int64_t
mono_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec);
}

static int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
set_error(struct uplink *u, const char *fmt, ...)
    __attribute__((__format__(__printf__, 2, 3)));

static void
set_error(struct uplink *u, const char *fmt, ...)
{
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(u->stats.last_error, sizeof(u->stats.last_error), fmt, ap);
	va_end(ap);
}

static int
valid_gateway_id(const char *s)
{
	size_t		 i, n = strlen(s);

	if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return (0);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-'))
			return (0);
	}
	return (1);
}

/* ------------------------------------------------------------------ */
/* Manifests                                                           */

static void
manifest_reject(struct uplink *u, const char *why)
{
	u->stats.manifest_rejects++;
	set_error(u, "manifest rejected: %s", why);
	up_logf(UP_LOG_WARN, "uplink: manifest rejected, nothing changed: %s",
	    why);
}

/*
 * Checks a signed manifest whole.  Returns the parsed manifest or NULL
 * with cause; changes nothing.
 */
static struct uplink_manifest *
manifest_check(struct uplink *u, const uint8_t *body, size_t len,
    const uint8_t *sig, size_t siglen, char **cause)
{
	struct uplink_manifest *mf;
	struct up_offer	 o;
	uint8_t		 desc[1024];
	char		*why = NULL;
	size_t		 i;
	int		 n;

	if (cache_sig_verify(u->cfg.cloud_key, body, len, sig, siglen,
	    &why) != 0) {
		if (asprintf(cause, "manifest.json.sig: %s", why != NULL ?
		    why : "signature does not verify") == -1)
			*cause = NULL;
		free(why);
		return (NULL);
	}
	if ((mf = uplink_manifest_parse((const char *)body, len, cause)) ==
	    NULL)
		return (NULL);
	for (i = 0; i < mf->npkgs; i++) {
		const struct cache_pkg *p = &mf->pkgs[i];

		if (uplink_pkg_offer(p, &o) != 0 ||
		    (n = up_desc_encode(&o, desc, sizeof(desc))) < 0) {
			if (asprintf(cause, "package '%s': cannot encode its "
			    "UP descriptor", p->id) == -1)
				*cause = NULL;
			goto fail;
		}
		if (cache_sig_verify(u->cfg.cloud_key, desc, (size_t)n,
		    p->sig, p->sig_len, &why) != 0) {
			if (asprintf(cause, "package '%s': up_sig: %s", p->id,
			    why != NULL ? why : "does not verify") == -1)
				*cause = NULL;
			free(why);
			goto fail;
		}
	}
	return (mf);
fail:
	uplink_manifest_free(mf);
	return (NULL);
}

/*
 * The chunk lists go with the package table.  A list that cannot be
 * stored only costs cut-through for that package (it then waits for its
 * whole-file hash), so it is logged, not fatal.
 */
static void
manifest_store_chunks(struct uplink *u, const struct uplink_manifest *mf)
{
	const struct uplink_chunks *ch;
	char		*cause = NULL;
	size_t		 i;

	if (mf->chunks == NULL)
		return;
	for (i = 0; i < mf->npkgs; i++) {
		ch = &mf->chunks[i];
		if (ch->n == 0)
			continue;
		if (cache_chunks_put(u->cache, mf->pkgs[i].sha256,
		    mf->pkgs[i].size, ch->chunk_size, ch->sha, ch->n,
		    &cause) != 0) {
			up_logf(UP_LOG_WARN, "uplink: package '%s': cannot "
			    "store its chunk list: %s", mf->pkgs[i].id,
			    cause != NULL ? cause : "?");
			free(cause);
			cause = NULL;
		}
	}
	cache_chunks_prune(u->cache);
}

/* cache/'s package table from a checked manifest; 0 or -1 (logged). */
static int
manifest_store_pkgs(struct uplink *u, const struct uplink_manifest *mf)
{
	char		*cause = NULL;

	if (cache_pkg_replace(u->cache, mf->pkgs, mf->npkgs, &cause) == 0) {
		manifest_store_chunks(u, mf);
		return (0);
	}
	set_error(u, "cannot store the manifest's packages: %s",
	    cause != NULL ? cause : "?");
	up_logf(UP_LOG_WARN, "uplink: cannot store the packages of manifest "
	    "serial %" PRId64 ": %s", mf->serial, cause != NULL ? cause : "?");
	free(cause);
	return (-1);
}

/* A manifest and its signature arrived from the cloud. */
static void
manifest_consider(struct uplink *u, const uint8_t *body, size_t len,
    const uint8_t *sig, size_t siglen)
{
	struct uplink_manifest *mf;
	uint8_t		 sha[CACHE_SHA_LEN];
	char		*cause = NULL;
	char		 why[256];

	/*
	 * The bytes and the signature of the last manifest accepted, as
	 * most polls bring: nothing to verify or parse again.  Parsing
	 * costs a few times the manifest's size in memory for a moment,
	 * and a big package's manifest lists every chunk's hash
	 * (docs/benchmarks.md, "Memory").
	 */
	if (u->have_last && siglen > 0 && siglen == u->last_siglen &&
	    memcmp(sig, u->last_sig, siglen) == 0) {
		cache_sha256(body, len, sha);
		if (memcmp(sha, u->last_sha, CACHE_SHA_LEN) == 0)
			return;
	}
	if ((mf = manifest_check(u, body, len, sig, siglen, &cause)) ==
	    NULL) {
		manifest_reject(u, cause != NULL ? cause : "invalid");
		free(cause);
		return;
	}
	cache_sha256(body, len, sha);
	if (u->have_last && mf->serial < u->last_serial) {
		snprintf(why, sizeof(why), "serial %" PRId64 " is older than "
		    "the last accepted serial %" PRId64 " (a replayed "
		    "manifest?)", mf->serial, u->last_serial);
		manifest_reject(u, why);
		uplink_manifest_free(mf);
		return;
	}
	if (u->have_last && mf->serial == u->last_serial) {
		if (memcmp(sha, u->last_sha, CACHE_SHA_LEN) != 0) {
			snprintf(why, sizeof(why), "serial %" PRId64 " was "
			    "already accepted with other content",
			    mf->serial);
			manifest_reject(u, why);
		}
		else if (siglen <= sizeof(u->last_sig)) {
			/* Unchanged: nothing to do, nor next time. */
			memcpy(u->last_sig, sig, siglen);
			u->last_siglen = siglen;
		}
		uplink_manifest_free(mf);
		return;
	}

	/*
	 * Accepted.  Packages first: if that fails nothing else changed
	 * and the next poll tries again.  Then the replay guard.
	 */
	if (manifest_store_pkgs(u, mf) != 0) {
		uplink_manifest_free(mf);
		return;
	}
	if (uplink__store_put(u->db, mf->serial, sha, body, len, sig,
	    siglen) != 0) {
		set_error(u, "cannot store the manifest: %s",
		    sqlite3_errmsg(u->db));
		up_logf(UP_LOG_WARN, "uplink: cannot store manifest serial "
		    "%" PRId64 ": %s", mf->serial, sqlite3_errmsg(u->db));
		uplink_manifest_free(mf);
		return;
	}
	u->have_last = 1;
	u->last_serial = mf->serial;
	memcpy(u->last_sha, sha, CACHE_SHA_LEN);
	u->last_siglen = 0;
	if (siglen <= sizeof(u->last_sig)) {
		memcpy(u->last_sig, sig, siglen);
		u->last_siglen = siglen;
	}
	u->stats.manifests++;
	up_logf(UP_LOG_INFO, "uplink: manifest serial %" PRId64 " accepted "
	    "(%zu package(s), %zu deployment(s))", mf->serial, mf->npkgs,
	    mf->ndeps);
	if (u->cfg.commit != NULL && u->cfg.commit(u->cfg.commit_arg) != 0)
		up_logf(UP_LOG_WARN, "uplink: commit after manifest serial "
		    "%" PRId64 " failed", mf->serial);
	if (u->cb.manifest != NULL)
		u->cb.manifest(u->arg, mf);
	uplink_manifest_free(mf);
}

static void
poll_schedule(struct uplink *u, int failed)
{
	struct timeval	 tv = { 0, 0 };
	unsigned int	 s = u->cfg.poll_interval_s, r;

	if (failed) {
		u->poll_fails++;
		r = POLL_RETRY_MIN_S << (u->poll_fails < 8 ?
		    u->poll_fails - 1 : 7);
		if (r < s)
			s = r;
	} else
		u->poll_fails = 0;
	/* A poll asked for meanwhile (uplink_poll_now) runs at once. */
	tv.tv_sec = u->poll_again ? 0 : s;
	evtimer_add(u->poll_ev, &tv);
}

static void
poll_failed(struct uplink *u, const char *fmt, ...)
    __attribute__((__format__(__printf__, 2, 3)));

static void
poll_failed(struct uplink *u, const char *fmt, ...)
{
	va_list		 ap;
	char		 why[300];

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	set_error(u, "manifest poll: %s", why);
	up_logf(UP_LOG_WARN, "uplink: manifest poll failed: %s", why);
	free(u->mbody);
	u->mbody = NULL;
	u->mlen = u->mcap = 0;
	poll_schedule(u, 1);
}

/*
 * The poll fetches manifest.json.sig first (small), then manifest.json,
 * streamed into one buffer sized by its Content-Length: the manifest is
 * held once, not as the channel's buffer, a contiguous copy of it and a
 * copy of that (a big package's manifest is tens of KiB; the daemon's
 * memory, docs/benchmarks.md "Memory").
 */
static const struct uplink_hops manifest_ops;

static void
sig_done(void *arg, int code, const uint8_t *body, size_t len,
    const char *err)
{
	struct uplink	*u = arg;
	struct uplink_hreq r;
	char		*cause = NULL;

	if (err != NULL) {
		poll_failed(u, "manifest.json.sig: %s", err);
		return;
	}
	if (code != 200) {
		u->status_errors++;
		poll_failed(u, "manifest.json.sig: HTTP %d", code);
		return;
	}
	if (len > sizeof(u->msig)) {
		poll_failed(u, "manifest.json.sig: larger than %zu bytes",
		    sizeof(u->msig));
		return;
	}
	memcpy(u->msig, body, len);
	u->msiglen = len;

	memset(&r, 0, sizeof(r));
	r.method = UPLINK_GET;
	r.path = "manifest.json";
	r.max_body = UPLINK_MANIFEST_MAX;
	if (uplink__chan_request(u->mchan, &r, &manifest_ops, u, &cause) !=
	    0) {
		poll_failed(u, "manifest.json: %s", cause);
		free(cause);
	}
}

static const struct uplink_hops sig_ops = { NULL, NULL, sig_done };

/* manifest.json's head: its buffer, the size it announces if any. */
static const char *
manifest_head(void *arg, int code, struct evkeyvalq *hdr)
{
	struct uplink	*u = arg;
	const char	*cl;
	unsigned long long n;
	char		*end;

	free(u->mbody);
	u->mbody = NULL;
	u->mlen = u->mcap = 0;
	if (code < 200 || code > 299)
		return (NULL);
	cl = evhttp_find_header(hdr, "Content-Length");
	if (cl != NULL) {
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno != 0 || end == cl || *end != '\0' ||
		    n > UPLINK_MANIFEST_MAX)
			return ("manifest too large or bad Content-Length");
		u->mcap = (size_t)n;
	} else
		u->mcap = 64 * 1024;
	if ((u->mbody = malloc(u->mcap + 1)) == NULL) {
		u->mcap = 0;
		return ("out of memory");
	}
	return (NULL);
}

static const char *
manifest_body(void *arg, const uint8_t *p, size_t n)
{
	struct uplink	*u = arg;
	uint8_t		*nb;
	size_t		 cap;

	if (n > UPLINK_MANIFEST_MAX - u->mlen)
		return ("response too large");
	if (u->mlen + n > u->mcap) {
		/* No Content-Length (chunked), or it was wrong. */
		cap = u->mcap * 2 > u->mlen + n ? u->mcap * 2 : u->mlen + n;
		if (cap > UPLINK_MANIFEST_MAX)
			cap = UPLINK_MANIFEST_MAX;
		if ((nb = realloc(u->mbody, cap + 1)) == NULL)
			return ("out of memory");
		u->mbody = nb;
		u->mcap = cap;
	}
	memcpy(u->mbody + u->mlen, p, n);
	u->mlen += n;
	return (NULL);
}

static void
manifest_done(void *arg, int code, const uint8_t *body, size_t len,
    const char *err)
{
	struct uplink	*u = arg;

	(void)body;
	(void)len;
	if (err != NULL) {
		poll_failed(u, "manifest.json: %s", err);
		return;
	}
	if (code != 200 || u->mbody == NULL) {
		u->status_errors++;
		poll_failed(u, "manifest.json: HTTP %d", code);
		return;
	}
	u->mbody[u->mlen] = '\0';
	manifest_consider(u, u->mbody, u->mlen, u->msig, u->msiglen);
	free(u->mbody);
	u->mbody = NULL;
	u->mlen = u->mcap = 0;
	poll_schedule(u, 0);
}

static const struct uplink_hops manifest_ops = {
	manifest_head, manifest_body, manifest_done
};

static void
poll_start(struct uplink *u)
{
	struct uplink_hreq r;
	char		*cause = NULL;

	if (uplink__chan_busy(u->mchan)) {
		u->poll_again = 1;
		return;
	}
	u->poll_again = 0;
	evtimer_del(u->poll_ev);
	memset(&r, 0, sizeof(r));
	r.method = UPLINK_GET;
	r.path = "manifest.json.sig";
	r.max_body = SIG_MAX;
	if (uplink__chan_request(u->mchan, &r, &sig_ops, u, &cause) != 0) {
		poll_failed(u, "manifest.json.sig: %s", cause);
		free(cause);
	}
}

static void
poll_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	poll_start(arg);
}

/* First thing after uplink_start: the manifest kept from last time. */
static void
start_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct uplink	*u = arg;
	struct uplink_stored st;
	struct uplink_manifest *mf;
	char		*cause = NULL;

	if (uplink__store_get(u->db, &st) == 1) {
		mf = manifest_check(u, st.body, st.body_len, st.sig,
		    st.sig_len, &cause);
		if (mf == NULL) {
			up_logf(UP_LOG_WARN, "uplink: the stored manifest "
			    "(serial %" PRId64 ") no longer checks, ignored: "
			    "%s", st.serial, cause != NULL ? cause : "?");
			free(cause);
		} else {
			up_logf(UP_LOG_INFO, "uplink: using stored manifest "
			    "serial %" PRId64 " until the cloud answers",
			    mf->serial);
			if (manifest_store_pkgs(u, mf) == 0 &&
			    u->cb.manifest != NULL)
				u->cb.manifest(u->arg, mf);
			uplink_manifest_free(mf);
		}
		uplink__stored_clear(&st);
	}
	poll_start(u);
}

/* ------------------------------------------------------------------ */
/* Downloads                                                           */

static struct uplink_job *
job_find(struct uplink *u, const uint8_t sha[CACHE_SHA_LEN])
{
	struct uplink_job *j;

	TAILQ_FOREACH(j, &u->jobs, entry)
		if (memcmp(j->sha, sha, CACHE_SHA_LEN) == 0)
			return (j);
	return (NULL);
}

static void
job_free(struct uplink_job *j)
{
	TAILQ_REMOVE(&j->u->jobs, j, entry);
	cache_writer_close(j->w);	/* keeps the partial file */
	uplink__chan_free(j->chan);
	event_free(j->ev);
	if (j->pev != NULL)
		event_free(j->pev);
	free(j);
}

static int
job_active(const struct uplink_job *j)
{
	return (j->state == J_OPEN || j->state == J_PRIME ||
	    j->state == J_FETCH || j->state == J_HTTP);
}

static void
job_kick(struct uplink_job *j)
{
	event_active(j->ev, EV_TIMEOUT, 1);
}

/*
 * The verified prefix may have grown: tell the owner from a deferred
 * event (never from inside the HTTP body callback or a cache call), so
 * it may read the blob and call back into us.
 */
static void
job_progress(struct uplink_job *j)
{
	uint64_t	 v;

	if (j->u->cb.package_progress == NULL || j->pev == NULL ||
	    j->w == NULL)
		return;
	v = cache_writer_verified(j->u->cache, j->sha);
	if (v != UINT64_MAX && v > j->told)
		event_active(j->pev, EV_TIMEOUT, 1);
}

static void
job_pev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct uplink_job *j = arg;
	struct uplink	*u = j->u;
	uint8_t		 sha[CACHE_SHA_LEN];
	uint64_t	 v;

	v = cache_writer_verified(u->cache, j->sha);
	if (v == UINT64_MAX || v <= j->told || u->cb.package_progress == NULL)
		return;
	j->told = v;
	memcpy(sha, j->sha, CACHE_SHA_LEN);
	u->cb.package_progress(u->arg, sha, v);
}

static void
job_ready(struct uplink_job *j, int downloaded)
{
	struct uplink	*u = j->u;
	uint8_t		 sha[CACHE_SHA_LEN];

	memcpy(sha, j->sha, CACHE_SHA_LEN);
	if (downloaded) {
		u->stats.downloads_done++;
		up_logf(UP_LOG_INFO, "uplink: package '%s' downloaded and "
		    "verified (%" PRIu64 " bytes)", j->id, j->size);
	}
	job_free(j);
	jobs_schedule(u);
	if (u->cb.package_ready != NULL)
		u->cb.package_ready(u->arg, sha);
}

/*
 * A download attempt failed.  The back-off counts attempts in a row that
 * kept nothing: one that added bytes to the blob (a backhaul cutting
 * long transfers, a server closing idle connections) resets it, and the
 * next attempt starts RETRY_MIN_S after this one started, at once if it
 * ran longer than that.  So a link that drops every few hundred
 * kilobytes still delivers at its own rate, while a server that sends
 * nothing, or bytes that fail their chunk hash (cut back off the blob,
 * so no progress), is asked less and less often.
 */
static void
job_fail(struct uplink_job *j, const char *why)
{
	struct uplink	*u = j->u;
	struct timeval	 tv = { 0, 0 };
	uint8_t		 sha[CACHE_SHA_LEN];
	char		 msg[sizeof(j->why)];
	int64_t		 ms, ran;
	int		 progress;

	snprintf(msg, sizeof(msg), "%s", why);
	progress = j->att_ms != 0 && j->w != NULL &&
	    cache_writer_offset(j->w) > j->att_off;
	if (progress) {
		j->fails = 0;
		ran = mono_ms() - j->att_ms;
		ms = (int64_t)RETRY_MIN_S * 1000 - ran;
		if (ms < 0)
			ms = 0;
	} else {
		j->fails++;
		ms = (int64_t)RETRY_MIN_S * 1000 <<
		    (j->fails < 9 ? j->fails - 1 : 8);
		if (ms > (int64_t)RETRY_MAX_S * 1000)
			ms = (int64_t)RETRY_MAX_S * 1000;
	}
	j->att_ms = 0;
	set_error(u, "package '%s': %s", j->id, msg);
	up_logf(UP_LOG_WARN, "uplink: package '%s' (%.16s...): %s; %s, "
	    "retry in %" PRId64 ".%01" PRId64 "s", j->id, j->hex, msg,
	    progress ? "progress made" : "nothing kept", ms / 1000,
	    ms % 1000 / 100);
	/* The connection is gone anyway; the writer stays for resume. */
	uplink__chan_free(j->chan);
	j->chan = NULL;
	j->state = J_BACKOFF;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(j->ev, &tv);
	memcpy(sha, j->sha, CACHE_SHA_LEN);
	jobs_schedule(u);
	if (u->cb.package_failed != NULL)
		u->cb.package_failed(u->arg, sha, msg);
}

/* Content-Range: bytes FIRST-LAST/TOTAL (RFC 9110 §14.4). */
static int
parse_content_range(const char *s, uint64_t *first, uint64_t *last,
    uint64_t *total, int *total_known)
{
	char		*end;

	if (s == NULL || strncmp(s, "bytes ", 6) != 0)
		return (-1);
	s += 6;
	if (*s < '0' || *s > '9')
		return (-1);
	*first = strtoull(s, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return (-1);
	*last = strtoull(end + 1, &end, 10);
	if (*end != '/' || *last < *first)
		return (-1);
	if (strcmp(end + 1, "*") == 0) {
		*total_known = 0;
		return (0);
	}
	if (end[1] < '0' || end[1] > '9')
		return (-1);
	*total = strtoull(end + 1, &end, 10);
	*total_known = 1;
	return (*end == '\0' ? 0 : -1);
}

static const char *
range_head(void *arg, int code, struct evkeyvalq *h)
{
	struct uplink_job *j = arg;
	uint64_t	 first, last, total = 0, clen;
	int		 known = 0;
	const char	*cl;
	char		*end;

	j->skip = 0;
	if (code == 206) {
		if (parse_content_range(evhttp_find_header(h,
		    "Content-Range"), &first, &last, &total, &known) != 0) {
			snprintf(j->why, sizeof(j->why), "HTTP 206 without a "
			    "valid Content-Range");
			return (j->why);
		}
		if (known && total != j->size) {
			snprintf(j->why, sizeof(j->why), "the server's file "
			    "has %" PRIu64 " bytes, the manifest says %"
			    PRIu64, total, j->size);
			return (j->why);
		}
		if (first != j->req_off || last > j->req_end) {
			snprintf(j->why, sizeof(j->why), "the server sent "
			    "bytes %" PRIu64 "-%" PRIu64 ", not the %" PRIu64
			    "-%" PRIu64 " asked for", first, last, j->req_off,
			    j->req_end);
			return (j->why);
		}
		j->expect_end = last + 1;
		return (NULL);
	}
	if (code == 200) {
		/* Range ignored: the whole file comes, skip what we hold. */
		if ((cl = evhttp_find_header(h, "Content-Length")) != NULL) {
			clen = strtoull(cl, &end, 10);
			if (*end == '\0' && clen != j->size) {
				snprintf(j->why, sizeof(j->why), "the "
				    "server's file has %" PRIu64 " bytes, the "
				    "manifest says %" PRIu64, clen, j->size);
				return (j->why);
			}
		}
		j->skip = j->req_off;
		j->expect_end = j->size;
		return (NULL);
	}
	if (code == 416)
		snprintf(j->why, sizeof(j->why), "HTTP 416: the server's "
		    "file is shorter than the manifest says");
	else
		snprintf(j->why, sizeof(j->why), "HTTP %d", code);
	j->u->status_errors++;
	return (j->why);
}

static const char *
range_body(void *arg, const uint8_t *p, size_t n)
{
	struct uplink_job *j = arg;
	uint64_t	 off, room;
	char		*cause = NULL;

	if (j->skip > 0) {
		if (j->skip >= n) {
			j->skip -= n;
			return (NULL);
		}
		p += j->skip;
		n -= (size_t)j->skip;
		j->skip = 0;
	}
	off = cache_writer_offset(j->w);
	room = j->expect_end > off ? j->expect_end - off : 0;
	if (n > room) {
		snprintf(j->why, sizeof(j->why), "the server sent more "
		    "bytes than it announced");
		return (j->why);
	}
	if (cache_writer_write(j->w, p, n, &cause) != 0) {
		snprintf(j->why, sizeof(j->why), "cache: %s",
		    cause != NULL ? cause : "write failed");
		free(cause);
		/*
		 * A bad chunk was cut off (the writer is back at the
		 * verified prefix); the rest of this answer is dropped and
		 * the job retries from there.
		 */
		j->expect_end = cache_writer_offset(j->w);
		return (j->why);
	}
	job_progress(j);
	return (NULL);
}

static void
range_done(void *arg, int code, const uint8_t *body, size_t len,
    const char *err)
{
	struct uplink_job *j = arg;
	uint64_t	 off;

	if (err != NULL) {
		job_fail(j, err);
		return;
	}
	off = cache_writer_offset(j->w);
	if (off != j->expect_end) {
		snprintf(j->why, sizeof(j->why), "short answer: %" PRIu64
		    " bytes missing", j->expect_end - off);
		job_fail(j, j->why);
		return;
	}
	j->fails = 0;
	j->att_ms = 0;
	j->state = J_FETCH;
	job_kick(j);
}

static const struct uplink_hops range_ops = {
	range_head, range_body, range_done
};

static void
job_step(struct uplink_job *j)
{
	struct uplink	*u = j->u;
	struct uplink_hreq r;
	struct cache_pkg pkg;
	struct cache_entry e;
	char		*cause = NULL;
	uint64_t	 off;
	int		 rc;

	switch (j->state) {
	case J_NOTIFY:
		job_ready(j, 0);
		return;
	case J_BACKOFF:
		/* Retry time: is the package still wanted and where? */
		if (cache_pkg_by_sha(u->cache, j->sha, &pkg) != 0) {
			up_logf(UP_LOG_INFO, "uplink: package %.16s... left "
			    "the manifest; download dropped", j->hex);
			job_free(j);
			jobs_schedule(u);
			return;
		}
		memcpy(j->url, pkg.url, sizeof(j->url));
		if (pkg.size != j->size) {
			cache_writer_close(j->w);
			j->w = NULL;
			j->size = pkg.size;
		}
		j->state = J_QUEUED;
		jobs_schedule(u);
		return;
	case J_QUEUED:
	case J_HTTP:
		return;
	case J_OPEN:
		if (j->w == NULL) {
			if (cache_lookup(u->cache, j->sha, &e) == 0 &&
			    e.state == CACHE_COMPLETE) {
				job_ready(j, 0);
				return;
			}
			j->w = cache_writer_open(u->cache, j->sha, j->size,
			    &cause);
			if (j->w == NULL) {
				snprintf(j->why, sizeof(j->why), "cache: %s",
				    cause != NULL ? cause : "cannot open");
				free(cause);
				job_fail(j, j->why);
				return;
			}
			j->primed = 0;
		}
		j->state = j->primed ? J_FETCH : J_PRIME;
		job_kick(j);
		return;
	case J_PRIME:
		/* Re-hash what a previous run left, a step per turn. */
		rc = cache_writer_prime(j->w, PRIME_STEP, &cause);
		if (rc >= 0)
			job_progress(j);	/* chunks re-verified */
		if (rc == 1) {
			job_kick(j);
			return;
		}
		if (rc < 0) {
			snprintf(j->why, sizeof(j->why), "cache: %s",
			    cause != NULL ? cause : "cannot resume");
			free(cause);
			cache_writer_close(j->w);
			j->w = NULL;
			job_fail(j, j->why);
			return;
		}
		j->primed = 1;
		if ((off = cache_writer_offset(j->w)) > 0)
			up_logf(UP_LOG_INFO, "uplink: package '%s': resuming "
			    "at byte %" PRIu64 " of %" PRIu64, j->id, off,
			    j->size);
		j->state = J_FETCH;
		/* FALLTHROUGH */
	case J_FETCH:
		off = cache_writer_offset(j->w);
		if (off >= j->size) {
			rc = cache_writer_finish(j->w, &cause);
			j->w = NULL;
			if (rc != 0) {
				snprintf(j->why, sizeof(j->why), "%s",
				    cause != NULL ? cause : "verification "
				    "failed");
				free(cause);
				job_fail(j, j->why);
				return;
			}
			job_ready(j, 1);
			return;
		}
		if (j->chan == NULL &&
		    (j->chan = uplink__chan_new(u->http, j->hex)) == NULL) {
			job_fail(j, "out of memory");
			return;
		}
		memset(&r, 0, sizeof(r));
		r.method = UPLINK_GET;
		r.path = j->url;
		r.range = 1;
		r.range_off = off;
		r.range_end = off + u->cfg.range_bytes - 1;
		if (r.range_end > j->size - 1)
			r.range_end = j->size - 1;
		/* A server ignoring Range sends it all (range_head). */
		r.max_body = (size_t)j->size;
		j->req_off = r.range_off;
		j->req_end = r.range_end;
		j->att_off = off;
		j->att_ms = mono_ms();
		j->state = J_HTTP;
		if (uplink__chan_request(j->chan, &r, &range_ops, j,
		    &cause) != 0) {
			snprintf(j->why, sizeof(j->why), "%s",
			    cause != NULL ? cause : "request failed");
			free(cause);
			job_fail(j, j->why);
		}
		return;
	}
}

static void
job_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	job_step(arg);
}

static void
jobs_schedule(struct uplink *u)
{
	struct uplink_job *j;
	int		 n = 0;

	TAILQ_FOREACH(j, &u->jobs, entry)
		if (job_active(j))
			n++;
	TAILQ_FOREACH(j, &u->jobs, entry) {
		if (n >= UPLINK_MAX_ACTIVE)
			break;
		if (j->state == J_QUEUED) {
			j->state = J_OPEN;
			job_kick(j);
			n++;
		}
	}
}

int
uplink_fetch(struct uplink *u, const uint8_t sha[CACHE_SHA_LEN])
{
	struct uplink_job *j;
	struct cache_pkg pkg;
	struct cache_entry e;

	if (cache_pkg_by_sha(u->cache, sha, &pkg) != 0)
		return (-1);
	if (job_find(u, sha) != NULL)
		return (0);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return (-1);
	if ((j->ev = evtimer_new(u->base, job_ev_cb, j)) == NULL) {
		free(j);
		return (-1);
	}
	if ((j->pev = evtimer_new(u->base, job_pev_cb, j)) == NULL) {
		event_free(j->ev);
		free(j);
		return (-1);
	}
	j->u = u;
	memcpy(j->sha, sha, CACHE_SHA_LEN);
	cache_hex(sha, j->hex);
	memcpy(j->id, pkg.id, sizeof(j->id));
	memcpy(j->url, pkg.url, sizeof(j->url));
	j->size = pkg.size;
	TAILQ_INSERT_TAIL(&u->jobs, j, entry);
	if (cache_lookup(u->cache, sha, &e) == 0 &&
	    e.state == CACHE_COMPLETE) {
		j->state = J_NOTIFY;
		job_kick(j);
		return (0);
	}
	up_logf(UP_LOG_INFO, "uplink: package '%s' (%" PRIu64 " bytes) "
	    "queued for download", j->id, j->size);
	j->state = J_QUEUED;
	jobs_schedule(u);
	return (0);
}

/* ------------------------------------------------------------------ */
/* Reports                                                             */

int
uplink_report(struct uplink *u, const char *json_line)
{
	char		*cause = NULL;

	if (uplink__outbox_add(u->outbox, json_line, &cause) < 0) {
		set_error(u, "%s", cause != NULL ? cause : "report failed");
		up_logf(UP_LOG_WARN, "uplink: %s",
		    cause != NULL ? cause : "report failed");
		free(cause);
		return (-1);
	}
	return (0);
}

static void
report_failed(struct uplink *u, const char *why)
{
	struct timeval	 tv = { 0, 0 };
	unsigned int	 s;

	u->report_fails++;
	s = 1U << (u->report_fails < 7 ? u->report_fails : 6);
	if (s > REPORT_RETRY_MAX_S)
		s = REPORT_RETRY_MAX_S;
	u->report_next = mono_s() + s;
	set_error(u, "reports: %s", why);
	up_logf(UP_LOG_WARN, "uplink: report batch %" PRId64 " not "
	    "delivered: %s; retry in %us", u->report_batch, why, s);
	tv.tv_sec = s;
	evtimer_add(u->retry_ev, &tv);
}

static void
report_done(void *arg, int code, const uint8_t *body, size_t len,
    const char *err)
{
	struct uplink	*u = arg;
	char		 why[64];

	if (err != NULL) {
		report_failed(u, err);
	} else if (code != 200 && code != 201 && code != 204) {
		u->status_errors++;
		snprintf(why, sizeof(why), "HTTP %d", code);
		report_failed(u, why);
	} else {
		if (uplink__outbox_ack(u->outbox, u->report_batch) != 0)
			up_logf(UP_LOG_WARN, "uplink: cannot remove report "
			    "batch %" PRId64 ": %s", u->report_batch,
			    sqlite3_errmsg(u->db));
		u->stats.reports_acked += u->report_lines;
		u->report_fails = 0;
		u->report_next = 0;
		up_logf(UP_LOG_DEBUG, "uplink: report batch %" PRId64
		    " stored (%u line(s))", u->report_batch, u->report_lines);
		/* More waiting (after an outage): go on at once. */
		if (uplink__outbox_pending(u->outbox) > 0)
			u->flush_again = 1;
	}
	u->report_batch = 0;
	if (u->flush_again) {
		u->flush_again = 0;
		event_active(u->flush_ev, EV_TIMEOUT, 1);
	}
}

static const struct uplink_hops report_ops = { NULL, NULL, report_done };

static void
report_try(struct uplink *u, int force)
{
	struct uplink_hreq r;
	char		 path[128], *body, *cause = NULL;
	size_t		 len = 0;
	unsigned int	 n = 0;
	int64_t		 batch;
	int		 fresh;

	if (!u->started)
		return;
	if (uplink__chan_busy(u->rchan)) {
		if (force)
			u->flush_again = 1;
		return;
	}
	if (!force && mono_s() < u->report_next)
		return;
	if ((batch = uplink__outbox_batch(u->outbox, u->cfg.report_batch_max,
	    &fresh)) <= 0) {
		if (batch < 0)
			up_logf(UP_LOG_WARN, "uplink: outbox: %s",
			    sqlite3_errmsg(u->db));
		return;
	}
	u->report_batch = batch;
	/* The batch's name and lines must be durable before its PUT. */
	if (batch != u->committed_batch && u->cfg.commit != NULL) {
		if (u->cfg.commit(u->cfg.commit_arg) != 0) {
			report_failed(u, "cannot commit the batch");
			return;
		}
	}
	u->committed_batch = batch;
	if ((body = uplink__outbox_body(u->outbox, batch, &len, &n)) ==
	    NULL) {
		report_failed(u, "cannot read the outbox");
		return;
	}
	if (n == 0) {
		/* Nothing left in it (cannot happen, but never loop). */
		free(body);
		uplink__outbox_ack(u->outbox, batch);
		return;
	}
	u->report_lines = n;
	snprintf(path, sizeof(path), "reports/%s/%" PRId64 ".jsonl",
	    u->gateway_id, batch);
	memset(&r, 0, sizeof(r));
	r.method = UPLINK_PUT;
	r.path = path;
	r.body = body;
	r.body_len = len;
	r.content_type = "application/x-ndjson";
	r.max_body = 65536;
	if (uplink__chan_request(u->rchan, &r, &report_ops, u, &cause) != 0) {
		report_failed(u, cause != NULL ? cause : "request failed");
		free(cause);
	}
	free(body);
}

static void
report_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	report_try(arg, 0);
}

static void
flush_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	report_try(arg, 1);
}

void
uplink_flush(struct uplink *u)
{
	event_active(u->flush_ev, EV_TIMEOUT, 1);
}

/* ------------------------------------------------------------------ */
/* The client                                                          */

struct uplink *
uplink_new(struct event_base *base, sqlite3 *db, struct cache *cache,
    const struct uplink_config *cfg, const struct uplink_cb *cb, void *arg,
    char **cause)
{
	struct uplink	*u;
	struct uplink_stored st;

	if (cfg->base_url == NULL || cfg->ca_file == NULL ||
	    cfg->gateway_id == NULL || cfg->cloud_key == NULL) {
		*cause = strdup("uplink: url, ca_file, gateway id and cloud "
		    "key are required");
		return (NULL);
	}
	if (!valid_gateway_id(cfg->gateway_id)) {
		if (asprintf(cause, "gateway id '%s': 1 to 64 of A-Z a-z "
		    "0-9 . _ -", cfg->gateway_id) == -1)
			*cause = NULL;
		return (NULL);
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		*cause = strdup("out of memory");
		return (NULL);
	}
	TAILQ_INIT(&u->jobs);
	u->base = base;
	u->db = db;
	u->cache = cache;
	u->cfg = *cfg;
	if (cb != NULL)
		u->cb = *cb;
	u->arg = arg;
	if ((u->base_url = strdup(cfg->base_url)) == NULL ||
	    (u->ca_file = strdup(cfg->ca_file)) == NULL ||
	    (u->gateway_id = strdup(cfg->gateway_id)) == NULL) {
		*cause = strdup("out of memory");
		goto fail;
	}
	u->cfg.base_url = u->base_url;
	u->cfg.ca_file = u->ca_file;
	u->cfg.gateway_id = u->gateway_id;
	if (u->cfg.poll_interval_s == 0)
		u->cfg.poll_interval_s = 60;
	if (u->cfg.report_interval_s == 0)
		u->cfg.report_interval_s = 5;
	if (u->cfg.report_batch_max == 0)
		u->cfg.report_batch_max = 100;
	if (u->cfg.range_bytes == 0)
		u->cfg.range_bytes = 1024 * 1024;
	if (u->cfg.timeout_s == 0)
		u->cfg.timeout_s = 30;

	if (uplink__store_open(db, cause) != 0)
		goto fail;
	if ((u->outbox = uplink__outbox_open(db, u->gateway_id, cause)) ==
	    NULL)
		goto fail;
	if ((u->http = uplink__http_new(base, u->base_url, u->ca_file,
	    u->cfg.timeout_s, cause)) == NULL)
		goto fail;
	if ((u->mchan = uplink__chan_new(u->http, "manifest")) == NULL ||
	    (u->rchan = uplink__chan_new(u->http, "reports")) == NULL ||
	    (u->start_ev = evtimer_new(base, start_ev_cb, u)) == NULL ||
	    (u->poll_ev = evtimer_new(base, poll_ev_cb, u)) == NULL ||
	    (u->report_ev = event_new(base, -1, EV_PERSIST, report_ev_cb,
	    u)) == NULL ||
	    (u->retry_ev = evtimer_new(base, report_ev_cb, u)) == NULL ||
	    (u->flush_ev = evtimer_new(base, flush_ev_cb, u)) == NULL) {
		*cause = strdup("out of memory");
		goto fail;
	}

	/* The replay guard holds from the start, before any poll. */
	switch (uplink__store_get(db, &st)) {
	case 1:
		u->have_last = 1;
		u->last_serial = st.serial;
		memcpy(u->last_sha, st.sha256, CACHE_SHA_LEN);
		uplink__stored_clear(&st);
		break;
	case 0:
		break;
	default:
		if (asprintf(cause, "uplink: cannot read the last manifest: "
		    "%s", sqlite3_errmsg(db)) == -1)
			*cause = NULL;
		goto fail;
	}
	return (u);
fail:
	uplink_free(u);
	return (NULL);
}

int
uplink_start(struct uplink *u)
{
	struct timeval	 tv = { 0, 0 };

	if (u->started)
		return (0);
	u->started = 1;
	evtimer_add(u->start_ev, &tv);
	tv.tv_sec = u->cfg.report_interval_s;
	evtimer_add(u->report_ev, &tv);
	return (0);
}

void
uplink_free(struct uplink *u)
{
	if (u == NULL)
		return;
	while (!TAILQ_EMPTY(&u->jobs))
		job_free(TAILQ_FIRST(&u->jobs));
	uplink__chan_free(u->mchan);
	uplink__chan_free(u->rchan);
	if (u->start_ev != NULL)
		event_free(u->start_ev);
	if (u->poll_ev != NULL)
		event_free(u->poll_ev);
	if (u->report_ev != NULL)
		event_free(u->report_ev);
	if (u->retry_ev != NULL)
		event_free(u->retry_ev);
	if (u->flush_ev != NULL)
		event_free(u->flush_ev);
	uplink__http_free(u->http);
	uplink__outbox_free(u->outbox);
	free(u->mbody);
	free(u->base_url);
	free(u->ca_file);
	free(u->gateway_id);
	free(u);
}

void
uplink_poll_now(struct uplink *u)
{
	struct timeval	 tv = { 0, 0 };

	if (!u->started)
		return;
	/* If a poll is under way, poll_schedule() starts the next at once. */
	u->poll_again = 1;
	if (!uplink__chan_busy(u->mchan))
		evtimer_add(u->poll_ev, &tv);
}

void
uplink_stats(struct uplink *u, struct uplink_stats *s)
{
	int64_t		 n;

	*s = u->stats;
	s->bytes_down = uplink__http_bytes_down(u->http);
	s->http_errors = uplink__http_errors(u->http) + u->status_errors;
	n = uplink__outbox_pending(u->outbox);
	s->reports_pending = n > 0 ? (uint64_t)n : 0;
}
