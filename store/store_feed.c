/*
 * store_feed.c - walks over stored records: feed pages (newest first, with
 * filters and cursors) and the catch-up scan (oldest first).
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

/* Records visited by store_scan per read transaction. Renewing it lets
 * LMDB reuse pages that writers freed meanwhile, so a long scan does not
 * make the data file grow. */
#define SCAN_RECORDS_PER_TXN 256

/* The index a feed query walks and the filters left to check. */
typedef struct feed_plan {
	store_db db;
	uint8_t prefix[PROTO_KEY_LEN];
	size_t prefix_len;
	bool clips_only;   /* the author index contains every kind */
	bool decode;       /* product or tag is checked on the record */
} feed_plan;

typedef struct feed_walk {
	store *s;
	MDB_txn *txn;
	const store_query *q;
	feed_plan plan;
	proto_record *rec;  /* scratch for decoded records */
} feed_walk;

/*
 * Picks the most selective index: author, then product, then tag, else the
 * feed of all clips. Product and tag keys hold a 128-bit hash, so with the
 * product or tag index alone a hash collision could only mix two labels
 * after some 2^64 distinct labels.
 */
static void plan_feed(const store_query *q, feed_plan *p)
{
	memset(p, 0, sizeof(*p));
	if (q->author) {
		p->db = STORE_DB_AUTHOR;
		memcpy(p->prefix, q->author, PROTO_KEY_LEN);
		p->prefix_len = PROTO_KEY_LEN;
		p->clips_only = true;
		p->decode = q->product || q->tag;
	} else if (q->product) {
		p->db = STORE_DB_PRODUCT;
		store_label_hash(q->product, p->prefix);
		p->prefix_len = STORE_LABEL_HASH_LEN;
		p->decode = q->tag != NULL;
	} else if (q->tag) {
		p->db = STORE_DB_TAG;
		store_label_hash(q->tag, p->prefix);
		p->prefix_len = STORE_LABEL_HASH_LEN;
	} else {
		p->db = STORE_DB_FEED;
	}
}

/*
 * Builds the key that the walk starts strictly below: prefix || the lower
 * of the cursor and (until_ms, zero id). Without either, prefix followed
 * by 41 bytes 0xff is above every key of the prefix, whose time and id
 * suffix is only 40 bytes long.
 */
static size_t start_key(const store_query *q, const feed_plan *p,
			uint8_t out[STORE_INDEX_KEY_MAX + 1])
{
	uint8_t bound[STORE_TIME_KEY_LEN] = {0};
	bool have_bound = false;

	memcpy(out, p->prefix, p->prefix_len);
	if (q->until_ms) {
		store_be64_put(bound, q->until_ms);
		have_bound = true;
	}
	if (q->cursor && (!have_bound ||
			  memcmp(q->cursor, bound, sizeof(bound)) < 0)) {
		memcpy(bound, q->cursor, sizeof(bound));
		have_bound = true;
	}
	if (!have_bound) {
		memset(out + p->prefix_len, 0xff, STORE_TIME_KEY_LEN + 1);
		return p->prefix_len + STORE_TIME_KEY_LEN + 1;
	}
	memcpy(out + p->prefix_len, bound, sizeof(bound));
	return p->prefix_len + STORE_TIME_KEY_LEN;
}

static bool has_tag(const proto_record *rec, const char *tag)
{
	for (size_t i = 0; i < rec->n_tags && i < CM_TAGS_MAX; i++)
		if (strcmp(rec->tags[i], tag) == 0)
			return true;
	return false;
}

/* Checks the filters that the index does not apply. *match is false for
 * a record of another kind or one that fails a filter. */
static cm_err feed_match(feed_walk *w, const MDB_val *index_value,
			 const MDB_val *wire, bool *match)
{
	const store_query *q = w->q;
	const uint8_t *body = NULL;
	size_t body_len = 0;
	cm_err err;

	*match = false;
	if (w->plan.clips_only &&
	    (index_value->mv_size != 1 ||
	     *(uint8_t *)index_value->mv_data != PROTO_KIND_CLIP))
		return CM_OK;
	if (!w->plan.decode) {
		*match = true;
		return CM_OK;
	}

	err = store_wire_body(wire->mv_data, wire->mv_size, &body, &body_len);
	if (err)
		return err;
	err = proto_body_read_stored(body, body_len, w->rec);
	if (err)
		return cm_errf(CM_ERR_STORE,
			       "stored clip does not decode: %s; run "
			       "clipmesh store check",
			       cm_err_name(err));
	if (q->product && strcmp(w->rec->product, q->product) != 0)
		return CM_OK;
	if (q->tag && !has_tag(w->rec, q->tag))
		return CM_OK;
	*match = true;
	return CM_OK;
}

/* Walks the index from cur's position towards older entries. */
static cm_err feed_walk_run(feed_walk *w, MDB_cursor *cur, MDB_val *k,
			    MDB_val *v, int rc, store_record_fn fn, void *ctx,
			    uint8_t next_cursor[STORE_CURSOR_LEN],
			    bool *has_more)
{
	const feed_plan *p = &w->plan;
	const uint8_t *suffix;
	size_t count = 0;
	MDB_val wire;
	bool match;
	cm_err err;

	for (; rc == 0; rc = mdb_cursor_get(cur, k, v, MDB_PREV)) {
		suffix = (const uint8_t *)k->mv_data + p->prefix_len;
		if (k->mv_size != p->prefix_len + STORE_TIME_KEY_LEN ||
		    memcmp(k->mv_data, p->prefix, p->prefix_len) != 0 ||
		    store_be64_get(suffix) < w->q->since_ms)
			return CM_OK;

		err = store_db_get(w->s, w->txn, STORE_DB_RECORDS, suffix + 8,
				   PROTO_ID_LEN, &wire);
		if (err == CM_ERR_NOT_FOUND)
			return cm_errf(CM_ERR_STORE,
				       "%s index names a missing record; run "
				       "clipmesh store check",
				       store_db_name(p->db));
		if (!err)
			err = feed_match(w, v, &wire, &match);
		if (err)
			return err;
		if (!match)
			continue;

		if (count == w->q->limit) {
			*has_more = true;
			return CM_OK;
		}
		count++;
		memcpy(next_cursor, suffix, STORE_CURSOR_LEN);
		if (fn(ctx, suffix + 8, wire.mv_data, wire.mv_size)) {
			*has_more = true;
			return CM_OK;
		}
	}
	if (rc != MDB_NOTFOUND)
		return store_mdb_error(rc, "mdb_cursor_get",
				       store_db_name(p->db));
	return CM_OK;
}

cm_err store_feed(store *s, const store_query *q, store_record_fn fn,
		  void *ctx, uint8_t next_cursor[STORE_CURSOR_LEN],
		  bool *has_more)
{
	uint8_t start[STORE_INDEX_KEY_MAX + 1];
	feed_walk w = {.s = s, .q = q};
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	cm_err err;
	int rc;

	/* next_cursor may be q->cursor itself: read it before clearing. */
	plan_feed(q, &w.plan);
	k.mv_size = start_key(q, &w.plan, start);
	k.mv_data = start;
	memset(next_cursor, 0, STORE_CURSOR_LEN);
	*has_more = false;
	if (q->limit < 1 || q->limit > CM_FEED_LIMIT_MAX)
		return cm_errf(CM_ERR_USAGE, "feed limit %zu is not in 1..%d",
			       q->limit, CM_FEED_LIMIT_MAX);
	if (q->until_ms && q->since_ms >= q->until_ms)
		return CM_OK;
	if (w.plan.decode) {
		w.rec = malloc(sizeof(*w.rec));
		if (!w.rec)
			return cm_errf(CM_ERR_NOMEM,
				       "cannot allocate a record");
	}

	err = store_txn_begin(s, false, &w.txn);
	if (err)
		goto out;
	rc = mdb_cursor_open(w.txn, s->dbi[w.plan.db], &cur);
	if (rc) {
		err = store_mdb_error(rc, "mdb_cursor_open",
				      store_db_name(w.plan.db));
		goto out;
	}
	/* Position on the last key strictly below the start key. */
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	err = feed_walk_run(&w, cur, &k, &v, rc, fn, ctx, next_cursor,
			    has_more);
out:
	if (cur)
		mdb_cursor_close(cur);
	if (w.txn)
		mdb_txn_abort(w.txn);
	free(w.rec);
	return err;
}

cm_err store_count_clips(store *s, const uint8_t author[PROTO_KEY_LEN],
			 uint64_t *count)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k = {.mv_size = PROTO_KEY_LEN, .mv_data = (void *)author};
	MDB_val v;
	cm_err err;
	int rc;

	*count = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_AUTHOR], &cur);
	if (rc) {
		err = store_mdb_error(rc, "mdb_cursor_open",
				      store_db_name(STORE_DB_AUTHOR));
		goto out;
	}
	/* The author index contains every kind; its value is the kind byte. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != PROTO_KEY_LEN + STORE_TIME_KEY_LEN ||
		    memcmp(k.mv_data, author, PROTO_KEY_LEN) != 0)
			break;
		if (v.mv_size == 1 &&
		    *(const uint8_t *)v.mv_data == PROTO_KIND_CLIP)
			(*count)++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		err = store_mdb_error(rc, "mdb_cursor_get",
				      store_db_name(STORE_DB_AUTHOR));
out:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return err;
}

/* --- Catch-up scan --------------------------------------------------- */

/* The entries of one key prefix (an author, or all of the sync index),
 * positioned at (created, id) pos. */
typedef struct scan_stream {
	uint8_t prefix[PROTO_KEY_LEN];
	size_t prefix_len;
	uint8_t pos[STORE_TIME_KEY_LEN];
} scan_stream;

typedef struct scan_merge {
	store *s;
	MDB_txn *txn;
	store_db db;
	scan_stream *streams;
	size_t *heap;      /* stream indexes, a min-heap on pos */
	size_t n_heap;
	store_scan_part *part; /* NULL: walk to the end */
} scan_merge;

static bool stream_less(const scan_merge *m, size_t a, size_t b)
{
	return memcmp(m->streams[m->heap[a]].pos, m->streams[m->heap[b]].pos,
		      STORE_TIME_KEY_LEN) < 0;
}

static void heap_swap(scan_merge *m, size_t a, size_t b)
{
	size_t t = m->heap[a];

	m->heap[a] = m->heap[b];
	m->heap[b] = t;
}

static void heap_down(scan_merge *m, size_t i)
{
	size_t least, left, right;

	for (;;) {
		least = i;
		left = 2 * i + 1;
		right = left + 1;
		if (left < m->n_heap && stream_less(m, left, least))
			least = left;
		if (right < m->n_heap && stream_less(m, right, least))
			least = right;
		if (least == i)
			return;
		heap_swap(m, i, least);
		i = least;
	}
}

/*
 * Moves stream st to its first entry after pos (or at or after pos when
 * `inclusive`). *found is false when the stream has no more entries.
 */
static cm_err stream_seek(scan_merge *m, scan_stream *st, bool inclusive,
			  bool *found)
{
	uint8_t key[STORE_INDEX_KEY_MAX];
	size_t key_len = st->prefix_len + STORE_TIME_KEY_LEN;
	MDB_val k, v;
	cm_err err;

	*found = false;
	memcpy(key, st->prefix, st->prefix_len);
	memcpy(key + st->prefix_len, st->pos, STORE_TIME_KEY_LEN);
	err = store_seek(m->s, m->txn, m->db, key, key_len, !inclusive, &k,
			 &v);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	if (k.mv_size != key_len ||
	    memcmp(k.mv_data, st->prefix, st->prefix_len) != 0)
		return CM_OK;
	memcpy(st->pos, (uint8_t *)k.mv_data + st->prefix_len,
	       STORE_TIME_KEY_LEN);
	*found = true;
	return CM_OK;
}

/* Positions every stream on its first entry, or its first after the
 * part's position, and builds the heap. */
static cm_err scan_start(scan_merge *m, size_t n_streams)
{
	bool after = m->part && m->part->started;
	bool found;
	cm_err err;

	for (size_t i = 0; i < n_streams; i++) {
		if (after)
			memcpy(m->streams[i].pos, m->part->after,
			       STORE_TIME_KEY_LEN);
		else
			memset(m->streams[i].pos, 0, STORE_TIME_KEY_LEN);
		err = stream_seek(m, &m->streams[i], !after, &found);
		if (err)
			return err;
		if (found)
			m->heap[m->n_heap++] = i;
	}
	for (size_t i = m->n_heap / 2; i-- > 0;)
		heap_down(m, i);
	return CM_OK;
}

/* Renews the read transaction so that it does not pin old pages. */
static cm_err scan_renew(scan_merge *m)
{
	int rc;

	mdb_txn_reset(m->txn);
	rc = mdb_txn_renew(m->txn);
	if (rc)
		return store_mdb_error(rc, "mdb_txn_renew", "(read)");
	return CM_OK;
}

static cm_err scan_run(scan_merge *m, store_record_fn fn, void *ctx)
{
	store_scan_part *part = m->part;
	scan_stream *st;
	size_t visited = 0;
	MDB_val wire;
	bool found;
	cm_err err;

	while (m->n_heap > 0) {
		if (part && visited == part->max) {
			part->done = false;
			return CM_OK;
		}
		/* A part is short and opens a transaction of its own. */
		if (++visited % SCAN_RECORDS_PER_TXN == 0 && !part) {
			err = scan_renew(m);
			if (err)
				return err;
		}
		st = &m->streams[m->heap[0]];
		/* After a renewal the record may be gone: then skip it. */
		err = store_db_get(m->s, m->txn, STORE_DB_RECORDS, st->pos + 8,
				   PROTO_ID_LEN, &wire);
		if (err && err != CM_ERR_NOT_FOUND)
			return err;
		if (part) {
			memcpy(part->after, st->pos, STORE_TIME_KEY_LEN);
			part->started = true;
			part->visited++;
		}
		if (!err && fn(ctx, st->pos + 8, wire.mv_data, wire.mv_size))
			return CM_OK;

		err = stream_seek(m, st, false, &found);
		if (err)
			return err;
		if (!found)
			m->heap[0] = m->heap[--m->n_heap];
		heap_down(m, 0);
	}
	return CM_OK;
}

static int key_compare(const void *a, const void *b)
{
	return memcmp(a, b, PROTO_KEY_LEN);
}

/* Makes one stream per distinct author, or one over the sync index. */
static cm_err scan_streams(scan_merge *m, const uint8_t *authors,
			   size_t n_authors, size_t *n_streams)
{
	uint8_t *sorted = NULL;
	size_t n = 0;

	*n_streams = 0;
	if (!authors) {
		m->db = STORE_DB_SYNC;
		m->streams = calloc(1, sizeof(*m->streams));
		m->heap = calloc(1, sizeof(*m->heap));
		if (!m->streams || !m->heap)
			return cm_errf(CM_ERR_NOMEM, "cannot allocate a scan");
		*n_streams = 1;
		return CM_OK;
	}

	m->db = STORE_DB_AUTHOR;
	sorted = malloc(n_authors * PROTO_KEY_LEN);
	m->streams = calloc(n_authors, sizeof(*m->streams));
	m->heap = calloc(n_authors, sizeof(*m->heap));
	if (!sorted || !m->streams || !m->heap) {
		free(sorted);
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a scan of %zu "
			       "authors", n_authors);
	}
	memcpy(sorted, authors, n_authors * PROTO_KEY_LEN);
	qsort(sorted, n_authors, PROTO_KEY_LEN, key_compare);
	for (size_t i = 0; i < n_authors; i++) {
		if (n > 0 && memcmp(m->streams[n - 1].prefix,
				    sorted + i * PROTO_KEY_LEN,
				    PROTO_KEY_LEN) == 0)
			continue;
		memcpy(m->streams[n].prefix, sorted + i * PROTO_KEY_LEN,
		       PROTO_KEY_LEN);
		m->streams[n].prefix_len = PROTO_KEY_LEN;
		n++;
	}
	free(sorted);
	*n_streams = n;
	return CM_OK;
}

static cm_err scan_walk(store *s, const uint8_t *authors, size_t n_authors,
			store_scan_part *part, store_record_fn fn, void *ctx)
{
	scan_merge m = {.s = s, .part = part};
	size_t n_streams = 0;
	cm_err err;

	if (part) {
		part->done = true;
		part->visited = 0;
	}
	if (authors && n_authors == 0)
		return CM_OK;
	if (authors && n_authors > SIZE_MAX / PROTO_KEY_LEN)
		return cm_errf(CM_ERR_USAGE, "%zu authors", n_authors);
	err = scan_streams(&m, authors, n_authors, &n_streams);
	if (err)
		goto out;
	err = store_txn_begin(s, false, &m.txn);
	if (err)
		goto out;
	err = scan_start(&m, n_streams);
	if (!err)
		err = scan_run(&m, fn, ctx);
out:
	if (m.txn)
		mdb_txn_abort(m.txn);
	free(m.heap);
	free(m.streams);
	return err;
}

cm_err store_scan(store *s, const uint8_t *authors, size_t n_authors,
		  store_record_fn fn, void *ctx)
{
	return scan_walk(s, authors, n_authors, NULL, fn, ctx);
}

cm_err store_scan_part_run(store *s, const uint8_t *authors,
			   size_t n_authors, store_scan_part *part,
			   store_record_fn fn, void *ctx)
{
	if (part->max == 0 || part->max > SCAN_RECORDS_PER_TXN)
		return cm_errf(CM_ERR_USAGE, "a scan part of %zu records is "
			       "not in 1..%d", part->max,
			       SCAN_RECORDS_PER_TXN);
	return scan_walk(s, authors, n_authors, part, fn, ctx);
}
