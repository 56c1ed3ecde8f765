/*
 * test_tp_lan.c: the "lan" plugin over real UDP on loopback.
 *
 * Each test opens an instance on 127.0.0.1 with a random group in
 * 239.255.0.0/16 and a free port, and plays the node with plain sockets:
 * one bound to group:port with a membership on 127.0.0.1 (what upnode
 * does), one ephemeral socket for replies and boot-time ANNOUNCEs.  All
 * traffic stays on lo (IP_MULTICAST_IF = 127.0.0.1 on every sender).
 * Every wait is bounded: the loop runs in 10 ms slices under
 * event_base_loopexit() until a condition holds or a deadline passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transport.h"
#include "ub_test.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define WAIT_MS		2000	/* bound on waiting for an event */
#define QUIET_MS	200	/* how long "nothing happens" is watched */

struct fixture {
	struct event_base	*base;
	struct tp_host		 host;
	const struct tp_ops	*ops;
	struct tp		*tp;
	char			 group[INET_ADDRSTRLEN];
	int			 port;
	int			 node_grp;	/* node: on group:port */
	int			 node_uni;	/* node: ephemeral */

	/* What the callbacks saw. */
	int			 rx;
	int			 writable;
	int			 link_up;
	int			 link_down;
	struct tp_addr		 last_src;
	uint8_t			 last[2048];
	size_t			 last_len;
	uint64_t		 last_rx_ms;
	int			 close_in_rx;
};

static char	 logbuf[8192];

static void
log_capture(int level, const char *fmt, va_list ap)
{
	size_t	 n = strlen(logbuf);

	if (n < sizeof(logbuf) - 2) {
		vsnprintf(logbuf + n, sizeof(logbuf) - n - 1, fmt, ap);
		strcat(logbuf, "\n");
	}
}

static void
cb_rx(void *arg, struct tp *tp, const struct tp_addr *src,
    const uint8_t *frame, size_t len, const struct tp_rxinfo *ri)
{
	struct fixture	*f = arg;

	/* Two instances share this host in one test. */
	assert_non_null(tp);
	f->rx++;
	f->last_src = *src;
	f->last_len = len < sizeof(f->last) ? len : sizeof(f->last);
	memcpy(f->last, frame, f->last_len);
	f->last_rx_ms = ri->rx_ms;
	assert_int_equal(ri->rssi_dbm, INT16_MAX);
	assert_int_equal(ri->snr_db, INT8_MAX);
	if (f->close_in_rx) {
		f->ops->close(tp);
		f->tp = NULL;
	}
}

static void
cb_writable(void *arg, struct tp *tp)
{
	struct fixture	*f = arg;

	f->writable++;
}

static void
cb_link(void *arg, struct tp *tp, enum tp_link_event ev)
{
	struct fixture	*f = arg;

	if (ev == TP_LINK_UP)
		f->link_up++;
	else if (ev == TP_LINK_DOWN)
		f->link_down++;
}

/* A free UDP port on 127.0.0.1 (the kernel's choice, then released). */
static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd, port;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return (port);
}

static struct sockaddr_in
sin_of(const char *ip, int port)
{
	struct sockaddr_in	 sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return (sin);
}

/* The node's group socket, as upnode binds it. */
static int
node_group_socket(const char *group, int port)
{
	struct sockaddr_in	 sin = sin_of(group, port);
	struct ip_mreq		 mr;
	int			 fd, on = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd != -1);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	memset(&mr, 0, sizeof(mr));
	mr.imr_multiaddr = sin.sin_addr;
	mr.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
	    sizeof(mr)), 0);
	return (fd);
}

/* The node's ephemeral socket; its multicast stays on lo. */
static int
node_unicast_socket(void)
{
	struct sockaddr_in	 sin = sin_of("127.0.0.1", 0);
	struct in_addr		 lo;
	int			 fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	lo.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo,
	    sizeof(lo)), 0);
	return (fd);
}

static int
sock_port(int fd)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return (ntohs(sin.sin_port));
}

/* Receives one datagram within WAIT_MS; returns its length or -1. */
static ssize_t
recv_wait(int fd, void *buf, size_t len, struct sockaddr_in *from)
{
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	socklen_t	 flen = sizeof(*from);

	if (poll(&pfd, 1, WAIT_MS) != 1)
		return (-1);
	return (recvfrom(fd, buf, len, 0, (struct sockaddr *)from, &flen));
}

/* Runs the loop in slices until *counter >= want or `ms' pass. */
static void
run_until(struct fixture *f, const int *counter, int want, int ms)
{
	struct timeval	 slice = { 0, 10 * 1000 };
	uint64_t	 end = ubt_now_ms() + (uint64_t)ms;

	while ((counter == NULL || *counter < want) && ubt_now_ms() < end) {
		event_base_loopexit(f->base, &slice);
		event_base_dispatch(f->base);
	}
}

/* Opens and starts an instance with the fixture's group/port and kv. */
static int
open_lan(struct fixture *f, const struct tp_kv *extra, size_t nextra,
    char **cause)
{
	struct tp_kv	 kv[16];
	struct tp_conf	 conf;
	char		 port[16];
	size_t		 n = 0, i;

	snprintf(port, sizeof(port), "%d", f->port);
	kv[n].key = "type";
	kv[n++].value = "lan";
	kv[n].key = "group";
	kv[n++].value = f->group;
	kv[n].key = "port";
	kv[n++].value = port;
	for (i = 0; i < nextra && n < NELEM(kv); i++)
		kv[n++] = extra[i];
	conf.name = "lan0";
	conf.options = f->ops->options;
	conf.kv = kv;
	conf.nkv = n;
	if (tp_conf_check(&conf, cause) != 0)
		return (-1);
	if (f->ops->open(&f->host, &conf, &f->tp, cause) != 0)
		return (-1);
	return (f->ops->start(f->tp, cause));
}

static int
setup(void **state)
{
	struct fixture	*f;
	unsigned int	 r;

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->host.base = f->base;
	f->host.arg = f;
	f->host.now_ms = ubt_host_now_ms;
	f->host.rx = cb_rx;
	f->host.writable = cb_writable;
	f->host.link = cb_link;
	f->ops = tp_find("lan");
	assert_non_null(f->ops);

	r = (unsigned int)getpid() ^ (unsigned int)ubt_now_ms() * 2654435761u;
	snprintf(f->group, sizeof(f->group), "239.255.%u.%u",
	    (r >> 8) % 254 + 1, r % 254 + 1);
	f->port = free_port();
	f->node_grp = node_group_socket(f->group, f->port);
	f->node_uni = node_unicast_socket();
	logbuf[0] = '\0';
	up_log_set_hook(log_capture);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	up_log_set_hook(NULL);
	if (f->tp != NULL)
		f->ops->close(f->tp);
	close(f->node_grp);
	close(f->node_uni);
	event_base_free(f->base);
	free(f);
	return (0);
}

/* Sends buf from the instance to the broadcast domain. */
static int
lan_broadcast(struct fixture *f, const void *buf, size_t len)
{
	struct tp_addr	 bc;
	struct iovec	 iov = { (void *)(uintptr_t)buf, len };

	tp_addr_broadcast(&bc);
	return (f->ops->send(f->tp, &bc, &iov, 1, 0));
}

/* Receives the next datagram on fd and checks it is "f<i>". */
static void
expect_frame(int fd, unsigned int i)
{
	struct sockaddr_in	 from;
	char			 buf[32], want[32];
	ssize_t			 n;

	snprintf(want, sizeof(want), "f%u", i);
	n = recv_wait(fd, buf, sizeof(buf), &from);
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_memory_equal(buf, want, (size_t)n);
}

/*
 * A host that flushes: multicast frames wait in the batch until flush(),
 * a full batch goes by itself, and a unicast frame sends the batch
 * before it; every frame arrives once, in order.
 */
static void
test_batch_flush(void **state)
{
	struct fixture		*f = *state;
	struct tp_addr		 bc, node;
	struct tp_stats		 st;
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	struct iovec		 iov;
	socklen_t		 sl = sizeof(sin);
	char			 buf[32], text[TP_ADDR_TEXT_MAX];
	char			*cause = NULL;
	unsigned int		 i;

	f->host.flushes = 1;
	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	tp_addr_broadcast(&bc);
	for (i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "f%u", i);
		iov.iov_base = buf;
		iov.iov_len = strlen(buf);
		assert_int_equal(f->ops->send(f->tp, &bc, &iov, 1, 0), TP_OK);
	}
	/* Held: nothing on the wire yet. */
	pfd.fd = f->node_grp;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 50), 0);
	f->ops->stats(f->tp, &st);
	assert_int_equal(st.queued, 3);
	assert_int_equal(st.tx_frames, 0);
	f->ops->flush(f->tp);
	for (i = 0; i < 3; i++)
		expect_frame(f->node_grp, i);
	f->ops->stats(f->tp, &st);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.tx_frames, 3);

	/* 20 more: the 17th finds the batch full and sends it. */
	for (i = 3; i < 23; i++) {
		snprintf(buf, sizeof(buf), "f%u", i);
		iov.iov_base = buf;
		iov.iov_len = strlen(buf);
		assert_int_equal(f->ops->send(f->tp, &bc, &iov, 1, 0), TP_OK);
	}
	f->ops->stats(f->tp, &st);
	assert_int_equal(st.tx_frames, 3 + 16);
	assert_int_equal(st.queued, 4);
	/* A unicast sends the four held before it. */
	assert_int_equal(getsockname(f->node_uni, (struct sockaddr *)&sin,
	    &sl), 0);
	snprintf(text, sizeof(text), "lan:127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(f->ops->addr_parse(text, &node, NULL), 0);
	iov.iov_base = "u";
	iov.iov_len = 1;
	assert_int_equal(f->ops->send(f->tp, &node, &iov, 1, 0), TP_OK);
	f->ops->stats(f->tp, &st);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.tx_frames, 3 + 20 + 1);
	for (i = 3; i < 23; i++)
		expect_frame(f->node_grp, i);
	assert_int_equal(recv_wait(f->node_uni, buf, sizeof(buf), &sin), 1);
	assert_int_equal(buf[0], 'u');
	/* Closed with frames held: they are dropped, nothing leaks. */
	assert_int_equal(f->ops->send(f->tp, &bc, &iov, 1, 0), TP_OK);
	f->ops->close(f->tp);
	f->tp = NULL;
}

/* Broadcast from the instance reaches a node's group socket, and the
 * source is the instance's unicast socket (where nodes reply). */
static void
test_broadcast_reaches_node(void **state)
{
	struct fixture		*f = *state;
	struct tp_addr		 bc;
	struct tp_stats		 st;
	struct iovec		 iov[3];
	struct sockaddr_in	 from;
	char			 buf[64], *cause = NULL;
	ssize_t			 n;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	tp_addr_broadcast(&bc);
	iov[0].iov_base = "he";
	iov[0].iov_len = 2;
	iov[1].iov_base = "";
	iov[1].iov_len = 0;
	iov[2].iov_base = "llo";
	iov[2].iov_len = 3;
	assert_int_equal(f->ops->send(f->tp, &bc, iov, 3, 7), TP_OK);
	n = recv_wait(f->node_grp, buf, sizeof(buf), &from);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_true(ntohs(from.sin_port) != f->port);
	assert_true(ntohs(from.sin_port) != 0);

	f->ops->stats(f->tp, &st);
	assert_int_equal(st.tx_frames, 1);
	assert_int_equal(st.tx_bytes, 5);
	assert_int_equal(st.tx_errors, 0);
	assert_non_null(strstr(logbuf, "transport.lan0: lan group "));
}

/* A node answers unicast to the source it heard; the instance's rx
 * reports the node's address; the instance answers the node unicast. */
static void
test_unicast_reply(void **state)
{
	struct fixture		*f = *state;
	struct sockaddr_in	 gw, from;
	struct iovec		 iov;
	struct tp_stats		 st;
	char			 buf[64], want[TP_ADDR_TEXT_MAX];
	char			 text[TP_ADDR_TEXT_MAX], *cause = NULL;
	uint64_t		 t0;
	ssize_t			 n;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	assert_int_equal(lan_broadcast(f, "offer", 5), TP_OK);
	assert_int_equal(recv_wait(f->node_grp, buf, sizeof(buf), &gw), 5);

	t0 = ubt_now_ms();
	assert_int_equal(sendto(f->node_uni, "accept", 6, 0,
	    (struct sockaddr *)&gw, sizeof(gw)), 6);
	run_until(f, &f->rx, 1, WAIT_MS);
	assert_int_equal(f->rx, 1);
	assert_int_equal(f->last_len, 6);
	assert_memory_equal(f->last, "accept", 6);
	assert_true(f->last_rx_ms >= t0);
	assert_int_equal(f->ops->addr_fmt(&f->last_src, text, sizeof(text)),
	    0);
	snprintf(want, sizeof(want), "lan:127.0.0.1:%d",
	    sock_port(f->node_uni));
	assert_string_equal(text, want);

	/* And back, to the address rx gave. */
	iov.iov_base = "ack";
	iov.iov_len = 3;
	assert_int_equal(f->ops->send(f->tp, &f->last_src, &iov, 1, 0),
	    TP_OK);
	n = recv_wait(f->node_uni, buf, sizeof(buf), &from);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "ack", 3);
	assert_int_equal(from.sin_port, gw.sin_port);
	/* Unicast does not reach the group socket. */
	assert_int_equal(recv(f->node_grp, buf, sizeof(buf), MSG_DONTWAIT),
	    -1);

	f->ops->stats(f->tp, &st);
	assert_int_equal(st.rx_frames, 1);
	assert_int_equal(st.rx_bytes, 6);
	assert_int_equal(st.tx_frames, 2);
}

/* A node that has heard nothing multicasts its ANNOUNCE to the group:
 * the instance hears it on its group socket with the node's address. */
static void
test_group_announce(void **state)
{
	struct fixture		*f = *state;
	struct sockaddr_in	 grp = sin_of(f->group, f->port);
	struct tp_addr		 want;
	char			 text[TP_ADDR_TEXT_MAX], *cause = NULL;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	assert_int_equal(sendto(f->node_uni, "announce", 8, 0,
	    (struct sockaddr *)&grp, sizeof(grp)), 8);
	run_until(f, &f->rx, 1, WAIT_MS);
	assert_int_equal(f->rx, 1);
	assert_memory_equal(f->last, "announce", 8);
	snprintf(text, sizeof(text), "lan:127.0.0.1:%d",
	    sock_port(f->node_uni));
	assert_int_equal(f->ops->addr_parse(text, &want, NULL), 0);
	assert_true(tp_addr_eq(&f->last_src, &want));
	/* Heard once, though the node's group socket heard it too. */
	run_until(f, NULL, 0, QUIET_MS);
	assert_int_equal(f->rx, 1);
}

/* The instance's own multicast loops back to its group socket (loop =
 * yes, and always on lo) and is dropped there. */
static void
test_own_multicast_dropped(void **state)
{
	struct fixture		*f = *state;
	struct tp_kv		 kv[] = { { "loop", "yes" } };
	struct sockaddr_in	 from;
	char			 buf[64], *cause = NULL;
	int			 i;

	assert_int_equal(open_lan(f, kv, NELEM(kv), &cause), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(lan_broadcast(f, "data", 4), TP_OK);
	/* Proof that multicast loops back on this host at all. */
	for (i = 0; i < 3; i++)
		assert_int_equal(recv_wait(f->node_grp, buf, sizeof(buf),
		    &from), 4);
	run_until(f, NULL, 0, QUIET_MS);
	assert_int_equal(f->rx, 0);
	/* The group socket did read them (and dropped them). */
	f->ops->close(f->tp);
	f->tp = NULL;
	assert_non_null(strstr(logbuf, "own 3 dropped"));
}

/* Frames above mtu are refused before the socket; mtu itself passes. */
static void
test_emsgsize(void **state)
{
	struct fixture		*f = *state;
	struct tp_kv		 kv[] = { { "mtu", "600" } };
	struct tp_caps		 caps;
	struct sockaddr_in	 from;
	struct iovec		 iov[2];
	struct tp_addr		 bc, bad;
	struct tp_stats		 st;
	static uint8_t		 big[1000], buf[1000];
	char			*cause = NULL;

	assert_int_equal(open_lan(f, kv, NELEM(kv), &cause), 0);
	f->ops->caps(f->tp, &caps);
	assert_int_equal(caps.mtu, 600);
	memset(big, 0x5a, sizeof(big));
	tp_addr_broadcast(&bc);
	iov[0].iov_base = big;
	iov[0].iov_len = 300;
	iov[1].iov_base = big + 300;
	iov[1].iov_len = 301;
	assert_int_equal(f->ops->send(f->tp, &bc, iov, 2, 0), TP_EMSGSIZE);
	assert_int_equal(lan_broadcast(f, big, sizeof(big)), TP_EMSGSIZE);
	iov[1].iov_len = 300;
	assert_int_equal(f->ops->send(f->tp, &bc, iov, 2, 0), TP_OK);
	assert_int_equal(recv_wait(f->node_grp, buf, sizeof(buf), &from),
	    600);
	assert_memory_equal(buf, big, 600);
	/* Nothing else went out. */
	assert_int_equal(recv(f->node_grp, buf, sizeof(buf), MSG_DONTWAIT),
	    -1);
	f->ops->stats(f->tp, &st);
	assert_int_equal(st.tx_frames, 1);

	/* An address that is not a lan address is no peer. */
	memset(&bad, 0, sizeof(bad));
	bad.len = 3;
	assert_int_equal(f->ops->send(f->tp, &bad, iov, 1, 0), TP_ENOPEER);
	assert_int_equal(f->ops->addr_parse("lan:127.0.0.1:1", &bad, NULL),
	    0);
	bad.b[4] = bad.b[5] = 0;
	assert_int_equal(f->ops->send(f->tp, &bad, iov, 1, 0), TP_ENOPEER);
}

/* After close: no callback, though frames and a link event were due. */
static void
test_close_then_quiet(void **state)
{
	struct fixture		*f = *state;
	struct sockaddr_in	 grp = sin_of(f->group, f->port), gw;
	char			 buf[64], *cause = NULL;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	assert_int_equal(lan_broadcast(f, "x", 1), TP_OK);
	assert_int_equal(recv_wait(f->node_grp, buf, sizeof(buf), &gw), 1);
	assert_int_equal(sendto(f->node_uni, "late", 4, 0,
	    (struct sockaddr *)&gw, sizeof(gw)), 4);
	assert_int_equal(sendto(f->node_uni, "late", 4, 0,
	    (struct sockaddr *)&grp, sizeof(grp)), 4);
	/* Start's TP_LINK_UP is still pending in the loop. */
	f->ops->close(f->tp);
	f->tp = NULL;
	run_until(f, NULL, 0, QUIET_MS);
	assert_int_equal(f->rx, 0);
	assert_int_equal(f->link_up, 0);
	assert_int_equal(f->writable, 0);
	/* The base holds nothing of ours any more. */
	assert_int_equal(event_base_get_num_events(f->base,
	    EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE), 0);
	/* close(NULL) is fine. */
	f->ops->close(NULL);
}

/* Closing from inside rx: no use after free, no further callbacks. */
static void
test_close_inside_rx(void **state)
{
	struct fixture		*f = *state;
	struct sockaddr_in	 grp = sin_of(f->group, f->port);
	char			*cause = NULL;
	int			 i;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	f->close_in_rx = 1;
	for (i = 0; i < 3; i++)
		assert_int_equal(sendto(f->node_uni, "a", 1, 0,
		    (struct sockaddr *)&grp, sizeof(grp)), 1);
	run_until(f, NULL, 0, QUIET_MS);
	assert_int_equal(f->rx, 1);
	assert_null(f->tp);
	assert_int_equal(event_base_get_num_events(f->base,
	    EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE), 0);
}

/* start() reports TP_LINK_UP once, from the loop, not from start. */
static void
test_link_up_deferred(void **state)
{
	struct fixture	*f = *state;
	char		*cause = NULL;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	assert_int_equal(f->link_up, 0);
	assert_int_equal(f->ops->start(f->tp, &cause), 0);
	run_until(f, &f->link_up, 1, WAIT_MS);
	run_until(f, NULL, 0, 50);
	assert_int_equal(f->link_up, 1);
	assert_int_equal(f->link_down, 0);
}

/* The interface by name (getifaddrs), and an unknown one. */
static void
test_interface_by_name(void **state)
{
	struct fixture		*f = *state;
	struct tp_kv		 lo[] = { { "interface", "lo" } };
	struct tp_kv		 none[] = { { "interface", "nosuch9" } };
	struct sockaddr_in	 from;
	char			 buf[16], *cause = NULL;

	assert_int_equal(open_lan(f, none, NELEM(none), &cause), -1);
	assert_null(f->tp);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "transport.lan0: interface "
	    "\"nosuch9\": no such interface or no IPv4 address"));
	free(cause);
	cause = NULL;

	assert_int_equal(open_lan(f, lo, NELEM(lo), &cause), 0);
	assert_int_equal(lan_broadcast(f, "lo", 2), TP_OK);
	assert_int_equal(recv_wait(f->node_grp, buf, sizeof(buf), &from), 2);
	assert_int_equal(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_non_null(strstr(logbuf, "on 127.0.0.1 (lo)"));
}

/* unicast_port fixes the reply port; a taken one fails with a cause. */
static void
test_unicast_port(void **state)
{
	struct fixture		*f = *state;
	struct tp_kv		 kv[] = { { "unicast_port", NULL } };
	struct sockaddr_in	 from;
	struct tp		*first;
	char			 port[16], buf[16], *cause = NULL;
	int			 up = free_port();

	snprintf(port, sizeof(port), "%d", up);
	kv[0].value = port;
	assert_int_equal(open_lan(f, kv, NELEM(kv), &cause), 0);
	assert_int_equal(lan_broadcast(f, "p", 1), TP_OK);
	assert_int_equal(recv_wait(f->node_grp, buf, sizeof(buf), &from), 1);
	assert_int_equal(ntohs(from.sin_port), up);

	first = f->tp;
	f->tp = NULL;
	assert_int_equal(open_lan(f, kv, NELEM(kv), &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "bind 127.0.0.1:"));
	assert_non_null(strstr(cause, "in use"));
	free(cause);
	f->tp = first;
}

/* Two instances on one group:port (SO_REUSEADDR) both hear a node. */
static void
test_two_instances_share_port(void **state)
{
	struct fixture		*f = *state;
	struct sockaddr_in	 grp = sin_of(f->group, f->port);
	struct tp		*first;
	char			*cause = NULL;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	first = f->tp;
	f->tp = NULL;
	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	assert_int_equal(sendto(f->node_uni, "hi", 2, 0,
	    (struct sockaddr *)&grp, sizeof(grp)), 2);
	run_until(f, &f->rx, 2, WAIT_MS);
	assert_int_equal(f->rx, 2);
	f->ops->close(first);
}

/* A unicast to a closed port comes back as ICMP (IP_RECVERR): it is
 * counted, read off the error queue, and does not break later sends
 * nor reception. */
static void
test_icmp_error_drained(void **state)
{
	struct fixture		*f = *state;
	struct tp_addr		 dead;
	struct tp_stats		 st;
	struct sockaddr_in	 from, gw;
	struct iovec		 iov = { "x", 1 };
	char			 text[TP_ADDR_TEXT_MAX], buf[16];
	char			*cause = NULL;
	int			 i;

	assert_int_equal(open_lan(f, NULL, 0, &cause), 0);
	snprintf(text, sizeof(text), "lan:127.0.0.1:%d", free_port());
	assert_int_equal(f->ops->addr_parse(text, &dead, NULL), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(f->ops->send(f->tp, &dead, &iov, 1, 0),
		    TP_OK);
	run_until(f, NULL, 0, QUIET_MS);
	f->ops->stats(f->tp, &st);
	assert_true(st.tx_errors >= 1);
	assert_int_equal(f->link_down, 0);

	assert_int_equal(lan_broadcast(f, "ok", 2), TP_OK);
	assert_int_equal(recv_wait(f->node_grp, buf, sizeof(buf), &gw), 2);
	assert_int_equal(sendto(f->node_uni, "re", 2, 0,
	    (struct sockaddr *)&gw, sizeof(gw)), 2);
	run_until(f, &f->rx, 1, WAIT_MS);
	assert_int_equal(f->rx, 1);
	/* No stale error left to fail the next send. */
	assert_int_equal(f->ops->send(f->tp, &dead, &iov, 1, 0), TP_OK);
	(void)from;
}

/* Capabilities: the facts docs/transports/lan.md explains. */
static void
test_caps(void **state)
{
	struct fixture	*f = *state;
	struct tp_kv	 kv[] = {
		{ "bitrate_mbit", "1000" }, { "tx_queue", "128" }
	};
	struct tp_caps	 c;
	char		*cause = NULL;

	assert_int_equal(open_lan(f, kv, NELEM(kv), &cause), 0);
	memset(&c, 0xff, sizeof(c));
	f->ops->caps(f->tp, &c);
	assert_int_equal(c.mtu, 1472);
	assert_int_equal(c.flags, TP_CAP_BROADCAST | TP_CAP_UNICAST |
	    TP_CAP_DISCOVERY);
	assert_true(c.bitrate_bps == 1000000000ULL);
	assert_int_equal(c.frame_overhead, 42);
	assert_int_equal(c.duty_cycle_ppm, 0);
	assert_int_equal(c.duty_window_ms, 0);
	assert_int_equal(c.min_gap_us, 0);
	assert_int_equal(c.max_peers, 0);
	assert_int_equal(c.tx_queue, 128);
}

/* open() re-checks what would misroute traffic if the check was
 * skipped, and fails cleanly. */
static void
test_open_unchecked(void **state)
{
	struct fixture	*f = *state;
	struct tp_kv	 kv[] = { { "group", "10.0.0.1" } };
	struct tp_conf	 conf = { "lanX", f->ops->options,
	    NELEM(kv), kv };
	struct tp_host	 nobase = f->host;
	char		*cause = NULL;

	assert_int_equal(f->ops->open(&f->host, &conf, &f->tp, &cause), -1);
	assert_null(f->tp);
	assert_non_null(strstr(cause, "transport.lanX: group = \"10.0.0.1\": "
	    "not an IPv4 multicast address"));
	free(cause);
	cause = NULL;
	nobase.base = NULL;
	conf.nkv = 0;
	assert_int_equal(f->ops->open(&nobase, &conf, &f->tp, &cause), -1);
	assert_non_null(strstr(cause, "no event base"));
	free(cause);
}

/*
 * Back-pressure, in a child in its own network namespace (root only, else
 * skipped): a tbf qdisc on that namespace's lo makes the device queue or
 * the socket buffer fill up, which plain lo never does.  The child may not
 * use cmocka's asserts (they would longjmp in the copy), so it returns a
 * code: 0 ok, 77 cannot set up, else the step that failed.
 */
typedef int	 child_fn(struct fixture *, const char *, const char *);

/* In the child: a private network namespace with lo up, and tc. */
static int
child_netns(struct fixture *f, const char *tc)
{
	char	 cmd[256];

	alarm(20);
	if (unshare(CLONE_NEWNET) == -1 ||
	    system("ip link set lo up") != 0)
		return (77);
	if (tc != NULL) {
		snprintf(cmd, sizeof(cmd), "tc qdisc add dev lo root %s", tc);
		if (system(cmd) != 0)
			return (77);
	}
	/* A fresh base: the parent's belongs to the parent. */
	f->base = event_base_new();
	f->host.base = f->base;
	f->tp = NULL;
	return (f->base != NULL ? 0 : 77);
}

static int
backpressure_child(struct fixture *f, const char *tc, const char *sndbuf)
{
	struct tp_kv	 kv[] = { { "sndbuf_kib", sndbuf } };
	struct tp_stats	 st;
	static uint8_t	 frame[1000];
	char		*cause = NULL;
	int		 i, rc = TP_OK;

	if (child_netns(f, tc) != 0)
		return (77);
	if (open_lan(f, kv, NELEM(kv), &cause) != 0) {
		fprintf(stderr, "open: %s\n", cause);
		return (2);
	}
	run_until(f, &f->link_up, 1, WAIT_MS);

	/* Blast until the link says "busy". */
	for (i = 0; i < 5000; i++) {
		if ((rc = lan_broadcast(f, frame, sizeof(frame))) != TP_OK)
			break;
	}
	if (rc != TP_EAGAIN) {
		fprintf(stderr, "send %d: %d, not TP_EAGAIN\n", i, rc);
		return (3);
	}
	/* writable() comes from the loop, never from inside send(). */
	if (f->writable != 0)
		return (4);
	/* Wait for writable and send again, a bounded number of times. */
	for (i = 0; i < 200; i++) {
		run_until(f, &f->writable, i + 1, WAIT_MS);
		if (f->writable < i + 1) {
			fprintf(stderr, "no writable after %d\n", i);
			return (5);
		}
		if ((rc = lan_broadcast(f, frame, sizeof(frame))) == TP_OK)
			break;
		if (rc != TP_EAGAIN)
			return (6);
	}
	if (rc != TP_OK)
		return (7);
	f->ops->stats(f->tp, &st);
	if (st.eagain < 1 || st.tx_frames < 2)
		return (8);
	f->ops->close(f->tp);
	f->tp = NULL;
	/* Armed and then closed: nothing fires. */
	i = f->writable;
	run_until(f, NULL, 0, 50);
	return (f->writable == i ? 0 : 9);
}

/*
 * The interface goes down: a send fails with TP_EIO and TP_LINK_DOWN
 * follows from the loop; it comes back: TP_LINK_UP again.
 */
static int
linkdown_child(struct fixture *f, const char *unused1, const char *unused2)
{
	char	*cause = NULL;
	int	 rc;

	if (child_netns(f, NULL) != 0)
		return (77);
	if (open_lan(f, NULL, 0, &cause) != 0)
		return (2);
	run_until(f, &f->link_up, 1, WAIT_MS);
	if (f->link_up != 1 || lan_broadcast(f, "a", 1) != TP_OK)
		return (3);
	if (system("ip link set lo down") != 0)
		return (77);
	if ((rc = lan_broadcast(f, "b", 1)) != TP_EIO) {
		fprintf(stderr, "send on a down link: %d\n", rc);
		return (4);
	}
	if (f->link_down != 0)
		return (5);		/* not from inside send() */
	run_until(f, &f->link_down, 1, WAIT_MS);
	if (f->link_down != 1)
		return (6);
	/* Still down: still TP_EIO, no second TP_LINK_DOWN. */
	if (lan_broadcast(f, "c", 1) != TP_EIO)
		return (7);
	run_until(f, NULL, 0, 50);
	if (f->link_down != 1)
		return (8);
	if (system("ip link set lo up") != 0)
		return (77);
	if (lan_broadcast(f, "d", 1) != TP_OK)
		return (9);
	run_until(f, &f->link_up, 2, WAIT_MS);
	if (f->link_up != 2)
		return (10);
	f->ops->close(f->tp);
	f->tp = NULL;
	return (0);
}

static void
run_child(struct fixture *f, child_fn *fn, const char *a, const char *b)
{
	pid_t	 pid;
	int	 status;

	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0)
		_exit(fn(f, a, b));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The same with a host that flushes: the batch is what the link refuses. */
static int
backpressure_batched_child(struct fixture *f, const char *tc,
    const char *sndbuf)
{
	f->host.flushes = 1;
	return (backpressure_child(f, tc, sndbuf));
}

/* A full device queue (ENOBUFS, seen thanks to IP_RECVERR). */
static void
test_backpressure_enobufs(void **state)
{
	run_child(*state, backpressure_child,
	    "tbf rate 1mbit burst 1600 limit 3200", "0");
}

/* A full socket buffer (EAGAIN): frames held by the qdisc count
 * against a small SO_SNDBUF. */
static void
test_backpressure_eagain(void **state)
{
	run_child(*state, backpressure_child,
	    "tbf rate 1mbit burst 1600 limit 1000000", "4");
}

static void
test_backpressure_batched(void **state)
{
	run_child(*state, backpressure_batched_child,
	    "tbf rate 1mbit burst 1600 limit 3200", "0");
	run_child(*state, backpressure_batched_child,
	    "tbf rate 1mbit burst 1600 limit 1000000", "4");
}

static void
test_link_down_up(void **state)
{
	run_child(*state, linkdown_child, NULL, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_broadcast_reaches_node,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unicast_reply,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_announce,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_multicast_dropped,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_emsgsize,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_then_quiet,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_inside_rx,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_up_deferred,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_interface_by_name,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unicast_port,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_share_port,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_error_drained,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_caps,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_unchecked,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure_enobufs,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_flush,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure_batched,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure_eagain,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_down_up,
		    setup, teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
