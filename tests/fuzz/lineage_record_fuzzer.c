/*
 * tests/fuzz/lineage_record_fuzzer.c - the journal index's lineage record
 * decoder (core/jindex.h, sluice_jindex__vinfo_parse) on arbitrary bytes:
 * a refused input leaves a message; an accepted one has an object for its
 * metadata, valid sections, and every component name NUL-terminated inside
 * the decoded copy (no read past it).
 */
#include "jindex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	sluice_jindex_vinfo v;
	int error;

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	sluice_ctx_clear_error(ctx);
	if ((error = sluice_jindex__vinfo_parse(ctx, &v, data, size)) < 0) {
		if (error != SLUICE_ENOMEM && !*sluice_ctx_errmsg(ctx))
			abort();
		return 0;
	}
	if (!json_is_object(v.meta) || (v.ncomps + v.nbrought && !v.comps) ||
	    (v.comps ? v.brought != v.comps + v.ncomps : v.brought != NULL))
		abort();
	for (size_t i = 0; i < v.ncomps + v.nbrought; i++) {
		const sluice_jindex_comp *c = &v.comps[i];
		const unsigned char *name = (const unsigned char *)c->name;
		if (c->section < 0 || c->section >= SLUICE_JX_NSECTIONS || name < v.mem ||
		    name >= v.mem + size || !memchr(name, '\0', (size_t)(v.mem + size - name)))
			abort();
		if (!*sluice_jindex__section_name(c->section))
			abort();
	}
	sluice_jindex__vinfo_dispose(&v);
	return 0;
}
