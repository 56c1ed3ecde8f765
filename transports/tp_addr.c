/*
 * tp_addr.c: the link address value type shared by every plugin.
 *
 * The bytes of a struct tp_addr belong to its plugin; what is generic is
 * equality (the engine keys nodes by it) and the one broadcast value.
 */
#include <string.h>

#include "transport.h"

int
tp_addr_eq(const struct tp_addr *a, const struct tp_addr *b)
{
	int	 abcast, bbcast;

	abcast = (a->flags & TP_ADDR_F_BROADCAST) != 0;
	bbcast = (b->flags & TP_ADDR_F_BROADCAST) != 0;
	/* Every broadcast value names the same thing: the whole domain. */
	if (abcast || bbcast)
		return (abcast && bbcast);
	if (a->len != b->len || a->flags != b->flags || a->len > TP_ADDR_MAX)
		return (0);
	/* Only the used bytes: the tail may hold anything. */
	return (memcmp(a->b, b->b, a->len) == 0);
}

void
tp_addr_broadcast(struct tp_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->flags = TP_ADDR_F_BROADCAST;
}
