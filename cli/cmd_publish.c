/* cmd_publish.c - commands that sign new records: publish, retract,
 * profile set. Each stores the record in one transaction and then tells a
 * running node, which gossips it at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_media.h"
#include "cm_log.h"
#include "cm_util.h"
#include "proto_product.h"

enum {
	OPT_AS = 1,
	OPT_PRODUCT,
	OPT_TITLE,
	OPT_RATING,
	OPT_TEXT,
	OPT_TAG,
	OPT_LANG,
	OPT_NAME,
	OPT_BIO,
	OPT_PASS_FILE,
};

typedef struct sign_opts {
	const cli_ctx *ctx;
	const char *as, *product, *title, *rating, *text, *lang;
	const char *name, *bio;
	const char *pass_file;
	const char *tags[CM_TAGS_MAX];
	size_t n_tags;
} sign_opts;

static int sign_opt(void *state, int key, const char *value)
{
	sign_opts *o = state;

	switch (key) {
	case OPT_AS: o->as = value; break;
	case OPT_PRODUCT: o->product = value; break;
	case OPT_TITLE: o->title = value; break;
	case OPT_RATING: o->rating = value; break;
	case OPT_TEXT: o->text = value; break;
	case OPT_LANG: o->lang = value; break;
	case OPT_NAME: o->name = value; break;
	case OPT_BIO: o->bio = value; break;
	case OPT_PASS_FILE: o->pass_file = value; break;
	case OPT_TAG:
		if (o->n_tags == CM_TAGS_MAX)
			return cli_usage_error(o->ctx,
					       "too many --tag options: at "
					       "most %d",
					       CM_TAGS_MAX);
		o->tags[o->n_tags++] = value;
		break;
	}
	return -1;
}

/* Copies a text option into a record field, rejecting over-long values. */
static int copy_field(const cli_ctx *ctx, const char *option,
		      const char *value, char *field, size_t max)
{
	if (strlen(value) > max)
		return cli_usage_error(ctx,
				       "--%s is %zu bytes, max %zu: shorten it",
				       option, strlen(value), max);
	memcpy(field, value, strlen(value) + 1);
	return CLI_OK;
}

/* Fills the clip fields of r from the options; sorts and dedupes tags. */
static int fill_clip(const sign_opts *o, proto_record *r)
{
	const cli_ctx *ctx = o->ctx;
	uint64_t rating;
	int rc;

	if (o->as == NULL || o->product == NULL || o->title == NULL)
		return cli_usage_error(ctx, "--as, --product and --title are "
					    "required");
	cm_err_clear();
	if (proto_product_check(o->product) != CM_OK)
		return cli_usage_error(ctx, "invalid --product '%s': %s",
				       o->product, cm_err_detail());
	if (o->rating != NULL) {
		if (!cm_parse_u64(o->rating, &rating) ||
		    rating < CM_RATING_MIN || rating > CM_RATING_MAX)
			return cli_usage_error(ctx,
					       "invalid --rating '%s': give a "
					       "whole number from %d to %d",
					       o->rating, CM_RATING_MIN,
					       CM_RATING_MAX);
		r->rating = (unsigned)rating;
	}
	if ((rc = copy_field(ctx, "product", o->product, r->product,
			     CM_PRODUCT_MAX)) ||
	    (rc = copy_field(ctx, "title", o->title, r->title, CM_TITLE_MAX)))
		return rc;
	if (o->text && (rc = copy_field(ctx, "text", o->text, r->text,
					CM_TEXT_MAX)))
		return rc;
	if (o->lang && (rc = copy_field(ctx, "lang", o->lang, r->lang,
					CM_LANG_MAX)))
		return rc;
	for (size_t i = 0; i < o->n_tags; i++) {
		cm_err_clear();
		if (proto_tag_check(o->tags[i]) != CM_OK)
			return cli_usage_error(ctx,
					       "invalid --tag '%s': %s; a tag "
					       "is one word of up to %d bytes "
					       "(join words with '-')",
					       o->tags[i], cm_err_detail(),
					       CM_TAG_MAX);
		if ((rc = copy_field(ctx, "tag", o->tags[i], r->tags[r->n_tags],
				     CM_TAG_MAX)))
			return rc;
		r->n_tags++;
	}
	proto_record_sort_tags(r);
	return CLI_OK;
}

/*
 * Signs r with `secret`, stores it, tells the running node and prints
 * the id. r->author and r->created_ms are filled in here. With pub, the
 * record is stored by store_publish_finish, which ends that publish.
 */
static int sign_and_store(cli_ctx *ctx, store *s, store_publish *pub,
			  proto_record *r, const uint8_t *secret)
{
	uint8_t wire[CM_RECORD_MAX], id[PROTO_ID_LEN];
	char hex[2 * PROTO_ID_LEN + 1];
	proto_signed rec;
	size_t len;
	cm_err err, result = CM_OK;

	cm_err_clear();
	err = proto_record_sign(r, secret, wire, sizeof(wire), &len, id);
	if (err)
		return cli_fail(err, "invalid record",
				"check the values given to the options");
	err = proto_record_open(wire, len, cm_now_ms(), &rec);
	if (!err && pub)
		err = store_publish_finish(pub, &rec, &result);
	else if (!err)
		err = store_put_batch(s, &rec, 1, &result);
	if (err)
		return cli_fail(err, "cannot store the record", NULL);
	cm_hex_encode(id, sizeof(id), hex);
	if (result == CM_ERR_RETRACTED) {
		fprintf(stderr, "clipmesh: record %s was retracted and cannot "
				"be published again\n", hex);
		return CLI_FAIL;
	}
	if (result != CM_OK && result != CM_ERR_DUPLICATE)
		return cli_fail(result, "record not stored", NULL);
	cli_notify_node(ctx->home, (const uint8_t(*)[32])id, 1);
	printf("%s\n", hex);
	return CLI_OK;
}

/* Loads identity o->as of the home, asking for its passphrase when it
 * is sealed; prints the error. */
static int load_identity(cli_ctx *ctx, const sign_opts *o, proto_record *r,
			 uint8_t **secret)
{
	return cli_load_identity(ctx, o->as, o->pass_file, r->author, secret);
}

/* Frees what publishes that died left, then stores the manifests of the
 * hashed files under a new publish (store_publish_begin). Prints the
 * error. */
static int publish_begin(store *s, const cli_media_file *media, size_t n,
			 store_publish **pub)
{
	store_manifest manifests[CM_MEDIA_MAX];
	store_sweep_report swept;
	cm_err err;

	cm_err_clear();
	if ((err = store_publish_sweep(s, &swept)))
		return cli_fail(err, "cannot free the media of stopped "
				"publishes", NULL);
	if (swept.publishes > 0)
		cm_info("cli", "freed %llu media, %llu bytes, of %llu "
			"publishes that stopped",
			(unsigned long long)swept.media,
			(unsigned long long)swept.bytes,
			(unsigned long long)swept.publishes);
	for (size_t i = 0; i < n; i++) {
		memcpy(manifests[i].root, media[i].ref.hash, PROTO_HASH_LEN);
		manifests[i].size = media[i].ref.size;
		manifests[i].chunks =
			(const uint8_t(*)[PROTO_HASH_LEN])media[i].chunks;
		manifests[i].n_chunks = media[i].n_chunks;
	}
	cm_err_clear();
	if ((err = store_publish_begin(s, manifests, n, pub)))
		return cli_fail(err, "cannot store media", NULL);
	return CLI_OK;
}

/* Returns the option that sets the record field that a validation
 * detail starts with ("title is empty" gives "--title"), or "clip" for a
 * field that no single option sets. */
static const char *option_of_field(const char *detail)
{
	static const char *const fields[][2] = {
		{"title", "--title"},     {"text", "--text"},
		{"lang", "--lang"},       {"product", "--product"},
		{"tags", "--tag"},        {"rating", "--rating"},
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t n = strlen(fields[i][0]);

		if (strncmp(detail, fields[i][0], n) == 0 &&
		    (detail[n] == ' ' || detail[n] == '['))
			return fields[i][1];
	}
	return "clip";
}

static int publish_files(cli_ctx *ctx, const sign_opts *o, char **files,
			 size_t n_files, proto_record *r)
{
	char what[32];
	cli_media_file media[CM_MEDIA_MAX];
	store_publish *pub = NULL;
	uint8_t *secret = NULL;
	store *s = NULL;
	size_t hashed = 0;
	cm_err err;
	int rc;

	memset(media, 0, sizeof(media));
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	if ((rc = load_identity(ctx, o, r, &secret)) != CLI_OK)
		return rc;
	for (; hashed < n_files; hashed++) {
		cm_err_clear();
		err = cli_media_hash(files[hashed], &media[hashed]);
		if (err) {
			rc = cli_fail(err, "cannot publish", NULL);
			goto out;
		}
		r->media[hashed] = media[hashed].ref;
	}
	r->n_media = n_files;
	r->created_ms = cm_now_ms();
	cm_err_clear();
	if ((err = proto_record_validate(r))) {
		snprintf(what, sizeof(what), "invalid %s",
			 option_of_field(cm_err_detail()));
		rc = cli_fail(CM_ERR_USAGE, what,
			      "see 'clipmesh publish --help' for each field "
			      "and its limits");
		goto out;
	}
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK ||
	    (rc = publish_begin(s, media, n_files, &pub)) != CLI_OK)
		goto out;
	for (size_t i = 0; i < n_files; i++) {
		cm_err_clear();
		if ((err = cli_media_store(pub, &media[i]))) {
			rc = cli_fail(err, "cannot store media", NULL);
			goto out;
		}
	}
	rc = sign_and_store(ctx, s, pub, r, secret);
out:
	for (size_t i = 0; i < hashed; i++)
		cli_media_free(&media[i]);
	store_publish_end(&pub);
	store_close(&s);
	cm_secret_free(&secret);
	return rc;
}

int cmd_publish(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"as", "NAME", OPT_AS, "identity that signs the clip", false},
		{"product", "REF", OPT_PRODUCT,
		 "product: gtin:, isbn:, asin: or url: reference", false},
		{"title", "TEXT", OPT_TITLE, "title, up to 200 bytes", false},
		{"rating", "N", OPT_RATING, "rating from 1 to 5", false},
		{"text", "TEXT", OPT_TEXT, "review text, up to 4000 bytes",
		 false},
		{"tag", "T", OPT_TAG, "tag, up to 32 bytes", true},
		{"lang", "L", OPT_LANG, "language tag, e.g. en or pt-BR",
		 false},
		{"passphrase-file", "FILE", OPT_PASS_FILE,
		 "read a sealed identity's passphrase from the first line of "
		 "FILE (else $CLIPMESH_PASSPHRASE, else the terminal)", false},
		{0},
	};
	sign_opts o = {.ctx = ctx};
	proto_record *r;
	int first, rc;

	rc = cli_parse(ctx, argc, argv, opts, false,
		       "FILE... --as NAME --product REF --title TEXT "
		       "[options]",
		       "Hash the media files, sign the clip, store it and "
		       "hand it to the running node. Prints the clip id.",
		       sign_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first == argc)
		return cli_usage_error(ctx, "give at least one media FILE");
	if (argc - first > CM_MEDIA_MAX)
		return cli_usage_error(ctx, "at most %d media files per clip",
				       CM_MEDIA_MAX);
	if ((rc = cli_check_paths(ctx, argv + first, argc - first,
				  "FILE")) >= 0)
		return rc;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return cli_fail(CM_ERR_NOMEM, "cannot publish", NULL);
	r->kind = PROTO_KIND_CLIP;
	rc = fill_clip(&o, r);
	if (rc == CLI_OK)
		rc = publish_files(ctx, &o, argv + first,
				   (size_t)(argc - first), r);
	free(r);
	return rc;
}

/*
 * Returns true after printing the existing retraction's id when `arg` is
 * the full id of a clip that is already retracted. Only the full id can
 * name such a clip, because the store no longer contains it.
 */
static bool report_retracted(store *s, const char *arg)
{
	uint8_t id[PROTO_ID_LEN], by[PROTO_ID_LEN];
	char hex[2 * PROTO_ID_LEN + 1];

	if (!cm_hex_decode(arg, id, PROTO_ID_LEN) ||
	    !store_is_retracted(s, id, by))
		return false;
	cm_hex_encode(by, PROTO_ID_LEN, hex);
	fprintf(stderr, "clipmesh: clip %.16s is already retracted, so there "
			"is nothing to sign\n", arg);
	printf("%s\n", hex);
	return true;
}

int cmd_retract(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"as", "NAME", OPT_AS, "identity that published the clip",
		 false},
		{"passphrase-file", "FILE", OPT_PASS_FILE,
		 "read a sealed identity's passphrase from the first line of "
		 "FILE (else $CLIPMESH_PASSPHRASE, else the terminal)", false},
		{0},
	};
	sign_opts o = {.ctx = ctx};
	proto_record *r = NULL;
	uint8_t *secret = NULL, *wire = NULL;
	uint8_t id[PROTO_ID_LEN];
	proto_signed *clip = NULL;
	store *s = NULL;
	size_t len;
	int first, rc;

	rc = cli_parse(ctx, argc, argv, opts, false, "ID --as NAME",
		       "Sign and publish a retraction of clip ID (an id or "
		       "a prefix of at least 8 hex characters).",
		       sign_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (argc - first != 1 || o.as == NULL)
		return cli_usage_error(ctx, "expected one clip ID and --as");
	r = calloc(1, sizeof(*r));
	clip = calloc(1, sizeof(*clip));
	if (r == NULL || clip == NULL) {
		rc = cli_fail(CM_ERR_NOMEM, "cannot retract", NULL);
		goto out;
	}
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		goto out;
	if (report_retracted(s, argv[first])) {
		rc = CLI_OK;
		goto out;
	}
	if ((rc = load_identity(ctx, &o, r, &secret)) != CLI_OK ||
	    (rc = cli_resolve_id(s, argv[first], id)) != CLI_OK)
		goto out;
	if (store_get(s, id, &wire, &len) ||
	    proto_record_open(wire, len, cm_now_ms(), clip) ||
	    clip->rec.kind != PROTO_KIND_CLIP) {
		fprintf(stderr, "clipmesh: record %s is not a clip; only "
				"clips can be retracted\n",
			cli_value(argv[first]));
		rc = CLI_FAIL;
		goto out;
	}
	if (memcmp(clip->rec.author, r->author, PROTO_KEY_LEN) != 0) {
		fprintf(stderr, "clipmesh: clip %s was not published by "
				"identity '%s'; retract it as its author\n",
			cli_value(argv[first]), cli_value(o.as));
		rc = CLI_FAIL;
		goto out;
	}
	r->kind = PROTO_KIND_RETRACT;
	memcpy(r->target, id, PROTO_ID_LEN);
	r->created_ms = cm_now_ms();
	rc = sign_and_store(ctx, s, NULL, r, secret);
out:
	free(wire);
	free(clip);
	free(r);
	store_close(&s);
	cm_secret_free(&secret);
	return rc;
}

static int profile_set(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"as", "NAME", OPT_AS, "identity whose profile this is", false},
		{"name", "TEXT", OPT_NAME, "display name, up to 64 bytes",
		 false},
		{"bio", "TEXT", OPT_BIO, "short biography, up to 1000 bytes",
		 false},
		{"passphrase-file", "FILE", OPT_PASS_FILE,
		 "read a sealed identity's passphrase from the first line of "
		 "FILE (else $CLIPMESH_PASSPHRASE, else the terminal)", false},
		{0},
	};
	sign_opts o = {.ctx = ctx};
	proto_record *r;
	uint8_t *secret = NULL;
	store *s = NULL;
	int first, rc;

	rc = cli_parse(ctx, argc, argv, opts, false,
		       "--as NAME --name TEXT [--bio TEXT]",
		       "Sign and publish a profile; the newest profile of an "
		       "author replaces older ones.",
		       sign_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc || o.as == NULL || o.name == NULL)
		return cli_usage_error(ctx, "--as and --name are required");
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return cli_fail(CM_ERR_NOMEM, "cannot set the profile", NULL);
	r->kind = PROTO_KIND_PROFILE;
	if ((rc = copy_field(ctx, "name", o.name, r->name, CM_NAME_MAX)) ||
	    (o.bio && (rc = copy_field(ctx, "bio", o.bio, r->bio,
				       CM_BIO_MAX))))
		goto out;
	/* Validated before the passphrase prompt, so a bad value exits 2. */
	cm_err_clear();
	if (proto_record_validate(r) != CM_OK) {
		rc = cli_fail(CM_ERR_USAGE, "invalid profile",
			      "check the values of --name and --bio");
		goto out;
	}
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK ||
	    (rc = load_identity(ctx, &o, r, &secret)) != CLI_OK)
		goto out;
	r->created_ms = cm_now_ms();
	cm_err_clear();
	if (proto_record_validate(r)) {
		rc = cli_fail(CM_ERR_USAGE, "invalid profile", NULL);
		goto out;
	}
	rc = sign_and_store(ctx, s, NULL, r, secret);
out:
	free(r);
	store_close(&s);
	cm_secret_free(&secret);
	return rc;
}

int cmd_profile(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_sub subs[] = {
		{"set", profile_set, "sign and publish a profile"},
	};

	return cli_run_sub(ctx, argc, argv, subs, 1);
}
