/*
 * cmd_verify.c - `clipmesh verify FILE...`: checks signed records that
 * came from outside (a mirror's raw record bytes, a file from a peer)
 * without storing them.
 *
 * Each file contains the wire bytes of one record. It gets the checks that
 * gossip and import apply (envelope, canonical body, schema, signature,
 * creation time), and, when the home is initialised, the store's checks
 * too (retracted, another author's retraction, an older profile) in a
 * write transaction that is aborted. The verdict and reason names are
 * those that import and a node count; verify counts nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cm_util.h"
#include "proto_json.h"

/* Reads at most CM_RECORD_MAX + 1 bytes of regular file `path` into buf,
 * so that a longer file shows as too long without being read whole. */
static int read_record_file(const char *path, uint8_t *buf, size_t *len)
{
	bool not_regular;
	FILE *f = cli_fopen_regular(path, &not_regular);
	int rc = CLI_OK;

	if (f == NULL && not_regular) {
		fprintf(stderr,
			"clipmesh: %s is not a regular file; give a file "
			"that holds one signed record\n",
			path);
		return CLI_FAIL;
	}
	if (f == NULL) {
		fprintf(stderr, "clipmesh: cannot open %s: %s\n", path,
			strerror(errno));
		return CLI_FAIL;
	}
	*len = fread(buf, 1, CM_RECORD_MAX + 1, f);
	if (ferror(f)) {
		fprintf(stderr, "clipmesh: cannot read %s: %s\n", path,
			strerror(errno));
		rc = CLI_FAIL;
	}
	fclose(f);
	return rc;
}

/* Checks one record; *verdict receives CM_OK for a record a node would
 * accept (or already stores) and the reason otherwise. */
static cm_err check_record(store *s, const uint8_t *wire, size_t len,
			   proto_signed *rec, bool *stored, cm_err *verdict)
{
	cm_err result = CM_OK;
	cm_err err;

	*stored = false;
	if (len > CM_RECORD_MAX) {
		*verdict = cm_errf(CM_ERR_TOO_LONG,
				   "record of more than %d bytes",
				   CM_RECORD_MAX);
		return CM_OK;
	}
	*verdict = proto_record_open(wire, len, cm_now_ms(), rec);
	if (*verdict || s == NULL)
		return CM_OK;
	err = store_try_batch(s, rec, 1, &result);
	if (err)
		return err;
	*stored = result == CM_ERR_DUPLICATE;
	*verdict = *stored ? CM_OK : result;
	return CM_OK;
}

static void print_verdict(const cli_ctx *ctx, const char *path,
			  const proto_signed *rec, bool stored,
			  cm_err verdict)
{
	const char *detail = *cm_err_detail() ? cm_err_detail()
					      : cm_err_text(verdict);
	char id[2 * PROTO_ID_LEN + 1];

	if (ctx->json) {
		json_t *o = json_pack("{s:s, s:s}", "file", path, "verdict",
				      verdict ? "rejected" : "valid");

		if (verdict) {
			json_object_set_new(o, "reason",
					    json_string(cm_err_name(verdict)));
			json_object_set_new(o, "detail", json_string(detail));
		} else {
			json_object_set_new(o, "record",
					    proto_record_json(rec));
			json_object_set_new(o, "stored", json_boolean(stored));
		}
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
		return;
	}
	if (verdict) {
		printf("%s: rejected: %s (", path, cm_err_name(verdict));
		cli_put_text(stdout, detail);
		printf(")\n");
		return;
	}
	cm_hex_encode(rec->id, PROTO_ID_LEN, id);
	printf("%s: valid %s %s%s\n", path, proto_kind_name(rec->rec.kind),
	       id, stored ? ", already stored" : "");
}

int cmd_verify(cli_ctx *ctx, int argc, char **argv)
{
	proto_signed *rec = NULL;
	uint8_t *wire = NULL;
	store *s = NULL;
	int first, rc, status = CLI_OK;

	rc = cli_parse(ctx, argc, argv, NULL, true, "FILE...",
		       "Check files that each hold one signed record (for "
		       "example a mirror's raw record bytes) as a node "
		       "would, without storing them. In an initialised home "
		       "the store's checks apply too (retracted, older "
		       "profile). Exits 1 when a record is rejected.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if (first == argc)
		return cli_usage_error(ctx, "missing record file: give at least one FILE");
	if ((rc = cli_check_paths(ctx, argv + first, argc - first,
				  "FILE")) >= 0)
		return rc;
	if (cm_home_resolve(ctx->home_flag, ctx->home) == CM_OK &&
	    cm_home_is_init(ctx->home) &&
	    (rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	wire = malloc(CM_RECORD_MAX + 1);
	rec = malloc(sizeof(*rec));
	if (!wire || !rec) {
		status = cli_fail(CM_ERR_NOMEM, "cannot allocate a record",
				  NULL);
		goto out;
	}
	for (int i = first; i < argc; i++) {
		size_t len = 0;
		bool stored;
		cm_err verdict, err;

		rc = read_record_file(argv[i], wire, &len);
		if (rc != CLI_OK) {
			status = rc;
			continue;
		}
		if (len >= CLI_EXPORT_MAGIC_LEN &&
		    memcmp(wire, cli_export_magic, CLI_EXPORT_MAGIC_LEN) == 0) {
			fprintf(stderr,
				"clipmesh: %s is an export file, not one "
				"record; check and store its records with "
				"'clipmesh import %s'\n",
				argv[i], argv[i]);
			status = CLI_FAIL;
			continue;
		}
		cm_err_clear();
		err = check_record(s, wire, len, rec, &stored, &verdict);
		if (err) {
			status = cli_fail(err, "cannot check the record "
					       "against the store", NULL);
			goto out;
		}
		print_verdict(ctx, argv[i], rec, stored, verdict);
		if (verdict)
			status = CLI_FAIL;
	}
out:
	free(rec);
	free(wire);
	store_close(&s);
	return status;
}
