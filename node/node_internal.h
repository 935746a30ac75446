/*
 * node_internal.h - state shared by the files of the node daemon.
 *
 * The daemon is one thread around one zmq_poll loop (node.c). Peers are
 * "links": an outbound link owns a DEALER connected to a configured peer,
 * an inbound link is one connection that a peer made to our ROUTER, known
 * by its routing id. Both kinds speak the same messages (proto_wire.h).
 */
#ifndef NODE_INTERNAL_H
#define NODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "cm_limits.h"
#include "node.h"
#include "proto_wire.h"
#include "store.h"

#define NODE_LOG "node"
#define NODE_KEY_LEN 32              /* CURVE public key */
#define NODE_ROUTING_ID_MAX 255      /* ZeroMQ routing ids are 1..255 */
#define NODE_ENDPOINT_MAX 256
#define NODE_LINKS_MAX (2 * CM_PEERS_MAX)
#define NODE_KNOWN_IDS 2048          /* per link, ids the peer holds */
#define NODE_WANTS 8192              /* ids requested and not received */

typedef enum node_link_dir {
	NODE_LINK_OUT, /* we connected: a DEALER of our own */
	NODE_LINK_IN,  /* the peer connected to our ROUTER */
} node_link_dir;

/* Traffic counters of one link, shown by `clipmesh status`. */
typedef struct node_link_stats {
	uint64_t records_in;
	uint64_t records_out;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t duplicates_in;             /* records we already had */
	uint64_t recon_sessions;            /* finished, either role */
	uint64_t recon_rounds;
	uint64_t recon_bytes_in;            /* session messages of both */
	uint64_t recon_bytes_out;           /* roles, as they are received or
					     * queued */
	uint64_t announced_in;              /* ids in HAVE messages */
	uint64_t announced_out;
	char last_error[32];                /* reason name, "" when none */
	uint64_t last_error_ms;             /* wall clock */
	/* Largest lead of a stored record's creation time over our clock
	 * when it arrived (negative: behind), for clock checks; set once
	 * clock_lead_seen. */
	int64_t clock_lead_ms;
	bool clock_lead_seen;
} node_link_stats;

typedef struct node_link {
	bool used;
	node_link_dir dir;
	void *dealer;                       /* NODE_LINK_OUT only */
	uint8_t routing_id[NODE_ROUTING_ID_MAX];
	size_t routing_id_len;              /* NODE_LINK_IN only */
	char endpoint[NODE_ENDPOINT_MAX];   /* connect endpoint, or the
					     * peer's IP for inbound links */
	uint8_t key[NODE_KEY_LEN];          /* peer's CURVE public key, as
					     * authenticated by CURVE */
	char short_key[9];

	/* Set once the peer's HELLO arrived; cleared on timeout. */
	bool established;
	proto_wire_role role;
	bool interest_all;
	uint8_t *interest;                  /* sorted keys, malloc'd */
	size_t n_interest;

	uint64_t connected_ms;              /* wall clock, for status */
	uint64_t opened;                    /* monotonic ms, link created */
	bool hello_sent;                    /* our last HELLO was queued */
	uint64_t last_rx;                   /* monotonic ms */
	uint64_t last_ping;
	uint64_t last_hello;
	node_link_stats stats;

	/* Reconciliation sessions with the peer (node_sync.c). */
	uint64_t next_sync;                 /* monotonic ms */
	struct node_sync *sync;             /* malloc'd; NULL before the
					     * first session */

	unsigned chunks_in_flight;

	/* 64-bit prefixes of ids the peer is known to hold, direct-mapped
	 * (node_gossip.c). */
	uint64_t known_ids[NODE_KNOWN_IDS];

	/* The TCP connection that the link's last message came on (-1:
	 * unknown), its peer address when first seen, and the byte counts
	 * at that moment, for the reply bytes still queued towards it. */
	int fd;
	char fd_peer[NODE_ENDPOINT_MAX];
	uint64_t fd_bytes_out;
	uint64_t fd_bytes_acked;
	uint64_t chunk_reqs_dropped;

	/* Rejected inputs in the current minute; over CM_PEER_REJECTS_MAX
	 * the peer is banned and the next tick drops the link. */
	uint64_t reject_minute;
	unsigned rejects;
	bool banned;

	/* Rejection log rate limit: lines in the current second. */
	uint64_t log_second;
	unsigned log_lines;
	uint64_t log_suppressed;
} node_link;

typedef struct node_media_job node_media_job;

typedef struct node {
	const node_config *cfg;
	node_limits limits;                 /* cfg->limits with defaults */
	store *st;
	void *ctx;
	void *router;
	void *control;
	void *zap;
	uint8_t pub[NODE_KEY_LEN];
	uint8_t *secret;                    /* sodium_malloc'd */
	char short_key[9];
	char control_path[4096];
	int lock_fd;

	node_link links[NODE_LINKS_MAX];

	/* Keys whose messages are ignored and whose connections ZAP denies
	 * until `until` (monotonic ms). */
	struct node_ban {
		uint8_t key[NODE_KEY_LEN];
		uint64_t until;
	} bans[CM_PEERS_MAX];
	uint64_t ban_log_until;             /* end of the ban log interval */
	uint64_t bans_unlogged;             /* bans since its last line */

	/* Monitor of the ROUTER and the inbound TCP connections it reports
	 * (node.c); fds[i] is -1 in free slots. */
	void *monitor;
	int conn_fds[CM_CONNECTIONS_MAX];
	size_t n_conns;
	uint64_t conns_refused;
	uint64_t conns_log_until;           /* end of the refusal log
					     * interval (monotonic ms) */
	uint64_t conns_unlogged;
	uint64_t chunk_reqs_dropped;
	uint64_t links_evicted;
	uint64_t table_full_log_until;      /* monotonic ms */

	/* Authors whose records this node wants; all when interest_all. */
	bool interest_all;
	uint8_t *interest;                  /* sorted keys, malloc'd */
	size_t n_interest;
	uint64_t next_interest;

	/* Ids requested by WANT and not received yet, direct-mapped by
	 * 64-bit prefix (node_gossip.c). */
	struct node_want {
		uint64_t prefix;
		uint64_t until;                 /* monotonic ms */
	} wants[NODE_WANTS];

	/* Rejections counted since the last flush to the store. */
	uint64_t rejected[CM_ERR_COUNT];

	/* Set while the store is full (map or disk): incoming records are
	 * dropped and counted until store_retry_at (monotonic ms), then one
	 * batch tries again. Reconciliation brings back what was dropped. */
	bool store_full;
	uint64_t store_retry_at;

	/* Scratch space for one RECORDS message (CM_WIRE_BATCH_MAX). */
	proto_signed *batch;
	cm_err *batch_results;

	/* Media transfers. */
	node_media_job *jobs;               /* CM_MEDIA_JOBS_MAX slots */
	uint64_t next_media_scan;
	bool media_rescan;                  /* a job gave up: scan again */
	uint8_t *chunk_buf;                 /* CM_CHUNK_SIZE bytes */
	uint8_t served_root[PROTO_HASH_LEN];
	uint8_t (*served_chunks)[PROTO_HASH_LEN];
	size_t served_n;
	uint64_t served_size;
	struct node_media_state *media;     /* write batch and policy
					     * state (node_media.c) */
} node;

/* --- node.c ------------------------------------------------------------ */

/* Sets the message size limit, queue limits, linger and IPv6 support on
 * a socket. */
cm_err node_socket_defaults(void *sock);

/* --- node_peer.c: links, handshake, liveness, sending ------------------ */

/* Creates the outbound link for a peer address; fails on a bad address,
 * our own key or a full table. */
cm_err node_link_add_out(node *n, const char *addr);

/* Returns the inbound link of `routing_id`, creating it for `key` when
 * new; NULL when the table is full. */
node_link *node_link_in(node *n, const uint8_t *routing_id, size_t len,
			const uint8_t key[NODE_KEY_LEN], const char *peer_ip);

/* Sends a message to a link and frees `buf` in every case. Returns
 * CM_ERR_TIMEOUT when the queue towards the peer is full (the message is
 * dropped; catch-up delivers it later). */
cm_err node_link_send(node *n, node_link *l, uint8_t *buf, size_t len);

/* Handles one message that arrived on a link. */
void node_link_receive(node *n, node_link *l, const uint8_t *buf,
		       size_t len);

/* Sends pings and HELLOs, detects silent peers, runs catch-up pages. */
void node_links_tick(node *n);

/* Announces our interest again to every established peer. */
void node_links_rehello(node *n);

/* True when records by `author` may be sent to the link's peer. */
bool node_link_wants(const node_link *l, const uint8_t author[PROTO_KEY_LEN]);

/* True when `l` is the one link used to send to its peer's key, so that
 * two links to the same node never both carry a record. */
bool node_link_is_primary(const node *n, const node_link *l);

/* Frees a link's buffers; clears the slot when it is inbound. */
void node_link_drop(node *n, node_link *l, const char *reason);

void node_link_free_all(node *n);

/* Records that the link's latest message came on TCP connection `fd`
 * (-1: not known). */
void node_link_set_fd(node_link *l, int fd);

/*
 * Returns the bytes sent on the link's connection that its peer has not
 * acknowledged: an upper bound of what libzmq and the kernel still hold
 * for it, less the ZMTP and CURVE framing (tens of bytes per message).
 * 0 when the connection is not TCP.
 */
uint64_t node_link_queued(const node_link *l);

/* Closes the TCP connection under descriptor `fd`, which libzmq owns, by
 * shutting it down; libzmq then closes it and frees its queues. */
void node_fd_shutdown(int fd);

/*
 * Counts and logs one rejected input (`what`: "record", "message", ...)
 * from link `l` (NULL: local), at most a few lines per second per link.
 * The log line carries cm_err_detail(). id may be NULL.
 */
void node_reject(node *n, node_link *l, const char *what, cm_err reason,
		 const uint8_t *id);

/* True while `key` is banned. */
bool node_is_banned(const node *n, const uint8_t key[NODE_KEY_LEN]);

/* Writes the pending rejection counters to the store. */
void node_flush_rejected(node *n);

/* --- node_ingest.c: records in, push out ------------------------------- */

/* Refreshes the authors we want (identities and follows) every
 * CM_PING_INTERVAL_MS; re-announces them when they changed. */
void node_interest_refresh(node *n, bool force);

bool node_wants(const node *n, const uint8_t author[PROTO_KEY_LEN]);

/* Opens, filters and stores the records of one RECORDS message. */
void node_ingest(node *n, node_link *from, const proto_wire_msg *m);

/* Reads records `ids` from the store (added by another process) and
 * pushes them to peers. */
void node_ingest_local(node *n, const uint8_t *ids, size_t count);

/*
 * Reads record `id` from our own store without checking its signature
 * again (it was verified before it was stored). *wire is malloc'd (the
 * caller frees it) and out->wire aliases it.
 */
cm_err node_load_record(node *n, const uint8_t id[PROTO_ID_LEN],
			uint8_t **wire, proto_signed *out);

/* Sends up to CM_WIRE_BATCH_MAX records to a link in one RECORDS
 * message, skipping the ones outside its interest. Returns CM_ERR_TIMEOUT
 * when the queue towards the peer is full. */
cm_err node_send_records(node *n, node_link *l, const proto_signed *recs,
			 size_t count);

/* --- node_sync.c: reconciliation, WANT and RECORDS --------------------- */

/* Starts a reconciliation session over our interest with the link's
 * peer, unless one started less than CM_RECON_SESSION_GAP_MS ago. */
void node_sync_start(node *n, node_link *l);

/* Sends session messages that found the queue full, ends silent
 * sessions, and starts the periodic one when it is due and ours is not
 * still running. */
void node_sync_tick(node *n, node_link *l);

/* Handles RECON_START or RECON (`len` bytes on the wire). */
void node_sync_on_recon(node *n, node_link *l, const proto_wire_msg *m,
			size_t len);

void node_sync_on_want(node *n, node_link *l, const proto_wire_msg *m);

/* Frees the link's reconciliation state. */
void node_sync_drop(node_link *l);

/* --- node_gossip.c: announce-then-fetch gossip ------------------------- */

/* Announces freshly stored records (HAVE) to every peer but `from` that
 * wants them and is not known to hold them. */
void node_gossip_push(node *n, node_link *from, const proto_signed *recs,
		      size_t count);

/* Answers a HAVE with one WANT of the ids this node lacks and has not
 * requested from another peer in the last CM_GOSSIP_WANT_MS. */
void node_gossip_on_have(node *n, node_link *l, const proto_wire_msg *m);

/* Notes that the peer of l holds record id, so it is not announced to
 * it. */
void node_gossip_note_known(node_link *l, const uint8_t id[PROTO_ID_LEN]);

/* --- node_media.c: media fetch and serving ----------------------------- */

cm_err node_media_init(node *n);
void node_media_free(node *n);

/* Queues fetches for the media of a stored clip that we lack. */
void node_media_want(node *n, node_link *from, const proto_signed *rec);

/* Walks the store for clips with incomplete media (at most every
 * CM_SYNC_INTERVAL_MS unless forced). */
void node_media_scan(node *n, bool force);

void node_media_tick(node *n);

/* True when fetch slot i (< CM_MEDIA_JOBS_MAX) contains a job. */
bool node_media_job_active(const node *n, size_t i);
void node_media_on_link_down(node *n, node_link *l);
void node_media_on_message(node *n, node_link *l, const proto_wire_msg *m);

/* Answers a MANIFEST_REQ or CHUNK_REQ from a peer (node_media_serve.c). */
void node_media_serve(node *n, node_link *l, const proto_wire_msg *m);

/*
 * Builds the "transfers" list of the status JSON: one object per running
 * fetch with root, chunks_done, chunks_total, bytes_done, size, rate
 * (bytes per second since the job started) and peers (per peer: peer,
 * chunks, in_flight, state). Returns a new jansson array (the caller owns
 * the reference), or NULL when out of memory.
 */
struct json_t *node_media_transfers_json(const node *n);

/* --- node_control.c: local control socket ------------------------------ */

/* Request types of the control socket: the first element of a request. */
typedef enum node_control_command {
	NODE_CONTROL_STATUS = 1,
	NODE_CONTROL_NOTIFY = 2,
} node_control_command;

/* A decoded control request. `ids` points into the decoded buffer. */
typedef struct node_control_request {
	node_control_command command;
	const uint8_t *ids;                 /* NOTIFY: n_ids contiguous ids */
	size_t n_ids;
} node_control_request;

cm_err node_control_open(node *n);
void node_control_close(node *n);

/* Reads one request from the control socket, acts on it and replies. */
void node_control_receive(node *n);

/*
 * Decodes a control request strictly: [1] for status, or [2, bin of
 * 1..CM_WIRE_IDS_MAX ids] for notify, in shortest-form msgpack with nothing
 * after the array. Fails with the code of the first problem
 * (CM_ERR_BAD_MESSAGE for an unknown command, a wrong element count or an
 * id list that is not a whole number of ids).
 */
cm_err node_control_decode_request(const uint8_t *buf, size_t len,
				   node_control_request *req);

/*
 * Decodes a control reply [code, text] strictly. *code receives the
 * node's result (CM_OK, or the cm_err of its failure), and *text points
 * into buf: "ok" or the status JSON on success, the reason otherwise.
 * Fails with CM_ERR_BAD_MESSAGE on a code outside cm_err and with the
 * text rules' codes on a reason that is not printable UTF-8.
 */
cm_err node_control_decode_reply(const uint8_t *buf, size_t len,
				 cm_err *code, const uint8_t **text,
				 size_t *text_len);

/* --- node_status.c ----------------------------------------------------- */

/* Builds the status JSON (malloc'd, caller frees); NULL on failure. */
char *node_status_json(node *n);

/* --- shared helpers ---------------------------------------------------- */

/* Splits a record's wire form [body, sig] without verifying it, for ids
 * in log lines and for trusted records from our own store. */
bool node_record_body(const uint8_t *wire, size_t len, const uint8_t **body,
		      size_t *body_len);

/* Sorts n keys of NODE_KEY_LEN bytes and drops duplicates; returns the new
 * count. */
size_t node_keys_sort(uint8_t *keys, size_t n);

/* True when `key` is in the sorted key list. */
bool node_keys_contain(const uint8_t *keys, size_t n, const uint8_t *key);

#endif
