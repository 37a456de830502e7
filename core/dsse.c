/*
 * core/dsse.c - DSSE v1 envelopes signed with Ed25519, and the in-toto
 * Statement v1 they carry.
 */
#include "dsse.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Envelopes carry a handful of signatures; a cap keeps hostile input cheap. */
#define DSSE_MAX_SIGS 256

int sluice_dsse__pae(sluice_ctx *ctx, sluice_buf *out, const char *payload_type,
                     const void *payload, size_t len)
{
	int error;

	out->len = 0;
	if ((error = sluice_buf__printf(ctx, out, "DSSEv1 %zu %s %zu ", strlen(payload_type),
	                                payload_type, len)) < 0)
		return error;
	return sluice_buf__put(ctx, out, payload, len);
}

/* Replace out's contents with the compact, key-sorted text of j. */
static int dump_json(sluice_ctx *ctx, sluice_buf *out, const json_t *j, const char *what)
{
	size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
	int error;

	if (n == 0)
		return sluice_ctx__error(ctx, SLUICE_ERROR, "cannot serialise %s as JSON", what);
	out->len = 0;
	if ((error = sluice_buf__grow(ctx, out, n)) < 0)
		return error;
	if (json_dumpb(j, (char *)out->ptr, n, JSON_COMPACT | JSON_SORT_KEYS) != n)
		return sluice_ctx__error(ctx, SLUICE_ERROR, "cannot serialise %s as JSON", what);
	out->len = n;
	out->ptr[n] = '\0';
	return SLUICE_OK;
}

/* A new JSON string holding standard padded base64 of data, or NULL. */
static json_t *base64_json(sluice_ctx *ctx, const unsigned char *data, size_t len)
{
	size_t enc;
	char *s;
	json_t *j;

	if (len > (SIZE_MAX - 8) / 4 * 3) {
		sluice_ctx__error(ctx, SLUICE_EINVALID, "payload too large to encode");
		return NULL;
	}
	enc = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	if (!(s = sluice__malloc(ctx, enc)))
		return NULL;
	sodium_bin2base64(s, enc, data, len, sodium_base64_VARIANT_ORIGINAL);
	j = json_stringn(s, enc - 1);
	free(s);
	if (!j)
		sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory building JSON");
	return j;
}

int sluice_dsse__sign(sluice_ctx *ctx, sluice_buf *out, const sluice_key *key,
                      const char *payload_type, const void *payload, size_t len)
{
	unsigned char sig[crypto_sign_BYTES];
	char fp[SLUICE_FP_LEN];
	sluice_buf pae = {0};
	json_t *env = NULL, *sigobj = NULL, *sigs = NULL, *p = NULL, *s = NULL;
	int error;

	if (!key->has_secret)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "key '%s' has no secret half to sign with", key->name);
	if (!sluice__utf8_valid((const unsigned char *)payload_type, strlen(payload_type)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "payloadType is not valid UTF-8");
	if ((error = sluice_dsse__pae(ctx, &pae, payload_type, payload, len)) < 0)
		goto done;
	crypto_sign_detached(sig, NULL, pae.ptr, pae.len, key->sk);
	sluice_keys__fingerprint(fp, key->pk);
	if (!(p = base64_json(ctx, payload, len)) || !(s = base64_json(ctx, sig, sizeof(sig)))) {
		error = sluice_ctx_errcode(ctx);
		goto done;
	}
	sigobj = json_pack("{s:s, s:O}", "keyid", fp, "sig", s);
	sigs = sigobj ? json_pack("[O]", sigobj) : NULL;
	env = sigs ? json_pack("{s:O, s:s, s:O}", "payload", p, "payloadType", payload_type,
	                       "signatures", sigs)
	           : NULL;
	if (!env) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory building envelope");
		goto done;
	}
	error = dump_json(ctx, out, env, "DSSE envelope");
done:
	json_decref(env);
	json_decref(sigs);
	json_decref(sigobj);
	json_decref(p);
	json_decref(s);
	sluice_buf__dispose(&pae);
	return error;
}

/*
 * Decode a base64 JSON string into a new buffer. The DSSE spec allows
 * either the standard or the URL-safe alphabet (both padded here); the
 * signature covers the decoded bytes, so the choice cannot change meaning.
 */
static int decode_b64(sluice_ctx *ctx, unsigned char **out, size_t *outlen, const json_t *j,
                      const char *field)
{
	const char *s = json_string_value(j);
	size_t n = json_string_length(j), cap = n / 4 * 3 + 3, len;
	unsigned char *bin;

	if (!(bin = sluice__malloc(ctx, cap)))
		return SLUICE_ENOMEM;
	if (sodium_base642bin(bin, cap, s, n, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) !=
	            0 &&
	    sodium_base642bin(bin, cap, s, n, NULL, &len, NULL, sodium_base64_VARIANT_URLSAFE) !=
	            0) {
		free(bin);
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "DSSE envelope: field '%s' is not valid base64", field);
	}
	*out = bin;
	*outlen = len;
	return SLUICE_OK;
}

static int parse_sig(sluice_ctx *ctx, sluice_dsse_sig *out, const json_t *j, size_t idx)
{
	const char *key;
	json_t *v, *sig = NULL, *keyid = NULL;
	unsigned char *bin = NULL;
	size_t binlen = 0;
	char field[64];
	int error;

	if (!json_is_object(j))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "DSSE envelope: signatures[%zu] is not an object", idx);
	json_object_foreach((json_t *)j, key, v)
	{
		if (strcmp(key, "sig") == 0)
			sig = v;
		else if (strcmp(key, "keyid") == 0)
			keyid = v;
		else
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "DSSE envelope: signatures[%zu] has unknown field "
			                         "'%.64s'",
			                         idx, key);
	}
	if (!sig || !json_is_string(sig))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "DSSE envelope: signatures[%zu].sig is missing or not a "
		                         "string",
		                         idx);
	memset(out, 0, sizeof(*out));
	if (keyid) {
		if (!json_is_string(keyid))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "DSSE envelope: signatures[%zu].keyid is not a string", idx);
		if (json_string_length(keyid) >= sizeof(out->keyid))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "DSSE envelope: signatures[%zu].keyid is longer than "
			        "%zu bytes",
			        idx, sizeof(out->keyid) - 1);
		memcpy(out->keyid, json_string_value(keyid), json_string_length(keyid));
	}
	snprintf(field, sizeof(field), "signatures[%zu].sig", idx);
	if ((error = decode_b64(ctx, &bin, &binlen, sig, field)) < 0)
		return error;
	if (binlen != sizeof(out->sig))
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "DSSE envelope: %s is %zu bytes, an Ed25519 signature is 64", field,
		        binlen);
	else
		memcpy(out->sig, bin, sizeof(out->sig));
	free(bin);
	return error;
}

int sluice_dsse__parse(sluice_ctx *ctx, sluice_dsse_envelope *out, const char *json, size_t len)
{
	sluice_dsse_envelope e = {0};
	json_error_t jerr;
	json_t *root, *v, *payload = NULL, *type = NULL, *sigs = NULL;
	const char *key;
	size_t i;
	int error = SLUICE_OK;

	memset(out, 0, sizeof(*out));
	if (!(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "DSSE envelope is not valid JSON (line %d column %d): %s",
		                         jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "DSSE envelope is not a JSON object");
		goto done;
	}
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "payload") == 0) {
			payload = v;
		} else if (strcmp(key, "payloadType") == 0) {
			type = v;
		} else if (strcmp(key, "signatures") == 0) {
			sigs = v;
		} else {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "DSSE envelope has unknown field '%.64s'", key);
			goto done;
		}
	}
	if (!payload || !json_is_string(payload)) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "DSSE envelope: field 'payload' is missing or not a string");
		goto done;
	}
	if (!type || !json_is_string(type) || json_string_length(type) == 0) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "DSSE envelope: field 'payloadType' is missing, empty or not "
		        "a string");
		goto done;
	}
	if (!sigs || !json_is_array(sigs) || json_array_size(sigs) == 0) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "DSSE envelope: field 'signatures' is missing, empty or not "
		        "an array");
		goto done;
	}
	if (json_array_size(sigs) > DSSE_MAX_SIGS) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "DSSE envelope: field 'signatures' has %zu entries, limit %d",
		        json_array_size(sigs), DSSE_MAX_SIGS);
		goto done;
	}
	if (!(e.payload_type = sluice__strdup(ctx, json_string_value(type)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	if ((error = decode_b64(ctx, &e.payload, &e.payload_len, payload, "payload")) < 0)
		goto done;
	if (!(e.sigs = sluice__calloc(ctx, json_array_size(sigs), sizeof(*e.sigs)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < json_array_size(sigs); i++) {
		if ((error = parse_sig(ctx, &e.sigs[i], json_array_get(sigs, i), i)) < 0)
			goto done;
		e.nsigs++;
	}
	*out = e;
	memset(&e, 0, sizeof(e));
done:
	sluice_dsse__dispose(&e);
	json_decref(root);
	return error;
}

void sluice_dsse__dispose(sluice_dsse_envelope *e)
{
	if (!e)
		return;
	free(e->payload_type);
	free(e->payload);
	free(e->sigs);
	memset(e, 0, sizeof(*e));
}

int sluice_dsse__verify(sluice_ctx *ctx, const sluice_dsse_envelope *e, const unsigned char pk[32])
{
	char fp[SLUICE_FP_LEN];
	sluice_buf pae = {0};
	size_t i;
	int error;

	if ((error = sluice_dsse__pae(ctx, &pae, e->payload_type, e->payload, e->payload_len)) < 0)
		return error;
	/* keyid is an unauthenticated hint (DSSE spec), so every signature is tried. */
	for (i = 0; i < e->nsigs; i++) {
		if (crypto_sign_verify_detached(e->sigs[i].sig, pae.ptr, pae.len, pk) == 0)
			goto done;
	}
	sluice_keys__fingerprint(fp, pk);
	error = sluice_ctx__error(
	        ctx, SLUICE_EDENIED,
	        "no signature of the DSSE envelope (%zu present) verifies under key %s", e->nsigs,
	        fp);
done:
	sluice_buf__dispose(&pae);
	return error;
}

/* ---- in-toto Statement v1 ---------------------------------------------- */

/* Non-empty lowercase hex of even length, and of the expected length for known algorithms. */
static bool digest_ok(const char *alg, const char *hex, size_t n, const char **why)
{
	static const struct {
		const char *alg;
		size_t len;
	} known[] = {{"sha256", 64},    {"sha512", 128},  {"sha384", 96},     {"sha224", 56},
	             {"sha1", 40},      {"blake2b", 128}, {"blake2b256", 64}, {"sha3_256", 64},
	             {"sha3_512", 128}, {"gitCommit", 40}};
	size_t i;

	if (n == 0 || n % 2 != 0) {
		*why = "is empty or of odd length";
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = hex[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			*why = "is not lowercase hex";
			return false;
		}
	}
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(alg, known[i].alg) == 0 && n != known[i].len) {
			*why = "has the wrong length for its algorithm";
			return false;
		}
	}
	return true;
}

int sluice_statement__build(sluice_ctx *ctx, sluice_buf *out, const sluice_subject *subjects,
                            size_t nsubjects, const char *predicate_type,
                            const char *predicate_json)
{
	json_t *st = NULL, *subj = NULL, *pred = NULL;
	json_error_t jerr;
	const char *why;
	size_t i;
	int error = SLUICE_OK;

	if (nsubjects == 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "statement needs at least one subject");
	if (!*predicate_type)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "statement predicateType is empty");
	if (!(subj = json_array())) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory building statement");
		goto done;
	}
	for (i = 0; i < nsubjects; i++) {
		const sluice_subject *s = &subjects[i];
		json_t *o, *d;

		if (!s->sha256 && !s->blake2b) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "statement subject[%zu] '%s' has no digest", i,
			                          s->name);
			goto done;
		}
		if ((s->sha256 && !digest_ok("sha256", s->sha256, strlen(s->sha256), &why)) ||
		    (s->blake2b &&
		     !digest_ok("blake2b256", s->blake2b, strlen(s->blake2b), &why))) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "statement subject[%zu] '%s': digest %s", i,
			                          s->name, why);
			goto done;
		}
		/*
		 * Each new value is handed to its parent at once (the *_new calls
		 * take the reference even when they fail), so nothing leaks.
		 */
		o = json_object();
		d = json_object();
		if (json_array_append_new(subj, o) < 0) {
			json_decref(d);
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM,
			                          "out of memory building "
			                          "statement");
			goto done;
		}
		if (json_object_set_new(o, "digest", d) < 0 ||
		    (s->sha256 && json_object_set_new(d, "sha256", json_string(s->sha256)) < 0) ||
		    (s->blake2b &&
		     json_object_set_new(d, "blake2b256", json_string(s->blake2b)) < 0)) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM,
			                          "out of memory building "
			                          "statement");
			goto done;
		}
		if (json_object_set_new(o, "name", json_string(s->name)) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "statement subject[%zu]: name is not valid UTF-8",
			                          i);
			goto done;
		}
	}
	if (predicate_json) {
		pred = json_loads(predicate_json, JSON_REJECT_DUPLICATES, &jerr);
		if (!pred || !json_is_object(pred)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "statement predicate is not a JSON object%s%s",
			                          pred ? "" : ": ", pred ? "" : jerr.text);
			goto done;
		}
	}
	if (!(st = json_pack("{s:s, s:s, s:O}", "_type", SLUICE_INTOTO_STATEMENT_V1,
	                     "predicateType", predicate_type, "subject", subj)) ||
	    (pred && json_object_set(st, "predicate", pred) < 0)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "statement predicateType is not valid UTF-8 or out of "
		                          "memory");
		goto done;
	}
	error = dump_json(ctx, out, st, "statement");
done:
	json_decref(st);
	json_decref(subj);
	json_decref(pred);
	return error;
}

static int check_subject(sluice_ctx *ctx, const json_t *s, size_t idx)
{
	json_t *name = json_object_get(s, "name"), *digest = json_object_get(s, "digest"), *v;
	const char *alg, *why;

	if (!json_is_object(s))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "statement subject[%zu] is not an "
		                         "object",
		                         idx);
	if (!json_is_string(name))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "statement subject[%zu].name is missing or not a string",
		                         idx);
	if (!json_is_object(digest) || json_object_size(digest) == 0)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "statement subject[%zu].digest is missing, empty or not an "
		        "object",
		        idx);
	json_object_foreach((json_t *)digest, alg, v)
	{
		if (!json_is_string(v))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "statement subject[%zu].digest.%.32s is not a string", idx, alg);
		if (!digest_ok(alg, json_string_value(v), json_string_length(v), &why))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "statement subject[%zu].digest.%.32s %s", idx, alg,
			                         why);
	}
	return SLUICE_OK;
}

int sluice_statement__check(sluice_ctx *ctx, const unsigned char *payload, size_t len,
                            char **predicate_type_out)
{
	json_error_t jerr;
	json_t *root, *type, *subj, *ptype, *pred;
	size_t i;
	int error = SLUICE_OK;

	if (!(root = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "statement is not valid JSON (line %d column %d): %s",
		                         jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "statement is not a JSON object");
		goto done;
	}
	type = json_object_get(root, "_type");
	subj = json_object_get(root, "subject");
	ptype = json_object_get(root, "predicateType");
	pred = json_object_get(root, "predicate");
	if (!json_is_string(type) || strcmp(json_string_value(type), SLUICE_INTOTO_STATEMENT_V1)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "statement _type is not '" SLUICE_INTOTO_STATEMENT_V1
		                          "'");
		goto done;
	}
	if (!json_is_array(subj) || json_array_size(subj) == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "statement subject is missing, empty or not an array");
		goto done;
	}
	for (i = 0; i < json_array_size(subj); i++)
		if ((error = check_subject(ctx, json_array_get(subj, i), i)) < 0)
			goto done;
	if (!json_is_string(ptype) || json_string_length(ptype) == 0) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "statement predicateType is missing, empty or not a string");
		goto done;
	}
	if (pred && !json_is_object(pred)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "statement predicate is not a JSON object");
		goto done;
	}
	if (predicate_type_out &&
	    !(*predicate_type_out = sluice__strdup(ctx, json_string_value(ptype))))
		error = SLUICE_ENOMEM;
done:
	json_decref(root);
	return error;
}
