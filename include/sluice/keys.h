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
 * register it with the given roles, journaled and signed by a root key
 * whose private half is available (signer names one; NULL picks the first
 * available). A key already registered gets the union of its roles.
 * *report: {"name","fingerprint","roles":[...],"created": bool}.
 */
int sluice_key_new(sluice_repo *repo, const char *name, const char *const *roles, size_t nroles,
                   const char *signer, char **report);

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
