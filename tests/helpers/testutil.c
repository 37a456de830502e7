/*
 * tests/helpers/testutil.c - see testutil.h.
 */
#include "testutil.h"

#include "sluice/repo.h"

#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *tu_mkdtemp(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p;
	size_t n;

	if (!base || !*base)
		base = "/tmp";
	n = strlen(base) + strlen(tag) + 32;
	p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/sluice-%s-XXXXXX", base, tag);
	assert_non_null(mkdtemp(p));
	return p;
}

void tu_rmtree(const char *path)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", path);
}

static void mkparents(const char *path)
{
	char buf[4096];
	char *p;

	/* A path cut short would make the wrong directories: a test's path this
	 * long is a bug in the test. */
	if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf)) {
		fprintf(stderr, "tu_write: path longer than %zu bytes: %.64s...\n", sizeof(buf),
		        path);
		abort();
	}
	for (p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
}

void tu_write(const char *path, const void *data, size_t len)
{
	FILE *f;

	mkparents(path);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

unsigned char *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static char *slurp_fd(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

static tu_run_result vsh(const char *const *env, const char *fmt, va_list ap);

tu_run_result tu_sh(const char *const *env, const char *fmt, ...)
{
	tu_run_result r;
	va_list ap;

	va_start(ap, fmt);
	r = vsh(env, fmt, ap);
	va_end(ap);
	return r;
}

void tu_sh_ok(const char *const *env, const char *fmt, ...)
{
	tu_run_result r;
	va_list ap;

	va_start(ap, fmt);
	r = vsh(env, fmt, ap);
	va_end(ap);
	if (r.status != 0)
		fprintf(stderr, "command failed (%d):\nstdout: %s\nstderr: %s\n", r.status, r.out,
		        r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

static tu_run_result vsh(const char *const *env, const char *fmt, va_list ap)
{
	tu_run_result r = {0};
	char cmd[16384];
	char outpath[] = "/tmp/sluice-tu-out-XXXXXX";
	char errpath[] = "/tmp/sluice-tu-err-XXXXXX";
	int ofd, efd, status;
	pid_t pid;

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	ofd = mkstemp(outpath);
	efd = mkstemp(errpath);
	assert_true(ofd >= 0 && efd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0);
		dup2(ofd, 1);
		dup2(efd, 2);
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	lseek(ofd, 0, SEEK_SET);
	lseek(efd, 0, SEEK_SET);
	r.out = slurp_fd(ofd);
	r.err = slurp_fd(efd);
	close(ofd);
	close(efd);
	unlink(outpath);
	unlink(errpath);
	return r;
}

void tu_run_dispose(tu_run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void digest_walk(crypto_generichash_state *hs, const char *root, const char *rel)
{
	char path[4096];
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
	if (!(d = opendir(path)))
		return;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		/*
		 * Lock files, not state: LMDB's reader table, and the journal
		 * writers' flock file, whose one line says "idle" once any writer
		 * (a refused one too) has held it.
		 */
		if (!strcmp(de->d_name, "lock.mdb") || !strcmp(de->d_name, "journal.flock"))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			names = realloc(names, cap * sizeof(*names));
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmpstr);
	for (size_t i = 0; i < n; i++) {
		char sub[4096], full[8200];
		struct stat st;

		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", names[i]);
		snprintf(full, sizeof(full), "%s/%s", root, sub);
		if (lstat(full, &st) < 0)
			continue;
		crypto_generichash_update(hs, (const unsigned char *)sub, strlen(sub) + 1);
		crypto_generichash_update(hs, (const unsigned char *)&st.st_mode,
		                          sizeof(st.st_mode));
		if (S_ISDIR(st.st_mode)) {
			digest_walk(hs, root, sub);
		} else if (S_ISREG(st.st_mode)) {
			size_t len;
			unsigned char *data = tu_read(full, &len);
			if (data) {
				crypto_generichash_update(hs, data, len);
				free(data);
			}
		}
		free(names[i]);
	}
	free(names);
}

void tu_tree_digest(const char *dir, char out[65])
{
	crypto_generichash_state st;
	unsigned char h[32];
	static const char digits[] = "0123456789abcdef";

	crypto_generichash_init(&st, NULL, 0, 32);
	digest_walk(&st, dir, "");
	crypto_generichash_final(&st, h, 32);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[64] = '\0';
}

void tu_last_line(char out[41], const char *text)
{
	const char *end = text + strlen(text), *p;

	while (end > text && end[-1] == '\n')
		end--;
	p = end;
	while (p > text && p[-1] != '\n')
		p--;
	assert_int_equal(end - p, 40);
	memcpy(out, p, 40);
	out[40] = '\0';
}

void tu_sluice_id(char out[41], const char *const *env, const char *repo, const char *fmt, ...)
{
	char args[8192];
	tu_run_result r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	r = tu_sh(env, "%s -C '%s' %s", TU_SLUICE, repo, args);
	if (r.status)
		fprintf(stderr, "%s", r.err);
	assert_int_equal(r.status, 0);
	tu_last_line(out, r.out);
	tu_run_dispose(&r);
}

/* Run `sluice -C repo args`, asserting exit code and a stderr holding needle. */
static tu_run_result run_refused(const char *const *env, const char *repo, int code,
                                 const char *needle, const char *args)
{
	tu_run_result r = tu_sh(env, "%s -C '%s' %s", TU_SLUICE, repo, args);

	if (r.status != code || !strstr(r.err, needle))
		fprintf(stderr,
		        "command: %s\nstatus %d (wanted %d)\nstdout: %s\nstderr: %s\nwanted: %s\n",
		        args, r.status, code, r.out, r.err, needle);
	assert_int_equal(r.status, code);
	assert_non_null(strstr(r.err, needle));
	return r;
}

void tu_refused(const char *const *env, const char *repo, int code, const char *needle,
                const char *args)
{
	char before[65], after[65];
	tu_run_result r;

	tu_tree_digest(repo, before);
	r = run_refused(env, repo, code, needle, args);
	tu_run_dispose(&r);
	tu_tree_digest(repo, after);
	assert_string_equal(before, after);
}

void tu_refused_journaled(const char *const *env, const char *repo, int code, const char *needle,
                          const char *rule, const char *args)
{
	tu_run_result before, after, rec, r;
	char want[160];

	before = tu_sh(env, "git --git-dir='%s' show refs/sluice/journal:channels.json", repo);
	assert_int_equal(before.status, 0);
	r = run_refused(env, repo, code, needle, args);
	after = tu_sh(env, "git --git-dir='%s' show refs/sluice/journal:channels.json", repo);
	assert_string_equal(before.out, after.out);
	rec = tu_sh(env, "git --git-dir='%s' show refs/sluice/journal:record.json", repo);
	if (!strstr(rec.out, "\"action\": \"refuse\""))
		fprintf(stderr, "newest journal record:\n%s\n", rec.out);
	assert_non_null(strstr(rec.out, "\"action\": \"refuse\""));
	/* A rule ending in '.' names a family ("gates." for any gate rule). */
	snprintf(want, sizeof(want), "\"rule\": \"%s%s", rule,
	         rule[0] && rule[strlen(rule) - 1] == '.' ? "" : "\"");
	if (!strstr(rec.out, want))
		fprintf(stderr, "newest journal record:\n%s\nwanted %s\n", rec.out, want);
	assert_non_null(strstr(rec.out, want));
	tu_run_dispose(&before);
	tu_run_dispose(&after);
	tu_run_dispose(&rec);
	tu_run_dispose(&r);
}

char *tu_sluice_okv(const char *const *env, const char *repo, const char *fmt, va_list ap)
{
	char args[8192], *out;
	tu_run_result r;

	vsnprintf(args, sizeof(args), fmt, ap);
	r = tu_sh(env, "%s -C '%s' %s", TU_SLUICE, repo, args);
	if (r.status)
		fprintf(stderr, "sluice %s\nexit %d\n%s%s", args, r.status, r.out, r.err);
	assert_int_equal(r.status, 0);
	out = strdup(r.out);
	assert_non_null(out);
	tu_run_dispose(&r);
	return out;
}

static char *sluice_ok(const char *const *env, const char *repo, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static char *sluice_ok(const char *const *env, const char *repo, const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = tu_sluice_okv(env, repo, fmt, ap);
	va_end(ap);
	return out;
}

json_t *tu_sluice_jsonv(const char *const *env, const char *repo, const char *fmt, va_list ap)
{
	char args[8192], *o;
	json_error_t jerr;
	json_t *v;

	vsnprintf(args, sizeof(args), fmt, ap);
	o = sluice_ok(env, repo, "%s --json", args);
	v = json_loads(o, 0, &jerr);
	if (!v)
		fprintf(stderr, "not JSON: %s\n", o);
	assert_non_null(v);
	free(o);
	return v;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void print_server_log(const tu_testserver *ts)
{
	char path[4200];
	size_t len;
	unsigned char *log;

	snprintf(path, sizeof(path), "%s/server.log", ts->dir);
	log = tu_read(path, &len);
	fprintf(stderr, "sluice-testserver output:\n%s\n", log ? (char *)log : "(none)");
	free(log);
}

void tu_testserver_start(const char *model_dir, const char *const *extra_args, tu_testserver *out)
{
	char portfile[4200], logpath[4200];
	const char *argv[64];
	size_t argc = 0;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->dir = tu_mkdtemp("testserver");
	snprintf(portfile, sizeof(portfile), "%s/port", out->dir);
	snprintf(logpath, sizeof(logpath), "%s/server.log", out->dir);
	argv[argc++] = TU_TESTSERVER;
	argv[argc++] = "--model";
	argv[argc++] = model_dir;
	argv[argc++] = "--port";
	argv[argc++] = "0";
	argv[argc++] = "--port-file";
	argv[argc++] = portfile;
	for (const char *const *a = extra_args; a && *a; a++) {
		assert_true(argc < sizeof(argv) / sizeof(*argv) - 1);
		argv[argc++] = *a;
	}
	argv[argc] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int devnull = open("/dev/null", O_RDONLY);

		/* Linux: no server outlives a test that crashed or failed an assert. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(devnull, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	out->pid = (int)pid;
	for (unsigned waited = 0;; waited += 20) {
		size_t len;
		unsigned char *text = tu_read(portfile, &len);
		int status;

		if (text) {
			out->port = atoi((char *)text);
			free(text);
			assert_true(out->port > 0 && out->port < 65536);
			snprintf(out->url, sizeof(out->url), "http://127.0.0.1:%d", out->port);
			return;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			out->pid = 0;
			print_server_log(out);
			fail_msg("sluice-testserver exited before it listened (status 0x%x)",
			         status);
		}
		if (waited >= 30000) {
			print_server_log(out);
			tu_testserver_stop(out);
			fail_msg("sluice-testserver wrote no port file in 30 s");
		}
		sleep_ms(20);
	}
}

int tu_testserver_stop(tu_testserver *ts)
{
	int status = 0, code = -1;

	if (ts->pid > 0) {
		pid_t pid = (pid_t)ts->pid;
		unsigned waited = 0;

		kill(pid, SIGTERM);
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (waited >= 10000) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			sleep_ms(20);
			waited += 20;
		}
		code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (code != 0)
			print_server_log(ts);
		ts->pid = 0;
	}
	if (ts->dir) {
		tu_rmtree(ts->dir);
		free(ts->dir);
		ts->dir = NULL;
	}
	return code;
}

/* ---- child servers (nginx, git daemon) --------------------------------------- */

/*
 * A port nobody listens on now. Another process may take it before the
 * caller binds it: servers started on it go through tu_serve_on_free_port,
 * which checks whose the listening socket is.
 */
int tu_free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/*
 * The inode of the TCP socket listening on port (on 127.0.0.1 or on every
 * address), from /proc/net/tcp; 0 when nothing listens there.
 */
static unsigned long listener_inode(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	unsigned long inode = 0;

	if (!f)
		return 0;
	while (!inode && fgets(line, sizeof(line), f)) {
		unsigned addr, lport, st;
		unsigned long ino;
		/* "sl: local rem st tx:rx tr:when retrnsmt uid timeout inode" */
		if (sscanf(line, " %*d: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &addr,
		           &lport, &st, &ino) == 4 &&
		    (int)lport == port && st == 0x0A)
			inode = ino;
	}
	fclose(f);
	return inode;
}

/* pid's parent from /proc/PID/stat; 0 when it cannot be read. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024], *close_paren;
	FILE *f;
	int ppid = 0;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses. */
	if ((close_paren = strrchr(buf, ')')) && sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		ppid = 0;
	return (pid_t)ppid;
}

/*
 * Whether the socket with that inode is held by pid or by one of its
 * descendants (`git daemon` runs git-daemon as a child of git).
 */
static int held_by(pid_t pid, unsigned long inode)
{
	char want[64];
	DIR *proc = opendir("/proc");
	struct dirent *e;
	int found = 0;

	if (!proc)
		return 0;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (!found && (e = readdir(proc))) {
		char dir[300];
		DIR *fds;
		struct dirent *fe;
		pid_t p = (pid_t)atoi(e->d_name);
		int holds = 0;

		if (p <= 0)
			continue;
		snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)p);
		if (!(fds = opendir(dir)))
			continue; /* gone, or another user's */
		while (!holds && (fe = readdir(fds))) {
			char link[600], target[128];
			ssize_t n;
			snprintf(link, sizeof(link), "%s/%s", dir, fe->d_name);
			n = readlink(link, target, sizeof(target) - 1);
			if (n > 0) {
				target[n] = '\0';
				holds = !strcmp(target, want);
			}
		}
		closedir(fds);
		for (int depth = 0; holds && p > 1 && depth < 16; depth++, p = parent_of(p))
			if (p == pid)
				found = 1;
	}
	closedir(proc);
	return found;
}

/*
 * Until the socket listening on port is pid's own (1), or pid exits (0):
 * at most 20 s, then the test fails.
 */
static int own_port(int port, pid_t pid, const char *what)
{
	for (int i = 0; i < 400; i++) {
		unsigned long inode = listener_inode(port);
		int st;
		if (inode && held_by(pid, inode))
			return 1;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return 0;
		usleep(50000);
	}
	fail_msg("%s did not listen on port %d", what, port);
	return 0;
}

int tu_serve_on_free_port(pid_t (*start)(int port, void *arg), void *arg, pid_t *pid,
                          const char *what)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		int port = tu_free_port();
		*pid = start(port, arg);
		if (own_port(port, *pid, what))
			return port;
		/* It exited, most likely because another process took the port first. */
		tu_proc_stop(pid);
	}
	/* Five ports taken first is unlikely: a server that cannot start at all ends here too. */
	fail_msg("%s exited before listening on a port of its own, 5 times (see its log)", what);
	return -1;
}

/* Start argv as a child that dies with the test process. */
pid_t tu_spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *f = fopen(log, "w");
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (f) {
			dup2(fileno(f), 1);
			dup2(fileno(f), 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

void tu_proc_stop(pid_t *pid)
{
	int st;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	waitpid(*pid, &st, 0);
	*pid = -1;
}

void tu_nginx_start(tu_nginx *out, const char *dir)
{
	tu_nginx_start_with(out, dir, "");
}

/* What start_git_daemon needs: the directory served and where its output goes. */
struct git_daemon_start {
	const char *base, *logdir;
};

static pid_t start_git_daemon(int port, void *arg)
{
	struct git_daemon_start *gs = arg;
	char portarg[64], basearg[4300], log[4300];

	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	snprintf(basearg, sizeof(basearg), "--base-path=%s", gs->base);
	snprintf(log, sizeof(log), "%s/git-daemon.log", gs->logdir);
	{
		char *argv[] = {"git",
		                "daemon",
		                "--export-all",
		                "--enable=receive-pack",
		                basearg,
		                "--listen=127.0.0.1",
		                portarg,
		                "--reuseaddr",
		                (char *)gs->base,
		                NULL};
		return tu_spawn(argv, log);
	}
}

int tu_git_daemon_start(const char *base, const char *logdir, pid_t *pid)
{
	struct git_daemon_start gs = {base, logdir};

	return tu_serve_on_free_port(start_git_daemon, &gs, pid, "git daemon");
}

/* What start_nginx needs to write its configuration and start it. */
struct nginx_start {
	tu_nginx *out;
	const char *prefix, *extra;
};

static pid_t start_nginx(int port, void *arg)
{
	struct nginx_start *ns = arg;
	const char *prefix = ns->prefix;
	char conf[4200], text[32768], log[4200], elog[4300];

	/* As root nginx's workers would run as nobody; as anyone else the line is an error. */
	snprintf(text, sizeof(text),
	         "%sworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
	         "events { worker_connections 256; }\n"
	         "http {\n  access_log %s;\n"
	         "  client_body_temp_path %s/tmp/body;\n  proxy_temp_path %s/tmp/proxy;\n"
	         "  fastcgi_temp_path %s/tmp/fcgi;\n  uwsgi_temp_path %s/tmp/uwsgi;\n"
	         "  scgi_temp_path %s/tmp/scgi;\n"
	         /* /limited/ answers 503 to whatever exceeds 20 requests a second. */
	         "  limit_req_zone $binary_remote_addr zone=slow:1m rate=20r/s;\n"
	         "  server {\n    listen 127.0.0.1:%d;\n    client_max_body_size 1g;\n"
	         "    root %s;\n    dav_methods PUT DELETE MKCOL;\n"
	         "    create_full_put_path on;\n    dav_access user:rw group:r all:r;\n"
	         "    location / { }\n"
	         "    location /limited/ { limit_req zone=slow; limit_req_status 503; }\n"
	         "%s\n  }\n}\n",
	         geteuid() == 0 ? "user root;\n" : "", prefix, prefix, ns->out->access_log, prefix,
	         prefix, prefix, prefix, prefix, port, ns->out->root, ns->extra);
	snprintf(conf, sizeof(conf), "%s/nginx.conf", prefix);
	tu_write(conf, text, strlen(text));
	snprintf(log, sizeof(log), "%s/nginx.out", prefix);
	snprintf(elog, sizeof(elog), "%s/error.log", prefix);
	{
		char *argv[] = {"nginx", "-p", (char *)prefix, "-e",          elog,
		                "-c",    conf, "-g",           "daemon off;", NULL};
		return tu_spawn(argv, log);
	}
}

void tu_nginx_start_with(tu_nginx *out, const char *dir, const char *extra)
{
	struct nginx_start ns = {out, dir, extra};

	snprintf(out->root, sizeof(out->root), "%s/www", dir);
	snprintf(out->access_log, sizeof(out->access_log), "%s/access.log", dir);
	tu_sh_ok(NULL, "mkdir -p '%s/tmp' '%s'", dir, out->root);
	out->port = tu_serve_on_free_port(start_nginx, &ns, &out->pid, "nginx");
	snprintf(out->url, sizeof(out->url), "http://127.0.0.1:%d", out->port);
}

json_t *tu_json_named(json_t *arr, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(arr, i, c)
	{
		const char *n = json_string_value(json_object_get(c, "name"));
		if (n && !strcmp(n, name))
			return c;
	}
	fail_msg("no element named %s", name);
	return NULL;
}

uint16_t tu_bf16_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - (double)b[i]);

		if (!(e <= m))
			m = isnan(e) ? INFINITY : e;
	}
	return m;
}

void tu_write_suite(const char *dir, const char *name, const char *type, const char *items)
{
	char path[4400], man[1024];

	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, name);
	tu_write(path, items, strlen(items));
	snprintf(man, sizeof(man),
	         "{\"name\": \"%s\", \"type\": \"%s\", \"items\": \"%s.jsonl\", \"description\": "
	         "\"d\", \"licence\": \"CC0-1.0\", \"source\": \"written for the tests\"}\n",
	         name, type, name);
	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	tu_write(path, man, strlen(man));
}

tu_repo *tu_repo_new(const char *tag)
{
	tu_repo *f = calloc(1, sizeof(*f));
	char keys[4200];

	assert_non_null(f);
	assert_int_equal(sluice_global_init(), 0);
	f->work = tu_mkdtemp(tag);
	snprintf(keys, sizeof(keys), "%s/keys", f->work);
	setenv("SLUICE_KEYS", keys, 1);
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->work);
	assert_int_equal(sluice_ctx_new(&f->ctx), 0);
	return f;
}

void tu_repo_free(tu_repo *f)
{
	sluice_repo_free(f->r);
	sluice_ctx_free(f->ctx);
	tu_rmtree(f->work);
	free(f->work);
	free(f);
	sluice_global_shutdown();
}
