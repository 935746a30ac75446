/*
 * store.h - the LMDB store of one clipmesh home: records, feed indexes,
 * retractions, profiles, media chunks, follows, peers and counters.
 *
 * One LMDB environment per home (folder HOME/store). Several processes may
 * open it at once (a running node and CLI commands); LMDB serialises
 * writers. Within a process, open the store once and share the handle
 * between threads: LMDB does not support opening one environment twice in
 * a process, because closing one handle drops the file locks of both.
 * Every function that changes the store does so in one write transaction:
 * it either commits completely or changes nothing.
 *
 * Unless said otherwise, data returned to the caller is copied out of
 * LMDB and owned by the caller.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "proto_record.h"
#include "proto_recon.h"

typedef struct store store;

/* Length of a feed cursor: created time (8 bytes, big-endian) + id. */
#define STORE_CURSOR_LEN (8 + PROTO_ID_LEN)

/* Maximum length in bytes of a peer address or a counter name. It is the
 * default maximum key size of LMDB 0.9. */
#define STORE_TEXT_KEY_MAX 511

/* Fix at the end of the errors of store_open for damaged LMDB meta
 * pages, after "; ". */
#define STORE_RESTORE_FIX \
	"restore the store from a backup made with 'clipmesh store backup'"

/* Opens (creating if needed) the store in folder `dir`, which must exist,
 * with a map size of CM_STORE_MAP_SIZE. *out is set to NULL on failure. */
cm_err store_open(const char *dir, store **out);

/* Opens the store like store_open() with a map size of `map_size` bytes,
 * which caps the size of the data file. Meant for tests and small
 * devices. LMDB keeps the larger of map_size and the size in use. */
cm_err store_open_sized(const char *dir, uint64_t map_size, store **out);

/* Closes the store and sets *s to NULL; accepts NULL and *s == NULL. */
void store_close(store **s);

/*
 * Adds a batch of verified records in one write transaction. results[i]
 * receives the outcome for record i:
 *   CM_OK                 added
 *   CM_ERR_DUPLICATE      already stored
 *   CM_ERR_RETRACTED      its id is retracted
 *   CM_ERR_SUPERSEDED     a profile older than the stored one
 *   CM_ERR_NOT_AUTHOR     a retraction of another author's clip
 *   CM_ERR_BAD_FIELD      a retraction whose target is a stored retraction
 *                         or profile
 * Storing a retraction deletes the target clip and its index entries, and
 * marks the target id retracted forever (also when the clip was never
 * seen). A newer profile replaces the older one, and of two profiles with
 * equal times the one with the larger id wins.
 *
 * A retraction that arrives before its clip cannot be checked against the
 * clip's author yet. When the clip arrives, it is rejected if one of the
 * pending retractions has the clip's author, and the pending retractions
 * of other authors are deleted as forged. The same happens for pending
 * retractions of an id that turns out to be a retraction or profile.
 *
 * The records count as received only when this returns CM_OK (the commit
 * succeeded); any other return means none was stored. MDB_MAP_FULL and a
 * full disk return CM_ERR_STORE_FULL.
 */
cm_err store_put_batch(store *s, const proto_signed *recs, size_t n,
		       cm_err *results);

/* Gives results[i] the outcome that store_put_batch would give record i,
 * then undoes every change: the batch runs in a write transaction that is
 * aborted. For checking records without storing them. */
cm_err store_try_batch(store *s, const proto_signed *recs, size_t n,
		       cm_err *results);

/* Copies the wire bytes of record `id` into a malloc'd buffer (*wire,
 * *len); the caller frees it. CM_ERR_NOT_FOUND when absent. */
cm_err store_get(store *s, const uint8_t id[PROTO_ID_LEN], uint8_t **wire,
		 size_t *len);

/* True when record `id` is stored. False also when the store cannot be
 * read, and then cm_err_detail() names the failure. */
bool store_has(store *s, const uint8_t id[PROTO_ID_LEN]);

/*
 * True when clip `id` was retracted by its author; `retraction` (may be
 * NULL) receives the id of one retraction record. A retraction that
 * arrived before its clip does not count until the clip arrives, because
 * until then its author cannot be checked and it may be forged. A node
 * should still fetch such a clip: store_put_batch then rejects it with
 * CM_ERR_RETRACTED, and from then on this returns true. False also when
 * the store cannot be read.
 */
bool store_is_retracted(store *s, const uint8_t id[PROTO_ID_LEN],
			uint8_t retraction[PROTO_ID_LEN]);

/*
 * Sets lacks[i] for each of the `count` ids (contiguous, PROTO_ID_LEN
 * bytes each) that is neither stored nor retracted, in one read
 * transaction: the answers of store_has and store_is_retracted at one
 * moment, at a fraction of their cost for long lists. A read failure of
 * one id counts it as lacking. Fails only when the transaction cannot
 * start.
 */
cm_err store_lacks(store *s, const uint8_t *ids, size_t count, bool *lacks);

/*
 * Resolves a hex id prefix of at least CM_ID_PREFIX_MIN chars to the one
 * stored record id (any kind) that starts with it. CM_ERR_NOT_FOUND or
 * CM_ERR_AMBIGUOUS otherwise.
 */
cm_err store_resolve(store *s, const char *hex_prefix,
		     uint8_t id[PROTO_ID_LEN]);

/* Feed query over clips, newest first. Zero/NULL fields do not filter. */
typedef struct store_query {
	const uint8_t *author;   /* PROTO_KEY_LEN bytes, or NULL */
	const char *product;     /* exact reference, or NULL */
	const char *tag;         /* exact tag, or NULL */
	uint64_t since_ms;       /* created_ms >= since_ms */
	uint64_t until_ms;       /* created_ms < until_ms; 0 = no bound */
	size_t limit;            /* 1..CM_FEED_LIMIT_MAX */
	const uint8_t *cursor;   /* STORE_CURSOR_LEN bytes from a previous
				  * page, or NULL for the first page */
} store_query;

/* Called once per clip of a page with its id and wire bytes; the bytes are
 * valid only during the call. A non-zero return stops the walk. */
typedef int (*store_record_fn)(void *ctx, const uint8_t id[PROTO_ID_LEN],
			       const uint8_t *wire, size_t len);

/*
 * Walks one page of the feed: at most q->limit clips, newest first, all
 * strictly older than q->cursor. When more clips follow, *has_more is set
 * and next_cursor receives the cursor of the next page. When fn stops the
 * walk, *has_more is set and next_cursor continues after the clip that fn
 * stopped on. next_cursor may be the buffer that q->cursor points to.
 * CM_ERR_USAGE for a limit outside 1..CM_FEED_LIMIT_MAX.
 * fn runs inside a read transaction: it may call other store functions,
 * and writers in other processes and threads are not blocked.
 */
cm_err store_feed(store *s, const store_query *q, store_record_fn fn,
		  void *ctx, uint8_t next_cursor[STORE_CURSOR_LEN],
		  bool *has_more);

/*
 * Walks every stored record (all kinds, retractions included) in
 * (created time, id) order, oldest first, for catch-up. With `authors`
 * non-NULL only records by those n_authors keys (PROTO_KEY_LEN each) are
 * visited, each once also when a key is repeated. `fn` gets the id and wire
 * bytes; a non-zero return stops the walk. The walk renews its read
 * transaction every few hundred records, so records added meanwhile may
 * or may not be visited.
 */
cm_err store_scan(store *s, const uint8_t *authors, size_t n_authors,
		  store_record_fn fn, void *ctx);

/* The position of a walk in parts. Zero it, set `max`, and pass it to
 * store_scan_part_run until `done`. */
typedef struct store_scan_part {
	size_t max;                        /* records visited per call,
					      1 to 256 */
	bool started;                      /* `after` is set */
	uint8_t after[STORE_CURSOR_LEN];   /* created || id last visited */
	bool done;                         /* no record is left, or fn
					      stopped the walk */
	size_t visited;                    /* records the last call visited */
} store_scan_part;

/*
 * Walks on as store_scan does from the record after part->after, for at
 * most part->max records, so that a caller can walk a large store a few
 * hundred records at a time between other work. Each call reads in one
 * transaction that it does not renew, so a part is at most 256 records
 * (CM_ERR_USAGE otherwise), as many as store_scan reads in one. Records
 * added between calls are visited when they sort after the position
 * reached.
 */
cm_err store_scan_part_run(store *s, const uint8_t *authors,
			   size_t n_authors, store_scan_part *part,
			   store_record_fn fn, void *ctx);

/* Counts the stored clips of `author` (retracted clips are gone). Walks
 * the author's index entries, so it takes time in proportion to them. */
cm_err store_count_clips(store *s, const uint8_t author[PROTO_KEY_LEN],
			 uint64_t *count);

/* Counts of stored records per kind, and of media chunks and their total
 * size in bytes. Retractions include pending ones (see store_put_batch). */
typedef struct store_counts {
	uint64_t clips;
	uint64_t retractions;
	uint64_t profiles;
	uint64_t chunks;
	uint64_t chunk_bytes;
} store_counts;

cm_err store_get_counts(store *s, store_counts *out);

/* Newest profile of `author`: copies its wire bytes (caller frees).
 * CM_ERR_NOT_FOUND when none. */
cm_err store_get_profile(store *s, const uint8_t author[PROTO_KEY_LEN],
			 uint8_t **wire, size_t *len);

/* --- Acceptance log (store_log.c) ---------------------------------- */

/* Sequence number of the newest log entry; 0 when the log is empty. */
cm_err store_log_head(store *s, uint64_t *seq);

/* Called once per log entry with its sequence number, record id and wire
 * bytes; the bytes are valid only during the call. A non-zero return
 * stops the walk. */
typedef int (*store_log_fn)(void *ctx, uint64_t seq,
			    const uint8_t id[PROTO_ID_LEN],
			    const uint8_t *wire, size_t len);

/*
 * Every record the store accepts gets the next sequence number, so a
 * reader can follow the store and resume after the last number it saw.
 * Visits the log entries with a number above `after`, oldest first, at
 * most `limit` (1..CM_LOG_PAGE_MAX) of them, in one read transaction.
 * Entries whose record was removed since (a retracted clip, a replaced
 * profile) are skipped, and count towards `limit`. *last receives the
 * number of the last entry visited or skipped (`after` when none), so the
 * next call continues with after = *last.
 */
cm_err store_log_after(store *s, uint64_t after, size_t limit,
		       store_log_fn fn, void *ctx, uint64_t *last);

/* --- Reconciliation aggregates (store_fp.c) ------------------------- */

/*
 * Makes sure the reconciliation aggregates cover every stored record.
 * store_put_batch keeps them up to date; a store written before they
 * existed gets them rebuilt here, in one write transaction that reads
 * every record's index entry once.
 */
cm_err store_fp_ensure(store *s);

typedef struct store_recon_view store_recon_view;

/*
 * Opens a read-only view of the store for one reconciliation message and
 * sets up src to read it. With `authors` (n_authors keys, copied), scope i
 * is the records of authors[i]; with NULL there is one scope of every
 * record. The view holds a read transaction until store_recon_close, so
 * keep it for one message only. src->work counts aggregate reads and
 * items scanned.
 */
cm_err store_recon_open(store *s, const uint8_t *authors, size_t n_authors,
			proto_recon_source *src, store_recon_view **out);

/* Closes a view and sets *v to NULL; accepts NULL and *v == NULL. */
void store_recon_close(store_recon_view **v);

/* --- Media ---------------------------------------------------------- */

/* Stores one chunk under its hash; the caller has verified the hash.
 * Storing an existing chunk is a no-op. CM_ERR_USAGE when len is 0 or
 * over CM_CHUNK_SIZE. */
cm_err store_chunk_put(store *s, const uint8_t hash[PROTO_HASH_LEN],
		       const uint8_t *data, size_t len);

/* Copies chunk `hash` into buf[cap]; *len receives its size.
 * CM_ERR_NOT_FOUND when absent, CM_ERR_TOO_LONG when the chunk is larger
 * than cap (then *len still receives its size). */
cm_err store_chunk_get(store *s, const uint8_t hash[PROTO_HASH_LEN],
		       uint8_t *buf, size_t cap, size_t *len);

/* Stores n verified chunks in one write transaction. CM_ERR_USAGE when a
 * length is 0 or over CM_CHUNK_SIZE, and then none is stored. */
cm_err store_chunks_put(store *s, size_t n,
			const uint8_t (*hashes)[PROTO_HASH_LEN],
			const uint8_t *const *data, const size_t *lens);

/*
 * Stores those of n verified chunks that a stored manifest lists, in one
 * write transaction, and sets listed[i] for each of them. A fetched chunk
 * that no manifest lists belongs to media freed since its fetch began
 * (evicted over the budget, or its clips removed), so it is skipped:
 * nothing would ever free it. Errors as store_chunks_put, and then no
 * chunk is stored. After the commit, the file pages of the stored chunks
 * are dropped from the page cache (posix_fadvise), so that a fetch does
 * not fill it.
 */
cm_err store_fetched_chunks_put(store *s, size_t n,
				const uint8_t (*hashes)[PROTO_HASH_LEN],
				const uint8_t *const *data,
				const size_t *lens, bool *listed);

bool store_chunk_has(store *s, const uint8_t hash[PROTO_HASH_LEN]);

/* The chunk list of one media root; the caller owns chunks. */
typedef struct store_manifest {
	uint8_t root[PROTO_HASH_LEN];
	uint64_t size;
	const uint8_t (*chunks)[PROTO_HASH_LEN];
	size_t n_chunks;
} store_manifest;

/* Stores the chunk list of media `root` after checking it with
 * proto_media_check_manifest (CM_ERR_BAD_MANIFEST). An existing manifest
 * of the same root is kept. */
cm_err store_manifest_put(store *s, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t size,
			  const uint8_t (*chunks)[PROTO_HASH_LEN], size_t n);

/* Copies the chunk list of `root` into a malloc'd array (*chunks, *n,
 * caller frees) and its size. CM_ERR_NOT_FOUND when absent. */
cm_err store_manifest_get(store *s, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t *size, uint8_t (**chunks)[PROTO_HASH_LEN],
			  size_t *n);

/* True when the manifest of `root` is stored; false also when the read
 * fails. */
bool store_manifest_has(store *s, const uint8_t root[PROTO_HASH_LEN]);

/* Resolves a hex prefix (>= CM_ID_PREFIX_MIN chars) of a stored media
 * root hash. CM_ERR_NOT_FOUND or CM_ERR_AMBIGUOUS otherwise. */
cm_err store_media_resolve(store *s, const char *hex_prefix,
			   uint8_t root[PROTO_HASH_LEN]);

/* True when the manifest of `root` and all its chunks are stored. */
bool store_media_complete(store *s, const uint8_t root[PROTO_HASH_LEN]);

/* --- Media presence (store_budget.c) and cold reads (store_media.c) - */

/* Sets present[i] when chunk hashes[i] is stored, for i < n, in one read
 * transaction; *count receives how many are. */
cm_err store_chunks_present(store *s, const uint8_t (*hashes)[PROTO_HASH_LEN],
			    size_t n, bool *present, size_t *count);

/*
 * Copies chunk `hash` like store_chunk_get without keeping its pages in
 * this process's resident set, so that reading or serving large media
 * keeps memory flat. It reads the store file with pread(). Where the map
 * cannot be located, it copies from the map and then drops the value's
 * whole pages.
 */
cm_err store_chunk_get_cold(store *s, const uint8_t hash[PROTO_HASH_LEN],
			    uint8_t *buf, size_t cap, size_t *len);

/* --- Media references, budget and fetch backoff (store_budget.c) ---- */

/*
 * Builds the media reference index (which clips list each media root,
 * and how many manifests list each chunk) for a store written before the
 * index existed, in one write transaction; a no-op once built. The first
 * removal of a clip and store_media_evict build it too when needed.
 */
cm_err store_media_index_ensure(store *s);

/*
 * Frees whole media, in one write transaction, until the stored chunk
 * bytes are at most `budget`: first media that no stored clip lists, then
 * the media of clips by authors outside keep[n_keep] (PROTO_KEY_LEN
 * each), oldest clip first. Media that a clip by a kept author lists is
 * never freed, and a chunk is freed only when no remaining manifest lists
 * it. Each freed root gets a fetch backoff until `retry_at_ms` (wall
 * clock), so that a scan does not fetch it again at once. *media and
 * *bytes (either may be NULL) receive what was freed.
 */
cm_err store_media_evict(store *s, uint64_t budget, const uint8_t *keep,
			 size_t n_keep, uint64_t retry_at_ms, uint64_t *media,
			 uint64_t *bytes);

/*
 * Counts the stored clips that list media `root`. The clips whose "mref"
 * entries still wait are decoded once and their roots kept in memory, so
 * a later call decodes only the clips accepted since, unless the entries
 * were written in between. When more than CM_MREF_DEFER_MAX clips wait,
 * which happens only after "mref_seq" was set back, every call decodes
 * them all.
 */
cm_err store_media_users(store *s, const uint8_t root[PROTO_HASH_LEN],
			 uint64_t *count);

/* Reads the fetch backoff of `root`: wall-clock ms before which it is not
 * fetched, and its failures in a row; both 0 when none is stored. */
cm_err store_media_backoff_get(store *s, const uint8_t root[PROTO_HASH_LEN],
			       uint64_t *until_ms, uint32_t *failures);

/* Stores the fetch backoff of `root`; failures == 0 deletes it. */
cm_err store_media_backoff_set(store *s, const uint8_t root[PROTO_HASH_LEN],
			       uint64_t until_ms, uint32_t failures);

/* A fetch backoff: until when, after how many failures in a row. */
typedef struct store_backoff {
	uint8_t root[PROTO_HASH_LEN];
	uint64_t until_ms;
	uint32_t failures;
} store_backoff;

/* Stores n backoffs, in order, in one write transaction. */
cm_err store_media_backoffs_set(store *s, const store_backoff *list,
				size_t n);

/*
 * Sets fetch[i] for each of the n roots that is incomplete and not in
 * backoff at wall-clock time now_ms, in one read transaction. *next_retry
 * receives the earliest backoff end after now_ms among the others (0:
 * none).
 */
cm_err store_media_fetchable(store *s, const uint8_t (*roots)[PROTO_HASH_LEN],
			     size_t n, uint64_t now_ms, bool *fetch,
			     uint64_t *next_retry);

/* --- Publishing local media (store_publish.c) ------------------------ */

/*
 * A publish stores its media and record in steps, so that a publish
 * that dies at any point leaves media that the next sweep can find and
 * free, and never chunks that no manifest lists:
 *   1. store_publish_begin: the manifests and a "publish" marker in one
 *      transaction, after taking an flock on the marker's lock file;
 *   2. store_publish_chunks_put: the chunks, while their manifest is
 *      still stored;
 *   3. store_publish_finish: the record, and the marker deleted, in one
 *      transaction;
 *   4. store_publish_end: frees the media of an unfinished publish at
 *      once, deletes its marker and lock file.
 * The kernel drops the flock when the process dies (kill -9 included),
 * so store_publish_sweep can tell a dead publish from a running one
 * without guessing from its age.
 */
typedef struct store_publish store_publish;

/*
 * Creates a lock file in the folder "publish" of the store folder, takes
 * an flock on it, and stores the n manifests and the marker in one write
 * transaction. *out owns the lock; store_publish_end frees it. Manifests
 * are checked like store_manifest_put's. CM_ERR_IO when the lock file
 * cannot be made.
 */
cm_err store_publish_begin(store *s, const store_manifest *media, size_t n,
			   store_publish **out);

/*
 * Stores n chunks of media `root` in one write transaction while the
 * manifest of root is stored. CM_ERR_NOT_FOUND, with a detail, when it
 * was freed meanwhile; then no chunk is stored. Other errors as
 * store_chunks_put.
 */
cm_err store_publish_chunks_put(store_publish *p,
				const uint8_t root[PROTO_HASH_LEN], size_t n,
				const uint8_t (*hashes)[PROTO_HASH_LEN],
				const uint8_t *const *data,
				const size_t *lens);

/*
 * Stores record rec like store_put_batch and, when *result is CM_OK or
 * CM_ERR_DUPLICATE, deletes the marker in the same transaction. After
 * any other outcome the marker stays for store_publish_end to clean up.
 */
cm_err store_publish_finish(store_publish *p, const proto_signed *rec,
			    cm_err *result);

/*
 * Ends a publish: when store_publish_finish did not store its record,
 * frees its media that no stored clip and no other running publish
 * lists, and deletes its marker, in one write transaction. Then deletes
 * the lock file and frees *p. Accepts NULL and clears the pointer.
 * Failures are logged: the next sweep frees what is left.
 */
void store_publish_end(store_publish **p);

/* What a sweep freed. */
typedef struct store_sweep_report {
	uint64_t publishes; /* markers of dead publishes deleted */
	uint64_t media;     /* manifests freed */
	uint64_t bytes;     /* chunk bytes freed */
} store_sweep_report;

/*
 * Frees what dead publishes left: for each marker whose lock file is not
 * locked, the media it lists that no stored clip and no running publish
 * lists, then the marker and its lock file, one write transaction per
 * marker. Also deletes lock files that no marker names. A store with no
 * marker costs one read transaction.
 */
cm_err store_publish_sweep(store *s, store_sweep_report *rep);

/*
 * Frees, in one write transaction, every chunk that no stored manifest
 * lists. Only a publish by a release older than store_publish_begin
 * leaves such chunks. It walks the keys of the chunks database, so its
 * cost grows with the stored chunks (docs/ARCHITECTURE.md gives a
 * measured figure). *chunks and *bytes receive what was freed. Does
 * nothing until the media reference index is built.
 */
cm_err store_chunks_unlisted_free(store *s, uint64_t *chunks,
				  uint64_t *bytes);

/* --- Follows, peers and counters ------------------------------------ */

/* Adds `author` to the followed keys; following a followed key is a
 * no-op. */
cm_err store_follow(store *s, const uint8_t author[PROTO_KEY_LEN]);

/* Removes `author` from the followed keys; CM_ERR_NOT_FOUND when it was
 * not followed. */
cm_err store_unfollow(store *s, const uint8_t author[PROTO_KEY_LEN]);

/* Copies the followed keys, sorted, into a malloc'd array of
 * n * PROTO_KEY_LEN bytes (caller frees; NULL when n is 0). */
cm_err store_following(store *s, uint8_t **keys, size_t *n);

/* Adds a peer address (as `clipmesh id` prints it); existing: no-op.
 * CM_ERR_USAGE when addr is empty or over STORE_TEXT_KEY_MAX bytes. The
 * address format is the caller's to check. */
cm_err store_peer_add(store *s, const char *addr);

/* Calls fn for each known peer address, in byte order; a non-zero return
 * stops the walk. */
cm_err store_peer_list(store *s, int (*fn)(void *ctx, const char *addr),
		       void *ctx);

/* Longest HOST:PORT of a known peer: a host of 170 bytes (as peer
 * addresses allow), a colon and a port. */
#define STORE_KNOWN_ADDR_MAX 176

/* Where the node got a known peer's address from. */
typedef enum store_known_origin {
	STORE_KNOWN_CONFIGURED = 1,  /* --peer, a config line or `peer add` */
	STORE_KNOWN_LEARNED = 2,     /* peer exchange, then verified */
} store_known_origin;

/* A peer this node dialled, as kept in the store (store_known.c). */
typedef struct store_known_peer {
	uint8_t key[PROTO_KEY_LEN];          /* node CURVE public key */
	char addr[STORE_KNOWN_ADDR_MAX + 1]; /* HOST:PORT, NUL-terminated */
	store_known_origin origin;
	uint32_t failures;                   /* failed dials in a row */
	uint64_t last_seen_ms;               /* last HELLO, wall ms; 0 never */
} store_known_peer;

/* Adds or replaces the known peer of p->key in one write transaction.
 * CM_ERR_USAGE when the address is empty or too long. */
cm_err store_known_put(store *s, const store_known_peer *p);

/* Removes the known peer of `key`; an absent key is not an error. */
cm_err store_known_del(store *s, const uint8_t key[PROTO_KEY_LEN]);

/* Calls fn for each known peer in key order until it returns non-zero.
 * The entry is a copy, valid during the call. Entries whose layout this
 * release does not read are counted in *skipped and not passed. */
cm_err store_known_list(store *s,
			int (*fn)(void *ctx, const store_known_peer *p),
			void *ctx, size_t *skipped);

/* Adds `delta` to the persistent counter `name` (e.g. "rejected.bad_utf8"),
 * stopping at UINT64_MAX. CM_ERR_USAGE when name is empty or over
 * STORE_TEXT_KEY_MAX bytes. */
cm_err store_counter_add(store *s, const char *name, uint64_t delta);

/* Calls fn for each counter in name order; a non-zero return stops the
 * walk. */
cm_err store_counter_list(store *s,
			  int (*fn)(void *ctx, const char *name,
				    uint64_t value),
			  void *ctx);

#endif
