/*
 * bench_feed - time of one feed page of 50 clips by author, by product
 * and by tag on an existing store, through store_feed() in this process,
 * so that process start-up does not count. Each page starts at a random
 * time of the store's range (--until), so pages come from all over the
 * indexes. Beside it, the time to verify the same 50 records with
 * proto_record_open(), which `clipmesh feed` does for every clip it
 * prints, measured in the same run.
 *
 * usage: bench_feed STORE_DIR [PAGES]   (PAGES per filter, default 2000)
 *
 * The filter values are the authors, products and tags of the newest
 * 1,000 clips. bench/feed.sh runs it on the cached 1,000,000-clip store
 * of bench/catchup.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cm_util.h"
#include "proto_record.h"
#include "store.h"

#define PAGE 50
#define SAMPLE 1000
#define VALUES_MAX 64

/* Distinct filter values seen in the newest clips. */
typedef struct values {
	uint8_t authors[VALUES_MAX][PROTO_KEY_LEN];
	size_t n_authors;
	char products[VALUES_MAX][CM_PRODUCT_MAX + 1];
	size_t n_products;
	char tags[VALUES_MAX][CM_TAG_MAX + 1];
	size_t n_tags;
	uint64_t newest_ms;
	uint64_t oldest_ms;
} values;

/* One page as it was read: copies of its records. */
typedef struct page {
	uint8_t wires[PAGE][CM_RECORD_MAX];
	size_t lens[PAGE];
	size_t n;
} page;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, cm_err err)
{
	fprintf(stderr, "bench_feed: %s failed: %s (%s)\n", what,
		cm_err_name(err), cm_err_detail());
	exit(1);
}

/* Adds text to a list of n strings of `size` bytes each unless it is
 * there or the list is full. */
static void add_text(char *list, size_t size, size_t *n, const char *text)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(list + i * size, text) == 0)
			return;
	if (*n < VALUES_MAX)
		cm_strlcpy(list + (*n)++ * size, text, size);
}

static int collect(void *ctx, const uint8_t id[PROTO_ID_LEN],
		   const uint8_t *wire, size_t len)
{
	static proto_signed rec;
	values *v = ctx;
	bool known = false;

	(void)id;
	if (proto_record_open(wire, len, cm_now_ms(), &rec) != CM_OK)
		return 0;
	if (v->newest_ms == 0)
		v->newest_ms = rec.rec.created_ms;
	for (size_t i = 0; i < v->n_authors && !known; i++)
		known = memcmp(v->authors[i], rec.rec.author,
			       PROTO_KEY_LEN) == 0;
	if (!known && v->n_authors < VALUES_MAX)
		memcpy(v->authors[v->n_authors++], rec.rec.author,
		       PROTO_KEY_LEN);
	add_text(v->products[0], sizeof(v->products[0]), &v->n_products,
		 rec.rec.product);
	for (size_t t = 0; t < rec.rec.n_tags && t < CM_TAGS_MAX; t++)
		add_text(v->tags[0], sizeof(v->tags[0]), &v->n_tags,
			 rec.rec.tags[t]);
	return 0;
}

/* Stops store_scan at the oldest record and notes its time. */
static int oldest(void *ctx, const uint8_t id[PROTO_ID_LEN],
		  const uint8_t *wire, size_t len)
{
	static proto_signed rec;
	values *v = ctx;

	(void)id;
	if (proto_record_open(wire, len, cm_now_ms(), &rec) == CM_OK)
		v->oldest_ms = rec.rec.created_ms;
	return 1;
}

static void find_values(store *s, values *v)
{
	store_query q = {.limit = SAMPLE};
	uint8_t cursor[STORE_CURSOR_LEN];
	bool more = false;
	cm_err err;

	memset(v, 0, sizeof(*v));
	err = store_feed(s, &q, collect, v, cursor, &more);
	if (err)
		die("reading the newest clips", err);
	err = store_scan(s, NULL, 0, oldest, v);
	if (err)
		die("reading the oldest record", err);
	if (v->n_authors == 0 || v->n_products == 0 || v->n_tags == 0 ||
	    v->oldest_ms >= v->newest_ms) {
		fprintf(stderr, "bench_feed: the store contains no clips with "
			"an author, a product and a tag over a time range\n");
		exit(1);
	}
}

static int copy_record(void *ctx, const uint8_t id[PROTO_ID_LEN],
		       const uint8_t *wire, size_t len)
{
	page *p = ctx;

	(void)id;
	if (p->n < PAGE && len <= CM_RECORD_MAX) {
		memcpy(p->wires[p->n], wire, len);
		p->lens[p->n++] = len;
	}
	return 0;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts samples[n] and prints "median p99" in milliseconds. */
static void print_quantiles(double *samples, size_t n)
{
	qsort(samples, n, sizeof(*samples), compare_double);
	printf("median %.3f ms, p99 %.3f ms", samples[n / 2] / 1e6,
	       samples[n * 99 / 100] / 1e6);
}

typedef enum filter { BY_AUTHOR, BY_PRODUCT, BY_TAG } filter;

static void run_filter(store *s, const values *v, filter f, size_t pages,
		       double *query_ns, double *verify_ns)
{
	static const char *const names[] = {"author", "product", "tag"};
	static page p;
	static proto_signed rec;
	uint64_t span = v->newest_ms - v->oldest_ms + 1;
	size_t short_pages = 0;

	for (size_t i = 0; i < pages; i++) {
		uint8_t cursor[STORE_CURSOR_LEN];
		store_query q = {.limit = PAGE};
		bool more = false;
		double start;
		cm_err err;

		q.until_ms = v->oldest_ms + 1 +
			     (uint64_t)randombytes_uniform(UINT32_MAX) % span;
		if (f == BY_AUTHOR)
			q.author = v->authors[randombytes_uniform(
				(uint32_t)v->n_authors)];
		else if (f == BY_PRODUCT)
			q.product = v->products[randombytes_uniform(
				(uint32_t)v->n_products)];
		else
			q.tag = v->tags[randombytes_uniform(
				(uint32_t)v->n_tags)];
		p.n = 0;
		start = now_ns();
		err = store_feed(s, &q, copy_record, &p, cursor, &more);
		query_ns[i] = now_ns() - start;
		if (err)
			die("store_feed", err);
		short_pages += p.n < PAGE;

		start = now_ns();
		for (size_t k = 0; k < p.n; k++)
			if (proto_record_open(p.wires[k], p.lens[k],
					      cm_now_ms(), &rec) != CM_OK)
				die("verifying a stored record", CM_ERR_STORE);
		verify_ns[i] = now_ns() - start;
	}
	printf("| feed page of %d by %s, %zu pages | ", PAGE, names[f],
	       pages);
	print_quantiles(query_ns, pages);
	printf(" | verifying the page's records: ");
	print_quantiles(verify_ns, pages);
	printf(" | %.2f |\n", query_ns[pages / 2] / verify_ns[pages / 2]);
	if (short_pages)
		printf("(%zu pages by %s started near the oldest clip and held "
		       "fewer than %d)\n", short_pages, names[f], PAGE);
}

int main(int argc, char **argv)
{
	uint64_t pages = 2000;
	double *query_ns, *verify_ns;
	store *s = NULL;
	values *v = malloc(sizeof(*v));
	cm_err err;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && (!cm_parse_u64(argv[2], &pages) || pages < 100 ||
			   pages > 1000000))) {
		fprintf(stderr, "usage: bench_feed STORE_DIR [PAGES]   "
			"(PAGES 100..1000000, default 2000)\n");
		return 2;
	}
	query_ns = malloc(pages * sizeof(*query_ns));
	verify_ns = malloc(pages * sizeof(*verify_ns));
	if (sodium_init() < 0 || !v || !query_ns || !verify_ns)
		return 1;
	err = store_open(argv[1], &s);
	if (err)
		die(argv[1], err);
	find_values(s, v);
	printf("%zu authors, %zu products, %zu tags over %.0f s of clips\n\n",
	       v->n_authors, v->n_products, v->n_tags,
	       (double)(v->newest_ms - v->oldest_ms) / 1000);
	printf("| benchmark | figure | limit measured in the same run | "
	       "ratio |\n|---|---|---|---|\n");
	for (filter f = BY_AUTHOR; f <= BY_TAG; f++)
		run_filter(s, v, f, pages, query_ns, verify_ns);
	store_close(&s);
	free(query_ns);
	free(verify_ns);
	free(v);
	return 0;
}
