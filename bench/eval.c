/*
 * bench/eval.c - throughput of the built-in evaluator (docs/bench-eval.md).
 *
 *   bench-eval sgemm THREADS M K N REPS
 *       OpenBLAS sgemm rate, C[M][N] = A[M][K] . B[N][K]^T (the evaluator's
 *       layout), median of REPS, in GFLOP/s.
 *   bench-eval model THREADS DIR SEQ REPS [LP_OUT]
 *       A scoring pass over SEQ deterministic tokens, every position scored
 *       (sluice_model__score_next: each row's log-probability of the next
 *       token, the last row's of token 0), median of REPS; prints tokens/s,
 *       the pass's FLOPs and rate, the weights' bytes and the process's peak
 *       resident memory. With LP_OUT, writes the last pass's SEQ
 *       log-probabilities there (f64 LE) so bench/torch_forward.py can check
 *       it scored the same thing.
 *   bench-eval score THREADS DIR SEQ CONT REPS
 *       The shape sluice eval runs: only the last CONT rows' logits.
 *
 * One model per process, so the peak resident figure belongs to that model
 * alone. Output is "key value" lines for bench/eval.sh to parse.
 */
#include <cblas.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "model.h"
#include "sluice/common.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* VmHWM from /proc/self/status in KiB; ru_maxrss as a fallback. */
static long peak_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmHWM: %ld", &kib) == 1)
				break;
		fclose(f);
	}
	if (kib < 0) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		kib = ru.ru_maxrss;
	}
	return kib;
}

static long cur_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmRSS: %ld", &kib) == 1)
				break;
		fclose(f);
	}
	return kib;
}

/* Sum of the sizes of the DIR's .safetensors files: what "the weights' size" means. */
static uint64_t weights_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t total = 0;
	char path[4096];
	struct stat st;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0)
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

static int bench_sgemm(int m, int k, int n, int reps)
{
	float *a = malloc((size_t)m * k * sizeof(float));
	float *b = malloc((size_t)n * k * sizeof(float));
	float *c = malloc((size_t)m * n * sizeof(float));
	double *t = malloc((size_t)reps * sizeof(double));
	double flops = 2.0 * m * k * n;

	if (!a || !b || !c || !t)
		return 1;
	for (size_t i = 0; i < (size_t)m * k; i++)
		a[i] = (float)((i * 7919u) % 1000) / 1000.0f - 0.5f;
	for (size_t i = 0; i < (size_t)n * k; i++)
		b[i] = (float)((i * 104729u) % 1000) / 1000.0f - 0.5f;
	/* Warm-up: thread pool start, page faults on c. */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k,
		            0.0f, c, n);
		t[r] = now() - t0;
	}
	double med = median(t, reps);
	printf("sgemm_shape %dx%dx%d\n", m, k, n);
	printf("sgemm_seconds %.6f\n", med);
	printf("sgemm_gflops %.2f\n", flops / med * 1e-9);
	free(a);
	free(b);
	free(c);
	free(t);
	return 0;
}

/* The benchmark's tokens; the same formula as bench/torch_forward.py. */
static void synthetic_ids(int32_t *ids, size_t seq, uint32_t vocab)
{
	for (size_t i = 0; i < seq; i++)
		ids[i] = (int32_t)(((uint32_t)i * 2654435761u + 12345u) % vocab);
}

static int bench_model(const char *dir, size_t seq, int reps, const char *lp_out)
{
	sluice_ctx *ctx = NULL;
	sluice_model *m = NULL;
	int32_t *ids = NULL, *targets = NULL;
	double *lp = NULL, *t = NULL;
	int rc = 1;
	long rss_start = cur_rss_kib();

	if (seq == 0 || reps < 1 || sluice_ctx_new(&ctx) != 0)
		return 1;
	if (sluice_model__open(ctx, &m, dir) != 0) {
		fprintf(stderr, "open %s: %s\n", dir, sluice_ctx_errmsg(ctx));
		goto done;
	}
	long rss_open = cur_rss_kib();
	const sluice_model_config *c = sluice_model__config(m);
	const double hid = c->hidden, inter = c->inter, lay = c->layers, voc = c->vocab;
	const double hd = c->head_dim, nh = c->heads, kvh = c->kv_heads;
	/* Parameters that go through a matmul: q,k,v,o, gate,up,down, lm_head. */
	const double lin =
	        lay * (hid * nh * hd * 2 + hid * kvh * hd * 2 + 3 * hid * inter) + voc * hid;
	const double params = lin + (c->tied ? 0 : voc * hid) + lay * 2 * hid + hid;
	const double T = (double)seq;
	/* QK^T and PV as the evaluator computes them: full T x T per head. */
	const double attn = lay * nh * 2 * (2 * T * T * hd);
	const double flops = 2 * lin * T + attn;

	ids = malloc(seq * sizeof(int32_t));
	targets = malloc(seq * sizeof(int32_t));
	lp = malloc(seq * sizeof(double));
	t = malloc((size_t)reps * sizeof(double));
	if (!ids || !targets || !lp || !t)
		goto done;
	synthetic_ids(ids, seq, c->vocab);
	for (size_t i = 0; i < seq; i++)
		targets[i] = ids[(i + 1) % seq];

	char ident[256];
	sluice_model__identity(m, ident, sizeof(ident));
	/* Warm-up pass: maps the weights in, starts OpenBLAS's threads. */
	if (sluice_model__score_next(ctx, m, ids, seq, 0, targets, lp) != 0) {
		fprintf(stderr, "score_next: %s\n", sluice_ctx_errmsg(ctx));
		goto done;
	}
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		if (sluice_model__score_next(ctx, m, ids, seq, 0, targets, lp) != 0) {
			fprintf(stderr, "score_next: %s\n", sluice_ctx_errmsg(ctx));
			goto done;
		}
		t[r] = now() - t0;
	}
	double med = median(t, reps);
	long peak = peak_rss_kib();
	uint64_t wb = weights_bytes(dir);

	printf("identity %s\n", ident);
	printf("config hidden=%u inter=%u layers=%u heads=%u kv_heads=%u vocab=%u tied=%d\n",
	       c->hidden, c->inter, c->layers, c->heads, c->kv_heads, c->vocab, c->tied);
	printf("params %.0f\n", params);
	printf("seq %zu\n", seq);
	printf("reps %d\n", reps);
	printf("forward_seconds %.6f\n", med);
	printf("forward_min_seconds %.6f\n", t[0]);
	printf("tokens_per_s %.1f\n", T / med);
	printf("forward_gflop %.3f\n", flops * 1e-9);
	printf("forward_gflops %.2f\n", flops / med * 1e-9);
	printf("weights_bytes %" PRIu64 "\n", wb);
	printf("rss_start_kib %ld\n", rss_start);
	printf("rss_after_open_kib %ld\n", rss_open);
	printf("peak_rss_kib %ld\n", peak);
	if (lp_out) {
		FILE *f = fopen(lp_out, "wb");
		if (!f || fwrite(lp, sizeof(double), seq, f) != seq) {
			fprintf(stderr, "write %s failed\n", lp_out);
			if (f)
				fclose(f);
			goto done;
		}
		fclose(f);
	}
	rc = 0;
done:
	free(ids);
	free(targets);
	free(lp);
	free(t);
	sluice_model__free(m);
	sluice_ctx_free(ctx);
	return rc;
}

/*
 * A scoring-shaped pass, as sluice eval makes it: SEQ tokens of which the
 * last CONT are the continuation, so only CONT rows of logits are computed
 * and held (sluice_model__forward_from). Run in its own process so the
 * peak RSS is this pass's alone.
 */
static int bench_score(const char *dir, size_t seq, size_t cont, int reps)
{
	sluice_ctx *ctx = NULL;
	sluice_model *m = NULL;
	int32_t *ids = NULL;
	float *logits = NULL;
	double *t = NULL;
	int rc = 1;

	if (cont == 0 || cont > seq || sluice_ctx_new(&ctx) != 0)
		return 1;
	if (sluice_model__open(ctx, &m, dir) != 0) {
		fprintf(stderr, "open %s: %s\n", dir, sluice_ctx_errmsg(ctx));
		goto done;
	}
	const sluice_model_config *c = sluice_model__config(m);
	ids = malloc(seq * sizeof(int32_t));
	logits = malloc(cont * (size_t)c->vocab * sizeof(float));
	t = malloc((size_t)(reps + 1) * sizeof(double));
	if (!ids || !logits || !t)
		goto done;
	synthetic_ids(ids, seq, c->vocab);
	for (int r = 0; r <= reps; r++) {
		double t0 = now();
		if (sluice_model__forward_from(ctx, m, ids, seq, seq - cont, logits) != 0) {
			fprintf(stderr, "forward_from: %s\n", sluice_ctx_errmsg(ctx));
			goto done;
		}
		t[r] = now() - t0;
	}
	printf("score_seq %zu\n", seq);
	printf("score_cont %zu\n", cont);
	printf("score_seconds %.6f\n", median(t + 1, reps));
	printf("weights_bytes %" PRIu64 "\n", weights_bytes(dir));
	printf("logits_bytes %zu\n", cont * (size_t)c->vocab * sizeof(float));
	printf("peak_rss_kib %ld\n", peak_rss_kib());
	rc = 0;
done:
	free(ids);
	free(logits);
	free(t);
	sluice_model__free(m);
	sluice_ctx_free(ctx);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 7 && strcmp(argv[1], "sgemm") == 0) {
		openblas_set_num_threads(atoi(argv[2]));
		return bench_sgemm(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
	}
	if (argc >= 6 && strcmp(argv[1], "model") == 0) {
		if (sluice_global_init() != 0)
			return 1;
		openblas_set_num_threads(atoi(argv[2]));
		int rc = bench_model(argv[3], (size_t)strtoul(argv[4], NULL, 10), atoi(argv[5]),
		                     argc >= 7 ? argv[6] : NULL);
		sluice_global_shutdown();
		return rc;
	}
	if (argc >= 7 && strcmp(argv[1], "score") == 0) {
		if (sluice_global_init() != 0)
			return 1;
		openblas_set_num_threads(atoi(argv[2]));
		int rc = bench_score(argv[3], (size_t)strtoul(argv[4], NULL, 10),
		                     (size_t)strtoul(argv[5], NULL, 10), atoi(argv[6]));
		sluice_global_shutdown();
		return rc;
	}
	fprintf(stderr, "usage: bench-eval sgemm THREADS M K N REPS\n"
	                "       bench-eval model THREADS DIR SEQ REPS [LP_OUT]\n"
	                "       bench-eval score THREADS DIR SEQ CONT REPS\n");
	return 2;
}
