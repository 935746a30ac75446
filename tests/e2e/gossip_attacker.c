/*
 * gossip_attacker.c - a peer that abuses announce-then-fetch gossip, for
 * tests/e2e/test_gossip_attack.sh.
 *
 * Usage: gossip_attacker [--seconds N] flood VICTIM
 *        gossip_attacker [--seconds N] steal SOURCE VICTIM
 *        gossip_attacker [--seconds N] want ID VICTIM
 *
 * flood   sends HAVE messages of CM_WIRE_IDS_MAX random ids to VICTIM as
 *         fast as the node reads them, and never delivers a record. It
 *         fills the node's table of requested ids many times over.
 * steal   connects to SOURCE and VICTIM. Each id that SOURCE announces is
 *         announced at once to VICTIM, which then requests it from this
 *         client; the client never delivers it. An honest peer that
 *         announces the same id a moment later is the one that could
 *         deliver it.
 * want    sends VICTIM WANTs that name record ID CM_WIRE_IDS_MAX times
 *         each, as fast as VICTIM reads them, reads every reply, and
 *         counts the bytes both ways.
 *
 * Both run for --seconds (default 30) and send the node no records. Then
 * they print one "NAME VALUE" line per counter on stdout: HAVE messages
 * and ids sent, WANT messages and ids received. Exit status: 0 after the run,
 * 1 on a failure (reason on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "cm_limits.h"
#include "cm_util.h"
#include "node.h"
#include "proto_wire.h"

#define CURVE_KEY_LEN 32
#define ENDPOINT_MAX 256
#define HELLO_TIMEOUT_MS 10000
#define PING_EVERY_MS 1000
#define SEND_TIMEOUT_MS 100
#define IDS_BYTES (CM_WIRE_IDS_MAX * PROTO_ID_LEN)

/* A DEALER connected to one node. */
typedef struct conn {
	void *sock;
	uint8_t server_key[CURVE_KEY_LEN];
	char endpoint[ENDPOINT_MAX];
	uint64_t next_ping;
} conn;

typedef struct counters {
	uint64_t have_msgs;
	uint64_t have_ids;
	uint64_t want_msgs;
	uint64_t want_ids;
	uint64_t stolen_ids;       /* steal: ids relayed from SOURCE */
	uint64_t send_blocked;     /* HAVEs the node did not take in time */
	uint64_t bytes_out;        /* want: bytes of the WANTs sent */
	uint64_t bytes_in;         /* want: bytes of all replies */
	uint64_t records_in;       /* want: records in the replies */
} counters;

static void *zctx;
static volatile sig_atomic_t stopping;
static counters count;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static bool failf(const char *what)
{
	fprintf(stderr, "gossip_attacker: %s: %s\n", what,
		zmq_strerror(errno));
	return false;
}

static bool conn_open(conn *c, const char *addr)
{
	uint8_t pub[CURVE_KEY_LEN], secret[CURVE_KEY_LEN];
	int linger = 0, timeout = SEND_TIMEOUT_MS;
	int64_t max = CM_WIRE_MSG_MAX;

	if (node_parse_addr(addr, c->endpoint, c->server_key) != CM_OK) {
		fprintf(stderr, "gossip_attacker: invalid peer address: %s\n",
			addr);
		return false;
	}
	crypto_box_keypair(pub, secret);
	c->sock = zmq_socket(zctx, ZMQ_DEALER);
	if (c->sock == NULL)
		return failf("creating a DEALER");
	if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &timeout, sizeof(timeout)) ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, c->server_key,
			   CURVE_KEY_LEN) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, CURVE_KEY_LEN) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, secret,
			   CURVE_KEY_LEN))
		return failf("setting DEALER options");
	if (zmq_connect(c->sock, c->endpoint))
		return failf("connecting");
	return true;
}

/* Sends the message that an encoder wrote to *buf and *len and frees it;
 * false when the node did not take it within SEND_TIMEOUT_MS. The encoder
 * may run in the argument list: the pointers are read after it returned. */
static bool send_encoded(conn *c, cm_err err, uint8_t **buf,
			 const size_t *len)
{
	int rc;

	if (err) {
		fprintf(stderr, "gossip_attacker: encoding failed: %s\n",
			cm_err_name(err));
		return false;
	}
	rc = zmq_send(c->sock, *buf, *len, 0);
	free(*buf);
	*buf = NULL;
	return rc >= 0;
}

static void ping_due(conn *c, uint64_t now)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	if (now < c->next_ping)
		return;
	c->next_ping = now + PING_EVERY_MS;
	err = proto_wire_ping(cm_now_ms(), &buf, &len);
	send_encoded(c, err, &buf, &len);
}

/* Receives one waiting message and decodes it into *m, whose pointers
 * point into *frame. Returns 1, or 0 when none waits or it is invalid. */
static int conn_take(conn *c, zmq_msg_t *frame, proto_wire_msg *m)
{
	if (zmq_msg_recv(frame, c->sock, ZMQ_DONTWAIT) < 0)
		return 0;
	if (proto_wire_decode(zmq_msg_data(frame), zmq_msg_size(frame), m))
		return 0;
	if (m->type == PROTO_WIRE_WANT) {
		count.want_msgs++;
		count.want_ids += m->n_ids;
	}
	count.bytes_in += zmq_msg_size(frame);
	if (m->type == PROTO_WIRE_RECORDS)
		count.records_in += m->n_records;
	return 1;
}

/* Sends HELLO as a mirror (interest: every author) and waits for the
 * node's reply HELLO. */
static bool handshake(conn *c)
{
	uint64_t deadline = cm_mono_ms() + HELLO_TIMEOUT_MS;
	uint8_t pub[CURVE_KEY_LEN], *buf = NULL;
	size_t len = 0, pub_len = sizeof(pub);
	proto_wire_hello_info hello = {.role = PROTO_WIRE_ROLE_MIRROR};
	zmq_msg_t frame;
	proto_wire_msg m;
	bool ok = false;

	zmq_getsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, &pub_len);
	hello.node_key = pub;
	hello.time_ms = cm_now_ms();
	if (!send_encoded(c, proto_wire_hello(&hello, &buf, &len), &buf, &len))
		return failf("sending HELLO");
	zmq_msg_init(&frame);
	while (!ok && !stopping && cm_mono_ms() < deadline) {
		zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};

		if (zmq_poll(&item, 1, 100) <= 0)
			continue;
		ok = conn_take(c, &frame, &m) && m.type == PROTO_WIRE_HELLO &&
		     m.reply;
	}
	zmq_msg_close(&frame);
	if (!ok)
		fprintf(stderr, "gossip_attacker: no HELLO from %s within "
			"%d ms\n", c->endpoint, HELLO_TIMEOUT_MS);
	return ok;
}

/* Reads and drops everything the node sent. */
static void drain(conn *c)
{
	zmq_msg_t frame;
	proto_wire_msg m;

	zmq_msg_init(&frame);
	while (conn_take(c, &frame, &m))
		;
	zmq_msg_close(&frame);
}

static bool send_have(conn *c, const uint8_t *ids, size_t n)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = proto_wire_ids(PROTO_WIRE_HAVE, ids, n, &buf, &len);
	if (!send_encoded(c, err, &buf, &len)) {
		count.send_blocked++;
		return false;
	}
	count.have_msgs++;
	count.have_ids += n;
	return true;
}

static bool run_flood(conn *victim, uint64_t end)
{
	static uint8_t ids[IDS_BYTES];

	while (!stopping && cm_mono_ms() < end) {
		randombytes_buf(ids, sizeof(ids));
		send_have(victim, ids, CM_WIRE_IDS_MAX);
		drain(victim);
	}
	return true;
}

/* Relays the ids of each HAVE from source to victim. */
static bool run_steal(conn *source, conn *victim, uint64_t end)
{
	zmq_pollitem_t items[2] = {{source->sock, 0, ZMQ_POLLIN, 0},
				   {victim->sock, 0, ZMQ_POLLIN, 0}};
	zmq_msg_t frame;
	proto_wire_msg m;

	zmq_msg_init(&frame);
	while (!stopping && cm_mono_ms() < end) {
		uint64_t now = cm_mono_ms();

		ping_due(source, now);
		ping_due(victim, now);
		if (zmq_poll(items, 2, 100) < 0 && errno != EINTR)
			return failf("polling");
		while (conn_take(source, &frame, &m)) {
			if (m.type != PROTO_WIRE_HAVE)
				continue;
			if (send_have(victim, m.ids, m.n_ids))
				count.stolen_ids += m.n_ids;
		}
		drain(victim);
	}
	zmq_msg_close(&frame);
	return true;
}

/* Requests one record CM_WIRE_IDS_MAX times per WANT. */
static bool run_want(conn *victim, const uint8_t id[PROTO_ID_LEN],
		     uint64_t end)
{
	static uint8_t ids[IDS_BYTES];
	uint8_t *buf = NULL;
	size_t len = 0;

	for (size_t i = 0; i < CM_WIRE_IDS_MAX; i++)
		memcpy(ids + i * PROTO_ID_LEN, id, PROTO_ID_LEN);
	while (!stopping && cm_mono_ms() < end) {
		cm_err err = proto_wire_ids(PROTO_WIRE_WANT, ids,
					    CM_WIRE_IDS_MAX, &buf, &len);
		size_t sent = len;

		if (send_encoded(victim, err, &buf, &len))
			count.bytes_out += sent;
		drain(victim);
	}
	return true;
}

static void print_counters(void)
{
	printf("bytes_out %llu\nbytes_in %llu\nrecords_in %llu\n",
	       (unsigned long long)count.bytes_out,
	       (unsigned long long)count.bytes_in,
	       (unsigned long long)count.records_in);
	printf("have_msgs %llu\nhave_ids %llu\nwant_msgs %llu\n"
	       "want_ids %llu\nstolen_ids %llu\nsend_blocked %llu\n",
	       (unsigned long long)count.have_msgs,
	       (unsigned long long)count.have_ids,
	       (unsigned long long)count.want_msgs,
	       (unsigned long long)count.want_ids,
	       (unsigned long long)count.stolen_ids,
	       (unsigned long long)count.send_blocked);
}

static int usage(void)
{
	fprintf(stderr, "usage: gossip_attacker [--seconds N] flood VICTIM\n"
		"       gossip_attacker [--seconds N] steal SOURCE VICTIM\n"
		"       gossip_attacker [--seconds N] want ID VICTIM\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"seconds", required_argument, NULL, 's'}, {0}};
	conn source = {0}, victim = {0};
	uint64_t seconds = 30, end;
	struct sigaction sa;
	uint8_t id[PROTO_ID_LEN];
	bool steal, want, ok;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt != 's' || !cm_parse_u64(optarg, &seconds) ||
		    seconds == 0 || seconds > 3600)
			return usage();
	}
	if (optind >= argc)
		return usage();
	steal = strcmp(argv[optind], "steal") == 0;
	want = strcmp(argv[optind], "want") == 0;
	if (!(steal && argc - optind == 3) &&
	    !(want && argc - optind == 3 &&
	      cm_hex_decode(argv[optind + 1], id, sizeof(id))) &&
	    !(strcmp(argv[optind], "flood") == 0 && argc - optind == 2))
		return usage();
	if (sodium_init() < 0)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	zctx = zmq_ctx_new();
	if (steal)
		ok = conn_open(&source, argv[optind + 1]) &&
		     conn_open(&victim, argv[optind + 2]) &&
		     handshake(&source) && handshake(&victim);
	else
		ok = conn_open(&victim, argv[argc - 1]) && handshake(&victim);
	if (ok) {
		printf("ready\n");
		end = cm_mono_ms() + seconds * 1000;
		if (steal)
			ok = run_steal(&source, &victim, end);
		else if (want)
			ok = run_want(&victim, id, end);
		else
			ok = run_flood(&victim, end);
	}
	print_counters();
	if (source.sock)
		zmq_close(source.sock);
	if (victim.sock)
		zmq_close(victim.sock);
	zmq_ctx_term(zctx);
	return ok ? 0 : 1;
}
