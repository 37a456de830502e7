/*
 * tests/cli/test_config.c - sluice config: values land in the repository's
 * git config where stock git reads them, are checked against their key's
 * kind (a refused value changes nothing), multi-valued hook channels, and
 * the library helpers (core/config.h) read what the CLI wrote.
 */
#include "testutil.h"

#include "config.h"
#include "sluice/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *work;
static char repo[4096];
static char keysenv[4300];
static const char *env[] = {keysenv, NULL};

static char *ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ok(const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = tu_sluice_okv(env, repo, fmt, ap);
	va_end(ap);
	return out;
}

static int setup(void **state)
{
	(void)state;
	work = tu_mkdtemp("config");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	tu_sh_ok(env, "%s init '%s'", TU_SLUICE, repo);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	return 0;
}

static void test_config__set_get_in_git_config(void **state)
{
	tu_run_result r;
	char *out;
	(void)state;

	free(ok("config sluice.http.url http://127.0.0.1:9"));
	free(ok("config sluice.http.adapterDir /srv/adapters"));
	out = ok("config sluice.http.url");
	assert_string_equal(out, "http://127.0.0.1:9\n");
	free(out);
	/* Stock git reads it; a key's case in the name part does not matter. */
	r = tu_sh(NULL, "git --git-dir='%s' config sluice.http.adapterdir", repo);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "/srv/adapters\n");
	tu_run_dispose(&r);
	/* Setting again replaces. */
	free(ok("config sluice.http.url http://127.0.0.1:10"));
	out = ok("config sluice.http.url");
	assert_string_equal(out, "http://127.0.0.1:10\n");
	free(out);
}

static void test_config__values_are_checked(void **state)
{
	(void)state;
	tu_refused(env, repo, 4, "is not an integer from 1 to 256",
	           "config sluice.http.concurrency 0");
	tu_refused(env, repo, 4, "is not an integer", "config sluice.http.timeout 10s");
	tu_refused(env, repo, 4, "not an http:// or https:// URL",
	           "config sluice.http.url ftp://x");
	tu_refused(env, repo, 4, "not a sluice.http setting", "config sluice.http.urll http://x");
	tu_refused(env, repo, 4, "not a hook type", "config hook.a.type kafka");
	tu_refused(env, repo, 4, "sets sluice.http.* and hook.NAME.* keys only",
	           "config core.bare false");
	tu_refused(env, repo, 4, "holds one value", "config --add hook.a.url http://x");
	tu_refused(env, repo, 3, "give KEY [VALUE], --unset KEY or --list", "config");
}

static void test_config__multi_valued_channels_list_and_unset(void **state)
{
	json_t *v, *ch;
	char *out;
	(void)state;

	free(ok("config hook.srv.type vllm"));
	free(ok("config --add hook.srv.channel prod"));
	free(ok("config --add hook.srv.channel staging"));
	out = ok("config --list --json");
	v = json_loads(out, 0, NULL);
	free(out);
	ch = json_object_get(json_object_get(v, "config"), "hook.srv.channel");
	assert_true(json_is_array(ch));
	assert_int_equal(json_array_size(ch), 2);
	assert_string_equal(json_string_value(json_array_get(ch, 0)), "prod");
	assert_string_equal(json_string_value(json_array_get(ch, 1)), "staging");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(v, "config"), "hook.srv.type")),
	        "vllm");
	json_decref(v);
	/* Stock git reads the added values, in order. */
	{
		tu_run_result r =
		        tu_sh(NULL, "git --git-dir='%s' config --get-all hook.srv.channel", repo);
		assert_int_equal(r.status, 0);
		assert_string_equal(r.out, "prod\nstaging\n");
		tu_run_dispose(&r);
	}
	/* A value with quotes and backslashes survives the round trip. */
	free(ok("config --add hook.srv.channel 'a\\\"b'"));
	out = ok("config hook.srv.channel");
	assert_string_equal(out, "prod\nstaging\na\\\"b\n");
	free(out);
	/* Setting replaces every value. */
	free(ok("config hook.srv.channel canary"));
	out = ok("config hook.srv.channel");
	assert_string_equal(out, "canary\n");
	free(out);
	free(ok("config --unset hook.srv.channel"));
	tu_refused(env, repo, 4, "config key hook.srv.channel is not set",
	           "config hook.srv.channel");
	tu_refused(env, repo, 4, "is not set", "config --unset hook.srv.channel");
}

static void test_config__library_helpers(void **state)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *r = NULL;
	char *s = NULL;
	int64_t n = 0;
	json_t *all = NULL;
	(void)state;

	free(ok("config sluice.http.retries 5"));
	free(ok("config --add hook.h2.channel a"));
	free(ok("config --add hook.h2.channel b"));
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&r, ctx, repo), 0);
	assert_int_equal(sluice_config__get_int(r, &n, "sluice.http.retries", 3, 0, 20), 0);
	assert_int_equal(n, 5);
	assert_int_equal(sluice_config__get_int(r, &n, "sluice.http.topLogprobs", 20, 1, 1000), 0);
	assert_int_equal(n, 20);
	assert_int_equal(sluice_config__get_int(r, &n, "sluice.http.retries", 3, 0, 2),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "sluice.http.retries"));
	assert_int_equal(sluice_config__get_string(r, &s, "sluice.http.model", "dflt"), 0);
	assert_string_equal(s, "dflt");
	free(s);
	assert_int_equal(sluice_config__get_string(r, &s, "sluice.http.model", NULL), 0);
	assert_null(s);
	assert_int_equal(sluice_config__get_all(r, &all, "hook.h2.channel"), 0);
	assert_int_equal(json_array_size(all), 2);
	json_decref(all);
	assert_int_equal(sluice_config__set_string(r, "sluice.http.model", "m1", 0), 0);
	assert_int_equal(sluice_config__get_string(r, &s, "sluice.http.model", NULL), 0);
	assert_string_equal(s, "m1");
	free(s);
	assert_int_equal(sluice_config__unset(r, "sluice.http.model"), 0);
	assert_int_equal(sluice_config__unset(r, "sluice.http.model"), SLUICE_ENOTFOUND);
	sluice_repo_free(r);
	sluice_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_config__set_get_in_git_config),
	        cmocka_unit_test(test_config__values_are_checked),
	        cmocka_unit_test(test_config__multi_valued_channels_list_and_unset),
	        cmocka_unit_test(test_config__library_helpers),
	};
	if (sluice_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
