/*
 * bench_chunk_read - reads every chunk of one media file straight from a
 * home's store with store_chunk_get and reports the rate, the ceiling
 * for serving that media over HTTP (bench/http.sh).
 *
 * usage: bench_chunk_read STORE_DIR MEDIA_HASH_HEX RUNS
 * prints: "read_mb_per_sec <best of RUNS>" with MB = 10^6 bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cm_util.h"
#include "store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads all n chunks once; returns the bytes read, 0 on failure. */
static uint64_t read_all(store *s, const uint8_t (*chunks)[PROTO_HASH_LEN],
			 size_t n, uint8_t *buf)
{
	uint64_t total = 0;
	size_t len;
	cm_err err;

	for (size_t i = 0; i < n; i++) {
		err = store_chunk_get(s, chunks[i], buf, CM_CHUNK_SIZE, &len);
		if (err) {
			fprintf(stderr, "bench_chunk_read: chunk %zu: %s (%s)\n",
				i, cm_err_name(err), cm_err_detail());
			return 0;
		}
		total += len;
	}
	return total;
}

int main(int argc, char **argv)
{
	uint8_t root[PROTO_HASH_LEN], (*chunks)[PROTO_HASH_LEN] = NULL;
	uint8_t *buf = malloc(CM_CHUNK_SIZE);
	uint64_t size, runs, bytes;
	double best = 0, start, rate;
	store *s = NULL;
	size_t n;
	int rc = 1;

	if (argc != 4 || !cm_hex_decode(argv[2], root, sizeof(root)) ||
	    !cm_parse_u64(argv[3], &runs) || runs < 1) {
		fprintf(stderr, "usage: bench_chunk_read STORE_DIR "
			"MEDIA_HASH_HEX RUNS\n");
		return 2;
	}
	if (buf == NULL || store_open(argv[1], &s) != CM_OK ||
	    store_manifest_get(s, root, &size, &chunks, &n) != CM_OK) {
		fprintf(stderr, "bench_chunk_read: cannot read media %s in "
			"%s: %s\n", argv[2], argv[1], cm_err_detail());
		goto out;
	}
	for (uint64_t r = 0; r < runs; r++) {
		start = now_s();
		bytes = read_all(s, (const uint8_t (*)[PROTO_HASH_LEN])chunks, n,
				 buf);
		if (bytes != size)
			goto out;
		rate = (double)bytes / 1e6 / (now_s() - start);
		if (rate > best)
			best = rate;
	}
	printf("read_mb_per_sec %.1f\n", best);
	rc = 0;
out:
	free(chunks);
	free(buf);
	store_close(&s);
	return rc;
}
