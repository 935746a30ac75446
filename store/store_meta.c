/*
 * store_meta.c - node state kept beside the records: followed authors,
 * known peer addresses and persistent counters.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

/* Runs one put or delete in its own write transaction. */
static cm_err write_one(store *s, store_db db, const void *key,
			size_t key_len, bool del)
{
	MDB_txn *txn = NULL;
	cm_err err;

	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	if (del)
		err = store_db_del(s, txn, db, key, key_len);
	else
		err = store_db_put(s, txn, db, key, key_len, "", 0, 0);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
}

cm_err store_follow(store *s, const uint8_t author[PROTO_KEY_LEN])
{
	return write_one(s, STORE_DB_FOLLOWS, author, PROTO_KEY_LEN, false);
}

cm_err store_unfollow(store *s, const uint8_t author[PROTO_KEY_LEN])
{
	MDB_txn *txn = NULL;
	MDB_val v;
	cm_err err;

	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	err = store_db_get(s, txn, STORE_DB_FOLLOWS, author, PROTO_KEY_LEN,
			   &v);
	if (err == CM_ERR_NOT_FOUND)
		err = cm_errf(CM_ERR_NOT_FOUND, "key is not followed");
	if (!err)
		err = store_db_del(s, txn, STORE_DB_FOLLOWS, author,
				   PROTO_KEY_LEN);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
}

cm_err store_db_walk(store *s, MDB_txn *txn, store_db db,
		     int (*fn)(void *ctx, const MDB_val *k, const MDB_val *v),
		     void *ctx)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(txn, s->dbi[db], &cur);
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_open",
				       store_db_name(db));
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if (fn(ctx, &k, &v))
			break;
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_error(rc, "mdb_cursor_get", store_db_name(db));
	return CM_OK;
}

typedef struct key_copy {
	uint8_t *keys;
	size_t n;
	size_t cap;
} key_copy;

static int copy_key(void *ctx, const MDB_val *k, const MDB_val *v)
{
	key_copy *c = ctx;

	(void)v;
	if (k->mv_size != PROTO_KEY_LEN || c->n == c->cap)
		return 0;
	memcpy(c->keys + c->n * PROTO_KEY_LEN, k->mv_data, PROTO_KEY_LEN);
	c->n++;
	return 0;
}

cm_err store_following(store *s, uint8_t **keys, size_t *n)
{
	key_copy c = {0};
	MDB_txn *txn = NULL;
	MDB_stat st;
	cm_err err;
	int rc;

	*keys = NULL;
	*n = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	rc = mdb_stat(txn, s->dbi[STORE_DB_FOLLOWS], &st);
	if (rc) {
		err = store_mdb_error(rc, "mdb_stat", "follows");
		goto out;
	}
	if (st.ms_entries == 0)
		goto out;
	c.cap = st.ms_entries;
	c.keys = malloc(c.cap * PROTO_KEY_LEN);
	if (!c.keys) {
		err = cm_errf(CM_ERR_NOMEM, "cannot copy %zu followed keys",
			      c.cap);
		goto out;
	}
	err = store_db_walk(s, txn, STORE_DB_FOLLOWS, copy_key, &c);
	if (err || c.n == 0) {
		free(c.keys);
		goto out;
	}
	*keys = c.keys;
	*n = c.n;
out:
	mdb_txn_abort(txn);
	return err;
}

static cm_err check_text_key(const char *what, const char *text,
			     size_t *len)
{
	*len = strnlen(text, STORE_TEXT_KEY_MAX + 1);
	if (*len == 0)
		return cm_errf(CM_ERR_USAGE, "%s is empty", what);
	if (*len > STORE_TEXT_KEY_MAX)
		return cm_errf(CM_ERR_USAGE, "%s is over %d bytes", what,
			       STORE_TEXT_KEY_MAX);
	return CM_OK;
}

cm_err store_peer_add(store *s, const char *addr)
{
	size_t len;
	cm_err err;

	err = check_text_key("peer address", addr, &len);
	if (err)
		return err;
	return write_one(s, STORE_DB_PEERS, addr, len, false);
}

/* Passes LMDB keys as NUL-terminated strings to a caller's function. */
typedef struct text_walk {
	int (*peer_fn)(void *ctx, const char *addr);
	int (*counter_fn)(void *ctx, const char *name, uint64_t value);
	void *ctx;
} text_walk;

static int call_text_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	text_walk *w = ctx;
	char text[STORE_TEXT_KEY_MAX + 1];

	if (k->mv_size > STORE_TEXT_KEY_MAX)
		return 0;
	memcpy(text, k->mv_data, k->mv_size);
	text[k->mv_size] = '\0';
	if (w->peer_fn)
		return w->peer_fn(w->ctx, text);
	if (v->mv_size != 8)
		return 0;
	return w->counter_fn(w->ctx, text, store_be64_get(v->mv_data));
}

static cm_err list_text_keys(store *s, store_db db, text_walk *w)
{
	MDB_txn *txn = NULL;
	cm_err err;

	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = store_db_walk(s, txn, db, call_text_fn, w);
	mdb_txn_abort(txn);
	return err;
}

cm_err store_peer_list(store *s, int (*fn)(void *ctx, const char *addr),
		       void *ctx)
{
	text_walk w = {.peer_fn = fn, .ctx = ctx};

	return list_text_keys(s, STORE_DB_PEERS, &w);
}

cm_err store_counter_add(store *s, const char *name, uint64_t delta)
{
	MDB_txn *txn = NULL;
	size_t len;
	cm_err err;

	err = check_text_key("counter name", name, &len);
	if (err)
		return err;
	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	err = store_u64_add(s, txn, STORE_DB_COUNTERS, name, len, delta);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
}

cm_err store_counter_list(store *s,
			  int (*fn)(void *ctx, const char *name,
				    uint64_t value),
			  void *ctx)
{
	text_walk w = {.counter_fn = fn, .ctx = ctx};

	return list_text_keys(s, STORE_DB_COUNTERS, &w);
}
