/*
 * hostile_peer.c - a test client that misbehaves towards a clipmesh node on
 * purpose, for tests/e2e/test_hostile.sh.
 *
 * Usage: hostile_peer [--records FILE] [--media FILE] [--source IP]
 *                     [--rate N] [--rounds N] [--connections N]
 *                     [--hello] SCENARIO ADDRESS
 *
 * It connects to the node at ADDRESS (clipmesh://KEYHEX@HOST:PORT, as
 * `clipmesh id` prints it) as a CURVE client with a fresh key pair and runs
 * one scenario. It exits 0 when the node behaved correctly as far as a peer
 * can see, 1 when it did not (the reason goes to stderr), and 2 on bad
 * usage.
 *
 * The node's own side (rejection counters, store contents) is for the
 * calling script to check. The client prints what the script must find
 * there, one fact per line on stdout:
 *
 *   peer KEYHEX                this client's CURVE public key
 *   author KEYHEX              an Ed25519 key that signed records of this run
 *   stored ID                  a record the node must store
 *   absent ID                  a record the node must not store
 *   retracted ID               a clip the node must list as retracted
 *   expect REASON MIN MAX      the node counted MIN..MAX rejections under
 *                              REASON ("*": under any reason) in this run
 *   ready                      bad-media: the bad responses were
 *                              rejected; stall: the first requests went
 *                              out; silent: every handshake ended
 *   flooding ROUND             rate-flood: round ROUND started sending
 *   banned ROUND MS MESSAGES   rate-flood: the node closed the connection
 *                              and denied it again MS ms after round
 *                              ROUND started, which sent MESSAGES
 *   denied KEYS                slots: the node accepted KEYS keys from the
 *                              address and denied the next one
 *   accepted N                 silent: N connections finished the CURVE
 *                              handshake
 *   closed N MIN MAX           silent: the node closed N of those, MIN to
 *                              MAX ms after their handshakes
 *
 * The client speaks the protocol from proto/PROTOCOL.md through cm_proto's
 * encoders and strict decoder, and builds the broken bytes itself.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include <zmq.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "proto_media.h"
#include "proto_record.h"
#include "proto_wire.h"
#include "hostile.h"

#define SEND_TIMEOUT_MS 30000
#define FLOOD_COUNT 20000
/* How long the flood scenario retries a new connection until the ban
 * shows, because the node may still be reading the flood. */
#define BAN_DEADLINE_MS 30000
#define BAN_RETRY_MS 250
/* rate-flood: the default rate, the send interval, how long a round may
 * take until the ban, and how long the client waits for a ban to end. */
#define FLOOD_RATE_DEFAULT 1000
#define FLOOD_TICK_MS 10
#define FLOOD_ROUND_MAX_MS 180000
#define BAN_END_MAX_MS 600000
#define FLOOD_BAD_EVERY 50     /* one record in this many is badly signed */
/* How long bad-media keeps its connection after it is ready, unless
 * SIGTERM ends it first. */
#define HOLD_MS 120000

#define ADDR_PREFIX "clipmesh://"
#define GARBAGE_MAX 64                 /* bytes of a table entry */
#define NESTING_DEPTH 1000
#define BIG_FRAME_LEN (1024 * 1024)
#define CHECK_MAX 8                    /* records in one check_stored() */

void *zctx;
static const char *scenario_name = "";
volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Reports why the node (or the client) failed the scenario; returns false
 * so that callers can `return failf(...)`. */
bool failf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hostile_peer: %s: ", scenario_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return false;
}

bool zmq_failed(const char *action)
{
	return failf("%s failed: %s", action, zmq_strerror(errno));
}

void print_hex(const char *label, const uint8_t *bin, size_t len)
{
	char hex[2 * 64 + 1];

	cm_hex_encode(bin, len, hex);
	printf("%s %s\n", label, hex);
}

void expect(const char *reason, unsigned min, unsigned max)
{
	printf("expect %s %u %u\n", reason, min, max);
}

void pass(const char *check)
{
	printf("ok - %s\n", check);
}

/* --- Connections ----------------------------------------------------- */

void keys_new(curve_keys *k)
{
	crypto_box_keypair(k->pub, k->secret);
}

bool set_options(conn *c, const options *opt)
{
	int linger = 0, send_timeout = SEND_TIMEOUT_MS, no_reconnect = -1;
	int64_t max = CM_WIRE_MSG_MAX;

	if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &send_timeout,
			   sizeof(send_timeout)) ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, opt->server_key,
			   CURVE_KEY_LEN) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, c->keys.pub,
			   CURVE_KEY_LEN) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, c->keys.secret,
			   CURVE_KEY_LEN))
		return zmq_failed("setting DEALER options");
	if (opt->no_reconnect &&
	    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL, &no_reconnect,
			   sizeof(no_reconnect)))
		return zmq_failed("turning reconnection off");
	return true;
}

/* Starts a monitor of the connection's handshakes and disconnects. It must
 * run before zmq_connect so that no event is missed. */
bool monitor_start(conn *c)
{
	static unsigned sequence;
	char endpoint[64];
	int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
		     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
		     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
		     ZMQ_EVENT_DISCONNECTED;

	snprintf(endpoint, sizeof(endpoint), "inproc://hostile-monitor-%u",
		 sequence++);
	if (zmq_socket_monitor(c->sock, endpoint, events))
		return zmq_failed("starting a socket monitor");
	c->events = zmq_socket(zctx, ZMQ_PAIR);
	if (!c->events || zmq_connect(c->events, endpoint))
		return zmq_failed("connecting to the socket monitor");
	return true;
}

/* Waits up to ms for a handshake outcome or a disconnect of a monitored
 * connection; returns the event, 0 on timeout. */
int monitor_wait(conn *c, int ms)
{
	uint8_t event[6];
	uint16_t code;
	int more = 0;
	size_t more_len = sizeof(more);

	zmq_setsockopt(c->events, ZMQ_RCVTIMEO, &ms, sizeof(ms));
	if (zmq_recv(c->events, event, sizeof(event), 0) < 6)
		return 0;
	memcpy(&code, event, sizeof(code));

	/* Skip the rest of this event (its address frame), not the next. */
	while (zmq_getsockopt(c->events, ZMQ_RCVMORE, &more, &more_len) == 0 &&
	       more && zmq_recv(c->events, event, 0, 0) >= 0)
		;
	return code;
}

/* Opens a connection with `keys`; `watch` adds a monitor of its events. */
bool conn_open(conn *c, const options *opt, const curve_keys *keys,
		      bool watch)
{
	memset(c, 0, sizeof(*c));
	c->keys = *keys;
	c->auto_serve = true;
	zmq_msg_init(&c->frame);
	c->opened = true;

	c->sock = zmq_socket(zctx, ZMQ_DEALER);
	if (!c->sock)
		return zmq_failed("creating a DEALER");
	if (!set_options(c, opt))
		return false;
	if (watch && !monitor_start(c))
		return false;
	if (zmq_connect(c->sock, opt->connect_endpoint))
		return zmq_failed("connecting");
	return true;
}

/* Closes a connection; accepts one zeroed by `conn c = {0}`. */
void conn_close(conn *c)
{
	if (!c->opened)
		return;
	zmq_msg_close(&c->frame);
	if (c->events) {
		zmq_socket_monitor(c->sock, NULL, 0);
		zmq_close(c->events);
	}
	if (c->sock)
		zmq_close(c->sock);
	memset(c, 0, sizeof(*c));
}

bool send_frame(conn *c, const void *buf, size_t len, int flags)
{
	if (zmq_send(c->sock, buf, len, flags) < 0)
		return zmq_failed("sending a message");
	return true;
}

/*
 * Sends the message that a cm_proto encoder wrote to *buf and *len, and
 * frees it. The encoder may run in the argument list, as in
 * send_encoded(c, proto_wire_ping(t, &buf, &len), &buf, &len), because the
 * pointers are read only after it returned.
 */
bool send_encoded(conn *c, cm_err err, uint8_t **buf,
			 const size_t *len)
{
	bool ok;

	if (err)
		return failf("encoding a message failed: %s (%s)",
			     cm_err_name(err), cm_err_detail());
	ok = send_frame(c, *buf, *len, 0);
	free(*buf);
	*buf = NULL;
	return ok;
}

/*
 * Waits up to ms for one message from the node and decodes it into *m,
 * which points into c->frame until the next receive. Returns 1 when a
 * message arrived, 0 on timeout or SIGTERM, -1 on a failure (reported):
 * a node never sends a message that the strict decoder rejects.
 */
int conn_recv(conn *c, int ms, proto_wire_msg *m)
{
	zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
	cm_err err;
	int rc;

	rc = zmq_poll(&item, 1, ms);
	if (rc < 0 && errno == EINTR)
		return 0;
	if (rc < 0) {
		zmq_failed("polling");
		return -1;
	}
	if (rc == 0)
		return 0;
	if (zmq_msg_recv(&c->frame, c->sock, 0) < 0) {
		zmq_failed("receiving");
		return -1;
	}
	if (zmq_msg_more(&c->frame)) {
		failf("the node sent a message of more than one frame");
		return -1;
	}
	err = proto_wire_decode(zmq_msg_data(&c->frame),
				zmq_msg_size(&c->frame), m);
	if (err) {
		failf("the node sent an invalid message: %s (%s)",
		      cm_err_name(err), cm_err_detail());
		return -1;
	}
	return 1;
}

/* Responds to a MANIFEST_REQ or CHUNK_REQ from the node: honestly for the
 * media in c->served, with NOT_FOUND for anything else. */
static bool serve_request(conn *c, const proto_wire_msg *m)
{
	const media *md = c->served;
	bool known = md && memcmp(m->root, md->root, PROTO_HASH_LEN) == 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	if (m->type == PROTO_WIRE_MANIFEST_REQ && known)
		err = proto_wire_manifest(md->root, MEDIA_LEN, md->chunk, 1,
					  &buf, &len);
	else if (m->type == PROTO_WIRE_MANIFEST_REQ)
		err = proto_wire_not_found(PROTO_WIRE_MISSING_MANIFEST,
					   m->root, 0, &buf, &len);
	else if (known && m->index == 0) {
		err = proto_wire_chunk(md->root, 0, md->data, MEDIA_LEN, &buf,
				       &len);
		c->media_fetched = true;
	} else
		err = proto_wire_not_found(PROTO_WIRE_MISSING_CHUNK, m->root,
					   m->index, &buf, &len);
	return send_encoded(c, err, &buf, &len);
}

/* Receives the next message before `deadline` (monotonic ms) and serves
 * the node's media requests on the way, unless the scenario handles them
 * itself. Returns as conn_recv(). */
int conn_next(conn *c, uint64_t deadline, proto_wire_msg *m)
{
	for (;;) {
		uint64_t now = cm_mono_ms();
		int rc;

		if (now >= deadline || stopping)
			return 0;
		rc = conn_recv(c, (int)(deadline - now), m);
		if (rc <= 0)
			return rc;
		if (!c->auto_serve || (m->type != PROTO_WIRE_MANIFEST_REQ &&
				       m->type != PROTO_WIRE_CHUNK_REQ))
			return 1;
		if (!serve_request(c, m))
			return -1;
	}
}

/* Waits up to ms for a message of `type`, skipping others. Returns as
 * conn_recv(). */
int conn_await(conn *c, proto_wire_type type, int ms,
		      proto_wire_msg *m)
{
	uint64_t deadline = cm_mono_ms() + (uint64_t)ms;
	int rc;

	while ((rc = conn_next(c, deadline, m)) == 1)
		if (m->type == type)
			return 1;
	return rc;
}

/* Waits until the node fetched the media of the clips this connection
 * pushed. A mirror fetches all media, and first from the peer that sent
 * the clip. Waiting also keeps the node from fetching from a gone peer. */
static bool await_fetch(conn *c)
{
	uint64_t deadline = cm_mono_ms() + REPLY_TIMEOUT_MS;
	proto_wire_msg m;
	int rc = 1;

	while (!c->media_fetched && rc == 1)
		rc = conn_next(c, deadline, &m);
	if (c->media_fetched)
		return true;
	if (rc == 0)
		failf("the node did not fetch the media of a stored clip "
		      "from the peer that sent it within %d ms",
		      REPLY_TIMEOUT_MS);
	return false;
}

/* Waits for the node's HELLO with the given reply flag. */
bool await_hello(conn *c, const options *opt, bool reply,
			const char *after)
{
	uint64_t deadline = cm_mono_ms() + REPLY_TIMEOUT_MS;
	proto_wire_msg m;
	int rc;

	while ((rc = conn_next(c, deadline, &m)) == 1) {
		if (m.type != PROTO_WIRE_HELLO || m.reply != reply)
			continue;
		if (memcmp(m.node_key, opt->server_key, CURVE_KEY_LEN) != 0)
			return failf("the node's HELLO names a key other than "
				     "its CURVE key");
		return true;
	}
	if (rc == 0)
		failf("no HELLO (reply %s) from the node within %d ms after "
		      "%s", reply ? "true" : "false", REPLY_TIMEOUT_MS, after);
	return false;
}

/* Encodes a HELLO that requests a reply, from a mirror that accepts no
 * connections, naming `key` as the sender's node key. */
static cm_err encode_hello(const uint8_t *key, uint8_t **buf, size_t *len)
{
	proto_wire_hello_info h = {
		.role = PROTO_WIRE_ROLE_MIRROR,
		.node_key = key,
		.time_ms = cm_now_ms(),
	};

	return proto_wire_hello(&h, buf, len);
}

/* Introduces the client (interest: every author) and waits for the
 * node's reply HELLO. */
bool handshake(conn *c, const options *opt)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = encode_hello(c->keys.pub, &buf, &len);
	if (!send_encoded(c, err, &buf, &len))
		return false;
	return await_hello(c, opt, true, "our HELLO");
}

/* Opens a connection with fresh keys, prints its key and sends HELLO. */
bool conn_start(conn *c, const options *opt)
{
	curve_keys keys;

	keys_new(&keys);
	print_hex("peer", keys.pub, CURVE_KEY_LEN);
	return conn_open(c, opt, &keys, false) && handshake(c, opt);
}

/* Opens a watched connection with `keys` and waits for the handshake's
 * outcome: returns the monitor event, 0 on timeout. */
static int try_handshake(conn *c, const options *opt, const curve_keys *keys)
{
	uint64_t deadline = cm_mono_ms() + REPLY_TIMEOUT_MS;
	int event = 0;

	if (!conn_open(c, opt, keys, true))
		return -1;
	while (event != ZMQ_EVENT_HANDSHAKE_SUCCEEDED &&
	       event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH &&
	       cm_mono_ms() < deadline && !stopping)
		event = monitor_wait(c, BAN_RETRY_MS);
	return event;
}

/* Sends a MANIFEST_REQ for a random root and receives messages until its
 * NOT_FOUND. A node handles one peer's messages in order, so everything
 * it sent in response to earlier messages has arrived by then.
 * on_records (may be NULL) is called with each RECORDS message on the
 * way. */
bool barrier(conn *c, records_fn on_records, void *ctx)
{
	uint8_t root[PROTO_HASH_LEN], *buf = NULL;
	uint64_t deadline = cm_mono_ms() + REPLY_TIMEOUT_MS;
	proto_wire_msg m;
	size_t len = 0;
	int rc;

	randombytes_buf(root, sizeof(root));
	if (!send_encoded(c, proto_wire_manifest_req(root, &buf, &len), &buf,
			  &len))
		return false;
	while ((rc = conn_next(c, deadline, &m)) == 1) {
		if (m.type == PROTO_WIRE_RECORDS && on_records &&
		    !on_records(ctx, &m))
			return false;
		if (m.type == PROTO_WIRE_NOT_FOUND &&
		    memcmp(m.root, root, PROTO_HASH_LEN) == 0)
			return true;
	}
	if (rc == 0)
		failf("no NOT_FOUND for a missing manifest within %d ms: the "
		      "node stopped serving this peer", REPLY_TIMEOUT_MS);
	return false;
}

/* --- Records --------------------------------------------------------- */

void creator_new(creator *cr)
{
	media *md = &cr->media;

	crypto_sign_keypair(cr->pk, cr->sk);
	randombytes_buf(md->data, sizeof(md->data));
	memcpy(md->data, "\xff\xd8\xff", 3); /* a JPEG start */
	proto_chunk_hash(md->data, sizeof(md->data), md->chunk);
	proto_media_root((const uint8_t (*)[PROTO_HASH_LEN])md->chunk, 1,
			 sizeof(md->data), md->root);
	print_hex("author", cr->pk, sizeof(cr->pk));
}

/* Fills a valid clip by cr, created at created_ms, with its media. */
void clip_fill(proto_record *r, const creator *cr, const char *title,
		      uint64_t created_ms)
{
	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_CLIP;
	memcpy(r->author, cr->pk, PROTO_KEY_LEN);
	r->created_ms = created_ms;
	cm_strlcpy(r->product, "gtin:2000000001012", sizeof(r->product));
	cm_strlcpy(r->title, title, sizeof(r->title));
	r->rating = 3;
	r->n_media = 1;
	memcpy(r->media[0].hash, cr->media.root, PROTO_HASH_LEN);
	r->media[0].size = MEDIA_LEN;
	cm_strlcpy(r->media[0].type, "image/jpeg", sizeof(r->media[0].type));
}

static void retraction_fill(proto_record *r, const creator *cr,
			    const uint8_t target[PROTO_ID_LEN])
{
	memset(r, 0, sizeof(*r));
	r->kind = PROTO_KIND_RETRACT;
	memcpy(r->author, cr->pk, PROTO_KEY_LEN);
	r->created_ms = cm_now_ms();
	memcpy(r->target, target, PROTO_ID_LEN);
}

bool record_sign(const proto_record *r, const creator *cr,
			const char *name, record *out)
{
	cm_err err;

	out->name = name;
	err = proto_record_sign(r, cr->sk, out->wire, sizeof(out->wire),
				&out->len, out->id);
	if (err)
		return failf("signing the %s record failed: %s (%s)", name,
			     cm_err_name(err), cm_err_detail());
	return true;
}

static bool body_encode(const proto_record *r, uint8_t *body, size_t cap,
			size_t *len)
{
	cm_err err = proto_body_encode(r, body, cap, len);

	if (err)
		return failf("encoding a record body failed: %s (%s)",
			     cm_err_name(err), cm_err_detail());
	return true;
}

/*
 * Signs any body bytes under the signature domain "clipmesh/1/<type>"
 * with secret key sk and writes the wire form, the way PROTOCOL.md
 * defines it. A broken body thus carries a valid signature, so that its
 * encoding is its only fault.
 */
static bool body_sign(const uint8_t *body, size_t len, const char *type,
		      const uint8_t *sk, const char *name, record *out)
{
	uint8_t message[64];
	size_t mlen, at = 0;

	out->name = name;
	if (len > UINT16_MAX || len + 3 + 2 + PROTO_SIG_LEN > sizeof(out->wire))
		return failf("body of %zu bytes is too long to sign", len);
	proto_record_id(body, len, out->id);
	mlen = (size_t)snprintf((char *)message, sizeof(message),
				"clipmesh/1/%s", type) + 1;
	memcpy(message + mlen, out->id, PROTO_ID_LEN);
	mlen += PROTO_ID_LEN;

	out->wire[at++] = 0x92;
	if (len <= UINT8_MAX) {
		out->wire[at++] = 0xc4;
	} else {
		out->wire[at++] = 0xc5;
		out->wire[at++] = (uint8_t)(len >> 8);
	}
	out->wire[at++] = (uint8_t)len;
	memcpy(out->wire + at, body, len);
	at += len;
	out->wire[at++] = 0xc4;
	out->wire[at++] = PROTO_SIG_LEN;
	crypto_sign_detached(out->wire + at, NULL, message, mlen, sk);
	out->len = at + PROTO_SIG_LEN;
	return true;
}

/* Sends n records in one RECORDS message. */
bool push(conn *c, const record *const *recs, size_t n)
{
	const uint8_t *wires[CM_WIRE_BATCH_MAX];
	size_t lens[CM_WIRE_BATCH_MAX], len = 0;
	uint8_t *buf = NULL;

	for (size_t i = 0; i < n && i < CM_WIRE_BATCH_MAX; i++) {
		wires[i] = recs[i]->wire;
		lens[i] = recs[i]->len;
	}
	return send_encoded(c, proto_wire_records(wires, lens, n, &buf, &len),
			    &buf, &len);
}

static bool push_one(conn *c, const record *rec)
{
	return push(c, &rec, 1);
}

/* What check_stored() expects the node to send back. */
typedef struct stored_check {
	const record *const *present;
	size_t n_present;
	bool found[CHECK_MAX];
	const record *const *absent;
	size_t n_absent;
} stored_check;

static bool check_record(stored_check *sc, const uint8_t *wire, size_t len)
{
	static proto_signed opened;
	char hex[9];
	cm_err err;

	err = proto_record_open(wire, len, cm_now_ms(), &opened);
	if (err)
		return failf("the node sent a record that fails "
			     "verification: %s (%s)", cm_err_name(err),
			     cm_err_detail());
	cm_hex_short(opened.id, hex);
	for (size_t i = 0; i < sc->n_absent; i++)
		if (memcmp(opened.id, sc->absent[i]->id, PROTO_ID_LEN) == 0)
			return failf("the node holds the %s record %s, which "
				     "it must not store", sc->absent[i]->name,
				     hex);
	for (size_t i = 0; i < sc->n_present; i++) {
		const record *p = sc->present[i];

		if (memcmp(opened.id, p->id, PROTO_ID_LEN) != 0)
			continue;
		if (p->len != len || memcmp(p->wire, wire, len) != 0)
			return failf("the node sent the %s record %s with "
				     "other bytes than were pushed", p->name,
				     hex);
		sc->found[i] = true;
	}
	return true;
}

static bool check_records_message(void *ctx, const proto_wire_msg *m)
{
	for (size_t i = 0; i < m->n_records; i++)
		if (!check_record(ctx, m->records[i], m->record_lens[i]))
			return false;
	return true;
}

/*
 * Asks the node for the present and absent records in one WANT, and
 * checks that it sends back every present record byte for byte and none
 * of the absent ones. A node sends each requested record that it stores,
 * so this reads the node's store from the outside.
 */
static bool ask_stored(conn *c, const record *const *present,
		       size_t n_present, const record *const *absent,
		       size_t n_absent)
{
	stored_check sc = {present, n_present, {false}, absent, n_absent};
	uint8_t ids[2 * CHECK_MAX][PROTO_ID_LEN], *buf = NULL;
	size_t n = 0, len = 0;
	cm_err err;

	if (n_present > CHECK_MAX || n_absent > CHECK_MAX)
		return failf("more than %d records to check", CHECK_MAX);
	for (size_t i = 0; i < n_present; i++)
		memcpy(ids[n++], present[i]->id, PROTO_ID_LEN);
	for (size_t i = 0; i < n_absent; i++)
		memcpy(ids[n++], absent[i]->id, PROTO_ID_LEN);

	err = proto_wire_ids(PROTO_WIRE_WANT, ids[0], n, &buf, &len);
	if (!send_encoded(c, err, &buf, &len) ||
	    !barrier(c, check_records_message, &sc))
		return false;
	for (size_t i = 0; i < n_present; i++)
		if (!sc.found[i])
			return failf("the node does not send back the %s "
				     "record, so it did not store it",
				     present[i]->name);
	return true;
}

/* Runs ask_stored() and prints the "stored" and "absent" lines that
 * test_hostile.sh checks on every node. */
static bool check_stored(conn *c, const record *const *present,
			 size_t n_present, const record *const *absent,
			 size_t n_absent)
{
	if (!ask_stored(c, present, n_present, absent, n_absent))
		return false;
	for (size_t i = 0; i < n_present; i++)
		print_hex("stored", present[i]->id, PROTO_ID_LEN);
	for (size_t i = 0; i < n_absent; i++)
		print_hex("absent", absent[i]->id, PROTO_ID_LEN);
	return true;
}

/* --- Scenario: garbage ----------------------------------------------- */

/* A malformed message as hex, where "<XX*N>" stands for byte XX written N
 * times, and the reason that PROTOCOL.md gives for it (NULL: open). */
typedef struct garbage {
	const char *hex;
	const char *reason;
} garbage;

/* The invalid messages that PROTOCOL.md lists with their reasons. */
static const garbage protocol_garbage[] = {
	{"92 02 00 00", "trailing_bytes"},
	{"92 05 c5 01 00 <01*32>", "truncated"},
	{"92 03 dc 00 41", "too_many"},
	{"98 01 01 01 c2 c4 20 <11*32> dc 10 01", "too_many"},
	{"92 03 91 c5 40 81", "too_long"},
	{"93 08 c4 20 <aa*32> cd 40 00", "bad_message"},
	{"91 cc 02", "nonminimal_int"},
	{"dc 00 01 91 02", "nonminimal_len"},
	{"92 05 c5 00 20 <01*32>", "nonminimal_len"},
	{"91 ff", "negative_int"},
	{"92 04 90", "bad_type"},
	{"91 0b", "bad_message"},
	{"93 02 00 c0", "bad_message"},
	{"92 04 c4 21 <01*32> 01", "bad_message"},
	{"98 01 01 03 c2 c4 20 <11*32> c0 00 00", "bad_message"},
	{"96 01 01 01 c2 c4 20 <11*32> c0", "bad_message"},
	{"97 01 01 01 c2 c4 20 <11*32> c0 00", "bad_message"},
	{"98 01 01 01 c2 c4 20 <11*32> c0 00 ce 00 01 00 00", "bad_message"},
	{"91 02", "bad_message"},
	{"92 02 ff", "negative_int"},
	{"92 10 00", "bad_message"},
	{"92 10 c0", "bad_message"},
	{"91 cc 10", "nonminimal_int"},
};

/* Further malformed messages whose reason the protocol leaves open. */
static const garbage other_garbage[] = {
	{"", NULL},                        /* empty frame */
	{"c1", NULL},                      /* the never-used byte */
	{"81 a1 74 02", NULL},             /* a map, not an array */
	{"dd ff ff ff ff", NULL},          /* array32 claiming 2^32-1 items */
	{"92 03 91 c6 ff ff ff ff", NULL}, /* a record claiming 4 GiB */
	{"91 ca 40 00 00 00", NULL},       /* a float as the type */
	{"91 d4 00 00", NULL},             /* an extension type */
	{"92 03 91 c4 03 01 02 03", NULL}, /* a 3-byte record, not a record */
};

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Reads two hex digits at s into *byte. */
static bool hex_byte(const char *s, uint8_t *byte)
{
	int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);

	if (hi < 0 || lo < 0)
		return false;
	*byte = (uint8_t)(hi << 4 | lo);
	return true;
}

/* Expands a garbage table entry into out[cap]. Returns false on a typo
 * in the table. */
bool garbage_bytes(const char *hex, uint8_t *out, size_t cap,
			  size_t *len)
{
	const char *p = hex;
	uint8_t byte;

	*len = 0;
	while (*p) {
		char *end;
		unsigned long count = 1;

		if (*p == ' ') {
			p++;
			continue;
		}
		if (*p == '<') {
			if (!hex_byte(p + 1, &byte) || p[3] != '*')
				return false;
			count = strtoul(p + 4, &end, 10);
			if (*end != '>')
				return false;
			p = end + 1;
		} else {
			if (!hex_byte(p, &byte))
				return false;
			p += 2;
		}
		if (count > cap - *len)
			return false;
		memset(out + *len, byte, count);
		*len += count;
	}
	return true;
}

static bool send_garbage(conn *c, const garbage *g)
{
	uint8_t buf[GARBAGE_MAX];
	size_t len;

	if (!garbage_bytes(g->hex, buf, sizeof(buf), &len))
		return failf("garbage table entry '%s' is not valid hex",
			     g->hex);
	if (!send_frame(c, buf, len, 0))
		return false;
	expect(g->reason ? g->reason : "*", 1, 1);
	return true;
}

static bool send_garbage_table(conn *c, const garbage *table, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!send_garbage(c, &table[i]))
			return false;
	return true;
}

/* Sends len random bytes that start with the never-used byte c1, so that
 * they are never a valid message. */
static bool send_noise(conn *c, size_t len)
{
	uint8_t *buf = malloc(len);
	bool ok;

	if (!buf)
		return failf("out of memory for %zu bytes", len);
	randombytes_buf(buf, len);
	buf[0] = 0xc1;
	ok = send_frame(c, buf, len, 0);
	free(buf);
	expect("*", 1, 1);
	return ok;
}

static bool send_deep_nesting(conn *c)
{
	uint8_t buf[NESTING_DEPTH + 1];

	memset(buf, 0x91, NESTING_DEPTH);
	buf[NESTING_DEPTH] = 0x02;
	expect("*", 1, 1);
	return send_frame(c, buf, sizeof(buf), 0);
}

/* Sends the prefixes of a valid message cut at 1 byte, at half and one
 * byte short of its end: each is a truncated message. */
static bool send_cut(conn *c, cm_err err, uint8_t *buf, size_t len)
{
	size_t cuts[3] = {1, len / 2, len - 1};
	bool ok = true;

	if (err)
		return failf("encoding a message failed: %s",
			     cm_err_name(err));
	for (size_t i = 0; i < 3 && ok; i++) {
		ok = send_frame(c, buf, cuts[i], 0);
		expect("truncated", 1, 1);
	}
	free(buf);
	return ok;
}

static bool send_truncated(conn *c, const record *rec)
{
	const uint8_t *wire = rec->wire;
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = encode_hello(c->keys.pub, &buf, &len);
	if (!send_cut(c, err, buf, len))
		return false;
	err = proto_wire_records(&wire, &rec->len, 1, &buf, &len);
	return send_cut(c, err, buf, len);
}

/* A message of two frames has no meaning in the protocol: the node drops
 * it without counting. */
static bool send_two_frames(conn *c)
{
	static const uint8_t ping[] = {0x91, 0x02};

	return send_frame(c, ping, sizeof(ping), ZMQ_SNDMORE) &&
	       send_frame(c, ping, sizeof(ping), 0);
}

/* Sends a frame over the 2 MiB limit on a connection of its own, and
 * waits for the node's ZeroMQ to close that connection. */
static bool send_oversized(const options *opt)
{
	size_t len = CM_WIRE_MSG_MAX + 1;
	uint64_t deadline = cm_mono_ms() + REPLY_TIMEOUT_MS;
	uint8_t *buf = calloc(1, len);
	curve_keys keys;
	conn big = {0};
	int event = 0;
	bool ok;

	keys_new(&keys);
	ok = buf ? conn_open(&big, opt, &keys, true) : failf("out of memory");
	ok = ok && send_frame(&big, buf, len, 0);
	free(buf);
	while (ok && event != ZMQ_EVENT_DISCONNECTED &&
	       cm_mono_ms() < deadline)
		event = monitor_wait(&big, REPLY_TIMEOUT_MS);
	conn_close(&big);
	if (ok && event != ZMQ_EVENT_DISCONNECTED)
		return failf("the node kept a connection open that sent a "
			     "frame of %zu bytes", len);
	return ok;
}

static bool run_garbage(const options *opt)
{
	static const garbage before_hello = {"92 02 00 00",
					     "trailing_bytes"};
	static const garbage empty = {"", NULL};
	static const uint8_t goodbye[] = {0x91, 0x10};
	static proto_record r;
	creator cr;
	record control;
	const record *present[] = {&control};
	curve_keys keys;
	conn c = {0};
	bool ok;

	creator_new(&cr);
	clip_fill(&r, &cr, "Stored after the garbage", cm_now_ms());
	keys_new(&keys);
	print_hex("peer", keys.pub, CURVE_KEY_LEN);
	ok = record_sign(&r, &cr, "control", &control) &&
	     conn_open(&c, opt, &keys, false);
	c.served = &cr.media;

	/* Garbage before the HELLO, then the handshake must still work. A
	 * GOODBYE before the HELLO is ignored, not counted as rejected. */
	ok = ok && send_garbage(&c, &before_hello) &&
	     send_frame(&c, goodbye, sizeof(goodbye), 0) &&
	     send_garbage(&c, &empty) && send_noise(&c, 64) &&
	     handshake(&c, opt);
	if (ok)
		pass("handshake after garbage");

	ok = ok && send_garbage_table(&c, protocol_garbage,
				      sizeof(protocol_garbage) /
					      sizeof(protocol_garbage[0])) &&
	     send_garbage_table(&c, other_garbage,
				sizeof(other_garbage) /
					sizeof(other_garbage[0])) &&
	     send_truncated(&c, &control) && send_deep_nesting(&c) &&
	     send_noise(&c, BIG_FRAME_LEN) && send_two_frames(&c);
	ok = ok && barrier(&c, NULL, NULL);
	if (ok)
		pass("node responds after garbage");

	ok = ok && send_oversized(opt) && barrier(&c, NULL, NULL);
	if (ok)
		pass("node closed the connection with an oversized frame");

	ok = ok && push_one(&c, &control) &&
	     check_stored(&c, present, 1, NULL, 0) && await_fetch(&c);
	if (ok)
		pass("node stores a valid record after the garbage");
	conn_close(&c);
	return ok;
}

/* --- Scenario: hello-key --------------------------------------------- */

/* Sends a HELLO of wire version 2, which the encoder cannot build:
 * [1, 2, mirror, false, our key, nil, time as uint64]. */
static bool send_hello_v2(conn *c)
{
	static const uint8_t head[] = {0x98, 0x01, 0x02, 0x02, 0xc2, 0xc4,
				       CURVE_KEY_LEN};
	uint8_t buf[sizeof(head) + CURVE_KEY_LEN + 1 + 9 + 1];
	uint8_t *tail = buf + sizeof(head) + CURVE_KEY_LEN;
	uint64_t now = cm_now_ms();

	memcpy(buf, head, sizeof(head));
	memcpy(buf + sizeof(head), c->keys.pub, CURVE_KEY_LEN);
	tail[0] = 0xc0;
	tail[1] = 0xcf;
	for (int i = 0; i < 8; i++)
		tail[2 + i] = (uint8_t)(now >> (56 - 8 * i));
	tail[10] = 0x00; /* listens nowhere */
	return send_frame(c, buf, sizeof(buf), 0);
}

static bool run_hello_key(const options *opt)
{
	static proto_record r;
	uint8_t other_key[CURVE_KEY_LEN], *buf = NULL;
	size_t len = 0;
	creator cr;
	record early, control;
	const record *present[] = {&control}, *absent[] = {&early};
	curve_keys keys;
	conn c = {0};
	bool ok;

	creator_new(&cr);
	clip_fill(&r, &cr, "Pushed before a valid HELLO", cm_now_ms());
	ok = record_sign(&r, &cr, "pushed before the handshake", &early);
	clip_fill(&r, &cr, "Pushed after a valid HELLO", cm_now_ms());
	ok = ok && record_sign(&r, &cr, "control", &control);
	keys_new(&keys);
	print_hex("peer", keys.pub, CURVE_KEY_LEN);
	ok = ok && conn_open(&c, opt, &keys, false);
	c.served = &cr.media;

	/* A HELLO naming a key other than our CURVE key, then one of another
	 * wire version: the node accepts neither. */
	randombytes_buf(other_key, sizeof(other_key));
	ok = ok && send_encoded(&c, encode_hello(other_key, &buf, &len),
				&buf, &len) &&
	     send_hello_v2(&c);
	expect("bad_key", 1, 1);
	expect("bad_version", 1, 1);

	/* Still a stranger: the node asks us to introduce ourselves and
	 * ignores records. */
	ok = ok && send_encoded(&c, proto_wire_ping(cm_now_ms(), &buf, &len),
				&buf, &len) &&
	     await_hello(&c, opt, false, "a PING without a valid HELLO");
	if (ok)
		pass("node rejected both HELLOs and asks for a valid one");
	ok = ok && push_one(&c, &early);

	ok = ok && handshake(&c, opt) && push_one(&c, &control) &&
	     check_stored(&c, present, 1, absent, 1) && await_fetch(&c);
	if (ok)
		pass("records count only after a valid HELLO");
	conn_close(&c);
	return ok;
}

/* --- Scenario: forged ------------------------------------------------ */

/* Changes the first byte of `text` inside a wire record, keeping the body
 * valid, so that only the signature breaks. */
static bool change_one_byte(record *rec, const char *text)
{
	size_t n = strlen(text);

	for (size_t i = 0; i + n <= rec->len; i++) {
		if (memcmp(rec->wire + i, text, n) != 0)
			continue;
		rec->wire[i] ^= 0x01;
		return true;
	}
	return failf("'%s' not found in the record", text);
}

/* Builds the two non-canonical variants of a valid body that ends with
 * the key "v" and the value 1: that value as uint8 (cc 01), and the body
 * followed by one extra byte. */
static bool sign_noncanonical(const proto_record *r, const creator *cr,
			      record *nonminimal, record *trailing)
{
	static uint8_t body[CM_BODY_MAX + 2];
	size_t len;

	if (!body_encode(r, body, CM_BODY_MAX, &len))
		return false;
	if (len < 3 || memcmp(body + len - 3, "\xa1\x76\x01", 3) != 0)
		return failf("the body does not end with \"v\": 1");
	body[len] = 0x00;
	if (!body_sign(body, len + 1, "clip", cr->sk, "trailing byte",
		       trailing))
		return false;
	body[len - 1] = 0xcc;
	body[len] = 0x01;
	return body_sign(body, len + 1, "clip", cr->sk, "non-minimal integer",
			 nonminimal);
}

/* Signs a clip body with another key than its author's. */
static bool sign_by_other(const proto_record *r, const creator *other,
			  record *out)
{
	static uint8_t body[CM_BODY_MAX];
	size_t len;

	return body_encode(r, body, sizeof(body), &len) &&
	       body_sign(body, len, "clip", other->sk, "foreign signature",
			 out);
}

/* Signs a retraction of `target` with the clip signature domain, which
 * must never verify as a retraction. */
static bool sign_cross_domain(const creator *cr,
			      const uint8_t target[PROTO_ID_LEN], record *out)
{
	static proto_record r;
	static uint8_t body[CM_BODY_MAX];
	size_t len;

	retraction_fill(&r, cr, target);
	return body_encode(&r, body, sizeof(body), &len) &&
	       body_sign(body, len, "clip", cr->sk,
			 "retraction signed as a clip", out);
}

static bool run_forged(const options *opt)
{
	static proto_record r;
	static record control, foreign, nonminimal, trailing, future, changed,
		cross;
	const record *present[] = {&control};
	const record *absent[] = {&foreign, &nonminimal, &trailing, &future,
				  &changed, &cross};
	uint64_t now = cm_now_ms();
	creator cr, other;
	bool ok;
	conn c = {0};

	creator_new(&cr);
	creator_new(&other);
	clip_fill(&r, &cr, "Control clip", now);
	ok = record_sign(&r, &cr, "control", &control);
	clip_fill(&r, &cr, "Signed by someone else", now);
	ok = ok && sign_by_other(&r, &other, &foreign);
	clip_fill(&r, &cr, "Encoded in a longer form", now);
	ok = ok && sign_noncanonical(&r, &cr, &nonminimal, &trailing);
	clip_fill(&r, &cr, "From the future", now + CM_FUTURE_SKEW_MS + 60000);
	ok = ok && record_sign(&r, &cr, "future-dated", &future);
	clip_fill(&r, &cr, "Changed after signing", now);
	ok = ok && record_sign(&r, &cr, "changed", &changed) &&
	     change_one_byte(&changed, "Changed after signing");
	ok = ok && sign_cross_domain(&cr, control.id, &cross);

	ok = ok && conn_start(&c, opt);
	c.served = &cr.media;
	ok = ok && push_one(&c, &control);
	for (size_t i = 0; ok && i < sizeof(absent) / sizeof(absent[0]); i++)
		ok = push_one(&c, absent[i]);
	ok = ok && check_stored(&c, present, 1, absent,
				sizeof(absent) / sizeof(absent[0])) &&
	     await_fetch(&c);
	if (ok)
		pass("node stored none of the forged records");
	expect("bad_signature", 3, 3);
	expect("nonminimal_int", 1, 1);
	expect("trailing_bytes", 1, 1);
	expect("future", 1, 1);
	conn_close(&c);
	return ok;
}

/* --- Scenario: duplicate --------------------------------------------- */

static bool run_duplicate(const options *opt)
{
	static proto_record r;
	static record clip;
	const record *twice[] = {&clip, &clip}, *present[] = {&clip};
	creator cr;
	bool ok;
	conn c = {0};

	creator_new(&cr);
	clip_fill(&r, &cr, "Pushed again and again", cm_now_ms());
	ok = record_sign(&r, &cr, "pushed three times", &clip) &&
	     conn_start(&c, opt);
	c.served = &cr.media;

	/* Once, once more, and twice in one message, which the node stores
	 * in one transaction that contains the same record twice. */
	ok = ok && push_one(&c, &clip) && push_one(&c, &clip) &&
	     push(&c, twice, 2) && check_stored(&c, present, 1, NULL, 0) &&
	     await_fetch(&c);
	if (ok)
		pass("node stores a record pushed four times");
	conn_close(&c);
	return ok;
}

/* --- Scenario: retracted --------------------------------------------- */

static bool run_retracted(const options *opt)
{
	static proto_record r;
	static record clip, retraction, clip2, forged2, clip3, forged3;
	const record *present[] = {&retraction, &clip2, &clip3};
	const record *absent[] = {&clip, &forged2, &forged3};
	creator cr, other;
	bool ok;
	conn c = {0};

	creator_new(&cr);
	creator_new(&other);
	clip_fill(&r, &cr, "Retracted before it arrived", cm_now_ms());
	ok = record_sign(&r, &cr, "retracted clip", &clip);
	retraction_fill(&r, &cr, clip.id);
	ok = ok && record_sign(&r, &cr, "retraction", &retraction);

	/* Retractions by someone other than the author: one arriving before
	 * the clip, one after. Neither may remove the clip. */
	clip_fill(&r, &cr, "Retracted by a stranger first", cm_now_ms());
	ok = ok && record_sign(&r, &cr, "clip with a forged retraction",
			       &clip2);
	retraction_fill(&r, &other, clip2.id);
	ok = ok && record_sign(&r, &other, "forged early retraction",
			       &forged2);
	clip_fill(&r, &cr, "Retracted by a stranger later", cm_now_ms());
	ok = ok && record_sign(&r, &cr, "clip with a late forged retraction",
			       &clip3);
	retraction_fill(&r, &other, clip3.id);
	ok = ok && record_sign(&r, &other, "forged late retraction",
			       &forged3);

	ok = ok && conn_start(&c, opt);
	c.served = &cr.media;
	ok = ok && push_one(&c, &retraction) && push_one(&c, &clip) &&
	     push_one(&c, &clip) && push_one(&c, &forged2) &&
	     push_one(&c, &clip2) && push_one(&c, &clip3) &&
	     push_one(&c, &forged3) &&
	     check_stored(&c, present, 3, absent, 3) && await_fetch(&c);
	if (ok) {
		pass("a retracted clip is never stored, forged retractions "
		     "remove nothing");
		print_hex("retracted", clip.id, PROTO_ID_LEN);
	}
	expect("retracted", 2, 2);
	expect("not_author", 1, 1);
	conn_close(&c);
	return ok;
}

/* --- Files given on the command line --------------------------------- */

/* Reads a whole file of at most FILE_MAX bytes into a malloc'd buffer. */
bool read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;
	bool ok = false;

	if (!f)
		return failf("cannot open %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		failf("cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if ((unsigned long)size > FILE_MAX) {
		failf("%s is over %u bytes", path, FILE_MAX);
		goto out;
	}
	buf = malloc(size ? (size_t)size : 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		failf("cannot read %s", path);
		goto out;
	}
	*data = buf;
	*len = (size_t)size;
	buf = NULL;
	ok = true;
out:
	free(buf);
	fclose(f);
	return ok;
}

/* Reads the first record of an export file (16-byte magic, then a 4-byte
 * big-endian length and the record) and opens it. */
static bool read_first_record(const char *path, record *rec,
			      proto_signed *opened)
{
	uint8_t *data = NULL;
	size_t size = 0, len;
	cm_err err;
	bool ok = false;

	if (!read_file(path, &data, &size))
		return false;
	if (size < EXPORT_MAGIC_LEN + 4 ||
	    memcmp(data, EXPORT_MAGIC, EXPORT_MAGIC_LEN) != 0) {
		failf("%s is not an export file", path);
		goto out;
	}
	len = (size_t)data[16] << 24 | (size_t)data[17] << 16 |
	      (size_t)data[18] << 8 | data[19];
	if (len == 0 || len > sizeof(rec->wire) || len > size - 20) {
		failf("%s: first record length %zu is invalid", path, len);
		goto out;
	}
	memcpy(rec->wire, data + 20, len);
	rec->len = len;
	rec->name = "exported";
	err = proto_record_open(rec->wire, len, cm_now_ms(), opened);
	if (err) {
		failf("%s: first record does not open: %s", path,
		      cm_err_name(err));
		goto out;
	}
	memcpy(rec->id, opened->id, PROTO_ID_LEN);
	ok = opened->rec.kind == PROTO_KIND_CLIP && opened->rec.n_media > 0;
	if (!ok)
		failf("%s: first record is not a clip with media", path);
out:
	free(data);
	return ok;
}

/* --- Scenario: not-found --------------------------------------------- */

/* Requests a record that does not exist, and a chunk and the manifest of
 * a random root. Only the two NOT_FOUNDs may come back. */
static bool ask_missing(conn *c, uint64_t index)
{
	uint8_t root[PROTO_HASH_LEN], id[PROTO_ID_LEN], *buf = NULL;
	proto_wire_msg m;
	size_t len = 0;
	int rc;

	randombytes_buf(root, sizeof(root));
	randombytes_buf(id, sizeof(id));
	if (!send_encoded(c, proto_wire_ids(PROTO_WIRE_WANT, id, 1, &buf,
					    &len),
			  &buf, &len) ||
	    !send_encoded(c, proto_wire_chunk_req(root, index, &buf, &len),
			  &buf, &len))
		return false;
	rc = conn_await(c, PROTO_WIRE_NOT_FOUND, REPLY_TIMEOUT_MS, &m);
	if (rc == 0)
		return failf("no NOT_FOUND for chunk %llu of a missing media",
			     (unsigned long long)index);
	if (rc < 0)
		return false;
	if (m.missing != PROTO_WIRE_MISSING_CHUNK || m.index != index ||
	    memcmp(m.root, root, PROTO_HASH_LEN) != 0)
		return failf("NOT_FOUND names kind %d index %llu, expected "
			     "chunk %llu of the requested root", m.missing,
			     (unsigned long long)m.index,
			     (unsigned long long)index);
	return barrier(c, NULL, NULL); /* the manifest's NOT_FOUND */
}

/* Fetches the manifest of `root` and checks it against the root. */
static bool fetch_manifest(conn *c, const uint8_t *root, size_t *n_chunks,
			   uint8_t first_chunk[PROTO_HASH_LEN])
{
	const uint8_t(*chunks)[PROTO_HASH_LEN];
	uint8_t *buf = NULL;
	proto_wire_msg m;
	size_t len = 0;
	int rc;

	if (!send_encoded(c, proto_wire_manifest_req(root, &buf, &len), &buf,
			  &len))
		return false;
	rc = conn_await(c, PROTO_WIRE_MANIFEST, REPLY_TIMEOUT_MS, &m);
	if (rc <= 0)
		return rc == 0 ? failf("no MANIFEST for stored media") : false;
	chunks = (const uint8_t(*)[PROTO_HASH_LEN])m.chunks;
	if (memcmp(m.root, root, PROTO_HASH_LEN) != 0 || m.n_chunks == 0 ||
	    proto_media_check_manifest(root, m.size, chunks, m.n_chunks))
		return failf("the node sent a manifest that does not match "
			     "its root");
	*n_chunks = m.n_chunks;
	memcpy(first_chunk, chunks[0], PROTO_HASH_LEN);
	return true;
}

/* Fetches chunk 0 of `root` and checks its hash. */
static bool fetch_chunk(conn *c, const uint8_t *root,
			const uint8_t hash[PROTO_HASH_LEN])
{
	uint8_t got[PROTO_HASH_LEN], *buf = NULL;
	proto_wire_msg m;
	size_t len = 0;
	int rc;

	if (!send_encoded(c, proto_wire_chunk_req(root, 0, &buf, &len), &buf,
			  &len))
		return false;
	rc = conn_await(c, PROTO_WIRE_CHUNK, REPLY_TIMEOUT_MS, &m);
	if (rc <= 0)
		return rc == 0 ? failf("no CHUNK for stored media") : false;
	proto_chunk_hash(m.data, m.data_len, got);
	if (m.index != 0 || memcmp(got, hash, PROTO_HASH_LEN) != 0)
		return failf("the node sent chunk %llu with a wrong hash",
			     (unsigned long long)m.index);
	return true;
}

/* Checks that the node still serves a stored clip: the record, its
 * manifest, its first chunk, and NOT_FOUND past its last chunk. */
static bool check_serves(conn *c, const options *opt)
{
	static proto_signed opened;
	static record rec;
	const record *present[] = {&rec};
	uint8_t first[PROTO_HASH_LEN];
	const uint8_t *root;
	size_t n_chunks = 0;

	if (!read_first_record(opt->records_path, &rec, &opened))
		return false;
	root = opened.rec.media[0].hash;
	return check_stored(c, present, 1, NULL, 0) &&
	       fetch_manifest(c, root, &n_chunks, first) &&
	       fetch_chunk(c, root, first) && ask_missing(c, n_chunks);
}

#define MISSING_ROUNDS 20

static bool run_not_found(const options *opt)
{
	bool ok;
	conn c = {0};

	ok = conn_start(&c, opt);
	for (unsigned i = 0; ok && i < MISSING_ROUNDS; i++)
		ok = ask_missing(&c, i * 800);
	if (ok)
		pass("NOT_FOUND for every missing manifest and chunk");
	if (ok && opt->records_path) {
		ok = check_serves(&c, opt);
		if (ok)
			pass("node still serves a stored clip and its media");
	}
	expect("*", 0, 0);
	conn_close(&c);
	return ok;
}

/* --- Scenario: bad-media --------------------------------------------- */

/* The media the scenario serves badly, and what the node did so far. */
typedef struct bad_media {
	const uint8_t *root;
	uint8_t *data;
	size_t size;
	uint8_t (*chunks)[PROTO_HASH_LEN];
	size_t n_chunks;
	uint8_t chunk[CM_CHUNK_SIZE];

	bool wrong_manifest_sent;
	bool manifest_requested_again; /* so the wrong one was not stored */
	bool corrupted[CM_WIRE_CHUNKS_INFLIGHT];
	unsigned corrupted_count;
	bool chunk_requested_again; /* so a corrupted one was not stored */
} bad_media;

static bool bad_media_load(bad_media *bm, const options *opt,
			   const proto_signed *clip)
{
	uint8_t root[PROTO_HASH_LEN];

	if (!read_file(opt->media_path, &bm->data, &bm->size))
		return false;
	bm->n_chunks = (size_t)proto_media_chunk_count(bm->size);
	if (bm->n_chunks == 0 || bm->n_chunks > CM_WIRE_CHUNKS_INFLIGHT)
		return failf("%s has %zu chunks; use a file of 1 to %d",
			     opt->media_path, bm->n_chunks,
			     CM_WIRE_CHUNKS_INFLIGHT);
	bm->chunks = calloc(bm->n_chunks, PROTO_HASH_LEN);
	if (!bm->chunks)
		return failf("out of memory");
	for (size_t i = 0; i < bm->n_chunks; i++) {
		size_t off = i * CM_CHUNK_SIZE, n = bm->size - off;

		proto_chunk_hash(bm->data + off,
				 n > CM_CHUNK_SIZE ? CM_CHUNK_SIZE : n,
				 bm->chunks[i]);
	}
	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])bm->chunks,
			 bm->n_chunks, bm->size, root);
	bm->root = clip->rec.media[0].hash;
	if (memcmp(root, bm->root, PROTO_HASH_LEN) != 0)
		return failf("%s is not the first media of the clip in %s",
			     opt->media_path, opt->records_path);
	return true;
}

/* Responds to a MANIFEST_REQ: wrong once (the last chunk hash changed),
 * then right, because the node needs a manifest to request chunks. */
static bool bad_manifest(conn *c, bad_media *bm)
{
	uint8_t *buf = NULL;
	size_t len = 0, last = bm->n_chunks - 1;
	bool ok;

	if (bm->wrong_manifest_sent) {
		bm->manifest_requested_again = true;
		return send_encoded(c, proto_wire_manifest(bm->root, bm->size,
							   bm->chunks[0],
							   bm->n_chunks, &buf,
							   &len),
				    &buf, &len);
	}
	bm->chunks[last][0] ^= 0x01;
	ok = send_encoded(c, proto_wire_manifest(bm->root, bm->size,
						 bm->chunks[0], bm->n_chunks,
						 &buf, &len),
			  &buf, &len);
	bm->chunks[last][0] ^= 0x01;
	bm->wrong_manifest_sent = true;
	return ok;
}

/* Responds to a CHUNK_REQ with the chunk's bytes, one bit flipped. A
 * chunk that the node requests again gets NOT_FOUND instead, and so does
 * every request after that, so that the node turns to another peer. */
static bool bad_chunk(conn *c, bad_media *bm, uint64_t index)
{
	size_t off, n;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (index >= bm->n_chunks || bm->chunk_requested_again ||
	    bm->corrupted[index]) {
		if (index < bm->n_chunks && bm->corrupted[index])
			bm->chunk_requested_again = true;
		return send_encoded(c, proto_wire_not_found(
					       PROTO_WIRE_MISSING_CHUNK,
					       bm->root, index, &buf, &len),
				    &buf, &len);
	}
	off = (size_t)index * CM_CHUNK_SIZE;
	n = bm->size - off > CM_CHUNK_SIZE ? CM_CHUNK_SIZE : bm->size - off;
	memcpy(bm->chunk, bm->data + off, n);
	bm->chunk[n / 2] ^= 0x01;
	bm->corrupted[index] = true;
	bm->corrupted_count++;
	return send_encoded(c, proto_wire_chunk(bm->root, index, bm->chunk, n,
						&buf, &len),
			    &buf, &len);
}

static bool bad_media_respond(conn *c, bad_media *bm, const proto_wire_msg *m)
{
	bool ours = memcmp(m->root, bm->root, PROTO_HASH_LEN) == 0;

	if (!ours || (m->type == PROTO_WIRE_MANIFEST_REQ &&
		      bm->chunk_requested_again))
		return serve_request(c, m);
	if (m->type == PROTO_WIRE_MANIFEST_REQ)
		return bad_manifest(c, bm);
	return bad_chunk(c, bm, m->index);
}

/* Serves the node badly until it has requested both the manifest and a
 * chunk again. */
static bool serve_badly(conn *c, bad_media *bm)
{
	uint64_t deadline = cm_mono_ms() + 6 * REPLY_TIMEOUT_MS;
	proto_wire_msg m;
	int rc;

	while (!bm->chunk_requested_again) {
		rc = conn_next(c, deadline, &m);
		if (rc == 0)
			return failf("the node did not request the manifest "
				     "and a chunk again (wrong manifest sent: "
				     "%s, manifest requested again: %s, "
				     "corrupted chunks sent: %u)",
				     bm->wrong_manifest_sent ? "yes" : "no",
				     bm->manifest_requested_again ? "yes"
								  : "no",
				     bm->corrupted_count);
		if (rc < 0)
			return false;
		if ((m.type == PROTO_WIRE_MANIFEST_REQ ||
		     m.type == PROTO_WIRE_CHUNK_REQ) &&
		    !bad_media_respond(c, bm, &m))
			return false;
	}
	if (!bm->manifest_requested_again)
		return failf("the node requested chunks without requesting "
			     "the manifest again, so it stored the wrong one");
	return true;
}

/* Keeps the connection and responds with NOT_FOUND until SIGTERM or
 * HOLD_MS, so that the node turns to an honest peer while this one stays
 * connected. */
static bool hold(conn *c, bad_media *bm)
{
	uint64_t end = cm_mono_ms() + HOLD_MS;
	uint8_t *buf = NULL;
	size_t len = 0;
	proto_wire_msg m;

	while (!stopping && cm_mono_ms() < end) {
		int rc = conn_next(c, cm_mono_ms() + KEEPALIVE_MS, &m);

		if (rc < 0)
			return false;
		if (rc == 1 && (m.type == PROTO_WIRE_MANIFEST_REQ ||
				m.type == PROTO_WIRE_CHUNK_REQ)) {
			if (!bad_media_respond(c, bm, &m))
				return false;
			continue;
		}
		if (!send_encoded(c, proto_wire_ping(cm_now_ms(), &buf, &len),
				  &buf, &len))
			return false;
	}
	return true;
}

static bool run_bad_media(const options *opt)
{
	static proto_signed opened;
	static record clip;
	static bad_media bm;
	bool ok;
	conn c = {0};

	if (!opt->records_path || !opt->media_path)
		return failf("bad-media needs --records and --media");
	ok = read_first_record(opt->records_path, &clip, &opened) &&
	     bad_media_load(&bm, opt, &opened) && conn_start(&c, opt);
	c.auto_serve = false;
	ok = ok && push_one(&c, &clip) && serve_badly(&c, &bm);
	if (ok) {
		pass("node requested the manifest and the chunk again after "
		     "bad responses");
		expect("bad_manifest", 1, 1);
		expect("bad_chunk", bm.corrupted_count, bm.corrupted_count);
		printf("ready\n");
	}
	ok = ok && hold(&c, &bm);
	conn_close(&c);
	free(bm.data);
	free(bm.chunks);
	return ok;
}

/* --- Scenario: flood ------------------------------------------------- */

/* Connects again with the flooding key until the node rejects the
 * handshake (ZAP denies a banned key). A handshake that succeeds means
 * the node has not read enough of the flood yet, so it retries. */
bool check_reconnect_denied(const options *opt, const curve_keys *keys)
{
	uint64_t deadline = cm_mono_ms() + BAN_DEADLINE_MS;
	struct timespec pause = {0, BAN_RETRY_MS * 1000000L};
	unsigned accepted = 0;

	while (cm_mono_ms() < deadline && !stopping) {
		conn again = {0};
		bool opened = conn_open(&again, opt, keys, true);
		int event = 0;

		while (opened && event == 0 && cm_mono_ms() < deadline)
			event = monitor_wait(&again, BAN_RETRY_MS);
		conn_close(&again);
		if (!opened)
			return false;
		if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
			printf("ok - reconnect denied after %u accepted "
			       "attempts\n", accepted);
			return true;
		}
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			accepted++;
		nanosleep(&pause, NULL);
	}
	return failf("the node still accepts the flooding key after %d ms "
		     "(%u handshakes accepted)", BAN_DEADLINE_MS, accepted);
}

/* Checks that the node closed the flooding connection: the monitor
 * reports the disconnect. */
static bool check_closed(conn *c)
{
	uint64_t deadline = cm_mono_ms() + BAN_DEADLINE_MS;
	proto_wire_msg m;

	while (cm_mono_ms() < deadline && !stopping) {
		if (monitor_wait(c, BAN_RETRY_MS) == ZMQ_EVENT_DISCONNECTED)
			return true;
		while (conn_next(c, cm_mono_ms() + 1, &m) == 1)
			;
	}
	return failf("the node kept the flooding connection open for %d ms",
		     BAN_DEADLINE_MS);
}

/* Sends the malformed messages without waiting; stops early when the
 * queue is full, which happens once the node closed the connection. */
static bool send_flood(conn *c, const uint8_t *msg, size_t len,
		       unsigned *sent)
{
	for (*sent = 0; *sent < FLOOD_COUNT; (*sent)++) {
		if (zmq_send(c->sock, msg, len, ZMQ_DONTWAIT) >= 0)
			continue;
		if (errno == EAGAIN)
			return true;
		return zmq_failed("sending a flood message");
	}
	return true;
}

static bool run_flood(const options *opt)
{
	static const uint8_t malformed[] = {
		0x92, 0x05, 0xc5, 0x01, 0x00, /* a WANT claiming 256 bytes */
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	};
	curve_keys keys;
	unsigned sent = 0;
	conn c = {0};
	bool ok;

	keys_new(&keys);
	print_hex("peer", keys.pub, CURVE_KEY_LEN);
	ok = try_handshake(&c, opt, &keys) == ZMQ_EVENT_HANDSHAKE_SUCCEEDED &&
	     handshake(&c, opt) &&
	     send_flood(&c, malformed, sizeof(malformed), &sent);
	if (ok)
		printf("ok - sent %u malformed messages\n", sent);
	ok = ok && check_closed(&c);
	if (ok)
		pass("node closed the flooding connection");
	ok = ok && check_reconnect_denied(opt, &c.keys);
	/* The score reaches 0 after SCORE_MAX / PENALTY_INVALID rejections,
	 * a few more for the points recovered meanwhile. */
	expect("truncated", CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID,
	       FLOOD_COUNT / 2);
	conn_close(&c);
	return ok;
}

/* --- Scenario: reconnect-forged ------------------------------------- */

/* Messages of valid records sent ahead of the forged ones in each round,
 * so that the node is still verifying when the next connection's HELLO
 * arrives. */
#define RECONNECT_VALID_MESSAGES 6
/* Rounds of CM_WIRE_BATCH_MAX badly signed records. Two rounds cost more
 * than the CM_PEER_SCORE_MAX points of a fresh peer. */
#define RECONNECT_ROUNDS 2

/* Signs CM_WIRE_BATCH_MAX retractions of random ids into valid, and as
 * many into forged with one signature bit flipped. Retractions, unlike
 * clips, make the node fetch no media from this client. */
static bool reconnect_records(const creator *cr, record *valid,
			      record *forged)
{
	static proto_record r;
	uint8_t target[PROTO_ID_LEN];

	for (size_t i = 0; i < CM_WIRE_BATCH_MAX; i++) {
		randombytes_buf(target, sizeof(target));
		retraction_fill(&r, cr, target);
		if (!record_sign(&r, cr, "valid retraction", &valid[i]))
			return false;
		randombytes_buf(target, sizeof(target));
		retraction_fill(&r, cr, target);
		if (!record_sign(&r, cr, "forged retraction", &forged[i]))
			return false;
		forged[i].wire[forged[i].len - 1] ^= 0x01;
	}
	return true;
}

/* Makes the key pair of the client, prints it, and signs the records
 * of reconnect_records by a new creator. */
static bool forged_setup(curve_keys *keys, record *valid, record *forged)
{
	creator cr;

	creator_new(&cr);
	keys_new(keys);
	print_hex("peer", keys->pub, CURVE_KEY_LEN);
	return reconnect_records(&cr, valid, forged);
}

/* Sends a HELLO without waiting for the reply. */
static bool send_hello(conn *c)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	err = encode_hello(c->keys.pub, &buf, &len);
	return send_encoded(c, err, &buf, &len);
}

/* One round: valid records, then forged ones on `c`, then the HELLO of
 * `next`, whose CURVE handshake is done, so that the node replaces the
 * link of `c` while its records are still queued. The barrier makes sure
 * that the node read every message of `c` before the HELLO. */
static bool reconnect_round(conn *c, conn *next, const record *const *valid,
			    const record *const *forged)
{
	bool ok = true;

	for (unsigned k = 0; ok && k < RECONNECT_VALID_MESSAGES; k++)
		ok = push(c, valid, CM_WIRE_BATCH_MAX);
	ok = ok && push(c, forged, CM_WIRE_BATCH_MAX) &&
	     barrier(c, NULL, NULL);
	return ok && send_hello(next);
}

static bool run_reconnect_forged(const options *opt)
{
	static record valid[CM_WIRE_BATCH_MAX], forged[CM_WIRE_BATCH_MAX];
	const record *valid_refs[CM_WIRE_BATCH_MAX];
	const record *forged_refs[CM_WIRE_BATCH_MAX];
	conn conns[2] = {{0}, {0}};
	curve_keys keys;
	unsigned cur = 0;
	bool ok;

	ok = forged_setup(&keys, valid, forged);
	for (size_t i = 0; i < CM_WIRE_BATCH_MAX; i++) {
		valid_refs[i] = &valid[i];
		forged_refs[i] = &forged[i];
	}
	ok = ok && conn_open(&conns[cur], opt, &keys, false) &&
	     handshake(&conns[cur], opt);
	for (unsigned round = 0; ok && round < RECONNECT_ROUNDS; round++) {
		conn *next = &conns[1 - cur];

		ok = try_handshake(next, opt, &keys) ==
			     ZMQ_EVENT_HANDSHAKE_SUCCEEDED &&
		     reconnect_round(&conns[cur], next, valid_refs,
				     forged_refs);
		conn_close(&conns[cur]);
		cur = 1 - cur;
	}
	if (ok)
		printf("ok - sent %d forged records over %d connections\n",
		       RECONNECT_ROUNDS * CM_WIRE_BATCH_MAX, RECONNECT_ROUNDS);
	/* Reconnecting keeps the score, so the forged records of all rounds
	 * count against the key. Those after the ban are dropped. */
	ok = ok && check_reconnect_denied(opt, &keys);
	if (ok)
		pass("reconnecting with records queued does not escape a ban");
	expect("bad_signature", CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID,
	       RECONNECT_ROUNDS * CM_WIRE_BATCH_MAX);
	expect("peer_banned", 0,
	       RECONNECT_ROUNDS * CM_WIRE_BATCH_MAX -
		       CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID);
	conn_close(&conns[cur]);
	return ok;
}

/* --- Scenario: goodbye-forged -------------------------------------- */

/* Rounds of CM_WIRE_BATCH_MAX badly signed records, each ended with a
 * GOODBYE. Two rounds cost more than the CM_PEER_SCORE_MAX points of a
 * fresh peer; the others show that the key does not get away. */
#define GOODBYE_ROUNDS 4

/* Sends GOODBYE on c. */
static bool send_goodbye(conn *c)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	return send_encoded(c, proto_wire_goodbye(&buf, &len), &buf, &len);
}

/*
 * Sends badly signed records, then GOODBYE, then comes back with the same
 * key on a new connection, round after round. A peer that sends GOODBYE
 * must keep its score like one that reconnects while its link is up, or
 * it could send bad input for ever without being banned.
 */
static bool run_goodbye_forged(const options *opt)
{
	static record valid[CM_WIRE_BATCH_MAX], forged[CM_WIRE_BATCH_MAX];
	const record *forged_refs[CM_WIRE_BATCH_MAX];
	curve_keys keys;
	unsigned round = 0;
	bool ok;

	ok = forged_setup(&keys, valid, forged);
	for (size_t i = 0; i < CM_WIRE_BATCH_MAX; i++)
		forged_refs[i] = &forged[i];
	for (; ok && round < GOODBYE_ROUNDS; round++) {
		conn c = {0};

		/* A denied handshake ends the rounds: the key is banned. */
		if (try_handshake(&c, opt, &keys) !=
		    ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			conn_close(&c);
			break;
		}
		ok = handshake(&c, opt) &&
		     push(&c, forged_refs, CM_WIRE_BATCH_MAX) &&
		     barrier(&c, NULL, NULL) && send_goodbye(&c);
		if (ok)
			check_closed(&c);
		conn_close(&c);
	}
	if (ok)
		printf("ok - sent %u rounds of %d forged records, each ended "
		       "with GOODBYE\n", round, CM_WIRE_BATCH_MAX);
	ok = ok && check_reconnect_denied(opt, &keys);
	if (ok)
		pass("sending GOODBYE does not escape a ban");
	expect("bad_signature", CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID,
	       GOODBYE_ROUNDS * CM_WIRE_BATCH_MAX);
	return ok;
}

/* --- Scenario: ban-midstream ---------------------------------------- */

/* Badly signed records at the start of the stream: more than the
 * CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID that get a fresh peer
 * banned, and fewer than two messages, so that the ban falls inside the
 * second message. Recovered points would have to exceed 100 (10 s) for
 * the ban to come later. */
#define MIDSTREAM_FORGED 110
/* Messages in the burst, all sent at once. They fit in the node's verify
 * queue of CM_VERIFY_MESSAGES, so the last ones may still wait there at
 * the ban. */
#define MIDSTREAM_MESSAGES 5
#define MIDSTREAM_RECORDS (MIDSTREAM_MESSAGES * CM_WIRE_BATCH_MAX)
/* Valid records whose "absent" lines test_hostile.sh checks on each
 * node; the client itself checks all of them. */
#define MIDSTREAM_LISTED 8

/* Signs n retractions of random ids by cr into recs, the first `forged`
 * of them with one signature bit flipped. */
static bool midstream_records(const creator *cr, record *recs, size_t n,
			      size_t forged)
{
	static proto_record r;
	uint8_t target[PROTO_ID_LEN];

	for (size_t i = 0; i < n; i++) {
		randombytes_buf(target, sizeof(target));
		retraction_fill(&r, cr, target);
		if (!record_sign(&r, cr, i < forged ? "forged" : "valid",
				 &recs[i]))
			return false;
		if (i < forged)
			recs[i].wire[recs[i].len - 1] ^= 0x01;
	}
	return true;
}

/* Checks over connection c that the node stores none of the n records,
 * CHECK_MAX at a time. */
static bool check_none_stored(conn *c, const record *recs, size_t n)
{
	const record *absent[CHECK_MAX];
	bool ok = true;

	for (size_t first = 0; ok && first < n; first += CHECK_MAX) {
		size_t count = n - first < CHECK_MAX ? n - first : CHECK_MAX;

		for (size_t i = 0; i < count; i++)
			absent[i] = &recs[first + i];
		ok = ask_stored(c, NULL, 0, absent, count);
	}
	return ok;
}

/*
 * Sends badly signed records and then valid ones in one burst, so that
 * the node bans the peer inside the second message while later messages
 * wait to be verified. No valid record may be stored: each came after the
 * record that got the peer banned.
 */
static bool run_ban_midstream(const options *opt)
{
	static record recs[MIDSTREAM_RECORDS];
	const record *batch[CM_WIRE_BATCH_MAX];
	const record *const valid = recs + MIDSTREAM_FORGED;
	const size_t n_valid = MIDSTREAM_RECORDS - MIDSTREAM_FORGED;
	conn c = {0}, check = {0};
	creator cr;
	bool ok;

	creator_new(&cr);
	ok = midstream_records(&cr, recs, MIDSTREAM_RECORDS,
			       MIDSTREAM_FORGED) &&
	     conn_start(&c, opt);
	for (size_t k = 0; ok && k < MIDSTREAM_MESSAGES; k++) {
		for (size_t i = 0; i < CM_WIRE_BATCH_MAX; i++)
			batch[i] = &recs[k * CM_WIRE_BATCH_MAX + i];
		ok = push(&c, batch, CM_WIRE_BATCH_MAX);
	}
	ok = ok && check_reconnect_denied(opt, &c.keys);
	ok = ok && conn_start(&check, opt) &&
	     check_none_stored(&check, valid, n_valid);
	if (ok) {
		for (size_t i = 0; i < MIDSTREAM_LISTED; i++)
			print_hex("absent", valid[i].id, PROTO_ID_LEN);
		pass("no record sent after the ban point was stored");
	}
	expect("bad_signature", CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID,
	       MIDSTREAM_FORGED);
	/* At least the valid records of the second message; later messages
	 * are dropped unverified or, once the connection is closed, never
	 * read. */
	expect("peer_banned", 2 * CM_WIRE_BATCH_MAX - MIDSTREAM_FORGED,
	       MIDSTREAM_RECORDS -
		       CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID);
	conn_close(&check);
	conn_close(&c);
	return ok;
}

/* --- Command line ---------------------------------------------------- */

/* --- Scenario: honest-rejects --------------------------------------- */

/* More rejections than the CM_PEER_SCORE_MAX / CM_PEER_PENALTY_INVALID
 * invalid inputs that get a peer banned. */
#define HONEST_REJECTS 150

/* Pushes `count` records in messages of CM_WIRE_BATCH_MAX. */
static bool push_all(conn *c, const record *recs, size_t count)
{
	const record *batch[CM_WIRE_BATCH_MAX];
	size_t k = 0;

	for (size_t i = 0; i < count; i++) {
		batch[k++] = &recs[i];
		if (k == CM_WIRE_BATCH_MAX || i + 1 == count) {
			if (!push(c, batch, k))
				return false;
			k = 0;
		}
	}
	return true;
}

/*
 * Relays what an honest peer relays: clips after their retractions, and
 * a stranger's retractions of stored clips. The node rejects each of them
 * (retracted, not_author) but must not ban the peer for it, so that the
 * barrier after them still gets a reply.
 */
static bool run_honest_rejects(const options *opt)
{
	static proto_record r;
	static record clips[HONEST_REJECTS], retractions[HONEST_REJECTS];
	static record kept[HONEST_REJECTS], forged[HONEST_REJECTS];
	uint64_t now = cm_now_ms();
	creator cr, other;
	bool ok = true;
	conn c = {0};

	creator_new(&cr);
	creator_new(&other);
	for (size_t i = 0; ok && i < HONEST_REJECTS; i++) {
		clip_fill(&r, &cr, "Retracted, relayed late", now + i);
		ok = record_sign(&r, &cr, "retracted clip", &clips[i]);
		retraction_fill(&r, &cr, clips[i].id);
		ok = ok && record_sign(&r, &cr, "retraction",
				       &retractions[i]);
		clip_fill(&r, &cr, "Kept despite a stranger", now + i + 1);
		ok = ok && record_sign(&r, &cr, "kept clip", &kept[i]);
		retraction_fill(&r, &other, kept[i].id);
		ok = ok && record_sign(&r, &other, "stranger's retraction",
				       &forged[i]);
	}

	ok = ok && conn_start(&c, opt);
	c.served = &cr.media;
	ok = ok && push_all(&c, retractions, HONEST_REJECTS) &&
	     push_all(&c, kept, HONEST_REJECTS) && barrier(&c, NULL, NULL) &&
	     push_all(&c, clips, HONEST_REJECTS) &&
	     push_all(&c, forged, HONEST_REJECTS) && barrier(&c, NULL, NULL);
	if (ok)
		pass("node still serves a peer after its retracted and "
		     "not_author records");
	expect("retracted", HONEST_REJECTS, HONEST_REJECTS);
	expect("not_author", HONEST_REJECTS, HONEST_REJECTS);
	conn_close(&c);
	return ok;
}

/* --- Scenario: rate-flood -------------------------------------------- */

/* Signs flood clip number i by cr; one in FLOOD_BAD_EVERY, picked at
 * random, gets a signature with one bit flipped. A fixed pattern would
 * line up with the node's admission of the first message of each tick. */
static bool flood_record(const creator *cr, unsigned i, record *out)
{
	static proto_record r;
	char title[64];

	snprintf(title, sizeof(title), "Flood clip %u", i);
	clip_fill(&r, cr, title, cm_now_ms());
	if (!record_sign(&r, cr, "flood", out))
		return false;
	if (randombytes_uniform(FLOOD_BAD_EVERY) == 0)
		out->wire[out->len - 1] ^= 0x01;
	return true;
}

/* Reads what the node sent without waiting, serving its requests for the
 * flood clips' media, and the monitor's next event. Returns that event
 * when it is a disconnect or a handshake outcome, else 0. */
static int flood_drain(conn *c)
{
	proto_wire_msg m;
	int event;

	while (conn_next(c, cm_mono_ms() + 1, &m) == 1)
		;
	event = monitor_wait(c, 0);
	return event == ZMQ_EVENT_DISCONNECTED ||
			       event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
			       event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED
		       ? event
		       : 0;
}

/* Sends one tick's worth of records without blocking; a full queue
 * towards the node skips the rest of the tick. */
static bool flood_tick(conn *c, const creator *cr, unsigned per_tick,
		       unsigned *sent)
{
	static record rec;

	for (unsigned k = 0; k < per_tick; k++) {
		const uint8_t *wire = rec.wire;
		uint8_t *buf = NULL;
		size_t len = 0, rec_len;

		if (!flood_record(cr, *sent, &rec))
			return false;
		rec_len = rec.len;
		if (proto_wire_records(&wire, &rec_len, 1, &buf, &len))
			return failf("encoding RECORDS failed");
		if (zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0) {
			free(buf);
			if (errno == EAGAIN)
				return true;
			return zmq_failed("sending a flood message");
		}
		free(buf);
		(*sent)++;
	}
	return true;
}

/* Floods at opt->rate until the node closes the connection and libzmq's
 * reconnection is denied, which is how a ban looks from outside. */
static bool flood_until_banned(conn *c, const options *opt,
			       const creator *cr, unsigned round)
{
	uint64_t start = cm_mono_ms(), next = start;
	unsigned per_tick = (opt->rate * FLOOD_TICK_MS + 999) / 1000;
	unsigned sent = 0;
	bool closed = false;

	printf("flooding %u\n", round);
	while (!stopping && cm_mono_ms() - start < FLOOD_ROUND_MAX_MS) {
		uint64_t now = cm_mono_ms();
		int event = flood_drain(c);

		if (event == ZMQ_EVENT_DISCONNECTED)
			closed = true;

		/* A connection lost for another reason comes back. */
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && closed) {
			closed = false;
			if (!handshake(c, opt))
				return false;
		}
		if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && closed) {
			printf("banned %u %llu %u\n", round,
			       (unsigned long long)(now - start), sent);
			return true;
		}
		/* After a pause (SIGSTOP), go on at the rate, not in a
		 * burst that catches up. */
		if (now > next + 10 * FLOOD_TICK_MS)
			next = now;
		if (!closed && now >= next) {
			if (!flood_tick(c, cr, per_tick, &sent))
				return false;
			next += FLOOD_TICK_MS;
		}
		if (closed || now < next) {
			struct timespec pause = {0, 1000000L};

			nanosleep(&pause, NULL);
		}
	}
	return failf("round %u: not banned after %d ms and %u messages at %u "
		     "a second", round, FLOOD_ROUND_MAX_MS, sent, opt->rate);
}

/* Checks what ZAP does with a fresh key from the address of the banned
 * key: an address is banned from its CM_BAN_IP_STRIKES-th ban on, so
 * before that the fresh key must get in, and from then on be denied. */
static bool check_fresh_key(const options *opt, unsigned bans)
{
	bool denied = bans >= CM_BAN_IP_STRIKES;
	curve_keys fresh;
	conn c = {0};
	int event, expected;

	keys_new(&fresh);
	event = try_handshake(&c, opt, &fresh);
	conn_close(&c);
	expected = denied ? ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
			  : ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
	if (event == expected) {
		pass(denied ? "a fresh key from the banned address is denied"
			    : "a fresh key from an address with one ban "
			      "gets in");
		return true;
	}
	return failf("a fresh key from the address after %u bans got "
		     "handshake event %d, expected %d", bans, event, expected);
}

/* Retries the banned key until the node accepts it again, then sends
 * HELLO. */
static bool await_ban_end(conn *c, const options *opt, const curve_keys *keys)
{
	uint64_t start = cm_mono_ms();
	struct timespec pause = {0, BAN_RETRY_MS * 1000000L};

	while (!stopping && cm_mono_ms() - start < BAN_END_MAX_MS) {
		int event = try_handshake(c, opt, keys);

		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			printf("ok - accepted again %llu ms after the ban\n",
			       (unsigned long long)(cm_mono_ms() - start));
			return handshake(c, opt);
		}
		conn_close(c);
		if (event < 0)
			return false;
		nanosleep(&pause, NULL);
	}
	return failf("the banned key was still denied after %d ms",
		     BAN_END_MAX_MS);
}

static bool run_rate_flood(const options *opt)
{
	curve_keys keys;
	creator cr;
	conn c = {0};
	bool ok;

	keys_new(&keys);
	print_hex("peer", keys.pub, CURVE_KEY_LEN);
	creator_new(&cr);
	ok = try_handshake(&c, opt, &keys) == ZMQ_EVENT_HANDSHAKE_SUCCEEDED &&
	     handshake(&c, opt);
	c.served = &cr.media;
	for (unsigned round = 1; ok && round <= opt->rounds; round++) {
		if (round > 1) {
			conn_close(&c);
			ok = await_ban_end(&c, opt, &keys);
			c.served = &cr.media;
		}
		ok = ok && flood_until_banned(&c, opt, &cr, round) &&
		     check_fresh_key(opt, round);
	}
	conn_close(&c);
	return ok;
}

/* --- Scenario: slots -------------------------------------------------- */

#define SLOTS_TRIES (CM_PEER_LINKS_PER_IP + 2)

/* Sends a PING on each of the first n connections, because the node
 * counts only links that it heard from lately. */
static bool ping_all(conn *conns, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;

		if (!send_encoded(&conns[i],
				  proto_wire_ping(cm_now_ms(), &buf, &len),
				  &buf, &len))
			return false;
	}
	return true;
}

/* Connects fresh keys one after another, each with a HELLO so that the
 * node makes a link for it, and keeps them open. The key after
 * CM_PEER_LINKS_PER_IP must be denied. */
static bool run_slots(const options *opt)
{
	static conn conns[SLOTS_TRIES];
	unsigned accepted = 0;
	int event = 0;
	bool ok = true;

	for (unsigned i = 0; ok && i < SLOTS_TRIES; i++) {
		curve_keys keys;

		if (!ping_all(conns, accepted)) {
			ok = false;
			break;
		}
		keys_new(&keys);
		event = try_handshake(&conns[i], opt, &keys);
		if (event != ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			break;
		ok = handshake(&conns[i], opt);
		accepted += ok;
	}
	for (unsigned i = 0; i < SLOTS_TRIES; i++)
		conn_close(&conns[i]);
	if (!ok)
		return false;
	if (event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
		return failf("%u keys from one address were accepted, and the "
			     "next got handshake event %d, not a denial",
			     accepted, event);
	printf("denied %u\n", accepted);
	if (accepted != CM_PEER_LINKS_PER_IP)
		return failf("the node denied key %u from one address, "
			     "expected key %d", accepted + 1,
			     CM_PEER_LINKS_PER_IP + 1);
	pass("the key after the per-address limit is denied");
	return true;
}

/* --- Scenario: silent ------------------------------------------------ */

#define SILENT_CONNECTIONS_DEFAULT 16
#define SILENT_CONNECTIONS_MAX 1000
/* How long the silent connections wait for the node to close them. */
#define SILENT_HOLD_MS 120000
#define SILENT_POLL_MS 50

/* One silent connection and when its handshake ended (monotonic ms). */
typedef struct silent_conn {
	conn c;
	uint64_t handshaken_ms;    /* 0: no handshake succeeded */
	uint64_t closed_ms;        /* 0: still open */
} silent_conn;

/* Reads the queued monitor events of s without waiting. */
static void silent_poll(silent_conn *s)
{
	int event;

	while (!s->closed_ms && (event = monitor_wait(&s->c, 0)) != 0) {
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			s->handshaken_ms = cm_mono_ms();
		else if (event == ZMQ_EVENT_DISCONNECTED ||
			 event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
			s->closed_ms = cm_mono_ms();
	}
}

/* Polls every connection until `done` holds for each or the deadline
 * passes; returns how many it holds for. */
static unsigned silent_wait(silent_conn *conns, unsigned n,
			    bool (*done)(const silent_conn *s),
			    uint64_t deadline)
{
	struct timespec pause = {0, SILENT_POLL_MS * 1000000L};
	unsigned count = 0;

	while (!stopping) {
		count = 0;
		for (unsigned i = 0; i < n; i++) {
			silent_poll(&conns[i]);
			count += done(&conns[i]);
		}
		if (count == n || cm_mono_ms() >= deadline)
			break;
		nanosleep(&pause, NULL);
	}
	return count;
}

/* True once the handshake of s succeeded or the connection ended. */
static bool silent_settled(const silent_conn *s)
{
	return s->handshaken_ms || s->closed_ms;
}

/* True once the connection ended. */
static bool silent_closed(const silent_conn *s)
{
	return s->closed_ms != 0;
}

/* Prints "closed COUNT MIN MAX": how many accepted connections the node
 * closed, and the shortest and longest time from handshake to close. */
static void silent_report(const silent_conn *conns, unsigned n)
{
	uint64_t shortest = UINT64_MAX, longest = 0;
	unsigned count = 0;

	for (unsigned i = 0; i < n; i++) {
		const silent_conn *s = &conns[i];
		uint64_t lived;

		if (!s->handshaken_ms || !s->closed_ms)
			continue;
		lived = s->closed_ms - s->handshaken_ms;
		shortest = lived < shortest ? lived : shortest;
		longest = lived > longest ? lived : longest;
		count++;
	}
	printf("closed %u %llu %llu\n", count,
	       (unsigned long long)(count ? shortest : 0),
	       (unsigned long long)longest);
}

/* Opens --connections connections with fresh keys and reconnection off.
 * Each finishes the CURVE handshake, if the node lets it, and then sends
 * nothing, or with --hello one HELLO and nothing after it. Prints
 * "accepted N" (handshakes that succeeded) and "ready", then waits until
 * the node has closed every accepted connection. */
static bool run_silent(const options *opt)
{
	options once = *opt;
	unsigned n = opt->connections, accepted, closed;
	silent_conn *conns = calloc(n, sizeof(*conns));
	bool ok = true;

	if (!conns)
		return failf("out of memory for %u connections", n);
	once.no_reconnect = true;
	for (unsigned i = 0; ok && i < n; i++) {
		curve_keys keys;

		keys_new(&keys);
		ok = conn_open(&conns[i].c, &once, &keys, true);
	}
	if (!ok) {
		for (unsigned i = 0; i < n; i++)
			conn_close(&conns[i].c);
		free(conns);
		return false;
	}

	silent_wait(conns, n, silent_settled, cm_mono_ms() + REPLY_TIMEOUT_MS);
	accepted = 0;
	for (unsigned i = 0; ok && i < n; i++) {
		accepted += conns[i].handshaken_ms != 0;
		if (opt->hello && conns[i].handshaken_ms && !conns[i].closed_ms)
			ok = send_hello(&conns[i].c);
	}
	if (!ok) {
		for (unsigned i = 0; i < n; i++)
			conn_close(&conns[i].c);
		free(conns);
		return false;
	}
	printf("accepted %u\nready\n", accepted);

	closed = silent_wait(conns, n, silent_closed,
			     cm_mono_ms() + SILENT_HOLD_MS);
	silent_report(conns, n);
	for (unsigned i = 0; i < n; i++)
		conn_close(&conns[i].c);
	free(conns);
	if (closed < n && stopping)
		return failf("stopped by a signal with %u of %u silent "
			     "connections still open", n - closed, n);
	if (closed < n)
		return failf("the node kept %u of %u silent connections open "
			     "for %d ms", n - closed, n, SILENT_HOLD_MS);
	pass("the node closed every silent connection");
	return true;
}

/* --- Scenario: announce ---------------------------------------------- */

/* Says HELLO with --port as the listen port, then stays connected and
 * sends PING until SIGTERM or HOLD_MS. The node must dial that port to
 * check it and share the address only when a node of this key listens
 * there, which never happens: this client listens nowhere. */
static bool run_announce(const options *opt)
{
	proto_wire_hello_info h = {
		.role = PROTO_WIRE_ROLE_MIRROR,
		.time_ms = cm_now_ms(),
		.listen_port = (uint16_t)opt->port,
	};
	uint64_t end = cm_mono_ms() + HOLD_MS;
	uint8_t *buf = NULL;
	size_t len = 0;
	curve_keys keys;
	proto_wire_msg m;
	conn c = {0};
	bool ok;

	if (opt->port == 0)
		return failf("announce needs --port");
	keys_new(&keys);
	print_hex("peer", keys.pub, CURVE_KEY_LEN);
	h.node_key = keys.pub;
	ok = conn_open(&c, opt, &keys, false) &&
	     send_encoded(&c, proto_wire_hello(&h, &buf, &len), &buf, &len) &&
	     await_hello(&c, opt, true, "our HELLO");
	if (ok) {
		printf("ready\n");
		fflush(stdout);
	}
	while (ok && !stopping && cm_mono_ms() < end) {
		int rc = conn_next(&c, cm_mono_ms() + KEEPALIVE_MS, &m);

		ok = rc >= 0 &&
		     send_encoded(&c, proto_wire_ping(cm_now_ms(), &buf, &len),
				  &buf, &len);
	}
	conn_close(&c);
	return ok;
}

typedef struct scenario {
	const char *name;
	bool (*run)(const options *opt);
	const char *help;
} scenario;

static const scenario scenarios[] = {
	{"garbage", run_garbage, "garbage frames and truncated msgpack"},
	{"hello-key", run_hello_key,
	 "HELLOs with a foreign key and of another version"},
	{"forged", run_forged,
	 "bad signatures, non-canonical and future-dated bodies, a record "
	 "changed by one byte"},
	{"duplicate", run_duplicate, "one valid record pushed four times"},
	{"retracted", run_retracted,
	 "a retraction before its clip, forged retractions"},
	{"not-found", run_not_found,
	 "requests for missing records, manifests and chunks; with "
	 "--records also for a stored clip"},
	{"bad-media", run_bad_media,
	 "push the first clip of --records and serve its media (--media) "
	 "with a wrong manifest and corrupted chunks; after 'ready', hold "
	 "the connection until SIGTERM"},
	{"honest-rejects", run_honest_rejects,
	 "150 clips after their retractions and 150 retractions by a "
	 "stranger, which must not get the peer banned"},
	{"flood", run_flood,
	 "up to 20000 malformed messages until the node closes the "
	 "connection, then reconnect with the same key"},
	{"rate-flood", run_rate_flood,
	 "--rate records a second, 1 in 50 badly signed, until banned; "
	 "then a fresh key from the same address must get in after the "
	 "first ban and be denied after the second; --rounds times"},
	{"reconnect-forged", run_reconnect_forged,
	 "valid records, then badly signed ones, then a new connection "
	 "with the same key, twice; the key must end up banned"},
	{"goodbye-forged", run_goodbye_forged,
	 "badly signed records, then GOODBYE and a new connection with the "
	 "same key, until the key is banned"},
	{"ban-midstream", run_ban_midstream,
	 "badly signed records, then valid ones in the same burst; none of "
	 "the valid ones may be stored"},
	{"slots", run_slots,
	 "fresh keys from one address until one is denied; it must be the "
	 "one after CM_PEER_LINKS_PER_IP"},
	{"recon", run_recon,
	 "broken and oversized reconciliation messages, then enough of "
	 "them to get banned"},
	{"silent", run_silent,
	 "--connections connections with fresh keys that finish the CURVE "
	 "handshake and send nothing; the node must close them all"},
	{"announce", run_announce,
	 "say HELLO with --port as the listen port, then stay connected "
	 "until SIGTERM"},
	{"stall", run_stall,
	 "say HELLO, then request every record of --records, its media and "
	 "every id again and again, never reading; until SIGTERM"},
};

#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hostile_peer [--records FILE] [--media FILE] "
		"[--source IP] [--rate N]\n"
		"                    [--rounds N] [--connections N] [--hello] "
		"[--port N]\n"
		"                    SCENARIO ADDRESS\n"
		"Misbehaves towards the clipmesh node at ADDRESS "
		"(clipmesh://KEYHEX@HOST:PORT)\nand exits 0 when the node "
		"behaved correctly.\n\n"
		"  --records FILE  export file whose first record is a clip "
		"with media\n"
		"                  (stall: all of its records)\n"
		"  --media FILE    the bytes of that clip's first media\n"
		"  --source IP     connect from this local address\n"
		"  --rate N        rate-flood: messages a second (default "
		"1000)\n"
		"  --rounds N      rate-flood: bans to cause, each after the "
		"last ended\n"
		"  --connections N silent: connections to open (default "
		"16)\n"
		"  --hello         silent: send one HELLO on each, then "
		"nothing\n"
		"  --port N        announce: the listen port of our HELLO "
		"(1 to 65535)\n\n"
		"scenarios:\n");
	for (size_t i = 0; i < N_SCENARIOS; i++)
		fprintf(out, "  %-14s %s\n", scenarios[i].name,
			scenarios[i].help);
}

/* Splits a peer address clipmesh://KEYHEX@HOST:PORT into the node's
 * CURVE key and the endpoint tcp://HOST:PORT. */
static bool parse_addr(const char *addr, options *opt)
{
	size_t plen = strlen(ADDR_PREFIX);
	char hex[2 * CURVE_KEY_LEN + 1];
	int n;

	if (strncmp(addr, ADDR_PREFIX, plen) != 0 ||
	    strlen(addr) < plen + sizeof(hex) ||
	    addr[plen + 2 * CURVE_KEY_LEN] != '@')
		return false;
	memcpy(hex, addr + plen, 2 * CURVE_KEY_LEN);
	hex[2 * CURVE_KEY_LEN] = '\0';
	if (!cm_hex_decode(hex, opt->server_key, CURVE_KEY_LEN))
		return false;
	addr += plen + sizeof(hex);
	n = snprintf(opt->endpoint, sizeof(opt->endpoint), "tcp://%s", addr);
	return n > 0 && (size_t)n < sizeof(opt->endpoint) &&
	       strchr(addr, ':') != NULL;
}

static const scenario *find_scenario(const char *name)
{
	for (size_t i = 0; i < N_SCENARIOS; i++)
		if (strcmp(scenarios[i].name, name) == 0)
			return &scenarios[i];
	return NULL;
}

/* Parses the command line; returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, options *opt,
		      const scenario **sc)
{
	static const struct option long_options[] = {
		{"records", required_argument, NULL, 'r'},
		{"media", required_argument, NULL, 'm'},
		{"source", required_argument, NULL, 's'},
		{"rate", required_argument, NULL, 'n'},
		{"rounds", required_argument, NULL, 'o'},
		{"connections", required_argument, NULL, 'c'},
		{"hello", no_argument, NULL, 'e'},
		{"port", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *source = NULL;
	int ch, n;

	opt->rate = FLOOD_RATE_DEFAULT;
	opt->rounds = 1;
	opt->connections = SILENT_CONNECTIONS_DEFAULT;
	while ((ch = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		if (ch == 'r') {
			opt->records_path = optarg;
		} else if (ch == 'm') {
			opt->media_path = optarg;
		} else if (ch == 's') {
			source = optarg;
		} else if (ch == 'n' || ch == 'o') {
			uint64_t value;

			if (!cm_parse_u64(optarg, &value) || value == 0 ||
			    value > 100000) {
				fprintf(stderr, "hostile_peer: invalid --%s "
					"'%s': give 1 to 100000\n",
					ch == 'n' ? "rate" : "rounds", optarg);
				return 2;
			}
			*(ch == 'n' ? &opt->rate : &opt->rounds) =
				(unsigned)value;
		} else if (ch == 'c') {
			uint64_t value;

			if (!cm_parse_u64(optarg, &value) || value == 0 ||
			    value > SILENT_CONNECTIONS_MAX) {
				fprintf(stderr, "hostile_peer: invalid "
					"--connections '%s': give 1 to %d\n",
					optarg, SILENT_CONNECTIONS_MAX);
				return 2;
			}
			opt->connections = (unsigned)value;
		} else if (ch == 'e') {
			opt->hello = true;
		} else if (ch == 'p') {
			uint64_t value;

			if (!cm_parse_u64(optarg, &value) || value == 0 ||
			    value > UINT16_MAX) {
				fprintf(stderr, "hostile_peer: invalid --port "
					"'%s': give 1 to 65535\n", optarg);
				return 2;
			}
			opt->port = (unsigned)value;
		} else if (ch == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	opt->scenario = argv[optind];
	*sc = find_scenario(opt->scenario);
	if (!*sc) {
		fprintf(stderr, "hostile_peer: unknown scenario: %s\n",
			opt->scenario);
		return 2;
	}
	if (!parse_addr(argv[optind + 1], opt)) {
		fprintf(stderr, "hostile_peer: invalid peer address: %s; "
			"expected clipmesh://KEYHEX@HOST:PORT\n",
			argv[optind + 1]);
		return 2;
	}

	/* libzmq binds the local end to the address before ';'. */
	n = source ? snprintf(opt->connect_endpoint,
			      sizeof(opt->connect_endpoint), "tcp://%s:0;%s",
			      source, opt->endpoint + strlen("tcp://"))
		   : snprintf(opt->connect_endpoint,
			      sizeof(opt->connect_endpoint), "%s",
			      opt->endpoint);
	if (n < 0 || (size_t)n >= sizeof(opt->connect_endpoint)) {
		fprintf(stderr, "hostile_peer: --source %s is too long\n",
			source);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	const scenario *sc = NULL;
	struct sigaction sa;
	options opt;
	bool ok;
	int rc;

	memset(&opt, 0, sizeof(opt));
	rc = parse_args(argc, argv, &opt, &sc);
	if (rc >= 0)
		return rc;
	if (sodium_init() < 0) {
		fprintf(stderr, "hostile_peer: libsodium failed to start\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	scenario_name = sc->name;
	zctx = zmq_ctx_new();
	if (!zctx) {
		fprintf(stderr, "hostile_peer: creating a ZeroMQ context "
			"failed: %s\n", zmq_strerror(errno));
		return 1;
	}
	ok = sc->run(&opt);
	zmq_ctx_term(zctx);
	return ok ? 0 : 1;
}
