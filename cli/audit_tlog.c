/*
 * cli/audit_tlog.c - the provable log's commands (docs/audit-tlog.md):
 * audit checkpoint, prove, export, verify and reindex.
 */
#include "cli.h"

#include "sluice/audit_tlog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A positive decimal count, or 0 after a usage message. */
static int parse_count(uint64_t *out, const char *cmd, const char *flag, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-' || (v = strtoull(s, &end, 10), errno) || *end || v == 0)
		return cli_usage(cmd, "%s needs a positive number, not '%s'", flag, s ? s : "");
	*out = (uint64_t)v;
	return 0;
}

static const cli_opt no_opts[] = {{NULL, NULL, NULL, NULL, NULL}};

static void audit_progress(void *data, const char *what, uint64_t done, uint64_t total)
{
	(void)data;
	fprintf(stderr, "\r%s: %" PRIu64 "/%" PRIu64 " entries", what, done, total);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

static int open_repo(cli_env *env, sluice_repo **repo)
{
	int rc = cli_open(env, repo);

	/* Counts of entries, not bytes: this file's own progress line. */
	if (!rc && isatty(2))
		sluice_repo_set_progress(*repo, audit_progress, NULL);
	return rc;
}

static void human_checkpoint(json_t *v)
{
	json_t *k;
	size_t i;

	fputs(json_string_value(json_object_get(v, "checkpoint")), stdout);
	if (json_array_size(json_object_get(v, "verifiers")))
		printf("\n");
	json_array_foreach(json_object_get(v, "verifiers"), i, k)
	        printf("%s\n", json_string_value(k));
}

int cli_audit_checkpoint(cli_env *env, int argc, char **argv)
{
	bool verifiers = false;
	cli_opt specs[] = {{"--verifiers", NULL, NULL, NULL, &verifiers},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit checkpoint", argc, argv, specs, NULL, 0, &npos)) ||
	    (rc = open_repo(env, &repo)))
		return rc;
	error = sluice_audit_checkpoint(repo, verifiers, &report);
	return cli_finish(env, repo, error, report, human_checkpoint);
}

static void human_prove(json_t *v)
{
	json_t *h;
	size_t i;

	if (json_object_get(v, "entry")) {
		printf("index %lld\nsize %lld\nroot %s\n",
		       (long long)json_integer_value(json_object_get(v, "index")),
		       (long long)json_integer_value(json_object_get(v, "size")),
		       json_string_value(json_object_get(v, "root")));
	} else {
		printf("from %lld\nto %lld\nold_root %s\nroot %s\n",
		       (long long)json_integer_value(json_object_get(v, "from")),
		       (long long)json_integer_value(json_object_get(v, "to")),
		       json_string_value(json_object_get(v, "old_root")),
		       json_string_value(json_object_get(v, "root")));
	}
	json_array_foreach(json_object_get(v, "hashes"), i, h) printf("%s\n", json_string_value(h));
}

int cli_audit_prove(cli_env *env, int argc, char **argv)
{
	const char *entry = NULL, *size = NULL, *from = NULL, *to = NULL;
	cli_opt specs[] = {{"--entry", &entry, NULL, NULL, NULL},
	                   {"--size", &size, NULL, NULL, NULL},
	                   {"--from", &from, NULL, NULL, NULL},
	                   {"--to", &to, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	uint64_t a = 0, b = 0;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit prove", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if (!entry == !from)
		return cli_usage("audit prove", "give --entry N (inclusion) or --from SIZE "
		                                "(consistency)");
	if ((entry && to) || (from && size))
		return cli_usage("audit prove", "--size goes with --entry, --to with --from");
	if ((rc = parse_count(&a, "audit prove", entry ? "--entry" : "--from",
	                      entry ? entry : from)))
		return rc;
	if ((size || to) &&
	    (rc = parse_count(&b, "audit prove", size ? "--size" : "--to", size ? size : to)))
		return rc;
	if ((rc = open_repo(env, &repo)))
		return rc;
	error = entry ? sluice_audit_prove_entry(repo, a, b, &report)
	              : sluice_audit_prove_consistency(repo, a, b, &report);
	return cli_finish(env, repo, error, report, human_prove);
}

typedef struct {
	bool json;
	size_t n;
} export_state;

static int export_line(void *data, const char *line, size_t len)
{
	export_state *st = data;

	/* With --json: a JSON array of the encodings, each as a string. */
	if (st->json) {
		json_t *s = json_stringn(line, len);
		char *t = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
		int ok = t && printf("%s%s", st->n ? ",\n" : "[\n", t) >= 0;
		free(t);
		json_decref(s);
		st->n++;
		return ok ? 0 : SLUICE_EIO;
	}
	st->n++;
	if (fwrite(line, 1, len, stdout) != len || putchar('\n') == EOF)
		return SLUICE_EIO;
	return 0;
}

int cli_audit_export(cli_env *env, int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	cli_opt specs[] = {{"--from", &from, NULL, NULL, NULL},
	                   {"--to", &to, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	export_state st = {false, 0};
	uint64_t a = 0, b = 0;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit export", argc, argv, specs, NULL, 0, &npos)) ||
	    (from && (rc = parse_count(&a, "audit export", "--from", from))) ||
	    (to && (rc = parse_count(&b, "audit export", "--to", to))))
		return rc;
	if ((rc = open_repo(env, &repo)))
		return rc;
	st.json = env->json;
	error = sluice_audit_export(repo, a, b, export_line, &st);
	if (st.json && error == 0)
		printf(st.n ? "\n]\n" : "[]\n");
	if (fflush(stdout) != 0 && error == 0) {
		fprintf(stderr, "sluice: audit export: cannot write the output\n");
		sluice_repo_free(repo);
		return SLUICE_EXIT_INTERNAL;
	}
	/* The lines are the output: no report to print. */
	sluice_repo_free(repo);
	return error < 0 ? cli_fail(env, error) : 0;
}

static void human_verify(json_t *v)
{
	json_t *p, *ix = json_object_get(v, "index"), *rd = json_object_get(v, "rederived"),
	           *sec = json_object_get(v, "seconds");
	size_t i;

	printf("%lld entries, tree root %s\n",
	       (long long)json_integer_value(json_object_get(v, "entries")),
	       json_string_value(json_object_get(v, "root")));
	if (json_integer_value(json_object_get(rd, "trusted")))
		printf("entries 1..%lld: the index's leaves, re-derived by an earlier verify\n",
		       (long long)json_integer_value(json_object_get(rd, "trusted")));
	printf("re-derived from the journal: entries %lld..%lld (%lld) in %.2f s, %lld "
	       "thread%s\n",
	       (long long)json_integer_value(json_object_get(rd, "from")),
	       (long long)json_integer_value(json_object_get(rd, "to")),
	       (long long)json_integer_value(json_object_get(rd, "count")),
	       json_real_value(json_object_get(sec, "rederive")),
	       (long long)json_integer_value(json_object_get(sec, "threads")),
	       json_integer_value(json_object_get(sec, "threads")) == 1 ? "" : "s");
	printf("%lld of them carry a checkpoint, checked (%lld signatures, %.2f s); %lld were "
	       "written before checkpoints\n",
	       (long long)json_integer_value(json_object_get(v, "checked")),
	       (long long)json_integer_value(json_object_get(v, "signatures")),
	       json_real_value(json_object_get(sec, "signatures")),
	       (long long)json_integer_value(json_object_get(v, "before_tlog")));
	if (json_is_true(json_object_get(ix, "rebuilt")))
		printf("tlog index: rebuilt from the re-derived leaves\n");
	else if (json_is_true(json_object_get(ix, "present")))
		printf("tlog index: %lld leaves, %lld checked\n",
		       (long long)json_integer_value(json_object_get(ix, "size")),
		       (long long)json_integer_value(json_object_get(ix, "checked")));
	else
		printf("tlog index: not built yet (built on first use)\n");
	json_array_foreach(json_object_get(v, "problems"), i, p)
	        printf("problem: %s\n", json_string_value(p));
	if (json_integer_value(json_object_get(v, "problem_count")) >
	    (json_int_t)json_array_size(json_object_get(v, "problems")))
		printf("... %lld problems in all\n",
		       (long long)json_integer_value(json_object_get(v, "problem_count")));
	if (json_is_true(json_object_get(v, "ok")))
		printf("ok (%.2f s)\n", json_real_value(json_object_get(sec, "total")));
}

int cli_audit_verify(cli_env *env, int argc, char **argv)
{
	bool full = false;
	const char *threads = NULL;
	cli_opt specs[] = {{"--full", NULL, NULL, NULL, &full},
	                   {"--threads", &threads, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	uint64_t nt = 0;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit verify", argc, argv, specs, NULL, 0, &npos)) ||
	    (threads && (rc = parse_count(&nt, "audit verify", "--threads", threads))))
		return rc;
	if (nt > 256)
		return cli_usage("audit verify", "--threads: at most 256");
	if ((rc = open_repo(env, &repo)))
		return rc;
	if (nt)
		sluice_ctx_set_threads(env->ctx, (unsigned)nt);
	error = sluice_audit_verify(repo, full ? SLUICE_AUDIT_VERIFY_FULL : 0, &report);
	if (error == SLUICE_ECORRUPT && report) {
		/* The report says what is wrong; the exit code says no. */
		cli_finish(env, repo, 0, report, human_verify);
		fprintf(stderr, "sluice: audit verify: %s\n", sluice_ctx_errmsg(env->ctx));
		return SLUICE_EXIT_NO;
	}
	return cli_finish(env, repo, error, report, human_verify);
}

static void human_reindex(json_t *v)
{
	printf("tlog index rebuilt: %lld leaves\n",
	       (long long)json_integer_value(json_object_get(v, "size")));
}

int cli_audit_reindex(cli_env *env, int argc, char **argv)
{
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit reindex", argc, argv, no_opts, NULL, 0, &npos)) ||
	    (rc = open_repo(env, &repo)))
		return rc;
	error = sluice_audit_reindex(repo, &report);
	return cli_finish(env, repo, error, report, human_reindex);
}
