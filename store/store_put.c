/*
 * store_put.c - adding records: index entries, retractions and profile
 * replacement, all inside the one write transaction of a batch.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "cm_util.h"

static void retracted_key(uint8_t out[STORE_RETRACTED_KEY_LEN],
			  const uint8_t target[PROTO_ID_LEN],
			  const uint8_t author[PROTO_KEY_LEN],
			  const uint8_t retraction[PROTO_ID_LEN])
{
	memcpy(out, target, PROTO_ID_LEN);
	memcpy(out + PROTO_ID_LEN, author, PROTO_KEY_LEN);
	memcpy(out + PROTO_ID_LEN + PROTO_KEY_LEN, retraction, PROTO_ID_LEN);
}

/* Stores the wire bytes and time-ordered index entries of r. Its media
 * reference entries follow later (store_mrefs_catch_up). */
static cm_err add_record(store *s, MDB_txn *txn, const proto_signed *r)
{
	store_index_entry entries[STORE_INDEX_ENTRIES_MAX];
	size_t n;
	cm_err err;

	err = store_db_put(s, txn, STORE_DB_RECORDS, r->id, PROTO_ID_LEN,
			   r->wire, r->wire_len, MDB_NOOVERWRITE);
	if (err == CM_ERR_EXISTS)
		return cm_errf(CM_ERR_STORE,
			       "record absent at lookup is present at insert");
	if (err)
		return err;

	n = store_index_entries(&r->rec, r->id, entries);
	for (size_t i = 0; i < n; i++) {
		err = store_db_put(s, txn, entries[i].db, entries[i].key,
				   entries[i].key_len, &entries[i].value,
				   entries[i].value_len, 0);
		if (err)
			return err;
	}
	err = store_log_append(s, txn, r->id);
	if (err)
		return err;
	return store_fp_note(s, &r->rec, r->id, false);
}

/* Deletes stored record id, decoded as rec, with every entry that points
 * to it. The media of a deleted clip is freed unless another stored clip
 * lists it (store_media_refs_txn). */
static cm_err remove_record(store *s, MDB_txn *txn,
			    const uint8_t id[PROTO_ID_LEN],
			    const proto_record *rec)
{
	store_index_entry entries[STORE_INDEX_ENTRIES_MAX];
	uint8_t key[STORE_RETRACTED_KEY_LEN];
	MDB_val v;
	size_t n;
	cm_err err;

	err = store_db_del(s, txn, STORE_DB_RECORDS, id, PROTO_ID_LEN);
	if (err)
		return err;
	n = store_index_entries(rec, id, entries);
	for (size_t i = 0; i < n; i++) {
		err = store_db_del(s, txn, entries[i].db, entries[i].key,
				   entries[i].key_len);
		if (err)
			return err;
	}
	err = store_media_refs_txn(s, txn, rec, id, true);
	if (err)
		return err;
	err = store_fp_note(s, rec, id, true);
	if (err)
		return err;

	if (rec->kind == PROTO_KIND_RETRACT) {
		retracted_key(key, rec->target, rec->author, id);
		return store_db_del(s, txn, STORE_DB_RETRACTED, key,
				    sizeof(key));
	}
	if (rec->kind != PROTO_KIND_PROFILE)
		return CM_OK;
	err = store_db_get(s, txn, STORE_DB_PROFILES, rec->author,
			   PROTO_KEY_LEN, &v);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	if (v.mv_size != 8 + PROTO_ID_LEN ||
	    memcmp((uint8_t *)v.mv_data + 8, id, PROTO_ID_LEN) != 0)
		return CM_OK;
	return store_db_del(s, txn, STORE_DB_PROFILES, rec->author,
			    PROTO_KEY_LEN);
}

/* Loads and removes stored record id; an absent record is no error. */
static cm_err remove_stored(store *s, MDB_txn *txn,
			    const uint8_t id[PROTO_ID_LEN],
			    proto_record *scratch)
{
	cm_err err;

	err = store_load_record(s, txn, id, scratch, NULL);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	return remove_record(s, txn, id, scratch);
}

/*
 * Settles the retractions of id that arrived before it. When r is a clip
 * and a retraction has the clip's author, *result is CM_ERR_RETRACTED and
 * those retractions become confirmed. Retractions by anyone else, and all
 * retractions of a record that is not a clip, are forged: they are deleted.
 */
static cm_err settle_retractions(store *s, MDB_txn *txn,
				 const proto_signed *r, proto_record *scratch,
				 cm_err *result)
{
	uint8_t key[STORE_RETRACTED_KEY_LEN];
	const uint8_t confirmed = STORE_RETRACT_CONFIRMED;
	bool after = false;
	bool valid;
	MDB_val k, v;
	cm_err err;

	memset(key, 0, sizeof(key));
	memcpy(key, r->id, PROTO_ID_LEN);
	for (;;) {
		err = store_seek(s, txn, STORE_DB_RETRACTED, key, sizeof(key),
				 after, &k, &v);
		if (err == CM_ERR_NOT_FOUND)
			return CM_OK;
		if (err)
			return err;
		if (k.mv_size != sizeof(key) ||
		    memcmp(k.mv_data, r->id, PROTO_ID_LEN) != 0)
			return CM_OK;
		memcpy(key, k.mv_data, sizeof(key));
		after = true;

		valid = r->rec.kind == PROTO_KIND_CLIP &&
			memcmp(key + PROTO_ID_LEN, r->rec.author,
			       PROTO_KEY_LEN) == 0;
		if (valid) {
			*result = cm_errf(CM_ERR_RETRACTED,
					  "clip was retracted by its author");
			err = store_db_put(s, txn, STORE_DB_RETRACTED, key,
					   sizeof(key), &confirmed, 1, 0);
		} else {
			err = remove_stored(s, txn,
					    key + PROTO_ID_LEN + PROTO_KEY_LEN,
					    scratch);
			if (!err)
				err = store_db_del(s, txn, STORE_DB_RETRACTED,
						   key, sizeof(key));
		}
		if (err)
			return err;
	}
}

/* Stores retraction r of a target that is not stored: a clip retracted
 * earlier, or one not seen yet. */
static cm_err put_retraction_unseen(store *s, MDB_txn *txn,
				    const proto_signed *r, cm_err *result)
{
	const uint8_t *target = r->rec.target;
	uint8_t key[STORE_RETRACTED_KEY_LEN];
	uint8_t state = STORE_RETRACT_PENDING;
	MDB_val k, v;
	cm_err err;

	/* A confirmed entry names the clip's real author, and forged
	 * entries were deleted when it was confirmed, so the first entry of
	 * the target shows whether its author is known. */
	err = store_seek(s, txn, STORE_DB_RETRACTED, target, PROTO_ID_LEN,
			 false, &k, &v);
	if (err && err != CM_ERR_NOT_FOUND)
		return err;
	if (!err && k.mv_size == sizeof(key) &&
	    memcmp(k.mv_data, target, PROTO_ID_LEN) == 0 && v.mv_size == 1 &&
	    *(uint8_t *)v.mv_data == STORE_RETRACT_CONFIRMED) {
		if (memcmp((uint8_t *)k.mv_data + PROTO_ID_LEN, r->rec.author,
			   PROTO_KEY_LEN) != 0) {
			*result = cm_errf(CM_ERR_NOT_AUTHOR,
					  "retracted clip has another author");
			return CM_OK;
		}
		state = STORE_RETRACT_CONFIRMED;
	}

	err = add_record(s, txn, r);
	if (err)
		return err;
	retracted_key(key, target, r->rec.author, r->id);
	return store_db_put(s, txn, STORE_DB_RETRACTED, key, sizeof(key),
			    &state, 1, 0);
}

static cm_err put_retraction(store *s, MDB_txn *txn, const proto_signed *r,
			     proto_record *scratch, cm_err *result)
{
	const uint8_t *target = r->rec.target;
	uint8_t key[STORE_RETRACTED_KEY_LEN];
	const uint8_t state = STORE_RETRACT_CONFIRMED;
	char hex[9];
	cm_err err;

	err = store_load_record(s, txn, target, scratch, NULL);
	if (err == CM_ERR_NOT_FOUND)
		return put_retraction_unseen(s, txn, r, result);
	if (err)
		return err;

	cm_hex_short(target, hex);
	if (scratch->kind != PROTO_KIND_CLIP) {
		*result = cm_errf(CM_ERR_BAD_FIELD,
				  "retraction target %s is a %s, not a clip",
				  hex, proto_kind_name(scratch->kind));
		return CM_OK;
	}
	if (memcmp(scratch->author, r->rec.author, PROTO_KEY_LEN) != 0) {
		*result = cm_errf(CM_ERR_NOT_AUTHOR,
				  "clip %s has another author", hex);
		return CM_OK;
	}

	err = remove_record(s, txn, target, scratch);
	if (!err)
		err = add_record(s, txn, r);
	if (err)
		return err;
	retracted_key(key, target, r->rec.author, r->id);
	return store_db_put(s, txn, STORE_DB_RETRACTED, key, sizeof(key),
			    &state, 1, 0);
}

/* True when profile (created_a, id_a) wins over (created_b, id_b). */
static bool profile_newer(uint64_t created_a, const uint8_t *id_a,
			  uint64_t created_b, const uint8_t *id_b)
{
	if (created_a != created_b)
		return created_a > created_b;
	return memcmp(id_a, id_b, PROTO_ID_LEN) > 0;
}

static cm_err put_profile(store *s, MDB_txn *txn, const proto_signed *r,
			  proto_record *scratch, cm_err *result)
{
	uint8_t value[8 + PROTO_ID_LEN];
	uint8_t old_id[PROTO_ID_LEN];
	MDB_val v;
	cm_err err;

	err = store_db_get(s, txn, STORE_DB_PROFILES, r->rec.author,
			   PROTO_KEY_LEN, &v);
	if (err && err != CM_ERR_NOT_FOUND)
		return err;
	if (!err && v.mv_size == sizeof(value)) {
		memcpy(old_id, (uint8_t *)v.mv_data + 8, PROTO_ID_LEN);
		if (!profile_newer(r->rec.created_ms, r->id,
				   store_be64_get(v.mv_data), old_id)) {
			*result = cm_errf(CM_ERR_SUPERSEDED,
					  "author has a newer profile");
			return CM_OK;
		}
		err = remove_stored(s, txn, old_id, scratch);
		if (err)
			return err;
	}

	err = add_record(s, txn, r);
	if (err)
		return err;
	store_be64_put(value, r->rec.created_ms);
	memcpy(value + 8, r->id, PROTO_ID_LEN);
	return store_db_put(s, txn, STORE_DB_PROFILES, r->rec.author,
			    PROTO_KEY_LEN, value, sizeof(value), 0);
}

/* Adds one record. Returns an error only when the transaction must be
 * aborted; the outcome for the record goes to *result. */
static cm_err put_one(store *s, MDB_txn *txn, const proto_signed *r,
		      proto_record *scratch, cm_err *result)
{
	MDB_val v;
	cm_err err;

	*result = CM_OK;
	if (!r->wire || r->wire_len == 0 || r->wire_len > CM_RECORD_MAX) {
		*result = cm_errf(CM_ERR_TOO_LONG,
				  "wire form is %zu bytes, limit %d",
				  r->wire_len, CM_RECORD_MAX);
		return CM_OK;
	}
	err = store_db_get(s, txn, STORE_DB_RECORDS, r->id, PROTO_ID_LEN, &v);
	if (err == CM_OK) {
		*result = CM_ERR_DUPLICATE;
		return CM_OK;
	}
	if (err != CM_ERR_NOT_FOUND)
		return err;

	err = settle_retractions(s, txn, r, scratch, result);
	if (err || *result)
		return err;

	switch (r->rec.kind) {
	case PROTO_KIND_CLIP:
		return add_record(s, txn, r);
	case PROTO_KIND_RETRACT:
		return put_retraction(s, txn, r, scratch, result);
	case PROTO_KIND_PROFILE:
		return put_profile(s, txn, r, scratch, result);
	}
	*result = cm_errf(CM_ERR_BAD_KIND, "record kind %d",
			  (int)r->rec.kind);
	return CM_OK;
}

/* Runs the batch in one write transaction, committed only with `commit`;
 * see store_put_batch, store_try_batch and store_put_batch_then. */
static cm_err put_batch(store *s, const proto_signed *recs, size_t n,
			cm_err *results, bool commit, store_batch_hook then,
			void *ctx)
{
	proto_record *scratch = NULL;
	MDB_txn *txn = NULL;
	cm_err err;

	if (n == 0)
		return CM_OK;
	/* A decoded record is about 8 KiB, which is too much for the stack
	 * of a node thread. */
	scratch = malloc(sizeof(*scratch));
	if (!scratch)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a record");
	err = store_txn_begin(s, true, &txn);
	if (!err)
		err = store_fp_batch_begin(s);
	if (err)
		goto out;
	for (size_t i = 0; i < n; i++) {
		err = put_one(s, txn, &recs[i], scratch, &results[i]);
		if (err)
			goto out;
	}
	err = then ? then(ctx, txn, results) : CM_OK;
	if (!err)
		err = store_mrefs_defer_check(s, txn);
	if (!err)
		err = store_fp_batch_flush(s, txn);
	if (err)
		goto out;
	store_fp_batch_end(s);
	if (!commit)
		goto out; /* the abort below undoes every change */
	err = store_txn_commit(txn);
	txn = NULL;
out:
	/* s->fp_batch belongs to whoever holds the write transaction. */
	if (txn) {
		store_fp_batch_end(s);
		mdb_txn_abort(txn);
	}
	free(scratch);
	return err;
}

cm_err store_put_batch(store *s, const proto_signed *recs, size_t n,
		       cm_err *results)
{
	return put_batch(s, recs, n, results, true, NULL, NULL);
}

cm_err store_try_batch(store *s, const proto_signed *recs, size_t n,
		       cm_err *results)
{
	return put_batch(s, recs, n, results, false, NULL, NULL);
}

cm_err store_put_batch_then(store *s, const proto_signed *recs, size_t n,
			    cm_err *results, store_batch_hook then, void *ctx)
{
	return put_batch(s, recs, n, results, true, then, ctx);
}
