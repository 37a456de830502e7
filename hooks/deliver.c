/*
 * hooks/deliver.c - one delivery attempt per hook type: a signed webhook
 * (Standard Webhooks), a vLLM server's LoRA load/unload, a llama.cpp
 * server's adapter scales (docs/hooks.md).
 */
#include "hooks.h"

#include "version.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The most of an answer kept in memory (the journal keeps a short excerpt). */
#define ANSWER_CAP (1u << 20)
/* The most memory-note text a webhook carries. */
#define NOTES_CAP (256u << 10)

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
		snprintf(err, errlen, "cannot start an HTTP request (libcurl)");
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
	sluice_key key = {0};
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
	if ((error = sluice_keys__load(repo->ctx, &key, h->key)) < 0)
		goto done;
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	if ((error = sluice_buf__printf(repo->ctx, &signed_msg, "%s.%s.%s", res->id, ts, text)) < 0)
		goto done;
	crypto_sign_detached(sig, NULL, signed_msg.ptr, signed_msg.len, key.sk);
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
			snprintf(res->error, sizeof(res->error), "the receiver answered HTTP %ld",
			         res->status);
	}
	keep_answer(res, &answer);
done:
	if (error < 0)
		snprintf(res->error, sizeof(res->error), "%s", sluice_ctx_errmsg(repo->ctx));
	curl_slist_free_all(headers);
	sluice_buf__dispose(&signed_msg);
	sluice_buf__dispose(&answer);
	sluice_key__dispose(&key);
	free(text);
	json_decref(body);
	json_decref(notes);
	sluice_version__dispose(&v);
	return error;
}

int sluice_hooks__attempt(sluice_repo *repo, const sluice_hook_move *mv, sluice_hook_result *res)
{
	const char *type = mv->hook->type;

	if (!strcmp(type, "webhook"))
		return webhook(repo, mv, res);
	snprintf(res->error, sizeof(res->error), "hook type %s is not supported by this build",
	         type);
	return SLUICE_OK;
}
