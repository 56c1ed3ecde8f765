/*
 * ctl_node.c: the control commands about nodes: nodes (one record per
 * node of the registry) and node ID (one record, with the node's rows of
 * active campaigns under "progress").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upbridged.h"

static enum ctl_ret	 ctl_nodes_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_node_exec(struct ctl_req *, char **);

const struct ctl_cmd ctl_node_cmds[] = {
	{ .name = "nodes", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_nodes_exec },
	{ .name = "node", .usage = "ID", .args_min = 1, .args_max = 1,
	  .exec = ctl_node_exec },
	{ .name = NULL }
};

static void
ctl_nodes_one(void *arg, const struct registry_node *n)
{
	struct ctl_req	*req = arg;

	control__reply(req, registry_node_json(n));
}

static enum ctl_ret
ctl_nodes_exec(struct ctl_req *req, char **cause)
{
	registry_foreach(req->ub->registry, ctl_nodes_one, req);
	return (CTL_DONE);
}

/* A node id: decimal or 0x-hex, non-zero, the whole string. */
static int
ctl_parse_node_id(const char *s, uint64_t *id)
{
	char			*end;
	unsigned long long	 v;

	if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v == 0)
		return (-1);
	*id = v;
	return (0);
}

/* Does a progress row's "node" (number or text) name this node? */
static int
ctl_row_is_node(json_t *row, uint64_t id)
{
	json_t		*n = json_object_get(row, "node");
	uint64_t	 v;

	if (json_is_integer(n))
		return ((uint64_t)json_integer_value(n) == id);
	if (json_is_string(n) &&
	    ctl_parse_node_id(json_string_value(n), &v) == 0)
		return (v == id);
	return (0);
}

static enum ctl_ret
ctl_node_exec(struct ctl_req *req, char **cause)
{
	const struct registry_node	*n;
	json_t				*o, *all, *mine, *row;
	uint64_t			 id;
	size_t				 i;

	if (ctl_parse_node_id(req->argv[0], &id) != 0) {
		xasprintf(cause, "bad node id \"%s\" (decimal or 0x-hex, "
		    "not 0)", req->argv[0]);
		return (CTL_ERROR);
	}
	if ((n = registry_get(req->ub->registry, id)) == NULL) {
		xasprintf(cause, "unknown node 0x%016" PRIx64, id);
		return (CTL_ERROR);
	}
	o = registry_node_json(n);
	if (json_is_object(o)) {
		mine = json_array();
		all = fanout_progress_json(req->ub->fanout);
		json_array_foreach(all, i, row)
			if (ctl_row_is_node(row, id))
				json_array_append(mine, row);
		json_decref(all);
		json_object_set_new(o, "progress", mine);
	}
	control__reply(req, o);
	return (CTL_DONE);
}
