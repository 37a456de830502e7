/*
 * core/repo.c - the repository: layout, opening, signed commits and the
 * journal (refs/sluice/journal), the single commit point of every action.
 */
#include "jindex.h"
#include "repo.h"
#include "tlog.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void sluice_free(void *p)
{
	free(p);
}

const char *sluice_repo_path(const sluice_repo *repo)
{
	return repo->path;
}

void sluice_repo_set_progress(sluice_repo *repo, sluice_progress_cb cb, void *data)
{
	repo->progress = cb;
	repo->progress_data = data;
}

void sluice_repo_set_item_progress(sluice_repo *repo, sluice_progress_cb cb, void *data)
{
	repo->item_progress = cb;
	repo->item_progress_data = data;
}

void sluice_repo__now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int sluice_repo__dump(sluice_ctx *ctx, char **out, const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	if (!s)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode JSON");
	*out = s;
	return SLUICE_OK;
}

int sluice_repo__report(sluice_ctx *ctx, char **out, json_t *v)
{
	int error = SLUICE_OK;

	if (!v)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build report");
	if (out)
		error = sluice_repo__dump(ctx, out, v);
	json_decref(v);
	return error;
}

int sluice_repo__parse_json(sluice_ctx *ctx, json_t **out, const void *data, size_t len,
                            const char *what)
{
	json_error_t jerr;
	json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!v)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: line %d column %d: %s", what,
		                         jerr.line, jerr.column, jerr.text);
	*out = v;
	return SLUICE_OK;
}

static int repo_alloc(sluice_repo **out, sluice_ctx *ctx, const char *path)
{
	sluice_repo *repo;
	char buf[PATH_MAX];

	if (!realpath(path, buf))
		return sluice_ctx__oserror(ctx, "cannot resolve %s", path);
	if (!(repo = sluice__calloc(ctx, 1, sizeof(*repo))))
		return SLUICE_ENOMEM;
	repo->ctx = ctx;
	if (!(repo->path = sluice__strdup(ctx, buf)) ||
	    !(repo->sdir = sluice__malloc(ctx, strlen(buf) + 8))) {
		sluice_repo_free(repo);
		return SLUICE_ENOMEM;
	}
	sprintf(repo->sdir, "%s/sluice", buf);
	*out = repo;
	return SLUICE_OK;
}

void sluice_repo_free(sluice_repo *repo)
{
	if (!repo)
		return;
	sluice_chunkstore__free(repo->cs);
	sluice_jindex__free(repo->jindex);
	sluice_journal__cache_free(repo);
	sluice_tlog__memo_free(repo);
	git_repository_free(repo->git);
	free(repo->path);
	free(repo->sdir);
	free(repo);
}

int sluice_repo__chunks(sluice_repo *repo, sluice_chunkstore **out)
{
	int error;

	if (!repo->cs && (error = sluice_chunkstore__open(&repo->cs, repo->ctx, repo->sdir)) < 0)
		return error;
	*out = repo->cs;
	return SLUICE_OK;
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return errno == ENOENT ? 1 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

int sluice_repo_open(sluice_repo **out, sluice_ctx *ctx, const char *path)
{
	sluice_repo *repo = NULL;
	char marker[PATH_MAX];
	struct stat st;
	int error;

	if (snprintf(marker, sizeof(marker), "%s/sluice", path) >= (int)sizeof(marker))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", path);
	if (stat(marker, &st) < 0 || !S_ISDIR(st.st_mode))
		return sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                         "%s is not a sluice repository (no sluice/ directory); "
		                         "create one with 'sluice init %s'",
		                         path, path);
	if ((error = repo_alloc(&repo, ctx, path)) < 0)
		return error;
	if ((error = git_repository_open_bare(&repo->git, repo->path)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot open git repository %s",
		                             repo->path);
		goto done;
	}
	*out = repo;
	repo = NULL;
done:
	sluice_repo_free(repo);
	return error;
}

int sluice_repo__key_entry(sluice_ctx *ctx, json_t **out, const sluice_key *k,
                           const char *const *roles, size_t nroles)
{
	char fp[SLUICE_FP_LEN];
	sluice_buf pub = {0};
	json_t *r;
	int error;

	/* The registry keeps the bare "ssh-ed25519 AAAA..." line; the name is its key. */
	if ((error = sluice_keys__openssh_pub(ctx, k->pk, NULL, &pub)) < 0 ||
	    (error = sluice_buf__cstr(ctx, &pub)) < 0) {
		sluice_buf__dispose(&pub);
		return error;
	}
	sluice_keys__fingerprint(fp, k->pk);
	r = json_array();
	for (size_t i = 0; i < nroles; i++)
		json_array_append_new(r, json_string(roles[i]));
	*out = json_pack("{s:s, s:s, s:o}", "fingerprint", fp, "public_key", (char *)pub.ptr,
	                 "roles", r);
	sluice_buf__dispose(&pub);
	return *out ? SLUICE_OK : sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode key");
}

int sluice_repo_init(sluice_repo **out, sluice_ctx *ctx, const char *path,
                     const char *const *root_keys, size_t nroot, const sluice_init_opts *opts,
                     char **report)
{
	static const char *const default_root[] = {"root"};
	static const char *const root_role[] = {"root"};
	sluice_repo *repo = NULL;
	sluice_key *keys = NULL;
	json_t *registry = NULL, *rep = NULL, *list, *config = NULL;
	git_oid entry;
	int error, empty;
	char sub[PATH_MAX];

	if (nroot == 0) {
		root_keys = default_root;
		nroot = 1;
	}
	if ((empty = dir_is_empty(path)) < 0)
		return sluice_ctx__oserror(ctx, "cannot read %s", path);
	if (!empty)
		return sluice_ctx__error(
		        ctx, SLUICE_EEXISTS,
		        "%s is not empty; sluice init needs a new or empty directory", path);
	if (opts && opts->root_threshold > (nroot ? nroot : 1))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "a root threshold of %u needs at least %u root keys "
		                         "(--root-key NAME for each)",
		                         opts->root_threshold, opts->root_threshold);
	/* The configuration and keys first: bad input must leave nothing behind. */
	if ((error = sluice_gates__default_config(ctx, &config, opts ? opts->required_gates : NULL,
	                                          opts ? opts->ngates : 0,
	                                          opts ? opts->gates_set : 0)) < 0)
		return error;
	if (opts && opts->config_json &&
	    (error = sluice_gates__merge_config(ctx, config, opts->config_json,
	                                        opts->config_name ? opts->config_name
	                                                          : "gate configuration")) < 0) {
		json_decref(config);
		return error;
	}
	if (!(keys = sluice__calloc(ctx, nroot, sizeof(*keys))))
		return SLUICE_ENOMEM;
	for (size_t i = 0; i < nroot; i++) {
		if ((error = sluice_keys__check_name(ctx, root_keys[i])) < 0)
			goto done;
		error = sluice_keys__load(ctx, &keys[i], root_keys[i]);
		if (error == SLUICE_ENOTFOUND)
			error = sluice_keys__generate(ctx, &keys[i], root_keys[i]);
		if (error < 0)
			goto done;
		for (size_t j = 0; j < i; j++)
			if (!memcmp(keys[j].pk, keys[i].pk, 32)) {
				error = sluice_ctx__error(ctx, SLUICE_EINVALID,
				                          "root key %s is given twice",
				                          root_keys[i]);
				goto done;
			}
	}
	if ((error = sluice_io__mkdirs(ctx, path, 0755)) < 0)
		goto done;
	if ((error = repo_alloc(&repo, ctx, path)) < 0)
		goto done;
	if ((error = git_repository_init(&repo->git, repo->path, 1)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot create git repository in %s",
		                             repo->path);
		goto done;
	}
	snprintf(sub, sizeof(sub), "%s/packs", repo->sdir);
	if ((error = sluice_io__mkdirs(ctx, sub, 0755)) < 0)
		goto done;
	registry = json_object();
	list = json_array();
	for (size_t i = 0; i < nroot; i++) {
		char fp[SLUICE_FP_LEN];
		json_t *e = NULL;
		if ((error = sluice_repo__key_entry(ctx, &e, &keys[i], root_role, 1)) < 0)
			goto done;
		json_object_set_new(registry, keys[i].name, e);
		sluice_keys__fingerprint(fp, keys[i].pk);
		json_array_append_new(
		        list, json_pack("{s:s,s:s}", "name", keys[i].name, "fingerprint", fp));
	}
	{
		/* The first entry: nothing before it, so no compare-and-swap base. */
		sluice_jstate first = {.keys = registry, .channels = json_object()};
		unsigned threshold = opts && opts->root_threshold ? opts->root_threshold : 1;
		sluice_jchange ch = {.record = json_pack("{s:O,s:i}", "root_keys", list,
		                                         "root_threshold", (int)threshold),
		                     .config_after = config,
		                     .trust_after = json_pack("{s:{s:i},s:{}}", "thresholds",
		                                              "root", (int)threshold, "pending")};
		config = NULL; /* owned by the change */
		json_object_set(ch.record, "required_gates",
		                json_object_get(ch.config_after, "required_gates"));
		error = sluice_journal__commit(repo, &entry, &keys[0], "init", &first, &ch);
		sluice_journal__change_dispose(&ch);
		json_decref(first.channels);
		if (error < 0)
			goto done;
		sluice_journal__sync_index(repo);
	}
	rep = json_pack("{s:s, s:o}", "path", repo->path, "root_keys", list);
	list = NULL;
	if ((error = sluice_repo__report(ctx, report, rep)) < 0)
		goto done;
	if (out) {
		*out = repo;
		repo = NULL;
	}
done:
	json_decref(config);
	json_decref(registry);
	for (size_t i = 0; keys && i < nroot; i++)
		sluice_key__dispose(&keys[i]);
	free(keys);
	sluice_repo_free(repo);
	return error;
}

int sluice_repo__read_blob(sluice_repo *repo, sluice_buf *out, const git_oid *id, const char *what)
{
	git_blob *blob = NULL;
	int error;

	if ((error = git_blob_lookup(&blob, repo->git, id)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot read %s", what);
	out->len = 0;
	error = sluice_buf__put(repo->ctx, out, git_blob_rawcontent(blob),
	                        (size_t)git_blob_rawsize(blob));
	git_blob_free(blob);
	return error;
}

int sluice_repo__commit_with_signature(sluice_ctx *ctx, sluice_buf *out, const char *content,
                                       size_t len, const char *sig)
{
	const char *end = strstr(content, "\n\n"), *lf; /* content ends in a NUL */
	int error;

	if (!end || end >= content + len)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "a commit without a blank line "
		                         "after its header");
	end++; /* the header's last line ends at the first of the two newlines */
	if ((error = sluice_buf__put(ctx, out, content, (size_t)(end - content))) < 0 ||
	    (error = sluice_buf__puts(ctx, out, "gpgsig ")) < 0)
		return error;
	/* Every line after the first continues the header, so it starts with a space. */
	while ((lf = strchr(sig, '\n')) != NULL) {
		if ((error = sluice_buf__put(ctx, out, sig, (size_t)(lf - sig))) < 0 ||
		    (error = sluice_buf__puts(ctx, out, "\n ")) < 0)
			return error;
		sig = lf + 1;
	}
	if ((error = sluice_buf__puts(ctx, out, sig)) < 0 ||
	    (error = sluice_buf__puts(ctx, out, "\n")) < 0)
		return error;
	return sluice_buf__put(ctx, out, end, len - (size_t)(end - content));
}

/*
 * The commit's text as git_commit_create_buffer writes it (tree, parents,
 * author, committer, a blank line, the message), formatted here from ids
 * the caller has: libgit2's function takes the tree and parents as
 * objects, and looking them up read the parent commit from disk in every
 * journal entry. The caller's ids are ones sluice has just staged or
 * resolved.
 */
static int commit_text(sluice_ctx *ctx, sluice_buf *out, const git_signature *who,
                       const char *message, const git_oid *tree_id, const git_oid *parents,
                       size_t nparents)
{
	char hex[GIT_OID_HEXSZ + 1];
	int offset = who->when.offset < 0 ? -who->when.offset : who->when.offset;
	char sign = who->when.offset < 0 || who->when.sign == '-' ? '-' : '+';
	int error;

	git_oid_tostr(hex, sizeof(hex), tree_id);
	if ((error = sluice_buf__printf(ctx, out, "tree %s\n", hex)) < 0)
		return error;
	for (size_t i = 0; i < nparents; i++) {
		git_oid_tostr(hex, sizeof(hex), &parents[i]);
		if ((error = sluice_buf__printf(ctx, out, "parent %s\n", hex)) < 0)
			return error;
	}
	/* As libgit2 writes a signature line: the time as an unsigned number. */
	for (int k = 0; k < 2; k++)
		if ((error = sluice_buf__printf(ctx, out, "%s %s <%s> %u %c%02d%02d\n",
		                                k ? "committer" : "author", who->name, who->email,
		                                (unsigned)who->when.time, sign, offset / 60,
		                                offset % 60)) < 0)
			return error;
	if ((error = sluice_buf__puts(ctx, out, "\n")) < 0 ||
	    (error = sluice_buf__puts(ctx, out, message)) < 0)
		return error;
	return sluice_buf__cstr(ctx, out);
}

int sluice_repo__signed_commit(sluice_repo *repo, git_oid *out, const sluice_key *key,
                               const char *message, const git_oid *tree_id, const git_oid *parents,
                               size_t nparents)
{
	sluice_ctx *ctx = repo->ctx;
	git_signature *who = NULL;
	sluice_buf content = {0}, sig = {0}, signed_ = {0};
	char fp[SLUICE_FP_LEN];
	int error;

	if (nparents > 4)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "too many parents");
	sluice_keys__fingerprint(fp, key->pk);
	/* git_signature_now checks the name and address as git would have them. */
	if ((error = git_signature_now(&who, key->name, fp)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot prepare commit");
		goto done;
	}
	if ((error = commit_text(ctx, &content, who, message, tree_id, parents, nparents)) < 0)
		goto done;
	if ((error = sluice_sshsig__sign(ctx, key, "git", content.ptr, content.len, &sig)) < 0 ||
	    (error = sluice_buf__cstr(ctx, &sig)) < 0)
		goto done;
	/* libgit2 wants the armour without its final newline. */
	while (sig.len && sig.ptr[sig.len - 1] == '\n')
		sig.ptr[--sig.len] = '\0';
	if ((error = sluice_repo__commit_with_signature(ctx, &signed_, (const char *)content.ptr,
	                                                content.len, (const char *)sig.ptr)) < 0)
		goto done;
	/*
	 * Into the open stage (a journal entry) without git_odb_write's
	 * existence queries.
	 */
	error = sluice_stage__object(repo, out, signed_.ptr, signed_.len, GIT_OBJECT_COMMIT);
done:
	sluice_buf__dispose(&signed_);
	sluice_buf__dispose(&content);
	sluice_buf__dispose(&sig);
	git_signature_free(who);
	return error;
}

int sluice_repo__check_commit_sig(sluice_repo *repo, const git_oid *id, json_t *registry,
                                  const char *role, const char **signer_name)
{
	return sluice_repo__check_commit_sig_at(repo, id, registry, role, UINT64_MAX, signer_name);
}

int sluice_repo__check_commit_sig_at(sluice_repo *repo, const git_oid *id, json_t *registry,
                                     const char *role, uint64_t at_seq, const char **signer_name)
{
	sluice_ctx *ctx = repo->ctx;
	git_buf sig = {0}, data = {0};
	unsigned char pk[32];
	char hex[GIT_OID_HEXSZ + 1], fp[SLUICE_FP_LEN];
	const char *name;
	json_t *e;
	int error;

	git_oid_tostr(hex, sizeof(hex), id);
	if ((error = git_commit_extract_signature(&sig, &data, repo->git, (git_oid *)id,
	                                          "gpgsig")) < 0) {
		if (error == GIT_ENOTFOUND)
			error = sluice_ctx__error(ctx, SLUICE_EDENIED, "commit %s is not signed",
			                          hex);
		else
			error = sluice_ctx__giterror(ctx, error, "cannot read commit %s", hex);
		goto done;
	}
	if ((error = sluice_sshsig__verify(ctx, pk, sig.ptr, sig.size, "git", data.ptr,
	                                   data.size)) < 0) {
		/* Only a signature that is wrong is "denied"; running out of memory is not. */
		if (error == SLUICE_EDENIED || error == SLUICE_EINVALID)
			error = sluice_ctx__wrap(ctx, SLUICE_EDENIED, "commit %s: bad signature",
			                         hex);
		goto done;
	}
	sluice_keys__fingerprint(fp, pk);
	error = sluice_ctx__error(
	        ctx, SLUICE_EDENIED,
	        "commit %s is signed by %s, a key not registered in the repository", hex, fp);
	json_object_foreach(registry, name, e)
	{
		size_t i;
		json_t *r;

		if (strcmp(sluice__jstr(json_object_get(e, "fingerprint")), fp))
			continue;
		if ((error = sluice_trust__key_standing(ctx, name, e, at_seq, NULL)) < 0) {
			error = sluice_ctx__wrap(ctx, SLUICE_EDENIED, "commit %s", hex);
			goto done;
		}
		if (role) {
			int has = 0;
			json_array_foreach(json_object_get(e, "roles"), i, r) has |=
			        !strcmp(sluice__jstr(r), role);
			if (!has) {
				error = sluice_ctx__error(ctx, SLUICE_EDENIED,
				                          "commit %s is signed by key %s, which "
				                          "does not have the %s role",
				                          hex, name, role);
				goto done;
			}
		}
		if (signer_name)
			*signer_name = name;
		sluice_ctx_clear_error(ctx);
		error = SLUICE_OK;
		break;
	}
done:
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	return error;
}

int sluice_repo__signing_key(sluice_repo *repo, sluice_key *out, const char *name, const char *role)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *registry = NULL, *e, *r;
	char fp[SLUICE_FP_LEN];
	const char *regname;
	size_t i;
	int error, has = 0;

	if (!name)
		return sluice_ctx__error(ctx, SLUICE_EUSAGE,
		                         "no signing key given (use --key NAME)");
	if ((error = sluice_keys__load(ctx, out, name)) < 0)
		return error;
	if ((error = sluice_journal__keys(repo, &registry)) < 0)
		goto done;
	sluice_keys__fingerprint(fp, out->pk);
	error = sluice_ctx__error(ctx, SLUICE_EDENIED,
	                          "key %s (%s) is not registered in this repository; "
	                          "a root key holder can add it with 'sluice key new %s --role %s'",
	                          name, fp, name, role ? role : "ROLE");
	json_object_foreach(registry, regname, e)
	{
		if (strcmp(sluice__jstr(json_object_get(e, "fingerprint")), fp))
			continue;
		json_array_foreach(json_object_get(e, "roles"), i, r) has |=
		        role && !strcmp(sluice__jstr(r), role);
		if (role && !has) {
			error = sluice_ctx__error(ctx, SLUICE_EDENIED,
			                          "key %s does not have the %s role", name, role);
			goto done;
		}
		sluice_ctx_clear_error(ctx);
		error = SLUICE_OK;
		break;
	}
done:
	json_decref(registry);
	if (error < 0)
		sluice_key__dispose(out);
	return error;
}
