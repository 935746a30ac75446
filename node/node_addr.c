/*
 * node_addr.c - peer addresses: "clipmesh://KEYHEX@HOST:PORT", where
 * KEYHEX is the node's 64-hex-digit CURVE public key and HOST is a DNS
 * name, an IPv4 address or a bracketed IPv6 address.
 */
#include <stdio.h>
#include <string.h>

#include "cm_util.h"
#include "node.h"
#include "node_internal.h"

#define ADDR_SCHEME "clipmesh://"
#define TCP_SCHEME "tcp://"
#define KEY_HEX_LEN (2 * NODE_KEY_LEN)
#define HOST_MAX 170 /* keeps a formatted address under 256 bytes */

static bool host_char(char c, bool bracketed)
{
	if (bracketed)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		       (c >= 'A' && c <= 'F') || c == ':' || c == '.';
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '.' || c == '-';
}

/*
 * Checks "HOST:PORT" (the part after a scheme and key) and returns the
 * length of HOST. A wildcard host ("*") is rejected because no peer can
 * connect to it.
 */
static cm_err check_host_port(const char *hp, const char *whole,
			      size_t *host_len)
{
	const char *colon = strrchr(hp, ':');
	bool bracketed = hp[0] == '[';
	uint64_t port;
	size_t n, digits;

	if (!colon || colon == hp)
		return cm_errf(CM_ERR_USAGE, "no HOST:PORT in \"%s\"", whole);
	n = (size_t)(colon - hp);
	if (n > HOST_MAX)
		return cm_errf(CM_ERR_USAGE, "host over %d chars in \"%s\"",
			       HOST_MAX, whole);
	if (bracketed && (n < 3 || hp[n - 1] != ']'))
		return cm_errf(CM_ERR_USAGE, "unclosed '[' in \"%s\"", whole);

	for (size_t i = bracketed; i < n - bracketed; i++)
		if (!host_char(hp[i], bracketed))
			return cm_errf(CM_ERR_USAGE,
				       "invalid host character '%c' in \"%s\"",
				       hp[i], whole);
	digits = strspn(colon + 1, "0123456789");
	if (digits > 0 && colon[1 + digits] != '\0')
		return cm_errf(CM_ERR_USAGE,
			       "unexpected text '%.40s' after the port in "
			       "\"%s\"", colon + 1 + digits, whole);
	if (!cm_parse_u64(colon + 1, &port) || port == 0 || port > 65535)
		return cm_errf(CM_ERR_USAGE,
			       "port must be 1..65535 in \"%s\"", whole);
	*host_len = n;
	return CM_OK;
}

cm_err node_parse_addr(const char *addr, char *endpoint,
		       uint8_t server_key[32])
{
	const char *key_hex, *at;
	char hex[KEY_HEX_LEN + 1];
	size_t host_len;
	cm_err err;

	if (strncmp(addr, ADDR_SCHEME, strlen(ADDR_SCHEME)) != 0)
		return cm_errf(CM_ERR_USAGE,
			       "peer address \"%.100s\" does not start with "
			       "clipmesh://", addr);
	key_hex = addr + strlen(ADDR_SCHEME);
	at = strchr(key_hex, '@');
	if (!at || at - key_hex != KEY_HEX_LEN)
		return cm_errf(CM_ERR_USAGE,
			       "peer address \"%.100s\" lacks a 64-hex-digit "
			       "key before '@'", addr);

	memcpy(hex, key_hex, KEY_HEX_LEN);
	hex[KEY_HEX_LEN] = '\0';
	if (!cm_hex_decode(hex, server_key, NODE_KEY_LEN))
		return cm_errf(CM_ERR_USAGE,
			       "peer address \"%.100s\" has a non-hex key",
			       addr);

	err = check_host_port(at + 1, addr, &host_len);
	if (err)
		return err;
	snprintf(endpoint, NODE_ENDPOINT_MAX, "%s%s", TCP_SCHEME, at + 1);
	return CM_OK;
}

cm_err node_format_addr(const char *endpoint, const uint8_t server_key[32],
			char *out)
{
	char hex[KEY_HEX_LEN + 1];
	const char *hp;
	size_t host_len;
	cm_err err;

	if (strncmp(endpoint, TCP_SCHEME, strlen(TCP_SCHEME)) != 0)
		return cm_errf(CM_ERR_USAGE,
			       "endpoint \"%.100s\" is not tcp://HOST:PORT",
			       endpoint);
	hp = endpoint + strlen(TCP_SCHEME);
	if (hp[0] == '*')
		return cm_errf(CM_ERR_USAGE,
			       "endpoint \"%.100s\" has a wildcard host; give "
			       "the address peers connect to", endpoint);
	err = check_host_port(hp, endpoint, &host_len);
	if (err)
		return err;

	cm_hex_encode(server_key, NODE_KEY_LEN, hex);
	snprintf(out, NODE_ENDPOINT_MAX, "%s%s@%s", ADDR_SCHEME, hex, hp);
	return CM_OK;
}
