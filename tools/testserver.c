/*
 * tools/testserver.c - sluice-testserver: an OpenAI-compatible inference
 * server for tests, built on the built-in evaluator (eval/model.h,
 * eval/tokenizer.h). No inference server is packaged in Debian 12, so the
 * tests of the HTTP backend and of the serving hooks talk to this one. It
 * is a real HTTP/1.1 server on 127.0.0.1 and answers like vLLM (default)
 * or llama.cpp's llama-server (--mode llamacpp) on the endpoints sluice
 * uses, including their error shapes. docs/testserver.md is the manual.
 *
 *   sluice-testserver --model DIR [--name NAME] [--port N] [--port-file FILE]
 *                     [--mode vllm|llamacpp] [--lora NAME=DIR]...
 *                     [--server-version STR] [--fail SPEC]... [--delay-ms N]
 *                     [--log FILE]
 *
 * What the answers follow (read in the projects' sources, found with the
 * code search; shapes only, no code copied):
 *
 * vLLM, vllm/entrypoints/openai/completion/serving.py
 * (request_output_to_completion_response, _create_completion_logprobs):
 *   - with echo, choices[i].text is the prompt text followed by the
 *     generated text, and logprobs cover prompt + generated tokens; the
 *     first prompt token has token_logprobs null and top_logprobs null;
 *   - top_logprobs[i] is a dict keyed by each token's decoded text, built
 *     from the actual token first and then the top-k by rank, so it has k
 *     entries when the actual token ranks within k and k+1 otherwise;
 *     equal texts collapse (the later value wins, the first position stays);
 *     log-probabilities are clamped below at -9999.0;
 *   - text_offset[0] = 0 and each next offset adds the length, in code
 *     points, of the previous token's text.
 * vLLM, vllm/entrypoints/openai/models/serving.py and the error models of
 * vllm/entrypoints/openai/engine/protocol.py (ErrorResponse{error:
 * ErrorInfo{message, type, param, code}}; vLLM before 0.8 answered the
 * flat {"object": "error", "message", "type", "param", "code"}, which a
 * client may meet too):
 *   - an unknown model: 404 "The model `X` does not exist." NotFoundError,
 *     param "model";
 *   - /v1/load_lora_adapter: 400 InvalidUserInput when lora_name or
 *     lora_path is missing or the name is loaded; success is the plain text
 *     "Success: LoRA adapter 'X' added successfully."; a path with no
 *     adapter is vllm/exceptions.py's LoRAAdapterNotFoundError, 404 "Loading
 *     lora X failed: No adapter found for P"; unload: 404
 *     NotFoundError "The lora adapter 'X' cannot be found.", success
 *     "Success: LoRA adapter 'X' removed successfully.";
 *   - /v1/models: ModelCard {id, object "model", created, owned_by "vllm",
 *     root, parent, max_model_len, permission[]}, LoRA cards with parent =
 *     the base model's name;
 *   - GET /version: {"version": ...}.
 * llama.cpp, tools/server/utils.hpp / server-common.cpp
 * (oaicompat_completion_params_parse, parse_lora_request,
 * format_error_response) and server.cpp's exception handler:
 *   - /v1/completions with "echo": true throws "Only no echo is supported",
 *     which the server answers 500 {"error": {"code": 500, "message": ...,
 *     "type": "server_error"}}; "n" other than 1: "Only one completion
 *     choice is allowed";
 *   - POST /lora-adapters takes [{"id", "scale"}]: every adapter's scale is
 *     first set to 0, then the listed ones get theirs; an id out of range is
 *     "invalid adapter id"; a body that is not an array is 400
 *     invalid_request_error; success is {"success": true};
 *     GET /lora-adapters lists [{"id", "path", "scale"}];
 *   - an unknown path: 404 {"error": {"code": 404, "message": "File Not
 *     Found", "type": "not_found_error"}};
 *   - generated-token log-probabilities as {"content": [{"id", "token",
 *     "bytes", "logprob", "top_logprobs": [...]}]}.
 * FastAPI (vLLM's framework) answers an unknown path 404 {"detail": "Not
 * Found"} and a wrong method 405 {"detail": "Method Not Allowed"}.
 *
 * Deliberately not done: streaming, sampling (every token is the greedy
 * argmax whatever the temperature), chat completions, authentication.
 *
 * Threads: one per connection. Model calls are serialised by model_lock (a
 * sluice_model is not thread-safe); counters, faults and the request log
 * live under state_lock, which is never held while waiting on model_lock.
 */
#include "internal.h"
#include "model.h"
#include "testserver_http.h"
#include "tokenizer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROMPTS 64
#define MAX_GENERATE 256
#define MAX_LOGPROBS 20 /* vLLM's default --max-logprobs */
#define IDLE_TIMEOUT_MS 60000

enum mode { MODE_VLLM, MODE_LLAMACPP };
enum fault_kind { FAULT_NONE, FAULT_429, FAULT_503, FAULT_DROP, FAULT_MALFORMED, FAULT_SHORT };

static const char *const fault_names[] = {"none", "429", "503", "drop", "malformed", "short"};

typedef struct {
	enum fault_kind kind;
	unsigned count;
	char path[256]; /* the request path it applies to */
} fault;

/* vLLM mode: one model per LoRA name, the base plus that adapter. */
typedef struct {
	char *name;
	char *path;
	sluice_model *model;
} vlora;

/* llama.cpp mode: the adapters given at start-up and their scales. */
typedef struct {
	char *path;
	double scale;
} lcpp_adapter;

typedef struct {
	enum mode mode;
	const char *model_dir;
	const char *name;
	const char *version;
	unsigned delay_ms;
	sluice_tokenizer *tok;
	unsigned vocab;
	unsigned max_model_len;
	int64_t eos; /* -1 when the config names none */
	time_t created;

	/* model_lock guards the models and the adapter tables. */
	pthread_mutex_t model_lock;
	sluice_model *base; /* llama.cpp mode: base + adapters at their scales */
	vlora *loras;
	size_t nloras;
	lcpp_adapter *adapters;
	size_t nadapters;

	/* state_lock guards the rest. */
	pthread_mutex_t state_lock;
	fault *faults;
	size_t nfaults;
	json_t *log;
	FILE *logf;
	unsigned long requests, completions, next_id;
	unsigned inflight, max_inflight, connections;
} server;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* ---- responses ---------------------------------------------------------- */

typedef struct {
	int status;
	const char *ctype; /* NULL: no Content-Type, as Starlette's bare Response */
	char *body;
	size_t len;
	bool drop; /* close the connection without answering */
} response;

static void set_body(response *r, int status, const char *ctype, char *body)
{
	free(r->body);
	r->status = status;
	r->ctype = ctype;
	r->body = body;
	r->len = body ? strlen(body) : 0;
}

/* Answer with j (a reference is stolen). */
static void respond_json(server *s, response *r, int status, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!text) {
		set_body(r, 500, "text/plain; charset=utf-8", strdup("out of memory\n"));
		return;
	}
	set_body(r, status,
	         s->mode == MODE_LLAMACPP ? "application/json; charset=utf-8" : "application/json",
	         text);
}

static void respond_text(response *r, int status, const char *text)
{
	set_body(r, status, NULL, strdup(text));
}

/* vLLM's ErrorResponse: {"error": {"message", "type", "param", "code"}}. */
static void vllm_error(server *s, response *r, int status, const char *type, const char *param,
                       const char *fmt, ...) SLUICE_PRINTF(6, 7);
static void vllm_error(server *s, response *r, int status, const char *type, const char *param,
                       const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	respond_json(s, r, status,
	             json_pack("{s:{s:s,s:s,s:s?,s:i}}", "error", "message", msg, "type", type,
	                       "param", param, "code", status));
}

/* llama.cpp's format_error_response wrapped as {"error": {...}}. */
static void lcpp_error(server *s, response *r, int status, const char *type, const char *msg)
{
	respond_json(s, r, status,
	             json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "message", msg, "type",
	                       type));
}

static void not_found(server *s, response *r)
{
	if (s->mode == MODE_LLAMACPP)
		lcpp_error(s, r, 404, "not_found_error", "File Not Found");
	else
		respond_json(s, r, 404, json_pack("{s:s}", "detail", "Not Found"));
}

static void bad_method(server *s, response *r)
{
	if (s->mode == MODE_LLAMACPP)
		lcpp_error(s, r, 404, "not_found_error", "File Not Found");
	else
		respond_json(s, r, 405, json_pack("{s:s}", "detail", "Method Not Allowed"));
}

/* A request error in the mode's shape: 400 for vLLM, llama.cpp's choice. */
static void bad_request(server *s, response *r, const char *msg)
{
	if (s->mode == MODE_LLAMACPP)
		lcpp_error(s, r, 400, "invalid_request_error", msg);
	else
		vllm_error(s, r, 400, "BadRequestError", NULL, "%s", msg);
}

/* ---- small helpers ------------------------------------------------------ */

/* Sleep ms milliseconds in slices, so a shutdown is not held up by a --delay-ms. */
static void sleep_ms(unsigned ms)
{
	while (ms && !stopping) {
		unsigned slice = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)slice * 1000000L};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		ms -= slice;
	}
}

/*
 * Bytes as text the way Python's bytes.decode("utf-8", "replace") gives it
 * (each maximal ill-formed subpart becomes one U+FFFD), which is what
 * tokenizers hands vLLM for a token that is part of a character. *ncp gets
 * the length in code points (Python's len). Returns a new string or NULL.
 */
static char *utf8_replace(const unsigned char *p, size_t n, size_t *ncp)
{
	char *out = malloc(n * 3 + 1), *o = out;
	size_t i = 0, cp = 0;

	if (!out)
		return NULL;
	while (i < n) {
		unsigned char c = p[i], lo = 0x80, hi = 0xbf;
		size_t need, j;

		cp++;
		if (c < 0x80) {
			*o++ = (char)c;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		else
			need = 0;
		for (j = 1; need && j <= need && i + j < n; j++) {
			unsigned char b = p[i + j];

			if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
				break;
		}
		if (need && j > need) {
			memcpy(o, p + i, need + 1);
			o += need + 1;
			i += need + 1;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i += need ? j : 1;
		}
	}
	*o = '\0';
	*ncp = cp;
	return out;
}

/* The text of one token as vLLM shows it in logprobs; NULL on ENOMEM. */
static char *token_text(server *s, sluice_ctx *ctx, int32_t id, size_t *ncp)
{
	uint32_t u = (uint32_t)id;
	char *raw, *txt;
	size_t len;

	if (sluice_tokenizer__decode(ctx, &raw, &len, s->tok, &u, 1, false) < 0)
		return NULL;
	txt = utf8_replace((const unsigned char *)raw, len, ncp);
	free(raw);
	return txt;
}

static char *decode_text(server *s, sluice_ctx *ctx, const int32_t *ids, size_t n, bool skip)
{
	uint32_t *u = malloc((n ? n : 1) * sizeof(*u));
	char *raw = NULL, *txt = NULL;
	size_t len, cp;

	if (!u)
		return NULL;
	for (size_t i = 0; i < n; i++)
		u[i] = (uint32_t)ids[i];
	if (sluice_tokenizer__decode(ctx, &raw, &len, s->tok, u, n, skip) == 0)
		txt = utf8_replace((const unsigned char *)raw, len, &cp);
	free(raw);
	free(u);
	return txt;
}

static double clamp_lp(float v)
{
	/* vLLM: max(logprob, -9999.0), which also maps -inf. */
	return isfinite(v) ? (v < -9999.0f ? -9999.0 : (double)v) : -9999.0;
}

/* The k largest entries of row[0..n): ids into top[0..k), best first, ties by id. */
static size_t top_k(const float *row, size_t n, size_t k, int32_t *top)
{
	size_t m = 0;

	for (size_t i = 0; i < n && k; i++) {
		size_t j;

		if (m == k && !(row[i] > row[top[m - 1]]))
			continue;
		j = m < k ? m++ : k - 1;
		while (j > 0 && row[i] > row[top[j - 1]]) {
			top[j] = top[j - 1];
			j--;
		}
		top[j] = (int32_t)i;
	}
	return m;
}

/* ---- faults and bookkeeping --------------------------------------------- */

static int parse_fault(fault *out, const char *spec)
{
	char kind[32];
	const char *colon = strchr(spec, ':'), *at;
	char *end;
	unsigned long n;
	size_t k;

	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "/v1/completions");
	if (!colon || (size_t)(colon - spec) >= sizeof(kind))
		return -1;
	memcpy(kind, spec, (size_t)(colon - spec));
	kind[colon - spec] = '\0';
	for (k = 1; k < sizeof(fault_names) / sizeof(*fault_names); k++)
		if (!strcmp(kind, fault_names[k]))
			break;
	if (k == sizeof(fault_names) / sizeof(*fault_names))
		return -1;
	errno = 0;
	n = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || n > 1000000 || (*end && *end != '@'))
		return -1;
	at = *end == '@' ? end + 1 : NULL;
	if (at && (at[0] != '/' || strlen(at) >= sizeof(out->path)))
		return -1;
	if (at)
		snprintf(out->path, sizeof(out->path), "%s", at);
	out->kind = (enum fault_kind)k;
	out->count = (unsigned)n;
	return 0;
}

/* The fault this request to path gets (consuming one), or FAULT_NONE. */
static enum fault_kind take_fault(server *s, const char *path)
{
	enum fault_kind k = FAULT_NONE;

	pthread_mutex_lock(&s->state_lock);
	for (size_t i = 0; i < s->nfaults; i++) {
		fault *f = &s->faults[i];

		if (f->count == 0 || strcmp(f->path, path))
			continue;
		k = f->kind;
		f->count--;
		break;
	}
	pthread_mutex_unlock(&s->state_lock);
	return k;
}

static void log_request(server *s, const sluice_tsrv_head *h, const char *body, size_t blen)
{
	json_t *e, *hdrs = json_object(), *jb = NULL;
	struct timeval tv;

	gettimeofday(&tv, NULL);
	for (size_t i = 0; hdrs && i < h->nheaders; i++) {
		char name[128], *v;
		size_t cp, n = h->headers[i].name_len < sizeof(name) - 1 ? h->headers[i].name_len
		                                                         : sizeof(name) - 1;

		for (size_t j = 0; j < n; j++) {
			char c = h->headers[i].name[j];
			name[j] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		name[n] = '\0';
		v = utf8_replace((const unsigned char *)h->headers[i].value,
		                 h->headers[i].value_len, &cp);
		if (v)
			json_object_set_new(hdrs, name, json_string(v));
		free(v);
	}
	if (blen)
		jb = json_loadb(body, blen, JSON_DECODE_ANY, NULL);
	e = json_pack("{s:f,s:s,s:s,s:s,s:o?,s:o?}", "time", (double)tv.tv_sec + tv.tv_usec / 1e6,
	              "method", h->method, "path", h->path, "query", h->query, "headers", hdrs,
	              "body", jb);
	/* The exact bytes, for receivers that check a signature over them. */
	if (e)
		json_object_set_new(e, "raw",
		                    sluice__utf8_valid((const unsigned char *)body, blen)
		                            ? json_stringn(body, blen)
		                            : json_null());
	pthread_mutex_lock(&s->state_lock);
	s->requests++;
	if (e) {
		if (s->logf) {
			char *line = json_dumps(e, JSON_COMPACT);

			if (line) {
				fprintf(s->logf, "%s\n", line);
				fflush(s->logf);
			}
			free(line);
		}
		json_array_append_new(s->log, e);
	}
	pthread_mutex_unlock(&s->state_lock);
}

/* ---- prompts ------------------------------------------------------------ */

typedef struct {
	int32_t *ids; /* prompt, then generated tokens */
	size_t n, nprompt;
	char *text;     /* the prompt as text: as given, or decoded from the ids */
	char *gen_text; /* the generated tokens' text */
	float *rows;    /* log-softmax rows [first, n-1): row t scores token t+1 */
	size_t first;
	bool eos; /* generation stopped at EOS */
} item;

static void item_dispose(item *it)
{
	free(it->ids);
	free(it->text);
	free(it->gen_text);
	free(it->rows);
	memset(it, 0, sizeof(*it));
}

/* One prompt: a string, or a non-empty array of token ids. */
static int prompt_one(server *s, sluice_ctx *ctx, item *it, json_t *p, char *err, size_t errlen)
{
	if (json_is_string(p)) {
		uint32_t *u = NULL;
		size_t n = 0;

		if (sluice_tokenizer__encode(ctx, &u, &n, s->tok, json_string_value(p),
		                             json_string_length(p), true) < 0) {
			snprintf(err, errlen, "prompt: %s", sluice_ctx_errmsg(ctx));
			return -1;
		}
		it->ids = malloc((n + MAX_GENERATE) * sizeof(int32_t));
		it->text = strdup(json_string_value(p));
		if (!it->ids || !it->text) {
			free(u);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			it->ids[i] = (int32_t)u[i];
		free(u);
		it->n = it->nprompt = n;
	} else {
		size_t n = json_array_size(p), i;
		json_t *v;

		it->ids = malloc((n + MAX_GENERATE) * sizeof(int32_t));
		if (!it->ids) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		json_array_foreach(p, i, v)
		{
			json_int_t id = json_integer_value(v);

			if (!json_is_integer(v)) {
				snprintf(err, errlen, "prompt[%zu] is not an integer token id", i);
				return -1;
			}
			if (id < 0 || id >= (json_int_t)s->vocab) {
				/* vLLM's wording for an id the vocabulary lacks. */
				snprintf(err, errlen, "Token id %lld is out of vocabulary",
				         (long long)id);
				return -1;
			}
			it->ids[i] = (int32_t)id;
		}
		it->n = it->nprompt = n;
		if (!(it->text = decode_text(s, ctx, it->ids, n, false))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (it->nprompt == 0) {
		snprintf(err, errlen, "The prompt cannot be empty");
		return -1;
	}
	return 0;
}

/*
 * "prompt": a string, a list of token ids, or a list of either (one choice
 * each). Returns the items in *out (free each with item_dispose).
 */
static int parse_prompts(server *s, sluice_ctx *ctx, item **out, size_t *nout, json_t *p, char *err,
                         size_t errlen)
{
	size_t n = 1, i;
	bool list = false;
	item *items;

	if (!p) {
		snprintf(err, errlen, "\"prompt\" is required");
		return -1;
	}
	if (json_is_array(p)) {
		json_t *e0 = json_array_get(p, 0);

		if (!e0) {
			snprintf(err, errlen, "prompt is an empty list");
			return -1;
		}
		list = json_is_string(e0) || json_is_array(e0);
		if (list)
			n = json_array_size(p);
	} else if (!json_is_string(p)) {
		snprintf(err, errlen,
		         "prompt must be a string, a list of token ids, or a list of "
		         "either");
		return -1;
	}
	if (n > MAX_PROMPTS) {
		snprintf(err, errlen, "more than %d prompts in one request", MAX_PROMPTS);
		return -1;
	}
	if (!(items = calloc(n, sizeof(*items)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		json_t *one = list ? json_array_get(p, i) : p;

		if (list && !json_is_string(one) && !json_is_array(one)) {
			snprintf(err, errlen, "prompt[%zu] is neither a string nor a list of ids",
			         i);
			break;
		}
		if (prompt_one(s, ctx, &items[i], one, err, errlen) < 0)
			break;
	}
	if (i < n) {
		for (size_t j = 0; j <= i && j < n; j++)
			item_dispose(&items[j]);
		free(items);
		return -1;
	}
	*out = items;
	*nout = n;
	return 0;
}

/*
 * Generate up to max_tokens greedily, then compute the log-softmax rows
 * from `first` on (0 for echo, else the last prompt position). Called
 * with model_lock held.
 */
static int run_item(server *s, sluice_ctx *ctx, sluice_model *m, item *it, size_t max_tokens,
                    bool need_rows, bool echo)
{
	size_t V = s->vocab;
	float *row = malloc(V * sizeof(float));
	int error = 0;

	if (!row)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
	for (size_t g = 0; g < max_tokens; g++) {
		int32_t best = 0;

		if ((error = sluice_model__forward_from(ctx, m, it->ids, it->n, it->n - 1, row)) <
		    0)
			goto done;
		for (size_t v = 1; v < V; v++)
			if (row[v] > row[best])
				best = (int32_t)v;
		it->ids[it->n++] = best;
		if (s->eos >= 0 && best == s->eos) {
			it->eos = true;
			break;
		}
	}
	if (!(it->gen_text =
	              decode_text(s, ctx, it->ids + it->nprompt, it->n - it->nprompt, true))) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	it->first = echo ? 0 : it->nprompt - 1;
	if (need_rows && it->n >= 2 && it->first < it->n - 1) {
		size_t nrows = it->n - 1 - it->first;

		/* The last position's row scores nothing: compute through n-1 only. */
		if (!(it->rows = malloc(nrows * V * sizeof(float)))) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
			goto done;
		}
		if ((error = sluice_model__forward_from(ctx, m, it->ids, it->n - 1, it->first,
		                                        it->rows)) < 0)
			goto done;
		for (size_t r = 0; r < nrows; r++)
			sluice_model__log_softmax(it->rows + r * V, V);
	}
done:
	free(row);
	return error;
}

/* The log-softmax row that scores position p (p >= 1). */
static const float *row_for(const server *s, const item *it, size_t p)
{
	return it->rows + (p - 1 - it->first) * s->vocab;
}

/* vLLM's CompletionLogProbs over positions [from, n). NULL on ENOMEM. */
static json_t *vllm_logprobs(server *s, sluice_ctx *ctx, const item *it, size_t from, size_t k)
{
	json_t *lp = json_pack("{s:[],s:[],s:[],s:[]}", "text_offset", "token_logprobs", "tokens",
	                       "top_logprobs");
	json_t *offs = json_object_get(lp, "text_offset"),
	       *tlp = json_object_get(lp, "token_logprobs"), *toks = json_object_get(lp, "tokens"),
	       *tops = json_object_get(lp, "top_logprobs");
	int32_t top[MAX_LOGPROBS + 1];
	size_t offset = 0;

	if (!lp)
		return NULL;
	for (size_t p = from; p < it->n; p++) {
		size_t cp;
		char *t = token_text(s, ctx, it->ids[p], &cp);

		if (!t)
			goto fail;
		json_array_append_new(toks, json_string(t));
		json_array_append_new(offs, json_integer((json_int_t)offset));
		offset += cp;
		free(t);
		if (p == 0) {
			json_array_append_new(tlp, json_null());
			json_array_append_new(tops, json_null());
			continue;
		}
		{
			const float *row = row_for(s, it, p);
			size_t m = top_k(row, s->vocab, k, top);
			json_t *d = json_object();

			json_array_append_new(tlp, json_real(clamp_lp(row[it->ids[p]])));
			/* The actual token first, then the top-k by rank; equal keys merge. */
			for (size_t j = 0; j <= m; j++) {
				int32_t id = j == 0 ? it->ids[p] : top[j - 1];
				char *tt = token_text(s, ctx, id, &cp);

				if (!tt) {
					json_decref(d);
					goto fail;
				}
				json_object_set_new(d, tt, json_real(clamp_lp(row[id])));
				free(tt);
			}
			json_array_append_new(tops, d);
		}
	}
	return lp;
fail:
	json_decref(lp);
	return NULL;
}

/* llama.cpp's {"content": [{"id", "token", "bytes", "logprob", "top_logprobs"}]}. */
static json_t *lcpp_token_json(server *s, sluice_ctx *ctx, int32_t id, double logprob)
{
	uint32_t u = (uint32_t)id;
	char *raw, *t;
	size_t len, cp;
	json_t *bytes = json_array(), *o;

	if (sluice_tokenizer__decode(ctx, &raw, &len, s->tok, &u, 1, false) < 0) {
		json_decref(bytes);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		json_array_append_new(bytes, json_integer((unsigned char)raw[i]));
	t = utf8_replace((const unsigned char *)raw, len, &cp);
	free(raw);
	o = t ? json_pack("{s:I,s:s,s:o,s:f}", "id", (json_int_t)id, "token", t, "bytes", bytes,
	                  "logprob", logprob)
	      : NULL;
	if (!t)
		json_decref(bytes);
	free(t);
	return o;
}

static json_t *lcpp_logprobs(server *s, sluice_ctx *ctx, const item *it, size_t k)
{
	json_t *content = json_array();
	int32_t top[MAX_LOGPROBS + 1];

	for (size_t p = it->nprompt; content && p < it->n; p++) {
		const float *row = row_for(s, it, p);
		size_t m = top_k(row, s->vocab, k, top);
		json_t *e = lcpp_token_json(s, ctx, it->ids[p], clamp_lp(row[it->ids[p]])),
		       *tl = json_array();

		for (size_t j = 0; e && j < m; j++)
			json_array_append_new(
			        tl, lcpp_token_json(s, ctx, top[j], clamp_lp(row[top[j]])));
		if (!e) {
			json_decref(tl);
			json_decref(content);
			return NULL;
		}
		json_object_set_new(e, "top_logprobs", tl);
		json_array_append_new(content, e);
	}
	return content ? json_pack("{s:o}", "content", content) : NULL;
}

/* Remove the last entry of each logprobs array ("short" fault). */
static void shorten(json_t *lp)
{
	const char *keys[] = {"text_offset", "token_logprobs", "tokens", "top_logprobs"};

	for (size_t i = 0; lp && i < 4; i++) {
		json_t *a = json_object_get(lp, keys[i]);
		size_t n = json_array_size(a);

		if (n)
			json_array_remove(a, n - 1);
	}
}

/* ---- /v1/completions ------------------------------------------------------ */

static void completions(server *s, sluice_ctx *ctx, json_t *req, enum fault_kind fk, response *r)
{
	json_t *jmodel = json_object_get(req, "model"), *jlp = json_object_get(req, "logprobs"),
	       *jmax = json_object_get(req, "max_tokens"), *jn = json_object_get(req, "n"),
	       *jecho = json_object_get(req, "echo"), *jstream = json_object_get(req, "stream"),
	       *choices = NULL, *answer = NULL;
	const char *model_name = s->name;
	bool echo = json_is_true(jecho), want_lp = jlp && !json_is_null(jlp);
	json_int_t k = 0, max_tokens = 16; /* vLLM's default max_tokens */
	size_t nitems = 0, total_prompt = 0, total_gen = 0;
	sluice_model *m = NULL;
	item *items = NULL;
	char err[1024];

	if (s->mode == MODE_LLAMACPP) {
		/* oaicompat_completion_params_parse's checks, in its order. */
		if (!json_object_get(req, "prompt")) {
			lcpp_error(s, r, 500, "server_error", "\"prompt\" is required");
			return;
		}
		if (jn && json_integer_value(jn) != 1) {
			lcpp_error(s, r, 500, "server_error",
			           "Only one completion choice is allowed");
			return;
		}
		if (echo) {
			lcpp_error(s, r, 500, "server_error", "Only no echo is supported");
			return;
		}
		if (json_object_get(req, "best_of")) {
			lcpp_error(s, r, 500, "server_error", "Unsupported param: best_of");
			return;
		}
		if (json_object_get(req, "suffix")) {
			lcpp_error(s, r, 500, "server_error", "Unsupported param: suffix");
			return;
		}
	}
	if (jecho && !json_is_boolean(jecho)) {
		bad_request(s, r, "echo must be a boolean");
		return;
	}
	if (json_is_true(jstream)) {
		bad_request(s, r, "stream is not supported by sluice-testserver");
		return;
	}
	if (jn && (!json_is_integer(jn) || json_integer_value(jn) != 1)) {
		bad_request(s, r, "n must be 1 (sluice-testserver does not sample)");
		return;
	}
	if (want_lp) {
		if (!json_is_integer(jlp) || (k = json_integer_value(jlp)) < 0) {
			bad_request(s, r, "logprobs must be a non-negative integer or null");
			return;
		}
		if (k > MAX_LOGPROBS) {
			if (s->mode == MODE_LLAMACPP) {
				k = MAX_LOGPROBS;
			} else {
				vllm_error(s, r, 400, "BadRequestError", "logprobs",
				           "Requested sample logprobs of %lld, which is greater "
				           "than max allowed: %d",
				           (long long)k, MAX_LOGPROBS);
				return;
			}
		}
	}
	if (jmax && !json_is_null(jmax)) {
		if (!json_is_integer(jmax) || (max_tokens = json_integer_value(jmax)) < 0) {
			bad_request(s, r, "max_tokens must be a non-negative integer");
			return;
		}
		if (max_tokens > MAX_GENERATE) {
			bad_request(s, r, "max_tokens above sluice-testserver's limit of 256");
			return;
		}
	}
	if (s->mode == MODE_VLLM && jmodel && !json_is_null(jmodel)) {
		if (!json_is_string(jmodel)) {
			bad_request(s, r, "model must be a string");
			return;
		}
		model_name = json_string_value(jmodel);
	}
	if (parse_prompts(s, ctx, &items, &nitems, json_object_get(req, "prompt"), err,
	                  sizeof(err)) < 0) {
		bad_request(s, r, err);
		return;
	}

	pthread_mutex_lock(&s->model_lock);
	if (s->mode == MODE_LLAMACPP || !strcmp(model_name, s->name)) {
		m = s->base;
	} else {
		for (size_t i = 0; i < s->nloras; i++)
			if (!strcmp(s->loras[i].name, model_name))
				m = s->loras[i].model;
	}
	if (!m) {
		pthread_mutex_unlock(&s->model_lock);
		vllm_error(s, r, 404, "NotFoundError", "model", "The model `%s` does not exist.",
		           model_name);
		goto done;
	}
	for (size_t i = 0; i < nitems; i++) {
		item *it = &items[i];

		if (it->nprompt + (size_t)max_tokens > s->max_model_len) {
			pthread_mutex_unlock(&s->model_lock);
			if (s->mode == MODE_LLAMACPP)
				lcpp_error(s, r, 400, "exceed_context_size_error",
				           "the request exceeds the available context size");
			else
				vllm_error(
				        s, r, 400, "BadRequestError", NULL,
				        "This model's maximum context length is %u tokens. "
				        "However, you requested %zu tokens (%zu in the messages, "
				        "%lld in the completion). Please reduce the length of the "
				        "messages or completion.",
				        s->max_model_len, it->nprompt + (size_t)max_tokens,
				        it->nprompt, (long long)max_tokens);
			goto done;
		}
		if (run_item(s, ctx, m, it, (size_t)max_tokens, want_lp, echo) < 0) {
			pthread_mutex_unlock(&s->model_lock);
			if (s->mode == MODE_LLAMACPP)
				lcpp_error(s, r, 500, "server_error", sluice_ctx_errmsg(ctx));
			else
				vllm_error(s, r, 500, "InternalServerError", NULL, "%s",
				           sluice_ctx_errmsg(ctx));
			goto done;
		}
	}
	pthread_mutex_unlock(&s->model_lock);

	choices = json_array();
	for (size_t i = 0; choices && i < nitems; i++) {
		item *it = &items[i];
		const char *finish = it->eos ? "stop" : "length";
		json_t *lp = json_null(), *c;
		char *text = NULL;

		total_prompt += it->nprompt;
		total_gen += it->n - it->nprompt;
		if (s->mode == MODE_LLAMACPP) {
			if (want_lp && it->n > it->nprompt && !(lp = lcpp_logprobs(s, ctx, it, k)))
				goto nomem;
			c = json_pack("{s:s,s:I,s:o,s:s}", "text", it->gen_text, "index",
			              (json_int_t)i, "logprobs", lp, "finish_reason", finish);
		} else {
			if (want_lp) {
				if (!(lp = vllm_logprobs(s, ctx, it, echo ? 0 : it->nprompt,
				                         (size_t)k)))
					goto nomem;
				if (fk == FAULT_SHORT)
					shorten(lp);
			}
			if (echo) {
				size_t a = strlen(it->text), b = strlen(it->gen_text);

				if (!(text = malloc(a + b + 1)))
					goto nomem;
				memcpy(text, it->text, a);
				memcpy(text + a, it->gen_text, b + 1);
			}
			c = json_pack("{s:I,s:s,s:o,s:s,s:n,s:n}", "index", (json_int_t)i, "text",
			              text ? text : it->gen_text, "logprobs", lp, "finish_reason",
			              finish, "stop_reason", "prompt_logprobs");
			free(text);
		}
		if (!c)
			goto nomem;
		json_array_append_new(choices, c);
	}
	if (!choices)
		goto nomem;
	{
		unsigned long id;
		char idbuf[64];

		pthread_mutex_lock(&s->state_lock);
		id = ++s->next_id;
		pthread_mutex_unlock(&s->state_lock);
		snprintf(idbuf, sizeof(idbuf), "cmpl-%016lx", id);
		if (s->mode == MODE_LLAMACPP)
			answer = json_pack("{s:o,s:I,s:s,s:s,s:s,s:{s:I,s:I,s:I},s:s}", "choices",
			                   choices, "created", (json_int_t)time(NULL), "model",
			                   s->name, "system_fingerprint", s->version, "object",
			                   "text_completion", "usage", "completion_tokens",
			                   (json_int_t)total_gen, "prompt_tokens",
			                   (json_int_t)total_prompt, "total_tokens",
			                   (json_int_t)(total_gen + total_prompt), "id", idbuf);
		else
			answer = json_pack(
			        "{s:s,s:s,s:I,s:s,s:o,s:{s:I,s:I,s:I,s:n}}", "id", idbuf, "object",
			        "text_completion", "created", (json_int_t)time(NULL), "model",
			        model_name, "choices", choices, "usage", "prompt_tokens",
			        (json_int_t)total_prompt, "total_tokens",
			        (json_int_t)(total_gen + total_prompt), "completion_tokens",
			        (json_int_t)total_gen, "prompt_tokens_details");
		choices = NULL;
		if (!answer)
			goto nomem;
	}
	respond_json(s, r, 200, answer);
	goto done;
nomem:
	json_decref(choices);
	set_body(r, 500, "text/plain; charset=utf-8", strdup("out of memory\n"));
done:
	for (size_t i = 0; i < nitems; i++)
		item_dispose(&items[i]);
	free(items);
}

/* ---- LoRA endpoints ------------------------------------------------------- */

/* A new model: the base plus the adapter at dir (scale 1). */
static int open_with_adapter(server *s, sluice_ctx *ctx, sluice_model **out, const char *dir)
{
	sluice_model *m = NULL;
	int error;

	if ((error = sluice_model__open(ctx, &m, s->model_dir)) < 0 ||
	    (error = sluice_model__add_adapter(ctx, m, dir, 1.0)) < 0) {
		sluice_model__free(m);
		return error;
	}
	*out = m;
	return 0;
}

static void load_lora(server *s, sluice_ctx *ctx, json_t *req, response *r)
{
	const char *name = json_string_value(json_object_get(req, "lora_name")),
	           *path = json_string_value(json_object_get(req, "lora_path"));
	bool inplace = json_is_true(json_object_get(req, "load_inplace"));
	sluice_model *m = NULL;
	vlora *grown, *slot = NULL;
	char msg[1200];
	int error;

	if (!name || !*name || !path || !*path) {
		vllm_error(s, r, 400, "InvalidUserInput", NULL,
		           "Both 'lora_name' and 'lora_path' must be provided.");
		return;
	}
	pthread_mutex_lock(&s->model_lock);
	for (size_t i = 0; i < s->nloras; i++) {
		if (strcmp(s->loras[i].name, name))
			continue;
		if (!inplace) {
			pthread_mutex_unlock(&s->model_lock);
			vllm_error(s, r, 400, "InvalidUserInput", NULL,
			           "The lora adapter '%s' has already been loaded. If you "
			           "want to load the adapter in place, set 'load_inplace' "
			           "to True.",
			           name);
			return;
		}
		slot = &s->loras[i];
	}
	if ((error = open_with_adapter(s, ctx, &m, path)) < 0) {
		pthread_mutex_unlock(&s->model_lock);
		if (error == SLUICE_ENOTFOUND) {
			vllm_error(s, r, 404, "NotFoundError", NULL,
			           "Loading lora %s failed: No adapter found for %s", name, path);
			return;
		}
		snprintf(msg, sizeof(msg), "%s", sluice_ctx_errmsg(ctx));
		vllm_error(s, r, 400, "BadRequestError", NULL, "Loading lora %s failed: %s", name,
		           msg);
		return;
	}
	if (slot) {
		/* load_inplace: the name now serves the adapter at path. */
		char *p = strdup(path);

		if (!p) {
			pthread_mutex_unlock(&s->model_lock);
			sluice_model__free(m);
			set_body(r, 500, "text/plain; charset=utf-8", strdup("out of memory\n"));
			return;
		}
		sluice_model__free(slot->model);
		free(slot->path);
		slot->model = m;
		slot->path = p;
		pthread_mutex_unlock(&s->model_lock);
		snprintf(msg, sizeof(msg), "Success: LoRA adapter '%s' added successfully.", name);
		respond_text(r, 200, msg);
		return;
	}
	grown = realloc(s->loras, (s->nloras + 1) * sizeof(*grown));
	if (!grown) {
		pthread_mutex_unlock(&s->model_lock);
		sluice_model__free(m);
		set_body(r, 500, "text/plain; charset=utf-8", strdup("out of memory\n"));
		return;
	}
	s->loras = grown;
	s->loras[s->nloras].name = strdup(name);
	s->loras[s->nloras].path = strdup(path);
	s->loras[s->nloras].model = m;
	if (!s->loras[s->nloras].name || !s->loras[s->nloras].path) {
		free(s->loras[s->nloras].name);
		free(s->loras[s->nloras].path);
		pthread_mutex_unlock(&s->model_lock);
		sluice_model__free(m);
		set_body(r, 500, "text/plain; charset=utf-8", strdup("out of memory\n"));
		return;
	}
	s->nloras++;
	pthread_mutex_unlock(&s->model_lock);
	fprintf(stderr, "sluice-testserver: loaded LoRA adapter '%s' from %s\n", name, path);
	snprintf(msg, sizeof(msg), "Success: LoRA adapter '%s' added successfully.", name);
	respond_text(r, 200, msg);
}

static void unload_lora(server *s, json_t *req, response *r)
{
	const char *name = json_string_value(json_object_get(req, "lora_name"));
	char msg[1200];

	if (!name || !*name) {
		vllm_error(s, r, 400, "InvalidUserInput", NULL,
		           "'lora_name' needs to be provided to unload a LoRA adapter.");
		return;
	}
	pthread_mutex_lock(&s->model_lock);
	for (size_t i = 0; i < s->nloras; i++) {
		if (strcmp(s->loras[i].name, name))
			continue;
		sluice_model__free(s->loras[i].model);
		free(s->loras[i].name);
		free(s->loras[i].path);
		s->loras[i] = s->loras[--s->nloras];
		pthread_mutex_unlock(&s->model_lock);
		snprintf(msg, sizeof(msg), "Success: LoRA adapter '%s' removed successfully.",
		         name);
		respond_text(r, 200, msg);
		return;
	}
	pthread_mutex_unlock(&s->model_lock);
	vllm_error(s, r, 404, "NotFoundError", NULL, "The lora adapter '%s' cannot be found.",
	           name);
}

/* llama.cpp mode: the base with every adapter of non-zero scale. Called with model_lock. */
static int rebuild_lcpp(server *s, sluice_ctx *ctx, const double *scales)
{
	sluice_model *m = NULL;
	int error;

	if ((error = sluice_model__open(ctx, &m, s->model_dir)) < 0)
		return error;
	for (size_t i = 0; i < s->nadapters; i++)
		if (scales[i] != 0 && (error = sluice_model__add_adapter(
		                               ctx, m, s->adapters[i].path, scales[i])) < 0) {
			sluice_model__free(m);
			return error;
		}
	sluice_model__free(s->base);
	s->base = m;
	for (size_t i = 0; i < s->nadapters; i++)
		s->adapters[i].scale = scales[i];
	return 0;
}

static json_t *lcpp_adapter_list(server *s)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < s->nadapters; i++)
		json_array_append_new(a, json_pack("{s:I,s:s,s:f}", "id", (json_int_t)i, "path",
		                                   s->adapters[i].path, "scale",
		                                   s->adapters[i].scale));
	return a;
}

static void set_lora_scales(server *s, sluice_ctx *ctx, json_t *req, response *r)
{
	double *scales;
	json_t *e;
	size_t i;

	if (!json_is_array(req)) {
		lcpp_error(s, r, 400, "invalid_request_error", "Request body must be an array");
		return;
	}
	if (!(scales = calloc(s->nadapters ? s->nadapters : 1, sizeof(double)))) {
		set_body(r, 500, "text/plain; charset=utf-8", strdup("out of memory\n"));
		return;
	}
	/* parse_lora_request: every scale to 0, then the listed ones. */
	json_array_foreach(req, i, e)
	{
		json_t *jid = json_object_get(e, "id"), *js = json_object_get(e, "scale");
		json_int_t id = json_is_integer(jid) ? json_integer_value(jid) : -1;

		if (id < 0 || (size_t)id >= s->nadapters) {
			free(scales);
			lcpp_error(s, r, 500, "server_error", "invalid adapter id");
			return;
		}
		scales[id] = json_is_number(js) ? json_number_value(js) : 0.0;
	}
	pthread_mutex_lock(&s->model_lock);
	if (rebuild_lcpp(s, ctx, scales) < 0) {
		pthread_mutex_unlock(&s->model_lock);
		free(scales);
		lcpp_error(s, r, 500, "server_error", sluice_ctx_errmsg(ctx));
		return;
	}
	pthread_mutex_unlock(&s->model_lock);
	free(scales);
	respond_json(s, r, 200, json_pack("{s:b}", "success", 1));
}

/* ---- other endpoints ------------------------------------------------------ */

static json_t *model_card(server *s, const char *id, const char *root, const char *parent,
                          bool base)
{
	char perm[96];

	/* vLLM draws a random id; a digest of the card's id is as unique here. */
	{
		unsigned char d[SLUICE_B2_LEN];
		char hex[SLUICE_B2_HEX];

		sluice__b2(d, id, strlen(id));
		sluice__hex(hex, d, 8);
		snprintf(perm, sizeof(perm), "modelperm-%s", hex);
	}
	return json_pack("{s:s,s:s,s:I,s:s,s:s,s:s?,s:o,s:[{s:s,s:s,s:I,s:b,s:b,s:b,s:b,s:b,s:b,"
	                 "s:s,s:n,s:b}]}",
	                 "id", id, "object", "model", "created", (json_int_t)s->created, "owned_by",
	                 "vllm", "root", root, "parent", parent, "max_model_len",
	                 base ? json_integer(s->max_model_len) : json_null(), "permission", "id",
	                 perm, "object", "model_permission", "created", (json_int_t)s->created,
	                 "allow_create_engine", 0, "allow_sampling", 1, "allow_logprobs", 1,
	                 "allow_search_indices", 0, "allow_view", 1, "allow_fine_tuning", 0,
	                 "organization", "*", "group", "is_blocking", 0);
}

static void list_models(server *s, response *r)
{
	json_t *data = json_array();

	if (s->mode == MODE_LLAMACPP) {
		json_array_append_new(data, json_pack("{s:s,s:s,s:I,s:s}", "id", s->name, "object",
		                                      "model", "created", (json_int_t)s->created,
		                                      "owned_by", "llamacpp"));
	} else {
		json_array_append_new(data, model_card(s, s->name, s->model_dir, NULL, true));
		pthread_mutex_lock(&s->model_lock);
		for (size_t i = 0; i < s->nloras; i++)
			json_array_append_new(data, model_card(s, s->loras[i].name,
			                                       s->loras[i].path, s->name, false));
		pthread_mutex_unlock(&s->model_lock);
	}
	respond_json(s, r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static void admin_fail(server *s, json_t *req, response *r)
{
	const char *kind = json_string_value(json_object_get(req, "kind")),
	           *path = json_string_value(json_object_get(req, "path"));
	json_t *jc = json_object_get(req, "count");
	char spec[512];
	fault f;

	if (!kind || !json_is_integer(jc) || json_integer_value(jc) < 0 ||
	    (path && (path[0] != '/' || strlen(path) > 255))) {
		respond_json(s, r, 400,
		             json_pack("{s:s}", "error",
		                       "body must be {\"kind\": 429|503|drop|malformed|short|"
		                       "none, \"count\": N, \"path\"?: \"/...\"}"));
		return;
	}
	if (!strcmp(kind, "none")) {
		memset(&f, 0, sizeof(f));
	} else {
		snprintf(spec, sizeof(spec), "%s:%lld%s%s", kind, (long long)json_integer_value(jc),
		         path ? "@" : "", path ? path : "");
		if (parse_fault(&f, spec) < 0) {
			respond_json(s, r, 400,
			             json_pack("{s:s}", "error", "unknown fault kind or count"));
			return;
		}
	}
	pthread_mutex_lock(&s->state_lock);
	s->nfaults = 0;
	if (f.kind != FAULT_NONE) {
		fault *grown = realloc(s->faults, sizeof(*grown));

		if (grown) {
			s->faults = grown;
			s->faults[0] = f;
			s->nfaults = 1;
		}
	}
	pthread_mutex_unlock(&s->state_lock);
	respond_json(s, r, 200,
	             json_pack("{s:s,s:I,s:s}", "kind", fault_names[f.kind], "count",
	                       (json_int_t)f.count, "path", f.kind ? f.path : ""));
}

static void admin_stats(server *s, response *r)
{
	json_t *j;

	pthread_mutex_lock(&s->state_lock);
	j = json_pack("{s:I,s:I,s:I,s:I}", "requests", (json_int_t)s->requests, "completions",
	              (json_int_t)s->completions, "max_inflight", (json_int_t)s->max_inflight,
	              "inflight", (json_int_t)s->inflight);
	pthread_mutex_unlock(&s->state_lock);
	respond_json(s, r, 200, j);
}

static void admin_log(server *s, response *r)
{
	json_t *j;

	pthread_mutex_lock(&s->state_lock);
	j = json_deep_copy(s->log);
	pthread_mutex_unlock(&s->state_lock);
	respond_json(s, r, 200, j);
}

/* Apply a fault that needs no answer computed; true when r is final. */
static bool apply_fault(server *s, enum fault_kind fk, response *r)
{
	switch (fk) {
	case FAULT_429:
		if (s->mode == MODE_LLAMACPP)
			lcpp_error(s, r, 429, "unavailable_error", "injected fault: 429");
		else
			vllm_error(s, r, 429, "TooManyRequests", NULL, "injected fault: 429");
		return true;
	case FAULT_503:
		if (s->mode == MODE_LLAMACPP)
			lcpp_error(s, r, 503, "unavailable_error", "Loading model");
		else
			vllm_error(s, r, 503, "ServiceUnavailable", NULL, "injected fault: 503");
		return true;
	case FAULT_DROP:
		r->drop = true;
		return true;
	case FAULT_MALFORMED:
		set_body(r, 200, "application/json",
		         strdup("{\"id\":\"cmpl-injected\",\"object\":\"text_completion\","
		                "\"choices\":[{\"index\":0,\"text\":"));
		return true;
	default:
		return false;
	}
}

static bool is_post(const sluice_tsrv_head *h)
{
	return !strcmp(h->method, "POST");
}

static bool is_get(const sluice_tsrv_head *h)
{
	return !strcmp(h->method, "GET");
}

/* Route one request. */
static void handle(server *s, sluice_ctx *ctx, const sluice_tsrv_head *h, const char *body,
                   size_t blen, response *r)
{
	const char *path = h->path;
	bool admin = !strncmp(path, "/admin/", 7),
	     is_cmpl = !strcmp(path, "/v1/completions") ||
	               (s->mode == MODE_LLAMACPP && !strcmp(path, "/completions"));
	enum fault_kind fk = FAULT_NONE;
	json_t *req = NULL;
	json_error_t jerr;

	if (admin) {
		if (!strcmp(path, "/admin/stats") && is_get(h)) {
			admin_stats(s, r);
			return;
		}
		if (!strcmp(path, "/admin/log") && is_get(h)) {
			admin_log(s, r);
			return;
		}
		if (!strcmp(path, "/admin/fail") && is_post(h)) {
			if (!(req = json_loadb(body, blen, 0, &jerr))) {
				respond_json(s, r, 400,
				             json_pack("{s:s}", "error", "body is not JSON"));
				return;
			}
			admin_fail(s, req, r);
			json_decref(req);
			return;
		}
		not_found(s, r);
		return;
	}
	log_request(s, h, body, blen);
	if (is_cmpl && is_post(h)) {
		pthread_mutex_lock(&s->state_lock);
		s->completions++;
		if (++s->inflight > s->max_inflight)
			s->max_inflight = s->inflight;
		pthread_mutex_unlock(&s->state_lock);
		if (s->delay_ms)
			sleep_ms(s->delay_ms);
	}
	fk = take_fault(s, path);
	if (apply_fault(s, fk, r))
		goto done;
	if (is_post(h) && blen) {
		/* FastAPI / llama.cpp both refuse a body that is not JSON with 400. */
		if (!(req = json_loadb(body, blen, JSON_DECODE_ANY, &jerr))) {
			char msg[300];

			snprintf(msg, sizeof(msg), "JSON decode error: %s (line %d, column %d)",
			         jerr.text, jerr.line, jerr.column);
			bad_request(s, r, msg);
			goto done;
		}
	}
	if (!strncmp(path, "/webhook", 8)) {
		if (is_post(h))
			respond_json(s, r, 200, json_pack("{s:b}", "received", 1));
		else
			bad_method(s, r);
	} else if (!strcmp(path, "/health")) {
		if (s->mode == MODE_LLAMACPP)
			respond_json(s, r, 200, json_pack("{s:s}", "status", "ok"));
		else
			respond_text(r, 200, "");
	} else if (!strcmp(path, "/v1/models") ||
	           (s->mode == MODE_LLAMACPP && !strcmp(path, "/models"))) {
		if (is_get(h))
			list_models(s, r);
		else
			bad_method(s, r);
	} else if (is_cmpl) {
		if (!is_post(h))
			bad_method(s, r);
		else if (!json_is_object(req))
			bad_request(s, r, "the body must be a JSON object");
		else
			completions(s, ctx, req, fk, r);
	} else if (s->mode == MODE_VLLM && !strcmp(path, "/version")) {
		if (is_get(h))
			respond_json(s, r, 200, json_pack("{s:s}", "version", s->version));
		else
			bad_method(s, r);
	} else if (s->mode == MODE_VLLM && !strcmp(path, "/v1/load_lora_adapter")) {
		if (!is_post(h))
			bad_method(s, r);
		else if (!json_is_object(req))
			bad_request(s, r, "the body must be a JSON object");
		else
			load_lora(s, ctx, req, r);
	} else if (s->mode == MODE_VLLM && !strcmp(path, "/v1/unload_lora_adapter")) {
		if (!is_post(h))
			bad_method(s, r);
		else if (!json_is_object(req))
			bad_request(s, r, "the body must be a JSON object");
		else
			unload_lora(s, req, r);
	} else if (s->mode == MODE_LLAMACPP && !strcmp(path, "/props")) {
		/* llama-server's self-description; build_info is where it reports a version. */
		if (is_get(h))
			respond_json(s, r, 200,
			             json_pack("{s:s,s:s,s:i,s:s}", "model_alias", s->name,
			                       "model_path", s->model_dir, "total_slots", 1,
			                       "build_info", s->version));
		else
			bad_method(s, r);
	} else if (s->mode == MODE_LLAMACPP && !strcmp(path, "/lora-adapters")) {
		if (is_get(h)) {
			json_t *list;

			pthread_mutex_lock(&s->model_lock);
			list = lcpp_adapter_list(s);
			pthread_mutex_unlock(&s->model_lock);
			respond_json(s, r, 200, list);
		} else if (is_post(h)) {
			set_lora_scales(s, ctx, req, r);
		} else {
			bad_method(s, r);
		}
	} else {
		not_found(s, r);
	}
done:
	json_decref(req);
	if (is_cmpl && is_post(h)) {
		pthread_mutex_lock(&s->state_lock);
		s->inflight--;
		pthread_mutex_unlock(&s->state_lock);
	}
}

/* ---- connections ---------------------------------------------------------- */

typedef struct {
	server *s;
	int fd;
} conn;

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Internal Server Error" : "Error";
	}
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_response(int fd, const response *r, bool keep_alive)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\nConnection: %s\r\n\r\n",
	             r->status, reason(r->status), r->ctype ? "Content-Type: " : "",
	             r->ctype ? r->ctype : "", r->ctype ? "\r\n" : "", r->len,
	             keep_alive ? "keep-alive" : "close");
	if (send_all(fd, head, (size_t)n) < 0)
		return -1;
	return send_all(fd, r->body ? r->body : "", r->len);
}

/* Read more bytes into b; 0 on data, -1 on EOF, error, idle timeout or shutdown. */
static int read_more(int fd, sluice_ctx *ctx, sluice_buf *b)
{
	unsigned waited = 0;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		int rc = poll(&p, 1, 200);
		ssize_t got;

		if (stopping)
			return -1;
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc <= 0) {
			if ((waited += 200) >= IDLE_TIMEOUT_MS)
				return -1;
			continue;
		}
		if (sluice_buf__grow(ctx, b, 8192) < 0)
			return -1;
		got = recv(fd, b->ptr + b->len, 8192, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		b->len += (size_t)got;
		return 0;
	}
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	server *s = c->s;
	sluice_ctx *ctx = NULL;
	sluice_buf in = {0};
	sluice_tsrv_head *h = malloc(sizeof(*h));

	if (!h || sluice_ctx_new(&ctx) < 0)
		goto done;
	for (;;) {
		response r = {0};
		size_t need;
		int rc;
		bool keep;

		while ((rc = sluice_tsrv__parse_head(ctx, h, (const char *)in.ptr, in.len)) == 0)
			if (read_more(c->fd, ctx, &in) < 0)
				goto done;
		if (rc < 0) {
			char msg[1100];

			snprintf(msg, sizeof(msg), "malformed request: %s", sluice_ctx_errmsg(ctx));
			bad_request(s, &r, msg);
			send_response(c->fd, &r, false);
			free(r.body);
			goto done;
		}
		need = h->head_len + (size_t)h->content_length;
		if (h->expect_continue && in.len < need &&
		    send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
			goto done;
		while (in.len < need)
			if (read_more(c->fd, ctx, &in) < 0)
				goto done;
		/* The buffer may have moved while the body arrived: parse again. */
		if (sluice_tsrv__parse_head(ctx, h, (const char *)in.ptr, in.len) != 1)
			goto done;
		keep = h->keep_alive && !stopping;
		handle(s, ctx, h, (const char *)in.ptr + h->head_len, (size_t)h->content_length,
		       &r);
		if (r.drop) {
			free(r.body);
			goto done;
		}
		rc = send_response(c->fd, &r, keep);
		free(r.body);
		if (rc < 0 || !keep)
			goto done;
		memmove(in.ptr, in.ptr + need, in.len - need);
		in.len -= need;
	}
done:
	close(c->fd);
	sluice_buf__dispose(&in);
	sluice_ctx_free(ctx);
	free(h);
	pthread_mutex_lock(&s->state_lock);
	s->connections--;
	pthread_mutex_unlock(&s->state_lock);
	free(c);
	return NULL;
}

/* ---- start-up ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: sluice-testserver --model DIR [--name NAME] [--port N] [--port-file FILE]\n"
	        "                         [--mode vllm|llamacpp] [--lora NAME=DIR]...\n"
	        "                         [--server-version STR] [--fail KIND:N[@PATH]]...\n"
	        "                         [--delay-ms N] [--log FILE]\n"
	        "  KIND: 429 | 503 | drop | malformed | short (default PATH /v1/completions)\n");
	exit(2);
}

static void die(const char *what, sluice_ctx *ctx)
{
	fprintf(stderr, "sluice-testserver: %s: %s\n", what, ctx ? sluice_ctx_errmsg(ctx) : "");
	exit(1);
}

/* max_position_embeddings and eos_token_id from DIR/config.json. */
static void read_config(server *s, sluice_ctx *ctx)
{
	char path[4096];
	json_error_t jerr;
	json_t *cfg, *eos, *mpe;

	snprintf(path, sizeof(path), "%s/config.json", s->model_dir);
	if (!(cfg = json_load_file(path, 0, &jerr))) {
		fprintf(stderr, "sluice-testserver: %s: %s\n", path, jerr.text);
		exit(1);
	}
	mpe = json_object_get(cfg, "max_position_embeddings");
	s->max_model_len = json_is_integer(mpe) && json_integer_value(mpe) > 0 &&
	                                   json_integer_value(mpe) < (1 << 24)
	                           ? (unsigned)json_integer_value(mpe)
	                           : 2048;
	eos = json_object_get(cfg, "eos_token_id");
	if (json_is_array(eos))
		eos = json_array_get(eos, 0);
	s->eos = json_is_integer(eos) ? json_integer_value(eos) : -1;
	json_decref(cfg);
	(void)ctx;
}

static unsigned parse_uint(const char *flag, const char *v, unsigned max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || n > max) {
		fprintf(stderr, "sluice-testserver: %s: not a number up to %u: %s\n", flag, max, v);
		exit(2);
	}
	return (unsigned)n;
}

int main(int argc, char **argv)
{
	server srv = {0};
	server *s = &srv;
	const char *port_file = NULL, *log_path = NULL;
	const char **lora_specs = calloc((size_t)argc, sizeof(char *));
	size_t nlora_specs = 0;
	unsigned port = 0;
	sluice_ctx *ctx = NULL;
	unsigned char *tokjson;
	size_t toklen;
	char path[4096];
	struct sockaddr_in addr;
	socklen_t alen = sizeof(addr);
	struct sigaction sa;
	int lfd, one = 1;

	s->mode = MODE_VLLM;
	s->version = "sluice-testserver " SLUICE_VERSION_STRING;
	s->log = json_array();
	s->faults = calloc((size_t)argc, sizeof(fault));
	if (!lora_specs || !s->log || !s->faults)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			usage();
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--model"))
			s->model_dir = v;
		else if (!strcmp(a, "--name"))
			s->name = v;
		else if (!strcmp(a, "--port"))
			port = parse_uint(a, v, 65535);
		else if (!strcmp(a, "--port-file"))
			port_file = v;
		else if (!strcmp(a, "--mode")) {
			if (!strcmp(v, "vllm"))
				s->mode = MODE_VLLM;
			else if (!strcmp(v, "llamacpp"))
				s->mode = MODE_LLAMACPP;
			else
				usage();
		} else if (!strcmp(a, "--lora"))
			lora_specs[nlora_specs++] = v;
		else if (!strcmp(a, "--server-version"))
			s->version = v;
		else if (!strcmp(a, "--fail")) {
			if (parse_fault(&s->faults[s->nfaults], v) < 0) {
				fprintf(stderr,
				        "sluice-testserver: --fail: not KIND:N[@PATH]: %s\n", v);
				return 2;
			}
			s->nfaults++;
		} else if (!strcmp(a, "--delay-ms"))
			s->delay_ms = parse_uint(a, v, 600000);
		else if (!strcmp(a, "--log"))
			log_path = v;
		else
			usage();
	}
	if (!s->model_dir)
		usage();
	if (!s->name)
		s->name = s->model_dir; /* vLLM serves a model under the path it was given */
	s->created = time(NULL);
	if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0)
		return 1;
	if (log_path && !(s->logf = fopen(log_path, "a"))) {
		perror(log_path);
		return 1;
	}
	read_config(s, ctx);
	snprintf(path, sizeof(path), "%s/tokenizer.json", s->model_dir);
	if (sluice_io__read_file(ctx, &tokjson, &toklen, path, 256u << 20) < 0 ||
	    sluice_tokenizer__load(ctx, &s->tok, (const char *)tokjson, toklen, path) < 0)
		die(path, ctx);
	free(tokjson);
	if (sluice_model__open(ctx, &s->base, s->model_dir) < 0)
		die(s->model_dir, ctx);
	s->vocab = sluice_model__config(s->base)->vocab;
	pthread_mutex_init(&s->model_lock, NULL);
	pthread_mutex_init(&s->state_lock, NULL);

	if (s->mode == MODE_LLAMACPP) {
		double *scales = calloc(nlora_specs ? nlora_specs : 1, sizeof(double));

		s->adapters = calloc(nlora_specs ? nlora_specs : 1, sizeof(*s->adapters));
		if (!scales || !s->adapters)
			return 1;
		for (size_t i = 0; i < nlora_specs; i++) {
			const char *eq = strchr(lora_specs[i], '=');

			/* llama-server's --lora FNAME applies it at scale 1. */
			s->adapters[i].path = strdup(eq ? eq + 1 : lora_specs[i]);
			scales[i] = 1.0;
		}
		s->nadapters = nlora_specs;
		if (rebuild_lcpp(s, ctx, scales) < 0)
			die("--lora", ctx);
		free(scales);
	} else {
		s->loras = calloc(nlora_specs ? nlora_specs : 1, sizeof(*s->loras));
		if (!s->loras)
			return 1;
		for (size_t i = 0; i < nlora_specs; i++) {
			const char *eq = strchr(lora_specs[i], '=');

			if (!eq || eq == lora_specs[i] || !eq[1]) {
				fprintf(stderr, "sluice-testserver: --lora: not NAME=DIR: %s\n",
				        lora_specs[i]);
				return 2;
			}
			s->loras[i].name = strndup(lora_specs[i], (size_t)(eq - lora_specs[i]));
			s->loras[i].path = strdup(eq + 1);
			if (open_with_adapter(s, ctx, &s->loras[i].model, eq + 1) < 0)
				die(lora_specs[i], ctx);
			s->nloras++;
		}
	}
	free(lora_specs);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
		fprintf(stderr, "sluice-testserver: 127.0.0.1:%u: %s\n", port, strerror(errno));
		return 1;
	}
	port = ntohs(addr.sin_port);
	if (port_file) {
		char text[16];
		int n = snprintf(text, sizeof(text), "%u\n", port);

		if (sluice_io__write_file_atomic(ctx, port_file, text, (size_t)n, 0644) < 0)
			die(port_file, ctx);
	}
	printf("listening on 127.0.0.1:%u\n", port);
	fflush(stdout);

	while (!stopping) {
		struct pollfd p = {lfd, POLLIN, 0};
		pthread_attr_t attr;
		pthread_t t;
		conn *c;
		int fd;

		if (poll(&p, 1, 200) <= 0)
			continue;
		if ((fd = accept(lfd, NULL, NULL)) < 0)
			continue;
		if (!(c = malloc(sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->state_lock);
		s->connections++;
		pthread_mutex_unlock(&s->state_lock);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, conn_main, c) != 0) {
			close(fd);
			free(c);
			pthread_mutex_lock(&s->state_lock);
			s->connections--;
			pthread_mutex_unlock(&s->state_lock);
		}
		pthread_attr_destroy(&attr);
	}
	close(lfd);
	/* Connections notice `stopping` within 200 ms; a model call finishes first. */
	for (int waited = 0; waited < 10000; waited += 20) {
		unsigned left;

		pthread_mutex_lock(&s->state_lock);
		left = s->connections;
		pthread_mutex_unlock(&s->state_lock);
		if (!left)
			break;
		sleep_ms(20);
	}
	pthread_mutex_lock(&s->state_lock);
	if (s->connections) {
		/* A thread is stuck: leave the models to the exit rather than free them under it.
		 */
		fprintf(stderr, "sluice-testserver: %u connection(s) still open at exit\n",
		        s->connections);
		_exit(0);
	}
	pthread_mutex_unlock(&s->state_lock);
	for (size_t i = 0; i < s->nloras; i++) {
		sluice_model__free(s->loras[i].model);
		free(s->loras[i].name);
		free(s->loras[i].path);
	}
	for (size_t i = 0; i < s->nadapters; i++)
		free(s->adapters[i].path);
	free(s->loras);
	free(s->adapters);
	free(s->faults);
	sluice_model__free(s->base);
	sluice_tokenizer__free(s->tok);
	json_decref(s->log);
	if (s->logf)
		fclose(s->logf);
	sluice_ctx_free(ctx);
	sluice_global_shutdown();
	return 0;
}
