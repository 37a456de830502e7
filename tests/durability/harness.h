/*
 * tests/durability/harness.h - what the durability tests share: a prepared
 * repository (a base and three memory versions, channel prod holding base
 * then v1), running sluice with the LD_PRELOAD shim (shim.c), and the
 * invariants checked after every crash or fault.
 *
 * Header-only (static functions) because each test_*.c is its own program.
 */
#ifndef SLUICE_DURABILITY_HARNESS_H
#define SLUICE_DURABILITY_HARNESS_H

#include "sluice/common.h"
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SLUICE_SHIM
#error "tests/durability/CMakeLists.txt passes the shim's path as SLUICE_SHIM"
#endif

typedef struct {
	char *work;
	char keys_env[4200];
	char pristine[4096]; /* the prepared repository, never modified by trials */
	char repo[4096];     /* the current trial's copy */
	char in[4096];       /* inputs: base/, base2/, notes */
	char v[4][41];       /* base, v1, v2, v3: each the parent of the next */
} dh_fixture;

/* What a channel and the journal look like at one moment. */
typedef struct {
	char head[41]; /* prod's head, "" if none */
	long entries;  /* journal entries */
	char journal[41];
} dh_state;

static inline void dh_last_line(char out[41], const char *text)
{
	const char *end = text + strlen(text), *p;

	while (end > text && end[-1] == '\n')
		end--;
	p = end;
	while (p > text && p[-1] != '\n')
		p--;
	if (end - p != 40)
		fprintf(stderr, "expected a version id on the last line of:\n%s\n", text);
	assert_int_equal(end - p, 40);
	memcpy(out, p, 40);
	out[40] = '\0';
}

/* Environment for plain sluice runs. */
static inline const char *const *dh_env(dh_fixture *f)
{
	static const char *env[3];

	env[0] = f->keys_env;
	env[1] = "SLUICE_KEY=";
	env[2] = NULL;
	return env;
}

/*
 * Environment for a run under the shim: setting is "SLUICE_SHIM_KILL=N",
 * "SLUICE_SHIM_FAIL=OP:N" or "SLUICE_SHIM_LOG=FILE". Under ASan the shim
 * comes before the sanitizer runtime, which ASan must be told is fine.
 */
static inline const char *const *dh_shim_env(dh_fixture *f, const char *setting)
{
	static char asan[1024];
	static const char *env[6];
	const char *old = getenv("ASAN_OPTIONS");

	snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0", old ? old : "",
	         old && *old ? ":" : "");
	env[0] = f->keys_env;
	env[1] = "SLUICE_KEY=";
	env[2] = "LD_PRELOAD=" SLUICE_SHIM;
	env[3] = asan;
	env[4] = setting;
	env[5] = NULL;
	return env;
}

static inline tu_run_result dh_sl(dh_fixture *f, const char *args)
{
	return tu_sh(dh_env(f), "%s -C '%s' %s", TU_SLUICE, f->repo, args);
}

static inline void dh_sl_ok(dh_fixture *f, const char *args)
{
	tu_sh_ok(dh_env(f), "%s -C '%s' %s", TU_SLUICE, f->repo, args);
}

/* A version id from a propose's last line. */
static inline void dh_propose(dh_fixture *f, char out[41], const char *args)
{
	tu_run_result r = dh_sl(f, args);

	if (r.status != 0)
		fprintf(stderr, "propose %s: %s%s", args, r.out, r.err);
	assert_int_equal(r.status, 0);
	dh_last_line(out, r.out);
	tu_run_dispose(&r);
}

static inline dh_fixture *dh_setup(const char *tag)
{
	dh_fixture *f = calloc(1, sizeof(*f));
	char args[8192];

	assert_non_null(f);
	f->work = tu_mkdtemp(tag);
	snprintf(f->keys_env, sizeof(f->keys_env), "SLUICE_KEYS=%s/keys", f->work);
	snprintf(f->pristine, sizeof(f->pristine), "%s/pristine", f->work);
	snprintf(f->repo, sizeof(f->repo), "%s", f->pristine);
	snprintf(f->in, sizeof(f->in), "%s/in", f->work);
	tu_sh_ok(NULL,
	         "%s model '%s/base' --hidden 32 --inter 64 --layers 2 --vocab 64 --dtype bf16 && "
	         "%s model '%s/base2' --hidden 32 --inter 64 --layers 3 --vocab 64 --dtype bf16 && "
	         "printf 'one\\n' > '%s/n1.md' && printf 'two\\n' > '%s/n2.md' && "
	         "printf 'three\\n' > '%s/n3.md' && printf 'four\\n' > '%s/n4.md'",
	         SLUICE_SYNTH, f->in, SLUICE_SYNTH, f->in, f->in, f->in, f->in, f->in);
	tu_sh_ok(dh_env(f), "%s init '%s' --root-key root --required-gates none", TU_SLUICE,
	         f->pristine);
	dh_sl_ok(f, "key new alice --role proposer --role operator");
	snprintf(args, sizeof(args), "propose base '%s/base' --key alice -m base", f->in);
	dh_propose(f, f->v[0], args);
	snprintf(args, sizeof(args), "propose memory --onto %s --add '%s/n1.md' --key alice -m v1",
	         f->v[0], f->in);
	dh_propose(f, f->v[1], args);
	snprintf(args, sizeof(args),
	         "propose memory --onto %s --replace n1.md '%s/n2.md' --key alice -m v2", f->v[1],
	         f->in);
	dh_propose(f, f->v[2], args);
	snprintf(args, sizeof(args),
	         "propose memory --onto %s --replace n1.md '%s/n3.md' --key alice -m v3", f->v[2],
	         f->in);
	dh_propose(f, f->v[3], args);
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", f->v[0]);
	dh_sl_ok(f, args);
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", f->v[1]);
	dh_sl_ok(f, args);
	return f;
}

static inline void dh_teardown(dh_fixture *f)
{
	if (!f)
		return;
	tu_rmtree(f->work);
	free(f->work);
	free(f);
}

/* A fresh copy of the prepared repository for one trial. */
static inline void dh_fresh(dh_fixture *f, const char *name)
{
	snprintf(f->repo, sizeof(f->repo), "%s/%s", f->work, name);
	tu_sh_ok(NULL, "rm -rf '%s' && cp -a '%s' '%s'", f->repo, f->pristine, f->repo);
}

static inline json_t *dh_json(const char *text, const char *what)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (!v)
		fprintf(stderr, "%s: not JSON (%s):\n%s\n", what, jerr.text, text);
	assert_non_null(v);
	return v;
}

/*
 * The state as sluice reports it (status --json, which first brings the
 * derived journal index up to date) and as the journal itself records it:
 * the two must agree.
 */
static inline void dh_read_state(dh_fixture *f, dh_state *st)
{
	tu_run_result r = dh_sl(f, "status --json");
	json_t *v, *c, *jc;
	const char *head = NULL;
	size_t i;

	if (r.status != 0 || !r.out || !r.out[0])
		fprintf(stderr, "status: %s%s", r.out, r.err);
	assert_int_equal(r.status, 0);
	v = dh_json(r.out, "status --json");
	json_array_foreach(json_object_get(v, "channels"), i,
	                   c) if (!strcmp(json_string_value(json_object_get(c, "name")), "prod"))
	        head = json_string_value(json_object_get(c, "head"));
	snprintf(st->head, sizeof(st->head), "%s", head ? head : "");
	st->entries =
	        (long)json_integer_value(json_object_get(json_object_get(v, "journal"), "entries"));
	snprintf(st->journal, sizeof(st->journal), "%s",
	         json_string_value(json_object_get(json_object_get(v, "journal"), "head")));
	json_decref(v);
	tu_run_dispose(&r);

	r = tu_sh(NULL, "git -C '%s' show refs/sluice/journal:channels.json", f->repo);
	assert_int_equal(r.status, 0);
	v = dh_json(r.out, "channels.json");
	jc = json_object_get(json_object_get(json_object_get(v, "channels"), "prod"), "head");
	assert_string_equal(st->head, json_is_string(jc) ? json_string_value(jc) : "");
	json_decref(v);
	tu_run_dispose(&r);
	r = tu_sh(NULL, "git -C '%s' rev-parse refs/sluice/journal", f->repo);
	assert_int_equal(r.status, 0);
	assert_int_equal(strncmp(r.out, st->journal, 40), 0);
	tu_run_dispose(&r);
}

/*
 * Known problem K1 (see docs/durability.md): a proposal killed while its
 * chunk pack is open leaves an unsealed pack (or an empty one, killed
 * before its header), and verify reports it (and its torn last record) as
 * a problem from then on (reindex does not seal
 * it). Tests that are about other invariants set this to accept exactly
 * that problem, and count it; test_leftovers.c asserts the fix.
 */
static int dh_tolerate_unsealed;
static int dh_unsealed_seen;

/* True if every problem verify printed is about an unsealed pack. */
static inline int only_unsealed(const char *out)
{
	const char *p = out;
	int any = 0;

	while ((p = strstr(p, "problem: ")) != NULL) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char line[1024];

		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1),
		         p);
		if (!strstr(line, "no trailer (unsealed") &&
		    !strstr(line, "incomplete record at") &&
		    !strstr(line, "truncated header (0 bytes"))
			return 0;
		if (!strstr(line, "incomplete record at"))
			any = 1;
		p += n;
	}
	return any;
}

static inline void dh_verify_ok(dh_fixture *f, const char *when)
{
	tu_run_result r = dh_sl(f, "verify");

	if (r.status == 1 && dh_tolerate_unsealed && only_unsealed(r.out)) {
		dh_unsealed_seen++;
		tu_run_dispose(&r);
		return;
	}
	if (r.status != 0)
		fprintf(stderr, "verify failed after %s:\n%s%s", when, r.out, r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

/* The action recorded by the newest journal entry ("propose", "promote", ...). */
static inline void dh_last_action(dh_fixture *f, char *out, size_t cap, char version[41])
{
	tu_run_result r = tu_sh(NULL, "git -C '%s' show refs/sluice/journal:record.json", f->repo);
	json_t *v;

	assert_int_equal(r.status, 0);
	v = dh_json(r.out, "record.json");
	snprintf(out, cap, "%s", json_string_value(json_object_get(v, "action")));
	if (version)
		snprintf(version, 41, "%s",
		         json_is_string(json_object_get(v, "version"))
		                 ? json_string_value(json_object_get(v, "version"))
		                 : "");
	json_decref(v);
	tu_run_dispose(&r);
}

/*
 * The invariants after an action that may have crashed or failed:
 * verify passes; the journal moved by at most one entry; if it moved, the
 * entry is this action and prod's head is the target (target NULL: the
 * head does not move, as for a proposal); if not, nothing changed; and an
 * acknowledged action (exit 0) always moved it. Returns 1 if it moved.
 */
static inline int dh_check_after(dh_fixture *f, const dh_state *before, const char *action,
                                 const char *target, int exit_status, const char *when)
{
	dh_state after;
	char last[64];

	dh_verify_ok(f, when);
	dh_read_state(f, &after);
	assert_true(after.entries == before->entries || after.entries == before->entries + 1);
	if (after.entries == before->entries) {
		if (exit_status == 0)
			fprintf(stderr, "%s: acknowledged, but the journal did not move\n", when);
		assert_int_not_equal(exit_status, 0);
		assert_string_equal(after.journal, before->journal);
		assert_string_equal(after.head, before->head);
		return 0;
	}
	dh_last_action(f, last, sizeof(last), NULL);
	assert_string_equal(last, action);
	assert_string_equal(after.head, target ? target : before->head);
	return 1;
}

#endif
