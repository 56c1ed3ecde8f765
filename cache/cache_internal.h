/*
 * cache_internal.h: what stays inside cache/ (the store object, its
 * prepared statements and the small SQLite helpers shared by cache.c and
 * cache_pkg.c).
 */
#ifndef CACHE_INTERNAL_H
#define CACHE_INTERNAL_H

#include <sys/queue.h>

#include <stdint.h>

#include <sqlite3.h>

#include "cache.h"

/* Bytes read per pread() while hashing a file in steps. */
#define CACHE_IO_CHUNK		(64 * 1024)
/* Budget used when a caller passes 0 to a step or prime function. */
#define CACHE_STEP_DEFAULT	CACHE_IO_CHUNK

/* The prepared statements, one set per cache object (cache_db.c). */
enum cache_stmt {
	CACHE_ST_BLOB_GET,
	CACHE_ST_BLOB_ALL,
	CACHE_ST_BLOB_PUT,
	CACHE_ST_BLOB_STATE,
	CACHE_ST_BLOB_USED,
	CACHE_ST_BLOB_DEL,
	CACHE_ST_SEQ_MAX,
	CACHE_ST_PIN_ADD,
	CACHE_ST_PIN_DEL,
	CACHE_ST_PIN_COUNT,
	CACHE_ST_PKG_SP_BEGIN,
	CACHE_ST_PKG_SP_RELEASE,
	CACHE_ST_PKG_SP_ROLLBACK,
	CACHE_ST_PKG_CLEAR,
	CACHE_ST_PKG_HW_CLEAR,
	CACHE_ST_PKG_DEP_CLEAR,
	CACHE_ST_PKG_INS,
	CACHE_ST_PKG_HW_INS,
	CACHE_ST_PKG_DEP_INS,
	CACHE_ST_PKG_GET,
	CACHE_ST_PKG_BY_SHA,
	CACHE_ST_PKG_HW_GET,
	CACHE_ST_PKG_DEP_GET,
	CACHE_ST_PKG_IDS,
	CACHE_ST_CHUNKS_PUT,
	CACHE_ST_CHUNKS_GET,
	CACHE_ST_CHUNKS_PRUNE,
	CACHE_ST_MAX
};

struct cache_writer;
struct cache_check;

struct cache {
	sqlite3		*db;		/* borrowed */
	char		*dir;
	char		*blobdir;	/* dir/blobs */
	char		*partdir;	/* dir/partial */
	uint64_t	 quota;		/* 0 = none */
	uint64_t	 evictions;
	int64_t		 seq;		/* last use_seq given */
	sqlite3_stmt	*st[CACHE_ST_MAX];

	LIST_HEAD(, cache_writer) writers;	/* open writers */
	LIST_HEAD(, cache_check) checks;	/* running checks */
};

/* cache_db.c */
void		 cache__cause(char **, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
int		 cache__migrate(sqlite3 *, const char *, const char *const *,
		    int, char **);
int		 cache__prepare(struct cache *, char **);
void		 cache__finalize(struct cache *);
sqlite3_stmt	*cache__stmt(struct cache *, enum cache_stmt);
int		 cache__run(struct cache *, sqlite3_stmt *, char **);
int		 cache__db_fail(struct cache *, sqlite3_stmt *, char **,
		    const char *);
void		 cache__bind_sha(sqlite3_stmt *, int,
		    const uint8_t [CACHE_SHA_LEN]);
int		 cache__column_sha(sqlite3_stmt *, int,
		    uint8_t [CACHE_SHA_LEN]);
uint64_t	 cache__column_u64(sqlite3_stmt *, int);
void		 cache__column_text(sqlite3_stmt *, int, char *, size_t);

extern const char *const cache__schema[];
extern const int	 cache__nschema;

#endif /* CACHE_INTERNAL_H */
