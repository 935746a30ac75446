/*
 * cm_config.h - the settings of clipmesh: one table that names every
 * setting once (type, default, range, description), and a configuration
 * that holds the effective value of each with its source.
 *
 * Values come from three places, each overriding the one before: the
 * default (from cm_limits.h), HOME/config, and command-line options. The
 * file is parsed with libinih: "key = value" lines, '#' or ';' comments,
 * optional [node], [mirror] and [limits] sections (see
 * dist/man/clipmesh.conf.5).
 */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_error.h"

/* What a setting's value is, which decides how it is parsed and shown. */
typedef enum cm_value_type {
	CM_VALUE_ENDPOINT, /* ZeroMQ TCP endpoint, tcp://HOST:PORT */
	CM_VALUE_ADDRESS,  /* HOST:PORT, e.g. for HTTP */
	CM_VALUE_PEERS,    /* list of peer addresses, one per line */
	CM_VALUE_SIZE,     /* bytes, with an optional K, M, G or T suffix */
	CM_VALUE_COUNT,    /* whole number */
	CM_VALUE_DURATION, /* milliseconds, written with ms, s, m, h or d */
	CM_VALUE_ENUM,     /* one of a list of names */
} cm_value_type;

/* The values of setting media, as cm_config_num returns them. */
typedef enum cm_media_choice {
	CM_MEDIA_ALL,
	CM_MEDIA_FOLLOWED,
	CM_MEDIA_NONE,
} cm_media_choice;

/* The settings, in table order. */
typedef enum cm_setting_id {
	CM_SETTING_LISTEN,
	CM_SETTING_PEER,
	CM_SETTING_MEDIA,
	CM_SETTING_MEDIA_MAX,
	CM_SETTING_MEDIA_BUDGET,
	CM_SETTING_LOG_LEVEL,
	CM_SETTING_HTTP,
	CM_SETTING_HTTP_RATE,
	CM_SETTING_PEERS_MAX,
	CM_SETTING_PEERS_LEARNED,
	CM_SETTING_CONNECTIONS_MAX,
	CM_SETTING_PEER_QUEUED_MAX,
	CM_SETTING_QUEUED_TOTAL_MAX,
	CM_SETTING_MEDIA_FETCHES,
	CM_SETTING_SYNC_INTERVAL,
	CM_SETTING_HANDSHAKE_TIMEOUT,
	CM_SETTING_HELLO_TIMEOUT,
	CM_SETTING_RECONNECT_MAX,
	CM_SETTING_STORE_MAP_SIZE,
	CM_SETTING_FEED_LIMIT,
	CM_SETTING_PEER_MSGS,
	CM_SETTING_PEER_BYTES,
	CM_SETTING_BAN_TIME,
	CM_SETTING_COUNT
} cm_setting_id;

/* One row of the settings table. */
typedef struct cm_setting {
	const char *name;            /* key in HOME/config */
	const char *section;         /* "node", "mirror" or "limits" */
	cm_value_type type;
	uint64_t def;                /* numeric default or enum index */
	const char *def_text;        /* default of text types; NULL: off */
	uint64_t min, max;           /* numeric range; max entries for
				      * CM_VALUE_PEERS */
	const char *zero;            /* word for 0 or unset ("off",
				      * "unlimited"), NULL when not allowed */
	const char *const *choices;  /* CM_VALUE_ENUM names, NULL-ended */
	const char *flag;            /* option that overrides it, or NULL */
	const char *help;            /* one-line description */
} cm_setting;

/* Where a value came from. */
typedef enum cm_source_kind {
	CM_SOURCE_DEFAULT,
	CM_SOURCE_FILE,
	CM_SOURCE_FLAG,
} cm_source_kind;

typedef struct cm_source {
	cm_source_kind kind;
	unsigned line;               /* CM_SOURCE_FILE: 1-based line */
	unsigned overrides;          /* CM_SOURCE_FILE: the earlier line of
				      * the same key that this one
				      * overrides, 0: none */
	const char *flag;            /* CM_SOURCE_FLAG: e.g. "--listen" */
} cm_source;

/* Returns the table row of `id` (< CM_SETTING_COUNT). */
const cm_setting *cm_setting_get(cm_setting_id id);

/* Finds a setting by name; returns CM_SETTING_COUNT when there is none. */
cm_setting_id cm_setting_find(const char *name);

/* Returns the type's name as the docs use it ("size", "peer list"...). */
const char *cm_value_type_name(cm_value_type type);

/* Checks one peer address; fills cm_err's detail on failure. */
typedef cm_err (*cm_peer_check)(const char *addr);

typedef struct cm_config cm_config;

/*
 * Creates a configuration holding every default. `peer_check` validates
 * peer addresses (node_parse_addr, wrapped); NULL accepts any text. The
 * caller frees the result with cm_config_free().
 */
cm_err cm_config_new(cm_peer_check peer_check, cm_config **out);

/* Frees a configuration and sets *c to NULL; accepts NULL. */
void cm_config_free(cm_config **c);

/*
 * Reads the file at `path` over the values held. A missing file leaves
 * them as they are. Fails with CM_ERR_USAGE on an unknown section or key,
 * a bad value or a line that is not "key = value"; then
 * cm_config_error() returns "PATH:LINE: what, allowed values". Also
 * fails with CM_ERR_USAGE, and an error "PATH ...: what to do", when the
 * file cannot be opened, is a symbolic link to a missing file, or is not
 * a regular file of at most CM_CONFIG_FILE_MAX bytes, and with CM_ERR_IO
 * when reading it fails. A FIFO is rejected without blocking. A later
 * line overrides an earlier line of the same key, except that `peer`
 * lines add up.
 */
cm_err cm_config_load(cm_config *c, const char *path);

/* Same as cm_config_load on `len` bytes of text; `label` stands for the
 * path in messages and sources. */
cm_err cm_config_load_text(cm_config *c, const char *label, const char *text,
			   size_t len);

/*
 * Sets setting `id` from command-line option `flag` (a string constant
 * such as "--listen", kept by pointer). A value of a peer list is added;
 * the first one from an option drops those from the file. Fails with
 * CM_ERR_USAGE and a message in cm_config_error() on a bad value.
 */
cm_err cm_config_set_flag(cm_config *c, cm_setting_id id, const char *value,
			  const char *flag);

/* Returns the message of the last failed load or set ("" when none). */
const char *cm_config_error(const cm_config *c);

/* Returns the path of the last file loaded, "" before any. */
const char *cm_config_path(const cm_config *c);

/* Returns the number of values of `id`: 1 for scalars, the entries for
 * CM_VALUE_PEERS (0 when none). */
size_t cm_config_count(const cm_config *c, cm_setting_id id);

/* Returns the numeric value (bytes, ms, count, enum index) of `id`. */
uint64_t cm_config_num(const cm_config *c, cm_setting_id id);

/* Returns entry i of a text setting (endpoint, address, peer list), or
 * NULL when it is off. Valid until the configuration changes. */
const char *cm_config_text(const cm_config *c, cm_setting_id id, size_t i);

/* Returns where entry i of `id` came from. */
cm_source cm_config_source(const cm_config *c, cm_setting_id id, size_t i);

/*
 * Writes entry i of `id` as the file would hold it ("512M", "30s",
 * "followed", "off") into out[cap]; an entry that does not fit is cut.
 */
void cm_config_format(const cm_config *c, cm_setting_id id, size_t i,
		      char *out, size_t cap);

/* Writes the default of `id` the same way. */
void cm_setting_format_default(cm_setting_id id, char *out, size_t cap);

/* Writes a setting's accepted values ("a size from 1 to 4G", "all,
 * followed or none") into out[cap]. */
void cm_setting_describe_range(cm_setting_id id, char *out, size_t cap);

/* Writes a source as `config show` prints it: "default", "PATH:LINE" or
 * the option, into out[cap]. */
void cm_config_format_source(const cm_config *c, cm_source src, char *out,
			     size_t cap);

/* Parsers shared with the command line; false on junk, overflow or a
 * missing unit. */
bool cm_parse_size(const char *text, uint64_t *bytes);
bool cm_parse_duration(const char *text, uint64_t *ms);

#endif
