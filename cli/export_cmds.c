/*
 * cli/export_cmds.c - sluice export: a version's adapter stack in the forms
 * inference servers load (docs/export.md).
 */
#include "cli.h"

#include "sluice/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void human_export_adapter(json_t *v)
{
	json_t *a;
	size_t i;

	printf("wrote %s: one PEFT adapter of rank %lld over %lld modules, equal to the stack "
	       "of %.12s\n",
	       json_string_value(json_object_get(v, "directory")),
	       (long long)json_integer_value(json_object_get(v, "r")),
	       (long long)json_integer_value(json_object_get(v, "modules")),
	       json_string_value(json_object_get(v, "version")));
	json_array_foreach(json_object_get(v, "adapters"), i, a) printf(
	        "  %s: scale %g, rows %lld..%lld\n", json_string_value(json_object_get(a, "name")),
	        json_number_value(json_object_get(a, "scale")),
	        (long long)json_integer_value(json_array_get(json_object_get(a, "rows"), 0)),
	        (long long)json_integer_value(json_array_get(json_object_get(a, "rows"), 1)));
}

static void human_export_gguf(json_t *v)
{
	json_t *a;
	size_t i;

	printf("wrote %s: %zu llama.cpp LoRA adapters and scales.json for %.12s\n",
	       json_string_value(json_object_get(v, "directory")),
	       json_array_size(json_object_get(v, "adapters")),
	       json_string_value(json_object_get(v, "version")));
	json_array_foreach(json_object_get(v, "adapters"), i, a)
	        printf("  --lora-scaled %s %g\n", json_string_value(json_object_get(a, "file")),
	               json_number_value(json_object_get(a, "scale")));
}

int cli_export(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *adapter = NULL, *gguf = NULL;
	cli_opt specs[] = {{"--adapter", &adapter, NULL, NULL, NULL},
	                   {"--gguf", &gguf, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "export", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("export", "which version? give a REF");
	if (!adapter == !gguf)
		return cli_usage("export", "give one of --adapter DIR or --gguf DIR");
	if ((rc = cli_open(env, &repo)))
		return rc;
	if (adapter)
		error = sluice_export_adapter(repo, pos[0], adapter, &report);
	else
		error = sluice_export_gguf(repo, pos[0], gguf, &report);
	return cli_finish(env, repo, error, report,
	                  adapter ? human_export_adapter : human_export_gguf);
}
