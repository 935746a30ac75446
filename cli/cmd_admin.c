/* cmd_admin.c - commands for operators: store check, store backup and
 * doctor. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "cli_net.h"
#include "cm_limits.h"
#include "cm_util.h"
#include "node.h"
#include "store_admin.h"

static void print_finding(void *ctx, bool note, const char *message)
{
	(void)ctx;
	printf("%s: %s\n", note ? "note" : "problem", message);
}

static int store_check_cmd(cli_ctx *ctx, int argc, char **argv)
{
	store_check_report rep = {0};
	store *s = NULL;
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, NULL, false, "",
		       "Verify every record's signature and that every "
		       "index entry matches its record. Exits 1 when any "
		       "problem is found; a note, such as the media that a "
		       "stopped publish left, needs no action.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       cli_value(argv[first]));
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	cm_err_clear();
	err = store_check(s, cm_now_ms(), &rep, print_finding, NULL);
	store_close(&s);
	if (err)
		return cli_fail(err, "store check failed", NULL);
	printf("records %llu, index entries %llu, chunks %llu, problems "
	       "%llu, notes %llu\n",
	       (unsigned long long)rep.records,
	       (unsigned long long)rep.index_entries,
	       (unsigned long long)rep.chunks,
	       (unsigned long long)rep.problems,
	       (unsigned long long)rep.notes);
	return rep.problems ? CLI_FAIL : CLI_OK;
}

/* Creates the backup folder `dir`, or checks that it is an empty folder,
 * so that a backup never mixes with other files. Prints the error. */
static int backup_target(const char *dir)
{
	struct dirent *entry;
	struct stat st;
	DIR *d;

	if (mkdir(dir, 0700) == 0)
		return CLI_OK;
	if (errno != EEXIST || stat(dir, &st) != 0) {
		fprintf(stderr, "clipmesh: cannot create %s: %s\n"
			"give a new folder in a writable folder, or an empty "
			"one\n", dir, strerror(errno));
		return CLI_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "clipmesh: backup target %s exists and is not "
			"a folder\ngive a new or an empty folder\n", dir);
		return CLI_FAIL;
	}
	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "clipmesh: cannot read %s: %s\n"
			"give a folder that this user can write\n", dir,
			strerror(errno));
		return CLI_FAIL;
	}
	while ((entry = readdir(d)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 ||
		    strcmp(entry->d_name, "..") == 0)
			continue;
		fprintf(stderr, "clipmesh: backup folder %s is not empty (it "
			"contains %s)\ngive a new or an empty folder\n", dir,
			entry->d_name);
		closedir(d);
		return CLI_FAIL;
	}
	closedir(d);
	return CLI_OK;
}

static int store_backup_cmd(cli_ctx *ctx, int argc, char **argv)
{
	store *s = NULL;
	mode_t old_mask;
	int first, rc;
	cm_err err;

	rc = cli_parse(ctx, argc, argv, NULL, false, "DIR",
		       "Write a consistent, compacted copy of the store into "
		       "the empty or new folder DIR; safe while the node "
		       "runs.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if (argc - first != 1)
		return cli_usage_error(ctx, "expected one DIR");
	if ((rc = cli_check_paths(ctx, argv + first, 1, "DIR")) >= 0)
		return rc;
	if ((rc = backup_target(argv[first])) != CLI_OK)
		return rc;
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	cm_err_clear();
	/* The copy is as private as the store: LMDB creates it with the
	 * process's umask, which often leaves it readable by all. */
	old_mask = umask(077);
	err = store_backup(s, argv[first]);
	umask(old_mask);
	store_close(&s);
	if (err)
		return cli_fail(err, "backup failed",
				"check that this user can write the folder "
				"and that its disk has room for the store");
	printf("backup written to %s\n", argv[first]);
	return CLI_OK;
}

int cmd_store(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_sub subs[] = {
		{"check", store_check_cmd, "verify every record and index"},
		{"backup", store_backup_cmd, "write a compacted copy"},
	};

	return cli_run_sub(ctx, argc, argv, subs, 2);
}

/* State of one doctor run. */
typedef struct doctor {
	cli_ctx *ctx;
	cm_config *config;      /* the file's settings, or the defaults */
	store *st;              /* NULL when the store did not open */
	json_t *status;         /* the running node's status, or NULL */
	long node_pid;          /* 0: unknown */
	bool node_silent;       /* a node runs but did not reply */
	bool quick;
	int failed;
} doctor;

/* Prints one check: "OK    CHECK  DETAIL" or "FAIL  CHECK  DETAIL; fix:
 * FIX", and counts failures. */
static void report(doctor *d, bool ok, const char *check, const char *detail,
		   const char *fix)
{
	if (ok) {
		printf("OK    %-12s %s\n", check, detail);
		return;
	}
	printf("FAIL  %-12s %s; fix: %s\n", check, detail, fix);
	d->failed++;
}

/* The fix for a home folder that cannot be read. */
#define FOLDER_FIX                                                       \
	"check that the folder exists and that this user may search "    \
	"every folder above it"

/* Checks that the file or folder at path gives its group and others no
 * access, and names "chmod MODE path" as the fix, or `missing_fix` when
 * path cannot be read. */
static void check_private_mode(doctor *d, const char *check,
			       const char *path, const char *mode,
			       const char *missing_fix)
{
	char detail[CM_HOME_PATH_MAX + 64], fix[CM_HOME_PATH_MAX + 16];
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(detail, sizeof(detail), "%s: %s", path,
			 strerror(errno));
		report(d, false, check, detail, missing_fix);
		return;
	}
	snprintf(detail, sizeof(detail), "%s mode %03o", path,
		 (unsigned)(st.st_mode & 0777));
	snprintf(fix, sizeof(fix), "chmod %s %s", mode, path);
	report(d, (st.st_mode & 077) == 0, check, detail, fix);
}

static void check_key_mode(doctor *d, const char *path)
{
	check_private_mode(d, "key mode", path, "600",
			   "run 'clipmesh init' to create the node key");
}

/* Writes the error detail without the fix that it may end with, since
 * the doctor prints its own. */
static void detail_without_fix(char *out, size_t cap)
{
	char *fix;

	cm_strlcpy(out, cm_err_detail(), cap);
	fix = strstr(out, "; restore");
	if (fix == NULL)
		fix = strstr(out, "; run clipmesh init");
	if (fix)
		*fix = '\0';
}

/* Checks that identity NAME's key file reads as a key. A sealed one
 * counts, because its passphrase is not at hand. One with a wrong mode
 * is not read and gets no line here, because check_key_mode fails it. */
static void check_identity(doctor *d, const char *name)
{
	char detail[CM_KEY_NAME_MAX + 300], fix[CM_KEY_NAME_MAX + 160];
	char why[256];
	uint8_t pub[32], *secret = NULL;
	cm_err err;

	cm_err_clear();
	err = cm_key_load(d->ctx->home, name, pub, &secret);
	cm_secret_free(&secret);
	if (err == CM_ERR_KEY_MODE)
		return; /* not read; the key mode line fails with the fix */
	detail_without_fix(why, sizeof(why));
	snprintf(detail, sizeof(detail), "identity %s: %s", name,
		 err == CM_OK ? "readable"
		 : err == CM_ERR_PASSPHRASE ? "sealed with a passphrase"
					    : why);
	snprintf(fix, sizeof(fix), "restore keys/%s.key from a backup; a "
		 "lost identity key cannot be made again", name);
	report(d, err == CM_OK || err == CM_ERR_PASSPHRASE, "key", detail,
	       fix);
}

/* Checks that node.key reads as a key pair. */
static void check_node_key(doctor *d)
{
	char detail[CM_HOME_PATH_MAX + 200], why[256];
	char pub_path[CM_HOME_PATH_MAX];
	uint8_t pub[32], *secret = NULL;
	bool pub_missing;
	cm_err err;

	cm_err_clear();
	err = cm_home_transport_key(d->ctx->home, pub, &secret);
	cm_secret_free(&secret);
	if (err == CM_ERR_KEY_MODE)
		return; /* not read; the key mode line fails with the fix */
	detail_without_fix(why, sizeof(why));
	snprintf(detail, sizeof(detail), "node key: %s",
		 err == CM_OK ? "readable" : why);
	pub_missing = cm_home_path(d->ctx->home, "node.pub", pub_path) ==
			      CM_OK &&
		      access(pub_path, F_OK) != 0;
	if (pub_missing)
		report(d, err == CM_OK, "key", detail,
		       "run 'clipmesh init' to write node.pub from node.key");
	else
		report(d, err == CM_OK, "key", detail,
		       "restore node.key and node.pub from a backup, or "
		       "move both away and run 'clipmesh init' for a new "
		       "node key (peers then need the new 'clipmesh id')");
}

/* Checks the home folder, keys/, node.key and every keys/NAME.key:
 * readable by the owner only, and the keys readable as keys. */
static void check_key_modes(doctor *d)
{
	char path[CM_HOME_PATH_MAX], dir_path[CM_HOME_PATH_MAX];
	char name[CM_KEY_NAME_MAX + 1];
	struct dirent *ent;
	DIR *dir;

	check_private_mode(d, "home mode", d->ctx->home, "700", FOLDER_FIX);
	if (cm_home_path(d->ctx->home, "keys", dir_path) == CM_OK &&
	    access(dir_path, F_OK) == 0)
		check_private_mode(d, "home mode", dir_path, "700",
				   FOLDER_FIX);
	if (cm_home_path(d->ctx->home, "node.key", path) == CM_OK) {
		check_key_mode(d, path);
		check_node_key(d);
	}
	if (cm_home_path(d->ctx->home, "keys", dir_path) != CM_OK ||
	    (dir = opendir(dir_path)) == NULL)
		return;
	while ((ent = readdir(dir)) != NULL) {
		size_t len = strlen(ent->d_name);
		int n;

		if (len < 5 || strcmp(ent->d_name + len - 4, ".key") != 0)
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir_path,
			     ent->d_name);
		if (n > 0 && (size_t)n < sizeof(path))
			check_key_mode(d, path);
		if (len - 4 < sizeof(name)) {
			memcpy(name, ent->d_name, len - 4);
			name[len - 4] = '\0';
			if (cm_key_name_valid(name))
				check_identity(d, name);
		}
	}
	closedir(dir);
}

static cm_err check_peer_addr(const char *addr)
{
	char endpoint[256];
	uint8_t key[32];

	return node_parse_addr(addr, endpoint, key);
}

/* Appends to detail[cap] each key that the file sets twice, because
 * only the later line counts and an edit of the earlier one does
 * nothing. */
static void note_overrides(const cm_config *c, char *detail, size_t cap)
{
	size_t used = strlen(detail);

	for (int i = 0; i < CM_SETTING_COUNT && used < cap; i++) {
		cm_source src = cm_config_source(c, (cm_setting_id)i, 0);
		int n;

		if (src.kind != CM_SOURCE_FILE || src.overrides == 0)
			continue;
		n = snprintf(detail + used, cap - used, "; %s on line %u "
			     "overrides line %u",
			     cm_setting_get((cm_setting_id)i)->name, src.line,
			     src.overrides);
		if (n < 0)
			return;
		used += (size_t)n;
	}
}

/* Parses HOME/config; on failure goes on with the defaults. */
static void check_config(doctor *d)
{
	char path[CM_HOME_PATH_MAX], detail[CM_HOME_PATH_MAX + 256];
	cm_err err;

	cm_home_path(d->ctx->home, "config", path);
	if (cm_config_new(check_peer_addr, &d->config) != CM_OK) {
		report(d, false, "config", "out of memory", "retry");
		return;
	}
	err = cm_config_load(d->config, path);
	if (!err) {
		snprintf(detail, sizeof(detail), "%s parses", path);
		note_overrides(d->config, detail, sizeof(detail));
		report(d, true, "config", detail, NULL);
		return;
	}
	report(d, false, "config", cm_config_error(d->config),
	       "correct the file (clipmesh.conf(5) lists every setting); "
	       "the checks below use the defaults");
	cm_config_free(&d->config);
	cm_config_new(check_peer_addr, &d->config);
}

static void print_indented_finding(void *ctx, bool note,
				   const char *message)
{
	(void)ctx;
	printf("      %s: %s\n", note ? "note" : "problem", message);
}

/* Reports an open error of the store. CM_ERR_STORE is damage found in
 * the file itself, whose detail may end with the fix that the FAIL line
 * prints after it. */
static void report_open_error(doctor *d, cm_err err)
{
	char why[CM_ERR_DETAIL_MAX], detail[CM_ERR_DETAIL_MAX + 16];

	if (err == CM_ERR_STORE)
		detail_without_fix(why, sizeof(why));
	else
		cm_strlcpy(why, cm_err_detail(), sizeof(why));
	snprintf(detail, sizeof(detail), "cannot open: %s",
		 *why ? why : cm_err_text(err));
	report(d, false, "store", detail,
	       err == CM_ERR_STORE
		       ? STORE_RESTORE_FIX
		       : "check the folder's owner and free disk space");
}

/* Opens the store and, unless quick, verifies it as 'store check' does. */
static void check_store(doctor *d)
{
	char path[CM_HOME_PATH_MAX], detail[256];
	store_check_report rep = {0};
	store_counts counts = {0};
	cm_err err;

	cm_err_clear();
	err = cm_home_path(d->ctx->home, "store", path);
	if (!err)
		err = store_open_sized(
			path,
			cm_config_num(d->config, CM_SETTING_STORE_MAP_SIZE),
			&d->st);
	if (err) {
		report_open_error(d, err);
		return;
	}
	if (d->quick) {
		err = store_get_counts(d->st, &counts);
		snprintf(detail, sizeof(detail), "opens, %llu clips (record "
			 "check skipped by --quick)",
			 (unsigned long long)counts.clips);
		report(d, !err, "store", detail, "run 'clipmesh store check'");
		return;
	}
	err = store_check(d->st, cm_now_ms(), &rep, print_indented_finding,
			  NULL);
	snprintf(detail, sizeof(detail), "%llu records, %llu index entries, "
		 "%llu chunks checked, %llu problem%s, %llu note%s%s",
		 (unsigned long long)rep.records,
		 (unsigned long long)rep.index_entries,
		 (unsigned long long)rep.chunks,
		 (unsigned long long)rep.problems,
		 rep.problems == 1 ? "" : "s",
		 (unsigned long long)rep.notes, rep.notes == 1 ? "" : "s",
		 err ? " (the check stopped early)" : "");
	report(d, !err && rep.problems == 0, "store", detail,
	       "restore the store from a backup ('clipmesh store backup'), "
	       "or import the records again");
}

/* Reads the running node's status and its process id from
 * HOME/node.lock. A node that holds the lock but does not reply fails
 * the "node" check, since the port and clock checks need its status. */
static void find_node(doctor *d)
{
	char detail[128], fix[256];
	char *status = NULL;
	cm_err err;

	err = node_status(d->ctx->home, &status);
	if (err == CM_ERR_TIMEOUT) {
		d->node_pid = cli_node_pid(d->ctx->home);
		d->node_silent = true;
		snprintf(detail, sizeof(detail), "the node (pid %ld) did not "
			 "answer within %d s", d->node_pid,
			 CM_CONTROL_TIMEOUT_MS / 1000);
		snprintf(fix, sizeof(fix), "it may be stopped or overloaded; "
			 "resume a stopped node with 'kill -CONT %ld', or "
			 "check its log and the machine's load", d->node_pid);
		report(d, false, "node", detail, fix);
		return;
	}
	if (err != CM_OK)
		return;
	d->status = json_loads(status, 0, NULL);
	free(status);
	d->node_pid = cli_node_pid(d->ctx->home);
}

/* Checks that HOST:PORT can be bound, or is held by this home's node. */
static void check_port(doctor *d, const char *check, const char *name,
		       const char *host_port)
{
	char host[256], detail[512], fix[512];
	unsigned port;
	int err;

	if (!cli_split_host_port(host_port, host, sizeof(host), &port)) {
		snprintf(detail, sizeof(detail), "%s has no HOST:PORT",
			 host_port);
		report(d, false, check, detail, "correct it in HOME/config");
		return;
	}
	if ((d->status || d->node_silent) && d->node_pid > 0 &&
	    cli_port_held_by((pid_t)d->node_pid, port)) {
		snprintf(detail, sizeof(detail), "%s held by this home's node "
			 "(pid %ld)", host_port, d->node_pid);
		report(d, true, check, detail, NULL);
		return;
	}
	err = cli_port_try_bind(host, port);
	snprintf(detail, sizeof(detail), "%s %s", host_port,
		 err == 0 ? "is free" : err == EADDRINUSE
			 ? "is in use by another program"
			 : strerror(err));
	if (err == EADDRINUSE)
		snprintf(fix, sizeof(fix), "stop the program listening there "
			 "(ss -ltnp 'sport = :%u') or set another %s in "
			 "HOME/config", port, name);
	else
		snprintf(fix, sizeof(fix), "set %s in HOME/config to an "
			 "address of this machine", name);
	report(d, err == 0, check, detail, fix);
}

static void check_ports(doctor *d)
{
	const char *listen = cm_config_text(d->config, CM_SETTING_LISTEN, 0);
	const char *http = cm_config_text(d->config, CM_SETTING_HTTP, 0);

	if (listen != NULL && strncmp(listen, "tcp://", 6) == 0)
		check_port(d, "listen", "listen", listen + 6);
	if (http != NULL)
		check_port(d, "http", "http", http);
}

/* One connected peer's clock offset from the running node's status. */
typedef struct peer_clock {
	const char *peer;          /* short key */
	const char *endpoint;
	json_int_t offset_ms;      /* its clock minus ours */
} peer_clock;

static json_int_t abs_ms(json_int_t ms)
{
	return ms < 0 ? -ms : ms;
}

/*
 * Fills out[cap] with the connected peers of the status whose offset is
 * known, one entry per key: when two links lead to the same node, the one
 * with the larger offset. Returns the number of entries.
 */
static size_t collect_clocks(json_t *peers, peer_clock *out, size_t cap)
{
	size_t i, n = 0;
	json_t *peer;

	json_array_foreach(peers, i, peer) {
		json_t *offset = json_object_get(peer, "clock_offset_ms");
		const char *key = json_string_value(
			json_object_get(peer, "peer"));
		size_t k;

		if (!json_is_integer(offset) || key == NULL ||
		    !json_is_true(json_object_get(peer, "connected")))
			continue;
		for (k = 0; k < n && strcmp(out[k].peer, key) != 0; k++)
			;
		if (k == n && n == cap)
			continue;
		if (k < n && abs_ms(out[k].offset_ms) >=
				     abs_ms(json_integer_value(offset)))
			continue;
		out[k].peer = key;
		out[k].endpoint = json_string_value(
			json_object_get(peer, "endpoint"));
		out[k].offset_ms = json_integer_value(offset);
		if (k == n)
			n++;
	}
	return n;
}

/* Writes an offset as "250 ms ahead of this clock", "90.5 s behind this
 * clock" or "3.0 h ahead of this clock". */
static void format_offset(json_int_t ms, char *out, size_t cap)
{
	const char *way = ms > 0 ? "ahead of" : "behind";
	json_int_t a = abs_ms(ms);

	if (a < 10000)
		snprintf(out, cap, "%lld ms %s this clock", (long long)a, way);
	else if (a < 3600000)
		snprintf(out, cap, "%.1f s %s this clock", (double)a / 1000,
			 way);
	else
		snprintf(out, cap, "%.1f h %s this clock", (double)a / 3600000,
			 way);
}

/* Reports one peer whose clock is off by more than
 * CM_CLOCK_OFFSET_WARN_MS, with `fix`. */
static void report_clock_off(doctor *d, const peer_clock *c, const char *fix)
{
	char offset[64], detail[512];
	const char *effect = "";

	format_offset(c->offset_ms, offset, sizeof(offset));
	if (abs_ms(c->offset_ms) > CM_FUTURE_SKEW_MS)
		effect = c->offset_ms > 0
				 ? ", so this node rejects its new records "
				   "as dated ahead"
				 : ", so it rejects this node's new records "
				   "as dated ahead";
	snprintf(detail, sizeof(detail), "peer %s (%s) is %s, over the "
		 "limit of %d s%s", c->peer,
		 c->endpoint ? c->endpoint : "?", offset,
		 CM_CLOCK_OFFSET_WARN_MS / 1000, effect);
	report(d, false, "clock", detail, fix);
}

/*
 * Returns the fix for the peers whose clocks are off: `off` of the `n`
 * peers, `ahead` of them ahead. A clock that disagrees with several peers
 * in the same direction is likely the wrong one. One that agrees with
 * some peers likely is not.
 */
static const char *clock_fix(size_t n, size_t off, size_t ahead)
{
	if (n >= 2 && off == n && (ahead == 0 || ahead == n))
		return "this clock disagrees with every peer in the same "
		       "direction, so it is likely the wrong one: run "
		       "'timedatectl set-ntp true' here and check that "
		       "'timedatectl status' shows it synchronized";
	if (n >= 2)
		return "this clock agrees with other peers, so the peer's is "
		       "likely wrong: run 'timedatectl set-ntp true' on the "
		       "peer's machine and check that 'timedatectl status' "
		       "shows it synchronized";
	return "run 'timedatectl status' here and on the peer's machine, "
	       "then 'timedatectl set-ntp true' on the one whose clock is "
	       "not synchronized";
}

/* Compares the clock of each connected peer with ours, as the running
 * node measured it from their HELLO and PING messages. */
static void check_clock(doctor *d)
{
	peer_clock clocks[2 * CM_PEERS_MAX];
	size_t n, off = 0, ahead = 0, worst = 0;
	json_int_t future;
	char detail[512], offset[64];

	if (d->node_silent) {
		report(d, true, "clock", "not checked: the node did not "
		       "answer", NULL);
		return;
	}
	if (d->status == NULL) {
		report(d, true, "clock", "not checked: no node runs in this "
		       "home", NULL);
		return;
	}
	future = json_integer_value(json_object_get(
		json_object_get(d->status, "rejected"), "future"));
	n = collect_clocks(json_object_get(d->status, "peers"), clocks,
			   sizeof(clocks) / sizeof(clocks[0]));
	if (n == 0) {
		snprintf(detail, sizeof(detail), "not checked: no peer "
			 "connected; %lld records rejected as dated ahead",
			 (long long)future);
		report(d, true, "clock", detail, NULL);
		return;
	}

	for (size_t i = 0; i < n; i++) {
		json_int_t a = abs_ms(clocks[i].offset_ms);

		if (a > abs_ms(clocks[worst].offset_ms))
			worst = i;
		if (a <= CM_CLOCK_OFFSET_WARN_MS)
			continue;
		off++;
		ahead += clocks[i].offset_ms > 0;
	}
	for (size_t i = 0; i < n; i++)
		if (abs_ms(clocks[i].offset_ms) > CM_CLOCK_OFFSET_WARN_MS)
			report_clock_off(d, &clocks[i],
					 clock_fix(n, off, ahead));
	if (off > 0)
		return;

	format_offset(clocks[worst].offset_ms, offset, sizeof(offset));
	snprintf(detail, sizeof(detail), "%zu peer%s within %d s of this "
		 "clock; the farthest, %s, is %s; %lld records rejected as "
		 "dated ahead", n, n == 1 ? "" : "s",
		 CM_CLOCK_OFFSET_WARN_MS / 1000, clocks[worst].peer, offset,
		 (long long)future);
	report(d, true, "clock", detail, NULL);
}

static void check_peer(doctor *d, const char *addr)
{
	char endpoint[256], host[256], why[256], detail[768];
	uint8_t key[32];
	unsigned port;
	int err;

	cm_err_clear();
	if (node_parse_addr(addr, endpoint, key) != CM_OK ||
	    !cli_split_host_port(endpoint + 6, host, sizeof(host), &port)) {
		snprintf(detail, sizeof(detail), "%s: %s", addr,
			 cm_err_detail());
		report(d, false, "peer", detail,
		       "give the address 'clipmesh id' prints on the peer");
		return;
	}
	err = cli_tcp_probe(host, port, CM_DOCTOR_CONNECT_MS, why,
			    sizeof(why));
	snprintf(detail, sizeof(detail), "%s %s%s", addr,
		 err ? "unreachable: " : "accepts TCP connections",
		 err ? why : "");
	report(d, err == 0, "peer", detail,
	       "check that the peer's node runs, that its address is the "
	       "one 'clipmesh id' prints there, and that no firewall "
	       "blocks the port");
}

static int check_stored_peer(void *ctx, const char *addr)
{
	check_peer(ctx, addr);
	return 0;
}

/* Connects to every peer of HOME/config and of 'peer add'. A TCP connect
 * shows that something listens; it does not check the peer's key or that
 * it speaks clipmesh. */
static void check_peers(doctor *d)
{
	for (size_t i = 0; i < cm_config_count(d->config, CM_SETTING_PEER); i++)
		check_peer(d, cm_config_text(d->config, CM_SETTING_PEER, i));
	if (d->st != NULL)
		store_peer_list(d->st, check_stored_peer, d);
}

static int doctor_opt(void *state, int key, const char *value)
{
	(void)key;
	(void)value;
	((doctor *)state)->quick = true;
	return -1;
}

int cmd_doctor(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"quick", NULL, 1,
		 "open the store without verifying every record", false},
		{0},
	};
	doctor d = {.ctx = ctx};
	int first, rc;

	rc = cli_parse(ctx, argc, argv, opts, false, "[--quick]",
		       "Check the home: key file modes, the config, the "
		       "store (as 'store check'), the listen and http ports, "
		       "the clock against a running node's peers, and that "
		       "each configured peer accepts TCP connections. Prints "
		       "one line per check with the fix for each failure and "
		       "exits 1 when any failed.",
		       doctor_opt, &d, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       cli_value(argv[first]));
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	check_key_modes(&d);
	check_config(&d);
	if (d.config == NULL)
		return CLI_FAIL;
	check_store(&d);
	find_node(&d);
	check_ports(&d);
	check_clock(&d);
	check_peers(&d);
	store_close(&d.st);
	json_decref(d.status);
	cm_config_free(&d.config);
	return d.failed ? CLI_FAIL : CLI_OK;
}
