/*
 * node_pex.c - peer exchange: PEERS_REQ and PEERS.
 *
 * A node sends PEERS_REQ to the peers it dialled, and sends PEERS in
 * return to every established peer that requests it. It shares only
 * peers that it dialled itself and completed a HELLO with in the last
 * CM_PEX_SHARE_AGE_MS, at the numeric address of that connection. An
 * inbound peer's address is its outgoing TCP port, where nothing
 * listens. Received addresses become candidates (node_known.c). One is
 * kept as a known peer only once this node dialled it and received the
 * HELLO of its key (node_dial.c), because CURVE proves that the listener
 * has the key.
 *
 * An inbound peer's HELLO names the port where it listens. With the
 * connection's IP address that makes a candidate too, so that a node
 * that only accepts connections (a mirror that creators dial) can share
 * its peers once it has dialled each of them and seen its HELLO.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

void node_pex_tick(node *n, node_link *l, uint64_t now)
{
	uint8_t *buf;
	size_t len;

	if (l->candidate || l->probe || l->next_pex == 0 || now < l->next_pex ||
	    n->cfg->peers_learned == 0)
		return;
	l->next_pex = now + CM_PEX_INTERVAL_MS;
	if (proto_wire_peers_req(&buf, &len))
		return;
	l->pex_requested = node_link_send(n, l, buf, len) == CM_OK;
}

/* True when known peer k may be shared with the peer of `to`. */
static bool shareable(const node_known *k, const uint8_t *to, uint64_t now)
{
	return k->used && k->ip_len && k->last_seen_ms &&
	       now - k->last_seen_ms <= CM_PEX_SHARE_AGE_MS &&
	       memcmp(k->key, to, NODE_KEY_LEN) != 0;
}

/* Fills entries with the shareable known peers, the latest HELLO
 * first, and returns their count. */
static size_t collect(node *n, const uint8_t *to,
		      proto_wire_peer entries[CM_PEX_ENTRIES_MAX])
{
	bool chosen[CM_KNOWN_PEERS_MAX] = {false};
	uint64_t now = cm_now_ms();
	size_t count = 0;

	while (count < CM_PEX_ENTRIES_MAX) {
		const node_known *best = NULL;
		size_t best_i = 0;

		for (size_t i = 0; i < CM_KNOWN_PEERS_MAX; i++) {
			const node_known *k = &n->peers.known[i];

			if (chosen[i] || !shareable(k, to, now))
				continue;
			if (!best || k->last_seen_ms > best->last_seen_ms) {
				best = k;
				best_i = i;
			}
		}
		if (!best)
			break;
		chosen[best_i] = true;
		entries[count].key = best->key;
		memcpy(entries[count].ip, best->ip, best->ip_len);
		entries[count].ip_len = best->ip_len;
		entries[count].port = best->port;
		count++;
	}
	return count;
}

void node_pex_on_request(node *n, node_link *l)
{
	proto_wire_peer entries[CM_PEX_ENTRIES_MAX];
	uint64_t now = cm_mono_ms();
	uint8_t *buf;
	size_t len, count;

	if (l->pex_answered && now - l->pex_answered < CM_PEX_ANSWER_GAP_MS)
		return;
	l->pex_answered = now;
	count = collect(n, l->key, entries);
	if (proto_wire_peers(entries, count, &buf, &len))
		return;
	if (node_link_send(n, l, buf, len) == CM_OK)
		cm_debug(NODE_LOG, "sent %zu peer addresses to peer=%s", count,
			 l->short_key);
}

/* Writes the IP address of the link's connection, without its port. */
static void connection_ip(const node_link *l, char out[NODE_IP_MAX])
{
	char name[NODE_ENDPOINT_MAX];
	char *colon;

	cm_strlcpy(name, l->fd_peer, sizeof(name));
	colon = strrchr(name, ':');
	if (colon)
		*colon = '\0';
	node_ip_normalize(name, out);
}

void node_pex_on_peers(node *n, node_link *l, const proto_wire_msg *m)
{
	char from_ip[NODE_IP_MAX], addr[STORE_KNOWN_ADDR_MAX + 1];
	uint64_t now = cm_mono_ms();
	size_t added = 0;

	if (l->dir != NODE_LINK_OUT || !l->pex_requested) {
		cm_debug(NODE_LOG, "ignoring PEERS from peer=%s: not "
			 "requested", l->short_key);
		return;
	}
	l->pex_requested = false;
	connection_ip(l, from_ip);

	for (size_t i = 0; i < m->n_peers; i++) {
		const proto_wire_peer *p = &m->peers[i];
		node_pex_verdict v;

		if (node_is_banned(n, p->key))
			v = NODE_PEX_BANNED;
		else
			v = node_pex_check_addr(p, from_ip, addr);
		if (v == NODE_PEX_TAKEN)
			v = node_candidate_add(&n->peers, p->key, addr,
					       l->key, n->pub, now);
		n->peers.verdicts[v]++;
		added += v == NODE_PEX_TAKEN;
	}
	/* Every link exchanges addresses when it opens, so an exchange that
	 * brings nothing new is routine and stays out of the info log. */
	cm_log(added ? CM_LOG_INFO : CM_LOG_DEBUG, NODE_LOG,
	       "peer=%s sent %zu address%s: %zu new candidate%s",
	       l->short_key, m->n_peers, m->n_peers == 1 ? "" : "es", added,
	       added == 1 ? "" : "s");
}

/* Writes ip (text) into p as network-order bytes. */
static bool ip_bytes(const char *ip, proto_wire_peer *p)
{
	if (inet_pton(AF_INET, ip, p->ip) == 1) {
		p->ip_len = PROTO_WIRE_IPV4_LEN;
		return true;
	}
	if (inet_pton(AF_INET6, ip, p->ip) == 1) {
		p->ip_len = PROTO_WIRE_IPV6_LEN;
		return true;
	}
	return false;
}

/* True when known peer k was reached at the address of p, which
 * node_pex_check_addr wrote as addr. */
static bool reached_at(const node_known *k, const proto_wire_peer *p,
		       const char *addr)
{
	if (k->ip_len == 0)
		return strcmp(k->addr, addr) == 0;
	return k->ip_len == p->ip_len && k->port == p->port &&
	       memcmp(k->ip, p->ip, p->ip_len) == 0;
}

/* Takes the usable address `addr` (p, as bytes) that the peer of l
 * announced: renews a known peer reached there, or adds a candidate. */
static node_pex_verdict take_announced(node *n, const node_link *l,
				       const proto_wire_peer *p,
				       const char *addr)
{
	node_known *k = node_known_find(&n->peers, l->key);
	node_link *out;

	if (k && reached_at(k, p, addr)) {
		k->last_seen_ms = cm_now_ms();
		return NODE_PEX_KNOWN;
	}
	if (node_is_banned(n, l->key))
		return NODE_PEX_BANNED;
	out = node_link_out_find(n, l->key);
	/* A learned peer that came back at another address: its link to
	 * the old one goes (at the next tick), and the check may move it. */
	if (out && !out->established && k && k->source == NODE_KNOWN_LEARNED) {
		out->orphan = true;
		out = NULL;
	}
	/* A check would be a second connection of this node to the peer,
	 * which replaces the first one there. */
	if (out)
		return NODE_PEX_KNOWN;
	return node_announce_add(&n->peers, l->key, addr, n->pub,
				 cm_mono_ms());
}

void node_pex_on_announce(node *n, node_link *l, uint16_t port)
{
	char ip[NODE_IP_MAX], addr[STORE_KNOWN_ADDR_MAX + 1];
	proto_wire_peer p = {.key = l->key, .port = port};
	node_pex_verdict v;

	/* peers_learned = 0 turns the exchange off, checks included. */
	if (port == 0 || n->cfg->peers_learned == 0)
		return;
	connection_ip(l, ip);
	if (!ip_bytes(ip, &p))
		return;
	v = node_pex_check_addr(&p, ip, addr);
	if (v == NODE_PEX_TAKEN)
		v = take_announced(n, l, &p, addr);
	n->peers.announced[v]++;
	if (v == NODE_PEX_TAKEN)
		cm_debug(NODE_LOG, "peer=%s listens on port %u: %s is a "
			 "candidate", l->short_key, (unsigned)port, addr);
}

/* Returns an object of counters, one per verdict. */
static json_t *verdicts_json(const uint64_t counts[NODE_PEX_VERDICTS])
{
	json_t *o = json_object();

	for (int v = 0; o && v < NODE_PEX_VERDICTS; v++)
		json_object_set_new(o,
				    node_pex_verdict_name((node_pex_verdict)v),
				    json_integer((json_int_t)counts[v]));
	return o;
}

/* One candidate: "peer", "address" and "from", the peer that sent it. */
static json_t *candidate_json(const node_candidate *c)
{
	char key[9], from[9];

	cm_hex_short(c->key, key);
	cm_hex_short(c->source, from);
	return json_pack("{s:s, s:s, s:s}", "peer", key, "address", c->addr,
			 "from", from);
}

json_t *node_pex_json(const node *n)
{
	const node_peer_table *t = &n->peers;
	json_t *list = json_array();

	for (size_t i = 0; list && i < CM_PEX_CANDIDATES_MAX; i++) {
		const node_candidate *c = &t->candidates[i];

		if (c->used)
			json_array_append_new(list, candidate_json(c));
	}
	return json_pack("{s:o*, s:I, s:I, s:I, s:o*, s:o*}", "candidates",
			 list, "learned", (json_int_t)t->learned,
			 "unverified", (json_int_t)t->unverified,
			 "forgotten", (json_int_t)t->forgotten,
			 "entries", verdicts_json(t->verdicts),
			 "announced", verdicts_json(t->announced));
}
