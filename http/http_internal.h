/*
 * http_internal.h - state shared by the files of the HTTP API.
 *
 * libmicrohttpd runs one thread per connection, because a stream blocks
 * its thread while it waits for records. Every handler runs on such a
 * thread and reads the store through the node's handle, which is opened
 * with MDB_NOTLS so that any thread may run read transactions.
 */
#ifndef HTTP_INTERNAL_H
#define HTTP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "cm_error.h"
#include "http.h"
#include "proto_record.h"
#include "store.h"

#define HTTP_LOG "http"

/* Routes, for metrics and the access log. */
typedef enum http_route {
	HTTP_ROUTE_CLIPS,
	HTTP_ROUTE_CLIP,
	HTTP_ROUTE_RAW,
	HTTP_ROUTE_CREATOR,
	HTTP_ROUTE_MEDIA,
	HTTP_ROUTE_STREAM,
	HTTP_ROUTE_HEALTH,
	HTTP_ROUTE_METRICS,
	HTTP_ROUTE_STATIC,
	HTTP_ROUTE_OTHER,
	HTTP_ROUTE_COUNT
} http_route;

/* Status codes counted per route; others count as the last slot. */
#define HTTP_STATUS_LIST(X) \
	X(200) X(206) X(304) X(400) X(404) X(405) X(410) X(416) X(429) \
	X(500) X(503)
#define HTTP_STATUS_SLOTS 12

typedef struct http_limiter http_limiter;

/* The open connections and the time by which each must deliver its
 * next whole request (http_deadline.c). */
typedef struct http_deadline http_deadline;

/* The chunks that media responses found intact in this run
 * (http_media.c). */
typedef struct http_checked http_checked;

/* Allocates an empty set of checked chunks. */
cm_err http_checked_new(http_checked **out);

/* Frees the set and sets *c to NULL. Accepts NULL. */
void http_checked_free(http_checked **c);

struct http_server {
	store *st;
	struct MHD_Daemon *daemon;
	http_limiter *limiter;
	http_checked *checked;
	http_deadline *deadline;
	atomic_bool stopping;
	atomic_uint streams;                /* open event streams */
	atomic_uint_fast64_t requests[HTTP_ROUTE_COUNT][HTTP_STATUS_SLOTS];
};

/* One request, from its first callback to its completion. */
typedef struct http_request {
	http_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	char method_shown[20];              /* for the log, cut to fit */
	char path[256];                     /* for the log, cut to fit */
	http_route route;
	uint64_t started_ms;                /* monotonic */
	char client[64];                    /* client IP address */
	unsigned status;
	atomic_uint_fast64_t bytes;         /* body bytes handed to MHD */
	bool head;                          /* HEAD: headers only */
	bool started;                       /* on_request saw the headers */
	bool nul_in_path;                   /* the raw path contains %00 */
} http_request;

/*
 * A route handler: reads the request, sets *resp to a new response and
 * returns its status code. `tail` is the part of the path after the
 * route's prefix.
 */
typedef unsigned (*http_handler)(http_request *req, const char *tail,
				 struct MHD_Response **resp);

/* --- http_server.c: responses ------------------------------------------ */

/* Makes a JSON response from `body` (reference stolen). */
unsigned http_reply_json(http_request *req, unsigned status, json_t *body,
			 struct MHD_Response **resp);

/* Makes a JSON error response {"error": message} plus the fields of
 * `extra` (reference stolen; may be NULL). */
unsigned http_reply_error(http_request *req, unsigned status, json_t *extra,
			  struct MHD_Response **resp, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Makes a 500 response for a store failure and logs it with the detail. */
unsigned http_reply_store_error(http_request *req, cm_err err,
				struct MHD_Response **resp);

/* True when the If-None-Match header value `list` names the quoted
 * `etag`, or is "*". Weak comparison, as RFC 9110 requires for
 * If-None-Match. */
bool http_etag_matches(const char *list, const char *etag);

/* --- http_params.c: query parameters ----------------------------------- */

#define HTTP_PARAMS_MAX 8

/* The query parameters a route accepts, and their values once read. */
typedef struct http_params {
	const char *const *names;           /* NULL-terminated */
	const char *values[HTTP_PARAMS_MAX];
	char error[200];                    /* why they were rejected */
} http_params;

/* Reads the query parameters into p->values (NULL when absent). False,
 * with p->error set, on an unknown, repeated or empty parameter. */
bool http_params_read(http_request *req, http_params *p);

/* Returns the value of parameter `name`, or NULL. */
const char *http_param(const http_params *p, const char *name);

/* --- http_limit.c: per-client token buckets ---------------------------- */

cm_err http_limiter_new(unsigned rate, unsigned burst, http_limiter **out);
void http_limiter_free(http_limiter **l);

/* Takes one token for the client at `addr`; false when its bucket is
 * empty, and then *retry_after_s receives the seconds until one is back. */
bool http_limiter_take(http_limiter *l, const struct sockaddr *addr,
		       unsigned *retry_after_s);

/* --- http_deadline.c: time limit for receiving a request -------------- */

/* Allocates the connection list and starts the thread that closes
 * connections past their deadline. */
cm_err http_deadline_new(http_deadline **out);

/* Stops the thread and frees the list. Call it after MHD_stop_daemon.
 * Sets *d to NULL and accepts NULL. */
void http_deadline_free(http_deadline **d);

/* The MHD_OPTION_NOTIFY_CONNECTION callback (cls: the http_deadline).
 * Starts the deadline of a new connection and removes a closed one. */
void http_deadline_on_connection(void *cls, struct MHD_Connection *conn,
				 void **socket_context,
				 enum MHD_ConnectionNotificationCode toe);

/* Clears the deadline of conn, whose whole request has arrived. */
void http_deadline_request_in(http_deadline *d, struct MHD_Connection *conn);

/* Starts the deadline of conn again for its next request. */
void http_deadline_response_done(http_deadline *d,
				 struct MHD_Connection *conn);

/* Returns the number of connections closed past their deadline. */
uint64_t http_deadline_closed(http_deadline *d);

/* --- http_query.c: records and creators -------------------------------- */

unsigned http_clips(http_request *req, const char *tail,
		    struct MHD_Response **resp);
unsigned http_clip(http_request *req, const char *tail,
		   struct MHD_Response **resp);
unsigned http_record_raw(http_request *req, const char *tail,
			 struct MHD_Response **resp);
unsigned http_creator(http_request *req, const char *tail,
		      struct MHD_Response **resp);

/* --- http_record.c: JSON of stored records ----------------------------- */

/* Remembered display names of a page's authors, so that one page reads
 * each author's profile once. */
#define HTTP_NAMES_CACHED 16
typedef struct http_names {
	uint8_t keys[HTTP_NAMES_CACHED][PROTO_KEY_LEN];
	json_t *names[HTTP_NAMES_CACHED];   /* string or null, owned */
	size_t n;
} http_names;

void http_names_free(http_names *names);

/*
 * Returns the JSON of a stored record as `clipmesh feed --json` prints it
 * (proto_record_json), and for a clip also author_name (the profile's
 * display name or null) and per media item its url and whether it is
 * complete in the store. names may be NULL. NULL when out of memory.
 */
json_t *http_record_json(store *st, const proto_signed *rec,
			 http_names *names);

/* Decodes a stored record and checks that its body hashes to `id`, the
 * key it is stored under (NULL: no key to check). CM_ERR_STORE when it
 * does not decode or its body changed on disk. */
cm_err http_record_decode(const uint8_t *wire, size_t len,
			  const uint8_t id[PROTO_ID_LEN], proto_signed *out);

/* --- http_media.c, http_stream.c, http_metrics.c, http_static.c -------- */

unsigned http_media(http_request *req, const char *tail,
		    struct MHD_Response **resp);
unsigned http_stream(http_request *req, const char *tail,
		     struct MHD_Response **resp);
unsigned http_health(http_request *req, const char *tail,
		     struct MHD_Response **resp);
unsigned http_metrics(http_request *req, const char *tail,
		      struct MHD_Response **resp);
/* Serves the embedded files of http/web ("/" is index.html); false when
 * `path` names none. */
bool http_static(http_request *req, const char *path,
		 struct MHD_Response **resp, unsigned *status);

/* Counts a finished request for /metrics. */
void http_metrics_count(http_server *srv, http_route route, unsigned status);

#endif
