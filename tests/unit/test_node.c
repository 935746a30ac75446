/* Unit tests of node/ peer discipline: token buckets, scores, the ban
 * table, allow-list files and the ZAP handler. Also of peers' clock
 * offsets, the per-peer chunk request timeout, the threads that verify
 * and store records, and the threads that check and store media chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "node_internal.h"
#include "proto_media.h"

#define T0 1000000 /* a monotonic start time, in ms */

static void bucket_takes_burst_then_rate(void **state)
{
	node_bucket b;

	(void)state;
	node_bucket_init(&b, 100, 200, T0);
	for (int i = 0; i < 200; i++)
		assert_true(node_bucket_take(&b, 1, T0));
	assert_false(node_bucket_take(&b, 1, T0));

	/* 100 tokens a second: one every 10 ms. */
	assert_false(node_bucket_take(&b, 1, T0 + 9));
	assert_true(node_bucket_take(&b, 1, T0 + 10));
	assert_false(node_bucket_take(&b, 1, T0 + 10));
	assert_true(node_bucket_take(&b, 5, T0 + 60));
	assert_false(node_bucket_take(&b, 1, T0 + 60));
}

static void bucket_refill_stops_at_burst(void **state)
{
	node_bucket b;

	(void)state;
	node_bucket_init(&b, 1000, 50, T0);
	assert_true(node_bucket_take(&b, 50, T0));
	assert_true(node_bucket_take(&b, 50, T0 + 3600 * 1000ULL));
	assert_false(node_bucket_take(&b, 1, T0 + 3600 * 1000ULL));
	assert_false(node_bucket_take(&b, 51, T0 + 7200 * 1000ULL));
}

static void bucket_large_rates_no_overflow(void **state)
{
	node_bucket b;

	(void)state;
	node_bucket_init(&b, CM_PEER_BYTES_MAX, 2 * CM_PEER_BYTES_MAX, T0);
	assert_true(node_bucket_take(&b, 2 * CM_PEER_BYTES_MAX, T0));
	assert_false(node_bucket_take(&b, CM_PEER_BYTES_MAX, T0 + 999));
	assert_true(node_bucket_take(&b, CM_PEER_BYTES_MAX, T0 + 1000));
	assert_true(node_bucket_take(&b, 2 * CM_PEER_BYTES_MAX,
				     T0 + 1000 + 365ULL * 86400 * 1000));
}

/* A charge goes into debt; the wait is how long the refill takes. */
static void bucket_debt_sets_wait(void **state)
{
	node_bucket b;

	(void)state;
	node_bucket_init(&b, 1000, 1000, T0);
	assert_int_equal(node_bucket_wait_ms(&b, T0), 0);
	node_bucket_charge(&b, 1500, T0);
	assert_int_equal(node_bucket_wait_ms(&b, T0), 501);
	assert_int_equal(node_bucket_wait_ms(&b, T0 + 500), 1);
	assert_int_equal(node_bucket_wait_ms(&b, T0 + 501), 0);
	assert_true(node_bucket_take(&b, 1, T0 + 501));
}

static void score_falls_and_recovers(void **state)
{
	node_score s;
	int64_t points = 0;

	(void)state;
	node_score_init(&s, T0);
	assert_int_equal(node_score_points(&s, T0), CM_PEER_SCORE_MAX);
	for (int i = 0; i < CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID; i++)
		points = node_score_lower(&s, CM_PEER_PENALTY_INVALID, T0);
	assert_int_equal(points, 0);

	/* CM_PEER_SCORE_RECOVER points a second, up to the maximum. */
	assert_int_equal(node_score_points(&s, T0 + 1000),
			 CM_PEER_SCORE_RECOVER);
	assert_int_equal(node_score_points(&s, T0 + 3600 * 1000ULL),
			 CM_PEER_SCORE_MAX);
}

/* Penalties 10 ms apart still let the score recover in between: the
 * fractions of a point are kept. */
static void score_recovers_between_penalties(void **state)
{
	/* 100 penalties of 1 point, and 99 intervals of 10 ms that recover
	 * a tenth of a point each (9.9 points, rounded down). */
	const int64_t expected = CM_PEER_SCORE_MAX - 100 +
				 99 * CM_PEER_SCORE_RECOVER / 100;
	node_score s;
	int64_t points = 0;

	(void)state;
	node_score_init(&s, T0);
	for (int i = 1; i <= 100; i++)
		points = node_score_lower(&s, 1, T0 + 10 * (uint64_t)i);
	assert_int_equal(points, expected);
}

/* A peer over its limit all the time, charged once a second, reaches 0
 * after SCORE_MAX / (OVERRUN - RECOVER) seconds. */
static void score_overruns_ban_in_time(void **state)
{
	const int expected = CM_PEER_SCORE_MAX /
			     (CM_PEER_PENALTY_OVERRUN - CM_PEER_SCORE_RECOVER);
	node_score s;
	int seconds = 0;

	(void)state;
	node_score_init(&s, T0);
	while (node_score_lower(&s, CM_PEER_PENALTY_OVERRUN,
				T0 + 1000 * (uint64_t)seconds) > 0)
		seconds++;
	assert_in_range(seconds, expected - 1, expected + 1);
}

static node_bans bans;

static void bans_double_up_to_max(void **state)
{
	uint8_t key[NODE_KEY_LEN] = {1};
	const node_ban *b;
	uint64_t now = T0;

	(void)state;
	node_bans_init(&bans, 1000, 10000);
	assert_null(node_bans_active(&bans, NODE_BAN_KEY, key, NULL, now));
	b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, now);
	assert_int_equal(b->strikes, 1);
	assert_int_equal(b->length_ms, 1000);
	assert_non_null(node_bans_active(&bans, NODE_BAN_KEY, key, NULL,
					 now + 999));
	assert_null(node_bans_active(&bans, NODE_BAN_KEY, key, NULL,
				     now + 1000));

	now += 5000;
	b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, now);
	assert_int_equal(b->strikes, 2);
	assert_int_equal(b->length_ms, 2000);
	b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, now);
	assert_int_equal(b->length_ms, 4000);
	b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, now);
	assert_int_equal(b->length_ms, 8000);
	b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, now);
	assert_int_equal(b->strikes, 5);
	assert_int_equal(b->length_ms, 10000);
	for (int i = 0; i < 100; i++)
		b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, now);
	assert_int_equal(b->length_ms, 10000);
}

static void bans_keys_and_addresses_apart(void **state)
{
	uint8_t key[NODE_KEY_LEN] = {2}, other[NODE_KEY_LEN] = {3};

	(void)state;
	node_bans_init(&bans, 1000, 10000);
	node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, T0);
	for (int i = 0; i < CM_BAN_IP_STRIKES; i++)
		node_bans_strike(&bans, NODE_BAN_IP, NULL, "127.0.0.2", T0);
	assert_non_null(node_bans_active(&bans, NODE_BAN_KEY, key, NULL, T0));
	assert_null(node_bans_active(&bans, NODE_BAN_KEY, other, NULL, T0));
	assert_non_null(node_bans_active(&bans, NODE_BAN_IP, NULL, "127.0.0.2",
					 T0));
	assert_null(node_bans_active(&bans, NODE_BAN_IP, NULL, "127.0.0.1",
				     T0));
	assert_null(node_bans_active(&bans, NODE_BAN_IP, NULL, "127.0.0.20",
				     T0));
}

/* An address gets strikes from the start but is banned only from its
 * CM_BAN_IP_STRIKES-th on, for the base time, then doubling. */
static void bans_address_from_second_strike(void **state)
{
	const char *ip = "192.0.2.7";
	const node_ban *b;

	(void)state;
	node_bans_init(&bans, 1000, 10000);
	for (int i = 1; i < CM_BAN_IP_STRIKES; i++) {
		b = node_bans_strike(&bans, NODE_BAN_IP, NULL, ip, T0);
		assert_int_equal(b->strikes, i);
		assert_int_equal(b->length_ms, 0);
		assert_null(node_bans_active(&bans, NODE_BAN_IP, NULL, ip, T0));
	}
	b = node_bans_strike(&bans, NODE_BAN_IP, NULL, ip, T0);
	assert_int_equal(b->length_ms, 1000);
	assert_non_null(node_bans_active(&bans, NODE_BAN_IP, NULL, ip,
					 T0 + 999));
	b = node_bans_strike(&bans, NODE_BAN_IP, NULL, ip, T0 + 2000);
	assert_int_equal(b->strikes, CM_BAN_IP_STRIKES + 1);
	assert_int_equal(b->length_ms, 2000);
}

/* Bans of more rotated keys than the table holds do not push out the
 * strike of the address they came from, and an address's strike without
 * a ban makes room only after entries without a running ban. */
static void bans_address_strikes_survive_key_rotation(void **state)
{
	uint8_t key[NODE_KEY_LEN] = {0};
	const char *ip = "198.51.100.9";
	char other[NODE_IP_MAX];
	const node_ban *b;

	(void)state;
	node_bans_init(&bans, 100000, 1000000);
	node_bans_strike(&bans, NODE_BAN_IP, NULL, ip, T0);
	for (uint32_t i = 0; i < 4 * CM_BANS_MAX; i++) {
		memcpy(key, &i, sizeof(i));
		node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, T0 + i);
	}
	b = node_bans_strike(&bans, NODE_BAN_IP, NULL, ip, T0 + 5000);
	assert_int_equal(b->strikes, 2);
	assert_non_null(node_bans_active(&bans, NODE_BAN_IP, NULL, ip,
					 T0 + 5001));

	/* A full address part keeps the running ban of ip. */
	for (uint32_t i = 0; i < 2 * CM_BANS_MAX; i++) {
		snprintf(other, sizeof(other), "10.%u.%u.%u", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255);
		node_bans_strike(&bans, NODE_BAN_IP, NULL, other, T0 + 6000);
	}
	assert_non_null(node_bans_active(&bans, NODE_BAN_IP, NULL, ip,
					 T0 + 6001));
}

/* IPv6 addresses count by their /64: two hosts of one /64 share it. */
static void bans_ipv6_counts_per_64(void **state)
{
	(void)state;
	node_bans_init(&bans, 1000, 10000);
	node_bans_strike(&bans, NODE_BAN_IP, NULL, "2001:db8:1:2::1", T0);
	node_bans_strike(&bans, NODE_BAN_IP, NULL, "2001:db8:1:2:ffff::7",
			 T0);
	assert_non_null(node_bans_active(&bans, NODE_BAN_IP, NULL,
					 "2001:db8:1:2::99", T0 + 1));
	assert_null(node_bans_active(&bans, NODE_BAN_IP, NULL,
				     "2001:db8:1:3::1", T0 + 1));
}

/* Strikes are forgotten CM_BAN_FORGET_MS after the ban ended. */
static void bans_strikes_forgotten(void **state)
{
	uint8_t key[NODE_KEY_LEN] = {4};
	const node_ban *b;

	(void)state;
	node_bans_init(&bans, 1000, 10000);
	node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, T0);
	b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL,
			     T0 + 1000 + CM_BAN_FORGET_MS - 1);
	assert_int_equal(b->strikes, 2);
	b = node_bans_strike(&bans, NODE_BAN_KEY, key, NULL,
			     b->until + CM_BAN_FORGET_MS);
	assert_int_equal(b->strikes, 1);
}

/* A full table makes room with the ban that ended first, and never grows:
 * rotating keys costs the node no memory. */
static void bans_table_full_evicts_oldest(void **state)
{
	uint8_t key[NODE_KEY_LEN] = {0};
	uint8_t first[NODE_KEY_LEN] = {0, 0, 0, 0, 0xff};
	uint8_t last[NODE_KEY_LEN] = {0, 0, 0, 0, 0xfe};

	(void)state;
	node_bans_init(&bans, 100000, 1000000);
	node_bans_strike(&bans, NODE_BAN_KEY, first, NULL, T0);
	for (uint32_t i = 1; i < CM_BANS_MAX; i++) {
		memcpy(key, &i, sizeof(i));
		node_bans_strike(&bans, NODE_BAN_KEY, key, NULL, T0 + i);
	}
	assert_non_null(node_bans_active(&bans, NODE_BAN_KEY, first, NULL,
					 T0 + 1));
	node_bans_strike(&bans, NODE_BAN_KEY, last, NULL, T0 + CM_BANS_MAX);
	assert_null(node_bans_active(&bans, NODE_BAN_KEY, first, NULL,
				     T0 + CM_BANS_MAX));
	assert_non_null(node_bans_active(&bans, NODE_BAN_KEY, last, NULL,
					 T0 + CM_BANS_MAX));
	memcpy(key, &(uint32_t){1}, sizeof(uint32_t));
	assert_non_null(node_bans_active(&bans, NODE_BAN_KEY, key, NULL,
					 T0 + CM_BANS_MAX));
}

static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/clipmesh-node.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	fclose(f);
}

#define KEY_A "aa00000000000000000000000000000000000000000000000000000000000001"
#define KEY_B "BB00000000000000000000000000000000000000000000000000000000000002"
#define KEY_C "cc00000000000000000000000000000000000000000000000000000000000003"

static void allow_file_read(void **state)
{
	char path[128];
	uint8_t *keys = NULL;
	size_t n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/allow", dir);
	write_text(path, "# mirrors we trust\n"
			 KEY_A "\n"
			 "\n"
			 "   " KEY_B "   # the second\r\n"
			 "clipmesh://" KEY_C "@node3.example.org:7701\n");
	assert_int_equal(node_allow_read(path, &keys, &n), CM_OK);
	assert_int_equal(n, 3);
	assert_int_equal(keys[0], 0xaa);
	assert_int_equal(keys[31], 0x01);
	assert_int_equal(keys[32], 0xbb);
	assert_int_equal(keys[64], 0xcc);
	assert_int_equal(node_allow_add(KEY_A, &keys, &n), CM_OK);
	assert_int_equal(n, 4);
	free(keys);
}

static void allow_file_bad_line_named(void **state)
{
	char path[128];
	uint8_t *keys = NULL;
	size_t n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/bad", dir);
	write_text(path, KEY_A "\n# fine\n" KEY_A "0\n");
	assert_int_equal(node_allow_read(path, &keys, &n), CM_ERR_BAD_KEY);
	assert_non_null(strstr(cm_err_detail(), "line 3"));
	free(keys);
	keys = NULL;
	n = 0;

	assert_int_equal(node_allow_add("xyz", &keys, &n), CM_ERR_BAD_KEY);
	assert_int_equal(n, 0);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(node_allow_read(path, &keys, &n), CM_ERR_NOT_FOUND);
	assert_null(keys);
}

static void allow_file_long_line_rejected(void **state)
{
	char path[128], *text;
	uint8_t *keys = NULL;
	size_t n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/long", dir);
	text = malloc(CM_ALLOW_LINE_MAX + 10);
	assert_non_null(text);
	memset(text, '#', CM_ALLOW_LINE_MAX + 8);
	text[CM_ALLOW_LINE_MAX + 8] = '\n';
	text[CM_ALLOW_LINE_MAX + 9] = '\0';
	write_text(path, text);
	free(text);
	assert_int_equal(node_allow_read(path, &keys, &n), CM_ERR_TOO_LONG);
	assert_non_null(strstr(cm_err_detail(), "line 1"));
	free(keys);
}

/* The node must not start when it cannot bind its ZAP handler, because
 * libzmq lets every CURVE client in when no handler replies. A second
 * handler in the same context is the way to make the bind fail. */
static void zap_open_fails_when_taken(void **state)
{
	void *ctx = zmq_ctx_new(), *first = NULL, *second = NULL;

	(void)state;
	assert_non_null(ctx);
	assert_int_equal(node_zap_open(ctx, &first), CM_OK);
	assert_non_null(first);
	assert_int_equal(node_zap_open(ctx, &second), CM_ERR_ZMQ);
	assert_null(second);
	assert_non_null(strstr(cm_err_detail(), "does not start"));
	zmq_close(first);
	zmq_ctx_term(ctx);
}

/* A node with two inbound links from 10.0.0.1 and no other state. */
static node *zap_node(void)
{
	node *n = calloc(1, sizeof(*n));

	assert_non_null(n);
	node_bans_init(&n->bans, 1000, 10000);
	for (int i = 0; i < 2; i++) {
		n->links[i].used = true;
		n->links[i].dir = NODE_LINK_IN;
		n->links[i].key[0] = (uint8_t)(0x10 + i);
		n->links[i].last_rx = cm_mono_ms();
		strcpy(n->links[i].endpoint, "10.0.0.1");
	}
	return n;
}

static void zap_check_verdicts(void **state)
{
	uint8_t key[NODE_KEY_LEN] = {0x42}, listed[NODE_KEY_LEN] = {0x43};
	uint64_t now = cm_mono_ms();
	node *n = zap_node();

	(void)state;
	assert_int_equal(node_zap_check(n, key, "10.0.0.1"), NODE_ZAP_ACCEPT);

	for (int i = 0; i < CM_BAN_IP_STRIKES; i++)
		node_bans_strike(&n->bans, NODE_BAN_IP, NULL, "10.0.0.9", now);
	assert_int_equal(node_zap_check(n, key, "10.0.0.9"),
			 NODE_ZAP_BANNED_IP);
	node_bans_strike(&n->bans, NODE_BAN_KEY, key, NULL, now);
	assert_int_equal(node_zap_check(n, key, "10.0.0.1"),
			 NODE_ZAP_BANNED_KEY);

	n->allow_only = true;
	n->allow = listed;
	n->n_allow = 1;
	assert_int_equal(node_zap_check(n, key, "10.0.0.1"),
			 NODE_ZAP_NOT_ALLOWED);
	assert_int_equal(node_zap_check(n, listed, "10.0.0.1"),
			 NODE_ZAP_ACCEPT);
	n->allow = NULL;
	free(n);
}

/* The links of one address are capped, but a key that reconnects
 * replaces its own link and is not counted against itself, and a silent
 * link is not counted. */
static void zap_check_address_cap(void **state)
{
	uint8_t key[NODE_KEY_LEN] = {0x50};
	node *n = zap_node();

	(void)state;
	for (int i = 2; i < CM_PEER_LINKS_PER_IP; i++) {
		n->links[i] = n->links[0];
		n->links[i].key[0] = (uint8_t)(0x10 + i);
	}
	assert_int_equal(node_links_from_ip(n, "10.0.0.1", NULL),
			 CM_PEER_LINKS_PER_IP);
	assert_int_equal(node_zap_check(n, key, "10.0.0.1"),
			 NODE_ZAP_ADDRESS_FULL);
	assert_int_equal(node_zap_check(n, key, "10.0.0.2"), NODE_ZAP_ACCEPT);
	assert_int_equal(node_zap_check(n, n->links[3].key, "10.0.0.1"),
			 NODE_ZAP_ACCEPT);

	/* A link silent for longer than two ping intervals is not counted. */
	n->links[0].last_rx -= 2 * CM_PING_INTERVAL_MS + 1;
	assert_int_equal(node_zap_check(n, key, "10.0.0.1"), NODE_ZAP_ACCEPT);
	free(n);
}

/* The wall-clock time of the clock tests: 2026-12-04T15:47:00Z. */
#define WALL_MS 1796399220000ULL

/* An offset is the peer's time minus ours at receipt, plus half the
 * round trip that the message took. */
static void clock_offset_samples(void **state)
{
	(void)state;
	assert_int_equal(node_clock_offset(WALL_MS, WALL_MS, 0), 0);
	assert_int_equal(node_clock_offset(WALL_MS + 120000, WALL_MS, 0),
			 120000);
	assert_int_equal(node_clock_offset(WALL_MS - 90000, WALL_MS, 0),
			 -90000);
	/* The reply spent about 20 ms of a 40 ms round trip on the way. */
	assert_int_equal(node_clock_offset(WALL_MS, WALL_MS, 40), 20);
	assert_int_equal(node_clock_offset(WALL_MS - 20, WALL_MS, 40), 0);
	assert_int_equal(node_clock_offset(WALL_MS, WALL_MS, 41), 20);
}

/* Whatever time a peer claims, the offset stays bounded, so that sums
 * and the JSON of the status cannot overflow. */
static void clock_offset_bounded(void **state)
{
	int64_t ahead = node_clock_offset(UINT64_MAX, 0, UINT64_MAX);
	int64_t behind = node_clock_offset(0, UINT64_MAX, 0);

	(void)state;
	assert_true(ahead > 0);
	assert_true(ahead <= INT64_MAX / 2);
	assert_true(behind < 0);
	assert_true(behind >= -(INT64_MAX / 2));
}

/* Returns a zeroed node whose config shifts its clock by shift_ms; the
 * caller frees the node and the config. */
static node *clock_node(int64_t shift_ms)
{
	node_config *cfg = calloc(1, sizeof(*cfg));
	node *n = calloc(1, sizeof(*n));

	assert_non_null(cfg);
	assert_non_null(n);
	cfg->test_clock_offset_ms = shift_ms;
	n->cfg = cfg;
	return n;
}

static void clock_node_free(node *n)
{
	free((void *)n->cfg);
	free(n);
}

/* test_clock_offset moves the time the node sends and compares with. */
static void clock_now_shifted(void **state)
{
	node *ahead = clock_node(120000), *behind = clock_node(-120000);
	uint64_t before = cm_now_ms(), a, b, after;

	(void)state;
	a = node_clock_now(ahead);
	b = node_clock_now(behind);
	after = cm_now_ms();
	assert_true(a >= before + 120000);
	assert_true(a <= after + 120000);
	assert_true(b >= before - 120000);
	assert_true(b <= after - 120000);
	clock_node_free(ahead);
	clock_node_free(behind);
}

/* The largest sample of the current and the previous window is the
 * offset, because a delayed message only ever makes a peer look behind. */
static void clock_window_keeps_max(void **state)
{
	node_clock c = {0};

	(void)state;
	node_clock_add_sample(&c, 100, T0);
	assert_true(c.known);
	assert_int_equal(c.offset_ms, 100);
	node_clock_add_sample(&c, 50, T0 + 2000);
	assert_int_equal(c.offset_ms, 100);
	node_clock_add_sample(&c, 300, T0 + 4000);
	assert_int_equal(c.offset_ms, 300);

	/* A new window starts; the previous one's 300 still counts. */
	node_clock_add_sample(&c, 10, T0 + CM_CLOCK_WINDOW_MS);
	assert_int_equal(c.offset_ms, 300);
	node_clock_add_sample(&c, -500, T0 + CM_CLOCK_WINDOW_MS + 2000);
	assert_int_equal(c.offset_ms, 300);

	/* Two windows on, only the samples since the last window count. */
	node_clock_add_sample(&c, 20, T0 + 2 * CM_CLOCK_WINDOW_MS);
	assert_int_equal(c.offset_ms, 20);
	node_clock_add_sample(&c, -40, T0 + 3 * CM_CLOCK_WINDOW_MS);
	assert_int_equal(c.offset_ms, 20);
	node_clock_add_sample(&c, -60, T0 + 4 * CM_CLOCK_WINDOW_MS);
	assert_int_equal(c.offset_ms, -40);
}

/* The side that sent the first HELLO measures the round trip and adds
 * half of it. Later PINGs add samples with that round trip. */
static void clock_hello_then_ping(void **state)
{
	node *n = clock_node(0);
	node_link *l = &n->links[0];
	proto_wire_msg m = {.type = PROTO_WIRE_HELLO, .reply = true};
	int64_t offset;

	(void)state;
	node_clock_hello_sent(l, false, cm_mono_ms() - 40);
	m.time_ms = cm_now_ms() + 120000;
	node_clock_on_hello(n, l, &m, false);
	assert_true(l->clock.known);
	assert_true(l->clock.rtt_ms >= 40);
	assert_true(l->clock.rtt_ms < 40 + 1000);
	assert_int_equal(l->clock.asked_ms, 0);
	offset = l->clock.offset_ms;
	assert_true(offset >= 120000 + 20 - 1000);
	assert_true(offset <= 120000 + 20 + 1000);
	assert_true(l->clock.warned);

	/* A PING that shows the peer behind, in the same window: the larger
	 * sample of the HELLO stays the offset. */
	m = (proto_wire_msg){.type = PROTO_WIRE_PING};
	m.time_ms = cm_now_ms() - 1000;
	node_clock_on_ping(n, l, &m);
	assert_int_equal(l->clock.offset_ms, offset);
	assert_true(l->clock.window_max_ms == offset);
	assert_true(l->clock.warned);

	/* Two windows later the PING samples alone count, and the node
	 * notes that the peer is back within the limit. */
	l->clock.window_start -= 2 * CM_CLOCK_WINDOW_MS;
	node_clock_on_ping(n, l, &m);
	l->clock.window_start -= CM_CLOCK_WINDOW_MS;
	node_clock_on_ping(n, l, &m);
	offset = l->clock.offset_ms;
	assert_true(offset >= -1000 + 20 - 1000);
	assert_true(offset <= -1000 + 20 + 1000);
	assert_false(l->clock.warned);

	/* A first HELLO from the peer on a new connection comes with no
	 * round trip, and the samples and round trip of the old connection
	 * are dropped. */
	m = (proto_wire_msg){.type = PROTO_WIRE_HELLO, .reply = false};
	m.time_ms = cm_now_ms();
	node_clock_on_hello(n, l, &m, false);
	assert_int_equal(l->clock.rtt_ms, 0);
	assert_true(l->clock.offset_ms >= -1000);
	assert_true(l->clock.offset_ms <= 1000);
	clock_node_free(n);
}

static void rto_starts_at_initial(void **state)
{
	node_rto r = {0};

	(void)state;
	assert_int_equal(node_rto_timeout(&r), CM_CHUNK_TIMEOUT_INITIAL_MS);
}

/* Steady 40 ms responses: the timeout converges to the floor. */
static void rto_steady_peer_gets_floor(void **state)
{
	node_rto r = {0};

	(void)state;
	for (int i = 0; i < 50; i++)
		node_rto_sample(&r, 40);
	assert_int_equal(r.srtt_ms, 40);
	assert_int_equal(node_rto_timeout(&r), CM_CHUNK_TIMEOUT_MIN_MS);
}

/* Responses alternating between 500 and 1,500 ms: srtt + 4 deviations
 * lies well above the mean and below the ceiling. */
static void rto_jittery_peer_above_mean(void **state)
{
	node_rto r = {0};
	uint64_t timeout;

	(void)state;
	for (int i = 0; i < 100; i++)
		node_rto_sample(&r, i % 2 ? 1500 : 500);
	timeout = node_rto_timeout(&r);
	assert_in_range(r.srtt_ms, 800, 1200);
	assert_in_range(timeout, 2500, CM_CHUNK_TIMEOUT_MAX_MS - 1);
}

static void rto_slow_peer_capped(void **state)
{
	node_rto r = {0};

	(void)state;
	for (int i = 0; i < 10; i++)
		node_rto_sample(&r, 60000);
	assert_int_equal(node_rto_timeout(&r), CM_CHUNK_TIMEOUT_MAX_MS);
}

/* Each backoff doubles up to the ceiling; a new sample derives the
 * timeout from the measurements again. */
static void rto_backoff_doubles_then_resets(void **state)
{
	node_rto r = {0};

	(void)state;
	for (int i = 0; i < 50; i++)
		node_rto_sample(&r, 40);
	node_rto_backoff(&r);
	assert_int_equal(node_rto_timeout(&r), 2 * CM_CHUNK_TIMEOUT_MIN_MS);
	node_rto_backoff(&r);
	assert_int_equal(node_rto_timeout(&r), 4 * CM_CHUNK_TIMEOUT_MIN_MS);
	for (int i = 0; i < 10; i++)
		node_rto_backoff(&r);
	assert_int_equal(node_rto_timeout(&r), CM_CHUNK_TIMEOUT_MAX_MS);
	node_rto_sample(&r, 40);
	assert_int_equal(node_rto_timeout(&r), CM_CHUNK_TIMEOUT_MIN_MS);
}

/* --- Record writer ------------------------------------------------------ */

/* The wire size of a test clip is about 200 bytes. */
#define WRITER_WIRE_MAX 1024

/* Signed clips and the buffers their proto_signed point into. */
typedef struct writer_clips {
	uint8_t (*wires)[WRITER_WIRE_MAX];
	proto_signed *recs;
	size_t n;
} writer_clips;

/* Signs n clips of one author, 1 ms apart. */
static void writer_clips_make(writer_clips *c, size_t n)
{
	uint8_t pk[PROTO_KEY_LEN], sk[PROTO_SECRET_LEN];
	uint8_t seed[crypto_sign_SEEDBYTES];
	proto_record *r = calloc(1, sizeof(*r));
	uint64_t now = cm_now_ms();

	c->wires = calloc(n, sizeof(*c->wires));
	c->recs = calloc(n, sizeof(*c->recs));
	c->n = n;
	assert_non_null(r);
	assert_non_null(c->wires);
	assert_non_null(c->recs);
	memset(seed, 0x5e, sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
	r->kind = PROTO_KIND_CLIP;
	memcpy(r->author, pk, PROTO_KEY_LEN);
	cm_strlcpy(r->product, "url:https://example.com/kettle", sizeof(r->product));
	cm_strlcpy(r->lang, "en", sizeof(r->lang));
	r->rating = 3;
	r->media[0].size = 1000;
	cm_strlcpy(r->media[0].type, "video/mp4", sizeof(r->media[0].type));
	r->n_media = 1;
	for (size_t i = 0; i < n; i++) {
		uint8_t id[PROTO_ID_LEN];
		size_t len;

		r->created_ms = now - n + i;
		snprintf(r->title, sizeof(r->title), "clip %zu", i);
		crypto_generichash(r->media[0].hash, PROTO_HASH_LEN,
				   (const uint8_t *)r->title, strlen(r->title),
				   NULL, 0);
		assert_int_equal(proto_record_sign(r, sk, c->wires[i],
						   WRITER_WIRE_MAX, &len, id),
				 CM_OK);
		assert_int_equal(proto_record_open(c->wires[i], len,
						   cm_now_ms(), &c->recs[i]),
				 CM_OK);
	}
	free(r);
}

static void writer_clips_free(writer_clips *c)
{
	free(c->wires);
	free(c->recs);
}

/* What the settle callback saw, in call order. */
typedef struct writer_seen {
	size_t groups;
	size_t records;
	size_t stored;
	size_t duplicates;
	size_t failed;                  /* records of failed transactions */
	size_t unlinked;                /* records whose link was forgotten */
	uint8_t unlinked_key[NODE_KEY_LEN]; /* their sender's key, or 0 */
	uint8_t last_id[PROTO_ID_LEN];
} writer_seen;

static void writer_settle(void *ctx, node_link *from, const uint8_t *key,
			  proto_signed *recs, cm_err *results, size_t count,
			  cm_err err, const char *detail)
{
	writer_seen *seen = ctx;

	(void)detail;
	seen->groups++;
	seen->records += count;
	if (from == NULL)
		seen->unlinked += count;
	if (from == NULL && key)
		memcpy(seen->unlinked_key, key, NODE_KEY_LEN);
	for (size_t i = 0; i < count; i++) {
		if (err)
			seen->failed++;
		else if (results[i] == CM_OK)
			seen->stored++;
		else if (results[i] == CM_ERR_DUPLICATE)
			seen->duplicates++;
		memcpy(seen->last_id, recs[i].id, PROTO_ID_LEN);
	}
}

/* Collects until `records` records were settled, or fails after 10 s. */
static void writer_wait(node_record_writer *w, writer_seen *seen,
			size_t records)
{
	uint64_t deadline = cm_mono_ms() + 10000;
	struct pollfd p = {node_record_writer_fd(w), POLLIN, 0};

	while (seen->records < records) {
		if (cm_mono_ms() > deadline)
			fail_msg("%zu of %zu records settled after 10 s",
				 seen->records, records);
		poll(&p, 1, 100);
		node_record_writer_collect(w, writer_settle, seen);
	}
}

static store *writer_store(const char *name)
{
	char path[128];
	store *st = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(store_open(path, &st), CM_OK);
	return st;
}

static void record_writer_lone_record_stored(void **state)
{
	store *st = writer_store("lone");
	node_record_writer *w = NULL;
	writer_seen seen = {0};
	node_link link = {0};
	writer_clips c;
	uint8_t *wire = NULL;
	size_t len;

	(void)state;
	writer_clips_make(&c, 1);
	assert_int_equal(node_record_writer_start(st, &w), CM_OK);
	assert_int_equal(node_record_writer_put(w, &link, NULL, c.recs, 1,
						writer_settle, &seen),
			 CM_OK);

	/* Nothing else arrives, so only the time bound starts the
	 * transaction. */
	writer_wait(w, &seen, 1);
	assert_int_equal(seen.groups, 1);
	assert_int_equal(seen.stored, 1);
	assert_int_equal(seen.unlinked, 0);
	assert_memory_equal(seen.last_id, c.recs[0].id, PROTO_ID_LEN);
	assert_int_equal(store_get(st, c.recs[0].id, &wire, &len), CM_OK);
	assert_int_equal(len, c.recs[0].wire_len);
	free(wire);

	node_record_writer_stop(&w);
	assert_null(w);
	store_close(&st);
	writer_clips_free(&c);
}

static void record_writer_batches_many_messages(void **state)
{
	store *st = writer_store("many");
	node_record_writer *w = NULL;
	writer_seen seen = {0};
	node_link link = {0};
	size_t messages = 3 * CM_INGEST_BATCH_MAX / CM_WIRE_BATCH_MAX + 5;
	size_t total = messages * CM_WIRE_BATCH_MAX;
	uint64_t head = 0;
	writer_clips c;

	(void)state;
	writer_clips_make(&c, total);
	assert_int_equal(node_record_writer_start(st, &w), CM_OK);

	/* More messages than the queue holds: put collects on the way. */
	for (size_t i = 0; i < messages; i++)
		assert_int_equal(node_record_writer_put(
					 w, &link, NULL,
					 c.recs + i * CM_WIRE_BATCH_MAX,
					 CM_WIRE_BATCH_MAX, writer_settle,
					 &seen),
				 CM_OK);
	/* The first message again: every record is a duplicate. */
	assert_int_equal(node_record_writer_put(w, &link, NULL, c.recs,
						CM_WIRE_BATCH_MAX,
						writer_settle, &seen),
			 CM_OK);
	writer_wait(w, &seen, total + CM_WIRE_BATCH_MAX);

	assert_int_equal(seen.groups, messages + 1);
	assert_int_equal(seen.stored, total);
	assert_int_equal(seen.duplicates, CM_WIRE_BATCH_MAX);
	assert_int_equal(seen.failed, 0);
	assert_int_equal(store_log_head(st, &head), CM_OK);
	assert_int_equal(head, total);

	node_record_writer_stop(&w);
	store_close(&st);
	writer_clips_free(&c);
}

static void record_writer_forgets_link(void **state)
{
	store *st = writer_store("forget");
	node_record_writer *w = NULL;
	writer_seen seen = {0};
	node_link gone = {0}, kept = {0};
	writer_clips c;

	(void)state;
	/* The sender's key outlives the link, for its rejections. */
	memset(gone.key, 0xa7, NODE_KEY_LEN);
	writer_clips_make(&c, 3);
	assert_int_equal(node_record_writer_start(st, &w), CM_OK);
	assert_int_equal(node_record_writer_put(w, &gone, NULL, c.recs, 2,
						writer_settle, &seen),
			 CM_OK);
	assert_int_equal(node_record_writer_put(w, &kept, NULL, c.recs + 2, 1,
						writer_settle, &seen),
			 CM_OK);
	node_record_writer_forget(w, &gone);

	writer_wait(w, &seen, 3);
	assert_int_equal(seen.unlinked, 2);
	assert_memory_equal(seen.unlinked_key, gone.key, NODE_KEY_LEN);
	assert_int_equal(seen.stored, 3);

	node_record_writer_stop(&w);
	store_close(&st);
	writer_clips_free(&c);
}

static void record_writer_flush_by_link(void **state)
{
	store *st = writer_store("flush");
	node_record_writer *w = NULL;
	writer_seen seen = {0};
	node_link sender = {0}, other = {0};
	writer_clips c;

	(void)state;
	writer_clips_make(&c, 2);
	assert_int_equal(node_record_writer_start(st, &w), CM_OK);
	assert_int_equal(node_record_writer_put(w, &sender, NULL, c.recs, 2,
						writer_settle, &seen),
			 CM_OK);

	/* No record of `other` is queued: nothing is waited for. */
	node_record_writer_flush(w, &other, writer_settle, &seen);
	assert_int_equal(seen.records, 0);

	/* The sender's records are stored and settled before it returns. */
	node_record_writer_flush(w, &sender, writer_settle, &seen);
	assert_int_equal(seen.records, 2);
	assert_int_equal(seen.stored, 2);

	node_record_writer_stop(&w);
	store_close(&st);
	writer_clips_free(&c);
}

static void record_writer_stop_stores_queued(void **state)
{
	char path[128];
	store *st = writer_store("stop");
	node_record_writer *w = NULL;
	writer_seen seen = {0};
	node_link link = {0};
	writer_clips c;
	bool lacks;

	(void)state;
	writer_clips_make(&c, 1);
	assert_int_equal(node_record_writer_start(st, &w), CM_OK);
	assert_int_equal(node_record_writer_put(w, &link, NULL, c.recs, 1,
						writer_settle, &seen),
			 CM_OK);
	node_record_writer_stop(&w);
	store_close(&st);
	assert_int_equal(seen.records, 0);

	snprintf(path, sizeof(path), "%s/stop", dir);
	assert_int_equal(store_open(path, &st), CM_OK);
	assert_int_equal(store_lacks(st, c.recs[0].id, 1, &lacks), CM_OK);
	assert_false(lacks);
	store_close(&st);
	writer_clips_free(&c);
}

/* --- Record verifier ---------------------------------------------------- */

/* One RECORDS message as the node receives it: the wire bytes of clips
 * [first, first + count) of c in one ZeroMQ message, and the decoded
 * message pointing into it. */
typedef struct verify_msg {
	zmq_msg_t msg;
	proto_wire_msg m;
} verify_msg;

static void verify_msg_make(verify_msg *vm, const writer_clips *c,
			    size_t first, size_t count)
{
	size_t total = 0;
	uint8_t *data;

	for (size_t i = 0; i < count; i++)
		total += c->recs[first + i].wire_len;
	assert_int_equal(zmq_msg_init_size(&vm->msg, total), 0);
	data = zmq_msg_data(&vm->msg);
	memset(&vm->m, 0, sizeof(vm->m));
	vm->m.type = PROTO_WIRE_RECORDS;
	for (size_t i = 0; i < count; i++) {
		size_t len = c->recs[first + i].wire_len;

		memcpy(data, c->wires[first + i], len);
		vm->m.records[i] = data;
		vm->m.record_lens[i] = len;
		data += len;
	}
	vm->m.n_records = count;
}

/* What the verified callback saw, in call order. */
typedef struct verify_seen {
	size_t messages;
	size_t records;
	size_t valid;
	size_t invalid;
	size_t unlinked;                /* records whose link was forgotten */
	uint8_t unlinked_key[NODE_KEY_LEN]; /* their sender's key, or 0 */
	uint8_t ids[64][PROTO_ID_LEN];  /* of valid records, in order */
} verify_seen;

static void verify_done(void *ctx, node_link *from, const uint8_t *key,
			void *msg, const uint8_t *const *wires,
			const size_t *lens, proto_signed *out,
			const proto_open_result *results, size_t count)
{
	verify_seen *seen = ctx;

	assert_non_null(msg);
	seen->messages++;
	seen->records += count;
	if (from == NULL)
		seen->unlinked += count;
	if (from == NULL && key)
		memcpy(seen->unlinked_key, key, NODE_KEY_LEN);
	for (size_t i = 0; i < count; i++) {
		assert_non_null(wires[i]);
		assert_true(lens[i] > 0);
		if (results[i].err) {
			seen->invalid++;
			assert_true(results[i].detail[0] != '\0');
			continue;
		}
		if (seen->valid < 64)
			memcpy(seen->ids[seen->valid], out[i].id,
			       PROTO_ID_LEN);
		seen->valid++;
	}
}

/* Collects until `records` records were verified, or fails after 10 s. */
static void verify_wait(node_verifier *v, verify_seen *seen, size_t records)
{
	uint64_t deadline = cm_mono_ms() + 10000;
	struct pollfd p = {node_verifier_fd(v), POLLIN, 0};

	while (seen->records < records) {
		if (cm_mono_ms() > deadline)
			fail_msg("%zu of %zu records verified after 10 s",
				 seen->records, records);
		poll(&p, 1, 100);
		node_verifier_collect(v, verify_done, seen);
	}
}

static void verifier_keeps_order_and_verdicts(void **state)
{
	node_verifier *v = NULL;
	verify_seen seen = {0};
	node_link link = {0};
	verify_msg vm[3];
	writer_clips c;

	(void)state;
	writer_clips_make(&c, 12);
	/* A flipped signature bit makes clip 5 invalid. */
	c.wires[5][c.recs[5].wire_len - 1] ^= 0x01;
	assert_int_equal(node_verifier_start(&v), CM_OK);
	for (size_t k = 0; k < 3; k++) {
		verify_msg_make(&vm[k], &c, 4 * k, 4);
		assert_int_equal(node_verifier_put(v, &link, &vm[k].msg,
						   &vm[k].m, cm_now_ms(),
						   verify_done, &seen),
				 CM_OK);
		/* The verifier keeps its own reference. */
		zmq_msg_close(&vm[k].msg);
	}
	verify_wait(v, &seen, 12);
	assert_int_equal(seen.messages, 3);
	assert_int_equal(seen.invalid, 1);
	assert_int_equal(seen.valid, 11);
	for (size_t i = 0, k = 0; i < 12; i++) {
		if (i == 5)
			continue;
		assert_memory_equal(seen.ids[k++], c.recs[i].id,
				    PROTO_ID_LEN);
	}
	node_verifier_stop(&v);
	assert_null(v);
	writer_clips_free(&c);
}

static void verifier_full_queue_hands_on_oldest(void **state)
{
	node_verifier *v = NULL;
	verify_seen seen = {0};
	node_link link = {0};
	verify_msg vm;
	writer_clips c;
	size_t n = CM_VERIFY_MESSAGES + 2;

	(void)state;
	writer_clips_make(&c, n);
	assert_int_equal(node_verifier_start(&v), CM_OK);
	for (size_t k = 0; k < n; k++) {
		verify_msg_make(&vm, &c, k, 1);
		assert_int_equal(node_verifier_put(v, &link, &vm.msg, &vm.m,
						   cm_now_ms(), verify_done,
						   &seen),
				 CM_OK);
		zmq_msg_close(&vm.msg);
	}
	/* Nothing was collected, so the last two puts made room. */
	assert_true(seen.messages >= 2);
	verify_wait(v, &seen, n);
	assert_int_equal(seen.valid, n);
	node_verifier_stop(&v);
	writer_clips_free(&c);
}

static void verifier_flush_and_forget_by_link(void **state)
{
	node_verifier *v = NULL;
	verify_seen seen = {0};
	node_link gone = {0}, kept = {0};
	verify_msg vm;
	writer_clips c;

	(void)state;
	/* The sender's key outlives the link, for its rejections. */
	memset(gone.key, 0xa7, NODE_KEY_LEN);
	writer_clips_make(&c, 6);
	assert_int_equal(node_verifier_start(&v), CM_OK);
	for (size_t k = 0; k < 6; k++) {
		verify_msg_make(&vm, &c, k, 1);
		assert_int_equal(node_verifier_put(v, k < 3 ? &gone : &kept,
						   &vm.msg, &vm.m, cm_now_ms(),
						   verify_done, &seen),
				 CM_OK);
		zmq_msg_close(&vm.msg);
	}
	node_verifier_forget(v, &gone);
	/* A flush for the first link hands on its three messages at
	 * least; one for the other waits for all six. */
	node_verifier_flush(v, &gone, verify_done, &seen);
	node_verifier_flush(v, &kept, verify_done, &seen);
	assert_int_equal(seen.records, 6);
	assert_int_equal(seen.unlinked, 3);
	assert_memory_equal(seen.unlinked_key, gone.key, NODE_KEY_LEN);
	node_verifier_stop(&v);
	writer_clips_free(&c);
}

static void verifier_stop_drops_queued(void **state)
{
	node_verifier *v = NULL;
	verify_seen seen = {0};
	node_link link = {0};
	verify_msg vm;
	writer_clips c;

	(void)state;
	writer_clips_make(&c, 64);
	assert_int_equal(node_verifier_start(&v), CM_OK);
	verify_msg_make(&vm, &c, 0, 64);
	assert_int_equal(node_verifier_put(v, &link, &vm.msg, &vm.m,
					   cm_now_ms(), verify_done, &seen),
			 CM_OK);
	zmq_msg_close(&vm.msg);
	/* Stopping at once frees the message without calling back. */
	node_verifier_stop(&v);
	assert_null(v);
	assert_int_equal(seen.messages, 0);
	writer_clips_free(&c);
}

/* The queued messages of a banned key are dropped unverified and never
 * handed on; those of other keys are. */
static void verifier_drop_by_key(void **state)
{
	node_verifier *v = NULL;
	verify_seen seen = {0};
	node_link banned = {0}, kept = {0};
	verify_msg vm;
	writer_clips c;

	(void)state;
	memset(banned.key, 0xb1, NODE_KEY_LEN);
	memset(kept.key, 0x4e, NODE_KEY_LEN);
	writer_clips_make(&c, 6);
	assert_int_equal(node_verifier_start(&v), CM_OK);
	for (size_t k = 0; k < 6; k++) {
		verify_msg_make(&vm, &c, k, 1);
		assert_int_equal(node_verifier_put(v, k % 2 ? &kept : &banned,
						   &vm.msg, &vm.m, cm_now_ms(),
						   verify_done, &seen),
				 CM_OK);
		zmq_msg_close(&vm.msg);
	}
	assert_int_equal(node_verifier_drop(v, banned.key), 3);
	assert_int_equal(node_verifier_drop(v, banned.key), 0);
	node_verifier_flush(v, &kept, verify_done, &seen);
	assert_int_equal(seen.messages, 3);
	assert_int_equal(seen.records, 3);
	assert_int_equal(seen.valid, 3);
	for (size_t k = 0; k < 3; k++)
		assert_memory_equal(seen.ids[k], c.recs[2 * k + 1].id,
				    PROTO_ID_LEN);
	assert_int_equal(node_verifier_queued(v), 0);
	node_verifier_stop(&v);
	writer_clips_free(&c);
}

/* --- Rejections of queued input --------------------------------------- */

/* A node with the ban table set up and no links, for node_reject_sender. */
static node *reject_node(void)
{
	node *n = clock_node(0);

	node_bans_init(&n->bans, CM_BAN_BASE_MS, CM_BAN_MAX_MS);
	return n;
}

/* Runs node_reject_sender for a bad signature with stderr in a file, and
 * returns what was logged (freed by the caller). */
static char *reject_logged(node *n, node_link *l, const uint8_t *key,
			   bool *banned)
{
	char path[128], *text = calloc(1, 4096);
	int saved, fd;
	FILE *f;

	assert_non_null(text);
	snprintf(path, sizeof(path), "%s/reject.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	close(fd);
	cm_errf(CM_ERR_BAD_SIGNATURE, "test signature");
	*banned = node_reject_sender(n, l, key, "record",
				     CM_ERR_BAD_SIGNATURE, NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);

	f = fopen(path, "r");
	assert_non_null(f);
	(void)!fread(text, 1, 4095, f);
	fclose(f);
	return text;
}

/* A rejection whose link dropped while the input waited names the
 * sender's key, not "local", and is counted. */
static void reject_sender_names_dropped_key(void **state)
{
	node *n = reject_node();
	uint8_t key[NODE_KEY_LEN];
	bool banned = true;
	char *logged;

	(void)state;
	memset(key, 0xc3, sizeof(key));
	logged = reject_logged(n, NULL, key, &banned);
	assert_non_null(strstr(logged, "peer=c3c3c3c3 (disconnected)"));
	assert_null(strstr(logged, "peer=local"));
	assert_false(banned);
	assert_int_equal(n->rejected[CM_ERR_BAD_SIGNATURE], 1);
	free(logged);
	clock_node_free(n);
}

/* With its link dropped, the penalty of a sender's input lands on another
 * link of the same key, up to a ban. */
static void reject_sender_lowers_key_link(void **state)
{
	node *n = reject_node();
	node_link *l = &n->links[3];
	uint64_t now = cm_mono_ms();
	bool banned = false;
	char *logged;
	unsigned rejections = 1;

	(void)state;
	l->used = true;
	l->dir = NODE_LINK_OUT;
	memset(l->key, 0xd4, NODE_KEY_LEN);
	cm_hex_short(l->key, l->short_key);
	node_score_init(&l->score, now);

	logged = reject_logged(n, NULL, l->key, &banned);
	assert_non_null(strstr(logged, "peer=d4d4d4d4:"));
	assert_false(banned);
	assert_true(node_score_points(&l->score, cm_mono_ms()) <=
		    CM_PEER_SCORE_MAX - CM_PEER_PENALTY_INVALID + 1);
	free(logged);

	while (!banned && rejections < 2 * CM_PEER_SCORE_MAX) {
		cm_errf(CM_ERR_BAD_SIGNATURE, "test signature");
		banned = node_reject_sender(n, NULL, l->key, "record",
					    CM_ERR_BAD_SIGNATURE, NULL);
		rejections++;
	}
	assert_true(banned);
	assert_true(l->banned);
	assert_true(node_is_banned(n, l->key));
	assert_true(rejections >= CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID);
	assert_int_equal(n->rejected[CM_ERR_BAD_SIGNATURE], rejections);
	clock_node_free(n);
}

/* --- Chunk writer --------------------------------------------------- */

#define MEDIA_CHUNKS 3

/* Media of MEDIA_CHUNKS chunks whose manifest is stored, so that the
 * writer stores its chunks as listed. */
typedef struct writer_media {
	uint8_t data[MEDIA_CHUNKS][CM_CHUNK_SIZE];
	uint8_t hashes[MEDIA_CHUNKS][PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];
} writer_media;

static writer_media *writer_media_make(store *st)
{
	writer_media *m = malloc(sizeof(*m));

	assert_non_null(m);
	randombytes_buf(m->data, sizeof(m->data));
	for (size_t i = 0; i < MEDIA_CHUNKS; i++)
		proto_chunk_hash(m->data[i], CM_CHUNK_SIZE, m->hashes[i]);
	proto_media_root((const uint8_t (*)[PROTO_HASH_LEN])m->hashes,
			 MEDIA_CHUNKS, sizeof(m->data), m->root);
	assert_int_equal(store_manifest_put(
				 st, m->root, sizeof(m->data),
				 (const uint8_t (*)[PROTO_HASH_LEN])m->hashes,
				 MEDIA_CHUNKS),
			 CM_OK);
	return m;
}

/* The results that chunk_writer_settle saw, by chunk index. */
typedef struct chunk_seen {
	size_t count;
	node_write_result result[MEDIA_CHUNKS];
	uint8_t peer[MEDIA_CHUNKS][NODE_KEY_LEN];
	uint64_t order[MEDIA_CHUNKS];   /* index of the count-th result */
} chunk_seen;

static void chunk_writer_settle(void *ctx, const uint8_t root[PROTO_HASH_LEN],
				uint64_t index,
				const uint8_t hash[PROTO_HASH_LEN],
				const uint8_t peer[NODE_KEY_LEN],
				node_write_result result)
{
	chunk_seen *seen = ctx;

	(void)root;
	(void)hash;
	assert_true(index < MEDIA_CHUNKS);
	assert_true(seen->count < MEDIA_CHUNKS);
	seen->result[index] = result;
	memcpy(seen->peer[index], peer, NODE_KEY_LEN);
	seen->order[seen->count++] = index;
}

/* Collects until `count` chunks were settled, or fails after 10 s. */
static void chunk_writer_wait(node_media_writer *w, chunk_seen *seen,
			      size_t count)
{
	uint64_t deadline = cm_mono_ms() + 10000;
	struct pollfd p = {node_media_writer_fd(w), POLLIN, 0};

	while (seen->count < count) {
		if (cm_mono_ms() > deadline)
			fail_msg("%zu of %zu chunks settled after 10 s",
				 seen->count, count);
		poll(&p, 1, 100);
		node_media_writer_collect(w, chunk_writer_settle, seen);
	}
}

static void chunk_writer_stores_only_matching(void **state)
{
	store *st = writer_store("chunks");
	writer_media *m = writer_media_make(st);
	uint8_t honest[NODE_KEY_LEN], liar[NODE_KEY_LEN];
	uint8_t bad[CM_CHUNK_SIZE];
	node_media_writer *w = NULL;
	chunk_seen seen = {0};

	(void)state;
	memset(honest, 0x11, sizeof(honest));
	memset(liar, 0x22, sizeof(liar));
	memcpy(bad, m->data[1], sizeof(bad));
	bad[CM_CHUNK_SIZE / 2] ^= 0x01;

	assert_int_equal(node_media_writer_start(st, &w), CM_OK);
	assert_true(node_media_writer_put(w, m->root, 0, m->hashes[0], honest,
					  NULL, m->data[0], CM_CHUNK_SIZE));
	assert_true(node_media_writer_put(w, m->root, 1, m->hashes[1], liar,
					  NULL, bad, sizeof(bad)));
	assert_true(node_media_writer_put(w, m->root, 2, m->hashes[2], honest,
					  NULL, m->data[2], CM_CHUNK_SIZE));
	chunk_writer_wait(w, &seen, MEDIA_CHUNKS);

	/* Results come back in queue order, each with its sender. */
	for (size_t i = 0; i < MEDIA_CHUNKS; i++)
		assert_int_equal(seen.order[i], i);
	assert_int_equal(seen.result[0], NODE_WRITE_STORED);
	assert_int_equal(seen.result[1], NODE_WRITE_BAD);
	assert_int_equal(seen.result[2], NODE_WRITE_STORED);
	assert_memory_equal(seen.peer[0], honest, NODE_KEY_LEN);
	assert_memory_equal(seen.peer[1], liar, NODE_KEY_LEN);
	assert_memory_equal(seen.peer[2], honest, NODE_KEY_LEN);
	assert_true(store_chunk_has(st, m->hashes[0]));
	assert_false(store_chunk_has(st, m->hashes[1]));
	assert_true(store_chunk_has(st, m->hashes[2]));
	assert_int_equal(node_media_writer_pending(w), 0);

	node_media_writer_stop(&w);
	assert_null(w);
	store_close(&st);
	free(m);
}

static void chunk_writer_stop_checks_queued(void **state)
{
	char path[128];
	store *st = writer_store("chunks-stop");
	writer_media *m = writer_media_make(st);
	uint8_t peer[NODE_KEY_LEN] = {0};
	uint8_t bad[CM_CHUNK_SIZE] = {0};
	node_media_writer *w = NULL;

	(void)state;
	assert_int_equal(node_media_writer_start(st, &w), CM_OK);
	assert_true(node_media_writer_put(w, m->root, 0, m->hashes[0], peer,
					  NULL, m->data[0], CM_CHUNK_SIZE));
	assert_true(node_media_writer_put(w, m->root, 1, m->hashes[1], peer,
					  NULL, bad, sizeof(bad)));
	node_media_writer_stop(&w);
	store_close(&st);

	/* Stopping stored the valid chunk and still left out the bad one. */
	snprintf(path, sizeof(path), "%s/chunks-stop", dir);
	assert_int_equal(store_open(path, &st), CM_OK);
	assert_true(store_chunk_has(st, m->hashes[0]));
	assert_false(store_chunk_has(st, m->hashes[1]));
	store_close(&st);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_takes_burst_then_rate),
		cmocka_unit_test(bucket_refill_stops_at_burst),
		cmocka_unit_test(bucket_large_rates_no_overflow),
		cmocka_unit_test(bucket_debt_sets_wait),
		cmocka_unit_test(score_falls_and_recovers),
		cmocka_unit_test(score_recovers_between_penalties),
		cmocka_unit_test(score_overruns_ban_in_time),
		cmocka_unit_test(bans_double_up_to_max),
		cmocka_unit_test(bans_keys_and_addresses_apart),
		cmocka_unit_test(bans_address_from_second_strike),
		cmocka_unit_test(bans_address_strikes_survive_key_rotation),
		cmocka_unit_test(bans_ipv6_counts_per_64),
		cmocka_unit_test(bans_strikes_forgotten),
		cmocka_unit_test(bans_table_full_evicts_oldest),
		cmocka_unit_test(allow_file_read),
		cmocka_unit_test(allow_file_bad_line_named),
		cmocka_unit_test(allow_file_long_line_rejected),
		cmocka_unit_test(zap_open_fails_when_taken),
		cmocka_unit_test(zap_check_verdicts),
		cmocka_unit_test(zap_check_address_cap),
		cmocka_unit_test(clock_offset_samples),
		cmocka_unit_test(clock_offset_bounded),
		cmocka_unit_test(clock_now_shifted),
		cmocka_unit_test(clock_window_keeps_max),
		cmocka_unit_test(clock_hello_then_ping),
		cmocka_unit_test(rto_starts_at_initial),
		cmocka_unit_test(rto_steady_peer_gets_floor),
		cmocka_unit_test(rto_jittery_peer_above_mean),
		cmocka_unit_test(rto_slow_peer_capped),
		cmocka_unit_test(rto_backoff_doubles_then_resets),
		cmocka_unit_test(record_writer_lone_record_stored),
		cmocka_unit_test(record_writer_batches_many_messages),
		cmocka_unit_test(record_writer_forgets_link),
		cmocka_unit_test(record_writer_flush_by_link),
		cmocka_unit_test(record_writer_stop_stores_queued),
		cmocka_unit_test(verifier_keeps_order_and_verdicts),
		cmocka_unit_test(verifier_full_queue_hands_on_oldest),
		cmocka_unit_test(verifier_flush_and_forget_by_link),
		cmocka_unit_test(verifier_stop_drops_queued),
		cmocka_unit_test(verifier_drop_by_key),
		cmocka_unit_test(reject_sender_names_dropped_key),
		cmocka_unit_test(reject_sender_lowers_key_link),
		cmocka_unit_test(chunk_writer_stores_only_matching),
		cmocka_unit_test(chunk_writer_stop_checks_queued),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
