/*
 * proto_wire.c - encoding and strict decoding of node-to-node messages.
 *
 * Encoding uses msgpack-c's packer, which always picks the shortest form.
 * Decoding uses a small pull reader instead of msgpack_unpack, because the
 * unpacker accepts non-shortest forms and sizes its allocations from the
 * counts that the input claims.
 */
#include "proto_wire.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* A read position inside the message being decoded. */
typedef struct reader {
	const uint8_t *p;
	size_t left;
} reader;

static uint64_t read_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Maps a leading byte of the wrong type to the error code that names the
 * type found. */
static cm_err wrong_type(uint8_t b, const char *field)
{
	cm_err err = CM_ERR_BAD_TYPE;

	if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3))
		err = CM_ERR_NEGATIVE_INT;
	else if (b == 0xca || b == 0xcb)
		err = CM_ERR_FLOAT;
	else if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8))
		err = CM_ERR_EXT;
	return cm_errf(err, "%s expected, found leading byte 0x%02x", field, b);
}

/* Consumes a leading byte plus an n-byte big-endian argument. */
static cm_err read_head(reader *r, size_t n, uint64_t *arg)
{
	if (r->left < 1 + n)
		return cm_errf(CM_ERR_TRUNCATED,
			       "message ends inside a %zu-byte header", 1 + n);
	*arg = read_be(r->p + 1, n);
	r->p += 1 + n;
	r->left -= 1 + n;
	return CM_OK;
}

static cm_err read_uint(reader *r, const char *field, uint64_t *v)
{
	static const uint64_t min_of_width[] = {0, 0x80, 0x100, 0, 0x10000,
						0, 0, 0, 0x100000000};
	size_t width;
	cm_err err;
	uint8_t b;

	if (r->left == 0)
		return cm_errf(CM_ERR_TRUNCATED, "message ends before %s",
			       field);
	b = r->p[0];
	if (b <= 0x7f) {
		*v = b;
		r->p++;
		r->left--;
		return CM_OK;
	}
	if (b < 0xcc || b > 0xcf)
		return wrong_type(b, field);

	width = (size_t)1 << (b - 0xcc);
	err = read_head(r, width, v);
	if (err)
		return err;
	if (*v < min_of_width[width])
		return cm_errf(CM_ERR_NONMINIMAL_INT,
			       "%s %llu not in its shortest form", field,
			       (unsigned long long)*v);
	return CM_OK;
}

/* Reads an array header (fixarray, array16 or array32) in shortest form. */
static cm_err read_array(reader *r, const char *field, uint64_t *n)
{
	cm_err err;
	uint8_t b;

	if (r->left == 0)
		return cm_errf(CM_ERR_TRUNCATED, "message ends before %s",
			       field);
	b = r->p[0];
	if (b >= 0x90 && b <= 0x9f) {
		*n = b & 0x0f;
		r->p++;
		r->left--;
		return CM_OK;
	}
	if (b != 0xdc && b != 0xdd)
		return wrong_type(b, field);

	err = read_head(r, b == 0xdc ? 2 : 4, n);
	if (err)
		return err;
	if (*n < (b == 0xdc ? 16u : 0x10000u))
		return cm_errf(CM_ERR_NONMINIMAL_LEN,
			       "%s count %llu not in its shortest form", field,
			       (unsigned long long)*n);
	return CM_OK;
}

/* Reads a binary of at most `max` bytes. *data points into the input. */
static cm_err read_bin(reader *r, const char *field, size_t max,
		       const uint8_t **data, size_t *n)
{
	static const uint64_t min_of_width[] = {0, 0, 0x100, 0, 0x10000};
	uint64_t claimed = 0;
	size_t width;
	cm_err err;
	uint8_t b;

	if (r->left == 0)
		return cm_errf(CM_ERR_TRUNCATED, "message ends before %s",
			       field);
	b = r->p[0];
	if (b < 0xc4 || b > 0xc6)
		return wrong_type(b, field);

	width = (size_t)1 << (b - 0xc4);
	err = read_head(r, width, &claimed);
	if (err)
		return err;
	if (claimed < min_of_width[width])
		return cm_errf(CM_ERR_NONMINIMAL_LEN,
			       "%s length %llu not in its shortest form", field,
			       (unsigned long long)claimed);
	if (claimed > max)
		return cm_errf(CM_ERR_TOO_LONG,
			       "%s is %llu bytes, limit %zu", field,
			       (unsigned long long)claimed, max);
	if (claimed > r->left)
		return cm_errf(CM_ERR_TRUNCATED,
			       "%s claims %llu bytes, %zu remain", field,
			       (unsigned long long)claimed, r->left);
	*data = r->p;
	*n = (size_t)claimed;
	r->p += claimed;
	r->left -= claimed;
	return CM_OK;
}

static cm_err read_hash(reader *r, const char *field, const uint8_t **hash)
{
	size_t n = 0;
	cm_err err;

	err = read_bin(r, field, PROTO_HASH_LEN, hash, &n);
	if (err)
		return err;
	if (n != PROTO_HASH_LEN)
		return cm_errf(CM_ERR_BAD_MESSAGE, "%s is %zu bytes, not %d",
			       field, n, PROTO_HASH_LEN);
	return CM_OK;
}

/* Reads a binary of 32-byte hashes, 0..max of them. */
static cm_err read_hashes(reader *r, const char *field, size_t max,
			  const uint8_t **hashes, size_t *n)
{
	size_t bytes = 0;
	cm_err err;

	err = read_bin(r, field, max * PROTO_HASH_LEN, hashes, &bytes);
	if (err == CM_ERR_TOO_LONG)
		return cm_errf(CM_ERR_TOO_MANY, "%s holds over %zu hashes",
			       field, max);
	if (err)
		return err;
	if (bytes % PROTO_HASH_LEN)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "%s is %zu bytes, not a multiple of %d", field,
			       bytes, PROTO_HASH_LEN);
	*n = bytes / PROTO_HASH_LEN;
	return CM_OK;
}

static cm_err read_bool(reader *r, const char *field, bool *v)
{
	if (r->left == 0)
		return cm_errf(CM_ERR_TRUNCATED, "message ends before %s",
			       field);
	if (r->p[0] != 0xc2 && r->p[0] != 0xc3)
		return wrong_type(r->p[0], field);
	*v = r->p[0] == 0xc3;
	r->p++;
	r->left--;
	return CM_OK;
}

/* Reads the interest of a HELLO: nil for every author, or an array of
 * 0..CM_WIRE_FOLLOWS_MAX keys. */
static cm_err read_interest(reader *r, proto_wire_msg *m)
{
	uint64_t n;
	cm_err err;

	if (r->left > 0 && r->p[0] == 0xc0) {
		r->p++;
		r->left--;
		m->interest_all = true;
		return CM_OK;
	}
	err = read_array(r, "hello interest", &n);
	if (err)
		return err;
	if (n > CM_WIRE_FOLLOWS_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "hello interest of %llu keys",
			       (unsigned long long)n);
	if (n * PROTO_WIRE_KEY_ENTRY > r->left)
		return cm_errf(CM_ERR_TRUNCATED,
			       "hello interest claims %llu keys, %zu bytes "
			       "remain", (unsigned long long)n, r->left);

	m->interest = r->p;
	m->n_interest = (size_t)n;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *key;

		err = read_hash(r, "hello interest key", &key);
		if (err)
			return err;
	}
	return CM_OK;
}

/* HELLO: [1, version, role, reply, node_key, interest, time,
 * listen_port]. */
static cm_err decode_hello(reader *r, proto_wire_msg *m)
{
	uint64_t role, port;
	cm_err err;

	if ((err = read_uint(r, "hello version", &m->version)) ||
	    (err = read_uint(r, "hello role", &role)) ||
	    (err = read_bool(r, "hello reply flag", &m->reply)) ||
	    (err = read_hash(r, "hello node key", &m->node_key)))
		return err;
	if (role != PROTO_WIRE_ROLE_CREATOR && role != PROTO_WIRE_ROLE_MIRROR)
		return cm_errf(CM_ERR_BAD_MESSAGE, "unknown hello role %llu",
			       (unsigned long long)role);
	m->role = (proto_wire_role)role;

	err = read_interest(r, m);
	if (!err)
		err = read_uint(r, "hello time", &m->time_ms);
	if (!err)
		err = read_uint(r, "hello listen port", &port);
	if (err)
		return err;
	if (port > UINT16_MAX)
		return cm_errf(CM_ERR_BAD_MESSAGE, "hello listen port %llu is "
			       "above 65535", (unsigned long long)port);
	m->listen_port = (uint16_t)port;
	return CM_OK;
}

/* RECORDS: [3, [record, ...]]. */
static cm_err decode_records(reader *r, proto_wire_msg *m)
{
	uint64_t n;
	cm_err err;

	err = read_array(r, "record list", &n);
	if (err)
		return err;
	if (n == 0)
		return cm_errf(CM_ERR_BAD_MESSAGE, "empty record list");
	if (n > CM_WIRE_BATCH_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "record list of %llu, limit %d",
			       (unsigned long long)n, CM_WIRE_BATCH_MAX);

	for (size_t i = 0; i < n; i++) {
		err = read_bin(r, "record", CM_RECORD_MAX, &m->records[i],
			       &m->record_lens[i]);
		if (err)
			return err;
	}
	m->n_records = (size_t)n;
	return CM_OK;
}

/* HAVE and WANT: [4 or 5, ids]. */
static cm_err decode_ids(reader *r, proto_wire_msg *m)
{
	cm_err err;

	err = read_hashes(r, "id list", CM_WIRE_IDS_MAX, &m->ids, &m->n_ids);
	if (err)
		return err;
	if (m->n_ids == 0)
		return cm_errf(CM_ERR_BAD_MESSAGE, "empty id list");
	return CM_OK;
}

/* MANIFEST: [7, root, size, chunk hashes]. */
static cm_err decode_manifest(reader *r, proto_wire_msg *m)
{
	cm_err err;

	if ((err = read_hash(r, "manifest root", &m->root)) ||
	    (err = read_uint(r, "manifest size", &m->size)) ||
	    (err = read_hashes(r, "manifest chunk list",
			       CM_MANIFEST_CHUNKS_MAX, &m->chunks,
			       &m->n_chunks)))
		return err;
	if (m->size > CM_MEDIA_SIZE_MAX)
		return cm_errf(CM_ERR_TOO_LONG, "manifest size %llu",
			       (unsigned long long)m->size);
	return CM_OK;
}

static cm_err read_index(reader *r, const char *field, uint64_t *index)
{
	cm_err err;

	err = read_uint(r, field, index);
	if (err)
		return err;
	if (*index >= CM_MANIFEST_CHUNKS_MAX)
		return cm_errf(CM_ERR_BAD_MESSAGE, "%s %llu out of range",
			       field, (unsigned long long)*index);
	return CM_OK;
}

/* CHUNK_REQ: [8, root, index]. */
static cm_err decode_chunk_req(reader *r, proto_wire_msg *m)
{
	cm_err err;

	err = read_hash(r, "chunk root", &m->root);
	if (err)
		return err;
	return read_index(r, "chunk index", &m->index);
}

/* CHUNK: [9, root, index, data]. */
static cm_err decode_chunk(reader *r, proto_wire_msg *m)
{
	cm_err err;

	if ((err = read_hash(r, "chunk root", &m->root)) ||
	    (err = read_index(r, "chunk index", &m->index)))
		return err;
	return read_bin(r, "chunk data", CM_CHUNK_SIZE, &m->data,
			&m->data_len);
}

/* NOT_FOUND: [10, missing, root, index]. */
static cm_err decode_not_found(reader *r, proto_wire_msg *m)
{
	uint64_t missing;
	cm_err err;

	if ((err = read_uint(r, "not-found kind", &missing)) ||
	    (err = read_hash(r, "not-found root", &m->root)) ||
	    (err = read_index(r, "not-found index", &m->index)))
		return err;
	if (missing != PROTO_WIRE_MISSING_MANIFEST &&
	    missing != PROTO_WIRE_MISSING_CHUNK)
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "unknown not-found kind %llu",
			       (unsigned long long)missing);
	m->missing = (proto_wire_missing)missing;
	return CM_OK;
}

/* RECON_START: [12, session, salt, fp_len, hash_len, authors, payload]. */
static cm_err decode_recon_start(reader *r, proto_wire_msg *m)
{
	size_t salt_len = 0;
	cm_err err;

	if ((err = read_uint(r, "session", &m->session)) ||
	    (err = read_bin(r, "salt", PROTO_RECON_SALT_LEN, &m->salt,
			    &salt_len)) ||
	    (err = read_uint(r, "fingerprint size", &m->fp_len)) ||
	    (err = read_uint(r, "short hash size", &m->hash_len)))
		return err;
	if (salt_len != PROTO_RECON_SALT_LEN)
		return cm_errf(CM_ERR_BAD_MESSAGE, "salt is %zu bytes, not %d",
			       salt_len, PROTO_RECON_SALT_LEN);
	if (m->fp_len < PROTO_RECON_FP_MIN || m->fp_len > PROTO_RECON_FP_MAX ||
	    m->hash_len < PROTO_RECON_HASH_MIN ||
	    m->hash_len > PROTO_RECON_HASH_MAX)
		return cm_errf(CM_ERR_BAD_MESSAGE, "fingerprint size %llu or "
			       "short hash size %llu out of range",
			       (unsigned long long)m->fp_len,
			       (unsigned long long)m->hash_len);

	if (r->left > 0 && r->p[0] == 0xc0) {
		r->p++;
		r->left--;
		m->recon_all = true;
	} else {
		err = read_hashes(r, "author list", CM_WIRE_FOLLOWS_MAX,
				  &m->authors, &m->n_authors);
		if (err)
			return err;
		if (m->n_authors == 0)
			return cm_errf(CM_ERR_BAD_MESSAGE, "empty author list");
	}
	return read_bin(r, "payload", CM_WIRE_MSG_MAX, &m->payload,
			&m->payload_len);
}

/* RECON: [13, session, round, payload]. */
static cm_err decode_recon(reader *r, proto_wire_msg *m)
{
	cm_err err;

	if ((err = read_uint(r, "session", &m->session)) ||
	    (err = read_uint(r, "round", &m->round)))
		return err;
	if (m->round == 0 || m->round > CM_RECON_ROUNDS_MAX)
		return cm_errf(CM_ERR_BAD_MESSAGE, "round %llu out of range",
			       (unsigned long long)m->round);
	return read_bin(r, "payload", CM_WIRE_MSG_MAX, &m->payload,
			&m->payload_len);
}

/* One PEERS entry: [key, ip bin of 4 or 16 bytes, port uint]. */
static cm_err decode_peer(reader *r, proto_wire_peer *p)
{
	const uint8_t *ip;
	uint64_t n, port;
	size_t ip_len;
	cm_err err;

	err = read_array(r, "peer entry", &n);
	if (err)
		return err;
	if (n != 3)
		return cm_errf(CM_ERR_BAD_MESSAGE, "peer entry of %llu "
			       "elements, expected 3", (unsigned long long)n);
	if ((err = read_hash(r, "peer key", &p->key)) ||
	    (err = read_bin(r, "peer ip", PROTO_WIRE_IPV6_LEN, &ip, &ip_len)) ||
	    (err = read_uint(r, "peer port", &port)))
		return err;
	if (ip_len != PROTO_WIRE_IPV4_LEN && ip_len != PROTO_WIRE_IPV6_LEN)
		return cm_errf(CM_ERR_BAD_MESSAGE, "peer ip of %zu bytes, "
			       "expected 4 or 16", ip_len);
	if (port > UINT16_MAX)
		return cm_errf(CM_ERR_BAD_MESSAGE, "peer port %llu over 65535",
			       (unsigned long long)port);
	memcpy(p->ip, ip, ip_len);
	p->ip_len = ip_len;
	p->port = (uint16_t)port;
	return CM_OK;
}

/* PEERS: [15, [entry, ...]]. */
static cm_err decode_peers(reader *r, proto_wire_msg *m)
{
	uint64_t n;
	cm_err err;

	err = read_array(r, "peer list", &n);
	if (err)
		return err;
	if (n > CM_PEX_ENTRIES_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "peer list of %llu, limit %d",
			       (unsigned long long)n, CM_PEX_ENTRIES_MAX);
	for (size_t i = 0; i < n; i++) {
		err = decode_peer(r, &m->peers[i]);
		if (err)
			return err;
	}
	m->n_peers = (size_t)n;
	return CM_OK;
}

/* Number of array elements, type included, of each message type. */
static size_t element_count(uint64_t type)
{
	switch (type) {
	case PROTO_WIRE_PEERS_REQ:
	case PROTO_WIRE_GOODBYE:
		return 1;
	case PROTO_WIRE_HELLO:
		return 8;
	case PROTO_WIRE_PEERS:
	case PROTO_WIRE_PING:
	case PROTO_WIRE_RECORDS:
	case PROTO_WIRE_HAVE:
	case PROTO_WIRE_WANT:
	case PROTO_WIRE_MANIFEST_REQ:
		return 2;
	case PROTO_WIRE_CHUNK_REQ:
		return 3;
	case PROTO_WIRE_MANIFEST:
	case PROTO_WIRE_CHUNK:
	case PROTO_WIRE_NOT_FOUND:
	case PROTO_WIRE_RECON:
		return 4;
	case PROTO_WIRE_RECON_START:
		return 7;
	default:
		return 0;
	}
}

static cm_err decode_body(reader *r, proto_wire_msg *m)
{
	switch (m->type) {
	case PROTO_WIRE_HELLO:
		return decode_hello(r, m);
	case PROTO_WIRE_PING:
		return read_uint(r, "ping time", &m->time_ms);
	case PROTO_WIRE_RECORDS:
		return decode_records(r, m);
	case PROTO_WIRE_HAVE:
	case PROTO_WIRE_WANT:
		return decode_ids(r, m);
	case PROTO_WIRE_MANIFEST_REQ:
		return read_hash(r, "manifest root", &m->root);
	case PROTO_WIRE_MANIFEST:
		return decode_manifest(r, m);
	case PROTO_WIRE_CHUNK_REQ:
		return decode_chunk_req(r, m);
	case PROTO_WIRE_CHUNK:
		return decode_chunk(r, m);
	case PROTO_WIRE_NOT_FOUND:
		return decode_not_found(r, m);
	case PROTO_WIRE_RECON_START:
		return decode_recon_start(r, m);
	case PROTO_WIRE_RECON:
		return decode_recon(r, m);
	case PROTO_WIRE_PEERS_REQ:
	case PROTO_WIRE_GOODBYE:
		return CM_OK;
	case PROTO_WIRE_PEERS:
		return decode_peers(r, m);
	}
	return cm_errf(CM_ERR_BAD_MESSAGE, "unknown message type %d",
		       (int)m->type);
}

cm_err proto_wire_decode(const uint8_t *buf, size_t len, proto_wire_msg *m)
{
	reader r = {buf, len};
	uint64_t n = 0, type = 0;
	cm_err err;

	memset(m, 0, sizeof(*m));
	if (len > CM_WIRE_MSG_MAX)
		return cm_errf(CM_ERR_TOO_LONG,
			       "message of %zu bytes, limit %d", len,
			       CM_WIRE_MSG_MAX);

	if ((err = read_array(&r, "message array", &n)))
		return err;
	if (n == 0)
		return cm_errf(CM_ERR_BAD_MESSAGE, "empty message array");
	if ((err = read_uint(&r, "message type", &type)))
		return err;
	if (element_count(type) == 0)
		return cm_errf(CM_ERR_BAD_MESSAGE, "unknown message type %llu",
			       (unsigned long long)type);
	if (n != element_count(type))
		return cm_errf(CM_ERR_BAD_MESSAGE,
			       "%s message of %llu elements, expected %zu",
			       proto_wire_type_name((proto_wire_type)type),
			       (unsigned long long)n, element_count(type));

	m->type = (proto_wire_type)type;
	err = decode_body(&r, m);
	if (err)
		return err;
	if (r.left)
		return cm_errf(CM_ERR_TRAILING, "%zu bytes after the message",
			       r.left);
	return CM_OK;
}

const uint8_t *proto_wire_interest_key(const proto_wire_msg *m, size_t i)
{
	return m->interest + i * PROTO_WIRE_KEY_ENTRY + 2;
}

const char *proto_wire_type_name(proto_wire_type type)
{
	switch (type) {
	case PROTO_WIRE_HELLO:
		return "hello";
	case PROTO_WIRE_PING:
		return "ping";
	case PROTO_WIRE_RECORDS:
		return "records";
	case PROTO_WIRE_HAVE:
		return "have";
	case PROTO_WIRE_WANT:
		return "want";
	case PROTO_WIRE_MANIFEST_REQ:
		return "manifest_req";
	case PROTO_WIRE_MANIFEST:
		return "manifest";
	case PROTO_WIRE_CHUNK_REQ:
		return "chunk_req";
	case PROTO_WIRE_CHUNK:
		return "chunk";
	case PROTO_WIRE_NOT_FOUND:
		return "not_found";
	case PROTO_WIRE_RECON_START:
		return "recon_start";
	case PROTO_WIRE_RECON:
		return "recon";
	case PROTO_WIRE_PEERS_REQ:
		return "peers_req";
	case PROTO_WIRE_PEERS:
		return "peers";
	case PROTO_WIRE_GOODBYE:
		return "goodbye";
	}
	return "unknown";
}

/* --- Encoding --------------------------------------------------------- */

/* A packer writing into a growing malloc'd buffer. Every msgpack_pack_*
 * call returns non-zero only when that buffer could not grow. */
typedef struct writer {
	msgpack_sbuffer buf;
	msgpack_packer pk;
	int failed;
} writer;

static void writer_start(writer *w, proto_wire_type type, size_t n)
{
	msgpack_sbuffer_init(&w->buf);
	msgpack_packer_init(&w->pk, &w->buf, msgpack_sbuffer_write);
	w->failed = msgpack_pack_array(&w->pk, n);
	w->failed |= msgpack_pack_uint64(&w->pk, type);
}

static void write_bin(writer *w, const uint8_t *data, size_t len)
{
	w->failed |= msgpack_pack_bin(&w->pk, len);
	w->failed |= msgpack_pack_bin_body(&w->pk, data, len);
}

static cm_err writer_finish(writer *w, uint8_t **out, size_t *len)
{
	if (w->failed) {
		msgpack_sbuffer_destroy(&w->buf);
		return CM_ERR_NOMEM;
	}
	*len = w->buf.size;
	*out = (uint8_t *)msgpack_sbuffer_release(&w->buf);
	return CM_OK;
}

cm_err proto_wire_hello(const proto_wire_hello_info *h, uint8_t **out,
			size_t *len)
{
	writer w;

	if (h->interest && h->n_interest > CM_WIRE_FOLLOWS_MAX)
		return cm_errf(CM_ERR_USAGE, "interest of %zu keys, limit %d",
			       h->n_interest, CM_WIRE_FOLLOWS_MAX);

	writer_start(&w, PROTO_WIRE_HELLO, 8);
	w.failed |= msgpack_pack_uint64(&w.pk, PROTO_WIRE_VERSION);
	w.failed |= msgpack_pack_uint64(&w.pk, h->role);
	w.failed |= h->reply ? msgpack_pack_true(&w.pk)
			     : msgpack_pack_false(&w.pk);
	write_bin(&w, h->node_key, 32);
	if (!h->interest) {
		w.failed |= msgpack_pack_nil(&w.pk);
	} else {
		w.failed |= msgpack_pack_array(&w.pk, h->n_interest);
		for (size_t i = 0; i < h->n_interest; i++)
			write_bin(&w, h->interest + i * PROTO_KEY_LEN,
				  PROTO_KEY_LEN);
	}
	w.failed |= msgpack_pack_uint64(&w.pk, h->time_ms);
	w.failed |= msgpack_pack_uint64(&w.pk, h->listen_port);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_ping(uint64_t time_ms, uint8_t **out, size_t *len)
{
	writer w;

	writer_start(&w, PROTO_WIRE_PING, 2);
	w.failed |= msgpack_pack_uint64(&w.pk, time_ms);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_records(const uint8_t *const *records, const size_t *lens,
			  size_t n, uint8_t **out, size_t *len)
{
	writer w;

	if (n == 0 || n > CM_WIRE_BATCH_MAX)
		return cm_errf(CM_ERR_USAGE, "record batch of %zu, limit %d",
			       n, CM_WIRE_BATCH_MAX);
	for (size_t i = 0; i < n; i++)
		if (lens[i] > CM_RECORD_MAX)
			return cm_errf(CM_ERR_USAGE, "record of %zu bytes",
				       lens[i]);

	writer_start(&w, PROTO_WIRE_RECORDS, 2);
	w.failed |= msgpack_pack_array(&w.pk, n);
	for (size_t i = 0; i < n; i++)
		write_bin(&w, records[i], lens[i]);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_ids(proto_wire_type type, const uint8_t *ids, size_t n,
		      uint8_t **out, size_t *len)
{
	writer w;

	if (type != PROTO_WIRE_HAVE && type != PROTO_WIRE_WANT)
		return cm_errf(CM_ERR_USAGE, "message type %d carries no ids",
			       (int)type);
	if (n == 0 || n > CM_WIRE_IDS_MAX)
		return cm_errf(CM_ERR_USAGE, "id list of %zu, limit %d", n,
			       CM_WIRE_IDS_MAX);

	writer_start(&w, type, 2);
	write_bin(&w, ids, n * PROTO_ID_LEN);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_manifest_req(const uint8_t root[PROTO_HASH_LEN],
			       uint8_t **out, size_t *len)
{
	writer w;

	writer_start(&w, PROTO_WIRE_MANIFEST_REQ, 2);
	write_bin(&w, root, PROTO_HASH_LEN);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_manifest(const uint8_t root[PROTO_HASH_LEN], uint64_t size,
			   const uint8_t *chunks, size_t n, uint8_t **out,
			   size_t *len)
{
	writer w;

	if (size > CM_MEDIA_SIZE_MAX || n > CM_MANIFEST_CHUNKS_MAX)
		return cm_errf(CM_ERR_USAGE,
			       "manifest of %llu bytes in %zu chunks",
			       (unsigned long long)size, n);

	writer_start(&w, PROTO_WIRE_MANIFEST, 4);
	write_bin(&w, root, PROTO_HASH_LEN);
	w.failed |= msgpack_pack_uint64(&w.pk, size);
	write_bin(&w, chunks, n * PROTO_HASH_LEN);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_chunk_req(const uint8_t root[PROTO_HASH_LEN],
			    uint64_t index, uint8_t **out, size_t *len)
{
	writer w;

	if (index >= CM_MANIFEST_CHUNKS_MAX)
		return cm_errf(CM_ERR_USAGE, "chunk index %llu",
			       (unsigned long long)index);

	writer_start(&w, PROTO_WIRE_CHUNK_REQ, 3);
	write_bin(&w, root, PROTO_HASH_LEN);
	w.failed |= msgpack_pack_uint64(&w.pk, index);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_chunk_head(const uint8_t root[PROTO_HASH_LEN],
			     uint64_t index, size_t data_len,
			     uint8_t head[PROTO_WIRE_CHUNK_HEAD_MAX],
			     size_t *len)
{
	writer w;
	cm_err err = CM_OK;

	if (index >= CM_MANIFEST_CHUNKS_MAX || data_len > CM_CHUNK_SIZE)
		return cm_errf(CM_ERR_USAGE, "chunk %llu of %zu bytes",
			       (unsigned long long)index, data_len);

	writer_start(&w, PROTO_WIRE_CHUNK, 4);
	write_bin(&w, root, PROTO_HASH_LEN);
	w.failed |= msgpack_pack_uint64(&w.pk, index);
	w.failed |= msgpack_pack_bin(&w.pk, data_len);
	if (w.failed)
		err = CM_ERR_NOMEM;
	else if (w.buf.size > PROTO_WIRE_CHUNK_HEAD_MAX)
		err = cm_errf(CM_ERR_USAGE, "CHUNK head of %zu bytes",
			      w.buf.size);
	if (!err) {
		memcpy(head, w.buf.data, w.buf.size);
		*len = w.buf.size;
	}
	msgpack_sbuffer_destroy(&w.buf);
	return err;
}

cm_err proto_wire_chunk(const uint8_t root[PROTO_HASH_LEN], uint64_t index,
			const uint8_t *data, size_t data_len, uint8_t **out,
			size_t *len)
{
	uint8_t head[PROTO_WIRE_CHUNK_HEAD_MAX];
	size_t head_len = 0;
	cm_err err;

	err = proto_wire_chunk_head(root, index, data_len, head, &head_len);
	if (err)
		return err;
	*out = malloc(head_len + data_len);
	if (!*out)
		return CM_ERR_NOMEM;
	memcpy(*out, head, head_len);
	if (data_len > 0)
		memcpy(*out + head_len, data, data_len);
	*len = head_len + data_len;
	return CM_OK;
}

cm_err proto_wire_not_found(proto_wire_missing missing,
			    const uint8_t root[PROTO_HASH_LEN],
			    uint64_t index, uint8_t **out, size_t *len)
{
	writer w;

	if (index >= CM_MANIFEST_CHUNKS_MAX)
		return cm_errf(CM_ERR_USAGE, "chunk index %llu",
			       (unsigned long long)index);

	writer_start(&w, PROTO_WIRE_NOT_FOUND, 4);
	w.failed |= msgpack_pack_uint64(&w.pk, missing);
	write_bin(&w, root, PROTO_HASH_LEN);
	w.failed |= msgpack_pack_uint64(&w.pk, index);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_recon_start(uint64_t session,
			      const uint8_t salt[PROTO_RECON_SALT_LEN],
			      size_t fp_len, size_t hash_len,
			      const uint8_t *authors, size_t n_authors,
			      const uint8_t *payload, size_t payload_len,
			      uint8_t **out, size_t *len)
{
	writer w;

	if (fp_len < PROTO_RECON_FP_MIN || fp_len > PROTO_RECON_FP_MAX ||
	    hash_len < PROTO_RECON_HASH_MIN ||
	    hash_len > PROTO_RECON_HASH_MAX)
		return cm_errf(CM_ERR_USAGE, "fingerprint size %zu or short "
			       "hash size %zu out of range", fp_len, hash_len);
	if (authors && (n_authors == 0 || n_authors > CM_WIRE_FOLLOWS_MAX))
		return cm_errf(CM_ERR_USAGE, "author list of %zu, limit %d",
			       n_authors, CM_WIRE_FOLLOWS_MAX);
	if (payload_len > CM_WIRE_MSG_MAX)
		return cm_errf(CM_ERR_USAGE, "payload of %zu bytes",
			       payload_len);

	writer_start(&w, PROTO_WIRE_RECON_START, 7);
	w.failed |= msgpack_pack_uint64(&w.pk, session);
	write_bin(&w, salt, PROTO_RECON_SALT_LEN);
	w.failed |= msgpack_pack_uint64(&w.pk, fp_len);
	w.failed |= msgpack_pack_uint64(&w.pk, hash_len);
	if (authors)
		write_bin(&w, authors, n_authors * PROTO_KEY_LEN);
	else
		w.failed |= msgpack_pack_nil(&w.pk);
	write_bin(&w, payload, payload_len);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_recon(uint64_t session, uint64_t round,
			const uint8_t *payload, size_t payload_len,
			uint8_t **out, size_t *len)
{
	writer w;

	if (round == 0 || round > CM_RECON_ROUNDS_MAX)
		return cm_errf(CM_ERR_USAGE, "round %llu out of range",
			       (unsigned long long)round);
	if (payload_len > CM_WIRE_MSG_MAX)
		return cm_errf(CM_ERR_USAGE, "payload of %zu bytes",
			       payload_len);

	writer_start(&w, PROTO_WIRE_RECON, 4);
	w.failed |= msgpack_pack_uint64(&w.pk, session);
	w.failed |= msgpack_pack_uint64(&w.pk, round);
	write_bin(&w, payload, payload_len);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_peers_req(uint8_t **out, size_t *len)
{
	writer w;

	writer_start(&w, PROTO_WIRE_PEERS_REQ, 1);
	return writer_finish(&w, out, len);
}

cm_err proto_wire_peers(const proto_wire_peer *peers, size_t n, uint8_t **out,
			size_t *len)
{
	writer w;

	if (n > CM_PEX_ENTRIES_MAX)
		return cm_errf(CM_ERR_USAGE, "peer list of %zu, limit %d", n,
			       CM_PEX_ENTRIES_MAX);
	for (size_t i = 0; i < n; i++)
		if (peers[i].ip_len != PROTO_WIRE_IPV4_LEN &&
		    peers[i].ip_len != PROTO_WIRE_IPV6_LEN)
			return cm_errf(CM_ERR_USAGE, "peer ip of %zu bytes",
				       peers[i].ip_len);

	writer_start(&w, PROTO_WIRE_PEERS, 2);
	w.failed |= msgpack_pack_array(&w.pk, n);
	for (size_t i = 0; i < n; i++) {
		w.failed |= msgpack_pack_array(&w.pk, 3);
		write_bin(&w, peers[i].key, PROTO_KEY_LEN);
		write_bin(&w, peers[i].ip, peers[i].ip_len);
		w.failed |= msgpack_pack_uint64(&w.pk, peers[i].port);
	}
	return writer_finish(&w, out, len);
}

cm_err proto_wire_goodbye(uint8_t **out, size_t *len)
{
	writer w;

	writer_start(&w, PROTO_WIRE_GOODBYE, 1);
	return writer_finish(&w, out, len);
}
