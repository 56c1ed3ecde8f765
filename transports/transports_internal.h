/*
 * transports_internal.h: what stays inside transports/.
 *
 * The plugins' ops structs (the registry's table lists them) and small
 * helpers shared by the generic files and the plugins.  Nothing outside
 * transports/ (and its unit tests) includes this header.
 */
#ifndef TRANSPORTS_INTERNAL_H
#define TRANSPORTS_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "transport.h"

/* The compiled-in plugins (one file or folder each). */
extern const struct tp_ops	tp_lan_ops;
extern const struct tp_ops	tp_lora_ops;
extern const struct tp_ops	tp_ble_ops;
extern const struct tp_ops	tp_modbus_rtu_ops;	/* modbus/ */
extern const struct tp_ops	tp_modbus_tcp_ops;
extern const struct tp_ops	tp_plc_ops;

/* tp_registry.c */
/*
 * Copies into out[] (room for `outlen' pointers, the last one NULL) every
 * plugin of the NULL-terminated `all' that may be used: right ABI, a name,
 * the mandatory ops, a well-formed option table.  Logs each one it leaves
 * out.  Returns how many it kept.  tp_list() is this over the compiled-in
 * table; the unit tests call it with broken plugins.
 */
size_t		 tp__registry_filter(const struct tp_ops *const *all,
		    const struct tp_ops **out, size_t outlen);
/* 1 when a plugin may be listed (see tp__registry_filter), else 0. */
int		 tp__plugin_ok(const struct tp_ops *, const char **why);

/* tp_conf.c */
/*
 * Sets *cause (if cause is not NULL) to a malloc'd string from fmt, or to
 * NULL when memory is short.  Always returns -1, so error paths can
 * `return (tp__cause(cause, ...));'.
 */
int		 tp__cause(char **cause, const char *fmt, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
/*
 * Parses a decimal integer: an optional '-' and digits, nothing else.
 * Returns 0, -1 when it is not such a number, -2 when it overflows.
 */
int		 tp__parse_int(const char *, long long *);
/* Parses yes/no, true/false, on/off, 1/0 (any case).  Returns 1, 0, -1. */
int		 tp__parse_bool(const char *);

#endif /* TRANSPORTS_INTERNAL_H */
