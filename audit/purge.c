/*
 * audit/purge.c - erasure: sluice purge (a signed tombstone, then the
 * bytes of one update's content deleted from the chunk packs and the git
 * object database) and sluice gc (mark and sweep of the chunk packs).
 *
 * What a purge deletes is content, named by its BLAKE2b-256: the files of
 * UPDATE whose digest does not occur in its parent's state. A digest, once
 * purged, is purged in every version that carries the file (descendants
 * inherit it). The journal's trust.json holds the purged set under
 * "purged": {blake2b hex: {seq, version, path, size, blob?}}; seq is the
 * tombstone entry's position. Only a purge entry may change it, and only
 * by adding (core/verify.c checks both).
 *
 * Order: the tombstone is journaled first, then bytes are deleted. A crash
 * in between leaves bytes that the journal already calls purged; re-running
 * the purge (or gc) deletes them. The reverse order could leave content
 * missing with no tombstone to say why, which verify must call corruption.
 */
#include "dsse.h"
#include "jindex.h"
#include "version.h"

#include "sluice/audit_purge.h"

#include <dirent.h>
#include <errno.h>
#include <git2/sys/odb_backend.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOMBSTONE_PREDICATE "urn:sluice:predicate:tombstone:v1"

/* ---- a sorted set of chunk ids ------------------------------------------- */

typedef struct {
	unsigned char (*ids)[SLUICE_B2_LEN];
	size_t n, cap;
	sluice_ctx *ctx;
} idset;

static int idset_add(idset *s, const unsigned char id[SLUICE_B2_LEN])
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		void *p = sluice__realloc(s->ctx, s->ids, cap * SLUICE_B2_LEN);
		if (!p)
			return SLUICE_ENOMEM;
		s->ids = p;
		s->cap = cap;
	}
	memcpy(s->ids[s->n++], id, SLUICE_B2_LEN);
	return SLUICE_OK;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SLUICE_B2_LEN);
}

/* Sort and drop repeats; needed before idset_has. */
static void idset_seal(idset *s)
{
	size_t i, k = 0;

	if (s->n > 1)
		qsort(s->ids, s->n, SLUICE_B2_LEN, id_cmp);
	for (i = 0; i < s->n; i++)
		if (k == 0 || memcmp(s->ids[k - 1], s->ids[i], SLUICE_B2_LEN) != 0)
			memmove(s->ids[k++], s->ids[i], SLUICE_B2_LEN);
	s->n = k;
}

static int idset_has(const idset *s, const unsigned char id[SLUICE_B2_LEN])
{
	return s->n && bsearch(id, s->ids, s->n, SLUICE_B2_LEN, id_cmp) != NULL;
}

static void idset_dispose(idset *s)
{
	free(s->ids);
	s->ids = NULL;
	s->n = s->cap = 0;
}

/* ---- walking what the journal brought in ---------------------------------- */

/* Every version a propose entry brought in, as hex strings (a JSON array). */
static int journaled_versions(sluice_repo *repo, json_t **out)
{
	git_revwalk *walk = NULL;
	json_t *arr = json_array(), *rec = NULL;
	git_oid id;
	int error;

	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_push_ref(walk, SLUICE_JOURNAL_REF)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot walk the journal");
		goto done;
	}
	git_revwalk_simplify_first_parent(walk);
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		if ((error = sluice_journal__record(repo, &rec, &id)) < 0)
			goto done;
		if (!strcmp(sluice__jstr(json_object_get(rec, "action")), "propose"))
			json_array_append(arr, json_object_get(rec, "version"));
		json_decref(rec);
		rec = NULL;
	}
	if (error != GIT_ITEROVER) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot walk the journal");
		goto done;
	}
	*out = arr;
	arr = NULL;
	error = SLUICE_OK;
done:
	json_decref(rec);
	json_decref(arr);
	git_revwalk_free(walk);
	return error;
}

/* The chunk ids of a chunked file's manifest (its tree entry in v) into set. */
static int manifest_chunks(sluice_repo *repo, const sluice_version *v, json_t *f, idset *set,
                           json_t *seen)
{
	const char *path = sluice__jstr(json_object_get(f, "path"));
	git_tree_entry *te = NULL;
	sluice_manifest m = {0};
	sluice_buf blob = {0};
	char tpath[4200], bhex[GIT_OID_HEXSZ + 1];
	int error;

	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if (git_tree_entry_bypath(&te, v->tree, tpath) < 0)
		return sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT, "version tree lacks %s",
		                         tpath);
	git_oid_tostr(bhex, sizeof(bhex), git_tree_entry_id(te));
	if (seen && json_object_get(seen, bhex)) {
		error = SLUICE_OK;
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, &blob, git_tree_entry_id(te), tpath)) < 0 ||
	    (error = sluice_manifest__parse(repo->ctx, &m, blob.ptr, blob.len, tpath)) < 0)
		goto done;
	for (size_t i = 0; i < m.nchunks && error == 0; i++)
		error = idset_add(set, m.chunks[i].id);
	if (error == 0 && seen)
		json_object_set_new(seen, bhex, json_true());
done:
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&blob);
	git_tree_entry_free(te);
	return error;
}

struct mark {
	sluice_repo *repo;
	sluice_version *v;
	json_t *purged; /* digest -> entry; files with these digests are not marked */
	json_t *seen;   /* manifest blobs already read */
	idset *set;
};

static int mark_file(void *data, json_t *f)
{
	struct mark *mk = data;

	if (json_object_get(mk->purged, sluice__jstr(json_object_get(f, "blake2b"))) ||
	    strcmp(sluice__jstr(json_object_get(f, "storage")), "chunks"))
		return SLUICE_OK;
	return manifest_chunks(mk->repo, mk->v, f, mk->set, mk->seen);
}

/* Every chunk a kept (not purged) file of a journaled version uses. */
static int mark_reachable(sluice_repo *repo, json_t *purged, idset *set)
{
	json_t *versions = NULL, *seen = json_object(), *vh;
	struct mark mk = {repo, NULL, purged, seen, set};
	size_t i;
	int error;

	if ((error = journaled_versions(repo, &versions)) < 0)
		goto done;
	json_array_foreach(versions, i, vh)
	{
		sluice_version v = {0};
		git_oid id;
		if (git_oid_fromstr(&id, sluice__jstr(vh)) < 0) {
			error = sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT,
			                          "journal: a propose entry names version '%s'",
			                          sluice__jstr(vh));
			goto done;
		}
		if ((error = sluice_version__load_id(repo, &v, &id)) < 0)
			goto done;
		mk.v = &v;
		error = sluice_version__each_file(v.state, mark_file, &mk);
		sluice_version__dispose(&v);
		if (error < 0)
			goto done;
	}
	idset_seal(set);
done:
	json_decref(versions);
	json_decref(seen);
	return error;
}

/* ---- deleting git blobs ---------------------------------------------------- */

static int objects_dir(sluice_repo *repo, char out[PATH_MAX])
{
	if (snprintf(out, PATH_MAX, "%s/objects", repo->path) >= PATH_MAX)
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID, "path too long: %s",
		                         repo->path);
	return SLUICE_OK;
}

struct repack {
	git_packbuilder *pb;
	json_t *drop; /* oid hex -> true */
	size_t dropped;
	int error;
};

static int repack_one(const git_oid *id, void *data)
{
	struct repack *rp = data;
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), id);
	if (json_object_get(rp->drop, hex)) {
		rp->dropped++;
		return 0;
	}
	return git_packbuilder_insert(rp->pb, id, NULL);
}

/*
 * Rewrite each git packfile that holds a dropped object without it: a new
 * pack of its other objects is written (libgit2's packbuilder, which
 * fsyncs nothing itself, so the directory is fsynced here) before the old
 * .pack and .idx are removed. A crash leaves both packs: the old one still
 * holds the bytes until the purge or gc runs again.
 */
static int repack_without(sluice_repo *repo, json_t *drop, size_t *removed)
{
	char objdir[PATH_MAX], packdir[PATH_MAX + 8], idx[PATH_MAX + 300], pack[PATH_MAX + 300];
	struct dirent *de;
	DIR *d = NULL;
	int error;

	if ((error = objects_dir(repo, objdir)) < 0)
		return error;
	snprintf(packdir, sizeof(packdir), "%s/pack", objdir);
	if (!(d = opendir(packdir)))
		return errno == ENOENT ? SLUICE_OK
		                       : sluice_ctx__oserror(repo->ctx, "cannot list %s", packdir);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct repack rp = {NULL, drop, 0, 0};
		git_odb_backend *be = NULL;
		git_odb *odb = NULL;

		if (len < 5 || strcmp(de->d_name + len - 4, ".idx"))
			continue;
		snprintf(idx, sizeof(idx), "%s/%s", packdir, de->d_name);
		snprintf(pack, sizeof(pack), "%s/%.*s.pack", packdir, (int)(len - 4), de->d_name);
		if ((error = git_odb_new(&odb)) < 0 ||
		    (error = git_odb_backend_one_pack(&be, idx)) < 0 ||
		    (error = git_odb_add_backend(odb, be, 1)) < 0) {
			/* Only a backend the odb took is freed with it. */
			if (be)
				be->free(be);
			git_odb_free(odb);
			error = sluice_ctx__giterror(repo->ctx, error, "cannot read %s", idx);
			goto done;
		}
		/* First count: a pack without dropped objects is left alone. */
		rp.pb = NULL;
		{
			struct repack probe = {NULL, drop, 0, 0};
			const char *k;
			json_t *v;
			json_object_foreach(drop, k, v)
			{
				git_oid id;
				(void)v;
				if (git_oid_fromstr(&id, k) == 0 && git_odb_exists(odb, &id))
					probe.dropped++;
			}
			if (!probe.dropped) {
				git_odb_free(odb);
				continue;
			}
		}
		if ((error = git_packbuilder_new(&rp.pb, repo->git)) < 0 ||
		    (error = git_odb_foreach(odb, repack_one, &rp)) < 0 ||
		    (error = git_packbuilder_write(rp.pb, packdir, 0, NULL, NULL)) < 0) {
			error = sluice_ctx__giterror(repo->ctx, error, "cannot repack %s", pack);
			git_packbuilder_free(rp.pb);
			git_odb_free(odb);
			goto done;
		}
		git_packbuilder_free(rp.pb);
		git_odb_free(odb);
		if ((error = sluice_io__fsync_dir(repo->ctx, packdir)) < 0)
			goto done;
		/* The .idx goes last: without it nobody reads the pack. Siblings go too. */
		{
			static const char *const ext[] = {".pack", ".bitmap", ".rev", ".mtimes",
			                                  ".idx"};
			for (size_t k = 0; k < sizeof(ext) / sizeof(*ext); k++) {
				snprintf(pack, sizeof(pack), "%s/%.*s%s", packdir, (int)(len - 4),
				         de->d_name, ext[k]);
				if (unlink(pack) < 0 && errno != ENOENT) {
					error = sluice_ctx__oserror(repo->ctx, "cannot remove %s",
					                            pack);
					goto done;
				}
			}
		}
		*removed += rp.dropped;
		/* The directory changed under readdir: start over (each pass removes one). */
		rewinddir(d);
	}
	error = sluice_io__fsync_dir(repo->ctx, packdir);
done:
	if (d)
		closedir(d);
	return error;
}

/*
 * Remove the blobs named in drop (oid hex -> true) from the object
 * database: loose files directly, packed ones by repacking.
 */
static int delete_blobs(sluice_repo *repo, json_t *drop, size_t *removed)
{
	char objdir[PATH_MAX], path[PATH_MAX + 64], dir[PATH_MAX + 8];
	const char *hex;
	json_t *v;
	git_odb *odb = NULL;
	int error, packed = 0;

	if (json_object_size(drop) == 0)
		return SLUICE_OK;
	if ((error = objects_dir(repo, objdir)) < 0)
		return error;
	json_object_foreach(drop, hex, v)
	{
		snprintf(dir, sizeof(dir), "%s/%.2s", objdir, hex);
		snprintf(path, sizeof(path), "%s/%s", dir, hex + 2);
		if (unlink(path) == 0) {
			(*removed)++;
			if ((error = sluice_io__fsync_dir(repo->ctx, dir)) < 0)
				return error;
		} else if (errno != ENOENT) {
			return sluice_ctx__oserror(repo->ctx, "cannot remove %s", path);
		}
	}
	/* What is still readable lives in a packfile. */
	if ((error = git_repository_odb(&odb, repo->git)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot open the object database");
	git_odb_refresh(odb);
	json_object_foreach(drop, hex, v)
	{
		git_oid id;
		if (git_oid_fromstr(&id, hex) == 0 && git_odb_exists(odb, &id))
			packed = 1;
	}
	git_odb_free(odb);
	if (packed && (error = repack_without(repo, drop, removed)) < 0)
		return error;
	if (packed && (error = git_repository_odb(&odb, repo->git)) == 0) {
		git_odb_refresh(odb);
		git_odb_free(odb);
	}
	return SLUICE_OK;
}

/* ---- purge ------------------------------------------------------------------ */

struct purge {
	sluice_key key;
	sluice_version v;
	const char *reason;
	char vhex[GIT_OID_HEXSZ + 1];
	char sdigest[SLUICE_B2_HEX];
	json_t *files;    /* [{path, blake2b, size, storage, blob?}] the update added */
	json_t *chunks;   /* hex ids the tombstone names */
	json_t *envelope; /* the signed tombstone */
	int fresh;        /* files not yet purged at the state decided against */
};

static int decide_purge(sluice_repo *repo, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	struct purge *pg = arg;
	json_t *trust, *purged, *f, *list;
	size_t i;

	if (sluice_journal__check_role(repo, st, &pg->key, "operator") < 0) {
		out->refusal = json_pack("{s:s}", "version", pg->vhex);
		return sluice_journal__deny(repo, out, "role", "refusing to purge %.12s: %s",
		                            pg->vhex, sluice_ctx_errmsg(repo->ctx));
	}
	trust = json_deep_copy(st->trust);
	if (!trust)
		trust = json_object();
	if (!(purged = json_object_get(trust, "purged"))) {
		json_object_set_new(trust, "purged", json_object());
		purged = json_object_get(trust, "purged");
	}
	list = json_array();
	json_array_foreach(pg->files, i, f)
	{
		const char *b2 = sluice__jstr(json_object_get(f, "blake2b"));
		json_t *e;
		if (json_object_get(purged, b2))
			continue;
		e = json_pack("{s:I,s:s,s:O,s:O}", "seq", (json_int_t)(st->seq + 1), "version",
		              pg->vhex, "path", json_object_get(f, "path"), "size",
		              json_object_get(f, "size"));
		if (json_object_get(f, "blob"))
			json_object_set(e, "blob", json_object_get(f, "blob"));
		json_object_set_new(purged, b2, e);
		json_array_append_new(list,
		                      json_pack("{s:O,s:s,s:O}", "path", json_object_get(f, "path"),
		                                "blake2b", b2, "size", json_object_get(f, "size")));
	}
	pg->fresh = (int)json_array_size(list);
	if (!pg->fresh) {
		/* Everything is purged already: nothing to journal (the caller finishes deleting).
		 */
		json_decref(trust);
		json_decref(list);
		return SLUICE_EEXISTS;
	}
	out->record = json_pack("{s:s,s:s,s:s,s:o,s:O,s:O}", "version", pg->vhex, "subject",
	                        pg->sdigest, "reason", pg->reason, "purged", list, "chunks",
	                        pg->chunks, "tombstone", pg->envelope);
	out->trust_after = trust;
	return out->record ? SLUICE_OK
	                   : sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "cannot build the record");
}

struct added {
	json_t *parent_digests; /* digest -> true */
	json_t *files;
	sluice_repo *repo;
	sluice_version *v;
	idset *chunks;
};

static int collect_added(void *data, json_t *f)
{
	struct added *ad = data;
	const char *b2 = sluice__jstr(json_object_get(f, "blake2b"));
	json_t *e;

	if (json_object_get(ad->parent_digests, b2))
		return SLUICE_OK;
	json_object_set_new(ad->parent_digests, b2, json_true()); /* once per digest */
	e = json_pack("{s:O,s:s,s:O,s:O}", "path", json_object_get(f, "path"), "blake2b", b2,
	              "size", json_object_get(f, "size"), "storage", json_object_get(f, "storage"));
	if (!strcmp(sluice__jstr(json_object_get(f, "storage")), "chunks")) {
		int error = manifest_chunks(ad->repo, ad->v, f, ad->chunks, NULL);
		if (error < 0) {
			json_decref(e);
			return error;
		}
	} else {
		git_tree_entry *te = NULL;
		char tpath[4200], hex[GIT_OID_HEXSZ + 1];
		snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES,
		         sluice__jstr(json_object_get(f, "path")));
		if (git_tree_entry_bypath(&te, ad->v->tree, tpath) < 0) {
			json_decref(e);
			return sluice_ctx__error(ad->repo->ctx, SLUICE_ECORRUPT,
			                         "version tree lacks %s", tpath);
		}
		git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(te));
		git_tree_entry_free(te);
		json_object_set_new(e, "blob", json_string(hex));
	}
	json_array_append_new(ad->files, e);
	return SLUICE_OK;
}

static int note_digest(void *data, json_t *f)
{
	json_object_set_new(data, sluice__jstr(json_object_get(f, "blake2b")), json_true());
	return SLUICE_OK;
}

struct dropper {
	const idset *drop; /* chunks to remove; NULL: remove what keep lacks */
	const idset *keep;
};

static int drop_chunk(void *data, const unsigned char id[SLUICE_B2_LEN])
{
	struct dropper *d = data;

	if (d->drop)
		return idset_has(d->drop, id) && !idset_has(d->keep, id);
	return !idset_has(d->keep, id);
}

/* Blob oids (hex -> true) of every purged small file in trust.purged. */
static json_t *purged_blobs(json_t *purged)
{
	json_t *out = json_object(), *e;
	const char *k;

	json_object_foreach(purged, k, e) if (json_is_string(json_object_get(e, "blob")))
	        json_object_set_new(out, json_string_value(json_object_get(e, "blob")),
	                            json_true());
	return out;
}

int sluice_purge(sluice_repo *repo, const char *ref, const char *reason, const char *key,
                 char **report)
{
	sluice_ctx *ctx = repo->ctx;
	struct purge pg;
	sluice_version parent = {0};
	sluice_jstate st = {0};
	idset added = {NULL, 0, 0, ctx}, keep = {NULL, 0, 0, ctx};
	struct added ad = {NULL, NULL, repo, NULL, &added};
	struct dropper dr = {&added, &keep};
	sluice_sweep_stats sw = {0};
	sluice_buf stmt = {0}, env = {0};
	sluice_chunkstore *cs;
	json_t *pred = NULL, *drop_blobs = NULL, *f;
	git_oid entry;
	char ehex[GIT_OID_HEXSZ + 1] = "", *ptext = NULL, name[128];
	size_t i, blobs_removed = 0;
	int error, already = 0;

	memset(&pg, 0, sizeof(pg));
	pg.reason = reason;
	if (!reason || !*reason)
		return sluice_ctx__error(ctx, SLUICE_EUSAGE,
		                         "give --reason TEXT: the tombstone records why");
	if ((error = sluice_repo__signing_key(repo, &pg.key, key, NULL)) < 0)
		return error;
	if ((error = sluice_version__load(repo, &pg.v, ref)) < 0)
		goto done;
	git_oid_tostr(pg.vhex, sizeof(pg.vhex), &pg.v.id);
	ad.parent_digests = json_object();
	ad.files = json_array();
	ad.v = &pg.v;
	if (git_commit_parentcount(pg.v.commit) > 0) {
		if ((error = sluice_version__load_id(repo, &parent,
		                                     git_commit_parent_id(pg.v.commit, 0))) < 0)
			goto done;
		sluice_version__each_file(parent.state, note_digest, ad.parent_digests);
	}
	if ((error = sluice_version__each_file(pg.v.state, collect_added, &ad)) < 0)
		goto done;
	if (json_array_size(ad.files) == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "version %.12s adds no content of its own to purge "
		                          "(every file is in its parent)",
		                          pg.vhex);
		goto done;
	}
	idset_seal(&added);
	pg.files = ad.files;
	pg.chunks = json_array();
	/*
	 * The tombstone names the chunks the update's files use that no kept
	 * file uses: those are what the purge removes. Computed against the
	 * purged set as it will be, with this update's digests in it.
	 */
	if ((error = sluice_journal__read(repo, &st)) < 0)
		goto done;
	{
		json_t *purged = json_deep_copy(json_object_get(st.trust, "purged"));
		if (!purged)
			purged = json_object();
		json_array_foreach(ad.files, i, f) json_object_set_new(
		        purged, sluice__jstr(json_object_get(f, "blake2b")), json_true());
		error = mark_reachable(repo, purged, &keep);
		json_decref(purged);
		if (error < 0)
			goto done;
	}
	for (i = 0; i < added.n; i++) {
		char hex[SLUICE_B2_HEX];
		if (idset_has(&keep, added.ids[i]))
			continue;
		sluice__hex(hex, added.ids[i], SLUICE_B2_LEN);
		json_array_append_new(pg.chunks, json_string(hex));
	}
	if ((error = sluice_version__state_digest(repo, &pg.v, pg.sdigest)) < 0)
		goto done;
	{
		json_t *plist = json_array();
		json_array_foreach(ad.files, i, f) json_array_append_new(
		        plist, json_pack("{s:O,s:O,s:O}", "path", json_object_get(f, "path"),
		                         "blake2b", json_object_get(f, "blake2b"), "size",
		                         json_object_get(f, "size")));
		pred = json_pack("{s:s,s:s,s:o,s:O}", "reason", reason, "version", pg.vhex,
		                 "purged", plist, "chunks", pg.chunks);
	}
	snprintf(name, sizeof(name), "sluice:version/%s", pg.vhex);
	if (!pred || !(ptext = json_dumps(pred, JSON_COMPACT | JSON_SORT_KEYS))) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build the tombstone");
		goto done;
	}
	{
		sluice_subject subj = {name, NULL, pg.sdigest};
		json_error_t jerr;
		if ((error = sluice_statement__build(ctx, &stmt, &subj, 1, TOMBSTONE_PREDICATE,
		                                     ptext)) < 0 ||
		    (error = sluice_dsse__sign(ctx, &env, &pg.key, SLUICE_INTOTO_PAYLOAD_TYPE,
		                               stmt.ptr, stmt.len)) < 0)
			goto done;
		if (!(pg.envelope = json_loadb((const char *)env.ptr, env.len, 0, &jerr))) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot read the envelope");
			goto done;
		}
	}
	error = sluice_journal__transact(repo, &entry, &pg.key, "purge", decide_purge, &pg);
	if (error == SLUICE_EEXISTS && pg.fresh == 0) {
		sluice_ctx_clear_error(ctx);
		already = 1;
	} else if (error < 0) {
		goto done;
	} else {
		git_oid_tostr(ehex, sizeof(ehex), &entry);
	}
	/* The tombstone is durable: now the bytes go. */
	if (repo->progress)
		repo->progress(repo->progress_data, "purge", 0, 1);
	if ((error = sluice_repo__chunks(repo, &cs)) < 0 ||
	    (error = sluice_chunkstore__sweep(cs, drop_chunk, &dr, 0, &sw, repo->progress,
	                                      repo->progress_data)) < 0)
		goto done;
	drop_blobs = json_object();
	json_array_foreach(ad.files, i, f) if (json_is_string(json_object_get(f, "blob")))
	        json_object_set(drop_blobs, json_string_value(json_object_get(f, "blob")),
	                        json_true());
	if ((error = delete_blobs(repo, drop_blobs, &blobs_removed)) < 0)
		goto done;
	json_array_foreach(ad.files, i, f)
	{
		json_object_del(f, "storage");
		json_object_del(f, "blob");
	}
	error = sluice_repo__report(ctx, report,
	                            json_pack("{s:s?,s:s,s:O,s:O,s:I,s:I,s:I,s:b}", "entry",
	                                      *ehex ? ehex : NULL, "version", pg.vhex, "purged",
	                                      ad.files, "chunks", pg.chunks, "chunks_removed",
	                                      (json_int_t)sw.records_dropped, "blobs_removed",
	                                      (json_int_t)blobs_removed, "bytes_freed",
	                                      (json_int_t)sw.bytes_freed, "already", already));
done:
	free(ptext);
	json_decref(pred);
	json_decref(drop_blobs);
	json_decref(pg.chunks);
	json_decref(pg.envelope);
	json_decref(ad.files);
	json_decref(ad.parent_digests);
	idset_dispose(&added);
	idset_dispose(&keep);
	sluice_buf__dispose(&stmt);
	sluice_buf__dispose(&env);
	sluice_journal__dispose(&st);
	sluice_version__dispose(&parent);
	sluice_version__dispose(&pg.v);
	sluice_key__dispose(&pg.key);
	return error;
}

/* ---- gc ----------------------------------------------------------------------- */

int sluice_gc(sluice_repo *repo, int dry_run, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jstate st = {0};
	idset keep = {NULL, 0, 0, ctx};
	struct dropper dr = {NULL, &keep};
	sluice_sweep_stats sw = {0};
	sluice_chunkstore *cs;
	json_t *blobs = NULL, *purged;
	size_t blobs_removed = 0;
	int error;

	if ((error = sluice_journal__read(repo, &st)) < 0)
		goto done;
	purged = json_object_get(st.trust, "purged");
	if (repo->progress)
		repo->progress(repo->progress_data, "mark", 0, 1);
	if ((error = mark_reachable(repo, purged, &keep)) < 0)
		goto done;
	if (repo->progress)
		repo->progress(repo->progress_data, "mark", 1, 1);
	if ((error = sluice_repo__chunks(repo, &cs)) < 0 ||
	    (error = sluice_chunkstore__sweep(cs, drop_chunk, &dr, dry_run, &sw, repo->progress,
	                                      repo->progress_data)) < 0)
		goto done;
	/* Blobs an interrupted purge left behind. */
	blobs = purged_blobs(purged);
	if (!dry_run && (error = delete_blobs(repo, blobs, &blobs_removed)) < 0)
		goto done;
	error = sluice_repo__report(
	        ctx, report,
	        json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "dry_run", dry_run, "reachable_chunks",
	                  (json_int_t)keep.n, "packs_rewritten", (json_int_t)sw.packs_rewritten,
	                  "records_removed", (json_int_t)sw.records_dropped, "duplicates_removed",
	                  (json_int_t)sw.duplicates, "bytes_freed", (json_int_t)sw.bytes_freed,
	                  "blobs_removed", (json_int_t)blobs_removed));
done:
	json_decref(blobs);
	idset_dispose(&keep);
	sluice_journal__dispose(&st);
	return error;
}

/* ---- tombstones: what sluice log and show say of a purge ------------------- */

struct tomb_scan {
	sluice_jindex_read *r;
	sluice_ctx *ctx;
	const char *version; /* NULL: every purge */
	json_t *out;
};

static int tomb_cb(void *data, uint64_t seq)
{
	struct tomb_scan *t = data;
	json_t *rec = NULL, *files, *f, *env, *e;
	const char *ver;
	char hex[GIT_OID_HEXSZ + 1];
	git_oid id;
	size_t i;
	int error;

	if ((error = sluice_jindex__entry(t->r, seq, &id, &rec)) < 0)
		return error;
	ver = sluice__jstr(json_object_get(rec, "version"));
	if (strcmp(sluice__jstr(json_object_get(rec, "action")), "purge") ||
	    (t->version && strcmp(ver, t->version)))
		goto done;
	git_oid_tostr(hex, sizeof(hex), &id);
	files = json_array();
	json_array_foreach(json_object_get(rec, "purged"), i, f) json_array_append_new(
	        files,
	        json_pack("{s:O?,s:O?,s:O?}", "path", json_object_get(f, "path"), "blake2b",
	                  json_object_get(f, "blake2b"), "size", json_object_get(f, "size")));
	env = json_object_get(rec, "tombstone");
	e = json_pack("{s:I,s:s,s:O?,s:O?,s:O?,s:s,s:O?,s:O?,s:o,s:I,s:b}", "seq", (json_int_t)seq,
	              "entry", hex, "time", json_object_get(rec, "time"), "actor",
	              json_object_get(json_object_get(rec, "actor"), "name"), "fingerprint",
	              json_object_get(json_object_get(rec, "actor"), "fingerprint"), "version", ver,
	              "reason", json_object_get(rec, "reason"), "subject",
	              json_object_get(rec, "subject"), "purged", files, "chunks",
	              (json_int_t)json_array_size(json_object_get(rec, "chunks")), "signed",
	              json_is_object(env));
	if (!e || json_array_append_new(t->out, e) < 0)
		error = sluice_ctx__error(t->ctx, SLUICE_ENOMEM, "out of memory");
done:
	json_decref(rec);
	return error;
}

int sluice_audit_tombstones(sluice_repo *repo, const char *version, char **report)
{
	struct tomb_scan t = {NULL, repo->ctx, version, json_array()};
	int error;

	if (!t.out)
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory");
	if ((error = sluice_jindex__read_begin(repo, &t.r)) < 0 ||
	    (error = sluice_jindex__scan(t.r, SLUICE_JX_ACTION, "purge", NULL, tomb_cb, &t)) < 0)
		goto done;
	error = sluice_repo__report(repo->ctx, report, json_pack("{s:O}", "tombstones", t.out));
done:
	sluice_jindex__read_end(t.r);
	json_decref(t.out);
	return error;
}
