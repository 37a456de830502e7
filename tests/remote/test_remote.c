/*
 * tests/remote/test_remote.c - remotes end to end (docs/remotes.md): a
 * repository holding the shipped test model, proposed and promoted, is
 * pushed to a bare repository served by `git daemon` over git:// and to a
 * bare repository by path, with chunks going to a WebDAV directory served
 * by nginx; clones pull it back and must agree on everything (journal
 * head, channel heads, sluice verify, sluice audit verify, a byte-identical
 * checkout). A second push sends exactly the new chunks (counted in
 * nginx's access log); a corrupted chunk on the server makes pull fail
 * naming it, with the repository unchanged; a diverged journal is refused
 * naming where the histories part, with neither side changed.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *work;
static char keysenv[4300], repo[4200], clone_git[4200], clone_path[4200];
static char gitbase[4200], store_url[128], git_url[128], path_url[4300];
static char access_log[4200], www[4200];
static char base[41], v2[41];
static const char *env[] = {keysenv, "SLUICE_KEY=ops", NULL};
static pid_t nginx_pid = -1, gitd_pid = -1;
static int nginx_port;
static tu_nginx nginx;

static void start_nginx(void)
{
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/nginx", work);
	tu_nginx_start(&nginx, dir);
	snprintf(www, sizeof(www), "%s", nginx.root);
	snprintf(access_log, sizeof(access_log), "%s", nginx.access_log);
	snprintf(store_url, sizeof(store_url), "%s/store", nginx.url);
	nginx_pid = nginx.pid;
	nginx_port = nginx.port;
}

static void start_git_daemon(void)
{
	int port;

	snprintf(gitbase, sizeof(gitbase), "%s/git", work);
	tu_sh_ok(NULL,
	         "mkdir -p '%s' && git init -q --bare '%s/shared.git' && git init -q --bare "
	         "'%s/bypath.git'",
	         gitbase, gitbase, gitbase);
	port = tu_git_daemon_start(gitbase, work, &gitd_pid);
	snprintf(git_url, sizeof(git_url), "git://127.0.0.1:%d/shared.git", port);
	snprintf(path_url, sizeof(path_url), "%s/bypath.git", gitbase);
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

static json_t *json_in(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *json_in(const char *dir, const char *fmt, ...)
{
	va_list ap;
	json_t *v;

	va_start(ap, fmt);
	v = tu_sluice_jsonv(env, dir, fmt, ap);
	va_end(ap);
	return v;
}

static long long jnum(json_t *v, const char *a, const char *b)
{
	return (long long)json_integer_value(json_object_get(json_object_get(v, a), b));
}

/* Propose a copy of DIR changed by `mutate --percent P --seed S` onto prod and promote it. */
static void new_version(char out[41], const char *from, const char *to, int percent, int seed,
                        long long *new_chunks)
{
	json_t *v;

	tu_sh_ok(NULL, "cp -r '%s/in/%s' '%s/in/%s' && %s mutate '%s/in/%s' --percent %d --seed %d",
	         work, from, work, to, SLUICE_SYNTH, work, to, percent, seed);
	v = json_in(repo, "propose base '%s/in/%s' --onto prod -m %s", work, to, to);
	snprintf(out, 41, "%s", json_string_value(json_object_get(v, "version")));
	*new_chunks = jnum(v, "stored", "new_chunks");
	json_decref(v);
	free(ok_in(repo, "promote %s --channel prod", out));
}

/* Lines of nginx's access log holding needle ("\"PUT ", "\"GET "). */
static long long log_count(const char *needle)
{
	size_t len;
	unsigned char *text = tu_read(access_log, &len);
	long long n = 0;

	for (char *p = (char *)text; p && (p = strstr(p, needle)); p++)
		n++;
	free(text);
	return n;
}

static void truncate_log(void)
{
	tu_write(access_log, "", 0);
}

static void git_head(const char *dir, const char *ref, char out[41])
{
	tu_run_result r = tu_sh(NULL, "git --git-dir='%s' rev-parse %s", dir, ref);
	assert_int_equal(r.status, 0);
	snprintf(out, 41, "%s", r.out);
	tu_run_dispose(&r);
}

/* Every channel's head, from sluice status --json, as one JSON object. */
static json_t *heads(const char *dir)
{
	json_t *v = json_in(dir, "status"), *c, *o = json_object();
	size_t i;

	json_array_foreach(json_object_get(v, "channels"), i, c) json_object_set(
	        o, json_string_value(json_object_get(c, "name")), json_object_get(c, "head"));
	json_decref(v);
	return o;
}

/* The clone agrees with the origin: journal, channels, verify, audit verify, checkout. */
static void agrees(const char *dir, const char *version, const char *input)
{
	char a[41], b[41], co[4300];
	json_t *ha = heads(repo), *hb = heads(dir);

	git_head(repo, "refs/sluice/journal", a);
	git_head(dir, "refs/sluice/journal", b);
	assert_string_equal(a, b);
	assert_true(json_equal(ha, hb));
	git_head(dir, "refs/sluice/channels/prod", b);
	assert_string_equal(b, json_string_value(json_object_get(ha, "prod")));
	json_decref(ha);
	json_decref(hb);
	free(ok_in(dir, "verify"));
	free(ok_in(dir, "audit verify"));
	snprintf(co, sizeof(co), "%s/co-%s", work, version);
	tu_sh_ok(NULL, "rm -rf '%s'", co);
	free(ok_in(dir, "checkout %s '%s'", version, co));
	tu_sh_ok(NULL, "diff -r '%s/base' '%s/in/%s'", co, work, input);
}

static int setup(void **state)
{
	json_t *v;
	(void)state;

	work = tu_mkdtemp("remote");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/origin", work);
	snprintf(clone_git, sizeof(clone_git), "%s/clone-git", work);
	snprintf(clone_path, sizeof(clone_path), "%s/clone-path", work);
	start_nginx();
	start_git_daemon();
	tu_sh_ok(NULL, "mkdir -p '%s/in' && cp -r '%s/test-model' '%s/in/base'", work,
	         SLUICE_RESOURCES, work);
	tu_sh_ok(env, "%s init '%s' --required-gates none", TU_SLUICE, repo);
	free(ok_in(repo, "key new ops --role operator --role proposer"));
	v = json_in(repo, "propose base '%s/in/base' -m base", work);
	snprintf(base, sizeof(base), "%s", json_string_value(json_object_get(v, "version")));
	json_decref(v);
	free(ok_in(repo, "promote %s --channel prod", base));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_proc_stop(&nginx_pid);
	tu_proc_stop(&gitd_pid);
	tu_rmtree(work);
	free(work);
	return 0;
}

static void test_remote__push_then_clone_agrees(void **state)
{
	json_t *v;
	char remote_head[41], local_head[41];
	(void)state;

	free(ok_in(repo, "remote add origin %s --chunks %s", git_url, store_url));
	free(ok_in(repo, "remote add bypath '%s' --chunks %s", path_url, store_url));
	v = json_in(repo, "remote list");
	assert_int_equal(json_array_size(json_object_get(v, "remotes")), 2);
	json_decref(v);

	truncate_log();
	v = json_in(repo, "push origin");
	assert_false(json_is_true(json_object_get(v, "up_to_date")));
	/* A first push: every chunk of the model, each one PUT, nothing more. */
	assert_true(jnum(v, "chunks", "sent") > 10);
	assert_int_equal(jnum(v, "chunks", "sent"), jnum(v, "chunks", "needed"));
	assert_int_equal(jnum(v, "requests", "http"), jnum(v, "chunks", "sent"));
	assert_int_equal(log_count("\"PUT "), jnum(v, "chunks", "sent"));
	json_decref(v);
	{
		char d[4300];
		snprintf(d, sizeof(d), "%s/shared.git", gitbase);
		git_head(d, "refs/sluice/journal", remote_head);
		git_head(repo, "refs/sluice/journal", local_head);
		assert_string_equal(remote_head, local_head);
		git_head(d, "refs/sluice/channels/prod", remote_head);
		assert_string_equal(remote_head, base);
	}
	/* A second push finds nothing to do, with no HTTP request. */
	truncate_log();
	v = json_in(repo, "push origin");
	assert_true(json_is_true(json_object_get(v, "up_to_date")));
	assert_int_equal(jnum(v, "requests", "http"), 0);
	json_decref(v);
	assert_int_equal(log_count("HTTP/1.1"), 0);

	/*
	 * The same history to a path sharing the store: its journal is empty and
	 * vouches for nothing, but this repository's record of what the store
	 * took does, so only git travels.
	 */
	truncate_log();
	v = json_in(repo, "push bypath");
	assert_false(json_is_true(json_object_get(v, "up_to_date")));
	assert_int_equal(jnum(v, "chunks", "sent"), 0);
	assert_true(jnum(v, "chunks", "in_record") > 10);
	assert_int_equal(jnum(v, "requests", "http"), 0);
	json_decref(v);
	assert_int_equal(log_count("HTTP/1.1"), 0);

	/* A clone that expects other root keys is refused and leaves nothing. */
	{
		tu_run_result r = tu_sh(env, "%s clone %s '%s' --chunks %s --root SHA256:nope",
		                        TU_SLUICE, git_url, clone_git, store_url);
		json_t *keys = json_in(repo, "key list"), *k;
		size_t i;
		char fp[128] = "";
		assert_int_equal(r.status, 1);
		assert_non_null(strstr(r.err, "not SHA256:nope"));
		tu_run_dispose(&r);
		tu_sh_ok(NULL, "test ! -e '%s'", clone_git);
		json_array_foreach(json_object_get(keys, "keys"), i, k)
		{
			if (!strcmp(json_string_value(json_object_get(k, "name")), "root"))
				snprintf(fp, sizeof(fp), "%s",
				         json_string_value(json_object_get(k, "fingerprint")));
		}
		json_decref(keys);
		assert_true(strlen(fp) > 10);
		/* Clones over git:// and from the path agree with the origin in every respect. */
		tu_sh_ok(env, "%s clone %s '%s' --chunks %s --root '%s'", TU_SLUICE, git_url,
		         clone_git, store_url, fp);
	}
	agrees(clone_git, base, "base");
	tu_sh_ok(env, "%s clone 'file://%s' '%s' --chunks %s", TU_SLUICE, path_url, clone_path,
	         store_url);
	agrees(clone_path, base, "base");
}

static void test_remote__second_push_sends_only_new_chunks(void **state)
{
	long long fresh;
	json_t *v;
	(void)state;

	new_version(v2, "base", "v2", 10, 11, &fresh);
	assert_true(fresh > 0);
	truncate_log();
	v = json_in(repo, "push origin");
	/* Exactly the chunks the new version brought: nothing the store holds is asked for. */
	assert_int_equal(jnum(v, "chunks", "sent"), fresh);
	assert_int_equal(jnum(v, "requests", "http"), fresh);
	assert_true(jnum(v, "chunks", "in_remote_journal") > fresh);
	json_decref(v);
	assert_int_equal(log_count("\"PUT "), fresh);
	assert_int_equal(log_count("HTTP/1.1"), fresh);

	truncate_log();
	v = json_in(clone_git, "pull origin");
	assert_int_equal(jnum(v, "chunks", "received"), fresh);
	assert_int_equal(jnum(v, "journal", "entries"), 2); /* propose and promote */
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(v, "channels"), "prod")), v2);
	json_decref(v);
	assert_int_equal(log_count("\"GET "), fresh);
	agrees(clone_git, v2, "v2");
	/* Pulling again: up to date, nothing fetched. */
	v = json_in(clone_git, "pull origin");
	assert_true(json_is_true(json_object_get(v, "up_to_date")));
	json_decref(v);
}

static void test_remote__corrupt_chunk_refused(void **state)
{
	char v3[41], before[65], after[65], chunk[4400], hex[65];
	long long fresh;
	size_t len;
	unsigned char *text;
	char *p;
	tu_run_result r;
	(void)state;

	new_version(v3, "v2", "v3", 10, 12, &fresh);
	truncate_log();
	free(ok_in(repo, "push origin"));
	/* One of the chunks just sent, from the log: "PUT /store/chunks/ab/<id> ". */
	text = tu_read(access_log, &len);
	assert_non_null(text);
	p = strstr((char *)text, "\"PUT /store/chunks/");
	assert_non_null(p);
	snprintf(hex, sizeof(hex), "%.64s", p + strlen("\"PUT /store/chunks/ab/"));
	free(text);
	snprintf(chunk, sizeof(chunk), "%s/store/chunks/%.2s/%s", www, hex, hex);
	tu_sh_ok(NULL,
	         "cp '%s' '%s.good' && printf 'XY' | dd of='%s' bs=1 seek=7 conv=notrunc "
	         "2>/dev/null",
	         chunk, chunk, chunk);

	tu_tree_digest(clone_git, before);
	r = tu_sh(env, "%s -C '%s' pull origin", TU_SLUICE, clone_git);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, hex));
	assert_non_null(strstr(r.err, "corrupt"));
	/* The version that needs it is named. */
	{
		char vshort[13];
		snprintf(vshort, sizeof(vshort), "%.12s", v3);
		assert_non_null(strstr(r.err, vshort));
	}
	tu_run_dispose(&r);
	tu_tree_digest(clone_git, after);
	assert_string_equal(before, after);
	free(ok_in(clone_git, "verify"));

	/* A chunk missing from the store is named too, and changes nothing. */
	tu_sh_ok(NULL, "rm '%s'", chunk);
	r = tu_sh(env, "%s -C '%s' pull origin", TU_SLUICE, clone_git);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, hex));
	assert_non_null(strstr(r.err, "missing"));
	tu_run_dispose(&r);
	tu_tree_digest(clone_git, after);
	assert_string_equal(before, after);

	/* Put back, the pull goes through. */
	tu_sh_ok(NULL, "mv '%s.good' '%s'", chunk, chunk);
	free(ok_in(clone_git, "pull origin"));
	agrees(clone_git, v3, "v3");
}

static void test_remote__diverged_journal_refused(void **state)
{
	char here[65], there[65], here2[65], there2[65], shared[4300], common[13];
	tu_run_result r;
	(void)state;

	snprintf(shared, sizeof(shared), "%s/shared.git", gitbase);
	{
		char h[41];
		git_head(repo, "refs/sluice/journal", h);
		snprintf(common, sizeof(common), "%.12s", h);
	}
	/* The origin rolls prod back and pushes; the clone, not knowing, moves the anchor. */
	free(ok_in(repo, "rollback prod --reason 'bad delta'"));
	free(ok_in(repo, "push origin"));
	free(ok_in(clone_git, "anchor prod --reason 'mine'"));

	tu_tree_digest(clone_git, here);
	tu_tree_digest(shared, there);
	r = tu_sh(env, "%s -C '%s' push origin", TU_SLUICE, clone_git);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "diverged"));
	assert_non_null(strstr(r.err, "last common entry is #"));
	assert_non_null(strstr(r.err, common));
	assert_non_null(strstr(r.err, "anchor by ops"));
	assert_non_null(strstr(r.err, "rollback by ops"));
	tu_run_dispose(&r);
	r = tu_sh(env, "%s -C '%s' pull origin", TU_SLUICE, clone_git);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "diverged"));
	assert_non_null(strstr(r.err, common));
	tu_run_dispose(&r);
	tu_tree_digest(clone_git, here2);
	tu_tree_digest(shared, there2);
	assert_string_equal(here, here2);
	assert_string_equal(there, there2);

	/* Pulling from a remote that is behind changes nothing and is no failure. */
	{
		char d1[65], d2[65];
		json_t *v;
		tu_tree_digest(repo, d1);
		v = json_in(repo, "pull bypath");
		assert_true(json_integer_value(json_object_get(v, "ahead")) > 0);
		json_decref(v);
		tu_tree_digest(repo, d2);
		assert_string_equal(d1, d2);
	}

	/* A repository that is merely behind is told to pull first. */
	free(ok_in(clone_path, "remote add up '%s/shared.git'", gitbase));
	r = tu_sh(env, "%s -C '%s' push up", TU_SLUICE, clone_path);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "ahead"));
	assert_non_null(strstr(r.err, "sluice pull up"));
	tu_run_dispose(&r);
}

/* A store that lost a chunk is repaired by --recheck: HEAD for each, PUT for what is gone. */
static void test_remote__recheck_repairs_store(void **state)
{
	char chunk[4400];
	long long needed;
	json_t *v;
	tu_run_result r;
	(void)state;

	r = tu_sh(NULL, "ls '%s'/store/chunks/*/* | head -1", www);
	assert_int_equal(r.status, 0);
	snprintf(chunk, sizeof(chunk), "%.*s", (int)strcspn(r.out, "\n"), r.out);
	tu_run_dispose(&r);
	tu_sh_ok(NULL, "rm '%s'", chunk);
	truncate_log();
	v = json_in(repo, "push origin --recheck");
	needed = jnum(v, "chunks", "needed");
	assert_int_equal(jnum(v, "chunks", "sent"), 1);
	assert_int_equal(jnum(v, "chunks", "already_there"), needed - 1);
	assert_int_equal(jnum(v, "requests", "http"), needed + 1);
	json_decref(v);
	assert_int_equal(log_count("\"HEAD "), needed);
	assert_int_equal(log_count("\"PUT "), 1);
	tu_sh_ok(NULL, "test -f '%s'", chunk);
}

/* 503s are retried with backoff until the store takes every chunk. */
static void test_remote__retries_through_503(void **state)
{
	long long sent;
	json_t *v;
	(void)state;

	tu_sh_ok(NULL, "git init -q --bare '%s/limited.git'", gitbase);
	free(ok_in(repo,
	           "remote add limited '%s/limited.git' --chunks http://127.0.0.1:%d/limited/store",
	           gitbase, nginx_port));
	truncate_log();
	v = json_in(repo, "push limited --retries 12 --concurrency 8");
	sent = jnum(v, "chunks", "sent");
	assert_int_equal(sent, jnum(v, "chunks", "needed"));
	assert_true(sent > 10);
	/* Some requests were refused and asked again: more requests than chunks. */
	assert_true(jnum(v, "requests", "http") > sent);
	json_decref(v);
	assert_true(log_count("\" 503 ") > 0);
	assert_int_equal(log_count("\" 201 "), sent);
	/* A clone through the same limit gets every chunk, checked. */
	{
		char dir[4300];
		snprintf(dir, sizeof(dir), "%s/clone-limited", work);
		tu_sh_ok(
		        env,
		        "%s clone '%s/limited.git' '%s' --chunks http://127.0.0.1:%d/limited/store "
		        "--retries 12",
		        TU_SLUICE, gitbase, dir, nginx_port);
		free(ok_in(dir, "verify"));
	}
}

/*
 * A pull killed while it fetches chunks (slowed by the store's 503s): the
 * journal is where it was, verify passes, and the next pull finishes the job
 * and removes the dead pull's quarantine.
 */
static void test_remote__killed_pull_changes_nothing(void **state)
{
	char dir[4300], before[41], after[41], v4[41], log[4400];
	long long fresh;
	pid_t pid;
	int st;
	tu_run_result r;
	(void)state;

	snprintf(dir, sizeof(dir), "%s/clone-limited", work);
	new_version(v4, "v3", "v4", 90, 13, &fresh);
	assert_true(fresh >= 10);
	free(ok_in(repo, "push limited --retries 15"));
	git_head(dir, "refs/sluice/journal", before);
	snprintf(log, sizeof(log), "%s/killed-pull.log", work);
	{
		char *argv[] = {TU_SLUICE,       "-C", dir,         "pull", "origin",
		                "--concurrency", "1",  "--retries", "20",   NULL};
		pid = tu_spawn(argv, log);
	}
	/* One request at a time, each refused (503) when it follows the last within 50 ms and
	 * retried after 0.25 s or more: 10+ chunks take seconds. */
	usleep(900 * 1000);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	git_head(dir, "refs/sluice/journal", after);
	assert_string_equal(before, after);
	free(ok_in(dir, "verify"));
	r = tu_sh(NULL, "ls -d '%s'/sluice/incoming-* 2>/dev/null | wc -l", dir);
	assert_int_equal(atoi(r.out), 1);
	tu_run_dispose(&r);

	free(ok_in(dir, "pull origin --retries 20"));
	r = tu_sh(NULL, "ls -d '%s'/sluice/incoming-* 2>/dev/null | wc -l", dir);
	assert_int_equal(atoi(r.out), 0);
	tu_run_dispose(&r);
	git_head(dir, "refs/sluice/journal", after);
	git_head(repo, "refs/sluice/journal", before);
	assert_string_equal(before, after);
	free(ok_in(dir, "verify"));
	{
		char co[4400];
		snprintf(co, sizeof(co), "%s/co-killed", work);
		free(ok_in(dir, "checkout %s '%s'", v4, co));
		tu_sh_ok(NULL, "diff -r '%s/base' '%s/in/v4'", co, work);
	}
}

/* With the chunk store unreachable, push fails before any ref moves. */
static void test_remote__store_down_moves_no_ref(void **state)
{
	char there[65], there2[65], dead[4300];
	tu_run_result r;
	(void)state;

	snprintf(dead, sizeof(dead), "%s/dead.git", gitbase);
	tu_sh_ok(NULL, "git init -q --bare '%s'", dead);
	free(ok_in(repo, "remote add dead '%s' --chunks http://127.0.0.1:%d/store", dead,
	           tu_free_port()));
	tu_tree_digest(dead, there);
	r = tu_sh(env, "%s -C '%s' push dead --retries 1", TU_SLUICE, repo);
	assert_int_equal(r.status, 5);
	assert_non_null(strstr(r.err, "after 2 attempts"));
	tu_run_dispose(&r);
	tu_tree_digest(dead, there2);
	assert_string_equal(there, there2);
	r = tu_sh(NULL, "git --git-dir='%s' rev-parse --verify -q refs/sluice/journal", dead);
	assert_int_not_equal(r.status, 0);
	tu_run_dispose(&r);
}

/* A journal entry nobody registered signed (here: a plain git commit) is refused on pull. */
static void test_remote__unsigned_entry_refused(void **state)
{
	char forged[4300], before[65], after[65], head[41];
	tu_run_result r;
	(void)state;

	snprintf(forged, sizeof(forged), "%s/forged.git", gitbase);
	git_head(repo, "refs/sluice/journal", head);
	/* The origin's journal plus one entry made with stock git: same tree, no signature. */
	tu_sh_ok(NULL,
	         "git init -q --bare '%s' && git --git-dir='%s' push -q '%s' "
	         "refs/sluice/journal:refs/sluice/journal && "
	         "c=$(git --git-dir='%s' -c user.name=x -c user.email=x@x commit-tree -p %s -m "
	         "forged "
	         "%s^{tree}) && git --git-dir='%s' update-ref refs/sluice/journal $c",
	         forged, repo, forged, forged, head, head, forged);
	free(ok_in(clone_path, "remote add forged '%s' --chunks %s", forged, store_url));
	/* The clone is behind the origin too: every new entry is checked, the forged one fails. */
	tu_tree_digest(clone_path, before);
	r = tu_sh(env, "%s -C '%s' pull forged", TU_SLUICE, clone_path);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "forged"));
	assert_non_null(strstr(r.err, "not signed"));
	assert_non_null(strstr(r.err, "nothing was changed"));
	tu_run_dispose(&r);
	tu_tree_digest(clone_path, after);
	assert_string_equal(before, after);
}

static void test_remote__bad_input_refused(void **state)
{
	(void)state;

	tu_refused(env, repo, 4, "not a valid remote name", "remote add 'a b' /nowhere");
	tu_refused(env, repo, 4, "not http:// or https://",
	           "remote add x /nowhere --chunks ftp://h/");
	tu_refused(env, repo, 4, "user information",
	           "remote add x /nowhere --chunks http://u:p@h/");
	tu_refused(env, repo, 4, "exists", "remote add origin /nowhere");
	tu_refused(env, repo, 4, "no remote 'nope'", "push nope");
	tu_refused(env, repo, 4, "no remote 'nope'", "pull nope");
	tu_refused(env, repo, 3, "NAME", "push");
	free(ok_in(repo, "remote remove bypath"));
	tu_refused(env, repo, 4, "no remote 'bypath'", "remote remove bypath");
	tu_sh_ok(NULL, "%s help push | grep -q 'chunks its store lacks'", TU_SLUICE);
	tu_sh_ok(NULL, "%s help remote | grep -q 'remote add NAME URL'", TU_SLUICE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_remote__push_then_clone_agrees),
	        cmocka_unit_test(test_remote__second_push_sends_only_new_chunks),
	        cmocka_unit_test(test_remote__corrupt_chunk_refused),
	        cmocka_unit_test(test_remote__diverged_journal_refused),
	        cmocka_unit_test(test_remote__recheck_repairs_store),
	        cmocka_unit_test(test_remote__retries_through_503),
	        cmocka_unit_test(test_remote__store_down_moves_no_ref),
	        cmocka_unit_test(test_remote__killed_pull_changes_nothing),
	        cmocka_unit_test(test_remote__unsigned_entry_refused),
	        cmocka_unit_test(test_remote__bad_input_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
