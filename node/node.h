/*
 * node.h - the clipmesh daemon (`clipmesh node` and `clipmesh mirror`) and
 * the client side of its local control socket.
 */
#ifndef NODE_H
#define NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"
#include "proto_record.h"
#include "store.h"

typedef enum node_role {
	NODE_ROLE_CREATOR, /* takes its own clips and those it follows */
	NODE_ROLE_MIRROR,  /* takes every valid record */
} node_role;

/* Which media a node fetches. A mirror always fetches all. */
typedef enum node_media_policy {
	NODE_MEDIA_FOLLOWED, /* media of its own and followed creators */
	NODE_MEDIA_ALL,      /* media of every stored clip */
	NODE_MEDIA_NONE,     /* no media: records only */
} node_media_policy;

/*
 * Limits an operator may tune (the [limits] settings of HOME/config). A
 * field left 0 takes its default from cm_limits.h; node_run clamps the
 * counts to the compile-time maximum that sizes the node's tables.
 */
typedef struct node_limits {
	unsigned peers_max;          /* links in each direction */
	unsigned connections_max;    /* inbound TCP connections */
	uint64_t peer_queued_max;    /* bytes queued towards one peer */
	uint64_t queued_total_max;   /* the same over all peers */
	unsigned media_fetches;      /* media fetched at once */
	uint64_t sync_interval_ms;   /* periodic reconciliation */
	uint64_t handshake_ms;       /* ZMTP and CURVE handshake */
	uint64_t hello_timeout_ms;   /* inbound link without HELLO */
	uint64_t reconnect_max_ms;   /* longest backoff between dials */
	uint64_t store_map_size;     /* LMDB map, bytes */
	/* Per-peer rate limits and ban durations go here. */
} node_limits;

typedef struct node_config {
	const char *home;          /* initialised home folder */
	node_role role;
	const char *listen;        /* ZeroMQ endpoint, e.g. tcp://127.0.0.1:7701 */
	const char *const *peers;  /* peer addresses as `clipmesh id` prints */
	size_t n_peers;
	node_media_policy media;   /* ignored by a mirror, which fetches all */
	uint64_t media_size_max;   /* bytes; larger media is not fetched;
				    * 0: CM_MEDIA_FETCH_SIZE_DEFAULT */
	uint64_t media_budget;     /* bytes of stored chunks over which whole
				    * media is evicted; 0: unlimited */
	node_limits limits;
	unsigned peers_learned;    /* outbound links to peers learned by
				    * exchange while fewer exist; 0: no
				    * exchange */
	uint64_t peer_msgs;        /* messages a second each peer may send;
				    * 0: CM_PEER_MSGS_DEFAULT */
	uint64_t peer_bytes;       /* bytes a second each peer may send,
				    * chunks we requested not counted;
				    * 0: CM_PEER_BYTES_DEFAULT */
	uint64_t ban_base_ms;      /* first ban; doubles on each repeat;
				    * 0: CM_BAN_BASE_MS */
	bool allow_only;           /* allow-list mode: only the n_allow keys
				    * in `allow` may connect (none when 0) */
	const uint8_t *allow;      /* n_allow CURVE keys of 32 bytes */
	size_t n_allow;

	/* Optional: called on the node thread after start-up with the
	 * node's store handle, which other threads may read through until
	 * on_stop returns (the HTTP API uses this). An error stops the
	 * node before its loop starts. */
	cm_err (*on_start)(void *hook_ctx, store *st);
	/* Optional: called on the node thread before the store closes,
	 * only when on_start succeeded. */
	void (*on_stop)(void *hook_ctx);
	void *hook_ctx;
	int64_t test_clock_offset_ms; /* for tests only: ms added to this
				       * node's wall clock wherever it
				       * exchanges time with peers (HELLO,
				       * PING, their offsets); 0 normally */
} node_config;

/*
 * Runs the node in the foreground until SIGINT or SIGTERM. Returns CM_OK
 * after a clean shutdown, or the error that prevented start-up.
 */
cm_err node_run(const node_config *cfg);

/* Counters of the node running in this process, for other threads. */
typedef struct node_stats {
	uint64_t updated_ms;        /* wall clock of this snapshot */
	uint64_t peers_connected;   /* links whose HELLO arrived */
	uint64_t links;             /* links open or connecting */
	uint64_t bytes_in;          /* peer messages since start */
	uint64_t bytes_out;
	uint64_t records_in;        /* records stored from peers */
	uint64_t records_out;       /* records sent to peers */
	uint64_t duplicates_in;
	uint64_t sync_sessions;     /* finished reconciliation sessions */
	uint64_t sync_rounds;       /* their messages */
	uint64_t media_fetching;    /* media fetches running */
	uint64_t connections_refused;
} node_stats;

/*
 * Copies the latest snapshot of the counters of the node running in this
 * process, which its thread refreshes every NODE_STATS_INTERVAL_MS.
 * Safe to call from any thread. CM_ERR_NOT_FOUND when no node runs.
 */
cm_err node_stats_snapshot(node_stats *out);

#define NODE_STATS_INTERVAL_MS 250

/*
 * Tells the node running in `home` (if any) that records `ids` were added
 * to the store by another process, so that it gossips them at once.
 * Returns CM_OK when the node acknowledged, CM_ERR_NOT_FOUND when no node
 * is running there, CM_ERR_TIMEOUT when it did not answer in
 * CM_CONTROL_TIMEOUT_MS.
 */
cm_err node_notify(const char *home, const uint8_t (*ids)[PROTO_ID_LEN],
		   size_t n);

/*
 * Asks the node running in `home` for its status as one JSON object
 * (malloc'd, NUL-terminated; the caller frees it). CM_ERR_NOT_FOUND when
 * no node is running there.
 */
cm_err node_status(const char *home, char **json);

/*
 * Appends the node key in `text` (64 hex digits, or a peer address as
 * `clipmesh id` prints it) to the allow-list *keys of *n_keys keys. *keys
 * is realloc'd, and the caller frees it. Fails with CM_ERR_BAD_KEY when
 * text is neither form, CM_ERR_TOO_MANY past CM_ALLOW_MAX keys.
 */
cm_err node_allow_add(const char *text, uint8_t **keys, size_t *n_keys);

/*
 * Appends the keys of allow-list file `path` as node_allow_add does: one
 * key per line, blank lines skipped, '#' starts a comment. Fails on the
 * first bad line with its number in the detail (CM_ERR_BAD_KEY, or
 * CM_ERR_TOO_LONG for a line over CM_ALLOW_LINE_MAX bytes), and with
 * CM_ERR_NOT_FOUND or CM_ERR_IO when the file cannot be read.
 */
cm_err node_allow_read(const char *path, uint8_t **keys, size_t *n_keys);

/*
 * Parses a peer address "clipmesh://KEYHEX@HOST:PORT" into a ZeroMQ TCP
 * endpoint (out[256]) and the peer's CURVE public key.
 */
cm_err node_parse_addr(const char *addr, char *endpoint,
		       uint8_t server_key[32]);

/* Formats a peer address from a TCP endpoint and a CURVE public key into
 * out[256]. Fails when the endpoint is not tcp://HOST:PORT. */
cm_err node_format_addr(const char *endpoint, const uint8_t server_key[32],
			char *out);

#endif
