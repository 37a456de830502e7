/*
 * tests/hooks/hooktest.h - what the hook tests share: a repository with a
 * few versions, running sluice, and real receivers on loopback (the
 * Python webhook receiver beside this file).
 */
#ifndef SLUICE_TESTS_HOOKTEST_H
#define SLUICE_TESTS_HOOKTEST_H

#include "repo.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HT_PYTHON "/usr/bin/python3"
#define HT_RECEIVER SLUICE_SOURCE_DIR "/tests/hooks/webhook_receiver.py"

typedef struct {
	char *work;
	char repo[4096];
	char keysenv[4300];
	const char *env_ops[3];
	const char *env_alice[3];
	char base[41], a1[41], a2[41], notes[41];
} ht_fixture;

static inline tu_run_result ht_run(ht_fixture *f, const char *const *env, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static inline tu_run_result ht_run(ht_fixture *f, const char *const *env, const char *fmt, ...)
{
	char args[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return tu_sh(env, "%s -C '%s' %s", TU_SLUICE, f->repo, args);
}

static inline void ht_ok(tu_run_result *r)
{
	if (r->status != 0)
		fprintf(stderr, "stdout: %s\nstderr: %s\n", r->out, r->err);
	assert_int_equal(r->status, 0);
}

/* Run sluice, require exit 0, and return its --json output parsed. */
static inline json_t *ht_json(ht_fixture *f, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static inline json_t *ht_json(ht_fixture *f, const char *fmt, ...)
{
	va_list ap;
	json_t *v;

	va_start(ap, fmt);
	v = tu_sluice_jsonv(f->env_ops, f->repo, fmt, ap);
	va_end(ap);
	return v;
}

static inline void ht_propose(ht_fixture *f, char out[41], const char *args)
{
	tu_run_result r = ht_run(f, f->env_alice, "propose %s", args);
	ht_ok(&r);
	tu_last_line(out, r.out);
	tu_run_dispose(&r);
}

static inline ht_fixture *ht_setup(const char *tag)
{
	ht_fixture *f = calloc(1, sizeof(*f));
	char args[8192];
	tu_run_result r;

	f->work = tu_mkdtemp(tag);
	snprintf(f->keysenv, sizeof(f->keysenv), "SLUICE_KEYS=%s/keys", f->work);
	f->env_ops[0] = f->keysenv;
	f->env_ops[1] = "SLUICE_KEY=ops";
	f->env_alice[0] = f->keysenv;
	f->env_alice[1] = "SLUICE_KEY=alice";
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->work);
	tu_sh_ok(NULL,
	         "%s model '%s/in/base' --hidden 32 --inter 64 --layers 2 --vocab 64 && "
	         "for i in 1 2; do %s lora '%s/in/a'$i --base '%s/in/base' --seed $i; done && "
	         "printf 'Always answer in French.\\n' > '%s/in/note.txt'",
	         SLUICE_SYNTH, f->work, SLUICE_SYNTH, f->work, f->work, f->work);
	r = ht_run(f, f->env_ops, "init --required-gates none");
	ht_ok(&r);
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops, "key new alice --role proposer");
	ht_ok(&r);
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops, "key new ops --role operator");
	ht_ok(&r);
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops, "key new watcher --role auditor");
	ht_ok(&r);
	tu_run_dispose(&r);
	snprintf(args, sizeof(args), "base '%s/in/base' -m base", f->work);
	ht_propose(f, f->base, args);
	snprintf(args, sizeof(args), "lora '%s/in/a1' --onto %s -m a1", f->work, f->base);
	ht_propose(f, f->a1, args);
	snprintf(args, sizeof(args), "lora '%s/in/a2' --onto %s -m a2", f->work, f->a1);
	ht_propose(f, f->a2, args);
	snprintf(args, sizeof(args), "memory --onto %s --add '%s/in/note.txt' -m note", f->a2,
	         f->work);
	ht_propose(f, f->notes, args);
	tu_sh_ok(NULL, "SLUICE_KEYS='%s/keys' %s key export ops --openssh > '%s/ops.pub'", f->work,
	         TU_SLUICE, f->work);
	return f;
}

static inline void ht_teardown(ht_fixture *f)
{
	if (!f)
		return;
	tu_rmtree(f->work);
	free(f->work);
	free(f);
}

/* Wait (up to ms) for a file to exist; its first line as an integer, or -1. */
static inline long ht_wait_file_int(const char *path, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		size_t len;
		unsigned char *d = tu_read(path, &len);
		if (d && len) {
			long v = strtol((char *)d, NULL, 10);
			free(d);
			return v;
		}
		free(d);
		usleep(20000);
	}
	return -1;
}

/* A running receiver. */
typedef struct {
	pid_t pid;
	long port;
	char log[4200];
	char url[128];
} ht_receiver;

/* Start the Python webhook receiver with extra arguments (NULL-terminated). */
static inline void ht_receiver_start(ht_fixture *f, ht_receiver *rc, const char *tag, ...)
{
	char portfile[4200], pub[4200];
	const char *argv[32];
	int n = 0;
	va_list ap;

	snprintf(portfile, sizeof(portfile), "%s/%s.port", f->work, tag);
	snprintf(rc->log, sizeof(rc->log), "%s/%s.log", f->work, tag);
	snprintf(pub, sizeof(pub), "%s/ops.pub", f->work);
	unlink(portfile);
	argv[n++] = HT_PYTHON;
	argv[n++] = HT_RECEIVER;
	argv[n++] = "--pubkey";
	argv[n++] = pub;
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--log";
	argv[n++] = rc->log;
	va_start(ap, tag);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 30;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	rc->pid = fork();
	assert_true(rc->pid >= 0);
	if (rc->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		/*
		 * It dies with the test: a test that fails before stopping it
		 * would otherwise leave it holding ctest's pipe (ctest then
		 * waits for it, not for the test).
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(devnull, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	rc->port = ht_wait_file_int(portfile, 20000);
	assert_true(rc->port > 0);
	snprintf(rc->url, sizeof(rc->url), "http://127.0.0.1:%ld/hook", rc->port);
}

static inline void ht_receiver_stop(ht_receiver *rc)
{
	if (rc->pid > 0) {
		kill(rc->pid, SIGKILL);
		waitpid(rc->pid, NULL, 0);
		rc->pid = 0;
	}
}

/* The receiver's log: every request it recorded, in order. */
static inline json_t *ht_receiver_log(const ht_receiver *rc)
{
	json_t *arr = json_array();
	size_t len;
	unsigned char *d = tu_read(rc->log, &len);
	char *save = NULL;

	if (!d)
		return arr;
	d = realloc(d, len + 1);
	d[len] = 0;
	for (char *line = strtok_r((char *)d, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t jerr;
		json_t *v = json_loads(line, 0, &jerr);
		assert_non_null(v);
		json_array_append_new(arr, v);
	}
	free(d);
	return arr;
}

/* The log's events of one kind. */
static inline json_t *ht_events(const ht_receiver *rc, const char *event)
{
	json_t *all = ht_receiver_log(rc), *out = json_array(), *e;
	size_t i;

	json_array_foreach(all, i, e) if (!strcmp(json_string_value(json_object_get(e, "event")),
	                                          event)) json_array_append(out, e);
	json_decref(all);
	return out;
}

/*
 * The records of the journal's hook entries, oldest first: the entries
 * `sluice audit log --action hook` lists, each read from the journal.
 */
static inline json_t *ht_hook_records(ht_fixture *f)
{
	json_t *list = ht_json(f, "audit log --action hook"), *out = json_array(), *e;
	sluice_ctx *ctx = NULL;
	sluice_repo *repo = NULL;
	size_t i;

	assert_true(json_is_array(list));
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&repo, ctx, f->repo), 0);
	json_array_foreach(list, i, e)
	{
		json_t *rec = NULL;
		git_oid id;
		assert_int_equal(
		        git_oid_fromstr(&id, json_string_value(json_object_get(e, "entry"))), 0);
		assert_int_equal(sluice_journal__record(repo, &rec, &id), 0);
		assert_string_equal(json_string_value(json_object_get(rec, "action")), "hook");
		json_array_append_new(out, rec);
	}
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	json_decref(list);
	return out;
}

/* A channel's element of sluice status --json. */
static inline json_t *ht_status_channel(ht_fixture *f, const char *name)
{
	json_t *v = ht_json(f, "status"), *c, *out = NULL;
	size_t i;

	json_array_foreach(json_object_get(v, "channels"), i,
	                   c) if (!strcmp(json_string_value(json_object_get(c, "name")), name))
	        out = json_incref(c);
	json_decref(v);
	return out;
}

#endif
