/*
 * store_log.c - the store's format version and its acceptance log.
 *
 * Formats (meta key "format"; a store without the key is format 1):
 *   1  clipmesh 0.1: records, indexes, reconciliation aggregates, media
 *      reference index.
 *   2  clipmesh 0.2: adds the acceptance log below. Migrating from 1
 *      numbers the stored records in (created time, id) order.
 *   3  clipmesh 0.3: media reference entries are written late, up to
 *      the log number in meta key "mref_seq" (store_budget.c). A release
 *      that reads format 2 would take the entries as complete and could
 *      free media that only the waiting clips list, so it must refuse
 *      the store. Migrating from 2 changes nothing else; opening the
 *      store then sets "mref_seq" (store_mrefs_init).
 * Named databases added since format 2 without a format change, because
 * a release that lacks them never opens them: known_peers
 * (store_known.c).
 * The meta key "format_needs" contains the first clipmesh release that reads
 * the store's format, as major << 32 | minor << 16 | patch, so that an
 * older release can name the one to install.
 *
 * The log gives every accepted record the next sequence number (meta key
 * "log_head" contains the last one given), so that a reader such as an HTTP
 * stream client can resume after the last number it saw, across restarts.
 * A removed record keeps its number and its log entry; readers skip it.
 */
#include "store_internal.h"

#include <string.h>

#include "cm_log.h"
#include "cm_util.h"

#define META_FORMAT "format"
#define META_FORMAT_NEEDS "format_needs"
#define META_LOG_HEAD "log_head"

#define RELEASE(major, minor, patch) \
	((uint64_t)(major) << 32 | (uint64_t)(minor) << 16 | (patch))

/* First release that reads STORE_FORMAT. */
#define STORE_FORMAT_NEEDS RELEASE(0, 3, 0)

static cm_err meta_get(store *s, MDB_txn *txn, const char *key,
		       uint64_t *value)
{
	cm_err err = store_u64_get(s, txn, STORE_DB_META, key, strlen(key),
				   value);
	char detail[128];

	if (err != CM_ERR_STORE)
		return err;
	cm_strlcpy(detail, cm_err_detail(), sizeof(detail));
	return cm_errf(err, "meta key '%s' is damaged (%s); restore the "
		       "store from a backup ('clipmesh store backup')", key,
		       detail);
}

static cm_err meta_set(store *s, MDB_txn *txn, const char *key,
		       uint64_t value)
{
	uint8_t be[8];

	store_be64_put(be, value);
	return store_db_put(s, txn, STORE_DB_META, key, strlen(key), be,
			    sizeof(be), 0);
}

static cm_err set_format(store *s, MDB_txn *txn)
{
	cm_err err = meta_set(s, txn, META_FORMAT, STORE_FORMAT);

	if (!err)
		err = meta_set(s, txn, META_FORMAT_NEEDS, STORE_FORMAT_NEEDS);
	return err;
}

/* True when the store has no records database yet: a new store. */
static bool store_is_new(MDB_txn *txn)
{
	MDB_dbi dbi;

	return mdb_dbi_open(txn, "records", 0, &dbi) == MDB_NOTFOUND;
}

static cm_err newer_format(store *s, MDB_txn *txn, const char *dir,
			   uint64_t format)
{
	uint64_t needs = 0;
	cm_err err = meta_get(s, txn, META_FORMAT_NEEDS, &needs);

	if (err)
		return err;
	/* This release meets what the store says it needs, so the format
	 * key itself is wrong. */
	if (needs != 0 && needs <= STORE_FORMAT_NEEDS)
		return cm_errf(CM_ERR_STORE_VERSION,
			       "store %s has format %llu, but its format_needs "
			       "key names a release that reads format %d: the "
			       "meta key 'format' is damaged; restore the store "
			       "from a backup ('clipmesh store backup')",
			       dir, (unsigned long long)format, STORE_FORMAT);
	if (needs == 0)
		return cm_errf(CM_ERR_STORE_VERSION,
			       "store %s has format %llu; this clipmesh reads "
			       "formats 1 to %d: install the clipmesh release "
			       "that wrote it, or a newer one",
			       dir, (unsigned long long)format, STORE_FORMAT);
	return cm_errf(CM_ERR_STORE_VERSION,
		       "store %s has format %llu, which needs clipmesh "
		       "%u.%u.%u or newer; this clipmesh reads formats 1 to "
		       "%d: upgrade clipmesh",
		       dir, (unsigned long long)format,
		       (unsigned)(needs >> 32), (unsigned)(needs >> 16 & 0xffff),
		       (unsigned)(needs & 0xffff), STORE_FORMAT);
}

cm_err store_format_get(store *s, MDB_txn *txn, uint64_t *format)
{
	*format = 0;
	return meta_get(s, txn, META_FORMAT, format);
}

cm_err store_format_check(store *s, MDB_txn *txn, const char *dir,
			  uint64_t *migrate_from)
{
	uint64_t format = 0;
	cm_err err;
	int rc;

	*migrate_from = 0;
	rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi[STORE_DB_META]);
	if (rc)
		return store_mdb_error(rc, "mdb_dbi_open", "meta");
	err = store_format_get(s, txn, &format);
	if (err)
		return err;
	if (format > STORE_FORMAT)
		return newer_format(s, txn, dir, format);
	if (format == STORE_FORMAT)
		return CM_OK;
	if (format == 0 && store_is_new(txn))
		return set_format(s, txn);
	*migrate_from = format ? format : 1;
	return CM_OK;
}

/* Format 1 to 2: numbers every stored record in (created, id) order. */
static cm_err migrate_log(store *s, MDB_txn *txn, uint64_t *numbered)
{
	MDB_cursor *sync = NULL, *log = NULL;
	uint64_t seq = 0;
	uint8_t key[8];
	MDB_val k, v;
	cm_err err = CM_OK;
	int rc;

	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_SYNC], &sync);
	if (!rc)
		rc = mdb_cursor_open(txn, s->dbi[STORE_DB_LOG], &log);
	if (rc) {
		err = store_mdb_error(rc, "mdb_cursor_open", "sync");
		goto out;
	}
	for (rc = mdb_cursor_get(sync, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(sync, &k, &v, MDB_NEXT)) {
		MDB_val lk = {sizeof(key), key};
		MDB_val lv;

		if (k.mv_size != STORE_TIME_KEY_LEN) {
			err = cm_errf(CM_ERR_STORE,
				      "sync index key of %zu bytes; run "
				      "'clipmesh store check'",
				      k.mv_size);
			goto out;
		}
		lv.mv_size = PROTO_ID_LEN;
		lv.mv_data = (uint8_t *)k.mv_data + 8;
		store_be64_put(key, ++seq);
		rc = mdb_cursor_put(log, &lk, &lv, MDB_APPEND);
		if (rc) {
			err = store_mdb_error(rc, "mdb_cursor_put", "log");
			goto out;
		}
	}
	if (rc != MDB_NOTFOUND) {
		err = store_mdb_error(rc, "mdb_cursor_get", "sync");
		goto out;
	}
	err = meta_set(s, txn, META_LOG_HEAD, seq);
	*numbered = seq;
out:
	if (log)
		mdb_cursor_close(log);
	if (sync)
		mdb_cursor_close(sync);
	return err;
}

/* Counts the entries of the acceptance log into *entries. */
static cm_err log_entries(store *s, MDB_txn *txn, size_t *entries)
{
	MDB_stat st;
	int rc = mdb_stat(txn, s->dbi[STORE_DB_LOG], &st);

	if (rc)
		return store_mdb_error(rc, "mdb_stat", "log");
	*entries = st.ms_entries;
	return CM_OK;
}

cm_err store_format_migrate(store *s, MDB_txn *txn, const char *dir,
			    uint64_t from)
{
	uint64_t numbered = 0;
	size_t entries = 0;
	cm_err err;

	if (from >= 2) {
		err = set_format(s, txn);
		if (!err)
			cm_info("store",
				"migrated store %s from format %llu to %d: "
				"media reference entries are now written "
				"late; clipmesh releases before 0.3.0 no "
				"longer open it",
				dir, (unsigned long long)from, STORE_FORMAT);
		return err;
	}
	/* A format 1 store has no acceptance log. One with log entries and
	 * a format key that reads 1, or none, lost its key: numbering its
	 * records again would collide with the log, so set the key. */
	err = log_entries(s, txn, &entries);
	if (err)
		return err;
	if (entries > 0) {
		cm_warn("store", "store %s has %zu acceptance log entries but "
			"its meta key 'format' reads 1 or is missing; the key "
			"was damaged and is set to %d again", dir, entries,
			STORE_FORMAT);
		return set_format(s, txn);
	}
	err = migrate_log(s, txn, &numbered);
	if (!err)
		err = set_format(s, txn);
	if (!err)
		cm_info("store",
			"migrated store %s from format 1 to %d: %llu records "
			"numbered in the acceptance log",
			dir, STORE_FORMAT, (unsigned long long)numbered);
	return err;
}

cm_err store_log_check_head(store *s, MDB_txn *txn, const char *dir,
			    bool repair)
{
	MDB_cursor *cur = NULL;
	uint64_t head = 0, last = 0;
	MDB_val k, v;
	cm_err err;
	int rc;

	err = meta_get(s, txn, META_LOG_HEAD, &head);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_LOG], &cur);
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_open", "log");
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return CM_OK; /* no log yet: head 0 or a head from nowhere */
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_get", "log");
	if (k.mv_size != 8)
		return cm_errf(CM_ERR_STORE, "log key of %zu bytes in store %s; "
			       "restore the store from a backup", k.mv_size,
			       dir);
	last = store_be64_get(k.mv_data);
	if (head == last)
		return CM_OK;
	if (!repair)
		return store_needs_repair(s, "log_head");
	cm_warn("store", "store %s: meta key 'log_head' reads %llu but the "
		"last acceptance log entry is %llu; the key was damaged and "
		"is set to %llu", dir, (unsigned long long)head,
		(unsigned long long)last, (unsigned long long)last);
	return meta_set(s, txn, META_LOG_HEAD, last);
}

cm_err store_log_append(store *s, MDB_txn *txn,
			const uint8_t id[PROTO_ID_LEN])
{
	uint64_t head = 0;
	uint8_t key[8];
	cm_err err;

	err = meta_get(s, txn, META_LOG_HEAD, &head);
	if (err)
		return err;
	store_be64_put(key, ++head);
	err = store_db_put(s, txn, STORE_DB_LOG, key, sizeof(key), id,
			   PROTO_ID_LEN, MDB_APPEND);
	if (err)
		return err;
	return meta_set(s, txn, META_LOG_HEAD, head);
}

cm_err store_log_head_txn(store *s, MDB_txn *txn, uint64_t *seq)
{
	return meta_get(s, txn, META_LOG_HEAD, seq);
}

cm_err store_log_head(store *s, uint64_t *seq)
{
	MDB_txn *txn = NULL;
	cm_err err;

	*seq = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = meta_get(s, txn, META_LOG_HEAD, seq);
	mdb_txn_abort(txn);
	return err;
}

cm_err store_log_after(store *s, uint64_t after, size_t limit,
		       store_log_fn fn, void *ctx, uint64_t *last)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	uint8_t key[8];
	MDB_val k = {sizeof(key), key}, v;
	cm_err err = CM_OK;
	int rc;

	*last = after;
	if (limit == 0 || limit > CM_LOG_PAGE_MAX)
		return cm_errf(CM_ERR_USAGE, "log page of %zu entries; use 1 "
			       "to %d", limit, CM_LOG_PAGE_MAX);
	if (after == UINT64_MAX)
		return CM_OK;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_LOG], &cur);
	if (rc) {
		err = store_mdb_error(rc, "mdb_cursor_open", "log");
		goto out;
	}
	store_be64_put(key, after + 1);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && limit > 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), limit--) {
		MDB_val wire;
		uint64_t seq;

		if (k.mv_size != 8 || v.mv_size != PROTO_ID_LEN) {
			err = cm_errf(CM_ERR_STORE, "log entry of %zu/%zu "
				      "bytes", k.mv_size, v.mv_size);
			goto out;
		}
		seq = store_be64_get(k.mv_data);
		err = store_db_get(s, txn, STORE_DB_RECORDS, v.mv_data,
				   PROTO_ID_LEN, &wire);
		if (err == CM_ERR_NOT_FOUND) {
			*last = seq;
			err = CM_OK;
			continue;
		}
		if (err)
			goto out;
		if (fn(ctx, seq, v.mv_data, wire.mv_data, wire.mv_size))
			limit = 1;
		*last = seq;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		err = store_mdb_error(rc, "mdb_cursor_get", "log");
out:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return err;
}
