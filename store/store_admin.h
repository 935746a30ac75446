/* store_admin.h - whole-store operations for operators: integrity check
 * and online backup. */
#ifndef STORE_ADMIN_H
#define STORE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* What store_check found. */
typedef struct store_check_report {
	uint64_t records;       /* records read */
	uint64_t index_entries; /* index entries read */
	uint64_t chunks;        /* chunks read */
	uint64_t unlisted;      /* chunks that no manifest lists */
	uint64_t unlisted_bytes;
	uint64_t stopped;       /* markers of publishes that stopped */
	uint64_t problems;      /* every mismatch found */
	uint64_t notes;         /* findings that need no action, such as
				 * the leftovers of a stopped publish */
} store_check_report;

/* Receives one finding of store_check: a problem, or a note when `note`
 * is true, with a one-line description. */
typedef void (*store_check_fn)(void *ctx, bool note, const char *message);

/*
 * Verifies every stored record (canonical form, signature, id) with
 * proto_record_open at now_ms, that every index entry points at a stored
 * record with matching fields, that every record has its index entries,
 * that every chunk matches its hash, that the meta key "chunk_bytes" is
 * the chunks' total size, that a manifest lists every chunk, that every
 * manifest matches its media root, and that every acceptance log entry
 * names a record id. Calls `found` (may be NULL) for each mismatch, and
 * for each "publish" marker of a publish that stopped as a note, because
 * store_publish_sweep frees its leftovers at the next publish or node
 * start. Runs in one read transaction, so it reads one consistent state
 * while a node keeps writing.
 */
cm_err store_check(store *s, uint64_t now_ms, store_check_report *rep,
		   store_check_fn found, void *ctx);

/* Writes a compacted, consistent copy of the store into folder `dir`
 * (which must exist and hold no store) with mdb_env_copy2. */
cm_err store_backup(store *s, const char *dir);

#endif
