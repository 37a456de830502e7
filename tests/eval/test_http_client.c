/*
 * tests/eval/test_http_client.c - the http backend's client (eval/http.h)
 * against a small scripted HTTP server in this process, for what
 * sluice-testserver does not do: a server that refuses max_tokens 0 (the
 * client asks for 1 from then on and ignores the generated token), a 429
 * with Retry-After (honoured instead of the shorter backoff), a server
 * version reported only at /props (llama-server's build_info), and an
 * adapter that is already loaded.
 */
#include "testutil.h"

#include "http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The script, read and written under lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd = -1, port;
static int refused_zero;    /* completions refused for max_tokens 0 */
static int completions;     /* completions answered 200 */
static int retry_after_429; /* completions still to answer 429 with Retry-After: 1 */

static void reply(int fd, int status, const char *extra_headers, const char *body)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
	                 "%zu\r\nConnection: close\r\n%s\r\n",
	                 status, strlen(body), extra_headers);

	assert_true(write(fd, head, (size_t)n) == n);
	assert_true(write(fd, body, strlen(body)) == (ssize_t)strlen(body));
}

/* A vLLM-shaped answer echoing a prompt of n ids, plus `gen` generated tokens. */
static char *completion(size_t n, int gen)
{
	json_t *tl = json_array(), *toks = json_array(), *v;
	char *s;

	for (size_t i = 0; i < n + (size_t)gen; i++) {
		json_array_append_new(tl, i == 0 ? json_null() : json_real(i < n ? -0.5 : -0.125));
		json_array_append_new(toks, json_string("t"));
	}
	v = json_pack("{s:[{s:i,s:s,s:{s:o,s:o}}],s:{s:I}}", "choices", "index", 0, "text", "",
	              "logprobs", "token_logprobs", tl, "tokens", toks, "usage", "prompt_tokens",
	              (json_int_t)n);
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return s;
}

static void serve_one(int fd)
{
	char buf[65536], method[8] = "", path[128] = "";
	size_t len = 0, clen = 0;
	char *body, *cl;

	for (;;) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return;
		len += (size_t)r;
		buf[len] = '\0';
		if ((body = strstr(buf, "\r\n\r\n"))) {
			body += 4;
			cl = strstr(buf, "Content-Length:");
			clen = cl ? (size_t)atol(cl + 15) : 0;
			if ((size_t)(buf + len - body) >= clen)
				break;
		}
	}
	sscanf(buf, "%7s %127s", method, path);
	if (!strcmp(path, "/v1/models")) {
		reply(fd, 200, "",
		      "{\"object\":\"list\",\"data\":[{\"id\":\"fake\",\"owned_by\":\"x\"}]}");
	} else if (!strcmp(path, "/version")) {
		reply(fd, 404, "", "{\"detail\":\"Not Found\"}");
	} else if (!strcmp(path, "/props")) {
		reply(fd, 200, "", "{\"build_info\":\"b1234-abc\",\"total_slots\":1}");
	} else if (!strcmp(path, "/v1/load_lora_adapter")) {
		reply(fd, 400, "",
		      "{\"object\":\"error\",\"message\":\"The lora adapter 'a' has already been "
		      "loaded.\",\"type\":\"InvalidUserInput\",\"code\":400}");
	} else if (!strcmp(path, "/v1/completions")) {
		json_t *req = json_loadb(body, clen, 0, NULL);
		json_int_t mt = json_integer_value(json_object_get(req, "max_tokens"));
		size_t n = json_array_size(json_object_get(req, "prompt"));
		int late;
		pthread_mutex_lock(&lock);
		late = retry_after_429 > 0 ? retry_after_429-- : 0;
		if (!late && mt == 0)
			refused_zero++;
		else if (!late)
			completions++;
		pthread_mutex_unlock(&lock);
		if (late) {
			reply(fd, 429, "Retry-After: 1\r\n", "{\"message\":\"slow down\"}");
		} else if (mt == 0) {
			reply(fd, 400, "",
			      "{\"object\":\"error\",\"message\":\"max_tokens must be at least 1, "
			      "got "
			      "0.\",\"type\":\"BadRequestError\",\"code\":400}");
		} else {
			char *s = completion(n, 1);
			reply(fd, 200, "", s);
			free(s);
		}
		json_decref(req);
	} else {
		reply(fd, 404, "", "{\"detail\":\"Not Found\"}");
	}
}

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		serve_one(fd);
		close(fd);
	}
}

static sluice_ctx *ctx;
static sluice_http *h;

static int setup(void **state)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	pthread_t t;
	sluice_http_config cfg = {0};
	char url[64];
	(void)state;

	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(listen_fd, 16) < 0 || getsockname(listen_fd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	port = ntohs(a.sin_port);
	if (pthread_create(&t, NULL, serve, NULL) != 0)
		return -1;
	pthread_detach(t);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	cfg.url = url;
	cfg.model = "fake";
	cfg.concurrency = 1;
	cfg.timeout = 10;
	cfg.retries = 3;
	cfg.top_logprobs = 5;
	cfg.adapter_dir = "/nonexistent";
	if (sluice_ctx_new(&ctx) < 0 || sluice_http__open(ctx, &h, &cfg) < 0) {
		fprintf(stderr, "%s\n", ctx ? sluice_ctx_errmsg(ctx) : "");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sluice_http__free(h);
	sluice_ctx_free(ctx);
	return 0;
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_http_client__version_from_props(void **state)
{
	(void)state;
	assert_string_equal(sluice_http__server_version(h), "build_info b1234-abc");
}

static void test_http_client__max_tokens_one_when_zero_is_refused(void **state)
{
	static const int32_t p0[] = {1, 2}, p1[] = {1, 2, 3}, p2[] = {1, 2, 3, 4};
	const int32_t *prompts[] = {p0, p1, p2};
	size_t lens[] = {2, 3, 4};
	double *out[3];
	(void)state;

	assert_int_equal(sluice_http__score(h, "fake", 3, prompts, lens, out), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_true(isnan(out[i][0]));
		/* The prompt's values; the generated token's -0.125 is not among them. */
		for (size_t t = 1; t < lens[i]; t++)
			assert_true(out[i][t] == -0.5);
		free(out[i]);
	}
	pthread_mutex_lock(&lock);
	/* Refused once, then remembered: every later request asked for 1. */
	assert_int_equal(refused_zero, 1);
	assert_int_equal(completions, 3);
	pthread_mutex_unlock(&lock);
	assert_int_equal(sluice_http__requests(h), 4);
}

static void test_http_client__retry_after_is_honoured(void **state)
{
	static const int32_t p0[] = {5, 6, 7};
	const int32_t *prompts[] = {p0};
	size_t lens[] = {3};
	double *out[1], t0, took;
	(void)state;

	pthread_mutex_lock(&lock);
	retry_after_429 = 1;
	pthread_mutex_unlock(&lock);
	t0 = seconds();
	assert_int_equal(sluice_http__score(h, "fake", 1, prompts, lens, out), 0);
	took = seconds() - t0;
	free(out[0]);
	/* Retry-After: 1 instead of the first backoff's 0.2 s. */
	assert_true(took >= 0.95);
	assert_true(took < 5);
}

static void test_http_client__already_loaded_adapter_is_fine(void **state)
{
	(void)state;
	assert_int_equal(sluice_http__load_lora(h, "a", "/srv/a"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_http_client__version_from_props),
	        cmocka_unit_test(test_http_client__max_tokens_one_when_zero_is_refused),
	        cmocka_unit_test(test_http_client__retry_after_is_honoured),
	        cmocka_unit_test(test_http_client__already_loaded_adapter_is_fine),
	};
	if (sluice_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
