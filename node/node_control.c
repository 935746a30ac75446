/*
 * node_control.c - the local control socket between the CLI and the
 * running node, both sides.
 *
 * The node binds a ROUTER to ipc://HOME/control.sock; a client sends one
 * request frame through a REQ socket and reads one reply frame.
 *   notify: 'n' followed by 1..CM_WIRE_IDS_MAX ids of PROTO_ID_LEN bytes;
 *           reply "ok".
 *   status: 's'; reply the status JSON object.
 * The node holds an exclusive flock on HOME/node.lock while it runs, so a
 * client finds out without waiting whether a node runs at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <zmq.h>

#include "cm_home.h"
#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"

#define CMD_NOTIFY 'n'
#define CMD_STATUS 's'
#define REPLY_OK "ok"
#define IPC_SCHEME "ipc://"

cm_err node_control_open(node *n)
{
	char endpoint[CM_HOME_PATH_MAX];
	cm_err err;

	err = cm_home_control_endpoint(n->cfg->home, endpoint);
	if (err)
		return err;
	cm_strlcpy(n->control_path, endpoint + strlen(IPC_SCHEME),
		   sizeof(n->control_path));

	/* We hold the home's lock, so a socket file left here belongs to a
	 * node that died. */
	if (unlink(n->control_path) && errno != ENOENT)
		return cm_errf(CM_ERR_IO, "removing stale %s: %s",
			       n->control_path, strerror(errno));

	n->control = zmq_socket(n->ctx, ZMQ_ROUTER);
	if (!n->control)
		return cm_errf(CM_ERR_ZMQ, "creating control socket: %s",
			       zmq_strerror(errno));
	err = node_socket_defaults(n->control);
	if (err)
		return err;
	if (zmq_bind(n->control, endpoint))
		return cm_errf(CM_ERR_ZMQ, "binding %s: %s", endpoint,
			       zmq_strerror(errno));
	return CM_OK;
}

void node_control_close(node *n)
{
	if (n->control) {
		zmq_close(n->control);
		n->control = NULL;
	}
	if (n->control_path[0])
		unlink(n->control_path);
}

static void reply(node *n, zmq_msg_t *routing_id, const void *data,
		  size_t len)
{
	if (zmq_send(n->control, zmq_msg_data(routing_id),
		     zmq_msg_size(routing_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return;
	zmq_send(n->control, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(n->control, data, len, ZMQ_DONTWAIT);
}

static void handle_request(node *n, zmq_msg_t *routing_id,
			   const uint8_t *req, size_t len)
{
	size_t count = len > 0 ? (len - 1) / PROTO_ID_LEN : 0;
	char *json;

	if (len == 1 && req[0] == CMD_STATUS) {
		json = node_status_json(n);
		if (json)
			reply(n, routing_id, json, strlen(json));
		else
			reply(n, routing_id, "{}", 2);
		free(json);
		return;
	}
	if (len > 1 && req[0] == CMD_NOTIFY &&
	    (len - 1) % PROTO_ID_LEN == 0 && count <= CM_WIRE_IDS_MAX) {
		cm_debug(NODE_LOG, "control: %zu new records", count);
		node_ingest_local(n, req + 1, count);
		reply(n, routing_id, REPLY_OK, strlen(REPLY_OK));
		return;
	}
	cm_warn(NODE_LOG, "control: invalid request of %zu bytes", len);
	reply(n, routing_id, "invalid request", strlen("invalid request"));
}

/* Receives the rest of a multipart message and drops it. */
static void drain(void *sock, zmq_msg_t *last)
{
	while (zmq_msg_more(last)) {
		zmq_msg_close(last);
		zmq_msg_init(last);
		if (zmq_msg_recv(last, sock, 0) < 0)
			return;
	}
}

void node_control_receive(node *n)
{
	zmq_msg_t routing_id, delimiter, body;

	zmq_msg_init(&routing_id);
	zmq_msg_init(&delimiter);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&routing_id, n->control, ZMQ_DONTWAIT) < 0)
		goto out;
	if (!zmq_msg_more(&routing_id) ||
	    zmq_msg_recv(&delimiter, n->control, 0) < 0)
		goto out;
	if (zmq_msg_size(&delimiter) != 0 || !zmq_msg_more(&delimiter)) {
		drain(n->control, &delimiter);
		goto out;
	}
	if (zmq_msg_recv(&body, n->control, 0) < 0)
		goto out;
	if (zmq_msg_more(&body)) {
		drain(n->control, &body);
		goto out;
	}
	handle_request(n, &routing_id, zmq_msg_data(&body),
		       zmq_msg_size(&body));
out:
	zmq_msg_close(&body);
	zmq_msg_close(&delimiter);
	zmq_msg_close(&routing_id);
}

/* --- Client side ---------------------------------------------------- */

/* True when a node holds the lock of `home`. */
static bool node_running(const char *home)
{
	char path[CM_HOME_PATH_MAX];
	bool running = false;
	int fd;

	if (cm_home_path(home, "node.lock", path))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		running = errno == EWOULDBLOCK;
	close(fd);
	return running;
}

/* A client connection: one context and one REQ socket. */
typedef struct client {
	void *ctx;
	void *sock;
} client;

static void client_close(client *c)
{
	if (c->sock)
		zmq_close(c->sock);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	c->sock = c->ctx = NULL;
}

static cm_err client_open(const char *home, client *c)
{
	char endpoint[CM_HOME_PATH_MAX];
	int timeout = CM_CONTROL_TIMEOUT_MS, linger = 0;
	int64_t max = CM_WIRE_MSG_MAX;
	cm_err err;

	if (!node_running(home))
		return cm_errf(CM_ERR_NOT_FOUND, "no node runs in %s", home);
	err = cm_home_control_endpoint(home, endpoint);
	if (err)
		return err;

	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_REQ) : NULL;
	if (!c->sock ||
	    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &timeout, sizeof(timeout)) ||
	    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout)) ||
	    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) ||
	    zmq_connect(c->sock, endpoint)) {
		err = cm_errf(CM_ERR_ZMQ, "connecting to %s: %s", endpoint,
			      zmq_strerror(errno));
		client_close(c);
		return err;
	}
	return CM_OK;
}

/* Sends one request and receives its reply into a malloc'd, NUL-terminated
 * buffer. */
static cm_err client_call(client *c, const void *req, size_t len,
			  char **out)
{
	zmq_msg_t msg;
	cm_err err = CM_OK;
	size_t n;

	if (zmq_send(c->sock, req, len, 0) < 0)
		return errno == EAGAIN
			       ? cm_errf(CM_ERR_TIMEOUT, "node did not take "
					 "the request in %d ms",
					 CM_CONTROL_TIMEOUT_MS)
			       : cm_errf(CM_ERR_ZMQ, "sending to the node: %s",
					 zmq_strerror(errno));

	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
		err = errno == EAGAIN
			      ? cm_errf(CM_ERR_TIMEOUT, "node did not reply "
					"in %d ms", CM_CONTROL_TIMEOUT_MS)
			      : cm_errf(CM_ERR_ZMQ, "receiving from the node: "
					"%s", zmq_strerror(errno));
		goto out;
	}
	n = zmq_msg_size(&msg);
	*out = malloc(n + 1);
	if (!*out) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	memcpy(*out, zmq_msg_data(&msg), n);
	(*out)[n] = '\0';
out:
	zmq_msg_close(&msg);
	return err;
}

cm_err node_notify(const char *home, const uint8_t (*ids)[PROTO_ID_LEN],
		   size_t n)
{
	client c = {0};
	uint8_t *req = NULL;
	char *reply_text = NULL;
	cm_err err;

	err = client_open(home, &c);
	if (err)
		return err;
	req = malloc(1 + CM_WIRE_IDS_MAX * PROTO_ID_LEN);
	if (!req) {
		err = CM_ERR_NOMEM;
		goto out;
	}

	req[0] = CMD_NOTIFY;
	for (size_t done = 0; done < n; done += CM_WIRE_IDS_MAX) {
		size_t page = n - done;

		if (page > CM_WIRE_IDS_MAX)
			page = CM_WIRE_IDS_MAX;
		memcpy(req + 1, ids[done], page * PROTO_ID_LEN);
		err = client_call(&c, req, 1 + page * PROTO_ID_LEN,
				  &reply_text);
		if (err)
			goto out;
		if (strcmp(reply_text, REPLY_OK) != 0) {
			err = cm_errf(CM_ERR_IO, "node replied \"%.60s\"",
				      reply_text);
			goto out;
		}
		free(reply_text);
		reply_text = NULL;
	}
out:
	free(reply_text);
	free(req);
	client_close(&c);
	return err;
}

cm_err node_status(const char *home, char **json)
{
	client c = {0};
	const char req = CMD_STATUS;
	cm_err err;

	*json = NULL;
	err = client_open(home, &c);
	if (err)
		return err;
	err = client_call(&c, &req, 1, json);
	client_close(&c);
	return err;
}
