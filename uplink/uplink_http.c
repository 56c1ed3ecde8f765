/*
 * uplink_http.c: a small HTTPS client on libevent's evhttp and
 * bufferevent_openssl.
 *
 * TLS: one client SSL_CTX with the configured CA file, SSL_VERIFY_PEER
 * and TLS 1.2 at least; each connection checks the certificate against
 * the base URL's host (SSL_set1_host for a name, with SNI; the IP
 * address itself for an IP literal, RFC 6066 §3 forbids literals in
 * SNI).  DNS: an IP literal needs none; a name is resolved with evdns,
 * so nothing blocks the loop.
 *
 * A channel is one connection kept alive between requests, running one
 * request at a time.  A bufferevent_openssl cannot be reconnected once its
 * TLS session ended, so a connection that failed or that the server closed
 * (evhttp's close callback) is never reused: the next request opens a new
 * one.  A request that fails on a reused connection before any answer
 * arrived (the server closed it while idle) is retried once at once on a
 * fresh one; GET and our PUTs are idempotent (RFC 9110 §9.2.2).
 *
 * Every result reaches the owner from the channel's own deferred event,
 * never from inside evhttp's callbacks, so the owner may start the next
 * request, free other objects or the channel itself there.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "uplink_internal.h"

struct uplink_http {
	struct event_base *base;
	struct evdns_base *dns;		/* NULL for an IP literal */
	SSL_CTX		*ctx;
	char		*host;		/* without brackets */
	char		*host_hdr;	/* Host: header value */
	int		 port;
	char		*prefix;	/* base path without trailing '/' */
	int		 host_is_ip;
	unsigned int	 timeout_s;
	uint64_t	 bytes_down;
	uint64_t	 errors;
};

struct uplink_chan {
	struct uplink_http *h;
	char		*name;
	struct evhttp_connection *evcon;
	struct bufferevent *bev;	/* owned by evcon */
	SSL		*ssl;		/* owned by bev */
	int		 dead;		/* closed: never reuse */
	unsigned int	 served;	/* requests done on evcon */
	struct event	*ev_done;

	/* The request in flight (or just over). */
	struct evhttp_request *req;
	int		 busy;
	int		 retried;
	struct uplink_hreq r;		/* path and body copied below */
	char		*path;
	uint8_t		*body;
	char		 ctype[64];
	const struct uplink_hops *ops;
	void		*arg;
	int		 code;
	int		 got_head;
	int		 failed;
	enum evhttp_request_error ev_err;
	int		 sock_err;
	char		 err[256];
	struct evbuffer	*buf;		/* buffered body */
	size_t		 buffered;
};

static void	 chan_done_ev(evutil_socket_t, short, void *);
static int	 chan_start(struct uplink_chan *, char **);

struct uplink_http *
uplink__http_new(struct event_base *base, const char *base_url,
    const char *ca_file, unsigned int timeout_s, char **cause)
{
	struct uplink_http *h;
	struct evhttp_uri *uri = NULL;
	const char	*scheme, *host, *path;
	struct in6_addr	 a6;
	struct in_addr	 a4;
	size_t		 n;
	char		 errbuf[160];

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		*cause = strdup("out of memory");
		return (NULL);
	}
	h->base = base;
	h->timeout_s = timeout_s > 0 ? timeout_s : 30;
	uri = evhttp_uri_parse_with_flags(base_url, 0);
	if (uri == NULL) {
		if (asprintf(cause, "cloud url '%s': not a URL", base_url) ==
		    -1)
			*cause = NULL;
		goto fail;
	}
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	path = evhttp_uri_get_path(uri);
	if (scheme == NULL || strcasecmp(scheme, "https") != 0) {
		if (asprintf(cause, "cloud url '%s': only https:// is "
		    "supported", base_url) == -1)
			*cause = NULL;
		goto fail;
	}
	if (host == NULL || *host == '\0' ||
	    evhttp_uri_get_userinfo(uri) != NULL ||
	    evhttp_uri_get_query(uri) != NULL ||
	    evhttp_uri_get_fragment(uri) != NULL) {
		if (asprintf(cause, "cloud url '%s': needs a host and no "
		    "user, query or fragment", base_url) == -1)
			*cause = NULL;
		goto fail;
	}
	n = strlen(host);
	if (host[0] == '[' && n > 2 && host[n - 1] == ']')
		h->host = strndup(host + 1, n - 2);
	else
		h->host = strdup(host);
	h->port = evhttp_uri_get_port(uri);
	if (h->port <= 0)
		h->port = 443;
	if (path == NULL)
		path = "";
	h->prefix = strdup(path);
	if (h->host == NULL || h->prefix == NULL)
		goto oom;
	n = strlen(h->prefix);
	while (n > 0 && h->prefix[n - 1] == '/')
		h->prefix[--n] = '\0';
	if (inet_pton(AF_INET6, h->host, &a6) == 1 ||
	    inet_pton(AF_INET, h->host, &a4) == 1)
		h->host_is_ip = 1;
	if (strchr(h->host, ':') != NULL)
		n = (size_t)asprintf(&h->host_hdr, "[%s]:%d", h->host,
		    h->port);
	else
		n = (size_t)asprintf(&h->host_hdr, "%s:%d", h->host, h->port);
	if (n == (size_t)-1) {
		h->host_hdr = NULL;
		goto oom;
	}
	evhttp_uri_free(uri);
	uri = NULL;

	if ((h->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION);
	if (ca_file == NULL || SSL_CTX_load_verify_locations(h->ctx, ca_file,
	    NULL) != 1) {
		ERR_error_string_n(ERR_get_error(), errbuf, sizeof(errbuf));
		if (asprintf(cause, "ca_file '%s': cannot load: %s",
		    ca_file != NULL ? ca_file : "(none)", errbuf) == -1)
			*cause = NULL;
		ERR_clear_error();
		goto fail;
	}
	SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);

	if (!h->host_is_ip) {
		h->dns = evdns_base_new(base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS |
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (h->dns == NULL) {
			*cause = strdup("cannot start the DNS resolver");
			goto fail;
		}
	}
	return (h);

ssl_fail:
	ERR_error_string_n(ERR_get_error(), errbuf, sizeof(errbuf));
	if (asprintf(cause, "TLS: %s", errbuf) == -1)
		*cause = NULL;
	goto fail;
oom:
	*cause = strdup("out of memory");
fail:
	if (uri != NULL)
		evhttp_uri_free(uri);
	uplink__http_free(h);
	return (NULL);
}

void
uplink__http_free(struct uplink_http *h)
{
	if (h == NULL)
		return;
	if (h->dns != NULL)
		evdns_base_free(h->dns, 0);
	SSL_CTX_free(h->ctx);
	free(h->host);
	free(h->host_hdr);
	free(h->prefix);
	free(h);
}

uint64_t
uplink__http_bytes_down(const struct uplink_http *h)
{
	return (h->bytes_down);
}

uint64_t
uplink__http_errors(const struct uplink_http *h)
{
	return (h->errors);
}

struct uplink_chan *
uplink__chan_new(struct uplink_http *h, const char *name)
{
	struct uplink_chan *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	c->h = h;
	if ((c->name = strdup(name)) == NULL ||
	    (c->buf = evbuffer_new()) == NULL ||
	    (c->ev_done = event_new(h->base, -1, 0, chan_done_ev, c)) ==
	    NULL) {
		if (c->buf != NULL)
			evbuffer_free(c->buf);
		free(c->name);
		free(c);
		return (NULL);
	}
	return (c);
}

/* Drops the connection (and any request on it) without callbacks. */
static void
chan_drop_conn(struct uplink_chan *c)
{
	if (c->evcon == NULL)
		return;
	evhttp_connection_set_closecb(c->evcon, NULL, NULL);
	evhttp_connection_free(c->evcon);	/* frees bev, ssl, request */
	c->evcon = NULL;
	c->bev = NULL;
	c->ssl = NULL;
	c->req = NULL;
	c->dead = 0;
	c->served = 0;
}

void
uplink__chan_free(struct uplink_chan *c)
{
	if (c == NULL)
		return;
	chan_drop_conn(c);
	event_free(c->ev_done);
	evbuffer_free(c->buf);
	free(c->path);
	free(c->body);
	free(c->name);
	free(c);
}

int
uplink__chan_busy(const struct uplink_chan *c)
{
	return (c->busy);
}

static void
chan_closecb(struct evhttp_connection *evcon, void *arg)
{
	struct uplink_chan *c = arg;

	/* evhttp would reconnect this bufferevent; we never let it. */
	c->dead = 1;
}

static int
chan_connect(struct uplink_chan *c, char **cause)
{
	struct uplink_http *h = c->h;
	X509_VERIFY_PARAM *param;

	if (c->evcon != NULL && !c->dead)
		return (0);
	chan_drop_conn(c);

	if ((c->ssl = SSL_new(h->ctx)) == NULL)
		goto ssl_fail;
	if (h->host_is_ip) {
		param = SSL_get0_param(c->ssl);
		if (X509_VERIFY_PARAM_set1_ip_asc(param, h->host) != 1)
			goto ssl_fail;
	} else {
		if (SSL_set_tlsext_host_name(c->ssl, h->host) != 1 ||
		    SSL_set1_host(c->ssl, h->host) != 1)
			goto ssl_fail;
		SSL_set_hostflags(c->ssl,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	c->bev = bufferevent_openssl_socket_new(h->base, -1, c->ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		*cause = strdup("cannot create a TLS bufferevent");
		return (-1);
	}
	/*
	 * Servers often close without close_notify; every body we read is
	 * delimited by Content-Length, so a dirty close loses nothing.
	 */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	c->evcon = evhttp_connection_base_bufferevent_new(h->base, h->dns,
	    c->bev, h->host, (uint16_t)h->port);
	if (c->evcon == NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		c->ssl = NULL;
		*cause = strdup("cannot create an HTTP connection");
		return (-1);
	}
	evhttp_connection_set_timeout(c->evcon, (int)h->timeout_s);
	evhttp_connection_set_closecb(c->evcon, chan_closecb, c);
	c->dead = 0;
	c->served = 0;
	return (0);

ssl_fail:
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (asprintf(cause, "TLS: cannot set up a connection to %s",
	    h->host) == -1)
		*cause = NULL;
	return (-1);
}

/* Why a request failed, with what TLS says if it said anything. */
static void
chan_explain(struct uplink_chan *c)
{
	unsigned long	 e = 0;
	long		 vr;
	char		 tls[160] = "";
	const char	*what;

	if (c->err[0] != '\0')
		return;
	if (c->bev != NULL)
		e = bufferevent_get_openssl_error(c->bev);
	if (c->ssl != NULL && (vr = SSL_get_verify_result(c->ssl)) !=
	    X509_V_OK) {
		snprintf(c->err, sizeof(c->err), "TLS: certificate of %s "
		    "rejected: %s", c->h->host,
		    X509_verify_cert_error_string(vr));
		return;
	}
	if (e != 0) {
		ERR_error_string_n(e, tls, sizeof(tls));
		snprintf(c->err, sizeof(c->err), "TLS: %s", tls);
		return;
	}
	switch (c->ev_err) {
	case EVREQ_HTTP_TIMEOUT:
		what = "timed out";
		break;
	case EVREQ_HTTP_EOF:
		what = "connection closed";
		break;
	case EVREQ_HTTP_INVALID_HEADER:
		what = "invalid response header";
		break;
	case EVREQ_HTTP_DATA_TOO_LONG:
		what = "response too large";
		break;
	default:
		what = "connection failed";
		break;
	}
	if (c->sock_err != 0 && c->ev_err != EVREQ_HTTP_TIMEOUT)
		snprintf(c->err, sizeof(c->err), "%s (%s)", what,
		    strerror(c->sock_err));
	else
		snprintf(c->err, sizeof(c->err), "%s", what);
}

static void
chan_error_cb(enum evhttp_request_error err, void *arg)
{
	struct uplink_chan *c = arg;

	c->ev_err = err;
	c->sock_err = errno;
}

static int
chan_header_cb(struct evhttp_request *req, void *arg)
{
	struct uplink_chan *c = arg;
	const char	*why = NULL;

	c->got_head = 1;
	c->code = evhttp_request_get_response_code(req);
	if (c->ops->head != NULL)
		why = c->ops->head(c->arg, c->code,
		    evhttp_request_get_input_headers(req));
	if (why != NULL) {
		snprintf(c->err, sizeof(c->err), "%s", why);
		c->failed = 1;
		return (-1);
	}
	return (0);
}

static void
chan_chunk_cb(struct evhttp_request *req, void *arg)
{
	struct uplink_chan *c = arg;
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	struct evbuffer_iovec v[8];
	const char	*why;
	size_t		 len = evbuffer_get_length(in);
	int		 i, n;

	c->h->bytes_down += len;
	if (c->failed || c->code < 200 || c->code > 299) {
		/* An error page, or a body we stopped taking: drop it. */
		return;
	}
	if (c->ops->body == NULL) {
		if (c->buffered + len > c->r.max_body) {
			snprintf(c->err, sizeof(c->err), "response larger "
			    "than %zu bytes", c->r.max_body);
			c->failed = 1;
			return;
		}
		c->buffered += len;
		evbuffer_remove_buffer(in, c->buf, len);
		return;
	}
	while (evbuffer_get_length(in) > 0 && !c->failed) {
		n = evbuffer_peek(in, -1, NULL, v, 8);
		if (n > 8)
			n = 8;
		len = 0;
		for (i = 0; i < n; i++) {
			why = c->ops->body(c->arg, v[i].iov_base,
			    v[i].iov_len);
			len += v[i].iov_len;
			if (why != NULL) {
				snprintf(c->err, sizeof(c->err), "%s", why);
				c->failed = 1;
				break;
			}
		}
		evbuffer_drain(in, len);
	}
}

static void
chan_req_cb(struct evhttp_request *req, void *arg)
{
	struct uplink_chan *c = arg;

	/* evhttp frees `req' after this returns. */
	c->req = NULL;
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		c->failed = 1;
		if (c->sock_err == 0)
			c->sock_err = errno;
	} else
		c->code = evhttp_request_get_response_code(req);
	event_active(c->ev_done, EV_TIMEOUT, 1);
}

static void
chan_done_ev(evutil_socket_t fd, short what, void *arg)
{
	struct uplink_chan *c = arg;
	const struct uplink_hops *ops = c->ops;
	void		*oarg = c->arg;
	uint8_t		*body = NULL;
	size_t		 len = 0;
	int		 code = c->code;
	char		 err[sizeof(c->err)];
	char		*cause = NULL;

	if (c->failed) {
		chan_explain(c);
		/*
		 * A kept-alive connection the server closed while idle
		 * fails before any answer: try once more on a new one.
		 */
		if (!c->got_head && c->served > 0 && !c->retried &&
		    strncmp(c->err, "TLS: certificate", 16) != 0) {
			chan_drop_conn(c);
			c->retried = 1;
			if (chan_start(c, &cause) == 0)
				return;
			snprintf(c->err, sizeof(c->err), "%s", cause);
			free(cause);
		}
		c->h->errors++;
		chan_drop_conn(c);
		snprintf(err, sizeof(err), "%s", c->err);
		c->busy = 0;
		evbuffer_drain(c->buf, evbuffer_get_length(c->buf));
		ops->done(oarg, code, NULL, 0, err);
		return;
	}
	c->served++;
	c->busy = 0;
	if (c->dead)
		chan_drop_conn(c);
	if (ops->body == NULL) {
		len = evbuffer_get_length(c->buf);
		body = evbuffer_pullup(c->buf, -1);
	}
	/* Last: done() may start a request, or free the channel. */
	ops->done(oarg, code, body, len, NULL);
}

/* Sends c->r on the channel's connection (made if needed). */
static int
chan_start(struct uplink_chan *c, char **cause)
{
	struct uplink_http *h = c->h;
	struct evhttp_request *req;
	struct evkeyvalq *hdr;
	char		 range[64], *uri = NULL;
	enum evhttp_cmd_type type;

	if (chan_connect(c, cause) != 0)
		return (-1);
	c->code = 0;
	c->got_head = 0;
	c->failed = 0;
	c->ev_err = 0;
	c->sock_err = 0;
	c->err[0] = '\0';
	c->buffered = 0;
	evbuffer_drain(c->buf, evbuffer_get_length(c->buf));

	if ((req = evhttp_request_new(chan_req_cb, c)) == NULL) {
		*cause = strdup("out of memory");
		return (-1);
	}
	evhttp_request_set_header_cb(req, chan_header_cb);
	evhttp_request_set_chunked_cb(req, chan_chunk_cb);
	evhttp_request_set_error_cb(req, chan_error_cb);
	hdr = evhttp_request_get_output_headers(req);
	evhttp_add_header(hdr, "Host", h->host_hdr);
	evhttp_add_header(hdr, "User-Agent", "upbridge/0.1");
	if (c->r.range) {
		snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64,
		    c->r.range_off, c->r.range_end);
		evhttp_add_header(hdr, "Range", range);
	}
	if (c->r.method == UPLINK_PUT) {
		type = EVHTTP_REQ_PUT;
		evhttp_add_header(hdr, "Content-Type", c->ctype);
		if (c->r.body_len > 0)
			evbuffer_add(evhttp_request_get_output_buffer(req),
			    c->body, c->r.body_len);
	} else
		type = EVHTTP_REQ_GET;
	/* A body larger than asked for is cut off by evhttp itself. */
	evhttp_connection_set_max_body_size(c->evcon,
	    (ev_ssize_t)(c->r.max_body + 65536));

	if (asprintf(&uri, "%s/%s", h->prefix, c->path) == -1) {
		evhttp_request_free(req);
		*cause = strdup("out of memory");
		return (-1);
	}
	c->busy = 1;
	c->req = req;
	if (evhttp_make_request(c->evcon, req, type, uri) != 0) {
		/* evhttp did not take the request (nor call back). */
		if (c->req == req)
			evhttp_request_free(req);
		c->req = NULL;
		c->busy = 0;
		free(uri);
		chan_drop_conn(c);
		if (asprintf(cause, "cannot send a request to %s", h->host) ==
		    -1)
			*cause = NULL;
		return (-1);
	}
	free(uri);
	return (0);
}

int
uplink__chan_request(struct uplink_chan *c, const struct uplink_hreq *r,
    const struct uplink_hops *ops, void *arg, char **cause)
{
	if (c->busy) {
		*cause = strdup("channel busy");
		return (-1);
	}
	free(c->path);
	free(c->body);
	c->path = NULL;
	c->body = NULL;
	c->r = *r;
	c->r.path = NULL;
	c->r.body = NULL;
	c->r.content_type = NULL;
	snprintf(c->ctype, sizeof(c->ctype), "%s", r->content_type != NULL ?
	    r->content_type : "application/octet-stream");
	if ((c->path = strdup(r->path)) == NULL ||
	    (r->body_len > 0 && (c->body = malloc(r->body_len)) == NULL)) {
		*cause = strdup("out of memory");
		return (-1);
	}
	if (r->body_len > 0)
		memcpy(c->body, r->body, r->body_len);
	c->ops = ops;
	c->arg = arg;
	c->retried = 0;
	return (chan_start(c, cause));
}
