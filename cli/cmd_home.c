/* cmd_home.c - commands that manage the home: init, key, id, follow,
 * unfollow, following, peer. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "cm_util.h"
#include "node.h"
#include "proto_record.h"

/* Parses a command with no options but the common ones, and checks that it
 * has exactly `nargs` positional arguments. */
static int parse_plain(cli_ctx *ctx, int argc, char **argv, bool json,
		       const char *usage, const char *summary, int nargs,
		       int *first)
{
	int rc = cli_parse(ctx, argc, argv, NULL, json, usage, summary, NULL,
			   NULL, first);

	if (rc >= 0)
		return rc;
	if (argc - *first != nargs)
		return cli_usage_error(ctx, "expected %d argument%s, got %d",
				       nargs, nargs == 1 ? "" : "s",
				       argc - *first);
	return -1;
}

static int print_node_address(const char *home, const char *listen)
{
	uint8_t pub[32], *sec = NULL;
	char addr[256];
	cm_err err;

	cm_err_clear();
	err = cm_home_transport_key(home, pub, &sec);
	cm_secret_free(&sec);
	if (err)
		return cli_fail(err, "cannot read the node key",
				"'clipmesh init' writes node.pub again from "
				"node.key; move a damaged node.pub away "
				"first");
	err = node_format_addr(listen, pub, addr);
	if (err)
		return cli_fail(err, "cannot make the peer address",
				"give a tcp://HOST:PORT endpoint with "
				"--listen");
	printf("%s\n", addr);
	return CLI_OK;
}

/* Returns whether folder path contains an entry that another user owns,
 * or cannot be read to tell. */
static bool has_others_files(const char *path)
{
	struct dirent *ent;
	struct stat st;
	bool others = false;
	DIR *dir = opendir(path);

	if (dir == NULL)
		return true;
	while (!others && (ent = readdir(dir)) != NULL) {
		/* ".." is the parent, which may well belong to root. */
		if (strcmp(ent->d_name, ".") == 0 ||
		    strcmp(ent->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(dir), ent->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) != 0 ||
		    st.st_uid != geteuid())
			others = true;
	}
	closedir(dir);
	return others;
}

/* Sets mode 0700 on the home folder when group or others may use it,
 * as an existing folder that init adopts may allow, because doctor fails
 * such a home. A folder that another user owns or has files in keeps its
 * mode, since those files are theirs. Reports a change on stdout and
 * prints any error. */
static int make_home_private(const char *home)
{
	struct stat st;

	if (stat(home, &st) != 0) {
		fprintf(stderr, "clipmesh: cannot read the mode of the home "
			"folder %s: %s\n", home, strerror(errno));
		return CLI_FAIL;
	}
	if ((st.st_mode & 077) == 0)
		return CLI_OK;
	if (st.st_uid != geteuid() || has_others_files(home)) {
		fprintf(stderr, "clipmesh: left the home folder %s at mode "
			"%04o because other users own it or files in it\n"
			"move the home to a folder of your own, or run "
			"'chmod 700' on it when it is yours alone\n",
			home, (unsigned)(st.st_mode & 07777));
		return CLI_OK;
	}
	if (chmod(home, 0700) != 0) {
		fprintf(stderr, "clipmesh: cannot set mode 700 on the home "
			"folder %s: %s\nrun 'chmod 700 %s' as its owner\n",
			home, strerror(errno), home);
		return CLI_FAIL;
	}
	printf("set mode 700 on home %s (it was %04o), so that only its "
	       "owner can read it\n", home,
	       (unsigned)(st.st_mode & 07777));
	return CLI_OK;
}

int cmd_init(cli_ctx *ctx, int argc, char **argv)
{
	bool created, pub_restored;
	int first, rc;
	cm_err err;

	rc = parse_plain(ctx, argc, argv, false, "",
			 "Create the home folder with its store, node "
			 "transport key and config, and set the folder's "
			 "mode to 700. Running it again keeps what exists "
			 "and writes a missing node.pub from node.key. An "
			 "existing folder must be empty or a home.",
			 0, &first);
	if (rc >= 0)
		return rc;
	cm_err_clear();
	err = cm_home_resolve(ctx->home_flag, ctx->home);
	if (!err)
		err = cm_home_init(ctx->home, &created, &pub_restored);
	if (err)
		return cli_fail(err, "cannot initialise the home", NULL);
	if (pub_restored)
		printf("wrote the missing node.pub from node.key\n");
	printf("%s home %s\n", created ? "initialised" : "already initialised:",
	       ctx->home);
	return make_home_private(ctx->home);
}

/* Options of 'key new' and 'key passwd'. */
enum {
	OPT_PASS = 1,
	OPT_PASS_FILE,
	OPT_NEW_PASS_FILE,
	OPT_NO_PASS,
};

typedef struct key_opts {
	bool seal;                  /* key new: seal with a passphrase */
	bool plain;                 /* key passwd: store without one */
	const char *pass_file;
	const char *new_pass_file;
} key_opts;

static int key_opt(void *state, int key, const char *value)
{
	key_opts *o = state;

	if (key == OPT_PASS) {
		o->seal = true;
	} else if (key == OPT_PASS_FILE) {
		o->pass_file = value;
		o->seal = true;
	} else if (key == OPT_NEW_PASS_FILE) {
		o->new_pass_file = value;
	} else if (key == OPT_NO_PASS) {
		o->plain = true;
	}
	return -1;
}

/* Parses the options of a key subcommand that takes one NAME. */
static int parse_key_cmd(cli_ctx *ctx, int argc, char **argv,
			 const cli_opt *opts, const char *usage,
			 const char *summary, key_opts *o, int *first)
{
	int rc = cli_parse(ctx, argc, argv, opts, false, usage, summary,
			   key_opt, o, first);

	if (rc >= 0)
		return rc;
	if (argc - *first != 1)
		return cli_usage_error(ctx, "expected 1 argument, got %d",
				       argc - *first);
	rc = cli_need_home(ctx);
	return rc == CLI_OK ? -1 : rc;
}

static int key_new(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"passphrase", NULL, OPT_PASS,
		 "seal the secret key with a passphrase, typed twice on the "
		 "terminal (else $CLIPMESH_PASSPHRASE)", false},
		{"passphrase-file", "FILE", OPT_PASS_FILE,
		 "seal it with the first line of FILE as the passphrase",
		 false},
		{0},
	};
	key_opts o = {0};
	cli_pass pass = {0};
	uint8_t pub[32];
	char hex[65], prompt[96];
	int first, rc;
	cm_err err;

	rc = parse_key_cmd(ctx, argc, argv, opts, "NAME [--passphrase]",
			   "Create a creator identity (an Ed25519 key pair) "
			   "and print its public key.",
			   &o, &first);
	if (rc >= 0)
		return rc;
	if (o.seal) {
		snprintf(prompt, sizeof(prompt), "Passphrase for the new "
			 "identity '%.32s': ", argv[first]);
		rc = cli_pass_read(o.pass_file, CLI_PASS_ENV, prompt, true,
				   &pass);
		if (rc != CLI_OK)
			return rc;
	}
	cm_err_clear();
	err = cm_key_new_sealed(ctx->home, argv[first], pass.text, pass.len,
				pub);
	cli_pass_free(&pass);
	if (err)
		return cli_fail(err, "cannot create the identity", NULL);
	cm_hex_encode(pub, 32, hex);
	printf("%s\n", hex);
	return CLI_OK;
}

static int key_passwd(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"passphrase-file", "FILE", OPT_PASS_FILE,
		 "the current passphrase is the first line of FILE (else "
		 "$CLIPMESH_PASSPHRASE, else the terminal)", false},
		{"new-passphrase-file", "FILE", OPT_NEW_PASS_FILE,
		 "the new passphrase is the first line of FILE (else "
		 "$CLIPMESH_NEW_PASSPHRASE, else typed twice)", false},
		{"no-passphrase", NULL, OPT_NO_PASS,
		 "store the secret key without a passphrase", false},
		{0},
	};
	key_opts o = {0};
	cli_pass pass = {0};
	uint8_t pub[32], *secret = NULL;
	char prompt[96];
	int first, rc;
	cm_err err;

	rc = parse_key_cmd(ctx, argc, argv, opts, "NAME [--no-passphrase]",
			   "Change the passphrase that seals an identity's "
			   "secret key, or seal a plain one.",
			   &o, &first);
	if (rc >= 0)
		return rc;
	if (o.plain && o.new_pass_file)
		return cli_usage_error(ctx, "--no-passphrase and "
				       "--new-passphrase-file exclude each "
				       "other");
	rc = cli_load_identity(ctx, argv[first], o.pass_file, pub, &secret);
	if (rc != CLI_OK)
		return rc;
	if (!o.plain) {
		snprintf(prompt, sizeof(prompt), "New passphrase of identity "
			 "'%.32s': ", argv[first]);
		rc = cli_pass_read(o.new_pass_file, CLI_NEW_PASS_ENV, prompt,
				   true, &pass);
	}
	if (rc == CLI_OK) {
		cm_err_clear();
		err = cm_key_reseal(ctx->home, argv[first], secret, pass.text,
				    pass.len);
		if (err)
			rc = cli_fail(err, "cannot change the passphrase",
				      NULL);
	}
	cli_pass_free(&pass);
	cm_secret_free(&secret);
	return rc;
}

static int print_key(void *arg, const char *name, const uint8_t pub[32])
{
	const cli_ctx *ctx = arg;
	char hex[65];

	cm_hex_encode(pub, 32, hex);
	if (ctx->json) {
		cli_json_line(json_pack("{s:s, s:s}", "name", name, "key", hex));
	} else {
		printf("%-20s %s\n", name, hex);
	}
	return 0;
}

static int key_list(cli_ctx *ctx, int argc, char **argv)
{
	int first, rc;
	cm_err err;

	rc = parse_plain(ctx, argc, argv, true, "",
			 "List the creator identities of this home.", 0,
			 &first);
	if (rc >= 0)
		return rc;
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	err = cm_key_list(ctx->home, print_key, ctx);
	if (err)
		return cli_fail(err, "cannot list identities", NULL);
	return CLI_OK;
}

int cmd_key(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_sub subs[] = {
		{"new", key_new, "create a creator identity"},
		{"list", key_list, "list the identities of this home"},
		{"passwd", key_passwd, "change an identity's passphrase"},
	};

	return cli_run_sub(ctx, argc, argv, subs, 3);
}

/* Copies the listen endpoint of the node running in home (if any) into
 * out[cap]; returns false when no node runs there. */
static bool running_listen(const char *home, char *out, size_t cap)
{
	char *status = NULL;
	json_t *o = NULL;
	const char *listen;
	bool found = false;

	if (node_status(home, &status) != CM_OK)
		return false;
	o = json_loads(status, 0, NULL);
	listen = json_string_value(json_object_get(o, "listen"));
	if (listen != NULL) {
		cm_strlcpy(out, listen, cap);
		found = true;
	}
	json_decref(o);
	free(status);
	return found;
}

typedef struct id_opts {
	const char *listen;
} id_opts;

static int id_opt(void *state, int key, const char *value)
{
	((id_opts *)state)->listen = value;
	(void)key;
	return -1;
}

int cmd_id(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_opt opts[] = {
		{"listen", "EP", 1,
		 "endpoint others reach this node at (default: the "
		 "running node's, else the configured listen endpoint)", false},
		{0},
	};
	id_opts o = {0};
	char listen[256];
	int first, rc;

	rc = cli_parse(ctx, argc, argv, opts, false, "[--listen EP]",
		       "Print the peer address that others pass to --peer "
		       "to reach this node.",
		       id_opt, &o, &first);
	if (rc >= 0)
		return rc;
	if (first != argc)
		return cli_usage_error(ctx, "unexpected argument '%s'",
				       cli_value(argv[first]));
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	if (o.listen != NULL) {
		cm_strlcpy(listen, o.listen, sizeof(listen));
	} else if (!running_listen(ctx->home, listen, sizeof(listen))) {
		if ((rc = cli_load_settings(ctx, NULL)) != CLI_OK)
			return rc;
		cm_strlcpy(listen,
			   cm_config_text(ctx->config, CM_SETTING_LISTEN, 0),
			   sizeof(listen));
	}
	if (strstr(listen, "//0.0.0.0:") || strstr(listen, "//*:") ||
	    strstr(listen, "//[::]:")) {
		fprintf(stderr,
			"clipmesh: %s listens on every address, so it "
			"names no address others can reach\n"
			"give one with --listen tcp://HOST:PORT\n",
			listen);
		return CLI_USAGE;
	}
	return print_node_address(ctx->home, listen);
}

/* A public key to look for among the home's identities, and the name of
 * the identity that has it ("" when none does). */
typedef struct identity_match {
	const uint8_t *key;
	char name[CM_KEY_NAME_MAX + 1];
} identity_match;

static int match_identity(void *arg, const char *name,
			  const uint8_t public_key[32])
{
	identity_match *m = arg;

	if (memcmp(public_key, m->key, 32) != 0)
		return 0;
	cm_strlcpy(m->name, name, sizeof(m->name));
	return 1;
}

/*
 * Checks the key given to 'follow'. A key that no Ed25519 secret key can
 * sign for (such as all zeros) is bad usage. The home's own identity
 * needs no follow because the node always keeps its clips, so that is
 * reported as done. Returns -1 to go on, else the exit code.
 */
static int check_follow_key(cli_ctx *ctx, const char *hex,
			    const uint8_t key[32])
{
	identity_match m = {.key = key};
	int rc;

	if (!proto_key_valid(key))
		return cli_usage_error(ctx,
				       "invalid public key '%s': not a "
				       "creator's Ed25519 key (all zeros and "
				       "other small-order points are "
				       "invalid). 'clipmesh key list' on the "
				       "creator's home prints the key",
				       hex);
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	cm_key_list(ctx->home, match_identity, &m);
	if (m.name[0] == '\0')
		return -1;
	fprintf(stderr, "clipmesh: %s is the key of identity '%s' of this "
		"home; its node keeps its own clips already, so nothing was "
		"changed\n", hex, m.name);
	return CLI_OK;
}

static int change_follow(cli_ctx *ctx, int argc, char **argv, bool follow)
{
	store *s = NULL;
	uint8_t key[32];
	int first, rc;
	cm_err err;

	rc = parse_plain(ctx, argc, argv, false, "KEY",
			 follow ? "Replicate the clips of the creator with "
				  "public key KEY (64 hex characters)."
				: "Stop replicating the clips of creator KEY.",
			 1, &first);
	if (rc >= 0)
		return rc;
	if ((rc = cli_parse_key(ctx, argv[first], key)) != CLI_OK)
		return rc;
	if (follow && (rc = check_follow_key(ctx, argv[first], key)) >= 0)
		return rc;
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	cm_err_clear();
	err = follow ? store_follow(s, key) : store_unfollow(s, key);
	store_close(&s);
	if (err == CM_ERR_NOT_FOUND && !follow) {
		fprintf(stderr, "clipmesh: cannot unfollow %s: this home does "
				"not follow it\nlist the followed keys with "
				"'clipmesh following'\n",
			argv[first]);
		return CLI_FAIL;
	}
	if (err)
		return cli_fail(err, follow ? "cannot follow" : "cannot unfollow",
				NULL);
	return CLI_OK;
}

int cmd_follow(cli_ctx *ctx, int argc, char **argv)
{
	return change_follow(ctx, argc, argv, true);
}

int cmd_unfollow(cli_ctx *ctx, int argc, char **argv)
{
	return change_follow(ctx, argc, argv, false);
}

int cmd_following(cli_ctx *ctx, int argc, char **argv)
{
	store *s = NULL;
	uint8_t *keys = NULL;
	size_t n = 0;
	int first, rc;
	cm_err err;

	rc = parse_plain(ctx, argc, argv, true, "",
			 "List the creators this node follows.", 0, &first);
	if (rc >= 0)
		return rc;
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	err = store_following(s, &keys, &n);
	store_close(&s);
	if (err)
		return cli_fail(err, "cannot list followed creators", NULL);
	for (size_t i = 0; i < n; i++) {
		char hex[65];

		cm_hex_encode(keys + 32 * i, 32, hex);
		if (ctx->json)
			cli_json_line(json_pack("{s:s}", "key", hex));
		else
			printf("%s\n", hex);
	}
	free(keys);
	return CLI_OK;
}

/*
 * Writes the one spelling of a peer address that the store keeps into
 * out[256]: the key in lowercase hex and the host in lowercase, because
 * hex digits and DNS names do not depend on case.
 */
static cm_err canonical_peer_addr(const char *addr, char *out)
{
	char endpoint[256];
	uint8_t key[32];
	cm_err err;

	err = node_parse_addr(addr, endpoint, key);
	if (!err)
		err = node_format_addr(endpoint, key, out);
	for (char *c = out; !err && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return err;
}

/* A peer address to look for in the store's peer list. */
typedef struct peer_match {
	const char *addr;
	bool found;
} peer_match;

static int match_peer(void *arg, const char *addr)
{
	peer_match *m = arg;

	if (strcmp(addr, m->addr) == 0)
		m->found = true;
	return 0;
}

/* Sets *own to whether canonical address addr names this home's node
 * key, read from node.pub alone. Prints the error and returns CLI_FAIL
 * when that file cannot be read, so that an unknown key never lets this
 * node's own address in. */
static int is_own_node(const char *home, const char *addr, bool *own)
{
	uint8_t own_key[32], key[32];
	char endpoint[256];
	cm_err err;

	cm_err_clear();
	err = node_parse_addr(addr, endpoint, key);
	if (!err)
		err = cm_home_transport_public(home, own_key);
	if (err)
		return cli_fail(err, "cannot read this node's public key",
				"'clipmesh doctor' checks the home's key files");
	*own = memcmp(own_key, key, sizeof(own_key)) == 0;
	return CLI_OK;
}

static int peer_add(cli_ctx *ctx, int argc, char **argv)
{
	/* A whole address escaped: at most 4 bytes for each of its 255. */
	char addr[256], shown[4 * 256];
	store *s = NULL;
	peer_match match = {addr, false};
	bool own = false;
	int first, rc;
	cm_err err;

	rc = parse_plain(ctx, argc, argv, false, "ADDR",
			 "Remember peer ADDR (as 'clipmesh id' prints it); "
			 "the node connects to it at start.",
			 1, &first);
	if (rc >= 0)
		return rc;
	cm_err_clear();
	if ((err = canonical_peer_addr(argv[first], addr)))
		return cli_fail(CM_ERR_USAGE, "invalid peer address",
				"expected clipmesh://KEYHEX@HOST:PORT as "
				"'clipmesh id' prints it");
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	if ((rc = is_own_node(ctx->home, addr, &own)) != CLI_OK) {
		store_close(&s);
		return rc;
	}
	if (own) {
		store_close(&s);
		fprintf(stderr, "clipmesh: invalid peer address: %s\n"
			"its key is this home's own node key ('clipmesh id'); "
			"give the address of another node\n",
			cli_escape(addr, shown, sizeof(shown)));
		return CLI_USAGE;
	}
	err = store_peer_list(s, match_peer, &match);
	if (!err && match.found) {
		store_close(&s);
		fprintf(stderr, "peer %s is already known; nothing to do\n",
			cli_escape(addr, shown, sizeof(shown)));
		return CLI_OK;
	}
	if (!err)
		err = store_peer_add(s, addr);
	store_close(&s);
	if (err)
		return cli_fail(err, "cannot add the peer", NULL);
	fprintf(stderr, "peer added; a node that runs in this home dials it "
		"after its next start\n");
	return CLI_OK;
}

static int print_peer(void *arg, const char *addr)
{
	const cli_ctx *ctx = arg;

	if (ctx->json)
		cli_json_line(json_pack("{s:s}", "addr", addr));
	else
		printf("%s\n", addr);
	return 0;
}

/* Prints a peer that a node reached, with where its address came from,
 * its failed dials in a row and its last HELLO. */
static int print_known(void *arg, const store_known_peer *p)
{
	const cli_ctx *ctx = arg;
	const char *source = p->origin == STORE_KNOWN_LEARNED ? "learned"
							      : "configured";
	char hex[65], addr[300], seen[32] = "never";

	cm_hex_encode(p->key, 32, hex);
	snprintf(addr, sizeof(addr), "clipmesh://%s@%s", hex, p->addr);
	if (p->last_seen_ms)
		cm_time_rfc3339(p->last_seen_ms, seen);
	if (ctx->json)
		cli_json_line(json_pack("{s:s, s:s, s:I, s:s?}", "addr", addr,
					"source", source, "failures",
					(json_int_t)p->failures, "last_seen",
					p->last_seen_ms ? seen : NULL));
	else
		printf("%s\t%s, %u failed dials, last seen %s\n", addr, source,
		       (unsigned)p->failures, seen);
	return 0;
}

static int peer_list(cli_ctx *ctx, int argc, char **argv)
{
	store *s = NULL;
	size_t skipped = 0;
	int first, rc;
	cm_err err;

	rc = parse_plain(ctx, argc, argv, true, "",
			 "List the peers this home knows: those added with "
			 "'peer add', then those a node reached.",
			 0, &first);
	if (rc >= 0)
		return rc;
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	err = store_peer_list(s, print_peer, ctx);
	if (!err)
		err = store_known_list(s, print_known, ctx, &skipped);
	store_close(&s);
	if (err)
		return cli_fail(err, "cannot list peers", NULL);
	return CLI_OK;
}

int cmd_peer(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_sub subs[] = {
		{"add", peer_add, "remember a peer address"},
		{"list", peer_list, "list the known peers"},
	};

	return cli_run_sub(ctx, argc, argv, subs, 2);
}
