/*
 * eval/http.c - the HTTP evaluation backend's client (eval/http.h): the
 * settings, the server's identity, loading adapters, scoring prompts
 * through /v1/completions with libcurl's multi interface, and the parser
 * of a completion's answer.
 */
#include "curl.h"
#include "http.h"
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Bodies larger than this are refused: 2,048 positions of top-1000 lists fit well inside. */
#define HTTP_MAX_BODY ((size_t)512 << 20)
/* The first retry waits this long; each further one twice as long. */
#define HTTP_BACKOFF_S 0.2
/* A Retry-After longer than this is capped: a gate must end. */
#define HTTP_MAX_WAIT_S 300.0

struct sluice_http {
	sluice_ctx *ctx;
	sluice_http_config cfg;
	char version[160];
	int max_tokens; /* 0, or 1 once the server refused 0 */
	uint64_t requests;
	struct curl_slist *headers;
};

/* ---- settings ----------------------------------------------------------------- */

void sluice_http__config_dispose(sluice_http_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->url);
	free(cfg->model);
	free(cfg->adapter_dir);
	memset(cfg, 0, sizeof(*cfg));
}

int sluice_http__config_load(sluice_repo *repo, sluice_http_config *out)
{
	sluice_ctx *ctx = repo->ctx;
	char dflt[PATH_MAX], *dir = NULL;
	int error;

	memset(out, 0, sizeof(*out));
	snprintf(dflt, sizeof(dflt), "%s/cache/served", repo->sdir);
	if ((error = sluice_config__get_string(repo, &out->url, "sluice.http.url", NULL)) < 0 ||
	    (error = sluice_config__get_string(repo, &out->model, "sluice.http.model", NULL)) < 0 ||
	    (error = sluice_config__get_int(repo, &out->concurrency, "sluice.http.concurrency", 4,
	                                    1, SLUICE_HTTP_CONCURRENCY_MAX)) < 0 ||
	    (error = sluice_config__get_int(repo, &out->timeout, "sluice.http.timeout", 60, 1,
	                                    86400)) < 0 ||
	    (error = sluice_config__get_int(repo, &out->retries, "sluice.http.retries", 3, 0, 20)) <
	            0 ||
	    (error = sluice_config__get_int(repo, &out->top_logprobs, "sluice.http.topLogprobs", 20,
	                                    1, 1000)) < 0 ||
	    (error = sluice_config__get_string(repo, &dir, "sluice.http.adapterDir", dflt)) < 0)
		goto fail;
	if (!out->url || (strncmp(out->url, "http://", 7) && strncmp(out->url, "https://", 8))) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "the http backend needs sluice.http.url, the server's "
		                          "http:// or https:// base URL (sluice config "
		                          "sluice.http.url URL)");
		goto fail;
	}
	if (!out->model || !*out->model) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "the http backend needs sluice.http.model, the base "
		                          "model's name on the server (sluice config "
		                          "sluice.http.model NAME)");
		goto fail;
	}
	/* "http://h:1/" and "http://h:1" name the same server. */
	while (strlen(out->url) > 8 && out->url[strlen(out->url) - 1] == '/')
		out->url[strlen(out->url) - 1] = '\0';
	/* The server loads adapters by path: make it absolute. */
	if ((error = sluice_io__mkdirs(ctx, dir, 0755)) < 0)
		goto fail;
	if (!(out->adapter_dir = realpath(dir, NULL))) {
		error = sluice_ctx__oserror(ctx, "sluice.http.adapterDir %s", dir);
		goto fail;
	}
	free(dir);
	return SLUICE_OK;
fail:
	free(dir);
	sluice_http__config_dispose(out);
	return error;
}

/* ---- small helpers ----------------------------------------------------------- */

struct body {
	sluice_buf buf; /* NUL-terminated as it grows, for the parser */
	sluice_ctx *ctx;
	int too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
	struct body *b = data;
	size_t len = size * n;

	if (b->buf.len + len > HTTP_MAX_BODY) {
		b->too_big = 1;
		return 0;
	}
	/* A failure returns short, which stops the transfer with a write error. */
	if (sluice_buf__put(b->ctx, &b->buf, p, len) < 0 || sluice_buf__cstr(b->ctx, &b->buf) < 0)
		return 0;
	return len;
}

/* Transport failures worth another attempt: the server may come back. */
static int retryable_code(CURLcode c)
{
	return c == CURLE_COULDNT_CONNECT || c == CURLE_SEND_ERROR || c == CURLE_RECV_ERROR ||
	       c == CURLE_GOT_NOTHING || c == CURLE_OPERATION_TIMEDOUT || c == CURLE_PARTIAL_FILE;
}

static int retryable_status(long status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

/*
 * The message of an error answer: vLLM's {"message"}, llama.cpp's and
 * OpenAI's {"error": {"message"}}, FastAPI's {"detail"}; else the start of
 * the body with control bytes replaced.
 */
static void error_message(char *out, size_t cap, const sluice_buf *body)
{
	json_error_t jerr;
	json_t *v = body->len ? json_loadb((const char *)body->ptr, body->len, 0, &jerr) : NULL;
	const char *m = NULL;
	size_t i, n;

	if (v) {
		m = json_string_value(json_object_get(v, "message"));
		if (!m)
			m = json_string_value(
			        json_object_get(json_object_get(v, "error"), "message"));
		if (!m)
			m = json_string_value(json_object_get(v, "error"));
		if (!m)
			m = json_string_value(json_object_get(v, "detail"));
	}
	if (m) {
		snprintf(out, cap, "%s", m);
	} else {
		n = body->len < 200 ? body->len : 200;
		for (i = 0; i < n && i + 1 < cap; i++)
			out[i] = body->ptr[i] >= 0x20 && body->ptr[i] < 0x7f ? (char)body->ptr[i]
			                                                     : '?';
		out[i] = '\0';
		if (!n)
			snprintf(out, cap, "(empty body)");
	}
	json_decref(v);
}

/* llama.cpp's server refuses echo ("Only no echo is supported"); any refusal naming echo. */
static int refuses_echo(const char *msg)
{
	for (const char *p = msg; *p; p++)
		if (!strncasecmp(p, "echo", 4))
			return 1;
	return 0;
}

static int cannot_score(sluice_http *h, long status, const char *msg)
{
	return sluice_ctx__error(h->ctx, SLUICE_EINVALID,
	                         "the server at %s cannot score prompts: it refuses echo on "
	                         "/v1/completions (HTTP %ld: %s), so it returns no "
	                         "log-probabilities of the prompt's tokens. llama.cpp's server "
	                         "answers this way; score with vLLM or with --backend builtin",
	                         h->cfg.url, status, msg);
}

static CURL *new_easy(sluice_http *h, const char *url, const char *post, struct body *b,
                      char *errbuf)
{
	CURL *e = curl_easy_init();

	b->ctx = h->ctx;
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->cfg.timeout * 1000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION_STRING);
	/* No proxy from the environment: the server is the configured URL. */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	if (post) {
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
	}
	errbuf[0] = '\0';
	return e;
}

/* The wait before retry attempt: the shared backoff, or longer when the server said so. */
static double backoff(unsigned attempt, curl_off_t retry_after)
{
	double d = sluice__backoff_s(HTTP_BACKOFF_S, attempt, HTTP_MAX_WAIT_S);

	if (retry_after > 0 && (double)retry_after > d)
		d = (double)retry_after;
	return d < HTTP_MAX_WAIT_S ? d : HTTP_MAX_WAIT_S;
}

/*
 * One request, synchronously, with the retry policy: *status and the body
 * of the final answer (any status); SLUICE_EIO when no answer came.
 */
static int request(sluice_http *h, const char *path, const char *post, long *status,
                   sluice_buf *out)
{
	char url[4096], errbuf[CURL_ERROR_SIZE];
	unsigned attempt;
	int error = SLUICE_OK;

	snprintf(url, sizeof(url), "%s%s", h->cfg.url, path);
	for (attempt = 0;; attempt++) {
		struct body b = {{0}, NULL, 0};
		curl_off_t ra = 0;
		CURLcode c;
		CURL *e = new_easy(h, url, post, &b, errbuf);

		if (!e)
			return sluice_ctx__error(
			        h->ctx, *sluice_curl__why() ? SLUICE_ERROR : SLUICE_ENOMEM,
			        "cannot start a request%s%s", *sluice_curl__why() ? ": " : "",
			        sluice_curl__why());
		c = curl_easy_perform(e);
		*status = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
		curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra);
		curl_easy_cleanup(e);
		if (b.too_big) {
			sluice_buf__dispose(&b.buf);
			return sluice_ctx__error(h->ctx, SLUICE_EINVALID,
			                         "%s: the answer is larger than %zu MiB", url,
			                         HTTP_MAX_BODY >> 20);
		}
		if ((c != CURLE_OK && retryable_code(c)) ||
		    (c == CURLE_OK && retryable_status(*status))) {
			if (attempt < (unsigned)h->cfg.retries) {
				sluice_buf__dispose(&b.buf);
				sluice__sleep_s(backoff(attempt, ra));
				continue;
			}
		}
		if (c != CURLE_OK) {
			sluice_buf__dispose(&b.buf);
			return sluice_ctx__error(h->ctx, SLUICE_EIO, "%s: %s (after %u attempt%s)",
			                         url, *errbuf ? errbuf : curl_easy_strerror(c),
			                         attempt + 1, attempt ? "s" : "");
		}
		sluice_buf__dispose(out);
		*out = b.buf;
		if ((error = sluice_buf__cstr(h->ctx, out)) < 0)
			return error;
		return SLUICE_OK;
	}
}

/* ---- the server's identity ---------------------------------------------------- */

static int read_models(sluice_http *h, json_t **entry)
{
	sluice_buf body = {0};
	json_error_t jerr;
	json_t *v = NULL, *data, *m;
	sluice_buf names = {0};
	long status;
	size_t i;
	int error;

	*entry = NULL;
	if ((error = request(h, "/v1/models", NULL, &status, &body)) < 0)
		goto done;
	if (status != 200) {
		char msg[512];
		error_message(msg, sizeof(msg), &body);
		error = sluice_ctx__error(h->ctx, SLUICE_EINVALID,
		                          "%s/v1/models answered HTTP %ld: %s", h->cfg.url, status,
		                          msg);
		goto done;
	}
	if (!(v = json_loadb((const char *)body.ptr, body.len, 0, &jerr)) ||
	    !json_is_array(data = json_object_get(v, "data"))) {
		error = sluice_ctx__error(h->ctx, SLUICE_EINVALID, "%s/v1/models: %s", h->cfg.url,
		                          v ? "no \"data\" array in the answer"
		                            : "the answer is not JSON");
		goto done;
	}
	json_array_foreach(data, i, m)
	{
		const char *id = json_string_value(json_object_get(m, "id"));
		if (id && !strcmp(id, h->cfg.model)) {
			*entry = json_incref(m);
			goto done;
		}
		sluice_buf__printf(h->ctx, &names, "%s%s", names.len ? ", " : "",
		                   id ? id : "(no id)");
	}
	error = sluice_ctx__error(h->ctx, SLUICE_EINVALID,
	                          "the server at %s does not serve model %s (sluice.http.model); "
	                          "it serves: %s",
	                          h->cfg.url, h->cfg.model, names.len ? (char *)names.ptr : "none");
done:
	sluice_buf__dispose(&names);
	sluice_buf__dispose(&body);
	json_decref(v);
	return error;
}

/* A non-empty string field of a JSON body (parsed into *v, which the caller releases), or NULL. */
static const char *string_field(json_t **v, const sluice_buf *body, const char *key)
{
	json_error_t jerr;
	const char *s;

	json_decref(*v);
	if (!(*v = json_loadb((const char *)body->ptr, body->len, 0, &jerr)))
		return NULL;
	s = json_string_value(json_object_get(*v, key));
	return s && *s ? s : NULL;
}

static int read_version(sluice_http *h, json_t *model_entry)
{
	sluice_buf body = {0};
	json_t *v = NULL;
	const char *s = NULL, *what = "";
	long status;
	int error;

	/* vLLM answers GET /version; llama-server reports its build at /props instead. */
	if ((error = request(h, "/version", NULL, &status, &body)) < 0)
		goto done;
	if (status == 200)
		s = string_field(&v, &body, "version");
	if (!s) {
		if ((error = request(h, "/props", NULL, &status, &body)) < 0)
			goto done;
		if (status == 200 && (s = string_field(&v, &body, "build_info")))
			what = "build_info ";
	}
	if (s) {
		snprintf(h->version, sizeof(h->version), "%s%s", what, s);
	} else {
		/*
		 * Neither: what /v1/models says about the model, without
		 * "created", which some servers set to the time of the request
		 * and would change the identity at every run.
		 */
		s = json_string_value(json_object_get(model_entry, "owned_by"));
		snprintf(h->version, sizeof(h->version), "unreported (owned_by %s)",
		         s ? s : "unknown");
	}
	/* The identity is one line of ';'-separated fields. */
	for (char *p = h->version; *p; p++)
		if (*p == ';' || (unsigned char)*p < 0x20)
			*p = ',';
done:
	json_decref(v);
	sluice_buf__dispose(&body);
	return error;
}

int sluice_http__open(sluice_ctx *ctx, sluice_http **out, const sluice_http_config *cfg)
{
	sluice_http *h = sluice__calloc(ctx, 1, sizeof(*h));
	json_t *entry = NULL;
	int error;

	if (!h)
		return SLUICE_ENOMEM;
	h->ctx = ctx;
	h->cfg = *cfg;
	h->cfg.url = sluice__strdup(ctx, cfg->url);
	h->cfg.model = sluice__strdup(ctx, cfg->model);
	h->cfg.adapter_dir = sluice__strdup(ctx, cfg->adapter_dir ? cfg->adapter_dir : "");
	h->headers = curl_slist_append(NULL, "Content-Type: application/json");
	/* No "Expect: 100-continue" on large bodies: one round trip less, and servers vary. */
	if (h->headers)
		h->headers = curl_slist_append(h->headers, "Expect:");
	if (!h->headers && *sluice_curl__why()) {
		error = sluice_ctx__error(ctx, SLUICE_ERROR, "the http backend needs libcurl: %s",
		                          sluice_curl__why());
		goto fail;
	}
	if (!h->cfg.url || !h->cfg.model || !h->cfg.adapter_dir || !h->headers) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto fail;
	}
	if ((error = read_models(h, &entry)) < 0 || (error = read_version(h, entry)) < 0)
		goto fail;
	json_decref(entry);
	*out = h;
	return SLUICE_OK;
fail:
	json_decref(entry);
	sluice_http__free(h);
	return error;
}

void sluice_http__free(sluice_http *h)
{
	if (!h)
		return;
	sluice_http__config_dispose(&h->cfg);
	curl_slist_free_all(h->headers);
	free(h);
}

const char *sluice_http__server_version(const sluice_http *h)
{
	return h->version;
}

uint64_t sluice_http__requests(const sluice_http *h)
{
	return h->requests;
}

int sluice_http__load_lora(sluice_http *h, const char *name, const char *path)
{
	json_t *req = json_pack("{s:s,s:s}", "lora_name", name, "lora_path", path);
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL, msg[512];
	sluice_buf body = {0};
	long status = 0;
	int error;

	json_decref(req);
	if (!text)
		return sluice_ctx__error(h->ctx, SLUICE_ENOMEM, "out of memory");
	if ((error = request(h, "/v1/load_lora_adapter", text, &status, &body)) < 0)
		goto done;
	if (status != 200) {
		error_message(msg, sizeof(msg), &body);
		/* vLLM: "The lora adapter 'X' has already been loaded." */
		if (status == 400 && strstr(msg, "already"))
			goto done;
		error = sluice_ctx__error(h->ctx, SLUICE_EINVALID,
		                          "the server at %s would not load adapter %s from %s "
		                          "(HTTP %ld: %s)",
		                          h->cfg.url, name, path, status, msg);
	}
done:
	free(text);
	sluice_buf__dispose(&body);
	return error;
}

/* ---- the parser ----------------------------------------------------------------- */

static int contains(const char *s, size_t len, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; i + m <= len; i++)
		if (!memcmp(s + i, needle, m))
			return 1;
	return 0;
}

/* Tolerance above 0 for a log-probability printed with rounding. */
#define LOGPROB_MAX 1e-4

int sluice_http__parse_completion(sluice_ctx *ctx, double **out, const char *body, size_t len,
                                  size_t prompt_len, int max_tokens, const char *what)
{
	return sluice_http__parse_completion_top(ctx, out, NULL, body, len, prompt_len, max_tokens,
	                                         what);
}

int sluice_http__parse_completion_top(sluice_ctx *ctx, double **out, json_t **top_out,
                                      const char *body, size_t len, size_t prompt_len,
                                      int max_tokens, const char *what)
{
	json_error_t jerr;
	json_t *v = NULL, *choices, *c, *lp, *tokens, *tlp, *top, *usage, *pt, *x;
	size_t n, i;
	double *vals = NULL;
	int error = SLUICE_OK;

	*out = NULL;
	if (top_out)
		*top_out = NULL;
	if (prompt_len == 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: an empty prompt", what);
	if (!(v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr))) {
		/* Python's json writes NaN and -Infinity, which are not JSON. */
		int nonfinite = contains(body, len, "NaN") || contains(body, len, "Infinity");
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: the answer is not valid JSON (%s at line %d, column "
		                         "%d)%s",
		                         what, jerr.text, jerr.line, jerr.column,
		                         nonfinite ? "; it holds a non-finite number (NaN or "
		                                     "Infinity)"
		                                   : "");
	}
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, __VA_ARGS__);                      \
		goto done;                                                                         \
	} while (0)
	if (!json_is_object(v))
		FAIL("%s: the answer is not a JSON object", what);
	if (!(choices = json_object_get(v, "choices")))
		FAIL("%s: the answer has no field \"choices\"", what);
	if (!json_is_array(choices) || json_array_size(choices) != 1)
		FAIL("%s: \"choices\" is not an array of one choice (one prompt was sent)", what);
	if (!json_is_object(c = json_array_get(choices, 0)))
		FAIL("%s: choices[0] is not an object", what);
	if (!(lp = json_object_get(c, "logprobs")))
		FAIL("%s: choices[0] has no field \"logprobs\"", what);
	if (json_is_null(lp))
		FAIL("%s: choices[0].logprobs is null: the server returned no log-probabilities",
		     what);
	if (!json_is_object(lp))
		FAIL("%s: choices[0].logprobs is not an object", what);
	if (!(tokens = json_object_get(lp, "tokens")))
		FAIL("%s: choices[0].logprobs has no field \"tokens\"", what);
	if (!json_is_array(tokens))
		FAIL("%s: choices[0].logprobs.tokens is not an array", what);
	if (!(tlp = json_object_get(lp, "token_logprobs")))
		FAIL("%s: choices[0].logprobs has no field \"token_logprobs\"", what);
	if (!json_is_array(tlp))
		FAIL("%s: choices[0].logprobs.token_logprobs is not an array", what);
	n = json_array_size(tokens);
	if (json_array_size(tlp) != n)
		FAIL("%s: choices[0].logprobs has %zu tokens but %zu token_logprobs", what, n,
		     json_array_size(tlp));
	/* With max_tokens 1 the answer may end with the generated token, which is ignored. */
	if (n != prompt_len && !(max_tokens == 1 && n == prompt_len + 1))
		FAIL("%s: the server returned %zu prompt tokens for a prompt of %zu", what,
		     max_tokens == 1 && n > prompt_len ? n - 1 : n, prompt_len);
	if ((usage = json_object_get(v, "usage")) && !json_is_null(usage)) {
		if (!json_is_object(usage))
			FAIL("%s: \"usage\" is not an object", what);
		if ((pt = json_object_get(usage, "prompt_tokens")) && !json_is_null(pt)) {
			if (!json_is_integer(pt))
				FAIL("%s: usage.prompt_tokens is not an integer", what);
			if (json_integer_value(pt) != (json_int_t)prompt_len)
				FAIL("%s: the server returned %lld prompt tokens for a prompt of "
				     "%zu (usage.prompt_tokens)",
				     what, (long long)json_integer_value(pt), prompt_len);
		}
	}
	json_array_foreach(tokens, i, x) if (!json_is_string(x))
	        FAIL("%s: choices[0].logprobs.tokens[%zu] is not a string", what, i);
	if ((top = json_object_get(lp, "top_logprobs")) && !json_is_null(top)) {
		if (!json_is_array(top) || json_array_size(top) != n)
			FAIL("%s: choices[0].logprobs.top_logprobs is not an array of %zu entries",
			     what, n);
		json_array_foreach(top, i, x)
		{
			const char *k;
			json_t *y;
			if (json_is_null(x))
				continue;
			if (!json_is_object(x))
				FAIL("%s: choices[0].logprobs.top_logprobs[%zu] is not an object",
				     what, i);
			json_object_foreach(x, k, y)
			{
				if (!json_is_number(y) || !isfinite(json_number_value(y)) ||
				    json_number_value(y) > LOGPROB_MAX)
					FAIL("%s: choices[0].logprobs.top_logprobs[%zu] holds a "
					     "value that is not a finite log-probability",
					     what, i);
			}
		}
	}
	if (!(vals = sluice__calloc(ctx, prompt_len, sizeof(*vals)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	vals[0] = NAN;
	x = json_array_get(tlp, 0);
	if (!json_is_null(x) && !json_is_number(x))
		FAIL("%s: choices[0].logprobs.token_logprobs[0] is neither null nor a number",
		     what);
	for (i = 1; i < prompt_len; i++) {
		double d;
		x = json_array_get(tlp, i);
		if (json_is_null(x))
			FAIL("%s: choices[0].logprobs.token_logprobs[%zu] is null", what, i);
		if (!json_is_number(x))
			FAIL("%s: choices[0].logprobs.token_logprobs[%zu] is not a number", what,
			     i);
		d = json_number_value(x);
		if (!isfinite(d) || d > LOGPROB_MAX)
			FAIL("%s: choices[0].logprobs.token_logprobs[%zu] = %g is not a "
			     "log-probability",
			     what, i, d);
		vals[i] = d;
	}
#undef FAIL
	*out = vals;
	vals = NULL;
	if (top_out && top && json_is_array(top))
		*top_out = json_incref(top);
done:
	free(vals);
	json_decref(v);
	return error;
}

/* ---- scoring ----------------------------------------------------------------------- */

enum { R_WAITING, R_ACTIVE, R_DONE };

struct req {
	int state;
	unsigned attempt;
	double ready_at; /* monotonic seconds; a retry waits until then */
	int max_tokens;  /* what the request in flight was sent with */
	CURL *easy;
	struct body body;
	char *post;
	char errbuf[CURL_ERROR_SIZE];
};

static char *completion_body(sluice_http *h, const char *model, const int32_t *ids, size_t n,
                             int max_tokens)
{
	json_t *prompt = json_array(), *req;
	char *text;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(prompt, json_integer((json_int_t)ids[i]));
	req = json_pack("{s:s,s:o,s:i,s:b,s:I,s:i}", "model", model, "prompt", prompt, "max_tokens",
	                max_tokens, "echo", 1, "logprobs", (json_int_t)h->cfg.top_logprobs,
	                "temperature", 0);
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	return text;
}

static int start(sluice_http *h, CURLM *multi, struct req *r, const char *model, const int32_t *ids,
                 size_t n, const char *url)
{
	free(r->post);
	r->max_tokens = h->max_tokens;
	if (!(r->post = completion_body(h, model, ids, n, r->max_tokens)))
		return sluice_ctx__error(h->ctx, SLUICE_ENOMEM, "out of memory");
	sluice_buf__dispose(&r->body.buf);
	r->body.too_big = 0;
	if (!(r->easy = new_easy(h, url, r->post, &r->body, r->errbuf)))
		return sluice_ctx__error(h->ctx, *sluice_curl__why() ? SLUICE_ERROR : SLUICE_ENOMEM,
		                         "cannot start a request%s%s",
		                         *sluice_curl__why() ? ": " : "", sluice_curl__why());
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r);
	if (curl_multi_add_handle(multi, r->easy) != CURLM_OK)
		return sluice_ctx__error(h->ctx, SLUICE_ERROR, "cannot start a request");
	r->state = R_ACTIVE;
	h->requests++;
	return SLUICE_OK;
}

/* What to do with a finished request: 0 done, 1 send again, or an error. */
static int finish(sluice_http *h, struct req *r, size_t idx, size_t n, CURLcode c, size_t len,
                  double **out, json_t **top)
{
	char what[4200], msg[512];
	long status = 0;
	curl_off_t ra = 0;

	snprintf(what, sizeof(what), "%s/v1/completions, request %zu of %zu", h->cfg.url, idx + 1,
	         n);
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &ra);
	if (r->body.too_big)
		return sluice_ctx__error(h->ctx, SLUICE_EINVALID,
		                         "%s: the answer is larger than %zu MiB", what,
		                         HTTP_MAX_BODY >> 20);
	if (c != CURLE_OK) {
		if (retryable_code(c) && r->attempt < (unsigned)h->cfg.retries) {
			r->ready_at = sluice__monotonic_s() + backoff(r->attempt++, ra);
			return 1;
		}
		return sluice_ctx__error(h->ctx, SLUICE_EIO, "%s: %s (after %u attempt%s)", what,
		                         *r->errbuf ? r->errbuf : curl_easy_strerror(c),
		                         r->attempt + 1, r->attempt ? "s" : "");
	}
	if (status == 200)
		return sluice_http__parse_completion_top(
		        h->ctx, out, top, r->body.buf.ptr ? (char *)r->body.buf.ptr : "",
		        r->body.buf.len, len, r->max_tokens, what);
	error_message(msg, sizeof(msg), &r->body.buf);
	/* Before any retry: a server that refuses echo will never score. */
	if (status >= 400 && refuses_echo(msg))
		return cannot_score(h, status, msg);
	if (status == 400 && r->max_tokens == 0 && strstr(msg, "max_tokens")) {
		/* This server wants at least one generated token: ask for 1 and ignore it. */
		h->max_tokens = 1;
		r->ready_at = 0;
		return 1;
	}
	if (retryable_status(status) && r->attempt < (unsigned)h->cfg.retries) {
		r->ready_at = sluice__monotonic_s() + backoff(r->attempt++, ra);
		return 1;
	}
	if (retryable_status(status))
		return sluice_ctx__error(h->ctx, SLUICE_EIO,
		                         "%s: the server answered HTTP %ld: %s (retries exhausted "
		                         "after %u attempt%s)",
		                         what, status, msg, r->attempt + 1, r->attempt ? "s" : "");
	return sluice_ctx__error(h->ctx, SLUICE_EINVALID, "%s: the server answered HTTP %ld: %s",
	                         what, status, msg);
}

static void release(CURLM *multi, struct req *r)
{
	if (r->easy) {
		curl_multi_remove_handle(multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
}

int sluice_http__score(sluice_http *h, const char *model, size_t n, const int32_t *const *prompts,
                       const size_t *lens, double **out)
{
	return sluice_http__score_top(h, model, n, prompts, lens, out, NULL);
}

int sluice_http__score_top(sluice_http *h, const char *model, size_t n,
                           const int32_t *const *prompts, const size_t *lens, double **out,
                           json_t **tops)
{
	char url[4096];
	struct req *reqs = NULL;
	CURLM *multi = NULL;
	size_t next = 0, active = 0, done = 0, i;
	int error = SLUICE_OK;

	for (i = 0; i < n; i++) {
		out[i] = NULL;
		if (tops)
			tops[i] = NULL;
	}
	if (n == 0)
		return SLUICE_OK;
	snprintf(url, sizeof(url), "%s/v1/completions", h->cfg.url);
	if (!(reqs = sluice__calloc(h->ctx, n, sizeof(*reqs))))
		return SLUICE_ENOMEM;
	if (!(multi = curl_multi_init())) {
		error = sluice_ctx__error(h->ctx,
		                          *sluice_curl__why() ? SLUICE_ERROR : SLUICE_ENOMEM,
		                          "cannot start libcurl%s%s",
		                          *sluice_curl__why() ? ": " : "", sluice_curl__why());
		goto done;
	}
	/* One connection per request in flight, kept open between requests. */
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->cfg.concurrency);
	while (done < n) {
		double now = sluice__monotonic_s(), wake = -1;
		int running, left, again_now = 0;
		CURLMsg *m;

		/* Retries whose wait is over first, then fresh requests. */
		for (i = 0; i < next && active < (size_t)h->cfg.concurrency; i++) {
			if (reqs[i].state != R_WAITING)
				continue;
			if (reqs[i].ready_at <= now) {
				if ((error = start(h, multi, &reqs[i], model, prompts[i], lens[i],
				                   url)) < 0)
					goto done;
				active++;
			} else if (wake < 0 || reqs[i].ready_at < wake) {
				wake = reqs[i].ready_at;
			}
		}
		while (next < n && active < (size_t)h->cfg.concurrency) {
			if ((error = start(h, multi, &reqs[next], model, prompts[next], lens[next],
			                   url)) < 0)
				goto done;
			next++;
			active++;
		}
		if (active == 0) {
			sluice__sleep_s(wake - now);
			continue;
		}
		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left))) {
			struct req *r = NULL;
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			i = (size_t)(r - reqs);
			error = finish(h, r, i, n, m->data.result, lens[i], &out[i],
			               tops ? &tops[i] : NULL);
			release(multi, r);
			active--;
			if (error < 0)
				goto done;
			if (error == 1) {
				r->state = R_WAITING;
				again_now |= r->ready_at <= sluice__monotonic_s();
				error = SLUICE_OK;
			} else {
				r->state = R_DONE;
				done++;
				free(r->post);
				r->post = NULL;
				sluice_buf__dispose(&r->body.buf);
			}
		}
		/* A slot came free and fresh requests wait: start them before sleeping. */
		if (done < n && !again_now && !(next < n && active < (size_t)h->cfg.concurrency)) {
			int ms = 200;
			if (wake > 0 && (wake - now) * 1000 < ms)
				ms = (int)((wake - now) * 1000) + 1;
			curl_multi_poll(multi, NULL, 0, ms > 0 ? ms : 1, NULL);
		}
	}
done:
	for (i = 0; reqs && i < n; i++) {
		release(multi, &reqs[i]);
		free(reqs[i].post);
		sluice_buf__dispose(&reqs[i].body.buf);
	}
	if (error < 0)
		for (i = 0; i < n; i++) {
			free(out[i]);
			out[i] = NULL;
			if (tops) {
				json_decref(tops[i]);
				tops[i] = NULL;
			}
		}
	free(reqs);
	if (multi)
		curl_multi_cleanup(multi);
	return error;
}
