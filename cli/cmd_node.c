/* cmd_node.c - running a node (node, mirror) and asking about it
 * (status). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cm_limits.h"
#include "cm_log.h"
#include "cm_util.h"
#include "http.h"
#include "node.h"

enum {
	OPT_ALLOW = 1,
	OPT_ALLOW_FILE,
};

/* Options of node and mirror besides the settings (cli_setting_opts). */
static const cli_opt allow_opts[] = {
	{"allow", "KEY", OPT_ALLOW,
	 "allow-list mode: only this node key (hex, or the address "
	 "'clipmesh id' prints) may connect", true},
	{"allow-file", "FILE", OPT_ALLOW_FILE,
	 "allow-list mode with the keys in FILE, one per line, '#' "
	 "comments", true},
};

#define ALLOW_OPTS (sizeof(allow_opts) / sizeof(allow_opts[0]))

typedef struct run_opts {
	const cli_ctx *ctx;
	cli_setting_flags flags;
	const char *allow_args[CM_PEERS_MAX]; /* --allow and --allow-file */
	bool allow_is_file[CM_PEERS_MAX];
	size_t n_allow_args;
	uint8_t *allow;            /* malloc'd by load_allow */
	size_t n_allow;
	http_config http;          /* addr NULL: no HTTP API */
	http_server *server;
} run_opts;

/* Copies the settings the node reads into cfg; cfg->peers points into
 * ctx->config and peers[CM_PEERS_MAX]. */
static void fill_node_config(const cli_ctx *ctx, node_role role,
			     const char **peers, node_config *cfg)
{
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
		.media = cli_media_policy(c),
		.media_size_max = cm_config_num(c, CM_SETTING_MEDIA_MAX),
		.media_budget = cm_config_num(c, CM_SETTING_MEDIA_BUDGET),
		.peers_learned = (unsigned)cm_config_num(
			c, CM_SETTING_PEERS_LEARNED),
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
			.reconnect_max_ms = cm_config_num(
				c, CM_SETTING_RECONNECT_MAX),
			.store_map_size = cm_config_num(
				c, CM_SETTING_STORE_MAP_SIZE),
		},
		.peer_msgs = cm_config_num(c, CM_SETTING_PEER_MSGS),
		.peer_bytes = cm_config_num(c, CM_SETTING_PEER_BYTES),
		.ban_base_ms = cm_config_num(c, CM_SETTING_BAN_TIME),
	};
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

static cm_err start_http(void *ctx, store *st)
{
	run_opts *o = ctx;

	return http_start(&o->http, st, &o->server);
}

static void stop_http(void *ctx)
{
	run_opts *o = ctx;

	http_stop(&o->server);
}

/* Reads the http and http_rate settings into o->http; the API runs only
 * on a mirror. */
static int http_settings(run_opts *o, node_role role)
{
	const cm_config *c = o->ctx->config;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	unsigned rate;

	o->http.addr = cm_config_text(c, CM_SETTING_HTTP, 0);
	if (role != NODE_ROLE_MIRROR) {
		if (o->http.addr != NULL &&
		    cm_config_source(c, CM_SETTING_HTTP, 0).kind ==
			    CM_SOURCE_FLAG)
			return cli_usage_error(o->ctx, "--http is for mirrors; "
					       "run 'clipmesh mirror --http "
					       "ADDR'");
		o->http.addr = NULL; /* a [mirror] setting of the file */
		return CLI_OK;
	}
	if (o->http.addr == NULL)
		return CLI_OK;
	cm_err_clear();
	if (http_parse_addr(o->http.addr, &addr, &addr_len) != CM_OK)
		return cli_usage_error(o->ctx, "%s", cm_err_detail());
	rate = (unsigned)cm_config_num(c, CM_SETTING_HTTP_RATE);
	o->http.rate = rate;
	o->http.burst = 2 * rate;
	return CLI_OK;
}

static int run_opt(void *state, int key, const char *value)
{
	run_opts *o = state;

	if (key != OPT_ALLOW && key != OPT_ALLOW_FILE)
		return cli_setting_flag(o->ctx, &o->flags, key, value);
	if (o->n_allow_args == CM_PEERS_MAX)
		return cli_usage_error(o->ctx,
				       "more than %d --allow and --allow-file "
				       "options; list the keys in a file",
				       CM_PEERS_MAX);
	o->allow_is_file[o->n_allow_args] = key == OPT_ALLOW_FILE;
	o->allow_args[o->n_allow_args++] = value;
	return -1;
}

/* Fills opts with the setting options and allow_opts, then the end
 * marker; returns CLI_OK, or CLI_FAIL when opts[cap] is too small. */
static int node_opts(cli_opt *opts, size_t cap)
{
	size_t n = 0;

	while (cli_setting_opts[n].name != NULL)
		n++;
	if (n + ALLOW_OPTS + 1 > cap)
		return cli_fail(CM_ERR_USAGE, "too many node options", NULL);
	memcpy(opts, cli_setting_opts, n * sizeof(*opts));
	memcpy(opts + n, allow_opts, sizeof(allow_opts));
	memset(&opts[n + ALLOW_OPTS], 0, sizeof(*opts));
	return CLI_OK;
}

static int run_node(cli_ctx *ctx, int argc, char **argv, node_role role)
{
	run_opts o = {.ctx = ctx};
	const char *peers[CM_PEERS_MAX];
	cli_opt opts[32];
	node_config cfg;
	int first, rc;
	cm_err err;

	if ((rc = node_opts(opts, sizeof(opts) / sizeof(opts[0]))) != CLI_OK)
		return rc;
	rc = cli_parse(ctx, argc, argv, opts, false,
		       "[--listen EP] [--peer ADDR]... [--media POLICY] "
		       "[--media-max BYTES] [--media-budget BYTES] "
		       "[--allow KEY]... [--allow-file FILE]... "
		       "[--http ADDR] [--set NAME=VALUE]...",
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
				       cli_value(argv[first]));
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
	if ((rc = http_settings(&o, role)) != CLI_OK)
		return rc;
	if (o.http.addr != NULL) {
		cfg.on_start = start_http;
		cfg.on_stop = stop_http;
		cfg.hook_ctx = &o;
	}
	if ((rc = load_allow(&o)) != CLI_OK)
		goto out;
	cfg.test_clock_offset_ms = o.flags.test_clock_offset_ms;
	cfg.allow_only = o.n_allow_args > 0;
	cfg.allow = o.allow;
	cfg.n_allow = o.n_allow;
	cm_err_clear();
	err = node_run(&cfg);
	rc = err ? cli_fail(err, "node failed", NULL) : CLI_OK;
out:
	free(o.allow);
	return rc;
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
	cm_err err;

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
	err = node_status(home, &node_json);
	if (err == CM_OK) {
		node = json_loads(node_json, 0, NULL);
		free(node_json);
	}
	json_object_set_new(o, "node", node ? node : json_null());
	/* A node that holds the lock but does not reply still runs, and
	 * may be stopped or overloaded. */
	if (err == CM_ERR_TIMEOUT)
		json_object_set_new(
			o, "node_silent",
			json_pack("{s:I, s:I}", "pid",
				  (json_int_t)cli_node_pid(home), "timeout_ms",
				  (json_int_t)CM_CONTROL_TIMEOUT_MS));
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
				       cli_value(argv[first]));
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	o = collect_status(ctx->home, s);
	store_close(&s);
	if (ctx->json) {
		cli_json_line(o);
	} else {
		cli_status_print_text(o);
		json_decref(o);
	}
	return CLI_OK;
}
