/*
 * tp_registry.c: the compiled-in transport plugins.
 *
 * Plugins are linked in, not loaded: the table below is the whole list
 * (Redis's connection types, nginx's static modules).  Each one is still
 * checked once before it is listed, as Mosquitto checks a plugin's
 * version: a plugin built against another TP_ABI_VERSION, or one missing a
 * mandatory op, is left out with a warning instead of being called.
 */
#include <string.h>

#include "up.h"
#include "transports_internal.h"

/* Every plugin of this build. */
static const struct tp_ops *const tp_plugins[] = {
	&tp_lan_ops,
	&tp_lora_ops,
	&tp_plc_ops,
	&tp_ble_ops,
#ifdef UB_HAVE_MODBUS
	&tp_modbus_rtu_ops,
	&tp_modbus_tcp_ops,
#endif
	NULL
};
#define TP_NPLUGINS	(sizeof(tp_plugins) / sizeof(tp_plugins[0]))

/* The usable plugins, filled once by tp_list(). */
static const struct tp_ops	*tp_active[TP_NPLUGINS];
static int			 tp_active_done;

int
tp__plugin_ok(const struct tp_ops *ops, const char **why)
{
	const struct tp_option	*o, *p;
	long long		 n;

	*why = NULL;
	if (ops == NULL)
		*why = "no ops";
	else if (ops->abi != TP_ABI_VERSION)
		*why = "built for another TP_ABI_VERSION";
	else if (ops->name == NULL || *ops->name == '\0')
		*why = "no name";
	else if (ops->open == NULL || ops->start == NULL ||
	    ops->close == NULL || ops->caps == NULL || ops->send == NULL ||
	    ops->addr_fmt == NULL || ops->addr_parse == NULL)
		*why = "a mandatory op is missing";
	if (*why != NULL)
		return (0);

	/*
	 * The option table is the config parser's only knowledge of the
	 * plugin: a bad default would otherwise surface as a confusing
	 * error in every user's config.
	 */
	for (o = ops->options; o != NULL && o->name != NULL; o++) {
		if (strcmp(o->name, "type") == 0) {
			*why = "option \"type\" is reserved";
			return (0);
		}
		for (p = ops->options; p < o; p++) {
			if (strcmp(p->name, o->name) == 0) {
				*why = "an option is declared twice";
				return (0);
			}
		}
		if (o->def == NULL)
			continue;
		if (o->type == TP_OPT_INT && (tp__parse_int(o->def, &n) != 0 ||
		    n < o->min || n > o->max))
			*why = "an integer option's default is out of range";
		else if (o->type == TP_OPT_BOOL &&
		    tp__parse_bool(o->def) == -1)
			*why = "a bool option's default is not a bool";
		else if (o->check != NULL && o->check(o->def) != NULL)
			*why = "an option's default fails its own check";
		if (*why != NULL)
			return (0);
	}
	return (1);
}

size_t
tp__registry_filter(const struct tp_ops *const *all,
    const struct tp_ops **out, size_t outlen)
{
	const char	*why;
	size_t		 i, j, n = 0;
	int		 dup;

	if (outlen == 0)
		return (0);
	for (i = 0; all[i] != NULL; i++) {
		if (!tp__plugin_ok(all[i], &why)) {
			up_logf(UP_LOG_WARN, "transport plugin \"%s\" left "
			    "out: %s", all[i]->name != NULL ? all[i]->name :
			    "?", why);
			continue;
		}
		for (dup = 0, j = 0; j < n; j++)
			dup |= strcmp(out[j]->name, all[i]->name) == 0;
		if (dup) {
			up_logf(UP_LOG_WARN, "transport plugin \"%s\" left "
			    "out: name used twice", all[i]->name);
			continue;
		}
		if (n + 1 >= outlen)
			break;
		out[n++] = all[i];
	}
	out[n] = NULL;
	return (n);
}

const struct tp_ops *const *
tp_list(void)
{
	if (!tp_active_done) {
		tp__registry_filter(tp_plugins, tp_active, TP_NPLUGINS);
		tp_active_done = 1;
	}
	return (tp_active);
}

const struct tp_ops *
tp_find(const char *name)
{
	const struct tp_ops *const	*p;

	if (name == NULL)
		return (NULL);
	for (p = tp_list(); *p != NULL; p++) {
		if (strcmp((*p)->name, name) == 0)
			return (*p);
	}
	return (NULL);
}
