/*
 * fuzz_tp_conf.c: a [transport.*] section and lan addresses from bytes.
 *
 * The input is lines; "key=value" lines make a section checked against
 * the lan plugin's option table, and every line is also parsed as a lan
 * address.  Invariants (abort if broken): a section tp_conf_check()
 * accepts reads back every option without surprise (ints in range, bools
 * 0/1), and an address that parses formats and parses back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

#define FUZZ_MAX_LINES	32
#define FUZZ_MAX_IN	4096

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_addr(const struct tp_ops *ops, const char *s)
{
	struct tp_addr	 a, b;
	char		 text[TP_ADDR_TEXT_MAX], *cause = NULL;

	if (ops->addr_parse(s, &a, &cause) != 0) {
		if (cause == NULL)
			abort();
		free(cause);
		return;
	}
	if (ops->addr_fmt(&a, text, sizeof(text)) != 0 ||
	    ops->addr_parse(text, &b, NULL) != 0 || !tp_addr_eq(&a, &b))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char		 buf[FUZZ_MAX_IN + 1];
	struct tp_kv		 kv[FUZZ_MAX_LINES];
	struct tp_conf		 conf;
	const struct tp_ops	*ops;
	const struct tp_option	*o;
	char			*line, *next, *eq, *cause = NULL;
	long long		 n;
	size_t			 nkv = 0;
	int			 b;

	if ((ops = tp_find("lan")) == NULL)
		abort();
	if (size > FUZZ_MAX_IN)
		size = FUZZ_MAX_IN;
	memcpy(buf, data, size);
	buf[size] = '\0';

	for (line = buf; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		fuzz_addr(ops, line);
		if ((eq = strchr(line, '=')) != NULL && nkv < FUZZ_MAX_LINES) {
			*eq = '\0';
			kv[nkv].key = line;
			kv[nkv++].value = eq + 1;
		}
	}

	conf.name = "fuzz0";
	conf.options = ops->options;
	conf.kv = kv;
	conf.nkv = nkv;
	if (tp_conf_check(&conf, &cause) != 0) {
		if (cause == NULL)
			abort();
		free(cause);
		return (0);
	}
	if (cause != NULL)
		abort();
	for (o = ops->options; o->name != NULL; o++) {
		if (tp_conf_str(&conf, o->name) == NULL)
			abort();
		switch (o->type) {
		case TP_OPT_INT:
			n = tp_conf_int(&conf, o->name);
			if (n < o->min || n > o->max)
				abort();
			break;
		case TP_OPT_BOOL:
			b = tp_conf_bool(&conf, o->name);
			if (b != 0 && b != 1)
				abort();
			break;
		default:
			break;
		}
		if (o->check != NULL &&
		    o->check(tp_conf_str(&conf, o->name)) != NULL)
			abort();
	}
	return (0);
}
