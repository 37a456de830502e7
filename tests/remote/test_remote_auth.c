/*
 * tests/remote/test_remote_auth.c - chunk stores behind HTTP authentication
 * (docs/remotes.md, "Credentials"): nginx on loopback guards one WebDAV
 * directory with auth_basic (an htpasswd file written here), one with a
 * bearer token, and one that forbids PUT. Push, pull and clone succeed
 * with the right credentials from the environment or from a 0600 file;
 * without them, or with wrong ones, they fail naming the remote and the
 * URL, change no ref, and leave a clone's directory absent. No secret
 * appears in any output, in the repositories' git objects or in their
 * files.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BASIC_USER "alice"
#define BASIC_PW "pw-Basic-7f3a91"
#define TOKEN "tok-Bearer-c41d77"
#define GIT_USER "bob"
#define GIT_PW "pw-Git-5e02b8"

static char *work;
static char keysenv[4300], repo[4200], base_url[128], access_log[4200];
static const char *env[] = {keysenv, "SLUICE_KEY=ops", NULL};
static tu_nginx nginx;
static pid_t nginx_pid = -1, fcgi_pid = -1;
/* git over smart HTTP: git-http-backend behind nginx through fcgiwrap, when installed. */
static int have_git_http;
static char git_http_url[256];
/* Everything any command printed, searched for secrets at the end of each test. */
static char *said;

static void remember(const tu_run_result *r)
{
	size_t a = said ? strlen(said) : 0, b = strlen(r->out) + strlen(r->err) + 2;
	said = realloc(said, a + b + 1);
	assert_non_null(said);
	snprintf(said + a, b + 1, "%s\n%s\n", r->out, r->err);
}

/* Run sluice with extra environment; remembers its output; returns the result. */
static tu_run_result run(const char *const *extra, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static tu_run_result run(const char *const *extra, const char *fmt, ...)
{
	const char *e[8];
	char args[8192];
	size_t n = 0;
	va_list ap;
	tu_run_result r;

	e[n++] = keysenv;
	e[n++] = "SLUICE_KEY=ops";
	for (; extra && *extra && n < 7; extra++)
		e[n++] = *extra;
	e[n] = NULL;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	r = tu_sh(e, "%s %s", TU_SLUICE, args);
	remember(&r);
	return r;
}

static void run_ok(const char *const *extra, const char *args)
{
	tu_run_result r = run(extra, "%s", args);
	if (r.status != 0)
		fail_msg("sluice %s: exit %d\n%s%s", args, r.status, r.out, r.err);
	tu_run_dispose(&r);
}

/* The command fails with code and a stderr holding every needle (NULL-terminated). */
static void run_fails(const char *const *extra, int code, const char *const *needles,
                      const char *args)
{
	tu_run_result r = run(extra, "%s", args);
	if (r.status != code)
		fail_msg("sluice %s: exit %d, expected %d\n%s%s", args, r.status, code, r.out,
		         r.err);
	for (; *needles; needles++)
		if (!strstr(r.err, *needles))
			fail_msg("sluice %s: stderr lacks '%s':\n%s", args, *needles, r.err);
	tu_run_dispose(&r);
}

/* No secret in anything printed, in any git object of dir, or in any of its files. */
static void no_secret_in(const char *dir)
{
	const char *secrets[] = {BASIC_PW, TOKEN, GIT_PW, "wrong-pw-0d1e", "wrong-tok-9b2c", NULL};

	for (const char *const *s = secrets; *s; s++) {
		tu_run_result r;
		assert_null(said ? strstr(said, *s) : NULL);
		r = tu_sh(NULL,
		          "git --git-dir='%s' cat-file --batch-all-objects --batch | grep -c -a -F "
		          "'%s'; grep -r -a -l -F '%s' '%s'",
		          dir, *s, *s, dir);
		/* grep -c prints 0 and the second grep prints nothing when nothing matches. */
		if (strcmp(r.out, "0\n"))
			fail_msg("secret %s found under %s:\n%s", *s, dir, r.out);
		tu_run_dispose(&r);
	}
	{
		size_t len;
		unsigned char *log = tu_read(access_log, &len);
		for (const char *const *s = secrets; *s; s++)
			assert_null(log ? strstr((char *)log, *s) : NULL);
		free(log);
	}
}

static void git_ref(const char *dir, const char *ref, char out[41])
{
	tu_run_result r = tu_sh(NULL, "git --git-dir='%s' rev-parse -q --verify %s", dir, ref);
	snprintf(out, 41, "%s", r.status == 0 ? r.out : "");
	tu_run_dispose(&r);
}

static char *ok_in(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ok_in(const char *dir, const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = tu_sluice_okv(env, dir, fmt, ap);
	va_end(ap);
	return out;
}

/*
 * fcgiwrap on a unix socket under dir, serving git-http-backend for the
 * bare repositories under dir/gitroot; the nginx location (into extra)
 * that guards it with auth_basic. Returns 0 when fcgiwrap is not installed.
 */
static int start_git_http(const char *dir, char *extra, size_t size, const char *htpasswd)
{
	char sock[4300], log[4300], arg[4400], exec[4200];
	tu_run_result r = tu_sh(NULL, "command -v fcgiwrap && git --exec-path");
	char *nl;
	int i, n;

	if (r.status != 0) {
		tu_run_dispose(&r);
		return 0;
	}
	nl = strchr(r.out, '\n');
	snprintf(exec, sizeof(exec), "%s", nl ? nl + 1 : "");
	if ((nl = strchr(exec, '\n')))
		*nl = '\0';
	tu_run_dispose(&r);
	snprintf(sock, sizeof(sock), "%s/fcgi.sock", dir);
	snprintf(log, sizeof(log), "%s/fcgiwrap.log", dir);
	snprintf(arg, sizeof(arg), "unix:%s", sock);
	tu_sh_ok(NULL,
	         "mkdir -p '%s/gitroot/git' && git init -q --bare '%s/gitroot/git/shared.git' "
	         "&& git --git-dir='%s/gitroot/git/shared.git' config http.receivepack true",
	         dir, dir, dir);
	{
		char *argv[] = {"fcgiwrap", "-s", arg, NULL};
		fcgi_pid = tu_spawn(argv, log);
	}
	for (i = 0; i < 200 && access(sock, F_OK) != 0; i++)
		usleep(50000);
	assert_int_equal(access(sock, F_OK), 0);
	n = snprintf(extra, size,
	             "    location /git/ {\n"
	             "      auth_basic \"git\"; auth_basic_user_file %s;\n"
	             "      fastcgi_pass unix:%s;\n"
	             "      fastcgi_param SCRIPT_FILENAME %s/git-http-backend;\n"
	             "      fastcgi_param GIT_PROJECT_ROOT %s/gitroot;\n"
	             "      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n"
	             "      fastcgi_param GIT_CONFIG_NOSYSTEM 1; fastcgi_param HOME %s;\n"
	             "      fastcgi_param REMOTE_USER $remote_user; fastcgi_param PATH_INFO $uri;\n"
	             "      fastcgi_param QUERY_STRING $query_string;\n"
	             "      fastcgi_param REQUEST_METHOD $request_method;\n"
	             "      fastcgi_param CONTENT_TYPE $content_type;\n"
	             "      fastcgi_param CONTENT_LENGTH $content_length;\n"
	             "    }\n",
	             htpasswd, sock, exec, dir, dir);
	assert_true(n > 0 && (size_t)n < size);
	return 1;
}

static int setup(void **state)
{
	char dir[4200], extra[16384], pw[4300];
	size_t n;
	(void)state;

	work = tu_mkdtemp("remote-auth");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/origin", work);
	snprintf(dir, sizeof(dir), "%s/nginx", work);
	/* Debian's nginx reads {PLAIN} passwords (and crypt(3) ones) from auth_basic_user_file. */
	snprintf(pw, sizeof(pw), "%s/htpasswd", dir);
	tu_write(pw, BASIC_USER ":{PLAIN}" BASIC_PW "\n" GIT_USER ":{PLAIN}" GIT_PW "\n",
	         strlen(BASIC_USER ":{PLAIN}" BASIC_PW "\n" GIT_USER ":{PLAIN}" GIT_PW "\n"));
	snprintf(extra, sizeof(extra),
	         "    location /basic/ { auth_basic \"sluice\"; auth_basic_user_file %s; }\n"
	         "    location /bearer/ {\n"
	         "      if ($http_authorization != \"Bearer " TOKEN "\") { return 401; }\n"
	         "    }\n"
	         "    location /readonly/ { limit_except GET HEAD { deny all; } }\n",
	         pw);
	n = strlen(extra);
	have_git_http = start_git_http(dir, extra + n, sizeof(extra) - n, pw);
	tu_nginx_start_with(&nginx, dir, extra);
	snprintf(git_http_url, sizeof(git_http_url), "%s/git/shared.git", nginx.url);
	nginx_pid = nginx.pid;
	snprintf(base_url, sizeof(base_url), "%s", nginx.url);
	snprintf(access_log, sizeof(access_log), "%s", nginx.access_log);
	tu_sh_ok(NULL, "mkdir -p '%s/in' && cp -r '%s/test-model' '%s/in/base'", work,
	         SLUICE_RESOURCES, work);
	tu_sh_ok(env, "%s init '%s' --required-gates none", TU_SLUICE, repo);
	free(ok_in(repo, "key new ops --role operator --role proposer"));
	free(ok_in(repo, "propose base '%s/in/base' -m base", work));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_proc_stop(&nginx_pid);
	tu_proc_stop(&fcgi_pid);
	tu_rmtree(work);
	free(work);
	free(said);
	return 0;
}

/* auth_basic: no credentials, wrong ones, then right ones from the per-remote variables. */
static void test_remote_auth__basic(void **state)
{
	char bare[4300], clone[4300], args[8800], head[41], ours[41];
	const char *wrong[] = {"SLUICE_CHUNKS_USER=" BASIC_USER,
	                       "SLUICE_CHUNKS_PASSWORD=wrong-pw-0d1e", NULL};
	const char *right[] = {"SLUICE_CHUNKS_USER_BASIC_1=" BASIC_USER,
	                       "SLUICE_CHUNKS_PASSWORD_BASIC_1=" BASIC_PW, NULL};
	const char *half[] = {"SLUICE_CHUNKS_USER=" BASIC_USER, NULL};
	(void)state;

	snprintf(bare, sizeof(bare), "%s/basic.git", work);
	snprintf(clone, sizeof(clone), "%s/clone-basic", work);
	tu_sh_ok(NULL, "git init -q --bare '%s'", bare);
	snprintf(args, sizeof(args), "-C '%s' remote add basic-1 '%s' --chunks %s/basic/store",
	         repo, bare, base_url);
	run_ok(NULL, args);

	snprintf(args, sizeof(args), "-C '%s' push basic-1", repo);
	{
		const char *n[] = {"remote basic-1",
		                   "401",
		                   base_url,
		                   "/basic/store/chunks/",
		                   "no credentials are set",
		                   "SLUICE_CHUNKS_TOKEN_BASIC_1",
		                   NULL};
		run_fails(NULL, 1, n, args);
	}
	{
		const char *n[] = {"remote basic-1", "401", "credentials refused",
		                   "SLUICE_CHUNKS_USER and SLUICE_CHUNKS_PASSWORD", NULL};
		run_fails(wrong, 1, n, args);
	}
	{
		const char *n[] = {"SLUICE_CHUNKS_USER is set but SLUICE_CHUNKS_PASSWORD is not",
		                   NULL};
		run_fails(half, 4, n, args);
	}
	/* Refused pushes moved no ref. */
	git_ref(bare, "refs/sluice/journal", head);
	assert_string_equal(head, "");

	snprintf(args, sizeof(args), "-C '%s' push basic-1 --json", repo);
	run_ok(right, args);
	git_ref(bare, "refs/sluice/journal", head);
	git_ref(repo, "refs/sluice/journal", ours);
	assert_string_equal(head, ours);

	/* A clone without credentials fails and leaves no directory; with them it verifies. */
	snprintf(args, sizeof(args), "clone '%s' '%s' --chunks %s/basic/store --name basic-1", bare,
	         clone, base_url);
	{
		const char *n[] = {"remote basic-1", "401", NULL};
		run_fails(NULL, 1, n, args);
	}
	tu_sh_ok(NULL, "test ! -e '%s'", clone);
	snprintf(args, sizeof(args),
	         "clone '%s' '%s' --chunks %s/basic/store --name basic-1 --json", bare, clone,
	         base_url);
	run_ok(right, args);
	snprintf(args, sizeof(args), "-C '%s' verify", clone);
	run_ok(NULL, args);
	git_ref(clone, "refs/sluice/journal", head);
	assert_string_equal(head, ours);
	no_secret_in(repo);
	no_secret_in(clone);
}

/* A bearer token from a 0600 file named by the config; a file others can read is refused. */
static void test_remote_auth__bearer_file(void **state)
{
	char bare[4300], clone[4300], file[4300], args[8800], head[41], ours[41], www[4300];
	const char *wrong[] = {"SLUICE_CHUNKS_TOKEN=wrong-tok-9b2c", NULL};
	const char *right[] = {"SLUICE_CHUNKS_TOKEN=" TOKEN, NULL};
	(void)state;

	snprintf(bare, sizeof(bare), "%s/bearer.git", work);
	snprintf(clone, sizeof(clone), "%s/clone-bearer", work);
	snprintf(file, sizeof(file), "%s/secrets/chunks.cred", work);
	snprintf(www, sizeof(www), "%s/bearer", nginx.root);
	tu_sh_ok(NULL, "git init -q --bare '%s'", bare);
	snprintf(args, sizeof(args), "-C '%s' remote add tok '%s' --chunks %s/bearer/store", repo,
	         bare, base_url);
	run_ok(NULL, args);
	tu_write(file, "# chunk store of tok\ntoken=" TOKEN "\n",
	         strlen("# chunk store of tok\ntoken=" TOKEN "\n"));
	chmod(file, 0644);
	tu_sh_ok(NULL, "git --git-dir='%s' config remote.tok.sluicechunkscredentials '%s'", repo,
	         file);

	snprintf(args, sizeof(args), "-C '%s' push tok", repo);
	tu_write(access_log, "", 0);
	{
		const char *n[] = {file, "mode 0644", "chmod 600", NULL};
		run_fails(NULL, 1, n, args);
	}
	/* Refused before any request. */
	{
		size_t len = 0;
		free(tu_read(access_log, &len));
		assert_int_equal(len, 0);
	}
	{
		const char *n[] = {"remote tok", "401", "SLUICE_CHUNKS_TOKEN",
		                   "credentials refused", NULL};
		/* The environment is asked first: a wrong token there is refused by the store. */
		run_fails(wrong, 1, n, args);
	}
	tu_sh_ok(NULL, "test ! -e '%s/store'", www);
	git_ref(bare, "refs/sluice/journal", head);
	assert_string_equal(head, "");

	chmod(file, 0600);
	snprintf(args, sizeof(args), "-C '%s' push tok --json", repo);
	run_ok(NULL, args);
	git_ref(bare, "refs/sluice/journal", head);
	git_ref(repo, "refs/sluice/journal", ours);
	assert_string_equal(head, ours);

	/* A file with an unknown key is refused naming the line, not its text. */
	tu_write(file, "tokn=" TOKEN "\n", strlen("tokn=" TOKEN "\n"));
	chmod(file, 0600);
	snprintf(args, sizeof(args), "-C '%s' push tok", repo);
	{
		const char *n[] = {"line 1: unknown key", NULL};
		run_fails(NULL, 4, n, args);
	}

	snprintf(args, sizeof(args), "clone '%s' '%s' --chunks %s/bearer/store --name tok", bare,
	         clone, base_url);
	run_ok(right, args);
	snprintf(args, sizeof(args), "-C '%s' verify", clone);
	run_ok(NULL, args);
	no_secret_in(repo);
	no_secret_in(clone);
}

/* A store that lets the credentials read but not write: 403, named, not retried. */
static void test_remote_auth__forbidden(void **state)
{
	char bare[4300], args[8800], head[41];
	const char *right[] = {"SLUICE_CHUNKS_TOKEN=" TOKEN, NULL};
	(void)state;

	snprintf(bare, sizeof(bare), "%s/ro.git", work);
	tu_sh_ok(NULL, "git init -q --bare '%s'", bare);
	snprintf(args, sizeof(args), "-C '%s' remote add ro '%s' --chunks %s/readonly/store", repo,
	         bare, base_url);
	run_ok(NULL, args);
	tu_write(access_log, "", 0);
	snprintf(args, sizeof(args), "-C '%s' push ro --concurrency 1", repo);
	{
		const char *n[] = {"remote ro", "403", "forbidden", "PUT", NULL};
		run_fails(right, 1, n, args);
	}
	/* One request, no retries. */
	{
		tu_run_result r = tu_sh(NULL, "grep -c ' 403 ' '%s'", access_log);
		assert_string_equal(r.out, "1\n");
		tu_run_dispose(&r);
	}
	git_ref(bare, "refs/sluice/journal", head);
	assert_string_equal(head, "");
	no_secret_in(repo);
}

/* A git remote over smart HTTP behind auth_basic: user and password from the environment. */
static void test_remote_auth__git_over_http(void **state)
{
	char served[4300], clone[4300], args[8800], head[41], ours[41];
	const char *wrong[] = {"SLUICE_GIT_USER=" GIT_USER, "SLUICE_GIT_PASSWORD=wrong-pw-0d1e",
	                       NULL};
	const char *both[] = {"SLUICE_GIT_USER_HTTPGIT=" GIT_USER,
	                      "SLUICE_GIT_PASSWORD_HTTPGIT=" GIT_PW, "SLUICE_CHUNKS_TOKEN=" TOKEN,
	                      NULL};
	(void)state;

	/* scripts/deps.sh installs fcgiwrap: without it this is a failure, not a skip. */
	if (!have_git_http)
		fail_msg("fcgiwrap is not installed (scripts/deps.sh installs it): no smart-HTTP "
		         "git server to test with");
	snprintf(served, sizeof(served), "%s/nginx/gitroot/git/shared.git", work);
	snprintf(clone, sizeof(clone), "%s/clone-http", work);
	/* Credentials in the URL are refused, and the refusal does not repeat them. */
	snprintf(args, sizeof(args),
	         "-C '%s' remote add httpgit 'http://" GIT_USER ":" GIT_PW
	         "@127.0.0.1:%d/git/shared.git'",
	         repo, nginx.port);
	{
		const char *n[] = {"user information", NULL};
		run_fails(NULL, 4, n, args);
	}
	snprintf(args, sizeof(args), "-C '%s' remote add httpgit %s --chunks %s/bearer/store", repo,
	         git_http_url, base_url);
	run_ok(NULL, args);

	snprintf(args, sizeof(args), "-C '%s' push httpgit", repo);
	{
		const char *n[] = {"remote httpgit", git_http_url, "asks for credentials",
		                   "SLUICE_GIT_USER_HTTPGIT", NULL};
		run_fails(NULL, 1, n, args);
	}
	{
		const char *n[] = {"remote httpgit", "refused the git credentials",
		                   "SLUICE_GIT_USER and SLUICE_GIT_PASSWORD", NULL};
		run_fails(wrong, 1, n, args);
	}
	git_ref(served, "refs/sluice/journal", head);
	assert_string_equal(head, "");

	snprintf(args, sizeof(args), "-C '%s' push httpgit --json", repo);
	run_ok(both, args);
	git_ref(served, "refs/sluice/journal", head);
	git_ref(repo, "refs/sluice/journal", ours);
	assert_string_equal(head, ours);

	snprintf(args, sizeof(args), "clone %s '%s' --chunks %s/bearer/store --name httpgit",
	         git_http_url, clone, base_url);
	{
		const char *n[] = {"remote httpgit", "asks for credentials", NULL};
		run_fails(NULL, 1, n, args);
	}
	tu_sh_ok(NULL, "test ! -e '%s'", clone);
	run_ok(both, args);
	snprintf(args, sizeof(args), "-C '%s' verify", clone);
	run_ok(NULL, args);
	git_ref(clone, "refs/sluice/journal", head);
	assert_string_equal(head, ours);
	no_secret_in(repo);
	no_secret_in(clone);
	no_secret_in(served);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_remote_auth__basic),
	        cmocka_unit_test(test_remote_auth__bearer_file),
	        cmocka_unit_test(test_remote_auth__forbidden),
	        cmocka_unit_test(test_remote_auth__git_over_http),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
