/*
 * tests/audit/test_attest.c - sluice attest: the envelopes verify under a
 * second DSSE implementation written from the specification
 * (tests/audit/verify_dsse.py, PyNaCl), each provenance subject's sha256 is
 * sha256sum's of the checked-out file, the verdicts are the journaled
 * envelopes byte for byte, and a flipped payload byte fails.
 */
#include "testutil.h"

#include "sluice/common.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY "/usr/bin/python3 " SLUICE_SOURCE_DIR "/tests/audit/verify_dsse.py"

static char *work;
static char repo[4096], keysenv[4300];
static const char *env[] = {keysenv, NULL};
static char base[41], lora[41];

static void propose(char out[41], const char *fmt, const char *a, const char *b)
{
	tu_run_result res = tu_sh(env, fmt, TU_SLUICE, repo, a, b);
	if (res.status)
		fprintf(stderr, "%s", res.err);
	assert_int_equal(res.status, 0);
	tu_last_line(out, res.out);
	tu_run_dispose(&res);
}

static int setup(void **state)
{
	(void)state;
	work = tu_mkdtemp("attest");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	tu_sh_ok(NULL,
	         "mkdir -p '%s/in' && cp -r '%s/test-model' '%s/in/base' && %s lora '%s/in/q' "
	         "--base '%s/in/base' --seed 5",
	         work, SLUICE_RESOURCES, work, SLUICE_SYNTH, work, work);
	tu_sh_ok(env,
	         "%s init '%s' --root-key root --required-gates regression && %s -C '%s' key new "
	         "alice --role proposer && %s -C '%s' key new ops --role operator && %s -C '%s' "
	         "key new gr --role gate-runner && %s -C '%s' suite add '%s/eval/suites/"
	         "knowledge.json' --key alice",
	         TU_SLUICE, repo, TU_SLUICE, repo, TU_SLUICE, repo, TU_SLUICE, repo, TU_SLUICE,
	         repo, SLUICE_SOURCE_DIR);
	propose(base, "%s -C '%s' propose base '%s/in/base' -m base --key alice%s", work, "");
	tu_sh_ok(env,
	         "%s -C '%s' gate %s --channel prod --key gr && %s -C '%s' promote %s "
	         "--channel prod --key ops",
	         TU_SLUICE, repo, base, TU_SLUICE, repo, base);
	propose(lora,
	        "%s -C '%s' propose lora '%s/in/q' --onto %s -m quiet --key alice --source "
	        "corpus=sha256:5b7a497e5bf64ef1096f9f5929438a8c3514a17df8cda2774daf0517f0514b47 "
	        "--method sft --code-revision abc123",
	        work, base);
	tu_sh_ok(env,
	         "%s -C '%s' gate %s --channel prod --key gr && %s -C '%s' gate %s --channel "
	         "staging --key gr",
	         TU_SLUICE, repo, lora, TU_SLUICE, repo, lora);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_sh_ok(NULL, "rm -rf '%s'", work);
	free(work);
	return 0;
}

/* The openssh public key line of a key, without its newline. */
static void pubkey(char *out, size_t n, const char *name)
{
	tu_run_result r = tu_sh(env, "%s key export %s --openssh", TU_SLUICE, name);
	assert_int_equal(r.status, 0);
	snprintf(out, n, "%s", r.out);
	out[strcspn(out, "\n")] = '\0';
	tu_run_dispose(&r);
}

static json_t *statement_of(const char *path)
{
	tu_run_result r = tu_sh(NULL,
	                        "/usr/bin/python3 -c 'import json,base64,sys; "
	                        "print(base64.b64decode(json.load(open(sys.argv[1]))"
	                        "[\"payload\"]).decode())' '%s'",
	                        path);
	json_error_t jerr;
	json_t *v;

	assert_int_equal(r.status, 0);
	v = json_loads(r.out, 0, &jerr);
	assert_non_null(v);
	tu_run_dispose(&r);
	return v;
}

static int has_dep(json_t *pred, const char *uri)
{
	json_t *d;
	size_t i;

	json_array_foreach(
	        json_object_get(json_object_get(pred, "buildDefinition"), "resolvedDependencies"),
	        i, d) if (!strcmp(json_string_value(json_object_get(d, "uri")), uri)) return 1;
	return 0;
}

static void test_attest__envelopes_verify_independently(void **state)
{
	char out[4200], pk_ops[512], pk_gr[512], uri[4400];
	tu_run_result r;
	json_t *rep, *f, *st, *pred, *ext;
	json_error_t jerr;
	size_t i, nverdicts = 0;
	(void)state;

	snprintf(out, sizeof(out), "%s/att", work);
	r = tu_sh(env, "%s -C '%s' attest %s --key ops --out '%s' --json", TU_SLUICE, repo, lora,
	          out);
	if (r.status)
		fprintf(stderr, "%s", r.err);
	assert_int_equal(r.status, 0);
	rep = json_loads(r.out, 0, &jerr);
	assert_non_null(rep);
	tu_run_dispose(&r);
	pubkey(pk_ops, sizeof(pk_ops), "ops");
	pubkey(pk_gr, sizeof(pk_gr), "gr");
	tu_sh_ok(env, "%s -C '%s' checkout %s '%s/co'", TU_SLUICE, repo, lora, work);

	/* The provenance, signed by ops: verify, and check every subject with sha256sum. */
	tu_sh_ok(NULL,
	         "%s --pubkey '%s' --checkout '%s/co' --sums '%s/sums' '%s/provenance.intoto.json'",
	         VERIFY, pk_ops, work, work, out);
	tu_sh_ok(NULL,
	         "cd '%s/co' && sha256sum --quiet -c '%s/sums' && test $(wc -l < '%s/sums') "
	         "-eq $(($(find . -type f | wc -l) - 1))",
	         work, work, work);
	/* The verdicts, signed by the gate runner, exactly as journaled. */
	json_array_foreach(json_object_get(rep, "files"), i, f)
	{
		const char *kind = json_string_value(json_object_get(f, "kind"));
		if (strcmp(kind, "verdict"))
			continue;
		nverdicts++;
		tu_sh_ok(NULL, "%s --pubkey '%s' '%s/%s'", VERIFY, pk_gr, out,
		         json_string_value(json_object_get(f, "file")));
		/* Byte for byte: the canonical text of the record's envelope, as signed. */
		tu_sh_ok(
		        NULL,
		        "git --git-dir '%s' show %s:record.json | /usr/bin/python3 -c 'import "
		        "json,sys; sys.stdout.write(json.dumps(json.load(sys.stdin)[\"envelope\"], "
		        "sort_keys=True, separators=(\",\", \":\")))' | cmp - '%s/%s'",
		        repo, json_string_value(json_object_get(f, "entry")), out,
		        json_string_value(json_object_get(f, "file")));
		/* Not under another key. */
		r = tu_sh(NULL, "%s --pubkey '%s' '%s/%s'", VERIFY, pk_ops, out,
		          json_string_value(json_object_get(f, "file")));
		assert_int_equal(r.status, 1);
		tu_run_dispose(&r);
	}
	assert_int_equal(nverdicts, 2); /* prod and staging */

	/* The provenance says what the proposer declared. */
	snprintf(uri, sizeof(uri), "%s/provenance.intoto.json", out);
	st = statement_of(uri);
	assert_string_equal(json_string_value(json_object_get(st, "predicateType")),
	                    "https://slsa.dev/provenance/v1");
	pred = json_object_get(st, "predicate");
	ext = json_object_get(json_object_get(pred, "buildDefinition"), "externalParameters");
	assert_string_equal(json_string_value(json_object_get(ext, "kind")), "lora");
	assert_string_equal(json_string_value(json_object_get(ext, "message")), "quiet");
	assert_string_equal(json_string_value(json_object_get(ext, "method")), "sft");
	assert_string_equal(json_string_value(json_object_get(ext, "code_revision")), "abc123");
	snprintf(uri, sizeof(uri), "sluice:version/%s", base);
	assert_true(has_dep(pred, uri));
	assert_true(has_dep(pred, "sluice:source/corpus"));
	assert_non_null(strstr(
	        json_string_value(json_object_get(
	                json_object_get(json_object_get(pred, "runDetails"), "builder"), "id")),
	        "https://sluice.invalid/proposer/SHA256:"));
	json_decref(st);
	json_decref(rep);
}

static void test_attest__tampering_fails(void **state)
{
	char out[4200], pk[512];
	tu_run_result r;
	(void)state;

	snprintf(out, sizeof(out), "%s/att2", work);
	tu_sh_ok(env, "%s -C '%s' attest %s --key alice --out '%s'", TU_SLUICE, repo, base, out);
	pubkey(pk, sizeof(pk), "alice");
	tu_sh_ok(NULL, "%s --pubkey '%s' '%s/provenance.intoto.json'", VERIFY, pk, out);
	/* One payload byte flipped (through its base64): the signature no longer holds. */
	tu_sh_ok(
	        NULL,
	        "/usr/bin/python3 -c 'import json,base64,sys; p=sys.argv[1]; e=json.load(open(p)); "
	        "b=bytearray(base64.b64decode(e[\"payload\"])); b[10]^=1; "
	        "e[\"payload\"]=base64.b64encode(bytes(b)).decode(); json.dump(e,open(p,\"w\"))' "
	        "'%s/provenance.intoto.json'",
	        out);
	r = tu_sh(NULL, "%s --pubkey '%s' '%s/provenance.intoto.json'", VERIFY, pk, out);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "does not verify"));
	tu_run_dispose(&r);
	/* Another key's signature is not alice's. */
	tu_sh_ok(env, "%s -C '%s' attest %s --key ops --out '%s/att3'", TU_SLUICE, repo, base,
	         work);
	r = tu_sh(NULL, "%s --pubkey '%s' '%s/att3/provenance.intoto.json'", VERIFY, pk, work);
	assert_int_equal(r.status, 1);
	tu_run_dispose(&r);
}

static void test_attest__needs_a_registered_key(void **state)
{
	tu_run_result r;
	(void)state;

	/* A key that exists but that this repository never registered. */
	tu_sh_ok(env, "%s init '%s/other' --root-key stranger >/dev/null", TU_SLUICE, work);
	r = tu_sh(env, "%s -C '%s' attest %s --key stranger --out '%s/att4'", TU_SLUICE, repo, base,
	          work);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "not registered"));
	tu_run_dispose(&r);
	r = tu_sh(env, "%s -C '%s' attest %s --out '%s/att4'", TU_SLUICE, repo, base, work);
	assert_int_equal(r.status, SLUICE_EXIT_USAGE);
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_attest__envelopes_verify_independently),
	        cmocka_unit_test(test_attest__tampering_fails),
	        cmocka_unit_test(test_attest__needs_a_registered_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
