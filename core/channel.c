/*
 * core/channel.c - promote, rollback, reset, history and status.
 *
 * Each move is decided inside a journal transaction against the exact
 * state it is committed on (core/journal.c), so concurrent moves end in
 * one of their serial orders and a decision is never made on stale heads.
 * A channel's entry in the journal's channels.json (format 2):
 *   {"head": id|null, "previous": the head before it (what a rollback
 *    returns to by default), "anchor", "moved_seq", "verdicts", ...}
 * Which versions a channel held and which stand withdrawn from it are not
 * kept there (format 1 did, as lists that grew with every move and were
 * stored whole in every entry): the move records say it, and the journal
 * index answers it at the entry decided on (sluice_jindex__held).
 */
#include "../hooks/hooks.h"
#include "enforce.h"
#include "jindex.h"
#include "repo.h"
#include "version.h"

#include "sluice/channel.h"

#include <stdio.h>
#include <string.h>

int sluice_channel__name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n >= 1 && n <= 64 && name[0] != '.' && name[0] != '-' &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	               n &&
	       !(n >= 5 && !strcmp(name + n - 5, ".lock")) && !strstr(name, "..");
}

static int check_channel_name(sluice_ctx *ctx, const char *name)
{
	if (sluice_channel__name_ok(name))
		return SLUICE_OK;
	return sluice_ctx__error(ctx, SLUICE_EINVALID,
	                         "refusing channel name '%s': use 1-64 of A-Z a-z 0-9 . _ -, "
	                         "not starting with '.' or '-'",
	                         name ? name : "");
}

/*
 * A version may reach a channel only if the journal holds it (the entry
 * that proposed it is in the journal's history) and its signature is by a
 * key with the proposer role in the current registry, not revoked before
 * the entry that proposed it.
 */
static int check_version(sluice_repo *repo, const sluice_jstate *st, const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];
	uint64_t seq = 0;
	int error, found = 0;

	git_oid_tostr(hex, sizeof(hex), id);
	/* The index is synced to the journal's head first (writers hold the journal lock). */
	if ((error = sluice_jindex__version_seq(repo, id, &found, &seq)) < 0)
		return error;
	if (!st->exists || !found)
		return sluice_ctx__error(repo->ctx, SLUICE_EDENIED,
		                         "%.12s was never proposed in this repository's journal",
		                         hex);
	/* A proposer revoked later: what it signed before the revocation still counts. */
	if ((error = sluice_repo__check_commit_sig_at(repo, id, st->keys, "proposer", seq, NULL)) <
	    0)
		return sluice_ctx__wrap(repo->ctx, error, "refusing %.12s", hex);
	return SLUICE_OK;
}

/* Every version from head (exclusive) up to id along first parents is checked. */
static int check_path(sluice_repo *repo, const sluice_jstate *st, const git_oid *id,
                      const git_oid *head)
{
	git_oid cur = *id;
	int error;

	for (;;) {
		git_commit *c = NULL;
		if (head && git_oid_equal(&cur, head))
			return SLUICE_OK;
		if ((error = check_version(repo, st, &cur)) < 0)
			return error;
		if (git_commit_lookup(&c, repo->git, &cur) < 0)
			return sluice_ctx__giterror(repo->ctx, -1, "cannot read a version");
		if (git_commit_parentcount(c) == 0) {
			git_commit_free(c);
			return SLUICE_OK;
		}
		cur = *git_commit_parent_id(c, 0);
		git_commit_free(c);
		if (!head)
			return SLUICE_OK; /* an empty channel: the target itself is enough */
	}
}

static json_t *channel_entry(json_t *channels, const char *name)
{
	json_t *c = json_object_get(channels, name);

	if (!c) {
		c = json_pack("{s:n}", "head");
		json_object_set_new(channels, name, c);
	}
	return c;
}

/*
 * The channels after a move, to be changed for one channel: a new top
 * object sharing the other channels' entries with the state (read-only
 * there, core/repo.h), and a copy of the moved one.
 */
static json_t *channels_for_move(json_t *channels, const char *name)
{
	json_t *out = json_copy(channels), *c = json_object_get(channels, name);

	if (out && c)
		json_object_set_new(out, name, json_deep_copy(c));
	return out;
}

/* The head moves to hex; the one it leaves is where a rollback returns. */
static void set_head(json_t *c, const char *hex)
{
	json_t *old = json_object_get(c, "head");

	if (json_is_string(old))
		json_object_set(c, "previous", old);
	else
		json_object_del(c, "previous");
	json_object_set_new(c, "head", json_string(hex));
}

/* Resolve a REF to a version id: a channel's name means its head. */
static int resolve(sluice_repo *repo, const sluice_jstate *st, git_oid *out, const char *ref)
{
	json_t *c = json_object_get(st->channels, ref);
	git_object *obj = NULL, *peeled = NULL;
	int error;

	if (c && json_is_string(json_object_get(c, "head")))
		return git_oid_fromstr(out, json_string_value(json_object_get(c, "head"))) < 0
		               ? sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT,
		                                   "channel %s has a malformed head", ref)
		               : SLUICE_OK;
	if ((error = git_revparse_single(&obj, repo->git, ref)) < 0)
		return sluice_ctx__giterror(repo->ctx,
		                            error == GIT_ENOTFOUND ? GIT_ENOTFOUND : error,
		                            "no version or channel '%s'", ref);
	if ((error = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT)) < 0)
		error = sluice_ctx__giterror(repo->ctx, GIT_ENOTFOUND, "'%s' is not a version",
		                             ref);
	else
		*out = *git_object_id(peeled);
	git_object_free(peeled);
	git_object_free(obj);
	return error;
}

/*
 * What the policy asks of a promotion (policies/enforce.c): the first
 * rule not met refuses it, and the refusal is journaled naming the rule.
 * *used receives what let it in, for the move's record.
 */
static int check_rules(sluice_repo *repo, const sluice_jstate *st, json_t *c, const char *channel,
                       const char *to, const char *head, json_t **used, sluice_jchange *out)
{
	json_t *checks = json_array(), *e;
	size_t i;
	int error;

	*used = json_object();
	if ((error = sluice_policy__evaluate(repo, st, c, channel, to, head, checks, *used)) < 0)
		goto done;
	json_array_foreach(checks, i, e)
	{
		if (json_is_true(json_object_get(e, "ok")))
			continue;
		out->refusal =
		        json_pack("{s:s,s:s,s:s}", "channel", channel, "to", to, "from", head);
		error = sluice_journal__deny(repo, out,
		                             json_string_value(json_object_get(e, "rule")),
		                             "refusing to move %s to %.12s: %s", channel, to,
		                             sluice__jstr(json_object_get(e, "detail")));
		break;
	}
done:
	json_decref(checks);
	return error;
}

/* Verdicts and approvals given against another head are void once the head moves. */
static void prune_verdicts(json_t *c)
{
	sluice_policy__prune(c);
	json_t *v = json_object_get(c, "verdicts"), *e;
	const char *head = sluice__jstr(json_object_get(c, "head")), *cand;
	void *tmp;

	json_object_foreach_safe(v, tmp, cand,
	                         e) if (strcmp(sluice__jstr(json_object_get(e, "head")), head))
	        json_object_del(v, cand);
}

typedef enum { MOVE_PROMOTE, MOVE_ROLLBACK, MOVE_RESET, MOVE_ANCHOR, MOVE_RESET_SIGN } move_kind;

struct move {
	move_kind kind;
	const sluice_key *key;
	const char *channel;
	const char *ref;    /* target (promote, reset, rollback --to) or NULL */
	const char *reason; /* rollback, reset; promote's override */
	char from[GIT_OID_HEXSZ + 1], to[GIT_OID_HEXSZ + 1];
};

/*
 * Operators who signed resetting channel c to `to` from its current head
 * after its last move (channels.json: c's "reset_signatures": {to: {head,
 * epoch, keys: {fp: {name, seq, time, reason}}}}), counted as distinct keys
 * holding the operator role now and not revoked before their signature,
 * plus fp itself (the key resetting now) when it holds the role.
 */
static unsigned reset_signers(const sluice_jstate *st, json_t *c, const char *to, const char *fp)
{
	json_t *r = json_object_get(json_object_get(c, "reset_signatures"), to), *e, *k;
	const char *head = sluice__jstr(json_object_get(c, "head")), *sfp, *name = NULL;
	unsigned n = 0;

	k = sluice_trust__by_fp(st->keys, fp, &name);
	n += k && sluice_trust__has_role(k, "operator");
	if (!r || strcmp(sluice__jstr(json_object_get(r, "head")), head) ||
	    json_integer_value(json_object_get(r, "epoch")) !=
	            json_integer_value(json_object_get(c, "moved_seq")))
		return n;
	json_object_foreach(json_object_get(r, "keys"), sfp, e)
	{
		if (!strcmp(sfp, fp) || !(k = sluice_trust__by_fp(st->keys, sfp, &name)))
			continue;
		n += sluice_trust__has_role(k, "operator") &&
		     sluice_trust__key_standing(
		             NULL, name, k, (uint64_t)json_integer_value(json_object_get(e, "seq")),
		             NULL) == 0;
	}
	return n;
}

static int decide_move(sluice_repo *repo, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	struct move *mv = arg;
	sluice_ctx *ctx = repo->ctx;
	json_t *channels = channels_for_move(st->channels, mv->channel), *c, *used = NULL,
	       *rules = NULL;
	const char *head_hex;
	git_oid target, head;
	int error, has_head, held = 0, withdrawn = 0;

	/* Rolling back is the emergency path: the roles the policy names (always operators). */
	if (mv->kind == MOVE_ROLLBACK) {
		json_t *r;
		size_t i;
		int ok = 0;
		if ((error = sluice_policy__rules(repo, st, mv->channel, &rules, NULL)) < 0)
			goto fail;
		json_array_foreach(json_object_get(json_object_get(rules, "emergency"), "rollback"),
		                   i, r) ok |=
		        sluice_journal__check_role(repo, st, mv->key, sluice__jstr(r)) == 0;
		if (!ok && sluice_journal__check_role(repo, st, mv->key, "operator") < 0) {
			error = sluice_journal__deny(repo, out, "role",
			                             "refusing to roll back %s: %s", mv->channel,
			                             sluice_ctx_errmsg(repo->ctx));
			goto fail;
		}
		sluice_ctx_clear_error(repo->ctx);
	} else if (sluice_journal__check_role(repo, st, mv->key, "operator") < 0) {
		error = sluice_journal__deny(repo, out, "role", "refusing to move %s: %s",
		                             mv->channel, sluice_ctx_errmsg(repo->ctx));
		goto fail;
	}
	c = channel_entry(channels, mv->channel);
	head_hex = json_string_value(json_object_get(c, "head"));
	has_head = head_hex && git_oid_fromstr(&head, head_hex) == 0;
	snprintf(mv->from, sizeof(mv->from), "%s", has_head ? head_hex : "");

	if (mv->kind == MOVE_ANCHOR) {
		/* The drift budget's reference: a version the channel holds or held. */
		if (!has_head) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "channel %s has never held a version to anchor on", mv->channel);
			goto fail;
		}
		if (mv->ref) {
			if ((error = resolve(repo, st, &target, mv->ref)) < 0)
				goto fail;
			git_oid_tostr(mv->to, sizeof(mv->to), &target);
		} else {
			snprintf(mv->to, sizeof(mv->to), "%s", head_hex);
		}
		if ((error = sluice_jindex__held(repo, &st->head, mv->channel, mv->to, &held,
		                                 NULL)) < 0)
			goto fail;
		if (!held) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "channel %s never held %.12s; its anchor must be a "
			        "version it held (see sluice history %s)",
			        mv->channel, mv->to, mv->channel);
			goto fail;
		}
		snprintf(mv->from, sizeof(mv->from), "%s",
		         sluice__jstr(json_object_get(c, "anchor")));
		json_object_set_new(c, "anchor", json_string(mv->to));
		out->record = json_pack("{s:s,s:s?,s:s,s:s}", "channel", mv->channel, "previous",
		                        *mv->from ? mv->from : NULL, "anchor", mv->to, "reason",
		                        mv->reason);
		goto ok;
	}

	if (mv->kind == MOVE_ROLLBACK) {
		const char *previous = json_string_value(json_object_get(c, "previous"));
		if (!has_head) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "channel %s has never held a version; nothing to roll "
			        "back",
			        mv->channel);
			goto fail;
		}
		if (mv->ref) {
			if ((error = resolve(repo, st, &target, mv->ref)) < 0)
				goto fail;
			git_oid_tostr(mv->to, sizeof(mv->to), &target);
			if ((error = sluice_jindex__held(repo, &st->head, mv->channel, mv->to,
			                                 &held, NULL)) < 0)
				goto fail;
			if (!held || !strcmp(mv->to, head_hex)) {
				error = sluice_ctx__error(ctx, SLUICE_EINVALID,
				                          "channel %s never held %.12s before; "
				                          "rollback only returns to "
				                          "a version the channel held (see sluice "
				                          "history %s); use sluice "
				                          "reset to move it anywhere else",
				                          mv->channel, mv->to, mv->channel);
				goto fail;
			}
		} else if (!previous) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "channel %s has no earlier version to roll back "
			                          "to",
			                          mv->channel);
			goto fail;
		} else {
			snprintf(mv->to, sizeof(mv->to), "%s", previous);
		}
		/* The record withdraws from; the index reads it so (put_held). */
		set_head(c, mv->to);
		out->record =
		        json_pack("{s:s,s:s,s:s,s:s,s:s}", "channel", mv->channel, "from", mv->from,
		                  "to", mv->to, "reason", mv->reason, "withdrawn", mv->from);
		goto ok;
	}

	if ((error = resolve(repo, st, &target, mv->ref)) < 0)
		goto fail;
	git_oid_tostr(mv->to, sizeof(mv->to), &target);
	if (has_head && git_oid_equal(&target, &head)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "channel %s is already at %.12s",
		                          mv->channel, mv->to);
		goto fail;
	}
	if (mv->kind == MOVE_PROMOTE) {
		if (has_head && git_graph_descendant_of(repo->git, &target, &head) != 1) {
			error = sluice_ctx__error(ctx, SLUICE_EDENIED,
			                          "%.12s does not descend from %s's head %.12s: "
			                          "promotion only moves a "
			                          "channel forward (use sluice rollback to return "
			                          "to a version it held, "
			                          "or sluice reset with a reason)",
			                          mv->to, mv->channel, head_hex);
			goto fail;
		}
		if ((error = sluice_jindex__held(repo, &st->head, mv->channel, mv->to, &held,
		                                 &withdrawn)) < 0)
			goto fail;
		if (withdrawn && !mv->reason) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EDENIED,
			        "%.12s was withdrawn from %s by a rollback; promoting "
			        "it there again needs --override-withdrawn REASON",
			        mv->to, mv->channel);
			goto fail;
		}
		if ((error = check_path(repo, st, &target, has_head ? &head : NULL)) < 0 ||
		    (error = check_rules(repo, st, c, mv->channel, mv->to, mv->from, &used, out)) <
		            0)
			goto fail;
		set_head(c, mv->to);
		/* A channel's first version is its anchor until sluice anchor moves it. */
		if (!json_is_string(json_object_get(c, "anchor")))
			json_object_set_new(c, "anchor", json_string(mv->to));
		out->record = json_pack("{s:s,s:s?,s:s,s:s?,s:O,s:O,s:O,s:O}", "channel",
		                        mv->channel, "from", has_head ? mv->from : NULL, "to",
		                        mv->to, "override_withdrawn", mv->reason, "config",
		                        json_object_get(used, "config"), "policy",
		                        json_object_get(used, "policy"), "verdicts",
		                        json_object_get(used, "verdicts"), "approvals",
		                        json_object_get(used, "approvals"));
		goto ok;
	}
	/*
	 * reset: the emergency move. A version no channel ever held has passed
	 * no gate, so it needs this channel's verdicts like a promotion.
	 */
	if ((error = check_version(repo, st, &target)) < 0)
		goto fail;
	if (mv->kind == MOVE_RESET_SIGN) {
		/* A co-signature for a reset under an operator threshold: nothing moves. */
		json_t *sigs = json_object_get(c, "reset_signatures"), *r;
		char fp[SLUICE_FP_LEN];
		unsigned need = sluice_trust__role_threshold(st, "operator");
		sluice_keys__fingerprint(fp, mv->key->pk);
		if (!json_is_object(sigs)) {
			sigs = json_object();
			json_object_set_new(c, "reset_signatures", sigs);
		}
		r = json_object_get(sigs, mv->to);
		if (!r || strcmp(sluice__jstr(json_object_get(r, "head")), mv->from) ||
		    json_integer_value(json_object_get(r, "epoch")) !=
		            json_integer_value(json_object_get(c, "moved_seq"))) {
			r = json_pack("{s:s,s:I,s:{}}", "head", mv->from, "epoch",
			              json_integer_value(json_object_get(c, "moved_seq")), "keys");
			json_object_set_new(sigs, mv->to, r);
		}
		if (json_object_get(json_object_get(r, "keys"), fp)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EEXISTS,
			        "key %s already signed resetting %s to %.12s; each "
			        "key counts once",
			        mv->key->name, mv->channel, mv->to);
			goto fail;
		}
		sluice_journal__now(st, out->time);
		json_object_set_new(json_object_get(r, "keys"), fp,
		                    json_pack("{s:s,s:I,s:s,s:s}", "name", mv->key->name, "seq",
		                              (json_int_t)(st->seq + 1), "time", out->time,
		                              "reason", mv->reason));
		out->record = json_pack("{s:s,s:s?,s:s,s:s,s:{s:i,s:i}}", "channel", mv->channel,
		                        "from", has_head ? mv->from : NULL, "to", mv->to, "reason",
		                        mv->reason, "operators", "have",
		                        (int)json_object_size(json_object_get(r, "keys")), "need",
		                        (int)need);
		out->channels_after = channels;
		return SLUICE_OK;
	}
	{
		/* An operator threshold: rollback stays one operator's; reset needs N. */
		unsigned need = sluice_trust__role_threshold(st, "operator"), have;
		char fp[SLUICE_FP_LEN];
		sluice_keys__fingerprint(fp, mv->key->pk);
		have = reset_signers(st, c, mv->to, fp);
		if (have < need) {
			out->refusal = json_pack("{s:s,s:s,s:s}", "channel", mv->channel, "to",
			                         mv->to, "from", mv->from);
			error = sluice_journal__deny(
			        repo, out, "operators.threshold",
			        "refusing to reset %s to %.12s: %u of %u operator keys signed this "
			        "reset (other operators sign it first with sluice reset %s %.12s "
			        "--reason TEXT --sign --key NAME; rollback needs one)",
			        mv->channel, mv->to, have, need, mv->channel, mv->to);
			goto fail;
		}
	}
	if ((error = sluice_jindex__held(repo, &st->head, NULL, mv->to, &held, NULL)) < 0)
		goto fail;
	if (!held &&
	    (error = check_rules(repo, st, c, mv->channel, mv->to, mv->from, &used, out)) < 0)
		goto fail;
	set_head(c, mv->to);
	out->record = json_pack("{s:s,s:s?,s:s,s:s}", "channel", mv->channel, "from",
	                        has_head ? mv->from : NULL, "to", mv->to, "reason", mv->reason);
	if (used) {
		json_object_set(out->record, "verdicts", json_object_get(used, "verdicts"));
		json_object_set(out->record, "policy", json_object_get(used, "policy"));
	}
ok:
	if (mv->kind != MOVE_ANCHOR) {
		prune_verdicts(c);
		/* Reset signatures are for a move from the old head: void after any move. */
		json_object_del(c, "reset_signatures");
		/* Approvals name the move they follow, so one cannot be replayed after another. */
		json_object_set_new(c, "moved_seq", json_integer((json_int_t)(st->seq + 1)));
	}
	out->channels_after = channels;
	json_decref(used);
	json_decref(rules);
	return SLUICE_OK;
fail:
	json_decref(used);
	json_decref(rules);
	json_decref(channels);
	return error;
}

static int move(sluice_repo *repo, struct move *mv, const char *keyname, char **report)
{
	static const char *const actions[] = {"promote", "rollback", "reset", "anchor",
	                                      "reset.sign"};
	sluice_key key = {0};
	git_oid entry;
	char ehex[GIT_OID_HEXSZ + 1];
	int error;

	if ((error = check_channel_name(repo->ctx, mv->channel)) < 0)
		return error;
	if (mv->kind != MOVE_PROMOTE && (!mv->reason || !*mv->reason))
		return sluice_ctx__error(repo->ctx, SLUICE_EUSAGE,
		                         "%s needs --reason TEXT: it is recorded in the journal",
		                         actions[mv->kind]);
	/* The role is checked in the decision, so a refusal is journaled. */
	if ((error = sluice_repo__signing_key(repo, &key, keyname, NULL)) < 0)
		return error;
	mv->key = &key;
	error = sluice_journal__transact(repo, &entry, &key, actions[mv->kind], decide_move, mv);
	sluice_key__dispose(&key);
	if (error < 0)
		return error;
	git_oid_tostr(ehex, sizeof(ehex), &entry);
	return sluice_repo__report(
	        repo->ctx, report,
	        json_pack("{s:s,s:s,s:s?,s:s,s:s,s:s?}", "action", actions[mv->kind], "channel",
	                  mv->channel, "from", *mv->from ? mv->from : NULL, "to", mv->to, "entry",
	                  ehex, "withdrawn", mv->kind == MOVE_ROLLBACK ? mv->from : NULL));
}

int sluice_channel_promote(sluice_repo *repo, const char *ref, const char *channel, const char *key,
                           const char *override_reason, char **report)
{
	struct move mv = {MOVE_PROMOTE, NULL, channel, ref, override_reason, "", ""};
	return move(repo, &mv, key, report);
}

int sluice_channel_rollback(sluice_repo *repo, const char *channel, const char *to,
                            const char *reason, const char *key, char **report)
{
	struct move mv = {MOVE_ROLLBACK, NULL, channel, to, reason, "", ""};
	return move(repo, &mv, key, report);
}

int sluice_channel_reset(sluice_repo *repo, const char *channel, const char *ref,
                         const char *reason, const char *key, char **report)
{
	struct move mv = {MOVE_RESET, NULL, channel, ref, reason, "", ""};
	return move(repo, &mv, key, report);
}

int sluice_channel_reset_sign(sluice_repo *repo, const char *channel, const char *ref,
                              const char *reason, const char *key, char **report)
{
	struct move mv = {MOVE_RESET_SIGN, NULL, channel, ref, reason, "", ""};
	return move(repo, &mv, key, report);
}

int sluice_channel_anchor(sluice_repo *repo, const char *channel, const char *ref,
                          const char *reason, const char *key, char **report)
{
	struct move mv = {MOVE_ANCHOR, NULL, channel, ref, reason, "", ""};
	return move(repo, &mv, key, report);
}

int sluice_channel_history(sluice_repo *repo, const char *channel, char **report)
{
	json_t *moves = NULL;
	int error;

	if ((error = check_channel_name(repo->ctx, channel)) < 0 ||
	    (error = sluice_jindex__history(repo, channel, &moves)) < 0)
		return error;
	return sluice_repo__report(repo->ctx, report,
	                           json_pack("{s:s,s:o}", "channel", channel, "moves", moves));
}

int sluice_channel_status(sluice_repo *repo, char **report)
{
	json_t *channels = NULL, *arr = json_array(), *c;
	git_oid head;
	uint64_t seq = 0;
	const char *name;
	char hex[GIT_OID_HEXSZ + 1] = "";
	int error;

	if ((error = sluice_jindex__channels(repo, &channels)) < 0) {
		json_decref(arr);
		return error;
	}
	if (sluice_jindex__head(repo, &head, &seq) == 0)
		git_oid_tostr(hex, sizeof(hex), &head);
	sluice_ctx_clear_error(repo->ctx);
	json_object_foreach(channels, name, c) json_array_append_new(
	        arr, json_pack("{s:s,s:O,s:O}", "name", name, "head", json_object_get(c, "head"),
	                       "withdrawn", json_object_get(c, "withdrawn")));
	json_decref(channels);
	/* Beside each head, what each hook following the channel last got acknowledged. */
	if ((error = sluice_hooks__status(repo, arr)) < 0) {
		json_decref(arr);
		return error;
	}
	return sluice_repo__report(repo->ctx, report,
	                           json_pack("{s:o,s:{s:s,s:I}}", "channels", arr, "journal",
	                                     "head", hex, "entries", (json_int_t)seq));
}
