/*
 * hostile.h - the parts of the hostile_peer test client that its scenario
 * files share with hostile_peer.c. They are connections to the node under
 * test as a CURVE client, messages, made-up records, and the lines that
 * the client prints for the calling script (see the top of
 * hostile_peer.c).
 */
#ifndef HOSTILE_H
#define HOSTILE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <zmq.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "proto_record.h"
#include "proto_wire.h"

/* Time within which a node must respond to one request, generous for
 * ASan builds. */
#define REPLY_TIMEOUT_MS 10000
/* Silence that counts as "the node ignores this", in the checks where no
 * response is the correct behaviour. */
#define QUIET_MS 2000
#define KEEPALIVE_MS 1000

#define ENDPOINT_MAX 256
#define CURVE_KEY_LEN 32
#define EXPORT_MAGIC "clipmesh-export\n"
#define EXPORT_MAGIC_LEN 16
#define FILE_MAX (64u * 1024 * 1024)   /* --records and --media files */
#define MEDIA_LEN 600                  /* each made-up media file, bytes */

/* Command line. */
typedef struct options {
	const char *scenario;
	char endpoint[ENDPOINT_MAX];
	uint8_t server_key[CURVE_KEY_LEN];
	const char *records_path;
	const char *media_path;
	/* The endpoint, or with --source "tcp://SRC:0;HOST:PORT". */
	char connect_endpoint[2 * ENDPOINT_MAX];
	unsigned rate;                 /* rate-flood: messages a second */
	unsigned rounds;               /* rate-flood: bans to cause */
	unsigned connections;          /* silent: connections to open */
	bool hello;                    /* silent: one HELLO, then nothing */
	unsigned port;                 /* announce: the listen port of our
					* HELLO */
	bool no_reconnect;             /* a closed connection stays closed */
} options;

typedef struct curve_keys {
	uint8_t pub[CURVE_KEY_LEN];
	uint8_t secret[CURVE_KEY_LEN];
} curve_keys;

/* A media file of one chunk that the client makes up and serves. */
typedef struct media {
	uint8_t data[MEDIA_LEN];
	uint8_t chunk[PROTO_HASH_LEN];
	uint8_t root[PROTO_HASH_LEN];
} media;

/* An Ed25519 identity and the media its clips refer to. */
typedef struct creator {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	media media;
} creator;

/* A signed record as it travels, and what it tests. */
typedef struct record {
	const char *name;
	uint8_t wire[CM_RECORD_MAX];
	size_t len;
	uint8_t id[PROTO_ID_LEN];
} record;

/* A DEALER connected to the node under test. */
typedef struct conn {
	void *sock;
	void *events;              /* PAIR reading the socket monitor or NULL */
	curve_keys keys;
	const media *served;       /* served honestly; other roots NOT_FOUND */
	bool auto_serve;           /* false: the scenario handles requests */
	bool media_fetched;        /* the node received the chunk of served */
	zmq_msg_t frame;           /* the last message received */
	bool opened;               /* conn_close() has something to close */
} conn;

extern void *zctx;
extern volatile sig_atomic_t stopping;

/* Reports why the node (or the client) failed the scenario; returns false
 * so that callers can `return failf(...)`. */
bool failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool zmq_failed(const char *action);
void print_hex(const char *label, const uint8_t *bin, size_t len);
/* Prints "expect REASON MIN MAX" for the calling script. */
void expect(const char *reason, unsigned min, unsigned max);
void pass(const char *check);

void keys_new(curve_keys *k);
/* Sets linger, send timeout, message size limit and CURVE keys. */
bool set_options(conn *c, const options *opt);
bool monitor_start(conn *c);
int monitor_wait(conn *c, int ms);
bool conn_open(conn *c, const options *opt, const curve_keys *keys,
	       bool watch);
void conn_close(conn *c);
bool send_frame(conn *c, const void *buf, size_t len, int flags);
bool send_encoded(conn *c, cm_err err, uint8_t **buf, const size_t *len);
int conn_recv(conn *c, int ms, proto_wire_msg *m);
int conn_next(conn *c, uint64_t deadline, proto_wire_msg *m);
int conn_await(conn *c, proto_wire_type type, int ms, proto_wire_msg *m);
bool await_hello(conn *c, const options *opt, bool reply,
		 const char *after);
bool handshake(conn *c, const options *opt);
bool conn_start(conn *c, const options *opt);

typedef bool (*records_fn)(void *ctx, const proto_wire_msg *m);
bool barrier(conn *c, records_fn on_records, void *ctx);

void creator_new(creator *cr);
void clip_fill(proto_record *r, const creator *cr, const char *title,
	       uint64_t created_ms);
bool record_sign(const proto_record *r, const creator *cr, const char *name,
		 record *out);
bool push(conn *c, const record *const *recs, size_t n);
bool read_file(const char *path, uint8_t **data, size_t *len);
bool garbage_bytes(const char *hex, uint8_t *out, size_t cap, size_t *len);
bool check_reconnect_denied(const options *opt, const curve_keys *keys);

/* Scenarios in hostile_sync.c. */
bool run_recon(const options *opt);
bool run_stall(const options *opt);

#endif
