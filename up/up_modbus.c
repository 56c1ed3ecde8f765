/*
 * up_modbus.c: UP over Modbus, the register map (docs/transports/modbus.md).
 *
 * What both ends of a Modbus link need to agree on: where each block of
 * the map lives, which function codes may touch it, how a UP frame is
 * laid into registers and back, and the identity, status and outbox
 * blocks.  The gateway's plugin (transports/modbus/) and the simulated
 * node (node-stubs/node_modbus.c) both use it; an MCU's Modbus slave
 * would too.  Modbus itself (RTU/TCP framing, the PDU) stays with the
 * Modbus stack: libmodbus in this tree.  Registers are host-order
 * uint16_t, as a Modbus stack hands them over.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

/* Function codes (Modbus Application Protocol V1.1b3 §6). */
#define FC_READ_HOLDING		0x03
#define FC_READ_INPUT		0x04
#define FC_WRITE_SINGLE		0x06
#define FC_WRITE_MULTIPLE	0x10
#define FC_WRITE_AND_READ	0x17

/* Most registers one FC 0x17 writes (MODBUS_MAX_WR_WRITE_REGISTERS). */
#define WR_WRITE_MAX		121

struct area {
	enum up_mb_area	 area;
	bool		 input;		/* input registers, else holding */
	uint32_t	 start;
	uint32_t	 n;
};

static const struct area areas[] = {
	{ UP_MB_A_ID, true, UP_MB_ID, UP_MB_ID_N },
	{ UP_MB_A_ST, true, UP_MB_ST, UP_MB_ST_N },
	{ UP_MB_A_BITMAP, true, UP_MB_BITMAP, UP_MB_BITMAP_N },
	{ UP_MB_A_FRAME, false, UP_MB_FRAME, UP_MB_FRAME_N },
	{ UP_MB_A_FRAME_ODD, false, UP_MB_FRAME_ODD, UP_MB_FRAME_N },
	{ UP_MB_A_CTRL, false, UP_MB_CTRL, UP_MB_CTRL_N },
	{ UP_MB_A_BMBASE, false, UP_MB_BMBASE, UP_MB_BMBASE_N },
	{ UP_MB_A_OB, false, UP_MB_OB, UP_MB_OB_N },
};
#define NAREAS	(sizeof(areas) / sizeof(areas[0]))

/* The area [addr, addr + n) lies in, whole; NULL if none. */
static const struct area *
area_find(bool input, uint32_t addr, uint32_t n)
{
	size_t		 i;

	for (i = 0; i < NAREAS; i++) {
		if (areas[i].input != input)
			continue;
		if (addr >= areas[i].start &&
		    addr + n <= areas[i].start + areas[i].n)
			return (&areas[i]);
	}
	return (NULL);
}

/* 0, or the exception code of a write of [addr, addr + n). */
static int
check_write(uint16_t addr, uint16_t n, enum up_mb_area *out)
{
	const struct area *a;

	if ((a = area_find(false, addr, n)) == NULL)
		return (UP_MB_EX_ADDRESS);
	switch (a->area) {
	case UP_MB_A_FRAME:
	case UP_MB_A_FRAME_ODD:
		/* A frame is written whole, from the window's start. */
		if (addr != a->start)
			return (UP_MB_EX_ADDRESS);
		break;
	case UP_MB_A_BMBASE:
		/* A u32 is written whole. */
		if (addr != a->start || n != UP_MB_BMBASE_N)
			return (UP_MB_EX_ADDRESS);
		break;
	case UP_MB_A_CTRL:
		if (addr != a->start)
			return (UP_MB_EX_ADDRESS);
		break;
	case UP_MB_A_OB:
		/* Only the acknowledgement is writable. */
		if (addr != UP_MB_OB_ACK || n != 1)
			return (UP_MB_EX_ADDRESS);
		break;
	default:
		return (UP_MB_EX_ADDRESS);
	}
	if (out != NULL)
		*out = a->area;
	return (0);
}

int
up_mb_check(uint8_t fc, uint16_t addr, uint16_t n, uint16_t waddr,
    uint16_t wn, enum up_mb_area *out)
{
	const struct area *a;
	int		 ex;

	if (out != NULL)
		*out = UP_MB_A_NONE;
	switch (fc) {
	case FC_READ_HOLDING:
	case FC_READ_INPUT:
		if (n < 1 || n > UP_MB_READ_MAX)
			return (UP_MB_EX_VALUE);
		if ((a = area_find(fc == FC_READ_INPUT, addr, n)) == NULL)
			return (UP_MB_EX_ADDRESS);
		if (out != NULL)
			*out = a->area;
		return (0);
	case FC_WRITE_SINGLE:
		return (check_write(addr, 1, out));
	case FC_WRITE_MULTIPLE:
		if (n < 1 || n > UP_MB_FRAME_N)
			return (UP_MB_EX_VALUE);
		return (check_write(addr, n, out));
	case FC_WRITE_AND_READ:
		if (n < 1 || n > UP_MB_READ_MAX || wn < 1 || wn > WR_WRITE_MAX)
			return (UP_MB_EX_VALUE);
		if (area_find(false, addr, n) == NULL)
			return (UP_MB_EX_ADDRESS);
		if ((ex = check_write(waddr, wn, out)) != 0)
			return (ex);
		return (0);
	default:
		return (UP_MB_EX_FUNCTION);
	}
}

void
up_mb_put_bytes(uint16_t *regs, const uint8_t *b, size_t len)
{
	size_t		 i;

	for (i = 0; i + 1 < len; i += 2)
		regs[i / 2] = (uint16_t)(b[i] << 8 | b[i + 1]);
	if (len % 2 != 0)
		regs[len / 2] = (uint16_t)(b[len - 1] << 8);
}

void
up_mb_get_bytes(uint8_t *b, const uint16_t *regs, size_t len)
{
	size_t		 i;

	for (i = 0; i < len; i++)
		b[i] = (uint8_t)(i % 2 == 0 ? regs[i / 2] >> 8 :
		    regs[i / 2] & 0xff);
}

/* A string of at most 31 bytes into 16 registers, NUL padded. */
static void
put_str(uint16_t *regs, const char *s)
{
	uint8_t		 b[2 * UP_MB_STR_N];
	size_t		 len = strlen(s);

	memset(b, 0, sizeof(b));
	if (len > sizeof(b) - 1)
		len = sizeof(b) - 1;
	memcpy(b, s, len);
	up_mb_put_bytes(regs, b, sizeof(b));
}

/* 16 registers back into a string; UP_ELEN without a NUL. */
static int
get_str(const uint16_t *regs, char *s, size_t cap)
{
	uint8_t		 b[2 * UP_MB_STR_N];
	size_t		 len;

	up_mb_get_bytes(b, regs, sizeof(b));
	for (len = 0; len < sizeof(b) && b[len] != '\0'; len++)
		;
	if (len == sizeof(b) || len >= cap)
		return (UP_ELEN);
	memcpy(s, b, len);
	s[len] = '\0';
	return (UP_OK);
}

static void
put_u32(uint16_t *r, uint32_t v)
{
	r[0] = (uint16_t)(v >> 16);
	r[1] = (uint16_t)v;
}

static uint32_t
get_u32(const uint16_t *r)
{
	return ((uint32_t)r[0] << 16 | r[1]);
}

void
up_mb_ident_encode(const struct up_mb_ident *id, uint16_t *regs)
{
	unsigned int	 i, n;

	memset(regs, 0, UP_MB_ID_N * sizeof(*regs));
	regs[UP_MB_ID_MAGIC] = UP_MB_MAGIC;
	regs[UP_MB_ID_MAPVER] = UP_MB_MAPVER;
	put_u32(regs + UP_MB_ID_NODE, (uint32_t)(id->node_id >> 32));
	put_u32(regs + UP_MB_ID_NODE + 2, (uint32_t)id->node_id);
	regs[UP_MB_ID_RX_MAX] = id->rx_max;
	regs[UP_MB_ID_TX_MAX] = id->tx_max;
	regs[UP_MB_ID_FLAGS] = id->flags;
	n = id->ncomp > UP_MAX_COMPONENTS ? UP_MAX_COMPONENTS : id->ncomp;
	regs[UP_MB_ID_NCOMP] = (uint16_t)n;
	put_str(regs + UP_MB_ID_HW, id->hw);
	for (i = 0; i < n; i++) {
		put_str(regs + UP_MB_ID_COMP + i * UP_MB_ID_COMP_N,
		    id->comp[i].name);
		put_str(regs + UP_MB_ID_COMP + i * UP_MB_ID_COMP_N +
		    UP_MB_STR_N, id->comp[i].version);
	}
}

int
up_mb_ident_decode(const uint16_t *regs, size_t n, struct up_mb_ident *id)
{
	unsigned int	 i;
	size_t		 end;
	int		 e;

	memset(id, 0, sizeof(*id));
	if (n < UP_MB_ID_HDR_N)
		return (UP_ESHORT);
	if (regs[UP_MB_ID_MAGIC] != UP_MB_MAGIC ||
	    regs[UP_MB_ID_MAPVER] != UP_MB_MAPVER ||
	    regs[UP_MB_ID_NCOMP] > UP_MAX_COMPONENTS)
		return (UP_ERANGE);
	id->mapver = regs[UP_MB_ID_MAPVER];
	id->node_id = (uint64_t)get_u32(regs + UP_MB_ID_NODE) << 32 |
	    get_u32(regs + UP_MB_ID_NODE + 2);
	if (id->node_id == 0)
		return (UP_ERANGE);
	id->rx_max = regs[UP_MB_ID_RX_MAX];
	id->tx_max = regs[UP_MB_ID_TX_MAX];
	id->flags = regs[UP_MB_ID_FLAGS];
	if (n >= UP_MB_ID_HW + UP_MB_STR_N &&
	    (e = get_str(regs + UP_MB_ID_HW, id->hw, sizeof(id->hw))) != UP_OK)
		return (e);
	for (i = 0; i < regs[UP_MB_ID_NCOMP]; i++) {
		end = UP_MB_ID_COMP + (i + 1) * UP_MB_ID_COMP_N;
		if (n < end)
			break;
		if ((e = get_str(regs + end - UP_MB_ID_COMP_N,
		    id->comp[i].name, sizeof(id->comp[i].name))) != UP_OK ||
		    (e = get_str(regs + end - UP_MB_STR_N,
		    id->comp[i].version, sizeof(id->comp[i].version))) !=
		    UP_OK)
			return (e);
		if (id->comp[i].name[0] == '\0')
			return (UP_ERANGE);
		id->ncomp = (uint8_t)(i + 1);
	}
	return (UP_OK);
}

void
up_mb_status_encode(const struct up_mb_status *st, uint16_t *r)
{
	memset(r, 0, UP_MB_ST_N * sizeof(*r));
	r[0] = st->state;
	r[1] = st->result;
	put_u32(r + 2, st->session);
	put_u32(r + 4, st->nblocks);
	put_u32(r + 6, st->held);
	put_u32(r + 8, st->first_missing);
	r[10] = st->block_size;
	r[11] = st->outbox;
	put_u32(r + 12, st->rx_frames);
	put_u32(r + 14, st->rx_errors);
}

int
up_mb_status_decode(const uint16_t *r, size_t n, struct up_mb_status *st)
{
	memset(st, 0, sizeof(*st));
	if (n < UP_MB_ST_N)
		return (UP_ESHORT);
	if (r[0] > UP_NS_FAILED || r[1] > 0xff)
		return (UP_ERANGE);
	st->state = (uint8_t)r[0];
	st->result = (uint8_t)r[1];
	st->session = get_u32(r + 2);
	st->nblocks = get_u32(r + 4);
	st->held = get_u32(r + 6);
	st->first_missing = get_u32(r + 8);
	st->block_size = r[10];
	st->outbox = r[11];
	st->rx_frames = get_u32(r + 12);
	st->rx_errors = get_u32(r + 14);
	if (st->held > st->nblocks || st->first_missing > st->nblocks)
		return (UP_ERANGE);
	return (UP_OK);
}

uint16_t
up_mb_frame_regs(const uint8_t *frame, size_t len, uint16_t *regs)
{
	if (len == 0 || len > UP_MB_FRAME_MAX)
		return (0);
	up_mb_put_bytes(regs, frame, len);
	return (len % 2 == 0 ? UP_MB_FRAME : UP_MB_FRAME_ODD);
}

int
up_mb_frame_take(uint16_t addr, const uint16_t *regs, size_t n,
    uint8_t *buf, size_t cap)
{
	size_t		 len;

	if (addr != UP_MB_FRAME && addr != UP_MB_FRAME_ODD)
		return (UP_ERANGE);
	if (n > UP_MB_FRAME_N)
		return (UP_ERANGE);
	if (n == 0)
		return (UP_ELEN);
	len = 2 * n;
	if (addr == UP_MB_FRAME_ODD) {
		/* The pad byte is 0: anything else is not our writer. */
		if ((regs[n - 1] & 0xff) != 0)
			return (UP_ELEN);
		len--;
	}
	if (len > cap)
		return (UP_ENOSPC);
	up_mb_get_bytes(buf, regs, len);
	return ((int)len);
}

int
up_mb_ob_decode(const uint16_t *regs, uint16_t *seq, uint16_t *len)
{
	*seq = regs[0];
	*len = regs[1];
	if (*len > UP_MB_OB_MAX)
		return (UP_ELEN);
	if (*len != 0 && *seq == 0)
		return (UP_ERANGE);
	return (UP_OK);
}

uint16_t
up_mb_crc16(const uint8_t *b, size_t len)
{
	uint16_t	 crc = 0xffff;
	size_t		 i;
	int		 k;

	/* Bitwise: an RTU ADU is at most 256 bytes. */
	for (i = 0; i < len; i++) {
		crc ^= b[i];
		for (k = 0; k < 8; k++)
			crc = (crc & 1) ? (uint16_t)(crc >> 1 ^ 0xa001) :
			    (uint16_t)(crc >> 1);
	}
	return (crc);
}
