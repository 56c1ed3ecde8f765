/*
 * ble_sim.c: the "sim" radio of the ble transport, a TEST FACILITY
 * (docs/transports/ble.md, "Simulated peripherals").
 *
 * This machine, and CI's, have no Bluetooth controller.  With
 * `sim_dir = DIR' the plugin reaches simulated peripherals (`upnode
 * --transport ble --link-opt dir=DIR') instead of the controller:
 *  - scanning reads DIR/ADDR.adv, the advertising report a peripheral
 *    keeps there while it advertises (the bytes of an HCI LE Advertising
 *    Report entry, parsed by the same ble_adv_parse() as the real
 *    radio's), every scan_period_ms;
 *  - connecting opens a UNIX SOCK_SEQPACKET connection to
 *    DIR/ADDR.sock, where the peripheral's ATT server listens behind its
 *    link model (node-stubs/node_ble.c).
 * From there on everything is the real code: the same ATT client on the
 * same kind of descriptor.  Nothing selects this radio unless sim_dir is
 * set; the default is the controller (ble_hci.c).
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "up.h"
#include "ble_internal.h"
#include "transports_internal.h"

/* Longest name: "AA:BB:CC:DD:EE:FF.sock". */
#define SIM_NAME_MAX	(17 + sizeof(BLE_SIM_SOCK_SUFFIX))

struct ble_radio {
	struct tp			*tp;
	const struct ble_radio_cb	*cb;
	char				*dir;
	uint32_t			 period_ms;
	uint64_t			 last_ms;
	bool				 scanning;
	bool				 scanned;
};

static struct ble_radio *
sim_open(struct tp *tp, const struct tp_conf *conf,
    const struct ble_radio_cb *cb, char **cause)
{
	struct ble_radio	*r;
	struct stat		 sb;
	const char		*dir = tp_conf_str(conf, "sim_dir");

	if (dir == NULL || *dir == '\0') {
		tp__cause(cause, "transport.%s: sim_dir is empty",
		    ble__name(tp));
		return (NULL);
	}
	if (strlen(dir) + 1 + SIM_NAME_MAX > sizeof(((struct sockaddr_un *)
	    NULL)->sun_path)) {
		tp__cause(cause, "transport.%s: sim_dir \"%s\" is too long "
		    "for a UNIX socket path", ble__name(tp), dir);
		return (NULL);
	}
	if (stat(dir, &sb) == -1) {
		tp__cause(cause, "transport.%s: sim_dir \"%s\": %s",
		    ble__name(tp), dir, strerror(errno));
		return (NULL);
	}
	if (!S_ISDIR(sb.st_mode)) {
		tp__cause(cause, "transport.%s: sim_dir \"%s\": not a "
		    "directory", ble__name(tp), dir);
		return (NULL);
	}
	if (tp_conf_str(conf, "security") != NULL &&
	    strcmp(tp_conf_str(conf, "security"), "low") != 0) {
		tp__cause(cause, "transport.%s: simulated peripherals have no "
		    "encryption: security must be low with sim_dir",
		    ble__name(tp));
		return (NULL);
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->dir = strdup(dir)) == NULL) {
		free(r);
		tp__cause(cause, "transport.%s: out of memory", ble__name(tp));
		return (NULL);
	}
	r->tp = tp;
	r->cb = cb;
	r->period_ms = (uint32_t)tp_conf_int(conf, "scan_period_ms");
	up_logf(UP_LOG_WARN, "transport.%s: SIMULATED BLE: peripherals are "
	    "reached through %s (a test facility, not a Bluetooth "
	    "controller)", ble__name(tp), dir);
	return (r);
}

static void
sim_close(struct ble_radio *r)
{
	if (r == NULL)
		return;
	free(r->dir);
	free(r);
}

static int
sim_scan(struct ble_radio *r, bool on, char **cause)
{
	if (on && !r->scanning)
		r->scanned = false;	/* rescan at the next tick */
	r->scanning = on;
	return (0);
}

static int
sim_scan_fd(struct ble_radio *r)
{
	return (-1);
}

/* Reads one .adv file (at most a report's length) and reports it. */
static void
sim_read_adv(struct ble_radio *r, const char *name)
{
	struct ble_adv	 adv;
	uint8_t		 buf[64];
	char		 path[PATH_MAX], bd[18];
	size_t		 used;
	ssize_t		 n;
	int		 fd, e;

	if (snprintf(path, sizeof(path), "%s/%s", r->dir, name) >=
	    (int)sizeof(path))
		return;
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		return;		/* gone since readdir: stopped advertising */
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return;
	if ((e = ble_adv_parse(buf, (size_t)n, &used, &adv)) != BLE_OK ||
	    used != (size_t)n) {
		up_logf(UP_LOG_DEBUG, "transport.%s: %s: not an advertising "
		    "report (%s)", ble__name(r->tp), path, e != BLE_OK ?
		    ble_att_strerror(e) : "trailing bytes");
		return;
	}
	/* The file's name must be the address it advertises. */
	ble_addr_bd_fmt(&adv.addr, bd, sizeof(bd));
	if (strncmp(name, bd, 17) != 0) {
		up_logf(UP_LOG_DEBUG, "transport.%s: %s advertises %s, "
		    "ignored", ble__name(r->tp), path, bd);
		return;
	}
	if (adv.connectable && adv.up_service)
		r->cb->seen(r->tp, &adv);
}

static void
sim_scan_read(struct ble_radio *r, uint64_t now_ms)
{
	struct dirent	*de;
	DIR		*d;
	size_t		 len, sl = sizeof(BLE_SIM_ADV_SUFFIX) - 1;

	if (!r->scanning || (r->scanned && now_ms - r->last_ms <
	    r->period_ms))
		return;
	r->scanned = true;
	r->last_ms = now_ms;
	if ((d = opendir(r->dir)) == NULL) {
		up_logf(UP_LOG_WARN, "transport.%s: sim_dir %s: %s",
		    ble__name(r->tp), r->dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len != 17 + sl || strcmp(de->d_name + 17,
		    BLE_SIM_ADV_SUFFIX) != 0)
			continue;
		sim_read_adv(r, de->d_name);
	}
	closedir(d);
}

static int
sim_connect(struct ble_radio *r, const struct tp_addr *dst, int security,
    char **cause)
{
	struct sockaddr_un	 sun;
	char			 bd[18];
	int			 fd;

	if (security > 1)
		return (tp__cause(cause, "simulated peripherals have no "
		    "encryption"));
	ble_addr_bd_fmt(dst, bd, sizeof(bd));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s%s", r->dir, bd,
	    BLE_SIM_SOCK_SUFFIX);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return (tp__cause(cause, "socket: %s", strerror(errno)));
	/*
	 * A UNIX connect completes at once, or fails: EAGAIN means the
	 * peripheral's backlog is full (it takes one central at a time).
	 */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 &&
	    errno != EINPROGRESS) {
		tp__cause(cause, "simulated peripheral %s: %s", sun.sun_path,
		    errno == ENOENT ? "no such peripheral" : errno ==
		    ECONNREFUSED ? "not listening (node stopped)" :
		    errno == EAGAIN ? "busy with another central" :
		    strerror(errno));
		close(fd);
		return (-1);
	}
	return (fd);
}

static int
sim_security(struct ble_radio *r, int fd, int level)
{
	return (-1);	/* a UNIX socket cannot be encrypted */
}

/* AF_UNIX counts what the peer has not read yet (unix(7), SIOCOUTQ). */
static int
sim_outq(struct ble_radio *r, int fd)
{
	int	 n;

	if (ioctl(fd, SIOCOUTQ, &n) == -1)
		return (-1);
	return (n);
}

const struct ble_radio_ops ble_radio_sim = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.scan = sim_scan,
	.scan_fd = sim_scan_fd,
	.scan_read = sim_scan_read,
	.connect = sim_connect,
	.tune = NULL,
	.security = sim_security,
	.outq = sim_outq
};
