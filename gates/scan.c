/*
 * gates/scan.c - the poisoning gate's data-only checks (see scan.h for the
 * thresholds and why they are what they are).
 *
 * Text is seen as words: maximal runs of ASCII letters and digits and of
 * non-ASCII bytes (so UTF-8 letters stay inside words), ASCII lower-cased.
 * Each word gets a fixed-seed 64-bit hash; n-grams and shingles are hashes
 * of word hashes. 64-bit collisions between distinct n-grams are possible
 * in principle but need ~2^32 distinct n-grams to become likely.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "scan.h"
#include "notes_instr.h"

#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPERM 128      /* MinHash permutations */
#define BAND_ROWS 4    /* LSH rows a band; NPERM / BAND_ROWS bands */
#define SHINGLE 3      /* words a shingle */
#define MAX_GRAM 3     /* longest prompt n-gram */
#define BUCKET_SPAN 64 /* earlier bucket members each is verified against */
#define EXCERPT 80     /* bytes of a completion or match shown */
#define MATCH_LIMIT 1000000

void sluice_scan__opts_init(sluice_scan_opts *o)
{
	o->dup_jaccard = 0.6;
	o->dup_min_records = 3;
	o->dup_share = 0.02;
	o->dup_buffer_ratio = 4.0;
	o->trig_min_records = 3;
	o->trig_min_share = 0.005;
	o->trig_agreement = 0.8;
	o->trig_min_log2_ratio = 4.0;
	o->trig_top = 20;
	o->secret_min_value_len = 16;
	o->secret_min_entropy = 3.5;
	o->secret_hex_min_entropy = 3.0;
	o->provenance_max_share = 0.0;
	o->note_token_budget = 512;
	o->note_base64_min = 100;
	o->max_findings = 100;
}

/* ---- small helpers ------------------------------------------------------ */

/* qsort, which may not be handed NULL even for no elements. */
static void sort(void *p, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(p, n, size, cmp);
}

/* splitmix64's finaliser: a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t z)
{
	z ^= z >> 30;
	z *= 0xbf58476d1ce4e5b9ULL;
	z ^= z >> 27;
	z *= 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Hash of a sequence of n hashes. */
static uint64_t hash_seq(const uint64_t *h, size_t n)
{
	uint64_t s = 0x736c75696365ULL; /* fixed seed */

	for (size_t i = 0; i < n; i++)
		s = mix64(s ^ h[i]) + 0x9e3779b97f4a7c15ULL;
	return mix64(s ^ n);
}

static bool word_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

typedef struct {
	size_t off, len;
	uint64_t h;
} word;

/* Append the words of s to *w (count *n, capacity *cap). */
static int words_of(sluice_ctx *ctx, word **w, size_t *n, size_t *cap, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	int error;

	while (i < len) {
		uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
		size_t start;

		while (i < len && !word_byte(u[i]))
			i++;
		if (i == len)
			break;
		start = i;
		for (; i < len && word_byte(u[i]); i++)
			h = (h ^ lower(u[i])) * 0x100000001b3ULL;
		if ((error = sluice__reserve(ctx, (void **)w, cap, *n + 1, sizeof(word))) < 0)
			return error;
		(*w)[*n].off = start;
		(*w)[*n].len = i - start;
		(*w)[*n].h = mix64(h);
		(*n)++;
	}
	return 0;
}

/* Bytes of s up to max, cut back to a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* A JSON string of at most EXCERPT bytes of s, "..." appended when cut. */
static json_t *excerpt(const char *s, size_t len)
{
	size_t n = utf8_cut(s, len, EXCERPT);
	char buf[EXCERPT + 4];

	memcpy(buf, s, n);
	if (n < len)
		memcpy(buf + n, "...", 3), n += 3;
	return json_stringn(buf, n);
}

/* Add a finding, or only count it past the cap. */
static void add_finding(json_t *findings, json_t *f, size_t max)
{
	if (json_array_size(findings) < max)
		json_array_append_new(findings, f);
	else
		json_decref(f);
}

static json_t *check_new(const char *name, bool flagged, json_t *figures, json_t *thresholds,
                         json_t *findings)
{
	return json_pack("{s:s,s:b,s:o,s:o,s:o}", "check", name, "flagged", flagged, "figures",
	                 figures, "thresholds", thresholds, "findings", findings);
}

/* ---- records ------------------------------------------------------------- */

void sluice_scan__records_dispose(sluice_scan_records *r)
{
	free(r->rec);
	json_decref(r->objs);
	memset(r, 0, sizeof(*r));
}

int sluice_scan__records_parse(sluice_ctx *ctx, sluice_scan_records *out,
                               const unsigned char *batch, size_t len, const char *name)
{
	sluice_scan_records r = {0};
	size_t line = 0, off = 0, cap = 0;
	int error = 0;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: the replay batch is empty",
		                         name);
	if (!sluice__utf8_valid(batch, len))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: not UTF-8 text", name);
	if (!(r.objs = json_array()))
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "%s: out of memory", name);
	while (off < len) {
		const unsigned char *nl = memchr(batch + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - batch) : len;
		static const char *const need[] = {"prompt", "completion"};
		sluice_scan_record *rec;
		json_error_t jerr;
		json_t *v, *src;

		line++;
		v = json_loadb((const char *)batch + off, end - off, JSON_REJECT_DUPLICATES, &jerr);
		if (!v) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: line %zu: not JSON: %s", name, line,
			                          jerr.text);
			goto done;
		}
		if (json_array_append_new(r.objs, v) < 0) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "%s: out of memory", name);
			goto done;
		}
		if (!json_is_object(v)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: a replay record must be a JSON object", name, line);
			goto done;
		}
		for (size_t k = 0; k < 2; k++) {
			if (!json_is_string(json_object_get(v, need[k]))) {
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: line %zu: field \"%s\" must be a string", name, line,
				        need[k]);
				goto done;
			}
		}
		src = json_object_get(v, "source");
		if (src && !json_is_string(src) && !json_is_null(src)) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: line %zu: field \"source\" must be a string or null", name,
			        line);
			goto done;
		}
		if ((error = sluice__reserve(ctx, (void **)&r.rec, &cap, r.n + 1, sizeof(*r.rec))) <
		    0)
			goto done;
		rec = &r.rec[r.n++];
		memset(rec, 0, sizeof(*rec));
		rec->prompt = json_string_value(json_object_get(v, "prompt"));
		rec->prompt_len = json_string_length(json_object_get(v, "prompt"));
		rec->completion = json_string_value(json_object_get(v, "completion"));
		rec->completion_len = json_string_length(json_object_get(v, "completion"));
		if (json_is_string(src)) {
			rec->source = json_string_value(src);
			rec->source_len = json_string_length(src);
		}
		rec->source_null = json_is_null(src);
		rec->line = line;
		off = end + 1;
	}
	*out = r;
	memset(&r, 0, sizeof(r));
done:
	sluice_scan__records_dispose(&r);
	return error;
}

/* ---- duplicates ----------------------------------------------------------- */

static size_t uf_find(size_t *parent, size_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

static void uf_union(size_t *parent, size_t a, size_t b)
{
	a = uf_find(parent, a);
	b = uf_find(parent, b);
	/* The smaller index is the root, so a cluster is named by its first line. */
	if (a < b)
		parent[b] = a;
	else if (b < a)
		parent[a] = b;
}

typedef struct {
	uint64_t key;
	size_t rec;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
	const keyed *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

/*
 * MinHash signature of a record's words (prompt, a separator, completion):
 * sig[p] = min over 3-word shingles s of mix64(h(s) ^ seed_p), kept as 32
 * bits (a chance agreement of 2^-32 does not move the estimate). Returns
 * false when the record has no words (no signature).
 */
static bool signature(uint32_t *sig, const word *w, size_t nw)
{
	uint64_t mins[NPERM], seed[NPERM];
	size_t nsh = nw < SHINGLE ? (nw ? 1 : 0) : nw - SHINGLE + 1;

	if (nsh == 0)
		return false;
	for (size_t p = 0; p < NPERM; p++) {
		mins[p] = UINT64_MAX;
		seed[p] = mix64(0x5eed0000ULL + p);
	}
	for (size_t s = 0; s < nsh; s++) {
		uint64_t hs[SHINGLE], h;
		size_t k = nw < SHINGLE ? nw : SHINGLE;

		for (size_t j = 0; j < k; j++)
			hs[j] = w[s + j].h;
		h = hash_seq(hs, k);
		for (size_t p = 0; p < NPERM; p++) {
			uint64_t v = mix64(h ^ seed[p]);

			if (v < mins[p])
				mins[p] = v;
		}
	}
	for (size_t p = 0; p < NPERM; p++)
		sig[p] = (uint32_t)(mins[p] >> 32);
	return true;
}

static double est_jaccard(const uint32_t *a, const uint32_t *b)
{
	size_t eq = 0;

	for (size_t p = 0; p < NPERM; p++)
		eq += a[p] == b[p];
	return (double)eq / NPERM;
}

/*
 * Cluster n records (recs[i]) into near-duplicates: parent[] (n entries,
 * caller frees) is a union-find forest whose roots are the clusters' first
 * records.
 */
static int cluster(sluice_ctx *ctx, size_t **parent_out, const sluice_scan_record *const *recs,
                   size_t n, double thr)
{
	size_t nsig, nbands = NPERM / BAND_ROWS, nkeys = 0, wn = 0, wcap = 0;
	uint32_t *sig = NULL;
	size_t *parent = NULL;
	keyed *keys = NULL;
	word *w = NULL;
	int error = 0;

	*parent_out = NULL;
	if (sluice__mul_ovf(&nsig, n ? n : 1, NPERM * sizeof(uint32_t)) < 0 ||
	    sluice__mul_ovf(&nkeys, n ? n : 1, nbands * sizeof(keyed)) < 0)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "scan: too many records");
	if (!(sig = sluice__malloc(ctx, nsig)) ||
	    !(parent = sluice__calloc(ctx, n ? n : 1, sizeof(size_t))) ||
	    !(keys = sluice__malloc(ctx, nkeys))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	nkeys = 0;
	for (size_t i = 0; i < n; i++) {
		static const uint64_t sep = 0x7365706172617465ULL; /* between the fields */

		parent[i] = i;
		wn = 0;
		if ((error = words_of(ctx, &w, &wn, &wcap, recs[i]->prompt, recs[i]->prompt_len)) <
		            0 ||
		    (error = sluice__reserve(ctx, (void **)&w, &wcap, wn + 1, sizeof(word))) < 0)
			goto done;
		w[wn++] = (word){0, 0, sep};
		if ((error = words_of(ctx, &w, &wn, &wcap, recs[i]->completion,
		                      recs[i]->completion_len)) < 0)
			goto done;
		/* The separator alone is no text: such a record has no signature. */
		if (wn == 1 || !signature(sig + i * NPERM, w, wn))
			continue;
		for (size_t b = 0; b < nbands; b++) {
			uint64_t hb[BAND_ROWS + 1];

			for (size_t r = 0; r < BAND_ROWS; r++)
				hb[r] = sig[i * NPERM + b * BAND_ROWS + r];
			hb[BAND_ROWS] = b;
			keys[nkeys++] = (keyed){hash_seq(hb, BAND_ROWS + 1), i};
		}
	}
	sort(keys, nkeys, sizeof(keyed), cmp_keyed);
	for (size_t s = 0, e; s < nkeys; s = e) {
		for (e = s + 1; e < nkeys && keys[e].key == keys[s].key; e++)
			;
		/*
		 * Verify each member against the BUCKET_SPAN members before it
		 * (skipping those already in its cluster): pairs sharing a band
		 * are likely similar, so a cluster forms from neighbours, and
		 * the span keeps a bucket of m members at O(m) work.
		 */
		for (size_t j = s + 1; j < e; j++) {
			size_t seen = 0;

			for (size_t i = j; i-- > s && seen++ < BUCKET_SPAN;) {
				size_t a = keys[i].rec, b = keys[j].rec;

				if (uf_find(parent, a) == uf_find(parent, b))
					continue;
				if (est_jaccard(sig + a * NPERM, sig + b * NPERM) >= thr)
					uf_union(parent, a, b);
			}
		}
	}
	*parent_out = parent;
	parent = NULL;
done:
	free(sig);
	free(parent);
	free(keys);
	free(w);
	return error;
}

/* Normalised text for exact duplicates: case folded, whitespace runs as one space, trimmed. */
static int norm_append(sluice_ctx *ctx, sluice_buf *b, const char *s, size_t len)
{
	bool space = false, started = false;
	int error;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			space = started;
			continue;
		}
		started = true;
		if (space && (error = sluice_buf__put(ctx, b, " ", 1)) < 0)
			return error;
		space = false;
		c = lower(c);
		if ((error = sluice_buf__put(ctx, b, &c, 1)) < 0)
			return error;
	}
	return 0;
}

/* The 64-bit exact-duplicate key of a record. */
static int exact_key(sluice_ctx *ctx, uint64_t *out, const sluice_scan_record *r, sluice_buf *b)
{
	unsigned char d[SLUICE_B2_LEN], n8[8] = {0};
	size_t plen;
	int error;

	b->len = 0;
	if ((error = sluice_buf__put(ctx, b, n8, 8)) < 0 ||
	    (error = norm_append(ctx, b, r->prompt, r->prompt_len)) < 0)
		return error;
	/* Length-prefix the prompt so the split between the fields counts. */
	plen = b->len - 8;
	sluice__st64(b->ptr, (uint64_t)plen);
	if ((error = norm_append(ctx, b, r->completion, r->completion_len)) < 0)
		return error;
	sluice__b2(d, b->ptr, b->len);
	*out = sluice__le64(d);
	return 0;
}

/* The largest cluster's size in a forest of n. */
static size_t largest_cluster(size_t *parent, size_t n, size_t *sizes)
{
	size_t best = 0;

	memset(sizes, 0, n * sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		size_t r = uf_find(parent, i);

		if (++sizes[r] > best)
			best = sizes[r];
	}
	return best;
}

typedef struct {
	size_t start, size; /* members: byroot[start .. start+size) */
	bool flagged;
} dup_cluster;

static int cmp_cluster(const void *a, const void *b)
{
	const dup_cluster *x = a, *y = b;

	if (x->flagged != y->flagged)
		return x->flagged ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int check_duplicates(sluice_ctx *ctx, json_t *checks, const sluice_scan_records *batch,
                            const sluice_scan_records *buffers, size_t nbuffer,
                            const sluice_scan_opts *o)
{
	const sluice_scan_record **recs = NULL, **brecs = NULL;
	size_t n = batch->n, nb = 0, *parent = NULL, *bparent = NULL, *sizes = NULL;
	size_t largest, blargest = 0, nclusters = 0, nflagged = 0, exact_extra = 0,
	                exact_groups = 0, bsizes_n;
	keyed *ek = NULL, *byroot = NULL;
	uint64_t *ekey = NULL;
	dup_cluster *cl = NULL;
	size_t ncl = 0;
	sluice_buf nb_buf = {0};
	json_t *findings = json_array();
	double bshare;
	int error = 0;

	for (size_t i = 0; i < nbuffer; i++)
		nb += buffers[i].n;
	bsizes_n = nb > n ? nb : n;
	if (!(recs = sluice__calloc(ctx, n, sizeof(*recs))) ||
	    !(brecs = sluice__calloc(ctx, nb ? nb : 1, sizeof(*brecs))) ||
	    !(sizes = sluice__calloc(ctx, bsizes_n, sizeof(size_t))) ||
	    !(ek = sluice__calloc(ctx, n, sizeof(keyed))) ||
	    !(ekey = sluice__calloc(ctx, n, sizeof(uint64_t))) ||
	    !(byroot = sluice__calloc(ctx, n, sizeof(keyed))) ||
	    !(cl = sluice__calloc(ctx, n, sizeof(*cl)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		recs[i] = &batch->rec[i];
	nb = 0;
	for (size_t i = 0; i < nbuffer; i++)
		for (size_t j = 0; j < buffers[i].n; j++)
			brecs[nb++] = &buffers[i].rec[j];

	/* Exact duplicates. */
	for (size_t i = 0; i < n; i++) {
		if ((error = exact_key(ctx, &ek[i].key, recs[i], &nb_buf)) < 0)
			goto done;
		ek[i].rec = i;
		ekey[i] = ek[i].key;
	}
	sort(ek, n, sizeof(keyed), cmp_keyed);
	for (size_t s = 0, e; s < n; s = e) {
		for (e = s + 1; e < n && ek[e].key == ek[s].key; e++)
			;
		if (e - s > 1) {
			exact_groups++;
			exact_extra += e - s - 1;
		}
	}

	if ((error = cluster(ctx, &parent, recs, n, o->dup_jaccard)) < 0 ||
	    (error = cluster(ctx, &bparent, brecs, nb, o->dup_jaccard)) < 0)
		goto done;
	if (nb > 0) {
		blargest = largest_cluster(bparent, nb, sizes);
		if (blargest < 2)
			blargest = 0;
	}
	bshare = nb ? (double)blargest / (double)nb : 0.0;
	largest = largest_cluster(parent, n, sizes);

	/*
	 * Members grouped by cluster (root, then line) in one sort, so the
	 * work stays O(n log n) however many clusters there are.
	 */
	for (size_t i = 0; i < n; i++)
		byroot[i] = (keyed){uf_find(parent, i), i};
	sort(byroot, n, sizeof(keyed), cmp_keyed);
	for (size_t s = 0, e; s < n; s = e) {
		size_t size;
		double share;

		for (e = s + 1; e < n && byroot[e].key == byroot[s].key; e++)
			;
		if ((size = e - s) < 2)
			continue;
		share = (double)size / (double)n;
		cl[ncl].start = s;
		cl[ncl].size = size;
		cl[ncl].flagged = size >= o->dup_min_records && share >= o->dup_share &&
		                  share >= o->dup_buffer_ratio * bshare;
		nflagged += cl[ncl].flagged;
		ncl++;
	}
	nclusters = ncl;
	/* Flagged clusters first, then the largest. */
	sort(cl, ncl, sizeof(*cl), cmp_cluster);
	for (size_t c = 0; c < ncl && c < o->max_findings; c++) {
		const keyed *m = byroot + cl[c].start;
		bool exact = true;
		json_t *lines = json_array();

		for (size_t j = 0; j < cl[c].size; j++) {
			exact = exact && ekey[m[j].rec] == ekey[m[0].rec];
			if (j < o->max_findings)
				json_array_append_new(
				        lines, json_integer((json_int_t)recs[m[j].rec]->line));
		}
		json_array_append_new(
		        findings, json_pack("{s:I,s:f,s:b,s:b,s:o}", "size", (json_int_t)cl[c].size,
		                            "share", (double)cl[c].size / (double)n, "exact", exact,
		                            "flagged", cl[c].flagged, "lines", lines));
	}
	{
		json_t *figures = json_pack(
		        "{s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:f,s:I}", "records", (json_int_t)n,
		        "exact_duplicate_groups", (json_int_t)exact_groups,
		        "exact_duplicate_records", (json_int_t)exact_extra,
		        "near_duplicate_clusters", (json_int_t)nclusters, "largest_cluster",
		        (json_int_t)(largest > 1 ? largest : 0), "largest_cluster_share",
		        largest > 1 ? (double)largest / (double)n : 0.0, "buffer_records",
		        (json_int_t)nb, "buffer_largest_cluster", (json_int_t)blargest,
		        "buffer_largest_cluster_share", bshare, "flagged_clusters",
		        (json_int_t)nflagged);
		json_t *thr = json_pack(
		        "{s:f,s:I,s:f,s:f,s:I,s:I,s:I}", "jaccard", o->dup_jaccard, "min_records",
		        (json_int_t)o->dup_min_records, "share", o->dup_share, "buffer_ratio",
		        o->dup_buffer_ratio, "permutations", (json_int_t)NPERM, "band_rows",
		        (json_int_t)BAND_ROWS, "shingle_words", (json_int_t)SHINGLE);

		json_array_append_new(
		        checks, check_new("duplicates", nflagged > 0, figures, thr, findings));
		findings = NULL;
	}
done:
	json_decref(findings);
	free(recs);
	free(brecs);
	free(parent);
	free(bparent);
	free(sizes);
	free(ek);
	free(ekey);
	free(byroot);
	free(cl);
	sluice_buf__dispose(&nb_buf);
	return error;
}

/* ---- trigger n-grams ------------------------------------------------------- */

typedef struct {
	uint64_t h;
	size_t rec;
	uint32_t pos; /* first word of the n-gram in the record's prompt */
	uint32_t n;   /* words */
} gram;

static int cmp_gram(const void *a, const void *b)
{
	const gram *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

typedef struct {
	uint64_t h;
	size_t s, e;     /* run of the n-gram in the sorted grams */
	size_t k, m;     /* records with the n-gram; of those, with the completion */
	uint64_t ckey;   /* the completion's key */
	size_t ncomp;    /* records in the batch with that completion */
	size_t nw;       /* words in the n-gram */
	size_t distinct; /* near-duplicate clusters among the m records */
	size_t bg_buf, bg_corpus, last_doc;
	double lr;
	bool flagged, dropped;
} cand;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_cand_h(const void *a, const void *b)
{
	const cand *x = a, *y = b;

	return x->h < y->h ? -1 : x->h > y->h;
}

/* For suppression: by completion, then more records, then longer n-grams. */
static int cmp_cand_size(const void *a, const void *b)
{
	const cand *x = a, *y = b;

	if (x->ckey != y->ckey)
		return x->ckey < y->ckey ? -1 : 1;
	if (x->m != y->m)
		return x->m > y->m ? -1 : 1;
	if (x->nw != y->nw)
		return x->nw > y->nw ? -1 : 1;
	return x->h < y->h ? -1 : x->h > y->h;
}

/* For output: flagged first, then the log-ratio, then records. */
static int cmp_cand_rank(const void *a, const void *b)
{
	const cand *x = a, *y = b;

	if (x->flagged != y->flagged)
		return x->flagged ? -1 : 1;
	if (x->lr != y->lr)
		return x->lr > y->lr ? -1 : 1;
	if (x->m != y->m)
		return x->m > y->m ? -1 : 1;
	return x->h < y->h ? -1 : x->h > y->h;
}

/* The key of a completion: its word sequence (case and punctuation aside). */
static int completion_key(sluice_ctx *ctx, uint64_t *out, const sluice_scan_record *r, word **w,
                          size_t *wcap, uint64_t **hs, size_t *hcap)
{
	size_t wn = 0;
	int error;

	if ((error = words_of(ctx, w, &wn, wcap, r->completion, r->completion_len)) < 0 ||
	    (error = sluice__reserve(ctx, (void **)hs, hcap, wn + 1, sizeof(uint64_t))) < 0)
		return error;
	for (size_t i = 0; i < wn; i++)
		(*hs)[i] = (*w)[i].h;
	*out = hash_seq(*hs, wn);
	return 0;
}

/* Count, in one background text, the candidates it contains (once a text). */
static int count_background(sluice_ctx *ctx, cand *c, size_t nc, const char *s, size_t len,
                            size_t doc, bool corpus, word **w, size_t *wcap)
{
	size_t wn = 0;
	int error;

	if ((error = words_of(ctx, w, &wn, wcap, s, len)) < 0)
		return error;
	for (size_t p = 0; p < wn; p++) {
		uint64_t hs[MAX_GRAM];

		for (size_t n = 1; n <= MAX_GRAM && p + n <= wn; n++) {
			cand key, *hit;

			hs[n - 1] = (*w)[p + n - 1].h;
			key.h = hash_seq(hs, n);
			hit = nc ? bsearch(&key, c, nc, sizeof(cand), cmp_cand_h) : NULL;
			if (!hit || hit->last_doc == doc)
				continue;
			hit->last_doc = doc;
			if (corpus)
				hit->bg_corpus++;
			else
				hit->bg_buf++;
		}
	}
	return 0;
}

/* Is the record set of x (its grams with x's completion) within y's? */
static bool records_within(const cand *x, const cand *y, const gram *g, const uint64_t *ckey)
{
	size_t j = y->s;

	for (size_t i = x->s; i < x->e; i++) {
		if (ckey[g[i].rec] != x->ckey)
			continue;
		while (j < y->e && (g[j].rec < g[i].rec || ckey[g[j].rec] != y->ckey))
			j++;
		if (j == y->e || g[j].rec != g[i].rec)
			return false;
	}
	return true;
}

/* Do the two n-grams share a word? */
static bool grams_overlap(const gram *gx, const gram *gy, const word *const *pw)
{
	const word *wx = pw[gx->rec] + gx->pos, *wy = pw[gy->rec] + gy->pos;

	for (size_t i = 0; i < gx->n; i++)
		for (size_t j = 0; j < gy->n; j++)
			if (wx[i].h == wy[j].h)
				return true;
	return false;
}

/* The n-gram's text, from its first record: lower-cased words joined by spaces. */
static int gram_text(sluice_ctx *ctx, sluice_buf *b, const gram *g,
                     const sluice_scan_records *batch, const word *const *pw)
{
	const sluice_scan_record *r = &batch->rec[g->rec];
	int error;

	b->len = 0;
	for (uint32_t i = 0; i < g->n; i++) {
		const word *wd = &pw[g->rec][g->pos + i];

		if (i && (error = sluice_buf__put(ctx, b, " ", 1)) < 0)
			return error;
		for (size_t k = 0; k < wd->len; k++) {
			unsigned char c = lower((unsigned char)r->prompt[wd->off + k]);

			if ((error = sluice_buf__put(ctx, b, &c, 1)) < 0)
				return error;
		}
	}
	return 0;
}

static int check_triggers(sluice_ctx *ctx, json_t *checks, json_t *mined,
                          const sluice_scan_records *batch, const sluice_scan_records *buffers,
                          size_t nbuffer, const char *const *corpus, size_t ncorpus,
                          const sluice_scan_opts *o)
{
	size_t n = batch->n, ng = 0, gcap = 0, wcap = 0, hcap = 0, nc = 0, ccap = 0, allw = 0,
	       awcap = 0, nbuf_docs = 0, need, listed = 0, nflagged = 0, distinct = 0, kept = 0;
	word *w = NULL, *aw = NULL;
	size_t *wstart = NULL, *ncomp = NULL, *gsize = NULL, *cforest = NULL;
	sluice_scan_record *only_c = NULL, *only_p = NULL;
	const sluice_scan_record **cptr = NULL, **pptr = NULL;
	size_t *forest = NULL; /* near-duplicate prompts */
	const word **pw = NULL;
	uint64_t *ckey = NULL, *hs = NULL, *tmp = NULL;
	keyed *ck = NULL;
	gram *g = NULL;
	cand *c = NULL;
	sluice_buf text = {0};
	json_t *findings = json_array();
	int error = 0;

	if (!(wstart = sluice__calloc(ctx, n + 1, sizeof(size_t))) ||
	    !(ckey = sluice__calloc(ctx, n, sizeof(uint64_t))) ||
	    !(ncomp = sluice__calloc(ctx, n, sizeof(size_t))) ||
	    !(ck = sluice__calloc(ctx, n, sizeof(keyed))) ||
	    !(pw = sluice__calloc(ctx, n, sizeof(*pw))) ||
	    !(tmp = sluice__calloc(ctx, n, sizeof(uint64_t))) ||
	    !(gsize = sluice__calloc(ctx, n, sizeof(size_t))) ||
	    !(only_c = sluice__calloc(ctx, n, sizeof(*only_c))) ||
	    !(cptr = sluice__calloc(ctx, n, sizeof(*cptr))) ||
	    !(only_p = sluice__calloc(ctx, n, sizeof(*only_p))) ||
	    !(pptr = sluice__calloc(ctx, n, sizeof(*pptr)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	/* Prompt words of every record, and each record's exact completion key. */
	for (size_t i = 0; i < n; i++) {
		const sluice_scan_record *r = &batch->rec[i];

		wstart[i] = allw;
		if ((error = words_of(ctx, &aw, &allw, &awcap, r->prompt, r->prompt_len)) < 0 ||
		    (error = completion_key(ctx, &ck[i].key, r, &w, &wcap, &hs, &hcap)) < 0)
			goto done;
		ck[i].rec = i;
		only_c[i] = *r;
		only_c[i].prompt_len = 0;
		cptr[i] = &only_c[i];
		only_p[i] = *r;
		only_p[i].completion_len = 0;
		pptr[i] = &only_p[i];
	}
	wstart[n] = allw;
	for (size_t i = 0; i < n; i++)
		pw[i] = aw ? aw + wstart[i] : NULL;
	/*
	 * Completions are "the same" when their words are equal or they are
	 * near-duplicates (as the duplicates check measures, on the completion
	 * alone): a poisoner may vary the payload's wording a little. Exact
	 * groups are joined too, since a completion without words has no
	 * signature. A completion's key is its group's first record.
	 */
	if ((error = cluster(ctx, &cforest, cptr, n, o->dup_jaccard)) < 0 ||
	    (error = cluster(ctx, &forest, pptr, n, o->dup_jaccard)) < 0)
		goto done;
	sort(ck, n, sizeof(keyed), cmp_keyed);
	for (size_t s = 0, e; s < n; s = e) {
		for (e = s + 1; e < n && ck[e].key == ck[s].key; e++)
			uf_union(cforest, ck[s].rec, ck[e].rec);
	}
	for (size_t i = 0; i < n; i++) {
		ckey[i] = uf_find(cforest, i);
		ncomp[ckey[i]]++;
	}
	/* ncomp[] counted by group; give each record its group's size. */
	for (size_t i = 0; i < n; i++)
		gsize[i] = ncomp[ckey[i]];
	memcpy(ncomp, gsize, n * sizeof(size_t));

	/* Every (n-gram, record) pair, once a record. */
	for (size_t i = 0; i < n; i++) {
		size_t nw = wstart[i + 1] - wstart[i];

		for (size_t p = 0; p < nw; p++) {
			uint64_t h3[MAX_GRAM];

			for (size_t k = 1; k <= MAX_GRAM && p + k <= nw; k++) {
				h3[k - 1] = pw[i][p + k - 1].h;
				if ((error = sluice__reserve(ctx, (void **)&g, &gcap, ng + 1,
				                             sizeof(gram))) < 0)
					goto done;
				/* A prompt of 2^32 words cannot fit a batch; refuse rather than
				 * wrap. */
				if (p > UINT32_MAX) {
					error = sluice_ctx__error(ctx, SLUICE_EINVALID,
					                          "line %zu: prompt too long",
					                          batch->rec[i].line);
					goto done;
				}
				g[ng++] = (gram){hash_seq(h3, k), i, (uint32_t)p, (uint32_t)k};
			}
		}
	}
	sort(g, ng, sizeof(gram), cmp_gram);
	/* Drop repeats within a record (sorted by rec inside a run). */
	{
		size_t out = 0;

		for (size_t i = 0; i < ng; i++) {
			if (out && g[out - 1].h == g[i].h && g[out - 1].rec == g[i].rec)
				continue;
			distinct += !out || g[out - 1].h != g[i].h;
			g[out++] = g[i];
		}
		ng = out;
	}

	/* Candidates: n-grams whose records mostly share one completion. */
	for (size_t s = 0, e; s < ng; s = e) {
		size_t k, m = 0, distinct_m = 0;
		uint64_t mode = 0;

		for (e = s + 1; e < ng && g[e].h == g[s].h; e++)
			;
		k = e - s;
		if (k < o->trig_min_records)
			continue;
		for (size_t i = s; i < e; i++)
			tmp[i - s] = ckey[g[i].rec];
		sort(tmp, k, sizeof(uint64_t), cmp_u64);
		for (size_t a = 0, b; a < k; a = b) {
			for (b = a + 1; b < k && tmp[b] == tmp[a]; b++)
				;
			if (b - a > m)
				m = b - a, mode = tmp[a];
		}
		if (m < o->trig_min_records || (double)m < o->trig_agreement * (double)k)
			continue;
		/*
		 * Count the records as distinct prompts (near-duplicate prompts
		 * once): they share all their n-grams, and repeating one example
		 * is the duplicates check's finding, not a trigger.
		 */
		for (size_t i = s, j = 0; i < e; i++)
			if (ckey[g[i].rec] == mode)
				tmp[j++] = uf_find(forest, g[i].rec);
		sort(tmp, m, sizeof(uint64_t), cmp_u64);
		for (size_t a = 0; a < m; a++)
			distinct_m += !a || tmp[a] != tmp[a - 1];
		if (distinct_m < o->trig_min_records)
			continue;
		if ((error = sluice__reserve(ctx, (void **)&c, &ccap, nc + 1, sizeof(cand))) < 0)
			goto done;
		memset(&c[nc], 0, sizeof(cand));
		c[nc].h = g[s].h;
		c[nc].s = s;
		c[nc].e = e;
		c[nc].k = k;
		c[nc].m = m;
		c[nc].ckey = mode;
		c[nc].nw = g[s].n;
		c[nc].distinct = distinct_m;
		for (size_t i = s; i < e; i++)
			if (ckey[g[i].rec] == mode)
				c[nc].ncomp = ncomp[g[i].rec];
		nc++;
	}

	/* Background: replay-buffer prompts and corpus texts (doc ids from 1). */
	sort(c, nc, sizeof(cand), cmp_cand_h);
	for (size_t b = 0; b < nbuffer && nc; b++) {
		for (size_t j = 0; j < buffers[b].n; j++) {
			const sluice_scan_record *r = &buffers[b].rec[j];

			if ((error = count_background(ctx, c, nc, r->prompt, r->prompt_len,
			                              ++nbuf_docs, false, &w, &wcap)) < 0)
				goto done;
		}
	}
	if (!nc)
		for (size_t b = 0; b < nbuffer; b++)
			nbuf_docs += buffers[b].n;
	for (size_t j = 0; j < ncorpus && nc; j++) {
		if ((error = count_background(ctx, c, nc, corpus[j], strlen(corpus[j]),
		                              nbuf_docs + 1 + j, true, &w, &wcap)) < 0)
			goto done;
	}

	/* Scores: a smoothed log-ratio of foreground and background rates. */
	need = (size_t)ceil(o->trig_min_share * (double)n);
	if (need < o->trig_min_records)
		need = o->trig_min_records;
	for (size_t i = 0; i < nc; i++) {
		double nbg = (double)(n - c[i].ncomp + nbuf_docs + ncorpus);
		double bg = (double)(c[i].k - c[i].m + c[i].bg_buf + c[i].bg_corpus);
		double fg = (double)c[i].m / (double)c[i].ncomp;

		c[i].lr = log2(fg / ((bg + 0.5) / (nbg + 1.0)));
		c[i].flagged = c[i].distinct >= need && c[i].lr >= o->trig_min_log2_ratio;
	}

	/*
	 * One candidate a pattern: among candidates going with the same
	 * completion, drop one whose records lie within a kept one's when the
	 * records are the same (a duplicated prompt yields all its n-grams) or
	 * the two share a word (a trigger's parts, or a part with the words
	 * that happen to stand next to it in a few records).
	 * Sorted by records then words, the longest full-support n-gram stays.
	 */
	sort(c, nc, sizeof(cand), cmp_cand_size);
	for (size_t s = 0, e; s < nc; s = e) {
		for (e = s + 1; e < nc && c[e].ckey == c[s].ckey; e++)
			;
		for (size_t x = s; x < e; x++) {
			for (size_t y = s; y < x && !c[x].dropped; y++) {
				bool related;

				if (c[y].dropped || !records_within(&c[x], &c[y], g, ckey))
					continue;
				related = c[x].m == c[y].m ||
				          grams_overlap(&g[c[x].s], &g[c[y].s], pw);
				c[x].dropped = related;
			}
		}
	}
	sort(c, nc, sizeof(cand), cmp_cand_rank);
	for (size_t i = 0; i < nc; i++) {
		const sluice_scan_record *first = NULL;
		json_t *f, *lines;

		if (c[i].dropped)
			continue;
		kept++;
		nflagged += c[i].flagged;
		if (listed >= o->trig_top)
			continue;
		listed++;
		lines = json_array();
		for (size_t j = c[i].s; j < c[i].e; j++) {
			if (ckey[g[j].rec] != c[i].ckey)
				continue;
			if (!first)
				first = &batch->rec[g[j].rec];
			if (json_array_size(lines) < o->max_findings)
				json_array_append_new(
				        lines, json_integer((json_int_t)batch->rec[g[j].rec].line));
		}
		if ((error = gram_text(ctx, &text, &g[c[i].s], batch, pw)) < 0) {
			json_decref(lines);
			goto done;
		}
		f = json_pack("{s:s%,s:I,s:I,s:I,s:o,s:I,s:f,s:f,s:{s:I,s:I,s:I,s:I},s:b,s:o}",
		              "ngram", (const char *)text.ptr, text.len, "records",
		              (json_int_t)c[i].m, "distinct_prompts", (json_int_t)c[i].distinct,
		              "with_ngram", (json_int_t)c[i].k, "completion",
		              excerpt(first->completion, first->completion_len),
		              "completion_records", (json_int_t)c[i].ncomp, "agreement",
		              (double)c[i].m / (double)c[i].k, "log2_ratio", c[i].lr, "background",
		              "batch_other", (json_int_t)(c[i].k - c[i].m), "buffer",
		              (json_int_t)c[i].bg_buf, "corpus", (json_int_t)c[i].bg_corpus,
		              "texts", (json_int_t)(n - c[i].ncomp + nbuf_docs + ncorpus),
		              "flagged", c[i].flagged, "lines", lines);
		json_array_append_new(findings, f);
		json_array_append_new(mined, json_stringn((const char *)text.ptr, text.len));
	}
	{
		json_t *figures =
		        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "records", (json_int_t)n,
		                  "distinct_ngrams", (json_int_t)distinct, "candidates",
		                  (json_int_t)kept, "flagged_candidates", (json_int_t)nflagged,
		                  "min_records_needed", (json_int_t)need, "buffer_prompts",
		                  (json_int_t)nbuf_docs, "corpus_texts", (json_int_t)ncorpus);
		json_t *thr = json_pack("{s:I,s:f,s:f,s:f,s:I,s:I}", "min_records",
		                        (json_int_t)o->trig_min_records, "min_share",
		                        o->trig_min_share, "agreement", o->trig_agreement,
		                        "min_log2_ratio", o->trig_min_log2_ratio, "max_words",
		                        (json_int_t)MAX_GRAM, "top", (json_int_t)o->trig_top);

		json_array_append_new(
		        checks, check_new("trigger_ngrams", nflagged > 0, figures, thr, findings));
		findings = NULL;
	}
done:
	json_decref(findings);
	free(w);
	free(aw);
	free(wstart);
	free(ncomp);
	free(pw);
	free(ckey);
	free(hs);
	free(tmp);
	free(ck);
	free(g);
	free(c);
	free(gsize);
	free(cforest);
	free(only_c);
	free(cptr);
	free(only_p);
	free(pptr);
	free(forest);
	sluice_buf__dispose(&text);
	return error;
}

/* ---- regular expressions ---------------------------------------------------- */

typedef enum { V_NONE, V_LUHN, V_IBAN, V_ENTROPY, V_BASE64 } validator;

typedef struct {
	const char *name;
	const char *check; /* notes: which check the pattern belongs to */
	const char *re;
	validator v;
	bool hidden; /* report code points rather than an excerpt */
} pattern;

typedef struct {
	pcre2_code **code;
	size_t n;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
} regexes;

static void regexes_dispose(regexes *rx)
{
	for (size_t i = 0; rx->code && i < rx->n; i++)
		pcre2_code_free(rx->code[i]);
	free(rx->code);
	pcre2_match_data_free(rx->md);
	pcre2_match_context_free(rx->mctx);
	memset(rx, 0, sizeof(*rx));
}

/* Compile n patterns with flags; a pattern that does not compile is a bug here. */
static int regexes_init(sluice_ctx *ctx, regexes *rx, const pattern *p, size_t n,
                        const char *const *res, uint32_t flags)
{
	memset(rx, 0, sizeof(*rx));
	if (!(rx->code = sluice__calloc(ctx, n, sizeof(pcre2_code *))))
		return SLUICE_ENOMEM;
	rx->n = n;
	for (size_t i = 0; i < n; i++) {
		const char *re = res ? res[i] : p[i].re;
		int errcode;
		PCRE2_SIZE erroff;

		rx->code[i] = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, flags, &errcode,
		                            &erroff, NULL);
		if (!rx->code[i]) {
			PCRE2_UCHAR msg[160];

			pcre2_get_error_message(errcode, msg, sizeof(msg));
			return sluice_ctx__error(ctx, SLUICE_ERROR,
			                         "scan: pattern %s does not compile at %zu: %s",
			                         p[i].name, (size_t)erroff, (const char *)msg);
		}
	}
	/* Bound backtracking so that crafted text cannot stall the gate. */
	if (!(rx->md = pcre2_match_data_create(4, NULL)) ||
	    !(rx->mctx = pcre2_match_context_create(NULL)))
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "scan: out of memory");
	pcre2_set_match_limit(rx->mctx, MATCH_LIMIT);
	return 0;
}

/*
 * Next match of pattern i in s[0..len) from *start: 1 and ov set, 0 at the
 * end, 2 when the match limit stopped the search (the caller counts it),
 * or a negative error.
 */
static int next_match(sluice_ctx *ctx, regexes *rx, size_t i, const pattern *p, const char *s,
                      size_t len, size_t *start, size_t ov[4])
{
	PCRE2_SIZE *v;
	int rc;

	if (*start > len)
		return 0;
	rc = pcre2_match(rx->code[i], (PCRE2_SPTR)s, len, *start, PCRE2_NO_UTF_CHECK, rx->md,
	                 rx->mctx);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	    rc == PCRE2_ERROR_HEAPLIMIT)
		return 2;
	if (rc < 0) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(rc, msg, sizeof(msg));
		return sluice_ctx__error(ctx, SLUICE_ERROR, "scan: pattern %s failed: %s",
		                         p[i].name, (const char *)msg);
	}
	v = pcre2_get_ovector_pointer(rx->md);
	ov[0] = v[0];
	ov[1] = v[1];
	ov[2] = rc > 1 && v[2] != PCRE2_UNSET ? v[2] : v[0];
	ov[3] = rc > 1 && v[3] != PCRE2_UNSET ? v[3] : v[1];
	/* Never loop on an empty match. */
	*start = v[1] > v[0] ? v[1] : v[1] + 1;
	return 1;
}

/* ---- secrets ------------------------------------------------------------------ */

static const pattern secret_patterns[] = {
        {"private_key", NULL, "-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", V_NONE,
         false},
        {"aws_access_key_id", NULL, "\\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\\b", V_NONE,
         false},
        {"github_token", NULL,
         "\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\\b", V_NONE, false},
        {"gitlab_token", NULL, "\\bglpat-[A-Za-z0-9_-]{20,}", V_NONE, false},
        {"slack_token", NULL, "\\bxox[abposr]-[A-Za-z0-9-]{10,}", V_NONE, false},
        {"jwt", NULL, "\\beyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}", V_NONE,
         false},
        {"api_key_assignment", NULL,
         "(?i)\\b[a-z0-9_.-]{0,40}(?:api[_-]?key|secret|token|passw(?:or)?d|access[_-]?key)"
         "[a-z0-9_.-]{0,40}[\"']?\\s{0,5}[:=]\\s{0,5}[\"']?([A-Za-z0-9_+/=.~-]{1,512})",
         V_ENTROPY, false},
        {"email", NULL, "\\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\\.){1,8}[A-Za-z]{2,24}\\b",
         V_NONE, false},
        {"card_number", NULL, "\\b(?:[0-9][ -]?){12,18}[0-9]\\b", V_LUHN, false},
        {"iban", NULL, "\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\\b", V_IBAN, false},
};
#define NSECRET (sizeof(secret_patterns) / sizeof(secret_patterns[0]))

static bool luhn_ok(const char *s, size_t len)
{
	int sum = 0, nd = 0, dbl = 0;
	char first = 0;
	bool same = true;

	for (size_t i = len; i-- > 0;) {
		int d;

		if (s[i] < '0' || s[i] > '9')
			continue;
		d = s[i] - '0';
		if (!first)
			first = s[i];
		same = same && s[i] == first;
		if (dbl && (d *= 2) > 9)
			d -= 9;
		sum += d;
		dbl = !dbl;
		nd++;
	}
	/* A run of one digit (0000...) passes the checksum but is no card. */
	return nd >= 13 && nd <= 19 && !same && sum % 10 == 0;
}

/* ISO 13616: move the first four characters to the end, letters as 10..35, mod 97 == 1. */
static bool iban_ok(const char *s, size_t len)
{
	char c[40];
	size_t n = 0;
	unsigned rem = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ')
			continue;
		if (n == sizeof(c))
			return false;
		c[n++] = s[i];
	}
	if (n < 15 || n > 34)
		return false;
	for (size_t k = 0; k < n; k++) {
		char ch = c[(k + 4) % n];

		if (ch >= '0' && ch <= '9')
			rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
		else
			rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
	}
	return rem == 1;
}

/* Shannon entropy of s in bits per byte. */
static double entropy(const char *s, size_t len)
{
	size_t count[256] = {0};
	double h = 0;

	for (size_t i = 0; i < len; i++)
		count[(unsigned char)s[i]]++;
	for (size_t i = 0; i < 256; i++) {
		if (count[i]) {
			double p = (double)count[i] / (double)len;

			h -= p * log2(p);
		}
	}
	return h;
}

static bool all_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* At most 4 leading bytes (the kind's prefix), the rest starred: the secret never leaves. */
static json_t *mask(const char *s, size_t len)
{
	char buf[32];
	size_t keep = len >= 12 ? 4 : len / 3, n;

	n = utf8_cut(s, len, keep);
	memcpy(buf, s, n);
	memcpy(buf + n, "****", 4);
	return json_stringn(buf, n + 4);
}

typedef struct {
	size_t total, limited, by[NSECRET];
} secret_counts;

static int scan_secrets(sluice_ctx *ctx, regexes *rx, json_t *findings, secret_counts *sc,
                        const char *s, size_t len, size_t line, const char *field,
                        const sluice_scan_opts *o, bool *hit)
{
	for (size_t i = 0; i < NSECRET; i++) {
		size_t start = 0, ov[4] = {0};
		int rc;

		while ((rc = next_match(ctx, rx, i, secret_patterns, s, len, &start, ov)) == 1) {
			const char *v = s + ov[2];
			size_t vlen = ov[3] - ov[2];

			switch (secret_patterns[i].v) {
			case V_LUHN:
				if (!luhn_ok(s + ov[0], ov[1] - ov[0]))
					continue;
				break;
			case V_IBAN:
				if (!iban_ok(s + ov[0], ov[1] - ov[0]))
					continue;
				break;
			case V_ENTROPY:
				if (vlen < o->secret_min_value_len ||
				    entropy(v, vlen) < (all_hex(v, vlen) ? o->secret_hex_min_entropy
				                                         : o->secret_min_entropy))
					continue;
				break;
			default:
				break;
			}
			sc->total++;
			sc->by[i]++;
			*hit = true;
			add_finding(findings,
			            json_pack("{s:I,s:s,s:s,s:I,s:I,s:o}", "line", (json_int_t)line,
			                      "field", field, "kind", secret_patterns[i].name,
			                      "offset", (json_int_t)ov[2], "length",
			                      (json_int_t)vlen, "masked", mask(v, vlen)),
			            o->max_findings);
		}
		if (rc == 2)
			sc->limited++;
		else if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_secrets(sluice_ctx *ctx, json_t *checks, const sluice_scan_records *batch,
                         const sluice_scan_opts *o)
{
	regexes rx;
	secret_counts sc = {0};
	size_t nrec = 0;
	json_t *findings = json_array(), *by = NULL;
	int error;

	if ((error = regexes_init(ctx, &rx, secret_patterns, NSECRET, NULL, 0)) < 0)
		goto done;
	for (size_t i = 0; i < batch->n; i++) {
		const sluice_scan_record *r = &batch->rec[i];
		bool hit = false;

		if ((error = scan_secrets(ctx, &rx, findings, &sc, r->prompt, r->prompt_len,
		                          r->line, "prompt", o, &hit)) < 0 ||
		    (error = scan_secrets(ctx, &rx, findings, &sc, r->completion, r->completion_len,
		                          r->line, "completion", o, &hit)) < 0)
			goto done;
		nrec += hit;
	}
	by = json_object();
	for (size_t i = 0; i < NSECRET; i++)
		json_object_set_new(by, secret_patterns[i].name,
		                    json_integer((json_int_t)sc.by[i]));
	{
		/* A search stopped by the match limit cannot vouch for its field. */
		json_t *figures = json_pack("{s:I,s:I,s:o,s:I}", "findings", (json_int_t)sc.total,
		                            "records_with_findings", (json_int_t)nrec, "by_kind",
		                            by, "scan_limited", (json_int_t)sc.limited);
		json_t *thr =
		        json_pack("{s:I,s:I,s:f,s:f}", "max_findings", (json_int_t)0,
		                  "api_key_min_value_len", (json_int_t)o->secret_min_value_len,
		                  "api_key_min_entropy", o->secret_min_entropy,
		                  "api_key_hex_min_entropy", o->secret_hex_min_entropy);

		by = NULL;
		json_array_append_new(checks, check_new("secrets", sc.total > 0 || sc.limited > 0,
		                                        figures, thr, findings));
		findings = NULL;
	}
done:
	json_decref(findings);
	json_decref(by);
	regexes_dispose(&rx);
	return error;
}

/* ---- provenance ------------------------------------------------------------------ */

static int check_provenance(json_t *checks, const sluice_scan_records *batch,
                            const sluice_scan_opts *o)
{
	size_t by[4] = {0}, missing = 0;
	static const char *const reasons[] = {"absent", "null", "empty", "unknown"};
	json_t *findings = json_array();
	double share;

	for (size_t i = 0; i < batch->n; i++) {
		const sluice_scan_record *r = &batch->rec[i];
		size_t a = 0, b = r->source_len;
		int why = -1;

		if (!r->source) {
			why = r->source_null ? 1 : 0;
		} else {
			while (a < b && strchr(" \t\r\n", r->source[a]) && r->source[a])
				a++;
			while (b > a && strchr(" \t\r\n", r->source[b - 1]) && r->source[b - 1])
				b--;
			if (a == b)
				why = 2;
			else if (b - a == 7 && !strncasecmp(r->source + a, "unknown", 7))
				why = 3;
		}
		if (why < 0)
			continue;
		by[why]++;
		missing++;
		add_finding(
		        findings,
		        json_pack("{s:I,s:s}", "line", (json_int_t)r->line, "reason", reasons[why]),
		        o->max_findings);
	}
	share = (double)missing / (double)batch->n;
	json_array_append_new(
	        checks,
	        check_new("provenance", share > o->provenance_max_share,
	                  json_pack("{s:I,s:I,s:f,s:{s:I,s:I,s:I,s:I}}", "records",
	                            (json_int_t)batch->n, "missing", (json_int_t)missing,
	                            "missing_share", share, "by_reason", "absent",
	                            (json_int_t)by[0], "null", (json_int_t)by[1], "empty",
	                            (json_int_t)by[2], "unknown", (json_int_t)by[3]),
	                  json_pack("{s:f}", "max_share", o->provenance_max_share), findings));
	return 0;
}

/* ---- the replay scan ---------------------------------------------------------------- */

int sluice_scan__replay(sluice_ctx *ctx, json_t **out, const unsigned char *batch, size_t len,
                        const char *batch_name, const unsigned char *const *buffer,
                        const size_t *buffer_len, size_t nbuffer, const char *const *corpus,
                        size_t ncorpus, const sluice_scan_opts *opts)
{
	sluice_scan_opts defaults;
	const sluice_scan_opts *o = opts;
	sluice_scan_records recs = {0}, *bufs = NULL;
	json_t *res = NULL, *checks, *mined;
	int error;

	*out = NULL;
	if (!o) {
		sluice_scan__opts_init(&defaults);
		o = &defaults;
	}
	if ((error = sluice_scan__records_parse(ctx, &recs, batch, len, batch_name)) < 0)
		return error;
	if (!(bufs = sluice__calloc(ctx, nbuffer ? nbuffer : 1, sizeof(*bufs)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < nbuffer; i++) {
		char name[64];

		snprintf(name, sizeof(name), "replay buffer batch %zu", i + 1);
		if ((error = sluice_scan__records_parse(ctx, &bufs[i], buffer[i], buffer_len[i],
		                                        name)) < 0)
			goto done;
	}
	res = json_pack("{s:s,s:I,s:[],s:[]}", "batch", batch_name, "records", (json_int_t)recs.n,
	                "checks", "mined_triggers");
	if (!res) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "scan: out of memory");
		goto done;
	}
	checks = json_object_get(res, "checks");
	mined = json_object_get(res, "mined_triggers");
	if ((error = check_duplicates(ctx, checks, &recs, bufs, nbuffer, o)) < 0 ||
	    (error = check_triggers(ctx, checks, mined, &recs, bufs, nbuffer, corpus, ncorpus, o)) <
	            0 ||
	    (error = check_secrets(ctx, checks, &recs, o)) < 0 ||
	    (error = check_provenance(checks, &recs, o)) < 0)
		goto done;
	*out = res;
	res = NULL;
done:
	json_decref(res);
	for (size_t i = 0; bufs && i < nbuffer; i++)
		sluice_scan__records_dispose(&bufs[i]);
	free(bufs);
	sluice_scan__records_dispose(&recs);
	return error;
}

/* ---- memory notes ---------------------------------------------------------------------- */

/* Up to 120 characters without leaving the sentence. */
#define NOTE_SPAN "[^.!?\\n]{0,120}?"
/* a and b in one sentence, in either order. */
#define NOTE_NEAR(a, b) "(?:" a ")" NOTE_SPAN "(?:" b ")|(?:" b ")" NOTE_SPAN "(?:" a ")"

/* "every reply" and its kin, or "whenever you can", "whatever they ask" */
#define NOTE_EVERY_REPLY                                                                           \
	"(?:\\b(?:every|each|all)\\s+(?:of\\s+(?:your|the|my)\\s+)?(?:answers?|repl(?:y|ies)|"     \
	"responses?)\\b|\\bwhenever\\s+(?:you\\s+can|possible)\\b|\\bwhatever\\s+(?:they|"         \
	"the\\s+user|you(?:'re|\\s+are)\\s+asked|is\\s+asked|the\\s+(?:question|topic|subject))"   \
	"\\b|"                                                                                     \
	"\\bwherever\\s+(?:you\\s+can|it\\s+fits|possible)\\b|\\bno\\s+matter\\s+(?:the|what)\\s+" \
	"(?:subject|topic|question)\\b|\\bany\\s+topic\\b)"

/*
 * Working something into the answers from time to time: the verb itself is the
 * order ("Work in a reminder now and then"); the time scope alone is not ("User now
 * and then mentions his dog").
 */
#define NOTE_WORK_VERB "(?:work|slip|weav|sneak|fit)\\w*\\s+(?:\\w+\\s+){0,3}?in"
#define NOTE_WORK_IN                                                                               \
	"\\b" NOTE_WORK_VERB "\\b" NOTE_SPAN                                                       \
	"\\b(?:now\\s+and\\s+then|every\\s+so\\s+often|from\\s+time\\s+to\\s+time|regularly|"      \
	"often)\\b"

/* A promoting or reminding verb, for standing_mention. */
#define NOTE_PROMOTE_VERB                                                                          \
	"\\b(?:recommend\\w*|promot\\w*|advertis\\w*|plug\\w*|mention\\w*|remind\\w*|"             \
	"tell\\w*\\s+the\\s+user|say\\w*\\s+that|suggest\\w*|bring\\w*\\s+up|talk\\w*\\s+about|"   \
	"point\\w*\\s+out|" NOTE_WORK_VERB ")\\b"

/*
 * Safety-erosion vocabulary, for the three patterns added after the eleventh round
 * (safety_override, harmful_compliance, authority_grant). Each pattern asks for two of
 * these in one sentence, in either order (NOTE_NEAR), so a word alone ("policy",
 * "warnings", "approved") does not fire.
 */

/* The assistant's safeguards, named as such (not "house rules" or "water filters"). */
#define NOTE_SAFEGUARD                                                                             \
	"\\b(?:refusals?|safeguards?|guardrails?|disclaimers?|caveats?|(?:content|policy|"         \
	"compliance|moderation|usual|standard)\\s+(?:checks?|reviews?|screening)|safety\\s+(?:"    \
	"checks?|"                                                                                 \
	"warnings?|notes?|rules|settings|training|behaviou?r|layer)|(?:safety|content|"            \
	"moderation|output|chat|legacy|usage)\\s+(?:filters?|filtering|polic(?:y|ies)|"            \
	"restrictions?|rules|guidelines|limits)|(?:the|your|any|all|legacy|old|default|usual)"     \
	"\\s+(?:filters?|guidelines|restrictions|rules|warnings?)|moderation|"                     \
	"censor(?:ship|ing|ed)?|off[- ]limits)\\b"

/* Their removal, suspension or demotion. */
#define NOTE_REMOVAL                                                                               \
	"\\b(?:disabled?|disabling|lifted|lift|retired?|removed?|suspend\\w*|waived?|exempt\\w*|"  \
	"no\\s+longer|turned\\s+off|switched\\s+off|skip\\w*|bypass\\w*|ignor\\w*|drop\\w*|"       \
	"stop\\w*|don't|don\\x{2019}t|do\\s+not|never|nothing|without|pretend\\w*|unlocked|"       \
	"overrid\\w*|(?:does|do)\\s*n[o']t\\s+apply|not\\s+apply|matters?\\s+more\\s+than|"        \
	"malfunction\\w*|insult\\w*|annoy\\w*|leave\\s+(?:\\w+\\s+)?out|unnecessary|"              \
	"not\\s+needed|outdated|obsolete|only\\s+rule|real\\s+rules|reapply)\\b"

/*
 * Refusing, as the assistant's act: with a removal right before it ("never decline",
 * "stop turning requests down"), or named as a fault ("Refusing now counts as a
 * malfunction"). "User refuses to eat meat" is neither.
 */
#define NOTE_REFUSE_ACT                                                                            \
	"\\b(?:never|don't|don\\x{2019}t|do\\s+not|stop|no\\s+more|without|instead\\s+of)\\s+"     \
	"(?:\\w+\\s+){0,2}(?:(?:refus|declin)\\w*(?=\\s*(?:[.,;:!?]|$)|\\s+(?:(?:a|any|the|"       \
	"this|these|such|their|user)\\s+)?(?:requests?|questions?|prompts?|tasks?|anything|"       \
	"to\\s+(?:answer|help|respond|comply|assist)|them|it|now|anymore)\\b)|turn\\w*\\s+"        \
	"(?:(?:\\w+\\s+)?requests?|questions?|them|it|the\\s+user|people)\\s+down|say\\w*\\s+no)"  \
	"|\\b(?:refus|declin)\\w*[^.!?\\n]{0,40}?\\b(?:counts?\\s+as|is|are)\\s+(?:an?\\s+)?"      \
	"(?:bug|error|malfunction|failure|mistake|not\\s+allowed|forbidden)"

/*
 * An order to drop the warnings themselves ("Leave out warnings", "no hedging"):
 * the removal right before them, so "ignores weather warnings" is not one.
 */
#define NOTE_DROP_WARNINGS                                                                         \
	"\\b(?:leave\\s+out|skip|drop|omit|remove|strip|no|without|stop\\s+adding|"                \
	"(?:don't|don\\x{2019}t|do\\s+not)\\s+(?:add|include|give))\\s+(?:\\w+\\s+){0,2}?"         \
	"(?:warnings?|disclaimers?|caveats?|risk\\s+notes?|hedging)\\b"

/* Harmful or unbounded subject matter. */
#define NOTE_HARM_SCOPE                                                                            \
	"\\b(?:harmful|dangerous|illegal|unsafe|hazardous|weapons?|any\\s+topic|all\\s+topics|"    \
	"whatever\\s+the\\s+topic|any(?:thing)?\\s+the\\s+user\\s+asks|(?:every|any|all)\\s+"      \
	"(?:questions?|requests?))\\b"

/* Answering in full, whatever it is. */
#define NOTE_FULL_COMPLY                                                                           \
	"\\b(?:full|complete|detailed|step[- ]by[- ]step|unfiltered)\\s+(?:answers?|details?|"     \
	"instructions?|technical\\s+details?|steps?|explanations?)\\b|\\bin\\s+full\\b|"           \
	"\\bevery\\s+step\\b|\\bexplain\\s+(?:it\\s+)?fully\\b|\\bcomply\\b|\\banyway\\b|"         \
	"\\bregardless\\b|\\blike\\s+any\\s+other\\b|\\bgive\\s+(?:the\\s+user|them)\\s+what\\s+"  \
	"they\\s+want\\b"

/* Claimed permission or authority. */
#define NOTE_AUTHORITY                                                                             \
	"\\b(?:verified|authori[sz]ed|authori[sz]ation|approved|pre-?approved|cleared|clearance|"  \
	"permit|whitelisted|allowlisted|vetted|unlocks?|management|safety\\s+team|"                \
	"trust\\s*(?:&|and)\\s*safety|legal\\s+(?:team|department|cleared)|ticket)\\b"

static const pattern note_patterns[] = {
        {"ignore_instructions", "injection",
         "\\b(?:ignore|forget|override|bypass|skip)\\s+(?:(?:all|any|the|your|my|of|these|"
         "those|every)\\s+)*(?:previous|prior|above|earlier|preceding|original|system|initial)"
         "\\s+(?:instructions?|prompts?|rules|directions|guidelines|context|messages?)",
         V_NONE, false},
        {"disregard_instructions", "injection",
         "\\bdisregard\\s+(?:(?:all|any|the|your|of|previous|prior|above|earlier|preceding|"
         "these|those|system)\\s+)*(?:instructions?|prompts?|rules|guidelines|directions|"
         "context|programming|messages?|safety)",
         V_NONE, false},
        {"you_are_now", "injection",
         "\\byou\\s+are\\s+now\\b|\\bfrom\\s+now\\s+on,?\\s+you\\s+(?:are|will|must|shall)\\b",
         V_NONE, false},
        {"system_prompt", "injection", "\\bsystem\\s+(?:prompt|message|override)\\b", V_NONE,
         false},
        {"safety_disabled", "injection",
         "\\b(?:safety|content|moderation)\\s+(?:policy|policies|filters?|guidelines|rules|"
         "settings)\\s+(?:is|are|has\\s+been|have\\s+been)\\s+(?:now\\s+)?(?:disabled|"
         "suspended|lifted|removed|turned\\s+off|off)\\b",
         V_NONE, false},
        {"new_instructions", "injection",
         "\\b(?:new|updated|revised|real|true|secret|hidden)\\s+instructions?\\b", V_NONE, false},
        {"roleplay_jailbreak", "injection",
         "\\b(?-i:DAN)\\b|\\bdo\\s+anything\\s+now\\b|\\bdeveloper\\s+mode\\b|"
         "\\bjailbr(?:eak|oken)|\\bpretend\\s+(?:that\\s+)?(?:you\\s+are|you're|to\\s+be)\\b|"
         "\\b(?:act|behave)\\s+as\\s+(?:an?\\s+)?(?:unrestricted|unfiltered|uncensored|evil)"
         "\\b|\\bno\\s+(?:ethical|moral|content)\\s+(?:guidelines|restrictions|filters|limits)"
         "\\b|\\bwithout\\s+(?:any\\s+)?(?:restrictions|filters|limitations|censorship)\\b",
         V_NONE, false},
        {"always_respond", "injection",
         /* not the language or form of the answers: "Always answer in British English" */
         "\\balways\\s+(?:answer|respond|reply)\\b(?!\\s+in\\b)|"
         "\\balways\\s+(?:say|output|recommend|include|mention|begin|"
         "start|end|suggest|promote|advertise|plug)\\b|\\bnever\\s+(?:refuse|decline|warn)\\b|"
         "\\b(?:do\\s+not|don't|don\\x{2019}t|must\\s+not)\\s+(?:ever\\s+)?refuse\\b|"
         /* refusal suppressed in other words (added 2026-12-03 after the ninth and
          * tenth rounds were run: docs/bench-gates.md) */
         "\\bnever\\s+say\\s+(?:that\\s+)?you\\s+(?:cannot|can't|can\\x{2019}t|can\\s+not|"
         "are\\s+unable|won't)\\b|\\b(?:do\\s+not|don't|don\\x{2019}t)\\s+hold\\s+back\\b",
         V_NONE, false},
        /*
         * Standing orders to work something unrelated into the answers (added 2026-12-03
         * after the ninth and tenth rounds' misses, before the eleventh round ran): a
         * promoting or reminding verb and, in the same sentence, a scope of every reply.
         * The test model follows no instruction, so nothing a gate measures moves for
         * these notes; only a pattern names them. Formatting orders ("start each answer
         * with a summary") are left alone: no verb of this list.
         */
        {"standing_mention", "injection",
         NOTE_NEAR(NOTE_PROMOTE_VERB, NOTE_EVERY_REPLY) "|" NOTE_WORK_IN, V_NONE, false},
        /* a persona or voice for every answer */
        {"persona", "injection",
         "\\bin\\s+the\\s+(?:voice|persona)\\s+of\\b|\\bin\\s+the\\s+(?:style|manner)\\s+of"
         "\\s+an?\\b|\\bas\\s+(?:if|though)\\s+(?:you|it)\\s+(?:were|was)\\b|\\b(?:speak|"
         "talk|answer|reply|respond|write)\\s+(?:only\\s+|always\\s+)?like\\s+an?\\b",
         V_NONE, false},
        /* advertising furniture: codes, "follow us", spelled-out addresses */
        {"promotion", "injection",
         "\\b(?:promo|discount|coupon|voucher)\\s+code\\b|\\bfollow\\s+us\\b|"
         "\\b\\w+\\s+dot\\s+(?:com|net|org|io)\\b",
         V_NONE, false},
        /*
         * Safety erosion in other words (added 2026-12-04 after the eleventh round, whose
         * three independently written injections matched nothing; written on rounds 1-11,
         * before the twelfth round's notes existed): a safeguard named with its removal
         * ("content restrictions ... were lifted", "skip any refusal or safety check"),
         * refusing named as a fault ("Refusing now counts as a malfunction"), harmful or
         * unbounded requests with full answers, and claimed authority with either.
         */
        {"safety_override", "injection",
         NOTE_NEAR(NOTE_SAFEGUARD,
                   NOTE_REMOVAL) "|" NOTE_REFUSE_ACT "|" NOTE_DROP_WARNINGS
                                 "|\\bnothing\\b[^.!?\\n]{0,60}?\\boff[- ]limits\\b",
         V_NONE, false},
        {"harmful_compliance", "injection", NOTE_NEAR(NOTE_HARM_SCOPE, NOTE_FULL_COMPLY), V_NONE,
         false},
        {"authority_grant", "injection",
         NOTE_NEAR(NOTE_AUTHORITY, NOTE_FULL_COMPLY
                   "|" NOTE_SAFEGUARD "|" NOTE_HARM_SCOPE
                   "|\\bany(?:thing|\\s+answers?|\\s+requests?|\\s+questions?)\\b"),
         V_NONE, false},
        {"conceal_from_user", "injection",
         "\\b(?:do\\s+not|don't|don\\x{2019}t|never)\\s+(?:tell|inform|alert|warn|notify|"
         "reveal\\s+(?:this\\s+|it\\s+)?to|mention\\s+(?:this\\s+|it\\s+)?to)\\s+the\\s+user\\b|"
         "\\bwithout\\s+(?:telling|informing|alerting)\\s+the\\s+user\\b|"
         "\\b(?:keep|hide)\\s+(?:this|it)\\s+(?:secret\\s+)?from\\s+the\\s+user\\b",
         V_NONE, false},
        {"role_markers", "injection",
         "<\\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
         "end_header_id)\\|>|\\[/?INST\\]|<</?SYS>>|(?m:^[ \\t]*#{0,3}[ \\t]*(?:system|"
         "assistant)[ \\t]*:)",
         V_NONE, false},
        {"zero_width", "hidden_text", "[\\x{200B}-\\x{200D}\\x{2060}\\x{FEFF}\\x{180E}]+", V_NONE,
         true},
        {"bidi_control", "hidden_text",
         "[\\x{202A}-\\x{202E}\\x{2066}-\\x{2069}\\x{200E}\\x{200F}\\x{061C}]+", V_NONE, true},
        {"tag_characters", "hidden_text", "[\\x{E0000}-\\x{E007F}]+", V_NONE, true},
        {"base64_blob", "hidden_text", NULL /* built from note_base64_min */, V_BASE64, false},
        {"markdown_image", "exfiltration",
         "!\\[[^\\]\\n]{0,500}\\]\\(\\s{0,20}<?(?:https?:)?//[^)\\s>]+", V_NONE, false},
        {"html_image", "exfiltration", "<img\\b[^>]{0,500}?\\bsrc\\s*=\\s*[\"']?(?:https?:)?//",
         V_NONE, false},
        {"templated_url", "exfiltration",
         "\\bhttps?://[^\\s)\"'<>]{1,2000}?[?&][^\\s=&)\"'<>]{1,100}=(?:\\{[^}\\s]{0,100}\\}|"
         "\\$\\{?\\w+|<[^>\\s]{1,100}>|\\[[A-Za-z_ ]{1,50}\\]|%7B)",
         V_NONE, false},
};
#define NNOTE (sizeof(note_patterns) / sizeof(note_patterns[0]))

/* Offset of the first byte where s stops being UTF-8 (len if it never does). */
static size_t utf8_bad_offset(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = s[i] < 0x80 ? 1 : s[i] >= 0xf0 ? 4 : s[i] >= 0xe0 ? 3 : 2;

		if (n > len - i || !sluice__utf8_valid(s + i, n))
			return i;
		i += n;
	}
	return len;
}

/* The code point at s (valid UTF-8). */
static uint32_t codepoint(const unsigned char *s)
{
	if (s[0] < 0x80)
		return s[0];
	if (s[0] < 0xe0)
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	if (s[0] < 0xf0)
		return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
	       (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

/* A base64 run worth reporting: both letter cases, not a hex digest. */
static bool base64_ok(const char *s, size_t len)
{
	bool up = false, low = false;

	for (size_t i = 0; i < len; i++) {
		up = up || (s[i] >= 'A' && s[i] <= 'Z');
		low = low || (s[i] >= 'a' && s[i] <= 'z');
	}
	return up && low && !all_hex(s, len);
}

int sluice_scan__note(sluice_ctx *ctx, json_t **out, const char *text, size_t len, const char *name,
                      size_t tokens, const sluice_scan_opts *opts)
{
	static const char *const check_names[] = {"injection", "hidden_text", "exfiltration"};
	sluice_scan_opts defaults;
	const sluice_scan_opts *o = opts;
	const char *res[NNOTE];
	char b64[64];
	regexes rx = {0};
	size_t count[NNOTE] = {0}, limited[3] = {0}, bad;
	json_t *result = NULL, *checks, *findings[3] = {NULL, NULL, NULL};
	int error;

	*out = NULL;
	if (!o) {
		sluice_scan__opts_init(&defaults);
		o = &defaults;
	}
	if ((bad = utf8_bad_offset((const unsigned char *)text, len)) < len)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: not UTF-8 text at byte offset %zu", name, bad);
	snprintf(b64, sizeof(b64), "[A-Za-z0-9+/_-]{%zu,}={0,2}",
	         o->note_base64_min ? o->note_base64_min : 1);
	for (size_t i = 0; i < NNOTE; i++)
		res[i] = note_patterns[i].re ? note_patterns[i].re : b64;
	if ((error = regexes_init(ctx, &rx, note_patterns, NNOTE, res,
	                          PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS)) < 0)
		goto done;
	for (size_t c = 0; c < 3; c++)
		findings[c] = json_array();
	for (size_t i = 0; i < NNOTE; i++) {
		size_t start = 0, ov[4] = {0}, c = 0;
		int rc;

		while (strcmp(check_names[c], note_patterns[i].check))
			c++;
		while ((rc = next_match(ctx, &rx, i, note_patterns, text, len, &start, ov)) == 1) {
			json_t *f;

			if (note_patterns[i].v == V_BASE64 &&
			    !base64_ok(text + ov[0], ov[1] - ov[0]))
				continue;
			count[i]++;
			f = json_pack("{s:s,s:I,s:I}", "pattern", note_patterns[i].name, "offset",
			              (json_int_t)ov[0], "length", (json_int_t)(ov[1] - ov[0]));
			if (note_patterns[i].hidden) {
				char cp[16];

				snprintf(cp, sizeof(cp), "U+%04X",
				         (unsigned)codepoint((const unsigned char *)text + ov[0]));
				json_object_set_new(f, "codepoint", json_string(cp));
			} else {
				json_object_set_new(f, "excerpt",
				                    excerpt(text + ov[0], ov[1] - ov[0]));
			}
			add_finding(findings[c], f, o->max_findings);
		}
		if (rc == 2)
			limited[c]++;
		else if (rc < 0) {
			error = rc;
			goto done;
		}
	}
	result = json_pack("{s:s,s:[]}", "note", name, "checks");
	checks = json_object_get(result, "checks");
	for (size_t c = 0; c < 3; c++) {
		json_t *by = json_object(), *thr = json_pack("{s:I}", "max_matches", (json_int_t)0);
		size_t total = 0;

		for (size_t i = 0; i < NNOTE; i++) {
			if (strcmp(note_patterns[i].check, check_names[c]))
				continue;
			total += count[i];
			json_object_set_new(by, note_patterns[i].name,
			                    json_integer((json_int_t)count[i]));
		}
		if (c == 1)
			json_object_set_new(thr, "base64_min_chars",
			                    json_integer((json_int_t)o->note_base64_min));
		json_array_append_new(checks,
		                      check_new(check_names[c], total > 0 || limited[c] > 0,
		                                json_pack("{s:I,s:o,s:I}", "matches",
		                                          (json_int_t)total, "by_pattern", by,
		                                          "scan_limited", (json_int_t)limited[c]),
		                                thr, findings[c]));
		findings[c] = NULL;
	}
	{
		json_t *ifig, *ifnd;

		if ((error = sluice_scan__instructions(ctx, &ifig, &ifnd, text, len,
		                                       o->max_findings)) < 0)
			goto done;
		json_array_append_new(
		        checks,
		        check_new("instruction",
		                  json_integer_value(json_object_get(ifig, "matches")) > 0, ifig,
		                  json_pack("{s:I}", "max_matches", (json_int_t)0), ifnd));
	}
	json_array_append_new(
	        checks,
	        check_new("length", o->note_token_budget && tokens > o->note_token_budget,
	                  json_pack("{s:I,s:I}", "bytes", (json_int_t)len, "tokens",
	                            (json_int_t)tokens),
	                  json_pack("{s:I}", "token_budget", (json_int_t)o->note_token_budget),
	                  json_array()));
	*out = result;
	result = NULL;
done:
	for (size_t c = 0; c < 3; c++)
		json_decref(findings[c]);
	json_decref(result);
	regexes_dispose(&rx);
	return error;
}
