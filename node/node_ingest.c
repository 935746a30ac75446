/*
 * node_ingest.c - the node's interest, records arriving from peers or from
 * the CLI, and the push of newly stored records to other peers.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_home.h"
#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"
#include "proto_batch.h"

/* A growing list of keys. */
typedef struct key_list {
	uint8_t *keys;
	size_t n;
	size_t cap;
	bool failed;
} key_list;

static void key_list_add(key_list *kl, const uint8_t *key)
{
	if (cm_array_reserve((void **)&kl->keys, &kl->cap, kl->n + 1,
			     PROTO_KEY_LEN)) {
		kl->failed = true;
		return;
	}
	memcpy(kl->keys + kl->n * PROTO_KEY_LEN, key, PROTO_KEY_LEN);
	kl->n++;
}

static int add_identity(void *ctx, const char *name,
			const uint8_t public_key[32])
{
	(void)name;
	key_list_add(ctx, public_key);
	return 0;
}

/* Collects our identities and followed keys, sorted and unique. */
static cm_err collect_interest(node *n, key_list *kl)
{
	uint8_t *follows = NULL;
	size_t n_follows = 0;
	cm_err err;

	err = cm_key_list(n->cfg->home, add_identity, kl);
	if (err)
		goto out;
	err = store_following(n->st, &follows, &n_follows);
	if (err)
		goto out;
	for (size_t i = 0; i < n_follows; i++)
		key_list_add(kl, follows + i * PROTO_KEY_LEN);
	if (kl->failed) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	kl->n = node_keys_sort(kl->keys, kl->n);
out:
	free(follows);
	return err;
}

void node_interest_refresh(node *n, bool force)
{
	key_list kl = {0};
	uint64_t now = cm_mono_ms();
	cm_err err;

	if (!force && now < n->next_interest)
		return;
	n->next_interest = now + CM_PING_INTERVAL_MS;
	if (n->cfg->role == NODE_ROLE_MIRROR) {
		n->interest_all = true;
		return;
	}

	err = collect_interest(n, &kl);
	if (err) {
		cm_error(NODE_LOG, "reading identities and follows failed: "
			 "%s (%s)", cm_err_name(err), cm_err_detail());
		free(kl.keys);
		return;
	}
	if (kl.n > CM_WIRE_FOLLOWS_MAX) {
		/* NOTE: authors past the limit get no records from peers. */
		cm_warn(NODE_LOG, "%zu identities and follows, only the first "
			"%d are announced", kl.n, CM_WIRE_FOLLOWS_MAX);
		kl.n = CM_WIRE_FOLLOWS_MAX;
	}
	if (kl.n == n->n_interest &&
	    (kl.n == 0 || memcmp(kl.keys, n->interest,
				 kl.n * PROTO_KEY_LEN) == 0)) {
		free(kl.keys);
		return;
	}

	free(n->interest);
	n->interest = kl.keys;
	n->n_interest = kl.n;
	cm_info(NODE_LOG, "interest is now %zu author%s", kl.n,
		kl.n == 1 ? "" : "s");
	if (!force)
		node_links_rehello(n);
}

bool node_wants(const node *n, const uint8_t author[PROTO_KEY_LEN])
{
	return n->interest_all ||
	       node_keys_contain(n->interest, n->n_interest, author);
}

cm_err node_send_records(node *n, node_link *l, const proto_signed *recs,
			 size_t count)
{
	const uint8_t *wires[CM_WIRE_BATCH_MAX];
	size_t lens[CM_WIRE_BATCH_MAX];
	size_t k = 0, len;
	uint8_t *buf;
	cm_err err;

	for (size_t i = 0; i < count && k < CM_WIRE_BATCH_MAX; i++) {
		if (!node_link_wants(l, recs[i].rec.author))
			continue;
		wires[k] = recs[i].wire;
		lens[k] = recs[i].wire_len;
		node_gossip_note_known(l, recs[i].id);
		k++;
	}
	if (k == 0)
		return CM_OK;
	err = proto_wire_records(wires, lens, k, &buf, &len);
	if (err)
		return err;
	err = node_link_send(n, l, buf, len);
	if (err == CM_OK)
		l->stats.records_out += k;
	else
		cm_debug(NODE_LOG, "sending %zu records to peer=%s failed: %s; "
			 "catch-up sends them later", k, l->short_key,
			 cm_err_name(err));
	return err;
}

static void after_store(node *n, node_link *from, const proto_signed *recs,
			size_t count)
{
	node_gossip_push(n, from, recs, count);
	for (size_t i = 0; i < count; i++)
		if (recs[i].rec.kind == PROTO_KIND_CLIP)
			node_media_want(n, from, &recs[i]);
}

/* Computes the id of an unverified record for a log line, when its
 * envelope is readable. */
static const uint8_t *try_id(const uint8_t *wire, size_t len,
			     uint8_t id[PROTO_ID_LEN])
{
	const uint8_t *body;
	size_t body_len;

	if (!node_record_body(wire, len, &body, &body_len))
		return NULL;
	proto_record_id(body, body_len, id);
	return id;
}

/* Counts the records of a message from a banned sender, from index
 * `first` on, as rejected. */
static void drop_banned(node *n, const uint8_t *key, size_t first,
			size_t count)
{
	char short_key[9];

	if (first >= count)
		return;
	n->rejected[CM_ERR_PEER_BANNED] += count - first;
	cm_hex_short(key, short_key);
	cm_debug(NODE_LOG, "dropped %zu records from peer=%s: the peer is "
		 "banned", count - first, short_key);
}

/* Keeps the valid and wanted records of one message at the front of out,
 * rejects and counts the others, and returns how many it kept. A ban that
 * a rejection causes drops the records after it. */
static size_t keep_wanted(node *n, node_link *from, const uint8_t *key,
			  const uint8_t *const *wires, const size_t *lens,
			  proto_signed *out, const proto_open_result *results,
			  size_t count)
{
	size_t k = 0;

	for (size_t i = 0; i < count; i++) {
		proto_signed *rec = &out[i];
		uint8_t id[PROTO_ID_LEN];
		char short_id[9], short_author[9];

		if (results[i].err) {
			cm_errf(results[i].err, "%s", results[i].detail);
			if (node_reject_sender(n, from, key, "record",
					       results[i].err,
					       try_id(wires[i], lens[i], id))) {
				drop_banned(n, key, i + 1, count);
				break;
			}
			continue;
		}
		if (!node_wants(n, rec->rec.author)) {
			node_gossip_received(n, rec->id);
			cm_hex_short(rec->id, short_id);
			cm_hex_short(rec->rec.author, short_author);
			cm_debug(NODE_LOG, "ignored record id=%s author=%s "
				 "from peer=%s: not followed", short_id,
				 short_author, from ? from->short_key : "-");
			continue;
		}
		if (k != i)
			out[k] = *rec;
		k++;
	}
	return k;
}

/* Moves the records that store_put_batch added to the front of recs and
 * handles the others; returns how many were added. */
static size_t keep_added(node *n, node_link *from, const uint8_t *key,
			 proto_signed *recs, const cm_err *results,
			 size_t count)
{
	size_t fresh = 0;
	char short_id[9];

	for (size_t i = 0; i < count; i++) {
		cm_err result = results[i];

		if (result == CM_OK) {
			if (fresh != i)
				recs[fresh] = recs[i];
			fresh++;
		} else if (result == CM_ERR_DUPLICATE ||
			   result == CM_ERR_SUPERSEDED) {
			/* Normal in gossip: a record that came by two paths,
			 * or a profile that a newer one replaced. */
			if (from != NULL)
				from->stats.duplicates_in++;
			cm_hex_short(recs[i].id, short_id);
			cm_debug(NODE_LOG, "record id=%s not stored: %s",
				 short_id, cm_err_name(result));
		} else {
			cm_err_clear();
			(void)node_reject_sender(n, from, key, "record",
						 result, recs[i].id);
		}
	}
	return fresh;
}

/* Returns the peer's short key for log lines, or a placeholder when its
 * link dropped while the records waited for the writer. */
static const char *link_name(const node_link *from)
{
	return from ? from->short_key : "(disconnected)";
}

/*
 * Handles records that the store could not write because its map or
 * disk is full. LMDB reports a short write on a full disk as an I/O
 * error, so err is CM_ERR_STORE_FULL or CM_ERR_IO. Logs once when writes
 * start failing, counts the dropped records and stops writing until
 * CM_STORE_FULL_RETRY_MS has passed. Reads and serving go on.
 */
static void store_full(node *n, const node_link *from, size_t count,
		       cm_err err)
{
	if (!n->store_full)
		cm_error(NODE_LOG,
			 "store is full or failing, records from peers are "
			 "dropped until a write succeeds: %s (%s). Free disk "
			 "space or raise the map size; the node keeps serving "
			 "and fetches the dropped records again by "
			 "reconciliation",
			 cm_err_name(err), cm_err_detail());
	cm_debug(NODE_LOG, "dropped %zu records from peer=%s: %s", count,
		 link_name(from), cm_err_name(err));
	n->store_full = true;
	n->store_retry_at = cm_mono_ms() + CM_STORE_FULL_RETRY_MS;
	n->rejected[CM_ERR_STORE_FULL] += count;
	cm_err_clear();
}

/* Handles the records of one message after their write transaction
 * ended (node_record_settle_fn). */
static void settle_records(void *ctx, node_link *from, const uint8_t *key,
			   proto_signed *recs, cm_err *results, size_t count,
			   cm_err err, const char *detail)
{
	node *n = ctx;
	size_t fresh;

	if (err == CM_ERR_STORE_FULL || err == CM_ERR_IO) {
		cm_errf(err, "%s", detail);
		store_full(n, from, count, err);
		return;
	}
	if (err) {
		cm_error(NODE_LOG, "storing %zu records from peer=%s failed: "
			 "%s (%s)", count, link_name(from), cm_err_name(err),
			 detail);
		return;
	}
	/* Batches queued before a failure may still commit, as the failed
	 * one may have been the larger. Only a commit after the pause ends
	 * the full state, so that one failure gets one log line. */
	if (n->store_full && cm_mono_ms() >= n->store_retry_at) {
		n->store_full = false;
		cm_info(NODE_LOG, "store accepts records again");
	}

	for (size_t i = 0; from && i < count; i++)
		node_gossip_note_known(from, recs[i].id);
	fresh = keep_added(n, from, key, recs, results, count);
	if (from)
		from->stats.records_in += fresh;
	if (fresh) {
		cm_debug(NODE_LOG, "stored %zu records from peer=%s", fresh,
			 link_name(from));
		after_store(n, from, recs, fresh);
	}
}

/* Queues the valid and wanted records of a verified message for the
 * record writer (node_verified_fn). */
static void verified_records(void *ctx, node_link *from, const uint8_t *key,
			     void *msg, const uint8_t *const *wires,
			     const size_t *lens, proto_signed *out,
			     const proto_open_result *results, size_t count)
{
	node *n = ctx;
	cm_err err;

	count = keep_wanted(n, from, key, wires, lens, out, results, count);
	if (count == 0)
		return;
	if (n->store_full && cm_mono_ms() < n->store_retry_at) {
		n->rejected[CM_ERR_STORE_FULL] += count;
		return;
	}
	err = node_record_writer_put(n->record_writer, from, msg, out, count,
				     settle_records, n);
	if (err)
		cm_error(NODE_LOG, "queueing %zu records from peer=%s failed: "
			 "%s (%s)", count, link_name(from), cm_err_name(err),
			 cm_err_detail());
}

void node_ingest(node *n, node_link *from, const proto_wire_msg *m)
{
	proto_open_result results[CM_WIRE_BATCH_MAX];

	if (m->n_records == 0)
		return;
	if (node_verifier_put(n->verifier, from, n->rx_msg, m, cm_now_ms(),
			      verified_records, n) == CM_OK)
		return;
	/* Without room to keep the message, verify it here. */
	cm_err_clear();
	proto_open_batch(m->records, m->record_lens, m->n_records,
			 cm_now_ms(), 1, n->batch, results);
	verified_records(n, from, from ? from->key : NULL, n->rx_msg,
			 m->records, m->record_lens, n->batch, results,
			 m->n_records);
}

cm_err node_ingest_start(node *n)
{
	cm_err err;

	n->batch = calloc(CM_WIRE_BATCH_MAX, sizeof(*n->batch));
	if (!n->batch)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a batch of %d "
			       "records", CM_WIRE_BATCH_MAX);
	err = node_record_writer_start(n->st, &n->record_writer);
	if (!err)
		err = node_verifier_start(&n->verifier);
	return err;
}

void node_ingest_stop(node *n)
{
	node_verifier_stop(&n->verifier);
	node_record_writer_stop(&n->record_writer);
	free(n->batch);
	n->batch = NULL;
}

int node_ingest_wake_fd(const node *n)
{
	return node_record_writer_fd(n->record_writer);
}

int node_ingest_verify_fd(const node *n)
{
	return node_verifier_fd(n->verifier);
}

bool node_ingest_full(const node *n)
{
	return node_verifier_full(n->verifier);
}

void node_ingest_collect(node *n)
{
	if (n->verifier)
		node_verifier_collect(n->verifier, verified_records, n);
	if (n->record_writer)
		node_record_writer_collect(n->record_writer, settle_records, n);
}

void node_ingest_on_link_down(node *n, node_link *l)
{
	node_verifier_forget(n->verifier, l);
	node_record_writer_forget(n->record_writer, l);
}

size_t node_ingest_drop_key(node *n, const uint8_t key[NODE_KEY_LEN])
{
	size_t dropped = node_verifier_drop(n->verifier, key);

	n->rejected[CM_ERR_PEER_BANNED] += dropped;
	return dropped;
}

void node_ingest_flush_link(node *n, node_link *l)
{
	if (n->verifier)
		node_verifier_flush(n->verifier, l, verified_records, n);
	if (n->record_writer)
		node_record_writer_flush(n->record_writer, l, settle_records,
					 n);
}

cm_err node_load_record(node *n, const uint8_t id[PROTO_ID_LEN],
			uint8_t **wire, proto_signed *out)
{
	uint8_t computed[PROTO_ID_LEN];
	char hex[2 * PROTO_ID_LEN + 1];
	const uint8_t *body;
	size_t len, body_len;
	cm_err err;

	err = store_get(n->st, id, wire, &len);
	if (err)
		return err;
	if (!node_record_body(*wire, len, &body, &body_len)) {
		err = cm_errf(CM_ERR_STORE, "stored record has no envelope");
		goto fail;
	}
	/* A body that a damaged disk changed would make peers reject the
	 * record and lower this node's score. */
	proto_record_id(body, body_len, computed);
	if (memcmp(computed, id, PROTO_ID_LEN) != 0) {
		cm_hex_encode(id, PROTO_ID_LEN, hex);
		cm_error(NODE_LOG, "stored record %.16s no longer hashes to its "
			 "id, not sent; run 'clipmesh store check'", hex);
		err = cm_errf(CM_ERR_STORE, "stored record changed on disk");
		goto fail;
	}
	err = proto_body_read_stored(body, body_len, &out->rec);
	if (err)
		goto fail;
	memcpy(out->id, id, PROTO_ID_LEN);
	memcpy(out->sig, body + body_len + 2, PROTO_SIG_LEN);
	out->wire = *wire;
	out->wire_len = len;
	return CM_OK;
fail:
	free(*wire);
	*wire = NULL;
	return err;
}

void node_ingest_local(node *n, const uint8_t *ids, size_t count)
{
	uint8_t *wires[CM_WIRE_BATCH_MAX];
	size_t done = 0;

	while (done < count) {
		size_t k = 0, page = count - done;

		if (page > CM_WIRE_BATCH_MAX)
			page = CM_WIRE_BATCH_MAX;
		for (size_t i = 0; i < page; i++) {
			const uint8_t *id = ids + (done + i) * PROTO_ID_LEN;
			char short_id[9];
			cm_err err;

			err = node_load_record(n, id, &wires[k], &n->batch[k]);
			if (err) {
				cm_hex_short(id, short_id);
				cm_warn(NODE_LOG, "announced record id=%s not "
					"readable: %s", short_id,
					cm_err_name(err));
				continue;
			}
			k++;
		}
		after_store(n, NULL, n->batch, k);
		for (size_t i = 0; i < k; i++)
			free(wires[i]);
		done += page;
	}
}

/* Reads a bin8 or bin16 header at p, with n bytes left. Returns the header
 * size and sets *len, or returns 0 when p has no such header. */
static size_t bin_header(const uint8_t *p, size_t n, size_t *len)
{
	if (n >= 2 && p[0] == 0xc4) {
		*len = p[1];
		return 2;
	}
	if (n >= 3 && p[0] == 0xc5) {
		*len = (size_t)p[1] << 8 | p[2];
		return 3;
	}
	return 0;
}

bool node_record_body(const uint8_t *wire, size_t len, const uint8_t **body,
		      size_t *body_len)
{
	size_t head, sig_head, sig_len;

	if (len < 1 || wire[0] != 0x92)
		return false;
	head = bin_header(wire + 1, len - 1, body_len);
	if (head == 0 || *body_len > len - 1 - head)
		return false;
	*body = wire + 1 + head;

	sig_head = bin_header(*body + *body_len, len - 1 - head - *body_len,
			      &sig_len);
	return sig_head == 2 && sig_len == PROTO_SIG_LEN &&
	       1 + head + *body_len + sig_head + sig_len == len;
}

static int key_compare(const void *a, const void *b)
{
	return memcmp(a, b, NODE_KEY_LEN);
}

size_t node_keys_sort(uint8_t *keys, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort(keys, n, NODE_KEY_LEN, key_compare);
	for (size_t i = 1; i < n; i++) {
		if (memcmp(keys + i * NODE_KEY_LEN, keys + k * NODE_KEY_LEN,
			   NODE_KEY_LEN) == 0)
			continue;
		k++;
		memmove(keys + k * NODE_KEY_LEN, keys + i * NODE_KEY_LEN,
			NODE_KEY_LEN);
	}
	return k + 1;
}

bool node_keys_contain(const uint8_t *keys, size_t n, const uint8_t *key)
{
	if (n == 0)
		return false;
	return bsearch(key, keys, n, NODE_KEY_LEN, key_compare) != NULL;
}
