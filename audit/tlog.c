/*
 * audit/tlog.c - the RFC 9162 Merkle tree: root, inclusion and consistency
 * proofs from a source of leaf hashes, and the frontier that makes a new
 * root cost O(log n). See tlog.h.
 */
#include "tlog.h"

#include <sodium.h>
#include <string.h>

void sluice_tlog__leaf_hash(sluice_tlog_hash out, const void *data, size_t len)
{
	crypto_hash_sha256_state s;
	unsigned char zero = 0x00;

	crypto_hash_sha256_init(&s);
	crypto_hash_sha256_update(&s, &zero, 1);
	crypto_hash_sha256_update(&s, data, len);
	crypto_hash_sha256_final(&s, out);
}

void sluice_tlog__node_hash(sluice_tlog_hash out, const sluice_tlog_hash left,
                            const sluice_tlog_hash right)
{
	unsigned char buf[1 + 2 * SLUICE_TLOG_HASH];

	buf[0] = 0x01;
	memcpy(buf + 1, left, SLUICE_TLOG_HASH);
	memcpy(buf + 1 + SLUICE_TLOG_HASH, right, SLUICE_TLOG_HASH);
	crypto_hash_sha256(out, buf, sizeof(buf));
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t split(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

/* MTH(D[lo:hi]), hi > lo. Recursion depth is at most 64. */
static int subtree(sluice_tlog_hash out, uint64_t lo, uint64_t hi, sluice_tlog_leaf_fn leaf,
                   void *data)
{
	sluice_tlog_hash l, r;
	uint64_t k;
	int error;

	if (hi - lo == 1)
		return leaf(data, lo, out);
	k = split(hi - lo);
	if ((error = subtree(l, lo, lo + k, leaf, data)) < 0 ||
	    (error = subtree(r, lo + k, hi, leaf, data)) < 0)
		return error;
	sluice_tlog__node_hash(out, l, r);
	return SLUICE_OK;
}

int sluice_tlog__root(sluice_tlog_hash out, uint64_t n, sluice_tlog_leaf_fn leaf, void *data)
{
	if (n == 0) {
		crypto_hash_sha256(out, (const unsigned char *)"", 0);
		return SLUICE_OK;
	}
	return subtree(out, 0, n, leaf, data);
}

/* PATH(m, D[lo:hi]) appended bottom-up: the sibling hashes from the leaf to the root. */
static int path(sluice_tlog_hash *out, size_t *count, uint64_t m, uint64_t lo, uint64_t hi,
                sluice_tlog_leaf_fn leaf, void *data)
{
	uint64_t k;
	int error;

	if (hi - lo == 1)
		return SLUICE_OK;
	k = split(hi - lo);
	if (m < k) {
		if ((error = path(out, count, m, lo, lo + k, leaf, data)) < 0)
			return error;
		return subtree(out[(*count)++], lo + k, hi, leaf, data);
	}
	if ((error = path(out, count, m - k, lo + k, hi, leaf, data)) < 0)
		return error;
	return subtree(out[(*count)++], lo, lo + k, leaf, data);
}

int sluice_tlog__inclusion(sluice_tlog_hash out[SLUICE_TLOG_MAXDEPTH], size_t *count,
                           uint64_t index, uint64_t n, sluice_tlog_leaf_fn leaf, void *data)
{
	*count = 0;
	if (index >= n)
		return SLUICE_EINVALID;
	return path(out, count, index, 0, n, leaf, data);
}

/* SUBPROOF(m, D[lo:hi], b) of RFC 9162 2.1.4.1. */
static int subproof(sluice_tlog_hash *out, size_t *count, uint64_t m, uint64_t lo, uint64_t hi,
                    int b, sluice_tlog_leaf_fn leaf, void *data)
{
	uint64_t n = hi - lo, k;
	int error;

	if (m == n)
		return b ? SLUICE_OK : subtree(out[(*count)++], lo, hi, leaf, data);
	k = split(n);
	if (m <= k) {
		if ((error = subproof(out, count, m, lo, lo + k, b, leaf, data)) < 0)
			return error;
		return subtree(out[(*count)++], lo + k, hi, leaf, data);
	}
	if ((error = subproof(out, count, m - k, lo + k, hi, 0, leaf, data)) < 0)
		return error;
	return subtree(out[(*count)++], lo, lo + k, leaf, data);
}

int sluice_tlog__consistency(sluice_tlog_hash out[SLUICE_TLOG_MAXDEPTH], size_t *count, uint64_t m,
                             uint64_t n, sluice_tlog_leaf_fn leaf, void *data)
{
	*count = 0;
	if (m == 0 || m > n)
		return SLUICE_EINVALID;
	return subproof(out, count, m, 0, n, 1, leaf, data);
}

void sluice_tlog__frontier_init(sluice_tlog_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

int sluice_tlog__frontier_append(sluice_tlog_frontier *f, const sluice_tlog_hash leaf)
{
	sluice_tlog_hash h;
	uint64_t s = f->size;

	if (s == UINT64_MAX)
		return SLUICE_EINVALID;
	memcpy(h, leaf, SLUICE_TLOG_HASH);
	/* Each trailing 1 bit of the old size is a perfect subtree the new leaf completes. */
	while (s & 1) {
		sluice_tlog__node_hash(h, f->h[--f->count], h);
		s >>= 1;
	}
	memcpy(f->h[f->count++], h, SLUICE_TLOG_HASH);
	f->size++;
	return SLUICE_OK;
}

void sluice_tlog__frontier_root(const sluice_tlog_frontier *f, sluice_tlog_hash out)
{
	sluice_tlog_hash r;
	unsigned i;

	if (!f->count) {
		crypto_hash_sha256(out, (const unsigned char *)"", 0);
		return;
	}
	/* Fold right to left: the smallest subtree is the rightmost. */
	memcpy(r, f->h[f->count - 1], SLUICE_TLOG_HASH);
	for (i = f->count - 1; i-- > 0;)
		sluice_tlog__node_hash(r, f->h[i], r);
	memcpy(out, r, SLUICE_TLOG_HASH);
}
