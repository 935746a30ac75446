/*
 * cli_settings.c - the settings of a command: HOME/config, then the
 * options that override it.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cm_limits.h"
#include "cm_log.h"
#include "node.h"

enum {
	OPT_LISTEN = CLI_SETTING_OPT_BASE,
	OPT_PEER,
	OPT_MEDIA,
	OPT_MEDIA_MAX,
	OPT_MEDIA_BUDGET,
	OPT_LOG_LEVEL,
	OPT_PEER_MSGS,
	OPT_PEER_BYTES,
	OPT_BAN_TIME,
	OPT_HTTP,
	OPT_HTTP_RATE,
	OPT_SET,
};

const cli_opt cli_setting_opts[] = {
	{"listen", "EP", OPT_LISTEN,
	 "ZeroMQ endpoint to listen on (setting listen)", false},
	{"peer", "ADDR", OPT_PEER,
	 "peer address from 'clipmesh id', used in place of the "
	 "config's peer lines", true},
	{"media", "POLICY", OPT_MEDIA,
	 "media to fetch: all, followed (own and followed creators, the "
	 "default) or none; a mirror fetches all", false},
	{"media-max", "BYTES", OPT_MEDIA_MAX,
	 "skip clips whose media is larger (K, M, G suffixes; default 512M)",
	 false},
	{"media-budget", "BYTES", OPT_MEDIA_BUDGET,
	 "maximum bytes of stored media chunks; over it, whole media is "
	 "evicted, unused media first, then that of unfollowed creators "
	 "oldest first, never your own (K, M, G, T suffixes; default "
	 "unlimited)", false},
	{"log-level", "LEVEL", OPT_LOG_LEVEL,
	 "debug, info, warn or error (default info)", false},
	{"peer-msgs", "N", OPT_PEER_MSGS,
	 "messages a second each peer may send, chunks this node requested "
	 "not counted; more are dropped (default 1000)", false},
	{"peer-bytes", "BYTES", OPT_PEER_BYTES,
	 "bytes a second each peer may send, chunks this node requested not "
	 "counted (K, M, G suffixes; default 32M)", false},
	{"ban-time", "TIME", OPT_BAN_TIME,
	 "first ban of a misbehaving peer's key and address, in seconds or "
	 "with a unit (ms, s, m, h); doubles on each repeat, at most a day "
	 "(default 10m)", false},
	{"http", "ADDR", OPT_HTTP,
	 "mirror only: serve the read-only HTTP API on ADDR (PORT for "
	 "127.0.0.1:PORT, IPV4:PORT or [IPV6]:PORT; setting http)", false},
	{"http-rate", "N", OPT_HTTP_RATE,
	 "HTTP requests a second per client address, in bursts of twice "
	 "that (default 50)", false},
	{"set", "NAME=VALUE", OPT_SET,
	 "override any setting of clipmesh.conf(5)", true},
	{0},
};

/*
 * A setting for tests only, which only --set reaches: this node's clock
 * reads this much off the system clock in HELLO and PING, so that a test
 * can make a peer's clock look wrong without changing the system clock.
 * It stays out of the settings table so that HOME/config, 'config show',
 * the example file and the manual never offer it to operators.
 */
#define TEST_CLOCK_OFFSET "test_clock_offset"

/* The setting and the option name of each key but OPT_SET. */
static const struct {
	int key;
	cm_setting_id id;
	const char *flag;
} flag_settings[] = {
	{OPT_LISTEN, CM_SETTING_LISTEN, "--listen"},
	{OPT_PEER, CM_SETTING_PEER, "--peer"},
	{OPT_MEDIA, CM_SETTING_MEDIA, "--media"},
	{OPT_MEDIA_MAX, CM_SETTING_MEDIA_MAX, "--media-max"},
	{OPT_MEDIA_BUDGET, CM_SETTING_MEDIA_BUDGET, "--media-budget"},
	{OPT_LOG_LEVEL, CM_SETTING_LOG_LEVEL, "--log-level"},
	{OPT_PEER_MSGS, CM_SETTING_PEER_MSGS, "--peer-msgs"},
	{OPT_PEER_BYTES, CM_SETTING_PEER_BYTES, "--peer-bytes"},
	{OPT_BAN_TIME, CM_SETTING_BAN_TIME, "--ban-time"},
	{OPT_HTTP, CM_SETTING_HTTP, "--http"},
	{OPT_HTTP_RATE, CM_SETTING_HTTP_RATE, "--http-rate"},
};

/* Parses "[+|-]DURATION" with the units of a duration setting, at most
 * CM_TEST_CLOCK_OFFSET_MAX_MS either way. */
static bool parse_clock_offset(const char *text, int64_t *ms)
{
	bool negative = text[0] == '-';
	uint64_t magnitude;

	if (text[0] == '-' || text[0] == '+')
		text++;
	if (!cm_parse_duration(text, &magnitude) ||
	    magnitude > CM_TEST_CLOCK_OFFSET_MAX_MS)
		return false;
	*ms = negative ? -(int64_t)magnitude : (int64_t)magnitude;
	return true;
}

static int set_clock_offset(const cli_ctx *ctx, cli_setting_flags *flags,
			    const char *value)
{
	if (parse_clock_offset(value, &flags->test_clock_offset_ms))
		return -1;
	return cli_usage_error(ctx, "invalid --set %s=%s: expected a "
			       "duration with an optional sign, at most %d "
			       "ms either way, e.g. -90s or 2m",
			       TEST_CLOCK_OFFSET, value,
			       CM_TEST_CLOCK_OFFSET_MAX_MS);
}

int cli_setting_flag(const cli_ctx *ctx, cli_setting_flags *flags, int key,
		     const char *value)
{
	char name[64];
	const char *eq;
	size_t i = flags->n;

	if (i == CLI_SETTING_FLAGS_MAX)
		return cli_usage_error(ctx, "more than %d setting options",
				       CLI_SETTING_FLAGS_MAX);
	if (key != OPT_SET) {
		for (size_t k = 0; k < sizeof(flag_settings) /
					       sizeof(flag_settings[0]);
		     k++) {
			if (flag_settings[k].key != key)
				continue;
			flags->items[i].id = flag_settings[k].id;
			flags->items[i].flag = flag_settings[k].flag;
			flags->items[i].value = value;
			flags->n++;
			return -1;
		}
		return cli_usage_error(ctx, "unknown option");
	}

	eq = strchr(value, '=');
	if (eq == NULL || eq == value || (size_t)(eq - value) >= sizeof(name))
		return cli_usage_error(ctx, "invalid --set '%s': give "
				       "NAME=VALUE, e.g. --set peers_max=16",
				       value);
	memcpy(name, value, (size_t)(eq - value));
	name[eq - value] = '\0';
	if (strcmp(name, TEST_CLOCK_OFFSET) == 0)
		return set_clock_offset(ctx, flags, eq + 1);
	flags->items[i].id = cm_setting_find(name);
	if (flags->items[i].id == CM_SETTING_COUNT)
		return cli_usage_error(ctx, "invalid --set '%s': no setting "
				       "named '%s'; 'clipmesh config show' "
				       "lists them", value, name);
	flags->items[i].flag = "--set";
	flags->items[i].value = eq + 1;
	flags->n++;
	return -1;
}

/* Checks a peer address with the rules the node applies. */
static cm_err check_peer(const char *addr)
{
	char endpoint[256];
	uint8_t key[32];

	return node_parse_addr(addr, endpoint, key);
}

/* Creates ctx->config from HOME/config. */
static int load_file(cli_ctx *ctx)
{
	char path[CM_HOME_PATH_MAX];
	cm_err err;

	cm_err_clear();
	err = cm_home_path(ctx->home, "config", path);
	if (!err)
		err = cm_config_new(check_peer, &ctx->config);
	if (err)
		return cli_fail(err, "cannot read the settings", NULL);
	err = cm_config_load(ctx->config, path);
	if (err == CM_ERR_USAGE) {
		fprintf(stderr, "clipmesh: invalid configuration: %s\n"
			"fix the file (clipmesh.conf(5) lists every setting) "
			"and run the command again\n",
			cm_config_error(ctx->config));
		return CLI_USAGE;
	}
	if (err)
		return cli_fail(err, "cannot read the settings", NULL);
	return CLI_OK;
}

/* Applies one option; prints the error as a usage error. */
static int apply_flag(cli_ctx *ctx, cm_setting_id id, const char *value,
		      const char *flag)
{
	if (cm_config_set_flag(ctx->config, id, value, flag) == CM_OK)
		return CLI_OK;
	return cli_usage_error(ctx, "%s", cm_config_error(ctx->config));
}

int cli_load_settings(cli_ctx *ctx, const cli_setting_flags *flags)
{
	int rc;

	if (ctx->config == NULL && (rc = load_file(ctx)) != CLI_OK)
		return rc;
	if (ctx->log_level_flag != NULL &&
	    (rc = apply_flag(ctx, CM_SETTING_LOG_LEVEL, ctx->log_level_flag,
			     "--log-level")) != CLI_OK)
		return rc;
	for (size_t i = 0; flags != NULL && i < flags->n; i++) {
		rc = apply_flag(ctx, flags->items[i].id, flags->items[i].value,
				flags->items[i].flag);
		if (rc != CLI_OK)
			return rc;
	}
	cm_log_set_level((cm_log_level)cm_config_num(ctx->config,
						     CM_SETTING_LOG_LEVEL));
	return CLI_OK;
}

node_media_policy cli_media_policy(const cm_config *c)
{
	static const node_media_policy policies[] = {
		[CM_MEDIA_ALL] = NODE_MEDIA_ALL,
		[CM_MEDIA_FOLLOWED] = NODE_MEDIA_FOLLOWED,
		[CM_MEDIA_NONE] = NODE_MEDIA_NONE,
	};

	return policies[cm_config_num(c, CM_SETTING_MEDIA)];
}
