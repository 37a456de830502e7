/*
 * cli/trust_cmds.c - the commands of roles, root changes, policies and
 * approvals: key revoke, root pending/sign/rotate, policy set/show/check,
 * approve. They share one table-driven option parser.
 */
#include "cli.h"

#include "sluice/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void human_change(json_t *v)
{
	json_t *old = json_object_get(v, "root_signatures"),
	       *nw = json_object_get(v, "new_root_signatures");

	printf("%s %.16s: ", json_string_value(json_object_get(v, "kind")),
	       json_string_value(json_object_get(v, "change")));
	if (json_is_true(json_object_get(v, "applied")))
		printf("applied");
	else
		printf("pending: %lld of %lld root signatures",
		       (long long)json_integer_value(json_object_get(old, "have")),
		       (long long)json_integer_value(json_object_get(old, "need")));
	if (nw && !json_is_true(json_object_get(v, "applied")))
		printf(", %lld of %lld new root signatures",
		       (long long)json_integer_value(json_object_get(nw, "have")),
		       (long long)json_integer_value(json_object_get(nw, "need")));
	if (json_integer_value(json_object_get(v, "version")))
		printf(" (policy version %lld, digest %.16s)",
		       (long long)json_integer_value(json_object_get(v, "version")),
		       json_string_value(json_object_get(v, "digest")));
	printf("\n");
	if (!json_is_true(json_object_get(v, "applied")))
		printf("other root keys sign it with: sluice root sign %.16s --key NAME\n",
		       json_string_value(json_object_get(v, "change")));
}

int cli_key_revoke(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *reason = NULL, *signer = NULL, *expires_in = NULL;
	cli_opt specs[] = {{"--reason", &reason, NULL, NULL, NULL},
	                   {"--signer", &signer, NULL, NULL, NULL},
	                   {"--expires-in", &expires_in, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "key revoke", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("key revoke", "which key? give a NAME");
	if (!reason)
		return cli_usage("key revoke", "give --reason TEXT: it is journaled");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if ((error = sluice_root_set_expiry(repo, expires_in)) == 0)
		error = sluice_key_revoke(repo, pos[0], reason, signer, &report);
	return cli_finish(env, repo, error, report, human_change);
}

static void human_pending(json_t *v)
{
	json_t *p;
	size_t i;

	printf("root threshold: %lld\n",
	       (long long)json_integer_value(json_object_get(v, "root_threshold")));
	if (!json_array_size(json_object_get(v, "pending")))
		printf("no pending root changes\n");
	json_array_foreach(json_object_get(v, "pending"), i, p)
	{
		char *what = json_dumps(json_object_get(p, "what"), JSON_COMPACT | JSON_SORT_KEYS);
		printf("%.16s %-12s by %-10s %lld/%lld root",
		       json_string_value(json_object_get(p, "change")),
		       json_string_value(json_object_get(p, "kind")),
		       json_string_value(json_object_get(p, "proposed_by")),
		       (long long)json_integer_value(
		               json_object_get(json_object_get(p, "root_signatures"), "have")),
		       (long long)json_integer_value(
		               json_object_get(json_object_get(p, "root_signatures"), "need")));
		if (json_integer_value(
		            json_object_get(json_object_get(p, "new_root_signatures"), "need")))
			printf(", %lld/%lld new root",
			       (long long)json_integer_value(json_object_get(
			               json_object_get(p, "new_root_signatures"), "have")),
			       (long long)json_integer_value(json_object_get(
			               json_object_get(p, "new_root_signatures"), "need")));
		if (json_is_true(json_object_get(p, "expired")))
			printf("  EXPIRED at %s (will not apply; dropped by the next root change)",
			       json_string_value(json_object_get(p, "expires")));
		else if (json_is_string(json_object_get(p, "expires")))
			printf("  expires %s", json_string_value(json_object_get(p, "expires")));
		printf("  %s\n", what ? what : "");
		free(what);
	}
}

int cli_root_pending(cli_env *env, int argc, char **argv)
{
	cli_opt specs[] = {{NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "root pending", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_root_pending(repo, &report);
	return cli_finish(env, repo, error, report, human_pending);
}

int cli_root_sign(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *key = getenv("SLUICE_KEY");
	cli_opt specs[] = {{"--key", &key, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "root sign", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("root sign", "which change? give its id (sluice root pending)");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_root_sign(repo, pos[0], key, &report);
	return cli_finish(env, repo, error, report, human_change);
}

int cli_root_rotate(cli_env *env, int argc, char **argv)
{
	const char *add[CLI_MAX_LIST], *rem[CLI_MAX_LIST], *threshold = NULL, *signer = NULL,
	                                                   *expires_in = NULL;
	size_t nadd = 0, nrem = 0, npos;
	cli_opt specs[] = {{"--add", NULL, add, &nadd, NULL},
	                   {"--remove", NULL, rem, &nrem, NULL},
	                   {"--threshold", &threshold, NULL, NULL, NULL},
	                   {"--signer", &signer, NULL, NULL, NULL},
	                   {"--expires-in", &expires_in, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL, *end = NULL;
	long t;
	int rc, error;

	if ((rc = cli_parse_opts(env, "root rotate", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if (!threshold || (t = strtol(threshold, &end, 10)) < 1 || t > 64 || *end)
		return cli_usage("root rotate",
		                 "give --threshold N (1-64): the new root threshold");
	if (!nadd && !nrem)
		return cli_usage("root rotate", "give --add NAME and/or --remove NAME");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if ((error = sluice_root_set_expiry(repo, expires_in)) == 0)
		error = sluice_root_rotate(repo, add, nadd, rem, nrem, (unsigned)t, signer,
		                           &report);
	return cli_finish(env, repo, error, report, human_change);
}

int cli_role_threshold(cli_env *env, int argc, char **argv)
{
	const char *pos[2], *signer = NULL, *expires_in = NULL;
	cli_opt specs[] = {{"--signer", &signer, NULL, NULL, NULL},
	                   {"--expires-in", &expires_in, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL, *end = NULL;
	size_t npos;
	long t;
	int rc, error;

	if ((rc = cli_parse_opts(env, "role threshold", argc, argv, specs, pos, 2, &npos)))
		return rc;
	if (npos != 2 || (t = strtol(pos[1], &end, 10)) < 1 || t > 64 || *end)
		return cli_usage("role threshold", "give ROLE and N (1-64)");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if ((error = sluice_root_set_expiry(repo, expires_in)) == 0)
		error = sluice_role_threshold(repo, pos[0], (unsigned)t, signer, &report);
	return cli_finish(env, repo, error, report, human_change);
}

int cli_policy_set(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *signer = NULL, *expires_in = NULL;
	cli_opt specs[] = {{"--signer", &signer, NULL, NULL, NULL},
	                   {"--expires-in", &expires_in, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "policy set", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("policy set", "which file? give a YAML policy");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if ((error = sluice_root_set_expiry(repo, expires_in)) == 0)
		error = sluice_policy_set(repo, pos[0], signer, &report);
	return cli_finish(env, repo, error, report, human_change);
}

static void human_policy(json_t *v)
{
	printf("# policy version %lld of %lld%s, digest %s\n",
	       (long long)json_integer_value(json_object_get(v, "version")),
	       (long long)json_integer_value(json_object_get(v, "latest")),
	       json_is_true(json_object_get(v, "in_effect")) ? " (in effect)" : "",
	       json_string_value(json_object_get(v, "digest")));
	fputs(json_string_value(json_object_get(v, "text")), stdout);
}

int cli_policy_show(cli_env *env, int argc, char **argv)
{
	const char *version = NULL;
	cli_opt specs[] = {{"--version", &version, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL, *end = NULL;
	long n = 0;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "policy show", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if (version && ((n = strtol(version, &end, 10)) < 1 || *end))
		return cli_usage("policy show", "--version wants a positive number");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_policy_show(repo, (unsigned)n, NULL, &report);
	return cli_finish(env, repo, error, report, human_policy);
}

static void human_check(json_t *v)
{
	json_t *c;
	size_t i;

	const char *policy = json_string_value(json_object_get(v, "policy"));

	/* A policy's digest shortened to 16 digits; the placeholder whole. */
	if (policy && *policy)
		printf("promoting %.12s to %s under policy %.16s:\n",
		       json_string_value(json_object_get(v, "candidate")),
		       json_string_value(json_object_get(v, "channel")), policy);
	else
		printf("promoting %.12s to %s under no policy (init's gate configuration):\n",
		       json_string_value(json_object_get(v, "candidate")),
		       json_string_value(json_object_get(v, "channel")));
	json_array_foreach(json_object_get(v, "checks"), i, c) printf(
	        "  %-7s %-22s %s\n", json_is_true(json_object_get(c, "ok")) ? "ok" : "BLOCKS",
	        json_string_value(json_object_get(c, "rule")),
	        json_string_value(json_object_get(c, "detail")));
	printf("%s\n", json_is_true(json_object_get(v, "allowed")) ? "allowed" : "blocked");
}

int cli_policy_check(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *channel = NULL;
	cli_opt specs[] = {{"--channel", &channel, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error, allowed = 0;

	if ((rc = cli_parse_opts(env, "policy check", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1 || !channel)
		return cli_usage("policy check", "give REF and --channel C");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_policy_check(repo, pos[0], channel, &report);
	if (error == 0) {
		json_t *v = cli_parse(report);
		allowed = json_is_true(json_object_get(v, "allowed"));
		json_decref(v);
	}
	rc = cli_finish(env, repo, error, report, human_check);
	/* Blocked is a refusal: exit 1, like a refused promotion. */
	return rc ? rc : allowed ? 0 : 1;
}

static void human_approve(json_t *v)
{
	if (json_is_string(json_object_get(v, "envelope")))
		printf("approval of %.12s for %s written to %s (journal it with sluice approve "
		       "--envelope FILE)\n",
		       json_string_value(json_object_get(v, "candidate")),
		       json_string_value(json_object_get(v, "channel")),
		       json_string_value(json_object_get(v, "envelope")));
	else
		printf("approved %.12s for %s (journal entry %.12s)\n",
		       json_string_value(json_object_get(v, "candidate")),
		       json_string_value(json_object_get(v, "channel")),
		       json_string_value(json_object_get(v, "entry")));
}

int cli_approve(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *channel = NULL, *key = getenv("SLUICE_KEY"), *reason = NULL,
	                    *out = NULL, *envelope = NULL, *accept[CLI_MAX_LIST];
	size_t naccept = 0, npos;
	cli_opt specs[] = {{"--channel", &channel, NULL, NULL, NULL},
	                   {"--key", &key, NULL, NULL, NULL},
	                   {"--reason", &reason, NULL, NULL, NULL},
	                   {"--out", &out, NULL, NULL, NULL},
	                   {"--envelope", &envelope, NULL, NULL, NULL},
	                   {"--accept-inconclusive", NULL, accept, &naccept, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = cli_parse_opts(env, "approve", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (envelope ? (npos || channel || out || naccept) : (npos != 1 || !channel))
		return cli_usage("approve",
		                 "give REF --channel C, or --envelope FILE alone (with --key)");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if (envelope)
		error = sluice_approve_submit(repo, envelope, key, &report);
	else
		error = sluice_approve(repo, pos[0], channel, key, accept, naccept, reason, out,
		                       &report);
	return cli_finish(env, repo, error, report, human_approve);
}

static void human_cosign(json_t *v)
{
	json_t *sig = json_object_get(v, "signatures");

	printf("co-signed %.12s (journal entry %.12s): %lld of %lld proposer keys needed\n",
	       json_string_value(json_object_get(v, "version")),
	       json_string_value(json_object_get(v, "entry")),
	       (long long)json_integer_value(json_object_get(sig, "have")),
	       (long long)json_integer_value(json_object_get(sig, "need")));
}

int cli_cosign(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *key = getenv("SLUICE_KEY");
	cli_opt specs[] = {{"--key", &key, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "cosign", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("cosign", "which version? give REF");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_cosign(repo, pos[0], key, &report);
	return cli_finish(env, repo, error, report, human_cosign);
}
