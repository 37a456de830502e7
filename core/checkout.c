/*
 * core/checkout.c - materialising a version's full state into a directory,
 * byte-identical to what was ingested, verifying every chunk and file
 * digest on the way. The state is written into a temporary directory
 * beside the target and renamed into place only when complete, so a failed
 * checkout leaves no partial tree behind.
 */
/* nftw is an XSI interface. */
#define _XOPEN_SOURCE 700
#include "version.h"

#include "sluice/version.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct co {
	sluice_repo *repo;
	sluice_version *v;
	const char *root; /* the temporary directory */
	json_t *purged;   /* trust.json's "purged" (blake2b -> tombstone), or NULL */
	uint64_t files, bytes, total;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rmtree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Create the parent directories of rel under root. */
static int make_parents(sluice_ctx *ctx, const char *root, const char *rel)
{
	char buf[PATH_MAX];
	size_t n;
	char *p;

	if (snprintf(buf, sizeof(buf), "%s/%s", root, rel) >= (int)sizeof(buf))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", rel);
	n = strlen(root) + 1;
	for (p = buf + n; *p; p++) {
		struct stat st;
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return sluice_ctx__oserror(ctx, "cannot create directory %s", buf);
		if (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "refusing to write through %s: not a directory",
			                         buf);
		*p = '/';
	}
	return SLUICE_OK;
}

static int write_file(void *data, json_t *f)
{
	struct co *co = data;
	sluice_repo *repo = co->repo;
	sluice_ctx *ctx = repo->ctx;
	const char *path = json_string_value(json_object_get(f, "path"));
	const char *want = json_string_value(json_object_get(f, "blake2b"));
	uint64_t size = (uint64_t)json_integer_value(json_object_get(f, "size"));
	int chunked = !strcmp(sluice__jstr(json_object_get(f, "storage")), "chunks");
	git_tree_entry *te = NULL;
	sluice_buf blob = {0};
	sluice_manifest m = {0};
	sluice_chunkstore *cs;
	char tpath[4200], full[PATH_MAX], hex[SLUICE_B2_HEX];
	int fd = -1, error;

	{
		/* Purged content (audit/purge.c) is gone on purpose: say so, naming the tombstone.
		 */
		json_t *t = json_object_get(co->purged, want ? want : "");
		if (t)
			return sluice_ctx__error(
			        ctx, SLUICE_ENOTFOUND,
			        "%s was purged (tombstone entry #%lld, purge of version %.12s); "
			        "its content is deleted and cannot be checked out",
			        path, (long long)json_integer_value(json_object_get(t, "seq")),
			        sluice__jstr(json_object_get(t, "version")));
	}
	/* state.json paths were checked safe when the version was loaded. */
	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if ((error = git_tree_entry_bypath(&te, co->v->tree, tpath)) < 0) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT, "version tree lacks %s", tpath);
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, &blob, git_tree_entry_id(te), tpath)) < 0 ||
	    (error = make_parents(ctx, co->root, path)) < 0)
		goto done;
	snprintf(full, sizeof(full), "%s/%s", co->root, path);
	if ((fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot create %s", full);
		goto done;
	}
	if (!chunked) {
		unsigned char h[SLUICE_B2_LEN];
		sluice__b2(h, blob.ptr, blob.len);
		sluice__hex(hex, h, SLUICE_B2_LEN);
		if (blob.len != size || strcmp(hex, want)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "%s: stored bytes do not match the recorded digest", path);
			goto done;
		}
		error = sluice_io__write_all(ctx, fd, blob.ptr, blob.len, full);
	} else {
		if ((error = sluice_manifest__parse(ctx, &m, blob.ptr, blob.len, tpath)) < 0)
			goto done;
		sluice__hex(hex, m.b2, SLUICE_B2_LEN);
		if (m.size != size || strcmp(hex, want)) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "%s: manifest does not match state.json", path);
			goto done;
		}
		if ((error = sluice_repo__chunks(repo, &cs)) < 0 ||
		    (error = sluice_chunkstore__materialize(cs, &m, fd, path)) < 0)
			goto done;
	}
	if (error == 0) {
		co->files++;
		co->bytes += size;
		if (repo->progress)
			repo->progress(repo->progress_data, "checkout", co->bytes, co->total);
	}
done:
	if (fd >= 0)
		close(fd);
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&blob);
	git_tree_entry_free(te);
	return error;
}

static int add_size(void *data, json_t *f)
{
	*(uint64_t *)data += (uint64_t)json_integer_value(json_object_get(f, "size"));
	return SLUICE_OK;
}

int sluice_version_checkout(sluice_repo *repo, const char *ref, const char *dir, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_version v = {0};
	sluice_buf sums = {0}, stored = {0};
	const git_tree_entry *te;
	struct co co = {0};
	sluice_jstate jst = {0};
	struct stat st;
	char tmp[PATH_MAX], hex[GIT_OID_HEXSZ + 1], sumpath[PATH_MAX + 16];
	int error, made = 0, existed = 0;

	if ((error = sluice_version__load(repo, &v, ref)) < 0)
		return error;
	if ((error = sluice_journal__read(repo, &jst)) < 0)
		goto done;
	co.purged = json_object_get(jst.trust, "purged");
	if (lstat(dir, &st) == 0) {
		DIR *d;
		struct dirent *de;
		if (!S_ISDIR(st.st_mode)) {
			error = sluice_ctx__error(ctx, SLUICE_EEXISTS,
			                          "%s exists and is not a directory", dir);
			goto done;
		}
		if (!(d = opendir(dir))) {
			error = sluice_ctx__oserror(ctx, "cannot read %s", dir);
			goto done;
		}
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				error = SLUICE_EEXISTS;
		closedir(d);
		if (error) {
			error = sluice_ctx__error(ctx, SLUICE_EEXISTS,
			                          "%s is not empty; check out into a new or empty "
			                          "directory",
			                          dir);
			goto done;
		}
		existed = 1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.sluice-checkout-%ld", dir, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", dir);
		goto done;
	}
	if (mkdir(tmp, 0755) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot create %s", tmp);
		goto done;
	}
	made = 1;
	co.repo = repo;
	co.v = &v;
	co.root = tmp;
	sluice_version__each_file(v.state, add_size, &co.total);
	if ((error = sluice_version__each_file(v.state, write_file, &co)) < 0)
		goto done;
	/* B2SUMS: what state.json implies must equal what the version's tree holds. */
	te = git_tree_entry_byname(v.tree, "B2SUMS");
	if ((error = sluice_version__b2sums(ctx, v.state, &sums)) < 0)
		goto done;
	if (!te ||
	    (error = sluice_repo__read_blob(repo, &stored, git_tree_entry_id(te), "B2SUMS")) < 0 ||
	    stored.len != sums.len || memcmp(stored.ptr, sums.ptr, sums.len)) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "version's B2SUMS does not match its state.json");
		goto done;
	}
	snprintf(sumpath, sizeof(sumpath), "%s/B2SUMS", tmp);
	{
		int fd = open(sumpath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0) {
			error = sluice_ctx__oserror(ctx, "cannot create %s", sumpath);
			goto done;
		}
		error = sluice_io__write_all(ctx, fd, sums.ptr, sums.len, sumpath);
		close(fd);
		if (error < 0)
			goto done;
	}
	if (existed && rmdir(dir) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot replace empty directory %s", dir);
		goto done;
	}
	if (rename(tmp, dir) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot move checkout into %s", dir);
		if (existed)
			mkdir(dir, 0755);
		goto done;
	}
	made = 0;
	git_oid_tostr(hex, sizeof(hex), &v.id);
	error = sluice_repo__report(ctx, report,
	                            json_pack("{s:s,s:s,s:I,s:I}", "version", hex, "directory", dir,
	                                      "files", (json_int_t)co.files, "bytes",
	                                      (json_int_t)co.bytes));
done:
	if (made)
		rmtree(tmp);
	sluice_buf__dispose(&sums);
	sluice_buf__dispose(&stored);
	sluice_version__dispose(&v);
	sluice_journal__dispose(&jst);
	return error;
}
