/*
 * cli.h - shared pieces of the clipmesh command line: the command table,
 * option parsing with generated --help, error printing and exit codes.
 */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cm_config.h"
#include "cm_error.h"
#include "cm_home.h"
#include "node.h"
#include "store.h"

/* Exit codes from the spec: 0 success, 1 failure, 2 bad usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* One option of a command; `key` is what the parser hands back. */
typedef struct cli_opt {
	const char *name;     /* long name without "--" */
	const char *arg;      /* argument name for help, NULL for a flag */
	int key;
	const char *help;
	bool repeatable;      /* may be given more than once, because the
			       * command collects every value; --help
			       * marks it "(repeatable)" */
} cli_opt;

/* A parsed command line: the home, the common flags and what is left. */
typedef struct cli_ctx {
	const char *home_flag;
	const char *log_level_flag;  /* --log-level before the command */
	char home[CM_HOME_PATH_MAX];
	bool json;
	const char *cmd_name;  /* e.g. "key new", for messages */
	cm_config *config;     /* settings, once cli_load_settings ran;
				* main frees it */
} cli_ctx;

typedef int (*cli_opt_fn)(void *state, int key, const char *value);

/*
 * Parses argv with getopt_long from `opts` plus the common --home, --json
 * (when allow_json) and --help. Calls fn for each option. On return,
 * *first_arg indexes the first positional argument. Returns -1 to go on,
 * or the exit code to return now (after --help or a usage error). An
 * empty value of an option whose `arg` is "FILE" or "DIR" is a usage
 * error, and so is a second value of an option that is not
 * `repeatable`.
 */
int cli_parse(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts,
	      bool allow_json, const char *usage, const char *summary,
	      cli_opt_fn fn, void *state, int *first_arg);

/* Prints "clipmesh: WHAT: DETAIL" (detail from cm_err_detail or the
 * error's text) and an optional hint line; returns CLI_FAIL, or CLI_USAGE
 * for CM_ERR_USAGE. */
int cli_fail(cm_err err, const char *what, const char *hint);

/* Prints a usage error with the command's --help hint; returns CLI_USAGE. */
int cli_usage_error(const cli_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Checks that none of the n positional path arguments is empty; `what`
 * is their name in the usage line ("FILE" or "DIR"). Returns -1 to go
 * on, else prints a usage error and returns CLI_USAGE. */
int cli_check_paths(const cli_ctx *ctx, char **paths, int n,
		    const char *what);

/* Resolves ctx->home and checks that it is initialised. */
int cli_need_home(cli_ctx *ctx);

/* Resolves the home, checks it, loads its settings and opens its store
 * into *s with the configured map size. */
int cli_open_store(cli_ctx *ctx, store **s);

/* First key of the setting options, above every command's own keys. */
#define CLI_SETTING_OPT_BASE 0x2000
#define CLI_SETTING_FLAGS_MAX 256

/* Options that override settings (--listen, --peer, --media, --media-max,
 * --media-budget, --log-level, --set NAME=VALUE), NULL-terminated. */
extern const cli_opt cli_setting_opts[];

/* Setting options in command-line order, applied after HOME/config. */
typedef struct cli_setting_flags {
	struct {
		cm_setting_id id;
		const char *value;
		const char *flag;
	} items[CLI_SETTING_FLAGS_MAX];
	size_t n;
	/* --set test_clock_offset=[-]DURATION, a setting for tests only
	 * that is not in the settings table (see cli_settings.c). */
	int64_t test_clock_offset_ms;
} cli_setting_flags;

/* Records setting option `key` (from cli_setting_opts) for later; returns
 * -1 to go on or CLI_USAGE after printing why. */
int cli_setting_flag(const cli_ctx *ctx, cli_setting_flags *flags, int key,
		     const char *value);

/*
 * Loads HOME/config into ctx->config (once; the home must be resolved),
 * then applies the global --log-level and `flags` (may be NULL) over it
 * and sets the log level. Prints the error and returns CLI_USAGE on a bad
 * file or option, CLI_FAIL when the file cannot be read.
 */
int cli_load_settings(cli_ctx *ctx, const cli_setting_flags *flags);

/* Returns the node's media policy for the setting media of c. */
node_media_policy cli_media_policy(const cm_config *c);

/* The time forms cm_time_parse accepts, for --help of --since and
 * --until. */
#define CLI_TIME_FORMS                                                    \
	"TIME is an RFC 3339 UTC time (2026-12-04T15:00:00Z, optionally "  \
	"with .mmm milliseconds), a date (2026-12-04, midnight UTC) or "   \
	"milliseconds since the Unix epoch."

/* Parses a 64-char hex public key; prints a usage error on failure. */
int cli_parse_key(const cli_ctx *ctx, const char *hex, uint8_t key[32]);

/* Checks the value of a --tag filter as publish checks a tag. Tags
 * match byte for byte, so case matters. Returns -1 to go on, else prints
 * a usage error naming the tag and returns CLI_USAGE. */
int cli_check_tag(const cli_ctx *ctx, const char *tag);

/* Resolves an id prefix to a stored record id. Prints the error and
 * returns CLI_USAGE for a malformed or ambiguous prefix, CLI_FAIL when no
 * record has it. */
int cli_resolve_id(store *s, const char *prefix, uint8_t id[32]);

/* Opens path read-only without waiting for a writer of a FIFO, because
 * the open does not block (reads of a regular file ignore the flag), and
 * closes anything but a regular file again. Returns the descriptor with
 * *st filled in, or -1 with errno set and *not_regular true when path is
 * not a regular file. */
int cli_open_regular(const char *path, struct stat *st, bool *not_regular);

/* Opens path like cli_open_regular, as a blocking stream in binary mode.
 * Returns the stream, or NULL as cli_open_regular fails. */
FILE *cli_fopen_regular(const char *path, bool *not_regular);

/* Returns the process id that the running node wrote to HOME/node.lock,
 * or 0 when the file is missing or names none. */
long cli_node_pid(const char *home);

/* Tells a running node about new records; silent when none runs. */
void cli_notify_node(const char *home, const uint8_t (*ids)[32], size_t n);

/* The environment variables that hold a passphrase for a sealed
 * identity key, and the new one for 'key passwd'. */
#define CLI_PASS_ENV "CLIPMESH_PASSPHRASE"
#define CLI_NEW_PASS_ENV "CLIPMESH_NEW_PASSPHRASE"

/* A passphrase in guarded memory (sodium_malloc), NUL-terminated. */
typedef struct cli_pass {
	char *text;
	size_t len;
} cli_pass;

/*
 * Reads a passphrase into *p. It is the first line of `file` when that is
 * not NULL, else environment variable `env` when it is set and not empty,
 * else a line typed on the terminal after `prompt`, without echo and
 * twice when `confirm`. On failure it prints what failed, frees p->text
 * and returns CLI_FAIL, or CLI_USAGE when no source is available.
 */
int cli_pass_read(const char *file, const char *env, const char *prompt,
		  bool confirm, cli_pass *p);

/* Wipes and frees a passphrase; accepts one that was never read. */
void cli_pass_free(cli_pass *p);

/*
 * Loads identity `name` of ctx->home into public_key and *secret
 * (cm_key_load_sealed). A sealed key's passphrase comes from `pass_file`,
 * CLIPMESH_PASSPHRASE or the terminal. Prints the error and returns the
 * exit code: CLI_FAIL for a wrong passphrase, which the message names with
 * the identity and no key bytes.
 */
int cli_load_identity(const cli_ctx *ctx, const char *name,
		      const char *pass_file, uint8_t public_key[32],
		      uint8_t **secret);

/* One subcommand of a command group such as "key new". */
typedef struct cli_sub {
	const char *name;
	int (*run)(cli_ctx *ctx, int argc, char **argv);
	const char *summary;
} cli_sub;

/*
 * Runs the subcommand named by argv[1] with argv shifted by one, and sets
 * ctx->cmd_name to "GROUP SUB" for messages. With --help (or -h) prints
 * the subcommands and returns CLI_OK; with none or an unknown one prints
 * them on stderr and returns CLI_USAGE.
 */
int cli_run_sub(cli_ctx *ctx, int argc, char **argv, const cli_sub *subs,
		size_t n);

/*
 * Writes peer-supplied text s to f so that it can neither forge lines nor
 * reorder the terminal: control characters print as \n, \t, \r or \x1b,
 * C1 controls, line and paragraph separators and bidi controls
 * (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C) as \u{202e},
 * and bytes that are not UTF-8 as \xff. A backslash prints as itself, so
 * text that contains "\n" reads like an escaped newline; --json output
 * gives the exact text.
 */
void cli_put_text(FILE *f, const char *s);

/* Writes s as cli_put_text does, except that a newline starts a new line
 * indented by `indent` spaces, for a field of several lines printed under
 * its value column. */
void cli_put_lines(FILE *f, const char *s, int indent);

/* Escapes s as cli_put_text does into out[cap] (cap at least 4) and
 * returns out. Only text whose escaped form does not fit whole is cut,
 * at a character boundary, and ends in "...". */
const char *cli_escape(const char *s, char *out, size_t cap);

/* Bytes of an input value that an error message echoes at most. */
#define CLI_VALUE_MAX 64

/* Returns value escaped and cut to CLI_VALUE_MAX bytes for an error
 * message. The result lives in one of four static buffers, so at most
 * four results may be used at once. */
const char *cli_value(const char *value);

/* Prints o as one compact JSON line and releases it (steals o). */
void cli_json_line(void *o);

/* Prints the status object that 'status --json' prints as a short text
 * summary: counts, the node's role, peers, rejections and queues. */
struct json_t;
void cli_status_print_text(struct json_t *status);

/* Export file: this 16-byte magic, then per record a 4-byte big-endian
 * length followed by the record's exact wire bytes (proto/PROTOCOL.md,
 * "Export file"). */
#define CLI_EXPORT_MAGIC_LEN 16
extern const char cli_export_magic[CLI_EXPORT_MAGIC_LEN];

/* Commands. */
int cmd_init(cli_ctx *ctx, int argc, char **argv);
int cmd_key(cli_ctx *ctx, int argc, char **argv);
int cmd_id(cli_ctx *ctx, int argc, char **argv);
int cmd_follow(cli_ctx *ctx, int argc, char **argv);
int cmd_unfollow(cli_ctx *ctx, int argc, char **argv);
int cmd_following(cli_ctx *ctx, int argc, char **argv);
int cmd_peer(cli_ctx *ctx, int argc, char **argv);
int cmd_publish(cli_ctx *ctx, int argc, char **argv);
int cmd_retract(cli_ctx *ctx, int argc, char **argv);
int cmd_profile(cli_ctx *ctx, int argc, char **argv);
int cmd_feed(cli_ctx *ctx, int argc, char **argv);
int cmd_show(cli_ctx *ctx, int argc, char **argv);
int cmd_media(cli_ctx *ctx, int argc, char **argv);
int cmd_export(cli_ctx *ctx, int argc, char **argv);
int cmd_import(cli_ctx *ctx, int argc, char **argv);
int cmd_verify(cli_ctx *ctx, int argc, char **argv);
int cmd_node(cli_ctx *ctx, int argc, char **argv);
int cmd_mirror(cli_ctx *ctx, int argc, char **argv);
int cmd_status(cli_ctx *ctx, int argc, char **argv);
int cmd_store(cli_ctx *ctx, int argc, char **argv);
int cmd_config(cli_ctx *ctx, int argc, char **argv);
int cmd_doctor(cli_ctx *ctx, int argc, char **argv);

#endif
