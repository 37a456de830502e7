/*
 * tests/core/test_safetensors.c - the safetensors header parser: what it
 * accepts, each rule it refuses with, and pickle recognition.
 */
#include "testutil.h"
#include "safetensors.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sluice_ctx *ctx;

static int setup(void **state)
{
	(void)state;
	if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sluice_ctx_free(ctx);
	sluice_global_shutdown();
	return 0;
}

/* u64 N, then hlen header bytes, then dlen data bytes (a counting pattern). */
static unsigned char *mk_raw(size_t *len, const void *hdr, size_t hlen, size_t dlen)
{
	unsigned char *buf = malloc(8 + hlen + dlen + 1);
	size_t i;

	assert_non_null(buf);
	sluice__st64(buf, hlen);
	memcpy(buf + 8, hdr, hlen);
	for (i = 0; i < dlen; i++)
		buf[8 + hlen + i] = (unsigned char)i;
	*len = 8 + hlen + dlen;
	return buf;
}

static unsigned char *mk(size_t *len, const char *json, size_t dlen)
{
	return mk_raw(len, json, strlen(json), dlen);
}

/* Parse a whole in-memory file. */
static int parse_buf(sluice_st_header *h, const unsigned char *buf, size_t len)
{
	sluice_ctx_clear_error(ctx);
	return sluice_safetensors__parse(ctx, h, buf, len, len, "model.safetensors");
}

/* Parse json + dlen data bytes; expect success. */
static void parse_ok(sluice_st_header *h, const char *json, size_t dlen)
{
	size_t len;
	unsigned char *buf = mk(&len, json, dlen);
	int error = parse_buf(h, buf, len);

	if (error < 0)
		fail_msg("unexpected refusal: %s", sluice_ctx_errmsg(ctx));
	free(buf);
}

static void assert_msg_has(const char *needle)
{
	const char *msg = sluice_ctx_errmsg(ctx);

	if (!strstr(msg, needle))
		fail_msg("message '%s' does not contain '%s'", msg, needle);
}

/* Expect a refusal naming the file and each of up to three needles. */
static void refused_raw(const void *hdr, size_t hlen, size_t dlen, const char *n1, const char *n2,
                        const char *n3)
{
	sluice_st_header h;
	size_t len;
	unsigned char *buf = mk_raw(&len, hdr, hlen, dlen);

	assert_int_equal(parse_buf(&h, buf, len), SLUICE_EINVALID);
	assert_int_equal(sluice_ctx_errcode(ctx), SLUICE_EINVALID);
	assert_int_equal(h.ntensors, 0);
	assert_null(h.tensors);
	assert_msg_has("model.safetensors");
	if (n1)
		assert_msg_has(n1);
	if (n2)
		assert_msg_has(n2);
	if (n3)
		assert_msg_has(n3);
	free(buf);
}

static void refused(const char *json, size_t dlen, const char *n1, const char *n2, const char *n3)
{
	refused_raw(json, strlen(json), dlen, n1, n2, n3);
}

/* ---- accepted files ----------------------------------------------------- */

static void test_safetensors__parses_f32(void **state)
{
	sluice_st_header h;
	const sluice_st_tensor *t;

	(void)state;
	parse_ok(&h, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24);
	assert_int_equal(h.ntensors, 1);
	assert_int_equal(h.header_len, 57);
	assert_int_equal(h.data_start, 8 + 57);
	assert_int_equal(h.file_size, 8 + 57 + 24);
	assert_null(h.metadata);
	t = sluice_safetensors__find(&h, "w");
	assert_non_null(t);
	assert_string_equal(t->name, "w");
	assert_int_equal(t->dtype, SLUICE_DT_F32);
	assert_int_equal(t->ndim, 2);
	assert_int_equal(t->shape[0], 2);
	assert_int_equal(t->shape[1], 3);
	assert_int_equal(t->begin, 0);
	assert_int_equal(t->end, 24);
	assert_null(sluice_safetensors__find(&h, "x"));
	sluice_safetensors__dispose(&h);
	assert_null(h.tensors);
	assert_int_equal(h.ntensors, 0);
}

static void test_safetensors__parses_multi_tensor_in_offset_order(void **state)
{
	sluice_st_header h;

	(void)state;
	/* Header order differs from file order; scalar, bf16 and f16 mixed. */
	parse_ok(&h,
	         "{\"c\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[14,22]},"
	         "\"b.weight\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[8,14]},"
	         "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}",
	         22);
	assert_int_equal(h.ntensors, 3);
	assert_string_equal(h.tensors[0].name, "a");
	assert_string_equal(h.tensors[1].name, "b.weight");
	assert_string_equal(h.tensors[2].name, "c");
	assert_int_equal(h.tensors[0].dtype, SLUICE_DT_BF16);
	assert_int_equal(h.tensors[0].ndim, 2);
	assert_int_equal(h.tensors[1].ndim, 1);
	assert_int_equal(h.tensors[1].shape[0], 3);
	assert_int_equal(h.tensors[1].begin, 8);
	assert_int_equal(h.tensors[1].end, 14);
	assert_int_equal(h.tensors[2].dtype, SLUICE_DT_F64);
	assert_int_equal(h.tensors[2].ndim, 0);
	assert_int_equal(h.tensors[2].begin, 14);
	assert_int_equal(h.tensors[2].end, 22);
	assert_ptr_equal(sluice_safetensors__find(&h, "c"), &h.tensors[2]);
	sluice_safetensors__dispose(&h);
}

static void test_safetensors__zero_size_tensors_sort_stably(void **state)
{
	sluice_st_header h;

	(void)state;
	/* z1 and z2 sit at offset 4, listed after b which also begins there. */
	parse_ok(&h,
	         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
	         "\"z2\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
	         "\"z1\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
	         "\"end\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[8,8]}}",
	         8);
	assert_int_equal(h.ntensors, 5);
	assert_string_equal(h.tensors[0].name, "a");
	assert_string_equal(h.tensors[1].name, "z2");
	assert_string_equal(h.tensors[2].name, "z1");
	assert_string_equal(h.tensors[3].name, "b");
	assert_string_equal(h.tensors[4].name, "end");
	sluice_safetensors__dispose(&h);
}

static void test_safetensors__empty_header_is_valid(void **state)
{
	sluice_st_header h;

	(void)state;
	parse_ok(&h, "{}", 0);
	assert_int_equal(h.ntensors, 0);
	assert_null(h.metadata);
	assert_int_equal(h.data_start, 10);
	sluice_safetensors__dispose(&h);

	parse_ok(&h, "{\"__metadata__\":{}}", 0);
	assert_int_equal(h.ntensors, 0);
	assert_string_equal(h.metadata, "{}");
	sluice_safetensors__dispose(&h);
}

static void test_safetensors__metadata_kept_compact_sorted(void **state)
{
	sluice_st_header h;

	(void)state;
	parse_ok(&h,
	         "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
	         "\"__metadata__\": {\"format\" : \"pt\", \"author\": \"\\u00e9 x\"}}",
	         2);
	assert_int_equal(h.ntensors, 1);
	assert_string_equal(h.tensors[0].name, "w");
	assert_non_null(h.metadata);
	assert_string_equal(h.metadata, "{\"author\":\"\xc3\xa9 x\",\"format\":\"pt\"}");
	sluice_safetensors__dispose(&h);
}

static void test_safetensors__space_padding_accepted(void **state)
{
	static const char json[] =
	        "{\"w\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[0,3]}}        ";
	sluice_st_header h;

	(void)state;
	parse_ok(&h, json, 3);
	assert_int_equal(h.ntensors, 1);
	assert_int_equal(h.tensors[0].end, 3);
	/* The padding belongs to the header: data starts after it. */
	assert_int_equal(h.header_len, strlen(json));
	assert_int_equal(h.data_start, 8 + strlen(json));
	sluice_safetensors__dispose(&h);
}

static void test_safetensors__acceptance_ignores_first_bytes(void **state)
{
	sluice_st_header h;
	char json[0x300];
	size_t len;
	unsigned char *buf;

	(void)state;
	/* N = 0x280: the file begins 0x80 0x02, a pickle's first two bytes. */
	memset(json, ' ', 0x280);
	memcpy(json, "{}", 2);
	json[0x280] = '\0';
	buf = mk(&len, json, 0);
	assert_int_equal(buf[0], 0x80);
	assert_int_equal(buf[1], 0x02);
	assert_int_equal(parse_buf(&h, buf, len), 0);
	assert_int_equal(h.header_len, 0x280);
	sluice_safetensors__dispose(&h);
	free(buf);
}

static void test_safetensors__all_dtypes_sizes_and_names(void **state)
{
	static const struct {
		sluice_dtype dt;
		const char *name;
		size_t size;
	} want[] = {
	        {SLUICE_DT_BOOL, "BOOL", 1},       {SLUICE_DT_U8, "U8", 1},
	        {SLUICE_DT_I8, "I8", 1},           {SLUICE_DT_F8_E5M2, "F8_E5M2", 1},
	        {SLUICE_DT_F8_E4M3, "F8_E4M3", 1}, {SLUICE_DT_I16, "I16", 2},
	        {SLUICE_DT_U16, "U16", 2},         {SLUICE_DT_F16, "F16", 2},
	        {SLUICE_DT_BF16, "BF16", 2},       {SLUICE_DT_I32, "I32", 4},
	        {SLUICE_DT_U32, "U32", 4},         {SLUICE_DT_F32, "F32", 4},
	        {SLUICE_DT_F64, "F64", 8},         {SLUICE_DT_I64, "I64", 8},
	        {SLUICE_DT_U64, "U64", 8},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		sluice_st_header h;
		char json[128];

		assert_int_equal(sluice_safetensors__dtype_size(want[i].dt), want[i].size);
		assert_string_equal(sluice_safetensors__dtype_name(want[i].dt), want[i].name);
		/* Each dtype round-trips through a header with 3 elements. */
		snprintf(json, sizeof(json),
		         "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%zu]}}",
		         want[i].name, 3 * want[i].size);
		parse_ok(&h, json, 3 * want[i].size);
		assert_int_equal(h.tensors[0].dtype, want[i].dt);
		sluice_safetensors__dispose(&h);
	}
}

/* ---- the 8-byte prefix -------------------------------------------------- */

static void test_safetensors__refuses_short_file(void **state)
{
	sluice_st_header h;
	const unsigned char buf[5] = {2, 0, 0, 0, 0};

	(void)state;
	sluice_ctx_clear_error(ctx);
	assert_int_equal(sluice_safetensors__parse(ctx, &h, buf, sizeof(buf), sizeof(buf), "tiny"),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "tiny"));
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "shorter than 8 bytes"));
}

static void test_safetensors__refuses_header_past_end(void **state)
{
	size_t len;
	unsigned char *buf = mk(&len, "{}", 0);

	(void)state;
	sluice__st64(buf, 100);
	{
		sluice_st_header h;
		assert_int_equal(parse_buf(&h, buf, len), SLUICE_EINVALID);
	}
	assert_msg_has("model.safetensors");
	assert_msg_has("header length 100 runs past end of file");
	free(buf);
}

static void test_safetensors__refuses_header_over_limit(void **state)
{
	sluice_st_header h;
	size_t len;
	unsigned char *buf = mk(&len, "{}", 0);

	(void)state;
	sluice__st64(buf, 200000000);
	/* The file claims to be big enough: the limit alone refuses it. */
	sluice_ctx_clear_error(ctx);
	assert_int_equal(sluice_safetensors__parse(ctx, &h, buf, len, 300000000, "big"),
	                 SLUICE_EINVALID);
	assert_msg_has("header length 200000000 exceeds 100 MB limit");
	sluice__st64(buf, UINT64_MAX);
	assert_int_equal(sluice_safetensors__parse(ctx, &h, buf, len, UINT64_MAX, "big"),
	                 SLUICE_EINVALID);
	assert_msg_has("exceeds 100 MB limit");
	free(buf);
}

static void test_safetensors__refuses_tiny_header_length(void **state)
{
	(void)state;
	refused_raw("", 0, 0, "header length 0 is too small", NULL, NULL);
	refused_raw("{", 1, 0, "header length 1 is too small", NULL, NULL);
}

/* ---- the JSON ----------------------------------------------------------- */

static void test_safetensors__refuses_non_utf8(void **state)
{
	(void)state;
	refused_raw("{\"\xff\":1}", 6, 0, "not UTF-8", NULL, NULL);
	/* An overlong encoding of '/' */
	refused_raw("{\"\xc0\xaf\":1}", 7, 0, "not UTF-8", NULL, NULL);
}

static void test_safetensors__refuses_non_json(void **state)
{
	(void)state;
	refused("{abc}", 0, "not JSON", NULL, NULL);
	refused("{\"a\":", 0, "not JSON", NULL, NULL);
	refused_raw("{\"a\0\":1}", 7, 0, "not JSON", NULL, NULL);
}

static void test_safetensors__refuses_non_object(void **state)
{
	(void)state;
	refused("[1,2]", 0, "not a JSON object", NULL, NULL);
	refused("\"ab\"", 0, "not a JSON object", NULL, NULL);
	refused("12", 0, "not a JSON object", NULL, NULL);
	/* The reference implementation refuses leading whitespace too. */
	refused(" {}", 0, "not a JSON object", NULL, NULL);
}

static void test_safetensors__refuses_trailing_bytes(void **state)
{
	(void)state;
	refused("{}\n", 0, "0x0a after the JSON object", NULL, NULL);
	refused("{}  \t", 0, "0x09 after the JSON object", NULL, NULL);
	refused("{}{}", 0, "0x7b after the JSON object", NULL, NULL);
	refused_raw("{}\0", 3, 0, "0x00 after the JSON object", NULL, NULL);
}

static void test_safetensors__refuses_duplicate_tensor_name(void **state)
{
	(void)state;
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
	        "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
	        2, "duplicate tensor name", "w", NULL);
}

static void test_safetensors__refuses_bad_metadata(void **state)
{
	(void)state;
	refused("{\"__metadata__\":[]}", 0, "__metadata__ is not a JSON object", NULL, NULL);
	refused("{\"__metadata__\":null}", 0, "__metadata__ is not a JSON object", NULL, NULL);
	refused("{\"__metadata__\":{\"n\":1}}", 0, "__metadata__ key 'n' is not a string", NULL,
	        NULL);
}

/* ---- tensor entries ----------------------------------------------------- */

static void test_safetensors__refuses_bad_entry_fields(void **state)
{
	(void)state;
	refused("{\"w\":[]}", 0, "tensor 'w'", "not a JSON object", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1,
	        "tensor 'w'", "unknown field 'x'", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, "tensor 'w'",
	        "missing field 'shape'", NULL);
	refused("{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "tensor 'w'",
	        "missing field 'dtype'", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, "tensor 'w'",
	        "missing field 'data_offsets'", NULL);
}

static void test_safetensors__refuses_unknown_dtype(void **state)
{
	(void)state;
	refused("{\"w\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "tensor 'w'",
	        "unknown dtype 'F12'", NULL);
	refused("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'",
	        "unknown dtype 'f32'", NULL);
	refused("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'",
	        "dtype is not a string", NULL);
}

static void test_safetensors__refuses_bad_shape(void **state)
{
	(void)state;
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
	        1, "tensor 'w'", "9 dimensions", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[2,-1],\"data_offsets\":[0,1]}}", 1,
	        "tensor 'w'", "shape[1] is negative", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", 1,
	        "tensor 'w'", "shape[0] is not an integer", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":3,\"data_offsets\":[0,3]}}", 3, "tensor 'w'",
	        "shape is not an array", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
	        "\"data_offsets\":[0,1]}}",
	        1, "tensor 'w'", "shape product overflows", NULL);
	refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
	        "\"data_offsets\":[0,1]}}",
	        1, "tensor 'w'", "shape x dtype size overflows", NULL);
}

static void test_safetensors__refuses_bad_offsets(void **state)
{
	(void)state;
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,1]}}", 2, "tensor 'w'",
	        "begin 2 is after end 1", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, "tensor 'w'",
	        "data_offsets is not [begin, end]", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1, "tensor 'w'",
	        "data_offsets is not [begin, end]", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,\"1\"]}}", 1,
	        "tensor 'w'", "data_offsets is not [begin, end]", NULL);
	refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}"
	        "}",
	        1, "not JSON", NULL, NULL);
}

static void test_safetensors__refuses_size_mismatch(void **state)
{
	(void)state;
	refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
	        "tensor 'w'", "shape x dtype does not match data_offsets", "= 24 bytes");
	refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
	        "span 20 bytes", NULL, NULL);
	/* A scalar is one element, not zero. */
	refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}}", 0, "tensor 'w'",
	        "does not match", NULL);
}

/* ---- tiling -------------------------------------------------------------- */

static void test_safetensors__refuses_gap(void **state)
{
	(void)state;
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
	        12, "gap of 4 bytes between tensor 'a'", "tensor 'b'", NULL);
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
	        "gap of 4 bytes at the start", "tensor 'a'", NULL);
}

static void test_safetensors__refuses_overlap(void **state)
{
	(void)state;
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	        8, "overlap between tensor 'a'", "tensor 'b'", NULL);
	/* The same bytes claimed twice. */
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	        "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	        4, "overlap between tensor 'a'", "tensor 'b'", NULL);
	/* A zero-size tensor inside another. */
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
	        8, "overlap between tensor 'a'", "tensor 'z'", NULL);
}

static void test_safetensors__refuses_trailing_data(void **state)
{
	(void)state;
	refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 28,
	        "4 bytes after the last tensor 'w'", NULL, NULL);
	refused("{}", 1, "1 bytes after the header", NULL, NULL);
	refused("{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 4,
	        "4 bytes after the last tensor 'z'", NULL, NULL);
}

static void test_safetensors__refuses_offsets_past_end(void **state)
{
	(void)state;
	refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 20,
	        "tensor 'w'", "past end of file", "data section is 20 bytes");
	refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	        "\"b\":{\"dtype\":\"F64\",\"shape\":[1000000000000000],"
	        "\"data_offsets\":[4,8000000000000004]}}",
	        4, "tensor 'b'", "past end of file", NULL);
}

/* ---- names ---------------------------------------------------------------- */

static void test_safetensors__refuses_bad_names(void **state)
{
	char *json, *name;
	size_t n;

	(void)state;
	refused("{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
	        "empty tensor name", NULL, NULL);

	/* 4096 bytes is the longest name allowed, 4097 is refused. */
	name = malloc(4098);
	json = malloc(4200);
	assert_non_null(name);
	assert_non_null(json);
	for (n = 4096; n <= 4097; n++) {
		memset(name, 'n', n);
		name[n] = '\0';
		snprintf(json, 4200,
		         "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
		if (n == 4096) {
			sluice_st_header h;
			parse_ok(&h, json, 1);
			assert_int_equal(strlen(h.tensors[0].name), 4096);
			sluice_safetensors__dispose(&h);
		} else {
			refused(json, 1, "name is 4097 bytes", "...", NULL);
			/* Long names are cut in messages. */
			assert_true(strlen(sluice_ctx_errmsg(ctx)) < 400);
		}
	}
	free(name);
	free(json);
}

static void test_safetensors__escapes_control_chars_in_messages(void **state)
{
	(void)state;
	refused("{\"a\\u001b[31m\\nb\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
	        "tensor 'a\\x1b[31m\\x0ab'", NULL, NULL);
	assert_null(strchr(sluice_ctx_errmsg(ctx), '\n'));
	assert_null(strchr(sluice_ctx_errmsg(ctx), 0x1b));
}

/* ---- reading from a file -------------------------------------------------- */

struct fail_nth {
	int n;     /* fail the n-th allocation (1-based); 0 = never */
	int count; /* allocations seen */
};

static int fail_nth_alloc(void *data, sluice_fault_op op, const char *what)
{
	struct fail_nth *f = data;

	(void)what;
	if (op != SLUICE_FAULT_ALLOC)
		return 0;
	return ++f->count == f->n;
}

static int open_file(const char *dir, const char *base, const unsigned char *buf, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, base);
	tu_write(path, buf, len);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

static void test_safetensors__reads_from_file(void **state)
{
	char *dir = tu_mkdtemp("st");
	sluice_st_header h;
	size_t len;
	unsigned char *buf;
	int fd;

	(void)state;
	buf = mk(&len, "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}  ", 8);
	fd = open_file(dir, "ok.safetensors", buf, len);
	assert_int_equal(sluice_safetensors__read(ctx, &h, fd, len, "ok.safetensors"), 0);
	assert_int_equal(h.ntensors, 1);
	assert_int_equal(h.tensors[0].dtype, SLUICE_DT_F16);
	assert_int_equal(h.data_start, len - 8);
	sluice_safetensors__dispose(&h);

	close(fd);

	/* A file that shrank since its size was taken: the header read comes up short. */
	sluice__st64(buf, 1000);
	fd = open_file(dir, "shrunk", buf, len);
	sluice_ctx_clear_error(ctx);
	assert_int_equal(sluice_safetensors__read(ctx, &h, fd, 2000, "shrunk"), SLUICE_ECORRUPT);
	assert_msg_has("shrunk");
	assert_null(h.tensors);
	close(fd);
	free(buf);

	fd = open_file(dir, "short", (const unsigned char *)"abc", 3);
	sluice_ctx_clear_error(ctx);
	assert_int_equal(sluice_safetensors__read(ctx, &h, fd, 3, "short"), SLUICE_EINVALID);
	assert_msg_has("shorter than 8 bytes");
	close(fd);
	tu_rmtree(dir);
	free(dir);
}

static void test_safetensors__read_checks_length_before_allocating(void **state)
{
	char *dir = tu_mkdtemp("st");
	struct fail_nth f = {1, 0};
	sluice_st_header h;
	size_t len;
	unsigned char *buf;
	int fd;

	(void)state;
	buf = mk(&len, "{}", 0);
	sluice__st64(buf, 150000000);
	fd = open_file(dir, "huge", buf, len);
	/* Every allocation fails: a refusal by limit proves none was tried. */
	sluice_ctx_set_fault_hook(ctx, fail_nth_alloc, &f);
	sluice_ctx_clear_error(ctx);
	assert_int_equal(sluice_safetensors__read(ctx, &h, fd, 200000000, "huge"), SLUICE_EINVALID);
	assert_msg_has("exceeds 100 MB limit");
	assert_int_equal(f.count, 0);
	close(fd);
	sluice__st64(buf, 1000);
	fd = open_file(dir, "past", buf, len);
	assert_int_equal(sluice_safetensors__read(ctx, &h, fd, len, "past"), SLUICE_EINVALID);
	assert_msg_has("runs past end of file");
	assert_int_equal(f.count, 0);
	sluice_ctx_set_fault_hook(ctx, NULL, NULL);
	close(fd);
	free(buf);
	tu_rmtree(dir);
	free(dir);
}

static void test_safetensors__allocation_failures_are_clean(void **state)
{
	sluice_st_header h;
	struct fail_nth f;
	size_t len;
	unsigned char *buf;
	int n, error;

	(void)state;
	buf = mk(&len,
	         "{\"__metadata__\":{\"k\":\"v\"},"
	         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	         8);
	/* Fail each allocation in turn until the parse no longer allocates past it. */
	for (n = 1;; n++) {
		f.n = n;
		f.count = 0;
		sluice_ctx_set_fault_hook(ctx, fail_nth_alloc, &f);
		error = parse_buf(&h, buf, len);
		sluice_ctx_set_fault_hook(ctx, NULL, NULL);
		if (f.count < n) {
			assert_int_equal(error, 0);
			break;
		}
		assert_int_equal(error, SLUICE_ENOMEM);
		assert_null(h.tensors);
		assert_null(h.metadata);
	}
	assert_true(n > 3);
	assert_int_equal(h.ntensors, 2);
	assert_string_equal(h.metadata, "{\"k\":\"v\"}");
	sluice_safetensors__dispose(&h);
	free(buf);
}

/* ---- pickle recognition ---------------------------------------------------- */

/* The writer's header parses back to the same tensors, 8-aligned, and refuses repeats. */
static void test_safetensors__header_round_trip(void **state)
{
	static const char *const meta[] = {"format", "pt"};
	sluice_st_spec t[3] = {{"b.weight", SLUICE_DT_F32, 2, {3, 5}},
	                       {"a.weight", SLUICE_DT_BF16, 1, {7}},
	                       {"c", SLUICE_DT_I64, 0, {0}}};
	sluice_buf b = {0};
	sluice_st_header h;
	uint64_t data_len;
	(void)state;

	assert_int_equal(sluice_safetensors__header(ctx, &b, &data_len, t, 3, meta, 1), 0);
	assert_int_equal(data_len, 3 * 5 * 4 + 7 * 2 + 8);
	assert_int_equal(b.len % 8, 0);
	assert_int_equal(sluice__le64(b.ptr), b.len - 8);
	assert_int_equal(
	        memcmp(b.ptr + 8, "{\"__metadata__\":{\"format\":\"pt\"},\"b.weight\"", 42), 0);
	assert_int_equal(sluice_buf__grow(ctx, &b, (size_t)data_len), 0);
	memset(b.ptr + b.len, 0, (size_t)data_len);
	assert_int_equal(sluice_safetensors__parse(ctx, &h, b.ptr, b.len, b.len + data_len, "w"),
	                 0);
	assert_int_equal(h.ntensors, 3);
	/* file order is the given order */
	assert_string_equal(h.tensors[0].name, "b.weight");
	assert_int_equal(h.tensors[0].shape[1], 5);
	assert_int_equal(h.tensors[1].begin, 60);
	assert_int_equal(h.tensors[1].dtype, SLUICE_DT_BF16);
	assert_int_equal(h.tensors[2].ndim, 0);
	assert_int_equal(h.tensors[2].end, data_len);
	assert_string_equal(h.metadata, "{\"format\":\"pt\"}");
	sluice_safetensors__dispose(&h);
	b.len = 0;
	t[2].name = "b.weight";
	assert_int_equal(sluice_safetensors__header(ctx, &b, &data_len, t, 3, NULL, 0),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "b.weight"));
	sluice_buf__dispose(&b);
}

static void test_safetensors__sniffs_pickle(void **state)
{
	/* torch.save(..., _use_new_zipfile_serialization=False) and pickle.dumps(protocol=4). */
	static const unsigned char p4[] = {0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, '}'};
	static const unsigned char p2[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46};
	static const unsigned char p1[] = {0x80, 0x01, '}', '.'};
	static const unsigned char p0[] = {'(', 'd', 'p', '0', '\n', '.'};

	(void)state;
	assert_int_equal(sluice_safetensors__sniff_pickle(p4, sizeof(p4)), SLUICE_SNIFF_PICKLE);
	assert_int_equal(sluice_safetensors__sniff_pickle(p2, sizeof(p2)), SLUICE_SNIFF_PICKLE);
	assert_int_equal(sluice_safetensors__sniff_pickle(p4, 2), SLUICE_SNIFF_PICKLE);
	assert_int_equal(sluice_safetensors__sniff_pickle(p4, 1), SLUICE_SNIFF_NONE);
	assert_int_equal(sluice_safetensors__sniff_pickle(p1, sizeof(p1)), SLUICE_SNIFF_NONE);
	assert_int_equal(sluice_safetensors__sniff_pickle(p0, sizeof(p0)), SLUICE_SNIFF_NONE);
	assert_int_equal(sluice_safetensors__sniff_pickle(p0, 0), SLUICE_SNIFF_NONE);
}

/* A zip local file header for an entry named name, followed by tail. */
static unsigned char *mk_zip(size_t *len, const char *name, const char *tail)
{
	size_t nlen = strlen(name), tlen = strlen(tail);
	unsigned char *z = calloc(1, 30 + nlen + tlen);

	assert_non_null(z);
	memcpy(z, "PK\x03\x04", 4);
	z[4] = 20;                           /* version needed */
	z[18] = z[22] = (unsigned char)tlen; /* sizes */
	z[26] = (unsigned char)nlen;
	z[27] = (unsigned char)(nlen >> 8);
	memcpy(z + 30, name, nlen);
	memcpy(z + 30 + nlen, tail, tlen);
	*len = 30 + nlen + tlen;
	return z;
}

static void test_safetensors__sniffs_torch_zip(void **state)
{
	unsigned char *z;
	size_t len;

	(void)state;
	z = mk_zip(&len, "archive/data.pkl", "\x80\x02}q\x00.");
	assert_int_equal(sluice_safetensors__sniff_pickle(z, len), SLUICE_SNIFF_TORCH_ZIP);
	/* Cut inside the name: the name check must not read past len. */
	assert_int_equal(sluice_safetensors__sniff_pickle(z, 40), SLUICE_SNIFF_NONE);
	free(z);

	/* Pickle named only later, as in the central directory. */
	z = mk_zip(&len, "archive/version", "3\nPK\x01\x02....archive/data.pkl");
	assert_int_equal(sluice_safetensors__sniff_pickle(z, len), SLUICE_SNIFF_TORCH_ZIP);
	free(z);

	/* A zip with no pickle in it is just a zip. */
	z = mk_zip(&len, "readme.txt", "hello");
	assert_int_equal(sluice_safetensors__sniff_pickle(z, len), SLUICE_SNIFF_NONE);
	free(z);
}

static void test_safetensors__sniff_ignores_safetensors(void **state)
{
	sluice_st_header h;
	static const char entry[] =
	        "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
	char json[0x42];
	size_t len;
	unsigned char *buf;

	(void)state;
	/* N = 0x41: the file begins with the printable byte 'A'. */
	memset(json, ' ', 0x41);
	memcpy(json, entry, strlen(entry));
	json[0x41] = '\0';
	buf = mk(&len, json, 1);
	assert_int_equal(buf[0], 'A');
	assert_int_equal(parse_buf(&h, buf, len), 0);
	sluice_safetensors__dispose(&h);
	assert_int_equal(sluice_safetensors__sniff_pickle(buf, len), SLUICE_SNIFF_NONE);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_safetensors__parses_f32),
	        cmocka_unit_test(test_safetensors__header_round_trip),
	        cmocka_unit_test(test_safetensors__parses_multi_tensor_in_offset_order),
	        cmocka_unit_test(test_safetensors__zero_size_tensors_sort_stably),
	        cmocka_unit_test(test_safetensors__empty_header_is_valid),
	        cmocka_unit_test(test_safetensors__metadata_kept_compact_sorted),
	        cmocka_unit_test(test_safetensors__space_padding_accepted),
	        cmocka_unit_test(test_safetensors__acceptance_ignores_first_bytes),
	        cmocka_unit_test(test_safetensors__all_dtypes_sizes_and_names),
	        cmocka_unit_test(test_safetensors__refuses_short_file),
	        cmocka_unit_test(test_safetensors__refuses_header_past_end),
	        cmocka_unit_test(test_safetensors__refuses_header_over_limit),
	        cmocka_unit_test(test_safetensors__refuses_tiny_header_length),
	        cmocka_unit_test(test_safetensors__refuses_non_utf8),
	        cmocka_unit_test(test_safetensors__refuses_non_json),
	        cmocka_unit_test(test_safetensors__refuses_non_object),
	        cmocka_unit_test(test_safetensors__refuses_trailing_bytes),
	        cmocka_unit_test(test_safetensors__refuses_duplicate_tensor_name),
	        cmocka_unit_test(test_safetensors__refuses_bad_metadata),
	        cmocka_unit_test(test_safetensors__refuses_bad_entry_fields),
	        cmocka_unit_test(test_safetensors__refuses_unknown_dtype),
	        cmocka_unit_test(test_safetensors__refuses_bad_shape),
	        cmocka_unit_test(test_safetensors__refuses_bad_offsets),
	        cmocka_unit_test(test_safetensors__refuses_size_mismatch),
	        cmocka_unit_test(test_safetensors__refuses_gap),
	        cmocka_unit_test(test_safetensors__refuses_overlap),
	        cmocka_unit_test(test_safetensors__refuses_trailing_data),
	        cmocka_unit_test(test_safetensors__refuses_offsets_past_end),
	        cmocka_unit_test(test_safetensors__refuses_bad_names),
	        cmocka_unit_test(test_safetensors__escapes_control_chars_in_messages),
	        cmocka_unit_test(test_safetensors__reads_from_file),
	        cmocka_unit_test(test_safetensors__read_checks_length_before_allocating),
	        cmocka_unit_test(test_safetensors__allocation_failures_are_clean),
	        cmocka_unit_test(test_safetensors__sniffs_pickle),
	        cmocka_unit_test(test_safetensors__sniffs_torch_zip),
	        cmocka_unit_test(test_safetensors__sniff_ignores_safetensors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
