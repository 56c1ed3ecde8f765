/*
 * uplink.h: the cloud side, the one public header of uplink/.
 *
 * The cloud is an HTTPS object store (docs/manifest.md):
 *   GET  <base>/manifest.json, <base>/manifest.json.sig  (polled)
 *   GET  <base>/<package url>   with Range, about 1 MiB at a time (resume)
 *   PUT  <base>/reports/<gateway-id>/<sequence>.jsonl     (idempotent)
 * over libevent's HTTP client on bufferevent_openssl, with the peer
 * certificate verified against a configured CA and the host name.
 *
 * A manifest is used only after its Ed25519 signature verifies with the
 * configured cloud key and its serial is not older than the last accepted
 * one; then its packages replace cache/'s package table and the owner's
 * manifest callback runs.  Reports wait in an SQLite outbox (table
 * uplink_outbox) until the server acknowledged the PUT of their batch; an
 * outage of any length loses none and a retried PUT never duplicates one
 * (same name, same bytes).
 *
 * Daemon conventions: 0/-1 and `char **cause' (caller frees).
 */
#ifndef UPLINK_H
#define UPLINK_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "up.h"
#include "cache.h"

struct event_base;
struct uplink;

/* ------------------------------------------------------------------ */
/* uplink_manifest.c: parse and check a manifest (jansson)             */

#define UPLINK_MAX_PACKAGES	256
#define UPLINK_MAX_DEPLOYMENTS	64
#define UPLINK_MAX_DEP_PKGS	16
#define UPLINK_MAX_TAGS		16

struct uplink_deployment {
	char		 id[CACHE_ID_MAX + 1];
	size_t		 npkgs;
	char		 pkgs[UPLINK_MAX_DEP_PKGS][CACHE_ID_MAX + 1];
	/* Target selection; empty lists mean "any". */
	size_t		 nhw;
	char		 hw[CACHE_HW_MAX][CACHE_NAME_MAX + 1];
	size_t		 ntags;
	char		 tags[UPLINK_MAX_TAGS][CACHE_NAME_MAX + 1];
	/* The policy object as compact JSON, for the scheduler ("{}"). */
	char		*policy_json;
};

/*
 * A package's chunk list (docs/manifest.md, `chunk_size' and `chunks'):
 * SHA-256 of each chunk_size piece of the file, the last one shorter.
 * n == 0 when the package has none (it then cannot be forwarded before
 * its whole-file hash is checked).
 */
#define UPLINK_CHUNK_MIN	4096
#define UPLINK_CHUNK_MAX	(256U * 1024 * 1024)

struct uplink_chunks {
	uint32_t	 chunk_size;
	uint32_t	 n;
	uint8_t		*sha;		/* n * 32 bytes, owned */
};

struct uplink_manifest {
	int64_t		 serial;	/* strictly increasing */
	char		 issued[32];	/* RFC 3339, informational */
	size_t		 npkgs;
	struct cache_pkg *pkgs;
	struct uplink_chunks *chunks;	/* npkgs entries, parallel */
	size_t		 ndeps;
	struct uplink_deployment *deps;
};

/*
 * Parses manifest JSON (already signature-checked or not: parsing is
 * separate so it can be fuzzed).  Rejects, with a cause naming the item:
 * missing or mistyped fields, bad hex/base64, oversize strings, duplicate
 * package ids, deployments naming unknown packages, deltas without a
 * base version.  Returns an owned manifest or NULL.
 */
struct uplink_manifest *uplink_manifest_parse(const char *json, size_t len,
		    char **cause);
void		 uplink_manifest_free(struct uplink_manifest *);

/*
 * Fills the package-descriptor fields of an OFFER (component .. deps,
 * plus sig_alg/sig_len/sig) from a manifest package, exactly as the
 * publisher's tool does before it signs up_desc_encode() of it, so the
 * gateway's OFFERs and the cloud's signatures cannot drift apart.
 * block_size, nblocks and deadline_s are left 0 for the session to set.
 * Returns 0, or -1 if a size does not fit UP's u32 fields.
 */
int		 uplink_pkg_offer(const struct cache_pkg *, struct up_offer *);

/* Limits of the documents fetched from the cloud. */
#define UPLINK_MANIFEST_MAX	(4 * 1024 * 1024)	/* bytes */

/* ------------------------------------------------------------------ */
/* uplink.c: the client                                                */

struct uplink_config {
	const char	*base_url;	/* https://host[:port]/path */
	const char	*ca_file;	/* PEM bundle to verify the server */
	const char	*gateway_id;	/* [A-Za-z0-9._-]{1,64} */
	const struct cache_key *cloud_key;	/* borrowed */
	unsigned int	 poll_interval_s;	/* manifest polling */
	unsigned int	 report_interval_s;	/* batch period */
	unsigned int	 report_batch_max;	/* lines per PUT */
	uint32_t	 range_bytes;	/* bytes per GET Range */
	unsigned int	 timeout_s;	/* per HTTP request */
	/*
	 * Optional: makes the caller's open write transaction durable
	 * (bridge/db.c: db_commit_now).  Called, when set, after a report
	 * batch is formed and before its PUT, and after a manifest is
	 * accepted (so the replay guard survives a crash).  Returns 0 or
	 * -1 (then the PUT waits for the next try).  With NULL, writes are
	 * taken as durable when made (autocommit).
	 */
	int		(*commit)(void *commit_arg);
	void		*commit_arg;
};

/*
 * Callbacks run from the event loop, never from inside an uplink_*()
 * call of the owner's; they may call uplink_fetch/report/flush/poll_now
 * but must not uplink_free().
 */
struct uplink_cb {
	/*
	 * A verified manifest (borrowed for the call), already in cache/'s
	 * package table.  Runs once after uplink_start() with the last
	 * accepted manifest kept in SQLite, if any (so a gateway works
	 * offline after a restart), and then once per newly accepted serial.
	 * A poll that finds the same serial and bytes does not call it.
	 */
	void	(*manifest)(void *arg, const struct uplink_manifest *);
	/* A package is complete and verified in the cache. */
	void	(*package_ready)(void *arg, const uint8_t sha[CACHE_SHA_LEN]);
	/*
	 * Optional (cut-through): the verified prefix of a package being
	 * downloaded grew to `verified' bytes (whole chunks that matched
	 * the manifest's chunk list; cache_open_read + cache_verified).
	 * Called from a deferred event after the bytes are in the cache,
	 * at most once per loop turn per package, before package_ready.
	 * Packages without a chunk list never report progress.
	 */
	void	(*package_progress)(void *arg,
		    const uint8_t sha[CACHE_SHA_LEN], uint64_t verified);
	/* A package failed (hash mismatch, HTTP error); retried later. */
	void	(*package_failed)(void *arg,
		    const uint8_t sha[CACHE_SHA_LEN], const char *why);
};

/*
 * Creates the client on `base'.  `db' and `cache' are borrowed and
 * must outlive it.  Creates the outbox table.  Does no I/O until
 * uplink_start().  Returns an owned object or NULL with cause.
 */
struct uplink	*uplink_new(struct event_base *, sqlite3 *, struct cache *,
		    const struct uplink_config *, const struct uplink_cb *,
		    void *arg, char **cause);
/* Starts polling and the report timer. */
int		 uplink_start(struct uplink *);
/* Cancels requests in flight; partial downloads stay for resume. */
void		 uplink_free(struct uplink *);

/* Polls the manifest now (technician's "refresh"). */
void		 uplink_poll_now(struct uplink *);

/*
 * Makes sure a package of the current manifest is complete in the cache:
 * returns 0 and calls package_ready later (at once, deferred, if it
 * is already complete), or -1 if the package is unknown.  Concurrent
 * calls for the same package share one download.
 */
int		 uplink_fetch(struct uplink *, const uint8_t sha[CACHE_SHA_LEN]);

/*
 * Queues one report record (a JSON object) in the outbox.  It is written
 * to SQLite before this returns (committed by the caller's transaction
 * policy: bridge/ commits at once after a result).  The record is stored
 * as one compact line; "gateway" (the configured id) and "seq" (the
 * outbox number, never reused) are added when it lacks them.  Returns 0,
 * or -1 if it is not a JSON object (nothing stored).
 */
int		 uplink_report(struct uplink *, const char *json_line);
/* Pushes pending reports now instead of waiting for the timer. */
void		 uplink_flush(struct uplink *);

struct uplink_stats {
	uint64_t	 bytes_down;	/* HTTP body bytes received */
	uint64_t	 manifests;	/* accepted */
	uint64_t	 manifest_rejects;
	uint64_t	 downloads_done;
	uint64_t	 reports_pending;
	uint64_t	 reports_acked;
	uint64_t	 http_errors;
	char		 last_error[160];
};
void		 uplink_stats(struct uplink *, struct uplink_stats *);

#endif /* UPLINK_H */
