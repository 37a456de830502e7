/*
 * core/pack.c - pack header, record and trailer parsing over bytes. The
 * store maps pack files and hands the bytes here, so the same code serves
 * reindex, verify and the fuzzer.
 */
#include "pack.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void sluice_pack__header(unsigned char out[SLUICE_PACK_HDR])
{
	memcpy(out, SLUICE_PACK_MAGIC, 8);
	sluice__st32(out + 8, SLUICE_PACK_VERSION);
}

int sluice_pack__check_header(sluice_ctx *ctx, const unsigned char *data, size_t len,
                              const char *name)
{
	uint32_t version;

	if (len < SLUICE_PACK_HDR)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                         "%s: truncated header (%zu bytes, need %d)", name, len,
		                         SLUICE_PACK_HDR);
	if (memcmp(data, SLUICE_PACK_MAGIC, 8) != 0)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT, "%s: bad magic (not a sluice pack)",
		                         name);
	if ((version = sluice__le32(data + 8)) != SLUICE_PACK_VERSION)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT, "%s: unsupported pack version %u",
		                         name, (unsigned)version);
	return SLUICE_OK;
}

int sluice_pack__read_trailer(sluice_ctx *ctx, sluice_pack_entry **out, size_t *count,
                              uint64_t *records_end, const unsigned char *data, size_t len,
                              const char *name)
{
	const unsigned char *foot, *ix;
	unsigned char digest[SLUICE_B2_LEN];
	sluice_pack_entry *e = NULL;
	uint64_t n, ixoff, ixlen;
	size_t i;
	int error = SLUICE_OK;

	*out = NULL;
	*count = 0;
	if (len < SLUICE_PACK_HDR + SLUICE_PACK_FOOTER ||
	    memcmp(data + len - 8, SLUICE_PACK_IX_MAGIC, 8) != 0)
		return sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "%s: no trailer", name);
	foot = data + len - SLUICE_PACK_FOOTER;
	n = sluice__le64(foot);
	ixoff = sluice__le64(foot + 8);
	/* The index sits exactly between the records and the footer. */
	if (ixoff < SLUICE_PACK_HDR || ixoff > len - SLUICE_PACK_FOOTER ||
	    n > (len - SLUICE_PACK_FOOTER - ixoff) / SLUICE_PACK_IDX_ENT ||
	    (ixlen = n * SLUICE_PACK_IDX_ENT) != len - SLUICE_PACK_FOOTER - ixoff)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                         "%s: trailer: count %llu and index offset %llu do not fit "
		                         "the pack's %zu bytes",
		                         name, (unsigned long long)n, (unsigned long long)ixoff,
		                         len);
	ix = data + ixoff;
	crypto_generichash(digest, sizeof(digest), ix, (unsigned long long)ixlen, NULL, 0);
	if (sodium_memcmp(digest, foot + 16, SLUICE_B2_LEN) != 0)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT, "%s: trailer: index digest mismatch",
		                         name);
	if (n > 0 && !(e = sluice__calloc(ctx, (size_t)n, sizeof(*e))))
		return SLUICE_ENOMEM;
	for (i = 0; i < n; i++) {
		const unsigned char *p = ix + i * SLUICE_PACK_IDX_ENT;
		const unsigned char *rec;

		memcpy(e[i].id, p, SLUICE_B2_LEN);
		e[i].off = sluice__le64(p + 32);
		e[i].len = sluice__le64(p + 40);
		if (i > 0 && memcmp(e[i - 1].id, e[i].id, SLUICE_B2_LEN) >= 0) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "%s: trailer: index entry %zu out of order", name,
			                          i);
			goto done;
		}
		if (e[i].off < SLUICE_PACK_HDR || e[i].off > ixoff ||
		    ixoff - e[i].off < SLUICE_PACK_REC_HDR ||
		    e[i].len > ixoff - e[i].off - SLUICE_PACK_REC_HDR) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "%s: trailer: index entry %zu (offset %llu, length "
			        "%llu) lies outside the records",
			        name, i, (unsigned long long)e[i].off,
			        (unsigned long long)e[i].len);
			goto done;
		}
		rec = data + e[i].off;
		if (memcmp(rec, e[i].id, SLUICE_B2_LEN) != 0 ||
		    sluice__le64(rec + 32) != e[i].len) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "%s: trailer: index entry %zu does not match the "
			                          "record at offset %llu",
			                          name, i, (unsigned long long)e[i].off);
			goto done;
		}
	}
	*out = e;
	*count = (size_t)n;
	*records_end = ixoff;
	e = NULL;
done:
	free(e);
	return error;
}

int sluice_pack__scan(const unsigned char *data, size_t len, uint64_t limit, int stop_on_mismatch,
                      sluice_pack_record_cb cb, void *cbdata, uint64_t *end)
{
	uint64_t off = SLUICE_PACK_HDR;
	int error = 0;

	if (limit > len)
		limit = len;
	while (limit >= off && limit - off >= SLUICE_PACK_REC_HDR) {
		sluice_pack_entry rec;
		unsigned char computed[SLUICE_B2_LEN];
		int ok;

		memcpy(rec.id, data + off, SLUICE_B2_LEN);
		rec.off = off;
		rec.len = sluice__le64(data + off + 32);
		if (rec.len > limit - off - SLUICE_PACK_REC_HDR)
			break;
		crypto_generichash(computed, sizeof(computed), data + off + SLUICE_PACK_REC_HDR,
		                   (unsigned long long)rec.len, NULL, 0);
		ok = memcmp(computed, rec.id, SLUICE_B2_LEN) == 0;
		if (!ok && stop_on_mismatch)
			break;
		if (cb &&
		    (error = cb(cbdata, &rec, data + off + SLUICE_PACK_REC_HDR, ok, computed)))
			break;
		off += SLUICE_PACK_REC_HDR + rec.len;
	}
	*end = off;
	return error;
}

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(((const sluice_pack_entry *)a)->id, ((const sluice_pack_entry *)b)->id,
	              SLUICE_B2_LEN);
}

void sluice_pack__sort(sluice_pack_entry *e, size_t n)
{
	if (n > 1)
		qsort(e, n, sizeof(*e), entry_cmp);
}

int sluice_pack__encode_trailer(sluice_ctx *ctx, sluice_buf *out, const sluice_pack_entry *e,
                                size_t n, uint64_t index_off)
{
	unsigned char rec[SLUICE_PACK_FOOTER];
	size_t start = out->len, ixlen, i;
	int error;

	if (sluice__mul_ovf(&ixlen, n, SLUICE_PACK_IDX_ENT) < 0)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "pack index too large");
	if ((error = sluice_buf__grow(ctx, out, ixlen + SLUICE_PACK_FOOTER)) < 0)
		return error;
	for (i = 0; i < n; i++) {
		memcpy(rec, e[i].id, SLUICE_B2_LEN);
		sluice__st64(rec + 32, e[i].off);
		sluice__st64(rec + 40, e[i].len);
		memcpy(out->ptr + out->len, rec, SLUICE_PACK_IDX_ENT);
		out->len += SLUICE_PACK_IDX_ENT;
	}
	sluice__st64(rec, (uint64_t)n);
	sluice__st64(rec + 8, index_off);
	crypto_generichash(rec + 16, SLUICE_B2_LEN, out->ptr + start, (unsigned long long)ixlen,
	                   NULL, 0);
	memcpy(rec + 48, SLUICE_PACK_IX_MAGIC, 8);
	memcpy(out->ptr + out->len, rec, SLUICE_PACK_FOOTER);
	out->len += SLUICE_PACK_FOOTER;
	return SLUICE_OK;
}
