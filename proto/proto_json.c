/*
 * proto_json.c - JSON objects of verified records, shared by the CLI
 * (feed --json, show) and the HTTP API.
 */
#include "proto_json.h"

#include "cm_util.h"

static void set_hex(json_t *o, const char *key, const uint8_t *bin,
		    size_t len)
{
	char hex[2 * 64 + 1];

	cm_hex_encode(bin, len, hex);
	json_object_set_new(o, key, json_string(hex));
}

static void set_optional(json_t *o, const char *key, const char *value)
{
	json_object_set_new(o, key, *value ? json_string(value) : json_null());
}

static void add_clip_fields(json_t *o, const proto_record *r)
{
	json_t *tags = json_array();
	json_t *media = json_array();

	json_object_set_new(o, "product", json_string(r->product));
	json_object_set_new(o, "title", json_string(r->title));
	set_optional(o, "text", r->text);
	json_object_set_new(o, "rating",
			    r->rating ? json_integer(r->rating) : json_null());
	set_optional(o, "lang", r->lang);
	for (size_t i = 0; i < r->n_tags; i++)
		json_array_append_new(tags, json_string(r->tags[i]));
	json_object_set_new(o, "tags", tags);
	for (size_t i = 0; i < r->n_media; i++) {
		json_t *m = json_object();

		set_hex(m, "hash", r->media[i].hash, PROTO_HASH_LEN);
		json_object_set_new(m, "size",
				    json_integer((json_int_t)r->media[i].size));
		json_object_set_new(m, "type", json_string(r->media[i].type));
		json_array_append_new(media, m);
	}
	json_object_set_new(o, "media", media);
}

json_t *proto_record_json(const proto_signed *rec)
{
	const proto_record *r = &rec->rec;
	json_t *o = json_object();
	char when[32];

	set_hex(o, "id", rec->id, PROTO_ID_LEN);
	json_object_set_new(o, "kind", json_string(proto_kind_name(r->kind)));
	set_hex(o, "author", r->author, PROTO_KEY_LEN);
	cm_time_rfc3339(r->created_ms, when);
	json_object_set_new(o, "created_at", json_string(when));
	json_object_set_new(o, "created_ms",
			    json_integer((json_int_t)r->created_ms));
	switch (r->kind) {
	case PROTO_KIND_CLIP:
		add_clip_fields(o, r);
		break;
	case PROTO_KIND_RETRACT:
		set_hex(o, "target", r->target, PROTO_ID_LEN);
		break;
	case PROTO_KIND_PROFILE:
		json_object_set_new(o, "name", json_string(r->name));
		set_optional(o, "bio", r->bio);
		break;
	}
	return o;
}
