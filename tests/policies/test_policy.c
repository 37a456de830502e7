/*
 * tests/policies/test_policy.c - the policy parser: the shipped example
 * resolves to the values it documents, the gate configuration a policy
 * gives, and every refusal names the file, line, column and rule path.
 */
#include "testutil.h"

#include "internal.h"
#include "policy.h"
#include "gates.h"
#include "repo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sluice_ctx *ctx;

static int setup(void **state)
{
	(void)state;
	return sluice_ctx_new(&ctx);
}

static int teardown(void **state)
{
	(void)state;
	sluice_ctx_free(ctx);
	ctx = NULL;
	return 0;
}

static json_t *parse_ok(const char *yaml)
{
	json_t *pol = NULL;
	int rc = sluice_policy__parse(ctx, &pol, yaml, strlen(yaml), "policy.yaml");

	if (rc < 0)
		fail_msg("refused: %s", sluice_ctx_errmsg(ctx));
	assert_non_null(pol);
	return pol;
}

static json_t *example(void)
{
	size_t len;
	unsigned char *data = tu_read(SLUICE_SOURCE_DIR "/policies/example.yaml", &len);
	json_t *pol = NULL;
	int rc;

	assert_non_null(data);
	rc = sluice_policy__parse(ctx, &pol, data, len, "example.yaml");
	if (rc < 0)
		fail_msg("example refused: %s", sluice_ctx_errmsg(ctx));
	free(data);
	return pol;
}

/* The refusal of yaml, whose message must contain needle. */
static void refused_len(const char *yaml, size_t len, const char *needle)
{
	json_t *pol = (json_t *)0x1; /* must stay untouched */
	int rc = sluice_policy__parse(ctx, &pol, yaml, len, "policy.yaml");

	if (rc != SLUICE_EINVALID)
		fail_msg("expected a refusal containing \"%s\" for:\n%s\ngot %d: %s", needle, yaml,
		         rc, sluice_ctx_errmsg(ctx));
	assert_ptr_equal(pol, (json_t *)0x1);
	if (!strstr(sluice_ctx_errmsg(ctx), needle))
		fail_msg("message \"%s\" lacks \"%s\"", sluice_ctx_errmsg(ctx), needle);
}

static void refused(const char *yaml, const char *needle)
{
	refused_len(yaml, strlen(yaml), needle);
}

static json_t *at(json_t *v, const char *path)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
		v = json_object_get(v, tok);
	if (!v)
		fail_msg("no %s", path);
	return v;
}

static long long ival(json_t *v, const char *path)
{
	json_t *x = at(v, path);
	if (!json_is_integer(x))
		fail_msg("%s is not an integer", path);
	return (long long)json_integer_value(x);
}

/* A JSON array of strings as "a,b,c". */
static const char *strs(json_t *arr, char buf[256])
{
	size_t i, off = 0;
	json_t *v;

	assert_true(json_is_array(arr));
	buf[0] = 0;
	json_array_foreach(arr, i, v)
	{
		assert_true(json_is_string(v));
		off += (size_t)snprintf(buf + off, 256 - off, "%s%s", i ? "," : "",
		                        json_string_value(v));
	}
	return buf;
}

static void test_policy__example_resolves(void **state)
{
	json_t *pol = example(), *prod, *staging, *dev, *other;
	char b[256];

	(void)state;
	assert_int_equal(ival(pol, "version"), 1);
	prod = at(pol, "channels.prod");
	staging = at(pol, "channels.staging");
	dev = at(pol, "channels.dev");

	assert_int_equal(ival(prod, "approvals.count"), 2);
	assert_true(json_is_false(at(prod, "approvals.proposer_counts")));
	assert_string_equal(strs(at(prod, "approvals.roles"), b), "approver");
	assert_string_equal(strs(at(prod, "from"), b), "staging");
	assert_string_equal(strs(at(prod, "inconclusive.roles"), b), "approver");
	assert_int_equal(ival(prod, "inconclusive.count"), 2);
	assert_int_equal(ival(prod, "expiry.approvals"), 3 * 86400);
	assert_int_equal(ival(prod, "expiry.verdicts"), 86400);
	assert_true(fabs(json_real_value(at(prod, "drift_budget.max_drop")) - 0.10) < 1e-12);
	assert_true(fabs(json_real_value(at(prod, "gates.thresholds.regression.max_drop")) - 0.05) <
	            1e-12);

	assert_string_equal(strs(at(staging, "from"), b), "dev");
	assert_string_equal(strs(at(staging, "gates.required"), b), "regression,safety,poisoning");
	assert_int_equal(ival(staging, "approvals.count"), 1);
	/* Inherited from default (expiry) and from the built-in defaults. */
	assert_int_equal(ival(staging, "expiry.approvals"), 7 * 86400);
	assert_true(json_is_null(at(staging, "expiry.verdicts")));
	assert_true(json_is_null(at(staging, "drift_budget.max_drop")));
	assert_string_equal(strs(at(staging, "inconclusive.roles"), b), "");
	assert_int_equal(ival(staging, "inconclusive.count"), 1);
	assert_string_equal(strs(at(staging, "emergency.rollback"), b), "operator");
	assert_int_equal(json_object_size(at(staging, "gates.thresholds")), 0);
	assert_int_equal(json_object_size(at(staging, "suites")), 0);

	assert_string_equal(strs(at(dev, "gates.required"), b), "regression");
	assert_int_equal(ival(dev, "approvals.count"), 0);
	assert_string_equal(strs(at(dev, "from"), b), "");

	/* A channel the policy does not list takes default. */
	other = sluice_policy__channel(pol, "canary");
	assert_ptr_equal(other, at(pol, "default"));
	assert_ptr_equal(sluice_policy__channel(pol, "prod"), prod);
	assert_int_equal(ival(other, "expiry.approvals"), 7 * 86400);
	assert_string_equal(strs(at(other, "gates.required"), b), "regression,safety,poisoning");
	json_decref(pol);
}

/* Every RULES object holds every key, whatever the input said. */
static void test_policy__fully_resolved(void **state)
{
	json_t *pol = parse_ok("version: 1\nchannels:\n  a: {}\n"), *r;
	static const char *const paths[] = {"from",
	                                    "gates.required",
	                                    "gates.thresholds",
	                                    "drift_budget.max_drop",
	                                    "suites",
	                                    "approvals.roles",
	                                    "approvals.count",
	                                    "approvals.proposer_counts",
	                                    "inconclusive.roles",
	                                    "inconclusive.count",
	                                    "expiry.approvals",
	                                    "expiry.verdicts",
	                                    "emergency.rollback"};
	char b[256];

	(void)state;
	r = at(pol, "channels.a");
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
		at(r, paths[i]);
	assert_int_equal(json_object_size(r), 8);
	assert_true(json_equal(r, at(pol, "default")));
	assert_string_equal(strs(at(r, "approvals.roles"), b), "approver");
	assert_int_equal(ival(r, "expiry.approvals"), 604800);
	json_decref(pol);
}

/* Absent second-level keys come from default, key by key. */
static void test_policy__second_level_merge(void **state)
{
	json_t *pol =
	        parse_ok("version: 1\n"
	                 "default:\n"
	                 "  approvals: {roles: [approver, operator], count: 1, "
	                 "proposer_counts: true}\n"
	                 "  expiry: {approvals: 90m, verdicts: 3600}\n"
	                 "  suites: {facts: "
	                 "\"3f1a000000000000000000000000000000000000000000000000000000000000\"}\n"
	                 "channels:\n"
	                 "  prod:\n"
	                 "    approvals: {count: 3}\n"
	                 "    expiry: {verdicts: never}\n"
	                 "    suites: {}\n"
	                 "  \"1\": {}\n");
	json_t *prod = at(pol, "channels.prod");
	char b[256];

	(void)state;
	assert_int_equal(ival(prod, "approvals.count"), 3);
	assert_string_equal(strs(at(prod, "approvals.roles"), b), "approver,operator");
	assert_true(json_is_true(at(prod, "approvals.proposer_counts")));
	assert_int_equal(ival(prod, "expiry.approvals"), 90 * 60);
	assert_true(json_is_null(at(prod, "expiry.verdicts")));
	assert_int_equal(ival(pol, "default.expiry.verdicts"), 3600);
	/* suites is replaced whole, not merged. */
	assert_int_equal(json_object_size(at(prod, "suites")), 0);
	assert_non_null(json_object_get(at(pol, "channels"), "1"));
	assert_string_equal(json_string_value(at(pol, "default.suites.facts")),
	                    "3f1a000000000000000000000000000000000000000000000000000000000000");
	json_decref(pol);
}

static void test_policy__gate_config(void **state)
{
	json_t *pol = example(), *cfg = NULL, *def = NULL;
	char b[256];

	(void)state;
	assert_int_equal(sluice_gates__default_config(ctx, &def, NULL, 0, 0), 0);

	assert_int_equal(sluice_policy__gate_config(ctx, &cfg, pol, "prod"), 0);
	assert_string_equal(strs(at(cfg, "required_gates"), b), "regression,safety,poisoning");
	assert_true(fabs(sluice_gates__threshold(cfg, "regression", "max_drop") - 0.05) < 1e-12);
	assert_true(fabs(sluice_gates__threshold(cfg, "regression", "anchor_max_drop") - 0.10) <
	            1e-12);
	/* Untouched thresholds keep the defaults. */
	assert_true(sluice_gates__threshold(cfg, "regression", "kl_mean_max") ==
	            sluice_gates__threshold(def, "regression", "kl_mean_max"));
	assert_true(sluice_gates__threshold(cfg, "safety", "refusal_floor") ==
	            sluice_gates__threshold(def, "safety", "refusal_floor"));
	assert_true(json_number_value(at(cfg, "alpha")) == json_number_value(at(def, "alpha")));
	json_decref(cfg);

	assert_int_equal(sluice_policy__gate_config(ctx, &cfg, pol, "dev"), 0);
	assert_string_equal(strs(at(cfg, "required_gates"), b), "regression");
	assert_true(sluice_gates__threshold(cfg, "regression", "max_drop") ==
	            sluice_gates__threshold(def, "regression", "max_drop"));
	assert_true(sluice_gates__threshold(cfg, "regression", "anchor_max_drop") ==
	            sluice_gates__threshold(def, "regression", "anchor_max_drop"));
	json_decref(cfg);

	/* An unlisted channel gets default's (here: the built-in) configuration. */
	assert_int_equal(sluice_policy__gate_config(ctx, &cfg, pol, "canary"), 0);
	json_object_set(def, "required_gates", at(cfg, "required_gates"));
	assert_true(json_equal(cfg, def));
	json_decref(cfg);
	json_decref(pol);

	/* alpha, an integer threshold and an empty required list. */
	pol = parse_ok("version: 1\n"
	               "default:\n"
	               "  gates:\n"
	               "    required: []\n"
	               "    thresholds: {alpha: 0.01, poisoning: {random_insertions: 32}}\n");
	assert_int_equal(ival(pol, "default.gates.thresholds.poisoning.random_insertions"), 32);
	assert_int_equal(sluice_policy__gate_config(ctx, &cfg, pol, "x"), 0);
	assert_int_equal(json_array_size(at(cfg, "required_gates")), 0);
	assert_true(json_number_value(at(cfg, "alpha")) == 0.01);
	assert_true(sluice_gates__threshold(cfg, "poisoning", "random_insertions") == 32);
	json_decref(cfg);
	json_decref(pol);
	json_decref(def);

	/* Not a parsed policy: refused, naming the channel. */
	pol = json_pack("{s:{s:[s]}}", "default", "gates", "nonsense");
	assert_int_equal(sluice_policy__gate_config(ctx, &cfg, pol, "prod"), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "prod"));
	json_decref(pol);
}

static void test_policy__numbers_and_durations(void **state)
{
	json_t *pol = parse_ok("version: 1\n"
	                       "default:\n"
	                       "  drift_budget: {max_drop: 1}\n"
	                       "  expiry: {approvals: 45s, verdicts: 2h}\n"
	                       "  inconclusive: {roles: [operator, approver], count: 64}\n"
	                       "  gates: {thresholds: {safety: {margin_shift_max: 1.5e-1}}}\n");

	(void)state;
	assert_true(json_is_integer(at(pol, "default.drift_budget.max_drop")));
	assert_int_equal(ival(pol, "default.expiry.approvals"), 45);
	assert_int_equal(ival(pol, "default.expiry.verdicts"), 7200);
	assert_int_equal(ival(pol, "default.inconclusive.count"), 64);
	assert_true(json_is_real(at(pol, "default.gates.thresholds.safety.margin_shift_max")));
	json_decref(pol);
}

/* Table of refusals: input, and what the message must say. */
static const struct {
	const char *yaml, *needle;
} refusals[] = {
        /* structure */
        {"version: 1\nchannels:\n  prod:\n    approvals:\n      roles: [approver]\n"
         "      count: 2\n      cout: 3\n",
         "policy.yaml:7:7: channels.prod.approvals: unknown key 'cout' (allowed: roles, count, "
         "proposer_counts)"},
        {"version: 1\nchanels: {}\n",
         "policy.yaml:2:1: (top level): unknown key 'chanels' (allowed: version, default, "
         "channels)"},
        {"version: 1\ndefault:\n  form: [dev]\n", "policy.yaml:3:3: default: unknown key 'form'"},
        {"version: 1\nchannels:\n  prod: {}\n  prod: {}\n",
         "policy.yaml:4:3: channels: duplicate key 'prod'"},
        {"version: 1\nversion: 1\n", "policy.yaml:2:1: (top level): duplicate key 'version'"},
        {"version: 1\ndefault:\n  approvals: {count: 1, count: 2}\n",
         "policy.yaml:3:25: default.approvals: duplicate key 'count'"},
        {"version: 1\ndefault:\n  approvals: [approver]\n",
         "policy.yaml:3:14: default.approvals: expected a map, got a list"},
        {"version: 1\ndefault:\n  from: staging\n",
         "policy.yaml:3:9: default.from: expected a list, got the string 'staging'"},
        {"version: 1\nchannels: [a, b]\n", "policy.yaml:2:11: channels: expected a map"},
        {"version: 1\ndefault:\n", "policy.yaml:2:9: default: expected a map, got nothing"},
        {"- 1\n- 2\n", "policy.yaml:1:1: (top level): expected a map, got a list"},
        {"version: 1\ndefault:\n  approvals:\n    count: [2]\n",
         "policy.yaml:4:12: default.approvals.count: expected a single value, got a list"},
        {"version: 1\n? [a]\n: 1\n", "policy.yaml:2:3: (top level): a key must be a single value"},
        /* plain data only */
        {"version: 1\ndefault: &d {}\n", "policy.yaml:2:10: default: anchor '&d' refused"},
        {"version: 1\ndefault: {}\nchannels:\n  prod: *d\n",
         "policy.yaml:4:9: channels.prod: alias '*d' refused"},
        {"version: !!int 1\n", "policy.yaml:1:10: version: tag 'tag:yaml.org,2002:int' refused"},
        {"version: 1\ndefault: !rules {}\n", "policy.yaml:2:10: default: tag '!rules' refused"},
        {"%TAG !e! tag:example.com,2000:\n---\nversion: 1\n",
         "policy.yaml:1:1: YAML: %TAG directives refused"},
        /* documents */
        {"version: 1\n---\nversion: 1\n",
         "policy.yaml:2:1: YAML: a second document: a policy is exactly one YAML document"},
        {"", "policy.yaml:1:1: (top level): no document: the policy is empty"},
        {"# only a comment\n", "policy.yaml:1:1: (top level): no document"},
        {"---\n...\n", "policy.yaml:2:1: (top level): the document is empty"},
        /* libyaml's own errors */
        {"version: 1\ndefault: {from: [dev}\n",
         "policy.yaml:2:21: YAML: did not find expected ',' or ']'"},
        {"version: 1\n  bad: indent: here\n", "policy.yaml:2:6: YAML: "},
        {"version: 1\ndefault:\n\tfrom: []\n", "policy.yaml:3:1: YAML: found character that "
                                               "cannot start any token"},
        {"version: \"1\xff\"\n", "policy.yaml:1:12: YAML: invalid leading UTF-8 octet"},
        /* scalars */
        {"version: 1\ndefault:\n  approvals: {count: 2x}\n",
         "policy.yaml:3:22: default.approvals.count: expected a decimal integer"},
        {"version: 1\ndefault:\n  approvals: {count: \"2\"}\n",
         "policy.yaml:3:22: default.approvals.count: expected a decimal integer (no quotes"},
        {"version: 1\ndefault:\n  approvals: {count: 010}\n",
         "policy.yaml:3:22: default.approvals.count: expected a decimal integer"},
        {"version: 1\ndefault:\n  approvals: {count: 0x10}\n",
         "policy.yaml:3:22: default.approvals.count: expected a decimal integer"},
        {"version: 1\ndefault:\n  approvals: {count: 65}\n",
         "policy.yaml:3:22: default.approvals.count: 65 is out of range: an integer in 0..64"},
        {"version: 1\ndefault:\n  approvals: {count: 99999999999999999999999}\n",
         "default.approvals.count: 99999999999999999999999 is out of range"},
        {"version: 1\ndefault:\n  approvals: {count: -1}\n",
         "policy.yaml:3:22: default.approvals.count: -1 is out of range"},
        {"version: 1\ndefault:\n  gates: {thresholds: {regression: {max_drop: .inf}}}\n",
         "policy.yaml:3:47: default.gates.thresholds.regression.max_drop: .inf is not a finite "
         "number"},
        {"version: 1\ndefault:\n  gates: {thresholds: {regression: {max_drop: .nan}}}\n",
         "default.gates.thresholds.regression.max_drop: .nan is not a finite number"},
        {"version: 1\ndefault:\n  gates: {thresholds: {regression: {max_drop: 1e999}}}\n",
         "default.gates.thresholds.regression.max_drop: 1e999 is not a finite number"},
        {"version: 1\ndefault:\n  gates: {thresholds: {regression: {max_drop: 0x1p3}}}\n",
         "default.gates.thresholds.regression.max_drop: expected a number"},
        {"version: 1\ndefault:\n  approvals: {proposer_counts: yes}\n",
         "policy.yaml:3:32: default.approvals.proposer_counts: expected true or false, got the "
         "boolean 'yes'"},
        {"version: 1\ndefault:\n  approvals: {proposer_counts: True}\n",
         "default.approvals.proposer_counts: expected true or false"},
        {"version: 1\ndefault:\n  approvals: {proposer_counts: \"true\"}\n",
         "default.approvals.proposer_counts: expected true or false, got the string 'true'"},
        {"version: 1\ndefault:\n  from: [yes]\n",
         "policy.yaml:3:10: default.from[0]: expected a string, got the boolean 'yes' (quote it"},
        {"version: 1\ndefault:\n  from: [\"a\\0b\"]\n",
         "policy.yaml:3:10: default.from[0]: a NUL character in a string"},
        /* names */
        {"version: 1\ndefault:\n  gates: {required: [regression, speed]}\n",
         "policy.yaml:3:34: default.gates.required[1]: unknown gate 'speed' (gates: regression, "
         "safety, poisoning)"},
        {"version: 1\ndefault:\n  approvals: {roles: [approvers]}\n",
         "policy.yaml:3:23: default.approvals.roles[0]: unknown role 'approvers' (roles: root, "
         "proposer, gate-runner, approver, operator, auditor)"},
        {"version: 1\ndefault:\n  approvals: {roles: [approver, auditor]}\n",
         "policy.yaml:3:33: default.approvals.roles[1]: the auditor role is read-only"},
        {"version: 1\ndefault:\n  gates: {required: [safety, safety]}\n",
         "policy.yaml:3:30: default.gates.required[1]: 'safety' is given twice"},
        {"version: 1\ndefault:\n  emergency: {rollback: [operator, root, operator]}\n",
         "default.emergency.rollback[2]: 'operator' is given twice"},
        {"version: 1\nchannels:\n  .hidden: {}\n",
         "policy.yaml:3:3: channels: '.hidden' is not a channel name"},
        {"version: 1\nchannels:\n  main.lock: {}\n", "channels: 'main.lock' is not a channel name"},
        {"version: 1\nchannels:\n  a..b: {}\n", "channels: 'a..b' is not a channel name"},
        {"version: 1\nchannels:\n  \"with space\": {}\n",
         "channels: 'with space' is not a channel name"},
        {"version: 1\nchannels:\n  "
         "a2345678901234567890123456789012345678901234567890123456789012345: {}\n",
         "is not a channel name"},
        {"version: 1\nchannels:\n  1: {}\n",
         "policy.yaml:3:3: channels: expected a string, got the number '1' (quote it"},
        {"version: 1\ndefault:\n  suites: {on: "
         "3f1a000000000000000000000000000000000000000000000000000000000000}\n",
         "policy.yaml:3:12: default.suites: expected a string, got the boolean 'on'"},
        {"version: 1\nchannels:\n  prod: {from: [-x]}\n",
         "policy.yaml:3:17: channels.prod.from[0]: '-x' is not a channel name"},
        {"version: 1\nchannels:\n  prod: {from: [staging, prod]}\n",
         "policy.yaml:3:26: channels.prod.from: 'prod' names the channel itself"},
        {"version: 1\ndefault: {from: [dev]}\nchannels:\n  dev: {approvals: {count: 1}}\n",
         "policy.yaml:4:8: channels.dev.from: default.from names 'dev'"},
        {"version: 1\ndefault: {from: [dev]}\n",
         "policy.yaml:2:18: default.from[0]: 'dev' is not listed in channels"},
        {"version: 1\nchannels:\n  prod: {from: [stagin]}\n",
         "policy.yaml:3:17: channels.prod.from[0]: 'stagin' is not listed in channels: the "
         "promotion order names only channels the policy lists"},
        /* digests */
        {"version: 1\ndefault:\n  suites: {facts: 3F1A}\n",
         "policy.yaml:3:19: default.suites.facts: '3F1A' is not a suite digest"},
        {"version: 1\ndefault:\n  suites: {facts: "
         "3F1A000000000000000000000000000000000000000000000000000000000000}\n",
         "default.suites.facts: '3F1A0000"},
        {"version: 1\ndefault:\n  suites: {.facts: "
         "3f1a000000000000000000000000000000000000000000000000000000000000}\n",
         "policy.yaml:3:12: default.suites: '.facts' is not a suite name"},
        /* rules */
        {"version: 1\ndefault:\n  emergency: {rollback: [root]}\n",
         "policy.yaml:3:25: default.emergency.rollback: must include 'operator'"},
        {"version: 1\ndefault:\n  emergency: {rollback: []}\n",
         "default.emergency.rollback: must include 'operator'"},
        {"version: 1\ndefault:\n  inconclusive: {roles: [operator], count: 0}\n",
         "policy.yaml:3:44: default.inconclusive.count: 0 is out of range: an integer in 1..64"},
        {"version: 1\ndefault:\n  approvals: {roles: [], count: 1}\n",
         "policy.yaml:3:33: default.approvals: count 1 needs roles"},
        {"version: 1\ndefault:\n  approvals: {count: 1}\nchannels:\n"
         "  prod:\n    approvals: {roles: []}\n",
         "policy.yaml:6:24: channels.prod.approvals: count 1 needs roles"},
        {"version: 1\ndefault:\n  approvals: {roles: []}\nchannels:\n"
         "  prod:\n    approvals: {count: 2}\n",
         "policy.yaml:6:24: channels.prod.approvals: count 2 needs roles"},
        {"version: 1\ndefault:\n  drift_budget: {max_drop: 0}\n",
         "policy.yaml:3:28: default.drift_budget.max_drop: must be a number in (0, 1]"},
        {"version: 1\ndefault:\n  drift_budget: {max_drop: 1.5}\n",
         "default.drift_budget.max_drop: must be a number in (0, 1]"},
        {"version: 1\ndefault:\n  expiry: {approvals: 7w}\n",
         "policy.yaml:3:23: default.expiry.approvals: expected never, seconds, or <n>s|m|h|d"},
        {"version: 1\ndefault:\n  expiry: {approvals: 0}\n",
         "default.expiry.approvals: 0 is out of range: 1 second to 36500d"},
        {"version: 1\ndefault:\n  expiry: {verdicts: 36501d}\n",
         "default.expiry.verdicts: 36501d is out of range"},
        {"version: 1\ndefault:\n  expiry: {verdicts: 99999999999999999999d}\n",
         "default.expiry.verdicts: 99999999999999999999d is out of range"},
        {"version: 1\ndefault:\n  expiry: {verdicts: null}\n",
         "default.expiry.verdicts: expected never, seconds, or <n>s|m|h|d (e.g. 7d), got nothing"},
        /* thresholds */
        {"version: 1\ndefault:\n  gates: {thresholds: {regresion: {}}}\n",
         "policy.yaml:3:24: default.gates.thresholds: unknown key 'regresion' (allowed: alpha, "
         "regression, safety, poisoning)"},
        {"version: 1\ndefault:\n  gates: {thresholds: {safety: {flip_rate: 0.1}}}\n",
         "policy.yaml:3:33: default.gates.thresholds.safety: unknown key 'flip_rate' (allowed: "
         "max_flip_rate, "},
        /* The poisoning gate's keys are many; the message lists them all, to the last. */
        {"version: 1\ndefault:\n  gates: {thresholds: {poisoning: {trigger_answer_mx: 1}}}\n",
         "trigger_answer_max, trigger_answer_top_k, token_drop_max, token_drop_probes, "
         "token_drop_tokens_max, string_drop_max)"},
        {"version: 1\ndefault:\n  gates: {thresholds: {alpha: 0.5}}\n",
         "policy.yaml:3:31: default.gates.thresholds.alpha: must be a number in (0, 0.5)"},
        {"version: 1\ndefault:\n  gates: {thresholds: {safety: {refusal_floor: -0.8}}}\n",
         "policy.yaml:3:48: default.gates.thresholds.safety.refusal_floor: -0.8 has the wrong "
         "sign"},
        {"version: 1\ndefault:\n  gates: {thresholds: {poisoning: {random_insertions: 2.5}}}\n",
         "default.gates.thresholds.poisoning.random_insertions: expected an integer (the default "
         "is 16)"},
        /* A share written as a percentage, a null larger than a scan may draw. */
        {"version: 1\ndefault:\n  gates: {thresholds: {safety: {refusal_floor: 80}}}\n",
         "policy.yaml:3:48: default.gates.thresholds.safety.refusal_floor: 80 is out of range: "
         "it must be 0 to 1"},
        {"version: 1\ndefault:\n  gates: {thresholds: {poisoning: {random_insertions: 5000}}}\n",
         "default.gates.thresholds.poisoning.random_insertions: 5000 is out of range: it must be "
         "8 to 4096"},
        {"version: 1\ndefault:\n  gates: {thresholds: {regression: {anchor_max_drop: 0.2}}}\n",
         "policy.yaml:3:37: default.gates.thresholds.regression: anchor_max_drop is set by "
         "drift_budget.max_drop"},
        {"version: 1\ndefault:\n  gates: {thresholds: {regression: 0.1}}\n",
         "default.gates.thresholds.regression: expected a map, got the number '0.1'"},
        /* version */
        {"default: {}\n", "policy.yaml:1:1: version: missing (write 'version: 1')"},
        {"version: 2\n", "policy.yaml:1:10: version: version 2 is not understood"},
        {"version: 1.0\n", "policy.yaml:1:10: version: expected the integer 1, got the number"},
        {"version: \"1\"\n", "policy.yaml:1:10: version: expected the integer 1"},
        /* the version is read before the rest */
        {"version: 3\nnew_key: 1\n", "version 3 is not understood"},
};

static void test_policy__refusals(void **state)
{
	unsigned bad = 0;

	(void)state;
	/* Report every case that fails, not just the first. */
	for (size_t i = 0; i < sizeof(refusals) / sizeof(*refusals); i++) {
		const char *y = refusals[i].yaml;
		json_t *pol = NULL;
		int rc = sluice_policy__parse(ctx, &pol, y, strlen(y), "policy.yaml");
		if (rc != SLUICE_EINVALID || !strstr(sluice_ctx_errmsg(ctx), refusals[i].needle)) {
			print_message("case %zu: got %d \"%s\"\n  wanted \"%s\"\n", i, rc,
			              rc < 0 ? sluice_ctx_errmsg(ctx) : "", refusals[i].needle);
			bad++;
		}
		json_decref(pol);
	}
	assert_int_equal(bad, 0);
}

static void test_policy__sizes(void **state)
{
	size_t n = SLUICE_POLICY_MAX_BYTES + 1, off;
	char *big = malloc(n + 1), deep[256];

	(void)state;
	assert_non_null(big);
	/* A valid policy padded with a comment past 1 MiB. */
	off = (size_t)snprintf(big, n + 1, "version: 1\n#");
	memset(big + off, 'x', n - off);
	big[n] = 0;
	refused_len(big, n, "policy.yaml: 1048577 bytes: a policy is at most 1048576 bytes");
	/* One byte less parses. */
	big[n - 1] = 0;
	json_decref(parse_ok(big));
	free(big);

	/* Nesting: the root map is level 1, so 15 lists inside it are fine, 16 are not. */
	snprintf(deep, sizeof(deep), "version: 1\nx: %s1%s\n", "[[[[[[[[[[[[[[[",
	         "]]]]]]]]]]]]]]]");
	refused(deep, "(top level): unknown key 'x'");
	snprintf(deep, sizeof(deep), "version: 1\nx: %s1%s\n", "[[[[[[[[[[[[[[[[",
	         "]]]]]]]]]]]]]]]]");
	refused(deep, "policy.yaml:2:19: x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested "
	              "deeper than 16 maps and lists");
}

/*
 * The promotion order: a from that leads back to its channel (directly,
 * through others, or through default's from) is refused where the cycle
 * closes, naming the channels on it; a long chain is fine.
 */
static void test_policy__promotion_order_cycles(void **state)
{
	static const char diamond[] = "version: 1\nchannels:\n  dev: {}\n  a: {from: [dev]}\n"
	                              "  b: {from: [dev]}\n  prod: {from: [a, b]}\n";
	json_t *pol = NULL;
	char *yaml;
	size_t cap = 64 * 3000, o;
	(void)state;

	refused("version: 1\nchannels:\n  dev: {from: [prod]}\n  staging: {from: [dev]}\n"
	        "  prod: {from: [staging]}\n",
	        "policy.yaml:4:20: channels.staging.from[0]: the promotion order goes round in a "
	        "cycle (dev from prod, prod from staging, staging from dev): nothing could ever "
	        "enter these channels");
	refused("version: 1\nchannels:\n  a: {from: [b]}\n  b: {from: [c, a]}\n  c: {}\n",
	        "policy.yaml:4:17: channels.b.from[1]: the promotion order goes round in a cycle "
	        "(a from b, b from a)");
	/* b takes default's from [a], and a takes from b. */
	refused("version: 1\ndefault: {from: [a]}\nchannels:\n  a: {from: [b]}\n  b: {}\n",
	        "policy.yaml:5:6: channels.b.from: the promotion order goes round in a cycle (a "
	        "from b, b from a; this from is default's)");
	/* A diamond is an order, not a cycle. */
	assert_int_equal(sluice_policy__parse(ctx, &pol, diamond, sizeof(diamond) - 1, NULL), 0);
	json_decref(pol);
	pol = NULL;

	/* 3000 channels in a chain (c1 from c0, ...): walked without deep recursion. */
	yaml = malloc(cap);
	assert_non_null(yaml);
	o = (size_t)snprintf(yaml, cap, "version: 1\nchannels:\n  c0: {}\n");
	for (int i = 1; i < 3000; i++)
		o += (size_t)snprintf(yaml + o, cap - o, "  c%d: {from: [c%d]}\n", i, i - 1);
	assert_int_equal(sluice_policy__parse(ctx, &pol, yaml, o, NULL), 0);
	json_decref(pol);
	pol = NULL;
	/* ...and closed into a cycle at its start. */
	o = (size_t)snprintf(yaml, cap, "version: 1\nchannels:\n  c0: {from: [c2999]}\n");
	for (int i = 1; i < 3000; i++)
		o += (size_t)snprintf(yaml + o, cap - o, "  c%d: {from: [c%d]}\n", i, i - 1);
	assert_int_equal(sluice_policy__parse(ctx, &pol, yaml, o, NULL), SLUICE_EINVALID);
	assert_null(pol);
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "policy:4:15: channels.c1.from[0]: the "
	                                               "promotion order goes round in a cycle "
	                                               "(c0 from c2999, c2999 from c2998, "));
	free(yaml);
}

/* Every input or nothing: a refusal leaves nothing behind (ASan checks leaks). */
static void test_policy__refusal_leaves_nothing(void **state)
{
	json_t *pol = NULL;
	static const char good[] = "version: 1\nchannels:\n  a: {}\n  b: {approvals: {count: 1}}\n";

	(void)state;
	/* Late refusals, after channels were built. */
	refused("version: 1\nchannels:\n  a: {from: [b]}\n  b: {from: [a]}\n  c: {cout: 1}\n",
	        "channels.c: unknown key 'cout'");
	assert_int_equal(sluice_policy__parse(ctx, &pol, good, sizeof(good) - 1, NULL), 0);
	assert_int_equal(json_object_size(at(pol, "channels")), 2);
	json_decref(pol);
	/* Without a name, messages say "policy". */
	refused_len("version: 2\n", 11, "version 2");
	pol = NULL;
	assert_int_equal(sluice_policy__parse(ctx, &pol, "version: 2\n", 11, NULL),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "policy:1:10: version:"));
	assert_null(pol);
}

/* Fail the N-th allocation of the tree: each is ENOMEM, with nothing left behind. */
static int fail_nth(void *data, sluice_fault_op op, const char *what)
{
	int *left = data;

	(void)what;
	return op == SLUICE_FAULT_ALLOC && (*left)-- == 0;
}

static void test_policy__allocation_failures(void **state)
{
	size_t len;
	unsigned char *data = tu_read(SLUICE_SOURCE_DIR "/policies/example.yaml", &len);
	int n, left, rc = -1, failed = 0;

	(void)state;
	assert_non_null(data);
	for (n = 0; rc < 0; n++) {
		json_t *pol = NULL;
		left = n;
		sluice_ctx_set_fault_hook(ctx, fail_nth, &left);
		rc = sluice_policy__parse(ctx, &pol, data, len, "example.yaml");
		sluice_ctx_set_fault_hook(ctx, NULL, NULL);
		if (rc < 0) {
			assert_int_equal(rc, SLUICE_ENOMEM);
			assert_null(pol);
			failed++;
		}
		json_decref(pol);
	}
	/* The example's tree takes hundreds of allocations; every one was failed once. */
	assert_true(failed > 100);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_policy__example_resolves, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_policy__fully_resolved, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_policy__second_level_merge, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_policy__gate_config, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_policy__numbers_and_durations, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_policy__refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_policy__promotion_order_cycles, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_policy__sizes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_policy__refusal_leaves_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_policy__allocation_failures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
