/*
 * http_stream.c - GET /api/v1/stream: Server-Sent Events of the store's
 * acceptance log. Each event is
 *   id: SEQ
 *   event: record
 *   data: {"seq": SEQ, "record": {...}}
 * in log order, starting after `after` or the Last-Event-ID header, so a
 * client that reconnects with its last id gets every record exactly once.
 *
 * The connection's thread polls the log head every CM_HTTP_STREAM_POLL_MS
 * (the log also grows from other processes, such as `clipmesh import`),
 * and sends a comment line when nothing was sent for CM_HTTP_HEARTBEAT_MS.
 * Events are made only when libmicrohttpd asks for more bytes, so a slow
 * client holds at most CM_HTTP_STREAM_BUFFER bytes plus one event; one
 * that reads nothing for CM_HTTP_STREAM_TIMEOUT_S is closed and resumes
 * by Last-Event-ID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"
#include "http_internal.h"

typedef struct stream_state {
	http_server *srv;
	http_request *req;
	uint64_t after;                /* last sequence number sent */
	uint64_t last_send_ms;         /* monotonic */
	char *buf;                     /* events not handed to MHD yet */
	size_t len;
	size_t off;
	size_t cap;
	proto_signed *rec;             /* scratch */
	cm_err err;
} stream_state;

static void stream_free(void *cls)
{
	stream_state *s = cls;

	atomic_fetch_sub(&s->srv->streams, 1);
	free(s->buf);
	free(s->rec);
	free(s);
}

static bool append(stream_state *s, const char *text, size_t len)
{
	if (s->len + len > s->cap) {
		size_t cap = s->len + len + CM_HTTP_STREAM_BUFFER / 4;
		char *grown = realloc(s->buf, cap);

		if (grown == NULL)
			return false;
		s->buf = grown;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, text, len);
	s->len += len;
	return true;
}

/* Appends one log entry as an event. Stops the walk once the buffer
 * contains CM_HTTP_STREAM_BUFFER bytes. */
static int add_event(void *ctx, uint64_t seq, const uint8_t id[PROTO_ID_LEN],
		     const uint8_t *wire, size_t len)
{
	stream_state *s = ctx;
	char head[64], *data = NULL;
	json_t *o;
	int n;

	s->err = http_record_decode(wire, len, id, s->rec);
	if (s->err)
		return 1;
	o = json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "record",
		      http_record_json(s->srv->st, s->rec, NULL));
	if (o)
		data = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	n = snprintf(head, sizeof(head), "id: %llu\nevent: record\ndata: ",
		     (unsigned long long)seq);
	if (data == NULL || !append(s, head, (size_t)n) ||
	    !append(s, data, strlen(data)) || !append(s, "\n\n", 2)) {
		free(data);
		s->err = cm_errf(CM_ERR_NOMEM, "building event %llu",
				 (unsigned long long)seq);
		return 1;
	}
	free(data);
	return s->len >= CM_HTTP_STREAM_BUFFER;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Waits until the log has entries after s->after, a heartbeat is due or
 * the server stops, then fills the buffer. False when the stream ends. */
static bool refill(stream_state *s)
{
	uint64_t head = 0, last;
	cm_err err;

	s->len = s->off = 0;
	for (;;) {
		if (atomic_load(&s->srv->stopping))
			return false;
		cm_err_clear();
		err = store_log_head(s->srv->st, &head);
		if (err)
			break;
		if (head > s->after) {
			s->err = CM_OK;
			err = store_log_after(s->srv->st, s->after,
					      CM_HTTP_STREAM_BATCH, add_event,
					      s, &last);
			if (!err)
				err = s->err;
			if (err)
				break;
			s->after = last;
			if (s->len > 0)
				return true;
			continue; /* only removed records: read on */
		}
		if (cm_mono_ms() - s->last_send_ms >= CM_HTTP_HEARTBEAT_MS)
			return append(s, ": heartbeat\n\n", 13);
		sleep_ms(CM_HTTP_STREAM_POLL_MS);
	}
	cm_error(HTTP_LOG, "stream client=%s ends after seq %llu: reading "
		 "the log failed: %s (%s)", s->req->client,
		 (unsigned long long)s->after, cm_err_name(err),
		 cm_err_detail());
	return false;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	stream_state *s = cls;
	size_t n;

	(void)pos;
	if (s->off == s->len && !refill(s))
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = s->len - s->off;
	if (n > max)
		n = max;
	memcpy(buf, s->buf + s->off, n);
	s->off += n;
	s->last_send_ms = cm_mono_ms();
	s->req->bytes += n;
	return (ssize_t)n;
}

/* Reads the start position: Last-Event-ID (sent by a reconnecting
 * EventSource) wins over `after`. */
static bool start_position(http_request *req, const http_params *p,
			   uint64_t *after, char *error, size_t cap)
{
	const char *id = MHD_lookup_connection_value(req->conn,
						     MHD_HEADER_KIND,
						     "Last-Event-ID");
	const char *value = id ? id : http_param(p, "after");

	*after = 0;
	if (value == NULL || cm_parse_u64(value, after))
		return true;
	snprintf(error, cap, "invalid %s '%.30s': give the sequence number "
		 "(id) of the last event received, or 0 for all",
		 id ? "Last-Event-ID" : "after", value);
	return false;
}

unsigned http_stream(http_request *req, const char *tail,
		     struct MHD_Response **resp)
{
	static const char *const names[] = {"after", NULL};
	static const char retry[] = "retry: 2000\n\n";
	http_params p = {.names = names};
	stream_state *s;
	uint64_t after, head = 0;
	char error[200];
	cm_err err;

	(void)tail;
	if (!http_params_read(req, &p))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", p.error);
	if (!start_position(req, &p, &after, error, sizeof(error)))
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"%s", error);
	cm_err_clear();
	err = store_log_head(req->srv->st, &head);
	if (err)
		return http_reply_store_error(req, err, resp);
	if (after > head)
		return http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, resp,
					"position %llu is beyond this "
					"mirror's newest sequence number "
					"%llu; it came from another mirror "
					"or store, so start again from 0",
					(unsigned long long)after,
					(unsigned long long)head);
	if (atomic_fetch_add(&req->srv->streams, 1) >= CM_HTTP_STREAMS_MAX) {
		unsigned status;

		atomic_fetch_sub(&req->srv->streams, 1);
		status = http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
					  NULL, resp, "all %d stream slots "
					  "are in use; retry later",
					  CM_HTTP_STREAMS_MAX);
		if (*resp)
			MHD_add_response_header(*resp,
						MHD_HTTP_HEADER_RETRY_AFTER,
						"5");
		return status;
	}

	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->rec = malloc(sizeof(*s->rec))) == NULL ||
	    !append(s, retry, sizeof(retry) - 1)) {
		if (s) {
			free(s->rec);
			free(s->buf);
		}
		free(s);
		atomic_fetch_sub(&req->srv->streams, 1);
		return http_reply_store_error(req, CM_ERR_NOMEM, resp);
	}
	s->srv = req->srv;
	s->req = req;
	s->after = after;
	s->last_send_ms = cm_mono_ms();
	*resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
						  read_stream, s, stream_free);
	if (*resp == NULL) {
		stream_free(s);
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/event-stream");
	MHD_add_response_header(*resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"no-cache");
	MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT,
				  (unsigned int)CM_HTTP_STREAM_TIMEOUT_S);
	cm_debug(HTTP_LOG, "stream client=%s starts after seq %llu",
		 req->client, (unsigned long long)after);
	return MHD_HTTP_OK;
}
