/*
 * cli/config.c - sluice config: get, set, unset and list the repository's
 * local settings (sluice/config.h), a thin wrapper over its git config.
 */
#include "cli.h"

#include "sluice/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void human_get(json_t *v)
{
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(v, "values"), i, x) puts(json_string_value(x));
}

static void human_list(json_t *v)
{
	const char *k;
	json_t *x, *e;
	size_t i;

	json_object_foreach(json_object_get(v, "config"), k, x)
	{
		if (json_is_array(x))
			json_array_foreach(x, i, e) printf("%s=%s\n", k, json_string_value(e));
		else
			printf("%s=%s\n", k, json_string_value(x));
	}
}

int cli_config(cli_env *env, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL}, *unset = NULL;
	bool list = false, add = false;
	const cli_opt specs[] = {{"--unset", &unset, NULL, NULL, NULL},
	                         {"--list", NULL, NULL, NULL, &list},
	                         {"--add", NULL, NULL, NULL, &add},
	                         {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos = 0;
	int rc, error;

	if ((rc = cli_parse_opts(env, "config", argc, argv, specs, pos, 2, &npos)))
		return rc;
	if ((list + (unset != NULL) + (npos > 0)) != 1)
		return cli_usage("config", "give KEY [VALUE], --unset KEY or --list");
	if (add && npos != 2)
		return cli_usage("config", "--add takes KEY VALUE");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if (list) {
		error = sluice_config_list(repo, &report);
		return cli_finish(env, repo, error, report, human_list);
	}
	if (unset) {
		if ((error = sluice_config_unset(repo, unset)) == 0 && env->json)
			puts("{}");
		return cli_finish(env, repo, error, NULL, NULL);
	}
	if (npos == 2) {
		if ((error = sluice_config_set(repo, pos[0], pos[1], add)) == 0 && env->json)
			puts("{}");
		return cli_finish(env, repo, error, NULL, NULL);
	}
	error = sluice_config_get(repo, pos[0], &report);
	return cli_finish(env, repo, error, report, human_get);
}
