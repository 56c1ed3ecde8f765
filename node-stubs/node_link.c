/*
 * node_link.c: the table of node links and their options (docs/upnode.md,
 * "Links").
 *
 * Adding a transport on the node side is one new file defining a const
 * struct node_link_ops (upnode.h states the rules), one entry in the
 * table below and its line in CMakeLists.txt; upnode.c does not change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "upnode.h"

static const struct node_link_ops *const links[] = {
	&node_link_lan,		/* the default: first */
	&node_link_lora,
	&node_link_plc,
	&node_link_ble,
#ifdef UB_HAVE_MODBUS
	&node_link_modbus_rtu,
	&node_link_modbus_tcp,
#endif
	NULL
};

const struct node_link_ops *
node_link_find(const char *name)
{
	size_t		 i;

	for (i = 0; links[i] != NULL; i++)
		if (strcmp(links[i]->name, name) == 0)
			return (links[i]);
	return (NULL);
}

const struct node_link_ops *const *
node_link_list(void)
{
	return (links);
}

static const struct node_link_opt *
opt_find(const struct node_link_ops *ops, const char *key)
{
	const struct node_link_opt *o;

	for (o = ops->options; o != NULL && o->name != NULL; o++)
		if (strcmp(o->name, key) == 0)
			return (o);
	return (NULL);
}

const char *
node_link_opt_check(const struct node_link_ops *ops, const char *key,
    const char *value)
{
	const struct node_link_opt *o;

	if ((o = opt_find(ops, key)) == NULL)
		return ("not an option of this link");
	if (o->check != NULL)
		return (o->check(value));
	return (NULL);
}

const char *
node_conf_link_opt(const struct node_conf *conf, const char *key)
{
	const struct node_link_opt *o;
	unsigned int	 i;

	/* The last one given wins, as with any repeated option. */
	for (i = conf->nlinkopt; i > 0; i--)
		if (strcmp(conf->linkopt[i - 1].key, key) == 0)
			return (conf->linkopt[i - 1].value);
	if ((o = opt_find(conf->link, key)) != NULL)
		return (o->def);
	return (NULL);
}

char *
node_cause(const char *fmt, ...)
{
	va_list		 ap;
	char		*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	return (s);
}
