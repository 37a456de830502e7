/*
 * core/jindex.c - the journal's derived LMDB index; see jindex.h.
 */
#include "jindex.h"
#include "version.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The index's layout; a different one in meta means rebuild. 4 added the
 * lineage, moves_to and move_times databases: an index of format 3 has
 * none of them, and is rebuilt on open rather than read as if a version
 * without a lineage record were unreadable. 5 added held and withdrawn,
 * which channel moves are decided on since channels.json format 2: an
 * index without them would answer "never held" for everything.
 */
#define JINDEX_FORMAT "sluice-jindex-5"

struct sluice_jindex {
	MDB_env *env;
	MDB_dbi meta, entries, moves, proposals, versions, children, channel_time;
	MDB_dbi lineage, moves_to, move_times, held, withdrawn;
	MDB_dbi filter[SLUICE_JX_NFILTERS]; /* by_time, by_actor, ... (enum order) */
};

/* The filter databases' names, in sluice_jindex_filter order. */
static const char *const filter_db[SLUICE_JX_NFILTERS] = {"by_time",    "by_actor",   "by_action",
                                                          "by_channel", "by_version", "by_kind",
                                                          "by_source",  "by_gate",    "by_outcome"};

struct sluice_jindex_read {
	sluice_repo *repo;
	sluice_jindex *ix;
	MDB_txn *txn;
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
	if ((rc = mdb_env_create(&ix->env)) != 0 || (rc = mdb_env_set_maxdbs(ix->env, 24)) != 0 ||
	    (rc = mdb_env_set_mapsize(ix->env, (size_t)8 << 30)) != 0 ||
	    (rc = mdb_env_open(ix->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0644)) != 0) {
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
	    (rc = mdb_dbi_open(txn, "children", MDB_CREATE, &ix->children)) != 0 ||
	    (rc = mdb_dbi_open(txn, "channel_time", MDB_CREATE, &ix->channel_time)) != 0 ||
	    (rc = mdb_dbi_open(txn, "lineage", MDB_CREATE, &ix->lineage)) != 0 ||
	    (rc = mdb_dbi_open(txn, "moves_to", MDB_CREATE, &ix->moves_to)) != 0 ||
	    (rc = mdb_dbi_open(txn, "move_times", MDB_CREATE, &ix->move_times)) != 0 ||
	    (rc = mdb_dbi_open(txn, "held", MDB_CREATE, &ix->held)) != 0 ||
	    (rc = mdb_dbi_open(txn, "withdrawn", MDB_CREATE, &ix->withdrawn)) != 0)
		goto dbi_fail;
	for (int f = 0; f < SLUICE_JX_NFILTERS; f++)
		if ((rc = mdb_dbi_open(txn, filter_db[f], MDB_CREATE, &ix->filter[f])) != 0)
			goto dbi_fail;
	rc = mdb_txn_commit(txn);
	txn = NULL; /* a failed commit frees the transaction too */
	if (rc != 0) {
	dbi_fail:
		if (txn)
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
static uint64_t load_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

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

/* A filter key: BLAKE2b-256(value) || u64 BE seq (by_time: the 20-byte time || seq). */
static size_t filter_key(unsigned char out[40], int which, const char *value, uint64_t seq)
{
	if (which == SLUICE_JX_TIME) {
		memset(out, 0, 32);
		memcpy(out, value, strnlen(value, 20));
		be64(out + 20, seq);
		return 28;
	}
	sluice__b2(out, value, strlen(value));
	be64(out + 32, seq);
	return 40;
}

static int put_filter(sluice_ctx *ctx, sluice_jindex *ix, MDB_txn *txn, int which,
                      const char *value, uint64_t seq)
{
	unsigned char key[40];
	MDB_val k = {0, key}, v = {0, (void *)""};
	int rc;

	if (!value || !*value)
		return SLUICE_OK;
	k.mv_size = filter_key(key, which, value, seq);
	if ((rc = mdb_put(txn, ix->filter[which], &k, &v, 0)) != 0)
		return lmdb_error(ctx, rc, filter_db[which]);
	return SLUICE_OK;
}

/* Prefixed values ("fp:...", "n:...") share a database without colliding. */
static int put_filter2(sluice_ctx *ctx, sluice_jindex *ix, MDB_txn *txn, int which,
                       const char *prefix, const char *value, uint64_t seq)
{
	sluice_buf b = {0};
	int error;

	if (!value || !*value)
		return SLUICE_OK;
	if ((error = sluice_buf__printf(ctx, &b, "%s%s", prefix, value)) == 0 &&
	    (error = sluice_buf__cstr(ctx, &b)) == 0)
		error = put_filter(ctx, ix, txn, which, (const char *)b.ptr, seq);
	sluice_buf__dispose(&b);
	return error;
}

/* The provenance sources a version's update.json declares (new reference; [] if none). */
static int version_sources(sluice_repo *repo, json_t **out, const char *hex)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	const git_tree_entry *te;
	sluice_buf b = {0};
	json_t *update = NULL;
	git_oid id;
	int error = SLUICE_OK;

	*out = NULL;
	if (git_oid_fromstr(&id, hex) < 0 || git_commit_lookup(&c, repo->git, &id) < 0 ||
	    git_commit_tree(&t, c) < 0 || !(te = git_tree_entry_byname(t, "update.json"))) {
		error = sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT,
		                          "journal index: version %.12s named by a proposal has "
		                          "no readable update.json",
		                          hex);
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, &b, git_tree_entry_id(te), "update.json")) < 0 ||
	    (error = sluice_repo__parse_json(repo->ctx, &update, b.ptr, b.len, "update.json")) < 0)
		goto done;
	*out = json_incref(json_object_get(json_object_get(update, "provenance"), "sources"));
	if (!*out)
		*out = json_array();
done:
	json_decref(update);
	sluice_buf__dispose(&b);
	git_tree_free(t);
	git_commit_free(c);
	return error;
}

/* ---- the lineage record of a version ----------------------------------- */

static const char *const section_names[SLUICE_JX_NSECTIONS] = {"base", "adapters", "replay",
                                                               "memory"};

const char *sluice_jindex__section_name(int section)
{
	return section >= 0 && section < SLUICE_JX_NSECTIONS ? section_names[section] : "";
}

/*
 * The encoding (all integers big-endian):
 *   u8 1 (this encoding) || u32 meta length || meta (compact JSON object)
 *   || u32 ncomps || u32 nbrought || the components, state's then brought's:
 *   u8 section || u32 name length || name || u8 0 || digest (32)
 * The names are NUL-terminated in place, so a decoded record points into
 * its own bytes.
 */
#define VINFO_TAG 2 /* 1 was a draft with u16 name lengths, never released */
#define VINFO_COMP_MIN (1 + 4 + 1 + 32)

static void be32(unsigned char out[4], uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

static uint32_t load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Append one component, its digest that of files' canonical JSON. */
static int put_comp(sluice_ctx *ctx, sluice_buf *b, uint32_t *count, int section, const char *name,
                    json_t *files)
{
	unsigned char head[5], digest[32];
	size_t len = strlen(name);
	char *text = NULL;
	int error;

	/* json_equal(NULL, x) is false: an entry without files matches nothing. */
	if (!files)
		return SLUICE_OK;
	if (len > UINT32_MAX - 64)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "journal index: a %s component's name is too long",
		                         section_names[section]);
	if ((error = sluice_repo__dump(ctx, &text, files)) < 0)
		return error;
	sluice__b2(digest, text, strlen(text));
	free(text);
	head[0] = (unsigned char)section;
	be32(head + 1, (uint32_t)len);
	if ((error = sluice_buf__put(ctx, b, head, 5)) < 0 ||
	    (error = sluice_buf__put(ctx, b, name, len + 1)) < 0 ||
	    (error = sluice_buf__put(ctx, b, digest, 32)) < 0)
		return error;
	(*count)++;
	return SLUICE_OK;
}

/* Every component of a state, in section order (what still_held compares). */
static int put_state_comps(sluice_ctx *ctx, sluice_buf *b, uint32_t *count, json_t *state)
{
	json_t *e;
	size_t i;
	int error;

	if ((error = put_comp(ctx, b, count, SLUICE_JX_BASE, "",
	                      json_object_get(json_object_get(state, "base"), "files"))) < 0)
		return error;
	for (int sec = SLUICE_JX_ADAPTERS; sec < SLUICE_JX_NSECTIONS; sec++)
		json_array_foreach(json_object_get(state, section_names[sec]), i, e)
		{
			if ((error = put_comp(
			             ctx, b, count, sec, sluice__jstr(json_object_get(e, "name")),
			             json_object_get(e, sec == SLUICE_JX_ADAPTERS ? "files"
			                                                          : "file"))) < 0)
				return error;
		}
	return SLUICE_OK;
}

/*
 * The components an update brought into its version: a base's files, the
 * adapter or replay batch its details name, the memory notes its edits
 * name. A descendant still carries the update's influence while it holds
 * one of them byte for byte.
 */
static int put_brought(sluice_ctx *ctx, sluice_buf *b, uint32_t *count, json_t *update,
                       json_t *state)
{
	json_t *det = json_object_get(update, "details"), *e, *n;
	const char *kind = sluice__jstr(json_object_get(update, "kind"));
	size_t i, j;
	int error;

	if (!strcmp(kind, "base"))
		return put_comp(ctx, b, count, SLUICE_JX_BASE, "",
		                json_object_get(json_object_get(state, "base"), "files"));
	if (!strcmp(kind, "lora") || !strcmp(kind, "replay")) {
		int lora = !strcmp(kind, "lora"),
		    sec = lora ? SLUICE_JX_ADAPTERS : SLUICE_JX_REPLAY;
		const char *name = sluice__jstr(json_object_get(det, lora ? "adapter" : "batch"));
		json_array_foreach(json_object_get(state, section_names[sec]), i, e)
		{
			if (strcmp(sluice__jstr(json_object_get(e, "name")), name))
				continue;
			if ((error = put_comp(ctx, b, count, sec, name,
			                      json_object_get(e, lora ? "files" : "file"))) < 0)
				return error;
		}
		return SLUICE_OK;
	}
	if (!strcmp(kind, "memory"))
		json_array_foreach(json_object_get(det, "edits"), i, e)
		{
			const char *name = sluice__jstr(json_object_get(e, "name"));
			json_array_foreach(json_object_get(state, "memory"), j, n)
			{
				if (strcmp(sluice__jstr(json_object_get(n, "name")), name))
					continue;
				if ((error = put_comp(ctx, b, count, SLUICE_JX_MEMORY, name,
				                      json_object_get(n, "file"))) < 0)
					return error;
			}
		}
	return SLUICE_OK;
}

static int vinfo_encode(sluice_ctx *ctx, sluice_buf *out, json_t *update, json_t *state)
{
	static const char *const keep[] = {"kind", "summary", "parent"};
	json_t *meta = json_object();
	char *text = NULL;
	unsigned char hdr[8];
	size_t counts;
	uint32_t ncomps = 0, nbrought = 0;
	int error;

	if (!meta)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(update, keep[i]);
		if (v && json_object_set(meta, keep[i], v) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
			goto done;
		}
	}
	if ((error = sluice_repo__dump(ctx, &text, meta)) < 0)
		goto done;
	if (strlen(text) > UINT32_MAX - 64) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "journal index: a version's kind, summary and parent are "
		                          "too long to index");
		goto done;
	}
	hdr[0] = VINFO_TAG;
	be32(hdr + 1, (uint32_t)strlen(text));
	if ((error = sluice_buf__put(ctx, out, hdr, 5)) < 0 ||
	    (error = sluice_buf__puts(ctx, out, text)) < 0)
		goto done;
	/* The counts are filled in once the components are written. */
	counts = out->len;
	memset(hdr, 0, 8);
	if ((error = sluice_buf__put(ctx, out, hdr, 8)) < 0 ||
	    (error = put_state_comps(ctx, out, &ncomps, state)) < 0 ||
	    (error = put_brought(ctx, out, &nbrought, update, state)) < 0)
		goto done;
	be32(out->ptr + counts, ncomps);
	be32(out->ptr + counts + 4, nbrought);
done:
	free(text);
	json_decref(meta);
	return error;
}

void sluice_jindex__vinfo_dispose(sluice_jindex_vinfo *v)
{
	if (!v)
		return;
	json_decref(v->meta);
	free(v->comps);
	free(v->mem);
	memset(v, 0, sizeof(*v));
}

/* Decode a record, taking mem (len bytes, malloc'd) whatever happens. */
static int vinfo_decode(sluice_ctx *ctx, sluice_jindex_vinfo *out, unsigned char *mem, size_t len,
                        const char *what)
{
	json_error_t jerr;
	const char *why;
	size_t pos = 0, n, i;
	uint32_t mlen, ncomps, nbrought;

	memset(out, 0, sizeof(*out));
	out->mem = mem;
	why = "not a lineage record of this layout";
	if (len < 5 || mem[0] != VINFO_TAG)
		goto bad;
	mlen = load_be32(mem + 1);
	pos = 1;
	why = "metadata longer than the record";
	if (mlen > len - 5 || len - 5 - mlen < 8)
		goto bad;
	pos = 5;
	why = "metadata is not a JSON object";
	if (!(out->meta = json_loadb((const char *)mem + 5, mlen, 0, &jerr)) ||
	    !json_is_object(out->meta))
		goto bad;
	pos = 5 + (size_t)mlen;
	ncomps = load_be32(mem + pos);
	nbrought = load_be32(mem + pos + 4);
	n = (size_t)ncomps + nbrought;
	why = "more components than the record has bytes for";
	if (n > (len - pos - 8) / VINFO_COMP_MIN)
		goto bad;
	pos += 8;
	if (n && !(out->comps = sluice__calloc(ctx, n, sizeof(*out->comps)))) {
		sluice_jindex__vinfo_dispose(out);
		return SLUICE_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		sluice_jindex_comp *c = &out->comps[i];
		size_t nlen;
		why = "a component past the end";
		if (len - pos < VINFO_COMP_MIN)
			goto bad;
		why = "a component of no known section";
		if (mem[pos] >= SLUICE_JX_NSECTIONS)
			goto bad;
		c->section = mem[pos];
		nlen = load_be32(mem + pos + 1);
		pos += 5;
		why = "a component name not NUL-terminated in place";
		if (nlen + 1 + 32 > len - pos || mem[pos + nlen] != '\0' ||
		    memchr(mem + pos, '\0', nlen))
			goto bad;
		c->name = (const char *)mem + pos;
		pos += nlen + 1;
		memcpy(c->digest, mem + pos, 32);
		pos += 32;
	}
	why = "bytes after the last component";
	if (pos != len)
		goto bad;
	out->ncomps = ncomps;
	/* No components: comps is NULL, and NULL + 0 is undefined in C. */
	out->brought = out->comps ? out->comps + ncomps : NULL;
	out->nbrought = nbrought;
	return SLUICE_OK;
bad:
	sluice_jindex__vinfo_dispose(out);
	return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
	                         "journal index: the lineage record of version %s is "
	                         "unreadable (byte %zu of %zu: %s); run sluice reindex",
	                         what, pos, len, why);
}

int sluice_jindex__vinfo_of(sluice_ctx *ctx, sluice_jindex_vinfo *out, json_t *update,
                            json_t *state)
{
	sluice_buf b = {0};
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = vinfo_encode(ctx, &b, update, state)) < 0) {
		sluice_buf__dispose(&b);
		return error;
	}
	return vinfo_decode(ctx, out, b.ptr, b.len, "(computed)");
}

static int vinfo_copy(sluice_ctx *ctx, sluice_jindex_vinfo *out, const void *data, size_t len,
                      const char *what)
{
	unsigned char *mem;

	memset(out, 0, sizeof(*out));
	if (!(mem = sluice__malloc(ctx, len ? len : 1)))
		return SLUICE_ENOMEM;
	if (len)
		memcpy(mem, data, len);
	return vinfo_decode(ctx, out, mem, len, what);
}

int sluice_jindex__vinfo_parse(sluice_ctx *ctx, sluice_jindex_vinfo *out, const void *data,
                               size_t len)
{
	return vinfo_copy(ctx, out, data, len, "(given)");
}

int sluice_jindex__vinfo(sluice_jindex_read *r, sluice_jindex_vinfo *out, const git_oid *id,
                         int *found)
{
	MDB_val k = {20, (void *)id->id}, v;
	char hex[GIT_OID_HEXSZ + 1];
	int rc;

	memset(out, 0, sizeof(*out));
	*found = 0;
	rc = mdb_get(r->txn, r->ix->lineage, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SLUICE_OK;
	if (rc != 0)
		return lmdb_error(r->repo->ctx, rc, "reading a lineage record");
	*found = 1;
	git_oid_tostr(hex, sizeof(hex), id);
	/* Copied: the map's bytes last only as long as the transaction. */
	return vinfo_copy(r->repo->ctx, out, v.mv_data, v.mv_size, hex);
}

/*
 * A proposal's version: its declared provenance sources into *sources (new
 * reference; [] if none) and its lineage record into the lineage database.
 * A version that does not load (no commit, no update.json or state.json, a
 * state that fails its checks) gets no lineage record, so lineage loads it
 * and fails with the same message it always gave; its sources are still
 * read from update.json if that much is readable.
 */
static int put_version(sluice_repo *repo, sluice_jindex *ix, MDB_txn *txn, json_t **sources,
                       const char *hex)
{
	sluice_version ver = {0};
	sluice_buf b = {0};
	git_oid id;
	int rc, error;

	*sources = NULL;
	if (git_oid_fromstr(&id, hex) < 0)
		return version_sources(repo, sources, hex);
	if ((error = sluice_version__load_id(repo, &ver, &id)) < 0) {
		if (error == SLUICE_ENOMEM)
			return error;
		sluice_ctx_clear_error(repo->ctx);
		return version_sources(repo, sources, hex);
	}
	*sources =
	        json_incref(json_object_get(json_object_get(ver.update, "provenance"), "sources"));
	if (!*sources && !(*sources = json_array())) {
		error = sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	if ((error = vinfo_encode(repo->ctx, &b, ver.update, ver.state)) < 0)
		goto done;
	{
		MDB_val k = {20, id.id}, v = {b.len, b.ptr};
		if ((rc = mdb_put(txn, ix->lineage, &k, &v, 0)) != 0)
			error = lmdb_error(repo->ctx, rc, "writing a lineage record");
	}
done:
	if (error < 0) {
		json_decref(*sources);
		*sources = NULL;
	}
	sluice_buf__dispose(&b);
	sluice_version__dispose(&ver);
	return error;
}

/*
 * A move's time as stored in move_times: "" when the record has none, "s"
 * and the string, or "j" and its JSON (any other value, kept as it was).
 */
static int put_move(sluice_ctx *ctx, sluice_jindex *ix, MDB_txn *txn, json_t *rec, uint64_t seq)
{
	const char *channel = sluice__jstr(json_object_get(rec, "channel")),
	           *to = sluice__jstr(json_object_get(rec, "to"));
	json_t *time = json_object_get(rec, "time");
	unsigned char key[40];
	sluice_buf tv = {0};
	char *text = NULL;
	MDB_val k = {40, key}, v;
	int rc, error = SLUICE_OK;

	if (json_is_string(time)) {
		if ((error = sluice_buf__put(ctx, &tv, "s", 1)) == 0)
			error = sluice_buf__put(ctx, &tv, json_string_value(time),
			                        json_string_length(time));
	} else if (time && (error = sluice_repo__dump(ctx, &text, time)) == 0 &&
	           (error = sluice_buf__put(ctx, &tv, "j", 1)) == 0)
		error = sluice_buf__puts(ctx, &tv, text);
	if (error < 0)
		goto done;
	channel_key(key, channel, seq);
	v.mv_size = tv.len;
	v.mv_data = tv.ptr ? (void *)tv.ptr : (void *)"";
	if ((rc = mdb_put(txn, ix->move_times, &k, &v, 0)) != 0) {
		error = lmdb_error(ctx, rc, "writing a move time");
		goto done;
	}
	/* A move to no version (no "to") opens no head interval. */
	if (*to) {
		channel_key(key, to, seq);
		v.mv_size = strlen(channel);
		v.mv_data = (void *)channel;
		if ((rc = mdb_put(txn, ix->moves_to, &k, &v, 0)) != 0)
			error = lmdb_error(ctx, rc, "writing a move to a version");
	}
done:
	free(text);
	sluice_buf__dispose(&tv);
	return error;
}

/* held: version oid (20) || BLAKE2b-256(channel); withdrawn: the same two swapped. */
static int held_key(unsigned char out[52], int withdrawn, const char *channel, const char *hex)
{
	git_oid id;

	if (git_oid_fromstr(&id, hex) < 0)
		return -1;
	if (withdrawn) {
		sluice__b2(out, channel, strlen(channel));
		memcpy(out + 32, id.id, 20);
	} else {
		memcpy(out, id.id, 20);
		sluice__b2(out + 20, channel, strlen(channel));
	}
	return 0;
}

/*
 * What a move record says of its channel's versions (channels.json format
 * 1 kept it as lists in every entry): the channel held its target; a
 * rollback withdraws the version it left; a promotion or rollback to a
 * version ends its withdrawal (a reset does not: it is no judgement on it).
 */
static int put_held(sluice_ctx *ctx, sluice_jindex *ix, MDB_txn *txn, json_t *rec,
                    const char *action, uint64_t seq)
{
	const char *channel = sluice__jstr(json_object_get(rec, "channel")),
	           *to = sluice__jstr(json_object_get(rec, "to")),
	           *from = sluice__jstr(json_object_get(rec, "from"));
	unsigned char key[52], val[8 + 256];
	size_t clen = strlen(channel);
	MDB_val k = {52, key}, v = {8, val};
	int rc;

	be64(val, seq);
	if (held_key(key, 0, channel, to) < 0)
		return SLUICE_OK; /* no version: nothing held */
	/* The name beside the seq, for "which channels held it" (truncated past 256). */
	memcpy(val + 8, channel, clen < 256 ? clen : 256);
	v.mv_size = 8 + (clen < 256 ? clen : 256);
	if ((rc = mdb_put(txn, ix->held, &k, &v, 0)) != 0)
		return lmdb_error(ctx, rc, "writing a held version");
	v.mv_size = 8;
	if (!strcmp(action, "rollback") && held_key(key, 1, channel, from) == 0 &&
	    (rc = mdb_put(txn, ix->withdrawn, &k, &v, 0)) != 0)
		return lmdb_error(ctx, rc, "writing a withdrawn version");
	if (strcmp(action, "reset") && held_key(key, 1, channel, to) == 0 &&
	    (rc = mdb_del(txn, ix->withdrawn, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
		return lmdb_error(ctx, rc, "clearing a withdrawn version");
	return SLUICE_OK;
}

/* The fields of a record that name a version (docs/audit-queries.md). */
static const char *const version_fields[] = {"version", "to",       "from", "candidate",
                                             "anchor",  "previous", NULL};

/* Add one entry to the filter databases and, for a proposal, to children. */
static int put_filters(sluice_repo *repo, sluice_jindex *ix, MDB_txn *txn, json_t *rec,
                       uint64_t seq)
{
	sluice_ctx *ctx = repo->ctx;
	const char *action = sluice__jstr(json_object_get(rec, "action")), *gname;
	json_t *actor = json_object_get(rec, "actor"), *results, *r, *sources = NULL, *src;
	size_t i;
	int error;

	if ((error = put_filter(ctx, ix, txn, SLUICE_JX_TIME,
	                        sluice__jstr(json_object_get(rec, "time")), seq)) < 0 ||
	    (error = put_filter2(ctx, ix, txn, SLUICE_JX_ACTOR, "fp:",
	                         sluice__jstr(json_object_get(actor, "fingerprint")), seq)) < 0 ||
	    (error = put_filter2(ctx, ix, txn, SLUICE_JX_ACTOR,
	                         "name:", sluice__jstr(json_object_get(actor, "name")), seq)) < 0 ||
	    (error = put_filter(ctx, ix, txn, SLUICE_JX_ACTION, action, seq)) < 0 ||
	    (error = put_filter(ctx, ix, txn, SLUICE_JX_CHANNEL,
	                        sluice__jstr(json_object_get(rec, "channel")), seq)) < 0)
		return error;
	for (i = 0; version_fields[i]; i++) {
		const char *v = sluice__jstr(json_object_get(rec, version_fields[i]));
		size_t j;
		/* An entry that names a version twice (from == to) is listed once. */
		for (j = 0; j < i; j++)
			if (!strcmp(v, sluice__jstr(json_object_get(rec, version_fields[j]))))
				break;
		if (j == i && (error = put_filter(ctx, ix, txn, SLUICE_JX_VERSION, v, seq)) < 0)
			return error;
	}
	if (sluice_journal__is_move(action)) {
		/* channel_time: BLAKE2b-256(channel) || time (20) || seq -> "", for audit at. */
		unsigned char key[60];
		const char *t = sluice__jstr(json_object_get(rec, "time"));
		MDB_val k = {60, key}, v = {0, (void *)""};
		int rc;

		sluice__b2(key, sluice__jstr(json_object_get(rec, "channel")),
		           strlen(sluice__jstr(json_object_get(rec, "channel"))));
		memset(key + 32, 0, 20);
		memcpy(key + 32, t, strnlen(t, 20));
		be64(key + 52, seq);
		if ((rc = mdb_put(txn, ix->channel_time, &k, &v, 0)) != 0)
			return lmdb_error(ctx, rc, "writing a channel move time");
		if ((error = put_move(ctx, ix, txn, rec, seq)) < 0)
			return error;
		return put_filter(ctx, ix, txn, SLUICE_JX_OUTCOME, "moved", seq);
	}
	if (!strcmp(action, "refuse"))
		return put_filter(ctx, ix, txn, SLUICE_JX_OUTCOME, "refused", seq);
	if (!strcmp(action, "gate")) {
		int seen[3] = {0, 0, 0};
		static const char *const outcomes[] = {"pass", "fail", "inconclusive"};
		results = json_object_get(rec, "results");
		json_object_foreach(results, gname, r)
		{
			if ((error = put_filter(ctx, ix, txn, SLUICE_JX_GATE, gname, seq)) < 0)
				return error;
			for (i = 0; i < 3; i++)
				if (!strcmp(sluice__jstr(r), outcomes[i]) && !seen[i]++ &&
				    (error = put_filter(ctx, ix, txn, SLUICE_JX_OUTCOME,
				                        outcomes[i], seq)) < 0)
					return error;
		}
		return SLUICE_OK;
	}
	if (strcmp(action, "propose"))
		return SLUICE_OK;
	if ((error = put_filter(ctx, ix, txn, SLUICE_JX_KIND,
	                        sluice__jstr(json_object_get(rec, "kind")), seq)) < 0 ||
	    (error = put_version(repo, ix, txn, &sources,
	                         sluice__jstr(json_object_get(rec, "version")))) < 0) {
		/*
		 * A proposal whose version cannot be read is indexed without its
		 * sources rather than stopping the whole index: sluice verify reports
		 * the missing version, and lineage fails on it with the message.
		 */
		if (error != SLUICE_ECORRUPT)
			return error;
		sources = json_array();
		error = SLUICE_OK;
	}
	json_array_foreach(sources, i, src)
	{
		const char *name = sluice__jstr(json_object_get(src, "name"));
		sluice_buf nd = {0};
		if ((error = sluice_buf__printf(ctx, &nd, "nd:%s=%s", name,
		                                sluice__jstr(json_object_get(src, "digest")))) ==
		            0 &&
		    (error = sluice_buf__cstr(ctx, &nd)) == 0 &&
		    (error = put_filter2(ctx, ix, txn, SLUICE_JX_SOURCE, "n:", name, seq)) == 0)
			error = put_filter(ctx, ix, txn, SLUICE_JX_SOURCE, (const char *)nd.ptr,
			                   seq);
		sluice_buf__dispose(&nd);
		if (error < 0)
			break;
	}
	json_decref(sources);
	if (error < 0)
		return error;
	{
		/* children: parent version (20) || seq -> the proposed version (20). */
		git_oid parent, child;
		unsigned char key[28];
		MDB_val k = {28, key}, v = {20, child.id};
		int rc;

		if (git_oid_fromstr(&parent, sluice__jstr(json_object_get(rec, "parent"))) < 0 ||
		    git_oid_fromstr(&child, sluice__jstr(json_object_get(rec, "version"))) < 0)
			return SLUICE_OK; /* a base without a parent */
		memcpy(key, parent.id, 20);
		be64(key + 20, seq);
		if ((rc = mdb_put(txn, ix->children, &k, &v, 0)) != 0)
			return lmdb_error(ctx, rc, "writing a child version");
	}
	return SLUICE_OK;
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
		if ((error = put_filters(repo, ix, txn, rec, seq)) < 0)
			goto next;
		if (sluice_journal__is_move(sluice__jstr(json_object_get(rec, "action")))) {
			channel_key(key, json_string_value(json_object_get(rec, "channel")), seq);
			k.mv_size = 40;
			v.mv_size = strlen(text);
			v.mv_data = text;
			if ((rc = mdb_put(txn, ix->moves, &k, &v, 0)) != 0) {
				error = lmdb_error(ctx, rc, "writing a move");
				goto next;
			}
			if ((error = put_held(ctx, ix, txn, rec,
			                      sluice__jstr(json_object_get(rec, "action")), seq)) <
			    0)
				goto next;
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
			if ((error = sluice_journal__channels_shared(repo, &channels, &ids[i])) < 0)
				goto next;
			free(text);
			text = NULL;
			/*
			 * What sluice status shows of each channel: its head (the
			 * withdrawn versions come from the withdrawn database).
			 */
			{
				json_t *heads = json_object(), *c;
				const char *name;
				json_object_foreach(channels, name, c) json_object_set_new(
				        heads, name,
				        json_pack("{s:O?}", "head", json_object_get(c, "head")));
				error = sluice_repo__dump(ctx, &text, heads);
				json_decref(heads);
				if (error < 0)
					goto next;
			}
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
		    (rc = mdb_drop(txn, ix->versions, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->children, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->channel_time, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->lineage, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->moves_to, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->move_times, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->held, 0)) != 0 ||
		    (rc = mdb_drop(txn, ix->withdrawn, 0)) != 0) {
			error = lmdb_error(ctx, rc, "dropping the index");
			goto done;
		}
		for (int f = 0; f < SLUICE_JX_NFILTERS; f++)
			if ((rc = mdb_drop(txn, ix->filter[f], 0)) != 0)
				break;
		if (rc != 0) {
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

struct wd {
	uint64_t seq;
	char hex[GIT_OID_HEXSZ + 1];
};

static int wd_cmp(const void *a, const void *b)
{
	const struct wd *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The versions withdrawn from a channel, in the order they were withdrawn. */
static int withdrawn_of(sluice_ctx *ctx, sluice_jindex *ix, MDB_txn *txn, const char *channel,
                        json_t **out)
{
	MDB_cursor *cur = NULL;
	unsigned char key[52];
	MDB_val k = {52, key}, v;
	struct wd *list = NULL;
	size_t n = 0, cap = 0;
	int rc, error = SLUICE_OK;

	sluice__b2(key, channel, strlen(channel));
	memset(key + 32, 0, 20);
	if ((rc = mdb_cursor_open(txn, ix->withdrawn, &cur)) != 0)
		return lmdb_error(ctx, rc, "reading withdrawn versions");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		git_oid id;
		if (k.mv_size != 52 || memcmp(k.mv_data, key, 32))
			break;
		if (v.mv_size != 8) {
			/* Not read as a shorter list: status and verify would say too little. */
			error = sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "journal index: a malformed withdrawn record; run "
			        "sluice reindex");
			break;
		}
		if (n == cap) {
			void *p = sluice__realloc(ctx, list,
			                          (cap = cap ? 2 * cap : 16) * sizeof(*list));
			if (!p) {
				error = SLUICE_ENOMEM;
				break;
			}
			list = p;
		}
		memcpy(id.id, (const unsigned char *)k.mv_data + 32, 20);
		git_oid_tostr(list[n].hex, sizeof(list[n].hex), &id);
		list[n++].seq = load_be64(v.mv_data);
	}
	mdb_cursor_close(cur);
	if (error == 0 && rc != 0 && rc != MDB_NOTFOUND)
		error = lmdb_error(ctx, rc, "reading withdrawn versions");
	if (error == 0) {
		if (n)
			qsort(list, n, sizeof(*list), wd_cmp);
		*out = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(*out, json_string(list[i].hex));
	}
	free(list);
	return error;
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
	} else {
		const char *name;
		json_t *c;
		json_object_foreach(*out, name, c)
		{
			json_t *w = NULL;
			if ((error = withdrawn_of(ctx, ix, txn, name, &w)) < 0)
				break;
			json_object_set_new(c, "withdrawn", w);
		}
		if (error < 0) {
			json_decref(*out);
			*out = NULL;
		}
	}
	mdb_txn_abort(txn);
	return error;
}

int sluice_jindex__facts(sluice_repo *repo, git_oid *at, json_t **held, json_t **withdrawn)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t seq;
	const char *name;
	json_t *set;
	int rc, found = 0, error;

	*held = *withdrawn = NULL;
	if ((error = jopen(repo, &ix)) < 0)
		return error;
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(ctx, rc, "reading held versions");
	if ((error = meta_head(ix, txn, at, &seq, &found)) < 0)
		goto done;
	if (!found) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "the journal index is empty");
		goto done;
	}
	if ((rc = mdb_cursor_open(txn, ix->held, &cur)) != 0) {
		error = lmdb_error(ctx, rc, "reading held versions");
		goto done;
	}
	*held = json_object();
	*withdrawn = json_object();
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char hex[GIT_OID_HEXSZ + 1], chan[257];
		git_oid id;
		if (k.mv_size != 52 || v.mv_size < 8 || v.mv_size > 8 + 256) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "journal index: a malformed held record; run sluice "
			        "reindex");
			break;
		}
		memcpy(id.id, k.mv_data, 20);
		git_oid_tostr(hex, sizeof(hex), &id);
		memcpy(chan, (const char *)v.mv_data + 8, v.mv_size - 8);
		chan[v.mv_size - 8] = 0;
		if (!(set = json_object_get(*held, chan))) {
			set = json_object();
			json_object_set_new(*held, chan, set);
		}
		json_object_set_new(set, hex, json_true());
	}
	mdb_cursor_close(cur);
	if (error == 0 && rc != MDB_NOTFOUND)
		error = lmdb_error(ctx, rc, "reading held versions");
	/* A version is withdrawn only from a channel that held it. */
	json_object_foreach(*held, name, set)
	{
		json_t *list = NULL, *e, *wset;
		size_t i;
		if (error < 0 || (error = withdrawn_of(ctx, ix, txn, name, &list)) < 0)
			break;
		wset = json_object();
		json_array_foreach(list, i, e)
		        json_object_set(wset, json_string_value(e), json_true());
		json_object_set_new(*withdrawn, name, wset);
		json_decref(list);
	}
done:
	mdb_txn_abort(txn);
	if (error < 0) {
		json_decref(*held);
		json_decref(*withdrawn);
		*held = *withdrawn = NULL;
	}
	return error;
}

int sluice_jindex__held(sluice_repo *repo, const git_oid *at, const char *channel, const char *hex,
                        int *held, int *withdrawn)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex *ix;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	unsigned char key[52];
	MDB_val k = {52, key}, v;
	git_oid indexed;
	uint64_t seq;
	int rc, found = 0, error;

	*held = 0;
	if (withdrawn)
		*withdrawn = 0;
	if ((error = sluice_jindex__sync(repo)) < 0 || (error = jopen(repo, &ix)) < 0)
		return error;
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_error(ctx, rc, "reading held versions");
	/* The answer is the journal's at `at` only if the index stands there. */
	if ((error = meta_head(ix, txn, &indexed, &seq, &found)) < 0)
		goto done;
	if (!found || !git_oid_equal(&indexed, at)) {
		error = sluice_ctx__error(ctx, SLUICE_ECONFLICT,
		                          "journal index: it does not stand at the journal entry "
		                          "this decision reads (the journal moved meanwhile)");
		goto done;
	}
	if (channel) {
		if (held_key(key, 0, channel, hex) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID, "'%s' is not a version id",
			                          hex);
			goto done;
		}
		if ((rc = mdb_get(txn, ix->held, &k, &v)) == 0)
			*held = 1;
		else if (rc != MDB_NOTFOUND) {
			error = lmdb_error(ctx, rc, "reading held versions");
			goto done;
		}
		if (withdrawn && held_key(key, 1, channel, hex) == 0) {
			if ((rc = mdb_get(txn, ix->withdrawn, &k, &v)) == 0)
				*withdrawn = 1;
			else if (rc != MDB_NOTFOUND)
				error = lmdb_error(ctx, rc, "reading withdrawn versions");
		}
		goto done;
	}
	/* Any channel: the first key with the version's 20-byte prefix. */
	if (held_key(key, 0, "", hex) < 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "'%s' is not a version id", hex);
		goto done;
	}
	memset(key + 20, 0, 32);
	if ((rc = mdb_cursor_open(txn, ix->held, &cur)) != 0) {
		error = lmdb_error(ctx, rc, "reading held versions");
		goto done;
	}
	{
		unsigned char prefix[20];
		memcpy(prefix, key, 20);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0)
			*held = k.mv_size == 52 && !memcmp(k.mv_data, prefix, 20);
		else if (rc != MDB_NOTFOUND)
			error = lmdb_error(ctx, rc, "reading held versions");
	}
	mdb_cursor_close(cur);
done:
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

/* ---- reading the filter databases (audit queries) ---------------------- */

int sluice_jindex__read_begin(sluice_repo *repo, sluice_jindex_read **out)
{
	sluice_jindex_read *r;
	sluice_jindex *ix;
	int rc, error;

	*out = NULL;
	if ((error = sluice_jindex__sync(repo)) < 0 || (error = jopen(repo, &ix)) < 0)
		return error;
	if (!(r = sluice__calloc(repo->ctx, 1, sizeof(*r))))
		return SLUICE_ENOMEM;
	r->repo = repo;
	r->ix = ix;
	if ((rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &r->txn)) != 0) {
		free(r);
		return lmdb_error(repo->ctx, rc, "beginning a read");
	}
	*out = r;
	return SLUICE_OK;
}

void sluice_jindex__read_end(sluice_jindex_read *r)
{
	if (!r)
		return;
	if (r->txn)
		mdb_txn_abort(r->txn);
	free(r);
}

int sluice_jindex__scan(sluice_jindex_read *r, int which, const char *value, const char *until,
                        sluice_jindex_seq_cb cb, void *data)
{
	sluice_ctx *ctx = r->repo->ctx;
	MDB_cursor *cur = NULL;
	unsigned char key[40];
	MDB_val k, v;
	size_t plen;
	int rc, stop = 0, error = SLUICE_OK;

	if (which == SLUICE_JX_ALL) {
		if ((rc = mdb_cursor_open(r->txn, r->ix->entries, &cur)) != 0)
			return lmdb_error(ctx, rc, "reading entries");
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !stop;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
			if (k.mv_size == 8)
				stop = cb(data, load_be64(k.mv_data));
		mdb_cursor_close(cur);
		return stop < 0 ? stop : SLUICE_OK;
	}
	if (which < 0 || which >= SLUICE_JX_NFILTERS)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "journal index: no filter %d",
		                         which);
	if ((rc = mdb_cursor_open(r->txn, r->ix->filter[which], &cur)) != 0)
		return lmdb_error(ctx, rc, filter_db[which]);
	k.mv_data = key;
	k.mv_size = filter_key(key, which, value ? value : "", 0);
	/* Time keys are ranged (since <= time <= until); the others share a value prefix. */
	plen = which == SLUICE_JX_TIME ? 20 : 32;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != plen + 8)
			break;
		if (which == SLUICE_JX_TIME) {
			if (until && memcmp(k.mv_data, until, strnlen(until, 20)) > 0)
				break;
		} else if (memcmp(k.mv_data, key, 32)) {
			break;
		}
		stop = cb(data, load_be64((const unsigned char *)k.mv_data + plen));
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		error = lmdb_error(ctx, rc, filter_db[which]);
	mdb_cursor_close(cur);
	return stop < 0 ? stop : error;
}

int sluice_jindex__has(sluice_jindex_read *r, int which, const char *value, uint64_t seq,
                       int *found)
{
	unsigned char key[40];
	MDB_val k = {0, key}, v;
	int rc;

	*found = 0;
	if (which < 0 || which >= SLUICE_JX_NFILTERS)
		return sluice_ctx__error(r->repo->ctx, SLUICE_EINVALID,
		                         "journal index: no filter %d", which);
	k.mv_size = filter_key(key, which, value, seq);
	rc = mdb_get(r->txn, r->ix->filter[which], &k, &v);
	if (rc == 0)
		*found = 1;
	else if (rc != MDB_NOTFOUND)
		return lmdb_error(r->repo->ctx, rc, filter_db[which]);
	return SLUICE_OK;
}

int sluice_jindex__entry(sluice_jindex_read *r, uint64_t seq, git_oid *id, json_t **rec)
{
	unsigned char key[8];
	MDB_val k = {8, key}, v;
	json_error_t jerr;
	int rc;

	be64(key, seq);
	rc = mdb_get(r->txn, r->ix->entries, &k, &v);
	if (rc == MDB_NOTFOUND)
		return sluice_ctx__error(r->repo->ctx, SLUICE_ENOTFOUND,
		                         "the journal has no entry %llu", (unsigned long long)seq);
	if (rc != 0)
		return lmdb_error(r->repo->ctx, rc, "reading an entry");
	if (v.mv_size < 20 ||
	    !(*rec = json_loadb((const char *)v.mv_data + 20, v.mv_size - 20, 0, &jerr)))
		return sluice_ctx__error(r->repo->ctx, SLUICE_ECORRUPT,
		                         "journal index: entry %llu is unreadable; run sluice "
		                         "reindex",
		                         (unsigned long long)seq);
	if (id)
		memcpy(id->id, v.mv_data, 20);
	return SLUICE_OK;
}

int sluice_jindex__children(sluice_jindex_read *r, const git_oid *parent, json_t *out)
{
	MDB_cursor *cur = NULL;
	unsigned char key[28];
	MDB_val k = {28, key}, v;
	char hex[GIT_OID_HEXSZ + 1];
	int rc;

	memcpy(key, parent->id, 20);
	memset(key + 20, 0, 8);
	if ((rc = mdb_cursor_open(r->txn, r->ix->children, &cur)) != 0)
		return lmdb_error(r->repo->ctx, rc, "reading child versions");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		git_oid child;
		if (k.mv_size != 28 || memcmp(k.mv_data, parent->id, 20) || v.mv_size != 20)
			break;
		memcpy(child.id, v.mv_data, 20);
		git_oid_tostr(hex, sizeof(hex), &child);
		json_array_append_new(out, json_string(hex));
	}
	mdb_cursor_close(cur);
	return SLUICE_OK;
}

int sluice_jindex__move_at(sluice_jindex_read *r, const char *channel, const char *time,
                           uint64_t *seq, uint64_t *first)
{
	MDB_cursor *cur = NULL;
	unsigned char key[60];
	MDB_val k = {60, key}, v;
	int rc;

	*seq = *first = 0;
	sluice__b2(key, channel, strlen(channel));
	memset(key + 32, 0, 28);
	if ((rc = mdb_cursor_open(r->txn, r->ix->channel_time, &cur)) != 0)
		return lmdb_error(r->repo->ctx, rc, "reading channel moves");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == 60 && !memcmp(k.mv_data, key, 32))
		*first = load_be64((const unsigned char *)k.mv_data + 52);
	/* The first key after (channel, time, any seq), then one step back. */
	memcpy(key + 32, time, strnlen(time, 20));
	memset(key + 52, 0xff, 8);
	k.mv_size = 60;
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
	             : mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 60 && !memcmp(k.mv_data, key, 32))
		*seq = load_be64((const unsigned char *)k.mv_data + 52);
	mdb_cursor_close(cur);
	return SLUICE_OK;
}

int sluice_jindex__next_move(sluice_jindex_read *r, const char *channel, uint64_t after,
                             uint64_t *seq)
{
	MDB_cursor *cur = NULL;
	unsigned char key[40];
	MDB_val k = {40, key}, v;
	int rc;

	*seq = 0;
	if (after == UINT64_MAX)
		return SLUICE_OK;
	channel_key(key, channel, after + 1);
	if ((rc = mdb_cursor_open(r->txn, r->ix->moves, &cur)) != 0)
		return lmdb_error(r->repo->ctx, rc, "reading moves");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == 40 && !memcmp(k.mv_data, key, 32))
		*seq = load_be64((const unsigned char *)k.mv_data + 32);
	mdb_cursor_close(cur);
	return SLUICE_OK;
}

static json_t *decode_time(const MDB_val *v)
{
	const char *p = v->mv_data;
	json_error_t jerr;

	if (!v->mv_size)
		return NULL;
	if (p[0] == 's')
		return json_stringn(p + 1, v->mv_size - 1);
	if (p[0] == 'j')
		return json_loadb(p + 1, v->mv_size - 1, JSON_DECODE_ANY, &jerr);
	return NULL;
}

int sluice_jindex__moves_to(sluice_jindex_read *r, const char *version,
                            int (*cb)(void *data, const sluice_jindex_move *m), void *data)
{
	sluice_ctx *ctx = r->repo->ctx;
	MDB_cursor *cur = NULL, *tcur = NULL;
	unsigned char key[40], tkey[40];
	MDB_val k = {40, key}, v;
	sluice_buf ch = {0};
	int rc, stop = 0, error = SLUICE_OK;

	channel_key(key, version, 0);
	if ((rc = mdb_cursor_open(r->txn, r->ix->moves_to, &cur)) != 0 ||
	    (rc = mdb_cursor_open(r->txn, r->ix->move_times, &tcur)) != 0) {
		error = lmdb_error(ctx, rc, "reading moves");
		goto done;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		sluice_jindex_move m = {0};
		MDB_val tk = {40, tkey}, tv;

		if (k.mv_size != 40 || memcmp(k.mv_data, key, 32))
			break;
		m.seq = load_be64((const unsigned char *)k.mv_data + 32);
		ch.len = 0;
		if ((error = sluice_buf__put(ctx, &ch, v.mv_data, v.mv_size)) < 0 ||
		    (error = sluice_buf__cstr(ctx, &ch)) < 0)
			break;
		m.channel = (const char *)ch.ptr;
		/* The move itself, then the channel's next one. */
		channel_key(tkey, m.channel, m.seq);
		if ((rc = mdb_cursor_get(tcur, &tk, &tv, MDB_SET_KEY)) == 0) {
			m.time = decode_time(&tv);
			rc = mdb_cursor_get(tcur, &tk, &tv, MDB_NEXT);
			if (rc == 0 && tk.mv_size == 40 && !memcmp(tk.mv_data, tkey, 32)) {
				m.next_seq = load_be64((const unsigned char *)tk.mv_data + 32);
				m.next_time = decode_time(&tv);
			}
		}
		if (rc != 0 && rc != MDB_NOTFOUND) {
			json_decref(m.time);
			error = lmdb_error(ctx, rc, "reading move times");
			break;
		}
		rc = 0;
		stop = cb(data, &m);
		json_decref(m.time);
		json_decref(m.next_time);
	}
	if (!error && rc != 0 && rc != MDB_NOTFOUND)
		error = lmdb_error(ctx, rc, "reading moves");
done:
	if (tcur)
		mdb_cursor_close(tcur);
	if (cur)
		mdb_cursor_close(cur);
	sluice_buf__dispose(&ch);
	return stop < 0 ? stop : error;
}
