/*
 * fanout_json.c: the fan-out engine's views for the control socket
 * (upctl status, campaigns, campaign ID, watch).  Shapes are documented
 * in docs/fanout.md, "Views".
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fanout_internal.h"

static json_t *
fanout_caps_json(const struct tp_caps *c)
{
	json_t	*flags = json_array();

	if (c->flags & TP_CAP_BROADCAST)
		json_array_append_new(flags, json_string("broadcast"));
	if (c->flags & TP_CAP_UNICAST)
		json_array_append_new(flags, json_string("unicast"));
	if (c->flags & TP_CAP_LINK_ACK)
		json_array_append_new(flags, json_string("link-ack"));
	if (c->flags & TP_CAP_HALF_DUPLEX)
		json_array_append_new(flags, json_string("half-duplex"));
	if (c->flags & TP_CAP_LBT)
		json_array_append_new(flags, json_string("lbt"));
	if (c->flags & TP_CAP_DISCOVERY)
		json_array_append_new(flags, json_string("discovery"));
	if (c->flags & TP_CAP_RELIABLE)
		json_array_append_new(flags, json_string("reliable"));
	if (c->flags & TP_CAP_CONNECT)
		json_array_append_new(flags, json_string("connect"));
	if (c->flags & TP_CAP_POLLED)
		json_array_append_new(flags, json_string("polled"));
	if (c->flags & TP_CAP_OFFLOAD)
		json_array_append_new(flags, json_string("offload"));
	return (json_pack("{s:i, s:o, s:I, s:i, s:i, s:i, s:i, s:i, s:i}",
	    "mtu", (int)c->mtu, "flags", flags,
	    "bitrate_bps", (json_int_t)c->bitrate_bps,
	    "frame_overhead", (int)c->frame_overhead,
	    "duty_cycle_ppm", (int)c->duty_cycle_ppm,
	    "duty_window_ms", (int)c->duty_window_ms,
	    "min_gap_us", (int)c->min_gap_us,
	    "max_peers", (int)c->max_peers,
	    "tx_queue", (int)c->tx_queue));
}

static json_t *
fanout_pacer_json(const struct eng_pacer_info *p)
{
	json_t		*o, *bands;
	unsigned int	 i;

	/* Each regulated band's ledger over its sliding window. */
	bands = json_array();
	for (i = 0; i < p->nbands && i < TP_BANDS_MAX; i++)
		json_array_append_new(bands, json_pack("{s:i, s:I, s:I, s:I}",
		    "duty_ppm", (int)p->band[i].duty_ppm,
		    "budget_us", (json_int_t)p->band[i].budget_us,
		    "used_us", (json_int_t)p->band[i].used_us,
		    "spent_us", (json_int_t)p->band[i].spent_us));
	o = json_pack("{s:I, s:I, s:i, s:i, s:I, s:I, s:i, s:i, s:i, "
	    "s:b, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "rate_bps", (json_int_t)p->rate_bps,
	    "link_bps", (json_int_t)p->link_bps,
	    "frame_overhead", (int)p->frame_overhead,
	    "duty_cycle_ppm", (int)p->duty_cycle_ppm,
	    "duty_credit_us", (json_int_t)p->duty_credit_us,
	    "duty_cap_us", (json_int_t)p->duty_cap_us,
	    "min_gap_us", (int)p->min_gap_us,
	    "tx_queue", (int)p->tx_queue,
	    "inflight", (int)p->inflight,
	    "blocked", p->blocked,
	    "backlog_us", (json_int_t)p->backlog_us,
	    "frames", (json_int_t)p->frames,
	    "bytes", (json_int_t)p->bytes,
	    "airtime_us", (json_int_t)p->airtime_us,
	    "waits", (json_int_t)p->waits,
	    "eagain", (json_int_t)p->eagain);
	json_object_set_new(o, "bands", bands);
	return (o);
}

/*
 * A link's peers (connections, polled or listed nodes: docs/engine.md,
 * "Link shapes"): what upctl status shows per peer.
 */
static json_t *
fanout_peers_json(struct eng_link *l)
{
	struct eng_peer_info	 pi;
	json_t			*a = json_array(), *o;
	char			 addr[TP_ADDR_TEXT_MAX], node[24], sid[16];
	size_t			 i;

	for (i = 0; eng_link_peer_info(l, i, &pi) == 0; i++) {
		if (eng_link_addr_fmt(l, &pi.addr, addr, sizeof(addr)) != 0)
			snprintf(addr, sizeof(addr), "?");
		o = json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:I, "
		    "s:I, s:I, s:I}", "addr", addr, "state", pi.state,
		    "mtu", (int)pi.mtu, "step", pi.step,
		    "inflight", (int)pi.inflight,
		    "connects", (int)pi.connects, "drops", (int)pi.drops,
		    "fails", (int)pi.fails,
		    "tx_frames", (json_int_t)pi.tx_frames,
		    "tx_bytes", (json_int_t)pi.tx_bytes,
		    "rx_frames", (json_int_t)pi.rx_frames,
		    "idle_ms", (json_int_t)pi.idle_ms);
		if (pi.node != 0) {
			snprintf(node, sizeof(node), "0x%016" PRIx64, pi.node);
			snprintf(sid, sizeof(sid), "%08x", pi.session);
			json_object_set_new(o, "node", json_string(node));
			json_object_set_new(o, "session", json_string(sid));
		}
		if (pi.rssi_dbm != INT16_MAX)
			json_object_set_new(o, "rssi_dbm",
			    json_integer(pi.rssi_dbm));
		json_array_append_new(a, o);
	}
	return (a);
}

static json_t *
fanout_link_json(struct eng_link *l)
{
	struct eng_link_info	 li;
	const struct tp_stats	*st = &li.tp;
	json_t			*o, *stats;

	eng_link_info(l, &li);
	stats = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
	    "tx_frames", (json_int_t)st->tx_frames,
	    "tx_bytes", (json_int_t)st->tx_bytes,
	    "rx_frames", (json_int_t)st->rx_frames,
	    "rx_bytes", (json_int_t)st->rx_bytes,
	    "tx_errors", (json_int_t)st->tx_errors,
	    "rx_errors", (json_int_t)st->rx_errors,
	    "eagain", (json_int_t)st->eagain,
	    "queued", (int)st->queued);
	json_object_set_new(stats, "engine", json_pack("{s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
	    "rx_frames", (json_int_t)li.rx_frames,
	    "rx_bad", (json_int_t)li.rx_bad,
	    "rx_ignored", (json_int_t)li.rx_ignored,
	    "tx_ctrl", (json_int_t)li.tx_ctrl,
	    "tx_data", (json_int_t)li.tx_data,
	    "tx_repair", (json_int_t)li.tx_repair,
	    "tx_errors", (json_int_t)li.tx_errors,
	    "ctrl_dropped", (json_int_t)li.ctrl_dropped,
	    "ctrl_queued", (json_int_t)li.ctrl_queued,
	    "data_sessions", (int)(li.data_sessions > 0)));
	json_object_set_new(json_object_get(stats, "engine"), "ctrl_stale",
	    json_integer((json_int_t)li.ctrl_stale));
	json_object_set_new(json_object_get(stats, "engine"), "quiet_waits",
	    json_integer((json_int_t)li.quiet_waits));
	o = json_pack("{s:s, s:s, s:b, s:I}", "name", li.name, "type",
	    li.type, "up", li.up, "node_silence_ms",
	    (json_int_t)li.node_silence_ms);
	json_object_set_new(o, "caps", fanout_caps_json(&li.caps));
	/* The link's profile in use (docs/engine.md, "The link profile"). */
	json_object_set_new(o, "profile", json_pack("{s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I}",
	    "status_window_ms", (json_int_t)li.status_window_ms,
	    "offer_window_ms", (json_int_t)li.offer_window_ms,
	    "discover_interval_s", (json_int_t)li.discover_interval_s,
	    "result_timeout_s", (json_int_t)li.result_timeout_s,
	    "result_poll_ms", (json_int_t)li.poll_ms,
	    "node_hash_kbs", (json_int_t)li.node_hash_kbs,
	    "frame_us", (json_int_t)li.frame_us,
	    "answer_us", (json_int_t)li.answer_us));
	json_object_set_new(o, "stats", stats);
	json_object_set_new(o, "pacer", fanout_pacer_json(&li.pacer));
	json_object_set_new(o, "shape", json_pack("{s:i, s:i, s:i, s:i, "
	    "s:I, s:I, s:I, s:I, s:I}", "slots", (int)li.slots,
	    "served", (int)li.served, "queued", (int)li.queued,
	    "peers_up", (int)li.peers_up, "polls", (json_int_t)li.polls,
	    "polls_empty", (json_int_t)li.polls_empty,
	    "tx_segments", (json_int_t)li.tx_segments,
	    "rx_segments", (json_int_t)li.rx_segments,
	    "down_ms", (json_int_t)li.down_ms));
	json_object_set_new(o, "peers", fanout_peers_json(l));
	return (o);
}

json_t *
fanout_status_json(struct fanout *f)
{
	struct fo_campaign	*c;
	struct fo_session	*s;
	struct eng_link		*l;
	struct eng_session_info	 si;
	struct eng_stats	 es;
	json_t			*o, *tps;
	size_t			 i;
	int			 n[FO_C_CANCELLED + 1], nsess = 0;

	memset(n, 0, sizeof(n));
	tps = json_array();
	for (i = 0; (l = eng_link_at(f->eng, i)) != NULL; i++)
		json_array_append_new(tps, fanout_link_json(l));
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		n[c->state]++;
		TAILQ_FOREACH(s, &c->sessions, centry) {
			session__info(s, &si);
			if (si.phase != ENG_P_STOPPED)
				nsess++;
		}
	}
	eng_stats(f->eng, &es);
	o = json_pack("{s:o, s:I, s:i}", "transports", tps,
	    "nodes", (json_int_t)registry_count(f->reg), "sessions", nsess);
	json_object_set_new(o, "campaigns", json_pack("{s:i, s:i, s:i, s:i}",
	    "waiting", n[FO_C_WAITING], "running", n[FO_C_RUNNING],
	    "paused", n[FO_C_PAUSED], "active", n[FO_C_WAITING] +
	    n[FO_C_RUNNING] + n[FO_C_PAUSED]));
	json_object_set_new(o, "results", json_pack("{s:I, s:I, s:I, s:I, "
	    "s:I}",
	    "final", (json_int_t)f->results,
	    "duplicates", (json_int_t)es.duplicate_results,
	    "conflicting", (json_int_t)es.conflicting_results,
	    "strangers", (json_int_t)es.stranger_results,
	    "reports", (json_int_t)f->reports));
	json_object_set_new(o, "rx_unknown_session",
	    json_integer((json_int_t)es.rx_unknown_session));
	return (o);
}

static json_t *
fanout_time_json(int64_t unix_s)
{
	struct tm	 tm;
	time_t		 t = (time_t)unix_s;
	char		 buf[32];

	if (unix_s <= 0 || gmtime_r(&t, &tm) == NULL)
		return (json_null());
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (json_string(buf));
}

static json_t *
fanout_campaign_summary(struct fo_campaign *c)
{
	struct fo_member	*m;
	json_t			*o;
	int			 n[ENG_M_NSTATES];
	int			 i, active = 0;

	memset(n, 0, sizeof(n));
	TAILQ_FOREACH(m, &c->members, centry)
		n[m->state]++;
	for (i = ENG_M_PENDING; i < ENG_M_UPDATED; i++)
		active += n[i];
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:i, "
	    "s:i, s:i, s:i, s:i}",
	    "id", c->id, "deployment", c->deployment, "package", c->package,
	    "component", c->pkg.component, "version", c->pkg.version,
	    "state", campaign__state_str(c->state),
	    "size", (json_int_t)c->pkg.size, "nodes", (int)c->nmembers,
	    "active", active, "updated", n[ENG_M_UPDATED],
	    "failed", n[ENG_M_FAILED], "declined", n[ENG_M_DECLINED],
	    "cancelled", n[ENG_M_CANCELLED], "skipped", n[ENG_M_SKIPPED]);
	json_object_set_new(o, "created", fanout_time_json(c->created));
	json_object_set_new(o, "started", fanout_time_json(c->started));
	json_object_set_new(o, "finished", fanout_time_json(c->finished));
	return (o);
}

json_t *
fanout_campaigns_json(struct fanout *f)
{
	struct fo_campaign	*c;
	json_t			*a = json_array();

	TAILQ_FOREACH(c, &f->campaigns, entry)
		json_array_append_new(a, fanout_campaign_summary(c));
	return (a);
}

static uint64_t
fanout_member_bytes(const struct fo_member *m)
{
	struct eng_session_info	 si;

	if (ENG_M_FINAL(m->state) || m->s == NULL || m->started == 0)
		return (m->bytes_sent);
	session__info(m->s, &si);
	if (si.bytes_sent >= m->bytes_base)
		return (m->bytes_sent + si.bytes_sent - m->bytes_base);
	return (m->bytes_sent);
}

/*
 * What the node holds as far as the gateway knows, and (est) what it
 * probably holds now: the engine's estimate during a data pass, which
 * counts the blocks sent since the node's last report (eng_member_info).
 */
static void
fanout_member_held(const struct fo_member *m, uint32_t *nblocks,
    uint32_t *est)
{
	struct eng_member_info	 mi;
	struct eng_session_info	 si;

	*nblocks = 0;
	*est = m->held;
	if (m->em != NULL) {
		eng_member_info(m->em, &mi);
		*nblocks = mi.nblocks;
		*est = mi.est_held;
	} else if (m->s != NULL) {
		session__info(m->s, &si);
		*nblocks = si.nblocks;
	}
}

static int
fanout_member_pct(const struct fo_member *m, uint32_t nb, uint32_t est)
{
	if (m->state == ENG_M_UPDATED || (m->state >= ENG_M_DOWNLOADED &&
	    m->state <= ENG_M_ACTIVATING))
		return (100);
	if (nb == 0)
		return (0);
	return ((int)((uint64_t)est * 100 / nb));
}

/*
 * Adds the estimate's fields to a node row: "held" stays what the node
 * confirmed; "est_blocks" is what it probably holds and "held_est" says
 * whether "pct" comes from that estimate rather than from "held".
 */
static void
fanout_member_est_json(json_t *o, const struct fo_member *m, uint32_t est)
{
	json_object_set_new(o, "est_blocks", json_integer(est));
	json_object_set_new(o, "held_est", json_boolean(est != m->held));
}

/* A node served alone: what its turn is doing ("queued", "data"...). */
static void
fanout_member_step_json(json_t *o, const struct fo_member *m)
{
	struct eng_member_info	 mi;

	if (m->em == NULL)
		return;
	eng_member_info(m->em, &mi);
	if (mi.step != NULL && mi.step[0] != '\0')
		json_object_set_new(o, "step", json_string(mi.step));
}

static json_t *
fanout_member_json(struct fo_member *m)
{
	json_t		*o;
	char		 id[24];
	uint32_t	 nb, est;

	fanout_member_held(m, &nb, &est);
	snprintf(id, sizeof(id), "0x%016" PRIx64, m->node);
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:i, s:I, s:i, "
	    "s:s, s:b}",
	    "node", id, "transport", m->transport,
	    "state", campaign__mstate_str(m->state), "result", (int)m->result,
	    "result_str", up_result_str(m->result),
	    "held", (json_int_t)m->held,
	    "nblocks", (json_int_t)nb,
	    "pct", fanout_member_pct(m, nb, est),
	    "bytes_sent", (json_int_t)fanout_member_bytes(m),
	    "tries", (int)m->tries, "from", m->from,
	    "reported", m->reported);
	fanout_member_est_json(o, m, est);
	json_object_set_new(o, "session", m->s != NULL ?
	    json_integer(m->s->id) : json_null());
	json_object_set_new(o, "started", fanout_time_json(m->started /
	    1000));
	json_object_set_new(o, "finished", fanout_time_json(m->finished /
	    1000));
	json_object_set_new(o, "duration_ms", json_integer(m->started != 0 &&
	    m->finished >= m->started ? m->finished - m->started : 0));
	fanout_member_step_json(o, m);
	return (o);
}

static json_t *
fanout_session_json(struct fo_session *s)
{
	struct eng_session_info	 si;
	json_t			*o;
	char			 id[16];

	session__info(s, &si);
	snprintf(id, sizeof(id), "%08x", s->id);
	o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:i, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:i}",
	    "session", id, "transport", s->transport,
	    "phase", eng_phase_str(si.phase),
	    "block_size", (int)si.block_size,
	    "nblocks", (json_int_t)si.nblocks,
	    "needed", (json_int_t)si.needed, "pass", (int)si.pass,
	    "bytes_sent", (json_int_t)si.bytes_sent,
	    "data_frames", (json_int_t)si.data_frames,
	    "repair_frames", (json_int_t)si.repair_frames,
	    "parity_frames", (json_int_t)si.parity_frames,
	    "xor_frames", (json_int_t)si.xor_frames,
	    "ctrl_frames", (json_int_t)si.ctrl_frames,
	    "rate_bps", (json_int_t)session__rate_bps(s),
	    "nodes", (int)si.nmembers);
	/* How it uses its link (docs/engine.md, "Link shapes"). */
	json_object_set_new(o, "shape", json_string(eng_shape_str(si.shape)));
	json_object_set_new(o, "frozen", json_boolean(si.frozen));
	json_object_set_new(o, "served", json_integer(si.served));
	json_object_set_new(o, "queued", json_integer(si.queued));
	json_object_set_new(o, "polls", json_integer((json_int_t)si.polls));
	json_object_set_new(o, "unicast_frames",
	    json_integer((json_int_t)si.unicast_frames));
	json_object_set_new(o, "offload_bytes",
	    json_integer((json_int_t)si.offload_bytes));
	return (o);
}

json_t *
fanout_campaign_json(struct fanout *f, const char *id)
{
	struct fo_campaign	*c;
	struct fo_session	*s;
	struct fo_member	*m;
	json_t			*o, *a;
	char			 sha[CACHE_HEX_LEN + 1];

	if ((c = campaign__find(f, id)) == NULL)
		return (NULL);
	o = fanout_campaign_summary(c);
	cache_hex(c->pkg.sha256, sha);
	json_object_set_new(o, "sha256", json_string(sha));
	a = json_array();
	TAILQ_FOREACH(s, &c->sessions, centry)
		json_array_append_new(a, fanout_session_json(s));
	json_object_set_new(o, "sessions", a);
	a = json_array();
	TAILQ_FOREACH(m, &c->members, centry)
		json_array_append_new(a, fanout_member_json(m));
	json_object_set_new(o, "nodes", a);
	return (o);
}

json_t *
fanout_progress_json(struct fanout *f)
{
	struct fo_campaign	*c;
	struct fo_member	*m;
	json_t			*a = json_array(), *row;
	char			 id[24];
	uint32_t		 nb, est;

	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (!campaign__active(c))
			continue;
		TAILQ_FOREACH(m, &c->members, centry) {
			fanout_member_held(m, &nb, &est);
			snprintf(id, sizeof(id), "0x%016" PRIx64, m->node);
			row = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:i, "
			    "s:s, s:I}",
			    "campaign", c->id, "node", id,
			    "state", campaign__mstate_str(m->state),
			    "held", (json_int_t)m->held,
			    "nblocks", (json_int_t)nb,
			    "pct", fanout_member_pct(m, nb, est),
			    "result", (int)m->result,
			    "result_str", up_result_str(m->result),
			    "rate_bps", (json_int_t)(m->s != NULL &&
			    m->state == ENG_M_RECEIVING ?
			    session__rate_bps(m->s) : 0));
			fanout_member_est_json(row, m, est);
			json_array_append_new(a, row);
		}
	}
	rollout__progress(f, a);
	return (a);
}
