/*
 * gates/stats.c - intervals, tests and the decision rule (gates/stats.h).
 *
 * Everything here is deterministic: the bootstrap's generator is seeded by
 * the caller (from the digests of what is compared), so the same inputs
 * always give the same verdict.
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *sluice_stats__outcome_name(sluice_outcome o)
{
	return o == SLUICE_PASS ? "pass" : o == SLUICE_FAIL ? "fail" : "inconclusive";
}

sluice_outcome sluice_stats__worse(sluice_outcome a, sluice_outcome b)
{
	return a > b ? a : b;
}

sluice_outcome sluice_stats__decide(double lo, double hi, double limit, int at_least)
{
	if (isnan(lo) || isnan(hi) || isnan(limit))
		return SLUICE_INCONCLUSIVE;
	if (at_least)
		return lo >= limit ? SLUICE_PASS : hi < limit ? SLUICE_FAIL : SLUICE_INCONCLUSIVE;
	return hi <= limit ? SLUICE_PASS : lo > limit ? SLUICE_FAIL : SLUICE_INCONCLUSIVE;
}

/*
 * The continued fraction of the incomplete beta function, evaluated with
 * the modified Lentz method; converges fast for x < (a + 1) / (a + b + 2).
 */
static double beta_cf(double a, double b, double x)
{
	const double tiny = 1e-300, eps = 1e-15;
	double c = 1, d = 1 - (a + b) * x / (a + 1), h;

	if (fabs(d) < tiny)
		d = tiny;
	d = 1 / d;
	h = d;
	for (int m = 1; m <= 500; m++) {
		double m2 = 2.0 * m, num, delta;

		/* even step: m (b - m) x / ((a + 2m - 1)(a + 2m)) */
		num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
		d = 1 + num * d;
		c = 1 + num / c;
		if (fabs(d) < tiny)
			d = tiny;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		h *= d * c;
		/* odd step: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)) */
		num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
		d = 1 + num * d;
		c = 1 + num / c;
		if (fabs(d) < tiny)
			d = tiny;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		delta = d * c;
		h *= delta;
		if (fabs(delta - 1) < eps)
			break;
	}
	return h;
}

double sluice_stats__ibeta(double a, double b, double x)
{
	double lfront;

	if (x <= 0)
		return 0;
	if (x >= 1)
		return 1;
	lfront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
	if (x < (a + 1) / (a + b + 2))
		return exp(lfront) * beta_cf(a, b, x) / a;
	/* I_x(a, b) = 1 - I_{1-x}(b, a), where the fraction converges. */
	return 1 - exp(lfront) * beta_cf(b, a, 1 - x) / b;
}

double sluice_stats__binom_cdf(size_t k, size_t n, double p)
{
	if (k >= n)
		return 1;
	/* P(X <= k) = I_{1-p}(n - k, k + 1). */
	return sluice_stats__ibeta((double)(n - k), (double)k + 1, 1 - p);
}

/* The q-quantile of Beta(a, b), by bisection on the incomplete beta. */
static double beta_quantile(double q, double a, double b)
{
	double lo = 0, hi = 1;

	for (int i = 0; i < 200 && hi - lo > 1e-14; i++) {
		double mid = (lo + hi) / 2;
		if (sluice_stats__ibeta(a, b, mid) < q)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

void sluice_stats__clopper_pearson(double *lo, double *hi, size_t k, size_t n, double alpha)
{
	*lo = k == 0 ? 0 : beta_quantile(alpha / 2, (double)k, (double)(n - k) + 1);
	*hi = k >= n ? 1 : beta_quantile(1 - alpha / 2, (double)k + 1, (double)(n - k));
}

double sluice_stats__norm_quantile(double p)
{
	double lo = -40, hi = 40;

	/* Bisection on Phi(z) = erfc(-z / sqrt 2) / 2: slow, exact enough, called rarely. */
	for (int i = 0; i < 200; i++) {
		double mid = (lo + hi) / 2;
		if (0.5 * erfc(-mid / sqrt(2.0)) < p)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

/* Agresti-Min's interval (sluice_stats__paired_change) for counts that may be fractional. */
static void paired_interval(double *lo, double *hi, double worse, double better, double n, double z)
{
	double pw = (worse + 0.5) / (n + 2), pb = (better + 0.5) / (n + 2);
	double d = pb - pw, se = sqrt((pw + pb - d * d) / (n + 2));

	*lo = fmax(-1, d - z * se);
	*hi = fmin(1, d + z * se);
}

void sluice_stats__paired_change(double *est, double *lo, double *hi, size_t worse, size_t better,
                                 size_t n, double alpha)
{
	*est = n ? ((double)better - (double)worse) / (double)n : 0;
	paired_interval(lo, hi, (double)worse, (double)better, (double)n,
	                sluice_stats__norm_quantile(1 - alpha / 2));
}

size_t sluice_stats__paired_items_to_decide(size_t worse, size_t better, size_t n, double alpha,
                                            double limit, int at_least)
{
	double z = sluice_stats__norm_quantile(1 - alpha / 2), lo, hi;

	if (n == 0 || isnan(limit))
		return 0;
	for (size_t m = 1; m <= SLUICE_STATS_ITEMS_MAX; m++) {
		double scale = (double)m / (double)n;
		paired_interval(&lo, &hi, (double)worse * scale, (double)better * scale, (double)m,
		                z);
		if (sluice_stats__decide(lo, hi, limit, at_least) != SLUICE_INCONCLUSIVE)
			return m;
	}
	return 0;
}

double sluice_stats__mcnemar_p(size_t worse, size_t better)
{
	size_t m = worse + better, k = worse < better ? worse : better;
	double p;

	if (m == 0)
		return 1;
	p = 2 * sluice_stats__binom_cdf(k, m, 0.5);
	return p > 1 ? 1 : p;
}

uint64_t sluice_rng__next(sluice_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

size_t sluice_rng__below(sluice_rng *r, size_t n)
{
	/* Rejection keeps the draw uniform for any n. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;

	do
		x = sluice_rng__next(r);
	while (x >= limit);
	return (size_t)(x % n);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double sluice_stats__quantile(double *v, size_t n, double q)
{
	double pos;
	size_t i;

	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	pos = q * (double)(n - 1);
	i = (size_t)pos;
	return i + 1 < n ? v[i] + (pos - (double)i) * (v[i + 1] - v[i]) : v[n - 1];
}

void sluice_stats__median_mad(double *median, double *mad, double *v, size_t n)
{
	*median = sluice_stats__quantile(v, n, 0.5);
	for (size_t i = 0; i < n; i++)
		v[i] = fabs(v[i] - *median);
	*mad = sluice_stats__quantile(v, n, 0.5);
}

int sluice_stats__bootstrap(double *lo, double *hi, size_t nclusters, sluice_stat_fn stat,
                            void *data, size_t B, uint64_t seed, double alpha)
{
	size_t *idx = calloc(nclusters ? nclusters : 1, sizeof(*idx));
	double *vals = calloc(B ? B : 1, sizeof(*vals));
	sluice_rng r = {seed};

	if (!idx || !vals) {
		free(idx);
		free(vals);
		return -1;
	}
	for (size_t b = 0; b < B; b++) {
		for (size_t k = 0; k < nclusters; k++)
			idx[k] = sluice_rng__below(&r, nclusters);
		vals[b] = stat(idx, nclusters, data);
	}
	*lo = sluice_stats__quantile(vals, B, alpha / 2);
	*hi = sluice_stats__quantile(vals, B, 1 - alpha / 2);
	free(idx);
	free(vals);
	return 0;
}
