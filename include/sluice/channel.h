/*
 * sluice/channel.h - channels: named pointers (dev, staging, prod, ...) to
 * versions, moved only by journaled, signed actions.
 *
 * promote moves a channel forward to a descendant of its head; rollback
 * moves it back to a version it held before and withdraws the version it
 * left; reset moves it anywhere, explicitly and with a reason. Each is one
 * journal entry whose compare-and-swap is the commit point, signed by a key
 * with the operator role. Each call writes a JSON report to *report (free
 * with sluice_free): {"channel","from","to","entry", ...}.
 */
#ifndef SLUICE_CHANNEL_H
#define SLUICE_CHANNEL_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Move channel forward to ref. Refused (SLUICE_EDENIED or SLUICE_EINVALID,
 * with the rule in the message) when ref is not a journaled version whose
 * signatures verify, when it does not descend from the head (rolling a
 * channel back is sluice_channel_rollback's job), or when ref was withdrawn
 * from this channel by a rollback and override_reason is NULL.
 */
int sluice_channel_promote(sluice_repo *repo, const char *ref, const char *channel, const char *key,
                           const char *override_reason, char **report);

/*
 * Move channel back to `to` (NULL: the version it held before its head),
 * which it must have held before; the version it leaves is withdrawn from
 * the channel. reason is required.
 */
int sluice_channel_rollback(sluice_repo *repo, const char *channel, const char *to,
                            const char *reason, const char *key, char **report);

/* Move channel to any journaled version, explicitly; reason is required. */
int sluice_channel_reset(sluice_repo *repo, const char *channel, const char *ref,
                         const char *reason, const char *key, char **report);

/*
 * Under an operator threshold of N (sluice_role_threshold), a reset needs
 * N distinct operator keys: each other operator first signs the same reset
 * (channel, target, from the current head after its last move) with this
 * call, journaled as a "reset.sign" entry that moves nothing; the reset
 * itself then counts its own key too. Any move of the channel voids the
 * signatures. Rollback stays one operator's emergency path.
 */
int sluice_channel_reset_sign(sluice_repo *repo, const char *channel, const char *ref,
                              const char *reason, const char *key, char **report);

/*
 * Set channel's anchor (the drift budget's reference, docs/gates.md) to
 * ref, a version the channel holds or held (NULL: its head). reason is
 * required. A channel's first promoted version is its anchor until then.
 */
int sluice_channel_anchor(sluice_repo *repo, const char *channel, const char *ref,
                          const char *reason, const char *key, char **report);

/* Every move of a channel, oldest first: {"channel","moves":[record...]}. */
int sluice_channel_history(sluice_repo *repo, const char *channel, char **report);

/* Every channel's head: {"channels":[{"name","head","withdrawn":[...]}],"journal":{...}}. */
int sluice_channel_status(sluice_repo *repo, char **report);

#ifdef __cplusplus
}
#endif
#endif
