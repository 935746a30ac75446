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
#include "cm_util.h"
#include "node.h"
#include "proto_batch.h"
#include "proto_wire.h"
#include "store.h"

#define NODE_LOG "node"
#define NODE_KEY_LEN 32              /* CURVE public key */
#define NODE_ROUTING_ID_MAX 255      /* ZeroMQ routing ids are 1..255 */
#define NODE_ENDPOINT_MAX 256
#define NODE_LINKS_MAX (2 * CM_PEERS_MAX)
#define NODE_KNOWN_IDS 2048          /* per link, ids the peer has */
#define NODE_WANTS 8192              /* ids requested and not received */
#define NODE_REFUSED 4096            /* (peer, id) pairs of rejected
				      * records, not requested again */
#define NODE_IP_MAX 64               /* an IPv4 or IPv6 address as text */

/* --- node_rate.c: token buckets and scores ----------------------------- */

/*
 * A token bucket: `rate` tokens a second, at most `cap` stored. The level
 * is kept in thousandths of a token, so that one millisecond of refill is
 * exact. It falls below zero when a caller charges more than the bucket
 * contains (node_bucket_charge).
 */
typedef struct node_bucket {
	int64_t level;                      /* thousandths of a token */
	int64_t cap;                        /* thousandths of a token */
	uint64_t rate;                      /* tokens per second */
	uint64_t last_ms;                   /* monotonic ms of last refill */
} node_bucket;

/* Starts a full bucket of `burst` tokens refilled at `rate` a second.
 * rate and burst are at most 2^42. */
void node_bucket_init(node_bucket *b, uint64_t rate, uint64_t burst,
		      uint64_t now_ms);

/* Takes `amount` tokens when the bucket contains them after a refill;
 * otherwise takes none and returns false. */
bool node_bucket_take(node_bucket *b, uint64_t amount, uint64_t now_ms);

/* Takes `amount` tokens after a refill, going into debt if needed. */
void node_bucket_charge(node_bucket *b, uint64_t amount, uint64_t now_ms);

/* Returns the milliseconds until the bucket level is above zero; 0 when
 * it is now. */
uint64_t node_bucket_wait_ms(node_bucket *b, uint64_t now_ms);

/*
 * A peer's standing: CM_PEER_SCORE_MAX points at first, lowered by
 * penalties, recovering CM_PEER_SCORE_RECOVER points a second. The peer is
 * banned when it reaches 0.
 */
typedef struct node_score {
	int64_t milli;                      /* thousandths of a point */
	uint64_t at_ms;                     /* monotonic ms of `milli` */
} node_score;

void node_score_init(node_score *s, uint64_t now_ms);

/* Adds the points recovered since the last change, subtracts `penalty`
 * and returns the points left (0 or less: ban). */
int64_t node_score_lower(node_score *s, unsigned penalty, uint64_t now_ms);

/* Returns the points at now_ms, recovery included, without changing s. */
int64_t node_score_points(const node_score *s, uint64_t now_ms);

/* --- node_ban.c: bans of keys and addresses ---------------------------- */

typedef enum node_ban_kind {
	NODE_BAN_KEY,                       /* a CURVE public key */
	NODE_BAN_IP,                        /* an IP address */
} node_ban_kind;

/* One key or address with strikes. A strike bans a key for the table's
 * base time, doubled for each earlier strike, at most its maximum. An
 * address is banned the same way from its CM_BAN_IP_STRIKES-th strike on;
 * before that its length_ms is 0 and it is not banned. */
typedef struct node_ban {
	bool used;
	node_ban_kind kind;
	uint8_t key[NODE_KEY_LEN];          /* NODE_BAN_KEY */
	char ip[NODE_IP_MAX];               /* NODE_BAN_IP */
	unsigned strikes;
	uint64_t until;                     /* monotonic ms */
	uint64_t length_ms;                 /* of the latest ban */
} node_ban;

/* Every key and address with strikes: at most CM_BANS_MAX keys in the
 * first part of `entries` and as many addresses in the second. An entry
 * is forgotten CM_BAN_FORGET_MS after its ban ended. */
#define NODE_BANS_SLOTS (2 * CM_BANS_MAX)
typedef struct node_bans {
	node_ban entries[NODE_BANS_SLOTS];
	uint64_t base_ms;
	uint64_t max_ms;
} node_bans;

/* Empties the table and sets the length of a first ban and of the
 * longest one. */
void node_bans_init(node_bans *b, uint64_t base_ms, uint64_t max_ms);

/*
 * Adds a strike to a key (kind NODE_BAN_KEY, `key`) or an address
 * (NODE_BAN_IP, `ip`; an IPv6 address counts as its /64) and bans it
 * from now_ms on (an address only from its CM_BAN_IP_STRIKES-th strike
 * on). When the kind's part of the table is full, the entry without a
 * running ban whose ban ended first makes room. A running ban makes room
 * only when every entry has one. Returns the entry, which
 * stays valid until the next strike.
 */
const node_ban *node_bans_strike(node_bans *b, node_ban_kind kind,
				 const uint8_t *key, const char *ip,
				 uint64_t now_ms);

/* Returns the entry of a key or address while it is banned, else NULL. */
const node_ban *node_bans_active(const node_bans *b, node_ban_kind kind,
				 const uint8_t *key, const char *ip,
				 uint64_t now_ms);

/* Why the ZAP handler denies a connection, or NODE_ZAP_ACCEPT. */
typedef enum node_zap_verdict {
	NODE_ZAP_ACCEPT = 0,
	NODE_ZAP_BANNED_KEY,
	NODE_ZAP_BANNED_IP,
	NODE_ZAP_NOT_ALLOWED,               /* allow-list mode */
	NODE_ZAP_ADDRESS_FULL,              /* CM_PEER_LINKS_PER_IP reached */
	NODE_ZAP_VERDICTS
} node_zap_verdict;

/* --- node_known.c: known peers, exchange candidates, backoff --------- */

/* Where a known peer's address comes from, as `status` shows it. */
typedef enum node_known_source {
	NODE_KNOWN_CONFIGURED,  /* this run's --peer, config or `peer add` */
	NODE_KNOWN_REMEMBERED,  /* configured in an earlier run, stored */
	NODE_KNOWN_LEARNED,     /* peer exchange, then verified */
} node_known_source;

/* A peer this node dials: configured, or reached before. Its outbound
 * link, when it has one, is the link with the same key that is not a
 * candidate's. */
typedef struct node_known {
	bool used;
	uint8_t key[NODE_KEY_LEN];
	char addr[STORE_KNOWN_ADDR_MAX + 1]; /* HOST:PORT */
	node_known_source source;
	bool stored;                        /* has an entry in the store */
	uint32_t failures;                  /* failed dials in a row */
	uint64_t last_seen_ms;              /* last HELLO, wall ms; 0 never */
	/* Numeric address of the last connection to it, which PEERS
	 * messages share. ip_len is 0 until a connection was made in this
	 * run, unless the stored host is numeric. */
	uint8_t ip[PROTO_WIRE_IPV6_LEN];
	size_t ip_len;
	uint16_t port;
} node_known;

/* An address learned from a peer and not verified yet. */
typedef struct node_candidate {
	bool used;
	uint8_t key[NODE_KEY_LEN];
	uint8_t source[NODE_KEY_LEN];       /* the peer that sent it */
	char addr[STORE_KNOWN_ADDR_MAX + 1]; /* numeric HOST:PORT */
	uint64_t added;                     /* monotonic ms */
} node_candidate;

/* Why a PEERS entry is taken as a candidate, or why not. */
typedef enum node_pex_verdict {
	NODE_PEX_TAKEN = 0,
	NODE_PEX_UNUSABLE,      /* port 0, unspecified, multicast, broadcast,
				 * link-local or reserved address */
	NODE_PEX_LOCAL,         /* loopback or private, from a peer that is
				 * not itself on such an address */
	NODE_PEX_KNOWN,         /* our key, a known peer or a candidate */
	NODE_PEX_SOURCE_FULL,   /* the sender has CM_PEX_PER_SOURCE_MAX */
	NODE_PEX_TABLE_FULL,    /* CM_PEX_CANDIDATES_MAX candidates */
	NODE_PEX_BANNED,        /* the key is banned */
	NODE_PEX_VERDICTS
} node_pex_verdict;

/* Known peers and candidates with the exchange counters of `status`. */
typedef struct node_peer_table {
	node_known known[CM_KNOWN_PEERS_MAX];
	node_candidate candidates[CM_PEX_CANDIDATES_MAX];
	uint64_t learned;                   /* candidates verified */
	uint64_t unverified;                /* candidates that failed */
	uint64_t forgotten;                 /* known peers dropped after
					     * CM_KNOWN_FAILURES_MAX */
	uint64_t verdicts[NODE_PEX_VERDICTS]; /* PEERS entries by
					     * node_pex_verdict, taken ones
					     * included */
	uint64_t announced[NODE_PEX_VERDICTS]; /* listen addresses that
					     * inbound peers announced in
					     * their HELLO, by verdict */
} node_peer_table;

/* Returns the stable name of a verdict for status and logs. */
const char *node_pex_verdict_name(node_pex_verdict v);

/* Returns the name of a source ("configured", ...). */
const char *node_known_source_name(node_known_source s);

/*
 * Checks the address of a PEERS entry. `from_ip` is the numeric address
 * of the sender's connection. Loopback addresses are taken only from a
 * sender on loopback, and private ones (RFC 1918, 100.64/10, fc00::/7)
 * only from a sender on loopback or a private address, because such an
 * address names another host for each node. Writes the address as
 * HOST:PORT (IPv6 in brackets) into addr when taken.
 */
node_pex_verdict node_pex_check_addr(const proto_wire_peer *p,
				     const char *from_ip,
				     char addr[STORE_KNOWN_ADDR_MAX + 1]);

/* Returns the known peer of `key`, or NULL. */
node_known *node_known_find(node_peer_table *t,
			    const uint8_t key[NODE_KEY_LEN]);

/*
 * Adds a known peer. When the table is full, the peer that is neither
 * configured nor in `busy` (keys of peers with a link, n_busy of them)
 * makes room: the one with the most failures, then the oldest HELLO.
 * Returns NULL when no peer can make room. The entry's other fields
 * start at zero.
 */
node_known *node_known_add(node_peer_table *t,
			   const uint8_t key[NODE_KEY_LEN], const char *addr,
			   node_known_source source, const uint8_t *busy,
			   size_t n_busy);

/*
 * Adds a candidate from peer `source` unless its key is known, already a
 * candidate, or `self`, the source has CM_PEX_PER_SOURCE_MAX candidates,
 * or the table is full.
 */
node_pex_verdict node_candidate_add(node_peer_table *t,
				    const uint8_t key[NODE_KEY_LEN],
				    const char *addr,
				    const uint8_t source[NODE_KEY_LEN],
				    const uint8_t self[NODE_KEY_LEN],
				    uint64_t now_ms);

/*
 * Adds `addr`, where the peer of `key` announced in its HELLO that it
 * listens, as a candidate whose source is the key itself. One host may
 * have at most CM_PEX_PER_SOURCE_MAX such candidates and learned peers
 * together, because a client can connect again and again with fresh
 * keys. A learned peer gets a candidate for a new address, so that a
 * check can move it there; other known keys are NODE_PEX_KNOWN.
 */
node_pex_verdict node_announce_add(node_peer_table *t,
				   const uint8_t key[NODE_KEY_LEN],
				   const char *addr,
				   const uint8_t self[NODE_KEY_LEN],
				   uint64_t now_ms);

/* Returns the candidate of `key`, or NULL. */
node_candidate *node_candidate_find(node_peer_table *t,
				    const uint8_t key[NODE_KEY_LEN]);

/* Removes the candidates added more than CM_PEX_CANDIDATE_TTL_MS ago
 * that `dialling` (a callback on the key) does not report as dialled;
 * returns their count. */
size_t node_candidates_expire(node_peer_table *t, uint64_t now_ms,
			      bool (*dialling)(void *ctx, const uint8_t *key),
			      void *ctx);

/*
 * Returns the wait in ms before the next dial after `failures` (1 or
 * more) failed dials in a row. The base is CM_RECONNECT_MIN_MS doubled
 * for each failure after the first, at most max_ms. The wait is half the
 * base plus the other half scaled by random / 2^32, so it lies in
 * [base / 2, base].
 */
uint64_t node_backoff_ms(uint32_t failures, uint64_t max_ms,
			 uint32_t random);

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
} node_link_stats;

/* A peer's clock as its HELLO and PING messages show it (node_clock.c). */
typedef struct node_clock {
	int64_t offset_ms;                  /* peer's clock minus ours
					     * (negative: behind); set once
					     * `known` */
	bool known;
	int64_t window_max_ms;              /* largest sample since
					     * window_start */
	int64_t previous_max_ms;            /* of the window before */
	uint64_t window_start;              /* monotonic ms */
	bool warned;                        /* logged as beyond
					     * CM_CLOCK_OFFSET_WARN_MS */
	uint64_t rtt_ms;                    /* HELLO round trip; 0: none
					     * measured on this connection */
	uint64_t asked_ms;                  /* monotonic ms of our last
					     * HELLO that asked for a reply;
					     * 0 once answered */
} node_clock;

/* A peer's chunk response times and the request timeout derived from
 * them (node_media_rto.c). All zero: nothing measured yet. */
typedef struct node_rto {
	uint64_t srtt_ms;                   /* smoothed response time */
	uint64_t rttvar_ms;                 /* its smoothed mean deviation */
	uint64_t timeout_ms;                /* 0: CM_CHUNK_TIMEOUT_INITIAL_MS */
	uint64_t samples;
} node_rto;

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

	/* Outbound dialling (node_dial.c). The DEALER exists while a dial
	 * runs or the link is up, and is NULL between dials. */
	bool candidate;                     /* verifies a learned address */
	bool orphan;                        /* no known peer took it: the
					     * next tick removes it */
	bool probe;                         /* checked an address that the
					     * peer announced, then sent
					     * GOODBYE. Removed once the
					     * peer closes or at probe_end */
	uint64_t probe_end;                 /* monotonic ms */
	uint64_t dial_started;              /* monotonic ms of this dial */
	uint64_t next_dial;                 /* monotonic ms, without DEALER */
	uint64_t dials;                     /* dials of this link */
	void *dial_monitor;                 /* PAIR that reads the DEALER's
					     * connection events while it is
					     * open; NULL otherwise */
	const char *dial_error;             /* cause of the last failed dial
					     * (static string), NULL after a
					     * HELLO */

	/* Peer exchange (node_pex.c). */
	bool pex_requested;                     /* PEERS_REQ sent, PEERS due */
	uint64_t next_pex;                  /* monotonic ms of the next
					     * PEERS_REQ; outbound only */
	uint64_t pex_answered;              /* monotonic ms of our last
					     * PEERS to it */

	/* Set once the peer's HELLO arrived; cleared on timeout. */
	bool established;
	/* Inbound only: the peer sent GOODBYE. The slot keeps the key and
	 * score, without a connection, until the liveness timeout. */
	bool departed;
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
	node_clock clock;

	/* Reconciliation sessions with the peer (node_sync.c). */
	uint64_t next_sync;                 /* monotonic ms */
	bool sync_waits;                    /* skipped its first
					     * reconciliation because another
					     * link of its key was up, whose
					     * end starts one */
	struct node_sync *sync;             /* malloc'd; NULL before the
					     * first session */

	unsigned chunks_in_flight;
	node_rto chunk_rto;                 /* reset when the link goes down */

	/* 64-bit prefixes of ids the peer is known to hold, direct-mapped
	 * (node_gossip.c). */
	uint64_t known_ids[NODE_KNOWN_IDS];

	/* Announced ids the node may still look up for this peer: its
	 * share of CM_GOSSIP_HAVE_RATE, refilled each second
	 * (node_gossip.c). */
	uint64_t have_budget;
	uint64_t have_second;               /* monotonic s of the refill */

	/* Records the peer announced and did not send when asked, in the
	 * current minute (monotonic) (node_gossip.c). */
	unsigned undelivered;
	uint64_t undelivered_minute;

	/* The TCP connection that the link's last message came on (-1:
	 * unknown), its peer address when first seen, and the byte counts
	 * at that moment, for the reply bytes still queued towards it. */
	int fd;
	char fd_peer[NODE_ENDPOINT_MAX];
	uint64_t fd_bytes_out;
	uint64_t fd_bytes_acked;
	uint64_t chunk_reqs_dropped;

	/* Input limits. An inbound link's messages beyond its buckets are
	 * dropped, because all inbound links share the ROUTER socket. An
	 * outbound link's DEALER is not read until `paused_until`, so its
	 * messages wait in libzmq and TCP instead. */
	node_bucket msgs;
	node_bucket bytes;
	unsigned chunk_credit;              /* CHUNK replies to our requests
					     * still due, which are not
					     * charged */
	uint64_t paused_until;              /* monotonic ms; outbound only */
	uint64_t msgs_dropped;
	uint64_t pauses;
	uint64_t overrun_second;            /* last second that cost points */
	uint64_t overrun_log_until;         /* monotonic ms */

	/* Invalid input and overruns lower the score; at 0 the peer is
	 * banned, its connection closed, and the next tick drops the link.
	 * An outbound link ignores its peer until ban_until. */
	node_score score;
	bool banned;
	uint64_t ban_until;                 /* monotonic ms */

	/* Rejection log rate limit: lines in the current second. */
	uint64_t log_second;
	unsigned log_lines;
	uint64_t log_suppressed;
} node_link;

typedef struct node_media_job node_media_job;


/* An inbound TCP connection that the ROUTER's monitor reported. */
typedef struct node_conn {
	int fd;                             /* -1: a free slot */
	uint8_t source[CM_ADDR_SOURCE_LEN]; /* cm_addr_source */
	uint64_t deadline;                  /* monotonic ms; see
					     * node_conns_close_silent */
} node_conn;

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
	uint16_t listen_port;               /* TCP port of the ROUTER, sent
					     * in HELLO, 0 when unknown */
	char control_path[4096];
	int lock_fd;

	node_link links[NODE_LINKS_MAX];

	/* Known peers, exchange candidates and their counters. */
	node_peer_table peers;
	uint64_t next_dial_fill;            /* monotonic ms */
	uint64_t learned_dial_after;        /* monotonic ms; see
					     * CM_LEARNED_DIAL_DELAY_MS */
	uint64_t dial_monitors;             /* dial monitors opened, for
					     * unique inproc endpoints */

	/* Keys and addresses whose connections ZAP denies while banned. */
	node_bans bans;
	uint64_t ban_log_until;             /* end of the ban log interval */
	uint64_t bans_unlogged;             /* bans since its last line */
	/* Rejection log rate limit for peers with no link left: lines in
	 * the current second (node_reject_sender). */
	uint64_t unlinked_log_second;
	unsigned unlinked_log_lines;
	uint64_t unlinked_log_suppressed;

	/* Allow-list mode: only these keys (sorted) pass ZAP. */
	bool allow_only;
	uint8_t *allow;                     /* malloc'd */
	size_t n_allow;

	/* Input limits of every link, from the config or the defaults. */
	uint64_t peer_msgs;                 /* messages per second */
	uint64_t peer_bytes;                /* bytes per second */
	uint64_t msgs_dropped;              /* over all links */

	/* ZAP requests denied, by verdict, and the denial log limit. */
	uint64_t zap_denied[NODE_ZAP_VERDICTS];
	uint64_t zap_log_until;             /* monotonic ms */
	uint64_t zap_unlogged;

	/* Monitor of the ROUTER and the inbound TCP connections it reports
	 * (node_conn.c). */
	void *monitor;
	node_conn conns[CM_CONNECTIONS_MAX];
	size_t n_conns;
	uint64_t conns_refused;
	uint64_t conns_refused_source;      /* of those, over the limit per
					     * address */
	uint64_t conns_log_until;           /* end of the refusal log
					     * interval (monotonic ms) */
	uint64_t conns_unlogged;
	uint64_t conns_silent;              /* closed without a link */
	uint64_t conns_silent_log_until;    /* monotonic ms */
	uint64_t conns_silent_unlogged;
	uint64_t conns_next_check;          /* earliest deadline, mono ms */
	uint64_t chunk_reqs_dropped;
	uint64_t links_evicted;
	uint64_t table_full_log_until;      /* monotonic ms */

	/* Authors whose records this node wants; all when interest_all. */
	bool interest_all;
	uint8_t *interest;                  /* sorted keys, malloc'd */
	size_t n_interest;
	uint64_t next_interest;

	/* Ids requested by WANT and not received yet, direct-mapped by
	 * 64-bit prefix (node_gossip.c). `asked` is the link the id was
	 * last requested from (index + 1, 0: none, and key prefix); when it
	 * has not delivered by `until`, another link that announced the id
	 * is asked. `check` marks an entry whose outcome is not known yet. */
	struct node_want {
		uint64_t prefix;
		uint64_t until;                 /* monotonic ms */
		uint8_t id[PROTO_ID_LEN];
		uint64_t asked_key;
		uint16_t asked;
		uint8_t tries;                  /* links asked so far */
		bool check;
	} wants[NODE_WANTS];
	size_t wants_checking;              /* entries with `check` set */
	uint64_t wants_next_check;          /* monotonic ms */

	/* Rejections counted since the last flush to the store. */
	uint64_t rejected[CM_ERR_COUNT];

	/* Set while the store is full (map or disk): incoming records are
	 * dropped and counted until store_retry_at (monotonic ms), then one
	 * batch tries again. Reconciliation brings back what was dropped. */
	bool store_full;
	uint64_t store_retry_at;

	/* Scratch space for one RECORDS message (CM_WIRE_BATCH_MAX). */
	proto_signed *batch;
	/* Verifies the records of RECORDS messages (node_verifier.c). */
	struct node_verifier *verifier;
	/* Stores verified records in batches (node_record_writer.c). */
	struct node_record_writer *record_writer;

	/* Media transfers. */
	node_media_job *jobs;               /* CM_MEDIA_JOBS_MAX slots */
	struct node_media_scanner *media_scan; /* node_media_scan.c */
	uint64_t turns;                     /* poll loop turns, to vary which
					       peer socket is read first */
	uint8_t served_root[PROTO_HASH_LEN];
	uint8_t (*served_chunks)[PROTO_HASH_LEN];
	size_t served_n;
	uint64_t served_size;
	struct node_media_state *media;     /* write batch and policy
					     * state (node_media.c) */

	/* Traffic of inbound links that were closed, whose slots and
	 * counters are cleared (node_link_drop), for node_stats. */
	node_link_stats closed;
	uint64_t next_stats;                /* monotonic ms */
	bool hooks_started;                 /* cfg->on_start succeeded */
	/* The zmq_msg_t of the message being handled, NULL outside
	 * node_link_receive, so that a chunk can keep its bytes without a
	 * copy (node_media_writer_put). */
	void *rx_msg;

	/* Records that a peer sent and this node rejected, so that
	 * reconciliation with that peer does not ask for them again until
	 * `until` (node_sync.c). Direct-mapped by a hash of the peer's key
	 * and the id, keyed with a random salt so that no peer can aim at
	 * another peer's entries. */
	struct node_refused {
		uint64_t tag;               /* 0: free */
		uint64_t until;             /* monotonic ms */
	} refused[NODE_REFUSED];
	uint8_t refused_salt[16];
} node;

/* --- node_zap.c: the ZAP handler ---------------------------------------- */

/* Returns the stable name of a verdict for status and logs. */
const char *node_zap_verdict_name(node_zap_verdict v);

/*
 * Creates a REP socket in `ctx` and binds it as the ZAP handler
 * (inproc://zeromq.zap.01) into *zap. Fails with CM_ERR_ZMQ when the bind
 * fails, for instance because another handler is bound in the same
 * context. The node must then not start, because libzmq lets every CURVE
 * client in when no handler replies.
 */
cm_err node_zap_open(void *ctx, void **zap);

/* Decides on a CURVE client with `key` from address `ip`. */
node_zap_verdict node_zap_check(const node *n, const uint8_t key[NODE_KEY_LEN],
				const char *ip);

/* Reads one ZAP request from n->zap and replies to it. */
void node_zap_reply(node *n);

/* --- node.c ------------------------------------------------------------ */

/* Sets the message size limit, queue limits, linger and IPv6 support on
 * a socket. */
cm_err node_socket_defaults(void *sock);

/* Starts a zmq_socket_monitor of `events` on sock at inproc `endpoint`
 * and connects a new PAIR socket to it in *monitor, which the caller
 * closes (after zmq_socket_monitor(sock, NULL, 0) when sock stays open).
 * On failure *monitor may be set, and is to be closed the same way. */
cm_err node_monitor_open(void *ctx, void *sock, const char *endpoint,
			 int events, void **monitor);

/* Reads one queued event from the PAIR socket of a zmq_socket_monitor:
 * its event number and value (a descriptor for most events). Returns
 * false when none is queued. */
bool node_monitor_read(void *monitor, uint16_t *event, int32_t *value);

/* --- node_conn.c: inbound TCP connections ------------------------------ */

/* Empties the table of inbound connections. */
void node_conns_init(node *n);

/* Reads the queued events of the ROUTER's monitor, tracks the inbound
 * connections and shuts down the new ones over connections_max or the
 * descriptor limit. */
void node_conns_receive(node *n);

/* Shuts down each inbound connection that no inbound link has used for
 * handshake_ms + hello_timeout_ms, counts it in conns_silent and logs
 * it. Cheap when no deadline has passed. */
void node_conns_close_silent(node *n);

/* --- node_peer.c: links, handshake, liveness, sending ------------------ */

/* Adds a configured peer address to the known peers and dials it. Fails
 * on a bad address or a full table, and skips our own key. */
cm_err node_link_add_out(node *n, const char *addr);

/* Creates an outbound link to `key` at `endpoint` (tcp://HOST:PORT) and
 * dials it. `candidate` marks a learned address under verification.
 * CM_ERR_TOO_MANY when peers_max outbound links exist. */
cm_err node_link_open_out(node *n, const uint8_t key[NODE_KEY_LEN],
			  const char *endpoint, bool candidate,
			  node_link **out);

/* Closes an outbound link's DEALER and frees its slot. */
void node_link_remove_out(node *n, node_link *l);

/* Returns the number of outbound links. */
size_t node_links_out(const node *n);

/* Returns the outbound link to `key` in any state, except one that the
 * next tick removes, or NULL. */
node_link *node_link_out_find(node *n, const uint8_t key[NODE_KEY_LEN]);

/* Returns an established link of `key` other than `except` (NULL: any),
 * only an inbound one when `inbound`, or NULL. */
node_link *node_link_up(node *n, const uint8_t key[NODE_KEY_LEN],
			const node_link *except, bool inbound);

/* --- node_dial.c: dialling with backoff, known peers in the store ----- */

/* Opens the link's DEALER and connects it. The dial has
 * CM_DIAL_TIMEOUT_MS to bring the peer's HELLO. */
cm_err node_dial_open(node *n, node_link *l);

/* Starts a due dial and ends one that timed out. Returns false when the
 * link has no DEALER afterwards or was freed. */
bool node_dial_tick(node *n, node_link *l, uint64_t now);

/* Closes the DEALER of an outbound link and the monitor of its dial, if
 * any. */
void node_dial_close(node_link *l);

/* Records the first HELLO of an outbound link: the peer is verified. */
void node_dial_on_hello(node *n, node_link *l);

/* Reads the connection events of an outbound link. A TCP connect that
 * failed (refused or unreachable) or a connection closed before the
 * HELLO ends the dial as failed at once, because the DEALER does not
 * reconnect by itself. A connection closed after the HELLO drops the
 * link at once and schedules the next dial. */
void node_dial_on_event(node *n, node_link *l);

/* Closes the DEALER of an outbound link that went down and schedules
 * the next dial. */
void node_dial_link_down(node *n, node_link *l);

/* Loads the known peers kept in the store, after the configured ones. */
void node_known_load(node *n);

/* Gives links to known peers without one and to candidates, configured
 * peers first, while fewer than peers_max outbound links exist. */
void node_dial_fill(node *n);

/* Builds the "known_peers" list of the status JSON. */
struct json_t *node_known_json(node *n);

/* --- node_goodbye.c: GOODBYE on a clean stop ----------------------------- */

/* Sends GOODBYE to every established peer, then waits up to
 * CM_GOODBYE_WAIT_MS until each of those peers closed its connection,
 * which it does once it has read the GOODBYE. A peer whose send queue
 * is full is skipped. Called once, as the node stops. */
void node_goodbye_send_all(node *n);

/* Drops the link of a peer that sent GOODBYE, as if it had timed out.
 * A GOODBYE on an unestablished link is ignored. */
void node_goodbye_receive(node *n, node_link *l);

/* --- node_pex.c: peer exchange ------------------------------------------ */

/* Sends PEERS_REQ to an outbound link whose HELLO just arrived, and
 * again every CM_PEX_INTERVAL_MS. */
void node_pex_tick(node *n, node_link *l, uint64_t now);

/* Replies to PEERS_REQ with a PEERS of the known peers reached in the
 * last CM_PEX_SHARE_AGE_MS, at most once per CM_PEX_ANSWER_GAP_MS. */
void node_pex_on_request(node *n, node_link *l);

/* Takes the addresses of a PEERS message that replies to our PEERS_REQ
 * as candidates. A PEERS message that was not requested is ignored. */
void node_pex_on_peers(node *n, node_link *l, const proto_wire_msg *m);

/* Takes the listen port that the first HELLO of inbound link l
 * announced (0: none). With the connection's IP address it becomes a
 * candidate to verify (node_dial.c). When the peer is known at that
 * address already, its last HELLO time is renewed, so that PEERS keeps
 * sharing it while it keeps connecting. */
void node_pex_on_announce(node *n, node_link *l, uint16_t port);

/* Builds the "peer_exchange" object of the status JSON. */
struct json_t *node_pex_json(const node *n);

/* Returns the inbound link of `routing_id`, creating it for `key` when
 * new; NULL when the table is full, or when the key or address is banned
 * or the address has CM_PEER_LINKS_PER_IP links, in which cases the
 * connection under descriptor `fd` (-1: unknown) is closed. */
node_link *node_link_in(node *n, const uint8_t *routing_id, size_t len,
			const uint8_t key[NODE_KEY_LEN], const char *peer_ip,
			int fd);

/* Copies IP address `ip` (NULL: none) into out, writing an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d), as libzmq reports IPv4 peers on a
 * dual-stack socket, as plain IPv4, so that one host has one form. */
void node_ip_normalize(const char *ip, char out[NODE_IP_MAX]);

/* Counts the inbound links from address `ip` that received something in
 * the last two ping intervals, leaving out those of `key` (NULL: none),
 * which a new connection of that key replaces. */
size_t node_links_from_ip(const node *n, const char *ip, const uint8_t *key);

/* Closes the link's TCP connection, unless its descriptor now belongs to
 * another connection (libzmq closed the old one and reused the number). */
void node_link_close_connection(node_link *l);

/* Sends a message to a link and takes `buf`, a malloc'd buffer, in every
 * case: ZeroMQ sends it without a copy and frees it once sent. Returns
 * CM_ERR_TIMEOUT when the queue towards the peer is full (the message is
 * dropped; catch-up delivers it later). */
cm_err node_link_send(node *n, node_link *l, uint8_t *buf, size_t len);

/* Sends the message `msg` (a zmq_msg_t) to a link as node_link_send,
 * and closes it in every case. */
cm_err node_link_send_msg(node *n, node_link *l, void *msg);

/* Handles one message that arrived on a link. */
void node_link_receive(node *n, node_link *l, const uint8_t *buf,
		       size_t len);

/* Sends pings and HELLOs, detects silent peers, runs catch-up pages. */
void node_links_tick(node *n);

/* True when the outbound link `l` waits for its connection to send its
 * first HELLO, so that the loop should wake as soon as it can send. */
bool node_link_hello_waits(const node_link *l, uint64_t now_ms);

/* Sends the first HELLO of an outbound link whose connection just came
 * up, instead of at the next retry. */
void node_link_writable(node *n, node_link *l);

/* Announces our interest again to every established peer. */
void node_links_rehello(node *n);

/* True when records by `author` may be sent to the link's peer. */
bool node_link_wants(const node_link *l, const uint8_t author[PROTO_KEY_LEN]);

/* True when `l` is the one link used to send to its peer's key, so that
 * two links to the same node never both carry a record. */
bool node_link_is_primary(const node *n, const node_link *l);

/* Frees a link's buffers; clears the slot when it is inbound. */
void node_link_drop(node *n, node_link *l, const char *reason);

/* Forgets what the link's connection brought (its interest, sync and
 * media state, queued records), logs the disconnection with `reason`,
 * and leaves the link unestablished with its socket open. */
void node_link_forget(node *n, node_link *l, const char *reason);

/* Closes the connection of an inbound link whose peer sent GOODBYE and
 * frees its buffers as node_link_drop does, but keeps the slot until the
 * liveness timeout. A new connection of the same key then takes over the
 * score, as it does from a link that is still up. */
void node_link_depart(node *n, node_link *l);

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

/* Adds one to eventfd `fd`, which a writer thread (`who`) uses to wake
 * the poll loop; a failure is logged. */
void node_event_signal(int fd, const char *who);

/* Resets eventfd `fd` to zero; a failure is logged. */
void node_event_drain(int fd, const char *who);

/* --- node_clock.c: peers' clock offsets -------------------------------- */

/* Returns the offset of a peer's clock that read peer_ms when it sent a
 * message that arrived at our wall-clock time our_ms, given the round
 * trip rtt_ms (0: unknown). Bounded to +-INT64_MAX / 2. */
int64_t node_clock_offset(uint64_t peer_ms, uint64_t our_ms,
			  uint64_t rtt_ms);

/* Adds one offset sample taken at monotonic mono_ms. The offset becomes
 * the largest sample of the current and the previous CM_CLOCK_WINDOW_MS
 * window. */
void node_clock_add_sample(node_clock *c, int64_t sample, uint64_t mono_ms);

/* Returns our wall clock in ms with the test_clock_offset setting added:
 * the time this node sends in HELLO and PING and reads peers' against. */
uint64_t node_clock_now(const node *n);

/* Notes that a HELLO was queued at monotonic mono_ms; one that asks for
 * a reply starts a round trip measurement. */
void node_clock_hello_sent(node_link *l, bool reply, uint64_t mono_ms);

/* Updates the link's clock from an accepted HELLO, resetting what an
 * earlier connection measured unless the link was established. */
void node_clock_on_hello(node *n, node_link *l, const proto_wire_msg *m,
			 bool was_established);

void node_clock_on_ping(node *n, node_link *l, const proto_wire_msg *m);

/* --- node_guard.c: input limits, scores, rejections, bans ------------- */

/*
 * Charges one message of `len` bytes to the link's buckets. Returns false
 * when an inbound link is over its limit: the message is to be dropped.
 * An outbound link is charged into debt and paused instead (see
 * node_link_paused). Either costs score points once a second.
 */
bool node_link_admit(node *n, node_link *l, const uint8_t *buf, size_t len);

/* True while an outbound link's DEALER is not to be read; *wake_ms is
 * lowered to the monotonic time when that ends. */
bool node_link_paused(const node_link *l, uint64_t now_ms,
		      uint64_t *wake_ms);

/* Notes a message that was queued to the link: a CHUNK_REQ gives the
 * peer credit for one CHUNK that is not charged to its buckets. */
void node_link_sent(node_link *l, const uint8_t *buf, size_t len);

/* Logs how many rejection lines of a link were suppressed, once `second`
 * (monotonic seconds) differs from the one they were counted in. */
void node_reject_log_flush(node_link *l, uint64_t second);

/*
 * Counts and logs one rejected input (`what`: "record", "message", ...)
 * from link `l` (NULL: local), at most a few lines per second per link.
 * The log line carries cm_err_detail(). id may be NULL. Malformed or
 * badly signed input lowers the link's score and may ban its peer.
 */
void node_reject(node *n, node_link *l, const char *what, cm_err reason,
		 const uint8_t *id);

/*
 * Rejects input as node_reject does, for input that waited in a queue:
 * key (NULL for local input) is the sender's node key, kept with the
 * queued work. When l is NULL because the link dropped, a link of the
 * same key takes the score penalty, and with none left the log line
 * names the key. Returns true when that link is banned, also when this
 * rejection banned it.
 */
bool node_reject_sender(node *n, node_link *l, const uint8_t *key,
			const char *what, cm_err reason, const uint8_t *id);

/* True while `key` is banned. */
bool node_is_banned(const node *n, const uint8_t key[NODE_KEY_LEN]);

/* Sets up bans, the allow-list and the input limits from the config. */
cm_err node_peer_limits_init(node *n);

/* Writes the pending rejection counters to the store. */
void node_flush_rejected(node *n);

/* --- node_ingest.c: records in, push out ------------------------------- */

/* Refreshes the authors we want (identities and follows) every
 * CM_PING_INTERVAL_MS; re-announces them when they changed. */
void node_interest_refresh(node *n, bool force);

bool node_wants(const node *n, const uint8_t author[PROTO_KEY_LEN]);

/* Opens and filters the records of one RECORDS message and queues them
 * for the record writer; node_ingest_collect handles them once stored. */
void node_ingest(node *n, node_link *from, const proto_wire_msg *m);

/* Starts the record writer thread. */
cm_err node_ingest_start(node *n);

/* Stores the records still queued and stops the record writer. */
void node_ingest_stop(node *n);

/* Returns the descriptor that becomes readable when the record writer
 * finished a write transaction. */
int node_ingest_wake_fd(const node *n);

/* Returns the descriptor that becomes readable when the verify threads
 * finished a message. */
int node_ingest_verify_fd(const node *n);

/* True while the verify threads have a full queue. The node loop then
 * reads no peer socket until they finished a message, because each
 * RECORDS read would wait for them, and a burst of such reads kept
 * control requests waiting for about 230 ms each during a catch-up. */
bool node_ingest_full(const node *n);

/* Queues the records of verified messages for the record writer, then
 * counts, logs and pushes on the records whose transaction ended. */
void node_ingest_collect(node *n);

/* Forgets link l as the source of records still queued. */
void node_ingest_on_link_down(node *n, node_link *l);

/* Drops the messages of node key `key` still waiting to be verified,
 * because the key was just banned, and counts their records as rejected
 * (peer_banned). Records already verified and queued for the store are
 * kept. Returns the number of records dropped. */
size_t node_ingest_drop_key(node *n, const uint8_t key[NODE_KEY_LEN]);

/* Stores the queued records first when some came from link l, so that a
 * peer that sends records and then requests them gets them back. */
void node_ingest_flush_link(node *n, node_link *l);

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

/* Notes that the peer of link l sent record `id` and that this node
 * rejected it for `reason`, so that reconciliation does not request it
 * from that peer again for CM_RECON_REFUSED_MS. Reasons that do not
 * come from the record itself (no memory, a full store) are ignored. */
void node_sync_refused(node *n, const node_link *l,
		       const uint8_t id[PROTO_ID_LEN], cm_err reason);

/* --- node_gossip.c: announce-then-fetch gossip ------------------------- */

/* Announces freshly stored records (HAVE) to every peer but `from` that
 * wants them and is not known to hold them. */
void node_gossip_push(node *n, node_link *from, const proto_signed *recs,
		      size_t count);

/* Answers a HAVE with one WANT of the ids this node lacks and has not
 * requested from another peer in the last CM_GOSSIP_WANT_MS, looking up
 * at most the peer's share of CM_GOSSIP_HAVE_RATE ids a second. */
void node_gossip_on_have(node *n, node_link *l, const proto_wire_msg *m);

/* Ends the request for record id, which a peer sent, whether or not the
 * node keeps it: a creator node drops records of authors it does not
 * follow, and their peer must not count as one that does not deliver. */
void node_gossip_received(node *n, const uint8_t id[PROTO_ID_LEN]);

/* Checks the requests older than CM_GOSSIP_WANT_MS: counts each one not
 * delivered against the peer asked, and requests the id from another
 * peer that announced it. */
void node_gossip_tick(node *n);

/* Notes that the peer of l has record id, so it is not announced to
 * it. */
void node_gossip_note_known(node_link *l, const uint8_t id[PROTO_ID_LEN]);

/* --- node_media.c: media fetch and serving ----------------------------- */

cm_err node_media_init(node *n);
void node_media_free(node *n);

/* Queues fetches for the media of a stored clip that we lack. */
void node_media_want(node *n, node_link *from, const proto_signed *rec);

void node_media_tick(node *n);

/* Notes that a peer's link came up and requests a media scan. The new
 * peer may have media that failed so far, so the failed fetches and the
 * media in a fetch backoff try again, at most once per sync_interval and
 * not in the first one after start. */
void node_media_peer_up(node *n);

/* True when fetch slot i (< CM_MEDIA_JOBS_MAX) contains a job. */
bool node_media_job_active(const node *n, size_t i);
void node_media_on_link_down(node *n, node_link *l);
void node_media_on_message(node *n, node_link *l, const proto_wire_msg *m);

/* Returns the descriptor that becomes readable when the chunk writer
 * finished a write transaction; node_media_tick collects the results. */
int node_media_wake_fd(const node *n);

/* Answers a MANIFEST_REQ or CHUNK_REQ from a peer (node_media_serve.c). */
void node_media_serve(node *n, node_link *l, const proto_wire_msg *m);

/*
 * Builds the "transfers" list of the status JSON: one object per running
 * fetch with root, chunks_done, chunks_total, bytes_done, size, rate
 * (bytes per second since the job started) and peers (per peer: peer,
 * chunks, in_flight, timeout_ms of its chunk requests, state). Returns a new jansson array (the caller owns
 * the reference), or NULL when out of memory.
 */
struct json_t *node_media_transfers_json(const node *n);

/* The parts of the fetch that the media scan uses. */
/* True while a fetch of root runs. */
bool node_media_fetching(node *n, const uint8_t root[PROTO_HASH_LEN]);
/* Starts a fetch of root unless one runs or, without `retry`, its
 * backoff lasts. With `evict` a stuck fetch may make room. False when no
 * slot is free. */
bool node_media_fetch_add(node *n, const uint8_t root[PROTO_HASH_LEN],
			  uint64_t size, node_link *first, bool evict,
			  bool retry);
/* True when a fetch slot is free. */
bool node_media_slot_free(const node *n);
/* True when the node's media policy covers clips by `author`. */
bool node_media_covers(const node *n, const uint8_t author[PROTO_KEY_LEN]);
/* True when the clip's media fits the size limit; logs a clip over it
 * once per run. */
bool node_media_clip_fits(node *n, const uint8_t id[PROTO_ID_LEN],
			  const proto_record *rec);

/* --- node_media_scan.c: the walk of the store for media to fetch ------- */

typedef struct node_media_scanner node_media_scanner;

/* Allocates an idle scanner. node_media_scanner_free frees it, takes
 * NULL and clears the pointer. */
cm_err node_media_scanner_new(const node *n, node_media_scanner **out);
void node_media_scanner_free(node_media_scanner **scan);

/* Starts a walk of the store for clips with incomplete media (at most
 * every sync_interval unless forced). node_media_tick walks on in slices
 * of a few milliseconds. */
void node_media_scan(node *n, bool force);

/* Requests another scan, because media did not fit or a fetch gave up. */
void node_media_rescan(node *n);

/* Makes the next scan queue media whose fetch backoff still runs, unless
 * that happened less than sync_interval ago or the node started less
 * than sync_interval ago. True when it did. */
bool node_media_scan_retry(node *n);

/* Notes that a fetch backoff ends `wait` ms from now, so that a scan
 * runs then. */
void node_media_retry_due_at(node *n, uint64_t wait);

/* Walks on with a running scan, or starts one that is due (called by
 * node_media_tick). */
void node_media_scan_tick(node *n);

/* True while a media scan runs, so that the node loop polls without
 * waiting between its slices. */
bool node_media_busy(const node *n);

/* Media scans for status: those done, the records the last one visited,
 * and whether one runs. */
struct json_t *node_media_scans_json(const node *n);

/* --- node_media_rto.c: per-peer chunk request timeouts ----------------- */

/* Returns the time after which a chunk request to the peer of r times
 * out, in ms, between CM_CHUNK_TIMEOUT_MIN_MS and CM_CHUNK_TIMEOUT_MAX_MS. */
uint64_t node_rto_timeout(const node_rto *r);

/* Adds the response time of one chunk request, in ms, and derives the
 * timeout from the smoothed time and deviation. Only requests sent once
 * may be sampled, because the response to a repeated request may belong
 * to the earlier one. */
void node_rto_sample(node_rto *r, uint64_t response_ms);

/* Doubles the timeout, up to CM_CHUNK_TIMEOUT_MAX_MS, after a request to
 * the peer timed out; the next sample sets it from the measurements
 * again. */
void node_rto_backoff(node_rto *r);

/* --- node_media_writer.c: the threads that check and store chunks ------ */

typedef struct node_media_writer node_media_writer;

/* Outcome of storing one chunk. */
typedef enum node_write_result {
	NODE_WRITE_STORED,
	NODE_WRITE_FAILED,   /* the transaction failed: fetch it again */
	NODE_WRITE_UNLISTED, /* no stored manifest lists it any more, because
			      * its media was freed: not stored */
	NODE_WRITE_BAD,      /* its BLAKE2b hash differs from the expected
			      * one: not stored */
} node_write_result;

/* Called by node_media_writer_collect for each chunk whose check ended
 * and, for a valid chunk, whose write transaction ended. `hash` is the
 * expected hash and `peer` the key of the peer that sent the chunk, as
 * given to node_media_writer_put. */
typedef void (*node_media_settle_fn)(void *ctx,
				     const uint8_t root[PROTO_HASH_LEN],
				     uint64_t index,
				     const uint8_t hash[PROTO_HASH_LEN],
				     const uint8_t peer[NODE_KEY_LEN],
				     node_write_result result);

/* Starts the hasher and writer threads, which store to `st` until
 * node_media_writer_stop. */
cm_err node_media_writer_start(store *st, node_media_writer **out);

/* Queues the fetch backoff of `root` (store_media_backoff_set) for the
 * writer thread, which stores it before it stops. A queued entry of the
 * same root is replaced. False when the queue is full, the writer is
 * stopping or w is NULL, and then the caller stores it. */
bool node_media_writer_backoff(node_media_writer *w,
			       const uint8_t root[PROTO_HASH_LEN],
			       uint64_t until_ms, uint32_t failures);

/* Sets *until_ms and *failures from the queued backoff of root. False
 * when none is queued, and then the store has the current value. */
bool node_media_writer_backoff_get(node_media_writer *w,
				   const uint8_t root[PROTO_HASH_LEN],
				   uint64_t *until_ms, uint32_t *failures);

/* Checks and stores the chunks still queued, ends the threads and frees
 * *w; NULL is fine, and *w is NULL afterwards. */
void node_media_writer_stop(node_media_writer **w);

/* Returns the eventfd that is readable once results wait to be
 * collected. */
int node_media_writer_fd(const node_media_writer *w);

/* Returns the slots that node_media_writer_put can fill now. */
size_t node_media_writer_free(const node_media_writer *w);

/* Returns the chunks queued or being written and not yet collected. */
size_t node_media_writer_pending(const node_media_writer *w);

/* Queues a received chunk in a free slot. The hasher thread compares its
 * BLAKE2b hash with `hash`, and only a chunk that matches is stored,
 * under that hash. data lies inside message rx_msg (a zmq_msg_t). The
 * slot keeps a reference to rx_msg until the chunk is collected, so the
 * bytes are not copied. Without rx_msg they are copied. `peer`, the key
 * of the sender, is handed back to the settle function. False when no
 * slot is free, len is over CM_CHUNK_SIZE, or data is outside rx_msg.
 * Node thread only. */
bool node_media_writer_put(node_media_writer *w,
			   const uint8_t root[PROTO_HASH_LEN], uint64_t index,
			   const uint8_t hash[PROTO_HASH_LEN],
			   const uint8_t peer[NODE_KEY_LEN], void *rx_msg,
			   const uint8_t *data, size_t len);

/* Calls settle for each chunk that was checked and, when valid, stored
 * since the last call, in the order they were queued, and frees their
 * slots. Returns their count. Node thread only. */
size_t node_media_writer_collect(node_media_writer *w,
				 node_media_settle_fn settle, void *ctx);

/* --- node_record_writer.c: the thread that stores verified records --- */

typedef struct node_record_writer node_record_writer;

/*
 * Called by node_record_writer_collect for the records of each message
 * once their write transaction ended, in the order they were queued.
 * `from` is the link they came from, NULL when it dropped since, and key
 * the sender's node key (NODE_KEY_LEN bytes), NULL only for records
 * queued without a link. err is the transaction's error with its detail;
 * when it is CM_OK, results[i] is the outcome of recs[i]
 * (store_put_batch). The callback may reorder both arrays; they are
 * valid until it returns.
 */
typedef void (*node_record_settle_fn)(void *ctx, node_link *from,
				      const uint8_t *key, proto_signed *recs,
				      cm_err *results,
				      size_t count, cm_err err,
				      const char *detail);

/* Starts the writer thread, which writes to `st` until
 * node_record_writer_stop. */
cm_err node_record_writer_start(store *st, node_record_writer **out);

/* Stores the records still queued, ends the thread and frees *w without
 * collecting them; NULL is fine, and *w is NULL afterwards. */
void node_record_writer_stop(node_record_writer **w);

/* Returns the eventfd that is readable once results wait to be
 * collected. */
int node_record_writer_fd(const node_record_writer *w);

/* Returns the number of records queued and not yet collected. Node
 * thread only. */
size_t node_record_writer_queued(const node_record_writer *w);

/*
 * Queues `count` (at most CM_WIRE_BATCH_MAX) verified records of one
 * message from link `from` for the writer. Their wire bytes lie inside
 * message rx_msg (a zmq_msg_t), which is kept by reference until the
 * records are collected; without rx_msg they are copied. When every
 * batch of the queue is full, waits for the writer and collects with
 * `settle` first. Fails only when out of memory. Node thread only.
 */
cm_err node_record_writer_put(node_record_writer *w, node_link *from,
			      void *rx_msg, const proto_signed *recs,
			      size_t count, node_record_settle_fn settle,
			      void *ctx);

/* Calls settle for the records of each message whose transaction ended
 * since the last call and releases them. Returns the number of records.
 * Node thread only. */
size_t node_record_writer_collect(node_record_writer *w,
				  node_record_settle_fn settle, void *ctx);

/* Stores and collects every queued record when any of them came from
 * `from`, waiting for the writer. Node thread only. */
void node_record_writer_flush(node_record_writer *w, const node_link *from,
			      node_record_settle_fn settle, void *ctx);

/* Clears the link of queued records that came from `from`, which is
 * being dropped. Node thread only. */
void node_record_writer_forget(node_record_writer *w, const node_link *from);

/* --- node_verifier.c: the threads that verify records from peers ------ */

typedef struct node_verifier node_verifier;

/*
 * Called by the node thread for each queued message once every record is
 * opened, in the order the messages arrived. wires[i] (lens[i] bytes)
 * lies inside msg (a zmq_msg_t); results[i] is the verdict of
 * proto_record_open and out[i] the opened record when it is CM_OK. from
 * is NULL when the link dropped since, but key is the sender's node key
 * (NODE_KEY_LEN bytes) until the message is handed on, and NULL only for
 * a message queued without a link. The callback may reorder out; the
 * arrays are valid until it returns.
 */
typedef void (*node_verified_fn)(void *ctx, node_link *from,
				 const uint8_t *key, void *msg,
				 const uint8_t *const *wires,
				 const size_t *lens, proto_signed *out,
				 const proto_open_result *results,
				 size_t count);

/* Starts one verify thread per online processor. */
cm_err node_verifier_start(node_verifier **out);

/* Ends the threads and frees *v, dropping messages not yet collected;
 * NULL is fine, and *v is NULL afterwards. */
void node_verifier_stop(node_verifier **v);

/* Returns the eventfd that is readable once a message is verified. */
int node_verifier_fd(const node_verifier *v);

/* Returns the number of records queued and not yet collected. Node
 * thread only. */
size_t node_verifier_queued(node_verifier *v);

/* True when CM_VERIFY_MESSAGES messages are queued, so that the next
 * node_verifier_put would wait. Node thread only. */
bool node_verifier_full(const node_verifier *v);

/*
 * Queues the records of message m from link `from` to be opened at
 * now_ms. Their wire bytes must lie inside rx_msg (a zmq_msg_t), which is
 * kept by reference. When CM_VERIFY_MESSAGES messages are queued, waits
 * for the oldest and hands it to `done` first. Fails only when out of
 * memory or when a record lies outside rx_msg. Node thread only.
 */
cm_err node_verifier_put(node_verifier *v, node_link *from, void *rx_msg,
			 const proto_wire_msg *m, uint64_t now_ms,
			 node_verified_fn done, void *ctx);

/* Hands each verified message to `done`, oldest first, up to the first
 * one still being verified. Returns the number of records. Node thread
 * only. */
size_t node_verifier_collect(node_verifier *v, node_verified_fn done,
			     void *ctx);

/* Waits for and hands on every queued message up to the last one from
 * link `from`. Node thread only. */
void node_verifier_flush(node_verifier *v, const node_link *from,
			 node_verified_fn done, void *ctx);

/* Clears the link of queued messages that came from `from`, which is
 * being dropped. Node thread only. */
void node_verifier_forget(node_verifier *v, const node_link *from);

/*
 * Drops the queued messages whose sender has node key `key`, because the
 * key was banned: their records are not handed to `done`, and those no
 * thread took yet are not opened. The message being handed to `done`
 * when this is called is not dropped. Returns the number of records
 * dropped. Node thread only.
 */
size_t node_verifier_drop(node_verifier *v, const uint8_t key[NODE_KEY_LEN]);

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

/* --- node_stats.c ------------------------------------------------------ */

/* Publishes the node's counters for node_stats_snapshot, at most every
 * NODE_STATS_INTERVAL_MS unless forced. */
void node_stats_publish(node *n, bool force);

/* Withdraws the snapshot when the node stops. */
void node_stats_withdraw(void);

/* Adds the counters of `from` into `to`. */
void node_link_stats_add(node_link_stats *to, const node_link_stats *from);

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
