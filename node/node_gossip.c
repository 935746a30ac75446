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
 *     When the peer asked first does not deliver within
 *     CM_GOSSIP_WANT_MS, another peer that announced the id is asked.
 * Both are direct-mapped caches of 64-bit id prefixes: a collision only
 * forgets an entry or skips it, which costs one extra announcement or
 * request. A peer's announcements are looked up at most
 * CM_GOSSIP_HAVE_RATE a second.
 * Records that a full queue or a lost message dropped come back by
 * reconciliation.
 */
#include "node_internal.h"

#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"

#define NODE_LOG "node"

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

/*
 * Decides whether to request id from link l now, and notes the request.
 * While the id is requested from another link (less than
 * CM_GOSSIP_WANT_MS ago), l is kept as the link to ask when that one
 * does not deliver. So a peer that announces ids and never sends them
 * delays a record by CM_GOSSIP_WANT_MS, not until reconciliation. An
 * entry still in use is never replaced by another id, so that a flood of
 * made-up ids cannot erase it. Such an id is requested without an entry.
 */
static bool should_request(node *n, node_link *l,
			   const uint8_t id[PROTO_ID_LEN], uint64_t now)
{
	uint64_t p = id_prefix(id);
	struct node_want *w = &n->wants[p % NODE_WANTS];
	uint16_t ref = link_ref(n, l);
	bool in_use = now < w->until || w->other != 0;

	if (w->prefix == p && in_use) {
		if (w->other == 0 && w->asked != ref) {
			w->other = ref;
			w->other_key = key_prefix(l);
			n->wants_waiting++;
		}
		return false;
	}
	if (w->prefix != 0 && in_use)
		return true;
	w->prefix = p;
	memcpy(w->id, id, PROTO_ID_LEN);
	w->until = now + CM_GOSSIP_WANT_MS;
	w->asked = ref;
	return true;
}

/* Requests the id of an expired entry from the other link that
 * announced it, unless that link is gone or the id arrived. */
static void request_from_other(node *n, struct node_want *w, uint64_t now)
{
	node_link *l = &n->links[w->other - 1];
	node_link *late = w->asked ? &n->links[w->asked - 1] : NULL;
	uint64_t other_key = w->other_key;
	size_t len;
	uint8_t *buf;

	w->asked = w->other;
	w->other = 0;
	w->until = now + CM_GOSSIP_WANT_MS;
	n->wants_waiting--;
	if (!l->used || !l->established || key_prefix(l) != other_key)
		return;
	if (store_has(n->st, w->id) || store_is_retracted(n->st, w->id, NULL))
		return;
	if (proto_wire_ids(PROTO_WIRE_WANT, w->id, 1, &buf, &len) != CM_OK)
		return;
	cm_debug(NODE_LOG, "peer=%s did not send an announced record within "
		 "%d ms; asking peer=%s", late ? late->short_key : "?",
		 CM_GOSSIP_WANT_MS, l->short_key);
	node_link_send(n, l, buf, len);
}

void node_gossip_tick(node *n)
{
	uint64_t now;

	if (n->wants_waiting == 0)
		return;
	now = cm_mono_ms();
	for (size_t i = 0; i < NODE_WANTS && n->wants_waiting > 0; i++) {
		struct node_want *w = &n->wants[i];

		if (w->other != 0 && now >= w->until)
			request_from_other(n, w, now);
	}
}

/* Returns how many of `count` announced ids the node looks up for link
 * l: at most CM_GOSSIP_HAVE_RATE a second, so that a peer sending HAVEs
 * of made-up ids as fast as it can does not hold the node's loop. */
static size_t have_allowance(node_link *l, size_t count, uint64_t now)
{
	uint64_t second = now / 1000;
	size_t take;

	if (second != l->have_second) {
		l->have_second = second;
		l->have_budget = CM_GOSSIP_HAVE_RATE;
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
	allowed = have_allowance(l, m->n_ids, now);
	if (allowed < m->n_ids)
		cm_debug(NODE_LOG, "peer=%s announced %zu records over %d a "
			 "second; reconciliation brings them",
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
