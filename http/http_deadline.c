/*
 * http_deadline.c - closes connections that do not deliver a whole
 * request (headers and body) within CM_HTTP_REQUEST_TIMEOUT_S of their
 * accept or of the end of the previous response. libmicrohttpd's own
 * timeout counts only silence, so a client that sends one byte every few
 * seconds would otherwise keep its connection and thread indefinitely.
 *
 * Each connection gets an entry when libmicrohttpd accepts it
 * (MHD_OPTION_NOTIFY_CONNECTION). The access handler clears the deadline
 * once the whole request is in. The completion callback starts it again
 * for the next request on the connection, so the deadline never cuts a
 * response that is being sent (media, the event stream). A thread,
 * the sweep, checks the entries every CM_HTTP_REQUEST_SWEEP_MS and calls
 * shutdown(SHUT_RDWR) on each connection past its deadline. The
 * connection's thread then reads end of file, and libmicrohttpd closes
 * the connection.
 *
 * Locking: one mutex guards the list and every entry's fields. The
 * sweep calls shutdown() with the mutex held, and the entry leaves the
 * list under the mutex in the MHD_CONNECTION_NOTIFY_CLOSED callback,
 * which libmicrohttpd 0.9.75 runs before it closes the socket. So the
 * sweep never shuts down a descriptor that was closed and reused.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"
#include "http_internal.h"

/* One connection that libmicrohttpd accepted and has not closed yet. */
typedef struct tracked_conn {
	struct tracked_conn *prev, *next;
	int fd;
	uint64_t deadline_ms;          /* monotonic; 0 while a response is
					  made or sent */
	bool shut_down;                /* the sweep shut the socket down */
	char client[INET6_ADDRSTRLEN]; /* for the log */
} tracked_conn;

struct http_deadline {
	pthread_mutex_t lock;
	pthread_cond_t wake;           /* on CLOCK_MONOTONIC */
	pthread_t sweeper;
	bool stopping;
	tracked_conn *head;
	atomic_uint_fast64_t closed;   /* connections closed by the sweep */

	/* The log's repeat window, used by the sweep thread only. */
	uint64_t window_start_ms;
	unsigned window_logged;
	uint64_t window_suppressed;
};

/* Waits on d->wake for at most ms milliseconds. The caller holds
 * d->lock. */
static void wait_ms(http_deadline *d, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&d->wake, &d->lock, &ts);
}

/* Logs how many closed connections the current log window left out. */
static void log_suppressed(const http_deadline *d)
{
	if (d->window_suppressed > 0)
		cm_debug(HTTP_LOG, "closed %llu more connections that sent no "
			 "whole request in %d s",
			 (unsigned long long)d->window_suppressed,
			 CM_HTTP_REQUEST_TIMEOUT_S);
}

/* Logs the connections that one sweep closed: at most
 * CM_LOG_REPEAT_BURST lines per CM_LOG_REPEAT_WINDOW_MS, as the log does
 * for repeated warnings, and the number left out once the window ends.
 * The log's own limit covers warnings and errors, not debug lines. */
static void log_closed(http_deadline *d,
		       char shown[][INET6_ADDRSTRLEN], uint64_t n_closed,
		       uint64_t now)
{
	if (now - d->window_start_ms >= CM_LOG_REPEAT_WINDOW_MS) {
		log_suppressed(d);
		d->window_start_ms = now;
		d->window_logged = 0;
		d->window_suppressed = 0;
	}
	for (uint64_t i = 0; i < n_closed; i++) {
		if (i >= CM_LOG_REPEAT_BURST ||
		    d->window_logged >= CM_LOG_REPEAT_BURST) {
			d->window_suppressed++;
			continue;
		}
		d->window_logged++;
		cm_debug(HTTP_LOG, "closed a connection that sent no whole "
			 "request in %d s client=%s",
			 CM_HTTP_REQUEST_TIMEOUT_S, shown[i]);
	}
}

/* Shuts down every connection past its deadline. The client addresses
 * for the log are copied under the lock and logged after it. */
static void sweep(http_deadline *d)
{
	char shown[CM_LOG_REPEAT_BURST][INET6_ADDRSTRLEN];
	uint64_t now, n_closed = 0;

	pthread_mutex_lock(&d->lock);
	now = cm_mono_ms();
	for (tracked_conn *c = d->head; c; c = c->next) {
		if (c->shut_down || c->deadline_ms == 0 || now < c->deadline_ms)
			continue;
		/* An error means the socket is already shut down or reset,
		 * and libmicrohttpd closes it either way. */
		shutdown(c->fd, SHUT_RDWR);
		c->shut_down = true;
		if (n_closed < CM_LOG_REPEAT_BURST)
			memcpy(shown[n_closed], c->client, sizeof(c->client));
		n_closed++;
	}
	pthread_mutex_unlock(&d->lock);

	atomic_fetch_add(&d->closed, n_closed);
	log_closed(d, shown, n_closed, now);
}

static void *sweep_main(void *arg)
{
	http_deadline *d = arg;

	pthread_setname_np(pthread_self(), "cm-http-sweep");
	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		wait_ms(d, CM_HTTP_REQUEST_SWEEP_MS);
		if (d->stopping)
			break;
		pthread_mutex_unlock(&d->lock);
		sweep(d);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

cm_err http_deadline_new(http_deadline **out)
{
	http_deadline *d = calloc(1, sizeof(*d));
	pthread_condattr_t attr;
	int rc;

	*out = NULL;
	if (d == NULL)
		return cm_errf(CM_ERR_NOMEM, "allocating the request deadline");
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &attr);
	pthread_condattr_destroy(&attr);
	d->window_start_ms = cm_mono_ms();

	rc = pthread_create(&d->sweeper, NULL, sweep_main, d);
	if (rc != 0) {
		pthread_cond_destroy(&d->wake);
		pthread_mutex_destroy(&d->lock);
		free(d);
		return cm_errf(CM_ERR_IO, "starting the HTTP request deadline "
			       "thread failed: %s", strerror(rc));
	}
	*out = d;
	return CM_OK;
}

void http_deadline_free(http_deadline **d)
{
	tracked_conn *c, *next;

	if (d == NULL || *d == NULL)
		return;
	pthread_mutex_lock(&(*d)->lock);
	(*d)->stopping = true;
	pthread_cond_signal(&(*d)->wake);
	pthread_mutex_unlock(&(*d)->lock);
	pthread_join((*d)->sweeper, NULL);
	log_suppressed(*d);

	/* Empty once the daemon has stopped; freed in case it is not. */
	for (c = (*d)->head; c; c = next) {
		next = c->next;
		free(c);
	}
	pthread_cond_destroy(&(*d)->wake);
	pthread_mutex_destroy(&(*d)->lock);
	free(*d);
	*d = NULL;
}

uint64_t http_deadline_closed(http_deadline *d)
{
	return atomic_load(&d->closed);
}

/* Copies the client address of conn into out, or "?" when unknown. */
static void client_text(struct MHD_Connection *conn,
			char out[INET6_ADDRSTRLEN])
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = info ? info->client_addr : NULL;

	cm_strlcpy(out, "?", INET6_ADDRSTRLEN);
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  out, INET6_ADDRSTRLEN);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  INET6_ADDRSTRLEN);
}

/* Adds an entry for a new connection, whose deadline starts now. */
static void track(http_deadline *d, struct MHD_Connection *conn,
		  void **socket_context)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	tracked_conn *c;

	if (info == NULL) {
		cm_warn(HTTP_LOG, "a new connection has no socket to watch; "
			"it has no request deadline");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		cm_warn(HTTP_LOG, "out of memory for a connection's request "
			"deadline; the connection has none");
		return;
	}
	c->fd = info->connect_fd;
	client_text(conn, c->client);

	pthread_mutex_lock(&d->lock);
	c->deadline_ms = cm_mono_ms() + CM_HTTP_REQUEST_TIMEOUT_S * 1000ULL;
	c->next = d->head;
	if (d->head)
		d->head->prev = c;
	d->head = c;
	pthread_mutex_unlock(&d->lock);
	*socket_context = c;
}

static void untrack(http_deadline *d, void **socket_context)
{
	tracked_conn *c = *socket_context;

	if (c == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&d->lock);
	free(c);
	*socket_context = NULL;
}

void http_deadline_on_connection(void *cls, struct MHD_Connection *conn,
				 void **socket_context,
				 enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		track(cls, conn, socket_context);
	else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
		untrack(cls, socket_context);
}

/* Sets the deadline of conn's entry, if it has one. */
static void set_deadline(http_deadline *d, struct MHD_Connection *conn,
			 uint64_t deadline_ms)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	tracked_conn *c = info ? info->socket_context : NULL;

	if (c == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	c->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&d->lock);
}

void http_deadline_request_in(http_deadline *d, struct MHD_Connection *conn)
{
	set_deadline(d, conn, 0);
}

void http_deadline_response_done(http_deadline *d,
				 struct MHD_Connection *conn)
{
	set_deadline(d, conn,
		     cm_mono_ms() + CM_HTTP_REQUEST_TIMEOUT_S * 1000ULL);
}
