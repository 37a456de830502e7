/*
 * tests/audit/test_report.c - sluice audit report --html: a repository with
 * versions gated and promoted on the shipped test model; the page loads
 * in headless Chromium without console errors, and the values it plots
 * (read back from the DOM Chromium dumps) are the forgetting matrix of
 * `sluice gate --history C --json`, digit for digit. The screenshot is
 * left in the build directory.
 */
#include "testutil.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *work;
static char repo[4096], keysenv[4300];
static const char *env[] = {keysenv, NULL};

static void propose(char out[41], const char *args)
{
	tu_run_result res = tu_sh(env, "%s -C '%s' %s --key alice", TU_SLUICE, repo, args);
	if (res.status)
		fprintf(stderr, "%s", res.err);
	assert_int_equal(res.status, 0);
	tu_last_line(out, res.out);
	tu_run_dispose(&res);
}

static void gate_promote(const char *id, const char *channel)
{
	tu_sh_ok(env,
	         "%s -C '%s' gate %s --channel %s --key gr >/dev/null; %s -C '%s' promote %s "
	         "--channel %s --key ops",
	         TU_SLUICE, repo, id, channel, TU_SLUICE, repo, id, channel);
}

static int setup(void **state)
{
	char base[41], a[41], args[8192];
	(void)state;

	work = tu_mkdtemp("report");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	tu_sh_ok(NULL,
	         "mkdir -p '%s/in' && cp -r '%s/test-model' '%s/in/base' && %s lora '%s/in/a' "
	         "--base '%s/in/base' --seed 6 --b-std 0.03 && %s lora '%s/in/b' --base "
	         "'%s/in/base' "
	         "--seed 5 --b-std 0.001",
	         work, SLUICE_RESOURCES, work, SLUICE_SYNTH, work, work, SLUICE_SYNTH, work, work);
	tu_sh_ok(env,
	         "%s init '%s' --root-key root --required-gates regression && %s -C '%s' key new "
	         "alice --role proposer && %s -C '%s' key new ops --role operator && %s -C '%s' "
	         "key new gr --role gate-runner && %s -C '%s' suite add '%s/eval/suites/"
	         "knowledge.json' '%s/eval/suites/facts-new.json' --key alice",
	         TU_SLUICE, repo, TU_SLUICE, repo, TU_SLUICE, repo, TU_SLUICE, repo, TU_SLUICE,
	         repo, SLUICE_SOURCE_DIR, SLUICE_SOURCE_DIR);
	snprintf(args, sizeof(args), "propose base '%s/in/base' -m 'base <model>'", work);
	propose(base, args);
	gate_promote(base, "dev");
	gate_promote(base, "prod");
	snprintf(args, sizeof(args), "propose lora '%s/in/a' --onto %s -m a", work, base);
	propose(a, args);
	gate_promote(a, "dev");
	gate_promote(a, "prod");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_sh_ok(NULL, "rm -rf '%s'", work);
	free(work);
	return 0;
}

/* The value of attribute name in the tag text [tag, end), into out. */
static int attr(char *out, size_t n, const char *tag, const char *end, const char *name)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), " %s=\"", name);
	if (!(p = strstr(tag, pat)) || p > end)
		return -1;
	p += strlen(pat);
	if (!(q = strchr(p, '"')) || q > end || (size_t)(q - p) >= n)
		return -1;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return 0;
}

/*
 * Every plotted score of channel in the dumped DOM must be a cell of the
 * history's matrix with the same printed digits, and every cell plotted.
 */
static void check_channel(const char *dom, const char *channel)
{
	tu_run_result r =
	        tu_sh(env, "%s -C '%s' gate --history %s --json", TU_SLUICE, repo, channel);
	json_error_t jerr;
	json_t *h, *row;
	const char *p = dom;
	size_t cells = 0, plotted = 0, i;

	assert_int_equal(r.status, 0);
	h = json_loads(r.out, 0, &jerr);
	assert_non_null(h);
	tu_run_dispose(&r);
	json_array_foreach(json_object_get(h, "rows"), i, row) cells +=
	        json_object_size(json_object_get(row, "scores"));
	assert_true(cells >= 2);
	while ((p = strstr(p, "<circle class=\"score pt\""))) {
		const char *end = strchr(p, '>');
		char ch[128], su[128], ver[64], val[64], rowi[16], *want;
		json_t *cell;

		assert_non_null(end);
		assert_int_equal(attr(ch, sizeof(ch), p, end, "data-channel"), 0);
		assert_int_equal(attr(su, sizeof(su), p, end, "data-suite"), 0);
		assert_int_equal(attr(ver, sizeof(ver), p, end, "data-version"), 0);
		assert_int_equal(attr(val, sizeof(val), p, end, "data-value"), 0);
		assert_int_equal(attr(rowi, sizeof(rowi), p, end, "data-row"), 0);
		p = end;
		if (strcmp(ch, channel))
			continue;
		row = json_array_get(json_object_get(h, "rows"), (size_t)atoi(rowi));
		assert_non_null(row);
		assert_string_equal(json_string_value(json_object_get(row, "version")), ver);
		cell = json_object_get(json_object_get(row, "scores"), su);
		assert_non_null(cell);
		want = json_dumps(cell, JSON_ENCODE_ANY);
		assert_string_equal(val, want);
		assert_true(json_number_value(cell) == strtod(val, NULL));
		free(want);
		plotted++;
	}
	assert_int_equal(plotted, cells);
	json_decref(h);
}

static void test_report__page_plots_the_history(void **state)
{
	char html[4200], shot[PATH_MAX + 32], cwd[PATH_MAX];
	tu_run_result r;
	(void)state;

	snprintf(html, sizeof(html), "%s/html", work);
	r = tu_sh(env, "%s -C '%s' audit report --html '%s' --json", TU_SLUICE, repo, html);
	if (r.status)
		fprintf(stderr, "%s", r.err);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"channels\": 2"));
	tu_run_dispose(&r);
	/* Self-contained: nothing fetched (no http(s) URL but the SVG namespace). */
	r = tu_sh(NULL, "grep -o 'https\\?://[^\"]*' '%s/index.html' | sort -u", html);
	assert_string_equal(r.out, "http://www.w3.org/2000/svg\n");
	tu_run_dispose(&r);
	/* The proposal's summary is escaped, not markup. */
	r = tu_sh(NULL, "grep -c 'base &lt;model&gt;' '%s/index.html'", html);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);

	r = tu_sh(NULL,
	          "HOME='%s' chromium --headless=new --no-sandbox --disable-gpu "
	          "--enable-logging=stderr "
	          "--v=0 --user-data-dir='%s/chrome' --dump-dom 'file://%s/index.html'",
	          work, work, html);
	assert_int_equal(r.status, 0);
	if (strstr(r.err, "Uncaught") || strstr(r.err, "CONSOLE"))
		fprintf(stderr, "%s", r.err);
	assert_null(strstr(r.err, "Uncaught"));
	assert_null(strstr(r.err, "CONSOLE"));
	assert_non_null(strstr(r.out, "id=\"timeline\""));
	check_channel(r.out, "dev");
	check_channel(r.out, "prod");
	/* Each move is a marker on the timeline: dev 2, prod 2. */
	{
		size_t moves = 0;
		const char *p = r.out;
		while ((p = strstr(p, "<circle class=\"move pt\"")))
			moves++, p++;
		assert_int_equal(moves, 4);
	}
	tu_run_dispose(&r);

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(shot, sizeof(shot), "%s/audit_report.png", cwd);
	tu_sh_ok(NULL,
	         "HOME='%s' chromium --headless=new --no-sandbox --disable-gpu "
	         "--enable-logging=stderr "
	         "--v=0 --user-data-dir='%s/chrome' --window-size=1000,1400 --screenshot='%s' "
	         "'file://%s/index.html' 2>/dev/null && test -s '%s'",
	         work, work, shot, html, shot);
	printf("screenshot: %s\n", shot);
}

/*
 * A journal longer than one page: one file a page, each self-contained,
 * whose entries together are sluice audit log's, once each; the plots on
 * index.html still match the gate history.
 */
static void test_report__long_journal_is_paged(void **state)
{
	char html[4200], cmd[8192];
	tu_run_result r, log;
	json_t *v;
	long long entries, pages, k;
	(void)state;

	snprintf(html, sizeof(html), "%s/paged", work);
	r = tu_sh(env, "%s -C '%s' audit report --html '%s' --page 4 --json", TU_SLUICE, repo,
	          html);
	assert_int_equal(r.status, 0);
	v = json_loads(r.out, 0, NULL);
	assert_non_null(v);
	tu_run_dispose(&r);
	entries = (long long)json_integer_value(json_object_get(v, "entries"));
	pages = (long long)json_integer_value(json_object_get(v, "pages"));
	json_decref(v);
	assert_true(entries > 8);
	assert_int_equal(pages, (entries + 3) / 4);
	/* index.html is the newest page; page-1 .. page-(pages-1) the older ones. */
	for (k = 1; k < pages; k++)
		tu_sh_ok(NULL, "test -s '%s/page-%lld.html'", html, k);
	tu_sh_ok(NULL, "test ! -e '%s/page-%lld.html'", html, pages);
	/* Every file self-contained: no URL but the SVG namespace. */
	r = tu_sh(NULL, "cat '%s'/*.html | grep -o 'https\\?://[^\"]*' | sort -u", html);
	assert_string_equal(r.out, "http://www.w3.org/2000/svg\n");
	tu_run_dispose(&r);
	/* The rows of all pages, in order, are audit log's entries. */
	snprintf(cmd, sizeof(cmd),
	         "cat '%s'/*.html | /usr/bin/python3 -c '\n"
	         "import re,sys\n"
	         "rows=re.findall(r\"<tr class=.entry. data-seq=.(\\d+). "
	         "data-entry=.([0-9a-f]{40}). "
	         "data-action=.([a-z.]+).\", sys.stdin.read())\n"
	         "for s,e,a in sorted(rows, key=lambda t:int(t[0])): print(s,e,a)'",
	         html);
	r = tu_sh(NULL, "%s", cmd);
	assert_int_equal(r.status, 0);
	log = tu_sh(env,
	            "%s -C '%s' audit log --json | /usr/bin/python3 -c '\n"
	            "import json,sys\n"
	            "for e in json.load(sys.stdin): print(e[\"seq\"],e[\"entry\"],e[\"action\"])'",
	            TU_SLUICE, repo);
	assert_int_equal(log.status, 0);
	assert_string_equal(r.out, log.out);
	{
		size_t lines = 0;
		for (const char *p = r.out; *p; p++)
			lines += *p == '\n';
		assert_int_equal((long long)lines, entries);
	}
	tu_run_dispose(&r);
	tu_run_dispose(&log);
	/* The oldest page loads cleanly; index.html keeps the plots, digit for digit. */
	r = tu_sh(NULL,
	          "HOME='%s' chromium --headless=new --no-sandbox --disable-gpu "
	          "--enable-logging=stderr --v=0 --user-data-dir='%s/chrome' --dump-dom "
	          "'file://%s/page-1.html'",
	          work, work, html);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.err, "Uncaught"));
	assert_null(strstr(r.err, "CONSOLE"));
	assert_non_null(strstr(r.out, "href=\"page-2.html\""));
	tu_run_dispose(&r);
	r = tu_sh(NULL,
	          "HOME='%s' chromium --headless=new --no-sandbox --disable-gpu "
	          "--enable-logging=stderr --v=0 --user-data-dir='%s/chrome' --dump-dom "
	          "'file://%s/index.html'",
	          work, work, html);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.err, "Uncaught"));
	assert_null(strstr(r.err, "CONSOLE"));
	assert_non_null(strstr(r.out, "id=\"pages\""));
	check_channel(r.out, "dev");
	check_channel(r.out, "prod");
	tu_run_dispose(&r);
	/* One page again: the older pages are deleted, not left stale. */
	tu_sh_ok(env, "%s -C '%s' audit report --html '%s' >/dev/null", TU_SLUICE, repo, html);
	tu_sh_ok(NULL, "test ! -e '%s/page-1.html'", html);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_report__page_plots_the_history),
	        cmocka_unit_test(test_report__long_journal_is_paged),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
