/* cmd_node.c - running a node (node, mirror) and asking about it
 * (status). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cm_log.h"
#include "cm_util.h"
#include "node.h"

enum {
	OPT_LISTEN = 1,
	OPT_PEER,
	OPT_LOG_LEVEL,
	OPT_MEDIA,
	OPT_MEDIA_MAX,
	OPT_MEDIA_BUDGET,
	OPT_PEER_MSGS,
	OPT_PEER_BYTES,
	OPT_BAN_TIME,
	OPT_ALLOW,
	OPT_ALLOW_FILE,
};

typedef struct run_opts {
	const cli_ctx *ctx;
	const char *listen;
	const char *peers[CM_PEERS_MAX];
	size_t n_peers;
	node_media_policy media;
	bool media_set;
	uint64_t media_max;
	uint64_t media_budget;
	uint64_t peer_msgs, peer_bytes, ban_ms;
	const char *allow_args[CM_PEERS_MAX]; /* --allow and --allow-file */
	bool allow_is_file[CM_PEERS_MAX];
	size_t n_allow_args;
	uint8_t *allow;            /* malloc'd by load_allow */
	size_t n_allow;
} run_opts;

/* Parses a byte count with an optional binary suffix K, M, G or T
 * (KiB..TiB) into *out; false when it is not a whole number in range. */
static bool parse_bytes(const char *text, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	unsigned long long value;
	const char *unit;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0)
		return false;
	if (*end != '\0') {
		unit = strchr(suffixes, end[0]);
		if (!unit || end[1] != '\0')
			return false;
		for (const char *u = suffixes; u <= unit; u++) {
			if (value > UINT64_MAX / 1024)
				return false;
			value *= 1024;
		}
	}
	*out = value;
	return true;
}

static int media_opt(run_opts *o, int key, const char *value)
{
	uint64_t bytes;

	if (key == OPT_MEDIA) {
		if (strcmp(value, "all") == 0)
			o->media = NODE_MEDIA_ALL;
		else if (strcmp(value, "followed") == 0)
			o->media = NODE_MEDIA_FOLLOWED;
		else if (strcmp(value, "none") == 0)
			o->media = NODE_MEDIA_NONE;
		else
			return cli_usage_error(o->ctx,
					       "invalid --media '%s': use all, "
					       "followed or none", value);
		o->media_set = true;
		return -1;
	}
	if (!parse_bytes(value, &bytes) || bytes == 0)
		return cli_usage_error(o->ctx,
				       "invalid --%s '%s': expected a "
				       "number of bytes above 0, optionally "
				       "with K, M, G or T (binary units)",
				       key == OPT_MEDIA_MAX ? "media-max"
							    : "media-budget",
				       value);
	if (key == OPT_MEDIA_MAX)
		o->media_max = bytes;
	else
		o->media_budget = bytes;
	return -1;
}

/* Parses the options of peer discipline: input limits, ban time and
 * the allow-list. */
static int peer_opt(run_opts *o, int key, const char *value)
{
	uint64_t number;

	if (key == OPT_ALLOW || key == OPT_ALLOW_FILE) {
		if (o->n_allow_args == CM_PEERS_MAX)
			return cli_usage_error(o->ctx,
					       "at most %d --allow and "
					       "--allow-file options; list "
					       "more keys in a file",
					       CM_PEERS_MAX);
		o->allow_is_file[o->n_allow_args] = key == OPT_ALLOW_FILE;
		o->allow_args[o->n_allow_args++] = value;
		return -1;
	}
	if (key == OPT_PEER_BYTES) {
		if (!parse_bytes(value, &number) || number == 0 ||
		    number > CM_PEER_BYTES_MAX)
			return cli_usage_error(o->ctx, "invalid --peer-bytes "
					       "'%s': give bytes a second from "
					       "1 to 1T, with K, M, G or T",
					       value);
		o->peer_bytes = number;
		return -1;
	}
	if (!cm_parse_u64(value, &number) || number == 0 ||
	    number > (key == OPT_PEER_MSGS ? CM_PEER_MSGS_MAX
					   : CM_BAN_MAX_MS / 1000))
		return cli_usage_error(o->ctx, "invalid --%s '%s': give a "
				       "whole number from 1 to %d",
				       key == OPT_PEER_MSGS ? "peer-msgs"
							    : "ban-time",
				       value,
				       key == OPT_PEER_MSGS
					       ? CM_PEER_MSGS_MAX
					       : CM_BAN_MAX_MS / 1000);
	if (key == OPT_PEER_MSGS)
		o->peer_msgs = number;
	else
		o->ban_ms = number * 1000;
	return -1;
}

/* Reads the keys of every --allow and --allow-file into o->allow; prints
 * the error. */
static int load_allow(run_opts *o)
{
	for (size_t i = 0; i < o->n_allow_args; i++) {
		const char *arg = o->allow_args[i];
		cm_err err;

		cm_err_clear();
		err = o->allow_is_file[i]
			      ? node_allow_read(arg, &o->allow, &o->n_allow)
			      : node_allow_add(arg, &o->allow, &o->n_allow);
		if (err == CM_ERR_NOT_FOUND || err == CM_ERR_IO ||
		    err == CM_ERR_NOMEM)
			return cli_fail(err, "cannot read the allow-list",
					NULL);
		if (err)
			return cli_usage_error(o->ctx, "invalid --%s: %s",
					       o->allow_is_file[i]
						       ? "allow-file"
						       : "allow",
					       cm_err_detail());
	}
	return CLI_OK;
}

static int run_opt(void *state, int key, const char *value)
{
	run_opts *o = state;
	char endpoint[256];
	uint8_t server_key[32];
	int level;

	switch (key) {
	case OPT_LISTEN:
		if (strncmp(value, "tcp://", 6) != 0 ||
		    strrchr(value, ':') == value + 3)
			return cli_usage_error(o->ctx,
					       "invalid --listen '%s': give a "
					       "ZeroMQ TCP endpoint such as "
					       "tcp://127.0.0.1:7701",
					       value);
		o->listen = value;
		break;
	case OPT_PEER:
		if (o->n_peers == CM_PEERS_MAX)
			return cli_usage_error(o->ctx, "at most %d --peer",
					       CM_PEERS_MAX);
		cm_err_clear();
		if (node_parse_addr(value, endpoint, server_key) != CM_OK)
			return cli_usage_error(o->ctx,
					       "invalid --peer '%s': %s; give "
					       "the address 'clipmesh id' "
					       "prints on the peer",
					       value, cm_err_detail());
		o->peers[o->n_peers++] = value;
		break;
	case OPT_MEDIA:
	case OPT_MEDIA_MAX:
	case OPT_MEDIA_BUDGET:
		return media_opt(o, key, value);
	case OPT_PEER_MSGS:
	case OPT_PEER_BYTES:
	case OPT_BAN_TIME:
	case OPT_ALLOW:
	case OPT_ALLOW_FILE:
		return peer_opt(o, key, value);
	case OPT_LOG_LEVEL:
		level = cm_log_parse_level(value);
		if (level < 0)
			return cli_usage_error(o->ctx,
					       "invalid --log-level '%s': use "
					       "debug, info, warn or error",
					       value);
		cm_log_set_level((cm_log_level)level);
		break;
	}
	return -1;
}

static int run_node(cli_ctx *ctx, int argc, char **argv, node_role role)
{
	static const cli_opt opts[] = {
		{"listen", "EP", OPT_LISTEN,
		 "ZeroMQ endpoint to listen on (default: config listen)"},
		{"peer", "ADDR", OPT_PEER,
		 "peer address from 'clipmesh id' (repeatable)"},
		{"log-level", "LEVEL", OPT_LOG_LEVEL,
		 "debug, info, warn or error (default info)"},
		{"media", "POLICY", OPT_MEDIA,
		 "media to fetch: all, followed (own and followed "
		 "creators, the default) or none; a mirror fetches all"},
		{"media-max", "BYTES", OPT_MEDIA_MAX,
		 "skip clips whose media is larger (K, M, G suffixes; "
		 "default 512M)"},
		{"media-budget", "BYTES", OPT_MEDIA_BUDGET,
		 "maximum bytes of stored media chunks; over it, whole media "
		 "is evicted, unused media first, then that of unfollowed "
		 "creators oldest first, never your own (K, M, G, T "
		 "suffixes; default unlimited)"},
		{"peer-msgs", "N", OPT_PEER_MSGS,
		 "messages a second each peer may send, chunks this node "
		 "requested not counted; more are dropped (default 1000)"},
		{"peer-bytes", "BYTES", OPT_PEER_BYTES,
		 "bytes a second each peer may send, chunks this node "
		 "requested not counted (K, M, G suffixes; default 32M)"},
		{"ban-time", "SECONDS", OPT_BAN_TIME,
		 "first ban of a misbehaving peer's key and address; doubles "
		 "on each repeat, at most a day (default 600)"},
		{"allow", "KEY", OPT_ALLOW,
		 "allow-list mode: only this node key (hex, or the address "
		 "'clipmesh id' prints) may connect (repeatable)"},
		{"allow-file", "FILE", OPT_ALLOW_FILE,
		 "allow-list mode with the keys in FILE, one per line, '#' "
		 "comments"},
		{0},
	};
	run_opts o = {.ctx = ctx};
	char listen[256];
	node_config cfg;
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, opts, false,
		       "[--listen EP] [--peer ADDR]... [--media POLICY] "
		       "[--media-max BYTES] [--media-budget BYTES]",
		       role == NODE_ROLE_MIRROR
			       ? "Run a mirror in the foreground: it takes "
				 "every valid record and all media. Stops "
				 "cleanly on SIGINT or SIGTERM."
			       : "Run a creator node in the foreground: it "
				 "takes its own and followed creators' clips. "
				 "Stops cleanly on SIGINT or SIGTERM.",
		       run_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       argv[first]);
	if (role == NODE_ROLE_MIRROR && o.media_set &&
	    o.media != NODE_MEDIA_ALL)
		return cli_usage_error(ctx, "a mirror fetches all media; run "
				       "'clipmesh node --media ...' for "
				       "another policy");
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	if (o.listen != NULL)
		cm_strlcpy(listen, o.listen, sizeof(listen));
	else if (!cm_config_get(ctx->home, "listen", listen, sizeof(listen)))
		cm_strlcpy(listen, CM_DEFAULT_LISTEN, sizeof(listen));
	if ((rc = load_allow(&o)) != CLI_OK) {
		free(o.allow);
		return rc;
	}
	cfg = (node_config){
		.home = ctx->home,
		.role = role,
		.listen = listen,
		.peers = o.peers,
		.n_peers = o.n_peers,
		.media = o.media,
		.media_size_max = o.media_max,
		.media_budget = o.media_budget,
		.peer_msgs = o.peer_msgs,
		.peer_bytes = o.peer_bytes,
		.ban_base_ms = o.ban_ms,
		.allow_only = o.n_allow_args > 0,
		.allow = o.allow,
		.n_allow = o.n_allow,
	};
	cm_err_clear();
	err = node_run(&cfg);
	free(o.allow);
	if (err)
		return cli_fail(err, "node stopped", NULL);
	return CLI_OK;
}

int cmd_node(cli_ctx *ctx, int argc, char **argv)
{
	return run_node(ctx, argc, argv, NODE_ROLE_CREATOR);
}

int cmd_mirror(cli_ctx *ctx, int argc, char **argv)
{
	return run_node(ctx, argc, argv, NODE_ROLE_MIRROR);
}

static int add_counter(void *ctx, const char *name, uint64_t value)
{
	json_object_set_new(ctx, name, json_integer((json_int_t)value));
	return 0;
}

/* Builds the status object from the store, and the node's if it runs. */
static json_t *collect_status(const char *home, store *s)
{
	json_t *o = json_object(), *counters = json_object(), *node = NULL;
	store_counts counts = {0};
	char *node_json = NULL;

	store_get_counts(s, &counts);
	json_object_set_new(
		o, "records",
		json_pack("{s:I, s:I, s:I}", "clips", (json_int_t)counts.clips,
			  "retractions", (json_int_t)counts.retractions,
			  "profiles", (json_int_t)counts.profiles));
	json_object_set_new(o, "media",
			    json_pack("{s:I, s:I}", "chunks",
				      (json_int_t)counts.chunks, "bytes",
				      (json_int_t)counts.chunk_bytes));
	store_counter_list(s, add_counter, counters);
	json_object_set_new(o, "counters", counters);
	if (node_status(home, &node_json) == CM_OK) {
		node = json_loads(node_json, 0, NULL);
		free(node_json);
	}
	json_object_set_new(o, "node", node ? node : json_null());
	return o;
}

int cmd_status(cli_ctx *ctx, int argc, char **argv)
{
	store *s = NULL;
	json_t *o;
	int first, rc;

	rc = cli_parse(ctx, argc, argv, NULL, true, "",
		       "Print record counts, rejected input by reason, and "
		       "the running node's peers and sync state.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       argv[first]);
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	o = collect_status(ctx->home, s);
	store_close(&s);
	if (ctx->json) {
		cli_json_line(o);
	} else {
		char *text = json_dumps(o, JSON_INDENT(2));

		printf("%s\n", text ? text : "{}");
		free(text);
		json_decref(o);
	}
	return CLI_OK;
}
