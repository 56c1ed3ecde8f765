/*
 * ctl_node.c: the control commands about nodes: nodes (one record per
 * node of the registry), node ID (one record, with the node's rows of
 * active campaigns under "progress"), and the facts a technician sets
 * on a node, which rollouts select (tags) and order by (topology):
 * node-tag ID add|del TAG and node-topology ID PARENT ROLE [LEVEL]
 * (upctl's "node ID tag ..." and "node ID topology ...").  Every node
 * record says which campaigns hold the node ("campaigns", "held_by"),
 * and node-reset ID (upctl "node ID reset") releases it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upbridged.h"

static enum ctl_ret	 ctl_nodes_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_node_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_node_tag_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_node_topology_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_node_reset_exec(struct ctl_req *, char **);

const struct ctl_cmd ctl_node_cmds[] = {
	{ .name = "nodes", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_nodes_exec },
	{ .name = "node", .usage = "ID", .args_min = 1, .args_max = 1,
	  .exec = ctl_node_exec },
	{ .name = "node-tag", .usage = "ID add|del TAG", .args_min = 3,
	  .args_max = 3, .flags = CTL_F_WRITE, .exec = ctl_node_tag_exec },
	{ .name = "node-topology", .usage = "ID PARENT leaf|relay|"
	  "coordinator|gateway [LEVEL]", .args_min = 3, .args_max = 4,
	  .flags = CTL_F_WRITE, .exec = ctl_node_topology_exec },
	{ .name = "node-reset", .usage = "ID", .args_min = 1, .args_max = 1,
	  .flags = CTL_F_WRITE, .exec = ctl_node_reset_exec },
	{ .name = NULL }
};

/*
 * A node's record with the campaigns that hold it (issue 7): "campaigns"
 * lists its unfinished memberships, "held_by" names the first (a
 * rollout's id, else the campaign's), null when none.
 */
static json_t *
ctl_node_record(struct ctl_req *req, const struct registry_node *n)
{
	json_t	*o, *a;

	if ((o = registry_node_json(n)) == NULL || !json_is_object(o))
		return (o);
	a = fanout_node_campaigns_json(req->ub->fanout, n->id);
	json_object_set(o, "held_by", json_array_size(a) > 0 ?
	    json_object_get(json_array_get(a, 0), "campaign") : json_null());
	json_object_set_new(o, "campaigns", a);
	return (o);
}

static void
ctl_nodes_one(void *arg, const struct registry_node *n)
{
	struct ctl_req	*req = arg;

	control__reply(req, ctl_node_record(req, n));
}

static enum ctl_ret
ctl_nodes_exec(struct ctl_req *req, char **cause)
{
	registry_foreach(req->ub->registry, ctl_nodes_one, req);
	return (CTL_DONE);
}

/* A node id: decimal or 0x-hex, the whole string; 0 only if zero_ok. */
static int
ctl_node_id(const char *s, uint64_t *id, int zero_ok)
{
	char			*end;
	unsigned long long	 v;

	if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || (v == 0 && !zero_ok))
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
	    ctl_node_id(json_string_value(n), &v, 0) == 0)
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

	if (ctl_node_id(req->argv[0], &id, 0) != 0) {
		xasprintf(cause, "bad node id \"%s\" (decimal or 0x-hex, "
		    "not 0)", req->argv[0]);
		return (CTL_ERROR);
	}
	if ((n = registry_get(req->ub->registry, id)) == NULL) {
		xasprintf(cause, "unknown node 0x%016" PRIx64, id);
		return (CTL_ERROR);
	}
	o = ctl_node_record(req, n);
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

static enum ctl_ret
ctl_node_tag_exec(struct ctl_req *req, char **cause)
{
	uint64_t	 id;
	int		 add;

	if (ctl_node_id(req->argv[0], &id, 0) != 0) {
		xasprintf(cause, "bad node id \"%s\" (decimal or 0x-hex, "
		    "not 0)", req->argv[0]);
		return (CTL_ERROR);
	}
	if (strcmp(req->argv[1], "add") == 0)
		add = 1;
	else if (strcmp(req->argv[1], "del") == 0)
		add = 0;
	else {
		xasprintf(cause, "unknown tag action \"%s\" (add or del)",
		    req->argv[1]);
		return (CTL_ERROR);
	}
	if (registry_tag(req->ub->registry, id, req->argv[2], add,
	    cause) != 0)
		return (CTL_ERROR);
	db_commit_now(req->ub->db);
	fanout_node_changed(req->ub->fanout, id);
	log_info("control: uid %lu: node 0x%016" PRIx64 " tag %s %s",
	    (unsigned long)req->uid, id, req->argv[1], req->argv[2]);
	return (CTL_DONE);
}

static enum ctl_ret
ctl_node_topology_exec(struct ctl_req *req, char **cause)
{
	static const char *const roles[] = { "leaf", "relay", "coordinator",
	    "gateway", NULL };
	uint64_t	 id, parent, level = 0;
	int		 role;

	if (ctl_node_id(req->argv[0], &id, 0) != 0) {
		xasprintf(cause, "bad node id \"%s\" (decimal or 0x-hex, "
		    "not 0)", req->argv[0]);
		return (CTL_ERROR);
	}
	if (ctl_node_id(req->argv[1], &parent, 1) != 0) {
		xasprintf(cause, "bad parent node id \"%s\" (decimal or "
		    "0x-hex, 0 for none)", req->argv[1]);
		return (CTL_ERROR);
	}
	for (role = 0; roles[role] != NULL; role++)
		if (strcmp(roles[role], req->argv[2]) == 0)
			break;
	if (roles[role] == NULL) {
		xasprintf(cause, "unknown role \"%s\" (leaf, relay, "
		    "coordinator or gateway)", req->argv[2]);
		return (CTL_ERROR);
	}
	if (req->argc == 4 && (ctl_node_id(req->argv[3], &level, 1) != 0 ||
	    level > 255)) {
		xasprintf(cause, "bad level \"%s\" (0-255)", req->argv[3]);
		return (CTL_ERROR);
	}
	if (registry_set_topology(req->ub->registry, id, parent,
	    (uint8_t)level, (uint8_t)role, cause) != 0)
		return (CTL_ERROR);
	db_commit_now(req->ub->db);
	fanout_node_changed(req->ub->fanout, id);
	return (CTL_DONE);
}

static enum ctl_ret
ctl_node_reset_exec(struct ctl_req *req, char **cause)
{
	uint64_t	 id;
	int		 n;

	if (ctl_node_id(req->argv[0], &id, 0) != 0) {
		xasprintf(cause, "bad node id \"%s\" (decimal or 0x-hex, "
		    "not 0)", req->argv[0]);
		return (CTL_ERROR);
	}
	if ((n = fanout_node_reset(req->ub->fanout, id, cause)) == -1)
		return (CTL_ERROR);
	log_info("control: uid %lu: node 0x%016" PRIx64 " reset: %d "
	    "memberships released", (unsigned long)req->uid, id, n);
	control__reply(req, json_pack("{s:s, s:i}", "node", req->argv[0],
	    "released", n));
	return (CTL_DONE);
}
