/*
 * tests/core/test_chunkstore.c - pack storage, LMDB index, ingest and
 * materialize, verify and reindex, and the manifest format.
 */
#include "testutil.h"

#include "cdc.h"
#include "chunkstore.h"
#include "pack.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	sluice_ctx *ctx;
	char *dir;
	char store[1024];
	sluice_chunkstore *cs;
} fixture;

static int group_setup(void **state)
{
	return sluice_global_init() < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	sluice_global_shutdown();
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(sluice_ctx_new(&f->ctx), 0);
	f->dir = tu_mkdtemp("chunkstore");
	assert_true(strlen(f->dir) < 900);
	snprintf(f->store, sizeof(f->store), "%s/sluice", f->dir);
	assert_int_equal(sluice_chunkstore__open(&f->cs, f->ctx, f->store), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	sluice_chunkstore__free(f->cs);
	tu_rmtree(f->dir);
	free(f->dir);
	sluice_ctx_free(f->ctx);
	free(f);
	return 0;
}

static void reopen(fixture *f)
{
	sluice_chunkstore__free(f->cs);
	f->cs = NULL;
	assert_int_equal(sluice_chunkstore__open(&f->cs, f->ctx, f->store), 0);
}

static unsigned char *random_bytes(size_t n, unsigned seed)
{
	unsigned char key[randombytes_SEEDBYTES] = {0};
	unsigned char *p = malloc(n ? n : 1);

	assert_non_null(p);
	memcpy(key, &seed, sizeof(seed));
	randombytes_buf_deterministic(p, n, key);
	return p;
}

static void write_file(const fixture *f, const char *name, const void *data, size_t len,
                       char path[4096])
{
	snprintf(path, 4096, "%s/%s", f->dir, name);
	tu_write(path, data, len);
}

static int ingest_bytes(fixture *f, sluice_manifest *m, sluice_ingest_stats *st,
                        const unsigned char *data, size_t len, const sluice_region *r, size_t nr)
{
	char path[4096];
	int fd, error;

	write_file(f, "input.bin", data, len, path);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	error = sluice_chunkstore__ingest(f->cs, m, st, fd, len, r, nr, "input.bin");
	close(fd);
	return error;
}

/* Materialize m and return the file's bytes (caller frees). */
static unsigned char *materialize(fixture *f, const sluice_manifest *m, size_t *len, int *error)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/out.bin", f->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	*error = sluice_chunkstore__materialize(f->cs, m, fd, "out.bin");
	close(fd);
	return tu_read(path, len);
}

static void first_pack(const fixture *f, char path[4096])
{
	char dir[2048];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/packs", f->store);
	d = opendir(dir);
	assert_non_null(d);
	path[0] = '\0';
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "pack-", 5) == 0) {
			snprintf(path, 4096, "%s/%s", dir, de->d_name);
			break;
		}
	}
	closedir(d);
	assert_true(path[0] != '\0');
}

static size_t count_packs(const fixture *f)
{
	char dir[2048];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/packs", f->store);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "pack-", 5) == 0;
	closedir(d);
	return n;
}

static void put_chunk(fixture *f, const void *data, size_t len, unsigned char id[32],
                      int expect_new)
{
	int was_new = -1;

	sluice__b2(id, data, len);
	assert_int_equal(sluice_chunkstore__put(f->cs, id, data, len, &was_new), 0);
	assert_int_equal(was_new, expect_new);
}

static void test_chunkstore__put_get_has_roundtrip(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(100000, 1), id[32], other[32];
	sluice_buf b = {0};

	put_chunk(f, a, 100000, id, 1);
	/* Visible to this process before commit... */
	assert_int_equal(sluice_chunkstore__has(f->cs, id), 1);
	assert_int_equal(sluice_chunkstore__get(f->cs, id, &b), 0);
	assert_int_equal(b.len, 100000);
	assert_memory_equal(b.ptr, a, 100000);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	/* ...and after commit and reopening. */
	reopen(f);
	assert_int_equal(sluice_chunkstore__has(f->cs, id), 1);
	assert_int_equal(sluice_chunkstore__get(f->cs, id, &b), 0);
	assert_int_equal(b.len, 100000);
	assert_memory_equal(b.ptr, a, 100000);
	sluice__b2(other, "nope", 4);
	assert_int_equal(sluice_chunkstore__has(f->cs, other), 0);
	assert_int_equal(sluice_chunkstore__get(f->cs, other, &b), SLUICE_ENOTFOUND);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "not stored"));
	/* An empty chunk is a chunk too. */
	put_chunk(f, "", 0, other, 1);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	assert_int_equal(sluice_chunkstore__get(f->cs, other, &b), 0);
	assert_int_equal(b.len, 0);
	/* Commit with nothing put is a no-op. */
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	assert_int_equal(count_packs(f), 2);
	sluice_buf__dispose(&b);
	free(a);
}

static void test_chunkstore__put_refuses_wrong_id(void **state)
{
	fixture *f = *state;
	unsigned char id[32];

	sluice__b2(id, "abc", 3);
	assert_int_equal(sluice_chunkstore__put(f->cs, id, "abd", 3, NULL), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "not the BLAKE2b-256"));
	assert_int_equal(sluice_chunkstore__has(f->cs, id), 0);
}

static void test_chunkstore__dedup(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(70000, 2), *rep, id[32];
	sluice_manifest m;
	sluice_ingest_stats st;
	struct stat sb;
	char pack[4096];
	size_t i;

	put_chunk(f, a, 70000, id, 1);
	put_chunk(f, a, 70000, id, 0); /* same ingest, in the open pack */
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	put_chunk(f, a, 70000, id, 0); /* now from the index */
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	assert_int_equal(count_packs(f), 1);
	first_pack(f, pack);
	assert_int_equal(stat(pack, &sb), 0);
	assert_int_equal(sb.st_size, SLUICE_PACK_HDR + SLUICE_PACK_REC_HDR + 70000 +
	                                     SLUICE_PACK_IDX_ENT + SLUICE_PACK_FOOTER);
	assert_int_equal(sb.st_mode & 0777, 0444);

	/* A file of 8 identical 64 KiB pieces stores one chunk. */
	rep = malloc(8 * 65536);
	assert_non_null(rep);
	for (i = 0; i < 8; i++)
		memcpy(rep + i * 65536, a, 65536);
	sluice_region r = {0, 8 * 65536, 0};
	assert_int_equal(ingest_bytes(f, &m, &st, rep, 8 * 65536, &r, 1), 0);
	assert_int_equal(st.chunks, 8);
	assert_int_equal(m.nchunks, 8);
	assert_int_equal(st.new_chunks, 1);
	assert_int_equal(st.new_bytes, 65536);
	assert_int_equal(st.bytes_in, 8 * 65536);
	sluice_manifest__dispose(&m);
	/* Again: nothing new. */
	assert_int_equal(ingest_bytes(f, &m, &st, rep, 8 * 65536, &r, 1), 0);
	assert_int_equal(st.new_chunks, 0);
	assert_int_equal(st.new_bytes, 0);
	sluice_manifest__dispose(&m);
	free(rep);
	free(a);
}

static void check_roundtrip(fixture *f, const unsigned char *data, size_t len,
                            const sluice_region *r, size_t nr)
{
	unsigned char want[32];
	sluice_manifest m;
	sluice_ingest_stats st;
	tu_run_result res;
	char hex[65], path[4096];
	unsigned char *back;
	size_t backlen, i;
	uint64_t sum = 0;
	int error;

	assert_int_equal(ingest_bytes(f, &m, &st, data, len, r, nr), 0);
	assert_int_equal(m.size, len);
	assert_int_equal(st.chunks, m.nchunks);
	assert_int_equal(st.new_chunks, m.nchunks); /* random data: no repeats */
	for (i = 0; i < m.nchunks; i++) {
		assert_true(m.chunks[i].len > 0 && m.chunks[i].len <= SLUICE_CDC_MAX);
		sum += m.chunks[i].len;
	}
	assert_int_equal(sum, len);
	crypto_generichash(want, 32, data, len, NULL, 0);
	assert_memory_equal(m.b2, want, 32);
	/* The same digest coreutils computes. */
	snprintf(path, sizeof(path), "%s/input.bin", f->dir);
	res = tu_sh(NULL, "b2sum -l 256 '%s'", path);
	assert_int_equal(res.status, 0);
	sluice__hex(hex, m.b2, 32);
	assert_memory_equal(res.out, hex, 64);
	tu_run_dispose(&res);

	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	reopen(f);
	back = materialize(f, &m, &backlen, &error);
	assert_int_equal(error, 0);
	assert_non_null(back);
	assert_int_equal(backlen, len);
	assert_memory_equal(back, data, len);
	free(back);
	sluice_manifest__dispose(&m);
}

static void test_chunkstore__ingest_cdc_roundtrip(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(3 << 20, 3);
	unsigned threads[] = {1, 2, 4};
	size_t t;

	for (t = 0; t < 3; t++) {
		sluice_ctx_set_threads(f->ctx, threads[t]);
		check_roundtrip(f, a, 3 << 20, NULL, 0);
		tu_rmtree(f->store);
		reopen(f);
	}
	sluice_ctx_set_threads(f->ctx, 0);
	free(a);
}

static void test_chunkstore__ingest_fixed_regions_roundtrip(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(3 << 20, 4);
	/* A header region, a CDC region, a fixed region with a short tail, an empty one. */
	sluice_region r[] = {{0, 1000, 0},
	                     {1000, 1 << 20, 1},
	                     {1000 + (1 << 20), (2 << 20) - 1000, 0},
	                     {3 << 20, 0, 0}};

	check_roundtrip(f, a, 3 << 20, r, 4);
	free(a);
}

static void test_chunkstore__ingest_empty_file(void **state)
{
	fixture *f = *state;
	unsigned char want[32];
	sluice_manifest m;
	sluice_ingest_stats st;
	size_t len;
	int error;
	unsigned char *back;

	assert_int_equal(ingest_bytes(f, &m, &st, (const unsigned char *)"", 0, NULL, 0), 0);
	assert_int_equal(m.nchunks, 0);
	assert_int_equal(m.size, 0);
	crypto_generichash(want, 32, (const unsigned char *)"", 0, NULL, 0);
	assert_memory_equal(m.b2, want, 32);
	back = materialize(f, &m, &len, &error);
	assert_int_equal(error, 0);
	assert_int_equal(len, 0);
	free(back);
	sluice_manifest__dispose(&m);
}

static void test_chunkstore__cdc_boundary_stability(void **state)
{
	fixture *f = *state;
	size_t n = 4 << 20;
	unsigned char *a = random_bytes(n, 5), *b = malloc(n + 100);
	sluice_manifest m;
	sluice_ingest_stats st;

	assert_non_null(b);
	memcpy(b, a, n / 2);
	memset(b + n / 2, 'x', 100);
	memcpy(b + n / 2 + 100, a + n / 2, n - n / 2);
	assert_int_equal(ingest_bytes(f, &m, &st, a, n, NULL, 0), 0);
	assert_true(m.nchunks > 30 && m.nchunks < 200); /* ~64 KiB average */
	sluice_manifest__dispose(&m);
	assert_int_equal(ingest_bytes(f, &m, &st, b, n + 100, NULL, 0), 0);
	assert_true(st.new_bytes < n / 10);
	assert_true(st.new_chunks >= 1 && st.new_chunks <= 3);
	sluice_manifest__dispose(&m);
	free(a);
	free(b);
}

static void test_chunkstore__fixed_inplace_change(void **state)
{
	fixture *f = *state;
	size_t n = 2 << 20;
	unsigned char *a = random_bytes(n, 6);
	sluice_region r = {0, 2 << 20, 0};
	sluice_manifest m;
	sluice_ingest_stats st;

	assert_int_equal(ingest_bytes(f, &m, &st, a, n, &r, 1), 0);
	assert_int_equal(m.nchunks, 32);
	sluice_manifest__dispose(&m);
	memset(a + 100000, 0x5a, 1024); /* inside one 64 KiB piece */
	assert_int_equal(ingest_bytes(f, &m, &st, a, n, &r, 1), 0);
	assert_int_equal(st.new_chunks, 1);
	sluice_manifest__dispose(&m);
	memset(a + 3 * 65536 - 512, 0xa5, 1024); /* straddling two */
	assert_int_equal(ingest_bytes(f, &m, &st, a, n, &r, 1), 0);
	assert_int_equal(st.new_chunks, 2);
	sluice_manifest__dispose(&m);
	free(a);
}

static void test_chunkstore__regions_must_tile(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(1000, 7);
	sluice_region gap[] = {{0, 400, 1}, {500, 500, 1}};
	sluice_region shortr[] = {{0, 400, 1}, {400, 500, 1}};
	sluice_region over[] = {{0, 400, 1}, {400, 700, 1}};
	sluice_manifest m;

	assert_int_equal(ingest_bytes(f, &m, NULL, a, 1000, gap, 2), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "region 1 starts at 500"));
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "input.bin"));
	assert_int_equal(ingest_bytes(f, &m, NULL, a, 1000, shortr, 2), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "cover 900 bytes of 1000"));
	assert_int_equal(ingest_bytes(f, &m, NULL, a, 1000, over, 2), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "past the end"));
	assert_int_equal(ingest_bytes(f, &m, NULL, a, 1000, gap, 0), SLUICE_EINVALID);
	{
		/* A size larger than the file is refused before mapping. */
		char path[4096];
		int fd;
		write_file(f, "short.bin", a, 500, path);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(
		        sluice_chunkstore__ingest(f->cs, &m, NULL, fd, 1000, NULL, 0, "short.bin"),
		        SLUICE_EINVALID);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "short.bin: file has 500 bytes"));
		close(fd);
	}
	assert_int_equal(m.nchunks, 0);
	assert_int_equal(count_packs(f), 0);
	free(a);
}

static void collect_ids(fixture *f, const sluice_manifest *m, int *has)
{
	size_t i;

	for (i = 0; i < m->nchunks; i++)
		has[i] = sluice_chunkstore__has(f->cs, m->chunks[i].id);
}

static void test_chunkstore__reindex_after_index_loss(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(1 << 20, 8), absent[32];
	sluice_manifest m;
	char idx[4096];
	int before[64], after[64];
	uint64_t n = 0;
	size_t i;

	assert_int_equal(ingest_bytes(f, &m, NULL, a, 1 << 20, NULL, 0), 0);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	assert_true(m.nchunks <= 64);
	collect_ids(f, &m, before);
	sluice_chunkstore__free(f->cs);
	f->cs = NULL;
	snprintf(idx, sizeof(idx), "%s/index", f->store);
	tu_rmtree(idx);
	assert_int_equal(sluice_chunkstore__open(&f->cs, f->ctx, f->store), 0);
	for (i = 0; i < m.nchunks; i++)
		assert_int_equal(sluice_chunkstore__has(f->cs, m.chunks[i].id), 0);
	assert_int_equal(sluice_chunkstore__reindex(f->cs, &n), 0);
	assert_int_equal(n, m.nchunks);
	collect_ids(f, &m, after);
	for (i = 0; i < m.nchunks; i++) {
		assert_int_equal(before[i], 1);
		assert_int_equal(after[i], before[i]);
	}
	sluice__b2(absent, "absent", 6);
	assert_int_equal(sluice_chunkstore__has(f->cs, absent), 0);
	assert_int_equal(sluice_chunkstore__verify(f->cs, NULL, NULL), 0);
	sluice_manifest__dispose(&m);
	free(a);
}

struct lines {
	char text[8192];
	int n;
};

static void report(void *data, const char *problem)
{
	struct lines *l = data;
	size_t k = strlen(l->text);

	snprintf(l->text + k, sizeof(l->text) - k, "%s\n", problem);
	l->n++;
}

static void test_chunkstore__verify_detects_flipped_byte(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(300000, 9), id[32], c;
	struct lines l = {{0}, 0};
	sluice_manifest m;
	sluice_buf b = {0};
	char pack[4096];
	size_t len;
	int fd, error;
	unsigned char *back;

	assert_int_equal(ingest_bytes(f, &m, NULL, a, 300000, NULL, 0), 0);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	assert_int_equal(sluice_chunkstore__verify(f->cs, report, &l), 0);
	assert_int_equal(l.n, 0);

	first_pack(f, pack);
	assert_int_equal(chmod(pack, 0644), 0);
	fd = open(pack, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, id, 32, SLUICE_PACK_HDR), 32);
	assert_int_equal(pread(fd, &c, 1, SLUICE_PACK_HDR + SLUICE_PACK_REC_HDR + 1000), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, SLUICE_PACK_HDR + SLUICE_PACK_REC_HDR + 1000), 1);
	close(fd);

	assert_int_equal(sluice_chunkstore__verify(f->cs, report, &l), SLUICE_ECORRUPT);
	assert_int_equal(l.n, 1);
	assert_non_null(strstr(l.text, "record at offset 12: id mismatch"));
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "1 problem"));
	assert_int_equal(sluice_chunkstore__get(f->cs, id, &b), SLUICE_ECORRUPT);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "not the chunk id"));
	back = materialize(f, &m, &len, &error);
	assert_int_equal(error, SLUICE_ECORRUPT);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "out.bin: chunk 0"));
	free(back);
	sluice_buf__dispose(&b);
	sluice_manifest__dispose(&m);
	free(a);
}

static void test_chunkstore__materialize_refuses_bad_manifest(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(200000, 10), *back;
	sluice_manifest m;
	size_t len;
	int error;

	assert_int_equal(ingest_bytes(f, &m, NULL, a, 200000, NULL, 0), 0);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	m.b2[0] ^= 1;
	back = materialize(f, &m, &len, &error);
	assert_int_equal(error, SLUICE_ECORRUPT);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "whole-file BLAKE2b-256"));
	free(back);
	m.b2[0] ^= 1;
	m.size++;
	back = materialize(f, &m, &len, &error);
	assert_int_equal(error, SLUICE_ECORRUPT);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "add up to 200000"));
	free(back);
	m.size--;
	m.chunks[1].id[5] ^= 1;
	back = materialize(f, &m, &len, &error);
	assert_int_equal(error, SLUICE_ENOTFOUND);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "out.bin: chunk 1"));
	free(back);
	sluice_manifest__dispose(&m);
	free(a);
}

static void test_chunkstore__reindex_recovers_unsealed_pack(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(3 * 50000, 11), id[3][32];
	struct lines l = {{0}, 0};
	sluice_buf b = {0};
	uint64_t n = 0;
	int i;

	sluice_manifest m;
	pid_t pid;
	int status;

	for (i = 0; i < 3; i++)
		sluice__b2(id[i], a + i * 50000, 50000);
	/* A writer dies after ingesting (records written), before commit. */
	sluice_chunkstore__free(f->cs);
	f->cs = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sluice_ctx *ctx;
		sluice_chunkstore *cs;
		sluice_region r = {0, 3 * 50000, 0};
		char path[4096];
		int fd;
		if (sluice_ctx_new(&ctx) < 0 || sluice_chunkstore__open(&cs, ctx, f->store) < 0)
			_exit(2);
		/* Fixed 64 KiB pieces; the test only needs some records on disk. */
		write_file(f, "child.bin", a, 3 * 50000, path);
		fd = open(path, O_RDONLY);
		_exit(sluice_chunkstore__ingest(cs, &m, NULL, fd, 3 * 50000, &r, 1, "c") < 0 ? 3
		                                                                             : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(sluice_chunkstore__open(&f->cs, f->ctx, f->store), 0);
	assert_int_equal(count_packs(f), 1);
	assert_int_equal(sluice_chunkstore__verify(f->cs, report, &l), SLUICE_ECORRUPT);
	assert_non_null(strstr(l.text, "no trailer"));
	assert_int_equal(sluice_chunkstore__reindex(f->cs, &n), 0);
	assert_int_equal(n, 3); /* 65536 + 65536 + 18928 bytes */
	m.nchunks = 0;
	assert_int_equal(
	        ingest_bytes(f, &m, NULL, a, 3 * 50000, &(sluice_region){0, 3 * 50000, 0}, 1), 0);
	assert_int_equal(m.nchunks, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(sluice_chunkstore__has(f->cs, m.chunks[i].id), 1);
		assert_int_equal(sluice_chunkstore__get(f->cs, m.chunks[i].id, &b), 0);
		assert_memory_equal(b.ptr, a + i * 65536, m.chunks[i].len);
	}
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&b);
	free(a);
}

static void test_chunkstore__reindex_recovers_truncated_pack(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(3 * 50000, 12), id[3][32];
	char pack[4096];
	uint64_t n = 0;
	int i;

	for (i = 0; i < 3; i++)
		put_chunk(f, a + i * 50000, 50000, id[i], 1);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	first_pack(f, pack);
	/* Lose the trailer and half of the last record: a torn write. */
	assert_int_equal(chmod(pack, 0644), 0);
	assert_int_equal(
	        truncate(pack, SLUICE_PACK_HDR + 2 * (SLUICE_PACK_REC_HDR + 50000) + 20000), 0);
	assert_int_equal(sluice_chunkstore__reindex(f->cs, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sluice_chunkstore__has(f->cs, id[0]), 1);
	assert_int_equal(sluice_chunkstore__has(f->cs, id[1]), 1);
	assert_int_equal(sluice_chunkstore__has(f->cs, id[2]), 0);
	/* The lost chunk can be stored again, in a new pack. */
	put_chunk(f, a + 2 * 50000, 50000, id[2], 1);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	assert_int_equal(sluice_chunkstore__has(f->cs, id[2]), 1);
	free(a);
}

struct fault {
	int fail_fsync;
	int fail_write;
	int hits;
};

static int fault_hook(void *data, sluice_fault_op op, const char *what)
{
	struct fault *fl = data;

	if ((op == SLUICE_FAULT_FSYNC && fl->fail_fsync) ||
	    (op == SLUICE_FAULT_WRITE && fl->fail_write && strstr(what, ".pack"))) {
		fl->hits++;
		return 1;
	}
	return 0;
}

static void test_chunkstore__commit_fsync_fault_leaves_no_index_entry(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(40000, 13), id[32];
	struct fault fl = {1, 0, 0};

	put_chunk(f, a, 40000, id, 1);
	sluice_ctx_set_fault_hook(f->ctx, fault_hook, &fl);
	assert_int_equal(sluice_chunkstore__commit(f->cs), SLUICE_EIO);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "cannot fsync"));
	assert_int_equal(fl.hits, 1);
	sluice_ctx_set_fault_hook(f->ctx, NULL, NULL);
	assert_int_equal(sluice_chunkstore__has(f->cs, id), 0);
	reopen(f);
	assert_int_equal(sluice_chunkstore__has(f->cs, id), 0);
	assert_int_equal(count_packs(f), 0); /* the unsynced pack was discarded */
	free(a);
}

static void test_chunkstore__write_fault_rolls_back(void **state)
{
	fixture *f = *state;
	unsigned char *a = random_bytes(2 << 20, 14), id[32];
	struct fault fl = {0, 1, 0};
	sluice_manifest m;
	sluice_buf b = {0};

	put_chunk(f, a, 1000, id, 1);
	sluice_ctx_set_fault_hook(f->ctx, fault_hook, &fl);
	assert_int_equal(ingest_bytes(f, &m, NULL, a, 2 << 20, NULL, 0), SLUICE_EIO);
	assert_true(fl.hits >= 1);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "cannot write"));
	sluice_ctx_set_fault_hook(f->ctx, NULL, NULL);
	/* The earlier put shared the failed pack: commit says so and stores nothing. */
	assert_int_equal(sluice_chunkstore__commit(f->cs), SLUICE_EIO);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "an earlier write failed"));
	assert_int_equal(sluice_chunkstore__has(f->cs, id), 0);
	assert_int_equal(count_packs(f), 0);
	/* The store works again for the next pack. */
	put_chunk(f, a, 1000, id, 1);
	assert_int_equal(sluice_chunkstore__commit(f->cs), 0);
	assert_int_equal(sluice_chunkstore__get(f->cs, id, &b), 0);
	assert_memory_equal(b.ptr, a, 1000);
	assert_int_equal(sluice_chunkstore__verify(f->cs, NULL, NULL), 0);
	sluice_buf__dispose(&b);
	free(a);
}

static void test_chunkstore__cdc_chunk_sizes(void **state)
{
	sluice_cdc c;
	unsigned char *a = random_bytes(16 << 20, 15);
	size_t off = 0, n = 0, len, min = SIZE_MAX, max = 0;

	sluice_cdc__init(&c);
	assert_true(c.gear[0] != c.gear[1]);
	while (off < (16u << 20)) {
		len = sluice_cdc__cut(&c, a + off, (16u << 20) - off);
		assert_true(len > 0);
		if (off + len < (16u << 20)) {
			assert_true(len >= SLUICE_CDC_MIN && len <= SLUICE_CDC_MAX);
			min = len < min ? len : min;
			max = len > max ? len : max;
		}
		off += len;
		n++;
	}
	/* Average within 50%..150% of 64 KiB. */
	assert_true(n > (16u << 20) / (96u << 10) && n < (16u << 20) / (32u << 10));
	assert_true(min < max);
	free(a);
}

/* ---- manifests ---- */

static void test_chunkstore__manifest_roundtrip(void **state)
{
	fixture *f = *state;
	sluice_manifest m = {0}, p;
	sluice_buf b = {0}, b2 = {0};
	size_t i;

	m.size = 100 + 200 + 300;
	sluice__b2(m.b2, "whole", 5);
	m.nchunks = 3;
	m.chunks = calloc(3, sizeof(*m.chunks));
	assert_non_null(m.chunks);
	for (i = 0; i < 3; i++) {
		sluice__b2(m.chunks[i].id, &i, sizeof(i));
		m.chunks[i].len = 100 * (i + 1);
	}
	assert_int_equal(sluice_manifest__encode(f->ctx, &m, &b), 0);
	assert_true(strncmp((char *)b.ptr, "sluice-manifest 1\nsize 600\nblake2b ", 35) == 0);
	assert_int_equal(sluice_manifest__parse(f->ctx, &p, b.ptr, b.len, "m"), 0);
	assert_int_equal(p.size, 600);
	assert_int_equal(p.nchunks, 3);
	assert_memory_equal(p.b2, m.b2, 32);
	for (i = 0; i < 3; i++) {
		assert_memory_equal(p.chunks[i].id, m.chunks[i].id, 32);
		assert_int_equal(p.chunks[i].len, m.chunks[i].len);
	}
	assert_int_equal(sluice_manifest__encode(f->ctx, &p, &b2), 0);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.ptr, b.ptr, b.len);
	/* Inconsistent manifests are not encoded. */
	m.size++;
	b2.len = 0;
	assert_int_equal(sluice_manifest__encode(f->ctx, &m, &b2), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "add up to 600"));
	sluice_manifest__dispose(&p);
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&b);
	sluice_buf__dispose(&b2);
}

static void test_chunkstore__manifest_empty_file(void **state)
{
	fixture *f = *state;
	static const char text[] =
	        "sluice-manifest 1\nsize 0\nblake2b "
	        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8\n";
	sluice_manifest p;

	assert_int_equal(
	        sluice_manifest__parse(f->ctx, &p, (const unsigned char *)text, strlen(text), "e"),
	        0);
	assert_int_equal(p.nchunks, 0);
	assert_int_equal(p.size, 0);
	sluice_manifest__dispose(&p);
}

static void test_chunkstore__manifest_malformed_refused(void **state)
{
	fixture *f = *state;
#define H64 "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
	static const struct {
		const char *text, *msg;
	} cases[] = {
	        {"", "line 1: manifest does not end"},
	        {"sluice-manifest 2\nsize 0\nblake2b " H64 "\n", "line 1: expected"},
	        {"sluice-manifest 1\nsize 0\nblake2b " H64, "line 3: manifest does not end"},
	        {"sluice-manifest 1\nsize 00\nblake2b " H64 "\n", "line 2: expected 'size"},
	        {"sluice-manifest 1\nsize +5\nblake2b " H64 "\n", "line 2: expected 'size"},
	        {"sluice-manifest 1\nsize  5\nblake2b " H64 "\n", "line 2: expected 'size"},
	        {"sluice-manifest 1\nsize 18446744073709551616\nblake2b " H64 "\n", "line 2"},
	        {"sluice-manifest 1\nsize 0\nblake2b " H64 "\r\n", "line 3: expected 'blake2b"},
	        {"sluice-manifest 1\nsize 0\nblake2b "
	         "0E5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8\n",
	         "line 3: expected 'blake2b"},
	        {"sluice-manifest 1\nsize 5\nblake2b " H64 "\nchunk " H64 " 5 \n",
	         "line 4: expected"},
	        {"sluice-manifest 1\nsize 5\nblake2b " H64 "\nchunk " H64 " 6\n",
	         "line 4: chunks exceed"},
	        {"sluice-manifest 1\nsize 5\nblake2b " H64 "\nchunk " H64 " 0\n",
	         "line 4: chunk length 0"},
	        {"sluice-manifest 1\nsize 9\nblake2b " H64 "\nchunk " H64 " 5\nchunk " H64 " 3\n",
	         "line 5: chunks add up to 8"},
	        {"sluice-manifest 1\nsize 5\nblake2b " H64 "\nchunk " H64 " 5\n\n",
	         "line 5: expected"},
	        {"sluice-manifest 1\nsize 5\nblake2b " H64 "\nblob " H64 " 5\n",
	         "line 4: expected"},
	        {"sluice-manifest 1\nsize 5\n", "line 3: manifest is truncated"},
	};
	sluice_manifest p;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int error = sluice_manifest__parse(f->ctx, &p, (const unsigned char *)cases[i].text,
		                                   strlen(cases[i].text), "weights.mf");
		if (error != SLUICE_EINVALID || !strstr(sluice_ctx_errmsg(f->ctx), cases[i].msg) ||
		    !strstr(sluice_ctx_errmsg(f->ctx), "weights.mf"))
			fail_msg("case %zu: error %d, message '%s'", i, error,
			         sluice_ctx_errmsg(f->ctx));
		assert_null(p.chunks);
	}
	static const char trailing[] = "sluice-manifest 1\nsize 0\nblake2b " H64 "\nx";
	static const char nul[] = "sluice-manifest 1\0\nsize 0\nblake2b " H64 "\n";

	assert_int_equal(sluice_manifest__parse(f->ctx, &p, (const unsigned char *)trailing,
	                                        sizeof(trailing) - 1, "t"),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "line 4: manifest does not end"));
	assert_int_equal(sluice_manifest__parse(f->ctx, &p, (const unsigned char *)nul,
	                                        sizeof(nul) - 1, "t"),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "line 1: expected"));
#undef H64
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_chunkstore__put_get_has_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__put_refuses_wrong_id, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__dedup, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__ingest_cdc_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__ingest_fixed_regions_roundtrip,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__ingest_empty_file, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__cdc_boundary_stability, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__fixed_inplace_change, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__regions_must_tile, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__reindex_after_index_loss, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__verify_detects_flipped_byte, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__materialize_refuses_bad_manifest,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__reindex_recovers_unsealed_pack,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__reindex_recovers_truncated_pack,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_chunkstore__commit_fsync_fault_leaves_no_index_entry, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__write_fault_rolls_back, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__cdc_chunk_sizes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__manifest_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__manifest_empty_file, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_chunkstore__manifest_malformed_refused, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
