/*
 * node_known.c - the table of known peers and of exchange candidates,
 * the address rules of peer exchange, and the reconnect backoff. It is
 * table logic without sockets, so that the unit tests drive it directly.
 * node_pex.c and node_dial.c act on it.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "node_internal.h"

/* Address classes, from the least to the most widely reachable. */
typedef enum addr_class {
	ADDR_UNUSABLE,
	ADDR_LOOPBACK,
	ADDR_PRIVATE,
	ADDR_PUBLIC,
} addr_class;

const char *node_pex_verdict_name(node_pex_verdict v)
{
	static const char *const names[NODE_PEX_VERDICTS] = {
		[NODE_PEX_TAKEN] = "taken",
		[NODE_PEX_UNUSABLE] = "unusable",
		[NODE_PEX_LOCAL] = "local",
		[NODE_PEX_KNOWN] = "known",
		[NODE_PEX_SOURCE_FULL] = "source_full",
		[NODE_PEX_TABLE_FULL] = "table_full",
		[NODE_PEX_BANNED] = "banned",
	};

	return v < NODE_PEX_VERDICTS ? names[v] : "unknown";
}

const char *node_known_source_name(node_known_source s)
{
	switch (s) {
	case NODE_KNOWN_CONFIGURED:
		return "configured";
	case NODE_KNOWN_REMEMBERED:
		return "remembered";
	case NODE_KNOWN_LEARNED:
		return "learned";
	}
	return "unknown";
}

static addr_class ipv4_class(const uint8_t *a)
{
	if (a[0] == 0 || a[0] >= 224 || (a[0] == 169 && a[1] == 254))
		return ADDR_UNUSABLE; /* this network, multicast, reserved,
				       * broadcast, link-local */
	if (a[0] == 127)
		return ADDR_LOOPBACK;
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168) ||
	    (a[0] == 100 && (a[1] & 0xc0) == 64))
		return ADDR_PRIVATE;
	return ADDR_PUBLIC;
}

static bool ipv4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0,
					   0, 0, 0, 0, 0xff, 0xff};

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

static addr_class ipv6_class(const uint8_t *a)
{
	static const uint8_t zero[16], loopback[16] = {[15] = 1};

	if (ipv4_mapped(a))
		return ipv4_class(a + 12);
	if (memcmp(a, zero, 16) == 0 || a[0] == 0xff ||
	    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
		return ADDR_UNUSABLE; /* unspecified, multicast, link-local */
	if (memcmp(a, loopback, 16) == 0)
		return ADDR_LOOPBACK;
	if ((a[0] & 0xfe) == 0xfc)
		return ADDR_PRIVATE;
	return ADDR_PUBLIC;
}

/* Returns the class of a numeric address as text. Text that is not one
 * counts as public, so that an unknown sender address allows the least. */
static addr_class text_class(const char *ip)
{
	uint8_t a[16];

	if (ip && inet_pton(AF_INET, ip, a) == 1)
		return ipv4_class(a);
	if (ip && inet_pton(AF_INET6, ip, a) == 1)
		return ipv6_class(a);
	return ADDR_PUBLIC;
}

node_pex_verdict node_pex_check_addr(const proto_wire_peer *p,
				     const char *from_ip,
				     char addr[STORE_KNOWN_ADDR_MAX + 1])
{
	const uint8_t *ip = p->ip;
	bool v4 = p->ip_len == PROTO_WIRE_IPV4_LEN;
	char text[INET6_ADDRSTRLEN];
	addr_class c, from;

	if (!v4 && p->ip_len == PROTO_WIRE_IPV6_LEN && ipv4_mapped(ip)) {
		ip += 12;
		v4 = true;
	}
	if (!v4 && p->ip_len != PROTO_WIRE_IPV6_LEN)
		return NODE_PEX_UNUSABLE;
	c = v4 ? ipv4_class(ip) : ipv6_class(ip);
	if (p->port == 0 || c == ADDR_UNUSABLE)
		return NODE_PEX_UNUSABLE;

	/* A sender on loopback runs on this host, so its loopback and
	 * private addresses are ours too. A sender on a private network may
	 * share that network's addresses, but not loopback ones. */
	from = text_class(from_ip);
	if (c < from)
		return NODE_PEX_LOCAL;

	if (!inet_ntop(v4 ? AF_INET : AF_INET6, ip, text, sizeof(text)))
		return NODE_PEX_UNUSABLE;
	snprintf(addr, STORE_KNOWN_ADDR_MAX + 1, v4 ? "%s:%u" : "[%s]:%u",
		 text, (unsigned)p->port);
	return NODE_PEX_TAKEN;
}

node_known *node_known_find(node_peer_table *t,
			    const uint8_t key[NODE_KEY_LEN])
{
	for (size_t i = 0; i < CM_KNOWN_PEERS_MAX; i++)
		if (t->known[i].used &&
		    memcmp(t->known[i].key, key, NODE_KEY_LEN) == 0)
			return &t->known[i];
	return NULL;
}

static bool key_listed(const uint8_t *keys, size_t n, const uint8_t *key)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(keys + i * NODE_KEY_LEN, key, NODE_KEY_LEN) == 0)
			return true;
	return false;
}

/* True when known peer a is a better one to forget than b. */
static bool worse(const node_known *a, const node_known *b)
{
	if (a->failures != b->failures)
		return a->failures > b->failures;
	return a->last_seen_ms < b->last_seen_ms;
}

/* Returns a free entry, or the one to forget when the table is full. */
static node_known *known_slot(node_peer_table *t, const uint8_t *busy,
			      size_t n_busy)
{
	node_known *victim = NULL;

	for (size_t i = 0; i < CM_KNOWN_PEERS_MAX; i++) {
		node_known *k = &t->known[i];

		if (!k->used)
			return k;
		if (k->source == NODE_KNOWN_CONFIGURED ||
		    key_listed(busy, n_busy, k->key))
			continue;
		if (!victim || worse(k, victim))
			victim = k;
	}
	return victim;
}

node_known *node_known_add(node_peer_table *t,
			   const uint8_t key[NODE_KEY_LEN], const char *addr,
			   node_known_source source, const uint8_t *busy,
			   size_t n_busy)
{
	node_known *k = known_slot(t, busy, n_busy);

	if (!k)
		return NULL;
	memset(k, 0, sizeof(*k));
	k->used = true;
	memcpy(k->key, key, NODE_KEY_LEN);
	snprintf(k->addr, sizeof(k->addr), "%s", addr);
	k->source = source;
	return k;
}

node_candidate *node_candidate_find(node_peer_table *t,
				    const uint8_t key[NODE_KEY_LEN])
{
	for (size_t i = 0; i < CM_PEX_CANDIDATES_MAX; i++)
		if (t->candidates[i].used &&
		    memcmp(t->candidates[i].key, key, NODE_KEY_LEN) == 0)
			return &t->candidates[i];
	return NULL;
}

/* Puts a candidate into a free slot of the table, or returns
 * NODE_PEX_TABLE_FULL when no slot is free. */
static node_pex_verdict candidate_put(node_peer_table *t,
				      const uint8_t key[NODE_KEY_LEN],
				      const char *addr,
				      const uint8_t source[NODE_KEY_LEN],
				      uint64_t now_ms)
{
	for (size_t i = 0; i < CM_PEX_CANDIDATES_MAX; i++) {
		node_candidate *slot = &t->candidates[i];

		if (slot->used)
			continue;
		memset(slot, 0, sizeof(*slot));
		slot->used = true;
		memcpy(slot->key, key, NODE_KEY_LEN);
		memcpy(slot->source, source, NODE_KEY_LEN);
		snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
		slot->added = now_ms;
		return NODE_PEX_TAKEN;
	}
	return NODE_PEX_TABLE_FULL;
}

node_pex_verdict node_candidate_add(node_peer_table *t,
				    const uint8_t key[NODE_KEY_LEN],
				    const char *addr,
				    const uint8_t source[NODE_KEY_LEN],
				    const uint8_t self[NODE_KEY_LEN],
				    uint64_t now_ms)
{
	size_t from_source = 0;

	if (memcmp(key, self, NODE_KEY_LEN) == 0 ||
	    node_known_find(t, key) || node_candidate_find(t, key))
		return NODE_PEX_KNOWN;
	for (size_t i = 0; i < CM_PEX_CANDIDATES_MAX; i++) {
		const node_candidate *c = &t->candidates[i];

		from_source += c->used &&
			       memcmp(c->source, source, NODE_KEY_LEN) == 0;
	}
	if (from_source >= CM_PEX_PER_SOURCE_MAX)
		return NODE_PEX_SOURCE_FULL;
	return candidate_put(t, key, addr, source, now_ms);
}

/* Writes the host of HOST:PORT or [IPv6]:PORT into out, without
 * brackets. Returns false when addr has no port or the host does not
 * fit. */
static bool host_of(const char *addr, char out[INET6_ADDRSTRLEN])
{
	const char *colon = strrchr(addr, ':');
	size_t len;

	if (colon == NULL)
		return false;
	len = (size_t)(colon - addr);
	if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
		addr++;
		len -= 2;
	}
	if (len >= INET6_ADDRSTRLEN)
		return false;
	memcpy(out, addr, len);
	out[len] = '\0';
	return true;
}

/* True when HOST:PORT addresses a and b name the same host, where all
 * of an IPv6 /64 counts as one host, since one client usually has the
 * whole block. */
static bool same_host(const char *a, const char *b)
{
	char host_a[INET6_ADDRSTRLEN], host_b[INET6_ADDRSTRLEN];
	uint8_t ip_a[16], ip_b[16];

	if (!host_of(a, host_a) || !host_of(b, host_b))
		return false;
	if (inet_pton(AF_INET6, host_a, ip_a) == 1 &&
	    inet_pton(AF_INET6, host_b, ip_b) == 1)
		return memcmp(ip_a, ip_b, 8) == 0;
	return strcmp(host_a, host_b) == 0;
}

node_pex_verdict node_announce_add(node_peer_table *t,
				   const uint8_t key[NODE_KEY_LEN],
				   const char *addr,
				   const uint8_t self[NODE_KEY_LEN],
				   uint64_t now_ms)
{
	const node_known *k = node_known_find(t, key);
	size_t at_host = 0;

	if (memcmp(key, self, NODE_KEY_LEN) == 0 ||
	    node_candidate_find(t, key) ||
	    (k && k->source != NODE_KNOWN_LEARNED))
		return NODE_PEX_KNOWN;
	for (size_t i = 0; i < CM_PEX_CANDIDATES_MAX; i++) {
		const node_candidate *c = &t->candidates[i];

		at_host += c->used &&
			   memcmp(c->source, c->key, NODE_KEY_LEN) == 0 &&
			   same_host(c->addr, addr);
	}
	for (size_t i = 0; i < CM_KNOWN_PEERS_MAX; i++) {
		const node_known *o = &t->known[i];

		at_host += o->used && o != k &&
			   o->source == NODE_KNOWN_LEARNED &&
			   same_host(o->addr, addr);
	}
	if (at_host >= CM_PEX_PER_SOURCE_MAX)
		return NODE_PEX_SOURCE_FULL;
	return candidate_put(t, key, addr, key, now_ms);
}

size_t node_candidates_expire(node_peer_table *t, uint64_t now_ms,
			      bool (*dialling)(void *ctx, const uint8_t *key),
			      void *ctx)
{
	size_t expired = 0;

	for (size_t i = 0; i < CM_PEX_CANDIDATES_MAX; i++) {
		node_candidate *c = &t->candidates[i];

		if (!c->used || now_ms - c->added < CM_PEX_CANDIDATE_TTL_MS ||
		    (dialling && dialling(ctx, c->key)))
			continue;
		memset(c, 0, sizeof(*c));
		expired++;
	}
	return expired;
}

uint64_t node_backoff_ms(uint32_t failures, uint64_t max_ms,
			 uint32_t random)
{
	uint64_t base = CM_RECONNECT_MIN_MS;

	for (uint32_t i = 1; i < failures && base < max_ms; i++)
		base *= 2;
	if (base > max_ms)
		base = max_ms;
	return base / 2 + ((base - base / 2) * (uint64_t)random >> 32);
}
