/* Unit tests of node/node_known.c: the reconnect backoff, the address
 * rules of peer exchange, the candidate table with its per-source limit,
 * and the bounded table of known peers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "node_internal.h"

#define T0 1000000 /* a monotonic start time, in ms */

static node_peer_table table;

static int reset(void **state)
{
	(void)state;
	memset(&table, 0, sizeof(table));
	return 0;
}

/* Fills a key with byte b and a second byte i, so that keys differ. */
static const uint8_t *key_of(uint8_t b, unsigned i)
{
	static uint8_t keys[4][NODE_KEY_LEN];
	static unsigned next;
	uint8_t *k = keys[next++ % 4];

	memset(k, b, NODE_KEY_LEN);
	k[1] = (uint8_t)i;
	k[2] = (uint8_t)(i >> 8);
	return k;
}

static void backoff_doubles_to_cap(void **state)
{
	uint64_t max = 60000, base = CM_RECONNECT_MIN_MS;

	(void)state;
	for (uint32_t f = 1; f <= 40; f++) {
		uint64_t low = node_backoff_ms(f, max, 0);
		uint64_t high = node_backoff_ms(f, max, UINT32_MAX);
		uint64_t mid = node_backoff_ms(f, max, UINT32_MAX / 2);

		assert_int_equal(low, base / 2);
		assert_true(high <= base);
		assert_true(high >= base - 1);
		assert_true(mid >= low);
		assert_true(mid <= high);
		base = base * 2 > max ? max : base * 2;
	}
	/* A huge failure count stays at the cap. */
	assert_true(node_backoff_ms(UINT32_MAX, max, UINT32_MAX) <= max);
	assert_int_equal(node_backoff_ms(UINT32_MAX, max, 0), max / 2);
}

static void backoff_cap_below_min(void **state)
{
	(void)state;
	/* A cap of the minimum keeps every wait within it. */
	for (uint32_t f = 1; f < 10; f++)
		assert_true(node_backoff_ms(f, CM_RECONNECT_MIN_MS,
					    UINT32_MAX) <= CM_RECONNECT_MIN_MS);
}

/* One address case: the text of the IP, the port, the sender's
 * connection address, the verdict and the HOST:PORT written. */
typedef struct addr_case {
	const char *ip;
	uint16_t port;
	const char *from;
	node_pex_verdict want;
	const char *addr;
} addr_case;

static void entry_of(const char *ip, uint16_t port, proto_wire_peer *p)
{
	memset(p, 0, sizeof(*p));
	if (inet_pton(AF_INET, ip, p->ip) == 1) {
		p->ip_len = 4;
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, p->ip), 1);
		p->ip_len = 16;
	}
	p->port = port;
}

static void pex_address_rules(void **state)
{
	static const addr_case cases[] = {
		{"192.0.2.1", 7701, "198.51.100.7", NODE_PEX_TAKEN,
		 "192.0.2.1:7701"},
		{"2001:db8::1", 7701, "198.51.100.7", NODE_PEX_TAKEN,
		 "[2001:db8::1]:7701"},
		{"::ffff:192.0.2.1", 80, "198.51.100.7", NODE_PEX_TAKEN,
		 "192.0.2.1:80"},
		{"192.0.2.1", 0, "198.51.100.7", NODE_PEX_UNUSABLE, NULL},
		{"0.0.0.0", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"0.1.2.3", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"224.0.0.1", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"239.255.255.250", 7701, "127.0.0.1", NODE_PEX_UNUSABLE,
		 NULL},
		{"255.255.255.255", 7701, "127.0.0.1", NODE_PEX_UNUSABLE,
		 NULL},
		{"240.0.0.1", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"169.254.1.1", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"::", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"ff02::1", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"fe80::1", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		{"::ffff:0.0.0.0", 7701, "127.0.0.1", NODE_PEX_UNUSABLE, NULL},
		/* Loopback only from a sender on loopback. */
		{"127.0.0.1", 7701, "127.0.0.1", NODE_PEX_TAKEN,
		 "127.0.0.1:7701"},
		{"127.0.0.1", 7701, "::1", NODE_PEX_TAKEN, "127.0.0.1:7701"},
		{"::1", 7701, "127.0.0.1", NODE_PEX_TAKEN, "[::1]:7701"},
		{"127.0.0.1", 7701, "10.0.0.2", NODE_PEX_LOCAL, NULL},
		{"127.0.0.1", 7701, "198.51.100.7", NODE_PEX_LOCAL, NULL},
		{"::1", 7701, "2001:db8::2", NODE_PEX_LOCAL, NULL},
		{"127.0.0.1", 7701, "", NODE_PEX_LOCAL, NULL},
		/* Private only from a sender on loopback or a private
		 * address. */
		{"10.1.2.3", 7701, "10.9.9.9", NODE_PEX_TAKEN, "10.1.2.3:7701"},
		{"192.168.1.5", 7701, "127.0.0.1", NODE_PEX_TAKEN,
		 "192.168.1.5:7701"},
		{"172.16.0.1", 7701, "192.168.0.1", NODE_PEX_TAKEN,
		 "172.16.0.1:7701"},
		{"100.64.0.1", 7701, "10.0.0.1", NODE_PEX_TAKEN,
		 "100.64.0.1:7701"},
		{"fd00::5", 7701, "fd00::6", NODE_PEX_TAKEN, "[fd00::5]:7701"},
		{"10.1.2.3", 7701, "198.51.100.7", NODE_PEX_LOCAL, NULL},
		{"172.31.0.1", 7701, "2001:db8::2", NODE_PEX_LOCAL, NULL},
		{"fd00::5", 7701, "198.51.100.7", NODE_PEX_LOCAL, NULL},
		/* Just outside the private ranges. */
		{"172.32.0.1", 7701, "198.51.100.7", NODE_PEX_TAKEN,
		 "172.32.0.1:7701"},
		{"100.128.0.1", 7701, "198.51.100.7", NODE_PEX_TAKEN,
		 "100.128.0.1:7701"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const addr_case *c = &cases[i];
		char addr[STORE_KNOWN_ADDR_MAX + 1] = "";
		proto_wire_peer p;
		node_pex_verdict v;

		entry_of(c->ip, c->port, &p);
		v = node_pex_check_addr(&p, c->from, addr);
		if (v != c->want)
			fail_msg("%s port %u from %s: %s, expected %s", c->ip,
				 c->port, c->from, node_pex_verdict_name(v),
				 node_pex_verdict_name(c->want));
		if (c->addr)
			assert_string_equal(addr, c->addr);
	}
}

static void candidate_per_source_limit(void **state)
{
	uint8_t self[NODE_KEY_LEN], source[NODE_KEY_LEN];
	uint8_t other[NODE_KEY_LEN];

	(void)state;
	memset(self, 0xee, sizeof(self));
	memset(source, 0x51, sizeof(source));
	memset(other, 0x52, sizeof(other));
	for (unsigned i = 0; i < CM_PEX_PER_SOURCE_MAX; i++)
		assert_int_equal(node_candidate_add(&table, key_of(1, i),
						    "192.0.2.1:1", source,
						    self, T0),
				 NODE_PEX_TAKEN);
	assert_int_equal(node_candidate_add(&table, key_of(1, 100),
					    "192.0.2.1:1", source, self, T0),
			 NODE_PEX_SOURCE_FULL);
	/* Another sender still has room. */
	assert_int_equal(node_candidate_add(&table, key_of(1, 101),
					    "192.0.2.1:1", other, self, T0),
			 NODE_PEX_TAKEN);
	assert_non_null(node_candidate_find(&table, key_of(1, 101)));
	assert_null(node_candidate_find(&table, key_of(1, 100)));
}

static void candidate_skips_known_keys(void **state)
{
	uint8_t self[NODE_KEY_LEN], source[NODE_KEY_LEN];

	(void)state;
	memset(self, 0xee, sizeof(self));
	memset(source, 0x51, sizeof(source));
	assert_int_equal(node_candidate_add(&table, self, "192.0.2.1:1",
					    source, self, T0),
			 NODE_PEX_KNOWN);
	assert_non_null(node_known_add(&table, key_of(2, 0), "192.0.2.2:2",
				       NODE_KNOWN_LEARNED, NULL, 0));
	assert_int_equal(node_candidate_add(&table, key_of(2, 0),
					    "192.0.2.1:1", source, self, T0),
			 NODE_PEX_KNOWN);
	assert_int_equal(node_candidate_add(&table, key_of(3, 0),
					    "192.0.2.1:1", source, self, T0),
			 NODE_PEX_TAKEN);
	assert_int_equal(node_candidate_add(&table, key_of(3, 0),
					    "192.0.2.9:9", source, self, T0),
			 NODE_PEX_KNOWN);
}

/* Announced addresses are limited per host, learned peers included,
 * since one client can connect with any number of keys. */
static void announce_per_host_limit(void **state)
{
	uint8_t self[NODE_KEY_LEN];

	(void)state;
	memset(self, 0xee, sizeof(self));
	assert_non_null(node_known_add(&table, key_of(6, 500), "192.0.2.7:9",
				       NODE_KNOWN_LEARNED, NULL, 0));
	for (unsigned i = 1; i < CM_PEX_PER_SOURCE_MAX; i++)
		assert_int_equal(node_announce_add(&table, key_of(6, i),
						   "192.0.2.7:7701", self, T0),
				 NODE_PEX_TAKEN);
	assert_int_equal(node_announce_add(&table, key_of(6, 100),
					   "192.0.2.7:7702", self, T0),
			 NODE_PEX_SOURCE_FULL);
	/* Another host still has room, and the source is the key itself. */
	assert_int_equal(node_announce_add(&table, key_of(6, 101),
					   "192.0.2.8:7701", self, T0),
			 NODE_PEX_TAKEN);
	assert_memory_equal(node_candidate_find(&table, key_of(6, 101))->source,
			    key_of(6, 101), NODE_KEY_LEN);
}

/* One IPv6 /64 counts as one host. */
static void announce_ipv6_block_limit(void **state)
{
	char addr[64];
	uint8_t self[NODE_KEY_LEN];

	(void)state;
	memset(self, 0xee, sizeof(self));
	for (unsigned i = 0; i < CM_PEX_PER_SOURCE_MAX; i++) {
		snprintf(addr, sizeof(addr), "[2001:db8:0:1::%x]:7701", i + 1);
		assert_int_equal(node_announce_add(&table, key_of(8, i), addr,
						   self, T0),
				 NODE_PEX_TAKEN);
	}
	assert_int_equal(node_announce_add(&table, key_of(8, 100),
					   "[2001:db8:0:1:ffff::9]:7701",
					   self, T0),
			 NODE_PEX_SOURCE_FULL);
	assert_int_equal(node_announce_add(&table, key_of(8, 101),
					   "[2001:db8:0:2::1]:7701", self, T0),
			 NODE_PEX_TAKEN);
}

/* A learned peer may move to a new address through a check. A
 * configured one, our own key and a waiting candidate may not. */
static void announce_known_keys(void **state)
{
	uint8_t self[NODE_KEY_LEN];

	(void)state;
	memset(self, 0xee, sizeof(self));
	assert_int_equal(node_announce_add(&table, self, "192.0.2.1:1", self,
					   T0),
			 NODE_PEX_KNOWN);
	assert_non_null(node_known_add(&table, key_of(7, 0), "192.0.2.1:1",
				       NODE_KNOWN_CONFIGURED, NULL, 0));
	assert_int_equal(node_announce_add(&table, key_of(7, 0), "192.0.2.1:2",
					   self, T0),
			 NODE_PEX_KNOWN);
	assert_non_null(node_known_add(&table, key_of(7, 1), "192.0.2.1:3",
				       NODE_KNOWN_LEARNED, NULL, 0));
	assert_int_equal(node_announce_add(&table, key_of(7, 1), "192.0.2.1:4",
					   self, T0),
			 NODE_PEX_TAKEN);
	assert_int_equal(node_announce_add(&table, key_of(7, 1), "192.0.2.1:5",
					   self, T0),
			 NODE_PEX_KNOWN);
}

static void candidate_table_bounded(void **state)
{
	uint8_t self[NODE_KEY_LEN], source[NODE_KEY_LEN];
	unsigned sources = CM_PEX_CANDIDATES_MAX / CM_PEX_PER_SOURCE_MAX;

	(void)state;
	memset(self, 0xee, sizeof(self));
	for (unsigned s = 0; s < sources; s++) {
		memset(source, (int)(0x60 + s), sizeof(source));
		for (unsigned i = 0; i < CM_PEX_PER_SOURCE_MAX; i++)
			assert_int_equal(node_candidate_add(
						 &table,
						 key_of(4, s * 100 + i),
						 "192.0.2.1:1", source, self,
						 T0),
					 NODE_PEX_TAKEN);
	}
	memset(source, 0x7f, sizeof(source));
	assert_int_equal(node_candidate_add(&table, key_of(4, 9999),
					    "192.0.2.1:1", source, self, T0),
			 NODE_PEX_TABLE_FULL);
}

static bool dialling_first(void *ctx, const uint8_t *key)
{
	(void)ctx;
	return memcmp(key, key_of(5, 0), NODE_KEY_LEN) == 0;
}

static void candidates_expire_unless_dialled(void **state)
{
	uint8_t self[NODE_KEY_LEN], source[NODE_KEY_LEN];
	uint64_t now = T0 + 1 + CM_PEX_CANDIDATE_TTL_MS;

	(void)state;
	memset(self, 0xee, sizeof(self));
	memset(source, 0x51, sizeof(source));
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(node_candidate_add(&table, key_of(5, i),
						    "192.0.2.1:1", source,
						    self, T0 + i),
				 NODE_PEX_TAKEN);
	assert_int_equal(node_candidates_expire(&table, now, dialling_first,
						NULL),
			 1);
	/* The candidate added at T0 + 1 is gone; T0 is being dialled and
	 * T0 + 2 is young enough. */
	assert_non_null(node_candidate_find(&table, key_of(5, 0)));
	assert_null(node_candidate_find(&table, key_of(5, 1)));
	assert_non_null(node_candidate_find(&table, key_of(5, 2)));
}

static void known_table_evicts_worst(void **state)
{
	uint8_t busy[NODE_KEY_LEN];
	node_known *k;

	(void)state;
	for (unsigned i = 0; i < CM_KNOWN_PEERS_MAX; i++) {
		k = node_known_add(&table, key_of(6, i), "192.0.2.1:1",
				   i < 2 ? NODE_KNOWN_CONFIGURED
					 : NODE_KNOWN_LEARNED,
				   NULL, 0);
		assert_non_null(k);
		k->last_seen_ms = 1000 + i;
		k->failures = 1;
	}
	/* The configured ones fail most but stay; of the learned ones the
	 * one with most failures goes, the busy one is kept. */
	node_known_find(&table, key_of(6, 0))->failures = 50;
	node_known_find(&table, key_of(6, 7))->failures = 9;
	node_known_find(&table, key_of(6, 8))->failures = 9;
	memcpy(busy, key_of(6, 8), NODE_KEY_LEN);

	k = node_known_add(&table, key_of(7, 0), "192.0.2.7:7",
			   NODE_KNOWN_LEARNED, busy, 1);
	assert_non_null(k);
	assert_string_equal(k->addr, "192.0.2.7:7");
	assert_int_equal(k->failures, 0);
	assert_null(node_known_find(&table, key_of(6, 7)));
	assert_non_null(node_known_find(&table, key_of(6, 8)));
	assert_non_null(node_known_find(&table, key_of(6, 0)));

	/* Equal failures: the oldest HELLO goes (key 2, seen at 1002). */
	k = node_known_add(&table, key_of(7, 1), "192.0.2.7:8",
			   NODE_KNOWN_LEARNED, busy, 1);
	assert_non_null(k);
	assert_null(node_known_find(&table, key_of(6, 2)));
	assert_non_null(node_known_find(&table, key_of(6, 3)));
}

static void known_table_full_of_configured(void **state)
{
	(void)state;
	for (unsigned i = 0; i < CM_KNOWN_PEERS_MAX; i++)
		assert_non_null(node_known_add(&table, key_of(8, i),
					       "192.0.2.1:1",
					       NODE_KNOWN_CONFIGURED, NULL, 0));
	assert_null(node_known_add(&table, key_of(9, 0), "192.0.2.1:1",
				   NODE_KNOWN_LEARNED, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_doubles_to_cap),
		cmocka_unit_test(backoff_cap_below_min),
		cmocka_unit_test(pex_address_rules),
		cmocka_unit_test_setup(candidate_per_source_limit, reset),
		cmocka_unit_test_setup(candidate_skips_known_keys, reset),
		cmocka_unit_test_setup(announce_per_host_limit, reset),
		cmocka_unit_test_setup(announce_known_keys, reset),
		cmocka_unit_test_setup(announce_ipv6_block_limit, reset),
		cmocka_unit_test_setup(candidate_table_bounded, reset),
		cmocka_unit_test_setup(candidates_expire_unless_dialled,
				       reset),
		cmocka_unit_test_setup(known_table_evicts_worst, reset),
		cmocka_unit_test_setup(known_table_full_of_configured, reset),
	};

	return cmocka_run_group_tests_name("known", tests, NULL, NULL);
}
