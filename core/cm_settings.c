/*
 * cm_settings.c - the settings table and the syntax of each value type.
 *
 * Limits that are part of the protocol (record, wire and reconciliation
 * limits, the chunk size) are not settings: two nodes must agree on them,
 * and a node that changed one would reject or send what its peers cannot
 * accept. Ping interval and peer timeout stay fixed for the same reason:
 * a peer's timeout must be longer than the pings of the other side.
 */
#include "cm_config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_home.h"
#include "cm_limits.h"
#include "cm_util.h"

#define TEXT_VALUE_MAX 255 /* bytes of an endpoint, address or peer */
#define HOST_MAX 170       /* as node_addr.c, so addresses fit 256 */

static const char *const media_choices[] = {
	[CM_MEDIA_ALL] = "all",
	[CM_MEDIA_FOLLOWED] = "followed",
	[CM_MEDIA_NONE] = "none",
	[CM_MEDIA_NONE + 1] = NULL,
};
static const char *const level_choices[] = {"debug", "info", "warn",
					    "error", NULL};

static const cm_setting table[CM_SETTING_COUNT] = {
	[CM_SETTING_LISTEN] = {
		"listen", "node", CM_VALUE_ENDPOINT, 0, CM_DEFAULT_LISTEN,
		0, 0, NULL, NULL, "--listen",
		"ZeroMQ endpoint the node binds for its peers"},
	[CM_SETTING_PEER] = {
		"peer", "node", CM_VALUE_PEERS, 0, NULL,
		0, CM_PEERS_MAX, NULL, NULL, "--peer",
		"peer to connect to at start; one line per peer"},
	[CM_SETTING_MEDIA] = {
		"media", "node", CM_VALUE_ENUM, 1, NULL,
		0, 2, NULL, media_choices, "--media",
		"media a creator node fetches; followed means that of its "
		"own and followed creators; a mirror fetches all"},
	[CM_SETTING_MEDIA_MAX] = {
		"media_max", "node", CM_VALUE_SIZE,
		CM_MEDIA_FETCH_SIZE_DEFAULT, NULL,
		1, CM_MEDIA_SIZE_MAX, NULL, NULL, "--media-max",
		"largest media the node fetches; larger media is skipped"},
	[CM_SETTING_MEDIA_BUDGET] = {
		"media_budget", "node", CM_VALUE_SIZE, 0, NULL,
		1, UINT64_MAX, "unlimited", NULL, "--media-budget",
		"stored media over which whole media is evicted: unused "
		"first, then unfollowed creators' oldest first, never your "
		"own"},
	[CM_SETTING_LOG_LEVEL] = {
		"log_level", "node", CM_VALUE_ENUM, 1, NULL,
		0, 3, NULL, level_choices, "--log-level",
		"lowest level of log lines written to stderr"},
	[CM_SETTING_HTTP] = {
		"http", "mirror", CM_VALUE_ADDRESS, 0, NULL,
		0, 0, "off", NULL, "--http",
		"HOST:PORT of the read-only HTTP interface of a mirror"},
	[CM_SETTING_HTTP_RATE] = {
		"http_rate", "mirror", CM_VALUE_COUNT, CM_HTTP_RATE_DEFAULT,
		NULL, 1, CM_HTTP_RATE_MAX, NULL, NULL, "--http-rate",
		"HTTP requests a second per client address, in bursts of "
		"up to twice that; more are answered with 429"},
	[CM_SETTING_PEERS_MAX] = {
		"peers_max", "limits", CM_VALUE_COUNT, CM_PEERS_MAX, NULL,
		1, CM_PEERS_MAX, NULL, NULL, NULL,
		"peer links in each direction (outbound, inbound)"},
	[CM_SETTING_PEERS_LEARNED] = {
		"peers_learned", "limits", CM_VALUE_COUNT, CM_PEERS_LEARNED,
		NULL, 0, CM_PEERS_MAX, NULL, NULL, NULL,
		"peers learned by peer exchange are dialled while the node "
		"has fewer outbound links than this; 0: the node asks for no "
		"addresses, checks none that inbound peers announce, and "
		"dials only configured peers"},
	[CM_SETTING_CONNECTIONS_MAX] = {
		"connections_max", "limits", CM_VALUE_COUNT,
		CM_CONNECTIONS_MAX, NULL,
		1, CM_CONNECTIONS_MAX, NULL, NULL, NULL,
		"open inbound TCP connections, handshaking or not"},
	[CM_SETTING_PEER_QUEUED_MAX] = {
		"peer_queued_max", "limits", CM_VALUE_SIZE,
		CM_PEER_QUEUED_MAX, NULL,
		CM_PEER_QUEUED_MIN, CM_PEER_QUEUED_CEIL, NULL, NULL, NULL,
		"bytes queued towards one peer above which its chunk "
		"requests are dropped"},
	[CM_SETTING_QUEUED_TOTAL_MAX] = {
		"queued_total_max", "limits", CM_VALUE_SIZE,
		CM_QUEUED_TOTAL_MAX, NULL,
		CM_QUEUED_TOTAL_MIN, CM_QUEUED_TOTAL_CEIL, NULL, NULL, NULL,
		"the same over all peers together"},
	[CM_SETTING_MEDIA_FETCHES] = {
		"media_fetches", "limits", CM_VALUE_COUNT, CM_MEDIA_JOBS_MAX,
		NULL, 1, CM_MEDIA_JOBS_MAX, NULL, NULL, NULL,
		"media fetched at once"},
	[CM_SETTING_SYNC_INTERVAL] = {
		"sync_interval", "limits", CM_VALUE_DURATION,
		CM_SYNC_INTERVAL_MS, NULL,
		CM_SYNC_INTERVAL_MIN_MS, CM_SYNC_INTERVAL_MAX_MS, NULL, NULL,
		NULL, "time between two reconciliations with a peer"},
	[CM_SETTING_HANDSHAKE_TIMEOUT] = {
		"handshake_timeout", "limits", CM_VALUE_DURATION,
		CM_HANDSHAKE_MS, NULL,
		CM_HANDSHAKE_MIN_MS, CM_HANDSHAKE_MAX_MS, NULL, NULL, NULL,
		"ZMTP and CURVE handshake of an inbound connection"},
	[CM_SETTING_HELLO_TIMEOUT] = {
		"hello_timeout", "limits", CM_VALUE_DURATION,
		CM_HELLO_DEADLINE_MS, NULL,
		CM_HANDSHAKE_MIN_MS, CM_HANDSHAKE_MAX_MS, NULL, NULL, NULL,
		"time an inbound link may take to send HELLO"},
	[CM_SETTING_RECONNECT_MAX] = {
		"reconnect_max", "limits", CM_VALUE_DURATION,
		CM_RECONNECT_MAX_MS, NULL,
		CM_RECONNECT_MIN_MS, CM_RECONNECT_CEIL_MS, NULL, NULL, NULL,
		"longest wait before dialling an unreachable peer again; "
		"the wait doubles from 1s with each failed dial"},
	[CM_SETTING_STORE_MAP_SIZE] = {
		"store_map_size", "limits", CM_VALUE_SIZE, CM_STORE_MAP_SIZE,
		NULL, CM_STORE_MAP_SIZE_MIN, CM_STORE_MAP_SIZE_CEIL, NULL,
		NULL, NULL,
		"largest size of the LMDB store (address space, not disk)"},
	[CM_SETTING_FEED_LIMIT] = {
		"feed_limit", "limits", CM_VALUE_COUNT, CM_FEED_LIMIT_DEFAULT,
		NULL, 1, CM_FEED_LIMIT_MAX, NULL, NULL, NULL,
		"clips per page of 'clipmesh feed' without --limit"},
	[CM_SETTING_PEER_MSGS] = {
		"peer_msgs", "limits", CM_VALUE_COUNT, CM_PEER_MSGS_DEFAULT,
		NULL, 1, CM_PEER_MSGS_MAX, NULL, NULL, "--peer-msgs",
		"messages a second each peer may send, chunks this node "
		"requested not counted; more are dropped"},
	[CM_SETTING_PEER_BYTES] = {
		"peer_bytes", "limits", CM_VALUE_SIZE, CM_PEER_BYTES_DEFAULT,
		NULL, 1, CM_PEER_BYTES_MAX, NULL, NULL, "--peer-bytes",
		"bytes a second each peer may send, chunks this node "
		"requested not counted"},
	[CM_SETTING_BAN_TIME] = {
		"ban_time", "limits", CM_VALUE_DURATION, CM_BAN_BASE_MS, NULL,
		1000, CM_BAN_MAX_MS, NULL, NULL, "--ban-time",
		"first ban of a misbehaving peer's key, and of its address "
		"at the address's second strike; it doubles on each "
		"repeat, up to a day"},
};

const cm_setting *cm_setting_get(cm_setting_id id)
{
	return &table[id];
}

cm_setting_id cm_setting_find(const char *name)
{
	for (int i = 0; i < CM_SETTING_COUNT; i++)
		if (strcmp(table[i].name, name) == 0)
			return (cm_setting_id)i;
	return CM_SETTING_COUNT;
}

const char *cm_value_type_name(cm_value_type type)
{
	static const char *const names[] = {
		[CM_VALUE_ENDPOINT] = "endpoint",
		[CM_VALUE_ADDRESS] = "address",
		[CM_VALUE_PEERS] = "peer list",
		[CM_VALUE_SIZE] = "size",
		[CM_VALUE_COUNT] = "count",
		[CM_VALUE_DURATION] = "duration",
		[CM_VALUE_ENUM] = "enum",
	};

	return names[type];
}

/* Multiplies *value by `factor`; false on overflow. */
static bool scale(uint64_t *value, uint64_t factor)
{
	if (*value > UINT64_MAX / factor)
		return false;
	*value *= factor;
	return true;
}

/* Parses leading decimal digits; *end points after them. */
static bool parse_digits(const char *text, uint64_t *value,
			 const char **end)
{
	unsigned long long v;
	char *stop;

	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	v = strtoull(text, &stop, 10);
	if (errno != 0)
		return false;
	*value = v;
	*end = stop;
	return true;
}

bool cm_parse_size(const char *text, uint64_t *bytes)
{
	static const char suffixes[] = "KMGT";
	const char *end, *unit;
	uint64_t value;

	if (!parse_digits(text, &value, &end))
		return false;
	if (*end != '\0') {
		unit = strchr(suffixes, end[0]);
		if (unit == NULL || end[0] == '\0' || end[1] != '\0')
			return false;
		for (const char *u = suffixes; u <= unit; u++)
			if (!scale(&value, 1024))
				return false;
	}
	*bytes = value;
	return true;
}

bool cm_parse_duration(const char *text, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1},        {"s", 1000},          {"m", 60000},
		     {"h", 3600000},   {"d", 86400000},      {"", 1000}};
	const char *end;
	uint64_t value;

	if (!parse_digits(text, &value, &end))
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (!scale(&value, units[i].ms))
			return false;
		*ms = value;
		return true;
	}
	return false;
}

static void format_size(uint64_t bytes, char *out, size_t cap)
{
	static const char suffixes[] = "KMGT";
	int unit = -1;

	while (unit < 3 && bytes != 0 && bytes % 1024 == 0) {
		bytes /= 1024;
		unit++;
	}
	if (unit < 0)
		snprintf(out, cap, "%llu", (unsigned long long)bytes);
	else
		snprintf(out, cap, "%llu%c", (unsigned long long)bytes,
			 suffixes[unit]);
}

static void format_duration(uint64_t ms, char *out, size_t cap)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000},
		     {"s", 1000}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(out, cap, "%llu%s",
				 (unsigned long long)(ms / units[i].ms),
				 units[i].unit);
			return;
		}
	}
	snprintf(out, cap, "%llums", (unsigned long long)ms);
}

void cm_setting_format_num(cm_setting_id id, uint64_t num, char *out,
			   size_t cap)
{
	const cm_setting *s = &table[id];

	if (num == 0 && s->zero != NULL) {
		snprintf(out, cap, "%s", s->zero);
		return;
	}
	switch (s->type) {
	case CM_VALUE_SIZE:
		format_size(num, out, cap);
		break;
	case CM_VALUE_DURATION:
		format_duration(num, out, cap);
		break;
	case CM_VALUE_ENUM:
		snprintf(out, cap, "%s", s->choices[num]);
		break;
	default:
		snprintf(out, cap, "%llu", (unsigned long long)num);
		break;
	}
}

void cm_setting_format_default(cm_setting_id id, char *out, size_t cap)
{
	const cm_setting *s = &table[id];

	switch (s->type) {
	case CM_VALUE_ENDPOINT:
	case CM_VALUE_ADDRESS:
	case CM_VALUE_PEERS:
		if (s->def_text != NULL)
			snprintf(out, cap, "%s", s->def_text);
		else
			snprintf(out, cap, "%s", s->zero ? s->zero : "");
		break;
	default:
		cm_setting_format_num(id, s->def, out, cap);
		break;
	}
}

/* Writes "a or b or c" style lists of an enum's names. */
static void describe_choices(const cm_setting *s, char *out, size_t cap)
{
	size_t n = 0, used = 0;

	while (s->choices[n] != NULL)
		n++;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++) {
		const char *sep = ", ";
		int w;

		if (i == 0)
			sep = "";
		else if (i + 1 == n)
			sep = " or ";
		w = snprintf(out + used, cap - used, "%s%s", sep,
				 s->choices[i]);

		if (w < 0)
			return;
		used += (size_t)w;
	}
}

/* Writes "NAME from LOW to HIGH" with both ends formatted as values. */
static void describe_numeric(cm_setting_id id, const char *what,
			     const char *unit_hint, char *out, size_t cap)
{
	const cm_setting *s = &table[id];
	char low[32], high[32];

	if (s->type == CM_VALUE_SIZE) {
		format_size(s->min, low, sizeof(low));
		format_size(s->max, high, sizeof(high));
	} else if (s->type == CM_VALUE_DURATION) {
		format_duration(s->min, low, sizeof(low));
		format_duration(s->max, high, sizeof(high));
	} else {
		snprintf(low, sizeof(low), "%llu", (unsigned long long)s->min);
		snprintf(high, sizeof(high), "%llu",
			 (unsigned long long)s->max);
	}
	if (s->max == UINT64_MAX)
		snprintf(out, cap, "%s of at least %s%s%s%s", what, low,
			 unit_hint, s->zero ? ", or " : "",
			 s->zero ? s->zero : "");
	else
		snprintf(out, cap, "%s from %s to %s%s%s%s", what, low, high,
			 unit_hint, s->zero ? ", or " : "",
			 s->zero ? s->zero : "");
}

void cm_setting_describe_range(cm_setting_id id, char *out, size_t cap)
{
	const cm_setting *s = &table[id];

	switch (s->type) {
	case CM_VALUE_ENDPOINT:
		snprintf(out, cap, "a ZeroMQ endpoint tcp://IP:PORT such as "
			 "%s: give an IP address such as 127.0.0.1 or "
			 "0.0.0.0, or * for every interface, not a host name",
			 CM_DEFAULT_LISTEN);
		break;
	case CM_VALUE_ADDRESS:
		snprintf(out, cap, "HOST:PORT, such as 127.0.0.1:8080, PORT "
			 "for 127.0.0.1:PORT, or %s", s->zero);
		break;
	case CM_VALUE_PEERS:
		snprintf(out, cap, "a peer address clipmesh://KEYHEX@HOST:PORT "
			 "as 'clipmesh id' prints it, with a HOST of at most "
			 "%d characters; up to %llu peers", HOST_MAX,
			 (unsigned long long)s->max);
		break;
	case CM_VALUE_SIZE:
		describe_numeric(id, "a size", " (bytes, or with a K, M, G "
				 "or T suffix)", out, cap);
		break;
	case CM_VALUE_DURATION:
		describe_numeric(id, "a duration", " (with a unit ms, s, m, "
				 "h or d)", out, cap);
		break;
	case CM_VALUE_COUNT:
		describe_numeric(id, "a whole number", "", out, cap);
		break;
	case CM_VALUE_ENUM:
		describe_choices(s, out, cap);
		break;
	}
}

static bool host_char(char c, bool bracketed)
{
	if (bracketed)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		       (c >= 'A' && c <= 'F') || c == ':' || c == '.';
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
}

/* Checks "HOST:PORT" where HOST is a name, an IPv4 address, a bracketed
 * IPv6 address or, when `wildcard`, "*". */
/* True for a port number alone, which an address setting takes as
 * 127.0.0.1:PORT. */
static bool port_valid(const char *text)
{
	uint64_t port;

	return cm_parse_u64(text, &port) && port >= 1 && port <= 65535;
}

static bool host_port_valid(const char *hp, bool wildcard)
{
	const char *colon = strrchr(hp, ':');
	bool bracketed = hp[0] == '[';
	uint64_t port;
	size_t n;

	if (colon == NULL || colon == hp)
		return false;
	n = (size_t)(colon - hp);
	if (n > HOST_MAX)
		return false;
	if (bracketed && (n < 3 || hp[n - 1] != ']'))
		return false;
	if (!(wildcard && n == 1 && hp[0] == '*'))
		for (size_t i = bracketed; i < n - bracketed; i++)
			if (!host_char(hp[i], bracketed))
				return false;
	return cm_parse_u64(colon + 1, &port) && port >= 1 && port <= 65535;
}

/* Checks the HOST of a listen endpoint HOST:PORT whose port
 * host_port_valid already checked. ZeroMQ binds an IP address, '*' or an
 * interface name but resolves no host names, so "localhost" would only
 * fail when the node starts. Interface names are not taken either,
 * because they read like host names. */
static bool listen_host_valid(const char *hp)
{
	const char *colon = strrchr(hp, ':');
	size_t n = (size_t)(colon - hp);
	unsigned char addr[16];
	char host[HOST_MAX + 1];

	if (n == 1 && hp[0] == '*')
		return true;
	if (hp[0] == '[') {
		memcpy(host, hp + 1, n - 2);
		host[n - 2] = '\0';
		return inet_pton(AF_INET6, host, addr) == 1;
	}
	memcpy(host, hp, n);
	host[n] = '\0';
	return inet_pton(AF_INET, host, addr) == 1;
}

static bool parse_numeric(const cm_setting *s, const char *text,
			  uint64_t *num)
{
	switch (s->type) {
	case CM_VALUE_SIZE:
		return cm_parse_size(text, num);
	case CM_VALUE_DURATION:
		return cm_parse_duration(text, num);
	case CM_VALUE_COUNT:
		return cm_parse_u64(text, num);
	default:
		return false;
	}
}

static bool parse_enum(const cm_setting *s, const char *text, uint64_t *num)
{
	for (uint64_t i = 0; s->choices[i] != NULL; i++) {
		if (strcmp(s->choices[i], text) == 0) {
			*num = i;
			return true;
		}
	}
	return false;
}

static bool parse_text(const cm_setting *s, const char *text, bool *off)
{
	if (s->zero != NULL && strcmp(text, s->zero) == 0) {
		*off = true;
		return true;
	}
	if (strlen(text) > TEXT_VALUE_MAX)
		return false;
	switch (s->type) {
	case CM_VALUE_ENDPOINT:
		return strncmp(text, "tcp://", 6) == 0 &&
		       host_port_valid(text + 6, true) &&
		       listen_host_valid(text + 6);
	case CM_VALUE_ADDRESS:
		return port_valid(text) || host_port_valid(text, false);
	default:
		return text[0] != '\0';
	}
}

/* Writes what is wrong with the port of a HOST:PORT, or of a port alone
 * when `alone`, into out[cap]. Returns false when the port is valid, so
 * that the problem lies elsewhere. */
static bool describe_port_problem(const char *hp, bool alone, char *out,
				  size_t cap)
{
	const char *colon, *port;
	uint64_t value;

	if (alone) {
		port = hp;
	} else {
		/* A colon inside [IPv6] brackets does not start the port. */
		colon = hp[0] == '[' ? strchr(hp, ']') : hp;
		colon = colon != NULL ? strrchr(colon, ':') : NULL;
		if (colon == NULL || colon[1] == '\0') {
			snprintf(out, cap, "the port is missing");
			return true;
		}
		port = colon + 1;
	}
	if (!cm_parse_u64(port, &value)) {
		snprintf(out, cap, "port '%.16s' is not a number from 1 to "
			 "65535", port);
		return true;
	}
	if (value < 1 || value > 65535) {
		snprintf(out, cap, "port %.16s is out of range 1-65535", port);
		return true;
	}
	return false;
}

/* Writes the specific problem of an invalid endpoint or address value
 * into out[cap], or an empty string when only the expected form can be
 * named. */
static void describe_problem(const cm_setting *s, const char *text,
			     char *out, size_t cap)
{
	bool digits = text[0] != '\0' && strspn(text, "0123456789") ==
					      strlen(text);

	out[0] = '\0';
	if (s->type == CM_VALUE_ENDPOINT && strncmp(text, "tcp://", 6) == 0 &&
	    text[6] != '\0')
		describe_port_problem(text + 6, false, out, cap);
	else if (s->type == CM_VALUE_ADDRESS && text[0] != '\0')
		describe_port_problem(text, digits, out, cap);
}

bool cm_setting_parse(cm_setting_id id, const char *text, uint64_t *num,
		      bool *off, char *why, size_t cap)
{
	const cm_setting *s = &table[id];
	char range[160], problem[64];
	bool ok;

	*num = 0;
	*off = false;
	switch (s->type) {
	case CM_VALUE_ENDPOINT:
	case CM_VALUE_ADDRESS:
	case CM_VALUE_PEERS:
		ok = parse_text(s, text, off);
		break;
	case CM_VALUE_ENUM:
		ok = parse_enum(s, text, num);
		break;
	default:
		if (s->zero != NULL && strcmp(text, s->zero) == 0)
			return true;
		/* 0 is not a spelling of the zero word: media_budget = 0
		 * would read as "unlimited" to the node but as "no media"
		 * to many operators. */
		ok = parse_numeric(s, text, num) && *num >= s->min &&
		     *num <= s->max;
		break;
	}
	if (ok)
		return true;
	cm_setting_describe_range(id, range, sizeof(range));
	describe_problem(s, text, problem, sizeof(problem));
	snprintf(why, cap, "%s%sexpected %s", problem, problem[0] ? "; " : "",
		 range);
	return false;
}
