/*
 * core/repo.h - the repository handle's insides and the journal, shared by
 * the modules that build versions, check them out and verify them.
 */
#ifndef SLUICE_CORE_REPO_H
#define SLUICE_CORE_REPO_H

#include "internal.h"
#include "chunkstore.h"
#include "keys.h"
#include "sluice/repo.h"

#include <git2.h>
#include <jansson.h>
#include <string.h>

#define SLUICE_JOURNAL_REF "refs/sluice/journal"
/* channels.json's format (docs/format.md); 1 is still read (core/journal.c). */
#define SLUICE_CHANNELS_FORMAT 2

struct sluice_jstate_s;
struct sluice_repo {
	sluice_ctx *ctx;
	char *path; /* the bare git directory */
	char *sdir; /* path/sluice */
	git_repository *git;
	sluice_chunkstore *cs; /* opened on first use */
	sluice_progress_cb progress;
	void *progress_data;
	sluice_progress_cb item_progress; /* counts, not bytes (evaluation) */
	void *item_progress_data;
	struct sluice_jindex *jindex;   /* the journal's LMDB index, opened on first use */
	long long change_ttl;           /* root changes proposed here expire after it (0: 7 days) */
	struct sluice_stage *stage;     /* core/stage.c: held object writes; owned by the odb */
	struct sluice_jstate_s *jcache; /* core/journal.c: the state at one entry, parsed once */
	struct sluice_tlog_memo *tmemo; /* audit/tlog_journal.c: the Merkle tree at one entry */
};

/*
 * core/stage.c. Between begin and commit (or abort), every object written
 * through repo->git is held in memory (and readable) instead of written.
 * commit writes them as loose objects, named at once, and makes them
 * durable in one round of concurrent fsyncs (the files, the objects the
 * entry names that already existed, their directories and objects/) and
 * returns once all are durable; abort drops them. Either ends the stage.
 * also_fd, unless -1, is fsynced in the same round (also_what names it in
 * errors); it stays open. Nothing may name the objects (the journal ref)
 * before commit returns.
 */
int sluice_stage__begin(sluice_repo *repo);
/*
 * A blob: into the open stage, by its hash, without git_odb_write's
 * existence queries (which, for an object no backend holds, rescan
 * objects/pack/ and ask again); an existing good loose copy is kept as it
 * is (be_freshen's rule). With no stage open, git_odb_write.
 * Returns 0, SLUICE_ENOMEM, or a libgit2 error as a sluice one.
 */
int sluice_stage__blob(sluice_repo *repo, git_oid *out, const void *data, size_t len);
/*
 * An object the journal head already names (an unchanged document of the
 * entry before): known to the open stage by its type and size, so the tree
 * builder's check of it reads nothing, and neither written, checked nor
 * fsynced, since every object reachable from the journal head was durable
 * before the head moved to it. Nothing without an open stage.
 */
int sluice_stage__reached(sluice_repo *repo, const git_oid *id, git_object_t type, size_t len);
/* The same for an object of any type (the journal's tree, a signed commit); git_odb_write when no
 * stage is open. */
int sluice_stage__object(sluice_repo *repo, git_oid *out, const void *data, size_t len,
                         git_object_t type);
/*
 * tb's tree, serialised here in git's format and order and staged by
 * sluice_stage__object: git_treebuilder_write would go through
 * git_odb_write's existence queries.
 */
int sluice_stage__tree(sluice_repo *repo, git_oid *out, git_treebuilder *tb);
/* tb's entries in git's order (valid until tb changes): *out is freed by the caller. */
int sluice_stage__tree_entries(sluice_repo *repo, git_treebuilder *tb, const git_tree_entry ***out,
                               size_t *n);
int sluice_stage__commit(sluice_repo *repo, int also_fd, const char *also_what);
void sluice_stage__abort(sluice_repo *repo);

/* The chunk store, opened on first use. */
int sluice_repo__chunks(sluice_repo *repo, sluice_chunkstore **out);

/* The JSON text of a value, compact with sorted keys, into a new string. */
int sluice_repo__dump(sluice_ctx *ctx, char **out, const json_t *v);
/* Write a JSON report for the caller (no-op when out is NULL). Steals v. */
int sluice_repo__report(sluice_ctx *ctx, char **out, json_t *v);
/* Parse a blob's bytes as JSON, naming what in errors. */
int sluice_repo__parse_json(sluice_ctx *ctx, json_t **out, const void *data, size_t len,
                            const char *what);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void sluice_repo__now(char out[32]);

/*
 * Create a commit signed with key (SSHSIG, namespace "git", in gpgsig).
 * The author and committer are "<key name> <fingerprint>". Inside an open
 * stage the commit is staged with the entry's other objects.
 */
int sluice_repo__signed_commit(sluice_repo *repo, git_oid *out, const sluice_key *key,
                               const char *message, const git_oid *tree, const git_oid *parents,
                               size_t nparents);
/*
 * out += content (len bytes and a NUL, a commit without signature) with sig (the
 * armoured signature, no final newline) as its gpgsig header, laid out as
 * git_commit_create_with_signature lays it out: after the header's last
 * line, each line of sig after the first prefixed by a space.
 */
int sluice_repo__commit_with_signature(sluice_ctx *ctx, sluice_buf *out, const char *content,
                                       size_t len, const char *sig);

/*
 * Check a commit's SSHSIG against the keys registry (a "keys" object of the
 * journal, name -> entry). On success *signer_name (may be NULL) receives
 * the borrowed name of the key in registry. SLUICE_EDENIED for an unsigned
 * commit, a bad signature or an unknown key; role (may be NULL) must be one
 * of the key's roles.
 */
int sluice_repo__check_commit_sig(sluice_repo *repo, const git_oid *id, json_t *registry,
                                  const char *role, const char **signer_name);
/*
 * The same for a signature that sits at journal position at_seq: a key
 * revoked by entry R counts only when at_seq < R (UINT64_MAX: now, so any
 * revocation refuses; 0: revocation ignored, for refusal entries).
 */
int sluice_repo__check_commit_sig_at(sluice_repo *repo, const git_oid *id, json_t *registry,
                                     const char *role, uint64_t at_seq, const char **signer_name);

/* ---- the journal (core/journal.c) ------------------------------------ */

/* The journal's state at one entry: what every action decides against. */
typedef struct sluice_jstate_s {
	git_oid head; /* the entry (valid when exists) */
	int exists;
	json_t *keys;     /* registry: name -> {fingerprint, public_key, roles} */
	json_t *channels; /* name -> {head, previous?, anchor?, ...} (core/channel.c) */
	git_oid suites;   /* the suites/ tree of the journal (valid when has_suites) */
	int has_suites;
	json_t *config; /* config.json's "config" (the gate configuration), or NULL */
	uint64_t seq;   /* entries up to and including head */
	/*
	 * trust.json's "trust" (core/trust.c): {"thresholds": {"root": n},
	 * "pending": {id: root change}, "policy": {"version", "digest", "seq"}};
	 * {} for a journal written before it existed.
	 */
	json_t *trust;
	git_oid policies; /* the policies/ tree: v1.yaml, v2.yaml, ... (valid when has_policies) */
	int has_policies;
	/*
	 * The head entry's time ("YYYY-MM-DDTHH:MM:SSZ", the record's "time";
	 * "" without a journal): the next entry may not be dated before it.
	 */
	char time[32];
	/*
	 * The blobs of keys.json, config.json and trust.json at head, where
	 * known (the SLUICE_JDOC_* bits of docs): read from the entry's tree, or
	 * kept from the commit that wrote it. The next entry names a document it
	 * does not change by that blob instead of serialising, hashing, checking
	 * and fsyncing it again; the blob is durable already, being reachable
	 * from the durable journal head.
	 */
	git_oid keys_blob, config_blob, trust_blob;
	size_t keys_len, config_len, trust_len;
	unsigned docs;
} sluice_jstate;

#define SLUICE_JDOC_KEYS 1u
#define SLUICE_JDOC_CONFIG 2u
#define SLUICE_JDOC_TRUST 4u

/* Journal head; *exists = 0 for a repository without one. */
int sluice_journal__head(sluice_repo *repo, git_oid *out, int *exists);

/* Read the state at the head (an empty state when there is no journal). */
int sluice_journal__read(sluice_repo *repo, sluice_jstate *out);
/* Read the state at one journal entry. */
int sluice_journal__read_at(sluice_repo *repo, const git_oid *entry, sluice_jstate *out);
void sluice_journal__dispose(sluice_jstate *st);
/*
 * The repository handle keeps the state at one entry, the last one read or
 * written, so an action and the index sync and mirror after it do not read
 * and parse the same files again (an entry is immutable: its id names its
 * state for good). The documents of a state read_at hands out, and what
 * channels_shared hands out, may be shared with it: read-only (deep-copy to
 * change); keys_at and channels_at hand out the caller's own. With
 * SLUICE_CHECK_STATE_CACHE=1 in the environment (set for every test) each
 * use of it is checked against a fresh parse, and a difference aborts.
 */
void sluice_journal__cache_free(sluice_repo *repo);

/* The keys registry object at a journal commit (new reference). */
int sluice_journal__keys_at(sluice_repo *repo, json_t **out, const git_oid *entry);
/* The keys registry at the head. */
int sluice_journal__keys(sluice_repo *repo, json_t **out);
/* The channels object at a journal commit (new reference; {} if none). */
int sluice_journal__channels_at(sluice_repo *repo, json_t **out, const git_oid *entry);
/* The same, possibly shared with the state cache: read-only. */
int sluice_journal__channels_shared(sluice_repo *repo, json_t **out, const git_oid *entry);

/*
 * The gate configuration in effect at the head (new reference): the
 * journal's config.json, or the default configuration (docs/gates.md) when
 * the journal has none. *digest (may be NULL) receives the BLAKE2b-256 hex
 * of its canonical JSON (compact, sorted keys), which verdicts and
 * promotions record.
 */
int sluice_journal__config(sluice_repo *repo, const sluice_jstate *st, json_t **out,
                           char digest[65]);

/*
 * The default gate configuration (new reference; gates/config.c); with
 * set, its required gates are replaced by required[0..nrequired)
 * (checked: known names, no repeats; none at all is allowed).
 */
int sluice_gates__default_config(sluice_ctx *ctx, json_t **out, const char *const *required,
                                 size_t nrequired, int set);

/*
 * The BLAKE2b-256 hex of a gate configuration's canonical JSON (compact,
 * sorted keys): what verdicts and promotions record (gates/config.c).
 */
int sluice_gates__config_digest(sluice_ctx *ctx, json_t *config, char digest[65]);

/* 1 for "regression", "safety", "poisoning" (gates/config.c). */
int sluice_gates__is_gate(const char *name);

/*
 * 1 and the closed range [*lo, *hi] when gate's threshold key has one
 * narrower than its sign (shares 0..1, switches 0..1, bounded counts);
 * 0 for a key checked by sign alone (gates/config.c).
 */
int sluice_gates__threshold_range(const char *gate, const char *key, double *lo, double *hi);

/*
 * Merge thresholds given as JSON text over config (in place): every key
 * must exist in config with a number of the same sign, an integer where
 * the default is one, within the key's range if it has one
 * (sluice_gates__threshold_range); "alpha" in (0, 0.5). SLUICE_EINVALID
 * naming name and the key otherwise.
 */
int sluice_gates__merge_config(sluice_ctx *ctx, json_t *config, const char *text, const char *name);

/*
 * The role a journal action's signer must hold ("" for any registered
 * key), or NULL for an action sluice does not know: the one list of
 * actions, for verify and the audit queries.
 */
const char *sluice_journal__role_for(const char *action);

/* 1 for the actions that move a channel's head: promote, rollback, reset. */
int sluice_journal__is_move(const char *action);

/* Read the record.json of a journal entry (new reference). */
int sluice_journal__record(sluice_repo *repo, json_t **out, const git_oid *entry);
/*
 * The member object of a parsed state file of an entry (keys.json "keys",
 * channels.json "channels", trust.json "trust"; doc is borrowed, *out a
 * new reference): SLUICE_ECORRUPT when it is not an object. channels.json
 * of format 1 is read as format 2; another format is refused.
 */
int sluice_journal__member(sluice_ctx *ctx, json_t **out, json_t *doc, const char *file,
                           const char *member);
/* channels.json at entry as written, format and all (NULL when absent); verify reads it. */
int sluice_journal__channels_raw(sluice_repo *repo, json_t **out, const git_oid *entry);

/*
 * What an action decides, given the state it will be committed on top of:
 * the record ("action", "actor", "time" and "seq" are added) and what
 * changes. NULL / has_* = 0 mean unchanged. References are owned by the
 * change (released by sluice_journal__change_dispose).
 */
typedef struct {
	json_t *record;
	json_t *keys_after;
	json_t *channels_after;
	git_oid extra_parent; /* a version commit the entry brings into the history */
	int has_extra;
	git_oid suites_after; /* the suites/ tree of the journal */
	int has_suites;
	json_t *config_after; /* the gate configuration */
	json_t *trust_after;  /* trust.json's "trust" */
	git_oid policies_after;
	int has_policies;
	/*
	 * Set by a decide function that returns SLUICE_EDENIED for a rule
	 * (e.g. "approvals.threshold"): transact then journals the refusal as
	 * a "refuse" entry naming the rule, signed by the actor, and returns
	 * the refusal. refusal (may be NULL) adds context to its record.
	 */
	char rule[64];
	json_t *refusal;
	/*
	 * The entry's time. A decide function that compares times sets it to
	 * the time it decided at (so what it stored, e.g. an approval's start
	 * of validity, is exactly the entry's time); "" means the local clock
	 * at commit. The commit refuses a time before the head entry's (the
	 * journal's times never go backwards) or ahead of the local clock.
	 */
	char time[32];
} sluice_jchange;

void sluice_journal__change_dispose(sluice_jchange *ch);

/*
 * How far the journal's newest entry may be ahead of this host's clock (it
 * was written by a host whose clock runs ahead, and pulled) before an append
 * here is refused as a broken clock.
 */
#define SLUICE_CLOCK_SKEW 300

/*
 * The time a decision made now is dated at: this host's clock, or the
 * journal's newest entry's time when the clock is behind it, so journal
 * times never go backwards. Decide functions date their changes with it.
 */
void sluice_journal__now(const sluice_jstate *st, char out[32]);

/* Decide an action against st; returning an error aborts it. */
typedef int (*sluice_journal_decide)(sluice_repo *repo, const sluice_jstate *st, void *arg,
                                     sluice_jchange *out);

/*
 * Run one action: read the state, decide, write the signed entry and move
 * refs/sluice/journal by compare-and-swap from the head that was read.
 * When another process moved the journal first, the state is read again
 * and the action decided again (so a decision is always checked against
 * exactly the state it lands on), up to a few times; then SLUICE_ECONFLICT.
 * After the commit point, the channel mirror refs are brought up to date
 * (a failure there does not fail the action: they are derived and
 * repaired by the next sync or by reindex). The derived journal index is
 * not: the next command that reads it catches it up first.
 */
int sluice_journal__transact(sluice_repo *repo, git_oid *out, const sluice_key *signer,
                             const char *action, sluice_journal_decide decide, void *arg);

/*
 * Write one entry on top of st (no retry): the building block of
 * transact, and of init (st with exists = 0). Takes ch's record.
 */
int sluice_journal__commit(sluice_repo *repo, git_oid *out, const sluice_key *signer,
                           const char *action, const sluice_jstate *st, sluice_jchange *ch);

/*
 * SLUICE_EDENIED unless key is in st's key registry with role (NULL: any
 * role), not revoked and not expired (name in message) at the time an
 * entry written now is dated at (sluice_journal__now): a host clock behind
 * the journal cannot bring an expired key back.
 */
int sluice_journal__check_role(sluice_repo *repo, const sluice_jstate *st, const sluice_key *key,
                               const char *role);

/* Deny with a journaled rule: sets ch->rule and returns the error. */
int sluice_journal__deny(sluice_repo *repo, sluice_jchange *ch, const char *rule, const char *fmt,
                         ...) SLUICE_PRINTF(4, 5);

/*
 * Journal a refusal decided outside a transaction (e.g. a role checked
 * before a long run): a "refuse" entry naming rule, signed by signer, with
 * context (may be NULL) in its record. Returns SLUICE_EDENIED with the
 * message (and " [rule RULE]"), or an error reading the journal; a key
 * that is not registered is refused without an entry, as in transact.
 */
int sluice_journal__refuse(sluice_repo *repo, const sluice_key *signer, const char *action,
                           const char *rule, json_t *context, const char *fmt, ...)
        SLUICE_PRINTF(6, 7);

/*
 * Take the journal writers' exclusive lock (sluice/journal.flock of the
 * git directory; clears a refs/sluice/journal.lock a killed sluice writer
 * left, never git's: core/journal.c says how it tells them apart). Writers
 * that move refs/sluice/journal outside sluice_journal__transact (sluice
 * pull, a push to a remote on a path) hold it around their
 * compare-and-swap. Release with sluice_journal__unlock(*fd), after the
 * journal.lock they may have made is gone.
 */
int sluice_journal__lock(sluice_repo *repo, int *fd);
int sluice_journal__lock_at(sluice_ctx *ctx, const char *gitdir, int *fd);
void sluice_journal__unlock(int fd);

/* Bring the derived journal index and channel mirror refs up to date. */
int sluice_journal__sync_index(sluice_repo *repo);

/* A keys-registry entry {fingerprint, public_key, roles} for k (new reference). */
int sluice_repo__key_entry(sluice_ctx *ctx, json_t **out, const sluice_key *k,
                           const char *const *roles, size_t nroles);

/* Load key NAME and check it is registered with role; the key is filled. */
int sluice_repo__signing_key(sluice_repo *repo, sluice_key *out, const char *name,
                             const char *role);

/* A blob's contents. */
int sluice_repo__read_blob(sluice_repo *repo, sluice_buf *out, const git_oid *id, const char *what);

/* ---- trust: root thresholds, root changes, revocation, policy versions (core/trust.c) -- */

/*
 * Whether a journal entry (its record rec, signed by signer_fp) was
 * entitled to change keys, thresholds or the policy from the state prev
 * before it: a root change whose signatures, with this entry's, reach the
 * thresholds (rotation: old and new). For sluice verify; 1 yes, 0 no.
 */
int sluice_trust__entry_authorised(const sluice_jstate *prev, json_t *rec, const char *signer_fp);

/* The root threshold in st (1 when unset). */
unsigned sluice_trust__root_threshold(const sluice_jstate *st);
/*
 * The threshold of role (proposer, gate-runner, operator) in st: how many
 * distinct keys of it an action needs (1 when unset; root changes only,
 * sluice_role_threshold).
 */
unsigned sluice_trust__role_threshold(const sluice_jstate *st, const char *role);
/*
 * A registry entry's standing at journal position at_seq and time now
 * ("YYYY-MM-DDTHH:MM:SSZ", NULL: not checked): SLUICE_EDENIED naming the
 * key when it was revoked at or before at_seq or expired before now.
 */
int sluice_trust__key_standing(sluice_ctx *ctx, const char *name, json_t *entry, uint64_t at_seq,
                               const char *now);
/* 1 if the registry entry holds role. */
int sluice_trust__has_role(json_t *entry, const char *role);
/* The registry entry (borrowed) and name whose fingerprint is fp, or NULL. */
json_t *sluice_trust__by_fp(json_t *registry, const char *fp, const char **name);
/*
 * The policy in effect at st, parsed (new reference), with its digest and
 * version; *out = NULL (digest "", version 0) when no policy was set.
 */
int sluice_journal__policy(sluice_repo *repo, const sluice_jstate *st, json_t **out,
                           char digest[65], unsigned *version);
/*
 * The gate configuration for channel at st (new reference): the policy's
 * rules for it when a policy is in effect, else sluice_journal__config.
 * policy_digest (may be NULL) receives the policy's digest ("" for none).
 */
int sluice_journal__config_for(sluice_repo *repo, const sluice_jstate *st, const char *channel,
                               json_t **out, char digest[65], char policy_digest[65]);
/* The same under an already parsed policy (NULL: none), so a decision parses it once. */
int sluice_journal__config_under(sluice_repo *repo, const sluice_jstate *st, json_t *policy,
                                 const char *channel, json_t **out, char digest[65]);

/* The roles a key may hold, NULL-terminated (core/keyring.c). */
extern const char *const sluice_keys__roles[];

/*
 * 1 if name is a valid channel name: 1-64 of A-Z a-z 0-9 . _ -, not
 * starting with '.' or '-', no "..", not ending ".lock" (channel names are
 * git ref components: refs/sluice/channels/NAME). core/channel.c.
 */
int sluice_channel__name_ok(const char *name);

/* json_string_value, or "" when v is not a string. */
static inline const char *sluice__jstr(const json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

/* 1 if the JSON array arr holds the string s. */
static inline int sluice__jarray_has(const json_t *arr, const char *s)
{
	size_t i;

	for (i = 0; i < json_array_size(arr); i++)
		if (!strcmp(sluice__jstr(json_array_get(arr, i)), s))
			return 1;
	return 0;
}

#endif
