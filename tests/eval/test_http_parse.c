/*
 * tests/eval/test_http_parse.c - the parser of a /v1/completions answer
 * (sluice_http__parse_completion): what it takes from a vLLM-shaped
 * answer, and each refusal with the field it names.
 */
#include "testutil.h"

#include "http.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sluice_ctx *ctx;

static int parse(double **out, const char *body, size_t m, int k)
{
	return sluice_http__parse_completion(ctx, out, body, strlen(body), m, k, "request 1 of 1");
}

static void refused(const char *body, size_t m, int k, const char *needle)
{
	double *out = NULL;
	int rc = parse(&out, body, m, k);

	if (rc != SLUICE_EINVALID || !strstr(sluice_ctx_errmsg(ctx), needle))
		fprintf(stderr, "rc %d, message: %s\n(wanted: %s)\n", rc, sluice_ctx_errmsg(ctx),
		        needle);
	assert_int_equal(rc, SLUICE_EINVALID);
	assert_null(out);
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), "request 1 of 1"));
	assert_non_null(strstr(sluice_ctx_errmsg(ctx), needle));
}

static void test_http_parse__vllm_answer(void **state)
{
	double *out = NULL;
	(void)state;

	assert_int_equal(parse(&out,
	                       "{\"choices\":[{\"index\":0,\"text\":\"a b c\",\"logprobs\":{"
	                       "\"text_offset\":[0,1,3],\"token_logprobs\":[null,-1.5,-0.25],"
	                       "\"tokens\":[\"a\",\" b\",\" c\"],\"top_logprobs\":[null,{\" b\":"
	                       "-1.5,\"x\":-0.5},{\" c\":-0.25}]}}],\"usage\":{\"prompt_tokens\":3,"
	                       "\"completion_tokens\":0}}",
	                       3, 0),
	                 0);
	assert_true(isnan(out[0]));
	assert_true(out[1] == -1.5 && out[2] == -0.25);
	free(out);
	/* max_tokens 1: the generated token at the end is ignored. */
	assert_int_equal(parse(&out,
	                       "{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1,-7],"
	                       "\"tokens\":[\"a\",\"b\",\"z\"]}}]}",
	                       2, 1),
	                 0);
	assert_true(out[1] == -1);
	free(out);
}

static void test_http_parse__refusals_name_the_field(void **state)
{
	(void)state;
	refused("{\"choices\":[{\"index\":0,\"text\":\"", 2, 0, "not valid JSON");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,NaN],\"tokens\":[\"a\","
	        "\"b\"]}}]}",
	        2, 0, "non-finite number");
	refused("[]", 2, 0, "not a JSON object");
	refused("{}", 2, 0, "no field \"choices\"");
	refused("{\"choices\":[]}", 2, 0, "array of one choice");
	refused("{\"choices\":[{}]}", 2, 0, "no field \"logprobs\"");
	refused("{\"choices\":[{\"logprobs\":null}]}", 2, 0, "returned no log-probabilities");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1]}}]}", 2, 0,
	        "no field \"tokens\"");
	refused("{\"choices\":[{\"logprobs\":{\"tokens\":[\"a\",\"b\"]}}]}", 2, 0,
	        "no field \"token_logprobs\"");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1,-2],\"tokens\":[\"a\","
	        "\"b\",\"c\"]}}]}",
	        4, 0, "the server returned 3 prompt tokens for a prompt of 4");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1,-2],\"tokens\":[\"a\","
	        "\"b\",\"c\"]}}]}",
	        2, 0, "the server returned 3 prompt tokens for a prompt of 2");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1],\"tokens\":[\"a\",\"b\"]"
	        "}}],\"usage\":{\"prompt_tokens\":5}}",
	        2, 0, "usage.prompt_tokens");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,\"-1\"],\"tokens\":[\"a\","
	        "\"b\"]}}]}",
	        2, 0, "token_logprobs[1] is not a number");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,null],\"tokens\":[\"a\","
	        "\"b\"]}}]}",
	        2, 0, "token_logprobs[1] is null");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,0.5],\"tokens\":[\"a\","
	        "\"b\"]}}]}",
	        2, 0, "is not a log-probability");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1],\"tokens\":[\"a\",2]}}]"
	        "}",
	        2, 0, "tokens[1] is not a string");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1],\"tokens\":[\"a\","
	        "\"b\"],\"top_logprobs\":[null,{\"b\":\"x\"}]}}]}",
	        2, 0, "top_logprobs[1]");
	refused("{\"choices\":[{\"logprobs\":{\"token_logprobs\":[null,-1],\"tokens\":[\"a\","
	        "\"b\"]}}],\"choices\":[]}",
	        2, 0, "duplicate");
}

static int setup(void **state)
{
	(void)state;
	return sluice_ctx_new(&ctx);
}

static int teardown(void **state)
{
	(void)state;
	sluice_ctx_free(ctx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_http_parse__vllm_answer),
	        cmocka_unit_test(test_http_parse__refusals_name_the_field),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
