/*
 * cli/hook_cmds.c - sluice hook add/list/remove/deliver, and the drain of
 * the hooks' outbox after every command that wrote to the journal
 * (docs/hooks.md).
 */
#include "cli.h"

#include "sluice/hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void human_added(json_t *v)
{
	json_t *h = json_object_get(v, "hook");

	printf("hook %s (%s) added: it follows", json_string_value(json_object_get(h, "name")),
	       json_string_value(json_object_get(h, "type")));
	for (size_t i = 0; i < json_array_size(json_object_get(h, "channels")); i++)
		printf(" %s", json_string_value(json_array_get(json_object_get(h, "channels"), i)));
	printf(", from the moves after journal entry %lld on\n",
	       json_integer_value(json_object_get(h, "since")));
}

int cli_hook_add(cli_env *env, int argc, char **argv)
{
	const char *pos[1] = {NULL}, *type = NULL, *url = NULL, *key = NULL, *chans[CLI_MAX_LIST];
	size_t npos = 0, nchans = 0;
	bool notes = false;
	cli_opt specs[] = {
	        {"--type", &type, NULL, NULL, NULL},       {"--url", &url, NULL, NULL, NULL},
	        {"--channel", NULL, chans, &nchans, NULL}, {"--key", &key, NULL, NULL, NULL},
	        {"--notes", NULL, NULL, NULL, &notes},     {NULL, NULL, NULL, NULL, NULL}};
	sluice_hook_opts o = {0};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = cli_parse_opts(env, "hook add", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (!npos || !type || !url || !nchans)
		return cli_usage("hook add", "give NAME, --type, --url and --channel");
	if (!key)
		key = getenv("SLUICE_KEY");
	if (!key || !*key)
		return cli_usage("hook add", "give --key NAME (an operator's key signs the hook's "
		                             "journal entries)");
	if ((rc = cli_open(env, &repo)))
		return rc;
	o.name = pos[0];
	o.type = type;
	o.url = url;
	o.channels = chans;
	o.nchannels = nchans;
	o.key = key;
	o.notes = notes;
	error = sluice_hooks_add(repo, &o, &report);
	return cli_finish(env, repo, error, report, human_added);
}

static void human_list(json_t *v)
{
	json_t *h, *c;
	size_t i, k;

	json_array_foreach(json_object_get(v, "hooks"), i, h)
	{
		printf("%-16s %-8s %s  channels:", json_string_value(json_object_get(h, "name")),
		       json_string_value(json_object_get(h, "type")),
		       json_string_value(json_object_get(h, "url")));
		json_array_foreach(json_object_get(h, "channels"), k, c)
		        printf(" %s", json_string_value(c));
		printf("  key: %s%s\n", json_string_value(json_object_get(h, "key")),
		       json_is_true(json_object_get(h, "notes")) ? "  (with notes)" : "");
	}
	if (!json_array_size(json_object_get(v, "hooks")))
		printf("no hooks: sluice hook add NAME --type TYPE --url URL --channel C\n");
}

int cli_hook_list(cli_env *env, int argc, char **argv)
{
	const char *pos[1];
	size_t npos = 0;
	cli_opt specs[] = {{NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = cli_parse_opts(env, "hook list", argc, argv, specs, pos, 0, &npos)) ||
	    (rc = cli_open(env, &repo)))
		return rc;
	error = sluice_hooks_list(repo, &report);
	return cli_finish(env, repo, error, report, human_list);
}

static void human_removed(json_t *v)
{
	printf("removed hook %s (its journal entries stay)\n",
	       json_string_value(json_object_get(v, "hook")));
}

int cli_hook_remove(cli_env *env, int argc, char **argv)
{
	const char *pos[1] = {NULL};
	size_t npos = 0;
	cli_opt specs[] = {{NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	int rc, error;

	if ((rc = cli_parse_opts(env, "hook remove", argc, argv, specs, pos, 1, &npos)))
		return rc;
	if (!npos)
		return cli_usage("hook remove", "which hook?");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_hooks_remove(repo, pos[0], &report);
	return cli_finish(env, repo, error, report, human_removed);
}

/* One line per attempt, and what is still owed. */
static void print_delivery(FILE *f, json_t *v, int attempts)
{
	json_t *a, *l, *e;
	size_t i;

	if (attempts)
		json_array_foreach(json_object_get(v, "attempts"), i, a)
		{
			fprintf(f, "%s hook %s -> %s: move %lld of %s (%.12s) ",
			        json_is_true(json_object_get(a, "ok")) ? "ok  " : "FAIL",
			        json_string_value(json_object_get(a, "hook")),
			        json_string_value(json_object_get(a, "type")),
			        json_integer_value(json_object_get(a, "move")),
			        json_string_value(json_object_get(a, "channel")),
			        json_string_value(json_object_get(a, "version")));
			if (json_integer_value(json_object_get(a, "status")))
				fprintf(f, "HTTP %lld",
				        json_integer_value(json_object_get(a, "status")));
			if (json_object_get(a, "error"))
				fprintf(f, "%s%s",
				        json_integer_value(json_object_get(a, "status")) ? ": "
				                                                         : "",
				        json_string_value(json_object_get(a, "error")));
			fputc('\n', f);
		}
	json_array_foreach(json_object_get(v, "left"), i, l) fprintf(
	        f,
	        "%shook %s (%s) still owes channel %s %lld move(s): %s; it stays in the "
	        "outbox (sluice hook deliver retries it, sluice status shows it)\n",
	        attempts ? "" : "sluice: warning: ", json_string_value(json_object_get(l, "hook")),
	        json_string_value(json_object_get(l, "type")),
	        json_string_value(json_object_get(l, "channel")),
	        json_integer_value(json_object_get(l, "pending")),
	        json_string_value(json_object_get(l, "error")));
	json_array_foreach(json_object_get(v, "errors"), i, e)
	        fprintf(f, "%s%s\n", attempts ? "" : "sluice: warning: ", json_string_value(e));
	if (json_is_true(json_object_get(v, "busy")))
		fprintf(f, "%sanother sluice process is delivering hooks right now\n",
		        attempts ? "" : "sluice: note: ");
}

static void human_deliver(json_t *v)
{
	print_delivery(stdout, v, 1);
	printf("%lld delivered, %lld failed attempt(s), %lld move(s) pending\n",
	       json_integer_value(json_object_get(v, "delivered")),
	       json_integer_value(json_object_get(v, "failed")),
	       json_integer_value(json_object_get(v, "pending")));
}

int cli_hook_deliver(cli_env *env, int argc, char **argv)
{
	const char *pos[1], *wait = NULL;
	size_t npos = 0;
	cli_opt specs[] = {{"--wait", &wait, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL, *end = NULL;
	double secs = 0;
	json_t *v;
	int rc, error;

	if ((rc = cli_parse_opts(env, "hook deliver", argc, argv, specs, pos, 0, &npos)))
		return rc;
	if (wait && (secs = strtod(wait, &end), !end || *end || secs < 0 || secs > 86400))
		return cli_usage("hook deliver", "--wait takes seconds (0 to 86400)");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_hooks_deliver(repo, 0, secs, &report);
	v = error < 0 ? NULL : cli_parse(report);
	/* Exit 1 when something is still owed, so scripts can retry. */
	rc = cli_finish(env, repo, error, report, human_deliver);
	if (rc == 0 && v &&
	    (json_integer_value(json_object_get(v, "pending")) ||
	     json_array_size(json_object_get(v, "errors")) ||
	     json_is_true(json_object_get(v, "busy"))))
		rc = SLUICE_EXIT_NO;
	json_decref(v);
	return rc;
}

void cli_hooks_after_write(cli_env *env)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	json_t *v;

	/* A hook never changes a command's result: problems are warnings. */
	if (sluice_repo_open(&repo, env->ctx, env->repo_dir) < 0) {
		sluice_ctx_clear_error(env->ctx);
		return;
	}
	if (sluice_hooks_deliver(repo, SLUICE_HOOKS_AFTER_WRITE, 0, &report) < 0) {
		fprintf(stderr, "sluice: warning: hooks: %s\n", sluice_ctx_errmsg(env->ctx));
	} else if ((v = cli_parse(report))) {
		print_delivery(stderr, v, 0);
		json_decref(v);
	}
	sluice_free(report);
	sluice_repo_free(repo);
}
