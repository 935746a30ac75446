/*
 * http.h - the read-only HTTP API of a mirror (`clipmesh mirror --http
 * ADDR`), served with libmicrohttpd from the node process: feed queries,
 * one clip, raw signed records, creators, media with Range requests, a
 * stream of accepted records, health, metrics and the web page.
 * docs/openapi.json describes every route.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdint.h>
#include <sys/socket.h>

#include "cm_error.h"
#include "store.h"

typedef struct http_config {
	const char *addr;    /* "HOST:PORT", "[V6]:PORT" or a bare port,
			      * which means 127.0.0.1 */
	unsigned rate;       /* requests per second per client address;
			      * 0: CM_HTTP_RATE_DEFAULT */
	unsigned burst;      /* 0: CM_HTTP_BURST_DEFAULT */
} http_config;

typedef struct http_server http_server;

/*
 * Parses an address as http_config.addr describes into *out (*out_len
 * bytes). Only numeric addresses and "localhost" are accepted, so that no
 * name lookup decides where the API listens. CM_ERR_USAGE with a detail
 * otherwise.
 */
cm_err http_parse_addr(const char *text, struct sockaddr_storage *out,
		       socklen_t *out_len);

/*
 * Starts the server on its own threads. `st` is the node's store handle
 * and must stay open until http_stop returns. *out is NULL on failure.
 */
cm_err http_start(const http_config *cfg, store *st, http_server **out);

/* Stops the server, ends open streams, waits for its threads and sets
 * *srv to NULL; accepts NULL and *srv == NULL. */
void http_stop(http_server **srv);

#endif
