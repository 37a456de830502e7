/*
 * core/chunkstore.h - content-addressed chunk storage.
 *
 * Chunks are identified by BLAKE2b-256 of their bytes. They are appended to
 * pack files under <repo>/sluice/packs/ (one pack per writing process at a
 * time, append-only, self-describing: magic + version header, records that
 * each carry their id and length, and a trailer index written last). A pack
 * is fsynced, and its directory, before anything refers to its chunks.
 * LMDB under <repo>/sluice/index/ maps chunk id -> (pack, offset, length);
 * it is derived data, rebuilt from the packs by sluice_chunkstore__reindex.
 *
 * A manifest describes one large file as the ordered list of its chunks
 * plus the whole file's size and BLAKE2b-256; it is stored as a git blob.
 */
#ifndef SLUICE_CORE_CHUNKSTORE_H
#define SLUICE_CORE_CHUNKSTORE_H

#include "internal.h"

typedef struct sluice_chunkstore sluice_chunkstore;

typedef struct {
	unsigned char id[SLUICE_B2_LEN];
	uint64_t len;
} sluice_chunkref;

typedef struct {
	uint64_t size;                   /* whole file's bytes */
	unsigned char b2[SLUICE_B2_LEN]; /* BLAKE2b-256 of the whole file */
	size_t nchunks;
	sluice_chunkref *chunks;
} sluice_manifest;

/*
 * A region of a file to chunk. Safetensors files are cut at the header and
 * at every tensor boundary first; within a region, `cdc` selects
 * content-defined chunking (~64 KiB average) over fixed 64 KiB pieces.
 */
typedef struct {
	uint64_t off, len;
	int cdc;
} sluice_region;

/* Statistics of one ingest, for progress output and the benchmark. */
typedef struct {
	uint64_t bytes_in;   /* bytes read */
	uint64_t chunks;     /* chunks in the manifest */
	uint64_t new_chunks; /* chunks not already stored */
	uint64_t new_bytes;  /* bytes of those */
} sluice_ingest_stats;

/*
 * Open the store rooted at dir (the repository's sluice/ directory),
 * creating packs/ and index/ if missing. Clears stale LMDB readers.
 */
int sluice_chunkstore__open(sluice_chunkstore **out, sluice_ctx *ctx, const char *dir);
/*
 * Close; accepts NULL. An unfinished pack (chunks put but not committed)
 * is abandoned and its file removed.
 */
void sluice_chunkstore__free(sluice_chunkstore *cs);

/* 1 if the chunk is stored, 0 if not, negative on error. */
int sluice_chunkstore__has(sluice_chunkstore *cs, const unsigned char id[SLUICE_B2_LEN]);

/*
 * Store a chunk unless present. The data are appended to this process's
 * open pack; they are durable only after sluice_chunkstore__commit. The id
 * is checked against the bytes (SLUICE_EINVALID if it is not their
 * BLAKE2b-256); chunks are at most 1 GiB. *was_new (may be NULL) is 1 if
 * the chunk was not stored before. Uncommitted chunks are visible to
 * has/get through this handle.
 */
int sluice_chunkstore__put(sluice_chunkstore *cs, const unsigned char id[SLUICE_B2_LEN],
                           const void *data, size_t len, int *was_new);

/*
 * Make everything put so far durable: write the pack trailer, fsync the
 * pack and the packs directory, then record the chunks in LMDB. The pack
 * is sealed (made read-only); the next put opens a new one. A no-op when
 * nothing was put. On failure (including an earlier failed pack write)
 * no chunk put since the last commit is stored: put them again.
 */
int sluice_chunkstore__commit(sluice_chunkstore *cs);

/*
 * Read a chunk into out (replacing its contents), verifying its id.
 * SLUICE_ENOTFOUND if not stored, SLUICE_ECORRUPT if the bytes fail.
 */
int sluice_chunkstore__get(sluice_chunkstore *cs, const unsigned char id[SLUICE_B2_LEN],
                           sluice_buf *out);

/*
 * Chunk, hash (on all the context's threads) and store a file. regions may
 * be NULL, meaning one CDC region over the whole file. The regions must
 * tile [0, size) in order. Fills out (caller disposes) and stats (may be
 * NULL). The whole file's BLAKE2b-256 is computed alongside. Regions
 * may be empty. New chunks go to the open pack (durable after commit).
 * SLUICE_EINVALID if the regions do not tile, or the file would need more
 * than 2^24 chunks.
 */
int sluice_chunkstore__ingest(sluice_chunkstore *cs, sluice_manifest *out,
                              sluice_ingest_stats *stats, int fd, uint64_t size,
                              const sluice_region *regions, size_t nregions, const char *name);

/*
 * Write the file a manifest describes to fd, verifying every chunk and the
 * whole-file digest as it goes. name is used in messages. SLUICE_ENOTFOUND
 * for a missing chunk, SLUICE_ECORRUPT for a failed check (the message
 * names the chunk index and id); bytes already written to fd stay.
 */
int sluice_chunkstore__materialize(sluice_chunkstore *cs, const sluice_manifest *m, int fd,
                                   const char *name);

/*
 * Rebuild the LMDB index from the pack files: a sealed pack's trailer, or
 * for an unsealed one (its writer died) the prefix of records whose ids
 * match their bytes. Each pack is fsynced before it is indexed. Packs
 * still locked by a live writer, and packs with a bad header, are skipped.
 * Reports the chunks indexed in *chunks (may be NULL).
 */
int sluice_chunkstore__reindex(sluice_chunkstore *cs, uint64_t *chunks);

/*
 * Check every pack (header, records' ids against their bytes, trailer) and
 * that the index matches the packs. Each problem is passed to report (one
 * line of text, starting with the pack file's name or "index:"; report
 * may be NULL); returns 0 if none, SLUICE_ECORRUPT if any. An unsealed
 * pack whose writer is gone is reported ("no trailer"). Read-only.
 */
int sluice_chunkstore__verify(sluice_chunkstore *cs,
                              void (*report)(void *data, const char *problem), void *data);

/*
 * Called by sluice_chunkstore__sweep for each record: 1 to drop the
 * chunk, 0 to keep it, negative (an error code, message set) to stop.
 */
typedef int (*sluice_chunk_drop_cb)(void *data, const unsigned char id[SLUICE_B2_LEN]);

/* What a sweep did, or with dry_run would do. */
typedef struct {
	uint64_t packs_seen;      /* pack files looked at */
	uint64_t packs_rewritten; /* packs replaced (or removed when nothing stayed) */
	uint64_t records_dropped; /* records drop() selected */
	uint64_t duplicates;      /* kept chunks also stored in another pack, not copied */
	uint64_t bytes_freed;     /* file bytes the packs shrink by */
} sluice_sweep_stats;

/*
 * Rewrite every pack that holds a record drop() selects (or a duplicate
 * of a chunk the index locates in another pack) without those records.
 * Crash-safe order per pack: the new pack (header, kept records, trailer)
 * is written under a fresh name, made read-only, fsynced with its
 * directory; one LMDB transaction then moves the kept chunks' entries to
 * it and deletes the dropped ones; only then is the old pack unlinked and
 * the directory fsynced. A crash leaves either the old pack indexed (a
 * second sweep finishes the job) or the new one indexed and the old one
 * an unreferenced leftover (ditto). A pack that keeps nothing is removed
 * without a replacement. Packs still being written by a live process
 * are skipped; unsealed packs of a dead writer are read by the recovery
 * rule (their valid prefix). Anything put and not committed is committed
 * first. progress (may be NULL) is told "sweep", packs done, packs total.
 */
int sluice_chunkstore__sweep(sluice_chunkstore *cs, sluice_chunk_drop_cb drop, void *data,
                             int dry_run, sluice_sweep_stats *stats,
                             void (*progress)(void *pdata, const char *what, uint64_t done,
                                              uint64_t total),
                             void *pdata);

/*
 * Manifest encoding: text, one field per line, parsed strictly:
 *   sluice-manifest 1
 *   size <decimal>
 *   blake2b <64 hex>
 *   chunk <64 hex> <decimal length>     (repeated, in file order)
 * The chunk lengths must add up to size; each is 1..2^30; at most 2^24
 * chunks; lower-case hex, decimals without sign or leading zeros, every
 * line ends in "\n". encode appends to out (SLUICE_EINVALID if m is
 * inconsistent); parse refuses anything else with SLUICE_EINVALID naming
 * name and the line. The encoding is canonical: parse then encode gives
 * back the same bytes.
 */
int sluice_manifest__encode(sluice_ctx *ctx, const sluice_manifest *m, sluice_buf *out);
int sluice_manifest__parse(sluice_ctx *ctx, sluice_manifest *out, const unsigned char *data,
                           size_t len, const char *name);
void sluice_manifest__dispose(sluice_manifest *m);

#endif
