/*
 * http_limit.c - a token bucket per client address: each holds up to
 * `burst` tokens, refilled at `rate` per second, and each request takes
 * one. IPv6 clients are keyed by their /64 network, because one host
 * usually owns a whole /64 and could otherwise rotate addresses. When
 * CM_HTTP_CLIENTS_MAX addresses are tracked, an idle one (full bucket)
 * is forgotten; when none is idle, new clients share one overflow bucket.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "http_internal.h"

#define KEY_LEN CM_ADDR_SOURCE_LEN

typedef struct bucket {
	bool used;
	uint8_t key[KEY_LEN];
	double tokens;
	uint64_t updated_ms;           /* monotonic */
} bucket;

struct http_limiter {
	pthread_mutex_t lock;
	double rate;
	double burst;
	bucket *table;                 /* CM_HTTP_CLIENTS_MAX, open addressing */
	size_t used;
	bucket overflow;
};

cm_err http_limiter_new(unsigned rate, unsigned burst, http_limiter **out)
{
	http_limiter *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (l == NULL)
		return cm_errf(CM_ERR_NOMEM, "allocating the rate limiter");
	l->table = calloc(CM_HTTP_CLIENTS_MAX, sizeof(*l->table));
	if (l->table == NULL) {
		free(l);
		return cm_errf(CM_ERR_NOMEM, "allocating the rate limiter");
	}
	pthread_mutex_init(&l->lock, NULL);
	l->rate = rate;
	l->burst = burst < 1 ? 1 : burst;
	l->overflow.tokens = l->burst;
	*out = l;
	return CM_OK;
}

void http_limiter_free(http_limiter **l)
{
	if (l == NULL || *l == NULL)
		return;
	pthread_mutex_destroy(&(*l)->lock);
	free((*l)->table);
	free(*l);
	*l = NULL;
}

static size_t key_hash(const uint8_t key[KEY_LEN])
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < KEY_LEN; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (size_t)(h % CM_HTTP_CLIENTS_MAX);
}

static void refill(const http_limiter *l, bucket *b, uint64_t now)
{
	if (now <= b->updated_ms)
		return;
	b->tokens += (double)(now - b->updated_ms) * l->rate / 1000.0;
	if (b->tokens > l->burst)
		b->tokens = l->burst;
	b->updated_ms = now;
}

/* Forgets one client whose bucket is full again; false when none is. */
static bool forget_idle(http_limiter *l, uint64_t now)
{
	for (size_t i = 0; i < CM_HTTP_CLIENTS_MAX; i++) {
		bucket *b = &l->table[i];

		if (!b->used)
			continue;
		refill(l, b, now);
		if (b->tokens < l->burst)
			continue;
		/* Re-insert the rest of its probe run so that lookups
		 * do not stop at the hole. */
		b->used = false;
		l->used--;
		for (size_t j = (i + 1) % CM_HTTP_CLIENTS_MAX;
		     l->table[j].used; j = (j + 1) % CM_HTTP_CLIENTS_MAX) {
			bucket moved = l->table[j];
			size_t k = key_hash(moved.key);

			l->table[j].used = false;
			while (l->table[k].used)
				k = (k + 1) % CM_HTTP_CLIENTS_MAX;
			l->table[k] = moved;
		}
		return true;
	}
	return false;
}

/* Returns the bucket of `key`, adding it when there is room. */
static bucket *find(http_limiter *l, const uint8_t key[KEY_LEN],
		    uint64_t now)
{
	size_t i = key_hash(key);

	while (l->table[i].used) {
		if (memcmp(l->table[i].key, key, KEY_LEN) == 0)
			return &l->table[i];
		i = (i + 1) % CM_HTTP_CLIENTS_MAX;
	}
	/* Keep a quarter free so that probe runs stay short. */
	if (l->used >= CM_HTTP_CLIENTS_MAX * 3 / 4) {
		if (!forget_idle(l, now))
			return &l->overflow;
		return find(l, key, now);
	}
	l->table[i] = (bucket){.used = true, .tokens = l->burst,
			       .updated_ms = now};
	memcpy(l->table[i].key, key, KEY_LEN);
	l->used++;
	return &l->table[i];
}

bool http_limiter_take(http_limiter *l, const struct sockaddr *addr,
		       unsigned *retry_after_s)
{
	uint8_t key[KEY_LEN];
	uint64_t now;
	bool ok;
	bucket *b;

	cm_addr_source(addr, key);
	pthread_mutex_lock(&l->lock);
	/* Read under the lock: a time read before it can be older than
	 * the bucket's, and the difference would wrap to a full refill. */
	now = cm_mono_ms();
	b = find(l, key, now);
	refill(l, b, now);
	ok = b->tokens >= 1.0;
	if (ok) {
		b->tokens -= 1.0;
	} else {
		double wait = (1.0 - b->tokens) / (l->rate > 0 ? l->rate : 1);

		*retry_after_s = (unsigned)wait + 1;
	}
	pthread_mutex_unlock(&l->lock);
	return ok;
}
