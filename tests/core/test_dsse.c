/*
 * tests/core/test_dsse.c - DSSE envelopes (PAE against the spec's vector,
 * sign/parse/verify, strict parsing) and in-toto Statement v1.
 */
#include "testutil.h"

#include "dsse.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	sluice_ctx *ctx;
	sluice_key key;
	sluice_key other;
} fixture;

static int group_setup(void **state)
{
	(void)state;
	return sluice_global_init() < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sluice_global_shutdown();
	return 0;
}

/* Keys from fixed seeds, so no key directory is needed. */
static void key_from_seed(sluice_key *k, const char *name, unsigned char fill)
{
	unsigned char seed[32];

	memset(k, 0, sizeof(*k));
	memset(seed, fill, sizeof(seed));
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	k->has_secret = 1;
	snprintf(k->name, sizeof(k->name), "%s", name);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(sluice_ctx_new(&f->ctx), 0);
	key_from_seed(&f->key, "gate", 7);
	key_from_seed(&f->other, "other", 9);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	sluice_key__dispose(&f->key);
	sluice_key__dispose(&f->other);
	sluice_ctx_free(f->ctx);
	free(f);
	return 0;
}

static void test_dsse__pae_spec_vector(void **state)
{
	fixture *f = *state;
	static const char want[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	sluice_buf pae = {0};

	assert_int_equal(
	        sluice_dsse__pae(f->ctx, &pae, "http://example.com/HelloWorld", "hello world", 11),
	        0);
	assert_int_equal(pae.len, sizeof(want) - 1);
	assert_memory_equal(pae.ptr, want, sizeof(want) - 1);

	/* The buffer is replaced, not appended to; an empty body is "0 ". */
	assert_int_equal(sluice_dsse__pae(f->ctx, &pae, "t", "", 0), 0);
	assert_int_equal(pae.len, 13);
	assert_memory_equal(pae.ptr, "DSSEv1 1 t 0 ", 13);

	/* Lengths are bytes, including NULs and multi-byte characters. */
	assert_int_equal(sluice_dsse__pae(f->ctx, &pae, "\xc3\xa9", "a\0b", 3), 0);
	assert_int_equal(pae.len, 17);
	assert_memory_equal(pae.ptr, "DSSEv1 2 \xc3\xa9 3 a\0b", 17);
	sluice_buf__dispose(&pae);
}

/* Fetch a string member of an object in envelope JSON text. */
static char *json_member(const char *text, const char *field)
{
	json_t *root = json_loads(text, 0, NULL), *v;
	char *s;

	assert_non_null(root);
	v = json_object_get(root, field);
	if (json_is_array(v)) /* signatures[0].sig */
		v = json_object_get(json_array_get(v, 0), "sig");
	assert_true(json_is_string(v));
	s = strdup(json_string_value(v));
	json_decref(root);
	return s;
}

static void test_dsse__sign_parse_verify_roundtrip(void **state)
{
	fixture *f = *state;
	static const char payload[] = "{\"hello\":\"world\"}";
	char fp[SLUICE_FP_LEN], pae[256], *sig_b64;
	unsigned char sig[64];
	size_t siglen;
	sluice_buf env = {0};
	sluice_dsse_envelope e;
	json_t *root;
	int n;

	assert_int_equal(sluice_dsse__sign(f->ctx, &env, &f->key, SLUICE_INTOTO_PAYLOAD_TYPE,
	                                   payload, strlen(payload)),
	                 0);
	/* Compact with sorted keys. */
	assert_int_equal(strncmp((char *)env.ptr, "{\"payload\":\"", 12), 0);
	assert_non_null(strstr((char *)env.ptr,
	                       "\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{"
	                       "\"keyid\":\"SHA256:"));
	assert_null(strchr((char *)env.ptr, ' '));
	assert_null(strchr((char *)env.ptr, '\n'));

	assert_int_equal(sluice_dsse__parse(f->ctx, &e, (char *)env.ptr, env.len), 0);
	assert_string_equal(e.payload_type, SLUICE_INTOTO_PAYLOAD_TYPE);
	assert_int_equal(e.payload_len, strlen(payload));
	assert_memory_equal(e.payload, payload, strlen(payload));
	assert_int_equal(e.nsigs, 1);
	sluice_keys__fingerprint(fp, f->key.pk);
	assert_string_equal(e.sigs[0].keyid, fp);
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->key.pk), 0);

	/* Verify independently: PAE by hand, libsodium directly. */
	n = snprintf(pae, sizeof(pae), "DSSEv1 %zu %s %zu %s", strlen(SLUICE_INTOTO_PAYLOAD_TYPE),
	             SLUICE_INTOTO_PAYLOAD_TYPE, strlen(payload), payload);
	assert_true(n > 0 && (size_t)n < sizeof(pae));
	sig_b64 = json_member((char *)env.ptr, "signatures");
	assert_int_equal(sodium_base642bin(sig, sizeof(sig), sig_b64, strlen(sig_b64), NULL,
	                                   &siglen, NULL, sodium_base64_VARIANT_ORIGINAL),
	                 0);
	assert_int_equal(siglen, 64);
	assert_int_equal(
	        crypto_sign_verify_detached(sig, (unsigned char *)pae, (size_t)n, f->key.pk), 0);
	assert_memory_equal(sig, e.sigs[0].sig, 64);
	free(sig_b64);

	/* The payload field is standard base64 of the exact bytes. */
	root = json_loads((char *)env.ptr, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(root, "payload")),
	                    "eyJoZWxsbyI6IndvcmxkIn0=");
	json_decref(root);

	sluice_dsse__dispose(&e);
	assert_null(e.payload);
	sluice_buf__dispose(&env);
}

/* Re-serialise an envelope after editing one field. */
static void edit_envelope(sluice_buf *out, const char *env, const char *field, json_t *value)
{
	json_t *root = json_loads(env, 0, NULL);
	char *s;

	assert_non_null(root);
	if (strcmp(field, "sig") == 0)
		json_object_set_new(json_array_get(json_object_get(root, "signatures"), 0), "sig",
		                    value);
	else
		json_object_set_new(root, field, value);
	s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	out->len = 0;
	free(out->ptr);
	out->ptr = (unsigned char *)s;
	out->len = out->cap = strlen(s);
	json_decref(root);
}

static void test_dsse__tampering_refused(void **state)
{
	fixture *f = *state;
	sluice_buf env = {0}, bad = {0};
	sluice_dsse_envelope e;
	unsigned char sig[64];
	char b64[128];

	assert_int_equal(sluice_dsse__sign(f->ctx, &env, &f->key, "text/plain", "abc", 3), 0);

	/* payload "abd" */
	edit_envelope(&bad, (char *)env.ptr, "payload", json_string("YWJk"));
	assert_int_equal(sluice_dsse__parse(f->ctx, &e, (char *)bad.ptr, bad.len), 0);
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->key.pk), SLUICE_EDENIED);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "no signature"));
	sluice_dsse__dispose(&e);

	edit_envelope(&bad, (char *)env.ptr, "payloadType", json_string("text/html"));
	assert_int_equal(sluice_dsse__parse(f->ctx, &e, (char *)bad.ptr, bad.len), 0);
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->key.pk), SLUICE_EDENIED);
	sluice_dsse__dispose(&e);

	assert_int_equal(sluice_dsse__parse(f->ctx, &e, (char *)env.ptr, env.len), 0);
	memcpy(sig, e.sigs[0].sig, 64);
	sig[10] ^= 0x20;
	sodium_bin2base64(b64, sizeof(b64), sig, 64, sodium_base64_VARIANT_ORIGINAL);
	/* Wrong key. */
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->other.pk), SLUICE_EDENIED);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "SHA256:"));
	sluice_dsse__dispose(&e);

	edit_envelope(&bad, (char *)env.ptr, "sig", json_string(b64));
	assert_int_equal(sluice_dsse__parse(f->ctx, &e, (char *)bad.ptr, bad.len), 0);
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->key.pk), SLUICE_EDENIED);
	sluice_dsse__dispose(&e);

	/* URL-safe base64 of the same bytes is accepted (DSSE allows either). */
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)"\xfb\xff", 2,
	                  sodium_base64_VARIANT_URLSAFE);
	assert_string_equal(b64, "-_8=");
	edit_envelope(&bad, (char *)env.ptr, "payload", json_string(b64));
	assert_int_equal(sluice_dsse__parse(f->ctx, &e, (char *)bad.ptr, bad.len), 0);
	assert_int_equal(e.payload_len, 2);
	assert_memory_equal(e.payload, "\xfb\xff", 2);
	sluice_dsse__dispose(&e);

	sluice_buf__dispose(&env);
	sluice_buf__dispose(&bad);
}

static void test_dsse__multiple_signatures(void **state)
{
	fixture *f = *state;
	sluice_buf a = {0}, b = {0};
	json_t *ra, *rb;
	char *s;
	sluice_dsse_envelope e;

	assert_int_equal(sluice_dsse__sign(f->ctx, &a, &f->key, "t", "x", 1), 0);
	assert_int_equal(sluice_dsse__sign(f->ctx, &b, &f->other, "t", "x", 1), 0);
	ra = json_loads((char *)a.ptr, 0, NULL);
	rb = json_loads((char *)b.ptr, 0, NULL);
	json_array_extend(json_object_get(ra, "signatures"), json_object_get(rb, "signatures"));
	/* keyid is optional. */
	json_object_del(json_array_get(json_object_get(ra, "signatures"), 1), "keyid");
	s = json_dumps(ra, JSON_COMPACT);
	assert_int_equal(sluice_dsse__parse(f->ctx, &e, s, strlen(s)), 0);
	assert_int_equal(e.nsigs, 2);
	assert_string_equal(e.sigs[1].keyid, "");
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->key.pk), 0);
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->other.pk), 0);
	sluice_dsse__dispose(&e);
	free(s);
	json_decref(ra);
	json_decref(rb);
	sluice_buf__dispose(&a);
	sluice_buf__dispose(&b);
}

static void test_dsse__malformed_envelopes_refused(void **state)
{
	fixture *f = *state;
	static const char sig64[] =
	        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	        "AAAAAAAAAAAAAAAAAA==";
	static const struct {
		const char *json;
		const char *msg;
	} cases[] = {
	        {"", "not valid JSON"},
	        {"[]", "not a JSON object"},
	        {"{\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\"}]}", "'payload'"},
	        {"{\"payload\":\"\",\"signatures\":[{\"sig\":\"%s\"}]}", "'payloadType'"},
	        {"{\"payload\":\"\",\"payloadType\":\"\",\"signatures\":[{\"sig\":\"%s\"}]}",
	         "'payloadType'"},
	        {"{\"payload\":\"\",\"payloadType\":\"t\"}", "'signatures'"},
	        {"{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[]}", "'signatures'"},
	        {"{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":{}}", "'signatures'"},
	        {"{\"payload\":1,\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\"}]}",
	         "'payload'"},
	        {"{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\"}],"
	         "\"extra\":1}",
	         "unknown field 'extra'"},
	        {"{\"payload\":\"\",\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[{"
	         "\"sig\":"
	         "\"%s\"}]}",
	         "duplicate"},
	        {"{\"payload\":\"!!!!\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\"}]}",
	         "'payload' is not valid base64"},
	        {"{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"AAAA\"}]}",
	         "signatures[0].sig is 3 bytes"},
	        {"{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s=\"}]}",
	         "signatures[0].sig' is not valid base64"},
	        {"{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[{\"keyid\":\"k\"}]}",
	         "signatures[0].sig is missing"},
	        {"{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\","
	         "\"keyid\":1}]}",
	         "keyid is not a string"},
	        {"{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\","
	         "\"cert\":\"\"}]}",
	         "signatures[0] has unknown field 'cert'"},
	        {"{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[7]}",
	         "signatures[0] is not an object"},
	        {"{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\"}]} x",
	         "not valid JSON"},
	};
	char json[512];
	sluice_dsse_envelope e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(json, sizeof(json), cases[i].json, sig64);
		memset(&e, 0x5a, sizeof(e));
		assert_int_equal(sluice_dsse__parse(f->ctx, &e, json, strlen(json)),
		                 SLUICE_EINVALID);
		if (!strstr(sluice_ctx_errmsg(f->ctx), cases[i].msg))
			fail_msg("case %zu: message '%s' lacks '%s'", i, sluice_ctx_errmsg(f->ctx),
			         cases[i].msg);
		/* The output is left empty, safe to dispose. */
		assert_null(e.payload);
		sluice_dsse__dispose(&e);
	}
	/* The well-formed version of the cases parses. */
	snprintf(json, sizeof(json),
	         "{\"payload\":\"YWJj\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"%s\"}]}",
	         sig64);
	assert_int_equal(sluice_dsse__parse(f->ctx, &e, json, strlen(json)), 0);
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->key.pk), SLUICE_EDENIED);
	sluice_dsse__dispose(&e);
}

static void test_dsse__sign_needs_secret(void **state)
{
	fixture *f = *state;
	sluice_key pub = f->key;
	sluice_buf out = {0};

	pub.has_secret = 0;
	assert_int_equal(sluice_dsse__sign(f->ctx, &out, &pub, "t", "x", 1), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "secret"));
	assert_int_equal(sluice_dsse__sign(f->ctx, &out, &f->key, "\xff", "x", 1), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "UTF-8"));
	sluice_buf__dispose(&out);
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B2_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_dsse__statement_build_check_roundtrip(void **state)
{
	fixture *f = *state;
	const sluice_subject subjects[] = {
	        {"model/v1", SHA_A, B2_B},
	        {"suite.jsonl", NULL, B2_B},
	};
	sluice_buf st = {0}, env = {0};
	sluice_dsse_envelope e;
	char *ptype = NULL;

	assert_int_equal(sluice_statement__build(f->ctx, &st, subjects, 2,
	                                         "https://sluice.dev/verdict/v1",
	                                         "{\"pass\": true, \"b\": [1, 2]}"),
	                 0);
	assert_string_equal(
	        (char *)st.ptr,
	        "{\"_type\":\"https://in-toto.io/Statement/"
	        "v1\",\"predicate\":{\"b\":[1,2],\"pass\":"
	        "true},\"predicateType\":\"https://sluice.dev/verdict/v1\",\"subject\":[{"
	        "\"digest\":{\"blake2b256\":\"" B2_B "\",\"sha256\":\"" SHA_A
	        "\"},\"name\":\"model/v1\"},{\"digest\":{\"blake2b256\":\"" B2_B
	        "\"},\"name\":\"suite.jsonl\"}]}");
	assert_int_equal(sluice_statement__check(f->ctx, st.ptr, st.len, &ptype), 0);
	assert_string_equal(ptype, "https://sluice.dev/verdict/v1");
	free(ptype);
	assert_int_equal(sluice_statement__check(f->ctx, st.ptr, st.len, NULL), 0);

	/* Through an envelope and back. */
	assert_int_equal(sluice_dsse__sign(f->ctx, &env, &f->key, SLUICE_INTOTO_PAYLOAD_TYPE,
	                                   st.ptr, st.len),
	                 0);
	assert_int_equal(sluice_dsse__parse(f->ctx, &e, (char *)env.ptr, env.len), 0);
	assert_int_equal(sluice_dsse__verify(f->ctx, &e, f->key.pk), 0);
	assert_int_equal(sluice_statement__check(f->ctx, e.payload, e.payload_len, NULL), 0);
	assert_int_equal(e.payload_len, st.len);
	assert_memory_equal(e.payload, st.ptr, st.len);
	sluice_dsse__dispose(&e);

	/* No predicate at all is allowed. */
	assert_int_equal(sluice_statement__build(f->ctx, &st, subjects, 1, "p", NULL), 0);
	assert_null(strstr((char *)st.ptr, "predicate\""));
	assert_int_equal(sluice_statement__check(f->ctx, st.ptr, st.len, NULL), 0);

	sluice_buf__dispose(&st);
	sluice_buf__dispose(&env);
}

static void test_dsse__statement_build_refusals(void **state)
{
	fixture *f = *state;
	const sluice_subject nodigest = {"x", NULL, NULL};
	const sluice_subject badhex = {"x", "ABCD", NULL};
	const sluice_subject shortb2 = {"x", NULL, "abcd"};
	const sluice_subject badname = {"\xff", SHA_A, NULL};
	const sluice_subject ok = {"x", SHA_A, NULL};
	sluice_buf st = {0};

	assert_int_equal(sluice_statement__build(f->ctx, &st, &ok, 0, "p", NULL), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "at least one subject"));
	assert_int_equal(sluice_statement__build(f->ctx, &st, &nodigest, 1, "p", NULL),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "no digest"));
	assert_int_equal(sluice_statement__build(f->ctx, &st, &badhex, 1, "p", NULL),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "lowercase hex"));
	assert_int_equal(sluice_statement__build(f->ctx, &st, &shortb2, 1, "p", NULL),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "wrong length"));
	assert_int_equal(sluice_statement__build(f->ctx, &st, &badname, 1, "p", NULL),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "UTF-8"));
	assert_int_equal(sluice_statement__build(f->ctx, &st, &ok, 1, "", NULL), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "predicateType"));
	assert_int_equal(sluice_statement__build(f->ctx, &st, &ok, 1, "p", "[1]"), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "predicate is not a JSON object"));
	assert_int_equal(sluice_statement__build(f->ctx, &st, &ok, 1, "p", "{"), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "predicate is not a JSON object"));
	sluice_buf__dispose(&st);
}

static void test_dsse__statement_check_refusals(void **state)
{
	fixture *f = *state;
#define T "\"_type\":\"https://in-toto.io/Statement/v1\""
#define P "\"predicateType\":\"p\""
#define S "\"subject\":[{\"name\":\"n\",\"digest\":{\"sha256\":\"" SHA_A "\"}}]"
	static const struct {
		const char *json;
		const char *msg;
	} cases[] = {
	        {"nope", "not valid JSON"},
	        {"[]", "not a JSON object"},
	        {"{" P "," S "}", "_type"},
	        {"{\"_type\":\"https://in-toto.io/Statement/v0.1\"," P "," S "}", "_type"},
	        {"{\"_type\":1," P "," S "}", "_type"},
	        {"{" T "," P "}", "subject is missing"},
	        {"{" T "," P ",\"subject\":[]}", "subject is missing, empty"},
	        {"{" T "," P ",\"subject\":{}}", "subject"},
	        {"{" T "," P ",\"subject\":[1]}", "subject[0] is not an object"},
	        {"{" T "," P ",\"subject\":[{\"digest\":{\"sha256\":\"" SHA_A "\"}}]}",
	         "subject[0].name"},
	        {"{" T "," P ",\"subject\":[{\"name\":\"n\"}]}", "subject[0].digest"},
	        {"{" T "," P ",\"subject\":[{\"name\":\"n\",\"digest\":{}}]}", "subject[0].digest"},
	        {"{" T "," P ",\"subject\":[{\"name\":\"n\",\"digest\":{\"sha256\":\"xyz0\"}}]}",
	         "subject[0].digest.sha256 is not lowercase hex"},
	        {"{" T "," P ",\"subject\":[{\"name\":\"n\",\"digest\":{\"sha256\":\"ABCD\"}}]}",
	         "not lowercase hex"},
	        {"{" T "," P ",\"subject\":[{\"name\":\"n\",\"digest\":{\"sha256\":\"abc\"}}]}",
	         "odd length"},
	        {"{" T "," P ",\"subject\":[{\"name\":\"n\",\"digest\":{\"sha256\":\"abcd\"}}]}",
	         "wrong length"},
	        {"{" T "," P ",\"subject\":[{\"name\":\"n\",\"digest\":{\"blake2b256\":1}}]}",
	         "not a string"},
	        {"{" T "," S "}", "predicateType"},
	        {"{" T "," S ",\"predicateType\":\"\"}", "predicateType"},
	        {"{" T "," P "," S ",\"predicate\":[]}", "predicate is not a JSON object"},
	        {"{" T "," P "," S ",\"predicateType\":\"q\"}", "duplicate"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *j = cases[i].json;
		char *ptype = NULL;
		assert_int_equal(sluice_statement__check(f->ctx, (const unsigned char *)j,
		                                         strlen(j), &ptype),
		                 SLUICE_EINVALID);
		assert_null(ptype);
		if (!strstr(sluice_ctx_errmsg(f->ctx), cases[i].msg))
			fail_msg("case %zu: message '%s' lacks '%s'", i, sluice_ctx_errmsg(f->ctx),
			         cases[i].msg);
	}
	/* Unknown digest algorithms with plausible hex pass; so do unknown fields (in-toto). */
	{
		static const char ok[] = "{" T "," P ",\"subject\":[{\"name\":\"n\",\"digest\":{"
		                         "\"x\":\"ab\"},\"uri\":\"u\"}],\"extra\":1}";
		assert_int_equal(sluice_statement__check(f->ctx, (const unsigned char *)ok,
		                                         strlen(ok), NULL),
		                 0);
	}
#undef T
#undef P
#undef S
}

static int fail_nth_alloc(void *data, sluice_fault_op op, const char *what)
{
	int *countdown = data;

	(void)what;
	return op == SLUICE_FAULT_ALLOC && --*countdown == 0;
}

/* Every allocation failure is reported as ENOMEM and cleaned up (ASan checks leaks). */
static void test_dsse__allocation_failures(void **state)
{
	fixture *f = *state;
	const sluice_subject subj = {"m", SHA_A, B2_B};
	sluice_buf st = {0}, env = {0}, out = {0};
	sluice_dsse_envelope e;
	int n, countdown, rc, failures = 0;

	assert_int_equal(sluice_statement__build(f->ctx, &st, &subj, 1, "p", "{}"), 0);
	assert_int_equal(sluice_dsse__sign(f->ctx, &env, &f->key, SLUICE_INTOTO_PAYLOAD_TYPE,
	                                   st.ptr, st.len),
	                 0);
	for (n = 1; n < 40; n++) {
		countdown = n;
		sluice_ctx_set_fault_hook(f->ctx, fail_nth_alloc, &countdown);
		rc = sluice_dsse__sign(f->ctx, &out, &f->key, "t", st.ptr, st.len);
		assert_true(rc == 0 || rc == SLUICE_ENOMEM);
		failures += rc != 0;
		countdown = n;
		rc = sluice_dsse__parse(f->ctx, &e, (char *)env.ptr, env.len);
		assert_true(rc == 0 || rc == SLUICE_ENOMEM);
		if (rc == 0) {
			countdown = n;
			rc = sluice_dsse__verify(f->ctx, &e, f->key.pk);
			assert_true(rc == 0 || rc == SLUICE_ENOMEM);
		}
		failures += rc != 0;
		sluice_dsse__dispose(&e);
		countdown = n;
		rc = sluice_statement__build(f->ctx, &out, &subj, 1, "p", "{}");
		assert_true(rc == 0 || rc == SLUICE_ENOMEM);
		countdown = n;
		rc = sluice_statement__check(f->ctx, st.ptr, st.len, NULL);
		assert_true(rc == 0 || rc == SLUICE_ENOMEM);
		sluice_ctx_set_fault_hook(f->ctx, NULL, NULL);
	}
	/* The hook was really reached. */
	assert_true(failures > 0);
	sluice_buf__dispose(&st);
	sluice_buf__dispose(&env);
	sluice_buf__dispose(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_dsse__pae_spec_vector, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__sign_parse_verify_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__tampering_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__multiple_signatures, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__malformed_envelopes_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__sign_needs_secret, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__statement_build_check_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__statement_build_refusals, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__statement_check_refusals, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_dsse__allocation_failures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
