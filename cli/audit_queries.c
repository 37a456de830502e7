/*
 * cli/audit_queries.c - the auditor's queries: sluice audit log (filtered
 * journal entries as a table, --json or --csv), sluice audit at (what a
 * channel served at an instant) and sluice audit lineage (what a data
 * source influenced). docs/audit-queries.md.
 */
#include "cli.h"

#include "sluice/audit_queries.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF. */
static void csv_field(const char *s, int last)
{
	if (strpbrk(s, ",\"\r\n")) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	fputs(last ? "\r\n" : ",", stdout);
}

static void human_csv(json_t *v)
{
	static const char *const cols[] = {"seq",         "entry",   "time",    "action",  "actor",
	                                   "fingerprint", "channel", "version", "summary", NULL};
	json_t *e;
	size_t i, c;

	for (c = 0; cols[c]; c++)
		csv_field(cols[c], !cols[c + 1]);
	json_array_foreach(v, i, e)
	{
		for (c = 0; cols[c]; c++) {
			json_t *f = json_object_get(e, cols[c]);
			char num[32];
			if (json_is_integer(f)) {
				snprintf(num, sizeof(num), "%lld",
				         (long long)json_integer_value(f));
				csv_field(num, !cols[c + 1]);
			} else {
				csv_field(str(f), !cols[c + 1]);
			}
		}
	}
}

static void human_table(json_t *v)
{
	json_t *e;
	size_t i;

	printf("%6s  %-12s  %-20s  %-9s  %-12s  %-12s  %-12s  %s\n", "SEQ", "ENTRY", "TIME",
	       "ACTION", "ACTOR", "CHANNEL", "VERSION", "SUMMARY");
	json_array_foreach(v, i, e)
	{
		const char *ch = str(json_object_get(e, "channel")),
		           *ver = str(json_object_get(e, "version"));
		printf("%6lld  %.12s  %-20s  %-9s  %-12s  %-12s  %-12.12s  ",
		       (long long)json_integer_value(json_object_get(e, "seq")),
		       str(json_object_get(e, "entry")), str(json_object_get(e, "time")),
		       str(json_object_get(e, "action")), str(json_object_get(e, "actor")),
		       *ch ? ch : "-", *ver ? ver : "-");
		cli_put_str(stdout, str(json_object_get(e, "summary")));
		putchar('\n');
	}
	if (!json_array_size(v))
		printf("(no entries match)\n");
}

int cli_audit_log(cli_env *env, int argc, char **argv)
{
	sluice_audit_filter f = {0};
	const char *limit = NULL;
	bool csv = false;
	cli_opt specs[] = {{"--since", &f.since, NULL, NULL, NULL},
	                   {"--until", &f.until, NULL, NULL, NULL},
	                   {"--actor", &f.actor, NULL, NULL, NULL},
	                   {"--action", &f.action, NULL, NULL, NULL},
	                   {"--channel", &f.channel, NULL, NULL, NULL},
	                   {"--version", &f.version, NULL, NULL, NULL},
	                   {"--kind", &f.kind, NULL, NULL, NULL},
	                   {"--source", &f.source, NULL, NULL, NULL},
	                   {"--gate", &f.gate, NULL, NULL, NULL},
	                   {"--outcome", &f.outcome, NULL, NULL, NULL},
	                   {"--limit", &limit, NULL, NULL, NULL},
	                   {"--csv", NULL, NULL, NULL, &csv},
	                   {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL, *end;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit log", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if (limit) {
		unsigned long long n = strtoull(limit, &end, 10);
		if (!*limit || *end || *limit == '-' || n == 0 || n > 100000000ULL)
			return cli_usage("audit log",
			                 "--limit '%s': expected a count from 1 to 100000000",
			                 limit);
		f.limit = (size_t)n;
	}
	if (csv && env->json)
		return cli_usage("audit log", "--csv and --json: choose one");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_audit_log(repo, &f, NULL, &report);
	return cli_finish(env, repo, error, report, csv ? human_csv : human_table);
}

static void human_at(json_t *v)
{
	json_t *mv = json_object_get(v, "move"), *a, *g;
	const char *gname;
	size_t i;

	if (json_is_null(json_object_get(v, "served"))) {
		printf("%s served nothing at %s: %s\n", str(json_object_get(v, "channel")),
		       str(json_object_get(v, "time")), str(json_object_get(v, "note")));
		return;
	}
	printf("%s served %s at %s\n", str(json_object_get(v, "channel")),
	       str(json_object_get(v, "served")), str(json_object_get(v, "time")));
	printf("  since %s %s (entry %lld, %.12s) by %s", str(json_object_get(mv, "action")),
	       str(json_object_get(mv, "time")),
	       (long long)json_integer_value(json_object_get(mv, "seq")),
	       str(json_object_get(mv, "entry")), str(json_object_get(mv, "actor")));
	if (json_is_string(json_object_get(mv, "from")))
		printf(", from %.12s", str(json_object_get(mv, "from")));
	if (json_is_string(json_object_get(mv, "reason"))) {
		fputs(": ", stdout);
		cli_put_str(stdout, str(json_object_get(mv, "reason")));
	}
	printf("\n  policy: %s\n", *str(json_object_get(v, "policy"))
	                                   ? str(json_object_get(v, "policy"))
	                                   : "(none recorded)");
	json_object_foreach(json_object_get(v, "verdicts"), gname, g)
	        printf("  verdict %-10s %-12s statement %s\n", gname,
	               str(json_object_get(g, "result")), str(json_object_get(g, "statement")));
	json_array_foreach(json_object_get(v, "approvals"), i, a)
	        printf("  approval by %s (%s) at %s, statement %s\n",
	               str(json_object_get(a, "name")), str(json_object_get(a, "key")),
	               str(json_object_get(a, "time")), str(json_object_get(a, "statement")));
}

int cli_audit_at(cli_env *env, int argc, char **argv)
{
	const char *pos[2];
	cli_opt specs[] = {{NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit at", argc, argv, specs, pos, 2, &npos)))
		return rc;
	if (npos != 2)
		return cli_usage("audit at", "give a channel and a time: sluice audit at C TIME");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_audit_at(repo, pos[0], pos[1], &report);
	return cli_finish(env, repo, error, report, human_at);
}

static void human_lineage(json_t *v)
{
	json_t *e, *c;
	size_t i, j;

	printf("versions influenced by %s:\n", str(json_object_get(v, "source")));
	if (!json_array_size(json_object_get(v, "versions")))
		printf("  (none)\n");
	json_array_foreach(json_object_get(v, "versions"), i, e)
	{
		printf("  %s  %-7s %s  holds", str(json_object_get(e, "version")),
		       str(json_object_get(e, "kind")),
		       json_is_true(json_object_get(e, "declared")) ? "declared  " : "descendant");
		json_array_foreach(json_object_get(e, "contains"), j, c) printf(" %s", str(c));
		printf("\n");
	}
	printf("channel heads that were one of them:\n");
	if (!json_array_size(json_object_get(v, "heads")))
		printf("  (none)\n");
	json_array_foreach(json_object_get(v, "heads"), i, e) printf(
	        "  %-12s %.12s  from %s to %s\n", str(json_object_get(e, "channel")),
	        str(json_object_get(e, "version")), str(json_object_get(e, "from_time")),
	        json_is_string(json_object_get(e, "to_time")) ? str(json_object_get(e, "to_time"))
	                                                      : "now (the head)");
}

int cli_audit_lineage(cli_env *env, int argc, char **argv)
{
	const char *source = NULL;
	cli_opt specs[] = {{"--source", &source, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit lineage", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if (!source)
		return cli_usage("audit lineage", "give --source NAME[=DIGEST]");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_audit_lineage(repo, source, &report);
	return cli_finish(env, repo, error, report, human_lineage);
}
