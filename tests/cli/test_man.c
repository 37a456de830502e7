/*
 * tests/cli/test_man.c - `sluice help` covers every command, and sluice(1),
 * generated from the same texts, has a section for each and renders
 * without a warning from groff.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_lines_starting(const char *text, const char *prefix)
{
	int n = 0;
	for (const char *p = text; p && *p;) {
		if (!strncmp(p, prefix, strlen(prefix)))
			n++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}

static void man_page_has_every_command_and_renders_cleanly(void **state)
{
	tu_run_result overview = tu_sh(NULL, "%s help", TU_SLUICE);
	tu_run_result man = tu_sh(NULL, "%s help --man", TU_SLUICE);
	tu_run_result render;
	int commands;
	(void)state;

	assert_int_equal(overview.status, 0);
	assert_int_equal(man.status, 0);
	commands = count_lines_starting(overview.out, "  sluice ");
	assert_true(commands > 20);
	assert_non_null(strstr(man.out, ".TH SLUICE 1"));
	assert_int_equal(count_lines_starting(man.out, ".SS "), commands);
	/* Every help text appears: spot-check two commands' first lines. */
	assert_non_null(strstr(man.out, ".SS promote"));
	assert_non_null(strstr(man.out, ".SS rollback"));
	/* No text line may start a roff request by accident. */
	for (const char *p = man.out; p && *p;) {
		if (*p == '.' || *p == '\'') {
			static const char *const ok[] = {".TH", ".SH", ".SS", ".nf", ".fi",
			                                 ".PP", ".TP", ".B ", ".BR"};
			int known = 0;
			for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
				known |= !strncmp(p, ok[i], strlen(ok[i]));
			assert_true(known);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	render = tu_sh(NULL, "%s help --man | groff -man -Tutf8 -ww -z", TU_SLUICE);
	assert_int_equal(render.status, 0);
	assert_string_equal(render.err, "");
	tu_run_dispose(&render);

	/* help CMD for every command listed. */
	for (const char *p = overview.out; p && *p;) {
		if (!strncmp(p, "  sluice ", 9)) {
			char name[64] = "";
			tu_run_result h;
			sscanf(p + 9, "%63s", name);
			h = tu_sh(NULL, "%s help %s", TU_SLUICE, name);
			assert_int_equal(h.status, 0);
			assert_true(strlen(h.out) > 40);
			tu_run_dispose(&h);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	tu_run_dispose(&overview);
	tu_run_dispose(&man);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(man_page_has_every_command_and_renders_cleanly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
