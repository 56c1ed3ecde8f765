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
fanout_tp_json(struct fo_tp *t)
{
	struct tp_stats	 st;
	json_t		*o, *stats;

	memset(&st, 0, sizeof(st));
	if (t->ops->stats != NULL && t->tp != NULL)
		t->ops->stats(t->tp, &st);
	stats = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
	    "tx_frames", (json_int_t)st.tx_frames,
	    "tx_bytes", (json_int_t)st.tx_bytes,
	    "rx_frames", (json_int_t)st.rx_frames,
	    "rx_bytes", (json_int_t)st.rx_bytes,
	    "tx_errors", (json_int_t)st.tx_errors,
	    "rx_errors", (json_int_t)st.rx_errors,
	    "eagain", (json_int_t)st.eagain,
	    "queued", (int)st.queued);
	json_object_set_new(stats, "engine", json_pack("{s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
	    "rx_frames", (json_int_t)t->rx_frames,
	    "rx_bad", (json_int_t)t->rx_bad,
	    "rx_ignored", (json_int_t)t->rx_ignored,
	    "tx_ctrl", (json_int_t)t->tx_ctrl,
	    "tx_data", (json_int_t)t->tx_data,
	    "tx_repair", (json_int_t)t->tx_repair,
	    "tx_errors", (json_int_t)t->tx_errors,
	    "ctrl_dropped", (json_int_t)t->ctrl_dropped,
	    "ctrl_queued", (json_int_t)t->ring_n,
	    "data_sessions", (int)!TAILQ_EMPTY(&t->data_sessions)));
	o = json_pack("{s:s, s:s, s:b}", "name", t->name, "type", t->type,
	    "up", t->up);
	json_object_set_new(o, "caps", fanout_caps_json(&t->caps));
	json_object_set_new(o, "stats", stats);
	json_object_set_new(o, "pacer", pacer__json(&t->pacer,
	    fanout__now_us()));
	return (o);
}

json_t *
fanout_status_json(struct fanout *f)
{
	struct fo_campaign	*c;
	struct fo_session	*s;
	json_t			*o, *tps;
	size_t			 i;
	int			 n[FO_C_CANCELLED + 1], nsess = 0;

	memset(n, 0, sizeof(n));
	tps = json_array();
	for (i = 0; i < f->ntps; i++)
		json_array_append_new(tps, fanout_tp_json(f->tps[i]));
	TAILQ_FOREACH(c, &f->campaigns, entry) {
		n[c->state]++;
		TAILQ_FOREACH(s, &c->sessions, centry)
			if (s->phase != FO_P_STOPPED)
				nsess++;
	}
	o = json_pack("{s:o, s:I, s:i}", "transports", tps,
	    "nodes", (json_int_t)registry_count(f->reg), "sessions", nsess);
	json_object_set_new(o, "campaigns", json_pack("{s:i, s:i, s:i, s:i}",
	    "waiting", n[FO_C_WAITING], "running", n[FO_C_RUNNING],
	    "paused", n[FO_C_PAUSED], "active", n[FO_C_WAITING] +
	    n[FO_C_RUNNING] + n[FO_C_PAUSED]));
	json_object_set_new(o, "results", json_pack("{s:I, s:I, s:I}",
	    "final", (json_int_t)f->results,
	    "duplicates", (json_int_t)f->duplicate_results,
	    "reports", (json_int_t)f->reports));
	json_object_set_new(o, "rx_unknown_session",
	    json_integer((json_int_t)f->rx_unknown_session));
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
	int			 n[FO_M_CANCELLED + 1];
	int			 i, active = 0;

	memset(n, 0, sizeof(n));
	TAILQ_FOREACH(m, &c->members, centry)
		n[m->state]++;
	for (i = FO_M_PENDING; i < FO_M_UPDATED; i++)
		active += n[i];
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:i, "
	    "s:i, s:i, s:i}",
	    "id", c->id, "deployment", c->deployment, "package", c->package,
	    "component", c->pkg.component, "version", c->pkg.version,
	    "state", campaign__state_str(c->state),
	    "size", (json_int_t)c->pkg.size, "nodes", (int)c->nmembers,
	    "active", active, "updated", n[FO_M_UPDATED],
	    "failed", n[FO_M_FAILED], "declined", n[FO_M_DECLINED],
	    "cancelled", n[FO_M_CANCELLED]);
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
	if (!FO_M_FINAL(m->state) && m->s != NULL && m->started != 0 &&
	    m->s->bytes_sent >= m->bytes_base)
		return (m->bytes_sent + m->s->bytes_sent - m->bytes_base);
	return (m->bytes_sent);
}

static uint32_t
fanout_member_nblocks(const struct fo_member *m)
{
	if (m->s != NULL && m->s->nblocks != 0)
		return (m->s->nblocks);
	return (0);
}

/*
 * The blocks a receiving node probably holds now, for the progress
 * views.  The gateway learns what a node holds only from its ACCEPT and
 * STATUS replies, about once per repair round, so `held' lags a whole
 * data pass behind and a first pass would show 0 % until it ends.
 *
 * During a pass every block the node still missed at its last report is
 * sent once, in index order: session__fill_data() walks the union
 * `needed' upwards from `cursor', and all the node's missing blocks lie
 * in [first_missing, nblocks).  The gateway keeps no per-node bitmap, so
 * we take those blocks as spread evenly over that range: the share of it
 * the cursor has passed is the share of them sent since the report.  A
 * node that joined during this pass (ACCEPT after it began) missed the
 * blocks sent before, which we estimate from the time it joined.  Lost
 * frames make this an upper bound; the node's next STATUS corrects it.
 * It never reaches nblocks: a node says itself when it has everything.
 * Read-only and O(1) per node: nothing in the session changes.
 */
static uint32_t
fanout_member_est(const struct fo_member *m)
{
	const struct fo_session	*s = m->s;
	uint64_t		 span, passed, from, est, now, elapsed, joined;
	int64_t			 pass_unix;

	if (m->state != FO_M_RECEIVING || s == NULL || s->nblocks == 0 ||
	    s->pass == 0 || m->held >= s->nblocks)
		return (m->held);
	/* A reply in this status round is newer than every block sent. */
	if (s->phase == FO_P_STATUS && m->answered)
		return (m->held);
	if (s->phase != FO_P_DATA && s->phase != FO_P_STATUS)
		return (m->held);

	from = m->first_missing;
	if (s->cursor <= from || from >= s->nblocks)
		return (m->held);
	if (s->phase == FO_P_DATA && m->started != 0) {
		now = fanout__now_ms();
		elapsed = now > s->phase_ms ? now - s->phase_ms : 0;
		pass_unix = fanout__unix_ms() - (int64_t)elapsed;
		if (m->started > pass_unix && elapsed > 0) {
			joined = (uint64_t)s->cursor *
			    (uint64_t)(m->started - pass_unix) / elapsed;
			if (joined > from)
				from = joined;
			if (s->cursor <= from)
				return (m->held);
		}
	}
	span = s->nblocks - m->first_missing;
	passed = s->cursor - from;
	est = m->held + (uint64_t)(s->nblocks - m->held) * passed / span;
	if (est >= s->nblocks)
		est = s->nblocks - 1;
	return ((uint32_t)(est > m->held ? est : m->held));
}

static int
fanout_member_pct(const struct fo_member *m)
{
	uint32_t	 nb = fanout_member_nblocks(m);

	if (m->state == FO_M_UPDATED || (m->state >= FO_M_DOWNLOADED &&
	    m->state <= FO_M_ACTIVATING))
		return (100);
	if (nb == 0)
		return (0);
	return ((int)((uint64_t)fanout_member_est(m) * 100 / nb));
}

/*
 * Adds the estimate's fields to a node row: "held" stays what the node
 * confirmed; "est_blocks" is what it probably holds and "held_est" says
 * whether "pct" comes from that estimate rather than from "held".
 */
static void
fanout_member_est_json(json_t *o, const struct fo_member *m)
{
	uint32_t	 est = fanout_member_est(m);

	json_object_set_new(o, "est_blocks", json_integer(est));
	json_object_set_new(o, "held_est", json_boolean(est != m->held));
}

static json_t *
fanout_member_json(struct fo_member *m)
{
	json_t	*o;
	char	 id[24];

	snprintf(id, sizeof(id), "0x%016" PRIx64, m->node);
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:i, s:I, s:i, "
	    "s:s, s:b}",
	    "node", id, "transport", m->transport,
	    "state", campaign__mstate_str(m->state), "result", (int)m->result,
	    "result_str", up_result_str(m->result),
	    "held", (json_int_t)m->held,
	    "nblocks", (json_int_t)fanout_member_nblocks(m),
	    "pct", fanout_member_pct(m),
	    "bytes_sent", (json_int_t)fanout_member_bytes(m),
	    "tries", (int)m->tries, "from", m->from,
	    "reported", m->reported);
	fanout_member_est_json(o, m);
	json_object_set_new(o, "session", m->s != NULL ?
	    json_integer(m->s->id) : json_null());
	json_object_set_new(o, "started", fanout_time_json(m->started /
	    1000));
	json_object_set_new(o, "finished", fanout_time_json(m->finished /
	    1000));
	json_object_set_new(o, "duration_ms", json_integer(m->started != 0 &&
	    m->finished >= m->started ? m->finished - m->started : 0));
	return (o);
}

static json_t *
fanout_session_json(struct fo_session *s)
{
	char	 id[16];

	snprintf(id, sizeof(id), "%08x", s->id);
	return (json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:i, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:i}",
	    "session", id, "transport", s->transport,
	    "phase", session__phase_str(s->phase),
	    "block_size", (int)s->block_size,
	    "nblocks", (json_int_t)s->nblocks,
	    "needed", (json_int_t)s->nneeded, "pass", (int)s->pass,
	    "bytes_sent", (json_int_t)s->bytes_sent,
	    "data_frames", (json_int_t)s->data_frames,
	    "repair_frames", (json_int_t)s->repair_frames,
	    "parity_frames", (json_int_t)s->parity_frames,
	    "xor_frames", (json_int_t)s->xor_frames,
	    "ctrl_frames", (json_int_t)s->ctrl_frames,
	    "rate_bps", (json_int_t)session__rate_bps(s),
	    "nodes", (int)s->nmembers));
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

	TAILQ_FOREACH(c, &f->campaigns, entry) {
		if (!campaign__active(c))
			continue;
		TAILQ_FOREACH(m, &c->members, centry) {
			snprintf(id, sizeof(id), "0x%016" PRIx64, m->node);
			row = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:i, "
			    "s:s, s:I}",
			    "campaign", c->id, "node", id,
			    "state", campaign__mstate_str(m->state),
			    "held", (json_int_t)m->held,
			    "nblocks", (json_int_t)fanout_member_nblocks(m),
			    "pct", fanout_member_pct(m),
			    "result", (int)m->result,
			    "result_str", up_result_str(m->result),
			    "rate_bps", (json_int_t)(m->s != NULL &&
			    m->state == FO_M_RECEIVING ?
			    session__rate_bps(m->s) : 0));
			fanout_member_est_json(row, m);
			json_array_append_new(a, row);
		}
	}
	return (a);
}
