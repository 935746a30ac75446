/*
 * bench_recon - traffic, round trips and time of range-based set
 * reconciliation between two stores of N clips that differ by 0, 1, 1,000
 * and 100,000 records, beside sending every id (HAVE and WANT) measured
 * in the same run. Both sides run in this process, and every message goes
 * through the real wire encoders and decoder.
 *
 * usage: bench_recon [N] [fp=BYTES] [hash=BYTES] [leaf=N] [full=N]
 *                    [pieces=N] [sums=0|1]
 *        (N defaults to 1000000; the others override proto_recon_defaults;
 *        BENCH_RECON_TRACE=1 prints the bytes after every round)
 *
 * Store a contains all N clips; store b lacks the "extra" clips, spread over
 * the whole time range by a fixed permutation. b starts without 100,000
 * of them (or N / 2 when smaller), then gets all but 1,000, all but 1 and
 * all of them. Clips are signed with 4 fixed keys, one clip a second with
 * jitter, so the same N gives the same records; the two starting stores
 * are kept under /tmp/clipmesh-bench-recon and reused while N matches.
 * b is the initiator: it pulls what it lacks, like a mirror that was down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cm_util.h"
#include "proto_recon.h"
#include "proto_wire.h"
#include "store.h"

#define CACHE_DIR "/tmp/clipmesh-bench-recon"
#define AUTHORS 4
#define BASE_MS 1700000000000ULL
#define PUT_BATCH 4096
#define EXTRA_MAX 100000
#define PERMUTATION_STEP 7919ULL   /* prime: i -> i * step mod N spreads */

typedef struct bench {
	uint64_t n;
	uint64_t n_extra;
	uint8_t pk[AUTHORS][32];
	uint8_t sk[AUTHORS][64];
	proto_recon_params params;
} bench;

/* One side's traffic and time for one difference. */
typedef struct figures {
	uint64_t bytes_out;      /* initiator to responder */
	uint64_t bytes_in;       /* responder to initiator */
	uint64_t want_bytes;     /* WANT messages for what was found */
	unsigned round_trips;
	uint64_t found;
	double seconds;
} figures;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, cm_err err)
{
	fprintf(stderr, "bench_recon: %s failed: %s (%s)\n", what,
		cm_err_name(err), cm_err_detail());
	exit(1);
}

/* Returns the index of clip number i of the permutation: extras are
 * permuted 0..n_extra-1, the others follow. */
static uint64_t permuted(const bench *b, uint64_t i)
{
	return i * PERMUTATION_STEP % b->n;
}

/* Fills and signs clip number `index` into out (wire in wire[]). */
static void make_clip(const bench *b, uint64_t index, proto_signed *out,
		      uint8_t *wire)
{
	proto_record *r = &out->rec;
	size_t a = index % AUTHORS, len = 0;
	uint64_t jitter = index * 2654435761ULL % 1000;
	cm_err err;

	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_CLIP;
	memcpy(r->author, b->pk[a], 32);
	r->created_ms = BASE_MS + index * 1000 + jitter;
	snprintf(r->product, sizeof(r->product), "gtin:4006381333931");
	snprintf(r->title, sizeof(r->title), "Bench review %llu",
		 (unsigned long long)index);
	snprintf(r->lang, sizeof(r->lang), "en");
	r->n_media = 1;
	crypto_generichash(r->media[0].hash, 32, (const uint8_t *)&index,
			   sizeof(index), NULL, 0);
	r->media[0].size = 1000000;
	snprintf(r->media[0].type, sizeof(r->media[0].type), "video/mp4");
	err = proto_record_sign(r, b->sk[a], wire, CM_RECORD_MAX, &len,
				out->id);
	if (err)
		die("signing a clip", err);
	memcpy(out->sig, wire + len - PROTO_SIG_LEN, PROTO_SIG_LEN);
	out->wire = wire;
	out->wire_len = len;
}

/* Puts clips `indexes[0..count)` into s in batches. */
static void put_clips(const bench *b, store *s, const uint64_t *indexes,
		      uint64_t count)
{
	proto_signed *batch = malloc(PUT_BATCH * sizeof(*batch));
	uint8_t *wires = malloc((size_t)PUT_BATCH * CM_RECORD_MAX);
	cm_err *results = malloc(PUT_BATCH * sizeof(*results));
	cm_err err;

	if (!batch || !wires || !results)
		die("allocating a batch", CM_ERR_NOMEM);
	for (uint64_t done = 0; done < count; done += PUT_BATCH) {
		size_t k = count - done < PUT_BATCH ? count - done : PUT_BATCH;

		for (size_t i = 0; i < k; i++)
			make_clip(b, indexes[done + i], &batch[i],
				  wires + i * CM_RECORD_MAX);
		err = store_put_batch(s, batch, k, results);
		if (err)
			die("store_put_batch", err);
	}
	free(batch);
	free(wires);
	free(results);
}

static store *open_store(const char *dir)
{
	store *s = NULL;
	cm_err err;

	mkdir(dir, 0700);
	err = store_open_sized(dir, 16ULL << 30, &s);
	if (!err)
		err = store_fp_ensure(s);
	if (err)
		die(dir, err);
	return s;
}

static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	static char buf[1 << 20];
	size_t n;
	int rc = 0;

	if (!in || !out)
		rc = -1;
	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	if (in)
		fclose(in);
	if (out && fclose(out))
		rc = -1;
	return rc;
}

/* Builds the cached stores a (all clips) and b0 (all but the extras)
 * unless they exist for this N. */
static void build_cache(const bench *b)
{
	char stamp[64] = "";
	uint64_t *indexes;
	FILE *f = fopen(CACHE_DIR "/stamp", "r");
	store *a, *b0;
	double start = now_s();

	if (f) {
		if (!fgets(stamp, sizeof(stamp), f))
			stamp[0] = '\0';
		fclose(f);
		if (strtoull(stamp, NULL, 10) == b->n)
			return;
	}
	if (system("rm -rf " CACHE_DIR) != 0)
		die("clearing " CACHE_DIR, CM_ERR_IO);
	mkdir(CACHE_DIR, 0700);
	indexes = malloc(b->n * sizeof(*indexes));
	if (!indexes)
		die("allocating indexes", CM_ERR_NOMEM);
	for (uint64_t i = 0; i < b->n; i++)
		indexes[i] = permuted(b, i);

	fprintf(stderr, "building stores of %llu clips in " CACHE_DIR
		" (once per N)\n", (unsigned long long)b->n);
	a = open_store(CACHE_DIR "/a");
	put_clips(b, a, indexes, b->n);
	store_close(&a);
	b0 = open_store(CACHE_DIR "/b0");
	put_clips(b, b0, indexes + b->n_extra, b->n - b->n_extra);
	store_close(&b0);
	free(indexes);

	f = fopen(CACHE_DIR "/stamp", "w");
	if (!f)
		die("writing the cache stamp", CM_ERR_IO);
	fprintf(f, "%llu\n", (unsigned long long)b->n);
	fclose(f);
	fprintf(stderr, "built in %.0f s\n", now_s() - start);
}

/* --- Reconciliation ------------------------------------------------- */

static void step(store *st, proto_recon_session *s, const uint8_t *in,
		 size_t in_len, uint8_t **out, size_t *len, bool *done)
{
	proto_recon_source src = {0};
	store_recon_view *view = NULL;
	cm_err err;

	err = store_recon_open(st, NULL, 0, &src, &view);
	if (err)
		die("store_recon_open", err);
	s->src = &src;
	*done = false;
	if (in)
		err = proto_recon_next(s, in, in_len, out, len, done);
	else
		err = proto_recon_first(s, out, len);
	if (err)
		die("reconciliation step", err);
	store_recon_close(&view);
	s->src = NULL;
}

/* Counts the wanted ids that the initiator lacks and the WANT bytes. */
static void want(store *st, proto_recon_session *s, figures *fig)
{
	uint64_t fresh = 0;

	for (size_t i = 0; i < s->n_want; i++) {
		const uint8_t *id = s->want + i * PROTO_ID_LEN;

		if (store_has(st, id) || store_is_retracted(st, id, NULL))
			continue;
		fresh++;
	}
	fig->found += fresh;
	/* WANT: [5, bin] per page of CM_WIRE_IDS_MAX ids, 7 bytes of
	 * framing at most. */
	fig->want_bytes += fresh * PROTO_ID_LEN +
			   7 * ((fresh + CM_WIRE_IDS_MAX - 1) /
				CM_WIRE_IDS_MAX);
	s->n_want = 0;
}

static proto_wire_msg decode(const uint8_t *msg, size_t len)
{
	proto_wire_msg m;
	cm_err err = proto_wire_decode(msg, len, &m);

	if (err)
		die("proto_wire_decode", err);
	return m;
}

/* Reconciles initiator `ini` with responder `resp`. */
static figures reconcile(const bench *b, store *ini, store *resp)
{
	proto_recon_session si = {.initiator = true}, sr = {0};
	uint8_t *payload = NULL, *msg = NULL;
	size_t payload_len = 0, msg_len = 0;
	uint64_t round = 0;
	figures fig = {0};
	proto_wire_msg m;
	bool done = false;
	double start = now_s();
	cm_err err;

	randombytes_buf(si.salt, sizeof(si.salt));
	si.params = b->params;
	si.n_scopes = 1;
	step(ini, &si, NULL, 0, &payload, &payload_len, &done);
	err = proto_wire_recon_start(1, si.salt, si.params.fp_len,
				     si.params.hash_len, NULL, 0, payload,
				     payload_len, &msg, &msg_len);
	if (err)
		die("proto_wire_recon_start", err);
	free(payload);
	fig.bytes_out += msg_len;
	m = decode(msg, msg_len);
	memcpy(sr.salt, m.salt, sizeof(sr.salt));
	sr.params = b->params;
	sr.params.fp_len = m.fp_len;
	sr.params.hash_len = m.hash_len;
	sr.n_scopes = 1;

	for (;;) {
		step(resp, &sr, m.payload, m.payload_len, &payload,
		     &payload_len, &done);
		free(msg);
		err = proto_wire_recon(1, ++round, payload, payload_len, &msg,
				       &msg_len);
		if (err)
			die("proto_wire_recon", err);
		free(payload);
		fig.bytes_in += msg_len;
		fig.round_trips++;
		if (getenv("BENCH_RECON_TRACE"))
			fprintf(stderr, "round %llu: %llu bytes out, %llu in, "
				"%zu and %zu scopes deferred\n",
				(unsigned long long)round,
				(unsigned long long)fig.bytes_out,
				(unsigned long long)fig.bytes_in, si.deferred,
				sr.deferred);
		m = decode(msg, msg_len);

		step(ini, &si, m.payload, m.payload_len, &payload,
		     &payload_len, &done);
		free(msg);
		msg = NULL;
		want(ini, &si, &fig);
		if (done) {
			free(payload);
			break;
		}
		err = proto_wire_recon(1, ++round, payload, payload_len, &msg,
				       &msg_len);
		if (err)
			die("proto_wire_recon (round limit?)", err);
		free(payload);
		fig.bytes_out += msg_len;
		m = decode(msg, msg_len);
	}
	proto_recon_session_free(&si);
	proto_recon_session_free(&sr);
	fig.seconds = now_s() - start;
	return fig;
}

/* --- Sending every id ----------------------------------------------- */

typedef struct have_walk {
	store *ini;
	uint8_t *page;
	size_t n;
	figures *fig;
} have_walk;

/* Sends one HAVE page to the initiator, which checks each id. */
static void have_flush(have_walk *w)
{
	uint8_t *msg = NULL;
	size_t len = 0, fresh = 0;
	proto_wire_msg m;
	cm_err err;

	if (w->n == 0)
		return;
	err = proto_wire_ids(PROTO_WIRE_HAVE, w->page, w->n, &msg, &len);
	if (err)
		die("proto_wire_ids", err);
	w->fig->bytes_in += len;
	m = decode(msg, len);
	for (size_t i = 0; i < m.n_ids; i++) {
		const uint8_t *id = m.ids + i * PROTO_ID_LEN;

		if (!store_has(w->ini, id) &&
		    !store_is_retracted(w->ini, id, NULL))
			fresh++;
	}
	free(msg);
	w->fig->found += fresh;
	w->fig->want_bytes += fresh ? fresh * PROTO_ID_LEN + 7 : 0;
	w->n = 0;
}

static int have_add(void *ctx, const uint8_t id[PROTO_ID_LEN],
		    const uint8_t *wire, size_t len)
{
	have_walk *w = ctx;

	(void)wire;
	(void)len;
	memcpy(w->page + w->n * PROTO_ID_LEN, id, PROTO_ID_LEN);
	if (++w->n == CM_WIRE_IDS_MAX)
		have_flush(w);
	return 0;
}

static figures send_every_id(store *ini, store *resp)
{
	figures fig = {.round_trips = 1};
	have_walk w = {.ini = ini, .fig = &fig};
	double start = now_s();
	cm_err err;

	w.page = malloc(CM_WIRE_IDS_MAX * PROTO_ID_LEN);
	if (!w.page)
		die("allocating a page", CM_ERR_NOMEM);
	err = store_scan(resp, NULL, 0, have_add, &w);
	if (err)
		die("store_scan", err);
	have_flush(&w);
	free(w.page);
	fig.seconds = now_s() - start;
	return fig;
}

/* --- Main ----------------------------------------------------------- */

static void parse_args(bench *b, int argc, char **argv)
{
	b->n = 1000000;
	b->params = proto_recon_defaults();
	for (int i = 1; i < argc; i++) {
		uint64_t v;
		const char *eq = strchr(argv[i], '=');

		if (!cm_parse_u64(eq ? eq + 1 : argv[i], &v)) {
			fprintf(stderr, "usage: bench_recon [N] [fp=BYTES] "
				"[hash=BYTES] [leaf=N] [full=N] [pieces=N] "
				"[sums=0|1]\n");
			exit(2);
		}
		if (!eq)
			b->n = v;
		else if (strncmp(argv[i], "fp=", 3) == 0)
			b->params.fp_len = v;
		else if (strncmp(argv[i], "hash=", 5) == 0)
			b->params.hash_len = v;
		else if (strncmp(argv[i], "leaf=", 5) == 0)
			b->params.leaf = v;
		else if (strncmp(argv[i], "full=", 5) == 0)
			b->params.full_small = v;
		else if (strncmp(argv[i], "pieces=", 7) == 0)
			b->params.pieces_per_diff = v;
		else if (strncmp(argv[i], "sums=", 5) == 0)
			b->params.split_sums = v != 0;
	}
	if (b->n < 4 || b->n % PERMUTATION_STEP == 0) {
		fprintf(stderr, "bench_recon: N must be at least 4 and not a "
			"multiple of %llu\n", PERMUTATION_STEP);
		exit(2);
	}
	b->n_extra = b->n / 2 < EXTRA_MAX ? b->n / 2 : EXTRA_MAX;
}

static void print_row(uint64_t diff, const figures *r, const figures *h)
{
	printf("| %llu | %llu | %llu | %u | %.2f s | %llu | %llu | %.2f s | "
	       "%llu | %.1f%% |\n",
	       (unsigned long long)diff, (unsigned long long)r->bytes_out,
	       (unsigned long long)r->bytes_in, r->round_trips, r->seconds,
	       (unsigned long long)h->bytes_in,
	       (unsigned long long)r->want_bytes, h->seconds,
	       (unsigned long long)r->found,
	       100.0 * (double)(r->bytes_out + r->bytes_in) /
		       (double)h->bytes_in);
}

int main(int argc, char **argv)
{
	static const uint64_t diffs[] = {EXTRA_MAX, 1000, 1, 0};
	bench b = {0};
	uint64_t *indexes;
	uint64_t have_extra;
	store *a, *s;
	double start = now_s();

	if (sodium_init() < 0)
		return 1;
	parse_args(&b, argc, argv);
	for (int i = 0; i < AUTHORS; i++) {
		uint8_t seed[32];

		memset(seed, 0x40 + i, sizeof(seed));
		crypto_sign_seed_keypair(b.pk[i], b.sk[i], seed);
	}
	build_cache(&b);
	mkdir(CACHE_DIR "/b", 0700);
	if (copy_file(CACHE_DIR "/b0/data.mdb", CACHE_DIR "/b/data.mdb"))
		die("copying store b0", CM_ERR_IO);
	remove(CACHE_DIR "/b/lock.mdb");
	a = open_store(CACHE_DIR "/a");
	s = open_store(CACHE_DIR "/b");
	indexes = malloc(b.n_extra * sizeof(*indexes));
	if (!indexes)
		die("allocating indexes", CM_ERR_NOMEM);
	for (uint64_t i = 0; i < b.n_extra; i++)
		indexes[i] = permuted(&b, i);

	printf("N = %llu clips; fingerprint %zu bytes, short hash %zu bytes, "
	       "leaf %zu, full %zu, pieces per difference %zu, split sums "
	       "%s\n\n", (unsigned long long)b.n, b.params.fp_len,
	       b.params.hash_len, b.params.leaf, b.params.full_small,
	       b.params.pieces_per_diff, b.params.split_sums ? "on" : "off");
	printf("| difference | recon bytes b->a | recon bytes a->b | round "
	       "trips | recon time | every id: bytes a->b | WANT bytes "
	       "(both) | every id: time | found | recon / every id |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|\n");
	have_extra = 0;
	for (size_t i = 0; i < sizeof(diffs) / sizeof(diffs[0]); i++) {
		uint64_t diff = diffs[i] < b.n_extra ? diffs[i] : b.n_extra;
		uint64_t target = b.n_extra - diff;
		figures r, h;

		/* b gets the extras it should hold at this difference. */
		put_clips(&b, s, indexes + diff, target - have_extra);
		have_extra = target;
		r = reconcile(&b, s, a);
		h = send_every_id(s, a);
		if (r.found != diff || h.found != diff) {
			fprintf(stderr, "bench_recon: difference %llu: "
				"reconciliation found %llu, every id %llu\n",
				(unsigned long long)diff,
				(unsigned long long)r.found,
				(unsigned long long)h.found);
			return 1;
		}
		print_row(diff, &r, &h);
		fflush(stdout);
	}
	printf("\ntotal %.0f s; machine: %ld cores\n", now_s() - start,
	       sysconf(_SC_NPROCESSORS_ONLN));
	free(indexes);
	store_close(&a);
	store_close(&s);
	return 0;
}
