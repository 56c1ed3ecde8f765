/*
 * node_lan.c: the LAN link of a simulated node, `upnode --transport lan'
 * (docs/up-protocol.md §5.3, docs/upnode.md).
 *
 * Two UDP sockets.  The group socket is bound to group:port with
 * SO_REUSEADDR, so many nodes on one host each get a copy of every
 * multicast frame, and joins the group on --iface.  The unicast socket
 * (iface:ephemeral) sends everything: to the source address of the last
 * valid gateway frame, or, before any was heard, to the group (the
 * gateway listens there too).  It also receives the gateway's unicast
 * replies (RESULT_ACK, targeted frames).  The gateway's address is kept
 * in DIR/gateway so a node rebooted in the middle of a session can send
 * its RESULT at once.
 *
 * Each socket is read with recvmmsg(), up to LAN_RX_BATCH datagrams a
 * call (the gateway sends its frames in batches, one per wake-up of its
 * pacer); recv() hands them out one by one, and pending() tells upnode
 * that frames read ahead wait although the fd may not be readable.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "up.h"
#include "upnode.h"

/* Room for bursts while the node fsyncs its state. */
#define LAN_RCVBUF	(4 * 1024 * 1024)
/* Datagrams per recvmmsg(). */
#define LAN_RX_BATCH	16
/*
 * A slot holds the largest UP frame and one byte more: a longer datagram
 * comes cut (MSG_TRUNC) and is dropped whole, never handed on truncated
 * into something that might decode.
 */
#define LAN_RX_MAX	UP_FRAME_MAX
#define LAN_SLOT	(LAN_RX_MAX + 1)

/* What one socket's last recvmmsg() brought: [next, n) are still due. */
struct lan_rx {
	struct mmsghdr		 m[LAN_RX_BATCH];
	struct iovec		 v[LAN_RX_BATCH];
	struct sockaddr_in	 from[LAN_RX_BATCH];
	uint8_t			 buf[LAN_RX_BATCH][LAN_SLOT];
	unsigned int		 next;
	unsigned int		 n;
	bool			 short_read;	/* n < LAN_RX_BATCH: empty */
};

struct node_link {
	const struct node_conf	*conf;
	int			 dirfd;
	int			 group_fd;
	int			 ucast_fd;
	struct in_addr		 iface;
	struct sockaddr_in	 group;
	struct sockaddr_in	 gw;
	bool			 gw_known;
	struct lan_rx		 rx[2];		/* group_fd, ucast_fd */
};

static const char *
lan_check_group(const char *v)
{
	struct in_addr	 a;

	if (inet_pton(AF_INET, v, &a) != 1 || !IN_MULTICAST(ntohl(a.s_addr)))
		return ("not an IPv4 multicast address");
	return (NULL);
}

static const char *
lan_check_port(const char *v)
{
	unsigned long	 p;
	char		*end;

	errno = 0;
	p = strtoul(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
	    p == 0 || p > 65535)
		return ("1 to 65535");
	return (NULL);
}

static const char *
lan_check_iface(const char *v)
{
	struct in_addr	 a;

	if (inet_pton(AF_INET, v, &a) != 1)
		return ("not an IPv4 address");
	return (NULL);
}

static const struct node_link_opt lan_options[] = {
	{ "group", "239.255.42.1", "the multicast group (also --group)",
	    lan_check_group },
	{ "port", "4242", "its UDP port (also --port)", lan_check_port },
	{ "iface", "127.0.0.1", "the local interface address (also --iface)",
	    lan_check_iface },
	{ NULL, NULL, NULL, NULL }
};

static int
lan_nonblock(int fd)
{
	int		 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return (-1);
	return (fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

static int
lan_open_group(struct node_link *l, char **cause)
{
	struct ip_mreq	 mreq;
	int		 one = 1, rcv = LAN_RCVBUF;

	if ((l->group_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))
	    == -1) {
		*cause = node_cause("socket: %s", strerror(errno));
		return (-1);
	}
	/* Several nodes (and the gateway) share the group port. */
	if (setsockopt(l->group_fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == -1) {
		*cause = node_cause("SO_REUSEADDR: %s", strerror(errno));
		return (-1);
	}
	(void)setsockopt(l->group_fd, SOL_SOCKET, SO_RCVBUF, &rcv,
	    sizeof(rcv));
	/* Bound to the group address: only the group's frames arrive. */
	if (bind(l->group_fd, (struct sockaddr *)&l->group,
	    sizeof(l->group)) == -1) {
		*cause = node_cause("bind %s:%u: %s", inet_ntoa(l->group.
		    sin_addr), ntohs(l->group.sin_port), strerror(errno));
		return (-1);
	}
	memset(&mreq, 0, sizeof(mreq));
	mreq.imr_multiaddr = l->group.sin_addr;
	mreq.imr_interface = l->iface;
	if (setsockopt(l->group_fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq,
	    sizeof(mreq)) == -1) {
		*cause = node_cause("IP_ADD_MEMBERSHIP %s: %s",
		    inet_ntoa(l->group.sin_addr), strerror(errno));
		return (-1);
	}
	return (lan_nonblock(l->group_fd));
}

static int
lan_open_ucast(struct node_link *l, char **cause)
{
	struct sockaddr_in sin;
	unsigned char	 loop = 1, ttl = 1;
	int		 rcv = LAN_RCVBUF;

	if ((l->ucast_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))
	    == -1) {
		*cause = node_cause("socket: %s", strerror(errno));
		return (-1);
	}
	(void)setsockopt(l->ucast_fd, SOL_SOCKET, SO_RCVBUF, &rcv,
	    sizeof(rcv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = l->iface;
	sin.sin_port = 0;
	if (bind(l->ucast_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		*cause = node_cause("bind %s: %s", inet_ntoa(sin.sin_addr),
		    strerror(errno));
		return (-1);
	}
	/* Multicast ANNOUNCEs leave by --iface and loop back to local
	 * listeners (everything may run on one host). */
	if (setsockopt(l->ucast_fd, IPPROTO_IP, IP_MULTICAST_IF,
	    &l->iface, sizeof(l->iface)) == -1 ||
	    setsockopt(l->ucast_fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop,
	    sizeof(loop)) == -1 ||
	    setsockopt(l->ucast_fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl,
	    sizeof(ttl)) == -1) {
		*cause = node_cause("multicast options: %s", strerror(errno));
		return (-1);
	}
	return (lan_nonblock(l->ucast_fd));
}

static void	 lan_close(struct node_link *);
static void	 lan_boot(struct node_link *);

static struct node_link *
lan_open(const struct node_conf *conf, int dirfd, char **cause)
{
	struct node_link *l;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*cause = node_cause("out of memory");
		return (NULL);
	}
	l->conf = conf;
	l->dirfd = dirfd;
	l->group_fd = l->ucast_fd = -1;
	l->group.sin_family = AF_INET;
	/* The values passed lan_options' checks before open. */
	inet_pton(AF_INET, node_conf_link_opt(conf, "group"),
	    &l->group.sin_addr);
	l->group.sin_port = htons((uint16_t)strtoul(node_conf_link_opt(conf,
	    "port"), NULL, 10));
	inet_pton(AF_INET, node_conf_link_opt(conf, "iface"), &l->iface);
	if (lan_open_group(l, cause) == -1 || lan_open_ucast(l, cause) == -1) {
		if (*cause == NULL)
			*cause = node_cause("fcntl: %s", strerror(errno));
		lan_close(l);
		return (NULL);
	}
	lan_boot(l);
	return (l);
}

static void
lan_close(struct node_link *l)
{
	if (l == NULL)
		return;
	if (l->group_fd != -1)
		close(l->group_fd);
	if (l->ucast_fd != -1)
		close(l->ucast_fd);
	free(l);
}

static void
lan_caps(const struct node_link *l, struct node_link_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->rx_max = LAN_RX_MAX;
	caps->mtu_up = UP_FRAME_MAX;
	caps->flags = NODE_LINK_BROADCAST;
}

/* DIR/gateway: "a.b.c.d:port\n", reloaded at every boot. */
static void
lan_boot(struct node_link *l)
{
	char		 buf[64], *colon, *end;
	size_t		 len;
	unsigned long	 port;
	struct in_addr	 a;

	l->gw_known = false;
	if (node_read_file(l->dirfd, "gateway", buf, sizeof(buf) - 1,
	    &len) == -1)
		return;
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if ((colon = strchr(buf, ':')) == NULL)
		return;
	*colon = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (inet_pton(AF_INET, buf, &a) != 1 || *end != '\0' ||
	    errno != 0 || port == 0 || port > 65535) {
		up_logf(UP_LOG_WARN, "gateway: bad address, ignored");
		return;
	}
	memset(&l->gw, 0, sizeof(l->gw));
	l->gw.sin_family = AF_INET;
	l->gw.sin_addr = a;
	l->gw.sin_port = htons((uint16_t)port);
	l->gw_known = true;
	up_logf(UP_LOG_DEBUG, "gateway %s:%lu (saved)", buf, port);
}

/* A valid gateway frame came from `src': reply there from now on. */
static void
lan_gateway(struct node_link *l, const struct node_link_src *src)
{
	struct sockaddr_in from;
	char		 buf[64], a[INET_ADDRSTRLEN];
	int		 n;

	if (src->len != sizeof(from))
		return;
	memcpy(&from, src->b, sizeof(from));
	if (l->gw_known && l->gw.sin_addr.s_addr == from.sin_addr.s_addr &&
	    l->gw.sin_port == from.sin_port)
		return;
	l->gw = from;
	l->gw_known = true;
	inet_ntop(AF_INET, &from.sin_addr, a, sizeof(a));
	n = snprintf(buf, sizeof(buf), "%s:%u\n", a, ntohs(from.sin_port));
	up_logf(UP_LOG_DEBUG, "gateway is %s:%u", a, ntohs(from.sin_port));
	if (node_write_atomic(l->dirfd, "gateway", buf, (size_t)n) == -1)
		up_logf(UP_LOG_WARN, "gateway: %s", strerror(errno));
}

static int
lan_send(struct node_link *l, const uint8_t *frame, size_t len)
{
	const struct sockaddr_in *to = l->gw_known ? &l->gw : &l->group;

	if (sendto(l->ucast_fd, frame, len, 0, (const struct sockaddr *)to,
	    sizeof(*to)) == -1) {
		/* A datagram link may drop; the engine retries. */
		up_logf(UP_LOG_DEBUG, "sendto: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

static int
lan_pollfds(struct node_link *l, struct pollfd *pfd, int max)
{
	if (max < 2)
		return (0);
	pfd[0].fd = l->group_fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = l->ucast_fd;
	pfd[1].events = POLLIN;
	return (2);
}

static struct lan_rx *
lan_rx_of(struct node_link *l, const struct pollfd *pfd)
{
	return (&l->rx[pfd->fd == l->group_fd ? 0 : 1]);
}

static ssize_t
lan_recv(struct node_link *l, const struct pollfd *pfd, uint8_t *buf,
    size_t cap, struct node_link_src *src)
{
	struct lan_rx	*r = lan_rx_of(l, pfd);
	struct mmsghdr	*m;
	unsigned int	 i;
	int		 n;

	for (;;) {
		while (r->next < r->n) {
			i = r->next++;
			m = &r->m[i];
			/* An empty datagram is no frame: skip it. */
			if (m->msg_len == 0)
				continue;
			if ((m->msg_hdr.msg_flags & MSG_TRUNC) != 0 ||
			    m->msg_len > cap) {
				up_logf(UP_LOG_DEBUG, "datagram larger than %d "
				    "bytes dropped", LAN_RX_MAX);
				continue;
			}
			memcpy(buf, r->buf[i], m->msg_len);
			src->len = sizeof(r->from[i]);
			memcpy(src->b, &r->from[i], sizeof(r->from[i]));
			return ((ssize_t)m->msg_len);
		}
		/*
		 * A read that brought less than it asked for emptied the
		 * socket: no second system call to hear it say EAGAIN (a
		 * datagram that came since makes the fd readable again).
		 */
		if (r->short_read) {
			r->short_read = false;
			r->next = r->n = 0;
			return (0);
		}
		for (i = 0; i < LAN_RX_BATCH; i++) {
			m = &r->m[i];
			memset(m, 0, sizeof(*m));
			r->v[i].iov_base = r->buf[i];
			r->v[i].iov_len = LAN_SLOT;
			m->msg_hdr.msg_name = &r->from[i];
			m->msg_hdr.msg_namelen = sizeof(r->from[i]);
			m->msg_hdr.msg_iov = &r->v[i];
			m->msg_hdr.msg_iovlen = 1;
		}
		r->next = r->n = 0;
		n = recvmmsg(pfd->fd, r->m, LAN_RX_BATCH, MSG_DONTWAIT, NULL);
		if (n > 0) {
			r->n = (unsigned int)n;
			r->short_read = n < LAN_RX_BATCH;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
			return (0);
		return (-1);
	}
}

static bool
lan_pending(struct node_link *l, const struct pollfd *pfd)
{
	struct lan_rx	*r = lan_rx_of(l, pfd);

	return (r->next < r->n);
}

static int
lan_src_fmt(const struct node_link_src *src, char *buf, size_t len)
{
	struct sockaddr_in from;
	char		 a[INET_ADDRSTRLEN];

	if (src->len != sizeof(from))
		return (-1);
	memcpy(&from, src->b, sizeof(from));
	inet_ntop(AF_INET, &from.sin_addr, a, sizeof(a));
	return (snprintf(buf, len, "%s:%u", a, ntohs(from.sin_port)) < 0 ?
	    -1 : 0);
}

const struct node_link_ops node_link_lan = {
	.name = "lan",
	.help = "UDP multicast on a LAN (the default)",
	.options = lan_options,
	.open = lan_open,
	.close = lan_close,
	.caps = lan_caps,
	.pollfds = lan_pollfds,
	.recv = lan_recv,
	.pending = lan_pending,
	.send = lan_send,
	.gateway = lan_gateway,
	.boot = lan_boot,
	.src_fmt = lan_src_fmt
};
