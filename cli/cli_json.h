/* cli_json.h - JSON and text renderings of records for the CLI. */
#ifndef CLI_JSON_H
#define CLI_JSON_H

#include "proto_record.h"

/*
 * Returns a new JSON object for a verified record: id, kind, author,
 * created_at (RFC 3339 UTC), created_ms and the fields of its kind (for a
 * clip: product, title, text, rating (null when none), lang, tags, media
 * as a list of hash, size, type). The caller owns the reference.
 */
void *cli_record_json(const proto_signed *rec);

#endif
