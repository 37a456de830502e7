/*
 * tests/audit/test_tlog_go.c - the provable log checked by an independent
 * implementation: Go's golang.org/x/mod/sumdb/note opens sluice's
 * checkpoints with verifier keys from `sluice audit checkpoint --verifiers`,
 * and golang.org/x/mod/sumdb/tlog checks its inclusion (CheckRecord) and
 * consistency (CheckTree) proofs, with every leaf hash recomputed on the Go
 * side from `sluice audit export` (tests/audit/go/checkpoint_check.go).
 * A tampered export line, proof hash or checkpoint must be rejected by Go;
 * a forged checkpoint in the journal must be reported by sluice audit verify.
 *
 * The repository grows in three phases (keys, proposals, promotions) and a
 * checkpoint is kept after each, as an auditor would.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *work;
static char repo[4096], keysenv[4300], checker[4200];
static const char *env_ops[] = {keysenv, "SLUICE_KEY=ops", NULL};
static const char *env_alice[] = {keysenv, "SLUICE_KEY=alice", NULL};
static uint64_t sizes[3];

static char *sl(const char *const *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *sl(const char *const *env, const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = tu_sluice_okv(env, repo, fmt, ap);
	va_end(ap);
	return out;
}

static void propose(char out[41], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void propose(char out[41], const char *fmt, ...)
{
	char args[8192], *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	o = sl(env_alice, "propose %s", args);
	tu_last_line(out, o);
	free(o);
}

/* Save the newest checkpoint as work/cpN and return its tree size. */
static uint64_t keep_checkpoint(int n)
{
	char *o = sl(env_ops, "audit checkpoint --json"), path[4300];
	json_error_t jerr;
	json_t *v = json_loads(o, 0, &jerr);
	const char *text;
	uint64_t size;

	assert_non_null(v);
	text = json_string_value(json_object_get(v, "checkpoint"));
	assert_non_null(text);
	size = (uint64_t)json_integer_value(json_object_get(v, "size"));
	snprintf(path, sizeof(path), "%s/cp%d", work, n);
	tu_write(path, text, strlen(text));
	json_decref(v);
	free(o);
	return size;
}

static int setup(void **state)
{
	char base[41], v[41], prev[41];

	(void)state;
	work = tu_mkdtemp("tlog-go");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	snprintf(checker, sizeof(checker), "%s/checkpoint_check", work);
	/* Go builds offline from Debian's sources of x/mod. */
	tu_sh_ok(NULL,
	         "cd '%s' && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off "
	         "GOCACHE='%s/gocache' go build -o '%s' tests/audit/go/checkpoint_check.go",
	         SLUICE_SOURCE_DIR, work, checker);
	tu_sh_ok(NULL,
	         "%s model '%s/in/base' --hidden 32 --inter 64 --layers 2 --vocab 64 && "
	         "for i in 1 2 3 4 5 6; do %s lora '%s/in/a'$i --base '%s/in/base' --seed $i; done",
	         SLUICE_SYNTH, work, SLUICE_SYNTH, work, work);
	free(sl(env_ops, "init --required-gates none"));
	free(sl(env_ops, "key new alice --role proposer"));
	free(sl(env_ops, "key new ops --role operator"));
	for (int i = 0; i < 4; i++)
		free(sl(env_ops, "key new aud%d --role auditor", i));
	sizes[0] = keep_checkpoint(0);
	/* Proposals. */
	propose(base, "base '%s/in/base' -m base", work);
	memcpy(prev, base, 41);
	for (int i = 1; i <= 6; i++) {
		propose(v, "lora '%s/in/a%d' --onto %s -m a%d", work, i, prev, i);
		memcpy(prev, v, 41);
	}
	sizes[1] = keep_checkpoint(1);
	/* Promotions through three channels, and more keys. */
	free(sl(env_ops, "promote %s --channel dev", base));
	free(sl(env_ops, "promote %s --channel staging", base));
	free(sl(env_ops, "promote %s --channel prod", base));
	free(sl(env_ops, "promote %s --channel dev", prev));
	free(sl(env_ops, "promote %s --channel staging", prev));
	for (int i = 4; i < 16; i++)
		free(sl(env_ops, "key new aud%d --role auditor", i));
	free(sl(env_ops, "promote %s --channel prod", prev));
	sizes[2] = keep_checkpoint(2);
	assert_true(sizes[0] >= 7 && sizes[1] > sizes[0] && sizes[2] > sizes[1] && sizes[2] >= 30);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (work) {
		tu_rmtree(work);
		free(work);
	}
	return 0;
}

/* Write the output of a sluice command into work/name. */
static void save(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void save(const char *name, const char *fmt, ...)
{
	char args[8192], path[4300], *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	o = sl(env_ops, "%s", args);
	snprintf(path, sizeof(path), "%s/%s", work, name);
	tu_write(path, o, strlen(o));
	free(o);
}

static void save_verifiers(void)
{
	char *o = sl(env_ops, "audit checkpoint --verifiers --json"), path[4300];
	json_error_t jerr;
	json_t *v = json_loads(o, 0, &jerr), *k;
	FILE *f;
	size_t i;

	assert_non_null(v);
	snprintf(path, sizeof(path), "%s/verifiers", work);
	f = fopen(path, "w");
	assert_non_null(f);
	/* alice, ops, aud0..aud15 and the root key init made. */
	assert_true(json_array_size(json_object_get(v, "verifiers")) >= 18);
	json_array_foreach(json_object_get(v, "verifiers"), i, k)
	        fprintf(f, "%s\n", json_string_value(k));
	fclose(f);
	json_decref(v);
	free(o);
}

static tu_run_result go_check(const char *export, const char *extra)
{
	return tu_sh(NULL,
	             "cd '%s' && '%s' -verifiers verifiers -export %s -checkpoint cp0 "
	             "-checkpoint cp1 -checkpoint cp2 %s",
	             work, checker, export, extra);
}

static void test_tlog_go__go_verifies_checkpoints_and_proofs(void **state)
{
	char args[8192], *exp;
	size_t off = 0;
	tu_run_result r;

	(void)state;
	save_verifiers();
	save("export", "audit export");
	/* Inclusion of several entries in each kept tree, and consistency between them. */
	for (int t = 0; t < 3; t++) {
		uint64_t entries[3] = {1, sizes[t] / 2 + 1, sizes[t]};
		for (int e = 0; e < 3; e++) {
			char name[64];
			snprintf(name, sizeof(name), "inc-%d-%d.json", t, e);
			save(name, "audit prove --entry %llu --size %llu --json",
			     (unsigned long long)entries[e], (unsigned long long)sizes[t]);
			off += (size_t)snprintf(args + off, sizeof(args) - off, " -inclusion %s",
			                        name);
		}
	}
	save("con-01.json", "audit prove --from %llu --to %llu --json",
	     (unsigned long long)sizes[0], (unsigned long long)sizes[1]);
	save("con-12.json", "audit prove --from %llu --to %llu --json",
	     (unsigned long long)sizes[1], (unsigned long long)sizes[2]);
	/* The newest by default. */
	save("con-02.json", "audit prove --from %llu --json", (unsigned long long)sizes[0]);
	snprintf(args + off, sizeof(args) - off,
	         " -consistency con-01.json -consistency con-12.json -consistency con-02.json");
	r = go_check("export", args);
	if (r.status)
		fprintf(stderr, "%s%s", r.out, r.err);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "ok consistency from size"));
	assert_int_equal((int)(strstr(r.out, "ok inclusion of entry 1 in size") != NULL), 1);
	tu_run_dispose(&r);

	/* A tampered export line: Go recomputes another root. */
	tu_sh_ok(NULL,
	         "cd '%s' && sed '3s/\"seq\":3/\"seq\":33/' export > export-bad && "
	         "! cmp -s export export-bad",
	         work);
	r = go_check("export-bad", "");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "signed root"));
	tu_run_dispose(&r);

	/* A tampered proof hash: CheckRecord and CheckTree say no. */
	tu_sh_ok(
	        NULL,
	        "cd '%s' && python3 -c 'import json,base64,sys\n"
	        "for n in (\"inc-2-1.json\",\"con-12.json\"):\n"
	        "  d=json.load(open(n)); h=bytearray(base64.b64decode(d[\"hashes\"][0])); h[0]^=1\n"
	        "  d[\"hashes\"][0]=base64.b64encode(bytes(h)).decode()\n"
	        "  json.dump(d,open(\"bad-\"+n,\"w\"))'",
	        work);
	r = go_check("export", "-inclusion bad-inc-2-1.json");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "CheckRecord"));
	tu_run_dispose(&r);
	r = go_check("export", "-consistency bad-con-12.json");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "CheckTree"));
	tu_run_dispose(&r);

	/* A checkpoint whose size was changed no longer opens. */
	tu_sh_ok(NULL, "cd '%s' && sed '2s/^/1/' cp1 > cp1-bad && cp cp1 cp1-good", work);
	tu_sh_ok(NULL, "cd '%s' && cp cp1-bad cp1", work);
	r = go_check("export", "");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "note.Open"));
	tu_run_dispose(&r);
	tu_sh_ok(NULL, "cd '%s' && cp cp1-good cp1", work);

	/* Without the signer's verifier key, the note does not open either. */
	tu_sh_ok(NULL,
	         "cd '%s' && grep -v '^ops+' verifiers > v2 && cp verifiers v1 && cp v2 verifiers",
	         work);
	r = go_check("export", "");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "note.Open"));
	tu_run_dispose(&r);
	tu_sh_ok(NULL, "cd '%s' && cp v1 verifiers", work);

	/* The export is the same from the journal after the index is deleted and rebuilt. */
	exp = sl(env_ops, "audit export");
	tu_sh_ok(NULL, "rm -rf '%s/sluice/tlog-index'", repo);
	free(sl(env_ops, "audit prove --entry 2"));
	free(sl(env_ops, "audit reindex"));
	save("export2", "audit export");
	tu_sh_ok(NULL, "cd '%s' && cmp export export2", work);
	free(exp);
}

static void test_tlog_go__verify_reports_a_forged_checkpoint(void **state)
{
	tu_run_result r;
	char *o;

	(void)state;
	o = sl(env_ops, "audit verify --json");
	assert_non_null(strstr(o, "\"ok\": true"));
	free(o);
	/* Rewrite the newest entry with a checkpoint claiming another tree size. */
	tu_sh_ok(NULL,
	         "cd '%s' && export GIT_INDEX_FILE=\"$PWD/forge-index\" && "
	         "git read-tree refs/sluice/journal && "
	         "b=$(git show refs/sluice/journal:checkpoint | sed '2s/^/1/' | "
	         "git hash-object -w --stdin) && "
	         "git update-index --cacheinfo 100644,$b,checkpoint && t=$(git write-tree) && "
	         "c=$(git -c user.name=x -c user.email=x commit-tree $t -p "
	         "refs/sluice/journal^ -m forged) && git update-ref refs/sluice/journal $c && "
	         "rm -f forge-index",
	         repo);
	r = tu_sh(env_ops, "%s -C '%s' audit verify", TU_SLUICE, repo);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "checkpoint: its body differs"));
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_tlog_go__go_verifies_checkpoints_and_proofs),
	        cmocka_unit_test(test_tlog_go__verify_reports_a_forged_checkpoint),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
