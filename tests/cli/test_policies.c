/*
 * tests/cli/test_policies.c - the protections of issue 6, each a test
 * named after the attack. Every refusal is checked three ways: the
 * message names the rule, no channel moved (channels.json unchanged), and
 * the refusal itself is the journal's newest entry ("refuse", with the
 * rule). Verdicts come from real gate runs on the shipped test model with
 * one suite; `sluice verify` passes at the end of each scenario, refusals
 * by revoked keys included.
 *
 * The repository has two root keys with a root threshold of 2, so every
 * root change here needs both.
 */
#include "testutil.h"

#include "dsse.h"
#include "repo.h"

#include "sluice/keys.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *work;
static char repo[4096], keysenv[4300];
static const char *env[] = {keysenv, NULL};
static char base[41], lora1[41], lora2[41], own[41], knowledge[65];

static tu_run_result sl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static tu_run_result sl(const char *fmt, ...)
{
	char args[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return tu_sh(env, "%s -C '%s' %s", TU_SLUICE, repo, args);
}

/* Run and require success; returns stdout (caller frees). */
static char *ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ok(const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = tu_sluice_okv(env, repo, fmt, ap);
	va_end(ap);
	return out;
}

static void refused(const char *rule, const char *needle, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void refused(const char *rule, const char *needle, const char *fmt, ...)
{
	char args[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	tu_refused_journaled(env, repo, 1, needle, rule, args);
}

static void propose(char out[41], const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void propose(char out[41], const char *key, const char *fmt, ...)
{
	char args[8192], *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	o = ok("%s --key %s", args, key);
	tu_last_line(out, o);
	free(o);
}

/* A channel's head from status --json ("" for none). */
static void head_of(const char *channel, char out[41])
{
	char *o = ok("status --json");
	json_error_t jerr;
	json_t *v = json_loads(o, 0, &jerr), *c;
	size_t i;

	assert_non_null(v);
	out[0] = 0;
	json_array_foreach(json_object_get(v, "channels"), i,
	                   c) if (!strcmp(json_string_value(json_object_get(c, "name")), channel) &&
	                          json_is_string(json_object_get(c, "head")))
	        snprintf(out, 41, "%s", json_string_value(json_object_get(c, "head")));
	json_decref(v);
	free(o);
}

static void gate(const char *ref, const char *channel)
{
	free(ok("gate %s --channel %s --gate regression --key gr", ref, channel));
}

/* Write the policy and set it with both root keys (threshold 2). */
static void set_policy(const char *yaml)
{
	char path[4200], *o, id[17];
	json_error_t jerr;
	json_t *v;

	snprintf(path, sizeof(path), "%s/policy.yaml", work);
	tu_write(path, yaml, strlen(yaml));
	o = ok("policy set '%s' --signer r1 --json", path);
	v = json_loads(o, 0, &jerr);
	assert_non_null(v);
	assert_false(json_is_true(json_object_get(v, "applied")));
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "change")));
	json_decref(v);
	free(o);
	free(ok("root sign %s --key r2", id));
}

static const char policy_fmt[] = "version: 1\n"
                                 "default:\n"
                                 "  gates: {required: []}\n"
                                 "channels:\n"
                                 "  staging:\n"
                                 "    gates: {required: [regression]}\n"
                                 "    suites: {knowledge: %s}\n"
                                 "  prod:\n"
                                 "    from: [staging]\n"
                                 "    gates: {required: [regression]}\n"
                                 "    approvals: {roles: [approver], count: 2}\n"
                                 "  quick:\n"
                                 "    gates: {required: []}\n"
                                 "    approvals: {roles: [approver], count: 1}\n"
                                 "    expiry: {approvals: 2s}\n";

static int setup(void **state)
{
	char *o, policy[2048];
	json_error_t jerr;
	json_t *v, *s;
	size_t i;
	(void)state;

	work = tu_mkdtemp("policies");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	tu_sh_ok(NULL, "mkdir -p '%s/in' && cp -r '%s/test-model' '%s/in/base'", work,
	         SLUICE_RESOURCES, work);
	tu_sh_ok(env, "%s init '%s' --root-key r1 --root-key r2 --root-threshold 2", TU_SLUICE,
	         repo);
	/* Each key registration is a root change: proposed by r1, applied by r2's signature. */
	{
		static const char *const keys[][2] = {{"alice", "proposer"}, {"bob", "approver"},
		                                      {"carol", "approver"}, {"dave", "approver"},
		                                      {"ops", "operator"},   {"gr", "gate-runner"},
		                                      {"r3", "auditor"},     {"r4", "auditor"}};
		for (i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
			char id[17];
			o = ok("key new %s --role %s --signer r1 --json", keys[i][0], keys[i][1]);
			v = json_loads(o, 0, &jerr);
			assert_non_null(v);
			assert_false(json_is_true(json_object_get(v, "applied")));
			snprintf(id, sizeof(id), "%s",
			         json_string_value(json_object_get(v, "pending")));
			json_decref(v);
			free(o);
			free(ok("root sign %s --key r2", id));
		}
	}
	/* dave also proposes: the proposer-approves-itself attack needs one key with both. */
	{
		char id[17];
		o = ok("key new dave --role proposer --signer r1 --json");
		v = json_loads(o, 0, &jerr);
		snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "pending")));
		json_decref(v);
		free(o);
		free(ok("root sign %s --key r2", id));
	}
	free(ok("suite add '%s/eval/suites/knowledge.json' --key alice", SLUICE_SOURCE_DIR));
	o = ok("suite list --json");
	v = json_loads(o, 0, &jerr);
	json_array_foreach(
	        json_object_get(v, "suites"), i,
	        s) if (!strcmp(json_string_value(json_object_get(s, "name")), "knowledge"))
	        snprintf(knowledge, sizeof(knowledge), "%s",
	                 json_string_value(json_object_get(s, "digest")));
	json_decref(v);
	free(o);
	assert_int_equal(strlen(knowledge), 64);
	snprintf(policy, sizeof(policy), policy_fmt, knowledge);
	set_policy(policy);

	propose(base, "alice", "propose base '%s/in/base' -m base", work);
	tu_sh_ok(NULL, "%s lora '%s/in/l1' --base '%s/in/base' --seed 5", SLUICE_SYNTH, work, work);
	tu_sh_ok(NULL, "%s lora '%s/in/l2' --base '%s/in/base' --seed 6", SLUICE_SYNTH, work, work);
	propose(lora1, "alice", "propose lora '%s/in/l1' --onto %s -m l1", work, base);
	propose(lora2, "alice", "propose lora '%s/in/l2' --onto %s -m l2 --name second", work,
	        lora1);
	propose(own, "dave", "propose lora '%s/in/l2' --onto %s -m own --name own", work, base);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_sh_ok(NULL, "rm -rf '%s'", work);
	free(work);
	return 0;
}

/* Whether key name holds the root role now. */
static int is_root(const char *name)
{
	char *o = ok("key list --json");
	json_error_t jerr;
	json_t *v = json_loads(o, 0, &jerr), *k, *r;
	size_t i, j;
	int yes = 0;

	assert_non_null(v);
	json_array_foreach(json_object_get(v, "keys"), i, k)
	{
		if (strcmp(json_string_value(json_object_get(k, "name")), name))
			continue;
		json_array_foreach(json_object_get(k, "roles"), j, r) yes |=
		        !strcmp(json_string_value(r), "root");
	}
	json_decref(v);
	free(o);
	return yes;
}

static void verify_ok(void)
{
	free(ok("verify"));
}

/* Runs first: staging and prod are empty. */
static void test_policies__promotion_without_required_verdicts(void **state)
{
	char h[41];
	(void)state;

	refused("gates.required", "has no verdict", "promote %s --channel staging --key ops", base);
	head_of("staging", h);
	assert_string_equal(h, "");
	/* policy check says the same, rule by rule, and exits 1. */
	{
		tu_run_result r = sl("policy check %s --channel staging", base);
		assert_int_equal(r.status, 1);
		assert_non_null(strstr(r.out, "BLOCKS  gates.required"));
		tu_run_dispose(&r);
	}
	gate(base, "staging");
	free(ok("promote %s --channel staging --key ops", base));
	head_of("staging", h);
	assert_string_equal(h, base);
	verify_ok();
}

static void test_policies__approvals_under_threshold(void **state)
{
	(void)state;
	/* prod takes only what staging held: base. */
	refused("policy.from", "must first be held", "promote %s --channel prod --key ops", lora1);
	gate(base, "prod");
	refused("approvals.threshold", "0 of 2 approvals", "promote %s --channel prod --key ops",
	        base);
	free(ok("approve %s --channel prod --key bob", base));
	refused("approvals.threshold", "1 of 2 approvals", "promote %s --channel prod --key ops",
	        base);
	/* The same key again counts once. */
	free(ok("approve %s --channel prod --key bob", base));
	refused("approvals.threshold", "1 of 2 approvals", "promote %s --channel prod --key ops",
	        base);
	free(ok("approve %s --channel prod --key carol", base));
	{
		char *o = ok("promote %s --channel prod --key ops --json", base), h[41];
		/* The promotion records the policy digest it was checked against. */
		assert_non_null(strstr(o, "\"to\""));
		free(o);
		o = ok("history prod --json");
		assert_non_null(strstr(o, "\"policy\""));
		free(o);
		head_of("prod", h);
		assert_string_equal(h, base);
	}
	verify_ok();
}

static void test_policies__proposer_approving_its_own_update(void **state)
{
	(void)state;
	refused("approvals.proposer", "does not count a proposer's own approval",
	        "approve %s --channel prod --key dave", own);
	verify_ok();
}

static void test_policies__approval_or_verdict_for_another_version_baseline_or_channel(void **state)
{
	char h[41];
	(void)state;

	/* Staging moves on to lora1, then lora2 (approvals there count for staging only). */
	gate(lora1, "staging");
	free(ok("promote %s --channel staging --key ops", lora1));
	gate(lora2, "staging");
	free(ok("approve %s --channel staging --key bob", lora2));
	free(ok("approve %s --channel staging --key carol", lora2));
	free(ok("promote %s --channel staging --key ops", lora2));
	/* A verdict and approvals for lora1 on prod do not let lora2 onto prod. */
	gate(lora1, "prod");
	free(ok("approve %s --channel prod --key bob", lora1));
	free(ok("approve %s --channel prod --key carol", lora1));
	refused("gates.required", "has no verdict", "promote %s --channel prod --key ops", lora2);
	/* With its own verdict, lora2 still has no approval on prod: staging's count for nothing.
	 */
	gate(lora2, "prod");
	refused("approvals.threshold", "0 of 2 approvals", "promote %s --channel prod --key ops",
	        lora2);
	/* Another baseline: prod moves to lora1, so lora2's verdict against base is void. */
	free(ok("promote %s --channel prod --key ops", lora1));
	free(ok("approve %s --channel prod --key bob", lora2));
	free(ok("approve %s --channel prod --key carol", lora2));
	refused("gates.required", "has no verdict", "promote %s --channel prod --key ops", lora2);
	head_of("prod", h);
	assert_string_equal(h, lora1);
	verify_ok();
}

static void test_policies__verdict_on_a_suite_the_policy_does_not_pin(void **state)
{
	char policy[2048], h[41];
	(void)state;

	/* A policy whose pin differs from the suite the gates run: a fresh channel "pinned". */
	snprintf(policy, sizeof(policy),
	         "%s"
	         "  pinned:\n"
	         "    gates: {required: [regression]}\n"
	         "    suites: {knowledge: %064d}\n",
	         "version: 1\n"
	         "default:\n"
	         "  gates: {required: []}\n"
	         "channels:\n",
	         0);
	set_policy(policy);
	gate(base, "pinned");
	refused("gates.suites", "the policy does not pin", "promote %s --channel pinned --key ops",
	        base);
	head_of("pinned", h);
	assert_string_equal(h, "");
	/* policy show keeps every version's exact bytes. */
	{
		char *o = ok("policy show --version 1");
		assert_non_null(strstr(o, "approvals: {roles: [approver], count: 2}"));
		free(o);
		o = ok("policy show");
		assert_non_null(strstr(o, "pinned:"));
		free(o);
	}
	verify_ok();
}

static void test_policies__replayed_or_expired_approval(void **state)
{
	char env1[4200], env2[4200];
	(void)state;

	/* The policy of the earlier tests, back as version 3. */
	{
		char policy[2048];
		snprintf(policy, sizeof(policy), policy_fmt, knowledge);
		set_policy(policy);
	}
	/* quick needs one approval, valid 2 s, and no gates. */
	free(ok("approve %s --channel quick --key bob", base));
	sleep(3);
	refused("approvals.threshold", "expired approvals do not count",
	        "promote %s --channel quick --key ops", base);
	/* An approval signed elsewhere, journaled later by another key. */
	snprintf(env1, sizeof(env1), "%s/approval1.json", work);
	free(ok("approve %s --channel quick --key bob --out '%s'", base, env1));
	free(ok("approve --envelope '%s' --key ops", env1));
	free(ok("promote %s --channel quick --key ops", base));
	/* Replayed after the channel moved: bound to the old head and move. */
	refused("approvals.replayed", "refusing an approval", "approve --envelope '%s' --key ops",
	        env1);
	/* Held back until it expired (a freeze): refused when it is finally submitted. */
	snprintf(env2, sizeof(env2), "%s/approval2.json", work);
	free(ok("approve %s --channel quick --key carol --out '%s'", lora1, env2));
	sleep(3);
	refused("approvals.expired", "older than the policy lets approvals live",
	        "approve --envelope '%s' --key ops", env2);
	verify_ok();
}

/* Re-sign the approval envelope in src as key with its predicate's time set to `time`. */
static void redate_envelope(const char *src, const char *dst, const char *key, const char *time)
{
	sluice_ctx *ctx = NULL;
	sluice_dsse_envelope e = {0};
	sluice_key k = {0};
	sluice_buf out = {0};
	json_error_t jerr;
	json_t *doc = json_load_file(src, 0, &jerr), *stmt;
	char *text, keys[4200];

	assert_non_null(doc);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	text = json_dumps(doc, JSON_COMPACT);
	assert_int_equal(sluice_dsse__parse(ctx, &e, text, strlen(text)), 0);
	stmt = json_loadb((const char *)e.payload, e.payload_len, 0, &jerr);
	assert_non_null(stmt);
	json_object_set_new(json_object_get(stmt, "predicate"), "time", json_string(time));
	free(text);
	text = json_dumps(stmt, JSON_COMPACT | JSON_SORT_KEYS);
	snprintf(keys, sizeof(keys), "%s/keys", work);
	setenv("SLUICE_KEYS", keys, 1);
	assert_int_equal(sluice_keys__load(ctx, &k, key), 0);
	assert_int_equal(sluice_dsse__sign(ctx, &out, &k, e.payload_type, text, strlen(text)), 0);
	tu_write(dst, (const char *)out.ptr, out.len);
	free(text);
	sluice_buf__dispose(&out);
	sluice_key__dispose(&k);
	sluice_dsse__dispose(&e);
	json_decref(stmt);
	json_decref(doc);
	sluice_ctx_free(ctx);
}

/*
 * A signer post-dates an approval (4 minutes ahead, inside the 5 minutes a
 * clock may be off) to make it live longer: validity starts at the time
 * the journal recorded it, so it lapses as if dated honestly.
 */
static void test_policies__post_dated_approval(void **state)
{
	char env1[4200], env2[4200], ahead[32];
	time_t t = time(NULL) + 240;
	struct tm tm;
	json_error_t jerr;
	json_t *ch, *a;
	(void)state;

	gmtime_r(&t, &tm);
	strftime(ahead, sizeof(ahead), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(env1, sizeof(env1), "%s/approval-now.json", work);
	snprintf(env2, sizeof(env2), "%s/approval-ahead.json", work);
	free(ok("approve %s --channel quick --key bob --out '%s'", lora1, env1));
	redate_envelope(env1, env2, "bob", ahead);
	free(ok("approve --envelope '%s' --key ops", env2));
	/* Stored: valid from the entry's time, the signer's time kept beside it. */
	{
		tu_run_result r = tu_sh(
		        env, "git --git-dir='%s' show refs/sluice/journal:channels.json", repo);
		tu_run_result rec =
		        tu_sh(env, "git --git-dir='%s' show refs/sluice/journal:record.json", repo);
		json_t *cv = json_loads(r.out, 0, &jerr), *rv = json_loads(rec.out, 0, &jerr);
		const char *fp;
		assert_non_null(cv);
		assert_non_null(rv);
		ch = json_object_get(json_object_get(cv, "channels"), "quick");
		a = json_object_get(json_object_get(json_object_get(ch, "approvals"), lora1),
		                    "keys");
		assert_int_equal(json_object_size(a), 1);
		json_object_foreach(a, fp, ch)
		{
			assert_string_equal(json_string_value(json_object_get(ch, "signed")),
			                    ahead);
			assert_string_equal(json_string_value(json_object_get(ch, "time")),
			                    json_string_value(json_object_get(rv, "time")));
		}
		json_decref(cv);
		json_decref(rv);
		tu_run_dispose(&r);
		tu_run_dispose(&rec);
	}
	/* quick lets approvals live 2 s: measured from the journal, it has lapsed. */
	sleep(3);
	refused("approvals.threshold", "expired approvals do not count",
	        "promote %s --channel quick --key ops", lora1);
	verify_ok();
}

static void test_policies__policy_change_without_the_root_threshold(void **state)
{
	char path[4200], *o;
	json_error_t jerr;
	json_t *v;
	const char *yaml = "version: 1\ndefault:\n  gates: {required: []}\n";
	(void)state;

	snprintf(path, sizeof(path), "%s/open.yaml", work);
	tu_write(path, yaml, strlen(yaml));
	/* A key that is not root cannot even propose it. */
	refused("role", "needs a root key", "policy set '%s' --signer alice", path);
	/* One root key of two: journaled as pending, not in effect. */
	o = ok("policy set '%s' --signer r1 --json", path);
	v = json_loads(o, 0, &jerr);
	assert_false(json_is_true(json_object_get(v, "applied")));
	json_decref(v);
	free(o);
	o = ok("policy show --json");
	v = json_loads(o, 0, &jerr);
	assert_int_equal(json_integer_value(json_object_get(v, "version")), 3);
	json_decref(v);
	free(o);
	/* The pending policy does not open prod: lora2 still needs verdicts and approvals. */
	refused("gates.required", "has no verdict", "promote %s --channel prod --key ops", lora2);
	o = ok("root pending --json");
	assert_non_null(strstr(o, "policy.set"));
	free(o);
	/* r1 signing again counts once. */
	{
		tu_run_result r;
		o = ok("root pending --json");
		v = json_loads(o, 0, &jerr);
		r = sl("root sign %.16s --key r1",
		       json_string_value(json_object_get(
		               json_array_get(json_object_get(v, "pending"), 0), "change")));
		assert_int_not_equal(r.status, 0);
		assert_non_null(strstr(r.err, "counts once"));
		tu_run_dispose(&r);
		json_decref(v);
		free(o);
	}
	verify_ok();
}

static void test_policies__key_used_outside_its_role(void **state)
{
	(void)state;
	refused("role", "operator role", "promote %s --channel quick --key alice", lora1);
	refused("role", "operator role", "reset quick %s --reason x --key bob", lora1);
	/* Checked before the gates run, and journaled like every other rule. */
	refused("role", "gate-runner role", "gate %s --channel quick --gate regression --key ops",
	        lora1);
	refused("approvals.role", "counts approvals only from keys with the role",
	        "approve %s --channel prod --key gr", lora2);
	/* A key that is not root signs a root change: its signature would count for nothing. */
	{
		char *o = ok("root pending --json");
		json_error_t jerr;
		json_t *v = json_loads(o, 0, &jerr);
		refused("role", "would count for nothing", "root sign %.16s --key bob",
		        json_string_value(json_object_get(
		                json_array_get(json_object_get(v, "pending"), 0), "change")));
		json_decref(v);
		free(o);
	}
	verify_ok();
}

static void test_policies__revoked_key(void **state)
{
	char *o, id[17], h[41];
	json_error_t jerr;
	json_t *v;
	(void)state;

	/* carol approves lora2 for prod before her key is revoked... */
	gate(lora2, "prod");
	free(ok("approve %s --channel prod --key carol", lora2));
	o = ok("key revoke carol --reason 'laptop stolen' --signer r1 --json");
	v = json_loads(o, 0, &jerr);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "change")));
	json_decref(v);
	free(o);
	free(ok("root sign %s --key r2", id));
	/* Nothing she signs now counts... */
	refused("role", "was revoked", "approve %s --channel prod --key carol", lora2);
	/* ...but her approval journaled before the revocation does: bob's and hers make two. */
	free(ok("promote %s --channel prod --key ops", lora2));
	head_of("prod", h);
	assert_string_equal(h, lora2);
	/* An expired key signs nothing that counts either. */
	{
		char id2[17];
		o = ok("key new eve --role approver --expires 2020-01-01T00:00:00Z --signer r1 "
		       "--json");
		v = json_loads(o, 0, &jerr);
		snprintf(id2, sizeof(id2), "%s", json_string_value(json_object_get(v, "pending")));
		json_decref(v);
		free(o);
		free(ok("root sign %s --key r2", id2));
		refused("role", "expired", "approve %s --channel quick --key eve", lora1);
	}
	verify_ok();
}

static void test_policies__root_rotation_without_both_thresholds(void **state)
{
	char *o, id[17];
	json_error_t jerr;
	json_t *v, *keys;
	tu_run_result r;
	(void)state;

	/* r1 out, r3 in, threshold 1: the old threshold (2 of r1, r2) and 1 of {r2, r3}. */
	o = ok("root rotate --add r3 --remove r1 --threshold 1 --signer r1 --json");
	v = json_loads(o, 0, &jerr);
	assert_false(json_is_true(json_object_get(v, "applied")));
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "change")));
	json_decref(v);
	free(o);
	/* The new key alone: the old threshold is not met. */
	o = ok("root sign %s --key r3 --json", id);
	v = json_loads(o, 0, &jerr);
	assert_false(json_is_true(json_object_get(v, "applied")));
	json_decref(v);
	free(o);
	assert_false(is_root("r3"));
	o = ok("root sign %s --key r2 --json", id);
	v = json_loads(o, 0, &jerr);
	assert_true(json_is_true(json_object_get(v, "applied")));
	json_decref(v);
	free(o);
	assert_true(is_root("r3"));
	assert_false(is_root("r1"));
	/* r1 is no longer root: it cannot propose a root change. */
	refused("role", "needs a root key", "root rotate --add r4 --threshold 2 --signer r1");
	/* r4 in with threshold 2 of {r2, r3, r4}: the old threshold (1) is met by r2 alone, the new
	 * needs two. */
	o = ok("root rotate --add r4 --threshold 2 --signer r2 --json");
	v = json_loads(o, 0, &jerr);
	assert_false(json_is_true(json_object_get(v, "applied")));
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "change")));
	json_decref(v);
	free(o);
	o = ok("root sign %s --key r4 --json", id);
	v = json_loads(o, 0, &jerr);
	assert_true(json_is_true(json_object_get(v, "applied")));
	json_decref(v);
	free(o);
	o = ok("key list --json");
	v = json_loads(o, 0, &jerr);
	keys = json_object_get(v, "keys");
	{
		size_t i;
		json_t *k;
		int roots = 0;
		json_array_foreach(keys, i, k)
		{
			json_t *roles = json_object_get(k, "roles"), *x;
			size_t j;
			json_array_foreach(roles, j, x) if (!strcmp(json_string_value(x), "root"))
			{
				roots++;
				assert_string_not_equal(
				        json_string_value(json_object_get(k, "name")), "r1");
			}
		}
		assert_int_equal(roots, 3);
	}
	json_decref(v);
	free(o);
	r = sl("root pending --json");
	assert_non_null(strstr(r.out, "\"root_threshold\": 2"));
	tu_run_dispose(&r);
	verify_ok();
}

/* The pending change with id in `root pending --json`, or NULL (new reference). */
static json_t *pending_change(const char *id)
{
	char *o = ok("root pending --json");
	json_error_t jerr;
	json_t *v = json_loads(o, 0, &jerr), *p, *found = NULL;
	size_t i;

	assert_non_null(v);
	json_array_foreach(json_object_get(v, "pending"), i,
	                   p) if (!strcmp(json_string_value(json_object_get(p, "change")), id))
	        found = json_incref(p);
	json_decref(v);
	free(o);
	return found;
}

/*
 * A root change left pending is signed long after its proposers moved on
 * (a stolen root key completing a forgotten change): once it expired, by
 * the journal's time, the signature is refused and journaled, the change
 * does not apply, and the next root change drops it.
 */
static void test_policies__root_change_signed_after_it_expired(void **state)
{
	char *o, id[65];
	json_error_t jerr;
	json_t *v, *p;
	tu_run_result r;
	(void)state;

	r = sl("key new zz --role approver --signer r2 --expires-in 0");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "'0' is not a duration"));
	tu_run_dispose(&r);
	o = ok("key new zed --role approver --signer r2 --expires-in 2s --json");
	v = json_loads(o, 0, &jerr);
	assert_false(json_is_true(json_object_get(v, "applied")));
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "pending")));
	json_decref(v);
	free(o);
	p = pending_change(id);
	assert_non_null(p);
	assert_false(json_is_true(json_object_get(p, "expired")));
	assert_int_equal(strlen(json_string_value(json_object_get(p, "expires"))), 20);
	assert_true(strcmp(json_string_value(json_object_get(p, "expires")),
	                   json_string_value(json_object_get(p, "proposed_time"))) > 0);
	json_decref(p);
	sleep(3);
	p = pending_change(id);
	assert_true(json_is_true(json_object_get(p, "expired")));
	json_decref(p);
	refused("root.expired", "expired at", "root sign %.16s --key r3", id);
	o = ok("key list --json");
	assert_null(strstr(o, "\"zed\""));
	free(o);
	/* The next root change drops it, and says so in its record. */
	o = ok("key new yan --role approver --signer r2 --json");
	v = json_loads(o, 0, &jerr);
	{
		char yid[65];
		snprintf(yid, sizeof(yid), "%s", json_string_value(json_object_get(v, "pending")));
		r = tu_sh(env, "git --git-dir='%s' show refs/sluice/journal:record.json", repo);
		assert_non_null(strstr(r.out, "\"dropped\""));
		assert_non_null(strstr(r.out, id));
		tu_run_dispose(&r);
		assert_null(pending_change(id));
		free(ok("root sign %.16s --key r3", yid));
	}
	json_decref(v);
	free(o);
	o = ok("key list --json");
	assert_non_null(strstr(o, "\"yan\""));
	assert_null(strstr(o, "\"zed\""));
	free(o);
	verify_ok();
}

/* Propose a root change as r2 and complete it with r3 (root threshold 2 by now). */
static void root_change(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void root_change(const char *fmt, ...)
{
	char args[4096], id[65], *o;
	json_error_t jerr;
	json_t *v;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	o = ok("%s --signer r2 --json", args);
	v = json_loads(o, 0, &jerr);
	assert_non_null(v);
	snprintf(id, sizeof(id), "%s",
	         json_string_value(
	                 json_object_get(v, json_object_get(v, "pending") ? "pending" : "change")));
	json_decref(v);
	free(o);
	o = ok("root sign %.16s --key r3 --json", id);
	assert_non_null(strstr(o, "\"applied\": true"));
	free(o);
}

/*
 * One gate-runner key (stolen, or a CI job that lies) vouches for a
 * version alone, under a gate-runner threshold of 2: the gate is not
 * passed until a second gate-runner key's verdict agrees.
 */
static void test_policies__single_gate_runner_under_threshold(void **state)
{
	char l3[41], h[41], before[41];
	tu_run_result r;
	(void)state;

	root_change("key new gr2 --role gate-runner");
	/* Thresholds that mean nothing, or would stop everything, are refused up front. */
	r = sl("role threshold auditor 2 --signer r2");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "auditor is read-only"));
	tu_run_dispose(&r);
	r = sl("role threshold gate-runner 3 --signer r2");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "with 2 unrevoked gate-runner keys"));
	tu_run_dispose(&r);
	root_change("role threshold gate-runner 2");
	{
		char *o = ok("root pending --json");
		assert_non_null(strstr(o, "\"gate-runner\": 2"));
		free(o);
	}

	tu_sh_ok(NULL, "%s lora '%s/in/l3' --base '%s/in/base' --seed 7", SLUICE_SYNTH, work, work);
	propose(l3, "alice", "propose lora '%s/in/l3' --onto %s -m l3 --name third", work, lora2);
	head_of("staging", before);
	gate(l3, "staging");
	refused("gates.runners", "verdicts from 1 of 2 gate-runner keys needed",
	        "promote %s --channel staging --key ops", l3);
	/* The same key again counts once. */
	gate(l3, "staging");
	refused("gates.runners", "verdicts from 1 of 2 gate-runner keys needed",
	        "promote %s --channel staging --key ops", l3);
	head_of("staging", h);
	assert_string_equal(h, before);
	free(ok("gate %s --channel staging --gate regression --key gr2", l3));
	{
		char *o = ok("policy check %s --channel staging", l3);
		assert_non_null(strstr(o, "2 gate-runner keys agree on the regression gate"));
		free(o);
	}
	free(ok("promote %s --channel staging --key ops", l3));
	head_of("staging", h);
	assert_string_equal(h, l3);
	verify_ok();
}

/*
 * One proposer key (stolen, or an insider) pushes a version alone under a
 * proposer threshold of 2: not promotable until a second proposer key
 * co-signs it; the proposer co-signing its own version, or a key without
 * the role, counts for nothing.
 */
static void test_policies__single_proposer_under_threshold(void **state)
{
	char l3[41], l4[41], h[41], *o;
	tu_run_result r;
	(void)state;

	head_of("staging", l3);
	root_change("role threshold proposer 2");
	tu_sh_ok(NULL, "%s lora '%s/in/l4' --base '%s/in/base' --seed 8", SLUICE_SYNTH, work, work);
	propose(l4, "alice", "propose lora '%s/in/l4' --onto %s -m l4 --name fourth", work, l3);
	refused("proposers.threshold", "1 of 2 proposer keys signed",
	        "promote %s --channel staging --key ops", l4);
	refused("cosign.proposer", "its signature already counts once", "cosign %s --key alice",
	        l4);
	refused("role", "proposer role", "cosign %s --key bob", l4);
	o = ok("cosign %s --key dave --json", l4);
	assert_non_null(strstr(o, "\"have\": 2"));
	free(o);
	r = sl("cosign %s --key dave", l4);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "each key counts once"));
	tu_run_dispose(&r);
	/* The co-signature is the proposer rule's; the gates still ask their two runners. */
	gate(l4, "staging");
	free(ok("gate %s --channel staging --gate regression --key gr2", l4));
	o = ok("policy check %s --channel staging", l4);
	assert_non_null(strstr(o, "2 of 2 proposer keys signed"));
	free(o);
	free(ok("promote %s --channel staging --key ops", l4));
	head_of("staging", h);
	assert_string_equal(h, l4);
	verify_ok();
}

/*
 * One operator key resets a channel to a version of its choosing under an
 * operator threshold of 2: refused until a second operator key signed
 * that very reset; rolling back stays one operator's emergency path.
 */
static void test_policies__single_operator_reset_under_threshold(void **state)
{
	char l4[41], l3[41], h[41];
	(void)state;

	head_of("staging", l4);
	root_change("key new ops2 --role operator");
	root_change("role threshold operator 2");
	/* staging held l3 before l4. */
	{
		char *o = ok("history staging --json");
		json_error_t jerr;
		json_t *v = json_loads(o, 0, &jerr), *moves = json_object_get(v, "moves");
		snprintf(l3, sizeof(l3), "%s",
		         json_string_value(json_object_get(
		                 json_array_get(moves, json_array_size(moves) - 1), "from")));
		json_decref(v);
		free(o);
	}
	refused("operators.threshold", "1 of 2 operator keys signed this reset",
	        "reset staging %s --reason 'l4 misbehaves' --key ops", l3);
	refused("role", "operator role", "reset staging %s --reason 'x' --sign --key bob", l3);
	head_of("staging", h);
	assert_string_equal(h, l4);
	free(ok("reset staging %s --reason 'l4 misbehaves' --sign --key ops2", l3));
	/* Signing moves nothing. */
	head_of("staging", h);
	assert_string_equal(h, l4);
	free(ok("reset staging %s --reason 'l4 misbehaves' --key ops", l3));
	head_of("staging", h);
	assert_string_equal(h, l3);
	/* The signature was for that move: after it, a second reset needs a new one. */
	refused("operators.threshold", "1 of 2 operator keys signed this reset",
	        "reset staging %s --reason 'back' --key ops", l4);
	/* Rollback: one operator, with a reason. */
	free(ok("rollback staging --reason 'emergency' --key ops"));
	head_of("staging", h);
	assert_string_not_equal(h, l3);
	verify_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_policies__promotion_without_required_verdicts),
	        cmocka_unit_test(test_policies__approvals_under_threshold),
	        cmocka_unit_test(test_policies__proposer_approving_its_own_update),
	        cmocka_unit_test(
	                test_policies__approval_or_verdict_for_another_version_baseline_or_channel),
	        cmocka_unit_test(test_policies__verdict_on_a_suite_the_policy_does_not_pin),
	        cmocka_unit_test(test_policies__replayed_or_expired_approval),
	        cmocka_unit_test(test_policies__post_dated_approval),
	        cmocka_unit_test(test_policies__policy_change_without_the_root_threshold),
	        cmocka_unit_test(test_policies__key_used_outside_its_role),
	        cmocka_unit_test(test_policies__revoked_key),
	        cmocka_unit_test(test_policies__root_rotation_without_both_thresholds),
	        cmocka_unit_test(test_policies__root_change_signed_after_it_expired),
	        cmocka_unit_test(test_policies__single_gate_runner_under_threshold),
	        cmocka_unit_test(test_policies__single_proposer_under_threshold),
	        cmocka_unit_test(test_policies__single_operator_reset_under_threshold),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
