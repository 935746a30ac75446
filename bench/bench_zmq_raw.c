/*
 * bench_zmq_raw - the ZeroMQ and BLAKE2b ceilings for a media transfer.
 *
 * Moves BYTES over tcp://127.0.0.1 from a ROUTER to a DEALER in
 * CM_CHUNK_SIZE replies, the way a node fetches media: the DEALER requests
 * chunk i (an 8-byte big-endian index), the ROUTER replies with the chunk,
 * and CM_WIRE_CHUNKS_INFLIGHT requests are kept outstanding. Each side has
 * its own ZeroMQ context (one I/O thread each) and the node's socket
 * limits. The transfer runs once with CURVE and once without. Then it
 * hashes BYTES in CM_CHUNK_SIZE blocks with crypto_generichash (BLAKE2b-256,
 * the chunk hash) on one thread.
 *
 * usage: bench_zmq_raw BYTES
 * prints: "mb_per_sec <curve> <plain> <blake2b> <cpu>", where MB is 10^6
 * bytes and cpu is the CPU time in seconds that both sides of the CURVE
 * transfer used together (all threads, user and system).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>
#include <sys/resource.h>

#include <sodium.h>
#include <zmq.h>

#include "cm_limits.h"

#define Z85_KEY_LEN 41 /* 40 Z85 characters and a NUL */

struct keys {
	char server_public[Z85_KEY_LEN];
	char server_secret[Z85_KEY_LEN];
	char client_public[Z85_KEY_LEN];
	char client_secret[Z85_KEY_LEN];
};

struct server {
	void *ctx;
	void *router;
	const uint8_t *chunk;
	uint64_t chunks;
	int failed;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sets the limits node_socket_defaults() gives every node socket. */
static int set_node_limits(void *sock)
{
	int64_t max = CM_WIRE_MSG_MAX;
	int hwm = CM_WIRE_HWM, linger = 0;

	return zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) ||
	       zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	       zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	       zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
}

/* Returns the CPU time this process used so far, in seconds. */
static double cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0.0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t read_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void write_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Serves s->chunks requests, each with the same chunk, then returns. */
static void *serve(void *arg)
{
	struct server *s = arg;
	uint8_t identity[256], request[16];

	for (uint64_t served = 0; served < s->chunks; served++) {
		int id_len = zmq_recv(s->router, identity, sizeof(identity), 0);
		int req_len = zmq_recv(s->router, request, sizeof(request), 0);

		if (id_len <= 0 || id_len > (int)sizeof(identity) ||
		    req_len != 8 || read_be64(request) >= s->chunks) {
			fprintf(stderr, "bench_zmq_raw: invalid request %" PRIu64
				": %s\n", served, zmq_strerror(errno));
			s->failed = 1;
			return NULL;
		}
		if (zmq_send(s->router, identity, (size_t)id_len,
			     ZMQ_SNDMORE) < 0 ||
		    zmq_send(s->router, s->chunk, CM_CHUNK_SIZE, 0) < 0) {
			fprintf(stderr, "bench_zmq_raw: reply failed: %s\n",
				zmq_strerror(errno));
			s->failed = 1;
			return NULL;
		}
	}
	return NULL;
}

static int send_request(void *dealer, uint64_t index)
{
	uint8_t request[8];

	write_be64(request, index);
	return zmq_send(dealer, request, sizeof(request), 0) < 0 ? -1 : 0;
}

/* Fetches `chunks` chunks over `dealer` with CM_WIRE_CHUNKS_INFLIGHT
 * requests outstanding. Returns 0, or -1 on a failed or short reply. */
static int fetch(void *dealer, uint64_t chunks)
{
	uint64_t requested = 0, received = 0;
	zmq_msg_t reply;
	int rc = -1;

	zmq_msg_init(&reply);
	while (requested < chunks && requested < CM_WIRE_CHUNKS_INFLIGHT)
		if (send_request(dealer, requested++))
			goto out;
	while (received < chunks) {
		if (zmq_msg_recv(&reply, dealer, 0) != CM_CHUNK_SIZE) {
			fprintf(stderr, "bench_zmq_raw: reply %" PRIu64
				" is not one chunk: %s\n", received,
				zmq_strerror(errno));
			goto out;
		}
		received++;
		if (requested < chunks && send_request(dealer, requested++))
			goto out;
	}
	rc = 0;
out:
	zmq_msg_close(&reply);
	return rc;
}

static int set_curve(void *router, void *dealer, const struct keys *k)
{
	int on = 1;

	return zmq_setsockopt(router, ZMQ_CURVE_SERVER, &on, sizeof(on)) ||
	       zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, k->server_secret,
			      Z85_KEY_LEN - 1) ||
	       zmq_setsockopt(dealer, ZMQ_CURVE_SERVERKEY, k->server_public,
			      Z85_KEY_LEN - 1) ||
	       zmq_setsockopt(dealer, ZMQ_CURVE_PUBLICKEY, k->client_public,
			      Z85_KEY_LEN - 1) ||
	       zmq_setsockopt(dealer, ZMQ_CURVE_SECRETKEY, k->client_secret,
			      Z85_KEY_LEN - 1);
}

/* Binds the ROUTER to a free loopback port and connects the DEALER. */
static int connect_pair(void *router, void *dealer)
{
	char endpoint[256];
	size_t len = sizeof(endpoint);

	if (zmq_bind(router, "tcp://127.0.0.1:*") ||
	    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &len) ||
	    zmq_connect(dealer, endpoint))
		return -1;
	return 0;
}

/* Transfers `chunks` chunks once. Returns MB/s, or a negative value on
 * failure. */
static double run_transfer(const uint8_t *chunk, uint64_t chunks,
			   const struct keys *curve)
{
	struct server s = {.chunk = chunk, .chunks = chunks};
	void *client_ctx = zmq_ctx_new(), *dealer = NULL;
	pthread_t thread;
	int started = 0;
	double start, mbps = -1.0;

	s.ctx = zmq_ctx_new();
	if (!s.ctx || !client_ctx)
		goto out;
	s.router = zmq_socket(s.ctx, ZMQ_ROUTER);
	dealer = zmq_socket(client_ctx, ZMQ_DEALER);
	if (!s.router || !dealer || set_node_limits(s.router) ||
	    set_node_limits(dealer) ||
	    (curve && set_curve(s.router, dealer, curve)) ||
	    connect_pair(s.router, dealer)) {
		fprintf(stderr, "bench_zmq_raw: socket setup failed: %s\n",
			zmq_strerror(errno));
		goto out;
	}
	if (pthread_create(&thread, NULL, serve, &s) != 0)
		goto out;
	started = 1;

	start = now_s();
	if (fetch(dealer, chunks) == 0)
		mbps = (double)chunks * CM_CHUNK_SIZE / 1e6 /
		       (now_s() - start);
out:
	if (dealer)
		zmq_close(dealer);
	if (client_ctx)
		zmq_ctx_term(client_ctx);
	if (started) {
		/* A failed fetch leaves the server blocked in a receive, and
		 * terminating its context makes that receive return. */
		if (mbps < 0)
			zmq_ctx_shutdown(s.ctx);
		pthread_join(thread, NULL);
		if (s.failed)
			mbps = -1.0;
	}
	if (s.router)
		zmq_close(s.router);
	if (s.ctx)
		zmq_ctx_term(s.ctx);
	return mbps;
}

/* Hashes `chunks` blocks of CM_CHUNK_SIZE bytes. Returns MB/s. */
static double run_hash(const uint8_t *chunk, uint64_t chunks)
{
	uint8_t hash[crypto_generichash_BYTES];
	double start = now_s(), seconds;

	for (uint64_t i = 0; i < chunks; i++) {
		crypto_generichash(hash, sizeof(hash), chunk, CM_CHUNK_SIZE,
				   NULL, 0);
	}
	seconds = now_s() - start;
	return (double)chunks * CM_CHUNK_SIZE / 1e6 / seconds;
}

int main(int argc, char **argv)
{
	struct keys k;
	uint8_t *chunk = NULL;
	unsigned long long bytes;
	uint64_t chunks;
	char *end;
	double curve_mbps, plain_mbps, hash_mbps, curve_cpu;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: bench_zmq_raw BYTES\n");
		return 2;
	}
	errno = 0;
	bytes = strtoull(argv[1], &end, 10);
	if (errno || *end || bytes < CM_CHUNK_SIZE ||
	    bytes > CM_MEDIA_SIZE_MAX) {
		fprintf(stderr, "bench_zmq_raw: invalid BYTES '%s': expected "
			"%d to %llu\n", argv[1], CM_CHUNK_SIZE,
			(unsigned long long)CM_MEDIA_SIZE_MAX);
		return 2;
	}
	chunks = (bytes + CM_CHUNK_SIZE - 1) / CM_CHUNK_SIZE;

	if (sodium_init() < 0 ||
	    zmq_curve_keypair(k.server_public, k.server_secret) ||
	    zmq_curve_keypair(k.client_public, k.client_secret)) {
		fprintf(stderr, "bench_zmq_raw: libsodium or CURVE keys "
			"failed to initialise\n");
		return 1;
	}
	chunk = malloc(CM_CHUNK_SIZE);
	if (!chunk)
		goto out;
	randombytes_buf(chunk, CM_CHUNK_SIZE);

	curve_cpu = cpu_s();
	curve_mbps = run_transfer(chunk, chunks, &k);
	curve_cpu = cpu_s() - curve_cpu;
	plain_mbps = run_transfer(chunk, chunks, NULL);
	if (curve_mbps < 0 || plain_mbps < 0)
		goto out;
	hash_mbps = run_hash(chunk, chunks);
	printf("mb_per_sec %.1f %.1f %.1f %.2f\n", curve_mbps, plain_mbps,
	       hash_mbps, curve_cpu);
	rc = 0;
out:
	free(chunk);
	return rc;
}
