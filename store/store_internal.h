/*
 * store_internal.h - definitions shared by the source files of store/.
 * Not part of the store's interface: only the store sources include it.
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <lmdb.h>

#include "store.h"

/* Bytes of the BLAKE2b hash that stands for a product or tag in keys. */
#define STORE_LABEL_HASH_LEN 16

/* Suffix of every time-ordered index key: created_be64 || id. */
#define STORE_TIME_KEY_LEN STORE_CURSOR_LEN

/* Maximum length of an index key: author || created_be64 || id. */
#define STORE_INDEX_KEY_MAX (PROTO_KEY_LEN + STORE_TIME_KEY_LEN)

/* Key of the retracted database: target || author || retraction id. */
#define STORE_RETRACTED_KEY_LEN (PROTO_ID_LEN + PROTO_KEY_LEN + PROTO_ID_LEN)

/* Values of the retracted database. A pending retraction names a target
 * that was never stored, so its author is not checked yet. */
#define STORE_RETRACT_PENDING 0
#define STORE_RETRACT_CONFIRMED 1

/* Key in the meta database of the total size of stored chunks. */
#define STORE_META_CHUNK_BYTES "chunk_bytes"

/*
 * Keys in the meta database of the media reference index (store_budget.c):
 *   "mref" || root || created_be64 || clip id -> author key
 *     one entry per media root that a stored clip lists;
 *   "cref" || chunk hash -> be32 count of stored manifests listing it;
 *   "mfail" || root -> until_be64 (wall ms) || be32 failures
 *     media whose fetch failed or was evicted, not fetched before until;
 *   "media_index" -> 1 once mref and cref entries cover the whole store;
 *   "mref_seq" -> be64 acceptance log number: every stored clip accepted
 *     up to it has its "mref" entries. Those of later clips are written
 *     in one sorted batch (store_mrefs_catch_up) before any reader
 *     needs them, or once CM_MREF_DEFER_MAX of them wait.
 */
#define STORE_MREF_PREFIX "mref"
#define STORE_MREF_PREFIX_LEN 4
#define STORE_MREF_KEY_LEN \
	(STORE_MREF_PREFIX_LEN + PROTO_HASH_LEN + STORE_TIME_KEY_LEN)
#define STORE_CREF_PREFIX "cref"
#define STORE_CREF_KEY_LEN (4 + PROTO_HASH_LEN)
#define STORE_MFAIL_PREFIX "mfail"
#define STORE_MFAIL_KEY_LEN (5 + PROTO_HASH_LEN)
#define STORE_META_MEDIA_INDEX "media_index"
#define STORE_META_MREF_SEQ "mref_seq"

/*
 * Key in the meta database of a publish in progress (store_publish.c):
 *   "publish" || token -> the media roots (PROTO_HASH_LEN bytes each)
 *     whose manifests the publish stored. The publishing process holds
 *     an flock on the file STORE_PUBLISH_DIR/<token in hex> of the store
 *     folder until the transaction that stores its record deletes the
 *     key. A key whose file is not locked belongs to a publish that
 *     died, and store_publish_sweep frees its media.
 */
#define STORE_PUBLISH_PREFIX "publish"
#define STORE_PUBLISH_PREFIX_LEN 7
#define STORE_PUBLISH_TOKEN_LEN 16
#define STORE_PUBLISH_KEY_LEN \
	(STORE_PUBLISH_PREFIX_LEN + STORE_PUBLISH_TOKEN_LEN)
#define STORE_PUBLISH_DIR "publish"

/* The named LMDB databases; store.c describes their keys and values. */
typedef enum store_db {
	STORE_DB_RECORDS,
	STORE_DB_SYNC,
	STORE_DB_FEED,
	STORE_DB_AUTHOR,
	STORE_DB_PRODUCT,
	STORE_DB_TAG,
	STORE_DB_RETRACTED,
	STORE_DB_PROFILES,
	STORE_DB_CHUNKS,
	STORE_DB_MANIFESTS,
	STORE_DB_FOLLOWS,
	STORE_DB_PEERS,
	STORE_DB_COUNTERS,
	STORE_DB_META,
	STORE_DB_FP,
	STORE_DB_LOG,
	STORE_DB_KNOWN_PEERS,
	STORE_DB_COUNT
} store_db;

typedef struct store_fp_batch store_fp_batch;
typedef struct store_waiting store_waiting;

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_DB_COUNT];
	/* Aggregate changes of the write transaction in progress
	 * (store_put_batch); NULL outside one. */
	store_fp_batch *fp_batch;
	/* Address at which LMDB mapped the data file, found at open for
	 * reads with pread() (store_media.c); 0 when unknown. */
	uintptr_t map_base;
	/* Media roots of the clips whose "mref" entries wait
	 * (store_waiting.c). */
	store_waiting *waiting;
	/* Set while opening when an open check needs a write transaction
	 * (store_needs_repair). */
	bool needs_write;
	/* Folder of the store, as given to store_open; malloc'd. */
	char *dir;
};

/* Returns the LMDB name of database db, for error details. */
const char *store_db_name(store_db db);

/*
 * Translates LMDB return code rc of `call` on `object` (a database or
 * folder name) into a cm_err with a detail naming both and the
 * mdb_strerror() text. MDB_MAP_FULL and ENOSPC become CM_ERR_STORE_FULL.
 */
cm_err store_mdb_error(int rc, const char *call, const char *object);

/*
 * Checks the two LMDB meta pages of dir/data.mdb with pread() before
 * LMDB maps the file. Each needs the magic and the format version, and a
 * page size that is a power of two within LMDB's bounds, the same in
 * both. The file must hold the pages in use. LMDB 0.9 maps the file with
 * the page size it reads there unchecked, so a damaged one ends the
 * process with SIGBUS. Returns CM_OK when the file does not exist, and
 * CM_ERR_STORE when a check fails, also for one damaged page, with a
 * detail that names the file, the damaged page and the fix. CM_ERR_IO
 * when a read fails.
 */
cm_err store_check_meta_pages(const char *dir);

/* Begins a read-only (write == false) or write transaction. */
cm_err store_txn_begin(store *s, bool write, MDB_txn **txn);

/* Commits txn, which is freed also on failure. A full map or a nearly
 * full disk returns CM_ERR_STORE_FULL with a detail that names the fix. */
cm_err store_txn_commit(MDB_txn *txn);

/* Looks up key in db. CM_ERR_NOT_FOUND (with no detail) when absent.
 * val points into the map and is valid until txn ends or writes. */
cm_err store_db_get(store *s, MDB_txn *txn, store_db db, const void *key,
		    size_t key_len, MDB_val *val);

/* True when key is in db, looked up in a read transaction of its own;
 * false also when the transaction cannot begin. */
bool store_key_exists(store *s, store_db db, const void *key,
		      size_t key_len);

/* Stores key -> val in db. With MDB_NOOVERWRITE in flags an existing key
 * returns CM_ERR_EXISTS (with no detail) and changes nothing. */
cm_err store_db_put(store *s, MDB_txn *txn, store_db db, const void *key,
		    size_t key_len, const void *val, size_t val_len,
		    unsigned flags);

/*
 * Calls fn(ctx, key, value) for each entry of db in key order until fn
 * returns non-zero. Key and value are valid only during the call.
 */
cm_err store_db_walk(store *s, MDB_txn *txn, store_db db,
		     int (*fn)(void *ctx, const MDB_val *k, const MDB_val *v),
		     void *ctx);

/* Deletes key from db; an absent key is not an error. */
cm_err store_db_del(store *s, MDB_txn *txn, store_db db, const void *key,
		    size_t key_len);

/*
 * Finds the first entry of db whose key is >= key, or > key when `after`
 * is set. CM_ERR_NOT_FOUND (with no detail) when there is none. The
 * found key and value point into the map like store_db_get's.
 */
cm_err store_seek(store *s, MDB_txn *txn, store_db db, const void *key,
		  size_t key_len, bool after, MDB_val *found_key,
		  MDB_val *found_val);

/* Adds delta to the big-endian u64 value of key in db (absent: 0),
 * stopping at UINT64_MAX. */
cm_err store_u64_add(store *s, MDB_txn *txn, store_db db, const void *key,
		     size_t key_len, uint64_t delta);

/* Reads the big-endian u64 value of key in db; 0 when absent. */
cm_err store_u64_get(store *s, MDB_txn *txn, store_db db, const void *key,
		     size_t key_len, uint64_t *value);

/*
 * Resolves a hex prefix of CM_ID_PREFIX_MIN to 64 chars to the one key of
 * db (whose keys are 32 bytes) that starts with it. `what` names the kind
 * of key in error details ("record id", "media hash").
 */
cm_err store_resolve_prefix(store *s, store_db db, const char *what,
			    const char *hex_prefix, uint8_t out[32]);

/* Finds the body inside the wire form [body, signature] of a stored
 * record. CM_ERR_STORE when the envelope is malformed. */
cm_err store_wire_body(const uint8_t *wire, size_t len, const uint8_t **body,
		       size_t *body_len);

/*
 * Reads and decodes stored record id into *rec; *wire (may be NULL)
 * receives its wire bytes. CM_ERR_NOT_FOUND (with no detail) when absent,
 * CM_ERR_STORE when the stored bytes do not decode.
 */
cm_err store_load_record(store *s, MDB_txn *txn, const uint8_t id[PROTO_ID_LEN],
			 proto_record *rec, MDB_val *wire);

/* Hashes a product reference or tag into its index key prefix. */
void store_label_hash(const char *label, uint8_t out[STORE_LABEL_HASH_LEN]);

/* One entry of a time-ordered index: key and value (the kind byte in the
 * sync and author indexes, empty in the others). */
typedef struct store_index_entry {
	store_db db;
	uint8_t key[STORE_INDEX_KEY_MAX];
	size_t key_len;
	uint8_t value;
	size_t value_len;
} store_index_entry;

/* Entries of one record: sync, author, feed, product and one per tag. */
#define STORE_INDEX_ENTRIES_MAX (4 + CM_TAGS_MAX)

/*
 * Lists the time-ordered index entries of record id into out and returns
 * their count. Adding, deleting and checking a record all use this list,
 * so no entry can be left behind.
 */
size_t store_index_entries(const proto_record *rec,
			   const uint8_t id[PROTO_ID_LEN],
			   store_index_entry out[STORE_INDEX_ENTRIES_MAX]);

/* Writes prefix || created_be64 || id into out; returns its length. */
size_t store_index_key(uint8_t out[STORE_INDEX_KEY_MAX], const uint8_t *prefix,
		       size_t prefix_len, uint64_t created_ms,
		       const uint8_t id[PROTO_ID_LEN]);

/* --- store_log.c: format version and acceptance log --------------- */

/* The store format this code writes; store_log.c lists each version. */
#define STORE_FORMAT 3

/*
 * Checks the format version of an opened store in write transaction txn
 * and migrates an older store to STORE_FORMAT. Opens the meta database
 * itself and must run before any other database is created, so that a
 * store of a newer format is refused (CM_ERR_STORE_VERSION) before
 * anything is written.
 */
cm_err store_format_check(store *s, MDB_txn *txn, const char *dir,
			  uint64_t *migrate_from);

/* store_log_check_head, store_mrefs_init and store_chunk_bytes_init
 * take `repair`. Without it they write nothing and fail where they would
 * repair, so that a store in good order opens in a read transaction
 * (store.c, open_dbs). */

/* Migrates a store of format `from` (set by store_format_check) to
 * STORE_FORMAT once every database is open. A format 1 store whose
 * acceptance log already has entries only gets its format key set
 * again, because a real format 1 store has none. */
cm_err store_format_migrate(store *s, MDB_txn *txn, const char *dir,
			    uint64_t from);

/* Sets the meta key log_head to the last acceptance log entry when the
 * two differ, with a warning. Every append writes both in one
 * transaction, so they differ only when the key was damaged, and a head
 * behind the log would make every later append fail. */
cm_err store_log_check_head(store *s, MDB_txn *txn, const char *dir,
			    bool repair);

/* Gives record id, added in txn, the next sequence number. */
/* Reads the last acceptance log number inside txn. */
cm_err store_log_head_txn(store *s, MDB_txn *txn, uint64_t *seq);

cm_err store_log_append(store *s, MDB_txn *txn,
			const uint8_t id[PROTO_ID_LEN]);

/* --- store_fp.c: reconciliation aggregates ----------------------- */

/* Starts collecting aggregate changes for a write transaction in
 * s->fp_batch. */
cm_err store_fp_batch_begin(store *s);

/* Records that record id (decoded as rec) was added to or removed from
 * the store in the current write transaction. */
cm_err store_fp_note(store *s, const proto_record *rec,
		     const uint8_t id[PROTO_ID_LEN], bool removed);

/* Writes the collected changes, each touched bucket once; call just
 * before the commit. */
cm_err store_fp_batch_flush(store *s, MDB_txn *txn);

/* Frees s->fp_batch; accepts a store without one. */
void store_fp_batch_end(store *s);

/* --- store_budget.c: media reference index ---------------------- */

/*
 * Adds (removed == false) or deletes the "mref" entries of clip id,
 * decoded as rec, inside txn; other kinds are ignored. On removal, the
 * media that no stored clip lists any more is freed in the same txn; the
 * first removal builds the index for a store written before it existed.
 */
cm_err store_media_refs_txn(store *s, MDB_txn *txn, const proto_record *rec,
			    const uint8_t id[PROTO_ID_LEN], bool removed);

/* Writes the "mref" entries of the clips accepted after "mref_seq", in
 * key order, and moves "mref_seq" to the log head. */
cm_err store_mrefs_catch_up(store *s, MDB_txn *txn);

/* Catches up (store_mrefs_catch_up) once CM_MREF_DEFER_MAX clips wait. */
cm_err store_mrefs_defer_check(store *s, MDB_txn *txn);

/* Sets "mref_seq" to the log head when the key is missing: a store
 * written before references were deferred has every entry. Sets it to 0,
 * with a warning naming dir, when it is damaged or above the log head. */
cm_err store_mrefs_init(store *s, MDB_txn *txn, const char *dir,
			bool repair);

/* Sets "chunk_bytes" to the stored chunks' total, with a warning naming
 * dir, when the key is missing while chunks exist, is not 8 bytes, or is
 * above CM_CHUNK_SIZE bytes per stored chunk. A value that high would
 * make a media budget check free media that fits the budget. Lower values
 * pass, because only a walk over every chunk finds them; store_check
 * does that walk (store_media.c). */
cm_err store_chunk_bytes_init(store *s, MDB_txn *txn, const char *dir,
			      bool repair);

/* Returns the error of an open check, run without `repair`, that found
 * `item` to repair, and sets s->needs_write. */
cm_err store_needs_repair(store *s, const char *item);

/* Reads the format version of the store in txn, or 0 when none is set.
 * The meta database must be open. */
cm_err store_format_get(store *s, MDB_txn *txn, uint64_t *format);

/* Calls fn for each clip still stored that was accepted after log number
 * `after`, in acceptance order. Entries whose record is gone or does not
 * load are skipped, as readers of the log skip them. */
cm_err store_log_walk_clips(store *s, MDB_txn *txn, uint64_t after,
			    cm_err (*fn)(void *ctx, const proto_record *rec,
					 const uint8_t id[PROTO_ID_LEN]),
			    void *ctx);

/* --- store_waiting.c: media roots of clips whose entries wait --------- */

/* Allocates an empty list; store_waiting_free frees it, accepts NULL and
 * clears the caller's pointer. */
cm_err store_waiting_new(store_waiting **out);
void store_waiting_free(store_waiting **w);

/*
 * Counts the clips accepted after log number done ("mref_seq") up to head
 * (both read in txn) that list root. Decodes only the clips accepted since
 * the last count, unless "mref_seq" moved. Safe to call from several
 * threads with transactions of their own.
 */
cm_err store_waiting_users(store *s, MDB_txn *txn, uint64_t done,
			   uint64_t head, const uint8_t root[PROTO_HASH_LEN],
			   uint64_t *count);

/* Returns the address at which the environment's data file is mapped
 * in this process, or 0 when it cannot be found (store_media.c). */
uintptr_t store_map_locate(store *s);

/* True when a stored manifest lists chunk `hash` (its "cref" count is
 * above 0), and also while the index is not built. */
bool store_chunk_listed_txn(store *s, MDB_txn *txn,
			    const uint8_t hash[PROTO_HASH_LEN]);

/* Adds one to the "cref" count of each chunk of a manifest stored for
 * the first time in txn. */
cm_err store_chunk_refs_add(store *s, MDB_txn *txn,
			    const uint8_t (*chunks)[PROTO_HASH_LEN], size_t n);

/* Deletes the manifest of root and every chunk that no other manifest
 * lists, and subtracts their size from "chunk_bytes". Adds the freed
 * chunk bytes to *freed (may be NULL). An absent manifest is no error. */
cm_err store_media_free_txn(store *s, MDB_txn *txn,
			    const uint8_t root[PROTO_HASH_LEN],
			    uint64_t *freed);

/* Returns CM_OK when an "mref" entry lists root, CM_ERR_NOT_FOUND (with
 * no detail) when none does. Entries that still wait are not seen, so
 * call store_mrefs_catch_up in txn first. */
cm_err store_media_listed_txn(store *s, MDB_txn *txn,
			      const uint8_t root[PROTO_HASH_LEN]);

/* Called with the outcomes of a batch inside its write transaction,
 * before the commit; an error aborts the batch. */
typedef cm_err (*store_batch_hook)(void *ctx, MDB_txn *txn,
				   const cm_err *results);

/* Stores a batch like store_put_batch and calls `then` before the
 * commit, so that its writes commit with the records or not at all. */
cm_err store_put_batch_then(store *s, const proto_signed *recs, size_t n,
			    cm_err *results, store_batch_hook then,
			    void *ctx);

/* Stores chunks like store_chunks_put while the manifest of root is
 * stored; CM_ERR_NOT_FOUND, with a detail, once it is not. */
cm_err store_root_chunks_put(store *s, const uint8_t root[PROTO_HASH_LEN],
			     size_t n, const uint8_t (*hashes)[PROTO_HASH_LEN],
			     const uint8_t *const *data, const size_t *lens);

/* Subtracts delta from "chunk_bytes", stopping at 0. */
cm_err store_chunk_bytes_sub(store *s, MDB_txn *txn, uint64_t delta);

/* Stores a manifest inside txn and adds its "cref" counts, unless the
 * same root is stored already. Checks it like store_manifest_put. */
cm_err store_manifest_put_txn(store *s, MDB_txn *txn,
			      const store_manifest *m);

/* True when the publish of token still holds the lock of its lock file,
 * or the file cannot be checked (store_publish.c). */
bool store_publish_running(store *s,
			   const uint8_t token[STORE_PUBLISH_TOKEN_LEN]);

/* True when a publish that is still running (its lock file is locked)
 * lists root in its "publish" key, and also when its lock file cannot
 * be checked. Such media is not freed: the publish stores its record
 * next, or frees the media itself when it fails. */
bool store_publish_root_busy(store *s, MDB_txn *txn,
			     const uint8_t root[PROTO_HASH_LEN]);

void store_be64_put(uint8_t out[8], uint64_t v);
uint64_t store_be64_get(const uint8_t in[8]);

#endif
