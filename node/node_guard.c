/*
 * node_guard.c - what a node does against misbehaving peers: input limits
 * per link, scores, rejections and bans.
 *
 * Every message a link delivers is charged to its two token buckets, one
 * for messages and one for bytes, except the chunks the node requested. All inbound links share the ROUTER
 * socket, which libzmq reads from every connection in turn (fair
 * queueing), so the node cannot stop reading one inbound peer. Instead it
 * drops an inbound message over the limit before decoding it, which costs
 * little next to verifying and storing it, so the loop stays free for
 * honest peers. An outbound link has a DEALER of its own, which the node
 * stops reading while the link is paused, so that its peer waits on TCP
 * and loses nothing.
 *
 * Each second in which a link was over its limit, and each invalid input,
 * lowers the link's score. At 0 its key, and for an inbound link its IP
 * address, gets a strike in the ban table: the ban lasts the base time,
 * doubled for each earlier strike. ZAP then denies new connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define REJECT_LOG_LINES_PER_SECOND 5
#define CHUNK_CREDIT_MAX (2 * CM_WIRE_CHUNKS_INFLIGHT)
/* A CHUNK message: array header, type, root (34 bytes), index (at most 3
 * bytes) and a bin32 header before the data. */
#define CHUNK_MESSAGE_MAX (CM_CHUNK_SIZE + 48)

cm_err node_peer_limits_init(node *n)
{
	const node_config *cfg = n->cfg;

	n->peer_msgs = cfg->peer_msgs ? cfg->peer_msgs : CM_PEER_MSGS_DEFAULT;
	n->peer_bytes = cfg->peer_bytes ? cfg->peer_bytes
					: CM_PEER_BYTES_DEFAULT;
	if (n->peer_msgs > CM_PEER_MSGS_MAX ||
	    n->peer_bytes > CM_PEER_BYTES_MAX)
		return cm_errf(CM_ERR_USAGE, "peer limits of %llu messages "
			       "and %llu bytes a second are over the maximum "
			       "(%d and %llu)",
			       (unsigned long long)n->peer_msgs,
			       (unsigned long long)n->peer_bytes,
			       CM_PEER_MSGS_MAX, CM_PEER_BYTES_MAX);
	node_bans_init(&n->bans,
		       cfg->ban_base_ms ? cfg->ban_base_ms : CM_BAN_BASE_MS,
		       CM_BAN_MAX_MS);

	n->allow_only = cfg->allow_only;
	if (!n->allow_only)
		return CM_OK;
	if (cfg->n_allow > CM_ALLOW_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "%zu keys in the allow-list, "
			       "at most %d", cfg->n_allow, CM_ALLOW_MAX);
	if (cfg->n_allow > 0) {
		n->allow = malloc(cfg->n_allow * NODE_KEY_LEN);
		if (!n->allow)
			return CM_ERR_NOMEM;
		memcpy(n->allow, cfg->allow, cfg->n_allow * NODE_KEY_LEN);
		n->n_allow = node_keys_sort(n->allow, cfg->n_allow);
	}
	if (n->n_allow == 0)
		cm_warn(NODE_LOG, "allow-list mode with an empty list: no peer "
			"can connect to this node");
	else
		cm_info(NODE_LOG, "allow-list mode: %zu node keys may connect",
			n->n_allow);
	return CM_OK;
}

/* The message type of an undecoded message whose array has `elements`
 * elements, or 0. Types below 128 are one byte after the header. */
static unsigned peek_type(const uint8_t *buf, size_t len, unsigned elements)
{
	if (len < 2 || buf[0] != 0x90 + elements || buf[1] > 0x7f)
		return 0;
	return buf[1];
}

void node_link_sent(node_link *l, const uint8_t *buf, size_t len)
{
	if (peek_type(buf, len, 3) == PROTO_WIRE_CHUNK_REQ &&
	    l->chunk_credit < CHUNK_CREDIT_MAX)
		l->chunk_credit++;
}

/* True for a CHUNK in reply to one of our CHUNK_REQs. It is not charged,
 * because our request window already bounds such replies, so that media
 * arrives as fast as the peer sends it. */
static bool is_requested_chunk(node_link *l, const uint8_t *buf, size_t len)
{
	if (l->chunk_credit == 0 || len > CHUNK_MESSAGE_MAX ||
	    peek_type(buf, len, 4) != PROTO_WIRE_CHUNK)
		return false;
	l->chunk_credit--;
	return true;
}

/* Bans the link's key, and its address when it is inbound. The link is
 * dropped by the next tick, not here, because callers still use it. */
static void ban(node *n, node_link *l, const char *reason)
{
	uint64_t now = cm_mono_ms(), length;
	unsigned strikes, ip_strikes = 0;
	const node_ban *b;
	size_t dropped;

	b = node_bans_strike(&n->bans, NODE_BAN_KEY, l->key, NULL, now);
	strikes = b->strikes;
	dropped = node_ingest_drop_key(n, l->key);
	length = b->length_ms;
	if (l->dir == NODE_LINK_IN && l->endpoint[0]) {
		b = node_bans_strike(&n->bans, NODE_BAN_IP, NULL, l->endpoint,
				     now);
		ip_strikes = b->strikes;
	}
	l->banned = true;
	l->ban_until = now + length;
	if (l->dir == NODE_LINK_IN)
		node_link_close_connection(l);
	else
		node_score_init(&l->score, now); /* the slot outlives the ban */

	/* Key rotation makes bans cheap to cause: one line per interval. */
	if (now < n->ban_log_until) {
		n->bans_unlogged++;
		return;
	}
	cm_warn(NODE_LOG, "banned peer=%s endpoint=%s for %llu s (strike %u "
		"of the key, %u of the address): %s; dropped %zu queued "
		"records (%llu other bans since the last line)", l->short_key,
		l->endpoint, (unsigned long long)(length / 1000), strikes,
		ip_strikes, reason, dropped,
		(unsigned long long)n->bans_unlogged);
	n->bans_unlogged = 0;
	n->ban_log_until = now + CM_BAN_LOG_INTERVAL_MS;
}

/* Costs the link CM_PEER_PENALTY_OVERRUN points once per second in which
 * it was over its limit, and logs that at most every
 * CM_BAN_LOG_INTERVAL_MS per link. */
static void overrun(node *n, node_link *l, uint64_t now)
{
	int64_t points;

	if (l->banned || now / 1000 == l->overrun_second)
		return;
	l->overrun_second = now / 1000;
	points = node_score_lower(&l->score, CM_PEER_PENALTY_OVERRUN, now);
	if (now >= l->overrun_log_until) {
		cm_warn(NODE_LOG, "peer=%s endpoint=%s is over its input limit "
			"of %llu messages and %llu bytes a second: %llu "
			"messages dropped, %llu pauses, score %lld",
			l->short_key, l->endpoint,
			(unsigned long long)n->peer_msgs,
			(unsigned long long)n->peer_bytes,
			(unsigned long long)l->msgs_dropped,
			(unsigned long long)l->pauses, (long long)points);
		l->overrun_log_until = now + CM_BAN_LOG_INTERVAL_MS;
	}
	if (points <= 0)
		ban(n, l, "over its input limit");
}

bool node_link_admit(node *n, node_link *l, const uint8_t *buf, size_t len)
{
	uint64_t now = cm_mono_ms(), wait;

	if (is_requested_chunk(l, buf, len))
		return true;
	if (l->dir == NODE_LINK_OUT) {
		node_bucket_charge(&l->msgs, 1, now);
		node_bucket_charge(&l->bytes, len, now);
		wait = node_bucket_wait_ms(&l->msgs, now);
		if (node_bucket_wait_ms(&l->bytes, now) > wait)
			wait = node_bucket_wait_ms(&l->bytes, now);
		if (wait > 0) {
			l->paused_until = now + wait;
			l->pauses++;
			overrun(n, l, now);
		}
		return true;
	}
	if (node_bucket_take(&l->msgs, 1, now) &&
	    node_bucket_take(&l->bytes, len, now))
		return true;
	l->msgs_dropped++;
	n->msgs_dropped++;
	overrun(n, l, now);
	return false;
}

bool node_link_paused(const node_link *l, uint64_t now_ms, uint64_t *wake_ms)
{
	if (now_ms >= l->paused_until)
		return false;
	if (l->paused_until < *wake_ms)
		*wake_ms = l->paused_until;
	return true;
}

bool node_is_banned(const node *n, const uint8_t key[NODE_KEY_LEN])
{
	return node_bans_active(&n->bans, NODE_BAN_KEY, key, NULL,
				cm_mono_ms()) != NULL;
}

void node_reject_log_flush(node_link *l, uint64_t second)
{
	if (l->log_second == second)
		return;
	if (l->log_suppressed)
		cm_warn(NODE_LOG, "suppressed %llu rejection lines from "
			"peer=%s", (unsigned long long)l->log_suppressed,
			l->short_key);
	l->log_second = second;
	l->log_lines = 0;
	l->log_suppressed = 0;
}

/*
 * True for the reasons that lower a peer's score: input that is malformed
 * or badly signed. Honest peers send records that are retracted, that
 * name another author's clip (a forged retraction they relayed) or that a
 * skewed clock dates in the future, so those reasons are only counted.
 */
static bool reason_is_hostile(cm_err reason)
{
	switch (reason) {
	case CM_ERR_FUTURE:
	case CM_ERR_RETRACTED:
	case CM_ERR_DUPLICATE:
	case CM_ERR_SUPERSEDED:
	case CM_ERR_NOT_AUTHOR:
	case CM_ERR_NOT_FOUND:
	case CM_ERR_MEDIA_MISSING:
	case CM_ERR_TIMEOUT:
	case CM_ERR_NOMEM:
	case CM_ERR_IO:
	case CM_ERR_STORE:
	case CM_ERR_STORE_FULL:
	case CM_ERR_ZMQ:
	case CM_ERR_CRYPTO:
	case CM_ERR_PEER_BANNED:
		return false;
	default:
		return true;
	}
}

void node_reject(node *n, node_link *l, const char *what, cm_err reason,
		 const uint8_t *id)
{
	uint64_t now = cm_mono_ms();
	char short_id[9] = "-";

	n->rejected[reason]++;
	if (l && id && strcmp(what, "record") == 0)
		node_sync_refused(n, l, id, reason);
	if (l) {
		cm_strlcpy(l->stats.last_error, cm_err_name(reason),
			   sizeof(l->stats.last_error));
		l->stats.last_error_ms = cm_now_ms();
		if (reason_is_hostile(reason) && !l->banned &&
		    node_score_lower(&l->score, CM_PEER_PENALTY_INVALID,
				     now) <= 0)
			ban(n, l, "too many invalid inputs");
		node_reject_log_flush(l, now / 1000);
		if (l->log_lines >= REJECT_LOG_LINES_PER_SECOND) {
			l->log_suppressed++;
			return;
		}
		l->log_lines++;
	}

	if (id)
		cm_hex_short(id, short_id);
	cm_warn(NODE_LOG, "rejected %s reason=%s id=%s peer=%s: %s", what,
		cm_err_name(reason), short_id, l ? l->short_key : "local",
		cm_err_detail());
}

void node_flush_rejected(node *n)
{
	char name[64];

	for (int code = 0; code < CM_ERR_COUNT; code++) {
		cm_err err;

		if (!n->rejected[code])
			continue;
		snprintf(name, sizeof(name), "rejected.%s",
			 cm_err_name((cm_err)code));
		err = store_counter_add(n->st, name, n->rejected[code]);
		if (err) {
			cm_error(NODE_LOG, "counting %s failed: %s (%s)", name,
				 cm_err_name(err), cm_err_detail());
			return; /* keep the counts for the next flush */
		}
		n->rejected[code] = 0;
	}
}

/* Returns a link of the peer with node key `key`, or NULL when none is
 * open. An outbound link's slot outlives its connection. */
static node_link *link_of_key(node *n, const uint8_t key[NODE_KEY_LEN])
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (l->used && memcmp(l->key, key, NODE_KEY_LEN) == 0)
			return l;
	}
	return NULL;
}

bool node_reject_sender(node *n, node_link *l, const uint8_t *key,
			const char *what, cm_err reason, const uint8_t *id)
{
	uint64_t second = cm_mono_ms() / 1000;
	char short_key[9], short_id[9] = "-";

	if (!l && key)
		l = link_of_key(n, key);
	if (l || !key) {
		node_reject(n, l, what, reason, id);
		return l && l->banned;
	}

	/* NOTE: a peer with no link left has no score to lower, because
	 * scores belong to links, so its input is only counted. */
	n->rejected[reason]++;
	if (n->unlinked_log_second != second) {
		if (n->unlinked_log_suppressed)
			cm_warn(NODE_LOG, "suppressed %llu rejection lines "
				"from disconnected peers",
				(unsigned long long)n->unlinked_log_suppressed);
		n->unlinked_log_second = second;
		n->unlinked_log_lines = 0;
		n->unlinked_log_suppressed = 0;
	}
	if (n->unlinked_log_lines >= REJECT_LOG_LINES_PER_SECOND) {
		n->unlinked_log_suppressed++;
		return false;
	}
	n->unlinked_log_lines++;
	cm_hex_short(key, short_key);
	if (id)
		cm_hex_short(id, short_id);
	cm_warn(NODE_LOG, "rejected %s reason=%s id=%s peer=%s (disconnected): "
		"%s", what, cm_err_name(reason), short_id, short_key,
		cm_err_detail());
	return false;
}
