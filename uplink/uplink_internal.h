/*
 * uplink_internal.h: what stays inside uplink/ (and its unit tests).
 *
 *  uplink_http.c    a small HTTPS client on evhttp + bufferevent_openssl:
 *                   one "channel" = one kept-alive connection running one
 *                   request at a time, with results delivered from a
 *                   deferred event (never from inside libevent's stack)
 *  uplink_store.c   the uplink's tables, their migrations and the last
 *                   accepted manifest (the replay guard)
 *  uplink_outbox.c  the report outbox: lines, batches, acknowledgements
 *  uplink.c         the client: polling, downloads, report uploads
 */
#ifndef UPLINK_INTERNAL_H
#define UPLINK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "uplink.h"

struct event_base;
struct evkeyvalq;

/* ------------------------------------------------------------------ */
/* uplink_http.c                                                      */

struct uplink_http;
struct uplink_chan;

/*
 * The cloud endpoint: parses base_url (https only), loads the CA file
 * into a client TLS context that verifies the peer and its host name.
 * Returns an owned object or NULL with cause.
 */
struct uplink_http *uplink__http_new(struct event_base *,
		    const char *base_url, const char *ca_file,
		    unsigned int timeout_s, char **cause);
void		 uplink__http_free(struct uplink_http *);
/* Counters shared by every channel. */
uint64_t	 uplink__http_bytes_down(const struct uplink_http *);
uint64_t	 uplink__http_errors(const struct uplink_http *);

enum uplink_method {
	UPLINK_GET,
	UPLINK_PUT
};

struct uplink_hreq {
	enum uplink_method method;
	const char	*path;		/* relative to the base URL */
	int		 range;		/* send Range: bytes=off-end */
	uint64_t	 range_off;
	uint64_t	 range_end;	/* inclusive */
	const void	*body;		/* PUT body (copied) */
	size_t		 body_len;
	const char	*content_type;	/* PUT */
	size_t		 max_body;	/* response body limit, bytes */
};

struct uplink_hops {
	/*
	 * Status and headers are in.  Return NULL to read the body or an
	 * error text (copied) to fail the request.  May be NULL.
	 */
	const char	*(*head)(void *arg, int code, struct evkeyvalq *);
	/*
	 * Streams the body of a 2xx response; with NULL the channel
	 * buffers it (up to max_body) for done().  Return NULL or an
	 * error text: the rest of the body is then read and dropped and
	 * done() reports that error.
	 */
	const char	*(*body)(void *arg, const uint8_t *, size_t);
	/*
	 * The request is over: code is the HTTP status (> 0) and err NULL,
	 * or err says why it failed (code may be 0).  body/len is the
	 * buffered body (borrowed for the call) when body() is NULL.  Runs
	 * from a deferred event; the channel is idle again, so done() may
	 * start the next request on it.
	 */
	void		 (*done)(void *arg, int code, const uint8_t *body,
			    size_t len, const char *err);
};

struct uplink_chan *uplink__chan_new(struct uplink_http *, const char *name);
/* Frees the channel; a request in flight is dropped without done(). */
void		 uplink__chan_free(struct uplink_chan *);
int		 uplink__chan_busy(const struct uplink_chan *);
/*
 * Starts a request.  `ops' and `arg' are borrowed until done().  0, or
 * -1 with cause (and no done()).
 */
int		 uplink__chan_request(struct uplink_chan *,
		    const struct uplink_hreq *, const struct uplink_hops *,
		    void *arg, char **cause);

/* ------------------------------------------------------------------ */
/* uplink_store.c                                                     */

#define UPLINK_SCHEMA_VERSION	1

/* Creates or migrates the uplink's tables.  0 or -1 with cause. */
int		 uplink__store_open(sqlite3 *, char **cause);

/* The last accepted manifest (the replay guard). */
struct uplink_stored {
	int64_t		 serial;
	uint8_t		 sha256[CACHE_SHA_LEN];	/* of the manifest bytes */
	uint8_t		*body;		/* owned, NUL-terminated */
	size_t		 body_len;
	uint8_t		*sig;		/* owned */
	size_t		 sig_len;
};
/* 1 found (fills *st), 0 none, -1 error. */
int		 uplink__store_get(sqlite3 *, struct uplink_stored *);
int		 uplink__store_put(sqlite3 *, int64_t serial,
		    const uint8_t sha[CACHE_SHA_LEN], const void *body,
		    size_t body_len, const void *sig, size_t sig_len);
void		 uplink__stored_clear(struct uplink_stored *);

/* ------------------------------------------------------------------ */
/* uplink_outbox.c                                                    */

struct uplink_outbox;

/* Prepares the statements (the tables come from uplink__store_open). */
struct uplink_outbox *uplink__outbox_open(sqlite3 *, const char *gateway_id,
		    char **cause);
void		 uplink__outbox_free(struct uplink_outbox *);
/*
 * Adds one record (a JSON object).  Adds "seq" (the outbox sequence,
 * never reused) and "gateway" when the record lacks them.  Returns the
 * sequence number (> 0) or -1 with cause.
 */
int64_t		 uplink__outbox_add(struct uplink_outbox *, const char *line,
		    char **cause);
/*
 * The batch to send next: the oldest one not yet acknowledged, else a
 * new one made of up to `max' unbatched lines (its number is assigned
 * and written before this returns; *fresh says so).  Returns the batch
 * number, 0 when nothing is pending, -1 on error.
 */
int64_t		 uplink__outbox_batch(struct uplink_outbox *, unsigned int max,
		    int *fresh);
/* The batch's body: its lines in seq order, each ending in '\n'. */
char		*uplink__outbox_body(struct uplink_outbox *, int64_t batch,
		    size_t *len, unsigned int *nlines);
/* The server stored the batch: its lines leave the outbox. */
int		 uplink__outbox_ack(struct uplink_outbox *, int64_t batch);
/* Lines not yet acknowledged. */
int64_t		 uplink__outbox_pending(struct uplink_outbox *);

/* ------------------------------------------------------------------ */
/* uplink_manifest.c                                                  */

/* Strict RFC 4648 base64 (padding required).  Returns bytes or -1. */
int		 uplink__b64_decode(const char *, size_t, uint8_t *out,
		    size_t cap);

#endif /* UPLINK_INTERNAL_H */
