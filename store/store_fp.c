/*
 * store_fp.c - aggregates for range-based set reconciliation, and the
 * read view that proto_recon.c reads while it builds a response.
 *
 * For each time bucket of depths 0..STORE_FP_DEPTH_MAX (proto_recon.h:
 * depth d buckets are 2^(64 - 4d) ms wide, so depth 13 is 4,096 ms) the
 * "fp" database keeps the count of records and the sum of their ids mod
 * 2^256, once over all records and once per author:
 *
 *   'g' || depth || bucket_be64           -> count_be64 || sum (32, LE)
 *   'a' || author || depth || bucket_be64 -> count_be64 || sum (32, LE)
 *   'v'                                   -> version byte
 *
 * bucket = created_ms >> (64 - 4 * depth). A sum, unlike XOR, does not
 * cancel a pair of equal ids and needs far more than 256 chosen ids to
 * forge, because it is not linear over GF(2). A range aligned to stored
 * buckets is summed from at most 15 entries per depth; only the parts of
 * a range inside one depth-13 bucket are summed by scanning its records.
 *
 * store_put_batch collects the changes of its transaction in memory and
 * writes each touched entry once before the commit, so a batch of
 * records in the same second costs a few writes, not 28 per record.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

/* Deepest depth with stored aggregates: buckets of 4,096 ms. */
#define STORE_FP_DEPTH_MAX 13

#define FP_KEY_MAX (1 + PROTO_KEY_LEN + 1 + 8)
#define FP_VALUE_LEN (8 + PROTO_RECON_SUM_LEN)
#define FP_VERSION 1
#define FP_VERSION_KEY "v"

/* Entries collected before a rebuild writes them out. */
#define REBUILD_FLUSH_ENTRIES (1u << 20)

/* --- Keys ------------------------------------------------------------ */

static uint64_t bucket_of(uint64_t created_ms, unsigned depth)
{
	return depth == 0 ? 0 : created_ms >> (64 - 4 * depth);
}

/* Writes the key of bucket `index` at `depth` of author (NULL: all). */
static size_t fp_key(uint8_t out[FP_KEY_MAX], const uint8_t *author,
		     unsigned depth, uint64_t index)
{
	size_t n = 0;

	out[n++] = author ? 'a' : 'g';
	if (author) {
		memcpy(out + n, author, PROTO_KEY_LEN);
		n += PROTO_KEY_LEN;
	}
	out[n++] = (uint8_t)depth;
	store_be64_put(out + n, index);
	return n + 8;
}

static void value_put(uint8_t out[FP_VALUE_LEN], const proto_recon_agg *a)
{
	store_be64_put(out, a->count);
	memcpy(out + 8, a->sum, PROTO_RECON_SUM_LEN);
}

static cm_err value_get(const MDB_val *v, proto_recon_agg *a)
{
	if (v->mv_size != FP_VALUE_LEN)
		return cm_errf(CM_ERR_STORE, "aggregate of %zu bytes, not %d; "
			       "run clipmesh store check", v->mv_size,
			       FP_VALUE_LEN);
	a->count = store_be64_get(v->mv_data);
	memcpy(a->sum, (uint8_t *)v->mv_data + 8, PROTO_RECON_SUM_LEN);
	return CM_OK;
}

/* --- Batches of changes ---------------------------------------------- */

typedef struct fp_delta {
	uint8_t key[FP_KEY_MAX];
	uint8_t key_len;            /* 0: free slot */
	proto_recon_agg agg;        /* count wraps below zero */
} fp_delta;

struct store_fp_batch {
	fp_delta *slots;
	size_t cap;                 /* a power of two */
	size_t n;
};

static uint64_t key_hash(const uint8_t *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static fp_delta *slot_find(fp_delta *slots, size_t cap, const uint8_t *key,
			   size_t len)
{
	size_t i = (size_t)key_hash(key, len) & (cap - 1);

	while (slots[i].key_len != 0 &&
	       (slots[i].key_len != len || memcmp(slots[i].key, key, len)))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static cm_err batch_grow(store_fp_batch *b)
{
	size_t cap = b->cap ? 2 * b->cap : 1024;
	fp_delta *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate %zu aggregate "
			       "changes", cap);
	for (size_t i = 0; i < b->cap; i++) {
		fp_delta *old = &b->slots[i];

		if (old->key_len)
			*slot_find(slots, cap, old->key, old->key_len) = *old;
	}
	free(b->slots);
	b->slots = slots;
	b->cap = cap;
	return CM_OK;
}

static cm_err batch_add(store_fp_batch *b, const uint8_t *key, size_t len,
			const uint8_t id[PROTO_ID_LEN], bool removed)
{
	fp_delta *d;
	cm_err err;

	if (2 * (b->n + 1) > b->cap) {
		err = batch_grow(b);
		if (err)
			return err;
	}
	d = slot_find(b->slots, b->cap, key, len);
	if (d->key_len == 0) {
		memcpy(d->key, key, len);
		d->key_len = (uint8_t)len;
		b->n++;
	}
	proto_recon_agg_id(&d->agg, id, removed);
	return CM_OK;
}

/* Adds one record to the changes of every depth, overall and for its
 * author. */
static cm_err batch_note(store_fp_batch *b, const uint8_t *author,
			 uint64_t created_ms, const uint8_t *id, bool removed)
{
	uint8_t key[FP_KEY_MAX];
	cm_err err;

	for (unsigned d = 0; d <= STORE_FP_DEPTH_MAX; d++) {
		uint64_t index = bucket_of(created_ms, d);
		size_t len;

		len = fp_key(key, NULL, d, index);
		err = batch_add(b, key, len, id, removed);
		if (!err) {
			len = fp_key(key, author, d, index);
			err = batch_add(b, key, len, id, removed);
		}
		if (err)
			return err;
	}
	return CM_OK;
}

static int delta_compare(const void *a, const void *b)
{
	const fp_delta *x = *(const fp_delta *const *)a;
	const fp_delta *y = *(const fp_delta *const *)b;
	size_t len = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, len);

	if (c)
		return c;
	return (int)x->key_len - (int)y->key_len;
}

/* Adds each change to its stored entry, in key order. */
static cm_err batch_write(store *s, MDB_txn *txn, store_fp_batch *b)
{
	fp_delta **order = NULL;
	uint8_t value[FP_VALUE_LEN];
	size_t k = 0;
	cm_err err = CM_OK;

	if (b->n == 0)
		return CM_OK;
	order = malloc(b->n * sizeof(*order));
	if (!order)
		return cm_errf(CM_ERR_NOMEM, "cannot sort %zu aggregate "
			       "changes", b->n);
	for (size_t i = 0; i < b->cap; i++)
		if (b->slots[i].key_len)
			order[k++] = &b->slots[i];
	qsort(order, k, sizeof(*order), delta_compare);

	for (size_t i = 0; i < k && !err; i++) {
		fp_delta *d = order[i];
		proto_recon_agg agg = {0};
		MDB_val v;

		err = store_db_get(s, txn, STORE_DB_FP, d->key, d->key_len,
				   &v);
		if (err == CM_ERR_NOT_FOUND)
			err = CM_OK;
		else if (!err)
			err = value_get(&v, &agg);
		if (err)
			break;
		proto_recon_agg_add(&agg, &d->agg);
		if (agg.count == 0) {
			err = store_db_del(s, txn, STORE_DB_FP, d->key,
					   d->key_len);
			continue;
		}
		value_put(value, &agg);
		err = store_db_put(s, txn, STORE_DB_FP, d->key, d->key_len,
				   value, sizeof(value), 0);
	}
	free(order);
	memset(b->slots, 0, b->cap * sizeof(*b->slots));
	b->n = 0;
	return err;
}

cm_err store_fp_batch_begin(store *s)
{
	store_fp_batch_end(s);
	s->fp_batch = calloc(1, sizeof(*s->fp_batch));
	if (!s->fp_batch)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate aggregate "
			       "changes");
	return CM_OK;
}

cm_err store_fp_note(store *s, const proto_record *rec,
		     const uint8_t id[PROTO_ID_LEN], bool removed)
{
	if (!s->fp_batch)
		return cm_errf(CM_ERR_STORE, "record changed outside "
			       "store_put_batch: aggregates would go stale");
	return batch_note(s->fp_batch, rec->author, rec->created_ms, id,
			  removed);
}

cm_err store_fp_batch_flush(store *s, MDB_txn *txn)
{
	if (!s->fp_batch)
		return CM_OK;
	return batch_write(s, txn, s->fp_batch);
}

void store_fp_batch_end(store *s)
{
	if (!s->fp_batch)
		return;
	free(s->fp_batch->slots);
	free(s->fp_batch);
	s->fp_batch = NULL;
}

/* --- Rebuild --------------------------------------------------------- */

/* Adds every record's author index entry to the empty fp database. */
static cm_err rebuild(store *s, MDB_txn *txn, store_fp_batch *b)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	cm_err err = CM_OK;
	int rc;

	rc = mdb_drop(txn, s->dbi[STORE_DB_FP], 0);
	if (rc)
		return store_mdb_error(rc, "mdb_drop", "fp");
	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_AUTHOR], &cur);
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_open", "author");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !err;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *key = k.mv_data;

		if (k.mv_size != PROTO_KEY_LEN + STORE_TIME_KEY_LEN)
			continue;
		err = batch_note(b, key, store_be64_get(key + PROTO_KEY_LEN),
				 key + PROTO_KEY_LEN + 8, false);
		if (!err && b->n >= REBUILD_FLUSH_ENTRIES)
			err = batch_write(s, txn, b);
	}
	mdb_cursor_close(cur);
	if (!err && rc != MDB_NOTFOUND)
		err = store_mdb_error(rc, "mdb_cursor_get", "author");
	if (!err)
		err = batch_write(s, txn, b);
	return err;
}

cm_err store_fp_ensure(store *s)
{
	const uint8_t version = FP_VERSION;
	store_fp_batch batch = {0};
	MDB_txn *txn = NULL;
	MDB_val v;
	cm_err err;

	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = store_db_get(s, txn, STORE_DB_FP, FP_VERSION_KEY, 1, &v);
	mdb_txn_abort(txn);
	txn = NULL;
	if (err == CM_OK && v.mv_size == 1)
		return CM_OK;
	if (err && err != CM_ERR_NOT_FOUND)
		return err;

	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	/* Another process may have rebuilt them meanwhile. */
	err = store_db_get(s, txn, STORE_DB_FP, FP_VERSION_KEY, 1, &v);
	if (err == CM_OK && v.mv_size == 1)
		goto out;
	err = rebuild(s, txn, &batch);
	if (!err)
		err = store_db_put(s, txn, STORE_DB_FP, FP_VERSION_KEY, 1,
				   &version, 1, 0);
	if (!err) {
		err = store_txn_commit(txn);
		txn = NULL;
	}
out:
	if (txn)
		mdb_txn_abort(txn);
	free(batch.slots);
	return err;
}

/* --- Read view -------------------------------------------------------- */

struct store_recon_view {
	store *s;
	MDB_txn *txn;
	MDB_cursor *cur;            /* on the sync or author index */
	uint8_t *authors;           /* n_authors keys, or NULL */
	size_t n_authors;
	uint64_t *work;
};

static const uint8_t *scope_author(const store_recon_view *v, size_t scope)
{
	return v->authors ? v->authors + scope * PROTO_KEY_LEN : NULL;
}

/* Adds the stored aggregate of one bucket to out. */
static cm_err add_bucket(store_recon_view *v, const uint8_t *author,
			 unsigned depth, uint64_t index, proto_recon_agg *out)
{
	uint8_t key[FP_KEY_MAX];
	proto_recon_agg a;
	size_t len = fp_key(key, author, depth, index);
	MDB_val val;
	cm_err err;

	(*v->work)++;
	err = store_db_get(v->s, v->txn, STORE_DB_FP, key, len, &val);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (!err)
		err = value_get(&val, &a);
	if (!err)
		proto_recon_agg_add(out, &a);
	return err;
}

/* Called for each record of a scan; a non-zero return stops it. */
typedef int (*scan_fn)(void *ctx, proto_recon_key key, const uint8_t *id);

/* Visits the records of a scope with keys in [lo, hi), in key order. */
static cm_err scan(store_recon_view *v, const uint8_t *author,
		   proto_recon_key lo, proto_recon_key hi, scan_fn fn,
		   void *ctx)
{
	size_t prefix_len = author ? PROTO_KEY_LEN : 0;
	uint8_t start[PROTO_KEY_LEN + 16];
	uint64_t id_bits = (uint64_t)lo << 4;
	MDB_val k, val;
	int rc;

	if (lo >= hi)
		return CM_OK;
	if (author)
		memcpy(start, author, PROTO_KEY_LEN);
	store_be64_put(start + prefix_len, (uint64_t)(lo >> 60));
	store_be64_put(start + prefix_len + 8, id_bits);
	k.mv_size = prefix_len + 16;
	k.mv_data = start;
	for (rc = mdb_cursor_get(v->cur, &k, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(v->cur, &k, &val, MDB_NEXT)) {
		const uint8_t *key = k.mv_data;
		proto_recon_key pos;

		if (k.mv_size != prefix_len + STORE_TIME_KEY_LEN ||
		    (author && memcmp(key, author, PROTO_KEY_LEN) != 0))
			break;
		pos = proto_recon_key_of(store_be64_get(key + prefix_len),
					 key + prefix_len + 8);
		if (pos >= hi)
			break;
		(*v->work)++;
		if (fn(ctx, pos, key + prefix_len + 8))
			return CM_OK;
	}
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_error(rc, "mdb_cursor_get",
				       author ? "author" : "sync");
	return CM_OK;
}

static int sum_one(void *ctx, proto_recon_key key, const uint8_t *id)
{
	(void)key;
	proto_recon_agg_id(ctx, id, false);
	return 0;
}

static cm_err view_agg(void *ctx, size_t scope, proto_recon_key lo,
		       proto_recon_key hi, proto_recon_agg *out)
{
	store_recon_view *v = ctx;
	const uint8_t *author = scope_author(v, scope);
	unsigned s13 = PROTO_RECON_KEY_BITS - 4 * STORE_FP_DEPTH_MAX;
	cm_err err = CM_OK;

	memset(out, 0, sizeof(*out));
	while (lo < hi && !err) {
		unsigned d;
		proto_recon_key w = 0, end;

		/* The largest bucket that starts at lo and ends by hi. */
		for (d = 0; d <= STORE_FP_DEPTH_MAX; d++) {
			w = proto_recon_width(d);
			if ((lo & (w - 1)) == 0 && hi - lo >= w)
				break;
		}
		if (d <= STORE_FP_DEPTH_MAX) {
			err = add_bucket(v, author, d,
					 (uint64_t)(lo >> (PROTO_RECON_KEY_BITS -
							   4 * d)),
					 out);
			lo += w;
			continue;
		}
		end = ((lo >> s13) + 1) << s13;
		if (end > hi)
			end = hi;
		err = scan(v, author, lo, end, sum_one, out);
		lo = end;
	}
	return err;
}

typedef struct item_list {
	proto_recon_item *out;
	size_t max;
	size_t n;
	bool more;
} item_list;

static int add_item(void *ctx, proto_recon_key key, const uint8_t *id)
{
	item_list *list = ctx;

	if (list->n == list->max) {
		list->more = true;
		return 1;
	}
	list->out[list->n].key = key;
	memcpy(list->out[list->n].id, id, PROTO_ID_LEN);
	list->n++;
	return 0;
}

static cm_err view_items(void *ctx, size_t scope, proto_recon_key lo,
			 proto_recon_key hi, proto_recon_item *out, size_t max,
			 size_t *n)
{
	store_recon_view *v = ctx;
	item_list list = {.out = out, .max = max};
	cm_err err;

	err = scan(v, scope_author(v, scope), lo, hi, add_item, &list);
	*n = list.n;
	if (!err && list.more)
		return CM_ERR_TOO_MANY;
	return err;
}

cm_err store_recon_open(store *s, const uint8_t *authors, size_t n_authors,
			proto_recon_source *src, store_recon_view **out)
{
	store_recon_view *v = NULL;
	store_db db = authors ? STORE_DB_AUTHOR : STORE_DB_SYNC;
	cm_err err;
	int rc;

	*out = NULL;
	if (authors && (n_authors == 0 || n_authors > CM_WIRE_FOLLOWS_MAX))
		return cm_errf(CM_ERR_USAGE, "%zu authors, limit %d",
			       n_authors, CM_WIRE_FOLLOWS_MAX);
	v = calloc(1, sizeof(*v));
	if (!v)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a view");
	v->s = s;
	v->work = &src->work;
	if (authors) {
		v->authors = malloc(n_authors * PROTO_KEY_LEN);
		if (!v->authors) {
			err = cm_errf(CM_ERR_NOMEM, "cannot copy %zu authors",
				      n_authors);
			goto out;
		}
		memcpy(v->authors, authors, n_authors * PROTO_KEY_LEN);
		v->n_authors = n_authors;
	}
	err = store_txn_begin(s, false, &v->txn);
	if (err)
		goto out;
	rc = mdb_cursor_open(v->txn, s->dbi[db], &v->cur);
	if (rc)
		err = store_mdb_error(rc, "mdb_cursor_open",
				      store_db_name(db));
out:
	if (err) {
		store_recon_close(&v);
		return err;
	}
	src->agg = view_agg;
	src->items = view_items;
	src->ctx = v;
	*out = v;
	return CM_OK;
}

void store_recon_close(store_recon_view **v)
{
	if (!v || !*v)
		return;
	if ((*v)->cur)
		mdb_cursor_close((*v)->cur);
	if ((*v)->txn)
		mdb_txn_abort((*v)->txn);
	free((*v)->authors);
	free(*v);
	*v = NULL;
}
