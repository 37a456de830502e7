/*
 * tests/fuzz/safetensors_fuzzer.c - the safetensors header parser on
 * arbitrary bytes. Whatever it accepts must keep the promise chunking and
 * checkout rely on: the tensors tile the data section exactly and each one's
 * byte length is its element count times its dtype's size.
 */
#include "internal.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

static void check(const sluice_st_header *h, uint64_t size)
{
	uint64_t pos = 0;
	size_t i;

	if (h->data_start != 8 + h->header_len || h->data_start > size || h->file_size != size)
		abort();
	for (i = 0; i < h->ntensors; i++) {
		const sluice_st_tensor *t = &h->tensors[i];
		uint64_t numel = 1;
		unsigned d;

		if (!t->name || !t->name[0] || strlen(t->name) > 4096 ||
		    t->ndim > SLUICE_ST_MAX_DIMS || t->begin != pos || t->end < t->begin)
			abort();
		for (d = 0; d < t->ndim; d++) {
			if (t->shape[d] != 0 && numel > UINT64_MAX / t->shape[d])
				abort();
			numel *= t->shape[d];
		}
		if (sluice_safetensors__dtype_size(t->dtype) == 0 ||
		    numel > UINT64_MAX / sluice_safetensors__dtype_size(t->dtype) ||
		    numel * sluice_safetensors__dtype_size(t->dtype) != t->end - t->begin)
			abort();
		if (sluice_safetensors__find(h, t->name) != t)
			abort();
		pos = t->end;
	}
	if (pos != size - h->data_start)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	sluice_st_header h;
	sluice_ctx *ctx;
	int error;

	if (!initialised) {
		if (sluice_global_init() < 0)
			abort();
		initialised = 1;
	}
	if (sluice_ctx_new(&ctx) < 0)
		abort();
	error = sluice_safetensors__parse(ctx, &h, data, size, size, "fuzz");
	if (error == 0) {
		check(&h, size);
	} else {
		/* A refusal leaves nothing behind and says why, naming the input. */
		if (error != SLUICE_EINVALID || h.tensors || h.metadata || h.ntensors ||
		    !strstr(sluice_ctx_errmsg(ctx), "fuzz"))
			abort();
		(void)sluice_safetensors__sniff_pickle(data, size);
	}
	sluice_safetensors__dispose(&h);
	sluice_ctx_free(ctx);
	return 0;
}
