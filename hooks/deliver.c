/*
 * hooks/deliver.c - one delivery attempt per hook type: a signed webhook
 * (Standard Webhooks), a vLLM server's LoRA load/unload, a llama.cpp
 * server's adapter scales (docs/hooks.md).
 */
#include "curl.h"
#include "hooks.h"

#include "config.h"
#include "export.h"
#include "version.h"

#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The most of an answer kept in memory (the journal keeps a short excerpt). */
#define ANSWER_CAP (1u << 20)
/* The most memory-note text a webhook carries. */
#define NOTES_CAP (256u << 10)

/* Why an attempt failed, into res->error (cut at its size: the journal keeps it short). */
static void say(sluice_hook_result *res, const char *fmt, ...) SLUICE_PRINTF(2, 3);
static void say(sluice_hook_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

/* ---- HTTP ---------------------------------------------------------------- */

struct answer {
	sluice_buf buf;
	sluice_ctx *ctx;
	int over;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *data)
{
	struct answer *a = data;
	size_t n = size * nmemb;

	if (a->buf.len + n > ANSWER_CAP) {
		a->over = 1;
		return 0; /* curl stops with a write error */
	}
	return sluice_buf__put(a->ctx, &a->buf, p, n) == 0 ? n : 0;
}

/*
 * One request. 0 when the server answered (any status, in *status, body
 * in out); -1 with err filled when it did not (refused, timed out, reset).
 * Redirects are not followed: a webhook URL that moved should be updated
 * (Standard Webhooks, "Delivery success and failure").
 */
static int http(sluice_ctx *ctx, const char *method, const char *url, struct curl_slist *headers,
                const char *body, size_t body_len, long timeout, long *status, sluice_buf *out,
                char *err, size_t errlen)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	struct answer a = {{0}, ctx, 0};
	CURL *c = curl_easy_init();
	CURLcode rc;
	int ret = 0;

	*status = 0;
	if (!c) {
		snprintf(err, errlen, "cannot start an HTTP request (libcurl)%s%s",
		         *sluice_curl__why() ? ": " : "", sluice_curl__why());
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout < 10 ? timeout : 10L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION_STRING);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
	if (headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s %s: %s%s", method, url,
		         *ebuf ? ebuf : curl_easy_strerror(rc),
		         a.over ? " (answer over 1 MiB)" : "");
		ret = -1;
	}
	sluice_buf__cstr(ctx, &a.buf);
	*out = a.buf;
	curl_easy_cleanup(c);
	return ret;
}

/* A bounded excerpt of an answer for the journal. */
static void keep_answer(sluice_hook_result *res, const sluice_buf *b)
{
	size_t n = b->len < sizeof(res->answer) - 1 ? b->len : sizeof(res->answer) - 1;

	memcpy(res->answer, b->ptr ? (const char *)b->ptr : "", b->ptr ? n : 0);
	res->answer[b->ptr ? n : 0] = 0;
}

static int is_2xx(long status)
{
	return status >= 200 && status <= 299;
}

/* ---- the version being delivered ----------------------------------------- */

/* The memory notes' text: [{"name","text"}] (new reference). */
static int notes_of(sluice_repo *repo, const sluice_version *v, json_t **out)
{
	json_t *notes = json_array(), *m;
	size_t i, total = 0;
	int error = 0;

	json_array_foreach(json_object_get(v->state, "memory"), i, m)
	{
		const char *path =
		        sluice__jstr(json_object_get(json_object_get(m, "file"), "path"));
		char tpath[4200];
		git_tree_entry *te = NULL;
		sluice_buf b = {0};

		snprintf(tpath, sizeof(tpath), "%s%s", SLUICE_TREE_FILES, path);
		if ((error = git_tree_entry_bypath(&te, v->tree, tpath)) < 0) {
			error = sluice_ctx__giterror(repo->ctx, error, "memory note %s", path);
			break;
		}
		error = sluice_repo__read_blob(repo, &b, git_tree_entry_id(te), path);
		git_tree_entry_free(te);
		if (error < 0)
			break;
		total += b.len;
		if (total > NOTES_CAP || !sluice__utf8_valid(b.ptr, b.len) ||
		    (error = sluice_buf__cstr(repo->ctx, &b)) < 0) {
			error = error < 0 ? error
			                  : sluice_ctx__error(
			                            repo->ctx, SLUICE_EINVALID,
			                            "memory note %s: not UTF-8 text, or the "
			                            "notes are over %u KiB together",
			                            path, NOTES_CAP >> 10);
			sluice_buf__dispose(&b);
			break;
		}
		json_array_append_new(notes,
		                      json_pack("{s:O,s:s}", "name", json_object_get(m, "name"),
		                                "text", (const char *)b.ptr));
		sluice_buf__dispose(&b);
	}
	if (error < 0) {
		json_decref(notes);
		return error;
	}
	*out = notes;
	return SLUICE_OK;
}

static int load_version(sluice_repo *repo, sluice_version *v, const char *hex,
                        sluice_hook_result *res)
{
	git_oid id;
	int error;

	if (git_oid_fromstr(&id, hex) < 0)
		return sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT, "the move names no version");
	if ((error = sluice_version__load_id(repo, v, &id)) < 0 ||
	    (error = sluice_version__state_digest(repo, v, res->state)) < 0)
		return error;
	return SLUICE_OK;
}

/* ---- webhook ------------------------------------------------------------- */

/*
 * Standard Webhooks 1.0.0 (github.com/standard-webhooks/standard-webhooks,
 * spec/standard-webhooks.md): headers webhook-id (the same for every retry
 * of an event), webhook-timestamp (integer Unix seconds of this attempt)
 * and webhook-signature "v1a,<base64 Ed25519 signature>" over
 * "{id}.{timestamp}.{body}", the exact bytes sent.
 */
static int webhook(sluice_repo *repo, const sluice_hook_move *mv, sluice_hook_result *res)
{
	const sluice_hook *h = mv->hook;
	sluice_version v;
	json_t *body = NULL, *notes = NULL;
	char *text = NULL, hdr[256], ts[32];
	unsigned char sig[crypto_sign_BYTES];
	char sig64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	struct curl_slist *headers = NULL;
	sluice_buf signed_msg = {0}, answer = {0};
	int error;

	memset(&v, 0, sizeof(v));
	sluice_hooks__delivery_id(res->id, h->name, mv->entry);
	if ((error = load_version(repo, &v, mv->to, res)) < 0)
		goto done;
	if (h->notes && (error = notes_of(repo, &v, &notes)) < 0)
		goto done;
	body = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:I,s:s}", "id", res->id,
	                 "type", "channel.moved", "timestamp", mv->time, "channel", mv->channel,
	                 "action", mv->action, "from", *mv->from ? mv->from : NULL, "to", mv->to,
	                 "version", mv->to, "state", res->state, "entry", mv->entry, "seq",
	                 (json_int_t)mv->seq, "hook", h->name);
	if (body && mv->reason)
		json_object_set_new(body, "reason", json_string(mv->reason));
	if (body && notes) {
		json_object_set_new(body, "notes", notes);
		notes = NULL;
	}
	if (!body || (error = sluice_repo__dump(repo->ctx, &text, body)) < 0) {
		error = error < 0 ? error
		                  : sluice_ctx__error(repo->ctx, SLUICE_ENOMEM,
		                                      "cannot build the webhook body");
		goto done;
	}
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	if ((error = sluice_buf__printf(repo->ctx, &signed_msg, "%s.%s.%s", res->id, ts, text)) < 0)
		goto done;
	crypto_sign_detached(sig, NULL, signed_msg.ptr, signed_msg.len, mv->key->sk);
	sodium_bin2base64(sig64, sizeof(sig64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	snprintf(hdr, sizeof(hdr), "webhook-id: %s", res->id);
	headers = curl_slist_append(headers, hdr);
	snprintf(hdr, sizeof(hdr), "webhook-timestamp: %s", ts);
	headers = curl_slist_append(headers, hdr);
	snprintf(hdr, sizeof(hdr), "webhook-signature: v1a,%s", sig64);
	headers = curl_slist_append(headers, hdr);
	if (http(repo->ctx, "POST", h->url, headers, text, strlen(text), h->timeout, &res->status,
	         &answer, res->error, sizeof(res->error)) == 0) {
		res->ok = is_2xx(res->status);
		if (!res->ok)
			say(res, "the receiver answered HTTP %ld", res->status);
	}
	keep_answer(res, &answer);
done:
	if (error < 0)
		say(res, "%s", sluice_ctx_errmsg(repo->ctx));
	curl_slist_free_all(headers);
	sluice_buf__dispose(&signed_msg);
	sluice_buf__dispose(&answer);
	free(text);
	json_decref(body);
	json_decref(notes);
	sluice_version__dispose(&v);
	return error;
}

/* ---- servers: vLLM and llama.cpp ----------------------------------------- */

/* The server's base URL with path appended ("http://h:1/" and "http://h:1" alike). */
static void endpoint(char *out, size_t len, const char *base, const char *path)
{
	size_t n = strlen(base);

	while (n > 8 && base[n - 1] == '/')
		n--;
	snprintf(out, len, "%.*s%s", (int)n, base, path);
}

/* POST a JSON value; 0 when the server answered (any status). */
static int post_json(sluice_repo *repo, const sluice_hook *h, const char *path, json_t *v,
                     sluice_hook_result *res, sluice_buf *answer)
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	char url[2200], *text = NULL;
	int ret = -1;

	endpoint(url, sizeof(url), h->url, path);
	sluice_buf__dispose(answer);
	if (v && sluice_repo__dump(repo->ctx, &text, v) == 0)
		ret = http(repo->ctx, "POST", url, headers, text, strlen(text), h->timeout,
		           &res->status, answer, res->error, sizeof(res->error));
	else
		say(res, "cannot encode the request to %s", url);
	keep_answer(res, answer);
	curl_slist_free_all(headers);
	free(text);
	json_decref(v);
	return ret;
}

/*
 * The stack as one adapter in sluice.http.adapterDir/<state digest>/
 * (default REPO/sluice/cache/served), written once: exported beside,
 * then renamed, so a server never reads half an adapter.
 */
static int materialise(sluice_repo *repo, const sluice_version *v, const char *digest, char *out,
                       size_t outlen)
{
	sluice_ctx *ctx = repo->ctx;
	char dflt[4200], *cfgdir = NULL, *real = NULL, probe[4400], tmp[4400];
	struct stat st;
	int error;

	snprintf(dflt, sizeof(dflt), "%s/cache/served", repo->sdir);
	if ((error = sluice_config__get_string(repo, &cfgdir, "sluice.http.adapterDir", dflt)) <
	            0 ||
	    (error = sluice_io__mkdirs(ctx, cfgdir, 0755)) < 0)
		goto done;
	/* The server loads by path, perhaps from another working directory. */
	if (!(real = realpath(cfgdir, NULL))) {
		error = sluice_ctx__oserror(ctx, "sluice.http.adapterDir %s", cfgdir);
		goto done;
	}
	if ((size_t)snprintf(out, outlen, "%s/%s", real, digest) >= outlen) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s/%s", real,
		                          digest);
		goto done;
	}
	snprintf(probe, sizeof(probe), "%s/adapter_config.json", out);
	if (stat(probe, &st) == 0)
		goto done;
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%ld", real, digest, (long)getpid());
	if ((error = sluice_export__stack(repo, v, tmp)) < 0) {
		sluice_ctx__wrap(ctx, error, "materialising the adapter stack for the server");
		goto done;
	}
	if (rename(tmp, out) < 0 && stat(probe, &st) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot move %s to %s", tmp, out);
		goto done;
	}
	error = sluice_io__fsync_dir(ctx, real);
done:
	free(cfgdir);
	free(real);
	return error;
}

/*
 * vLLM applies one adapter per request: the new state's stack goes in as
 * one adapter (sluice-<channel>-<16 hex of the state digest>), loaded by
 * path with /v1/load_lora_adapter; then the adapter this hook loaded for
 * the channel before is unloaded. A state without adapters unloads only
 * (requests then name the base model).
 */
static int vllm(sluice_repo *repo, const sluice_hook_move *mv, sluice_hook_result *res)
{
	sluice_version v;
	sluice_buf answer = {0};
	char dir[4200], name[96];
	int error, ok = 1;

	memset(&v, 0, sizeof(v));
	if ((error = load_version(repo, &v, mv->to, res)) < 0)
		goto done;
	if (json_array_size(json_object_get(v.state, "adapters"))) {
		snprintf(name, sizeof(name), "sluice-%s-%.16s", mv->channel, res->state);
		if ((error = materialise(repo, &v, res->state, dir, sizeof(dir))) < 0)
			goto done;
		if (post_json(repo, mv->hook, "/v1/load_lora_adapter",
		              json_pack("{s:s,s:s}", "lora_name", name, "lora_path", dir), res,
		              &answer) < 0)
			goto done;
		/* Already loaded (an earlier attempt got this far): vLLM says so with a 400. */
		if (!is_2xx(res->status) &&
		    !(res->status == 400 && answer.ptr && strstr((char *)answer.ptr, "already"))) {
			say(res, "loading %s from %s: the server answered HTTP %ld", name, dir,
			    res->status);
			goto done;
		}
		snprintf(res->loaded, sizeof(res->loaded), "%s", name);
	}
	/* The previous adapter, and any that failed attempts loaded since. */
	{
		json_t *old = json_array(), *e;
		size_t i;

		if (*mv->prev_loaded)
			json_array_append_new(old, json_string(mv->prev_loaded));
		json_array_foreach(mv->stray, i, e)
		{
			if (!sluice__jarray_has(old, sluice__jstr(e)))
				json_array_append(old, e);
		}
		json_array_foreach(old, i, e)
		{
			const char *gone = sluice__jstr(e);
			if (!strcmp(gone, res->loaded))
				continue;
			if (post_json(repo, mv->hook, "/v1/unload_lora_adapter",
			              json_pack("{s:s}", "lora_name", gone), res, &answer) < 0) {
				ok = 0;
			} else if (!is_2xx(res->status) && res->status != 404) {
				/* 404: it is not loaded (a restarted server); what we wanted. */
				say(res, "unloading %s: the server answered HTTP %ld", gone,
				    res->status);
				ok = 0;
			}
		}
		json_decref(old);
	}
	res->ok = ok;
done:
	if (error < 0)
		say(res, "%s", sluice_ctx_errmsg(repo->ctx));
	sluice_buf__dispose(&answer);
	sluice_version__dispose(&v);
	return error;
}

/* An adapter's name from a server's path: its last component, without ".gguf". */
static void adapter_name_of(char *out, size_t len, const char *path)
{
	size_t n = strlen(path);
	const char *start;

	while (n > 1 && path[n - 1] == '/')
		n--;
	start = path + n;
	while (start > path && start[-1] != '/')
		start--;
	n -= (size_t)(start - path);
	if (n > 5 && !strncmp(start + n - 5, ".gguf", 5))
		n -= 5;
	snprintf(out, len, "%.*s", (int)n, start);
}

/*
 * llama.cpp's server loads its adapters at start-up (--lora FILE) and only
 * changes their scales at run time: GET /lora-adapters, match each loaded
 * adapter to the state's by name (the file's name without ".gguf", as
 * sluice export --gguf writes NAME.gguf), and POST every scale: the
 * state's for its adapters, 0 for the rest. An adapter of the state the
 * server did not load is a failure that says how to restart it.
 */
static int llamacpp(sluice_repo *repo, const sluice_hook_move *mv, sluice_hook_result *res)
{
	const sluice_hook *h = mv->hook;
	sluice_version v;
	sluice_buf answer = {0};
	json_t *loaded = NULL, *set = NULL, *sa, *la;
	json_error_t jerr;
	char url[2200];
	size_t i, k, used = 0;
	int error;

	memset(&v, 0, sizeof(v));
	if ((error = load_version(repo, &v, mv->to, res)) < 0)
		goto done;
	endpoint(url, sizeof(url), h->url, "/lora-adapters");
	if (http(repo->ctx, "GET", url, NULL, NULL, 0, h->timeout, &res->status, &answer,
	         res->error, sizeof(res->error)) < 0)
		goto done;
	keep_answer(res, &answer);
	if (!is_2xx(res->status)) {
		say(res, "GET %s: the server answered HTTP %ld", url, res->status);
		goto done;
	}
	loaded = answer.ptr ? json_loadb((char *)answer.ptr, answer.len, 0, &jerr) : NULL;
	if (!json_is_array(loaded)) {
		say(res, "GET %s: expected a JSON array of {id, path, scale}", url);
		goto done;
	}
	set = json_array();
	json_array_foreach(loaded, k, la)
	{
		char name[256];
		double scale = 0;
		if (!json_is_integer(json_object_get(la, "id")) ||
		    !json_is_string(json_object_get(la, "path"))) {
			say(res, "GET %s: entry %zu has no integer id or string path", url, k);
			goto done;
		}
		adapter_name_of(name, sizeof(name), json_string_value(json_object_get(la, "path")));
		json_array_foreach(json_object_get(v.state, "adapters"), i, sa)
		{
			if (strcmp(sluice__jstr(json_object_get(sa, "name")), name))
				continue;
			scale = json_number_value(json_object_get(sa, "scale"));
			used |= (size_t)1 << (i < 63 ? i : 63);
			if (strlen(res->loaded) + strlen(name) + 24 < sizeof(res->loaded))
				snprintf(res->loaded + strlen(res->loaded),
				         sizeof(res->loaded) - strlen(res->loaded), "%s%s=%g",
				         *res->loaded ? " " : "", name, scale);
		}
		json_array_append_new(set, json_pack("{s:O,s:f}", "id", json_object_get(la, "id"),
		                                     "scale", scale));
	}
	json_array_foreach(json_object_get(v.state, "adapters"), i, sa)
	{
		if (i < 63 && (used >> i) & 1)
			continue;
		say(res,
		    "adapter %s of version %.12s is not loaded by the llama.cpp server at %s; "
		    "restart it with --lora %s.gguf (sluice export %.12s --gguf DIR writes the "
		    "files)",
		    sluice__jstr(json_object_get(sa, "name")), mv->to, h->url,
		    sluice__jstr(json_object_get(sa, "name")), mv->to);
		goto done;
	}
	if (post_json(repo, h, "/lora-adapters", set, res, &answer) < 0) {
		set = NULL;
		goto done;
	}
	set = NULL;
	res->ok = is_2xx(res->status);
	if (!res->ok)
		say(res, "POST /lora-adapters: the server answered HTTP %ld", res->status);
done:
	if (error < 0)
		say(res, "%s", sluice_ctx_errmsg(repo->ctx));
	json_decref(loaded);
	json_decref(set);
	sluice_buf__dispose(&answer);
	sluice_version__dispose(&v);
	return error;
}

int sluice_hooks__attempt(sluice_repo *repo, const sluice_hook_move *mv, sluice_hook_result *res)
{
	const char *type = mv->hook->type;

	if (!strcmp(type, "webhook"))
		return webhook(repo, mv, res);
	if (!strcmp(type, "vllm"))
		return vllm(repo, mv, res);
	return llamacpp(repo, mv, res);
}
