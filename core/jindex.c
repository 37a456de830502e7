/*
 * core/jindex.c - the journal's derived LMDB index; see jindex.h.
 */
#include "jindex.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index's layout; a different one in meta means rebuild. */
#define JINDEX_FORMAT "sluice-jindex-2"

struct sluice_jindex {
	MDB_env *env;
	MDB_dbi meta, entries, moves, proposals, versions;
};

static int lmdb_error(sluice_ctx *ctx, int rc, const char *what)
{
	return sluice_ctx__error(ctx, rc == ENOMEM ? SLUICE_ENOMEM : SLUICE_EIO,
	                         "journal index: %s: %s", what, mdb_strerror(rc));
}

void sluice_jindex__free(sluice_jindex *ix)
{
	if (!ix)
		return;
	if (ix->env)
		mdb_env_close(ix->env);
	free(ix);
}

static int jopen(sluice_repo *repo, sluice_jindex **out)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	char dir[PATH_MAX];
	int rc, dead, error;

	if (repo->jindex) {
		*out = repo->jindex;
		return SLUICE_OK;
	}
	snprintf(dir, sizeof(dir), "%s/journal-index", repo->sdir);
	if ((error = sluice_io__mkdirs(ctx, dir, 0755)) < 0)
		return error;
	if (!(ix = sluice__calloc(ctx, 1, sizeof(*ix))))
		return SLUICE_ENOMEM;
	if ((rc = mdb_env_create(&ix->env)) != 0 || (rc = mdb_env_set_maxdbs(ix->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(ix->env, (size_t)8 << 30)) != 0 ||
	    (rc = mdb_env_open(ix->env, dir, MDB_NOTLS | MDB_NOSYNC | MDB_NOMETASYNC, 0644)) != 0) {
		error = rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_VERSION_MISMATCH
		                ? sluice_ctx__error(
		                          ctx, SLUICE_ECORRUPT,
		                          "the journal index in %s is damaged (%s); it is "
		                          "derived: run sluice reindex to rebuild it",
		                          dir, mdb_strerror(rc))
		                : lmdb_error(ctx, rc, dir);
		goto fail;
	}
	/* Readers left by killed processes would pin old pages forever. */
	if ((rc = mdb_reader_check(ix->env, &dead)) != 0) {
		error = lmdb_error(ctx, rc, "clearing stale readers");
		goto fail;
	}
	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &ix->entries)) != 0 ||
	    (rc = mdb_dbi_open(txn, "moves", MDB_CREATE, &ix->moves)) != 0 ||
	    (rc = mdb_dbi_open(txn, "proposals", MDB_CREATE, &ix->proposals)) != 0 ||
	    (rc = mdb_dbi_open(txn, "versions", MDB_CREATE, &ix->versions)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		if (txn && rc != 0)
			mdb_txn_abort(txn);
		error = lmdb_error(ctx, rc, "opening databases");
		goto fail;
	}
	repo->jindex = ix;
	*out = ix;
	return SLUICE_OK;
fail:
	sluice_jindex__free(ix);
	return error;
}

static void be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

/* Proposals are found by (parent, state): BLAKE2b-256 of "parent-hex:state-hex". */
static void proposal_key(unsigned char out[32], const char *parent, const char *state)
{
	char buf[2 * GIT_OID_HEXSZ + 2];

	snprintf(buf, sizeof(buf), "%s:%s", parent, state);
	sluice__b2(out, buf, strlen(buf));
}

static void channel_key(unsigned char out[40], const char *channel, uint64_t seq)
{
	sluice__b2(out, channel, strlen(channel));
	be64(out + 32, seq);
}

/* Index entries[0..n) (oldest first) in txn, and set meta to the last. */
static int put_entries(sluice_repo *repo, sluice_jindex *ix, MDB_txn *txn, const git_oid *ids,
                       size_t n)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *channels = NULL;
	int rc, error = SLUICE_OK;

	for (size_t i = 0; i < n; i++) {
		json_t *rec = NULL;
		char *text = NULL;
		unsigned char key[40], headval[28];
		uint64_t seq;
		MDB_val k, v;
		sluice_buf val = {0};

		if ((error = sluice_journal__record(repo, &rec, &ids[i])) < 0)
			return error;
		seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
		if ((error = sluice_repo__dump(ctx, &text, rec)) < 0 ||
		    (error = sluice_buf__put(ctx, &val, ids[i].id, 20)) < 0 ||
		    (error = sluice_buf__puts(ctx, &val, text)) < 0)
			goto next;
		be64(key, seq);
		k.mv_size = 8;
		k.mv_data = key;
		v.mv_size = val.len;
		v.mv_data = val.ptr;
		if ((rc = mdb_put(txn, ix->entries, &k, &v, 0)) != 0) {
			error = lmdb_error(ctx, rc, "writing an entry");
			goto next;
		}
		if (!strcmp(sluice__jstr(json_object_get(rec, "action")), "propose")) {
			const char *ver = sluice__jstr(json_object_get(rec, "version"));
			proposal_key(key, sluice__jstr(json_object_get(rec, "parent")),
			             sluice__jstr(json_object_get(rec, "state")));
			k.mv_size = 32;
			v.mv_size = strlen(ver);
			v.mv_data = (void *)ver;
			/* The first proposal of a (parent, state) is the one that stands. */
			rc = mdb_put(txn, ix->proposals, &k, &v, MDB_NOOVERWRITE);
			if (rc != 0 && rc != MDB_KEYEXIST) {
				error = lmdb_error(ctx, rc, "writing a proposal");
				goto next;
			}
			{
				git_oid vid;
				unsigned char seqbuf[8];
				MDB_val vk = {20, vid.id}, vv = {8, seqbuf};
				if (git_oid_fromstr(&vid, ver) == 0) {
					be64(seqbuf, seq);
					rc = mdb_put(txn, ix->versions, &vk, &vv, MDB_NOOVERWRITE);
					if (rc != 0 && rc != MDB_KEYEXIST) {
						error = lmdb_error(ctx, rc, "writing a version");
						goto next;
					}
				}
			}
		}
		if (sluice_journal__is_move(sluice__jstr(json_object_get(rec, "action")))) {
			channel_key(key, json_string_value(json_object_get(rec, "channel")), seq);
			k.mv_size = 40;
			v.mv_size = strlen(text);
			v.mv_data = text;
			if ((rc = mdb_put(txn, ix->moves, &k, &v, 0)) != 0) {
				error = lmdb_error(ctx, rc, "writing a move");
				goto next;
			}
		}
		if (i + 1 == n) {
			memcpy(headval, ids[i].id, 20);
			be64(headval + 20, seq);
			k.mv_size = 4;
			k.mv_data = "head";
			v.mv_size = 28;
			v.mv_data = headval;
			if ((rc = mdb_put(txn, ix->meta, &k, &v, 0)) != 0) {
				error = lmdb_error(ctx, rc, "writing the head");
				goto next;
			}
			if ((error = sluice_journal__channels_at(repo, &channels, &ids[i])) < 0)
				goto next;
			free(text);
			text = NULL;
			if ((error = sluice_repo__dump(ctx, &text, channels)) < 0)
				goto next;
			k.mv_size = 8;
			k.mv_data = "channels";
			v.mv_size = strlen(text);
			v.mv_data = text;
			if ((rc = mdb_put(txn, ix->meta, &k, &v, 0)) != 0)
				error = lmdb_error(ctx, rc, "writing channel heads");
		}
	next:
		sluice_buf__dispose(&val);
		free(text);
		json_decref(rec);
		if (error < 0)
			break;
	}
	json_decref(channels);
	return error;
}

/* The indexed head inside txn; *found = 0 when the index is empty. */
static int meta_head(sluice_jindex *ix, MDB_txn *txn, git_oid *head, uint64_t *seq, int *found)
{
	MDB_val k = {4, (void *)"head"}, v;
	int rc = mdb_get(txn, ix->meta, &k, &v);

	*found = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0 || v.mv_size != 28)
		return -1;
	memcpy(head->id, v.mv_data, 20);
	*seq = 0;
	for (int i = 0; i < 8; i++)
		*seq = *seq << 8 | ((unsigned char *)v.mv_data)[20 + i];
	*found = 1;
	return 0;
}

/* The first-parent chain from the journal head back to (not including) stop. */
static int collect(sluice_repo *repo, git_oid **out, size_t *n, const git_oid *head,
                   const git_oid *stop, int *reached)
{
	git_revwalk *walk = NULL;
	git_oid id, *ids = NULL;
	size_t cap = 0;
	int error;

	*n = 0;
	*reached = 0;
	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_push(walk, head)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot walk the journal");
		goto done;
	}
	git_revwalk_simplify_first_parent(walk);
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		if (stop && git_oid_equal(&id, stop)) {
			*reached = 1;
			break;
		}
		if (*n == cap) {
			void *p = sluice__realloc(repo->ctx, ids,
			                          (cap = cap ? cap * 2 : 64) * sizeof(*ids));
			if (!p) {
				error = SLUICE_ENOMEM;
				goto done;
			}
			ids = p;
		}
		ids[(*n)++] = id;
	}
	if (error == GIT_ITEROVER || error == 0)
		error = 0;
	else
		error = sluice_ctx__giterror(repo->ctx, error, "cannot walk the journal");
	/* Oldest first. */
	for (size_t i = 0; i < *n / 2; i++) {
		git_oid t = ids[i];
		ids[i] = ids[*n - 1 - i];
		ids[*n - 1 - i] = t;
	}
done:
	git_revwalk_free(walk);
	if (error < 0) {
		free(ids);
		ids = NULL;
		*n = 0;
	}
	*out = ids;
	return error;
}

static int sync_or_rebuild(sluice_repo *repo, int rebuild, uint64_t *count)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	git_oid head, indexed, *ids = NULL;
	uint64_t seq = 0;
	size_t n = 0;
	int exists, found = 0, reached = 0, rc, error;

	if ((error = jopen(repo, &ix)) < 0 ||
	    (error = sluice_journal__head(repo, &head, &exists)) < 0)
		return error;
	/* One writer at a time: the write transaction also serialises syncs. */
	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0)
		return lmdb_error(ctx, rc, "beginning a write");
	if (!rebuild) {
		/* An index written by another layout is rebuilt, not trusted. */
		MDB_val fk = {6, (void *)"format"}, fv;
		if (mdb_get(txn, ix->meta, &fk, &fv) != 0 || fv.mv_size != strlen(JINDEX_FORMAT) ||
		    memcmp(fv.mv_data, JINDEX_FORMAT, fv.mv_size))
			rebuild = 1;
	}
	if (!rebuild && meta_head(ix, txn, &indexed, &seq, &found) < 0) {
		rebuild = 1; /* unreadable meta: start again */
		found = 0;
	}
	if (!exists || (found && git_oid_equal(&indexed, &head))) {
		mdb_txn_abort(txn);
		if (count)
			*count = seq;
		return SLUICE_OK;
	}
	if ((error = collect(repo, &ids, &n, &head, found ? &indexed : NULL, &reached)) < 0)
		goto done;
	if (found && !reached) {
		/* The indexed head is not in the journal's history: start again. */
		rebuild = 1;
		free(ids);
		if ((error = collect(repo, &ids, &n, &head, NULL, &reached)) < 0)
			goto done;
	}
	if (rebuild) {
		if ((rc = mdb_drop(txn, ix->meta, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->entries, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->moves, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->proposals, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->versions, 0)) != 0) {
			error = lmdb_error(ctx, rc, "dropping the index");
			goto done;
		}
	}
	if ((error = put_entries(repo, ix, txn, ids, n)) < 0)
		goto done;
	{
		MDB_val fk = {6, (void *)"format"},
		        fv = {strlen(JINDEX_FORMAT), (void *)JINDEX_FORMAT};
		if ((rc = mdb_put(txn, ix->meta, &fk, &fv, 0)) != 0) {
			error = lmdb_error(ctx, rc, "writing the format");
			goto done;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		error = lmdb_error(ctx, rc, "committing");
		goto done;
	}
	txn = NULL;
	if (count)
		*count = (rebuild ? 0 : seq) + n;
done:
	if (txn)
		mdb_txn_abort(txn);
	free(ids);
	return error;
}

int sluice_jindex__sync(sluice_repo *repo)
{
	return sync_or_rebuild(repo, 0, NULL);
}

int sluice_jindex__rebuild(sluice_repo *repo, uint64_t *entries)
{
	return sync_or_rebuild(repo, 1, entries);
}

int sluice_jindex__history(sluice_repo *repo, const char *channel, json_t **out)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	unsigned char key[40];
	MDB_val k, v;
	json_t *arr;
	int rc, error;

	if ((error = sluice_jindex__sync(repo)) < 0 || (error = jopen(repo, &ix)) < 0)
		return error;
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, ix->moves, &cur)) != 0) {
		if (txn)
			mdb_txn_abort(txn);
		return lmdb_error(ctx, rc, "reading history");
	}
	arr = json_array();
	channel_key(key, channel, 0);
	k.mv_size = 40;
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		json_error_t jerr;
		json_t *rec;

		if (k.mv_size != 40 || memcmp(k.mv_data, key, 32))
			break;
		/* Copied out of the map before the transaction ends. */
		if (!(rec = json_loadb(v.mv_data, v.mv_size, 0, &jerr))) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "journal index: unreadable move record; run sluice "
			        "reindex");
			break;
		}
		json_array_append_new(arr, rec);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (error < 0) {
		json_decref(arr);
		return error;
	}
	*out = arr;
	return SLUICE_OK;
}

int sluice_jindex__channels(sluice_repo *repo, json_t **out)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	MDB_val k = {8, (void *)"channels"}, v;
	json_error_t jerr;
	int rc, error;

	if ((error = sluice_jindex__sync(repo)) < 0 || (error = jopen(repo, &ix)) < 0)
		return error;
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(ctx, rc, "reading channels");
	rc = mdb_get(txn, ix->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*out = json_object();
	} else if (rc != 0) {
		error = lmdb_error(ctx, rc, "reading channels");
	} else if (!(*out = json_loadb(v.mv_data, v.mv_size, 0, &jerr))) {
		error = sluice_ctx__error(
		        ctx, SLUICE_ECORRUPT,
		        "journal index: unreadable channel heads; run sluice reindex");
	}
	mdb_txn_abort(txn);
	return error;
}

int sluice_jindex__head(sluice_repo *repo, git_oid *head, uint64_t *seq)
{
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	int rc, found, error;

	if ((error = jopen(repo, &ix)) < 0)
		return error;
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(repo->ctx, rc, "reading the head");
	if (meta_head(ix, txn, head, seq, &found) < 0 || !found)
		error = sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND,
		                          "the journal index is empty");
	mdb_txn_abort(txn);
	return error;
}

int sluice_jindex__find_proposal(sluice_repo *repo, git_oid *out, int *found, const char *parent,
                                 const char *state)
{
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	unsigned char key[32];
	MDB_val k = {32, key}, v;
	char hex[GIT_OID_HEXSZ + 1];
	int rc, error;

	*found = 0;
	if ((error = sluice_jindex__sync(repo)) < 0 || (error = jopen(repo, &ix)) < 0)
		return error;
	proposal_key(key, parent, state);
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(repo->ctx, rc, "reading proposals");
	rc = mdb_get(txn, ix->proposals, &k, &v);
	if (rc == 0 && v.mv_size == GIT_OID_HEXSZ) {
		memcpy(hex, v.mv_data, GIT_OID_HEXSZ);
		hex[GIT_OID_HEXSZ] = '\0';
		*found = git_oid_fromstr(out, hex) == 0;
	} else if (rc != MDB_NOTFOUND) {
		error = lmdb_error(repo->ctx, rc, "reading proposals");
	}
	mdb_txn_abort(txn);
	return error;
}

int sluice_jindex__has_version(sluice_repo *repo, const git_oid *id, int *found)
{
	uint64_t seq;
	return sluice_jindex__version_seq(repo, id, found, &seq);
}

int sluice_jindex__version_seq(sluice_repo *repo, const git_oid *id, int *found, uint64_t *seq)
{
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	MDB_val k = {20, (void *)id->id}, v;
	int rc, error;

	*found = 0;
	if ((error = sluice_jindex__sync(repo)) < 0 || (error = jopen(repo, &ix)) < 0)
		return error;
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(repo->ctx, rc, "reading versions");
	*seq = 0;
	rc = mdb_get(txn, ix->versions, &k, &v);
	if (rc == 0) {
		*found = 1;
		if (v.mv_size == 8)
			for (int i = 0; i < 8; i++)
				*seq = *seq << 8 | ((const unsigned char *)v.mv_data)[i];
	} else if (rc != MDB_NOTFOUND)
		error = lmdb_error(repo->ctx, rc, "reading versions");
	mdb_txn_abort(txn);
	return error;
}
