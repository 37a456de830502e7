/*
 * tests/fuzz/policy_fuzzer.c - the policy parser on arbitrary bytes: every
 * accepted input is a policy whose rules, for default and every channel,
 * hold every documented key with its documented type and range, and whose
 * gate configuration builds; every refused one leaves a message.
 */
#include "internal.h"
#include "policy.h"
#include "repo.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *get(json_t *v, const char *a, const char *b)
{
	v = json_object_get(v, a);
	return b ? json_object_get(v, b) : v;
}

static int strings(json_t *arr)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, v) if (!json_is_string(v)) return 0;
	return 1;
}

static int count_in(json_t *v, json_int_t lo, json_int_t hi)
{
	return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static int seconds(json_t *v)
{
	return json_is_null(v) || count_in(v, 1, 36500LL * 86400);
}

/* The documented shape of one fully resolved RULES object. */
static int rules_ok(json_t *r)
{
	json_t *md = get(r, "drift_budget", "max_drop"), *v;
	const char *k;

	if (json_object_size(r) != 8 || !strings(get(r, "from", NULL)) ||
	    !strings(get(r, "gates", "required")) ||
	    json_array_size(get(r, "gates", "required")) > 3 ||
	    !json_is_object(get(r, "gates", "thresholds")) ||
	    !(json_is_null(md) ||
	      (json_is_number(md) && json_number_value(md) > 0 && json_number_value(md) <= 1)) ||
	    !json_is_object(get(r, "suites", NULL)) || !strings(get(r, "approvals", "roles")) ||
	    !count_in(get(r, "approvals", "count"), 0, 64) ||
	    !json_is_boolean(get(r, "approvals", "proposer_counts")) ||
	    !strings(get(r, "inconclusive", "roles")) ||
	    !count_in(get(r, "inconclusive", "count"), 1, 64) ||
	    !seconds(get(r, "expiry", "approvals")) || !seconds(get(r, "expiry", "verdicts")) ||
	    !strings(get(r, "emergency", "rollback")) ||
	    json_array_size(get(r, "emergency", "rollback")) == 0)
		return 0;
	if (json_integer_value(get(r, "approvals", "count")) > 0 &&
	    json_array_size(get(r, "approvals", "roles")) == 0)
		return 0;
	json_object_foreach(get(r, "suites", NULL), k, v)
	{
		if (!json_is_string(v) || json_string_length(v) != 64)
			return 0;
	}
	return 1;
}

static int config_ok(sluice_ctx *ctx, json_t *pol, const char *channel)
{
	json_t *cfg = NULL;
	int ok = sluice_policy__gate_config(ctx, &cfg, pol, channel) == 0 && json_is_object(cfg);

	json_decref(cfg);
	return ok;
}

/*
 * The promotion order of an accepted policy: every from names a listed
 * channel, and peeling off channels whose from lists only peeled ones
 * peels them all (no cycle).
 */
static int order_ok(json_t *channels)
{
	json_t *done = json_object(), *r, *v;
	const char *name;
	size_t i, before;
	int ok = 1;

	json_object_foreach(channels, name, r) json_array_foreach(json_object_get(r, "from"), i, v)
	        ok &= json_object_get(channels, json_string_value(v)) != NULL;
	do {
		before = json_object_size(done);
		json_object_foreach(channels, name, r)
		{
			int ready = !json_object_get(done, name);
			json_array_foreach(json_object_get(r, "from"), i, v) ready &=
			        json_object_get(done, json_string_value(v)) != NULL;
			if (ready)
				json_object_set_new(done, name, json_true());
		}
	} while (json_object_size(done) > before);
	ok &= json_object_size(done) == json_object_size(channels);
	json_decref(done);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	json_t *pol = NULL, *r;
	const char *name;
	int rc;

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	rc = sluice_policy__parse(ctx, &pol, data, size, "fuzz.yaml");
	if (rc < 0) {
		if (pol || !sluice_ctx_errmsg(ctx)[0])
			abort();
		return 0;
	}
	if (!json_is_object(pol) || json_object_size(pol) != 3 ||
	    !count_in(json_object_get(pol, "version"), 1, 1) ||
	    !json_is_object(json_object_get(pol, "channels")) ||
	    !rules_ok(json_object_get(pol, "default")) ||
	    !config_ok(ctx, pol, "a-channel-no-policy-names..") ||
	    !order_ok(json_object_get(pol, "channels")))
		abort();
	json_object_foreach(json_object_get(pol, "channels"), name, r)
	{
		if (!rules_ok(r) || sluice_policy__channel(pol, name) != r ||
		    !config_ok(ctx, pol, name))
			abort();
	}
	json_decref(pol);
	return 0;
}
