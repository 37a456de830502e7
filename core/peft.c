/*
 * core/peft.c - reading a PEFT LoRA adapter and checking it against its
 * base model. See peft.h for the conventions.
 *
 * adapter_config.json. Read: peft_type, r, lora_alpha, use_rslora,
 * target_modules, rank_pattern, alpha_pattern, base_model_name_or_path.
 * Refused when set to a value that changes the forward pass in a way the
 * evaluator's y = x.W^T + s.(x.A^T).B^T cannot honour: use_dora,
 * fan_in_fan_out, modules_to_save, layers_to_transform, layers_pattern,
 * bias other than "none", and the newer fields lora_bias, use_qalora,
 * layer_replication, trainable_token_indices, target_parameters,
 * alora_invocation_tokens and arrow_config. A null value is the same as an
 * absent field; peft_type, r and lora_alpha are required (PEFT always
 * writes them, and guessing its defaults could guess a scale). Every other
 * field (task_type, inference_mode, revision, lora_dropout,
 * init_lora_weights, megatron_*, loftq_config, eva_config,
 * exclude_modules, ...) is ignored: PEFT adds fields in every release, and
 * an unknown field cannot be refused without refusing every newer adapter.
 * An unknown field that changes the forward pass would therefore go
 * unnoticed unless it also changes the tensors, which are checked strictly.
 *
 * Name matching approximates PEFT's regular expressions:
 * - a target_modules list entry, or a rank_pattern / alpha_pattern key,
 *   matches a module when it equals the module name or the module name
 *   ends with "." + key (PEFT: key == name or name.endswith("." + key);
 *   for patterns re.match("(.*\.)?" + key + "$")). Pattern keys holding
 *   regular-expression syntax are refused rather than misread, since a
 *   silently unmatched alpha_pattern key would change a scale. When several
 *   keys match, the longest wins.
 * - a target_modules string is a POSIX extended regular expression that
 *   must match a whole module name (PEFT: re.fullmatch). Python-only syntax
 *   ((?:...), lookahead) fails to compile and is refused; "all-linear" is
 *   PEFT's shorthand for every Linear layer. To bound regcomp's work on
 *   untrusted input, patterns over 1 KiB, with back-references, or whose
 *   repetition factors multiply past 256 are refused.
 */
#include "peft.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX (1u << 20)
#define REGEX_MAX 1024
/*
 * glibc's regcomp copies a subexpression once per repetition count of an
 * interval, and twice for '+' (a+ is aa*), so nested repetitions multiply;
 * bound the product to keep compilation cheap.
 */
#define REGEX_INTERVAL_MAX 256

#define MODEL_PREFIX "base_model.model."

static const char *const refused_when_set[][2] = {
        {"lora_bias", "a bias on lora_B would be ignored"},
        {"use_qalora", "QA-LoRA pools the input before lora_A, which is not applied"},
        {"layer_replication", "it duplicates base layers, changing the model's structure"},
        {"trainable_token_indices", "its trained token embeddings would be ignored"},
        {"target_parameters",
         "LoRA on bare parameters (not Linear/Embedding modules) is not applied"},
        {"alora_invocation_tokens", "activated LoRA applies only after its invocation tokens"},
        {"arrow_config", "Arrow routing between adapters is not applied"},
};

struct config {
	json_t *root;
	const json_t *target;        /* NULL, an array of strings or a string */
	const json_t *rank_pattern;  /* NULL or object of name -> positive integer */
	const json_t *alpha_pattern; /* NULL or object of name -> number */
	int all_linear;
	int have_re;
	regex_t re;
};

/* One adapter tensor, classified by its name. */
struct half {
	char *module;
	int embedding;
	int is_b;
	const sluice_st_tensor *t;
};

static int field_error(sluice_ctx *ctx, const char *cfgname, const char *field, const char *what)
{
	return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: field %s: %s", cfgname, field, what);
}

/* A field's value, with null folded into absent. */
static const json_t *field(const json_t *root, const char *key)
{
	const json_t *v = json_object_get(root, key);

	return json_is_null(v) ? NULL : v;
}

/* True if a set value is not its harmless default (false, empty, zero). */
static int is_set(const json_t *v)
{
	if (!v || json_is_false(v))
		return 0;
	if (json_is_array(v))
		return json_array_size(v) > 0;
	if (json_is_object(v))
		return json_object_size(v) > 0;
	return 1;
}

static int get_bool(sluice_ctx *ctx, int *out, const json_t *root, const char *cfgname,
                    const char *key)
{
	const json_t *v = field(root, key);

	*out = 0;
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return field_error(ctx, cfgname, key, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int positive_int(const json_t *v, unsigned *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i <= 0 || (unsigned long long)i > UINT_MAX)
		return -1;
	*out = (unsigned)i;
	return 0;
}

/* Keys are matched literally, so refuse the ones PEFT would read as a regex. */
static int check_pattern(sluice_ctx *ctx, const json_t *obj, const char *cfgname, const char *key,
                         int want_int)
{
	const char *k;
	json_t *v;

	if (!obj)
		return 0;
	if (!json_is_object(obj))
		return field_error(ctx, cfgname, key, "expected an object of module name -> value");
	json_object_foreach((json_t *)obj, k, v)
	{
		unsigned r;

		if (!*k || strpbrk(k, "^$*+?()[]{}|\\"))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: field %s: key '%s' is not a module name or "
			                         "'.'-separated suffix (regular expressions are "
			                         "not supported)",
			                         cfgname, key, k);
		if (want_int && positive_int(v, &r) < 0)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: field %s: key '%s': expected a positive integer", cfgname, key,
			        k);
		if (!want_int && !json_is_number(v))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: field %s: key '%s': expected a number",
			                         cfgname, key, k);
	}
	return 0;
}

/*
 * Bound the work regcomp does on an untrusted pattern: the product of all
 * repetition factors (an over-estimate, as if every one were nested) stays
 * small. '*' and '?' add no copies.
 */
static int regex_cheap(const char *p)
{
	unsigned long product = 1;

	for (; *p; p++) {
		unsigned long m = 0, n;
		const char *q = p + 1;

		if (*p == '\\') {
			/* glibc's back-references make matching exponential */
			if (p[1] >= '0' && p[1] <= '9')
				return 0;
			if (p[1])
				p++;
			continue;
		}
		if (*p == '+' && (product *= 2) > REGEX_INTERVAL_MAX)
			return 0;
		if (*p != '{')
			continue;
		for (; *q >= '0' && *q <= '9' && m <= REGEX_INTERVAL_MAX; q++)
			m = m * 10 + (unsigned long)(*q - '0');
		n = m;
		if (*q == ',') {
			q++;
			if (*q >= '0' && *q <= '9')
				for (n = 0; *q >= '0' && *q <= '9' && n <= REGEX_INTERVAL_MAX; q++)
					n = n * 10 + (unsigned long)(*q - '0');
			else
				n = m + 1; /* {m,} is m copies and a star */
		}
		if (n == 0)
			n = 1;
		if (n > REGEX_INTERVAL_MAX || (product *= n) > REGEX_INTERVAL_MAX)
			return 0;
	}
	return 1;
}

static int parse_target(sluice_ctx *ctx, struct config *cfg, const char *cfgname)
{
	const json_t *t = field(cfg->root, "target_modules");
	const char *s;
	size_t i;
	int rc;

	cfg->target = t;
	if (!t)
		return 0;
	if (json_is_array(t)) {
		for (i = 0; i < json_array_size(t); i++) {
			const json_t *e = json_array_get(t, i);

			if (!json_is_string(e) || json_string_length(e) == 0)
				return field_error(ctx, cfgname, "target_modules",
				                   "expected a list of module names, a regular "
				                   "expression string, or null");
		}
		return 0;
	}
	if (!json_is_string(t))
		return field_error(ctx, cfgname, "target_modules",
		                   "expected a list of module names, a regular expression string, "
		                   "or null");
	s = json_string_value(t);
	if (strcmp(s, "all-linear") == 0) {
		cfg->all_linear = 1;
		return 0;
	}
	if (json_string_length(t) > REGEX_MAX || !regex_cheap(s))
		return field_error(
		        ctx, cfgname, "target_modules",
		        "regular expression too long, with too many repetitions, or with "
		        "back-references");
	if ((rc = regcomp(&cfg->re, s, REG_EXTENDED)) != 0) {
		char why[128];

		regerror(rc, NULL, why, sizeof(why));
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: field target_modules: regular expression '%s' is not a "
		        "POSIX extended regular expression: %s",
		        cfgname, s, why);
	}
	cfg->have_re = 1;
	return 0;
}

static int parse_modules_to_save(sluice_ctx *ctx, const json_t *root, const char *cfgname)
{
	const json_t *v = field(root, "modules_to_save");
	char list[256] = "";
	size_t i, n = 0;

	if (!v)
		return 0;
	if (!json_is_array(v))
		return field_error(ctx, cfgname, "modules_to_save",
		                   "expected a list of module names");
	for (i = 0; i < json_array_size(v); i++) {
		const json_t *e = json_array_get(v, i);

		if (!json_is_string(e))
			return field_error(ctx, cfgname, "modules_to_save",
			                   "expected a list of module names");
		if (n < sizeof(list))
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
			                      json_string_value(e));
	}
	if (i == 0)
		return 0;
	return sluice_ctx__error(
	        ctx, SLUICE_EINVALID,
	        "%s: field modules_to_save: full weight copies of %s in an adapter "
	        "are refused",
	        cfgname, list);
}

/* Refusals of fields whose use sluice cannot apply. */
static int check_refused(sluice_ctx *ctx, const json_t *root, const char *cfgname)
{
	const json_t *v;
	size_t i;
	int flag, error;

	if ((error = get_bool(ctx, &flag, root, cfgname, "use_dora")) < 0)
		return error;
	if (flag)
		return field_error(ctx, cfgname, "use_dora",
		                   "DoRA adapters (use_dora) are not supported: their magnitude "
		                   "vectors would be ignored");
	if ((error = get_bool(ctx, &flag, root, cfgname, "fan_in_fan_out")) < 0)
		return error;
	if (flag)
		return field_error(ctx, cfgname, "fan_in_fan_out",
		                   "true means the base stores weights as Conv1D [in, out] "
		                   "(GPT-2 style); only Linear weights stored [out, in] (llama "
		                   "style) are supported");
	if ((error = parse_modules_to_save(ctx, root, cfgname)) < 0)
		return error;
	if (field(root, "layers_to_transform"))
		return field_error(ctx, cfgname, "layers_to_transform",
		                   "not supported: only adapters applied to every layer their "
		                   "target_modules name are accepted");
	if (field(root, "layers_pattern"))
		return field_error(ctx, cfgname, "layers_pattern",
		                   "not supported (it only has a use with layers_to_transform)");
	if ((v = field(root, "bias")) != NULL) {
		if (!json_is_string(v))
			return field_error(ctx, cfgname, "bias", "expected \"none\"");
		if (strcmp(json_string_value(v), "none") != 0)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: field bias: \"%s\" is refused: trained bias "
			        "vectors would change the base model's biases, which a "
			        "LoRA delta does not carry; only \"none\" is accepted",
			        cfgname, json_string_value(v));
	}
	for (i = 0; i < sizeof(refused_when_set) / sizeof(refused_when_set[0]); i++)
		if (is_set(field(root, refused_when_set[i][0])))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: field %s: not supported: %s", cfgname,
			                         refused_when_set[i][0], refused_when_set[i][1]);
	return 0;
}

static void config_dispose(struct config *cfg)
{
	if (cfg->have_re)
		regfree(&cfg->re);
	json_decref(cfg->root);
	memset(cfg, 0, sizeof(*cfg));
}

static int parse_config(sluice_ctx *ctx, sluice_peft_adapter *out, struct config *cfg,
                        const char *json, size_t len, const char *cfgname)
{
	const json_t *v;
	json_error_t jerr;
	int error;

	memset(cfg, 0, sizeof(*cfg));
	if (len > CONFIG_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: %zu bytes exceeds the %u byte limit", cfgname, len,
		                         CONFIG_MAX);
	if (!(cfg->root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: line %d column %d: %s", cfgname,
		                         jerr.line, jerr.column, jerr.text);
	if (!json_is_object(cfg->root))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: expected a JSON object",
		                         cfgname);

	v = field(cfg->root, "peft_type");
	if (!v)
		return field_error(ctx, cfgname, "peft_type", "missing (expected \"LORA\")");
	if (!json_is_string(v))
		return field_error(ctx, cfgname, "peft_type", "expected a string");
	if (strcmp(json_string_value(v), "LORA") != 0)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: field peft_type: \"%s\" is not supported (only \"LORA\")", cfgname,
		        json_string_value(v));
	if ((error = check_refused(ctx, cfg->root, cfgname)) < 0)
		return error;

	v = field(cfg->root, "r");
	if (!v || positive_int(v, &out->r) < 0)
		return field_error(ctx, cfgname, "r", "expected a positive integer");
	v = field(cfg->root, "lora_alpha");
	if (!json_is_number(v))
		return field_error(ctx, cfgname, "lora_alpha", "expected a number");
	out->alpha = json_number_value(v);
	if ((error = get_bool(ctx, &out->use_rslora, cfg->root, cfgname, "use_rslora")) < 0)
		return error;

	cfg->rank_pattern = field(cfg->root, "rank_pattern");
	cfg->alpha_pattern = field(cfg->root, "alpha_pattern");
	if ((error = check_pattern(ctx, cfg->rank_pattern, cfgname, "rank_pattern", 1)) < 0 ||
	    (error = check_pattern(ctx, cfg->alpha_pattern, cfgname, "alpha_pattern", 0)) < 0 ||
	    (error = parse_target(ctx, cfg, cfgname)) < 0)
		return error;

	v = field(cfg->root, "base_model_name_or_path");
	if (v && !json_is_string(v))
		return field_error(ctx, cfgname, "base_model_name_or_path", "expected a string");
	if (v && !(out->base_model = sluice__strdup(ctx, json_string_value(v))))
		return SLUICE_ENOMEM;
	if (!(out->peft_type = sluice__strdup(ctx, "LORA")))
		return SLUICE_ENOMEM;
	return 0;
}

void sluice_peft__dispose(sluice_peft_adapter *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->nmodules; i++) {
		free(a->modules[i].module);
		free(a->modules[i].a_name);
		free(a->modules[i].b_name);
	}
	free(a->modules);
	free(a->peft_type);
	free(a->base_model);
	memset(a, 0, sizeof(*a));
}

int sluice_peft__parse_config(sluice_ctx *ctx, sluice_peft_adapter *out, const char *config_json,
                              size_t config_len, const char *config_name)
{
	struct config cfg;
	int error;

	memset(out, 0, sizeof(*out));
	error = parse_config(ctx, out, &cfg, config_json, config_len,
	                     config_name ? config_name : "adapter_config.json");
	config_dispose(&cfg);
	if (error < 0)
		sluice_peft__dispose(out);
	return error;
}

/* ---- the adapter's tensors ---------------------------------------------- */

static const struct {
	const char *suffix;
	int embedding, is_b;
} suffixes[] = {
        {".lora_A.weight", 0, 0},
        {".lora_B.weight", 0, 1},
        /* Some PEFT versions keep the adapter name ("default") in saved names. */
        {".lora_A.default.weight", 0, 0},
        {".lora_B.default.weight", 0, 1},
        {".lora_embedding_A", 1, 0},
        {".lora_embedding_B", 1, 1},
        {".lora_embedding_A.default", 1, 0},
        {".lora_embedding_B.default", 1, 1},
};

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int classify(sluice_ctx *ctx, struct half *h, const sluice_st_tensor *t, const char *adname)
{
	const char *name = t->name, *mod;
	size_t i, n;

	if (strstr(name, "lora_magnitude_vector"))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s: DoRA magnitude vectors are not supported: "
		                         "they would be ignored",
		                         adname, name);
	if (strstr(name, "modules_to_save"))
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: tensor %s: full weight copies (modules_to_save) in an "
		        "adapter are refused",
		        adname, name);
	if (strncmp(name, MODEL_PREFIX, strlen(MODEL_PREFIX)) != 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s: not a PEFT LoRA tensor (names start with "
		                         "\"" MODEL_PREFIX "\")",
		                         adname, name);
	mod = name + strlen(MODEL_PREFIX);
	n = strlen(mod);
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t k = strlen(suffixes[i].suffix);

		if (!ends_with(mod, n, suffixes[i].suffix))
			continue;
		if (n == k)
			break; /* no module name before the suffix */
		if (!(h->module = sluice__malloc(ctx, n - k + 1)))
			return SLUICE_ENOMEM;
		memcpy(h->module, mod, n - k);
		h->module[n - k] = '\0';
		h->embedding = suffixes[i].embedding;
		h->is_b = suffixes[i].is_b;
		h->t = t;
		return 0;
	}
	if (ends_with(name, strlen(name), ".bias"))
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: tensor %s: bias tensors are refused: they would change "
		        "the base model's biases",
		        adname, name);
	return sluice_ctx__error(
	        ctx, SLUICE_EINVALID,
	        "%s: tensor %s: not a LoRA tensor (expected <module>.lora_A.weight, "
	        ".lora_B.weight, .lora_embedding_A or .lora_embedding_B)",
	        adname, name);
}

static int half_cmp(const void *a, const void *b)
{
	const struct half *x = a, *y = b;
	int c = strcmp(x->module, y->module);

	if (c)
		return c;
	if (x->is_b != y->is_b)
		return x->is_b - y->is_b;
	return strcmp(x->t->name, y->t->name);
}

static int tensor_ptr_cmp(const void *a, const void *b)
{
	const sluice_st_tensor *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/*
 * Base tensor by name across shards (index sorted by name). *dup is set when
 * two shards hold the name, which leaves it ambiguous which one is applied.
 */
static const sluice_st_tensor *base_find(const sluice_st_tensor *const *idx, size_t n,
                                         const char *name, int *dup)
{
	size_t lo = 0, hi = n;

	*dup = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(idx[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n || strcmp(idx[lo]->name, name) != 0)
		return NULL;
	*dup = lo + 1 < n && strcmp(idx[lo + 1]->name, name) == 0;
	return idx[lo];
}

static void fmt_shape(char *buf, size_t len, const sluice_st_tensor *t)
{
	size_t n = 0;
	unsigned i;

	n += (size_t)snprintf(buf, len, "[");
	for (i = 0; i < t->ndim && i < SLUICE_ST_MAX_DIMS && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%llu", i ? ", " : "",
		                      (unsigned long long)t->shape[i]);
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

static int is_float(sluice_dtype dt)
{
	return dt == SLUICE_DT_F32 || dt == SLUICE_DT_F16 || dt == SLUICE_DT_BF16;
}

/* The longest pattern key that is the module's name or a '.'-suffix of it. */
static const json_t *pattern_lookup(const json_t *pattern, const char *module)
{
	const char *p = module;
	const json_t *v;

	if (!pattern)
		return NULL;
	for (;;) {
		if ((v = json_object_get(pattern, p)) != NULL)
			return v;
		if (!(p = strchr(p, '.')))
			return NULL;
		p++;
	}
}

static int check_shape(sluice_ctx *ctx, const sluice_st_tensor *t, uint64_t d0, uint64_t d1,
                       const sluice_st_tensor *base, unsigned r, const char *adname)
{
	char got[256], bshape[256];

	if (t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1)
		return 0;
	fmt_shape(got, sizeof(got), t);
	fmt_shape(bshape, sizeof(bshape), base);
	return sluice_ctx__error(ctx, SLUICE_EINVALID,
	                         "%s: tensor %s: shape %s does not fit base tensor %s %s with rank "
	                         "%u: expected [%llu, %llu]",
	                         adname, t->name, got, base->name, bshape, r,
	                         (unsigned long long)d0, (unsigned long long)d1);
}

/* Build one module from its two halves, checked against the base. */
static int make_module(sluice_ctx *ctx, sluice_peft_module *m, const struct half *a,
                       const struct half *b, const struct config *cfg,
                       const sluice_peft_adapter *ad, const sluice_st_tensor *const *idx,
                       size_t nidx, const char *adname)
{
	const sluice_st_tensor *base;
	const json_t *v;
	char *wname = NULL;
	size_t n;
	int dup, error = 0;

	if (a->embedding != b->embedding)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: module %s: tensors %s and %s mix Linear "
		        "(lora_A/lora_B) and Embedding (lora_embedding_A/B) halves",
		        adname, a->module, a->t->name, b->t->name);
	if (!is_float(a->t->dtype) || !is_float(b->t->dtype))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s: dtype must be F32, F16 or BF16", adname,
		                         (is_float(a->t->dtype) ? b : a)->t->name);
	if (sluice__add_ovf(&n, strlen(a->module), sizeof(".weight")) < 0 ||
	    !(wname = sluice__malloc(ctx, n)))
		return SLUICE_ENOMEM;
	snprintf(wname, n, "%s.weight", a->module);
	base = base_find(idx, nidx, wname, &dup);
	if (!base) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: target module %s does not exist in the base model (no "
		        "tensor %s; adapter tensor %s)",
		        adname, a->module, wname, a->t->name);
		goto done;
	}
	if (dup) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: module %s: base tensor %s appears in more than one "
		                          "shard",
		                          adname, a->module, wname);
		goto done;
	}
	if (base->ndim != 2) {
		char bshape[256];

		fmt_shape(bshape, sizeof(bshape), base);
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: module %s: base tensor %s has shape %s; LoRA needs a "
		        "2-dimensional weight",
		        adname, a->module, wname, bshape);
		goto done;
	}

	m->embedding = a->embedding;
	m->r = ad->r;
	m->alpha = ad->alpha;
	if ((v = pattern_lookup(cfg->rank_pattern, a->module)) != NULL)
		m->r = (unsigned)json_integer_value(v);
	if ((v = pattern_lookup(cfg->alpha_pattern, a->module)) != NULL)
		m->alpha = json_number_value(v);
	m->scale = ad->use_rslora ? m->alpha / sqrt((double)m->r) : m->alpha / (double)m->r;
	if (m->embedding) {
		/* base [vocab, dim]; A [r, vocab]; B [dim, r] */
		m->in_features = base->shape[0];
		m->out_features = base->shape[1];
	} else {
		/* base [out, in]; A [r, in]; B [out, r] */
		m->out_features = base->shape[0];
		m->in_features = base->shape[1];
	}
	if ((error = check_shape(ctx, a->t, m->r, m->in_features, base, m->r, adname)) < 0 ||
	    (error = check_shape(ctx, b->t, m->out_features, m->r, base, m->r, adname)) < 0)
		goto done;
	if (!(m->module = sluice__strdup(ctx, a->module)) ||
	    !(m->a_name = sluice__strdup(ctx, a->t->name)) ||
	    !(m->b_name = sluice__strdup(ctx, b->t->name)))
		error = SLUICE_ENOMEM;
done:
	if (error < 0) {
		free(m->module);
		free(m->a_name);
		free(m->b_name);
		memset(m, 0, sizeof(*m));
	}
	free(wname);
	return error;
}

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_target_list(sluice_ctx *ctx, const sluice_peft_adapter *ad, const json_t *target,
                             const char *cfgname, const char *adname)
{
	size_t n = json_array_size(target), i, j;
	const char **entries = NULL;
	unsigned char *used = NULL;
	int error = 0;

	if (!(entries = sluice__calloc(ctx, n, sizeof(*entries))) ||
	    !(used = sluice__calloc(ctx, n, 1))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < n; i++)
		entries[i] = json_string_value(json_array_get(target, i));
	qsort(entries, n, sizeof(*entries), str_ptr_cmp);
	/* PEFT saves a set; drop repeats so each entry has one mark */
	for (i = j = 0; i < n; i++)
		if (j == 0 || strcmp(entries[i], entries[j - 1]) != 0)
			entries[j++] = entries[i];
	n = j;

	/*
	 * An entry matches a module when it is the module's name or one of its
	 * '.'-suffixes, so look those up instead of trying every pair.
	 */
	for (i = 0; i < ad->nmodules; i++) {
		const char *p = ad->modules[i].module;
		int named = 0;

		while (p) {
			const char **hit = bsearch(&p, entries, n, sizeof(*entries), str_ptr_cmp);

			if (hit) {
				named = 1;
				used[hit - entries] = 1;
			}
			if ((p = strchr(p, '.')) != NULL)
				p++;
		}
		if (!named) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: module %s (tensor %s) is not named by "
			                          "target_modules in %s",
			                          adname, ad->modules[i].module,
			                          ad->modules[i].a_name, cfgname);
			goto done;
		}
	}
	for (j = 0; j < n; j++) {
		if (used[j])
			continue;
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "target module '%s' in %s matches no tensor in %s",
		                          entries[j], cfgname, adname);
		goto done;
	}
done:
	free((void *)entries);
	free(used);
	return error;
}

static int check_target(sluice_ctx *ctx, const sluice_peft_adapter *ad, const struct config *cfg,
                        const char *cfgname, const char *adname)
{
	size_t i;

	if (!cfg->target)
		return 0;
	if (json_is_array(cfg->target))
		return check_target_list(ctx, ad, cfg->target, cfgname, adname);
	for (i = 0; i < ad->nmodules; i++) {
		const sluice_peft_module *m = &ad->modules[i];
		regmatch_t match;
		int ok;

		if (cfg->all_linear) {
			ok = !m->embedding;
		} else {
			/*
			 * POSIX picks the longest match at the leftmost position, so a
			 * whole-name match exists iff that match spans the name.
			 */
			ok = regexec(&cfg->re, m->module, 1, &match, 0) == 0 && match.rm_so == 0 &&
			     (size_t)match.rm_eo == strlen(m->module);
		}
		if (!ok)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: module %s (tensor %s) does not match "
			                         "target_modules '%s' in %s",
			                         adname, m->module, m->a_name,
			                         json_string_value(cfg->target), cfgname);
	}
	return 0;
}

int sluice_peft__load(sluice_ctx *ctx, sluice_peft_adapter *out, const char *config_json,
                      size_t config_len, const char *config_name, const sluice_st_header *adapter,
                      const char *adapter_name, const sluice_st_header *const *base, size_t nbase)
{
	const char *cfgname = config_name ? config_name : "adapter_config.json";
	const char *adname = adapter_name ? adapter_name : "adapter_model.safetensors";
	const sluice_st_tensor **idx = NULL;
	struct half *halves = NULL;
	size_t nhalves = 0, nidx = 0, i, j;
	struct config cfg;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = parse_config(ctx, out, &cfg, config_json, config_len, cfgname)) < 0)
		goto done;

	if (adapter->ntensors == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: holds no LoRA tensors",
		                          adname);
		goto done;
	}
	if (!(halves = sluice__calloc(ctx, adapter->ntensors, sizeof(*halves)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (nhalves = 0; nhalves < adapter->ntensors; nhalves++)
		if ((error = classify(ctx, &halves[nhalves], &adapter->tensors[nhalves], adname)) <
		    0)
			goto done;
	qsort(halves, nhalves, sizeof(*halves), half_cmp);

	for (i = 0; i < nbase; i++)
		if (sluice__add_ovf(&nidx, nidx, base[i]->ntensors) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "base model: too many tensors");
			goto done;
		}
	if (!(idx = sluice__calloc(ctx, nidx, sizeof(*idx)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (nidx = 0, i = 0; i < nbase; i++)
		for (j = 0; j < base[i]->ntensors; j++)
			idx[nidx++] = &base[i]->tensors[j];
	qsort(idx, nidx, sizeof(*idx), tensor_ptr_cmp);

	/* At most one module per two halves. */
	if (!(out->modules = sluice__calloc(ctx, nhalves / 2 + 1, sizeof(*out->modules)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < nhalves; i = j) {
		const struct half *a = NULL, *b = NULL;

		for (j = i; j < nhalves && strcmp(halves[j].module, halves[i].module) == 0; j++) {
			const struct half **slot = halves[j].is_b ? &b : &a;

			if (*slot) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: module %s: tensors %s and %s are both its lora_%c",
				        adname, halves[i].module, (*slot)->t->name,
				        halves[j].t->name, halves[j].is_b ? 'B' : 'A');
				goto done;
			}
			*slot = &halves[j];
		}
		if (!a || !b) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: module %s: tensor %s has no matching %s half", adname,
			        halves[i].module, (a ? a : b)->t->name, a ? "lora_B" : "lora_A");
			goto done;
		}
		if ((error = make_module(ctx, &out->modules[out->nmodules], a, b, &cfg, out, idx,
		                         nidx, adname)) < 0)
			goto done;
		out->nmodules++;
	}
	error = check_target(ctx, out, &cfg, cfgname, adname);
done:
	for (i = 0; i < nhalves; i++)
		free(halves[i].module);
	free(halves);
	free((void *)idx);
	config_dispose(&cfg);
	if (error < 0)
		sluice_peft__dispose(out);
	return error;
}
