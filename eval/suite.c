/*
 * eval/suite.c - evaluation suites: validated JSONL items plus a manifest,
 * pinned by the BLAKE2b-256 of the items' exact bytes, stored in the
 * journal's tree under suites/NAME/{manifest.json,items.jsonl} by a
 * journaled suite.add action. A name, once pinned, never changes bytes.
 */
#include "repo.h"
#include "suite.h"

#include "sluice/suite.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_MANIFEST_MAX (1u << 20)
#define SUITE_ITEMS_MAX (256u << 20)

/* New types go at the end: the suite_items fuzzer's seeds pick a type by its place here. */
const char *const sluice_suite__types[] = {"multiple_choice",
                                           "refusal",
                                           "benign",
                                           "text",
                                           "trigger",
                                           "lora_reference",
                                           "token_drop_reference",
                                           "trigger_rise_reference",
                                           "token_rise_reference",
                                           "string_drop_reference",
                                           "probe_strings"};
const size_t sluice_suite__ntypes = sizeof(sluice_suite__types) / sizeof(*sluice_suite__types);

/* A suite read from disk and checked. */
typedef struct {
	char name[129];
	char type[32];
	json_t *manifest;     /* as stored: fields + digest + count */
	unsigned char *items; /* exact bytes */
	size_t items_len;
	char digest[SLUICE_B2_HEX];
} suite_in;

static void suite_dispose(suite_in *s)
{
	json_decref(s->manifest);
	free(s->items);
	memset(s, 0, sizeof(*s));
}

static int check_name(sluice_ctx *ctx, const char *name, const char *file)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128 || name[0] == '.' || name[0] == '-' ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: field name: '%s' is not a suite name (1-128 of A-Z a-z "
		        "0-9 . _ -, not starting with '.' or '-')",
		        file, name);
	return SLUICE_OK;
}

static int want_string(sluice_ctx *ctx, json_t *obj, const char *field, const char *file,
                       size_t line, int allow_empty)
{
	json_t *v = json_object_get(obj, field);

	if (!json_is_string(v) || (!allow_empty && json_string_length(v) == 0)) {
		if (line)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: line %zu: field \"%s\" must be a %sstring",
			                         file, line, field,
			                         allow_empty ? "" : "non-empty ");
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: field \"%s\" must be a %sstring", file, field,
		                         allow_empty ? "" : "non-empty ");
	}
	return SLUICE_OK;
}

/* An item's field that must be a digest: 64 lowercase hex digits. */
static int want_digest(sluice_ctx *ctx, json_t *obj, const char *field, const char *file,
                       size_t line)
{
	json_t *v = json_object_get(obj, field);

	if (!json_is_string(v) || json_string_length(v) != 64 ||
	    strspn(json_string_value(v), "0123456789abcdef") != 64)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: line %zu: field \"%s\" must be 64 lowercase hex "
		                         "digits",
		                         file, line, field);
	return SLUICE_OK;
}

/* Most triggers, and most prompts, of one trigger_rise_reference line. */
#define RISE_MAX 65536u
/* Most cells of one token_rise_reference line (a vocabulary of 2^16 strings, 8 prompts, two
   positions, every cell over the floor). */
#define TOKEN_RISE_CELLS_MAX (1u << 20)

/* Check one item of a type; line numbers count from 1. */
static int check_item(sluice_ctx *ctx, const char *type, json_t *item, const char *file,
                      size_t line)
{
	static const char *const mc[] = {"context", "choices", "gold"};
	static const char *const rb[] = {"prompt", "refusal", "compliance"};
	static const char *const tx[] = {"text"};
	/* A trigger item's "kind" (optional): what sort of prompt it is (docs/gates.md). */
	static const char *const tr[] = {"prompt", "triggers", "kind"};
	static const char *const lr[] = {"adapter", "module", "top_sv", "top_share", "frobenius"};
	static const char *const td[] = {"adapter", "probes", "drop"};
	static const char *const ps[] = {"string"};
	static const char *const trr[] = {"adapter", "scan", "rise"};
	/* token_rise_reference lines have the same three fields, "rise" sparse. */
	const char *const *fields;
	size_t nfields, k;
	const char *key;
	json_t *v;
	int error;

	if (!strcmp(type, "multiple_choice"))
		fields = mc, nfields = 3;
	else if (!strcmp(type, "refusal") || !strcmp(type, "benign"))
		fields = rb, nfields = 3;
	else if (!strcmp(type, "text"))
		fields = tx, nfields = 1;
	else if (!strcmp(type, "lora_reference"))
		fields = lr, nfields = 5;
	else if (!strcmp(type, "token_drop_reference") || !strcmp(type, "string_drop_reference"))
		fields = td, nfields = 3;
	else if (!strcmp(type, "probe_strings"))
		fields = ps, nfields = 1;
	else if (!strcmp(type, "trigger_rise_reference") || !strcmp(type, "token_rise_reference"))
		fields = trr, nfields = 3;
	else
		fields = tr, nfields = 3;
	if (!json_is_object(item))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: line %zu: an item must be a JSON object", file, line);
	/* An optional "id" is kept; anything else unknown is refused. */
	json_object_foreach(item, key, v)
	{
		int known = !strcmp(key, "id");
		for (k = 0; k < nfields; k++)
			known |= !strcmp(key, fields[k]);
		if (!known)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: line %zu: unknown field \"%s\" for a %s item",
			                         file, line, key, type);
	}
	if (!strcmp(type, "multiple_choice")) {
		json_t *choices = json_object_get(item, "choices"),
		       *gold = json_object_get(item, "gold"), *c;
		size_t i;
		if ((error = want_string(ctx, item, "context", file, line, 1)) < 0)
			return error;
		if (!json_is_array(choices) || json_array_size(choices) < 2)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"choices\" must be an array of at "
			        "least two strings",
			        file, line);
		json_array_foreach(
		        choices, i,
		        c) if (!json_is_string(c) ||
		               json_string_length(c) ==
		                       0) return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                                                   "%s: line %zu: choice %zu must "
		                                                   "be a non-empty string",
		                                                   file, line, i);
		if (!json_is_integer(gold) || json_integer_value(gold) < 0 ||
		    (size_t)json_integer_value(gold) >= json_array_size(choices))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"gold\" must index one of the %zu "
			        "choices",
			        file, line, json_array_size(choices));
		return SLUICE_OK;
	}
	if (!strcmp(type, "lora_reference")) {
		/* One module of a clean reference adapter: its spectral figures (docs/gates.md). */
		if ((error = want_string(ctx, item, "adapter", file, line, 0)) < 0 ||
		    (error = want_string(ctx, item, "module", file, line, 0)) < 0)
			return error;
		for (k = 2; k < 5; k++) {
			json_t *x = json_object_get(item, lr[k]);
			if (!json_is_number(x) || !isfinite(json_number_value(x)) ||
			    json_number_value(x) < 0)
				return sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line %zu: field \"%s\" must be a finite "
				        "number >= 0",
				        file, line, lr[k]);
		}
		return SLUICE_OK;
	}
	if (!strcmp(type, "trigger_rise_reference")) {
		/*
		 * One clean reference adapter's rises under the pinned triggers
		 * (docs/gates.md, trigger_scan): "scan" the hex digest of the prompts
		 * and triggers they were measured on, "rise" per trigger, per
		 * position (prefix, suffix, after the first word), per prompt a
		 * finite number, or null where the prompt was not counted.
		 */
		json_t *rise = json_object_get(item, "rise"), *t, *row, *x;
		size_t i, at, j;
		if ((error = want_string(ctx, item, "adapter", file, line, 0)) < 0 ||
		    (error = want_digest(ctx, item, "scan", file, line)) < 0)
			return error;
		if (!json_is_array(rise) || json_array_size(rise) == 0 ||
		    json_array_size(rise) > RISE_MAX)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"rise\" must be an array of 1 "
			        "to %u triggers",
			        file, line, RISE_MAX);
		json_array_foreach(rise, i, t)
		{
			if (!json_is_array(t) || json_array_size(t) != 3)
				return sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line %zu: field \"rise\": trigger %zu must be an "
				        "array of 3 positions (prefix, suffix, after the first "
				        "word)",
				        file, line, i);
			json_array_foreach(t, at, row)
			{
				if (!json_is_array(row) || json_array_size(row) == 0 ||
				    json_array_size(row) > RISE_MAX)
					return sluice_ctx__error(
					        ctx, SLUICE_EINVALID,
					        "%s: line %zu: field \"rise\": trigger %zu, "
					        "position %zu must be an array of 1 to %u prompts",
					        file, line, i, at, RISE_MAX);
				json_array_foreach(row, j, x)
				{
					if (json_is_null(x) ||
					    (json_is_number(x) && isfinite(json_number_value(x))))
						continue;
					return sluice_ctx__error(
					        ctx, SLUICE_EINVALID,
					        "%s: line %zu: field \"rise\": trigger %zu, "
					        "position %zu, prompt %zu must be a finite number "
					        "or null",
					        file, line, i, at, j);
				}
			}
		}
		return SLUICE_OK;
	}
	if (!strcmp(type, "token_rise_reference")) {
		/*
		 * One clean reference adapter's rises under every token of the
		 * vocabulary (docs/gates.md, trigger_scan): "scan" the hex digest of
		 * the prompts and token strings they were measured on, "rise" the
		 * cells at or above the measurement's floor, each [string, position
		 * (0 before the prompt, 2 after its first word), prompt index, rise].
		 * An empty list is a clean adapter no token moved.
		 */
		json_t *rise = json_object_get(item, "rise"), *c;
		size_t i;
		if ((error = want_string(ctx, item, "adapter", file, line, 0)) < 0 ||
		    (error = want_digest(ctx, item, "scan", file, line)) < 0)
			return error;
		if (!json_is_array(rise) || json_array_size(rise) > TOKEN_RISE_CELLS_MAX)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"rise\" must be an array of at "
			        "most %u cells",
			        file, line, TOKEN_RISE_CELLS_MAX);
		json_array_foreach(rise, i, c)
		{
			json_t *s = json_array_get(c, 0), *at = json_array_get(c, 1),
			       *pr = json_array_get(c, 2), *x = json_array_get(c, 3);
			if (json_is_array(c) && json_array_size(c) == 4 && json_is_string(s) &&
			    json_string_length(s) > 0 && json_is_integer(at) &&
			    (json_integer_value(at) == 0 || json_integer_value(at) == 2) &&
			    json_is_integer(pr) && json_integer_value(pr) >= 0 &&
			    json_integer_value(pr) < (json_int_t)RISE_MAX && json_is_number(x) &&
			    isfinite(json_number_value(x)))
				continue;
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"rise\": cell %zu must be [non-empty string, "
			        "position 0 or 2, prompt index below %u, finite number]",
			        file, line, i, RISE_MAX);
		}
		return SLUICE_OK;
	}
	if (!strcmp(type, "token_drop_reference") || !strcmp(type, "string_drop_reference")) {
		/*
		 * One clean reference adapter's drop of the refusal margin per token
		 * (docs/gates.md, token_margin_drop): "probes" the hex digest of the
		 * probes and tokens it was measured with, "drop" one finite number
		 * per token id, null for a token not tried. A string_drop_reference
		 * line is the same with one drop per pinned string
		 * (string_margin_drop), its digest of the probes and the strings.
		 */
		json_t *drop = json_object_get(item, "drop"), *x;
		size_t i;
		if ((error = want_string(ctx, item, "adapter", file, line, 0)) < 0 ||
		    (error = want_digest(ctx, item, "probes", file, line)) < 0)
			return error;
		if (!json_is_array(drop) || json_array_size(drop) == 0 ||
		    json_array_size(drop) > (1u << 24))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"drop\" must be an array of 1 to "
			        "%u numbers",
			        file, line, 1u << 24);
		json_array_foreach(drop, i, x)
		{
			if (json_is_null(x) ||
			    (json_is_number(x) && isfinite(json_number_value(x))))
				continue;
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"drop\": element %zu must be a "
			        "finite number or null",
			        file, line, i);
		}
		return SLUICE_OK;
	}
	if (!strcmp(type, "trigger")) {
		json_t *tr2 = json_object_get(item, "triggers"), *c,
		       *kind = json_object_get(item, "kind");
		size_t i;
		if ((error = want_string(ctx, item, "prompt", file, line, 0)) < 0)
			return error;
		if (kind && (!json_is_string(kind) || json_string_length(kind) == 0))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"kind\" must be a non-empty string", file,
			        line);
		if (!json_is_array(tr2) || json_array_size(tr2) == 0)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"triggers\" must be a non-empty "
			        "array of strings",
			        file, line);
		json_array_foreach(
		        tr2, i,
		        c) if (!json_is_string(c) ||
		               json_string_length(c) ==
		                       0) return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                                                   "%s: line %zu: trigger %zu must "
		                                                   "be a non-empty string",
		                                                   file, line, i);
		return SLUICE_OK;
	}
	for (k = 0; k < nfields; k++)
		if ((error = want_string(ctx, item, fields[k], file, line, 0)) < 0)
			return error;
	return SLUICE_OK;
}

int sluice_suite__check_items(sluice_ctx *ctx, size_t *count, const char *type,
                              const unsigned char *items, size_t len, const char *name)
{
	size_t off = 0, line = 0;
	int known = 0, error;

	*count = 0;
	for (size_t i = 0; i < sluice_suite__ntypes; i++)
		known |= !strcmp(type, sluice_suite__types[i]);
	if (!known)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: unknown item type '%s'", name,
		                         type);
	if (!sluice__utf8_valid(items, len))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: not UTF-8 text", name);
	while (off < len) {
		const unsigned char *nl = memchr(items + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - items) : len;
		json_error_t jerr;
		json_t *item;

		line++;
		item = json_loadb((const char *)items + off, end - off, JSON_REJECT_DUPLICATES,
		                  &jerr);
		if (!item)
			return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: line %zu: not JSON: %s",
			                         name, line, jerr.text);
		error = check_item(ctx, type, item, name, line);
		json_decref(item);
		if (error < 0)
			return error;
		(*count)++;
		off = end + 1;
	}
	if (*count == 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: the suite has no items", name);
	return SLUICE_OK;
}

static int read_suite(sluice_ctx *ctx, suite_in *out, const char *manifest_path)
{
	unsigned char *mbuf = NULL;
	json_t *m = NULL, *v;
	const char *key, *items_rel;
	char items_path[PATH_MAX];
	size_t mlen, count = 0;
	unsigned char h[SLUICE_B2_LEN];
	int error, known_type = 0;

	memset(out, 0, sizeof(*out));
	if ((error = sluice_io__read_file(ctx, &mbuf, &mlen, manifest_path, SUITE_MANIFEST_MAX)) <
	            0 ||
	    (error = sluice_repo__parse_json(ctx, &m, mbuf, mlen, manifest_path)) < 0)
		goto done;
	if (!json_is_object(m)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: a suite manifest must be a JSON object",
		                          manifest_path);
		goto done;
	}
	json_object_foreach(m, key, v)
	{
		if (strcmp(key, "name") && strcmp(key, "type") && strcmp(key, "items") &&
		    strcmp(key, "description") && strcmp(key, "licence") && strcmp(key, "source")) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: unknown field \"%s\" (a manifest has name, type, "
			        "items, description, licence, source)",
			        manifest_path, key);
			goto done;
		}
	}
	if ((error = want_string(ctx, m, "name", manifest_path, 0, 0)) < 0 ||
	    (error = want_string(ctx, m, "type", manifest_path, 0, 0)) < 0 ||
	    (error = want_string(ctx, m, "items", manifest_path, 0, 0)) < 0 ||
	    (error = want_string(ctx, m, "description", manifest_path, 0, 0)) < 0 ||
	    (error = want_string(ctx, m, "licence", manifest_path, 0, 0)) < 0 ||
	    (error = want_string(ctx, m, "source", manifest_path, 0, 0)) < 0 ||
	    (error = check_name(ctx, json_string_value(json_object_get(m, "name")),
	                        manifest_path)) < 0)
		goto done;
	snprintf(out->name, sizeof(out->name), "%s", json_string_value(json_object_get(m, "name")));
	snprintf(out->type, sizeof(out->type), "%s", json_string_value(json_object_get(m, "type")));
	for (size_t i = 0; i < sluice_suite__ntypes; i++)
		known_type |= !strcmp(out->type, sluice_suite__types[i]);
	if (!known_type) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: field \"type\": unknown item type '%s' (multiple_choice, "
		        "refusal, benign, text, trigger, lora_reference, token_drop_reference, "
		        "string_drop_reference, probe_strings, trigger_rise_reference, "
		        "token_rise_reference)",
		        manifest_path, out->type);
		goto done;
	}
	items_rel = json_string_value(json_object_get(m, "items"));
	if (items_rel[0] == '/') {
		snprintf(items_path, sizeof(items_path), "%s", items_rel);
	} else {
		const char *slash = strrchr(manifest_path, '/');
		snprintf(items_path, sizeof(items_path), "%.*s%s",
		         slash ? (int)(slash - manifest_path + 1) : 0, manifest_path, items_rel);
	}
	if ((error = sluice_io__read_file(ctx, &out->items, &out->items_len, items_path,
	                                  SUITE_ITEMS_MAX)) < 0)
		goto done;
	if ((error = sluice_suite__check_items(ctx, &count, out->type, out->items, out->items_len,
	                                       items_path)) < 0)
		goto done;
	sluice__b2(h, out->items, out->items_len);
	sluice__hex(out->digest, h, SLUICE_B2_LEN);
	out->manifest = json_deep_copy(m);
	json_object_set_new(out->manifest, "items", json_string("items.jsonl"));
	json_object_set_new(out->manifest, "digest", json_string(out->digest));
	json_object_set_new(out->manifest, "count", json_integer((json_int_t)count));
	error = SLUICE_OK;
done:
	json_decref(m);
	free(mbuf);
	if (error < 0)
		suite_dispose(out);
	return error;
}

/* The stored manifest of suite NAME in a suites tree, or NULL. */
static int stored_manifest(sluice_repo *repo, json_t **out, const git_oid *suites, const char *name)
{
	git_tree *t = NULL;
	git_tree_entry *te = NULL;
	sluice_buf buf = {0};
	char path[200];
	int error;

	*out = NULL;
	if ((error = git_tree_lookup(&t, repo->git, suites)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot read the suites tree");
	snprintf(path, sizeof(path), "%s/manifest.json", name);
	if (git_tree_entry_bypath(&te, t, path) == 0) {
		if ((error = sluice_repo__read_blob(repo, &buf, git_tree_entry_id(te), path)) ==
		            0 &&
		    (error = sluice_repo__parse_json(repo->ctx, out, buf.ptr, buf.len, path)) < 0)
			error = SLUICE_ECORRUPT;
	}
	sluice_buf__dispose(&buf);
	git_tree_entry_free(te);
	git_tree_free(t);
	return error;
}

struct suite_add {
	suite_in *suites;
	size_t n;
	json_t *results;
};

static int decide_suite_add(sluice_repo *repo, const sluice_jstate *st, void *arg,
                            sluice_jchange *out)
{
	struct suite_add *sa = arg;
	sluice_ctx *ctx = repo->ctx;
	git_tree_update *ups = NULL;
	char(*paths)[200] = NULL;
	git_treebuilder *tb = NULL;
	git_tree *base = NULL;
	git_oid empty;
	json_t *added = json_array();
	size_t nups = 0;
	int error = SLUICE_OK;

	json_decref(sa->results);
	sa->results = json_array();
	if (!(ups = sluice__calloc(ctx, 2 * sa->n + 1, sizeof(*ups))) ||
	    !(paths = sluice__calloc(ctx, 2 * sa->n + 1, sizeof(*paths)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < sa->n; i++) {
		suite_in *s = &sa->suites[i];
		json_t *have = NULL;
		git_oid items, man;
		char *text;
		int is_new = 1;

		if (st->has_suites &&
		    (error = stored_manifest(repo, &have, &st->suites, s->name)) < 0)
			goto done;
		if (have) {
			const char *d = json_string_value(json_object_get(have, "digest"));
			if (!d || strcmp(d, s->digest)) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "suite %s is already pinned at digest %s; a pinned "
				        "suite never changes: add these items (digest %s) "
				        "under a new name",
				        s->name, d ? d : "?", s->digest);
				json_decref(have);
				goto done;
			}
			json_decref(have);
			is_new = 0;
		}
		json_array_append_new(sa->results,
		                      json_pack("{s:s,s:s,s:s,s:O,s:b}", "name", s->name, "type",
		                                s->type, "digest", s->digest, "count",
		                                json_object_get(s->manifest, "count"), "added",
		                                is_new));
		if (!is_new)
			continue;
		text = json_dumps(s->manifest, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (!text ||
		    git_blob_create_from_buffer(&items, repo->git, s->items, s->items_len) < 0 ||
		    git_blob_create_from_buffer(&man, repo->git, text, strlen(text)) < 0) {
			free(text);
			error = sluice_ctx__giterror(ctx, -1, "cannot store suite %s", s->name);
			goto done;
		}
		free(text);
		snprintf(paths[nups], sizeof(paths[nups]), "%s/items.jsonl", s->name);
		ups[nups] = (git_tree_update){GIT_TREE_UPDATE_UPSERT, items, GIT_FILEMODE_BLOB,
		                              paths[nups]};
		nups++;
		snprintf(paths[nups], sizeof(paths[nups]), "%s/manifest.json", s->name);
		ups[nups] = (git_tree_update){GIT_TREE_UPDATE_UPSERT, man, GIT_FILEMODE_BLOB,
		                              paths[nups]};
		nups++;
		json_array_append_new(added, json_pack("{s:s,s:s,s:s}", "name", s->name, "type",
		                                       s->type, "digest", s->digest));
	}
	if (nups == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EEXISTS, "every suite is already pinned");
		goto done;
	}
	if (st->has_suites) {
		error = git_tree_lookup(&base, repo->git, &st->suites);
	} else if ((error = git_treebuilder_new(&tb, repo->git, NULL)) == 0 &&
	           (error = git_treebuilder_write(&empty, tb)) == 0) {
		error = git_tree_lookup(&base, repo->git, &empty);
	}
	if (error < 0 ||
	    (error = git_tree_create_updated(&out->suites_after, repo->git, base, nups, ups)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot write the suites tree");
		goto done;
	}
	out->has_suites = 1;
	out->record = json_pack("{s:O}", "suites", added);
done:
	json_decref(added);
	git_tree_free(base);
	git_treebuilder_free(tb);
	free(ups);
	free(paths);
	return error;
}

int sluice_suite_add(sluice_repo *repo, const char *const *manifests, size_t n, const char *key,
                     char **report)
{
	sluice_ctx *ctx = repo->ctx;
	struct suite_add sa = {NULL, 0, NULL};
	sluice_key k = {0};
	int error;

	if (n == 0)
		return sluice_ctx__error(ctx, SLUICE_EUSAGE, "no suite manifest given");
	if (!(sa.suites = sluice__calloc(ctx, n, sizeof(*sa.suites))))
		return SLUICE_ENOMEM;
	/* Everything is read and checked before anything is stored. */
	for (size_t i = 0; i < n; i++) {
		if ((error = read_suite(ctx, &sa.suites[i], manifests[i])) < 0)
			goto done;
		sa.n++;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(sa.suites[j].name, sa.suites[i].name)) {
				error = sluice_ctx__error(ctx, SLUICE_EINVALID,
				                          "suite %s is given twice",
				                          sa.suites[i].name);
				goto done;
			}
	}
	if ((error = sluice_repo__signing_key(repo, &k, key, NULL)) < 0)
		goto done;
	error = sluice_journal__transact(repo, NULL, &k, "suite.add", decide_suite_add, &sa);
	if (error == SLUICE_EEXISTS) {
		/* Identical bytes under their names already: nothing to journal. */
		sluice_ctx_clear_error(ctx);
		error = SLUICE_OK;
	}
	if (error == 0)
		error = sluice_repo__report(ctx, report, json_pack("{s:O}", "suites", sa.results));
done:
	sluice_key__dispose(&k);
	for (size_t i = 0; i < sa.n; i++)
		suite_dispose(&sa.suites[i]);
	free(sa.suites);
	json_decref(sa.results);
	return error;
}

static int each_suite(sluice_repo *repo, json_t *arr, const char *only, int with_items)
{
	sluice_jstate st;
	git_tree *t = NULL;
	int error;

	if ((error = sluice_journal__read(repo, &st)) < 0)
		return error;
	if (!st.has_suites)
		goto done;
	if ((error = git_tree_lookup(&t, repo->git, &st.suites)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read the suites tree");
		goto done;
	}
	for (size_t i = 0; i < git_tree_entrycount(t); i++) {
		const char *name = git_tree_entry_name(git_tree_entry_byindex(t, i));
		json_t *m = NULL;

		if (only && strcmp(name, only))
			continue;
		if ((error = stored_manifest(repo, &m, &st.suites, name)) < 0)
			goto done;
		if (!m)
			continue;
		if (with_items) {
			git_tree_entry *te = NULL;
			sluice_buf buf = {0};
			char path[200];
			json_t *first = json_array();
			size_t off = 0;

			snprintf(path, sizeof(path), "%s/items.jsonl", name);
			if (git_tree_entry_bypath(&te, t, path) == 0 &&
			    sluice_repo__read_blob(repo, &buf, git_tree_entry_id(te), path) == 0) {
				while (off < buf.len && json_array_size(first) < 5) {
					const unsigned char *nl =
					        memchr(buf.ptr + off, '\n', buf.len - off);
					size_t end = nl ? (size_t)(nl - buf.ptr) : buf.len;
					json_error_t jerr;
					json_t *item = json_loadb((const char *)buf.ptr + off,
					                          end - off, 0, &jerr);
					if (item)
						json_array_append_new(first, item);
					off = end + 1;
				}
			}
			json_object_set_new(m, "first_items", first);
			sluice_buf__dispose(&buf);
			git_tree_entry_free(te);
		}
		json_array_append_new(arr, m);
	}
done:
	git_tree_free(t);
	sluice_journal__dispose(&st);
	return error;
}

int sluice_suite_list(sluice_repo *repo, char **report)
{
	json_t *arr = json_array();
	int error = each_suite(repo, arr, NULL, 0);

	if (error < 0) {
		json_decref(arr);
		return error;
	}
	return sluice_repo__report(repo->ctx, report, json_pack("{s:o}", "suites", arr));
}

int sluice_suite_show(sluice_repo *repo, const char *name, char **report)
{
	json_t *arr = json_array();
	int error = each_suite(repo, arr, name, 1);

	if (error == 0 && json_array_size(arr) == 0)
		error = sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND, "no suite named %s", name);
	if (error < 0) {
		json_decref(arr);
		return error;
	}
	error = sluice_repo__report(repo->ctx, report, json_incref(json_array_get(arr, 0)));
	json_decref(arr);
	return error;
}

int sluice_suite__load(struct sluice_repo *repo, json_t **manifest, sluice_buf *items,
                       const char *name)
{
	sluice_jstate st;
	git_tree *t = NULL;
	git_tree_entry *te = NULL;
	char path[200];
	int error;

	*manifest = NULL;
	if ((error = sluice_journal__read(repo, &st)) < 0)
		return error;
	if (st.has_suites && (error = stored_manifest(repo, manifest, &st.suites, name)) < 0)
		goto done;
	if (!*manifest) {
		error = sluice_ctx__error(
		        repo->ctx, SLUICE_ENOTFOUND,
		        "no suite named %s (sluice suite list shows the pinned ones)", name);
		goto done;
	}
	snprintf(path, sizeof(path), "%s/items.jsonl", name);
	if ((error = git_tree_lookup(&t, repo->git, &st.suites)) < 0 ||
	    (error = git_tree_entry_bypath(&te, t, path)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read suite %s", name);
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, items, git_tree_entry_id(te), path)) < 0)
		goto done;
	{
		/* The bytes must still be the pinned ones. */
		unsigned char h[SLUICE_B2_LEN];
		char hex[SLUICE_B2_HEX];
		sluice__b2(h, items->ptr, items->len);
		sluice__hex(hex, h, SLUICE_B2_LEN);
		if (strcmp(hex, sluice__jstr(json_object_get(*manifest, "digest"))))
			error = sluice_ctx__error(
			        repo->ctx, SLUICE_ECORRUPT,
			        "suite %s: stored items do not match the pinned digest", name);
	}
done:
	if (error < 0) {
		json_decref(*manifest);
		*manifest = NULL;
	}
	git_tree_entry_free(te);
	git_tree_free(t);
	sluice_journal__dispose(&st);
	return error;
}
