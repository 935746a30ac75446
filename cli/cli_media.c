#include "cli_media.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_limits.h"
#include "cm_util.h"
#include "proto_media.h"

/* Chunks written per store transaction while copying a file. */
#define CHUNKS_PER_TXN 16

/* Time between two redraws of a progress bar. */
#define PROGRESS_REDRAW_MS 250
#define PROGRESS_BAR_WIDTH 24

/* Reads up to len bytes, retrying short reads; returns bytes read or -1. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

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

/* Returns the error for a read of a media file that returned n bytes,
 * fewer than its size at the start promised: a read error when n is
 * negative, else a file that shrank under the publish. */
static cm_err short_read_error(const char *path, ssize_t n)
{
	if (n < 0)
		return cm_errf(CM_ERR_IO, "cannot read %s: %s", path,
			       strerror(errno));
	return cm_errf(CM_ERR_IO, "%s shrank while it was being published; "
		       "publish it again", path);
}

static cm_err open_media(const char *path, int *fd, uint64_t *size)
{
	struct stat st;
	bool not_regular;

	*fd = cli_open_regular(path, &st, &not_regular);
	if (*fd < 0 && not_regular)
		return cm_errf(CM_ERR_IO, "not a regular file: %s", path);
	if (*fd < 0 && errno == ENOENT)
		return cm_errf(CM_ERR_NOT_FOUND, "file not found: %s", path);
	if (*fd < 0)
		return cm_errf(CM_ERR_IO, "cannot open %s: %s", path,
			       strerror(errno));
	*size = (uint64_t)st.st_size;
	return CM_OK;
}

cm_err cli_media_hash(const char *path, cli_media_file *out)
{
	cli_progress progress = {0};
	uint8_t *buf = NULL;
	const char *type;
	uint64_t size, n_chunks, done = 0;
	int fd = -1;
	cm_err err;

	memset(out, 0, sizeof(*out));
	out->path = path;
	if ((err = open_media(path, &fd, &size)))
		return err;
	if (size == 0 || size > CM_MEDIA_SIZE_MAX) {
		err = cm_errf(CM_ERR_TOO_LONG,
			      "%s is %llu bytes; media must be 1 byte to "
			      "%llu bytes",
			      path, (unsigned long long)size,
			      (unsigned long long)CM_MEDIA_SIZE_MAX);
		goto out;
	}
	n_chunks = proto_media_chunk_count(size);
	buf = malloc(CM_CHUNK_SIZE);
	out->chunks = malloc(n_chunks * PROTO_HASH_LEN);
	if (buf == NULL || out->chunks == NULL) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	cli_progress_start(&progress, "hashing", size);
	for (uint64_t i = 0; i < n_chunks; i++) {
		size_t want = size - done < CM_CHUNK_SIZE ? size - done
							  : CM_CHUNK_SIZE;
		ssize_t n = read_full(fd, buf, want);

		if (n != (ssize_t)want) {
			err = short_read_error(path, n);
			goto out;
		}
		if (i == 0) {
			type = proto_media_sniff(buf, want);
			if (type == NULL) {
				err = cm_errf(CM_ERR_BAD_MEDIA_TYPE,
					      "unknown media type of %s: "
					      "expected MP4, WebM, "
					      "QuickTime, JPEG, PNG or WebP",
					      path);
				goto out;
			}
			strncpy(out->ref.type, type, CM_MEDIA_TYPE_MAX);
		}
		proto_chunk_hash(buf, want, out->chunks[i]);
		done += want;
		cli_progress_add(&progress, want);
	}
	cli_progress_end(&progress);
	out->n_chunks = n_chunks;
	out->ref.size = size;
	proto_media_root((const uint8_t(*)[PROTO_HASH_LEN])out->chunks,
			 n_chunks, size, out->ref.hash);
out:
	if (err && progress.enabled)
		fputc('\n', stderr);
	free(buf);
	close(fd);
	if (err)
		cli_media_free(out);
	return err;
}

cm_err cli_media_store(store_publish *pub, const cli_media_file *file)
{
	cli_progress progress = {0};
	uint8_t *buf = NULL;
	const uint8_t *data[CHUNKS_PER_TXN];
	size_t lens[CHUNKS_PER_TXN];
	uint64_t size, done = 0;
	int fd = -1;
	cm_err err;

	if ((err = open_media(file->path, &fd, &size)))
		return err;
	buf = malloc((size_t)CHUNKS_PER_TXN * CM_CHUNK_SIZE);
	if (buf == NULL) {
		err = CM_ERR_NOMEM;
		goto out;
	}
	cli_progress_start(&progress, "storing", file->ref.size);
	for (size_t i = 0; i < file->n_chunks; i += CHUNKS_PER_TXN) {
		size_t batch = file->n_chunks - i < CHUNKS_PER_TXN
				       ? file->n_chunks - i
				       : CHUNKS_PER_TXN;

		for (size_t j = 0; j < batch; j++) {
			uint8_t *chunk = buf + j * CM_CHUNK_SIZE;
			uint8_t hash[PROTO_HASH_LEN];
			uint64_t left = file->ref.size - done;
			size_t want = left < CM_CHUNK_SIZE ? left
							   : CM_CHUNK_SIZE;
			ssize_t n = read_full(fd, chunk, want);

			if (n != (ssize_t)want) {
				err = short_read_error(file->path, n);
				goto out;
			}
			proto_chunk_hash(chunk, want, hash);
			if (memcmp(hash, file->chunks[i + j], sizeof(hash))) {
				err = cm_errf(CM_ERR_IO,
					      "%s changed while it was being "
					      "published; publish it again",
					      file->path);
				goto out;
			}
			data[j] = chunk;
			lens[j] = want;
			done += want;
		}
		err = store_publish_chunks_put(pub, file->ref.hash, batch,
					       (const uint8_t(*)[PROTO_HASH_LEN])
						       file->chunks + i,
					       data, lens);
		if (err)
			goto out;
		for (size_t j = 0; j < batch; j++)
			cli_progress_add(&progress, lens[j]);
	}
	cli_progress_end(&progress);
out:
	if (err && progress.enabled && progress.drawn)
		fputc('\n', stderr);
	free(buf);
	close(fd);
	return err;
}

void cli_media_free(cli_media_file *file)
{
	free(file->chunks);
	file->chunks = NULL;
	file->n_chunks = 0;
}

/* Formats a byte count with a binary unit into out[16]. */
static void format_bytes(double bytes, char out[16])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;

	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, 16, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void progress_draw(cli_progress *p, uint64_t now)
{
	char done[16], total[16], rate_text[16], left[32] = "";
	char bar[PROGRESS_BAR_WIDTH + 1];
	double secs = (double)(now - p->started) / 1000.0;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	size_t filled = p->total
		? (size_t)(PROGRESS_BAR_WIDTH * (double)p->done / p->total)
		: PROGRESS_BAR_WIDTH;

	memset(bar, '#', filled);
	memset(bar + filled, '.', PROGRESS_BAR_WIDTH - filled);
	bar[PROGRESS_BAR_WIDTH] = '\0';
	format_bytes((double)p->done, done);
	format_bytes((double)p->total, total);
	format_bytes(rate, rate_text);
	if (rate > 0 && p->done < p->total) {
		double remaining = (double)(p->total - p->done) / rate;
		unsigned secs_left = remaining > 359999 ? 359999
							: (unsigned)remaining;

		snprintf(left, sizeof(left), "%u:%02u:%02u left",
			 secs_left / 3600, secs_left / 60 % 60, secs_left % 60);
	} else if (p->done >= p->total) {
		snprintf(left, sizeof(left), "done");
	}
	fprintf(stderr, "\r%-8s [%s] %s / %s  %s/s  %s   ", p->label, bar, done,
		total, rate_text, left);
	fflush(stderr);
	p->drawn = now;
}

void cli_progress_start(cli_progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->started = cm_mono_ms();
	p->enabled = isatty(STDERR_FILENO) == 1;
}

void cli_progress_add(cli_progress *p, uint64_t bytes)
{
	uint64_t now;

	p->done += bytes;
	if (!p->enabled)
		return;
	now = cm_mono_ms();
	if (now - p->drawn >= PROGRESS_REDRAW_MS)
		progress_draw(p, now);
}

void cli_progress_end(cli_progress *p)
{
	if (!p->enabled || p->drawn == 0)
		return;
	progress_draw(p, cm_mono_ms());
	fputc('\n', stderr);
	p->enabled = false;
}
