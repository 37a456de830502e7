/*
 * core/blas.h - OpenBLAS, loaded when sluice first computes.
 *
 * Only evaluation and the LoRA weight statistics use BLAS and LAPACK, but
 * linking OpenBLAS loaded it (and libgfortran) into every sluice process
 * and started its worker thread, which spun for the first ~0.1 s: 4.4 ms
 * of start-up for an empty program linked with it (2026-12-03). So
 * libsluice opens libopenblas.so.0 (Debian's alternatives pick the build)
 * with dlopen on first use, and the names below, in the files that include
 * this header instead of <cblas.h>, call through the functions found there.
 *
 * sluice_blas__load is called where an error can still be returned
 * (opening a model, the weight statistics); a call that comes first anyway
 * loads the library itself, and where it cannot be loaded, aborts with a
 * message naming it, since a product cannot report failure.
 *
 * SLUICE_LIBOPENBLAS in the environment names another OpenBLAS to open (a
 * soname or a path, e.g. the serial build's).
 */
#ifndef SLUICE_BLAS_H
#define SLUICE_BLAS_H

#include "internal.h"

#include <cblas.h>

/* LAPACK (Fortran, exported by OpenBLAS); the trailing size_t arguments are
 * the hidden lengths of the CHARACTER arguments gfortran passes by value. */
typedef void (*sluice_dgeqrf_fn)(const int *m, const int *n, double *a, const int *lda, double *tau,
                                 double *work, const int *lwork, int *info);
typedef void (*sluice_dgesvd_fn)(const char *jobu, const char *jobvt, const int *m, const int *n,
                                 double *a, const int *lda, double *s, double *u, const int *ldu,
                                 double *vt, const int *ldvt, double *work, const int *lwork,
                                 int *info, size_t jobu_len, size_t jobvt_len);

struct sluice_blas_api {
	void (*sgemm)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
	              const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
	              const float, const float *, const blasint, const float *, const blasint,
	              const float, float *, const blasint);
	void (*dgemm)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
	              const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
	              const double, const double *, const blasint, const double *, const blasint,
	              const double, double *, const blasint);
	sluice_dgeqrf_fn dgeqrf;
	sluice_dgesvd_fn dgesvd;
	char *(*get_config)(void);
	char *(*get_corename)(void);
	int (*get_num_threads)(void);
	int (*get_parallel)(void); /* 0 serial, 1 pthreads, 2 OpenMP */
};
/* Stand-ins that load the library on first call (core/blas.c). */
extern struct sluice_blas_api sluice__blas;

/* Load libopenblas.so.0 (once per process); an error names what failed. */
int sluice_blas__load(sluice_ctx *ctx);

#define cblas_sgemm (sluice__blas.sgemm)
#define cblas_dgemm (sluice__blas.dgemm)
#define dgeqrf_ (sluice__blas.dgeqrf)
#define dgesvd_ (sluice__blas.dgesvd)
#define openblas_get_config (sluice__blas.get_config)
#define openblas_get_corename (sluice__blas.get_corename)
#define openblas_get_num_threads (sluice__blas.get_num_threads)
#define openblas_get_parallel (sluice__blas.get_parallel)

#endif
