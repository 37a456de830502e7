/*
 * core/verify.c - sluice verify (read-only: says what is wrong, fixes
 * nothing) and sluice reindex (rebuilds the derived LMDB index).
 *
 * What verify checks, in order:
 *  1. the journal: every entry signed by a key that the registry before it
 *     (for the first entry: its own) holds with the role the action needs;
 *     records parse; a propose entry's second parent is its version; entry
 *     times never go backwards; every move obeys the rules of its kind
 *     on what its channel held and had withdrawn before it (replayed from
 *     the move records, as the journal index answers it when deciding),
 *     and a format-1 channels.json's lists agree with that replay;
 *  2. every version the journal brought in: its signature (proposer role),
 *     state.json's shape and path safety, each file's tree entry, blob
 *     digest or manifest (size, whole-file digest recomputed from its
 *     chunks), and B2SUMS;
 *  3. the chunk packs: every record's bytes against its id, trailers, and
 *     the index against the packs.
 */
#include "dsse.h"
#include "jindex.h"
#include "version.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vctx {
	sluice_repo *repo;
	json_t *problems;
	json_t *notes;          /* not problems: e.g. an unsealed pack left by a killed writer */
	json_t *seen_manifests; /* blob oid hex -> true */
	json_t *seen_blobs;     /* blob oid hex -> "digest size" it was found to match */
	json_t *reachable;      /* versions reachable from the entry being checked -> true */
	json_t *purged;         /* trust.json's "purged" at the head: blake2b -> tombstone */
	json_t *held;           /* channel -> {version hex -> true}: the moves replayed */
	json_t *withdrawn;      /* channel -> {version hex -> true} */
	uint64_t entries, versions, files, chunks;
	sluice_version *v;
	const char *vhex;
	int devnull;
};

static void problem(struct vctx *vc, const char *fmt, ...) SLUICE_PRINTF(2, 3);
static void problem(struct vctx *vc, const char *fmt, ...)
{
	char buf[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(vc->problems, json_string(buf));
}

static void report_pack_problem(void *data, const char *text)
{
	struct vctx *vc = data;

	/* Leftovers of a writer that stopped before its commit point are notes. */
	if (!strncmp(text, "note: ", 6))
		json_array_append_new(vc->notes, json_string(text + 6));
	else
		problem(vc, "chunks: %s", text);
}

/* json_equal, with two absent values equal. */
static int same(json_t *a, json_t *b)
{
	return (!a && !b) || (a && b && json_equal(a, b));
}

static int is_root_change(const char *action)
{
	return !strcmp(action, "key.add") || !strcmp(action, "key.revoke") ||
	       !strcmp(action, "root.rotate") || !strcmp(action, "policy.set") ||
	       !strcmp(action, "root.sign") || !strcmp(action, "role.threshold");
}

/*
 * What an entry changed beyond channels: keys, thresholds, the policy and
 * pending root changes are root business. Only a root change may touch
 * them; it may add only its own signer's signature to a pending change;
 * and it may apply one only with the signatures the thresholds ask
 * (core/trust.c). So one stolen key cannot rewrite the rules even by
 * writing journal entries by hand.
 */
static void check_authority(struct vctx *vc, const sluice_jstate *prevst,
                            const sluice_jstate *curst, json_t *rec, const char *signer,
                            const char *hex)
{
	const sluice_jstate prev = *prevst, cur = *curst;
	const char *action = sluice__jstr(json_object_get(rec, "action")), *cid;
	json_t *p, *q;
	const char *fp = sluice__jstr(
	        json_object_get(json_object_get(prev.keys, signer ? signer : ""), "fingerprint"));
	int rules_changed, pending_changed;

	rules_changed = !same(prev.keys, cur.keys) ||
	                !same(json_object_get(prev.trust, "thresholds"),
	                      json_object_get(cur.trust, "thresholds")) ||
	                !same(json_object_get(prev.trust, "policy"),
	                      json_object_get(cur.trust, "policy")) ||
	                prev.has_policies != cur.has_policies ||
	                (prev.has_policies && !git_oid_equal(&prev.policies, &cur.policies));
	/* The purged set: only a purge changes it, and only by adding. */
	p = json_object_get(prev.trust, "purged");
	q = json_object_get(cur.trust, "purged");
	if (!same(p, q)) {
		const char *d;
		json_t *e;
		int removed = 0;
		json_object_foreach(p, d, e) removed |= !same(e, json_object_get(q, d));
		if (strcmp(action, "purge"))
			problem(vc,
			        "journal entry %.12s: a %s entry changes the purged set, which "
			        "only purge entries may",
			        hex, action);
		else if (removed)
			problem(vc,
			        "journal entry %.12s: a purge takes content out of the purged set",
			        hex);
	}
	/* Co-signatures: only a cosign entry adds one, its own signer's, and none leaves. */
	p = json_object_get(prev.trust, "cosigned");
	q = json_object_get(cur.trust, "cosigned");
	if (!same(p, q)) {
		const char *ver, *cfp;
		json_t *e, *k;
		int bad = strcmp(action, "cosign") != 0;
		json_object_foreach(p, ver, e) json_object_foreach(e, cfp, k) bad |=
		        !json_object_get(json_object_get(q, ver), cfp);
		json_object_foreach(q, ver, e) json_object_foreach(e, cfp, k) bad |=
		        !json_object_get(json_object_get(p, ver), cfp) && strcmp(cfp, fp);
		if (bad)
			problem(vc,
			        "journal entry %.12s: a %s entry changes co-signatures other than "
			        "by adding its own signer's",
			        hex, action);
	}
	p = json_object_get(prev.trust, "pending");
	q = json_object_get(cur.trust, "pending");
	pending_changed = !same(p, q) && !(json_object_size(p) == 0 && json_object_size(q) == 0);
	if ((rules_changed || pending_changed) && !is_root_change(action)) {
		problem(vc,
		        "journal entry %.12s: a %s entry changes keys, thresholds, the policy or "
		        "pending root changes, which only root changes may",
		        hex, action);
	} else if (rules_changed && !sluice_trust__entry_authorised(&prev, rec, fp)) {
		problem(vc,
		        "journal entry %.12s: %s applies a root change without the root "
		        "signatures its thresholds ask",
		        hex, action);
	} else if (pending_changed) {
		/* Each pending change may gain only this entry's signer. */
		json_t *e;
		/* And leaves pending only when this entry applied it, or it had expired. */
		json_object_foreach(p, cid, e)
		{
			const char *exp = json_string_value(json_object_get(e, "expires"));
			if (json_object_get(q, cid) ||
			    (!strcmp(sluice__jstr(json_object_get(rec, "change")), cid) &&
			     json_is_true(json_object_get(rec, "applied"))) ||
			    (exp && strcmp(cur.time, exp) >= 0))
				continue;
			problem(vc,
			        "journal entry %.12s: root change %.12s leaves the pending ones "
			        "without being applied or having expired",
			        hex, cid);
		}
		json_object_foreach(q, cid, e)
		{
			json_t *before = json_object_get(p, cid), *v;
			size_t k;
			const char *lists[] = {"signers", "new_signers"};
			for (int l = 0; l < 2; l++)
				json_array_foreach(json_object_get(e, lists[l]), k, v)
				{
					json_t *w;
					size_t m;
					int had = 0;
					json_array_foreach(json_object_get(before, lists[l]), m, w)
					        had |= json_equal(v, w);
					if (!had && strcmp(sluice__jstr(v), fp))
						problem(vc,
						        "journal entry %.12s: root change %.12s "
						        "gains a "
						        "signature of a key that did not sign this "
						        "entry",
						        hex, cid);
				}
		}
	}
}

/*
 * A purge's tombstone: a DSSE envelope signed by the entry's signer whose
 * statement is a tombstone predicate about the version the record names.
 */
static void check_tombstone(struct vctx *vc, json_t *rec, json_t *registry, const char *signer,
                            const char *hex)
{
	sluice_ctx *ctx = vc->repo->ctx;
	sluice_dsse_envelope env = {0};
	unsigned char pk[32];
	char *text = json_dumps(json_object_get(rec, "tombstone"), JSON_COMPACT), *ptype = NULL;
	const char *pub = sluice__jstr(
	        json_object_get(json_object_get(registry, signer ? signer : ""), "public_key"));
	json_t *stmt = NULL;

	if (!text || sluice_dsse__parse(ctx, &env, text, strlen(text)) < 0 ||
	    sluice_keys__parse_openssh_pub(ctx, pk, pub, strlen(pub)) < 0 ||
	    sluice_dsse__verify(ctx, &env, pk) < 0 ||
	    sluice_statement__check(ctx, env.payload, env.payload_len, &ptype) < 0) {
		problem(vc, "journal entry %.12s: tombstone: %s", hex, sluice_ctx_errmsg(ctx));
		goto done;
	}
	stmt = json_loadb((const char *)env.payload, env.payload_len, 0, NULL);
	if (strcmp(ptype, "urn:sluice:predicate:tombstone:v1") ||
	    strcmp(sluice__jstr(json_object_get(json_object_get(stmt, "predicate"), "version")),
	           sluice__jstr(json_object_get(rec, "version"))) ||
	    strcmp(sluice__jstr(json_object_get(
	                   json_object_get(json_array_get(json_object_get(stmt, "subject"), 0),
	                                   "digest"),
	                   "blake2b256")),
	           sluice__jstr(json_object_get(rec, "subject"))))
		problem(vc,
		        "journal entry %.12s: tombstone is not a tombstone statement about the "
		        "purged version",
		        hex);
done:
	json_decref(stmt);
	free(ptype);
	free(text);
	sluice_dsse__dispose(&env);
}

static int check_file(void *data, json_t *f)
{
	struct vctx *vc = data;
	sluice_repo *repo = vc->repo;
	const char *path = json_string_value(json_object_get(f, "path"));
	const char *want = json_string_value(json_object_get(f, "blake2b"));
	uint64_t size = (uint64_t)json_integer_value(json_object_get(f, "size"));
	git_tree_entry *te = NULL;
	sluice_buf blob = {0};
	sluice_manifest m = {0};
	sluice_chunkstore *cs;
	char tpath[4200], hex[SLUICE_B2_HEX], bhex[GIT_OID_HEXSZ + 1];

	vc->files++;
	{
		/* Purged content is gone on purpose: a note naming its tombstone. */
		json_t *t = json_object_get(vc->purged, want ? want : "");
		if (t) {
			char note[1200];
			snprintf(note, sizeof(note),
			         "version %.12s: %s purged (tombstone entry #%lld, purge of %.12s)",
			         vc->vhex, path,
			         (long long)json_integer_value(json_object_get(t, "seq")),
			         sluice__jstr(json_object_get(t, "version")));
			json_array_append_new(vc->notes, json_string(note));
			return SLUICE_OK;
		}
	}
	snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
	if (git_tree_entry_bypath(&te, vc->v->tree, tpath) < 0) {
		problem(vc, "version %.12s: %s is missing from its tree", vc->vhex, tpath);
		goto done;
	}
	git_oid_tostr(bhex, sizeof(bhex), git_tree_entry_id(te));
	if (strcmp(sluice__jstr(json_object_get(f, "storage")), "chunks")) {
		unsigned char h[SLUICE_B2_LEN];
		char key[SLUICE_B2_HEX + 24];
		/*
		 * A blob found to match this digest and size before need not be
		 * read again: versions share most of their files.
		 */
		snprintf(key, sizeof(key), "%s %llu", want ? want : "", (unsigned long long)size);
		if (!strcmp(sluice__jstr(json_object_get(vc->seen_blobs, bhex)), key))
			goto done;
		if (sluice_repo__read_blob(repo, &blob, git_tree_entry_id(te), tpath) < 0) {
			problem(vc, "version %.12s: %s", vc->vhex, sluice_ctx_errmsg(repo->ctx));
			goto done;
		}
		sluice__b2(h, blob.ptr, blob.len);
		sluice__hex(hex, h, SLUICE_B2_LEN);
		if (blob.len != size || strcmp(hex, want))
			problem(vc, "version %.12s: %s: content does not match its digest %s",
			        vc->vhex, path, want);
		else
			json_object_set_new(vc->seen_blobs, bhex, json_string(key));
		goto done;
	}
	if (json_object_get(vc->seen_manifests, bhex))
		goto done;
	json_object_set_new(vc->seen_manifests, bhex, json_true());
	if (sluice_repo__read_blob(repo, &blob, git_tree_entry_id(te), tpath) < 0) {
		problem(vc, "version %.12s: %s", vc->vhex, sluice_ctx_errmsg(repo->ctx));
		goto done;
	}
	if (sluice_manifest__parse(repo->ctx, &m, blob.ptr, blob.len, tpath) < 0) {
		problem(vc, "version %.12s: %s", vc->vhex, sluice_ctx_errmsg(repo->ctx));
		goto done;
	}
	sluice__hex(hex, m.b2, SLUICE_B2_LEN);
	if (m.size != size || strcmp(hex, want)) {
		problem(vc, "version %.12s: %s: manifest does not match state.json", vc->vhex,
		        path);
		goto done;
	}
	if (sluice_repo__chunks(repo, &cs) < 0) {
		problem(vc, "%s", sluice_ctx_errmsg(repo->ctx));
		goto done;
	}
	for (size_t i = 0; i < m.nchunks; i++) {
		if (sluice_chunkstore__has(cs, m.chunks[i].id) != 1) {
			char chex[SLUICE_B2_HEX];
			sluice__hex(chex, m.chunks[i].id, SLUICE_B2_LEN);
			problem(vc, "version %.12s: %s: chunk %zu (%s) is missing", vc->vhex, path,
			        i, chex);
			goto done;
		}
	}
	vc->chunks += m.nchunks;
	/* Recompute the whole file's digest from its chunks. */
	if (sluice_chunkstore__materialize(cs, &m, vc->devnull, path) < 0)
		problem(vc, "version %.12s: %s", vc->vhex, sluice_ctx_errmsg(repo->ctx));
done:
	sluice_manifest__dispose(&m);
	sluice_buf__dispose(&blob);
	git_tree_entry_free(te);
	return SLUICE_OK;
}

static void check_version(struct vctx *vc, const git_oid *id, json_t *registry)
{
	sluice_repo *repo = vc->repo;
	sluice_version v = {0};
	sluice_buf sums = {0}, stored = {0};
	const git_tree_entry *te;
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), id);
	vc->versions++;
	if (sluice_repo__check_commit_sig(repo, id, registry, "proposer", NULL) < 0)
		problem(vc, "version %.12s: %s", hex, sluice_ctx_errmsg(repo->ctx));
	if (sluice_version__load_id(repo, &v, id) < 0) {
		problem(vc, "version %.12s: %s", hex, sluice_ctx_errmsg(repo->ctx));
		return;
	}
	{
		json_t *p = json_object_get(v.update, "parent");
		char phex[GIT_OID_HEXSZ + 1] = "";
		if (git_commit_parentcount(v.commit) > 0)
			git_oid_tostr(phex, sizeof(phex), git_commit_parent_id(v.commit, 0));
		if (strcmp(json_is_string(p) ? json_string_value(p) : "", phex))
			problem(vc,
			        "version %.12s: update.json names a parent other than the commit's",
			        hex);
	}
	vc->v = &v;
	vc->vhex = hex;
	sluice_version__each_file(v.state, check_file, vc);
	te = git_tree_entry_byname(v.tree, "B2SUMS");
	if (sluice_version__b2sums(repo->ctx, v.state, &sums) < 0 || !te ||
	    sluice_repo__read_blob(repo, &stored, git_tree_entry_id(te), "B2SUMS") < 0 ||
	    stored.len != sums.len || memcmp(stored.ptr, sums.ptr, sums.len))
		problem(vc, "version %.12s: B2SUMS does not match state.json", hex);
	sluice_buf__dispose(&sums);
	sluice_buf__dispose(&stored);
	sluice_version__dispose(&v);
}

static json_t *replay_set(json_t *sets, const char *channel)
{
	json_t *s = json_object_get(sets, channel);

	if (!s) {
		s = json_object();
		json_object_set_new(sets, channel, s);
	}
	return s;
}

/* An id list of a format-1 channels.json as the set the replay keeps. */
static int same_set(json_t *list, json_t *set)
{
	size_t i, n = 0;
	json_t *v;

	json_array_foreach(list, i, v)
	{
		if (!json_object_get(set, sluice__jstr(v)))
			return 0;
		n++;
	}
	return n == json_object_size(set);
}

/*
 * A move or an anchor against what its channel held and had withdrawn
 * before it (the facts sluice_jindex__held answers when deciding), then
 * those facts after it. A format-1 channels.json kept them as lists: they
 * must say the same as the records.
 */
static void check_move_rules(struct vctx *vc, const git_oid *entry, json_t *rec, const char *action,
                             const char *hex)
{
	const char *ch = sluice__jstr(json_object_get(rec, "channel")),
	           *to = sluice__jstr(json_object_get(rec, "to")),
	           *from = sluice__jstr(json_object_get(rec, "from"));
	json_t *held = replay_set(vc->held, ch), *wd = replay_set(vc->withdrawn, ch), *doc = NULL;

	if (!strcmp(action, "anchor")) {
		const char *a = sluice__jstr(json_object_get(rec, "anchor"));
		if (!json_object_get(held, a))
			problem(vc,
			        "journal entry %.12s: anchors channel %s on %.12s, which it never "
			        "held",
			        hex, ch, a);
		return;
	}
	if (!strcmp(action, "promote") && json_object_get(wd, to) &&
	    !json_is_string(json_object_get(rec, "override_withdrawn")))
		problem(vc,
		        "journal entry %.12s: promotes %.12s to channel %s, which a rollback "
		        "withdrew from it, with no override reason",
		        hex, to, ch);
	if (!strcmp(action, "rollback") && (!json_object_get(held, to) || !strcmp(to, from)))
		problem(vc,
		        "journal entry %.12s: rolls channel %s back to %.12s, which it never held "
		        "before",
		        hex, ch, to);
	if (*to)
		json_object_set_new(held, to, json_true());
	if (!strcmp(action, "rollback") && *from)
		json_object_set_new(wd, from, json_true());
	if (strcmp(action, "reset"))
		json_object_del(wd, to);
	/* Format 1 wrote the lists into the entry itself. */
	if (sluice_journal__channels_raw(vc->repo, &doc, entry) == 0 && doc &&
	    json_integer_value(json_object_get(doc, "format")) == 1) {
		json_t *c = json_object_get(json_object_get(doc, "channels"), ch);
		if (!same_set(json_object_get(c, "held"), held) ||
		    !same_set(json_object_get(c, "withdrawn"), wd))
			problem(vc,
			        "journal entry %.12s: its channels.json (format 1) lists what "
			        "channel %s held or had withdrawn otherwise than its moves say",
			        hex, ch);
	}
	sluice_ctx_clear_error(vc->repo->ctx);
	json_decref(doc);
}

/* The channels' sets without the empty ones (a channel replayed with nothing withdrawn). */
static json_t *nonempty(json_t *sets)
{
	json_t *out = json_object(), *v;
	const char *k;

	json_object_foreach(sets, k, v) if (json_object_size(v)) json_object_set(out, k, v);
	return out;
}

/*
 * Moves are decided on what the journal index says each channel held and
 * had withdrawn; at the index's head (the journal's head, or an earlier
 * entry: an action leaves the index to the next reader) it must say what
 * the replay of the moves up to that entry says (want_*). It is derived, so a difference is a note
 * (sluice reindex rebuilds it), but one that says a move may have been decided wrongly.
 */
static void check_index_facts(struct vctx *vc, const git_oid *head, json_t *want_held,
                              json_t *want_withdrawn)
{
	json_t *held = NULL, *withdrawn = NULL, *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	git_oid at;

	if (sluice_jindex__facts(vc->repo, &at, &held, &withdrawn) < 0 || !git_oid_equal(&at, head))
		return;
	a = nonempty(held);
	b = nonempty(want_held);
	c = nonempty(withdrawn);
	d = nonempty(want_withdrawn);
	if (!json_equal(a, b) || !json_equal(c, d))
		json_array_append_new(
		        vc->notes,
		        json_string(
		                "journal index: what it says channels held or had withdrawn "
		                "differs from the journal's moves, and moves are decided on it: "
		                "run sluice reindex before the next move"));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
	json_decref(held);
	json_decref(withdrawn);
}

/*
 * Loose objects whose bytes never reached the disk: a journal entry's
 * objects are named before the round of fsyncs that makes their bytes
 * durable (core/stage.c), so a power cut in that round can leave a name
 * with an empty file or zeroed blocks behind it. Nothing refers to such an
 * object (the journal ref moves only after the round), and sluice writes
 * it again if an entry needs it; git fsck reports it as corrupt. Each is a
 * note: were one referred to, reading it in the checks above would have
 * been a problem. Only the first two bytes are read: every loose object is a zlib
 * stream, whose header is 0x78 then a byte that makes the pair a multiple
 * of 31.
 */
static void check_loose_leftovers(struct vctx *vc, const char *gitdir)
{
	char dir[4200], path[4300];
	DIR *top, *sub;
	struct dirent *d, *e;

	snprintf(dir, sizeof(dir), "%s/objects", gitdir);
	if (!(top = opendir(dir)))
		return;
	while ((d = readdir(top))) {
		if (strlen(d->d_name) != 2 || !isxdigit((unsigned char)d->d_name[0]) ||
		    !isxdigit((unsigned char)d->d_name[1]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if (!(sub = opendir(path)))
			continue;
		while ((e = readdir(sub))) {
			unsigned char h[2];
			ssize_t got;
			int fd;

			if (strlen(e->d_name) != GIT_OID_HEXSZ - 2)
				continue;
			snprintf(path, sizeof(path), "%s/%s/%s", dir, d->d_name, e->d_name);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				continue;
			got = read(fd, h, 2);
			close(fd);
			if (got < 0)
				continue; /* unreadable for another reason: not this check's to
				             judge */
			if (got == 2 && (h[0] & 0x0f) == 8 && ((h[0] << 8) | h[1]) % 31 == 0)
				continue;
			{
				char note[4600];
				snprintf(note, sizeof(note),
				         "objects/%s/%s: a loose object without its bytes (%s), as "
				         "a write "
				         "that a power cut interrupted leaves; sluice writes it "
				         "again if "
				         "an entry needs it; if no problem above names it, nothing "
				         "verify read refers to it and it can be deleted (git fsck "
				         "reports it as corrupt)",
				         d->d_name, e->d_name,
				         got <= 0 ? "empty" : "not a zlib stream");
				json_array_append_new(vc->notes, json_string(note));
			}
		}
		closedir(sub);
	}
	closedir(top);
}

int sluice_repo_verify(sluice_repo *repo, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	struct vctx vc = {.repo = repo,
	                  .problems = json_array(),
	                  .notes = json_array(),
	                  .seen_manifests = json_object(),
	                  .seen_blobs = json_object(),
	                  .reachable = json_object(),
	                  .held = json_object(),
	                  .withdrawn = json_object(),
	                  .devnull = -1};
	sluice_jstate head_st = {0}, prevst;
	git_revwalk *walk = NULL;
	git_oid head, id, *entries = NULL;
	size_t n = 0, cap = 0;
	sluice_chunkstore *cs;
	int exists, error, ok, have_ix;
	git_oid ihead;
	uint64_t iseq = 0;
	json_t *ix_held = NULL, *ix_withdrawn = NULL; /* the replay at the index's head */
	char ixerr[1024];

	vc.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if ((error = sluice_journal__head(repo, &head, &exists)) < 0)
		goto done;
	/* Where the journal index stands, read before the replay (see the end). */
	if (!(have_ix = sluice_jindex__head(repo, &ihead, &iseq) == 0))
		snprintf(ixerr, sizeof(ixerr), "%s", sluice_ctx_errmsg(ctx));
	sluice_ctx_clear_error(ctx);
	if (!exists) {
		problem(&vc, "journal: %s does not exist", SLUICE_JOURNAL_REF);
		goto packs;
	}
	if (sluice_journal__read(repo, &head_st) == 0)
		vc.purged = json_object_get(head_st.trust, "purged");
	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_push(walk, &head)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot walk the journal");
		goto done;
	}
	git_revwalk_simplify_first_parent(walk);
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		if (n == cap) {
			void *p = sluice__realloc(ctx, entries,
			                          (cap = cap ? 2 * cap : 64) * sizeof(*entries));
			if (!p) {
				error = SLUICE_ENOMEM;
				goto done;
			}
			entries = p;
		}
		entries[n++] = id;
	}
	if (error != GIT_ITEROVER) {
		problem(&vc, "journal: cannot walk history: %s",
		        git_error_last() ? git_error_last()->message : "unknown error");
		error = 0;
		goto packs;
	}
	error = 0;
	/* Each entry's state is read once: it is the next entry's "before". */
	memset(&prevst, 0, sizeof(prevst));
	for (size_t i = 0; i < n; i++) {
		json_t *registry = NULL, *rec = NULL;
		git_commit *c = NULL;
		sluice_jstate cur;
		char hex[GIT_OID_HEXSZ + 1];
		const char *action, *signer = NULL;

		git_oid_tostr(hex, sizeof(hex), &entries[i]);
		vc.entries++;
		memset(&cur, 0, sizeof(cur));
		if (sluice_journal__read_at(repo, &entries[i], &cur) < 0 ||
		    sluice_journal__record(repo, &rec, &entries[i]) < 0 ||
		    git_commit_lookup(&c, repo->git, &entries[i]) < 0) {
			problem(&vc, "journal entry %.12s: %s", hex, sluice_ctx_errmsg(ctx));
			goto next;
		}
		/* The registry before the entry (for the first entry: its own). */
		if (i > 0 && !prevst.exists) {
			problem(&vc, "journal entry %.12s: the entry before it cannot be read",
			        hex);
			goto next;
		}
		registry = json_incref(i > 0 ? prevst.keys : cur.keys);
		action = sluice__jstr(json_object_get(rec, "action"));
		if (i == 0 && strcmp(action, "init"))
			problem(&vc, "journal entry %.12s: the first entry is '%s', not init", hex,
			        action);
		if (!sluice_journal__role_for(action)) {
			problem(&vc, "journal entry %.12s: unknown action '%s'", hex, action);
			goto next;
		}
		if (sluice_repo__check_commit_sig_at(
		            repo, &entries[i], registry,
		            *sluice_journal__role_for(action) ? sluice_journal__role_for(action)
		                                              : NULL,
		            strcmp(action, "refuse") ? UINT64_MAX : 0, &signer) < 0)
			problem(&vc, "journal entry %.12s: %s", hex, sluice_ctx_errmsg(ctx));
		/* Even when the signature is wrong: what the entry changes is a second problem. */
		if (i > 0)
			check_authority(&vc, &prevst, &cur, rec, signer, hex);
		/* Expiry is measured in journal times: they may only move forward. */
		if (i > 0 && strcmp(cur.time, prevst.time) < 0)
			problem(&vc,
			        "journal entry %.12s (#%llu) is dated %s, before the entry before "
			        "it (%s): journal times go backwards",
			        hex, (unsigned long long)cur.seq, cur.time, prevst.time);
		if (sluice_journal__is_move(action)) {
			/* A move: its channel's head after it is its target, a journaled version.
			 */
			const char *ch = json_string_value(json_object_get(rec, "channel"));
			const char *to = sluice__jstr(json_object_get(rec, "to"));
			json_t *chans = NULL;
			git_oid tid;

			/*
			 * Reachable: a version proposed on this chain before (the
			 * usual case, no walk), else what a walk of the graph says
			 * (a walk per move made verify quadratic in the journal).
			 */
			if (sluice_journal__channels_shared(repo, &chans, &entries[i]) < 0 ||
			    strcmp(sluice__jstr(
			                   json_object_get(json_object_get(chans, ch), "head")),
			           to) ||
			    git_oid_fromstr(&tid, to) < 0 ||
			    (!json_object_get(vc.reachable, to) &&
			     git_graph_descendant_of(repo->git, &entries[i], &tid) != 1))
				problem(&vc,
				        "journal entry %.12s: %s of channel %s does not leave the "
				        "channel "
				        "at a journaled version %.12s",
				        hex, action, ch, to);
			else
				json_object_set_new(vc.reachable, to, json_true());
			json_decref(chans);
		}
		if (sluice_journal__is_move(action) || !strcmp(action, "anchor"))
			check_move_rules(&vc, &entries[i], rec, action, hex);
		if (!strcmp(action, "hook") && i > 0 &&
		    (!same(prevst.channels, cur.channels) || !same(prevst.config, cur.config) ||
		     prevst.has_suites != cur.has_suites ||
		     (cur.has_suites && !git_oid_equal(&prevst.suites, &cur.suites)) ||
		     git_commit_parentcount(c) != 1))
			/* A delivery record: it may change nothing but the journal. */
			problem(&vc,
			        "journal entry %.12s: a hook entry changes channels, the gate "
			        "configuration or the suites, or brings in a version; a hook entry "
			        "only records a delivery",
			        hex);
		if (!strcmp(action, "purge"))
			check_tombstone(&vc, rec, registry, signer, hex);
		if (!strcmp(action, "propose")) {
			git_oid vid;
			if (git_commit_parentcount(c) != 2 ||
			    git_oid_fromstr(&vid, sluice__jstr(json_object_get(rec, "version"))) <
			            0 ||
			    !git_oid_equal(&vid, git_commit_parent_id(c, 1))) {
				problem(&vc,
				        "journal entry %.12s: its version is not its second parent",
				        hex);
				goto next;
			}
			/* Reachable from this entry on (the chain is walked oldest first). */
			json_object_set_new(vc.reachable,
			                    sluice__jstr(json_object_get(rec, "version")),
			                    json_true());
			check_version(&vc, &vid, registry);
		}
	next:
		git_commit_free(c);
		json_decref(rec);
		json_decref(registry);
		sluice_journal__dispose(&prevst);
		prevst = cur; /* exists = 0 when it could not be read */
		/* The replay's facts where the index stands, to compare it with. */
		if (have_ix && iseq == i + 1 && git_oid_equal(&ihead, &entries[i])) {
			ix_held = json_deep_copy(vc.held);
			ix_withdrawn = json_deep_copy(vc.withdrawn);
		}
	}
	sluice_journal__dispose(&prevst);
	/*
	 * The derived journal index: damaged is worth a note, never a problem.
	 * Behind is how an action leaves it (the next command that reads it
	 * catches it up), so an index whose head is an entry of this chain is
	 * compared with the replay at that entry; verify does not write it.
	 */
	if (n > 0) {
		char ihex[GIT_OID_HEXSZ + 1], msg[1200];

		if (!have_ix) {
			snprintf(msg, sizeof(msg), "journal index: %s", ixerr);
			json_array_append_new(vc.notes, json_string(msg));
		} else if (!ix_held) {
			git_oid_tostr(ihex, sizeof(ihex), &ihead);
			snprintf(
			        msg, sizeof(msg),
			        "journal index: its head (entry %llu, %.12s) is not an entry of "
			        "the "
			        "journal's %zu; the next command that reads it rebuilds it, or run "
			        "sluice reindex",
			        (unsigned long long)iseq, ihex, n);
			json_array_append_new(vc.notes, json_string(msg));
		} else {
			check_index_facts(&vc, &ihead, ix_held, ix_withdrawn);
		}
		sluice_ctx_clear_error(ctx);
	}
packs:
	check_loose_leftovers(&vc, repo->path);
	if (sluice_repo__chunks(repo, &cs) < 0)
		problem(&vc, "chunks: %s", sluice_ctx_errmsg(ctx));
	else
		sluice_chunkstore__verify(cs, report_pack_problem, &vc);
	ok = json_array_size(vc.problems) == 0;
	error = sluice_repo__report(
	        ctx, report,
	        json_pack("{s:b,s:O,s:O,s:{s:I,s:I,s:I,s:I}}", "ok", ok, "problems", vc.problems,
	                  "notes", vc.notes, "checked", "journal_entries", (json_int_t)vc.entries,
	                  "versions", (json_int_t)vc.versions, "files", (json_int_t)vc.files,
	                  "chunks", (json_int_t)vc.chunks));
	if (error == 0 && !ok)
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT, "verify found %zu problem(s)",
		                          json_array_size(vc.problems));
done:
	if (vc.devnull >= 0)
		close(vc.devnull);
	free(entries);
	git_revwalk_free(walk);
	json_decref(vc.problems);
	json_decref(vc.notes);
	json_decref(vc.seen_manifests);
	json_decref(vc.seen_blobs);
	json_decref(vc.reachable);
	json_decref(vc.held);
	json_decref(vc.withdrawn);
	json_decref(ix_held);
	json_decref(ix_withdrawn);
	sluice_journal__dispose(&head_st);
	return error;
}

int sluice_repo_reindex(sluice_repo *repo, char **report)
{
	sluice_chunkstore *cs;
	uint64_t chunks = 0, entries = 0;
	int error;

	/* The journal index is derived: start it from nothing, even if it was damaged. */
	{
		char path[4200];
		sluice_jindex__free(repo->jindex);
		repo->jindex = NULL;
		snprintf(path, sizeof(path), "%s/journal-index/data.mdb", repo->sdir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/journal-index/lock.mdb", repo->sdir);
		unlink(path);
	}
	if ((error = sluice_repo__chunks(repo, &cs)) < 0 ||
	    (error = sluice_chunkstore__reindex(cs, &chunks)) < 0 ||
	    (error = sluice_jindex__rebuild(repo, &entries)) < 0 ||
	    (error = sluice_journal__sync_index(repo)) < 0)
		return error;
	return sluice_repo__report(repo->ctx, report,
	                           json_pack("{s:I,s:I}", "chunks", (json_int_t)chunks,
	                                     "journal_entries", (json_int_t)entries));
}
