/*
 * Elementwise math the evaluator runs over whole activation rows, written so
 * that the compiler vectorizes the loops that call it.
 *
 * expf from libm is an opaque call, one element at a time: a pass of the
 * 100M-parameter bench model makes ~31 million of them (SiLU on every gate
 * activation, softmax on every causal score), and they ran on one core while
 * OpenBLAS's other thread waited. sluice_vexpf is plain arithmetic with no
 * branches, so a loop over a row becomes SIMD code.
 */
#ifndef SLUICE_EVAL_VMATH_H
#define SLUICE_EVAL_VMATH_H

#include <stdint.h>
#include <string.h>

/*
 * SLUICE_VCLONES marks the evaluator's hot element-wise loops: GCC compiles
 * each twice, for AVX2 and for the x86-64 baseline, and the dynamic loader
 * picks the one this CPU runs (target_clones, an ifunc). AVX2 without FMA:
 * the same IEEE operations in registers twice as wide and no contraction, so
 * both copies give the same bits and the numerics revision does not change.
 * Not under Clang, whose sanitizer builds run the tests, nor elsewhere.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SLUICE_VCLONES __attribute__((target_clones("avx2", "default")))
#else
#define SLUICE_VCLONES
#endif

static inline uint32_t sluice_vbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof u);
	return u;
}

static inline float sluice_vfloat(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof f);
	return f;
}

/* mask ? a : b for a mask of all ones or all zeros, as bit operations. */
static inline float sluice_vpick(uint32_t mask, float a, float b)
{
	return sluice_vfloat((sluice_vbits(a) & mask) | (sluice_vbits(b) & ~mask));
}

/*
 * e^x in f32, under one ulp from the exact value for -87.3 <= x <= 88.3
 * (0.976 ulp at worst over every 16th float of that range, measured against
 * exp() in double; test_model checks a sample). Below -87.3 it returns 0,
 * where e^x is subnormal (< 1.2e-38) and only a flush to zero changes; above
 * 88.3 it returns +inf, where e^x passes 2.4e38 (FLT_MAX is 3.4e38). Neither
 * end matters to softmax, whose arguments are <= 0, or to SiLU, where either
 * end gives 0 or x. NaN in gives NaN out.
 *
 * Method (Cephes' expf): x = k.ln2 + r with k = round(x / ln2) and
 * |r| <= ln2/2, ln2 split in two parts so that k.ln2 is exact enough;
 * e^r = 1 + r + r^2.P(r) with Cephes' degree-5 minimax P; e^x = 2^k.e^r, 2^k
 * built in the exponent bits.
 */
static inline float sluice_vexpf(float x)
{
	const float lo = -87.3f, hi = 88.3f;
	/* The out-of-range cases are chosen by masks, not branches or ?:, so
	 * the loops that call this are straight-line code the vectorizer takes
	 * (a float ?: it may turn into a branch around arithmetic that "could
	 * trap", which keeps the loop scalar under the default
	 * -ftrapping-math). */
	const uint32_t below = -(uint32_t)(x < lo), above = -(uint32_t)(x > hi),
	               nan = -(uint32_t)(x != x);
	/* c is x clamped to [lo, hi], and 0 for NaN: converting NaN to an int
	 * below would be undefined. */
	float c = sluice_vpick(nan, 0.0f, sluice_vpick(above, hi, sluice_vpick(below, lo, x))), kf,
	      r, z, p, y;
	int32_t k;

	/* round(c / ln2): adding 1.5 * 2^23 leaves the integer in the low bits */
	kf = c * 1.44269504088896341f + 12582912.0f;
	kf -= 12582912.0f;
	k = (int32_t)kf;
	r = c - kf * 0.693359375f;
	r = r - kf * -2.12194440e-4f;
	z = r * r;
	p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	y = (p * z + r + 1.0f) * sluice_vfloat((uint32_t)(k + 127) << 23);
	y = sluice_vpick(below, 0.0f, y);
	y = sluice_vpick(above, __builtin_inff(), y);
	return sluice_vpick(nan, x, y);
}

#endif
