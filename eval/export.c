/*
 * eval/export.c - a version's adapter stack materialised as one PEFT LoRA
 * adapter (export.h says what is written and why it equals the stack).
 */
#include "export.h"
#include "sluice/export.h"
#include "engine.h"
#include "model.h"
#include "peft.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The stacked rank's cap: far above any served adapter, and R x in stays in size_t. */
#define STACK_MAX_RANK (1u << 16)

/* One adapter of the stack, open and checked against the base. */
typedef struct {
	const char *name;   /* the state's adapter name (borrowed from the state) */
	double stack_scale; /* the state's "scale" */
	sluice_model_adapter ad;
	unsigned width;  /* rows it owns in the stacked rank: its largest module rank */
	unsigned offset; /* its first row */
} member;

/* One module of the union. */
typedef struct {
	const char *module; /* borrowed from a member's peft */
	int embedding;
	uint64_t in, out;
} umod;

/* One output tensor: module k's A (half 0) or B (half 1). */
typedef struct {
	char *name;
	size_t mod;
	int half;
} otensor;

typedef struct {
	sluice_ctx *ctx;
	member *m;
	size_t nm;
	umod *mods;
	size_t nmods;
	unsigned R;
	sluice_st_header *base;
	size_t nbase;
} stack;

static void stack_dispose(stack *s)
{
	for (size_t i = 0; i < s->nm; i++)
		sluice_model__adapter_dispose(&s->m[i].ad);
	free(s->m);
	free(s->mods);
	for (size_t i = 0; i < s->nbase; i++)
		sluice_safetensors__dispose(&s->base[i]);
	free(s->base);
	memset(s, 0, sizeof(*s));
}

/* The headers of the base's safetensors files in the checked-out state. */
static int read_base(stack *s, json_t *state, const char *dir)
{
	json_t *files = json_object_get(json_object_get(state, "base"), "files"), *f;
	size_t i;
	int error = SLUICE_OK;

	if (!json_is_array(files))
		return sluice_ctx__error(s->ctx, SLUICE_EINVALID, "the version has no base model");
	if (!(s->base = sluice__calloc(s->ctx, json_array_size(files) + 1, sizeof(*s->base))))
		return SLUICE_ENOMEM;
	json_array_foreach(files, i, f)
	{
		const char *rel = sluice__jstr(json_object_get(f, "path"));
		size_t n = strlen(rel);
		char path[PATH_MAX];
		struct stat st;
		int fd;

		if (n < 12 || strcmp(rel + n - 12, ".safetensors"))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path))
			return sluice_ctx__error(s->ctx, SLUICE_EINVALID, "path too long: %s/%s",
			                         dir, rel);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return sluice_ctx__oserror(s->ctx, "cannot open %s", path);
		if (fstat(fd, &st) < 0)
			error = sluice_ctx__oserror(s->ctx, "cannot stat %s", path);
		else
			error = sluice_safetensors__read(s->ctx, &s->base[s->nbase], fd,
			                                 (uint64_t)st.st_size, path);
		close(fd);
		if (error < 0)
			return error;
		s->nbase++;
	}
	return SLUICE_OK;
}

static int cmp_umod(const void *a, const void *b)
{
	return strcmp(((const umod *)a)->module, ((const umod *)b)->module);
}

static int cmp_otensor(const void *a, const void *b)
{
	return strcmp(((const otensor *)a)->name, ((const otensor *)b)->name);
}

/* The module of member k named module, or NULL. peft's modules are sorted by name. */
static const sluice_peft_module *member_module(const member *k, const char *module)
{
	const sluice_peft_adapter *p = &k->ad.peft;
	size_t lo = 0, hi = p->nmodules;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->modules[mid].module, module);
		if (!c)
			return &p->modules[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Open every adapter of the stack and lay out the stacked rank and the union of modules. */
static int open_stack(stack *s, json_t *state, const char *dir)
{
	json_t *list = json_object_get(state, "adapters"), *a;
	const sluice_st_header **basep = NULL;
	size_t i, total = 0, k = 0;
	uint64_t R = 0;
	int error = SLUICE_OK;

	if (!(s->m = sluice__calloc(s->ctx, json_array_size(list), sizeof(*s->m))) ||
	    !(basep = sluice__calloc(s->ctx, s->nbase + 1, sizeof(*basep))))
		return SLUICE_ENOMEM;
	for (i = 0; i < s->nbase; i++)
		basep[i] = &s->base[i];
	json_array_foreach(list, i, a)
	{
		member *mb = &s->m[s->nm];
		char path[PATH_MAX];

		mb->name = sluice__jstr(json_object_get(a, "name"));
		mb->stack_scale = json_number_value(json_object_get(a, "scale"));
		if ((size_t)snprintf(path, sizeof(path), "%s/adapters/%s", dir, mb->name) >=
		    sizeof(path)) {
			error = sluice_ctx__error(s->ctx, SLUICE_EINVALID, "path too long: %s",
			                          path);
			goto done;
		}
		error = sluice_model__adapter_open_on(s->ctx, &mb->ad, basep, s->nbase, path);
		s->nm++; /* disposed with the stack even when the open failed */
		if (error < 0)
			goto done;
		if (!isfinite(mb->stack_scale)) {
			error = sluice_ctx__error(s->ctx, SLUICE_EINVALID,
			                          "adapter %s: the stack scale is not finite",
			                          mb->name);
			goto done;
		}
		for (size_t j = 0; j < mb->ad.peft.nmodules; j++)
			if (mb->ad.peft.modules[j].r > mb->width)
				mb->width = mb->ad.peft.modules[j].r;
		mb->offset = (unsigned)R;
		R += mb->width;
		if (R > STACK_MAX_RANK) {
			error = sluice_ctx__error(s->ctx, SLUICE_EINVALID,
			                          "the stack's total rank exceeds %u at adapter %s",
			                          STACK_MAX_RANK, mb->name);
			goto done;
		}
		total += mb->ad.peft.nmodules;
	}
	s->R = (unsigned)R;
	if (!(s->mods = sluice__calloc(s->ctx, total + 1, sizeof(*s->mods)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < s->nm; i++)
		for (size_t j = 0; j < s->m[i].ad.peft.nmodules; j++) {
			const sluice_peft_module *pm = &s->m[i].ad.peft.modules[j];
			s->mods[k++] = (umod){pm->module, pm->embedding, pm->in_features,
			                      pm->out_features};
		}
	qsort(s->mods, k, sizeof(*s->mods), cmp_umod);
	/* Deduplicate; every adapter was checked against the same base, so shapes agree. */
	for (i = 0; i < k; i++) {
		if (s->nmods && !strcmp(s->mods[s->nmods - 1].module, s->mods[i].module))
			continue;
		s->mods[s->nmods++] = s->mods[i];
	}
done:
	free(basep);
	return error;
}

/*
 * The stacked tensor of module u: A [R][in] with member i's rows at
 * [o_i, o_i + r_i), or B [out][R] with member i's columns there, scaled
 * by s_i. Everything not written is zero.
 */
static int fill(stack *s, float *dst, const umod *u, int half)
{
	const size_t R = s->R;
	int error = SLUICE_OK;

	for (size_t i = 0; i < s->nm && error == 0; i++) {
		const member *mb = &s->m[i];
		const sluice_peft_module *pm = member_module(mb, u->module);
		float *src = NULL;

		if (!pm)
			continue;
		if (!half) {
			/* A_i [r][in] -> rows o_i.. of A [R][in] */
			if ((error = sluice_model__adapter_tensor(s->ctx, &src, &mb->ad, pm->a_name,
			                                          (uint64_t)pm->r * u->in)) < 0)
				break;
			memcpy(dst + (size_t)mb->offset * u->in, src,
			       (size_t)pm->r * u->in * sizeof(float));
		} else {
			/* s_i.B_i [out][r] -> columns o_i.. of B [out][R] */
			double sc = pm->scale * mb->stack_scale;
			if ((error = sluice_model__adapter_tensor(s->ctx, &src, &mb->ad, pm->b_name,
			                                          (uint64_t)pm->r * u->out)) < 0)
				break;
			for (size_t o = 0; o < u->out; o++)
				for (size_t c = 0; c < pm->r; c++)
					dst[o * R + mb->offset + c] =
					        (float)(sc * src[o * pm->r + c]);
		}
		free(src);
	}
	return error;
}

/* Create path's temporary sibling for writing. */
static int open_tmp(sluice_ctx *ctx, int *fd, char *tmp, size_t len, const char *path)
{
	if ((size_t)snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid()) >= len)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", path);
	if ((*fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0)
		return sluice_ctx__oserror(ctx, "cannot create %s", tmp);
	return SLUICE_OK;
}

/* fsync, close and rename the temporary into place; on failure it is removed. */
static int finish_tmp(sluice_ctx *ctx, int fd, const char *tmp, const char *path, int error)
{
	if (error == 0)
		error = sluice_io__fsync(ctx, fd, path);
	close(fd);
	if (error == 0 && rename(tmp, path) < 0)
		error = sluice_ctx__oserror(ctx, "cannot rename %s to %s", tmp, path);
	if (error < 0)
		unlink(tmp);
	return error;
}

static int write_tensors(stack *s, const char *path)
{
	static const char *const meta[] = {"format", "pt"};
	otensor *ot = NULL;
	sluice_st_spec *spec = NULL;
	sluice_buf hdr = {0};
	float *buf = NULL;
	size_t n = 2 * s->nmods, i, maxel = 1;
	uint64_t data_len;
	char tmp[PATH_MAX];
	int fd = -1, error = SLUICE_OK;

	if (!(ot = sluice__calloc(s->ctx, n, sizeof(*ot))) ||
	    !(spec = sluice__calloc(s->ctx, n, sizeof(*spec)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < n; i++) {
		const umod *u = &s->mods[i / 2];
		size_t len = strlen(u->module) + 64, el;
		ot[i].mod = i / 2;
		ot[i].half = (int)(i % 2);
		if (!(ot[i].name = sluice__malloc(s->ctx, len))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		snprintf(ot[i].name, len, "base_model.model.%s.%s%s", u->module,
		         u->embedding ? (ot[i].half ? "lora_embedding_B" : "lora_embedding_A")
		                      : (ot[i].half ? "lora_B" : "lora_A"),
		         u->embedding ? "" : ".weight");
		if (sluice__mul_ovf(&el, (size_t)s->R, (size_t)(ot[i].half ? u->out : u->in)) < 0 ||
		    el > SIZE_MAX / sizeof(float)) {
			error = sluice_ctx__error(s->ctx, SLUICE_EINVALID, "%s is too large",
			                          ot[i].name);
			goto done;
		}
		if (el > maxel)
			maxel = el;
	}
	/* Sorted names: the file's bytes do not depend on the stack's module order. */
	qsort(ot, n, sizeof(*ot), cmp_otensor);
	for (i = 0; i < n; i++) {
		const umod *u = &s->mods[ot[i].mod];
		spec[i].name = ot[i].name;
		spec[i].dtype = SLUICE_DT_F32;
		spec[i].ndim = 2;
		/* A [R][in] (embedding: [R][num_embeddings]); B [out][R] (embedding: [dim][R]) */
		spec[i].shape[0] = ot[i].half ? u->out : s->R;
		spec[i].shape[1] = ot[i].half ? s->R : u->in;
	}
	if ((error = sluice_safetensors__header(s->ctx, &hdr, &data_len, spec, n, meta, 1)) < 0 ||
	    (error = open_tmp(s->ctx, &fd, tmp, sizeof(tmp), path)) < 0)
		goto done;
	if (!(buf = sluice__malloc(s->ctx, maxel * sizeof(float)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	if ((error = sluice_io__write_all(s->ctx, fd, hdr.ptr, hdr.len, path)) < 0)
		goto done;
	for (i = 0; i < n && error == 0; i++) {
		const umod *u = &s->mods[ot[i].mod];
		size_t el = (size_t)s->R * (ot[i].half ? u->out : u->in);
		unsigned char *le = (unsigned char *)buf;

		memset(buf, 0, el * sizeof(float));
		if ((error = fill(s, buf, u, ot[i].half)) < 0)
			break;
		/* f32 little-endian, in place */
		for (size_t e = 0; e < el; e++) {
			uint32_t w;
			memcpy(&w, &buf[e], 4);
			sluice__st32(le + 4 * e, w);
		}
		error = sluice_io__write_all(s->ctx, fd, buf, el * sizeof(float), path);
	}
done:
	if (fd >= 0)
		error = finish_tmp(s->ctx, fd, tmp, path, error);
	for (i = 0; ot && i < n; i++)
		free(ot[i].name);
	free(ot);
	free(spec);
	free(buf);
	sluice_buf__dispose(&hdr);
	return error;
}

static int write_config(stack *s, const char *path)
{
	json_t *cfg, *targets = json_array();
	const char *base_model = s->m[0].ad.peft.base_model;
	char *text = NULL;
	int error;

	for (size_t i = 0; i < s->nmods; i++)
		json_array_append_new(targets, json_string(s->mods[i].module));
	/*
	 * What PEFT's LoraConfig writes for a plain LoRA; r = lora_alpha makes
	 * its scale 1 (the stack's scales are in B).
	 */
	cfg = json_pack("{s:{},s:n,s:o,s:s,s:b,s:b,s:b,s:n,s:n,s:I,s:f,s:n,s:s,s:I,s:{},s:n,s:o,s:"
	                "s,s:b,s:b}",
	                "alpha_pattern", "auto_mapping", "base_model_name_or_path",
	                base_model ? json_string(base_model) : json_null(), "bias", "none",
	                "fan_in_fan_out", 0, "inference_mode", 1, "init_lora_weights", 1,
	                "layers_pattern", "layers_to_transform", "lora_alpha", (json_int_t)s->R,
	                "lora_dropout", 0.0, "modules_to_save", "peft_type", "LORA", "r",
	                (json_int_t)s->R, "rank_pattern", "revision", "target_modules", targets,
	                "task_type", "CAUSAL_LM", "use_dora", 0, "use_rslora", 0);
	if (!cfg || !(text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS))) {
		json_decref(cfg);
		return sluice_ctx__error(s->ctx, SLUICE_ENOMEM, "out of memory writing %s", path);
	}
	error = sluice_io__write_file_atomic(s->ctx, path, text, strlen(text), 0644);
	free(text);
	json_decref(cfg);
	return error;
}

int sluice_export__stack(sluice_repo *repo, const sluice_version *v, const char *dir)
{
	stack s = {.ctx = repo->ctx};
	sluice_model_adapter check;
	const sluice_st_header **basep = NULL;
	char cdir[PATH_MAX], path[PATH_MAX];
	int error;

	memset(&check, 0, sizeof(check));
	check.fd = -1;
	if (json_array_size(json_object_get(v->state, "adapters")) == 0)
		return sluice_ctx__error(s.ctx, SLUICE_EINVALID,
		                         "the version has no adapters to export");
	if ((error = sluice_evaluator__checkout(repo, v, cdir, sizeof(cdir))) < 0 ||
	    (error = read_base(&s, v->state, cdir)) < 0 ||
	    (error = open_stack(&s, v->state, cdir)) < 0 ||
	    (error = sluice_io__mkdirs(s.ctx, dir, 0755)) < 0)
		goto done;
	if ((size_t)snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir) >=
	    sizeof(path)) {
		error = sluice_ctx__error(s.ctx, SLUICE_EINVALID, "path too long: %s", dir);
		goto done;
	}
	if ((error = write_tensors(&s, path)) < 0)
		goto done;
	snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
	if ((error = write_config(&s, path)) < 0 || (error = sluice_io__fsync_dir(s.ctx, dir)) < 0)
		goto done;
	/* What a loader will check: the written adapter against the same base. */
	if (!(basep = sluice__calloc(s.ctx, s.nbase + 1, sizeof(*basep)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < s.nbase; i++)
		basep[i] = &s.base[i];
	if ((error = sluice_model__adapter_open_on(s.ctx, &check, basep, s.nbase, dir)) < 0)
		error = sluice_ctx__wrap(s.ctx, error, "the exported adapter in %s fails its check",
		                         dir);
done:
	sluice_model__adapter_dispose(&check);
	free(basep);
	stack_dispose(&s);
	return error;
}

/* ---- llama.cpp LoRA GGUF ------------------------------------------------ */

/*
 * What llama.cpp loads as a LoRA adapter, from its sources and the GGUF
 * specification (facts only; the code below is this project's):
 *
 * File layout (ggml docs/gguf.md, GGUF v3): "GGUF" magic bytes, u32 version
 * 3, u64 tensor count, u64 metadata count; metadata as (string key, u32
 * type, value); then per tensor: string name, u32 n_dims, u64 ne[n_dims]
 * (ne[0] the fastest-varying dimension), u32 ggml type (F32 = 0), u64
 * offset relative to the data section, a multiple of general.alignment
 * (u32; 32 when absent; a multiple of 8). Strings are u64 length + bytes
 * without NUL. All little-endian. Padding is 0x00 up to the alignment after
 * the tensor infos and between tensors; gguf-py's GGUFWriter pads after
 * the last tensor too, and ggml's reader sizes the data section as the sum
 * of padded tensor sizes, so the last tensor is padded as well here.
 * Metadata value types: UINT32 = 4, FLOAT32 = 6, STRING = 8.
 *
 * Adapter metadata (llama.cpp src/llama-adapter.cpp,
 * llama_adapter_lora_init_impl; convert_lora_to_gguf.py): general.type
 * "adapter", general.architecture equal to the model's ("llama" for
 * LlamaForCausalLM), adapter.type "lora", adapter.lora.alpha (FLOAT32; the
 * config's lora_alpha). Tensors are named <base tensor>.lora_a and
 * <base tensor>.lora_b; a pair with one half missing, or any other suffix
 * except "_norm.weight", is refused. Base names (gguf-py constants.py,
 * MODEL_TENSOR names for LLAMA): token_embd, output, blk.N.attn_q, attn_k,
 * attn_v, attn_output, ffn_gate, ffn_up, ffn_down, each + ".weight".
 *
 * Shapes as llama.cpp checks them (ne order; model weight ne = [in, out]):
 * lora_a ne = [in, r], lora_b ne = [r, out], i.e. PEFT's lora_A [r][in] and
 * lora_B [out][r] byte for byte. token_embd (model ne = [n_embd, n_vocab]):
 * lora_a ne = [r, n_vocab] (PEFT's lora_embedding_A [r][vocab] transposed,
 * as convert_lora_to_gguf.py does), lora_b ne = [r, n_embd] (lora_embedding_B
 * [dim][r] as is).
 *
 * Scale (llama-adapter.h, llama_adapter_lora_weight::get_scale): adapter
 * scale x alpha / r with r = lora_b ne[0] when alpha != 0, else the adapter
 * scale alone. PEFT's per-module scale (rslora's alpha/sqrt(r),
 * rank_pattern, alpha_pattern) can differ from alpha/r: the difference is
 * folded into lora_b so llama.cpp applies exactly PEFT's scale.
 * (convert_lora_to_gguf.py writes lora_alpha alone and so mis-scales such
 * adapters.)
 *
 * Row order (convert_hf_to_gguf.py, LlamaModel.modify_tensors and
 * LlamaModel.permute): llama.cpp's q_proj and k_proj weights have their
 * output rows permuted from the Hugging Face rotate-half layout back to
 * interleaved pairs, per head group: reshape(n, 2, d/2, ...) then swap the
 * two middle axes, n = num_attention_heads for q and num_key_value_heads
 * for k. A LoRA's product B.A is permuted the same way by permuting B's
 * rows: new row h*d + 2*i + j = old row h*d + j*d/2 + i.
 */

#define GGUF_ALIGN 32u
#define GGUF_MAX_NAME 63 /* GGML_MAX_NAME (64) with its NUL */
#define GGUF_T_UINT32 4u
#define GGUF_T_FLOAT32 6u
#define GGUF_T_STRING 8u
#define GGML_F32 0u

typedef struct {
	char name[GGUF_MAX_NAME + 1];
	const sluice_peft_module *pm;
	int half;        /* 0: lora_a, 1: lora_b */
	unsigned groups; /* lora_b row permutation's head groups (q, k), or 0 */
	uint64_t ne[2];
	uint64_t offset; /* in the data section */
} gtensor;

static int cmp_gtensor(const void *a, const void *b)
{
	return strcmp(((const gtensor *)a)->name, ((const gtensor *)b)->name);
}

/* The llama.cpp base tensor name of a Hugging Face llama module, and its q/k head groups. */
static int gguf_base_name(char *out, size_t len, unsigned *groups, const char *module,
                          const sluice_model_config *cfg)
{
	static const char *const hf[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
	                                 "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
	                                 "mlp.down_proj"};
	static const char *const gg[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
	                                 "ffn_gate", "ffn_up", "ffn_down"};
	unsigned long l;
	char *end;

	*groups = 0;
	if (!strcmp(module, "model.embed_tokens"))
		return snprintf(out, len, "token_embd.weight"), 0;
	if (!strcmp(module, "lm_head"))
		return snprintf(out, len, "output.weight"), 0;
	if (strncmp(module, "model.layers.", 13) || module[13] < '0' || module[13] > '9')
		return -1;
	errno = 0;
	l = strtoul(module + 13, &end, 10);
	if (errno || *end != '.' || l >= cfg->layers)
		return -1;
	for (size_t i = 0; i < sizeof(hf) / sizeof(hf[0]); i++) {
		if (strcmp(end + 1, hf[i]))
			continue;
		if (i == 0)
			*groups = cfg->heads;
		else if (i == 1)
			*groups = cfg->kv_heads;
		snprintf(out, len, "blk.%lu.%s.weight", l, gg[i]);
		return 0;
	}
	return -1;
}

static int put_u32(sluice_ctx *ctx, sluice_buf *b, uint32_t v)
{
	unsigned char x[4];
	sluice__st32(x, v);
	return sluice_buf__put(ctx, b, x, 4);
}

static int put_u64(sluice_ctx *ctx, sluice_buf *b, uint64_t v)
{
	unsigned char x[8];
	sluice__st64(x, v);
	return sluice_buf__put(ctx, b, x, 8);
}

static int put_str(sluice_ctx *ctx, sluice_buf *b, const char *s)
{
	int error = put_u64(ctx, b, strlen(s));
	return error < 0 ? error : sluice_buf__put(ctx, b, s, strlen(s));
}

static int kv_str(sluice_ctx *ctx, sluice_buf *b, const char *key, const char *v)
{
	int error;
	if ((error = put_str(ctx, b, key)) < 0 || (error = put_u32(ctx, b, GGUF_T_STRING)) < 0)
		return error;
	return put_str(ctx, b, v);
}

static int kv_u32(sluice_ctx *ctx, sluice_buf *b, const char *key, uint32_t v)
{
	int error;
	if ((error = put_str(ctx, b, key)) < 0 || (error = put_u32(ctx, b, GGUF_T_UINT32)) < 0)
		return error;
	return put_u32(ctx, b, v);
}

static int kv_f32(sluice_ctx *ctx, sluice_buf *b, const char *key, float v)
{
	uint32_t w;
	int error;

	memcpy(&w, &v, 4);
	if ((error = put_str(ctx, b, key)) < 0 || (error = put_u32(ctx, b, GGUF_T_FLOAT32)) < 0)
		return error;
	return put_u32(ctx, b, w);
}

/*
 * One tensor's data as llama.cpp reads it, f32 little-endian into out
 * (ne[0] x ne[1] values). factor: the scale folded into lora_b.
 */
static int gguf_tensor_data(sluice_ctx *ctx, unsigned char *out, const gtensor *g,
                            const sluice_model_adapter *ad, double factor)
{
	const sluice_peft_module *pm = g->pm;
	uint64_t rows = g->half ? pm->out_features : pm->r,
	         cols = g->half ? pm->r : pm->in_features;
	float *src = NULL;
	int error;

	if ((error = sluice_model__adapter_tensor(ctx, &src, ad, g->half ? pm->b_name : pm->a_name,
	                                          rows * cols)) < 0)
		return error;
	for (uint64_t i = 0; i < rows; i++) {
		for (uint64_t j = 0; j < cols; j++) {
			float v = src[i * cols + j];
			uint64_t dst;
			uint32_t w;

			if (g->half && factor != 1.0)
				v = (float)(factor * v);
			if (!g->half && pm->embedding) {
				/* lora_embedding_A [r][vocab] -> [vocab][r] */
				dst = j * rows + i;
			} else if (g->groups) {
				/* B [out][r]: row h*d + j2*d/2 + i2 moves to h*d + 2*i2 + j2 */
				uint64_t d = rows / g->groups, h = i / d, k = i % d;
				dst = (h * d + 2 * (k % (d / 2)) + k / (d / 2)) * cols + j;
			} else {
				dst = i * cols + j;
			}
			memcpy(&w, &v, 4);
			sluice__st32(out + 4 * dst, w);
		}
	}
	free(src);
	return SLUICE_OK;
}

int sluice_export__gguf(sluice_ctx *ctx, const char *adapter_dir, const char *base_dir,
                        const char *out_path)
{
	static const unsigned char zeros[GGUF_ALIGN];
	sluice_model *m = NULL;
	sluice_model_adapter ad;
	const sluice_model_config *cfg;
	gtensor *gt = NULL;
	sluice_buf hdr = {0};
	unsigned char *data = NULL;
	size_t n = 0, maxbytes = 4;
	uint64_t off = 0;
	const char *slash;
	char tmp[PATH_MAX], name[256];
	double alpha;
	float alpha32;
	int fd = -1, error;

	memset(&ad, 0, sizeof(ad));
	ad.fd = -1;
	if ((error = sluice_model__open(ctx, &m, base_dir)) < 0 ||
	    (error = sluice_model__adapter_open(ctx, &ad, m, adapter_dir)) < 0)
		goto done;
	cfg = sluice_model__config(m);
	alpha = ad.peft.alpha;
	alpha32 = (float)alpha;
	if (!isfinite(alpha32)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: lora_alpha %g does not fit a GGUF float32",
		                          adapter_dir, alpha);
		goto done;
	}
	if (!(gt = sluice__calloc(ctx, 2 * ad.peft.nmodules + 1, sizeof(*gt)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < ad.peft.nmodules; i++) {
		const sluice_peft_module *pm = &ad.peft.modules[i];
		char base[48]; /* "blk.4294967295.attn_output.weight" at most */
		unsigned groups;
		size_t bytes;

		if (gguf_base_name(base, sizeof(base), &groups, pm->module, cfg) < 0 ||
		    pm->embedding != !strcmp(pm->module, "model.embed_tokens")) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: module %s has no llama.cpp tensor",
			                          adapter_dir, pm->module);
			goto done;
		}
		if (groups && (pm->out_features % groups || (pm->out_features / groups) % 2)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: module %s: %llu rows do not split into %u heads "
			        "of even size",
			        adapter_dir, pm->module, (unsigned long long)pm->out_features,
			        groups);
			goto done;
		}
		for (int h = 0; h < 2; h++) {
			gtensor *g = &gt[n++];
			snprintf(g->name, sizeof(g->name), "%s.lora_%c", base, h ? 'b' : 'a');
			g->pm = pm;
			g->half = h;
			g->groups = h ? groups : 0;
			if (!h && pm->embedding) {
				g->ne[0] = pm->r, g->ne[1] = pm->in_features;
			} else if (!h) {
				g->ne[0] = pm->in_features, g->ne[1] = pm->r;
			} else {
				g->ne[0] = pm->r, g->ne[1] = pm->out_features;
			}
			if (sluice__mul_ovf(&bytes, (size_t)g->ne[0], (size_t)g->ne[1]) < 0 ||
			    sluice__mul_ovf(&bytes, bytes, 4) < 0 ||
			    bytes > SIZE_MAX - GGUF_ALIGN) {
				error = sluice_ctx__error(ctx, SLUICE_EINVALID,
				                          "%s: %s is too large", adapter_dir,
				                          g->name);
				goto done;
			}
			if (bytes > maxbytes)
				maxbytes = bytes;
		}
	}
	qsort(gt, n, sizeof(*gt), cmp_gtensor);
	/* The adapter's name: its directory's last component. */
	{
		size_t len = strlen(adapter_dir);
		while (len > 1 && adapter_dir[len - 1] == '/')
			len--;
		slash = NULL;
		for (size_t k = len; k > 0 && !slash; k--)
			if (adapter_dir[k - 1] == '/')
				slash = adapter_dir + k;
		snprintf(name, sizeof(name), "%.*s",
		         (int)(len - (size_t)(slash ? slash - adapter_dir : 0)),
		         slash ? slash : adapter_dir);
	}
	/* header, metadata (fixed order), tensor infos */
	if ((error = sluice_buf__put(ctx, &hdr, "GGUF", 4)) < 0 ||
	    (error = put_u32(ctx, &hdr, 3)) < 0 || (error = put_u64(ctx, &hdr, n)) < 0 ||
	    (error = put_u64(ctx, &hdr, 6)) < 0 ||
	    (error = kv_str(ctx, &hdr, "general.architecture", "llama")) < 0 ||
	    (error = kv_str(ctx, &hdr, "general.type", "adapter")) < 0 ||
	    (error = kv_str(ctx, &hdr, "general.name", name)) < 0 ||
	    (error = kv_u32(ctx, &hdr, "general.alignment", GGUF_ALIGN)) < 0 ||
	    (error = kv_str(ctx, &hdr, "adapter.type", "lora")) < 0 ||
	    (error = kv_f32(ctx, &hdr, "adapter.lora.alpha", alpha32)) < 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		uint64_t bytes = gt[i].ne[0] * gt[i].ne[1] * 4;
		gt[i].offset = off;
		if ((error = put_str(ctx, &hdr, gt[i].name)) < 0 ||
		    (error = put_u32(ctx, &hdr, 2)) < 0 ||
		    (error = put_u64(ctx, &hdr, gt[i].ne[0])) < 0 ||
		    (error = put_u64(ctx, &hdr, gt[i].ne[1])) < 0 ||
		    (error = put_u32(ctx, &hdr, GGML_F32)) < 0 ||
		    (error = put_u64(ctx, &hdr, off)) < 0)
			goto done;
		off += (bytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
	}
	if ((error = sluice_buf__put(ctx, &hdr, zeros,
	                             (GGUF_ALIGN - hdr.len % GGUF_ALIGN) % GGUF_ALIGN)) < 0 ||
	    (error = open_tmp(ctx, &fd, tmp, sizeof(tmp), out_path)) < 0 ||
	    (error = sluice_io__write_all(ctx, fd, hdr.ptr, hdr.len, out_path)) < 0)
		goto done;
	if (!(data = sluice__malloc(ctx, maxbytes + GGUF_ALIGN))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const sluice_peft_module *pm = gt[i].pm;
		size_t bytes = (size_t)(gt[i].ne[0] * gt[i].ne[1] * 4), padded;
		/* llama.cpp's scale for this pair is alpha/r (alpha != 0) or 1 */
		double llama_scale = alpha32 != 0 ? (double)alpha32 / pm->r : 1.0;

		padded = (bytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
		memset(data + bytes, 0, padded - bytes);
		if ((error = gguf_tensor_data(ctx, data, &gt[i], &ad, pm->scale / llama_scale)) <
		            0 ||
		    (error = sluice_io__write_all(ctx, fd, data, padded, out_path)) < 0)
			goto done;
	}
done:
	if (fd >= 0) {
		error = finish_tmp(ctx, fd, tmp, out_path, error);
		if (error == 0) {
			char dir[PATH_MAX];
			snprintf(dir, sizeof(dir), "%s", out_path);
			slash = strrchr(dir, '/');
			if (slash)
				dir[slash == dir ? 1 : (size_t)(slash - dir)] = '\0';
			error = sluice_io__fsync_dir(ctx, slash ? dir : ".");
		}
	}
	free(data);
	free(gt);
	sluice_buf__dispose(&hdr);
	sluice_model__adapter_dispose(&ad);
	sluice_model__free(m);
	return error;
}

/* ---- public entry points ------------------------------------------------- */

int sluice_export_adapter(sluice_repo *repo, const char *ref, const char *dir, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_version v;
	json_t *out = NULL, *list, *a;
	unsigned row = 0;
	size_t i;
	int error;

	if ((error = sluice_version__load(repo, &v, ref)) < 0)
		return error;
	if ((error = sluice_export__stack(repo, &v, dir)) < 0)
		goto done;
	list = json_array();
	/* The rows each adapter owns, as sluice_export__stack lays them out. */
	json_array_foreach(json_object_get(v.state, "adapters"), i, a)
	{
		unsigned w = 0;
		json_t *mod;
		size_t k;

		json_array_foreach(json_object_get(a, "modules"), k, mod)
		{
			json_int_t r = json_integer_value(json_object_get(mod, "r"));
			if (r > (json_int_t)w)
				w = (unsigned)r;
		}
		json_array_append_new(list, json_pack("{s:O,s:O,s:[I,I]}", "name",
		                                      json_object_get(a, "name"), "scale",
		                                      json_object_get(a, "scale"), "rows",
		                                      (json_int_t)row, (json_int_t)(row + w)));
		row += w;
	}
	{
		char hex[GIT_OID_HEXSZ + 1];
		json_t *mods = json_object();
		json_array_foreach(json_object_get(v.state, "adapters"), i, a)
		{
			json_t *mod;
			size_t k;
			json_array_foreach(json_object_get(a, "modules"), k, mod) json_object_set(
			        mods, sluice__jstr(json_object_get(mod, "name")), json_true());
		}
		git_oid_tostr(hex, sizeof(hex), &v.id);
		out = json_pack("{s:s,s:s,s:I,s:I,s:o}", "version", hex, "directory", dir, "r",
		                (json_int_t)row, "modules", (json_int_t)json_object_size(mods),
		                "adapters", list);
		json_decref(mods);
	}
	error = sluice_repo__report(ctx, report, out);
done:
	sluice_version__dispose(&v);
	return error;
}

int sluice_export_gguf(sluice_repo *repo, const char *ref, const char *dir, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_version v;
	json_t *list = NULL, *a, *scales = NULL;
	char cdir[PATH_MAX], hex[GIT_OID_HEXSZ + 1];
	char *text = NULL;
	size_t i;
	int error;

	if ((error = sluice_version__load(repo, &v, ref)) < 0)
		return error;
	if (json_array_size(json_object_get(v.state, "adapters")) == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "the version has no adapters to export");
		goto done;
	}
	if ((error = sluice_evaluator__checkout(repo, &v, cdir, sizeof(cdir))) < 0 ||
	    (error = sluice_io__mkdirs(ctx, dir, 0755)) < 0)
		goto done;
	list = json_array();
	json_array_foreach(json_object_get(v.state, "adapters"), i, a)
	{
		const char *name = sluice__jstr(json_object_get(a, "name"));
		char adir[PATH_MAX], bdir[PATH_MAX], out[PATH_MAX], file[300];

		/* names are checked at proposal: [A-Za-z0-9._-], no leading '.' */
		snprintf(file, sizeof(file), "%s.gguf", name);
		if ((size_t)snprintf(adir, sizeof(adir), "%s/adapters/%s", cdir, name) >=
		            sizeof(adir) ||
		    (size_t)snprintf(bdir, sizeof(bdir), "%s/base", cdir) >= sizeof(bdir) ||
		    (size_t)snprintf(out, sizeof(out), "%s/%s", dir, file) >= sizeof(out)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s/%s", dir,
			                          file);
			goto done;
		}
		if ((error = sluice_export__gguf(ctx, adir, bdir, out)) < 0) {
			error = sluice_ctx__wrap(ctx, error, "adapter %s", name);
			goto done;
		}
		json_array_append_new(list, json_pack("{s:I,s:s,s:s,s:O}", "id", (json_int_t)i,
		                                      "name", name, "file", file, "scale",
		                                      json_object_get(a, "scale")));
	}
	git_oid_tostr(hex, sizeof(hex), &v.id);
	scales = json_pack("{s:s,s:O}", "version", hex, "adapters", list);
	{
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s/scales.json", dir) >= sizeof(path)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID, "path too long: %s", dir);
			goto done;
		}
		if (!(text = json_dumps(scales, JSON_INDENT(2) | JSON_SORT_KEYS))) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
			goto done;
		}
		if ((error = sluice_io__write_file_atomic(ctx, path, text, strlen(text), 0644)) < 0)
			goto done;
	}
	json_object_set_new(scales, "directory", json_string(dir));
	error = sluice_repo__report(ctx, report, scales);
	scales = NULL;
done:
	free(text);
	json_decref(scales);
	json_decref(list);
	sluice_version__dispose(&v);
	return error;
}
