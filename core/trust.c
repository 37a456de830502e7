/*
 * core/trust.c - what root keys decide, with TUF's protections: a
 * threshold of root signatures for every change of keys, roles or policy;
 * root rotation signed by a threshold of the old root keys and of the new
 * ones; revocation that counts by journal position, never by a signer's
 * clock; key expiry; and the policy versions.
 *
 * A root change (adding a key, revoking one, rotating the root keys,
 * setting a policy, setting a role's threshold) is proposed by one root key and waits in
 * trust.json's "pending" until enough root keys signed it (sluice root sign); the entry whose
 * signature completes it applies it. With a root threshold of 1 the proposal applies at once. Each
 * signature is the signer's own journal commit, so the journal shows who signed what, in order. A
 * pending change expires (proposed_time + its time to live, journal times): a signature after that
 * is refused, and the next root change drops it.
 */
#include "repo.h"

#include "policy.h"
#include "sluice/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned sluice_trust__root_threshold(const sluice_jstate *st)
{
	json_int_t n = json_integer_value(
	        json_object_get(json_object_get(st->trust, "thresholds"), "root"));
	return n >= 1 ? (unsigned)n : 1;
}

unsigned sluice_trust__role_threshold(const sluice_jstate *st, const char *role)
{
	json_int_t n =
	        json_integer_value(json_object_get(json_object_get(st->trust, "thresholds"), role));
	return n >= 1 ? (unsigned)n : 1;
}

int sluice_trust__has_role(json_t *entry, const char *role)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(entry, "roles"), i,
	                   r) if (!strcmp(sluice__jstr(r), role)) return 1;
	return 0;
}

json_t *sluice_trust__by_fp(json_t *registry, const char *fp, const char **name)
{
	const char *n;
	json_t *e;

	json_object_foreach(registry, n, e)
	{
		if (strcmp(sluice__jstr(json_object_get(e, "fingerprint")), fp))
			continue;
		if (name)
			*name = n;
		return e;
	}
	return NULL;
}

int sluice_trust__key_standing(sluice_ctx *ctx, const char *name, json_t *entry, uint64_t at_seq,
                               const char *now)
{
	json_t *rev = json_object_get(entry, "revoked");
	const char *exp = json_string_value(json_object_get(entry, "expires"));

	if (json_is_object(rev)) {
		json_int_t seq = json_integer_value(json_object_get(rev, "seq"));
		if ((seq <= 0 || (uint64_t)seq <= at_seq) && !ctx)
			return SLUICE_EDENIED;
		if (seq <= 0 || (uint64_t)seq <= at_seq)
			return sluice_ctx__error(ctx, SLUICE_EDENIED,
			                         "key %s was revoked by journal entry #%lld (%s)",
			                         name, (long long)seq,
			                         sluice__jstr(json_object_get(rev, "reason")));
	}
	/* Times are "YYYY-MM-DDTHH:MM:SSZ": they compare as strings. */
	if (now && exp && strcmp(now, exp) >= 0 && !ctx)
		return SLUICE_EDENIED;
	if (now && exp && strcmp(now, exp) >= 0)
		return sluice_ctx__error(ctx, SLUICE_EDENIED, "key %s expired at %s", name, exp);
	return SLUICE_OK;
}

/* Root keys in good standing now. */
static size_t count_roots(json_t *registry)
{
	const char *name;
	json_t *e;
	size_t n = 0;

	json_object_foreach(registry, name, e) n +=
	        sluice_trust__has_role(e, "root") && !json_object_get(e, "revoked");
	return n;
}

/* ---- the policy in effect ------------------------------------------------- */

int sluice_journal__policy(sluice_repo *repo, const sluice_jstate *st, json_t **out,
                           char digest[65], unsigned *version)
{
	json_t *p = json_object_get(st->trust, "policy");
	json_int_t v = json_integer_value(json_object_get(p, "version"));
	git_tree *t = NULL;
	const git_tree_entry *te;
	sluice_buf buf = {0};
	char file[48];
	int error;

	*out = NULL;
	if (digest)
		digest[0] = 0;
	if (version)
		*version = 0;
	if (!json_is_object(p))
		return SLUICE_OK;
	snprintf(file, sizeof(file), "v%lld.yaml", (long long)v);
	if (!st->has_policies || git_tree_lookup(&t, repo->git, &st->policies) < 0 ||
	    !(te = git_tree_entry_byname(t, file))) {
		git_tree_free(t);
		return sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT,
		                         "the journal names policy version %lld, but policies/%s "
		                         "is missing",
		                         (long long)v, file);
	}
	error = sluice_repo__read_blob(repo, &buf, git_tree_entry_id(te), file);
	git_tree_free(t);
	if (error == 0)
		error = sluice_policy__parse(repo->ctx, out, buf.ptr, buf.len, file);
	if (error == 0 && digest) {
		unsigned char h[SLUICE_B2_LEN];
		sluice__b2(h, buf.ptr, buf.len);
		sluice__hex(digest, h, SLUICE_B2_LEN);
	}
	if (error == 0 && version)
		*version = (unsigned)v;
	sluice_buf__dispose(&buf);
	if (error < 0 && error != SLUICE_ENOMEM)
		error = sluice_ctx__wrap(repo->ctx, SLUICE_ECORRUPT, "the journal's policy");
	return error;
}

int sluice_journal__config_under(sluice_repo *repo, const sluice_jstate *st, json_t *policy,
                                 const char *channel, json_t **out, char digest[65])
{
	int error;

	if (!policy)
		return sluice_journal__config(repo, st, out, digest);
	if ((error = sluice_policy__gate_config(repo->ctx, out, policy, channel)) < 0 || !digest)
		return error;
	if ((error = sluice_gates__config_digest(repo->ctx, *out, digest)) < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return error;
}

int sluice_journal__config_for(sluice_repo *repo, const sluice_jstate *st, const char *channel,
                               json_t **out, char digest[65], char policy_digest[65])
{
	json_t *policy = NULL;
	int error;

	if ((error = sluice_journal__policy(repo, st, &policy, policy_digest, NULL)) < 0)
		return error;
	error = sluice_journal__config_under(repo, st, policy, channel, out, digest);
	json_decref(policy);
	return error;
}

/* ---- root changes ---------------------------------------------------------- */

struct rchange {
	const sluice_key *key;
	const char *kind;  /* key.add, key.revoke, root.rotate, policy.set */
	char kind_buf[32]; /* signing: the kind, copied out of the state */
	json_t *change;    /* proposing: what changes (borrowed) */
	const char *id;    /* signing: the pending change's id or a prefix */
	char id_out[65];   /* the change's id */
	int applied;       /* whether this entry applied it */
	unsigned have_old, need_old, have_new, need_new;
	json_t *after_key; /* key.add: the key's registry entry as committed */
	long long ttl;     /* proposing: seconds until it expires */
};

/* A root change waits a week for its signatures unless its proposer said otherwise. */
#define DEFAULT_CHANGE_TTL (7LL * 86400)

int sluice_root_set_expiry(sluice_repo *repo, const char *duration)
{
	long long t;

	if (!duration) {
		repo->change_ttl = 0;
		return SLUICE_OK;
	}
	if (sluice__parse_duration(duration, &t) < 0)
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
		                         "'%s' is not a duration: seconds, or <n>s, <n>m, <n>h, "
		                         "<n>d (1 second to 36500 days)",
		                         duration);
	repo->change_ttl = t;
	return SLUICE_OK;
}

/* Whether pending change pend has expired at journal time `at`. */
static int pending_expired(json_t *pend, const char *at)
{
	const char *exp = json_string_value(json_object_get(pend, "expires"));

	/* Changes proposed before expiry existed carry none: they wait. */
	return exp && strcmp(at, exp) >= 0;
}

/*
 * Take the changes expired at `at` out of trust's pending (a root change's
 * entry does this, so verify sees who dropped them); their ids (new
 * reference, possibly []).
 */
static json_t *drop_expired(json_t *trust, const char *at)
{
	json_t *pending = json_object_get(trust, "pending"), *p, *ids = json_array();
	const char *id;
	void *tmp;

	json_object_foreach_safe(pending, tmp, id, p) if (pending_expired(p, at))
	{
		json_array_append_new(ids, json_string(id));
		json_object_del(pending, id);
	}
	return ids;
}

/* The names of the root keys after a rotation (new reference). */
static json_t *rotated_roots(json_t *registry, json_t *change)
{
	json_t *roots = json_array(), *e, *v;
	const char *name;
	size_t i;

	json_object_foreach(registry, name, e)
	{
		int removed = 0;
		if (!sluice_trust__has_role(e, "root") || json_object_get(e, "revoked"))
			continue;
		json_array_foreach(json_object_get(change, "remove"), i, v) removed |=
		        !strcmp(sluice__jstr(v), name);
		if (!removed)
			json_array_append_new(roots, json_string(name));
	}
	json_array_foreach(json_object_get(change, "add"), i, v)
	{
		json_t *w;
		size_t k;
		int dup = 0;
		json_array_foreach(roots, k, w) dup |= json_equal(v, w);
		if (!dup)
			json_array_append(roots, v);
	}
	return roots;
}

/* Check a change against the state it would apply to (also when it is applied later). */
static int validate(sluice_repo *repo, const sluice_jstate *st, const char *kind, json_t *change)
{
	sluice_ctx *ctx = repo->ctx;
	json_t *e, *v;
	size_t i;

	if (!strcmp(kind, "key.add")) {
		const char *name = sluice__jstr(json_object_get(change, "name"));
		e = json_object_get(st->keys, name);
		if (e && strcmp(sluice__jstr(json_object_get(e, "fingerprint")),
		                sluice__jstr(json_object_get(change, "fingerprint"))))
			return sluice_ctx__error(
			        ctx, SLUICE_EEXISTS,
			        "a different key named %s is already registered (%s)", name,
			        sluice__jstr(json_object_get(e, "fingerprint")));
		if (e && json_object_get(e, "revoked"))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "key %s was revoked; a revoked key is not given roles "
			        "again (make a new key)",
			        name);
		if (json_array_size(json_object_get(change, "roles")) &&
		    sluice__jarray_has(json_object_get(change, "roles"), "root") &&
		    (!e || !sluice_trust__has_role(e, "root")))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "the root role is given by sluice root rotate, which "
			        "needs the new root keys' signatures too");
		return SLUICE_OK;
	}
	if (!strcmp(kind, "key.revoke")) {
		const char *name = sluice__jstr(json_object_get(change, "name"));
		if (!(e = json_object_get(st->keys, name)))
			return sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
			                         "no key named %s is registered", name);
		if (json_object_get(e, "revoked"))
			return sluice_ctx__error(ctx, SLUICE_EINVALID, "key %s is already revoked",
			                         name);
		if (sluice_trust__has_role(e, "root") &&
		    count_roots(st->keys) - 1 < sluice_trust__root_threshold(st))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "revoking root key %s would leave fewer root keys "
			                         "than the threshold %u; rotate the root keys "
			                         "instead (sluice root rotate)",
			                         name, sluice_trust__root_threshold(st));
		return SLUICE_OK;
	}
	if (!strcmp(kind, "root.rotate")) {
		json_int_t t = json_integer_value(json_object_get(change, "threshold"));
		json_t *roots;
		size_t n;

		json_array_foreach(json_object_get(change, "add"), i, v)
		{
			e = json_object_get(st->keys, sluice__jstr(v));
			if (!e)
				return sluice_ctx__error(
				        ctx, SLUICE_ENOTFOUND,
				        "no key named %s is registered; register it "
				        "first (sluice key new %s), then rotate it in",
				        sluice__jstr(v), sluice__jstr(v));
			if (json_object_get(e, "revoked"))
				return sluice_ctx__error(ctx, SLUICE_EINVALID, "key %s is revoked",
				                         sluice__jstr(v));
		}
		json_array_foreach(json_object_get(change, "remove"), i, v)
		{
			e = json_object_get(st->keys, sluice__jstr(v));
			if (!e || !sluice_trust__has_role(e, "root"))
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "%s is not a root key", sluice__jstr(v));
		}
		roots = rotated_roots(st->keys, change);
		n = json_array_size(roots);
		json_decref(roots);
		if (t < 1 || (size_t)t > n)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "a root threshold of %lld is impossible with %zu root "
			        "keys after the rotation",
			        (long long)t, n);
		return SLUICE_OK;
	}
	if (!strcmp(kind, "role.threshold")) {
		const char *role = sluice__jstr(json_object_get(change, "role"));
		json_int_t t = json_integer_value(json_object_get(change, "threshold"));
		const char *name;
		size_t n = 0;

		if (!strcmp(role, "root"))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "the root threshold changes only with the root keys "
			        "(sluice root rotate --threshold N)");
		if (!strcmp(role, "approver"))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "approvers' threshold is the policy's approvals.count, "
			        "per channel (sluice policy set)");
		if (!strcmp(role, "auditor"))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "auditor is read-only: it signs nothing that counts, "
			        "so a threshold would mean nothing");
		if (strcmp(role, "proposer") && strcmp(role, "gate-runner") &&
		    strcmp(role, "operator"))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "unknown role '%s' (thresholds: proposer, "
			                         "gate-runner, operator)",
			                         role);
		json_object_foreach(st->keys, name, e) n +=
		        sluice_trust__has_role(e, role) && !json_object_get(e, "revoked");
		if (t < 1 || t > 64)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "a %s threshold of %lld: it is 1 to 64", role,
			                         (long long)t);
		if ((size_t)t > n)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "a %s threshold of %lld with %zu unrevoked %s keys "
			        "would stop every %s action; register the keys "
			        "first",
			        role, (long long)t, n, role, role);
		return SLUICE_OK;
	}
	if (!strcmp(kind, "policy.set")) {
		json_int_t ver = json_integer_value(json_object_get(change, "version"));
		json_int_t cur = json_integer_value(
		        json_object_get(json_object_get(st->trust, "policy"), "version"));
		if (ver != cur + 1)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "this policy change would make version %lld, but "
			                         "version %lld is in effect: another policy took "
			                         "effect since it was proposed; propose it again",
			                         (long long)ver, (long long)cur);
		return SLUICE_OK;
	}
	return sluice_ctx__error(ctx, SLUICE_ECORRUPT, "unknown root change '%s'", kind);
}

/* Count a pending change's signatures against the state; 1 when complete. */
static int complete(const sluice_jstate *st, json_t *pend, struct rchange *rc)
{
	const char *kind = sluice__jstr(json_object_get(pend, "kind"));
	json_t *change = json_object_get(pend, "change"), *v;
	size_t i;

	rc->have_old = rc->have_new = rc->need_new = 0;
	rc->need_old = sluice_trust__root_threshold(st);
	json_array_foreach(json_object_get(pend, "signers"), i, v)
	{
		json_t *e = sluice_trust__by_fp(st->keys, sluice__jstr(v), NULL);
		rc->have_old +=
		        e && sluice_trust__has_role(e, "root") && !json_object_get(e, "revoked");
	}
	if (!strcmp(kind, "root.rotate")) {
		rc->need_new = (unsigned)json_integer_value(json_object_get(change, "threshold"));
		rc->have_new = (unsigned)json_array_size(json_object_get(pend, "new_signers"));
	}
	return rc->have_old >= rc->need_old && rc->have_new >= rc->need_new;
}

static int apply(sluice_repo *repo, const sluice_jstate *st, json_t *pend, sluice_jchange *out,
                 struct rchange *rc)
{
	const char *kind = sluice__jstr(json_object_get(pend, "kind"));
	json_t *change = json_object_get(pend, "change"), *keys = out->keys_after, *v;
	size_t i;
	int error;

	if ((error = validate(repo, st, kind, change)) < 0)
		return error;
	if (!keys)
		keys = out->keys_after = json_deep_copy(st->keys);
	if (!strcmp(kind, "key.add")) {
		const char *name = sluice__jstr(json_object_get(change, "name"));
		json_t *e = json_object_get(keys, name);
		if (!e) {
			e = json_pack("{s:O,s:O,s:[]}", "fingerprint",
			              json_object_get(change, "fingerprint"), "public_key",
			              json_object_get(change, "public_key"), "roles");
			json_object_set_new(keys, name, e);
		}
		json_array_foreach(json_object_get(change, "roles"), i,
		                   v) if (!sluice_trust__has_role(e, json_string_value(v)))
		        json_array_append(json_object_get(e, "roles"), v);
		if (json_object_get(change, "expires"))
			json_object_set(e, "expires", json_object_get(change, "expires"));
		json_decref(rc->after_key);
		rc->after_key = json_incref(e);
	} else if (!strcmp(kind, "key.revoke")) {
		json_t *e = json_object_get(keys, sluice__jstr(json_object_get(change, "name")));
		char now[32];
		sluice_journal__now(st, now); /* the time of the entry that records it */
		json_object_set_new(e, "revoked",
		                    json_pack("{s:I,s:O,s:s}", "seq", (json_int_t)(st->seq + 1),
		                              "reason", json_object_get(change, "reason"), "time",
		                              now));
	} else if (!strcmp(kind, "root.rotate")) {
		json_t *roots = rotated_roots(st->keys, change), *e;
		const char *name;
		json_object_foreach(keys, name, e)
		{
			json_t *roles = json_object_get(e, "roles");
			if (sluice__jarray_has(roots, name) && !sluice_trust__has_role(e, "root"))
				json_array_append_new(roles, json_string("root"));
			if (!sluice__jarray_has(roots, name) && sluice_trust__has_role(e, "root"))
				for (size_t k = json_array_size(roles); k-- > 0;)
					if (!strcmp(sluice__jstr(json_array_get(roles, k)), "root"))
						json_array_remove(roles, k);
		}
		json_decref(roots);
		json_object_set(json_object_get(out->trust_after, "thresholds"), "root",
		                json_object_get(change, "threshold"));
	} else if (!strcmp(kind, "role.threshold")) {
		json_object_set(json_object_get(out->trust_after, "thresholds"),
		                sluice__jstr(json_object_get(change, "role")),
		                json_object_get(change, "threshold"));
	} else if (!strcmp(kind, "policy.set")) {
		const char *text = sluice__jstr(json_object_get(change, "text"));
		git_treebuilder *tb = NULL;
		git_tree *old = NULL;
		git_oid blob;
		char file[48];

		snprintf(file, sizeof(file), "v%lld.yaml",
		         (long long)json_integer_value(json_object_get(change, "version")));
		if (st->has_policies && git_tree_lookup(&old, repo->git, &st->policies) < 0)
			return sluice_ctx__giterror(repo->ctx, -1, "cannot read the policies");
		error = git_treebuilder_new(&tb, repo->git, old);
		if (error == 0)
			error = git_blob_create_from_buffer(&blob, repo->git, text, strlen(text));
		if (error == 0)
			error = git_treebuilder_insert(NULL, tb, file, &blob, GIT_FILEMODE_BLOB);
		if (error == 0)
			error = git_treebuilder_write(&out->policies_after, tb);
		git_treebuilder_free(tb);
		git_tree_free(old);
		if (error < 0)
			return sluice_ctx__giterror(repo->ctx, error, "cannot store the policy");
		out->has_policies = 1;
		json_object_set_new(out->trust_after, "policy",
		                    json_pack("{s:O,s:O,s:I}", "version",
		                              json_object_get(change, "version"), "digest",
		                              json_object_get(change, "digest"), "seq",
		                              (json_int_t)(st->seq + 1)));
	}
	rc->applied = 1;
	return SLUICE_OK;
}

/* The trust object to change: a copy of st's with its parts present. */
static json_t *trust_copy(const sluice_jstate *st)
{
	json_t *t = json_deep_copy(st->trust);

	if (!json_is_object(json_object_get(t, "thresholds")))
		json_object_set_new(t, "thresholds", json_object());
	if (!json_is_object(json_object_get(t, "pending")))
		json_object_set_new(t, "pending", json_object());
	return t;
}

/* The record of a root-change entry: the change (a policy's text is in policies/). */
static json_t *change_record(json_t *pend, const struct rchange *rc)
{
	json_t *rec = json_deep_copy(json_object_get(pend, "change"));

	json_object_del(rec, "text");
	json_object_set_new(rec, "change", json_string(rc->id_out));
	json_object_set_new(rec, "kind",
	                    json_object_get(pend, "kind")
	                            ? json_incref(json_object_get(pend, "kind"))
	                            : json_null());
	json_object_set_new(rec, "applied", json_boolean(rc->applied));
	json_object_set_new(rec, "root_signatures",
	                    json_pack("{s:i,s:i}", "have", rc->have_old, "need", rc->need_old));
	if (rc->need_new)
		json_object_set_new(
		        rec, "new_root_signatures",
		        json_pack("{s:i,s:i}", "have", rc->have_new, "need", rc->need_new));
	return rec;
}

/* Apply pend if its signatures are enough, else leave it pending. */
static int settle(sluice_repo *repo, const sluice_jstate *st, json_t *pend, sluice_jchange *out,
                  struct rchange *rc)
{
	int error = SLUICE_OK;

	json_incref(pend); /* leaving pending must not free it before the record is made */
	if (complete(st, pend, rc)) {
		if ((error = apply(repo, st, pend, out, rc)) < 0)
			goto done;
		json_object_del(json_object_get(out->trust_after, "pending"), rc->id_out);
	}
	out->record = change_record(pend, rc);
done:
	json_decref(pend);
	return error;
}

static int decide_propose(sluice_repo *repo, const sluice_jstate *st, void *arg,
                          sluice_jchange *out)
{
	struct rchange *rc = arg;
	json_t *pend, *idsrc, *dropped;
	char fp[SLUICE_FP_LEN], *text, expires[32];
	unsigned char h[SLUICE_B2_LEN];
	int error;

	/* The entry's time: the change expires counted from it. */
	sluice_journal__now(st, out->time);
	if (sluice_journal__check_role(repo, st, rc->key, "root") < 0)
		return sluice_journal__deny(repo, out, "role", "%s needs a root key: %s", rc->kind,
		                            sluice_ctx_errmsg(repo->ctx));
	if ((error = validate(repo, st, rc->kind, rc->change)) < 0)
		return error;
	/* The id names the change and where it was proposed, so equal proposals differ. */
	idsrc = json_pack("{s:s,s:O,s:I}", "kind", rc->kind, "change", rc->change, "seq",
	                  (json_int_t)(st->seq + 1));
	text = idsrc ? json_dumps(idsrc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(idsrc);
	if (!text)
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "cannot encode the change");
	sluice__b2(h, text, strlen(text));
	free(text);
	sluice__hex(rc->id_out, h, SLUICE_B2_LEN);
	sluice_keys__fingerprint(fp, rc->key->pk);
	out->trust_after = trust_copy(st);
	dropped = drop_expired(out->trust_after, out->time);
	sluice__utc_format(expires, sluice__utc_seconds(out->time) +
	                                    (rc->ttl > 0 ? rc->ttl : DEFAULT_CHANGE_TTL));
	pend = json_pack("{s:s,s:O,s:[s],s:[],s:I,s:s,s:s,s:s}", "kind", rc->kind, "change",
	                 rc->change, "signers", fp, "new_signers", "proposed_seq",
	                 (json_int_t)(st->seq + 1), "proposed_by", rc->key->name, "proposed_time",
	                 out->time, "expires", expires);
	if (!strcmp(rc->kind, "root.rotate")) {
		json_t *roots = rotated_roots(st->keys, rc->change);
		const char *name;
		if (sluice_trust__by_fp(st->keys, fp, &name) && sluice__jarray_has(roots, name))
			json_array_append_new(json_object_get(pend, "new_signers"),
			                      json_string(fp));
		json_decref(roots);
	}
	json_object_set_new(json_object_get(out->trust_after, "pending"), rc->id_out, pend);
	error = settle(repo, st, pend, out, rc);
	if (error == 0 && json_array_size(dropped))
		json_object_set(out->record, "dropped", dropped);
	json_decref(dropped);
	return error;
}

static int decide_sign(sluice_repo *repo, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	struct rchange *rc = arg;
	json_t *pending = json_object_get(st->trust, "pending"), *pend = NULL, *p, *e, *dropped;
	const char *id, *name = NULL;
	char fp[SLUICE_FP_LEN];
	int as_old = 0, as_new = 0, error;
	size_t n = 0;

	json_object_foreach(pending, id, p) if (!strncmp(id, rc->id, strlen(rc->id)))
	{
		n++;
		pend = p;
		snprintf(rc->id_out, sizeof(rc->id_out), "%s", id);
	}
	if (n != 1)
		return sluice_ctx__error(
		        repo->ctx, n ? SLUICE_EINVALID : SLUICE_ENOTFOUND,
		        n ? "'%s' names %zu pending root changes; give more of "
		            "the id"
		          : "no pending root change '%s%.0zu' (sluice root pending "
		            "lists them)",
		        rc->id, n);
	snprintf(rc->kind_buf, sizeof(rc->kind_buf), "%s",
	         sluice__jstr(json_object_get(pend, "kind")));
	rc->kind = rc->kind_buf;
	sluice_keys__fingerprint(fp, rc->key->pk);
	sluice_journal__now(st, out->time);
	e = sluice_trust__by_fp(st->keys, fp, &name);
	if (!e || sluice_trust__key_standing(repo->ctx, name, e, UINT64_MAX, out->time) < 0)
		return sluice_journal__deny(repo, out, "role",
		                            "key %s cannot sign root changes: %s", rc->key->name,
		                            e ? sluice_ctx_errmsg(repo->ctx) : "not registered");
	as_old = sluice_trust__has_role(e, "root");
	if (!strcmp(rc->kind, "root.rotate")) {
		json_t *roots = rotated_roots(st->keys, json_object_get(pend, "change"));
		as_new = sluice__jarray_has(roots, name);
		json_decref(roots);
	}
	if (!as_old && !as_new)
		return sluice_journal__deny(repo, out, "role",
		                            "key %s is not a root key%s, so its signature on root "
		                            "change %.12s would count for nothing",
		                            name,
		                            strcmp(rc->kind, "root.rotate") ? ""
		                                                            : " nor one this "
		                                                              "rotation makes root",
		                            rc->id_out);
	/* By the journal's time: a change nobody completed in time does not apply later. */
	if (pending_expired(pend, out->time)) {
		out->refusal = json_pack("{s:s,s:s}", "change", rc->id_out, "kind", rc->kind);
		return sluice_journal__deny(
		        repo, out, "root.expired",
		        "root change %.12s (%s, proposed by %s at %s) expired at %s, before this "
		        "signature; it will not apply (propose it again)",
		        rc->id_out, rc->kind, sluice__jstr(json_object_get(pend, "proposed_by")),
		        sluice__jstr(json_object_get(pend, "proposed_time")),
		        sluice__jstr(json_object_get(pend, "expires")));
	}
	out->trust_after = trust_copy(st);
	dropped = drop_expired(out->trust_after, out->time);
	pend = json_object_get(json_object_get(out->trust_after, "pending"), rc->id_out);
	if ((as_old && sluice__jarray_has(json_object_get(pend, "signers"), fp)) ||
	    (!as_old && sluice__jarray_has(json_object_get(pend, "new_signers"), fp))) {
		json_decref(dropped);
		return sluice_ctx__error(repo->ctx, SLUICE_EEXISTS,
		                         "key %s already signed root change %.12s; each key counts "
		                         "once",
		                         name, rc->id_out);
	}
	if (as_old)
		json_array_append_new(json_object_get(pend, "signers"), json_string(fp));
	if (as_new && !sluice__jarray_has(json_object_get(pend, "new_signers"), fp))
		json_array_append_new(json_object_get(pend, "new_signers"), json_string(fp));
	if ((error = settle(repo, st, pend, out, rc)) < 0) {
		json_decref(dropped);
		return error;
	}
	json_object_set_new(out->record, "signed_as",
	                    json_pack("{s:b,s:b}", "root", as_old, "new_root", as_new));
	if (json_array_size(dropped))
		json_object_set(out->record, "dropped", dropped);
	json_decref(dropped);
	return SLUICE_OK;
}

static int rchange_report(sluice_repo *repo, struct rchange *rc, char **report)
{
	json_t *rep = json_pack("{s:s,s:s,s:b,s:{s:i,s:i}}", "change", rc->id_out, "kind", rc->kind,
	                        "applied", rc->applied, "root_signatures", "have", rc->have_old,
	                        "need", rc->need_old);

	if (rc->need_new)
		json_object_set_new(
		        rep, "new_root_signatures",
		        json_pack("{s:i,s:i}", "have", rc->have_new, "need", rc->need_new));
	return sluice_repo__report(repo->ctx, report, rep);
}

/* A root key whose private half is here: signer if named, else the first. */
static int find_root_signer(sluice_repo *repo, const char **out, json_t *registry,
                            const char *signer)
{
	const char *name;
	json_t *e;

	*out = signer;
	if (signer)
		return SLUICE_OK;
	json_object_foreach(registry, name, e)
	{
		sluice_key k = {0};
		if (!sluice_trust__has_role(e, "root") || json_object_get(e, "revoked"))
			continue;
		if (sluice_keys__load(repo->ctx, &k, name) == SLUICE_OK) {
			sluice_key__dispose(&k);
			*out = name;
			return SLUICE_OK;
		}
	}
	return sluice_ctx__error(
	        repo->ctx, SLUICE_EDENIED,
	        "no root key of this repository is available in the keys directory; "
	        "registering a key needs a root key's signature (--signer NAME)");
}

/* Propose (and, with enough signatures, apply) a root change signed by signer. */
static int propose(sluice_repo *repo, const char *signer, const char *kind, json_t *change,
                   struct rchange *rc)
{
	sluice_key root = {0};
	int error;

	rc->kind = kind;
	rc->change = change;
	rc->ttl = repo->change_ttl;
	if (!signer) {
		json_t *registry = NULL;
		if ((error = sluice_journal__keys(repo, &registry)) < 0)
			return error;
		error = find_root_signer(repo, &signer, registry, NULL);
		json_decref(registry);
		if (error < 0)
			return error;
	}
	if ((error = sluice_repo__signing_key(repo, &root, signer, NULL)) < 0)
		return error;
	rc->key = &root;
	error = sluice_journal__transact(repo, NULL, &root, kind, decide_propose, rc);
	sluice_key__dispose(&root);
	return error;
}

int sluice_key_new(sluice_repo *repo, const char *name, const char *const *roles, size_t nroles,
                   const char *expires, const char *signer, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_key key = {0};
	struct rchange rc = {0};
	json_t *registry = NULL, *change = NULL, *e, *rolearr;
	sluice_buf pub = {0};
	char fp[SLUICE_FP_LEN];
	int error, created = 0, changed;

	if ((error = sluice_keys__check_name(ctx, name)) < 0)
		return error;
	for (size_t i = 0; i < nroles; i++) {
		size_t k = 0;
		while (sluice_keys__roles[k] && strcmp(roles[i], sluice_keys__roles[k]))
			k++;
		if (!sluice_keys__roles[k])
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "unknown role '%s' (roles: root, proposer, "
			                         "gate-runner, approver, operator, auditor)",
			                         roles[i]);
	}
	if (expires && (strlen(expires) != 20 || expires[4] != '-' || expires[10] != 'T' ||
	                expires[19] != 'Z'))
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "--expires wants a UTC time YYYY-MM-DDTHH:MM:SSZ, not '%s'", expires);
	if ((error = sluice_journal__keys(repo, &registry)) < 0)
		return error;
	if ((error = find_root_signer(repo, &signer, registry, signer)) < 0)
		goto done;
	error = sluice_keys__load(ctx, &key, name);
	if (error == SLUICE_ENOTFOUND) {
		if ((error = sluice_keys__generate(ctx, &key, name)) < 0)
			goto done;
		created = 1;
	}
	if (error < 0 || (error = sluice_keys__openssh_pub(ctx, key.pk, name, &pub)) < 0 ||
	    (error = sluice_buf__cstr(ctx, &pub)) < 0)
		goto done;
	sluice_keys__fingerprint(fp, key.pk);
	rolearr = json_array();
	for (size_t i = 0; i < nroles; i++)
		json_array_append_new(rolearr, json_string(roles[i]));
	change = json_pack("{s:s,s:s,s:s,s:o}", "name", name, "fingerprint", fp, "public_key",
	                   (const char *)pub.ptr, "roles", rolearr);
	if (expires)
		json_object_set_new(change, "expires", json_string(expires));
	/* Nothing new (the key holds these roles already): no journal entry. */
	e = json_object_get(registry, name);
	changed = !e || !!expires;
	for (size_t i = 0; e && i < nroles; i++)
		changed |= !sluice_trust__has_role(e, roles[i]);
	if (changed) {
		if ((error = propose(repo, signer, "key.add", change, &rc)) < 0)
			goto done;
	} else {
		rc.applied = 1;
		rc.after_key = json_incref(e);
	}
	error = sluice_repo__report(ctx, report,
	                            json_pack("{s:s,s:s,s:O,s:b,s:b,s:s?}", "name", name,
	                                      "fingerprint", fp, "roles",
	                                      rc.after_key ? json_object_get(rc.after_key, "roles")
	                                                   : json_object_get(change, "roles"),
	                                      "created", created, "applied", rc.applied, "pending",
	                                      rc.applied ? NULL : rc.id_out));
done:
	json_decref(rc.after_key);
	json_decref(change);
	json_decref(registry);
	sluice_buf__dispose(&pub);
	sluice_key__dispose(&key);
	return error;
}

int sluice_key_revoke(sluice_repo *repo, const char *name, const char *reason, const char *signer,
                      char **report)
{
	struct rchange rc = {0};
	json_t *change;
	int error;

	if (!reason || !*reason)
		return sluice_ctx__error(repo->ctx, SLUICE_EUSAGE,
		                         "revoking a key needs --reason TEXT: it is journaled");
	change = json_pack("{s:s,s:s}", "name", name, "reason", reason);
	error = propose(repo, signer, "key.revoke", change, &rc);
	json_decref(change);
	json_decref(rc.after_key);
	return error < 0 ? error : rchange_report(repo, &rc, report);
}

int sluice_root_rotate(sluice_repo *repo, const char *const *add, size_t nadd,
                       const char *const *remove, size_t nremove, unsigned threshold,
                       const char *signer, char **report)
{
	struct rchange rc = {0};
	json_t *change = json_pack("{s:[],s:[],s:i}", "add", "remove", "threshold", threshold);
	int error;

	for (size_t i = 0; i < nadd; i++)
		json_array_append_new(json_object_get(change, "add"), json_string(add[i]));
	for (size_t i = 0; i < nremove; i++)
		json_array_append_new(json_object_get(change, "remove"), json_string(remove[i]));
	error = propose(repo, signer, "root.rotate", change, &rc);
	json_decref(change);
	json_decref(rc.after_key);
	return error < 0 ? error : rchange_report(repo, &rc, report);
}

int sluice_role_threshold(sluice_repo *repo, const char *role, unsigned threshold,
                          const char *signer, char **report)
{
	struct rchange rc = {0};
	json_t *change =
	        json_pack("{s:s,s:i}", "role", role ? role : "", "threshold", (int)threshold);
	sluice_jstate st;
	int error;

	/* Checked before anything is journaled (and again when it applies). */
	if ((error = sluice_journal__read(repo, &st)) < 0)
		goto done;
	error = validate(repo, &st, "role.threshold", change);
	sluice_journal__dispose(&st);
	if (error < 0 || (error = propose(repo, signer, "role.threshold", change, &rc)) < 0)
		goto done;
	error = rchange_report(repo, &rc, report);
done:
	json_decref(change);
	json_decref(rc.after_key);
	return error;
}

int sluice_root_sign(sluice_repo *repo, const char *id, const char *keyname, char **report)
{
	struct rchange rc = {0};
	sluice_key key = {0};
	int error;

	if (!id || strlen(id) < 8 || strspn(id, "0123456789abcdef") != strlen(id))
		return sluice_ctx__error(repo->ctx, SLUICE_EUSAGE,
		                         "give at least 8 hex digits of the change's id (sluice "
		                         "root pending lists them)");
	rc.id = id;
	if ((error = sluice_repo__signing_key(repo, &key, keyname, NULL)) < 0)
		return error;
	rc.key = &key;
	error = sluice_journal__transact(repo, NULL, &key, "root.sign", decide_sign, &rc);
	sluice_key__dispose(&key);
	if (error == 0)
		error = rchange_report(repo, &rc, report);
	json_decref(rc.after_key);
	return error;
}

int sluice_root_pending(sluice_repo *repo, char **report)
{
	sluice_jstate st;
	json_t *arr = json_array(), *p;
	const char *id;
	char now[32];
	int error;

	if ((error = sluice_journal__read(repo, &st)) < 0) {
		json_decref(arr);
		return error;
	}
	/*
	 * Expired by the clock now, or already by the journal's newest time
	 * (which is what sluice root sign will be compared with, or later).
	 */
	sluice_journal__now(&st, now);
	json_object_foreach(json_object_get(st.trust, "pending"), id, p)
	{
		struct rchange rc = {0};
		json_t *item = json_deep_copy(json_object_get(p, "change"));
		complete(&st, p, &rc);
		json_object_del(item, "text");
		json_array_append_new(
		        arr,
		        json_pack("{s:s,s:O,s:o,s:O,s:{s:i,s:i},s:{s:i,s:i},s:O?,s:O?,s:b}",
		                  "change", id, "kind", json_object_get(p, "kind"), "what", item,
		                  "proposed_by", json_object_get(p, "proposed_by"),
		                  "root_signatures", "have", rc.have_old, "need", rc.need_old,
		                  "new_root_signatures", "have", rc.have_new, "need", rc.need_new,
		                  "proposed_time", json_object_get(p, "proposed_time"), "expires",
		                  json_object_get(p, "expires"), "expired",
		                  pending_expired(p, now)));
	}
	{
		json_t *th =
		        json_pack("{s:i,s:i,s:i,s:i}", "root", sluice_trust__root_threshold(&st),
		                  "proposer", sluice_trust__role_threshold(&st, "proposer"),
		                  "gate-runner", sluice_trust__role_threshold(&st, "gate-runner"),
		                  "operator", sluice_trust__role_threshold(&st, "operator"));
		error = sluice_repo__report(
		        repo->ctx, report,
		        json_pack("{s:o,s:i,s:o}", "pending", arr, "root_threshold",
		                  sluice_trust__root_threshold(&st), "thresholds", th));
	}
	sluice_journal__dispose(&st);
	return error;
}

int sluice_policy_set(sluice_repo *repo, const char *path, const char *signer, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	struct rchange rc = {0};
	unsigned char *data = NULL, h[SLUICE_B2_LEN];
	size_t len = 0;
	json_t *policy = NULL, *change = NULL, *text;
	sluice_jstate st;
	char digest[65];
	unsigned version = 0;
	int error;

	if ((error = sluice_io__read_file(ctx, &data, &len, path, 1u << 20)) < 0)
		return error;
	/* Parsed and checked before anything is journaled; the exact bytes are kept. */
	if ((error = sluice_policy__parse(ctx, &policy, data, len, path)) < 0)
		goto done;
	if (!(text = json_stringn((const char *)data, len))) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: a policy must be UTF-8 text without NUL bytes",
		                          path);
		goto done;
	}
	sluice__b2(h, data, len);
	sluice__hex(digest, h, SLUICE_B2_LEN);
	if ((error = sluice_journal__read(repo, &st)) < 0) {
		json_decref(text);
		goto done;
	}
	version = (unsigned)json_integer_value(
	                  json_object_get(json_object_get(st.trust, "policy"), "version")) +
	          1;
	sluice_journal__dispose(&st);
	change = json_pack("{s:i,s:s,s:o}", "version", version, "digest", digest, "text", text);
	if ((error = propose(repo, signer, "policy.set", change, &rc)) < 0)
		goto done;
	{
		json_t *rep = json_pack("{s:s,s:s,s:i,s:s,s:b,s:{s:i,s:i}}", "change", rc.id_out,
		                        "kind", "policy.set", "version", version, "digest", digest,
		                        "applied", rc.applied, "root_signatures", "have",
		                        rc.have_old, "need", rc.need_old);
		error = sluice_repo__report(ctx, report, rep);
	}
done:
	json_decref(rc.after_key);
	json_decref(change);
	json_decref(policy);
	free(data);
	return error;
}

int sluice_policy_show(sluice_repo *repo, unsigned version, char **text, char **report)
{
	sluice_jstate st;
	json_t *p;
	git_tree *t = NULL;
	const git_tree_entry *te;
	sluice_buf buf = {0};
	unsigned char h[SLUICE_B2_LEN];
	char file[48], digest[65];
	unsigned cur;
	int error;

	if ((error = sluice_journal__read(repo, &st)) < 0)
		return error;
	p = json_object_get(st.trust, "policy");
	cur = (unsigned)json_integer_value(json_object_get(p, "version"));
	if (!cur) {
		error = sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND,
		                          "no policy was set in this repository (sluice policy set "
		                          "FILE); the gate configuration of init applies");
		goto done;
	}
	if (!version)
		version = cur;
	snprintf(file, sizeof(file), "v%u.yaml", version);
	if (version > cur || git_tree_lookup(&t, repo->git, &st.policies) < 0 ||
	    !(te = git_tree_entry_byname(t, file))) {
		error = sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND,
		                          "no policy version %u (versions 1 to %u exist)", version,
		                          cur);
		goto done;
	}
	if ((error = sluice_repo__read_blob(repo, &buf, git_tree_entry_id(te), file)) < 0 ||
	    (error = sluice_buf__cstr(repo->ctx, &buf)) < 0)
		goto done;
	sluice__b2(h, buf.ptr, buf.len);
	sluice__hex(digest, h, SLUICE_B2_LEN);
	if (report && (error = sluice_repo__report(repo->ctx, report,
	                                           json_pack("{s:i,s:i,s:s,s:b,s:s}", "version",
	                                                     version, "latest", cur, "digest",
	                                                     digest, "in_effect", version == cur,
	                                                     "text", (const char *)buf.ptr))) < 0)
		goto done;
	if (text) {
		*text = (char *)buf.ptr;
		buf.ptr = NULL;
	}
done:
	sluice_buf__dispose(&buf);
	git_tree_free(t);
	sluice_journal__dispose(&st);
	return error;
}

int sluice_trust__entry_authorised(const sluice_jstate *prev, json_t *rec, const char *signer_fp)
{
	const char *action = sluice__jstr(json_object_get(rec, "action")), *name = NULL;
	json_t *pend, *e = sluice_trust__by_fp(prev->keys, signer_fp, &name), *roots;
	struct rchange rc = {0};
	int ok;

	if (!json_is_true(json_object_get(rec, "applied")) || !e)
		return 0;
	if (!strcmp(action, "root.sign")) {
		pend = json_deep_copy(
		        json_object_get(json_object_get(prev->trust, "pending"),
		                        sluice__jstr(json_object_get(rec, "change"))));
		if (!pend)
			return 0;
		/* A signature after the change expired applies nothing. */
		if (pending_expired(pend, sluice__jstr(json_object_get(rec, "time")))) {
			json_decref(pend);
			return 0;
		}
	} else if (!strcmp(action, "key.add") || !strcmp(action, "key.revoke") ||
	           !strcmp(action, "root.rotate") || !strcmp(action, "policy.set") ||
	           !strcmp(action, "role.threshold")) {
		/* Applied as proposed: the record holds the change (a policy's text aside). */
		pend = json_pack("{s:s,s:O,s:[],s:[]}", "kind", action, "change", rec, "signers",
		                 "new_signers");
	} else {
		return 0;
	}
	roots = rotated_roots(prev->keys, json_object_get(pend, "change"));
	if (sluice_trust__has_role(e, "root") && !json_object_get(e, "revoked") &&
	    !sluice__jarray_has(json_object_get(pend, "signers"), signer_fp))
		json_array_append_new(json_object_get(pend, "signers"), json_string(signer_fp));
	if (!strcmp(sluice__jstr(json_object_get(pend, "kind")), "root.rotate") &&
	    sluice__jarray_has(roots, name) &&
	    !sluice__jarray_has(json_object_get(pend, "new_signers"), signer_fp))
		json_array_append_new(json_object_get(pend, "new_signers"), json_string(signer_fp));
	ok = complete(prev, pend, &rc);
	json_decref(roots);
	json_decref(pend);
	return ok;
}
