/*
 * store_media.c - media chunks, stored once per hash, and manifests: the
 * size and chunk list of each media root.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cm_log.h"
#include "cm_util.h"
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

/* Fails with CM_ERR_NOT_FOUND, naming root, when its manifest is not
 * stored in txn. */
static cm_err manifest_present(store *s, MDB_txn *txn,
			       const uint8_t root[PROTO_HASH_LEN])
{
	char hex[2 * PROTO_HASH_LEN + 1];
	MDB_val v;
	cm_err err;

	err = store_db_get(s, txn, STORE_DB_MANIFESTS, root, PROTO_HASH_LEN,
			   &v);
	if (err != CM_ERR_NOT_FOUND)
		return err;
	cm_hex_encode(root, PROTO_HASH_LEN, hex);
	return cm_errf(CM_ERR_NOT_FOUND, "the manifest of media %.16s was "
		       "freed while its chunks were stored; publish again",
		       hex);
}

/* Stores n chunks in one write transaction. With `root`, only while the
 * manifest of root is stored. With `listed`, only those that a stored
 * manifest lists, and sets listed[i] for each of them. */
static cm_err chunks_put(store *s, const uint8_t *root, size_t n,
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
	if (root && (err = manifest_present(s, txn, root)))
		goto out;
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
	return chunks_put(s, NULL, n, hashes, data, lens, NULL);
}

cm_err store_root_chunks_put(store *s, const uint8_t root[PROTO_HASH_LEN],
			     size_t n, const uint8_t (*hashes)[PROTO_HASH_LEN],
			     const uint8_t *const *data, const size_t *lens)
{
	return chunks_put(s, root, n, hashes, data, lens, NULL);
}

/* A range of the data file, in bytes. */
typedef struct file_range {
	uint64_t start;
	uint64_t end;
} file_range;

/* Sets *r to the pages of the data file that value v, found in an open
 * transaction, occupies. v is a chunk, which fills overflow pages of its
 * own, so the range is widened to whole pages. False when v is not in
 * the map. */
static bool value_pages(const store *s, const MDB_val *v, uint64_t map_size,
			uint64_t page, file_range *r)
{
	uintptr_t value = (uintptr_t)v->mv_data;
	uint64_t offset;

	if (value < s->map_base || value - s->map_base > map_size - v->mv_size)
		return false;
	offset = (uint64_t)(value - s->map_base);
	r->start = offset & ~(page - 1);
	r->end = (offset + v->mv_size + page - 1) & ~(page - 1);
	return true;
}

/* Sorts ranges[0..n) by start and merges those that touch or overlap;
 * returns the count left. */
static size_t ranges_merge(file_range *ranges, size_t n)
{
	size_t out = 0;

	for (size_t i = 1; i < n; i++) {
		file_range r = ranges[i];
		size_t j = i;

		for (; j > 0 && ranges[j - 1].start > r.start; j--)
			ranges[j] = ranges[j - 1];
		ranges[j] = r;
	}
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && ranges[i].start <= ranges[out - 1].end) {
			if (ranges[i].end > ranges[out - 1].end)
				ranges[out - 1].end = ranges[i].end;
			continue;
		}
		ranges[out++] = ranges[i];
	}
	return out;
}

/*
 * Drops the file pages of the listed chunks from the page cache, after
 * their commit synced them. Otherwise a fetch fills the page cache with
 * media that is read again only when a peer requests it. On a virtual
 * machine whose host backs guest memory lazily, the kernel's copy into
 * newly allocated page-cache pages also cost a fetcher about as much CPU
 * as the network transfer (bench/RESULTS.md). Pages freed here are
 * reused by the next commit instead.
 *
 * The chunks of one commit mostly lie next to each other, and their
 * ranges are merged first. Dropped one chunk at a time, nearly all pages
 * stayed cached (Linux 6.18, ext4), most likely because the kernel keeps
 * a large folio that reaches outside the range it is asked to drop.
 * Errors are ignored: the pages then stay cached, which is only slower.
 */
static void chunks_uncache(store *s, size_t n,
			   const uint8_t (*hashes)[PROTO_HASH_LEN],
			   const bool *listed)
{
	file_range ranges[CM_MEDIA_WRITE_BATCH];
	long page = sysconf(_SC_PAGESIZE);
	MDB_txn *txn = NULL;
	mdb_filehandle_t fd;
	size_t count = 0;
	MDB_envinfo info;
	MDB_val v;

	if (!s->map_base || page <= 0 || mdb_env_get_fd(s->env, &fd) ||
	    mdb_env_info(s->env, &info) || store_txn_begin(s, false, &txn))
		return;
	for (size_t i = 0; i < n && count < CM_MEDIA_WRITE_BATCH; i++)
		if (listed[i] &&
		    store_db_get(s, txn, STORE_DB_CHUNKS, hashes[i],
				 PROTO_HASH_LEN, &v) == CM_OK &&
		    value_pages(s, &v, info.me_mapsize, (uint64_t)page,
				&ranges[count]))
			count++;
	mdb_txn_abort(txn);

	count = ranges_merge(ranges, count);
	for (size_t i = 0; i < count; i++)
		posix_fadvise(fd, (off_t)ranges[i].start,
			      (off_t)(ranges[i].end - ranges[i].start),
			      POSIX_FADV_DONTNEED);
}

cm_err store_fetched_chunks_put(store *s, size_t n,
				const uint8_t (*hashes)[PROTO_HASH_LEN],
				const uint8_t *const *data,
				const size_t *lens, bool *listed)
{
	cm_err err = chunks_put(s, NULL, n, hashes, data, lens, listed);

	if (!err)
		chunks_uncache(s, n, hashes, listed);
	return err;
}

cm_err store_chunk_put(store *s, const uint8_t hash[PROTO_HASH_LEN],
		       const uint8_t *data, size_t len)
{
	return store_chunks_put(s, 1, (const uint8_t(*)[PROTO_HASH_LEN])hash,
				&data, &len);
}

uintptr_t store_map_locate(store *s)
{
	char line[512];
	mdb_filehandle_t fd;
	MDB_envinfo info;
	struct stat st;
	uintptr_t base = 0;
	FILE *maps;

	if (mdb_env_get_fd(s->env, &fd) || fstat(fd, &st) ||
	    mdb_env_info(s->env, &info))
		return 0;
	maps = fopen("/proc/self/maps", "re");
	if (!maps)
		return 0;
	/* Lines are "start-end perms offset major:minor inode path". A
	 * longer line is read in parts, and only its first part parses. */
	while (!base && fgets(line, sizeof(line), maps)) {
		unsigned long long start, end, offset, inode;
		unsigned major, minor;

		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &start, &end,
			   &offset, &major, &minor, &inode) == 6 &&
		    inode == (unsigned long long)st.st_ino &&
		    makedev(major, minor) == st.st_dev && offset == 0 &&
		    end - start == info.me_mapsize)
			base = (uintptr_t)start;
	}
	fclose(maps);
	return base;
}

/* Copies the n bytes at `offset` of the data file into buf, looping
 * over short reads. */
static cm_err file_read(store *s, uint8_t *buf, size_t n, uint64_t offset)
{
	mdb_filehandle_t fd;
	size_t done = 0;
	int rc;

	rc = mdb_env_get_fd(s->env, &fd);
	if (rc)
		return store_mdb_error(rc, "mdb_env_get_fd", "chunks");
	while (done < n) {
		ssize_t got = pread(fd, buf + done, n - done,
				    (off_t)(offset + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return cm_errf(CM_ERR_IO, "reading %zu bytes at offset "
				       "%llu of the store failed: %s", n,
				       (unsigned long long)offset,
				       strerror(errno));
		if (got == 0)
			return cm_errf(CM_ERR_STORE, "the store file ends at "
				       "offset %llu, inside a chunk; run "
				       "clipmesh store check",
				       (unsigned long long)(offset + done));
		done += (size_t)got;
	}
	return CM_OK;
}

/* Drops the whole memory pages of value v from the resident set. The map
 * is a read-only MAP_SHARED file mapping (the store does not use
 * MDB_WRITEMAP), so this loses nothing: the next access reads the pages
 * again. */
static void pages_drop(const MDB_val *v)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t start, end;

	if (page <= 0)
		return;
	start = ((uintptr_t)v->mv_data + (uintptr_t)page - 1) &
		~((uintptr_t)page - 1);
	end = ((uintptr_t)v->mv_data + v->mv_size) & ~((uintptr_t)page - 1);
	if (end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
}

/*
 * Copies value v, found in a read transaction that is still open, into
 * buf without keeping its pages in this process's resident set. The
 * bytes come from the data file with pread(): v lies in the map at the
 * same offset as in the file, and its pages do not change while the
 * transaction is open. pread() neither maps pages nor takes page faults,
 * and unlike the fallback it maps no neighbouring pages (the kernel maps
 * up to 16 pages around a faulting one), which stayed resident when a
 * peer requested every third chunk.
 */
static cm_err value_copy_cold(store *s, const MDB_val *v, uint8_t *buf)
{
	uintptr_t value = (uintptr_t)v->mv_data;
	size_t map_size = 0;
	MDB_envinfo info;

	if (s->map_base && mdb_env_info(s->env, &info) == 0)
		map_size = info.me_mapsize;
	if (map_size > 0 && value >= s->map_base &&
	    value - s->map_base <= map_size - v->mv_size)
		return file_read(s, buf, v->mv_size,
				 (uint64_t)(value - s->map_base));

	memcpy(buf, v->mv_data, v->mv_size);
	pages_drop(v);
	return CM_OK;
}

/* Copies chunk `hash` into buf[cap], with `cold` through
 * value_copy_cold. */
static cm_err chunk_copy(store *s, const uint8_t hash[PROTO_HASH_LEN],
			 uint8_t *buf, size_t cap, size_t *len, bool cold)
{
	MDB_txn *txn = NULL;
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
	if (cold)
		err = value_copy_cold(s, &v, buf);
	else
		memcpy(buf, v.mv_data, v.mv_size);
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

cm_err store_manifest_put_txn(store *s, MDB_txn *txn,
			      const store_manifest *m)
{
	uint8_t *value = NULL;
	size_t value_len;
	cm_err err;

	if (m->size > CM_MEDIA_SIZE_MAX || m->n_chunks > CM_MANIFEST_CHUNKS_MAX)
		return cm_errf(CM_ERR_TOO_LONG,
			       "media of %llu bytes in %zu chunks is over the "
			       "limit of %llu bytes",
			       (unsigned long long)m->size, m->n_chunks,
			       (unsigned long long)CM_MEDIA_SIZE_MAX);
	err = proto_media_check_manifest(m->root, m->size, m->chunks,
					 m->n_chunks);
	if (err)
		return err;

	value_len = 8 + m->n_chunks * PROTO_HASH_LEN;
	value = malloc(value_len);
	if (!value)
		return cm_errf(CM_ERR_NOMEM, "cannot allocate a manifest of "
			       "%zu chunks", m->n_chunks);
	store_be64_put(value, m->size);
	if (m->n_chunks > 0)
		memcpy(value + 8, m->chunks, m->n_chunks * PROTO_HASH_LEN);

	/* The root commits to size and chunk list: an existing manifest of
	 * the same root is the same manifest. */
	err = store_db_put(s, txn, STORE_DB_MANIFESTS, m->root, PROTO_HASH_LEN,
			   value, value_len, MDB_NOOVERWRITE);
	if (err == CM_ERR_EXISTS)
		err = CM_OK;
	else if (!err)
		err = store_chunk_refs_add(s, txn, m->chunks, m->n_chunks);
	free(value);
	return err;
}

cm_err store_manifest_put(store *s, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t size,
			  const uint8_t (*chunks)[PROTO_HASH_LEN], size_t n)
{
	store_manifest m = {.size = size, .chunks = chunks, .n_chunks = n};
	MDB_txn *txn = NULL;
	cm_err err;

	memcpy(m.root, root, PROTO_HASH_LEN);
	err = store_txn_begin(s, true, &txn);
	if (err)
		return err;
	err = store_manifest_put_txn(s, txn, &m);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	return store_txn_commit(txn);
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
	/* A damaged disk may have changed it since it was checked. */
	if (!err && proto_media_check_manifest(
			    root, *size,
			    (const uint8_t (*)[PROTO_HASH_LEN])(
				    (uint8_t *)v.mv_data + 8),
			    *n) != CM_OK)
		err = cm_errf(CM_ERR_STORE, "stored manifest of %llu bytes "
			      "does not hash to its media hash; run clipmesh "
			      "store check", (unsigned long long)*size);
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

/* Sums the sizes of the stored chunks inside txn. */
static cm_err chunk_bytes_count(store *s, MDB_txn *txn, uint64_t *total)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc;

	*total = 0;
	rc = mdb_cursor_open(txn, s->dbi[STORE_DB_CHUNKS], &cur);
	if (rc)
		return store_mdb_error(rc, "mdb_cursor_open", "chunks");
	/* A chunk's size is in its leaf node, so its overflow pages are
	 * not read. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		*total += v.mv_size;
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return store_mdb_error(rc, "mdb_cursor_get", "chunks");
	return CM_OK;
}

cm_err store_chunk_bytes_init(store *s, MDB_txn *txn, const char *dir,
			      bool repair)
{
	const char *key = STORE_META_CHUNK_BYTES;
	uint64_t stored = 0, counted = 0;
	char found[48] = "is missing";
	uint8_t buf[8];
	MDB_stat stat;
	MDB_val v;
	cm_err err;
	int rc;

	rc = mdb_stat(txn, s->dbi[STORE_DB_CHUNKS], &stat);
	if (rc)
		return store_mdb_error(rc, "mdb_stat", "chunks");
	err = store_db_get(s, txn, STORE_DB_META, key, strlen(key), &v);
	if (err == CM_ERR_NOT_FOUND && stat.ms_entries == 0)
		return CM_OK;
	if (err && err != CM_ERR_NOT_FOUND)
		return err;
	if (!err && v.mv_size == 8) {
		stored = store_be64_get(v.mv_data);
		if (stored <= (uint64_t)stat.ms_entries * CM_CHUNK_SIZE)
			return CM_OK;
		snprintf(found, sizeof(found), "reads %llu",
			 (unsigned long long)stored);
	} else if (!err) {
		snprintf(found, sizeof(found), "is %zu bytes", v.mv_size);
	}

	if (!repair)
		return store_needs_repair(s, "chunk_bytes");
	err = chunk_bytes_count(s, txn, &counted);
	if (err)
		return err;
	cm_warn("store", "store %s: meta key 'chunk_bytes' %s, which does "
		"not fit the %zu stored chunks; the key was damaged and is "
		"set to their total, %llu bytes", dir, found, stat.ms_entries,
		(unsigned long long)counted);
	store_be64_put(buf, counted);
	return store_db_put(s, txn, STORE_DB_META, key, strlen(key), buf,
			    sizeof(buf), 0);
}
