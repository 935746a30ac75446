#define _GNU_SOURCE
#include "cm_home.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cm_util.h"

#define IPC_PATH_MAX 107

static const char default_config[] =
	"# clipmesh settings: one \"key = value\" per line. clipmesh.conf(5)\n"
	"# describes every setting; 'clipmesh config show' prints them.\n"
	"listen = " CM_DEFAULT_LISTEN "\n";

cm_err cm_home_resolve(const char *flag, char *out)
{
	const char *env;
	int n;

	if (flag != NULL && *flag == '\0')
		return cm_errf(CM_ERR_USAGE,
			       "--home is empty: give the home folder");
	if (flag != NULL)
		n = snprintf(out, CM_HOME_PATH_MAX, "%s", flag);
	else if ((env = getenv("CLIPMESH_HOME")) != NULL && *env != '\0')
		n = snprintf(out, CM_HOME_PATH_MAX, "%s", env);
	else if ((env = getenv("XDG_DATA_HOME")) != NULL && *env != '\0')
		n = snprintf(out, CM_HOME_PATH_MAX, "%s/clipmesh", env);
	else if ((env = getenv("HOME")) != NULL && *env != '\0')
		n = snprintf(out, CM_HOME_PATH_MAX,
			     "%s/.local/share/clipmesh", env);
	else
		return cm_errf(CM_ERR_USAGE,
			       "no home folder: pass --home DIR or set "
			       "CLIPMESH_HOME");
	if (n < 0 || n >= CM_HOME_PATH_MAX)
		return cm_errf(CM_ERR_USAGE, "home path is too long");
	return CM_OK;
}

cm_err cm_home_path(const char *home, const char *name, char *out)
{
	int n = snprintf(out, CM_HOME_PATH_MAX, "%s/%s", home, name);

	if (n < 0 || n >= CM_HOME_PATH_MAX)
		return cm_errf(CM_ERR_USAGE, "path is too long: %s/%s", home,
			       name);
	return CM_OK;
}

static bool path_exists(const char *home, const char *name)
{
	char path[CM_HOME_PATH_MAX];

	if (cm_home_path(home, name, path))
		return false;
	return access(path, F_OK) == 0;
}

bool cm_home_is_init(const char *home)
{
	return path_exists(home, "store") && path_exists(home, "node.key");
}

static cm_err make_dir(const char *path, bool *created)
{
	if (mkdir(path, 0700) == 0) {
		*created = true;
		return CM_OK;
	}
	if (errno == EEXIST)
		return CM_OK;
	return cm_errf(CM_ERR_IO, "cannot create folder %s: %s", path,
		       strerror(errno));
}

/* Creates every missing folder of path, like mkdir -p, with mode 0700. */
static cm_err make_dirs(const char *path, bool *created)
{
	char buf[CM_HOME_PATH_MAX];
	cm_err err;

	if (cm_strlcpy(buf, path, sizeof(buf)) >= sizeof(buf))
		return cm_errf(CM_ERR_USAGE, "path is too long: %s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		err = make_dir(buf, created);
		*p = '/';
		if (err)
			return err;
	}
	return make_dir(buf, created);
}

/* Writes data to a new file at path with `mode`; fails if it exists. */
static cm_err write_new_file(const char *path, const void *data, size_t len,
			     mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0) {
		if (errno == EEXIST)
			return cm_errf(CM_ERR_EXISTS, "%s already exists",
				       path);
		return cm_errf(CM_ERR_IO, "cannot create %s: %s", path,
			       strerror(errno));
	}
	n = write(fd, data, len);
	if (n != (ssize_t)len || fsync(fd) != 0) {
		int saved = errno;

		close(fd);
		unlink(path);
		return cm_errf(CM_ERR_IO, "cannot write %s: %s", path,
			       strerror(saved));
	}
	close(fd);
	return CM_OK;
}

/* Writes a hex public key file and a 0600 hex secret key file. */
static cm_err write_key_pair(const char *pub_path, const char *sec_path,
			     const uint8_t *pub, size_t pub_len,
			     const uint8_t *sec, size_t sec_len)
{
	char pub_hex[2 * 32 + 2];
	char *sec_hex = sodium_malloc(2 * sec_len + 2);
	cm_err err;

	if (sec_hex == NULL)
		return CM_ERR_NOMEM;
	cm_hex_encode(pub, pub_len, pub_hex);
	pub_hex[2 * pub_len] = '\n';
	pub_hex[2 * pub_len + 1] = '\0';
	cm_hex_encode(sec, sec_len, sec_hex);
	sec_hex[2 * sec_len] = '\n';
	sec_hex[2 * sec_len + 1] = '\0';

	err = write_new_file(sec_path, sec_hex, 2 * sec_len + 1, 0600);
	if (err)
		goto out;
	err = write_new_file(pub_path, pub_hex, strlen(pub_hex), 0644);
	if (err)
		unlink(sec_path);
out:
	sodium_free(sec_hex);
	return err;
}

cm_err cm_home_init(const char *home, bool *created)
{
	char path[CM_HOME_PATH_MAX], pub_path[CM_HOME_PATH_MAX];
	uint8_t pub[crypto_box_PUBLICKEYBYTES];
	uint8_t *sec = NULL;
	cm_err err;

	*created = false;
	/* A home whose control socket path cannot exist would fail only when
	 * the node starts, so reject it before creating anything. */
	if ((err = cm_home_control_endpoint(home, path)))
		return err;
	if ((err = make_dirs(home, created)))
		return err;
	if ((err = cm_home_path(home, "store", path)) ||
	    (err = make_dir(path, created)))
		return err;
	if ((err = cm_home_path(home, "keys", path)) ||
	    (err = make_dir(path, created)))
		return err;

	if ((err = cm_home_path(home, "config", path)))
		return err;
	if (access(path, F_OK) != 0) {
		err = write_new_file(path, default_config,
				     strlen(default_config), 0644);
		if (err)
			return err;
		*created = true;
	}

	if ((err = cm_home_path(home, "node.key", path)) ||
	    (err = cm_home_path(home, "node.pub", pub_path)))
		return err;
	if (access(path, F_OK) == 0)
		return CM_OK;
	sec = sodium_malloc(crypto_box_SECRETKEYBYTES);
	if (sec == NULL)
		return CM_ERR_NOMEM;
	/* ZeroMQ CURVE keys are Curve25519 key pairs, as crypto_box makes. */
	crypto_box_keypair(pub, sec);
	err = write_key_pair(pub_path, path, pub, sizeof(pub), sec,
			     crypto_box_SECRETKEYBYTES);
	sodium_free(sec);
	if (!err)
		*created = true;
	return err;
}

/* Reads a hex file holding exactly `len` bytes into bin. With
 * `secret`, refuses a file readable by group or others. */
static cm_err read_hex_file(const char *path, uint8_t *bin, size_t len,
			    bool secret)
{
	char *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd;
	cm_err err = CM_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return cm_errf(CM_ERR_NOT_FOUND, "%s does not exist",
				       path);
		return cm_errf(CM_ERR_IO, "cannot open %s: %s", path,
			       strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		err = cm_errf(CM_ERR_IO, "cannot stat %s: %s", path,
			      strerror(errno));
		goto out;
	}
	if (secret && (st.st_mode & 077)) {
		err = cm_errf(CM_ERR_KEY_MODE,
			      "%s is readable by others (mode %03o); run "
			      "chmod 600 %s",
			      path, (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	buf = sodium_malloc(2 * len + 2);
	if (buf == NULL) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	n = read(fd, buf, 2 * len + 1);
	if (n < (ssize_t)(2 * len) ||
	    (n == (ssize_t)(2 * len + 1) && buf[2 * len] != '\n')) {
		err = cm_errf(CM_ERR_IO, "%s is not a key file of %zu bytes",
			      path, len);
		goto out;
	}
	buf[2 * len] = '\0';
	if (!cm_hex_decode(buf, bin, len))
		err = cm_errf(CM_ERR_IO, "%s does not contain hex", path);
out:
	if (buf != NULL)
		sodium_free(buf);
	close(fd);
	return err;
}

/* Loads a public/secret pair stored as PUB and SEC files under home. */
static cm_err load_pair(const char *home, const char *pub_name,
			const char *sec_name, uint8_t *pub, size_t pub_len,
			uint8_t **secret, size_t sec_len)
{
	char path[CM_HOME_PATH_MAX];
	uint8_t *sec;
	cm_err err;

	*secret = NULL;
	if ((err = cm_home_path(home, pub_name, path)) ||
	    (err = read_hex_file(path, pub, pub_len, false)))
		return err;
	sec = sodium_malloc(sec_len);
	if (sec == NULL)
		return CM_ERR_NOMEM;
	if ((err = cm_home_path(home, sec_name, path)) ||
	    (err = read_hex_file(path, sec, sec_len, true))) {
		sodium_free(sec);
		return err;
	}
	*secret = sec;
	return CM_OK;
}

cm_err cm_home_transport_key(const char *home, uint8_t public_key[32],
			     uint8_t **secret)
{
	cm_err err;

	if (!cm_home_is_init(home))
		return cm_errf(CM_ERR_NOT_INIT,
			       "%s is not an initialised home; run "
			       "clipmesh init",
			       home);
	err = load_pair(home, "node.pub", "node.key", public_key, 32, secret,
			crypto_box_SECRETKEYBYTES);
	return err;
}

bool cm_key_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > CM_KEY_NAME_MAX || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

static cm_err key_paths(const char *home, const char *name, char *pub,
			char *sec)
{
	char rel[64];

	if (!cm_key_name_valid(name))
		return cm_errf(CM_ERR_USAGE,
			       "invalid identity name '%s': use 1 to %d "
			       "letters, digits, '_', '.' or '-'",
			       name, CM_KEY_NAME_MAX);
	snprintf(rel, sizeof(rel), "keys/%s.pub", name);
	if (cm_home_path(home, rel, pub))
		return CM_ERR_USAGE;
	snprintf(rel, sizeof(rel), "keys/%s.key", name);
	return cm_home_path(home, rel, sec);
}

cm_err cm_key_new(const char *home, const char *name, uint8_t public_key[32])
{
	char pub_path[CM_HOME_PATH_MAX], sec_path[CM_HOME_PATH_MAX];
	uint8_t *sec;
	cm_err err;

	if ((err = key_paths(home, name, pub_path, sec_path)))
		return err;
	if (access(pub_path, F_OK) == 0 || access(sec_path, F_OK) == 0)
		return cm_errf(CM_ERR_EXISTS,
			       "identity '%s' already exists; pick another "
			       "name",
			       name);
	sec = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (sec == NULL)
		return CM_ERR_NOMEM;
	crypto_sign_keypair(public_key, sec);
	err = write_key_pair(pub_path, sec_path, public_key, 32, sec,
			     crypto_sign_SECRETKEYBYTES);
	sodium_free(sec);
	return err;
}

cm_err cm_key_load(const char *home, const char *name, uint8_t public_key[32],
		   uint8_t **secret)
{
	char pub_path[CM_HOME_PATH_MAX], sec_path[CM_HOME_PATH_MAX];
	cm_err err;

	*secret = NULL;
	if ((err = key_paths(home, name, pub_path, sec_path)))
		return err;
	if (access(pub_path, F_OK) != 0)
		return cm_errf(CM_ERR_NOT_FOUND,
			       "no identity named '%s'; create it with "
			       "clipmesh key new %s",
			       name, name);
	err = load_pair(home, pub_path + strlen(home) + 1,
			sec_path + strlen(home) + 1, public_key, 32, secret,
			crypto_sign_SECRETKEYBYTES);
	if (err)
		return err;
	/* The public half of an Ed25519 secret key is its last 32 bytes. */
	if (sodium_memcmp(*secret + 32, public_key, 32) != 0) {
		cm_secret_free(secret);
		return cm_errf(CM_ERR_IO,
			       "%s and %s do not belong together", pub_path,
			       sec_path);
	}
	return CM_OK;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

cm_err cm_key_list(const char *home,
		   int (*fn)(void *ctx, const char *name,
			     const uint8_t public_key[32]),
		   void *ctx)
{
	char dir_path[CM_HOME_PATH_MAX], path[CM_HOME_PATH_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *ent;
	DIR *dir;
	cm_err err = CM_OK;

	if ((err = cm_home_path(home, "keys", dir_path)))
		return err;
	dir = opendir(dir_path);
	if (dir == NULL)
		return errno == ENOENT ? CM_OK
				       : cm_errf(CM_ERR_IO, "cannot read %s: %s",
						 dir_path, strerror(errno));
	while ((ent = readdir(dir)) != NULL) {
		size_t len = strlen(ent->d_name);
		char **grown;

		if (len < 5 || strcmp(ent->d_name + len - 4, ".pub") != 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (grown == NULL) {
				err = CM_ERR_NOMEM;
				goto out;
			}
			names = grown;
		}
		names[n] = strndup(ent->d_name, len - 4);
		if (names[n] == NULL) {
			err = CM_ERR_NOMEM;
			goto out;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		uint8_t pub[32];
		char rel[64];

		if (!cm_key_name_valid(names[i]))
			continue;
		snprintf(rel, sizeof(rel), "keys/%s.pub", names[i]);
		if (cm_home_path(home, rel, path) ||
		    read_hex_file(path, pub, 32, false))
			continue;
		if (fn(ctx, names[i], pub))
			break;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return err;
}

void cm_secret_free(uint8_t **secret)
{
	if (secret == NULL || *secret == NULL)
		return;
	sodium_free(*secret);
	*secret = NULL;
}

cm_err cm_home_control_endpoint(const char *home, char *out)
{
	int n = snprintf(out, CM_HOME_PATH_MAX, "ipc://%s/control.sock", home);

	if (n < 0 || (size_t)n - strlen("ipc://") > IPC_PATH_MAX)
		return cm_errf(CM_ERR_USAGE,
			       "home path %s is too long for the node's "
			       "control socket (max %d bytes); use a shorter "
			       "--home",
			       home, IPC_PATH_MAX - 13);
	return CM_OK;
}
