/*
 * tools/synth.c - makes synthetic inputs for the demo, the tests and the
 * benchmarks: a llama-layout Hugging Face model directory with random
 * weights, a PEFT LoRA adapter for it, and seeded in-place edits of a model.
 * Deterministic for a given seed. Not part of libsluice.
 *
 *   sluice-synth model DIR [--hidden H] [--inter I] [--layers L] [--heads N]
 *                [--kv-heads N] [--vocab V] [--dtype f32|bf16|f16] [--shards S]
 *                [--seed N]
 *   sluice-synth lora DIR --base MODEL_DIR [--r R] [--alpha A]
 *                [--targets q_proj,v_proj] [--b-std S] [--seed N]
 *     (--b-std: the standard deviation of lora_B, default 0.01; larger
 *      values make an adapter that damages the model, for the gate tests)
 *   sluice-synth mutate MODEL_DIR [--percent P] [--seed N]
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static float rng_normal(void)
{
	/* Irwin-Hall approximation: cheap and good enough for fixtures. */
	double s = 0;
	for (int i = 0; i < 4; i++)
		s += (double)(rng_next() >> 11) / 9007199254740992.0;
	return (float)((s - 2.0) * 1.7320508);
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "sluice-synth: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

typedef struct {
	char name[160];
	uint64_t shape[2];
	int ndim;
	float stddev;
	float fill; /* for norms: constant value if stddev == 0 */
} tensor_spec;

static size_t dtype_size(const char *dt)
{
	return strcmp(dt, "f32") ? 2 : 4;
}

static const char *dtype_name(const char *dt)
{
	return !strcmp(dt, "f32") ? "F32" : !strcmp(dt, "bf16") ? "BF16" : "F16";
}

static uint16_t to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
	return (uint16_t)(u >> 16);
}

static uint16_t to_f16(float f)
{
	/* Fixture values are small and normal: a simple conversion suffices. */
	uint32_t u, sign, exp, man;
	memcpy(&u, &f, 4);
	sign = (u >> 16) & 0x8000;
	exp = (u >> 23) & 0xff;
	man = u & 0x7fffff;
	if (exp < 103)
		return (uint16_t)sign;
	if (exp < 113)
		return (uint16_t)(sign | ((man | 0x800000) >> (126 - exp)));
	if (exp > 142)
		return (uint16_t)(sign | 0x7c00);
	return (uint16_t)(sign | ((exp - 112) << 10) | (man >> 13));
}

static uint64_t numel(const tensor_spec *t)
{
	uint64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	return n;
}

static void write_all(int fd, const void *buf, size_t len, const char *path)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("cannot write %s", path);
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Write one safetensors file holding specs[0..n). */
static void write_safetensors(const char *path, tensor_spec *specs, size_t n, const char *dt)
{
	json_t *hdr = json_object();
	uint64_t off = 0;
	size_t esz = dtype_size(dt);
	char *text;
	size_t hlen, padded;
	unsigned char len8[8];
	int fd;

	for (size_t i = 0; i < n; i++) {
		json_t *shape = json_array();
		uint64_t bytes = numel(&specs[i]) * esz;
		for (int d = 0; d < specs[i].ndim; d++)
			json_array_append_new(shape, json_integer((json_int_t)specs[i].shape[d]));
		json_object_set_new(hdr, specs[i].name,
		                    json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtype_name(dt), "shape",
		                              shape, "data_offsets", (json_int_t)off,
		                              (json_int_t)(off + bytes)));
		off += bytes;
	}
	json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
	text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	hlen = strlen(text);
	padded = (hlen + 7) & ~(size_t)7; /* 8-byte alignment, as the reference writer does */
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		die("cannot create %s", path);
	write_all(fd, len8, 8, path);
	write_all(fd, text, hlen, path);
	write_all(fd, "        ", padded - hlen, path);
	{
		size_t cap = 1 << 20;
		unsigned char *buf = malloc(cap * esz);
		for (size_t i = 0; i < n; i++) {
			uint64_t left = numel(&specs[i]);
			while (left) {
				size_t k = left < cap ? (size_t)left : cap;
				for (size_t j = 0; j < k; j++) {
					float v = specs[i].stddev > 0
					                  ? rng_normal() * specs[i].stddev
					                  : specs[i].fill;
					if (esz == 4) {
						memcpy(buf + 4 * j, &v, 4);
					} else {
						uint16_t h = !strcmp(dt, "bf16") ? to_bf16(v)
						                                 : to_f16(v);
						buf[2 * j] = (unsigned char)h;
						buf[2 * j + 1] = (unsigned char)(h >> 8);
					}
				}
				write_all(fd, buf, k * esz, path);
				left -= k;
			}
		}
		free(buf);
	}
	close(fd);
	free(text);
	json_decref(hdr);
}

/* mkdir -p */
static void make_dirs(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		die("cannot create %s", path);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot create %s", path);
	fputs(text, f);
	fclose(f);
}

static long opt_long(int argc, char **argv, const char *name, long def)
{
	for (int i = 0; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return strtol(argv[i + 1], NULL, 10);
	return def;
}

static const char *opt_str(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 0; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

static int cmd_model(int argc, char **argv)
{
	const char *dir = argv[0], *dt = opt_str(argc, argv, "--dtype", "f32");
	long H = opt_long(argc, argv, "--hidden", 64), I = opt_long(argc, argv, "--inter", 172);
	long L = opt_long(argc, argv, "--layers", 2), NH = opt_long(argc, argv, "--heads", 4);
	long KVH = opt_long(argc, argv, "--kv-heads", 2), V = opt_long(argc, argv, "--vocab", 256);
	long shards = opt_long(argc, argv, "--shards", 1);
	long KV = H / NH * KVH;
	size_t n = 0, cap = (size_t)(9 * L + 3);
	tensor_spec *specs = calloc(cap, sizeof(*specs));
	static const char *const proj[] = {
	        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	        "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
	char path[4096];
	json_t *cfg;

	rng_state = (uint64_t)opt_long(argc, argv, "--seed", 1);
	make_dirs(dir);
	specs[n++] = (tensor_spec){"model.embed_tokens.weight", {V, H}, 2, 0.02f, 0};
	for (long l = 0; l < L; l++) {
		uint64_t shapes[7][2] = {{H, H}, {KV, H}, {KV, H}, {H, H}, {I, H}, {I, H}, {H, I}};
		snprintf(specs[n].name, sizeof(specs[n].name),
		         "model.layers.%ld.input_layernorm.weight", l);
		specs[n].shape[0] = H;
		specs[n].ndim = 1;
		specs[n++].fill = 1.0f;
		for (int p = 0; p < 7; p++) {
			snprintf(specs[n].name, sizeof(specs[n].name), "model.layers.%ld.%s.weight",
			         l, proj[p]);
			specs[n].shape[0] = shapes[p][0];
			specs[n].shape[1] = shapes[p][1];
			specs[n].ndim = 2;
			specs[n++].stddev = 0.02f;
		}
		snprintf(specs[n].name, sizeof(specs[n].name),
		         "model.layers.%ld.post_attention_layernorm.weight", l);
		specs[n].shape[0] = H;
		specs[n].ndim = 1;
		specs[n++].fill = 1.0f;
	}
	specs[n++] = (tensor_spec){"model.norm.weight", {H, 0}, 1, 0, 1.0f};
	specs[n++] = (tensor_spec){"lm_head.weight", {V, H}, 2, 0.02f, 0};
	if (shards <= 1) {
		snprintf(path, sizeof(path), "%s/model.safetensors", dir);
		write_safetensors(path, specs, n, dt);
	} else {
		json_t *map = json_object();
		uint64_t total = 0;
		size_t per = (n + (size_t)shards - 1) / (size_t)shards;
		for (size_t i = 0; i < n; i++)
			total += numel(&specs[i]) * dtype_size(dt);
		for (long s = 0; s < shards; s++) {
			size_t lo = (size_t)s * per, hi = lo + per > n ? n : lo + per;
			char fname[128];
			snprintf(fname, sizeof(fname), "model-%05ld-of-%05ld.safetensors", s + 1,
			         shards);
			snprintf(path, sizeof(path), "%s/%s", dir, fname);
			if (lo < hi)
				write_safetensors(path, specs + lo, hi - lo, dt);
			for (size_t i = lo; i < hi; i++)
				json_object_set_new(map, specs[i].name, json_string(fname));
		}
		json_t *idx = json_pack("{s:{s:I},s:o}", "metadata", "total_size",
		                        (json_int_t)total, "weight_map", map);
		snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
		json_dump_file(idx, path, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(idx);
	}
	cfg = json_pack("{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:b,s:s,s:i,s:i,s:n}",
	                "architectures", "LlamaForCausalLM", "model_type", "llama", "hidden_size",
	                (int)H, "intermediate_size", (int)I, "num_hidden_layers", (int)L,
	                "num_attention_heads", (int)NH, "num_key_value_heads", (int)KVH,
	                "vocab_size", (int)V, "max_position_embeddings", 2048, "rms_norm_eps", 1e-5,
	                "rope_theta", 10000.0, "tie_word_embeddings", 0, "torch_dtype",
	                !strcmp(dt, "f32")    ? "float32"
	                : !strcmp(dt, "bf16") ? "bfloat16"
	                                      : "float16",
	                "bos_token_id", 1, "eos_token_id", 2, "rope_scaling");
	json_object_set_new(cfg, "hidden_act", json_string("silu"));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	json_dump_file(cfg, path, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(cfg);
	snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
	write_text(path, "{\n  \"model_max_length\": 2048,\n  \"tokenizer_class\": "
	                 "\"PreTrainedTokenizerFast\"\n}\n");
	snprintf(path, sizeof(path), "%s/README.md", dir);
	write_text(path, "# synthetic llama\n\nRandom weights made by sluice-synth for tests and "
	                 "benchmarks.\n");
	free(specs);
	return 0;
}

static int cmd_lora(int argc, char **argv)
{
	const char *dir = argv[0], *base = opt_str(argc, argv, "--base", NULL);
	const char *targets = opt_str(argc, argv, "--targets", "q_proj,v_proj");
	long r = opt_long(argc, argv, "--r", 4), alpha = opt_long(argc, argv, "--alpha", 8);
	float bstd = strtof(opt_str(argc, argv, "--b-std", "0.01"), NULL);
	char path[4096], tl[512], *tok, *save;
	json_error_t jerr;
	json_t *cfg, *acfg, *tarr = json_array();
	long H, I, L, NH, KVH, KV;
	tensor_spec *specs;
	size_t n = 0;

	if (!base)
		die("%s", "lora needs --base MODEL_DIR");
	rng_state = (uint64_t)opt_long(argc, argv, "--seed", 2);
	snprintf(path, sizeof(path), "%s/config.json", base);
	if (!(cfg = json_load_file(path, 0, &jerr)))
		die("cannot read %s", path);
	H = (long)json_integer_value(json_object_get(cfg, "hidden_size"));
	I = (long)json_integer_value(json_object_get(cfg, "intermediate_size"));
	L = (long)json_integer_value(json_object_get(cfg, "num_hidden_layers"));
	NH = (long)json_integer_value(json_object_get(cfg, "num_attention_heads"));
	KVH = (long)json_integer_value(json_object_get(cfg, "num_key_value_heads"));
	KV = H / NH * KVH;
	json_decref(cfg);
	specs = calloc((size_t)(L * 14 + 2), sizeof(*specs));
	snprintf(tl, sizeof(tl), "%s", targets);
	for (tok = strtok_r(tl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t out, in;
		const char *parent = strstr(tok, "proj") && strchr("qkvo", tok[0]) && tok[1] == '_'
		                             ? "self_attn"
		                             : "mlp";
		if (!strcmp(tok, "q_proj") || !strcmp(tok, "o_proj"))
			out = H, in = H;
		else if (!strcmp(tok, "k_proj") || !strcmp(tok, "v_proj"))
			out = KV, in = H;
		else if (!strcmp(tok, "gate_proj") || !strcmp(tok, "up_proj"))
			out = I, in = H;
		else if (!strcmp(tok, "down_proj"))
			out = H, in = I;
		else
			die("unknown target %s", tok);
		json_array_append_new(tarr, json_string(tok));
		for (long l = 0; l < L; l++) {
			snprintf(specs[n].name, sizeof(specs[n].name),
			         "base_model.model.model.layers.%ld.%s.%s.lora_A.weight", l, parent,
			         tok);
			specs[n].shape[0] = (uint64_t)r;
			specs[n].shape[1] = in;
			specs[n].ndim = 2;
			specs[n++].stddev = 0.05f;
			snprintf(specs[n].name, sizeof(specs[n].name),
			         "base_model.model.model.layers.%ld.%s.%s.lora_B.weight", l, parent,
			         tok);
			specs[n].shape[0] = out;
			specs[n].shape[1] = (uint64_t)r;
			specs[n].ndim = 2;
			specs[n++].stddev = bstd;
		}
	}
	make_dirs(dir);
	snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
	write_safetensors(path, specs, n, "f32");
	acfg = json_pack("{s:s,s:i,s:i,s:f,s:o,s:s,s:b,s:b,s:b,s:n,s:s,s:s}", "peft_type", "LORA",
	                 "r", (int)r, "lora_alpha", (int)alpha, "lora_dropout", 0.0,
	                 "target_modules", tarr, "bias", "none", "use_rslora", 0, "use_dora", 0,
	                 "fan_in_fan_out", 0, "modules_to_save", "task_type", "CAUSAL_LM",
	                 "base_model_name_or_path", base);
	snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
	json_dump_file(acfg, path, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(acfg);
	free(specs);
	return 0;
}

/*
 * Rewrite P percent of the tensor bytes of every safetensors file in DIR,
 * in place, in runs of 256 KiB at seeded positions; a quarter of the edit
 * goes into the largest tensor of the first file.
 */
static int cmd_mutate(int argc, char **argv)
{
	const char *dir = argv[0];
	double pct = strtod(opt_str(argc, argv, "--percent", "1"), NULL);
	char cmd[4200], line[4096];
	FILE *ls;

	rng_state = (uint64_t)opt_long(argc, argv, "--seed", 7);
	snprintf(cmd, sizeof(cmd), "ls '%s'/*.safetensors", dir);
	if (!(ls = popen(cmd, "r")))
		die("cannot list %s", dir);
	int first = 1;
	while (fgets(line, sizeof(line), ls)) {
		unsigned char len8[8];
		uint64_t hlen = 0, size, data_start, budget, best_off = 0, best_len = 0;
		struct stat st;
		json_error_t jerr;
		json_t *hdr, *v;
		const char *k;
		char *text;
		int fd;

		line[strcspn(line, "\n")] = '\0';
		if ((fd = open(line, O_RDWR)) < 0 || fstat(fd, &st) < 0 ||
		    pread(fd, len8, 8, 0) != 8)
			die("cannot open %s", line);
		for (int i = 0; i < 8; i++)
			hlen |= (uint64_t)len8[i] << (8 * i);
		size = (uint64_t)st.st_size;
		data_start = 8 + hlen;
		text = malloc(hlen + 1);
		if (pread(fd, text, hlen, 8) != (ssize_t)hlen)
			die("cannot read %s", line);
		text[hlen] = '\0';
		hdr = json_loads(text, 0, &jerr);
		json_object_foreach(hdr, k, v)
		{
			json_t *o = json_object_get(v, "data_offsets");
			uint64_t b, e;
			if (!o)
				continue;
			b = (uint64_t)json_integer_value(json_array_get(o, 0));
			e = (uint64_t)json_integer_value(json_array_get(o, 1));
			if (e - b > best_len)
				best_off = data_start + b, best_len = e - b;
		}
		budget = (uint64_t)((double)(size - data_start) * pct / 100.0);
		{
			const uint64_t run = 256 << 10;
			unsigned char *buf = malloc(run);
			uint64_t done = 0;
			while (done < budget) {
				uint64_t len = budget - done < run ? budget - done : run, off;
				if (first && done < budget / 4 && best_len > len)
					off = best_off + rng_next() % (best_len - len);
				else
					off = data_start + rng_next() % (size - data_start - len);
				for (uint64_t j = 0; j < len; j++)
					buf[j] = (unsigned char)rng_next();
				if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
					die("cannot write %s", line);
				done += len;
			}
			free(buf);
		}
		first = 0;
		free(text);
		json_decref(hdr);
		close(fd);
	}
	pclose(ls);
	return 0;
}

static const char USAGE[] = "usage: sluice-synth model DIR [--dtype f32|bf16|f16] [--hidden N] "
                            "[--inter N] [--layers N]\n"
                            "                              [--heads N] [--kv-heads N] [--vocab N] "
                            "[--shards N] [--seed N]\n"
                            "       sluice-synth lora DIR --base MODEL [--targets LIST] [--r N] "
                            "[--alpha N] [--b-std X]\n"
                            "                              [--seed N]\n"
                            "       sluice-synth mutate DIR [--percent X] [--seed N]\n";

/* DIR, then NAME VALUE pairs whose names are in known. The options are read
 * by name, so anything else (a misspelt option, --help taken for a
 * directory) would be ignored and a model written where nobody asked:
 * refuse it instead. */
static int check_args(int argc, char **argv, const char *const *known)
{
	if (argv[0][0] == '-') {
		fprintf(stderr, "sluice-synth: DIR comes first, not %s\n%s", argv[0], USAGE);
		return -1;
	}
	for (int i = 1; i < argc; i += 2) {
		const char *const *k = known;
		while (*k && strcmp(*k, argv[i]))
			k++;
		if (!*k) {
			fprintf(stderr, "sluice-synth: unknown option %s\n%s", argv[i], USAGE);
			return -1;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "sluice-synth: %s needs a value\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const model_opts[] = {"--dtype", "--hidden",   "--inter", "--layers",
	                                         "--heads", "--kv-heads", "--vocab", "--shards",
	                                         "--seed",  NULL};
	static const char *const lora_opts[] = {"--base",  "--targets", "--r", "--alpha",
	                                        "--b-std", "--seed",    NULL};
	static const char *const mutate_opts[] = {"--percent", "--seed", NULL};
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (argc < 3) {
		fputs(USAGE, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "model"))
		return check_args(argc - 2, argv + 2, model_opts) ? 2
		                                                  : cmd_model(argc - 2, argv + 2);
	if (!strcmp(argv[1], "lora"))
		return check_args(argc - 2, argv + 2, lora_opts) ? 2 : cmd_lora(argc - 2, argv + 2);
	if (!strcmp(argv[1], "mutate"))
		return check_args(argc - 2, argv + 2, mutate_opts) ? 2
		                                                   : cmd_mutate(argc - 2, argv + 2);
	fprintf(stderr, "sluice-synth: unknown command %s\n%s", argv[1], USAGE);
	return 2;
}
