/* proto_json.h - JSON objects of verified records (jansson). */
#ifndef PROTO_JSON_H
#define PROTO_JSON_H

#include <jansson.h>

#include "proto_record.h"

/*
 * Returns a new JSON object for a verified record: id, kind, author,
 * created_at (RFC 3339 UTC), created_ms and the fields of its kind (for a
 * clip: product, title, text, rating (null when none), lang, tags, media
 * as a list of hash, size, type; for a retraction: target; for a profile:
 * name, bio). The caller owns the reference; NULL when out of memory.
 */
json_t *proto_record_json(const proto_signed *rec);

#endif
