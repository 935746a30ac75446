/*
 * store_admin.c - store check and backup.
 *
 * The check runs in one read transaction, so a node may keep writing while
 * it runs; it sees the state of the moment it began.
 */
#include "store_admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cm_util.h"
#include "proto_media.h"
#include "store_internal.h"

typedef struct check_state {
	store *s;
	MDB_txn *txn;
	uint64_t now_ms;
	store_check_report *rep;
	store_check_fn found;
	void *ctx;
	uint64_t chunk_bytes;   /* sizes of the chunks read */
	proto_signed rec;
} check_state;

static void report(check_state *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(check_state *st, const char *fmt, ...)
{
	char message[256];
	va_list ap;

	st->rep->problems++;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (st->found != NULL)
		st->found(st->ctx, false, message);
}

/* Reports a finding that needs no action. */
static void note(check_state *st, const char *message)
{
	st->rep->notes++;
	if (st->found != NULL)
		st->found(st->ctx, true, message);
}

/* Checks one stored record: it verifies, its key is its id, and each of
 * its index entries exists. */
static void check_record(check_state *st, const MDB_val *key,
			 const MDB_val *val)
{
	store_index_entry entries[STORE_INDEX_ENTRIES_MAX];
	char id_hex[2 * PROTO_ID_LEN + 1] = "?";
	MDB_val found;
	size_t n;
	cm_err err;

	st->rep->records++;
	if (key->mv_size == PROTO_ID_LEN)
		cm_hex_encode(key->mv_data, PROTO_ID_LEN, id_hex);
	cm_err_clear();
	err = proto_record_open(val->mv_data, val->mv_size, st->now_ms,
				&st->rec);
	if (err) {
		report(st, "record %s does not verify: %s %s", id_hex,
		       cm_err_name(err), cm_err_detail());
		return;
	}
	if (key->mv_size != PROTO_ID_LEN ||
	    memcmp(key->mv_data, st->rec.id, PROTO_ID_LEN) != 0) {
		report(st, "record stored under %s has another id", id_hex);
		return;
	}
	n = store_index_entries(&st->rec.rec, st->rec.id, entries);
	for (size_t i = 0; i < n; i++) {
		err = store_db_get(st->s, st->txn, entries[i].db,
				   entries[i].key, entries[i].key_len, &found);
		if (err)
			report(st, "record %s has no entry in index %s",
			       id_hex, store_db_name(entries[i].db));
	}
}

/* Checks that every entry of a time-ordered index names a stored record
 * whose own entries include this one. */
static cm_err check_index(check_state *st, store_db db)
{
	MDB_cursor *cur = NULL;
	MDB_val key, val, rec;
	int rc;

	rc = mdb_cursor_open(st->txn, st->s->dbi[db], &cur);
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_open", store_db_name(db));
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const uint8_t *id;

		st->rep->index_entries++;
		if (key.mv_size < STORE_TIME_KEY_LEN) {
			report(st, "index %s has a key of %zu bytes",
			       store_db_name(db), key.mv_size);
			continue;
		}
		id = (const uint8_t *)key.mv_data + key.mv_size - PROTO_ID_LEN;
		if (store_db_get(st->s, st->txn, STORE_DB_RECORDS, id,
				 PROTO_ID_LEN, &rec) != CM_OK) {
			char hex[2 * PROTO_ID_LEN + 1];

			cm_hex_encode(id, PROTO_ID_LEN, hex);
			report(st, "index %s names missing record %s",
			       store_db_name(db), hex);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? CM_OK
				  : store_mdb_error(rc, "mdb_cursor_get",
						    store_db_name(db));
}

/* Walks every entry of db, calling fn on each. */
static cm_err walk(check_state *st, store_db db,
		   void (*fn)(check_state *, const MDB_val *, const MDB_val *))
{
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	int rc;

	rc = mdb_cursor_open(st->txn, st->s->dbi[db], &cur);
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_open", store_db_name(db));
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		fn(st, &key, &val);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? CM_OK
				  : store_mdb_error(rc, "mdb_cursor_get",
						    store_db_name(db));
}

static void check_chunk(check_state *st, const MDB_val *key,
			const MDB_val *val)
{
	uint8_t hash[PROTO_HASH_LEN];

	st->rep->chunks++;
	st->chunk_bytes += val->mv_size;
	if (key->mv_size == PROTO_HASH_LEN &&
	    !store_chunk_listed_txn(st->s, st->txn, key->mv_data)) {
		st->rep->unlisted++;
		st->rep->unlisted_bytes += val->mv_size;
	}
	proto_chunk_hash(val->mv_data, val->mv_size, hash);
	if (key->mv_size != PROTO_HASH_LEN ||
	    memcmp(hash, key->mv_data, PROTO_HASH_LEN) != 0) {
		char hex[2 * PROTO_HASH_LEN + 1] = "?";

		if (key->mv_size == PROTO_HASH_LEN)
			cm_hex_encode(key->mv_data, PROTO_HASH_LEN, hex);
		report(st, "chunk %s does not match its hash", hex);
	}
}

/* Checks one stored manifest: its size and chunk hashes must hash to the
 * media root that is its key, as they did when a peer sent them. */
static void check_manifest(check_state *st, const MDB_val *key,
			   const MDB_val *val)
{
	char hex[2 * PROTO_HASH_LEN + 1] = "?";
	size_t n;

	if (key->mv_size == PROTO_HASH_LEN)
		cm_hex_encode(key->mv_data, PROTO_HASH_LEN, hex);
	if (key->mv_size != PROTO_HASH_LEN || val->mv_size < 8 ||
	    (val->mv_size - 8) % PROTO_HASH_LEN != 0) {
		report(st, "manifest of media %s is malformed (%zu bytes)", hex,
		       val->mv_size);
		return;
	}
	n = (val->mv_size - 8) / PROTO_HASH_LEN;
	if (proto_media_check_manifest(
		    key->mv_data, store_be64_get(val->mv_data),
		    (const uint8_t (*)[PROTO_HASH_LEN])((const uint8_t *)
							 val->mv_data + 8),
		    n) != CM_OK)
		report(st, "manifest of media %s does not match its hash", hex);
}

/* Checks one acceptance log entry, whose value must be a record id. A
 * wrong one is skipped by readers, so its record never reaches the event
 * stream. */
static void check_log_entry(check_state *st, const MDB_val *key,
			    const MDB_val *val)
{
	if (key->mv_size != 8 || val->mv_size != PROTO_ID_LEN)
		report(st, "acceptance log entry %llu is malformed (%zu bytes)",
		       key->mv_size == 8
			       ? (unsigned long long)store_be64_get(key->mv_data)
			       : 0ULL,
		       val->mv_size);
}

/* Compares the meta key "chunk_bytes", which a media budget check reads,
 * with the sizes of the chunks that the walk read. */
static void check_chunk_bytes(check_state *st)
{
	const char *key = STORE_META_CHUNK_BYTES;
	uint64_t stored = 0;
	cm_err err;

	err = store_u64_get(st->s, st->txn, STORE_DB_META, key, strlen(key),
			    &stored);
	if (err)
		report(st, "meta key 'chunk_bytes' is damaged: %s",
		       cm_err_detail());
	else if (stored != st->chunk_bytes)
		report(st, "meta key 'chunk_bytes' reads %llu, but the stored "
		       "chunks contain %llu bytes", (unsigned long long)stored,
		       (unsigned long long)st->chunk_bytes);
}

/* Reports the chunks that no manifest lists, as one problem. */
static void check_unlisted(check_state *st)
{
	if (st->rep->unlisted == 0)
		return;
	report(st, "%llu chunks (%llu bytes) are listed by no manifest, left "
	       "by a publish of an older release that failed; start the node "
	       "once to free them", (unsigned long long)st->rep->unlisted,
	       (unsigned long long)st->rep->unlisted_bytes);
}

/* Notes each "publish" marker whose publish stopped without freeing
 * its media. Markers of running publishes are in order. */
static cm_err check_publishes(check_state *st)
{
	uint8_t key[STORE_PUBLISH_KEY_LEN];
	char message[160];
	MDB_val k, v;
	cm_err err;

	memset(key, 0, sizeof(key));
	memcpy(key, STORE_PUBLISH_PREFIX, STORE_PUBLISH_PREFIX_LEN);
	for (bool after = false;; after = true) {
		err = store_seek(st->s, st->txn, STORE_DB_META, key,
				 sizeof(key), after, &k, &v);
		if (err == CM_ERR_NOT_FOUND)
			return CM_OK;
		if (err)
			return err;
		if (k.mv_size != sizeof(key) ||
		    memcmp(k.mv_data, key, STORE_PUBLISH_PREFIX_LEN) != 0)
			return CM_OK;
		memcpy(key, k.mv_data, sizeof(key));
		if (store_publish_running(st->s,
					  key + STORE_PUBLISH_PREFIX_LEN))
			continue;
		st->rep->stopped++;
		snprintf(message, sizeof(message),
			 "a publish stopped and left %zu media in the store; "
			 "the next publish or node start frees them",
			 v.mv_size / PROTO_HASH_LEN);
		note(st, message);
	}
}

cm_err store_check(store *s, uint64_t now_ms, store_check_report *rep,
		   store_check_fn found, void *ctx)
{
	static const store_db indexes[] = {STORE_DB_SYNC, STORE_DB_FEED,
					   STORE_DB_AUTHOR, STORE_DB_PRODUCT,
					   STORE_DB_TAG};
	check_state st = {.s = s, .now_ms = now_ms, .rep = rep,
			  .found = found, .ctx = ctx};
	cm_err err;

	memset(rep, 0, sizeof(*rep));
	if ((err = store_txn_begin(s, false, &st.txn)))
		return err;
	err = walk(&st, STORE_DB_RECORDS, check_record);
	for (size_t i = 0; !err && i < sizeof(indexes) / sizeof(*indexes); i++)
		err = check_index(&st, indexes[i]);
	if (!err)
		err = walk(&st, STORE_DB_CHUNKS, check_chunk);
	if (!err) {
		check_chunk_bytes(&st);
		check_unlisted(&st);
	}
	if (!err)
		err = walk(&st, STORE_DB_MANIFESTS, check_manifest);
	if (!err)
		err = walk(&st, STORE_DB_LOG, check_log_entry);
	if (!err)
		err = check_publishes(&st);
	mdb_txn_abort(st.txn);
	return err;
}

cm_err store_backup(store *s, const char *dir)
{
	int rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);

	if (rc)
		return store_mdb_error(rc, "mdb_env_copy2", dir);
	return CM_OK;
}
