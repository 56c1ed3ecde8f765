/*
 * cache.h: the content-addressed package store, the one public header of
 * cache/.
 *
 * Blobs are files named by their SHA-256 (hex) under the cache directory;
 * the index (blob state, size, pins, last use) and the package metadata
 * taken from verified manifests are tables in the daemon's one SQLite
 * database, which bridge/ opens and lends to cache_open().  cache/ owns
 * its tables and their migrations (schema_version row "cache").
 *
 * Daemon conventions: functions return 0/-1 (or NULL); where a person will
 * read the reason, a `char **cause' is filled with a malloc'd string the
 * caller frees.  Nothing here blocks for long: whole-blob hashing is done
 * in steps (cache_check_step) so the caller can spread it over the loop.
 *
 * Signature and hash helpers for the rest of the daemon live here too
 * (ARCHITECTURE.md: "hash/signature helpers live in cache/").
 */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

struct cache;
struct cache_writer;
struct cache_check;
struct cache_key;

#define CACHE_SHA_LEN		32
#define CACHE_HEX_LEN		64	/* without NUL */

/* ------------------------------------------------------------------ */
/* cache_hash.c: hashing, hex, signatures (OpenSSL EVP)               */

void		 cache_sha256(const void *, size_t, uint8_t out[CACHE_SHA_LEN]);
/* Lower-case hex of a digest into out[CACHE_HEX_LEN + 1]. */
void		 cache_hex(const uint8_t sha[CACHE_SHA_LEN],
		    char out[CACHE_HEX_LEN + 1]);
/* Parses 64 hex digits; returns 0 or -1. */
int		 cache_unhex(const char *, uint8_t sha[CACHE_SHA_LEN]);

/* Streaming SHA-256 (wraps EVP_MD_CTX; owned object). */
struct cache_sha;
struct cache_sha *cache_sha_new(void);
void		 cache_sha_update(struct cache_sha *, const void *, size_t);
void		 cache_sha_final(struct cache_sha *, uint8_t out[CACHE_SHA_LEN]);
/* dst continues from src's state (a checkpoint). */
void		 cache_sha_copy(struct cache_sha *dst,
		    const struct cache_sha *src);
void		 cache_sha_free(struct cache_sha *);

/*
 * An Ed25519 public key from a PEM file (SubjectPublicKeyInfo) or a raw
 * 32-byte key.  Owned; free with cache_key_free (accepts NULL).
 */
struct cache_key *cache_key_load(const char *pem_path, char **cause);
struct cache_key *cache_key_from_raw(const uint8_t raw[32], char **cause);
void		 cache_key_free(struct cache_key *);
/* Raw 32 public-key bytes (for node provisioning, reports). */
int		 cache_key_raw(const struct cache_key *, uint8_t raw[32]);
/*
 * Verifies an Ed25519 signature over msg.  Returns 0 when it holds, -1
 * otherwise with *cause ("signature does not verify", "bad length").
 */
int		 cache_sig_verify(const struct cache_key *, const void *msg,
		    size_t msglen, const uint8_t *sig, size_t siglen,
		    char **cause);

/* ------------------------------------------------------------------ */
/* cache.c: the store                                                  */

/*
 * Opens the store in `dir' (created 0750 if missing) with its index in
 * `db' (borrowed; must outlive the cache).  Runs the cache's migrations.
 * Blobs found in the index but missing or of the wrong size on disk are
 * marked missing; partial files are kept for resume.  quota_bytes = 0
 * means no quota.
 */
struct cache	*cache_open(sqlite3 *db, const char *dir,
		    uint64_t quota_bytes, char **cause);
void		 cache_free(struct cache *);

enum cache_state {
	CACHE_ABSENT = 0,	/* not in the store */
	CACHE_PARTIAL = 1,	/* download under way or interrupted */
	CACHE_COMPLETE = 2,	/* whole and verified */
	CACHE_CORRUPT = 3	/* failed verification; will be refetched */
};

struct cache_entry {
	uint8_t		 sha256[CACHE_SHA_LEN];
	enum cache_state state;
	uint64_t	 size;		/* expected size */
	uint64_t	 have;		/* bytes on disk */
	int		 pins;		/* campaigns holding it */
	int64_t		 last_used;	/* unix seconds */
	uint64_t	 verified;	/* verified prefix (cache_verified) */
};

/* Fills `e' (state CACHE_ABSENT when unknown).  Returns 0 or -1 (db). */
int		 cache_lookup(struct cache *, const uint8_t sha[CACHE_SHA_LEN],
		    struct cache_entry *e);

/* Path of a blob's file (complete or partial) into buf; 0 or -1. */
int		 cache_path(struct cache *, const uint8_t sha[CACHE_SHA_LEN],
		    char *buf, size_t len);

/*
 * Opens a complete blob for reading (O_RDONLY, O_CLOEXEC).  Returns the
 * fd (caller closes) or -1 when the blob is not complete.  Marks it
 * used.  Callers pread() blocks from it.
 */
int		 cache_open_blob(struct cache *, const uint8_t sha[CACHE_SHA_LEN]);

/*
 * Cut-through (docs/cache.md, "Chunks and the verified prefix"): a blob
 * whose package lists per-chunk SHA-256s (cache_chunks_put) is checked
 * chunk by chunk as the writer appends, and its verified prefix may be
 * read and forwarded before the download ends.
 *
 * cache_open_read opens the blob for reading whether it is complete or
 * still partial (O_RDONLY, O_CLOEXEC; caller closes); -1 when there is
 * no file.  The fd stays valid when the partial completes: completion
 * renames the file, the inode is the same.  A reader must only use the
 * bytes below cache_verified(): past it they may be unverified, and a
 * bad chunk is cut off again (the file is truncated to the prefix).
 *
 * cache_verified returns the verified prefix in bytes: the size of a
 * complete blob, for a blob being written the end of the last chunk
 * that matched its listed hash (0 without a chunk list), else 0.  It
 * looks at the open writers first, so it is cheap while one runs.
 */
int		 cache_open_read(struct cache *,
		    const uint8_t sha[CACHE_SHA_LEN]);
uint64_t	 cache_verified(struct cache *, const uint8_t sha[CACHE_SHA_LEN]);
/*
 * The verified prefix of an open writer, or UINT64_MAX when no writer
 * for sha is open (then ask cache_verified).  No database access: for
 * callers that poll often.
 */
uint64_t	 cache_writer_verified(struct cache *,
		    const uint8_t sha[CACHE_SHA_LEN]);

/*
 * Starts or resumes writing a blob of `size' bytes.  Reserves space
 * under the quota first (evicting unpinned complete blobs, least recently
 * used first) and fails with a clear cause if it cannot.  On resume,
 * cache_writer_offset() tells where to continue; the bytes already on
 * disk are re-hashed in steps by cache_writer_prime() before new bytes may
 * be written.  Returns an owned writer.
 */
struct cache_writer *cache_writer_open(struct cache *,
		    const uint8_t sha[CACHE_SHA_LEN], uint64_t size,
		    char **cause);
/* Re-hashes up to `budget' bytes of an existing partial file.  Returns
 * 1 while more remains, 0 when primed, -1 on I/O error. */
int		 cache_writer_prime(struct cache_writer *, size_t budget,
		    char **cause);
uint64_t	 cache_writer_offset(const struct cache_writer *);
/*
 * Appends bytes at the current offset (rejects writes beyond size).
 * With a chunk list (cache_chunks_put before cache_writer_open), every
 * chunk is hashed as it completes; a chunk that does not match its
 * listed hash fails the write ("chunk 3 of 24: sha256 mismatch ..."),
 * the file is cut back to the verified prefix and the writer continues
 * from there (the next write must resend the chunk).
 */
int		 cache_writer_write(struct cache_writer *, const void *,
		    size_t, char **cause);
/*
 * All bytes written: checks size and SHA-256.  On success the blob is
 * CACHE_COMPLETE (fsync'd, renamed into place) and 0 is returned.  On a
 * mismatch the partial file is deleted, the entry is CACHE_CORRUPT and -1
 * is returned with a cause.  Frees the writer either way.
 */
int		 cache_writer_finish(struct cache_writer *, char **cause);
/* Stops writing and keeps the partial file for resume. Accepts NULL. */
void		 cache_writer_close(struct cache_writer *);

/*
 * Whole-blob re-verification in steps, for blobs read back from disk (at
 * pin time and after a restart).  cache_check_step returns 1 while more
 * remains, 0 when the blob is whole, -1 when it is corrupt (then it is
 * deleted and marked CACHE_CORRUPT, so it is fetched again and never
 * sent).  cache_check_free accepts NULL.
 */
struct cache_check *cache_check_start(struct cache *,
		    const uint8_t sha[CACHE_SHA_LEN], char **cause);
int		 cache_check_step(struct cache_check *, size_t budget,
		    char **cause);
void		 cache_check_free(struct cache_check *);

/* Pins keep a blob from eviction; persisted, counted by owner. */
int		 cache_pin(struct cache *, const uint8_t sha[CACHE_SHA_LEN],
		    const char *owner);
int		 cache_unpin(struct cache *, const uint8_t sha[CACHE_SHA_LEN],
		    const char *owner);
/* Removes an unpinned blob; -1 with cause if pinned. */
int		 cache_remove(struct cache *, const uint8_t sha[CACHE_SHA_LEN],
		    char **cause);

struct cache_usage {
	uint64_t	 quota;
	uint64_t	 used;		/* bytes of all blob files */
	uint64_t	 pinned;
	unsigned int	 blobs;
	uint64_t	 evictions;	/* since open */
};
void		 cache_usage(struct cache *, struct cache_usage *);

/* Calls fn for every indexed blob (for upctl).  0 or -1. */
int		 cache_foreach(struct cache *,
		    void (*fn)(void *, const struct cache_entry *), void *arg);

/* ------------------------------------------------------------------ */
/* cache_pkg.c: package metadata from verified manifests               */

#define CACHE_ID_MAX		63
#define CACHE_NAME_MAX		31	/* == UP_NAME_MAX */
#define CACHE_VER_MAX		31	/* == UP_VER_MAX */
#define CACHE_HW_MAX		4	/* == UP_MAX_HW */
#define CACHE_URL_MAX		511

/*
 * One package of a verified manifest.  Everything a node's OFFER needs,
 * plus where to fetch it.  `sig' is the cloud's signature over the UP
 * descriptor (up_desc_encode), which nodes check.
 */
struct cache_pkg {
	char		 id[CACHE_ID_MAX + 1];
	char		 component[CACHE_NAME_MAX + 1];
	char		 version[CACHE_VER_MAX + 1];
	int		 nhw;
	char		 hw[CACHE_HW_MAX][CACHE_NAME_MAX + 1];
	int		 kind;		/* UP_KIND_FULL / UP_KIND_DELTA */
	int		 delta_format;	/* UP_DELTA_* */
	char		 base_version[CACHE_VER_MAX + 1];	/* delta */
	uint64_t	 size;
	uint8_t		 sha256[CACHE_SHA_LEN];
	uint64_t	 image_size;
	uint8_t		 image_sha256[CACHE_SHA_LEN];
	char		 url[CACHE_URL_MAX + 1];
	uint8_t		 sig[64];
	size_t		 sig_len;
	int		 ndeps;
	char		 dep_component[4][CACHE_NAME_MAX + 1];
	char		 dep_min_version[4][CACHE_VER_MAX + 1];
	/*
	 * Anti-rollback (docs/up-protocol.md §5.4), signed in the UP
	 * descriptor: the package's security version for its component,
	 * and whether the cloud allows it to replace a newer version.  A
	 * manifest without them: 0 and no.
	 */
	uint32_t	 security_version;
	int		 allow_downgrade;
	int64_t		 manifest_serial;
};

/*
 * Replaces the package table with the packages of a newly verified
 * manifest, in one transaction (all or nothing).  Returns 0 or -1.
 */
int		 cache_pkg_replace(struct cache *, const struct cache_pkg *,
		    size_t n, char **cause);
/* Package by id / by sha; 0 found, -1 not found or error. */
int		 cache_pkg_get(struct cache *, const char *id,
		    struct cache_pkg *);
int		 cache_pkg_by_sha(struct cache *,
		    const uint8_t sha[CACHE_SHA_LEN], struct cache_pkg *);
/* Calls fn for every known package, in id order. */
int		 cache_pkg_foreach(struct cache *,
		    void (*fn)(void *, const struct cache_pkg *), void *arg);

/*
 * Per-chunk SHA-256s of a blob (the manifest's `chunks', docs/
 * manifest.md), keyed by the blob's sha256 in table cache_chunks.
 * `hashes' holds n * 32 bytes, n == ceil(size / chunk_size).  A writer
 * opened afterwards verifies each chunk.  Put replaces a list; 0 or -1
 * with cause (a bad count or size changes nothing).
 */
#define CACHE_CHUNKS_MAX	(1U << 20)	/* hashes per blob */
int		 cache_chunks_put(struct cache *,
		    const uint8_t sha[CACHE_SHA_LEN], uint64_t size,
		    uint32_t chunk_size, const uint8_t *hashes, uint32_t n,
		    char **cause);
/*
 * 1 and *hashes (malloc'd, n * 32 bytes; caller frees) when a list is
 * stored, 0 when none, -1 on a database error.
 */
int		 cache_chunks_get(struct cache *,
		    const uint8_t sha[CACHE_SHA_LEN], uint32_t *chunk_size,
		    uint8_t **hashes, uint32_t *n);
/* Drops the lists of blobs no package of the table names any more. */
int		 cache_chunks_prune(struct cache *);

#endif /* CACHE_H */
