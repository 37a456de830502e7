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
#include <pthread.h>
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

/* One step back along the first-parent chain: *cur becomes its parent's id,
 * or stays and *more = 0 at the first entry. */
static int step_back(sluice_repo *repo, git_oid *cur, int *more)
{
	git_commit *c = NULL;
	int error;

	if ((error = git_commit_lookup(&c, repo->git, cur)) < 0) {
		char hex[GIT_OID_HEXSZ + 1];
		git_oid_tostr(hex, sizeof(hex), cur);
		return sluice_ctx__giterror(repo->ctx, error, "cannot read journal entry %s", hex);
	}
	*more = git_commit_parentcount(c) > 0;
	if (*more)
		*cur = *git_commit_parent_id(c, 0);
	git_commit_free(c);
	return SLUICE_OK;
}

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
		int more;

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
		if ((error = step_back(repo, &cur, &more)) < 0)
			goto done;
		if (!more)
			break;
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

/* The tree after one entry: the one journal_add built (pending) and the last committed. */
struct sluice_tlog_memo {
	sluice_tlog_frontier f, pending_f;
	char origin[ORIGIN_LEN + 1], pending_origin[ORIGIN_LEN + 1];
	git_oid entry;
	int valid, pending;
};

static void memo_pending(sluice_repo *repo, const sluice_tlog_frontier *f, const char *origin)
{
	struct sluice_tlog_memo *m = repo->tmemo;

	if (!m && !(m = repo->tmemo = calloc(1, sizeof(*m))))
		return; /* no memo: the next entry reads tlog.json */
	m->pending_f = *f;
	snprintf(m->pending_origin, sizeof(m->pending_origin), "%s", origin);
	m->pending = 1;
}

void sluice_tlog__journal_committed(sluice_repo *repo, const git_oid *id)
{
	struct sluice_tlog_memo *m = repo->tmemo;

	if (!m || !m->pending)
		return;
	m->f = m->pending_f;
	memcpy(m->origin, m->pending_origin, sizeof(m->origin));
	m->entry = *id;
	m->valid = 1;
	m->pending = 0;
}

void sluice_tlog__memo_free(sluice_repo *repo)
{
	free(repo->tmemo);
	repo->tmemo = NULL;
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
		int more;

		if ((error = commit_file(repo, &text, &found, &cur, TLOG_FILE)) < 0)
			goto done;
		if (found)
			break;
		if ((error = step_back(repo, &cur, &more)) < 0)
			goto done;
		if (!more)
			break;
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

	if ((error = sluice_stage__blob(repo, &id, b->ptr, b->len)) < 0)
		return error;
	if ((error = git_treebuilder_insert(NULL, tb, name, &id, GIT_FILEMODE_BLOB)) < 0)
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
	const git_tree_entry **ents = NULL;
	size_t nents = 0;
	unsigned char sigblob[4 + crypto_sign_BYTES];
	char origin[ORIGIN_LEN + 1], fp[SLUICE_FP_LEN],
	        sig64[sodium_base64_ENCODED_LEN(sizeof(sigblob), sodium_base64_VARIANT_ORIGINAL)];
	const char *name = NULL;
	uint64_t seq;
	int error;

	if (repo->tmemo)
		repo->tmemo->pending = 0;
	if (!signer->has_secret)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "key %s has no secret half",
		                         signer->name);
	/*
	 * The entry is its tree without the tree after it, read from the
	 * builder (no intermediate tree object is written).
	 */
	git_treebuilder_remove(tb, TLOG_FILE);
	git_treebuilder_remove(tb, CHECKPOINT_FILE);
	if ((error = sluice_stage__tree_entries(repo, tb, &ents, &nents)) < 0)
		goto done;
	if ((error = encode_entries(repo, &enc, &seq, NULL, ents, nents,
	                            st->exists ? &st->head : NULL)) < 0)
		goto done;
	sluice_tlog__leaf_hash(leaf, enc.ptr, enc.len);
	if (st->exists && repo->tmemo && repo->tmemo->valid &&
	    git_oid_equal(&repo->tmemo->entry, &st->head)) {
		/* The tree after the entry this process wrote last: no tlog.json to read. */
		f = repo->tmemo->f;
		memcpy(origin, repo->tmemo->origin, sizeof(origin));
	} else if (st->exists) {
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
	memo_pending(repo, &f, origin);
done:
	sluice_buf__dispose(&enc);
	sluice_buf__dispose(&note);
	sluice_buf__dispose(&tl);
	free(ents);
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
		MDB_val mk = {8, (void *)"verified"};
		isize = 0;
		/* New leaves: no verify has re-derived them. */
		if ((rc = mdb_del(txn, ix->meta, &mk, NULL)) == MDB_NOTFOUND)
			rc = 0;
		if (rc != 0 || (rc = mdb_drop(txn, ix->leaves, 0)) != 0 ||
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

/*
 * sluice audit verify re-derives entries (canonical encoding -> leaf hash)
 * and checks each one's tlog.json and checkpoint in two passes: the first
 * reads the journal, one entry at a time and independently of the others,
 * so it is spread over threads (each with its own git_repository: libgit2
 * objects belong to the repository that read them); the second folds the
 * leaves into the tree in order and compares what the first found with the
 * recomputed frontier and root.
 */

/* Most entries a worker takes at a time: its registry cache is reloaded per chunk. */
#define VERIFY_CHUNK 1024
/* Problems listed in full in the report; the rest are counted. */
#define PROBLEMS_MAX 100
/* Below this many entries, one thread: opening more repositories is not worth it. */
#define VERIFY_PARALLEL_MIN 4096

/* What re-deriving one entry found, for the pass that folds the tree. */
typedef struct {
	sluice_tlog_hash leaf;
	sluice_tlog_hash troot; /* the root tlog.json's frontier folds to */
	sluice_tlog_hash nroot; /* the root the checkpoint's body names */
	uint64_t tsize;         /* tlog.json's size */
	unsigned char bad;      /* not encodable: the tree cannot go on (reported) */
	unsigned char tlog;     /* 0 none, 1 read, 2 present but reported already */
	unsigned char note;     /* the checkpoint's signature verified: compare nroot */
} ventry;

typedef struct {
	uint64_t index; /* leaf index */
	unsigned pass;  /* 0: reading the entry, 1: folding the tree, 2: the index */
	size_t order;   /* within one list */
	char *msg;
} vproblem;

/*
 * A list of problems in increasing leaf index order (a worker takes its
 * chunks in increasing order): the first PROBLEMS_MAX of every list hold
 * the first PROBLEMS_MAX of all of them.
 */
typedef struct {
	vproblem v[PROBLEMS_MAX];
	size_t n, count;
} vproblems;

static void vproblem_add(vproblems *p, uint64_t index, unsigned pass, const char *fmt, ...)
        SLUICE_PRINTF(4, 5);
static void vproblem_add(vproblems *p, uint64_t index, unsigned pass, const char *fmt, ...)
{
	char buf[1200];
	va_list ap;

	p->count++;
	if (p->n >= PROBLEMS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->v[p->n].index = index;
	p->v[p->n].pass = pass;
	p->v[p->n].order = p->n;
	/* A message lost to a failed strdup still counts. */
	if ((p->v[p->n].msg = strdup(buf)) != NULL)
		p->n++;
}

static void vproblems_dispose(vproblems *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].msg);
	p->n = p->count = 0;
}

typedef struct {
	sluice_repo *repo;     /* the caller's */
	const git_oid *ids;    /* the entries re-derived, oldest first */
	size_t n;              /* how many */
	uint64_t base;         /* the leaf index of ids[0] */
	const git_oid *before; /* the entry before ids[0]; NULL when base is 0 */
	char origin[ORIGIN_LEN + 1];
	ventry *out; /* [n] */
	pthread_mutex_t lock;
	size_t chunk; /* entries a worker takes at a time */
	size_t next;  /* the next chunk to take, under lock */
	int stop;     /* a worker failed: the others stop, under lock */
} vrun;

typedef struct {
	vrun *run;
	sluice_repo repo; /* the caller's, with this worker's ctx and git handle */
	sluice_ctx *ctx;
	json_t *keys, *prev; /* the registry of the entry and of the one before */
	git_oid keys_id;
	vproblems pr;
	double sig_s; /* in sluice_tlog__check_note: parsing the keys, Ed25519 */
	size_t sigs;
	int error;
	int main; /* the calling thread: it reports progress */
} vworker;

/* The root a checkpoint note's third line names; zero when it names none. */
static void note_root(sluice_tlog_hash out, const char *s, size_t len)
{
	const char *end = s + len, *l3, *nl;

	memset(out, 0, SLUICE_TLOG_HASH);
	if (!(l3 = memchr(s, '\n', len)) || !(l3 = memchr(l3 + 1, '\n', (size_t)(end - l3 - 1))))
		return;
	l3++;
	if (!(nl = memchr(l3, '\n', (size_t)(end - l3))) ||
	    unb64(out, SLUICE_TLOG_HASH, l3, (size_t)(nl - l3)) < 0)
		memset(out, 0, SLUICE_TLOG_HASH);
}

/* The registry (keys.json) of entry id into w->keys and w->prev, as the entry after it sees it. */
static int worker_registry(vworker *w, const git_oid *id)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	json_decref(w->keys);
	json_decref(w->prev);
	w->keys = w->prev = NULL;
	memset(&w->keys_id, 0, sizeof(w->keys_id));
	if (!id)
		return SLUICE_OK;
	if ((error = git_commit_lookup(&c, w->repo.git, id)) < 0 ||
	    (error = git_commit_tree(&t, c)) < 0) {
		git_oid_tostr(hex, sizeof(hex), id);
		error = sluice_ctx__giterror(w->ctx, error, "cannot read journal entry %s", hex);
		goto done;
	}
	w->keys = tree_keys(&w->repo, t, &w->keys_id);
done:
	git_tree_free(t);
	git_commit_free(c);
	return error;
}

/* Re-derive entry i of the run and read its tlog.json and checkpoint into run->out[i]. */
static int verify_entry(vworker *w, size_t i, sluice_buf *enc, sluice_buf *text, sluice_buf *body)
{
	vrun *run = w->run;
	sluice_ctx *ctx = w->ctx;
	ventry *e = &run->out[i];
	const git_oid *id = &run->ids[i];
	uint64_t index = run->base + i, seq = 0;
	git_commit *c = NULL;
	git_tree *t = NULL;
	const git_tree_entry *te;
	json_t *rec = NULL;
	sluice_tlog_frontier got;
	char hex[GIT_OID_HEXSZ + 1], what[160], why[256], gorigin[ORIGIN_LEN + 1];
	const char *bad;
	int error = SLUICE_OK;

	memset(e, 0, sizeof(*e));
	git_oid_tostr(hex, sizeof(hex), id);
	if ((error = git_commit_lookup(&c, w->repo.git, id)) < 0 ||
	    (error = git_commit_tree(&t, c)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot read journal entry %s", hex);
		goto done;
	}
	enc->len = 0;
	if (encode(&w->repo, enc, &seq, &rec, t, i ? &run->ids[i - 1] : run->before) < 0) {
		vproblem_add(&w->pr, index, 0, "journal entry %.12s: %s", hex,
		             sluice_ctx_errmsg(ctx));
		e->bad = 1;
		goto done;
	}
	if (seq != index + 1)
		vproblem_add(&w->pr, index, 0, "journal entry %.12s at position %llu has seq %llu",
		             hex, (unsigned long long)(index + 1), (unsigned long long)seq);
	sluice_tlog__leaf_hash(e->leaf, enc->ptr, enc->len);
	/* The registry this entry's checkpoint is signed under, and the one before. */
	if ((te = git_tree_entry_byname(t, "keys.json")) != NULL) {
		json_t *k;
		git_oid kid;

		if (git_oid_equal(git_tree_entry_id(te), &w->keys_id)) {
			json_decref(w->prev);
			w->prev = json_incref(w->keys);
		} else if ((k = tree_keys(&w->repo, t, &kid)) != NULL) {
			json_decref(w->prev);
			w->prev = w->keys;
			w->keys = k;
			w->keys_id = kid;
		}
	}
	if (!(te = git_tree_entry_byname(t, TLOG_FILE)))
		goto done; /* an entry from before tlog.json: the fold checks where it may be */
	e->tlog = 2;
	snprintf(what, sizeof(what), "journal entry %.12s: %s", hex, TLOG_FILE);
	if (sluice_repo__read_blob(&w->repo, text, git_tree_entry_id(te), what) < 0 ||
	    sluice_tlog__parse_tlog(ctx, &got, gorigin, text->ptr, text->len, what) < 0) {
		vproblem_add(&w->pr, index, 0, "%s", sluice_ctx_errmsg(ctx));
	} else if (strcmp(gorigin, run->origin)) {
		vproblem_add(&w->pr, index, 0,
		             "%s does not match the tree recomputed from the journal", what);
	} else {
		/* Equal roots of equal sizes are equal frontiers, but for a SHA-256 collision. */
		sluice_tlog__frontier_root(&got, e->troot);
		e->tsize = got.size;
		e->tlog = 1;
	}
	body->len = 0;
	if (!(te = git_tree_entry_byname(t, CHECKPOINT_FILE))) {
		vproblem_add(&w->pr, index, 0, "journal entry %.12s has %s but no %s", hex,
		             TLOG_FILE, CHECKPOINT_FILE);
	} else if (sluice_repo__read_blob(&w->repo, text, git_tree_entry_id(te), what) < 0) {
		vproblem_add(&w->pr, index, 0, "journal entry %.12s: %s", hex,
		             sluice_ctx_errmsg(ctx));
	} else {
		double t0;

		/*
		 * The body is checked byte for byte against origin, size and the
		 * root it names; the fold compares that root with the recomputed one.
		 */
		note_root(e->nroot, (const char *)text->ptr, text->len);
		if (sluice_tlog__checkpoint_body(ctx, body, run->origin, index + 1, e->nroot) < 0) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		t0 = sluice__monotonic_s();
		bad = sluice_tlog__check_note(
		        ctx, text->ptr, text->len, body->ptr, body->len, w->keys, w->prev,
		        sluice__jstr(json_object_get(json_object_get(rec, "actor"), "fingerprint")),
		        why, sizeof(why));
		w->sig_s += sluice__monotonic_s() - t0;
		w->sigs++;
		if (bad)
			vproblem_add(&w->pr, index, 0, "journal entry %.12s: checkpoint: %s", hex,
			             bad);
		else
			e->note = 1;
	}
done:
	json_decref(rec);
	git_tree_free(t);
	git_commit_free(c);
	return error;
}

static void *verify_worker(void *arg)
{
	vworker *w = arg;
	vrun *run = w->run;
	sluice_buf enc = {0}, text = {0}, body = {0};

	for (;;) {
		size_t a, b, done;
		int stop;

		pthread_mutex_lock(&run->lock);
		a = run->next;
		if (a < run->n)
			run->next = a + run->chunk < run->n ? a + run->chunk : run->n;
		b = run->next;
		done = a;
		stop = run->stop;
		pthread_mutex_unlock(&run->lock);
		if (stop || a >= run->n)
			break;
		if (w->main && run->repo->progress)
			run->repo->progress(run->repo->progress_data, "audit verify", done, run->n);
		if ((w->error = worker_registry(w, a ? &run->ids[a - 1] : run->before)) < 0)
			break;
		for (size_t i = a; i < b; i++)
			if ((w->error = verify_entry(w, i, &enc, &text, &body)) < 0)
				break;
		if (w->error < 0)
			break;
	}
	if (w->error < 0) {
		pthread_mutex_lock(&run->lock);
		run->stop = 1;
		pthread_mutex_unlock(&run->lock);
	}
	if (w->main && run->repo->progress && w->error == 0)
		run->repo->progress(run->repo->progress_data, "audit verify", run->n, run->n);
	sluice_buf__dispose(&enc);
	sluice_buf__dispose(&text);
	sluice_buf__dispose(&body);
	return NULL;
}

static int cmp_vproblem(const void *a, const void *b)
{
	const vproblem *x = a, *y = b;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->pass != y->pass)
		return x->pass < y->pass ? -1 : 1;
	return (x->order > y->order) - (x->order < y->order);
}

/* What a verification found, for the report. */
typedef struct {
	vproblems fold; /* problems of the fold and the index */
	vproblem *all;  /* every listed problem, sorted */
	size_t nall, count;
	sluice_tlog_frontier f;
	size_t checked, legacy, ixchecked;
	size_t sigs;
	double sig_s, read_s; /* Ed25519 (summed over threads); the reading pass (wall) */
	unsigned threads;
} vresult;

static void vresult_dispose(vresult *r)
{
	for (size_t i = 0; i < r->nall; i++)
		free(r->all[i].msg);
	free(r->all);
	vproblems_dispose(&r->fold);
	memset(r, 0, sizeof(*r));
}

/*
 * Re-derive run->ids (leaf indices base..) on top of the tree r->f (of size
 * base) and fold them into it, comparing each leaf with the index's (ix
 * may be NULL; isize leaves) and each entry's tlog.json and checkpoint
 * with the recomputed tree. seen: an entry before these carries tlog.json.
 * run->out (the caller frees it) keeps what was read; r->fold the fold's
 * problems, r->all the workers'.
 */
static int verify_range(vresult *r, vrun *run, tindex *ix, uint64_t isize, int seen)
{
	sluice_repo *repo = run->repo;
	sluice_ctx *ctx = repo->ctx;
	vworker *ws = NULL;
	pthread_t *tids = NULL;
	unsigned nt = 1, started = 0, t;
	double t0 = sluice__monotonic_s();
	int error = SLUICE_OK;

	/* Threads asked for are used even on a short journal (the tests' way in). */
	if ((run->n >= VERIFY_PARALLEL_MIN || ctx->threads) &&
	    (git_libgit2_features() & GIT_FEATURE_THREADS))
		nt = sluice_ctx__threads(ctx);
	run->chunk = run->n / ((size_t)nt * 16);
	run->chunk = run->chunk < 8 ? 8 : run->chunk > VERIFY_CHUNK ? VERIFY_CHUNK : run->chunk;
	if ((size_t)nt > run->n / run->chunk + 1)
		nt = (unsigned)(run->n / run->chunk + 1);
	if (!(ws = sluice__calloc(ctx, nt, sizeof(*ws))) ||
	    !(run->out = sluice__calloc(ctx, run->n ? run->n : 1, sizeof(*run->out))) ||
	    (nt > 1 && !(tids = sluice__calloc(ctx, nt, sizeof(*tids))))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	if (pthread_mutex_init(&run->lock, NULL) != 0) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot start audit verify");
		goto done;
	}
	for (t = 0; t < nt; t++) {
		vworker *w = &ws[t];

		w->run = run;
		w->main = t == 0;
		w->repo = *repo;
		w->repo.progress = NULL;
		w->repo.cs = NULL;
		w->repo.jindex = NULL;
		if (sluice_ctx_new(&w->ctx) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot start audit verify");
			break;
		}
		w->repo.ctx = w->ctx;
		if (t > 0 && (error = git_repository_open_bare(&w->repo.git, repo->path)) < 0) {
			w->repo.git = NULL;
			error = sluice_ctx__giterror(ctx, error, "cannot open %s", repo->path);
			break;
		}
	}
	for (t = 1; error == 0 && t < nt; t++) {
		if (pthread_create(&tids[t], NULL, verify_worker, &ws[t]) != 0)
			break; /* fewer threads: the others take its chunks */
		started = t;
	}
	if (error == 0)
		verify_worker(&ws[0]);
	for (t = 1; t <= started; t++)
		pthread_join(tids[t], NULL);
	pthread_mutex_destroy(&run->lock);
	r->read_s = sluice__monotonic_s() - t0;
	r->threads = started + 1;
	for (t = 0; error == 0 && t < nt; t++) {
		if (ws[t].error < 0) {
			error = sluice_ctx__error(ctx, ws[t].error, "%s",
			                          sluice_ctx_errmsg(ws[t].ctx));
			goto done;
		}
	}
	if (error < 0)
		goto done;

	/* The fold, in order. */
	for (size_t i = 0; i < run->n; i++) {
		ventry *e = &run->out[i];
		uint64_t index = run->base + i;
		sluice_tlog_hash root;
		char hex[GIT_OID_HEXSZ + 1];

		if (e->bad)
			break; /* the tree cannot go on without this leaf */
		git_oid_tostr(hex, sizeof(hex), &run->ids[i]);
		if ((error = sluice_tlog__frontier_append(&r->f, e->leaf)) < 0)
			goto done;
		sluice_tlog__frontier_root(&r->f, root);
		if (ix && index < isize) {
			sluice_tlog_hash il;
			ix->ctx = ctx;
			if (ix_leaf(ix, index, il) < 0 || memcmp(il, e->leaf, SLUICE_TLOG_HASH))
				vproblem_add(
				        &r->fold, index, 1,
				        "tlog index leaf %llu differs from entry %.12s (sluice "
				        "audit reindex rebuilds it)",
				        (unsigned long long)index, hex);
			r->ixchecked++;
		}
		if (!e->tlog) {
			if (seen)
				vproblem_add(
				        &r->fold, index, 1,
				        "journal entry %.12s has no %s though an earlier entry "
				        "has one",
				        hex, TLOG_FILE);
			else
				r->legacy++;
			continue;
		}
		seen = 1;
		r->checked++;
		if (e->tlog == 1 &&
		    (e->tsize != r->f.size || memcmp(e->troot, root, SLUICE_TLOG_HASH)))
			vproblem_add(&r->fold, index, 1,
			             "journal entry %.12s: %s does not match the tree recomputed "
			             "from the journal",
			             hex, TLOG_FILE);
		if (e->note && memcmp(e->nroot, root, SLUICE_TLOG_HASH))
			vproblem_add(&r->fold, index, 1,
			             "journal entry %.12s: checkpoint: its body differs from the "
			             "recomputed origin, size and root",
			             hex);
	}
	/* The workers' problems; the caller merges them with the fold's. */
	{
		size_t cap = 0;
		for (t = 0; t < nt; t++)
			cap += ws[t].pr.n;
		if (cap && !(r->all = sluice__calloc(ctx, cap, sizeof(*r->all)))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		for (t = 0; t < nt; t++) {
			r->count += ws[t].pr.count;
			if (ws[t].pr.n)
				memcpy(r->all + r->nall, ws[t].pr.v, ws[t].pr.n * sizeof(*r->all));
			r->nall += ws[t].pr.n;
			ws[t].pr.n = 0; /* moved */
			r->sigs += ws[t].sigs;
			r->sig_s += ws[t].sig_s;
		}
	}
done:
	for (t = 0; ws && t < nt; t++) {
		if (t > 0)
			git_repository_free(ws[t].repo.git);
		json_decref(ws[t].keys);
		json_decref(ws[t].prev);
		vproblems_dispose(&ws[t].pr);
		sluice_ctx_free(ws[t].ctx);
	}
	free(ws);
	free(tids);
	return error;
}

/*
 * The n entries that end at head, oldest first, and the entry before them
 * (*has_before = 0 when they start at the first entry). *short_ = 1 when
 * the chain has fewer than n entries.
 */
static int chain_back(sluice_repo *repo, git_oid **out, git_oid *before, int *has_before,
                      const git_oid *head, size_t n, int *short_)
{
	git_oid *ids = NULL, cur = *head;
	size_t got = 0;
	int error = SLUICE_OK;

	*has_before = 0;
	*short_ = 0;
	if (!(ids = sluice__calloc(repo->ctx, n ? n : 1, sizeof(*ids))))
		return SLUICE_ENOMEM;
	while (got < n) {
		int more;

		ids[n - 1 - got++] = cur;
		if ((error = step_back(repo, &cur, &more)) < 0)
			goto done;
		if (!more) {
			if (got < n)
				*short_ = 1;
			goto done;
		}
	}
	*before = cur;
	*has_before = 1;
done:
	if (error < 0 || *short_) {
		free(ids);
		ids = NULL;
	}
	*out = ids;
	return error;
}

/* Whether journal entry id carries tlog.json. */
static int has_tlog(sluice_repo *repo, int *out, const git_oid *id)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	int error;

	*out = 0;
	if ((error = git_commit_lookup(&c, repo->git, id)) < 0 ||
	    (error = git_commit_tree(&t, c)) < 0) {
		char hex[GIT_OID_HEXSZ + 1];
		git_oid_tostr(hex, sizeof(hex), id);
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read journal entry %s", hex);
	} else {
		*out = git_tree_entry_byname(t, TLOG_FILE) != NULL;
	}
	git_tree_free(t);
	git_commit_free(c);
	return error;
}

/* meta "verified": journal commit (20) || size (u64 BE) || root (32). */
#define VERIFIED_LEN (20 + 8 + SLUICE_TLOG_HASH)

typedef struct {
	int found;
	git_oid head;
	uint64_t size;
	sluice_tlog_hash root;
} vmark;

static int ix_mark_get(tindex *ix, MDB_txn *txn, vmark *m)
{
	MDB_val k = {8, (void *)"verified"}, v;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = mdb_get(txn, ix->meta, &k, &v)) == MDB_NOTFOUND)
		return SLUICE_OK;
	if (rc != 0)
		return ix_error(ix->ctx, rc, "reading meta");
	if (v.mv_size != VERIFIED_LEN)
		return SLUICE_OK; /* not ours: as if never verified */
	memcpy(m->head.id, v.mv_data, 20);
	for (int i = 0; i < 8; i++)
		m->size = m->size << 8 | ((unsigned char *)v.mv_data)[20 + i];
	memcpy(m->root, (unsigned char *)v.mv_data + 28, SLUICE_TLOG_HASH);
	m->found = m->size > 0;
	return SLUICE_OK;
}

/* Record that entries 1..size (ending at head) were re-derived and gave root. */
static int ix_mark_put(tindex *ix, const git_oid *head, uint64_t size, const sluice_tlog_hash root)
{
	unsigned char val[VERIFIED_LEN];
	MDB_val k = {8, (void *)"verified"}, v = {VERIFIED_LEN, val};
	MDB_txn *txn = NULL;
	git_oid ihead;
	uint64_t isize;
	int rc, found, error;

	memcpy(val, head->id, 20);
	be64(val + 20, size);
	memcpy(val + 28, root, SLUICE_TLOG_HASH);
	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0)
		return ix_error(ix->ctx, rc, "beginning a write");
	/* Only over the leaves it was computed from: another process may have moved on. */
	if ((error = ix_head(ix, txn, &ihead, &isize, &found)) < 0)
		goto done;
	if (!found || isize < size) {
		mdb_txn_abort(txn);
		return SLUICE_OK;
	}
	if ((rc = mdb_put(txn, ix->meta, &k, &v, 0)) != 0) {
		error = ix_error(ix->ctx, rc, "writing meta");
		goto done;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return ix_error(ix->ctx, rc, "committing");
	return SLUICE_OK;
done:
	mdb_txn_abort(txn);
	return error;
}

/*
 * Read every leaf of the index (leaves 0..isize-1, nothing else) into the
 * tree: *at receives the frontier of the first at_size leaves, *root_at
 * the root of the first mark_size, f the whole tree. origin from leaf 0.
 */
static int ix_fold(tindex *ix, sluice_tlog_frontier *f, sluice_tlog_frontier *at, uint64_t at_size,
                   sluice_tlog_hash root_at, uint64_t mark_size, char origin[ORIGIN_LEN + 1],
                   uint64_t isize)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t i = 0;
	int rc, error = SLUICE_OK;

	sluice_tlog__frontier_init(f);
	sluice_tlog__frontier_init(at);
	if ((rc = mdb_cursor_open(ix->rtxn, ix->leaves, &cur)) != 0)
		return ix_error(ix->ctx, rc, "reading leaves");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
		unsigned char want[8];

		be64(want, i);
		if (k.mv_size != 8 || memcmp(k.mv_data, want, 8) || v.mv_size != SLUICE_TLOG_HASH) {
			error = sluice_ctx__error(ix->ctx, SLUICE_ECORRUPT,
			                          "tlog index: leaf %llu is missing or malformed "
			                          "(sluice audit reindex rebuilds it)",
			                          (unsigned long long)i);
			goto done;
		}
		if (i == 0) {
			char hex[2 * SLUICE_TLOG_HASH + 1];
			sluice__hex(hex, v.mv_data, SLUICE_TLOG_HASH);
			snprintf(origin, ORIGIN_LEN + 1, "%s%.32s", ORIGIN_PREFIX, hex);
		}
		if (i == at_size)
			*at = *f;
		if ((error = sluice_tlog__frontier_append(f, v.mv_data)) < 0)
			goto done;
		if (i + 1 == mark_size)
			sluice_tlog__frontier_root(f, root_at);
	}
	if (rc != MDB_NOTFOUND) {
		error = ix_error(ix->ctx, rc, "reading leaves");
		goto done;
	}
	if (i != isize) {
		error = sluice_ctx__error(ix->ctx, SLUICE_ECORRUPT,
		                          "tlog index holds %llu leaves, its head says %llu "
		                          "(sluice audit reindex rebuilds it)",
		                          (unsigned long long)i, (unsigned long long)isize);
		goto done;
	}
	if (at_size == isize)
		*at = *f;
done:
	mdb_cursor_close(cur);
	return error;
}

/*
 * Replace the index with the n leaves a verification re-derived (ending at
 * head, whose tree has root) and record them as verified: what a full
 * re-derivation read need not be read again to build the index.
 */
static int ix_replace(tindex *ix, const git_oid *head, const ventry *leaves, uint64_t n,
                      const sluice_tlog_hash root)
{
	MDB_val fk = {6, (void *)"format"}, fv = {strlen(INDEX_FORMAT), (void *)INDEX_FORMAT};
	unsigned char val[28], mval[VERIFIED_LEN];
	MDB_val hk = {4, (void *)"head"}, hv = {28, val};
	MDB_val mk = {8, (void *)"verified"}, mv = {VERIFIED_LEN, mval};
	MDB_txn *txn = NULL;
	int rc;

	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0)
		return ix_error(ix->ctx, rc, "beginning a write");
	if ((rc = mdb_drop(txn, ix->leaves, 0)) != 0 ||
	    (rc = mdb_put(txn, ix->meta, &fk, &fv, 0)) != 0)
		goto fail;
	for (uint64_t i = 0; i < n; i++) {
		unsigned char key[8];
		MDB_val k = {8, key}, v = {SLUICE_TLOG_HASH, (void *)leaves[i].leaf};

		be64(key, i);
		/* In key order: appending fills the B-tree's pages. */
		if ((rc = mdb_put(txn, ix->leaves, &k, &v, MDB_APPEND)) != 0)
			goto fail;
	}
	memcpy(val, head->id, 20);
	be64(val + 20, n);
	memcpy(mval, val, 28);
	memcpy(mval + 28, root, SLUICE_TLOG_HASH);
	if ((rc = mdb_put(txn, ix->meta, &hk, &hv, 0)) != 0 ||
	    (rc = mdb_put(txn, ix->meta, &mk, &mv, 0)) != 0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0)
		return ix_error(ix->ctx, rc, "committing");
	return SLUICE_OK;
fail:
	mdb_txn_abort(txn);
	return ix_error(ix->ctx, rc, "writing the leaves");
}

/* The origin named by the first entry: "sluice.journal/" and its leaf's first 32 hex digits. */
static void origin_of(char out[ORIGIN_LEN + 1], const sluice_tlog_hash leaf0)
{
	char hex[2 * SLUICE_TLOG_HASH + 1];

	sluice__hex(hex, leaf0, SLUICE_TLOG_HASH);
	snprintf(out, ORIGIN_LEN + 1, "%s%.32s", ORIGIN_PREFIX, hex);
}

/*
 * Whether the index lets verify trust its first mark.size leaves: it is
 * caught up with head, holds a "verified" record whose leaves still give
 * the root recorded, and the commit recorded is still that entry of the
 * journal. On yes, ids, before, base, at and origin describe what is left to
 * re-derive (the entries after the record, and always the head).
 */
static int ix_trusted(sluice_repo *repo, tindex *ix, int *yes, git_oid **ids, git_oid *before,
                      uint64_t *base, sluice_tlog_frontier *at, char origin[ORIGIN_LEN + 1],
                      const git_oid *head, uint64_t n)
{
	sluice_tlog_frontier whole;
	sluice_tlog_hash root_at;
	git_oid ihead;
	uint64_t isize;
	vmark mark;
	int found, has_before = 0, short_ = 0, error;

	*yes = 0;
	if ((error = ix_head(ix, ix->rtxn, &ihead, &isize, &found)) < 0 ||
	    (error = ix_mark_get(ix, ix->rtxn, &mark)) < 0)
		return error;
	if (!found || !git_oid_equal(&ihead, head) || isize != n || !mark.found || mark.size > n)
		return SLUICE_OK;
	*base = mark.size == n ? n - 1 : mark.size;
	if ((error = ix_fold(ix, &whole, at, *base, root_at, mark.size, origin, isize)) < 0 ||
	    (error = chain_back(repo, ids, before, &has_before, head, (size_t)(n - *base),
	                        &short_)) < 0)
		return error;
	*yes = !short_ && !memcmp(root_at, mark.root, SLUICE_TLOG_HASH) &&
	       git_oid_equal(mark.size == n ? head : before, &mark.head) &&
	       (*base == 0 || has_before);
	if (!*yes) {
		free(*ids);
		*ids = NULL;
	}
	return SLUICE_OK;
}

int sluice_audit_verify(sluice_repo *repo, unsigned flags, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	vresult r;
	vrun run;
	sluice_tlog_hash root;
	sluice_tlog_frontier at;
	json_t *rep, *probs = NULL;
	git_oid head, *ids = NULL, ihead, before;
	uint64_t isize = 0, base = 0, n = 0;
	size_t i, nids = 0;
	int exists, ixfound = 0, incremental = 0, seen = 0, rebuilt = 0, error;
	int full = (flags & SLUICE_AUDIT_VERIFY_FULL) != 0;
	double t0 = sluice__monotonic_s();
	char ixdir[PATH_MAX];
	struct stat sb;
	tindex ix;

	memset(&ix, 0, sizeof(ix));
	memset(&r, 0, sizeof(r));
	memset(&run, 0, sizeof(run));
	memset(&ihead, 0, sizeof(ihead));
	if (!(probs = json_array()))
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build report");
	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		goto done;
	if (!exists) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "repository %s has no journal",
		                          repo->path);
		goto done;
	}
	snprintf(ixdir, sizeof(ixdir), "%s/tlog-index/data.mdb", repo->sdir);
	if (!full) {
		/*
		 * An index an earlier verify recorded is caught up (re-deriving
		 * what is new) and trusted as far as that verify re-derived it;
		 * without one, everything is re-derived and the index rebuilt
		 * from it.
		 */
		vmark mark;
		int rc;

		if ((error = ix_open(repo, &ix)) < 0)
			goto done;
		if ((rc = mdb_txn_begin(ix.env, NULL, MDB_RDONLY, &ix.rtxn)) != 0) {
			error = ix_error(ctx, rc, "beginning a read");
			goto done;
		}
		error = ix_mark_get(&ix, ix.rtxn, &mark);
		mdb_txn_abort(ix.rtxn);
		ix.rtxn = NULL;
		if (error < 0)
			goto done;
		if (mark.found) {
			if ((error = ix_sync(repo, &ix, 0, &n)) < 0)
				goto done;
			if ((rc = mdb_txn_begin(ix.env, NULL, MDB_RDONLY, &ix.rtxn)) != 0) {
				error = ix_error(ctx, rc, "beginning a read");
				goto done;
			}
			if ((error = ix_trusted(repo, &ix, &incremental, &ids, &before, &base, &at,
			                        run.origin, &head, n)) < 0)
				goto done;
			if (incremental &&
			    (error = ix_head(&ix, ix.rtxn, &ihead, &isize, &ixfound)) < 0)
				goto done;
		}
		/* Without trust, every leaf it holds is still compared before it is replaced. */
		if (!incremental && !ix.rtxn &&
		    (rc = mdb_txn_begin(ix.env, NULL, MDB_RDONLY, &ix.rtxn)) != 0) {
			error = ix_error(ctx, rc, "beginning a read");
			goto done;
		}
		if (!incremental && (error = ix_head(&ix, ix.rtxn, &ihead, &isize, &ixfound)) < 0)
			goto done;
	} else if (stat(ixdir, &sb) == 0) {
		/* --full checks the index as it is: it does not build or catch it up. */
		int rc = 0;

		if ((error = ix_open(repo, &ix)) < 0 ||
		    (rc = mdb_txn_begin(ix.env, NULL, MDB_RDONLY, &ix.rtxn)) != 0 ||
		    (error = ix_head(&ix, ix.rtxn, &ihead, &isize, &ixfound)) < 0) {
			if (rc)
				ix_error(ctx, rc, "beginning a read");
			vproblem_add(&r.fold, 0, 2, "the tlog index cannot be read: %s",
			             sluice_ctx_errmsg(ctx));
			ix_close(&ix);
			ixfound = 0;
			error = SLUICE_OK;
		}
	}
	if (incremental) {
		r.f = at;
		run.ids = ids;
		run.n = (size_t)(n - base);
		run.base = base;
		run.before = base ? &before : NULL;
		if (base && (error = has_tlog(repo, &seen, &before)) < 0)
			goto done;
	} else {
		sluice_tlog_hash leaf0;
		uint64_t seq;

		if ((error = chain(repo, &ids, &nids, &head, NULL, NULL)) < 0)
			goto done;
		n = nids;
		sluice_tlog__frontier_init(&r.f);
		run.ids = ids;
		run.n = nids;
		/* The origin names the log by its first leaf, which every checkpoint names. */
		if (entry_leaf(repo, leaf0, &seq, &ids[0]) == 0)
			origin_of(run.origin, leaf0);
	}
	run.repo = repo;
	if ((error = verify_range(&r, &run, ixfound ? &ix : NULL, ixfound ? isize : 0, seen)) < 0)
		goto done;
	sluice_tlog__frontier_root(&r.f, root);
	if (ixfound && isize > n)
		vproblem_add(&r.fold, n, 2,
		             "the tlog index holds %llu leaves but the journal has %llu entries",
		             (unsigned long long)isize, (unsigned long long)n);
	if (ixfound && isize == n && n && !git_oid_equal(&ihead, &head))
		vproblem_add(&r.fold, n, 2, "the tlog index's head is not the journal's head");
	/* The fold's problems and the workers', in order of the entries. */
	{
		vproblem *all = r.nall + r.fold.n
		                        ? realloc(r.all, (r.nall + r.fold.n) * sizeof(*all))
		                        : r.all;
		if (!all && r.nall + r.fold.n) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build report");
			goto done;
		}
		r.all = all;
		if (r.fold.n)
			memcpy(r.all + r.nall, r.fold.v, r.fold.n * sizeof(*all));
		r.nall += r.fold.n;
		r.count += r.fold.count;
		r.fold.n = 0; /* moved */
		if (r.nall)
			qsort(r.all, r.nall, sizeof(*r.all), cmp_vproblem);
		for (i = 0; i < r.nall && i < PROBLEMS_MAX; i++)
			json_array_append_new(probs, json_string(r.all[i].msg));
	}
	if (ix.rtxn) {
		mdb_txn_abort(ix.rtxn);
		ix.rtxn = NULL;
	}
	/* What this run re-derived and matched, the next one need not read again. */
	if (r.count == 0 && r.f.size == n) {
		if (!full && !incremental) {
			if ((error = ix_replace(&ix, &head, run.out, n, root)) < 0)
				goto done;
			rebuilt = 1;
		} else if (ixfound && isize == n && git_oid_equal(&ihead, &head) &&
		           (error = ix_mark_put(&ix, &head, n, root)) < 0) {
			goto done;
		}
	}
	rep = json_pack("{s:s, s:I, s:I, s:o, s:s, s:I, s:I, s:{s:b, s:I, s:I, s:b},"
	                " s:{s:I, s:I, s:I, s:I}, s:I, s:{s:f, s:f, s:I, s:f}, s:I, s:o, s:b}",
	                "mode", incremental ? "incremental" : "full", "entries", (json_int_t)n,
	                "size", (json_int_t)r.f.size, "root", hash_json(root), "origin", run.origin,
	                "checked", (json_int_t)r.checked, "before_tlog", (json_int_t)r.legacy,
	                "index", "present", ixfound, "size", (json_int_t)isize, "checked",
	                (json_int_t)r.ixchecked, "rebuilt", rebuilt, "rederived", "from",
	                (json_int_t)(run.base + 1), "to", (json_int_t)(run.base + run.n), "count",
	                (json_int_t)run.n, "trusted", (json_int_t)run.base, "signatures",
	                (json_int_t)r.sigs, "seconds", "total", sluice__monotonic_s() - t0,
	                "rederive", r.read_s, "threads", (json_int_t)r.threads, "signatures",
	                r.sig_s, "problem_count", (json_int_t)r.count, "problems",
	                json_incref(probs), "ok", r.count == 0);
	if ((error = sluice_repo__report(ctx, report, rep)) < 0)
		goto done;
	if (r.count)
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "%zu problem%s in the journal's tree (the first: %s)",
		                          r.count, r.count == 1 ? "" : "s",
		                          json_string_value(json_array_get(probs, 0)));
done:
	ix_close(&ix);
	free(ids);
	free(run.out);
	vresult_dispose(&r);
	json_decref(probs);
	return error;
}
