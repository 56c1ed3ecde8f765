/*
 * ble_att.c: the ATT PDU codec of the "ble" transport's GATT client
 * (Core 5.3 Vol 3 Part F §3.4), advertising reports (Vol 4 Part E
 * §7.7.65.2, Vol 3 Part C §11) and addresses.
 *
 * Every decoder reads through explicit length checks: nothing is read
 * past `len', and a PDU whose lengths do not add up is refused whole.
 * Multi-byte fields are little-endian (Vol 3 Part F §3.2.1 ... the
 * whole of ATT is).
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ble_internal.h"
#include "transports_internal.h"

/*
 * The UP service: e84fXXXX-5a6a-4d2f-b31b-6c73e1665fa7 with XXXX 0001
 * (service), 0002 (Data), 0003 (Reply), 0004 (Credit), little-endian.
 */
#define BLE_UP_UUID(x)	{ 0xa7, 0x5f, 0x66, 0xe1, 0x73, 0x6c, 0x1b, 0xb3, \
			  0x2f, 0x4d, 0x6a, 0x5a, (x), 0x00, 0x4f, 0xe8 }
const uint8_t	 ble_uuid_up_service[BLE_UUID128_LEN] = BLE_UP_UUID(0x01);
const uint8_t	 ble_uuid_up_data[BLE_UUID128_LEN] = BLE_UP_UUID(0x02);
const uint8_t	 ble_uuid_up_reply[BLE_UUID128_LEN] = BLE_UP_UUID(0x03);
const uint8_t	 ble_uuid_up_credit[BLE_UUID128_LEN] = BLE_UP_UUID(0x04);

static uint16_t
get16(const uint8_t *p)
{
	return ((uint16_t)(p[0] | p[1] << 8));
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

const char *
ble_att_strerror(int e)
{
	switch (e) {
	case BLE_OK:
		return ("ok");
	case BLE_ESHORT:
		return ("PDU shorter than its fields");
	case BLE_ELEN:
		return ("PDU lengths do not add up");
	case BLE_EOPCODE:
		return ("unknown ATT opcode");
	case BLE_EFORMAT:
		return ("field value not allowed");
	case BLE_ESPACE:
		return ("buffer too small");
	default:
		return ("?");
	}
}

const char *
ble_att_errname(uint8_t code)
{
	switch (code) {
	case BLE_ATT_E_INVALID_HANDLE:
		return ("invalid handle");
	case BLE_ATT_E_READ_NOT_PERM:
		return ("read not permitted");
	case BLE_ATT_E_WRITE_NOT_PERM:
		return ("write not permitted");
	case BLE_ATT_E_INVALID_PDU:
		return ("invalid PDU");
	case BLE_ATT_E_AUTHENTICATION:
		return ("insufficient authentication");
	case BLE_ATT_E_NOT_SUPPORTED:
		return ("request not supported");
	case BLE_ATT_E_INVALID_OFFSET:
		return ("invalid offset");
	case BLE_ATT_E_AUTHORIZATION:
		return ("insufficient authorization");
	case BLE_ATT_E_NOT_FOUND:
		return ("attribute not found");
	case BLE_ATT_E_KEY_SIZE:
		return ("insufficient encryption key size");
	case BLE_ATT_E_VALUE_LEN:
		return ("invalid attribute value length");
	case BLE_ATT_E_UNLIKELY:
		return ("unlikely error");
	case BLE_ATT_E_ENCRYPTION:
		return ("insufficient encryption");
	case BLE_ATT_E_UNSUPP_GROUP:
		return ("unsupported group type");
	case BLE_ATT_E_RESOURCES:
		return ("insufficient resources");
	default:
		return ("error");
	}
}

const char *
ble_att_opname(uint8_t op)
{
	switch (op) {
	case BLE_ATT_ERROR_RSP:
		return ("Error Response");
	case BLE_ATT_MTU_REQ:
		return ("Exchange MTU Request");
	case BLE_ATT_MTU_RSP:
		return ("Exchange MTU Response");
	case BLE_ATT_FIND_INFO_REQ:
		return ("Find Information Request");
	case BLE_ATT_FIND_INFO_RSP:
		return ("Find Information Response");
	case BLE_ATT_FIND_TYPE_REQ:
		return ("Find By Type Value Request");
	case BLE_ATT_FIND_TYPE_RSP:
		return ("Find By Type Value Response");
	case BLE_ATT_READ_TYPE_REQ:
		return ("Read By Type Request");
	case BLE_ATT_READ_TYPE_RSP:
		return ("Read By Type Response");
	case BLE_ATT_READ_REQ:
		return ("Read Request");
	case BLE_ATT_READ_RSP:
		return ("Read Response");
	case BLE_ATT_READ_GROUP_REQ:
		return ("Read By Group Type Request");
	case BLE_ATT_READ_GROUP_RSP:
		return ("Read By Group Type Response");
	case BLE_ATT_WRITE_REQ:
		return ("Write Request");
	case BLE_ATT_WRITE_RSP:
		return ("Write Response");
	case BLE_ATT_NOTIFY:
		return ("Handle Value Notification");
	case BLE_ATT_INDICATE:
		return ("Handle Value Indication");
	case BLE_ATT_CONFIRM:
		return ("Handle Value Confirmation");
	case BLE_ATT_WRITE_CMD:
		return ("Write Command");
	default:
		return ("unknown PDU");
	}
}

/*
 * The responses of §3.4 (odd opcodes up to Read Multiple Variable
 * Response 0x21, plus Execute Write Response 0x19) and the indication's
 * confirmation: what may only come back after a request of ours.
 */
bool
ble_att_is_response(uint8_t op)
{
	switch (op) {
	case 0x01: case 0x03: case 0x05: case 0x07: case 0x09: case 0x0b:
	case 0x0d: case 0x0f: case 0x11: case 0x13: case 0x17: case 0x19:
	case 0x21: case BLE_ATT_CONFIRM:
		return (true);
	default:
		return (false);
	}
}

/* The requests of §3.4 that a server answers (commands are not). */
bool
ble_att_is_request(uint8_t op)
{
	switch (op) {
	case 0x02: case 0x04: case 0x06: case 0x08: case 0x0a: case 0x0c:
	case 0x0e: case 0x10: case 0x12: case 0x16: case 0x18: case 0x20:
		return (true);
	default:
		return (false);
	}
}

/* Handle ranges (§3.4.3.1 ...): start 0 or start > end is invalid. */
static int
att_range(const uint8_t *p, struct ble_att_msg *m)
{
	m->u.req.start = get16(p);
	m->u.req.end = get16(p + 2);
	if (m->u.req.start == 0 || m->u.req.start > m->u.req.end)
		return (BLE_EFORMAT);
	return (BLE_OK);
}

int
ble_att_decode(const uint8_t *p, size_t len, struct ble_att_msg *m)
{
	size_t		 i, n;

	memset(m, 0, sizeof(*m));
	if (len < 1)
		return (BLE_ESHORT);
	m->op = p[0];
	switch (p[0]) {
	case BLE_ATT_ERROR_RSP:
		/* §3.4.1.1: opcode in error, handle, error code. */
		if (len < 5)
			return (BLE_ESHORT);
		if (len != 5)
			return (BLE_ELEN);
		m->u.err.req = p[1];
		m->u.err.handle = get16(p + 2);
		m->u.err.code = p[4];
		if (m->u.err.code == 0)
			return (BLE_EFORMAT);	/* 0x00 is reserved */
		return (BLE_OK);
	case BLE_ATT_MTU_REQ:
	case BLE_ATT_MTU_RSP:
		if (len < 3)
			return (BLE_ESHORT);
		if (len != 3)
			return (BLE_ELEN);
		m->u.mtu = get16(p + 1);
		return (BLE_OK);
	case BLE_ATT_FIND_INFO_RSP:
		/*
		 * §3.4.3.2: format 1 = (handle, 16-bit UUID) pairs, 2 =
		 * (handle, 128-bit UUID); at least one entry.
		 */
		if (len < 2)
			return (BLE_ESHORT);
		m->u.list.format = p[1];
		if (p[1] == 1)
			m->u.list.elen = 4;
		else if (p[1] == 2)
			m->u.list.elen = 18;
		else
			return (BLE_EFORMAT);
		n = len - 2;
		if (n < m->u.list.elen)
			return (BLE_ESHORT);
		if (n % m->u.list.elen != 0)
			return (BLE_ELEN);
		m->u.list.data = p + 2;
		m->u.list.count = n / m->u.list.elen;
		for (i = 0; i < m->u.list.count; i++)
			if (get16(m->u.list.data + i * m->u.list.elen) == 0)
				return (BLE_EFORMAT);
		return (BLE_OK);
	case BLE_ATT_FIND_TYPE_RSP:
		/* §3.4.3.4: (found handle, group end) pairs, at least one. */
		n = len - 1;
		if (n < 4)
			return (BLE_ESHORT);
		if (n % 4 != 0)
			return (BLE_ELEN);
		m->u.list.data = p + 1;
		m->u.list.elen = 4;
		m->u.list.count = n / 4;
		for (i = 0; i < m->u.list.count; i++) {
			const uint8_t	*e = m->u.list.data + 4 * i;

			if (get16(e) == 0 || get16(e) > get16(e + 2))
				return (BLE_EFORMAT);
		}
		return (BLE_OK);
	case BLE_ATT_READ_TYPE_RSP:
	case BLE_ATT_READ_GROUP_RSP:
		/*
		 * §3.4.4.2, §3.4.4.10: a length byte, then entries of that
		 * many bytes, each starting with a handle.
		 */
		if (len < 2)
			return (BLE_ESHORT);
		m->u.list.elen = p[1];
		if (m->u.list.elen < (p[0] == BLE_ATT_READ_TYPE_RSP ? 2u : 4u))
			return (BLE_EFORMAT);
		n = len - 2;
		if (n < m->u.list.elen)
			return (BLE_ESHORT);
		if (n % m->u.list.elen != 0)
			return (BLE_ELEN);
		m->u.list.data = p + 2;
		m->u.list.count = n / m->u.list.elen;
		for (i = 0; i < m->u.list.count; i++)
			if (get16(m->u.list.data + i * m->u.list.elen) == 0)
				return (BLE_EFORMAT);
		return (BLE_OK);
	case BLE_ATT_READ_RSP:
		m->u.value.data = p + 1;
		m->u.value.len = len - 1;
		return (BLE_OK);
	case BLE_ATT_WRITE_RSP:
	case BLE_ATT_CONFIRM:
		if (len != 1)
			return (BLE_ELEN);
		return (BLE_OK);
	case BLE_ATT_NOTIFY:
	case BLE_ATT_INDICATE:
	case BLE_ATT_WRITE_REQ:
	case BLE_ATT_WRITE_CMD:
		if (len < 3)
			return (BLE_ESHORT);
		m->u.hv.handle = get16(p + 1);
		m->u.hv.data = p + 3;
		m->u.hv.len = len - 3;
		if (m->u.hv.handle == 0)
			return (BLE_EFORMAT);
		return (BLE_OK);
	case BLE_ATT_FIND_INFO_REQ:
		if (len < 5)
			return (BLE_ESHORT);
		if (len != 5)
			return (BLE_ELEN);
		return (att_range(p + 1, m));
	case BLE_ATT_FIND_TYPE_REQ:
		/* §3.4.3.3: range, 16-bit type, value (the rest). */
		if (len < 7)
			return (BLE_ESHORT);
		m->u.req.type16 = get16(p + 5);
		m->u.req.uuid = p + 7;
		m->u.req.uuid_len = len - 7;
		return (att_range(p + 1, m));
	case BLE_ATT_READ_TYPE_REQ:
	case BLE_ATT_READ_GROUP_REQ:
		/* A range and a 16- or 128-bit UUID. */
		if (len < 7)
			return (BLE_ESHORT);
		if (len != 7 && len != 21)
			return (BLE_ELEN);
		m->u.req.uuid = p + 5;
		m->u.req.uuid_len = len - 5;
		return (att_range(p + 1, m));
	case BLE_ATT_READ_REQ:
		if (len < 3)
			return (BLE_ESHORT);
		if (len != 3)
			return (BLE_ELEN);
		m->u.req.handle = get16(p + 1);
		if (m->u.req.handle == 0)
			return (BLE_EFORMAT);
		return (BLE_OK);
	default:
		return (BLE_EOPCODE);
	}
}

int
ble_att_chr_at(const struct ble_att_msg *m, size_t i, struct ble_att_chr *c)
{
	const uint8_t	*e;

	if (m->op != BLE_ATT_READ_TYPE_RSP || i >= m->u.list.count)
		return (BLE_EFORMAT);
	/*
	 * Vol 3 Part G §3.3.1: handle, then the declaration's value:
	 * properties, value handle, a 16- or 128-bit UUID.
	 */
	if (m->u.list.elen != 7 && m->u.list.elen != 21)
		return (BLE_ELEN);
	e = m->u.list.data + i * m->u.list.elen;
	memset(c, 0, sizeof(*c));
	c->decl = get16(e);
	c->props = e[2];
	c->value = get16(e + 3);
	c->uuid_len = (uint8_t)(m->u.list.elen - 5);
	memcpy(c->uuid, e + 5, c->uuid_len);
	if (c->value == 0 || c->value <= c->decl)
		return (BLE_EFORMAT);
	return (BLE_OK);
}

ssize_t
ble_att_enc_mtu(uint8_t *b, size_t cap, uint8_t op, uint16_t mtu)
{
	if (cap < 3)
		return (BLE_ESPACE);
	b[0] = op;
	put16(b + 1, mtu);
	return (3);
}

ssize_t
ble_att_enc_find_type(uint8_t *b, size_t cap, uint16_t start, uint16_t end,
    uint16_t type, const uint8_t *val, size_t vlen)
{
	if (cap < 7 || vlen > cap - 7)
		return (BLE_ESPACE);
	b[0] = BLE_ATT_FIND_TYPE_REQ;
	put16(b + 1, start);
	put16(b + 3, end);
	put16(b + 5, type);
	memcpy(b + 7, val, vlen);
	return ((ssize_t)(7 + vlen));
}

ssize_t
ble_att_enc_range(uint8_t *b, size_t cap, uint8_t op, uint16_t start,
    uint16_t end, uint16_t uuid16)
{
	if (cap < 7)
		return (BLE_ESPACE);
	b[0] = op;
	put16(b + 1, start);
	put16(b + 3, end);
	put16(b + 5, uuid16);
	return (7);
}

ssize_t
ble_att_enc_find_info(uint8_t *b, size_t cap, uint16_t start, uint16_t end)
{
	if (cap < 5)
		return (BLE_ESPACE);
	b[0] = BLE_ATT_FIND_INFO_REQ;
	put16(b + 1, start);
	put16(b + 3, end);
	return (5);
}

ssize_t
ble_att_enc_read(uint8_t *b, size_t cap, uint16_t handle)
{
	if (cap < 3)
		return (BLE_ESPACE);
	b[0] = BLE_ATT_READ_REQ;
	put16(b + 1, handle);
	return (3);
}

ssize_t
ble_att_enc_write(uint8_t *b, size_t cap, uint8_t op, uint16_t handle,
    const uint8_t *val, size_t vlen)
{
	if (cap < 3 || vlen > cap - 3)
		return (BLE_ESPACE);
	b[0] = op;
	put16(b + 1, handle);
	if (vlen > 0)
		memcpy(b + 3, val, vlen);
	return ((ssize_t)(3 + vlen));
}

ssize_t
ble_att_enc_error(uint8_t *b, size_t cap, uint8_t req, uint16_t handle,
    uint8_t code)
{
	if (cap < 5)
		return (BLE_ESPACE);
	b[0] = BLE_ATT_ERROR_RSP;
	b[1] = req;
	put16(b + 2, handle);
	b[4] = code;
	return (5);
}

void
ble_att_hv_hdr(uint8_t hdr[3], uint8_t op, uint16_t handle)
{
	hdr[0] = op;
	put16(hdr + 1, handle);
}

void
ble_uuid_fmt(const uint8_t le[BLE_UUID128_LEN], char *buf, size_t len)
{
	uint8_t		 b[BLE_UUID128_LEN];
	size_t		 i;

	for (i = 0; i < BLE_UUID128_LEN; i++)
		b[i] = le[BLE_UUID128_LEN - 1 - i];
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
	    b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

#define BLE_PREFIX	"ble:"

void
ble_addr_bd_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	snprintf(buf, len, "%02X:%02X:%02X:%02X:%02X:%02X", a->b[1], a->b[2],
	    a->b[3], a->b[4], a->b[5], a->b[6]);
}

int
ble_addr_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	char		 bd[18];
	int		 n;

	if (a->flags & TP_ADDR_F_BROADCAST)
		return (-1);	/* BLE has no broadcast domain */
	if (a->len != BLE_ADDR_LEN || (a->b[0] != BLE_ADDR_PUBLIC &&
	    a->b[0] != BLE_ADDR_RANDOM))
		return (-1);
	ble_addr_bd_fmt(a, bd, sizeof(bd));
	n = snprintf(buf, len, BLE_PREFIX "%s%s", bd,
	    a->b[0] == BLE_ADDR_RANDOM ? "/random" : "");
	if (n < 0 || (size_t)n >= len)
		return (-1);
	return (0);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

/* "AA:BB:CC:DD:EE:FF" exactly; out[0] most significant. */
static int
bd_parse(const char *s, uint8_t out[6])
{
	int		 i, hi, lo;

	for (i = 0; i < 6; i++) {
		hi = hexval(s[3 * i]);
		lo = hi < 0 ? -1 : hexval(s[3 * i + 1]);
		if (lo < 0)
			return (-1);
		out[i] = (uint8_t)(hi << 4 | lo);
		if (i < 5 && s[3 * i + 2] != ':')
			return (-1);
	}
	return (0);
}

int
ble_addr_parse(const char *s, struct tp_addr *a, char **cause)
{
	const char	*p, *type;
	uint8_t		 bd[6];

	if (s == NULL || strncmp(s, BLE_PREFIX, sizeof(BLE_PREFIX) - 1) != 0)
		goto bad;
	p = s + sizeof(BLE_PREFIX) - 1;
	if (strlen(p) < 17 || bd_parse(p, bd) != 0)
		goto bad;
	type = p + 17;
	memset(a, 0, sizeof(*a));
	a->len = BLE_ADDR_LEN;
	if (*type == '\0' || strcmp(type, "/public") == 0)
		a->b[0] = BLE_ADDR_PUBLIC;
	else if (strcmp(type, "/random") == 0)
		a->b[0] = BLE_ADDR_RANDOM;
	else
		goto bad;
	memcpy(a->b + 1, bd, 6);
	return (0);
bad:
	return (tp__cause(cause, "bad ble address \"%s\": expected "
	    "ble:AA:BB:CC:DD:EE:FF, optionally followed by /random or "
	    "/public", s != NULL ? s : ""));
}

/* ------------------------------------------------------------------ */
/* Advertising reports                                                  */

/*
 * AD types (Core Supplement Part A §1.1): the 128-bit service UUID
 * lists, complete and incomplete.
 */
#define AD_UUID128_SOME		0x06
#define AD_UUID128_ALL		0x07

int
ble_adv_parse(const uint8_t *p, size_t len, size_t *used, struct ble_adv *a)
{
	const uint8_t	*d;
	size_t		 dlen, i, n, k;
	uint8_t		 evt, atype;

	memset(a, 0, sizeof(*a));
	*used = 0;
	/* evt_type, bdaddr_type, bdaddr[6], length, data[length], rssi */
	if (len < 10)
		return (BLE_ESHORT);
	evt = p[0];
	atype = p[1];
	dlen = p[8];
	if (dlen > 31)
		return (BLE_EFORMAT);	/* legacy advertising data */
	if (len < 10 + dlen)
		return (BLE_ESHORT);
	if (atype > 1)
		return (BLE_EFORMAT);
	a->addr.len = BLE_ADDR_LEN;
	a->addr.b[0] = atype == 0 ? BLE_ADDR_PUBLIC : BLE_ADDR_RANDOM;
	for (i = 0; i < 6; i++)
		a->addr.b[1 + i] = p[2 + 5 - i];
	/* ADV_IND 0x00 and ADV_DIRECT_IND 0x01 accept connections. */
	a->connectable = evt == 0x00 || evt == 0x01;
	a->rssi = (int8_t)p[9 + dlen];
	if (a->rssi == 127)
		a->rssi = INT16_MAX;	/* "not available" */
	*used = 10 + dlen;

	/* AD structures: length (type + data), type, data. */
	d = p + 9;
	for (i = 0; i < dlen; i += 1 + n) {
		n = d[i];
		if (n == 0)
			break;		/* early end of the significant part */
		if (n > dlen - i - 1)
			return (BLE_ELEN);
		if (d[i + 1] != AD_UUID128_SOME && d[i + 1] != AD_UUID128_ALL)
			continue;
		if ((n - 1) % BLE_UUID128_LEN != 0)
			return (BLE_ELEN);
		for (k = 0; k + BLE_UUID128_LEN <= n - 1;
		    k += BLE_UUID128_LEN)
			if (memcmp(d + i + 2 + k, ble_uuid_up_service,
			    BLE_UUID128_LEN) == 0)
				a->up_service = true;
	}
	return (BLE_OK);
}
