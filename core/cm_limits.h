/*
 * cm_limits.h - every size, count and time limit of clipmesh in one place.
 *
 * String limits count encoded UTF-8 bytes, not characters. proto/PROTOCOL.md
 * repeats the limits that are part of the record format; a change here that
 * touches a record limit is a protocol change.
 */
#ifndef CM_LIMITS_H
#define CM_LIMITS_H

/* Records. */
#define CM_RECORD_VERSION 1
#define CM_BODY_MAX (16 * 1024)              /* canonical body, bytes */
#define CM_RECORD_MAX (CM_BODY_MAX + 128)    /* body + envelope + sig */
#define CM_FUTURE_SKEW_MS (10 * 60 * 1000)   /* max clock lead accepted */
#define CM_TITLE_MAX 200
#define CM_TEXT_MAX 4000
#define CM_PRODUCT_MAX 512
#define CM_LANG_MAX 35                       /* BCP 47 tag */
#define CM_TAG_MAX 32
#define CM_TAGS_MAX 16
#define CM_MEDIA_MAX 8                       /* media refs per clip */
#define CM_MEDIA_TYPE_MAX 64
#define CM_NAME_MAX 64                       /* profile display name */
#define CM_BIO_MAX 1000
#define CM_RATING_MIN 1
#define CM_RATING_MAX 5

/* Media. */
#define CM_CHUNK_SIZE (256 * 1024)
#define CM_MEDIA_SIZE_MAX (4ULL * 1024 * 1024 * 1024)  /* one file */
#define CM_MANIFEST_CHUNKS_MAX \
	((unsigned)(CM_MEDIA_SIZE_MAX / CM_CHUNK_SIZE))
#define CM_MEDIA_FETCH_SIZE_DEFAULT (512ULL * 1024 * 1024) /* largest media
						a node fetches unless its
						--media-max says otherwise */
#define CM_MEDIA_WRITE_BATCH 16              /* verified chunks stored per
						write transaction */
#define CM_MEDIA_PENDING_MAX 256             /* media waiting for a fetch
						slot, newest fetched first */
#define CM_MEDIA_RETRY_MIN_MS (60 * 1000)    /* first pause of media whose
						fetch failed; doubles */
#define CM_MEDIA_RETRY_MAX_MS (6 * 3600 * 1000) /* longest such pause */
#define CM_MEDIA_EVICT_RETRY_MS (24ULL * 3600 * 1000) /* media freed over
						the budget is not fetched
						again for this long */

/* Wire. */
#define CM_WIRE_MSG_MAX (2 * 1024 * 1024)    /* one ZeroMQ message */
#define CM_WIRE_BATCH_MAX 64                 /* records per RECORDS message */
#define CM_WIRE_IDS_MAX 4096                 /* ids per HAVE/WANT message */
#define CM_GOSSIP_WANT_MS 5000               /* an announced id requested
						from one peer is not
						requested from another for
						this long */
#define CM_WIRE_FOLLOWS_MAX 4096             /* authors in a HELLO */
#define CM_WIRE_CHUNKS_INFLIGHT 8            /* chunk requests per peer */
#define CM_WIRE_HWM 256                      /* messages queued per peer */

/* Range-based set reconciliation (proto/PROTOCOL.md, "Reconciliation"). */
#define CM_RECON_RANGES_MAX 65536            /* ranges in one message, all
						scopes together */
#define CM_RECON_IDS_MAX 1024                /* short hashes in one range */
#define CM_RECON_FULL_MAX 1024               /* full ids in one range */
#define CM_RECON_ROUNDS_MAX 64               /* messages in one session */
#define CM_RECON_SESSION_TIMEOUT_MS 30000    /* silence that ends a session */
#define CM_RECON_SESSION_GAP_MS 1000         /* min time between two sessions
						that one peer starts */
#define CM_RECON_WORK_MAX 2000000            /* aggregates read plus items
						scanned to answer one message */
#define CM_RECON_FETCH_WINDOW 8192           /* records a session requests
						from a peer before they
						arrive; its next round waits
						until all it found are
						requested */
#define CM_RECON_FETCH_STALL_MS 3000         /* no requested record for this
						long: the rest count as lost,
						and the next session asks */
#define CM_RECON_FETCH_MAX 131072            /* ids a link lists to request:
						two answers of 2 MiB */

/* Node. */
#define CM_PEERS_MAX 64
#define CM_PING_INTERVAL_MS 2000
#define CM_PEER_TIMEOUT_MS 10000             /* silence before disconnect */
#define CM_SYNC_INTERVAL_MS 30000            /* periodic catch-up */
#define CM_CONTROL_TIMEOUT_MS 2000           /* CLI to node request */
#define CM_MEDIA_JOBS_MAX 32                 /* media fetched at once */
#define CM_PEER_REJECTS_MAX 100              /* rejected inputs per peer
						and minute before a ban */
#define CM_PEER_BAN_MS (10 * 60 * 1000)      /* how long a ban lasts */
#define CM_HANDSHAKE_MS 5000                 /* ZMTP and CURVE handshake of
						an inbound connection */
#define CM_HELLO_DEADLINE_MS 5000            /* inbound link without HELLO
						before it is dropped */
#define CM_CONNECTIONS_MAX 512               /* open inbound TCP connections,
						handshaking or not */
#define CM_FD_RESERVE 128                    /* descriptors never given to
						inbound connections: LMDB,
						control socket, media files */
#define CM_LISTEN_BACKLOG 64                 /* pending TCP accepts */
#define CM_PEER_QUEUED_MAX \
	(2 * CM_WIRE_CHUNKS_INFLIGHT * CM_CHUNK_SIZE) /* bytes sent to a peer
						and not yet acknowledged by
						its TCP stack, above which its
						CHUNK_REQs are dropped */
/* The same over all peers together. NOTE: a tighter total (16 MiB) held
 * back chunks after a peer reconnected several times in a row, because
 * the per-connection accounting then over-counts; until that is fixed
 * the total is the per-peer bound times the peer limit (256 MiB). */
#define CM_QUEUED_TOTAL_MAX ((uint64_t)CM_PEERS_MAX * CM_PEER_QUEUED_MAX)
#define CM_BAN_LOG_INTERVAL_MS 10000         /* one summary line per
						interval for further bans */

/* Store. */
#define CM_STORE_MAP_SIZE (64ULL * 1024 * 1024 * 1024) /* LMDB map, bytes */
#define CM_STORE_MAX_READERS 126
#define CM_LOG_PAGE_MAX 4096                 /* log entries per read */
#define CM_STORE_FULL_RETRY_MS 5000          /* a full store: wait this
						long before writing again */
#define CM_FEED_LIMIT_DEFAULT 20
#define CM_FEED_LIMIT_MAX 1000
#define CM_ID_PREFIX_MIN 8                   /* hex chars */

/*
 * Ranges of the settings an operator may change in HOME/config
 * (core/cm_config.c). The defaults are the limits above. Where a limit
 * sizes a fixed array of the node (peers, inbound connections, fetch
 * slots), the limit is also the largest value the setting accepts.
 */
#define CM_PEER_QUEUED_MIN (2ULL * CM_CHUNK_SIZE)
#define CM_PEER_QUEUED_CEIL (1ULL << 30)
#define CM_QUEUED_TOTAL_MIN (2ULL * CM_CHUNK_SIZE)
#define CM_QUEUED_TOTAL_CEIL (64ULL << 30)
#define CM_SYNC_INTERVAL_MIN_MS 1000
#define CM_SYNC_INTERVAL_MAX_MS (24ULL * 3600 * 1000)
#define CM_HANDSHAKE_MIN_MS 1000
#define CM_HANDSHAKE_MAX_MS (5 * 60 * 1000)
#define CM_STORE_MAP_SIZE_MIN (16ULL << 20)
#define CM_STORE_MAP_SIZE_CEIL (16ULL << 40) /* 16 TiB of address space */
/* Per-peer rate limits (messages/s, bytes/s) and ban durations: their
 * defaults and ranges go here, next to CM_PEER_REJECTS_MAX and
 * CM_PEER_BAN_MS. */

/* Configuration file. */
#define CM_CONFIG_FILE_MAX (64 * 1024)       /* bytes of HOME/config */
#define CM_CONFIG_LINE_MAX 1024              /* bytes of one line */

/* Logging. */
#define CM_LOG_LINE_MAX 1024                 /* bytes of one log line */
#define CM_LOG_REPEAT_WINDOW_MS 10000        /* repeats of one warning
						counted per window */
#define CM_LOG_REPEAT_BURST 5                /* lines of one warning
						printed per window */
#define CM_LOG_REPEAT_SLOTS 64               /* warnings tracked at once */

/* Doctor. */
#define CM_DOCTOR_CONNECT_MS 2000            /* TCP connect to a peer */
#define CM_DOCTOR_SKEW_MS 60000              /* clock lead seen on a
						peer's records that fails */

#endif
