/*
 * http_metrics.c - GET /healthz and GET /metrics (Prometheus text format
 * 0.0.4). Store figures are read from the store; the node's counters come
 * from the snapshot its thread publishes (node_stats_snapshot), never
 * from its live state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "http_internal.h"
#include "node.h"

static const char *const route_names[HTTP_ROUTE_COUNT] = {
	[HTTP_ROUTE_CLIPS] = "clips",     [HTTP_ROUTE_CLIP] = "clip",
	[HTTP_ROUTE_RAW] = "record_raw",  [HTTP_ROUTE_CREATOR] = "creator",
	[HTTP_ROUTE_MEDIA] = "media",     [HTTP_ROUTE_STREAM] = "stream",
	[HTTP_ROUTE_HEALTH] = "healthz",  [HTTP_ROUTE_METRICS] = "metrics",
	[HTTP_ROUTE_STATIC] = "static",   [HTTP_ROUTE_OTHER] = "other",
};

#define STATUS_VALUE(code) code,
static const unsigned status_codes[] = {HTTP_STATUS_LIST(STATUS_VALUE)};
#define STATUS_KNOWN (sizeof(status_codes) / sizeof(status_codes[0]))

_Static_assert(STATUS_KNOWN < HTTP_STATUS_SLOTS,
	       "HTTP_STATUS_SLOTS needs a slot for other codes");

void http_metrics_count(http_server *srv, http_route route, unsigned status)
{
	size_t slot = STATUS_KNOWN;

	for (size_t i = 0; i < STATUS_KNOWN; i++)
		if (status_codes[i] == status)
			slot = i;
	atomic_fetch_add(&srv->requests[route][slot], 1);
}

/* --- GET /healthz ----------------------------------------------------- */

unsigned http_health(http_request *req, const char *tail,
		     struct MHD_Response **resp)
{
	static const char *const names[] = {NULL};
	http_params p = {.names = names};
	store_counts counts;
	node_stats stats;
	uint64_t head = 0;
	cm_err err;

	(void)tail;
	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	cm_err_clear();
	err = store_get_counts(req->srv->st, &counts);
	if (!err)
		err = store_log_head(req->srv->st, &head);
	if (err)
		return http_reply_error(
			req, MHD_HTTP_SERVICE_UNAVAILABLE,
			json_pack("{s:s}", "status", "error"), resp,
			"reading the store failed: %s (%s); see the mirror's "
			"log and run 'clipmesh store check'",
			cm_err_name(err), cm_err_detail());
	return http_reply_json(
		req, MHD_HTTP_OK,
		json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "status", "ok",
			  "clips", (json_int_t)counts.clips, "retractions",
			  (json_int_t)counts.retractions, "profiles",
			  (json_int_t)counts.profiles, "log_head",
			  (json_int_t)head, "node",
			  node_stats_snapshot(&stats) == CM_OK),
		resp);
}

/* --- GET /metrics ----------------------------------------------------- */

typedef struct text {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;
} text;

static void put(text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (t->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		char *grown = realloc(t->buf, 2 * t->cap + (size_t)n);

		if (grown == NULL) {
			t->failed = true;
			return;
		}
		t->buf = grown;
		t->cap = 2 * t->cap + (size_t)n;
	}
}

static void metric(text *t, const char *name, const char *type,
		   const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_store(text *t, store *st)
{
	store_counts c;
	uint64_t head;

	if (store_get_counts(st, &c) == CM_OK) {
		metric(t, "clipmesh_records", "gauge", "Records stored, by kind.");
		put(t, "clipmesh_records{kind=\"clip\"} %llu\n"
		       "clipmesh_records{kind=\"retract\"} %llu\n"
		       "clipmesh_records{kind=\"profile\"} %llu\n",
		    (unsigned long long)c.clips,
		    (unsigned long long)c.retractions,
		    (unsigned long long)c.profiles);
		metric(t, "clipmesh_media_chunks", "gauge",
		       "Media chunks stored.");
		put(t, "clipmesh_media_chunks %llu\n",
		    (unsigned long long)c.chunks);
		metric(t, "clipmesh_media_bytes", "gauge",
		       "Bytes of media chunks stored.");
		put(t, "clipmesh_media_bytes %llu\n",
		    (unsigned long long)c.chunk_bytes);
	}
	if (store_log_head(st, &head) == CM_OK) {
		metric(t, "clipmesh_log_head", "gauge",
		       "Sequence number of the newest accepted record.");
		put(t, "clipmesh_log_head %llu\n", (unsigned long long)head);
	}
}

static int put_rejected(void *ctx, const char *name, uint64_t value)
{
	static const char prefix[] = "rejected.";

	if (strncmp(name, prefix, sizeof(prefix) - 1) == 0)
		put(ctx, "clipmesh_rejected_total{reason=\"%s\"} %llu\n",
		    name + sizeof(prefix) - 1, (unsigned long long)value);
	return 0;
}

static void put_node(text *t)
{
	node_stats s;
	bool up = node_stats_snapshot(&s) == CM_OK;

	metric(t, "clipmesh_node_up", "gauge",
	       "1 while the node thread publishes its counters.");
	put(t, "clipmesh_node_up %d\n", up);
	if (!up)
		return;
	metric(t, "clipmesh_peers_connected", "gauge",
	       "Peers whose HELLO arrived.");
	put(t, "clipmesh_peers_connected %llu\n",
	    (unsigned long long)s.peers_connected);
	metric(t, "clipmesh_peer_bytes_total", "counter",
	       "Bytes of peer messages since the node started.");
	put(t, "clipmesh_peer_bytes_total{direction=\"in\"} %llu\n"
	       "clipmesh_peer_bytes_total{direction=\"out\"} %llu\n",
	    (unsigned long long)s.bytes_in, (unsigned long long)s.bytes_out);
	metric(t, "clipmesh_peer_records_total", "counter",
	       "Records stored from peers (in) and sent to peers (out).");
	put(t, "clipmesh_peer_records_total{direction=\"in\"} %llu\n"
	       "clipmesh_peer_records_total{direction=\"out\"} %llu\n",
	    (unsigned long long)s.records_in,
	    (unsigned long long)s.records_out);
	metric(t, "clipmesh_sync_sessions_total", "counter",
	       "Finished reconciliation sessions.");
	put(t, "clipmesh_sync_sessions_total %llu\n",
	    (unsigned long long)s.sync_sessions);
	metric(t, "clipmesh_sync_rounds_total", "counter",
	       "Messages of finished reconciliation sessions.");
	put(t, "clipmesh_sync_rounds_total %llu\n",
	    (unsigned long long)s.sync_rounds);
	metric(t, "clipmesh_media_fetching", "gauge", "Media fetches running.");
	put(t, "clipmesh_media_fetching %llu\n",
	    (unsigned long long)s.media_fetching);
}

static void put_http(text *t, http_server *srv)
{
	metric(t, "clipmesh_http_requests_total", "counter",
	       "HTTP requests answered, by route and status.");
	for (size_t r = 0; r < HTTP_ROUTE_COUNT; r++) {
		for (size_t i = 0; i < HTTP_STATUS_SLOTS; i++) {
			uint64_t n = atomic_load(&srv->requests[r][i]);

			if (n == 0)
				continue;
			if (i < STATUS_KNOWN)
				put(t, "clipmesh_http_requests_total{route="
				       "\"%s\",status=\"%u\"} %llu\n",
				    route_names[r], status_codes[i],
				    (unsigned long long)n);
			else
				put(t, "clipmesh_http_requests_total{route="
				       "\"%s\",status=\"other\"} %llu\n",
				    route_names[r], (unsigned long long)n);
		}
	}
	metric(t, "clipmesh_http_stream_clients", "gauge",
	       "Open event streams.");
	put(t, "clipmesh_http_stream_clients %u\n",
	    atomic_load(&srv->streams));
	metric(t, "clipmesh_http_request_timeouts_total", "counter",
	       "Connections closed because a whole request did not arrive "
	       "in time.");
	put(t, "clipmesh_http_request_timeouts_total %llu\n",
	    (unsigned long long)http_deadline_closed(srv->deadline));
}

unsigned http_metrics(http_request *req, const char *tail,
		      struct MHD_Response **resp)
{
	static const char *const names[] = {NULL};
	http_params p = {.names = names};
	text t = {.cap = 4096};

	(void)tail;
	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	t.buf = malloc(t.cap);
	t.failed = t.buf == NULL;
	put_store(&t, req->srv->st);
	metric(&t, "clipmesh_rejected_total", "counter",
	       "Rejected input, by reason.");
	store_counter_list(req->srv->st, put_rejected, &t);
	put_node(&t);
	put_http(&t, req->srv);
	if (t.failed) {
		free(t.buf);
		return http_reply_store_error(req, CM_ERR_NOMEM, resp);
	}
	*resp = MHD_create_response_from_buffer(t.len, t.buf,
						MHD_RESPMEM_MUST_FREE);
	if (*resp == NULL) {
		free(t.buf);
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"no-cache");
	if (!req->head)
		req->bytes += t.len;
	return MHD_HTTP_OK;
}
