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
#define CM_MEDIA_WRITE_BATCH 16              /* max verified chunks stored
						per write transaction */
#define CM_MEDIA_WRITE_SLOTS 48              /* verified chunks queued for
						the writer thread or requested
						from peers, over all fetches */
#define CM_INGEST_BATCH_MAX 1024             /* max records from peers
						stored per write
						transaction */
#define CM_MREF_DEFER_MAX 16384              /* stored clips whose media
						reference entries wait to be
						written in one sorted batch */
#define CM_VERIFY_MESSAGES 8                 /* RECORDS messages queued for
						the verify threads */
#define CM_INGEST_BATCH_MS 5                 /* max ms a verified record
						waits for more before its
						transaction starts, unless
						the previous one still runs */
#define CM_MEDIA_PENDING_MAX 256             /* media waiting for a fetch
						slot, newest fetched first */
#define CM_MEDIA_RETRY_MIN_MS (60 * 1000)    /* first pause of media whose
						fetch failed; doubles */
#define CM_MEDIA_RETRY_MAX_MS (6 * 3600 * 1000) /* longest such pause */
#define CM_MEDIA_MAKE_ROOM_RETRY_MS (10 * 1000) /* pause of media that
						never failed before, when its
						stuck fetch makes room for
						newer media */
#define CM_MEDIA_STORE_PAUSE_MAX_MS (5 * 60 * 1000) /* longest pause of
						media fetches while the
						store fails writes */
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
#define CM_GOSSIP_WANT_TRIES 4               /* peers asked in turn for
						an announced record before
						reconciliation is left to
						bring it */
#define CM_GOSSIP_UNDELIVERED_MAX 4          /* announced records a peer
						may fail to send when asked
						in a minute before its
						announcements stop holding
						back other peers' */
#define CM_GOSSIP_HAVE_RATE 16384            /* announced ids per second
						that all peers together may
						make the node look up,
						shared evenly among the
						established links; the rest
						wait for reconciliation */
#define CM_GOSSIP_HAVE_SHARE_MIN 512         /* each link's share of
						CM_GOSSIP_HAVE_RATE is at
						least this many a second */
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
#define CM_RECON_REFUSED_MS (10 * 60 * 1000) /* a record that a peer sent
						and this node rejected is
						not requested from that
						peer again for this long */
#define CM_RECON_FETCH_MAX 131072            /* ids a link lists to request:
						two answers of 2 MiB */

/* Node. */
#define CM_PEERS_MAX 64
#define CM_PEERS_LEARNED 4                   /* default outbound links to
						peers learned by peer
						exchange */
#define CM_PING_INTERVAL_MS 2000
#define CM_PEER_TIMEOUT_MS 10000             /* silence before disconnect */
#define CM_SYNC_INTERVAL_MS 30000            /* periodic catch-up */
#define CM_CONTROL_TIMEOUT_MS 2000           /* CLI to node request */
#define CM_LINGER_MS 200                     /* a closed node socket keeps
						sending its queued messages
						this long */
#define CM_GOODBYE_WAIT_MS 500               /* a stopping node waits this
						long at most for its peers
						to close their connections
						after its GOODBYE; with
						CM_LINGER_MS, the most that
						GOODBYE adds to a stop */
#define CM_MEDIA_JOBS_MAX 32                 /* media fetched at once */
/* Chunk request timeouts. Each peer's timeout is its smoothed chunk
 * response time plus four mean deviations (as TCP's retransmission
 * timeout, RFC 6298), clamped to these bounds. The floor keeps a busy
 * but healthy peer from timing out on a scheduling pause, the ceiling is
 * the silence after which the peer is dropped anyway, and a peer not yet
 * measured starts at the initial value. */
#define CM_CHUNK_TIMEOUT_MIN_MS 1000
#define CM_CHUNK_TIMEOUT_INITIAL_MS 3000
#define CM_CHUNK_TIMEOUT_MAX_MS CM_PEER_TIMEOUT_MS
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

/* Outbound dialling and peer exchange (node_known.c, node_pex.c). */
#define CM_DIAL_TIMEOUT_MS 5000              /* a dial that brings no HELLO
						in this long has failed */
#define CM_LEARNED_DIAL_DELAY_MS 5000        /* after start, before learned
						peers are dialled: those that
						dial this node come back
						first and need no second
						connection */
#define CM_RECONNECT_MIN_MS 1000             /* backoff after a first failed
						dial; doubles with each
						failure in a row */
#define CM_RECONNECT_MAX_MS (5 * 60 * 1000)  /* default longest backoff */
#define CM_RECONNECT_CEIL_MS (60 * 60 * 1000) /* largest reconnect_max */
#define CM_KNOWN_PEERS_MAX 256               /* known peers kept, in memory
						and in the store */
#define CM_KNOWN_FAILURES_MAX 12             /* failed dials in a row after
						which a peer that is not
						configured is forgotten */
#define CM_PEX_ENTRIES_MAX 32                /* addresses in one PEERS */
#define CM_PEX_CANDIDATES_MAX 64             /* learned addresses waiting
						to be verified */
#define CM_PEX_PER_SOURCE_MAX 8              /* of those, from one peer */
#define CM_PEX_VERIFY_MAX 4                  /* candidates dialled at once */
#define CM_PEX_CANDIDATE_TTL_MS (10 * 60 * 1000) /* a candidate not dialled
						in this long is dropped */
#define CM_PEX_INTERVAL_MS (2 * 60 * 1000)   /* PEERS_REQ to an outbound
						peer, after the first one at
						its HELLO */
#define CM_PEX_ANSWER_GAP_MS 10000           /* PEERS_REQ of one link
						answered at most this often */
#define CM_PEX_SHARE_AGE_MS (24ULL * 3600 * 1000) /* a known peer is shared
						while this node reached it
						within this long */

/* Peer discipline (node_rate.c, node_ban.c). Every inbound message costs
 * one token of a messages bucket and its size from a bytes bucket, and
 * each bucket stores CM_PEER_BURST_S seconds of its rate. Chunks that the
 * node requested are not charged, because its own request window already
 * bounds them. */
#define CM_PEER_MSGS_DEFAULT 1000            /* messages per second */
#define CM_PEER_MSGS_MAX 1000000             /* largest --peer-msgs */
#define CM_PEER_BYTES_DEFAULT (32ULL * 1024 * 1024) /* bytes per second */
#define CM_PEER_BYTES_MAX (1ULL << 40)       /* largest --peer-bytes */
#define CM_PEER_BURST_S 2
/* A peer's score starts at CM_PEER_SCORE_MAX, recovers
 * CM_PEER_SCORE_RECOVER points a second, and the peer is banned when it
 * reaches 0: after about 100 invalid inputs in a row, or about 25 seconds
 * over its rate limit. */
#define CM_PEER_SCORE_MAX 1000
#define CM_PEER_SCORE_RECOVER 10             /* points per second */
#define CM_PEER_PENALTY_INVALID 10           /* malformed or badly signed
						input */
#define CM_PEER_PENALTY_OVERRUN 50           /* each second in which input
						was dropped or paused */
#define CM_BAN_BASE_MS (10 * 60 * 1000)      /* first ban of a key or an
						address; doubles on each
						repeat */
#define CM_BAN_MAX_MS (24 * 3600 * 1000)     /* longest ban */
#define CM_BAN_FORGET_MS (24ULL * 3600 * 1000) /* strikes are forgotten
						this long after a ban ended */
#define CM_BAN_IP_STRIKES 2                  /* strikes of links from one
						address before the address
						itself is banned */
#define CM_BANS_MAX 1024                     /* keys with strikes, and as
						many addresses; an entry
						without a running ban makes
						room first */
#define CM_PEER_LINKS_PER_IP 16              /* inbound links from one IP
						address */
#define CM_CONNECTIONS_PER_IP \
	(2 * CM_PEER_LINKS_PER_IP)           /* open inbound TCP connections
						from one IPv4 address or
						IPv6 /64: each link needs
						one, plus room for
						reconnects */
#define CM_ALLOW_MAX 65536                   /* keys in an allow-list */
#define CM_ALLOW_LINE_MAX 1024               /* bytes in one line of an
						allow-list file */

/* Passphrase-sealed identity keys (cm_keyfile.h). New keys use
 * libsodium's MODERATE Argon2id cost (3 passes over 256 MiB): about
 * 0.45 s per publish on a 2-core x86-64 VM, 8 times the INTERACTIVE cost
 * (0.055 s) for an attacker who guesses offline. Key files with costs
 * between INTERACTIVE (2, 64 MiB) and SENSITIVE (4, 1 GiB) are read. */
#define CM_PASSPHRASE_MAX 1024               /* bytes */
#define CM_KEY_PWHASH_OPSLIMIT 3ULL
#define CM_KEY_PWHASH_MEMLIMIT (256ULL * 1024 * 1024)
#define CM_KEY_PWHASH_OPSLIMIT_MIN 2ULL
#define CM_KEY_PWHASH_OPSLIMIT_MAX 4ULL
#define CM_KEY_PWHASH_MEMLIMIT_MIN (64ULL * 1024 * 1024)
#define CM_KEY_PWHASH_MEMLIMIT_MAX (1024ULL * 1024 * 1024)

/* Store. */
#define CM_STORE_MAP_SIZE (64ULL * 1024 * 1024 * 1024) /* LMDB map, bytes */
#define CM_STORE_MAX_READERS 512            /* read transactions at once:
						every HTTP connection, the
						node's threads and CLI
						commands; 64 bytes each in
						lock.mdb */
#define CM_STORE_LOCK_WAIT_MS 30000          /* opening a store waits at
						most this long for another
						process to finish opening
						it; an open takes ms */
#define CM_LOG_PAGE_MAX 4096                 /* log entries per read */
#define CM_STORE_FULL_RETRY_MS 5000          /* a full store: wait this
						long before writing again */
/* A commit that fails with EIO or ENOSPC while fewer bytes than this are
 * free on the store's file system is reported as a full disk. LMDB stops
 * at the write that the disk cuts short, so little is free then: 0 bytes
 * on the tmpfs of test_disk_full_message.sh. The margin, an estimate,
 * covers space that other programs free in the meantime. */
#define CM_STORE_DISK_FULL_FREE (16ULL << 20)
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
/* HTTP API of a mirror (clipmesh mirror --http). */
#define CM_HTTP_CONNECTIONS_MAX 256          /* open connections; each has
						a thread and at most one
						LMDB reader slot */
#define CM_HTTP_PER_IP_CONNECTIONS_MAX 16    /* of those, from one address */
#define CM_HTTP_STREAMS_MAX 32               /* open event streams */
#define CM_HTTP_TIMEOUT_S 15                 /* idle connection, seconds */
#define CM_HTTP_REQUEST_TIMEOUT_S 10         /* seconds a connection has to
						deliver a whole request
						(headers and body), from
						its accept or from the end
						of the previous response.
						Unlike CM_HTTP_TIMEOUT_S,
						it counts time, not
						silence */
#define CM_HTTP_REQUEST_SWEEP_MS 1000        /* how often connections are
						checked against that
						deadline, so one closes up
						to this much after it */
#define CM_HTTP_STREAM_TIMEOUT_S 45          /* idle stream connection: a
						client that reads nothing
						for this long is closed */
#define CM_HTTP_THREAD_STACK (512 * 1024)    /* bytes per connection thread */
#define CM_HTTP_RATE_DEFAULT 50              /* requests per second and
						client address */
#define CM_HTTP_RATE_MAX 1000000             /* largest http_rate setting */
#define CM_HTTP_BURST_DEFAULT 100            /* requests a client may send
						at once after a pause */
#define CM_HTTP_CLIENTS_MAX 4096             /* client addresses the rate
						limiter tracks; the rest
						share one bucket */
#define CM_HTTP_MEDIA_BLOCK (256 * 1024)     /* bytes per media write */
#define CM_HTTP_CHECKED_CHUNKS 16384         /* chunk hashes remembered as
						checked, 512 KiB; a chunk
						whose slot they share is
						hashed again */
#define CM_HTTP_STREAM_BUFFER (64 * 1024)    /* events queued per stream
						client */
#define CM_HTTP_STREAM_BATCH 32              /* log entries read per store
						call */
#define CM_HTTP_STREAM_POLL_MS 200           /* how often a stream checks
						the log for new records */
#define CM_HTTP_HEARTBEAT_MS 15000           /* comment line on an idle
						stream */

/* Clocks. */
#define CM_CLOCK_OFFSET_WARN_MS 60000        /* peer clock offset over
						which the node warns and
						doctor fails; a tenth of
						CM_FUTURE_SKEW_MS */
#define CM_CLOCK_WINDOW_MS 15000             /* a peer's offset is the
						largest sample of the
						current and the previous
						window */
#define CM_TEST_CLOCK_OFFSET_MAX_MS 86400000 /* largest value of
						test_clock_offset, a
						setting for tests only */

#endif
