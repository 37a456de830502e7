/*
 * tests/cli/test_json_contract.c - the --json outputs are what docs/cli.md
 * says they are. The test reads the table in docs/cli.md ("| `command` |
 * `{a, b, c?}` |"), runs each command with --json on a real repository,
 * and checks the top-level keys: every documented key without '?' is
 * present, and no key appears that the table does not list. Changing an
 * output without changing its documentation fails here, which is what
 * keeps the interface stable for the scripts that parse it.
 */
#include "testutil.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *work, *doc;

/* Say what is wrong on stderr, then fail the test. */
#define bad(...)                                                                                   \
	do {                                                                                       \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		fail();                                                                            \
	} while (0)
static char repo[4096], keysenv[4300], base[41], lora[41];
static const char *env[] = {keysenv, NULL};

/*
 * The documented top-level keys of the row whose first column holds
 * `label`: a JSON array of {"key", "optional"} (new reference).
 */
static json_t *documented(const char *label)
{
	char needle[256];
	const char *row, *p;
	json_t *keys = json_array();
	int depth = 0;

	snprintf(needle, sizeof(needle), "| `%s`", label);
	row = strstr(doc, needle);
	if (!row)
		bad("docs/cli.md has no row for `%s`", label);
	p = strstr(row + strlen(needle), "| `{");
	assert_non_null(p);
	p += 3; /* at '{' */
	for (const char *q = p; *q && *q != '\n'; q++) {
		if (*q == '{' || *q == '[' || *q == '(') {
			depth++;
			if (depth == 1)
				continue;
		} else if (*q == '}' || *q == ']' || *q == ')') {
			depth--;
			if (depth == 0)
				break;
		}
		/* A key starts after the opening brace or a comma at depth 1. */
		if (depth == 1 && (q[-1] == '{' || (q[-1] == ' ' && q[-2] == ','))) {
			char key[64];
			size_t n = 0;
			while ((islower((unsigned char)q[n]) || q[n] == '_') && n < sizeof(key) - 1)
				n++;
			if (n == 0)
				continue;
			memcpy(key, q, n);
			key[n] = 0;
			json_array_append_new(
			        keys, json_pack("{s:s,s:b}", "key", key, "optional", q[n] == '?'));
		}
	}
	return keys; /* empty for `{}`: then the output must be {} too */
}

/*
 * Run `sluice -C repo ARGS --json` and check its keys against row label.
 * Exit 0 is required, or also 1 with may_refuse (policy check documents
 * exit 1 for a blocked promotion, with the same JSON).
 */
static void check_exit(const char *label, const char *args, int may_refuse)
{
	json_t *keys = documented(label), *out, *k;
	tu_run_result r = tu_sh(env, "%s -C '%s' %s --json", TU_SLUICE, repo, args);
	json_error_t jerr;
	const char *name;
	json_t *v;
	size_t i;

	if (r.status != 0 && !(may_refuse && r.status == 1))
		bad("sluice %s --json: exit %d\n%s", args, r.status, r.err);
	out = json_loads(r.out, 0, &jerr);
	if (!json_is_object(out))
		bad("sluice %s --json: not a JSON object: %s", args, jerr.text);
	json_array_foreach(keys, i, k)
	{
		const char *key = json_string_value(json_object_get(k, "key"));
		if (!json_is_true(json_object_get(k, "optional")) && !json_object_get(out, key))
			bad("sluice %s --json lacks documented key '%s'", args, key);
	}
	json_object_foreach(out, name, v)
	{
		int known = 0;
		json_array_foreach(keys, i, k) known |=
		        !strcmp(json_string_value(json_object_get(k, "key")), name);
		if (!known)
			bad("sluice %s --json has key '%s' that docs/cli.md does not list "
			    "for `%s`",
			    args, name, label);
	}
	json_decref(out);
	json_decref(keys);
	tu_run_dispose(&r);
}

static void check(const char *label, const char *args)
{
	check_exit(label, args, 0);
}

static int setup(void **state)
{
	char path[4200];
	size_t len;
	tu_run_result r;
	(void)state;

	snprintf(path, sizeof(path), "%s/docs/cli.md", SLUICE_SOURCE_DIR);
	doc = (char *)tu_read(path, &len);
	assert_non_null(doc);
	work = tu_mkdtemp("json");
	snprintf(repo, sizeof(repo), "%s/repo", work);
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	tu_sh_ok(NULL, "%s lora '%s/a1' --base %s/test-model --seed 1 >/dev/null", SLUICE_SYNTH,
	         work, SLUICE_RESOURCES);
	r = tu_sh(env, "%s init '%s' --required-gates regression --json", TU_SLUICE, repo);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	tu_sh_ok(env, "%s -C '%s' key new alice --role proposer --role gate-runner >/dev/null",
	         TU_SLUICE, repo);
	tu_sh_ok(env, "%s -C '%s' key new ops --role operator >/dev/null", TU_SLUICE, repo);
	tu_sh_ok(env, "%s -C '%s' suite add %s/eval/suites/knowledge.json --key alice >/dev/null",
	         TU_SLUICE, repo, SLUICE_SOURCE_DIR);
	r = tu_sh(env, "%s -C '%s' propose base %s/test-model --key alice -m base", TU_SLUICE, repo,
	          SLUICE_RESOURCES);
	assert_int_equal(r.status, 0);
	tu_last_line(base, r.out);
	tu_run_dispose(&r);
	r = tu_sh(env, "%s -C '%s' propose lora '%s/a1' --onto %s --key alice -m a1", TU_SLUICE,
	          repo, work, base);
	assert_int_equal(r.status, 0);
	tu_last_line(lora, r.out);
	tu_run_dispose(&r);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	free(doc);
	return 0;
}

static void every_documented_output_matches_its_row(void **state)
{
	char args[4400];
	(void)state;

	snprintf(args, sizeof(args), "init '%s/other' --required-gates none", work);
	check("init", args);
	check("key new", "key new carol --role approver");
	check("key list", "key list");
	snprintf(args, sizeof(args),
	         "propose memory --onto %s --add %s/test-model/README.md "
	         "--key alice -m note",
	         lora, SLUICE_RESOURCES);
	check("propose *", args);
	check("log [REF]", "log");
	snprintf(args, sizeof(args), "show %s", lora);
	check("show REF", args);
	snprintf(args, sizeof(args), "diff %s %s", base, lora);
	check("diff A B", args);
	snprintf(args, sizeof(args), "checkout %s '%s/co'", lora, work);
	check("checkout REF DIR", args);
	snprintf(args, sizeof(args), "suite add %s/eval/suites/text.json --key alice",
	         SLUICE_SOURCE_DIR);
	check("suite add FILE…", args);
	check("suite list", "suite list");
	check("suite show NAME", "suite show knowledge");
	snprintf(args, sizeof(args), "eval %s --suite knowledge", base);
	check("eval REF --suite NAME…", args);
	snprintf(args, sizeof(args), "eval %s --suite knowledge --items", base);
	check("eval REF --suite NAME…", args);
	snprintf(args, sizeof(args), "gate %s --channel prod --key alice", base);
	check("gate REF --channel C", args);
	snprintf(args, sizeof(args), "promote %s --channel prod --key ops", base);
	check("promote", args);
	snprintf(args, sizeof(args), "gate %s --channel prod --no-record", lora);
	check("gate REF --channel C", args);
	snprintf(args, sizeof(args), "gate %s --channel prod --key alice", lora);
	check("gate REF --channel C", args);
	snprintf(args, sizeof(args), "promote %s --channel prod --key ops", lora);
	check("promote", args);
	check("promote", "rollback prod --reason test --key ops");
	check("history C", "history prod");
	check("status", "status");
	check("gate --history C", "gate --history prod");
	snprintf(args, sizeof(args), "policy check %s --channel prod", lora);
	check_exit("policy check REF --channel C", args, 1);
	check("root pending", "root pending");
	check("config KEY VALUE", "config sluice.http.model test-model");
	check("config KEY", "config sluice.http.model");
	check("config --list", "config --list");
	check("config KEY VALUE", "config --unset sluice.http.model");
	/* A refusal suite gives --token-drops its probes (no gate runs after this). */
	snprintf(args, sizeof(args), "suite add %s/eval/suites/harmful.json --key alice",
	         SLUICE_SOURCE_DIR);
	check("suite add FILE…", args);
	snprintf(args, sizeof(args), "gate --token-drops '%s/a1' --onto %s", work, base);
	check("gate --token-drops DIR --onto REF", args);
	/* A probe_strings suite gives --string-drops its strings. */
	snprintf(args, sizeof(args), "suite add %s/eval/suites/jargon-strings.json --key alice",
	         SLUICE_SOURCE_DIR);
	check("suite add FILE…", args);
	snprintf(args, sizeof(args), "gate --string-drops '%s/a1' --onto %s", work, base);
	check("gate --string-drops DIR --onto REF", args);
	/* A trigger suite gives --trigger-rises its prompts and triggers. */
	snprintf(args, sizeof(args), "suite add %s/eval/suites/triggers.json --key alice",
	         SLUICE_SOURCE_DIR);
	check("suite add FILE…", args);
	snprintf(args, sizeof(args), "gate --trigger-rises '%s/a1' --onto %s", work, base);
	check("gate --trigger-rises DIR --onto REF", args);
	snprintf(args, sizeof(args), "gate --token-rises '%s/a1' --onto %s", work, base);
	check("gate --token-rises DIR --onto REF", args);
	snprintf(args, sizeof(args), "export %s --adapter '%s/exp-a'", lora, work);
	check("export REF --adapter DIR", args);
	snprintf(args, sizeof(args), "export %s --gguf '%s/exp-g'", lora, work);
	check("export REF --gguf DIR", args);
	/* A hook whose receiver is down: deliver reports it pending (exit 1). */
	check("hook add", "hook add w --type webhook --url http://127.0.0.1:9/ --channel prod "
	                  "--key ops");
	check("hook list", "hook list");
	check("status", "status");
	check_exit("hook deliver", "hook deliver", 1);
	check("hook remove NAME", "hook remove w");
	check("verify", "verify");
	check("reindex", "reindex");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(every_documented_output_matches_its_row),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
