/*
 * push_records.c - a minimal peer that pushes record files to a running
 * clipmesh node, for tests/e2e/test_bad_input.sh.
 *
 * Usage: push_records ADDRESS FILE...
 *
 * Connects to ADDRESS (clipmesh://KEYHEX@HOST:PORT, as `clipmesh id`
 * prints it) as a CURVE client with a fresh key pair. It sends a HELLO
 * with an empty interest, so that the node sends no records back, and
 * waits for the node's HELLO. Then it sends each FILE as the only record
 * of one RECORDS message. The RECORDS framing is written here, not with
 * proto_wire_records(), so that records over the size limit reach the
 * node too. Exits 0 when every message was handed to ZeroMQ, 1 on a
 * failure, 2 on bad usage. Whether the node accepted a record is for the
 * caller to read from `clipmesh status`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "cm_error.h"
#include "cm_util.h"
#include "node.h"
#include "proto_wire.h"

/* Time the node gets to reply to our HELLO, generous for ASan builds. */
#define HELLO_TIMEOUT_MS 10000
/* Time ZeroMQ gets to deliver queued messages when the socket closes. */
#define LINGER_MS 5000
/* Files up to this size are read; larger ones are a usage error. */
#define FILE_MAX (1024 * 1024)

static uint8_t *read_file(const char *path, size_t *len)
{
	uint8_t *buf = malloc(FILE_MAX);
	FILE *f = fopen(path, "rb");

	if (buf == NULL || f == NULL) {
		fprintf(stderr, "push_records: cannot read %s: %s\n", path,
			strerror(errno));
		goto fail;
	}
	*len = fread(buf, 1, FILE_MAX, f);
	if (!feof(f)) {
		fprintf(stderr, "push_records: %s is over %d bytes\n", path,
			FILE_MAX);
		goto fail;
	}
	fclose(f);
	return buf;
fail:
	if (f != NULL)
		fclose(f);
	free(buf);
	return NULL;
}

/* Sends [3, [record]] with the shortest bin header for the record. */
static int send_record(void *sock, const uint8_t *rec, size_t len)
{
	uint8_t *msg = malloc(len + 8);
	size_t n = 0;
	int rc;

	if (msg == NULL)
		return -1;
	msg[n++] = 0x92;
	msg[n++] = PROTO_WIRE_RECORDS;
	msg[n++] = 0x91;
	if (len <= 0xff) {
		msg[n++] = 0xc4;
	} else if (len <= 0xffff) {
		msg[n++] = 0xc5;
		msg[n++] = (uint8_t)(len >> 8);
	} else {
		msg[n++] = 0xc6;
		msg[n++] = (uint8_t)(len >> 24);
		msg[n++] = (uint8_t)(len >> 16);
		msg[n++] = (uint8_t)(len >> 8);
	}
	msg[n++] = (uint8_t)len;
	memcpy(msg + n, rec, len);
	rc = zmq_send(sock, msg, n + len, 0);
	free(msg);
	return rc < 0 ? -1 : 0;
}

/* Sends our HELLO and waits for the node's. */
static int handshake(void *sock, const uint8_t pub[32])
{
	static const uint8_t no_interest[1];
	uint8_t *hello = NULL, reply[4096];
	size_t len;
	int n, timeout = HELLO_TIMEOUT_MS;
	proto_wire_msg m;

	if (proto_wire_hello(PROTO_WIRE_ROLE_CREATOR, false, pub, no_interest,
			     0, cm_now_ms(), &hello, &len) != CM_OK)
		return -1;
	n = zmq_send(sock, hello, len, 0);
	free(hello);
	if (n < 0)
		return -1;
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	for (;;) {
		n = zmq_recv(sock, reply, sizeof(reply), 0);
		if (n < 0) {
			fprintf(stderr, "push_records: no HELLO from the node "
				"in %d ms\n", HELLO_TIMEOUT_MS);
			return -1;
		}
		if ((size_t)n <= sizeof(reply) &&
		    proto_wire_decode(reply, (size_t)n, &m) == CM_OK &&
		    m.type == PROTO_WIRE_HELLO)
			return 0;
	}
}

int main(int argc, char **argv)
{
	char endpoint[256], pub_z85[41], sec_z85[41];
	uint8_t server_key[32], pub[32];
	void *ctx = NULL, *sock = NULL;
	int linger = LINGER_MS, rc = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: push_records ADDRESS FILE...\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	if (node_parse_addr(argv[1], endpoint, server_key) != CM_OK) {
		fprintf(stderr, "push_records: invalid address %s: %s\n",
			argv[1], cm_err_detail());
		return 2;
	}

	ctx = zmq_ctx_new();
	sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
	if (sock == NULL || zmq_curve_keypair(pub_z85, sec_z85) != 0 ||
	    zmq_z85_decode(pub, pub_z85) == NULL ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key, 32) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub_z85, 40) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec_z85, 40) ||
	    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_connect(sock, endpoint)) {
		fprintf(stderr, "push_records: cannot connect to %s: %s\n",
			endpoint, zmq_strerror(errno));
		goto out;
	}
	if (handshake(sock, pub) != 0)
		goto out;

	for (int i = 2; i < argc; i++) {
		size_t len;
		uint8_t *rec = read_file(argv[i], &len);

		if (rec == NULL)
			goto out;
		if (send_record(sock, rec, len) != 0) {
			fprintf(stderr, "push_records: sending %s failed: %s\n",
				argv[i], zmq_strerror(errno));
			free(rec);
			goto out;
		}
		free(rec);
	}
	rc = 0;
out:
	sodium_memzero(sec_z85, sizeof(sec_z85));
	if (sock != NULL)
		zmq_close(sock);
	if (ctx != NULL)
		zmq_ctx_term(ctx);
	return rc;
}
