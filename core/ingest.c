/*
 * core/ingest.c - validating input files by what parses, and storing them:
 * small JSON/text as git blobs, everything else as chunk manifests.
 */
#include "ingest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

void sluice_ingest__dispose_file(sluice_input_file *f)
{
	if (!f)
		return;
	free(f->rel);
	free(f->abs);
	sluice_safetensors__dispose(&f->st);
	memset(f, 0, sizeof(*f));
}

void sluice_ingest__dispose_dir(sluice_input_dir *d)
{
	for (size_t i = 0; d && i < d->n; i++)
		sluice_ingest__dispose_file(&d->files[i]);
	if (d) {
		free(d->files);
		d->files = NULL;
		d->n = 0;
	}
}

const sluice_input_file *sluice_ingest__find(const sluice_input_dir *d, const char *rel)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->files[i].rel, rel))
			return &d->files[i];
	return NULL;
}

/* Name what a file that did not parse actually is, for the refusal. */
static int refuse_unparsed(sluice_ctx *ctx, int fd, const char *path, const char *expected)
{
	unsigned char head[4096];
	ssize_t n = pread(fd, head, sizeof(head), 0);

	if (n > 0) {
		switch (sluice_safetensors__sniff_pickle(head, (size_t)n)) {
		case SLUICE_SNIFF_PICKLE:
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s is a Python pickle file; pickles can run code when "
			        "loaded and are refused (convert the weights to safetensors)",
			        path);
		case SLUICE_SNIFF_TORCH_ZIP:
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s is a PyTorch zip-of-pickle file (torch.save output); "
			        "pickles can run code when loaded and are refused (convert "
			        "the weights to safetensors)",
			        path);
		default:
			break;
		}
	}
	if (expected)
		return SLUICE_EINVALID; /* the parser's own message stands */
	return sluice_ctx__error(
	        ctx, SLUICE_EINVALID,
	        "%s is not in an accepted format (safetensors, JSON or UTF-8 text)", path);
}

int sluice_ingest__check_file(sluice_ctx *ctx, sluice_input_file *out, const char *path,
                              const char *rel)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t len;
	const char *why;
	int fd = -1, error;

	memset(out, 0, sizeof(*out));
	if (!sluice__path_safe(rel, strlen(rel), &why))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "refusing input name '%s': %s", rel,
		                         why);
	if (lstat(path, &st) < 0)
		return sluice_ctx__oserror(ctx, "cannot read %s", path);
	if (S_ISLNK(st.st_mode))
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s is a symbolic link; input directories must hold regular "
		        "files only",
		        path);
	if (!S_ISREG(st.st_mode))
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s is a %s; input directories must hold regular files only", path,
		        S_ISFIFO(st.st_mode)   ? "FIFO"
		        : S_ISCHR(st.st_mode)  ? "character device"
		        : S_ISBLK(st.st_mode)  ? "block device"
		        : S_ISSOCK(st.st_mode) ? "socket"
		                               : "special file");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return sluice_ctx__oserror(ctx, "cannot open %s", path);
	if (!(out->rel = sluice__strdup(ctx, rel)) || !(out->abs = sluice__strdup(ctx, path))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	out->size = (uint64_t)st.st_size;
	if (ends_with(rel, ".safetensors")) {
		out->format = SLUICE_FMT_SAFETENSORS;
		if ((error = sluice_safetensors__read(ctx, &out->st, fd, out->size, path)) < 0)
			error = refuse_unparsed(ctx, fd, path, "safetensors");
		goto done;
	}
	/* JSON and text are read whole to validate; cap them. */
	if (out->size > (256u << 20)) {
		error = refuse_unparsed(ctx, fd, path, NULL);
		if (error == SLUICE_EINVALID && strstr(sluice_ctx_errmsg(ctx), "pickle"))
			goto done;
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: %llu bytes is too large for a JSON or text file (256 MiB "
		        "limit); weights must be safetensors",
		        path, (unsigned long long)out->size);
		goto done;
	}
	if ((error = sluice_io__read_file(ctx, &buf, &len, path, 256u << 20)) < 0)
		goto done;
	if (ends_with(rel, ".json")) {
		json_error_t jerr;
		json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);

		out->format = SLUICE_FMT_JSON;
		if (!v) {
			error = refuse_unparsed(ctx, fd, path, "json");
			if (!strstr(sluice_ctx_errmsg(ctx), "pickle"))
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: not valid JSON: line %d column %d: %s", path,
				        jerr.line, jerr.column, jerr.text);
			goto done;
		}
		json_decref(v);
		error = SLUICE_OK;
		goto done;
	}
	out->format = SLUICE_FMT_TEXT;
	if (!sluice__utf8_valid(buf, len) || memchr(buf, '\0', len)) {
		error = refuse_unparsed(ctx, fd, path, NULL);
		goto done;
	}
	error = SLUICE_OK;
done:
	free(buf);
	close(fd);
	if (error < 0)
		sluice_ingest__dispose_file(out);
	return error;
}

static int cmp_files(const void *a, const void *b)
{
	return strcmp(((const sluice_input_file *)a)->rel, ((const sluice_input_file *)b)->rel);
}

static int scan(sluice_ctx *ctx, sluice_input_dir *out, size_t *cap, const char *root,
                const char *rel, int depth)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int error = SLUICE_OK;

	if (depth > 16)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s/%s: directories nested too deep",
		                         root, rel);
	snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
	if (!(d = opendir(path)))
		return sluice_ctx__oserror(ctx, "cannot read directory %s", path);
	while ((de = readdir(d)) != NULL) {
		char sub[PATH_MAX], full[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		            (int)sizeof(sub) ||
		    snprintf(full, sizeof(full), "%s/%s", root, sub) >= (int)sizeof(full)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s/%s: path too long",
			                          path, de->d_name);
			break;
		}
		if (lstat(full, &st) < 0) {
			error = sluice_ctx__oserror(ctx, "cannot read %s", full);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if ((error = scan(ctx, out, cap, root, sub, depth + 1)) < 0)
				break;
			continue;
		}
		if (out->n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			void *p = sluice__realloc(ctx, out->files, ncap * sizeof(*out->files));
			if (!p) {
				error = SLUICE_ENOMEM;
				break;
			}
			out->files = p;
			*cap = ncap;
		}
		if ((error = sluice_ingest__check_file(ctx, &out->files[out->n], full, sub)) < 0)
			break;
		out->n++;
	}
	closedir(d);
	return error;
}

int sluice_ingest__scan_dir(sluice_ctx *ctx, sluice_input_dir *out, const char *dir)
{
	struct stat st;
	size_t cap = 0;
	int error;

	memset(out, 0, sizeof(*out));
	if (lstat(dir, &st) < 0)
		return sluice_ctx__oserror(ctx, "cannot read %s", dir);
	if (!S_ISDIR(st.st_mode))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s is not a directory", dir);
	if ((error = scan(ctx, out, &cap, dir, "", 0)) < 0) {
		sluice_ingest__dispose_dir(out);
		return error;
	}
	if (out->n)
		qsort(out->files, out->n, sizeof(*out->files), cmp_files);
	return SLUICE_OK;
}

static json_t *file_entry(const char *dest, uint64_t size, const unsigned char b2[SLUICE_B2_LEN],
                          const char *storage)
{
	char hex[SLUICE_B2_HEX];

	sluice__hex(hex, b2, SLUICE_B2_LEN);
	return json_pack("{s:s,s:I,s:s,s:s}", "path", dest, "size", (json_int_t)size, "blake2b",
	                 hex, "storage", storage);
}

int sluice_ingest__store_bytes(sluice_repo *repo, json_t **entry, git_oid *blob, const void *data,
                               size_t len, const char *dest)
{
	unsigned char b2[SLUICE_B2_LEN];
	int error;

	sluice__b2(b2, data, len);
	if ((error = git_blob_create_from_buffer(blob, repo->git, data, len)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot store %s", dest);
	if (!(*entry = file_entry(dest, len, b2, "blob")))
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory");
	return SLUICE_OK;
}

int sluice_ingest__store(sluice_repo *repo, json_t **entry, git_oid *blob,
                         const sluice_input_file *f, const char *dest, sluice_ingest_stats *acc)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_chunkstore *cs;
	sluice_manifest m = {0};
	sluice_ingest_stats st = {0};
	sluice_region *regions = NULL;
	sluice_buf text = {0};
	size_t nregions = 0;
	int fd = -1, error;

	if (f->format != SLUICE_FMT_SAFETENSORS && f->size <= SLUICE_BLOB_MAX) {
		unsigned char *buf = NULL;
		size_t len;
		if ((error = sluice_io__read_file(ctx, &buf, &len, f->abs, SLUICE_BLOB_MAX)) < 0)
			return error;
		error = sluice_ingest__store_bytes(repo, entry, blob, buf, len, dest);
		free(buf);
		return error;
	}
	if ((error = sluice_repo__chunks(repo, &cs)) < 0)
		return error;
	if (f->format == SLUICE_FMT_SAFETENSORS) {
		/*
		 * Cut at the header and at every tensor boundary first, so an
		 * unchanged tensor yields the same chunks whatever the header's
		 * length does to the file offsets; tensor bytes are cut into fixed
		 * pieces, which in-place edits never shift.
		 */
		if (!(regions = sluice__calloc(ctx, f->st.ntensors + 1, sizeof(*regions))))
			return SLUICE_ENOMEM;
		regions[nregions++] = (sluice_region){0, f->st.data_start, 0};
		for (size_t i = 0; i < f->st.ntensors; i++) {
			const sluice_st_tensor *t = &f->st.tensors[i];
			if (t->end == t->begin)
				continue;
			regions[nregions++] =
			        (sluice_region){f->st.data_start + t->begin, t->end - t->begin, 0};
		}
	}
	if ((fd = open(f->abs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot open %s", f->abs);
		goto done;
	}
	if ((error = sluice_chunkstore__ingest(cs, &m, &st, fd, f->size, regions, nregions,
	                                       f->abs)) < 0 ||
	    (error = sluice_manifest__encode(ctx, &m, &text)) < 0)
		goto done;
	if ((error = git_blob_create_from_buffer(blob, repo->git, text.ptr, text.len)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot store manifest of %s", dest);
		goto done;
	}
	if (acc) {
		acc->bytes_in += st.bytes_in;
		acc->chunks += st.chunks;
		acc->new_chunks += st.new_chunks;
		acc->new_bytes += st.new_bytes;
	}
	if (!(*entry = file_entry(dest, m.size, m.b2, "chunks")))
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
done:
	if (fd >= 0)
		close(fd);
	free(regions);
	sluice_buf__dispose(&text);
	sluice_manifest__dispose(&m);
	return error;
}
