/*
 * lora_rui3.c: the AT dialect of RAKwireless RUI3 modules in LoRa P2P
 * mode (RAK3172 and its variants, RAK4630/4631, RAK11720), as the
 * "RUI3 AT Command Manual" (docs.rakwireless.com, "LoRa P2P" commands)
 * and the RAK3172 Quick Start Guide ("LoRa P2P Mode") describe it.
 * docs/transports/lora.md lists every line spoken here with its section.
 *
 * Commands end with CR LF; so do answers.  A command is answered with
 * its value lines (queries, `AT+XXX=?'), then a status line: `OK' or
 * one of the AT_* error codes.  Events come unsolicited:
 *   +EVT:TXP2P DONE                the frame left the radio
 *   +EVT:RXP2P:<rssi>:<snr>:<hex>  a frame arrived
 *   +EVT:RXP2P RECEIVE ERROR       a frame arrived with a bad CRC
 *   +EVT:RXP2P RECEIVE TIMEOUT     a timed receive window ended
 * and after a reset (ATZ, AT+NWM, power) the module prints a banner
 * ending with `Current Work Mode: LoRa P2P.' (or `LoRaWAN.').
 *
 * The settings go in one command, AT+P2P=freq:sf:bw:cr:preamble:power
 * (bw in kHz, cr 0-3 for 4/5-4/8), checked back with AT+P2P=?.  The
 * receiver runs continuously with AT+PRECV=65533: RX mode in which the
 * module may still transmit, returning to RX after each frame (RUI3
 * 3.4.0 release note); AT+PRECV=0 stops it, as the module refuses new
 * settings (AT_BUSY_ERROR) while it receives.  RUI3 P2P always sends
 * an explicit header and a payload CRC.
 */
#include <stdio.h>
#include <string.h>

#include "lora_internal.h"

#define RUI3_PAYLOAD_MAX	250	/* AT+PSEND: 2 to 500 hex digits */
#define RUI3_LISTEN		65533	/* continuous RX, TX allowed */

static const struct {
	const char	*line;
	enum lora_err	 err;
} rui3_errors[] = {
	{ "AT_ERROR", LORA_ERR_GENERIC },
	{ "AT_PARAM_ERROR", LORA_ERR_PARAM },
	{ "AT_BUSY_ERROR", LORA_ERR_BUSY },
	{ "AT_TEST_PARAM_OVERFLOW", LORA_ERR_OVERFLOW },
	{ "AT_NO_CLASSB_ENABLE", LORA_ERR_MODE },
	{ "AT_NO_NETWORK_JOINED", LORA_ERR_MODE },
	{ "AT_RX_ERROR", LORA_ERR_GENERIC },
	{ "AT_MODE_NO_SUPPORT", LORA_ERR_MODE },
	{ "AT_COMMAND_NOT_FOUND", LORA_ERR_UNKNOWN },
	/* Firmware 1.0.x of the RAK3172 (the manual's spelling). */
	{ "AT_DUTYCYLE_RESTRICTED", LORA_ERR_DUTY },
	{ "AT_DUTYCYCLE_RESTRICTED", LORA_ERR_DUTY }
};

static const char *
rui3_phy_check(const struct lora_phy *p)
{
	if (!p->crc || p->implicit)
		return ("RUI3 P2P sends an explicit header and a payload CRC");
	if (p->power_dbm < 5 || p->power_dbm > 22)
		return ("RUI3 P2P power: 5 to 22 dBm");
	if (p->ldro != -1)
		return ("RUI3 sets low data rate optimisation itself "
		    "(ldro = auto)");
	return (NULL);
}

static int
rui3_p2p_value(const struct lora_phy *p, char *out, size_t cap)
{
	int	 n;

	n = snprintf(out, cap, "%u:%u:%u:%u:%u:%d", p->freq_hz, p->sf,
	    p->bw_khz, p->cr - 1, p->preamble, p->power_dbm);
	return (n < 0 || (size_t)n >= cap ? -1 : n);
}

/*
 * The script: probe, check the work mode (switching it reboots the
 * module), stop receiving, set and read back the radio, listen.
 */
static int
rui3_init_step(const struct lora_phy *p, unsigned int i, struct lora_step *st)
{
	char	 v[64];
	int	 n = 0;

	memset(st, 0, sizeof(*st));
	switch (i) {
	case 0:
		n = snprintf(st->cmd, sizeof(st->cmd), "AT");
		break;
	case 1:
		n = snprintf(st->cmd, sizeof(st->cmd), "AT+NWM=?");
		st->want_value = true;
		break;
	case 2:
		/* Only when step 1 found LoRaWAN mode. */
		n = snprintf(st->cmd, sizeof(st->cmd), "AT+NWM=0");
		st->reboots = true;
		break;
	case 3:
		n = snprintf(st->cmd, sizeof(st->cmd), "AT+PRECV=0");
		break;
	case 4:
		if (rui3_p2p_value(p, v, sizeof(v)) == -1)
			return (0);
		n = snprintf(st->cmd, sizeof(st->cmd), "AT+P2P=%s", v);
		break;
	case 5:
		n = snprintf(st->cmd, sizeof(st->cmd), "AT+P2P=?");
		st->want_value = true;
		break;
	case 6:
		n = snprintf(st->cmd, sizeof(st->cmd), "AT+PRECV=%u",
		    RUI3_LISTEN);
		break;
	default:
		return (0);
	}
	return (n > 0 && (size_t)n < sizeof(st->cmd));
}

/* A query's value, with or without the `AT+XXX=' prefix of RUI3 4.x. */
static const char *
rui3_value(const char *value, const char *prefix)
{
	size_t	 n = strlen(prefix);

	if (strncmp(value, prefix, n) == 0)
		return (value + n);
	return (value);
}

static int
rui3_init_check(const struct lora_phy *p, unsigned int i, const char *value,
    const char **why)
{
	char		 want[64];
	const char	*v;

	*why = NULL;
	switch (i) {
	case 1:
		v = rui3_value(value, "AT+NWM=");
		if (strcmp(v, "0") == 0)
			return (1);	/* P2P already: skip AT+NWM=0 */
		if (strcmp(v, "1") == 0 || strcmp(v, "2") == 0)
			return (0);
		*why = "AT+NWM=? answered neither 0, 1 nor 2";
		return (-1);
	case 5:
		v = rui3_value(value, "AT+P2P=");
		if (rui3_p2p_value(p, want, sizeof(want)) == -1 ||
		    strcmp(v, want) != 0) {
			*why = "AT+P2P=? does not read back the settings sent";
			return (-1);
		}
		return (0);
	default:
		return (0);
	}
}

static int
rui3_send_cmd(const uint8_t *b, size_t len, char *out, size_t cap)
{
	static const char pfx[] = "AT+PSEND=";
	int		 n;

	if (len == 0 || len > RUI3_PAYLOAD_MAX || cap < sizeof(pfx))
		return (-1);
	memcpy(out, pfx, sizeof(pfx) - 1);
	n = lora_hex_encode(b, len, out + sizeof(pfx) - 1,
	    cap - (sizeof(pfx) - 1));
	return (n < 0 ? -1 : n + (int)sizeof(pfx) - 1);
}

static int
rui3_preamble_cmd(uint32_t symbols, char *out, size_t cap)
{
	int	 n;

	if (symbols < 5 || symbols > 65535)
		return (-1);
	n = snprintf(out, cap, "AT+PPL=%u", symbols);
	return (n < 0 || (size_t)n >= cap ? -1 : n);
}

static int
rui3_listen_cmd(bool on, char *out, size_t cap)
{
	int	 n;

	n = snprintf(out, cap, "AT+PRECV=%u", on ? RUI3_LISTEN : 0);
	return (n < 0 || (size_t)n >= cap ? -1 : n);
}

static int
rui3_reset_cmd(char *out, size_t cap)
{
	int	 n;

	n = snprintf(out, cap, "ATZ");
	return (n < 0 || (size_t)n >= cap ? -1 : n);
}

/* +EVT:RXP2P:<rssi>:<snr>:<hex>, every field checked. */
static void
rui3_parse_rx(const char *s, struct lora_event *ev, uint8_t *buf,
    size_t cap)
{
	const char	*c1, *c2;
	long		 rssi, snr;
	int		 n;

	ev->type = LORA_EV_BAD;
	if ((c1 = strchr(s, ':')) == NULL ||
	    (c2 = strchr(c1 + 1, ':')) == NULL) {
		ev->why = "receive line without RSSI, SNR and payload";
		return;
	}
	if (lora_parse_int(s, (size_t)(c1 - s), -200, 50, &rssi) == -1) {
		ev->why = "receive line with a bad RSSI";
		return;
	}
	if (lora_parse_int(c1 + 1, (size_t)(c2 - c1 - 1), -64, 64,
	    &snr) == -1) {
		ev->why = "receive line with a bad SNR";
		return;
	}
	if (c2[1] == '\0') {
		ev->why = "receive line with an empty payload";
		return;
	}
	n = lora_hex_decode(c2 + 1, strlen(c2 + 1), buf, cap, &ev->why);
	if (n < 0)
		return;
	ev->type = LORA_EV_RX;
	ev->rssi_dbm = (int16_t)rssi;
	ev->snr_db = (int8_t)snr;
	ev->len = (size_t)n;
}

static void
rui3_parse(const char *line, const char *last_cmd, struct lora_event *ev,
    uint8_t *buf, size_t cap)
{
	size_t		 i;

	memset(ev, 0, sizeof(*ev));
	if (line[0] == '\0' || (last_cmd != NULL &&
	    strcmp(line, last_cmd) == 0)) {
		ev->type = LORA_EV_IGNORE;	/* blank, or ATE's echo */
		return;
	}
	if (strcmp(line, "OK") == 0) {
		ev->type = LORA_EV_OK;
		return;
	}
	for (i = 0; i < sizeof(rui3_errors) / sizeof(rui3_errors[0]); i++) {
		if (strcmp(line, rui3_errors[i].line) == 0) {
			ev->type = LORA_EV_ERROR;
			ev->err = rui3_errors[i].err;
			return;
		}
	}
	if (strncmp(line, "+EVT:", 5) == 0) {
		line += 5;
		if (strcmp(line, "TXP2P DONE") == 0)
			ev->type = LORA_EV_TX_DONE;
		else if (strcmp(line, "RXP2P RECEIVE ERROR") == 0)
			ev->type = LORA_EV_RX_ERROR;
		else if (strcmp(line, "RXP2P RECEIVE TIMEOUT") == 0)
			ev->type = LORA_EV_RX_END;
		else if (strncmp(line, "RXP2P:", 6) == 0)
			rui3_parse_rx(line + 6, ev, buf, cap);
		else {
			ev->type = LORA_EV_BAD;
			ev->why = "an event this driver does not know";
		}
		return;
	}
	if (strncmp(line, "Current Work Mode:", 18) == 0) {
		ev->type = LORA_EV_BOOT;
		return;
	}
	/* A query's value, or banner text: the caller knows which. */
	ev->type = LORA_EV_VALUE;
	ev->value = line;
}

const struct lora_dialect lora_dialect_rui3 = {
	.name = "rui3",
	.family = "RAKwireless RUI3, LoRa P2P (RAK3172, RAK4630, RAK11720)",
	.payload_max = RUI3_PAYLOAD_MAX,
	.phy_check = rui3_phy_check,
	.init_step = rui3_init_step,
	.init_check = rui3_init_check,
	.send_cmd = rui3_send_cmd,
	.preamble_cmd = rui3_preamble_cmd,
	.listen_cmd = rui3_listen_cmd,
	.reset_cmd = rui3_reset_cmd,
	.parse = rui3_parse
};
