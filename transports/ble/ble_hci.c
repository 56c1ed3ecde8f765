/*
 * ble_hci.c: the real radio of the ble transport: BlueZ's kernel
 * interfaces through libbluetooth (docs/transports/ble.md, "The
 * controller").
 *
 *  - Scanning: an HCI socket on the controller with a filter that passes
 *    LE Meta events; LE Set Scan Parameters (passive) and LE Set Scan
 *    Enable; LE Advertising Reports (Core Vol 4 Part E §7.7.65.2) are
 *    parsed by ble_adv_parse(), and advertisers of the UP service are
 *    reported.  The controller's duplicate filter is reset by turning
 *    scanning off and on every scan_period_ms, so a node that advertises
 *    again after a disconnect is seen again.
 *  - Connecting: an L2CAP socket (SOCK_SEQPACKET, BTPROTO_L2CAP) bound to
 *    the controller's address on the ATT fixed channel (CID 4) and
 *    connected, non-blocking, to the node's LE address: the kernel makes
 *    the LE connection.  BT_SECURITY is set before connecting.
 *  - Tuning, once connected: the connection handle (L2CAP_CONNINFO), then
 *    LE Connection Update (interval), LE Set Data Length and LE Set PHY
 *    as HCI commands; the controller may refuse them, which only costs
 *    speed.
 * Commands after open() go with hci_send_cmd(), which does not wait, so
 * the loop never blocks on the controller; only open() waits (once) for
 * the scan parameters.
 *
 * NOT TESTED ON HARDWARE: this machine and CI have no Bluetooth (the
 * kernel has no AF_BLUETOOTH).  What is tested is that open() fails with
 * a clear message when there is no controller (test_tp_ble).
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/hci_lib.h>
#include <bluetooth/l2cap.h>

#include "up.h"
#include "ble_internal.h"
#include "transports_internal.h"

/* LE commands libbluetooth 5.66 has no names for (Vol 4 Part E §7.8). */
#define HCI_OCF_LE_SET_DATA_LENGTH	0x0022
#define HCI_OCF_LE_SET_PHY		0x0032

#define HCI_RX_BUDGET	32	/* events read per call */

struct ble_radio {
	struct tp			*tp;
	const struct ble_radio_cb	*cb;
	int				 dev_id;
	int				 dd;		/* HCI socket */
	bdaddr_t			 local;
	char				 adapter[16];
	bool				 scanning;
	uint64_t			 scan_at;	/* last (re)start */
	uint32_t			 period_ms;
	uint32_t			 interval_us;	/* 0 = kernel's */
	uint16_t			 data_length;
	uint8_t				 phy_mask;	/* LE Set PHY bits */
};

/*
 * Why there is no usable controller, in words a person can act on.  The
 * probe socket tells a kernel without Bluetooth (EAFNOSUPPORT: this
 * machine) from missing rights and from a missing controller.
 */
static char *
hci_why(const char *adapter)
{
	char	*s = NULL;
	int	 fd, e;

	fd = socket(AF_BLUETOOTH, SOCK_RAW | SOCK_CLOEXEC, BTPROTO_HCI);
	e = errno;
	if (fd != -1) {
		close(fd);
		if (asprintf(&s, "no Bluetooth controller \"%s\" (none is "
		    "attached, or it has another name: see `btmgmt info`)",
		    adapter) == -1)
			s = NULL;
		return (s);
	}
	if (e == EAFNOSUPPORT || e == EPROTONOSUPPORT)
		e = asprintf(&s, "no Bluetooth on this machine: the kernel "
		    "has no AF_BLUETOOTH sockets (%s); load the bluetooth "
		    "module and attach a controller, or use sim_dir for "
		    "simulated nodes in tests", strerror(e));
	else if (e == EPERM || e == EACCES)
		e = asprintf(&s, "cannot open an HCI socket: %s (needs "
		    "CAP_NET_RAW and CAP_NET_ADMIN)", strerror(e));
	else
		e = asprintf(&s, "cannot open an HCI socket: %s",
		    strerror(e));
	return (e == -1 ? NULL : s);
}

static struct ble_radio *
hci_open(struct tp *tp, const struct tp_conf *conf,
    const struct ble_radio_cb *cb, char **cause)
{
	struct ble_radio	*r;
	struct hci_dev_info	 di;
	struct hci_filter	 f;
	const char		*adapter = tp_conf_str(conf, "adapter");
	const char		*phy = tp_conf_str(conf, "phy");
	char			*why;
	int			 fl;

	if (adapter == NULL)
		adapter = "hci0";
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		tp__cause(cause, "transport.%s: out of memory", ble__name(tp));
		return (NULL);
	}
	r->tp = tp;
	r->cb = cb;
	r->dd = -1;
	snprintf(r->adapter, sizeof(r->adapter), "%s", adapter);
	r->period_ms = (uint32_t)tp_conf_int(conf, "scan_period_ms");
	r->interval_us = (uint32_t)tp_conf_int(conf, "conn_interval_us");
	r->data_length = (uint16_t)tp_conf_int(conf, "data_length");
	r->phy_mask = phy != NULL && strcmp(phy, "1M") == 0 ? 0x01 :
	    phy != NULL && strcmp(phy, "2M") == 0 ? 0x02 : 0x03;

	if ((r->dev_id = hci_devid(adapter)) < 0) {
		why = hci_why(adapter);
		tp__cause(cause, "transport.%s: %s", ble__name(tp),
		    why != NULL ? why : "no Bluetooth controller");
		free(why);
		goto fail;
	}
	if (hci_devinfo(r->dev_id, &di) < 0) {
		tp__cause(cause, "transport.%s: controller %s: %s",
		    ble__name(tp), adapter, strerror(errno));
		goto fail;
	}
	if (!hci_test_bit(HCI_UP, &di.flags)) {
		tp__cause(cause, "transport.%s: controller %s is down (power "
		    "it on: btmgmt --index %d power on)", ble__name(tp),
		    adapter, r->dev_id);
		goto fail;
	}
	bacpy(&r->local, &di.bdaddr);
	if ((r->dd = hci_open_dev(r->dev_id)) < 0) {
		tp__cause(cause, "transport.%s: controller %s: %s",
		    ble__name(tp), adapter, strerror(errno));
		goto fail;
	}
	/* Only LE Meta events (advertising reports) reach this socket. */
	hci_filter_clear(&f);
	hci_filter_set_ptype(HCI_EVENT_PKT, &f);
	hci_filter_set_event(EVT_LE_META_EVENT, &f);
	if (setsockopt(r->dd, SOL_HCI, HCI_FILTER, &f, sizeof(f)) == -1) {
		tp__cause(cause, "transport.%s: HCI_FILTER: %s",
		    ble__name(tp), strerror(errno));
		goto fail;
	}
	/*
	 * Passive scan, 60 ms interval, 30 ms window (units of 0.625 ms),
	 * public own address, no accept list.  This waits for the command's
	 * completion, once, at start-up.
	 */
	if (hci_le_set_scan_parameters(r->dd, 0x00, htobs(0x0060),
	    htobs(0x0030), 0x00, 0x00, 1000) < 0)
		up_logf(UP_LOG_WARN, "transport.%s: LE Set Scan Parameters "
		    "on %s: %s (is another program scanning?)", ble__name(tp),
		    adapter, strerror(errno));
	if ((fl = fcntl(r->dd, F_GETFL)) == -1 ||
	    fcntl(r->dd, F_SETFL, fl | O_NONBLOCK) == -1) {
		tp__cause(cause, "transport.%s: fcntl: %s", ble__name(tp),
		    strerror(errno));
		goto fail;
	}
	up_logf(UP_LOG_INFO, "transport.%s: BLE controller %s", ble__name(tp),
	    adapter);
	return (r);
fail:
	if (r->dd != -1)
		hci_close_dev(r->dd);
	free(r);
	return (NULL);
}

static void
hci_scan_cmd(struct ble_radio *r, uint8_t on)
{
	le_set_scan_enable_cp	 cp;

	memset(&cp, 0, sizeof(cp));
	cp.enable = on;
	cp.filter_dup = 0x01;
	if (hci_send_cmd(r->dd, OGF_LE_CTL, OCF_LE_SET_SCAN_ENABLE,
	    LE_SET_SCAN_ENABLE_CP_SIZE, &cp) < 0)
		up_logf(UP_LOG_WARN, "transport.%s: LE Set Scan Enable %u: "
		    "%s", ble__name(r->tp), on, strerror(errno));
}

static void
hci_close(struct ble_radio *r)
{
	if (r == NULL)
		return;
	if (r->scanning)
		hci_scan_cmd(r, 0);
	hci_close_dev(r->dd);
	free(r);
}

static int
hci_scan(struct ble_radio *r, bool on, char **cause)
{
	if (on == r->scanning)
		return (0);
	hci_scan_cmd(r, on ? 1 : 0);
	r->scanning = on;
	r->scan_at = ble__now_ms(r->tp);
	return (0);
}

static int
hci_scan_fd(struct ble_radio *r)
{
	return (r->dd);
}

/* One LE Meta event: the advertising reports in it. */
static void
hci_event(struct ble_radio *r, const uint8_t *p, size_t len)
{
	struct ble_adv	 adv;
	size_t		 used, i, n;
	int		 e;

	/* packet type, event code, parameter length, subevent */
	if (len < 4 || p[0] != HCI_EVENT_PKT || p[1] != EVT_LE_META_EVENT ||
	    (size_t)p[2] + 3 != len || p[3] != EVT_LE_ADVERTISING_REPORT)
		return;
	p += 4;
	len -= 4;
	if (len < 1)
		return;
	n = p[0];
	p++;
	len--;
	for (i = 0; i < n; i++) {
		if ((e = ble_adv_parse(p, len, &used, &adv)) != BLE_OK) {
			up_logf(UP_LOG_DEBUG, "transport.%s: advertising "
			    "report: %s", ble__name(r->tp),
			    ble_att_strerror(e));
			return;
		}
		if (adv.connectable && adv.up_service)
			r->cb->seen(r->tp, &adv);
		p += used;
		len -= used;
	}
}

static void
hci_scan_read(struct ble_radio *r, uint64_t now_ms)
{
	uint8_t		 buf[HCI_MAX_EVENT_SIZE];
	ssize_t		 n;
	int		 i;

	for (i = 0; i < HCI_RX_BUDGET; i++) {
		n = read(r->dd, buf, sizeof(buf));
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				up_logf(UP_LOG_WARN, "transport.%s: HCI read: "
				    "%s", ble__name(r->tp), strerror(errno));
			break;
		}
		hci_event(r, buf, (size_t)n);
	}
	/* The duplicate filter hides a node advertising again: reset it. */
	if (r->scanning && now_ms - r->scan_at >= r->period_ms) {
		hci_scan_cmd(r, 0);
		hci_scan_cmd(r, 1);
		r->scan_at = now_ms;
	}
}

static void
bd_from_addr(const struct tp_addr *a, bdaddr_t *bd)
{
	int	 i;

	for (i = 0; i < 6; i++)
		bd->b[i] = a->b[6 - i];
}

static int
hci_connect(struct ble_radio *r, const struct tp_addr *dst, int security,
    char **cause)
{
	struct sockaddr_l2	 sa;
	struct bt_security	 sec;
	int			 fd;

	fd = socket(AF_BLUETOOTH, SOCK_SEQPACKET | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, BTPROTO_L2CAP);
	if (fd == -1)
		return (tp__cause(cause, "L2CAP socket: %s",
		    strerror(errno)));
	memset(&sa, 0, sizeof(sa));
	sa.l2_family = AF_BLUETOOTH;
	bacpy(&sa.l2_bdaddr, &r->local);
	sa.l2_cid = htobs(BLE_ATT_CID);
	sa.l2_bdaddr_type = BDADDR_LE_PUBLIC;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		tp__cause(cause, "bind to %s's ATT channel: %s", r->adapter,
		    strerror(errno));
		goto fail;
	}
	memset(&sec, 0, sizeof(sec));
	sec.level = (uint8_t)security;
	if (setsockopt(fd, SOL_BLUETOOTH, BT_SECURITY, &sec,
	    sizeof(sec)) == -1) {
		tp__cause(cause, "BT_SECURITY %d: %s", security,
		    strerror(errno));
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.l2_family = AF_BLUETOOTH;
	bd_from_addr(dst, &sa.l2_bdaddr);
	sa.l2_cid = htobs(BLE_ATT_CID);
	sa.l2_bdaddr_type = dst->b[0] == BLE_ADDR_RANDOM ? BDADDR_LE_RANDOM :
	    BDADDR_LE_PUBLIC;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		tp__cause(cause, "L2CAP connect: %s", strerror(errno));
		goto fail;
	}
	return (fd);
fail:
	close(fd);
	return (-1);
}

/*
 * Asks for the connection parameters of the instance: interval (LE
 * Connection Update), data length and PHY.  Best effort: each is a
 * request the peer or controller may refuse, and its completion event
 * is not waited for.
 */
static void
hci_tune(struct ble_radio *r, int fd)
{
	struct l2cap_conninfo	 ci;
	le_connection_update_cp	 cu;
	socklen_t		 len = sizeof(ci);
	uint8_t			 dl[6], phy[7];
	uint16_t		 units;

	if (getsockopt(fd, SOL_L2CAP, L2CAP_CONNINFO, &ci, &len) == -1) {
		up_logf(UP_LOG_DEBUG, "transport.%s: L2CAP_CONNINFO: %s",
		    ble__name(r->tp), strerror(errno));
		return;
	}
	if (r->interval_us != 0) {
		/* Units of 1.25 ms; supervision 4 s (units of 10 ms). */
		units = (uint16_t)(r->interval_us / 1250);
		memset(&cu, 0, sizeof(cu));
		cu.handle = htobs(ci.hci_handle);
		cu.min_interval = htobs(units);
		cu.max_interval = htobs(units);
		cu.latency = htobs(0);
		cu.supervision_timeout = htobs(400);
		(void)hci_send_cmd(r->dd, OGF_LE_CTL, OCF_LE_CONN_UPDATE,
		    LE_CONN_UPDATE_CP_SIZE, &cu);
	}
	/* LE Set Data Length: handle, TX octets, TX time (§7.8.33). */
	dl[0] = (uint8_t)ci.hci_handle;
	dl[1] = (uint8_t)(ci.hci_handle >> 8);
	dl[2] = (uint8_t)r->data_length;
	dl[3] = (uint8_t)(r->data_length >> 8);
	dl[4] = (uint8_t)(2120 & 0xff);
	dl[5] = (uint8_t)(2120 >> 8);
	(void)hci_send_cmd(r->dd, OGF_LE_CTL, HCI_OCF_LE_SET_DATA_LENGTH,
	    sizeof(dl), dl);
	/* LE Set PHY: handle, all_phys, tx, rx, options (§7.8.49). */
	phy[0] = (uint8_t)ci.hci_handle;
	phy[1] = (uint8_t)(ci.hci_handle >> 8);
	phy[2] = 0x00;
	phy[3] = r->phy_mask;
	phy[4] = r->phy_mask;
	phy[5] = 0;
	phy[6] = 0;
	(void)hci_send_cmd(r->dd, OGF_LE_CTL, HCI_OCF_LE_SET_PHY,
	    sizeof(phy), phy);
}

static int
hci_security(struct ble_radio *r, int fd, int level)
{
	struct bt_security	 sec;

	/*
	 * On a connected LE socket the kernel starts SMP pairing and holds
	 * the socket's writes until the link is encrypted.
	 */
	memset(&sec, 0, sizeof(sec));
	sec.level = (uint8_t)level;
	if (setsockopt(fd, SOL_BLUETOOTH, BT_SECURITY, &sec,
	    sizeof(sec)) == -1) {
		up_logf(UP_LOG_WARN, "transport.%s: BT_SECURITY %d: %s",
		    ble__name(r->tp), level, strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * A Bluetooth socket's TIOCOUTQ is the free room of its send buffer
 * (net/bluetooth/af_bluetooth.c, bt_sock_ioctl), not the bytes queued:
 * what is queued is the buffer less that.
 */
static int
hci_outq(struct ble_radio *r, int fd)
{
	socklen_t	 len = sizeof(int);
	int		 room, sb;

	if (ioctl(fd, TIOCOUTQ, &room) == -1 ||
	    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, &len) == -1)
		return (-1);
	return (sb > room ? sb - room : 0);
}

const struct ble_radio_ops ble_radio_hci = {
	.name = "hci",
	.open = hci_open,
	.close = hci_close,
	.scan = hci_scan,
	.scan_fd = hci_scan_fd,
	.scan_read = hci_scan_read,
	.connect = hci_connect,
	.tune = hci_tune,
	.security = hci_security,
	.outq = hci_outq
};
