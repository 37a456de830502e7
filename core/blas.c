/*
 * core/blas.c - OpenBLAS opened on first use (core/blas.h says why).
 */
#include "blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLAS_SONAME "libopenblas.so.0"

static struct {
	pthread_once_t once;
	int ok;
	char why[512];
} lazy = {.once = PTHREAD_ONCE_INIT};

static struct sluice_blas_api found;

static void load(void)
{
	const char *soname, *missing = NULL;
	/* SLUICE_LIBOPENBLAS names another build (a path to the serial one, say). */
	void *so = sluice__dl_open("SLUICE_LIBOPENBLAS", BLAS_SONAME, " (BLAS and LAPACK)",
	                           lazy.why, sizeof(lazy.why), &soname);

	if (!so)
		return;
	sluice__dl_find(so, "cblas_sgemm", &found.sgemm, &missing);
	sluice__dl_find(so, "cblas_dgemm", &found.dgemm, &missing);
	sluice__dl_find(so, "dgeqrf_", &found.dgeqrf, &missing);
	sluice__dl_find(so, "dgesvd_", &found.dgesvd, &missing);
	sluice__dl_find(so, "openblas_get_config", &found.get_config, &missing);
	sluice__dl_find(so, "openblas_get_corename", &found.get_corename, &missing);
	sluice__dl_find(so, "openblas_get_num_threads", &found.get_num_threads, &missing);
	sluice__dl_find(so, "openblas_get_parallel", &found.get_parallel, &missing);
	if (missing) {
		snprintf(lazy.why, sizeof(lazy.why), "%s has no %s", soname, missing);
		dlclose(so);
		return;
	}
	/* Kept open for the life of the process. */
	sluice__blas = found;
	lazy.ok = 1;
}

int sluice_blas__load(sluice_ctx *ctx)
{
	pthread_once(&lazy.once, load);
	return lazy.ok ? SLUICE_OK : sluice_ctx__error(ctx, SLUICE_ERROR, "%s", lazy.why);
}

/* A first call that no sluice_blas__load preceded: load, or stop. */
static void need(void)
{
	pthread_once(&lazy.once, load);
	if (!lazy.ok) {
		fprintf(stderr, "sluice: %s\n", lazy.why);
		abort();
	}
}

static void first_sgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n,
                        const blasint k, const float alpha, const float *a, const blasint lda,
                        const float *b, const blasint ldb, const float beta, float *c,
                        const blasint ldc)
{
	need();
	found.sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void first_dgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n,
                        const blasint k, const double alpha, const double *a, const blasint lda,
                        const double *b, const blasint ldb, const double beta, double *c,
                        const blasint ldc)
{
	need();
	found.dgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void first_dgeqrf(const int *m, const int *n, double *a, const int *lda, double *tau,
                         double *work, const int *lwork, int *info)
{
	need();
	found.dgeqrf(m, n, a, lda, tau, work, lwork, info);
}

static void first_dgesvd(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
                         const int *lda, double *s, double *u, const int *ldu, double *vt,
                         const int *ldvt, double *work, const int *lwork, int *info,
                         size_t jobu_len, size_t jobvt_len)
{
	need();
	found.dgesvd(jobu, jobvt, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, info, jobu_len,
	             jobvt_len);
}

static char *first_get_config(void)
{
	need();
	return found.get_config();
}

static char *first_get_corename(void)
{
	need();
	return found.get_corename();
}

static int first_get_num_threads(void)
{
	need();
	return found.get_num_threads();
}

static int first_get_parallel(void)
{
	need();
	return found.get_parallel();
}

struct sluice_blas_api sluice__blas = {
        .sgemm = first_sgemm,
        .dgemm = first_dgemm,
        .dgeqrf = first_dgeqrf,
        .dgesvd = first_dgesvd,
        .get_config = first_get_config,
        .get_corename = first_get_corename,
        .get_num_threads = first_get_num_threads,
        .get_parallel = first_get_parallel,
};
