/*
 * store_budget.c - the media reference index and what uses it: freeing
 * the media of removed clips, evicting media over a budget, the fetch
 * backoff of media that cannot be fetched, and media reads for transfers
 * (which chunks of a list are stored, chunk reads that keep the resident
 * set flat).
 *
 * store_internal.h lists the meta keys. An "mref" entry is written and
 * deleted in the write transaction that adds or removes its clip, and a
 * "cref" count in the one that stores or frees its manifest, so the index
 * cannot drift from the records.
 */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "proto_media.h"

static void mref_key(uint8_t out[STORE_MREF_KEY_LEN],
		     const uint8_t root[PROTO_HASH_LEN], uint64_t created_ms,
		     const uint8_t id[PROTO_ID_LEN])
{
	memcpy(out, STORE_MREF_PREFIX, STORE_MREF_PREFIX_LEN);
	memcpy(out + STORE_MREF_PREFIX_LEN, root, PROTO_HASH_LEN);
	store_be64_put(out + STORE_MREF_PREFIX_LEN + PROTO_HASH_LEN,
		       created_ms);
	memcpy(out + STORE_MREF_PREFIX_LEN + PROTO_HASH_LEN + 8, id,
	       PROTO_ID_LEN);
}

static void be32_put(uint8_t out[4], uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t in[4])
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
	       (uint32_t)in[2] << 8 | in[3];
}

static void prefixed_key(uint8_t *out, const char *prefix,
			 const uint8_t hash[PROTO_HASH_LEN])
{
	size_t len = strlen(prefix);

	memcpy(out, prefix, len);
	memcpy(out + len, hash, PROTO_HASH_LEN);
}

/* Finds the first "mref" entry of root; CM_ERR_NOT_FOUND when none. The
 * author it names goes to author (may be NULL). */
static cm_err mref_first(store *s, MDB_txn *txn,
			 const uint8_t root[PROTO_HASH_LEN], MDB_val *key,
			 MDB_val *author)
{
	uint8_t prefix[STORE_MREF_PREFIX_LEN + PROTO_HASH_LEN];
	MDB_val k, v;
	cm_err err;

	prefixed_key(prefix, STORE_MREF_PREFIX, root);
	err = store_seek(s, txn, STORE_DB_META, prefix, sizeof(prefix), false,
			 &k, &v);
	if (err)
		return err;
	if (k.mv_size != STORE_MREF_KEY_LEN ||
	    memcmp(k.mv_data, prefix, sizeof(prefix)) != 0)
		return CM_ERR_NOT_FOUND;
	if (key)
		*key = k;
	if (author)
		*author = v;
	return CM_OK;
}

static bool index_ready(store *s, MDB_txn *txn)
{
	MDB_val v;

	return store_db_get(s, txn, STORE_DB_META, STORE_META_MEDIA_INDEX,
			    strlen(STORE_META_MEDIA_INDEX), &v) == CM_OK;
}

cm_err store_chunk_bytes_sub(store *s, MDB_txn *txn, uint64_t delta)
{
	const char *key = STORE_META_CHUNK_BYTES;
	uint8_t buf[8];
	uint64_t value;
	cm_err err;

	err = store_u64_get(s, txn, STORE_DB_META, key, strlen(key), &value);
	if (err)
		return err;
	store_be64_put(buf, value > delta ? value - delta : 0);
	return store_db_put(s, txn, STORE_DB_META, key, strlen(key), buf,
			    sizeof(buf), 0);
}

/* Changes the "cref" count of one chunk by +1 or -1; at 0 the entry goes
 * and, on a decrement, so does the chunk, whose size is added to *freed. */
static cm_err cref_change(store *s, MDB_txn *txn,
			  const uint8_t hash[PROTO_HASH_LEN], int delta,
			  uint64_t *freed)
{
	uint8_t key[STORE_CREF_KEY_LEN], buf[4];
	uint32_t count = 0;
	MDB_val v;
	cm_err err;

	prefixed_key(key, STORE_CREF_PREFIX, hash);
	err = store_db_get(s, txn, STORE_DB_META, key, sizeof(key), &v);
	if (err && err != CM_ERR_NOT_FOUND)
		return err;
	if (!err && v.mv_size == 4)
		count = be32_get(v.mv_data);
	if (delta > 0) {
		count = count == UINT32_MAX ? count : count + 1;
	} else if (count > 1) {
		count--;
	} else {
		err = store_db_get(s, txn, STORE_DB_CHUNKS, hash,
				   PROTO_HASH_LEN, &v);
		if (err && err != CM_ERR_NOT_FOUND)
			return err;
		if (!err) {
			*freed += v.mv_size;
			err = store_db_del(s, txn, STORE_DB_CHUNKS, hash,
					   PROTO_HASH_LEN);
			if (err)
				return err;
		}
		return store_db_del(s, txn, STORE_DB_META, key, sizeof(key));
	}
	be32_put(buf, count);
	return store_db_put(s, txn, STORE_DB_META, key, sizeof(key), buf,
			    sizeof(buf), 0);
}

cm_err store_chunk_refs_add(store *s, MDB_txn *txn,
			    const uint8_t (*chunks)[PROTO_HASH_LEN], size_t n)
{
	uint64_t unused = 0;
	cm_err err;

	for (size_t i = 0; i < n; i++) {
		err = cref_change(s, txn, chunks[i], 1, &unused);
		if (err)
			return err;
	}
	return CM_OK;
}

cm_err store_media_free_txn(store *s, MDB_txn *txn,
			    const uint8_t root[PROTO_HASH_LEN],
			    uint64_t *freed)
{
	uint8_t *copy = NULL;
	uint64_t bytes = 0;
	size_t n;
	MDB_val v;
	cm_err err;

	err = store_db_get(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN,
			   &v);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	if (v.mv_size < 8 || (v.mv_size - 8) % PROTO_HASH_LEN != 0)
		return cm_errf(CM_ERR_STORE, "stored manifest of %zu bytes is "
			       "malformed; run clipmesh store check",
			       v.mv_size);
	/* Writes below move the map's pages, so the list is copied. */
	n = (v.mv_size - 8) / PROTO_HASH_LEN;
	copy = malloc(n ? n * PROTO_HASH_LEN : 1);
	if (!copy)
		return cm_errf(CM_ERR_NOMEM, "copying a manifest of %zu chunks",
			       n);
	memcpy(copy, (uint8_t *)v.mv_data + 8, n * PROTO_HASH_LEN);

	for (size_t i = 0; i < n; i++) {
		err = cref_change(s, txn, copy + i * PROTO_HASH_LEN, -1,
				  &bytes);
		if (err)
			goto out;
	}
	err = store_db_del(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN);
	if (!err)
		err = store_chunk_bytes_sub(s, txn, bytes);
	if (!err && freed)
		*freed += bytes;
out:
	free(copy);
	return err;
}

static cm_err index_build(store *s, MDB_txn *txn);

cm_err store_media_listed_txn(store *s, MDB_txn *txn,
			      const uint8_t root[PROTO_HASH_LEN])
{
	return mref_first(s, txn, root, NULL, NULL);
}

bool store_chunk_listed_txn(store *s, MDB_txn *txn,
			    const uint8_t hash[PROTO_HASH_LEN])
{
	uint8_t key[STORE_CREF_KEY_LEN];
	MDB_val v;

	if (!index_ready(s, txn))
		return true;
	prefixed_key(key, STORE_CREF_PREFIX, hash);
	return store_db_get(s, txn, STORE_DB_META, key, sizeof(key), &v) ==
	       CM_OK;
}

cm_err store_media_refs_txn(store *s, MDB_txn *txn, const proto_record *rec,
			    const uint8_t id[PROTO_ID_LEN], bool removed)
{
	uint8_t key[STORE_MREF_KEY_LEN];
	cm_err err;

	if (rec->kind != PROTO_KIND_CLIP)
		return CM_OK;
	/* The other clips that list the media must have their entries. */
	if (removed && index_ready(s, txn)) {
		err = store_mrefs_catch_up(s, txn);
		if (err)
			return err;
	}
	for (size_t i = 0; i < rec->n_media; i++) {
		const uint8_t *root = rec->media[i].hash;

		mref_key(key, root, rec->created_ms, id);
		if (!removed) {
			err = store_db_put(s, txn, STORE_DB_META, key,
					   sizeof(key), rec->author,
					   PROTO_KEY_LEN, 0);
			if (err)
				return err;
			continue;
		}
		err = store_db_del(s, txn, STORE_DB_META, key, sizeof(key));
		if (!err && !index_ready(s, txn))
			err = index_build(s, txn);
		if (err)
			return err;
		err = mref_first(s, txn, root, NULL, NULL);
		if (err == CM_OK)
			continue; /* another clip lists the media */
		if (err != CM_ERR_NOT_FOUND)
			return err;
		if (store_publish_root_busy(s, txn, root))
			continue; /* its publish frees it if that fails */
		err = store_media_free_txn(s, txn, root, NULL);
		if (err)
			return err;
	}
	return CM_OK;
}

/* --- Deferred references ------------------------------------------------ */

/*
 * A clip's "mref" key starts with its media root, which is random, so
 * writing it with the clip dirtied a page of its own for each clip: about
 * a third of the pages a catch-up wrote. The entries of newly accepted
 * clips are instead written later, many at once in key order, so that
 * clips whose roots share a page share its write. The acceptance log
 * lists the clips still waiting: those after "mref_seq".
 */

/* One "mref" entry waiting to be written. */
typedef struct mref_entry {
	uint8_t key[STORE_MREF_KEY_LEN];
	uint8_t author[PROTO_KEY_LEN];
} mref_entry;

typedef struct mref_list {
	mref_entry *entries;
	size_t n;
	size_t cap;
} mref_list;

static cm_err mref_list_add(mref_list *l, const proto_record *rec,
			    const uint8_t id[PROTO_ID_LEN])
{
	for (size_t i = 0; i < rec->n_media; i++) {
		if (cm_array_reserve((void **)&l->entries, &l->cap, l->n + 1,
				     sizeof(*l->entries)))
			return cm_errf(CM_ERR_NOMEM, "cannot list %zu media "
				       "references", l->n + 1);
		mref_key(l->entries[l->n].key, rec->media[i].hash,
			 rec->created_ms, id);
		memcpy(l->entries[l->n].author, rec->author, PROTO_KEY_LEN);
		l->n++;
	}
	return CM_OK;
}

static int mref_entry_compare(const void *a, const void *b)
{
	return memcmp(((const mref_entry *)a)->key,
		      ((const mref_entry *)b)->key, STORE_MREF_KEY_LEN);
}

/* Reads "mref_seq" and the log head inside txn. */
static cm_err mref_seqs(store *s, MDB_txn *txn, uint64_t *done,
			uint64_t *head)
{
	cm_err err;

	err = store_u64_get(s, txn, STORE_DB_META, STORE_META_MREF_SEQ,
			    strlen(STORE_META_MREF_SEQ), done);
	if (!err)
		err = store_log_head_txn(s, txn, head);
	return err;
}

static cm_err mref_seq_set(store *s, MDB_txn *txn, uint64_t seq)
{
	uint8_t buf[8];

	store_be64_put(buf, seq);
	return store_db_put(s, txn, STORE_DB_META, STORE_META_MREF_SEQ,
			    strlen(STORE_META_MREF_SEQ), buf, sizeof(buf), 0);
}

cm_err store_log_walk_clips(store *s, MDB_txn *txn, uint64_t after,
			    cm_err (*fn)(void *ctx, const proto_record *rec,
					 const uint8_t id[PROTO_ID_LEN]),
			    void *ctx)
{
	proto_record *rec = malloc(sizeof(*rec));
	uint8_t key[8], id[PROTO_ID_LEN];
	MDB_cursor *cur = NULL;
	MDB_val k = {sizeof(key), key}, v;
	cm_err err = CM_OK;
	int rc;

	if (!rec)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a record");
	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_LOG], &cur);
	if (rc) {
		free(rec);
		return store_mdb_error(rc, "mdb_cursor_open", "log");
	}
	store_be64_put(key, after + 1);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !err;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size != PROTO_ID_LEN)
			continue;
		memcpy(id, v.mv_data, PROTO_ID_LEN);
		err = store_load_record(s, txn, id, rec, NULL);
		if (err == CM_ERR_NOT_FOUND || err == CM_ERR_STORE) {
			err = CM_OK;
			continue;
		}
		if (!err && rec->kind == PROTO_KIND_CLIP)
			err = fn(ctx, rec, id);
	}
	if (!err && rc != 0 && rc != MDB_NOTFOUND)
		err = store_mdb_error(rc, "mdb_cursor_get", "log");
	mdb_cursor_close(cur);
	free(rec);
	return err;
}

static cm_err collect_mrefs(void *ctx, const proto_record *rec,
			    const uint8_t id[PROTO_ID_LEN])
{
	return mref_list_add(ctx, rec, id);
}

cm_err store_mrefs_catch_up(store *s, MDB_txn *txn)
{
	mref_list l = {0};
	uint64_t done, head;
	cm_err err;

	err = mref_seqs(s, txn, &done, &head);
	if (err || done >= head)
		return err;
	err = store_log_walk_clips(s, txn, done, collect_mrefs, &l);
	if (!err && l.n > 1)
		qsort(l.entries, l.n, sizeof(*l.entries), mref_entry_compare);
	for (size_t i = 0; !err && i < l.n; i++)
		err = store_db_put(s, txn, STORE_DB_META, l.entries[i].key,
				   STORE_MREF_KEY_LEN, l.entries[i].author,
				   PROTO_KEY_LEN, 0);
	if (!err)
		err = mref_seq_set(s, txn, head);
	free(l.entries);
	return err;
}

cm_err store_mrefs_defer_check(store *s, MDB_txn *txn)
{
	uint64_t done, head;
	cm_err err;

	err = mref_seqs(s, txn, &done, &head);
	if (err || done >= head || head - done < CM_MREF_DEFER_MAX)
		return err;
	return store_mrefs_catch_up(s, txn);
}

cm_err store_mrefs_init(store *s, MDB_txn *txn, const char *dir,
			bool repair)
{
	uint64_t head = 0, done = 0;
	MDB_val v;
	cm_err err;

	err = store_log_head_txn(s, txn, &head);
	if (err)
		return err;
	err = store_db_get(s, txn, STORE_DB_META, STORE_META_MREF_SEQ,
			   strlen(STORE_META_MREF_SEQ), &v);
	/* A store written before the entries were deferred has all of
	 * them. One that lost the key has fewer than CM_MREF_DEFER_MAX
	 * waiting, because every committed batch leaves fewer, so those
	 * are written again (rewriting an entry changes nothing). */
	if (err == CM_ERR_NOT_FOUND && !repair)
		return store_needs_repair(s, "mref_seq");
	if (err == CM_ERR_NOT_FOUND)
		return mref_seq_set(s, txn,
				    head > CM_MREF_DEFER_MAX
					    ? head - CM_MREF_DEFER_MAX
					    : 0);
	if (err)
		return err;
	if (v.mv_size == 8) {
		done = store_be64_get(v.mv_data);
		if (done <= head)
			return CM_OK;
	}
	if (!repair)
		return store_needs_repair(s, "mref_seq");
	/* Which entries exist is unknown, so those of every clip in the log
	 * are written again (rewriting an entry changes nothing). Left as
	 * it was, a value above the head would keep the entries of the
	 * clips accepted up to it from ever being written, and their media
	 * could be freed while they list it. */
	cm_warn("store", "store %s: meta key 'mref_seq' (%zu bytes, reads "
		"%llu) is not a log number up to the head %llu; the key was "
		"damaged and is set to 0, so the media reference entries of "
		"every logged clip are written again", dir, v.mv_size,
		(unsigned long long)done, (unsigned long long)head);
	return mref_seq_set(s, txn, 0);
}

/* --- Building the index for an older store ---------------------------- */

/* Deletes every meta entry whose key starts with prefix. */
static cm_err meta_prefix_clear(store *s, MDB_txn *txn, const char *prefix)
{
	size_t len = strlen(prefix);
	MDB_val k, v;
	uint8_t key[STORE_MREF_KEY_LEN];
	cm_err err;

	for (;;) {
		err = store_seek(s, txn, STORE_DB_META, prefix, len, false, &k,
				 &v);
		if (err == CM_ERR_NOT_FOUND)
			return CM_OK;
		if (err)
			return err;
		if (k.mv_size < len || k.mv_size > sizeof(key) ||
		    memcmp(k.mv_data, prefix, len) != 0)
			return CM_OK;
		memcpy(key, k.mv_data, k.mv_size);
		err = store_db_del(s, txn, STORE_DB_META, key, k.mv_size);
		if (err)
			return err;
	}
}

/* Counts the chunks of every stored manifest into fresh "cref" entries. */
static cm_err crefs_rebuild(store *s, MDB_txn *txn)
{
	uint8_t root[PROTO_HASH_LEN] = {0};
	uint8_t *copy = NULL;
	bool after = false;
	MDB_val k, v;
	size_t n;
	cm_err err;

	err = meta_prefix_clear(s, txn, STORE_CREF_PREFIX);
	while (!err) {
		err = store_seek(s, txn, STORE_DB_MANIFESTS, root,
				 PROTO_HASH_LEN, after, &k, &v);
		if (err == CM_ERR_NOT_FOUND) {
			err = CM_OK;
			break;
		}
		if (err || k.mv_size != PROTO_HASH_LEN)
			break;
		memcpy(root, k.mv_data, PROTO_HASH_LEN);
		after = true;
		if (v.mv_size < 8 || (v.mv_size - 8) % PROTO_HASH_LEN != 0)
			continue;
		n = (v.mv_size - 8) / PROTO_HASH_LEN;
		free(copy);
		copy = malloc(n ? n * PROTO_HASH_LEN : 1);
		if (!copy) {
			err = cm_errf(CM_ERR_NOMEM, "copying a manifest of "
				      "%zu chunks", n);
			break;
		}
		memcpy(copy, (uint8_t *)v.mv_data + 8, n * PROTO_HASH_LEN);
		err = store_chunk_refs_add(
			s, txn, (const uint8_t (*)[PROTO_HASH_LEN])copy, n);
	}
	free(copy);
	return err;
}

/* Called by walk_clips for one stored clip; setting *stop ends the walk. */
typedef cm_err (*clip_fn)(store *s, MDB_txn *txn, const proto_record *rec,
			  const uint8_t id[PROTO_ID_LEN], void *ctx,
			  bool *stop);

/* Calls fn for each stored clip, oldest first, inside txn, until fn fails
 * or sets *stop. Clips that do not load are skipped, because store check
 * reports them. */
static cm_err walk_clips(store *s, MDB_txn *txn, clip_fn fn, void *ctx)
{
	uint8_t key[STORE_TIME_KEY_LEN] = {0};
	proto_record *rec = malloc(sizeof(*rec));
	bool after = false, stop = false;
	MDB_val k, v;
	cm_err err = CM_OK;

	if (!rec)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a record");
	while (!err && !stop) {
		err = store_seek(s, txn, STORE_DB_FEED, key, sizeof(key), after,
				 &k, &v);
		if (err == CM_ERR_NOT_FOUND) {
			err = CM_OK;
			break;
		}
		if (err || k.mv_size != sizeof(key))
			break;
		memcpy(key, k.mv_data, sizeof(key));
		after = true;
		err = store_load_record(s, txn, key + 8, rec, NULL);
		if (err == CM_OK)
			err = fn(s, txn, rec, key + 8, ctx, &stop);
		else if (err == CM_ERR_NOT_FOUND || err == CM_ERR_STORE)
			err = CM_OK;
	}
	free(rec);
	return err;
}

static cm_err add_mrefs(store *s, MDB_txn *txn, const proto_record *rec,
			const uint8_t id[PROTO_ID_LEN], void *ctx, bool *stop)
{
	(void)ctx;
	(void)stop;
	return store_media_refs_txn(s, txn, rec, id, false);
}

/* Writes the "mref" entries of every stored clip. */
static cm_err mrefs_rebuild(store *s, MDB_txn *txn)
{
	return walk_clips(s, txn, add_mrefs, NULL);
}

/* Builds the whole index inside txn and marks it built. */
static cm_err index_build(store *s, MDB_txn *txn)
{
	const uint8_t ready = 1;
	uint64_t head = 0;
	cm_err err;

	err = crefs_rebuild(s, txn);
	if (!err)
		err = mrefs_rebuild(s, txn);
	if (!err)
		err = store_log_head_txn(s, txn, &head);
	if (!err)
		err = mref_seq_set(s, txn, head);
	if (!err)
		err = store_db_put(s, txn, STORE_DB_META,
				   STORE_META_MEDIA_INDEX,
				   strlen(STORE_META_MEDIA_INDEX), &ready, 1,
				   0);
	return err;
}

cm_err store_media_index_ensure(store *s)
{
	MDB_txn *txn = NULL;
	cm_err err;

	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	if (index_ready(s, txn)) {
		mdb_txn_abort(txn);
		return CM_OK;
	}
	mdb_txn_abort(txn);

	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	if (index_ready(s, txn))
		goto out; /* another process built it meanwhile */
	err = index_build(s, txn);
	if (err)
		goto out;
	err = store_txn_commit(txn);
	txn = NULL;
out:
	if (txn)
		mdb_txn_abort(txn);
	return err;
}

/* --- Budget ------------------------------------------------------------ */

typedef struct evict_state {
	uint64_t budget;
	const uint8_t *keep;
	size_t n_keep;
	uint64_t retry_at;
	uint64_t stored;        /* chunk bytes now */
	uint64_t media;         /* freed so far */
	uint64_t bytes;
} evict_state;

static bool key_kept(const evict_state *ev, const uint8_t *author)
{
	for (size_t i = 0; i < ev->n_keep; i++)
		if (memcmp(ev->keep + i * PROTO_KEY_LEN, author,
			   PROTO_KEY_LEN) == 0)
			return true;
	return false;
}

/* Frees root, counts it and gives it a fetch backoff. */
static cm_err evict_root(store *s, MDB_txn *txn, evict_state *ev,
			 const uint8_t root[PROTO_HASH_LEN])
{
	uint8_t key[STORE_MFAIL_KEY_LEN], value[12];
	uint64_t freed = 0;
	cm_err err;

	err = store_media_free_txn(s, txn, root, &freed);
	if (err)
		return err;
	ev->media++;
	ev->bytes += freed;
	ev->stored = ev->stored > freed ? ev->stored - freed : 0;
	prefixed_key(key, STORE_MFAIL_PREFIX, root);
	store_be64_put(value, ev->retry_at);
	be32_put(value + 8, 1);
	return store_db_put(s, txn, STORE_DB_META, key, sizeof(key), value,
			    sizeof(value), 0);
}

/* Frees every manifest that no stored clip and no running publish lists,
 * in root order. */
static cm_err evict_orphans(store *s, MDB_txn *txn, evict_state *ev)
{
	uint8_t root[PROTO_HASH_LEN] = {0};
	bool after = false;
	MDB_val k, v;
	cm_err err;

	while (ev->stored > ev->budget) {
		err = store_seek(s, txn, STORE_DB_MANIFESTS, root,
				 PROTO_HASH_LEN, after, &k, &v);
		if (err == CM_ERR_NOT_FOUND)
			return CM_OK;
		if (err)
			return err;
		if (k.mv_size != PROTO_HASH_LEN)
			return CM_OK;
		memcpy(root, k.mv_data, PROTO_HASH_LEN);
		after = true;
		err = mref_first(s, txn, root, NULL, NULL);
		if (err == CM_OK || (err == CM_ERR_NOT_FOUND &&
				     store_publish_root_busy(s, txn, root)))
			continue;
		if (err != CM_ERR_NOT_FOUND)
			return err;
		err = evict_root(s, txn, ev, root);
		if (err)
			return err;
	}
	return CM_OK;
}

/* True when a clip by a kept author lists root. */
static cm_err root_kept(store *s, MDB_txn *txn, const evict_state *ev,
			const uint8_t root[PROTO_HASH_LEN], bool *kept)
{
	uint8_t prefix[STORE_MREF_PREFIX_LEN + PROTO_HASH_LEN];
	uint8_t key[STORE_MREF_KEY_LEN];
	MDB_val k, v;
	cm_err err;

	*kept = false;
	prefixed_key(prefix, STORE_MREF_PREFIX, root);
	memset(key, 0, sizeof(key));
	memcpy(key, prefix, sizeof(prefix));
	for (bool after = false;; after = true) {
		err = store_seek(s, txn, STORE_DB_META, key, sizeof(key), after,
				 &k, &v);
		if (err == CM_ERR_NOT_FOUND)
			return CM_OK;
		if (err)
			return err;
		if (k.mv_size != sizeof(key) ||
		    memcmp(k.mv_data, prefix, sizeof(prefix)) != 0)
			return CM_OK;
		memcpy(key, k.mv_data, sizeof(key));
		if (v.mv_size == PROTO_KEY_LEN && key_kept(ev, v.mv_data)) {
			*kept = true;
			return CM_OK;
		}
	}
}

static cm_err evict_clip(store *s, MDB_txn *txn, const proto_record *rec,
			 const uint8_t id[PROTO_ID_LEN], void *ctx, bool *stop)
{
	evict_state *ev = ctx;
	cm_err err = CM_OK;
	bool kept;

	(void)id;
	if (!key_kept(ev, rec->author)) {
		for (size_t i = 0; !err && i < rec->n_media; i++) {
			err = root_kept(s, txn, ev, rec->media[i].hash, &kept);
			if (!err && !kept &&
			    !store_publish_root_busy(s, txn,
						     rec->media[i].hash))
				err = evict_root(s, txn, ev,
						 rec->media[i].hash);
		}
	}
	*stop = ev->stored <= ev->budget;
	return err;
}

/* Frees the media of clips by authors outside ev->keep, oldest first. */
static cm_err evict_unkept(store *s, MDB_txn *txn, evict_state *ev)
{
	if (ev->stored <= ev->budget)
		return CM_OK;
	return walk_clips(s, txn, evict_clip, ev);
}

cm_err store_media_evict(store *s, uint64_t budget, const uint8_t *keep,
			 size_t n_keep, uint64_t retry_at_ms, uint64_t *media,
			 uint64_t *bytes)
{
	evict_state ev = {.budget = budget, .keep = keep, .n_keep = n_keep,
			  .retry_at = retry_at_ms};
	uint64_t done = 0, head = 0;
	MDB_txn *txn = NULL;
	cm_err err;

	if (media)
		*media = 0;
	if (bytes)
		*bytes = 0;
	err = store_media_index_ensure(s);
	if (!err)
		err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	err = store_u64_get(s, txn, STORE_DB_META, STORE_META_CHUNK_BYTES,
			    strlen(STORE_META_CHUNK_BYTES), &ev.stored);
	if (err || ev.stored <= budget)
		goto out;
	err = mref_seqs(s, txn, &done, &head);
	if (!err)
		err = store_mrefs_catch_up(s, txn);
	if (!err)
		err = evict_orphans(s, txn, &ev);
	if (!err)
		err = evict_unkept(s, txn, &ev);
	/* Entries that the catch-up wrote are committed even when nothing
	 * was evicted, so that the next check does not decode the same
	 * waiting clips again. */
	if (err || (ev.media == 0 && done >= head))
		goto out;
	err = store_txn_commit(txn);
	txn = NULL;
	if (err)
		return err;
	if (media)
		*media = ev.media;
	if (bytes)
		*bytes = ev.bytes;
out:
	if (txn)
		mdb_txn_abort(txn);
	return err;
}

cm_err store_media_users(store *s, const uint8_t root[PROTO_HASH_LEN],
			 uint64_t *count)
{
	uint8_t prefix[STORE_MREF_PREFIX_LEN + PROTO_HASH_LEN];
	uint8_t key[STORE_MREF_KEY_LEN];
	MDB_txn *txn = NULL;
	MDB_val k, v;
	cm_err err;

	*count = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	prefixed_key(prefix, STORE_MREF_PREFIX, root);
	memset(key, 0, sizeof(key));
	memcpy(key, prefix, sizeof(prefix));
	for (bool after = false;; after = true) {
		err = store_seek(s, txn, STORE_DB_META, key, sizeof(key), after,
				 &k, &v);
		/* Past the last key, store_seek leaves k at the sought key,
		 * which would match the prefix forever. */
		if (err == CM_ERR_NOT_FOUND) {
			err = CM_OK;
			break;
		}
		if (err || k.mv_size != sizeof(key) ||
		    memcmp(k.mv_data, prefix, sizeof(prefix)) != 0)
			break;
		memcpy(key, k.mv_data, sizeof(key));
		(*count)++;
	}
	if (!err) {
		uint64_t done, head, waiting = 0;

		err = mref_seqs(s, txn, &done, &head);
		if (!err && done < head)
			err = store_waiting_users(s, txn, done, head, root,
						  &waiting);
		*count += waiting;
	}
	mdb_txn_abort(txn);
	return err;
}

/* --- Fetch backoff ------------------------------------------------------ */

static cm_err backoff_read(store *s, MDB_txn *txn,
			   const uint8_t root[PROTO_HASH_LEN],
			   uint64_t *until_ms, uint32_t *failures)
{
	uint8_t key[STORE_MFAIL_KEY_LEN];
	MDB_val v;
	cm_err err;

	*until_ms = 0;
	*failures = 0;
	prefixed_key(key, STORE_MFAIL_PREFIX, root);
	err = store_db_get(s, txn, STORE_DB_META, key, sizeof(key), &v);
	if (err == CM_ERR_NOT_FOUND)
		return CM_OK;
	if (err)
		return err;
	if (v.mv_size != 12)
		return CM_OK; /* unknown layout: treat as no backoff */
	*until_ms = store_be64_get(v.mv_data);
	*failures = be32_get((const uint8_t *)v.mv_data + 8);
	return CM_OK;
}

cm_err store_media_backoff_get(store *s, const uint8_t root[PROTO_HASH_LEN],
			       uint64_t *until_ms, uint32_t *failures)
{
	MDB_txn *txn = NULL;
	cm_err err;

	*until_ms = 0;
	*failures = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = backoff_read(s, txn, root, until_ms, failures);
	mdb_txn_abort(txn);
	return err;
}

/* Writes one backoff inside txn. */
static cm_err backoff_put_txn(store *s, MDB_txn *txn,
			      const store_backoff *b)
{
	uint8_t key[STORE_MFAIL_KEY_LEN], value[12];
	cm_err err;

	prefixed_key(key, STORE_MFAIL_PREFIX, b->root);
	store_be64_put(value, b->until_ms);
	be32_put(value + 8, b->failures);
	if (b->failures > 0)
		return store_db_put(s, txn, STORE_DB_META, key, sizeof(key),
				    value, sizeof(value), 0);
	err = store_db_del(s, txn, STORE_DB_META, key, sizeof(key));
	return err == CM_ERR_NOT_FOUND ? CM_OK : err;
}

cm_err store_media_backoffs_set(store *s, const store_backoff *list,
				size_t n)
{
	MDB_txn *txn = NULL;
	cm_err err;

	if (n == 0)
		return CM_OK;
	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	for (size_t i = 0; !err && i < n; i++)
		err = backoff_put_txn(s, txn, &list[i]);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
}

cm_err store_media_backoff_set(store *s, const uint8_t root[PROTO_HASH_LEN],
			       uint64_t until_ms, uint32_t failures)
{
	store_backoff b = {.until_ms = until_ms, .failures = failures};

	memcpy(b.root, root, PROTO_HASH_LEN);
	return store_media_backoffs_set(s, &b, 1);
}

/* True when the manifest of root and all its chunks are stored. */
static bool complete_txn(store *s, MDB_txn *txn,
			 const uint8_t root[PROTO_HASH_LEN])
{
	const uint8_t *hashes;
	MDB_val v, chunk;
	size_t n;

	if (store_db_get(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN,
			 &v) ||
	    v.mv_size < 8 || (v.mv_size - 8) % PROTO_HASH_LEN != 0)
		return false;
	n = (v.mv_size - 8) / PROTO_HASH_LEN;
	if (n != proto_media_chunk_count(store_be64_get(v.mv_data)))
		return false;
	hashes = (const uint8_t *)v.mv_data + 8;
	for (size_t i = 0; i < n; i++)
		if (store_db_get(s, txn, STORE_DB_CHUNKS,
				 hashes + i * PROTO_HASH_LEN, PROTO_HASH_LEN,
				 &chunk))
			return false;
	return true;
}

cm_err store_media_fetchable(store *s, const uint8_t (*roots)[PROTO_HASH_LEN],
			     size_t n, uint64_t now_ms, bool *fetch,
			     uint64_t *next_retry)
{
	MDB_txn *txn = NULL;
	uint64_t until;
	uint32_t failures;
	cm_err err;

	*next_retry = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		fetch[i] = false;
		err = backoff_read(s, txn, roots[i], &until, &failures);
		if (err)
			break;
		if (until > now_ms) {
			if (*next_retry == 0 || until < *next_retry)
				*next_retry = until;
			continue;
		}
		fetch[i] = !complete_txn(s, txn, roots[i]);
	}
	mdb_txn_abort(txn);
	return err;
}

/* --- Transfers ---------------------------------------------------------- */

cm_err store_chunks_present(store *s, const uint8_t (*hashes)[PROTO_HASH_LEN],
			    size_t n, bool *present, size_t *count)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	cm_err err;

	*count = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		err = store_db_get(s, txn, STORE_DB_CHUNKS, hashes[i],
				   PROTO_HASH_LEN, &v);
		present[i] = err == CM_OK;
		if (err && err != CM_ERR_NOT_FOUND)
			goto out;
		*count += present[i];
	}
	err = CM_OK;
out:
	mdb_txn_abort(txn);
	return err;
}
