/*
 * http_server.c - the libmicrohttpd daemon: address, connection limits
 * and timeouts (the deadline for a whole request is in http_deadline.c),
 * routing, the headers of every response, per-client request limits and
 * the access log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "http_internal.h"
#include "proto_canon.h"

#define CSP "default-src 'self'; media-src 'self'; img-src 'self'; " \
	    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"

/* Every connection may have a read transaction open at the same time,
 * and the node's threads and CLI commands need reader slots too. */
_Static_assert(CM_HTTP_CONNECTIONS_MAX + 128 <= CM_STORE_MAX_READERS,
	       "LMDB reader slots for every HTTP connection");

/* A route: an exact path, or a prefix followed by the handler's tail. */
typedef struct route_entry {
	const char *path;
	bool prefix;
	http_route route;
	http_handler handler;
} route_entry;

static const route_entry routes[] = {
	{"/api/v1/clips", false, HTTP_ROUTE_CLIPS, http_clips},
	{"/api/v1/clips/", true, HTTP_ROUTE_CLIP, http_clip},
	{"/api/v1/records/", true, HTTP_ROUTE_RAW, http_record_raw},
	{"/api/v1/creators/", true, HTTP_ROUTE_CREATOR, http_creator},
	{"/api/v1/media/", true, HTTP_ROUTE_MEDIA, http_media},
	{"/api/v1/stream", false, HTTP_ROUTE_STREAM, http_stream},
	{"/healthz", false, HTTP_ROUTE_HEALTH, http_health},
	{"/metrics", false, HTTP_ROUTE_METRICS, http_metrics},
};

/* --- Responses -------------------------------------------------------- */

unsigned http_reply_json(http_request *req, unsigned status, json_t *body,
			 struct MHD_Response **resp)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	size_t len;

	json_decref(body);
	if (text == NULL) {
		static const char oom[] = "{\"error\":\"out of memory\"}";

		*resp = MHD_create_response_from_buffer(
			sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		len = sizeof(oom) - 1;
	} else {
		len = strlen(text);
		*resp = MHD_create_response_from_buffer(len, text,
							MHD_RESPMEM_MUST_FREE);
		if (*resp == NULL)
			free(text);
	}
	if (*resp) {
		MHD_add_response_header(*resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"application/json");
		MHD_add_response_header(*resp, MHD_HTTP_HEADER_CACHE_CONTROL,
					"no-cache");
	}
	if (!req->head)
		req->bytes += len;
	return status;
}

/* Copies src into dst[cap], replacing each control character and each
 * byte of invalid UTF-8 with '?'. A request's path and query are
 * unescaped by libmicrohttpd, so they may contain any byte: cleaned, they
 * keep one request on one log line and stay valid in a JSON string. */
static void copy_printable(char *dst, const char *src, size_t cap)
{
	const uint8_t *in = (const uint8_t *)src;
	size_t len = strlen(src), i = 0, out = 0;

	while (i < len && out + 1 < cap) {
		size_t start = i;
		uint32_t cp;

		if (!proto_utf8_next(in, len, &i, &cp) || proto_is_control(cp)) {
			dst[out++] = '?';
			i = start + 1;
			continue;
		}
		if (out + (i - start) >= cap)
			break;
		memcpy(dst + out, src + start, i - start);
		out += i - start;
	}
	dst[out] = '\0';
}

unsigned http_reply_error(http_request *req, unsigned status, json_t *extra,
			  struct MHD_Response **resp, const char *fmt, ...)
{
	json_t *body = extra ? extra : json_object();
	char raw[512], message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	copy_printable(message, raw, sizeof(message));
	json_object_set_new(body, "error", json_string(message));
	return http_reply_json(req, status, body, resp);
}

unsigned http_reply_store_error(http_request *req, cm_err err,
				struct MHD_Response **resp)
{
	cm_error(HTTP_LOG, "%s %s: reading the store failed: %s (%s)",
		 req->method_shown, req->path, cm_err_name(err),
		 cm_err_detail());
	return http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				resp, "reading the store failed (%s); see "
				"the mirror's log and run 'clipmesh store "
				"check'", cm_err_name(err));
}

static void add_common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

/* --- Routing ---------------------------------------------------------- */

static unsigned not_found(http_request *req, struct MHD_Response **resp)
{
	return http_reply_error(req, MHD_HTTP_NOT_FOUND, NULL, resp,
				"no route %s; the API is under /api/v1 "
				"(see docs/openapi.json)", req->path);
}

/* Picks the route of `url` and runs its handler. */
static unsigned dispatch(http_request *req, const char *url,
			 struct MHD_Response **resp)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const route_entry *r = &routes[i];
		size_t len = strlen(r->path);

		if (r->prefix ? strncmp(url, r->path, len) != 0 || !url[len]
			      : strcmp(url, r->path) != 0)
			continue;
		req->route = r->route;
		return r->handler(req, url + len, resp);
	}
	if (strncmp(url, "/api/", 5) != 0) {
		unsigned status;

		req->route = HTTP_ROUTE_STATIC;
		if (http_static(req, url, resp, &status))
			return status;
	}
	req->route = HTTP_ROUTE_OTHER;
	return not_found(req, resp);
}

static unsigned too_many(http_request *req, unsigned retry_after,
			 struct MHD_Response **resp)
{
	char value[16];
	unsigned status;

	status = http_reply_error(req, MHD_HTTP_TOO_MANY_REQUESTS, NULL, resp,
				  "too many requests from %s; retry after %u "
				  "s", req->client, retry_after);
	snprintf(value, sizeof(value), "%u", retry_after);
	if (*resp)
		MHD_add_response_header(*resp, MHD_HTTP_HEADER_RETRY_AFTER,
					value);
	return status;
}

static void client_address(http_request *req, const struct sockaddr **sa)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	*sa = info ? info->client_addr : NULL;
	cm_strlcpy(req->client, "?", sizeof(req->client));
	if (*sa == NULL)
		return;
	if ((*sa)->sa_family == AF_INET)
		inet_ntop(AF_INET,
			  &((const struct sockaddr_in *)*sa)->sin_addr,
			  req->client, sizeof(req->client));
	else if ((*sa)->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)*sa)->sin6_addr,
			  req->client, sizeof(req->client));
}

/* Makes and queues the response to a request whose headers arrived. */
static enum MHD_Result answer(http_request *req, const char *url)
{
	struct MHD_Response *resp = NULL;
	const struct sockaddr *sa;
	unsigned status, retry_after;
	enum MHD_Result rc;

	client_address(req, &sa);
	if (sa && !http_limiter_take(req->srv->limiter, sa, &retry_after)) {
		req->route = HTTP_ROUTE_OTHER;
		status = too_many(req, retry_after, &resp);
	} else if (req->nul_in_path) {
		req->route = HTTP_ROUTE_OTHER;
		status = http_reply_error(req, MHD_HTTP_BAD_REQUEST, NULL, &resp,
					  "the path contains a NUL byte "
					  "(%%00); remove it");
	} else if (strcmp(req->method, MHD_HTTP_METHOD_GET) != 0 &&
		   strcmp(req->method, MHD_HTTP_METHOD_HEAD) != 0) {
		req->route = HTTP_ROUTE_OTHER;
		status = http_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED,
					  NULL, &resp,
					  "method %.16s is not allowed: the "
					  "API is read-only, use GET",
					  req->method);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
						"GET, HEAD");
	} else {
		status = dispatch(req, url, &resp);
	}
	if (resp == NULL)
		return MHD_NO; /* out of memory: MHD closes the connection */
	add_common_headers(resp);
	req->status = status;
	rc = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* True when the path of a raw request URI contains "%00", which
 * libmicrohttpd unescapes to a NUL byte that cuts the path short. */
static bool path_has_nul(const char *uri)
{
	size_t path_len = strcspn(uri, "?");

	for (size_t i = 0; i + 3 <= path_len; i++)
		if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
			return true;
	return false;
}

/* Allocates the state of a request. uri is the raw request URI, or NULL
 * when unknown. */
static http_request *request_new(http_server *srv, const char *uri)
{
	http_request *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->srv = srv;
	req->nul_in_path = uri && path_has_nul(uri);
	return req;
}

/* Called by libmicrohttpd with the raw URI before it unescapes it. The
 * request state made here is the first value of the request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)conn;
	return request_new(cls, uri);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	http_server *srv = cls;
	http_request *req = *con_cls;

	(void)version;
	(void)upload_data;
	if (req == NULL) {
		req = request_new(srv, NULL);
		if (req == NULL)
			return MHD_NO;
	}
	if (!req->started) {
		/* First call: only the headers are here. */
		req->started = true;
		req->conn = conn;
		req->method = method;
		copy_printable(req->method_shown, method,
			       sizeof(req->method_shown));
		req->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
		req->started_ms = cm_mono_ms();
		req->route = HTTP_ROUTE_OTHER;
		copy_printable(req->path, url, sizeof(req->path));
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* a body has no meaning here: skip */
		return MHD_YES;
	}
	http_deadline_request_in(srv->deadline, conn);
	return answer(req, url);
}

/* Writes the access log line of a finished request. A client over its
 * rate sends requests as fast as it can, so its 429 lines are warnings,
 * which the log limits when they repeat. The metrics count every one. */
static void log_request(const http_request *req,
			enum MHD_RequestTerminationCode toe)
{
	if (req->status == MHD_HTTP_TOO_MANY_REQUESTS) {
		cm_warn(HTTP_LOG, "%s %s 429 rate limited client=%s",
			req->method_shown, req->path, req->client);
		return;
	}
	cm_info(HTTP_LOG, "%s %s %u %llu %llums client=%s%s",
		req->method_shown, req->path, req->status, (unsigned long long)req->bytes,
		(unsigned long long)(cm_mono_ms() - req->started_ms),
		req->client,
		toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
		: toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
			? " ended=timeout"
			: " ended=early");
}

/* Logs the request and counts it, once MHD is done with it. */
static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	http_server *srv = cls;
	http_request *req = *con_cls;

	http_deadline_response_done(srv->deadline, conn);
	if (req == NULL)
		return;
	if (req->status)
		http_metrics_count(srv, req->route, req->status);
	/* A request that ended before its headers were read got no
	 * response from us, so it has no log line. */
	if (req->started)
		log_request(req, toe);
	free(req);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t len;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	cm_warn(HTTP_LOG, "libmicrohttpd: %s", line);
}

/* --- Conditional requests --------------------------------------------- */

bool http_etag_matches(const char *list, const char *etag)
{
	size_t len = strlen(etag);

	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, len) == 0 &&
		    (p[len] == '\0' || p[len] == ',' || p[len] == ' ' ||
		     p[len] == '\t'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* --- Address ---------------------------------------------------------- */

static bool parse_port(const char *text, uint16_t *port)
{
	uint64_t value;

	if (!cm_parse_u64(text, &value) || value == 0 || value > 65535)
		return false;
	*port = (uint16_t)value;
	return true;
}

cm_err http_parse_addr(const char *text, struct sockaddr_storage *out,
		       socklen_t *out_len)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
	char host[64] = "127.0.0.1";
	const char *colon, *port_text = text;
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (!end || end[1] != ':' || (size_t)(end - text) >= sizeof(host))
			goto bad;
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		port_text = end + 2;
	} else if ((colon = strrchr(text, ':')) != NULL) {
		/* An IPv6 address needs its brackets: "::1:80" could be a
		 * host with no port. */
		if ((size_t)(colon - text) >= sizeof(host) ||
		    memchr(text, ':', (size_t)(colon - text)) != NULL)
			goto bad;
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		port_text = colon + 1;
	}
	if (!parse_port(port_text, &port))
		goto bad;
	if (strcmp(host, "localhost") == 0)
		cm_strlcpy(host, "127.0.0.1", sizeof(host));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		*out_len = sizeof(*v4);
		return CM_OK;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		/* The socket of a specific IPv6 address is IPv6-only, where
		 * binding an IPv4-mapped address fails with EINVAL. */
		if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
			return cm_errf(CM_ERR_USAGE,
				       "invalid HTTP address '%.100s': an "
				       "IPv4-mapped IPv6 address; give the "
				       "IPv4 address instead, as "
				       "IPV4:PORT", text);
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		*out_len = sizeof(*v6);
		return CM_OK;
	}
bad:
	return cm_errf(CM_ERR_USAGE,
		       "invalid HTTP address '%.100s': give PORT (meaning "
		       "127.0.0.1:PORT), IPV4:PORT or [IPV6]:PORT with a "
		       "port from 1 to 65535",
		       text);
}

/* --- Start and stop --------------------------------------------------- */

/* Returns the address the server binds, as http://HOST:PORT, in a static
 * buffer, so that a bare port in the settings shows where it listens. */
static const char *bound_name(const struct sockaddr_storage *addr,
			      socklen_t len)
{
	static char name[INET6_ADDRSTRLEN + 32];
	char host[INET6_ADDRSTRLEN], port[8];

	if (getnameinfo((const struct sockaddr *)addr, len, host, sizeof(host),
			port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV))
		return "?";
	snprintf(name, sizeof(name),
		 addr->ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s",
		 host, port);
	return name;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *addr)
{
	if (addr->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)addr)->sin_port);
}

/* Returns the MHD flags for an IPv6 address. The unspecified address [::]
 * also accepts IPv4 clients, as in most servers; other addresses accept
 * only IPv6 clients. */
static unsigned ipv6_flags(const struct sockaddr_in6 *addr)
{
	if (IN6_IS_ADDR_UNSPECIFIED(&addr->sin6_addr))
		return MHD_USE_DUAL_STACK;
	return MHD_USE_IPv6;
}

cm_err http_start(const http_config *cfg, store *st, http_server **out)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	http_server *srv;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 MHD_USE_ERROR_LOG;
	cm_err err;

	*out = NULL;
	err = http_parse_addr(cfg->addr, &addr, &addr_len);
	if (err)
		return err;
	if (addr.ss_family == AF_INET6)
		flags |= ipv6_flags((const struct sockaddr_in6 *)&addr);
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return cm_errf(CM_ERR_NOMEM, "allocating the HTTP server");
	srv->st = st;
	err = http_limiter_new(cfg->rate ? cfg->rate : CM_HTTP_RATE_DEFAULT,
			       cfg->burst ? cfg->burst : CM_HTTP_BURST_DEFAULT,
			       &srv->limiter);
	if (!err)
		err = http_checked_new(&srv->checked);
	if (!err)
		err = http_deadline_new(&srv->deadline);
	if (err)
		goto fail;

	/* MHD binds SOCK_ADDR; the port argument only names the port in
	 * its own error messages, which showed "port 0" without it. */
	srv->daemon = MHD_start_daemon(
		flags, sockaddr_port(&addr), NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)CM_HTTP_CONNECTIONS_MAX,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)CM_HTTP_PER_IP_CONNECTIONS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CM_HTTP_TIMEOUT_S,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)CM_HTTP_THREAD_STACK,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
		MHD_OPTION_NOTIFY_CONNECTION, http_deadline_on_connection,
		srv->deadline,
		MHD_OPTION_END);
	if (srv->daemon == NULL) {
		err = cm_errf(CM_ERR_IO, "cannot listen for HTTP on %s: %s; "
			      "pick a free port with --http",
			      cfg->addr, strerror(errno));
		goto fail;
	}
	cm_info(HTTP_LOG, "listening on %s rate=%u/s burst=%u",
		bound_name(&addr, addr_len),
		cfg->rate ? cfg->rate : CM_HTTP_RATE_DEFAULT,
		cfg->burst ? cfg->burst : CM_HTTP_BURST_DEFAULT);
	*out = srv;
	return CM_OK;
fail:
	http_deadline_free(&srv->deadline);
	http_limiter_free(&srv->limiter);
	http_checked_free(&srv->checked);
	free(srv);
	return err;
}

void http_stop(http_server **srv)
{
	if (srv == NULL || *srv == NULL)
		return;
	/* Streams see the flag within CM_HTTP_STREAM_POLL_MS and end, so
	 * that MHD_stop_daemon can join their threads. */
	atomic_store(&(*srv)->stopping, true);
	if ((*srv)->daemon)
		MHD_stop_daemon((*srv)->daemon);
	http_deadline_free(&(*srv)->deadline);
	http_limiter_free(&(*srv)->limiter);
	http_checked_free(&(*srv)->checked);
	free(*srv);
	*srv = NULL;
	cm_info(HTTP_LOG, "stopped");
}
