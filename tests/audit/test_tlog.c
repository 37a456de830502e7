/*
 * tests/audit/test_tlog.c - the RFC 9162 Merkle tree of audit/tlog.c.
 * Small trees are checked against hashes computed by hand from the RFC's
 * definitions (the 7-leaf tree of RFC 9162 2.1.5); every size 1..64 is
 * round-tripped through verifiers written here from the RFC's verification
 * algorithms (2.1.3.2 and 2.1.4.2), and tampered proofs must fail them.
 */
#include "testutil.h"
#include "tlog.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define MAXN 64

static sluice_tlog_hash leaves[MAXN];

static int test_leaf(void *data, uint64_t index, sluice_tlog_hash out)
{
	(void)data;
	if (index >= MAXN)
		return SLUICE_ECORRUPT;
	memcpy(out, leaves[index], 32);
	return 0;
}

static void H(unsigned char *out, const unsigned char *l, const unsigned char *r)
{
	/* Interior node written out independently of sluice_tlog__node_hash. */
	unsigned char buf[65];
	buf[0] = 1;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	crypto_hash_sha256(out, buf, 65);
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	for (int i = 0; i < MAXN; i++) {
		char s[32];
		snprintf(s, sizeof(s), "entry %d", i);
		sluice_tlog__leaf_hash(leaves[i], s, strlen(s));
	}
	return 0;
}

/* RFC 9162 2.1.3.2. */
static int verify_inclusion(uint64_t index, uint64_t size, const unsigned char *leaf,
                            sluice_tlog_hash *path, size_t n, const unsigned char *root)
{
	uint64_t fn = index, sn = size - 1;
	unsigned char r[32];

	if (index >= size)
		return 0;
	memcpy(r, leaf, 32);
	for (size_t i = 0; i < n; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			H(r, path[i], r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			H(r, r, path[i]);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && !memcmp(r, root, 32);
}

/* RFC 9162 2.1.4.2. */
static int verify_consistency(uint64_t first, uint64_t second, const unsigned char *fh,
                              const unsigned char *sh, sluice_tlog_hash *proof, size_t n)
{
	sluice_tlog_hash path[MAXN + 1];
	unsigned char fr[32], sr[32];
	uint64_t fn, sn;
	size_t np = 0;

	if (first == second)
		return n == 0 && !memcmp(fh, sh, 32);
	if (n == 0 || first == 0 || first > second)
		return 0;
	if ((first & (first - 1)) == 0)
		memcpy(path[np++], fh, 32);
	for (size_t i = 0; i < n; i++)
		memcpy(path[np++], proof[i], 32);
	fn = first - 1;
	sn = second - 1;
	if (fn & 1)
		while (fn & 1) {
			fn >>= 1;
			sn >>= 1;
		}
	memcpy(fr, path[0], 32);
	memcpy(sr, path[0], 32);
	for (size_t i = 1; i < np; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			H(fr, path[i], fr);
			H(sr, path[i], sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			H(sr, sr, path[i]);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return !memcmp(fr, fh, 32) && !memcmp(sr, sh, 32) && sn == 0;
}

static void test_tlog__known_vectors(void **state)
{
	sluice_tlog_hash h;
	char hex[65];

	(void)state;
	/* SHA-256("") and the RFC 6962 leaf hash of the empty entry. */
	assert_int_equal(sluice_tlog__root(h, 0, test_leaf, NULL), 0);
	sluice__hex(hex, h, 32);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sluice_tlog__leaf_hash(h, "", 0);
	sluice__hex(hex, h, 32);
	assert_string_equal(hex,
	                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

/* The 7-leaf tree of RFC 9162 2.1.5: a b c d e f d6 under g h i j, k l. */
static void test_tlog__rfc_example_tree(void **state)
{
	unsigned char *a = leaves[0], *b = leaves[1], *c = leaves[2], *d = leaves[3],
	              *e = leaves[4], *f = leaves[5], *d6 = leaves[6];
	unsigned char g[32], hh[32], i[32], k[32], l[32], root[32], root3[32], root4[32], root6[32],
	        gc[32];
	sluice_tlog_hash got, proof[SLUICE_TLOG_MAXDEPTH];
	size_t n;

	(void)state;
	H(g, a, b);
	H(hh, c, d);
	H(i, e, f);
	H(k, g, hh);
	H(l, i, d6);
	H(root, k, l);
	H(root3, g, c);
	memcpy(root4, k, 32);
	H(root6, k, i);
	assert_int_equal(sluice_tlog__root(got, 7, test_leaf, NULL), 0);
	assert_memory_equal(got, root, 32);
	assert_int_equal(sluice_tlog__root(got, 3, test_leaf, NULL), 0);
	assert_memory_equal(got, root3, 32);
	assert_int_equal(sluice_tlog__root(got, 1, test_leaf, NULL), 0);
	assert_memory_equal(got, a, 32);

	/* Inclusion: PATH(0) = [b h l], PATH(3) = [c g l], PATH(4) = [f j k], PATH(6) = [i k]. */
	assert_int_equal(sluice_tlog__inclusion(proof, &n, 0, 7, test_leaf, NULL), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(proof[0], b, 32);
	assert_memory_equal(proof[1], hh, 32);
	assert_memory_equal(proof[2], l, 32);
	assert_int_equal(sluice_tlog__inclusion(proof, &n, 3, 7, test_leaf, NULL), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(proof[0], c, 32);
	assert_memory_equal(proof[1], g, 32);
	assert_memory_equal(proof[2], l, 32);
	assert_int_equal(sluice_tlog__inclusion(proof, &n, 4, 7, test_leaf, NULL), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(proof[0], f, 32);
	assert_memory_equal(proof[1], d6, 32);
	assert_memory_equal(proof[2], k, 32);
	assert_int_equal(sluice_tlog__inclusion(proof, &n, 6, 7, test_leaf, NULL), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(proof[0], i, 32);
	assert_memory_equal(proof[1], k, 32);

	/* Consistency: PROOF(3, 7) = [c d g l], PROOF(4, 7) = [l], PROOF(6, 7) = [i d6 k]. */
	assert_int_equal(sluice_tlog__consistency(proof, &n, 3, 7, test_leaf, NULL), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(proof[0], c, 32);
	assert_memory_equal(proof[1], d, 32);
	assert_memory_equal(proof[2], g, 32);
	assert_memory_equal(proof[3], l, 32);
	assert_int_equal(sluice_tlog__consistency(proof, &n, 4, 7, test_leaf, NULL), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(proof[0], l, 32);
	assert_int_equal(sluice_tlog__consistency(proof, &n, 6, 7, test_leaf, NULL), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(proof[0], i, 32);
	assert_memory_equal(proof[1], d6, 32);
	assert_memory_equal(proof[2], k, 32);
	assert_true(verify_consistency(6, 7, root6, root, proof, n));
	assert_true(verify_consistency(4, 7, root4, root, proof + 2, 0) == 0);
	/* Size 2 to 3: [c]. */
	assert_int_equal(sluice_tlog__consistency(proof, &n, 2, 3, test_leaf, NULL), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(proof[0], c, 32);
	H(gc, g, c);
	assert_memory_equal(gc, root3, 32);

	/* Out of range. */
	assert_int_equal(sluice_tlog__inclusion(proof, &n, 7, 7, test_leaf, NULL), SLUICE_EINVALID);
	assert_int_equal(sluice_tlog__consistency(proof, &n, 0, 7, test_leaf, NULL),
	                 SLUICE_EINVALID);
	assert_int_equal(sluice_tlog__consistency(proof, &n, 8, 7, test_leaf, NULL),
	                 SLUICE_EINVALID);
	/* A failing leaf source is passed up. */
	assert_int_equal(sluice_tlog__root(got, MAXN + 1, test_leaf, NULL), SLUICE_ECORRUPT);
}

static void test_tlog__round_trips_1_to_64(void **state)
{
	sluice_tlog_hash roots[MAXN + 1], proof[SLUICE_TLOG_MAXDEPTH], fr;
	sluice_tlog_frontier f;
	size_t n;

	(void)state;
	sluice_tlog__frontier_init(&f);
	sluice_tlog__frontier_root(&f, fr);
	assert_int_equal(sluice_tlog__root(roots[0], 0, test_leaf, NULL), 0);
	assert_memory_equal(fr, roots[0], 32);
	for (uint64_t size = 1; size <= MAXN; size++) {
		assert_int_equal(sluice_tlog__root(roots[size], size, test_leaf, NULL), 0);
		/* The frontier's root after appending equals the recursive MTH. */
		assert_int_equal(sluice_tlog__frontier_append(&f, leaves[size - 1]), 0);
		assert_int_equal(f.size, size);
		assert_int_equal(f.count, __builtin_popcountll(size));
		sluice_tlog__frontier_root(&f, fr);
		assert_memory_equal(fr, roots[size], 32);
	}
	for (uint64_t size = 1; size <= MAXN; size++) {
		for (uint64_t idx = 0; idx < size; idx++) {
			unsigned char bad[32];

			assert_int_equal(
			        sluice_tlog__inclusion(proof, &n, idx, size, test_leaf, NULL), 0);
			assert_true(
			        verify_inclusion(idx, size, leaves[idx], proof, n, roots[size]));
			/* Another leaf, index, size or root must fail. */
			assert_false(verify_inclusion(idx, size, leaves[(idx + 1) % MAXN], proof, n,
			                              roots[size]));
			if (size > 1)
				assert_false(verify_inclusion((idx + 1) % size, size, leaves[idx],
				                              proof, n, roots[size]));
			assert_false(verify_inclusion(idx, size, leaves[idx], proof, n,
			                              roots[size - 1]));
			for (size_t j = 0; j < n; j++) {
				proof[j][j % 32] ^= 0x40;
				assert_false(verify_inclusion(idx, size, leaves[idx], proof, n,
				                              roots[size]));
				proof[j][j % 32] ^= 0x40;
			}
			if (n) /* a truncated path */
				assert_false(verify_inclusion(idx, size, leaves[idx], proof, n - 1,
				                              roots[size]));
			memcpy(bad, leaves[idx], 32);
			bad[31] ^= 1;
			assert_false(verify_inclusion(idx, size, bad, proof, n, roots[size]));
		}
		for (uint64_t m = 1; m <= size; m++) {
			assert_int_equal(
			        sluice_tlog__consistency(proof, &n, m, size, test_leaf, NULL), 0);
			assert_true(verify_consistency(m, size, roots[m], roots[size], proof, n));
			if (m < size) {
				assert_false(verify_consistency(m, size, roots[m - 1], roots[size],
				                                proof, n));
				assert_false(verify_consistency(m, size, roots[m], roots[size - 1],
				                                proof, n));
				for (size_t j = 0; j < n; j++) {
					proof[j][0] ^= 0x01;
					assert_false(verify_consistency(m, size, roots[m],
					                                roots[size], proof, n));
					proof[j][0] ^= 0x01;
				}
			}
		}
	}
}

/* The fuzz seeds (tests/fuzz/corpus/tlog/) are what they say they are. */
static const char *seed_note(const char *name)
{
	static char why[256];
	static const char body[] = "sluice.journal/00112233445566778899aabbccddeeff\n5\n"
	                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
	unsigned char seed[32], pk[32], sk[64], *data;
	char path[4096], fp[SLUICE_FP_LEN];
	sluice_buf line = {0};
	sluice_ctx *ctx = NULL;
	json_t *keys;
	const char *r;
	size_t len;

	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/tlog/%s", SLUICE_SOURCE_DIR, name);
	assert_non_null(data = tu_read(path, &len));
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	memset(seed, 7, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	assert_int_equal(sluice_keys__openssh_pub(ctx, pk, "k", &line), 0);
	assert_int_equal(sluice_buf__cstr(ctx, &line), 0);
	keys = json_pack("{s:{s:s}}", "k", "public_key", (const char *)line.ptr);
	sluice_keys__fingerprint(fp, pk);
	r = sluice_tlog__check_note(ctx, data + 1, len - 1, body, strlen(body), keys, NULL, fp, why,
	                            sizeof(why));
	json_decref(keys);
	sluice_buf__dispose(&line);
	sluice_ctx_free(ctx);
	free(data);
	return r;
}

static int seed_tlog(const char *name, sluice_tlog_frontier *f)
{
	char path[4096], origin[SLUICE_TLOG_ORIGIN_LEN + 1];
	sluice_ctx *ctx = NULL;
	unsigned char *data;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/tlog/%s", SLUICE_SOURCE_DIR, name);
	assert_non_null(data = tu_read(path, &len));
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	rc = sluice_tlog__parse_tlog(ctx, f, origin, data + 1, len - 1, name);
	if (rc < 0)
		assert_non_null(strstr(sluice_ctx_errmsg(ctx), name));
	sluice_ctx_free(ctx);
	free(data);
	return rc;
}

static void test_tlog__parsers_on_the_seeds(void **state)
{
	sluice_tlog_frontier f;
	const char *why;

	(void)state;
	assert_null(seed_note("note-good"));
	assert_null(seed_note("note-two-sigs"));
	assert_non_null(why = seed_note("note-bad-sig"));
	assert_non_null(strstr(why, "does not verify"));
	assert_non_null(seed_note("note-no-blank"));
	assert_non_null(seed_note("note-short-line"));
	assert_int_equal(seed_tlog("tlog-good", &f), 0);
	assert_int_equal(f.size, 5);
	assert_int_equal(f.count, 2);
	assert_int_equal(seed_tlog("tlog-wrong-count", &f), SLUICE_ECORRUPT);
	assert_int_equal(seed_tlog("tlog-extra-key", &f), SLUICE_ECORRUPT);
	assert_int_equal(seed_tlog("tlog-bad-b64", &f), SLUICE_ECORRUPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_tlog__known_vectors),
	        cmocka_unit_test(test_tlog__rfc_example_tree),
	        cmocka_unit_test(test_tlog__round_trips_1_to_64),
	        cmocka_unit_test(test_tlog__parsers_on_the_seeds),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
