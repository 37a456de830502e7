/*
 * cli/audit_attest.c - sluice attest: a version's provenance and gate
 * verdicts as DSSE envelopes (docs/audit-attest.md).
 */
#include "cli.h"

#include "sluice/audit_attest.h"

#include <stdio.h>
#include <stdlib.h>

static void human_attest(json_t *v)
{
	json_t *f;
	size_t i;

	printf("version %s: %lld subjects, %zu envelopes in %s\n",
	       json_string_value(json_object_get(v, "version")),
	       (long long)json_integer_value(json_object_get(v, "subjects")),
	       json_array_size(json_object_get(v, "files")),
	       json_string_value(json_object_get(v, "directory")));
	json_array_foreach(json_object_get(v, "files"), i, f)
	        printf("%-10s %s  %s\n", json_string_value(json_object_get(f, "kind")),
	               json_string_value(json_object_get(f, "sha256")),
	               json_string_value(json_object_get(f, "file")));
}

int cli_attest(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *key = NULL, *out = NULL;
	cli_opt specs[] = {{"--key", &key, NULL, NULL, NULL},
	                   {"--out", &out, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "attest", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("attest", "which version? give a REF");
	if (!key)
		key = getenv("SLUICE_KEY");
	if (!key)
		return cli_usage("attest", "give --key NAME (a registered key) to sign with");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_attest(repo, pos[0], key, out ? out : ".", &report);
	return cli_finish(env, repo, error, report, human_attest);
}
