/*
 * core/remote.c - remotes (sluice/remote.h, docs/remotes.md): the git
 * history travels through libgit2's git_remote; chunks travel to and from
 * a chunk store over HTTP(S) GET/PUT with libcurl's multi interface.
 *
 * Push learns what the chunk store lacks from the remote's journal: push
 * writes chunks before refs, so every chunk of every version the remote
 * journal reaches is in the store. What it lacks is therefore the chunks
 * of the versions the push adds, minus the chunks of the versions the
 * remote journal already reaches - computed locally, with no request per
 * chunk the store holds. A local record of what each store took or served
 * (sluice/remotes/HASH.known) covers what a journal cannot vouch for.
 *
 * Pull fetches into a quarantine (a temporary bare repository under
 * sluice/ whose alternates point at the repository's objects), checks
 * everything there, and only then adds the objects and moves the ref, so
 * a refused pull leaves the repository as it was.
 *
 * A remote on this machine (a path) is written and read by sluice itself,
 * not through git's pack protocol: its history walk leaves out blobs that
 * sluice purge deleted (which the pack protocol cannot), and its journal
 * ref moves by compare-and-swap under the remote's journal lock. Chunk
 * store credentials come from the environment or a 0600 file, never from
 * the repository, and no message names them.
 */
/* nftw(3) is an XSI interface. */
#define _XOPEN_SOURCE 700

#include "curl.h"
#include "config.h"
#include "remote.h"

#include "jindex.h"
#include "repo.h"
#include "tlog.h"
#include "version.h"
#include "sluice/remote.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL_REFS "refs/sluice/channels/"
#define CHUNKS_KEY "sluicechunks"
#define CHUNKS_CRED_KEY "sluicechunkscredentials"
#define GIT_CRED_KEY "sluicegitcredentials"

/* ---- judging a chunk store's answers (core/remote.h) -------------------- */

int sluice_remote__judge(sluice_ctx *ctx, sluice_chunk_op op, long status,
                         const unsigned char id[SLUICE_B2_LEN], uint64_t len,
                         const unsigned char *body, size_t blen, int64_t hlen, const char *url,
                         const char *why, int *retry)
{
	char hex[SLUICE_B2_HEX];

	*retry = 0;
	sluice__hex(hex, id, SLUICE_B2_LEN);
	if (op == SLUICE_CHUNK_PUT) {
		if (status == 200 || status == 201 || status == 204)
			return SLUICE_OK;
	} else if (status == 404 || status == 410) {
		return sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                         "chunk %s (needed by %s) is missing from the chunk store "
		                         "(%s answered %ld)",
		                         hex, why, url, status);
	} else if (status == 200 && op == SLUICE_CHUNK_HEAD) {
		if (hlen >= 0 && (uint64_t)hlen == len)
			return SLUICE_OK;
		return sluice_ctx__error(
		        ctx, SLUICE_ECORRUPT,
		        "chunk %s (needed by %s) on the chunk store has length %lld, "
		        "not %llu (%s)",
		        hex, why, (long long)hlen, (unsigned long long)len, url);
	} else if (status == 200) {
		unsigned char got[SLUICE_B2_LEN];
		char ghex[SLUICE_B2_HEX];

		if (blen != len)
			return sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "chunk %s (needed by %s) from the chunk store is "
			        "corrupt: %zu bytes where %llu were expected (%s); "
			        "nothing was stored",
			        hex, why, blen, (unsigned long long)len, url);
		sluice__b2(got, body, blen);
		if (sodium_memcmp(got, id, SLUICE_B2_LEN)) {
			sluice__hex(ghex, got, SLUICE_B2_LEN);
			return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                         "chunk %s (needed by %s) from the chunk store is "
			                         "corrupt: its bytes hash to %s (%s); nothing was "
			                         "stored",
			                         hex, why, ghex, url);
		}
		return SLUICE_OK;
	}
	*retry = status == 408 || status == 429 || (status >= 500 && status <= 599);
	return sluice_ctx__error(ctx, SLUICE_EIO, "chunk store answered %ld to %s of %s (%s)",
	                         status,
	                         op == SLUICE_CHUNK_GET   ? "GET"
	                         : op == SLUICE_CHUNK_PUT ? "PUT"
	                                                  : "HEAD",
	                         url, why);
}

int sluice_remote__check_store_url(sluice_ctx *ctx, const char *url)
{
	const char *host, *p;

	if (!strncmp(url, "http://", 7))
		host = url + 7;
	else if (!strncmp(url, "https://", 8))
		host = url + 8;
	else
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "chunk store URL '%s' is not http:// or https://", url);
	if (!*host || *host == '/')
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "chunk store URL '%s' has no host",
		                         url);
	for (p = url; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "chunk store URL '%s' holds a space or control "
			                         "character",
			                         url);
		if (*p == '?' || *p == '#')
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "chunk store URL '%s' has a query or fragment; give "
			        "the directory only",
			        url);
	}
	p = strchr(host, '/');
	if (memchr(host, '@', p ? (size_t)(p - host) : strlen(host)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "chunk store URL '%s' holds user information; credentials "
		                         "do not belong in the repository's config",
		                         url);
	if (strlen(url) > 2048)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "chunk store URL is too long");
	return SLUICE_OK;
}

/* ---- a set of chunk ids ------------------------------------------------- */

typedef struct {
	unsigned char id[SLUICE_B2_LEN];
	uint64_t len;
	uint32_t why; /* index into the set's why array */
	int used;
} cslot;

typedef struct {
	cslot *slots;
	size_t cap, n;
	json_t *why; /* "version V, FILE" strings */
} cset;

static size_t chash(const unsigned char *id)
{
	size_t h;
	/* Ids are BLAKE2b digests: any of their bytes are already uniform. */
	memcpy(&h, id, sizeof(h));
	return h;
}

static void cset_dispose(cset *s)
{
	free(s->slots);
	json_decref(s->why);
	memset(s, 0, sizeof(*s));
}

static cslot *cset_find(const cset *s, const unsigned char *id)
{
	size_t i;

	if (!s->cap)
		return NULL;
	for (i = chash(id) & (s->cap - 1); s->slots[i].used; i = (i + 1) & (s->cap - 1))
		if (!memcmp(s->slots[i].id, id, SLUICE_B2_LEN))
			return &s->slots[i];
	return NULL;
}

/* Add a chunk; 1 if it was new, 0 if present, negative on error. */
static int cset_add(sluice_ctx *ctx, cset *s, const unsigned char *id, uint64_t len, uint32_t why)
{
	size_t i;

	if (cset_find(s, id))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024, k;
		cslot *ns = sluice__calloc(ctx, ncap, sizeof(*ns));
		if (!ns)
			return SLUICE_ENOMEM;
		for (k = 0; k < s->cap; k++) {
			if (!s->slots[k].used)
				continue;
			for (i = chash(s->slots[k].id) & (ncap - 1); ns[i].used;
			     i = (i + 1) & (ncap - 1))
				;
			ns[i] = s->slots[k];
		}
		free(s->slots);
		s->slots = ns;
		s->cap = ncap;
	}
	for (i = chash(id) & (s->cap - 1); s->slots[i].used; i = (i + 1) & (s->cap - 1))
		;
	memcpy(s->slots[i].id, id, SLUICE_B2_LEN);
	s->slots[i].len = len;
	s->slots[i].why = why;
	s->slots[i].used = 1;
	s->n++;
	return 1;
}

static const char *cset_why(const cset *s, const cslot *c)
{
	return sluice__jstr(json_array_get(s->why, c->why));
}

/* ---- the journal's first-parent chain ----------------------------------- */

/* The entries from head back to (not including) stop, or to the first entry: newest first. */
static int chain(sluice_repo *repo, git_oid **out, size_t *n, int *reached, const git_oid *head,
                 const git_oid *stop)
{
	git_oid id = *head, *v = NULL;
	size_t cap = 0;
	int error = 0;

	*n = 0;
	if (reached)
		*reached = 0;
	for (;;) {
		git_commit *c = NULL;
		if (stop && git_oid_equal(&id, stop)) {
			if (reached)
				*reached = 1;
			break;
		}
		if (*n == cap) {
			void *p = sluice__realloc(repo->ctx, v,
			                          (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (!p) {
				error = SLUICE_ENOMEM;
				break;
			}
			v = p;
		}
		v[(*n)++] = id;
		if ((error = git_commit_lookup(&c, repo->git, &id)) < 0) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &id);
			error = sluice_ctx__giterror(repo->ctx, error,
			                             "cannot read journal entry %s", hex);
			break;
		}
		if (git_commit_parentcount(c) == 0) {
			git_commit_free(c);
			break;
		}
		id = *git_commit_parent_id(c, 0);
		git_commit_free(c);
	}
	if (error < 0) {
		free(v);
		return error;
	}
	*out = v;
	return SLUICE_OK;
}

/* "#SEQ ID (ACTION by ACTOR, TIME)" for messages. */
static void describe(sluice_repo *repo, char *out, size_t size, const git_oid *entry)
{
	json_t *rec = NULL;
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), entry);
	if (sluice_journal__record(repo, &rec, entry) < 0) {
		snprintf(out, size, "%.12s (unreadable)", hex);
		sluice_ctx_clear_error(repo->ctx);
		return;
	}
	snprintf(out, size, "#%lld %.12s (%s by %s, %s)",
	         (long long)json_integer_value(json_object_get(rec, "seq")), hex,
	         sluice__jstr(json_object_get(rec, "action")),
	         sluice__jstr(json_object_get(json_object_get(rec, "actor"), "name")),
	         sluice__jstr(json_object_get(rec, "time")));
	json_decref(rec);
}

static int oid_cmp(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

/*
 * The error for two journals that part: the last common entry and the
 * first entry on each side. ours/theirs are heads whose objects are all
 * readable through repo (theirs via the quarantine).
 */
static int diverged(sluice_repo *repo, const char *name, const git_oid *ours, const git_oid *theirs)
{
	git_oid *a = NULL, *b = NULL, *sorted = NULL;
	size_t na = 0, nb = 0, i;
	char common[400], mine[400], other[400];
	int error;

	if ((error = chain(repo, &a, &na, NULL, ours, NULL)) < 0 ||
	    (error = chain(repo, &b, &nb, NULL, theirs, NULL)) < 0)
		goto done;
	if (!(sorted = sluice__calloc(repo->ctx, na, sizeof(*sorted)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	memcpy(sorted, a, na * sizeof(*a));
	qsort(sorted, na, sizeof(*sorted), oid_cmp);
	for (i = 0; i < nb; i++)
		if (bsearch(&b[i], sorted, na, sizeof(*sorted), oid_cmp))
			break;
	if (i == nb) {
		describe(repo, mine, sizeof(mine), &a[na - 1]);
		describe(repo, other, sizeof(other), &b[nb - 1]);
		error = sluice_ctx__error(
		        repo->ctx, SLUICE_ECONFLICT,
		        "the journals of this repository and remote %s share no "
		        "entry: they are different repositories (first entry here "
		        "%s, on %s %s); nothing was changed",
		        name, mine, name, other);
		goto done;
	}
	describe(repo, common, sizeof(common), &b[i]);
	{
		size_t j;
		for (j = 0; j < na && !git_oid_equal(&a[j], &b[i]); j++)
			;
		/* Both sides have an entry after the common one, or this is no divergence. */
		describe(repo, mine, sizeof(mine), &a[j > 0 ? j - 1 : 0]);
		describe(repo, other, sizeof(other), &b[i > 0 ? i - 1 : 0]);
	}
	error = sluice_ctx__error(
	        repo->ctx, SLUICE_ECONFLICT,
	        "the journals of this repository and remote %s have diverged: the last common "
	        "entry is %s; after it this repository has %s and %s has %s. Nothing was "
	        "changed on either side; one side's entries must be redone on top of the other's",
	        name, common, mine, name, other);
done:
	free(a);
	free(b);
	free(sorted);
	return error;
}

/* ---- versions and their chunks ------------------------------------------ */

struct collect {
	sluice_repo *repo;
	cset *set;
	json_t *purged;
	json_t *seen; /* manifest blob hex -> true */
	sluice_version *v;
	char vhex[GIT_OID_HEXSZ + 1];
};

static int collect_file(void *data, json_t *f)
{
	struct collect *cc = data;
	sluice_repo *repo = cc->repo;
	const char *path = sluice__jstr(json_object_get(f, "path"));
	git_tree_entry *te = NULL;
	sluice_buf blob = {0};
	sluice_manifest m = {0};
	char tpath[4200], bhex[GIT_OID_HEXSZ + 1], why[4400];
	uint32_t wi;
	int error;

	if (strcmp(sluice__jstr(json_object_get(f, "storage")), "chunks"))
		return SLUICE_OK;
	/* Purged content is gone on purpose (docs/audit-purge.md): nothing to send or fetch. */
	if (json_object_get(cc->purged, sluice__jstr(json_object_get(f, "blake2b"))))
		return SLUICE_OK;
	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if ((error = git_tree_entry_bypath(&te, cc->v->tree, tpath)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "version %.12s: %s is missing",
		                             cc->vhex, tpath);
		goto done;
	}
	git_oid_tostr(bhex, sizeof(bhex), git_tree_entry_id(te));
	if (json_object_get(cc->seen, bhex))
		goto done;
	json_object_set_new(cc->seen, bhex, json_true());
	if ((error = sluice_repo__read_blob(repo, &blob, git_tree_entry_id(te), tpath)) < 0 ||
	    (error = sluice_manifest__parse(repo->ctx, &m, blob.ptr, blob.len, tpath)) < 0)
		goto done;
	snprintf(why, sizeof(why), "version %.12s, %s", cc->vhex, path);
	wi = (uint32_t)json_array_size(cc->set->why);
	json_array_append_new(cc->set->why, json_string(why));
	for (size_t i = 0; i < m.nchunks; i++)
		if ((error = cset_add(repo->ctx, cc->set, m.chunks[i].id, m.chunks[i].len, wi)) < 0)
			goto done;
	error = SLUICE_OK;
done:
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&blob);
	git_tree_entry_free(te);
	return error;
}

/* Add the chunks of every version that the entries bring in (an entry's second parent). */
static int collect_chunks(sluice_repo *repo, cset *set, const git_oid *entries, size_t n,
                          json_t *purged, size_t *nversions)
{
	struct collect cc = {repo, set, purged, json_object(), NULL, ""};
	int error = SLUICE_OK;

	if (!set->why)
		set->why = json_array();
	for (size_t i = 0; i < n && error == 0; i++) {
		git_commit *c = NULL;
		sluice_version v;

		if ((error = git_commit_lookup(&c, repo->git, &entries[i])) < 0) {
			error = sluice_ctx__giterror(repo->ctx, error, "cannot read journal entry");
			break;
		}
		if (git_commit_parentcount(c) < 2) {
			git_commit_free(c);
			continue;
		}
		error = sluice_version__load_id(repo, &v, git_commit_parent_id(c, 1));
		git_commit_free(c);
		if (error < 0)
			break;
		if (nversions)
			(*nversions)++;
		cc.v = &v;
		git_oid_tostr(cc.vhex, sizeof(cc.vhex), &v.id);
		error = sluice_version__each_file(v.state, collect_file, &cc);
		sluice_version__dispose(&v);
	}
	json_decref(cc.seen);
	return error;
}

/* The purged set at a journal entry (new reference; {} when none). */
static json_t *purged_at(sluice_repo *repo, const git_oid *entry)
{
	sluice_jstate st;
	json_t *p;

	if (sluice_journal__read_at(repo, entry, &st) < 0) {
		sluice_ctx_clear_error(repo->ctx);
		return json_object();
	}
	p = json_object_get(st.trust, "purged");
	p = json_is_object(p) ? json_incref(p) : json_object();
	sluice_journal__dispose(&st);
	return p;
}

/* ---- credentials for the chunk store ----------------------------------- */

/* Whether a git URL speaks HTTP(S), whose server may ask for credentials. */
static int is_http(const char *url)
{
	return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

/*
 * A chunk store behind HTTP authentication. The secret never lives in the
 * repository: it comes from the environment, from a file the config names
 * (mode 0600, as key files), or from git's credential helpers. Messages
 * name where it came from (source), never its value.
 */
typedef struct {
	char *user, *password, *token;
	char source[PATH_MAX + 80];
} chunk_cred;

static void wipe_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

static void cred_dispose(chunk_cred *c)
{
	wipe_free(c->user);
	wipe_free(c->password);
	wipe_free(c->token);
	memset(c, 0, sizeof(*c));
}

/* A secret must go into an HTTP header or curl option as it is: no line breaks, no NUL. */
static int cred_value_ok(const char *v)
{
	for (; *v; v++)
		if (*v == '\r' || *v == '\n')
			return 0;
	return 1;
}

/* "SLUICE_<KIND>_<WHAT>_<NAME>" with NAME upper-cased, other than letters and digits '_'. */
static void cred_env_name(char *out, size_t size, const char *kind, const char *what,
                          const char *name)
{
	size_t n = (size_t)snprintf(out, size, "SLUICE_%s_%s_", kind, what);

	for (; *name && n + 1 < size; name++)
		out[n++] =
		        isalnum((unsigned char)*name) ? (char)toupper((unsigned char)*name) : '_';
	out[n < size ? n : size - 1] = '\0';
}

/* One level of environment variables; *found is 1 when any of them is set. */
static int cred_from_env(sluice_ctx *ctx, chunk_cred *c, const char *tokvar, const char *uvar,
                         const char *pvar, int *found)
{
	const char *t = getenv(tokvar), *u = getenv(uvar), *p = getenv(pvar);

	*found = (t && *t) || (u && *u) || (p && *p);
	if (!*found)
		return SLUICE_OK;
	if (t && *t && ((u && *u) || (p && *p)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "both %s and %s/%s are set; give a token or a user and "
		                         "password, not both",
		                         tokvar, uvar, pvar);
	if (!(t && *t) && (!(u && *u) || !(p && *p)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s is set but %s is not",
		                         u && *u ? uvar : pvar, u && *u ? pvar : uvar);
	if ((t && !cred_value_ok(t)) || (u && !cred_value_ok(u)) || (p && !cred_value_ok(p)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s, %s or %s holds a line break",
		                         tokvar, uvar, pvar);
	if (t && *t) {
		if (!(c->token = sluice__strdup(ctx, t)))
			return SLUICE_ENOMEM;
		snprintf(c->source, sizeof(c->source), "the environment (%s)", tokvar);
	} else {
		if (!(c->user = sluice__strdup(ctx, u)) || !(c->password = sluice__strdup(ctx, p)))
			return SLUICE_ENOMEM;
		snprintf(c->source, sizeof(c->source), "the environment (%s and %s)", uvar, pvar);
	}
	return SLUICE_OK;
}

/*
 * The file remote.NAME.sluicechunkscredentials names: lines "token=T", or
 * "username=U" and "password=P" (git's credential format), blank lines and
 * '#' comments. Refused unless it is a regular file of this user with no
 * group or other permissions. Error messages give line numbers, never a
 * line's text: it may be a secret.
 */
static int cred_from_file(sluice_ctx *ctx, chunk_cred *c, const char *path)
{
	char text[8192];
	struct stat st;
	size_t len = 0, line = 0;
	ssize_t n;
	int fd, error = SLUICE_OK;
	char *p, *next;

	if (path[0] != '/')
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "chunk store credentials file '%s' is not an absolute "
		                         "path",
		                         path);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if (errno == ELOOP)
			return sluice_ctx__error(ctx, SLUICE_EDENIED,
			                         "chunk store credentials file %s is a symbolic "
			                         "link; refusing to follow it",
			                         path);
		return sluice_ctx__oserror(ctx, "cannot open chunk store credentials file %s",
		                           path);
	}
	if (fstat(fd, &st) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot stat %s", path);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		error = sluice_ctx__error(ctx, SLUICE_EDENIED,
		                          "chunk store credentials file %s is not a regular file",
		                          path);
		goto done;
	}
	if (st.st_mode & 077) {
		error = sluice_ctx__error(ctx, SLUICE_EDENIED,
		                          "chunk store credentials file %s has mode %04o; it must "
		                          "not be readable or writable by group or others (chmod "
		                          "600)",
		                          path, (unsigned)(st.st_mode & 07777));
		goto done;
	}
	if (st.st_uid != geteuid()) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EDENIED,
		        "chunk store credentials file %s is owned by uid %lu, not "
		        "by this user",
		        path, (unsigned long)st.st_uid);
		goto done;
	}
	while (len < sizeof(text) - 1 && (n = read(fd, text + len, sizeof(text) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = sluice_ctx__oserror(ctx, "cannot read %s", path);
			goto done;
		}
		len += (size_t)n;
	}
	if (len == sizeof(text) - 1) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "chunk store credentials file %s is larger than %zu bytes", path,
		        sizeof(text) - 2);
		goto done;
	}
	text[len] = '\0';
	for (p = text; p && *p && error == 0; p = next) {
		char *eq, **slot;
		size_t l;

		line++;
		if ((next = strchr(p, '\n')))
			*next++ = '\0';
		l = strlen(p);
		if (l && p[l - 1] == '\r')
			p[--l] = '\0';
		if (!*p || *p == '#')
			continue;
		if (!(eq = strchr(p, '='))) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s line %zu: not KEY=VALUE (token, username, "
			                          "password)",
			                          path, line);
			break;
		}
		*eq = '\0';
		slot = !strcmp(p, "token")      ? &c->token
		       : !strcmp(p, "username") ? &c->user
		       : !strcmp(p, "password") ? &c->password
		                                : NULL;
		if (!slot) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s line %zu: unknown key (token, username, password "
			        "are known)",
			        path, line);
			break;
		}
		if (*slot || !eq[1]) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s line %zu: %s %s", path,
			                          line, p, *slot ? "given twice" : "is empty");
			break;
		}
		if (!(*slot = sluice__strdup(ctx, eq + 1)))
			error = SLUICE_ENOMEM;
	}
	if (error == 0 && !c->token && !c->user && !c->password)
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "chunk store credentials file %s holds no token and no "
		                          "username",
		                          path);
	else if (error == 0 && c->token && (c->user || c->password))
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "chunk store credentials file %s holds a token and a "
		                          "username or password; give one or the other",
		                          path);
	else if (error == 0 && !c->token && (!c->user || !c->password))
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID, "chunk store credentials file %s has a %s but no %s",
		        path, c->user ? "username" : "password", c->user ? "password" : "username");
	if (error == 0)
		snprintf(c->source, sizeof(c->source), "the file %s", path);
done:
	sodium_memzero(text, sizeof(text));
	close(fd);
	return error;
}

/*
 * The credentials of remote name for its chunk store (git = 0) or its git
 * URL (git = 1), first found of: SLUICE_<K>_TOKEN_<NAME> or
 * SLUICE_<K>_USER_<NAME> and SLUICE_<K>_PASSWORD_<NAME>; SLUICE_<K>_TOKEN
 * or SLUICE_<K>_USER and SLUICE_<K>_PASSWORD; the file
 * remote.NAME.sluicechunkscredentials (or .sluicegitcredentials), where K
 * is CHUNKS or GIT. None of them: c stays empty (requests carry none). A
 * git remote takes a user and password only (libgit2 speaks Basic).
 */
static int cred_load(sluice_repo *repo, const char *name, int git, chunk_cred *c)
{
	const char *kind = git ? "GIT" : "CHUNKS";
	char tv[300], uv[300], pv[300], gt[64], gu[64], gp[64], key[300], *file = NULL;
	int found = 0, error;

	memset(c, 0, sizeof(*c));
	cred_env_name(tv, sizeof(tv), kind, "TOKEN", name);
	cred_env_name(uv, sizeof(uv), kind, "USER", name);
	cred_env_name(pv, sizeof(pv), kind, "PASSWORD", name);
	snprintf(gt, sizeof(gt), "SLUICE_%s_TOKEN", kind);
	snprintf(gu, sizeof(gu), "SLUICE_%s_USER", kind);
	snprintf(gp, sizeof(gp), "SLUICE_%s_PASSWORD", kind);
	if ((error = cred_from_env(repo->ctx, c, tv, uv, pv, &found)) < 0 || found ||
	    (error = cred_from_env(repo->ctx, c, gt, gu, gp, &found)) < 0 || found)
		goto checked;
	snprintf(key, sizeof(key), "remote.%s.%s", name, git ? GIT_CRED_KEY : CHUNKS_CRED_KEY);
	if ((error = sluice_config__get_string(repo, &file, key, NULL)) < 0 || !file)
		goto done;
	error = cred_from_file(repo->ctx, c, file);
checked:
	if (error == 0 && git && c->token)
		error = sluice_ctx__error(
		        repo->ctx, SLUICE_EINVALID,
		        "%s holds a token; a git remote takes a user and password "
		        "(HTTP Basic; a token usually goes as the password)",
		        c->source);
done:
	free(file);
	if (error < 0) {
		sluice_ctx__wrap(repo->ctx, error, "remote %s's %s credentials", name,
		                 git ? "git" : "chunk store");
		cred_dispose(c);
	}
	return error;
}

/*
 * libgit2's credential callback for an http(s) git remote. It answers
 * once per operation: asked again, the server refused what it was given,
 * and answering again would loop.
 */
typedef struct {
	const chunk_cred *cred;
	unsigned asked;
} git_auth;

static int on_git_cred(git_credential **out, const char *url, const char *user_from_url,
                       unsigned int allowed, void *payload)
{
	git_auth *ga = payload;

	(void)url;
	(void)user_from_url;
	ga->asked++;
	if (!ga->cred || !ga->cred->user || ga->asked > 1 ||
	    !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
		return GIT_EAUTH;
	return git_credential_userpass_plaintext_new(out, ga->cred->user, ga->cred->password);
}

/*
 * The error of a git operation that failed: when the server asked for
 * credentials, say so, naming the remote, its URL and where the
 * credentials came from (never what they are).
 */
static int git_op_error(sluice_repo *repo, int error, const git_auth *ga, const char *name,
                        const char *url, const char *what)
{
	char uv[300], pv[300];

	int have = ga && ga->cred && ga->cred->user;

	/* Asked with none to give, or asked again after giving them: the server said no. */
	if (!ga || !ga->asked || (have && ga->asked < 2))
		return sluice_ctx__giterror(repo->ctx, error, "%s", what);
	git_error_clear();
	if (have)
		return sluice_ctx__error(repo->ctx, SLUICE_EDENIED,
		                         "%s: remote %s (%s) refused the git credentials from %s",
		                         what, name, url, ga->cred->source);
	cred_env_name(uv, sizeof(uv), "GIT", "USER", name);
	cred_env_name(pv, sizeof(pv), "GIT", "PASSWORD", name);
	return sluice_ctx__error(repo->ctx, SLUICE_EDENIED,
	                         "%s: remote %s (%s) asks for credentials and none are set for "
	                         "it: set %s and %s (or SLUICE_GIT_USER and SLUICE_GIT_PASSWORD), "
	                         "or remote.%s." GIT_CRED_KEY " (docs/remotes.md)",
	                         what, name, url, uv, pv, name);
}

/* ---- the chunk store over HTTP ------------------------------------------ */

typedef struct {
	const cslot *c;
	sluice_chunk_op op;
} xitem;

typedef struct {
	CURL *h;
	int busy;    /* a request is in flight */
	int waiting; /* waiting to retry at not_before */
	double not_before;
	size_t item;
	unsigned attempt;
	sluice_chunk_op op;
	sluice_buf body; /* PUT: the chunk; GET: what arrived */
	size_t sent;
	int too_long;
	char url[2300];
	char err[CURL_ERROR_SIZE];
} xslot;

typedef struct {
	sluice_repo *repo;
	const cset *set;
	const char *base; /* without a trailing '/' */
	xitem *items;
	size_t n, next, done;
	unsigned conc, retries;
	xslot *slots;
	CURLM *multi;
	struct curl_slist *hdrs;
	const char *what;       /* progress label */
	const char *remote;     /* its name, for messages */
	const chunk_cred *cred; /* credentials for every request; none when all NULL */
	uint64_t bytes_total, bytes_done;
	/* what happened */
	uint64_t requests, sent, received, bytes_sent, bytes_received, present;
	sluice_buf confirmed; /* ids the store answered for: the known record's new lines */
} xfer;

static size_t on_write(char *p, size_t size, size_t nmemb, void *data)
{
	xslot *s = data;
	size_t n = size * nmemb;
	long status = 0;

	/* Only a 200's body can be the chunk; an error page is not kept, whatever its size. */
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return n;
	/* Never hold more than the chunk's length (plus one byte to see it is too long). */
	if (s->body.len + n > s->body.cap) {
		s->too_long = 1;
		return 0;
	}
	memcpy(s->body.ptr + s->body.len, p, n);
	s->body.len += n;
	return n;
}

/* An answer's body to anything but a GET (an error page, say) is not wanted. */
static size_t on_discard(char *p, size_t size, size_t nmemb, void *data)
{
	(void)p;
	(void)data;
	return size * nmemb;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *data)
{
	xslot *s = data;
	size_t n = size * nmemb, left = s->body.len - s->sent;

	if (n > left)
		n = left;
	memcpy(p, s->body.ptr + s->sent, n);
	s->sent += n;
	return n;
}

static int start(xfer *x, xslot *s)
{
	const cslot *c = x->items[s->item].c;
	char hex[SLUICE_B2_HEX];
	CURL *h = s->h;

	sluice__hex(hex, c->id, SLUICE_B2_LEN);
	snprintf(s->url, sizeof(s->url), "%s/chunks/%.2s/%s", x->base, hex, hex);
	curl_easy_reset(h);
	s->err[0] = '\0';
	s->too_long = 0;
	s->sent = 0;
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->err);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A stalled transfer (under 1 byte/s for a minute) fails and is retried. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(h, CURLOPT_PRIVATE, s);
	/*
	 * Credentials go to this URL only: redirects are not followed, so no
	 * other host ever sees them.
	 */
	if (x->cred && x->cred->token) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, x->cred->token);
	} else if (x->cred && x->cred->user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, x->cred->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, x->cred->password);
	}
	if (s->op == SLUICE_CHUNK_GET) {
		s->body.len = 0;
		if (sluice_buf__grow(x->repo->ctx, &s->body, (size_t)c->len + 1) < 0)
			return SLUICE_ENOMEM;
		/* grow may leave more room: cap what on_write accepts at len + 1. */
		s->body.cap = (size_t)c->len + 1;
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	} else if (s->op == SLUICE_CHUNK_HEAD) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_discard);
	} else {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_discard);
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, s);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->body.len);
	}
	if (curl_multi_add_handle(x->multi, h) != CURLM_OK)
		return sluice_ctx__error(x->repo->ctx, SLUICE_EIO, "cannot start a request for %s",
		                         s->url);
	s->busy = 1;
	x->requests++;
	return SLUICE_OK;
}

/* Begin item i in slot s: a PUT reads the chunk from the local store first. */
static int begin(xfer *x, xslot *s, size_t i)
{
	const cslot *c = x->items[i].c;
	int error;

	s->item = i;
	s->attempt = 0;
	s->op = x->items[i].op;
	if (s->op == SLUICE_CHUNK_PUT) {
		sluice_chunkstore *cs;
		/* get verifies the bytes against the id: nothing bad leaves either. */
		if ((error = sluice_repo__chunks(x->repo, &cs)) < 0 ||
		    (error = sluice_chunkstore__get(cs, c->id, &s->body)) < 0)
			return sluice_ctx__wrap(x->repo->ctx, error, "%s", cset_why(x->set, c));
	}
	return start(x, s);
}

/* A finished GET: the verified chunk goes into the (uncommitted) pack. */
static int got(xfer *x, xslot *s)
{
	const cslot *c = x->items[s->item].c;
	sluice_chunkstore *cs;
	int error;

	if ((error = sluice_repo__chunks(x->repo, &cs)) < 0 ||
	    (error = sluice_chunkstore__put(cs, c->id, s->body.ptr, s->body.len, NULL)) < 0)
		return error;
	x->received++;
	return sluice_buf__put(x->repo->ctx, &x->confirmed, c->id, SLUICE_B2_LEN);
}

static int retryable_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/*
 * The store refused the request's credentials (401) or what they allow
 * (403): not retried, and the message names the remote, the URL and where
 * the credentials came from, never what they are.
 */
static int denied(xfer *x, xslot *s, long status)
{
	const char *op = s->op == SLUICE_CHUNK_GET   ? "GET"
	                 : s->op == SLUICE_CHUNK_PUT ? "PUT"
	                                             : "HEAD";
	char tv[300];

	if (x->cred && x->cred->source[0])
		return sluice_ctx__error(x->repo->ctx, SLUICE_EDENIED,
		                         "the chunk store of remote %s answered %ld (%s) to %s of "
		                         "%s with the credentials from %s",
		                         x->remote, status,
		                         status == 401 ? "credentials refused" : "forbidden", op,
		                         s->url, x->cred->source);
	cred_env_name(tv, sizeof(tv), "CHUNKS", "TOKEN", x->remote);
	return sluice_ctx__error(x->repo->ctx, SLUICE_EDENIED,
	                         "the chunk store of remote %s answered %ld (%s) to %s of %s, "
	                         "and no credentials are set for it: set %s (or "
	                         "SLUICE_CHUNKS_TOKEN), a user and password, or "
	                         "remote.%s." CHUNKS_CRED_KEY " (docs/remotes.md)",
	                         x->remote, status,
	                         status == 401 ? "authentication required" : "forbidden", op,
	                         s->url, tv, x->remote);
}

/* One request ended: judge it; 0 done, 1 retry or next step scheduled, <0 fatal. */
static int finish(xfer *x, xslot *s, CURLcode rc)
{
	sluice_ctx *ctx = x->repo->ctx;
	const cslot *c = x->items[s->item].c;
	long status = 0;
	curl_off_t hlen = -1, up = 0, down = 0;
	int retry = 0, error;

	curl_multi_remove_handle(x->multi, s->h);
	s->busy = 0;
	curl_easy_getinfo(s->h, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(s->h, CURLINFO_SIZE_DOWNLOAD_T, &down);
	x->bytes_sent += (uint64_t)(up > 0 ? up : 0);
	x->bytes_received += (uint64_t)(down > 0 ? down : 0);
	if (s->too_long) {
		char hex[SLUICE_B2_HEX];
		sluice__hex(hex, c->id, SLUICE_B2_LEN);
		return sluice_ctx__error(
		        ctx, SLUICE_ECORRUPT,
		        "chunk %s (needed by %s) from the chunk store is corrupt: "
		        "more than its %llu bytes arrived (%s); nothing was stored",
		        hex, cset_why(x->set, c), (unsigned long long)c->len, s->url);
	}
	if (rc != CURLE_OK) {
		error = sluice_ctx__error(ctx, SLUICE_EIO, "chunk store request %s failed: %s",
		                          s->url, s->err[0] ? s->err : curl_easy_strerror(rc));
		retry = retryable_curl(rc);
	} else {
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(s->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &hlen);
		if (status == 401 || status == 403)
			return denied(x, s, status);
		error = sluice_remote__judge(ctx, s->op, status, c->id, c->len, s->body.ptr,
		                             s->op == SLUICE_CHUNK_GET ? s->body.len : 0,
		                             (int64_t)hlen, s->url, cset_why(x->set, c), &retry);
	}
	if (error == 0) {
		if (s->op == SLUICE_CHUNK_GET)
			return got(x, s);
		if (s->op == SLUICE_CHUNK_PUT) {
			x->sent++;
			return sluice_buf__put(ctx, &x->confirmed, c->id, SLUICE_B2_LEN);
		}
		x->present++; /* HEAD: the store has it */
		return sluice_buf__put(ctx, &x->confirmed, c->id, SLUICE_B2_LEN);
	}
	if (s->op == SLUICE_CHUNK_HEAD && error == SLUICE_ENOTFOUND) {
		/* The store lacks it: send it, in this slot, now. */
		sluice_ctx_clear_error(ctx);
		x->items[s->item].op = SLUICE_CHUNK_PUT;
		if ((error = begin(x, s, s->item)) < 0)
			return error;
		return 1;
	}
	if (retry && s->attempt < x->retries) {
		/* Exponential backoff with jitter: 0.25 s, 0.5 s, 1 s, ... at most 8 s. */
		s->not_before = sluice__monotonic_s() + sluice__backoff_s(0.25, s->attempt, 8);
		s->attempt++;
		s->waiting = 1;
		sluice_ctx_clear_error(ctx);
		return 1;
	}
	if (retry)
		return sluice_ctx__wrap(ctx, error, "after %u attempts", s->attempt + 1);
	return error;
}

static void progress(xfer *x)
{
	if (x->repo->progress)
		x->repo->progress(x->repo->progress_data, x->what, x->bytes_done, x->bytes_total);
}

/* Run every item with at most conc requests in flight; stops at the first failure. */
static int xfer_run(xfer *x)
{
	sluice_ctx *ctx = x->repo->ctx;
	int error = SLUICE_OK, running;
	size_t k;
	double last_progress = 0;

	if (x->n == 0)
		return SLUICE_OK;
	if (!(x->slots = sluice__calloc(ctx, x->conc, sizeof(*x->slots))))
		return SLUICE_ENOMEM;
	/* A PUT of a chunk needs no 100-continue round trip. */
	x->multi = curl_multi_init();
	x->hdrs = curl_slist_append(NULL, "Expect:");
	for (k = 0; k < x->conc; k++)
		x->slots[k].h = curl_easy_init();
	for (k = 0; k < x->conc && x->multi && x->hdrs; k++)
		if (!x->slots[k].h)
			break;
	if (!x->multi || !x->hdrs || k < x->conc) {
		error = sluice_ctx__error(ctx, *sluice_curl__why() ? SLUICE_ERROR : SLUICE_ENOMEM,
		                          "cannot start libcurl%s%s",
		                          *sluice_curl__why() ? ": " : "", sluice_curl__why());
		goto done;
	}
	for (k = 0; k < x->n; k++)
		x->bytes_total += x->items[k].c->len;
	while (x->done < x->n) {
		CURLMsg *msg;
		int left, busy = 0, freed = 0;
		double t = sluice__monotonic_s(), wake = 1.0;

		for (k = 0; k < x->conc; k++) {
			xslot *s = &x->slots[k];
			if (s->waiting && t >= s->not_before) {
				s->waiting = 0;
				if ((error = start(x, s)) < 0)
					goto done;
			} else if (!s->busy && !s->waiting && x->next < x->n) {
				if ((error = begin(x, s, x->next++)) < 0)
					goto done;
			}
			if (s->waiting && s->not_before - t < wake)
				wake = s->not_before - t;
			busy |= s->busy;
		}
		if (busy) {
			if (curl_multi_perform(x->multi, &running) != CURLM_OK) {
				error = sluice_ctx__error(ctx, SLUICE_EIO, "libcurl failed");
				goto done;
			}
		}
		while ((msg = curl_multi_info_read(x->multi, &left))) {
			xslot *s = NULL;
			int r;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			r = finish(x, s, msg->data.result);
			if (r < 0) {
				error = r;
				goto done;
			}
			if (r == 0) {
				x->done++;
				x->bytes_done += x->items[s->item].c->len;
			}
			freed = 1;
		}
		if (x->repo->progress && (t - last_progress > 0.2 || x->done == x->n)) {
			last_progress = t;
			progress(x);
		}
		/* A slot came free: fill it now, not after the poll's timeout. */
		if (x->done < x->n && !freed)
			curl_multi_poll(x->multi, NULL, 0, (int)(wake * 1000) + 1, NULL);
	}
done:
	for (k = 0; k < x->conc; k++) {
		if (x->slots[k].busy)
			curl_multi_remove_handle(x->multi, x->slots[k].h);
		curl_easy_cleanup(x->slots[k].h);
		sluice_buf__dispose(&x->slots[k].body);
	}
	free(x->slots);
	x->slots = NULL;
	curl_multi_cleanup(x->multi);
	x->multi = NULL;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	return error;
}

static int xfer_init(xfer *x, sluice_repo *repo, const cset *set, const char *base,
                     const sluice_remote_opts *opts, const char *what, const char *remote,
                     const chunk_cred *cred)
{
	size_t len = strlen(base);

	memset(x, 0, sizeof(*x));
	x->repo = repo;
	x->remote = remote;
	x->cred = cred;
	x->set = set;
	x->what = what;
	x->conc = opts && opts->concurrency ? opts->concurrency : 8;
	if (x->conc > 64)
		x->conc = 64;
	x->retries = !opts || opts->retries == 0 ? 4
	             : opts->retries < 0         ? 0
	                                         : (unsigned)opts->retries;
	while (len > 0 && base[len - 1] == '/')
		len--;
	if (!(x->base = strndup(base, len)))
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory");
	if (set->n && !(x->items = sluice__calloc(repo->ctx, set->n, sizeof(*x->items))))
		return SLUICE_ENOMEM;
	return SLUICE_OK;
}

static void xfer_dispose(xfer *x)
{
	sluice_buf__dispose(&x->confirmed);
	free((char *)x->base);
	free(x->items);
	x->base = NULL;
	x->items = NULL;
}

/* ---- the record of chunks a store is known to hold ------------------------ */

/*
 * sluice/remotes/<32 hex of BLAKE2b-256(store URL)>.known: the ids (32
 * bytes each, appended) of chunks this repository saw the store accept or
 * serve. A cache: losing it costs chunks sent again, never correctness; a
 * store that lost objects is repaired with push --recheck, which ignores it.
 */
static void known_path(sluice_repo *repo, char *out, size_t size, const char *store)
{
	unsigned char h[SLUICE_B2_LEN];
	char hex[SLUICE_B2_HEX];

	sluice__b2(h, store, strlen(store));
	sluice__hex(hex, h, SLUICE_B2_LEN);
	snprintf(out, size, "%s/remotes/%.32s.known", repo->sdir, hex);
}

/* Add the record's ids to set (a missing record is empty; a torn last id is ignored). */
static int known_load(sluice_repo *repo, cset *set, const char *store)
{
	char path[PATH_MAX + 80];
	unsigned char *buf = NULL;
	size_t len = 0;
	int error;

	known_path(repo, path, sizeof(path), store);
	if (access(path, F_OK) != 0)
		return SLUICE_OK;
	if ((error = sluice_io__read_file(repo->ctx, &buf, &len, path, (size_t)1 << 32)) < 0)
		return error;
	if (!set->why)
		set->why = json_array();
	for (size_t i = 0; i + SLUICE_B2_LEN <= len && error >= 0; i += SLUICE_B2_LEN)
		error = cset_add(repo->ctx, set, buf + i, 0, 0);
	free(buf);
	return error < 0 ? error : SLUICE_OK;
}

/* Append what the store confirmed; failures are ignored (the record is a cache). */
static void known_save(sluice_repo *repo, const char *store, const sluice_buf *ids)
{
	char path[PATH_MAX + 80], dir[PATH_MAX + 20];
	int fd;

	if (!ids->len)
		return;
	snprintf(dir, sizeof(dir), "%s/remotes", repo->sdir);
	known_path(repo, path, sizeof(path), store);
	if (sluice_io__mkdirs(repo->ctx, dir, 0755) < 0 ||
	    (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		sluice_ctx_clear_error(repo->ctx);
		return;
	}
	/* One write of whole ids: O_APPEND keeps concurrent writers' records apart. */
	if (sluice_io__write_all(repo->ctx, fd, ids->ptr, ids->len, path) < 0)
		sluice_ctx_clear_error(repo->ctx);
	close(fd);
}

/* ---- configuration ------------------------------------------------------ */

/* The chunk store URL of remote name, new string in *out (NULL when none). */
static int chunks_url(sluice_repo *repo, const char *name, char **out)
{
	char key[300];

	snprintf(key, sizeof(key), "remote.%s." CHUNKS_KEY, name);
	return sluice_config__get_string(repo, out, key, NULL);
}

/*
 * Remote name's git URL as a new string. The remote is read from the
 * config with plain lookups, and opened without a name: libgit2 1.5's
 * named-remote and remote-list calls match config entries against
 * regular expressions, and its pcre2 matcher leaks on every entry that
 * does not match (git_regexp_match returns before freeing its match data).
 */
static int remote_url(sluice_repo *repo, const char *name, char **out)
{
	char key[300];
	int valid = 0, error;

	*out = NULL;
	if (git_remote_name_is_valid(&valid, name) < 0 || !valid || strlen(name) > 200)
		valid = 0;
	snprintf(key, sizeof(key), "remote.%s.url", name);
	if (valid && (error = sluice_config__get_string(repo, out, key, NULL)) < 0)
		return error;
	if (!*out)
		return sluice_ctx__error(
		        repo->ctx, SLUICE_ENOTFOUND,
		        "no remote '%s' (sluice remote list shows them; add one with "
		        "sluice remote add %s URL --chunks URL)",
		        name, name);
	return SLUICE_OK;
}

/* A git_remote for url in repo, with no name, no refspecs and no url.*.insteadOf rewriting. */
static int open_url(sluice_ctx *ctx, git_repository *g, git_remote **out, const char *url)
{
	git_remote_create_options o;
	int error;

	git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	o.repository = g;
	o.flags = GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC | GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	if ((error = git_remote_create_with_opts(out, url, &o)) < 0)
		return sluice_ctx__giterror(ctx, error, "cannot use remote URL %s", url);
	return SLUICE_OK;
}

/* Every variable of [remote "name"], as git spells their names (new array). */
static int remote_keys(sluice_repo *repo, const char *name, json_t **out)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	json_t *keys = json_array();
	size_t plen = strlen(name) + 8;
	int error;

	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		goto done;
	if ((error = git_config_iterator_new(&it, cfg)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read the config");
		goto done;
	}
	while ((error = git_config_next(&e, it)) == 0)
		if (!strncmp(e->name, "remote.", 7) && !strncmp(e->name + 7, name, plen - 8) &&
		    e->name[plen - 1] == '.' && !strchr(e->name + plen, '.') &&
		    !sluice__jarray_has(keys, e->name))
			json_array_append_new(keys, json_string(e->name));
	error = error == GIT_ITEROVER
	                ? SLUICE_OK
	                : sluice_ctx__giterror(repo->ctx, error, "cannot read the config");
	if (error == 0) {
		*out = keys;
		keys = NULL;
	}
done:
	json_decref(keys);
	git_config_iterator_free(it);
	git_config_free(cfg);
	return error;
}

/* Delete every variable of [remote "name"]. */
static int remote_delete(sluice_repo *repo, const char *name)
{
	git_config *cfg = NULL;
	json_t *keys = NULL, *k;
	size_t i;
	int error;

	if ((error = remote_keys(repo, name, &keys)) < 0 ||
	    (error = sluice_config__open_local(repo, &cfg)) < 0)
		goto done;
	json_array_foreach(keys, i, k)
	{
		/* ".*" matches every value, so no entry goes down the leaking no-match path. */
		if ((error = git_config_delete_multivar(cfg, json_string_value(k), ".*")) < 0 &&
		    error != GIT_ENOTFOUND) {
			error = sluice_ctx__giterror(repo->ctx, error, "cannot remove %s",
			                             json_string_value(k));
			goto done;
		}
		error = SLUICE_OK;
	}
done:
	json_decref(keys);
	git_config_free(cfg);
	return error;
}

int sluice_remote_add(sluice_repo *repo, const char *name, const char *url, const char *curl,
                      char **report)
{
	git_config *cfg = NULL;
	char key[300], abs[PATH_MAX], *old = NULL;
	struct stat st;
	int valid = 0, error;

	if (!name || git_remote_name_is_valid(&valid, name) < 0 || !valid || strlen(name) > 200)
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
		                         "'%s' is not a valid remote name (letters, digits, '-', "
		                         "'_' and '.', as git allows)",
		                         name ? name : "");
	if (!url || !*url || strchr(url, '\n'))
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID, "remote %s: no URL given",
		                         name);
	if (curl && (error = sluice_remote__check_store_url(repo->ctx, curl)) < 0)
		return error;
	if (is_http(url)) {
		const char *host = strstr(url, "://") + 3, *end = strchr(host, '/');
		if (memchr(host, '@', end ? (size_t)(end - host) : strlen(host)))
			return sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
			                         "remote %s: the URL holds user information; "
			                         "credentials do not belong in the repository's "
			                         "config (docs/remotes.md: SLUICE_GIT_USER)",
			                         name);
	}
	snprintf(key, sizeof(key), "remote.%s.url", name);
	if ((error = sluice_config__get_string(repo, &old, key, NULL)) < 0)
		return error;
	valid = old != NULL;
	free(old);
	if (valid)
		return sluice_ctx__error(repo->ctx, SLUICE_EEXISTS,
		                         "remote %s exists (sluice remote remove %s first)", name,
		                         name);
	/*
	 * A path is kept absolute: sluice -C changes the repository, not the
	 * directory a relative path would be resolved from.
	 */
	if (!strstr(url, "://") && stat(url, &st) == 0 && S_ISDIR(st.st_mode) && realpath(url, abs))
		url = abs;
	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		return error;
	/* No fetch refspec: sluice's refs are not git branches to track. */
	if ((error = git_config_set_string(cfg, key, url)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot set %s", key);
		goto done;
	}
	if (curl) {
		snprintf(key, sizeof(key), "remote.%s." CHUNKS_KEY, name);
		if ((error = git_config_set_string(cfg, key, curl)) < 0) {
			error = sluice_ctx__giterror(repo->ctx, error, "cannot set %s", key);
			remote_delete(repo, name);
			goto done;
		}
	}
	error = sluice_repo__report(
	        repo->ctx, report,
	        json_pack("{s:s,s:s,s:s?}", "name", name, "url", url, "chunks", curl));
done:
	git_config_free(cfg);
	return error;
}

int sluice_remote_remove(sluice_repo *repo, const char *name, char **report)
{
	char *url = NULL;
	int error;

	if ((error = remote_url(repo, name, &url)) < 0)
		return error;
	free(url);
	/* Every variable of [remote "NAME"], sluicechunks included. */
	if ((error = remote_delete(repo, name)) < 0)
		return error;
	return sluice_repo__report(repo->ctx, report, json_pack("{s:s}", "removed", name));
}

int sluice_remote_list(sluice_repo *repo, char **report)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	json_t *list = json_array();
	int error;

	if ((error = sluice_config__open_local(repo, &cfg)) < 0)
		goto done;
	if ((error = git_config_iterator_new(&it, cfg)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot list remotes");
		goto done;
	}
	while ((error = git_config_next(&e, it)) == 0) {
		size_t n = strlen(e->name);
		char name[256], *c = NULL;
		/* remote.NAME.url, NAME possibly holding dots: between the first and last dot. */
		if (strncmp(e->name, "remote.", 7) || n < 12 || strcmp(e->name + n - 4, ".url") ||
		    n - 11 >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 11), e->name + 7);
		if (chunks_url(repo, name, &c) < 0) {
			sluice_ctx_clear_error(repo->ctx);
			c = NULL;
		}
		json_array_append_new(list, json_pack("{s:s,s:s,s:s?}", "name", name, "url",
		                                      e->value ? e->value : "", "chunks", c));
		free(c);
	}
	if (error != GIT_ITEROVER) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot list remotes");
		goto done;
	}
	git_config_iterator_free(it);
	it = NULL;
	git_config_free(cfg);
	cfg = NULL;
	return sluice_repo__report(repo->ctx, report, json_pack("{s:o}", "remotes", list));
done:
	json_decref(list);
	git_config_iterator_free(it);
	git_config_free(cfg);
	return error;
}

/* ---- objects between repositories on this machine (path remotes) ------- */

/*
 * git's pack protocol needs every object the history reaches, and sluice
 * purge deletes blobs on purpose: libgit2's pack builder (insert_walk, as
 * its push and local fetch use) refuses such a history. For a remote on
 * this machine sluice walks the history itself and packs the objects the
 * other side lacks, leaving out the blobs that are gone.
 */

/* A git object id in a cset (whose ids are 32 bytes): zero-padded. */
static int oset_add(sluice_ctx *ctx, cset *s, const git_oid *id)
{
	unsigned char k[SLUICE_B2_LEN] = {0};

	memcpy(k, id->id, GIT_OID_RAWSZ);
	return cset_add(ctx, s, k, 0, 0);
}

/* The url of a remote on this machine as a path (a new string), or NULL for any other. */
static char *local_path(const char *url)
{
	if (!strncmp(url, "file://", 7))
		return strdup(url + 7);
	if (strstr(url, "://") || !*url)
		return NULL;
	/* scp-like "host:path" is ssh, which sluice does not speak; a path may hold ':' too. */
	return strdup(url);
}

typedef struct {
	sluice_ctx *ctx;
	git_repository *src;
	git_odb *srcodb, *dst;
	git_packbuilder *pb;
	cset seen;
	json_t *allowed; /* blob hex -> true; NULL: leave out every missing blob */
	size_t objects, left_out;
	const char *what; /* "remote NAME", for messages */
} sender;

static int send_tree(sender *sd, const git_oid *id, const char *path);

/*
 * Queue one object the destination lacks (with no pack builder: only check
 * it is there); *queued says whether to go into it.
 */
static int send_one(sender *sd, const git_oid *id, git_object_t type, const char *path, int *queued)
{
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	*queued = 0;
	if ((error = oset_add(sd->ctx, &sd->seen, id)) <= 0)
		return error;
	if (git_odb_exists(sd->dst, id))
		return SLUICE_OK;
	git_oid_tostr(hex, sizeof(hex), id);
	if (!git_odb_exists(sd->srcodb, id)) {
		if (type == GIT_OBJECT_BLOB &&
		    (!sd->allowed || json_object_get(sd->allowed, hex))) {
			sd->left_out++;
			return SLUICE_OK;
		}
		if (!sd->pb)
			return sluice_ctx__error(sd->ctx, SLUICE_ECORRUPT,
			                         "%s %s (%s) did not arrive from %s and no purge "
			                         "tombstone of its journal names it; nothing was "
			                         "changed",
			                         git_object_type2string(type), hex, path, sd->what);
		return sluice_ctx__error(sd->ctx, SLUICE_ECORRUPT,
		                         "%s %s (%s) is missing here and no purge tombstone names "
		                         "it; nothing was sent to %s",
		                         git_object_type2string(type), hex, path, sd->what);
	}
	if (sd->pb && (error = git_packbuilder_insert(sd->pb, id, NULL)) < 0)
		return sluice_ctx__giterror(sd->ctx, error, "cannot pack %s %s",
		                            git_object_type2string(type), hex);
	sd->objects++;
	*queued = 1;
	return SLUICE_OK;
}

static int send_tree(sender *sd, const git_oid *id, const char *path)
{
	git_tree *t = NULL;
	int queued, error;

	if ((error = send_one(sd, id, GIT_OBJECT_TREE, path, &queued)) < 0 || !queued)
		return error;
	if ((error = git_tree_lookup(&t, sd->src, id)) < 0)
		return sluice_ctx__giterror(sd->ctx, error, "cannot read tree %s", path);
	for (size_t i = 0, n = git_tree_entrycount(t); i < n && error == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		char sub[4200];
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "/" : "",
		         git_tree_entry_name(e));
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			error = send_tree(sd, git_tree_entry_id(e), sub);
		else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
			error = send_one(sd, git_tree_entry_id(e), GIT_OBJECT_BLOB, sub, &queued);
	}
	git_tree_free(t);
	return error;
}

static int pack_append(void *buf, size_t size, void *payload)
{
	git_odb_writepack *wp = ((void **)payload)[0];
	git_indexer_progress *stats = ((void **)payload)[1];

	return wp->append(wp, buf, size, stats);
}

/*
 * Copy into dst what the history of tip (less what hide reaches, when src
 * has hide) holds and dst lacks, as one pack that dst's indexer checks and
 * stores (git_odb_write_pack: all or nothing). A blob missing from src is
 * left out when allowed names it (or allowed is NULL: the receiver checks);
 * any other missing object is an error and nothing is written.
 */
static int send_history(sluice_ctx *ctx, git_repository *src, git_odb *dst, const git_oid *tip,
                        const git_oid *hide, json_t *allowed, const char *what, size_t *left_out,
                        int write)
{
	sender sd = {ctx, src, NULL, dst, NULL, {0}, allowed, 0, 0, what};
	git_revwalk *w = NULL;
	git_odb_writepack *wp = NULL;
	git_indexer_progress stats = {0};
	void *payload[2] = {NULL, &stats};
	git_oid id;
	int error, queued;

	if ((error = git_repository_odb(&sd.srcodb, src)) < 0 ||
	    (write && (error = git_packbuilder_new(&sd.pb, src)) < 0) ||
	    (error = git_revwalk_new(&w, src)) < 0 || (error = git_revwalk_push(w, tip)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot walk the history for %s", what);
		goto done;
	}
	if (sd.pb)
		git_packbuilder_set_threads(sd.pb, 1);
	if (hide && git_odb_exists(sd.srcodb, hide) && (error = git_revwalk_hide(w, hide)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot walk the history for %s", what);
		goto done;
	}
	while ((error = git_revwalk_next(&id, w)) == 0) {
		git_commit *c = NULL;
		char hex[GIT_OID_HEXSZ + 1];
		/* A commit the destination has comes with its history (git's connectivity). */
		if ((error = send_one(&sd, &id, GIT_OBJECT_COMMIT, "commit", &queued)) < 0)
			goto done;
		if (!queued)
			continue;
		git_oid_tostr(hex, sizeof(hex), &id);
		if ((error = git_commit_lookup(&c, src, &id)) < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot read commit %s", hex);
			goto done;
		}
		error = send_tree(&sd, git_commit_tree_id(c), "");
		git_commit_free(c);
		if (error < 0)
			goto done;
	}
	if (error != GIT_ITEROVER) {
		error = sluice_ctx__giterror(ctx, error, "cannot walk the history for %s", what);
		goto done;
	}
	error = SLUICE_OK;
	if (sd.pb && sd.objects) {
		payload[0] = NULL;
		if ((error = git_odb_write_pack(&wp, dst, NULL, NULL)) < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot write objects to %s",
			                             what);
			goto done;
		}
		payload[0] = wp;
		if ((error = git_packbuilder_foreach(sd.pb, pack_append, payload)) < 0 ||
		    (error = wp->commit(wp, &stats)) < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot write objects to %s",
			                             what);
			goto done;
		}
	}
	if (left_out)
		*left_out = sd.left_out;
done:
	if (wp)
		wp->free(wp);
	git_revwalk_free(w);
	git_packbuilder_free(sd.pb);
	git_odb_free(sd.srcodb);
	cset_dispose(&sd.seen);
	return error;
}

/* The git blob ids (hex -> true) that the purged set at entry says are gone. */
static json_t *purged_blob_ids(sluice_repo *repo, const git_oid *entry)
{
	json_t *p = purged_at(repo, entry), *out = json_object(), *e;
	const char *k;

	json_object_foreach(p, k, e) if (json_is_string(json_object_get(e, "blob")))
	        json_object_set_new(out, json_string_value(json_object_get(e, "blob")),
	                            json_true());
	json_decref(p);
	return out;
}

/*
 * Every object that the new history (tip, less what local reaches) reaches
 * is readable through repo, except blobs a tombstone of tip's journal
 * names (allowed): what arrived is complete, whatever the transport left
 * out. Objects the repository held before the pull (its own objects
 * directory, without the quarantine) are its own and complete.
 */
static int check_complete(sluice_repo *repo, const char *name, const git_oid *tip,
                          const git_oid *local, json_t *allowed)
{
	git_odb *mine = NULL;
	char path[PATH_MAX + 16], what[300];
	int error;

	snprintf(path, sizeof(path), "%s/objects", repo->path);
	snprintf(what, sizeof(what), "remote %s", name);
	if ((error = git_odb_open(&mine, path)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot open %s", path);
	error = send_history(repo->ctx, repo->git, mine, tip, local, allowed, what, NULL, 0);
	git_odb_free(mine);
	return error;
}

/* ---- the quarantine ----------------------------------------------------- */

typedef struct {
	char dir[PATH_MAX];
	git_repository *git;
	git_oid head; /* the remote's journal head */
	int has_head;
} quarantine;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void q_dispose(quarantine *q)
{
	git_repository_free(q->git);
	q->git = NULL;
	if (q->dir[0])
		nftw(q->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	q->dir[0] = '\0';
}

/*
 * Remove the quarantines of pulls that died (sluice/incoming-PID-XXXXXX
 * whose process is gone): nothing refers to them.
 */
static void q_sweep(sluice_repo *repo)
{
	DIR *d = opendir(repo->sdir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end, path[PATH_MAX + 300];
		long pid;
		if (strncmp(de->d_name, "incoming-", 9))
			continue;
		pid = strtol(de->d_name + 9, &end, 10);
		if (end == de->d_name + 9 || *end != '-' || pid <= 0 ||
		    (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		snprintf(path, sizeof(path), "%s/%s", repo->sdir, de->d_name);
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

/* Drop the quarantine from the repository's object database (it lived only in memory). */
static int reopen_git(sluice_repo *repo)
{
	int error;

	git_repository_free(repo->git);
	repo->git = NULL;
	if ((error = git_repository_open_bare(&repo->git, repo->path)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot open git repository %s",
		                            repo->path);
	return SLUICE_OK;
}

/*
 * Fetch from a remote on this machine into the quarantine: the objects of
 * its journal's history that neither the quarantine nor the repository
 * has, as one pack, blobs missing there left out (the pull checks them),
 * and refs/sluice/incoming at its journal head (none when it has none).
 */
static int fetch_path(sluice_ctx *ctx, quarantine *q, const char *path, const git_oid *local,
                      const char *url)
{
	git_repository *rg = NULL;
	git_odb *odb = NULL;
	git_reference *ref = NULL;
	git_oid head;
	char what[PATH_MAX + 16];
	int error;

	snprintf(what, sizeof(what), "%s", url);
	if ((error = git_repository_open_bare(&rg, path)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot fetch from %s", url);
		goto done;
	}
	error = git_reference_name_to_id(&head, rg, SLUICE_JOURNAL_REF);
	if (error == GIT_ENOTFOUND) {
		error = SLUICE_OK;
		goto done;
	}
	if (error < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot read %s of %s", SLUICE_JOURNAL_REF,
		                             url);
		goto done;
	}
	if ((error = git_repository_odb(&odb, q->git)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot open the quarantine");
		goto done;
	}
	if ((error = send_history(ctx, rg, odb, &head, local, NULL, what, NULL, 1)) < 0)
		goto done;
	if ((error = git_reference_create(&ref, q->git, "refs/sluice/incoming", &head, 1, NULL)) <
	    0)
		error = sluice_ctx__giterror(ctx, error, "cannot prepare the quarantine");
done:
	git_reference_free(ref);
	git_odb_free(odb);
	git_repository_free(rg);
	return error;
}

/*
 * Fetch the remote's journal (and everything it reaches that the
 * repository lacks) into a new quarantine, and make its objects readable
 * through repo->git. Nothing in the repository's files changes.
 */
static int q_fetch(sluice_repo *repo, quarantine *q, const char *url, const git_oid *local,
                   int has_local, const char *name, git_auth *ga)
{
	sluice_ctx *ctx = repo->ctx;
	git_fetch_options fo;
	git_remote *r = NULL;
	git_reference *ref = NULL;
	git_odb *odb = NULL;
	char *spec = "+refs/sluice/journal:refs/sluice/incoming", path[PATH_MAX + 40],
	     line[PATH_MAX + 20], *lpath;
	git_strarray specs = {&spec, 1};
	int error;

	memset(q, 0, sizeof(*q));
	q_sweep(repo);
	if (snprintf(q->dir, sizeof(q->dir), "%s/incoming-%ld-XXXXXX", repo->sdir,
	             (long)getpid()) >= (int)sizeof(q->dir))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", repo->sdir);
	if (!mkdtemp(q->dir)) {
		error = sluice_ctx__oserror(ctx, "cannot create %s", q->dir);
		q->dir[0] = '\0';
		return error;
	}
	if ((error = git_repository_init(&q->git, q->dir, 1)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot create a quarantine in %s",
		                             q->dir);
		goto done;
	}
	git_repository_free(q->git);
	q->git = NULL;
	/* The repository's objects are the quarantine's too: only new objects travel. */
	snprintf(path, sizeof(path), "%s/objects/info/alternates", q->dir);
	snprintf(line, sizeof(line), "%s/objects\n", repo->path);
	if ((error = sluice_io__write_file_atomic(ctx, path, line, strlen(line), 0644)) < 0)
		goto done;
	if ((error = git_repository_open_bare(&q->git, q->dir)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot open the quarantine %s", q->dir);
		goto done;
	}
	/* What we have, so negotiation sends only what we lack. */
	if (has_local && (error = git_reference_create(&ref, q->git, "refs/sluice/journal", local,
	                                               1, NULL)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot prepare the quarantine");
		goto done;
	}
	if ((lpath = local_path(url))) {
		/*
		 * On this machine: sluice's own transfer, which takes a history
		 * with purged blobs (the pull then checks each absence against
		 * the tombstones: check_complete).
		 */
		error = fetch_path(ctx, q, lpath, has_local ? local : NULL, url);
		free(lpath);
		if (error < 0)
			goto done;
		goto fetched;
	}
	if ((error = open_url(ctx, q->git, &r, url)) < 0)
		goto done;
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	fo.prune = GIT_FETCH_NO_PRUNE;
	fo.callbacks.credentials = on_git_cred;
	fo.callbacks.payload = ga;
	ga->asked = 0;
	if ((error = git_remote_fetch(r, &specs, &fo, NULL)) < 0) {
		snprintf(line, sizeof(line), "cannot fetch from %s", url);
		error = git_op_error(repo, error, ga, name, url, line);
		goto done;
	}
fetched:
	error = git_reference_name_to_id(&q->head, q->git, "refs/sluice/incoming");
	if (error == GIT_ENOTFOUND) {
		error = SLUICE_OK;
	} else if (error < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot read the fetched journal");
		goto done;
	} else {
		q->has_head = 1;
	}
	snprintf(path, sizeof(path), "%s/objects", q->dir);
	if ((error = git_repository_odb(&odb, repo->git)) < 0 ||
	    (error = git_odb_add_disk_alternate(odb, path)) < 0)
		error = sluice_ctx__giterror(ctx, error, "cannot read the quarantine");
done:
	git_odb_free(odb);
	git_reference_free(ref);
	git_remote_free(r);
	return error;
}

/* Write the quarantine's packs and loose objects into the repository's object database. */
static int q_adopt(sluice_repo *repo, quarantine *q)
{
	sluice_ctx *ctx = repo->ctx;
	git_odb *odb = NULL, *qodb = NULL;
	char path[PATH_MAX + 64];
	DIR *d = NULL;
	struct dirent *de;
	int error;

	/* Without alternates, the quarantine's own objects only. */
	snprintf(path, sizeof(path), "%s/objects/info/alternates", q->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/objects", q->dir);
	if ((error = git_repository_odb(&odb, repo->git)) < 0 ||
	    (error = git_odb_open(&qodb, path)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot open the object databases");
		goto done;
	}
	snprintf(path, sizeof(path), "%s/objects/pack", q->dir);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			size_t nl = strlen(de->d_name);
			git_odb_writepack *wp = NULL;
			git_indexer_progress stats = {0};
			unsigned char *buf = NULL;
			size_t len = 0;
			char p[PATH_MAX + 400];

			if (nl < 5 || strcmp(de->d_name + nl - 5, ".pack"))
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			/* A pack holds what a fetch brought: manifests, trees, commits. */
			if ((error = sluice_io__read_file(ctx, &buf, &len, p, (size_t)1 << 34)) < 0)
				goto done;
			if ((error = git_odb_write_pack(&wp, odb, NULL, NULL)) < 0 ||
			    (error = wp->append(wp, buf, len, &stats)) < 0 ||
			    (error = wp->commit(wp, &stats)) < 0)
				error = sluice_ctx__giterror(ctx, error, "cannot store %s",
				                             de->d_name);
			if (wp)
				wp->free(wp);
			free(buf);
			if (error < 0)
				goto done;
		}
		closedir(d);
		d = NULL;
	}
	/* Loose objects (a local fetch may write them): copy each through the odb. */
	snprintf(path, sizeof(path), "%s/objects", q->dir);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			DIR *sd;
			struct dirent *se;
			char sub[PATH_MAX + 400];

			if (strlen(de->d_name) != 2 || !isxdigit((unsigned char)de->d_name[0]) ||
			    !isxdigit((unsigned char)de->d_name[1]))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			if (!(sd = opendir(sub)))
				continue;
			while ((se = readdir(sd))) {
				char hex[GIT_OID_HEXSZ + 1];
				git_oid id, wid;
				git_odb_object *o = NULL;
				if (strlen(se->d_name) != GIT_OID_HEXSZ - 2)
					continue;
				snprintf(hex, sizeof(hex), "%s%s", de->d_name, se->d_name);
				if (git_oid_fromstr(&id, hex) < 0)
					continue;
				if ((error = git_odb_read(&o, qodb, &id)) < 0 ||
				    (error = git_odb_write(&wid, odb, git_odb_object_data(o),
				                           git_odb_object_size(o),
				                           git_odb_object_type(o))) < 0)
					error = sluice_ctx__giterror(ctx, error,
					                             "cannot store object %s", hex);
				git_odb_object_free(o);
				if (error < 0) {
					closedir(sd);
					goto done;
				}
			}
			closedir(sd);
		}
	}
	error = SLUICE_OK;
done:
	if (d)
		closedir(d);
	git_odb_free(qodb);
	git_odb_free(odb);
	return error;
}

/* ---- checking what arrives ---------------------------------------------- */

/*
 * Every new entry (oldest first in entries[n-1..0]) must be signed by a key
 * that the registry before it holds with the role its action needs, and
 * every version it brings in by a proposer, as sluice verify checks. A
 * journal with no entry before the new ones (a first pull) trusts its own
 * init entry's root keys, which the report lists.
 */
static int check_incoming(sluice_repo *repo, const char *name, const git_oid *entries, size_t n)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *registry = NULL;
	int error = SLUICE_OK;

	for (size_t k = n; k-- > 0;) {
		json_t *rec = NULL, *after = NULL;
		git_commit *c = NULL;
		const char *action, *role;
		char what[400];

		describe(repo, what, sizeof(what), &entries[k]);
		if ((error = git_commit_lookup(&c, repo->git, &entries[k])) < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot read journal entry");
			break;
		}
		if (!registry) {
			if (git_commit_parentcount(c) > 0)
				error = sluice_journal__keys_at(repo, &registry,
				                                git_commit_parent_id(c, 0));
			else
				error = sluice_journal__keys_at(repo, &registry, &entries[k]);
		}
		if (error < 0 || (error = sluice_journal__record(repo, &rec, &entries[k])) < 0 ||
		    (error = sluice_journal__keys_at(repo, &after, &entries[k])) < 0)
			goto next;
		action = sluice__jstr(json_object_get(rec, "action"));
		if (!(role = sluice_journal__role_for(action))) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT, "unknown action '%s'",
			                          action);
			goto next;
		}
		if ((error = sluice_repo__check_commit_sig_at(
		             repo, &entries[k], registry, *role ? role : NULL,
		             strcmp(action, "refuse") ? UINT64_MAX : 0, NULL)) < 0)
			goto next;
		if (git_commit_parentcount(c) == 2)
			error = sluice_repo__check_commit_sig(repo, git_commit_parent_id(c, 1),
			                                      registry, "proposer", NULL);
	next:
		if (error < 0)
			error = sluice_ctx__wrap(
			        ctx, error == SLUICE_ENOMEM ? error : SLUICE_EDENIED,
			        "journal entry %s from remote %s (nothing was changed)", what,
			        name);
		git_commit_free(c);
		json_decref(rec);
		json_decref(registry);
		registry = after;
		if (error < 0)
			break;
	}
	json_decref(registry);
	return error;
}

/* ---- push --------------------------------------------------------------- */

struct push_state {
	git_auth ga;      /* first: the credential callback's payload too */
	json_t *refs;     /* [{ref, old, new}] */
	json_t *rejected; /* [{ref, status}] */
};

static int on_push_ref(const char *refname, const char *status, void *data)
{
	struct push_state *ps = data;

	if (status)
		json_array_append_new(ps->rejected,
		                      json_pack("{s:s,s:s}", "ref", refname, "status", status));
	return 0;
}

/* "PREFIXREF:REF" as a new string (NULL when out of memory). */
static char *spec_for(const char *prefix, const char *src, const char *dst)
{
	size_t n = strlen(prefix) + strlen(src) + strlen(dst) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s:%s", prefix, src, dst);
	return s;
}

/* Connect and list the remote's refs: its journal head and channel mirrors. */
static int remote_heads(sluice_repo *repo, git_remote *r, const char *name, git_direction dir,
                        git_oid *journal, int *has_journal, json_t *channels, git_auth *ga)
{
	const git_remote_head **heads;
	git_remote_callbacks cb;
	char what[600];
	size_t n;
	int error;

	git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
	cb.credentials = on_git_cred;
	cb.payload = ga;
	ga->asked = 0;
	if ((error = git_remote_connect(r, dir, &cb, NULL, NULL)) < 0) {
		snprintf(what, sizeof(what), "cannot reach remote %s (%s)", name,
		         git_remote_url(r));
		return git_op_error(repo, error, ga, name, git_remote_url(r), what);
	}
	if ((error = git_remote_ls(&heads, &n, r)) < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot list remote %s", name);
	*has_journal = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(heads[i]->name, SLUICE_JOURNAL_REF)) {
			*journal = heads[i]->oid;
			*has_journal = 1;
		} else if (channels &&
		           !strncmp(heads[i]->name, CHANNEL_REFS, strlen(CHANNEL_REFS))) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &heads[i]->oid);
			json_object_set_new(channels, heads[i]->name, json_string(hex));
		}
	}
	return SLUICE_OK;
}

/* The local channel mirror refs: refname -> hex. */
static json_t *local_channels(sluice_repo *repo)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	json_t *o = json_object();

	if (git_reference_iterator_glob_new(&it, repo->git, CHANNEL_REFS "*") == 0) {
		while (git_reference_next(&ref, it) == 0) {
			char hex[GIT_OID_HEXSZ + 1];
			if (git_reference_target(ref)) {
				git_oid_tostr(hex, sizeof(hex), git_reference_target(ref));
				json_object_set_new(o, git_reference_name(ref), json_string(hex));
			}
			git_reference_free(ref);
		}
		git_reference_iterator_free(it);
	}
	return o;
}

/*
 * Push to a remote on this machine (a path or file:// URL) without git's
 * pack protocol: the objects the remote lacks go into its object database
 * as one pack (send_history, which leaves out purged blobs), then its
 * journal ref moves by compare-and-swap from the head push decided
 * against (git_reference_create_matching: refused when another push
 * moved it first), then the channel mirrors follow. When the remote is a
 * sluice repository, all of it happens under its journal writers' lock
 * (sluice/journal.flock), as its own actions and pulls take it.
 */
static int push_path(sluice_repo *repo, const char *name, const char *path, const git_oid *local,
                     const git_oid *remote, int has_remote, json_t *lchan, json_t *rchan,
                     json_t *allowed, size_t *left_out)
{
	sluice_ctx *ctx = repo->ctx;
	git_repository *rg = NULL;
	git_odb *odb = NULL;
	git_reference *ref = NULL;
	char lockpath[PATH_MAX + 64], refpath[PATH_MAX + 64], what[300], msg[300];
	struct stat st;
	const char *k;
	json_t *v;
	int lockfd = -1, error;

	snprintf(what, sizeof(what), "remote %s", name);
	snprintf(msg, sizeof(msg), "sluice push from %s", repo->path);
	if ((error = git_repository_open_bare(&rg, path)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot open remote %s (%s)", name, path);
		goto done;
	}
	snprintf(lockpath, sizeof(lockpath), "%s/sluice", path);
	if (stat(lockpath, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* The remote's journal writers' lock, as a local writer takes it. */
		if ((error = sluice_journal__lock_at(ctx, path, &lockfd)) < 0)
			goto done;
	}
	if ((error = git_repository_odb(&odb, rg)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot open remote %s's objects", name);
		goto done;
	}
	if ((error = send_history(ctx, repo->git, odb, local, has_remote ? remote : NULL, allowed,
	                          what, left_out, 1)) < 0)
		goto done;
	/* The point where another pusher may have won (the tests race one here). */
	snprintf(refpath, sizeof(refpath), "%s/%s", path, SLUICE_JOURNAL_REF);
	if (ctx->fault && ctx->fault(ctx->fault_data, SLUICE_FAULT_WRITE, refpath)) {
		error = sluice_ctx__error(ctx, SLUICE_EIO, "injected fault before writing %s",
		                          refpath);
		goto done;
	}
	if (has_remote)
		error = git_reference_create_matching(&ref, rg, SLUICE_JOURNAL_REF, local, 1,
		                                      remote, msg);
	else
		error = git_reference_create(&ref, rg, SLUICE_JOURNAL_REF, local, 0, msg);
	git_reference_free(ref);
	ref = NULL;
	if (error == GIT_EMODIFIED || error == GIT_EEXISTS || error == GIT_ELOCKED) {
		error = sluice_ctx__error(
		        ctx, SLUICE_ECONFLICT,
		        "remote %s's journal moved while this push ran: another push "
		        "moved it first (%s); its refs were not changed by this push "
		        "(the chunks and objects sent stay); run sluice pull %s, then "
		        "push again",
		        name,
		        error == GIT_ELOCKED ? "its ref was locked" : "compare-and-swap failed",
		        name);
		goto done;
	}
	if (error < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot update %s on remote %s",
		                             SLUICE_JOURNAL_REF, name);
		goto done;
	}
	/* The mirrors follow the journal; pull derives them from it anyway. */
	json_object_foreach(lchan, k, v)
	{
		git_oid id;
		if (json_equal(v, json_object_get(rchan, k)) ||
		    git_oid_fromstr(&id, json_string_value(v)) < 0)
			continue;
		if ((error = git_reference_create(&ref, rg, k, &id, 1, msg)) < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot update %s on remote %s", k,
			                             name);
			goto done;
		}
		git_reference_free(ref);
		ref = NULL;
	}
	json_object_foreach(rchan, k, v)
	{
		if (json_object_get(lchan, k))
			continue;
		if ((error = git_reference_remove(rg, k)) < 0 && error != GIT_ENOTFOUND) {
			error = sluice_ctx__giterror(ctx, error, "cannot delete %s on remote %s", k,
			                             name);
			goto done;
		}
	}
	error = SLUICE_OK;
done:
	sluice_journal__unlock(lockfd);
	git_reference_free(ref);
	git_odb_free(odb);
	git_repository_free(rg);
	return error;
}

int sluice_remote_push(sluice_repo *repo, const char *name, const sluice_remote_opts *opts,
                       char **report)
{
	sluice_ctx *ctx = repo->ctx;
	git_remote *r = NULL;
	git_oid local, remote, remote2;
	int has_local, has_remote = 0, has_remote2 = 0, error, up_to_date = 0;
	git_oid *fresh = NULL, *old = NULL;
	size_t nfresh = 0, nold = 0, nversions = 0;
	cset need = {0}, have = {0}, rec = {0};
	json_t *purged = NULL, *lchan = NULL, *rchan = json_object();
	chunk_cred cred = {0}, gcred = {0};
	struct push_state ps = {{&gcred, 0}, json_array(), json_array()};
	char *store = NULL, **specs = NULL, *url = NULL, *lpath = NULL;
	size_t nspecs = 0, left_out = 0;
	json_t *allowed = NULL;
	uint64_t needed = 0, known = 0, recorded = 0;
	unsigned gitreq = 0;
	xfer x;
	quarantine q = {0};

	memset(&x, 0, sizeof(x));
	if ((error = remote_url(repo, name, &url)) < 0 ||
	    (error = open_url(ctx, repo->git, &r, url)) < 0 ||
	    (error = chunks_url(repo, name, &store)) < 0 ||
	    (store && (error = cred_load(repo, name, 0, &cred)) < 0) ||
	    (is_http(url) && (error = cred_load(repo, name, 1, &gcred)) < 0) ||
	    (error = sluice_journal__head(repo, &local, &has_local)) < 0)
		goto done;
	if (!has_local) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                          "this repository has no journal: nothing to push");
		goto done;
	}
	gitreq++;
	if ((error = remote_heads(repo, r, name, GIT_DIRECTION_PUSH, &remote, &has_remote, rchan,
	                          &ps.ga)) < 0)
		goto done;
	git_remote_disconnect(r);
	if (has_remote && !git_oid_equal(&remote, &local)) {
		int reached = 0;
		/* The remote's head must be on our first-parent chain. */
		if ((error = chain(repo, &fresh, &nfresh, &reached, &local, &remote)) < 0)
			goto done;
		if (!reached) {
			/* Fetch its history (into a quarantine, dropped after) to say why. */
			const git_oid *theirs = &remote;
			free(fresh);
			fresh = NULL;
			gitreq++;
			if ((error = q_fetch(repo, &q, url, &local, 1, name, &ps.ga)) < 0)
				goto done;
			if (q.has_head)
				theirs = &q.head;
			if (git_graph_descendant_of(repo->git, theirs, &local) == 1) {
				size_t behind = 0;
				int rr;
				if (chain(repo, &old, &behind, &rr, theirs, &local) == 0)
					error = sluice_ctx__error(ctx, SLUICE_ECONFLICT,
					                          "remote %s is ahead: its journal "
					                          "has %zu entr%s this "
					                          "repository lacks; run sluice "
					                          "pull %s first. Nothing "
					                          "was sent",
					                          name, behind,
					                          behind == 1 ? "y" : "ies", name);
				else
					error = SLUICE_ECONFLICT;
			} else {
				error = diverged(repo, name, &local, theirs);
			}
			goto done;
		}
	} else if (!has_remote) {
		if ((error = chain(repo, &fresh, &nfresh, NULL, &local, NULL)) < 0)
			goto done;
	} else {
		up_to_date = 1;
	}
	/* What the chunk store lacks: the new versions' chunks minus those it has. */
	purged = purged_at(repo, &local);
	if (opts && opts->recheck) {
		free(fresh);
		if ((error = chain(repo, &fresh, &nfresh, NULL, &local, NULL)) < 0 ||
		    (error = collect_chunks(repo, &need, fresh, nfresh, purged, &nversions)) < 0)
			goto done;
	} else {
		if ((error = collect_chunks(repo, &need, fresh, nfresh, purged, &nversions)) < 0)
			goto done;
		if (has_remote) {
			if ((error = chain(repo, &old, &nold, NULL, &remote, NULL)) < 0 ||
			    (error = collect_chunks(repo, &have, old, nold, purged, NULL)) < 0)
				goto done;
		}
		if (store && (error = known_load(repo, &rec, store)) < 0)
			goto done;
	}
	if ((error = xfer_init(&x, repo, &need, store ? store : "", opts, "push: chunks", name,
	                       &cred)) < 0)
		goto done;
	for (size_t i = 0; i < need.cap; i++) {
		const cslot *c = &need.slots[i];
		sluice_chunkstore *cs;
		if (!c->used)
			continue;
		needed++;
		if (cset_find(&have, c->id)) {
			known++;
			continue;
		}
		if (cset_find(&rec, c->id)) {
			recorded++;
			continue;
		}
		/* Every chunk must be here before anything is sent. */
		if ((error = sluice_repo__chunks(repo, &cs)) < 0 ||
		    (error = sluice_chunkstore__has(cs, c->id)) < 0)
			goto done;
		if (error == 0) {
			char hex[SLUICE_B2_HEX];
			sluice__hex(hex, c->id, SLUICE_B2_LEN);
			error = sluice_ctx__error(
			        ctx, SLUICE_ENOTFOUND,
			        "chunk %s (needed by %s) is not in this repository's "
			        "chunk store; nothing was sent (sluice verify "
			        "names what is missing)",
			        hex, cset_why(&need, c));
			goto done;
		}
		x.items[x.n].c = c;
		x.items[x.n++].op = opts && opts->recheck ? SLUICE_CHUNK_HEAD : SLUICE_CHUNK_PUT;
	}
	if (x.n && !store) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "remote %s has no chunk store and %zu chunk%s must be sent; "
		        "set one with: git --git-dir=%s config remote.%s." CHUNKS_KEY " URL",
		        name, x.n, x.n == 1 ? "" : "s", repo->path, name);
		goto done;
	}
	/* Chunks first: a remote ref never names a chunk the store lacks. */
	error = xfer_run(&x);
	/* What the store took is recorded even when the push stops here. */
	if (store)
		known_save(repo, store, &x.confirmed);
	if (error < 0)
		goto done;
	if (up_to_date)
		goto report;
	/* Then the refs: the journal as a fast-forward, channel mirrors as they are here. */
	lchan = local_channels(repo);
	{
		const char *k;
		json_t *v;
		size_t cap = 2 + json_object_size(lchan) + json_object_size(rchan);
		if (!(specs = sluice__calloc(ctx, cap, sizeof(*specs)))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		specs[nspecs++] = strdup(SLUICE_JOURNAL_REF ":" SLUICE_JOURNAL_REF);
		json_object_foreach(lchan, k, v)
		{
			/* Mirrors follow the journal, which may move a channel back (rollback). */
			if (!json_equal(v, json_object_get(rchan, k)))
				specs[nspecs++] = spec_for("+", k, k);
		}
		json_object_foreach(rchan, k, v)
		{
			if (!json_object_get(lchan, k))
				specs[nspecs++] = spec_for("", "", k);
		}
		for (size_t i = 0; i < nspecs; i++)
			if (!specs[i]) {
				error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
				goto done;
			}
	}
	{
		git_push_options po;
		git_strarray sa = {specs, nspecs};

		/*
		 * Connect again and check the remote's journal did not move while
		 * chunks were sent; the push then carries that head as the old
		 * value, which receive-pack checks (compare-and-swap).
		 */
		gitreq++;
		if ((error = remote_heads(repo, r, name, GIT_DIRECTION_PUSH, &remote2, &has_remote2,
		                          NULL, &ps.ga)) < 0)
			goto done;
		if (has_remote2 != has_remote ||
		    (has_remote && !git_oid_equal(&remote, &remote2))) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECONFLICT,
			        "remote %s's journal moved while chunks were sent; "
			        "its refs were not changed (the chunks sent stay); "
			        "run sluice pull %s, then push again",
			        name, name);
			goto done;
		}
		if ((lpath = local_path(url))) {
			/* On this machine: sluice's own transfer and a compare-and-swap. */
			allowed = purged_blob_ids(repo, &local);
			if ((error = push_path(repo, name, lpath, &local, &remote, has_remote,
			                       lchan, rchan, allowed, &left_out)) < 0)
				goto done;
			goto moved;
		}
		git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
		po.callbacks.push_update_reference = on_push_ref;
		po.callbacks.credentials = on_git_cred;
		po.callbacks.payload = &ps; /* its first member is the git_auth on_git_cred wants */
		ps.ga.asked = 0;
		if ((error = git_remote_upload(r, &sa, &po)) < 0) {
			int missing = error == GIT_ENOTFOUND;
			char what[300];
			snprintf(what, sizeof(what), "cannot push to remote %s", name);
			error = git_op_error(repo, error, &ps.ga, name, url, what);
			/*
			 * sluice purge deletes git blobs on purpose; git's pack protocol
			 * needs every object the pushed history reaches.
			 */
			if (missing && json_object_size(purged))
				error = sluice_ctx__wrap(
				        ctx, SLUICE_EINVALID,
				        "the history holds content deleted by sluice purge (%zu "
				        "file%s), and git's pack protocol cannot send a history "
				        "with objects missing; no ref was changed (a remote on "
				        "this "
				        "machine, a path, can take it: docs/remotes.md)",
				        json_object_size(purged),
				        json_object_size(purged) == 1 ? "" : "s");
			goto done;
		}
		if (json_array_size(ps.rejected)) {
			json_t *e = json_array_get(ps.rejected, 0);
			error = sluice_ctx__error(ctx, SLUICE_ECONFLICT,
			                          "remote %s refused %s: %s (the chunks sent stay)",
			                          name, sluice__jstr(json_object_get(e, "ref")),
			                          sluice__jstr(json_object_get(e, "status")));
			goto done;
		}
	moved:
		/* What moved, for the report (there are no remote-tracking refs to update). */
		{
			const char *k;
			json_t *v;
			char lh[GIT_OID_HEXSZ + 1], rh[GIT_OID_HEXSZ + 1] = "";
			git_oid_tostr(lh, sizeof(lh), &local);
			if (has_remote)
				git_oid_tostr(rh, sizeof(rh), &remote);
			json_array_append_new(ps.refs,
			                      json_pack("{s:s,s:s?,s:s}", "ref", SLUICE_JOURNAL_REF,
			                                "old", has_remote ? rh : NULL, "new", lh));
			json_object_foreach(lchan, k,
			                    v) if (!json_equal(v, json_object_get(rchan, k)))
			        json_array_append_new(
			                ps.refs, json_pack("{s:s,s:O?,s:O}", "ref", k, "old",
			                                   json_object_get(rchan, k), "new", v));
			json_object_foreach(rchan, k, v) if (!json_object_get(lchan, k))
			        json_array_append_new(ps.refs, json_pack("{s:s,s:O,s:n}", "ref", k,
			                                                 "old", v, "new"));
		}
		git_remote_disconnect(r);
	}
report:
	error = sluice_repo__report(
	        ctx, report,
	        json_pack("{s:s,s:b,s:O,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I},s:I,s:I}",
	                  "remote", name, "up_to_date", up_to_date && x.sent == 0, "refs", ps.refs,
	                  "chunks", "needed", (json_int_t)needed, "in_remote_journal",
	                  (json_int_t)known, "in_record", (json_int_t)recorded, "sent",
	                  (json_int_t)x.sent, "already_there", (json_int_t)x.present, "bytes_sent",
	                  (json_int_t)x.bytes_sent, "bytes_needed", (json_int_t)x.bytes_total,
	                  "requests", "http", (json_int_t)x.requests, "git", (json_int_t)gitreq,
	                  "versions", (json_int_t)nversions, "purged_blobs_left_out",
	                  (json_int_t)left_out));
done:
	if (q.git || q.dir[0]) {
		q_dispose(&q);
		if (reopen_git(repo) < 0 && error == 0)
			error = SLUICE_EIO;
	}
	if (r)
		git_remote_disconnect(r);
	for (size_t i = 0; specs && i < nspecs; i++)
		free(specs[i]);
	free(specs);
	xfer_dispose(&x);
	cred_dispose(&cred);
	cred_dispose(&gcred);
	cset_dispose(&need);
	cset_dispose(&have);
	cset_dispose(&rec);
	json_decref(purged);
	json_decref(lchan);
	json_decref(rchan);
	json_decref(ps.refs);
	json_decref(ps.rejected);
	free(fresh);
	free(old);
	free(store);
	free(url);
	free(lpath);
	json_decref(allowed);
	git_remote_free(r);
	return error;
}

/* ---- pull --------------------------------------------------------------- */

int sluice_remote_pull(sluice_repo *repo, const char *name, const sluice_remote_opts *opts,
                       char **report)
{
	sluice_ctx *ctx = repo->ctx;
	git_remote *r = NULL;
	git_oid local;
	int has_local, error, reached = 0, lockfd = -1;
	git_oid *fresh = NULL;
	size_t nfresh = 0, nversions = 0;
	cset need = {0};
	json_t *purged = NULL, *chans = NULL, *roots = NULL, *out = NULL, *allowed = NULL;
	char *store = NULL, *url = NULL, from[GIT_OID_HEXSZ + 1] = "", to[GIT_OID_HEXSZ + 1];
	uint64_t needed = 0;
	xfer x;
	quarantine q = {0};
	chunk_cred cred = {0}, gcred = {0};
	git_auth ga = {&gcred, 0};
	sluice_chunkstore *cs;

	memset(&x, 0, sizeof(x));
	if ((error = remote_url(repo, name, &url)) < 0 ||
	    (error = open_url(ctx, repo->git, &r, url)) < 0 ||
	    (error = chunks_url(repo, name, &store)) < 0 ||
	    (store && (error = cred_load(repo, name, 0, &cred)) < 0) ||
	    (is_http(url) && (error = cred_load(repo, name, 1, &gcred)) < 0) ||
	    (error = sluice_journal__head(repo, &local, &has_local)) < 0)
		goto done;
	if ((error = q_fetch(repo, &q, url, &local, has_local, name, &ga)) < 0)
		goto done;
	if (!q.has_head) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                          "remote %s has no journal (%s): nothing has been pushed "
		                          "there",
		                          name, SLUICE_JOURNAL_REF);
		goto done;
	}
	git_oid_tostr(to, sizeof(to), &q.head);
	if (has_local)
		git_oid_tostr(from, sizeof(from), &local);
	if (has_local && git_oid_equal(&local, &q.head)) {
		error = sluice_repo__report(ctx, report,
		                            json_pack("{s:s,s:b,s:{s:s,s:s,s:i}}", "remote", name,
		                                      "up_to_date", 1, "journal", "from", from,
		                                      "to", to, "entries", 0));
		goto done;
	}
	if ((error = chain(repo, &fresh, &nfresh, &reached, &q.head, has_local ? &local : NULL)) <
	    0)
		goto done;
	if (has_local && !reached) {
		git_oid *ahead = NULL;
		size_t nahead = 0;
		int rr = 0;
		/* Ahead of the remote: nothing to pull, which is not a failure (git says the same).
		 */
		if ((error = chain(repo, &ahead, &nahead, &rr, &local, &q.head)) < 0)
			goto done;
		free(ahead);
		if (rr)
			error = sluice_repo__report(
			        ctx, report,
			        json_pack("{s:s,s:b,s:I,s:{s:s,s:s,s:i}}", "remote", name,
			                  "up_to_date", 1, "ahead", (json_int_t)nahead, "journal",
			                  "from", from, "to", from, "entries", 0));
		else
			error = diverged(repo, name, &local, &q.head);
		goto done;
	}
	if (!has_local) {
		/* A first pull trusts the remote's root keys: the report names them. */
		json_t *rec = NULL;
		if (sluice_journal__record(repo, &rec, &fresh[nfresh - 1]) == 0 &&
		    !strcmp(sluice__jstr(json_object_get(rec, "action")), "init"))
			roots = json_incref(json_object_get(rec, "root_keys"));
		json_decref(rec);
		if (!roots) {
			error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
			                          "remote %s's journal does not begin with init",
			                          name);
			goto done;
		}
		if (opts && opts->expect_root) {
			json_t *k;
			size_t i;
			int found = 0;
			json_array_foreach(roots, i, k)
			{
				if (!strcmp(sluice__jstr(json_object_get(k, "fingerprint")),
				            opts->expect_root))
					found = 1;
			}
			if (!found) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EDENIED,
				        "remote %s's journal pins root key %s, not %s; nothing was "
				        "changed",
				        name,
				        sluice__jstr(json_object_get(json_array_get(roots, 0),
				                                     "fingerprint")),
				        opts->expect_root);
				goto done;
			}
		}
	}
	if ((error = check_incoming(repo, name, fresh, nfresh)) < 0)
		goto done;
	/* Signed tombstones say which blobs may be missing; nothing else may be. */
	allowed = purged_blob_ids(repo, &q.head);
	if ((error = check_complete(repo, name, &q.head, has_local ? &local : NULL, allowed)) < 0)
		goto done;
	/* The chunks the new versions need that are not here yet. */
	purged = purged_at(repo, &q.head);
	if ((error = collect_chunks(repo, &need, fresh, nfresh, purged, &nversions)) < 0 ||
	    (error = xfer_init(&x, repo, &need, store ? store : "", opts, "pull: chunks", name,
	                       &cred)) < 0 ||
	    (error = sluice_repo__chunks(repo, &cs)) < 0)
		goto done;
	for (size_t i = 0; i < need.cap; i++) {
		const cslot *c = &need.slots[i];
		if (!c->used)
			continue;
		needed++;
		if ((error = sluice_chunkstore__has(cs, c->id)) < 0)
			goto done;
		if (error == 1)
			continue;
		x.items[x.n].c = c;
		x.items[x.n++].op = SLUICE_CHUNK_GET;
	}
	if (x.n && !store) {
		const cslot *c = x.items[0].c;
		char hex[SLUICE_B2_HEX];
		sluice__hex(hex, c->id, SLUICE_B2_LEN);
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                          "remote %s has no chunk store and %zu chunks are needed "
		                          "(the first: %s, for %s); nothing was changed",
		                          name, x.n, hex, cset_why(&need, c));
		goto done;
	}
	/*
	 * Every chunk is checked as it arrives and put into this process's
	 * open pack, which is committed only when all of them arrived: a
	 * failure abandons the pack, and nothing is stored.
	 */
	if ((error = xfer_run(&x)) < 0)
		goto done;
	if ((error = sluice_chunkstore__commit(cs)) < 0)
		goto done;
	/* The objects, then the commit point: the journal ref, compare-and-swap. */
	if ((error = reopen_git(repo)) < 0 || (error = q_adopt(repo, &q)) < 0)
		goto done;
	/*
	 * Under the journal writers' lock: a writer that holds it treats any
	 * journal.lock file as a dead writer's and removes it, so ours must
	 * not exist without it.
	 */
	if ((error = sluice_journal__lock(repo, &lockfd)) < 0)
		goto done;
	{
		git_reference *ref = NULL;
		char msg[300];
		snprintf(msg, sizeof(msg), "sluice pull %s", name);
		if (has_local)
			error = git_reference_create_matching(&ref, repo->git, SLUICE_JOURNAL_REF,
			                                      &q.head, 1, &local, msg);
		else
			error = git_reference_create(&ref, repo->git, SLUICE_JOURNAL_REF, &q.head,
			                             0, msg);
		git_reference_free(ref);
		if (error == GIT_EMODIFIED || error == GIT_EEXISTS || error == GIT_ELOCKED) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECONFLICT,
			        "a sluice action changed the journal during the pull; "
			        "the journal was not moved (run sluice pull %s again)",
			        name);
			goto done;
		}
		if (error < 0) {
			error = sluice_ctx__giterror(ctx, error, "cannot update %s",
			                             SLUICE_JOURNAL_REF);
			goto done;
		}
	}
	sluice_journal__unlock(lockfd);
	lockfd = -1;
	/* Derived state after the commit point: failures are repaired by sluice reindex. */
	{
		json_t *warn = json_array();
		if (sluice_journal__sync_index(repo) < 0)
			json_array_append_new(warn, json_string(sluice_ctx_errmsg(ctx)));
		if (sluice_tlog__index_sync(repo, NULL) < 0)
			json_array_append_new(warn, json_string(sluice_ctx_errmsg(ctx)));
		sluice_ctx_clear_error(ctx);
		chans = json_object();
		{
			json_t *all = NULL, *c;
			const char *k;
			if (sluice_journal__channels_at(repo, &all, &q.head) == 0)
				json_object_foreach(all, k, c)
				        json_object_set(chans, k, json_object_get(c, "head"));
			json_decref(all);
			sluice_ctx_clear_error(ctx);
		}
		out = json_pack(
		        "{s:s,s:b,s:{s:s?,s:s,s:I},s:O,s:{s:I,s:I,s:I,s:I},s:{s:I,s:i},s:I,s:o}",
		        "remote", name, "up_to_date", 0, "journal", "from", has_local ? from : NULL,
		        "to", to, "entries", (json_int_t)nfresh, "channels", chans, "chunks",
		        "needed", (json_int_t)needed, "received", (json_int_t)x.received,
		        "bytes_received", (json_int_t)x.bytes_received, "bytes_needed",
		        (json_int_t)x.bytes_total, "requests", "http", (json_int_t)x.requests,
		        "git", 1, "versions", (json_int_t)nversions, "warnings", warn);
		if (out && roots)
			json_object_set(out, "root_keys", roots);
		if (store)
			known_save(repo, store, &x.confirmed);
		error = sluice_repo__report(ctx, report, out);
	}
done:
	sluice_journal__unlock(lockfd);
	if (error < 0 && repo->cs) {
		/* Abandon the open pack: nothing fetched by a failed pull is kept. */
		sluice_chunkstore__free(repo->cs);
		repo->cs = NULL;
	}
	if (q.git || q.dir[0]) {
		q_dispose(&q);
		if (reopen_git(repo) < 0 && error == 0)
			error = SLUICE_EIO;
	}
	if (r)
		git_remote_disconnect(r);
	xfer_dispose(&x);
	cred_dispose(&cred);
	cred_dispose(&gcred);
	cset_dispose(&need);
	json_decref(purged);
	json_decref(allowed);
	json_decref(chans);
	json_decref(roots);
	free(fresh);
	free(store);
	free(url);
	git_remote_free(r);
	return error;
}

/* ---- clone -------------------------------------------------------------- */

int sluice_remote_clone(sluice_ctx *ctx, const char *dir, const char *name, const char *url,
                        const char *curl, const sluice_remote_opts *opts,
                        sluice_progress_cb progress_cb, void *progress_data, char **report)
{
	sluice_repo *repo = NULL;
	git_repository *g = NULL;
	char sub[PATH_MAX], *rep = NULL;
	struct stat st;
	int error, created = stat(dir, &st) != 0;
	DIR *d;

	if (!name)
		name = "origin";
	if (!created) {
		struct dirent *de;
		if (!S_ISDIR(st.st_mode) || !(d = opendir(dir)))
			return sluice_ctx__error(ctx, SLUICE_EEXISTS, "%s is not a directory", dir);
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				closedir(d);
				return sluice_ctx__error(
				        ctx, SLUICE_EEXISTS,
				        "%s is not empty; sluice clone needs a new or "
				        "empty directory",
				        dir);
			}
		closedir(d);
	}
	if (curl && (error = sluice_remote__check_store_url(ctx, curl)) < 0)
		return error;
	/* The layout of sluice init, without a journal of its own: the remote's becomes it. */
	if ((error = sluice_io__mkdirs(ctx, dir, 0755)) < 0)
		return error;
	if ((error = git_repository_init(&g, dir, 1)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot create git repository in %s", dir);
		goto done;
	}
	git_repository_free(g);
	snprintf(sub, sizeof(sub), "%s/sluice/packs", dir);
	if ((error = sluice_io__mkdirs(ctx, sub, 0755)) < 0 ||
	    (error = sluice_repo_open(&repo, ctx, dir)) < 0)
		goto done;
	if (progress_cb)
		sluice_repo_set_progress(repo, progress_cb, progress_data);
	if ((error = sluice_remote_add(repo, name, url, curl, NULL)) < 0 ||
	    (error = sluice_remote_pull(repo, name, opts, &rep)) < 0)
		goto done;
	{
		json_t *v = NULL;
		if ((error = sluice_repo__parse_json(ctx, &v, rep, strlen(rep), "pull report")) < 0)
			goto done;
		json_object_set_new(v, "path", json_string(repo->path));
		error = sluice_repo__report(ctx, report, v);
	}
done:
	sluice_repo_free(repo);
	free(rep);
	if (error < 0) {
		/* Leave nothing behind: the directory as it was before. */
		char *msg = strdup(sluice_ctx_errmsg(ctx));
		if ((d = opendir(dir))) {
			struct dirent *de;
			while ((de = readdir(d))) {
				char p[PATH_MAX + 256];
				if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
					continue;
				snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
				nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
			}
			closedir(d);
		}
		if (created)
			rmdir(dir);
		if (msg) {
			sluice_ctx__error(ctx, error, "%s", msg);
			free(msg);
		}
	}
	return error;
}
