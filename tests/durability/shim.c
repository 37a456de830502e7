/*
 * tests/durability/shim.c - an LD_PRELOAD library that watches and breaks
 * the system calls that make data durable, in sluice and in everything it
 * links: libsluice's own I/O, libgit2 (objects, refs, lock files) and LMDB
 * (data pages, the meta page, fdatasync).
 *
 * It interposes the mutating calls:
 *   write  write, pwrite, pwrite64, writev, pwritev, pwritev64, pwritev2
 *   fsync  fsync, fdatasync, and each IOCB_CMD_FSYNC/FDSYNC of an io_submit
 *   rename rename, renameat, renameat2, link, linkat
 *   unlink unlink, unlinkat
 * and, driven by the environment:
 *   SLUICE_SHIM_LOG=FILE   appends "SEQ OP PATH [PATH2]" for each call, in
 *                          call order (PATH from /proc/self/fd for fds)
 *   SLUICE_SHIM_FAIL=OP:N  the N-th call of class OP (write, fsync, rename,
 *                          unlink, or any) fails with EIO and does nothing
 *   SLUICE_SHIM_KILL=N     SIGKILL before the N-th mutating call (of any
 *                          class): a deterministic crash point
 *   SLUICE_SHIM_PROG=NAME  act only in programs of that name (default:
 *                          sluice), so a shell or env in between is inert
 *   SLUICE_SHIM_NOAIO=1    io_setup fails with ENOSYS, as where AIO is not
 *                          available: libsluice falls back to threads
 *   SLUICE_SHIM_NOTMPFILE=1  open and openat with O_TMPFILE fail with
 *                          EOPNOTSUPP, as on a file system without unnamed
 *                          files: libsluice falls back to temporary names
 *   SLUICE_SHIM_NOPROC=1   /proc/self/fd is not there for linkat and access,
 *                          as where /proc is not mounted: an unnamed file
 *                          cannot be linked, and libsluice falls back to
 *                          temporary names (the refused linkat is not logged)
 * Calls on stdin, stdout and stderr are neither counted nor logged: what a
 * process prints is not state.
 *
 * libsluice submits a batch of fsyncs at once through Linux AIO (core/io.c;
 * a command's first batches go to threads unless SLUICE_FSYNC_BATCH=aio).
 * In a watched program the shim stands in for the kernel there: io_submit
 * is logged ("io_submit batch", not counted), runs each fsync in turn
 * (counted, logged, failed or killed like any other) and keeps its
 * completion, which io_getevents then hands back. The
 * flushes do not overlap under the shim; their order and outcome are what
 * the tests look at.
 *
 * Build as a shared module; load with LD_PRELOAD (under AddressSanitizer
 * add verify_asan_link_order=0 to ASAN_OPTIONS).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

enum op_class { C_WRITE, C_FSYNC, C_RENAME, C_UNLINK, C_ANY, C_COUNT };

static const char *const class_names[C_COUNT] = {"write", "fsync", "rename", "unlink", "any"};

static struct {
	int active;
	int noaio;
	int notmpfile;
	int noproc;
	int logfd;
	int fail_class;
	unsigned long fail_at;
	unsigned long kill_at;
	atomic_ulong seq;
	atomic_ulong count[C_COUNT];
} shim = {.logfd = -1, .fail_class = -1};

/* Calls the shim makes itself (its log, readlink) must not re-enter it. */
static _Thread_local int busy;

static ssize_t (*real_write)(int, const void *, size_t);

/* The next definition of a function (libc's, or a sanitizer's interceptor). */
#define REAL(name)                                                                                 \
	static __typeof__(&name) real_##name##_ptr;                                                \
	if (!real_##name##_ptr)                                                                    \
		real_##name##_ptr = (__typeof__(&name))dlsym(RTLD_NEXT, #name);

static unsigned long env_ulong(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	return *end ? 0 : v;
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *prog = getenv("SLUICE_SHIM_PROG"), *v;
	int i;

	real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (strcmp(program_invocation_short_name, prog && *prog ? prog : "sluice"))
		return;
	shim.noaio = (v = getenv("SLUICE_SHIM_NOAIO")) && *v == '1';
	shim.notmpfile = (v = getenv("SLUICE_SHIM_NOTMPFILE")) && *v == '1';
	shim.noproc = (v = getenv("SLUICE_SHIM_NOPROC")) && *v == '1';
	if ((v = getenv("SLUICE_SHIM_LOG")) && *v)
		shim.logfd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if ((v = getenv("SLUICE_SHIM_KILL")) && *v)
		shim.kill_at = env_ulong(v);
	if ((v = getenv("SLUICE_SHIM_FAIL")) && *v) {
		const char *colon = strchr(v, ':');
		for (i = 0; colon && i < C_COUNT; i++)
			if (strlen(class_names[i]) == (size_t)(colon - v) &&
			    !strncmp(v, class_names[i], (size_t)(colon - v)))
				shim.fail_class = i;
		if (colon)
			shim.fail_at = env_ulong(colon + 1);
	}
	shim.active = 1;
}

/*
 * The file an fd names. An unnamed file (O_TMPFILE) reads back as
 * "DIR/#INODE (deleted)": logged as DIR/#INODE, one word like every path
 * of the log, until it is linked to a name.
 */
static void fd_path(int fd, char *out, size_t cap)
{
	static const char deleted[] = " (deleted)";
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, cap - 1);
	if (n < 0)
		n = snprintf(out, cap, "fd:%d", fd);
	out[n] = '\0';
	if ((size_t)n > sizeof(deleted) - 1 && strstr(out, "/#") &&
	    !strcmp(out + n - (sizeof(deleted) - 1), deleted))
		out[n - (sizeof(deleted) - 1)] = '\0';
}

/* A path relative to a directory fd, made absolute for the log. */
static void at_path(int dirfd, const char *path, char *out, size_t cap)
{
	char dir[PATH_MAX];
	int n;

	if (path[0] == '/' || (dirfd == AT_FDCWD && !getcwd(dir, sizeof(dir))))
		n = snprintf(out, cap, "%s", path);
	else {
		if (dirfd != AT_FDCWD)
			fd_path(dirfd, dir, sizeof(dir));
		n = snprintf(out, cap, "%s/%s", dir, path);
	}
	/* A path too long for the log is cut; the call itself is unaffected. */
	if (n < 0 || (size_t)n >= cap)
		out[cap - 1] = '\0';
}

static void log_line(unsigned long seq, const char *op, const char *a, const char *b)
{
	char line[2 * PATH_MAX + 64];
	int n;

	if (shim.logfd < 0 || !real_write)
		return;
	n = snprintf(line, sizeof(line), "%lu %s %s%s%s\n", seq, op, a, b ? " " : "", b ? b : "");
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	/* O_APPEND and one write per line: lines from threads do not mix. */
	if (real_write(shim.logfd, line, (size_t)n) < 0)
		return;
}

/*
 * Count one call; returns nonzero if it must fail. Kills the process when
 * the crash point is reached: before the call, so it never happens.
 */
static int account(enum op_class cls, const char *op, const char *a, const char *b)
{
	unsigned long seq, nth;

	if (!shim.active || busy)
		return 0;
	busy = 1;
	seq = atomic_fetch_add(&shim.seq, 1) + 1;
	nth = atomic_fetch_add(&shim.count[cls], 1) + 1;
	atomic_fetch_add(&shim.count[C_ANY], 1);
	if (shim.kill_at && seq == shim.kill_at) {
		log_line(seq, "KILL", op, a);
		raise(SIGKILL);
	}
	if (shim.fail_at && ((shim.fail_class == (int)cls && nth == shim.fail_at) ||
	                     (shim.fail_class == C_ANY && seq == shim.fail_at))) {
		log_line(seq, "FAIL", op, a);
		busy = 0;
		return 1;
	}
	log_line(seq, op, a, b);
	busy = 0;
	return 0;
}

static int account_fd(enum op_class cls, const char *op, int fd)
{
	char path[PATH_MAX];

	if (!shim.active || busy || fd <= 2 || fd == shim.logfd)
		return 0;
	busy = 1;
	fd_path(fd, path, sizeof(path));
	busy = 0;
	return account(cls, op, path, NULL);
}

static int account_at(enum op_class cls, const char *op, int d1, const char *p1, int d2,
                      const char *p2)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!shim.active || busy)
		return 0;
	busy = 1;
	at_path(d1, p1, a, sizeof(a));
	if (p2)
		at_path(d2, p2, b, sizeof(b));
	busy = 0;
	return account(cls, op, a, p2 ? b : NULL);
}

#define FAIL_EIO                                                                                   \
	do {                                                                                       \
		errno = EIO;                                                                       \
		return -1;                                                                         \
	} while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
	if (!real_write)
		real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (account_fd(C_WRITE, "write", fd))
		FAIL_EIO;
	return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	if (account_fd(C_WRITE, "pwrite", fd))
		FAIL_EIO;
	return real_pwrite_ptr(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REAL(pwrite64);
	if (account_fd(C_WRITE, "pwrite", fd))
		FAIL_EIO;
	return real_pwrite64_ptr(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	if (account_fd(C_WRITE, "writev", fd))
		FAIL_EIO;
	return real_writev_ptr(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	if (account_fd(C_WRITE, "pwritev", fd))
		FAIL_EIO;
	return real_pwritev_ptr(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	REAL(pwritev64);
	if (account_fd(C_WRITE, "pwritev", fd))
		FAIL_EIO;
	return real_pwritev64_ptr(fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(pwritev2);
	if (account_fd(C_WRITE, "pwritev", fd))
		FAIL_EIO;
	return real_pwritev2_ptr(fd, iov, cnt, off, flags);
}

int fsync(int fd)
{
	REAL(fsync);
	if (account_fd(C_FSYNC, "fsync", fd))
		FAIL_EIO;
	return real_fsync_ptr(fd);
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	if (account_fd(C_FSYNC, "fdatasync", fd))
		FAIL_EIO;
	return real_fdatasync_ptr(fd);
}

int rename(const char *from, const char *to)
{
	REAL(rename);
	if (account_at(C_RENAME, "rename", AT_FDCWD, from, AT_FDCWD, to))
		FAIL_EIO;
	return real_rename_ptr(from, to);
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
	REAL(renameat);
	if (account_at(C_RENAME, "rename", fd1, from, fd2, to))
		FAIL_EIO;
	return real_renameat_ptr(fd1, from, fd2, to);
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags)
{
	REAL(renameat2);
	if (account_at(C_RENAME, "rename", fd1, from, fd2, to))
		FAIL_EIO;
	return real_renameat2_ptr(fd1, from, fd2, to, flags);
}

int link(const char *from, const char *to)
{
	REAL(link);
	if (account_at(C_RENAME, "link", AT_FDCWD, from, AT_FDCWD, to))
		FAIL_EIO;
	return real_link_ptr(from, to);
}

/*
 * A link from /proc/self/fd/N (how an unnamed file gets its name) is
 * logged from the file's own path, DIR/#INODE, the path its writes were
 * logged under.
 */
int linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	static const char proc[] = "/proc/self/fd/";
	int fail;

	REAL(linkat);
	if (shim.active && shim.noproc && !strncmp(from, proc, sizeof(proc) - 1)) {
		errno = ENOENT;
		return -1;
	}
	if (shim.active && !busy && !strncmp(from, proc, sizeof(proc) - 1)) {
		char a[PATH_MAX], b[PATH_MAX];

		busy = 1;
		fd_path(atoi(from + sizeof(proc) - 1), a, sizeof(a));
		at_path(fd2, to, b, sizeof(b));
		busy = 0;
		fail = account(C_RENAME, "link", a, b);
	} else {
		fail = account_at(C_RENAME, "link", fd1, from, fd2, to);
	}
	if (fail)
		FAIL_EIO;
	return real_linkat_ptr(fd1, from, fd2, to, flags);
}

/* Not logged or counted; with SLUICE_SHIM_NOPROC=1, /proc/self/fd is missing. */
int access(const char *path, int mode)
{
	REAL(access);
	if (shim.active && shim.noproc && !strncmp(path, "/proc/self/fd", 13)) {
		errno = ENOENT;
		return -1;
	}
	return real_access_ptr(path, mode);
}

int unlink(const char *path)
{
	REAL(unlink);
	if (account_at(C_UNLINK, "unlink", AT_FDCWD, path, AT_FDCWD, NULL))
		FAIL_EIO;
	return real_unlink_ptr(path);
}

int unlinkat(int fd, const char *path, int flags)
{
	REAL(unlinkat);
	if (account_at(C_UNLINK, "unlink", fd, path, AT_FDCWD, NULL))
		FAIL_EIO;
	return real_unlinkat_ptr(fd, path, flags);
}

/*
 * Opens are not logged or counted; with SLUICE_SHIM_NOTMPFILE=1 one that
 * asks for an unnamed file (O_TMPFILE) is refused as a file system
 * without them would refuse it.
 */
static int refuse_tmpfile(int flags)
{
#ifdef O_TMPFILE
	if (shim.active && shim.notmpfile && (flags & O_TMPFILE) == O_TMPFILE) {
		errno = EOPNOTSUPP;
		return 1;
	}
#else
	(void)flags;
#endif
	return 0;
}

/* The mode argument, present when the flags create a file. */
#ifdef O_TMPFILE
#define OPEN_HAS_MODE(flags) (((flags)&O_CREAT) || ((flags)&O_TMPFILE) == O_TMPFILE)
#else
#define OPEN_HAS_MODE(flags) ((flags)&O_CREAT)
#endif
#define OPEN_MODE(flags, mode)                                                                     \
	do {                                                                                       \
		if (OPEN_HAS_MODE(flags)) {                                                        \
			va_list ap;                                                                \
			va_start(ap, flags);                                                       \
			mode = va_arg(ap, mode_t);                                                 \
			va_end(ap);                                                                \
		}                                                                                  \
	} while (0)

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	REAL(open);
	OPEN_MODE(flags, mode);
	if (refuse_tmpfile(flags))
		return -1;
	return real_open_ptr(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	REAL(open64);
	OPEN_MODE(flags, mode);
	if (refuse_tmpfile(flags))
		return -1;
	return real_open64_ptr(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	REAL(openat);
	OPEN_MODE(flags, mode);
	if (refuse_tmpfile(flags))
		return -1;
	return real_openat_ptr(dirfd, path, flags, mode);
}

/* Completions of the fsyncs io_submit ran, not yet collected by io_getevents. */
static struct {
	pthread_mutex_t lock;
	struct io_event ev[256];
	size_t n;
} aio_done = {.lock = PTHREAD_MUTEX_INITIALIZER};

long syscall(long nr, ...)
{
	static long (*real_syscall)(long, ...);
	long a[6];
	va_list ap;

	if (!real_syscall)
		real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (shim.active && shim.noaio && nr == SYS_io_setup) {
		log_line(0, "io_setup", "ENOSYS", NULL); /* logged, not counted */
		errno = ENOSYS;
		return -1;
	}
	if (shim.active && nr == SYS_io_submit) {
		struct iocb **cbs = (struct iocb **)a[2];
		REAL(fsync);
		REAL(fdatasync);
		log_line(0, "io_submit", "batch", NULL); /* logged, not counted */
		for (long i = 0; i < a[1]; i++) {
			struct iocb *cb = cbs[i];
			int fd = (int)cb->aio_fildes, dsync = cb->aio_lio_opcode == IOCB_CMD_FDSYNC;
			long res = 0;
			if (cb->aio_lio_opcode != IOCB_CMD_FSYNC && !dsync) {
				errno = EINVAL; /* the shim runs only fsyncs */
				return i ? i : -1;
			}
			if (account_fd(C_FSYNC, dsync ? "fdatasync" : "fsync", fd))
				res = -EIO;
			else if ((dsync ? real_fdatasync_ptr(fd) : real_fsync_ptr(fd)) < 0)
				res = -errno;
			pthread_mutex_lock(&aio_done.lock);
			if (aio_done.n < sizeof(aio_done.ev) / sizeof(aio_done.ev[0]))
				aio_done.ev[aio_done.n++] =
				        (struct io_event){.data = cb->aio_data,
				                          .obj = (__u64)(uintptr_t)cb,
				                          .res = res};
			pthread_mutex_unlock(&aio_done.lock);
		}
		return a[1];
	}
	if (shim.active && nr == SYS_io_getevents) {
		struct io_event *out = (struct io_event *)a[3];
		long max = a[2], got = 0;
		pthread_mutex_lock(&aio_done.lock);
		while (got < max && aio_done.n > 0)
			out[got++] = aio_done.ev[--aio_done.n];
		pthread_mutex_unlock(&aio_done.lock);
		return got;
	}
	return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
