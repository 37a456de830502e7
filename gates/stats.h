/*
 * gates/stats.h - the statistics behind every gate's decision: intervals
 * for proportions and paired differences, a deterministic cluster
 * bootstrap, and the rule that turns an interval and a limit into pass,
 * fail or inconclusive (docs/gates.md states each formula).
 */
#ifndef SLUICE_GATES_STATS_H
#define SLUICE_GATES_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SLUICE_PASS = 0, SLUICE_INCONCLUSIVE = 1, SLUICE_FAIL = 2 } sluice_outcome;

/* "pass", "inconclusive", "fail". */
const char *sluice_stats__outcome_name(sluice_outcome o);
/* The worse of two outcomes (fail > inconclusive > pass). */
sluice_outcome sluice_stats__worse(sluice_outcome a, sluice_outcome b);

/*
 * The decision rule. A figure whose interval is [lo, hi] must be at least
 * limit (at_least = 1) or at most limit (at_least = 0): pass when the
 * interval's worst end is within the limit, fail when even its best end
 * is beyond it, inconclusive otherwise. A NaN end is inconclusive.
 */
sluice_outcome sluice_stats__decide(double lo, double hi, double limit, int at_least);

/* Regularized incomplete beta I_x(a, b), a, b > 0, x in [0, 1]. */
double sluice_stats__ibeta(double a, double b, double x);

/* P(X <= k) for X ~ Binomial(n, p). */
double sluice_stats__binom_cdf(size_t k, size_t n, double p);

/*
 * Clopper-Pearson (exact) two-sided interval with coverage 1 - alpha for a
 * proportion k/n (n > 0): lo = Beta(alpha/2; k, n-k+1), hi = Beta(1 -
 * alpha/2; k+1, n-k), with lo = 0 at k = 0 and hi = 1 at k = n.
 */
void sluice_stats__clopper_pearson(double *lo, double *hi, size_t k, size_t n, double alpha);

/* The standard normal quantile: z with P(Z <= z) = p, 0 < p < 1. */
double sluice_stats__norm_quantile(double p);

/*
 * A paired change in a proportion over n items scored twice: `worse`
 * items right before and wrong after, `better` items wrong before and
 * right after. *est = (better - worse) / n; [*lo, *hi] is the Wald
 * interval with Agresti and Min's adjustment (0.5 added to each of the
 * four cells of the paired table, so n + 2 in all), clamped to [-1, 1].
 * It never collapses to a point, so a small suite is never certain.
 */
void sluice_stats__paired_change(double *est, double *lo, double *hi, size_t worse, size_t better,
                                 size_t n, double alpha);

/*
 * How many items a paired check needs: the smallest suite size m at which
 * the same rates (worse/n and better/n, so worse * m / n items worse) give
 * an interval that the decision rule decides, pass or fail, against limit;
 * 0 when n is 0 or no m up to SLUICE_STATS_ITEMS_MAX does (the rate sits
 * on the limit). An inconclusive check says so: a suite of that size
 * would settle a change of this size, or the rate is the limit itself.
 */
#define SLUICE_STATS_ITEMS_MAX 1000000
size_t sluice_stats__paired_items_to_decide(size_t worse, size_t better, size_t n, double alpha,
                                            double limit, int at_least);

/*
 * Exact McNemar test: the two-sided binomial p-value of the discordant
 * counts (worse, better) under p = 1/2; 1 when there are none.
 */
double sluice_stats__mcnemar_p(size_t worse, size_t better);

/* A small deterministic generator (splitmix64) for resampling. */
typedef struct {
	uint64_t s;
} sluice_rng;
uint64_t sluice_rng__next(sluice_rng *r);
/* Uniform in [0, n), n > 0. */
size_t sluice_rng__below(sluice_rng *r, size_t n);

/*
 * Percentile bootstrap over clusters (items whose values are correlated,
 * such as the positions of one text): `stat` computes the statistic of a
 * resample given as cluster indices (idx[k], k < nclusters, with
 * repetition); B resamples with the generator seeded by seed; [*lo, *hi]
 * are the alpha/2 and 1 - alpha/2 quantiles of the resampled statistics.
 * Returns 0, or -1 when out of memory.
 */
typedef double (*sluice_stat_fn)(const size_t *idx, size_t nclusters, void *data);
int sluice_stats__bootstrap(double *lo, double *hi, size_t nclusters, sluice_stat_fn stat,
                            void *data, size_t B, uint64_t seed, double alpha);

/* The q-quantile (0..1, linear interpolation) of v[n]; v is sorted in place. */
double sluice_stats__quantile(double *v, size_t n, double q);

/* Median and the median absolute deviation of v[n] (v is reordered). */
void sluice_stats__median_mad(double *median, double *mad, double *v, size_t n);

#endif
