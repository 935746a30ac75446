/*
 * http_record.c - the JSON of a stored record for the API: the object
 * `clipmesh feed --json` prints plus the author's display name and, per
 * media item, its URL and whether the mirror stores all of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "http_internal.h"
#include "proto_json.h"

cm_err http_record_decode(const uint8_t *wire, size_t len,
			  const uint8_t id[PROTO_ID_LEN], proto_signed *out)
{
	char hex[2 * PROTO_ID_LEN + 1];
	cm_err err = proto_record_decode_stored(wire, len, NULL, out);

	if (err)
		return cm_errf(CM_ERR_STORE, "stored record does not decode: "
			       "%s", cm_err_name(err));
	if (id && memcmp(out->id, id, PROTO_ID_LEN) != 0) {
		cm_hex_encode(id, PROTO_ID_LEN, hex);
		return cm_errf(CM_ERR_STORE, "stored record %.16s no longer "
			       "hashes to its id: the store is damaged",
			       hex);
	}
	return CM_OK;
}

/* Returns the display name of author's newest profile (a new string),
 * or null when no profile is stored or it cannot be read. */
static json_t *read_name(store *st, const uint8_t author[PROTO_KEY_LEN])
{
	proto_signed *profile = malloc(sizeof(*profile));
	uint8_t *wire = NULL;
	json_t *name = NULL;
	size_t len;

	if (profile && store_get_profile(st, author, &wire, &len) == CM_OK &&
	    http_record_decode(wire, len, NULL, profile) == CM_OK)
		name = json_string(profile->rec.name);
	free(wire);
	free(profile);
	return name ? name : json_null();
}

/* Returns a new reference to the author's name, cached in `names`. */
static json_t *author_name(store *st, const uint8_t author[PROTO_KEY_LEN],
			   http_names *names)
{
	json_t *name;

	if (names == NULL)
		return read_name(st, author);
	for (size_t i = 0; i < names->n; i++)
		if (memcmp(names->keys[i], author, PROTO_KEY_LEN) == 0)
			return json_incref(names->names[i]);
	name = read_name(st, author);
	if (names->n < HTTP_NAMES_CACHED) {
		memcpy(names->keys[names->n], author, PROTO_KEY_LEN);
		names->names[names->n++] = json_incref(name);
	}
	return name;
}

void http_names_free(http_names *names)
{
	for (size_t i = 0; i < names->n; i++)
		json_decref(names->names[i]);
	names->n = 0;
}

json_t *http_record_json(store *st, const proto_signed *rec,
			 http_names *names)
{
	const proto_record *r = &rec->rec;
	json_t *o = proto_record_json(rec), *media;
	char hex[2 * PROTO_HASH_LEN + 1], url[64 + sizeof(hex)];

	if (o == NULL || r->kind != PROTO_KIND_CLIP)
		return o;
	json_object_set_new(o, "author_name", author_name(st, r->author,
							  names));
	media = json_object_get(o, "media");
	for (size_t i = 0; i < r->n_media; i++) {
		json_t *m = json_array_get(media, i);

		cm_hex_encode(r->media[i].hash, PROTO_HASH_LEN, hex);
		snprintf(url, sizeof(url), "/api/v1/media/%s", hex);
		json_object_set_new(m, "url", json_string(url));
		json_object_set_new(
			m, "complete",
			json_boolean(store_media_complete(st,
							  r->media[i].hash)));
	}
	return o;
}
