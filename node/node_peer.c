/*
 * node_peer.c - links to peers: creation, HELLO handshake, liveness,
 * sending, and dispatch of received messages.
 *
 * Handshake: each side sends HELLO (reply = false) when it needs the other
 * side's interest, and responds to every such HELLO with a HELLO whose
 * reply flag is set. No node responds to a reply, so two nodes cannot
 * bounce HELLOs forever. An outbound link repeats its HELLO every
 * CM_PING_INTERVAL_MS until one arrives; an inbound link that sends
 * anything before its HELLO gets our HELLO, which makes a peer that kept
 * its connection across our restart introduce itself again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <zmq.h>

#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define HELLO_RETRY_MS 100 /* HELLO retry while no connection is up */

static const char *role_name(proto_wire_role role)
{
	return role == PROTO_WIRE_ROLE_MIRROR ? "mirror" : "creator";
}

/* Starts a link's buckets full and its score at the maximum. */
static void link_limits_init(const node *n, node_link *l, uint64_t now)
{
	uint64_t burst_bytes = n->peer_bytes * CM_PEER_BURST_S;

	/* A message of the largest size must fit in a full bucket. */
	if (burst_bytes < CM_WIRE_MSG_MAX)
		burst_bytes = CM_WIRE_MSG_MAX;
	node_bucket_init(&l->msgs, n->peer_msgs,
			 n->peer_msgs * CM_PEER_BURST_S, now);
	node_bucket_init(&l->bytes, n->peer_bytes, burst_bytes, now);
	node_score_init(&l->score, now);
}

size_t node_links_out(const node *n)
{
	size_t count = 0;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++)
		count += n->links[i].used && n->links[i].dir == NODE_LINK_OUT;
	return count;
}

cm_err node_link_open_out(node *n, const uint8_t key[NODE_KEY_LEN],
			  const char *endpoint, bool candidate,
			  node_link **out)
{
	node_link *slot = NULL;
	cm_err err;

	for (size_t i = 0; i < NODE_LINKS_MAX && !slot; i++)
		if (!n->links[i].used)
			slot = &n->links[i];
	if (!slot || node_links_out(n) >= n->limits.peers_max)
		return cm_errf(CM_ERR_TOO_MANY, "more than %u peers; raise "
			       "peers_max (at most %d)", n->limits.peers_max,
			       CM_PEERS_MAX);

	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	slot->dir = NODE_LINK_OUT;
	slot->candidate = candidate;
	slot->fd = -1;
	slot->opened = cm_mono_ms();
	link_limits_init(n, slot, slot->opened);
	memcpy(slot->key, key, NODE_KEY_LEN);
	cm_hex_short(key, slot->short_key);
	cm_strlcpy(slot->endpoint, endpoint, sizeof(slot->endpoint));

	err = node_dial_open(n, slot);
	if (err) {
		node_link_remove_out(n, slot);
		return err;
	}
	if (out)
		*out = slot;
	return CM_OK;
}

void node_link_remove_out(node *n, node_link *l)
{
	if (l->established)
		node_link_drop(n, l, "peer removed");
	node_dial_close(l);
	memset(l, 0, sizeof(*l));
}

/* Returns the outbound link of `key` that is not a candidate's. */
static node_link *out_link_of(node *n, const uint8_t key[NODE_KEY_LEN])
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_OUT && !l->candidate &&
		    memcmp(l->key, key, NODE_KEY_LEN) == 0)
			return l;
	}
	return NULL;
}

node_link *node_link_out_find(node *n, const uint8_t key[NODE_KEY_LEN])
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_OUT && !l->orphan &&
		    memcmp(l->key, key, NODE_KEY_LEN) == 0)
			return l;
	}
	return NULL;
}

node_link *node_link_up(node *n, const uint8_t key[NODE_KEY_LEN],
			const node_link *except, bool inbound)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (l != except && l->used && l->established &&
		    (!inbound || l->dir == NODE_LINK_IN) &&
		    memcmp(l->key, key, NODE_KEY_LEN) == 0)
			return l;
	}
	return NULL;
}

cm_err node_link_add_out(node *n, const char *addr)
{
	uint8_t key[NODE_KEY_LEN];
	char endpoint[NODE_ENDPOINT_MAX];
	node_known *k;
	cm_err err;

	err = node_parse_addr(addr, endpoint, key);
	if (err)
		return err;
	if (memcmp(key, n->pub, NODE_KEY_LEN) == 0) {
		cm_info(NODE_LOG, "skipping peer %s: it is this node", addr);
		return CM_OK;
	}
	if (out_link_of(n, key))
		return CM_OK; /* listed twice */

	/* The known peer of a key takes the latest configured address. */
	k = node_known_find(&n->peers, key);
	if (!k)
		k = node_known_add(&n->peers, key, "", NODE_KNOWN_CONFIGURED,
				   NULL, 0);
	if (!k)
		return cm_errf(CM_ERR_TOO_MANY, "more than %d known peers",
			       CM_KNOWN_PEERS_MAX);
	k->source = NODE_KNOWN_CONFIGURED;
	cm_strlcpy(k->addr, endpoint + strlen("tcp://"), sizeof(k->addr));
	return node_link_open_out(n, key, endpoint, false, NULL);
}

void node_ip_normalize(const char *ip, char out[NODE_IP_MAX])
{
	static const char mapped[] = "::ffff:";
	size_t plen = strlen(mapped);

	if (!ip)
		ip = "";
	if (strncasecmp(ip, mapped, plen) == 0 && strchr(ip + plen, '.'))
		ip += plen;
	cm_strlcpy(out, ip, NODE_IP_MAX);
}

/* Writes the TCP peer address of `fd` as "ip:port"; "" when it has none. */
static void fd_peer_name(int fd, char out[NODE_ENDPOINT_MAX])
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char ip[INET6_ADDRSTRLEN] = "";
	unsigned port = 0;

	out[0] = '\0';
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
		return;
	if (sa.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	} else {
		return;
	}
	snprintf(out, NODE_ENDPOINT_MAX, "%s:%u", ip, port);
}

/* Returns the bytes that the peer's TCP stack acknowledged on `fd`
 * (Linux 4.1 and later); 0 when unknown. */
static uint64_t fd_bytes_acked(int fd)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
		return 0;
	return info.tcpi_bytes_acked;
}

void node_link_set_fd(node_link *l, int fd)
{
	if (fd == l->fd)
		return;
	l->fd = fd;
	fd_peer_name(fd, l->fd_peer);
	l->fd_bytes_out = l->stats.bytes_out;
	l->fd_bytes_acked = fd_bytes_acked(fd);
}

void node_link_close_connection(node_link *l)
{
	char now[NODE_ENDPOINT_MAX];

	if (l->fd < 0 || !l->fd_peer[0])
		return;
	fd_peer_name(l->fd, now);
	if (strcmp(now, l->fd_peer) == 0)
		node_fd_shutdown(l->fd);
	l->fd = -1;
}

uint64_t node_link_queued(const node_link *l)
{
	uint64_t sent, acked;

	if (l->fd < 0)
		return 0;
	sent = l->stats.bytes_out - l->fd_bytes_out;
	acked = fd_bytes_acked(l->fd) - l->fd_bytes_acked;
	return sent > acked ? sent - acked : 0;
}

/* True while the link and all links together have less queued than
 * the peer_queued_max and queued_total_max limits, so that one more
 * chunk may be sent. */
static bool may_queue_chunk(const node *n, const node_link *l)
{
	uint64_t total = 0;

	uint64_t now = cm_mono_ms();

	if (node_link_queued(l) >= n->limits.peer_queued_max)
		return false;
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *other = &n->links[i];

		/* A peer silent for two ping intervals is likely gone (a
		 * killed process leaves its bytes unacknowledged until the
		 * link times out); its queue must not stop serving the
		 * others. A stalled peer that still pings counts. */
		if (!other->used ||
		    (other != l &&
		     now - other->last_rx > 2 * CM_PING_INTERVAL_MS))
			continue;
		total += node_link_queued(other);
	}
	return total < n->limits.queued_total_max;
}

/* Returns the inbound link that waited longest for its peer's HELLO, or
 * NULL when every inbound link is established. */
static node_link *oldest_unestablished(node *n)
{
	node_link *oldest = NULL;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used || l->dir != NODE_LINK_IN || l->established)
			continue;
		if (!oldest || l->opened < oldest->opened)
			oldest = l;
	}
	return oldest;
}

/* Frees an inbound slot for a new connection: evicts the link that waited
 * longest for a HELLO, and logs (at most every CM_BAN_LOG_INTERVAL_MS)
 * when the table is full of established links. */
static node_link *make_room(node *n)
{
	node_link *victim = oldest_unestablished(n);
	uint64_t now = cm_mono_ms();

	if (victim) {
		n->links_evicted++;
		node_link_close_connection(victim);
		node_link_drop(n, victim, "evicted before HELLO");
		return victim;
	}
	if (now >= n->table_full_log_until) {
		cm_warn(NODE_LOG, "inbound peer table full: %u established "
			"peers; new peers get no service",
			n->limits.peers_max);
		n->table_full_log_until = now + CM_BAN_LOG_INTERVAL_MS;
	}
	return NULL;
}

size_t node_links_from_ip(const node *n, const char *ip, const uint8_t *key)
{
	uint64_t now = cm_mono_ms();
	size_t count = 0;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		const node_link *l = &n->links[i];

		/* A link silent for two ping intervals is likely a closed
		 * connection waiting for its timeout; a live peer pings. */
		if (l->used && l->dir == NODE_LINK_IN &&
		    now - l->last_rx <= 2 * CM_PING_INTERVAL_MS &&
		    strcmp(l->endpoint, ip) == 0 &&
		    (!key || memcmp(l->key, key, NODE_KEY_LEN) != 0))
			count++;
	}
	return count;
}

/*
 * True when a connection that passed ZAP must still not get a link: its
 * key or address was banned after the handshake, or its address reached
 * CM_PEER_LINKS_PER_IP meanwhile (handshakes run in parallel). Counts the
 * refusal as a ZAP denial.
 */
static bool refuse_link(node *n, const uint8_t key[NODE_KEY_LEN],
			const char *ip)
{
	node_zap_verdict v = node_zap_check(n, key, ip);

	/* Messages still queued from a connection closed at its ban arrive
	 * here too; they are not new denials. */
	if (v == NODE_ZAP_ADDRESS_FULL)
		n->zap_denied[v]++;
	return v != NODE_ZAP_ACCEPT;
}

/* Closes connection `fd` when it still comes from address `ip`: the
 * descriptor of a message read from a closed connection may have been
 * reused since. */
static void close_fd_from(int fd, const char *ip)
{
	char name[NODE_ENDPOINT_MAX], host[NODE_IP_MAX];
	char *colon;

	fd_peer_name(fd, name);
	colon = strrchr(name, ':');
	if (!colon)
		return;
	*colon = '\0';
	node_ip_normalize(name, host);
	if (strcmp(host, ip) == 0)
		node_fd_shutdown(fd);
}

/* Hands on the records still queued from inbound links of `key`, so that
 * their rejections lower the score that replace_key() carries over, and a
 * ban they cause rejects the new connection. Otherwise a peer could
 * reconnect before its records are verified and escape the penalty. */
static void flush_key_records(node *n, const uint8_t key[NODE_KEY_LEN])
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_IN &&
		    memcmp(l->key, key, NODE_KEY_LEN) == 0)
			node_ingest_flush_link(n, l);
	}
}

/* Closes the link of `key`, if any, because the peer reconnected; that
 * frees what libzmq still queues for the old connection. Copies the old
 * link's score to *score, so that reconnecting does not restore it. */
static node_link *replace_key(node *n, const uint8_t key[NODE_KEY_LEN],
			      node_score *score, size_t *inbound)
{
	node_link *freed = NULL;

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (l->used && l->dir == NODE_LINK_IN &&
		    memcmp(l->key, key, NODE_KEY_LEN) == 0) {
			*score = l->score;
			node_link_close_connection(l);
			node_link_drop(n, l, "replaced by a new connection");
			freed = freed ? freed : l;
			(*inbound)--;
		}
	}
	return freed;
}

node_link *node_link_in(node *n, const uint8_t *routing_id, size_t len,
			const uint8_t key[NODE_KEY_LEN], const char *peer_ip,
			int fd)
{
	node_link *slot = NULL, *freed;
	size_t inbound = 0;
	uint64_t now = cm_mono_ms();
	char ip[NODE_IP_MAX];
	node_score score;

	if (len > NODE_ROUTING_ID_MAX)
		return NULL;
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used) {
			slot = slot ? slot : l;
			continue;
		}
		if (l->dir != NODE_LINK_IN)
			continue;
		if (l->routing_id_len == len &&
		    memcmp(l->routing_id, routing_id, len) == 0)
			return l;
		inbound++;
	}
	node_ip_normalize(peer_ip, ip);
	flush_key_records(n, key);
	if (refuse_link(n, key, ip)) {
		close_fd_from(fd, ip);
		return NULL;
	}

	node_score_init(&score, now);
	freed = replace_key(n, key, &score, &inbound);
	slot = slot ? slot : freed;
	if (!slot || inbound >= n->limits.peers_max) {
		slot = make_room(n);
		if (!slot)
			return NULL;
	}

	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	slot->dir = NODE_LINK_IN;
	slot->fd = -1;
	memcpy(slot->routing_id, routing_id, len);
	slot->routing_id_len = len;
	memcpy(slot->key, key, NODE_KEY_LEN);
	cm_hex_short(key, slot->short_key);
	cm_strlcpy(slot->endpoint, ip, NODE_ENDPOINT_MAX);
	slot->last_rx = now;
	slot->opened = now;
	link_limits_init(n, slot, now);
	slot->score = score;
	return slot;
}

/* Frees a buffer that node_link_send passed to ZeroMQ, once sent. */
static void free_sent(void *data, void *hint)
{
	(void)hint;
	free(data);
}

cm_err node_link_send(node *n, node_link *l, uint8_t *buf, size_t len)
{
	zmq_msg_t msg;

	if (zmq_msg_init_data(&msg, buf, len, free_sent, NULL) != 0) {
		free(buf);
		return cm_errf(CM_ERR_NOMEM, "message of %zu bytes to peer %s",
			       len, l->short_key);
	}
	return node_link_send_msg(n, l, &msg);
}

cm_err node_link_send_msg(node *n, node_link *l, void *msg)
{
	size_t len = zmq_msg_size(msg);
	size_t head_len = len < 2 ? len : 2;
	uint8_t head[2] = {0};
	int rc, error = 0;

	/* The type is copied first, because ZeroMQ may free the data as
	 * soon as it is sent. */
	memcpy(head, zmq_msg_data(msg), head_len);
	if (l->dir == NODE_LINK_OUT && !l->dealer) {
		zmq_msg_close(msg);
		return CM_ERR_TIMEOUT; /* between two dials */
	}
	if (l->dir == NODE_LINK_OUT) {
		rc = zmq_msg_send(msg, l->dealer, ZMQ_DONTWAIT);
	} else {
		rc = zmq_send(n->router, l->routing_id, l->routing_id_len,
			      ZMQ_DONTWAIT | ZMQ_SNDMORE);
		if (rc >= 0)
			rc = zmq_msg_send(msg, n->router, ZMQ_DONTWAIT);
	}
	if (rc < 0) {
		error = errno;
		zmq_msg_close(msg);
	} else {
		node_link_sent(l, head, head_len);
	}

	if (error == EAGAIN)
		return CM_ERR_TIMEOUT;
	if (error == EHOSTUNREACH)
		return cm_errf(CM_ERR_NOT_FOUND, "peer %s is gone",
			       l->short_key);
	if (error)
		return cm_errf(CM_ERR_ZMQ, "sending to peer %s: %s",
			       l->short_key, zmq_strerror(error));
	l->stats.bytes_out += len;
	return CM_OK;
}

static void send_hello(node *n, node_link *l, bool reply)
{
	proto_wire_role role = n->cfg->role == NODE_ROLE_MIRROR
				       ? PROTO_WIRE_ROLE_MIRROR
				       : PROTO_WIRE_ROLE_CREATOR;
	proto_wire_hello_info h = {
		.role = role,
		.reply = reply,
		.node_key = n->pub,
		.interest = n->interest_all ? NULL : n->interest,
		.n_interest = n->n_interest,
		.time_ms = node_clock_now(n),
		.listen_port = n->listen_port,
	};
	uint8_t *buf;
	size_t len;

	l->last_hello = cm_mono_ms();
	l->hello_sent = false;
	if (proto_wire_hello(&h, &buf, &len))
		return;
	l->hello_sent = node_link_send(n, l, buf, len) == CM_OK;
	if (l->hello_sent)
		node_clock_hello_sent(l, reply, l->last_hello);
}

static void send_ping(node *n, node_link *l)
{
	uint8_t *buf;
	size_t len;

	l->last_ping = cm_mono_ms();
	if (proto_wire_ping(node_clock_now(n), &buf, &len))
		return;
	node_link_send(n, l, buf, len);
}

static bool set_interest(node_link *l, const proto_wire_msg *m)
{
	uint8_t *keys = NULL;

	if (!m->interest_all && m->n_interest > 0) {
		keys = malloc(m->n_interest * PROTO_KEY_LEN);
		if (!keys)
			return false;
		for (size_t i = 0; i < m->n_interest; i++)
			memcpy(keys + i * PROTO_KEY_LEN,
			       proto_wire_interest_key(m, i), PROTO_KEY_LEN);
	}
	free(l->interest);
	l->interest = keys;
	l->interest_all = m->interest_all;
	l->n_interest = keys ? node_keys_sort(keys, m->n_interest) : 0;
	return true;
}

static void on_hello(node *n, node_link *l, const proto_wire_msg *m)
{
	bool was_established = l->established;

	if (m->version != PROTO_WIRE_VERSION) {
		cm_errf(CM_ERR_BAD_VERSION, "peer speaks wire version %llu, "
			"this node %d", (unsigned long long)m->version,
			PROTO_WIRE_VERSION);
		node_reject(n, l, "hello", CM_ERR_BAD_VERSION, NULL);
		return;
	}
	if (memcmp(m->node_key, l->key, NODE_KEY_LEN) != 0) {
		cm_errf(CM_ERR_BAD_KEY, "hello names a key other than the "
			"connection's CURVE key");
		node_reject(n, l, "hello", CM_ERR_BAD_KEY, NULL);
		return;
	}
	if (!set_interest(l, m)) {
		cm_error(NODE_LOG, "out of memory for the interest of peer=%s",
			 l->short_key);
		return;
	}

	l->role = m->role;
	l->established = true;
	node_clock_on_hello(n, l, m, was_established);
	if (!was_established) {
		l->connected_ms = cm_now_ms();
		l->last_ping = cm_mono_ms();
		cm_info(NODE_LOG, "peer connected peer=%s endpoint=%s role=%s "
			"interest=%s", l->short_key, l->endpoint,
			role_name(l->role),
			l->interest_all ? "all" : "authors");
		if (l->dir == NODE_LINK_OUT)
			node_dial_on_hello(n, l);
		else
			node_pex_on_announce(n, l, m->listen_port);
	}
	/* A probe's connection only checks where the peer listens. */
	if (l->probe)
		return;
	if (!m->reply)
		send_hello(n, l, true);

	/* A second connection of a node that is already connected, such
	 * as its check of where this node listens, syncs on schedule, or
	 * at once when the first one ends (sync_others_now). */
	if (!was_established && node_link_up(n, l->key, l, false)) {
		l->sync_waits = true;
		l->next_sync = cm_mono_ms() + n->limits.sync_interval_ms;
		return;
	}
	node_sync_start(n, l);
	node_media_peer_up(n);
}

/* Hands a message of an established link to the module that handles
 * its type. */
static void dispatch(node *n, node_link *l, const proto_wire_msg *m,
		     size_t len)
{
	switch (m->type) {
	case PROTO_WIRE_RECORDS:
		node_ingest(n, l, m);
		break;
	case PROTO_WIRE_HAVE:
		node_gossip_on_have(n, l, m);
		break;
	case PROTO_WIRE_WANT:
		node_ingest_flush_link(n, l);
		node_sync_on_want(n, l, m);
		break;
	case PROTO_WIRE_RECON_START:
	case PROTO_WIRE_RECON:
		node_sync_on_recon(n, l, m, len);
		break;
	case PROTO_WIRE_CHUNK_REQ:
		if (!may_queue_chunk(n, l)) {
			/* A peer that does not read its replies. Dropped
			 * requests are not rejections: a slow honest peer
			 * requests the chunk again. */
			l->chunk_reqs_dropped++;
			n->chunk_reqs_dropped++;
			break;
		}
		node_media_on_message(n, l, m);
		break;
	case PROTO_WIRE_MANIFEST_REQ:
	case PROTO_WIRE_MANIFEST:
	case PROTO_WIRE_CHUNK:
	case PROTO_WIRE_NOT_FOUND:
		node_media_on_message(n, l, m);
		break;
	case PROTO_WIRE_PING:
		node_clock_on_ping(n, l, m);
		break;
	case PROTO_WIRE_PEERS_REQ:
		node_pex_on_request(n, l);
		break;
	case PROTO_WIRE_PEERS:
		node_pex_on_peers(n, l, m);
		break;
	default:
		break;
	}
}

void node_link_receive(node *n, node_link *l, const uint8_t *buf,
		       size_t len)
{
	proto_wire_msg m;
	cm_err err;

	if (l->banned || !node_link_admit(n, l, buf, len))
		return;
	/* Left over from a connection closed after its GOODBYE, or sent to
	 * a probe that ends. */
	if (l->departed || l->probe)
		return;
	l->last_rx = cm_mono_ms();
	l->stats.bytes_in += len;

	err = proto_wire_decode(buf, len, &m);
	if (err) {
		node_reject(n, l, "message", err, NULL);
		return;
	}
	if (m.type == PROTO_WIRE_HELLO) {
		on_hello(n, l, &m);
		return;
	}
	if (m.type == PROTO_WIRE_GOODBYE) {
		node_goodbye_receive(n, l);
		return;
	}
	if (!l->established) {
		if (l->last_rx - l->last_hello >= CM_PING_INTERVAL_MS)
			send_hello(n, l, false);
		return;
	}

	dispatch(n, l, &m, len);
}

/* Lets the links of l's key that skipped their first reconciliation
 * while l was up (on_hello) reconcile at once. */
static void sync_others_now(node *n, const node_link *l)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *o = &n->links[i];

		if (o == l || !o->used || !o->established || !o->sync_waits ||
		    memcmp(o->key, l->key, NODE_KEY_LEN) != 0)
			continue;
		o->sync_waits = false;
		o->next_sync = cm_mono_ms();
	}
}

void node_link_forget(node *n, node_link *l, const char *reason)
{
	node_reject_log_flush(l, l->log_second + 1);
	if (l->established) {
		cm_info(NODE_LOG, "peer disconnected peer=%s endpoint=%s "
			"reason=%s", l->short_key, l->endpoint, reason);
		if (!l->sync_waits)
			sync_others_now(n, l);
	}
	l->sync_waits = false;
	node_media_on_link_down(n, l);
	node_ingest_on_link_down(n, l);

	l->established = false;
	free(l->interest);
	l->interest = NULL;
	l->n_interest = 0;
	node_sync_drop(l);
	l->chunks_in_flight = 0;

	l->pex_requested = false;
}

void node_link_drop(node *n, node_link *l, const char *reason)
{
	node_link_forget(n, l, reason);
	if (l->dir == NODE_LINK_IN) {
		node_link_stats_add(&n->closed, &l->stats);
		memset(l, 0, sizeof(*l));
	} else {
		node_dial_link_down(n, l);
	}
}

void node_link_depart(node *n, node_link *l)
{
	/* The verdicts on its queued records lower this link's score now.
	 * Later they would find no link of the key and cost nothing. */
	node_ingest_flush_link(n, l);
	node_link_close_connection(l);
	node_link_forget(n, l, "goodbye");
	l->departed = true;
}

void node_link_free_all(node *n)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];

		if (!l->used)
			continue;
		node_link_drop(n, l, "node stopping");
		if (l->dir == NODE_LINK_OUT)
			node_link_remove_out(n, l);
		memset(l, 0, sizeof(*l));
	}
}

void node_links_tick(node *n)
{
	uint64_t now = cm_mono_ms();

	for (size_t i = 0; i < NODE_LINKS_MAX; i++) {
		node_link *l = &n->links[i];
		bool silent = now - l->last_rx > CM_PEER_TIMEOUT_MS;

		if (!l->used)
			continue;
		node_reject_log_flush(l, now / 1000);
		if (l->banned) {
			node_link_drop(n, l, "banned");
			l->banned = false;
			continue;
		}
		if (silent && (l->established || l->dir == NODE_LINK_IN)) {
			node_link_drop(n, l, "timed out");
			if (!l->used)
				continue;
		}
		if (l->dir == NODE_LINK_IN && !l->established &&
		    !l->departed &&
		    now - l->opened >= n->limits.hello_timeout_ms) {
			cm_debug(NODE_LOG, "dropping peer=%s endpoint=%s: no "
				 "HELLO in %llu ms", l->short_key, l->endpoint,
				 (unsigned long long)n->limits.hello_timeout_ms);
			node_link_close_connection(l);
			node_link_drop(n, l, "no HELLO");
			continue;
		}

		if (l->dir == NODE_LINK_OUT && !node_dial_tick(n, l, now))
			continue;
		if (l->probe)
			continue;
		if (!l->established) {
			/* Until a connection is up, sends fail at once
			 * (ZMQ_IMMEDIATE). The loop sends a dial's first
			 * HELLO as soon as the DEALER is writable; this is
			 * the retry after HELLO_RETRY_MS, and after a HELLO
			 * went out it waits a ping interval for the reply. */
			uint64_t retry = l->hello_sent ? CM_PING_INTERVAL_MS
						       : HELLO_RETRY_MS;
			uint64_t since = l->last_hello ? l->last_hello
						       : l->dial_started;

			if (l->dir == NODE_LINK_OUT && now - since >= retry &&
			    now >= l->ban_until)
				send_hello(n, l, false);
			continue;
		}
		if (now - l->last_ping >= CM_PING_INTERVAL_MS)
			send_ping(n, l);
		node_sync_tick(n, l);
		if (l->dir == NODE_LINK_OUT)
			node_pex_tick(n, l, now);
	}
}

/* Only the first HELLO of a dial waits for the socket: if that send
 * fails anyway, the retry in node_links_tick takes over, so that a socket
 * that keeps reporting room cannot spin the loop. */
bool node_link_hello_waits(const node_link *l, uint64_t now_ms)
{
	return l->dir == NODE_LINK_OUT && l->dealer && !l->established &&
	       l->last_hello == 0 && now_ms >= l->ban_until;
}

void node_link_writable(node *n, node_link *l)
{
	if (node_link_hello_waits(l, cm_mono_ms()))
		send_hello(n, l, false);
}

void node_links_rehello(node *n)
{
	for (size_t i = 0; i < NODE_LINKS_MAX; i++)
		if (n->links[i].used && n->links[i].established)
			send_hello(n, &n->links[i], false);
}

bool node_link_wants(const node_link *l, const uint8_t author[PROTO_KEY_LEN])
{
	return l->interest_all ||
	       node_keys_contain(l->interest, l->n_interest, author);
}

bool node_link_is_primary(const node *n, const node_link *l)
{
	for (const node_link *o = n->links; o < l; o++)
		if (o->used && o->established &&
		    memcmp(o->key, l->key, NODE_KEY_LEN) == 0)
			return false;
	return true;
}
