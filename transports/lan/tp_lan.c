/*
 * tp_lan.c: the "lan" transport, UP over UDP/IPv4 multicast on one LAN
 * interface (one instance = one broadcast domain).
 *
 * Two sockets, as docs/up-protocol.md §5.3 (addressing on the LAN
 * transport) fixes for both ends:
 *
 *  - the group socket, bound to group:port with SO_REUSEADDR (so nodes on
 *    the same host can bind it too) and a membership on the interface.  It
 *    only receives: the ANNOUNCEs nodes multicast at boot, before they
 *    know our address.  Our own multicast loops back here when loop = yes
 *    (and always on lo), so frames whose source is our unicast socket are
 *    dropped.
 *  - the unicast socket, bound to the interface address (ephemeral port or
 *    unicast_port).  Everything is sent from it: multicast to group:port
 *    (IP_MULTICAST_IF/TTL/LOOP) and unicast to a node's address.  Nodes
 *    answer to the source address of what they heard, so their replies
 *    arrive here.
 *
 * Both sockets are non-blocking and read from EV_PERSIST events on the
 * host's base into one buffer allocated at open: no allocation per frame.
 * send() is one sendmsg() of the caller's iovecs; a full socket buffer
 * (EAGAIN) or a full device queue (ENOBUFS, visible thanks to IP_RECVERR,
 * ip(7)) returns TP_EAGAIN and arms an event that calls host->writable()
 * from the loop, never from inside send().  With a host that flushes
 * (host->flushes, the engine) multicast frames are copied into a batch
 * of TP_LAN_TXQ and go in one sendmmsg() at flush(), once per wake-up of
 * the engine's pacer; a unicast frame flushes the batch first, so frames
 * leave in the order they were given.  docs/transports/lan.md has the
 * options, the deployment notes and what the tests cover.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <net/if.h>
#include <netinet/in.h>

#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transports_internal.h"

/* Address bytes: IPv4 address then port, both in network order. */
#define TP_LAN_ADDR_LEN		6
#define TP_LAN_PREFIX		"lan:"

/* Frames read per readable event and socket, so one busy socket cannot
 * hold the loop; the event is level-triggered and fires again. */
#define TP_LAN_RX_BUDGET	64

/* Back-off after ENOBUFS: the device queue (a tbf qdisc, say) drains
 * at the link rate, but gives no readiness event, so poll it. */
#define TP_LAN_RETRY_US		1000

/* Multicast frames held for one sendmmsg() (host->flushes). */
#define TP_LAN_TXQ		16

/* Bound on sndbuf_kib/rcvbuf_kib so bytes fit in an int. */
#define TP_LAN_BUF_KIB_MAX	(1024 * 1024)

struct tp {
	const struct tp_host	*host;
	char			*name;		/* instance, for logs */

	struct sockaddr_in	 group;		/* group:port */
	struct in_addr		 ifaddr;	/* interface address */
	unsigned int		 ifindex;	/* 0 when not known */
	char			 ifname[IF_NAMESIZE];
	struct sockaddr_in	 self;		/* unicast socket address */

	uint32_t		 mtu;
	uint32_t		 overhead;
	uint32_t		 tx_queue;
	uint64_t		 bitrate_bps;

	int			 gfd;		/* group socket */
	int			 ufd;		/* unicast socket */
	struct event		*ev_grp;	/* gfd readable */
	struct event		*ev_uni;	/* ufd readable */
	struct event		*ev_wr;		/* ufd writable after EAGAIN */
	struct event		*ev_retry;	/* timer after ENOBUFS */
	struct event		*ev_notify;	/* deferred link events */

	int			 started;
	int			 link_up;	/* what send/rx last saw */
	int			 link_told;	/* last told host, -1 never */
	int			 in_cb;		/* inside a host callback */
	int			 dead;		/* closed inside a callback */

	struct tp_stats		 st;
	uint64_t		 rx_own;	/* own multicast dropped */
	uint64_t		 rx_trunc;	/* larger than rxbuf */

	size_t			 rxcap;
	uint8_t			*rxbuf;

	/* The batch: frames [txh, txh + txn) of txbuf (mtu bytes each). */
	uint8_t			*txbuf;		/* NULL: no batching */
	struct mmsghdr		 txm[TP_LAN_TXQ];
	struct iovec		 txv[TP_LAN_TXQ];
	unsigned int		 txh;
	unsigned int		 txn;
	int			 tx_blocked;	/* the link refused the batch */
};

static const char	*tp_lan_check_group(const char *);
static const char	*tp_lan_check_iface(const char *);

static int	 tp_lan_open(const struct tp_host *, const struct tp_conf *,
		    struct tp **, char **);
static int	 tp_lan_start(struct tp *, char **);
static void	 tp_lan_close(struct tp *);
static void	 tp_lan_caps(struct tp *, struct tp_caps *);
static void	 tp_lan_flush(struct tp *);
static int	 tp_lan_send(struct tp *, const struct tp_addr *,
		    const struct iovec *, int, uint64_t);
static int	 tp_lan_addr_fmt(const struct tp_addr *, char *, size_t);
static int	 tp_lan_addr_parse(const char *, struct tp_addr *, char **);
static void	 tp_lan_stats(struct tp *, struct tp_stats *);

static int	 tp_lan_resolve_iface(struct tp *, const char *, char **);
static int	 tp_lan_group_socket(struct tp *, int, char **);
static int	 tp_lan_unicast_socket(struct tp *, int, int, int, int,
		    int, char **);
static void	 tp_lan_setbuf(struct tp *, int, const char *, int, int,
		    int);
static void	 tp_lan_rx_cb(evutil_socket_t, short, void *);
static void	 tp_lan_errqueue(struct tp *);
static void	 tp_lan_writable_cb(evutil_socket_t, short, void *);
static void	 tp_lan_notify_cb(evutil_socket_t, short, void *);
static void	 tp_lan_set_link(struct tp *, int);
static void	 tp_lan_teardown(struct tp *);
static void	 tp_lan_free(struct tp *);
static void	 tp_lan_sin_to_addr(const struct sockaddr_in *,
		    struct tp_addr *);
static const char *tp_lan_sin_str(const struct sockaddr_in *, char *,
		    size_t);

static const struct tp_option tp_lan_options[] = {
	{ "group", TP_OPT_STRING, "239.255.42.1", 0, 0, NULL,
	  "IPv4 multicast group the nodes listen on", tp_lan_check_group },
	{ "port", TP_OPT_INT, "4242", 1, 65535, NULL,
	  "UDP port of the group", NULL },
	{ "interface", TP_OPT_STRING, "127.0.0.1", 0, 0, NULL,
	  "IPv4 address or name of the interface of this domain",
	  tp_lan_check_iface },
	{ "unicast_port", TP_OPT_INT, "0", 0, 65535, NULL,
	  "local port that sends and hears replies, 0 = any", NULL },
	{ "ttl", TP_OPT_INT, "1", 0, 255, "hops",
	  "multicast TTL (1 = this link only)", NULL },
	{ "loop", TP_OPT_BOOL, "yes", 0, 0, NULL,
	  "loop multicast back to local sockets (nodes on this host)", NULL },
	{ "bitrate_mbit", TP_OPT_INT, "100", 1, 100000, "Mbit/s",
	  "declared link capacity the engine paces to", NULL },
	{ "mtu", TP_OPT_INT, "1472", 548, 65507, "bytes",
	  "largest UP frame per datagram (1472 = Ethernet 1500 - 28)", NULL },
	{ "frame_overhead", TP_OPT_INT, "42", 0, 1024, "bytes",
	  "link bytes per frame the pacer counts (UDP+IPv4+Ethernet)", NULL },
	{ "sndbuf_kib", TP_OPT_INT, "4096", 0, TP_LAN_BUF_KIB_MAX, "KiB",
	  "SO_SNDBUF of the unicast socket, 0 = system default", NULL },
	{ "rcvbuf_kib", TP_OPT_INT, "4096", 0, TP_LAN_BUF_KIB_MAX, "KiB",
	  "SO_RCVBUF of both sockets, 0 = system default", NULL },
	{ "tx_queue", TP_OPT_INT, "64", 1, 65536, "frames",
	  "frames the engine may send in a burst before waiting", NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};

const struct tp_ops tp_lan_ops = {
	.name = "lan",
	.abi = TP_ABI_VERSION,
	.options = tp_lan_options,
	.open = tp_lan_open,
	.start = tp_lan_start,
	.close = tp_lan_close,
	.caps = tp_lan_caps,
	.send = tp_lan_send,
	.flush = tp_lan_flush,
	.addr_fmt = tp_lan_addr_fmt,
	.addr_parse = tp_lan_addr_parse,
	.airtime = NULL,
	.stats = tp_lan_stats
};

/* ------------------------------------------------------------------ */
/* Options                                                              */

static const char *
tp_lan_check_group(const char *v)
{
	struct in_addr	 a;

	if (inet_pton(AF_INET, v, &a) != 1)
		return ("not an IPv4 address");
	if (!IN_MULTICAST(ntohl(a.s_addr)))
		return ("not an IPv4 multicast address (224.0.0.0/4)");
	return (NULL);
}

static const char *
tp_lan_check_iface(const char *v)
{
	struct in_addr	 a;
	size_t		 i, len;

	if (inet_pton(AF_INET, v, &a) == 1) {
		if (a.s_addr == htonl(INADDR_ANY))
			return ("0.0.0.0 names no interface; give the "
			    "interface's own address or its name");
		if (IN_MULTICAST(ntohl(a.s_addr)) ||
		    a.s_addr == htonl(INADDR_BROADCAST))
			return ("not a unicast interface address");
		return (NULL);
	}
	/*
	 * Else an interface name, resolved at open (getifaddrs).  Linux
	 * names have no '/' nor blanks; ':' is allowed for the labels of
	 * secondary addresses ("eth0:1").
	 */
	len = strlen(v);
	if (len == 0 || len >= IF_NAMESIZE)
		return ("neither an IPv4 address nor an interface name");
	for (i = 0; i < len; i++) {
		if (v[i] == '/' || v[i] <= ' ' || v[i] > '~')
			return ("neither an IPv4 address nor an interface "
			    "name");
	}
	return (NULL);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

static void
tp_lan_sin_to_addr(const struct sockaddr_in *sin, struct tp_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->len = TP_LAN_ADDR_LEN;
	memcpy(a->b, &sin->sin_addr.s_addr, 4);
	memcpy(a->b + 4, &sin->sin_port, 2);
}

static const char *
tp_lan_sin_str(const struct sockaddr_in *sin, char *buf, size_t len)
{
	char	 ip[INET_ADDRSTRLEN];

	if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	return (buf);
}

static int
tp_lan_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	int	 n;

	if (a->flags & TP_ADDR_F_BROADCAST)
		n = snprintf(buf, len, TP_LAN_PREFIX "broadcast");
	else if (a->len == TP_LAN_ADDR_LEN)
		n = snprintf(buf, len, TP_LAN_PREFIX "%u.%u.%u.%u:%u",
		    a->b[0], a->b[1], a->b[2], a->b[3],
		    (unsigned int)a->b[4] << 8 | a->b[5]);
	else
		return (-1);
	if (n < 0 || (size_t)n >= len)
		return (-1);
	return (0);
}

static int
tp_lan_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	struct sockaddr_in	 sin;
	char			 ip[INET_ADDRSTRLEN];
	const char		*p, *colon;
	long long		 port;

	if (s == NULL || strncmp(s, TP_LAN_PREFIX,
	    sizeof(TP_LAN_PREFIX) - 1) != 0)
		goto bad;
	p = s + sizeof(TP_LAN_PREFIX) - 1;
	if (strcmp(p, "broadcast") == 0) {
		tp_addr_broadcast(a);
		return (0);
	}
	if ((colon = strrchr(p, ':')) == NULL ||
	    (size_t)(colon - p) >= sizeof(ip))
		goto bad;
	memcpy(ip, p, colon - p);
	ip[colon - p] = '\0';
	memset(&sin, 0, sizeof(sin));
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1 ||
	    tp__parse_int(colon + 1, &port) != 0 || port < 1 || port > 65535)
		goto bad;
	sin.sin_port = htons((uint16_t)port);
	tp_lan_sin_to_addr(&sin, a);
	return (0);
bad:
	return (tp__cause(cause, "bad lan address \"%s\": expected "
	    "lan:A.B.C.D:PORT or lan:broadcast", s != NULL ? s : ""));
}

/* ------------------------------------------------------------------ */
/* Open and close                                                       */

/* Finds the interface's IPv4 address, and its index when named. */
static int
tp_lan_resolve_iface(struct tp *tp, const char *iface, char **cause)
{
	struct ifaddrs	*ifap, *ifa;
	int		 found = 0;

	if (inet_pton(AF_INET, iface, &tp->ifaddr) == 1) {
		/* Any interface holding the address; the kernel finds it. */
		tp->ifname[0] = '\0';
		tp->ifindex = 0;
		return (0);
	}
	if (getifaddrs(&ifap) == -1)
		return (tp__cause(cause, "transport.%s: getifaddrs: %s",
		    tp->name, strerror(errno)));
	for (ifa = ifap; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL ||
		    ifa->ifa_addr->sa_family != AF_INET ||
		    strcmp(ifa->ifa_name, iface) != 0)
			continue;
		memcpy(&tp->ifaddr, &((struct sockaddr_in *)(void *)
		    ifa->ifa_addr)->sin_addr, sizeof(tp->ifaddr));
		found = 1;
		break;
	}
	freeifaddrs(ifap);
	if (!found)
		return (tp__cause(cause, "transport.%s: interface \"%s\": "
		    "no such interface or no IPv4 address on it", tp->name,
		    iface));
	snprintf(tp->ifname, sizeof(tp->ifname), "%s", iface);
	tp->ifindex = if_nametoindex(iface);
	return (0);
}

/*
 * Best effort: a root daemon may exceed net.core.[rw]mem_max with the
 * *BUFFORCE variants; otherwise the kernel caps the value.  Either way
 * the effective size (which Linux reports doubled, socket(7)) is logged.
 */
static void
tp_lan_setbuf(struct tp *tp, int fd, const char *what, int opt,
    int forceopt, int kib)
{
	int		 want, got = 0;
	socklen_t	 len = sizeof(got);

	if (kib <= 0)
		return;
	want = kib * 1024;
	if (setsockopt(fd, SOL_SOCKET, forceopt, &want, sizeof(want)) == -1 &&
	    setsockopt(fd, SOL_SOCKET, opt, &want, sizeof(want)) == -1)
		up_logf(UP_LOG_WARN, "transport.%s: %s %d: %s", tp->name,
		    what, want, strerror(errno));
	if (getsockopt(fd, SOL_SOCKET, opt, &got, &len) == 0)
		up_logf(UP_LOG_DEBUG, "transport.%s: %s asked %d, effective "
		    "%d", tp->name, what, want, got);
}

static int
tp_lan_group_socket(struct tp *tp, int rcvbuf_kib, char **cause)
{
	struct ip_mreqn	 mr;
	char		 sbuf[32], ibuf[INET_ADDRSTRLEN];
	int		 fd, on = 1, off = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (tp__cause(cause, "transport.%s: socket: %s", tp->name,
		    strerror(errno)));
	tp->gfd = fd;
	/* Nodes on the same host bind the same group:port. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		return (tp__cause(cause, "transport.%s: SO_REUSEADDR: %s",
		    tp->name, strerror(errno)));
	/*
	 * Bound to the group address, not INADDR_ANY: unicast datagrams
	 * to the port and other groups on it are not ours.
	 */
	if (bind(fd, (struct sockaddr *)&tp->group, sizeof(tp->group)) == -1)
		return (tp__cause(cause, "transport.%s: bind %s: %s",
		    tp->name, tp_lan_sin_str(&tp->group, sbuf, sizeof(sbuf)),
		    strerror(errno)));
	memset(&mr, 0, sizeof(mr));
	mr.imr_multiaddr = tp->group.sin_addr;
	mr.imr_address = tp->ifaddr;
	mr.imr_ifindex = (int)tp->ifindex;
	if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
	    sizeof(mr)) == -1)
		return (tp__cause(cause, "transport.%s: join %s on %s: %s",
		    tp->name, tp_lan_sin_str(&tp->group, sbuf, sizeof(sbuf)),
		    tp->ifname[0] ? tp->ifname : inet_ntop(AF_INET,
		    &tp->ifaddr, ibuf, sizeof(ibuf)), strerror(errno)));
	/*
	 * Linux delivers a group to every socket bound to its port once
	 * any socket of the host joined it on any interface (ip(7),
	 * IP_MULTICAST_ALL).  Off, this socket hears only its own
	 * membership: two instances on two interfaces stay two domains.
	 */
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &off,
	    sizeof(off)) == -1)
		up_logf(UP_LOG_DEBUG, "transport.%s: IP_MULTICAST_ALL: %s",
		    tp->name, strerror(errno));
	tp_lan_setbuf(tp, fd, "group rcvbuf", SO_RCVBUF, SO_RCVBUFFORCE,
	    rcvbuf_kib);
	return (0);
}

static int
tp_lan_unicast_socket(struct tp *tp, int uport, int ttl, int loop,
    int sndbuf_kib, int rcvbuf_kib, char **cause)
{
	struct sockaddr_in	 sin;
	struct ip_mreqn		 mr;
	socklen_t		 slen;
	unsigned char		 cttl = (unsigned char)ttl;
	unsigned char		 cloop = loop ? 1 : 0;
	char			 sbuf[32];
	int			 fd, on = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (tp__cause(cause, "transport.%s: socket: %s", tp->name,
		    strerror(errno)));
	tp->ufd = fd;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = tp->ifaddr;
	sin.sin_port = htons((uint16_t)uport);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		return (tp__cause(cause, "transport.%s: bind %s: %s",
		    tp->name, tp_lan_sin_str(&sin, sbuf, sizeof(sbuf)),
		    strerror(errno)));
	slen = sizeof(tp->self);
	if (getsockname(fd, (struct sockaddr *)&tp->self, &slen) == -1)
		return (tp__cause(cause, "transport.%s: getsockname: %s",
		    tp->name, strerror(errno)));

	/*
	 * The interface of every multicast we send.  Without it the
	 * kernel routes the group like any address (the default route),
	 * which on a gateway is the uplink; with it no multicast route
	 * and, on lo, no MULTICAST flag is needed.
	 */
	memset(&mr, 0, sizeof(mr));
	mr.imr_address = tp->ifaddr;
	mr.imr_ifindex = (int)tp->ifindex;
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr,
	    sizeof(mr)) == -1)
		return (tp__cause(cause, "transport.%s: IP_MULTICAST_IF: %s",
		    tp->name, strerror(errno)));
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &cttl,
	    sizeof(cttl)) == -1)
		return (tp__cause(cause, "transport.%s: IP_MULTICAST_TTL: %s",
		    tp->name, strerror(errno)));
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &cloop,
	    sizeof(cloop)) == -1)
		return (tp__cause(cause, "transport.%s: IP_MULTICAST_LOOP: "
		    "%s", tp->name, strerror(errno)));
	/*
	 * Without IP_RECVERR a UDP send that the device queue drops
	 * (ENOBUFS) reports success and the frame is silently lost; with
	 * it the engine gets TP_EAGAIN and backs off.  The price: ICMP
	 * errors (a node's port closed) are queued on the socket, read
	 * by tp_lan_errqueue(), and may surface once on a later send.
	 */
	if (setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on)) == -1)
		return (tp__cause(cause, "transport.%s: IP_RECVERR: %s",
		    tp->name, strerror(errno)));
	tp_lan_setbuf(tp, fd, "sndbuf", SO_SNDBUF, SO_SNDBUFFORCE,
	    sndbuf_kib);
	tp_lan_setbuf(tp, fd, "unicast rcvbuf", SO_RCVBUF, SO_RCVBUFFORCE,
	    rcvbuf_kib);
	return (0);
}

static int
tp_lan_open(const struct tp_host *host, const struct tp_conf *conf,
    struct tp **tpp, char **cause)
{
	struct tp	*tp;
	const char	*group, *iface, *why;
	char		 sbuf[32], gbuf[32], ibuf[INET_ADDRSTRLEN];
	int		 port, uport, ttl, loop, sndbuf, rcvbuf;

	*tpp = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (host == NULL || host->base == NULL)
		return (tp__cause(cause, "transport.%s: no event base",
		    conf->name != NULL ? conf->name : "?"));
	if ((tp = calloc(1, sizeof(*tp))) == NULL)
		return (tp__cause(cause, "transport: out of memory"));
	tp->gfd = tp->ufd = -1;
	tp->link_told = -1;
	tp->host = host;
	if ((tp->name = strdup(conf->name != NULL ? conf->name : "lan")) ==
	    NULL) {
		free(tp);
		return (tp__cause(cause, "transport: out of memory"));
	}

	/*
	 * tp_conf_check() has run, but open() may be handed a section
	 * that skipped it: the values that would misroute traffic are
	 * checked again here.
	 */
	group = tp_conf_str(conf, "group");
	iface = tp_conf_str(conf, "interface");
	if (group == NULL || (why = tp_lan_check_group(group)) != NULL) {
		tp__cause(cause, "transport.%s: group = \"%s\": %s",
		    tp->name, group != NULL ? group : "", group != NULL ?
		    why : "missing");
		goto fail;
	}
	if (iface == NULL || (why = tp_lan_check_iface(iface)) != NULL) {
		tp__cause(cause, "transport.%s: interface = \"%s\": %s",
		    tp->name, iface != NULL ? iface : "", iface != NULL ?
		    why : "missing");
		goto fail;
	}
	port = (int)tp_conf_int(conf, "port");
	uport = (int)tp_conf_int(conf, "unicast_port");
	ttl = (int)tp_conf_int(conf, "ttl");
	loop = tp_conf_bool(conf, "loop");
	tp->bitrate_bps = (uint64_t)tp_conf_int(conf, "bitrate_mbit") *
	    1000000;
	tp->mtu = (uint32_t)tp_conf_int(conf, "mtu");
	tp->overhead = (uint32_t)tp_conf_int(conf, "frame_overhead");
	tp->tx_queue = (uint32_t)tp_conf_int(conf, "tx_queue");
	sndbuf = (int)tp_conf_int(conf, "sndbuf_kib");
	rcvbuf = (int)tp_conf_int(conf, "rcvbuf_kib");
	if (port < 1 || port > 65535 || uport < 0 || uport > 65535 ||
	    ttl < 0 || ttl > 255 || tp->bitrate_bps == 0 || tp->mtu < 548 ||
	    tp->mtu > 65507 || tp->tx_queue == 0 || sndbuf < 0 ||
	    sndbuf > TP_LAN_BUF_KIB_MAX || rcvbuf < 0 ||
	    rcvbuf > TP_LAN_BUF_KIB_MAX) {
		tp__cause(cause, "transport.%s: options out of range (was "
		    "the section checked?)", tp->name);
		goto fail;
	}

	memset(&tp->group, 0, sizeof(tp->group));
	tp->group.sin_family = AF_INET;
	tp->group.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, group, &tp->group.sin_addr);
	if (tp_lan_resolve_iface(tp, iface, cause) != 0)
		goto fail;

	/*
	 * One receive buffer for both sockets, big enough for any frame
	 * the UP codec takes and for our own mtu; larger datagrams are
	 * truncated (MSG_TRUNC) and dropped.
	 */
	tp->rxcap = tp->mtu > UP_FRAME_MAX ? tp->mtu : UP_FRAME_MAX;
	if ((tp->rxbuf = malloc(tp->rxcap)) == NULL) {
		tp__cause(cause, "transport.%s: out of memory", tp->name);
		goto fail;
	}
	/* Pages of the batch are touched only as far as batches reach. */
	if (host->flushes && (tp->txbuf = malloc((size_t)TP_LAN_TXQ *
	    tp->mtu)) == NULL) {
		tp__cause(cause, "transport.%s: out of memory", tp->name);
		goto fail;
	}

	if (tp_lan_group_socket(tp, rcvbuf, cause) != 0 ||
	    tp_lan_unicast_socket(tp, uport, ttl, loop, sndbuf, rcvbuf,
	    cause) != 0)
		goto fail;

	tp->ev_grp = event_new(host->base, tp->gfd, EV_READ | EV_PERSIST,
	    tp_lan_rx_cb, tp);
	tp->ev_uni = event_new(host->base, tp->ufd, EV_READ | EV_PERSIST,
	    tp_lan_rx_cb, tp);
	tp->ev_wr = event_new(host->base, tp->ufd, EV_WRITE,
	    tp_lan_writable_cb, tp);
	tp->ev_retry = evtimer_new(host->base, tp_lan_writable_cb, tp);
	tp->ev_notify = event_new(host->base, -1, 0, tp_lan_notify_cb, tp);
	if (tp->ev_grp == NULL || tp->ev_uni == NULL || tp->ev_wr == NULL ||
	    tp->ev_retry == NULL || tp->ev_notify == NULL) {
		tp__cause(cause, "transport.%s: cannot create events",
		    tp->name);
		goto fail;
	}

	up_logf(UP_LOG_INFO, "transport.%s: lan group %s on %s%s%s%s, "
	    "sending from %s, ttl %d, loop %s, %llu Mbit/s, mtu %u",
	    tp->name, tp_lan_sin_str(&tp->group, gbuf, sizeof(gbuf)),
	    inet_ntop(AF_INET, &tp->ifaddr, ibuf, sizeof(ibuf)),
	    tp->ifname[0] ? " (" : "", tp->ifname,
	    tp->ifname[0] ? ")" : "",
	    tp_lan_sin_str(&tp->self, sbuf, sizeof(sbuf)), ttl,
	    loop ? "yes" : "no",
	    (unsigned long long)(tp->bitrate_bps / 1000000), tp->mtu);
	*tpp = tp;
	return (0);

fail:
	tp_lan_teardown(tp);
	tp_lan_free(tp);
	return (-1);
}

static int
tp_lan_start(struct tp *tp, char **cause)
{
	if (cause != NULL)
		*cause = NULL;
	if (tp->started)
		return (0);
	/* Frames that arrived since open wait in the socket buffers. */
	if (event_add(tp->ev_grp, NULL) == -1 ||
	    event_add(tp->ev_uni, NULL) == -1)
		return (tp__cause(cause, "transport.%s: cannot add events",
		    tp->name));
	tp->started = 1;
	tp_lan_set_link(tp, 1);
	return (0);
}

/* Deletes every event and closes every fd; the struct stays. */
static void
tp_lan_teardown(struct tp *tp)
{
	struct event	**evs[] = { &tp->ev_grp, &tp->ev_uni, &tp->ev_wr,
			    &tp->ev_retry, &tp->ev_notify };
	size_t		  i;

	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if (*evs[i] != NULL) {
			event_free(*evs[i]);
			*evs[i] = NULL;
		}
	}
	if (tp->gfd != -1)
		close(tp->gfd);
	if (tp->ufd != -1)
		close(tp->ufd);
	tp->gfd = tp->ufd = -1;
}

static void
tp_lan_free(struct tp *tp)
{
	free(tp->rxbuf);
	free(tp->txbuf);
	free(tp->name);
	free(tp);
}

static void
tp_lan_close(struct tp *tp)
{
	if (tp == NULL || tp->dead)
		return;
	up_logf(UP_LOG_DEBUG, "transport.%s: close (tx %llu frames, rx %llu "
	    "frames, own %llu dropped)", tp->name,
	    (unsigned long long)tp->st.tx_frames,
	    (unsigned long long)tp->st.rx_frames,
	    (unsigned long long)tp->rx_own);
	tp_lan_teardown(tp);
	/*
	 * Closed from inside one of our own host callbacks: the frame
	 * loop up the stack still holds tp, and frees it on return.
	 */
	if (tp->in_cb) {
		tp->dead = 1;
		return;
	}
	tp_lan_free(tp);
}

/* ------------------------------------------------------------------ */
/* Facts                                                                */

static void
tp_lan_caps(struct tp *tp, struct tp_caps *c)
{
	memset(c, 0, sizeof(*c));
	c->mtu = tp->mtu;
	c->flags = TP_CAP_BROADCAST | TP_CAP_UNICAST | TP_CAP_DISCOVERY;
	c->bitrate_bps = tp->bitrate_bps;
	/*
	 * UDP 8 + IPv4 20 + Ethernet 14 by default: what a tbf qdisc on
	 * a veth counts per datagram.  Real Ethernet adds preamble, FCS
	 * and gap (24 more); see docs/transports/lan.md.
	 */
	c->frame_overhead = tp->overhead;
	c->duty_cycle_ppm = 0;
	c->duty_window_ms = 0;
	c->min_gap_us = 0;
	c->max_peers = 0;
	c->tx_queue = tp->tx_queue;
}

static void
tp_lan_stats(struct tp *tp, struct tp_stats *s)
{
	*s = tp->st;
	/* Frames wait in the kernel's queue, and in the batch. */
	s->queued = tp->txn;
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

/*
 * What an error of sendmsg() or sendmmsg() means for the frame: TP_EAGAIN
 * (the event that calls writable() is armed), or the frame is lost and
 * counted: TP_EMSGSIZE, TP_ENOPEER (one node out of reach) or TP_EIO
 * (the link failed; TP_LINK_DOWN follows from the loop).
 */
static int
tp_lan_tx_error(struct tp *tp, const struct tp_addr *dst,
    const struct sockaddr_in *sin, int err)
{
	struct timeval		 tv;
	char			 sbuf[32];

	switch (err) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		/* The socket buffer is full: wait until it drains. */
		tp->st.eagain++;
		if (!event_pending(tp->ev_wr, EV_WRITE, NULL))
			event_add(tp->ev_wr, NULL);
		return (TP_EAGAIN);
	case ENOBUFS:
		/* The device queue is full: no fd event says when it is
		 * not, so try again after a short while. */
		tp->st.eagain++;
		if (!evtimer_pending(tp->ev_retry, NULL)) {
			tv.tv_sec = 0;
			tv.tv_usec = TP_LAN_RETRY_US;
			evtimer_add(tp->ev_retry, &tv);
		}
		return (TP_EAGAIN);
	case EMSGSIZE:
		/* Smaller than mtu yet too big for the path. */
		tp->st.tx_errors++;
		return (TP_EMSGSIZE);
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ENETUNREACH:
		/* One node out of reach is not the link failing. */
		if (!(dst->flags & TP_ADDR_F_BROADCAST)) {
			tp->st.tx_errors++;
			up_logf(UP_LOG_DEBUG, "transport.%s: send to %s: %s",
			    tp->name, tp_lan_sin_str(sin, sbuf,
			    sizeof(sbuf)), strerror(err));
			return (TP_ENOPEER);
		}
		break;
	default:
		break;
	}
	tp->st.tx_errors++;
	/* Warn once per outage, not once per frame. */
	up_logf(tp->link_up ? UP_LOG_WARN : UP_LOG_DEBUG, "transport.%s: "
	    "send to %s: %s", tp->name, tp_lan_sin_str(sin, sbuf,
	    sizeof(sbuf)), strerror(err));
	/* TP_EIO promises a TP_LINK_DOWN; it comes from the loop. */
	tp_lan_set_link(tp, 0);
	return (TP_EIO);
}

/*
 * Hands the held multicast frames to the socket, as many per sendmmsg()
 * as it takes.  Frames the socket refuses for now stay held (tx_blocked:
 * send() says TP_EAGAIN, writable() follows); a frame the link fails is
 * dropped and counted, and the rest still go.
 */
static void
tp_lan_flush(struct tp *tp)
{
	struct tp_addr		 bc;
	struct mmsghdr		*m;
	unsigned int		 i;
	int			 n, err, tries = 0;

	if (tp->txn == 0)
		return;
	if (tp->dead || tp->ufd == -1) {
		tp->txh = tp->txn = 0;
		return;
	}
	tp_addr_broadcast(&bc);
	while (tp->txn > 0) {
		for (i = 0; i < tp->txn; i++) {
			m = &tp->txm[i];
			memset(m, 0, sizeof(*m));
			m->msg_hdr.msg_name = &tp->group;
			m->msg_hdr.msg_namelen = sizeof(tp->group);
			m->msg_hdr.msg_iov = &tp->txv[tp->txh + i];
			m->msg_hdr.msg_iovlen = 1;
		}
		n = sendmmsg(tp->ufd, tp->txm, tp->txn,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			for (i = 0; i < (unsigned int)n; i++) {
				tp->st.tx_frames++;
				tp->st.tx_bytes += tp->txm[i].msg_len;
			}
			tp->txh += (unsigned int)n;
			tp->txn -= (unsigned int)n;
			if (!tp->link_up)
				tp_lan_set_link(tp, 1);
			tries = 0;
			continue;
		}
		err = n == -1 ? errno : EIO;
		/*
		 * An ICMP error about an earlier unicast frame is returned
		 * once by whatever send comes next (as in send()): the
		 * second try is this frame's.
		 */
		if (err != EAGAIN && err != EWOULDBLOCK && err != ENOBUFS &&
		    tries++ == 0)
			continue;
		if (tp_lan_tx_error(tp, &bc, &tp->group, err) == TP_EAGAIN) {
			tp->tx_blocked = 1;
			return;
		}
		tp->txh++;
		tp->txn--;
		tries = 0;
	}
	tp->txh = 0;
	tp->tx_blocked = 0;
}

static int
tp_lan_send(struct tp *tp, const struct tp_addr *dst,
    const struct iovec *iov, int iovcnt, uint64_t cookie)
{
	struct sockaddr_in	 sin;
	struct msghdr		 msg;
	uint8_t			*p;
	size_t			 len = 0;
	ssize_t			 n;
	int			 i, tries, err;

	if (tp->dead || tp->ufd == -1)
		return (TP_EIO);
	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && iov == NULL))
		return (TP_EMSGSIZE);
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > tp->mtu - len)
			return (TP_EMSGSIZE);
		len += iov[i].iov_len;
	}
	/* Held frames the socket refused go first. */
	if (tp->tx_blocked) {
		tp->st.eagain++;
		return (TP_EAGAIN);
	}

	if (tp->txbuf != NULL && (dst->flags & TP_ADDR_F_BROADCAST)) {
		/* Into the batch; a full batch goes now. */
		if (tp->txh + tp->txn == TP_LAN_TXQ) {
			tp_lan_flush(tp);
			if (tp->txn != 0)
				return (TP_EAGAIN);
		}
		p = tp->txbuf + (size_t)(tp->txh + tp->txn) * tp->mtu;
		for (len = 0, i = 0; i < iovcnt; i++) {
			if (iov[i].iov_len == 0)
				continue;
			memcpy(p + len, iov[i].iov_base, iov[i].iov_len);
			len += iov[i].iov_len;
		}
		tp->txv[tp->txh + tp->txn].iov_base = p;
		tp->txv[tp->txh + tp->txn].iov_len = len;
		tp->txn++;
		return (TP_OK);
	}
	/* A unicast frame leaves after the multicast given before it. */
	if (tp->txn != 0) {
		tp_lan_flush(tp);
		if (tp->txn != 0)
			return (TP_EAGAIN);
	}

	if (dst->flags & TP_ADDR_F_BROADCAST)
		sin = tp->group;
	else {
		if (dst->len != TP_LAN_ADDR_LEN)
			return (TP_ENOPEER);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr.s_addr, dst->b, 4);
		memcpy(&sin.sin_port, dst->b + 4, 2);
		if (sin.sin_port == 0 || sin.sin_addr.s_addr == INADDR_ANY)
			return (TP_ENOPEER);
	}

	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &sin;
	msg.msg_namelen = sizeof(sin);
	msg.msg_iov = (struct iovec *)(uintptr_t)iov;
	msg.msg_iovlen = (size_t)iovcnt;

	/*
	 * Two tries: with IP_RECVERR an ICMP error about an earlier
	 * unicast frame (ECONNREFUSED from a node that went away) is
	 * returned once by whatever send comes next.  That error is not
	 * this frame's; the second try is.
	 */
	for (err = 0, tries = 0; tries < 2; tries++) {
		n = sendmsg(tp->ufd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0)
			break;
		err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
			break;
	}
	if (n >= 0) {
		tp->st.tx_frames++;
		tp->st.tx_bytes += (uint64_t)n;
		if (!tp->link_up)
			tp_lan_set_link(tp, 1);
		return (TP_OK);
	}
	return (tp_lan_tx_error(tp, dst, &sin, err));
}

static void
tp_lan_writable_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;

	/* One writable per wait, whichever of the two woke us. */
	event_del(tp->ev_wr);
	evtimer_del(tp->ev_retry);
	/* The held frames first; refused again, the events are re-armed. */
	tp_lan_flush(tp);
	if (tp->tx_blocked)
		return;
	if (tp->host->writable == NULL)
		return;
	tp->in_cb++;
	tp->host->writable(tp->host->arg, tp);
	tp->in_cb--;
	if (tp->dead && tp->in_cb == 0)
		tp_lan_free(tp);
}

/* ------------------------------------------------------------------ */
/* Link events                                                          */

/* Records the link state; the host hears of a change from the loop. */
static void
tp_lan_set_link(struct tp *tp, int up)
{
	tp->link_up = up;
	if (tp->link_told != up && tp->ev_notify != NULL)
		event_active(tp->ev_notify, EV_TIMEOUT, 0);
}

static void
tp_lan_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp	*tp = arg;
	int		 up = tp->link_up;

	if (tp->link_told == up)
		return;
	tp->link_told = up;
	up_logf(up ? UP_LOG_INFO : UP_LOG_WARN, "transport.%s: link %s",
	    tp->name, up ? "up" : "down");
	if (tp->host->link == NULL)
		return;
	tp->in_cb++;
	tp->host->link(tp->host->arg, tp, up ? TP_LINK_UP : TP_LINK_DOWN);
	tp->in_cb--;
	if (tp->dead && tp->in_cb == 0)
		tp_lan_free(tp);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                            */

/*
 * Reads the ICMP errors IP_RECVERR queued on the unicast socket.  They
 * must be read: a non-empty error queue keeps the socket readable
 * (EPOLLERR) and the loop would spin.
 */
static void
tp_lan_errqueue(struct tp *tp)
{
	struct sockaddr_in		 sin;
	struct msghdr			 msg;
	struct iovec			 iov;
	struct cmsghdr			*cm;
	struct sock_extended_err	*ee;
	union {
		struct cmsghdr		 hdr;
		uint8_t			 buf[CMSG_SPACE(sizeof(*ee) +
					    sizeof(struct sockaddr_in))];
	} ctl;
	char				 sbuf[32];
	int				 i;

	for (i = 0; i < TP_LAN_RX_BUDGET; i++) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = tp->rxbuf;
		iov.iov_len = tp->rxcap;
		msg.msg_name = &sin;
		msg.msg_namelen = sizeof(sin);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		if (recvmsg(tp->ufd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) == -1)
			return;
		/* A frame we sent did not arrive (ip(7), IP_RECVERR). */
		tp->st.tx_errors++;
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL;
		    cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level != IPPROTO_IP ||
			    cm->cmsg_type != IP_RECVERR)
				continue;
			ee = (struct sock_extended_err *)(void *)
			    CMSG_DATA(cm);
			up_logf(UP_LOG_DEBUG, "transport.%s: to %s: %s "
			    "(origin %u, type %u, code %u)", tp->name,
			    tp_lan_sin_str(&sin, sbuf, sizeof(sbuf)),
			    strerror((int)ee->ee_errno), ee->ee_origin,
			    ee->ee_type, ee->ee_code);
		}
	}
}

static void
tp_lan_rx_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tp		*tp = arg;
	struct sockaddr_in	 sin;
	struct tp_addr		 src;
	struct tp_rxinfo	 ri;
	struct msghdr		 msg;
	struct iovec		 iov;
	char			 sbuf[32];
	ssize_t			 n;
	int			 i, group = (fd == tp->gfd);

	if (!group)
		tp_lan_errqueue(tp);
	for (i = 0; i < TP_LAN_RX_BUDGET; i++) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = tp->rxbuf;
		iov.iov_len = tp->rxcap;
		msg.msg_name = &sin;
		msg.msg_namelen = sizeof(sin);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNREFUSED ||
			    errno == EHOSTUNREACH || errno == ENETUNREACH ||
			    errno == EHOSTDOWN || errno == EPROTO)
				continue;	/* IP_RECVERR, see send */
			tp->st.rx_errors++;
			up_logf(UP_LOG_WARN, "transport.%s: recv: %s",
			    tp->name, strerror(errno));
			return;
		}
		if (msg.msg_flags & MSG_TRUNC) {
			tp->rx_trunc++;
			tp->st.rx_errors++;
			up_logf(UP_LOG_DEBUG, "transport.%s: datagram from %s "
			    "larger than %zu bytes dropped", tp->name,
			    tp_lan_sin_str(&sin, sbuf, sizeof(sbuf)),
			    tp->rxcap);
			continue;
		}
		if (msg.msg_namelen < sizeof(sin) ||
		    sin.sin_family != AF_INET || sin.sin_port == 0)
			continue;
		/*
		 * Our own multicast, looped back (loop = yes, or lo): the
		 * engine must not hear itself as a node.
		 */
		if (group && sin.sin_addr.s_addr ==
		    tp->self.sin_addr.s_addr &&
		    sin.sin_port == tp->self.sin_port) {
			tp->rx_own++;
			continue;
		}
		tp->st.rx_frames++;
		tp->st.rx_bytes += (uint64_t)n;
		if (!tp->link_up)
			tp_lan_set_link(tp, 1);

		tp_lan_sin_to_addr(&sin, &src);
		ri.rssi_dbm = INT16_MAX;
		ri.snr_db = INT8_MAX;
		ri.rx_ms = tp->host->now_ms != NULL ?
		    tp->host->now_ms(tp->host->arg) : 0;
		if (tp->host->rx == NULL)
			continue;
		tp->in_cb++;
		tp->host->rx(tp->host->arg, tp, &src, tp->rxbuf, (size_t)n,
		    &ri);
		tp->in_cb--;
		if (tp->dead) {
			/* Closed by the callback: events and fds are gone. */
			if (tp->in_cb == 0)
				tp_lan_free(tp);
			return;
		}
	}
}
