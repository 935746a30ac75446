/*
 * bench_gen - writes N valid signed clips to an export file and measures
 * the raw libsodium signature-verify rate over the same records, so that
 * the import rate can be reported as a ratio to it.
 *
 * usage: bench_gen N FILE
 * prints: "verify_per_sec <one core> <all cores>": the rate of
 * crypto_sign_verify_detached over the records' signing messages, on one
 * thread and on one thread per online processor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>
#include <unistd.h>

#include <sodium.h>

#include "cm_util.h"
#include "proto_record.h"

#define AUTHORS 16

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fills clip i of author a with varied but valid fields. */
static void make_clip(proto_record *r, size_t i, uint64_t base_ms)
{
	static const char *const products[] = {
		"gtin:2000000001012", "gtin:2000000002026",
		"gtin:2000000003030", "gtin:2000000004044"};

	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_CLIP;
	r->created_ms = base_ms + i;
	snprintf(r->product, sizeof(r->product), "%s", products[i % 4]);
	snprintf(r->title, sizeof(r->title), "Generated review number %zu",
		 i);
	r->rating = 1 + (unsigned)(i % 5);
	snprintf(r->lang, sizeof(r->lang), "en");
	snprintf(r->tags[0], sizeof(r->tags[0]), "bench");
	r->n_tags = 1;
	r->n_media = 1;
	crypto_generichash(r->media[0].hash, 32, (const uint8_t *)&i,
			   sizeof(i), NULL, 0);
	r->media[0].size = 1000000 + i;
	snprintf(r->media[0].type, sizeof(r->media[0].type), "video/mp4");
}

typedef struct verify_job {
	const uint8_t (*msgs)[64], (*sigs)[64], (*keys)[32];
	uint64_t begin, end, ok;
} verify_job;

static void *verify_range(void *arg)
{
	verify_job *job = arg;

	for (uint64_t i = job->begin; i < job->end; i++)
		job->ok += crypto_sign_verify_detached(job->sigs[i],
						       job->msgs[i], 16 + 32,
						       job->keys[i]) == 0;
	return NULL;
}

/* Verifies all n signatures on `threads` threads; returns verifies per
 * second, or 0 when any signature failed. */
static double verify_rate(const uint8_t (*msgs)[64], const uint8_t (*sigs)[64],
			  const uint8_t (*keys)[32], uint64_t n,
			  unsigned threads)
{
	verify_job jobs[64];
	pthread_t ids[64];
	uint64_t ok = 0, per = (n + threads - 1) / threads;
	double start = now_s();

	for (unsigned t = 0; t < threads; t++) {
		uint64_t begin = t * per;

		jobs[t] = (verify_job){msgs, sigs, keys, begin,
				       begin + per < n ? begin + per : n, 0};
		if (t > 0 && pthread_create(&ids[t], NULL, verify_range,
					    &jobs[t]) != 0)
			return 0;
	}
	verify_range(&jobs[0]);
	for (unsigned t = 0; t < threads; t++) {
		if (t > 0)
			pthread_join(ids[t], NULL);
		ok += jobs[t].ok;
	}
	return ok == n ? (double)n / (now_s() - start) : 0;
}

int main(int argc, char **argv)
{
	uint8_t pk[AUTHORS][32], sk[AUTHORS][64];
	uint8_t wire[CM_RECORD_MAX], id[PROTO_ID_LEN];
	uint8_t (*msgs)[64], (*sigs)[64], (*keys)[32];
	proto_record *r = malloc(sizeof(*r));
	uint64_t n, base_ms = cm_now_ms() - 86400000ULL;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned cores = online < 1 ? 1 : online > 64 ? 64 : (unsigned)online;
	double one, all;
	size_t len;
	FILE *f;

	if (argc != 3 || !cm_parse_u64(argv[1], &n) || n == 0 ||
	    sodium_init() < 0 || r == NULL) {
		fprintf(stderr, "usage: bench_gen N FILE\n");
		return 2;
	}
	f = fopen(argv[2], "wb");
	msgs = malloc(n * sizeof(*msgs));
	sigs = malloc(n * sizeof(*sigs));
	keys = malloc(n * sizeof(*keys));
	if (f == NULL || msgs == NULL || sigs == NULL || keys == NULL)
		return 1;
	for (int a = 0; a < AUTHORS; a++)
		crypto_sign_keypair(pk[a], sk[a]);
	fwrite("clipmesh-export\n", 16, 1, f);
	for (uint64_t i = 0; i < n; i++) {
		size_t a = i % AUTHORS;
		uint8_t head[4];
		int prefix;

		make_clip(r, i, base_ms);
		memcpy(r->author, pk[a], 32);
		if (proto_record_sign(r, sk[a], wire, sizeof(wire), &len, id))
			return 1;
		head[0] = (uint8_t)(len >> 24);
		head[1] = (uint8_t)(len >> 16);
		head[2] = (uint8_t)(len >> 8);
		head[3] = (uint8_t)len;
		fwrite(head, 4, 1, f);
		fwrite(wire, len, 1, f);
		/* The signing message: "clipmesh/1/clip\0" then the id. */
		prefix = snprintf((char *)msgs[i], 32, "clipmesh/1/clip") + 1;
		memcpy(msgs[i] + prefix, id, 32);
		memcpy(sigs[i], wire + len - 64, 64);
		memcpy(keys[i], pk[a], 32);
	}
	fclose(f);

	one = verify_rate((const uint8_t(*)[64])msgs,
			  (const uint8_t(*)[64])sigs,
			  (const uint8_t(*)[32])keys, n, 1);
	all = verify_rate((const uint8_t(*)[64])msgs,
			  (const uint8_t(*)[64])sigs,
			  (const uint8_t(*)[32])keys, n, cores);
	if (one == 0 || all == 0) {
		fprintf(stderr, "bench_gen: a signature failed to verify; did "
				"the signing message change?\n");
		return 1;
	}
	printf("verify_per_sec %.0f %.0f\n", one, all);
	free(msgs);
	free(sigs);
	free(keys);
	free(r);
	return 0;
}
