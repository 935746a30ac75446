/*
 * corpus_peer.c - the CURVE peer of push_records and recon_records; see
 * corpus_peer.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "corpus_peer.h"
#include "cm_error.h"
#include "cm_util.h"
#include "node.h"
#include "proto_wire.h"

/* Time ZeroMQ gets to deliver queued messages when the socket closes. */
#define LINGER_MS 5000
/* Files up to this size are read; larger ones are a usage error. */
#define FILE_MAX (1024 * 1024)

uint8_t *corpus_peer_read_file(const corpus_peer *p, const char *path,
			       size_t *len)
{
	uint8_t *buf = malloc(FILE_MAX);
	FILE *f = fopen(path, "rb");

	if (buf == NULL || f == NULL) {
		fprintf(stderr, "%s: cannot read %s: %s\n", p->prog, path,
			strerror(errno));
		goto fail;
	}
	*len = fread(buf, 1, FILE_MAX, f);
	if (!feof(f)) {
		fprintf(stderr, "%s: %s is over %d bytes\n", p->prog, path,
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

int corpus_peer_send_record(const corpus_peer *p, const uint8_t *rec,
			    size_t len)
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
	rc = zmq_send(p->sock, msg, n + len, 0);
	free(msg);
	return rc < 0 ? -1 : 0;
}

/* Sends our HELLO and waits for the node's. */
static int handshake(corpus_peer *p)
{
	static const uint8_t no_interest[1];
	uint8_t *hello = NULL, reply[4096];
	size_t len;
	int n, timeout = CORPUS_PEER_HELLO_TIMEOUT_MS;
	proto_wire_msg m;
	proto_wire_hello_info h = {
		.role = PROTO_WIRE_ROLE_CREATOR,
		.node_key = p->pub,
		.interest = no_interest,
		.time_ms = cm_now_ms(),
	};

	if (proto_wire_hello(&h, &hello, &len) != CM_OK)
		return -1;
	n = zmq_send(p->sock, hello, len, 0);
	free(hello);
	if (n < 0)
		return -1;
	zmq_setsockopt(p->sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	for (;;) {
		n = zmq_recv(p->sock, reply, sizeof(reply), 0);
		if (n < 0) {
			fprintf(stderr, "%s: no HELLO from the node in %d ms\n",
				p->prog, CORPUS_PEER_HELLO_TIMEOUT_MS);
			return -1;
		}
		if ((size_t)n <= sizeof(reply) &&
		    proto_wire_decode(reply, (size_t)n, &m) == CM_OK &&
		    m.type == PROTO_WIRE_HELLO)
			return 0;
	}
}

/* Sets pub_z85 and sec_z85 to a fresh key pair or, when CORPUS_PEER_KEY
 * names a file, to the pair in it, writing a fresh one there first when
 * the file does not exist. Returns 0 on success. */
static int load_keys(const corpus_peer *p, char pub_z85[41], char sec_z85[41])
{
	const char *path = getenv("CORPUS_PEER_KEY");
	FILE *f;
	int rc = -1;

	if (path == NULL || *path == '\0')
		return zmq_curve_keypair(pub_z85, sec_z85);
	f = fopen(path, "r");
	if (f != NULL) {
		if (fscanf(f, "%40s %40s", pub_z85, sec_z85) == 2 &&
		    strlen(pub_z85) == 40 && strlen(sec_z85) == 40)
			rc = 0;
		fclose(f);
		if (rc != 0)
			fprintf(stderr, "%s: invalid key file %s: expected two "
				"Z85 keys of 40 characters\n", p->prog, path);
		return rc;
	}
	if (zmq_curve_keypair(pub_z85, sec_z85) != 0)
		return -1;
	f = fopen(path, "w");
	if (f == NULL || fprintf(f, "%s\n%s\n", pub_z85, sec_z85) < 0) {
		fprintf(stderr, "%s: cannot write key file %s: %s\n", p->prog,
			path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

int corpus_peer_open(corpus_peer *p, const char *prog, const char *address)
{
	char endpoint[256], pub_z85[41], sec_z85[41];
	uint8_t server_key[32];
	int linger = LINGER_MS, rc = 1;

	memset(p, 0, sizeof(*p));
	p->prog = prog;
	if (sodium_init() < 0)
		return 1;
	if (node_parse_addr(address, endpoint, server_key) != CM_OK) {
		fprintf(stderr, "%s: invalid address %s: %s\n", prog, address,
			cm_err_detail());
		return 2;
	}

	p->ctx = zmq_ctx_new();
	p->sock = p->ctx ? zmq_socket(p->ctx, ZMQ_DEALER) : NULL;
	if (p->sock == NULL || load_keys(p, pub_z85, sec_z85) != 0 ||
	    zmq_z85_decode(p->pub, pub_z85) == NULL ||
	    zmq_setsockopt(p->sock, ZMQ_CURVE_SERVERKEY, server_key, 32) ||
	    zmq_setsockopt(p->sock, ZMQ_CURVE_PUBLICKEY, pub_z85, 40) ||
	    zmq_setsockopt(p->sock, ZMQ_CURVE_SECRETKEY, sec_z85, 40) ||
	    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_connect(p->sock, endpoint)) {
		fprintf(stderr, "%s: cannot connect to %s: %s\n", prog,
			endpoint, zmq_strerror(errno));
		goto out;
	}
	if (handshake(p) == 0)
		rc = 0;
out:
	sodium_memzero(sec_z85, sizeof(sec_z85));
	if (rc != 0)
		corpus_peer_close(p);
	return rc;
}

void corpus_peer_close(corpus_peer *p)
{
	if (p->sock != NULL)
		zmq_close(p->sock);
	if (p->ctx != NULL)
		zmq_ctx_term(p->ctx);
	p->sock = NULL;
	p->ctx = NULL;
}
