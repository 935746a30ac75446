/*
 * node_media_serve.c - serving the manifest and chunk requests of
 * peers from the store. A node serves every chunk it has stored, so a
 * node still fetching a media file already serves its stored chunks.
 */
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "node_internal.h"

static void send_not_found(node *n, node_link *l, proto_wire_missing what,
			   const uint8_t *root, uint64_t index)
{
	uint8_t *buf;
	size_t len;

	if (proto_wire_not_found(what, root, index, &buf, &len) == CM_OK)
		node_link_send(n, l, buf, len);
}

static void serve_manifest(node *n, node_link *l, const uint8_t *root)
{
	uint8_t (*chunks)[PROTO_HASH_LEN] = NULL;
	uint64_t size;
	size_t count, len;
	uint8_t *buf;

	if (store_manifest_get(n->st, root, &size, &chunks, &count)) {
		send_not_found(n, l, PROTO_WIRE_MISSING_MANIFEST, root, 0);
		return;
	}
	if (proto_wire_manifest(root, size, (const uint8_t *)chunks, count,
				&buf, &len) == CM_OK)
		node_link_send(n, l, buf, len);
	free(chunks);
}

/* Keeps the manifest of the media served last, because peers ask for
 * its chunks one by one. */
static bool served_manifest(node *n, const uint8_t *root)
{
	uint8_t (*chunks)[PROTO_HASH_LEN];
	uint64_t size;
	size_t count;

	if (n->served_chunks &&
	    memcmp(n->served_root, root, PROTO_HASH_LEN) == 0)
		return true;
	if (store_manifest_get(n->st, root, &size, &chunks, &count))
		return false;
	free(n->served_chunks);
	n->served_chunks = chunks;
	n->served_n = count;
	n->served_size = size;
	memcpy(n->served_root, root, PROTO_HASH_LEN);
	return true;
}

/* Returns the size of chunk `index` of the media served last, whose
 * manifest served_manifest loaded. */
static size_t served_chunk_size(const node *n, uint64_t index)
{
	uint64_t rest = n->served_size - index * (uint64_t)CM_CHUNK_SIZE;

	return rest < CM_CHUNK_SIZE ? (size_t)rest : CM_CHUNK_SIZE;
}

/* Sends chunk `index` of `root`. The chunk is read from the store straight
 * into the message after its head, and ZeroMQ sends the message without
 * a copy. */
static void serve_chunk(node *n, node_link *l, const uint8_t *root,
			uint64_t index)
{
	uint8_t head[PROTO_WIRE_CHUNK_HEAD_MAX];
	size_t size, head_len, len = 0;
	zmq_msg_t msg;
	uint8_t *data;

	if (!served_manifest(n, root) || index >= n->served_n) {
		send_not_found(n, l, PROTO_WIRE_MISSING_CHUNK, root, index);
		return;
	}
	size = served_chunk_size(n, index);
	if (proto_wire_chunk_head(root, index, size, head, &head_len) ||
	    zmq_msg_init_size(&msg, head_len + size) != 0)
		return;
	data = zmq_msg_data(&msg);
	memcpy(data, head, head_len);
	if (store_chunk_get_cold(n->st, n->served_chunks[index],
				 data + head_len, size, &len) ||
	    len != size) {
		zmq_msg_close(&msg);
		send_not_found(n, l, PROTO_WIRE_MISSING_CHUNK, root, index);
		return;
	}
	node_link_send_msg(n, l, &msg);
}

void node_media_serve(node *n, node_link *l, const proto_wire_msg *m)
{
	if (m->type == PROTO_WIRE_MANIFEST_REQ)
		serve_manifest(n, l, m->root);
	else if (m->type == PROTO_WIRE_CHUNK_REQ)
		serve_chunk(n, l, m->root, m->index);
}
