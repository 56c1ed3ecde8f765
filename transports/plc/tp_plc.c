/*
 * tp_plc.c: the "plc" transport, UP and package offload through a Q/GDW
 * 1376.2 carrier module on a UART (one instance = one module = one
 * station area).  docs/transports/plc.md describes it; plc_internal.h
 * says which file does what.
 *
 * What the plugin does with the module:
 *  - set-up: reads the module's run mode (03H F10): its longest frame,
 *    its file segment size and the wait after the last segment, how long
 *    it monitors a station, its master address.  A module that reports
 *    03H F10 by itself has restarted: the plugin reads everything again
 *    and resumes a file transfer by segment id (plc_offload.c);
 *  - topology: walks the module's network topology (10H F21: each
 *    station's TEI, its proxy's TEI and its level), or, from a module
 *    that refuses it, the station list (10H F2: relay level) and each
 *    relayed station's upper relay (10H F3).  Every station goes to the
 *    host as a peer with its level and parent (TP_PEER_FOUND, then
 *    TP_PEER_ROUTE when they change), every topology_interval_s;
 *  - UP over forwarding: a frame to one station goes in a "monitor a
 *    station" request (13H F1, transparent protocol) and the station's
 *    answer, when it gives one within the module's monitoring time, comes
 *    back in the module's reply; a frame to all goes in a broadcast
 *    (05H F3).  What a station sends unprompted reaches us as a station
 *    event (06H F5) and is confirmed;
 *  - module offload: AFN 15H F1 with the stations' file id, then the
 *    module's own distribution, followed with status queries
 *    (plc_offload.c).
 *
 * Rules of transport.h kept here: send() only queues (a ring of
 * tx_queue frames allocated at open) and never calls the host; requests
 * start from the loop (an event the pump arms); the host hears only from
 * the plugin's own event callbacks, and an instance the host closes from
 * inside one is freed when the outermost callback returns.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "up.h"
#include "transports_internal.h"
#include "plc_internal.h"

#define TP_PLC_PREFIX		"plc:"
/* Periodic work: probes, topology refresh, status polls. */
#define TP_PLC_TICK_MS		100
/* A silent module is asked for its run mode this often. */
#define TP_PLC_PROBE_MS		2000
/* Requests failed in a row that take the link down. */
#define TP_PLC_FAILS_DOWN	2
/* A busy module (deny 9) gets a pause before the frame is tried again. */
#define TP_PLC_BUSY_MS		500
/* Bytes of a 13H F1 request before the UP frame, and of its answer
 * (confirm or reply header): what the pacer counts per frame. */
#define TP_PLC_FWD_HDR		4
#define TP_PLC_ANSWER_BYTES	(PLC_OVERHEAD_ADDR + 4)

static const char	*tp_plc_check_format(const char *);
static const char	*tp_plc_check_addr(const char *);

static int	 tp_plc_open(const struct tp_host *, const struct tp_conf *,
		    struct tp **, char **);
static int	 tp_plc_start(struct tp *, char **);
static void	 tp_plc_close(struct tp *);
static void	 tp_plc_caps(struct tp *, struct tp_caps *);
static int	 tp_plc_send(struct tp *, const struct tp_addr *,
		    const struct iovec *, int, uint64_t);
static int	 tp_plc_addr_fmt(const struct tp_addr *, char *, size_t);
static int	 tp_plc_addr_parse(const char *, struct tp_addr *, char **);
static void	 tp_plc_stats(struct tp *, struct tp_stats *);
static int	 tp_plc_offload_start(struct tp *, const struct tp_offload *,
		    char **);
static void	 tp_plc_offload_cancel(struct tp *, uint32_t);

static void	 tp_plc_free(struct tp *);
static void	 tp_plc_tick_cb(evutil_socket_t, short, void *);
static void	 tp_plc_set_link(struct tp *, bool);
static void	 tp_plc_fail_queue(struct tp *, int);
static void	 tp_plc_pump_up(struct tp *);
static void	 tp_plc_run_mode(struct tp *, const struct plc_frame *, bool);

static const struct tp_option tp_plc_options[] = {
	{ "device", TP_OPT_STRING, NULL, 0, 0, NULL,
	  "the UART of the carrier module (/dev/ttyS1, a pty)", NULL },
	{ "baud", TP_OPT_INT, "9600", 1200, 921600, "bit/s",
	  "the module's UART rate", NULL },
	{ "format", TP_OPT_STRING, "8E1", 0, 0, NULL,
	  "character format: data bits, parity N/E/O, stop bits",
	  tp_plc_check_format },
	{ "timeout_ms", TP_OPT_INT, "3000", 100, 120000, "ms",
	  "wait for the module's answer to a local request", NULL },
	{ "retries", TP_OPT_INT, "2", 0, 10, NULL,
	  "repeats of an unanswered request (same sequence number)", NULL },
	{ "master", TP_OPT_STRING, "", 0, 0, NULL,
	  "master node address (12 digits), empty = the module's",
	  tp_plc_check_addr },
	{ "comm_type", TP_OPT_INT, "0", 0, 63, NULL,
	  "control field communication type, 0 = from the module (HPLC 3)",
	  NULL },
	{ "broadcast", TP_OPT_BOOL, "yes", 0, 0, NULL,
	  "send frames for every station as a broadcast (05H F3)", NULL },
	{ "offload", TP_OPT_BOOL, "yes", 0, 0, NULL,
	  "offer the module's own file distribution (15H F1)", NULL },
	{ "offload_file", TP_OPT_INT, "8", 7, 8, NULL,
	  "file id for an offload: 8 = every station, 7 = module and "
	  "stations", NULL },
	{ "segment", TP_OPT_INT, "0", 0, 4096, "bytes",
	  "file segment size, 0 = what the module declares", NULL },
	{ "mtu", TP_OPT_INT, "255", 32, 255, "bytes",
	  "largest UP frame (a 13H F1 / 05H F3 message is at most 255)",
	  NULL },
	{ "bitrate_bps", TP_OPT_INT, "0", 0, 100000000, "bit/s",
	  "rate the engine paces UP frames to, 0 = the UART's", NULL },
	{ "tx_queue", TP_OPT_INT, "4", 1, 256, "frames",
	  "UP frames queued for the UART before send() says EAGAIN", NULL },
	{ "status_interval_s", TP_OPT_INT, "10", 1, 3600, "s",
	  "upgrade status queries while the module distributes", NULL },
	{ "topology_interval_s", TP_OPT_INT, "300", 10, 86400, "s",
	  "topology refresh", NULL },
	{ "offload_timeout_s", TP_OPT_INT, "0", 0, 604800, "s",
	  "give stations up this long after the last segment, 0 = the "
	  "module's upgrade wait time", NULL },
	{ "max_stations", TP_OPT_INT, "2048", 1, 65535, NULL,
	  "stations this instance keeps", NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};

const struct tp_ops tp_plc_ops = {
	.name = "plc",
	.abi = TP_ABI_VERSION,
	.options = tp_plc_options,
	.open = tp_plc_open,
	.start = tp_plc_start,
	.close = tp_plc_close,
	.caps = tp_plc_caps,
	.send = tp_plc_send,
	.addr_fmt = tp_plc_addr_fmt,
	.addr_parse = tp_plc_addr_parse,
	.airtime = NULL,
	.stats = tp_plc_stats,
	.offload_start = tp_plc_offload_start,
	.offload_cancel = tp_plc_offload_cancel
};

/* ------------------------------------------------------------------ */
/* Options, logs                                                        */

static const char *
tp_plc_check_format(const char *v)
{
	if (strlen(v) != 3 || v[0] < '5' || v[0] > '8' ||
	    strchr("NEO", v[1]) == NULL || (v[2] != '1' && v[2] != '2'))
		return ("not a character format (8E1, 8N1, 8O1, 8N2 ...)");
	return (NULL);
}

static const char *
tp_plc_check_addr(const char *v)
{
	uint8_t		 a[PLC_ADDR_LEN];

	if (*v == '\0' || plc_addr_parse(v, a) == 0)
		return (NULL);
	return ("not a station address (12 hex digits)");
}

void
tp_plc__log(struct tp *tp, int level, const char *fmt, ...)
{
	char		 buf[512];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	up_logf(level, "plc %s: %s", tp->name, buf);
}

/* ------------------------------------------------------------------ */
/* Open, start, close                                                   */

static int
tp_plc_open(const struct tp_host *host, const struct tp_conf *conf,
    struct tp **out, char **cause)
{
	struct tp	*tp;
	const char	*s;
	size_t		 i;

	if ((tp = calloc(1, sizeof(*tp))) == NULL)
		return (tp__cause(cause, "%s: out of memory", conf->name));
	tp->fd = -1;
	tp->host = host;
	tp->link_told = -1;
	if ((tp->name = strdup(conf->name)) == NULL ||
	    (tp->device = strdup(tp_conf_str(conf, "device"))) == NULL) {
		tp_plc_free(tp);
		return (tp__cause(cause, "%s: out of memory", conf->name));
	}
	tp->baud = (unsigned int)tp_conf_int(conf, "baud");
	snprintf(tp->format, sizeof(tp->format), "%s",
	    tp_conf_str(conf, "format"));
	tp->char_bits = 1 + (unsigned int)(tp->format[0] - '0') +
	    (tp->format[1] != 'N' ? 1 : 0) + (unsigned int)(tp->format[2] -
	    '0');
	tp->timeout_ms = (uint32_t)tp_conf_int(conf, "timeout_ms");
	tp->retries = (unsigned int)tp_conf_int(conf, "retries");
	s = tp_conf_str(conf, "master");
	if (s != NULL && *s != '\0') {
		(void)plc_addr_parse(s, tp->master);
		tp->master_set = true;
	}
	tp->comm_opt = (unsigned int)tp_conf_int(conf, "comm_type");
	tp->comm = tp->comm_opt != 0 ? (uint8_t)tp->comm_opt : PLC_COMM_HPLC;
	tp->use_broadcast = tp_conf_bool(conf, "broadcast");
	tp->use_offload = tp_conf_bool(conf, "offload");
	tp->offload_file = (uint8_t)tp_conf_int(conf, "offload_file");
	tp->seg_opt = (uint32_t)tp_conf_int(conf, "segment");
	tp->mtu_opt = (uint32_t)tp_conf_int(conf, "mtu");
	tp->bitrate_opt = (uint64_t)tp_conf_int(conf, "bitrate_bps");
	tp->tx_queue = (uint32_t)tp_conf_int(conf, "tx_queue");
	tp->status_ms = (uint32_t)tp_conf_int(conf, "status_interval_s") *
	    1000;
	tp->topology_ms = (uint32_t)tp_conf_int(conf,
	    "topology_interval_s") * 1000;
	tp->offload_timeout_ms = (uint32_t)tp_conf_int(conf,
	    "offload_timeout_s") * 1000;
	tp->max_peers = (size_t)tp_conf_int(conf, "max_stations");

	tp->peers = calloc(tp->max_peers, sizeof(*tp->peers));
	tp->slots = calloc(tp->tx_queue, sizeof(*tp->slots));
	tp->slotmem = malloc((size_t)tp->tx_queue * tp->mtu_opt);
	tp->segbuf = malloc(2 * PLC_FRAME_MAX);
	if (tp->peers == NULL || tp->slots == NULL || tp->slotmem == NULL ||
	    tp->segbuf == NULL) {
		tp_plc_free(tp);
		return (tp__cause(cause, "%s: out of memory", conf->name));
	}
	for (i = 0; i < tp->tx_queue; i++)
		tp->slots[i].buf = tp->slotmem + i * tp->mtu_opt;
	if (plc_link_open(tp, cause) != 0 ||
	    (tp->ev_tick = event_new(host->base, -1, EV_PERSIST,
	    tp_plc_tick_cb, tp)) == NULL) {
		if (*cause == NULL)
			(void)tp__cause(cause, "%s: out of memory",
			    conf->name);
		tp_plc_free(tp);
		return (-1);
	}
	*out = tp;
	return (0);
}

static int
tp_plc_start(struct tp *tp, char **cause)
{
	struct timeval	 tv = { 0, TP_PLC_TICK_MS * 1000 };

	if (tp->started)
		return (0);
	if (event_add(tp->ev_rd, NULL) == -1 ||
	    event_add(tp->ev_tick, &tv) == -1)
		return (tp__cause(cause, "%s: cannot watch %s", tp->name,
		    tp->device));
	tp->started = 1;
	tp->init = PLC_INIT_RUN_MODE;
	tp->next_probe_ms = 0;
	tp_plc__log(tp, UP_LOG_INFO, "%s at %u %s: asking the module its run "
	    "mode", tp->device, tp->baud, tp->format);
	plc_link_kick(tp);
	return (0);
}

static void
tp_plc_free(struct tp *tp)
{
	plc_link_close(tp);
	if (tp->ev_tick != NULL)
		event_free(tp->ev_tick);
	free(tp->segbuf);
	free(tp->slotmem);
	free(tp->slots);
	free(tp->peers);
	free(tp->device);
	free(tp->name);
	free(tp);
}

static void
tp_plc_close(struct tp *tp)
{
	if (tp == NULL || tp->dead)
		return;
	if (tp->in_cb > 0) {
		/* Inside one of our callbacks: stop everything now, free
		 * when the outermost one returns (tp_plc__leave). */
		tp->dead = 1;
		if (tp->ev_rd != NULL)
			event_del(tp->ev_rd);
		if (tp->ev_wr != NULL)
			event_del(tp->ev_wr);
		if (tp->ev_req != NULL)
			event_del(tp->ev_req);
		if (tp->ev_stale != NULL)
			event_del(tp->ev_stale);
		if (tp->ev_pump != NULL)
			event_del(tp->ev_pump);
		if (tp->ev_tick != NULL)
			event_del(tp->ev_tick);
		return;
	}
	tp_plc_free(tp);
}

bool
tp_plc__leave(struct tp *tp)
{
	if (--tp->in_cb == 0 && tp->dead) {
		tp_plc_free(tp);
		return (true);
	}
	return (false);
}

/* ------------------------------------------------------------------ */
/* Capabilities, addresses, stats                                       */

static uint32_t
tp_plc_mtu(struct tp *tp)
{
	uint32_t	 mtu = tp->mtu_opt;
	uint32_t	 room;

	/* The module's longest frame bounds a 13H F1 request. */
	if (tp->known && tp->mode.max_frame > PLC_OVERHEAD_ADDR +
	    TP_PLC_FWD_HDR) {
		room = tp->mode.max_frame - PLC_OVERHEAD_ADDR - TP_PLC_FWD_HDR;
		if (room < mtu)
			mtu = room;
	}
	return (mtu);
}

uint32_t
tp_plc__segment(struct tp *tp)
{
	uint32_t	 seg;

	if (!tp->known || tp->mode.max_segment == 0)
		return (0);
	seg = tp->mode.max_segment;
	if (tp->seg_opt != 0 && tp->seg_opt < seg)
		seg = tp->seg_opt;
	/* A segment's frame must fit the module's longest frame too. */
	if (tp->mode.max_frame > PLC_OVERHEAD + PLC_SEG_HDR &&
	    seg > (uint32_t)tp->mode.max_frame - PLC_OVERHEAD - PLC_SEG_HDR)
		seg = (uint32_t)tp->mode.max_frame - PLC_OVERHEAD -
		    PLC_SEG_HDR;
	if (seg > PLC_FRAME_MAX - PLC_OVERHEAD - PLC_SEG_HDR)
		seg = PLC_FRAME_MAX - PLC_OVERHEAD - PLC_SEG_HDR;
	return (seg);
}

static void
tp_plc_caps(struct tp *tp, struct tp_caps *c)
{
	memset(c, 0, sizeof(*c));
	c->mtu = tp_plc_mtu(tp);
	c->uplink_mtu = c->mtu;
	/*
	 * UP's compact form (docs/up-protocol.md §11.1, §11.3): the
	 * link's default; a station address names the node; the frame's
	 * 8-bit sum is no frame check, so no TP_CAP_FCS (compact frames
	 * carry UP's CRC-16).
	 */
	c->flags = TP_CAP_UNICAST | TP_CAP_HALF_DUPLEX | TP_CAP_DISCOVERY |
	    TP_CAP_COMPACT | TP_CAP_ADDRESSED;
	if (tp->use_broadcast)
		c->flags |= TP_CAP_BROADCAST;
	if (tp->use_offload && tp_plc__segment(tp) > 0) {
		c->flags |= TP_CAP_OFFLOAD;
		c->offload_segment = tp_plc__segment(tp);
	}
	/* The UART is the narrowest part the gateway sees: its payload
	 * rate, with the request's and the answer's framing counted. */
	c->bitrate_bps = tp->bitrate_opt != 0 ? tp->bitrate_opt :
	    (uint64_t)tp->baud * 8 / tp->char_bits;
	c->frame_overhead = PLC_OVERHEAD_ADDR + TP_PLC_FWD_HDR +
	    TP_PLC_ANSWER_BYTES;
	c->tx_queue = tp->tx_queue;
	c->response_ms = tp->known ? (uint32_t)tp->mode.monitor_s * 1000 : 0;
}

static int
tp_plc_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	char		 s[PLC_ADDR_TEXT];

	if (a->flags & TP_ADDR_F_BROADCAST) {
		if (snprintf(buf, len, TP_PLC_PREFIX "*") >= (int)len)
			return (-1);
		return (0);
	}
	if (a->len != PLC_ADDR_LEN)
		return (-1);
	plc_addr_fmt(a->b, s, sizeof(s));
	if (snprintf(buf, len, TP_PLC_PREFIX "%s", s) >= (int)len)
		return (-1);
	return (0);
}

static int
tp_plc_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(s, TP_PLC_PREFIX, strlen(TP_PLC_PREFIX)) == 0)
		s += strlen(TP_PLC_PREFIX);
	if (strcmp(s, "*") == 0) {
		tp_addr_broadcast(a);
		return (0);
	}
	if (plc_addr_parse(s, a->b) != 0)
		return (tp__cause(cause, "%s: not a station address (12 hex "
		    "digits)", s));
	a->len = PLC_ADDR_LEN;
	return (0);
}

static void
tp_plc_stats(struct tp *tp, struct tp_stats *st)
{
	*st = tp->st;
	st->queued = (uint32_t)tp->slen;
}

/* ------------------------------------------------------------------ */
/* The link's state                                                     */

static void
tp_plc_set_link(struct tp *tp, bool up)
{
	tp->link_up = up;
	if (tp->link_told == (int)up)
		return;
	tp->link_told = (int)up;
	tp_plc__log(tp, UP_LOG_INFO, "link %s", up ? "up" : "down");
	if (!up)
		tp_plc_fail_queue(tp, TP_EIO);
	tp->host->link(tp->host->arg, tp, up ? TP_LINK_UP : TP_LINK_DOWN);
}

/* Every queued UP frame fails with `status'. */
static void
tp_plc_fail_queue(struct tp *tp, int status)
{
	struct plc_txslot *sl;

	while (tp->slen > 0 && !tp->dead) {
		sl = &tp->slots[tp->shead];
		tp->shead = (tp->shead + 1) % tp->tx_queue;
		tp->slen--;
		tp->st.tx_errors++;
		if (tp->host->tx_done != NULL)
			tp->host->tx_done(tp->host->arg, tp, sl->cookie,
			    status, 0);
	}
}

static void
tp_plc_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;
	uint64_t	 now;

	tp->in_cb++;
	now = plc_now_ms(tp);
	if (tp->fd == -1 && now >= tp->next_probe_ms) {
		tp->next_probe_ms = now + TP_PLC_PROBE_MS;
		if (plc_link_reopen(tp) == 0)
			tp->next_probe_ms = 0;
	}
	if (tp->init == PLC_INIT_READY && tp->walk == PLC_WALK_IDLE &&
	    now >= tp->next_walk_ms)
		plc_topo_start(tp);
	if (tp->init == PLC_INIT_READY)
		plc_off_tick(tp);
	if (plc_link_idle(tp))
		tp_plc__pump(tp);
	(void)tp_plc__leave(tp);
}

/* ------------------------------------------------------------------ */
/* The pump: what goes to the module next                               */

void
tp_plc__pump(struct tp *tp)
{
	bool		 up_first;
	int		 pass;

	if (tp->dead || !tp->started || tp->fd == -1 || !plc_link_idle(tp))
		return;
	if (tp->init != PLC_INIT_READY) {
		if (plc_now_ms(tp) < tp->next_probe_ms)
			return;
		tp->next_probe_ms = plc_now_ms(tp) + TP_PLC_PROBE_MS;
		(void)plc_link_request(tp, PLC_REQ_RUN_MODE, PLC_AFN_QUERY,
		    PLC_FN_RUN_MODE, NULL, NULL, 0, tp->timeout_ms, 0, 0);
		return;
	}
	/* UP frames and the module's own work take turns. */
	up_first = tp->prefer_up;
	for (pass = 0; pass < 2; pass++) {
		if ((pass == 0) == up_first) {
			if (tp->slen > 0) {
				tp_plc_pump_up(tp);
				tp->prefer_up = false;
				return;
			}
		} else if (plc_topo_pump(tp) || plc_off_pump(tp)) {
			tp->prefer_up = true;
			return;
		}
	}
}

/* The next UP frame of the ring, in a forwarding request. */
static void
tp_plc_pump_up(struct tp *tp)
{
	struct plc_txslot *sl = &tp->slots[tp->shead];
	struct plc_wr	 w;
	uint8_t		 du[8 + 255];
	uint64_t	 cookie = sl->cookie;
	bool		 bc = (sl->dst.flags & TP_ADDR_F_BROADCAST) != 0;
	uint32_t	 to;
	int		 r;

	plc_wr_init(&w, du, sizeof(du));
	if (bc) {
		(void)plc_du_broadcast(&w, PLC_PROTO_TRANSPARENT, sl->buf,
		    sl->len);
		to = tp->timeout_ms + (uint32_t)tp->mode.broadcast_s * 1000;
		r = plc_link_request(tp, PLC_REQ_BROADCAST, PLC_AFN_CONTROL,
		    PLC_FN_BROADCAST, NULL, du, w.len, to, 0, cookie);
	} else {
		(void)plc_du_monitor(&w, PLC_PROTO_TRANSPARENT, sl->buf,
		    sl->len);
		to = tp->timeout_ms + (uint32_t)tp->mode.monitor_s * 1000;
		r = plc_link_request(tp, PLC_REQ_UNICAST, PLC_AFN_ROUTE_FWD,
		    PLC_FN_MONITOR, sl->dst.b, du, w.len, to, 0, cookie);
	}
	tp->shead = (tp->shead + 1) % tp->tx_queue;
	tp->slen--;
	if (r != 0) {
		tp->st.tx_errors++;
		if (tp->host->tx_done != NULL)
			tp->host->tx_done(tp->host->arg, tp, cookie, TP_EIO,
			    0);
	}
	if (tp->want_writable && !tp->dead) {
		tp->want_writable = false;
		tp->host->writable(tp->host->arg, tp);
	}
}

static int
tp_plc_send(struct tp *tp, const struct tp_addr *dst,
    const struct iovec *iov, int iovcnt, uint64_t cookie)
{
	struct plc_txslot *sl;
	size_t		 len = 0, off = 0;
	int		 i;

	if (tp->dead)
		return (TP_EIO);
	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len == 0 || len > tp_plc_mtu(tp))
		return (TP_EMSGSIZE);
	if (dst->flags & TP_ADDR_F_BROADCAST) {
		if (!tp->use_broadcast)
			return (TP_ENOPEER);
	} else if (dst->len != PLC_ADDR_LEN)
		return (TP_ENOPEER);
	if (!tp->link_up)
		return (TP_EIO);
	if (tp->slen == tp->tx_queue) {
		tp->st.eagain++;
		tp->want_writable = true;
		return (TP_EAGAIN);
	}
	sl = &tp->slots[(tp->shead + tp->slen) % tp->tx_queue];
	sl->dst = *dst;
	sl->cookie = cookie;
	sl->len = len;
	for (i = 0; i < iovcnt; i++) {
		memcpy(sl->buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	tp->slen++;
	plc_link_kick(tp);
	return (TP_OK);
}

/* ------------------------------------------------------------------ */
/* Answers, failures, reports                                           */

static void
tp_plc_deliver(struct tp *tp, const uint8_t addr[PLC_ADDR_LEN],
    const uint8_t *msg, size_t len)
{
	struct tp_addr	 src;
	struct tp_rxinfo ri;

	memset(&src, 0, sizeof(src));
	src.len = PLC_ADDR_LEN;
	memcpy(src.b, addr, PLC_ADDR_LEN);
	ri.rssi_dbm = INT16_MAX;
	ri.snr_db = INT8_MAX;
	ri.rx_ms = plc_now_ms(tp);
	tp->host->rx(tp->host->arg, tp, &src, msg, len, &ri);
}

/* The UP frame of the request left and was answered (or not). */
static void
tp_plc_up_done(struct tp *tp, int status)
{
	struct plc_req	*r = &tp->req;

	if (status != TP_OK)
		tp->st.tx_errors++;
	r->kind = PLC_REQ_NONE;
	if (tp->host->tx_done != NULL)
		tp->host->tx_done(tp->host->arg, tp, r->cookie, status,
		    r->line_us);
}

void
tp_plc__answer(struct tp *tp, const struct plc_frame *f)
{
	struct plc_req	*r = &tp->req;
	const uint8_t	*msg;
	size_t		 msglen;
	uint16_t	 t;
	uint8_t		 proto;
	bool		 ack = f->afn == PLC_AFN_ACK;
	int		 e;

	switch (r->kind) {
	case PLC_REQ_RUN_MODE:
		if (f->afn != PLC_AFN_QUERY || f->fn != PLC_FN_RUN_MODE)
			break;
		tp_plc_run_mode(tp, f, false);
		return;
	case PLC_REQ_TOPOLOGY:
	case PLC_REQ_NODE_INFO:
	case PLC_REQ_NODE_RELAY:
		if (f->afn != PLC_AFN_ROUTE_QUERY || f->fn != r->fn)
			break;
		plc_topo_answer(tp, f);
		return;
	case PLC_REQ_ROUTE_STATE:
	case PLC_REQ_UPG_STATUS:
	case PLC_REQ_CLEAR:
	case PLC_REQ_SEGMENT:
		plc_off_answer(tp, f);
		return;
	case PLC_REQ_UNICAST:
		if (ack) {
			/* A module that confirms the forwarding only. */
			tp_plc_up_done(tp, TP_OK);
			return;
		}
		if (f->afn != PLC_AFN_ROUTE_FWD || f->fn != PLC_FN_MONITOR)
			break;
		if ((e = plc_du_monitor_up_dec(f->data, f->len, &t, &proto,
		    &msg, &msglen)) != PLC_OK) {
			tp->rx_dropped++;
			tp_plc__log(tp, UP_LOG_INFO,
			    "station answer dropped: %s", plc_strerror(e));
			return;
		}
		tp_plc_up_done(tp, TP_OK);
		if (msglen > 0 && proto == PLC_PROTO_TRANSPARENT && !tp->dead)
			tp_plc_deliver(tp, r->dst, msg, msglen);
		return;
	case PLC_REQ_BROADCAST:
		if (!ack)
			break;
		tp_plc_up_done(tp, TP_OK);
		return;
	case PLC_REQ_NONE:
		return;
	}
	tp->rx_dropped++;
	tp_plc__log(tp, UP_LOG_INFO,
	    "answer AFN %02XH F%u to %s dropped: not its "
	    "answer",
	    f->afn, f->fn, plc_req_str(r->kind));
}

void
tp_plc__failed(struct tp *tp, int deny)
{
	struct plc_req	*r = &tp->req;
	char		 s[PLC_ADDR_TEXT];

	switch (r->kind) {
	case PLC_REQ_RUN_MODE:
		if (tp->fails >= TP_PLC_FAILS_DOWN || deny >= 0)
			tp_plc_set_link(tp, false);
		break;
	case PLC_REQ_TOPOLOGY:
	case PLC_REQ_NODE_INFO:
	case PLC_REQ_NODE_RELAY:
		plc_topo_failed(tp, deny);
		break;
	case PLC_REQ_ROUTE_STATE:
	case PLC_REQ_UPG_STATUS:
	case PLC_REQ_CLEAR:
	case PLC_REQ_SEGMENT:
		plc_off_failed(tp, deny);
		break;
	case PLC_REQ_UNICAST:
		plc_addr_fmt(r->dst, s, sizeof(s));
		if (deny == PLC_DENY_NOT_IN_NET || deny == PLC_DENY_NO_METER) {
			tp_plc__log(tp, UP_LOG_INFO, "station %s: %s", s,
			    plc_deny_str((unsigned int)deny));
			tp_plc_up_done(tp, TP_ENOPEER);
		} else if (deny >= 0 && deny != PLC_DENY_BUSY) {
			/* Forwarded, the station said nothing back:
			 * normal for UP frames that need no answer. */
			tp_plc_up_done(tp, TP_OK);
		} else if (deny == PLC_DENY_BUSY) {
			tp->hold_until_ms = plc_now_ms(tp) + TP_PLC_BUSY_MS;
			tp_plc_up_done(tp, TP_EAGAIN);
		} else
			tp_plc_up_done(tp, TP_EIO);
		break;
	case PLC_REQ_BROADCAST:
		if (deny == PLC_DENY_BUSY)
			tp->hold_until_ms = plc_now_ms(tp) + TP_PLC_BUSY_MS;
		if (deny == PLC_DENY_UNSUPPORTED || deny == PLC_DENY_NO_INFO) {
			/* A module without broadcasts: unicast only. */
			tp_plc__log(tp, UP_LOG_WARN, "the module does not "
			    "broadcast (05H F3): unicast only");
			tp->use_broadcast = false;
			tp_plc_up_done(tp, TP_ENOPEER);
			if (!tp->dead)
				tp->host->link(tp->host->arg, tp,
				    TP_CAPS_CHANGED);
			break;
		}
		tp_plc_up_done(tp, deny < 0 ? TP_EIO : TP_EAGAIN);
		break;
	case PLC_REQ_NONE:
		break;
	}
	tp->req.kind = PLC_REQ_NONE;
	if (deny < 0 && tp->fails >= TP_PLC_FAILS_DOWN && !tp->dead &&
	    tp->init == PLC_INIT_READY) {
		tp_plc__log(tp, UP_LOG_WARN, "the module does not answer");
		tp->init = PLC_INIT_RUN_MODE;
		tp->next_probe_ms = plc_now_ms(tp) + TP_PLC_PROBE_MS;
		tp_plc_set_link(tp, false);
	}
}

void
tp_plc__lost(struct tp *tp)
{
	tp->init = PLC_INIT_RUN_MODE;
	tp->next_probe_ms = plc_now_ms(tp) + TP_PLC_PROBE_MS;
	tp->walk = PLC_WALK_IDLE;
	tp_plc_set_link(tp, false);
}

void
tp_plc__report(struct tp *tp, const struct plc_frame *f)
{
	const uint8_t	*msg;
	size_t		 msglen;
	uint8_t		 dev, proto;
	char		 s[PLC_ADDR_TEXT];
	int		 e;

	if (f->afn == PLC_AFN_QUERY && f->fn == PLC_FN_RUN_MODE) {
		tp_plc_run_mode(tp, f, true);
		return;
	}
	if (f->afn != PLC_AFN_REPORT)
		return;
	if (f->fn != PLC_FN_EVENT) {
		tp_plc__log(tp, UP_LOG_DEBUG, "report 06H F%u ignored", f->fn);
		return;
	}
	if ((e = plc_du_event_dec(f->data, f->len, &dev, &proto, &msg,
	    &msglen)) != PLC_OK) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_INFO, "station event dropped: %s",
		    plc_strerror(e));
		return;
	}
	if (!f->info.module) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_INFO, "station event without a station "
		    "address dropped");
		return;
	}
	if (proto != PLC_PROTO_TRANSPARENT || msglen == 0) {
		plc_addr_fmt(f->src, s, sizeof(s));
		tp_plc__log(tp, UP_LOG_DEBUG, "station %s: event of protocol "
		    "%02XH ignored", s, proto);
		return;
	}
	tp_plc_deliver(tp, f->src, msg, msglen);
}

/* 03H F10: asked for (set-up) or reported (the module restarted). */
static void
tp_plc_run_mode(struct tp *tp, const struct plc_frame *f, bool reported)
{
	struct plc_run_mode m;
	uint32_t	 old_mtu, old_seg;
	bool		 was_known = tp->known;
	int		 e;

	if ((e = plc_du_run_mode_dec(f->data, f->len, &m)) != PLC_OK ||
	    m.max_frame < 64) {
		tp->rx_dropped++;
		tp_plc__log(tp, UP_LOG_WARN, "run mode dropped: %s",
		    e != PLC_OK ? plc_strerror(e)
				: "longest frame under 64 bytes");
		return;
	}
	if (!reported)
		tp->req.kind = PLC_REQ_NONE;
	old_mtu = tp_plc_mtu(tp);
	old_seg = tp_plc__segment(tp);
	tp->mode = m;
	tp->known = true;
	if (tp->comm_opt == 0)
		tp->comm = m.comm == 1 ? PLC_COMM_NARROWBAND :
		    m.comm == 3 ? PLC_COMM_RF : PLC_COMM_HPLC;
	if (!tp->master_set)
		memcpy(tp->master, m.master, PLC_ADDR_LEN);
	tp_plc__log(tp, UP_LOG_INFO,
	    "module %.2s %.2s %s: frame %u, segment %u, "
	    "upgrade wait %u min, monitor %u s, %u stations",
	    m.vendor, m.chip, reported ? "restarted" : "ready", m.max_frame,
	    m.max_segment, m.upgrade_wait, m.monitor_s, m.nodes);
	if (reported && was_known) {
		/* A power-up report: the module lost what it was doing.
		 * The link stays up (the engine's sessions go on); the
		 * request it was serving goes again at once. */
		tp->resets++;
		plc_link_resend(tp);
	}
	tp->init = PLC_INIT_READY;
	tp->fails = 0;
	if (!tp->dead)
		tp_plc_set_link(tp, true);
	/*
	 * The first run mode fills in what open() could not know (the
	 * module's segment size, so TP_CAP_OFFLOAD; its monitoring time,
	 * response_ms; the mtu its longest frame leaves); a later one may
	 * change the sizes.
	 */
	if (!tp->dead && (!was_known || old_mtu != tp_plc_mtu(tp) ||
	    old_seg != tp_plc__segment(tp)))
		tp->host->link(tp->host->arg, tp, TP_CAPS_CHANGED);
	if (tp->dead)
		return;
	plc_topo_start(tp);
	if (was_known)
		plc_off_module_reset(tp);
}

/* ------------------------------------------------------------------ */
/* Offload ops                                                          */

static int
tp_plc_offload_start(struct tp *tp, const struct tp_offload *o,
    char **cause)
{
	if (!tp->use_offload || tp_plc__segment(tp) == 0)
		return (tp__cause(cause, "%s: the module offers no file "
		    "transfer", tp->name));
	return (plc_off_start(tp, o, cause));
}

static void
tp_plc_offload_cancel(struct tp *tp, uint32_t id)
{
	plc_off_cancel(tp, id);
}
