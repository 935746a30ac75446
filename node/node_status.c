/*
 * node_status.c - the status object that `clipmesh status` prints:
 *   {"role", "listen", "node", "peers": [...], "counts": {...},
 *    "rejected": {reason: count}, "media_fetching", "transfers",
 *    "media_scans": {"done", "records", "running"},
 *    "limits": {...}, "bans": [...], "allow_list",
 *    "known_peers": [...], "peer_exchange": {...}}
 * Keys are shortened to their first 8 hex digits, as in the log.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "node_internal.h"

#define REJECTED_PREFIX "rejected."

static json_t *peer_json(const node_link *l)
{
	const char *role = NULL;
	char since[32] = "", error_at[32] = "";
	json_t *o;

	if (l->stats.last_error_ms)
		cm_time_rfc3339(l->stats.last_error_ms, error_at);
	if (l->established) {
		cm_time_rfc3339(l->connected_ms, since);
		role = l->role == PROTO_WIRE_ROLE_MIRROR ? "mirror" : "creator";
	}
	o = json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s?, s:I, s:I, s:I, "
			 "s:I, s:I, s:I}",
			 "peer", l->short_key,
			 "endpoint", l->endpoint,
			 "direction", l->dir == NODE_LINK_OUT ? "out" : "in",
			 "connected", l->established,
			 "connected_since", l->established ? since : NULL,
			 "role", role,
			 "records_in", (json_int_t)l->stats.records_in,
			 "records_out", (json_int_t)l->stats.records_out,
			 "bytes_in", (json_int_t)l->stats.bytes_in,
			 "bytes_out", (json_int_t)l->stats.bytes_out,
			 "queued_bytes", (json_int_t)node_link_queued(l),
			 "chunk_requests_dropped",
			 (json_int_t)l->chunk_reqs_dropped);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "duplicates_in",
			    json_integer((json_int_t)l->stats.duplicates_in));
	json_object_set_new(o, "announced_in",
			    json_integer((json_int_t)l->stats.announced_in));
	json_object_set_new(o, "announced_out",
			    json_integer((json_int_t)l->stats.announced_out));
	json_object_set_new(o, "clock_offset_ms",
			    l->established && l->clock.known
				    ? json_integer(l->clock.offset_ms)
				    : json_null());
	json_object_set_new(o, "score",
			    json_integer((json_int_t)node_score_points(
				    &l->score, cm_mono_ms())));
	json_object_set_new(o, "messages_dropped",
			    json_integer((json_int_t)l->msgs_dropped));
	json_object_set_new(o, "pauses", json_integer((json_int_t)l->pauses));
	json_object_set_new(
		o, "reconciliation",
		json_pack("{s:I, s:I, s:I, s:I}", "sessions",
			  (json_int_t)l->stats.recon_sessions, "rounds",
			  (json_int_t)l->stats.recon_rounds, "bytes_in",
			  (json_int_t)l->stats.recon_bytes_in, "bytes_out",
			  (json_int_t)l->stats.recon_bytes_out));
	json_object_set_new(
		o, "last_error",
		l->stats.last_error[0]
			? json_pack("{s:s, s:s}", "reason",
				    l->stats.last_error, "at", error_at)
			: json_null());
	return o;
}

static int add_rejected(void *ctx, const char *name, uint64_t value)
{
	size_t plen = strlen(REJECTED_PREFIX);

	if (strncmp(name, REJECTED_PREFIX, plen) == 0)
		json_object_set_new(ctx, name + plen,
				    json_integer((json_int_t)value));
	return 0;
}

static void add_unflushed(const node *n, json_t *rejected)
{
	for (int code = 0; code < CM_ERR_COUNT; code++) {
		const char *name = cm_err_name((cm_err)code);
		json_int_t stored;

		if (!n->rejected[code])
			continue;
		stored = json_integer_value(json_object_get(rejected, name));
		json_object_set_new(rejected, name,
				    json_integer(stored +
						 (json_int_t)n->rejected[code]));
	}
}

static json_t *counts_json(node *n)
{
	store_counts c;

	if (store_get_counts(n->st, &c))
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:I}",
			 "clips", (json_int_t)c.clips,
			 "retractions", (json_int_t)c.retractions,
			 "profiles", (json_int_t)c.profiles,
			 "chunks", (json_int_t)c.chunks,
			 "chunk_bytes", (json_int_t)c.chunk_bytes);
}

/* Connections that ZAP denied, by verdict. */
static json_t *denied_json(const node *n)
{
	json_t *o = json_object();

	for (int v = NODE_ZAP_ACCEPT + 1; o && v < NODE_ZAP_VERDICTS; v++) {
		const char *name = node_zap_verdict_name((node_zap_verdict)v);

		json_object_set_new(o, name,
				    json_integer((json_int_t)n->zap_denied[v]));
	}
	return o;
}

/* Counters of the limits that protect the node from hostile peers. */
static json_t *limits_json(const node *n)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:o*}",
			 "connections_open", (json_int_t)n->n_conns,
			 "connections_refused", (json_int_t)n->conns_refused,
			 "connections_refused_per_address",
			 (json_int_t)n->conns_refused_source,
			 "connections_silent", (json_int_t)n->conns_silent,
			 "chunk_requests_dropped",
			 (json_int_t)n->chunk_reqs_dropped,
			 "links_evicted", (json_int_t)n->links_evicted,
			 "peer_messages_per_second", (json_int_t)n->peer_msgs,
			 "peer_bytes_per_second", (json_int_t)n->peer_bytes,
			 "messages_dropped", (json_int_t)n->msgs_dropped,
			 "connections_denied", denied_json(n));
}

/* One key or address with strikes: "key" (8 hex digits) or "ip", "until"
 * (RFC 3339, the end of its latest ban), "active", "strikes" and
 * "seconds" (the length of its latest ban). */
static json_t *ban_json(const node_ban *b, uint64_t mono, uint64_t wall)
{
	uint64_t until = b->until >= mono ? wall + (b->until - mono)
					  : wall - (mono - b->until);
	char when[32], short_key[9];

	cm_time_rfc3339(until, when);
	if (b->kind == NODE_BAN_KEY)
		cm_hex_short(b->key, short_key);
	return json_pack("{s:s, s:s, s:b, s:I, s:I}",
			 b->kind == NODE_BAN_KEY ? "key" : "ip",
			 b->kind == NODE_BAN_KEY ? short_key : b->ip,
			 "until", when, "active", mono < b->until,
			 "strikes", (json_int_t)b->strikes,
			 "seconds", (json_int_t)(b->length_ms / 1000));
}

/* Every key and address whose strikes are remembered, banned or not. */
static json_t *bans_json(const node *n)
{
	uint64_t mono = cm_mono_ms(), wall = cm_now_ms();
	json_t *list = json_array();

	for (size_t i = 0; list && i < NODE_BANS_SLOTS; i++) {
		const node_ban *b = &n->bans.entries[i];

		if (b->used && mono < b->until + CM_BAN_FORGET_MS)
			json_array_append_new(list, ban_json(b, mono, wall));
	}
	return list;
}

/* The number of keys in the allow-list, or null when the node lets
 * every key in. */
static json_t *allow_json(const node *n)
{
	if (!n->allow_only)
		return json_null();
	return json_integer((json_int_t)n->n_allow);
}

char *node_status_json(node *n)
{
	json_t *root = NULL, *peers = NULL, *rejected = NULL;
	size_t jobs = 0;
	char *out = NULL;

	peers = json_array();
	rejected = json_object();
	if (!peers || !rejected)
		goto out;
	for (size_t i = 0; i < NODE_LINKS_MAX; i++)
		if (n->links[i].used)
			json_array_append_new(peers, peer_json(&n->links[i]));

	/* Counts not yet flushed are in n->rejected; flush them first so that
	 * the store's counters are the whole truth. A store that cannot
	 * write keeps them in memory: add what is left. */
	node_flush_rejected(n);
	store_counter_list(n->st, add_rejected, rejected);
	add_unflushed(n, rejected);
	for (size_t i = 0; i < CM_MEDIA_JOBS_MAX; i++)
		jobs += node_media_job_active(n, i);

	root = json_pack("{s:s, s:s, s:s, s:O, s:o, s:O, s:I, s:o*, s:o*, "
			 "s:o*, s:o*, s:o, s:o*, s:o*, s:{s:I, s:I}}",
			 "role", n->cfg->role == NODE_ROLE_MIRROR ? "mirror"
								  : "creator",
			 "listen", n->cfg->listen,
			 "node", n->short_key,
			 "peers", peers,
			 "counts", counts_json(n),
			 "rejected", rejected,
			 "media_fetching", (json_int_t)jobs,
			 "transfers", node_media_transfers_json(n),
			 "media_scans", node_media_scans_json(n),
			 "limits", limits_json(n),
			 "bans", bans_json(n),
			 "allow_list", allow_json(n),
			 "known_peers", node_known_json(n),
			 "peer_exchange", node_pex_json(n),
			 "queues",
			 "verifying",
			 (json_int_t)node_verifier_queued(n->verifier),
			 "storing",
			 (json_int_t)node_record_writer_queued(n->record_writer));
	if (root)
		out = json_dumps(root, JSON_COMPACT);
out:
	json_decref(root);
	json_decref(rejected);
	json_decref(peers);
	return out;
}
