/*
 * bench/rollback.c - how long a durable channel rollback takes, measured
 * beside the floor it stands on, in the same run and on the same
 * filesystem: a bare durable git ref update (libgit2 in-process with
 * GIT_OPT_ENABLE_FSYNC_GITDIR, and `git update-ref` with core.fsync) and a
 * single durable LMDB commit (default sync flags).
 *
 * usage: rollback WORKDIR MODELDIR SLUICE GIT [--versions N] [--moves N]
 *                 [--cli-moves N]
 *        rollback --rollbacks-only WORKDIR N
 *
 * The second form opens the repository a first run left in WORKDIR and
 * only rolls prod back N times (a rollback right after a rollback returns
 * to the version the first one withdrew), for a profiler to watch.
 *
 * Setup (untimed) builds a repository under WORKDIR/repo holding N
 * versions: a base (MODELDIR), a chain of memory proposals on it, and on
 * the chain's tip one candidate per promotion to come (each adds its own
 * note). Channel prod is put on the tip. Then the moves alternate: promote
 * a fresh candidate (a child of the head), roll back (to the tip, which
 * withdraws the candidate). Every rollback is the same default rollback;
 * only the channel's history grows, as it would in life (the versions it
 * held and had withdrawn: kept in every journal entry's channels.json up to
 * format 1, in the journal index since format 2).
 * In-process moves use libsluice's public API; CLI moves spawn SLUICE.
 *
 * Only the public headers (include/sluice/) of libsluice; libgit2 and
 * LMDB are used directly for the peers.
 */
#include "sluice/channel.h"
#include "sluice/keys.h"
#include "sluice/repo.h"
#include "sluice/version.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <lmdb.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PATHLEN 4096

typedef struct {
	const char *name;
	double *ms;
	size_t n, cap;
} series;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "rollback bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static void check_sluice(int error, sluice_ctx *ctx, const char *what)
{
	if (error < 0)
		die(what, sluice_ctx_errmsg(ctx));
}

static void check_git(int error, const char *what)
{
	if (error < 0) {
		const git_error *e = git_error_last();
		die(what, e && e->message ? e->message : "libgit2 error");
	}
}

static double clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

static void series_add(series *s, double ms)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		if (!(s->ms = realloc(s->ms, s->cap * sizeof(*s->ms))))
			die("out of memory", NULL);
	}
	s->ms[s->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array: the smallest value >= p% of samples. */
static double pct(const double *sorted, size_t n, double p)
{
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

typedef struct {
	double p50, p99, mean, min, max;
} stats;

static stats summarize(const double *ms, size_t n)
{
	stats st = {0};
	double *s;
	double sum = 0;

	if (n == 0)
		return st;
	if (!(s = malloc(n * sizeof(*s))))
		die("out of memory", NULL);
	memcpy(s, ms, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += s[i];
	st.p50 = pct(s, n, 50);
	st.p99 = pct(s, n, 99);
	st.mean = sum / (double)n;
	st.min = s[0];
	st.max = s[n - 1];
	free(s);
	return st;
}

static void print_row(const series *s)
{
	stats st = summarize(s->ms, s->n);

	printf("%-44s %6zu %9.3f %9.3f %9.3f %9.3f %9.3f\n", s->name, s->n, st.p50, st.p99, st.mean,
	       st.min, st.max);
}

/* Run argv to completion with its output discarded; returns wall ms. */
static double run_timed(char *const argv[], int *status)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	double t0, t1;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	t0 = now_ms();
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		die("cannot start", argv[0]);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			die("waitpid", strerror(errno));
	t1 = now_ms();
	return t1 - t0;
}

static void run_checked(series *s, char *const argv[])
{
	int status;
	double ms = run_timed(argv, &status);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* Rerun with output visible, so the failure explains itself. */
		pid_t pid;
		if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) == 0)
			waitpid(pid, &status, 0);
		die("command failed", argv[0]);
	}
	if (s)
		series_add(s, ms);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die("cannot write", path);
}

static void propose_note(sluice_repo *repo, sluice_ctx *ctx, const char *workdir, const char *onto,
                         const char *name, char id[41])
{
	char path[PATHLEN], text[256], msg[128];
	sluice_memory_edit edit = {SLUICE_MEMORY_ADD, name, path};
	sluice_propose_opts opts = {0};
	char *report = NULL;

	snprintf(path, sizeof(path), "%s/notes/%s.md", workdir, name);
	snprintf(text, sizeof(text), "Benchmark note %s: remember this fact.\n", name);
	write_file(path, text);
	snprintf(msg, sizeof(msg), "note %s", name);
	opts.onto = onto;
	opts.message = msg;
	opts.key = "alice";
	check_sluice(sluice_propose_memory(repo, id, &opts, &edit, 1, &report), ctx,
	             "propose memory");
	sluice_free(report);
}

/* The libgit2 peer: one compare-and-swap of a loose ref, fsynced with its directory. */
static double lg2_update(git_repository *g, const char *ref, const git_oid *to, const git_oid *from)
{
	git_reference *r = NULL;
	double t0 = now_ms(), t1;

	check_git(git_reference_create_matching(&r, g, ref, to, 1, from, "bench"), ref);
	t1 = now_ms();
	git_reference_free(r);
	return t1 - t0;
}

/* The LMDB peer: one write transaction of one 64-byte value, committed durably. */
static double lmdb_commit(MDB_env *env, MDB_dbi dbi, unsigned i)
{
	unsigned char key[8], val[64];
	MDB_val k = {sizeof(key), key}, v = {sizeof(val), val};
	MDB_txn *txn;
	double t0, t1;
	int rc;

	for (unsigned b = 0; b < 8; b++)
		key[b] = (unsigned char)((i % 1000u) >> (8 * (7 - b)));
	memset(val, (int)(i & 0xff), sizeof(val));
	t0 = now_ms();
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_put(txn, dbi, &k, &v, 0)) != 0 || (rc = mdb_txn_commit(txn)) != 0)
		die("lmdb", mdb_strerror(rc));
	t1 = now_ms();
	return t1 - t0;
}

static unsigned long arg_count(const char *s, const char *opt)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*end || v == 0)
		die("bad count for", opt);
	return v;
}

/* Open WORKDIR/repo again and roll prod back n times; nothing else runs. */
static int rollbacks_only(const char *workdir, unsigned long n)
{
	char path[PATHLEN];
	sluice_ctx *ctx = NULL;
	sluice_repo *repo = NULL;
	series rb = {.name = "sluice rollback, in-process (existing repository)"},
	       cpu = {.name = "  on-CPU time"};

	snprintf(path, sizeof(path), "%s/keys", workdir);
	setenv("SLUICE_KEYS", path, 1);
	snprintf(path, sizeof(path), "%s/repo", workdir);
	if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0)
		die("cannot initialise libsluice", NULL);
	check_sluice(sluice_repo_open(&repo, ctx, path), ctx, "open");
	for (unsigned long i = 0; i < n; i++) {
		char *report = NULL;
		double t0 = now_ms(), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
		check_sluice(sluice_channel_rollback(repo, "prod", NULL, "profiled rollback", "ops",
		                                     &report),
		             ctx, "rollback");
		series_add(&rb, now_ms() - t0);
		series_add(&cpu, clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0);
		sluice_free(report);
	}
	printf("%-44s %6s %9s %9s %9s %9s %9s\n", "milliseconds", "n", "p50", "p99", "mean", "min",
	       "max");
	print_row(&rb);
	print_row(&cpu);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	sluice_global_shutdown();
	free(rb.ms);
	free(cpu.ms);
	return 0;
}

int main(int argc, char **argv)
{
	const char *workdir, *modeldir, *sluice_bin, *git_bin;
	unsigned long nversions = 1000, nmoves = 1000, ncli = 400;
	char path[PATHLEN], repodir[PATHLEN], base[41], tip[41], cli_prev_hex[41];
	char(*cand)[41];
	sluice_ctx *ctx = NULL;
	sluice_repo *repo = NULL;
	char *report = NULL;
	git_repository *g = NULL;
	git_reference *r = NULL;
	git_oid oid_a, oid_b;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	unsigned long nchain, ncand, rounds, cli_rounds, spare;
	int rc;
	series rb = {.name = "sluice rollback, in-process"},
	       pr = {.name = "sluice promote, in-process"},
	       rb_cli = {.name = "sluice rollback, CLI process"},
	       pr_cli = {.name = "sluice promote, CLI process"},
	       ver_cli = {.name = "  sluice --version (process start and exit)"},
	       lg2 = {.name = "git ref CAS, libgit2 in-process (fsync on)"},
	       gitcli = {.name = "git update-ref, CLI (core.fsync=reference)"},
	       lmdb = {.name = "LMDB commit, 64 B put (default sync)"},
	       rb_first = {.name = "  in-process rollback, first 100"},
	       rb_last = {.name = "  in-process rollback, last 100"},
	       rb_cpu = {.name = "  in-process rollback, on-CPU time"},
	       rb_wait = {.name = "  in-process rollback, off-CPU (wall - CPU)"};

	if (argc == 4 && !strcmp(argv[1], "--rollbacks-only"))
		return rollbacks_only(argv[2], arg_count(argv[3], argv[1]));
	if (argc < 5) {
		fprintf(stderr,
		        "usage: %s WORKDIR MODELDIR SLUICE GIT [--versions N] [--moves N] "
		        "[--cli-moves N]\n",
		        argv[0]);
		return 3;
	}
	workdir = argv[1];
	modeldir = argv[2];
	sluice_bin = argv[3];
	git_bin = argv[4];
	for (int i = 5; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--versions"))
			nversions = arg_count(argv[i + 1], argv[i]);
		else if (!strcmp(argv[i], "--moves"))
			nmoves = arg_count(argv[i + 1], argv[i]);
		else if (!strcmp(argv[i], "--cli-moves"))
			ncli = arg_count(argv[i + 1], argv[i]);
		else
			die("unknown option", argv[i]);
	}
	rounds = nmoves / 2;
	cli_rounds = ncli / 2;
	/* One candidate per promotion, and one spare for the traced rollback. */
	ncand = rounds + cli_rounds + 1;
	if (nversions < ncand + 2)
		die("--versions must exceed the promotions to make", NULL);
	nchain = nversions - ncand; /* base included */
	if (!(cand = calloc(ncand, sizeof(*cand))))
		die("out of memory", NULL);

	snprintf(path, sizeof(path), "%s/keys", workdir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		die("cannot create", path);
	setenv("SLUICE_KEYS", path, 1); /* the spawned CLI inherits it */
	snprintf(path, sizeof(path), "%s/notes", workdir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("cannot create", path);
	snprintf(repodir, sizeof(repodir), "%s/repo", workdir);

	if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0)
		die("cannot initialise libsluice", NULL);
	/* sluice_global_init already sets it; set here too so the peer's contract is visible. */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);

	/* ---- setup, untimed ---- */
	{
		const char *roots[] = {"root"}, *prop[] = {"proposer"}, *oper[] = {"operator"};
		sluice_propose_opts opts = {0};
		/* Channel mechanics only: no gates, so moves need no verdicts. */
		sluice_init_opts nogates = {1, NULL, 0, NULL, NULL, 0};
		double t0 = now_ms();

		check_sluice(sluice_repo_init(&repo, ctx, repodir, roots, 1, &nogates, NULL), ctx,
		             "init");
		check_sluice(sluice_key_new(repo, "alice", prop, 1, NULL, NULL, &report), ctx,
		             "key alice");
		sluice_free(report);
		check_sluice(sluice_key_new(repo, "ops", oper, 1, NULL, NULL, &report), ctx,
		             "key ops");
		sluice_free(report);
		opts.message = "base model";
		opts.key = "alice";
		check_sluice(sluice_propose_base(repo, base, &opts, modeldir, &report), ctx,
		             "propose base");
		sluice_free(report);
		memcpy(tip, base, sizeof(tip));
		for (unsigned long i = 1; i < nchain; i++) {
			char name[32], id[41];
			snprintf(name, sizeof(name), "chain-%04lu", i);
			propose_note(repo, ctx, workdir, tip, name, id);
			memcpy(tip, id, sizeof(tip));
			if (i % 100 == 0)
				fprintf(stderr, "setup: %lu/%lu versions\n", i + 1, nversions);
		}
		for (unsigned long j = 0; j < ncand; j++) {
			char name[32];
			snprintf(name, sizeof(name), "cand-%04lu", j);
			propose_note(repo, ctx, workdir, tip, name, cand[j]);
			if ((nchain + j + 1) % 100 == 0)
				fprintf(stderr, "setup: %lu/%lu versions\n", nchain + j + 1,
				        nversions);
		}
		check_sluice(sluice_channel_promote(repo, tip, "prod", "ops", NULL, &report), ctx,
		             "first promote");
		sluice_free(report);
		fprintf(stderr,
		        "setup: %lu versions (chain of %lu from the base, %lu candidates "
		        "on its tip) in %.1f s\n",
		        nversions, nchain, ncand, (now_ms() - t0) / 1e3);
	}

	/* ---- peers: refs in the same repository, an LMDB env beside it ---- */
	check_git(git_repository_open(&g, repodir), "open repo with libgit2");
	check_git(git_oid_fromstr(&oid_a, tip), "tip id");
	check_git(git_oid_fromstr(&oid_b, base), "base id");
	check_git(git_reference_create(&r, g, "refs/bench/libgit2", &oid_a, 1, "bench"),
	          "bench ref");
	git_reference_free(r);
	check_git(git_reference_create(&r, g, "refs/bench/gitcli", &oid_a, 1, "bench"),
	          "bench ref");
	git_reference_free(r);
	snprintf(path, sizeof(path), "%s/lmdb", workdir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("cannot create", path);
	if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_open(env, path, 0, 0644)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0)
		die("lmdb setup", mdb_strerror(rc));

	/*
	 * ---- in-process moves, interleaved with the peers so that drift in
	 * the disk's behaviour touches every series alike ----
	 */
	{
		char gitdir_opt[PATHLEN];
		char *gitargv[] = {(char *)git_bin,
		                   "--git-dir",
		                   gitdir_opt,
		                   "-c",
		                   "core.fsync=reference",
		                   "-c",
		                   "core.fsyncMethod=fsync",
		                   "update-ref",
		                   "refs/bench/gitcli",
		                   NULL,
		                   NULL,
		                   NULL};
		char hex_a[41], hex_b[41];
		unsigned k = 0;

		snprintf(gitdir_opt, sizeof(gitdir_opt), "%s", repodir);
		git_oid_tostr(hex_a, sizeof(hex_a), &oid_a);
		git_oid_tostr(hex_b, sizeof(hex_b), &oid_b);
		for (unsigned long i = 0; i < rounds; i++) {
			double t0, c0;
			t0 = now_ms();
			check_sluice(
			        sluice_channel_promote(repo, cand[i], "prod", "ops", NULL, &report),
			        ctx, "promote");
			series_add(&pr, now_ms() - t0);
			sluice_free(report);
			/* Thread CPU time: what is left of the wall time is waiting, mostly on
			 * fsync. */
			c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
			t0 = now_ms();
			check_sluice(sluice_channel_rollback(repo, "prod", NULL, "bench rollback",
			                                     "ops", &report),
			             ctx, "rollback");
			series_add(&rb, now_ms() - t0);
			series_add(&rb_cpu, clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0);
			series_add(&rb_wait, rb.ms[rb.n - 1] - rb_cpu.ms[rb_cpu.n - 1]);
			sluice_free(report);
			for (int rep = 0; rep < 2; rep++, k++) {
				int fwd = (k % 2) == 0;
				series_add(&lg2, lg2_update(g, "refs/bench/libgit2",
				                            fwd ? &oid_b : &oid_a,
				                            fwd ? &oid_a : &oid_b));
				series_add(&lmdb, lmdb_commit(env, dbi, k));
				gitargv[9] = fwd ? hex_b : hex_a;
				gitargv[10] = fwd ? hex_a : hex_b;
				run_checked(&gitcli, gitargv);
			}
			if ((i + 1) % 100 == 0)
				fprintf(stderr, "in-process: %lu/%lu moves\n", 2 * (i + 1),
				        2 * rounds);
		}
	}

	/* ---- CLI moves: one sluice process per move ---- */
	sluice_repo_free(repo);
	repo = NULL;
	for (unsigned long i = 0; i < cli_rounds; i++) {
		char *pargv[] = {(char *)sluice_bin, "-C",   repodir, "promote", cand[rounds + i],
		                 "--channel",        "prod", "--key", "ops",     NULL};
		char *rargv[] = {
		        (char *)sluice_bin, "-C",    repodir, "rollback", "prod", "--reason",
		        "bench rollback",   "--key", "ops",   NULL};
		char *vargv[] = {(char *)sluice_bin, "--version", NULL};
		run_checked(&pr_cli, pargv);
		run_checked(&rb_cli, rargv);
		/* What any command costs before it does anything: the CLI's floor. */
		run_checked(&ver_cli, vargv);
		if ((i + 1) % 50 == 0)
			fprintf(stderr, "CLI: %lu/%lu moves\n", 2 * (i + 1), 2 * cli_rounds);
	}
	spare = ncand - 1;
	snprintf(cli_prev_hex, sizeof(cli_prev_hex), "%s", cand[spare]);

	/* ---- report ---- */
	{
		struct utsname u;
		stats s_rb = summarize(rb.ms, rb.n), s_lg2 = summarize(lg2.ms, lg2.n),
		      s_git = summarize(gitcli.ms, gitcli.n),
		      s_rbc = summarize(rb_cli.ms, rb_cli.n);
		size_t m = rb.n < 100 ? rb.n : 100;

		for (size_t i = 0; i < m; i++) {
			series_add(&rb_first, rb.ms[i]);
			series_add(&rb_last, rb.ms[rb.n - m + i]);
		}
		uname(&u);
		printf("\nrollback bench: %lu versions (%lu-version chain + %lu candidates), "
		       "%lu in-process moves, %lu CLI moves\n",
		       nversions, nchain, ncand, 2 * rounds, 2 * cli_rounds);
		printf("host: %s %s %s, %ld online CPUs; repository: %s\n\n", u.sysname, u.release,
		       u.machine, sysconf(_SC_NPROCESSORS_ONLN), repodir);
		printf("%-44s %6s %9s %9s %9s %9s %9s\n", "milliseconds", "n", "p50", "p99", "mean",
		       "min", "max");
		print_row(&rb);
		print_row(&pr);
		print_row(&rb_first);
		print_row(&rb_last);
		print_row(&rb_cpu);
		print_row(&rb_wait);
		print_row(&rb_cli);
		print_row(&pr_cli);
		print_row(&ver_cli);
		print_row(&lg2);
		print_row(&gitcli);
		print_row(&lmdb);
		printf("\nratio in-process rollback p99 / libgit2 ref CAS p99: %.2fx (goal <= 2x: "
		       "%s)\n",
		       s_rb.p99 / s_lg2.p99, s_rb.p99 <= 2 * s_lg2.p99 ? "met" : "NOT met");
		printf("ratio in-process rollback p99 / git update-ref CLI p99: %.2fx (goal <= 2x: "
		       "%s)\n",
		       s_rb.p99 / s_git.p99, s_rb.p99 <= 2 * s_git.p99 ? "met" : "NOT met");
		printf("ratio CLI rollback p99 / git update-ref CLI p99: %.2fx\n",
		       s_rbc.p99 / s_git.p99);
		printf("ratio in-process rollback p50 / libgit2 ref CAS p50: %.2fx\n",
		       s_rb.p50 / s_lg2.p50);
		printf("spare candidate (for a traced promote+rollback): %s\n", cli_prev_hex);
	}

	git_repository_free(g);
	mdb_env_close(env);
	sluice_ctx_free(ctx);
	sluice_global_shutdown();
	free(cand);
	free(rb.ms);
	free(pr.ms);
	free(rb_cli.ms);
	free(pr_cli.ms);
	free(ver_cli.ms);
	free(lg2.ms);
	free(gitcli.ms);
	free(lmdb.ms);
	free(rb_first.ms);
	free(rb_last.ms);
	free(rb_cpu.ms);
	free(rb_wait.ms);
	return 0;
}
