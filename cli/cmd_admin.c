/* cmd_admin.c - commands for operators: store check, store backup,
 * config show and doctor. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cm_util.h"
#include "node.h"
#include "store_admin.h"

static void print_problem(void *ctx, const char *message)
{
	(void)ctx;
	printf("problem: %s\n", message);
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
		       "problem is found.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	cm_err_clear();
	err = store_check(s, cm_now_ms(), &rep, print_problem, NULL);
	store_close(&s);
	if (err)
		return cli_fail(err, "store check failed", NULL);
	printf("records %llu, index entries %llu, chunks %llu, problems "
	       "%llu\n",
	       (unsigned long long)rep.records,
	       (unsigned long long)rep.index_entries,
	       (unsigned long long)rep.chunks,
	       (unsigned long long)rep.problems);
	return rep.problems ? CLI_FAIL : CLI_OK;
}

static int store_backup_cmd(cli_ctx *ctx, int argc, char **argv)
{
	store *s = NULL;
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
	if (mkdir(argv[first], 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "clipmesh: cannot create %s: %s\n",
			argv[first], strerror(errno));
		return CLI_FAIL;
	}
	if ((rc = cli_open_store(ctx, &s)) != CLI_OK)
		return rc;
	cm_err_clear();
	err = store_backup(s, argv[first]);
	store_close(&s);
	if (err)
		return cli_fail(err, "backup failed",
				"the folder must be empty");
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

static int config_show(cli_ctx *ctx, int argc, char **argv)
{
	char listen[256];
	const char *source = "config";
	int first, rc;

	rc = cli_parse(ctx, argc, argv, NULL, false, "",
		       "Print the effective settings and where each comes "
		       "from.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	if (!cm_config_get(ctx->home, "listen", listen, sizeof(listen))) {
		cm_strlcpy(listen, CM_DEFAULT_LISTEN, sizeof(listen));
		source = "default";
	}
	printf("home = %s  # %s\n", ctx->home,
	       ctx->home_flag ? "--home"
	       : getenv("CLIPMESH_HOME") ? "CLIPMESH_HOME"
					 : "default");
	printf("listen = %s  # %s\n", listen, source);
	return CLI_OK;
}

int cmd_config(cli_ctx *ctx, int argc, char **argv)
{
	static const cli_sub subs[] = {
		{"show", config_show, "print the effective settings"},
	};

	return cli_run_sub(ctx, argc, argv, subs, 1);
}

/* Prints one doctor line; returns 1 when the check failed. */
static int report(bool ok, const char *check, const char *detail,
		  const char *fix)
{
	if (ok)
		printf("ok    %-12s %s\n", check, detail);
	else
		printf("FAIL  %-12s %s; fix: %s\n", check, detail, fix);
	return ok ? 0 : 1;
}

static int check_secret_mode(const char *path, const char *check)
{
	char detail[CM_HOME_PATH_MAX + 64], fix[CM_HOME_PATH_MAX + 16];
	struct stat st;

	if (stat(path, &st) != 0)
		return report(false, check, path, "run 'clipmesh init'");
	snprintf(detail, sizeof(detail), "%s mode %03o", path,
		 (unsigned)(st.st_mode & 0777));
	snprintf(fix, sizeof(fix), "chmod 600 %s", path);
	return report((st.st_mode & 077) == 0, check, detail, fix);
}

/* True when nothing listens on the TCP port of a tcp://HOST:PORT endpoint
 * (or when the endpoint is not of that form and cannot be tested). */
static bool port_free(const char *endpoint)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	const char *colon = strrchr(endpoint, ':');
	char host[64];
	uint64_t port;
	bool free_port;
	int fd;

	if (strncmp(endpoint, "tcp://", 6) != 0 || colon == NULL ||
	    !cm_parse_u64(colon + 1, &port) || port > 65535 ||
	    (size_t)(colon - endpoint - 6) >= sizeof(host))
		return true;
	memcpy(host, endpoint + 6, (size_t)(colon - endpoint - 6));
	host[colon - endpoint - 6] = '\0';
	if (strcmp(host, "*") == 0)
		cm_strlcpy(host, "0.0.0.0", sizeof(host));
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		return true;
	addr.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return true;
	free_port = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	close(fd);
	return free_port;
}

int cmd_doctor(cli_ctx *ctx, int argc, char **argv)
{
	char path[CM_HOME_PATH_MAX], listen[256], detail[512];
	char *status = NULL;
	store *s = NULL;
	int first, rc, failed = 0;
	bool running;

	rc = cli_parse(ctx, argc, argv, NULL, false, "",
		       "Check the home, its key files, the store and the "
		       "listen port; print one line per check with the fix "
		       "for each failure.",
		       NULL, NULL, &first);
	if (rc >= 0)
		return rc;
	if ((rc = cli_need_home(ctx)) != CLI_OK)
		return rc;
	cm_home_path(ctx->home, "node.key", path);
	failed += check_secret_mode(path, "node key");
	failed += report(cli_open_store(ctx, &s) == CLI_OK, "store",
			 "opens", "see the error above");
	store_close(&s);
	if (!cm_config_get(ctx->home, "listen", listen, sizeof(listen)))
		cm_strlcpy(listen, CM_DEFAULT_LISTEN, sizeof(listen));
	running = node_status(ctx->home, &status) == CM_OK;
	free(status);
	snprintf(detail, sizeof(detail), "%s %s", listen,
		 running ? "in use by this home's node" : "is free");
	failed += report(running || port_free(listen), "listen port", detail,
			 "stop what uses the port or set another 'listen' "
			 "in the config");
	return failed ? CLI_FAIL : CLI_OK;
}
