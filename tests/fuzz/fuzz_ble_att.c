/*
 * fuzz_ble_att.c: the ble transport's ATT client and codec from bytes
 * (transports/ble/ble_att.c, ble_client.c).
 *
 * The input is a series of PDUs, each a length byte then that many
 * bytes, which a "peripheral" writes to the client over a socketpair
 * after the client starts its set-up; the client's own PDUs are read
 * and dropped.  Every PDU also goes through ble_att_decode() (and every
 * entry of a Read By Type Response through ble_att_chr_at()), and the
 * whole input through ble_adv_parse().  Invariants (abort if broken):
 * a decoded list's entries lie inside the PDU; a dead connection says
 * why and accepts no frame; a ready one takes a frame of ATT_MTU - 3
 * bytes and refuses one byte more.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ble_internal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_decode(const uint8_t *p, size_t len)
{
	struct ble_att_msg	 m;
	struct ble_att_chr	 c;
	size_t			 i;

	if (ble_att_decode(p, len, &m) != BLE_OK)
		return;
	switch (m.op) {
	case BLE_ATT_FIND_INFO_RSP:
	case BLE_ATT_FIND_TYPE_RSP:
	case BLE_ATT_READ_TYPE_RSP:
	case BLE_ATT_READ_GROUP_RSP:
		if (m.u.list.count == 0 || m.u.list.data < p ||
		    m.u.list.data + m.u.list.count * m.u.list.elen > p + len)
			abort();
		for (i = 0; m.op == BLE_ATT_READ_TYPE_RSP &&
		    i < m.u.list.count; i++)
			(void)ble_att_chr_at(&m, i, &c);
		break;
	case BLE_ATT_NOTIFY:
	case BLE_ATT_INDICATE:
		if (m.u.hv.data + m.u.hv.len != p + len)
			abort();
		break;
	default:
		break;
	}
}

static void
drain(int fd)
{
	uint8_t	 b[BLE_ATT_MTU_MAX + 1];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
		continue;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ble_conn_cb cb;	/* no callbacks */
	struct ble_conn_params	 par;
	struct ble_conn		*c;
	struct ble_adv		 adv;
	struct iovec		 iov;
	uint8_t			 frame[BLE_ATT_MTU_MAX];
	size_t			 off = 0, n, used;
	int			 sv[2], dead = 0;

	(void)ble_adv_parse(data, size, &used, &adv);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) == -1)
		return (0);
	memset(&par, 0, sizeof(par));
	par.mtu = 247;
	par.queue = 4;
	par.att_timeout_ms = 30000;
	par.security = 1;
	if ((c = ble_conn_new(sv[0], &par, &cb, NULL)) == NULL) {
		close(sv[0]);
		close(sv[1]);
		return (0);
	}
	ble_conn_start(c, 1);
	(void)ble_conn_tx(c, 1);
	drain(sv[1]);
	while (off < size && !dead) {
		n = data[off++];
		if (n > size - off)
			n = size - off;
		check_decode(data + off, n);
		if (n > 0 && send(sv[1], data + off, n, MSG_DONTWAIT) == -1)
			break;
		off += n;
		if (ble_conn_rx(c, 2) == -1 || ble_conn_tx(c, 2) == -1)
			dead = 1;
		drain(sv[1]);
	}
	memset(frame, 0, sizeof(frame));
	iov.iov_base = frame;
	if (ble_conn_state(c) == BLE_C_DEAD) {
		iov.iov_len = 1;
		if (ble_conn_why(c)[0] == '\0' ||
		    ble_conn_queue(c, &iov, 1, 1) != TP_ENOPEER)
			abort();
	} else if (ble_conn_state(c) == BLE_C_READY) {
		iov.iov_len = (size_t)ble_conn_mtu(c) - 2;
		if (ble_conn_queue(c, &iov, 1, 1) != TP_EMSGSIZE)
			abort();
		iov.iov_len--;
		if (ble_conn_queue(c, &iov, 1, 2) != TP_OK)
			abort();
		(void)ble_conn_tx(c, 3);
	}
	ble_conn_free(c);
	close(sv[1]);
	return (0);
}
