/*
 * core/pack.h - the pack file format, parsed from bytes (private to
 * core/chunkstore.c, its tests and tests/fuzz/pack_fuzzer.c).
 *
 *   header   "SLUICEPK" u32 version(=1)
 *   record   id[32] u64 length bytes[length]          (repeated)
 *   index    id[32] u64 record-offset u64 length      (sorted by id, repeated)
 *   footer   u64 count u64 index-offset b2[32] "SLUICEIX"
 *
 * All integers little-endian. b2 is BLAKE2b-256 of the index bytes. The
 * index and footer (the trailer) are written last, when the pack is sealed;
 * a pack without one was left by a process that stopped while writing and
 * is recovered by scanning its records.
 */
#ifndef SLUICE_CORE_PACK_H
#define SLUICE_CORE_PACK_H

#include "internal.h"

#define SLUICE_PACK_MAGIC "SLUICEPK"
#define SLUICE_PACK_IX_MAGIC "SLUICEIX"
#define SLUICE_PACK_VERSION 1
#define SLUICE_PACK_HDR 12     /* magic + version */
#define SLUICE_PACK_REC_HDR 40 /* id + length */
#define SLUICE_PACK_IDX_ENT 48 /* id + offset + length */
#define SLUICE_PACK_FOOTER 56  /* count + index offset + b2 + magic */
/* Largest chunk accepted anywhere (put, get, records, manifests). */
#define SLUICE_CHUNK_MAX ((uint64_t)1 << 30)

typedef struct {
	unsigned char id[SLUICE_B2_LEN];
	uint64_t off; /* of the record header */
	uint64_t len; /* of the chunk bytes */
} sluice_pack_entry;

/* Store a pack header into out[SLUICE_PACK_HDR]. */
void sluice_pack__header(unsigned char out[SLUICE_PACK_HDR]);

/*
 * Check the header of a pack held in data[0..len). name is used in
 * messages. 0, or SLUICE_ECORRUPT.
 */
int sluice_pack__check_header(sluice_ctx *ctx, const unsigned char *data, size_t len,
                              const char *name);

/*
 * Parse and check the trailer of a whole pack in data[0..len): footer
 * magic, count and index offset against the size, index digest, strictly
 * increasing ids, and each entry against the record header it points to
 * (bounds, id, length; the record's bytes are not hashed). On success
 * *out (caller frees; NULL when count is 0), *count and *records_end (the
 * index offset) are set. SLUICE_ENOTFOUND if there is no footer magic
 * (an unsealed pack), SLUICE_ECORRUPT if the trailer is inconsistent,
 * SLUICE_ENOMEM.
 */
int sluice_pack__read_trailer(sluice_ctx *ctx, sluice_pack_entry **out, size_t *count,
                              uint64_t *records_end, const unsigned char *data, size_t len,
                              const char *name);

/*
 * Called for each record by sluice_pack__scan. ok is 1 if the record's
 * id equals BLAKE2b-256 of its bytes, 0 if not (computed holds the
 * digest). A non-zero return stops the scan and is returned by it.
 */
typedef int (*sluice_pack_record_cb)(void *data, const sluice_pack_entry *rec,
                                     const unsigned char *bytes, int ok,
                                     const unsigned char computed[SLUICE_B2_LEN]);

/*
 * Walk the records of a pack from its header up to limit (the index offset
 * of a sealed pack, or len), hashing each. Stops at the first record that
 * does not fit before limit; with stop_on_mismatch, also before the first
 * record whose id does not match its bytes (the record recovery rule: an
 * unsealed pack's valid prefix). *end receives the offset just past the
 * last record walked. Returns 0 or the callback's value. The header must
 * have been checked.
 */
int sluice_pack__scan(const unsigned char *data, size_t len, uint64_t limit, int stop_on_mismatch,
                      sluice_pack_record_cb cb, void *cbdata, uint64_t *end);

/* Sort entries by id (for the trailer). */
void sluice_pack__sort(sluice_pack_entry *e, size_t n);

/*
 * Encode the trailer for entries (which must be sorted) written at
 * index_off into out (appended). 0 or SLUICE_ENOMEM.
 */
int sluice_pack__encode_trailer(sluice_ctx *ctx, sluice_buf *out, const sluice_pack_entry *e,
                                size_t n, uint64_t index_off);

#endif
