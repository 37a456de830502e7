/*
 * core/config.h - the repository's local settings, kept in its git config
 * (REPO/config, read and written through libgit2's git_repository_config)
 * so stock git reads them: `git --git-dir=REPO config --list`.
 *
 * Settings are operational and not journaled: they change no state. Only
 * the keys listed in docs/cli.md ("sluice config") are accepted by the
 * setters: sluice.http.* for the HTTP evaluation backend and hook.NAME.*
 * for serving hooks. The getters read any key.
 */
#ifndef SLUICE_CORE_CONFIG_H
#define SLUICE_CORE_CONFIG_H

#include "repo.h"

/*
 * sluice.http.concurrency's largest value: the requests the http backend
 * keeps in flight at most. Callers that batch work for it (the replay
 * batch's loss scoring) size their batches from this, so none holds back
 * requests the backend could send.
 */
#define SLUICE_HTTP_CONCURRENCY_MAX 256

/*
 * The repository's own config file (the local level only: a user's
 * ~/.gitconfig must never redirect a push or a hook), new in *out.
 */
int sluice_config__open_local(sluice_repo *repo, git_config **out);

/*
 * A key's value in an open config as a new string in *out, NULL when unset
 * (for a reader of many keys at once; one key: sluice_config__get_string).
 */
int sluice_config__string_in(sluice_repo *repo, git_config *cfg, char **out, const char *key);

/*
 * A key's value as a new string in *out (free() it). When the key is
 * unset, *out is a copy of dflt, or NULL when dflt is NULL (and 0 is
 * returned either way). A multi-valued key gives its last value.
 */
int sluice_config__get_string(sluice_repo *repo, char **out, const char *key, const char *dflt);

/*
 * A key's value as an integer in *out, dflt when unset. SLUICE_EINVALID,
 * naming the key, when the value is not an integer in [min, max].
 */
int sluice_config__get_int(sluice_repo *repo, int64_t *out, const char *key, int64_t dflt,
                           int64_t min, int64_t max);

/*
 * Every value of a (possibly multi-valued) key, in file order, as a new
 * JSON array of strings in *out (empty when unset).
 */
int sluice_config__get_all(sluice_repo *repo, json_t **out, const char *key);

/*
 * Set a key (replacing every value it had). The key must be a known one
 * (sluice_config__check) and the value of its kind: SLUICE_EINVALID,
 * naming both, otherwise. hook.NAME.channel may hold several values: with
 * add set, value is added after the others instead (as git config --add).
 */
int sluice_config__set_string(sluice_repo *repo, const char *key, const char *value, int add);

/* Remove every value of a key. SLUICE_ENOTFOUND when it has none. */
int sluice_config__unset(sluice_repo *repo, const char *key);

/*
 * The sluice.* and hook.* settings as a new JSON object in *out:
 * {key: value} with keys as git spells them (lower-cased section and
 * name, subsection as written), a multi-valued key as an array.
 */
int sluice_config__list(sluice_repo *repo, json_t **out);

/*
 * 0 when key is one sluice config accepts and value suits it (value may
 * be NULL to check the key alone); else SLUICE_EINVALID with a message
 * naming the key and what it takes.
 */
int sluice_config__check(sluice_ctx *ctx, const char *key, const char *value);

#endif
