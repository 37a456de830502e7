/*
 * core/io.c - every write, fsync and allocation of libsluice's own goes
 * through here, so the fault hook in the context can fail any one of them
 * (SQLite's sqlite3FaultSim idea) and tests can check what happens.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>

static int faulted(sluice_ctx *ctx, sluice_fault_op op, const char *what)
{
	return ctx->fault && ctx->fault(ctx->fault_data, op, what ? what : "");
}

void *sluice__malloc(sluice_ctx *ctx, size_t n)
{
	void *p = NULL;

	if (!faulted(ctx, SLUICE_FAULT_ALLOC, "malloc"))
		p = malloc(n ? n : 1);
	if (!p)
		sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory allocating %zu bytes", n);
	return p;
}

void *sluice__calloc(sluice_ctx *ctx, size_t n, size_t size)
{
	void *p = NULL;

	if (!faulted(ctx, SLUICE_FAULT_ALLOC, "calloc"))
		p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory allocating %zu x %zu bytes", n,
		                  size);
	return p;
}

void *sluice__realloc(sluice_ctx *ctx, void *old, size_t n)
{
	void *p = NULL;

	if (!faulted(ctx, SLUICE_FAULT_ALLOC, "realloc"))
		p = realloc(old, n ? n : 1);
	if (!p)
		sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory allocating %zu bytes", n);
	return p;
}

int sluice__reserve(sluice_ctx *ctx, void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 16, bytes;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (sluice__mul_ovf(&ncap, ncap, 2) < 0)
			return sluice_ctx__error(ctx, SLUICE_ENOMEM, "array size overflow");
	}
	if (sluice__mul_ovf(&bytes, ncap, elem) < 0)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "array size overflow");
	if (!(np = sluice__realloc(ctx, *p, bytes)))
		return SLUICE_ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

char *sluice__strdup(sluice_ctx *ctx, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = sluice__malloc(ctx, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

int sluice_io__write_all(sluice_ctx *ctx, int fd, const void *buf, size_t len, const char *what)
{
	const unsigned char *p = buf;

	if (faulted(ctx, SLUICE_FAULT_WRITE, what)) {
		errno = EIO;
		return sluice_ctx__oserror(ctx, "cannot write %s", what);
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sluice_ctx__oserror(ctx, "cannot write %s", what);
		}
		p += n;
		len -= (size_t)n;
	}
	return SLUICE_OK;
}

int sluice_io__pwrite_all(sluice_ctx *ctx, int fd, const void *buf, size_t len, off_t off,
                          const char *what)
{
	const unsigned char *p = buf;

	if (faulted(ctx, SLUICE_FAULT_WRITE, what)) {
		errno = EIO;
		return sluice_ctx__oserror(ctx, "cannot write %s", what);
	}
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sluice_ctx__oserror(ctx, "cannot write %s", what);
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return SLUICE_OK;
}

int sluice_io__pread_all(sluice_ctx *ctx, int fd, void *buf, size_t len, off_t off,
                         const char *what)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len > (1u << 30) ? (1u << 30) : len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sluice_ctx__oserror(ctx, "cannot read %s", what);
		}
		if (n == 0)
			return sluice_ctx__error(
			        ctx, SLUICE_ECORRUPT,
			        "%s is shorter than expected (%zu bytes missing at offset %lld)",
			        what, len, (long long)off);
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return SLUICE_OK;
}

/* fsync, retried on EINTR; 0 or the errno it failed with. */
static int fsync_retrying(int fd)
{
	while (fsync(fd) < 0)
		if (errno != EINTR)
			return errno;
	return 0;
}

int sluice_io__fsync(sluice_ctx *ctx, int fd, const char *what)
{
	int err;

	if (faulted(ctx, SLUICE_FAULT_FSYNC, what)) {
		errno = EIO;
		return sluice_ctx__oserror(ctx, "cannot fsync %s", what);
	}
	if ((err = fsync_retrying(fd)) != 0) {
		errno = err;
		return sluice_ctx__oserror(ctx, "cannot fsync %s", what);
	}
	return SLUICE_OK;
}

/* One fsync of sluice_io__fsync_all, run on its own thread. */
typedef struct {
	pthread_t thread;
	int fd;
	int err; /* errno of a failed fsync, or 0 */
	int started;
} fsync_job;

static void *fsync_job_run(void *arg)
{
	fsync_job *j = arg;

	j->err = fsync_retrying(j->fd);
	return NULL;
}

/*
 * The fsyncs of a batch submitted at once through Linux native AIO
 * (IOCB_CMD_FSYNC, Linux 4.18 and later): the kernel runs them on its own
 * workers, so the flushes overlap without a thread of ours per file, whose
 * start-up cost more CPU than the flushes (docs/bench-rollback.md). One
 * context for the process, made on first use (a fork's child makes its
 * own), used one batch at a time. Returns -1 where AIO cannot take the
 * batch (no AIO, or a file system that refuses it) or is not wanted yet:
 * the caller falls back to threads. errs[i] is the errno of fds[i]'s
 * fsync, or 0.
 *
 * Not wanted yet: a process that has an AIO context pays for it when it
 * exits, in exit_aio's wait for an RCU grace period (about 30 ms on this
 * project's machine, 2026-12-03, measured with an empty program that only
 * calls io_setup), which is more than threads cost a command that commits
 * once or twice (about 1.5 ms of CPU per batch). So a process's first
 * AIO_FROM_BATCH - 1 batches go to threads and only a process that keeps
 * committing (a server, the benchmark) makes a context. SLUICE_FSYNC_BATCH
 * in the environment overrides: "aio" from the first batch, "threads"
 * never AIO.
 */
#define AIO_FROM_BATCH 5

static struct {
	pthread_mutex_t lock;
	aio_context_t ctx;
	pid_t pid;
	int broken;
	unsigned batches; /* batches this process has asked to flush */
	int made;         /* io_setup was tried */
} aio = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The SLUICE_FSYNC_BATCH override: 1 "aio", 0 "threads", -1 unset (by count). */
static int aio_wanted_env(void)
{
	const char *v = getenv("SLUICE_FSYNC_BATCH");

	if (v && !strcmp(v, "aio"))
		return 1;
	if (v && !strcmp(v, "threads"))
		return 0;
	return -1;
}

static int aio_fsync_batch(const int *fds, size_t n, int *errs)
{
	struct iocb cb[SLUICE_IO_FSYNC_MAX], *cbp[SLUICE_IO_FSYNC_MAX];
	struct io_event ev[SLUICE_IO_FSYNC_MAX];
	long sub, got = 0;

	int want = aio_wanted_env();

	pthread_mutex_lock(&aio.lock);
	if (aio.pid != getpid()) {
		aio.ctx = 0;
		aio.broken = 0;
		aio.batches = 0;
		aio.made = 0;
		aio.pid = getpid();
	}
	aio.batches++;
	if (!aio.made && (want == 1 || (want < 0 && aio.batches >= AIO_FROM_BATCH))) {
		aio.broken = syscall(SYS_io_setup, SLUICE_IO_FSYNC_MAX, &aio.ctx) < 0;
		aio.made = 1;
	}
	if (!aio.made || aio.broken || want == 0) {
		pthread_mutex_unlock(&aio.lock);
		return -1;
	}
	memset(cb, 0, sizeof(cb));
	for (size_t i = 0; i < n; i++) {
		cb[i].aio_fildes = (__u32)fds[i];
		cb[i].aio_lio_opcode = IOCB_CMD_FSYNC;
		cb[i].aio_data = i;
		cbp[i] = &cb[i];
		errs[i] = 0;
	}
	do
		sub = syscall(SYS_io_submit, aio.ctx, (long)n, cbp);
	while (sub < 0 && errno == EINTR);
	if (sub < 0) {
		/* EINVAL: this file system has no AIO fsync; do not ask again. */
		aio.broken = errno == EINVAL || errno == ENOSYS;
		pthread_mutex_unlock(&aio.lock);
		return -1;
	}
	while (got < sub) {
		long r = syscall(SYS_io_getevents, aio.ctx, 1L, sub - got, ev, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot learn the outcome: report the rest as failed. */
			for (long i = sub; i-- > 0;)
				if (!errs[i])
					errs[i] = errno;
			break;
		}
		for (long i = 0; i < r; i++)
			if (ev[i].res < 0)
				errs[ev[i].data] = (int)-ev[i].res;
		got += r;
	}
	pthread_mutex_unlock(&aio.lock);
	/* What io_submit did not take (a full queue), in turn. */
	for (size_t i = (size_t)sub; i < n; i++)
		errs[i] = fsync_retrying(fds[i]);
	return 0;
}

int sluice_io__fsync_all(sluice_ctx *ctx, const int *fds, const char *const *what, size_t n)
{
	fsync_job jobs[SLUICE_IO_FSYNC_MAX];
	int errs[SLUICE_IO_FSYNC_MAX];
	size_t i;

	if (n > SLUICE_IO_FSYNC_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%zu files to fsync at once (at most %d)", n,
		                         SLUICE_IO_FSYNC_MAX);
	/* The fault hook is asked here, on the caller's thread, once per file. */
	for (i = 0; i < n; i++) {
		if (faulted(ctx, SLUICE_FAULT_FSYNC, what[i])) {
			errno = EIO;
			return sluice_ctx__oserror(ctx, "cannot fsync %s", what[i]);
		}
	}
	/*
	 * Every fsync at once, so the flushes are queued on the device
	 * together and the disk's cache flushes overlap instead of following
	 * one another: through AIO, or else each on a thread of its own (a
	 * thread that cannot start runs inline).
	 */
	if (n > 1 && aio_fsync_batch(fds, n, errs) == 0) {
		for (i = 0; i < n; i++) {
			if (errs[i]) {
				errno = errs[i];
				return sluice_ctx__oserror(ctx, "cannot fsync %s", what[i]);
			}
		}
		return SLUICE_OK;
	}
	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < n; i++) {
		jobs[i].fd = fds[i];
		if (i + 1 < n &&
		    pthread_create(&jobs[i].thread, NULL, fsync_job_run, &jobs[i]) == 0)
			jobs[i].started = 1;
		else
			fsync_job_run(&jobs[i]);
	}
	for (i = 0; i < n; i++)
		if (jobs[i].started)
			pthread_join(jobs[i].thread, NULL);
	for (i = 0; i < n; i++) {
		if (jobs[i].err) {
			errno = jobs[i].err;
			return sluice_ctx__oserror(ctx, "cannot fsync %s", what[i]);
		}
	}
	return SLUICE_OK;
}

int sluice_io__fsync_dir(sluice_ctx *ctx, const char *dirpath)
{
	int fd, error;

	fd = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sluice_ctx__oserror(ctx, "cannot open directory %s", dirpath);
	error = sluice_io__fsync(ctx, fd, dirpath);
	close(fd);
	return error;
}

int sluice_io__read_file(sluice_ctx *ctx, unsigned char **out, size_t *outlen, const char *path,
                         size_t cap)
{
	struct stat st;
	unsigned char *buf = NULL;
	int fd, error;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "%s does not exist", path);
		return sluice_ctx__oserror(ctx, "cannot open %s", path);
	}
	if (fstat(fd, &st) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot stat %s", path);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s is not a regular file", path);
		goto done;
	}
	if ((uint64_t)st.st_size > cap) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s is too large (%lld bytes, limit %zu)", path,
		                          (long long)st.st_size, cap);
		goto done;
	}
	if (!(buf = sluice__malloc(ctx, (size_t)st.st_size + 1))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	if ((error = sluice_io__pread_all(ctx, fd, buf, (size_t)st.st_size, 0, path)) < 0)
		goto done;
	buf[st.st_size] = '\0';
	*out = buf;
	*outlen = (size_t)st.st_size;
	buf = NULL;
done:
	free(buf);
	close(fd);
	return error;
}

int sluice_io__write_file_atomic(sluice_ctx *ctx, const char *path, const void *buf, size_t len,
                                 int mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	char *slash;
	int fd, error;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return sluice_ctx__oserror(ctx, "cannot create %s", tmp);
	if ((error = sluice_io__write_all(ctx, fd, buf, len, path)) < 0 ||
	    (error = sluice_io__fsync(ctx, fd, path)) < 0) {
		close(fd);
		unlink(tmp);
		return error;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot rename %s to %s", tmp, path);
		unlink(tmp);
		return error;
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	return sluice_io__fsync_dir(ctx, dir);
}

int sluice_io__mkdirs(sluice_ctx *ctx, const char *path, int mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	char *p;

	if (n == 0 || n >= sizeof(buf))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "bad directory path '%s'", path);
	/* Usually there already, or only the last component missing: one call. */
	if (mkdir(path, (mode_t)mode) == 0 || errno == EEXIST)
		return SLUICE_OK;
	if (errno != ENOENT)
		return sluice_ctx__oserror(ctx, "cannot create directory %s", path);
	memcpy(buf, path, n + 1);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
			return sluice_ctx__oserror(ctx, "cannot create directory %s", buf);
		*p = '/';
	}
	if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
		return sluice_ctx__oserror(ctx, "cannot create directory %s", buf);
	return SLUICE_OK;
}
