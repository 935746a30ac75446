/*
 * main.c - the clipmesh command: finds the command in the table and runs
 * it. Global options (--home, --log-level) may come before the command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "cm_log.h"

typedef struct command {
	const char *name;
	int (*run)(cli_ctx *ctx, int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{"init", cmd_init, "create the home: store, node transport key, config"},
	{"key", cmd_key, "key new | list | passwd: creator identities"},
	{"publish", cmd_publish, "sign and publish a clip"},
	{"retract", cmd_retract, "sign and publish a retraction of a clip"},
	{"profile", cmd_profile, "profile set: sign and publish a profile"},
	{"feed", cmd_feed, "list clips, newest first"},
	{"show", cmd_show, "show one record with its verification status"},
	{"media", cmd_media, "media get ID -o FILE: write a clip's media"},
	{"export", cmd_export, "write signed records to a portable file"},
	{"import", cmd_import, "verify and store records from an export file"},
	{"verify", cmd_verify, "check signed record files without storing them"},
	{"follow", cmd_follow, "replicate a creator's clips on this node"},
	{"unfollow", cmd_unfollow, "stop replicating a creator's clips"},
	{"following", cmd_following, "list followed creators"},
	{"node", cmd_node, "run a creator node in the foreground"},
	{"mirror", cmd_mirror, "run a mirror node in the foreground"},
	{"peer", cmd_peer, "peer add ADDR | peer list: known peers"},
	{"id", cmd_id, "print this node's peer address"},
	{"status", cmd_status, "counts, peers and rejected input"},
	{"store", cmd_store, "store check | store backup DIR"},
	{"config", cmd_config, "config show | example: settings"},
	{"doctor", cmd_doctor, "check the home and print fixes"},
};

static void print_usage(FILE *out)
{
	fprintf(out,
		"usage: clipmesh [--home DIR] [--log-level LEVEL] COMMAND "
		"[OPTIONS]\n\n"
		"clipmesh syncs signed creator review clips between nodes.\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out, "\nrun 'clipmesh COMMAND --help' for a command's "
		     "options\n");
}

/*
 * Reads the value of global option `name` at argv[i], given as "NAME
 * VALUE" or "NAME=VALUE", into *value. Returns how many arguments it
 * takes, 0 when argv[i] is another option, or -1 after printing a usage
 * error for a missing value or, when `given`, a second one.
 */
static int global_value(int argc, char **argv, int i, const char *name,
			bool given, const char **value)
{
	size_t n = strlen(name);
	int used;

	if (strncmp(argv[i], name, n) != 0 ||
	    (argv[i][n] != '\0' && argv[i][n] != '='))
		return 0;
	if (argv[i][n] == '=') {
		*value = argv[i] + n + 1;
		used = 1;
	} else if (i + 1 < argc) {
		*value = argv[i + 1];
		used = 2;
	} else {
		fprintf(stderr, "clipmesh: option %s needs a value before "
			"the command\n", name);
		print_usage(stderr);
		return -1;
	}
	if (given) {
		fprintf(stderr, "clipmesh: %s given twice; give it once\n",
			name);
		print_usage(stderr);
		return -1;
	}
	return used;
}

/* Sets the log level from the global --log-level for what logs before
 * the settings load; the settings take it as an option over
 * HOME/config. Prints a usage error for an unknown level. */
static int set_log_level(const char *value)
{
	int level = cm_log_parse_level(value);

	if (level < 0) {
		fprintf(stderr, "clipmesh: invalid log level '%s': use "
			"debug, info, warn or error\n", cli_value(value));
		return CLI_USAGE;
	}
	cm_log_set_level((cm_log_level)level);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	cli_ctx ctx = {0};
	int i = 1, rc;

	if (sodium_init() < 0) {
		fprintf(stderr, "clipmesh: libsodium failed to start\n");
		return CLI_FAIL;
	}
	cm_log_init();
	while (i < argc && argv[i][0] == '-') {
		const char *value;
		int used;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			print_usage(stdout);
			return CLI_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("clipmesh %s\n", CLIPMESH_VERSION);
			return CLI_OK;
		} else if ((used = global_value(argc, argv, i, "--home",
						ctx.home_flag != NULL,
						&value)) != 0) {
			if (used < 0)
				return CLI_USAGE;
			ctx.home_flag = value;
			i += used;
		} else if ((used = global_value(argc, argv, i, "--log-level",
						ctx.log_level_flag != NULL,
						&value)) != 0) {
			if (used < 0 || set_log_level(value) != CLI_OK)
				return CLI_USAGE;
			ctx.log_level_flag = value;
			i += used;
		} else {
			fprintf(stderr, "clipmesh: unknown option '%s'\n",
				argv[i]);
			print_usage(stderr);
			return CLI_USAGE;
		}
	}
	if (i >= argc) {
		print_usage(stderr);
		return CLI_USAGE;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(*commands); c++) {
		if (strcmp(argv[i], commands[c].name) == 0) {
			ctx.cmd_name = commands[c].name;
			rc = commands[c].run(&ctx, argc - i, argv + i);
			cm_config_free(&ctx.config);
			return rc;
		}
	}
	fprintf(stderr, "clipmesh: unknown command '%s'\n", argv[i]);
	print_usage(stderr);
	return CLI_USAGE;
}
