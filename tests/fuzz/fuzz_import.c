/*
 * fuzz_import.c - libFuzzer harness for the export-file reader.
 *
 * The import loop of `clipmesh import` (cli/cmd_transfer.c) is not a
 * library function, so this harness repeats its framing: the 16-byte
 * magic, then records of a 4-byte big-endian length (1 to CM_RECORD_MAX)
 * and that many bytes, each opened with proto_record_open. Each record is
 * copied into a buffer of exactly its length, so that a read past the
 * record is caught by AddressSanitizer.
 *
 * NOTE: this copies the CLI's framing; a change there is not fuzzed until
 * the reader moves into a library that both call.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto_record.h"

#define NOW_MS 1796403600000ULL

static const char export_magic[16] = "clipmesh-export\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static proto_signed s;
	size_t pos = sizeof(export_magic);

	if (size < pos || memcmp(data, export_magic, pos) != 0)
		return 0;

	while (size - pos >= 4) {
		size_t len = (size_t)data[pos] << 24 |
			     (size_t)data[pos + 1] << 16 |
			     (size_t)data[pos + 2] << 8 | data[pos + 3];
		uint8_t *rec;

		pos += 4;
		if (len == 0 || len > CM_RECORD_MAX || len > size - pos)
			return 0;
		rec = malloc(len);
		if (rec == NULL)
			abort();
		memcpy(rec, data + pos, len);
		(void)proto_record_open(rec, len, NOW_MS, &s);
		free(rec);
		pos += len;
	}
	return 0;
}
