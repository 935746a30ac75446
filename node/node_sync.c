/*
 * node_sync.c - catch-up between two connected nodes.
 *
 * After the handshake, and every CM_SYNC_INTERVAL_MS after that, each side
 * announces the ids of all its records within the peer's interest in HAVE
 * pages. The peer responds to each page with a WANT of the ids that it
 * neither stores nor has seen retracted, and receives those records in
 * RECORDS.
 *
 * NOTE: traffic and the id snapshot grow with the store, not with the
 * difference between the two stores. Range-based set reconciliation over
 * (time, id) is to replace this file.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

typedef struct id_list {
	uint8_t *ids;
	size_t n;
	size_t cap;
} id_list;

static int add_id(void *ctx, const uint8_t id[PROTO_ID_LEN],
		  const uint8_t *wire, size_t len)
{
	id_list *list = ctx;

	(void)wire;
	(void)len;
	if (list->n == list->cap) {
		size_t cap = list->cap ? 2 * list->cap : 1024;
		uint8_t *ids = realloc(list->ids, cap * PROTO_ID_LEN);

		if (!ids)
			return 1;
		list->ids = ids;
		list->cap = cap;
	}
	memcpy(list->ids + list->n * PROTO_ID_LEN, id, PROTO_ID_LEN);
	list->n++;
	return 0;
}

void node_sync_start(node *n, node_link *l)
{
	id_list list = {0};
	cm_err err;

	free(l->have_ids);
	l->have_ids = NULL;
	l->have_n = l->have_pos = 0;
	l->next_sync = cm_mono_ms() + CM_SYNC_INTERVAL_MS;
	if (!l->interest_all && l->n_interest == 0)
		return;

	err = store_scan(n->st, l->interest_all ? NULL : l->interest,
			 l->n_interest, add_id, &list);
	if (err) {
		cm_error(NODE_LOG, "listing records for peer=%s failed: %s "
			 "(%s)", l->short_key, cm_err_name(err),
			 cm_err_detail());
		free(list.ids);
		return;
	}
	l->have_ids = list.ids;
	l->have_n = list.n;
	cm_debug(NODE_LOG, "catch-up with peer=%s: announcing %zu records",
		 l->short_key, list.n);
	node_sync_tick(n, l);
}

void node_sync_tick(node *n, node_link *l)
{
	if (cm_mono_ms() >= l->next_sync) {
		node_sync_start(n, l);
		return;
	}

	while (l->have_pos < l->have_n) {
		size_t page = l->have_n - l->have_pos, len;
		uint8_t *buf;

		if (page > CM_WIRE_IDS_MAX)
			page = CM_WIRE_IDS_MAX;
		if (proto_wire_ids(PROTO_WIRE_HAVE,
				   l->have_ids + l->have_pos * PROTO_ID_LEN,
				   page, &buf, &len))
			return;
		if (node_link_send(n, l, buf, len))
			return; /* queue full: the next tick retries */
		l->have_pos += page;
	}
	free(l->have_ids);
	l->have_ids = NULL;
	l->have_n = l->have_pos = 0;
}

void node_sync_on_have(node *n, node_link *l, const proto_wire_msg *m)
{
	uint8_t *want;
	size_t k = 0, len;
	uint8_t *buf;

	want = malloc(m->n_ids * PROTO_ID_LEN);
	if (!want)
		return;
	for (size_t i = 0; i < m->n_ids; i++) {
		const uint8_t *id = m->ids + i * PROTO_ID_LEN;

		if (store_has(n->st, id) || store_is_retracted(n->st, id, NULL))
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

/* Sends up to CM_WIRE_BATCH_MAX requested records in one RECORDS. */
static cm_err send_page(node *n, node_link *l, const uint8_t *ids,
			size_t count)
{
	uint8_t *wires[CM_WIRE_BATCH_MAX];
	size_t k = 0;
	cm_err err;

	for (size_t i = 0; i < count; i++) {
		if (node_load_record(n, ids + i * PROTO_ID_LEN, &wires[k],
				     &n->batch[k]))
			continue; /* not stored, or retracted since */
		k++;
	}
	err = node_send_records(n, l, n->batch, k);
	for (size_t i = 0; i < k; i++)
		free(wires[i]);
	return err;
}

/* Stops at the first page that does not fit in the peer's queue, so that
 * a peer that requests more than it reads costs little work. */
void node_sync_on_want(node *n, node_link *l, const proto_wire_msg *m)
{
	for (size_t done = 0; done < m->n_ids; done += CM_WIRE_BATCH_MAX) {
		size_t page = m->n_ids - done;

		if (page > CM_WIRE_BATCH_MAX)
			page = CM_WIRE_BATCH_MAX;
		if (send_page(n, l, m->ids + done * PROTO_ID_LEN, page))
			return;
	}
}
