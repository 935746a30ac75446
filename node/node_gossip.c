/*
 * node_gossip.c - announce-then-fetch gossip of new records.
 *
 * A node that stores new records announces their ids in a HAVE to every
 * other peer that wants them; a peer requests the ones it lacks with a
 * WANT and receives their bodies in RECORDS. On a mesh each record body
 * then crosses each node's links about once, where pushing bodies to
 * every peer sent each node one copy per neighbour (bench/mesh.sh).
 *
 * Two small tables keep duplicates down:
 *   - per link, the ids the peer is known to hold (it announced them, sent
 *     them or received them from us), so they are not announced to it;
 *   - per node, the ids requested and not yet received, so that the
 *     announcements of several peers bring one request, not one each.
 *     When the peer asked does not deliver within CM_GOSSIP_WANT_MS,
 *     another peer that announced the id is asked, and a peer that
 *     often does not deliver cannot hold entries.
 * Both are direct-mapped caches of 64-bit id prefixes: a collision only
 * forgets an entry or skips it, which costs one extra announcement or
 * request. Announcements are looked up at most CM_GOSSIP_HAVE_RATE a
 * second in all, shared evenly among the links.
 * Records that a full queue or a lost message dropped come back by
 * reconciliation.
 */
#include "node_internal.h"

#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"

#define NODE_LOG "node"
#define GOSSIP_CHECK_MS 100    /* between two scans for expired requests */
#define GOSSIP_CHECK_BATCH 256 /* expired requests per store lookup */

static uint64_t id_prefix(const uint8_t id[PROTO_ID_LEN])
{
	uint64_t v;

	memcpy(&v, id, sizeof(v));
	return v | 1; /* 0 marks an empty slot */
}

void node_gossip_note_known(node_link *l, const uint8_t id[PROTO_ID_LEN])
{
	uint64_t p = id_prefix(id);

	l->known_ids[p % NODE_KNOWN_IDS] = p;
}

static bool link_knows(const node_link *l, const uint8_t id[PROTO_ID_LEN])
{
	uint64_t p = id_prefix(id);

	return l->known_ids[p % NODE_KNOWN_IDS] == p;
}

/* Names a link in a want entry: its index + 1, so that 0 is none. */
static uint16_t link_ref(const node *n, const node_link *l)
{
	return (uint16_t)(l - n->links + 1);
}

static uint64_t key_prefix(const node_link *l)
{
	uint64_t v;

	memcpy(&v, l->key, sizeof(v));
	return v;
}

/* Returns the link that `ref` and `key` name, or NULL when it is gone or
 * its slot now belongs to another peer. */
static node_link *link_named(node *n, uint16_t ref, uint64_t key)
{
	node_link *l;

	if (ref == 0)
		return NULL;
	l = &n->links[ref - 1];
	if (!l->used || !l->established || key_prefix(l) != key)
		return NULL;
	return l;
}

/* True when link l failed to send CM_GOSSIP_UNDELIVERED_MAX requested
 * records in the current minute. */
static bool link_unreliable(const node_link *l, uint64_t now)
{
	return l->undelivered_minute == now / 60000 &&
	       l->undelivered >= CM_GOSSIP_UNDELIVERED_MAX;
}

/* Counts a record that link l announced and did not send when asked. */
static void count_undelivered(node_link *l, uint64_t now)
{
	if (l->undelivered_minute != now / 60000) {
		l->undelivered_minute = now / 60000;
		l->undelivered = 0;
	}
	if (++l->undelivered == CM_GOSSIP_UNDELIVERED_MAX)
		cm_warn(NODE_LOG, "peer=%s did not send %d records it "
			"announced within %d ms each; until the minute ends "
			"its announcements do not hold back those of other "
			"peers", l->short_key, CM_GOSSIP_UNDELIVERED_MAX,
			CM_GOSSIP_WANT_MS);
}

/*
 * Decides whether to request id from link l now, and notes the request.
 * While the id is requested from another link (less than
 * CM_GOSSIP_WANT_MS ago) it is not requested again. l's known-id cache
 * now contains it, so want_expired can ask l if the other link does not
 * deliver. A link that often does not deliver (link_unreliable) gets no
 * entry, so it cannot hold back the announcements of other peers. An
 * entry still in use is never replaced by another id, so that a flood of
 * made-up ids cannot erase it. Such an id is requested without an entry.
 */
static bool should_request(node *n, node_link *l,
			   const uint8_t id[PROTO_ID_LEN], uint64_t now)
{
	uint64_t p = id_prefix(id);
	struct node_want *w = &n->wants[p % NODE_WANTS];
	bool in_use = now < w->until || w->check;

	if (w->prefix == p && in_use)
		return false;
	if ((w->prefix != 0 && in_use) || link_unreliable(l, now))
		return true;
	w->prefix = p;
	memcpy(w->id, id, PROTO_ID_LEN);
	w->until = now + CM_GOSSIP_WANT_MS;
	w->asked = link_ref(n, l);
	w->asked_key = key_prefix(l);
	w->tries = 1;
	w->check = true;
	n->wants_checking++;
	return true;
}

static void want_done(node *n, struct node_want *w)
{
	w->check = false;
	n->wants_checking--;
}

/* Returns the established link other than `late` that announced w's id
 * and missed the fewest requested records this minute, outbound links
 * (the peers the operator chose) first among equals; NULL when none. */
static node_link *pick_announcer(node *n, const struct node_want *w,
				 const node_link *late, uint64_t now)
{
	node_link *best = NULL;
	uint64_t best_score = UINT64_MAX;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];
		uint64_t misses, score;

		if (!l->used || !l->established || l == late ||
		    !link_knows(l, w->id))
			continue;
		misses = l->undelivered_minute == now / 60000 ?
				 l->undelivered : 0;
		score = 2 * misses + (l->dir == NODE_LINK_IN);
		if (score < best_score) {
			best = l;
			best_score = score;
		}
	}
	return best;
}

/* Handles an entry whose request expired: done when the record arrived;
 * otherwise counts the miss against the link asked and asks another
 * link that announced the id, up to CM_GOSSIP_WANT_TRIES links. */
static void want_expired(node *n, struct node_want *w, bool lacks,
			 uint64_t now)
{
	node_link *late = link_named(n, w->asked, w->asked_key);
	node_link *next;
	size_t len;
	uint8_t *buf;

	/* While the store is full, incoming records are dropped, so a
	 * missing record is no peer's fault. */
	if (!lacks || n->store_full) {
		want_done(n, w);
		return;
	}
	if (late)
		count_undelivered(late, now);
	next = w->tries < CM_GOSSIP_WANT_TRIES ?
		       pick_announcer(n, w, late, now) : NULL;
	if (next == NULL) {
		want_done(n, w); /* reconciliation brings it */
		return;
	}
	w->asked = link_ref(n, next);
	w->asked_key = key_prefix(next);
	w->tries++;
	w->until = now + CM_GOSSIP_WANT_MS;
	if (proto_wire_ids(PROTO_WIRE_WANT, w->id, 1, &buf, &len) != CM_OK)
		return;
	cm_debug(NODE_LOG, "peer=%s did not send an announced record within "
		 "%d ms; asking peer=%s", late ? late->short_key : "?",
		 CM_GOSSIP_WANT_MS, next->short_key);
	node_link_send(n, next, buf, len);
}

/* Checks up to GOSSIP_CHECK_BATCH expired entries from index *next on,
 * with one store lookup for all of them. */
static void check_expired(node *n, size_t *next, uint64_t now)
{
	struct node_want *due[GOSSIP_CHECK_BATCH];
	uint8_t ids[GOSSIP_CHECK_BATCH * PROTO_ID_LEN];
	bool lacks[GOSSIP_CHECK_BATCH];
	size_t k = 0;

	for (; *next < NODE_WANTS && k < GOSSIP_CHECK_BATCH; (*next)++) {
		struct node_want *w = &n->wants[*next];

		if (!w->check || now < w->until)
			continue;
		memcpy(ids + k * PROTO_ID_LEN, w->id, PROTO_ID_LEN);
		due[k++] = w;
	}
	if (k == 0 || store_lacks(n->st, ids, k, lacks) != CM_OK)
		return;
	for (size_t i = 0; i < k; i++)
		want_expired(n, due[i], lacks[i], now);
}

void node_gossip_received(node *n, const uint8_t id[PROTO_ID_LEN])
{
	uint64_t p = id_prefix(id);
	struct node_want *w = &n->wants[p % NODE_WANTS];

	if (w->prefix == p && w->check)
		want_done(n, w);
}

void node_gossip_tick(node *n)
{
	uint64_t now = cm_mono_ms();
	size_t next = 0;

	if (n->wants_checking == 0 || now < n->wants_next_check)
		return;
	n->wants_next_check = now + GOSSIP_CHECK_MS;
	while (next < NODE_WANTS)
		check_expired(n, &next, now);
}

/* Returns link l's share of the node's CM_GOSSIP_HAVE_RATE lookups a
 * second: an even part over the established links, at least
 * CM_GOSSIP_HAVE_SHARE_MIN. */
static uint64_t have_share(const node *n)
{
	uint64_t links = 0, share;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++)
		if (n->links[i].used && n->links[i].established)
			links++;
	share = CM_GOSSIP_HAVE_RATE / (links ? links : 1);
	return share > CM_GOSSIP_HAVE_SHARE_MIN ? share
						: CM_GOSSIP_HAVE_SHARE_MIN;
}

/* Returns how many of `count` announced ids the node looks up for link
 * l: at most the link's share a second, so that peers sending HAVEs of
 * made-up ids as fast as they can, from one key or from many, do not
 * hold the node's loop. */
static size_t have_allowance(const node *n, node_link *l, size_t count,
			     uint64_t now)
{
	uint64_t second = now / 1000;
	size_t take;

	if (second != l->have_second) {
		l->have_second = second;
		l->have_budget = have_share(n);
	}
	take = count < l->have_budget ? count : (size_t)l->have_budget;
	l->have_budget -= take;
	return take;
}

/* Sends a HAVE of the records of recs[count] that link l wants and is
 * not known to hold. */
static void announce_to(node *n, node_link *l, const proto_signed *recs,
			size_t count, uint8_t *ids)
{
	size_t k = 0, len;
	uint8_t *buf;

	for (size_t i = 0; i < count && k < CM_WIRE_IDS_MAX; i++) {
		if (!node_link_wants(l, recs[i].rec.author) ||
		    link_knows(l, recs[i].id))
			continue;
		memcpy(ids + k * PROTO_ID_LEN, recs[i].id, PROTO_ID_LEN);
		node_gossip_note_known(l, recs[i].id);
		k++;
	}
	if (k == 0)
		return;
	if (proto_wire_ids(PROTO_WIRE_HAVE, ids, k, &buf, &len) != CM_OK)
		return;
	if (node_link_send(n, l, buf, len) == CM_OK)
		l->stats.announced_out += k;
	else
		cm_debug(NODE_LOG, "announcing %zu records to peer=%s failed; "
			 "reconciliation brings them", k, l->short_key);
}

void node_gossip_push(node *n, node_link *from, const proto_signed *recs,
		      size_t count)
{
	uint8_t ids[CM_WIRE_BATCH_MAX * PROTO_ID_LEN];

	for (size_t done = 0; done < count; done += CM_WIRE_BATCH_MAX) {
		size_t part = count - done;

		if (part > CM_WIRE_BATCH_MAX)
			part = CM_WIRE_BATCH_MAX;
		for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
			node_link *l = &n->links[i];

			if (!l->used || !l->established || l == from)
				continue;
			if (from &&
			    memcmp(l->key, from->key, NODE_KEY_LEN) == 0)
				continue;
			if (!node_link_is_primary(n, l))
				continue;
			announce_to(n, l, recs + done, part, ids);
		}
	}
}

void node_gossip_on_have(node *n, node_link *l, const proto_wire_msg *m)
{
	uint64_t now = cm_mono_ms();
	size_t k = 0, len, allowed;
	uint8_t *want = NULL;
	bool *lacks = NULL;
	uint8_t *buf;

	l->stats.announced_in += m->n_ids;
	for (size_t i = 0; i < m->n_ids; i++)
		node_gossip_note_known(l, m->ids + i * PROTO_ID_LEN);
	allowed = have_allowance(n, l, m->n_ids, now);
	if (allowed < m->n_ids)
		cm_debug(NODE_LOG, "peer=%s announced %zu records over its "
			 "share of %d a second; reconciliation brings them",
			 l->short_key, m->n_ids - allowed,
			 CM_GOSSIP_HAVE_RATE);
	if (allowed == 0)
		return;
	want = malloc(allowed * PROTO_ID_LEN);
	lacks = malloc(allowed * sizeof(*lacks));
	if (!want || !lacks ||
	    store_lacks(n->st, m->ids, allowed, lacks) != CM_OK)
		goto out;
	for (size_t i = 0; i < allowed; i++) {
		const uint8_t *id = m->ids + i * PROTO_ID_LEN;

		if (!lacks[i] || !should_request(n, l, id, now))
			continue;
		memcpy(want + k * PROTO_ID_LEN, id, PROTO_ID_LEN);
		k++;
	}

	if (k > 0 && proto_wire_ids(PROTO_WIRE_WANT, want, k, &buf, &len) ==
			     CM_OK) {
		cm_debug(NODE_LOG, "asking peer=%s for %zu of %zu records",
			 l->short_key, k, m->n_ids);
		node_link_send(n, l, buf, len);
	}
out:
	free(lacks);
	free(want);
}
