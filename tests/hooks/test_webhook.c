/*
 * tests/hooks/test_webhook.c - webhooks that follow a channel, against a
 * real receiver on loopback (tests/hooks/webhook_receiver.py, which
 * verifies the Ed25519 signature with the key `sluice key export` prints):
 * delivery after promote and rollback, every attempt journaled with the
 * answer, a receiver that is down (the move still succeeds; delivered later
 * with the same id), a sender killed mid-delivery (the next process sends
 * exactly the id the first one tried), replays refused, a forged hook entry
 * refused by verify, and what status shows.
 */
#include "hooktest.h"

#include "../../hooks/hooks.h"
#include "keys.h"

#include <curl/curl.h>

static int setup(void **state)
{
	*state = ht_setup("hooks");
	return 0;
}

static int teardown(void **state)
{
	ht_teardown(*state);
	return 0;
}

static void add_hook(ht_fixture *f, const char *name, const char *url, const char *extra)
{
	tu_run_result r =
	        ht_run(f, f->env_ops, "hook add %s --type webhook --url %s --channel prod %s", name,
	               url, extra ? extra : "");
	ht_ok(&r);
	tu_run_dispose(&r);
}

static void move(ht_fixture *f, const char *args)
{
	tu_run_result r = ht_run(f, f->env_ops, "%s", args);
	ht_ok(&r);
	tu_run_dispose(&r);
}

/* The body of an event, parsed. */
static json_t *body_of(json_t *event)
{
	json_error_t jerr;
	json_t *b = json_loads(json_string_value(json_object_get(event, "body")), 0, &jerr);

	assert_non_null(b);
	return b;
}

/* POST a recorded request again, headers as given; the HTTP status. */
static long repost(const char *url, const char *id, const char *ts, const char *sig,
                   const char *body)
{
	struct curl_slist *h = NULL;
	char line[512];
	long status = 0;
	CURL *c = curl_easy_init();

	snprintf(line, sizeof(line), "webhook-id: %s", id);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %s", ts);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "webhook-signature: %s", sig);
	h = curl_slist_append(h, line);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, stderr);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

/* The idx-th move of a channel: its journal entry and position (sluice audit log). */
static void entry_of_move(ht_fixture *f, const char *channel, size_t idx, char out[41],
                          json_int_t *seq)
{
	json_t *v = ht_json(f, "audit log --channel %s", channel), *e;
	size_t i, k = 0;

	*seq = 0;
	json_array_foreach(v, i, e)
	{
		const char *a = json_string_value(json_object_get(e, "action"));
		if (strcmp(a, "promote") && strcmp(a, "rollback") && strcmp(a, "reset"))
			continue;
		if (k++ == idx) {
			*seq = json_integer_value(json_object_get(e, "seq"));
			snprintf(out, 41, "%s", json_string_value(json_object_get(e, "entry")));
		}
	}
	assert_true(*seq > 0);
	json_decref(v);
}

static void test_webhook__promote_and_rollback_are_delivered_signed_and_journaled(void **state)
{
	ht_fixture *f = *state;
	ht_receiver rc = {0};
	json_t *acc, *b, *recs, *ch, *hk, *ev;
	char args[256], entry[41], id[64];
	json_int_t seq;
	tu_run_result r;

	ht_receiver_start(f, &rc, "rx", NULL);
	add_hook(f, "web", rc.url, "--key ops --notes");
	snprintf(args, sizeof(args), "promote %s --channel prod", f->base);
	move(f, args);
	snprintf(args, sizeof(args), "promote %s --channel prod", f->notes);
	move(f, args);
	move(f, "rollback prod --reason 'bad note'");

	/* Three moves, three verified deliveries, in order, each with its own id. */
	acc = ht_events(&rc, "accepted");
	assert_int_equal(json_array_size(acc), 3);
	for (size_t i = 0; i < 3; i++) {
		entry_of_move(f, "prod", i, entry, &seq);
		sluice_hooks__delivery_id(id, "web", entry);
		ev = json_array_get(acc, i);
		assert_string_equal(json_string_value(json_object_get(ev, "id")), id);
		b = body_of(ev);
		assert_string_equal(json_string_value(json_object_get(b, "id")), id);
		assert_string_equal(json_string_value(json_object_get(b, "type")), "channel.moved");
		assert_string_equal(json_string_value(json_object_get(b, "channel")), "prod");
		assert_string_equal(json_string_value(json_object_get(b, "entry")), entry);
		assert_int_equal(json_integer_value(json_object_get(b, "seq")), seq);
		assert_int_equal(strlen(json_string_value(json_object_get(b, "state"))), 64);
		if (i == 0) {
			assert_string_equal(json_string_value(json_object_get(b, "action")),
			                    "promote");
			assert_string_equal(json_string_value(json_object_get(b, "version")),
			                    f->base);
			assert_true(json_is_null(json_object_get(b, "from")));
			/* The base has no memory notes. */
			assert_int_equal(json_array_size(json_object_get(b, "notes")), 0);
		} else if (i == 1) {
			json_t *n = json_array_get(json_object_get(b, "notes"), 0);
			assert_string_equal(json_string_value(json_object_get(b, "from")), f->base);
			assert_string_equal(json_string_value(json_object_get(b, "to")), f->notes);
			assert_non_null(n);
			assert_string_equal(json_string_value(json_object_get(n, "text")),
			                    "Always answer in French.\n");
		} else {
			assert_string_equal(json_string_value(json_object_get(b, "action")),
			                    "rollback");
			assert_string_equal(json_string_value(json_object_get(b, "to")), f->base);
			assert_string_equal(json_string_value(json_object_get(b, "reason")),
			                    "bad note");
		}
		json_decref(b);
	}

	/* Every attempt is journaled, signed by the hook's key, with the answer. */
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *rec = json_array_get(recs, i);
		assert_true(json_is_true(json_object_get(rec, "ok")));
		assert_int_equal(json_integer_value(json_object_get(rec, "status")), 200);
		assert_string_equal(json_string_value(json_object_get(rec, "hook")), "web");
		assert_string_equal(
		        json_string_value(json_object_get(json_object_get(rec, "actor"), "name")),
		        "ops");
		assert_non_null(
		        strstr(json_string_value(json_object_get(rec, "answer")), "accepted"));
		assert_string_equal(
		        json_string_value(json_object_get(rec, "id")),
		        json_string_value(json_object_get(json_array_get(acc, i), "id")));
	}
	json_decref(recs);

	/* Status: the receiver acknowledged the head; nothing pending. */
	ch = ht_status_channel(f, "prod");
	hk = json_array_get(json_object_get(ch, "hooks"), 0);
	assert_non_null(hk);
	assert_string_equal(json_string_value(json_object_get(hk, "hook")), "web");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(hk, "acknowledged"), "version")),
	        f->base);
	assert_true(json_is_true(json_object_get(hk, "current")));
	assert_int_equal(json_integer_value(json_object_get(hk, "pending")), 0);
	json_decref(ch);

	/* Replays: the same request again is recognised by its id, not processed twice... */
	ev = json_array_get(acc, 2);
	assert_int_equal(repost(rc.url, json_string_value(json_object_get(ev, "id")),
	                        json_string_value(json_object_get(ev, "timestamp")),
	                        json_string_value(json_object_get(ev, "signature")),
	                        json_string_value(json_object_get(ev, "body"))),
	                 200);
	{
		json_t *dup = ht_events(&rc, "duplicate"), *acc2 = ht_events(&rc, "accepted");
		assert_int_equal(json_array_size(dup), 1);
		assert_int_equal(json_array_size(acc2), 3);
		json_decref(dup);
		json_decref(acc2);
	}
	/* ...a changed body fails the signature, and an old timestamp is refused. */
	{
		char *tampered = strdup(json_string_value(json_object_get(ev, "body")));
		char *p = strstr(tampered, "rollback");
		assert_non_null(p);
		memcpy(p, "promotex", 8);
		assert_int_equal(repost(rc.url, "msg_fresh",
		                        json_string_value(json_object_get(ev, "timestamp")),
		                        json_string_value(json_object_get(ev, "signature")),
		                        tampered),
		                 401);
		assert_int_equal(repost(rc.url, json_string_value(json_object_get(ev, "id")),
		                        "1000000000",
		                        json_string_value(json_object_get(ev, "signature")),
		                        json_string_value(json_object_get(ev, "body"))),
		                 400);
		free(tampered);
	}
	json_decref(acc);

	/* Hook entries change nothing: the journal verifies. */
	r = ht_run(f, f->env_ops, "verify");
	ht_ok(&r);
	tu_run_dispose(&r);
	ht_receiver_stop(&rc);
}

static void test_webhook__receiver_down_move_succeeds_and_is_delivered_later(void **state)
{
	ht_fixture *f = *state;
	ht_receiver rc = {0};
	json_t *recs, *rec, *ch, *hk, *acc;
	char args[256], url[128], entry[41], id[64];
	json_int_t seq;
	tu_run_result r;
	long port;

	/* A port nobody listens on: start a receiver to learn a free one, then stop it. */
	ht_receiver_start(f, &rc, "probe", NULL);
	port = rc.port;
	ht_receiver_stop(&rc);
	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/hook", port);
	add_hook(f, "web", url, "--key ops");
	snprintf(args, sizeof(args), "promote %s --channel prod", f->a1);
	r = ht_run(f, f->env_ops, "%s", args);
	/* The move stands; the hook's failure is a warning. */
	ht_ok(&r);
	assert_non_null(strstr(r.err, "warning"));
	assert_non_null(strstr(r.err, "hook web"));
	tu_run_dispose(&r);
	ch = ht_status_channel(f, "prod");
	assert_string_equal(json_string_value(json_object_get(ch, "head")), f->a1);
	hk = json_array_get(json_object_get(ch, "hooks"), 0);
	assert_int_equal(json_integer_value(json_object_get(hk, "pending")), 1);
	assert_true(json_is_null(json_object_get(hk, "acknowledged")) ||
	            !json_object_get(hk, "acknowledged"));
	assert_true(json_integer_value(json_object_get(hk, "failed_attempts")) >= 1);
	assert_non_null(json_object_get(hk, "last_error"));
	json_decref(ch);

	/* Each failed attempt journaled, with the error and the delivery id. */
	entry_of_move(f, "prod", 0, entry, &seq);
	sluice_hooks__delivery_id(id, "web", entry);
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 3); /* the attempts one process makes */
	for (size_t i = 0; i < json_array_size(recs); i++) {
		rec = json_array_get(recs, i);
		assert_true(json_is_false(json_object_get(rec, "ok")));
		assert_int_equal(json_integer_value(json_object_get(rec, "status")), 0);
		assert_non_null(
		        strstr(json_string_value(json_object_get(rec, "error")), "127.0.0.1"));
		assert_string_equal(json_string_value(json_object_get(rec, "id")), id);
		assert_int_equal(json_integer_value(json_object_get(rec, "move")), seq);
	}
	json_decref(recs);

	/* A later write command honours the backoff: no new attempt yet. */
	r = ht_run(f, f->env_ops, "anchor prod --reason 'pin it'");
	ht_ok(&r);
	tu_run_dispose(&r);
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 3);
	json_decref(recs);

	/* The receiver comes up; sluice hook deliver sends the same id. */
	ht_receiver_start(f, &rc, "rx2", NULL);
	tu_sh_ok(NULL, "git --git-dir='%s' config hook.web.url %s", f->repo, rc.url);
	r = ht_run(f, f->env_ops, "hook deliver --json");
	ht_ok(&r);
	tu_run_dispose(&r);
	acc = ht_events(&rc, "accepted");
	assert_int_equal(json_array_size(acc), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(acc, 0), "id")), id);
	json_decref(acc);
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 4);
	rec = json_array_get(recs, 3);
	assert_true(json_is_true(json_object_get(rec, "ok")));
	assert_string_equal(json_string_value(json_object_get(rec, "id")), id);
	json_decref(recs);
	ch = ht_status_channel(f, "prod");
	hk = json_array_get(json_object_get(ch, "hooks"), 0);
	assert_int_equal(json_integer_value(json_object_get(hk, "pending")), 0);
	assert_true(json_is_true(json_object_get(hk, "current")));
	json_decref(ch);
	/* Nothing left: another deliver does nothing and exits 0. */
	r = ht_run(f, f->env_ops, "hook deliver");
	ht_ok(&r);
	tu_run_dispose(&r);
	acc = ht_events(&rc, "accepted");
	assert_int_equal(json_array_size(acc), 1);
	json_decref(acc);
	ht_receiver_stop(&rc);
}

static void test_webhook__failed_answers_are_retried_with_backoff_and_journaled(void **state)
{
	ht_fixture *f = *state;
	ht_receiver rc = {0};
	json_t *recs, *acc;
	char args[256];

	ht_receiver_start(f, &rc, "flaky", "--fail-first", "2", NULL);
	add_hook(f, "web", rc.url, "--key ops");
	snprintf(args, sizeof(args), "promote %s --channel prod", f->base);
	move(f, args);
	/* Two 503s, then success, within the one process: all three journaled. */
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 3);
	for (size_t i = 0; i < 2; i++) {
		json_t *rec = json_array_get(recs, i);
		assert_true(json_is_false(json_object_get(rec, "ok")));
		assert_int_equal(json_integer_value(json_object_get(rec, "status")), 503);
		assert_non_null(
		        strstr(json_string_value(json_object_get(rec, "answer")), "try later"));
		assert_int_equal(json_integer_value(json_object_get(rec, "attempt")),
		                 (json_int_t)i + 1);
	}
	assert_true(json_is_true(json_object_get(json_array_get(recs, 2), "ok")));
	json_decref(recs);
	acc = ht_events(&rc, "accepted");
	assert_int_equal(json_array_size(acc), 1);
	json_decref(acc);
	ht_receiver_stop(&rc);
}

static void test_webhook__deliver_wait_retries_until_the_receiver_recovers(void **state)
{
	ht_fixture *f = *state;
	ht_receiver rc = {0};
	json_t *recs, *acc, *v;
	char args[256];
	tu_run_result r;

	/* Ten 503s: the promoting process gives up after three... */
	ht_receiver_start(f, &rc, "slow", "--fail-first", "10", NULL);
	add_hook(f, "web", rc.url, "--key ops");
	snprintf(args, sizeof(args), "promote %s --channel prod", f->base);
	move(f, args);
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 3);
	json_decref(recs);
	/* ...without --wait, deliver makes its three and exits 1 with the move pending... */
	r = ht_run(f, f->env_ops, "hook deliver");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "1 move(s) pending"));
	tu_run_dispose(&r);
	/* ...and with --wait it keeps going, round after round, until the receiver answers 2xx. */
	r = ht_run(f, f->env_ops, "hook deliver --wait 30 --json");
	ht_ok(&r);
	v = json_loads(r.out, 0, NULL);
	assert_non_null(v);
	assert_int_equal(json_integer_value(json_object_get(v, "delivered")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "failed")), 4);
	assert_int_equal(json_integer_value(json_object_get(v, "pending")), 0);
	json_decref(v);
	tu_run_dispose(&r);
	/* Every attempt carried the same id, and it was accepted once. */
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 11);
	for (size_t i = 1; i < json_array_size(recs); i++)
		assert_string_equal(
		        json_string_value(json_object_get(json_array_get(recs, i), "id")),
		        json_string_value(json_object_get(json_array_get(recs, 0), "id")));
	assert_true(json_is_true(
	        json_object_get(json_array_get(recs, json_array_size(recs) - 1), "ok")));
	json_decref(recs);
	acc = ht_events(&rc, "accepted");
	assert_int_equal(json_array_size(acc), 1);
	json_decref(acc);
	ht_receiver_stop(&rc);
}

static void test_webhook__sender_killed_mid_delivery_next_process_sends_same_id(void **state)
{
	ht_fixture *f = *state;
	ht_receiver rc = {0};
	json_t *stalled = NULL, *acc, *ch;
	char args[256], cmd[8192];
	pid_t pid;
	int st;

	ht_receiver_start(f, &rc, "stall", "--stall-first", "1", NULL);
	add_hook(f, "web", rc.url, "--key ops");
	snprintf(args, sizeof(args), "promote %s --channel prod", f->base);
	snprintf(cmd, sizeof(cmd), "exec %s -C '%s' %s >/dev/null 2>&1", TU_SLUICE, f->repo, args);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		putenv(f->keysenv);
		putenv((char *)"SLUICE_KEY=ops");
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* Wait until the receiver holds the delivery, then kill the sender. */
	for (int i = 0; i < 1000; i++) {
		stalled = ht_events(&rc, "stalled");
		if (json_array_size(stalled))
			break;
		json_decref(stalled);
		stalled = NULL;
		usleep(20000);
	}
	assert_non_null(stalled);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* The move was committed before the hook ran. */
	ch = ht_status_channel(f, "prod");
	assert_string_equal(json_string_value(json_object_get(ch, "head")), f->base);
	json_decref(ch);
	/* A new process delivers it: exactly the id the killed one was sending. */
	tu_run_result r = ht_run(f, f->env_ops, "hook deliver");
	ht_ok(&r);
	tu_run_dispose(&r);
	acc = ht_events(&rc, "accepted");
	assert_int_equal(json_array_size(acc), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(acc, 0), "id")),
	                    json_string_value(json_object_get(json_array_get(stalled, 0), "id")));
	json_decref(acc);
	json_decref(stalled);
	ht_receiver_stop(&rc);
}

/* A hook entry forged to move a channel. */
static int decide_forged(sluice_repo *repo, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	const char *to = arg;
	json_t *chans = json_deep_copy(st->channels);

	(void)repo;
	json_object_set_new(json_object_get(chans, "prod"), "head", json_string(to));
	out->channels_after = chans;
	out->record = json_pack("{s:s,s:s,s:i,s:b}", "hook", "web", "channel", "prod", "move", 1,
	                        "ok", 1);
	return 0;
}

static void test_webhook__verify_refuses_a_hook_entry_that_moves_a_channel(void **state)
{
	ht_fixture *f = *state;
	sluice_ctx *ctx = NULL;
	sluice_repo *repo = NULL;
	sluice_key key = {0};
	char args[256], keysdir[4200];
	tu_run_result r;

	snprintf(args, sizeof(args), "promote %s --channel prod", f->base);
	move(f, args);
	snprintf(keysdir, sizeof(keysdir), "%s/keys", f->work);
	setenv("SLUICE_KEYS", keysdir, 1);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&repo, ctx, f->repo), 0);
	assert_int_equal(sluice_keys__load(ctx, &key, "ops"), 0);
	assert_int_equal(sluice_journal__transact(repo, NULL, &key, "hook", decide_forged, f->a2),
	                 0);
	sluice_key__dispose(&key);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	r = ht_run(f, f->env_ops, "verify");
	assert_int_equal(r.status, 1);
	assert_true(strstr(r.out, "a hook entry changes channels") ||
	            strstr(r.err, "a hook entry changes channels"));
	tu_run_dispose(&r);
}

static void test_webhook__hook_configuration(void **state)
{
	ht_fixture *f = *state;
	json_t *v, *h;
	tu_run_result r;

	/* The key must be an operator's: an auditor's cannot sign hook entries. */
	r = ht_run(f, f->env_ops,
	           "hook add web --type webhook --url http://127.0.0.1:9/x --channel prod --key "
	           "watcher");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "operator"));
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops,
	           "hook add web --type ftp --url http://127.0.0.1:9/x --channel prod");
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "webhook, vllm or llamacpp"));
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops,
	           "hook add web --type webhook --url file:///etc/passwd --channel prod");
	assert_int_equal(r.status, 4);
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops,
	           "hook add web --type vllm --url http://127.0.0.1:9 --channel prod --notes");
	assert_int_equal(r.status, 4);
	tu_run_dispose(&r);
	add_hook(f, "web", "http://127.0.0.1:9/x", "--channel staging");
	r = ht_run(f, f->env_ops,
	           "hook add web --type webhook --url http://127.0.0.1:9/y --channel prod");
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "already configured"));
	tu_run_dispose(&r);
	/* Stock git reads it. */
	tu_sh_ok(NULL,
	         "test \"$(git --git-dir='%s' config --get-all hook.web.channel | tr '\\n' ' ')\" "
	         "= 'prod staging '",
	         f->repo);
	v = ht_json(f, "hook list");
	h = json_array_get(json_object_get(v, "hooks"), 0);
	assert_string_equal(json_string_value(json_object_get(h, "name")), "web");
	assert_string_equal(json_string_value(json_object_get(h, "key")), "ops");
	assert_int_equal(json_array_size(json_object_get(h, "channels")), 2);
	json_decref(v);
	r = ht_run(f, f->env_ops, "hook remove web");
	ht_ok(&r);
	tu_run_dispose(&r);
	v = ht_json(f, "hook list");
	assert_int_equal(json_array_size(json_object_get(v, "hooks")), 0);
	json_decref(v);
	r = ht_run(f, f->env_ops, "hook remove web");
	assert_int_equal(r.status, 4);
	tu_run_dispose(&r);
	r = tu_sh(NULL, "%s help hook", TU_SLUICE);
	ht_ok(&r);
	assert_non_null(strstr(r.out, "hook deliver"));
	assert_non_null(strstr(r.out, "hook add"));
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_webhook__promote_and_rollback_are_delivered_signed_and_journaled,
	                setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_webhook__receiver_down_move_succeeds_and_is_delivered_later, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_webhook__failed_answers_are_retried_with_backoff_and_journaled, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_webhook__deliver_wait_retries_until_the_receiver_recovers, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_webhook__sender_killed_mid_delivery_next_process_sends_same_id, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_webhook__verify_refuses_a_hook_entry_that_moves_a_channel, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_webhook__hook_configuration, setup, teardown),
	};
	int rc;

	sluice_global_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	sluice_global_shutdown();
	return rc;
}
