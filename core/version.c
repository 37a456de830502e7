/*
 * core/version.c - loading versions and building new ones from proposals.
 *
 * A version's tree (docs/format.md):
 *   update.json   what the update is: kind, summary, proposer, target
 *                 suite, declared provenance, kind-specific details
 *   state.json    the full state: base files, adapter stack, memory notes,
 *                 replay batches; each file {path,size,blake2b,storage}
 *   B2SUMS        `b2sum -l 256` lines for every component file
 *   files/<path>  each file: its bytes ("blob") or its chunk manifest
 */
#include "version.h"

#include "ingest.h"
#include "jindex.h"
#include "peft.h"
#include "sluice/version.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sluice_version__dispose(sluice_version *v)
{
	if (!v)
		return;
	json_decref(v->update);
	json_decref(v->state);
	git_tree_free(v->tree);
	git_commit_free(v->commit);
	memset(v, 0, sizeof(*v));
}

static int tree_json(sluice_repo *repo, json_t **out, git_oid *blob_out, git_tree *tree,
                     const char *name, const char *hex)
{
	const git_tree_entry *te = git_tree_entry_byname(tree, name);
	sluice_buf buf = {0};
	char what[128];
	int error;

	snprintf(what, sizeof(what), "version %.12s: %s", hex, name);
	if (!te)
		return sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND,
		                         "%.12s is not a sluice version (no %s)", hex, name);
	if (blob_out)
		*blob_out = *git_tree_entry_id(te);
	if ((error = sluice_repo__read_blob(repo, &buf, git_tree_entry_id(te), what)) == 0 &&
	    (error = sluice_repo__parse_json(repo->ctx, out, buf.ptr, buf.len, what)) < 0)
		error = SLUICE_ECORRUPT;
	sluice_buf__dispose(&buf);
	return error;
}

int sluice_version__load_id(sluice_repo *repo, sluice_version *out, const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	memset(out, 0, sizeof(*out));
	out->id = *id;
	git_oid_tostr(hex, sizeof(hex), id);
	if ((error = git_commit_lookup(&out->commit, repo->git, id)) < 0 ||
	    (error = git_commit_tree(&out->tree, out->commit)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read version %s", hex);
		goto done;
	}
	if ((error = tree_json(repo, &out->update, NULL, out->tree, "update.json", hex)) < 0 ||
	    (error = tree_json(repo, &out->state, &out->state_blob, out->tree, "state.json", hex)) <
	            0 ||
	    (error = sluice_version__check_state(repo->ctx, out->state, hex)) < 0)
		goto done;
done:
	if (error < 0)
		sluice_version__dispose(out);
	return error;
}

int sluice_version__load(sluice_repo *repo, sluice_version *out, const char *ref)
{
	git_object *obj = NULL, *peeled = NULL;
	int error;

	memset(out, 0, sizeof(*out));
	if (!ref || !*ref)
		return sluice_ctx__error(repo->ctx, SLUICE_EUSAGE, "no version given");
	{
		/* A channel's name stands for its head. */
		json_t *channels = NULL;
		git_oid head, cid;
		int exists;

		if (sluice_journal__head(repo, &head, &exists) == 0 && exists &&
		    sluice_journal__channels_at(repo, &channels, &head) == 0) {
			const char *hex = json_string_value(
			        json_object_get(json_object_get(channels, ref), "head"));
			if (hex && git_oid_fromstr(&cid, hex) == 0) {
				json_decref(channels);
				return sluice_version__load_id(repo, out, &cid);
			}
		}
		json_decref(channels);
		sluice_ctx_clear_error(repo->ctx);
	}
	if ((error = git_revparse_single(&obj, repo->git, ref)) < 0)
		return sluice_ctx__giterror(repo->ctx,
		                            error == GIT_ENOTFOUND ? GIT_ENOTFOUND : error,
		                            "no version '%s'", ref);
	if ((error = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, GIT_ENOTFOUND, "'%s' is not a version",
		                             ref);
		goto done;
	}
	error = sluice_version__load_id(repo, out, git_object_id(peeled));
done:
	git_object_free(peeled);
	git_object_free(obj);
	return error;
}

static int each_in(json_t *files, int (*fn)(void *, json_t *), void *data)
{
	json_t *f;
	size_t i;
	int error;

	json_array_foreach(files, i, f) if ((error = fn(data, f)) < 0) return error;
	return SLUICE_OK;
}

int sluice_version__each_file(json_t *state, int (*fn)(void *data, json_t *file), void *data)
{
	json_t *base = json_object_get(state, "base"), *c;
	size_t i;
	int error;

	if (json_is_object(base) && (error = each_in(json_object_get(base, "files"), fn, data)) < 0)
		return error;
	json_array_foreach(json_object_get(state, "adapters"), i,
	                   c) if ((error = each_in(json_object_get(c, "files"), fn, data)) <
	                          0) return error;
	json_array_foreach(json_object_get(state, "memory"), i,
	                   c) if ((error = fn(data, json_object_get(c, "file"))) < 0) return error;
	json_array_foreach(json_object_get(state, "replay"), i,
	                   c) if ((error = fn(data, json_object_get(c, "file"))) < 0) return error;
	return SLUICE_OK;
}

struct check_ctx {
	sluice_ctx *ctx;
	const char *what;
	json_t *seen;
};

static int check_file(void *data, json_t *f)
{
	struct check_ctx *cc = data;
	const char *path = json_string_value(json_object_get(f, "path"));
	const char *b2 = json_string_value(json_object_get(f, "blake2b"));
	const char *storage = json_string_value(json_object_get(f, "storage"));
	json_t *size = json_object_get(f, "size");
	unsigned char tmp[SLUICE_B2_LEN];
	const char *why;

	if (!json_is_object(f) || !path || !b2 || !storage || !json_is_integer(size) ||
	    json_integer_value(size) < 0)
		return sluice_ctx__error(
		        cc->ctx, SLUICE_ECORRUPT,
		        "version %.12s: state.json: a file entry lacks path, size, "
		        "blake2b or storage",
		        cc->what);
	if (!sluice__path_safe(path, json_string_length(json_object_get(f, "path")), &why))
		return sluice_ctx__error(cc->ctx, SLUICE_ECORRUPT,
		                         "version %.12s: state.json: refusing file path '%s': %s",
		                         cc->what, path, why);
	if (strlen(b2) != 64 || sluice__unhex(tmp, SLUICE_B2_LEN, b2) < 0)
		return sluice_ctx__error(cc->ctx, SLUICE_ECORRUPT,
		                         "version %.12s: state.json: %s: bad blake2b digest",
		                         cc->what, path);
	if (strcmp(storage, "blob") && strcmp(storage, "chunks"))
		return sluice_ctx__error(cc->ctx, SLUICE_ECORRUPT,
		                         "version %.12s: state.json: %s: unknown storage '%s'",
		                         cc->what, path, storage);
	if (!strcmp(path, "B2SUMS") || json_object_get(cc->seen, path))
		return sluice_ctx__error(cc->ctx, SLUICE_ECORRUPT,
		                         "version %.12s: state.json: path %s appears twice",
		                         cc->what, path);
	json_object_set_new(cc->seen, path, json_true());
	return SLUICE_OK;
}

int sluice_version__check_state(sluice_ctx *ctx, json_t *state, const char *what)
{
	struct check_ctx cc = {ctx, what, json_object()};
	json_t *base = json_object_get(state, "base"), *c;
	size_t i;
	int error;

	if (!json_is_object(state) || json_integer_value(json_object_get(state, "format")) != 1 ||
	    !(json_is_null(base) || json_is_object(base)) ||
	    !json_is_array(json_object_get(state, "adapters")) ||
	    !json_is_array(json_object_get(state, "memory")) ||
	    !json_is_array(json_object_get(state, "replay"))) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "version %.12s: state.json is not a format-1 state",
		                          what);
		goto done;
	}
	if (json_is_object(base) && !json_is_array(json_object_get(base, "files"))) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "version %.12s: state.json: base has no files", what);
		goto done;
	}
	json_array_foreach(json_object_get(state, "adapters"), i, c)
	{
		if (!json_is_string(json_object_get(c, "name")) ||
		    !json_is_array(json_object_get(c, "files")) ||
		    !json_is_number(json_object_get(c, "scale"))) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "version %.12s: state.json: adapter %zu is malformed", what, i);
			goto done;
		}
	}
	error = sluice_version__each_file(state, check_file, &cc);
done:
	json_decref(cc.seen);
	return error;
}

struct sums {
	sluice_ctx *ctx;
	json_t *lines; /* path -> hex */
};

static int sum_file(void *data, json_t *f)
{
	struct sums *s = data;
	json_object_set(s->lines, json_string_value(json_object_get(f, "path")),
	                json_object_get(f, "blake2b"));
	return SLUICE_OK;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sluice_version__b2sums(sluice_ctx *ctx, json_t *state, sluice_buf *out)
{
	struct sums s = {ctx, json_object()};
	const char **paths = NULL;
	const char *k;
	json_t *v;
	size_t n = 0;
	int error;

	out->len = 0;
	if ((error = sluice_version__each_file(state, sum_file, &s)) < 0)
		goto done;
	if (!(paths = sluice__calloc(ctx, json_object_size(s.lines) + 1, sizeof(*paths)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	json_object_foreach(s.lines, k, v) paths[n++] = k;
	qsort(paths, n, sizeof(*paths), cmp_cstr);
	for (size_t i = 0; i < n; i++) {
		/* b2sum's text-mode line: digest, two spaces, name. */
		if ((error = sluice_buf__printf(
		             ctx, out, "%s  %s\n",
		             json_string_value(json_object_get(s.lines, paths[i])), paths[i])) < 0)
			goto done;
	}
	error = sluice_buf__cstr(ctx, out);
done:
	free(paths);
	json_decref(s.lines);
	return error;
}

/* ---- building versions ------------------------------------------------- */

/* What a proposal carries from start to finish. */
typedef struct {
	sluice_repo *repo;
	sluice_key key;
	sluice_version parent;
	int has_parent;
	json_t *state;              /* the new state */
	json_t *blobs;              /* path -> blob oid hex, for files this proposal stored */
	json_t *details;            /* kind-specific, goes into update.json */
	sluice_ingest_stats stored; /* what chunked storage read and newly stored */
} build;

static void build_dispose(build *b)
{
	sluice_key__dispose(&b->key);
	sluice_version__dispose(&b->parent);
	json_decref(b->state);
	json_decref(b->blobs);
	json_decref(b->details);
}

static int check_sources(sluice_ctx *ctx, json_t **out, const sluice_propose_opts *opts)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < opts->nsources; i++) {
		const char *s = opts->sources[i], *eq = strchr(s, '=');
		const char *d;
		size_t hexlen = 0;

		if (!eq || eq == s || !eq[1]) {
			json_decref(arr);
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "--source '%s': expected NAME=DIGEST", s);
		}
		d = strchr(eq + 1, ':') ? strchr(eq + 1, ':') + 1 : eq + 1;
		while (d[hexlen] && strchr("0123456789abcdef", d[hexlen]))
			hexlen++;
		if (d[hexlen] || hexlen < 32 || (size_t)(eq - s) > 256) {
			json_decref(arr);
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "--source '%s': the digest must be [ALGORITHM:]HEX with "
			        "at least 32 lower-case hex digits",
			        s);
		}
		json_array_append_new(arr, json_pack("{s:s%,s:s}", "name", s, (size_t)(eq - s),
		                                     "digest", eq + 1));
	}
	*out = arr;
	return SLUICE_OK;
}

static int build_start(build *b, sluice_repo *repo, const sluice_propose_opts *opts,
                       int need_parent)
{
	int error;

	memset(b, 0, sizeof(*b));
	b->repo = repo;
	b->blobs = json_object();
	b->details = json_object();
	if ((error = sluice_repo__signing_key(repo, &b->key, opts->key, "proposer")) < 0)
		return error;
	if (opts->onto) {
		if ((error = sluice_version__load(repo, &b->parent, opts->onto)) < 0)
			return error;
		b->has_parent = 1;
		b->state = json_deep_copy(b->parent.state);
	} else if (need_parent) {
		return sluice_ctx__error(repo->ctx, SLUICE_EUSAGE,
		                         "this kind of update needs --onto VERSION");
	} else {
		b->state = json_pack("{s:i,s:n,s:[],s:[],s:[]}", "format", 1, "base", "adapters",
		                     "memory", "replay");
	}
	return SLUICE_OK;
}

/* Store an input file at dest and remember its blob. */
static int build_store(build *b, json_t **entry, const sluice_input_file *f, const char *dest)
{
	git_oid blob;
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	if ((error = sluice_ingest__store(b->repo, entry, &blob, f, dest, &b->stored)) < 0)
		return error;
	git_oid_tostr(hex, sizeof(hex), &blob);
	json_object_set_new(b->blobs, dest, json_string(hex));
	return SLUICE_OK;
}

static int build_store_bytes(build *b, json_t **entry, const void *data, size_t len,
                             const char *dest)
{
	git_oid blob;
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	if ((error = sluice_ingest__store_bytes(b->repo, entry, &blob, data, len, dest)) < 0)
		return error;
	git_oid_tostr(hex, sizeof(hex), &blob);
	json_object_set_new(b->blobs, dest, json_string(hex));
	return SLUICE_OK;
}

/* An earlier proposal of the same state onto the same parent, if any (the journal index). */
static int find_existing(sluice_repo *repo, git_oid *out, int *found, const git_oid *parent,
                         const git_oid *state_blob)
{
	char phex[GIT_OID_HEXSZ + 1], shex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(phex, sizeof(phex), parent);
	git_oid_tostr(shex, sizeof(shex), state_blob);
	return sluice_jindex__find_proposal(repo, out, found, phex, shex);
}

struct tree_fill {
	build *b;
	git_tree_update *ups;
	char **paths;
	size_t n;
};

static int add_update(struct tree_fill *tf, const char *path, const git_oid *id)
{
	size_t len = strlen(SLUICE_TREE_FILES) + strlen(path) + 1;
	char *p = sluice__malloc(tf->b->repo->ctx, len);

	if (!p)
		return SLUICE_ENOMEM;
	snprintf(p, len, "%s%s", SLUICE_TREE_FILES, path);
	tf->paths[tf->n] = p;
	tf->ups[tf->n] = (git_tree_update){GIT_TREE_UPDATE_UPSERT, *id, GIT_FILEMODE_BLOB, p};
	tf->n++;
	return SLUICE_OK;
}

static int fill_file(void *data, json_t *f)
{
	struct tree_fill *tf = data;
	const char *path = json_string_value(json_object_get(f, "path"));
	const char *hex = json_string_value(json_object_get(tf->b->blobs, path));
	git_tree_entry *te = NULL;
	git_oid id;
	char tpath[4200];
	int error;

	if (hex) {
		git_oid_fromstr(&id, hex);
		return add_update(tf, path, &id);
	}
	/* Carried over from the parent: reuse its tree entry. */
	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if (!tf->b->has_parent ||
	    (error = git_tree_entry_bypath(&te, tf->b->parent.tree, tpath)) < 0)
		return sluice_ctx__error(tf->b->repo->ctx, SLUICE_ECORRUPT,
		                         "parent version lacks %s", tpath);
	id = *git_tree_entry_id(te);
	git_tree_entry_free(te);
	return add_update(tf, path, &id);
}

static int count_file(void *data, json_t *f)
{
	(void)f;
	(*(size_t *)data)++;
	return SLUICE_OK;
}

static int put_text(sluice_repo *repo, git_oid *out, const char *text, size_t len)
{
	int error = git_blob_create_from_buffer(out, repo->git, text, len);
	return error < 0 ? sluice_ctx__giterror(repo->ctx, error, "cannot write blob") : 0;
}

static int json_blob(sluice_repo *repo, git_oid *out, json_t *v, int write)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	sluice_buf buf = {0};
	int error;

	if (!s)
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "cannot encode JSON");
	/* Indented with a final newline so `git diff` between versions reads well. */
	if ((error = sluice_buf__printf(repo->ctx, &buf, "%s\n", s)) == 0) {
		if (write)
			error = put_text(repo, out, (const char *)buf.ptr, buf.len);
		else if (git_odb_hash(out, buf.ptr, buf.len, GIT_OBJECT_BLOB) < 0)
			error = sluice_ctx__giterror(repo->ctx, -1, "cannot hash state");
	}
	free(s);
	sluice_buf__dispose(&buf);
	return error;
}

struct propose_entry {
	const sluice_key *key;
	const git_oid *version;
	json_t *record;
};

/* A proposal's journal entry: the proposer must hold the role in the state it lands on. */
static int decide_propose(sluice_repo *repo, const sluice_jstate *st, void *arg,
                          sluice_jchange *out)
{
	struct propose_entry *pe = arg;
	int error;

	if ((error = sluice_journal__check_role(repo, st, pe->key, "proposer")) < 0)
		return error;
	out->record = json_deep_copy(pe->record);
	out->extra_parent = *pe->version;
	out->has_extra = 1;
	return SLUICE_OK;
}

static int build_finish(build *b, const char *kind, const sluice_propose_opts *opts,
                        char id_out[41], char **report)
{
	sluice_repo *repo = b->repo;
	sluice_ctx *ctx = repo->ctx;
	struct tree_fill tf = {b, NULL, NULL, 0};
	sluice_chunkstore *cs;
	sluice_buf sums = {0};
	json_t *update = NULL, *sources = NULL;
	git_treebuilder *tb = NULL;
	git_tree *empty = NULL;
	git_oid state_blob, existing, tree, empty_id, commit, sums_blob, update_blob;
	char fp[SLUICE_FP_LEN], now[32], phex[GIT_OID_HEXSZ + 1] = "";
	size_t nfiles = 0;
	int found = 0, error;

	if ((error = check_sources(ctx, &sources, opts)) < 0)
		goto done;
	if ((error = sluice_version__check_state(ctx, b->state, "(new)")) < 0) {
		error = SLUICE_EINVALID;
		goto done;
	}
	if (b->has_parent)
		git_oid_tostr(phex, sizeof(phex), &b->parent.id);
	if ((error = json_blob(repo, &state_blob, b->state, 0)) < 0)
		goto done;
	if (b->has_parent &&
	    (error = find_existing(repo, &existing, &found, &b->parent.id, &state_blob)) < 0)
		goto done;
	if (found) {
		git_oid_tostr(id_out, 41, &existing);
		error = sluice_repo__report(ctx, report,
		                            json_pack("{s:s,s:s,s:s,s:b}", "version", id_out,
		                                      "parent", phex, "kind", kind, "existing", 1));
		goto done;
	}
	/* Chunks are durable before any git object that refers to them. */
	if ((error = sluice_repo__chunks(repo, &cs)) < 0 ||
	    (error = sluice_chunkstore__commit(cs)) < 0)
		goto done;
	sluice_keys__fingerprint(fp, b->key.pk);
	sluice_repo__now(now);
	update = json_pack("{s:i,s:s,s:s,s:{s:s,s:s},s:s?,s:{s:o,s:s?,s:s?,s:s},s:s,s:O}", "format",
	                   1, "kind", kind, "summary", opts->message ? opts->message : kind,
	                   "proposer", "name", b->key.name, "fingerprint", fp, "target_suite",
	                   opts->target_suite, "provenance", "sources", sources, "method",
	                   opts->method, "code_revision", opts->code_revision, "declared_by",
	                   "proposer", "created", now, "details", b->details);
	sources = NULL;
	if (!update) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build update.json");
		goto done;
	}
	json_object_set_new(update, "parent", b->has_parent ? json_string(phex) : json_null());
	if ((error = sluice_version__b2sums(ctx, b->state, &sums)) < 0 ||
	    (error = json_blob(repo, &state_blob, b->state, 1)) < 0 ||
	    (error = json_blob(repo, &update_blob, update, 1)) < 0 ||
	    (error = put_text(repo, &sums_blob, (const char *)sums.ptr, sums.len)) < 0)
		goto done;
	sluice_version__each_file(b->state, count_file, &nfiles);
	tf.ups = sluice__calloc(ctx, nfiles + 3, sizeof(*tf.ups));
	tf.paths = sluice__calloc(ctx, nfiles + 3, sizeof(*tf.paths));
	if (!tf.ups || !tf.paths) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	if ((error = sluice_version__each_file(b->state, fill_file, &tf)) < 0)
		goto done;
	tf.ups[tf.n++] = (git_tree_update){GIT_TREE_UPDATE_UPSERT, update_blob, GIT_FILEMODE_BLOB,
	                                   "update.json"};
	tf.ups[tf.n++] = (git_tree_update){GIT_TREE_UPDATE_UPSERT, state_blob, GIT_FILEMODE_BLOB,
	                                   "state.json"};
	tf.ups[tf.n++] =
	        (git_tree_update){GIT_TREE_UPDATE_UPSERT, sums_blob, GIT_FILEMODE_BLOB, "B2SUMS"};
	if ((error = git_treebuilder_new(&tb, repo->git, NULL)) < 0 ||
	    (error = git_treebuilder_write(&empty_id, tb)) < 0 ||
	    (error = git_tree_lookup(&empty, repo->git, &empty_id)) < 0 ||
	    (error = git_tree_create_updated(&tree, repo->git, empty, tf.n, tf.ups)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot write version tree");
		goto done;
	}
	{
		char msg[1200];
		snprintf(msg, sizeof(msg), "%s: %.1000s\n\nSluice-Kind: %s\n", kind,
		         opts->message ? opts->message : kind, kind);
		if ((error = sluice_repo__signed_commit(repo, &commit, &b->key, msg, &tree,
		                                        b->has_parent ? &b->parent.id : NULL,
		                                        b->has_parent ? 1 : 0)) < 0)
			goto done;
	}
	git_oid_tostr(id_out, 41, &commit);
	{
		struct propose_entry pe = {&b->key, &commit, NULL};
		char shex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(shex, sizeof(shex), &state_blob);
		pe.record = json_pack("{s:s,s:s?,s:s,s:s,s:s}", "version", id_out, "parent",
		                      b->has_parent ? phex : NULL, "kind", kind, "state", shex,
		                      "summary", opts->message ? opts->message : kind);
		error = sluice_journal__transact(repo, NULL, &b->key, "propose", decide_propose,
		                                 &pe);
		json_decref(pe.record);
		if (error < 0)
			goto done;
	}
	error = sluice_repo__report(
	        ctx, report,
	        json_pack("{s:s,s:s?,s:s,s:b,s:O,s:{s:I,s:I,s:I,s:I}}", "version", id_out, "parent",
	                  b->has_parent ? phex : NULL, "kind", kind, "existing", 0, "details",
	                  b->details, "stored", "bytes_chunked", (json_int_t)b->stored.bytes_in,
	                  "chunks", (json_int_t)b->stored.chunks, "new_chunks",
	                  (json_int_t)b->stored.new_chunks, "new_bytes",
	                  (json_int_t)b->stored.new_bytes));
done:
	for (size_t i = 0; tf.paths && i < nfiles + 3; i++)
		free(tf.paths[i]);
	free(tf.paths);
	free(tf.ups);
	git_tree_free(empty);
	git_treebuilder_free(tb);
	json_decref(update);
	json_decref(sources);
	sluice_buf__dispose(&sums);
	return error;
}

/* ---- base -------------------------------------------------------------- */

static int check_index_json(sluice_ctx *ctx, const sluice_input_dir *in, const char *dir)
{
	const sluice_input_file *idx = sluice_ingest__find(in, "model.safetensors.index.json");
	unsigned char *buf = NULL;
	json_t *doc = NULL, *map, *v;
	const char *tensor;
	size_t len;
	int error;

	if (!idx)
		return SLUICE_OK;
	if ((error = sluice_io__read_file(ctx, &buf, &len, idx->abs, 64u << 20)) < 0 ||
	    (error = sluice_repo__parse_json(ctx, &doc, buf, len, idx->abs)) < 0)
		goto done;
	map = json_object_get(doc, "weight_map");
	if (!json_is_object(map)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: no \"weight_map\" object",
		                          idx->abs);
		goto done;
	}
	json_object_foreach(map, tensor, v)
	{
		const sluice_input_file *shard =
		        json_is_string(v) ? sluice_ingest__find(in, json_string_value(v)) : NULL;
		if (!shard || shard->format != SLUICE_FMT_SAFETENSORS) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: weight_map: tensor %s names file '%s', which is "
			        "not a safetensors file in %s",
			        idx->abs, tensor, sluice__jstr(v), dir);
			goto done;
		}
		if (!sluice_safetensors__find(&shard->st, tensor)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: weight_map: tensor %s is not in %s",
			                          idx->abs, tensor, shard->abs);
			goto done;
		}
	}
done:
	json_decref(doc);
	free(buf);
	return error;
}

int sluice_propose_base(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                        const char *dir, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_input_dir in = {0};
	build b;
	json_t *files, *dropped, *a;
	size_t i, nst = 0;
	int error;

	if ((error = build_start(&b, repo, opts, 0)) < 0)
		goto done;
	if ((error = sluice_ingest__scan_dir(ctx, &in, dir)) < 0)
		goto done;
	for (i = 0; i < in.n; i++)
		nst += in.files[i].format == SLUICE_FMT_SAFETENSORS;
	if (!sluice_ingest__find(&in, "config.json") || nst == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s is not a Hugging Face model directory: it needs "
		                          "config.json and at least one *.safetensors file",
		                          dir);
		goto done;
	}
	if ((error = check_index_json(ctx, &in, dir)) < 0)
		goto done;
	files = json_array();
	json_object_set_new(b.state, "base", json_pack("{s:o}", "files", files));
	for (i = 0; i < in.n; i++) {
		char dest[4200];
		json_t *e;

		snprintf(dest, sizeof(dest), "base/%s", in.files[i].rel);
		if ((error = build_store(&b, &e, &in.files[i], dest)) < 0)
			goto done;
		json_array_append_new(files, e);
	}
	/* Adapters were trained on the old base: they leave the new state. */
	dropped = json_array();
	json_array_foreach(json_object_get(b.state, "adapters"), i, a)
	        json_array_append(dropped, json_object_get(a, "name"));
	json_object_set_new(b.state, "adapters", json_array());
	json_object_set_new(b.details, "dropped_adapters", dropped);
	json_object_set_new(b.details, "files", json_integer((json_int_t)in.n));
	error = build_finish(&b, "base", opts, id_out, report);
done:
	sluice_ingest__dispose_dir(&in);
	build_dispose(&b);
	return error;
}

/* ---- lora -------------------------------------------------------------- */

static int check_component_name(sluice_ctx *ctx, const char *name, const char *what)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128 || name[0] == '.' || name[0] == '-' ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "refusing %s name '%s': use 1-128 of A-Z a-z 0-9 . _ -, not "
		        "starting with '.' or '-'",
		        what, name);
	return SLUICE_OK;
}

/* Read the first n bytes of a stored file (for a base's safetensors header). */
static int read_prefix(build *b, const char *path, size_t want, sluice_buf *out)
{
	sluice_repo *repo = b->repo;
	sluice_chunkstore *cs;
	sluice_manifest m = {0};
	sluice_buf tmp = {0}, chunk = {0};
	git_tree_entry *te = NULL;
	char tpath[4200];
	int error;

	out->len = 0;
	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if ((error = git_tree_entry_bypath(&te, b->parent.tree, tpath)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "parent version lacks %s", tpath);
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, &tmp, git_tree_entry_id(te), tpath)) < 0 ||
	    (error = sluice_manifest__parse(repo->ctx, &m, tmp.ptr, tmp.len, tpath)) < 0 ||
	    (error = sluice_repo__chunks(repo, &cs)) < 0)
		goto done;
	for (size_t i = 0; i < m.nchunks && out->len < want; i++) {
		if ((error = sluice_chunkstore__get(cs, m.chunks[i].id, &chunk)) < 0 ||
		    (error = sluice_buf__put(repo->ctx, out, chunk.ptr, chunk.len)) < 0)
			goto done;
	}
	if (out->len > want)
		out->len = want;
done:
	git_tree_entry_free(te);
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&tmp);
	sluice_buf__dispose(&chunk);
	return error;
}

/* Parse the headers of the parent's base safetensors files. */
static int base_headers(build *b, sluice_st_header **out, size_t *n)
{
	json_t *files = json_object_get(json_object_get(b->state, "base"), "files"), *f;
	sluice_st_header *hs = NULL;
	sluice_buf buf = {0};
	size_t i, count = 0;
	int error = SLUICE_OK;

	if (!json_is_array(files))
		return sluice_ctx__error(b->repo->ctx, SLUICE_EINVALID,
		                         "the version given to --onto has no base model");
	if (!(hs = sluice__calloc(b->repo->ctx, json_array_size(files) + 1, sizeof(*hs))))
		return SLUICE_ENOMEM;
	json_array_foreach(files, i, f)
	{
		const char *path = sluice__jstr(json_object_get(f, "path"));
		uint64_t size = (uint64_t)json_integer_value(json_object_get(f, "size"));
		size_t n8;

		if (strlen(path) < 12 || strcmp(path + strlen(path) - 12, ".safetensors"))
			continue;
		if ((error = read_prefix(b, path, 8, &buf)) < 0)
			break;
		if (buf.len < 8) {
			error = sluice_ctx__error(b->repo->ctx, SLUICE_ECORRUPT, "%s is truncated",
			                          path);
			break;
		}
		n8 = (size_t)sluice__le64(buf.ptr);
		if (n8 > SLUICE_ST_MAX_HEADER) {
			error = sluice_ctx__error(b->repo->ctx, SLUICE_ECORRUPT,
			                          "%s: header too large", path);
			break;
		}
		if ((error = read_prefix(b, path, 8 + n8, &buf)) < 0 ||
		    (error = sluice_safetensors__parse(b->repo->ctx, &hs[count], buf.ptr, buf.len,
		                                       size, path)) < 0)
			break;
		count++;
	}
	sluice_buf__dispose(&buf);
	if (error < 0) {
		for (i = 0; i < count; i++)
			sluice_safetensors__dispose(&hs[i]);
		free(hs);
		return error;
	}
	*out = hs;
	*n = count;
	return SLUICE_OK;
}

int sluice_propose_lora(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                        const char *dir, const char *name, double scale, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_input_dir in = {0};
	sluice_peft_adapter peft = {0};
	sluice_st_header *base = NULL;
	const sluice_st_header **basep = NULL;
	const sluice_input_file *cfg, *model;
	unsigned char *cfgbuf = NULL;
	size_t cfglen, nbase = 0, i;
	json_t *files, *mods, *adapter, *a;
	char namebuf[256];
	build b;
	int error;

	if (!name) {
		const char *slash;
		size_t n = strlen(dir);
		while (n > 1 && dir[n - 1] == '/')
			n--;
		slash = NULL;
		for (size_t k = n; k > 0; k--)
			if (dir[k - 1] == '/') {
				slash = dir + k - 1;
				break;
			}
		snprintf(namebuf, sizeof(namebuf), "%.*s",
		         (int)(n - (slash ? (size_t)(slash + 1 - dir) : 0)),
		         slash ? slash + 1 : dir);
		name = namebuf;
	}
	if (!(scale > 0 && scale <= 1000 && isfinite(scale)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "--scale %g: the stack scale must be in (0, 1000]", scale);
	if ((error = check_component_name(ctx, name, "adapter")) < 0)
		return error;
	if ((error = build_start(&b, repo, opts, 1)) < 0)
		goto done;
	json_array_foreach(json_object_get(b.state, "adapters"), i, a)
	{
		if (!strcmp(sluice__jstr(json_object_get(a, "name")), name)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "an adapter named %s is already in the stack of %s; "
			        "choose another with --name",
			        name, opts->onto);
			goto done;
		}
	}
	if ((error = sluice_ingest__scan_dir(ctx, &in, dir)) < 0)
		goto done;
	cfg = sluice_ingest__find(&in, "adapter_config.json");
	model = sluice_ingest__find(&in, "adapter_model.safetensors");
	if (!cfg || !model) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s is not a PEFT adapter directory: it needs "
		                          "adapter_config.json and adapter_model.safetensors",
		                          dir);
		goto done;
	}
	if ((error = base_headers(&b, &base, &nbase)) < 0)
		goto done;
	if (!(basep = sluice__calloc(ctx, nbase + 1, sizeof(*basep)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < nbase; i++)
		basep[i] = &base[i];
	if ((error = sluice_io__read_file(ctx, &cfgbuf, &cfglen, cfg->abs, 1u << 20)) < 0 ||
	    (error = sluice_peft__load(ctx, &peft, (const char *)cfgbuf, cfglen, cfg->abs,
	                               &model->st, model->abs, basep, nbase)) < 0)
		goto done;
	files = json_array();
	mods = json_array();
	adapter = json_pack("{s:s,s:f,s:i,s:f,s:b,s:o,s:o}", "name", name, "scale", scale, "r",
	                    (int)peft.r, "alpha", peft.alpha, "rslora", peft.use_rslora, "modules",
	                    mods, "files", files);
	for (i = 0; i < peft.nmodules; i++)
		json_array_append_new(
		        mods, json_pack("{s:s,s:i,s:f,s:b}", "name", peft.modules[i].module, "r",
		                        (int)peft.modules[i].r, "scale", peft.modules[i].scale,
		                        "embedding", peft.modules[i].embedding));
	json_array_append_new(json_object_get(b.state, "adapters"), adapter);
	for (i = 0; i < in.n; i++) {
		char dest[4400];
		json_t *e;

		snprintf(dest, sizeof(dest), "adapters/%s/%s", name, in.files[i].rel);
		if ((error = build_store(&b, &e, &in.files[i], dest)) < 0)
			goto done;
		json_array_append_new(files, e);
	}
	json_object_set_new(b.details, "adapter", json_string(name));
	json_object_set_new(b.details, "modules", json_integer((json_int_t)peft.nmodules));
	error = build_finish(&b, "lora", opts, id_out, report);
done:
	for (i = 0; base && i < nbase; i++)
		sluice_safetensors__dispose(&base[i]);
	free(base);
	free(basep);
	free(cfgbuf);
	sluice_peft__dispose(&peft);
	sluice_ingest__dispose_dir(&in);
	build_dispose(&b);
	return error;
}

/* ---- memory ------------------------------------------------------------ */

#define SLUICE_NOTE_MAX (1u << 20)

static ssize_t find_note(json_t *memory, const char *name)
{
	json_t *n;
	size_t i;

	json_array_foreach(memory, i, n) if (!strcmp(sluice__jstr(json_object_get(n, "name")),
	                                             name)) return (ssize_t)i;
	return -1;
}

static int read_note(sluice_ctx *ctx, unsigned char **buf, size_t *len, const char *file)
{
	int error = sluice_io__read_file(ctx, buf, len, file, SLUICE_NOTE_MAX);

	if (error < 0)
		return error;
	if (!sluice__utf8_valid(*buf, *len) || memchr(*buf, '\0', *len)) {
		free(*buf);
		*buf = NULL;
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: a memory note must be UTF-8 text without NUL bytes",
		                         file);
	}
	return SLUICE_OK;
}

int sluice_propose_memory(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                          const sluice_memory_edit *edits, size_t nedits, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *memory, *log;
	build b;
	int error;

	if (nedits == 0)
		return sluice_ctx__error(ctx, SLUICE_EUSAGE,
		                         "no memory edit given (--add FILE, --replace NAME FILE, "
		                         "--remove NAME)");
	if ((error = build_start(&b, repo, opts, 1)) < 0)
		goto done;
	memory = json_object_get(b.state, "memory");
	log = json_array();
	json_object_set_new(b.details, "edits", log);
	/* Validate every edit before storing anything. */
	for (size_t i = 0; i < nedits; i++) {
		const sluice_memory_edit *e = &edits[i];
		const char *name = e->name;
		char namebuf[256], dest[300];
		unsigned char *buf = NULL;
		size_t len = 0;
		ssize_t at;
		json_t *entry;

		if (!name && e->file) {
			const char *slash = strrchr(e->file, '/');
			snprintf(namebuf, sizeof(namebuf), "%s", slash ? slash + 1 : e->file);
			name = namebuf;
		}
		if (!name) {
			error = sluice_ctx__error(ctx, SLUICE_EUSAGE, "memory edit without a name");
			goto done;
		}
		if ((error = check_component_name(ctx, name, "memory note")) < 0)
			goto done;
		at = find_note(memory, name);
		if (e->op == SLUICE_MEMORY_ADD && at >= 0) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "memory note %s already exists; use --replace %s FILE", name, name);
			goto done;
		}
		if (e->op != SLUICE_MEMORY_ADD && at < 0) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "there is no memory note named %s in %s", name,
			                          opts->onto);
			goto done;
		}
		json_array_append_new(log, json_pack("{s:s,s:s}", "op",
		                                     e->op == SLUICE_MEMORY_ADD       ? "add"
		                                     : e->op == SLUICE_MEMORY_REPLACE ? "replace"
		                                                                      : "remove",
		                                     "name", name));
		if (e->op == SLUICE_MEMORY_REMOVE) {
			json_array_remove(memory, (size_t)at);
			continue;
		}
		if ((error = read_note(ctx, &buf, &len, e->file)) < 0)
			goto done;
		snprintf(dest, sizeof(dest), "memory/%s", name);
		error = build_store_bytes(&b, &entry, buf, len, dest);
		free(buf);
		if (error < 0)
			goto done;
		if (at >= 0)
			json_array_set_new(memory, (size_t)at,
			                   json_pack("{s:s,s:o}", "name", name, "file", entry));
		else
			json_array_append_new(memory,
			                      json_pack("{s:s,s:o}", "name", name, "file", entry));
	}
	error = build_finish(&b, "memory", opts, id_out, report);
done:
	build_dispose(&b);
	return error;
}

/* ---- replay ------------------------------------------------------------ */

static int check_replay(sluice_ctx *ctx, json_t *digests, const unsigned char *buf, size_t len,
                        const char *file)
{
	size_t line = 0, off = 0;

	if (len == 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: the replay batch is empty",
		                         file);
	if (!sluice__utf8_valid(buf, len))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: not UTF-8 text", file);
	while (off < len) {
		const unsigned char *nl = memchr(buf + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - buf) : len;
		static const char *const need[] = {"prompt", "completion", "source"};
		unsigned char h[SLUICE_B2_LEN];
		char hex[SLUICE_B2_HEX];
		json_error_t jerr;
		json_t *v;

		line++;
		v = json_loadb((const char *)buf + off, end - off, JSON_REJECT_DUPLICATES, &jerr);
		if (!v)
			return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: line %zu: not JSON: %s",
			                         file, line, jerr.text);
		if (!json_is_object(v)) {
			json_decref(v);
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: a replay record must be a JSON object", file, line);
		}
		for (size_t k = 0; k < 3; k++) {
			if (!json_is_string(json_object_get(v, need[k]))) {
				json_decref(v);
				return sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line %zu: field \"%s\" must be a string", file, line,
				        need[k]);
			}
		}
		json_decref(v);
		/* Each record is hashed over its exact bytes, without the newline. */
		sluice__b2(h, buf + off, end - off);
		sluice__hex(hex, h, SLUICE_B2_LEN);
		json_array_append_new(digests, json_string(hex));
		off = end + 1;
	}
	return SLUICE_OK;
}

int sluice_propose_replay(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                          const char *file, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_input_file in = {0};
	unsigned char *buf = NULL;
	json_t *digests = json_array(), *entry, *c;
	char name[256], dest[300];
	const char *slash = strrchr(file, '/');
	size_t len, i;
	build b;
	int error;

	snprintf(name, sizeof(name), "%s", slash ? slash + 1 : file);
	if (strlen(name) > 6 && !strcmp(name + strlen(name) - 6, ".jsonl"))
		name[strlen(name) - 6] = '\0';
	if ((error = check_component_name(ctx, name, "replay batch")) < 0) {
		json_decref(digests);
		return error;
	}
	if ((error = build_start(&b, repo, opts, 1)) < 0)
		goto done;
	json_array_foreach(json_object_get(b.state, "replay"), i, c)
	{
		if (!strcmp(sluice__jstr(json_object_get(c, "name")), name)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "a replay batch named %s is already in the buffer", name);
			goto done;
		}
	}
	if ((error = sluice_io__read_file(ctx, &buf, &len, file, 256u << 20)) < 0 ||
	    (error = check_replay(ctx, digests, buf, len, file)) < 0)
		goto done;
	snprintf(dest, sizeof(dest), "replay/%s.jsonl", name);
	if ((error = sluice_ingest__check_file(ctx, &in, file, "batch.jsonl")) < 0 ||
	    (error = build_store(&b, &entry, &in, dest)) < 0)
		goto done;
	json_array_append_new(json_object_get(b.state, "replay"),
	                      json_pack("{s:s,s:I,s:O,s:o}", "name", name, "count",
	                                (json_int_t)json_array_size(digests), "records", digests,
	                                "file", entry));
	json_object_set_new(b.details, "batch", json_string(name));
	json_object_set_new(b.details, "records",
	                    json_integer((json_int_t)json_array_size(digests)));
	error = build_finish(&b, "replay", opts, id_out, report);
done:
	json_decref(digests);
	free(buf);
	sluice_ingest__dispose_file(&in);
	build_dispose(&b);
	return error;
}

/* ---- remove ------------------------------------------------------------ */

/* Restore memory note `name` as it was in version v (or drop it if absent there). */
static int restore_note(build *b, json_t *memory, const sluice_version *v, const char *name)
{
	json_t *n;
	ssize_t at = find_note(memory, name);
	ssize_t from = find_note(json_object_get(v->state, "memory"), name);
	git_tree_entry *te = NULL;
	char tpath[300], hex[GIT_OID_HEXSZ + 1];

	if (at >= 0)
		json_array_remove(memory, (size_t)at);
	if (from < 0)
		return SLUICE_OK;
	n = json_array_get(json_object_get(v->state, "memory"), (size_t)from);
	snprintf(tpath, sizeof(tpath), "%smemory/%s", SLUICE_TREE_FILES, name);
	if (git_tree_entry_bypath(&te, v->tree, tpath) < 0)
		return sluice_ctx__error(b->repo->ctx, SLUICE_ECORRUPT, "version lacks %s", tpath);
	git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(te));
	git_tree_entry_free(te);
	json_object_set_new(b->blobs,
	                    sluice__jstr(json_object_get(json_object_get(n, "file"), "path")),
	                    json_string(hex));
	json_array_append(memory, n);
	return SLUICE_OK;
}

int sluice_propose_remove(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                          const char *update, const char *channel, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_propose_opts o = *opts;
	sluice_version u = {0}, up = {0};
	sluice_jstate st = {0};
	json_t *dependants = json_array(), *c, *e;
	char head[GIT_OID_HEXSZ + 1], uhex[GIT_OID_HEXSZ + 1];
	const char *kind;
	git_oid cur;
	build b;
	int error, found = 0;
	size_t i;

	memset(&b, 0, sizeof(b));
	if ((error = sluice_journal__read(repo, &st)) < 0)
		goto done;
	c = json_object_get(st.channels, channel ? channel : "");
	if (!json_is_string(json_object_get(c, "head"))) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "channel %s has no head to remove from",
		                          channel ? channel : "(none)");
		goto done;
	}
	snprintf(head, sizeof(head), "%s", json_string_value(json_object_get(c, "head")));
	if ((error = sluice_version__load(repo, &u, update)) < 0)
		goto done;
	git_oid_tostr(uhex, sizeof(uhex), &u.id);
	kind = sluice__jstr(json_object_get(u.update, "kind"));
	/* The update must be in the head's history; what came after it depends on it. */
	git_oid_fromstr(&cur, head);
	for (;;) {
		sluice_version v = {0};
		if (git_oid_equal(&cur, &u.id)) {
			found = 1;
			break;
		}
		if ((error = sluice_version__load_id(repo, &v, &cur)) < 0)
			goto done;
		git_oid_tostr(head, sizeof(head), &cur);
		json_array_insert_new(dependants, 0,
		                      json_pack("{s:s,s:O,s:O}", "version", head, "kind",
		                                json_object_get(v.update, "kind"), "summary",
		                                json_object_get(v.update, "summary")));
		if (git_commit_parentcount(v.commit) == 0) {
			sluice_version__dispose(&v);
			break;
		}
		cur = *git_commit_parent_id(v.commit, 0);
		sluice_version__dispose(&v);
	}
	snprintf(head, sizeof(head), "%s", json_string_value(json_object_get(c, "head")));
	if (!found) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%.12s is not in the history of %s's head %.12s", uhex,
		                          channel, head);
		goto done;
	}
	if (!strcmp(kind, "base") || !strcmp(kind, "remove")) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%.12s is a %s update, which cannot be removed (propose "
		                          "another base, or remove the original update)",
		                          uhex, kind);
		goto done;
	}
	o.onto = head;
	if ((error = build_start(&b, repo, &o, 1)) < 0)
		goto done;
	if (!strcmp(kind, "lora")) {
		const char *name = sluice__jstr(
		        json_object_get(json_object_get(u.update, "details"), "adapter"));
		json_t *adapters = json_object_get(b.state, "adapters");
		for (i = 0; i < json_array_size(adapters); i++)
			if (!strcmp(sluice__jstr(
			                    json_object_get(json_array_get(adapters, i), "name")),
			            name))
				break;
		if (i == json_array_size(adapters)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "adapter %s of %.12s is no longer in %s's stack",
			                          name, uhex, channel);
			goto done;
		}
		json_array_remove(adapters, i);
	} else if (!strcmp(kind, "replay")) {
		const char *name = sluice__jstr(
		        json_object_get(json_object_get(u.update, "details"), "batch"));
		json_t *replay = json_object_get(b.state, "replay");
		for (i = 0; i < json_array_size(replay); i++)
			if (!strcmp(sluice__jstr(
			                    json_object_get(json_array_get(replay, i), "name")),
			            name))
				break;
		if (i == json_array_size(replay)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "replay batch %s of %.12s is no longer in %s's buffer", name, uhex,
			        channel);
			goto done;
		}
		json_array_remove(replay, i);
	} else if (!strcmp(kind, "memory")) {
		json_t *edits = json_object_get(json_object_get(u.update, "details"), "edits");
		git_oid pid;
		if (git_commit_parentcount(u.commit) == 0) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "memory update without a parent");
			goto done;
		}
		pid = *git_commit_parent_id(u.commit, 0);
		if ((error = sluice_version__load_id(repo, &up, &pid)) < 0)
			goto done;
		/* Undo each note the update touched: back to what its parent had. */
		json_array_foreach(edits, i, e)
		{
			if ((error = restore_note(&b, json_object_get(b.state, "memory"), &up,
			                          sluice__jstr(json_object_get(e, "name")))) < 0)
				goto done;
		}
	} else {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%.12s has unknown kind '%s'", uhex,
		                          kind);
		goto done;
	}
	json_object_set_new(b.details, "removed", json_string(uhex));
	json_object_set_new(b.details, "removed_kind", json_string(kind));
	json_object_set_new(b.details, "channel", json_string(channel));
	json_object_set(b.details, "dependants", dependants);
	if (!o.message)
		o.message = "remove an update";
	error = build_finish(&b, "remove", &o, id_out, report);
done:
	json_decref(dependants);
	sluice_version__dispose(&u);
	sluice_version__dispose(&up);
	sluice_journal__dispose(&st);
	build_dispose(&b);
	return error;
}

int sluice_version__state_digest(sluice_repo *repo, const sluice_version *v, char out[65])
{
	sluice_buf b = {0};
	unsigned char h[SLUICE_B2_LEN];
	int error = sluice_repo__read_blob(repo, &b, &v->state_blob, "state.json");

	if (error == 0) {
		sluice__b2(h, b.ptr, b.len);
		sluice__hex(out, h, SLUICE_B2_LEN);
	}
	sluice_buf__dispose(&b);
	return error;
}
