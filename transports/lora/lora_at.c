/*
 * lora_at.c: the text side of an AT modem on a UART: lines in a bounded
 * buffer, hex payloads, strict integers.
 *
 * A modem's UART is not a clean channel: a modem that resets mid-line
 * leaves half a line, a host at the wrong bit rate reads noise, a modem
 * may print a banner of any length.  So the assembler never grows: a
 * line longer than LORA_LINE_MAX is dropped whole and counted, a line
 * with bytes that are not printable ASCII is handed on as garbled (the
 * dialect never sees it as a command answer), and nothing read is
 * trusted before its length and every digit were checked.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lora_internal.h"

void
lora_lines_reset(struct lora_lines *l)
{
	l->len = 0;
	l->overlong = false;
	l->garbled = false;
}

enum lora_line_st
lora_lines_feed(struct lora_lines *l, const uint8_t *b, size_t n,
    size_t *off, const char **line)
{
	uint8_t		 c;
	bool		 garbled;

	*line = NULL;
	while (*off < n) {
		c = b[(*off)++];
		if (c == '\r' || c == '\n') {
			if (l->overlong) {
				l->overlong = false;
				l->garbled = false;
				l->len = 0;
				l->n_overlong++;
				return (LORA_LINE_OVERLONG);
			}
			if (l->len == 0) {
				l->garbled = false;
				continue;	/* CR LF, blank lines */
			}
			l->buf[l->len] = '\0';
			*line = l->buf;
			garbled = l->garbled;
			l->len = 0;
			l->garbled = false;
			if (garbled) {
				l->n_garbled++;
				return (LORA_LINE_GARBLED);
			}
			return (LORA_LINE_OK);
		}
		if (l->overlong)
			continue;
		if (l->len >= LORA_LINE_MAX) {
			l->overlong = true;
			continue;
		}
		if (c < 0x20 || c > 0x7e) {
			/* Keep the line's place, but never its bytes. */
			l->garbled = true;
			c = '?';
		}
		l->buf[l->len++] = (char)c;
	}
	return (LORA_LINE_NONE);
}

int
lora_hex_encode(const uint8_t *b, size_t len, char *out, size_t cap)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t		 i;

	if (len > (cap - 1) / 2 || cap == 0)
		return (-1);
	for (i = 0; i < len; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0x0f];
	}
	out[2 * len] = '\0';
	return ((int)(2 * len));
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

int
lora_hex_decode(const char *s, size_t n, uint8_t *out, size_t cap,
    const char **why)
{
	size_t		 i;
	int		 hi, lo;

	*why = NULL;
	if (n % 2 != 0) {
		*why = "hex payload of odd length";
		return (-1);
	}
	if (n / 2 > cap) {
		*why = "payload longer than the largest frame";
		return (-1);
	}
	for (i = 0; i < n; i += 2) {
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0) {
			*why = "payload is not hex";
			return (-1);
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return ((int)(n / 2));
}

int
lora_parse_int(const char *s, size_t n, long min, long max, long *v)
{
	size_t		 i = 0, digits;
	long		 x = 0;
	int		 neg = 0;

	if (n > 0 && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	digits = n - i;
	if (digits == 0 || digits > 10)
		return (-1);
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		x = x * 10 + (s[i] - '0');
	}
	if (neg)
		x = -x;
	if (x < min || x > max)
		return (-1);
	*v = x;
	return (0);
}

/* ------------------------------------------------------------------ */
/* The dialects compiled in                                             */

static const struct lora_dialect *const dialects[] = {
	&lora_dialect_rui3,
	NULL
};

const struct lora_dialect *
lora_dialect_find(const char *name)
{
	size_t		 i;

	for (i = 0; dialects[i] != NULL; i++)
		if (strcmp(dialects[i]->name, name) == 0)
			return (dialects[i]);
	return (NULL);
}

const char *
lora_err_str(enum lora_err e)
{
	switch (e) {
	case LORA_ERR_GENERIC:
		return ("error");
	case LORA_ERR_PARAM:
		return ("bad parameter");
	case LORA_ERR_BUSY:
		return ("busy");
	case LORA_ERR_DUTY:
		return ("duty cycle restricted");
	case LORA_ERR_OVERFLOW:
		return ("parameter too long");
	case LORA_ERR_UNKNOWN:
		return ("unknown command");
	case LORA_ERR_MODE:
		return ("not in this mode");
	}
	return ("?");
}
