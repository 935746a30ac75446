/*
 * test_http_limit.c - the per-client token bucket of the HTTP API,
 * taken from many threads at once as libmicrohttpd's threads take it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "http_internal.h"

enum { THREADS = 8, TAKES_PER_THREAD = 20000, RATE = 50, BURST = 100 };

typedef struct {
	http_limiter *limiter;
	unsigned served;
} taker;

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *take_many(void *arg)
{
	taker *t = arg;
	struct sockaddr_in client = {.sin_family = AF_INET,
				     .sin_addr.s_addr = htonl(0x7f000001)};
	unsigned retry_after_s;

	for (int i = 0; i < TAKES_PER_THREAD; i++)
		if (http_limiter_take(t->limiter, (struct sockaddr *)&client,
				      &retry_after_s))
			t->served++;
	return NULL;
}

/* Checks that one client's requests from many threads get at most the
 * burst plus the rate over the time they took. */
static void limit_holds_across_threads(void **state)
{
	pthread_t threads[THREADS];
	taker takers[THREADS];
	http_limiter *limiter = NULL;
	unsigned served = 0;
	double started, elapsed;

	(void)state;
	assert_int_equal(http_limiter_new(RATE, BURST, &limiter), CM_OK);
	started = now_seconds();
	for (int i = 0; i < THREADS; i++) {
		takers[i] = (taker){.limiter = limiter};
		assert_int_equal(pthread_create(&threads[i], NULL, take_many,
						&takers[i]),
				 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		served += takers[i].served;
	}
	elapsed = now_seconds() - started;
	http_limiter_free(&limiter);
	assert_true(served >= BURST);
	assert_true(served <= BURST + (unsigned)(elapsed * RATE) + 1);
}

/* Takes `count` tokens for addr; returns how many were granted. */
static unsigned take_count(http_limiter *limiter, const struct sockaddr *addr,
			   unsigned count)
{
	unsigned granted = 0, retry_after_s;

	for (unsigned i = 0; i < count; i++)
		if (http_limiter_take(limiter, addr, &retry_after_s))
			granted++;
	return granted;
}

/* Checks that an IPv4 client of a dual-stack socket has the bucket of
 * its IPv4 address, not one shared by every IPv4 client. */
static void mapped_ipv4_own_bucket(void **state)
{
	struct sockaddr_in6 first = {.sin6_family = AF_INET6};
	struct sockaddr_in6 second = {.sin6_family = AF_INET6};
	struct sockaddr_in plain = {.sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(0x7f000001)};
	http_limiter *limiter = NULL;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1",
				   &first.sin6_addr),
			 1);
	assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.2",
				   &second.sin6_addr),
			 1);
	/* No refill, so that the counts do not depend on time. */
	assert_int_equal(http_limiter_new(0, 5, &limiter), CM_OK);
	assert_int_equal(take_count(limiter, (struct sockaddr *)&first, 10), 5);
	assert_int_equal(take_count(limiter, (struct sockaddr *)&second, 10),
			 5);
	assert_int_equal(take_count(limiter, (struct sockaddr *)&plain, 10), 0);
	http_limiter_free(&limiter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(limit_holds_across_threads),
		cmocka_unit_test(mapped_ipv4_own_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
