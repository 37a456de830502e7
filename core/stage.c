/*
 * core/stage.c - a journal entry's git objects, held in memory while the
 * entry is built and then made durable together.
 *
 * libgit2 with fsync on writes each loose object as: temporary file,
 * fsync, link, fsync of objects/xx - two cache flushes per object, one
 * after the other, eight to twelve for a journal entry. Here an odb
 * backend of the highest priority holds every object written while a
 * stage is open (and answers reads of them, so the tree builder and the
 * commit can check what they refer to), and sluice_stage__commit writes
 * them as loose objects and makes them durable in one round of concurrent
 * fsyncs: every object written to a file of its own and linked to its
 * name, then the files, every directory that gained a name, objects/ and
 * the caller's file (the journal ref's lock) fsynced at once
 * (sluice_io__fsync_all).
 *
 * An object's file is made unnamed (O_TMPFILE, mode 0444) and given its
 * name by linkat of /proc/self/fd/N: no temporary name to make and remove,
 * no mode to change, nothing left behind by a crash. Where the file system
 * or the kernel has no O_TMPFILE, or /proc is not mounted, a temporary
 * name objects/xx/tmp_object_sluice_* is made, linked and removed instead;
 * a corrupt file under the object's name is replaced by a rename from such
 * a temporary name either way.
 *
 * Names before bytes are durable is safe because nothing refers to the
 * objects until the caller renames the journal ref's lock into place,
 * after this round has returned. What a power cut in the round can leave
 * is a loose object whose name reached the disk and whose bytes did not:
 * unreferenced, and unreadable. It must not be mistaken for the object
 * later, since libgit2 skips writing an object that exists: so while a
 * stage is open, an object about to be written that exists as a loose
 * file is read back and its hash checked first (be_freshen). A good one
 * is kept as it is and fsynced in the round like the new ones (it may
 * have been left by a failed action of this boot; once a round of this
 * process has made it durable it is not fsynced again); a bad one is
 * removed and written again. A commit that fails removes the names it
 * made: after an fsync error the page cache may still show bytes the disk
 * never got. The journal's blobs, its tree and its commit come in by
 * sluice_stage__object, which applies the same rule without libgit2's
 * write path (whose existence queries, for an object no backend holds,
 * rescan objects/pack/ and ask again). docs/durability.md has the whole
 * order.
 *
 * The loose files are zlib streams of stored (uncompressed) deflate
 * blocks: valid for git and libgit2, and no deflate on the action's path.
 * A later `git gc` packs and compresses them as any other object.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* O_TMPFILE */
#endif
#include "repo.h"

#include <git2/sys/odb_backend.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A kept loose object older than this (seconds) has its time refreshed. */
#define FRESHEN_AFTER 3600

typedef struct {
	git_oid id;
	git_object_t type;
	size_t len;
	unsigned char *data;
} staged;

/*
 * The last 16 loose files added: an object id and the file that held it
 * (device and inode), so a file removed and written again by someone else
 * is not taken for the one that was checked.
 */
typedef struct {
	struct {
		git_oid id;
		dev_t dev;
		ino_t ino;
	} at[16];
	unsigned count; /* how many were ever added */
} ring;

/*
 * A loose object the entry names as it is. Its type and size, when the
 * stage was handed its bytes (sluice_stage__object), answer libgit2's
 * header queries (a tree builder's check of what it is given) without
 * opening the file again; the file's device and inode, from the check that
 * found it good, let commit skip it when a round of this process made that
 * very file durable.
 */
typedef struct {
	git_oid id;
	git_object_t type; /* GIT_OBJECT_INVALID: not known here */
	size_t len;
	dev_t dev;
	ino_t ino;
	int reached; /* named by the durable journal head: neither checked nor fsynced */
} kept_obj;

struct sluice_stage {
	git_odb_backend parent; /* first: libgit2 hands back this pointer */
	int active;
	staged *obj;
	size_t n, cap;
	kept_obj *kept; /* loose objects the entry names as they are (be_freshen) */
	size_t nkept, capkept;
	int failed; /* be_freshen could not read one: commit fails */
	char failure[PATH_MAX + 1024];
	sluice_ctx *ctx;        /* the repository's: the arrays' allocations and their faults */
	git_odb_backend *loose; /* reads loose files back, without a cache */
	ring good;              /* loose files read back whole by this process */
	ring durable;           /* kept loose files a round of this process made durable */
	int no_tmpfile;         /* O_TMPFILE or /proc/self/fd is missing here: named temporaries */
	char objects[PATH_MAX]; /* REPO/objects */
};

static staged *find(struct sluice_stage *s, const git_oid *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (git_oid_equal(&s->obj[i].id, id))
			return &s->obj[i];
	return NULL;
}

static void clear(struct sluice_stage *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->obj[i].data);
	s->n = 0;
	s->nkept = 0;
	s->failed = 0;
	s->active = 0;
}

static int be_write(git_odb_backend *be, const git_oid *id, const void *data, size_t len,
                    git_object_t type)
{
	struct sluice_stage *s = (struct sluice_stage *)be;
	staged *o;

	/* Not staging: the next backend (loose objects, fsynced) writes it. */
	if (!s->active)
		return GIT_PASSTHROUGH;
	if (find(s, id))
		return 0;
	if (sluice__reserve(s->ctx, (void **)&s->obj, &s->cap, s->n + 1, sizeof(*s->obj)) < 0)
		goto oom;
	o = &s->obj[s->n];
	if (!(o->data = malloc(len ? len : 1)))
		goto oom;
	memcpy(o->data, data, len);
	o->len = len;
	o->type = type;
	o->id = *id;
	s->n++;
	return 0;
oom:
	/* An error here lets the loose backend write it instead (durably, as
	 * before); from a stream's finalize, the write fails. */
	git_error_set_str(GIT_ERROR_NOMEMORY, "out of memory staging an object");
	return -1;
}

/* A streamed write while staging: its bytes gathered, then staged whole. */
typedef struct {
	git_odb_stream parent;
	git_object_t type;
	unsigned char *data;
	size_t len, cap;
} stage_stream;

static int ws_write(git_odb_stream *stream, const char *buf, size_t len)
{
	stage_stream *w = (stage_stream *)stream;

	if (len > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 256;
		unsigned char *p;

		while (cap - w->len < len) {
			if (cap > SIZE_MAX / 2)
				goto oom;
			cap *= 2;
		}
		if (!(p = realloc(w->data, cap)))
			goto oom;
		w->data = p;
		w->cap = cap;
	}
	memcpy(w->data + w->len, buf, len);
	w->len += len;
	return 0;
oom:
	git_error_set_str(GIT_ERROR_NOMEMORY, "out of memory staging an object");
	return -1;
}

static int ws_finalize(git_odb_stream *stream, const git_oid *id)
{
	stage_stream *w = (stage_stream *)stream;

	return be_write(stream->backend, id, w->data, w->len, w->type);
}

static void ws_free(git_odb_stream *stream)
{
	stage_stream *w = (stage_stream *)stream;

	free(w->data);
	free(w);
}

static int be_writestream(git_odb_stream **out, git_odb_backend *be, git_object_size_t size,
                          git_object_t type)
{
	struct sluice_stage *s = (struct sluice_stage *)be;
	stage_stream *w;

	(void)size;
	/* Not staging: the loose backend's own stream writes it. */
	if (!s->active)
		return GIT_PASSTHROUGH;
	if (!(w = calloc(1, sizeof(*w)))) {
		git_error_set_str(GIT_ERROR_NOMEMORY, "out of memory staging an object");
		return -1;
	}
	w->parent.backend = be;
	w->parent.mode = GIT_STREAM_WRONLY;
	w->parent.write = ws_write;
	w->parent.finalize_write = ws_finalize;
	w->parent.free = ws_free;
	w->type = type;
	*out = &w->parent;
	return 0;
}

static int be_read(void **out, size_t *len, git_object_t *type, git_odb_backend *be,
                   const git_oid *id)
{
	staged *o = find((struct sluice_stage *)be, id);

	if (!o)
		return GIT_ENOTFOUND;
	if (!(*out = git_odb_backend_data_alloc(be, o->len ? o->len : 1)))
		return -1;
	memcpy(*out, o->data, o->len);
	*len = o->len;
	*type = o->type;
	return 0;
}

static const kept_obj *find_kept(const struct sluice_stage *s, const git_oid *id)
{
	for (size_t i = 0; i < s->nkept; i++)
		if (git_oid_equal(&s->kept[i].id, id))
			return &s->kept[i];
	return NULL;
}

static int be_read_header(size_t *len, git_object_t *type, git_odb_backend *be, const git_oid *id)
{
	struct sluice_stage *s = (struct sluice_stage *)be;
	staged *o = find(s, id);
	const kept_obj *k;

	if (o) {
		*len = o->len;
		*type = o->type;
		return 0;
	}
	/* A kept object whose bytes this stage hashed: no need to open its file. */
	if (s->active && (k = find_kept(s, id)) && k->type != GIT_OBJECT_INVALID) {
		*len = k->len;
		*type = k->type;
		return 0;
	}
	return GIT_ENOTFOUND;
}

static int be_exists(git_odb_backend *be, const git_oid *id)
{
	struct sluice_stage *s = (struct sluice_stage *)be;

	return find(s, id) != NULL || (s->active && find_kept(s, id) != NULL);
}

static int ring_has(const ring *r, const git_oid *id, const struct stat *st)
{
	for (unsigned i = 0; i < r->count && i < 16; i++)
		if (git_oid_equal(&r->at[i].id, id) && r->at[i].dev == st->st_dev &&
		    r->at[i].ino == st->st_ino)
			return 1;
	return 0;
}

static void ring_add(ring *r, const git_oid *id, const struct stat *st)
{
	if (!ring_has(r, id, st)) {
		unsigned i = r->count++ % 16;
		r->at[i].id = *id;
		r->at[i].dev = st->st_dev;
		r->at[i].ino = st->st_ino;
	}
}

/* REPO/objects/xx/rest of id's hex. */
static void loose_path(const struct sluice_stage *s, const git_oid *id, char *path, size_t cap)
{
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), id);
	snprintf(path, cap, "%s/%.2s/%s", s->objects, hex, hex + 2);
}

/*
 * Whether the loose file of id holds id's object whole: 1 it does (*st is
 * the file), 0 there is none, -1 it is corrupt (libgit2 cannot inflate or
 * parse it, or it holds other bytes), -2 it could not be told (the message
 * in s->failure).
 */
static int loose_check(struct sluice_stage *s, const git_oid *id, struct stat *st)
{
	char path[PATH_MAX + 48];
	void *data = NULL;
	size_t len = 0;
	git_object_t type = GIT_OBJECT_INVALID;
	git_oid got;
	const git_error *e;
	int error;

	loose_path(s, id, path, sizeof(path));
	if (stat(path, st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(s->failure, sizeof(s->failure), "cannot stat %s: %s", path,
		         strerror(errno));
		return -2;
	}
	/* Objects do not change: a file read back whole stays good. */
	if (ring_has(&s->good, id, st))
		return 1;
	if (!s->loose && git_odb_backend_loose(&s->loose, s->objects, -1, 0, 0, 0) < 0) {
		s->loose = NULL;
		snprintf(s->failure, sizeof(s->failure), "cannot read back %s", path);
		return -2;
	}
	git_error_clear();
	error = s->loose->read(&data, &len, &type, s->loose, id);
	if (error == 0) {
		error = git_odb_hash(&got, data, len, type) < 0 ? -2
		        : git_oid_equal(&got, id)               ? 1
		                                                : -1;
		git_odb_backend_data_free(s->loose, data);
		if (error == 1)
			ring_add(&s->good, id, st);
		if (error == -2)
			snprintf(s->failure, sizeof(s->failure), "cannot hash %s", path);
		return error;
	}
	e = git_error_last();
	if (error == GIT_ENOTFOUND) {
		struct stat again;
		if (stat(path, &again) < 0 && errno == ENOENT)
			return 0; /* removed meanwhile */
	} else if (e && (e->klass == GIT_ERROR_ZLIB || e->klass == GIT_ERROR_OBJECT ||
	                 e->klass == GIT_ERROR_ODB)) {
		return -1;
	}
	/* Anything else (the file came back, an I/O error, memory): not decided. */
	snprintf(s->failure, sizeof(s->failure), "cannot read back %s: %s", path,
	         e && e->message ? e->message : "unknown error");
	return -2;
}

/*
 * A corrupt loose file at id's name (a power cut in an earlier round):
 * removed, so that no backend finds it and the object is written again.
 * 0 or -2 (s->failure). Removal goes by name: a writer of the very same
 * object that replaced the file between the check and this call would
 * lose its copy, and the object is written again by whichever write
 * follows - the narrow race this leaves.
 */
static int remove_corrupt(struct sluice_stage *s, const git_oid *id)
{
	char path[PATH_MAX + 48];

	loose_path(s, id, path, sizeof(path));
	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	snprintf(s->failure, sizeof(s->failure), "cannot remove the corrupt object %s: %s", path,
	         strerror(errno));
	return -2;
}

/* A new entry of s->kept for id, zeroed but for its id; NULL without memory. */
static kept_obj *kept_add(struct sluice_stage *s, const git_oid *id)
{
	kept_obj *k;

	if (sluice__reserve(s->ctx, (void **)&s->kept, &s->capkept, s->nkept + 1,
	                    sizeof(*s->kept)) < 0)
		return NULL;
	k = &s->kept[s->nkept++];
	memset(k, 0, sizeof(*k));
	k->id = *id;
	return k;
}

/*
 * An object the open stage is about to hold: 0 when it need not be written
 * (held already, or a good loose copy exists: kept, and fsynced at commit;
 * or it could not be checked: s->failed, and commit fails), 1 when it must
 * be written (none loose; a corrupt loose copy is removed first).
 */
static int check_existing(struct sluice_stage *s, const git_oid *id, git_object_t type, size_t len)
{
	struct stat st;
	kept_obj *k;
	int state;

	if (find(s, id) || find_kept(s, id))
		return 0;
	memset(&st, 0, sizeof(st));
	state = loose_check(s, id, &st);
	if (state == -1 && (state = remove_corrupt(s, id)) == 0)
		return 1;
	if (state == 0)
		return 1;
	if (state == -2)
		s->failed = 1;
	if (state == 1 && time(NULL) - st.st_mtime >= FRESHEN_AFTER) {
		char path[PATH_MAX + 48];
		/*
		 * As libgit2's freshen does: a reused object is recent again for git
		 * prune (whose grace is two weeks). An hour's slack spares the
		 * unchanged documents of every entry a write per action.
		 */
		loose_path(s, id, path, sizeof(path));
		(void)utimensat(AT_FDCWD, path, NULL, 0);
	}
	if (!(k = kept_add(s, id))) {
		snprintf(s->failure, sizeof(s->failure), "out of memory");
		s->failed = 1;
		return 0;
	}
	k->type = state == 1 ? type : GIT_OBJECT_INVALID;
	k->len = len;
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	return 0;
}

static int be_freshen(git_odb_backend *be, const git_oid *id)
{
	struct sluice_stage *s = (struct sluice_stage *)be;

	/* 0: held here, so a second write of it is not needed. */
	if (find(s, id))
		return 0;
	if (!s->active) {
		/*
		 * Outside a stage libgit2's loose backend writes, after its own
		 * freshen, which would take a corrupt leftover for the object.
		 * Such a leftover is removed here first; anything else is left to
		 * libgit2 (1: not held here).
		 */
		struct stat st;
		if (loose_check(s, id, &st) == -1)
			(void)remove_corrupt(s, id);
		return 1;
	}
	/* 1 with none loose: another backend (packs) may hold it; else it is written. */
	return check_existing(s, id, GIT_OBJECT_INVALID, 0);
}

static void be_free(git_odb_backend *be)
{
	struct sluice_stage *s = (struct sluice_stage *)be;

	clear(s);
	if (s->loose)
		s->loose->free(s->loose);
	free(s->obj);
	free(s->kept);
	free(s);
}

int sluice_stage__object(sluice_repo *repo, git_oid *out, const void *data, size_t len,
                         git_object_t type)
{
	struct sluice_stage *s = repo->stage;
	git_odb *odb = NULL;
	int error;

	if (!s || !s->active) {
		if ((error = git_repository_odb(&odb, repo->git)) == 0)
			error = git_odb_write(out, odb, data, len, type);
		git_odb_free(odb);
		if (error < 0)
			return sluice_ctx__giterror(repo->ctx, error, "cannot write a %s",
			                            git_object_type2string(type));
		return SLUICE_OK;
	}
	if (git_odb_hash(out, data, len, type) < 0)
		return sluice_ctx__giterror(repo->ctx, -1, "cannot hash a %s",
		                            git_object_type2string(type));
	/*
	 * In a pack and not loose: written loose again (a duplicate git
	 * tolerates, and the next action finds it loose), rather than asking
	 * the pack backend, which rescans objects/pack/ on a miss.
	 */
	if (!check_existing(s, out, type, len))
		return SLUICE_OK;
	if (be_write(&s->parent, out, data, len, type) < 0)
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory staging a %s",
		                         git_object_type2string(type));
	return SLUICE_OK;
}

int sluice_stage__reached(sluice_repo *repo, const git_oid *id, git_object_t type, size_t len)
{
	struct sluice_stage *s = repo->stage;
	kept_obj *k;

	if (!s || !s->active || find(s, id) || find_kept(s, id))
		return SLUICE_OK;
	if (!(k = kept_add(s, id)))
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory");
	k->type = type;
	k->len = len;
	k->reached = 1;
	return SLUICE_OK;
}

int sluice_stage__blob(sluice_repo *repo, git_oid *out, const void *data, size_t len)
{
	return sluice_stage__object(repo, out, data, len, GIT_OBJECT_BLOB);
}

/* A tree builder's entries, gathered by git_treebuilder_filter. */
typedef struct {
	const git_tree_entry **e;
	size_t n, cap;
	int failed;
} tree_entries;

static int gather_entry(const git_tree_entry *entry, void *payload)
{
	tree_entries *t = payload;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		const git_tree_entry **p = realloc(t->e, cap * sizeof(*p));
		if (!p) {
			t->failed = 1;
			return 0;
		}
		t->e = p;
		t->cap = cap;
	}
	t->e[t->n++] = entry;
	return 0; /* keep it */
}

/*
 * git's order of tree entries: by name's bytes, a tree's name compared as
 * if it ended in '/' (so "a" the tree sorts after "a.b" and before "a0").
 */
static int entry_cmp(const void *pa, const void *pb)
{
	const git_tree_entry *a = *(const git_tree_entry *const *)pa,
	                     *b = *(const git_tree_entry *const *)pb;
	const char *na = git_tree_entry_name(a), *nb = git_tree_entry_name(b);
	size_t la = strlen(na), lb = strlen(nb), m = la < lb ? la : lb;
	int c = memcmp(na, nb, m);
	unsigned char ca, cb;

	if (c)
		return c;
	ca = la > m ? (unsigned char)na[m] : git_tree_entry_type(a) == GIT_OBJECT_TREE ? '/' : '\0';
	cb = lb > m ? (unsigned char)nb[m] : git_tree_entry_type(b) == GIT_OBJECT_TREE ? '/' : '\0';
	return (int)ca - (int)cb;
}

int sluice_stage__tree_entries(sluice_repo *repo, git_treebuilder *tb, const git_tree_entry ***out,
                               size_t *n)
{
	tree_entries t = {0};
	int error;

	*out = NULL;
	*n = 0;
	if ((error = git_treebuilder_filter(tb, gather_entry, &t)) < 0) {
		free(t.e);
		return sluice_ctx__giterror(repo->ctx, error, "cannot read a tree builder");
	}
	if (t.failed) {
		free(t.e);
		return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "out of memory building a tree");
	}
	if (t.n > 1)
		qsort(t.e, t.n, sizeof(*t.e), entry_cmp);
	*out = t.e;
	*n = t.n;
	return SLUICE_OK;
}

int sluice_stage__tree(sluice_repo *repo, git_oid *out, git_treebuilder *tb)
{
	const git_tree_entry **e = NULL;
	sluice_buf buf = {0};
	size_t n = 0;
	int error;

	if ((error = sluice_stage__tree_entries(repo, tb, &e, &n)) < 0)
		return error;
	/* Each entry: "<mode in octal> <name>\0<20-byte id>", as git writes trees. */
	for (size_t i = 0; i < n; i++) {
		if ((error = sluice_buf__printf(repo->ctx, &buf, "%o %s",
		                                (unsigned)git_tree_entry_filemode(e[i]),
		                                git_tree_entry_name(e[i]))) < 0 ||
		    (error = sluice_buf__put(repo->ctx, &buf, "", 1)) < 0 ||
		    (error = sluice_buf__put(repo->ctx, &buf, git_tree_entry_id(e[i])->id,
		                             GIT_OID_RAWSZ)) < 0)
			goto done;
	}
	error = sluice_stage__object(repo, out, buf.len ? buf.ptr : (const void *)"", buf.len,
	                             GIT_OBJECT_TREE);
done:
	free(e);
	sluice_buf__dispose(&buf);
	return error;
}

int sluice_stage__begin(sluice_repo *repo)
{
	struct sluice_stage *s;
	git_odb *odb = NULL;
	int error;

	if (repo->stage) {
		clear(repo->stage);
		repo->stage->active = 1;
		return SLUICE_OK;
	}
	if (!(s = sluice__calloc(repo->ctx, 1, sizeof(*s))))
		return SLUICE_ENOMEM;
	s->ctx = repo->ctx;
	if (snprintf(s->objects, sizeof(s->objects), "%s/objects", repo->path) >=
	    (int)sizeof(s->objects)) {
		free(s);
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID, "path too long: %s",
		                         repo->path);
	}
	if ((error = git_odb_init_backend(&s->parent, GIT_ODB_BACKEND_VERSION)) < 0) {
		free(s);
		return sluice_ctx__giterror(repo->ctx, error, "cannot set up object staging");
	}
	s->parent.read = be_read;
	s->parent.read_header = be_read_header;
	s->parent.write = be_write;
	s->parent.writestream = be_writestream;
	s->parent.exists = be_exists;
	s->parent.freshen = be_freshen;
	s->parent.free = be_free;
	/* Above every other backend: while a stage is open, writes land here. */
	if ((error = git_repository_odb(&odb, repo->git)) < 0 ||
	    (error = git_odb_add_backend(odb, &s->parent, 1000)) < 0) {
		git_odb_free(odb);
		free(s);
		return sluice_ctx__giterror(repo->ctx, error, "cannot set up object staging");
	}
	/* The odb owns the backend now and frees it with the repository. */
	git_odb_free(odb);
	repo->stage = s;
	s->active = 1;
	return SLUICE_OK;
}

void sluice_stage__abort(sluice_repo *repo)
{
	if (repo->stage)
		clear(repo->stage);
}

static uint32_t adler32(const unsigned char *p, size_t n, uint32_t a)
{
	uint32_t s1 = a & 0xffff, s2 = a >> 16;

	while (n > 0) {
		/* 5552: the most bytes before the sums can overflow 32 bits. */
		size_t k = n < 5552 ? n : 5552;
		n -= k;
		while (k--) {
			s1 += *p++;
			s2 += s1;
		}
		s1 %= 65521;
		s2 %= 65521;
	}
	return (s2 << 16) | s1;
}

/*
 * The loose object file of o: a zlib stream (RFC 1950) of stored deflate
 * blocks (RFC 1951 §3.2.4) over "<type> <size>\0<data>".
 */
static int encode_loose(sluice_ctx *ctx, sluice_buf *out, const staged *o)
{
	char head[64];
	int hn = snprintf(head, sizeof(head), "%s %zu", git_object_type2string(o->type), o->len);
	size_t total, blocks, off = 0;
	uint32_t a;
	unsigned char trailer[4];
	int error;

	if (hn < 0 || (size_t)hn >= sizeof(head))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "object header too long");
	if (o->len > SIZE_MAX - (size_t)hn - 1)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "object of %zu bytes too large",
		                         o->len);
	total = (size_t)hn + 1 + o->len;
	blocks = total / 65535 + 1;
	if (total > SIZE_MAX - 6 - 5 * blocks)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "object of %zu bytes too large",
		                         o->len);
	if ((error = sluice_buf__grow(ctx, out, total + 6 + 5 * blocks)) < 0)
		return error;
	/* CMF 0x78 (deflate, 32K window), FLG 0x01: no dictionary, check bits. */
	out->ptr[out->len++] = 0x78;
	out->ptr[out->len++] = 0x01;
	a = adler32((const unsigned char *)head, (size_t)hn + 1, 1);
	a = adler32(o->data, o->len, a);
	do {
		size_t k = total - off < 65535 ? total - off : 65535;
		unsigned char *b = out->ptr + out->len;

		b[0] = off + k == total; /* BFINAL, BTYPE 00 (stored) */
		b[1] = (unsigned char)(k & 0xff);
		b[2] = (unsigned char)(k >> 8);
		b[3] = (unsigned char)(~k & 0xff);
		b[4] = (unsigned char)((~k >> 8) & 0xff);
		out->len += 5;
		/* The bytes of [off, off + k) of header + NUL + data. */
		for (size_t i = off; i < off + k;) {
			size_t hl = (size_t)hn + 1;
			if (i < hl) {
				size_t m = (hl < off + k ? hl : off + k) - i;
				memcpy(out->ptr + out->len, head + i, m);
				out->len += m;
				i += m;
			} else {
				size_t m = off + k - i;
				memcpy(out->ptr + out->len, o->data + (i - hl), m);
				out->len += m;
				i += m;
			}
		}
		off += k;
	} while (off < total);
	trailer[0] = (unsigned char)(a >> 24);
	trailer[1] = (unsigned char)(a >> 16);
	trailer[2] = (unsigned char)(a >> 8);
	trailer[3] = (unsigned char)a;
	return sluice_buf__put(ctx, out, trailer, 4);
}

typedef struct {
	char tmp[PATH_MAX]; /* the temporary file, while it has that name too */
	char dst[PATH_MAX];
	int fd;
	int named;      /* dst was made by this commit (link or rename) */
	struct stat st; /* a kept object's file */
} pending;

/* fsync fds[0..n) in groups the thread helper accepts. */
static int fsync_groups(sluice_ctx *ctx, const int *fds, const char *const *what, size_t n)
{
	int error = SLUICE_OK;

	for (size_t i = 0; i < n && error == SLUICE_OK; i += SLUICE_IO_FSYNC_MAX)
		error = sluice_io__fsync_all(ctx, fds + i, what + i,
		                             n - i < SLUICE_IO_FSYNC_MAX ? n - i
		                                                         : SLUICE_IO_FSYNC_MAX);
	return error;
}

/* path = REPO/objects/xx/rest of id's hex (loose_path's name) and dir = its objects/xx. */
static int loose_paths(sluice_ctx *ctx, const struct sluice_stage *s, const git_oid *id,
                       char dir[PATH_MAX], char path[PATH_MAX])
{
	char full[PATH_MAX + 48];
	size_t len;

	loose_path(s, id, full, sizeof(full));
	if ((len = strlen(full)) >= PATH_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", s->objects);
	memcpy(path, full, len + 1);
	/* Without "/" and the 38 hex digits of the file's name. */
	len -= GIT_OID_HEXSZ - 1;
	memcpy(dir, full, len);
	dir[len] = '\0';
	return SLUICE_OK;
}

/*
 * The file that will hold an object in dir (objects/xx, made when missing):
 * an unnamed file (O_TMPFILE), read-only from the start as git leaves its
 * objects, or where the file system or kernel has none, a temporary name
 * (p->tmp). *out is the descriptor.
 */
static int open_object_file(struct sluice_stage *s, sluice_ctx *ctx, pending *p, const char *dir,
                            int named, int *out)
{
	int fd = -1;

	p->tmp[0] = '\0';
	for (int attempt = 0; attempt < 2; attempt++) {
#ifdef O_TMPFILE
		if (!named && !s->no_tmpfile) {
			fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
			/* No O_TMPFILE: EOPNOTSUPP from the file system, EISDIR or EINVAL from an
			 * old kernel. */
			if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
				s->no_tmpfile = 1;
		}
#endif
		if (named || s->no_tmpfile) {
			if (snprintf(p->tmp, sizeof(p->tmp), "%s/tmp_object_sluice_XXXXXX", dir) >=
			    (int)sizeof(p->tmp)) {
				p->tmp[0] = '\0';
				return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s",
				                         dir);
			}
			if ((fd = mkstemp(p->tmp)) < 0)
				p->tmp[0] = '\0';
			else
				/* Read-only, as git and libgit2 leave their objects. */
				(void)fchmod(fd, 0444);
		}
		/* objects/xx made only when missing: one call fewer per object. */
		if (fd >= 0 || errno != ENOENT || attempt > 0)
			break;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return sluice_ctx__oserror(ctx, "cannot create %s", dir);
	}
	if (fd < 0)
		return sluice_ctx__oserror(ctx, "cannot create a file for an object in %s", dir);
	*out = fd;
	return SLUICE_OK;
}

/*
 * Gives the file p->fd its name p->dst: linkat of /proc/self/fd/N for an
 * unnamed file, link for a temporary name. 0, or -1 with errno (EEXIST:
 * there is a file of that name already). Without /proc, unnamed files are
 * not used again (ENOENT is returned and s->no_tmpfile set).
 */
static int name_object_file(struct sluice_stage *s, const pending *p)
{
	char proc[64];

	if (p->tmp[0])
		return link(p->tmp, p->dst);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", p->fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, p->dst, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno == ENOENT && access("/proc/self/fd", F_OK) < 0) {
		s->no_tmpfile = 1;
		errno = ENOENT;
	}
	return -1;
}

/*
 * Writes o's loose file (its bytes in enc) and names it p->dst; on return
 * p->fd is the file to fsync: the new one, or a good copy found under that
 * name (written meanwhile by another writer, or a leftover of a crash). A
 * corrupt copy under the name is replaced, by a rename from a temporary
 * name (an unnamed file cannot be renamed over it).
 */
static int place_object(struct sluice_stage *s, sluice_ctx *ctx, const staged *o, pending *p,
                        const char *dir, const sluice_buf *enc)
{
	int named = 0, error, state;

	for (;;) {
		if ((error = open_object_file(s, ctx, p, dir, named, &p->fd)) < 0)
			return error;
		if ((error = sluice_io__write_all(ctx, p->fd, enc->ptr, enc->len,
		                                  p->tmp[0] ? p->tmp : p->dst)) < 0)
			return error;
		if (name_object_file(s, p) == 0) {
			p->named = 1;
			return SLUICE_OK;
		}
		if (errno == ENOENT && !p->tmp[0] && s->no_tmpfile) {
			/* No /proc to link from: this object and the rest by temporary names. */
			close(p->fd);
			p->fd = -1;
			continue;
		}
		if (errno != EEXIST)
			return sluice_ctx__oserror(ctx, "cannot link %s to %s",
			                           p->tmp[0] ? p->tmp : "a new file", p->dst);
		if ((state = loose_check(s, &o->id, &p->st)) == -2)
			return sluice_ctx__error(ctx, SLUICE_EIO, "%s", s->failure);
		if (state == 1) {
			/* Good as it is: fsynced below like a kept object. */
			close(p->fd);
			if (p->tmp[0])
				unlink(p->tmp);
			p->tmp[0] = '\0';
			if ((p->fd = open(p->dst, O_RDONLY | O_CLOEXEC)) < 0)
				return sluice_ctx__oserror(ctx, "cannot open %s", p->dst);
			return SLUICE_OK;
		}
		if (!p->tmp[0]) {
			/* Corrupt, or gone since: again, from a temporary name. */
			close(p->fd);
			p->fd = -1;
			named = 1;
			continue;
		}
		if (rename(p->tmp, p->dst) < 0)
			return sluice_ctx__oserror(ctx, "cannot rename %s to %s", p->tmp, p->dst);
		p->tmp[0] = '\0';
		p->named = 1;
		return SLUICE_OK;
	}
}

int sluice_stage__commit(sluice_repo *repo, int also_fd, const char *also_what)
{
	struct sluice_stage *s = repo->stage;
	sluice_ctx *ctx = repo->ctx;
	pending *p = NULL;
	int *fds = NULL;
	const char **what = NULL;
	char(*dirs)[PATH_MAX] = NULL;
	size_t n = 0, k = 0, nf = 0, nd = 0, nopen, first_dir = 0, i, j;
	sluice_buf enc = {0};
	int error = SLUICE_OK;

	if (s && s->active && s->failed) {
		error = sluice_ctx__error(ctx, SLUICE_EIO, "%s", s->failure);
		goto done;
	}
	if (!s || !s->active || (s->n == 0 && s->nkept == 0)) {
		if (s)
			clear(s);
		return also_fd >= 0 ? sluice_io__fsync(ctx, also_fd, also_what) : SLUICE_OK;
	}
	s->active = 0;
	n = s->n;
	k = s->nkept;
	first_dir = n + k; /* fds[first_dir..] are directories (and -1 until opened) */
	/* fds: one per object (new or kept), one per object's directory, objects/, also_fd. */
	if (!(p = sluice__calloc(ctx, n + k, sizeof(*p)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < n + k; i++)
		p[i].fd = -1;
	if (!(fds = sluice__calloc(ctx, 2 * (n + k) + 2, sizeof(*fds)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < 2 * (n + k) + 2; i++)
		fds[i] = -1;
	if (!(what = sluice__calloc(ctx, 2 * (n + k) + 2, sizeof(*what))) ||
	    !(dirs = sluice__calloc(ctx, n + k + 1, sizeof(*dirs)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	/* Every new object written to a file of its own and linked to its name. */
	for (i = 0; i < n; i++) {
		if ((error = loose_paths(ctx, s, &s->obj[i].id, dirs[nd], p[i].dst)) < 0)
			goto done;
		enc.len = 0;
		if ((error = encode_loose(ctx, &enc, &s->obj[i])) < 0 ||
		    (error = place_object(s, ctx, &s->obj[i], &p[i], dirs[nd], &enc)) < 0)
			goto done;
		/*
		 * One directory fsync per object even when two share objects/xx:
		 * they run at once, and an action's calls stay the same in number
		 * from run to run (the crash tests kill at the N-th call).
		 */
		nd++;
		fds[nf] = p[i].fd;
		what[nf++] = p[i].tmp[0] ? p[i].tmp : p[i].dst;
	}
	/*
	 * Objects the entry names as they already were: made durable too,
	 * unless a round of this process did so already (keys.json and the
	 * other unchanged documents of every entry).
	 */
	for (j = 0; j < k; j++, i++) {
		/* The file the check found good this action, durable already: nothing to open. */
		p[i].st.st_dev = s->kept[j].dev;
		p[i].st.st_ino = s->kept[j].ino;
		if (s->kept[j].reached || ring_has(&s->durable, &s->kept[j].id, &p[i].st))
			continue;
		if ((error = loose_paths(ctx, s, &s->kept[j].id, dirs[nd], p[i].dst)) < 0)
			goto done;
		if ((p[i].fd = open(p[i].dst, O_RDONLY | O_CLOEXEC)) < 0) {
			error = sluice_ctx__oserror(ctx, "cannot open %s", p[i].dst);
			goto done;
		}
		/* The file that is there now: what the round makes durable, and remembers. */
		if (fstat(p[i].fd, &p[i].st) < 0) {
			error = sluice_ctx__oserror(ctx, "cannot stat %s", p[i].dst);
			goto done;
		}
		nd++;
		fds[nf] = p[i].fd;
		what[nf++] = p[i].dst;
	}
	/* objects/ itself, whose entry for a new objects/xx must be durable too. */
	if (snprintf(dirs[nd], sizeof(dirs[nd]), "%s", s->objects) >= (int)sizeof(dirs[nd])) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", s->objects);
		goto done;
	}
	nd++;
	first_dir = nf;
	for (j = 0; j < nd; j++) {
		if ((fds[nf] = open(dirs[j], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			error = sluice_ctx__oserror(ctx, "cannot open directory %s", dirs[j]);
			goto done;
		}
		what[nf++] = dirs[j];
	}
	nopen = nf;
	/*
	 * The caller's file (the journal ref's lock file, written with the new
	 * head) joins the round: it names the entry but takes effect only when
	 * renamed, after this returns.
	 */
	if (also_fd >= 0) {
		fds[nf] = also_fd;
		what[nf++] = also_what;
	}
	/* One round: bytes, names and the lock, all durable before the rename. */
	error = fsync_groups(ctx, fds, what, nf);
	fds[nopen] = -1; /* the caller's to close */
	if (error == SLUICE_OK)
		for (j = 0; j < k; j++)
			if (p[n + j].fd >= 0)
				ring_add(&s->durable, &s->kept[j].id, &p[n + j].st);
done:
	if (error < 0 && s) {
		/*
		 * A failed round leaves names whose bytes may never reach the disk
		 * (after an fsync error Linux keeps the page, marked clean, and
		 * reports the error once): a retry would read them back good from
		 * the cache and name them. The names this commit made are removed
		 * (only while they are still its files), and nothing read back so
		 * far is trusted.
		 */
		for (i = 0; p && i < n; i++) {
			struct stat a, b;
			if (p[i].named && p[i].fd >= 0 && fstat(p[i].fd, &a) == 0 &&
			    lstat(p[i].dst, &b) == 0 && a.st_dev == b.st_dev &&
			    a.st_ino == b.st_ino)
				unlink(p[i].dst);
		}
		s->good.count = 0;
		s->durable.count = 0;
	}
	if (p)
		for (i = 0; i < n + k; i++) {
			if (p[i].fd >= 0)
				close(p[i].fd);
			if (p[i].tmp[0])
				unlink(p[i].tmp);
		}
	if (fds)
		for (j = first_dir; j < 2 * (n + k) + 2; j++)
			if (fds[j] >= 0)
				close(fds[j]);
	sluice_buf__dispose(&enc);
	free(p);
	free(fds);
	free(what);
	free(dirs);
	clear(s);
	return error;
}
