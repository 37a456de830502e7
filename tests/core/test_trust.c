/*
 * tests/core/test_trust.c - journal entries written by hand, as an insider
 * holding one key (and the repository's disk) would write them, bypassing
 * sluice's own checks: verify must name each as a problem. The repository
 * has two root keys and a root threshold of 2.
 */
#include "testutil.h"

#include "repo.h"

#include "sluice/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef tu_repo fixture;

static int setup(void **state)
{
	fixture *f = tu_repo_new("trust");
	const char *roots[] = {"r1", "r2"};
	sluice_init_opts opts = {0};

	opts.root_threshold = 2;
	assert_int_equal(sluice_repo_init(&f->r, f->ctx, f->repo, roots, 2, &opts, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	tu_repo_free(*state);
	return 0;
}

/* Commit an entry on the head, signed by `signer`, with the given change. */
static void forge(fixture *f, const char *signer, const char *action, sluice_jchange *ch)
{
	sluice_key key = {0};
	sluice_jstate st;

	assert_int_equal(sluice_keys__load(f->ctx, &key, signer), 0);
	assert_int_equal(sluice_journal__read(f->r, &st), 0);
	assert_int_equal(sluice_journal__commit(f->r, NULL, &key, action, &st, ch), 0);
	sluice_journal__change_dispose(ch);
	sluice_journal__dispose(&st);
	sluice_key__dispose(&key);
}

/* The registry at the head plus a key "mallory" with every role (new reference). */
static json_t *registry_with_mallory(fixture *f)
{
	json_t *reg = NULL, *e = NULL;
	sluice_key m = {0};
	const char *roles[] = {"operator", "approver"};

	assert_int_equal(sluice_journal__keys(f->r, &reg), 0);
	assert_int_equal(sluice_keys__generate(f->ctx, &m, "mallory"), 0);
	assert_int_equal(sluice_repo__key_entry(f->ctx, &e, &m, roles, 2), 0);
	json_object_set_new(reg, "mallory", e);
	sluice_key__dispose(&m);
	return reg;
}

static void expect_problem(fixture *f, const char *needle)
{
	char *report = NULL;

	assert_int_equal(sluice_repo_verify(f->r, &report), SLUICE_ECORRUPT);
	if (!strstr(report, needle))
		fprintf(stderr, "verify said:\n%s\nwanted: %s\n", report, needle);
	assert_non_null(strstr(report, needle));
	sluice_free(report);
}

static void test_trust__one_root_key_adds_a_key_under_threshold_two(void **state)
{
	fixture *f = *state;
	sluice_jchange ch;
	char *report = NULL;

	assert_int_equal(sluice_repo_verify(f->r, &report), 0);
	sluice_free(report);
	memset(&ch, 0, sizeof(ch));
	ch.keys_after = registry_with_mallory(f);
	ch.record = json_pack("{s:s,s:b}", "name", "mallory", "applied", 1);
	forge(f, "r1", "key.add", &ch);
	expect_problem(f, "without the root signatures its thresholds ask");
}

static void test_trust__a_move_that_also_adds_a_key(void **state)
{
	fixture *f = *state;
	sluice_jchange ch;

	memset(&ch, 0, sizeof(ch));
	ch.keys_after = registry_with_mallory(f);
	ch.record = json_pack("{s:s}", "channel", "prod");
	/* Signed by a root key, so the signature check passes: the action is what is wrong. */
	forge(f, "r2", "anchor", &ch);
	expect_problem(f, "which only root changes may");
}

static void test_trust__a_signature_added_for_another_key(void **state)
{
	fixture *f = *state;
	sluice_jchange ch;
	json_t *trust;

	memset(&ch, 0, sizeof(ch));
	trust = json_pack("{s:{s:i},s:{s:{s:s,s:{s:s},s:[s,s],s:[]}}}", "thresholds", "root", 2,
	                  "pending", "00aa", "kind", "key.revoke", "change", "name", "r2",
	                  "signers", "SHA256:someone", "SHA256:someone-else", "new_signers");
	ch.trust_after = trust;
	ch.record = json_pack("{s:s,s:b}", "change", "00aa", "applied", 0);
	forge(f, "r1", "root.sign", &ch);
	expect_problem(f, "gains a signature of a key that did not sign this entry");
}

/*
 * The journal's clock. sluice refuses to date an entry before the one it
 * follows, or ahead of the local clock; an insider who writes one anyway
 * (here by hiding the head's time from the commit) is named by verify.
 */
static void test_trust__journal_time_going_backwards(void **state)
{
	fixture *f = *state;
	sluice_key key = {0};
	sluice_jchange ch;
	sluice_jstate st;

	assert_int_equal(sluice_keys__load(f->ctx, &key, "r1"), 0);
	assert_int_equal(sluice_journal__read(f->r, &st), 0);
	assert_int_equal(strlen(st.time), 20);
	memset(&ch, 0, sizeof(ch));
	ch.record = json_object();
	snprintf(ch.time, sizeof(ch.time), "2000-01-01T00:00:00Z");
	assert_int_equal(sluice_journal__commit(f->r, NULL, &key, "refuse", &st, &ch),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "journal times never go backwards"));
	sluice_journal__change_dispose(&ch);
	memset(&ch, 0, sizeof(ch));
	ch.record = json_object();
	snprintf(ch.time, sizeof(ch.time), "2999-01-01T00:00:00Z");
	assert_int_equal(sluice_journal__commit(f->r, NULL, &key, "refuse", &st, &ch),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "ahead of this host's clock"));
	sluice_journal__change_dispose(&ch);
	/* Nothing was written: verify is clean. */
	{
		char *report = NULL;
		assert_int_equal(sluice_repo_verify(f->r, &report), 0);
		sluice_free(report);
	}
	/* The forger's commit does not know the head's time. */
	st.time[0] = 0;
	memset(&ch, 0, sizeof(ch));
	ch.record = json_pack("{s:s,s:s}", "attempted", "promote", "rule", "role");
	snprintf(ch.time, sizeof(ch.time), "2000-01-01T00:00:00Z");
	assert_int_equal(sluice_journal__commit(f->r, NULL, &key, "refuse", &st, &ch), 0);
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);
	sluice_key__dispose(&key);
	expect_problem(f, "is dated 2000-01-01T00:00:00Z, before the entry before it");
	expect_problem(f, "journal times go backwards");
}

/*
 * A host whose clock is a little behind the journal's newest entry (written
 * by a host whose clock runs ahead, then pulled) still appends: its entry is
 * dated at the newest entry's time, so times never go backwards. A clock
 * further behind than SLUICE_CLOCK_SKEW is refused as broken.
 */
static void test_trust__a_clock_a_little_behind_the_journal(void **state)
{
	fixture *f = *state;
	sluice_key key = {0};
	sluice_jchange ch;
	sluice_jstate st;
	char now[32], ahead[32];
	char *report = NULL;

	assert_int_equal(sluice_keys__load(f->ctx, &key, "r1"), 0);
	sluice_repo__now(now);
	sluice__utc_format(ahead, sluice__utc_seconds(now) + 120);
	assert_int_equal(sluice_journal__read(f->r, &st), 0);
	memset(&ch, 0, sizeof(ch));
	ch.record = json_pack("{s:s,s:s}", "attempted", "promote", "rule", "role");
	snprintf(ch.time, sizeof(ch.time), "%s", ahead);
	assert_int_equal(sluice_journal__commit(f->r, NULL, &key, "refuse", &st, &ch), 0);
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);

	/* The next action, dated by this host's clock: the newest entry's time. */
	assert_int_equal(sluice_journal__read(f->r, &st), 0);
	assert_string_equal(st.time, ahead);
	memset(&ch, 0, sizeof(ch));
	ch.record = json_pack("{s:s,s:s}", "attempted", "promote", "rule", "role");
	assert_int_equal(sluice_journal__commit(f->r, NULL, &key, "refuse", &st, &ch), 0);
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);
	assert_int_equal(sluice_journal__read(f->r, &st), 0);
	assert_string_equal(st.time, ahead);
	/*
	 * A key's standing is judged at that time too: a key that expires
	 * between this host's clock and the journal's newest entry has expired
	 * for an entry written now. (The registry entry is edited in memory,
	 * in a copy: a state's documents are shared with the repository's
	 * state cache and read-only.)
	 */
	{
		char fp[SLUICE_FP_LEN], mid[32];
		const char *name;
		json_t *e, *keys = json_deep_copy(st.keys);
		json_decref(st.keys);
		st.keys = keys;
		sluice_keys__fingerprint(fp, key.pk);
		assert_non_null(e = sluice_trust__by_fp(st.keys, fp, &name));
		assert_int_equal(sluice_journal__check_role(f->r, &st, &key, NULL), 0);
		sluice__utc_format(mid, sluice__utc_seconds(now) + 60);
		json_object_set_new(e, "expires", json_string(mid));
		assert_int_equal(sluice_journal__check_role(f->r, &st, &key, NULL), SLUICE_EDENIED);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "expired"));
	}
	sluice_journal__dispose(&st);
	assert_int_equal(sluice_repo_verify(f->r, &report), 0);
	sluice_free(report);

	/* Ten minutes ahead is past the tolerance: refused, nothing written. */
	sluice__utc_format(ahead, sluice__utc_seconds(now) + 600);
	assert_int_equal(sluice_journal__read(f->r, &st), 0);
	memset(&ch, 0, sizeof(ch));
	ch.record = json_object();
	snprintf(ch.time, sizeof(ch.time), "%s", ahead);
	assert_int_equal(sluice_journal__commit(f->r, NULL, &key, "refuse", &st, &ch),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "ahead of this host's clock"));
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);
	sluice_key__dispose(&key);
}

/* One root key quietly drops another's pending change that had not expired. */
static void test_trust__a_pending_change_dropped_before_it_expired(void **state)
{
	fixture *f = *state;
	const char *roles[] = {"approver"};
	sluice_jchange ch;
	sluice_jstate st;
	char *report = NULL;

	assert_int_equal(sluice_key_new(f->r, "bob", roles, 1, NULL, "r1", &report), 0);
	assert_non_null(strstr(report, "\"applied\":false"));
	sluice_free(report);
	assert_int_equal(sluice_journal__read(f->r, &st), 0);
	assert_int_equal(json_object_size(json_object_get(st.trust, "pending")), 1);
	memset(&ch, 0, sizeof(ch));
	ch.trust_after = json_deep_copy(st.trust);
	json_object_clear(json_object_get(ch.trust_after, "pending"));
	ch.record = json_pack("{s:s,s:b}", "change", "00aa", "applied", 0);
	sluice_journal__dispose(&st);
	forge(f, "r2", "root.sign", &ch);
	expect_problem(f, "leaves the pending ones without being applied or having expired");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_trust__one_root_key_adds_a_key_under_threshold_two, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_trust__a_move_that_also_adds_a_key, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_trust__a_signature_added_for_another_key,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_trust__journal_time_going_backwards, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_trust__a_pending_change_dropped_before_it_expired, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_trust__a_clock_a_little_behind_the_journal,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
