/*
 * hooks/hooks.c - hooks that follow a channel: their configuration, the
 * outbox derived from the journal, journaling every attempt, and what
 * sluice status shows (docs/hooks.md).
 *
 * The outbox is not a file: what a hook has to deliver is computed from
 * the journal each time. A hook entry (action "hook") records each
 * attempt; the moves of a hook's channel after the last one its entries
 * acknowledge are due. A crash at any point therefore loses nothing that
 * the journal committed: a move is either acknowledged by an entry that
 * reached the journal, or it is delivered again (with the same delivery
 * id, so a receiver can tell). sluice/hooks-backoff.json only caches when
 * to try a failing hook again; deleting it loses nothing.
 */
#include "hooks.h"

#include "config.h"
#include "jindex.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* Attempts per hook and channel in one call, and the backoff between them. */
#define ATTEMPTS_PER_CALL 3
#define BACKOFF_FIRST_MS 250
/* Across processes: the wait after a failed call doubles from this, capped. */
#define BACKOFF_CALL_S 5
#define BACKOFF_CALL_MAX_S 3600
/* At most this many moves per hook and channel in one round (the rest wait). */
#define MAX_DUE 256

unsigned sluice_ctx_journal_writes(const sluice_ctx *ctx)
{
	return ctx ? ctx->journal_writes : 0;
}

void sluice_hook__dispose(sluice_hook *h)
{
	if (!h)
		return;
	free(h->url);
	for (size_t i = 0; i < h->nchannels; i++)
		free(h->channels[i]);
	free(h->channels);
	memset(h, 0, sizeof(*h));
}

static int name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	/* As sluice config takes them (core/config.c): letters, digits, '-' and '_'. */
	return n >= 1 && n <= 64 && name[0] != '-' &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
	               n;
}

static int type_ok(const char *type)
{
	return type &&
	       (!strcmp(type, "webhook") || !strcmp(type, "vllm") || !strcmp(type, "llamacpp"));
}

static int url_ok(const char *url)
{
	size_t n = url ? strlen(url) : 0;

	if (n > 2048 ||
	    (strncmp(url ? url : "", "http://", 7) && strncmp(url ? url : "", "https://", 8)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
			return 0;
	return n > 8;
}

/* ---- configuration (git config of the repository) ------------------------ */

static int cfg_error(sluice_repo *repo, int giterr, const char *what)
{
	return sluice_ctx__giterror(repo->ctx, giterr, "cannot read %s in %s/config", what,
	                            repo->path);
}

static int load_one(sluice_repo *repo, git_config *cfg, sluice_hook *h, const char *name)
{
	sluice_ctx *ctx = repo->ctx;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	char key[160], *s = NULL;
	int error, b;
	int64_t v;

	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->timeout = 10;
	snprintf(key, sizeof(key), "hook.%s.type", name);
	if ((error = sluice_config__string_in(repo, cfg, &s, key)) < 0)
		return error;
	if (!type_ok(s)) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s/config: %s is '%s'; expected webhook, vllm or llamacpp", repo->path,
		        key, s ? s : "");
		free(s);
		return error;
	}
	snprintf(h->type, sizeof(h->type), "%s", s);
	free(s);
	snprintf(key, sizeof(key), "hook.%s.url", name);
	if ((error = sluice_config__string_in(repo, cfg, &h->url, key)) < 0)
		return error;
	if (!url_ok(h->url))
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s/config: %s is '%s'; expected an http:// or https:// URL", repo->path,
		        key, h->url ? h->url : "");
	snprintf(key, sizeof(key), "hook.%s.key", name);
	if ((error = sluice_config__string_in(repo, cfg, &s, key)) < 0)
		return error;
	if (!s || sluice_keys__check_name(ctx, s) < 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s/config: %s must name the key that signs the hook's "
		                          "journal entries",
		                          repo->path, key);
		free(s);
		return error;
	}
	snprintf(h->key, sizeof(h->key), "%s", s);
	free(s);
	snprintf(key, sizeof(key), "hook.%s.notes", name);
	if ((error = git_config_get_bool(&b, cfg, key)) == 0)
		h->notes = b;
	else if (error != GIT_ENOTFOUND)
		return cfg_error(repo, error, key);
	snprintf(key, sizeof(key), "hook.%s.since", name);
	if ((error = git_config_get_int64(&v, cfg, key)) == 0 && v >= 0)
		h->since = (uint64_t)v;
	else if (error < 0 && error != GIT_ENOTFOUND)
		return cfg_error(repo, error, key);
	snprintf(key, sizeof(key), "hook.%s.timeout", name);
	if ((error = git_config_get_int64(&v, cfg, key)) == 0 && v > 0 && v <= 3600)
		h->timeout = (long)v;
	else if (error < 0 && error != GIT_ENOTFOUND)
		return cfg_error(repo, error, key);
	snprintf(key, sizeof(key), "hook.%s.channel", name);
	if ((error = git_config_multivar_iterator_new(&it, cfg, key, NULL)) < 0)
		return cfg_error(repo, error, key);
	while ((error = git_config_next(&e, it)) == 0) {
		char **p;
		if (!sluice_channel__name_ok(e->value)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s/config: %s '%s' is not a channel name",
			                          repo->path, key, e->value);
			goto done;
		}
		if (!(p = sluice__realloc(ctx, h->channels, (h->nchannels + 1) * sizeof(*p))) ||
		    !(p[h->nchannels] = sluice__strdup(ctx, e->value))) {
			if (p)
				h->channels = p;
			error = SLUICE_ENOMEM;
			goto done;
		}
		h->channels = p;
		h->nchannels++;
	}
	error = error == GIT_ITEROVER ? SLUICE_OK : cfg_error(repo, error, key);
	if (error == 0 && h->nchannels == 0)
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s/config: hook %s follows no channel (%s)", repo->path,
		                          name, key);
done:
	git_config_iterator_free(it);
	return error;
}

int sluice_hooks__load(sluice_repo *repo, sluice_hook **out, size_t *n)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	sluice_hook *hooks = NULL;
	size_t count = 0;
	int error;

	*out = NULL;
	*n = 0;
	/* The repository's own config file only, as sluice config reads it (docs/cli.md). */
	{
		git_config *local = NULL;
		if ((error = sluice_config__open_local(repo, &local)) == SLUICE_ENOTFOUND) {
			sluice_ctx_clear_error(repo->ctx);
			return SLUICE_OK; /* no config file of its own: no hooks */
		}
		if (error < 0)
			return error;
		error = git_config_snapshot(&cfg, local);
		git_config_free(local);
		if (error < 0)
			return cfg_error(repo, error, "the configuration");
	}
	/*
	 * Every entry, filtered here: libgit2's regex iterator leaks PCRE2
	 * match data (LeakSanitizer, libgit2 1.5), and this runs after every
	 * write command.
	 */
	if ((error = git_config_iterator_new(&it, cfg)) < 0) {
		error = cfg_error(repo, error, "hook.*.type");
		goto done;
	}
	while ((error = git_config_next(&e, it)) == 0) {
		char name[160];
		size_t len = strlen(e->name);
		sluice_hook *p;

		/* "hook." NAME ".type"; NAME keeps its case (a git subsection). */
		if (len < 11 || len - 10 >= sizeof(name) || strncmp(e->name, "hook.", 5) ||
		    strcmp(e->name + len - 5, ".type"))
			continue;
		memcpy(name, e->name + 5, len - 10);
		name[len - 10] = 0;
		if (!name_ok(name)) {
			error = sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
			                          "%s/config: '%s' is not a hook name (1-64 of "
			                          "A-Z a-z 0-9 _ -)",
			                          repo->path, name);
			goto done;
		}
		if (!(p = sluice__realloc(repo->ctx, hooks, (count + 1) * sizeof(*p)))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		hooks = p;
		if ((error = load_one(repo, cfg, &hooks[count], name)) < 0) {
			sluice_hook__dispose(&hooks[count]);
			goto done;
		}
		count++;
	}
	error = error == GIT_ITEROVER ? SLUICE_OK : cfg_error(repo, error, "hook.*.type");
done:
	git_config_iterator_free(it);
	git_config_free(cfg);
	if (error < 0) {
		for (size_t i = 0; i < count; i++)
			sluice_hook__dispose(&hooks[i]);
		free(hooks);
		return error;
	}
	*out = hooks;
	*n = count;
	return SLUICE_OK;
}

static void free_hooks(sluice_hook *hooks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sluice_hook__dispose(&hooks[i]);
	free(hooks);
}

static json_t *hook_json(const sluice_hook *h)
{
	json_t *chans = json_array();

	for (size_t i = 0; i < h->nchannels; i++)
		json_array_append_new(chans, json_string(h->channels[i]));
	return json_pack("{s:s,s:s,s:s,s:o,s:s,s:b,s:I,s:I}", "name", h->name, "type", h->type,
	                 "url", h->url, "channels", chans, "key", h->key, "notes", h->notes,
	                 "since", (json_int_t)h->since, "timeout", (json_int_t)h->timeout);
}

int sluice_hooks_add(sluice_repo *repo, const sluice_hook_opts *o, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_hook *hooks = NULL, *h = NULL;
	sluice_key key = {0};
	sluice_jstate st;
	size_t n = 0, i;
	char k[160], since[32];
	int error;

	memset(&st, 0, sizeof(st));
	if (!name_ok(o->name))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "refusing hook name '%s': use 1-64 of A-Z a-z 0-9 _ -, "
		                         "not starting with '-'",
		                         o->name ? o->name : "");
	if (!type_ok(o->type))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "hook %s: --type '%s' is not webhook, vllm or llamacpp",
		                         o->name, o->type ? o->type : "");
	if (!url_ok(o->url))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "hook %s: --url '%s' is not an http:// or https:// URL",
		                         o->name, o->url ? o->url : "");
	if (!o->nchannels)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "hook %s follows no channel: give --channel C", o->name);
	for (i = 0; i < o->nchannels; i++)
		if (!sluice_channel__name_ok(o->channels[i]))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "hook %s: --channel '%s' is not a channel name",
			                         o->name, o->channels[i]);
	if (o->notes && strcmp(o->type, "webhook"))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "hook %s: --notes is for webhooks (a %s server is given "
		                         "adapters, not notes)",
		                         o->name, o->type);
	/* Its entries are signed by this key: it must be here and an operator's. */
	if ((error = sluice_repo__signing_key(repo, &key, o->key, "operator")) < 0)
		return sluice_ctx__wrap(ctx, error, "hook %s: --key", o->name);
	sluice_key__dispose(&key);
	if ((error = sluice_hooks__load(repo, &hooks, &n)) < 0)
		return error;
	for (i = 0; i < n; i++)
		if (!strcmp(hooks[i].name, o->name)) {
			free_hooks(hooks, n);
			return sluice_ctx__error(
			        ctx, SLUICE_EEXISTS,
			        "hook %s is already configured (sluice hook remove "
			        "%s first)",
			        o->name, o->name);
		}
	free_hooks(hooks, n);
	if ((error = sluice_journal__read(repo, &st)) < 0)
		goto done;
	snprintf(since, sizeof(since), "%llu", (unsigned long long)st.seq);
	{
		/* Through core/config.c, which checks each key and value as sluice config does. */
		const char *const fields[][2] = {{"url", o->url},
		                                 {"key", o->key},
		                                 {"notes", o->notes ? "true" : "false"},
		                                 {"since", since}};
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			snprintf(k, sizeof(k), "hook.%s.%s", o->name, fields[i][0]);
			if ((error = sluice_config__set_string(repo, k, fields[i][1], 0)) < 0)
				goto done;
		}
		snprintf(k, sizeof(k), "hook.%s.channel", o->name);
		for (i = 0; i < o->nchannels; i++)
			if ((error = sluice_config__set_string(repo, k, o->channels[i], i > 0)) < 0)
				goto done;
		/* The type last: a hook exists once its type is set. */
		snprintf(k, sizeof(k), "hook.%s.type", o->name);
		if ((error = sluice_config__set_string(repo, k, o->type, 0)) < 0)
			goto done;
	}
	if ((error = sluice_hooks__load(repo, &hooks, &n)) < 0)
		goto done;
	for (i = 0; i < n; i++)
		if (!strcmp(hooks[i].name, o->name))
			h = &hooks[i];
	error = h ? sluice_repo__report(ctx, report, json_pack("{s:o}", "hook", hook_json(h)))
	          : sluice_ctx__error(ctx, SLUICE_EIO, "hook %s did not reach %s/config", o->name,
	                              repo->path);
	free_hooks(hooks, n);
done:
	sluice_journal__dispose(&st);
	return error;
}

int sluice_hooks_list(sluice_repo *repo, char **report)
{
	sluice_hook *hooks = NULL;
	json_t *arr = json_array();
	size_t n = 0;
	int error;

	if ((error = sluice_hooks__load(repo, &hooks, &n)) < 0) {
		json_decref(arr);
		return error;
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, hook_json(&hooks[i]));
	free_hooks(hooks, n);
	return sluice_repo__report(repo->ctx, report, json_pack("{s:o}", "hooks", arr));
}

int sluice_hooks_remove(sluice_repo *repo, const char *name, char **report)
{
	static const char *const fields[] = {"type",  "url",     "key",    "notes",
	                                     "since", "timeout", "channel"};
	char k[160];
	int error, found = 0;

	if (!name_ok(name))
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID, "'%s' is not a hook name",
		                         name ? name : "");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		snprintf(k, sizeof(k), "hook.%s.%s", name, fields[i]);
		if ((error = sluice_config__unset(repo, k)) == 0)
			found = 1;
		else if (error != SLUICE_ENOTFOUND)
			return error;
	}
	sluice_ctx_clear_error(repo->ctx);
	if (!found)
		return sluice_ctx__error(repo->ctx, SLUICE_ENOTFOUND, "no hook %s is configured",
		                         name);
	return sluice_repo__report(repo->ctx, report,
	                           json_pack("{s:s,s:b}", "hook", name, "removed", 1));
}

/* ---- the outbox, derived from the journal -------------------------------- */

void sluice_hooks__delivery_id(char out[64], const char *hook, const char *entry)
{
	unsigned char h[SLUICE_B2_LEN];
	crypto_generichash_state s;
	char hex[33];

	/* The hook's name and the move's entry: the same for every retry, anywhere. */
	crypto_generichash_init(&s, NULL, 0, sizeof(h));
	crypto_generichash_update(&s, (const unsigned char *)"sluice-hook-delivery\n", 21);
	crypto_generichash_update(&s, (const unsigned char *)hook, strlen(hook));
	crypto_generichash_update(&s, (const unsigned char *)"\n", 1);
	crypto_generichash_update(&s, (const unsigned char *)entry, strlen(entry));
	crypto_generichash_final(&s, h, sizeof(h));
	sluice__hex(hex, h, 16);
	snprintf(out, 64, "msg_%s", hex);
}

static void track_key(char *out, size_t len, const char *hook, const char *channel)
{
	snprintf(out, len, "%s/%s", hook, channel);
}

struct scan {
	sluice_jindex_read *r;
	json_t *track; /* "hook/channel" -> what its entries say */
};

/* One hook entry: an acknowledgement, or a failed attempt since the last one. */
static int scan_hook_entry(void *data, uint64_t seq)
{
	struct scan *sc = data;
	json_t *rec = NULL, *t;
	char key[160];
	int error;

	if ((error = sluice_jindex__entry(sc->r, seq, NULL, &rec)) < 0)
		return error;
	track_key(key, sizeof(key), sluice__jstr(json_object_get(rec, "hook")),
	          sluice__jstr(json_object_get(rec, "channel")));
	if (!(t = json_object_get(sc->track, key))) {
		t = json_pack("{s:i,s:i}", "acked_move", 0, "failures", 0);
		json_object_set_new(sc->track, key, t);
	}
	if (json_is_true(json_object_get(rec, "ok"))) {
		json_object_set_new(t, "acked_move",
		                    json_integer(json_integer_value(json_object_get(rec, "move"))));
		json_object_set_new(t, "acknowledged",
		                    json_pack("{s:O,s:O,s:O,s:O?,s:O?,s:I}", "version",
		                              json_object_get(rec, "version"), "move",
		                              json_object_get(rec, "move"), "time",
		                              json_object_get(rec, "time"), "loaded",
		                              json_object_get(rec, "loaded"), "state",
		                              json_object_get(rec, "state"), "entry_seq",
		                              (json_int_t)seq));
		json_object_set_new(t, "failures", json_integer(0));
		json_object_del(t, "last_error");
		json_object_del(t, "stray");
	} else {
		const char *loaded = sluice__jstr(json_object_get(rec, "loaded"));
		json_t *stray = json_object_get(t, "stray");

		/* A failed vLLM attempt may still have loaded its adapter. */
		if (*loaded) {
			if (!stray) {
				stray = json_array();
				json_object_set_new(t, "stray", stray);
			}
			if (!sluice__jarray_has(stray, loaded))
				json_array_append_new(stray, json_string(loaded));
		}
		json_object_set_new(
		        t, "failures",
		        json_integer(json_integer_value(json_object_get(t, "failures")) + 1));
		json_object_set_new(t, "last_error",
		                    json_pack("{s:O,s:O,s:O?,s:O?}", "time",
		                              json_object_get(rec, "time"), "move",
		                              json_object_get(rec, "move"), "error",
		                              json_object_get(rec, "error"), "status",
		                              json_object_get(rec, "status")));
	}
	json_decref(rec);
	return 0;
}

/* What every hook's entries say, keyed "hook/channel" (new reference in *out). */
static int read_track(sluice_jindex_read *r, json_t **out)
{
	struct scan sc = {r, json_object()};
	int error = sluice_jindex__scan(r, SLUICE_JX_ACTION, "hook", NULL, scan_hook_entry, &sc);

	if (error < 0) {
		json_decref(sc.track);
		return error;
	}
	*out = sc.track;
	return SLUICE_OK;
}

/*
 * The moves hook h still owes channel: a webhook every move after the
 * last acknowledged one (and after the hook was added), in order; a
 * server only the latest, naming the ones it supersedes.
 */
static int due_moves(sluice_jindex_read *r, const sluice_hook *h, const char *channel,
                     json_t *track, json_t **out)
{
	json_t *due = json_array(), *super = json_array();
	uint64_t acked = (uint64_t)json_integer_value(json_object_get(track, "acked_move"));
	uint64_t after = acked, seq;
	int webhook = !strcmp(h->type, "webhook"), error;

	if (webhook && h->since > after)
		after = h->since;
	for (;;) {
		json_t *rec = NULL;
		git_oid id;
		char hex[GIT_OID_HEXSZ + 1];

		if ((error = sluice_jindex__next_move(r, channel, after, &seq)) < 0)
			goto fail;
		if (!seq)
			break;
		after = seq;
		if (webhook && json_array_size(due) >= MAX_DUE)
			break;
		if ((error = sluice_jindex__entry(r, seq, &id, &rec)) < 0)
			goto fail;
		git_oid_tostr(hex, sizeof(hex), &id);
		if (!webhook && json_array_size(due)) {
			json_array_append(super, json_object_get(json_array_get(due, 0), "seq"));
			json_array_clear(due);
		}
		json_array_append_new(due, json_pack("{s:I,s:s,s:O,s:O?,s:O,s:O,s:O?}", "seq",
		                                     (json_int_t)seq, "entry", hex, "action",
		                                     json_object_get(rec, "action"), "from",
		                                     json_object_get(rec, "from"), "to",
		                                     json_object_get(rec, "to"), "time",
		                                     json_object_get(rec, "time"), "reason",
		                                     json_object_get(rec, "reason")));
		json_decref(rec);
	}
	if (json_array_size(super) && json_array_size(due))
		json_object_set(json_array_get(due, 0), "superseded", super);
	json_decref(super);
	*out = due;
	return SLUICE_OK;
fail:
	json_decref(due);
	json_decref(super);
	return error;
}

/* ---- journaling an attempt ----------------------------------------------- */

static int decide_hook(sluice_repo *repo, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	const sluice_key *key = ((void **)arg)[0];
	json_t *rec = ((void **)arg)[1];
	int error;

	/* A hook entry changes nothing but the journal: only its record. */
	if ((error = sluice_journal__check_role(repo, st, key, "operator")) < 0)
		return error;
	out->record = json_deep_copy(rec);
	return out->record
	               ? SLUICE_OK
	               : sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "cannot build hook record");
}

/* Valid UTF-8 of at most cap bytes from s (invalid bytes become '?'). */
static void excerpt(char *out, size_t cap, const char *s)
{
	size_t n = 0, i = 0, len = strlen(s);

	while (i < len && n + 4 < cap) {
		size_t k;
		for (k = 1; k <= 4 && i + k <= len; k++)
			if (sluice__utf8_valid((const unsigned char *)s + i, k))
				break;
		if (k > 4 || i + k > len ||
		    (k == 1 && (unsigned char)s[i] < 0x20 && s[i] != '\n')) {
			out[n++] = '?';
			i++;
			continue;
		}
		memcpy(out + n, s + i, k);
		n += k;
		i += k;
	}
	out[n] = 0;
}

static json_t *attempt_record(const sluice_hook *h, const char *channel, json_t *mv,
                              const sluice_hook_result *res, unsigned attempt)
{
	char answer[sizeof(res->answer)], err[sizeof(res->error)];
	json_t *rec;

	excerpt(answer, sizeof(answer), res->answer);
	excerpt(err, sizeof(err), res->error);
	rec = json_pack("{s:s,s:s,s:s,s:O,s:O,s:O,s:b,s:I,s:i}", "hook", h->name, "type", h->type,
	                "channel", channel, "move", json_object_get(mv, "seq"), "entry",
	                json_object_get(mv, "entry"), "version", json_object_get(mv, "to"), "ok",
	                res->ok, "status", (json_int_t)res->status, "attempt", (int)attempt);
	if (!rec)
		return NULL;
	if (*res->state)
		json_object_set_new(rec, "state", json_string(res->state));
	if (*answer)
		json_object_set_new(rec, "answer", json_string(answer));
	if (*err)
		json_object_set_new(rec, "error", json_string(err));
	if (*res->id)
		json_object_set_new(rec, "id", json_string(res->id));
	if (strcmp(h->type, "webhook"))
		json_object_set_new(rec, "loaded", json_string(res->loaded));
	if (json_object_get(mv, "superseded"))
		json_object_set(rec, "superseded", json_object_get(mv, "superseded"));
	return rec;
}

/* ---- the backoff cache and the delivery lock ----------------------------- */

static void backoff_path(sluice_repo *repo, char *out, size_t len)
{
	snprintf(out, len, "%s/hooks-backoff.json", repo->sdir);
}

static json_t *backoff_read(sluice_repo *repo)
{
	char path[4200];
	json_error_t jerr;
	json_t *v;

	backoff_path(repo, path, sizeof(path));
	/* A cache: missing or unreadable means "no backoff". */
	v = json_load_file(path, 0, &jerr);
	if (!json_is_object(v)) {
		json_decref(v);
		v = json_object();
	}
	return v;
}

static void backoff_write(sluice_repo *repo, json_t *v)
{
	char path[4200], tmp[4300];

	backoff_path(repo, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
	/* Not fsynced: losing it only means trying a failing hook sooner. */
	if (json_dump_file(v, tmp, JSON_COMPACT | JSON_SORT_KEYS) == 0 && rename(tmp, path) == 0)
		return;
	unlink(tmp);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The delivery lock (sluice/hooks.flock): one process delivers at a time,
 * so two do not send the same move at once. The kernel drops it when its
 * holder dies, so a killed delivery never blocks the next.
 */
static int hooks_lock(sluice_repo *repo, int *fd, double wait)
{
	char path[4200];
	double until = sluice__monotonic_s() + wait;

	snprintf(path, sizeof(path), "%s/hooks.flock", repo->sdir);
	if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return sluice_ctx__oserror(repo->ctx, "cannot open %s", path);
	while (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int error = sluice_ctx__oserror(repo->ctx, "cannot lock %s", path);
			close(*fd);
			*fd = -1;
			return error;
		}
		if (sluice__monotonic_s() >= until) {
			close(*fd);
			*fd = -1;
			return 1; /* busy */
		}
		sluice__sleep_s(0.05);
	}
	return SLUICE_OK;
}

/* ---- delivering ---------------------------------------------------------- */

struct round {
	unsigned flags;
	json_t *attempts; /* every attempt's record, for the report */
	json_t *left;     /* {hook, channel, pending, error} still owed */
	json_t *errors;   /* hooks that could not run at all */
	json_t *backoff;  /* the cache, rewritten at the end */
	unsigned delivered, failed;
	size_t pending;
};

static void note_left(struct round *rd, const sluice_hook *h, const char *channel, size_t pending,
                      const char *error)
{
	rd->pending += pending;
	json_array_append_new(rd->left, json_pack("{s:s,s:s,s:s,s:I,s:s}", "hook", h->name, "type",
	                                          h->type, "channel", channel, "pending",
	                                          (json_int_t)pending, "error", error));
}

/* Deliver what hook h owes channel: each move in order, a bounded number of attempts each. */
static int deliver_channel(sluice_repo *repo, struct round *rd, const sluice_hook *h,
                           const sluice_key *key, const char *channel)
{
	sluice_jindex_read *r = NULL;
	json_t *track = NULL, *t = NULL, *due = NULL, *mv, *cache;
	char tk[160];
	size_t i;
	int error;

	/* A short read transaction: nothing is held across the network. */
	if ((error = sluice_jindex__read_begin(repo, &r)) < 0)
		return error;
	if ((error = read_track(r, &track)) == 0) {
		track_key(tk, sizeof(tk), h->name, channel);
		t = json_object_get(track, tk);
		error = due_moves(r, h, channel, t, &due);
	}
	sluice_jindex__read_end(r);
	if (error < 0)
		goto done;
	if (!json_array_size(due)) {
		json_object_del(rd->backoff, tk);
		goto done;
	}
	cache = json_object_get(rd->backoff, tk);
	if ((rd->flags & SLUICE_HOOKS_AFTER_WRITE) && cache &&
	    json_number_value(json_object_get(cache, "next")) > now_s() &&
	    json_integer_value(
	            json_object_get(json_array_get(due, json_array_size(due) - 1), "seq")) <=
	            json_integer_value(json_object_get(cache, "move"))) {
		/* Failing recently and nothing new: wait for the backoff. */
		note_left(rd, h, channel, json_array_size(due), "waiting to retry after a failure");
		goto done;
	}
	json_array_foreach(due, i, mv)
	{
		sluice_hook_move m;
		sluice_hook_result res;
		json_t *ack = json_object_get(t, "acknowledged");
		int ok = 0;

		memset(&m, 0, sizeof(m));
		m.hook = h;
		m.key = key;
		m.channel = channel;
		m.seq = (uint64_t)json_integer_value(json_object_get(mv, "seq"));
		snprintf(m.entry, sizeof(m.entry), "%s",
		         sluice__jstr(json_object_get(mv, "entry")));
		snprintf(m.to, sizeof(m.to), "%s", sluice__jstr(json_object_get(mv, "to")));
		snprintf(m.from, sizeof(m.from), "%s", sluice__jstr(json_object_get(mv, "from")));
		snprintf(m.action, sizeof(m.action), "%s",
		         sluice__jstr(json_object_get(mv, "action")));
		snprintf(m.time, sizeof(m.time), "%s", sluice__jstr(json_object_get(mv, "time")));
		m.reason = json_string_value(json_object_get(mv, "reason"));
		m.prev_loaded = sluice__jstr(json_object_get(ack, "loaded"));
		m.stray = json_object_get(t, "stray");
		for (unsigned a = 1; a <= ATTEMPTS_PER_CALL && !ok; a++) {
			json_t *rec;
			void *arg[2];

			memset(&res, 0, sizeof(res));
			if (a > 1)
				sluice__sleep_s(
				        sluice__backoff_s(BACKOFF_FIRST_MS / 1000.0, a - 2, 10));
			if (sluice_hooks__attempt(repo, &m, &res) < 0 && !*res.error)
				snprintf(res.error, sizeof(res.error), "%s",
				         sluice_ctx_errmsg(repo->ctx));
			ok = res.ok;
			if (!(rec = attempt_record(h, channel, mv, &res, a))) {
				error = sluice_ctx__error(repo->ctx, SLUICE_ENOMEM,
				                          "cannot build hook record");
				goto done;
			}
			arg[0] = (void *)key;
			arg[1] = rec;
			/*
			 * The attempt and the answer, journaled. If this fails after
			 * a delivery, the move stays due and is sent again with the
			 * same id: at least once, never silently lost.
			 */
			if (sluice_journal__transact(repo, NULL, key, "hook", decide_hook, arg) <
			    0) {
				json_object_set_new(rec, "journal_error",
				                    json_string(sluice_ctx_errmsg(repo->ctx)));
				ok = 0;
				a = ATTEMPTS_PER_CALL;
			}
			sluice_ctx_clear_error(repo->ctx);
			json_array_append_new(rd->attempts, rec);
			if (ok)
				rd->delivered++;
			else
				rd->failed++;
		}
		if (!ok) {
			unsigned fails =
			        (unsigned)json_integer_value(json_object_get(cache, "failures"));
			double wait = sluice__backoff_s(BACKOFF_CALL_S, fails, BACKOFF_CALL_MAX_S);
			json_t *last =
			        json_array_get(rd->attempts, json_array_size(rd->attempts) - 1);

			json_object_set_new(
			        rd->backoff, tk,
			        json_pack("{s:i,s:f,s:I}", "failures", (int)fails + 1, "next",
			                  now_s() + wait, "move",
			                  json_integer_value(json_object_get(
			                          json_array_get(due, json_array_size(due) - 1),
			                          "seq"))));
			/* In order: a later move waits for this one. */
			note_left(rd, h, channel, json_array_size(due) - i,
			          json_object_get(last, "journal_error")
			                  ? sluice__jstr(json_object_get(last, "journal_error"))
			                  : sluice__jstr(json_object_get(last, "error")));
			break;
		}
		/* What this delivery loaded is what the next one replaces. */
		if (!t) {
			t = json_object();
			json_object_set_new(track, tk, t);
		}
		json_object_set_new(t, "acknowledged", json_pack("{s:s}", "loaded", res.loaded));
		json_object_del(t, "stray");
		if (i + 1 == json_array_size(due))
			json_object_del(rd->backoff, tk);
	}
done:
	json_decref(due);
	json_decref(track);
	return error;
}

static int deliver_round(sluice_repo *repo, struct round *rd, sluice_hook *hooks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sluice_key key = {0};
		const sluice_hook *h = &hooks[i];

		if (sluice_repo__signing_key(repo, &key, h->key, "operator") < 0) {
			/* Without its key no attempt could be journaled: it waits. */
			char msg[1200];
			snprintf(msg, sizeof(msg), "hook %s cannot sign its journal entries: %s",
			         h->name, sluice_ctx_errmsg(repo->ctx));
			json_array_append_new(rd->errors, json_string(msg));
			sluice_ctx_clear_error(repo->ctx);
			continue;
		}
		for (size_t c = 0; c < h->nchannels; c++) {
			if (deliver_channel(repo, rd, h, &key, h->channels[c]) < 0) {
				char msg[1200];
				snprintf(msg, sizeof(msg), "hook %s, channel %s: %s", h->name,
				         h->channels[c], sluice_ctx_errmsg(repo->ctx));
				json_array_append_new(rd->errors, json_string(msg));
				sluice_ctx_clear_error(repo->ctx);
			}
		}
		sluice_key__dispose(&key);
	}
	return SLUICE_OK;
}

int sluice_hooks_deliver(sluice_repo *repo, unsigned flags, double wait_seconds, char **report)
{
	struct round rd;
	json_t *before = NULL;
	sluice_hook *hooks = NULL;
	size_t n = 0;
	double deadline = sluice__monotonic_s() + (wait_seconds > 0 ? wait_seconds : 0);
	int error, lockfd = -1, busy = 0;

	memset(&rd, 0, sizeof(rd));
	rd.flags = flags;
	if ((error = sluice_hooks__load(repo, &hooks, &n)) < 0)
		return error;
	rd.attempts = json_array();
	rd.left = json_array();
	rd.errors = json_array();
	/* No hooks: touch nothing (no lock file, no cache). */
	if (n) {
		error = hooks_lock(repo, &lockfd,
		                   (flags & SLUICE_HOOKS_AFTER_WRITE)
		                           ? 0
		                           : (wait_seconds > 2 ? wait_seconds : 2));
		if (error < 0)
			goto done;
		busy = error == 1;
		error = 0;
	}
	if (n && !busy) {
		rd.backoff = backoff_read(repo);
		before = json_deep_copy(rd.backoff);
		for (unsigned rounds = 1;; rounds++) {
			unsigned delivered = rd.delivered;

			json_array_clear(rd.left);
			rd.pending = 0;
			deliver_round(repo, &rd, hooks, n);
			/*
			 * A move committed by another process while this one delivered
			 * (that process found the lock taken and left it to us): look
			 * again, a few times, while deliveries succeed.
			 */
			if (!rd.pending && rd.delivered > delivered && rounds < 4)
				continue;
			if (!rd.pending || (flags & SLUICE_HOOKS_AFTER_WRITE) ||
			    sluice__monotonic_s() >= deadline)
				break;
			/* Wait before the next round, within what --wait allows. */
			{
				double pause = sluice__backoff_s(1.0, 0, 30);
				if (sluice__monotonic_s() + pause > deadline)
					pause = deadline - sluice__monotonic_s();
				sluice__sleep_s(pause);
			}
		}
		/* Only when it changed: a write command with nothing due writes nothing. */
		if (!json_equal(before, rd.backoff))
			backoff_write(repo, rd.backoff);
	}
done:
	if (lockfd >= 0)
		close(lockfd);
	free_hooks(hooks, n);
	if (error == 0)
		error = sluice_repo__report(repo->ctx, report,
		                            json_pack("{s:i,s:i,s:I,s:b,s:O,s:O,s:O}", "delivered",
		                                      (int)rd.delivered, "failed", (int)rd.failed,
		                                      "pending", (json_int_t)rd.pending, "busy",
		                                      busy, "attempts", rd.attempts, "left",
		                                      rd.left, "errors", rd.errors));
	json_decref(rd.attempts);
	json_decref(rd.left);
	json_decref(rd.errors);
	json_decref(rd.backoff);
	json_decref(before);
	return error;
}

/* ---- status -------------------------------------------------------------- */

int sluice_hooks__status(sluice_repo *repo, json_t *channels)
{
	sluice_jindex_read *r = NULL;
	sluice_hook *hooks = NULL;
	json_t *track = NULL, *c, *cache = NULL;
	size_t n = 0, i;
	int error;

	if ((error = sluice_hooks__load(repo, &hooks, &n)) < 0 || n == 0)
		goto done;
	cache = backoff_read(repo);
	if ((error = sluice_jindex__read_begin(repo, &r)) < 0 ||
	    (error = read_track(r, &track)) < 0)
		goto done;
	json_array_foreach(channels, i, c)
	{
		const char *name = sluice__jstr(json_object_get(c, "name"));
		json_t *arr = json_array();

		for (size_t k = 0; k < n; k++) {
			const sluice_hook *h = &hooks[k];
			json_t *t, *due = NULL, *e, *ack, *bo;
			char tk[160];
			int follows = 0;

			for (size_t j = 0; j < h->nchannels; j++)
				follows |= !strcmp(h->channels[j], name);
			if (!follows)
				continue;
			track_key(tk, sizeof(tk), h->name, name);
			t = json_object_get(track, tk);
			if ((error = due_moves(r, h, name, t, &due)) < 0) {
				json_decref(arr);
				goto done;
			}
			ack = json_object_get(t, "acknowledged");
			e = json_pack("{s:s,s:s,s:s,s:O?,s:I,s:I,s:O?,s:b}", "hook", h->name,
			              "type", h->type, "url", h->url, "acknowledged", ack,
			              "pending", (json_int_t)json_array_size(due),
			              "failed_attempts",
			              json_integer_value(json_object_get(t, "failures")),
			              "last_error", json_object_get(t, "last_error"), "current",
			              ack && !strcmp(sluice__jstr(json_object_get(ack, "version")),
			                             sluice__jstr(json_object_get(c, "head"))));
			if (json_array_size(due) && (bo = json_object_get(cache, tk))) {
				char when[32];
				time_t tnext =
				        (time_t)json_number_value(json_object_get(bo, "next"));
				struct tm tm;
				gmtime_r(&tnext, &tm);
				strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
				json_object_set_new(e, "next_attempt", json_string(when));
			}
			json_array_append_new(arr, e);
			json_decref(due);
		}
		if (json_array_size(arr))
			json_object_set_new(c, "hooks", arr);
		else
			json_decref(arr);
	}
done:
	sluice_jindex__read_end(r);
	json_decref(track);
	json_decref(cache);
	free_hooks(hooks, n);
	return error;
}
