/*
 * store_media.c - media chunks, stored once per hash, and manifests: the
 * size and chunk list of each media root.
 */
#include "store_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto_media.h"

/* Stores one chunk inside txn and adds its size to *added_bytes unless it
 * was stored already. */
static cm_err chunk_put_txn(store *s, MDB_txn *txn,
			    const uint8_t hash[PROTO_HASH_LEN],
			    const uint8_t *data, size_t len,
			    uint64_t *added_bytes)
{
	cm_err err;

	if (len == 0 || len > CM_CHUNK_SIZE)
		return cm_errf(CM_ERR_USAGE, "chunk of %zu bytes is not in "
			       "1..%d", len, CM_CHUNK_SIZE);
	err = store_db_put(s, txn, STORE_DB_CHUNKS, hash, PROTO_HASH_LEN,
			   data, len, MDB_NOOVERWRITE);
	if (err == CM_ERR_EXISTS)
		return CM_OK;
	if (err)
		return err;
	*added_bytes += len;
	return CM_OK;
}

/* Stores n chunks in one write transaction. With `listed`, only those that
 * a stored manifest lists, and sets listed[i] for each of them. */
static cm_err chunks_put(store *s, size_t n,
			 const uint8_t (*hashes)[PROTO_HASH_LEN],
			 const uint8_t *const *data, const size_t *lens,
			 bool *listed)
{
	uint64_t added = 0;
	MDB_txn *txn = NULL;
	cm_err err;

	if (n == 0)
		return CM_OK;
	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		if (listed) {
			listed[i] = store_chunk_listed_txn(s, txn, hashes[i]);
			if (!listed[i])
				continue;
		}
		err = chunk_put_txn(s, txn, hashes[i], data[i], lens[i],
				    &added);
		if (err)
			goto out;
	}
	if (added > 0) {
		err = store_u64_add(s, txn, STORE_DB_META,
				    STORE_META_CHUNK_BYTES,
				    strlen(STORE_META_CHUNK_BYTES), added);
		if (err)
			goto out;
	}
	err = store_txn_commit(txn);
	txn = NULL;
out:
	if (txn)
		mdb_txn_abort(txn);
	return err;
}

cm_err store_chunks_put(store *s, size_t n,
			const uint8_t (*hashes)[PROTO_HASH_LEN],
			const uint8_t *const *data, const size_t *lens)
{
	return chunks_put(s, n, hashes, data, lens, NULL);
}

cm_err store_fetched_chunks_put(store *s, size_t n,
				const uint8_t (*hashes)[PROTO_HASH_LEN],
				const uint8_t *const *data,
				const size_t *lens, bool *listed)
{
	return chunks_put(s, n, hashes, data, lens, listed);
}

cm_err store_chunk_put(store *s, const uint8_t hash[PROTO_HASH_LEN],
		       const uint8_t *data, size_t len)
{
	return store_chunks_put(s, 1, (const uint8_t(*)[PROTO_HASH_LEN])hash,
				&data, &len);
}

/* Copies chunk `hash` into buf[cap]. With drop_pages, also drops the
 * whole memory pages of the stored value from the resident set. */
static cm_err chunk_copy(store *s, const uint8_t hash[PROTO_HASH_LEN],
			 uint8_t *buf, size_t cap, size_t *len,
			 bool drop_pages)
{
	long page = sysconf(_SC_PAGESIZE);
	MDB_txn *txn = NULL;
	uintptr_t start, end;
	MDB_val v;
	cm_err err;

	*len = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = store_db_get(s, txn, STORE_DB_CHUNKS, hash, PROTO_HASH_LEN, &v);
	if (err)
		goto out;
	*len = v.mv_size;
	if (v.mv_size > cap) {
		err = cm_errf(CM_ERR_TOO_LONG, "chunk is %zu bytes, buffer %zu",
			      v.mv_size, cap);
		goto out;
	}
	memcpy(buf, v.mv_data, v.mv_size);
	if (!drop_pages || page <= 0)
		goto out;

	/* The map is a read-only MAP_SHARED file mapping (the store does
	 * not use MDB_WRITEMAP), so dropping the whole pages of the value
	 * loses nothing: the next access reads them again. */
	start = ((uintptr_t)v.mv_data + (uintptr_t)page - 1) &
		~((uintptr_t)page - 1);
	end = ((uintptr_t)v.mv_data + v.mv_size) & ~((uintptr_t)page - 1);
	if (end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
out:
	mdb_txn_abort(txn);
	return err;
}

cm_err store_chunk_get(store *s, const uint8_t hash[PROTO_HASH_LEN],
		       uint8_t *buf, size_t cap, size_t *len)
{
	return chunk_copy(s, hash, buf, cap, len, false);
}

cm_err store_chunk_get_cold(store *s, const uint8_t hash[PROTO_HASH_LEN],
			    uint8_t *buf, size_t cap, size_t *len)
{
	return chunk_copy(s, hash, buf, cap, len, true);
}

bool store_chunk_has(store *s, const uint8_t hash[PROTO_HASH_LEN])
{
	return store_key_exists(s, STORE_DB_CHUNKS, hash, PROTO_HASH_LEN);
}

bool store_manifest_has(store *s, const uint8_t root[PROTO_HASH_LEN])
{
	return store_key_exists(s, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN);
}

cm_err store_manifest_put(store *s, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t size,
			  const uint8_t (*chunks)[PROTO_HASH_LEN], size_t n)
{
	uint8_t *value = NULL;
	size_t value_len;
	MDB_txn *txn = NULL;
	cm_err err;

	if (size > CM_MEDIA_SIZE_MAX || n > CM_MANIFEST_CHUNKS_MAX)
		return cm_errf(CM_ERR_TOO_LONG,
			       "media of %llu bytes in %zu chunks is over the "
			       "limit of %llu bytes",
			       (unsigned long long)size, n,
			       (unsigned long long)CM_MEDIA_SIZE_MAX);
	err = proto_media_check_manifest(root, size, chunks, n);
	if (err)
		return err;

	value_len = 8 + n * PROTO_HASH_LEN;
	value = malloc(value_len);
	if (!value)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a manifest of "
			       "%zu chunks", n);
	store_be64_put(value, size);
	if (n > 0)
		memcpy(value + 8, chunks, n * PROTO_HASH_LEN);

	err = store_txn_begin(s, true, &txn);
	if (err)
		goto out;
	/* The root commits to size and chunk list: an existing manifest of
	 * the same root is the same manifest. */
	err = store_db_put(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN,
			   value, value_len, MDB_NOOVERWRITE);
	if (err == CM_ERR_EXISTS) {
		err = CM_OK;
		goto out;
	}
	if (!err)
		err = store_chunk_refs_add(s, txn, chunks, n);
	if (err)
		goto out;
	err = store_txn_commit(txn);
	txn = NULL;
out:
	if (txn)
		mdb_txn_abort(txn);
	free(value);
	return err;
}

/* Checks a stored manifest value and returns its size and chunk count. */
static cm_err manifest_parse(const MDB_val *v, uint64_t *size, size_t *n)
{
	size_t chunks_len;

	if (v->mv_size < 8 || (v->mv_size - 8) % PROTO_HASH_LEN != 0)
		return cm_errf(CM_ERR_STORE, "stored manifest of %zu bytes is "
			       "malformed; run clipmesh store check",
			       v->mv_size);
	chunks_len = v->mv_size - 8;
	*size = store_be64_get(v->mv_data);
	*n = chunks_len / PROTO_HASH_LEN;
	if (*n != proto_media_chunk_count(*size))
		return cm_errf(CM_ERR_STORE, "stored manifest lists %zu chunks "
			       "for %llu bytes; run clipmesh store check",
			       *n, (unsigned long long)*size);
	return CM_OK;
}

cm_err store_manifest_get(store *s, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t *size, uint8_t (**chunks)[PROTO_HASH_LEN],
			  size_t *n)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	cm_err err;

	*size = 0;
	*chunks = NULL;
	*n = 0;
	err = store_txn_begin(s, false, &txn);
	if (err)
		return err;
	err = store_db_get(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN,
			   &v);
	if (!err)
		err = manifest_parse(&v, size, n);
	if (err || *n == 0)
		goto out;
	*chunks = malloc(*n * PROTO_HASH_LEN);
	if (!*chunks) {
		err = cm_errf(CM_ERR_NOMEM, "cannot copy a manifest of %zu "
			      "chunks", *n);
		goto out;
	}
	memcpy(*chunks, (uint8_t *)v.mv_data + 8, *n * PROTO_HASH_LEN);
out:
	if (err) {
		*size = 0;
		*n = 0;
	}
	mdb_txn_abort(txn);
	return err;
}

cm_err store_media_resolve(store *s, const char *hex_prefix,
			   uint8_t root[PROTO_HASH_LEN])
{
	return store_resolve_prefix(s, STORE_DB_MANIFESTS, "media hash",
				    hex_prefix, root);
}

bool store_media_complete(store *s, const uint8_t root[PROTO_HASH_LEN])
{
	const uint8_t *hashes;
	MDB_txn *txn = NULL;
	uint64_t size = 0;
	bool complete = false;
	MDB_val v, chunk;
	size_t n = 0;

	if (store_txn_begin(s, false, &txn))
		return false;
	if (store_db_get(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN,
			 &v) ||
	    manifest_parse(&v, &size, &n))
		goto out;
	hashes = (const uint8_t *)v.mv_data + 8;
	for (size_t i = 0; i < n; i++)
		if (store_db_get(s, txn, STORE_DB_CHUNKS,
				 hashes + i * PROTO_HASH_LEN, PROTO_HASH_LEN,
				 &chunk))
			goto out;
	complete = true;
out:
	mdb_txn_abort(txn);
	return complete;
}
