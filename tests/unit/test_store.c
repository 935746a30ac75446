/*
 * test_store.c - the LMDB store against a real environment in a temporary
 * folder, with records signed and opened by proto/.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "cm_util.h"
#include "proto_media.h"
#include "store.h"
#include "store_admin.h"

/* Created time of the test records, ms; in the past, so never rejected as
 * future-dated. */
#define T0 1700000000000ULL

#define PRODUCT_KETTLE "url:https://example.com/kettle"
#define PRODUCT_CUFFIE "gtin:4006381333931"

typedef struct test_key {
	uint8_t pk[PROTO_KEY_LEN];
	uint8_t sk[PROTO_SECRET_LEN];
} test_key;

/* A signed record and the buffer that its proto_signed points into. */
typedef struct test_record {
	uint8_t wire[CM_RECORD_MAX];
	size_t len;
	proto_signed sig;
} test_record;

typedef struct fixture {
	char dir[64];
	store *s;
	test_key a, b, c;
} fixture;

/* --- Helpers --------------------------------------------------------- */

static void key_make(test_key *k, uint8_t seed_byte)
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	memset(seed, seed_byte, sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(k->pk, k->sk, seed), 0);
}

static test_record *sign_record(const proto_record *r, const test_key *k)
{
	test_record *t = calloc(1, sizeof(*t));
	uint8_t id[PROTO_ID_LEN];
	cm_err err;

	assert_non_null(t);
	err = proto_record_sign(r, k->sk, t->wire, sizeof(t->wire), &t->len,
				id);
	if (err)
		fail_msg("proto_record_sign: %s: %s", cm_err_name(err),
			 cm_err_detail());
	err = proto_record_open(t->wire, t->len, cm_now_ms(), &t->sig);
	if (err)
		fail_msg("proto_record_open: %s: %s", cm_err_name(err),
			 cm_err_detail());
	assert_memory_equal(t->sig.id, id, PROTO_ID_LEN);
	return t;
}

/* Makes a clip whose one media item is root; tags must be sorted and
 * NULL-terminated. */
static test_record *make_clip_of(const test_key *k, uint64_t created,
				 const char *product, const char *const *tags,
				 const char *title,
				 const uint8_t root[PROTO_HASH_LEN])
{
	proto_record *r = calloc(1, sizeof(*r));
	test_record *t;

	assert_non_null(r);
	r->kind = PROTO_KIND_CLIP;
	memcpy(r->author, k->pk, PROTO_KEY_LEN);
	r->created_ms = created;
	cm_strlcpy(r->product, product, sizeof(r->product));
	cm_strlcpy(r->title, title, sizeof(r->title));
	cm_strlcpy(r->lang, "en", sizeof(r->lang));
	r->rating = 4;
	for (size_t i = 0; tags && tags[i]; i++)
		cm_strlcpy(r->tags[r->n_tags++], tags[i], sizeof(r->tags[0]));
	memcpy(r->media[0].hash, root, PROTO_HASH_LEN);
	r->media[0].size = 1000;
	cm_strlcpy(r->media[0].type, "video/mp4", sizeof(r->media[0].type));
	r->n_media = 1;
	t = sign_record(r, k);
	free(r);
	return t;
}

/* Makes a clip; tags must be sorted and NULL-terminated. The title makes
 * clips of equal time and product distinct, and its hash is the media
 * root. */
static test_record *make_clip(const test_key *k, uint64_t created,
			      const char *product, const char *const *tags,
			      const char *title)
{
	uint8_t root[PROTO_HASH_LEN];

	crypto_generichash(root, sizeof(root), (const uint8_t *)title,
			   strlen(title), NULL, 0);
	return make_clip_of(k, created, product, tags, title, root);
}

static test_record *make_retraction(const test_key *k, uint64_t created,
				    const uint8_t target[PROTO_ID_LEN])
{
	proto_record *r = calloc(1, sizeof(*r));
	test_record *t;

	assert_non_null(r);
	r->kind = PROTO_KIND_RETRACT;
	memcpy(r->author, k->pk, PROTO_KEY_LEN);
	r->created_ms = created;
	memcpy(r->target, target, PROTO_ID_LEN);
	t = sign_record(r, k);
	free(r);
	return t;
}

static test_record *make_profile(const test_key *k, uint64_t created,
				 const char *name)
{
	proto_record *r = calloc(1, sizeof(*r));
	test_record *t;

	assert_non_null(r);
	r->kind = PROTO_KIND_PROFILE;
	memcpy(r->author, k->pk, PROTO_KEY_LEN);
	r->created_ms = created;
	cm_strlcpy(r->name, name, sizeof(r->name));
	t = sign_record(r, k);
	free(r);
	return t;
}

/* Stores one record in its own batch and returns its result. */
static cm_err put1(store *s, const test_record *t)
{
	cm_err result = CM_ERR_COUNT;
	cm_err err;

	err = store_put_batch(s, &t->sig, 1, &result);
	if (err)
		fail_msg("store_put_batch: %s: %s", cm_err_name(err),
			 cm_err_detail());
	return result;
}

static void put_all(store *s, test_record **recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(put1(s, recs[i]), CM_OK);
}

static void free_all(test_record **recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(recs[i]);
}

static void remove_dir(const char *dir)
{
	char path[256];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) <
			    (int)sizeof(path) &&
		    unlink(path) != 0)
			remove_dir(path);
	}
	closedir(d);
	rmdir(dir);
}

static void make_temp_dir(char dir[64])
{
	cm_strlcpy(dir, "/tmp/test_store.XXXXXX", 64);
	assert_non_null(mkdtemp(dir));
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	cm_err err;

	assert_non_null(f);
	make_temp_dir(f->dir);
	err = store_open(f->dir, &f->s);
	if (err)
		fail_msg("store_open: %s: %s", cm_err_name(err),
			 cm_err_detail());
	key_make(&f->a, 0xa1);
	key_make(&f->b, 0xb2);
	key_make(&f->c, 0xc3);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	store_close(&f->s);
	remove_dir(f->dir);
	free(f);
	return 0;
}

/* Ids collected by a walk, in visiting order. */
typedef struct id_list {
	uint8_t ids[512][PROTO_ID_LEN];
	size_t n;
	size_t stop_after;  /* stop the walk after this many; 0: never */
} id_list;

static int collect_id(void *ctx, const uint8_t id[PROTO_ID_LEN],
		      const uint8_t *wire, size_t len)
{
	id_list *l = ctx;

	assert_non_null(wire);
	assert_true(len > 0);
	assert_true(l->n < 512);
	memcpy(l->ids[l->n++], id, PROTO_ID_LEN);
	return l->stop_after && l->n == l->stop_after;
}

static bool list_has(const id_list *l, const uint8_t id[PROTO_ID_LEN])
{
	for (size_t i = 0; i < l->n; i++)
		if (memcmp(l->ids[i], id, PROTO_ID_LEN) == 0)
			return true;
	return false;
}

/* Orders records by (created, id), as the time indexes do. */
static int time_order(const void *a, const void *b)
{
	const test_record *ra = *(test_record *const *)a;
	const test_record *rb = *(test_record *const *)b;

	if (ra->sig.rec.created_ms != rb->sig.rec.created_ms)
		return ra->sig.rec.created_ms < rb->sig.rec.created_ms ? -1 : 1;
	return memcmp(ra->sig.id, rb->sig.id, PROTO_ID_LEN);
}

static int time_order_desc(const void *a, const void *b)
{
	return time_order(b, a);
}

static bool clip_has_tag(const proto_record *r, const char *tag)
{
	for (size_t i = 0; i < r->n_tags; i++)
		if (strcmp(r->tags[i], tag) == 0)
			return true;
	return false;
}

/* True when clip r passes every filter of q (limit and cursor aside). */
static bool query_matches(const store_query *q, const proto_record *r)
{
	if (r->kind != PROTO_KIND_CLIP)
		return false;
	if (q->author && memcmp(q->author, r->author, PROTO_KEY_LEN) != 0)
		return false;
	if (q->product && strcmp(q->product, r->product) != 0)
		return false;
	if (q->tag && !clip_has_tag(r, q->tag))
		return false;
	if (r->created_ms < q->since_ms)
		return false;
	return !q->until_ms || r->created_ms < q->until_ms;
}

/* Fills out with the ids that q must return, newest first. */
static void expected_feed(const store_query *q, test_record **recs, size_t n,
			  id_list *out)
{
	test_record **sorted = calloc(n, sizeof(*sorted));

	assert_non_null(sorted);
	memcpy(sorted, recs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), time_order_desc);
	out->n = 0;
	for (size_t i = 0; i < n; i++)
		if (query_matches(q, &sorted[i]->sig.rec))
			memcpy(out->ids[out->n++], sorted[i]->sig.id,
			       PROTO_ID_LEN);
	free(sorted);
}

/* Walks every page of q with page size `limit` into all; returns the
 * number of pages. */
static size_t feed_all_pages(store *s, store_query q, size_t limit,
			     id_list *all)
{
	uint8_t cursor[STORE_CURSOR_LEN];
	bool more = true;
	size_t pages = 0;
	cm_err err;

	all->n = 0;
	q.limit = limit;
	q.cursor = NULL;
	while (more) {
		size_t before = all->n;

		err = store_feed(s, &q, collect_id, all, cursor, &more);
		if (err)
			fail_msg("store_feed: %s: %s", cm_err_name(err),
				 cm_err_detail());
		assert_true(all->n - before <= limit);
		if (more)
			assert_int_equal(all->n - before, limit);
		pages++;
		assert_true(pages < 100);
		q.cursor = cursor;
	}
	return pages;
}

static void assert_same_ids(const id_list *got, const id_list *want)
{
	assert_int_equal(got->n, want->n);
	for (size_t i = 0; i < want->n; i++)
		assert_memory_equal(got->ids[i], want->ids[i], PROTO_ID_LEN);
}

/* --- Records --------------------------------------------------------- */

static void put_get_has(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "one");
	uint8_t unknown[PROTO_ID_LEN] = {0};
	store_counts counts;
	uint8_t *wire = NULL;
	size_t len = 0;

	assert_false(store_has(f->s, clip->sig.id));
	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_true(store_has(f->s, clip->sig.id));
	assert_false(store_has(f->s, unknown));

	assert_int_equal(store_get(f->s, clip->sig.id, &wire, &len), CM_OK);
	assert_int_equal(len, clip->len);
	assert_memory_equal(wire, clip->wire, len);
	free(wire);
	assert_int_equal(store_get(f->s, unknown, &wire, &len),
			 CM_ERR_NOT_FOUND);
	assert_null(wire);

	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.clips, 1);
	assert_int_equal(counts.retractions, 0);
	assert_int_equal(counts.profiles, 0);
	free(clip);
}

static void put_duplicate(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "dup");
	test_record *other = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "x");
	proto_signed batch[3] = {clip->sig, clip->sig, other->sig};
	cm_err results[3];
	store_counts counts;

	assert_int_equal(store_put_batch(f->s, batch, 3, results), CM_OK);
	assert_int_equal(results[0], CM_OK);
	assert_int_equal(results[1], CM_ERR_DUPLICATE);
	assert_int_equal(results[2], CM_OK);

	assert_int_equal(put1(f->s, clip), CM_ERR_DUPLICATE);
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.clips, 2);
	free(clip);
	free(other);
}

/* Returns the number of clips a feed query returns in one page. */
static size_t feed_count(store *s, const store_query *q)
{
	store_query page = *q;
	uint8_t cursor[STORE_CURSOR_LEN];
	id_list *l = calloc(1, sizeof(*l));
	bool more;
	size_t n;

	assert_non_null(l);
	page.limit = CM_FEED_LIMIT_MAX;
	assert_int_equal(store_feed(s, &page, collect_id, l, cursor, &more),
			 CM_OK);
	assert_false(more);
	n = l->n;
	free(l);
	return n;
}

static void retract_after_clip(void **state)
{
	fixture *f = *state;
	const char *const tags[] = {"kitchen", "steel", NULL};
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, tags, "k");
	test_record *retr = make_retraction(&f->a, T0 + 5, clip->sig.id);
	store_query all = {0};
	store_query by_author = {.author = f->a.pk};
	store_query by_product = {.product = PRODUCT_KETTLE};
	store_query by_tag = {.tag = "steel"};
	uint8_t which[PROTO_ID_LEN];
	store_counts counts;
	id_list *scanned = calloc(1, sizeof(*scanned));

	assert_non_null(scanned);
	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(feed_count(f->s, &by_tag), 1);
	assert_int_equal(put1(f->s, retr), CM_OK);

	assert_false(store_has(f->s, clip->sig.id));
	assert_true(store_has(f->s, retr->sig.id));
	assert_true(store_is_retracted(f->s, clip->sig.id, which));
	assert_memory_equal(which, retr->sig.id, PROTO_ID_LEN);
	assert_false(store_is_retracted(f->s, retr->sig.id, NULL));

	assert_int_equal(feed_count(f->s, &all), 0);
	assert_int_equal(feed_count(f->s, &by_author), 0);
	assert_int_equal(feed_count(f->s, &by_product), 0);
	assert_int_equal(feed_count(f->s, &by_tag), 0);
	assert_int_equal(store_scan(f->s, NULL, 0, collect_id, scanned),
			 CM_OK);
	assert_int_equal(scanned->n, 1);
	assert_memory_equal(scanned->ids[0], retr->sig.id, PROTO_ID_LEN);
	scanned->n = 0;
	assert_int_equal(store_scan(f->s, f->a.pk, 1, collect_id, scanned),
			 CM_OK);
	assert_int_equal(scanned->n, 1);

	assert_int_equal(put1(f->s, clip), CM_ERR_RETRACTED);
	assert_false(store_has(f->s, clip->sig.id));
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.clips, 0);
	assert_int_equal(counts.retractions, 1);
	free(scanned);
	free(clip);
	free(retr);
}

static void retract_before_clip(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "b");
	test_record *retr = make_retraction(&f->a, T0 + 5, clip->sig.id);
	uint8_t which[PROTO_ID_LEN];
	store_query all = {0};

	assert_int_equal(put1(f->s, retr), CM_OK);
	/* Pending: the author of the unseen clip is not known yet. */
	assert_false(store_is_retracted(f->s, clip->sig.id, NULL));
	assert_int_equal(put1(f->s, clip), CM_ERR_RETRACTED);
	assert_false(store_has(f->s, clip->sig.id));
	assert_true(store_is_retracted(f->s, clip->sig.id, which));
	assert_memory_equal(which, retr->sig.id, PROTO_ID_LEN);
	assert_int_equal(feed_count(f->s, &all), 0);
	/* Still blocked the second time, now that the author is known. */
	assert_int_equal(put1(f->s, clip), CM_ERR_RETRACTED);
	assert_true(store_has(f->s, retr->sig.id));
	free(clip);
	free(retr);
}

static void retract_same_batch(void **state)
{
	fixture *f = *state;
	test_record *c1 = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "c1");
	test_record *c2 = make_clip(&f->a, T0 + 1, PRODUCT_KETTLE, NULL, "c2");
	test_record *r1 = make_retraction(&f->a, T0 + 5, c1->sig.id);
	test_record *r2 = make_retraction(&f->a, T0 + 6, c2->sig.id);
	proto_signed batch[4] = {r1->sig, c1->sig, c2->sig, r2->sig};
	cm_err results[4];
	store_counts counts;

	assert_int_equal(store_put_batch(f->s, batch, 4, results), CM_OK);
	assert_int_equal(results[0], CM_OK);
	assert_int_equal(results[1], CM_ERR_RETRACTED);
	assert_int_equal(results[2], CM_OK);
	assert_int_equal(results[3], CM_OK);
	assert_false(store_has(f->s, c1->sig.id));
	assert_false(store_has(f->s, c2->sig.id));
	assert_true(store_is_retracted(f->s, c1->sig.id, NULL));
	assert_true(store_is_retracted(f->s, c2->sig.id, NULL));
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.clips, 0);
	assert_int_equal(counts.retractions, 2);
	free(c1);
	free(c2);
	free(r1);
	free(r2);
}

static void retract_wrong_author(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "w");
	test_record *forged = make_retraction(&f->b, T0 + 5, clip->sig.id);
	store_query all = {0};

	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(put1(f->s, forged), CM_ERR_NOT_AUTHOR);
	assert_false(store_has(f->s, forged->sig.id));
	assert_true(store_has(f->s, clip->sig.id));
	assert_false(store_is_retracted(f->s, clip->sig.id, NULL));
	assert_int_equal(feed_count(f->s, &all), 1);
	free(clip);
	free(forged);
}

/* A forged retraction that arrives before the clip is deleted when the
 * clip shows another author, and rejected after that. */
static void retract_forged_pending(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "fp");
	test_record *forged = make_retraction(&f->b, T0 + 5, clip->sig.id);
	test_record *forged2 = make_retraction(&f->b, T0 + 7, clip->sig.id);
	test_record *real = make_retraction(&f->a, T0 + 9, clip->sig.id);
	store_counts counts;

	assert_int_equal(put1(f->s, forged), CM_OK);
	assert_int_equal(put1(f->s, forged2), CM_OK);
	assert_false(store_is_retracted(f->s, clip->sig.id, NULL));

	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_true(store_has(f->s, clip->sig.id));
	assert_false(store_has(f->s, forged->sig.id));
	assert_false(store_has(f->s, forged2->sig.id));
	assert_false(store_is_retracted(f->s, clip->sig.id, NULL));
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.retractions, 0);

	assert_int_equal(put1(f->s, forged), CM_ERR_NOT_AUTHOR);
	assert_int_equal(put1(f->s, real), CM_OK);
	assert_false(store_has(f->s, clip->sig.id));
	free(clip);
	free(forged);
	free(forged2);
	free(real);
}

/* Once a clip is retracted by its author, a retraction by anyone else is
 * rejected, and a second one by the author is kept. */
static void retract_after_confirmed(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "ac");
	test_record *real = make_retraction(&f->a, T0 + 5, clip->sig.id);
	test_record *again = make_retraction(&f->a, T0 + 6, clip->sig.id);
	test_record *forged = make_retraction(&f->b, T0 + 7, clip->sig.id);

	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(put1(f->s, real), CM_OK);
	assert_int_equal(put1(f->s, forged), CM_ERR_NOT_AUTHOR);
	assert_false(store_has(f->s, forged->sig.id));
	assert_int_equal(put1(f->s, again), CM_OK);
	assert_true(store_has(f->s, again->sig.id));
	assert_int_equal(put1(f->s, clip), CM_ERR_RETRACTED);
	free(clip);
	free(real);
	free(again);
	free(forged);
}

static void retract_non_clip(void **state)
{
	fixture *f = *state;
	test_record *profile = make_profile(&f->a, T0, "Anna");
	test_record *retr = make_retraction(&f->a, T0 + 5, profile->sig.id);

	assert_int_equal(put1(f->s, profile), CM_OK);
	assert_int_equal(put1(f->s, retr), CM_ERR_BAD_FIELD);
	assert_false(store_has(f->s, retr->sig.id));
	assert_true(store_has(f->s, profile->sig.id));
	free(profile);
	free(retr);
}

/* A retraction of a profile that arrived first is dropped as forged. */
static void retract_pending_profile(void **state)
{
	fixture *f = *state;
	test_record *profile = make_profile(&f->a, T0, "Anna");
	test_record *retr = make_retraction(&f->a, T0 + 5, profile->sig.id);

	assert_int_equal(put1(f->s, retr), CM_OK);
	assert_int_equal(put1(f->s, profile), CM_OK);
	assert_false(store_has(f->s, retr->sig.id));
	assert_false(store_is_retracted(f->s, profile->sig.id, NULL));
	free(profile);
	free(retr);
}

/* --- Profiles -------------------------------------------------------- */

static void assert_profile_is(store *s, const test_key *k,
			      const test_record *want)
{
	uint8_t *wire = NULL;
	size_t len = 0;

	assert_int_equal(store_get_profile(s, k->pk, &wire, &len), CM_OK);
	assert_int_equal(len, want->len);
	assert_memory_equal(wire, want->wire, len);
	free(wire);
}

static void profile_newer_wins(void **state)
{
	fixture *f = *state;
	test_record *old = make_profile(&f->a, T0, "Anna");
	test_record *new = make_profile(&f->a, T0 + 10, "Anna B.");
	uint8_t *wire = NULL;
	store_counts counts;
	size_t len;

	assert_int_equal(store_get_profile(f->s, f->a.pk, &wire, &len),
			 CM_ERR_NOT_FOUND);
	assert_int_equal(put1(f->s, old), CM_OK);
	assert_profile_is(f->s, &f->a, old);
	assert_int_equal(put1(f->s, new), CM_OK);
	assert_profile_is(f->s, &f->a, new);
	assert_false(store_has(f->s, old->sig.id));
	assert_int_equal(put1(f->s, old), CM_ERR_SUPERSEDED);
	assert_profile_is(f->s, &f->a, new);
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.profiles, 1);
	assert_int_equal(counts.retractions, 0);
	free(old);
	free(new);
}

static void profile_older_rejected(void **state)
{
	fixture *f = *state;
	test_record *old = make_profile(&f->a, T0, "Anna");
	test_record *new = make_profile(&f->a, T0 + 10, "Anna B.");
	proto_signed batch[2] = {new->sig, old->sig};
	cm_err results[2];

	assert_int_equal(store_put_batch(f->s, batch, 2, results), CM_OK);
	assert_int_equal(results[0], CM_OK);
	assert_int_equal(results[1], CM_ERR_SUPERSEDED);
	assert_profile_is(f->s, &f->a, new);
	assert_false(store_has(f->s, old->sig.id));
	free(old);
	free(new);
}

/* Two profiles of equal time: the larger id wins in either order. */
static void profile_tie_larger_id(void **state)
{
	fixture *f = *state;
	test_record *p1 = make_profile(&f->a, T0, "One");
	test_record *p2 = make_profile(&f->a, T0, "Two");
	test_record *q1 = make_profile(&f->b, T0, "One");
	test_record *q2 = make_profile(&f->b, T0, "Two");
	bool p1_wins = memcmp(p1->sig.id, p2->sig.id, PROTO_ID_LEN) > 0;
	bool q1_wins = memcmp(q1->sig.id, q2->sig.id, PROTO_ID_LEN) > 0;

	assert_int_equal(put1(f->s, p1), CM_OK);
	assert_int_equal(put1(f->s, p2),
			 p1_wins ? CM_ERR_SUPERSEDED : CM_OK);
	assert_profile_is(f->s, &f->a, p1_wins ? p1 : p2);

	assert_int_equal(put1(f->s, q2), CM_OK);
	assert_int_equal(put1(f->s, q1),
			 q1_wins ? CM_OK : CM_ERR_SUPERSEDED);
	assert_profile_is(f->s, &f->b, q1_wins ? q1 : q2);
	free(p1);
	free(p2);
	free(q1);
	free(q2);
}

/* --- Feed ------------------------------------------------------------ */

static void feed_filters(void **state)
{
	fixture *f = *state;
	const char *const t_kitchen[] = {"kitchen", NULL};
	const char *const t_audio_travel[] = {"audio", "travel", NULL};
	const char *const t_kitchen_travel[] = {"kitchen", "travel", NULL};
	const char *const t_audio[] = {"audio", NULL};
	test_record *recs[7];
	struct {
		store_query q;
		size_t want;
	} cases[] = {
		{{0}, 5},
		{{.author = f->a.pk}, 3},
		{{.author = f->b.pk}, 2},
		{{.author = f->c.pk}, 0},
		{{.product = PRODUCT_KETTLE}, 3},
		{{.tag = "travel"}, 2},
		{{.tag = "none"}, 0},
		{{.since_ms = T0 + 200, .until_ms = T0 + 500}, 3},
		{{.since_ms = T0 + 500}, 1},
		{{.until_ms = T0 + 100}, 0},
		{{.until_ms = T0 + 101}, 1},
		{{.since_ms = T0 + 300, .until_ms = T0 + 300}, 0},
		{{.author = f->a.pk, .product = PRODUCT_KETTLE}, 2},
		{{.author = f->a.pk, .tag = "audio"}, 2},
		{{.product = PRODUCT_KETTLE, .tag = "kitchen",
		  .since_ms = T0 + 200}, 1},
		{{.author = f->b.pk, .product = PRODUCT_CUFFIE,
		  .tag = "audio"}, 0},
		{{.author = f->a.pk, .since_ms = T0 + 150,
		  .until_ms = T0 + 501}, 2},
	};
	id_list *got = calloc(1, sizeof(*got));
	id_list *want = calloc(1, sizeof(*want));

	assert_non_null(got);
	assert_non_null(want);
	recs[0] = make_clip(&f->a, T0 + 100, PRODUCT_KETTLE, t_kitchen, "0");
	recs[1] = make_clip(&f->a, T0 + 200, PRODUCT_CUFFIE, t_audio_travel,
			    "1");
	recs[2] = make_clip(&f->b, T0 + 300, PRODUCT_KETTLE, t_kitchen_travel,
			    "2");
	recs[3] = make_clip(&f->b, T0 + 400, PRODUCT_CUFFIE, NULL, "3");
	recs[4] = make_clip(&f->a, T0 + 500, PRODUCT_KETTLE, t_audio, "4");
	/* Non-clips in the author index must not show in the feed. */
	recs[5] = make_profile(&f->a, T0 + 450, "Anna");
	recs[6] = make_retraction(&f->a, T0 + 460, f->c.pk);
	put_all(f->s, recs, 7);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expected_feed(&cases[i].q, recs, 7, want);
		if (want->n != cases[i].want)
			fail_msg("case %zu: the test expects %zu clips but its "
				 "filter matches %zu", i, cases[i].want,
				 want->n);
		feed_all_pages(f->s, cases[i].q, 10, got);
		if (got->n != want->n)
			fail_msg("case %zu: feed returned %zu clips, expected "
				 "%zu", i, got->n, want->n);
		assert_same_ids(got, want);
	}
	free_all(recs, 7);
	free(got);
	free(want);
}

/* Seven clips with equal times, read in pages of 2: no overlap, no gap. */
static void feed_paging_ties(void **state)
{
	fixture *f = *state;
	const uint64_t times[7] = {100, 200, 200, 200, 300, 300, 400};
	test_record *recs[7];
	uint8_t cursor[STORE_CURSOR_LEN];
	store_query q = {.limit = 2};
	id_list *got = calloc(1, sizeof(*got));
	id_list *want = calloc(1, sizeof(*want));
	bool more;
	char title[16];

	assert_non_null(got);
	assert_non_null(want);
	for (size_t i = 0; i < 7; i++) {
		snprintf(title, sizeof(title), "tie %zu", i);
		recs[i] = make_clip(i % 2 ? &f->a : &f->b, T0 + times[i],
				    PRODUCT_KETTLE, NULL, title);
	}
	put_all(f->s, recs, 7);
	expected_feed(&q, recs, 7, want);

	for (size_t page = 0; page < 4; page++) {
		size_t before = got->n;

		assert_int_equal(store_feed(f->s, &q, collect_id, got, cursor,
					    &more),
				 CM_OK);
		assert_int_equal(got->n - before, page < 3 ? 2 : 1);
		assert_int_equal(more, page < 3);
		q.cursor = cursor;
	}
	assert_same_ids(got, want);

	/* The last page exactly fills the limit: has_more must be false. */
	assert_int_equal(feed_all_pages(f->s, (store_query){0}, 7, got), 1);
	assert_same_ids(got, want);
	free_all(recs, 7);
	free(got);
	free(want);
}

/* Pages of a filtered feed, with non-matching clips between and after the
 * matching ones. */
static void feed_paging_filtered(void **state)
{
	fixture *f = *state;
	const char *const t_x[] = {"x", NULL};
	const char *const t_y[] = {"y", NULL};
	test_record *recs[10];
	store_query by_tag = {.tag = "x"};
	store_query by_author = {.author = f->a.pk, .tag = "x"};
	id_list *got = calloc(1, sizeof(*got));
	id_list *want = calloc(1, sizeof(*want));
	char title[16];

	assert_non_null(got);
	assert_non_null(want);
	for (size_t i = 0; i < 8; i++) {
		snprintf(title, sizeof(title), "f %zu", i);
		recs[i] = make_clip(i < 4 ? &f->a : &f->b, T0 + 10 * (i / 2),
				    PRODUCT_KETTLE, i % 2 ? t_x : t_y, title);
	}
	recs[8] = make_profile(&f->a, T0 + 15, "Anna");
	recs[9] = make_clip(&f->a, T0 - 100, PRODUCT_KETTLE, t_y, "old");
	put_all(f->s, recs, 10);

	expected_feed(&by_tag, recs, 10, want);
	assert_int_equal(want->n, 4);
	assert_int_equal(feed_all_pages(f->s, by_tag, 2, got), 2);
	assert_same_ids(got, want);
	assert_int_equal(feed_all_pages(f->s, by_tag, 3, got), 2);
	assert_same_ids(got, want);

	expected_feed(&by_author, recs, 10, want);
	assert_int_equal(want->n, 2);
	assert_int_equal(feed_all_pages(f->s, by_author, 1, got), 2);
	assert_same_ids(got, want);
	free_all(recs, 10);
	free(got);
	free(want);
}

static void feed_bad_limit(void **state)
{
	fixture *f = *state;
	uint8_t cursor[STORE_CURSOR_LEN];
	store_query q = {0};
	id_list l = {.n = 0};
	bool more;

	assert_int_equal(store_feed(f->s, &q, collect_id, &l, cursor, &more),
			 CM_ERR_USAGE);
	q.limit = CM_FEED_LIMIT_MAX + 1;
	assert_int_equal(store_feed(f->s, &q, collect_id, &l, cursor, &more),
			 CM_ERR_USAGE);
	q.limit = CM_FEED_LIMIT_MAX;
	assert_int_equal(store_feed(f->s, &q, collect_id, &l, cursor, &more),
			 CM_OK);
	assert_false(more);
	assert_int_equal(l.n, 0);
}

/* A callback that stops the walk gets a cursor that resumes after it. */
static void feed_callback_stops(void **state)
{
	fixture *f = *state;
	test_record *recs[3];
	uint8_t cursor[STORE_CURSOR_LEN];
	store_query q = {.limit = 10};
	id_list *got = calloc(1, sizeof(*got));
	id_list *want = calloc(1, sizeof(*want));
	bool more;

	assert_non_null(got);
	assert_non_null(want);
	recs[0] = make_clip(&f->a, T0 + 1, PRODUCT_KETTLE, NULL, "s0");
	recs[1] = make_clip(&f->a, T0 + 2, PRODUCT_KETTLE, NULL, "s1");
	recs[2] = make_clip(&f->a, T0 + 3, PRODUCT_KETTLE, NULL, "s2");
	put_all(f->s, recs, 3);
	expected_feed(&q, recs, 3, want);

	got->stop_after = 1;
	assert_int_equal(store_feed(f->s, &q, collect_id, got, cursor, &more),
			 CM_OK);
	assert_int_equal(got->n, 1);
	assert_true(more);
	got->stop_after = 0;
	q.cursor = cursor;
	assert_int_equal(store_feed(f->s, &q, collect_id, got, cursor, &more),
			 CM_OK);
	assert_false(more);
	assert_same_ids(got, want);
	free_all(recs, 3);
	free(got);
	free(want);
}

typedef struct writing_ctx {
	store *s;
	const test_record *extra;
	size_t calls;
} writing_ctx;

/* Writes to the store from inside a walk, in the walk's thread. */
static int write_during_walk(void *ctx, const uint8_t id[PROTO_ID_LEN],
			     const uint8_t *wire, size_t len)
{
	writing_ctx *w = ctx;

	(void)id;
	(void)wire;
	(void)len;
	if (w->calls++ == 0) {
		assert_int_equal(put1(w->s, w->extra), CM_OK);
		assert_int_equal(store_counter_add(w->s, "walk.writes", 1),
				 CM_OK);
		assert_true(store_has(w->s, w->extra->sig.id));
	}
	return 0;
}

static void feed_callback_writes(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "w0");
	test_record *extra = make_clip(&f->a, T0 - 9, PRODUCT_KETTLE, NULL,
				       "w1");
	test_record *extra2 = make_clip(&f->a, T0 + 8, PRODUCT_KETTLE, NULL,
					"w2");
	writing_ctx w = {.s = f->s, .extra = extra};
	uint8_t cursor[STORE_CURSOR_LEN];
	store_query q = {.limit = 10};
	bool more;

	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(store_feed(f->s, &q, write_during_walk, &w, cursor,
				    &more),
			 CM_OK);
	/* The walk reads the snapshot it started with, so it does not reach
	 * the older clip written during the walk. */
	assert_int_equal(w.calls, 1);
	assert_int_equal(feed_count(f->s, &q), 2);

	w.calls = 0;
	w.extra = extra2;
	assert_int_equal(store_scan(f->s, NULL, 0, write_during_walk, &w),
			 CM_OK);
	assert_true(store_has(f->s, extra2->sig.id));
	free(clip);
	free(extra);
	free(extra2);
}

/* --- Scan ------------------------------------------------------------ */

static void assert_scan_order(store *s, const uint8_t *authors, size_t n,
			      test_record **recs, size_t n_recs,
			      const uint8_t *only_author)
{
	test_record **sorted = calloc(n_recs, sizeof(*sorted));
	id_list *got = calloc(1, sizeof(*got));
	size_t want = 0;

	assert_non_null(sorted);
	assert_non_null(got);
	memcpy(sorted, recs, n_recs * sizeof(*sorted));
	qsort(sorted, n_recs, sizeof(*sorted), time_order);
	assert_int_equal(store_scan(s, authors, n, collect_id, got), CM_OK);
	for (size_t i = 0; i < n_recs; i++) {
		if (only_author && memcmp(sorted[i]->sig.rec.author,
					  only_author, PROTO_KEY_LEN) != 0)
			continue;
		assert_true(want < got->n);
		assert_memory_equal(got->ids[want], sorted[i]->sig.id,
				    PROTO_ID_LEN);
		want++;
	}
	assert_int_equal(got->n, want);
	free(sorted);
	free(got);
}

/* Stores six records of every kind by A, B and C, out of time order. */
static void put_scan_records(fixture *f, test_record *recs[6])
{
	recs[0] = make_clip(&f->a, T0 + 30, PRODUCT_KETTLE, NULL, "a0");
	recs[1] = make_clip(&f->b, T0 + 10, PRODUCT_KETTLE, NULL, "b0");
	recs[2] = make_profile(&f->a, T0 + 20, "Anna");
	recs[3] = make_clip(&f->c, T0 + 20, PRODUCT_KETTLE, NULL, "c0");
	recs[4] = make_retraction(&f->b, T0 + 40, f->c.pk);
	recs[5] = make_clip(&f->a, T0 + 10, PRODUCT_CUFFIE, NULL, "a1");
	put_all(f->s, recs, 6);
}

static void scan_all_and_author(void **state)
{
	fixture *f = *state;
	test_record *recs[6];
	uint8_t ab[3 * PROTO_KEY_LEN];
	id_list *got = calloc(1, sizeof(*got));

	assert_non_null(got);
	put_scan_records(f, recs);

	assert_scan_order(f->s, NULL, 0, recs, 6, NULL);
	assert_scan_order(f->s, f->a.pk, 1, recs, 6, f->a.pk);
	assert_scan_order(f->s, f->c.pk, 1, recs, 6, f->c.pk);

	/* A and B, with B repeated: C's clip is left out, none twice. */
	memcpy(ab, f->b.pk, PROTO_KEY_LEN);
	memcpy(ab + PROTO_KEY_LEN, f->a.pk, PROTO_KEY_LEN);
	memcpy(ab + 2 * PROTO_KEY_LEN, f->b.pk, PROTO_KEY_LEN);
	assert_int_equal(store_scan(f->s, ab, 3, collect_id, got), CM_OK);
	assert_int_equal(got->n, 5);
	assert_false(list_has(got, recs[3]->sig.id));
	for (size_t i = 1; i < got->n; i++)
		assert_memory_not_equal(got->ids[i - 1], got->ids[i],
					PROTO_ID_LEN);

	got->n = 0;
	assert_int_equal(store_scan(f->s, ab, 0, collect_id, got), CM_OK);
	assert_int_equal(got->n, 0);
	got->stop_after = 2;
	assert_int_equal(store_scan(f->s, NULL, 0, collect_id, got), CM_OK);
	assert_int_equal(got->n, 2);
	free_all(recs, 6);
	free(got);
}

/* Walks in parts of `max` records and checks that the parts together
 * visit what one store_scan visits, in the same order. */
static void assert_parts_match(store *s, const uint8_t *authors, size_t n,
			       size_t max)
{
	id_list *whole = calloc(1, sizeof(*whole));
	id_list *parts = calloc(1, sizeof(*parts));
	store_scan_part part = {.max = max};
	size_t calls = 0;

	assert_non_null(whole);
	assert_non_null(parts);
	assert_int_equal(store_scan(s, authors, n, collect_id, whole), CM_OK);
	do {
		size_t before = parts->n;

		assert_int_equal(store_scan_part_run(s, authors, n, &part,
						     collect_id, parts),
				 CM_OK);
		assert_true(parts->n - before <= max);
		calls++;
	} while (!part.done);
	assert_int_equal(parts->n, whole->n);
	assert_memory_equal(parts->ids, whole->ids, whole->n * PROTO_ID_LEN);
	assert_true(calls >= whole->n / max);
	assert_true(calls <= whole->n / max + 1);
	free(whole);
	free(parts);
}

static void scan_in_parts(void **state)
{
	fixture *f = *state;
	test_record *recs[6];
	test_record *early, *late;
	uint8_t ab[2 * PROTO_KEY_LEN];
	id_list *got = calloc(1, sizeof(*got));
	store_scan_part part = {.max = 2};

	assert_non_null(got);
	put_scan_records(f, recs);
	memcpy(ab, f->a.pk, PROTO_KEY_LEN);
	memcpy(ab + PROTO_KEY_LEN, f->b.pk, PROTO_KEY_LEN);
	for (size_t max = 1; max <= 7; max++) {
		assert_parts_match(f->s, NULL, 0, max);
		assert_parts_match(f->s, ab, 2, max);
	}

	/* Records stored between parts: only those after the position. */
	assert_int_equal(store_scan_part_run(f->s, NULL, 0, &part,
					     collect_id, got),
			 CM_OK);
	assert_int_equal(got->n, 2);
	assert_false(part.done);
	early = make_clip(&f->c, T0 + 5, PRODUCT_KETTLE, NULL, "early");
	late = make_clip(&f->c, T0 + 50, PRODUCT_KETTLE, NULL, "late");
	assert_int_equal(put1(f->s, early), CM_OK);
	assert_int_equal(put1(f->s, late), CM_OK);
	part.max = 100;
	assert_int_equal(store_scan_part_run(f->s, NULL, 0, &part,
					     collect_id, got),
			 CM_OK);
	assert_true(part.done);
	assert_int_equal(got->n, 7);
	assert_true(list_has(got, late->sig.id));
	assert_false(list_has(got, early->sig.id));
	free_all(recs, 6);
	free(early);
	free(late);
	free(got);
}

/* Enough records that the scan renews its read transaction. */
static void scan_many_records(void **state)
{
	fixture *f = *state;
	enum { N = 300 };
	test_record **recs = calloc(N, sizeof(*recs));
	uint8_t abc[3 * PROTO_KEY_LEN];
	const test_key *keys[3] = {&f->a, &f->b, &f->c};
	char title[16];

	assert_non_null(recs);
	for (size_t i = 0; i < N; i++) {
		snprintf(title, sizeof(title), "m %zu", i);
		recs[i] = make_clip(keys[i % 3], T0 + (i * 7919) % 101,
				    PRODUCT_KETTLE, NULL, title);
	}
	put_all(f->s, recs, N);
	memcpy(abc, f->c.pk, PROTO_KEY_LEN);
	memcpy(abc + PROTO_KEY_LEN, f->a.pk, PROTO_KEY_LEN);
	memcpy(abc + 2 * PROTO_KEY_LEN, f->b.pk, PROTO_KEY_LEN);

	assert_scan_order(f->s, NULL, 0, recs, N, NULL);
	assert_scan_order(f->s, abc, 3, recs, N, NULL);
	assert_scan_order(f->s, f->b.pk, 1, recs, N, f->b.pk);
	free_all(recs, N);
	free(recs);
}

/* --- Prefix resolution ------------------------------------------------ */

typedef struct prefix_candidate {
	uint32_t prefix;
	uint32_t index;
} prefix_candidate;

static int candidate_order(const void *a, const void *b)
{
	const prefix_candidate *x = a;
	const prefix_candidate *y = b;

	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Finds two retraction times whose record ids share their first 4 bytes,
 * that is 8 hex digits. By the birthday bound 2^18 candidates give such a
 * pair with probability above 99.9%; the inputs are fixed, so the result
 * is the same on every run.
 */
static void find_prefix_pair(const test_key *k, uint64_t *t1, uint64_t *t2)
{
	enum { N = 1 << 18 };
	prefix_candidate *c = calloc(N, sizeof(*c));
	proto_record *r = calloc(1, sizeof(*r));
	uint8_t body[CM_BODY_MAX];
	uint8_t id[PROTO_ID_LEN];
	size_t len;

	assert_non_null(c);
	assert_non_null(r);
	r->kind = PROTO_KIND_RETRACT;
	memcpy(r->author, k->pk, PROTO_KEY_LEN);
	for (uint32_t i = 0; i < N; i++) {
		r->created_ms = T0 + i;
		assert_int_equal(proto_body_encode(r, body, sizeof(body), &len),
				 CM_OK);
		proto_record_id(body, len, id);
		c[i].prefix = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 |
			      (uint32_t)id[2] << 8 | id[3];
		c[i].index = i;
	}
	qsort(c, N, sizeof(*c), candidate_order);
	for (size_t i = 1; i < N; i++) {
		if (c[i].prefix == c[i - 1].prefix) {
			*t1 = T0 + c[i - 1].index;
			*t2 = T0 + c[i].index;
			free(c);
			free(r);
			return;
		}
	}
	free(c);
	free(r);
	fail_msg("no two of %d record ids share 8 hex digits", N);
}

static void resolve_prefix(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "r");
	test_record *r1, *r2;
	uint8_t id[PROTO_ID_LEN];
	uint8_t target[PROTO_ID_LEN];
	char hex[2 * PROTO_ID_LEN + 1];
	char prefix[2 * PROTO_ID_LEN + 2];
	uint64_t t1 = 0, t2 = 0;

	assert_int_equal(put1(f->s, clip), CM_OK);
	cm_hex_encode(clip->sig.id, PROTO_ID_LEN, hex);

	for (size_t n = CM_ID_PREFIX_MIN; n <= 2 * PROTO_ID_LEN; n++) {
		cm_strlcpy(prefix, hex, n + 1);
		memset(id, 0, sizeof(id));
		assert_int_equal(store_resolve(f->s, prefix, id), CM_OK);
		assert_memory_equal(id, clip->sig.id, PROTO_ID_LEN);
	}
	for (size_t i = 0; i < 9; i++)
		prefix[i] = (char)(hex[i] >= 'a' ? hex[i] - 'a' + 'A' : hex[i]);
	prefix[9] = '\0';
	assert_int_equal(store_resolve(f->s, prefix, id), CM_OK);
	assert_memory_equal(id, clip->sig.id, PROTO_ID_LEN);

	cm_strlcpy(prefix, hex, CM_ID_PREFIX_MIN);
	assert_int_equal(store_resolve(f->s, prefix, id), CM_ERR_USAGE);
	assert_int_equal(store_resolve(f->s, "0123456g", id), CM_ERR_USAGE);
	snprintf(prefix, sizeof(prefix), "%s0", hex);
	assert_int_equal(store_resolve(f->s, prefix, id), CM_ERR_USAGE);
	cm_strlcpy(prefix, hex, 9);
	prefix[7] = prefix[7] == '0' ? '1' : '0';
	assert_int_equal(store_resolve(f->s, prefix, id), CM_ERR_NOT_FOUND);

	/* Two retractions (of an unseen all-zero target) whose ids share 8
	 * hex digits: that prefix is ambiguous, their full ids are not. */
	find_prefix_pair(&f->b, &t1, &t2);
	memset(target, 0, sizeof(target));
	r1 = make_retraction(&f->b, t1, target);
	r2 = make_retraction(&f->b, t2, target);
	assert_memory_equal(r1->sig.id, r2->sig.id, 4);
	assert_int_equal(put1(f->s, r1), CM_OK);
	assert_int_equal(put1(f->s, r2), CM_OK);
	cm_hex_encode(r1->sig.id, PROTO_ID_LEN, hex);
	cm_strlcpy(prefix, hex, CM_ID_PREFIX_MIN + 1);
	assert_int_equal(store_resolve(f->s, prefix, id), CM_ERR_AMBIGUOUS);
	assert_int_equal(store_resolve(f->s, hex, id), CM_OK);
	assert_memory_equal(id, r1->sig.id, PROTO_ID_LEN);
	cm_hex_encode(r2->sig.id, PROTO_ID_LEN, hex);
	assert_int_equal(store_resolve(f->s, hex, id), CM_OK);
	assert_memory_equal(id, r2->sig.id, PROTO_ID_LEN);
	free(clip);
	free(r1);
	free(r2);
}

/* --- Media ----------------------------------------------------------- */

static void media_chunks(void **state)
{
	fixture *f = *state;
	uint8_t *big = malloc(CM_CHUNK_SIZE + 1);
	uint8_t *buf = malloc(CM_CHUNK_SIZE);
	uint8_t small[100];
	uint8_t h_big[PROTO_HASH_LEN], h_small[PROTO_HASH_LEN];
	uint8_t hashes[2][PROTO_HASH_LEN];
	const uint8_t *data[2];
	size_t lens[2];
	store_counts counts;
	size_t len = 0;

	assert_non_null(big);
	assert_non_null(buf);
	for (size_t i = 0; i <= CM_CHUNK_SIZE; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	memset(small, 0x5a, sizeof(small));
	proto_chunk_hash(big, CM_CHUNK_SIZE, h_big);
	proto_chunk_hash(small, sizeof(small), h_small);

	assert_false(store_chunk_has(f->s, h_big));
	assert_int_equal(store_chunk_get(f->s, h_big, buf, CM_CHUNK_SIZE,
					 &len),
			 CM_ERR_NOT_FOUND);
	assert_int_equal(store_chunk_put(f->s, h_big, big, CM_CHUNK_SIZE),
			 CM_OK);
	assert_true(store_chunk_has(f->s, h_big));
	assert_int_equal(store_chunk_get(f->s, h_big, buf, CM_CHUNK_SIZE,
					 &len),
			 CM_OK);
	assert_int_equal(len, CM_CHUNK_SIZE);
	assert_memory_equal(buf, big, CM_CHUNK_SIZE);
	assert_int_equal(store_chunk_get(f->s, h_big, buf, 10, &len),
			 CM_ERR_TOO_LONG);
	assert_int_equal(len, CM_CHUNK_SIZE);

	/* Stored once, however often it is put. */
	assert_int_equal(store_chunk_put(f->s, h_big, big, CM_CHUNK_SIZE),
			 CM_OK);
	memcpy(hashes[0], h_small, PROTO_HASH_LEN);
	memcpy(hashes[1], h_big, PROTO_HASH_LEN);
	data[0] = small;
	data[1] = big;
	lens[0] = sizeof(small);
	lens[1] = CM_CHUNK_SIZE;
	assert_int_equal(store_chunks_put(f->s, 2,
					  (const uint8_t(*)[PROTO_HASH_LEN])
						  hashes,
					  data, lens),
			 CM_OK);
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.chunks, 2);
	assert_int_equal(counts.chunk_bytes, CM_CHUNK_SIZE + sizeof(small));

	assert_int_equal(store_chunk_put(f->s, h_small, small, 0),
			 CM_ERR_USAGE);
	assert_int_equal(store_chunk_put(f->s, h_big, big, CM_CHUNK_SIZE + 1),
			 CM_ERR_USAGE);
	free(big);
	free(buf);
}

static void media_manifest(void **state)
{
	fixture *f = *state;
	const uint64_t size = CM_CHUNK_SIZE + 100;
	uint8_t *media = malloc(size);
	uint8_t chunks[2][PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN], found[PROTO_HASH_LEN];
	uint8_t(*got)[PROTO_HASH_LEN] = NULL;
	char hex[2 * PROTO_HASH_LEN + 1];
	char prefix[16];
	uint64_t got_size = 0;
	size_t n = 0;

	assert_non_null(media);
	for (size_t i = 0; i < size; i++)
		media[i] = (uint8_t)(i % 251);
	proto_chunk_hash(media, CM_CHUNK_SIZE, chunks[0]);
	proto_chunk_hash(media + CM_CHUNK_SIZE, 100, chunks[1]);
	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])chunks, 2, size,
			 root);

	assert_false(store_media_complete(f->s, root));
	assert_int_equal(store_manifest_get(f->s, root, &got_size, &got, &n),
			 CM_ERR_NOT_FOUND);
	assert_int_equal(store_manifest_put(f->s, root, size + 1,
					    (const uint8_t(*)[PROTO_HASH_LEN])
						    chunks,
					    2),
			 CM_ERR_BAD_MANIFEST);
	assert_int_equal(store_manifest_put(f->s, root, size,
					    (const uint8_t(*)[PROTO_HASH_LEN])
						    chunks,
					    2),
			 CM_OK);
	assert_false(store_media_complete(f->s, root));
	assert_int_equal(store_chunk_put(f->s, chunks[0], media,
					 CM_CHUNK_SIZE),
			 CM_OK);
	assert_false(store_media_complete(f->s, root));
	assert_int_equal(store_chunk_put(f->s, chunks[1],
					 media + CM_CHUNK_SIZE, 100),
			 CM_OK);
	assert_true(store_media_complete(f->s, root));

	assert_int_equal(store_manifest_get(f->s, root, &got_size, &got, &n),
			 CM_OK);
	assert_int_equal(got_size, size);
	assert_int_equal(n, 2);
	assert_memory_equal(got, chunks, sizeof(chunks));
	free(got);

	cm_hex_encode(root, PROTO_HASH_LEN, hex);
	cm_strlcpy(prefix, hex, CM_ID_PREFIX_MIN + 1);
	assert_int_equal(store_media_resolve(f->s, prefix, found), CM_OK);
	assert_memory_equal(found, root, PROTO_HASH_LEN);
	assert_int_equal(store_media_resolve(f->s, hex, found), CM_OK);
	prefix[0] = prefix[0] == '0' ? '1' : '0';
	assert_int_equal(store_media_resolve(f->s, prefix, found),
			 CM_ERR_NOT_FOUND);
	assert_int_equal(store_media_resolve(f->s, "abc", found),
			 CM_ERR_USAGE);
	free(media);
}

/* A fetched chunk is stored only while a stored manifest lists it, so a
 * fetch that outlives the eviction of its media leaves no chunk behind. */
static void media_fetched_unlisted(void **state)
{
	fixture *f = *state;
	const uint64_t size = 2 * CM_CHUNK_SIZE;
	uint8_t *media = malloc(size);
	uint8_t chunks[2][PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	uint8_t stray[PROTO_HASH_LEN], hashes[2][PROTO_HASH_LEN];
	uint8_t other[64];
	const uint8_t *data[2];
	size_t lens[2] = {CM_CHUNK_SIZE, sizeof(other)};
	bool listed[2] = {false, true};
	uint64_t evicted = 0, bytes = 0;
	store_counts counts;

	assert_non_null(media);
	for (size_t i = 0; i < size; i++)
		media[i] = (uint8_t)(i % 253);
	memset(other, 0x33, sizeof(other));
	proto_chunk_hash(media, CM_CHUNK_SIZE, chunks[0]);
	proto_chunk_hash(media + CM_CHUNK_SIZE, CM_CHUNK_SIZE, chunks[1]);
	proto_chunk_hash(other, sizeof(other), stray);
	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])chunks, 2, size,
			 root);
	assert_int_equal(store_media_index_ensure(f->s), CM_OK);
	assert_int_equal(store_manifest_put(f->s, root, size,
					    (const uint8_t(*)[PROTO_HASH_LEN])
						    chunks,
					    2),
			 CM_OK);
	assert_true(store_manifest_has(f->s, root));

	/* The first chunk is listed, the stray one is not. */
	memcpy(hashes[0], chunks[0], PROTO_HASH_LEN);
	memcpy(hashes[1], stray, PROTO_HASH_LEN);
	data[0] = media;
	data[1] = other;
	assert_int_equal(store_fetched_chunks_put(
				 f->s, 2,
				 (const uint8_t(*)[PROTO_HASH_LEN])hashes,
				 data, lens, listed),
			 CM_OK);
	assert_true(listed[0]);
	assert_false(listed[1]);
	assert_true(store_chunk_has(f->s, chunks[0]));
	assert_false(store_chunk_has(f->s, stray));

	/* No clip lists the media, so a budget of 0 evicts it. */
	assert_int_equal(store_media_evict(f->s, 0, NULL, 0, 0, &evicted,
					   &bytes),
			 CM_OK);
	assert_int_equal(evicted, 1);
	assert_int_equal(bytes, CM_CHUNK_SIZE);
	assert_false(store_manifest_has(f->s, root));

	/* The rest of the fetch arrives after the eviction. */
	data[0] = media + CM_CHUNK_SIZE;
	listed[0] = true;
	assert_int_equal(store_fetched_chunks_put(
				 f->s, 1,
				 (const uint8_t(*)[PROTO_HASH_LEN])chunks + 1,
				 data, lens, listed),
			 CM_OK);
	assert_false(listed[0]);
	assert_false(store_chunk_has(f->s, chunks[1]));
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.chunks, 0);
	assert_int_equal(counts.chunk_bytes, 0);
	free(media);
}

static uint64_t media_users(store *s, const uint8_t root[PROTO_HASH_LEN])
{
	uint64_t users = 0;

	assert_int_equal(store_media_users(s, root, &users), CM_OK);
	return users;
}

/* Stores one chunk of media and its manifest; hash receives the chunk's
 * hash and root the media root. */
static void media_store_one_chunk(store *s, uint8_t hash[PROTO_HASH_LEN],
				  uint8_t root[PROTO_HASH_LEN])
{
	uint8_t chunk[64];

	memset(chunk, 7, sizeof(chunk));
	proto_chunk_hash(chunk, sizeof(chunk), hash);
	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])hash, 1,
			 sizeof(chunk), root);
	assert_int_equal(store_media_index_ensure(s), CM_OK);
	assert_int_equal(store_chunk_put(s, hash, chunk, sizeof(chunk)), CM_OK);
	assert_int_equal(store_manifest_put(s, root, sizeof(chunk),
					    (const uint8_t(*)[PROTO_HASH_LEN])
						    hash,
					    1),
			 CM_OK);
}

/* Media reference entries of new clips are written late, in batches:
 * clips still waiting count as users, and removing a clip first writes
 * the waiting entries, so media that another clip lists is kept. */
static void media_refs_deferred(void **state)
{
	fixture *f = *state;
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	test_record *one, *two, *drop_one, *drop_two;

	media_store_one_chunk(f->s, hash, root);
	one = make_clip_of(&f->a, T0, PRODUCT_KETTLE, NULL, "first look",
			   root);
	two = make_clip_of(&f->b, T0 + 1, PRODUCT_KETTLE, NULL, "second look",
			   root);
	drop_one = make_retraction(&f->a, T0 + 2, one->sig.id);
	drop_two = make_retraction(&f->b, T0 + 3, two->sig.id);

	assert_int_equal(put1(f->s, one), CM_OK);
	assert_int_equal(put1(f->s, two), CM_OK);
	assert_int_equal(media_users(f->s, root), 2);

	/* The second clip's entry was still waiting when the first clip
	 * was retracted. */
	assert_int_equal(put1(f->s, drop_one), CM_OK);
	assert_int_equal(media_users(f->s, root), 1);
	assert_true(store_manifest_has(f->s, root));
	assert_true(store_chunk_has(f->s, hash));

	store_close(&f->s);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_int_equal(media_users(f->s, root), 1);

	assert_int_equal(put1(f->s, drop_two), CM_OK);
	assert_int_equal(media_users(f->s, root), 0);
	assert_false(store_manifest_has(f->s, root));
	assert_false(store_chunk_has(f->s, hash));
	free(one);
	free(two);
	free(drop_one);
	free(drop_two);
}

static void plant_value(const char *dir, const char *db, const void *key,
			size_t key_len, const void *value, size_t value_len);


/*
 * Stores a clip listing root, plants `value` as "mref_seq" while the store
 * is closed, then stores a second clip listing root and retracts it: the
 * first clip still lists the media, so it must be kept.
 */
static void media_refs_after_bad_seq(fixture *f, const void *value,
				     size_t value_len)
{
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	test_record *one, *two, *drop_two;

	media_store_one_chunk(f->s, hash, root);
	one = make_clip_of(&f->a, T0, PRODUCT_KETTLE, NULL, "first look",
			   root);
	two = make_clip_of(&f->b, T0 + 1, PRODUCT_KETTLE, NULL, "second look",
			   root);
	drop_two = make_retraction(&f->b, T0 + 2, two->sig.id);
	assert_int_equal(put1(f->s, one), CM_OK);

	store_close(&f->s);
	plant_value(f->dir, "meta", "mref_seq", strlen("mref_seq"), value,
		    value_len);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);

	assert_int_equal(put1(f->s, two), CM_OK);
	assert_int_equal(media_users(f->s, root), 2);
	assert_int_equal(put1(f->s, drop_two), CM_OK);
	assert_int_equal(media_users(f->s, root), 1);
	assert_true(store_manifest_has(f->s, root));
	free(one);
	free(two);
	free(drop_two);
}

/* A "mref_seq" above the log head is set back on open: left there, the
 * entries of the clips accepted up to it would never be written. */
static void media_refs_seq_above_head(void **state)
{
	const uint8_t above[8] = {0, 0, 0, 0, 0, 0, 0x03, 0xe8};

	media_refs_after_bad_seq(*state, above, sizeof(above));
}

/* A lost "mref_seq" is set below the log head on open, so that the
 * entries still waiting are written. */
static void media_refs_seq_missing(void **state)
{
	media_refs_after_bad_seq(*state, NULL, 0);
}

/* A "mref_seq" of the wrong size is set back on open rather than failing
 * every later write of records. */
static void media_refs_seq_damaged(void **state)
{
	const uint8_t damaged[3] = {1, 2, 3};

	media_refs_after_bad_seq(*state, damaged, sizeof(damaged));
}

/* Counts the users of a root whose "mref" keys sort after every other
 * meta key: past the last key, store_seek leaves the sought key in place,
 * which must end the count rather than match the prefix again. */
static void media_users_last_root(void **state)
{
	fixture *f = *state;
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	uint8_t last[PROTO_HASH_LEN];
	test_record *clip, *other, *drop_other;

	media_store_one_chunk(f->s, hash, root);
	memset(last, 0xff, sizeof(last));
	clip = make_clip_of(&f->a, T0, PRODUCT_KETTLE, NULL, "last root",
			    last);
	other = make_clip_of(&f->a, T0 + 1, PRODUCT_KETTLE, NULL, "other",
			     root);
	drop_other = make_retraction(&f->a, T0 + 2, other->sig.id);
	assert_int_equal(media_users(f->s, last), 0);
	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(media_users(f->s, last), 1);

	/* The retraction writes the waiting entry of clip, which is then
	 * the last meta key. */
	assert_int_equal(put1(f->s, other), CM_OK);
	assert_int_equal(put1(f->s, drop_other), CM_OK);
	assert_int_equal(media_users(f->s, last), 1);
	free(clip);
	free(other);
	free(drop_other);
}

/* Returns the CPU time this thread has used, in ns. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Stores n clips by key k, each listing a media root of its own, in
 * batches of CM_WIRE_BATCH_MAX. */
static void put_many_clips(store *s, const test_key *k, size_t n)
{
	proto_signed *sigs = calloc(CM_WIRE_BATCH_MAX, sizeof(*sigs));
	test_record *batch[CM_WIRE_BATCH_MAX];
	cm_err results[CM_WIRE_BATCH_MAX];
	char title[32];

	assert_non_null(sigs);
	for (size_t done = 0; done < n;) {
		size_t count = n - done < CM_WIRE_BATCH_MAX ? n - done
							     : CM_WIRE_BATCH_MAX;

		for (size_t i = 0; i < count; i++) {
			snprintf(title, sizeof(title), "clip %zu", done + i);
			batch[i] = make_clip(k, T0 + done + i, PRODUCT_KETTLE,
					     NULL, title);
			sigs[i] = batch[i]->sig;
		}
		assert_int_equal(store_put_batch(s, sigs, count, results),
				 CM_OK);
		for (size_t i = 0; i < count; i++)
			assert_int_equal(results[i], CM_OK);
		free_all(batch, count);
		done += count;
	}
	free(sigs);
}

/*
 * Counting the users of media decodes each clip whose media reference
 * entry waits once, not once per count: the HTTP server counts them for
 * every 404, which anyone can request. 100 later counts must cost less
 * CPU than the first; decoding every time costs about 100 times more.
 */
static void media_users_decodes_waiting_once(void **state)
{
	fixture *f = *state;
	uint8_t unknown[PROTO_HASH_LEN], first[PROTO_HASH_LEN];
	uint64_t start, first_ns, later_ns;
	test_record *again;

	memset(unknown, 0x5a, sizeof(unknown));
	crypto_generichash(first, sizeof(first), (const uint8_t *)"clip 0",
			   strlen("clip 0"), NULL, 0);
	put_many_clips(f->s, &f->a, 4000);

	start = thread_cpu_ns();
	assert_int_equal(media_users(f->s, unknown), 0);
	first_ns = thread_cpu_ns() - start;
	start = thread_cpu_ns();
	for (int i = 0; i < 100; i++)
		assert_int_equal(media_users(f->s, unknown), 0);
	later_ns = thread_cpu_ns() - start;
	if (later_ns >= first_ns)
		fail_msg("100 counts took %llu us of CPU, the first alone "
			 "%llu us", (unsigned long long)later_ns / 1000,
			 (unsigned long long)first_ns / 1000);

	/* A clip accepted after the last count is counted too. */
	assert_int_equal(media_users(f->s, first), 1);
	again = make_clip_of(&f->b, T0, PRODUCT_KETTLE, NULL, "same media",
			     first);
	assert_int_equal(put1(f->s, again), CM_OK);
	assert_int_equal(media_users(f->s, first), 2);
	free(again);
}

/* Reads the big-endian meta value of key straight from the closed store
 * in dir. */
static uint64_t meta_read(const char *dir, const char *key)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {strlen(key), (void *)key}, v;
	uint64_t value = 0;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_int_equal(v.mv_size, 8);
	for (size_t i = 0; i < 8; i++)
		value = value << 8 | ((const uint8_t *)v.mv_data)[i];
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return value;
}

/* Over the budget with nothing to evict, the media reference entries
 * that the check wrote are kept, so the next check, a second later in a
 * node, does not decode the same waiting clips again. */
static void media_evict_none_keeps_entries(void **state)
{
	fixture *f = *state;
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	uint64_t evicted = 1, bytes = 1;
	test_record *clip;

	media_store_one_chunk(f->s, hash, root);
	clip = make_clip_of(&f->a, T0, PRODUCT_KETTLE, NULL, "kept look",
			    root);
	assert_int_equal(put1(f->s, clip), CM_OK);

	assert_int_equal(store_media_evict(f->s, 0, f->a.pk, 1, 0, &evicted,
					   &bytes),
			 CM_OK);
	assert_int_equal(evicted, 0);
	assert_int_equal(bytes, 0);
	assert_true(store_manifest_has(f->s, root));

	store_close(&f->s);
	assert_int_equal(meta_read(f->dir, "mref_seq"), 1);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_int_equal(media_users(f->s, root), 1);
	free(clip);
}

/* Returns this process's resident file-backed memory in KiB, from
 * RssFile in /proc/self/status. */
static long rss_file_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssFile: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Cold reads return the stored bytes, big and small, and leave no page of
 * the store resident even when they skip chunks, as a peer that fetches
 * from several seeders requests them. */
static void media_cold_read(void **state)
{
	enum { CHUNKS = 96 };
	fixture *f = *state;
	uint8_t (*hashes)[PROTO_HASH_LEN] = malloc(CHUNKS * PROTO_HASH_LEN);
	uint8_t *chunk = malloc(CM_CHUNK_SIZE);
	uint8_t *buf = malloc(CM_CHUNK_SIZE);
	uint8_t small[300];
	uint8_t h_small[PROTO_HASH_LEN];
	long before;
	size_t len = 0;

	assert_non_null(hashes);
	assert_non_null(chunk);
	assert_non_null(buf);
	for (size_t i = 0; i < CHUNKS; i++) {
		memset(chunk, (int)i, CM_CHUNK_SIZE);
		chunk[i] = 0xee;
		proto_chunk_hash(chunk, CM_CHUNK_SIZE, hashes[i]);
		assert_int_equal(store_chunk_put(f->s, hashes[i], chunk,
						 CM_CHUNK_SIZE),
				 CM_OK);
	}
	memset(small, 0x44, sizeof(small));
	proto_chunk_hash(small, sizeof(small), h_small);
	assert_int_equal(store_chunk_put(f->s, h_small, small, sizeof(small)),
			 CM_OK);

	/* A new handle has nothing of the store mapped in yet. */
	store_close(&f->s);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	before = rss_file_kib();
	assert_true(before >= 0);
	for (size_t i = 0; i < CHUNKS; i += 3) {
		memset(chunk, (int)i, CM_CHUNK_SIZE);
		chunk[i] = 0xee;
		assert_int_equal(store_chunk_get_cold(f->s, hashes[i], buf,
						      CM_CHUNK_SIZE, &len),
				 CM_OK);
		assert_int_equal(len, CM_CHUNK_SIZE);
		assert_memory_equal(buf, chunk, CM_CHUNK_SIZE);
	}
	/* 32 chunks are 8 MiB; the kernel maps up to 64 KiB around each
	 * page fault, so reads through the map left megabytes here. */
	assert_in_range(rss_file_kib() - before, 0, 512);

	assert_int_equal(store_chunk_get_cold(f->s, h_small, buf,
					      CM_CHUNK_SIZE, &len),
			 CM_OK);
	assert_int_equal(len, sizeof(small));
	assert_memory_equal(buf, small, sizeof(small));
	assert_int_equal(store_chunk_get_cold(f->s, hashes[0], buf, 10, &len),
			 CM_ERR_TOO_LONG);
	free(hashes);
	free(chunk);
	free(buf);
}

/* Returns how many pages of the file at `path` are in the page cache,
 * and their total in *pages. */
static size_t file_pages_cached(const char *path, size_t *pages)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *vec;
	size_t cached = 0;
	struct stat st;
	void *map;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_true(page > 0);
	assert_int_equal(fstat(fd, &st), 0);
	*pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	vec = malloc(*pages);
	assert_non_null(vec);
	assert_int_equal(mincore(map, (size_t)st.st_size, vec), 0);
	for (size_t i = 0; i < *pages; i++)
		cached += vec[i] & 1;
	free(vec);
	munmap(map, (size_t)st.st_size);
	close(fd);
	return cached;
}

/* Fetched chunks stored in batches leave the page cache after their
 * commit and read back unchanged. On tmpfs, whose pages are the files
 * themselves, only the reads are checked. */
static void media_fetched_leave_page_cache(void **state)
{
	enum { CHUNKS = 64, BATCH = 16 };
	fixture *f = *state;
	uint64_t size = (uint64_t)CHUNKS * CM_CHUNK_SIZE;
	uint8_t (*hashes)[PROTO_HASH_LEN] = malloc(CHUNKS * PROTO_HASH_LEN);
	uint8_t *media = malloc(size);
	uint8_t *buf = malloc(CM_CHUNK_SIZE);
	uint8_t root[PROTO_HASH_LEN];
	const uint8_t *data[BATCH];
	size_t lens[BATCH], len = 0, pages = 0, cached;
	bool listed[BATCH];
	char path[128];
	struct statfs fs;

	assert_non_null(hashes);
	assert_non_null(media);
	assert_non_null(buf);
	for (uint64_t i = 0; i < size; i++)
		media[i] = (uint8_t)((i * 7) % 251);
	for (size_t i = 0; i < CHUNKS; i++)
		proto_chunk_hash(media + i * CM_CHUNK_SIZE, CM_CHUNK_SIZE,
				 hashes[i]);
	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])hashes, CHUNKS,
			 size, root);
	assert_int_equal(store_media_index_ensure(f->s), CM_OK);
	assert_int_equal(store_manifest_put(f->s, root, size,
					    (const uint8_t(*)[PROTO_HASH_LEN])
						    hashes,
					    CHUNKS),
			 CM_OK);

	for (size_t first = 0; first < CHUNKS; first += BATCH) {
		for (size_t i = 0; i < BATCH; i++) {
			data[i] = media + (first + i) * CM_CHUNK_SIZE;
			lens[i] = CM_CHUNK_SIZE;
		}
		assert_int_equal(store_fetched_chunks_put(
					 f->s, BATCH,
					 (const uint8_t(*)[PROTO_HASH_LEN])
						 hashes + first,
					 data, lens, listed),
				 CM_OK);
		for (size_t i = 0; i < BATCH; i++)
			assert_true(listed[i]);
	}

	/* 64 chunks fill 4,160 pages. What stays cached is mostly B-tree
	 * pages and the pages at the edges of each commit's range. */
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	cached = file_pages_cached(path, &pages);
	assert_int_equal(statfs(f->dir, &fs), 0);
	if (fs.f_type != 0x01021994) /* TMPFS_MAGIC */
		assert_in_range(cached, 0, pages / 4);

	for (size_t i = 0; i < CHUNKS; i++) {
		assert_int_equal(store_chunk_get(f->s, hashes[i], buf,
						 CM_CHUNK_SIZE, &len),
				 CM_OK);
		assert_int_equal(len, CM_CHUNK_SIZE);
		assert_memory_equal(buf, media + i * CM_CHUNK_SIZE,
				    CM_CHUNK_SIZE);
	}
	assert_true(store_media_complete(f->s, root));
	free(hashes);
	free(media);
	free(buf);
}

/* Empty media has no chunks: its manifest alone makes it complete. */
static void media_empty(void **state)
{
	fixture *f = *state;
	uint8_t root[PROTO_HASH_LEN];
	uint8_t(*got)[PROTO_HASH_LEN] = NULL;
	uint64_t got_size = 1;
	size_t n = 1;

	proto_media_root(NULL, 0, 0, root);
	assert_int_equal(store_manifest_put(f->s, root, 0, NULL, 0), CM_OK);
	assert_true(store_media_complete(f->s, root));
	assert_int_equal(store_manifest_get(f->s, root, &got_size, &got, &n),
			 CM_OK);
	assert_int_equal(got_size, 0);
	assert_int_equal(n, 0);
	assert_null(got);
}

/* --- Follows, peers and counters ------------------------------------- */

static void follows(void **state)
{
	fixture *f = *state;
	const uint8_t *low, *high;
	uint8_t *keys = (uint8_t *)"x";
	size_t n = 1;

	assert_int_equal(store_following(f->s, &keys, &n), CM_OK);
	assert_null(keys);
	assert_int_equal(n, 0);

	assert_int_equal(store_follow(f->s, f->b.pk), CM_OK);
	assert_int_equal(store_follow(f->s, f->a.pk), CM_OK);
	assert_int_equal(store_follow(f->s, f->a.pk), CM_OK);
	assert_int_equal(store_following(f->s, &keys, &n), CM_OK);
	assert_int_equal(n, 2);
	low = memcmp(f->a.pk, f->b.pk, PROTO_KEY_LEN) < 0 ? f->a.pk : f->b.pk;
	high = low == f->a.pk ? f->b.pk : f->a.pk;
	assert_memory_equal(keys, low, PROTO_KEY_LEN);
	assert_memory_equal(keys + PROTO_KEY_LEN, high, PROTO_KEY_LEN);
	free(keys);

	assert_int_equal(store_unfollow(f->s, f->a.pk), CM_OK);
	assert_int_equal(store_unfollow(f->s, f->a.pk), CM_ERR_NOT_FOUND);
	assert_int_equal(store_following(f->s, &keys, &n), CM_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(keys, f->b.pk, PROTO_KEY_LEN);
	free(keys);
}

typedef struct text_list {
	char items[8][STORE_TEXT_KEY_MAX + 1];
	uint64_t values[8];
	size_t n;
	size_t stop_after;
} text_list;

static int collect_peer(void *ctx, const char *addr)
{
	text_list *l = ctx;

	assert_true(l->n < 8);
	cm_strlcpy(l->items[l->n++], addr, sizeof(l->items[0]));
	return l->stop_after && l->n == l->stop_after;
}

static int collect_counter(void *ctx, const char *name, uint64_t value)
{
	text_list *l = ctx;

	assert_true(l->n < 8);
	l->values[l->n] = value;
	cm_strlcpy(l->items[l->n++], name, sizeof(l->items[0]));
	return 0;
}

static void peers(void **state)
{
	fixture *f = *state;
	char longest[STORE_TEXT_KEY_MAX + 2];
	text_list *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	assert_int_equal(store_peer_add(f->s, "tcp://127.0.0.1:7702/bb"),
			 CM_OK);
	assert_int_equal(store_peer_add(f->s, "tcp://127.0.0.1:7701/aa"),
			 CM_OK);
	assert_int_equal(store_peer_add(f->s, "tcp://127.0.0.1:7702/bb"),
			 CM_OK);
	assert_int_equal(store_peer_list(f->s, collect_peer, l), CM_OK);
	assert_int_equal(l->n, 2);
	assert_string_equal(l->items[0], "tcp://127.0.0.1:7701/aa");
	assert_string_equal(l->items[1], "tcp://127.0.0.1:7702/bb");

	l->n = 0;
	l->stop_after = 1;
	assert_int_equal(store_peer_list(f->s, collect_peer, l), CM_OK);
	assert_int_equal(l->n, 1);

	assert_int_equal(store_peer_add(f->s, ""), CM_ERR_USAGE);
	memset(longest, 'x', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	assert_int_equal(store_peer_add(f->s, longest), CM_ERR_USAGE);
	longest[STORE_TEXT_KEY_MAX] = '\0';
	assert_int_equal(store_peer_add(f->s, longest), CM_OK);
	l->n = 0;
	l->stop_after = 0;
	assert_int_equal(store_peer_list(f->s, collect_peer, l), CM_OK);
	assert_int_equal(l->n, 3);
	assert_string_equal(l->items[2], longest);
	free(l);
}

/* Known peers collected by a walk. */
typedef struct known_list {
	store_known_peer items[4];
	size_t n;
} known_list;

static int collect_known(void *ctx, const store_known_peer *p)
{
	known_list *l = ctx;

	assert_true(l->n < 4);
	l->items[l->n++] = *p;
	return 0;
}

/* Writes key -> value into a named database with LMDB itself, as a
 * value of a layout the store never writes; a NULL value deletes key. */
static void plant_value(const char *dir, const char *db, const void *key,
			size_t key_len, const void *value, size_t value_len)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {key_len, (void *)key}, v = {value_len, (void *)value};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	if (value)
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	else
		assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void known_peers_kept(void **state)
{
	fixture *f = *state;
	store_known_peer p = {0};
	known_list l = {0};
	uint8_t bad_key[PROTO_KEY_LEN];
	const uint8_t bad_value[] = {2, 1, 0, 0, 0, 0, 0, 0, 0, 0,
				     0, 0, 0, 0, 'x', ':', '1'};
	size_t skipped = 9;

	memset(p.key, 0xbb, sizeof(p.key));
	cm_strlcpy(p.addr, "[2001:db8::1]:7701", sizeof(p.addr));
	p.origin = STORE_KNOWN_LEARNED;
	p.failures = 0x01020304;
	p.last_seen_ms = 1796399220000ULL;
	assert_int_equal(store_known_put(f->s, &p), CM_OK);
	memset(p.key, 0xaa, sizeof(p.key));
	cm_strlcpy(p.addr, "node1.example.org:7701", sizeof(p.addr));
	p.origin = STORE_KNOWN_CONFIGURED;
	p.failures = 0;
	assert_int_equal(store_known_put(f->s, &p), CM_OK);

	assert_int_equal(store_known_list(f->s, collect_known, &l, &skipped),
			 CM_OK);
	assert_int_equal(skipped, 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.items[0].key[0], 0xaa);
	assert_string_equal(l.items[0].addr, "node1.example.org:7701");
	assert_int_equal(l.items[0].origin, STORE_KNOWN_CONFIGURED);
	assert_int_equal(l.items[1].key[0], 0xbb);
	assert_string_equal(l.items[1].addr, "[2001:db8::1]:7701");
	assert_int_equal(l.items[1].origin, STORE_KNOWN_LEARNED);
	assert_int_equal(l.items[1].failures, 0x01020304);
	assert_int_equal(l.items[1].last_seen_ms, 1796399220000ULL);

	/* A put replaces; a delete removes; deleting twice is fine. */
	p.failures = 7;
	assert_int_equal(store_known_put(f->s, &p), CM_OK);
	memset(bad_key, 0xbb, sizeof(bad_key));
	assert_int_equal(store_known_del(f->s, bad_key), CM_OK);
	assert_int_equal(store_known_del(f->s, bad_key), CM_OK);
	l.n = 0;
	assert_int_equal(store_known_list(f->s, collect_known, &l, &skipped),
			 CM_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.items[0].failures, 7);

	/* A value of another version is skipped and counted. */
	memset(bad_key, 0xcc, sizeof(bad_key));
	store_close(&f->s);
	plant_value(f->dir, "known_peers", bad_key, sizeof(bad_key),
		    bad_value, sizeof(bad_value));
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	l.n = 0;
	assert_int_equal(store_known_list(f->s, collect_known, &l, &skipped),
			 CM_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(skipped, 1);
}

static void known_peers_invalid(void **state)
{
	fixture *f = *state;
	store_known_peer p = {0};

	memset(p.key, 0xbb, sizeof(p.key));
	p.origin = STORE_KNOWN_LEARNED;
	assert_int_equal(store_known_put(f->s, &p), CM_ERR_USAGE);
	memset(p.addr, 'x', STORE_KNOWN_ADDR_MAX);
	p.addr[STORE_KNOWN_ADDR_MAX] = '\0';
	assert_int_equal(store_known_put(f->s, &p), CM_OK);
	p.origin = (store_known_origin)3;
	assert_int_equal(store_known_put(f->s, &p), CM_ERR_USAGE);
}

static void counters(void **state)
{
	fixture *f = *state;
	text_list *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	assert_int_equal(store_counter_add(f->s, "rejected.bad_utf8", 2),
			 CM_OK);
	assert_int_equal(store_counter_add(f->s, "rejected.bad_utf8", 3),
			 CM_OK);
	assert_int_equal(store_counter_add(f->s, "accepted", 1), CM_OK);
	assert_int_equal(store_counter_add(f->s, "max", UINT64_MAX - 1),
			 CM_OK);
	assert_int_equal(store_counter_add(f->s, "max", 5), CM_OK);
	assert_int_equal(store_counter_add(f->s, "", 1), CM_ERR_USAGE);

	assert_int_equal(store_counter_list(f->s, collect_counter, l), CM_OK);
	assert_int_equal(l->n, 3);
	assert_string_equal(l->items[0], "accepted");
	assert_int_equal(l->values[0], 1);
	assert_string_equal(l->items[1], "max");
	assert_true(l->values[1] == UINT64_MAX);
	assert_string_equal(l->items[2], "rejected.bad_utf8");
	assert_int_equal(l->values[2], 5);
	free(l);
}

/* --- Durability and sharing ------------------------------------------ */

static void reopen_keeps_data(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "keep");
	test_record *retracted_clip = make_clip(&f->a, T0 + 1, PRODUCT_KETTLE,
						NULL, "g");
	test_record *retr = make_retraction(&f->a, T0 + 2,
					    retracted_clip->sig.id);
	test_record *profile = make_profile(&f->b, T0, "Bea");
	uint8_t chunk[64], hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	uint8_t (*list)[PROTO_HASH_LEN] = NULL;
	store_counts before, after;
	text_list *l = calloc(1, sizeof(*l));
	uint8_t *keys = NULL;
	uint64_t size;
	size_t n;

	assert_non_null(l);
	memset(chunk, 7, sizeof(chunk));
	proto_chunk_hash(chunk, sizeof(chunk), hash);
	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])hash, 1,
			 sizeof(chunk), root);
	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(put1(f->s, retr), CM_OK);
	assert_int_equal(put1(f->s, profile), CM_OK);
	assert_int_equal(store_chunk_put(f->s, hash, chunk, sizeof(chunk)),
			 CM_OK);
	assert_int_equal(store_manifest_put(f->s, root, sizeof(chunk),
					    (const uint8_t(*)[PROTO_HASH_LEN])
						    hash,
					    1),
			 CM_OK);
	assert_int_equal(store_follow(f->s, f->b.pk), CM_OK);
	assert_int_equal(store_peer_add(f->s, "tcp://127.0.0.1:7701/aa"),
			 CM_OK);
	assert_int_equal(store_counter_add(f->s, "accepted", 3), CM_OK);
	assert_int_equal(store_get_counts(f->s, &before), CM_OK);

	store_close(&f->s);
	assert_null(f->s);
	store_close(&f->s);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);

	assert_true(store_has(f->s, clip->sig.id));
	assert_true(store_has(f->s, retr->sig.id));
	assert_int_equal(put1(f->s, retracted_clip), CM_ERR_RETRACTED);
	assert_profile_is(f->s, &f->b, profile);
	assert_true(store_media_complete(f->s, root));
	assert_int_equal(store_manifest_get(f->s, root, &size, &list, &n),
			 CM_OK);
	assert_int_equal(n, 1);
	free(list);
	assert_int_equal(store_following(f->s, &keys, &n), CM_OK);
	assert_int_equal(n, 1);
	free(keys);
	assert_int_equal(store_peer_list(f->s, collect_peer, l), CM_OK);
	assert_int_equal(l->n, 1);
	l->n = 0;
	assert_int_equal(store_counter_list(f->s, collect_counter, l), CM_OK);
	assert_int_equal(l->n, 1);
	assert_int_equal(l->values[0], 3);
	assert_int_equal(store_get_counts(f->s, &after), CM_OK);
	assert_memory_equal(&before, &after, sizeof(before));
	free(l);
	free(clip);
	free(retracted_clip);
	free(retr);
	free(profile);
}

static void backup_copy(void **state)
{
	fixture *f = *state;
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "bk");
	char dir[64];
	store *copy = NULL;

	make_temp_dir(dir);
	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(store_backup(f->s, dir), CM_OK);
	/* A folder that contains a store already is not overwritten. */
	assert_int_not_equal(store_backup(f->s, dir), CM_OK);
	assert_int_equal(store_open(dir, &copy), CM_OK);
	assert_true(store_has(copy, clip->sig.id));
	assert_int_equal(put1(copy, clip), CM_ERR_DUPLICATE);
	store_close(&copy);
	remove_dir(dir);
	free(clip);
}

static void count_problem(void *ctx, bool note, const char *message)
{
	size_t *problems = ctx;

	assert_non_null(message);
	if (!note)
		(*problems)++;
}

/* Deletes one key from a named database with LMDB itself, as damage that
 * the store's own functions never cause. */
static void damage_store(const char *dir, const char *db, const void *key,
			 size_t key_len)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {key_len, (void *)key};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void check_finds_damage(void **state)
{
	fixture *f = *state;
	const char *const tags[] = {"steel", NULL};
	test_record *clip = make_clip(&f->a, T0, PRODUCT_KETTLE, tags, "ck");
	test_record *profile = make_profile(&f->b, T0, "Bea");
	uint8_t chunk[64], hash[PROTO_HASH_LEN];
	uint8_t feed_key[STORE_CURSOR_LEN];
	store_check_report report;
	size_t problems = 0;

	memset(chunk, 3, sizeof(chunk));
	proto_chunk_hash(chunk, sizeof(chunk), hash);
	assert_int_equal(put1(f->s, clip), CM_OK);
	assert_int_equal(put1(f->s, profile), CM_OK);
	assert_int_equal(store_chunk_put(f->s, hash, chunk, sizeof(chunk)),
			 CM_OK);
	assert_int_equal(store_check(f->s, cm_now_ms(), &report,
				     count_problem, &problems),
			 CM_OK);
	assert_int_equal(report.records, 2);
	assert_int_equal(report.chunks, 1);
	/* sync and author for both, feed, product and one tag for the clip */
	assert_int_equal(report.index_entries, 7);
	assert_int_equal(report.problems, 0);
	assert_int_equal(problems, 0);

	store_close(&f->s);
	for (int i = 7; i >= 0; i--)
		feed_key[7 - i] = (uint8_t)(T0 >> (8 * i));
	memcpy(feed_key + 8, clip->sig.id, PROTO_ID_LEN);
	damage_store(f->dir, "feed", feed_key, sizeof(feed_key));
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_int_equal(store_check(f->s, cm_now_ms(), &report,
				     count_problem, &problems),
			 CM_OK);
	assert_int_equal(report.problems, 1);
	assert_int_equal(problems, 1);
	free(clip);
	free(profile);
}

/* Waits up to timeout_ms for byte `want` on fd; false on anything else. */
static bool wait_byte(int fd, char want, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c = 0;

	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	return read(fd, &c, 1) == 1 && c == want;
}

/* The child of two_processes: opens its own handle and writes n clips,
 * the first when the parent sends 'g'. Exit status 0 on success. */
static void child_writer(const char *dir, test_record **recs, size_t n,
			 int go_fd, int done_fd)
{
	store *s = NULL;
	cm_err result;

	if (store_open(dir, &s))
		_exit(10);
	if (!wait_byte(go_fd, 'g', 10000))
		_exit(11);
	for (size_t i = 0; i < n; i++) {
		if (store_put_batch(s, &recs[i]->sig, 1, &result) || result)
			_exit(12);
		if (i == 0 && write(done_fd, "c", 1) != 1)
			_exit(13);
	}
	store_close(&s);
	if (write(done_fd, "d", 1) != 1)
		_exit(14);
	_exit(0);
}

typedef struct reader_ctx {
	int go_fd;
	int done_fd;
	size_t seen;
	bool child_committed;
} reader_ctx;

/* Holds the parent's read transaction open while the child commits. */
static int read_while_child_writes(void *ctx, const uint8_t id[PROTO_ID_LEN],
				   const uint8_t *wire, size_t len)
{
	reader_ctx *r = ctx;

	(void)id;
	(void)wire;
	(void)len;
	r->seen++;
	if (r->seen == 1 && write(r->go_fd, "g", 1) == 1)
		r->child_committed = wait_byte(r->done_fd, 'c', 10000);
	return 0;
}

static void two_processes(void **state)
{
	fixture *f = *state;
	enum { N = 20 };
	test_record *seed = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "seed");
	test_record *recs[N];
	uint8_t cursor[STORE_CURSOR_LEN];
	store_query q = {.limit = 100};
	reader_ctx r = {0};
	store_counts counts;
	text_list *l = calloc(1, sizeof(*l));
	int go[2], done[2];
	int status = -1;
	char title[16];
	bool more;
	pid_t pid;

	assert_non_null(l);
	for (size_t i = 0; i < N; i++) {
		snprintf(title, sizeof(title), "child %zu", i);
		recs[i] = make_clip(&f->b, T0 + 1000 + i, PRODUCT_KETTLE, NULL,
				    title);
	}
	assert_int_equal(put1(f->s, seed), CM_OK);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		child_writer(f->dir, recs, N, go[0], done[1]);
	}
	close(go[0]);
	close(done[1]);
	r.go_fd = go[1];
	r.done_fd = done[0];

	/* The child commits while this read transaction is open: the writer
	 * is not blocked, and the reader keeps its snapshot. */
	assert_int_equal(store_feed(f->s, &q, read_while_child_writes, &r,
				    cursor, &more),
			 CM_OK);
	assert_true(r.child_committed);
	assert_int_equal(r.seen, 1);
	assert_true(store_has(f->s, recs[0]->sig.id));

	/* Both processes write at once. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(store_counter_add(f->s, "parent.writes", 1),
				 CM_OK);
	assert_true(wait_byte(done[0], 'd', 30000));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(go[1]);
	close(done[0]);

	for (size_t i = 0; i < N; i++)
		assert_true(store_has(f->s, recs[i]->sig.id));
	assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
	assert_int_equal(counts.clips, N + 1);
	assert_int_equal(store_counter_list(f->s, collect_counter, l), CM_OK);
	assert_int_equal(l->n, 1);
	assert_int_equal(l->values[0], 50);
	free_all(recs, N);
	free(seed);
	free(l);
}

static void map_full(void **state)
{
	char dir[64];
	uint8_t *chunk = malloc(CM_CHUNK_SIZE);
	uint8_t hashes[16][PROTO_HASH_LEN];
	store_counts counts;
	store *s = NULL;
	size_t stored = 0;
	size_t len;
	cm_err err = CM_OK;

	(void)state;
	assert_non_null(chunk);
	make_temp_dir(dir);
	assert_int_equal(store_open_sized(dir, 1 << 20, &s), CM_OK);
	for (size_t i = 0; i < 16 && !err; i++) {
		memset(chunk, (int)i, CM_CHUNK_SIZE);
		proto_chunk_hash(chunk, CM_CHUNK_SIZE, hashes[i]);
		err = store_chunk_put(s, hashes[i], chunk, CM_CHUNK_SIZE);
		if (!err)
			stored++;
	}
	assert_int_equal(err, CM_ERR_STORE_FULL);
	assert_non_null(strstr(cm_err_detail(), "MDB_MAP_FULL"));
	assert_true(stored >= 1);

	/* The failed transaction changed nothing. */
	assert_int_equal(store_get_counts(s, &counts), CM_OK);
	assert_int_equal(counts.chunks, stored);
	assert_int_equal(counts.chunk_bytes, stored * CM_CHUNK_SIZE);
	assert_int_equal(store_chunk_get(s, hashes[0], chunk, CM_CHUNK_SIZE,
					 &len),
			 CM_OK);
	assert_false(store_chunk_has(s, hashes[stored]));
	store_close(&s);

	/* A map smaller than the store still opens (LMDB grows it to the
	 * data), and a write that needs a page names the setting to raise. */
	assert_int_equal(store_open_sized(dir, 1 << 16, &s), CM_OK);
	memset(chunk, 0xee, CM_CHUNK_SIZE);
	proto_chunk_hash(chunk, CM_CHUNK_SIZE, hashes[0]);
	assert_int_equal(store_chunk_put(s, hashes[0], chunk, CM_CHUNK_SIZE),
			 CM_ERR_STORE_FULL);
	assert_non_null(strstr(cm_err_detail(), "raise store_map_size"));
	store_close(&s);
	remove_dir(dir);
	free(chunk);
}

/* --- Acceptance log and format version ------------------------------ */

static int collect_log(void *ctx, uint64_t seq, const uint8_t id[PROTO_ID_LEN],
		       const uint8_t *wire, size_t len)
{
	id_list *l = ctx;

	assert_true(seq > 0);
	return collect_id(l, id, wire, len);
}

static void log_order_and_skips(void **state)
{
	fixture *f = *state;
	test_record *c1 = make_clip(&f->a, T0 + 50, PRODUCT_KETTLE, NULL, "1");
	test_record *c2 = make_clip(&f->b, T0 + 10, PRODUCT_KETTLE, NULL, "2");
	test_record *p1 = make_profile(&f->a, T0, "Alice");
	test_record *p2 = make_profile(&f->a, T0 + 1, "Alice B.");
	test_record *r1 = make_retraction(&f->a, T0 + 60, c1->sig.id);
	test_record *p3 = make_profile(&f->b, T0, "Bob");
	id_list *got = calloc(1, sizeof(*got));
	uint64_t head = 99, last = 0;

	assert_non_null(got);
	assert_int_equal(store_log_head(f->s, &head), CM_OK);
	assert_int_equal(head, 0);

	/* Acceptance order, not created order; a duplicate gets no number. */
	put_all(f->s, (test_record *[]){c1, c2, p1, p2, r1}, 5);
	assert_int_equal(put1(f->s, c2), CM_ERR_DUPLICATE);
	assert_int_equal(store_log_head(f->s, &head), CM_OK);
	assert_int_equal(head, 5);

	/* The retracted clip and the replaced profile are skipped. */
	assert_int_equal(store_log_after(f->s, 0, 100, collect_log, got,
					 &last), CM_OK);
	assert_int_equal(last, 5);
	assert_int_equal(got->n, 3);
	assert_memory_equal(got->ids[0], c2->sig.id, PROTO_ID_LEN);
	assert_memory_equal(got->ids[1], p2->sig.id, PROTO_ID_LEN);
	assert_memory_equal(got->ids[2], r1->sig.id, PROTO_ID_LEN);

	/* Paging: a page of 2 ends on a skipped entry, the next continues. */
	got->n = 0;
	assert_int_equal(store_log_after(f->s, 0, 2, collect_log, got,
					 &last), CM_OK);
	assert_int_equal(last, 2);
	assert_int_equal(got->n, 1);
	assert_int_equal(store_log_after(f->s, last, 2, collect_log, got,
					 &last), CM_OK);
	assert_int_equal(last, 4);
	assert_int_equal(got->n, 2);

	/* A callback that stops: last is the entry it stopped on. */
	got->n = 0;
	got->stop_after = 1;
	assert_int_equal(store_log_after(f->s, 0, 100, collect_log, got,
					 &last), CM_OK);
	assert_int_equal(last, 2);
	assert_int_equal(got->n, 1);

	/* Past the head and bad limits. */
	got->n = 0;
	assert_int_equal(store_log_after(f->s, 5, 100, collect_log, got,
					 &last), CM_OK);
	assert_int_equal(last, 5);
	assert_int_equal(got->n, 0);
	assert_int_equal(store_log_after(f->s, UINT64_MAX, 1, collect_log,
					 got, &last), CM_OK);
	assert_int_equal(store_log_after(f->s, 0, 0, collect_log, got,
					 &last), CM_ERR_USAGE);
	assert_int_equal(store_log_after(f->s, 0, CM_LOG_PAGE_MAX + 1,
					 collect_log, got, &last),
			 CM_ERR_USAGE);

	/* Numbers survive a reopen and continue from the head. */
	store_close(&f->s);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_int_equal(put1(f->s, p3), CM_OK);
	assert_int_equal(store_log_head(f->s, &head), CM_OK);
	assert_int_equal(head, 6);
	free(got);
	free_all((test_record *[]){c1, c2, p1, p2, r1, p3}, 6);
}

/* Store formats and releases as the meta keys "format" and
 * "format_needs" hold them (store/store_log.c lists the formats). */
#define FORMAT_NOW 3
#define FORMAT_NEXT 4
#define RELEASE_0_2_0 ((uint64_t)2 << 16)
#define RELEASE_0_3_0 ((uint64_t)3 << 16)

/* Writes meta key -> big-endian value straight into the LMDB file, as a
 * store written by another clipmesh release would hold it. */
static void meta_write(const char *dir, const char *key, uint64_t value)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	uint8_t be[8];
	MDB_val k = {strlen(key), (void *)key}, v = {sizeof(be), be};

	for (int i = 7; i >= 0; i--, value >>= 8)
		be[i] = (uint8_t)value;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 1 << 24), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A format 2 store, written before media reference entries were written
 * late, opens as format 3 with its records and entries. Its format keys
 * then name release 0.3.0, so a format 2 release refuses the store
 * instead of freeing media that waiting clips list. */
static void format2_migrates(void **state)
{
	fixture *f = *state;
	uint8_t root[PROTO_HASH_LEN];
	test_record *c;
	uint64_t head = 0, users = 0;

	memset(root, 0x42, sizeof(root));
	c = make_clip_of(&f->a, T0, PRODUCT_KETTLE, NULL, "old", root);
	assert_int_equal(put1(f->s, c), CM_OK);
	store_close(&f->s);
	meta_write(f->dir, "format", 2);
	meta_write(f->dir, "format_needs", RELEASE_0_2_0);

	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_true(store_has(f->s, c->sig.id));
	assert_int_equal(store_log_head(f->s, &head), CM_OK);
	assert_int_equal(head, 1);
	assert_int_equal(store_media_users(f->s, root, &users), CM_OK);
	assert_int_equal(users, 1);
	store_close(&f->s);
	assert_int_equal(meta_read(f->dir, "format"), FORMAT_NOW);
	assert_int_equal(meta_read(f->dir, "format_needs"), RELEASE_0_3_0);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	free(c);
}

static void format_newer_refused(void **state)
{
	fixture *f = *state;
	test_record *c = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "kept");
	store *s = (store *)1;

	assert_int_equal(put1(f->s, c), CM_OK);
	store_close(&f->s);

	meta_write(f->dir, "format", FORMAT_NEXT);
	meta_write(f->dir, "format_needs", 0);
	assert_int_equal(store_open(f->dir, &s), CM_ERR_STORE_VERSION);
	assert_null(s);
	assert_non_null(strstr(cm_err_detail(), "format 4"));
	assert_non_null(strstr(cm_err_detail(), "install the clipmesh"));

	meta_write(f->dir, "format_needs",
		   (uint64_t)0 << 32 | (uint64_t)4 << 16 | 1);
	assert_int_equal(store_open(f->dir, &s), CM_ERR_STORE_VERSION);
	assert_non_null(strstr(cm_err_detail(), "needs clipmesh 0.4.1"));

	/* The refused store was not changed: back at its own format it
	 * opens with its clip. */
	meta_write(f->dir, "format", FORMAT_NOW);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_true(store_has(f->s, c->sig.id));
	free(c);
}

/* A format key that reads 1 on a store with an acceptance log, or a
 * format newer than its format_needs allows, is a damaged key. The first
 * is set again (numbering the records twice would collide with the
 * log); the second is refused with the advice to restore a backup. */
static void format_key_damaged(void **state)
{
	fixture *f = *state;
	test_record *c1 = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "one");
	test_record *c2 = make_clip(&f->a, T0 + 1, PRODUCT_KETTLE, NULL, "two");
	store *s = (store *)1;
	uint64_t head = 0;

	assert_int_equal(put1(f->s, c1), CM_OK);
	store_close(&f->s);

	meta_write(f->dir, "format", 1);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_int_equal(store_log_head(f->s, &head), CM_OK);
	assert_int_equal(head, 1);
	assert_int_equal(put1(f->s, c2), CM_OK);
	assert_int_equal(store_log_head(f->s, &head), CM_OK);
	assert_int_equal(head, 2);
	store_close(&f->s);

	meta_write(f->dir, "format", FORMAT_NEXT);
	assert_int_equal(store_open(f->dir, &s), CM_ERR_STORE_VERSION);
	assert_null(s);
	assert_non_null(strstr(cm_err_detail(), "'format' is damaged"));
	meta_write(f->dir, "format", FORMAT_NOW);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	free(c1);
	free(c2);
}

/* A log_head behind the log made every later append fail with
 * "already exists"; one past it wrapped to 0. Opening sets it to the
 * last log entry. */
static void log_head_damaged(void **state)
{
	static const uint64_t damaged[] = {0, UINT64_MAX};
	fixture *f = *state;
	uint64_t head = 0;

	for (size_t i = 0; i < 2; i++) {
		test_record *c = make_clip(&f->a, T0 + i, PRODUCT_KETTLE,
					   NULL, i ? "second" : "first");

		assert_int_equal(put1(f->s, c), CM_OK);
		store_close(&f->s);
		meta_write(f->dir, "log_head", damaged[i]);
		assert_int_equal(store_open(f->dir, &f->s), CM_OK);
		assert_int_equal(store_log_head(f->s, &head), CM_OK);
		assert_int_equal(head, i + 1);
		free(c);
	}
	{
		test_record *c = make_clip(&f->a, T0 + 5, PRODUCT_KETTLE, NULL,
					   "third");

		assert_int_equal(put1(f->s, c), CM_OK);
		assert_int_equal(store_log_head(f->s, &head), CM_OK);
		assert_int_equal(head, 3);
		free(c);
	}
}

/* A "chunk_bytes" that cannot be right (missing while chunks exist, the
 * wrong size, or above CM_CHUNK_SIZE per chunk) is recounted on open, so
 * that a media budget check does not free media that fits the budget. */
static void chunk_bytes_damaged(void **state)
{
	static const uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0xff, 0xff};
	static const uint8_t short_value[3] = {1, 2, 3};
	static const struct {
		const void *value;
		size_t len;
	} cases[] = {{huge, sizeof(huge)},
		     {short_value, sizeof(short_value)},
		     {NULL, 0}};
	fixture *f = *state;
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	uint64_t media = 0, bytes = 0;
	store_counts counts;

	media_store_one_chunk(f->s, hash, root);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		store_close(&f->s);
		plant_value(f->dir, "meta", "chunk_bytes", strlen("chunk_bytes"),
			    cases[i].value, cases[i].len);
		assert_int_equal(store_open(f->dir, &f->s), CM_OK);
		assert_int_equal(store_get_counts(f->s, &counts), CM_OK);
		assert_int_equal(counts.chunk_bytes, 64);
	}

	/* No clip lists the media, so a budget check that believed the
	 * store over 1,000 bytes would free it first. */
	assert_int_equal(store_media_evict(f->s, 1000, NULL, 0, 0, &media,
					   &bytes),
			 CM_OK);
	assert_int_equal(media, 0);
	assert_true(store_manifest_has(f->s, root));
	assert_true(store_chunk_has(f->s, hash));
}

/* store check reports a "chunk_bytes" that differs from the chunks'
 * total by less than opening the store can see. */
static void check_finds_chunk_bytes(void **state)
{
	static const uint8_t low[8] = {0, 0, 0, 0, 0, 0, 0, 63};
	fixture *f = *state;
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	store_check_report report;
	size_t problems = 0;

	media_store_one_chunk(f->s, hash, root);
	store_close(&f->s);
	plant_value(f->dir, "meta", "chunk_bytes", strlen("chunk_bytes"), low,
		    sizeof(low));
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);

	assert_int_equal(store_check(f->s, cm_now_ms(), &report,
				     count_problem, &problems),
			 CM_OK);
	assert_int_equal(report.chunks, 1);
	assert_int_equal(report.problems, 1);
	assert_int_equal(problems, 1);
}

/* store_lacks gives, in one transaction, what store_has and
 * store_is_retracted give one id at a time. */
static void lacks_matches_has(void **state)
{
	fixture *f = *state;
	test_record *kept = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "kept");
	test_record *gone = make_clip(&f->a, T0 + 1, PRODUCT_KETTLE, NULL,
				      "gone");
	test_record *retr = make_retraction(&f->a, T0 + 5, gone->sig.id);
	test_record *never = make_clip(&f->a, T0 + 2, PRODUCT_KETTLE, NULL,
				       "never stored");
	uint8_t ids[4 * PROTO_ID_LEN];
	bool lacks[4];

	assert_int_equal(put1(f->s, kept), CM_OK);
	assert_int_equal(put1(f->s, gone), CM_OK);
	assert_int_equal(put1(f->s, retr), CM_OK);
	memcpy(ids, kept->sig.id, PROTO_ID_LEN);
	memcpy(ids + PROTO_ID_LEN, gone->sig.id, PROTO_ID_LEN);
	memcpy(ids + 2 * PROTO_ID_LEN, retr->sig.id, PROTO_ID_LEN);
	memcpy(ids + 3 * PROTO_ID_LEN, never->sig.id, PROTO_ID_LEN);

	assert_int_equal(store_lacks(f->s, ids, 4, lacks), CM_OK);
	assert_false(lacks[0]); /* stored */
	assert_false(lacks[1]); /* retracted */
	assert_false(lacks[2]); /* the retraction, stored */
	assert_true(lacks[3]);
	for (size_t i = 0; i < 4; i++) {
		const uint8_t *id = ids + i * PROTO_ID_LEN;

		assert_int_equal(lacks[i], !store_has(f->s, id) &&
					   !store_is_retracted(f->s, id, NULL));
	}
	free(kept);
	free(gone);
	free(retr);
	free(never);
}

/* Opens the store at f->dir and returns the problems store check finds. */
static uint64_t reopen_and_check(fixture *f)
{
	store_check_report report;
	size_t problems = 0;

	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_int_equal(store_check(f->s, cm_now_ms(), &report,
				     count_problem, &problems),
			 CM_OK);
	assert_int_equal(problems, report.problems);
	return report.problems;
}

/* store check reports a manifest that no longer matches its media root
 * and an acceptance log entry that names no record id. */
static void check_finds_bad_manifest(void **state)
{
	fixture *f = *state;
	test_record *c = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "logged");
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	uint8_t good[8 + PROTO_HASH_LEN], wrong_size[8 + PROTO_HASH_LEN];
	const uint8_t short_value[2] = {1, 2}, seq_one[8] = {0, 0, 0, 0,
							    0, 0, 0, 1};
	const struct {
		const uint8_t *value;
		size_t len;
	} manifests[] = {{wrong_size, sizeof(wrong_size)},
			 {short_value, sizeof(short_value)}};

	media_store_one_chunk(f->s, hash, root);
	assert_int_equal(put1(f->s, c), CM_OK);
	memset(good, 0, 8);
	good[7] = 64;
	memcpy(good + 8, hash, PROTO_HASH_LEN);
	memcpy(wrong_size, good, sizeof(good));
	wrong_size[7] = 1;

	for (size_t i = 0; i < sizeof(manifests) / sizeof(*manifests); i++) {
		store_close(&f->s);
		plant_value(f->dir, "manifests", root, PROTO_HASH_LEN,
			    manifests[i].value, manifests[i].len);
		assert_int_equal(reopen_and_check(f), 1);
	}

	store_close(&f->s);
	plant_value(f->dir, "manifests", root, PROTO_HASH_LEN, good,
		    sizeof(good));
	plant_value(f->dir, "log", seq_one, sizeof(seq_one), short_value,
		    sizeof(short_value));
	assert_int_equal(reopen_and_check(f), 1);
	free(c);
}

/* A data file cut short below its last page in use is rejected on open
 * with a hint, rather than ending the process with SIGBUS at the first
 * read of a missing page. */
static void open_truncated_file(void **state)
{
	fixture *f = *state;
	test_record *c = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "cut");
	long page = sysconf(_SC_PAGESIZE);
	char path[128];
	cm_err err;

	assert_int_equal(put1(f->s, c), CM_OK);
	store_close(&f->s);
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	/* The two meta pages stay, so LMDB opens the file. */
	assert_int_equal(truncate(path, 2 * page), 0);

	err = store_open(f->dir, &f->s);
	assert_int_equal(err, CM_ERR_STORE);
	assert_null(f->s);
	assert_non_null(strstr(cm_err_detail(), "cut short"));
	assert_non_null(strstr(cm_err_detail(), "backup"));
	free(c);
}

/* An emptied data file is rejected rather than opened as a new store,
 * which would drop every record without a word. */
static void open_emptied_file(void **state)
{
	fixture *f = *state;
	test_record *c = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "gone");
	char path[128];

	assert_int_equal(put1(f->s, c), CM_OK);
	store_close(&f->s);
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	assert_int_equal(truncate(path, 0), 0);

	assert_int_equal(store_open(f->dir, &f->s), CM_ERR_STORE);
	assert_null(f->s);
	assert_non_null(strstr(cm_err_detail(), "data.mdb is empty"));

	/* Deleting the file, the second fix the message gives, starts a new
	 * store. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_open(f->dir, &f->s), CM_OK);
	assert_false(store_has(f->s, c->sig.id));
	free(c);
}

static void open_missing_dir(void **state)
{
	store *s = (store *)1;

	(void)state;
	assert_int_not_equal(store_open("/nonexistent/clipmesh-test", &s),
			     CM_OK);
	assert_null(s);
	assert_non_null(strstr(cm_err_detail(), "/nonexistent/clipmesh-test"));
	store_close(NULL);
	store_close(&s);
}

/* store_open in a thread of its own, so that the test can see it wait. */
typedef struct {
	const char *dir;
	pid_t tid;
	cm_err err;
	char detail[256];
	int done;
} open_job;

static void *open_job_run(void *arg)
{
	open_job *job = arg;
	store *s = NULL;

	__atomic_store_n(&job->tid, (pid_t)syscall(SYS_gettid),
			 __ATOMIC_SEQ_CST);
	job->err = store_open(job->dir, &s);
	if (job->err)
		cm_strlcpy(job->detail, cm_err_detail(), sizeof(job->detail));
	store_close(&s);
	__atomic_store_n(&job->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* True when thread tid of this process waits for the store lock: in
 * flock(2), or sleeping between two tries of it. */
static bool waits_for_lock(pid_t tid)
{
	char path[64];
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
	return nr == SYS_flock || nr == SYS_nanosleep ||
	       nr == SYS_clock_nanosleep;
}

/*
 * Checks that store_open waits for a store another process is creating.
 * The child locks the folder over an empty data.mdb, as LMDB leaves it
 * during creation, and removes the file once store_open waits.
 */
/* Lets child pid go on, waits for it and for the opening thread, checks
 * that both succeeded, and removes the pipes and dir. */
static void open_job_finish(open_job *job, pthread_t thread, pid_t pid,
			    int to_parent[2], int to_child[2], const char *dir)
{
	char byte = 0;
	int status;

	assert_int_equal(write(to_child[1], &byte, 1), 1);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (job->err)
		fail_msg("store_open: %s", job->detail);
	for (int i = 0; i < 2; i++) {
		close(to_parent[i]);
		close(to_child[i]);
	}
	remove_dir(dir);
}

/* A store in good order opens in a read transaction, so it does not
 * wait while another process, such as a node, has a write transaction
 * open. */
static void open_beside_a_writer(void **state)
{
	int to_parent[2], to_child[2];
	bool opened_in_time = false;
	open_job job = {0};
	char dir[64], byte = 0;
	pthread_t thread;
	store *s = NULL;
	pid_t pid;

	(void)state;
	make_temp_dir(dir);
	assert_int_equal(store_open(dir, &s), CM_OK);
	store_close(&s);
	assert_int_equal(pipe(to_parent), 0);
	assert_int_equal(pipe(to_child), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		MDB_env *env = NULL;
		MDB_txn *txn = NULL;

		if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
		    mdb_env_open(env, dir, MDB_NOTLS, 0600) ||
		    mdb_txn_begin(env, NULL, 0, &txn) ||
		    write(to_parent[1], &byte, 1) != 1 ||
		    read(to_child[0], &byte, 1) != 1)
			_exit(1);
		mdb_txn_abort(txn);
		mdb_env_close(env);
		_exit(0);
	}
	assert_int_equal(read(to_parent[0], &byte, 1), 1);
	job.dir = dir;
	assert_int_equal(pthread_create(&thread, NULL, open_job_run, &job), 0);
	for (int ms = 0; ms < 10000 && !opened_in_time; ms += 5) {
		opened_in_time = __atomic_load_n(&job.done, __ATOMIC_SEQ_CST);
		poll(NULL, 0, 5);
	}
	open_job_finish(&job, thread, pid, to_parent, to_child, dir);
	if (!opened_in_time)
		fail_msg("store_open waited 10 s for another process's write "
			 "transaction");
}

static void open_waits_for_creation(void **state)
{
	int to_parent[2], to_child[2];
	char dir[64], path[80], byte = 0;
	open_job job = {0};
	pthread_t thread;
	pid_t pid;

	(void)state;
	make_temp_dir(dir);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	assert_int_equal(pipe(to_parent), 0);
	assert_int_equal(pipe(to_child), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY);

		if (fd < 0 || flock(fd, LOCK_EX) != 0)
			_exit(1);
		close(open(path, O_WRONLY | O_CREAT, 0600));
		if (write(to_parent[1], &byte, 1) != 1 ||
		    read(to_child[0], &byte, 1) != 1)
			_exit(1);
		unlink(path);
		_exit(0);
	}
	assert_int_equal(read(to_parent[0], &byte, 1), 1);
	job.dir = dir;
	assert_int_equal(pthread_create(&thread, NULL, open_job_run, &job), 0);
	while (!__atomic_load_n(&job.done, __ATOMIC_SEQ_CST) &&
	       !waits_for_lock(__atomic_load_n(&job.tid, __ATOMIC_SEQ_CST)))
		poll(NULL, 0, 1);
	open_job_finish(&job, thread, pid, to_parent, to_child, dir);
}

/* Counts only clips, only of the author asked for, and not retracted
 * ones, although the author index also lists profiles and
 * retractions. */
static void count_clips_by_author(void **state)
{
	fixture *f = *state;
	test_record *a1 = make_clip(&f->a, T0, PRODUCT_KETTLE, NULL, "a1");
	test_record *a2 = make_clip(&f->a, T0 + 1, PRODUCT_KETTLE, NULL, "a2");
	test_record *a3 = make_clip(&f->a, T0 + 2, PRODUCT_KETTLE, NULL, "a3");
	test_record *b1 = make_clip(&f->b, T0, PRODUCT_KETTLE, NULL, "b1");
	test_record *pa = make_profile(&f->a, T0, "A");
	test_record *ra = make_retraction(&f->a, T0 + 3, a3->sig.id);
	test_record *recs[] = {a1, a2, a3, b1, pa, ra};
	uint64_t count = 99;

	assert_int_equal(store_count_clips(f->s, f->a.pk, &count), CM_OK);
	assert_int_equal(count, 0);
	put_all(f->s, recs, 6);
	assert_int_equal(store_count_clips(f->s, f->a.pk, &count), CM_OK);
	assert_int_equal(count, 2);
	assert_int_equal(store_count_clips(f->s, f->b.pk, &count), CM_OK);
	assert_int_equal(count, 1);
	assert_int_equal(store_count_clips(f->s, f->c.pk, &count), CM_OK);
	assert_int_equal(count, 0);
	free_all(recs, 6);
}

/* --- Publishing in steps (store_publish.c) ---------------------------- */

#define PUB_CHUNKS 3
#define PUB_CHUNK_LEN CM_CHUNK_SIZE

/* Media of PUB_CHUNKS full chunks, each of one repeated byte. */
typedef struct pub_media {
	uint8_t data[PUB_CHUNKS][PUB_CHUNK_LEN];
	uint8_t hashes[PUB_CHUNKS][PROTO_HASH_LEN];
	const uint8_t *ptrs[PUB_CHUNKS];
	size_t lens[PUB_CHUNKS];
	store_manifest m;
} pub_media;

static pub_media *pub_media_make(uint8_t seed)
{
	pub_media *pm = calloc(1, sizeof(*pm));

	assert_non_null(pm);
	for (size_t i = 0; i < PUB_CHUNKS; i++) {
		memset(pm->data[i], seed + (uint8_t)i, PUB_CHUNK_LEN);
		proto_chunk_hash(pm->data[i], PUB_CHUNK_LEN, pm->hashes[i]);
		pm->ptrs[i] = pm->data[i];
		pm->lens[i] = PUB_CHUNK_LEN;
	}
	pm->m.size = PUB_CHUNKS * PUB_CHUNK_LEN;
	pm->m.chunks = (const uint8_t(*)[PROTO_HASH_LEN])pm->hashes;
	pm->m.n_chunks = PUB_CHUNKS;
	proto_media_root(pm->m.chunks, PUB_CHUNKS, pm->m.size, pm->m.root);
	return pm;
}

static cm_err pub_chunks_put(store_publish *p, const pub_media *pm, size_t n)
{
	return store_publish_chunks_put(
		p, pm->m.root, n, (const uint8_t(*)[PROTO_HASH_LEN])pm->hashes,
		pm->ptrs, pm->lens);
}

static uint64_t chunk_bytes_of(store *s)
{
	store_counts counts;

	assert_int_equal(store_get_counts(s, &counts), CM_OK);
	return counts.chunk_bytes;
}

/* Counts the lock files in the store's folder "publish". */
static size_t lock_files_in(const char *dir)
{
	char path[128];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/publish", dir);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static uint64_t check_problems(store *s, store_check_report *rep)
{
	assert_int_equal(store_check(s, T0, rep, NULL, NULL), CM_OK);
	return rep->problems;
}

/* A publish stores the manifest first, then the chunks, then the clip
 * with its marker deleted; its lock file goes at the end. */
static void publish_steps_complete(void **state)
{
	fixture *f = *state;
	store_publish *p = NULL;
	store_check_report rep;
	pub_media *pm;
	test_record *clip;
	cm_err result;

	pm = pub_media_make(1);
	clip = make_clip_of(&f->a, T0, PRODUCT_KETTLE, NULL, "steps",
			    pm->m.root);
	assert_int_equal(store_publish_begin(f->s, &pm->m, 1, &p), CM_OK);
	assert_true(store_manifest_has(f->s, pm->m.root));
	assert_int_equal(chunk_bytes_of(f->s), 0);
	assert_int_equal(lock_files_in(f->dir), 1);
	assert_int_equal(check_problems(f->s, &rep), 0);

	assert_int_equal(pub_chunks_put(p, pm, PUB_CHUNKS), CM_OK);
	assert_int_equal(store_publish_finish(p, &clip->sig, &result), CM_OK);
	assert_int_equal(result, CM_OK);
	store_publish_end(&p);
	assert_null(p);

	assert_true(store_media_complete(f->s, pm->m.root));
	assert_int_equal(chunk_bytes_of(f->s), PUB_CHUNKS * PUB_CHUNK_LEN);
	assert_int_equal(lock_files_in(f->dir), 0);
	assert_int_equal(check_problems(f->s, &rep), 0);
	free(clip);
	free(pm);
}

/* A publish that ends without its record frees its manifest and the
 * chunks it stored at once. */
static void publish_end_unfinished(void **state)
{
	fixture *f = *state;
	store_publish *p = NULL;
	store_check_report rep;
	pub_media *pm;

	pm = pub_media_make(2);
	assert_int_equal(store_publish_begin(f->s, &pm->m, 1, &p), CM_OK);
	assert_int_equal(pub_chunks_put(p, pm, 2), CM_OK);
	assert_int_equal(chunk_bytes_of(f->s), 2 * PUB_CHUNK_LEN);
	store_publish_end(&p);

	assert_false(store_manifest_has(f->s, pm->m.root));
	assert_false(store_chunk_has(f->s, pm->hashes[0]));
	assert_int_equal(chunk_bytes_of(f->s), 0);
	assert_int_equal(lock_files_in(f->dir), 0);
	assert_int_equal(check_problems(f->s, &rep), 0);
	free(pm);
}

/* A failed publish keeps media that a stored clip lists. */
static void publish_end_keeps_listed(void **state)
{
	fixture *f = *state;
	store_publish *p = NULL;
	pub_media *pm;
	test_record *clip;
	cm_err result;

	pm = pub_media_make(3);
	clip = make_clip_of(&f->a, T0, PRODUCT_KETTLE, NULL, "kept",
			    pm->m.root);
	assert_int_equal(store_publish_begin(f->s, &pm->m, 1, &p), CM_OK);
	assert_int_equal(pub_chunks_put(p, pm, PUB_CHUNKS), CM_OK);
	assert_int_equal(store_publish_finish(p, &clip->sig, &result), CM_OK);
	store_publish_end(&p);

	assert_int_equal(store_publish_begin(f->s, &pm->m, 1, &p), CM_OK);
	store_publish_end(&p);
	assert_true(store_media_complete(f->s, pm->m.root));
	assert_int_equal(chunk_bytes_of(f->s), PUB_CHUNKS * PUB_CHUNK_LEN);
	free(clip);
	free(pm);
}

/* Starts a publish of pm in a child process with a store of its own,
 * which stores one chunk, writes 'c' to pipe ready and waits until pipe
 * hold closes. It exits then, so that a failed test leaves no child. */
static pid_t publish_child(const char *dir, const pub_media *pm,
			   const int ready[2], const int hold[2])
{
	store_publish *p = NULL;
	store *s = NULL;
	char byte;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	close(ready[0]);
	close(hold[1]);
	if (store_open(dir, &s) || store_publish_begin(s, &pm->m, 1, &p) ||
	    pub_chunks_put(p, pm, 1) || write(ready[1], "c", 1) != 1)
		_exit(1);
	while (read(hold[0], &byte, 1) != 0)
		;
	_exit(0);
}

/* A sweep keeps the media of a running publish and frees it once the
 * publish is killed, with its marker and lock file. */
static void publish_sweep_killed(void **state)
{
	fixture *f = *state;
	store_sweep_report swept;
	store_check_report rep;
	int ready[2], hold[2], status;
	pub_media *pm;
	pid_t pid;

	pm = pub_media_make(4);
	assert_int_equal(store_media_index_ensure(f->s), CM_OK);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	pid = publish_child(f->dir, pm, ready, hold);
	close(hold[0]);
	assert_true(wait_byte(ready[0], 'c', 30000));

	assert_int_equal(store_publish_sweep(f->s, &swept), CM_OK);
	assert_int_equal(swept.publishes, 0);
	assert_int_equal(chunk_bytes_of(f->s), PUB_CHUNK_LEN);
	assert_int_equal(check_problems(f->s, &rep), 0);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(check_problems(f->s, &rep), 0);
	assert_int_equal(rep.stopped, 1);
	assert_int_equal(rep.notes, 1);

	assert_int_equal(store_publish_sweep(f->s, &swept), CM_OK);
	assert_int_equal(swept.publishes, 1);
	assert_int_equal(swept.media, 1);
	assert_int_equal(swept.bytes, PUB_CHUNK_LEN);
	assert_false(store_manifest_has(f->s, pm->m.root));
	assert_int_equal(chunk_bytes_of(f->s), 0);
	assert_int_equal(lock_files_in(f->dir), 0);
	assert_int_equal(check_problems(f->s, &rep), 0);
	close(ready[0]);
	close(ready[1]);
	close(hold[1]);
	free(pm);
}

/* The media budget never evicts the manifest of a running publish. */
static void publish_evict_skips_running(void **state)
{
	fixture *f = *state;
	store_publish *p = NULL;
	uint64_t media, bytes;
	pub_media *pm;

	pm = pub_media_make(5);
	assert_int_equal(store_publish_begin(f->s, &pm->m, 1, &p), CM_OK);
	assert_int_equal(pub_chunks_put(p, pm, 2), CM_OK);
	assert_int_equal(store_media_evict(f->s, 0, NULL, 0, T0, &media,
					   &bytes),
			 CM_OK);
	assert_int_equal(media, 0);
	assert_true(store_manifest_has(f->s, pm->m.root));
	assert_int_equal(pub_chunks_put(p, pm, PUB_CHUNKS), CM_OK);
	store_publish_end(&p);
	assert_int_equal(chunk_bytes_of(f->s), 0);
	free(pm);
}

/* Deletes the manifest of root from a child process with an LMDB
 * environment of its own, as a sweep of another process would. */
static void manifest_delete_elsewhere(const char *dir,
				      const uint8_t root[PROTO_HASH_LEN])
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_val k = {PROTO_HASH_LEN, (void *)root};
	MDB_dbi dbi;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
		    mdb_env_open(env, dir, 0, 0600) ||
		    mdb_txn_begin(env, NULL, 0, &txn) ||
		    mdb_dbi_open(txn, "manifests", 0, &dbi) ||
		    mdb_del(txn, dbi, &k, NULL) || mdb_txn_commit(txn))
			_exit(1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Chunks are stored only while their manifest is: once it is gone, a
 * publish stores none and fails. */
static void publish_chunks_need_manifest(void **state)
{
	fixture *f = *state;
	store_publish *p = NULL;
	pub_media *pm;

	pm = pub_media_make(6);
	assert_int_equal(store_publish_begin(f->s, &pm->m, 1, &p), CM_OK);
	manifest_delete_elsewhere(f->dir, pm->m.root);
	assert_int_equal(pub_chunks_put(p, pm, PUB_CHUNKS), CM_ERR_NOT_FOUND);
	assert_false(store_chunk_has(f->s, pm->hashes[0]));
	assert_int_equal(chunk_bytes_of(f->s), 0);
	store_publish_end(&p);
	free(pm);
}

/* Chunks that no manifest lists are a problem for store check, and
 * store_chunks_unlisted_free frees them and only them. */
static void unlisted_chunks_freed(void **state)
{
	fixture *f = *state;
	store_check_report rep;
	uint8_t hash[PROTO_HASH_LEN], root[PROTO_HASH_LEN];
	uint8_t loose[1000], loose_hash[PROTO_HASH_LEN];
	uint64_t chunks, bytes;

	media_store_one_chunk(f->s, hash, root);
	memset(loose, 9, sizeof(loose));
	proto_chunk_hash(loose, sizeof(loose), loose_hash);
	assert_int_equal(store_chunk_put(f->s, loose_hash, loose,
					 sizeof(loose)),
			 CM_OK);
	assert_int_equal(check_problems(f->s, &rep), 1);
	assert_int_equal(rep.unlisted, 1);
	assert_int_equal(rep.unlisted_bytes, sizeof(loose));

	assert_int_equal(store_chunks_unlisted_free(f->s, &chunks, &bytes),
			 CM_OK);
	assert_int_equal(chunks, 1);
	assert_int_equal(bytes, sizeof(loose));
	assert_false(store_chunk_has(f->s, loose_hash));
	assert_true(store_chunk_has(f->s, hash));
	assert_int_equal(check_problems(f->s, &rep), 0);
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		STORE_TEST(put_get_has),
		STORE_TEST(publish_steps_complete),
		STORE_TEST(publish_end_unfinished),
		STORE_TEST(publish_end_keeps_listed),
		STORE_TEST(publish_sweep_killed),
		STORE_TEST(publish_evict_skips_running),
		STORE_TEST(publish_chunks_need_manifest),
		STORE_TEST(unlisted_chunks_freed),
		STORE_TEST(put_duplicate),
		STORE_TEST(retract_after_clip),
		STORE_TEST(retract_before_clip),
		STORE_TEST(retract_same_batch),
		STORE_TEST(retract_wrong_author),
		STORE_TEST(retract_forged_pending),
		STORE_TEST(retract_after_confirmed),
		STORE_TEST(retract_non_clip),
		STORE_TEST(retract_pending_profile),
		STORE_TEST(profile_newer_wins),
		STORE_TEST(profile_older_rejected),
		STORE_TEST(profile_tie_larger_id),
		STORE_TEST(feed_filters),
		STORE_TEST(feed_paging_ties),
		STORE_TEST(feed_paging_filtered),
		STORE_TEST(feed_bad_limit),
		STORE_TEST(feed_callback_stops),
		STORE_TEST(feed_callback_writes),
		STORE_TEST(scan_all_and_author),
		STORE_TEST(scan_in_parts),
		STORE_TEST(scan_many_records),
		STORE_TEST(resolve_prefix),
		STORE_TEST(count_clips_by_author),
		STORE_TEST(media_chunks),
		STORE_TEST(media_manifest),
		STORE_TEST(media_fetched_unlisted),
		STORE_TEST(media_refs_deferred),
		STORE_TEST(media_refs_seq_missing),
		STORE_TEST(media_refs_seq_above_head),
		STORE_TEST(media_refs_seq_damaged),
		STORE_TEST(media_evict_none_keeps_entries),
		STORE_TEST(media_users_last_root),
		STORE_TEST(media_users_decodes_waiting_once),
		STORE_TEST(media_cold_read),
		STORE_TEST(media_fetched_leave_page_cache),
		STORE_TEST(media_empty),
		STORE_TEST(follows),
		STORE_TEST(peers),
		STORE_TEST(known_peers_kept),
		STORE_TEST(known_peers_invalid),
		STORE_TEST(counters),
		STORE_TEST(reopen_keeps_data),
		STORE_TEST(backup_copy),
		STORE_TEST(check_finds_damage),
		STORE_TEST(two_processes),
		STORE_TEST(log_order_and_skips),
		STORE_TEST(format2_migrates),
		STORE_TEST(format_newer_refused),
		STORE_TEST(format_key_damaged),
		STORE_TEST(log_head_damaged),
		STORE_TEST(open_truncated_file),
		STORE_TEST(open_emptied_file),
		STORE_TEST(chunk_bytes_damaged),
		STORE_TEST(check_finds_chunk_bytes),
		STORE_TEST(check_finds_bad_manifest),
		STORE_TEST(lacks_matches_has),
		cmocka_unit_test(map_full),
		cmocka_unit_test(open_missing_dir),
		cmocka_unit_test(open_waits_for_creation),
		cmocka_unit_test(open_beside_a_writer),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
