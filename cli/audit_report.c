/*
 * cli/audit_report.c - sluice audit report --html DIR [--page N]: the journal
 * as self-contained pages (docs/audit-report.md).
 */
#include "cli.h"

#include "sluice/audit_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void human_report(json_t *v)
{
	printf("wrote %s: %lld channels, %lld versions, %lld moves, %lld plotted scores; %lld "
	       "entries on %lld page%s of %lld\n",
	       json_string_value(json_object_get(v, "file")),
	       (long long)json_integer_value(json_object_get(v, "channels")),
	       (long long)json_integer_value(json_object_get(v, "versions")),
	       (long long)json_integer_value(json_object_get(v, "moves")),
	       (long long)json_integer_value(json_object_get(v, "points")),
	       (long long)json_integer_value(json_object_get(v, "entries")),
	       (long long)json_integer_value(json_object_get(v, "pages")),
	       json_integer_value(json_object_get(v, "pages")) == 1 ? "" : "s",
	       (long long)json_integer_value(json_object_get(v, "page_entries")));
}

int cli_audit_report(cli_env *env, int argc, char **argv)
{
	const char *html = NULL, *page = NULL;
	cli_opt specs[] = {{"--html", &html, NULL, NULL, NULL},
	                   {"--page", &page, NULL, NULL, NULL},
	                   {NULL, NULL, NULL, NULL, NULL}};
	unsigned long long per = 0;
	char *end;
	sluice_repo *repo = NULL;
	char *report = NULL;
	size_t npos;
	int rc, error;

	if ((rc = cli_parse_opts(env, "audit report", argc, argv, specs, NULL, 0, &npos)))
		return rc;
	if (!html)
		return cli_usage("audit report", "give --html DIR: where index.html goes");
	if (page) {
		errno = 0;
		per = strtoull(page, &end, 10);
		if (!*page || *page == '-' || *end || errno || per == 0 || per > 1000000)
			return cli_usage("audit report",
			                 "--page '%s': expected entries a page from 1 to 1000000",
			                 page);
	}
	if ((rc = cli_open(env, &repo)))
		return rc;
	error = sluice_audit_report_html(repo, html, (size_t)per, &report);
	return cli_finish(env, repo, error, report, human_report);
}
