/*
 * tp_conf.c: a transport instance's config section checked against its
 * plugin's option table, and typed reads of the checked values.
 *
 * The config parser in bridge/ hands each [transport.NAME] section over as
 * key/value text; tp_conf_check() rejects the whole section on the first
 * problem, with a cause a person can act on (which instance, which key,
 * which value, what is allowed), so open() may then trust every value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transports_internal.h"

/* The key that names the plugin; every section has it. */
#define TP_CONF_TYPE	"type"

static const struct tp_option	*tp_conf_option(const struct tp_conf *,
				    const char *);
static const struct tp_kv	*tp_conf_kv(const struct tp_conf *,
				    const char *);
static int			 tp_conf_check_value(const struct tp_conf *,
				    const struct tp_option *, const char *,
				    char **);
static const char		*tp_conf_unit(const struct tp_option *);

int
tp__cause(char **cause, const char *fmt, ...)
{
	va_list	 ap;

	if (cause == NULL)
		return (-1);
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
	return (-1);
}

int
tp__parse_int(const char *s, long long *out)
{
	const char	*p;
	char		*end;
	long long	 v;

	/*
	 * strtoll alone would take leading blanks, a '+', an empty
	 * string and trailing junk; a config value is the digits and
	 * nothing else.
	 */
	if (s == NULL)
		return (-1);
	p = (*s == '-') ? s + 1 : s;
	if (*p < '0' || *p > '9')
		return (-1);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return (-1);
	if (errno == ERANGE)
		return (-2);
	if (errno != 0)
		return (-1);
	*out = v;
	return (0);
}

int
tp__parse_bool(const char *s)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t			 i;

	if (s == NULL)
		return (-1);
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return (1);
		if (strcasecmp(s, no[i]) == 0)
			return (0);
	}
	return (-1);
}

static const struct tp_option *
tp_conf_option(const struct tp_conf *conf, const char *key)
{
	const struct tp_option	*o;

	if (conf->options == NULL || key == NULL)
		return (NULL);
	for (o = conf->options; o->name != NULL; o++) {
		if (strcmp(o->name, key) == 0)
			return (o);
	}
	return (NULL);
}

static const struct tp_kv *
tp_conf_kv(const struct tp_conf *conf, const char *key)
{
	size_t	 i;

	if (conf->kv == NULL || key == NULL)
		return (NULL);
	for (i = 0; i < conf->nkv; i++) {
		if (conf->kv[i].key != NULL &&
		    strcmp(conf->kv[i].key, key) == 0)
			return (&conf->kv[i]);
	}
	return (NULL);
}

static const char *
tp_conf_unit(const struct tp_option *o)
{
	return (o->unit != NULL ? o->unit : "");
}

static int
tp_conf_check_value(const struct tp_conf *conf, const struct tp_option *o,
    const char *v, char **cause)
{
	const char	*name = conf->name != NULL ? conf->name : "?";
	const char	*why;
	long long	 n;
	int		 rc;

	switch (o->type) {
	case TP_OPT_INT:
		if ((rc = tp__parse_int(v, &n)) == -1)
			return (tp__cause(cause, "transport.%s: %s = \"%s\": "
			    "not an integer, allowed %lld..%lld%s%s", name,
			    o->name, v, o->min, o->max, o->unit ? " " : "",
			    tp_conf_unit(o)));
		if (rc != 0 || n < o->min || n > o->max)
			return (tp__cause(cause, "transport.%s: %s = \"%s\": "
			    "out of range, allowed %lld..%lld%s%s", name,
			    o->name, v, o->min, o->max, o->unit ? " " : "",
			    tp_conf_unit(o)));
		break;
	case TP_OPT_BOOL:
		if (tp__parse_bool(v) == -1)
			return (tp__cause(cause, "transport.%s: %s = \"%s\": "
			    "not a bool, allowed yes/no, true/false, on/off, "
			    "1/0", name, o->name, v));
		break;
	case TP_OPT_STRING:
		break;
	default:
		return (tp__cause(cause, "transport.%s: %s: option of "
		    "unknown type %d", name, o->name, (int)o->type));
	}
	if (o->check != NULL && (why = o->check(v)) != NULL)
		return (tp__cause(cause, "transport.%s: %s = \"%s\": %s",
		    name, o->name, v, why));
	return (0);
}

int
tp_conf_check(const struct tp_conf *conf, char **cause)
{
	const struct tp_option	*o;
	const struct tp_kv	*kv;
	const char		*name, *v;
	size_t			 i, j;

	if (cause != NULL)
		*cause = NULL;
	name = conf->name != NULL ? conf->name : "?";
	if (conf->nkv > 0 && conf->kv == NULL)
		return (tp__cause(cause, "transport.%s: no keys", name));

	for (i = 0; i < conf->nkv; i++) {
		kv = &conf->kv[i];
		if (kv->key == NULL || *kv->key == '\0')
			return (tp__cause(cause, "transport.%s: empty key",
			    name));
		v = kv->value != NULL ? kv->value : "";
		for (j = 0; j < i; j++) {
			if (conf->kv[j].key != NULL &&
			    strcmp(conf->kv[j].key, kv->key) == 0)
				return (tp__cause(cause, "transport.%s: "
				    "key \"%s\" given twice", name, kv->key));
		}
		if (strcmp(kv->key, TP_CONF_TYPE) == 0)
			continue;
		if ((o = tp_conf_option(conf, kv->key)) == NULL)
			return (tp__cause(cause, "transport.%s: unknown key "
			    "\"%s\" (= \"%s\")", name, kv->key, v));
		if (tp_conf_check_value(conf, o, v, cause) != 0)
			return (-1);
	}

	/* Required keys: an option without a default must be given. */
	for (o = conf->options; o != NULL && o->name != NULL; o++) {
		if (o->def == NULL && tp_conf_kv(conf, o->name) == NULL)
			return (tp__cause(cause, "transport.%s: missing "
			    "required key \"%s\"", name, o->name));
	}
	return (0);
}

const char *
tp_conf_str(const struct tp_conf *conf, const char *key)
{
	const struct tp_kv	*kv;
	const struct tp_option	*o;

	if ((kv = tp_conf_kv(conf, key)) != NULL)
		return (kv->value != NULL ? kv->value : "");
	if ((o = tp_conf_option(conf, key)) != NULL)
		return (o->def);
	return (NULL);
}

long long
tp_conf_int(const struct tp_conf *conf, const char *key)
{
	const struct tp_option	*o;
	long long		 n;

	if (tp__parse_int(tp_conf_str(conf, key), &n) == 0)
		return (n);
	/* Unchecked section: fall back to the table's default. */
	o = tp_conf_option(conf, key);
	if (o != NULL && tp__parse_int(o->def, &n) == 0)
		return (n);
	return (0);
}

int
tp_conf_bool(const struct tp_conf *conf, const char *key)
{
	const struct tp_option	*o;
	int			 b;

	if ((b = tp__parse_bool(tp_conf_str(conf, key))) != -1)
		return (b);
	o = tp_conf_option(conf, key);
	if (o != NULL && (b = tp__parse_bool(o->def)) != -1)
		return (b);
	return (0);
}
