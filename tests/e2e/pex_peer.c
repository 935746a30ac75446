/*
 * pex_peer.c - a node for tests/e2e/test_peer_hostile.sh that replies to
 * peer exchange with bogus addresses.
 *
 * Usage: pex_peer PORT...
 *
 * It binds a CURVE server ROUTER on a free port of 127.0.0.1 with a fresh
 * key pair, prints "address clipmesh://KEYHEX@127.0.0.1:PORT" and waits
 * for nodes to dial it. It replies to HELLO and pings like a mirror
 * that requests no records. Each PEERS_REQ gets a full PEERS message of 32
 * entries: addresses no node may dial (port 0, unspecified, multicast,
 * broadcast) and fresh random keys at 127.0.0.1 on each PORT
 * given (where a real node listens, so the CURVE handshake fails, or
 * where nothing listens). Every second it also sends each peer a PEERS
 * message that was not requested. It prints "answered N" and "unasked N"
 * when SIGTERM ends it, and exits 0, or 1 when a call failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "cm_limits.h"
#include "cm_util.h"
#include "proto_wire.h"

#define KEY_LEN 32
#define PORTS_MAX 8
#define PEERS_SEEN_MAX 16
#define POLL_MS 100
#define PING_MS 1000

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* The routing ids of the nodes that sent a HELLO. */
typedef struct seen {
	uint8_t id[256];
	size_t len;
} seen;

typedef struct server {
	void *sock;
	uint8_t pub[KEY_LEN];
	uint16_t ports[PORTS_MAX];
	size_t n_ports;
	seen peers[PEERS_SEEN_MAX];
	size_t n_peers;
	unsigned long answered;
	unsigned long unasked;
	uint8_t keys[CM_PEX_ENTRIES_MAX][KEY_LEN];
} server;

static bool send_to(server *s, const seen *to, uint8_t *buf, size_t len)
{
	int rc = zmq_send(s->sock, to->id, to->len, ZMQ_SNDMORE);

	if (rc >= 0)
		rc = zmq_send(s->sock, buf, len, 0);
	free(buf);
	if (rc < 0 && errno != EHOSTUNREACH) {
		fprintf(stderr, "pex_peer: sending failed: %s\n",
			zmq_strerror(errno));
		return false;
	}
	return true;
}

/* Writes the text address ip into an entry. */
static void entry_ip(proto_wire_peer *p, const char *ip, uint16_t port)
{
	p->ip_len = inet_pton(AF_INET, ip, p->ip) == 1 ? 4 : 16;
	if (p->ip_len == 16)
		inet_pton(AF_INET6, ip, p->ip);
	p->port = port;
}

static bool send_peers(server *s, const seen *to)
{
	/* Only addresses that stay on this host even if the node under
	 * test dialled them: Linux connects the unspecified address to
	 * loopback and fails TCP connects to multicast and broadcast
	 * addresses before sending anything. Link-local addresses, which
	 * would reach the local network, are left to the unit tests. */
	static const char *const unusable[] = {
		"0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255",
		"::", "::ffff:0.0.0.0", "ff02::1",
	};
	size_t n_unusable = sizeof(unusable) / sizeof(unusable[0]);
	proto_wire_peer peers[CM_PEX_ENTRIES_MAX];
	uint8_t *buf;
	size_t len, i = 0;

	memset(peers, 0, sizeof(peers));
	for (; i < CM_PEX_ENTRIES_MAX; i++) {
		randombytes_buf(s->keys[i], KEY_LEN);
		peers[i].key = s->keys[i];
		if (i == 0)
			entry_ip(&peers[i], "127.0.0.1", 0);
		else if (i <= n_unusable)
			entry_ip(&peers[i], unusable[i - 1], 7701);
		else
			entry_ip(&peers[i], "127.0.0.1",
				 s->ports[i % s->n_ports]);
	}
	if (proto_wire_peers(peers, i, &buf, &len))
		return false;
	return send_to(s, to, buf, len);
}

static bool send_hello(server *s, const seen *to)
{
	proto_wire_hello_info h = {
		.role = PROTO_WIRE_ROLE_MIRROR,
		.reply = true,
		.node_key = s->pub,
		.interest = (const uint8_t *)"",
		.time_ms = cm_now_ms(),
	};
	uint8_t *buf;
	size_t len;

	if (proto_wire_hello(&h, &buf, &len))
		return false;
	return send_to(s, to, buf, len);
}

static seen *remember(server *s, const uint8_t *id, size_t len)
{
	for (size_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].len == len &&
		    memcmp(s->peers[i].id, id, len) == 0)
			return &s->peers[i];
	if (s->n_peers == PEERS_SEEN_MAX || len > sizeof(s->peers[0].id))
		return NULL;
	memcpy(s->peers[s->n_peers].id, id, len);
	s->peers[s->n_peers].len = len;
	return &s->peers[s->n_peers++];
}

/* Reads one message and replies to HELLO and PEERS_REQ. */
static bool receive(server *s)
{
	static uint8_t frame[CM_WIRE_MSG_MAX];
	uint8_t id[256];
	proto_wire_msg m;
	int id_len, len;
	seen *from;

	id_len = zmq_recv(s->sock, id, sizeof(id), ZMQ_DONTWAIT);
	if (id_len < 0)
		return errno == EAGAIN;
	len = zmq_recv(s->sock, frame, sizeof(frame), 0);
	if (len < 0 || len > (int)sizeof(frame))
		return true;
	if (proto_wire_decode(frame, (size_t)len, &m))
		return true;
	from = remember(s, id, (size_t)id_len);
	if (!from)
		return true;
	if (m.type == PROTO_WIRE_HELLO && !m.reply)
		return send_hello(s, from);
	if (m.type == PROTO_WIRE_PEERS_REQ) {
		s->answered++;
		return send_peers(s, from);
	}
	return true;
}

/* Pings every peer and sends it a PEERS message it did not ask for. */
static bool keep_alive(server *s)
{
	for (size_t i = 0; i < s->n_peers; i++) {
		uint8_t *buf;
		size_t len;

		if (proto_wire_ping(cm_now_ms(), &buf, &len) ||
		    !send_to(s, &s->peers[i], buf, len) ||
		    !send_peers(s, &s->peers[i]))
			return false;
		s->unasked++;
	}
	return true;
}

static bool bind_server(server *s)
{
	uint8_t secret[KEY_LEN];
	char endpoint[256], hex[2 * KEY_LEN + 1];
	size_t endpoint_len = sizeof(endpoint);
	int on = 1, linger = 0;
	const char *port;

	crypto_box_keypair(s->pub, secret);
	if (zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &on, sizeof(on)) ||
	    zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, secret, KEY_LEN) ||
	    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_bind(s->sock, "tcp://127.0.0.1:*") ||
	    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, endpoint,
			   &endpoint_len)) {
		fprintf(stderr, "pex_peer: binding failed: %s\n",
			zmq_strerror(errno));
		return false;
	}
	port = strrchr(endpoint, ':');
	cm_hex_encode(s->pub, KEY_LEN, hex);
	printf("address clipmesh://%s@127.0.0.1%s\n", hex, port ? port : "");
	fflush(stdout);
	return true;
}

static bool parse_ports(server *s, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		uint64_t port;

		if (s->n_ports == PORTS_MAX || !cm_parse_u64(argv[i], &port) ||
		    port == 0 || port > 65535)
			return false;
		s->ports[s->n_ports++] = (uint16_t)port;
	}
	return s->n_ports > 0;
}

int main(int argc, char **argv)
{
	static server s;
	void *ctx = NULL;
	uint64_t next_ping = 0;
	bool ok = false;

	if (!parse_ports(&s, argc, argv)) {
		fprintf(stderr, "usage: pex_peer PORT... (1 to %d ports, each "
			"1 to 65535)\n", PORTS_MAX);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ctx = zmq_ctx_new();
	s.sock = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
	if (!s.sock || !bind_server(&s))
		goto out;

	ok = true;
	while (ok && !stopping) {
		zmq_pollitem_t item = {s.sock, 0, ZMQ_POLLIN, 0};

		if (zmq_poll(&item, 1, POLL_MS) < 0 && errno != EINTR)
			ok = false;
		while (ok && (item.revents & ZMQ_POLLIN) && receive(&s) &&
		       !stopping) {
			int events = 0;
			size_t size = sizeof(events);

			zmq_getsockopt(s.sock, ZMQ_EVENTS, &events, &size);
			if (!(events & ZMQ_POLLIN))
				break;
		}
		if (ok && cm_mono_ms() >= next_ping) {
			ok = keep_alive(&s);
			next_ping = cm_mono_ms() + PING_MS;
		}
	}
	printf("answered %lu\nunasked %lu\n", s.answered, s.unasked);
out:
	if (s.sock)
		zmq_close(s.sock);
	if (ctx)
		zmq_ctx_term(ctx);
	return ok ? 0 : 1;
}
