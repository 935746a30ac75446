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
 * Both are direct-mapped caches of 64-bit id prefixes: a collision only
 * forgets an entry, which costs one extra announcement or request.
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

/* True while id was requested from a peer less than CM_GOSSIP_WANT_MS
 * ago; otherwise marks it requested now and returns false. */
static bool requested_recently(node *n, const uint8_t id[PROTO_ID_LEN],
			       uint64_t now)
{
	uint64_t p = id_prefix(id);
	struct node_want *w = &n->wants[p % NODE_WANTS];

	if (w->prefix == p && now < w->until)
		return true;
	w->prefix = p;
	w->until = now + CM_GOSSIP_WANT_MS;
	return false;
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
	uint8_t *want;
	size_t k = 0, len;
	uint8_t *buf;

	want = malloc(m->n_ids * PROTO_ID_LEN);
	if (!want)
		return;
	l->stats.announced_in += m->n_ids;
	for (size_t i = 0; i < m->n_ids; i++) {
		const uint8_t *id = m->ids + i * PROTO_ID_LEN;

		node_gossip_note_known(l, id);
		if (store_has(n->st, id) || store_is_retracted(n->st, id, NULL))
			continue;
		if (requested_recently(n, id, now))
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
	free(want);
}
