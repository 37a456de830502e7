/*
 * core/dsse.h - the one signed-statement format: a DSSE envelope
 * (secure-systems-lab/dsse v1) holding an in-toto Statement v1, signed
 * with Ed25519. Gate verdicts, approvals, policy signatures and
 * attestations all use it.
 *
 * PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body,
 * LEN as ASCII decimal without leading zeros. The signature is over PAE
 * of the exact payload bytes; the envelope is JSON:
 *   {"payload": base64(body), "payloadType": type,
 *    "signatures": [{"keyid": fingerprint, "sig": base64(sig)}]}
 *
 * Statement subjects carry digests under "sha256" and "blake2b256". The
 * in-toto digest set's "blake2b" means BLAKE2b-512; sluice's chunk ids are
 * BLAKE2b-256, so they go under the distinct name "blake2b256".
 */
#ifndef SLUICE_CORE_DSSE_H
#define SLUICE_CORE_DSSE_H

#include "internal.h"
#include "keys.h"

#define SLUICE_INTOTO_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define SLUICE_INTOTO_STATEMENT_V1 "https://in-toto.io/Statement/v1"

typedef struct {
	char keyid[SLUICE_FP_LEN + 64];
	unsigned char sig[64];
} sluice_dsse_sig;

typedef struct {
	char *payload_type;
	unsigned char *payload;
	size_t payload_len;
	size_t nsigs;
	sluice_dsse_sig *sigs;
} sluice_dsse_envelope;

/* PAE encoding into out (replacing its contents). payload_type is a C string. */
int sluice_dsse__pae(sluice_ctx *ctx, sluice_buf *out, const char *payload_type,
                     const void *payload, size_t len);

/*
 * Sign payload and write the envelope JSON (compact, keys sorted) into out,
 * replacing its contents. keyid is the key's SHA256 fingerprint.
 * SLUICE_EINVALID if key has no secret half or payload_type is not UTF-8.
 */
int sluice_dsse__sign(sluice_ctx *ctx, sluice_buf *out, const sluice_key *key,
                      const char *payload_type, const void *payload, size_t len);

/*
 * Parse an envelope strictly: an object with exactly payload, payloadType,
 * signatures (non-empty array of {keyid?, sig}); base64 must decode; sig
 * must be 64 bytes. Unknown fields and duplicate keys are refused
 * (SLUICE_EINVALID, naming the field). Base64 may be standard or URL-safe,
 * padded. On failure *out is left zeroed (safe to dispose); on success the
 * caller owns it and calls sluice_dsse__dispose.
 */
int sluice_dsse__parse(sluice_ctx *ctx, sluice_dsse_envelope *out, const char *json, size_t len);
/* Free what e holds and zero it. Accepts NULL. */
void sluice_dsse__dispose(sluice_dsse_envelope *e);

/*
 * 0 if some signature in e verifies under pk, else SLUICE_EDENIED. keyid is
 * an unauthenticated hint and is not consulted.
 */
int sluice_dsse__verify(sluice_ctx *ctx, const sluice_dsse_envelope *e, const unsigned char pk[32]);

/* A subject of a statement: a name and its digests (algorithm -> hex). */
typedef struct {
	const char *name;
	const char *sha256;  /* hex or NULL */
	const char *blake2b; /* BLAKE2b-256 hex, JSON key "blake2b256", or NULL */
} sluice_subject;

/*
 * Build an in-toto Statement v1 as compact JSON with sorted keys:
 * {"_type": ..., "predicate": <predicate_json>, "predicateType": ...,
 *  "subject": [...]}, into out (replacing its contents). predicate_json
 * must be a JSON object's text, or NULL to omit the predicate; it is
 * re-serialised (compact, keys sorted, numbers as jansson prints them).
 * Each subject needs at least one digest of 64 lowercase hex digits.
 * SLUICE_EINVALID otherwise.
 */
int sluice_statement__build(sluice_ctx *ctx, sluice_buf *out, const sluice_subject *subjects,
                            size_t nsubjects, const char *predicate_type,
                            const char *predicate_json);

/*
 * Check that payload is an in-toto Statement v1: _type exact, a non-empty
 * subject array of {name, digest: {alg: lowercase hex}}, predicateType a
 * string, predicate an object if present. Digests must be non-empty
 * lowercase hex of even length, and of the right length for known
 * algorithms (sha256, blake2b256, sha512, ...). Duplicate keys are refused;
 * unknown fields are ignored, as in-toto asks of consumers. On success
 * *predicate_type_out (may be NULL) receives a malloc'd copy of
 * predicateType. SLUICE_EINVALID naming the field otherwise.
 */
int sluice_statement__check(sluice_ctx *ctx, const unsigned char *payload, size_t len,
                            char **predicate_type_out);

#endif
