/*
 * recon_records.c - a minimal peer that delivers record files to a
 * running clipmesh mirror through reconciliation, for
 * tests/e2e/test_bad_input.sh.
 *
 * Usage: recon_records ADDRESS FILE...
 *
 * Connects to ADDRESS as the peer of corpus_peer.h and waits for the
 * session that the mirror starts after the handshake. It takes the
 * responder's role over a set with one entry per FILE. When the node can
 * read the record's envelope, the entry has the id that the node
 * computes (the hash of the body) and, when the body decodes, its
 * created time. Otherwise the entry has a made-up id (the hash of the
 * whole file) and the current time. Each FILE that the mirror requests
 * in WANT is sent back as it is, as the only record of one RECORDS
 * message.
 *
 * After each answer it sends a MANIFEST_REQ for a root that no media
 * has. A node handles a peer's messages in order, so the NOT_FOUND reply
 * comes after every WANT and RECON that the answer caused: once the reply
 * to the last answer arrives with nothing else, the session is over.
 * NOTE: a node whose queue towards this peer is full sends its WANT or
 * next round later, so this peer would end early and name files as not
 * requested. With a handful of records the queue never fills.
 *
 * Exits 0 once every FILE was requested and sent, 3 when the session
 * ended without a request for some FILE (named on stderr), 1 on a
 * failure or when nothing settles within 60 s, 2 on bad usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "cm_util.h"
#include "corpus_peer.h"
#include "node_internal.h"
#include "proto_recon.h"
#include "proto_wire.h"

#define PROG "recon_records"
/* Time the whole exchange may take, generous for ASan builds on busy
 * cores. */
#define DEADLINE_MS 60000
/* Exit code when the session ended without a request for some file. */
#define EXIT_NOT_REQUESTED 3

/* One record file offered in the session. */
typedef struct entry {
	const char *path;
	uint8_t *wire;           /* the file's bytes, malloc'd */
	size_t len;
	proto_recon_item item;
	bool sent;
} entry;

/* The responder's side of the mirror's session. */
typedef struct responder {
	corpus_peer peer;
	entry *entries;          /* sorted by key */
	size_t n_entries;
	size_t n_sent;
	proto_recon_source src;
	proto_recon_session recon;
	bool started;
	uint64_t session;
	uint64_t round;          /* last round sent */
	unsigned fences;         /* MANIFEST_REQs without NOT_FOUND yet */
} responder;

/* Root of the MANIFEST_REQ that marks the end of an answer's effects. */
static const uint8_t fence_root[PROTO_HASH_LEN];

/* --- The set of offered records -------------------------------------- */

static cm_err set_agg(void *ctx, size_t scope, proto_recon_key lo,
		      proto_recon_key hi, proto_recon_agg *out)
{
	responder *r = ctx;

	(void)scope;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < r->n_entries; i++) {
		const proto_recon_item *item = &r->entries[i].item;

		if (item->key >= lo && item->key < hi)
			proto_recon_agg_id(out, item->id, false);
	}
	r->src.work++;
	return CM_OK;
}

static cm_err set_items(void *ctx, size_t scope, proto_recon_key lo,
			proto_recon_key hi, proto_recon_item *out, size_t max,
			size_t *n)
{
	responder *r = ctx;

	(void)scope;
	*n = 0;
	for (size_t i = 0; i < r->n_entries; i++) {
		const proto_recon_item *item = &r->entries[i].item;

		if (item->key < lo || item->key >= hi)
			continue;
		if (*n == max)
			return CM_ERR_TOO_MANY;
		out[(*n)++] = *item;
		r->src.work++;
	}
	return CM_OK;
}

/* Sets the id and key that entry e is offered with. */
static void describe_entry(entry *e)
{
	static proto_record rec;
	const uint8_t *body;
	size_t body_len;
	uint64_t created = cm_now_ms();

	if (node_record_body(e->wire, e->len, &body, &body_len)) {
		proto_record_id(body, body_len, e->item.id);
		if (proto_body_decode(body, body_len, &rec) == CM_OK)
			created = rec.created_ms;
	} else {
		crypto_generichash(e->item.id, PROTO_ID_LEN, e->wire, e->len,
				   NULL, 0);
	}
	e->item.key = proto_recon_key_of(created, e->item.id);
}

static int entry_order(const void *a, const void *b)
{
	const entry *x = a, *y = b;

	if (x->item.key != y->item.key)
		return x->item.key < y->item.key ? -1 : 1;
	return memcmp(x->item.id, y->item.id, PROTO_ID_LEN);
}

/* Reads the files into r->entries. Returns 0, or 1 or 2 as the exit
 * code. */
static int load_entries(responder *r, char **paths, size_t n)
{
	r->entries = calloc(n, sizeof(*r->entries));
	if (r->entries == NULL)
		return 1;
	for (size_t i = 0; i < n; i++) {
		entry *e = &r->entries[i];

		e->path = paths[i];
		e->wire = corpus_peer_read_file(&r->peer, paths[i], &e->len);
		if (e->wire == NULL)
			return 1;
		describe_entry(e);
		r->n_entries++;
	}
	qsort(r->entries, n, sizeof(*r->entries), entry_order);
	for (size_t i = 1; i < n; i++) {
		if (memcmp(r->entries[i - 1].item.id, r->entries[i].item.id,
			   PROTO_ID_LEN) != 0)
			continue;
		fprintf(stderr, PROG ": %s and %s have the same id; pass them "
			"in separate runs\n", r->entries[i - 1].path,
			r->entries[i].path);
		return 2;
	}
	return 0;
}

/* --- Messages ---------------------------------------------------------- */

/* Sends buf (malloc'd, freed here). Returns 0 or -1. */
static int send_owned(responder *r, uint8_t *buf, size_t len)
{
	int rc = zmq_send(r->peer.sock, buf, len, 0);

	free(buf);
	if (rc < 0)
		fprintf(stderr, PROG ": sending to the node failed: %s\n",
			zmq_strerror(errno));
	return rc < 0 ? -1 : 0;
}

/* Sends the MANIFEST_REQ whose NOT_FOUND marks the end of what our last
 * answer caused. */
static int send_fence(responder *r)
{
	uint8_t *buf;
	size_t len;

	if (proto_wire_manifest_req(fence_root, &buf, &len) != CM_OK)
		return -1;
	r->fences++;
	return send_owned(r, buf, len);
}

/* Answers payload `in` of the session with round `round`. */
static int answer(responder *r, const uint8_t *in, size_t in_len,
		  uint64_t round)
{
	uint8_t *payload = NULL, *buf = NULL;
	size_t payload_len = 0, len = 0;
	bool done = false;
	cm_err err;

	err = proto_recon_next(&r->recon, in, in_len, &payload, &payload_len,
			       &done);
	if (err == CM_OK)
		err = proto_wire_recon(r->session, round, payload, payload_len,
				       &buf, &len);
	free(payload);
	if (err != CM_OK) {
		fprintf(stderr, PROG ": answering round %llu failed: %s (%s)\n",
			(unsigned long long)round, cm_err_name(err),
			cm_err_detail());
		return -1;
	}
	r->round = round;
	if (send_owned(r, buf, len) != 0)
		return -1;
	return send_fence(r);
}

static int on_start(responder *r, const proto_wire_msg *m)
{
	if (!m->recon_all) {
		fprintf(stderr, PROG ": the node's session has %zu author "
			"scopes, but only a session of every author is "
			"supported: connect to a mirror\n", m->n_authors);
		return -1;
	}
	proto_recon_session_free(&r->recon);
	memset(&r->recon, 0, sizeof(r->recon));
	memcpy(r->recon.salt, m->salt, PROTO_RECON_SALT_LEN);
	r->recon.params = proto_recon_defaults();
	r->recon.params.fp_len = (size_t)m->fp_len;
	r->recon.params.hash_len = (size_t)m->hash_len;
	r->recon.n_scopes = 1;
	r->recon.src = &r->src;
	r->session = m->session;
	r->started = true;
	return answer(r, m->payload, m->payload_len, 1);
}

static int on_recon(responder *r, const proto_wire_msg *m)
{
	if (!r->started || m->session != r->session ||
	    m->round != r->round + 1)
		return 0; /* not our session's next round */
	return answer(r, m->payload, m->payload_len, m->round + 1);
}

/* Sends every listed file that was not sent yet. */
static int on_want(responder *r, const proto_wire_msg *m)
{
	for (size_t i = 0; i < m->n_ids; i++) {
		const uint8_t *id = m->ids + i * PROTO_ID_LEN;

		for (size_t k = 0; k < r->n_entries; k++) {
			entry *e = &r->entries[k];

			if (e->sent || memcmp(e->item.id, id, PROTO_ID_LEN))
				continue;
			if (corpus_peer_send_record(&r->peer, e->wire,
						    e->len) != 0) {
				fprintf(stderr, PROG ": sending %s failed: "
					"%s\n", e->path, zmq_strerror(errno));
				return -1;
			}
			e->sent = true;
			r->n_sent++;
		}
	}
	return 0;
}

/* Handles one message and sets *over once the session is over. */
static int on_message(responder *r, const uint8_t *buf, size_t len,
		      bool *over)
{
	proto_wire_msg m;

	if (proto_wire_decode(buf, len, &m) != CM_OK)
		return 0; /* the node sends nothing we must read otherwise */
	switch (m.type) {
	case PROTO_WIRE_RECON_START:
		return on_start(r, &m);
	case PROTO_WIRE_RECON:
		return on_recon(r, &m);
	case PROTO_WIRE_WANT:
		return on_want(r, &m);
	case PROTO_WIRE_NOT_FOUND:
		if (r->fences > 0 &&
		    memcmp(m.root, fence_root, PROTO_HASH_LEN) == 0 &&
		    --r->fences == 0)
			*over = true;
		return 0;
	default:
		return 0;
	}
}

/* Receives and handles messages until every file is sent or the
 * session is over. Returns the exit code. */
static int run(responder *r)
{
	uint64_t deadline = cm_mono_ms() + DEADLINE_MS;
	bool over = false;
	zmq_msg_t msg;

	zmq_msg_init(&msg);
	while (r->n_sent < r->n_entries && !over) {
		uint64_t now = cm_mono_ms();
		int timeout, n;

		if (now >= deadline) {
			fprintf(stderr, PROG ": timed out after %d ms: %s\n",
				DEADLINE_MS, r->started
						     ? "the session did not end"
						     : "the node started no "
						       "session");
			zmq_msg_close(&msg);
			return 1;
		}
		timeout = (int)(deadline - now);
		zmq_setsockopt(r->peer.sock, ZMQ_RCVTIMEO, &timeout,
			       sizeof(timeout));
		n = zmq_msg_recv(&msg, r->peer.sock, 0);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n < 0 || on_message(r, zmq_msg_data(&msg),
					zmq_msg_size(&msg), &over) != 0) {
			if (n < 0)
				fprintf(stderr, PROG ": receiving failed: "
					"%s\n", zmq_strerror(errno));
			zmq_msg_close(&msg);
			return 1;
		}
	}
	zmq_msg_close(&msg);
	if (r->n_sent == r->n_entries)
		return 0;

	for (size_t i = 0; i < r->n_entries; i++) {
		char hex[2 * PROTO_ID_LEN + 1];

		if (r->entries[i].sent)
			continue;
		sodium_bin2hex(hex, sizeof(hex), r->entries[i].item.id,
			       PROTO_ID_LEN);
		fprintf(stderr, PROG ": the session ended without a WANT for "
			"%s (id %s); a node does not request an id that it "
			"stores or knows as retracted\n", r->entries[i].path,
			hex);
	}
	return EXIT_NOT_REQUESTED;
}

int main(int argc, char **argv)
{
	responder r = {0};
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: " PROG " ADDRESS FILE...\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	r.peer.prog = PROG;
	r.src = (proto_recon_source){
		.agg = set_agg, .items = set_items, .ctx = &r};
	rc = load_entries(&r, argv + 2, (size_t)(argc - 2));
	if (rc == 0)
		rc = corpus_peer_open(&r.peer, PROG, argv[1]);
	if (rc == 0) {
		rc = run(&r);
		corpus_peer_close(&r.peer);
	}

	proto_recon_session_free(&r.recon);
	for (size_t i = 0; i < r.n_entries; i++)
		free(r.entries[i].wire);
	free(r.entries);
	return rc;
}
