/*
 * hostile_sync.c - hostile_peer scenarios about reconciliation and flow
 * control:
 *
 *   recon  RECON_START and RECON messages that break the protocol, in
 *          their envelope and in their payload, as initiator and as
 *          responder; a start too soon after another; a valid start of
 *          the maximum 65,536 ranges, which the node must answer; then
 *          malformed messages until the node bans this client
 *          (tests/e2e/test_hostile.sh).
 *   stall  a peer that says HELLO, keeps requesting records, chunks and
 *          reconciliation and never reads again, until SIGTERM
 *          (tests/e2e/test_stall.sh).
 *
 * Payloads are written byte for byte as the "Reconciliation" part of
 * proto/PROTOCOL.md gives them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_util.h"
#include "hostile.h"
#include "proto_recon.h"

/* A node rejects a third RECON_START of the same peer within 1 s, so
 * starts meant to test a payload are spaced by more than half of it. */
#define START_SPACING_MS 600
/* Rejected messages sent at the end of the recon scenario to get banned:
 * more than CM_PEER_REJECTS_MAX in one minute. */
#define RECON_FLOOD 150
/* Rejections that the recon scenario causes before its flood: the two
 * tables, the payload over the range limit, the start too soon and the
 * responder's short hashes. */
#define HEX_MAX 256                   /* bytes of one table entry */
#define ROUND_MAX_RANGES CM_RECON_RANGES_MAX

/* The stall scenario's pace and the size of its receive side. */
#define STALL_RCVBUF 4096             /* kernel receive buffer, bytes */
#define STALL_WANT_MS 500
#define STALL_START_MS 1100
#define STALL_PING_MS 1000
#define STALL_PAUSE_MS 100
#define STALL_HOLD_MS 300000          /* unless SIGTERM ends it first */
#define STALL_IDS_MAX 65536
#define STALL_ROOTS_MAX 64

/* A message as hex, where "<XX*N>" stands for byte XX written N times,
 * and the reason the node must count it under. */
typedef struct broken {
	const char *hex;
	const char *reason;
	const char *what;
} broken;

/* RECON_START and RECON messages whose envelope breaks the protocol.
 * Their valid parts are session 1, the salt of 16 bytes 0x33, fp_len and
 * hash_len 4, authors nil and the payload `00 01`, which is one SKIP
 * range to the end. */
static const broken envelopes[] = {
	{"97 0c 01 c4 0f <33*15> 04 04 c0 c4 02 00 01", "bad_message",
	 "a salt of 15 bytes"},
	{"97 0c 01 c4 11 <33*17> 04 04 c0 c4 02 00 01", "too_long",
	 "a salt of 17 bytes"},
	{"97 0c 01 c4 10 <33*16> 01 04 c0 c4 02 00 01", "bad_message",
	 "fp_len 1"},
	{"97 0c 01 c4 10 <33*16> 04 09 c0 c4 02 00 01", "bad_message",
	 "hash_len 9"},
	{"97 0c 01 c4 10 <33*16> 04 04 c4 00 c4 02 00 01", "bad_message",
	 "an empty author list"},
	{"97 0c 01 c4 10 <33*16> 04 04 c4 21 <22*33> c4 02 00 01",
	 "bad_message", "an author list of 33 bytes"},
	{"97 0c 01 c4 10 <33*16> 04 04 c6 00 02 00 20", "too_many",
	 "an author list claiming 4097 keys, none sent"},
	{"96 0c 01 c4 10 <33*16> 04 04 c0", "bad_message",
	 "a RECON_START without its payload"},
	{"97 0c cf 00 00 00 00 00 00 00 01 c4 10 <33*16> 04 04 c0 c4 02 00 "
	 "01",
	 "nonminimal_int", "session 1 as uint64"},
	{"94 0d 01 00 c4 02 00 01", "bad_message", "round 0"},
	{"94 0d 01 41 c4 02 00 01", "bad_message", "round 65"},
	{"94 0d 01 01 c5 10 00 00 01", "truncated",
	 "a payload claiming 4096 bytes, 2 sent"},
	{"94 0d 01 01 c6 00 20 00 01", "too_long",
	 "a payload claiming 2 MiB + 1 bytes"},
	{"94 0d 01 01 c4 02 00 01 00", "trailing_bytes",
	 "a byte after the RECON"},
};
#define N_ENVELOPES (sizeof(envelopes) / sizeof(envelopes[0]))

/* Payloads of one scope that break the protocol, each sent in a valid
 * RECON_START: the invalid payloads that PROTOCOL.md lists, and full ids
 * sent by an initiator. */
static const broken payloads[] = {
	{"", "truncated", "an empty payload"},
	{"00 01 00", "trailing_bytes", "a byte after the last range"},
	{"e0 01", "bad_message", "mode 7"},
	{"00 00", "bad_message", "zero steps"},
	{"00 02", "bad_message", "a bound past 2^124"},
	{"00 81 00", "nonminimal_int", "steps 1 in two bytes"},
	{"02 10 00 01", "bad_message", "2^120 written at depth 2"},
	{"40 01 c8 08", "too_many", "1096 short hashes"},
	{"60 01 c1 08 01", "too_many", "1089 full ids"},
	{"40 01 02 01 02 03 04", "truncated", "2 hashes claimed, 1 sent"},
	{"21 01 05 aa bb cc dd", "truncated", "a scope that ends at 2^120"},
	{"80 01 05 aa bb cc dd 01 02 03", "truncated", "a sum of 3 bytes"},
	{"20 01 80 80 80 80 80 80 80 80 80 02 aa bb cc dd", "bad_message",
	 "a count of 2^64"},
	{"60 01 01 <01*32>", "bad_message", "full ids from the initiator"},
};
#define N_PAYLOADS (sizeof(payloads) / sizeof(payloads[0]))

static void pause_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Appends the LEB128 varint of v. */
static size_t put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/*
 * Writes one scope of `count` ranges of `mode`: ranges that end at the
 * keys 1, 2, ... count - 1, each at the smallest depth that its bound
 * allows, then one to 2^124. FP ranges carry a count of 1 and a random
 * 4-byte fingerprint.
 * Over CM_RECON_RANGES_MAX ranges the last one also ends at a key, so the
 * scope is unfinished and only the range limit can stop a decoder first.
 * Returns the payload (malloc'd) and its length.
 */
static uint8_t *many_ranges(size_t count, proto_recon_mode mode, size_t *len)
{
	size_t cap = count * (1 + 10 + 1 + 4), n = 0;
	uint8_t *out = malloc(cap);

	if (!out)
		return NULL;
	for (uint64_t bound = 1; bound <= count; bound++) {
		unsigned depth = PROTO_RECON_DEPTH_MAX;
		uint64_t rest = bound;

		if (bound == count && count <= CM_RECON_RANGES_MAX) {
			depth = 0;  /* the last range ends at 2^124 */
		} else {
			while (rest % 16 == 0) {
				rest /= 16;
				depth--;
			}
		}
		out[n++] = (uint8_t)(mode << 5 | depth);
		n += put_varint(out + n, 1);
		if (mode == PROTO_RECON_FP) {
			n += put_varint(out + n, 1);
			randombytes_buf(out + n, 4);
			n += 4;
		}
	}
	*len = n;
	return out;
}

/* Sends a RECON_START of a fresh session with the given payload. */
static bool send_start(conn *c, const uint8_t *payload, size_t len,
		       uint64_t *session)
{
	uint8_t salt[PROTO_RECON_SALT_LEN], *buf = NULL;
	size_t buf_len = 0;
	cm_err err;

	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(session, sizeof(*session));
	err = proto_wire_recon_start(*session, salt, 4, 4, NULL, 0, payload,
				     len, &buf, &buf_len);
	return send_encoded(c, err, &buf, &buf_len);
}

static bool send_broken(conn *c, const broken *b, bool as_payload)
{
	uint8_t bytes[HEX_MAX];
	uint64_t session;
	size_t len;

	if (!garbage_bytes(b->hex, bytes, sizeof(bytes), &len))
		return failf("table entry '%s' is not valid hex", b->hex);
	expect(b->reason, 1, 1);
	if (as_payload)
		return send_start(c, bytes, len, &session);
	return send_frame(c, bytes, len, 0);
}

/* Sends each broken envelope, then each broken payload in a start of its
 * own, spaced so that the node reads every start. */
static bool send_broken_tables(conn *c)
{
	uint8_t *payload;
	uint64_t session;
	size_t len = 0;
	bool ok = true;

	for (size_t i = 0; ok && i < N_ENVELOPES; i++)
		ok = send_broken(c, &envelopes[i], false);
	for (size_t i = 0; ok && i < N_PAYLOADS; i++) {
		pause_ms(START_SPACING_MS);
		ok = send_broken(c, &payloads[i], true);
	}
	if (!ok)
		return false;

	/* One range more than a message may hold. */
	pause_ms(START_SPACING_MS);
	payload = many_ranges(ROUND_MAX_RANGES + 1, PROTO_RECON_SKIP, &len);
	if (!payload)
		return failf("out of memory for a payload");
	ok = send_start(c, payload, len, &session);
	free(payload);
	expect("too_many", 1, 1);
	return ok;
}

/* Reads the node's replies to RECON_STARTs until the one of session
 * `want`. False when a reply to session `never` comes first or none
 * comes. */
static bool await_answer(conn *c, uint64_t want, uint64_t never)
{
	proto_wire_msg m;
	int rc;

	while ((rc = conn_await(c, PROTO_WIRE_RECON, REPLY_TIMEOUT_MS,
				&m)) == 1) {
		if (m.session == never)
			return failf("the node answered the start that came "
				     "too soon");
		if (m.session == want)
			return true;
	}
	return rc == 0 ? failf("no answer to a valid RECON_START within "
			       "%d ms", REPLY_TIMEOUT_MS)
		       : false;
}

/* Starts three valid sessions at once. Two close together are what a
 * node that was stopped for a while sends, so the node replies to both
 * and rejects the third. The reply to a later start, after a pause,
 * comes with no reply to the third before it. */
static bool send_starts_too_soon(conn *c)
{
	static const uint8_t all_ids[] = {0x40, 0x01, 0x00};
	uint64_t first, second, third, later;

	pause_ms(2 * START_SPACING_MS);
	if (!send_start(c, all_ids, sizeof(all_ids), &first) ||
	    !send_start(c, all_ids, sizeof(all_ids), &second) ||
	    !send_start(c, all_ids, sizeof(all_ids), &third))
		return false;
	expect("too_many", 1, 1);
	if (!await_answer(c, first, third) || !await_answer(c, second, third))
		return false;
	pause_ms(2 * START_SPACING_MS);
	if (!send_start(c, all_ids, sizeof(all_ids), &later))
		return false;
	return await_answer(c, later, third);
}

/* Starts a valid session of the maximum number of ranges, each with a
 * fingerprint the node must check, and waits for its answer. */
static bool send_largest_start(conn *c)
{
	uint64_t session, start;
	proto_wire_msg m;
	uint8_t *payload;
	size_t len = 0;
	int rc;

	pause_ms(START_SPACING_MS);
	payload = many_ranges(ROUND_MAX_RANGES, PROTO_RECON_FP, &len);
	if (!payload)
		return failf("out of memory for a payload");
	start = cm_mono_ms();
	rc = send_start(c, payload, len, &session) ? 1 : -1;
	free(payload);
	while (rc == 1 && (rc = conn_await(c, PROTO_WIRE_RECON,
					   REPLY_TIMEOUT_MS, &m)) == 1)
		if (m.session == session && m.round == 1)
			break;
	if (rc == 0)
		return failf("no answer to a start of %d ranges within %d ms",
			     ROUND_MAX_RANGES, REPLY_TIMEOUT_MS);
	if (rc < 0)
		return false;
	printf("ok - a start of %d ranges (%zu bytes) answered in %llu ms "
	       "with %zu bytes\n", ROUND_MAX_RANGES, len,
	       (unsigned long long)(cm_mono_ms() - start), m.payload_len);
	return true;
}

/* Answers the node's own session with short hashes, which only an
 * initiator may send. */
static bool answer_with_ids(conn *c, uint64_t session)
{
	static const uint8_t ids[] = {0x40, 0x01, 0x00};
	uint8_t *buf = NULL;
	size_t len = 0;

	expect("bad_message", 1, 1);
	return send_encoded(c, proto_wire_recon(session, 1, ids, sizeof(ids),
						&buf, &len),
			    &buf, &len);
}

/* Sends RECON messages of round 0 until the node bans this client, then
 * checks the ban. */
static bool flood_until_banned(conn *c, const options *opt)
{
	static const char round_zero[] = "94 0d 01 00 c4 02 00 01";
	uint8_t bytes[HEX_MAX];
	size_t len = 0;
	bool ok;

	if (!garbage_bytes(round_zero, bytes, sizeof(bytes), &len))
		return failf("'%s' is not valid hex", round_zero);
	ok = true;
	for (unsigned i = 0; ok && i < RECON_FLOOD; i++)
		ok = send_frame(c, bytes, len, 0);
	/* The score reaches 0 after about CM_PEER_SCORE_MAX /
	 * CM_PEER_PENALTY_INVALID invalid inputs, fewer after the rejections
	 * before the flood, more for the points recovered meanwhile. */
	expect("bad_message", 1, RECON_FLOOD);
	return ok && check_reconnect_denied(opt, &c->keys);
}

bool run_recon(const options *opt)
{
	proto_wire_msg m;
	conn c = {0};
	uint64_t node_session = 0;
	bool ok;
	int rc;

	ok = conn_start(&c, opt);
	/* The node starts its own session with every peer that says HELLO. */
	rc = ok ? conn_await(&c, PROTO_WIRE_RECON_START, REPLY_TIMEOUT_MS, &m)
		: -1;
	if (rc == 0)
		ok = failf("no RECON_START from the node within %d ms of the "
			   "handshake", REPLY_TIMEOUT_MS);
	if (rc == 1)
		node_session = m.session;
	ok = ok && rc == 1 && answer_with_ids(&c, node_session) &&
	     barrier(&c, NULL, NULL);
	if (ok)
		pass("short hashes from a responder rejected");

	ok = ok && send_broken_tables(&c) && barrier(&c, NULL, NULL);
	if (ok)
		pass("broken RECON_START and RECON messages rejected by reason");
	ok = ok && send_starts_too_soon(&c);
	if (ok)
		pass("two starts at once answered, a third rejected");
	ok = ok && send_largest_start(&c) && barrier(&c, NULL, NULL);
	if (ok)
		pass("node still serves this peer after the broken messages");

	ok = ok && flood_until_banned(&c, opt);
	if (ok)
		pass("malformed reconciliation messages get the sender banned");
	conn_close(&c);
	return ok;
}

/* --- Scenario: stall ------------------------------------------------- */

/* What the stall client requests again and again: every record of the
 * --records file and the first chunk of each clip's media. */
typedef struct stall_requests {
	uint8_t (*ids)[PROTO_ID_LEN];
	size_t n_ids;
	uint8_t roots[STALL_ROOTS_MAX][PROTO_HASH_LEN];
	size_t n_roots;
} stall_requests;

/* Reads the ids of the records of an export file and the media roots of
 * its clips. */
static bool read_requests(const char *path, stall_requests *sr)
{
	static proto_signed opened;
	uint8_t *data = NULL;
	size_t size = 0, pos = EXPORT_MAGIC_LEN;
	bool ok = true;

	if (!read_file(path, &data, &size))
		return false;
	sr->ids = malloc(STALL_IDS_MAX * sizeof(*sr->ids));
	if (!sr->ids) {
		free(data);
		return failf("out of memory for %d ids", STALL_IDS_MAX);
	}
	if (size < EXPORT_MAGIC_LEN ||
	    memcmp(data, EXPORT_MAGIC, EXPORT_MAGIC_LEN) != 0)
		ok = failf("%s is not an export file", path);
	while (ok && pos + 4 <= size && sr->n_ids < STALL_IDS_MAX) {
		size_t len = (size_t)data[pos] << 24 |
			     (size_t)data[pos + 1] << 16 |
			     (size_t)data[pos + 2] << 8 | data[pos + 3];

		pos += 4;
		if (len > size - pos) {
			ok = failf("%s: a record runs past the end", path);
			break;
		}
		if (proto_record_open(data + pos, len, cm_now_ms(), &opened)) {
			ok = failf("%s: a record does not open", path);
			break;
		}
		memcpy(sr->ids[sr->n_ids++], opened.id, PROTO_ID_LEN);
		if (opened.rec.kind == PROTO_KIND_CLIP &&
		    opened.rec.n_media > 0 && sr->n_roots < STALL_ROOTS_MAX)
			memcpy(sr->roots[sr->n_roots++],
			       opened.rec.media[0].hash, PROTO_HASH_LEN);
		pos += len;
	}
	free(data);
	if (ok && sr->n_ids == 0)
		ok = failf("%s holds no records", path);
	return ok;
}

/* Opens a connection that reads as little as it can: one message queued
 * in ZeroMQ and a small kernel buffer, so that the node's queue towards
 * it fills as soon as the client stops reading. */
static bool open_slow_reader(conn *c, const options *opt)
{
	int hwm = 1, rcvbuf = STALL_RCVBUF;

	memset(c, 0, sizeof(*c));
	keys_new(&c->keys);
	print_hex("peer", c->keys.pub, CURVE_KEY_LEN);
	c->auto_serve = true;
	zmq_msg_init(&c->frame);
	c->opened = true;
	c->sock = zmq_socket(zctx, ZMQ_DEALER);
	if (!c->sock)
		return zmq_failed("creating a DEALER");
	if (!set_options(c, opt) ||
	    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(c->sock, ZMQ_RCVBUF, &rcvbuf, sizeof(rcvbuf)))
		return zmq_failed("setting the slow reader's options");
	if (zmq_connect(c->sock, opt->endpoint))
		return zmq_failed("connecting");
	return true;
}

/* Sends the message that an encoder wrote to *buf and *len without
 * waiting, and frees it; see send_encoded. A full queue towards the node
 * drops the message, as the node would, and is not a failure. */
static bool send_now(conn *c, cm_err err, uint8_t **buf, const size_t *len)
{
	int rc;

	if (err)
		return failf("encoding a message failed: %s (%s)",
			     cm_err_name(err), cm_err_detail());
	rc = zmq_send(c->sock, *buf, *len, ZMQ_DONTWAIT);
	free(*buf);
	*buf = NULL;
	if (rc < 0 && errno != EAGAIN)
		return zmq_failed("sending a message");
	return true;
}

/* Sends WANT pages of every id and a CHUNK_REQ of each root's first
 * chunk. */
static bool request_all(conn *c, const stall_requests *sr)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	bool ok = true;

	for (size_t done = 0; ok && done < sr->n_ids;
	     done += CM_WIRE_IDS_MAX) {
		size_t page = sr->n_ids - done;

		if (page > CM_WIRE_IDS_MAX)
			page = CM_WIRE_IDS_MAX;
		ok = send_now(c, proto_wire_ids(PROTO_WIRE_WANT,
						sr->ids[done], page, &buf,
						&len),
			      &buf, &len);
	}
	for (size_t i = 0; ok && i < sr->n_roots; i++)
		ok = send_now(c, proto_wire_chunk_req(sr->roots[i], 0, &buf,
						      &len),
			      &buf, &len);
	return ok;
}

/* Starts a session that requests every id of the node's store. */
static bool request_every_id(conn *c)
{
	static const uint8_t all_ids[] = {0x40, 0x01, 0x00};
	uint8_t salt[PROTO_RECON_SALT_LEN], *buf = NULL;
	uint64_t session;
	size_t len = 0;
	cm_err err;

	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(&session, sizeof(session));
	err = proto_wire_recon_start(session, salt, 4, 4, NULL, 0, all_ids,
				     sizeof(all_ids), &buf, &len);
	return send_now(c, err, &buf, &len);
}

/*
 * Says HELLO, reads the node's reply, and from then on never reads:
 * requests every record of --records and the first chunk of their media
 * every STALL_WANT_MS, starts a session that asks for every id every
 * STALL_START_MS (over the node's 500 ms minimum), and sends PING every
 * STALL_PING_MS so that the node keeps the link. Prints "ready" after the
 * first requests and ends on SIGTERM.
 */
bool run_stall(const options *opt)
{
	stall_requests sr = {0};
	uint64_t end = cm_mono_ms() + STALL_HOLD_MS;
	uint64_t next_want = 0, next_start = 0, next_ping = 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	conn c = {0};
	bool ok;

	if (!opt->records_path)
		return failf("stall needs --records");
	ok = read_requests(opt->records_path, &sr) &&
	     open_slow_reader(&c, opt) && handshake(&c, opt);
	while (ok && !stopping && cm_mono_ms() < end) {
		uint64_t now = cm_mono_ms();

		if (now >= next_want) {
			ok = request_all(&c, &sr);
			if (ok && next_want == 0)
				printf("ready\n");
			next_want = now + STALL_WANT_MS;
		}
		if (ok && now >= next_start) {
			ok = request_every_id(&c);
			next_start = now + STALL_START_MS;
		}
		if (ok && now >= next_ping) {
			ok = send_now(&c, proto_wire_ping(cm_now_ms(), &buf, &len), &buf,
				      &len);
			next_ping = now + STALL_PING_MS;
		}
		pause_ms(STALL_PAUSE_MS);
	}
	conn_close(&c);
	free(sr.ids);
	return ok;
}
