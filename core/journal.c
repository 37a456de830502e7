/*
 * core/journal.c - the journal: refs/sluice/journal, one signed commit per
 * action, whose tree holds the action's record and the whole state after
 * it (keys and roles, every channel's head). The compare-and-swap of the
 * ref is the single commit point of every state change.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* renameat2 (RENAME_EXCHANGE) for the mirror refs */
#endif
#include "jindex.h"
#include "repo.h"
#include "tlog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int sluice_journal__head(sluice_repo *repo, git_oid *out, int *exists)
{
	int error = git_reference_name_to_id(out, repo->git, SLUICE_JOURNAL_REF);

	if (error == GIT_ENOTFOUND) {
		*exists = 0;
		return SLUICE_OK;
	}
	if (error < 0)
		return sluice_ctx__giterror(repo->ctx, error, "cannot read %s", SLUICE_JOURNAL_REF);
	*exists = 1;
	return SLUICE_OK;
}

/*
 * Parse one JSON file of an entry's tree; *out = NULL if absent and
 * optional. *blob and *len (unless NULL) name the file's blob and size.
 */
static int entry_file_blob(sluice_repo *repo, json_t **out, const git_oid *entry, const char *file,
                           int optional, git_oid *blob, size_t *len)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	const git_tree_entry *te;
	sluice_buf buf = {0};
	char what[128], hex[GIT_OID_HEXSZ + 1];
	int error;

	*out = NULL;
	git_oid_tostr(hex, sizeof(hex), entry);
	snprintf(what, sizeof(what), "journal entry %.12s: %s", hex, file);
	if ((error = git_commit_lookup(&c, repo->git, entry)) < 0 ||
	    (error = git_commit_tree(&t, c)) < 0) {
		error = sluice_ctx__giterror(repo->ctx, error, "cannot read %s", what);
		goto done;
	}
	if (!(te = git_tree_entry_byname(t, file))) {
		error = optional ? SLUICE_OK
		                 : sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT, "%s is missing",
		                                     what);
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, &buf, git_tree_entry_id(te), what)) < 0)
		goto done;
	if ((error = sluice_repo__parse_json(repo->ctx, out, buf.ptr, buf.len, what)) < 0)
		error = SLUICE_ECORRUPT;
	if (blob)
		*blob = *git_tree_entry_id(te);
	if (len)
		*len = buf.len;
done:
	sluice_buf__dispose(&buf);
	git_tree_free(t);
	git_commit_free(c);
	return error;
}

static int entry_file(sluice_repo *repo, json_t **out, const git_oid *entry, const char *file,
                      int optional)
{
	return entry_file_blob(repo, out, entry, file, optional, NULL, NULL);
}

/*
 * channels.json of format 1 kept, per channel, "held" (ids in the order
 * each was last the head) and "withdrawn" lists, which grew with every
 * move and were stored whole in every entry. Format 2 keeps "previous"
 * (the head before the current one, which held[n-2] was) and leaves the
 * rest to the move records and the index built from them (core/jindex.h):
 * a format-1 document is read as the format-2 one it stands for.
 */
static int channels_format(sluice_ctx *ctx, json_t *doc, json_t *channels)
{
	json_t *f = json_object_get(doc, "format"), *c;
	const char *name;

	if (json_integer_value(f) == SLUICE_CHANNELS_FORMAT)
		return SLUICE_OK;
	if (f && json_integer_value(f) != 1)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                         "journal channels.json has format %lld%s; this sluice "
		                         "reads formats 1 and %d",
		                         (long long)json_integer_value(f),
		                         json_is_integer(f) ? "" : " (not a number)",
		                         SLUICE_CHANNELS_FORMAT);
	json_object_foreach(channels, name, c)
	{
		json_t *held = json_object_get(c, "held");
		size_t n = json_array_size(held);
		json_object_del(c, "previous"); /* not a field of format 1 */
		if (n >= 2 && json_is_string(json_array_get(held, n - 2)))
			json_object_set(c, "previous", json_array_get(held, n - 2));
		json_object_del(c, "held");
		json_object_del(c, "withdrawn");
	}
	return SLUICE_OK;
}

int sluice_journal__member(sluice_ctx *ctx, json_t **out, json_t *doc, const char *file,
                           const char *member)
{
	json_t *v = json_object_get(doc, member);
	int error;

	*out = NULL;
	if (!json_is_object(v))
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT, "journal %s has no \"%s\" object",
		                         file, member);
	if (!strcmp(file, "channels.json") && (error = channels_format(ctx, doc, v)) < 0)
		return error;
	*out = json_incref(v);
	return SLUICE_OK;
}

/* An object member of an entry's JSON file; *blob and *len as entry_file_blob's. */
static int object_member_blob(sluice_repo *repo, json_t **out, const git_oid *entry,
                              const char *file, const char *member, int optional, git_oid *blob,
                              size_t *len)
{
	json_t *doc = NULL;
	int error;

	if ((error = entry_file_blob(repo, &doc, entry, file, optional, blob, len)) < 0)
		return error;
	if (!doc) {
		*out = json_object();
		return SLUICE_OK;
	}
	error = sluice_journal__member(repo->ctx, out, doc, file, member);
	json_decref(doc);
	return error;
}

static int object_member(sluice_repo *repo, json_t **out, const git_oid *entry, const char *file,
                         const char *member, int optional)
{
	return object_member_blob(repo, out, entry, file, member, optional, NULL, NULL);
}

/*
 * The state cache (sluice_journal__cache_free in core/repo.h): one entry's
 * state, held by the repository handle. It is filled by a read of a whole
 * state and by a commit, and only ever looked up by entry id, so it is
 * never stale; what would make it wrong is a caller changing a document it
 * was handed, which SLUICE_CHECK_STATE_CACHE catches in the tests.
 */
static int cache_checked(void)
{
	static int on = -1;

	if (on < 0) {
		const char *v = getenv("SLUICE_CHECK_STATE_CACHE");
		on = v && *v && strcmp(v, "0");
	}
	return on;
}

static const sluice_jstate *cache_get(sluice_repo *repo, const git_oid *entry)
{
	const sluice_jstate *c = repo->jcache;

	return c && git_oid_equal(&c->head, entry) ? c : NULL;
}

/* *out shares c's documents (each with a reference of its own). */
static void state_share(sluice_jstate *out, const sluice_jstate *c)
{
	*out = *c;
	json_incref(out->keys);
	json_incref(out->channels);
	json_incref(out->config);
	json_incref(out->trust);
}

static void cache_put(sluice_repo *repo, const sluice_jstate *st)
{
	sluice_jstate *c = repo->jcache;

	if (!c && !(c = repo->jcache = calloc(1, sizeof(*c))))
		return; /* no cache: every read parses */
	sluice_journal__dispose(c);
	state_share(c, st);
}

void sluice_journal__cache_free(sluice_repo *repo)
{
	sluice_journal__dispose(repo->jcache);
	free(repo->jcache);
	repo->jcache = NULL;
}

static _Noreturn void cache_differs(const git_oid *entry, const char *what)
{
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), entry);
	fprintf(stderr,
	        "sluice: the cached journal state at %s differs from its %s as written: "
	        "some caller changed a shared state document\n",
	        hex, what);
	abort();
}

static void cache_check_member(sluice_repo *repo, const git_oid *entry, const json_t *cached,
                               const char *file, const char *member, int optional)
{
	json_t *fresh = NULL;

	if (object_member(repo, &fresh, entry, file, member, optional) < 0)
		return; /* unreadable now: the caller's read would have said so */
	if (!json_equal(fresh, (json_t *)cached))
		cache_differs(entry, file);
	json_decref(fresh);
}

/*
 * keys_at and channels_at hand out documents the caller owns and may
 * change (a copy of the cached one); channels_shared, the cached one itself.
 */
int sluice_journal__keys_at(sluice_repo *repo, json_t **out, const git_oid *entry)
{
	const sluice_jstate *c = cache_get(repo, entry);

	if (c) {
		if (cache_checked())
			cache_check_member(repo, entry, c->keys, "keys.json", "keys", 0);
		if (!(*out = json_deep_copy(c->keys)))
			return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory");
		return SLUICE_OK;
	}
	return object_member(repo, out, entry, "keys.json", "keys", 0);
}

int sluice_journal__channels_shared(sluice_repo *repo, json_t **out, const git_oid *entry)
{
	const sluice_jstate *c = cache_get(repo, entry);

	if (c) {
		if (cache_checked())
			cache_check_member(repo, entry, c->channels, "channels.json", "channels",
			                   1);
		*out = json_incref(c->channels);
		return SLUICE_OK;
	}
	return object_member(repo, out, entry, "channels.json", "channels", 1);
}

int sluice_journal__channels_at(sluice_repo *repo, json_t **out, const git_oid *entry)
{
	json_t *shared = NULL;
	int error;

	if ((error = sluice_journal__channels_shared(repo, &shared, entry)) < 0)
		return error;
	if (!cache_get(repo, entry)) {
		*out = shared; /* parsed for this caller alone */
		return SLUICE_OK;
	}
	*out = json_deep_copy(shared);
	json_decref(shared);
	return *out ? SLUICE_OK : sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory");
}

int sluice_journal__keys(sluice_repo *repo, json_t **out)
{
	git_oid head;
	int exists, error;

	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		return error;
	if (!exists)
		return sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT, "repository %s has no journal",
		                         repo->path);
	return sluice_journal__keys_at(repo, out, &head);
}

const char *sluice_journal__role_for(const char *action)
{
	if (!strcmp(action, "init") || !strcmp(action, "key.add") ||
	    !strcmp(action, "key.revoke") || !strcmp(action, "policy.set") ||
	    !strcmp(action, "root.rotate") || !strcmp(action, "role.threshold"))
		return "root";
	/*
	 * Any registered key: a root signature counts only from a root key or
	 * a key the rotation makes root (checked when it was journaled); an
	 * approval counts only by its statement's signer; a refusal grants
	 * nothing and is signed by whoever tried, even a revoked key; suites
	 * are pinned by anyone registered.
	 */
	if (!strcmp(action, "root.sign") || !strcmp(action, "approve") ||
	    !strcmp(action, "refuse") || !strcmp(action, "suite.add"))
		return "";
	if (!strcmp(action, "propose") || !strcmp(action, "cosign"))
		return "proposer";
	/* A purge (audit/purge.c) deletes content: an operator's decision. */
	/*
	 * A hook entry (hooks/) records a delivery attempt and changes no state;
	 * it is signed by the hook's key, an operator's (verify checks it
	 * changes nothing).
	 */
	if (!strcmp(action, "promote") || !strcmp(action, "rollback") || !strcmp(action, "reset") ||
	    !strcmp(action, "anchor") || !strcmp(action, "purge") || !strcmp(action, "hook") ||
	    !strcmp(action, "reset.sign"))
		return "operator";
	if (!strcmp(action, "gate"))
		return "gate-runner";
	return NULL;
}

int sluice_journal__is_move(const char *action)
{
	return !strcmp(action, "promote") || !strcmp(action, "rollback") ||
	       !strcmp(action, "reset");
}

int sluice_journal__channels_raw(sluice_repo *repo, json_t **out, const git_oid *entry)
{
	return entry_file(repo, out, entry, "channels.json", 1);
}

int sluice_journal__record(sluice_repo *repo, json_t **out, const git_oid *entry)
{
	return entry_file(repo, out, entry, "record.json", 0);
}

void sluice_journal__dispose(sluice_jstate *st)
{
	if (!st)
		return;
	json_decref(st->keys);
	json_decref(st->channels);
	json_decref(st->config);
	json_decref(st->trust);
	memset(st, 0, sizeof(*st));
}

int sluice_journal__read(sluice_repo *repo, sluice_jstate *out)
{
	git_oid head;
	int exists, error;

	memset(out, 0, sizeof(*out));
	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		return error;
	if (!exists) {
		out->keys = json_object();
		out->channels = json_object();
		out->trust = json_object();
		return SLUICE_OK;
	}
	return sluice_journal__read_at(repo, &head, out);
}

/* The state at entry, read and parsed from its files. */
static int read_parsed(sluice_repo *repo, const git_oid *entry, sluice_jstate *out)
{
	json_t *rec = NULL;
	int error;

	memset(out, 0, sizeof(*out));
	out->head = *entry;
	out->exists = 1;
	if ((error = object_member_blob(repo, &out->keys, &out->head, "keys.json", "keys", 0,
	                                &out->keys_blob, &out->keys_len)) < 0 ||
	    (error = object_member(repo, &out->channels, &out->head, "channels.json", "channels",
	                           1)) < 0 ||
	    (error = sluice_journal__record(repo, &rec, &out->head)) < 0 ||
	    (error = entry_file_blob(repo, &out->config, &out->head, "config.json", 1,
	                             &out->config_blob, &out->config_len)) < 0 ||
	    (error = object_member_blob(repo, &out->trust, &out->head, "trust.json", "trust", 1,
	                                &out->trust_blob, &out->trust_len)) < 0) {
		json_decref(rec);
		sluice_journal__dispose(out);
		return error;
	}
	/* Where a document came from a blob, the next entry may name it again. */
	out->docs = SLUICE_JDOC_KEYS;
	if (out->config)
		out->docs |= SLUICE_JDOC_CONFIG;
	if (json_object_size(out->trust))
		out->docs |= SLUICE_JDOC_TRUST;
	if (out->config) {
		json_t *c = json_incref(json_object_get(out->config, "config"));
		json_decref(out->config);
		if (!json_is_object(c)) {
			json_decref(c);
			sluice_journal__dispose(out);
			return sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT,
			                         "journal config.json has no \"config\" object");
		}
		out->config = c;
	}
	out->seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
	snprintf(out->time, sizeof(out->time), "%s", sluice__jstr(json_object_get(rec, "time")));
	json_decref(rec);
	{
		git_commit *c = NULL;
		git_tree *t = NULL;
		const git_tree_entry *te;

		if (git_commit_lookup(&c, repo->git, &out->head) == 0 &&
		    git_commit_tree(&t, c) == 0) {
			if ((te = git_tree_entry_byname(t, "suites")) != NULL &&
			    git_tree_entry_type(te) == GIT_OBJECT_TREE) {
				out->suites = *git_tree_entry_id(te);
				out->has_suites = 1;
			}
			if ((te = git_tree_entry_byname(t, "policies")) != NULL &&
			    git_tree_entry_type(te) == GIT_OBJECT_TREE) {
				out->policies = *git_tree_entry_id(te);
				out->has_policies = 1;
			}
		}
		git_tree_free(t);
		git_commit_free(c);
	}
	return SLUICE_OK;
}

static int json_same(json_t *a, json_t *b)
{
	return (!a && !b) || (a && b && json_equal(a, b));
}

/* A blob the cache names for a document is the one the entry's tree names. */
static int same_doc(const sluice_jstate *fresh, const sluice_jstate *c, unsigned bit,
                    const git_oid *a, const git_oid *b)
{
	return !(c->docs & bit) || ((fresh->docs & bit) && git_oid_equal(a, b));
}

int sluice_journal__read_at(sluice_repo *repo, const git_oid *entry, sluice_jstate *out)
{
	const sluice_jstate *c = cache_get(repo, entry);
	int error;

	if (c) {
		if (cache_checked()) {
			sluice_jstate fresh;
			if (read_parsed(repo, entry, &fresh) == 0) {
				if (!json_same(fresh.keys, c->keys))
					cache_differs(entry, "keys.json");
				if (!json_same(fresh.channels, c->channels))
					cache_differs(entry, "channels.json");
				if (!json_same(fresh.config, c->config))
					cache_differs(entry, "config.json");
				if (!json_same(fresh.trust, c->trust))
					cache_differs(entry, "trust.json");
				if (fresh.seq != c->seq || strcmp(fresh.time, c->time))
					cache_differs(entry, "record.json");
				if (fresh.has_suites != c->has_suites ||
				    fresh.has_policies != c->has_policies ||
				    (c->has_suites && !git_oid_equal(&fresh.suites, &c->suites)) ||
				    (c->has_policies &&
				     !git_oid_equal(&fresh.policies, &c->policies)) ||
				    !same_doc(&fresh, c, SLUICE_JDOC_KEYS, &fresh.keys_blob,
				              &c->keys_blob) ||
				    !same_doc(&fresh, c, SLUICE_JDOC_CONFIG, &fresh.config_blob,
				              &c->config_blob) ||
				    !same_doc(&fresh, c, SLUICE_JDOC_TRUST, &fresh.trust_blob,
				              &c->trust_blob))
					cache_differs(entry, "tree");
				sluice_journal__dispose(&fresh);
			}
		}
		state_share(out, c);
		return SLUICE_OK;
	}
	if ((error = read_parsed(repo, entry, out)) < 0)
		return error;
	cache_put(repo, out);
	return SLUICE_OK;
}

int sluice_journal__check_role(sluice_repo *repo, const sluice_jstate *st, const sluice_key *key,
                               const char *role)
{
	char fp[SLUICE_FP_LEN], now[32];
	const char *name;
	json_t *e;

	sluice_keys__fingerprint(fp, key->pk);
	if (!(e = sluice_trust__by_fp(st->keys, fp, &name)))
		return sluice_ctx__error(repo->ctx, SLUICE_EDENIED,
		                         "key %s (%s) is not registered in this repository",
		                         key->name, fp);
	sluice_journal__now(st, now);
	if (sluice_trust__key_standing(repo->ctx, name, e, UINT64_MAX, now) < 0)
		return SLUICE_EDENIED;
	if (role && !sluice_trust__has_role(e, role))
		return sluice_ctx__error(repo->ctx, SLUICE_EDENIED,
		                         "key %s does not have the %s role", name, role);
	return SLUICE_OK;
}

int sluice_journal__deny(sluice_repo *repo, sluice_jchange *ch, const char *rule, const char *fmt,
                         ...)
{
	char buf[1500];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	snprintf(ch->rule, sizeof(ch->rule), "%s", rule);
	return sluice_ctx__error(repo->ctx, SLUICE_EDENIED, "%s [rule %s]", buf, rule);
}

/*
 * The journal ref's compare-and-swap, done here rather than by libgit2 so
 * that its lock file can be fsynced in the same round of flushes as the
 * entry's object directories (core/stage.c): three rounds before an action
 * returns instead of four. The protocol is git's own, so git, libgit2 and
 * other writers interoperate: refs/sluice/journal.lock created exclusively
 * (its existence is the lock), the current value read under it (a loose
 * ref, or packed-refs when there is none) and compared with the expected
 * one, the new value written to it; then fsync, rename over the ref, fsync
 * of refs/sluice/. Where libgit2 would keep a reflog for the journal ref
 * (core.logAllRefUpdates=always; or true, the default beside a work tree,
 * with a reflog already there) the update is left to libgit2, which
 * writes the reflog too.
 */
typedef struct {
	int fd;
	char path[4210]; /* the lock file, or "" when none is held */
	char ref[4200];  /* the ref file it will be renamed to */
	char dir[4200];  /* refs/sluice */
} ref_lock;

static int journal_has_reflog(sluice_repo *repo)
{
	char path[4200];
	struct stat sb;
	git_config *cfg = NULL;
	const char *v = NULL;
	int on;

	/* libgit2's rule: "always" logs every ref; "true" (the default in a
	 * repository with a work tree) logs a ref whose reflog exists. */
	if (git_repository_config_snapshot(&cfg, repo->git) < 0)
		return 1; /* unsure: let libgit2 decide */
	if (git_config_get_string(&v, cfg, "core.logAllRefUpdates") < 0 || !v)
		on = !git_repository_is_bare(repo->git);
	else if (!strcasecmp(v, "always"))
		on = 2;
	else if (git_config_parse_bool(&on, v) < 0)
		on = 1;
	git_config_free(cfg);
	snprintf(path, sizeof(path), "%s/logs/%s", repo->path, SLUICE_JOURNAL_REF);
	return on == 2 || (on && lstat(path, &sb) == 0);
}

/* Take the lock, check the ref still holds old (or is absent), write id. */
static int ref_lock_take(sluice_repo *repo, ref_lock *l, const git_oid *id, const git_oid *old)
{
	sluice_ctx *ctx = repo->ctx;
	char line[GIT_OID_HEXSZ + 2];
	git_oid now;
	int error;

	l->fd = -1;
	l->path[0] = '\0';
	if (snprintf(l->ref, sizeof(l->ref), "%s/%s", repo->path, SLUICE_JOURNAL_REF) >=
	            (int)sizeof(l->ref) ||
	    snprintf(l->dir, sizeof(l->dir), "%s/refs/sluice", repo->path) >= (int)sizeof(l->dir))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", repo->path);
	snprintf(l->path, sizeof(l->path), "%s.lock", l->ref);
	/* refs/sluice/ made only when missing (a repository git made, say). */
	if ((l->fd = open(l->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) < 0 &&
	    errno == ENOENT) {
		if ((error = sluice_io__mkdirs(ctx, l->dir, 0755)) < 0) {
			l->path[0] = '\0';
			return error;
		}
		l->fd = open(l->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	}
	if (l->fd < 0) {
		int busy = errno == EEXIST;
		l->path[0] = '\0';
		if (busy)
			return sluice_ctx__error(
			        ctx, SLUICE_ECONFLICT,
			        "another writer holds %s.lock; nothing was changed",
			        SLUICE_JOURNAL_REF);
		return sluice_ctx__oserror(ctx, "cannot create %s.lock", l->ref);
	}
	error = git_reference_name_to_id(&now, repo->git, SLUICE_JOURNAL_REF);
	if (error < 0 && error != GIT_ENOTFOUND)
		return sluice_ctx__giterror(ctx, error, "cannot read %s", SLUICE_JOURNAL_REF);
	if ((error == 0) != (old != NULL) || (old && !git_oid_equal(&now, old)))
		return sluice_ctx__error(ctx, SLUICE_ECONFLICT,
		                         "another sluice action changed the journal at the same "
		                         "time; nothing was changed");
	git_oid_tostr(line, sizeof(line), id);
	line[GIT_OID_HEXSZ] = '\n';
	return sluice_io__write_all(ctx, l->fd, line, GIT_OID_HEXSZ + 1, l->path);
}

/* Drop the lock unless it was renamed into place. */
static void ref_lock_release(ref_lock *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->path[0])
		unlink(l->path);
	l->path[0] = '\0';
}

/* The commit point: the lock file (already durable) renamed over the ref. */
static int ref_lock_commit(sluice_ctx *ctx, ref_lock *l)
{
	close(l->fd);
	l->fd = -1;
	if (rename(l->path, l->ref) < 0)
		return sluice_ctx__oserror(ctx, "cannot rename %s into place", l->path);
	l->path[0] = '\0';
	return sluice_io__fsync_dir(ctx, l->dir);
}

struct dump_to {
	sluice_ctx *ctx;
	sluice_buf buf;
	int failed;
};

/*
 * json_dump_callback's writer: straight into one buffer, no copy after. A
 * failure is sticky and checked by the caller: jansson ignores the
 * writer's result for an object's keys, so one failed append would
 * otherwise leave a key out and the rest written (the fault-injection
 * tests committed such a config.json).
 */
static int dump_append(const char *data, size_t len, void *arg)
{
	struct dump_to *d = arg;

	if (d->failed || sluice_buf__put(d->ctx, &d->buf, data, len) < 0)
		d->failed = 1;
	return d->failed ? -1 : 0;
}

/* v as tb's blob name; *len (unless NULL) its size. */
static int tree_put_json(sluice_repo *repo, git_treebuilder *tb, const char *name, json_t *v,
                         size_t *len)
{
	struct dump_to d = {repo->ctx, {0}, 0};
	git_oid blob;
	int error;

	/* Indented, with a final newline: friendly to git diff between entries. */
	if (json_dump_callback(v, dump_append, &d, JSON_INDENT(1) | JSON_SORT_KEYS) < 0 ||
	    dump_append("\n", 1, &d) < 0 || d.failed) {
		sluice_buf__dispose(&d.buf);
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "cannot encode %s", name);
	}
	if ((error = sluice_stage__blob(repo, &blob, d.buf.ptr, d.buf.len)) == 0 &&
	    (error = git_treebuilder_insert(NULL, tb, name, &blob, GIT_FILEMODE_BLOB)) < 0)
		error = sluice_ctx__giterror(repo->ctx, error, "cannot write %s", name);
	if (len)
		*len = d.buf.len;
	sluice_buf__dispose(&d.buf);
	return error;
}

/*
 * A document the entry leaves as its parent had it: the parent's blob,
 * named again (sluice_jstate's docs).
 */
static int tree_put_blob(sluice_repo *repo, git_treebuilder *tb, const char *name,
                         const git_oid *blob, size_t len)
{
	int error;

	if ((error = sluice_stage__reached(repo, blob, GIT_OBJECT_BLOB, len)) < 0)
		return error;
	error = git_treebuilder_insert(NULL, tb, name, blob, GIT_FILEMODE_BLOB);
	return error < 0 ? sluice_ctx__giterror(repo->ctx, error, "cannot write %s", name)
	                 : SLUICE_OK;
}

/* The blob tb names as name, of len bytes, noted in *docs as bit. */
static void tb_doc(git_treebuilder *tb, const char *name, size_t len, unsigned bit, git_oid *out,
                   size_t *outlen, unsigned *docs)
{
	const git_tree_entry *te = git_treebuilder_get(tb, name);

	if (te && git_tree_entry_type(te) == GIT_OBJECT_BLOB) {
		*out = *git_tree_entry_id(te);
		*outlen = len;
		*docs |= bit;
	}
}

void sluice_journal__change_dispose(sluice_jchange *ch)
{
	if (!ch)
		return;
	json_decref(ch->record);
	json_decref(ch->keys_after);
	json_decref(ch->channels_after);
	json_decref(ch->config_after);
	json_decref(ch->trust_after);
	json_decref(ch->refusal);
	memset(ch, 0, sizeof(*ch));
}

void sluice_journal__now(const sluice_jstate *st, char out[32])
{
	sluice_repo__now(out);
	if (st && st->exists && strcmp(out, st->time) < 0)
		snprintf(out, 32, "%s", st->time);
}

int sluice_journal__commit(sluice_repo *repo, git_oid *out, const sluice_key *signer,
                           const char *action, const sluice_jstate *st, sluice_jchange *ch)
{
	json_t *record = ch->record, *keys_after = ch->keys_after,
	       *channels_after = ch->channels_after;
	const git_oid *extra_parent = ch->has_extra ? &ch->extra_parent : NULL;
	sluice_ctx *ctx = repo->ctx;
	git_treebuilder *tb = NULL;
	git_reference *ref = NULL;
	ref_lock lock = {.fd = -1};
	json_t *kdoc = NULL, *cdoc = NULL, *empty = NULL;
	git_oid tree, parents[2], id;
	size_t np = 0, klen = 0, clen = 0, tlen = 0;
	char fp[SLUICE_FP_LEN], now[32], msg[256];
	int error, ours = 0;

	if (!record)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build journal record");
	sluice_keys__fingerprint(fp, signer->pk);
	sluice_repo__now(now);
	/*
	 * The journal's clock: an entry is dated by the host that writes it and
	 * never before the entry it follows (sluice_journal__now), because
	 * expiry (approvals, verdicts, pending root changes) is measured in
	 * these times. A host whose clock is a little behind the newest entry
	 * (written elsewhere and pulled) dates its entry at that entry's time;
	 * one further behind than SLUICE_CLOCK_SKEW has a broken clock.
	 */
	if (!ch->time[0])
		sluice_journal__now(st, ch->time);
	if (sluice__utc_seconds(ch->time) > sluice__utc_seconds(now) + SLUICE_CLOCK_SKEW) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "a journal entry dated %s is more than %d s ahead of "
		                          "this host's clock (%s)%s; nothing was written; fix the "
		                          "clock",
		                          ch->time, SLUICE_CLOCK_SKEW, now,
		                          st->exists && strcmp(ch->time, st->time) == 0
		                                  ? ", the time of the journal's newest entry"
		                                  : "");
		json_decref(record);
		ch->record = NULL;
		return error;
	}
	if (st->exists && strcmp(ch->time, st->time) < 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "a journal entry dated %s, before the journal's newest "
		                          "entry #%llu (%s): journal times never go backwards, so "
		                          "nothing was written",
		                          ch->time, (unsigned long long)st->seq, st->time);
		json_decref(record);
		ch->record = NULL;
		return error;
	}
	json_object_set_new(record, "action", json_string(action));
	json_object_set_new(record, "actor",
	                    json_pack("{s:s,s:s}", "name", signer->name, "fingerprint", fp));
	json_object_set_new(record, "time", json_string(ch->time));
	/* The entry's position, so an index can be checked against the journal. */
	json_object_set_new(record, "seq", json_integer((json_int_t)(st->seq + 1)));
	kdoc = json_pack("{s:i, s:O}", "format", 1, "keys", keys_after ? keys_after : st->keys);
	cdoc = json_pack("{s:i, s:O}", "format", SLUICE_CHANNELS_FORMAT, "channels",
	                 channels_after ? channels_after : st->channels);
	if (!kdoc || !cdoc) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build journal state");
		goto done;
	}
	/*
	 * The entry's objects are held in memory and made durable together
	 * just before the commit point (core/stage.c): two rounds of
	 * concurrent flushes instead of two flushes per object in turn.
	 */
	if ((error = sluice_stage__begin(repo)) < 0)
		goto done;
	if ((error = git_treebuilder_new(&tb, repo->git, NULL)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot build journal tree");
		goto done;
	}
	/*
	 * A document this entry does not change is named by the blob its
	 * parent has (sluice_jstate's docs), not written again.
	 */
	klen = st->keys_len;
	if ((error = tree_put_json(repo, tb, "record.json", record, NULL)) < 0 ||
	    (error = keys_after || !(st->docs & SLUICE_JDOC_KEYS)
	                     ? tree_put_json(repo, tb, "keys.json", kdoc, &klen)
	                     : tree_put_blob(repo, tb, "keys.json", &st->keys_blob, klen)) < 0 ||
	    (error = tree_put_json(repo, tb, "channels.json", cdoc, NULL)) < 0)
		goto done;
	clen = st->config_len;
	if (!ch->config_after && st->config && (st->docs & SLUICE_JDOC_CONFIG)) {
		if ((error = tree_put_blob(repo, tb, "config.json", &st->config_blob, clen)) < 0)
			goto done;
	} else if (ch->config_after || st->config) {
		json_t *doc = json_pack("{s:i, s:O}", "format", 1, "config",
		                        ch->config_after ? ch->config_after : st->config);
		error = doc ? tree_put_json(repo, tb, "config.json", doc, &clen)
		            : sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build config.json");
		json_decref(doc);
		if (error < 0)
			goto done;
	}
	tlen = st->trust_len;
	if (!ch->trust_after && json_object_size(st->trust) && (st->docs & SLUICE_JDOC_TRUST)) {
		if ((error = tree_put_blob(repo, tb, "trust.json", &st->trust_blob, tlen)) < 0)
			goto done;
	} else if (ch->trust_after || json_object_size(st->trust)) {
		json_t *doc = json_pack("{s:i, s:O}", "format", 1, "trust",
		                        ch->trust_after ? ch->trust_after : st->trust);
		error = doc ? tree_put_json(repo, tb, "trust.json", doc, &tlen)
		            : sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build trust.json");
		json_decref(doc);
		if (error < 0)
			goto done;
	}
	if ((ch->has_policies || st->has_policies) &&
	    (error = git_treebuilder_insert(NULL, tb, "policies",
	                                    ch->has_policies ? &ch->policies_after : &st->policies,
	                                    GIT_FILEMODE_TREE)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot write journal tree");
		goto done;
	}
	if ((ch->has_suites || st->has_suites) &&
	    (error = git_treebuilder_insert(NULL, tb, "suites",
	                                    ch->has_suites ? &ch->suites_after : &st->suites,
	                                    GIT_FILEMODE_TREE)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot write journal tree");
		goto done;
	}
	/*
	 * The Merkle tree after this entry (audit/tlog.h): tlog.json and the
	 * signed checkpoint, written with the rest, before the commit point.
	 */
	if ((error = sluice_tlog__journal_add(repo, tb, st, signer,
	                                      keys_after ? keys_after : st->keys)) < 0)
		goto done;
	if ((error = sluice_stage__tree(repo, &tree, tb)) < 0)
		goto done;
	if (st->exists)
		parents[np++] = st->head;
	if (extra_parent)
		parents[np++] = *extra_parent;
	snprintf(msg, sizeof(msg), "sluice %s by %s\n", action, signer->name);
	if ((error = sluice_repo__signed_commit(repo, &id, signer, msg, &tree, parents, np)) < 0)
		goto done;
	/*
	 * The commit point: compare-and-swap from the head the decision was
	 * made on. Ours (ref_lock_*): the lock file holding the new head is
	 * fsynced with the entry's object directories, then renamed over the
	 * ref and refs/sluice/ fsynced. libgit2's, where a reflog is kept: it
	 * writes the ref through the same lock-file protocol and, with fsync
	 * enabled globally, fsyncs it and its directory before returning.
	 */
	if (!journal_has_reflog(repo)) {
		if ((error = ref_lock_take(repo, &lock, &id, st->exists ? &st->head : NULL)) < 0 ||
		    (error = sluice_stage__commit(repo, lock.fd, lock.path)) < 0)
			goto done;
		ours = 1;
		error = ref_lock_commit(ctx, &lock);
	} else if ((error = sluice_stage__commit(repo, -1, NULL)) < 0) {
		goto done;
	} else if (st->exists) {
		error = git_reference_create_matching(&ref, repo->git, SLUICE_JOURNAL_REF, &id, 1,
		                                      &st->head, msg);
	} else {
		error = git_reference_create(&ref, repo->git, SLUICE_JOURNAL_REF, &id, 0, msg);
	}
	if (error < 0) {
		git_oid moved;
		int moved_exists = 0;
		char hex[GIT_OID_HEXSZ + 1];

		/*
		 * libgit2's codes are its own (some equal sluice's in value); ours
		 * are sluice's, with the message already set, and a lost
		 * compare-and-swap never reaches here (ref_lock_take).
		 */
		if (!ours &&
		    (error == GIT_EMODIFIED || error == GIT_EEXISTS || error == GIT_ELOCKED)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_ECONFLICT,
			        "another sluice action changed the journal at the "
			        "same time; nothing was changed");
			goto done;
		}
		if (!ours)
			error = sluice_ctx__giterror(ctx, error, "cannot update %s",
			                             SLUICE_JOURNAL_REF);
		/*
		 * The ref may have been renamed into place before the failure (its
		 * directory's fsync, say): then the action took effect, and a user
		 * who simply retried would act twice. Say so, naming the entry.
		 */
		git_oid_tostr(hex, sizeof(hex), &id);
		if (sluice_journal__head(repo, &moved, &moved_exists) == 0 && moved_exists &&
		    git_oid_equal(&moved, &id))
			error = sluice_ctx__wrap(
			        ctx, SLUICE_EIO,
			        "journal entry %s was recorded and the %s took effect, "
			        "but making it durable failed (do not repeat it; "
			        "sluice status shows the heads)",
			        hex, action);
		goto done;
	}
	if (out)
		*out = id;
	{
		/* The state after this entry: what the next read will ask for. */
		sluice_jstate after = {.head = id, .exists = 1, .seq = st->seq + 1};

		after.keys = keys_after ? keys_after : st->keys;
		after.channels = channels_after ? channels_after : st->channels;
		after.config = ch->config_after ? ch->config_after : st->config;
		after.trust = ch->trust_after ? ch->trust_after : st->trust;
		if (!after.trust)
			after.trust = empty = json_object();
		after.has_suites = ch->has_suites || st->has_suites;
		after.suites = ch->has_suites ? ch->suites_after : st->suites;
		after.has_policies = ch->has_policies || st->has_policies;
		after.policies = ch->has_policies ? ch->policies_after : st->policies;
		snprintf(after.time, sizeof(after.time), "%s", ch->time);
		tb_doc(tb, "keys.json", klen, SLUICE_JDOC_KEYS, &after.keys_blob, &after.keys_len,
		       &after.docs);
		if (after.config)
			tb_doc(tb, "config.json", clen, SLUICE_JDOC_CONFIG, &after.config_blob,
			       &after.config_len, &after.docs);
		if (json_object_size(after.trust))
			tb_doc(tb, "trust.json", tlen, SLUICE_JDOC_TRUST, &after.trust_blob,
			       &after.trust_len, &after.docs);
		cache_put(repo, &after);
		sluice_tlog__journal_committed(repo, &id);
	}
	/* The sluice program drains the hooks' outbox after a command that wrote. */
	if (strcmp(action, "hook"))
		ctx->journal_writes++;
done:
	ref_lock_release(&lock);
	sluice_stage__abort(repo);
	git_reference_free(ref);
	git_treebuilder_free(tb);
	json_decref(kdoc);
	json_decref(cdoc);
	json_decref(empty);
	json_decref(record);
	ch->record = NULL;
	return error;
}

/*
 * Journal writers take an exclusive flock on sluice/journal.flock for
 * read-decide-commit; the kernel drops it when a process dies. While a
 * writer holds it, the file's content says whether that writer may be
 * creating refs/sluice/journal.lock: "writing NANOSECONDS" (the realtime
 * clock before it began) from just before it may create the lock until the
 * lock is gone, "idle" (or empty, as sluice before 2026-12-05 left it)
 * otherwise. Both lines have one width and are written in place: a
 * truncation to nothing and a write after it would free the file's block
 * and allocate it again in every action. So the next writer, holding the flock,
 * finds a journal.lock left on disk with the intent still written, and
 * knows a sluice writer died while it could hold the lock: it removes the
 * lock if that was created after the intent (a second of slack for the
 * file system's coarser clock). A journal.lock without that intent is
 * git's (pack-refs during git gc, update-ref): it is left alone, and the
 * compare-and-swap waits for it like any other writer. Until 2026-12-03 any
 * journal.lock found under the flock was removed, which could let git's
 * pack-refs delete a loose journal ref sluice had just moved.
 */
#define INTENT_PREFIX "writing "
/* "writing " and 20 digits of nanoseconds, or "idle" and spaces; then "\n". */
#define INTENT_WIDTH 29
#define INTENT_IDLE "idle                        \n"
_Static_assert(sizeof(INTENT_IDLE) - 1 == INTENT_WIDTH, "the idle line has the intent's width");

static int intent_set(sluice_ctx *ctx, int fd, const char *path)
{
	char line[64];
	struct timespec now;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	n = snprintf(line, sizeof(line), INTENT_PREFIX "%020lld\n",
	             (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
	if (n != INTENT_WIDTH)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "the realtime clock (%lld s) does not fit the intent line of %s",
		        (long long)now.tv_sec, path);
	if (pwrite(fd, line, (size_t)n, 0) != n)
		return sluice_ctx__oserror(ctx, "cannot write %s", path);
	return SLUICE_OK;
}

/* The intent's time in ns, or -1 when none is written. */
static long long intent_get(int fd)
{
	char line[64];
	ssize_t n = pread(fd, line, sizeof(line) - 1, 0);

	if (n <= (ssize_t)strlen(INTENT_PREFIX) ||
	    strncmp(line, INTENT_PREFIX, strlen(INTENT_PREFIX)))
		return -1;
	line[n] = '\0';
	return strtoll(line + strlen(INTENT_PREFIX), NULL, 10);
}

int sluice_journal__lock_at(sluice_ctx *ctx, const char *gitdir, int *fd)
{
	char path[4200], stale[4200];
	struct stat st;
	long long t;
	int error;

	*fd = -1;
	snprintf(path, sizeof(path), "%s/sluice/journal.flock", gitdir);
	if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return sluice_ctx__oserror(ctx, "cannot open %s", path);
	while (flock(*fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			error = sluice_ctx__oserror(ctx, "cannot lock %s", path);
			close(*fd);
			*fd = -1;
			return error;
		}
	}
	snprintf(stale, sizeof(stale), "%s/%s.lock", gitdir, SLUICE_JOURNAL_REF);
	if ((t = intent_get(*fd)) >= 0 && lstat(stale, &st) == 0 && S_ISREG(st.st_mode) &&
	    (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec >= t - 1000000000LL)
		unlink(stale);
	if ((error = intent_set(ctx, *fd, path)) < 0) {
		close(*fd);
		*fd = -1;
	}
	return error;
}

void sluice_journal__unlock(int fd)
{
	if (fd < 0)
		return;
	/* The lock file is gone (renamed into place or removed): no intent. */
	if (pwrite(fd, INTENT_IDLE, INTENT_WIDTH, 0) != INTENT_WIDTH) {
		/* Left written: the next writer checks the lock's age against it. */
	}
	close(fd); /* releases the flock */
}

int sluice_journal__lock(sluice_repo *repo, int *fd)
{
	return sluice_journal__lock_at(repo->ctx, repo->path, fd);
}

/*
 * A refused action is journaled too (auditors see who tried what, and
 * which rule stopped it): a "refuse" entry, signed by the actor, that
 * changes no state. Only a registered key's refusal can be attributed, so
 * an unknown key's is not journaled. Returns the refusal (SLUICE_EDENIED,
 * its message kept), or SLUICE_ECONFLICT to decide again.
 */
static int journal_refusal(sluice_repo *repo, const sluice_key *signer, const char *action,
                           const sluice_jstate *st, sluice_jchange *ch)
{
	char fp[SLUICE_FP_LEN], *msg;
	sluice_jchange rc;
	int error;

	sluice_keys__fingerprint(fp, signer->pk);
	if (!sluice_trust__by_fp(st->keys, fp, NULL))
		return SLUICE_EDENIED;
	if (!(msg = strdup(sluice_ctx_errmsg(repo->ctx))))
		return SLUICE_EDENIED;
	memset(&rc, 0, sizeof(rc));
	rc.record = ch->refusal ? json_deep_copy(ch->refusal) : json_object();
	json_object_set_new(rc.record, "attempted", json_string(action));
	json_object_set_new(rc.record, "rule", json_string(ch->rule));
	json_object_set_new(rc.record, "message", json_string(msg));
	error = sluice_journal__commit(repo, NULL, signer, "refuse", st, &rc);
	sluice_journal__change_dispose(&rc);
	if (error == SLUICE_ECONFLICT) {
		free(msg);
		return error;
	}
	/* The refusal stands whether or not its record could be written. */
	if (error < 0)
		sluice_ctx__error(repo->ctx, SLUICE_EDENIED,
		                  "%s (the refusal could not be journaled)", msg);
	else
		sluice_ctx__error(repo->ctx, SLUICE_EDENIED, "%s", msg);
	free(msg);
	return SLUICE_EDENIED;
}

/* A refusal decided before the transaction: journaled as it is decided. */
struct refusal {
	const char *rule, *msg;
	json_t *context;
};

static int decide_refusal(sluice_repo *repo, const sluice_jstate *st, void *arg,
                          sluice_jchange *out)
{
	struct refusal *r = arg;

	(void)st;
	out->refusal = json_incref(r->context);
	return sluice_journal__deny(repo, out, r->rule, "%s", r->msg);
}

int sluice_journal__refuse(sluice_repo *repo, const sluice_key *signer, const char *action,
                           const char *rule, json_t *context, const char *fmt, ...)
{
	struct refusal r = {rule, NULL, context};
	char buf[1500];
	va_list ap;
	int error;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r.msg = buf;
	error = sluice_journal__transact(repo, NULL, signer, action, decide_refusal, &r);
	/* Only a refusal comes back (or a failure to read the journal). */
	return error < 0 ? error : SLUICE_EDENIED;
}

static int mirror_refs(sluice_repo *repo, int prune, const git_oid *known);

int sluice_journal__transact(sluice_repo *repo, git_oid *out, const sluice_key *signer,
                             const char *action, sluice_journal_decide decide, void *arg)
{
	unsigned attempt;
	int error = SLUICE_ECONFLICT, lockfd = -1;

	if ((error = sluice_journal__lock(repo, &lockfd)) < 0)
		return error;

	for (attempt = 0; attempt < 16; attempt++) {
		sluice_jchange ch;
		sluice_jstate st;

		memset(&ch, 0, sizeof(ch));
		if (attempt) {
			/* Back off a little, with jitter, before deciding again. */
			struct timespec ts = {
			        0, (long)(1000000L *
			                  (1 + randombytes_uniform(
			                               4u << (attempt < 6 ? attempt : 6))))};
			nanosleep(&ts, NULL);
		}
		if ((error = sluice_journal__read(repo, &st)) < 0)
			break;
		if ((error = decide(repo, &st, arg, &ch)) == 0)
			error = sluice_journal__commit(repo, out, signer, action, &st, &ch);
		else if (error == SLUICE_EDENIED && ch.rule[0])
			error = journal_refusal(repo, signer, action, &st, &ch);
		sluice_journal__change_dispose(&ch);
		sluice_journal__dispose(&st);
		if (error != SLUICE_ECONFLICT)
			break;
	}
	if (error == 0) {
		/*
		 * Derived state; a failure here is repaired on the next sync. Only
		 * the mirror ref of each channel is written now, for plain git
		 * users, still under the journal's flock: writers mirror their
		 * entries in the journal's order, so the last mirror written is the
		 * newest head. The journal index is left to the next command that
		 * reads it (every reader catches it up first, sluice_jindex__sync):
		 * its write transaction and fdatasync cost a rollback about a third
		 * of its time (docs/bench-rollback.md), and an action is durable
		 * without it.
		 */
		mirror_refs(repo, 0, out);
		sluice_ctx_clear_error(repo->ctx);
	}
	sluice_journal__unlock(lockfd);
	if (error == SLUICE_ECONFLICT) {
		char held[4200];
		struct stat sb;
		snprintf(held, sizeof(held), "%s/%s.lock", repo->path, SLUICE_JOURNAL_REF);
		if (lstat(held, &sb) == 0)
			return sluice_ctx__error(
			        repo->ctx, SLUICE_ECONFLICT,
			        "%s is held by a program that is not sluice (git gc, git "
			        "update-ref?) and was not released while this %s waited; nothing "
			        "was changed; run it again, and if no git process is running, "
			        "remove that file",
			        held, action);
		return sluice_ctx__error(repo->ctx, SLUICE_ECONFLICT,
		                         "the journal kept changing under this %s (other sluice "
		                         "processes are busy); nothing was changed, run it again",
		                         action);
	}
	return error;
}

/*
 * Write a mirror ref as a loose ref file (which git and libgit2 read ahead
 * of packed-refs), without fsync: it is derived from the journal after the
 * commit point, and rewritten by the next sync if a power cut loses it, so
 * a channel move does not wait for it to reach the disk.
 *
 * Where the file system can exchange two names in one step (Linux
 * renameat2 RENAME_EXCHANGE), the new line is written in place into a
 * spare file, sluice/mirror-spare/NAME, which is then exchanged with the
 * ref: the ref's old file becomes the next spare. No file is created and
 * none is freed, where a temporary file renamed over the ref frees the old
 * file's inode and block on every move (on a file system mounted with
 * `discard`, a synchronous discard; docs/bench-rollback.md has the paired
 * runs). Readers see the old ref or the new one, never a part of either.
 * Elsewhere (and for a channel's first mirror, which has nothing to
 * exchange with) the temporary file is renamed into place.
 */
#if defined(__linux__) && defined(RENAME_EXCHANGE)
/* The file system refused RENAME_EXCHANGE (process-wide; handles may live on other threads). */
static atomic_int exchange_unsupported;
#endif

static int mirror_exchange(sluice_repo *repo, const char *path, const char *name, const char *line,
                           size_t len)
{
#if defined(__linux__) && defined(RENAME_EXCHANGE)
	char spare[4500], dir[4400];
	struct stat sb;
	int fd, ok;

	if (atomic_load_explicit(&exchange_unsupported, memory_order_relaxed))
		return 1;
	snprintf(dir, sizeof(dir), "%s/sluice/mirror-spare", repo->path);
	snprintf(spare, sizeof(spare), "%s/%s", dir, name);
	/*
	 * The spare is written only under an exclusive flock on it, and only
	 * while the name still holds the file locked: a writer that waited for
	 * the lock may find that the file it opened was exchanged into the ref
	 * meanwhile, and must not write into a live ref.
	 */
	for (int tries = 0;; tries++) {
		struct stat named;

		if ((fd = open(spare, O_WRONLY | O_CREAT | O_CLOEXEC, 0666)) < 0 &&
		    errno == ENOENT && sluice_io__mkdirs(repo->ctx, dir, 0755) == 0)
			fd = open(spare, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0)
			return 1;
		if (flock(fd, LOCK_EX) == 0 && fstat(fd, &sb) == 0 && stat(spare, &named) == 0 &&
		    named.st_dev == sb.st_dev && named.st_ino == sb.st_ino)
			break;
		close(fd);
		if (tries == 8)
			return 1;
	}
	/* Every line has one length: in place, with no block freed or allocated. */
	ok = sluice_io__pwrite_all(repo->ctx, fd, line, len, 0, spare) == SLUICE_OK &&
	     (sb.st_size == (off_t)len || ftruncate(fd, (off_t)len) == 0);
	if (!ok) {
		close(fd);
		return 1;
	}
	if (renameat2(AT_FDCWD, spare, AT_FDCWD, path, RENAME_EXCHANGE) == 0)
		ok = 1;
	else if (errno == ENOENT) /* no mirror yet: the spare becomes it */
		ok = rename(spare, path) == 0;
	else {
		if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
			atomic_store_explicit(&exchange_unsupported, 1, memory_order_relaxed);
		ok = 0;
		unlink(spare);
	}
	close(fd); /* and with it the flock */
	return ok ? 0 : 1;
#else
	(void)repo, (void)path, (void)name, (void)line, (void)len;
	return 1;
#endif
}

static int write_mirror(sluice_repo *repo, const char *refname, const char *hex)
{
	char path[4400], tmp[4500], dir[4400], line[GIT_OID_HEXSZ + 2];
	const char *name = refname + strlen("refs/sluice/channels/");
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", repo->path, refname);
	snprintf(tmp, sizeof(tmp), "%s.sluice-tmp-%ld", path, (long)getpid());
	snprintf(dir, sizeof(dir), "%s/refs/sluice/channels", repo->path);
	snprintf(line, sizeof(line), "%s\n", hex);
	if (mirror_exchange(repo, path, name, line, strlen(line)) == 0)
		return SLUICE_OK;
	if (sluice_io__mkdirs(repo->ctx, dir, 0755) < 0)
		return SLUICE_EIO;
	if (!(f = fopen(tmp, "w")))
		return sluice_ctx__oserror(repo->ctx, "cannot write %s", tmp);
	ok = fputs(line, f) >= 0;
	ok &= fclose(f) == 0;
	if (!ok || rename(tmp, path) < 0) {
		int error = sluice_ctx__oserror(repo->ctx, "cannot write %s", path);
		unlink(tmp);
		return error;
	}
	return SLUICE_OK;
}

/*
 * Point refs/sluice/channels/NAME at each head, for plain git users; with
 * prune, also delete the mirror of a channel the journal no longer has
 * (after a pull or a reindex: no action removes a channel, and listing
 * refs/sluice/channels/ reads its directories). known, when not NULL, is
 * the journal entry this process has just committed (not read again).
 */
static int mirror_refs(sluice_repo *repo, int prune, const git_oid *known)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	json_t *channels = NULL, *c;
	const char *name;
	git_oid head;
	int exists, error;

	if (known) {
		head = *known;
		exists = 1;
	} else if ((error = sluice_journal__head(repo, &head, &exists)) < 0 || !exists) {
		return error;
	}
	if ((error = sluice_journal__channels_shared(repo, &channels, &head)) < 0)
		return error;
	json_object_foreach(channels, name, c)
	{
		char refname[256];
		git_oid id;
		const char *hex = json_string_value(json_object_get(c, "head"));

		snprintf(refname, sizeof(refname), "refs/sluice/channels/%s", name);
		if (hex && git_reference_name_to_id(&id, repo->git, refname) == 0) {
			char cur[GIT_OID_HEXSZ + 1];
			git_oid_tostr(cur, sizeof(cur), &id);
			if (!strcmp(cur, hex))
				continue; /* already mirrored: no write, no fsync */
		}
		if (!hex) {
			if (git_reference_lookup(&ref, repo->git, refname) == 0) {
				git_reference_delete(ref);
				git_reference_free(ref);
				ref = NULL;
			}
			continue;
		}
		if ((error = write_mirror(repo, refname, hex)) < 0)
			break;
	}
	/* Channels the journal no longer has lose their mirror. */
	if (prune &&
	    git_reference_iterator_glob_new(&it, repo->git, "refs/sluice/channels/*") == 0) {
		while (git_reference_next(&ref, it) == 0) {
			const char *n = git_reference_name(ref) + strlen("refs/sluice/channels/");
			if (!json_object_get(channels, n))
				git_reference_delete(ref);
			git_reference_free(ref);
		}
		git_reference_iterator_free(it);
	}
	json_decref(channels);
	return error;
}

int sluice_journal__sync_index(sluice_repo *repo)
{
	int error = sluice_jindex__sync(repo);
	int merror = mirror_refs(repo, 1, NULL);

	return error < 0 ? error : merror;
}
