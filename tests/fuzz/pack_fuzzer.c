/*
 * tests/fuzz/pack_fuzzer.c - the pack header, trailer and record parsers
 * (core/pack.c) on arbitrary bytes, as reindex and verify feed them a
 * mapped pack file. Checks that every record and index entry they return
 * lies inside the input and that a valid trailer agrees with the records.
 */
#include "pack.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	size_t size;
	uint64_t last_end;
	size_t n;
};

static int on_record(void *p, const sluice_pack_entry *rec, const unsigned char *bytes, int ok,
                     const unsigned char computed[SLUICE_B2_LEN])
{
	struct seen *s = p;
	unsigned char d[SLUICE_B2_LEN];

	/* Records are contiguous, inside the input, and ok means what it says. */
	if (rec->off != s->last_end || rec->off + SLUICE_PACK_REC_HDR + rec->len > s->size)
		abort();
	crypto_generichash(d, sizeof(d), bytes, rec->len, NULL, 0);
	if (memcmp(d, computed, sizeof(d)) != 0 || ok != (memcmp(d, rec->id, sizeof(d)) == 0))
		abort();
	s->last_end = rec->off + SLUICE_PACK_REC_HDR + rec->len;
	s->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	sluice_ctx *ctx;
	sluice_pack_entry *e = NULL;
	size_t count = 0, i;
	uint64_t limit = size, end;
	struct seen s = {size, SLUICE_PACK_HDR, 0};
	int error;

	if (!init) {
		if (sodium_init() < 0)
			abort();
		init = 1;
	}
	if (sluice_ctx_new(&ctx) < 0)
		return 0;
	if (sluice_pack__check_header(ctx, data, size, "fuzz.pack") < 0)
		goto done;
	error = sluice_pack__read_trailer(ctx, &e, &count, &limit, data, size, "fuzz.pack");
	if (error == 0) {
		if (limit > size - SLUICE_PACK_FOOTER)
			abort();
		for (i = 0; i < count; i++) {
			if (e[i].off + SLUICE_PACK_REC_HDR + e[i].len > limit ||
			    memcmp(data + e[i].off, e[i].id, SLUICE_B2_LEN) != 0)
				abort();
			if (i > 0 && memcmp(e[i - 1].id, e[i].id, SLUICE_B2_LEN) >= 0)
				abort();
		}
	} else {
		if (e || count ||
		    (error != SLUICE_ENOTFOUND && error != SLUICE_ECORRUPT &&
		     error != SLUICE_ENOMEM))
			abort();
		limit = size;
	}
	sluice_pack__scan(data, size, limit, 0, on_record, &s, &end);
	if (end != s.last_end || end > limit)
		abort();
	s.last_end = SLUICE_PACK_HDR;
	s.n = 0;
	sluice_pack__scan(data, size, limit, 1, on_record, &s, &end);
	if (end != s.last_end)
		abort();
done:
	free(e);
	sluice_ctx_free(ctx);
	return 0;
}
