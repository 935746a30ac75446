/* cli_media.h - hashing media files and copying them into the store, one
 * chunk at a time so that memory stays flat whatever the file size. */
#ifndef CLI_MEDIA_H
#define CLI_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "proto_record.h"
#include "store.h"

/* A media file after hashing: its reference and its chunk hashes. */
typedef struct cli_media_file {
	const char *path;
	proto_media_ref ref;
	uint8_t (*chunks)[PROTO_HASH_LEN]; /* malloc'd, n_chunks entries */
	size_t n_chunks;
} cli_media_file;

/*
 * Reads the file at path, detects its media type from its first bytes and
 * computes its chunk hashes and root hash into *out. Fails with
 * CM_ERR_NOT_FOUND, CM_ERR_IO, CM_ERR_BAD_MEDIA_TYPE or CM_ERR_TOO_LONG,
 * with a detail naming the file.
 */
cm_err cli_media_hash(const char *path, cli_media_file *out);

/*
 * Copies the chunks of a hashed file into the store under publish pub,
 * which stored its manifest (store_publish_begin). Each chunk is read
 * again and must still match its hash (CM_ERR_IO when the file changed
 * since cli_media_hash).
 */
cm_err cli_media_store(store_publish *pub, const cli_media_file *file);

/* Frees the chunk list of *file. */
void cli_media_free(cli_media_file *file);

/*
 * A progress bar on stderr: bytes done of the total, rate and time left,
 * redrawn at most every few hundred milliseconds. It draws nothing when
 * stderr is not a terminal.
 */
typedef struct cli_progress {
	const char *label;     /* e.g. "hashing", not copied */
	uint64_t total;        /* bytes */
	uint64_t done;
	uint64_t started;      /* monotonic ms */
	uint64_t drawn;        /* monotonic ms of the last redraw */
	bool enabled;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, uint64_t total);

/* Adds `bytes` to the bytes done and redraws when due. */
void cli_progress_add(cli_progress *p, uint64_t bytes);

/* Draws the final state and ends the line. */
void cli_progress_end(cli_progress *p);

#endif
