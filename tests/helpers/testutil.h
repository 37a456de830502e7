/*
 * tests/helpers/testutil.h - helpers shared by the cmocka tests: temporary
 * directories, running the sluice program, and fingerprints of a directory
 * tree so a test can assert that a refused command changed nothing.
 */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

/*
 * A unit test's repository: libsluice initialised, a fresh work directory
 * (tag names it), SLUICE_KEYS pointed at work/keys, a context, and repo =
 * work/repo for the test to create (r is NULL until it does).
 * tu_repo_free frees the repository and the context, removes the work
 * directory and shuts libsluice down.
 */
struct sluice_ctx;
struct sluice_repo;
typedef struct {
	char *work;
	char repo[4096];
	struct sluice_ctx *ctx;
	struct sluice_repo *r;
} tu_repo;
tu_repo *tu_repo_new(const char *tag);
void tu_repo_free(tu_repo *f);

/* A fresh directory under $TMPDIR (or /tmp); the caller frees the string. */
char *tu_mkdtemp(const char *tag);
/* rm -rf */
void tu_rmtree(const char *path);
/* Write a file (creating parent directories). */
void tu_write(const char *path, const void *data, size_t len);
/* Read a whole file; NULL if missing. *len receives the size. */
unsigned char *tu_read(const char *path, size_t *len);

/* Result of running a program. */
typedef struct {
	int status; /* exit code, or 128+signal */
	char *out;  /* captured stdout, NUL-terminated */
	char *err;  /* captured stderr, NUL-terminated */
} tu_run_result;

/*
 * Run a shell command line (sh -c) with the given environment additions
 * (NULL-terminated "K=V" list, may be NULL), capturing stdout and stderr.
 */
tu_run_result tu_sh(const char *const *env, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void tu_run_dispose(tu_run_result *r);
/* Run a command line that must succeed (asserts exit 0, prints output if not). */
void tu_sh_ok(const char *const *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A digest over every path, type, mode and content below dir (sorted walk):
 * equal digests mean nothing was added, removed or changed. LMDB's lock file
 * and the reader table are excluded since readers legitimately touch them.
 */
void tu_tree_digest(const char *dir, char out[65]);

/*
 * Run `sluice -C repo ARGS` and assert it is refused: exit code `code`, a
 * stderr containing needle, and the repository byte-for-byte unchanged.
 */
void tu_refused(const char *const *env, const char *repo, int code, const char *needle,
                const char *args);

/*
 * A refusal that is journaled (docs/policies.md): exit code and message as
 * tu_refused, the journal's newest entry a "refuse" naming rule, and every
 * channel's state (channels.json) as it was.
 */
void tu_refused_journaled(const char *const *env, const char *repo, int code, const char *needle,
                          const char *rule, const char *args);

/* The 40-hex id alone on the last line of text (what propose prints); asserts its shape. */
void tu_last_line(char out[41], const char *text);

/*
 * Run `sluice -C repo ARGS` (ARGS from fmt), assert it succeeded (its
 * stderr shown when not) and put the id on its last line in out: a
 * proposal's version id.
 */
void tu_sluice_id(char out[41], const char *const *env, const char *repo, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* The sluice program under test. */
#define TU_SLUICE SLUICE_BINARY

/*
 * Run `sluice -C repo ARGS` (ARGS formatted from fmt and ap) and assert it
 * exits 0 (printing its output when not); returns its stdout (free it).
 */
char *tu_sluice_okv(const char *const *env, const char *repo, const char *fmt, va_list ap);
/* The same with --json appended; returns the parsed output (json_decref it). */
/*
 * Writes a suite for `sluice suite add`: DIR/NAME.jsonl holding items and the
 * manifest DIR/NAME.json (type, a placeholder description, CC0-1.0).
 */
void tu_write_suite(const char *dir, const char *name, const char *type, const char *items);
/* max |a[i] - b[i]| over n floats; a NaN anywhere gives +inf, so it fails any bound. */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* f (finite) rounded to bf16, nearest even, as torch's .to(torch.bfloat16): its 16 bits. */
uint16_t tu_bf16_bits(float f);
/* The element of JSON array arr whose "name" is name; fails the test if none is. */
json_t *tu_json_named(json_t *arr, const char *name);
json_t *tu_sluice_jsonv(const char *const *env, const char *repo, const char *fmt, va_list ap);

/* The test server program (tools/testserver.c, docs/testserver.md). */
#define TU_TESTSERVER SLUICE_TESTSERVER

/* A running sluice-testserver. */
typedef struct {
	int pid;      /* the server's process id */
	int port;     /* its port on 127.0.0.1 */
	char url[64]; /* "http://127.0.0.1:PORT" */
	char *dir; /* temporary directory: the port file and server.log (its stdout and stderr) */
} tu_testserver;

/*
 * Start `sluice-testserver --model model_dir --port 0 --port-file F
 * extra_args...` (extra_args NULL-terminated, may be NULL) and wait up to
 * 30 s for the port file; fails the test (printing server.log) if the
 * server exits first or the time runs out. The server gets SIGTERM if the
 * test process dies, so a failed test leaves none behind.
 */
void tu_testserver_start(const char *model_dir, const char *const *extra_args, tu_testserver *out);
/*
 * SIGTERM the server and wait for it (SIGKILL after 10 s). Returns its exit
 * code (0: it shut down cleanly; 128+signal when killed) and removes
 * ts->dir. Safe to call on a zeroed or already-stopped ts (returns -1).
 */
int tu_testserver_stop(tu_testserver *ts);

/* ---- child servers on loopback ------------------------------------------------ */

#include <sys/types.h>

/* A port nobody listens on now (another process may take it first: see below). */
int tu_free_port(void);
/*
 * Start a server on a free loopback port and return the port: start(port,
 * arg) spawns it and returns its pid (in *pid). The port is the server's
 * only when the socket listening there is held by that process or a child
 * of it: another test running in parallel may take a port between
 * tu_free_port's probe and the server's bind, and a bare connect would
 * then reach that test's server. The server is then stopped and another
 * port tried, five times before the test fails.
 */
int tu_serve_on_free_port(pid_t (*start)(int port, void *arg), void *arg, pid_t *pid,
                          const char *what);
/*
 * git daemon serving the repositories under base (git://127.0.0.1:PORT/NAME),
 * pushes allowed, its output in logdir/git-daemon.log: the port returned,
 * the process in *pid (stop it with tu_proc_stop).
 */
int tu_git_daemon_start(const char *base, const char *logdir, pid_t *pid);
/* Start argv as a child (stdout and stderr to log) that dies with the test process. */
pid_t tu_spawn(char *const argv[], const char *log);
/* SIGTERM a child and reap it; *pid becomes -1 (nothing when already <= 0). */
void tu_proc_stop(pid_t *pid);

/*
 * nginx serving dir/www over HTTP with WebDAV PUT/DELETE/MKCOL at url
 * (http://127.0.0.1:PORT), its access log at access_log; /limited/ answers
 * 503 to more than 20 requests a second. Stop it with tu_proc_stop(&pid).
 */
typedef struct {
	pid_t pid;
	int port;
	char url[64];
	char root[4200];
	char access_log[4200];
} tu_nginx;
void tu_nginx_start(tu_nginx *out, const char *dir);
/*
 * The same server with extra text (more location blocks, say) inside its
 * server block; dir is its prefix, so files the text names (an htpasswd)
 * can be written there before.
 */
void tu_nginx_start_with(tu_nginx *out, const char *dir, const char *extra);

#endif
