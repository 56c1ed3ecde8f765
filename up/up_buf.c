/*
 * up_buf.c: bounds-checked little-endian cursors.
 *
 * Every decoder of the project reads through a struct up_rd: each read
 * checks the bytes left before it touches memory, and the first failure
 * sticks, so a decoder can read a whole group of fields and check
 * up_rd_err() once.  After an error every read returns zero and copies
 * nothing.  Writers are the mirror image and never write past `cap'.
 * Integers are assembled byte by byte, so alignment and host byte order
 * never matter (docs/up-protocol.md §2).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

void
up_rd_init(struct up_rd *rd, const void *p, size_t len)
{
	rd->p = p;
	rd->len = p != NULL ? len : 0;
	rd->off = 0;
	rd->err = UP_OK;
}

/*
 * Returns the next n bytes and skips them, or NULL (and the sticky
 * UP_ESHORT) when fewer remain.
 */
static const uint8_t *
up_rd_take(struct up_rd *rd, size_t n)
{
	const uint8_t	*p;

	if (rd->err != UP_OK)
		return (NULL);
	if (rd->p == NULL || n > rd->len - rd->off) {
		rd->err = UP_ESHORT;
		return (NULL);
	}
	p = rd->p + rd->off;
	rd->off += n;
	return (p);
}

uint8_t
up_rd_u8(struct up_rd *rd)
{
	const uint8_t	*p;

	if ((p = up_rd_take(rd, 1)) == NULL)
		return (0);
	return (p[0]);
}

uint16_t
up_rd_u16(struct up_rd *rd)
{
	const uint8_t	*p;

	if ((p = up_rd_take(rd, 2)) == NULL)
		return (0);
	/* unsigned, not int: p[1] << 8 overflows a 16-bit MCU's int. */
	return ((uint16_t)((unsigned int)p[0] | (unsigned int)p[1] << 8));
}

uint32_t
up_rd_u32(struct up_rd *rd)
{
	const uint8_t	*p;

	if ((p = up_rd_take(rd, 4)) == NULL)
		return (0);
	return ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
	    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

uint64_t
up_rd_u64(struct up_rd *rd)
{
	const uint8_t	*p;
	uint64_t	 v = 0;
	int		 i;

	if ((p = up_rd_take(rd, 8)) == NULL)
		return (0);
	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return (v);
}

void
up_rd_bytes(struct up_rd *rd, void *dst, size_t n)
{
	const uint8_t	*p;

	if (n == 0)
		return;
	if ((p = up_rd_take(rd, n)) == NULL) {
		/* Leave no stale bytes behind for a careless caller. */
		memset(dst, 0, n);
		return;
	}
	memcpy(dst, p, n);
}

const uint8_t *
up_rd_ptr(struct up_rd *rd, size_t n)
{
	return (up_rd_take(rd, n));
}

void
up_rd_str(struct up_rd *rd, char *dst, size_t max)
{
	const uint8_t	*p;
	size_t		 n;

	dst[0] = '\0';
	n = up_rd_u8(rd);
	if (rd->err != UP_OK)
		return;
	/* §2.3 of docs/up-protocol.md: longer than the maximum is ELEN. */
	if (n > max) {
		rd->err = UP_ELEN;
		return;
	}
	if ((p = up_rd_take(rd, n)) == NULL)
		return;
	/* A NUL inside would make C see a different string than was sent. */
	if (n > 0 && memchr(p, '\0', n) != NULL) {
		rd->err = UP_ERANGE;
		return;
	}
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
}

size_t
up_rd_left(const struct up_rd *rd)
{
	if (rd->err != UP_OK)
		return (0);
	return (rd->len - rd->off);
}

int
up_rd_err(const struct up_rd *rd)
{
	return (rd->err);
}

void
up_wr_init(struct up_wr *wr, void *p, size_t cap)
{
	wr->p = p;
	wr->cap = p != NULL ? cap : 0;
	wr->off = 0;
	wr->err = UP_OK;
}

/* Reserves n bytes, or NULL (and the sticky UP_ENOSPC). */
static uint8_t *
up_wr_take(struct up_wr *wr, size_t n)
{
	uint8_t		*p;

	if (wr->err != UP_OK)
		return (NULL);
	if (wr->p == NULL || n > wr->cap - wr->off) {
		wr->err = UP_ENOSPC;
		return (NULL);
	}
	p = wr->p + wr->off;
	wr->off += n;
	return (p);
}

void
up_wr_u8(struct up_wr *wr, uint8_t v)
{
	uint8_t		*p;

	if ((p = up_wr_take(wr, 1)) != NULL)
		p[0] = v;
}

void
up_wr_u16(struct up_wr *wr, uint16_t v)
{
	uint8_t		*p;

	if ((p = up_wr_take(wr, 2)) != NULL) {
		p[0] = (uint8_t)v;
		p[1] = (uint8_t)(v >> 8);
	}
}

void
up_wr_u32(struct up_wr *wr, uint32_t v)
{
	uint8_t		*p;

	if ((p = up_wr_take(wr, 4)) != NULL) {
		p[0] = (uint8_t)v;
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)(v >> 16);
		p[3] = (uint8_t)(v >> 24);
	}
}

void
up_wr_u64(struct up_wr *wr, uint64_t v)
{
	uint8_t		*p;
	int		 i;

	if ((p = up_wr_take(wr, 8)) != NULL)
		for (i = 0; i < 8; i++)
			p[i] = (uint8_t)(v >> (8 * i));
}

void
up_wr_bytes(struct up_wr *wr, const void *src, size_t n)
{
	uint8_t		*p;

	if (n == 0)
		return;
	if ((p = up_wr_take(wr, n)) != NULL)
		memcpy(p, src, n);
}

void
up_wr_str(struct up_wr *wr, const char *s)
{
	size_t		 n;

	if (wr->err != UP_OK)
		return;
	n = strlen(s);
	/* The length prefix is one byte (docs/up-protocol.md §2.3). */
	if (n > UINT8_MAX) {
		wr->err = UP_ELEN;
		return;
	}
	up_wr_u8(wr, (uint8_t)n);
	up_wr_bytes(wr, s, n);
}

int
up_wr_err(const struct up_wr *wr)
{
	return (wr->err);
}
