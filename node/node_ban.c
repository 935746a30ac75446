/*
 * node_ban.c - the table of banned keys and addresses.
 *
 * The table has a fixed size, so that key rotation cannot grow the node's
 * memory. Entries keep their strikes after the ban ends, so that a repeat
 * bans for longer, until CM_BAN_FORGET_MS later.
 *
 * An address is banned only from its CM_BAN_IP_STRIKES-th strike on. One
 * misbehaving node behind a NAT, or on a host that runs other nodes too,
 * gets its key banned without locking out its neighbours. A peer that
 * comes back from the same address with a fresh key bans the address.
 *
 * Keys and addresses have CM_BANS_MAX entries each, so that bans of
 * rotated keys cannot push out the strikes of the addresses they came
 * from. IPv6 addresses count by their /64 prefix, the block one host
 * usually gets.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "cm_util.h"
#include "node_internal.h"

/* Writes the form of `ip` that bans count: an IPv6 address as its /64
 * prefix, anything else as it is. */
static void ban_ip(const char *ip, char out[NODE_IP_MAX])
{
	struct in6_addr a;
	char text[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, ip, &a) != 1) {
		cm_strlcpy(out, ip, NODE_IP_MAX);
		return;
	}
	memset(a.s6_addr + 8, 0, 8);
	inet_ntop(AF_INET6, &a, text, sizeof(text));
	snprintf(out, NODE_IP_MAX, "%s/64", text);
}

void node_bans_init(node_bans *b, uint64_t base_ms, uint64_t max_ms)
{
	memset(b->entries, 0, sizeof(b->entries));
	b->base_ms = base_ms;
	b->max_ms = max_ms < base_ms ? base_ms : max_ms;
}

static bool entry_is(const node_ban *e, node_ban_kind kind,
		     const uint8_t *key, const char *ip)
{
	if (!e->used || e->kind != kind)
		return false;
	if (kind == NODE_BAN_KEY)
		return memcmp(e->key, key, NODE_KEY_LEN) == 0;
	return strcmp(e->ip, ip) == 0;
}

/* True when an entry's strikes are old enough to be forgotten. */
static bool entry_stale(const node_ban *e, uint64_t now_ms)
{
	return !e->used || now_ms >= e->until + CM_BAN_FORGET_MS;
}

/* The first entry of kind's part of the table. */
static size_t part_of(node_ban_kind kind)
{
	return kind == NODE_BAN_KEY ? 0 : CM_BANS_MAX;
}

static node_ban *find(node_bans *b, node_ban_kind kind, const uint8_t *key,
		      const char *ip)
{
	size_t start = part_of(kind);

	for (size_t i = start; i < start + CM_BANS_MAX; i++)
		if (entry_is(&b->entries[i], kind, key, ip))
			return &b->entries[i];
	return NULL;
}

/* True when `a` should make room before `b`: an entry without a running
 * ban before one with, then the one whose ban ended (or ends) first. */
static bool evict_before(const node_ban *a, const node_ban *b,
			 uint64_t now_ms)
{
	bool a_running = now_ms < a->until, b_running = now_ms < b->until;

	if (a_running != b_running)
		return !a_running;
	return a->until < b->until;
}

/* Returns a stale slot of kind's part, else the entry that evict_before
 * puts first: a running ban is lifted early only when every entry of the
 * part has one. */
static node_ban *make_room(node_bans *b, node_ban_kind kind, uint64_t now_ms)
{
	size_t start = part_of(kind);
	node_ban *first = &b->entries[start];

	for (size_t i = start; i < start + CM_BANS_MAX; i++) {
		node_ban *e = &b->entries[i];

		if (entry_stale(e, now_ms))
			return e;
		if (evict_before(e, first, now_ms))
			first = e;
	}
	return first;
}

/* Returns base_ms doubled once for each strike past the first that bans,
 * at most max_ms; 0 for an address below CM_BAN_IP_STRIKES. */
static uint64_t ban_length(const node_bans *b, node_ban_kind kind,
			   unsigned strikes)
{
	unsigned first = kind == NODE_BAN_IP ? CM_BAN_IP_STRIKES : 1;
	uint64_t length = b->base_ms;

	if (strikes < first)
		return 0;
	for (unsigned i = first; i < strikes && length < b->max_ms; i++)
		length *= 2;
	return length < b->max_ms ? length : b->max_ms;
}

const node_ban *node_bans_strike(node_bans *b, node_ban_kind kind,
				 const uint8_t *key, const char *ip,
				 uint64_t now_ms)
{
	char counted[NODE_IP_MAX] = "";
	node_ban *e;

	if (kind == NODE_BAN_IP)
		ban_ip(ip, counted);
	e = find(b, kind, key, counted);

	if (e && entry_stale(e, now_ms))
		e->strikes = 0;
	if (!e) {
		e = make_room(b, kind, now_ms);
		memset(e, 0, sizeof(*e));
		e->used = true;
		e->kind = kind;
		if (kind == NODE_BAN_KEY)
			memcpy(e->key, key, NODE_KEY_LEN);
		else
			cm_strlcpy(e->ip, counted, sizeof(e->ip));
	}
	if (e->strikes < UINT32_MAX)
		e->strikes++;
	e->length_ms = ban_length(b, kind, e->strikes);
	e->until = now_ms + e->length_ms;
	return e;
}

const node_ban *node_bans_active(const node_bans *b, node_ban_kind kind,
				 const uint8_t *key, const char *ip,
				 uint64_t now_ms)
{
	char counted[NODE_IP_MAX] = "";
	size_t start = part_of(kind);

	if (kind == NODE_BAN_IP)
		ban_ip(ip, counted);
	for (size_t i = start; i < start + CM_BANS_MAX; i++) {
		const node_ban *e = &b->entries[i];

		if (entry_is(e, kind, key, counted))
			return now_ms < e->until ? e : NULL;
	}
	return NULL;
}
