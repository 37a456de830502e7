/*
 * bench/hashbound.c - the reference rates bench/ingest.sh holds
 * `sluice propose base` against, measured on the same machine in the
 * same run:
 *
 *   hashbound [--threads N] [--piece BYTES] FILE...
 *       BLAKE2b-256 (libsodium crypto_generichash) of every byte of the
 *       files, cut into BYTES-sized pieces (default 64 KiB, sluice's fixed
 *       chunk size) hashed by N threads (default: online CPUs). The files
 *       are mapped, as sluice maps them, and the timing includes mapping
 *       and faulting them in. Prints "hash BYTES SECONDS GB/s".
 *
 *   hashbound --stream FILE...
 *       One BLAKE2b-256 stream per file, start to end, on one thread: the
 *       whole-file digest sluice also computes, which cannot be split.
 *       Prints "stream BYTES SECONDS GB/s".
 *
 *   hashbound --write DIR BYTES
 *       Durable write rate: create a new file in DIR, write BYTES with 8 MiB
 *       writes, fsync the file and DIR, then remove it; twice, timing the
 *       second (see cmd_write). Prints "write BYTES SECONDS MB/s (...)".
 *
 *   hashbound --diff A B
 *       Count the bytes that differ between two files of the same size
 *       (what a mutation actually changed). Prints "diff BYTES".
 *
 * Rates use decimal units (GB = 1e9 bytes, MB = 1e6 bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WRITE_BUF (8u << 20)

struct file {
	const unsigned char *map;
	uint64_t size;
	uint64_t first_piece; /* index of this file's first piece overall */
};

struct job {
	struct file *files;
	size_t nfiles;
	uint64_t piece;
	uint64_t npieces;
	atomic_uint_fast64_t next;
	/* Folded from every piece's digest so the compiler cannot drop work. */
	atomic_uint_fast64_t fold;
};

static void fail(int with_errno, const char *fmt, const char *arg)
{
	int e = errno;

	fprintf(stderr, "hashbound: ");
	fprintf(stderr, fmt, arg);
	if (with_errno)
		fprintf(stderr, ": %s", strerror(e));
	fputc('\n', stderr);
	exit(1);
}

#define die(fmt, arg) fail(0, fmt, arg)
#define die_os(fmt, arg) fail(1, fmt, arg)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void map_file(struct file *f, const char *path)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		die_os("cannot open %s", path);
	f->size = (uint64_t)st.st_size;
	f->map = NULL;
	if (f->size > 0) {
		void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			die_os("cannot map %s", path);
		f->map = p;
	}
	close(fd);
}

static void unmap_file(struct file *f)
{
	if (f->map)
		munmap((void *)f->map, (size_t)f->size);
}

static void *hash_worker(void *arg)
{
	struct job *j = arg;
	unsigned char out[crypto_generichash_BYTES];
	uint64_t fold = 0, i;
	size_t k = 0;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->npieces) {
		const struct file *f;
		uint64_t off, len;

		/* Pieces are claimed in order, so the file index only moves on. */
		while (k + 1 < j->nfiles && j->files[k + 1].first_piece <= i)
			k++;
		f = &j->files[k];
		off = (i - f->first_piece) * j->piece;
		len = f->size - off < j->piece ? f->size - off : j->piece;
		crypto_generichash(out, sizeof(out), f->map + off, (size_t)len, NULL, 0);
		fold ^= (uint64_t)out[0] | (uint64_t)out[7] << 56;
	}
	atomic_fetch_xor(&j->fold, fold);
	return NULL;
}

static int cmd_hash(int argc, char **argv)
{
	struct job j = {0};
	pthread_t *tids;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t total = 0;
	double t0, t1;
	int i, first = 0;

	j.piece = 64u << 10;
	for (first = 0; first < argc && !strncmp(argv[first], "--", 2); first += 2) {
		if (first + 1 >= argc)
			die("%s needs a value", argv[first]);
		if (!strcmp(argv[first], "--threads"))
			threads = atol(argv[first + 1]);
		else if (!strcmp(argv[first], "--piece"))
			j.piece = strtoull(argv[first + 1], NULL, 10);
		else
			die("unknown option %s", argv[first]);
	}
	if (threads < 1 || j.piece == 0 || first == argc)
		die("usage: hashbound [--threads N] [--piece BYTES] FILE...%s", "");
	j.nfiles = (size_t)(argc - first);
	if (!(j.files = calloc(j.nfiles, sizeof(*j.files))) ||
	    !(tids = calloc((size_t)threads, sizeof(*tids))))
		die("out of memory%s", "");
	t0 = now();
	for (i = first; i < argc; i++) {
		struct file *f = &j.files[i - first];
		map_file(f, argv[i]);
		f->first_piece = j.npieces;
		j.npieces += (f->size + j.piece - 1) / j.piece;
		total += f->size;
	}
	for (i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, hash_worker, &j) != 0)
			die_os("cannot start a thread%s", "");
	for (i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	t1 = now();
	for (size_t k = 0; k < j.nfiles; k++)
		unmap_file(&j.files[k]);
	printf("hash %llu %.6f %.3f (threads %ld, piece %llu, fold %llx)\n",
	       (unsigned long long)total, t1 - t0, (double)total / (t1 - t0) / 1e9, threads,
	       (unsigned long long)j.piece, (unsigned long long)atomic_load(&j.fold));
	free(tids);
	free(j.files);
	return 0;
}

static int cmd_stream(int argc, char **argv)
{
	unsigned char out[crypto_generichash_BYTES];
	uint64_t total = 0;
	double t0, t1;

	t0 = now();
	for (int i = 0; i < argc; i++) {
		crypto_generichash_state st;
		struct file f;

		map_file(&f, argv[i]);
		crypto_generichash_init(&st, NULL, 0, sizeof(out));
		/* 1 MiB updates, as sluice feeds its whole-file hash. */
		for (uint64_t off = 0; off < f.size; off += 1u << 20) {
			uint64_t n = f.size - off < (1u << 20) ? f.size - off : (1u << 20);
			crypto_generichash_update(&st, f.map + off, (size_t)n);
		}
		crypto_generichash_final(&st, out, sizeof(out));
		total += f.size;
		unmap_file(&f);
	}
	t1 = now();
	printf("stream %llu %.6f %.3f (last digest byte %02x)\n", (unsigned long long)total,
	       t1 - t0, (double)total / (t1 - t0) / 1e9, out[0]);
	return 0;
}

struct write_time {
	double total, writes, fsync;
};

/* Write bytes from buf to a new file in dir, fsync it and dir, remove it. */
static struct write_time write_once(int dfd, const char *dir, const unsigned char *buf,
                                    uint64_t bytes)
{
	struct write_time t;
	char path[4096];
	uint64_t done = 0;
	double t0, tw;
	int fd;

	if (snprintf(path, sizeof(path), "%s/hashbound-write-XXXXXX", dir) >= (int)sizeof(path))
		die("%s: path too long", dir);
	t0 = now();
	if ((fd = mkstemp(path)) < 0)
		die_os("cannot create a file in %s", dir);
	while (done < bytes) {
		size_t n = bytes - done < WRITE_BUF ? (size_t)(bytes - done) : WRITE_BUF;
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die_os("cannot write %s", path);
		}
		done += (uint64_t)w;
	}
	tw = now();
	if (fsync(fd) < 0 || fsync(dfd) < 0)
		die_os("cannot fsync %s", path);
	t.total = now() - t0;
	t.writes = tw - t0;
	t.fsync = t.total - t.writes;
	close(fd);
	unlink(path);
	fsync(dfd);
	return t;
}

/*
 * Two passes; the second is the figure. On a VM whose guest memory is
 * backed lazily (or handed back to the host when freed, as a virtio
 * balloon with free page reporting does), the first pass mostly measures
 * the host faulting in fresh page-cache pages, not the disk; the second
 * reuses the pages the first freed. The first pass is printed too.
 */
static int cmd_write(const char *dir, const char *bytes_arg)
{
	unsigned char *buf;
	uint64_t bytes = strtoull(bytes_arg, NULL, 10);
	struct write_time cold, t;
	int dfd;

	/* Incompressible bytes, made before the clock starts. */
	if (!(buf = malloc(WRITE_BUF)))
		die("out of memory%s", "");
	randombytes_buf(buf, WRITE_BUF);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		die_os("cannot open %s", dir);
	cold = write_once(dfd, dir, buf, bytes);
	t = write_once(dfd, dir, buf, bytes);
	close(dfd);
	free(buf);
	printf("write %llu %.6f %.1f (writes %.3f s, fsync %.3f s; first pass %.3f s: writes "
	       "%.3f s, fsync %.3f s)\n",
	       (unsigned long long)bytes, t.total, (double)bytes / t.total / 1e6, t.writes, t.fsync,
	       cold.total, cold.writes, cold.fsync);
	return 0;
}

static int cmd_diff(const char *a, const char *b)
{
	struct file fa, fb;
	uint64_t diff = 0;

	map_file(&fa, a);
	map_file(&fb, b);
	if (fa.size != fb.size)
		die("%s: sizes differ", b);
	for (uint64_t i = 0; i < fa.size; i++)
		diff += fa.map[i] != fb.map[i];
	unmap_file(&fa);
	unmap_file(&fb);
	printf("diff %llu\n", (unsigned long long)diff);
	return 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		die("libsodium failed to initialize%s", "");
	if (argc >= 2 && !strcmp(argv[1], "--write") && argc == 4)
		return cmd_write(argv[2], argv[3]);
	if (argc >= 2 && !strcmp(argv[1], "--diff") && argc == 4)
		return cmd_diff(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "--stream"))
		return cmd_stream(argc - 2, argv + 2);
	if (argc >= 2)
		return cmd_hash(argc - 1, argv + 1);
	fprintf(stderr, "usage: hashbound [--threads N] [--piece BYTES] FILE...\n"
	                "       hashbound --stream FILE...\n"
	                "       hashbound --write DIR BYTES\n"
	                "       hashbound --diff A B\n");
	return 3;
}
