/*
 * cli/remote_cmds.c - sluice remote add|list|remove, push, pull and clone
 * (docs/remotes.md).
 */
#include "cli.h"

#include "sluice/remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void human_remote_add(json_t *v)
{
	const char *c = json_string_value(json_object_get(v, "chunks"));

	printf("added remote %s: git %s, chunks %s\n",
	       json_string_value(json_object_get(v, "name")),
	       json_string_value(json_object_get(v, "url")), c ? c : "(none)");
}

static void human_remote_list(json_t *v)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(v, "remotes"), i, r)
	{
		const char *c = json_string_value(json_object_get(r, "chunks"));
		printf("%-12s %s\n%-12s chunks: %s\n",
		       json_string_value(json_object_get(r, "name")),
		       json_string_value(json_object_get(r, "url")), "", c ? c : "(none)");
	}
}

static void human_remote_remove(json_t *v)
{
	printf("removed remote %s\n", json_string_value(json_object_get(v, "removed")));
}

static long long num(json_t *o, const char *a, const char *b)
{
	return (long long)json_integer_value(json_object_get(json_object_get(o, a), b));
}

static void human_push(json_t *v)
{
	json_t *r;
	size_t i;

	if (json_is_true(json_object_get(v, "up_to_date"))) {
		printf("remote %s is up to date\n",
		       json_string_value(json_object_get(v, "remote")));
		return;
	}
	printf("pushed to %s: %lld of %lld chunks sent (%lld bytes) in %lld HTTP requests; %lld "
	       "held by the store by its journal, %lld by this repository's record\n",
	       json_string_value(json_object_get(v, "remote")), num(v, "chunks", "sent"),
	       num(v, "chunks", "needed"), num(v, "chunks", "bytes_sent"),
	       num(v, "requests", "http"), num(v, "chunks", "in_remote_journal"),
	       num(v, "chunks", "in_record"));
	json_array_foreach(json_object_get(v, "refs"), i, r)
	{
		const char *o = json_string_value(json_object_get(r, "old"));
		const char *n = json_string_value(json_object_get(r, "new"));
		printf("  %s: %.12s -> %.12s\n", json_string_value(json_object_get(r, "ref")),
		       o ? o : "(none)", n ? n : "(deleted)");
	}
}

static void human_pull(json_t *v)
{
	json_t *j = json_object_get(v, "journal"), *k, *h;
	const char *name;
	size_t i;

	if (json_object_get(v, "path"))
		printf("cloned into %s\n", json_string_value(json_object_get(v, "path")));
	if (json_integer_value(json_object_get(v, "ahead"))) {
		printf("nothing to pull: this repository is %lld journal entries ahead of %s "
		       "(sluice "
		       "push %s sends them)\n",
		       (long long)json_integer_value(json_object_get(v, "ahead")),
		       json_string_value(json_object_get(v, "remote")),
		       json_string_value(json_object_get(v, "remote")));
		return;
	}
	if (json_is_true(json_object_get(v, "up_to_date"))) {
		printf("already up to date with %s\n",
		       json_string_value(json_object_get(v, "remote")));
		return;
	}
	printf("pulled %lld journal entries from %s (%lld versions), %lld chunks received (%lld "
	       "bytes) in %lld HTTP requests\n",
	       (long long)json_integer_value(json_object_get(j, "entries")),
	       json_string_value(json_object_get(v, "remote")),
	       (long long)json_integer_value(json_object_get(v, "versions")),
	       num(v, "chunks", "received"), num(v, "chunks", "bytes_received"),
	       num(v, "requests", "http"));
	printf("journal now at %.12s\n", json_string_value(json_object_get(j, "to")));
	json_object_foreach(json_object_get(v, "channels"), name, h)
	        printf("  %-12s %.12s\n", name, json_is_string(h) ? json_string_value(h) : "-");
	if (json_array_size(json_object_get(v, "root_keys"))) {
		printf("Root keys trusted from the remote (compare them with what its owners "
		       "published):\n");
		json_array_foreach(json_object_get(v, "root_keys"), i, k)
		        printf("  %-16s %s\n", json_string_value(json_object_get(k, "name")),
		               json_string_value(json_object_get(k, "fingerprint")));
	}
	json_array_foreach(json_object_get(v, "warnings"), i, k) fprintf(
	        stderr, "sluice: warning: %s (sluice reindex repairs it)\n", json_string_value(k));
}

/* --concurrency N, --retries N: small positive integers. */
static int parse_opts(const char *cmd, const char *conc, const char *retries, sluice_remote_opts *o)
{
	char *end;
	long v;

	if (conc) {
		v = strtol(conc, &end, 10);
		if (*end || end == conc || v < 1 || v > 64)
			return cli_usage(cmd, "--concurrency takes 1 to 64");
		o->concurrency = (unsigned)v;
	}
	if (retries) {
		v = strtol(retries, &end, 10);
		if (*end || end == retries || v < 0 || v > 20)
			return cli_usage(cmd, "--retries takes 0 to 20");
		/* In the options 0 means the default and -1 none. */
		o->retries = v ? (int)v : -1;
	}
	return 0;
}

int cli_remote_add(cli_env *env, int argc, char **argv)
{
	const char *pos[2], *chunks = NULL;
	cli_opt specs[] = {{"--chunks", &chunks, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "remote add", argc, argv, specs, pos, 2, &npos)))
		return rc;
	if (npos != 2)
		return cli_usage("remote add", "give a NAME and a URL");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_remote_add(repo, pos[0], pos[1], chunks, &report);
	return cli_finish(env, repo, error, report, human_remote_add);
}

int cli_remote_list(cli_env *env, int argc, char **argv)
{
	cli_opt specs[] = {{NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "remote list", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_remote_list(repo, &report);
	return cli_finish(env, repo, error, report, human_remote_list);
}

int cli_remote_remove(cli_env *env, int argc, char **argv)
{
	const char *pos[1];
	cli_opt specs[] = {{NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "remote remove", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("remote remove", "which remote? give its NAME");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_remote_remove(repo, pos[0], &report);
	return cli_finish(env, repo, error, report, human_remote_remove);
}

int cli_push(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *conc = NULL, *retries = NULL;
	bool recheck = false;
	cli_opt specs[] = {{"--concurrency", &conc, NULL, NULL, NULL},
	                   {"--retries", &retries, NULL, NULL, NULL},
	                   {"--recheck", NULL, NULL, NULL, &recheck},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_remote_opts o = {0};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "push", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("push", "which remote? give its NAME");
	if ((rc = parse_opts("push", conc, retries, &o)))
		return rc;
	o.recheck = recheck;
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_remote_push(repo, pos[0], &o, &report);
	return cli_finish(env, repo, error, report, human_push);
}

int cli_pull(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *conc = NULL, *retries = NULL;
	cli_opt specs[] = {{"--concurrency", &conc, NULL, NULL, NULL},
	                   {"--retries", &retries, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_remote_opts o = {0};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "pull", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (npos != 1)
		return cli_usage("pull", "which remote? give its NAME");
	if ((rc = parse_opts("pull", conc, retries, &o)))
		return rc;
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_remote_pull(repo, pos[0], &o, &report);
	return cli_finish(env, repo, error, report, human_pull);
}

int cli_clone(cli_env *env, int argc, char **argv)
{
	const char *pos[2], *chunks = NULL, *name = NULL, *conc = NULL, *retries = NULL,
	                    *root = NULL;
	cli_opt specs[] = {{"--chunks", &chunks, NULL, NULL, NULL},
	                   {"--root", &root, NULL, NULL, NULL},
	                   {"--name", &name, NULL, NULL, NULL},
	                   {"--concurrency", &conc, NULL, NULL, NULL},
	                   {"--retries", &retries, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_remote_opts o = {0};
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "clone", argc, argv, specs, pos, 2, &npos)))
		return rc;
	if (npos < 1)
		return cli_usage("clone", "give the URL to clone");
	if ((rc = parse_opts("clone", conc, retries, &o)))
		return rc;
	o.expect_root = root;
	error = sluice_remote_clone(env->ctx, npos == 2 ? pos[1] : env->repo_dir, name, pos[0],
	                            chunks, &o, isatty(2) ? cli_progress : NULL, NULL, &report);
	return cli_finish(env, NULL, error, report, human_pull);
}
