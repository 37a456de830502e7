/*
 * audit/tlog_journal.c - the journal's Merkle tree: canonical entry
 * encodings, the tlog.json and checkpoint every journal commit carries, the
 * derived leaf index (sluice/tlog-index) and the audit queries built on
 * them. Formats: docs/audit-tlog.md.
 */
#include "tlog.h"
#include "sluice/audit_tlog.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TLOG_FILE "tlog.json"
#define CHECKPOINT_FILE "checkpoint"
#define ORIGIN_PREFIX "sluice.journal/"
#define ORIGIN_LEN SLUICE_TLOG_ORIGIN_LEN
#define INDEX_FORMAT "sluice-tlog-index-1"
/* U+2014 EM DASH, which starts every signed-note signature line. */
#define NOTE_DASH "\xe2\x80\x94 "
#define B64_HASH sodium_base64_ENCODED_LEN(SLUICE_TLOG_HASH, sodium_base64_VARIANT_ORIGINAL)

static void b64(char *out, size_t cap, const unsigned char *in, size_t len)
{
	sodium_bin2base64(out, cap, in, len, sodium_base64_VARIANT_ORIGINAL);
}

/* Exactly len bytes of standard base64 (with padding); -1 otherwise. */
static int unb64(unsigned char *out, size_t len, const char *s, size_t slen)
{
	size_t got = 0;
	const char *end = NULL;

	if (sodium_base642bin(out, len, s, slen, NULL, &got, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != len || end != s + slen)
		return -1;
	return 0;
}

/* ---- canonical encoding --------------------------------------------------- */

/* The encoding, and (record may be NULL) the parsed record.json (new reference). */
static int encode_entries(sluice_repo *repo, sluice_buf *out, uint64_t *seq, json_t **record,
                          const git_tree_entry *const *ents, size_t n, const git_oid *parent)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *state = json_object(), *rec = NULL, *doc = NULL, *jseq;
	sluice_buf blob = {0};
	char hex[GIT_OID_HEXSZ + 1], *text = NULL;
	size_t i;
	int error = SLUICE_OK;

	if (!state)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode a journal entry");
	for (i = 0; i < n; i++) {
		const git_tree_entry *te = ents[i];
		const char *name = git_tree_entry_name(te);
		json_t *s;

		/* The tree after the entry is not part of the entry: no cycle. */
		if (!strcmp(name, CHECKPOINT_FILE) || !strcmp(name, TLOG_FILE))
			continue;
		git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(te));
		if (!(s = json_string(hex)) || json_object_set_new(state, name, s) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "journal tree entry \"%s\" is not a UTF-8 name",
			                          name);
			goto done;
		}
		if (!strcmp(name, "record.json")) {
			if ((error = sluice_repo__read_blob(repo, &blob, git_tree_entry_id(te),
			                                    "journal record.json")) < 0 ||
			    (error = sluice_repo__parse_json(ctx, &rec, blob.ptr, blob.len,
			                                     "journal record.json")) < 0)
				goto done;
		}
	}
	jseq = json_object_get(rec, "seq");
	if (!rec || !json_is_integer(jseq) || json_integer_value(jseq) < 1) {
		error = sluice_ctx__error(
		        ctx, SLUICE_ECORRUPT,
		        "journal entry has no record.json with a positive \"seq\"");
		goto done;
	}
	*seq = (uint64_t)json_integer_value(jseq);
	if (parent)
		git_oid_tostr(hex, sizeof(hex), parent);
	doc = json_pack("{s:i, s:O, s:o, s:O, s:O}", "format", 1, "seq", jseq, "parent",
	                parent ? json_string(hex) : json_null(), "record", rec, "state", state);
	if (!doc || !(text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII))) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode a journal entry");
		goto done;
	}
	if ((error = sluice_buf__puts(ctx, out, text)) == 0 && record)
		*record = json_incref(rec);
done:
	free(text);
	json_decref(doc);
	json_decref(rec);
	json_decref(state);
	sluice_buf__dispose(&blob);
	return error;
}

/* The encoding of a tree's entries, and (record may be NULL) its record (new reference). */
static int encode(sluice_repo *repo, sluice_buf *out, uint64_t *seq, json_t **record,
                  const git_tree *tree, const git_oid *parent)
{
	size_t i, n = git_tree_entrycount(tree);
	const git_tree_entry **ents = NULL;
	int error;

	if (n && !(ents = sluice__calloc(repo->ctx, n, sizeof(*ents))))
		return SLUICE_ENOMEM;
	for (i = 0; i < n; i++)
		ents[i] = git_tree_entry_byindex(tree, i);
	error = encode_entries(repo, out, seq, record, ents, n, parent);
	free(ents);
	return error;
}

int sluice_tlog__encode_tree(sluice_repo *repo, sluice_buf *out, uint64_t *seq,
                             const git_tree *tree, const git_oid *parent)
{
	return encode(repo, out, seq, NULL, tree, parent);
}

/* The entries of a tree builder (valid until it changes), collected by git_treebuilder_filter. */
typedef struct {
	const git_tree_entry *e[64];
	size_t n, dropped;
} tb_entries;

static int collect_entry(const git_tree_entry *entry, void *payload)
{
	tb_entries *c = payload;

	if (c->n < sizeof(c->e) / sizeof(c->e[0]))
		c->e[c->n++] = entry;
	else
		c->dropped++;
	return 0; /* keep it */
}

int sluice_tlog__encode_entry(sluice_repo *repo, sluice_buf *out, uint64_t *seq,
                              const git_oid *entry)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	if ((error = git_commit_lookup(&c, repo->git, entry)) < 0 ||
	    (error = git_commit_tree(&t, c)) < 0) {
		git_oid_tostr(hex, sizeof(hex), entry);
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read journal entry %s", hex);
		goto done;
	}
	error = sluice_tlog__encode_tree(
	        repo, out, seq, t, git_commit_parentcount(c) ? git_commit_parent_id(c, 0) : NULL);
	if (error < 0) {
		git_oid_tostr(hex, sizeof(hex), entry);
		error = sluice_ctx__wrap(repo->ctx, error, "journal entry %.12s", hex);
	}
done:
	git_tree_free(t);
	git_commit_free(c);
	return error;
}

/* The leaf hash of a journal commit, and its seq. */
static int entry_leaf(sluice_repo *repo, sluice_tlog_hash out, uint64_t *seq, const git_oid *entry)
{
	sluice_buf enc = {0};
	int error = sluice_tlog__encode_entry(repo, &enc, seq, entry);

	if (error == 0)
		sluice_tlog__leaf_hash(out, enc.ptr, enc.len);
	sluice_buf__dispose(&enc);
	return error;
}

/* ---- the first-parent chain ----------------------------------------------- */

/*
 * The journal entries from the first up to head, oldest first, stopping
 * early (exclusive) at stop when it is met walking back (*met = 1).
 */
static int chain(sluice_repo *repo, git_oid **out, size_t *n, const git_oid *head,
                 const git_oid *stop, int *met)
{
	git_oid *ids = NULL, cur = *head;
	size_t len = 0, cap = 0;
	int error = SLUICE_OK;

	if (met)
		*met = 0;
	for (;;) {
		git_commit *c = NULL;

		if (stop && git_oid_equal(&cur, stop)) {
			*met = 1;
			break;
		}
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 256, bytes;
			git_oid *p;

			if (sluice__mul_ovf(&bytes, ncap, sizeof(*ids)) < 0 ||
			    !(p = sluice__realloc(repo->ctx, ids, bytes))) {
				error = SLUICE_ENOMEM;
				goto done;
			}
			ids = p;
			cap = ncap;
		}
		ids[len++] = cur;
		if ((error = git_commit_lookup(&c, repo->git, &cur)) < 0) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &cur);
			error = sluice_ctx__giterror(repo->ctx, error,
			                             "cannot read journal entry %s", hex);
			goto done;
		}
		if (!git_commit_parentcount(c)) {
			git_commit_free(c);
			break;
		}
		cur = *git_commit_parent_id(c, 0);
		git_commit_free(c);
	}
	for (size_t i = 0; i < len / 2; i++) {
		git_oid t = ids[i];
		ids[i] = ids[len - 1 - i];
		ids[len - 1 - i] = t;
	}
	*out = ids;
	*n = len;
	ids = NULL;
done:
	free(ids);
	return error;
}

/* ---- tlog.json ------------------------------------------------------------ */

/* A tree entry's blob; *found = 0 when the tree has no such entry. */
static int commit_file(sluice_repo *repo, sluice_buf *out, int *found, const git_oid *entry,
                       const char *file)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	const git_tree_entry *te;
	char hex[GIT_OID_HEXSZ + 1], what[128];
	int error;

	*found = 0;
	git_oid_tostr(hex, sizeof(hex), entry);
	snprintf(what, sizeof(what), "journal entry %.12s: %s", hex, file);
	if ((error = git_commit_lookup(&c, repo->git, entry)) < 0 ||
	    (error = git_commit_tree(&t, c)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read %s", what);
		goto done;
	}
	if ((te = git_tree_entry_byname(t, file)) != NULL) {
		if ((error = sluice_repo__read_blob(repo, out, git_tree_entry_id(te), what)) < 0)
			goto done;
		*found = 1;
	}
done:
	git_tree_free(t);
	git_commit_free(c);
	return error;
}

static unsigned popcount64(uint64_t v)
{
	unsigned n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

int sluice_tlog__parse_tlog(sluice_ctx *ctx, sluice_tlog_frontier *f,
                            char origin[SLUICE_TLOG_ORIGIN_LEN + 1], const void *data, size_t len,
                            const char *what)
{
	json_t *doc = NULL, *fr, *v;
	const char *o;
	size_t i;
	int error;

	sluice_tlog__frontier_init(f);
	if ((error = sluice_repo__parse_json(ctx, &doc, data, len, what)) < 0)
		return SLUICE_ECORRUPT;
	fr = json_object_get(doc, "frontier");
	o = json_string_value(json_object_get(doc, "origin"));
	v = json_object_get(doc, "size");
	if (json_integer_value(json_object_get(doc, "format")) != 1 || !json_is_integer(v) ||
	    json_integer_value(v) < 1 || !json_is_array(fr) || !o || strlen(o) != ORIGIN_LEN ||
	    strncmp(o, ORIGIN_PREFIX, sizeof(ORIGIN_PREFIX) - 1) || json_object_size(doc) != 4) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "%s: not {\"format\":1,\"frontier\",\"origin\",\"size\"}",
		                          what);
		goto done;
	}
	f->size = (uint64_t)json_integer_value(v);
	if (json_array_size(fr) != popcount64(f->size)) {
		error = sluice_ctx__error(
		        ctx, SLUICE_ECORRUPT,
		        "%s: a tree of %llu entries has %u frontier hashes, not %zu", what,
		        (unsigned long long)f->size, popcount64(f->size), json_array_size(fr));
		goto done;
	}
	json_array_foreach(fr, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || unb64(f->h[i], SLUICE_TLOG_HASH, s, strlen(s)) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "%s: frontier[%zu] is not a base64 SHA-256", what,
			                          i);
			goto done;
		}
	}
	f->count = (unsigned)json_array_size(fr);
	memcpy(origin, o, ORIGIN_LEN + 1);
done:
	json_decref(doc);
	return error;
}

static int tlog_text(sluice_ctx *ctx, sluice_buf *out, const sluice_tlog_frontier *f,
                     const char *origin)
{
	char h[B64_HASH];
	int error;

	if ((error = sluice_buf__puts(ctx, out, "{\"format\":1,\"frontier\":[")) < 0)
		return error;
	for (unsigned i = 0; i < f->count; i++) {
		b64(h, sizeof(h), f->h[i], SLUICE_TLOG_HASH);
		if ((error = sluice_buf__printf(ctx, out, "%s\"%s\"", i ? "," : "", h)) < 0)
			return error;
	}
	return sluice_buf__printf(ctx, out, "],\"origin\":\"%s\",\"size\":%llu}\n", origin,
	                          (unsigned long long)f->size);
}

/*
 * The tree after journal entry head: its tlog.json, or, for entries written
 * before tlog.json existed, recomputed from the newest entry that has one
 * (or from the first entry).
 */
static int frontier_at(sluice_repo *repo, sluice_tlog_frontier *f, char origin[ORIGIN_LEN + 1],
                       const git_oid *head)
{
	sluice_buf text = {0};
	git_oid cur = *head, *ids = NULL;
	size_t n = 0, i;
	int found = 0, error;

	sluice_tlog__frontier_init(f);
	origin[0] = '\0';
	/* Walk back to the newest entry that carries its tree. */
	for (;;) {
		git_commit *c = NULL;

		if ((error = commit_file(repo, &text, &found, &cur, TLOG_FILE)) < 0)
			goto done;
		if (found)
			break;
		if ((error = git_commit_lookup(&c, repo->git, &cur)) < 0) {
			error = sluice_ctx__giterror(repo->ctx, error, "cannot read the journal");
			goto done;
		}
		if (!git_commit_parentcount(c)) {
			git_commit_free(c);
			break;
		}
		cur = *git_commit_parent_id(c, 0);
		git_commit_free(c);
	}
	if (found) {
		char hex[GIT_OID_HEXSZ + 1], what[128];

		git_oid_tostr(hex, sizeof(hex), &cur);
		snprintf(what, sizeof(what), "journal entry %.12s: %s", hex, TLOG_FILE);
		if ((error = sluice_tlog__parse_tlog(repo->ctx, f, origin, text.ptr, text.len,
		                                     what)) < 0)
			goto done;
		if (git_oid_equal(&cur, head))
			goto done;
	}
	if ((error = chain(repo, &ids, &n, head, found ? &cur : NULL, NULL)) < 0)
		goto done;
	for (i = 0; i < n; i++) {
		sluice_tlog_hash leaf;
		uint64_t seq;

		if ((error = entry_leaf(repo, leaf, &seq, &ids[i])) < 0 ||
		    (error = sluice_tlog__frontier_append(f, leaf)) < 0)
			goto done;
		if (f->size == 1) {
			char hex[2 * SLUICE_TLOG_HASH + 1];
			sluice__hex(hex, leaf, SLUICE_TLOG_HASH);
			snprintf(origin, ORIGIN_LEN + 1, "%s%.32s", ORIGIN_PREFIX, hex);
		}
	}
done:
	free(ids);
	sluice_buf__dispose(&text);
	return error;
}

/* ---- checkpoints ---------------------------------------------------------- */

void sluice_tlog__key_id(unsigned char out[4], const char *name, const unsigned char pk[32])
{
	crypto_hash_sha256_state s;
	unsigned char h[crypto_hash_sha256_BYTES], alg = 0x01;

	crypto_hash_sha256_init(&s);
	crypto_hash_sha256_update(&s, (const unsigned char *)name, strlen(name));
	crypto_hash_sha256_update(&s, (const unsigned char *)"\n", 1);
	crypto_hash_sha256_update(&s, &alg, 1);
	crypto_hash_sha256_update(&s, pk, 32);
	crypto_hash_sha256_final(&s, h);
	memcpy(out, h, 4);
}

int sluice_tlog__checkpoint_body(sluice_ctx *ctx, sluice_buf *out, const char *origin,
                                 uint64_t size, const sluice_tlog_hash root)
{
	char r[B64_HASH];

	b64(r, sizeof(r), root, SLUICE_TLOG_HASH);
	return sluice_buf__printf(ctx, out, "%s\n%llu\n%s\n", origin, (unsigned long long)size, r);
}

static int put_blob(sluice_repo *repo, git_treebuilder *tb, const char *name, const sluice_buf *b)
{
	git_oid id;
	int error;

	if ((error = git_blob_create_from_buffer(&id, repo->git, b->ptr, b->len)) < 0 ||
	    (error = git_treebuilder_insert(NULL, tb, name, &id, GIT_FILEMODE_BLOB)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot write journal %s", name);
	return SLUICE_OK;
}

int sluice_tlog__journal_add(sluice_repo *repo, git_treebuilder *tb, const sluice_jstate *st,
                             const sluice_key *signer, json_t *registry)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_tlog_frontier f;
	sluice_tlog_hash leaf, root;
	sluice_buf enc = {0}, note = {0}, tl = {0};
	tb_entries ents;
	unsigned char sigblob[4 + crypto_sign_BYTES];
	char origin[ORIGIN_LEN + 1], fp[SLUICE_FP_LEN],
	        sig64[sodium_base64_ENCODED_LEN(sizeof(sigblob), sodium_base64_VARIANT_ORIGINAL)];
	const char *name = NULL;
	uint64_t seq;
	int error;

	if (!signer->has_secret)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "key %s has no secret half",
		                         signer->name);
	/*
	 * The entry is its tree without the tree after it, read from the
	 * builder (no intermediate tree object is written).
	 */
	git_treebuilder_remove(tb, TLOG_FILE);
	git_treebuilder_remove(tb, CHECKPOINT_FILE);
	memset(&ents, 0, sizeof(ents));
	if ((error = git_treebuilder_filter(tb, collect_entry, &ents)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot read the journal tree");
		goto done;
	}
	if (ents.dropped) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "a journal tree of %zu entries",
		                          ents.n + ents.dropped);
		goto done;
	}
	if ((error = encode_entries(repo, &enc, &seq, NULL, ents.e, ents.n,
	                            st->exists ? &st->head : NULL)) < 0)
		goto done;
	sluice_tlog__leaf_hash(leaf, enc.ptr, enc.len);
	if (st->exists) {
		if ((error = frontier_at(repo, &f, origin, &st->head)) < 0)
			goto done;
	} else {
		sluice_tlog__frontier_init(&f);
	}
	if (f.size + 1 != seq) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "journal entry seq %llu follows a tree of %llu entries",
		                          (unsigned long long)seq, (unsigned long long)f.size);
		goto done;
	}
	if ((error = sluice_tlog__frontier_append(&f, leaf)) < 0)
		goto done;
	if (f.size == 1) {
		/* The origin names the log by its first entry: stable, and not circular. */
		char hex[2 * SLUICE_TLOG_HASH + 1];
		sluice__hex(hex, leaf, SLUICE_TLOG_HASH);
		snprintf(origin, sizeof(origin), "%s%.32s", ORIGIN_PREFIX, hex);
	}
	sluice_tlog__frontier_root(&f, root);
	sluice_keys__fingerprint(fp, signer->pk);
	if (!sluice_trust__by_fp(registry, fp, &name) && !sluice_trust__by_fp(st->keys, fp, &name))
		name = signer->name;
	sluice_tlog__key_id(sigblob, name, signer->pk);
	if ((error = sluice_tlog__checkpoint_body(ctx, &note, origin, f.size, root)) < 0)
		goto done;
	crypto_sign_detached(sigblob + 4, NULL, note.ptr, note.len, signer->sk);
	b64(sig64, sizeof(sig64), sigblob, sizeof(sigblob));
	if ((error = sluice_buf__printf(ctx, &note, "\n" NOTE_DASH "%s %s\n", name, sig64)) < 0 ||
	    (error = tlog_text(ctx, &tl, &f, origin)) < 0 ||
	    (error = put_blob(repo, tb, TLOG_FILE, &tl)) < 0 ||
	    (error = put_blob(repo, tb, CHECKPOINT_FILE, &note)) < 0)
		goto done;
done:
	sluice_buf__dispose(&enc);
	sluice_buf__dispose(&note);
	sluice_buf__dispose(&tl);
	return error;
}

/* ---- the leaf index (sluice/tlog-index) ----------------------------------- */

typedef struct {
	sluice_ctx *ctx;
	MDB_env *env;
	MDB_dbi meta, leaves;
	MDB_txn *rtxn; /* the read transaction leaf() reads through */
} tindex;

static int ix_error(sluice_ctx *ctx, int rc, const char *what)
{
	return sluice_ctx__error(ctx, rc == ENOMEM ? SLUICE_ENOMEM : SLUICE_EIO,
	                         "tlog index: %s: %s (it is derived: sluice audit reindex "
	                         "rebuilds it)",
	                         what, mdb_strerror(rc));
}

static void ix_close(tindex *ix)
{
	if (ix->rtxn)
		mdb_txn_abort(ix->rtxn);
	if (ix->env)
		mdb_env_close(ix->env);
	memset(ix, 0, sizeof(*ix));
}

/*
 * Open the index. The environment is opened for one operation and closed
 * after it, so a process never holds it open twice. MDB_NOSYNC: it is
 * derived, rebuilt from the journal if a crash loses or damages it.
 */
static int ix_open(sluice_repo *repo, tindex *ix)
{
	char dir[PATH_MAX];
	MDB_txn *txn = NULL;
	int rc, dead, error;

	memset(ix, 0, sizeof(*ix));
	ix->ctx = repo->ctx;
	snprintf(dir, sizeof(dir), "%s/tlog-index", repo->sdir);
	if ((error = sluice_io__mkdirs(repo->ctx, dir, 0755)) < 0)
		return error;
	if ((rc = mdb_env_create(&ix->env)) != 0 || (rc = mdb_env_set_maxdbs(ix->env, 2)) != 0 ||
	    (rc = mdb_env_set_mapsize(ix->env, (size_t)1 << 32)) != 0 ||
	    (rc = mdb_env_open(ix->env, dir, MDB_NOTLS | MDB_NOSYNC | MDB_NOMETASYNC, 0644)) != 0 ||
	    (rc = mdb_reader_check(ix->env, &dead)) != 0 ||
	    (rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "leaves", MDB_CREATE, &ix->leaves)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		if (txn && rc != 0)
			mdb_txn_abort(txn);
		error = ix_error(repo->ctx, rc, dir);
		ix_close(ix);
		return error;
	}
	return SLUICE_OK;
}

static void be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

/* The indexed head: oid and size; *found = 0 for an empty or foreign index. */
static int ix_head(tindex *ix, MDB_txn *txn, git_oid *head, uint64_t *size, int *found)
{
	MDB_val k = {4, (void *)"head"}, v, fk = {6, (void *)"format"}, fv;
	int rc;

	*found = 0;
	*size = 0;
	if ((rc = mdb_get(txn, ix->meta, &fk, &fv)) == MDB_NOTFOUND)
		return SLUICE_OK;
	if (rc != 0)
		return ix_error(ix->ctx, rc, "reading meta");
	if (fv.mv_size != strlen(INDEX_FORMAT) || memcmp(fv.mv_data, INDEX_FORMAT, fv.mv_size))
		return SLUICE_OK;
	if ((rc = mdb_get(txn, ix->meta, &k, &v)) == MDB_NOTFOUND)
		return SLUICE_OK;
	if (rc != 0)
		return ix_error(ix->ctx, rc, "reading meta");
	if (v.mv_size != 28)
		return SLUICE_OK;
	memcpy(head->id, v.mv_data, 20);
	for (int i = 0; i < 8; i++)
		*size = *size << 8 | ((unsigned char *)v.mv_data)[20 + i];
	*found = 1;
	return SLUICE_OK;
}

/*
 * Catch the index up with the journal head: append the leaves of the
 * entries after the indexed head, or rebuild when the indexed head is not
 * on the journal's chain (or rebuild is set).
 */
static int ix_sync(sluice_repo *repo, tindex *ix, int rebuild, uint64_t *size_out)
{
	sluice_ctx *ctx = repo->ctx;
	MDB_txn *txn = NULL;
	git_oid head, ihead, *ids = NULL;
	uint64_t isize = 0;
	size_t n = 0;
	int exists, found = 0, met = 0, rc, error;

	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		return error;
	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0)
		return ix_error(ctx, rc, "beginning a write");
	if (!rebuild && (error = ix_head(ix, txn, &ihead, &isize, &found)) < 0)
		goto done;
	if (!exists) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "repository %s has no journal",
		                          repo->path);
		goto done;
	}
	if (found && git_oid_equal(&ihead, &head))
		goto done;
	if ((error = chain(repo, &ids, &n, &head, found ? &ihead : NULL, &met)) < 0)
		goto done;
	if (!met) {
		MDB_val fk = {6, (void *)"format"},
		        fv = {strlen(INDEX_FORMAT), (void *)INDEX_FORMAT};
		isize = 0;
		if ((rc = mdb_drop(txn, ix->leaves, 0)) != 0 ||
		    (rc = mdb_put(txn, ix->meta, &fk, &fv, 0)) != 0) {
			error = ix_error(ctx, rc, "rebuilding");
			goto done;
		}
	}
	for (size_t i = 0; i < n; i++) {
		sluice_tlog_hash leaf;
		unsigned char key[8];
		uint64_t seq;
		MDB_val k = {8, key}, v = {SLUICE_TLOG_HASH, leaf};

		if ((error = entry_leaf(repo, leaf, &seq, &ids[i])) < 0)
			goto done;
		if (seq != isize + 1 && met && !rebuild) {
			/* The index's size disagrees with the journal: build it again. */
			mdb_txn_abort(txn);
			free(ids);
			return ix_sync(repo, ix, 1, size_out);
		}
		if (seq != isize + 1) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT, "journal entry at position %llu has seq %llu",
			        (unsigned long long)(isize + 1), (unsigned long long)seq);
			goto done;
		}
		be64(key, isize);
		if ((rc = mdb_put(txn, ix->leaves, &k, &v, 0)) != 0) {
			error = ix_error(ctx, rc, "writing a leaf");
			goto done;
		}
		isize++;
		if (repo->progress && n > 1000 && (i % 256 == 0 || i + 1 == n))
			repo->progress(repo->progress_data, "tlog index", i + 1, n);
	}
	{
		unsigned char val[28];
		MDB_val k = {4, (void *)"head"}, v = {28, val};

		memcpy(val, head.id, 20);
		be64(val + 20, isize);
		if ((rc = mdb_put(txn, ix->meta, &k, &v, 0)) != 0) {
			error = ix_error(ctx, rc, "writing meta");
			goto done;
		}
	}
done:
	free(ids);
	if (error < 0) {
		mdb_txn_abort(txn);
		return error;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return ix_error(ctx, rc, "committing");
	if (size_out)
		*size_out = isize;
	return SLUICE_OK;
}

int sluice_tlog__index_sync(sluice_repo *repo, uint64_t *size)
{
	tindex ix;
	int error;

	if ((error = ix_open(repo, &ix)) < 0)
		return error;
	error = ix_sync(repo, &ix, 0, size);
	ix_close(&ix);
	return error;
}

static int ix_leaf(void *data, uint64_t index, sluice_tlog_hash out)
{
	tindex *ix = data;
	unsigned char key[8];
	MDB_val k = {8, key}, v;
	int rc;

	be64(key, index);
	if ((rc = mdb_get(ix->rtxn, ix->leaves, &k, &v)) != 0 || v.mv_size != SLUICE_TLOG_HASH)
		return sluice_ctx__error(ix->ctx, SLUICE_ECORRUPT,
		                         "tlog index has no leaf %llu (sluice audit reindex "
		                         "rebuilds it)",
		                         (unsigned long long)index);
	memcpy(out, v.mv_data, SLUICE_TLOG_HASH);
	return SLUICE_OK;
}

/* Open, catch up and begin the read transaction leaf() uses. */
static int ix_ready(sluice_repo *repo, tindex *ix, uint64_t *size)
{
	int rc, error;

	if ((error = ix_open(repo, ix)) < 0)
		return error;
	if ((error = ix_sync(repo, ix, 0, size)) < 0) {
		ix_close(ix);
		return error;
	}
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &ix->rtxn)) != 0) {
		error = ix_error(repo->ctx, rc, "beginning a read");
		ix_close(ix);
		return error;
	}
	return SLUICE_OK;
}

/* ---- audit queries ---------------------------------------------------------- */

static json_t *hash_json(const sluice_tlog_hash h)
{
	char s[B64_HASH];

	b64(s, sizeof(s), h, SLUICE_TLOG_HASH);
	return json_string(s);
}

static json_t *hashes_json(sluice_tlog_hash *h, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, hash_json(h[i]));
	return a;
}

/* "name+hex id+base64(0x01 || pk)" for a registry entry; NULL if its key does not parse. */
static json_t *verifier_json(sluice_ctx *ctx, const char *name, json_t *entry)
{
	const char *line = json_string_value(json_object_get(entry, "public_key"));
	unsigned char pk[32], id[4], raw[33];
	char idhex[9], k64[sodium_base64_ENCODED_LEN(33, sodium_base64_VARIANT_ORIGINAL)];
	char buf[SLUICE_KEY_NAME_MAX + 128];

	if (!line || sluice_keys__parse_openssh_pub(ctx, pk, line, strlen(line)) < 0)
		return NULL;
	sluice_tlog__key_id(id, name, pk);
	sluice__hex(idhex, id, 4);
	raw[0] = 0x01;
	memcpy(raw + 1, pk, 32);
	b64(k64, sizeof(k64), raw, sizeof(raw));
	snprintf(buf, sizeof(buf), "%s+%s+%s", name, idhex, k64);
	return json_string(buf);
}

int sluice_audit_checkpoint(sluice_repo *repo, int verifiers, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_tlog_frontier f;
	sluice_tlog_hash root;
	sluice_buf text = {0};
	json_t *rep = NULL, *keys = NULL, *e;
	git_oid head;
	char origin[ORIGIN_LEN + 1], hex[GIT_OID_HEXSZ + 1];
	const char *name;
	int exists, found, error;

	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		return error;
	if (!exists)
		return sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "repository %s has no journal",
		                         repo->path);
	git_oid_tostr(hex, sizeof(hex), &head);
	if ((error = commit_file(repo, &text, &found, &head, CHECKPOINT_FILE)) < 0)
		goto done;
	if (!found) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                          "the newest journal entry %.12s was written before "
		                          "checkpoints; the next action adds one",
		                          hex);
		goto done;
	}
	if ((error = frontier_at(repo, &f, origin, &head)) < 0 ||
	    (error = sluice_buf__cstr(ctx, &text)) < 0)
		goto done;
	sluice_tlog__frontier_root(&f, root);
	rep = json_pack("{s:s, s:s, s:I, s:o, s:s}", "checkpoint", (const char *)text.ptr, "origin",
	                origin, "size", (json_int_t)f.size, "root", hash_json(root), "entry", hex);
	if (rep && verifiers) {
		json_t *arr = json_array();
		if ((error = sluice_journal__keys_at(repo, &keys, &head)) < 0)
			goto done;
		json_object_foreach(keys, name, e)
		{
			json_t *v = verifier_json(ctx, name, e);
			if (v)
				json_array_append_new(arr, v);
		}
		json_object_set_new(rep, "verifiers", arr);
	}
	error = sluice_repo__report(ctx, report, rep);
	rep = NULL;
done:
	json_decref(rep);
	json_decref(keys);
	sluice_buf__dispose(&text);
	return error;
}

int sluice_audit_prove_entry(sluice_repo *repo, uint64_t entry, uint64_t size, char **report)
{
	sluice_tlog_hash proof[SLUICE_TLOG_MAXDEPTH], root;
	size_t count = 0;
	uint64_t n;
	tindex ix;
	int error;

	if ((error = ix_ready(repo, &ix, &n)) < 0)
		return error;
	if (!size)
		size = n;
	if (entry < 1 || entry > size || size > n) {
		error = sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
		                          "no entry %llu in a tree of size %llu (the journal has "
		                          "%llu entries)",
		                          (unsigned long long)entry, (unsigned long long)size,
		                          (unsigned long long)n);
		goto done;
	}
	if ((error = sluice_tlog__inclusion(proof, &count, entry - 1, size, ix_leaf, &ix)) < 0 ||
	    (error = sluice_tlog__root(root, size, ix_leaf, &ix)) < 0)
		goto done;
	error = sluice_repo__report(repo->ctx, report,
	                            json_pack("{s:I, s:I, s:I, s:o, s:o}", "entry",
	                                      (json_int_t)entry, "index", (json_int_t)(entry - 1),
	                                      "size", (json_int_t)size, "root", hash_json(root),
	                                      "hashes", hashes_json(proof, count)));
done:
	ix_close(&ix);
	return error;
}

int sluice_audit_prove_consistency(sluice_repo *repo, uint64_t from, uint64_t to, char **report)
{
	sluice_tlog_hash proof[SLUICE_TLOG_MAXDEPTH], oroot, root;
	size_t count = 0;
	uint64_t n;
	tindex ix;
	int error;

	if ((error = ix_ready(repo, &ix, &n)) < 0)
		return error;
	if (!to)
		to = n;
	if (from < 1 || from > to || to > n) {
		error = sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
		                          "no consistency proof from size %llu to size %llu (the "
		                          "journal has %llu entries)",
		                          (unsigned long long)from, (unsigned long long)to,
		                          (unsigned long long)n);
		goto done;
	}
	if ((error = sluice_tlog__consistency(proof, &count, from, to, ix_leaf, &ix)) < 0 ||
	    (error = sluice_tlog__root(oroot, from, ix_leaf, &ix)) < 0 ||
	    (error = sluice_tlog__root(root, to, ix_leaf, &ix)) < 0)
		goto done;
	error = sluice_repo__report(repo->ctx, report,
	                            json_pack("{s:I, s:I, s:o, s:o, s:o}", "from", (json_int_t)from,
	                                      "to", (json_int_t)to, "old_root", hash_json(oroot),
	                                      "root", hash_json(root), "hashes",
	                                      hashes_json(proof, count)));
done:
	ix_close(&ix);
	return error;
}

int sluice_audit_export(sluice_repo *repo, uint64_t from, uint64_t to, sluice_audit_line_cb cb,
                        void *data)
{
	sluice_ctx *ctx = repo->ctx;
	git_oid head, *ids = NULL;
	sluice_buf enc = {0};
	size_t n = 0;
	int exists, error;

	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		return error;
	if (!exists)
		return sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "repository %s has no journal",
		                         repo->path);
	if ((error = chain(repo, &ids, &n, &head, NULL, NULL)) < 0)
		return error;
	if (!from)
		from = 1;
	if (!to)
		to = n;
	if (from > to || to > n) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "no entries %llu..%llu (the journal has %zu)",
		                          (unsigned long long)from, (unsigned long long)to, n);
		goto done;
	}
	for (uint64_t i = from; i <= to; i++) {
		uint64_t seq;

		enc.len = 0;
		if ((error = sluice_tlog__encode_entry(repo, &enc, &seq, &ids[i - 1])) < 0)
			goto done;
		if ((error = cb(data, (const char *)enc.ptr, enc.len)) < 0) {
			error = sluice_ctx__error(ctx, error, "export stopped at entry %llu",
			                          (unsigned long long)i);
			goto done;
		}
	}
done:
	free(ids);
	sluice_buf__dispose(&enc);
	return error;
}

int sluice_audit_reindex(sluice_repo *repo, char **report)
{
	uint64_t size = 0;
	tindex ix;
	int error;

	if ((error = ix_open(repo, &ix)) < 0)
		return error;
	error = ix_sync(repo, &ix, 1, &size);
	ix_close(&ix);
	if (error < 0)
		return error;
	return sluice_repo__report(repo->ctx, report, json_pack("{s:I}", "size", (json_int_t)size));
}

/* ---- sluice audit verify ---------------------------------------------------- */

typedef struct {
	sluice_repo *repo;
	json_t *problems;
	size_t max; /* problems listed in full; the rest are counted */
	size_t count;
} problems;

static void problem(problems *p, const char *fmt, ...) SLUICE_PRINTF(2, 3);
static void problem(problems *p, const char *fmt, ...)
{
	char buf[1200];
	va_list ap;

	p->count++;
	if (json_array_size(p->problems) >= p->max)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(p->problems, json_string(buf));
}

/* The Ed25519 public key of registry entry name, in keys or else prev; 0 if found. */
static int registry_pk(sluice_ctx *ctx, unsigned char pk[32], const char *name, json_t *keys,
                       json_t *prev)
{
	json_t *e = json_object_get(keys, name);
	const char *line;

	if (!e)
		e = json_object_get(prev, name);
	line = json_string_value(json_object_get(e, "public_key"));
	if (!line || sluice_keys__parse_openssh_pub(ctx, pk, line, strlen(line)) < 0)
		return -1;
	return 0;
}

const char *sluice_tlog__check_note(sluice_ctx *ctx, const void *note, size_t len,
                                    const void *bodyp, size_t blen, json_t *keys, json_t *prev,
                                    const char *actor_fp, char *why, size_t whylen)
{
	const char *s = note, *end = s + len, *sig = NULL, *p;
	const unsigned char *body = bodyp;
	int good = 0;

	for (p = s; p + 1 < end; p++)
		if (p[0] == '\n' && p[1] == '\n')
			sig = p + 2;
	if (!sig || len == 0 || end[-1] != '\n')
		return "it is not a signed note (no blank line before signatures, or no final "
		       "newline)";
	if ((size_t)(sig - 1 - s) != blen || memcmp(s, body, blen))
		return "its body differs from the recomputed origin, size and root";
	for (p = sig; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *sp, *nm;
		unsigned char blob[4 + crypto_sign_BYTES], pk[32], id[4];
		char name[SLUICE_KEY_NAME_MAX + 1], fp[SLUICE_FP_LEN];

		if (!nl || (size_t)(nl - p) < strlen(NOTE_DASH) ||
		    memcmp(p, NOTE_DASH, strlen(NOTE_DASH))) {
			snprintf(why, whylen, "signature line %.*s... is malformed",
			         (int)(end - p < 40 ? end - p : 40), p);
			return why;
		}
		nm = p + strlen(NOTE_DASH);
		if (!(sp = memchr(nm, ' ', (size_t)(nl - nm))) || sp == nm ||
		    (size_t)(sp - nm) > SLUICE_KEY_NAME_MAX) {
			snprintf(why, whylen, "signature line %.*s... has no key name",
			         (int)(end - p < 40 ? end - p : 40), p);
			return why;
		}
		memcpy(name, nm, (size_t)(sp - nm));
		name[sp - nm] = '\0';
		p = nl + 1;
		if (unb64(blob, sizeof(blob), sp + 1, (size_t)(nl - sp - 1)) < 0)
			continue; /* not an Ed25519 signature: another kind of witness, ignored */
		if (registry_pk(ctx, pk, name, keys, prev) < 0)
			continue;
		sluice_tlog__key_id(id, name, pk);
		if (memcmp(id, blob, 4))
			continue;
		if (crypto_sign_verify_detached(blob + 4, body, blen, pk) != 0) {
			snprintf(why, whylen, "the signature by %s does not verify", name);
			return why;
		}
		sluice_keys__fingerprint(fp, pk);
		if (!strcmp(fp, actor_fp))
			good = 1;
	}
	if (!good) {
		snprintf(why, whylen, "it has no valid signature by the entry's signer (%s)",
		         actor_fp);
		return why;
	}
	return NULL;
}

/* keys.json's "keys" object of tree (new reference), or NULL. */
static json_t *tree_keys(sluice_repo *repo, const git_tree *t, git_oid *blob_id)
{
	const git_tree_entry *te = git_tree_entry_byname(t, "keys.json");
	sluice_buf b = {0};
	json_t *doc = NULL, *k = NULL;

	if (!te)
		return NULL;
	*blob_id = *git_tree_entry_id(te);
	if (sluice_repo__read_blob(repo, &b, blob_id, "journal keys.json") == 0 &&
	    sluice_repo__parse_json(repo->ctx, &doc, b.ptr, b.len, "journal keys.json") == 0)
		k = json_incref(json_object_get(doc, "keys"));
	json_decref(doc);
	sluice_buf__dispose(&b);
	return k;
}

int sluice_audit_verify(sluice_repo *repo, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	problems pr = {repo, json_array(), 100, 0};
	sluice_tlog_frontier f;
	sluice_tlog_hash root;
	sluice_buf enc = {0}, text = {0}, body = {0};
	json_t *keys = NULL, *prev = NULL, *rep;
	git_oid head, *ids = NULL, keys_id, ihead;
	char origin[ORIGIN_LEN + 1] = "";
	uint64_t isize = 0;
	size_t n = 0, i, legacy = 0, checked = 0, ixchecked = 0;
	int exists, seen = 0, ixfound = 0, error;
	char ixdir[PATH_MAX];
	struct stat sb;
	tindex ix;

	memset(&ix, 0, sizeof(ix));
	memset(&keys_id, 0, sizeof(keys_id));
	if (!pr.problems)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build report");
	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		goto done;
	if (!exists) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "repository %s has no journal",
		                          repo->path);
		goto done;
	}
	if ((error = chain(repo, &ids, &n, &head, NULL, NULL)) < 0)
		goto done;
	/* The index is checked as it is: verify does not build or catch it up. */
	snprintf(ixdir, sizeof(ixdir), "%s/tlog-index/data.mdb", repo->sdir);
	if (stat(ixdir, &sb) != 0) {
		/* Not built yet: nothing to check. */
	} else if (ix_open(repo, &ix) < 0 ||
	           mdb_txn_begin(ix.env, NULL, MDB_RDONLY, &ix.rtxn) != 0 ||
	           ix_head(&ix, ix.rtxn, &ihead, &isize, &ixfound) < 0) {
		problem(&pr, "the tlog index cannot be read: %s", sluice_ctx_errmsg(ctx));
		ix_close(&ix);
		ixfound = 0;
	}
	sluice_tlog__frontier_init(&f);
	for (i = 0; i < n; i++) {
		git_commit *c = NULL;
		git_tree *t = NULL;
		const git_tree_entry *te;
		json_t *rec = NULL;
		sluice_tlog_hash leaf;
		sluice_tlog_frontier got;
		char hex[GIT_OID_HEXSZ + 1], what[160], why[256], gorigin[ORIGIN_LEN + 1];
		const char *bad;
		uint64_t seq = 0;
		git_oid kid;

		git_oid_tostr(hex, sizeof(hex), &ids[i]);
		enc.len = 0;
		if ((error = git_commit_lookup(&c, repo->git, &ids[i])) < 0 ||
		    (error = git_commit_tree(&t, c)) < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot read journal entry %s",
			                             hex);
			git_commit_free(c);
			goto done;
		}
		if ((error = encode(repo, &enc, &seq, &rec, t, i ? &ids[i - 1] : NULL)) < 0) {
			/* The tree cannot go on without this leaf. */
			problem(&pr, "journal entry %.12s: %s", hex, sluice_ctx_errmsg(ctx));
			git_tree_free(t);
			git_commit_free(c);
			error = SLUICE_OK;
			break;
		}
		if (seq != i + 1)
			problem(&pr, "journal entry %.12s at position %zu has seq %llu", hex, i + 1,
			        (unsigned long long)seq);
		sluice_tlog__leaf_hash(leaf, enc.ptr, enc.len);
		sluice_tlog__frontier_append(&f, leaf);
		if (f.size == 1) {
			char lh[2 * SLUICE_TLOG_HASH + 1];
			sluice__hex(lh, leaf, SLUICE_TLOG_HASH);
			snprintf(origin, sizeof(origin), "%s%.32s", ORIGIN_PREFIX, lh);
		}
		sluice_tlog__frontier_root(&f, root);
		/* The registry this entry's checkpoint is signed under, and the one before. */
		{
			json_t *k;
			memset(&kid, 0, sizeof(kid));
			if ((te = git_tree_entry_byname(t, "keys.json")) != NULL &&
			    !git_oid_equal(git_tree_entry_id(te), &keys_id) &&
			    (k = tree_keys(repo, t, &kid)) != NULL) {
				json_decref(prev);
				prev = keys;
				keys = k;
				keys_id = kid;
			} else if (te && git_oid_equal(git_tree_entry_id(te), &keys_id)) {
				json_decref(prev);
				prev = json_incref(keys);
			}
		}
		if (ixfound && i < isize) {
			sluice_tlog_hash il;
			ix.ctx = ctx;
			if (ix_leaf(&ix, i, il) < 0 || memcmp(il, leaf, SLUICE_TLOG_HASH))
				problem(&pr,
				        "tlog index leaf %zu differs from entry %.12s (sluice "
				        "audit "
				        "reindex rebuilds it)",
				        i, hex);
			ixchecked++;
		}
		te = git_tree_entry_byname(t, TLOG_FILE);
		if (!te) {
			if (seen)
				problem(&pr,
				        "journal entry %.12s has no %s though an earlier entry has "
				        "one",
				        hex, TLOG_FILE);
			else
				legacy++;
			goto next;
		}
		seen = 1;
		checked++;
		snprintf(what, sizeof(what), "journal entry %.12s: %s", hex, TLOG_FILE);
		if (sluice_repo__read_blob(repo, &text, git_tree_entry_id(te), what) < 0 ||
		    sluice_tlog__parse_tlog(ctx, &got, gorigin, text.ptr, text.len, what) < 0) {
			problem(&pr, "%s", sluice_ctx_errmsg(ctx));
		} else if (got.size != f.size || got.count != f.count ||
		           memcmp(got.h, f.h, (size_t)f.count * SLUICE_TLOG_HASH) ||
		           strcmp(gorigin, origin)) {
			problem(&pr, "%s does not match the tree recomputed from the journal",
			        what);
		}
		body.len = 0;
		if (!(te = git_tree_entry_byname(t, CHECKPOINT_FILE))) {
			problem(&pr, "journal entry %.12s has %s but no %s", hex, TLOG_FILE,
			        CHECKPOINT_FILE);
		} else if (sluice_repo__read_blob(repo, &text, git_tree_entry_id(te), what) < 0 ||
		           sluice_tlog__checkpoint_body(ctx, &body, origin, f.size, root) < 0) {
			problem(&pr, "journal entry %.12s: %s", hex, sluice_ctx_errmsg(ctx));
		} else if ((bad = sluice_tlog__check_note(
		                    ctx, text.ptr, text.len, body.ptr, body.len, keys, prev,
		                    sluice__jstr(json_object_get(json_object_get(rec, "actor"),
		                                                 "fingerprint")),
		                    why, sizeof(why))) != NULL) {
			problem(&pr, "journal entry %.12s: checkpoint: %s", hex, bad);
		}
	next:
		json_decref(rec);
		git_tree_free(t);
		git_commit_free(c);
		if (repo->progress && (i % 256 == 0 || i + 1 == n))
			repo->progress(repo->progress_data, "audit verify", i + 1, n);
	}
	if (ixfound && isize > n)
		problem(&pr, "the tlog index holds %llu leaves but the journal has %zu entries",
		        (unsigned long long)isize, n);
	if (ixfound && isize == n && n && !git_oid_equal(&ihead, &head))
		problem(&pr, "the tlog index's head is not the journal's head");
	rep = json_pack("{s:I, s:I, s:o, s:s, s:I, s:I, s:{s:b, s:I, s:I}, s:I, s:o, s:b}",
	                "entries", (json_int_t)n, "size", (json_int_t)f.size, "root",
	                hash_json(root), "origin", origin, "checked", (json_int_t)checked,
	                "before_tlog", (json_int_t)legacy, "index", "present", ixfound, "size",
	                (json_int_t)isize, "checked", (json_int_t)ixchecked, "problem_count",
	                (json_int_t)pr.count, "problems", json_incref(pr.problems), "ok",
	                pr.count == 0);
	if ((error = sluice_repo__report(ctx, report, rep)) < 0)
		goto done;
	if (pr.count)
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "%zu problem%s in the journal's tree (the first: %s)",
		                          pr.count, pr.count == 1 ? "" : "s",
		                          json_string_value(json_array_get(pr.problems, 0)));
done:
	ix_close(&ix);
	free(ids);
	json_decref(keys);
	json_decref(prev);
	json_decref(pr.problems);
	sluice_buf__dispose(&enc);
	sluice_buf__dispose(&text);
	sluice_buf__dispose(&body);
	return error;
}
