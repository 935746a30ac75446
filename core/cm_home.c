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

#include "cm_keyfile.h"
#include "cm_limits.h"
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

/*
 * Encodes a secret key as its file contents into *out (sodium_malloc'd,
 * *out_len bytes): hex and a newline, or sealed with `pass` when it is not
 * NULL (identity keys only).
 */
static cm_err secret_file_bytes(const uint8_t *sec, size_t sec_len,
				const char *pass, size_t pass_len,
				uint8_t **out, size_t *out_len)
{
	size_t len = pass ? CM_KEYFILE_LEN : 2 * sec_len + 1;
	uint8_t *buf = sodium_malloc(len + 1);
	cm_err err = CM_OK;

	if (buf == NULL)
		return CM_ERR_NOMEM;
	if (pass != NULL && sec_len != CM_KEYFILE_SECRET_LEN) {
		err = cm_errf(CM_ERR_USAGE, "only identity keys can be "
			      "sealed with a passphrase");
	} else if (pass != NULL) {
		err = cm_keyfile_seal(sec, pass, pass_len,
				      CM_KEY_PWHASH_OPSLIMIT,
				      CM_KEY_PWHASH_MEMLIMIT, buf);
	} else {
		cm_hex_encode(sec, sec_len, (char *)buf);
		buf[2 * sec_len] = '\n';
	}
	if (err) {
		sodium_free(buf);
		return err;
	}
	*out = buf;
	*out_len = len;
	return CM_OK;
}

/* Writes a 32-byte public key as one line of hex to the new file path. */
static cm_err write_public_key(const char *path, const uint8_t pub[32])
{
	char pub_hex[2 * 32 + 2];

	cm_hex_encode(pub, 32, pub_hex);
	pub_hex[2 * 32] = '\n';
	pub_hex[2 * 32 + 1] = '\0';
	return write_new_file(path, pub_hex, strlen(pub_hex), 0644);
}

/* Writes a hex public key file and a 0600 secret key file, hex or sealed
 * with `pass` (see secret_file_bytes). */
static cm_err write_key_pair(const char *pub_path, const char *sec_path,
			     const uint8_t pub[32],
			     const uint8_t *sec, size_t sec_len,
			     const char *pass, size_t pass_len)
{
	uint8_t *sec_bytes = NULL;
	size_t sec_bytes_len;
	cm_err err;

	err = secret_file_bytes(sec, sec_len, pass, pass_len, &sec_bytes,
				&sec_bytes_len);
	if (err)
		return err;

	err = write_new_file(sec_path, sec_bytes, sec_bytes_len, 0600);
	if (err)
		goto out;
	err = write_public_key(pub_path, pub);
	if (err)
		unlink(sec_path);
out:
	sodium_free(sec_bytes);
	return err;
}

/* Names that init and a running node create in a home. */
static const char *const home_names[] = {
	"config", "store", "keys", "node.key", "node.pub", "node.lock",
	"control.sock", NULL,
};

static bool is_home_name(const char *name)
{
	for (size_t i = 0; home_names[i] != NULL; i++)
		if (strcmp(name, home_names[i]) == 0)
			return true;
	return false;
}

/*
 * Checks that init may use the existing folder home. It may when the
 * folder is empty, contains only names that a home contains (an init
 * that stopped part way) or contains a node key, which only a home has.
 * Hidden files (a shell history where the home is also a service user's
 * login folder) and lost+found (a home on a file system of its own) do
 * not count.
 * Init would write keys beside the files of any other folder and make it
 * private. A missing folder passes, because init creates it.
 */
static cm_err check_home_folder(const char *home)
{
	struct dirent *ent;
	bool foreign = false;
	DIR *dir = opendir(home);

	if (dir == NULL && errno == ENOENT)
		return CM_OK;
	if (dir == NULL)
		return cm_errf(CM_ERR_IO, "cannot open the home folder %s: "
			       "%s", home, strerror(errno));
	while ((ent = readdir(dir)) != NULL) {
		if (ent->d_name[0] == '.' ||
		    strcmp(ent->d_name, "lost+found") == 0)
			continue;
		if (!is_home_name(ent->d_name))
			foreign = true;
	}
	closedir(dir);
	if (!foreign || path_exists(home, "node.key") ||
	    path_exists(home, "node.pub"))
		return CM_OK;
	return cm_errf(CM_ERR_EXISTS, "%s is not empty and is not a clipmesh "
		       "home; give a new or empty folder with --home", home);
}

static cm_err read_key_file(const char *path, uint8_t *bin, size_t len,
			    bool secret, const char *pass, size_t pass_len);

/* Writes node.pub from node.key, for a home that lost its public key
 * file. X25519 derives a public key from its secret key alone. */
static cm_err restore_node_pub(const char *sec_path, const char *pub_path)
{
	uint8_t pub[crypto_box_PUBLICKEYBYTES];
	uint8_t *sec = sodium_malloc(crypto_box_SECRETKEYBYTES);
	cm_err err;

	if (sec == NULL)
		return CM_ERR_NOMEM;
	err = read_key_file(sec_path, sec, crypto_box_SECRETKEYBYTES, true,
			    NULL, 0);
	if (!err && crypto_scalarmult_base(pub, sec) != 0)
		err = cm_errf(CM_ERR_CRYPTO, "%s contains a key that has no "
			      "public key; restore it from a backup",
			      sec_path);
	sodium_free(sec);
	if (err)
		return err;
	return write_public_key(pub_path, pub);
}

/* Creates the node key pair unless node.key exists, and writes a
 * missing node.pub from node.key. Sets *created when it wrote the pair
 * and *pub_restored when it wrote node.pub alone. */
static cm_err init_node_key(const char *home, bool *created,
			    bool *pub_restored)
{
	char path[CM_HOME_PATH_MAX], pub_path[CM_HOME_PATH_MAX];
	uint8_t pub[crypto_box_PUBLICKEYBYTES];
	uint8_t *sec = NULL;
	cm_err err;

	if ((err = cm_home_path(home, "node.key", path)) ||
	    (err = cm_home_path(home, "node.pub", pub_path)))
		return err;
	if (access(path, F_OK) == 0) {
		if (access(pub_path, F_OK) == 0)
			return CM_OK;
		err = restore_node_pub(path, pub_path);
		*pub_restored = err == CM_OK;
		return err;
	}
	/* A new key pair would replace the identity that peers know from
	 * node.pub, so only the user may decide to drop it. */
	if (access(pub_path, F_OK) == 0)
		return cm_errf(CM_ERR_NOT_FOUND,
			       "%s does not exist but node.pub does; restore "
			       "node.key from a backup, or move node.pub away "
			       "and run clipmesh init to make a new node key, "
			       "which changes this node's identity for its "
			       "peers", path);
	sec = sodium_malloc(crypto_box_SECRETKEYBYTES);
	if (sec == NULL)
		return CM_ERR_NOMEM;
	/* ZeroMQ CURVE keys are Curve25519 key pairs, as crypto_box makes. */
	crypto_box_keypair(pub, sec);
	err = write_key_pair(pub_path, path, pub, sec,
			     crypto_box_SECRETKEYBYTES, NULL, 0);
	sodium_free(sec);
	if (!err)
		*created = true;
	return err;
}

cm_err cm_home_init(const char *home, bool *created, bool *pub_restored)
{
	char path[CM_HOME_PATH_MAX];
	cm_err err;

	*created = false;
	*pub_restored = false;
	/* A home whose control socket path cannot exist would fail only when
	 * the node starts, so reject it before creating anything. */
	if ((err = cm_home_control_endpoint(home, path)))
		return err;
	if ((err = check_home_folder(home)))
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
	return init_node_key(home, created, pub_restored);
}

/* Reads up to cap bytes of fd into buf; returns the count or -1. */
static ssize_t read_up_to(int fd, void *buf, size_t cap)
{
	size_t done = 0;

	while (done < cap) {
		ssize_t n = read(fd, (char *)buf + done, cap - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Decodes the contents of a hex key file of `len` bytes: 2*len hex digits
 * and an optional newline. */
static cm_err parse_hex_key(const char *path, char *buf, size_t n,
			    uint8_t *bin, size_t len)
{
	if (n < 2 * len || n > 2 * len + 1 ||
	    (n == 2 * len + 1 && buf[2 * len] != '\n'))
		return cm_errf(CM_ERR_IO, "%s is not a key file of %zu bytes; "
			       "restore it from a backup", path, len);
	buf[2 * len] = '\0';
	if (!cm_hex_decode(buf, bin, len))
		return cm_errf(CM_ERR_IO, "%s does not contain hex; restore "
			       "it from a backup", path);
	return CM_OK;
}

/*
 * Reads a key file of exactly `len` bytes into bin. With `secret`, it
 * rejects a file readable by group or others and accepts an identity key
 * (len 64) sealed with a passphrase, which `pass` opens. A sealed file
 * without `pass` fails with CM_ERR_PASSPHRASE.
 */
static cm_err read_key_file(const char *path, uint8_t *bin, size_t len,
			    bool secret, const char *pass, size_t pass_len)
{
	size_t cap = 2 * len + 2 > CM_KEYFILE_LEN + 1 ? 2 * len + 2
						      : CM_KEYFILE_LEN + 1;
	uint8_t *buf = NULL;
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
	buf = sodium_malloc(cap);
	if (buf == NULL) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	n = read_up_to(fd, buf, cap - 1);
	if (n < 0) {
		err = cm_errf(CM_ERR_IO, "cannot read %s: %s", path,
			      strerror(errno));
		goto out;
	}

	if (!secret || !cm_keyfile_is_sealed(buf, (size_t)n))
		err = parse_hex_key(path, (char *)buf, (size_t)n, bin, len);
	else if (len != CM_KEYFILE_SECRET_LEN)
		err = cm_errf(CM_ERR_IO, "%s is sealed with a passphrase, "
			      "which only identity keys may be", path);
	else if (pass == NULL)
		err = cm_errf(CM_ERR_PASSPHRASE, "%s is sealed with a "
			      "passphrase; give the passphrase", path);
	else
		err = cm_keyfile_open(buf, (size_t)n, pass, pass_len, bin);
out:
	if (buf != NULL)
		sodium_free(buf);
	close(fd);
	return err;
}

/* Loads a public/secret pair stored as PUB and SEC files under home; a
 * sealed secret file needs `pass`. */
static cm_err load_pair(const char *home, const char *pub_name,
			const char *sec_name, uint8_t *pub, size_t pub_len,
			uint8_t **secret, size_t sec_len, const char *pass,
			size_t pass_len)
{
	char path[CM_HOME_PATH_MAX];
	uint8_t *sec;
	cm_err err;

	*secret = NULL;
	if ((err = cm_home_path(home, pub_name, path)) ||
	    (err = read_key_file(path, pub, pub_len, false, NULL, 0)))
		return err;
	sec = sodium_malloc(sec_len);
	if (sec == NULL)
		return CM_ERR_NOMEM;
	if ((err = cm_home_path(home, sec_name, path)) ||
	    (err = read_key_file(path, sec, sec_len, true, pass,
				 pass_len))) {
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
			crypto_box_SECRETKEYBYTES, NULL, 0);
	if (err == CM_ERR_NOT_FOUND && !path_exists(home, "node.pub"))
		err = cm_errf(CM_ERR_NOT_FOUND, "%s/node.pub does not exist; "
			      "run clipmesh init to write it from node.key",
			      home);
	return err;
}

cm_err cm_home_transport_public(const char *home, uint8_t public_key[32])
{
	char path[CM_HOME_PATH_MAX];
	cm_err err = cm_home_path(home, "node.pub", path);

	if (!err)
		err = read_key_file(path, public_key, 32, false, NULL, 0);
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
			       "invalid identity name '%.40s': use 1 to %d "
			       "letters, digits, '_', '.' or '-', not "
			       "starting with '.'",
			       name, CM_KEY_NAME_MAX);
	snprintf(rel, sizeof(rel), "keys/%s.pub", name);
	if (cm_home_path(home, rel, pub))
		return CM_ERR_USAGE;
	snprintf(rel, sizeof(rel), "keys/%s.key", name);
	return cm_home_path(home, rel, sec);
}

cm_err cm_key_new(const char *home, const char *name, uint8_t public_key[32])
{
	return cm_key_new_sealed(home, name, NULL, 0, public_key);
}

cm_err cm_key_new_sealed(const char *home, const char *name, const char *pass,
			 size_t pass_len, uint8_t public_key[32])
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
	err = write_key_pair(pub_path, sec_path, public_key, sec,
			     crypto_sign_SECRETKEYBYTES, pass, pass_len);
	sodium_free(sec);
	return err;
}

cm_err cm_key_load(const char *home, const char *name, uint8_t public_key[32],
		   uint8_t **secret)
{
	return cm_key_load_sealed(home, name, NULL, 0, public_key, secret);
}

cm_err cm_key_load_sealed(const char *home, const char *name,
			  const char *pass, size_t pass_len,
			  uint8_t public_key[32], uint8_t **secret)
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
			crypto_sign_SECRETKEYBYTES, pass, pass_len);
	if (err == CM_ERR_PASSPHRASE && pass)
		return cm_errf(err, "the passphrase does not open identity "
			       "'%s' (or its key file was changed)", name);
	if (err == CM_ERR_PASSPHRASE)
		return cm_errf(err, "identity '%s' is sealed with a "
			       "passphrase; give the passphrase", name);
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

cm_err cm_key_is_sealed(const char *home, const char *name, bool *sealed)
{
	char pub_path[CM_HOME_PATH_MAX], sec_path[CM_HOME_PATH_MAX];
	uint8_t head[CM_KEYFILE_MAGIC_LEN];
	ssize_t n;
	cm_err err;
	int fd;

	*sealed = false;
	if ((err = key_paths(home, name, pub_path, sec_path)))
		return err;
	fd = open(sec_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return cm_errf(CM_ERR_NOT_FOUND,
			       "no identity named '%s'; create it with "
			       "clipmesh key new %s",
			       name, name);
	if (fd < 0)
		return cm_errf(CM_ERR_IO, "cannot open %s: %s", sec_path,
			       strerror(errno));
	n = read_up_to(fd, head, sizeof(head));
	close(fd);
	*sealed = n > 0 && cm_keyfile_is_sealed(head, (size_t)n);
	return CM_OK;
}

/* Makes a rename in the folder of `path` durable; best effort, because
 * the key file itself was synced before the rename. */
static void sync_parent(const char *path)
{
	char dir[CM_HOME_PATH_MAX];
	char *slash;
	int fd;

	cm_strlcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	fsync(fd);
	close(fd);
}

cm_err cm_key_reseal(const char *home, const char *name,
		     const uint8_t *secret, const char *pass,
		     size_t pass_len)
{
	char pub_path[CM_HOME_PATH_MAX], sec_path[CM_HOME_PATH_MAX];
	char tmp_path[CM_HOME_PATH_MAX];
	uint8_t *bytes = NULL;
	size_t len;
	cm_err err;

	if ((err = key_paths(home, name, pub_path, sec_path)))
		return err;
	if (snprintf(tmp_path, sizeof(tmp_path), "%s.new", sec_path) >=
	    (int)sizeof(tmp_path))
		return cm_errf(CM_ERR_USAGE, "path is too long: %s.new",
			       sec_path);
	err = secret_file_bytes(secret, crypto_sign_SECRETKEYBYTES, pass,
				pass_len, &bytes, &len);
	if (err)
		return err;

	/* A .new file left by an interrupted run contains nothing that the
	 * key file lacks, so it is replaced. */
	unlink(tmp_path);
	err = write_new_file(tmp_path, bytes, len, 0600);
	if (!err && rename(tmp_path, sec_path) != 0) {
		err = cm_errf(CM_ERR_IO, "cannot replace %s: %s", sec_path,
			      strerror(errno));
		unlink(tmp_path);
	}
	if (!err)
		sync_parent(sec_path);
	sodium_free(bytes);
	return err;
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

		if (len < 5 || strcmp(ent->d_name + len - 4, ".pub") != 0)
			continue;
		err = cm_array_reserve((void **)&names, &cap, n + 1,
				       sizeof(*names));
		if (err)
			goto out;
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
		    read_key_file(path, pub, 32, false, NULL, 0))
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
