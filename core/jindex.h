/*
 * core/jindex.h - the journal's derived LMDB index (sluice/journal-index/):
 * every entry by position, every channel move by channel, and the channel
 * heads at the indexed head. Rebuilt from the journal at any time; caught
 * up by every reader before it reads (an action does not write it: the
 * next command that asks does, core/journal.c).
 *
 * LMDB databases (keys are fixed-width; channel names are hashed, never
 * used as keys, so any name fits LMDB's 511-byte key limit):
 *   meta      "head" -> entry oid (20) || u64 seq;  "channels" -> JSON
 *   entries   u64 BE seq -> entry oid (20) || record JSON
 *   moves     BLAKE2b-256(channel) || u64 BE seq -> record JSON
 *   proposals BLAKE2b-256("parent:state") -> version id (hex): the first proposal
 *             of a state onto a parent, so re-proposing it returns that version
 *   versions  version oid (20) -> u64 BE seq of the entry that proposed it
 *   children  parent version oid (20) || u64 BE seq -> version oid (20): every
 *             proposal onto a parent, so lineage walks descendants
 *   channel_time
 *             BLAKE2b-256(channel) || time (20) || u64 BE seq -> "": each move
 *             of a channel by time, so "what did C serve at T" is one seek
 *   by_time   time "YYYY-MM-DDTHH:MM:SSZ" (20) || u64 BE seq -> ""
 *   by_actor, by_action, by_channel, by_version, by_kind, by_source, by_gate,
 *   by_outcome
 *             BLAKE2b-256(value) || u64 BE seq -> "": the entries a filter of
 *             sluice audit log selects (docs/audit-queries.md says which
 *             value each entry gets: actor "fp:FP" and "name:NAME", source
 *             "n:NAME" and "nd:NAME=DIGEST", ...)
 *   lineage   version oid (20) -> what sluice audit lineage reads of a
 *             proposed version, so it reads no git object (see
 *             sluice_jindex_vinfo; the encoding is in jindex.c): its
 *             update.json's kind, summary and parent, every component of
 *             its state.json with a digest of the component's files, and
 *             the components its update brought. A version whose
 *             update.json or state.json could not be read has none.
 *   moves_to  BLAKE2b-256(the move's "to") || u64 BE seq -> channel: every
 *             move to a version, so its head intervals need no record
 *   move_times
 *             BLAKE2b-256(channel) || u64 BE seq -> the move's time: each
 *             move of a channel in seq order, so the move after one is a
 *             seek that also gives its time
 *   held      version oid (20) || BLAKE2b-256(channel) -> u64 BE seq of the
 *             last move to it || the channel's name (its first 256 bytes):
 *             every version a channel held (a promote, rollback or reset to it)
 *   withdrawn BLAKE2b-256(channel) || version oid (20) -> u64 BE seq of the
 *             rollback that withdrew it: present until a promote or rollback
 *             to the version (not a reset) ends the withdrawal
 *             Both answer what channels.json format 1 kept as lists in every
 *             entry; channel moves are decided on them (core/channel.c).
 *
 * The environment is opened with MDB_NOMETASYNC: each write transaction
 * fdatasyncs its pages, and its meta page reaches the disk with the next
 * one. A power cut may lose the last transaction (the next sync replays it
 * from the journal, which it compares its head with) but cannot leave the
 * index inconsistent, whatever order the filesystem writes in. Until
 * channels.json format 2 it was opened MDB_NOSYNC too, which LMDB keeps
 * consistent only on a filesystem that preserves write order; with channel
 * moves decided on held and withdrawn, an index damaged without LMDB
 * noticing could allow a move the records forbid. A damaged index that LMDB
 * does notice fails to open with a message that says to run sluice
 * reindex, which deletes and rebuilds it.
 */
#ifndef SLUICE_CORE_JINDEX_H
#define SLUICE_CORE_JINDEX_H

#include "repo.h"

typedef struct sluice_jindex sluice_jindex;

void sluice_jindex__free(sluice_jindex *ix);

/* Catch the index up with refs/sluice/journal (rebuilding if it diverged). */
int sluice_jindex__sync(sluice_repo *repo);

/* Drop the index and build it again from the journal. *entries counts them. */
int sluice_jindex__rebuild(sluice_repo *repo, uint64_t *entries);

/* Every move of a channel, oldest first: a JSON array of records (new ref). */
int sluice_jindex__history(sluice_repo *repo, const char *channel, json_t **out);

/*
 * Channel heads at the indexed head, each with the versions withdrawn from
 * it: {NAME: {"head": id|null, "withdrawn": [ids, oldest withdrawal first]}}.
 */
int sluice_jindex__channels(sluice_repo *repo, json_t **out);

/*
 * What the move records up to journal entry `at` say of version hex: *held
 * whether channel held it (channel NULL: whether any channel did), and
 * *withdrawn (may be NULL; unset for channel NULL) whether it stands
 * withdrawn from channel. The index is caught up first; SLUICE_ECONFLICT
 * when it then stands at another entry than at (the journal moved).
 */
int sluice_jindex__held(sluice_repo *repo, const git_oid *at, const char *channel, const char *hex,
                        int *held, int *withdrawn);

/*
 * Every fact of held and withdrawn as the index stands, without catching it
 * up (verify compares them with its replay of the journal): *at the
 * indexed head, *held and *withdrawn {CHANNEL: {ID: true}} (new refs).
 */
int sluice_jindex__facts(sluice_repo *repo, git_oid *at, json_t **held, json_t **withdrawn);

/* The version first proposed with this parent (hex, "" for none) and state blob (hex). */
int sluice_jindex__find_proposal(sluice_repo *repo, git_oid *out, int *found, const char *parent,
                                 const char *state);

/* Whether a version was proposed in the journal (synced to the head first). */
int sluice_jindex__has_version(sluice_repo *repo, const git_oid *id, int *found);
/* The same, with the seq of the entry that proposed it. */
int sluice_jindex__version_seq(sluice_repo *repo, const git_oid *id, int *found, uint64_t *seq);

/* Number of entries indexed, and the indexed head (for tests and verify). */
int sluice_jindex__head(sluice_repo *repo, git_oid *head, uint64_t *seq);

/* ---- the filter databases (audit/queries.c) ---------------------------- */

typedef enum {
	SLUICE_JX_ALL = -1, /* every entry (the entries database), for scan only */
	SLUICE_JX_TIME,
	SLUICE_JX_ACTOR,
	SLUICE_JX_ACTION,
	SLUICE_JX_CHANNEL,
	SLUICE_JX_VERSION,
	SLUICE_JX_KIND,
	SLUICE_JX_SOURCE,
	SLUICE_JX_GATE,
	SLUICE_JX_OUTCOME,
	SLUICE_JX_NFILTERS
} sluice_jindex_filter;

/* A read transaction over the index, synced to the journal head when it began. */
typedef struct sluice_jindex_read sluice_jindex_read;

int sluice_jindex__read_begin(sluice_repo *repo, sluice_jindex_read **out);
/* Ends the transaction; NULL is fine. */
void sluice_jindex__read_end(sluice_jindex_read *r);

/* Called per seq; a positive return stops the scan, a negative one fails it. */
typedef int (*sluice_jindex_seq_cb)(void *data, uint64_t seq);

/*
 * Every seq under a filter value, in key order: seq order for all but
 * SLUICE_JX_TIME, where value is the lower bound ("" for none) and until
 * (may be NULL) the inclusive upper one, both "YYYY-MM-DDTHH:MM:SSZ", and
 * the order is by time, then seq. SLUICE_JX_ALL walks every entry.
 */
int sluice_jindex__scan(sluice_jindex_read *r, int which, const char *value, const char *until,
                        sluice_jindex_seq_cb cb, void *data);
/* Whether entry seq is indexed under value (not for SLUICE_JX_TIME ranges). */
int sluice_jindex__has(sluice_jindex_read *r, int which, const char *value, uint64_t seq,
                       int *found);
/* Entry seq: its commit (id may be NULL) and record (new reference). */
int sluice_jindex__entry(sluice_jindex_read *r, uint64_t seq, git_oid *id, json_t **rec);
/*
 * The move of channel with the latest time at or before time (ties: the
 * later seq) into *seq, and the channel's earliest move into *first; 0
 * for none.
 */
int sluice_jindex__move_at(sluice_jindex_read *r, const char *channel, const char *time,
                           uint64_t *seq, uint64_t *first);
/* The seq of channel's first move after seq after into *seq; 0 for none. */
int sluice_jindex__next_move(sluice_jindex_read *r, const char *channel, uint64_t after,
                             uint64_t *seq);
/* Append to the array out the hex id of every version proposed onto parent. */
int sluice_jindex__children(sluice_jindex_read *r, const git_oid *parent, json_t *out);

/* ---- what lineage reads of a version (the lineage database) ------------- */

/* The state.json sections a component lives in. */
enum {
	SLUICE_JX_BASE,
	SLUICE_JX_ADAPTERS,
	SLUICE_JX_REPLAY,
	SLUICE_JX_MEMORY,
	SLUICE_JX_NSECTIONS
};

/*
 * One component of a state: the base (name ""), an adapter, a replay batch
 * or a memory note. digest is BLAKE2b-256 of its files' canonical JSON
 * (the base's and an adapter's "files", a batch's or a note's "file";
 * sorted keys, compact), so two components hold the same bytes exactly
 * when their file entries are equal JSON. A component whose entry has no
 * files field is left out: it holds nothing that can match.
 */
typedef struct {
	int section; /* SLUICE_JX_BASE ... */
	const char *name;
	unsigned char digest[32];
} sluice_jindex_comp;

typedef struct {
	json_t *meta; /* {kind, summary, parent} as update.json has them; absent stay absent */
	sluice_jindex_comp *comps; /* every component of state.json, in section order */
	size_t ncomps;
	sluice_jindex_comp *brought; /* those the update brought into the version */
	size_t nbrought;
	unsigned char *mem; /* the bytes names point into */
} sluice_jindex_vinfo;

/* The section's name in state.json ("base", "adapters", "replay", "memory"). */
const char *sluice_jindex__section_name(int section);

/*
 * A version's lineage record computed from its update.json and state.json
 * (what the index stores, and what lineage computes itself for a version
 * the index has none for).
 */
int sluice_jindex__vinfo_of(sluice_ctx *ctx, sluice_jindex_vinfo *out, json_t *update,
                            json_t *state);
/*
 * A lineage record's stored bytes (len of them at data, copied) decoded into
 * out; SLUICE_ECORRUPT with a message when they are not one.
 */
int sluice_jindex__vinfo_parse(sluice_ctx *ctx, sluice_jindex_vinfo *out, const void *data,
                               size_t len);
/* A version's lineage record from the index; *found = 0 when it has none. */
int sluice_jindex__vinfo(sluice_jindex_read *r, sluice_jindex_vinfo *out, const git_oid *id,
                         int *found);
void sluice_jindex__vinfo_dispose(sluice_jindex_vinfo *v);

/* One move to a version, and its channel's next move (next_seq 0: none yet). */
typedef struct {
	uint64_t seq, next_seq;
	const char *channel;
	json_t *time, *next_time; /* the records' "time"; NULL when a record has none */
} sluice_jindex_move;

/*
 * Every move whose "to" is version, in seq order: cb gets each with the
 * channel's next move (borrowed for the call); a positive return stops,
 * a negative one fails.
 */
int sluice_jindex__moves_to(sluice_jindex_read *r, const char *version,
                            int (*cb)(void *data, const sluice_jindex_move *m), void *data);

#endif
