/*
 * proto_media.h - media chunking, hashing and type detection.
 *
 * Media is split into CM_CHUNK_SIZE chunks (the last may be shorter; an
 * empty file has no chunks). chunk hash = BLAKE2b-256(chunk bytes).
 * root hash = BLAKE2b-256("clipmesh/1/media\0" || u64 big-endian total
 * size || chunk hash 0 || ... || chunk hash n-1). The root hash is the
 * media hash a clip refers to.
 */
#ifndef PROTO_MEDIA_H
#define PROTO_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "proto_record.h"

/* Number of chunks of a file of `size` bytes. */
uint64_t proto_media_chunk_count(uint64_t size);

void proto_chunk_hash(const uint8_t *data, size_t len,
		      uint8_t out[PROTO_HASH_LEN]);

/* Computes the root hash from n chunk hashes and the total size. */
void proto_media_root(const uint8_t (*chunks)[PROTO_HASH_LEN], size_t n,
		      uint64_t size, uint8_t root[PROTO_HASH_LEN]);

/*
 * Checks that n chunk hashes and `size` hash to `root` and that n matches
 * the chunk count of `size`. CM_ERR_BAD_MANIFEST otherwise.
 */
cm_err proto_media_check_manifest(const uint8_t root[PROTO_HASH_LEN],
				  uint64_t size,
				  const uint8_t (*chunks)[PROTO_HASH_LEN],
				  size_t n);

/*
 * Returns the media type recognised from the first bytes of a file
 * (at least 32 bytes should be given): "video/mp4", "video/webm",
 * "image/jpeg", "image/png", "image/webp", "video/quicktime";
 * NULL when none matches.
 */
const char *proto_media_sniff(const uint8_t *head, size_t len);

/* Returns true when type is one of the types proto_media_sniff returns. */
int proto_media_type_known(const char *type);

#endif
