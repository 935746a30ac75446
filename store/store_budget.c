/*
 * store_budget.c - media reads for transfers: which chunks of a list are
 * stored (for resumed fetches), and chunk reads that keep the resident
 * set flat.
 * NOTE: the media budget and the freeing of retracted media are not here
 * yet; they need a reverse index media root -> clips.
 */
#include "store_internal.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

cm_err store_chunk_get_cold(store *s, const uint8_t hash[PROTO_HASH_LEN],
			    uint8_t *buf, size_t cap, size_t *len)
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

	/* The map is a read-only MAP_SHARED file mapping (the store does
	 * not use MDB_WRITEMAP), so dropping the whole pages of the value
	 * loses nothing: the next access reads them again. */
	start = ((uintptr_t)v.mv_data + (uintptr_t)page - 1) &
		~((uintptr_t)page - 1);
	end = ((uintptr_t)v.mv_data + v.mv_size) & ~((uintptr_t)page - 1);
	if (page > 0 && end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
out:
	mdb_txn_abort(txn);
	return err;
}
