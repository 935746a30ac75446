/*
 * proto_body.h - a msgpack-c output buffer of fixed size, shared by the
 * body encoder (proto_body.c) and the envelope writer (proto_record.c).
 * Private to proto/.
 */
#ifndef PROTO_BODY_H
#define PROTO_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Output buffer for msgpack_packer_init(pk, &sink, proto_sink_write). */
struct proto_sink {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool full; /* a write did not fit, so it and later ones wrote nothing */
};

/* msgpack-c write callback: appends to the sink, or sets `full` and
 * returns -1 instead of writing past cap. */
int proto_sink_write(void *data, const char *buf, size_t len);

#endif
