/*
 * test_node_lan.c: upnode's LAN link (node-stubs/node_lan.c) on loopback
 * multicast: datagrams read many per recvmmsg() come out one by one, in
 * order, with their source; empty and oversized datagrams are dropped
 * whole; pending() says when frames read ahead still wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upnode.h"

static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 sl = sizeof(sin);
	int			 fd, port;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return (port);
}

static void
test_batched_receive(void **state)
{
	struct node_conf	 conf;
	struct node_link	*l;
	struct node_link_caps	 caps;
	struct node_link_src	 src;
	struct sockaddr_in	 to, self;
	struct pollfd		 pfd[NODE_LINK_FDS_MAX];
	struct in_addr		 lo = { htonl(INADDR_LOOPBACK) };
	static uint8_t		 big[UP_FRAME_MAX + 1], buf[UP_FRAME_MAX];
	socklen_t		 sl = sizeof(self);
	char			 group[32], port[16], want[16];
	char			*cause = NULL;
	unsigned int		 r, i, got;
	ssize_t			 n;
	int			 fd, nfd;

	r = (unsigned int)getpid() * 2654435761u;
	snprintf(group, sizeof(group), "239.255.%u.%u", (r >> 8) % 254 + 1,
	    r % 254 + 1);
	snprintf(port, sizeof(port), "%d", free_port());
	memset(&conf, 0, sizeof(conf));
	conf.link = &node_link_lan;
	conf.linkopt[conf.nlinkopt].key = "group";
	conf.linkopt[conf.nlinkopt++].value = group;
	conf.linkopt[conf.nlinkopt].key = "port";
	conf.linkopt[conf.nlinkopt++].value = port;
	conf.linkopt[conf.nlinkopt].key = "iface";
	conf.linkopt[conf.nlinkopt++].value = "127.0.0.1";
	if ((l = node_link_lan.open(&conf, -1, &cause)) == NULL)
		fail_msg("%s", cause);
	node_link_lan.caps(l, &caps);
	assert_int_equal(caps.rx_max, UP_FRAME_MAX);
	nfd = node_link_lan.pollfds(l, pfd, NODE_LINK_FDS_MAX);
	assert_int_equal(nfd, 2);

	/* 40 datagrams to the group: 38 frames, one empty, one too long. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd != -1);
	assert_int_equal(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo,
	    sizeof(lo)), 0);
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	inet_pton(AF_INET, group, &to.sin_addr);
	to.sin_port = htons((uint16_t)atoi(port));
	memset(big, 'x', sizeof(big));
	for (i = 0; i < 40; i++) {
		if (i == 5)
			n = sendto(fd, "", 0, 0, (struct sockaddr *)&to,
			    sizeof(to));
		else if (i == 20)
			n = sendto(fd, big, sizeof(big), 0,
			    (struct sockaddr *)&to, sizeof(to));
		else if (i == 30)
			n = sendto(fd, big, UP_FRAME_MAX, 0,
			    (struct sockaddr *)&to, sizeof(to));
		else {
			snprintf(want, sizeof(want), "d%u", i);
			n = sendto(fd, want, strlen(want), 0,
			    (struct sockaddr *)&to, sizeof(to));
		}
		assert_true(n >= 0);
	}
	assert_int_equal(getsockname(fd, (struct sockaddr *)&self, &sl), 0);

	pfd[0].revents = 0;
	assert_int_equal(poll(pfd, 1, 2000), 1);
	assert_false(node_link_lan.pending(l, &pfd[0]));
	for (got = 0, i = 0; i < 40; i++) {
		if (i == 5 || i == 20)
			continue;
		n = node_link_lan.recv(l, &pfd[0], buf, caps.rx_max, &src);
		if (i == 30) {
			assert_int_equal(n, UP_FRAME_MAX);
		} else {
			snprintf(want, sizeof(want), "d%u", i);
			assert_int_equal(n, (ssize_t)strlen(want));
			assert_memory_equal(buf, want, (size_t)n);
		}
		/* From the sender's socket. */
		assert_int_equal(src.len, sizeof(struct sockaddr_in));
		memcpy(&to, src.b, sizeof(to));
		assert_int_equal(to.sin_port, self.sin_port);
		/* Read ahead: more wait although nobody polled. */
		if (i == 0)
			assert_true(node_link_lan.pending(l, &pfd[0]));
		got++;
	}
	assert_int_equal(got, 38);
	assert_int_equal(node_link_lan.recv(l, &pfd[0], buf, caps.rx_max,
	    &src), 0);
	assert_false(node_link_lan.pending(l, &pfd[0]));
	assert_false(node_link_lan.pending(l, &pfd[1]));
	close(fd);
	node_link_lan.close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batched_receive),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
