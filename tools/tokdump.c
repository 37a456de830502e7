/*
 * tools/tokdump.c - sluice-tokdump: encode texts with sluice's tokenizer
 * (eval/tokenizer.c) so another implementation can be compared with it.
 *
 *   sluice-tokdump TOKENIZER.json [--no-special] [--decode] < texts.jsonl > ids.jsonl
 *
 * Each input line is one JSON string (so a text may hold newlines and any
 * other character); each output line is the JSON array of its token ids, in
 * the same order. A line may instead be a JSON array of ids, which are
 * taken as they are. With --decode, each output line is [ids, decode(ids),
 * decode(ids) skipping special tokens]. A line that is neither, or a text the
 * tokenizer refuses, stops the run with a message naming the line number and
 * exit status 1. A tokenizer file that sluice refuses at load (a type, field
 * or value it does not implement, or JSON it cannot read: SLUICE_EINVALID)
 * exits with status 3, so a caller can tell a refusal from a failure.
 * scripts/hf-tokenizers.sh drives it against Hugging Face's own tokenizers
 * library (tools/hf-tokenizers/compare.js).
 */
#include "internal.h"
#include "../eval/tokenizer.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One input line: encode a JSON string, or take a JSON array of ids as given;
 * print the ids (with --decode, also both decodings). Returns 0, or -1 with a
 * message naming the line.
 */
static int encode_line(sluice_ctx *ctx, const sluice_tokenizer *tok, const char *line,
                       size_t lineno, bool special, bool decode)
{
	json_error_t jerr;
	json_t *s = json_loads(line, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	uint32_t *ids = NULL;
	size_t n = 0, i;
	int k;

	if (json_is_array(s)) {
		/* Ids to decode, as given. */
		json_t *v;
		n = json_array_size(s);
		if (n && !(ids = malloc(n * sizeof(*ids)))) {
			fprintf(stderr, "sluice-tokdump: out of memory\n");
			json_decref(s);
			return -1;
		}
		json_array_foreach(s, i, v)
		{
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > (json_int_t)UINT32_MAX) {
				fprintf(stderr,
				        "sluice-tokdump: stdin line %zu: id %zu is not an id\n",
				        lineno, i);
				free(ids);
				json_decref(s);
				return -1;
			}
			ids[i] = (uint32_t)json_integer_value(v);
		}
	} else if (!s || !json_is_string(s)) {
		fprintf(stderr,
		        "sluice-tokdump: stdin line %zu: not a JSON string or array of ids%s%s\n",
		        lineno, s ? "" : ": ", s ? "" : jerr.text);
		json_decref(s);
		return -1;
	} else if (sluice_tokenizer__encode(ctx, &ids, &n, tok, json_string_value(s),
	                                    json_string_length(s), special) < 0) {
		fprintf(stderr, "sluice-tokdump: stdin line %zu: %s\n", lineno,
		        sluice_ctx_errmsg(ctx));
		json_decref(s);
		return -1;
	}
	json_decref(s);
	fputs(decode ? "[[" : "[", stdout);
	for (i = 0; i < n; i++)
		printf(i ? ",%u" : "%u", ids[i]);
	putchar(']');
	for (k = 0; decode && k < 2; k++) {
		char *text = NULL, *dumped;
		size_t tlen = 0;
		json_t *js;

		if (sluice_tokenizer__decode(ctx, &text, &tlen, tok, ids, n, k == 1) < 0) {
			fprintf(stderr, "sluice-tokdump: stdin line %zu: %s\n", lineno,
			        sluice_ctx_errmsg(ctx));
			free(ids);
			return -1;
		}
		js = json_stringn(text, tlen);
		dumped = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
		if (!dumped) {
			fprintf(stderr,
			        "sluice-tokdump: stdin line %zu: decoded text is not UTF-8\n",
			        lineno);
			json_decref(js);
			free(text);
			free(ids);
			return -1;
		}
		printf(",%s", dumped);
		free(dumped);
		json_decref(js);
		free(text);
	}
	fputs(decode ? "]\n" : "\n", stdout);
	free(ids);
	return 0;
}

int main(int argc, char **argv)
{
	sluice_ctx *ctx = NULL;
	sluice_tokenizer *tok = NULL;
	bool special = true, decode = false;
	int a;
	unsigned char *json = NULL;
	char *line = NULL;
	size_t len, cap = 0, lineno = 0;
	ssize_t got;
	int error, rc = 1;

	for (a = 2; a < argc; a++) {
		if (strcmp(argv[a], "--no-special") == 0)
			special = false;
		else if (strcmp(argv[a], "--decode") == 0)
			decode = true;
		else
			break;
	}
	if (argc < 2 || a < argc) {
		fputs("usage: sluice-tokdump TOKENIZER.json [--no-special] [--decode] < "
		      "texts.jsonl\n",
		      stderr);
		return 2;
	}
	if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0) {
		fputs("sluice-tokdump: cannot initialise libsluice\n", stderr);
		goto out;
	}
	if (sluice_io__read_file(ctx, &json, &len, argv[1], (size_t)1 << 30) < 0) {
		fprintf(stderr, "sluice-tokdump: %s\n", sluice_ctx_errmsg(ctx));
		goto out;
	}
	if ((error = sluice_tokenizer__load(ctx, &tok, (const char *)json, len, argv[1])) < 0) {
		fprintf(stderr, "sluice-tokdump: %s\n", sluice_ctx_errmsg(ctx));
		if (error == SLUICE_EINVALID)
			rc = 3;
		goto out;
	}
	while ((got = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (got > 0 && line[got - 1] == '\n')
			line[got - 1] = '\0';
		if (encode_line(ctx, tok, line, lineno, special, decode) < 0)
			goto out;
	}
	rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
	free(line);
	free(json);
	sluice_tokenizer__free(tok);
	sluice_ctx_free(ctx);
	sluice_global_shutdown();
	return rc;
}
