#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cm_util.h"
#include "node.h"
#include "proto_record.h"

enum { OPT_HOME = 0x1000, OPT_JSON, OPT_HELP };

static void print_help(const cli_ctx *ctx, const cli_opt *opts,
		       bool allow_json, const char *usage,
		       const char *summary)
{
	/* The usage line names --json as the manual's headings do. */
	printf("usage: clipmesh %s%s%s%s\n\n%s\n\noptions:\n", ctx->cmd_name,
	       usage[0] ? " " : "", usage, allow_json ? " [--json]" : "",
	       summary);
	for (const cli_opt *o = opts; o && o->name; o++) {
		char left[64];

		bool letter = o->key < 128 && isalpha(o->key);

		if (letter)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->key,
				 o->name, o->arg ? " " : "",
				 o->arg ? o->arg : "");
		else
			snprintf(left, sizeof(left), "--%s%s%s", o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		printf("  %-24s %s%s\n", left, o->help,
		       o->repeatable ? " (repeatable)" : "");
	}
	if (allow_json)
		printf("  %-24s %s\n", "--json",
		       "print one JSON object per line");
	printf("  %-24s %s\n", "--home DIR",
	       "home folder (default $CLIPMESH_HOME, else "
	       "$XDG_DATA_HOME/clipmesh)");
	printf("  %-24s %s\n", "--help", "print this help and exit");
}

/* Returns the option of `opts` with `key`, or NULL. */
static const cli_opt *find_opt(const cli_opt *opts, int key)
{
	for (const cli_opt *o = opts; o && o->name; o++)
		if (o->key == key)
			return o;
	return NULL;
}

/* Rejects an empty value of a FILE or DIR option, which no open or
 * mkdir accepts. Returns -1 to go on, else CLI_USAGE. */
static int check_path_opt(const cli_ctx *ctx, const cli_opt *o,
			  const char *value)
{
	if (o == NULL || o->arg == NULL || value[0] != '\0')
		return -1;
	if (strcmp(o->arg, "FILE") != 0 && strcmp(o->arg, "DIR") != 0)
		return -1;
	return cli_usage_error(ctx, "--%s is empty: give the path of a %s",
			       o->name,
			       o->arg[0] == 'F' ? "file" : "folder");
}

/* Counts one more use of the option with key c among the n longopts.
 * Returns -1 to go on, else CLI_USAGE for a second value of an option
 * that takes a value and is not repeatable, so that no value is
 * silently dropped. */
static int count_use(const cli_ctx *ctx, const cli_opt *opts,
		     const struct option *longopts, size_t n,
		     unsigned *uses, int c)
{
	const cli_opt *o = find_opt(opts, c);

	for (size_t i = 0; i < n; i++) {
		if (longopts[i].val != c)
			continue;
		if (++uses[i] < 2 || longopts[i].has_arg == no_argument ||
		    (o != NULL && o->repeatable))
			return -1;
		return cli_usage_error(ctx, "--%s given twice; give it once",
				       longopts[i].name);
	}
	return -1;
}

int cli_parse(cli_ctx *ctx, int argc, char **argv, const cli_opt *opts,
	      bool allow_json, const char *usage, const char *summary,
	      cli_opt_fn fn, void *state, int *first_arg)
{
	struct option longopts[64];
	unsigned uses[64] = {0};
	char shortopts[64] = "";
	size_t n = 0, n_short = 0;
	int c;

	for (const cli_opt *o = opts; o && o->name && n < 60; o++) {
		/* A letter key also gives the option a short form (-o). */
		if (o->key < 128 && isalpha(o->key) && n_short < 60) {
			shortopts[n_short++] = (char)o->key;
			if (o->arg)
				shortopts[n_short++] = ':';
		}
		longopts[n++] = (struct option){o->name,
						o->arg ? required_argument
						       : no_argument,
						NULL, o->key};
	}
	longopts[n++] = (struct option){"home", required_argument, NULL,
					OPT_HOME};
	if (allow_json)
		longopts[n++] = (struct option){"json", no_argument, NULL,
						OPT_JSON};
	longopts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
	longopts[n] = (struct option){NULL, 0, NULL, 0};

	optind = 1;
	opterr = 0;
	/* GNU getopt permutes, so options may follow positional arguments
	 * ("publish FILE --as NAME"); "--" ends the options. */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) !=
	       -1) {
		int rc;

		if (c != '?' &&
		    (rc = count_use(ctx, opts, longopts, n, uses, c)) >= 0)
			return rc;
		switch (c) {
		case OPT_HOME:
			/* A --home before the command and another after it
			 * would leave one of them unused. */
			if (ctx->home_flag != NULL &&
			    ctx->home_flag != optarg)
				return cli_usage_error(
					ctx, "--home given before and after "
					"the command; give it once");
			ctx->home_flag = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_HELP:
			print_help(ctx, opts, allow_json, usage, summary);
			return CLI_OK;
		case '?':
			/* getopt names a known option that lacks its value
			 * in optopt, and leaves it 0 for an unknown one. */
			for (size_t i = 0; optopt != 0 && i < n; i++)
				if (longopts[i].val == optopt &&
				    longopts[i].has_arg == required_argument)
					return cli_usage_error(
						ctx, "option --%s needs a value",
						longopts[i].name);
			return cli_usage_error(ctx, "unknown option %s",
					       cli_value(argv[optind - 1]));
		default:
			if (optarg != NULL &&
			    (rc = check_path_opt(ctx, find_opt(opts, c),
						 optarg)) >= 0)
				return rc;
			rc = fn ? fn(state, c, optarg) : CLI_USAGE;
			if (rc >= 0)
				return rc;
		}
	}
	*first_arg = optind;
	return -1;
}

int cli_fail(cm_err err, const char *what, const char *hint)
{
	const char *detail = cm_err_detail();

	/* The detail may name a file, identity or other value from the
	 * command line, so it is escaped like text from a peer. */
	fprintf(stderr, "clipmesh: %s: ", what);
	cli_put_text(stderr, *detail ? detail : cm_err_text(err));
	fputc('\n', stderr);
	if (hint != NULL)
		fprintf(stderr, "%s\n", hint);
	return err == CM_ERR_USAGE ? CLI_USAGE : CLI_FAIL;
}

int cli_usage_error(const cli_ctx *ctx, const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	/* Escaping text that cli_value already escaped changes nothing,
	 * because escaped text contains no control characters. */
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	fprintf(stderr, "clipmesh: ");
	cli_put_text(stderr, message);
	fprintf(stderr, "\nrun 'clipmesh %s --help' for usage\n",
		ctx->cmd_name);
	return CLI_USAGE;
}

int cli_check_paths(const cli_ctx *ctx, char **paths, int n,
		    const char *what)
{
	const char *kind = strcmp(what, "DIR") == 0 ? "folder" : "file";

	for (int i = 0; i < n; i++) {
		if (paths[i][0] != '\0')
			continue;
		if (n == 1)
			return cli_usage_error(ctx, "%s is empty: give the "
					       "path of a %s", what, kind);
		return cli_usage_error(ctx, "%s %d of %d is empty: give the "
				       "path of a %s", what, i + 1, n, kind);
	}
	return -1;
}

int cli_open_regular(const char *path, struct stat *st, bool *not_regular)
{
	int fd;

	*not_regular = false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		*not_regular = true;
		return -1;
	}
	return fd;
}

FILE *cli_fopen_regular(const char *path, bool *not_regular)
{
	struct stat st;
	FILE *f;
	int fd, flags;

	fd = cli_open_regular(path, &st, not_regular);
	if (fd < 0)
		return NULL;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
	    (f = fdopen(fd, "rb")) == NULL) {
		close(fd);
		return NULL;
	}
	return f;
}

long cli_node_pid(const char *home)
{
	char path[CM_HOME_PATH_MAX];
	long pid = 0;
	FILE *f;

	if (cm_home_path(home, "node.lock", path) != CM_OK ||
	    (f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid < 0)
		pid = 0;
	fclose(f);
	return pid;
}

int cli_need_home(cli_ctx *ctx)
{
	cm_err err;

	cm_err_clear();
	err = cm_home_resolve(ctx->home_flag, ctx->home);
	if (err)
		return cli_fail(err, "cannot find the home folder", NULL);
	if (!cm_home_is_init(ctx->home)) {
		fprintf(stderr, "clipmesh: home is not initialised: ");
		cli_put_text(stderr, ctx->home);
		fprintf(stderr, "\nrun 'clipmesh init --home ");
		cli_put_text(stderr, ctx->home);
		fprintf(stderr, "' first\n");
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cli_open_store(cli_ctx *ctx, store **s)
{
	char path[CM_HOME_PATH_MAX];
	cm_err err;
	int rc = cli_need_home(ctx);

	if (rc != CLI_OK)
		return rc;
	/* Every process must open the store with the same map size, or one
	 * that grows it past another's map makes the other fail. */
	if ((rc = cli_load_settings(ctx, NULL)) != CLI_OK)
		return rc;
	cm_err_clear();
	err = cm_home_path(ctx->home, "store", path);
	if (!err)
		err = store_open_sized(
			path,
			cm_config_num(ctx->config, CM_SETTING_STORE_MAP_SIZE),
			s);
	if (err)
		return cli_fail(err, "cannot open the store", NULL);
	return CLI_OK;
}

int cli_parse_key(const cli_ctx *ctx, const char *hex, uint8_t key[32])
{
	if (!cm_hex_decode(hex, key, 32))
		return cli_usage_error(ctx,
				       "invalid public key '%s': expected 64 "
				       "hex characters, of which the feed's "
				       "text shows only 8. 'clipmesh feed "
				       "--json', 'following' and 'key list' "
				       "print whole keys",
				       cli_value(hex));
	return CLI_OK;
}

int cli_check_tag(const cli_ctx *ctx, const char *tag)
{
	cm_err_clear();
	if (proto_tag_check(tag) != CM_OK)
		return cli_usage_error(ctx, "invalid --tag '%s': %s, so no "
				       "clip has it", cli_value(tag),
				       cm_err_detail());
	return -1;
}

int cli_resolve_id(store *s, const char *prefix, uint8_t id[32])
{
	cm_err err;

	if (strlen(prefix) < CM_ID_PREFIX_MIN || strlen(prefix) > 64 ||
	    !cm_hex_valid_prefix(prefix)) {
		fprintf(stderr,
			"clipmesh: invalid id '%s': give %d to 64 hex "
			"characters of a record id\n",
			cli_value(prefix), CM_ID_PREFIX_MIN);
		return CLI_USAGE;
	}
	cm_err_clear();
	err = store_resolve(s, prefix, id);
	if (err == CM_ERR_NOT_FOUND) {
		fprintf(stderr,
			"clipmesh: no record with id '%s' in the store\n"
			"check the id with 'clipmesh feed'; a retracted "
			"clip is named only by its full id\n",
			prefix);
		return CLI_FAIL;
	}
	/* The prefix is the user's input to fix, so this is bad usage, as
	 * the HTTP API returns 400 for it. */
	if (err == CM_ERR_AMBIGUOUS) {
		fprintf(stderr,
			"clipmesh: id prefix '%s' matches several records\n"
			"give more characters of the id\n",
			prefix);
		return CLI_USAGE;
	}
	if (err)
		return cli_fail(err, "cannot look up the id", NULL);
	return CLI_OK;
}

void cli_notify_node(const char *home, const uint8_t (*ids)[32], size_t n)
{
	const size_t page = 1000;

	for (size_t i = 0; i < n; i += page) {
		size_t count = n - i < page ? n - i : page;
		cm_err err = node_notify(home, ids + i, count);

		if (err == CM_ERR_NOT_FOUND)
			return;
		if (err) {
			fprintf(stderr,
				"clipmesh: note: the running node did not "
				"take the new records (%s); it sends them "
				"at its next sync\n",
				cm_err_text(err));
			return;
		}
	}
}

void cli_json_line(void *o)
{
	char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (line != NULL)
		printf("%s\n", line);
	free(line);
	json_decref(o);
}

int cli_run_sub(cli_ctx *ctx, int argc, char **argv, const cli_sub *subs,
		size_t n)
{
	static char name[64];
	bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
				  strcmp(argv[1], "-h") == 0);
	FILE *out = help ? stdout : stderr;

	for (size_t i = 0; argc >= 2 && i < n; i++) {
		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		snprintf(name, sizeof(name), "%s %s", ctx->cmd_name,
			 subs[i].name);
		ctx->cmd_name = name;
		return subs[i].run(ctx, argc - 1, argv + 1);
	}
	if (!help && argc >= 2)
		fprintf(out, "clipmesh: unknown subcommand of '%s': %s\n",
			ctx->cmd_name, cli_value(argv[1]));
	else if (!help)
		fprintf(out, "clipmesh: missing subcommand of '%s'\n",
			ctx->cmd_name);
	fprintf(out, "usage: clipmesh %s SUBCOMMAND [OPTIONS]\n\n"
		     "subcommands:\n", ctx->cmd_name);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-8s %s\n", subs[i].name, subs[i].summary);
	fprintf(out, "\nrun 'clipmesh %s SUBCOMMAND --help' for its options\n",
		ctx->cmd_name);
	return help ? CLI_OK : CLI_USAGE;
}
