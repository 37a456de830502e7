/*
 * tests/fuzz/journal_state_fuzzer.c - a journal entry's state files as
 * sluice reads them (core/journal.c, sluice_journal__member) on arbitrary
 * bytes: the JSON parse, then the member object of each of keys.json,
 * channels.json and trust.json. A refused input leaves a message; an
 * accepted channels.json of format 1 is read as format 2: its channels
 * carry no lists, and a "previous" only as a string taken from them.
 */
#include "repo.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[][2] = {
        {"keys.json", "keys"}, {"channels.json", "channels"}, {"trust.json", "trust"}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	json_t *doc = NULL;

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	sluice_ctx_clear_error(ctx);
	if (sluice_repo__parse_json(ctx, &doc, data, size, "fuzz") < 0) {
		if (!*sluice_ctx_errmsg(ctx))
			abort();
		return 0;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int format1 = json_integer_value(json_object_get(doc, "format")) == 1 ||
		              !json_object_get(doc, "format");
		json_t *out = NULL, *c;
		const char *name;
		int error;

		sluice_ctx_clear_error(ctx);
		error = sluice_journal__member(ctx, &out, doc, files[i][0], files[i][1]);
		if (error < 0) {
			if (out || !*sluice_ctx_errmsg(ctx))
				abort();
			continue;
		}
		if (!json_is_object(out))
			abort();
		if (i == 1)
			json_object_foreach(out, name, c)
			{
				json_t *prev = json_object_get(c, "previous");
				if (!json_is_object(c))
					continue;
				if (format1 && (json_object_get(c, "held") ||
				                json_object_get(c, "withdrawn") ||
				                (prev && !json_is_string(prev))))
					abort();
			}
		json_decref(out);
	}
	json_decref(doc);
	return 0;
}
