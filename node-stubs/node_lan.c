/*
 * node_lan.c: the LAN link of a simulated node (brief "LAN wire use",
 * docs/upnode.md).
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
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "up.h"
#include "upnode.h"

/* Room for bursts while the node fsyncs its state. */
#define LAN_RCVBUF	(4 * 1024 * 1024)

struct node_lan {
	const struct node_conf	*conf;
	int			 dirfd;
	int			 group_fd;
	int			 ucast_fd;
	struct sockaddr_in	 group;
	struct sockaddr_in	 gw;
	bool			 gw_known;
};

static char *
lan_cause(const char *fmt, ...)
    __attribute__((__format__(__printf__, 1, 2)));

static char *
lan_cause(const char *fmt, ...)
{
	va_list		 ap;
	char		*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	return (s);
}

static int
lan_nonblock(int fd)
{
	int		 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return (-1);
	return (fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

static int
lan_open_group(struct node_lan *l, char **cause)
{
	struct ip_mreq	 mreq;
	int		 one = 1, rcv = LAN_RCVBUF;

	if ((l->group_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))
	    == -1) {
		*cause = lan_cause("socket: %s", strerror(errno));
		return (-1);
	}
	/* Several nodes (and the gateway) share the group port. */
	if (setsockopt(l->group_fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == -1) {
		*cause = lan_cause("SO_REUSEADDR: %s", strerror(errno));
		return (-1);
	}
	(void)setsockopt(l->group_fd, SOL_SOCKET, SO_RCVBUF, &rcv,
	    sizeof(rcv));
	/* Bound to the group address: only the group's frames arrive. */
	if (bind(l->group_fd, (struct sockaddr *)&l->group,
	    sizeof(l->group)) == -1) {
		*cause = lan_cause("bind %s:%u: %s", inet_ntoa(l->group.
		    sin_addr), ntohs(l->group.sin_port), strerror(errno));
		return (-1);
	}
	memset(&mreq, 0, sizeof(mreq));
	mreq.imr_multiaddr = l->conf->group;
	mreq.imr_interface = l->conf->iface;
	if (setsockopt(l->group_fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq,
	    sizeof(mreq)) == -1) {
		*cause = lan_cause("IP_ADD_MEMBERSHIP %s: %s",
		    inet_ntoa(l->conf->group), strerror(errno));
		return (-1);
	}
	return (lan_nonblock(l->group_fd));
}

static int
lan_open_ucast(struct node_lan *l, char **cause)
{
	struct sockaddr_in sin;
	unsigned char	 loop = 1, ttl = 1;
	int		 rcv = LAN_RCVBUF;

	if ((l->ucast_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))
	    == -1) {
		*cause = lan_cause("socket: %s", strerror(errno));
		return (-1);
	}
	(void)setsockopt(l->ucast_fd, SOL_SOCKET, SO_RCVBUF, &rcv,
	    sizeof(rcv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = l->conf->iface;
	sin.sin_port = 0;
	if (bind(l->ucast_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		*cause = lan_cause("bind %s: %s", inet_ntoa(sin.sin_addr),
		    strerror(errno));
		return (-1);
	}
	/* Multicast ANNOUNCEs leave by --iface and loop back to local
	 * listeners (everything may run on one host). */
	if (setsockopt(l->ucast_fd, IPPROTO_IP, IP_MULTICAST_IF,
	    &l->conf->iface, sizeof(l->conf->iface)) == -1 ||
	    setsockopt(l->ucast_fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop,
	    sizeof(loop)) == -1 ||
	    setsockopt(l->ucast_fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl,
	    sizeof(ttl)) == -1) {
		*cause = lan_cause("multicast options: %s", strerror(errno));
		return (-1);
	}
	return (lan_nonblock(l->ucast_fd));
}

struct node_lan *
node_lan_open(const struct node_conf *conf, int dirfd, char **cause)
{
	struct node_lan	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*cause = lan_cause("out of memory");
		return (NULL);
	}
	l->conf = conf;
	l->dirfd = dirfd;
	l->group_fd = l->ucast_fd = -1;
	l->group.sin_family = AF_INET;
	l->group.sin_addr = conf->group;
	l->group.sin_port = htons(conf->port);
	if (lan_open_group(l, cause) == -1 || lan_open_ucast(l, cause) == -1) {
		if (*cause == NULL)
			*cause = lan_cause("fcntl: %s", strerror(errno));
		node_lan_close(l);
		return (NULL);
	}
	node_lan_load_gateway(l);
	return (l);
}

void
node_lan_close(struct node_lan *l)
{
	if (l == NULL)
		return;
	if (l->group_fd != -1)
		close(l->group_fd);
	if (l->ucast_fd != -1)
		close(l->ucast_fd);
	free(l);
}

/* DIR/gateway: "a.b.c.d:port\n". */
void
node_lan_load_gateway(struct node_lan *l)
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

void
node_lan_set_gateway(struct node_lan *l, const struct sockaddr_in *from)
{
	char		 buf[64], a[INET_ADDRSTRLEN];
	int		 n;

	if (l->gw_known && l->gw.sin_addr.s_addr == from->sin_addr.s_addr &&
	    l->gw.sin_port == from->sin_port)
		return;
	l->gw = *from;
	l->gw_known = true;
	inet_ntop(AF_INET, &from->sin_addr, a, sizeof(a));
	n = snprintf(buf, sizeof(buf), "%s:%u\n", a, ntohs(from->sin_port));
	up_logf(UP_LOG_DEBUG, "gateway is %s:%u", a, ntohs(from->sin_port));
	if (node_write_atomic(l->dirfd, "gateway", buf, (size_t)n) == -1)
		up_logf(UP_LOG_WARN, "gateway: %s", strerror(errno));
}

int
node_lan_send(struct node_lan *l, const uint8_t *frame, size_t len)
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

int
node_lan_fds(const struct node_lan *l, int fds[2])
{
	fds[0] = l->group_fd;
	fds[1] = l->ucast_fd;
	return (2);
}

ssize_t
node_lan_recv(struct node_lan *l, int fd, uint8_t *buf, size_t cap,
    struct sockaddr_in *from)
{
	socklen_t	 sl;
	ssize_t		 n;

	for (;;) {
		sl = sizeof(*from);
		n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &sl);
		if (n > 0)
			return (n);
		/* An empty datagram is no frame: skip it. */
		if (n == 0 || errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return (0);
		return (-1);
	}
}
