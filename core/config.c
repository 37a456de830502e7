/*
 * core/config.c - the repository's local settings in its git config
 * (core/config.h): read, set, unset and list the sluice.* and hook.* keys.
 *
 * Only the repository's own file (libgit2's local level, REPO/config) is
 * read and written: a user's ~/.gitconfig must not change how a
 * repository evaluates or whom it notifies.
 */
#include "config.h"

#include "sluice/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* What a key's value must look like. */
enum kind { K_STRING, K_URL, K_INT, K_BOOL, K_HOOK_TYPE };

struct known {
	const char *name; /* after "sluice.http." or after "hook.NAME." */
	enum kind kind;
	int64_t min, max; /* K_INT */
	int multi;        /* may hold several values */
};

static const struct known http_keys[] = {
        {"url", K_URL, 0, 0, 0},
        {"model", K_STRING, 0, 0, 0},
        {"concurrency", K_INT, 1, SLUICE_HTTP_CONCURRENCY_MAX, 0},
        {"timeout", K_INT, 1, 86400, 0},
        {"retries", K_INT, 0, 20, 0},
        {"adapterDir", K_STRING, 0, 0, 0},
        {"topLogprobs", K_INT, 1, 1000, 0},
        {NULL, 0, 0, 0, 0},
};

static const struct known hook_keys[] = {
        {"type", K_HOOK_TYPE, 0, 0, 0},
        {"url", K_URL, 0, 0, 0},
        {"channel", K_STRING, 0, 0, 1},
        {"key", K_STRING, 0, 0, 0},
        {"notes", K_BOOL, 0, 0, 0},
        /* hooks/: the journal position a webhook delivers from, and seconds per request. */
        {"since", K_INT, 0, INT64_MAX, 0},
        {"timeout", K_INT, 1, 3600, 0},
        {NULL, 0, 0, 0, 0},
};

static const struct known *find_key(const struct known *t, const char *name)
{
	/* Git compares variable names without regard to case. */
	for (; t->name; t++)
		if (!strcasecmp(t->name, name))
			return t;
	return NULL;
}

/* The table entry for key, or NULL (with *why saying what is wrong). */
static const struct known *lookup(const char *key, const char **why)
{
	const char *dot, *last;

	if (!strncasecmp(key, "sluice.http.", 12)) {
		const struct known *k = find_key(http_keys, key + 12);
		if (!k)
			*why = "not a sluice.http setting (url, model, concurrency, timeout, "
			       "retries, adapterDir, topLogprobs)";
		return k;
	}
	if (!strncasecmp(key, "hook.", 5)) {
		const char *name = key + 5;
		if (!(last = strrchr(name, '.')) || last == name) {
			*why = "a hook key is hook.NAME.SETTING";
			return NULL;
		}
		for (dot = name; dot < last; dot++)
			if (!isalnum((unsigned char)*dot) && *dot != '-' && *dot != '_') {
				*why = "a hook's NAME is letters, digits, '-' and '_'";
				return NULL;
			}
		if (!find_key(hook_keys, last + 1)) {
			*why = "not a hook setting (type, url, channel, key, notes, since, "
			       "timeout)";
			return NULL;
		}
		return find_key(hook_keys, last + 1);
	}
	*why = "sluice config sets sluice.http.* and hook.NAME.* keys only";
	return NULL;
}

int sluice_config__check(sluice_ctx *ctx, const char *key, const char *value)
{
	const char *why = NULL;
	const struct known *k = lookup(key, &why);

	if (!k)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "config key %s: %s", key, why);
	if (!value)
		return SLUICE_OK;
	if (!*value || strchr(value, '\n'))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "config key %s: the value must be one non-empty line",
		                         key);
	switch (k->kind) {
	case K_URL:
		if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "config key %s: '%s' is not an http:// or "
			                         "https:// URL",
			                         key, value);
		break;
	case K_INT: {
		char *end;
		long long v;
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || *end || end == value || v < k->min || v > k->max)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "config key %s: '%s' is not an integer from %" PRId64
			        " to %" PRId64,
			        key, value, k->min, k->max);
		break;
	}
	case K_BOOL:
		if (strcmp(value, "true") && strcmp(value, "false"))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "config key %s: '%s' is not true or false", key,
			                         value);
		break;
	case K_HOOK_TYPE:
		if (strcmp(value, "webhook") && strcmp(value, "vllm") && strcmp(value, "llamacpp"))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "config key %s: '%s' is not a hook type (webhook, "
			                         "vllm, llamacpp)",
			                         key, value);
		break;
	case K_STRING:
		break;
	}
	return SLUICE_OK;
}

int sluice_config__open_local(sluice_repo *repo, git_config **out)
{
	git_config *all = NULL;
	int error;

	if ((error = git_repository_config(&all, repo->git)) < 0)
		return sluice_ctx__giterror(repo->ctx, error,
		                            "cannot open the repository's config");
	error = git_config_open_level(out, all, GIT_CONFIG_LEVEL_LOCAL);
	git_config_free(all);
	if (error < 0)
		return sluice_ctx__giterror(repo->ctx, error,
		                            "cannot open the repository's config file");
	return SLUICE_OK;
}

int sluice_config__string_in(sluice_repo *repo, git_config *cfg, char **out, const char *key)
{
	git_buf buf = {0};
	int error = git_config_get_string_buf(&buf, cfg, key);

	*out = NULL;
	if (error == GIT_ENOTFOUND)
		error = SLUICE_OK;
	else if (error < 0)
		error = sluice_ctx__giterror(repo->ctx, error,
		                             "cannot read config key %s in %s/config", key,
		                             repo->path);
	else if (!(*out = sluice__strdup(repo->ctx, buf.ptr)))
		error = SLUICE_ENOMEM;
	git_buf_dispose(&buf);
	return error;
}

int sluice_config__get_string(sluice_repo *repo, char **out, const char *key, const char *dflt)
{
	git_config *cfg = NULL;
	int error;

	*out = NULL;
	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		return error;
	error = sluice_config__string_in(repo, cfg, out, key);
	git_config_free(cfg);
	if (error == 0 && !*out && dflt && !(*out = sluice__strdup(repo->ctx, dflt)))
		error = SLUICE_ENOMEM;
	return error;
}

int sluice_config__get_int(sluice_repo *repo, int64_t *out, const char *key, int64_t dflt,
                           int64_t min, int64_t max)
{
	char *s = NULL, *end;
	long long v;
	int error;

	if ((error = sluice_config__get_string(repo, &s, key, NULL)) < 0)
		return error;
	if (!s) {
		*out = dflt;
		return SLUICE_OK;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		error = sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
		                          "config key %s: '%s' is not an integer from %" PRId64
		                          " to %" PRId64 " (sluice config %s VALUE)",
		                          key, s, min, max, key);
	else
		*out = v;
	free(s);
	return error;
}

int sluice_config__get_all(sluice_repo *repo, json_t **out, const char *key)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	json_t *arr = json_array();
	int error;

	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		goto done;
	if ((error = git_config_multivar_iterator_new(&it, cfg, key, NULL)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read config key %s", key);
		goto done;
	}
	while ((error = git_config_next(&e, it)) == 0)
		json_array_append_new(arr, json_string(e->value));
	if (error != GIT_ITEROVER) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read config key %s", key);
		goto done;
	}
	error = SLUICE_OK;
	*out = arr;
	arr = NULL;
done:
	json_decref(arr);
	git_config_iterator_free(it);
	git_config_free(cfg);
	return error;
}

/*
 * Add a value beside a multi-valued key's others, the way git config --add
 * does: under git's lock (config.lock, created exclusively, renamed over
 * config), a section header and the value appended to the file (a section
 * may repeat; git reads the values in file order). Not through libgit2:
 * adding needs a regular expression that matches no existing value, and
 * libgit2 1.5's git_regexp_match leaks its match data on every mismatch.
 */
static int add_value(sluice_repo *repo, const char *key, const char *value)
{
	sluice_ctx *ctx = repo->ctx;
	const char *first = strchr(key, '.'), *last = strrchr(key, '.');
	git_buf path = {0};
	char lock[4200];
	unsigned char *old = NULL;
	size_t oldlen = 0;
	sluice_buf out = {0};
	int fd = -1, locked = 0, error;

	if ((error = git_repository_item_path(&path, repo->git, GIT_REPOSITORY_ITEM_CONFIG)) < 0)
		return sluice_ctx__giterror(ctx, error, "cannot find the repository's config");
	snprintf(lock, sizeof(lock), "%s.lock", path.ptr);
	if ((fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0) {
		error = errno == EEXIST ? sluice_ctx__error(ctx, SLUICE_ECONFLICT,
		                                            "%s exists: another process is "
		                                            "changing the config",
		                                            lock)
		                        : sluice_ctx__oserror(ctx, "cannot create %s", lock);
		goto done;
	}
	locked = 1; /* ours to remove until it is renamed */
	if ((error = sluice_io__read_file(ctx, &old, &oldlen, path.ptr, 16u << 20)) < 0 ||
	    (error = sluice_buf__put(ctx, &out, old, oldlen)) < 0 ||
	    (oldlen && old[oldlen - 1] != '\n' &&
	     (error = sluice_buf__puts(ctx, &out, "\n")) < 0) ||
	    (error = sluice_buf__printf(ctx, &out, "[%.*s \"%.*s\"]\n\t%s = \"", (int)(first - key),
	                                key, (int)(last - first - 1), first + 1, last + 1)) < 0)
		goto done;
	/* A quoted value: backslash and double quote escaped (checks refused newlines). */
	for (const char *p = value; *p && error == 0; p++)
		error = (*p == '\\' || *p == '"') ? sluice_buf__printf(ctx, &out, "\\%c", *p)
		                                  : sluice_buf__put(ctx, &out, p, 1);
	if (error < 0 || (error = sluice_buf__puts(ctx, &out, "\"\n")) < 0 ||
	    (error = sluice_io__write_all(ctx, fd, out.ptr, out.len, lock)) < 0 ||
	    (error = sluice_io__fsync(ctx, fd, lock)) < 0)
		goto done;
	close(fd);
	fd = -1;
	if (rename(lock, path.ptr) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot rename %s to %s", lock, path.ptr);
		goto done;
	}
	locked = 0; /* renamed: nothing to remove */
	*strrchr(path.ptr, '/') = '\0';
	error = sluice_io__fsync_dir(ctx, path.ptr);
done:
	if (fd >= 0)
		close(fd);
	if (locked)
		unlink(lock);
	free(old);
	sluice_buf__dispose(&out);
	git_buf_dispose(&path);
	return error;
}

int sluice_config__set_string(sluice_repo *repo, const char *key, const char *value, int add)
{
	const char *why = NULL;
	const struct known *k = lookup(key, &why);
	git_config *cfg = NULL;
	json_t *all = NULL;
	int error;

	if ((error = sluice_config__check(repo->ctx, key, value)) < 0)
		return error;
	if (add && !k->multi)
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
		                         "config key %s holds one value; adding values is for "
		                         "hook.NAME.channel",
		                         key);
	if (add) {
		if ((error = sluice_config__get_all(repo, &all, key)) < 0)
			return error;
		error = json_array_size(all) ? add_value(repo, key, value) : 1;
		json_decref(all);
		if (error <= 0)
			return error;
	}
	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		return error;
	/* ".*" matches every value: libgit2 1.5 leaks on a mismatch (add_value). */
	error = git_config_delete_multivar(cfg, key, ".*");
	if (error == 0 || error == GIT_ENOTFOUND)
		error = git_config_set_string(cfg, key, value);
	if (error < 0)
		error = sluice_ctx__giterror(repo->ctx, error, "cannot set config key %s", key);
	git_config_free(cfg);
	return error;
}

int sluice_config__unset(sluice_repo *repo, const char *key)
{
	git_config *cfg = NULL;
	int error;

	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		return error;
	error = git_config_delete_multivar(cfg, key, ".*");
	if (error == GIT_ENOTFOUND)
		error = sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND, "config key %s is not set",
		                          key);
	else if (error < 0)
		error = sluice_ctx__giterror(repo->ctx, error, "cannot unset config key %s", key);
	git_config_free(cfg);
	return error;
}

int sluice_config__list(sluice_repo *repo, json_t **out)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	json_t *obj = json_object();
	int error;

	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		goto done;
	/* All entries, filtered here: a glob iterator's regex leaks in libgit2 1.5 (above). */
	if ((error = git_config_iterator_new(&it, cfg)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot list the config");
		goto done;
	}
	while ((error = git_config_next(&e, it)) == 0) {
		json_t *prev = json_object_get(obj, e->name);
		if (strncmp(e->name, "sluice.", 7) && strncmp(e->name, "hook.", 5))
			continue;
		if (!prev) {
			json_object_set_new(obj, e->name, json_string(e->value));
		} else if (json_is_array(prev)) {
			json_array_append_new(prev, json_string(e->value));
		} else {
			json_object_set_new(obj, e->name, json_pack("[O,s]", prev, e->value));
		}
	}
	if (error != GIT_ITEROVER) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot list the config");
		goto done;
	}
	error = SLUICE_OK;
	*out = obj;
	obj = NULL;
done:
	json_decref(obj);
	git_config_iterator_free(it);
	git_config_free(cfg);
	return error;
}

/* ---- the public API (sluice/config.h) ----------------------------------- */

int sluice_config_get(sluice_repo *repo, const char *key, char **report)
{
	json_t *all = NULL;
	int error;

	if ((error = sluice_config__get_all(repo, &all, key)) < 0)
		return error;
	if (json_array_size(all) == 0) {
		json_decref(all);
		return sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND, "config key %s is not set",
		                         key);
	}
	return sluice_repo__report(repo->ctx, report,
	                           json_pack("{s:s,s:O,s:o}", "key", key, "value",
	                                     json_array_get(all, json_array_size(all) - 1),
	                                     "values", all));
}

int sluice_config_set(sluice_repo *repo, const char *key, const char *value, int add)
{
	return sluice_config__set_string(repo, key, value, add);
}

int sluice_config_unset(sluice_repo *repo, const char *key)
{
	return sluice_config__unset(repo, key);
}

int sluice_config_list(sluice_repo *repo, char **report)
{
	json_t *obj = NULL;
	int error;

	if ((error = sluice_config__list(repo, &obj)) < 0)
		return error;
	return sluice_repo__report(repo->ctx, report, json_pack("{s:o}", "config", obj));
}
