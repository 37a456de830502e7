/*
 * eval/export.c - a version's adapter stack materialised as one PEFT LoRA
 * adapter (export.h says what is written and why it equals the stack).
 */
#include "export.h"
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
