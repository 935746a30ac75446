/* cli_status_text.c - the text form of 'clipmesh status': a few lines a
 * person reads at a glance. 'status --json' keeps every field. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

/* Returns the integer at `key` of object o, or 0 when absent. */
static json_int_t get_int(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* Returns the string at `key` of object o, or `fallback`. */
static const char *get_str(json_t *o, const char *key, const char *fallback)
{
	const char *text = json_string_value(json_object_get(o, key));

	return text ? text : fallback;
}

/* Prints "reason count" pairs of an object of counts, or "none". With
 * `prefix`, only the keys that start with it, without the prefix. */
static void print_counts(json_t *counts, const char *prefix)
{
	size_t printed = 0, skip = prefix ? strlen(prefix) : 0;
	const char *key;
	json_t *value;

	json_object_foreach(counts, key, value) {
		if (prefix && strncmp(key, prefix, skip) != 0)
			continue;
		printf("%s%s %" JSON_INTEGER_FORMAT, printed ? ", " : "",
		       key + skip, json_integer_value(value));
		printed++;
	}
	printf("%s\n", printed ? "" : "none");
}

static void print_peer(json_t *peer)
{
	json_t *offset = json_object_get(peer, "clock_offset_ms");
	const char *error = get_str(peer, "last_error", NULL);

	printf("  %-8s  %-3s  %-8s  %s  records in %" JSON_INTEGER_FORMAT
	       " out %" JSON_INTEGER_FORMAT "  bytes in %" JSON_INTEGER_FORMAT
	       " out %" JSON_INTEGER_FORMAT,
	       get_str(peer, "peer", "?"), get_str(peer, "direction", "?"),
	       get_str(peer, "role", "-"), get_str(peer, "endpoint", "?"),
	       get_int(peer, "records_in"), get_int(peer, "records_out"),
	       get_int(peer, "bytes_in"), get_int(peer, "bytes_out"));
	if (json_is_integer(offset))
		printf("  clock %+" JSON_INTEGER_FORMAT " ms",
		       json_integer_value(offset));
	if (error)
		printf("  last error: %s", error);
	printf("\n");
}

/* Prints a known peer that has no connection: its state, failed dials
 * in a row, the cause of the last one and when the next one starts. */
static void print_unreached(json_t *known)
{
	json_t *next = json_object_get(known, "next_dial_ms");

	printf("  %-8s  %-8s  %s  failed dials %" JSON_INTEGER_FORMAT,
	       get_str(known, "peer", "?"), get_str(known, "state", "?"),
	       get_str(known, "address", "?"), get_int(known, "failures"));
	if (json_is_string(json_object_get(known, "dial_error")))
		printf(", last %s", get_str(known, "dial_error", "?"));
	if (json_is_integer(next))
		printf(", next in %" JSON_INTEGER_FORMAT " s",
		       (json_integer_value(next) + 999) / 1000);
	printf("\n");
}

/* Prints the known peers without a connection, under a heading that
 * counts them; nothing when every known peer is connected. */
static void print_unreached_all(json_t *known_peers)
{
	json_t *known;
	size_t i, count = 0;

	json_array_foreach(known_peers, i, known)
		count += strcmp(get_str(known, "state", ""), "connected") != 0;
	if (count == 0)
		return;
	printf("unreached  %zu known %s without a connection\n", count,
	       count == 1 ? "peer" : "peers");
	json_array_foreach(known_peers, i, known)
		if (strcmp(get_str(known, "state", ""), "connected") != 0)
			print_unreached(known);
}

/* Prints the running node's lines: role, rejections, peers, media fetches,
 * bans and queues. */
static void print_node(json_t *node)
{
	json_t *peers = json_object_get(node, "peers");
	json_t *queues = json_object_get(node, "queues");
	json_t *peer;
	size_t i, connected = 0;

	printf("node       %s on %s (node key %s...)\n",
	       get_str(node, "role", "?"), get_str(node, "listen", "?"),
	       get_str(node, "node", "?"));
	printf("rejected   ");
	print_counts(json_object_get(node, "rejected"), NULL);
	json_array_foreach(peers, i, peer)
		connected += json_is_true(json_object_get(peer, "connected"));
	printf("peers      %zu connected of %zu links\n", connected,
	       json_array_size(peers));
	json_array_foreach(peers, i, peer)
		print_peer(peer);
	print_unreached_all(json_object_get(node, "known_peers"));
	printf("media      %" JSON_INTEGER_FORMAT " fetches running\n",
	       get_int(node, "media_fetching"));
	printf("bans       %zu\n",
	       json_array_size(json_object_get(node, "bans")));
	printf("queues     verifying %" JSON_INTEGER_FORMAT
	       ", storing %" JSON_INTEGER_FORMAT "\n",
	       get_int(queues, "verifying"), get_int(queues, "storing"));
}

/* Prints the node line when the node sent no status. `silent` is the
 * status's node_silent object (pid, 0 when unknown, and timeout_ms) when
 * a node holds the home's lock but did not reply, else NULL. */
static void print_no_node(json_t *silent)
{
	json_int_t pid = get_int(silent, "pid");

	if (!json_is_object(silent)) {
		printf("node       not running: start it with 'clipmesh node' "
		       "or 'clipmesh mirror'\n");
		return;
	}
	printf("node       did not answer within %" JSON_INTEGER_FORMAT
	       " s, so it may be stopped or overloaded",
	       get_int(silent, "timeout_ms") / 1000);
	if (pid > 0)
		printf(" (pid %" JSON_INTEGER_FORMAT "; 'kill -CONT %"
		       JSON_INTEGER_FORMAT "' resumes a stopped node)",
		       pid, pid);
	printf("\n");
}

void cli_status_print_text(struct json_t *status)
{
	json_t *records = json_object_get(status, "records");
	json_t *media = json_object_get(status, "media");
	json_t *node = json_object_get(status, "node");

	json_int_t clips = get_int(records, "clips");
	json_int_t retractions = get_int(records, "retractions");
	json_int_t profiles = get_int(records, "profiles");

	printf("records    %" JSON_INTEGER_FORMAT " clip%s, %"
	       JSON_INTEGER_FORMAT " retraction%s, %" JSON_INTEGER_FORMAT
	       " profile%s\n",
	       clips, clips == 1 ? "" : "s", retractions,
	       retractions == 1 ? "" : "s", profiles,
	       profiles == 1 ? "" : "s");
	printf("stored     %" JSON_INTEGER_FORMAT " media chunks, %"
	       JSON_INTEGER_FORMAT " bytes\n",
	       get_int(media, "chunks"), get_int(media, "bytes"));
	if (json_is_object(node)) {
		print_node(node);
	} else {
		printf("rejected   ");
		print_counts(json_object_get(status, "counters"), "rejected.");
		print_no_node(json_object_get(status, "node_silent"));
	}
	printf("every field: clipmesh status --json\n");
}
