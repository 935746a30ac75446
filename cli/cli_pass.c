/*
 * cli_pass.c - passphrases for sealed identity keys: from a file, an
 * environment variable or the terminal, kept in guarded memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "cm_limits.h"

#define BUF_LEN (CM_PASSPHRASE_MAX + 2)

/* Signals that end a prompt: the terminal's echo is restored before the
 * signal takes its usual effect. */
static const int prompt_signals[] = {SIGINT,  SIGTERM, SIGHUP, SIGQUIT,
				     SIGTSTP, SIGTTIN, SIGTTOU};
#define N_PROMPT_SIGNALS (sizeof(prompt_signals) / sizeof(*prompt_signals))

static volatile sig_atomic_t prompt_signal;

static void on_prompt_signal(int sig)
{
	prompt_signal = sig;
}

void cli_pass_free(cli_pass *p)
{
	if (p->text)
		sodium_free(p->text);
	p->text = NULL;
	p->len = 0;
}

static int pass_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Prints "clipmesh: " and the message; returns CLI_FAIL. */
static int pass_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "clipmesh: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_FAIL;
}

/* Takes the first line of the bytes in p->text as the passphrase. */
static int first_line(cli_pass *p, size_t n, const char *source)
{
	char *newline = memchr(p->text, '\n', n);

	if (!newline && n > CM_PASSPHRASE_MAX)
		return pass_error("the passphrase in %s is over %d bytes",
				  source, CM_PASSPHRASE_MAX);
	p->len = newline ? (size_t)(newline - p->text) : n;
	if (p->len > 0 && p->text[p->len - 1] == '\r')
		p->len--;
	p->text[p->len] = '\0';
	if (p->len == 0)
		return pass_error("the passphrase in %s is empty", source);
	if (memchr(p->text, '\0', p->len))
		return pass_error("the passphrase in %s contains a NUL byte",
				  source);
	return CLI_OK;
}

static int read_file(cli_pass *p, const char *path)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "clipmesh: cannot open passphrase file %s: "
			"%s\n", path, strerror(errno));
		return CLI_FAIL;
	}
	n = read(fd, p->text, BUF_LEN - 1);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "clipmesh: cannot read passphrase file %s: "
			"%s\n", path, strerror(errno));
		return CLI_FAIL;
	}
	return first_line(p, (size_t)n, path);
}

static void catch_prompt_signals(struct sigaction *saved)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_prompt_signal; /* no SA_RESTART: read stops */
	sigemptyset(&sa.sa_mask);
	prompt_signal = 0;
	for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
		sigaction(prompt_signals[i], &sa, &saved[i]);
}

static void restore_prompt_signals(const struct sigaction *saved)
{
	for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
		sigaction(prompt_signals[i], &saved[i], NULL);
}

/* Reads one line from terminal `fd` into p->text; returns its length, or
 * -1 on an error, a signal or a line over CM_PASSPHRASE_MAX bytes (the
 * rest of which it reads and discards). */
static ssize_t read_line(int fd, cli_pass *p)
{
	size_t n = 0;
	char c;

	for (;;) {
		ssize_t rc = read(fd, &c, 1);

		if (rc < 0 && errno == EINTR && !prompt_signal)
			continue;
		if (rc <= 0 || prompt_signal)
			return rc == 0 ? (ssize_t)n : -1;
		if (c == '\n')
			break;
		if (n < BUF_LEN - 1)
			p->text[n] = c;
		n++;
	}
	if (n > CM_PASSPHRASE_MAX)
		return -1;
	return (ssize_t)n;
}

/* Prompts on the terminal with echo off and reads one line. */
static int read_terminal(cli_pass *p, const char *prompt)
{
	struct sigaction saved[N_PROMPT_SIGNALS];
	struct termios old, quiet;
	ssize_t n, written;
	int fd;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || tcgetattr(fd, &old) != 0) {
		if (fd >= 0)
			close(fd);
		return pass_error("cannot read the passphrase from the "
				  "terminal: %s", strerror(errno));
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;

	catch_prompt_signals(saved);
	tcsetattr(fd, TCSAFLUSH, &quiet);
	written = write(fd, prompt, strlen(prompt));
	(void)written; /* without the prompt, reading still works */
	n = read_line(fd, p);
	tcsetattr(fd, TCSAFLUSH, &old);
	restore_prompt_signals(saved);
	close(fd);

	if (prompt_signal) {
		raise(prompt_signal);
		return pass_error("passphrase prompt interrupted");
	}
	if (n < 0)
		return pass_error("the passphrase is over %d bytes or could "
				  "not be read", CM_PASSPHRASE_MAX);
	return first_line(p, (size_t)n, "the terminal input");
}

/* Prompts twice and checks that both lines are the same. */
static int read_terminal_twice(cli_pass *p, const char *prompt)
{
	cli_pass again = {0};
	int rc;

	rc = read_terminal(p, prompt);
	if (rc != CLI_OK)
		return rc;
	again.text = sodium_malloc(BUF_LEN);
	if (!again.text)
		return cli_fail(CM_ERR_NOMEM, "cannot read the passphrase",
				NULL);
	rc = read_terminal(&again, "Repeat the passphrase: ");
	if (rc == CLI_OK && (again.len != p->len ||
			     sodium_memcmp(again.text, p->text, p->len) != 0))
		rc = pass_error("the two passphrases differ; nothing was "
				"changed");
	cli_pass_free(&again);
	return rc;
}

int cli_pass_read(const char *file, const char *env, const char *prompt,
		  bool confirm, cli_pass *p)
{
	const char *value = env ? getenv(env) : NULL;
	int rc;

	p->len = 0;
	p->text = sodium_malloc(BUF_LEN);
	if (!p->text)
		return cli_fail(CM_ERR_NOMEM, "cannot read the passphrase",
				NULL);

	if (file) {
		rc = read_file(p, file);
	} else if (value && *value) {
		if (strlen(value) > CM_PASSPHRASE_MAX) {
			rc = pass_error("%s is over %d bytes", env,
					CM_PASSPHRASE_MAX);
		} else {
			p->len = strlen(value);
			memcpy(p->text, value, p->len + 1);
			rc = CLI_OK;
		}
	} else if (isatty(STDIN_FILENO)) {
		rc = confirm ? read_terminal_twice(p, prompt)
			     : read_terminal(p, prompt);
	} else {
		fprintf(stderr, "clipmesh: no passphrase: stdin is not a "
			"terminal\ngive --passphrase-file FILE or set %s\n",
			env ? env : "CLIPMESH_PASSPHRASE");
		rc = CLI_USAGE;
	}
	if (rc != CLI_OK)
		cli_pass_free(p);
	return rc;
}

int cli_load_identity(const cli_ctx *ctx, const char *name,
		      const char *pass_file, uint8_t public_key[32],
		      uint8_t **secret)
{
	cli_pass pass = {0};
	char prompt[96];
	bool sealed = false;
	cm_err err;
	int rc;

	cm_err_clear();
	err = cm_key_is_sealed(ctx->home, name, &sealed);
	if (!err && sealed) {
		snprintf(prompt, sizeof(prompt), "Passphrase of identity "
			 "'%s': ", name);
		rc = cli_pass_read(pass_file, CLI_PASS_ENV, prompt, false,
				   &pass);
		if (rc != CLI_OK)
			return rc;
	}
	if (!err)
		err = cm_key_load_sealed(ctx->home, name, pass.text, pass.len,
					 public_key, secret);
	cli_pass_free(&pass);
	if (err)
		return cli_fail(err, "cannot use identity",
				err == CM_ERR_NOT_FOUND
					? "list identities with 'clipmesh "
					  "key list'"
					: NULL);
	return CLI_OK;
}
