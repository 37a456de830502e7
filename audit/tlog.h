/*
 * audit/tlog.h - the journal as an RFC 9162 Merkle tree (docs/audit-tlog.md).
 *
 * Hashes are SHA-256: a leaf is H(0x00 || entry bytes), an interior node
 * H(0x01 || left || right), the empty tree H(""). The leaves are the
 * journal's entries in order, each as its canonical encoding; entry seq N is
 * leaf index N-1.
 *
 * Every journal commit carries the tree after it: tlog.json (size, origin and
 * frontier) and checkpoint (a C2SP tlog-checkpoint signed note). A derived
 * LMDB index (sluice/tlog-index) holds every leaf hash by index, caught up
 * with the journal on use.
 */
#ifndef SLUICE_AUDIT_TLOG_PRIV_H
#define SLUICE_AUDIT_TLOG_PRIV_H

#include "repo.h"

#define SLUICE_TLOG_HASH 32
/* The deepest tree a 64-bit size allows: proofs and frontiers are at most this long. */
#define SLUICE_TLOG_MAXDEPTH 64

typedef unsigned char sluice_tlog_hash[SLUICE_TLOG_HASH];

/* H(0x00 || data). */
void sluice_tlog__leaf_hash(sluice_tlog_hash out, const void *data, size_t len);
/* H(0x01 || left || right). */
void sluice_tlog__node_hash(sluice_tlog_hash out, const sluice_tlog_hash left,
                            const sluice_tlog_hash right);

/*
 * A source of leaf hashes: fill out with leaf index's hash, 0 or a negative
 * SLUICE_E* code (which the tree functions pass up).
 */
typedef int (*sluice_tlog_leaf_fn)(void *data, uint64_t index, sluice_tlog_hash out);

/* MTH of leaves [0, n) (RFC 9162 2.1.1); n = 0 gives H(""). */
int sluice_tlog__root(sluice_tlog_hash out, uint64_t n, sluice_tlog_leaf_fn leaf, void *data);

/*
 * The inclusion proof of leaf index in the tree of size n (RFC 9162
 * 2.1.3.1), bottom-up, into out[0..*count). SLUICE_EINVALID unless
 * index < n.
 */
int sluice_tlog__inclusion(sluice_tlog_hash out[SLUICE_TLOG_MAXDEPTH], size_t *count,
                           uint64_t index, uint64_t n, sluice_tlog_leaf_fn leaf, void *data);

/*
 * The consistency proof from size m to size n (RFC 9162 2.1.4.1) into
 * out[0..*count); empty when m == n. SLUICE_EINVALID unless 0 < m <= n.
 */
int sluice_tlog__consistency(sluice_tlog_hash out[SLUICE_TLOG_MAXDEPTH], size_t *count, uint64_t m,
                             uint64_t n, sluice_tlog_leaf_fn leaf, void *data);

/*
 * The frontier (a compact range from 0): the roots of the perfect subtrees
 * that make up a tree of size leaves, largest (leftmost) first; there are
 * popcount(size) of them. Appending a leaf and computing the root cost
 * O(log size) hashes.
 */
typedef struct {
	uint64_t size;
	unsigned count;
	sluice_tlog_hash h[SLUICE_TLOG_MAXDEPTH];
} sluice_tlog_frontier;

void sluice_tlog__frontier_init(sluice_tlog_frontier *f);
/* Append one leaf hash. SLUICE_EINVALID when the tree is full (2^64 - 1 leaves). */
int sluice_tlog__frontier_append(sluice_tlog_frontier *f, const sluice_tlog_hash leaf);
/* The root of the tree the frontier describes. */
void sluice_tlog__frontier_root(const sluice_tlog_frontier *f, sluice_tlog_hash out);

/* ---- the journal's tree (audit/tlog_journal.c) ---------------------------- */

/*
 * The canonical encoding of the journal entry whose tree is tree and whose
 * previous journal entry is parent (NULL for the first), appended to out
 * (no trailing newline); *seq receives its record's seq. The tree's
 * "checkpoint" and "tlog.json" are not part of it.
 */
int sluice_tlog__encode_tree(sluice_repo *repo, sluice_buf *out, uint64_t *seq,
                             const git_tree *tree, const git_oid *parent);
/* The same for a journal commit (its first parent is the previous entry). */
int sluice_tlog__encode_entry(sluice_repo *repo, sluice_buf *out, uint64_t *seq,
                              const git_oid *entry);

/*
 * Add tlog.json and checkpoint for the entry being written into tb (which
 * holds everything else of its tree already) on top of st, signed by signer
 * under its name in registry (the entry's keys; then st's). Called by
 * sluice_journal__commit before the commit is written.
 */
int sluice_tlog__journal_add(sluice_repo *repo, git_treebuilder *tb, const sluice_jstate *st,
                             const sluice_key *signer, json_t *registry);
/*
 * The entry journal_add last built is now the journal's entry id: its tree
 * (the frontier and origin) is kept in the repository handle, so the next
 * entry this process writes on top of it need not read and parse its
 * tlog.json. An entry's objects never change, so the memo cannot go stale.
 */
void sluice_tlog__journal_committed(sluice_repo *repo, const git_oid *id);
void sluice_tlog__memo_free(sluice_repo *repo);

/*
 * The C2SP checkpoint body for origin, size and root: three lines, each
 * ending "\n", appended to out.
 */
int sluice_tlog__checkpoint_body(sluice_ctx *ctx, sluice_buf *out, const char *origin,
                                 uint64_t size, const sluice_tlog_hash root);

/* The 4-byte note key id of an Ed25519 key called name. */
void sluice_tlog__key_id(unsigned char out[4], const char *name, const unsigned char pk[32]);

/* "sluice.journal/" and 32 hex digits. */
#define SLUICE_TLOG_ORIGIN_LEN 47

/*
 * Parse a tlog.json ({"format":1,"frontier","origin","size"}, nothing
 * else) into f and origin. SLUICE_ECORRUPT naming what and the field.
 */
int sluice_tlog__parse_tlog(sluice_ctx *ctx, sluice_tlog_frontier *f,
                            char origin[SLUICE_TLOG_ORIGIN_LEN + 1], const void *data, size_t len,
                            const char *what);

/*
 * Check a checkpoint note's text note[0..len): its body must be
 * body[0..blen), and one of its signature lines must be a valid Ed25519
 * signature by the key registered (in keys, else prev) under the line's
 * name, with the right key id, whose fingerprint is actor_fp. Lines of
 * other signature types are skipped. NULL when it is good, else why not (a
 * static string or why).
 */
const char *sluice_tlog__check_note(sluice_ctx *ctx, const void *note, size_t len, const void *body,
                                    size_t blen, json_t *keys, json_t *prev, const char *actor_fp,
                                    char *why, size_t whylen);

/* Bring sluice/tlog-index up to the journal head; *size (may be NULL) receives its size. */
int sluice_tlog__index_sync(sluice_repo *repo, uint64_t *size);

#endif
