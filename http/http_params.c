/*
 * http_params.c - strict query parameters: every route names the ones it
 * accepts, and an unknown, repeated or empty one is a 400, so that a typo
 * in a filter never silently widens a query.
 */
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

/* Rejects a name or value that the C string would cut short: a %00 in
 * the query would otherwise make "limit=5%00x" read as limit=5. */
static bool check_bytes(http_params *p, const char *key, size_t key_size,
			const char *value, size_t value_size)
{
	if (key_size == 0)
		snprintf(p->error, sizeof(p->error),
			 "the query has a parameter without a name; remove "
			 "the extra '&' or '='");
	else if (strlen(key) != key_size ||
		 (value && strlen(value) != value_size))
		snprintf(p->error, sizeof(p->error),
			 "parameter %.40s contains a NUL byte (%%00); remove "
			 "it", key);
	return p->error[0] == '\0';
}

static enum MHD_Result read_one(void *cls, enum MHD_ValueKind kind,
				const char *key, size_t key_size,
				const char *value, size_t value_size)
{
	http_params *p = cls;

	(void)kind;
	if (p->error[0])
		return MHD_NO;
	if (!check_bytes(p, key, key_size, value, value_size))
		return MHD_NO;
	for (size_t i = 0; p->names[i]; i++) {
		if (strcmp(key, p->names[i]) != 0)
			continue;
		if (p->values[i])
			snprintf(p->error, sizeof(p->error),
				 "parameter %.40s is repeated; give it once",
				 key);
		else if (value == NULL || value[0] == '\0')
			snprintf(p->error, sizeof(p->error),
				 "parameter %.40s is empty; give a value or "
				 "leave it out", key);
		else
			p->values[i] = value;
		return p->error[0] ? MHD_NO : MHD_YES;
	}
	snprintf(p->error, sizeof(p->error),
		 "unknown parameter '%.40s'; this route accepts %s", key,
		 p->names[0] ? "only its documented parameters (see "
			       "docs/openapi.json)"
			     : "no parameters");
	return MHD_NO;
}

bool http_params_read(http_request *req, http_params *p)
{
	memset(p->values, 0, sizeof(p->values));
	p->error[0] = '\0';
	MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND,
				    read_one, p);
	return p->error[0] == '\0';
}

const char *http_param(const http_params *p, const char *name)
{
	for (size_t i = 0; p->names[i] && i < HTTP_PARAMS_MAX; i++)
		if (strcmp(p->names[i], name) == 0)
			return p->values[i];
	return NULL;
}
