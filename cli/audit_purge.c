/*
 * cli/audit_purge.c - erasure commands: sluice purge (delete one update's
 * content under a signed tombstone) and sluice gc (sweep unreachable
 * chunks). Progress goes to stderr (cli_open installs it).
 */
#include "cli.h"

#include "sluice/audit_purge.h"

#include <stdio.h>
#include <stdlib.h>

static void human_purge(json_t *v)
{
	json_t *f;
	size_t i;

	if (json_is_true(json_object_get(v, "already")))
		printf("version %.12s was already purged; deletion finished\n",
		       json_string_value(json_object_get(v, "version")));
	else
		printf("purged version %.12s (tombstone entry %.12s)\n",
		       json_string_value(json_object_get(v, "version")),
		       json_string_value(json_object_get(v, "entry")));
	json_array_foreach(json_object_get(v, "purged"), i, f)
	        printf("  %s  %s (%lld bytes)\n", json_string_value(json_object_get(f, "blake2b")),
	               json_string_value(json_object_get(f, "path")),
	               (long long)json_integer_value(json_object_get(f, "size")));
	printf("chunks removed: %lld, git blobs removed: %lld, bytes freed: %lld\n",
	       (long long)json_integer_value(json_object_get(v, "chunks_removed")),
	       (long long)json_integer_value(json_object_get(v, "blobs_removed")),
	       (long long)json_integer_value(json_object_get(v, "bytes_freed")));
}

int cli_purge(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *reason = NULL, *key = NULL;
	cli_opt specs[] = {{"--reason", &reason, NULL, NULL, NULL},
	                   {"--key", &key, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "purge", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("purge", "which update? give a version REF");
	if (!reason)
		return cli_usage("purge", "give --reason TEXT: the tombstone records it");
	if (!key)
		key = getenv("SLUICE_KEY");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_purge(repo, pos[0], reason, key, &report);
	return cli_finish(env, repo, error, report, human_purge);
}

static void human_gc(json_t *v)
{
	printf("%sreachable chunks: %lld; packs rewritten: %lld; records removed: %lld "
	       "(+%lld duplicates); bytes freed: %lld; git blobs removed: %lld\n",
	       json_is_true(json_object_get(v, "dry_run")) ? "(dry run) " : "",
	       (long long)json_integer_value(json_object_get(v, "reachable_chunks")),
	       (long long)json_integer_value(json_object_get(v, "packs_rewritten")),
	       (long long)json_integer_value(json_object_get(v, "records_removed")),
	       (long long)json_integer_value(json_object_get(v, "duplicates_removed")),
	       (long long)json_integer_value(json_object_get(v, "bytes_freed")),
	       (long long)json_integer_value(json_object_get(v, "blobs_removed")));
}

int cli_gc(cli_env *env, int argc, char **argv)
{
	bool dry = false;
	cli_opt specs[] = {{"--dry-run", NULL, NULL, NULL, &dry}, {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "gc", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_gc(repo, dry, &report);
	return cli_finish(env, repo, error, report, human_gc);
}
