/*
 * cli/audit_report.c - sluice audit report --html DIR: the journal as one
 * self-contained page (docs/audit-report.md).
 */
#include "cli.h"

#include "sluice/audit_report.h"

#include <stdio.h>

static void human_report(json_t *v)
{
	printf("wrote %s: %lld channels, %lld versions, %lld moves, %lld plotted scores\n",
	       json_string_value(json_object_get(v, "file")),
	       (long long)json_integer_value(json_object_get(v, "channels")),
	       (long long)json_integer_value(json_object_get(v, "versions")),
	       (long long)json_integer_value(json_object_get(v, "moves")),
	       (long long)json_integer_value(json_object_get(v, "points")));
}

int cli_audit_report(cli_env *env, int argc, char **argv)
{
	const char *html = NULL;
	cli_opt specs[] = {{"--html", &html, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit report", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if (!html)
		return cli_usage("audit report", "give --html DIR: where index.html goes");
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_audit_report_html(repo, html, &report);
	return cli_finish(env, repo, error, report, human_report);
}
