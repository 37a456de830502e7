/*
 * core/chunkstore.c - content-addressed chunk storage: pack files written
 * append-only by one process at a time, an LMDB index derived from them,
 * parallel chunking and hashing of large files, and the manifest format.
 *
 * Packs are sealed per commit: sluice_chunkstore__commit writes the
 * trailer, makes the file read-only (0444: a sealed pack never changes
 * again; the mode is a guard against accidents, not a security boundary),
 * fsyncs it and closes it, and the next put opens a new pack. While a pack
 * is being written its writer holds flock(LOCK_EX) on it, so verify and
 * reindex in other processes can tell an unsealed pack that is still being
 * written from one whose writer died.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sync_file_range */
#endif
#include "chunkstore.h"
#include "cdc.h"
#include "pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PACK_NAME_LEN 16     /* hex digits of the 8 random bytes */
#define PACK_FILE_LEN 26     /* "pack-" + 16 hex + ".pack" */
#define LOC_LEN 32           /* LMDB value: pack name, offset, length */
#define FD_CACHE 8           /* read descriptors kept open */
#define STAGE_CAP (8u << 20) /* bytes per batched write */
#define IOV_BATCH 1024       /* IOV_MAX on Linux */
#define MANIFEST_MAX_CHUNKS ((size_t)1 << 24)
#define REINDEX_BATCH 200000 /* puts per LMDB write txn during reindex */

typedef struct {
	char pack[PACK_NAME_LEN + 1];
	uint64_t off, len;
} chunk_loc;

struct pack_fd {
	char name[PACK_NAME_LEN + 1];
	int fd;
};

struct sluice_chunkstore {
	sluice_ctx *ctx;
	char dir[PATH_MAX], packdir[PATH_MAX], indexdir[PATH_MAX];
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *rtxn; /* reset between uses; renewed for each short read */

	/* The pack being written (wfd < 0: none). */
	int wfd;
	int broken; /* a write failed and could not be rolled back */
	char wname[PACK_NAME_LEN + 1];
	char wpath[PATH_MAX];
	uint64_t wend;     /* bytes written plus queued */
	uint64_t wflushed; /* bytes known to be in the file */
	sluice_pack_entry *ents;
	size_t nents, capents;
	uint32_t *set; /* open addressing over ents: index + 1, 0 = empty */
	size_t setcap;

	/* Queued writes: record headers (and small copied chunks) in stage. */
	struct iovec iov[IOV_BATCH];
	int niov;
	unsigned char *stage;
	size_t stagelen;

	struct pack_fd cache[FD_CACHE];
	unsigned cache_next;
};

/* ---- errors and paths ---------------------------------------------------- */

static int lmdb_error(sluice_chunkstore *cs, int rc, const char *what)
{
	int code;

	switch (rc) {
	case MDB_NOTFOUND:
		code = SLUICE_ENOTFOUND;
		break;
	case ENOMEM:
		code = SLUICE_ENOMEM;
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		code = SLUICE_ECORRUPT;
		break;
	default:
		code = SLUICE_EIO;
	}
	return sluice_ctx__error(cs->ctx, code, "chunk index %s: %s: %s", cs->indexdir, what,
	                         mdb_strerror(rc));
}

static void pack_path(char out[PATH_MAX], const sluice_chunkstore *cs, const char *name)
{
	/* Cannot truncate: open() caps the store path at PATH_MAX - 64. */
	if (snprintf(out, PATH_MAX, "%s/pack-%s.pack", cs->packdir, name) >= PATH_MAX)
		out[0] = '\0';
}

static void id_hex(char out[SLUICE_B2_HEX], const unsigned char *id)
{
	sluice__hex(out, id, SLUICE_B2_LEN);
}

static int is_pack_name(const char *s, char name[PACK_NAME_LEN + 1])
{
	size_t i;

	if (strlen(s) != PACK_FILE_LEN || memcmp(s, "pack-", 5) != 0 ||
	    strcmp(s + 5 + PACK_NAME_LEN, ".pack") != 0)
		return 0;
	for (i = 0; i < PACK_NAME_LEN; i++) {
		char c = s[5 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	memcpy(name, s + 5, PACK_NAME_LEN);
	name[PACK_NAME_LEN] = '\0';
	return 1;
}

static void loc_encode(unsigned char out[LOC_LEN], const char *pack, uint64_t off, uint64_t len)
{
	memcpy(out, pack, PACK_NAME_LEN);
	sluice__st64(out + 16, off);
	sluice__st64(out + 24, len);
}

static int loc_decode(chunk_loc *loc, const MDB_val *v)
{
	const unsigned char *p = v->mv_data;
	char name[PACK_FILE_LEN + 1];

	if (v->mv_size != LOC_LEN)
		return -1;
	memcpy(name, "pack-", 5);
	memcpy(name + 5, p, PACK_NAME_LEN);
	memcpy(name + 5 + PACK_NAME_LEN, ".pack", 6);
	if (!is_pack_name(name, loc->pack))
		return -1;
	loc->off = sluice__le64(p + 16);
	loc->len = sluice__le64(p + 24);
	return 0;
}

/* ---- LMDB ---------------------------------------------------------------- */

static int rtxn_begin(sluice_chunkstore *cs, MDB_txn **out)
{
	int rc;

	if (cs->rtxn)
		rc = mdb_txn_renew(cs->rtxn);
	else
		rc = mdb_txn_begin(cs->env, NULL, MDB_RDONLY, &cs->rtxn);
	if (rc != 0)
		return lmdb_error(cs, rc, "cannot begin read transaction");
	*out = cs->rtxn;
	return SLUICE_OK;
}

static void rtxn_end(sluice_chunkstore *cs)
{
	mdb_txn_reset(cs->rtxn);
}

/* 0 and *loc, SLUICE_ENOTFOUND (no message set), or an LMDB error. */
static int index_lookup(sluice_chunkstore *cs, MDB_txn *txn, const unsigned char *id,
                        chunk_loc *loc)
{
	MDB_val k = {SLUICE_B2_LEN, (void *)id}, v;
	char hex[SLUICE_B2_HEX];
	int rc;

	if ((rc = mdb_get(txn, cs->dbi, &k, &v)) == MDB_NOTFOUND)
		return SLUICE_ENOTFOUND;
	if (rc != 0)
		return lmdb_error(cs, rc, "cannot look up chunk");
	if (loc && loc_decode(loc, &v) < 0) {
		id_hex(hex, id);
		return sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
		                         "chunk index %s: entry for chunk %s is malformed",
		                         cs->indexdir, hex);
	}
	return SLUICE_OK;
}

/* ---- the pending set of the open pack ------------------------------------ */

static size_t id_slot(const unsigned char *id, size_t cap)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h)); /* ids are uniformly random already */
	return (size_t)h & (cap - 1);
}

static long set_find(const sluice_chunkstore *cs, const unsigned char *id)
{
	size_t i;

	if (!cs->setcap)
		return -1;
	for (i = id_slot(id, cs->setcap);; i = (i + 1) & (cs->setcap - 1)) {
		uint32_t v = cs->set[i];
		if (!v)
			return -1;
		if (memcmp(cs->ents[v - 1].id, id, SLUICE_B2_LEN) == 0)
			return (long)(v - 1);
	}
}

static void set_insert(sluice_chunkstore *cs, size_t idx)
{
	size_t i;

	for (i = id_slot(cs->ents[idx].id, cs->setcap); cs->set[i]; i = (i + 1) & (cs->setcap - 1))
		;
	cs->set[i] = (uint32_t)(idx + 1);
}

static int set_rebuild(sluice_chunkstore *cs, size_t cap)
{
	uint32_t *set = sluice__calloc(cs->ctx, cap, sizeof(*set));
	size_t i;

	if (!set)
		return SLUICE_ENOMEM;
	free(cs->set);
	cs->set = set;
	cs->setcap = cap;
	for (i = 0; i < cs->nents; i++)
		set_insert(cs, i);
	return SLUICE_OK;
}

static int add_entry(sluice_chunkstore *cs, const unsigned char *id, uint64_t off, uint64_t len)
{
	int error;

	if (cs->nents == cs->capents) {
		size_t cap = cs->capents ? cs->capents * 2 : 1024;
		sluice_pack_entry *e;
		if (cap > UINT32_MAX - 1)
			return sluice_ctx__error(cs->ctx, SLUICE_EINVALID,
			                         "too many chunks in one pack");
		if (!(e = sluice__realloc(cs->ctx, cs->ents, cap * sizeof(*e))))
			return SLUICE_ENOMEM;
		cs->ents = e;
		cs->capents = cap;
	}
	if ((cs->nents + 1) * 2 > cs->setcap &&
	    (error = set_rebuild(cs, cs->setcap ? cs->setcap * 2 : 4096)) < 0)
		return error;
	memcpy(cs->ents[cs->nents].id, id, SLUICE_B2_LEN);
	cs->ents[cs->nents].off = off;
	cs->ents[cs->nents].len = len;
	set_insert(cs, cs->nents++);
	return SLUICE_OK;
}

/* ---- writing the open pack ----------------------------------------------- */

/*
 * Forget the open pack. With discard, its file is removed too: nothing can
 * refer to an unsealed or unindexed pack (the index never does, and reindex
 * skips packs whose writer holds the lock, as we do until close).
 */
static void abandon_pack(sluice_chunkstore *cs, int discard)
{
	if (cs->wfd >= 0) {
		if (discard)
			unlink(cs->wpath);
		close(cs->wfd);
	}
	cs->wfd = -1;
	cs->broken = 0;
	cs->nents = 0;
	cs->niov = 0;
	cs->stagelen = 0;
	cs->wend = cs->wflushed = 0;
	if (cs->set)
		memset(cs->set, 0, cs->setcap * sizeof(*cs->set));
}

/*
 * pwritev everything queued. libsluice's writes go through the fault hook;
 * io.c has no vectored writer, so the hook is consulted here the same way.
 */
static int flush_queue(sluice_chunkstore *cs)
{
	sluice_ctx *ctx = cs->ctx;
	struct iovec *iov = cs->iov;
	int n = cs->niov, error = SLUICE_OK;
	uint64_t off = cs->wflushed;

	if (n == 0)
		return SLUICE_OK;
	if (ctx->fault && ctx->fault(ctx->fault_data, SLUICE_FAULT_WRITE, cs->wpath)) {
		errno = EIO;
		error = sluice_ctx__oserror(ctx, "cannot write %s", cs->wpath);
		goto fail;
	}
	while (n > 0) {
		ssize_t w = pwritev(cs->wfd, iov, n > IOV_BATCH ? IOV_BATCH : n, (off_t)off);
		size_t left;
		if (w < 0) {
			if (errno == EINTR)
				continue;
			error = sluice_ctx__oserror(ctx, "cannot write %s", cs->wpath);
			goto fail;
		}
		off += (uint64_t)w;
		left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (unsigned char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
#ifdef SYNC_FILE_RANGE_WRITE
	/*
	 * Start writeback of this batch now, without waiting, so the fsync in
	 * commit finds little left to do: disk writes overlap hashing.
	 */
	(void)sync_file_range(cs->wfd, (off_t)cs->wflushed, (off_t)(off - cs->wflushed),
	                      SYNC_FILE_RANGE_WRITE);
#endif
	cs->wflushed = off;
	cs->niov = 0;
	cs->stagelen = 0;
	return SLUICE_OK;
fail:
	/*
	 * Chunks earlier puts reported stored were in this batch: the pack is
	 * done for, and commit must fail so the caller learns of it.
	 */
	cs->niov = 0;
	cs->stagelen = 0;
	cs->broken = 1;
	return error;
}

static int queue(sluice_chunkstore *cs, const void *p, size_t len)
{
	int error;

	if (cs->niov == IOV_BATCH && (error = flush_queue(cs)) < 0)
		return error;
	cs->iov[cs->niov].iov_base = (void *)p;
	cs->iov[cs->niov].iov_len = len;
	cs->niov++;
	cs->wend += len;
	return SLUICE_OK;
}

static int open_pack(sluice_chunkstore *cs)
{
	unsigned char rnd[8];
	int tries, error;

	if (!cs->stage && !(cs->stage = sluice__malloc(cs->ctx, STAGE_CAP)))
		return SLUICE_ENOMEM;
	for (tries = 0; tries < 16; tries++) {
		randombytes_buf(rnd, sizeof(rnd));
		sluice__hex(cs->wname, rnd, sizeof(rnd));
		pack_path(cs->wpath, cs, cs->wname);
		cs->wfd = open(cs->wpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (cs->wfd >= 0 || errno != EEXIST)
			break;
	}
	if (cs->wfd < 0)
		return sluice_ctx__oserror(cs->ctx, "cannot create pack %s", cs->wpath);
	if (flock(cs->wfd, LOCK_EX | LOCK_NB) < 0) {
		error = sluice_ctx__oserror(cs->ctx, "cannot lock pack %s", cs->wpath);
		close(cs->wfd);
		cs->wfd = -1;
		return error;
	}
	cs->wend = cs->wflushed = 0;
	sluice_pack__header(cs->stage);
	cs->stagelen = SLUICE_PACK_HDR;
	return queue(cs, cs->stage, SLUICE_PACK_HDR);
}

/*
 * Queue one record. With copy, the bytes are copied into the stage (or
 * written before returning), since the caller may reuse them; without,
 * they must stay valid until the queue is flushed.
 */
static int append_record(sluice_chunkstore *cs, const unsigned char *id, const void *data,
                         size_t len, int copy)
{
	unsigned char *hdr;
	uint64_t off;
	int error;

	if (cs->broken)
		return sluice_ctx__error(cs->ctx, SLUICE_EIO,
		                         "pack %s is unusable after a failed write", cs->wpath);
	if (cs->wfd < 0 && (error = open_pack(cs)) < 0)
		return error;
	if ((cs->stagelen + SLUICE_PACK_REC_HDR + (copy ? len : 0) > STAGE_CAP ||
	     cs->niov + 2 > IOV_BATCH) &&
	    (error = flush_queue(cs)) < 0)
		return error;
	off = cs->wend;
	hdr = cs->stage + cs->stagelen;
	memcpy(hdr, id, SLUICE_B2_LEN);
	sluice__st64(hdr + 32, len);
	cs->stagelen += SLUICE_PACK_REC_HDR;
	if ((error = queue(cs, hdr, SLUICE_PACK_REC_HDR)) < 0)
		return error;
	if (copy && len <= STAGE_CAP - cs->stagelen) {
		memcpy(cs->stage + cs->stagelen, data, len);
		data = cs->stage + cs->stagelen;
		cs->stagelen += len;
		copy = 0;
	}
	if ((error = queue(cs, data, len)) < 0 || (error = add_entry(cs, id, off, len)) < 0)
		return error;
	if (copy)
		return flush_queue(cs);
	/* Batches of about STAGE_CAP bytes keep write syscalls few and large. */
	if (cs->wend - cs->wflushed >= STAGE_CAP)
		return flush_queue(cs);
	return SLUICE_OK;
}

/* ---- reading records ----------------------------------------------------- */

static int pack_fd(sluice_chunkstore *cs, const char *name, int *out)
{
	char path[PATH_MAX];
	struct pack_fd *slot;
	unsigned i;
	int fd, error;

	if (cs->wfd >= 0 && strcmp(name, cs->wname) == 0) {
		if ((error = flush_queue(cs)) < 0)
			return error;
		*out = cs->wfd;
		return SLUICE_OK;
	}
	for (i = 0; i < FD_CACHE; i++) {
		if (cs->cache[i].fd >= 0 && strcmp(cs->cache[i].name, name) == 0) {
			*out = cs->cache[i].fd;
			return SLUICE_OK;
		}
	}
	pack_path(path, cs, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT, "pack %s is missing",
			                         path);
		return sluice_ctx__oserror(cs->ctx, "cannot open pack %s", path);
	}
	slot = &cs->cache[cs->cache_next++ % FD_CACHE];
	if (slot->fd >= 0)
		close(slot->fd);
	slot->fd = fd;
	memcpy(slot->name, name, PACK_NAME_LEN + 1);
	*out = fd;
	return SLUICE_OK;
}

/*
 * Read the record at loc into buf (header, then bytes at buf->ptr + 40) and
 * check that its header and its bytes' digest are id.
 */
static int read_record(sluice_chunkstore *cs, const chunk_loc *loc, const unsigned char *id,
                       sluice_buf *buf)
{
	unsigned char digest[SLUICE_B2_LEN];
	char hex[SLUICE_B2_HEX], got[SLUICE_B2_HEX], what[PATH_MAX + 64];
	int fd, error;

	id_hex(hex, id);
	if (loc->len > SLUICE_CHUNK_MAX)
		return sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
		                         "chunk %s: index gives an impossible length %llu", hex,
		                         (unsigned long long)loc->len);
	if ((error = pack_fd(cs, loc->pack, &fd)) < 0)
		return error;
	buf->len = 0;
	if ((error = sluice_buf__grow(cs->ctx, buf, SLUICE_PACK_REC_HDR + loc->len)) < 0)
		return error;
	snprintf(what, sizeof(what), "pack-%s.pack (chunk %s at offset %llu)", loc->pack, hex,
	         (unsigned long long)loc->off);
	if ((error = sluice_io__pread_all(cs->ctx, fd, buf->ptr,
	                                  SLUICE_PACK_REC_HDR + (size_t)loc->len, (off_t)loc->off,
	                                  what)) < 0)
		return error;
	buf->len = SLUICE_PACK_REC_HDR + (size_t)loc->len;
	if (memcmp(buf->ptr, id, SLUICE_B2_LEN) != 0 || sluice__le64(buf->ptr + 32) != loc->len)
		return sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
		                         "%s: record header does not match the index", what);
	crypto_generichash(digest, sizeof(digest), buf->ptr + SLUICE_PACK_REC_HDR, loc->len, NULL,
	                   0);
	if (memcmp(digest, id, SLUICE_B2_LEN) != 0) {
		id_hex(got, digest);
		return sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
		                         "%s: bytes hash to %s, not the chunk id", what, got);
	}
	return SLUICE_OK;
}

/* Where a chunk is: the open pack first, then the index. */
static int locate(sluice_chunkstore *cs, const unsigned char *id, chunk_loc *loc)
{
	MDB_txn *txn = NULL;
	long i;
	int error;

	if (cs->wfd >= 0 && (i = set_find(cs, id)) >= 0) {
		memcpy(loc->pack, cs->wname, PACK_NAME_LEN + 1);
		loc->off = cs->ents[i].off;
		loc->len = cs->ents[i].len;
		return SLUICE_OK;
	}
	if ((error = rtxn_begin(cs, &txn)) < 0)
		return error;
	error = index_lookup(cs, txn, id, loc);
	rtxn_end(cs);
	return error;
}

/* ---- open, close, has, put, get, commit ---------------------------------- */

int sluice_chunkstore__open(sluice_chunkstore **out, sluice_ctx *ctx, const char *dir)
{
	sluice_chunkstore *cs;
	MDB_txn *txn = NULL;
	int rc, dead, error, i;

	if (strlen(dir) > PATH_MAX - 64)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "store path too long: %s", dir);
	if (!(cs = sluice__calloc(ctx, 1, sizeof(*cs))))
		return SLUICE_ENOMEM;
	cs->ctx = ctx;
	cs->wfd = -1;
	for (i = 0; i < FD_CACHE; i++)
		cs->cache[i].fd = -1;
	snprintf(cs->dir, sizeof(cs->dir), "%s", dir);
	snprintf(cs->packdir, sizeof(cs->packdir), "%s/packs", dir);
	snprintf(cs->indexdir, sizeof(cs->indexdir), "%s/index", dir);
	if ((error = sluice_io__mkdirs(ctx, cs->packdir, 0755)) < 0 ||
	    (error = sluice_io__mkdirs(ctx, cs->indexdir, 0755)) < 0)
		goto done;
	if ((rc = mdb_env_create(&cs->env)) != 0) {
		error = lmdb_error(cs, rc, "cannot create environment");
		goto done;
	}
	/*
	 * The map is sparse, so a large size costs nothing until used; 16 GiB
	 * holds on the order of 100M chunk entries. MDB_NOTLS because read
	 * transactions are reset and renewed rather than tied to a thread.
	 * Default sync flags: a committed write transaction is durable.
	 */
	if ((rc = mdb_env_set_maxdbs(cs->env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(cs->env, sizeof(size_t) >= 8 ? (size_t)16 << 30
	                                                           : (size_t)1 << 30)) != 0 ||
	    (rc = mdb_env_open(cs->env, cs->indexdir, MDB_NOTLS, 0644)) != 0) {
		error = lmdb_error(cs, rc, "cannot open");
		goto done;
	}
	/* Readers of killed processes would otherwise pin old pages forever. */
	if ((rc = mdb_reader_check(cs->env, &dead)) != 0) {
		error = lmdb_error(cs, rc, "cannot clear stale readers");
		goto done;
	}
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0) {
		txn = NULL;
		error = lmdb_error(cs, rc, "cannot begin write transaction");
		goto done;
	}
	if ((rc = mdb_dbi_open(txn, "chunks", MDB_CREATE, &cs->dbi)) != 0) {
		error = lmdb_error(cs, rc, "cannot open the chunks database");
		goto done;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL; /* commit frees the transaction even when it fails */
	if (rc != 0) {
		error = lmdb_error(cs, rc, "cannot create the chunks database");
		goto done;
	}
	*out = cs;
	cs = NULL;
	error = SLUICE_OK;
done:
	if (txn)
		mdb_txn_abort(txn);
	sluice_chunkstore__free(cs);
	return error;
}

void sluice_chunkstore__free(sluice_chunkstore *cs)
{
	int i;

	if (!cs)
		return;
	abandon_pack(cs, 1);
	for (i = 0; i < FD_CACHE; i++)
		if (cs->cache[i].fd >= 0)
			close(cs->cache[i].fd);
	if (cs->rtxn)
		mdb_txn_abort(cs->rtxn);
	if (cs->env)
		mdb_env_close(cs->env);
	free(cs->ents);
	free(cs->set);
	free(cs->stage);
	free(cs);
}

int sluice_chunkstore__has(sluice_chunkstore *cs, const unsigned char id[SLUICE_B2_LEN])
{
	MDB_txn *txn = NULL;
	int error;

	if (cs->wfd >= 0 && set_find(cs, id) >= 0)
		return 1;
	if ((error = rtxn_begin(cs, &txn)) < 0)
		return error;
	error = index_lookup(cs, txn, id, NULL);
	rtxn_end(cs);
	if (error == SLUICE_ENOTFOUND)
		return 0;
	return error < 0 ? error : 1;
}

int sluice_chunkstore__put(sluice_chunkstore *cs, const unsigned char id[SLUICE_B2_LEN],
                           const void *data, size_t len, int *was_new)
{
	unsigned char digest[SLUICE_B2_LEN];
	char hex[SLUICE_B2_HEX];
	int error;

	if (was_new)
		*was_new = 0;
	id_hex(hex, id);
	if ((uint64_t)len > SLUICE_CHUNK_MAX)
		return sluice_ctx__error(cs->ctx, SLUICE_EINVALID,
		                         "chunk %s: %zu bytes exceeds the %llu-byte limit", hex,
		                         len, (unsigned long long)SLUICE_CHUNK_MAX);
	/* A wrong id would store bytes that no later read could verify. */
	crypto_generichash(digest, sizeof(digest), data, len, NULL, 0);
	if (memcmp(digest, id, SLUICE_B2_LEN) != 0)
		return sluice_ctx__error(cs->ctx, SLUICE_EINVALID,
		                         "chunk %s: id is not the BLAKE2b-256 of its bytes", hex);
	if ((error = sluice_chunkstore__has(cs, id)) != 0)
		return error < 0 ? error : SLUICE_OK;
	if ((error = append_record(cs, id, data, len, 1)) < 0)
		return error;
	if (was_new)
		*was_new = 1;
	return SLUICE_OK;
}

int sluice_chunkstore__get(sluice_chunkstore *cs, const unsigned char id[SLUICE_B2_LEN],
                           sluice_buf *out)
{
	char hex[SLUICE_B2_HEX];
	chunk_loc loc;
	int error;

	if ((error = locate(cs, id, &loc)) == SLUICE_ENOTFOUND) {
		id_hex(hex, id);
		return sluice_ctx__error(cs->ctx, SLUICE_ENOTFOUND, "chunk %s is not stored", hex);
	}
	if (error < 0 || (error = read_record(cs, &loc, id, out)) < 0)
		return error;
	memmove(out->ptr, out->ptr + SLUICE_PACK_REC_HDR, (size_t)loc.len);
	out->len = (size_t)loc.len;
	out->ptr[out->len] = '\0';
	return SLUICE_OK;
}

/*
 * Durability order: (1) the trailer is written, (2) the pack is fsynced,
 * (3) the packs directory is fsynced so the pack's name survives, and only
 * then (4) one LMDB write transaction records the chunks (its commit is
 * itself durable). A failure at (1)-(3) returns before the index is
 * touched, so no entry ever points into a pack that might not survive a
 * power cut. Any failure abandons the pack; its chunks must be put again.
 */
int sluice_chunkstore__commit(sluice_chunkstore *cs)
{
	unsigned char val[LOC_LEN];
	sluice_buf trailer = {0};
	MDB_txn *txn = NULL;
	size_t i;
	int rc, error, indexed = 0;

	if (cs->wfd < 0)
		return SLUICE_OK;
	if (cs->broken) {
		error = sluice_ctx__error(cs->ctx, SLUICE_EIO,
		                          "pack %s: an earlier write failed; the chunks put since "
		                          "the last commit are not stored",
		                          cs->wpath);
		goto done;
	}
	if ((error = flush_queue(cs)) < 0)
		goto done;
	sluice_pack__sort(cs->ents, cs->nents);
	if ((error = sluice_pack__encode_trailer(cs->ctx, &trailer, cs->ents, cs->nents,
	                                         cs->wend)) < 0 ||
	    (error = sluice_io__pwrite_all(cs->ctx, cs->wfd, trailer.ptr, trailer.len,
	                                   (off_t)cs->wend, cs->wpath)) < 0)
		goto done;
	if (fchmod(cs->wfd, 0444) < 0) {
		error = sluice_ctx__oserror(cs->ctx, "cannot make pack %s read-only", cs->wpath);
		goto done;
	}
	if ((error = sluice_io__fsync(cs->ctx, cs->wfd, cs->wpath)) < 0 ||
	    (error = sluice_io__fsync_dir(cs->ctx, cs->packdir)) < 0)
		goto done;
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0) {
		txn = NULL;
		error = lmdb_error(cs, rc, "cannot begin write transaction");
		goto done;
	}
	for (i = 0; i < cs->nents; i++) {
		MDB_val k = {SLUICE_B2_LEN, cs->ents[i].id}, v = {LOC_LEN, val};
		loc_encode(val, cs->wname, cs->ents[i].off, cs->ents[i].len);
		/* Another process may have stored the same chunk: either copy is fine. */
		rc = mdb_put(txn, cs->dbi, &k, &v, MDB_NOOVERWRITE);
		if (rc != 0 && rc != MDB_KEYEXIST) {
			error = lmdb_error(cs, rc, "cannot record chunk");
			goto done;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		error = lmdb_error(cs, rc, "cannot commit");
		goto done;
	}
	indexed = 1;
	error = SLUICE_OK;
done:
	if (txn)
		mdb_txn_abort(txn);
	sluice_buf__dispose(&trailer);
	/* Sealed, or failed: either way the next put starts a new pack. */
	abandon_pack(cs, error < 0 && !indexed);
	return error;
}

/* ---- ingest -------------------------------------------------------------- */

struct ichunk {
	uint64_t off, len;
	unsigned char id[SLUICE_B2_LEN];
	atomic_int done;
};

/*
 * One ingest's shared state. Two serial streams (the chunker finding cut
 * points, and the whole-file hash, which must see the bytes in order) and
 * one parallel pool (hashing chunks) are spread over the threads: a thread
 * takes a serial stream when no other thread holds it, else a chunk. The
 * calling thread also writes new chunks to the pack as the hashed prefix
 * grows, so writing overlaps hashing; only it touches the store and ctx.
 */
struct ingest {
	const unsigned char *map;
	uint64_t size;
	const sluice_region *regions;
	size_t nregions;
	sluice_cdc cdc;
	struct ichunk *chunks;
	size_t maxchunks;
	unsigned threads;

	atomic_size_t avail;     /* chunks whose cut points are published */
	atomic_size_t next_hash; /* next chunk to claim for hashing */
	atomic_int chunker_busy, chunker_done, too_many;
	size_t creg;   /* chunker position: region index ... */
	uint64_t cpos; /* ... and file offset (holder only) */

	atomic_int wf_busy, wf_done;
	atomic_int wf_owner_started; /* helpers started; the first owns the stream */
	int wf_owned;                /* a helper owns the whole-file stream */
	uint64_t wf_pos;
	crypto_generichash_state wf;
	unsigned char b2[SLUICE_B2_LEN];

	atomic_int stop;
};

#define CHUNKER_STEP (4u << 20)
#define WF_STEP (1u << 20)

static int try_chunker(struct ingest *j)
{
	size_t k;
	uint64_t budget = CHUNKER_STEP;
	int expect = 0;

	if (atomic_load(&j->chunker_done) ||
	    !atomic_compare_exchange_strong(&j->chunker_busy, &expect, 1))
		return 0;
	k = atomic_load_explicit(&j->avail, memory_order_relaxed);
	while (!atomic_load(&j->chunker_done) && budget > 0) {
		const sluice_region *r;
		uint64_t rem, n;

		if (j->creg == j->nregions) {
			atomic_store(&j->chunker_done, 1);
			break;
		}
		r = &j->regions[j->creg];
		rem = r->off + r->len - j->cpos;
		if (rem == 0) {
			if (++j->creg < j->nregions)
				j->cpos = j->regions[j->creg].off;
			continue;
		}
		if (k == j->maxchunks) {
			atomic_store(&j->too_many, 1);
			atomic_store(&j->stop, 1);
			atomic_store(&j->chunker_done, 1);
			break;
		}
		if (r->cdc)
			n = sluice_cdc__cut(&j->cdc, j->map + j->cpos,
			                    rem > SIZE_MAX ? SIZE_MAX : (size_t)rem);
		else
			n = rem < SLUICE_FIXED_CHUNK ? rem : SLUICE_FIXED_CHUNK;
		j->chunks[k].off = j->cpos;
		j->chunks[k].len = n;
		atomic_store_explicit(&j->avail, ++k, memory_order_release);
		j->cpos += n;
		budget = budget > n ? budget - n : 0;
	}
	atomic_store(&j->chunker_busy, 0);
	return 1;
}

static int try_hash_chunk(struct ingest *j)
{
	size_t i = atomic_load(&j->next_hash);

	while (i < atomic_load_explicit(&j->avail, memory_order_acquire)) {
		if (atomic_compare_exchange_weak(&j->next_hash, &i, i + 1)) {
			struct ichunk *c = &j->chunks[i];
			crypto_generichash(c->id, SLUICE_B2_LEN, j->map + c->off, c->len, NULL, 0);
			atomic_store_explicit(&c->done, 1, memory_order_release);
			return 1;
		}
	}
	return 0;
}

static int try_whole_file(struct ingest *j)
{
	int expect = 0;
	uint64_t n;

	if (atomic_load(&j->wf_done) || !atomic_compare_exchange_strong(&j->wf_busy, &expect, 1))
		return 0;
	if (!atomic_load(&j->wf_done)) {
		n = j->size - j->wf_pos < WF_STEP ? j->size - j->wf_pos : WF_STEP;
		crypto_generichash_update(&j->wf, j->map + j->wf_pos, n);
		j->wf_pos += n;
		if (j->wf_pos == j->size) {
			crypto_generichash_final(&j->wf, j->b2, SLUICE_B2_LEN);
			atomic_store(&j->wf_done, 1);
		}
	}
	atomic_store(&j->wf_busy, 0);
	return 1;
}

static int work_one(struct ingest *j)
{
	size_t ahead = atomic_load(&j->avail) - atomic_load(&j->next_hash);

	if (j->wf_owned) {
		/* A helper streams the whole file: cut and hash chunks meanwhile. */
		if (ahead < 4 * (size_t)j->threads + 8 && try_chunker(j))
			return 1;
		return try_hash_chunk(j) || try_chunker(j);
	}

	/*
	 * The whole-file hash is about half of all the work and cannot be
	 * split, so it is the critical path: whoever finds it free takes it.
	 * Then keep cut points ahead of the chunk hashers, or they would idle.
	 */
	if (try_whole_file(j))
		return 1;
	if (ahead < 4 * (size_t)j->threads + 8 && try_chunker(j))
		return 1;
	return try_hash_chunk(j) || try_chunker(j);
}

static int all_hashed(struct ingest *j)
{
	return atomic_load(&j->chunker_done) && atomic_load(&j->wf_done) &&
	       atomic_load(&j->next_hash) >= atomic_load(&j->avail);
}

static void *ingest_worker(void *arg)
{
	struct ingest *j = arg;

	/*
	 * The first helper owns the whole-file stream: it is half of all the
	 * hashing and cannot be split, so it must run from the first byte to
	 * the last without waiting for anyone. Only then does it help with
	 * chunks. (The calling thread never takes it while a helper exists.)
	 */
	if (atomic_fetch_add(&j->wf_owner_started, 1) == 0)
		while (!atomic_load(&j->stop) && !atomic_load(&j->wf_done))
			try_whole_file(j);
	while (!atomic_load(&j->stop)) {
		if (work_one(j))
			continue;
		if (all_hashed(j))
			break;
		sched_yield();
	}
	return NULL;
}

/* Store the hashed chunks [*written, ...) that are ready. Caller's thread. */
static int write_ready(sluice_chunkstore *cs, struct ingest *j, size_t *written, int force,
                       sluice_ingest_stats *st)
{
	size_t avail = atomic_load_explicit(&j->avail, memory_order_acquire), end = *written;
	uint64_t pending = 0;
	MDB_txn *txn = NULL;
	int error = SLUICE_OK;

	while (end < avail && atomic_load_explicit(&j->chunks[end].done, memory_order_acquire))
		pending += j->chunks[end++].len;
	if (end == *written || (!force && pending < STAGE_CAP))
		return SLUICE_OK;
	if ((error = rtxn_begin(cs, &txn)) < 0)
		return error;
	for (; *written < end; (*written)++) {
		struct ichunk *c = &j->chunks[*written];
		if (cs->wfd >= 0 && set_find(cs, c->id) >= 0)
			continue;
		if ((error = index_lookup(cs, txn, c->id, NULL)) == SLUICE_OK)
			continue;
		if (error != SLUICE_ENOTFOUND ||
		    (error = append_record(cs, c->id, j->map + c->off, (size_t)c->len, 0)) < 0)
			goto done;
		st->new_chunks++;
		st->new_bytes += c->len;
	}
	error = SLUICE_OK;
done:
	rtxn_end(cs);
	return error;
}

static int check_regions(sluice_ctx *ctx, const sluice_region *r, size_t n, uint64_t size,
                         const char *name)
{
	uint64_t at = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (r[i].off != at)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: region %zu starts at %llu, expected %llu (regions "
			        "must tile the file in order)",
			        name, i, (unsigned long long)r[i].off, (unsigned long long)at);
		if (r[i].len > size - at)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: region %zu (offset %llu, length %llu) runs past "
			        "the end of the file (%llu bytes)",
			        name, i, (unsigned long long)r[i].off, (unsigned long long)r[i].len,
			        (unsigned long long)size);
		at += r[i].len;
	}
	if (at != size)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: regions cover %llu bytes of %llu (regions must tile "
		                         "the file)",
		                         name, (unsigned long long)at, (unsigned long long)size);
	return SLUICE_OK;
}

int sluice_chunkstore__ingest(sluice_chunkstore *cs, sluice_manifest *out,
                              sluice_ingest_stats *stats, int fd, uint64_t size,
                              const sluice_region *regions, size_t nregions, const char *name)
{
	sluice_ctx *ctx = cs->ctx;
	sluice_ingest_stats st = {0};
	sluice_region whole;
	struct stat sb;
	struct ingest *j = NULL;
	pthread_t *tids = NULL;
	unsigned nthreads = 0, t;
	void *map = NULL;
	size_t written = 0, i, bound = 0;
	int error;

	memset(out, 0, sizeof(*out));
	if (!regions) {
		whole.off = 0;
		whole.len = size;
		whole.cdc = 1;
		regions = &whole;
		nregions = size ? 1 : 0;
	}
	if ((error = check_regions(ctx, regions, nregions, size, name)) < 0)
		return error;
	if (size > SIZE_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: too large to map", name);
	/* Touching a mapping past the end of the file would raise SIGBUS. */
	if (fstat(fd, &sb) < 0)
		return sluice_ctx__oserror(ctx, "cannot stat %s", name);
	if ((uint64_t)sb.st_size < size)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: file has %lld bytes, fewer than the %llu to ingest",
		                         name, (long long)sb.st_size, (unsigned long long)size);
	/* crypto_generichash_state wants 64-byte alignment, which malloc lacks. */
	if (posix_memalign((void **)&j, 64, sizeof(*j)) != 0)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
	memset(j, 0, sizeof(*j));
	for (i = 0; i < nregions; i++) {
		uint64_t piece = regions[i].cdc ? SLUICE_CDC_MIN : SLUICE_FIXED_CHUNK;
		uint64_t b = regions[i].len / piece + 1;
		bound = b > MANIFEST_MAX_CHUNKS - bound ? MANIFEST_MAX_CHUNKS : bound + (size_t)b;
	}
	if (size > 0) {
		map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			error = sluice_ctx__oserror(ctx, "cannot map %s", name);
			goto done;
		}
	}
	if (bound && !(j->chunks = sluice__calloc(ctx, bound, sizeof(*j->chunks)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	j->map = map;
	j->size = size;
	j->regions = regions;
	j->nregions = nregions;
	j->maxchunks = bound;
	j->threads = sluice_ctx__threads(ctx);
	sluice_cdc__init(&j->cdc);
	crypto_generichash_init(&j->wf, NULL, 0, SLUICE_B2_LEN);
	if (size == 0) {
		crypto_generichash_final(&j->wf, j->b2, SLUICE_B2_LEN);
		j->wf_done = 1;
	}
	if (j->threads > 1 && !(tids = sluice__calloc(ctx, j->threads - 1, sizeof(*tids)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (t = 0; t + 1 < j->threads; t++) {
		if (pthread_create(&tids[t], NULL, ingest_worker, j) != 0)
			break; /* fewer helpers; the calling thread does the rest */
		nthreads++;
	}
	j->wf_owned = nthreads > 0;
	for (;;) {
		int done_hashing = all_hashed(j);
		if ((error = write_ready(cs, j, &written, done_hashing, &st)) < 0) {
			atomic_store(&j->stop, 1);
			break;
		}
		if (atomic_load(&j->stop) || (done_hashing && written == atomic_load(&j->avail)))
			break;
		if (!work_one(j)) {
			/* Waiting for the whole-file stream: do not burn a core spinning. */
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
	}
	for (t = 0; t < nthreads; t++)
		pthread_join(tids[t], NULL);
	if (error < 0)
		goto done;
	if (atomic_load(&j->too_many)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: more than %zu chunks; file too large", name,
		                          MANIFEST_MAX_CHUNKS);
		goto done;
	}
	/* The queue points into the mapping: write it out before unmapping. */
	if ((error = flush_queue(cs)) < 0)
		goto done;
	out->size = size;
	memcpy(out->b2, j->b2, SLUICE_B2_LEN);
	out->nchunks = written;
	if (written && !(out->chunks = sluice__calloc(ctx, written, sizeof(*out->chunks)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < written; i++) {
		memcpy(out->chunks[i].id, j->chunks[i].id, SLUICE_B2_LEN);
		out->chunks[i].len = j->chunks[i].len;
	}
	st.bytes_in = size;
	st.chunks = written;
	if (stats)
		*stats = st;
	error = SLUICE_OK;
done:
	if (error < 0) {
		/* Nothing queued may outlive the mapping it points into. */
		if (cs->niov > 0)
			flush_queue(cs); /* on failure the pack is marked broken */
		sluice_manifest__dispose(out);
	}
	if (map)
		munmap(map, (size_t)size);
	if (j) {
		free(j->chunks);
		sodium_memzero(&j->wf, sizeof(j->wf));
	}
	free(j);
	free(tids);
	return error;
}

/* ---- materialize --------------------------------------------------------- */

int sluice_chunkstore__materialize(sluice_chunkstore *cs, const sluice_manifest *m, int fd,
                                   const char *name)
{
	crypto_generichash_state h;
	unsigned char digest[SLUICE_B2_LEN];
	char hex[SLUICE_B2_HEX], want[SLUICE_B2_HEX];
	sluice_buf buf = {0};
	uint64_t total = 0;
	chunk_loc loc;
	size_t i;
	int error;

	for (i = 0; i < m->nchunks; i++) {
		if (m->chunks[i].len > UINT64_MAX - total)
			return sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
			                         "%s: manifest chunk lengths overflow", name);
		total += m->chunks[i].len;
	}
	if (total != m->size)
		return sluice_ctx__error(
		        cs->ctx, SLUICE_ECORRUPT,
		        "%s: manifest chunks add up to %llu bytes, not its size %llu", name,
		        (unsigned long long)total, (unsigned long long)m->size);
	crypto_generichash_init(&h, NULL, 0, SLUICE_B2_LEN);
	for (i = 0; i < m->nchunks; i++) {
		const sluice_chunkref *c = &m->chunks[i];
		id_hex(hex, c->id);
		if ((error = locate(cs, c->id, &loc)) == SLUICE_ENOTFOUND) {
			error = sluice_ctx__error(cs->ctx, SLUICE_ENOTFOUND,
			                          "%s: chunk %zu (%s) is not stored", name, i, hex);
			goto done;
		}
		if (error < 0)
			goto done;
		if (loc.len != c->len) {
			error = sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
			                          "%s: chunk %zu (%s) is %llu bytes in the store, "
			                          "%llu in the manifest",
			                          name, i, hex, (unsigned long long)loc.len,
			                          (unsigned long long)c->len);
			goto done;
		}
		if ((error = read_record(cs, &loc, c->id, &buf)) < 0) {
			error = sluice_ctx__wrap(cs->ctx, error, "%s: chunk %zu", name, i);
			goto done;
		}
		crypto_generichash_update(&h, buf.ptr + SLUICE_PACK_REC_HDR, c->len);
		if ((error = sluice_io__write_all(cs->ctx, fd, buf.ptr + SLUICE_PACK_REC_HDR,
		                                  (size_t)c->len, name)) < 0)
			goto done;
	}
	crypto_generichash_final(&h, digest, SLUICE_B2_LEN);
	if (memcmp(digest, m->b2, SLUICE_B2_LEN) != 0) {
		id_hex(hex, digest);
		id_hex(want, m->b2);
		error = sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
		                          "%s: whole-file BLAKE2b-256 is %s, manifest says %s",
		                          name, hex, want);
		goto done;
	}
	error = SLUICE_OK;
done:
	sluice_buf__dispose(&buf);
	return error;
}

/* ---- walking the packs ---------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names (16 hex) of the pack files, sorted; caller frees each and the array. */
static int list_packs(sluice_chunkstore *cs, char ***out, size_t *count)
{
	char **names = NULL, name[PACK_NAME_LEN + 1];
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int error = SLUICE_OK;

	if (!(d = opendir(cs->packdir)))
		return sluice_ctx__oserror(cs->ctx, "cannot list %s", cs->packdir);
	while ((de = readdir(d)) != NULL) {
		if (!is_pack_name(de->d_name, name))
			continue;
		if (n == cap) {
			char **p;
			cap = cap ? cap * 2 : 16;
			if (!(p = sluice__realloc(cs->ctx, names, cap * sizeof(*p)))) {
				error = SLUICE_ENOMEM;
				goto done;
			}
			names = p;
		}
		if (!(names[n] = sluice__strdup(cs->ctx, name))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	*count = n;
	names = NULL;
done:
	closedir(d);
	if (names) {
		while (n > 0)
			free(names[--n]);
		free(names);
	}
	return error;
}

static void free_names(char **names, size_t n)
{
	while (n > 0)
		free(names[--n]);
	free(names);
}

typedef struct {
	int fd;
	unsigned char *map;
	size_t len;
} mapped_pack;

/*
 * Map a pack read-only. 1 if it is being written by another process (its
 * writer holds the lock), so the caller should skip it; 0 when mapped.
 */
static int map_pack(sluice_chunkstore *cs, const char *name, mapped_pack *mp)
{
	char path[PATH_MAX];
	struct stat st;

	mp->fd = -1;
	mp->map = NULL;
	mp->len = 0;
	pack_path(path, cs, name);
	if ((mp->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return sluice_ctx__oserror(cs->ctx, "cannot open pack %s", path);
	if (flock(mp->fd, LOCK_SH | LOCK_NB) < 0) {
		close(mp->fd);
		mp->fd = -1;
		if (errno == EWOULDBLOCK)
			return 1;
		return sluice_ctx__oserror(cs->ctx, "cannot lock pack %s", path);
	}
	if (fstat(mp->fd, &st) < 0 || (uint64_t)st.st_size > SIZE_MAX) {
		close(mp->fd);
		mp->fd = -1;
		return sluice_ctx__oserror(cs->ctx, "cannot stat pack %s", path);
	}
	mp->len = (size_t)st.st_size;
	if (mp->len > 0) {
		void *p = mmap(NULL, mp->len, PROT_READ, MAP_PRIVATE, mp->fd, 0);
		if (p == MAP_FAILED) {
			close(mp->fd);
			mp->fd = -1;
			return sluice_ctx__oserror(cs->ctx, "cannot map pack %s", path);
		}
		mp->map = p;
	}
	return 0;
}

static void unmap_pack(mapped_pack *mp)
{
	if (mp->map)
		munmap(mp->map, mp->len);
	if (mp->fd >= 0)
		close(mp->fd);
	mp->map = NULL;
	mp->fd = -1;
}

/* ---- reindex ------------------------------------------------------------- */

struct reindex_state {
	sluice_chunkstore *cs;
	MDB_txn *txn;
	const char *pack;
	size_t in_txn;
	uint64_t added;
};

static int reindex_put(struct reindex_state *rs, const sluice_pack_entry *e)
{
	unsigned char val[LOC_LEN];
	MDB_val k = {SLUICE_B2_LEN, (void *)e->id}, v = {LOC_LEN, val};
	int rc;

	loc_encode(val, rs->pack, e->off, e->len);
	rc = mdb_put(rs->txn, rs->cs->dbi, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return 0;
	if (rc != 0)
		return lmdb_error(rs->cs, rc, "cannot record chunk");
	rs->added++;
	/* Bounded transactions: LMDB refuses too many dirty pages in one. */
	if (++rs->in_txn >= REINDEX_BATCH) {
		rc = mdb_txn_commit(rs->txn);
		rs->txn = NULL;
		rs->in_txn = 0;
		if (rc != 0 || (rc = mdb_txn_begin(rs->cs->env, NULL, 0, &rs->txn)) != 0) {
			rs->txn = NULL;
			return lmdb_error(rs->cs, rc, "cannot commit");
		}
	}
	return 0;
}

static int reindex_record(void *data, const sluice_pack_entry *rec, const unsigned char *bytes,
                          int ok, const unsigned char computed[SLUICE_B2_LEN])
{
	return reindex_put(data, rec);
}

int sluice_chunkstore__reindex(sluice_chunkstore *cs, uint64_t *chunks)
{
	struct reindex_state rs = {cs, NULL, NULL, 0, 0};
	char **names = NULL, path[PATH_MAX];
	size_t n = 0, p, i, count;
	sluice_pack_entry *ents = NULL;
	mapped_pack mp = {-1, NULL, 0};
	uint64_t end;
	int rc, error;

	if ((error = list_packs(cs, &names, &n)) < 0 ||
	    (error = sluice_io__fsync_dir(cs->ctx, cs->packdir)) < 0)
		goto done;
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &rs.txn)) != 0 ||
	    (rc = mdb_drop(rs.txn, cs->dbi, 0)) != 0) {
		error = lmdb_error(cs, rc, "cannot empty the chunks database");
		goto done;
	}
	for (p = 0; p < n; p++) {
		if (cs->wfd >= 0 && strcmp(names[p], cs->wname) == 0)
			continue; /* ours, uncommitted */
		if ((error = map_pack(cs, names[p], &mp)) < 0)
			goto done;
		if (error == 1)
			continue; /* another process is still writing it */
		pack_path(path, cs, names[p]);
		rs.pack = names[p];
		/* A pack with a bad header is left for verify to report. */
		if (sluice_pack__check_header(cs->ctx, mp.map, mp.len, path) < 0) {
			unmap_pack(&mp);
			continue;
		}
		/*
		 * Recovered records may never have been fsynced by their writer;
		 * the index must not point at them until they are.
		 */
		if ((error = sluice_io__fsync(cs->ctx, mp.fd, path)) < 0)
			goto done;
		error = sluice_pack__read_trailer(cs->ctx, &ents, &count, &end, mp.map, mp.len,
		                                  path);
		if (error == SLUICE_OK) {
			for (i = 0; i < count && error == 0; i++)
				error = reindex_put(&rs, &ents[i]);
		} else if (error == SLUICE_ENOTFOUND || error == SLUICE_ECORRUPT) {
			error = sluice_pack__scan(mp.map, mp.len, mp.len, 1, reindex_record, &rs,
			                          &end);
		}
		free(ents);
		ents = NULL;
		unmap_pack(&mp);
		if (error < 0)
			goto done;
	}
	rc = mdb_txn_commit(rs.txn);
	rs.txn = NULL;
	if (rc != 0) {
		error = lmdb_error(cs, rc, "cannot commit");
		goto done;
	}
	if (chunks)
		*chunks = rs.added;
	error = SLUICE_OK;
done:
	if (rs.txn)
		mdb_txn_abort(rs.txn);
	unmap_pack(&mp);
	free(ents);
	free_names(names, n);
	return error;
}

/* ---- sweep: rewriting packs without some records ------------------------- */

struct sweep_rec {
	sluice_pack_entry e; /* in the old pack */
	int drop;            /* 1 drop() chose it, 2 a duplicate indexed elsewhere */
};

struct sweep_collect {
	struct sweep_rec *r;
	size_t n, cap;
	sluice_ctx *ctx;
};

static int sweep_add(struct sweep_collect *sc, const sluice_pack_entry *e)
{
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 256;
		struct sweep_rec *p = sluice__realloc(sc->ctx, sc->r, cap * sizeof(*p));
		if (!p)
			return SLUICE_ENOMEM;
		sc->r = p;
		sc->cap = cap;
	}
	sc->r[sc->n].e = *e;
	sc->r[sc->n].drop = 0;
	sc->n++;
	return 0;
}

static int sweep_record(void *data, const sluice_pack_entry *rec, const unsigned char *bytes,
                        int ok, const unsigned char computed[SLUICE_B2_LEN])
{
	(void)bytes;
	(void)ok;
	(void)computed;
	return sweep_add(data, rec);
}

/* Forget cached read descriptors of a pack about to be removed. */
static void uncache_pack(sluice_chunkstore *cs, const char *name)
{
	for (unsigned i = 0; i < FD_CACHE; i++)
		if (cs->cache[i].fd >= 0 && strcmp(cs->cache[i].name, name) == 0) {
			close(cs->cache[i].fd);
			cs->cache[i].fd = -1;
		}
}

/*
 * Write the kept records of mp into a new sealed pack; *name_out receives
 * its name. The file is read-only and fsynced with its directory on return.
 */
static int sweep_write(sluice_chunkstore *cs, const mapped_pack *mp, struct sweep_rec *r, size_t n,
                       char name_out[PACK_NAME_LEN + 1], sluice_pack_entry **ents_out,
                       size_t *nents_out)
{
	sluice_pack_entry *ents = NULL;
	sluice_buf trailer = {0};
	unsigned char hdr[SLUICE_PACK_HDR], rnd[8];
	char path[PATH_MAX];
	uint64_t off = SLUICE_PACK_HDR;
	size_t i, k = 0;
	int fd = -1, tries, error;

	if (!(ents = sluice__calloc(cs->ctx, n ? n : 1, sizeof(*ents))))
		return SLUICE_ENOMEM;
	for (tries = 0; tries < 16; tries++) {
		randombytes_buf(rnd, sizeof(rnd));
		sluice__hex(name_out, rnd, sizeof(rnd));
		pack_path(path, cs, name_out);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		error = sluice_ctx__oserror(cs->ctx, "cannot create pack %s", path);
		goto done;
	}
	/* Locked while unsealed, like any writer's pack, so reindex skips it. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		error = sluice_ctx__oserror(cs->ctx, "cannot lock pack %s", path);
		goto fail;
	}
	sluice_pack__header(hdr);
	if ((error = sluice_io__write_all(cs->ctx, fd, hdr, sizeof(hdr), path)) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		size_t reclen = SLUICE_PACK_REC_HDR + (size_t)r[i].e.len;
		if (r[i].drop)
			continue;
		/* The record (header and bytes) is copied as it is: its id was read from it. */
		if ((error = sluice_io__write_all(cs->ctx, fd, mp->map + r[i].e.off, reclen,
		                                  path)) < 0)
			goto fail;
		memcpy(ents[k].id, r[i].e.id, SLUICE_B2_LEN);
		ents[k].off = off;
		ents[k].len = r[i].e.len;
		off += reclen;
		k++;
	}
	sluice_pack__sort(ents, k);
	if ((error = sluice_pack__encode_trailer(cs->ctx, &trailer, ents, k, off)) < 0 ||
	    (error = sluice_io__write_all(cs->ctx, fd, trailer.ptr, trailer.len, path)) < 0)
		goto fail;
	if (fchmod(fd, 0444) < 0) {
		error = sluice_ctx__oserror(cs->ctx, "cannot make pack %s read-only", path);
		goto fail;
	}
	if ((error = sluice_io__fsync(cs->ctx, fd, path)) < 0 ||
	    (error = sluice_io__fsync_dir(cs->ctx, cs->packdir)) < 0)
		goto fail;
	*ents_out = ents;
	*nents_out = k;
	ents = NULL;
	goto done;
fail:
	unlink(path);
done:
	if (fd >= 0)
		close(fd);
	free(ents);
	sluice_buf__dispose(&trailer);
	return error;
}

/*
 * One LMDB transaction: kept chunks now live in newname (NULL: none kept),
 * dropped ones whose entry points into oldname are deleted.
 */
static int sweep_index(sluice_chunkstore *cs, const char *oldname, const char *newname,
                       const sluice_pack_entry *ents, size_t nents, const struct sweep_rec *r,
                       size_t n)
{
	unsigned char val[LOC_LEN];
	MDB_txn *txn = NULL;
	size_t i;
	int rc, error = SLUICE_OK;

	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0)
		return lmdb_error(cs, rc, "cannot begin write transaction");
	for (i = 0; i < nents; i++) {
		MDB_val k = {SLUICE_B2_LEN, (void *)ents[i].id}, v = {LOC_LEN, val};
		loc_encode(val, newname, ents[i].off, ents[i].len);
		if ((rc = mdb_put(txn, cs->dbi, &k, &v, 0)) != 0) {
			error = lmdb_error(cs, rc, "cannot record chunk");
			goto done;
		}
	}
	for (i = 0; i < n; i++) {
		MDB_val k = {SLUICE_B2_LEN, (void *)r[i].e.id}, v;
		chunk_loc loc;
		if (r[i].drop != 1)
			continue;
		rc = mdb_get(txn, cs->dbi, &k, &v);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0) {
			error = lmdb_error(cs, rc, "cannot look up chunk");
			goto done;
		}
		/* An entry into another pack goes when that pack is swept. */
		if (loc_decode(&loc, &v) == 0 && strcmp(loc.pack, oldname) != 0)
			continue;
		if ((rc = mdb_del(txn, cs->dbi, &k, NULL)) != 0) {
			error = lmdb_error(cs, rc, "cannot delete chunk");
			goto done;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		error = lmdb_error(cs, rc, "cannot commit");
done:
	if (txn)
		mdb_txn_abort(txn);
	return error;
}

int sluice_chunkstore__sweep(sluice_chunkstore *cs, sluice_chunk_drop_cb drop, void *data,
                             int dry_run, sluice_sweep_stats *stats,
                             void (*progress)(void *pdata, const char *what, uint64_t done,
                                              uint64_t total),
                             void *pdata)
{
	struct sweep_collect sc = {NULL, 0, 0, cs->ctx};
	sluice_sweep_stats st = {0};
	char **names = NULL, path[PATH_MAX], newname[PACK_NAME_LEN + 1];
	sluice_pack_entry *ents = NULL, *newents = NULL;
	mapped_pack mp = {-1, NULL, 0};
	size_t n = 0, p, i, count, nnew;
	uint64_t end, kept_bytes;
	int error;

	if ((error = sluice_chunkstore__commit(cs)) < 0 || (error = list_packs(cs, &names, &n)) < 0)
		goto done;
	for (p = 0; p < n; p++) {
		int dropping = 0;

		if (progress)
			progress(pdata, "sweep", p, n);
		if ((error = map_pack(cs, names[p], &mp)) < 0)
			goto done;
		if (error == 1) {
			error = 0;
			continue; /* a live writer's */
		}
		st.packs_seen++;
		pack_path(path, cs, names[p]);
		sc.n = 0;
		/* A bad header: nothing can be read from it; verify reports it. */
		if (sluice_pack__check_header(cs->ctx, mp.map, mp.len, path) < 0) {
			unmap_pack(&mp);
			continue;
		}
		error = sluice_pack__read_trailer(cs->ctx, &ents, &count, &end, mp.map, mp.len,
		                                  path);
		if (error == SLUICE_OK) {
			for (i = 0; i < count && error == 0; i++)
				error = sweep_add(&sc, &ents[i]);
		} else if (error == SLUICE_ENOTFOUND || error == SLUICE_ECORRUPT) {
			/* The recovery rule, as reindex reads such a pack. */
			error = sluice_pack__scan(mp.map, mp.len, mp.len, 1, sweep_record, &sc,
			                          &end);
		}
		free(ents);
		ents = NULL;
		if (error < 0)
			goto done;
		kept_bytes = SLUICE_PACK_HDR;
		for (i = 0; i < sc.n; i++) {
			chunk_loc loc;
			MDB_txn *txn = NULL;
			int d = drop(data, sc.r[i].e.id), rc;
			if (d < 0) {
				error = d;
				goto done;
			}
			if (d) {
				sc.r[i].drop = 1;
				st.records_dropped++;
				dropping = 1;
				continue;
			}
			if ((error = rtxn_begin(cs, &txn)) < 0)
				goto done;
			rc = index_lookup(cs, txn, sc.r[i].e.id, &loc);
			rtxn_end(cs);
			if (rc < 0 && rc != SLUICE_ENOTFOUND) {
				error = rc;
				goto done;
			}
			if (rc == 0 && strcmp(loc.pack, names[p]) != 0) {
				sc.r[i].drop = 2;
				st.duplicates++;
				dropping = 1;
				continue;
			}
			kept_bytes += SLUICE_PACK_REC_HDR + sc.r[i].e.len;
		}
		if (!dropping) {
			unmap_pack(&mp);
			continue;
		}
		nnew = 0;
		for (i = 0; i < sc.n; i++)
			nnew += !sc.r[i].drop;
		if (nnew > 0)
			kept_bytes += (uint64_t)nnew * SLUICE_PACK_IDX_ENT + SLUICE_PACK_FOOTER;
		else
			kept_bytes = 0;
		st.packs_rewritten++;
		st.bytes_freed += mp.len > kept_bytes ? mp.len - kept_bytes : 0;
		if (dry_run) {
			unmap_pack(&mp);
			continue;
		}
		if (nnew > 0 &&
		    (error = sweep_write(cs, &mp, sc.r, sc.n, newname, &newents, &nnew)) < 0)
			goto done;
		/* The commit point: the index moves to the new pack in one transaction. */
		if ((error = sweep_index(cs, names[p], nnew > 0 ? newname : NULL, newents, nnew,
		                         sc.r, sc.n)) < 0)
			goto done;
		free(newents);
		newents = NULL;
		unmap_pack(&mp);
		uncache_pack(cs, names[p]);
		if (unlink(path) < 0 && errno != ENOENT) {
			error = sluice_ctx__oserror(cs->ctx, "cannot remove pack %s", path);
			goto done;
		}
		if ((error = sluice_io__fsync_dir(cs->ctx, cs->packdir)) < 0)
			goto done;
	}
	if (progress)
		progress(pdata, "sweep", n, n);
	error = SLUICE_OK;
done:
	if (stats)
		*stats = st;
	unmap_pack(&mp);
	free(ents);
	free(newents);
	free(sc.r);
	free_names(names, n);
	return error;
}

/* ---- verify -------------------------------------------------------------- */

struct verify_state {
	void (*report)(void *data, const char *problem);
	void *data;
	const char *pack;
	uint64_t *offs; /* record offsets seen, increasing */
	size_t noffs, capoffs;
	sluice_ctx *ctx;
	unsigned problems;
};

static void problem(struct verify_state *vs, const char *fmt, ...) SLUICE_PRINTF(2, 3);

static void problem(struct verify_state *vs, const char *fmt, ...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	vs->problems++;
	if (vs->report)
		vs->report(vs->data, line);
}

static int verify_record(void *data, const sluice_pack_entry *rec, const unsigned char *bytes,
                         int ok, const unsigned char computed[SLUICE_B2_LEN])
{
	struct verify_state *vs = data;
	char a[SLUICE_B2_HEX], b[SLUICE_B2_HEX];

	if (!ok) {
		id_hex(a, rec->id);
		id_hex(b, computed);
		problem(vs,
		        "pack-%s.pack: record at offset %llu: id mismatch (stored %s, computed %s)",
		        vs->pack, (unsigned long long)rec->off, a, b);
	}
	if (vs->noffs == vs->capoffs) {
		size_t cap = vs->capoffs ? vs->capoffs * 2 : 1024;
		uint64_t *p = sluice__realloc(vs->ctx, vs->offs, cap * sizeof(*p));
		if (!p)
			return SLUICE_ENOMEM;
		vs->offs = p;
		vs->capoffs = cap;
	}
	vs->offs[vs->noffs++] = rec->off;
	return 0;
}

static int has_offset(const struct verify_state *vs, uint64_t off)
{
	size_t lo = 0, hi = vs->noffs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (vs->offs[mid] == off)
			return 1;
		if (vs->offs[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int verify_pack(sluice_chunkstore *cs, struct verify_state *vs, const char *name)
{
	char path[PATH_MAX];
	sluice_pack_entry *ents = NULL;
	mapped_pack mp;
	size_t count = 0, i;
	uint64_t limit, end;
	int error, sealed;

	if ((error = map_pack(cs, name, &mp)) != 0)
		return error < 0 ? error : 0;
	pack_path(path, cs, name);
	vs->pack = name;
	vs->noffs = 0;
	if (sluice_pack__check_header(cs->ctx, mp.map, mp.len, "") < 0) {
		/* A writer killed before its header was complete left an empty leftover. */
		problem(vs, "%spack-%s.pack%s", mp.len < SLUICE_PACK_HDR ? "note: " : "", name,
		        sluice_ctx_errmsg(cs->ctx));
		goto done;
	}
	error = sluice_pack__read_trailer(cs->ctx, &ents, &count, &limit, mp.map, mp.len, "");
	sealed = error == SLUICE_OK;
	if (error == SLUICE_ENOMEM)
		goto done;
	/*
	 * A pack without a trailer was left by a writer that stopped before
	 * committing: nothing acknowledged refers to its chunks (the index is
	 * written only after the seal), so it is a note, not a problem.
	 */
	if (error == SLUICE_ENOTFOUND)
		problem(vs,
		        "note: pack-%s.pack: no trailer (unsealed: its writer stopped before "
		        "committing; nothing refers to it; reindex recovers its records)",
		        name);
	else if (error < 0)
		problem(vs, "pack-%s.pack%s", name, sluice_ctx_errmsg(cs->ctx));
	if (!sealed)
		limit = mp.len;
	if ((error = sluice_pack__scan(mp.map, mp.len, limit, 0, verify_record, vs, &end)) < 0)
		goto done;
	if (end != limit)
		problem(vs, "%spack-%s.pack: incomplete record at offset %llu (%llu bytes left)",
		        sealed ? "" : "note: ", name, (unsigned long long)end,
		        (unsigned long long)(limit - end));
	if (sealed) {
		if (count != vs->noffs)
			problem(vs, "pack-%s.pack: trailer lists %zu records, the pack holds %zu",
			        name, count, vs->noffs);
		for (i = 0; i < count; i++)
			if (!has_offset(vs, ents[i].off))
				problem(vs,
				        "pack-%s.pack: trailer entry %zu points to offset %llu, "
				        "which is not a record",
				        name, i, (unsigned long long)ents[i].off);
	}
	error = SLUICE_OK;
done:
	free(ents);
	unmap_pack(&mp);
	return error;
}

/* Check that every index entry points to a record with its id and length. */
static int verify_index(sluice_chunkstore *cs, struct verify_state *vs)
{
	enum { BATCH = 4096 };
	struct {
		unsigned char id[SLUICE_B2_LEN];
		chunk_loc loc;
		int bad;
	} *batch = NULL;
	unsigned char last[SLUICE_B2_LEN], hdr[SLUICE_PACK_REC_HDR];
	char hex[SLUICE_B2_HEX];
	int have_last = 0, rc, error = SLUICE_OK;
	size_t n, i;

	if (!(batch = sluice__calloc(cs->ctx, BATCH, sizeof(*batch))))
		return SLUICE_ENOMEM;
	/* Copy a batch of entries out, end the read txn, then check them. */
	do {
		MDB_txn *txn = NULL;
		MDB_cursor *cur = NULL;
		MDB_val k, v;
		MDB_cursor_op op = MDB_FIRST;

		n = 0;
		if ((error = rtxn_begin(cs, &txn)) < 0)
			goto done;
		if ((rc = mdb_cursor_open(txn, cs->dbi, &cur)) != 0) {
			rtxn_end(cs);
			error = lmdb_error(cs, rc, "cannot open cursor");
			goto done;
		}
		if (have_last) {
			k.mv_size = SLUICE_B2_LEN;
			k.mv_data = last;
			op = MDB_SET_RANGE;
		}
		for (rc = mdb_cursor_get(cur, &k, &v, op); rc == 0 && n < BATCH;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if (have_last && k.mv_size == SLUICE_B2_LEN &&
			    memcmp(k.mv_data, last, SLUICE_B2_LEN) == 0)
				continue;
			memset(&batch[n], 0, sizeof(batch[n]));
			if (k.mv_size != SLUICE_B2_LEN || loc_decode(&batch[n].loc, &v) < 0)
				batch[n].bad = 1;
			memcpy(batch[n].id, k.mv_data,
			       k.mv_size < SLUICE_B2_LEN ? k.mv_size : SLUICE_B2_LEN);
			n++;
		}
		mdb_cursor_close(cur);
		rtxn_end(cs);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			error = lmdb_error(cs, rc, "cannot read");
			goto done;
		}
		for (i = 0; i < n; i++) {
			int fd;
			id_hex(hex, batch[i].id);
			if (batch[i].bad) {
				problem(vs, "index: entry for chunk %s is malformed", hex);
				continue;
			}
			if (pack_fd(cs, batch[i].loc.pack, &fd) < 0 ||
			    sluice_io__pread_all(cs->ctx, fd, hdr, sizeof(hdr),
			                         (off_t)batch[i].loc.off, "") < 0) {
				problem(vs,
				        "index: chunk %s: pack-%s.pack offset %llu cannot be read "
				        "(%s)",
				        hex, batch[i].loc.pack,
				        (unsigned long long)batch[i].loc.off,
				        sluice_ctx_errmsg(cs->ctx));
				continue;
			}
			if (memcmp(hdr, batch[i].id, SLUICE_B2_LEN) != 0 ||
			    sluice__le64(hdr + 32) != batch[i].loc.len)
				problem(vs,
				        "index: chunk %s: pack-%s.pack offset %llu holds a "
				        "different "
				        "record",
				        hex, batch[i].loc.pack,
				        (unsigned long long)batch[i].loc.off);
		}
		if (n > 0) {
			memcpy(last, batch[n - 1].id, SLUICE_B2_LEN);
			have_last = 1;
		}
	} while (n == BATCH);
done:
	free(batch);
	return error;
}

int sluice_chunkstore__verify(sluice_chunkstore *cs,
                              void (*report)(void *data, const char *problem), void *data)
{
	struct verify_state vs = {report, data, NULL, NULL, 0, 0, cs->ctx, 0};
	char **names = NULL;
	size_t n = 0, p;
	int error;

	/* Our own queued records are read like any others. */
	if (cs->wfd >= 0 && (error = flush_queue(cs)) < 0)
		return error;
	if ((error = list_packs(cs, &names, &n)) < 0)
		goto done;
	for (p = 0; p < n; p++) {
		if (cs->wfd >= 0 && strcmp(names[p], cs->wname) == 0)
			continue;
		if ((error = verify_pack(cs, &vs, names[p])) < 0)
			goto done;
	}
	if ((error = verify_index(cs, &vs)) < 0)
		goto done;
	if (vs.problems)
		error = sluice_ctx__error(cs->ctx, SLUICE_ECORRUPT,
		                          "chunk store %s: %u problem%s found", cs->dir,
		                          vs.problems, vs.problems == 1 ? "" : "s");
done:
	free(vs.offs);
	free_names(names, n);
	return error;
}

/* ---- manifests ----------------------------------------------------------- */

int sluice_manifest__encode(sluice_ctx *ctx, const sluice_manifest *m, sluice_buf *out)
{
	char hex[SLUICE_B2_HEX];
	uint64_t total = 0;
	size_t i;
	int error;

	if (m->nchunks > MANIFEST_MAX_CHUNKS)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "manifest: %zu chunks exceeds %zu",
		                         m->nchunks, MANIFEST_MAX_CHUNKS);
	for (i = 0; i < m->nchunks; i++) {
		if (m->chunks[i].len == 0 || m->chunks[i].len > SLUICE_CHUNK_MAX)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "manifest: chunk %zu has length %llu", i,
			                         (unsigned long long)m->chunks[i].len);
		total += m->chunks[i].len; /* cannot overflow: 2^24 chunks of <= 2^30 */
	}
	if (total != m->size)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "manifest: chunks add up to %llu bytes, size is %llu",
		                         (unsigned long long)total, (unsigned long long)m->size);
	id_hex(hex, m->b2);
	if ((error = sluice_buf__printf(ctx, out, "sluice-manifest 1\nsize %llu\nblake2b %s\n",
	                                (unsigned long long)m->size, hex)) < 0 ||
	    (error = sluice_buf__grow(ctx, out, m->nchunks * (6 + 64 + 1 + 20 + 1))) < 0)
		return error;
	for (i = 0; i < m->nchunks; i++) {
		id_hex(hex, m->chunks[i].id);
		if ((error = sluice_buf__printf(ctx, out, "chunk %s %llu\n", hex,
		                                (unsigned long long)m->chunks[i].len)) < 0)
			return error;
	}
	return SLUICE_OK;
}

static int parse_dec(uint64_t *out, const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned)p[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_hex64(unsigned char out[SLUICE_B2_LEN], const unsigned char *p, size_t n)
{
	size_t i;

	if (n != 2 * SLUICE_B2_LEN)
		return -1;
	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return -1;
	return sluice__unhex(out, SLUICE_B2_LEN, (const char *)p);
}

/* Line text without its "\n" must start with kw and a space; rest after. */
static int field(const unsigned char *line, size_t n, const char *kw, const unsigned char **rest,
                 size_t *restlen)
{
	size_t k = strlen(kw);

	if (n <= k || memcmp(line, kw, k) != 0 || line[k] != ' ')
		return -1;
	*rest = line + k + 1;
	*restlen = n - k - 1;
	return 0;
}

int sluice_manifest__parse(sluice_ctx *ctx, sluice_manifest *out, const unsigned char *data,
                           size_t len, const char *name)
{
	static const char magic[] = "sluice-manifest 1";
	sluice_manifest m = {0};
	const unsigned char *p = data, *end = data + len, *rest, *nl;
	size_t lineno = 0, nlines = 0, restlen, n, cap;
	uint64_t total = 0;
	int error;

	memset(out, 0, sizeof(*out));
	for (nl = data; nl < end && (nl = memchr(nl, '\n', (size_t)(end - nl))); nl++)
		nlines++;
	if (len == 0 || data[len - 1] != '\n')
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: line %zu: manifest does not end with a newline", name,
		                         nlines + 1);
	if (nlines < 3)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: line %zu: manifest is truncated (expected header, "
		                         "size and blake2b lines)",
		                         name, nlines + 1);
	cap = nlines - 3;
	if (cap > MANIFEST_MAX_CHUNKS)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: line %zu: more than %zu chunks",
		                         name, MANIFEST_MAX_CHUNKS + 4, MANIFEST_MAX_CHUNKS);
	if (cap && !(m.chunks = sluice__calloc(ctx, cap, sizeof(*m.chunks))))
		return SLUICE_ENOMEM;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)(nl - p);
		lineno++;
		if (lineno == 1) {
			if (n != sizeof(magic) - 1 || memcmp(p, magic, n) != 0) {
				error = sluice_ctx__error(ctx, SLUICE_EINVALID,
				                          "%s: line 1: expected '%s'", name, magic);
				goto done;
			}
		} else if (lineno == 2) {
			if (field(p, n, "size", &rest, &restlen) < 0 ||
			    parse_dec(&m.size, rest, restlen) < 0) {
				error = sluice_ctx__error(ctx, SLUICE_EINVALID,
				                          "%s: line 2: expected 'size <decimal>'",
				                          name);
				goto done;
			}
		} else if (lineno == 3) {
			if (field(p, n, "blake2b", &rest, &restlen) < 0 ||
			    parse_hex64(m.b2, rest, restlen) < 0) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line 3: expected 'blake2b <64 lower-case hex digits>'",
				        name);
				goto done;
			}
		} else {
			sluice_chunkref *c = &m.chunks[m.nchunks];
			if (field(p, n, "chunk", &rest, &restlen) < 0 || restlen < 66 ||
			    rest[64] != ' ' || parse_hex64(c->id, rest, 64) < 0 ||
			    parse_dec(&c->len, rest + 65, restlen - 65) < 0) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line %zu: expected 'chunk <64 lower-case "
				        "hex digits> <decimal length>'",
				        name, lineno);
				goto done;
			}
			if (c->len == 0 || c->len > SLUICE_CHUNK_MAX) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line %zu: chunk length %llu out of range "
				        "(1 to %llu)",
				        name, lineno, (unsigned long long)c->len,
				        (unsigned long long)SLUICE_CHUNK_MAX);
				goto done;
			}
			if (c->len > m.size - total) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line %zu: chunks exceed the size %llu", name, lineno,
				        (unsigned long long)m.size);
				goto done;
			}
			total += c->len;
			m.nchunks++;
		}
		p = nl + 1;
	}
	if (total != m.size) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: line %zu: chunks add up to %llu bytes, size says %llu", name, lineno,
		        (unsigned long long)total, (unsigned long long)m.size);
		goto done;
	}
	*out = m;
	m.chunks = NULL;
	error = SLUICE_OK;
done:
	free(m.chunks);
	return error;
}

void sluice_manifest__dispose(sluice_manifest *m)
{
	if (!m)
		return;
	free(m->chunks);
	m->chunks = NULL;
	m->nchunks = 0;
}
