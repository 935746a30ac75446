/*
 * node_allow.c - allow-lists: the node keys that may connect to a node in
 * allow-list mode, from --allow values and allow-list files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "node_internal.h"

#define ADDR_PREFIX "clipmesh://"

/* Reads a key from `text`: 64 hex digits, alone or as the key of a peer
 * address clipmesh://KEYHEX@HOST:PORT. */
static bool parse_key(const char *text, uint8_t key[NODE_KEY_LEN])
{
	char endpoint[NODE_ENDPOINT_MAX];

	if (strncmp(text, ADDR_PREFIX, strlen(ADDR_PREFIX)) == 0)
		return node_parse_addr(text, endpoint, key) == CM_OK;
	return strlen(text) == 2 * NODE_KEY_LEN &&
	       cm_hex_decode(text, key, NODE_KEY_LEN);
}

static cm_err append(const uint8_t key[NODE_KEY_LEN], uint8_t **keys,
		     size_t *n_keys)
{
	uint8_t *grown;

	if (*n_keys >= CM_ALLOW_MAX)
		return cm_errf(CM_ERR_TOO_MANY, "more than %d keys in the "
			       "allow-list", CM_ALLOW_MAX);
	grown = realloc(*keys, (*n_keys + 1) * NODE_KEY_LEN);
	if (!grown)
		return CM_ERR_NOMEM;
	memcpy(grown + *n_keys * NODE_KEY_LEN, key, NODE_KEY_LEN);
	*keys = grown;
	(*n_keys)++;
	return CM_OK;
}

cm_err node_allow_add(const char *text, uint8_t **keys, size_t *n_keys)
{
	uint8_t key[NODE_KEY_LEN];

	if (!parse_key(text, key))
		return cm_errf(CM_ERR_BAD_KEY, "'%s' is not a node key: give "
			       "its 64 hex digits or the address 'clipmesh "
			       "id' prints", text);
	return append(key, keys, n_keys);
}

/* Cuts a '#' comment and the blanks around the text of a line. */
static char *trim_line(char *line)
{
	char *hash = strchr(line, '#'), *end;

	if (hash)
		*hash = '\0';
	while (*line == ' ' || *line == '\t')
		line++;
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
			      end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return line;
}

cm_err node_allow_read(const char *path, uint8_t **keys, size_t *n_keys)
{
	char line[CM_ALLOW_LINE_MAX + 2];
	unsigned number = 0;
	cm_err err = CM_OK;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return cm_errf(errno == ENOENT ? CM_ERR_NOT_FOUND : CM_ERR_IO,
			       "cannot open allow-list %s: %s", path,
			       strerror(errno));
	while (!err && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *text;

		number++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			err = cm_errf(CM_ERR_TOO_LONG, "%s line %u is over %d "
				      "bytes", path, number,
				      CM_ALLOW_LINE_MAX);
			break;
		}
		text = trim_line(line);
		if (*text == '\0')
			continue;
		err = node_allow_add(text, keys, n_keys);
		if (err == CM_ERR_BAD_KEY)
			err = cm_errf(err, "%s line %u: '%s' is not a node "
				      "key; give its 64 hex digits or the "
				      "address 'clipmesh id' prints", path,
				      number, text);
	}
	if (!err && ferror(f))
		err = cm_errf(CM_ERR_IO, "cannot read allow-list %s", path);
	fclose(f);
	return err;
}
