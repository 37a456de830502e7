/*
 * core/inspect.c - reading history: sluice log, show and diff.
 */
#include "version.h"

#include "sluice/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *summary_of(const sluice_version *v)
{
	char hex[GIT_OID_HEXSZ + 1];
	json_t *parent = json_object_get(v->update, "parent");

	git_oid_tostr(hex, sizeof(hex), &v->id);
	return json_pack("{s:s,s:O,s:O,s:O,s:O,s:O}", "version", hex, "parent",
	                 parent ? parent : json_null(), "kind", json_object_get(v->update, "kind"),
	                 "summary", json_object_get(v->update, "summary"), "proposer",
	                 json_object_get(json_object_get(v->update, "proposer"), "name"), "time",
	                 json_object_get(v->update, "created"));
}

int sluice_version_log(sluice_repo *repo, const char *ref, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *arr = json_array();
	git_revwalk *walk = NULL;
	sluice_version v = {0};
	git_oid id, head;
	int exists, error;

	if (ref) {
		/* The ancestry of one version, following first parents. */
		if ((error = sluice_version__load(repo, &v, ref)) < 0)
			goto done;
		for (;;) {
			const git_oid *p;
			json_array_append_new(arr, summary_of(&v));
			if (git_commit_parentcount(v.commit) == 0)
				break;
			p = git_commit_parent_id(v.commit, 0);
			id = *p;
			sluice_version__dispose(&v);
			if ((error = sluice_version__load_id(repo, &v, &id)) < 0)
				goto done;
		}
	} else {
		/* Every proposal the journal recorded, newest first. */
		if ((error = sluice_journal__head(repo, &head, &exists)) < 0 || !exists)
			goto finish;
		if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
		    (error = git_revwalk_push(walk, &head)) < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot walk the journal");
			goto done;
		}
		git_revwalk_simplify_first_parent(walk);
		while ((error = git_revwalk_next(&id, walk)) == 0) {
			json_t *rec = NULL;
			git_oid vid;

			if ((error = sluice_journal__record(repo, &rec, &id)) < 0)
				goto done;
			if (strcmp(sluice__jstr(json_object_get(rec, "action")), "propose") ||
			    git_oid_fromstr(&vid, sluice__jstr(json_object_get(rec, "version"))) <
			            0) {
				json_decref(rec);
				continue;
			}
			json_decref(rec);
			if ((error = sluice_version__load_id(repo, &v, &vid)) < 0)
				goto done;
			json_array_append_new(arr, summary_of(&v));
			sluice_version__dispose(&v);
		}
		if (error != GIT_ITEROVER)
			goto done;
	}
finish:
	error = sluice_repo__report(ctx, report, json_pack("{s:O}", "versions", arr));
done:
	git_revwalk_free(walk);
	sluice_version__dispose(&v);
	json_decref(arr);
	return error;
}

int sluice_version_show(sluice_repo *repo, const char *ref, char **report)
{
	sluice_version v = {0};
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	if ((error = sluice_version__load(repo, &v, ref)) < 0)
		return error;
	git_oid_tostr(hex, sizeof(hex), &v.id);
	error = sluice_repo__report(
	        repo->ctx, report,
	        json_pack("{s:s,s:O,s:O}", "version", hex, "update", v.update, "state", v.state));
	sluice_version__dispose(&v);
	return error;
}

/* path -> {file entry, component} for every file of a state. */
struct index_ctx {
	json_t *map;
};

static int index_file(void *data, json_t *f)
{
	struct index_ctx *ic = data;
	json_object_set(ic->map, json_string_value(json_object_get(f, "path")), f);
	return SLUICE_OK;
}

static const char *component_of(const char *path)
{
	if (!strncmp(path, "base/", 5))
		return "base";
	if (!strncmp(path, "adapters/", 9))
		return "adapter";
	if (!strncmp(path, "memory/", 7))
		return "memory";
	if (!strncmp(path, "replay/", 7))
		return "replay";
	return "other";
}

static int text_patch(sluice_repo *repo, json_t *change, sluice_version *a, sluice_version *b,
                      const char *path, int in_a, int in_b)
{
	git_tree_entry *ea = NULL, *eb = NULL;
	git_blob *ba = NULL, *bb = NULL;
	git_patch *patch = NULL;
	git_buf out = {0};
	char tpath[4200];
	int error = 0;

	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if ((in_a && git_tree_entry_bypath(&ea, a->tree, tpath) < 0) ||
	    (in_b && git_tree_entry_bypath(&eb, b->tree, tpath) < 0))
		goto done;
	if ((ea && git_blob_lookup(&ba, repo->git, git_tree_entry_id(ea)) < 0) ||
	    (eb && git_blob_lookup(&bb, repo->git, git_tree_entry_id(eb)) < 0))
		goto done;
	if ((error = git_patch_from_blobs(&patch, ba, path, bb, path, NULL)) < 0 ||
	    (error = git_patch_to_buf(&out, patch)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot diff %s", path);
		goto done;
	}
	json_object_set_new(change, "patch", json_stringn(out.ptr, out.size));
done:
	git_buf_dispose(&out);
	git_patch_free(patch);
	git_blob_free(ba);
	git_blob_free(bb);
	git_tree_entry_free(ea);
	git_tree_entry_free(eb);
	return error;
}

int sluice_version_diff(sluice_repo *repo, const char *ra, const char *rb, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_version a = {0}, b = {0};
	struct index_ctx ia = {json_object()}, ib = {json_object()};
	json_t *changes = json_array(), *fa, *fb;
	const char *path;
	char ha[GIT_OID_HEXSZ + 1], hb[GIT_OID_HEXSZ + 1];
	int error;

	if ((error = sluice_version__load(repo, &a, ra)) < 0 ||
	    (error = sluice_version__load(repo, &b, rb)) < 0)
		goto done;
	sluice_version__each_file(a.state, index_file, &ia);
	sluice_version__each_file(b.state, index_file, &ib);
	json_object_foreach(ia.map, path, fa)
	{
		fb = json_object_get(ib.map, path);
		if (fb &&
		    json_equal(json_object_get(fa, "blake2b"), json_object_get(fb, "blake2b")))
			continue;
		json_t *c = json_pack("{s:s,s:s,s:s,s:O,s:O}", "component", component_of(path),
		                      "path", path, "change", fb ? "modified" : "removed", "from",
		                      json_object_get(fa, "blake2b"), "to",
		                      fb ? json_object_get(fb, "blake2b") : json_null());
		if (!strcmp(sluice__jstr(json_object_get(fa, "storage")), "blob") &&
		    (!fb || !strcmp(sluice__jstr(json_object_get(fb, "storage")), "blob")) &&
		    (error = text_patch(repo, c, &a, &b, path, 1, fb != NULL)) < 0) {
			json_decref(c);
			goto done;
		}
		json_array_append_new(changes, c);
	}
	json_object_foreach(ib.map, path, fb)
	{
		if (json_object_get(ia.map, path))
			continue;
		json_t *c = json_pack("{s:s,s:s,s:s,s:n,s:O}", "component", component_of(path),
		                      "path", path, "change", "added", "from", "to",
		                      json_object_get(fb, "blake2b"));
		if (!strcmp(sluice__jstr(json_object_get(fb, "storage")), "blob") &&
		    (error = text_patch(repo, c, &a, &b, path, 0, 1)) < 0) {
			json_decref(c);
			goto done;
		}
		json_array_append_new(changes, c);
	}
	git_oid_tostr(ha, sizeof(ha), &a.id);
	git_oid_tostr(hb, sizeof(hb), &b.id);
	error = sluice_repo__report(
	        ctx, report, json_pack("{s:s,s:s,s:O}", "from", ha, "to", hb, "changes", changes));
done:
	json_decref(changes);
	json_decref(ia.map);
	json_decref(ib.map);
	sluice_version__dispose(&a);
	sluice_version__dispose(&b);
	return error;
}
