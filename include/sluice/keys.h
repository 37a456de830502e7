/*
 * sluice/keys.h - signing keys and their roles.
 *
 * Private keys live outside the repository, in $SLUICE_KEYS (default
 * ~/.config/sluice/keys), one file NAME.key of mode 0600 each; a key file
 * readable or writable by anyone but its owner is refused. The repository
 * records public keys and their roles in the journal.
 *
 * Roles: root, proposer, gate-runner, approver, operator, auditor.
 */
#ifndef SLUICE_KEYS_H
#define SLUICE_KEYS_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Export formats for sluice_key_export. */
typedef enum {
	SLUICE_KEY_EXPORT_OPENSSH = 1,        /* "ssh-ed25519 AAAA... NAME" */
	SLUICE_KEY_EXPORT_ALLOWED_SIGNERS = 2 /* for git's gpg.ssh.allowedSignersFile */
} sluice_key_export_format;

/*
 * Generate key NAME (or use the existing private key of that name) and
 * register it with the given roles (not root: root keys change only by
 * sluice_root_rotate), optionally expiring at expires ("YYYY-MM-DDTHH:MM:SSZ",
 * or NULL). Registering is a root change: proposed with the root key signer
 * (NULL picks the first available) and applied once the root threshold of
 * root keys signed it (at once with a threshold of 1). A key already
 * registered gets the union of its roles.
 * *report: {"name","fingerprint","roles":[...],"created","applied","pending"?}.
 */
int sluice_key_new(sluice_repo *repo, const char *name, const char *const *roles, size_t nroles,
                   const char *expires, const char *signer, char **report);

/*
 * Revoke key NAME (a root change, like sluice_key_new): from the entry that
 * applies it on, the key signs nothing that counts; what it signed before
 * that entry still counts, judged by journal position, never by a time the
 * signer wrote. *report: {"change","kind","applied","root_signatures":{have,need}}.
 */
int sluice_key_revoke(sluice_repo *repo, const char *name, const char *reason, const char *signer,
                      char **report);

/*
 * Rotate the root keys: the registered keys add[] gain the root role, the
 * root keys remove[] lose it, and the root threshold becomes threshold.
 * TUF's rule: it applies only once signed by the old threshold of the old
 * root keys and by threshold of the new root keys (sluice_root_sign).
 */
int sluice_root_rotate(sluice_repo *repo, const char *const *add, size_t nadd,
                       const char *const *remove, size_t nremove, unsigned threshold,
                       const char *signer, char **report);

/*
 * How long root changes proposed through repo from now on wait for their
 * signatures: duration is seconds ("3600") or <n>s/m/h/d ("7d"), 1 second
 * to 36500 days; NULL restores the default, 7 days. Once expired (by the
 * journal's time, which never goes backwards), sluice_root_sign refuses a
 * change (rule root.expired, journaled), it never applies, and the next
 * root change drops it from the pending ones. SLUICE_EINVALID for a
 * malformed duration.
 */
int sluice_root_set_expiry(sluice_repo *repo, const char *duration);

/*
 * Set role's threshold (a root change, like sluice_key_new): how many
 * distinct keys of it an action needs. gate-runner N: a required gate
 * counts as passed only with N agreeing verdicts from distinct gate-runner
 * keys on the same candidate, baseline and suites; proposer N: a version
 * is promotable only once N distinct proposer keys signed it (its own
 * signature and sluice_cosign's); operator N: reset needs N distinct
 * operator keys (rollback stays one operator's emergency path). root
 * (sluice_root_rotate), approver (the policy's approvals.count) and auditor
 * (read-only) are refused. *report as sluice_key_revoke's.
 */
int sluice_role_threshold(sluice_repo *repo, const char *role, unsigned threshold,
                          const char *signer, char **report);

/* Sign the pending root change whose id starts with id (8+ hex digits) with key. */
int sluice_root_sign(sluice_repo *repo, const char *id, const char *key, char **report);

/*
 * The pending root changes and their signatures: {"pending":[{"change","kind","what",
 * "proposed_by","proposed_time","expires","expired",...}],"root_threshold"}; an expired
 * change is listed (expired: true) until the next root change drops it.
 */
int sluice_root_pending(sluice_repo *repo, char **report);

/* The registered keys: {"keys":[{"name","fingerprint","roles","public_key"}]}. */
int sluice_key_list(sluice_repo *repo, char **report);

/*
 * Export the public half of NAME in a format (text, ending in "\n"). With
 * NAME "--all" (or NULL) for ALLOWED_SIGNERS, every registered key, one line
 * each. repo may be NULL for OPENSSH of a local key.
 */
int sluice_key_export(sluice_ctx *ctx, sluice_repo *repo, const char *name,
                      sluice_key_export_format format, char **out);

#ifdef __cplusplus
}
#endif
#endif
