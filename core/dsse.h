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

/* PAE encoding into out (replacing its contents). */
int sluice_dsse__pae(sluice_ctx *ctx, sluice_buf *out, const char *payload_type,
		     const void *payload, size_t len);

/* Sign payload and write the envelope JSON (compact, keys sorted). */
int sluice_dsse__sign(sluice_ctx *ctx, sluice_buf *out, const sluice_key *key,
		      const char *payload_type, const void *payload, size_t len);

/*
 * Parse an envelope strictly: an object with exactly payload, payloadType,
 * signatures (non-empty array of {keyid?, sig}); base64 must decode; sig
 * must be 64 bytes. Unknown fields are refused.
 */
int sluice_dsse__parse(sluice_ctx *ctx, sluice_dsse_envelope *out, const char *json, size_t len);
void sluice_dsse__dispose(sluice_dsse_envelope *e);

/* 0 if some signature in e verifies under pk, else SLUICE_EDENIED. */
int sluice_dsse__verify(sluice_ctx *ctx, const sluice_dsse_envelope *e, const unsigned char pk[32]);

/* A subject of a statement: a name and its digests (algorithm -> hex). */
typedef struct {
	const char *name;
	const char *sha256;   /* hex or NULL */
	const char *blake2b;  /* hex (key "blake2b" per in-toto digest set) or NULL */
} sluice_subject;

/*
 * Build an in-toto Statement v1 as compact JSON with sorted keys:
 * {"_type": ..., "predicate": <predicate_json>, "predicateType": ...,
 *  "subject": [...]}. predicate_json must be a JSON object's text.
 */
int sluice_statement__build(sluice_ctx *ctx, sluice_buf *out, const sluice_subject *subjects,
			    size_t nsubjects, const char *predicate_type, const char *predicate_json);

/*
 * Check that payload is an in-toto Statement v1: _type exact, a non-empty
 * subject array of {name, digest: {alg: lowercase hex}}, predicateType a
 * string, predicate an object if present. On success *predicate_type_out
 * (may be NULL) receives a malloc'd copy of predicateType.
 */
int sluice_statement__check(sluice_ctx *ctx, const unsigned char *payload, size_t len,
			    char **predicate_type_out);

#endif
