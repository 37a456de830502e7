/*
 * core/ingest.h - turning input directories and files into validated,
 * stored component files. Everything is validated before anything is
 * written, so refused input changes nothing in the repository.
 */
#ifndef SLUICE_CORE_INGEST_H
#define SLUICE_CORE_INGEST_H

#include "repo.h"
#include "safetensors.h"

/* Files up to this size that are JSON or text are stored as plain git blobs. */
#define SLUICE_BLOB_MAX (1u << 20)

typedef enum {
	SLUICE_FMT_SAFETENSORS = 1,
	SLUICE_FMT_JSON = 2,
	SLUICE_FMT_TEXT = 3
} sluice_file_format;

/* One input file, validated. */
typedef struct {
	char *rel; /* path relative to the input directory */
	char *abs; /* path on disk */
	uint64_t size;
	sluice_file_format format;
	sluice_st_header st; /* for SAFETENSORS */
} sluice_input_file;

typedef struct {
	size_t n;
	sluice_input_file *files; /* sorted by rel */
} sluice_input_dir;

/*
 * Walk dir recursively and validate every file by what parses: *.safetensors
 * must be safetensors, *.json JSON, anything else UTF-8 text. Symlinks,
 * FIFOs, sockets and devices are refused, as are pickle and torch zip files
 * (named as such) and names that are not safe relative paths.
 */
int sluice_ingest__scan_dir(sluice_ctx *ctx, sluice_input_dir *out, const char *dir);
/* Validate a single file the same way (rel is the name to record). */
int sluice_ingest__check_file(sluice_ctx *ctx, sluice_input_file *out, const char *path,
                              const char *rel);
void sluice_ingest__dispose_dir(sluice_input_dir *d);
void sluice_ingest__dispose_file(sluice_input_file *f);
const sluice_input_file *sluice_ingest__find(const sluice_input_dir *d, const char *rel);

/*
 * Store one validated file and return its state entry
 * {"path": dest, "size", "blake2b", "storage": "blob"|"chunks"} and the git
 * blob (raw content or manifest) that the version tree holds for it.
 * acc (may be NULL) accumulates what chunked storage read and newly stored.
 */
int sluice_ingest__store(sluice_repo *repo, json_t **entry, git_oid *blob,
                         const sluice_input_file *f, const char *dest, sluice_ingest_stats *acc);

/* Store bytes already in memory as a plain blob entry (memory notes). */
int sluice_ingest__store_bytes(sluice_repo *repo, json_t **entry, git_oid *blob, const void *data,
                               size_t len, const char *dest);

#endif
