/*
 * up_log.c: the log hook of the lower folders.
 *
 * cache/, uplink/, transports/ and scheduler/ may not include bridge/'s
 * log API (ARCHITECTURE.md, folder rules), so they log through this hook,
 * which bridge/ points at log_info() and friends and node stubs at
 * stderr.  This pointer is the only mutable global of up/: set it once at
 * start-up, before any thread or event loop runs.
 */
#include <stdarg.h>
#include <stddef.h>

#include "up.h"

static up_log_fn	*up_log_hook;

void
up_log_set_hook(up_log_fn *fn)
{
	up_log_hook = fn;
}

void
up_logf(int level, const char *fmt, ...)
{
	va_list	 ap;

	if (up_log_hook == NULL)
		return;
	va_start(ap, fmt);
	up_log_hook(level, fmt, ap);
	va_end(ap);
}
