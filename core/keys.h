/*
 * core/keys.h - Ed25519 signing keys, OpenSSH encodings and SSHSIG.
 *
 * Private keys live outside the repository in $SLUICE_KEYS (default
 * $XDG_CONFIG_HOME/sluice/keys, else ~/.config/sluice/keys) as NAME.key,
 * mode 0600 (a key file readable or writable by group or others is refused),
 * with the public half beside it as NAME.pub (OpenSSH one-line format).
 *
 * SSHSIG (OpenSSH PROTOCOL.sshsig) is the format git's gpg.format=ssh
 * verifies: signed data = "SSHSIG" || string(namespace) || string("") ||
 * string("sha512") || string(SHA-512(message)); the signature blob is
 * "SSHSIG" || u32 1 || string(pubkey) || string(namespace) || string("") ||
 * string("sha512") || string(ssh-ed25519 signature), armoured as
 * "-----BEGIN SSH SIGNATURE-----" with base64 lines of 70 characters.
 *
 * NAME.key is "sluice-ed25519-secret-v1\n" + base64(32-byte seed) + "\n";
 * the secret key is rederived from the seed on load.
 *
 * Functions that produce text or bytes into a sluice_buf append to it.
 */
#ifndef SLUICE_CORE_KEYS_H
#define SLUICE_CORE_KEYS_H

#include "internal.h"

#define SLUICE_KEY_NAME_MAX 64
/* "SHA256:" + 43 base64 characters + NUL, as ssh-keygen -l prints. */
#define SLUICE_FP_LEN 51

typedef struct {
	char name[SLUICE_KEY_NAME_MAX + 1];
	unsigned char pk[32];
	unsigned char sk[64]; /* libsodium secret key (seed || pk); wiped on dispose */
	int has_secret;
} sluice_key;

/* Wipe the secret half (sk) and clear has_secret. Accepts NULL. */
void sluice_key__dispose(sluice_key *k);

/* Key names: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int sluice_keys__check_name(sluice_ctx *ctx, const char *name);

/*
 * The directory holding private keys (see above) into out. SLUICE_EINVALID
 * if no variable locates it or it does not fit in outlen.
 */
int sluice_keys__dir(sluice_ctx *ctx, char *out, size_t outlen);

/*
 * Generate a key and write NAME.key (0600, O_EXCL, fsynced) and NAME.pub
 * (the OpenSSH line commented NAME) in the keys directory (created 0700
 * with its parents). SLUICE_EEXISTS if NAME.key exists; SLUICE_EINVALID
 * for a bad name; on a failed write nothing is left behind. out receives
 * the key with its secret half; sluice_key__dispose it.
 */
int sluice_keys__generate(sluice_ctx *ctx, sluice_key *out, const char *name);

/*
 * Load NAME.key. SLUICE_ENOTFOUND if missing; SLUICE_EDENIED (naming the
 * file and its mode) if group or others have any permission on it, or if
 * it is a symlink, not a regular file, or owned by another user;
 * SLUICE_ECORRUPT if it does not parse.
 */
int sluice_keys__load(sluice_ctx *ctx, sluice_key *out, const char *name);

/* SSH wire encoding of the public key: string("ssh-ed25519") string(pk). */
int sluice_keys__pub_blob(sluice_ctx *ctx, const unsigned char pk[32], sluice_buf *out);

/* "SHA256:<base64 without padding>" of the wire blob (ssh-keygen -l). */
void sluice_keys__fingerprint(char out[SLUICE_FP_LEN], const unsigned char pk[32]);

/*
 * "ssh-ed25519 <base64 blob> <comment>", no newline. comment may be NULL or
 * "" (then omitted); SLUICE_EINVALID if it holds a line break.
 */
int sluice_keys__openssh_pub(sluice_ctx *ctx, const unsigned char pk[32], const char *comment,
                             sluice_buf *out);
/*
 * Parse an "ssh-ed25519 AAAA... [comment]" line (a trailing newline is
 * allowed). SLUICE_EINVALID for any other key type or a malformed blob.
 */
int sluice_keys__parse_openssh_pub(sluice_ctx *ctx, unsigned char pk[32], const char *line,
                                   size_t len);

/*
 * A line for git's gpg.ssh.allowedSignersFile: principal namespaces="git"
 * key, ending in "\n". SLUICE_EINVALID if principal is empty or holds
 * whitespace, control, quote, comma or pattern characters (* ? !).
 */
int sluice_keys__allowed_signers(sluice_ctx *ctx, const char *principal, const unsigned char pk[32],
                                 sluice_buf *out);

/*
 * Armoured SSHSIG of msg under namespace ns (hash sha512), ending in "\n",
 * byte-identical in layout to `ssh-keygen -Y sign`. SLUICE_EINVALID if key
 * has no secret half or ns is empty. git's gpgsig header is usually written
 * without the final newline.
 */
int sluice_sshsig__sign(sluice_ctx *ctx, const sluice_key *key, const char *ns, const void *msg,
                        size_t len, sluice_buf *out);

/*
 * Verify an armoured SSHSIG over msg with namespace ns; on success the
 * signer's public key is written to signer (the caller decides whether it
 * trusts that key). Returns SLUICE_EDENIED for a bad signature or another
 * namespace, SLUICE_EINVALID for text that is not a well-formed Ed25519
 * SSHSIG (hash sha512 or sha256; trailing whitespace after the END line is
 * ignored; at most 16 KiB).
 */
int sluice_sshsig__verify(sluice_ctx *ctx, unsigned char signer[32], const char *armored,
                          size_t armored_len, const char *ns, const void *msg, size_t len);

#endif
