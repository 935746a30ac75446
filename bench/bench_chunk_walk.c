/*
 * bench_chunk_walk - times the walk over every chunk key that a node
 * start runs to free chunks that no manifest lists
 * (store_chunks_unlisted_free), on a store of many chunks.
 *
 * usage: bench_chunk_walk STORE_DIR [FILL]
 *   FILL > 0 first adds FILL chunks of 4097 bytes, each listed by a
 *   manifest of its own. A value over one page goes to overflow pages
 *   like a full 256 KiB chunk, so the key walk reads the same leaf pages
 *   per chunk as on a store of full chunks, at a fraction of the disk.
 * prints: "chunks N cold_ms X warm_ms Y freed Z": cold after dropping
 * the data file from the page cache (posix_fadvise), warm right after.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm_util.h"
#include "proto_media.h"
#include "store.h"

#define CHUNK_LEN 4097
#define BATCH 500

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Adds chunks first..first+n, each with a one-chunk manifest. */
static cm_err fill_batch(store *s, uint64_t first, size_t n, uint8_t *buf)
{
	uint8_t hashes[BATCH][PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	const uint8_t *data[BATCH];
	size_t lens[BATCH];
	cm_err err;

	for (size_t i = 0; i < n; i++) {
		uint8_t *chunk = buf + i * CHUNK_LEN;
		uint64_t number = first + i;

		memcpy(chunk, &number, sizeof(number));
		proto_chunk_hash(chunk, CHUNK_LEN, hashes[i]);
		data[i] = chunk;
		lens[i] = CHUNK_LEN;
	}
	for (size_t i = 0; i < n; i++) {
		proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])hashes[i], 1,
				 CHUNK_LEN, root);
		err = store_manifest_put(
			s, root, CHUNK_LEN,
			(const uint8_t(*)[PROTO_HASH_LEN])hashes[i], 1);
		if (err)
			return err;
	}
	return store_chunks_put(s, n, (const uint8_t(*)[PROTO_HASH_LEN])hashes,
				data, lens);
}

static cm_err fill(store *s, uint64_t count)
{
	uint8_t *buf = calloc(BATCH, CHUNK_LEN);
	cm_err err = CM_OK;

	if (!buf)
		return CM_ERR_NOMEM;
	for (uint64_t done = 0; !err && done < count; done += BATCH)
		err = fill_batch(s, done,
				 count - done < BATCH ? count - done : BATCH,
				 buf);
	free(buf);
	return err;
}

/* Drops the store's data file from the page cache. */
static void uncache(const char *dir)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

int main(int argc, char **argv)
{
	uint64_t fill_n = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
	uint64_t freed = 0, bytes = 0;
	double t0, cold, warm;
	store_counts counts;
	store *s = NULL;
	cm_err err;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_chunk_walk STORE_DIR [FILL]\n");
		return 2;
	}
	err = store_open(argv[1], &s);
	if (!err)
		err = store_media_index_ensure(s);
	if (!err && fill_n > 0)
		err = fill(s, fill_n);
	if (!err)
		err = store_get_counts(s, &counts);
	store_close(&s);
	uncache(argv[1]);
	if (!err)
		err = store_open(argv[1], &s);
	t0 = now_ms();
	if (!err)
		err = store_chunks_unlisted_free(s, &freed, &bytes);
	cold = now_ms() - t0;
	t0 = now_ms();
	if (!err)
		err = store_chunks_unlisted_free(s, &freed, &bytes);
	warm = now_ms() - t0;
	store_close(&s);
	if (err) {
		fprintf(stderr, "bench_chunk_walk: %s (%s)\n", cm_err_name(err),
			cm_err_detail());
		return 1;
	}
	printf("chunks %llu cold_ms %.1f warm_ms %.1f freed %llu\n",
	       (unsigned long long)counts.chunks, cold, warm,
	       (unsigned long long)freed);
	return 0;
}
