/* cmd_node.c - running a node (node, mirror) and asking about it
 * (status). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cm_log.h"
#include "cm_util.h"
#include "node.h"

typedef struct run_opts {
	const cli_ctx *ctx;
	cli_setting_flags flags;
} run_opts;

/* Copies the settings the node reads into cfg; cfg->peers points into
 * ctx->config and peers[CM_PEERS_MAX]. */
static void fill_node_config(const cli_ctx *ctx, node_role role,
			     const char **peers, node_config *cfg)
{
	static const node_media_policy policies[] = {
		NODE_MEDIA_ALL, NODE_MEDIA_FOLLOWED, NODE_MEDIA_NONE};
	const cm_config *c = ctx->config;
	size_t n_peers = cm_config_count(c, CM_SETTING_PEER);

	for (size_t i = 0; i < n_peers && i < CM_PEERS_MAX; i++)
		peers[i] = cm_config_text(c, CM_SETTING_PEER, i);
	*cfg = (node_config){
		.home = ctx->home,
		.role = role,
		.listen = cm_config_text(c, CM_SETTING_LISTEN, 0),
		.peers = peers,
		.n_peers = n_peers < CM_PEERS_MAX ? n_peers : CM_PEERS_MAX,
		.media = policies[cm_config_num(c, CM_SETTING_MEDIA)],
		.media_size_max = cm_config_num(c, CM_SETTING_MEDIA_MAX),
		.media_budget = cm_config_num(c, CM_SETTING_MEDIA_BUDGET),
		.limits = {
			.peers_max = (unsigned)cm_config_num(
				c, CM_SETTING_PEERS_MAX),
			.connections_max = (unsigned)cm_config_num(
				c, CM_SETTING_CONNECTIONS_MAX),
			.peer_queued_max = cm_config_num(
				c, CM_SETTING_PEER_QUEUED_MAX),
			.queued_total_max = cm_config_num(
				c, CM_SETTING_QUEUED_TOTAL_MAX),
			.media_fetches = (unsigned)cm_config_num(
				c, CM_SETTING_MEDIA_FETCHES),
			.sync_interval_ms = cm_config_num(
				c, CM_SETTING_SYNC_INTERVAL),
			.handshake_ms = cm_config_num(
				c, CM_SETTING_HANDSHAKE_TIMEOUT),
			.hello_timeout_ms = cm_config_num(
				c, CM_SETTING_HELLO_TIMEOUT),
			.store_map_size = cm_config_num(
				c, CM_SETTING_STORE_MAP_SIZE),
		},
	};
}

static int run_opt(void *state, int key, const char *value)
{
	run_opts *o = state;

	return cli_setting_flag(o->ctx, &o->flags, key, value);
}

static int run_node(cli_ctx *ctx, int argc, char **argv, node_role role)
{
	run_opts o = {.ctx = ctx};
	const char *peers[CM_PEERS_MAX];
	node_config cfg;
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, cli_setting_opts, false,
		       "[--listen EP] [--peer ADDR]... [--media POLICY] "
		       "[--media-max BYTES] [--media-budget BYTES] "
		       "[--set NAME=VALUE]...",
		       role == NODE_ROLE_MIRROR
			       ? "Run a mirror in the foreground: it takes "
				 "every valid record and all media. Stops "
				 "cleanly on SIGINT or SIGTERM. Options "
				 "override HOME/config."
			       : "Run a creator node in the foreground: it "
				 "takes its own and followed creators' clips. "
				 "Stops cleanly on SIGINT or SIGTERM. Options "
				 "override HOME/config.",
		       run_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       argv[first]);
	if ((rc = cli_need_home(ctx)) != CLI_OK ||
	    (rc = cli_load_settings(ctx, &o.flags)) != CLI_OK)
		return rc;
	fill_node_config(ctx, role, peers, &cfg);
	if (role == NODE_ROLE_MIRROR && cfg.media != NODE_MEDIA_ALL &&
	    cm_config_source(ctx->config, CM_SETTING_MEDIA, 0).kind ==
		    CM_SOURCE_FLAG)
		return cli_usage_error(ctx, "a mirror fetches all media; run "
				       "'clipmesh node --media ...' for "
				       "another policy");
	cm_err_clear();
	err = node_run(&cfg);
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
	uint64_t log_head = 0;

	store_get_counts(s, &counts);
	store_log_head(s, &log_head);
	json_object_set_new(
		o, "records",
		json_pack("{s:I, s:I, s:I}", "clips", (json_int_t)counts.clips,
			  "retractions", (json_int_t)counts.retractions,
			  "profiles", (json_int_t)counts.profiles));
	json_object_set_new(o, "media",
			    json_pack("{s:I, s:I}", "chunks",
				      (json_int_t)counts.chunks, "bytes",
				      (json_int_t)counts.chunk_bytes));
	json_object_set_new(o, "log_head", json_integer((json_int_t)log_head));
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
