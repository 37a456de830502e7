/*
 * audit/attest.c - a version's attestations: SLSA provenance v1 for the
 * version, signed now, and the gate verdicts the journal holds for it,
 * re-emitted as their runners signed them (docs/audit-attest.md).
 *
 * The provenance is what the proposer declared in update.json: sluice
 * did not run the training and cannot vouch for it. The statement says so
 * through its buildType, whose documentation is docs/audit-attest.md.
 */
#include "dsse.h"
#include "version.h"

#include "sluice/audit_attest.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLSA_PROVENANCE_V1 "https://slsa.dev/provenance/v1"
#define ATTEST_BUILD_TYPE "https://sluice.invalid/attest/declared-proposal/v1"
#define ATTEST_BUILDER "https://sluice.invalid/proposer/"

/* One file of the version, hashed. */
typedef struct {
	char *name;
	char sha256[65];
	char b2[SLUICE_B2_HEX];
} attest_file;

struct hashing {
	sluice_repo *repo;
	sluice_version *v;
	attest_file *files;
	size_t n, cap;
};

/*
 * sha256 and BLAKE2b-256 of a file of the version, over its exact bytes:
 * an inline blob as stored, a chunked file chunk by chunk in manifest
 * order (as checkout materialises it). The BLAKE2b-256 must equal
 * state.json's, so a sha256 is never issued for bytes the version does
 * not name.
 */
static int hash_file(void *data, json_t *f)
{
	struct hashing *h = data;
	sluice_repo *repo = h->repo;
	sluice_ctx *ctx = repo->ctx;
	const char *path = sluice__jstr(json_object_get(f, "path"));
	const char *want = sluice__jstr(json_object_get(f, "blake2b"));
	uint64_t size = (uint64_t)json_integer_value(json_object_get(f, "size"));
	int chunked = !strcmp(sluice__jstr(json_object_get(f, "storage")), "chunks");
	crypto_hash_sha256_state sha;
	crypto_generichash_state b2;
	unsigned char d256[crypto_hash_sha256_BYTES], db2[SLUICE_B2_LEN];
	git_tree_entry *te = NULL;
	sluice_buf blob = {0}, chunk = {0};
	sluice_manifest m = {0};
	sluice_chunkstore *cs;
	attest_file *af;
	char tpath[4200];
	uint64_t got = 0;
	int error;

	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if ((error = git_tree_entry_bypath(&te, h->v->tree, tpath)) < 0) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT, "version tree lacks %s", tpath);
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, &blob, git_tree_entry_id(te), tpath)) < 0)
		goto done;
	crypto_hash_sha256_init(&sha);
	crypto_generichash_init(&b2, NULL, 0, SLUICE_B2_LEN);
	if (!chunked) {
		crypto_hash_sha256_update(&sha, blob.ptr, blob.len);
		crypto_generichash_update(&b2, blob.ptr, blob.len);
		got = blob.len;
	} else {
		if ((error = sluice_manifest__parse(ctx, &m, blob.ptr, blob.len, tpath)) < 0 ||
		    (error = sluice_repo__chunks(repo, &cs)) < 0)
			goto done;
		for (size_t i = 0; i < m.nchunks; i++) {
			/* get verifies the chunk's bytes against its id. */
			if ((error = sluice_chunkstore__get(cs, m.chunks[i].id, &chunk)) < 0)
				goto done;
			if (chunk.len != m.chunks[i].len) {
				error = sluice_ctx__error(
				        ctx, SLUICE_ECORRUPT,
				        "%s: chunk %zu is %zu bytes, the manifest "
				        "says %llu",
				        path, i, chunk.len, (unsigned long long)m.chunks[i].len);
				goto done;
			}
			crypto_hash_sha256_update(&sha, chunk.ptr, chunk.len);
			crypto_generichash_update(&b2, chunk.ptr, chunk.len);
			got += chunk.len;
		}
	}
	crypto_hash_sha256_final(&sha, d256);
	crypto_generichash_final(&b2, db2, SLUICE_B2_LEN);
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16, bytes;
		attest_file *nf;
		if (sluice__mul_ovf(&bytes, cap, sizeof(*nf)) < 0 ||
		    !(nf = sluice__realloc(ctx, h->files, bytes))) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "too many files to attest");
			goto done;
		}
		h->files = nf;
		h->cap = cap;
	}
	af = &h->files[h->n];
	memset(af, 0, sizeof(*af));
	sluice__hex(af->sha256, d256, sizeof(d256));
	sluice__hex(af->b2, db2, SLUICE_B2_LEN);
	if (got != size || strcmp(af->b2, want)) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "%s: stored bytes do not match state.json's size and "
		                          "digest",
		                          path);
		goto done;
	}
	if (!(af->name = sluice__strdup(ctx, path))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	h->n++;
done:
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&chunk);
	sluice_buf__dispose(&blob);
	git_tree_entry_free(te);
	return error;
}

/* A resource descriptor's digest set for a declared "[ALG:]HEX" source digest. */
static json_t *source_digest(const char *declared)
{
	const char *colon = strchr(declared, ':');

	json_t *d = json_object();

	/* Without an algorithm the proposer did not say which: sluice does not guess. */
	if (d && !colon)
		json_object_set_new(d, "unspecified", json_string(declared));
	else if (d)
		json_object_setn_new(d, declared, (size_t)(colon - declared),
		                     json_string(colon + 1));
	return d;
}

/* What the journal holds about one version: its propose record and its gate verdicts. */
struct journal_scan {
	const char *version;
	json_t *propose;  /* the propose record, with "entry" added */
	json_t *verdicts; /* [{entry, channel, envelope}] in journal order */
};

static int scan_journal(sluice_repo *repo, struct journal_scan *js)
{
	sluice_ctx *ctx = repo->ctx;
	git_revwalk *walk = NULL;
	json_t *rec = NULL;
	git_oid id;
	int error;

	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_push_ref(walk, SLUICE_JOURNAL_REF)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot walk the journal");
		goto done;
	}
	/* The journal's own entries; second parents are versions brought in. */
	git_revwalk_simplify_first_parent(walk);
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		const char *action;
		char hex[GIT_OID_HEXSZ + 1];

		if ((error = sluice_journal__record(repo, &rec, &id)) < 0)
			goto done;
		git_oid_tostr(hex, sizeof(hex), &id);
		action = sluice__jstr(json_object_get(rec, "action"));
		if (!strcmp(action, "propose") &&
		    !strcmp(sluice__jstr(json_object_get(rec, "version")), js->version) &&
		    !js->propose) {
			js->propose = rec;
			json_object_set_new(rec, "entry", json_string(hex));
			rec = NULL;
		} else if (!strcmp(action, "gate") &&
		           !strcmp(sluice__jstr(json_object_get(rec, "candidate")), js->version) &&
		           json_is_object(json_object_get(rec, "envelope"))) {
			json_array_append_new(js->verdicts,
			                      json_pack("{s:s,s:O,s:O}", "entry", hex, "channel",
			                                json_object_get(rec, "channel"), "envelope",
			                                json_object_get(rec, "envelope")));
		}
		json_decref(rec);
		rec = NULL;
	}
	if (error == GIT_ITEROVER)
		error = SLUICE_OK;
	else
		error = sluice_ctx__giterror(ctx, error, "cannot walk the journal");
done:
	json_decref(rec);
	git_revwalk_free(walk);
	return error;
}

/* The SLSA v1 predicate (https://slsa.dev/provenance/v1) of a version. */
static json_t *provenance_predicate(const sluice_version *v, const char *vhex, const char *sdig,
                                    json_t *propose)
{
	json_t *update = v->update, *prov = json_object_get(update, "provenance");
	json_t *ext, *deps = json_array(), *src, *meta, *pred;
	const char *parent = json_string_value(json_object_get(update, "parent"));
	const char *fp =
	        sluice__jstr(json_object_get(json_object_get(update, "proposer"), "fingerprint"));
	char builder[256];
	size_t i, k = 0;

	/* A fingerprint's base64 may hold '/' and '+': percent-encode them for the URI. */
	k = (size_t)snprintf(builder, sizeof(builder), "%s", ATTEST_BUILDER);
	for (i = 0; fp[i] && k + 4 < sizeof(builder); i++) {
		if (fp[i] == '/' || fp[i] == '+') {
			memcpy(builder + k, fp[i] == '/' ? "%2F" : "%2B", 3);
			k += 3;
		} else {
			builder[k++] = fp[i];
		}
	}
	builder[k] = '\0';
	ext = json_pack("{s:O,s:O,s:O,s:O?,s:O?,s:O?,s:s?,s:O}", "kind",
	                json_object_get(update, "kind"), "message",
	                json_object_get(update, "summary"), "sources",
	                json_object_get(prov, "sources"), "method", json_object_get(prov, "method"),
	                "code_revision", json_object_get(prov, "code_revision"), "target_suite",
	                json_object_get(update, "target_suite"), "parent", parent, "proposer",
	                json_object_get(update, "proposer"));
	if (parent)
		json_array_append_new(deps, json_pack("{s:s+,s:{s:s}}", "uri", "sluice:version/",
		                                      parent, "digest", "gitCommit", parent));
	json_array_foreach(json_object_get(prov, "sources"), i, src) json_array_append_new(
	        deps, json_pack("{s:s+,s:s,s:o}", "uri", "sluice:source/",
	                        sluice__jstr(json_object_get(src, "name")), "name",
	                        sluice__jstr(json_object_get(src, "name")), "digest",
	                        source_digest(sluice__jstr(json_object_get(src, "digest")))));
	meta = json_pack("{s:s+}", "invocationId", "sluice:journal/",
	                 propose ? sluice__jstr(json_object_get(propose, "entry")) : vhex);
	if (json_is_string(json_object_get(update, "created")))
		json_object_set(meta, "startedOn", json_object_get(update, "created"));
	if (propose && json_is_string(json_object_get(propose, "time")))
		json_object_set(meta, "finishedOn", json_object_get(propose, "time"));
	pred = json_pack("{s:{s:s,s:o,s:{s:s,s:s,s:O?,s:s},s:o},s:{s:{s:s},s:o}}",
	                 "buildDefinition", "buildType", ATTEST_BUILD_TYPE, "externalParameters",
	                 ext, "internalParameters", "version", vhex, "state_blake2b256", sdig,
	                 "details", json_object_get(update, "details"), "declared_by",
	                 sluice__jstr(json_object_get(prov, "declared_by")), "resolvedDependencies",
	                 deps, "runDetails", "builder", "id", builder, "metadata", meta);
	return pred;
}

/* Write one envelope file and add its listing entry. */
static int emit(sluice_ctx *ctx, const char *dir, const char *name, const sluice_buf *env,
                json_t *files, json_t *entry)
{
	char path[4200], hex[65];
	unsigned char h[crypto_hash_sha256_BYTES];
	int error;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		json_decref(entry);
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s/%s", dir, name);
	}
	if ((error = sluice_io__write_file_atomic(ctx, path, env->ptr, env->len, 0644)) < 0) {
		json_decref(entry);
		return error;
	}
	crypto_hash_sha256(h, env->ptr, env->len);
	sluice__hex(hex, h, sizeof(h));
	json_object_set_new(entry, "file", json_string(name));
	json_object_set_new(entry, "sha256", json_string(hex));
	json_array_append_new(files, entry);
	return SLUICE_OK;
}

/*
 * A journaled verdict envelope: it must verify under the registered key
 * whose fingerprint is its keyid; then its canonical text (compact,
 * sorted keys: what sluice_dsse__sign wrote) is what the runner signed.
 */
static int check_verdict(sluice_repo *repo, json_t *registry, json_t *v, sluice_buf *out,
                         char **ptype)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_dsse_envelope e = {0};
	json_t *entry;
	unsigned char pk[32];
	const char *pub, *name;
	char *text = NULL;
	int error;

	if ((error = sluice_repo__dump(ctx, &text, json_object_get(v, "envelope"))) < 0)
		return error;
	if ((error = sluice_dsse__parse(ctx, &e, text, strlen(text))) < 0)
		goto done;
	entry = sluice_trust__by_fp(registry, e.sigs[0].keyid, &name);
	pub = entry ? json_string_value(json_object_get(entry, "public_key")) : NULL;
	if (!pub) {
		error = sluice_ctx__error(
		        ctx, SLUICE_ECORRUPT,
		        "verdict of journal entry %s: keyid %s is not a registered "
		        "key",
		        sluice__jstr(json_object_get(v, "entry")), e.sigs[0].keyid);
		goto done;
	}
	if ((error = sluice_keys__parse_openssh_pub(ctx, pk, pub, strlen(pub))) < 0 ||
	    (error = sluice_dsse__verify(ctx, &e, pk)) < 0 ||
	    (error = sluice_statement__check(ctx, e.payload, e.payload_len, ptype)) < 0) {
		error = sluice_ctx__wrap(ctx, SLUICE_ECORRUPT, "verdict of journal entry %s",
		                         sluice__jstr(json_object_get(v, "entry")));
		goto done;
	}
	out->len = 0;
	error = sluice_buf__puts(ctx, out, text);
done:
	free(text);
	sluice_dsse__dispose(&e);
	return error;
}

int sluice_attest(sluice_repo *repo, const char *ref, const char *keyname, const char *dir,
                  char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_version v = {0};
	sluice_key key = {0};
	sluice_jstate st = {0};
	struct hashing h = {0};
	struct journal_scan js = {NULL, NULL, json_array()};
	sluice_subject *subj = NULL;
	sluice_buf stmt = {0}, env = {0};
	json_t *pred = NULL, *files = json_array(), *vd;
	char vhex[GIT_OID_HEXSZ + 1], sdig[65], fp[SLUICE_FP_LEN], *ptext = NULL;
	size_t i;
	int have_key = 0, error;

	if (!files || !js.verdicts) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	if ((error = sluice_version__load(repo, &v, ref)) < 0)
		goto done;
	git_oid_tostr(vhex, sizeof(vhex), &v.id);
	if ((error = sluice_repo__signing_key(repo, &key, keyname, NULL)) < 0)
		goto done;
	have_key = 1;
	/* In good standing now: registered, not revoked, not expired. */
	if ((error = sluice_journal__read(repo, &st)) < 0 ||
	    (error = sluice_journal__check_role(repo, &st, &key, NULL)) < 0)
		goto done;
	sluice_keys__fingerprint(fp, key.pk);
	h.repo = repo;
	h.v = &v;
	if ((error = sluice_version__each_file(v.state, hash_file, &h)) < 0 ||
	    (error = sluice_version__state_digest(repo, &v, sdig)) < 0)
		goto done;
	if (h.n == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "version %s has no files: a statement needs a subject",
		                          vhex);
		goto done;
	}
	if (!(subj = sluice__calloc(ctx, h.n, sizeof(*subj)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < h.n; i++)
		subj[i] = (sluice_subject){h.files[i].name, h.files[i].sha256, h.files[i].b2};
	js.version = vhex;
	if ((error = scan_journal(repo, &js)) < 0)
		goto done;
	if (!(pred = provenance_predicate(&v, vhex, sdig, js.propose)) ||
	    !(ptext = json_dumps(pred, JSON_COMPACT | JSON_SORT_KEYS))) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build the provenance");
		goto done;
	}
	if ((error = sluice_io__mkdirs(ctx, dir, 0755)) < 0 ||
	    (error = sluice_statement__build(ctx, &stmt, subj, h.n, SLSA_PROVENANCE_V1, ptext)) <
	            0 ||
	    (error = sluice_dsse__sign(ctx, &env, &key, SLUICE_INTOTO_PAYLOAD_TYPE, stmt.ptr,
	                               stmt.len)) < 0 ||
	    (error = emit(ctx, dir, "provenance.intoto.json", &env, files,
	                  json_pack("{s:s,s:s,s:s}", "kind", "provenance", "predicateType",
	                            SLSA_PROVENANCE_V1, "keyid", fp))) < 0)
		goto done;
	json_array_foreach(js.verdicts, i, vd)
	{
		const char *channel = sluice__jstr(json_object_get(vd, "channel"));
		const char *entry = sluice__jstr(json_object_get(vd, "entry"));
		char name[256], *ptype = NULL;
		json_t *row;

		/* Channel names are safe file name parts (sluice_channel__name_ok). */
		if (!sluice_channel__name_ok(channel)) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "journal entry %s names channel '%.64s', not a "
			                          "valid channel name",
			                          entry, channel);
			goto done;
		}
		snprintf(name, sizeof(name), "verdict-%s-%s.intoto.json", channel, entry);
		if ((error = check_verdict(repo, st.keys, vd, &env, &ptype)) < 0)
			goto done;
		row = json_pack(
		        "{s:s,s:s,s:s,s:s,s:O}", "kind", "verdict", "predicateType", ptype,
		        "channel", channel, "entry", entry, "keyid",
		        json_object_get(
		                json_array_get(json_object_get(json_object_get(vd, "envelope"),
		                                               "signatures"),
		                               0),
		                "keyid"));
		free(ptype);
		if ((error = emit(ctx, dir, name, &env, files, row)) < 0)
			goto done;
	}
	error = sluice_repo__report(ctx, report,
	                            json_pack("{s:s,s:s,s:s,s:O,s:I}", "version", vhex, "directory",
	                                      dir, "key", key.name, "files", files, "subjects",
	                                      (json_int_t)h.n));
done:
	for (i = 0; i < h.n; i++)
		free(h.files[i].name);
	free(h.files);
	free(subj);
	free(ptext);
	json_decref(pred);
	json_decref(files);
	json_decref(js.propose);
	json_decref(js.verdicts);
	sluice_buf__dispose(&stmt);
	sluice_buf__dispose(&env);
	sluice_journal__dispose(&st);
	if (have_key)
		sluice_key__dispose(&key);
	sluice_version__dispose(&v);
	return error;
}
