/*
 * fuzz_control.c: the control socket's request checker (bridge/control.c,
 * control__parse) on arbitrary bytes, as one request line.
 *
 * The checker is the whole of what a peer's bytes reach before a command
 * runs, so it is fuzzed without a socket or an engine: no command is
 * executed.  Invariants (abort() on a violation):
 *  - a refused line has a reason and no command; its id is -1 or a
 *    valid id;
 *  - an accepted line has a known command, an id in 0..2^53-1 and an
 *    argument count within the command's bounds;
 *  - the canonical form of an accepted request ({"v","id","cmd","args"}
 *    as upctl writes it) is accepted again with the same meaning.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upbridged.h"
#include "ctl_proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_refused(const struct ctl_parsed *p, const char *why)
{
	if (why == NULL || *why == '\0' || p->cmd != NULL)
		abort();
	if (p->id < -1 || p->id > CTL_ID_MAX)
		abort();
}

static void
check_accepted(const struct ctl_parsed *p, const char *why)
{
	int	 i;

	if (why != NULL || p->cmd == NULL || p->cmd->name == NULL ||
	    p->cmd->exec == NULL)
		abort();
	if (p->id < 0 || p->id > CTL_ID_MAX)
		abort();
	if (p->argc < p->cmd->args_min || p->argc > p->cmd->args_max ||
	    p->argc > CTL_ARGS_MAX)
		abort();
	for (i = 0; i < p->argc; i++)
		if (p->argv[i] == NULL)
			abort();
}

/* The request as upctl would send it parses to the same thing. */
static void
check_canonical(const struct ctl_parsed *p)
{
	struct ctl_parsed	 q;
	json_t			*rq, *args;
	char			*s, *why;
	int			 i;

	args = json_array();
	for (i = 0; i < p->argc; i++)
		json_array_append_new(args, json_string(p->argv[i]));
	rq = json_pack("{s:i, s:I, s:s, s:o}", "v", CTL_PROTO_VERSION,
	    "id", (json_int_t)p->id, "cmd", p->cmd->name, "args", args);
	if (rq == NULL || (s = json_dumps(rq, JSON_COMPACT)) == NULL)
		abort();
	json_decref(rq);
	if (control__parse(s, strlen(s), &q, &why) != 0)
		abort();
	check_accepted(&q, why);
	if (q.cmd != p->cmd || q.id != p->id || q.argc != p->argc)
		abort();
	for (i = 0; i < p->argc; i++)
		if (strcmp(q.argv[i], p->argv[i]) != 0)
			abort();
	json_decref(q.rq);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_parsed	 p;
	char			*why;

	/* control_read() refuses longer lines before parsing them. */
	if (size > CTL_LINE_MAX)
		return (0);
	if (control__parse((const char *)data, size, &p, &why) != 0)
		check_refused(&p, why);
	else {
		check_accepted(&p, why);
		check_canonical(&p);
	}
	free(why);
	json_decref(p.rq);
	return (0);
}
