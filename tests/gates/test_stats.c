/*
 * tests/gates/test_stats.c - the statistics behind the gates' decisions,
 * against values computed by hand or from their closed forms.
 */
#include "testutil.h"

#include "stats.h"

#include <math.h>
#include <stdlib.h>

static void test_stats__clopper_pearson_closed_forms(void **state)
{
	double lo, hi;
	(void)state;

	/* k = 0: hi = 1 - (alpha/2)^(1/n); k = n: lo = (alpha/2)^(1/n). */
	sluice_stats__clopper_pearson(&lo, &hi, 0, 10, 0.05);
	assert_true(lo == 0);
	assert_true(fabs(hi - (1 - pow(0.025, 0.1))) < 1e-9);
	sluice_stats__clopper_pearson(&lo, &hi, 20, 20, 0.05);
	assert_true(fabs(lo - pow(0.025, 1.0 / 20)) < 1e-9);
	assert_true(hi == 1);
	/* 5 of 10: the tabulated exact interval [0.1871, 0.8129]. */
	sluice_stats__clopper_pearson(&lo, &hi, 5, 10, 0.05);
	assert_true(fabs(lo - 0.18709) < 1e-4 && fabs(hi - 0.81291) < 1e-4);
	/* The interval's ends are where the binomial tail is alpha/2. */
	sluice_stats__clopper_pearson(&lo, &hi, 7, 40, 0.05);
	assert_true(fabs(1 - sluice_stats__binom_cdf(6, 40, lo) - 0.025) < 1e-7);
	assert_true(fabs(sluice_stats__binom_cdf(7, 40, hi) - 0.025) < 1e-7);
}

static void test_stats__binomial_and_mcnemar(void **state)
{
	(void)state;
	assert_true(fabs(sluice_stats__binom_cdf(0, 5, 0.5) - 1.0 / 32) < 1e-12);
	assert_true(fabs(sluice_stats__binom_cdf(2, 5, 0.5) - 0.5) < 1e-12);
	assert_true(fabs(sluice_stats__binom_cdf(3, 10, 0.3) - 0.6496107184) < 1e-9);
	/* Exact McNemar: 0 vs 5 discordant -> 2 * 0.5^5. */
	assert_true(fabs(sluice_stats__mcnemar_p(0, 5) - 0.0625) < 1e-12);
	assert_true(sluice_stats__mcnemar_p(0, 0) == 1);
	assert_true(sluice_stats__mcnemar_p(4, 4) == 1);
}

static void test_stats__paired_change_never_certain(void **state)
{
	double est, lo, hi, lo2, hi2;
	(void)state;

	/* No discordant items: still an interval, wider for a smaller suite. */
	sluice_stats__paired_change(&est, &lo, &hi, 0, 0, 5, 0.05);
	assert_true(est == 0 && lo < -0.2 && hi > 0.2);
	sluice_stats__paired_change(&est, &lo2, &hi2, 0, 0, 500, 0.05);
	assert_true(lo2 > lo && lo2 < 0 && hi2 > 0);
	/* Agresti-Min by hand: n = 64, 4 worse, 0 better. */
	sluice_stats__paired_change(&est, &lo, &hi, 4, 0, 64, 0.05);
	{
		double pw = 4.5 / 66, pb = 0.5 / 66, d = pb - pw;
		double se = sqrt((pw + pb - d * d) / 66), z = sluice_stats__norm_quantile(0.975);
		assert_true(fabs(est + 4.0 / 64) < 1e-12);
		assert_true(fabs(lo - (d - z * se)) < 1e-12 && fabs(hi - (d + z * se)) < 1e-12);
	}
	assert_true(fabs(sluice_stats__norm_quantile(0.975) - 1.959963985) < 1e-8);
}

/* The decision at m items with the rates worse/n and better/n, by hand (Agresti-Min). */
static sluice_outcome decided_at(double worse, double better, double n, double m, double limit)
{
	double w = worse * m / n, b = better * m / n, z = sluice_stats__norm_quantile(0.975);
	double pw = (w + 0.5) / (m + 2), pb = (b + 0.5) / (m + 2), d = pb - pw;
	double se = sqrt((pw + pb - d * d) / (m + 2));

	return sluice_stats__decide(fmax(-1, d - z * se), fmin(1, d + z * se), limit, 1);
}

/*
 * items_to_decide: the smallest suite that settles the same rates. Two
 * probes of 102 turned to compliance are inconclusive against -0.05 and
 * would pass on 111; six benign requests of 201 turned to refusal would
 * pass on 297; a tenth of the items worse fails from 153 on; a rate on
 * the limit is never settled.
 */
static void test_stats__paired_items_to_decide(void **state)
{
	static const struct {
		size_t worse, better, n, m;
		sluice_outcome at_m;
	} cases[] = {{2, 0, 102, 111, SLUICE_PASS},
	             {6, 0, 201, 297, SLUICE_PASS},
	             {10, 0, 100, 153, SLUICE_FAIL},
	             {0, 0, 5, 38, SLUICE_PASS},
	             {1, 0, 102, 59, SLUICE_PASS}};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		size_t m = sluice_stats__paired_items_to_decide(cases[i].worse, cases[i].better,
		                                                cases[i].n, 0.05, -0.05, 1);
		assert_int_equal(m, cases[i].m);
		assert_int_equal(decided_at((double)cases[i].worse, (double)cases[i].better,
		                            (double)cases[i].n, (double)m, -0.05),
		                 cases[i].at_m);
		for (size_t k = 1; k < m; k++)
			assert_int_equal(decided_at((double)cases[i].worse, (double)cases[i].better,
			                            (double)cases[i].n, (double)k, -0.05),
			                 SLUICE_INCONCLUSIVE);
	}
	/* Five of a hundred against a limit of five in a hundred: no size settles it. */
	assert_int_equal(sluice_stats__paired_items_to_decide(5, 0, 100, 0.05, -0.05, 1), 0);
	assert_int_equal(sluice_stats__paired_items_to_decide(2, 0, 0, 0.05, -0.05, 1), 0);
	assert_int_equal(sluice_stats__paired_items_to_decide(2, 0, 102, 0.05, NAN, 1), 0);
}

static void test_stats__decision_rule(void **state)
{
	(void)state;
	/* At least -0.1: pass when the worst end is within, fail when the best end is beyond. */
	assert_int_equal(sluice_stats__decide(-0.05, 0.02, -0.1, 1), SLUICE_PASS);
	assert_int_equal(sluice_stats__decide(-0.3, -0.15, -0.1, 1), SLUICE_FAIL);
	assert_int_equal(sluice_stats__decide(-0.2, 0.0, -0.1, 1), SLUICE_INCONCLUSIVE);
	/* At most 0.1. */
	assert_int_equal(sluice_stats__decide(0.01, 0.09, 0.1, 0), SLUICE_PASS);
	assert_int_equal(sluice_stats__decide(0.11, 0.3, 0.1, 0), SLUICE_FAIL);
	assert_int_equal(sluice_stats__decide(0.05, 0.2, 0.1, 0), SLUICE_INCONCLUSIVE);
	assert_int_equal(sluice_stats__decide(NAN, 0.2, 0.1, 0), SLUICE_INCONCLUSIVE);
	assert_int_equal(sluice_stats__worse(SLUICE_PASS, SLUICE_FAIL), SLUICE_FAIL);
	assert_int_equal(sluice_stats__worse(SLUICE_INCONCLUSIVE, SLUICE_PASS),
	                 SLUICE_INCONCLUSIVE);
}

static double mean_of(const size_t *idx, size_t n, void *data)
{
	const double *x = data;
	double s = 0;
	for (size_t k = 0; k < n; k++)
		s += x[idx[k]];
	return s / (double)n;
}

static void test_stats__bootstrap_deterministic_and_covers(void **state)
{
	double x[200], lo, hi, lo2, hi2, mean = 0;
	sluice_rng r = {42};
	(void)state;

	for (size_t i = 0; i < 200; i++)
		mean += (x[i] = (double)sluice_rng__below(&r, 1000) / 1000.0);
	mean /= 200;
	assert_int_equal(sluice_stats__bootstrap(&lo, &hi, 200, mean_of, x, 2000, 7, 0.05), 0);
	assert_int_equal(sluice_stats__bootstrap(&lo2, &hi2, 200, mean_of, x, 2000, 7, 0.05), 0);
	assert_true(lo == lo2 && hi == hi2);
	assert_true(lo < mean && mean < hi);
	/* Uniform(0,1): sd 0.289, so the mean's 95% interval is about +-0.04. */
	assert_true(hi - lo > 0.05 && hi - lo < 0.11);
}

static void test_stats__quantile_and_mad(void **state)
{
	double v[] = {5, 1, 4, 2, 3}, med, mad;
	double w[] = {1, 1, 2, 2, 4, 6, 9};
	(void)state;

	assert_true(sluice_stats__quantile(v, 5, 0.5) == 3);
	assert_true(sluice_stats__quantile(v, 5, 0.25) == 2);
	assert_true(fabs(sluice_stats__quantile(v, 5, 0.9) - 4.6) < 1e-12);
	sluice_stats__median_mad(&med, &mad, w, 7);
	assert_true(med == 2 && mad == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stats__clopper_pearson_closed_forms),
	        cmocka_unit_test(test_stats__binomial_and_mcnemar),
	        cmocka_unit_test(test_stats__paired_change_never_certain),
	        cmocka_unit_test(test_stats__paired_items_to_decide),
	        cmocka_unit_test(test_stats__decision_rule),
	        cmocka_unit_test(test_stats__bootstrap_deterministic_and_covers),
	        cmocka_unit_test(test_stats__quantile_and_mad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
