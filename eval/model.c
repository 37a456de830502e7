/*
 * eval/model.c - the built-in CPU evaluator's llama-family forward pass.
 * See model.h for the contract and docs/evaluator.md for the semantics and
 * tolerances.
 *
 * The pass scores a whole sequence at once, so every projection is one
 * sgemm over the n positions: X[n][in] . W[out][in]^T -> Y[n][out]. F32
 * weights are handed to OpenBLAS straight from the memory map; 16-bit
 * weights go through a bounded scratch tile (a band of W's rows converted
 * to f32), so no f32 copy of a whole weight is made. LoRA terms are two
 * thin sgemms per adapter on top of the base product, never merged.
 */
#include "blas.h"
#include "model.h"
#include "peft.h"
#include "safetensors.h"
#include "vmath.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* From project(sluice VERSION ...) in CMakeLists.txt. */
#define SLUICE_MODEL_SLUICE_VERSION SLUICE_VERSION_STRING

/*
 * The revision of this evaluator's arithmetic, in the backend identity so
 * that cached results made by other arithmetic are not reused: raise it with
 * any change that can move a figure, however little (the order of a sum, an
 * exp). 2: softmax and SiLU through sluice_vexpf, in lanes.
 */
#define SLUICE_MODEL_NUMERICS 2

/* Bounds on config values: far above any real llama, low enough for size math. */
#define DIM_MAX (1u << 20)
#define LAYERS_MAX 4096u
#define VOCAB_MAX (1u << 24)
#define CONFIG_MAX (1u << 20)
#define INDEX_MAX (64u << 20)
/* The 16-bit tile: 4 MiB of f32, at least one row of the widest weight. */
#define TILE_FLOATS ((size_t)1 << 20)

typedef struct {
	char *path;
	unsigned char *map;
	size_t len;
	sluice_st_header hdr;
} shard;

/* A 2-D weight (or 1-D with cols = 1) viewed in its shard's map. */
typedef struct {
	const char *name;
	const unsigned char *data;
	sluice_dtype dt;
	size_t rows, cols;
	const float *f32; /* data itself when F32, little-endian host and aligned */
} weight;

typedef struct {
	float *a; /* [r][in]  (embeddings: [r][vocab]) */
	float *b; /* [out][r] (embeddings: [hidden][r]) */
	unsigned r;
	float scale;
} lora;

typedef struct {
	weight w;
	lora *loras;
	size_t nloras;
} linear;

typedef struct {
	weight in_norm_w, post_norm_w;
	float *in_norm, *post_norm; /* [hidden] f32 copies (tiny) */
	linear q, k, v, o, gate, up, down;
} layer;

struct sluice_model {
	sluice_model_config cfg;
	shard *shards;
	size_t nshards;
	weight embed, norm_w;
	float *norm;
	lora *embed_loras;
	size_t nembed_loras;
	linear lm_head; /* w aliases embed when tied */
	layer *layers;
	size_t nadapters;
	unsigned max_r;
	float *tile;     /* TILE_FLOATS, for 16-bit weights; NULL when all are direct */
	float *inv_freq; /* [head_dim/2] */
};

/* ---- element conversion ---------------------------------------------- */

static int host_is_le(void)
{
	const uint16_t one = 1;
	unsigned char b;

	memcpy(&b, &one, 1);
	return b == 1;
}

static float f32_from_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static float from_f16(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;

	if (exp == 0) {
		/* zero or subnormal: man x 2^-24, exact in f32 */
		float f = ldexpf((float)man, -24);
		return sign ? -f : f;
	}
	if (exp == 31)
		return f32_from_bits(sign | 0x7f800000u | (man << 13));
	return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

/* count elements of dtype dt at src (little-endian bytes) -> dst f32 */
SLUICE_VCLONES static void to_f32(float *dst, const unsigned char *src, sluice_dtype dt,
                                  size_t count)
{
	size_t i;

	switch (dt) {
	case SLUICE_DT_F32:
		for (i = 0; i < count; i++)
			dst[i] = f32_from_bits(sluice__le32(src + 4 * i));
		break;
	case SLUICE_DT_BF16:
		for (i = 0; i < count; i++)
			dst[i] = f32_from_bits((uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16);
		break;
	default: /* F16: dtypes are checked when tensors are bound */
		for (i = 0; i < count; i++)
			dst[i] = from_f16((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
		break;
	}
}

static size_t esize(sluice_dtype dt)
{
	return dt == SLUICE_DT_F32 ? 4 : 2;
}

/* Rows [r0, r0+count) of w as f32 into dst[count][cols]. */
static void weight_rows(float *dst, const weight *w, size_t r0, size_t count)
{
	to_f32(dst, w->data + r0 * w->cols * esize(w->dt), w->dt, count * w->cols);
}

/* ---- config.json ------------------------------------------------------ */

static int cfg_uint(sluice_ctx *ctx, unsigned *out, json_t *cfg, const char *field, unsigned def,
                    unsigned max, const char *path)
{
	json_t *v = json_object_get(cfg, field);

	if (!v || json_is_null(v)) {
		if (!def)
			return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: %s is missing", path,
			                         field);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    (json_int_t)json_integer_value(v) > (json_int_t)max)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: %s must be an integer in [1, %u]", path, field, max);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

/* A positive finite number; def < 0 means required. */
static int cfg_num(sluice_ctx *ctx, double *out, json_t *obj, const char *field, double def,
                   const char *path)
{
	json_t *v = json_object_get(obj, field);

	if (!v || json_is_null(v)) {
		if (def < 0)
			return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: %s is missing", path,
			                         field);
		*out = def;
		return 0;
	}
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) <= 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: %s must be a positive number",
		                         path, field);
	*out = json_number_value(v);
	return 0;
}

static int cfg_bool(sluice_ctx *ctx, int *out, json_t *cfg, const char *field, const char *path)
{
	json_t *v = json_object_get(cfg, field);

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: %s must be true or false", path,
		                         field);
	*out = json_is_true(v);
	return 0;
}

/*
 * rope_scaling (transformers <= 4.x) or rope_parameters (5.x, which also
 * carries rope_theta). Only "default" and "llama3" are implemented; any
 * other type, or a key this code does not read, is refused, since a
 * scaling silently ignored changes every position's rotation.
 */
static int parse_rope(sluice_ctx *ctx, sluice_model_config *c, json_t *cfg, const char *path)
{
	static const char *const known[] = {"rope_type",        "type",
	                                    "factor",           "low_freq_factor",
	                                    "high_freq_factor", "original_max_position_embeddings",
	                                    "rope_theta"};
	json_t *rs = json_object_get(cfg, "rope_scaling"),
	       *rp = json_object_get(cfg, "rope_parameters");
	const char *field = "rope_scaling", *type = NULL, *key;
	json_t *v, *t1, *t2;
	int error;

	if (rs && json_is_null(rs))
		rs = NULL;
	if (rp && json_is_null(rp))
		rp = NULL;
	if (rs && rp)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: both rope_scaling and rope_parameters are set", path);
	if (rp) {
		rs = rp;
		field = "rope_parameters";
	}
	if (!rs)
		return 0;
	if (!json_is_object(rs))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: %s must be an object or null",
		                         path, field);
	json_object_foreach(rs, key, v)
	{
		size_t i;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(key, known[i]))
				break;
		if (i == sizeof(known) / sizeof(known[0]) ||
		    (!strcmp(key, "rope_theta") && rs != rp))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: %s.%s is not implemented", path, field, key);
	}
	t1 = json_object_get(rs, "rope_type");
	t2 = json_object_get(rs, "type");
	if ((t1 && !json_is_string(t1)) || (t2 && !json_is_string(t2)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: %s.rope_type must be a string",
		                         path, field);
	if (t1 && t2 && strcmp(json_string_value(t1), json_string_value(t2)))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: %s.rope_type and %s.type disagree", path, field,
		                         field);
	type = t1 ? json_string_value(t1) : t2 ? json_string_value(t2) : NULL;
	if (!type)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: %s.rope_type is missing", path,
		                         field);
	if (rp && (error = cfg_num(ctx, &c->rope_theta, rs, "rope_theta", c->rope_theta, path)) < 0)
		return error;
	if (!strcmp(type, "default")) {
		if (json_object_get(rs, "factor"))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: %s.factor is not used by rope_type default",
			                         path, field);
		return 0;
	}
	if (strcmp(type, "llama3"))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: %s type \"%s\" is not implemented (only llama3)",
		                         path, field, type);
	if ((error = cfg_num(ctx, &c->rope_factor, rs, "factor", -1, path)) < 0 ||
	    (error = cfg_num(ctx, &c->rope_low, rs, "low_freq_factor", -1, path)) < 0 ||
	    (error = cfg_num(ctx, &c->rope_high, rs, "high_freq_factor", -1, path)) < 0 ||
	    (error = cfg_num(ctx, &c->rope_orig, rs, "original_max_position_embeddings", -1,
	                     path)) < 0)
		return sluice_ctx__wrap(ctx, error, "in %s", field);
	if (c->rope_high <= c->rope_low)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: %s.high_freq_factor must exceed low_freq_factor",
		                         path, field);
	c->rope_llama3 = 1;
	return 0;
}

int sluice_model__parse_config(sluice_ctx *ctx, sluice_model_config *c, const char *text,
                               size_t len, const char *path)
{
	json_error_t jerr;
	json_t *cfg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *v;
	int error, flag;

	memset(c, 0, sizeof(*c));
	if (!cfg)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: line %d: %s", path, jerr.line,
		                         jerr.text);
	if (!json_is_object(cfg)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: not a JSON object", path);
		goto done;
	}
	v = json_object_get(cfg, "model_type");
	if (!json_is_string(v) || strcmp(json_string_value(v), "llama")) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: model_type must be \"llama\" (got %s%s%s)", path,
		                          json_is_string(v) ? "\"" : "",
		                          json_is_string(v) ? json_string_value(v) : "none",
		                          json_is_string(v) ? "\"" : "");
		goto done;
	}
	v = json_object_get(cfg, "hidden_act");
	if (v && !json_is_null(v) && (!json_is_string(v) || strcmp(json_string_value(v), "silu"))) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: hidden_act %s%s%s is not implemented (only silu)",
		                          path, json_is_string(v) ? "\"" : "",
		                          json_is_string(v) ? json_string_value(v)
		                                            : "(not a string)",
		                          json_is_string(v) ? "\"" : "");
		goto done;
	}
	if ((v = json_object_get(cfg, "quantization_config")) && !json_is_null(v)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: quantization_config is not implemented", path);
		goto done;
	}
	if ((error = cfg_bool(ctx, &flag, cfg, "attention_bias", path)) < 0)
		goto done;
	if (flag) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: attention_bias true is not implemented", path);
		goto done;
	}
	if ((error = cfg_bool(ctx, &flag, cfg, "mlp_bias", path)) < 0)
		goto done;
	if (flag) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: mlp_bias true is not implemented", path);
		goto done;
	}
	if ((error = cfg_uint(ctx, &c->hidden, cfg, "hidden_size", 0, DIM_MAX, path)) < 0 ||
	    (error = cfg_uint(ctx, &c->inter, cfg, "intermediate_size", 0, DIM_MAX, path)) < 0 ||
	    (error = cfg_uint(ctx, &c->layers, cfg, "num_hidden_layers", 0, LAYERS_MAX, path)) <
	            0 ||
	    (error = cfg_uint(ctx, &c->heads, cfg, "num_attention_heads", 0, DIM_MAX, path)) < 0 ||
	    (error = cfg_uint(ctx, &c->kv_heads, cfg, "num_key_value_heads", c->heads, DIM_MAX,
	                      path)) < 0 ||
	    (error = cfg_uint(ctx, &c->vocab, cfg, "vocab_size", 0, VOCAB_MAX, path)) < 0 ||
	    (error = cfg_num(ctx, &c->rms_eps, cfg, "rms_norm_eps", 1e-6, path)) < 0 ||
	    (error = cfg_num(ctx, &c->rope_theta, cfg, "rope_theta", 10000.0, path)) < 0 ||
	    (error = cfg_bool(ctx, &c->tied, cfg, "tie_word_embeddings", path)) < 0)
		goto done;
	if (c->heads % c->kv_heads) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: num_attention_heads (%u) is not a multiple of "
		                          "num_key_value_heads (%u)",
		                          path, c->heads, c->kv_heads);
		goto done;
	}
	if ((error = cfg_uint(ctx, &c->head_dim, cfg, "head_dim",
	                      c->hidden / c->heads ? c->hidden / c->heads : 0, DIM_MAX, path)) < 0)
		goto done;
	if (c->head_dim % 2 || (uint64_t)c->head_dim * c->heads > DIM_MAX) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: head_dim (%u) must be even and head_dim x "
		                          "num_attention_heads at most %u",
		                          path, c->head_dim, DIM_MAX);
		goto done;
	}
	error = parse_rope(ctx, c, cfg, path);
done:
	if (error < 0)
		memset(c, 0, sizeof(*c));
	json_decref(cfg);
	return error;
}

/* ---- weights ----------------------------------------------------------- */

static void unmap_shards(sluice_model *m)
{
	for (size_t i = 0; i < m->nshards; i++) {
		if (m->shards[i].map)
			munmap(m->shards[i].map, m->shards[i].len);
		sluice_safetensors__dispose(&m->shards[i].hdr);
		free(m->shards[i].path);
	}
	free(m->shards);
	m->shards = NULL;
	m->nshards = 0;
}

static int map_shard(sluice_ctx *ctx, shard *s, const char *path)
{
	struct stat st;
	void *p;
	int fd, error = 0;

	if (!(s->path = sluice__strdup(ctx, path)))
		return SLUICE_ENOMEM;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return sluice_ctx__error(ctx, SLUICE_ENOTFOUND, "%s does not exist", path);
		return sluice_ctx__oserror(ctx, "cannot open %s", path);
	}
	if (fstat(fd, &st) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot stat %s", path);
		goto done;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SIZE_MAX) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s is not a regular file", path);
		goto done;
	}
	if ((error = sluice_safetensors__read(ctx, &s->hdr, fd, (uint64_t)st.st_size, path)) < 0)
		goto done;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		error = sluice_ctx__oserror(ctx, "cannot map %s", path);
		goto done;
	}
	s->map = p;
	s->len = (size_t)st.st_size;
done:
	close(fd);
	return error;
}

static int join(sluice_ctx *ctx, char **out, const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;

	if (!(*out = sluice__malloc(ctx, n)))
		return SLUICE_ENOMEM;
	snprintf(*out, n, "%s/%s", dir, name);
	return 0;
}

static int file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/*
 * The shards named by the index's weight_map (distinct file names, in
 * first-seen order), each a plain file name in dir.
 */
static int map_indexed(sluice_ctx *ctx, sluice_model *m, const char *dir, const char *ipath,
                       json_t **map_out)
{
	unsigned char *text = NULL;
	size_t len, i;
	json_error_t jerr;
	json_t *idx = NULL, *wm, *v;
	const char *key;
	char *path = NULL;
	int error;

	if ((error = sluice_io__read_file(ctx, &text, &len, ipath, INDEX_MAX)) < 0)
		return error;
	if (!(idx = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr))) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: line %d: %s", ipath, jerr.line,
		                          jerr.text);
		goto done;
	}
	wm = json_object_get(idx, "weight_map");
	if (!json_is_object(wm) || !json_object_size(wm)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: weight_map must be a non-empty object", ipath);
		goto done;
	}
	json_object_foreach(wm, key, v)
	{
		const char *file = json_string_value(v), *why;
		if (!file || strchr(file, '/') || !sluice__path_safe(file, strlen(file), &why)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: weight_map[\"%s\"] must name a file in the "
			                          "model directory",
			                          ipath, key);
			goto done;
		}
		for (i = 0; i < m->nshards; i++)
			if (!strcmp(strrchr(m->shards[i].path, '/') + 1, file))
				break;
		if (i < m->nshards)
			continue;
		{
			shard *grown =
			        sluice__realloc(ctx, m->shards, (m->nshards + 1) * sizeof(shard));
			if (!grown) {
				error = SLUICE_ENOMEM;
				goto done;
			}
			m->shards = grown;
			memset(&m->shards[m->nshards], 0, sizeof(shard));
			m->nshards++;
		}
		if ((error = join(ctx, &path, dir, file)) < 0 ||
		    (error = map_shard(ctx, &m->shards[m->nshards - 1], path)) < 0)
			goto done;
		free(path);
		path = NULL;
	}
	*map_out = json_incref(wm);
done:
	free(path);
	free(text);
	json_decref(idx);
	return error;
}

enum {
	SLOT_IN_NORM,
	SLOT_Q,
	SLOT_K,
	SLOT_V,
	SLOT_O,
	SLOT_POST_NORM,
	SLOT_GATE,
	SLOT_UP,
	SLOT_DOWN
};
static const char *const layer_suffix[] = {
        "input_layernorm.weight",  "self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",    "mlp.up_proj.weight",      "mlp.down_proj.weight"};
#define NSLOTS 9

static weight *layer_slot(layer *l, int slot)
{
	switch (slot) {
	case SLOT_IN_NORM:
		return &l->in_norm_w;
	case SLOT_Q:
		return &l->q.w;
	case SLOT_K:
		return &l->k.w;
	case SLOT_V:
		return &l->v.w;
	case SLOT_O:
		return &l->o.w;
	case SLOT_POST_NORM:
		return &l->post_norm_w;
	case SLOT_GATE:
		return &l->gate.w;
	case SLOT_UP:
		return &l->up.w;
	default:
		return &l->down.w;
	}
}

/* Expected [rows, cols] of a slot; cols 0 means a 1-D tensor. */
static void slot_shape(const sluice_model_config *c, int slot, size_t *rows, size_t *cols)
{
	size_t qd = (size_t)c->heads * c->head_dim, kvd = (size_t)c->kv_heads * c->head_dim;
	size_t sh[NSLOTS][2] = {
	        {c->hidden, 0},        {qd, c->hidden},       {kvd, c->hidden},
	        {kvd, c->hidden},      {c->hidden, qd},       {c->hidden, 0},
	        {c->inter, c->hidden}, {c->inter, c->hidden}, {c->hidden, c->inter}};

	*rows = sh[slot][0];
	*cols = sh[slot][1];
}

/* Resolve a tensor name to its weight and expected shape; NULL if unknown. */
static weight *resolve(sluice_model *m, const char *name, size_t *rows, size_t *cols)
{
	const sluice_model_config *c = &m->cfg;
	const char *p;
	char *end;
	unsigned long l;

	if (!strcmp(name, "model.embed_tokens.weight")) {
		*rows = c->vocab, *cols = c->hidden;
		return &m->embed;
	}
	if (!strcmp(name, "model.norm.weight")) {
		*rows = c->hidden, *cols = 0;
		return &m->norm_w;
	}
	if (!strcmp(name, "lm_head.weight") && !c->tied) {
		*rows = c->vocab, *cols = c->hidden;
		return &m->lm_head.w;
	}
	if (strncmp(name, "model.layers.", 13))
		return NULL;
	p = name + 13;
	/* canonical decimal only: "01" or "+1" would alias layer 1 */
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '.'))
		return NULL;
	errno = 0;
	l = strtoul(p, &end, 10);
	if (errno || *end != '.' || l >= c->layers)
		return NULL;
	for (int s = 0; s < NSLOTS; s++) {
		if (!strcmp(end + 1, layer_suffix[s])) {
			slot_shape(c, s, rows, cols);
			return layer_slot(&m->layers[l], s);
		}
	}
	return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

static int bind_tensor(sluice_ctx *ctx, sluice_model *m, const shard *s, const sluice_st_tensor *t)
{
	size_t rows, cols;
	weight *w = resolve(m, t->name, &rows, &cols);

	if (!w) {
		if (ends_with(t->name, ".rotary_emb.inv_freq"))
			return 0; /* recomputed from rope_theta, as transformers does */
		if (!strcmp(t->name, "lm_head.weight"))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: tensor lm_head.weight is present but "
			                         "tie_word_embeddings is true",
			                         s->path);
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s is not part of a llama model with this "
		                         "config",
		                         s->path, t->name);
	}
	if (w->data)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: tensor %s appears twice",
		                         s->path, t->name);
	if (t->dtype != SLUICE_DT_F32 && t->dtype != SLUICE_DT_BF16 && t->dtype != SLUICE_DT_F16)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s has dtype %s (F32, BF16 or F16 expected)",
		                         s->path, t->name,
		                         sluice_safetensors__dtype_name(t->dtype));
	if (t->ndim != (cols ? 2u : 1u) || t->shape[0] != rows || (cols && t->shape[1] != cols))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s has shape [%llu%s%llu], the config implies "
		                         "[%zu%s%zu]",
		                         s->path, t->name, (unsigned long long)t->shape[0],
		                         t->ndim > 1 ? ", " : "",
		                         t->ndim > 1 ? (unsigned long long)t->shape[1] : 0ull, rows,
		                         cols ? ", " : "", cols);
	w->name = t->name;
	w->data = s->map + s->hdr.data_start + t->begin;
	w->dt = t->dtype;
	w->rows = rows;
	w->cols = cols ? cols : 1;
	if (t->dtype == SLUICE_DT_F32 && host_is_le() && ((uintptr_t)w->data % sizeof(float)) == 0)
		w->f32 = (const float *)(const void *)w->data;
	return 0;
}

static int need(sluice_ctx *ctx, const weight *w, const char *name, const char *dir)
{
	if (w->data)
		return 0;
	return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: tensor %s is missing", dir, name);
}

static int vec_copy(sluice_ctx *ctx, float **out, const weight *w)
{
	if (!(*out = sluice__malloc(ctx, w->rows * sizeof(float))))
		return SLUICE_ENOMEM;
	weight_rows(*out, w, 0, w->rows);
	return 0;
}

static int bind_all(sluice_ctx *ctx, sluice_model *m, const char *dir, json_t *wmap)
{
	char name[96];
	size_t total = 0;
	int error;

	for (size_t i = 0; i < m->nshards; i++) {
		const shard *s = &m->shards[i];
		for (size_t j = 0; j < s->hdr.ntensors; j++) {
			const sluice_st_tensor *t = &s->hdr.tensors[j];
			if (wmap) {
				const char *f = json_string_value(json_object_get(wmap, t->name));
				if (!f || strcmp(f, strrchr(s->path, '/') + 1))
					return sluice_ctx__error(
					        ctx, SLUICE_EINVALID,
					        "%s: tensor %s is not mapped to this "
					        "file by the index",
					        s->path, t->name);
			}
			if ((error = bind_tensor(ctx, m, s, t)) < 0)
				return error;
			total++;
		}
	}
	if (wmap && total != json_object_size(wmap))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: the index maps %zu tensors, the shards hold %zu", dir,
		                         json_object_size(wmap), total);
	if ((error = need(ctx, &m->embed, "model.embed_tokens.weight", dir)) < 0 ||
	    (error = need(ctx, &m->norm_w, "model.norm.weight", dir)) < 0)
		return error;
	if (m->cfg.tied)
		m->lm_head.w = m->embed;
	else if ((error = need(ctx, &m->lm_head.w, "lm_head.weight", dir)) < 0)
		return error;
	for (unsigned l = 0; l < m->cfg.layers; l++) {
		for (int s = 0; s < NSLOTS; s++) {
			snprintf(name, sizeof(name), "model.layers.%u.%s", l, layer_suffix[s]);
			if ((error = need(ctx, layer_slot(&m->layers[l], s), name, dir)) < 0)
				return error;
		}
		if ((error = vec_copy(ctx, &m->layers[l].in_norm, &m->layers[l].in_norm_w)) < 0 ||
		    (error = vec_copy(ctx, &m->layers[l].post_norm, &m->layers[l].post_norm_w)) < 0)
			return error;
	}
	return vec_copy(ctx, &m->norm, &m->norm_w);
}

/*
 * inv_freq as transformers computes it: 1 / theta^(2i/d), then for llama3
 * (_compute_llama3_parameters) wavelengths beyond the original context are
 * divided by factor, those below original/high_freq_factor kept, and the
 * band between interpolated smoothly.
 */
static void rope_init(sluice_model *m)
{
	const sluice_model_config *c = &m->cfg;
	unsigned half = c->head_dim / 2;

	for (unsigned i = 0; i < half; i++) {
		double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / c->head_dim);
		if (c->rope_llama3) {
			double wl = 2 * M_PI / f, lo_wl = c->rope_orig / c->rope_low,
			       hi_wl = c->rope_orig / c->rope_high;
			if (wl > lo_wl) {
				f /= c->rope_factor;
			} else if (wl >= hi_wl) {
				double sm = (c->rope_orig / wl - c->rope_low) /
				            (c->rope_high - c->rope_low);
				f = (1 - sm) * f / c->rope_factor + sm * f;
			}
		}
		m->inv_freq[i] = (float)f;
	}
}

static int alloc_model(sluice_ctx *ctx, sluice_model *m)
{
	if (!(m->layers = sluice__calloc(ctx, m->cfg.layers, sizeof(layer))) ||
	    !(m->inv_freq = sluice__calloc(ctx, m->cfg.head_dim / 2, sizeof(float))))
		return SLUICE_ENOMEM;
	return 0;
}

static int needs_tile(const sluice_model *m)
{
	if (!m->lm_head.w.f32)
		return 1;
	for (unsigned l = 0; l < m->cfg.layers; l++) {
		const layer *y = &m->layers[l];
		if (!y->q.w.f32 || !y->k.w.f32 || !y->v.w.f32 || !y->o.w.f32 || !y->gate.w.f32 ||
		    !y->up.w.f32 || !y->down.w.f32)
			return 1;
	}
	return 0;
}

int sluice_model__open(sluice_ctx *ctx, sluice_model **out, const char *dir)
{
	sluice_model *m = NULL;
	unsigned char *text = NULL;
	size_t len;
	char *path = NULL;
	json_t *wmap = NULL;
	int error;

	*out = NULL;
	/* Its products go to OpenBLAS, opened here if no model was before. */
	if ((error = sluice_blas__load(ctx)) < 0)
		return error;
	if (!(m = sluice__calloc(ctx, 1, sizeof(*m))))
		return SLUICE_ENOMEM;
	if ((error = join(ctx, &path, dir, "config.json")) < 0 ||
	    (error = sluice_io__read_file(ctx, &text, &len, path, CONFIG_MAX)) < 0 ||
	    (error = sluice_model__parse_config(ctx, &m->cfg, (const char *)text, len, path)) < 0 ||
	    (error = alloc_model(ctx, m)) < 0)
		goto done;
	free(path);
	path = NULL;
	if ((error = join(ctx, &path, dir, "model.safetensors.index.json")) < 0)
		goto done;
	if (file_exists(path)) {
		if ((error = map_indexed(ctx, m, dir, path, &wmap)) < 0)
			goto done;
	} else {
		free(path);
		path = NULL;
		if ((error = join(ctx, &path, dir, "model.safetensors")) < 0)
			goto done;
		if (!file_exists(path)) {
			error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
			                          "%s: no model.safetensors or "
			                          "model.safetensors.index.json",
			                          dir);
			goto done;
		}
		if (!(m->shards = sluice__calloc(ctx, 1, sizeof(shard)))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		m->nshards = 1;
		if ((error = map_shard(ctx, &m->shards[0], path)) < 0)
			goto done;
	}
	if ((error = bind_all(ctx, m, dir, wmap)) < 0)
		goto done;
	if (needs_tile(m) && !(m->tile = sluice__malloc(ctx, TILE_FLOATS * sizeof(float)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	rope_init(m);
	*out = m;
	m = NULL;
done:
	json_decref(wmap);
	free(path);
	free(text);
	sluice_model__free(m);
	return error;
}

/* ---- adapters ----------------------------------------------------------- */

static void lora_dispose(lora *l)
{
	free(l->a);
	free(l->b);
	memset(l, 0, sizeof(*l));
}

static linear *module_linear(sluice_model *m, const char *module)
{
	static const char *const names[] = {
	        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	        "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
	char *end;
	unsigned long l;

	if (!strcmp(module, "lm_head"))
		return m->cfg.tied ? NULL : &m->lm_head;
	if (strncmp(module, "model.layers.", 13) || module[13] < '0' || module[13] > '9' ||
	    (module[13] == '0' && module[14] != '.'))
		return NULL;
	errno = 0;
	l = strtoul(module + 13, &end, 10);
	if (errno || *end != '.' || l >= m->cfg.layers)
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(end + 1, names[i])) {
			layer *y = &m->layers[l];
			linear *lins[] = {&y->q, &y->k, &y->v, &y->o, &y->gate, &y->up, &y->down};
			return lins[i];
		}
	}
	return NULL;
}

/* Read a (small) adapter tensor into a new f32 array. */
static int read_tensor(sluice_ctx *ctx, float **out, int fd, const sluice_st_header *h,
                       const char *name, uint64_t count, const char *path)
{
	const sluice_st_tensor *t = sluice_safetensors__find(h, name);
	unsigned char *raw = NULL;
	size_t n;
	int error;

	*out = NULL;
	if (!t)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: tensor %s is missing", path,
		                         name);
	if (t->dtype != SLUICE_DT_F32 && t->dtype != SLUICE_DT_BF16 && t->dtype != SLUICE_DT_F16)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s has dtype %s (F32, BF16 or F16 expected)",
		                         path, name, sluice_safetensors__dtype_name(t->dtype));
	n = (size_t)(t->end - t->begin) / esize(t->dtype);
	/* sluice_peft__load checked the shapes; this guards the reads below */
	if (n != count)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor %s has %zu elements, %llu expected", path,
		                         name, n, (unsigned long long)count);
	if (!(raw = sluice__malloc(ctx, (size_t)(t->end - t->begin) + 1)) ||
	    !(*out = sluice__malloc(ctx, n * sizeof(float) + 1))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	if ((error = sluice_io__pread_all(ctx, fd, raw, (size_t)(t->end - t->begin),
	                                  (off_t)(h->data_start + t->begin), path)) < 0)
		goto done;
	to_f32(*out, raw, t->dtype, n);
done:
	if (error < 0) {
		free(*out);
		*out = NULL;
	}
	free(raw);
	return error;
}

typedef struct {
	linear *lin; /* NULL: the embedding */
	lora l;
} pending;

int sluice_model__adapter_open_on(sluice_ctx *ctx, sluice_model_adapter *out,
                                  const sluice_st_header *const *base, size_t nbase,
                                  const char *dir)
{
	unsigned char *cfg = NULL;
	char *cpath = NULL;
	size_t cfglen;
	struct stat st;
	int error;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if ((error = join(ctx, &cpath, dir, "adapter_config.json")) < 0 ||
	    (error = join(ctx, &out->path, dir, "adapter_model.safetensors")) < 0 ||
	    (error = sluice_io__read_file(ctx, &cfg, &cfglen, cpath, CONFIG_MAX)) < 0)
		goto done;
	if ((out->fd = open(out->path, O_RDONLY | O_CLOEXEC)) < 0) {
		error = errno == ENOENT ? sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                                            "%s does not exist", out->path)
		                        : sluice_ctx__oserror(ctx, "cannot open %s", out->path);
		goto done;
	}
	if (fstat(out->fd, &st) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot stat %s", out->path);
		goto done;
	}
	if ((error = sluice_safetensors__read(ctx, &out->hdr, out->fd, (uint64_t)st.st_size,
	                                      out->path)) < 0)
		goto done;
	error = sluice_peft__load(ctx, &out->peft, (const char *)cfg, cfglen, cpath, &out->hdr,
	                          out->path, base, nbase);
done:
	if (error < 0)
		sluice_model__adapter_dispose(out);
	free(cfg);
	free(cpath);
	return error;
}

int sluice_model__adapter_open(sluice_ctx *ctx, sluice_model_adapter *out, const sluice_model *m,
                               const char *dir)
{
	const sluice_st_header **base;
	int error;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!(base = sluice__calloc(ctx, m->nshards, sizeof(*base))))
		return SLUICE_ENOMEM;
	for (size_t i = 0; i < m->nshards; i++)
		base[i] = &m->shards[i].hdr;
	error = sluice_model__adapter_open_on(ctx, out, base, m->nshards, dir);
	free(base);
	return error;
}

int sluice_model__adapter_tensor(sluice_ctx *ctx, float **out, const sluice_model_adapter *a,
                                 const char *name, uint64_t count)
{
	return read_tensor(ctx, out, a->fd, &a->hdr, name, count, a->path);
}

void sluice_model__adapter_dispose(sluice_model_adapter *a)
{
	if (a->fd >= 0)
		close(a->fd);
	sluice_peft__dispose(&a->peft);
	sluice_safetensors__dispose(&a->hdr);
	free(a->path);
	memset(a, 0, sizeof(*a));
	a->fd = -1;
}

int sluice_model__add_adapter(sluice_ctx *ctx, sluice_model *m, const char *dir, double stack_scale)
{
	sluice_model_adapter ad;
	const sluice_peft_adapter *peft = &ad.peft;
	const char *apath;
	pending *pend = NULL;
	size_t i;
	unsigned max_r = m->max_r;
	int error;

	if (!isfinite(stack_scale))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: the stack scale is not finite",
		                         dir);
	if ((error = sluice_model__adapter_open(ctx, &ad, m, dir)) < 0)
		goto done;
	apath = ad.path;
	if (!(pend = sluice__calloc(ctx, peft->nmodules ? peft->nmodules : 1, sizeof(*pend)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < peft->nmodules; i++) {
		const sluice_peft_module *pm = &peft->modules[i];
		double s = pm->scale * stack_scale;
		if (pm->embedding != !strcmp(pm->module, "model.embed_tokens") ||
		    (!pm->embedding && !(pend[i].lin = module_linear(m, pm->module)))) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: module %s cannot be adapted by the built-in "
			                          "evaluator",
			                          apath, pm->module);
			goto done;
		}
		if (!isfinite(s) || fabs(s) > 3.4e38) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: module %s: scale %g is out of range", apath,
			                          pm->module, s);
			goto done;
		}
		pend[i].l.r = pm->r;
		pend[i].l.scale = (float)s;
		if ((error = sluice_model__adapter_tensor(ctx, &pend[i].l.a, &ad, pm->a_name,
		                                          (uint64_t)pm->r * pm->in_features)) < 0 ||
		    (error = sluice_model__adapter_tensor(ctx, &pend[i].l.b, &ad, pm->b_name,
		                                          (uint64_t)pm->r * pm->out_features)) < 0)
			goto done;
		if (pm->r > max_r)
			max_r = pm->r;
	}
	/* Grow every list first so that committing cannot fail halfway. */
	for (i = 0; i < peft->nmodules; i++) {
		lora **list = pend[i].lin ? &pend[i].lin->loras : &m->embed_loras;
		size_t cnt = pend[i].lin ? pend[i].lin->nloras : m->nembed_loras;
		lora *grown = sluice__realloc(ctx, *list, (cnt + 1) * sizeof(lora));
		if (!grown) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		*list = grown;
	}
	for (i = 0; i < peft->nmodules; i++) {
		if (pend[i].lin)
			pend[i].lin->loras[pend[i].lin->nloras++] = pend[i].l;
		else
			m->embed_loras[m->nembed_loras++] = pend[i].l;
		memset(&pend[i].l, 0, sizeof(lora));
	}
	m->max_r = max_r;
	m->nadapters++;
done:
	if (pend)
		for (i = 0; i < peft->nmodules; i++)
			lora_dispose(&pend[i].l);
	free(pend);
	sluice_model__adapter_dispose(&ad);
	return error;
}

/* ---- forward ------------------------------------------------------------ */

/*
 * Y[n][out] = X[n][in] . W[out][in]^T + sum_i s_i . (X . A_i^T) . B_i^T,
 * tmp holds n x max_r floats for the LoRA intermediate.
 */
static void linear_fwd(sluice_model *m, const linear *L, const float *X, size_t n, float *Y,
                       float *tmp)
{
	const weight *w = &L->w;
	const int N = (int)n, out = (int)w->rows, in = (int)w->cols;

	if (w->f32) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, X, in,
		            w->f32, in, 0.0f, Y, out);
	} else {
		size_t band = TILE_FLOATS / w->cols;
		for (size_t r0 = 0; r0 < w->rows; r0 += band) {
			size_t t = w->rows - r0 < band ? w->rows - r0 : band;
			weight_rows(m->tile, w, r0, t);
			/* X[n][in] . tile[t][in]^T -> Y[:, r0:r0+t] */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, (int)t, in, 1.0f, X,
			            in, m->tile, in, 0.0f, Y + r0, out);
		}
	}
	for (size_t i = 0; i < L->nloras; i++) {
		const lora *a = &L->loras[i];
		const int r = (int)a->r;
		/* X[n][in] . A[r][in]^T -> tmp[n][r]; tmp . B[out][r]^T * s -> += Y */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, in, 1.0f, X, in, a->a,
		            in, 0.0f, tmp, r);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, r, a->scale, tmp, r,
		            a->b, r, 1.0f, Y, out);
	}
}

/* y[n][d] = x * rsqrt(mean(x^2) + eps) * w, per row, in f32 as transformers does. */
SLUICE_VCLONES static void rmsnorm(float *y, const float *x, const float *w, size_t n, size_t d,
                                   double eps)
{
	for (size_t t = 0; t < n; t++) {
		const float *xr = x + t * d;
		float *yr = y + t * d;
		double ss = 0;
		float inv;
		for (size_t i = 0; i < d; i++)
			ss += (double)xr[i] * xr[i];
		inv = (float)(1.0 / sqrt(ss / (double)d + eps));
		for (size_t i = 0; i < d; i++)
			yr[i] = w[i] * (xr[i] * inv);
	}
}

/*
 * Rotate-half RoPE on x[n][nh][hd] in place: for i < hd/2,
 * (x_i, x_{i+hd/2}) -> (x_i cos - x_{i+hd/2} sin, x_{i+hd/2} cos + x_i sin)
 * with angle pos . inv_freq[i].
 */
SLUICE_VCLONES static void rope(float *x, size_t n, size_t nh, size_t hd, const float *cs,
                                const float *sn)
{
	size_t half = hd / 2;

	for (size_t t = 0; t < n; t++) {
		for (size_t h = 0; h < nh; h++) {
			float *v = x + (t * nh + h) * hd;
			for (size_t i = 0; i < half; i++) {
				float a = v[i], b = v[i + half], c = cs[t * half + i],
				      s = sn[t * half + i];
				v[i] = a * c - b * s;
				v[i + half] = b * c + a * s;
			}
		}
	}
}

/*
 * The lane loops below keep LANES partial results so that a reduction over a
 * row vectorizes without reassociating a single running value, which the
 * compiler may not do for floating point.
 */
enum { LANES = 8 };

/*
 * The largest of row[0..len), len >= 1, in LANES running maxima. Inline, so
 * that each clone of its callers vectorizes it for its own target.
 */
static inline float row_max(const float *row, size_t len)
{
	float m[LANES], mx;
	size_t j;

	for (int l = 0; l < LANES; l++)
		m[l] = row[0];
	for (j = 0; j + LANES <= len; j += LANES)
		for (int l = 0; l < LANES; l++)
			m[l] = row[j + l] > m[l] ? row[j + l] : m[l];
	for (; j < len; j++)
		m[0] = row[j] > m[0] ? row[j] : m[0];
	mx = m[0];
	for (int l = 1; l < LANES; l++)
		mx = m[l] > mx ? m[l] : mx;
	return mx;
}

/*
 * row[0..len) <- softmax(row[0..len)) and row[len..n) <- 0: one row of causal
 * scores, the masked columns given weight 0. The sum is kept in double.
 */
SLUICE_VCLONES static void softmax_causal(float *row, size_t len, size_t n)
{
	const float mx = row_max(row, len);
	double s[LANES], sum = 0, inv;
	size_t j;

	for (int l = 0; l < LANES; l++)
		s[l] = 0;
	for (j = 0; j + LANES <= len; j += LANES)
		for (int l = 0; l < LANES; l++) {
			row[j + l] = sluice_vexpf(row[j + l] - mx);
			s[l] += row[j + l];
		}
	for (; j < len; j++) {
		row[j] = sluice_vexpf(row[j] - mx);
		s[0] += row[j];
	}
	for (int l = 0; l < LANES; l++)
		sum += s[l];
	/* In double, x . (1/sum) rounds to the same float as x / sum but for
	 * the rarest ties, and a multiply is several times cheaper. */
	inv = 1.0 / sum;
	for (j = 0; j < len; j++)
		row[j] = (float)(row[j] * inv);
	memset(row + len, 0, (n - len) * sizeof(*row));
}

/* g[i] <- silu(g[i]) . u[i] for i < count, silu(g) = g / (1 + e^-g) */
SLUICE_VCLONES static void silu_mul(float *restrict g, const float *restrict u, size_t count)
{
	size_t i;

	for (i = 0; i + LANES <= count; i += LANES)
		for (int l = 0; l < LANES; l++)
			g[i + l] = g[i + l] / (1.0f + sluice_vexpf(-g[i + l])) * u[i + l];
	for (; i < count; i++)
		g[i] = g[i] / (1.0f + sluice_vexpf(-g[i])) * u[i];
}

/*
 * Causal GQA attention. q[n][H*hd], k,v[n][KV*hd] -> att[n][H*hd]; query
 * head h reads KV head h / (H/KV), which is repeat_kv's layout. S is an
 * n x n scratch. att may be q itself: head h's output lands in head h's
 * columns after the last read of them.
 */
static void attention(float *att, const float *q, const float *k, const float *v, float *S,
                      size_t n, const sluice_model_config *c)
{
	const int N = (int)n, hd = (int)c->head_dim, qs = (int)(c->heads * c->head_dim),
	          ks = (int)(c->kv_heads * c->head_dim);
	const unsigned rep = c->heads / c->kv_heads;
	const float scale = (float)(1.0 / sqrt((double)c->head_dim));

	for (unsigned h = 0; h < c->heads; h++) {
		size_t g = h / rep;
		/* S[n][n] = scale . Q_h[n][hd] . K_g[n][hd]^T */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hd, scale,
		            q + (size_t)h * hd, qs, k + g * hd, ks, 0.0f, S, N);
		for (size_t t = 0; t < n; t++)
			softmax_causal(S + t * n, t + 1, n);
		/* att_h[n][hd] = P[n][n] . V_g[n][hd] */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hd, N, 1.0f, S, N,
		            v + g * hd, ks, 0.0f, att + (size_t)h * hd, qs);
	}
}

/*
 * The branch rows' attention: rows [n, n + nb) of q, k, v each follow the
 * n prefix rows as one more token at position n, and attend to the prefix
 * and to themselves, never to one another. S is an nb x (n + 1) scratch:
 * each row's n prefix scores, then its own. att may be q, as in attention().
 */
static void branch_attention(float *att, const float *q, const float *k, const float *v, float *S,
                             size_t n, size_t nb, const sluice_model_config *c)
{
	const int N = (int)n, NB = (int)nb, W = N + 1, hd = (int)c->head_dim,
	          qs = (int)(c->heads * c->head_dim), ks = (int)(c->kv_heads * c->head_dim);
	const unsigned rep = c->heads / c->kv_heads;
	const float scale = (float)(1.0 / sqrt((double)c->head_dim));
	const float *qb = q + n * (size_t)qs, *kb = k + n * (size_t)ks, *vb = v + n * (size_t)ks;
	float *ab = att + n * (size_t)qs;

	for (unsigned h = 0; h < c->heads; h++) {
		size_t g = h / rep;
		/* S[:, 0:n] = scale . Qb_h[nb][hd] . K_g[n][hd]^T; S[:, n] = its own key's score */
		if (n)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, NB, N, hd, scale,
			            qb + (size_t)h * hd, qs, k + g * hd, ks, 0.0f, S, W);
		for (size_t j = 0; j < nb; j++) {
			const float *qj = qb + j * (size_t)qs + (size_t)h * hd,
			            *kj = kb + j * (size_t)ks + g * (size_t)hd;
			float d = 0;
			for (int i = 0; i < hd; i++)
				d += qj[i] * kj[i];
			S[j * (size_t)W + n] = scale * d;
			softmax_causal(S + j * (size_t)W, n + 1, n + 1);
		}
		/* att_h[nb][hd] = P[:, 0:n] . V_g[n][hd], then + P[:, n] . its own value */
		if (n)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NB, hd, N, 1.0f, S,
			            W, v + g * hd, ks, 0.0f, ab + (size_t)h * hd, qs);
		for (size_t j = 0; j < nb; j++) {
			float *aj = ab + j * (size_t)qs + (size_t)h * hd, p = S[j * (size_t)W + n];
			const float *vj = vb + j * (size_t)ks + g * (size_t)hd;
			for (int i = 0; i < hd; i++)
				aj[i] = (n ? aj[i] : 0.0f) + p * vj[i];
		}
	}
}

static void embed(const sluice_model *m, float *x, const int32_t *ids, size_t n, float *tmp)
{
	const size_t H = m->cfg.hidden;

	for (size_t t = 0; t < n; t++)
		weight_rows(x + t * H, &m->embed, (size_t)ids[t], 1);
	for (size_t i = 0; i < m->nembed_loras; i++) {
		const lora *a = &m->embed_loras[i];
		/* tmp[n][r] = A[:, id]^T per token (A is [r][vocab]); x += s . tmp . B^T */
		for (size_t t = 0; t < n; t++)
			for (unsigned j = 0; j < a->r; j++)
				tmp[t * a->r + j] = a->a[(size_t)j * m->cfg.vocab + (size_t)ids[t]];
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)H, (int)a->r,
		            a->scale, tmp, (int)a->r, a->b, (int)a->r, 1.0f, x, (int)H);
	}
}

/*
 * One allocation for all activations of an n-token pass. The attention
 * output has no slot of its own: head h's output is written over head h's
 * queries, which nothing reads after that head's scores (attention()).
 */
enum { B_X, B_H, B_Q, B_K, B_V, B_G, B_U, B_S, B_TMP, B_COS, B_SIN, B_COUNT };

/*
 * The transformer body shared by every kind of pass: checks the arguments,
 * allocates the activations (*buf, to be freed by the caller, with b[]
 * pointing into it), runs every layer over ids[0..n) and leaves the final
 * RMSNorm of rows [first, n + nb) in b[B_H] + first * hidden. With nb > 0,
 * ids[n..n + nb) are branches: each is one more token after ids[0..n), at
 * position n, seeing the prefix and itself (branch_attention); the prefix
 * rows are computed as without them.
 */
static int trunk(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n, size_t nb,
                 size_t first, float **buf, float *b[B_COUNT])
{
	const sluice_model_config *c = &m->cfg;
	const size_t H = c->hidden, INTER = c->inter, QD = (size_t)c->heads * c->head_dim,
	             KVD = (size_t)c->kv_heads * c->head_dim, half = c->head_dim / 2;
	const size_t rows = n + nb;
	size_t per[B_COUNT] = {
	        H,    H,   QD, KVD, KVD, INTER, INTER, n + (nb > 0), m->max_r ? m->max_r : 1,
	        half, half};
	size_t off[B_COUNT], total = 0;

	*buf = NULL;
	if (rows == 0 || n > INT32_MAX / 2 || nb > INT32_MAX / 2)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "forward: sequence length %zu out of range", n);
	if (first >= rows)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "forward: first logits row %zu is past the sequence (%zu)",
		                         first, rows);
	for (size_t t = 0; t < rows; t++)
		if (ids[t] < 0 || (uint32_t)ids[t] >= c->vocab)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "forward: token %zu is %ld, outside the vocabulary "
			        "[0, %u)",
			        t, (long)ids[t], c->vocab);
	for (int i = 0; i < B_COUNT; i++) {
		size_t sz;
		off[i] = total;
		if (sluice__mul_ovf(&sz, per[i], rows) || sluice__add_ovf(&total, total, sz))
			return sluice_ctx__error(ctx, SLUICE_ENOMEM,
			                         "forward: %zu tokens need too much memory", rows);
	}
	if (total > SIZE_MAX / sizeof(float) ||
	    !(*buf = sluice__malloc(ctx, total * sizeof(float))))
		return SLUICE_ENOMEM;
	for (int i = 0; i < B_COUNT; i++)
		b[i] = *buf + off[i];
	/* cos/sin[n][hd/2] of pos . inv_freq, the angle rounded to f32 as transformers does */
	for (size_t t = 0; t < rows; t++) {
		size_t pos = t < n ? t : n; /* every branch sits at position n */
		for (size_t i = 0; i < half; i++) {
			float ang = (float)pos * m->inv_freq[i];
			b[B_COS][t * half + i] = (float)cos((double)ang);
			b[B_SIN][t * half + i] = (float)sin((double)ang);
		}
	}
	embed(m, b[B_X], ids, rows, b[B_TMP]);
	for (unsigned l = 0; l < c->layers; l++) {
		const layer *y = &m->layers[l];
		rmsnorm(b[B_H], b[B_X], y->in_norm, rows, H, c->rms_eps);
		linear_fwd(m, &y->q, b[B_H], rows, b[B_Q], b[B_TMP]);
		linear_fwd(m, &y->k, b[B_H], rows, b[B_K], b[B_TMP]);
		linear_fwd(m, &y->v, b[B_H], rows, b[B_V], b[B_TMP]);
		rope(b[B_Q], rows, c->heads, c->head_dim, b[B_COS], b[B_SIN]);
		rope(b[B_K], rows, c->kv_heads, c->head_dim, b[B_COS], b[B_SIN]);
		/* Each writes its output over its own rows' queries only. */
		if (nb)
			branch_attention(b[B_Q], b[B_Q], b[B_K], b[B_V], b[B_S], n, nb, c);
		if (n)
			attention(b[B_Q], b[B_Q], b[B_K], b[B_V], b[B_S], n, c);
		/* o_proj of the attention output (in B_Q) into H, then the residual: x += o */
		linear_fwd(m, &y->o, b[B_Q], rows, b[B_H], b[B_TMP]);
		for (size_t i = 0; i < rows * H; i++)
			b[B_X][i] += b[B_H][i];
		rmsnorm(b[B_H], b[B_X], y->post_norm, rows, H, c->rms_eps);
		linear_fwd(m, &y->gate, b[B_H], rows, b[B_G], b[B_TMP]);
		linear_fwd(m, &y->up, b[B_H], rows, b[B_U], b[B_TMP]);
		silu_mul(b[B_G], b[B_U], rows * INTER);
		linear_fwd(m, &y->down, b[B_G], rows, b[B_H], b[B_TMP]);
		for (size_t i = 0; i < rows * H; i++)
			b[B_X][i] += b[B_H][i];
	}
	/* Only the rows the caller wants go through the final norm. */
	rmsnorm(b[B_H] + first * H, b[B_X] + first * H, m->norm, rows - first, H, c->rms_eps);
	return 0;
}

int sluice_model__forward(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                          float *logits)
{
	return sluice_model__forward_from(ctx, m, ids, n, 0, logits);
}

int sluice_model__forward_from(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                               size_t first, float *logits)
{
	float *buf, *b[B_COUNT];
	int error;

	if ((error = trunk(ctx, m, ids, n, 0, first, &buf, b)) < 0)
		return error;
	linear_fwd(m, &m->lm_head, b[B_H] + first * m->cfg.hidden, n - first, logits, b[B_TMP]);
	free(buf);
	return 0;
}

/*
 * One band of a row's logits, row[0..len), folded into the row's running
 * log-sum-exp: *mx its largest logit so far, *sum the sum of e^(x - *mx)
 * over the logits so far (each term in f32, the sum in double), rescaled
 * when the band raises the maximum.
 */
SLUICE_VCLONES static void lse_fold(const float *row, size_t len, float *mx, double *sum)
{
	const float bm = row_max(row, len);
	double s[LANES], acc = 0;
	float m;
	size_t j;

	if (bm > *mx) {
		*sum *= exp((double)*mx - bm);
		*mx = bm;
	}
	m = *mx;
	for (int l = 0; l < LANES; l++)
		s[l] = 0;
	for (j = 0; j + LANES <= len; j += LANES)
		for (int l = 0; l < LANES; l++)
			s[l] += sluice_vexpf(row[j + l] - m);
	for (; j < len; j++)
		s[0] += sluice_vexpf(row[j] - m);
	for (int l = 0; l < LANES; l++)
		acc += s[l];
	*sum += acc;
}

/*
 * The log-probabilities of chosen targets in each of rows rows: the final
 * normed activations x[rows][hidden] (inside the trunk's buffer b), and
 * lp[j * nt + k] = log softmax(lm_head row j)[targets[j * nt + k]]. The
 * lm_head goes over the vocabulary in bands of at most a tile's rows (so
 * 16-bit weights are widened once each, as in linear_fwd). A band's logits
 * go into the MLP's gate and up activations, which are free once the trunk
 * is done and hold at least rows x 2.inter floats, and are folded into a
 * running log-sum-exp per row: no rows x vocab matrix is ever held.
 */
static int head_logprobs(sluice_ctx *ctx, sluice_model *m, float *b[B_COUNT], const float *x,
                         size_t rows, const int32_t *targets, size_t nt, double *lp)
{
	const sluice_model_config *c = &m->cfg;
	const linear *L = &m->lm_head;
	const weight *w = &L->w;
	const size_t H = c->hidden, V = c->vocab;
	float *y = b[B_G], *mx = NULL, *tl = NULL;
	double *sum = NULL;
	size_t band = TILE_FLOATS / H;
	int error = 0;

	if (band > 2 * (size_t)c->inter)
		band = 2 * (size_t)c->inter;
	if (band > V)
		band = V;
	if (!(mx = sluice__malloc(ctx, rows * sizeof(*mx))) ||
	    !(tl = sluice__calloc(ctx, rows * nt, sizeof(*tl))) ||
	    !(sum = sluice__calloc(ctx, rows, sizeof(*sum)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (size_t j = 0; j < rows; j++)
		mx[j] = -INFINITY;
	for (size_t r0 = 0; r0 < V; r0 += band) {
		size_t t = V - r0 < band ? V - r0 : band;
		const float *wt = w->f32 ? w->f32 + r0 * H : m->tile;

		if (!w->f32)
			weight_rows(m->tile, w, r0, t);
		/* y[rows][t] = x . W[r0:r0+t]^T + sum_i s_i . (x . A_i^T) . B_i[r0:r0+t]^T */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)t, (int)H,
		            1.0f, x, (int)H, wt, (int)H, 0.0f, y, (int)t);
		for (size_t i = 0; i < L->nloras; i++) {
			const lora *a = &L->loras[i];
			const int r = (int)a->r;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, r, (int)H,
			            1.0f, x, (int)H, a->a, (int)H, 0.0f, b[B_TMP], r);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)t, r,
			            a->scale, b[B_TMP], r, a->b + r0 * a->r, r, 1.0f, y, (int)t);
		}
		for (size_t j = 0; j < rows; j++) {
			lse_fold(y + j * t, t, &mx[j], &sum[j]);
			for (size_t k = 0; k < nt; k++) {
				size_t tg = (size_t)targets[j * nt + k];
				if (tg >= r0 && tg < r0 + t)
					tl[j * nt + k] = y[j * t + tg - r0];
			}
		}
	}
	for (size_t j = 0; j < rows; j++)
		for (size_t k = 0; k < nt; k++)
			lp[j * nt + k] = (double)tl[j * nt + k] - ((double)mx[j] + log(sum[j]));
done:
	free(mx);
	free(tl);
	free(sum);
	return error;
}

int sluice_model__score_next(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                             size_t first, const int32_t *targets, double *lp)
{
	float *buf = NULL, *b[B_COUNT] = {0};
	int error;

	for (size_t j = 0; first < n && j < n - first; j++)
		if (targets[j] < 0 || (uint32_t)targets[j] >= m->cfg.vocab)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "score: target %zu is %ld, outside the vocabulary [0, %u)", j,
			        (long)targets[j], m->cfg.vocab);
	if ((error = trunk(ctx, m, ids, n, 0, first, &buf, b)) < 0)
		return error;
	error = head_logprobs(ctx, m, b, b[B_H] + first * m->cfg.hidden, n - first, targets, 1, lp);
	free(buf);
	return error;
}

int sluice_model__branch_logprobs(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                                  const int32_t *next, size_t nb, const int32_t *targets, size_t nt,
                                  double *lp, double *lp_last)
{
	float *buf = NULL, *b[B_COUNT] = {0};
	int32_t *all = NULL, *tg = NULL;
	double *out = NULL;
	/* With lp_last, the head also reads the prefix's last row, which the trunk computes anyway.
	 */
	const size_t first = lp_last && n ? n - 1 : n;
	size_t total, rows;
	int error;

	if (nb == 0 || nt == 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "branches: %s to score",
		                         nb ? "no targets" : "no branches");
	for (size_t k = 0; k < nt; k++)
		if (targets[k] < 0 || (uint32_t)targets[k] >= m->cfg.vocab)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "branches: target %zu is %ld, outside the vocabulary [0, %u)", k,
			        (long)targets[k], m->cfg.vocab);
	rows = n + nb - first;
	if (sluice__add_ovf(&total, n, nb) || sluice__mul_ovf(&total, rows, nt) ||
	    !(all = sluice__malloc(ctx, (n + nb) * sizeof(*all))) ||
	    !(tg = sluice__malloc(ctx, rows * nt * sizeof(*tg))) ||
	    !(out = sluice__malloc(ctx, rows * nt * sizeof(*out)))) {
		free(all);
		free(tg);
		return SLUICE_ENOMEM;
	}
	memcpy(all, ids, n * sizeof(*all));
	memcpy(all + n, next, nb * sizeof(*all));
	for (size_t j = 0; j < rows; j++)
		memcpy(tg + j * nt, targets, nt * sizeof(*tg));
	if ((error = trunk(ctx, m, all, n, nb, first, &buf, b)) == 0)
		error = head_logprobs(ctx, m, b, b[B_H] + first * m->cfg.hidden, rows, tg, nt, out);
	if (error == 0) {
		memcpy(lp, out + (n - first) * nt, nb * nt * sizeof(*lp));
		if (lp_last && n)
			memcpy(lp_last, out, nt * sizeof(*lp_last));
	}
	free(buf);
	free(all);
	free(tg);
	free(out);
	return error;
}

/* ---- the rest ----------------------------------------------------------- */

const sluice_model_config *sluice_model__config(const sluice_model *m)
{
	return &m->cfg;
}

size_t sluice_model__nadapters(const sluice_model *m)
{
	return m->nadapters;
}

void sluice_model__embed_rows(const sluice_model *m, float *dst, size_t first, size_t count)
{
	weight_rows(dst, &m->embed, first, count);
}

const float *sluice_model__norm_weight(const sluice_model *m, unsigned l, int post)
{
	return post ? m->layers[l].post_norm : m->layers[l].in_norm;
}

/* OpenBLAS's threading build, from openblas_get_parallel(). */
static const char *blas_build(int parallel)
{
	switch (parallel) {
	case 0:
		return "serial";
	case 1:
		return "pthread";
	case 2:
		return "openmp";
	default:
		return "unknown";
	}
}

size_t sluice_model__identity(const sluice_model *m, char *buf, size_t len)
{
	const char *cfg = openblas_get_config(), *core = openblas_get_corename();
	char ver[32] = "unknown";
	int n;

	(void)m;
	/* openblas_get_config() starts "OpenBLAS 0.3.21 ..." */
	if (cfg && !strncmp(cfg, "OpenBLAS ", 9)) {
		size_t k = strcspn(cfg + 9, " ");
		if (k > 0 && k < sizeof(ver)) {
			memcpy(ver, cfg + 9, k);
			ver[k] = '\0';
		}
	}
	n = snprintf(buf, len, "builtin-cpu; openblas %s %s %s; threads %d; sluice %s; numerics %d",
	             ver, blas_build(openblas_get_parallel()), core ? core : "unknown",
	             openblas_get_num_threads(), SLUICE_MODEL_SLUICE_VERSION,
	             SLUICE_MODEL_NUMERICS);
	return n < 0 ? 0 : (size_t)n;
}

void sluice_model__log_softmax(float *row, size_t n)
{
	double mx = -INFINITY, sum = 0, lse;

	for (size_t i = 0; i < n; i++)
		mx = row[i] > mx ? row[i] : mx;
	for (size_t i = 0; i < n; i++)
		sum += exp((double)row[i] - mx);
	lse = mx + log(sum);
	for (size_t i = 0; i < n; i++)
		row[i] = (float)((double)row[i] - lse);
}

static void linear_dispose(linear *L)
{
	for (size_t i = 0; i < L->nloras; i++)
		lora_dispose(&L->loras[i]);
	free(L->loras);
}

void sluice_model__free(sluice_model *m)
{
	if (!m)
		return;
	if (m->layers) {
		for (unsigned l = 0; l < m->cfg.layers; l++) {
			layer *y = &m->layers[l];
			free(y->in_norm);
			free(y->post_norm);
			linear_dispose(&y->q);
			linear_dispose(&y->k);
			linear_dispose(&y->v);
			linear_dispose(&y->o);
			linear_dispose(&y->gate);
			linear_dispose(&y->up);
			linear_dispose(&y->down);
		}
	}
	free(m->layers);
	linear_dispose(&m->lm_head);
	for (size_t i = 0; i < m->nembed_loras; i++)
		lora_dispose(&m->embed_loras[i]);
	free(m->embed_loras);
	free(m->norm);
	free(m->tile);
	free(m->inv_freq);
	unmap_shards(m);
	free(m);
}
