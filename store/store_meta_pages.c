/*
 * store_meta_pages.c - checks of the two LMDB meta pages of data.mdb,
 * read with pread() before LMDB maps the file.
 *
 * LMDB 0.9 takes the page size from the meta page with the higher
 * transaction id and maps the file with it, without checking it. With one
 * damaged byte in that field mdb_env_open reads past the end of the map,
 * and the process ends with SIGBUS instead of returning an error.
 *
 * The structs below copy the layout of MDB_page, MDB_db and MDB_meta in
 * mdb.c of LMDB 0.9, in the byte order of the host that wrote the file.
 * Page numbers and transaction ids are size_t there, and the page size is
 * the md_pad field of the free-page database's record.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if MDB_VERSION_MAJOR != 0 || MDB_VERSION_MINOR != 9
#error "store_meta_pages.c reads the data file layout of LMDB 0.9"
#endif

#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_PAGE_FLAG_META 0x08u

/* LMDB 0.9 creates a data file with the OS page size, capped at 32 KiB
 * (MAX_PAGESIZE in mdb.c), and no Linux architecture has pages smaller
 * than 4 KiB. */
#define LMDB_PAGE_SIZE_MIN 4096u
#define LMDB_PAGE_SIZE_MAX 32768u

struct lmdb_page_header {
	size_t page_number;
	uint16_t pad;
	uint16_t flags;
	uint16_t lower;
	uint16_t upper;
};

struct lmdb_db {
	uint32_t pad;
	uint16_t flags;
	uint16_t depth;
	size_t branch_pages;
	size_t leaf_pages;
	size_t overflow_pages;
	size_t entries;
	size_t root;
};

struct lmdb_meta {
	uint32_t magic;
	uint32_t version;
	uintptr_t address;
	size_t map_size;
	struct lmdb_db dbs[2];
	size_t last_page;
	size_t txn_id;
};

struct lmdb_meta_page {
	struct lmdb_page_header header;
	struct lmdb_meta meta;
};

/* The fields of one meta page that the checks use. `damage` is empty
 * when the page is intact. */
typedef struct meta_page {
	char damage[96];
	uint32_t page_size;
	uint64_t last_page;
} meta_page;

static bool page_size_valid(uint32_t size)
{
	return size >= LMDB_PAGE_SIZE_MIN && size <= LMDB_PAGE_SIZE_MAX &&
	       (size & (size - 1)) == 0;
}

/* Reads the meta page at `offset` of fd into out, noting in out->damage
 * what LMDB would reject or misread. Fails only when pread fails. */
static cm_err read_meta_page(int fd, off_t offset, const char *path,
			     meta_page *out)
{
	struct lmdb_meta_page page;
	const struct lmdb_meta *m = &page.meta;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	n = pread(fd, &page, sizeof(page), offset);
	if (n < 0)
		return cm_errf(CM_ERR_IO, "reading the meta pages of %s "
			       "failed: %s", path, strerror(errno));
	if ((size_t)n < sizeof(page))
		snprintf(out->damage, sizeof(out->damage),
			 "is missing because the file ends before byte "
			 "%jd",
			 (intmax_t)(offset + (off_t)sizeof(page)));
	else if (!(page.header.flags & LMDB_PAGE_FLAG_META))
		snprintf(out->damage, sizeof(out->damage),
			 "is not marked as a meta page");
	else if (m->magic != LMDB_MAGIC)
		snprintf(out->damage, sizeof(out->damage),
			 "has magic 0x%08" PRIx32 " instead of 0x%08x",
			 m->magic, LMDB_MAGIC);
	else if (m->version != LMDB_DATA_VERSION)
		snprintf(out->damage, sizeof(out->damage),
			 "has format version %" PRIu32 " instead of %u",
			 m->version, LMDB_DATA_VERSION);
	else if (!page_size_valid(m->dbs[0].pad))
		snprintf(out->damage, sizeof(out->damage),
			 "has page size %" PRIu32 ", not a power of two from "
			 "%u to %u", m->dbs[0].pad, LMDB_PAGE_SIZE_MIN,
			 LMDB_PAGE_SIZE_MAX);
	out->page_size = m->dbs[0].pad;
	out->last_page = m->last_page;
	return CM_OK;
}

/*
 * Reads meta page 1 into out. It starts one page after meta page 0, so
 * its offset is the page size that page 0 holds. When that value is
 * damaged, page 1 is looked for at each valid page size, and without an
 * intact page there it is reported as read at the smallest one.
 */
static cm_err read_second_page(int fd, const meta_page *first,
			       const char *path, meta_page *out)
{
	cm_err err;

	if (!first->damage[0])
		return read_meta_page(fd, first->page_size, path, out);
	for (uint32_t size = LMDB_PAGE_SIZE_MAX; size >= LMDB_PAGE_SIZE_MIN;
	     size /= 2) {
		err = read_meta_page(fd, size, path, out);
		if (err)
			return err;
		if (!out->damage[0] && out->page_size == size)
			return CM_OK;
	}
	return read_meta_page(fd, LMDB_PAGE_SIZE_MIN, path, out);
}

/* Fails when a meta page is damaged, naming which one. */
static cm_err check_damage(const char *path, const meta_page pages[2])
{
	if (pages[0].damage[0] && pages[1].damage[0])
		return cm_errf(CM_ERR_STORE, "store file %s is damaged in both "
			       "LMDB meta pages: page 0 %s, and page 1 %s; "
			       STORE_RESTORE_FIX, path, pages[0].damage,
			       pages[1].damage);
	for (int i = 0; i < 2; i++)
		if (pages[i].damage[0])
			return cm_errf(CM_ERR_STORE, "store file %s is "
				       "damaged: LMDB meta page %d %s. Meta "
				       "page %d is intact, but LMDB could "
				       "choose the damaged one, so the store "
				       "is not opened; " STORE_RESTORE_FIX, path, i,
				       pages[i].damage, 1 - i);
	if (pages[0].page_size != pages[1].page_size)
		return cm_errf(CM_ERR_STORE, "store file %s is damaged: its "
			       "LMDB meta pages name different page sizes, "
			       "%" PRIu32 " and %" PRIu32 "; " STORE_RESTORE_FIX,
			       path, pages[0].page_size, pages[1].page_size);
	return CM_OK;
}

/* Fails when intact meta pages list pages past the end of a file of
 * `file_size` bytes, which LMDB would read through the map. */
static cm_err check_extent(const char *path, const meta_page pages[2],
			   uint64_t file_size)
{
	uint64_t pages_in_file = file_size / pages[0].page_size;

	if (pages_in_file < 2)
		return cm_errf(CM_ERR_STORE, "store file %s is %" PRIu64
			       " bytes, shorter than its two LMDB meta pages "
			       "of %" PRIu32 " bytes, so the file was cut "
			       "short; " STORE_RESTORE_FIX, path, file_size,
			       pages[0].page_size);
	for (int i = 0; i < 2; i++)
		if (pages[i].last_page >= pages_in_file)
			return cm_errf(CM_ERR_STORE, "store file %s holds "
				       "%" PRIu64 " pages, but LMDB meta page "
				       "%d lists pages up to number %" PRIu64
				       ", so the file was cut short (a "
				       "damaged disk or an interrupted copy) "
				       "or the meta page is damaged; "
				       STORE_RESTORE_FIX, path, pages_in_file, i,
				       pages[i].last_page);
	return CM_OK;
}

cm_err store_check_meta_pages(const char *dir)
{
	char path[PATH_MAX];
	meta_page pages[2];
	struct stat st;
	cm_err err;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >=
	    sizeof(path))
		return cm_errf(CM_ERR_USAGE, "store folder path of %zu bytes "
			       "is too long", strlen(dir));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return CM_OK;
	if (fd < 0)
		return cm_errf(CM_ERR_IO, "cannot open %s: %s", path,
			       strerror(errno));

	err = read_meta_page(fd, 0, path, &pages[0]);
	if (!err)
		err = read_second_page(fd, &pages[0], path, &pages[1]);
	/* The size is taken after the pages are read: a node that commits
	 * meanwhile writes its pages before the meta page naming them. */
	if (!err && fstat(fd, &st) != 0)
		err = cm_errf(CM_ERR_IO, "fstat of %s failed: %s", path,
			      strerror(errno));
	close(fd);
	if (err)
		return err;

	err = check_damage(path, pages);
	if (!err)
		err = check_extent(path, pages, (uint64_t)st.st_size);
	return err;
}
