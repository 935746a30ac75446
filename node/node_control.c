/*
 * node_control.c - the local control socket between the CLI and the
 * running node, both sides.
 *
 * The node binds a ROUTER to ipc://HOME/control.sock; a client sends one
 * request frame through a REQ socket and reads one reply frame. Requests
 * and replies are msgpack arrays, written with msgpack-c's packer and read
 * with the strict reader of proto_canon.h:
 *   status: [1]; reply [0, the status JSON object as a str].
 *   notify: [2, bin of 1..CM_WIRE_IDS_MAX ids of PROTO_ID_LEN bytes];
 *           reply [0, "ok"].
 *   failure: reply [cm_err code, reason].
 * The "Local control socket" part of proto/PROTOCOL.md shows the bytes.
 * The node holds an exclusive flock on HOME/node.lock while it runs, so a
 * client finds out without waiting whether a node runs at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <msgpack.h>
#include <zmq.h>

#include "cm_home.h"
#include "cm_log.h"
#include "cm_util.h"
#include "node_internal.h"
#include "proto_canon.h"

#define REPLY_OK "ok"
#define IPC_SCHEME "ipc://"

/* Maximum request size: fixarray, command, bin 32 header and
 * CM_WIRE_IDS_MAX ids. */
#define REQUEST_MAX (1 + 1 + 5 + CM_WIRE_IDS_MAX * PROTO_ID_LEN)

/* Maximum size of a reply's framing: the array header (1 byte), the code
 * (at most 2 bytes) and a str 32 header (5 bytes). */
#define REPLY_HEAD_MAX 8

/* Maximum reason length in bytes. cm_errf() truncates its details to 255
 * bytes, so no detail is cut. */
#define REASON_MAX 255

/* --- Messages --------------------------------------------------------- */

/* A packer writing into a growing malloc'd buffer. Every msgpack_pack_*
 * call returns non-zero only when that buffer could not grow. */
typedef struct writer {
	msgpack_sbuffer buf;
	msgpack_packer pk;
	int failed;
} writer;

static void writer_start(writer *w, size_t n, uint64_t first)
{
	msgpack_sbuffer_init(&w->buf);
	msgpack_packer_init(&w->pk, &w->buf, msgpack_sbuffer_write);
	w->failed = msgpack_pack_array(&w->pk, n);
	w->failed |= msgpack_pack_uint64(&w->pk, first);
}

static cm_err writer_finish(writer *w, uint8_t **out, size_t *len)
{
	if (w->failed) {
		msgpack_sbuffer_destroy(&w->buf);
		return cm_errf(CM_ERR_NOMEM, "encoding a control message");
	}
	*len = w->buf.size;
	*out = (uint8_t *)msgpack_sbuffer_release(&w->buf);
	return CM_OK;
}

/* Encodes [1]. */
static cm_err encode_status_request(uint8_t **out, size_t *len)
{
	writer w;

	writer_start(&w, 1, NODE_CONTROL_STATUS);
	return writer_finish(&w, out, len);
}

/* Encodes [2, bin of n ids], 1 <= n <= CM_WIRE_IDS_MAX. */
static cm_err encode_notify_request(const uint8_t (*ids)[PROTO_ID_LEN],
				    size_t n, uint8_t **out, size_t *len)
{
	writer w;

	writer_start(&w, 2, NODE_CONTROL_NOTIFY);
	w.failed |= msgpack_pack_bin(&w.pk, n * PROTO_ID_LEN);
	w.failed |= msgpack_pack_bin_body(&w.pk, ids, n * PROTO_ID_LEN);
	return writer_finish(&w, out, len);
}

/* Encodes [code, text]. */
static cm_err encode_reply(cm_err code, const char *text, size_t text_len,
			   uint8_t **out, size_t *len)
{
	writer w;

	writer_start(&w, 2, (uint64_t)code);
	w.failed |= msgpack_pack_str_with_body(&w.pk, text, text_len);
	return writer_finish(&w, out, len);
}

/* Checks that nothing follows the array that rd has read. */
static cm_err check_end(const proto_reader *rd, const char *what)
{
	if (proto_reader_left(rd) > 0)
		return cm_errf(CM_ERR_TRAILING,
			       "%zu byte%s the %s at byte %zu",
			       proto_reader_left(rd),
			       proto_reader_left(rd) == 1 ? " follows"
							  : "s follow",
			       what,
			       proto_reader_offset(rd));
	return CM_OK;
}

/* Reads the ids of a notify request: a bin of whole ids. */
static cm_err read_ids(proto_reader *rd, node_control_request *req)
{
	size_t len;
	cm_err err;

	err = proto_read_bin(rd, "ids", CM_WIRE_IDS_MAX * PROTO_ID_LEN,
			     &req->ids, &len);
	if (err)
		return err;
	if (len == 0 || len % PROTO_ID_LEN != 0)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "ids is %zu bytes, expected 1 to %d ids of %d "
			       "bytes each",
			       len, CM_WIRE_IDS_MAX, PROTO_ID_LEN);
	req->n_ids = len / PROTO_ID_LEN;
	return CM_OK;
}

cm_err node_control_decode_request(const uint8_t *buf, size_t len,
				   node_control_request *req)
{
	proto_reader rd;
	uint64_t command = 0;
	size_t n, expected;
	cm_err err;

	memset(req, 0, sizeof(*req));
	if (len > REQUEST_MAX)
		return cm_errf(CM_ERR_TOO_LONG,
			       "control request is %zu bytes, max %d", len,
			       REQUEST_MAX);

	proto_reader_init(&rd, buf, len);
	err = proto_read_array(&rd, "control request", 2, &n);
	if (err)
		return err;
	if (n == 0)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "control request is an empty array");
	err = proto_read_uint(&rd, "command", &command);
	if (err)
		return err;

	if (command == NODE_CONTROL_STATUS)
		expected = 1;
	else if (command == NODE_CONTROL_NOTIFY)
		expected = 2;
	else
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "command %" PRIu64 " is unknown, expected %d "
			       "(status) or %d (notify)",
			       command, NODE_CONTROL_STATUS,
			       NODE_CONTROL_NOTIFY);
	if (n != expected)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "command %" PRIu64 " has %zu elements, "
			       "expected %zu",
			       command, n, expected);

	req->command = (node_control_command)command;
	if (req->command == NODE_CONTROL_NOTIFY) {
		err = read_ids(&rd, req);
		if (err)
			return err;
	}
	return check_end(&rd, "control request");
}

cm_err node_control_decode_reply(const uint8_t *buf, size_t len,
				 cm_err *code, const uint8_t **text,
				 size_t *text_len)
{
	proto_reader rd;
	uint64_t value = 0;
	size_t n;
	cm_err err;

	if (len > CM_WIRE_MSG_MAX)
		return cm_errf(CM_ERR_TOO_LONG,
			       "control reply is %zu bytes, max %d", len,
			       CM_WIRE_MSG_MAX);

	proto_reader_init(&rd, buf, len);
	err = proto_read_array(&rd, "control reply", 2, &n);
	if (err)
		return err;
	if (n != 2)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "control reply has %zu elements, expected 2 "
			       "(code, text)",
			       n);
	err = proto_read_uint(&rd, "reply code", &value);
	if (err)
		return err;
	if (value >= CM_ERR_COUNT)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "reply code %" PRIu64 " is not a clipmesh "
			       "error code (0..%d)",
			       value, CM_ERR_COUNT - 1);
	err = proto_read_str(&rd, "reply text", proto_reader_left(&rd), text,
			     text_len);
	if (err)
		return err;
	err = check_end(&rd, "control reply");
	if (err)
		return err;

	/* A reason ends up on the user's terminal. */
	if (value != CM_OK) {
		err = proto_text_check("reply reason", *text, *text_len, false);
		if (err)
			return err;
	}
	*code = (cm_err)value;
	return CM_OK;
}

/* --- Node side -------------------------------------------------------- */

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

static void send_frames(node *n, zmq_msg_t *routing_id, const void *data,
			size_t len)
{
	if (zmq_send(n->control, zmq_msg_data(routing_id),
		     zmq_msg_size(routing_id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return;
	zmq_send(n->control, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(n->control, data, len, ZMQ_DONTWAIT);
}

/* Sends [code, text]. A text over the message limit is replaced by a
 * CM_ERR_TOO_LONG reply, because the client could not receive it. */
static void reply(node *n, zmq_msg_t *routing_id, cm_err code,
		  const char *text)
{
	size_t text_len = strlen(text);
	uint8_t *buf = NULL;
	size_t len = 0;
	cm_err err;

	if (text_len > CM_WIRE_MSG_MAX - REPLY_HEAD_MAX) {
		cm_warn(NODE_LOG, "control: reply of %zu bytes is over the "
			"%d-byte message limit", text_len, CM_WIRE_MSG_MAX);
		code = CM_ERR_TOO_LONG;
		text = "reply is over the control message limit";
		text_len = strlen(text);
	}
	err = encode_reply(code, text, text_len, &buf, &len);
	if (err) {
		cm_warn(NODE_LOG, "control: no reply sent: %s",
			cm_err_detail());
		return;
	}
	send_frames(n, routing_id, buf, len);
	free(buf);
}

static void handle_request(node *n, zmq_msg_t *routing_id,
			   const uint8_t *buf, size_t len)
{
	node_control_request req;
	char reason[REASON_MAX + 1];
	char *json;
	cm_err err;

	err = node_control_decode_request(buf, len, &req);
	if (err) {
		cm_strlcpy(reason, cm_err_detail(), sizeof(reason));
		cm_warn(NODE_LOG, "control: invalid request of %zu bytes: %s",
			len, reason);
		reply(n, routing_id, err, reason);
		return;
	}

	if (req.command == NODE_CONTROL_STATUS) {
		json = node_status_json(n);
		if (json)
			reply(n, routing_id, CM_OK, json);
		else
			reply(n, routing_id, CM_ERR_NOMEM,
			      "building the status object failed");
		free(json);
		return;
	}

	cm_debug(NODE_LOG, "control: %zu new records", req.n_ids);
	node_ingest_local(n, req.ids, req.n_ids);
	reply(n, routing_id, CM_OK, REPLY_OK);
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

/*
 * Sends one request and decodes its reply. On CM_OK, *text receives the
 * reply text, malloc'd and NUL-terminated. When the node reports a
 * failure, returns the node's code with its reason as the detail.
 */
static cm_err client_call(client *c, const uint8_t *req, size_t len,
			  char **text)
{
	const uint8_t *reply_text;
	size_t reply_len;
	cm_err code;
	zmq_msg_t msg;
	cm_err err;

	*text = NULL;
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
	err = node_control_decode_reply(zmq_msg_data(&msg),
					zmq_msg_size(&msg), &code,
					&reply_text, &reply_len);
	if (err)
		goto out;
	if (code != CM_OK) {
		err = cm_errf(code, "node: %.*s",
			      (int)(reply_len < REASON_MAX ? reply_len
							   : REASON_MAX),
			      (const char *)reply_text);
		goto out;
	}
	if (memchr(reply_text, '\0', reply_len)) {
		err = cm_errf(CM_ERR_BAD_MESSAGE,
			      "node reply text contains a NUL byte");
		goto out;
	}

	*text = malloc(reply_len + 1);
	if (!*text) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	memcpy(*text, reply_text, reply_len);
	(*text)[reply_len] = '\0';
out:
	zmq_msg_close(&msg);
	return err;
}

cm_err node_notify(const char *home, const uint8_t (*ids)[PROTO_ID_LEN],
		   size_t n)
{
	client c = {0};
	uint8_t *req = NULL;
	size_t req_len = 0;
	char *reply_text = NULL;
	cm_err err;

	err = client_open(home, &c);
	if (err)
		return err;

	for (size_t done = 0; done < n; done += CM_WIRE_IDS_MAX) {
		size_t page = n - done;

		if (page > CM_WIRE_IDS_MAX)
			page = CM_WIRE_IDS_MAX;
		err = encode_notify_request(ids + done, page, &req, &req_len);
		if (err)
			goto out;
		err = client_call(&c, req, req_len, &reply_text);
		if (err)
			goto out;
		if (strcmp(reply_text, REPLY_OK) != 0) {
			err = cm_errf(CM_ERR_BAD_MESSAGE,
				      "node replied \"%.60s\", expected \"%s\"",
				      reply_text, REPLY_OK);
			goto out;
		}
		free(reply_text);
		reply_text = NULL;
		free(req);
		req = NULL;
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
	uint8_t *req = NULL;
	size_t req_len = 0;
	cm_err err;

	*json = NULL;
	err = client_open(home, &c);
	if (err)
		return err;
	err = encode_status_request(&req, &req_len);
	if (!err)
		err = client_call(&c, req, req_len, json);
	free(req);
	client_close(&c);
	return err;
}
