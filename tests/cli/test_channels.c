/*
 * tests/cli/test_channels.c - channels through the sluice program: promote
 * only forward, rollback with withdrawal, explicit reset, removal of one
 * adapter out of the middle of a stack, history and status from the
 * derived index (and identical answers after rebuilding it), mirror refs,
 * and the journal read with stock git.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char *work;
	char repo[4096];
	char base[41], a1[41], a2[41], a3[41];
} fixture;

static char keysenv[4300];
static const char *env_ops[] = {keysenv, "SLUICE_KEY=ops", NULL};
static const char *env_alice[] = {keysenv, "SLUICE_KEY=alice", NULL};

static tu_run_result run(fixture *f, const char *const *env, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static tu_run_result run(fixture *f, const char *const *env, const char *fmt, ...)
{
	char args[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return tu_sh(env, "%s -C '%s' %s", TU_SLUICE, f->repo, args);
}

static void ok(tu_run_result *r)
{
	if (r->status != 0)
		fprintf(stderr, "stdout: %s\nstderr: %s\n", r->out, r->err);
	assert_int_equal(r->status, 0);
}

static void propose(fixture *f, char out[41], const char *args)
{
	tu_run_result r = run(f, env_alice, "propose %s", args);
	ok(&r);
	tu_last_line(out, r.out);
	tu_run_dispose(&r);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char args[8192];
	tu_run_result r;

	f->work = tu_mkdtemp("chan");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", f->work);
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->work);
	tu_sh_ok(NULL,
	         "%s model '%s/in/base' --hidden 32 --inter 64 --layers 2 --vocab 64 && "
	         "for i in 1 2 3; do %s lora '%s/in/a'$i --base '%s/in/base' --seed $i; done",
	         SLUICE_SYNTH, f->work, SLUICE_SYNTH, f->work, f->work);
	/* Channel mechanics on a synthetic model: no gates (tests/gates gate real ones). */
	r = run(f, env_ops, "init --required-gates none");
	ok(&r);
	tu_run_dispose(&r);
	r = run(f, env_ops, "key new alice --role proposer");
	ok(&r);
	tu_run_dispose(&r);
	r = run(f, env_ops, "key new ops --role operator");
	ok(&r);
	tu_run_dispose(&r);
	snprintf(args, sizeof(args), "base '%s/in/base' -m base", f->work);
	propose(f, f->base, args);
	snprintf(args, sizeof(args), "lora '%s/in/a1' --onto %s -m a1", f->work, f->base);
	propose(f, f->a1, args);
	snprintf(args, sizeof(args), "lora '%s/in/a2' --onto %s -m a2", f->work, f->a1);
	propose(f, f->a2, args);
	snprintf(args, sizeof(args), "lora '%s/in/a3' --onto %s -m a3", f->work, f->a2);
	propose(f, f->a3, args);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	tu_rmtree(f->work);
	free(f->work);
	free(f);
	return 0;
}

/* A refusal: exit code, message, and the repository byte-for-byte unchanged. */
static void refused(fixture *f, const char *const *env, int code, const char *needle,
                    const char *args)
{
	tu_refused(env, f->repo, code, needle, args);
}

static char *head_of(fixture *f, const char *channel)
{
	tu_run_result r = run(f, env_ops, "status --json");
	char *p, *q, key[128];

	ok(&r);
	snprintf(key, sizeof(key), "\"name\": \"%s\"", channel);
	p = strstr(r.out, key);
	assert_non_null(p);
	/* status lists {"head", "name", "withdrawn"} with sorted keys: head precedes name. */
	while (p > r.out && strncmp(p, "\"head\": ", 8))
		p--;
	p += 8;
	if (*p == 'n') {
		tu_run_dispose(&r);
		return NULL;
	}
	q = strndup(p + 1, 40);
	tu_run_dispose(&r);
	return q;
}

static void test_channels__promote_forward_only_and_rollback_withdraws(void **state)
{
	fixture *f = *state;
	char args[256];
	tu_run_result r;
	char *h;

	snprintf(args, sizeof(args), "promote %s --channel prod", f->base);
	r = run(f, env_ops, "%s", args);
	ok(&r);
	tu_run_dispose(&r);
	/* A proposer key cannot move a channel. */
	snprintf(args, sizeof(args), "promote %s --channel prod", f->a1);
	tu_refused_journaled(env_alice, f->repo, 1, "operator role", "role", args);
	r = run(f, env_ops, "promote %s --channel prod", f->a2);
	ok(&r);
	tu_run_dispose(&r);
	/* An ancestor by promotion: the rollback attack. */
	snprintf(args, sizeof(args), "promote %s --channel prod", f->a1);
	refused(f, env_ops, 1, "does not descend", args);
	/* Rollback to the previous head; the version left is withdrawn. */
	r = run(f, env_ops, "rollback prod --reason 'bad delta'");
	ok(&r);
	assert_non_null(strstr(r.out, "withdrawn"));
	tu_run_dispose(&r);
	h = head_of(f, "prod");
	assert_string_equal(h, f->base);
	free(h);
	snprintf(args, sizeof(args), "promote %s --channel prod", f->a2);
	refused(f, env_ops, 1, "--override-withdrawn", args);
	/* A version the channel never held is no rollback target. */
	snprintf(args, sizeof(args), "rollback prod --to %s --reason x", f->a3);
	refused(f, env_ops, 4, "never held", args);
	refused(f, env_ops, 3, "--reason", "rollback prod");
	/* With a reason, the withdrawn version may return. */
	r = run(f, env_ops, "promote %s --channel prod --override-withdrawn 'fixed upstream'",
	        f->a2);
	ok(&r);
	tu_run_dispose(&r);
	h = head_of(f, "prod");
	assert_string_equal(h, f->a2);
	free(h);
	r = run(f, env_ops, "verify");
	ok(&r);
	tu_run_dispose(&r);
}

static void test_channels__reset_and_history(void **state)
{
	fixture *f = *state;
	tu_run_result r;
	char *h;

	r = run(f, env_ops, "promote %s --channel staging", f->a3);
	ok(&r);
	tu_run_dispose(&r);
	/* A fix made on prod flows back: staging is reset to prod's head, explicitly. */
	r = run(f, env_ops,
	        "reset staging prod --reason \"$(printf 'take the prod hotfix\\nfrom "
	        "\\033[31mops\\363\\240\\201\\201')\"");
	ok(&r);
	tu_run_dispose(&r);
	h = head_of(f, "staging");
	assert_string_equal(h, f->a2);
	free(h);
	r = run(f, env_ops, "history staging --json");
	ok(&r);
	assert_non_null(strstr(r.out, "\"action\": \"promote\""));
	assert_non_null(strstr(r.out, "\"action\": \"reset\""));
	assert_non_null(strstr(r.out, "take the prod hotfix\\nfrom \\u001B[31mops"));
	tu_run_dispose(&r);
	/*
	 * Read by a person, the reason keeps to its line, and its escape and its
	 * invisible tag character are shown, not obeyed or hidden.
	 */
	r = run(f, env_ops, "history staging");
	ok(&r);
	assert_non_null(strstr(r.out, ": take the prod hotfix\\nfrom \\e[31mops\\ue0041\n"));
	assert_null(strchr(r.out, 0x1b));
	tu_run_dispose(&r);
	/* Mirror refs for plain git users, and the journal's signatures through stock git. */
	tu_sh_ok(NULL, "test \"$(git -C '%s' rev-parse refs/sluice/channels/staging)\" = %s",
	         f->repo, f->a2);
	r = tu_sh(env_ops,
	          "%s -C '%s' key export --all --allowed-signers > '%s/as' && git -C '%s' -c "
	          "gpg.format=ssh -c gpg.ssh.allowedSignersFile='%s/as' log --first-parent "
	          "--show-signature refs/sluice/journal",
	          TU_SLUICE, f->repo, f->work, f->repo, f->work);
	ok(&r);
	assert_non_null(strstr(r.out, "Good \"git\" signature for ops"));
	assert_non_null(strstr(r.out, "sluice reset by ops"));
	tu_run_dispose(&r);
}

static void test_channels__remove_from_the_middle_of_a_stack_of_three(void **state)
{
	fixture *f = *state;
	char rm[41], args[8192];
	tu_run_result r;

	r = run(f, env_ops, "promote %s --channel prod", f->a3);
	ok(&r);
	tu_run_dispose(&r);
	r = run(f, env_alice, "remove %s --onto prod --json", f->a2);
	ok(&r);
	/* a3 was built on top of a2: a dependant. */
	assert_non_null(strstr(r.out, "\"dependants\""));
	assert_non_null(strstr(r.out, f->a3));
	{
		const char *v = strstr(r.out, "\n  \"version\": \"");
		assert_non_null(v);
		memcpy(rm, v + 15, 40);
		rm[40] = '\0';
	}
	tu_run_dispose(&r);
	/* The removal is a proposal like any other: promoted forward. */
	r = run(f, env_ops, "promote %s --channel prod", rm);
	ok(&r);
	tu_run_dispose(&r);
	snprintf(args, sizeof(args), "checkout prod '%s/co'", f->work);
	r = run(f, env_ops, "%s", args);
	ok(&r);
	tu_run_dispose(&r);
	tu_sh_ok(
	        NULL,
	        "cd '%s/co' && test -d adapters/a1 && test -d adapters/a3 && ! test -e adapters/a2 "
	        "&& b2sum -c B2SUMS >/dev/null && cmp adapters/a3/adapter_model.safetensors "
	        "'%s/in/a3/adapter_model.safetensors'",
	        f->work, f->work);
	/* A base cannot be removed; an update outside the channel's history cannot either. */
	snprintf(args, sizeof(args), "remove %s --onto prod", f->base);
	refused(f, env_alice, 4, "cannot be removed", args);
}

static void test_channels__index_rebuild_gives_identical_answers(void **state)
{
	fixture *f = *state;
	tu_run_result before_h, before_s, after_h, after_s, r;

	before_h = run(f, env_ops, "history prod --json");
	before_s = run(f, env_ops, "status --json");
	ok(&before_h);
	ok(&before_s);
	tu_sh_ok(NULL, "rm -rf '%s/sluice/journal-index' '%s/sluice/index'", f->repo, f->repo);
	r = run(f, env_ops, "reindex --json");
	ok(&r);
	assert_non_null(strstr(r.out, "\"journal_entries\""));
	tu_run_dispose(&r);
	after_h = run(f, env_ops, "history prod --json");
	after_s = run(f, env_ops, "status --json");
	ok(&after_h);
	ok(&after_s);
	assert_string_equal(before_h.out, after_h.out);
	assert_string_equal(before_s.out, after_s.out);
	/* A lagging index catches up by itself: delete it and ask without reindex. */
	tu_sh_ok(NULL, "rm -rf '%s/sluice/journal-index'", f->repo);
	/* verify, read-only, notes the missing index without failing. */
	r = run(f, env_ops, "verify");
	ok(&r);
	assert_non_null(strstr(r.out, "note: journal index"));
	tu_run_dispose(&r);
	tu_run_dispose(&after_h);
	after_h = run(f, env_ops, "history prod --json");
	ok(&after_h);
	assert_string_equal(before_h.out, after_h.out);
	tu_run_dispose(&before_h);
	tu_run_dispose(&before_s);
	tu_run_dispose(&after_h);
	tu_run_dispose(&after_s);
	r = run(f, env_ops, "verify");
	ok(&r);
	tu_run_dispose(&r);
}

/*
 * Nothing in sluice packs the journal's objects (several loose objects an
 * entry); stock `git gc` does, refs included (the sluice refs go into
 * packed-refs), and sluice reads and appends to the packed journal as
 * before: verify passes, history is unchanged, the next move lands.
 */
static void test_channels__git_gc_packs_the_journal(void **state)
{
	fixture *f = *state;
	tu_run_result before, after, r;
	char *head;

	before = run(f, env_ops, "history prod --json");
	ok(&before);
	tu_sh_ok(NULL,
	         "git -C '%s' gc -q && test $(find '%s/objects' -type f ! -path '*/pack/*' ! "
	         "-path '*/info/*' | wc -l) -le 2 && grep -q refs/sluice/journal '%s/packed-refs'",
	         f->repo, f->repo, f->repo);
	r = run(f, env_ops, "verify");
	ok(&r);
	assert_non_null(strstr(r.out, "ok:"));
	tu_run_dispose(&r);
	after = run(f, env_ops, "history prod --json");
	ok(&after);
	assert_string_equal(before.out, after.out);
	/* A move after packing: prod goes back to the version it held before. */
	head = head_of(f, "prod");
	r = run(f, env_ops, "rollback prod --reason 'after gc'");
	ok(&r);
	tu_run_dispose(&r);
	{
		char *now = head_of(f, "prod");
		assert_true(head == NULL || now == NULL || strcmp(head, now) != 0);
		free(now);
	}
	r = run(f, env_ops, "verify");
	ok(&r);
	tu_run_dispose(&r);
	/*
	 * The entry's unchanged documents (keys.json) are only in the pack: the
	 * journal names the blob of the entry before it without writing it
	 * again (core/journal.c, sluice_jstate's docs), and git finds it there.
	 */
	tu_sh_ok(NULL,
	         "cd '%s' && b=$(git rev-parse refs/sluice/journal:keys.json) && "
	         "test \"$b\" = \"$(git rev-parse refs/sluice/journal^:keys.json)\" && "
	         "test ! -e objects/$(echo $b | cut -c1-2)/$(echo $b | cut -c3-) && "
	         "git fsck --full --no-dangling --no-progress",
	         f->repo);
	free(head);
	tu_run_dispose(&before);
	tu_run_dispose(&after);
}

/*
 * The journal ref is moved by libsluice's own compare-and-swap, which
 * writes no reflog; where one is kept for it (core.logAllRefUpdates=always,
 * or true with a reflog already there) libgit2 moves it and logs each move.
 */
static void test_channels__journal_reflog_kept_where_asked(void **state)
{
	fixture *f = *state;
	tu_run_result r;

	tu_sh_ok(NULL, "test ! -e '%s/logs/refs/sluice/journal'", f->repo);
	tu_sh_ok(NULL, "git -C '%s' config core.logAllRefUpdates always", f->repo);
	r = run(f, env_ops, "key new bob --role proposer");
	ok(&r);
	tu_run_dispose(&r);
	tu_sh_ok(NULL,
	         "test $(git -C '%s' reflog show refs/sluice/journal | wc -l) = 1 && "
	         "git -C '%s' reflog show refs/sluice/journal | grep -q 'sluice key.add by root'",
	         f->repo, f->repo);
	/* "true" logs a ref whose reflog is there. */
	tu_sh_ok(NULL, "git -C '%s' config core.logAllRefUpdates true", f->repo);
	r = run(f, env_ops, "key new carol --role proposer");
	ok(&r);
	tu_run_dispose(&r);
	tu_sh_ok(NULL,
	         "test $(git -C '%s' reflog show refs/sluice/journal | wc -l) = 2 && "
	         "test $(git -C '%s' rev-parse refs/sluice/journal) = "
	         "$(git -C '%s' reflog show --format=%%H refs/sluice/journal | head -1)",
	         f->repo, f->repo, f->repo);
	r = run(f, env_ops, "verify");
	ok(&r);
	tu_run_dispose(&r);
}

/* The mirror ref of channel c names the channel's head (git rev-parse). */
static void mirror_is_head(fixture *f, const char *c, const char *want)
{
	char *h = head_of(f, c);

	assert_string_equal(h, want);
	tu_sh_ok(NULL, "test \"$(git -C '%s' rev-parse refs/sluice/channels/%s)\" = %s", f->repo, c,
	         want);
	free(h);
}

/*
 * Mirror refs through every kind of move, after git packed them away, and
 * with a spare file exchanged for the ref (core/journal.c, write_mirror):
 * after the second move the ref is the file that was the spare, and the
 * spare the ref's old file, holding the old head - nothing created or
 * freed. The spare is not a ref to git.
 */
static void test_channels__mirror_refs_follow_every_move(void **state)
{
	fixture *f = *state;
	char spare[4300], ref[4300];
	tu_run_result r;

	snprintf(spare, sizeof(spare), "%s/sluice/mirror-spare/mirrored", f->repo);
	snprintf(ref, sizeof(ref), "%s/refs/sluice/channels/mirrored", f->repo);
	r = run(f, env_ops, "promote %s --channel mirrored", f->a1);
	ok(&r);
	tu_run_dispose(&r);
	mirror_is_head(f, "mirrored", f->a1);
	/* git gc's pack-refs: the loose mirrors go into packed-refs. */
	tu_sh_ok(NULL, "git -C '%s' pack-refs --all && test ! -e '%s'", f->repo, ref);
	r = run(f, env_ops, "promote %s --channel mirrored", f->a2);
	ok(&r);
	tu_run_dispose(&r);
	mirror_is_head(f, "mirrored", f->a2);
	tu_sh_ok(NULL, "test -f '%s'", ref);
	/* Mirrored by an exchange: the spare is the ref's old file, holding a2. */
	r = run(f, env_ops, "rollback mirrored --reason 'mirror test'");
	ok(&r);
	tu_run_dispose(&r);
	mirror_is_head(f, "mirrored", f->a1);
	tu_sh_ok(NULL, "test \"$(cat '%s')\" = %s", spare, f->a2);
	{
		tu_run_result was = tu_sh(NULL, "stat -c %%i '%s'", spare), now;

		assert_int_equal(was.status, 0);
		r = run(f, env_ops,
		        "promote %s --channel mirrored --override-withdrawn 'mirror test, again'",
		        f->a2);
		ok(&r);
		tu_run_dispose(&r);
		mirror_is_head(f, "mirrored", f->a2);
		now = tu_sh(NULL, "stat -c %%i '%s'", ref);
		assert_int_equal(now.status, 0);
		assert_string_equal(now.out, was.out);
		tu_sh_ok(NULL, "test \"$(cat '%s')\" = %s", spare, f->a1);
		tu_run_dispose(&was);
		tu_run_dispose(&now);
	}
	tu_sh_ok(NULL,
	         "! git -C '%s' for-each-ref --format='%%(refname)' | grep -v "
	         "'^refs/sluice/\\(journal\\|channels/[a-z]*\\)$'",
	         f->repo);
	r = run(f, env_ops, "verify");
	ok(&r);
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_channels__promote_forward_only_and_rollback_withdraws),
	        cmocka_unit_test(test_channels__reset_and_history),
	        cmocka_unit_test(test_channels__remove_from_the_middle_of_a_stack_of_three),
	        cmocka_unit_test(test_channels__index_rebuild_gives_identical_answers),
	        cmocka_unit_test(test_channels__git_gc_packs_the_journal),
	        cmocka_unit_test(test_channels__journal_reflog_kept_where_asked),
	        cmocka_unit_test(test_channels__mirror_refs_follow_every_move),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
