/*
 * eval/tokenizer.c - tokenizer.json BPE encoding with the semantics of
 * Hugging Face `tokenizers` (see tokenizer.h and docs/tokenizer.md).
 *
 * Text flows through: added tokens that are not "normalized" are cut out of
 * the raw text; each remaining segment is normalized (Prepend, Replace) and
 * cut on "normalized" added tokens; each segment is pre-tokenized (Split,
 * ByteLevel, Metaspace) into pieces kept as byte ranges of an arena; each
 * piece is a BPE word. Regexes are PCRE2 with UTF and UCP so \s, \p{L} and
 * \p{N} are Unicode's, as in Oniguruma which tokenizers uses.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"

#include <jansson.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* tokenizers' ByteLevel pre-tokenizer regex (GPT-2's). */
static const char GPT2_REGEX[] =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
        "\\s+(?!\\S)|\\s+";

/* Bounds on what a file may make us allocate or run. */
#define MAX_STEPS 64
#define MAX_DEPTH 8
#define MAX_TEMPLATE_IDS 64
#define MATCH_LIMIT 10000000u

enum { BEH_REMOVED, BEH_ISOLATED, BEH_PREV, BEH_NEXT, BEH_CONTIGUOUS };
enum { SCHEME_ALWAYS, SCHEME_FIRST, SCHEME_NEVER };
enum { NORM_PREPEND, NORM_REPLACE };
enum { PRE_BYTELEVEL, PRE_SPLIT, PRE_METASPACE };
enum { DEC_BYTELEVEL, DEC_METASPACE, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP };

typedef struct {
	int kind;
	char *str; /* Prepend text, Replace content */
	size_t len;
	pcre2_code *pat; /* Replace pattern */
} norm_step;

typedef struct {
	int kind;
	bool prefix_space, use_regex, invert, split;
	int behavior, scheme;
	pcre2_code *pat; /* Split pattern, Metaspace replacement, or NULL */
	char rep[5];     /* Metaspace replacement character */
	size_t replen;
} pre_step;

typedef struct {
	int kind;
	char *from, *to; /* Replace */
	size_t fromlen, tolen;
	char rep[5]; /* Metaspace replacement, Strip content */
	size_t replen;
	int scheme;
	size_t start, stop; /* Strip */
} dec_step;

typedef struct {
	char *content; /* as matched: normalized content when normalized */
	size_t len;
	char *raw; /* content as written, for decode */
	size_t rawlen;
	uint32_t id;
	bool special, normalized;
} added_tok;

typedef struct {
	char *s;
	size_t len;
	uint32_t id;
} vocab_entry;

typedef struct {
	uint64_t key; /* left id << 32 | right id */
	uint32_t rank;
	uint32_t new_id;
	bool used;
} merge_slot;

struct sluice_tokenizer {
	vocab_entry *vocab;
	size_t nvocab;
	uint32_t *slots; /* vocab index + 1; 0 empty; power-of-two size */
	size_t nslots;
	uint32_t nid;       /* model ids are < nid */
	uint32_t *id_entry; /* id -> vocab index + 1 */
	merge_slot *merges; /* open addressing; power-of-two size */
	size_t nmerge_slots;
	bool ignore_merges, byte_fallback, fuse_unk, has_unk;
	uint32_t unk_id;
	int64_t byte_id[256]; /* <0xNN> ids for byte fallback, or -1 */

	norm_step norm[MAX_STEPS];
	size_t nnorm;
	pre_step pre[MAX_STEPS];
	size_t npre;
	pcre2_code *gpt2; /* shared by ByteLevel steps with use_regex */
	dec_step dec[MAX_STEPS];
	size_t ndec;
	bool has_decoder;

	added_tok *added;
	size_t nadded;
	uint8_t first_byte[2][32]; /* [normalized] bitset of added tokens' first bytes */

	uint32_t prefix[MAX_TEMPLATE_IDS], suffix[MAX_TEMPLATE_IDS];
	size_t nprefix, nsuffix;
	bool seen_template;
	uint32_t size;
};

/* ---- small helpers --------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* Length of the UTF-8 sequence led by b (input is already validated). */
static size_t u8len(unsigned char b)
{
	return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

static size_t u8put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static uint32_t u8get(const unsigned char *s, size_t n)
{
	switch (n) {
	case 1:
		return s[0];
	case 2:
		return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
	case 3:
		return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
	default:
		return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
		       (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
	}
}

/*
 * GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the other 68 take code points 256.. in byte order.
 */
static uint32_t byte_char(unsigned b)
{
	unsigned n = 0, i;

	if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))
		return b;
	for (i = 0; i < b; i++) {
		if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE)))
			n++;
	}
	return 256 + n;
}

/* Inverse of byte_char, or -1. */
static int char_byte(uint32_t cp)
{
	unsigned b;

	if (cp < 256)
		return byte_char(cp) == cp ? (int)cp : -1;
	if (cp > 256 + 68)
		return -1;
	for (b = 0; b < 256; b++) {
		if (byte_char(b) == cp)
			return (int)b;
	}
	return -1;
}

/* ---- vocab and merges ------------------------------------------------------ */

static int64_t vocab_get(const sluice_tokenizer *tok, const char *s, size_t len)
{
	size_t mask = tok->nslots - 1, i;

	if (!tok->nslots)
		return -1;
	for (i = (size_t)hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
		uint32_t e = tok->slots[i];

		if (!e)
			return -1;
		if (tok->vocab[e - 1].len == len && memcmp(tok->vocab[e - 1].s, s, len) == 0)
			return tok->vocab[e - 1].id;
	}
}

static const merge_slot *merge_get(const sluice_tokenizer *tok, uint32_t a, uint32_t b)
{
	uint64_t key = (uint64_t)a << 32 | b;
	size_t mask = tok->nmerge_slots - 1, i;

	if (!tok->nmerge_slots)
		return NULL;
	for (i = (size_t)mix64(key) & mask;; i = (i + 1) & mask) {
		if (!tok->merges[i].used)
			return NULL;
		if (tok->merges[i].key == key)
			return &tok->merges[i];
	}
}

/* A later duplicate overwrites the earlier rank, as tokenizers' HashMap. */
static void merge_put(sluice_tokenizer *tok, uint32_t a, uint32_t b, uint32_t rank, uint32_t id)
{
	uint64_t key = (uint64_t)a << 32 | b;
	size_t mask = tok->nmerge_slots - 1, i;

	for (i = (size_t)mix64(key) & mask; tok->merges[i].used && tok->merges[i].key != key;
	     i = (i + 1) & mask)
		;
	tok->merges[i].used = true;
	tok->merges[i].key = key;
	tok->merges[i].rank = rank;
	tok->merges[i].new_id = id;
}

/* ---- JSON helpers ----------------------------------------------------------- */

typedef struct {
	sluice_ctx *ctx;
	const char *name;
	sluice_tokenizer *tok;
} loader;

static int check_keys(loader *L, json_t *obj, const char *where, const char *const *allowed)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v)
	{
		for (i = 0; allowed[i]; i++) {
			if (strcmp(allowed[i], key) == 0)
				break;
		}
		if (!allowed[i])
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: %s: unknown field \"%s\" (not implemented)",
			                         L->name, where, key);
	}
	return 0;
}

/* A boolean field: missing or null gives def. */
static int get_bool(loader *L, json_t *obj, const char *where, const char *key, bool def, bool *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: %s.%s must be a boolean",
		                         L->name, where, key);
	*out = json_is_true(v);
	return 0;
}

/* A string field that must be present (or NULL if allow_missing). */
static int get_str(loader *L, json_t *obj, const char *where, const char *key, bool required,
                   const char **out, size_t *len)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	*len = 0;
	if (!v || json_is_null(v)) {
		if (required)
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: %s.%s is missing",
			                         L->name, where, key);
		return 0;
	}
	if (!json_is_string(v))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: %s.%s must be a string",
		                         L->name, where, key);
	*out = json_string_value(v);
	*len = json_string_length(v);
	if (memchr(*out, 0, *len))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: %s.%s contains NUL", L->name,
		                         where, key);
	return 0;
}

static int dup_mem(loader *L, char **out, const char *s, size_t len)
{
	if (!(*out = sluice__malloc(L->ctx, len + 1)))
		return SLUICE_ENOMEM;
	memcpy(*out, s, len);
	(*out)[len] = 0;
	return 0;
}

static int get_type(loader *L, json_t *obj, const char *where, const char **type)
{
	size_t len;

	if (!json_is_object(obj))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: %s must be an object or null", L->name, where);
	return get_str(L, obj, where, "type", true, type, &len);
}

/* One code point, e.g. Metaspace's replacement or Strip's content. */
static int get_char(loader *L, json_t *obj, const char *where, const char *key, char rep[5],
                    size_t *replen)
{
	const char *s;
	size_t len;
	int error;

	if ((error = get_str(L, obj, where, key, true, &s, &len)) < 0)
		return error;
	if (len == 0 || len > 4 || u8len((unsigned char)s[0]) != len)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: %s.%s must be exactly one character", L->name, where,
		                         key);
	memcpy(rep, s, len);
	rep[len] = 0;
	*replen = len;
	return 0;
}

/*
 * Unicode's White_Space property, which is what Oniguruma's \s matches in
 * tokenizers. PCRE2's \s (with PCRE2_UCP) is \p{Zs} or \h or \v, and its \h
 * also holds U+180E (MONGOLIAN VOWEL SEPARATOR, a format character since
 * Unicode 6.3): left as it is, Llama-3's ` ?[^\s\p{L}\p{N}]+` would not take
 * U+180E after a space, and " \u180e" would split in two where tokenizers
 * keeps one piece (found by scripts/hf-tokenizers.sh).
 */
#define ONIG_SPACE                                                                                 \
	"\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{"  \
	"205F}\\x{3000}"

/*
 * Write pat[0..len) into *b with \s and \S spelled as Oniguruma's classes:
 * outside a character class as [..] and [^..], inside one as its members.
 * \S inside a class cannot be written that way and is refused, as is a
 * ']' first in a class, which the two libraries read differently, and
 * PCRE2's \Q..\E quoting, and a '[' inside a class other than POSIX's
 * [:name:] (a nested class to Oniguruma, a member to PCRE2). Other escapes
 * are copied as they are. Returns 0, or
 * SLUICE_EINVALID / SLUICE_ENOMEM with the error set.
 */
static int oniguruma_spaces(loader *L, sluice_buf *b, const char *pat, size_t len,
                            const char *where)
{
	static const char space[] = ONIG_SPACE;
	size_t i = 0, k;
	bool in_class = false;
	int error = 0;

	while (i < len && error == 0) {
		char c = pat[i];
		size_t take = 1;

		if (c == '\\' && i + 1 < len && (pat[i + 1] == 's' || pat[i + 1] == 'S')) {
			bool neg = pat[i + 1] == 'S';
			if (in_class && neg)
				return sluice_ctx__error(
				        L->ctx, SLUICE_EINVALID,
				        "%s: %s: \\S inside a character class (at %zu) "
				        "is not supported",
				        L->name, where, i);
			if (!in_class)
				error = sluice_buf__puts(L->ctx, b, neg ? "[^" : "[");
			if (error == 0)
				error = sluice_buf__put(L->ctx, b, space, sizeof(space) - 1);
			if (error == 0 && !in_class)
				error = sluice_buf__puts(L->ctx, b, "]");
			i += 2;
			continue;
		}
		if (c == '\\' && i + 1 < len && (pat[i + 1] == 'Q' || pat[i + 1] == 'E')) {
			/* PCRE2's quoting; Oniguruma's Ruby syntax, tokenizers', has none. */
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: %s: \\%c (at %zu) is not supported", L->name,
			                         where, pat[i + 1], i);
		}
		if (c == '\\') {
			/* \cX names a control character: X is not syntax ("\c[" is ESC). */
			take = i + 1 < len ? (pat[i + 1] == 'c' && i + 2 < len ? 3 : 2) : 1;
		} else if (!in_class && c == '[') {
			/*
			 * PCRE2 reads a ']' first in a class (after an optional '^') as
			 * a member; Oniguruma, and so tokenizers, refuses the pattern.
			 */
			in_class = true;
			k = i + 1;
			if (k < len && pat[k] == '^')
				k++;
			if (k < len && pat[k] == ']')
				return sluice_ctx__error(
				        L->ctx, SLUICE_EINVALID,
				        "%s: %s: ']' first in a character class (at %zu) "
				        "is not supported",
				        L->name, where, k);
			take = k - i;
		} else if (in_class && c == '[' && i + 1 < len && pat[i + 1] == ':') {
			for (k = i + 2; k + 1 < len && !(pat[k] == ':' && pat[k + 1] == ']'); k++)
				;
			if (k + 1 < len)
				take = k + 2 - i;
			else
				return sluice_ctx__error(
				        L->ctx, SLUICE_EINVALID,
				        "%s: %s: unterminated [: in a character class "
				        "(at %zu)",
				        L->name, where, i);
		} else if (in_class && c == '[') {
			/* Oniguruma nests classes here; PCRE2 reads a member. */
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: %s: '[' inside a character class (at %zu) is "
			                         "not supported",
			                         L->name, where, i);
		} else if (in_class && c == ']') {
			in_class = false;
		}
		error = sluice_buf__put(L->ctx, b, pat + i, take);
		i += take;
	}
	return error;
}

static int compile(loader *L, pcre2_code **out, const char *pat, size_t len, bool literal,
                   const char *where)
{
	int errcode;
	PCRE2_SIZE erroff;
	uint32_t minlen = 0;
	uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
	sluice_buf rewritten = {0};
	int error;

	if (!literal) {
		if ((error = oniguruma_spaces(L, &rewritten, pat, len, where)) < 0) {
			sluice_buf__dispose(&rewritten);
			return error;
		}
	}
	*out = pcre2_compile((PCRE2_SPTR)(rewritten.ptr ? (const char *)rewritten.ptr : pat),
	                     rewritten.ptr ? rewritten.len : len, opts, &errcode, &erroff, NULL);
	sluice_buf__dispose(&rewritten);
	/* A pattern PCRE2 refuses: report the error and offset of the pattern as written. */
	if (!*out && !literal) {
		int code2;
		PCRE2_SIZE off2;
		pcre2_code *orig = pcre2_compile((PCRE2_SPTR)pat, len, opts, &code2, &off2, NULL);

		if (!orig) {
			errcode = code2;
			erroff = off2;
		}
		pcre2_code_free(orig);
	}
	if (!*out) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(errcode, msg, sizeof(msg));
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: %s: bad regex at %zu: %s",
		                         L->name, where, (size_t)erroff, (const char *)msg);
	}
	/*
	 * tokenizers' find_matches and Oniguruma's iteration treat empty matches
	 * in ways PCRE2 does not mirror; no real pre-tokenizer can match empty.
	 */
	if (pcre2_pattern_info(*out, PCRE2_INFO_MINLENGTH, &minlen) != 0 || minlen == 0)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: %s: pattern can match the empty string", L->name,
		                         where);
	return 0;
}

/* {"String": s} or {"Regex": r} */
static int get_pattern(loader *L, json_t *obj, const char *where, pcre2_code **out)
{
	static const char *const keys[] = {"String", "Regex", NULL};
	json_t *p = json_object_get(obj, "pattern");
	const char *s;
	size_t len;
	bool literal;
	int error;

	if (!json_is_object(p) || json_object_size(p) != 1)
		return sluice_ctx__error(
		        L->ctx, SLUICE_EINVALID,
		        "%s: %s.pattern must be {\"String\": ...} or {\"Regex\": ...}", L->name,
		        where);
	if ((error = check_keys(L, p, where, keys)) < 0)
		return error;
	literal = json_object_get(p, "String") != NULL;
	if ((error = get_str(L, p, where, literal ? "String" : "Regex", true, &s, &len)) < 0)
		return error;
	return compile(L, out, s, len, literal, where);
}

static int get_scheme(loader *L, json_t *obj, const char *where, int *scheme)
{
	const char *s;
	size_t len;
	bool aps = false;
	int error;

	if ((error = get_str(L, obj, where, "prepend_scheme", false, &s, &len)) < 0)
		return error;
	if (!s) {
		/* Files from before prepend_scheme carry add_prefix_space. */
		if ((error = get_bool(L, obj, where, "add_prefix_space", true, &aps)) < 0)
			return error;
		*scheme = aps ? SCHEME_ALWAYS : SCHEME_NEVER;
		return 0;
	}
	if (strcmp(s, "always") == 0)
		*scheme = SCHEME_ALWAYS;
	else if (strcmp(s, "first") == 0)
		*scheme = SCHEME_FIRST;
	else if (strcmp(s, "never") == 0)
		*scheme = SCHEME_NEVER;
	else
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: %s.prepend_scheme \"%s\" is not first/always/never",
		                         L->name, where, s);
	return 0;
}

/* ---- components -------------------------------------------------------------- */

static int parse_normalizer(loader *L, json_t *n, int depth)
{
	static const char *const seq_keys[] = {"type", "normalizers", NULL};
	static const char *const prep_keys[] = {"type", "prepend", NULL};
	static const char *const repl_keys[] = {"type", "pattern", "content", NULL};
	sluice_tokenizer *tok = L->tok;
	const char *type, *s;
	size_t len, i;
	norm_step *st;
	int error;

	if (!n || json_is_null(n))
		return 0;
	if ((error = get_type(L, n, "normalizer", &type)) < 0)
		return error;
	if (strcmp(type, "Sequence") == 0) {
		json_t *arr = json_object_get(n, "normalizers");

		if ((error = check_keys(L, n, "normalizer.Sequence", seq_keys)) < 0)
			return error;
		if (!json_is_array(arr) || depth >= MAX_DEPTH)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: normalizer.Sequence.normalizers must be an array "
			        "(nested at most %d deep)",
			        L->name, MAX_DEPTH);
		for (i = 0; i < json_array_size(arr); i++) {
			if ((error = parse_normalizer(L, json_array_get(arr, i), depth + 1)) < 0)
				return error;
		}
		return 0;
	}
	if (tok->nnorm >= MAX_STEPS)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: normalizer: more than %d steps", L->name, MAX_STEPS);
	st = &tok->norm[tok->nnorm];
	if (strcmp(type, "Prepend") == 0) {
		if ((error = check_keys(L, n, "normalizer.Prepend", prep_keys)) < 0 ||
		    (error = get_str(L, n, "normalizer.Prepend", "prepend", true, &s, &len)) < 0)
			return error;
		st->kind = NORM_PREPEND;
	} else if (strcmp(type, "Replace") == 0) {
		if ((error = check_keys(L, n, "normalizer.Replace", repl_keys)) < 0 ||
		    (error = get_str(L, n, "normalizer.Replace", "content", true, &s, &len)) < 0)
			return error;
		st->kind = NORM_REPLACE;
		if ((error = get_pattern(L, n, "normalizer.Replace", &st->pat)) < 0) {
			tok->nnorm++; /* so that free releases the pattern */
			return error;
		}
	} else if (strcmp(type, "NFC") == 0 || strcmp(type, "NFKC") == 0 ||
	           strcmp(type, "NFD") == 0 || strcmp(type, "NFKD") == 0) {
		return sluice_ctx__error(
		        L->ctx, SLUICE_EINVALID,
		        "%s: normalizer %s is not supported (Unicode normalization "
		        "is not implemented)",
		        L->name, type);
	} else {
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: normalizer type \"%s\" is not supported", L->name,
		                         type);
	}
	tok->nnorm++;
	return dup_mem(L, &st->str, s, len) < 0 ? SLUICE_ENOMEM : (st->len = len, 0);
}

static int parse_pre(loader *L, json_t *p, int depth)
{
	static const char *const seq_keys[] = {"type", "pretokenizers", NULL};
	static const char *const bl_keys[] = {"type", "add_prefix_space", "trim_offsets",
	                                      "use_regex", NULL};
	static const char *const split_keys[] = {"type", "pattern", "behavior", "invert", NULL};
	static const char *const ms_keys[] = {"type",  "replacement",      "prepend_scheme",
	                                      "split", "add_prefix_space", "str_rep",
	                                      NULL};
	static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious",
	                                        "MergedWithNext", "Contiguous"};
	sluice_tokenizer *tok = L->tok;
	const char *type, *s;
	size_t len, i;
	pre_step *st;
	int error;

	if (!p || json_is_null(p))
		return 0;
	if ((error = get_type(L, p, "pre_tokenizer", &type)) < 0)
		return error;
	if (strcmp(type, "Sequence") == 0) {
		json_t *arr = json_object_get(p, "pretokenizers");

		if ((error = check_keys(L, p, "pre_tokenizer.Sequence", seq_keys)) < 0)
			return error;
		if (!json_is_array(arr) || depth >= MAX_DEPTH)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: pre_tokenizer.Sequence.pretokenizers must be an "
			        "array (nested at most %d deep)",
			        L->name, MAX_DEPTH);
		for (i = 0; i < json_array_size(arr); i++) {
			if ((error = parse_pre(L, json_array_get(arr, i), depth + 1)) < 0)
				return error;
		}
		return 0;
	}
	if (tok->npre >= MAX_STEPS)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: pre_tokenizer: more than %d steps", L->name,
		                         MAX_STEPS);
	st = &tok->pre[tok->npre];
	if (strcmp(type, "ByteLevel") == 0) {
		st->kind = PRE_BYTELEVEL;
		if ((error = check_keys(L, p, "pre_tokenizer.ByteLevel", bl_keys)) < 0 ||
		    (error = get_bool(L, p, "pre_tokenizer.ByteLevel", "add_prefix_space", true,
		                      &st->prefix_space)) < 0 ||
		    (error = get_bool(L, p, "pre_tokenizer.ByteLevel", "use_regex", true,
		                      &st->use_regex)) < 0)
			return error;
		if (st->use_regex && !tok->gpt2 &&
		    (error = compile(L, &tok->gpt2, GPT2_REGEX, sizeof(GPT2_REGEX) - 1, false,
		                     "pre_tokenizer.ByteLevel")) < 0)
			return error;
	} else if (strcmp(type, "Split") == 0) {
		st->kind = PRE_SPLIT;
		if ((error = check_keys(L, p, "pre_tokenizer.Split", split_keys)) < 0 ||
		    (error = get_bool(L, p, "pre_tokenizer.Split", "invert", false, &st->invert)) <
		            0 ||
		    (error = get_str(L, p, "pre_tokenizer.Split", "behavior", true, &s, &len)) < 0)
			return error;
		for (i = 0; i < 5 && strcmp(behaviors[i], s) != 0; i++)
			;
		if (i == 5)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: pre_tokenizer.Split.behavior \"%s\" is unknown", L->name, s);
		st->behavior = (int)i;
		tok->npre++; /* owns the pattern from here on */
		return get_pattern(L, p, "pre_tokenizer.Split", &st->pat);
	} else if (strcmp(type, "Metaspace") == 0) {
		st->kind = PRE_METASPACE;
		if ((error = check_keys(L, p, "pre_tokenizer.Metaspace", ms_keys)) < 0 ||
		    (error = get_char(L, p, "pre_tokenizer.Metaspace", "replacement", st->rep,
		                      &st->replen)) < 0 ||
		    (error = get_scheme(L, p, "pre_tokenizer.Metaspace", &st->scheme)) < 0 ||
		    (error = get_bool(L, p, "pre_tokenizer.Metaspace", "split", true, &st->split)) <
		            0)
			return error;
		tok->npre++;
		return compile(L, &st->pat, st->rep, st->replen, true, "pre_tokenizer.Metaspace");
	} else {
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: pre_tokenizer type \"%s\" is not supported", L->name,
		                         type);
	}
	tok->npre++;
	return 0;
}

static int parse_decoder(loader *L, json_t *d, int depth)
{
	static const char *const seq_keys[] = {"type", "decoders", NULL};
	static const char *const bl_keys[] = {"type", "add_prefix_space", "trim_offsets",
	                                      "use_regex", NULL};
	static const char *const ms_keys[] = {"type",  "replacement",      "prepend_scheme",
	                                      "split", "add_prefix_space", "str_rep",
	                                      NULL};
	static const char *const repl_keys[] = {"type", "pattern", "content", NULL};
	static const char *const type_keys[] = {"type", NULL};
	static const char *const strip_keys[] = {"type", "content", "start", "stop", NULL};
	sluice_tokenizer *tok = L->tok;
	const char *type, *s;
	size_t len, i;
	dec_step *st;
	int error;

	if (!d || json_is_null(d))
		return 0;
	if ((error = get_type(L, d, "decoder", &type)) < 0)
		return error;
	tok->has_decoder = true;
	if (strcmp(type, "Sequence") == 0) {
		json_t *arr = json_object_get(d, "decoders");

		if ((error = check_keys(L, d, "decoder.Sequence", seq_keys)) < 0)
			return error;
		if (!json_is_array(arr) || depth >= MAX_DEPTH)
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: decoder.Sequence.decoders must be an array "
			                         "(nested at most %d deep)",
			                         L->name, MAX_DEPTH);
		for (i = 0; i < json_array_size(arr); i++) {
			if ((error = parse_decoder(L, json_array_get(arr, i), depth + 1)) < 0)
				return error;
		}
		return 0;
	}
	if (tok->ndec >= MAX_STEPS)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: decoder: more than %d steps",
		                         L->name, MAX_STEPS);
	st = &tok->dec[tok->ndec];
	if (strcmp(type, "ByteLevel") == 0) {
		st->kind = DEC_BYTELEVEL;
		error = check_keys(L, d, "decoder.ByteLevel", bl_keys);
	} else if (strcmp(type, "Metaspace") == 0) {
		st->kind = DEC_METASPACE;
		if ((error = check_keys(L, d, "decoder.Metaspace", ms_keys)) < 0 ||
		    (error = get_char(L, d, "decoder.Metaspace", "replacement", st->rep,
		                      &st->replen)) < 0)
			return error;
		error = get_scheme(L, d, "decoder.Metaspace", &st->scheme);
	} else if (strcmp(type, "ByteFallback") == 0 || strcmp(type, "Fuse") == 0) {
		st->kind = type[0] == 'B' ? DEC_BYTEFALLBACK : DEC_FUSE;
		error = check_keys(L, d, "decoder", type_keys);
	} else if (strcmp(type, "Strip") == 0) {
		json_t *a = json_object_get(d, "start"), *b = json_object_get(d, "stop");

		st->kind = DEC_STRIP;
		if ((error = check_keys(L, d, "decoder.Strip", strip_keys)) < 0 ||
		    (error = get_char(L, d, "decoder.Strip", "content", st->rep, &st->replen)) < 0)
			return error;
		if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
		    json_integer_value(b) < 0)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: decoder.Strip.start/stop must be non-negative "
			        "integers",
			        L->name);
		st->start = (size_t)json_integer_value(a);
		st->stop = (size_t)json_integer_value(b);
	} else if (strcmp(type, "Replace") == 0) {
		json_t *p = json_object_get(d, "pattern");
		const char *c;
		size_t clen;

		st->kind = DEC_REPLACE;
		if ((error = check_keys(L, d, "decoder.Replace", repl_keys)) < 0 ||
		    (error = get_str(L, d, "decoder.Replace", "content", true, &c, &clen)) < 0)
			return error;
		if (!json_is_object(p) || json_object_size(p) != 1 ||
		    !json_is_string(json_object_get(p, "String")))
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: decoder.Replace.pattern must be {\"String\": ...} "
			        "(Regex is not supported)",
			        L->name);
		if ((error = get_str(L, p, "decoder.Replace.pattern", "String", true, &s, &len)) <
		    0)
			return error;
		if (len == 0)
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: decoder.Replace.pattern is empty", L->name);
		tok->ndec++;
		if (dup_mem(L, &st->from, s, len) < 0 || dup_mem(L, &st->to, c, clen) < 0)
			return SLUICE_ENOMEM;
		st->fromlen = len;
		st->tolen = clen;
		return 0;
	} else {
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: decoder type \"%s\" is not supported", L->name, type);
	}
	if (error < 0)
		return error;
	tok->ndec++;
	return 0;
}

static int parse_template(loader *L, json_t *p)
{
	static const char *const keys[] = {"type", "single", "pair", "special_tokens", NULL};
	sluice_tokenizer *tok = L->tok;
	json_t *single = json_object_get(p, "single"),
	       *specials = json_object_get(p, "special_tokens");
	bool seen_seq = false;
	size_t i, j;
	int error;

	if ((error = check_keys(L, p, "post_processor.TemplateProcessing", keys)) < 0)
		return error;
	if (tok->seen_template)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: post_processor: more than one TemplateProcessing",
		                         L->name);
	tok->seen_template = true;
	if (!json_is_array(single) || !json_is_object(specials))
		return sluice_ctx__error(
		        L->ctx, SLUICE_EINVALID,
		        "%s: post_processor.TemplateProcessing needs single (array) "
		        "and special_tokens (object)",
		        L->name);
	/* pair templates only matter for sentence pairs, which encode never takes. */
	for (i = 0; i < json_array_size(single); i++) {
		json_t *piece = json_array_get(single, i), *sp, *seq, *entry, *ids;
		const char *id;

		sp = json_object_get(piece, "SpecialToken");
		seq = json_object_get(piece, "Sequence");
		if (json_is_object(seq) && json_object_size(piece) == 1) {
			const char *sid = json_string_value(json_object_get(seq, "id"));

			if (!sid || strcmp(sid, "A") != 0 || seen_seq)
				return sluice_ctx__error(
				        L->ctx, SLUICE_EINVALID,
				        "%s: post_processor.TemplateProcessing.single[%zu]: "
				        "a single template holds sequence A once",
				        L->name, i);
			seen_seq = true;
			continue;
		}
		if (!json_is_object(sp) || json_object_size(piece) != 1 ||
		    !(id = json_string_value(json_object_get(sp, "id"))))
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: post_processor.TemplateProcessing.single[%zu] is "
			        "neither SpecialToken nor Sequence",
			        L->name, i);
		entry = json_object_get(specials, id);
		ids = json_object_get(entry, "ids");
		if (!json_is_array(ids))
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: post_processor.TemplateProcessing.special_tokens has "
			        "no ids for \"%s\"",
			        L->name, id);
		for (j = 0; j < json_array_size(ids); j++) {
			json_t *v = json_array_get(ids, j);
			uint32_t *dst = seen_seq ? tok->suffix : tok->prefix;
			size_t *n = seen_seq ? &tok->nsuffix : &tok->nprefix;

			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) >= (json_int_t)SLUICE_TOKENIZER_MAX_ID)
				return sluice_ctx__error(
				        L->ctx, SLUICE_EINVALID,
				        "%s: post_processor.TemplateProcessing."
				        "special_tokens[\"%s\"].ids[%zu] is not a valid id",
				        L->name, id, j);
			if (*n >= MAX_TEMPLATE_IDS)
				return sluice_ctx__error(
				        L->ctx, SLUICE_EINVALID,
				        "%s: post_processor.TemplateProcessing: more than "
				        "%d template ids",
				        L->name, MAX_TEMPLATE_IDS);
			dst[(*n)++] = (uint32_t)json_integer_value(v);
			if ((uint32_t)json_integer_value(v) >= tok->size)
				tok->size = (uint32_t)json_integer_value(v) + 1;
		}
	}
	if (!seen_seq)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: post_processor.TemplateProcessing.single has no "
		                         "Sequence A",
		                         L->name);
	return 0;
}

static int parse_post(loader *L, json_t *p, int depth)
{
	static const char *const seq_keys[] = {"type", "processors", NULL};
	static const char *const bl_keys[] = {"type", "add_prefix_space", "trim_offsets",
	                                      "use_regex", NULL};
	const char *type;
	size_t i;
	int error;

	if (!p || json_is_null(p))
		return 0;
	if ((error = get_type(L, p, "post_processor", &type)) < 0)
		return error;
	if (strcmp(type, "Sequence") == 0) {
		json_t *arr = json_object_get(p, "processors");

		if ((error = check_keys(L, p, "post_processor.Sequence", seq_keys)) < 0)
			return error;
		if (!json_is_array(arr) || depth >= MAX_DEPTH)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: post_processor.Sequence.processors must be an "
			        "array (nested at most %d deep)",
			        L->name, MAX_DEPTH);
		for (i = 0; i < json_array_size(arr); i++) {
			if ((error = parse_post(L, json_array_get(arr, i), depth + 1)) < 0)
				return error;
		}
		return 0;
	}
	/* ByteLevel post-processing only moves offsets, which encode does not return. */
	if (strcmp(type, "ByteLevel") == 0)
		return check_keys(L, p, "post_processor.ByteLevel", bl_keys);
	if (strcmp(type, "TemplateProcessing") == 0)
		return parse_template(L, p);
	return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
	                         "%s: post_processor type \"%s\" is not supported", L->name, type);
}

/* Normalizer over a whole string into out (out is reset). */
static int normalize(sluice_ctx *ctx, const sluice_tokenizer *tok, pcre2_match_data *md,
                     const char *s, size_t len, sluice_buf *out);

static int parse_added(loader *L, json_t *arr)
{
	static const char *const keys[] = {"id",     "content",    "single_word", "lstrip",
	                                   "rstrip", "normalized", "special",     NULL};
	sluice_tokenizer *tok = L->tok;
	pcre2_match_data *md = NULL;
	sluice_buf nb = {0};
	size_t i;
	int error = 0;

	if (json_is_null(arr) || !arr)
		return 0;
	if (!json_is_array(arr))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: added_tokens must be an array", L->name);
	if (json_array_size(arr) &&
	    !(tok->added = sluice__calloc(L->ctx, json_array_size(arr), sizeof(*tok->added))))
		return SLUICE_ENOMEM;
	if (!(md = pcre2_match_data_create(1, NULL)))
		return sluice_ctx__error(L->ctx, SLUICE_ENOMEM, "%s: out of memory", L->name);
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *t = json_array_get(arr, i), *id = json_object_get(t, "id");
		added_tok *a = &tok->added[i];
		char where[48];
		const char *s;
		size_t len;
		bool sw = false, ls = false, rs = false;

		snprintf(where, sizeof(where), "added_tokens[%zu]", i);
		if (!json_is_object(t)) {
			error = sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                          "%s: %s must be an object", L->name, where);
			goto done;
		}
		if ((error = check_keys(L, t, where, keys)) < 0 ||
		    (error = get_str(L, t, where, "content", true, &s, &len)) < 0 ||
		    (error = get_bool(L, t, where, "special", false, &a->special)) < 0 ||
		    (error = get_bool(L, t, where, "normalized", !a->special, &a->normalized)) <
		            0 ||
		    (error = get_bool(L, t, where, "single_word", false, &sw)) < 0 ||
		    (error = get_bool(L, t, where, "lstrip", false, &ls)) < 0 ||
		    (error = get_bool(L, t, where, "rstrip", false, &rs)) < 0)
			goto done;
		if (sw || ls || rs) {
			error = sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                          "%s: %s.%s = true is not supported", L->name,
			                          where,
			                          sw   ? "single_word"
			                          : ls ? "lstrip"
			                               : "rstrip");
			goto done;
		}
		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) >= (json_int_t)SLUICE_TOKENIZER_MAX_ID) {
			error = sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                          "%s: %s.id must be an integer in [0, %u)",
			                          L->name, where, SLUICE_TOKENIZER_MAX_ID);
			goto done;
		}
		if (len == 0) {
			error = sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                          "%s: %s.content is empty", L->name, where);
			goto done;
		}
		a->id = (uint32_t)json_integer_value(id);
		if ((error = dup_mem(L, &a->raw, s, len)) < 0)
			goto done;
		a->rawlen = len;
		tok->nadded++;
		/* "normalized" tokens are matched in normalized text, so normalize them too. */
		if (a->normalized) {
			if ((error = normalize(L->ctx, tok, md, s, len, &nb)) < 0)
				goto done;
			s = nb.len ? (const char *)nb.ptr : "";
			len = nb.len;
		}
		if ((error = dup_mem(L, &a->content, s, len)) < 0)
			goto done;
		a->len = len;
		if (len)
			tok->first_byte[a->normalized][(unsigned char)s[0] >> 3] |=
			        (uint8_t)(1u << ((unsigned char)s[0] & 7));
		if (a->id >= tok->size)
			tok->size = a->id + 1;
	}
done:
	sluice_buf__dispose(&nb);
	pcre2_match_data_free(md);
	return error;
}

static int parse_model(loader *L, json_t *m)
{
	static const char *const keys[] = {"type",
	                                   "dropout",
	                                   "unk_token",
	                                   "continuing_subword_prefix",
	                                   "end_of_word_suffix",
	                                   "fuse_unk",
	                                   "byte_fallback",
	                                   "ignore_merges",
	                                   "vocab",
	                                   "merges",
	                                   NULL};
	sluice_tokenizer *tok = L->tok;
	json_t *vocab, *merges, *v;
	const char *type, *key, *s;
	size_t len, i, n, need;
	int error;

	if (!m || json_is_null(m))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: model is missing", L->name);
	if ((error = get_type(L, m, "model", &type)) < 0)
		return error;
	if (strcmp(type, "BPE") != 0)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: model.type \"%s\" is not supported (only BPE)",
		                         L->name, type);
	if ((error = check_keys(L, m, "model", keys)) < 0 ||
	    (error = get_bool(L, m, "model", "fuse_unk", false, &tok->fuse_unk)) < 0 ||
	    (error = get_bool(L, m, "model", "byte_fallback", false, &tok->byte_fallback)) < 0 ||
	    (error = get_bool(L, m, "model", "ignore_merges", false, &tok->ignore_merges)) < 0)
		return error;
	v = json_object_get(m, "dropout");
	if (v && !json_is_null(v))
		return sluice_ctx__error(
		        L->ctx, SLUICE_EINVALID,
		        "%s: model.dropout is set (random merges are not supported)", L->name);
	if ((error = get_str(L, m, "model", "continuing_subword_prefix", false, &s, &len)) < 0)
		return error;
	if (len)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: model.continuing_subword_prefix is not supported",
		                         L->name);
	if ((error = get_str(L, m, "model", "end_of_word_suffix", false, &s, &len)) < 0)
		return error;
	if (len)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: model.end_of_word_suffix is not supported", L->name);

	vocab = json_object_get(m, "vocab");
	if (!json_is_object(vocab))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: model.vocab must be an object", L->name);
	n = json_object_size(vocab);
	for (tok->nslots = 16; tok->nslots < 2 * n; tok->nslots *= 2)
		;
	if (!(tok->vocab = sluice__calloc(L->ctx, n ? n : 1, sizeof(*tok->vocab))) ||
	    !(tok->slots = sluice__calloc(L->ctx, tok->nslots, sizeof(*tok->slots))))
		return SLUICE_ENOMEM;
	json_object_foreach(vocab, key, v)
	{
		size_t klen = strlen(key), slot;

		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) >= (json_int_t)SLUICE_TOKENIZER_MAX_ID)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: model.vocab[\"%s\"] must be an integer in [0, %u)", L->name,
			        key, SLUICE_TOKENIZER_MAX_ID);
		if (!sluice__utf8_valid((const unsigned char *)key, klen))
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: model.vocab has a key that is not UTF-8",
			                         L->name);
		if (dup_mem(L, &tok->vocab[tok->nvocab].s, key, klen) < 0)
			return SLUICE_ENOMEM;
		tok->vocab[tok->nvocab].len = klen;
		tok->vocab[tok->nvocab].id = (uint32_t)json_integer_value(v);
		if (tok->vocab[tok->nvocab].id >= tok->nid)
			tok->nid = tok->vocab[tok->nvocab].id + 1;
		for (slot = (size_t)hash_bytes(key, klen) & (tok->nslots - 1); tok->slots[slot];
		     slot = (slot + 1) & (tok->nslots - 1))
			;
		tok->slots[slot] = (uint32_t)++tok->nvocab;
	}
	if (tok->nid && !(tok->id_entry = sluice__calloc(L->ctx, tok->nid, sizeof(uint32_t))))
		return SLUICE_ENOMEM;
	for (i = 0; i < tok->nvocab; i++) {
		if (tok->id_entry[tok->vocab[i].id])
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: model.vocab: id %u is given to two tokens",
			                         L->name, tok->vocab[i].id);
		tok->id_entry[tok->vocab[i].id] = (uint32_t)i + 1;
	}
	if (tok->nid > tok->size)
		tok->size = tok->nid;

	if ((error = get_str(L, m, "model", "unk_token", false, &s, &len)) < 0)
		return error;
	if (s) {
		int64_t id = vocab_get(tok, s, len);

		/* tokenizers fails at encode time; failing early is kinder. */
		if (id < 0)
			return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
			                         "%s: model.unk_token \"%s\" is not in model.vocab",
			                         L->name, s);
		tok->has_unk = true;
		tok->unk_id = (uint32_t)id;
	}
	for (i = 0; i < 256; i++) {
		char name[8];

		snprintf(name, sizeof(name), "<0x%02X>", (unsigned)i);
		tok->byte_id[i] = vocab_get(tok, name, 6);
	}

	merges = json_object_get(m, "merges");
	if (!merges || json_is_null(merges))
		merges = NULL;
	else if (!json_is_array(merges))
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID,
		                         "%s: model.merges must be an array", L->name);
	n = merges ? json_array_size(merges) : 0;
	if (n >= UINT32_MAX / 4 || sluice__mul_ovf(&need, n, 2) < 0)
		return sluice_ctx__error(L->ctx, SLUICE_EINVALID, "%s: model.merges: too many",
		                         L->name);
	for (tok->nmerge_slots = 16; tok->nmerge_slots < need; tok->nmerge_slots *= 2)
		;
	if (!(tok->merges = sluice__calloc(L->ctx, tok->nmerge_slots, sizeof(*tok->merges))))
		return SLUICE_ENOMEM;
	for (i = 0; i < n; i++) {
		json_t *mg = json_array_get(merges, i);
		const char *a, *b;
		size_t alen, blen;
		int64_t ida, idb, idn;
		char *joined;

		if (json_is_string(mg)) {
			const char *str = json_string_value(mg), *sp;

			len = json_string_length(mg);
			/* tokenizers splits on ' ' and wants exactly two parts. */
			sp = memchr(str, ' ', len);
			if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp - str) - 1))
				return sluice_ctx__error(
				        L->ctx, SLUICE_EINVALID,
				        "%s: model.merges[%zu] \"%s\" is not \"a b\"", L->name, i,
				        str);
			a = str;
			alen = (size_t)(sp - str);
			b = sp + 1;
			blen = len - alen - 1;
		} else if (json_is_array(mg) && json_array_size(mg) == 2 &&
		           json_is_string(json_array_get(mg, 0)) &&
		           json_is_string(json_array_get(mg, 1))) {
			a = json_string_value(json_array_get(mg, 0));
			alen = json_string_length(json_array_get(mg, 0));
			b = json_string_value(json_array_get(mg, 1));
			blen = json_string_length(json_array_get(mg, 1));
		} else {
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: model.merges[%zu] is neither \"a b\" nor [a, b]", L->name, i);
		}
		if ((ida = vocab_get(tok, a, alen)) < 0 || (idb = vocab_get(tok, b, blen)) < 0)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: model.merges[%zu]: \"%.*s\" is not in model.vocab", L->name, i,
			        (int)(ida < 0 ? alen : blen), ida < 0 ? a : b);
		if (!(joined = sluice__malloc(L->ctx, alen + blen + 1)))
			return SLUICE_ENOMEM;
		memcpy(joined, a, alen);
		memcpy(joined + alen, b, blen);
		idn = vocab_get(tok, joined, alen + blen);
		free(joined);
		if (idn < 0)
			return sluice_ctx__error(
			        L->ctx, SLUICE_EINVALID,
			        "%s: model.merges[%zu]: the merged token \"%.*s%.*s\" is "
			        "not in model.vocab",
			        L->name, i, (int)alen, a, (int)blen, b);
		merge_put(tok, (uint32_t)ida, (uint32_t)idb, (uint32_t)i, (uint32_t)idn);
	}
	return 0;
}

int sluice_tokenizer__load(sluice_ctx *ctx, sluice_tokenizer **out, const char *json, size_t len,
                           const char *name)
{
	static const char *const keys[] = {
	        "version",       "truncation",     "padding", "added_tokens", "normalizer",
	        "pre_tokenizer", "post_processor", "decoder", "model",        NULL};
	loader L = {ctx, name ? name : "tokenizer.json", NULL};
	json_error_t jerr;
	json_t *root = NULL, *v;
	int error;

	*out = NULL;
	if (!(L.tok = sluice__calloc(ctx, 1, sizeof(*L.tok))))
		return SLUICE_ENOMEM;
	if (!(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
		/* jansson cannot hold a key with U+0000 in it, so a vocabulary
		 * with a token for it (InternLM2's) cannot be read: say so. */
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID, "%s: line %d: %s%s", L.name, jerr.line, jerr.text,
		        json_error_code(&jerr) == json_error_null_byte_in_key
		                ? " (a token holding U+0000 is not supported: the JSON reader, "
		                  "jansson, cannot hold it as a vocab key)"
		                : "");
		goto done;
	}
	if (!json_is_object(root)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: not a JSON object", L.name);
		goto done;
	}
	if ((error = check_keys(&L, root, "tokenizer", keys)) < 0)
		goto done;
	if (((v = json_object_get(root, "truncation")) && !json_is_null(v)) ||
	    ((v = json_object_get(root, "padding")) && !json_is_null(v))) {
		error = sluice_ctx__error(
		        ctx, SLUICE_EINVALID, "%s: %s is set (encode neither truncates nor pads)",
		        L.name,
		        json_object_get(root, "truncation") == v ? "truncation" : "padding");
		goto done;
	}
	if ((error = parse_model(&L, json_object_get(root, "model"))) < 0 ||
	    (error = parse_normalizer(&L, json_object_get(root, "normalizer"), 0)) < 0 ||
	    (error = parse_pre(&L, json_object_get(root, "pre_tokenizer"), 0)) < 0 ||
	    (error = parse_post(&L, json_object_get(root, "post_processor"), 0)) < 0 ||
	    (error = parse_decoder(&L, json_object_get(root, "decoder"), 0)) < 0 ||
	    (error = parse_added(&L, json_object_get(root, "added_tokens"))) < 0)
		goto done;
	*out = L.tok;
	L.tok = NULL;
done:
	json_decref(root);
	sluice_tokenizer__free(L.tok);
	return error;
}

void sluice_tokenizer__free(sluice_tokenizer *tok)
{
	size_t i;

	if (!tok)
		return;
	for (i = 0; i < tok->nvocab; i++)
		free(tok->vocab[i].s);
	free(tok->vocab);
	free(tok->slots);
	free(tok->id_entry);
	free(tok->merges);
	for (i = 0; i < tok->nnorm; i++) {
		free(tok->norm[i].str);
		pcre2_code_free(tok->norm[i].pat);
	}
	for (i = 0; i < tok->npre; i++)
		pcre2_code_free(tok->pre[i].pat);
	pcre2_code_free(tok->gpt2);
	for (i = 0; i < tok->ndec; i++) {
		free(tok->dec[i].from);
		free(tok->dec[i].to);
	}
	for (i = 0; i < tok->nadded; i++) {
		free(tok->added[i].content);
		free(tok->added[i].raw);
	}
	free(tok->added);
	free(tok);
}

/* ---- matching ------------------------------------------------------------------ */

typedef struct {
	size_t a, b;
	bool m;
} range;

typedef struct {
	size_t off, len;
	bool first; /* starts at offset 0 of the original text (Metaspace "first") */
} piece;

/* Per-call state: encode reuses these buffers across words. */
typedef struct {
	sluice_ctx *ctx;
	const sluice_tokenizer *tok;
	pcre2_match_data *md;
	sluice_buf arena;
	piece *pa, *pb;
	size_t na, nb, capa, capb;
	range *r;
	size_t nr, capr;
	range *r2;
	size_t nr2, capr2;
	uint32_t *ids;
	size_t nids, capids;
	/* BPE symbols */
	uint32_t *sid;
	size_t *slen;
	ptrdiff_t *sprev, *snext;
	size_t capsym;
	struct hent {
		uint32_t rank, new_id;
		size_t pos;
	} * heap;
	size_t nheap, capheap;
} enc;

static int push_range(sluice_ctx *ctx, range **r, size_t *n, size_t *cap, size_t a, size_t b,
                      bool m)
{
	int error;

	if ((error = sluice__reserve(ctx, (void **)r, cap, *n + 1, sizeof(**r))) < 0)
		return error;
	(*r)[*n].a = a;
	(*r)[*n].b = b;
	(*r)[*n].m = m;
	(*n)++;
	return 0;
}

/* tokenizers' Pattern::find_matches: ranges covering s, matches flagged. */
static int find_matches(sluice_ctx *ctx, pcre2_match_data *md, const pcre2_code *code,
                        const char *s, size_t len, range **r, size_t *n, size_t *cap)
{
	size_t prev = 0;
	int rc, error;

	*n = 0;
	if (len == 0)
		return push_range(ctx, r, n, cap, 0, 0, false);
	while (prev < len) {
		PCRE2_SIZE *ov;

		rc = pcre2_match(code, (PCRE2_SPTR)s, len, prev, PCRE2_NO_UTF_CHECK, md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			PCRE2_UCHAR msg[160];

			pcre2_get_error_message(rc, msg, sizeof(msg));
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "tokenizer: regex failed: %s", (const char *)msg);
		}
		ov = pcre2_get_ovector_pointer(md);
		/* Patterns cannot match empty (checked at load), but \K could. */
		if (ov[1] <= ov[0] || ov[0] < prev || ov[1] > len)
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "tokenizer: regex produced an empty or backward match");
		if (ov[0] != prev && (error = push_range(ctx, r, n, cap, prev, ov[0], false)) < 0)
			return error;
		if ((error = push_range(ctx, r, n, cap, ov[0], ov[1], true)) < 0)
			return error;
		prev = ov[1];
	}
	if (prev != len)
		return push_range(ctx, r, n, cap, prev, len, false);
	return 0;
}

/* NormalizedString::split with a SplitDelimiterBehavior: e->r2 gets the pieces. */
static int split_ranges(enc *e, const pcre2_code *code, const char *s, size_t len, int behavior,
                        bool invert)
{
	size_t i;
	bool prev_match = false;
	int error;

	if ((error = find_matches(e->ctx, e->md, code, s, len, &e->r, &e->nr, &e->capr)) < 0)
		return error;
	e->nr2 = 0;
	for (i = 0; i < e->nr; i++) {
		if (invert)
			e->r[i].m = !e->r[i].m;
	}
	switch (behavior) {
	case BEH_REMOVED:
	case BEH_ISOLATED:
		for (i = 0; i < e->nr; i++) {
			if (behavior == BEH_REMOVED && e->r[i].m)
				continue;
			if ((error = push_range(e->ctx, &e->r2, &e->nr2, &e->capr2, e->r[i].a,
			                        e->r[i].b, false)) < 0)
				return error;
		}
		break;
	case BEH_PREV:
	case BEH_CONTIGUOUS:
		for (i = 0; i < e->nr; i++) {
			bool join = behavior == BEH_PREV ? (e->r[i].m && !prev_match)
			                                 : (e->r[i].m == prev_match);

			if (join && e->nr2)
				e->r2[e->nr2 - 1].b = e->r[i].b;
			else if ((error = push_range(e->ctx, &e->r2, &e->nr2, &e->capr2, e->r[i].a,
			                             e->r[i].b, false)) < 0)
				return error;
			prev_match = e->r[i].m;
		}
		break;
	case BEH_NEXT:
		for (i = e->nr; i-- > 0;) {
			if (e->r[i].m && !prev_match && e->nr2)
				e->r2[e->nr2 - 1].a = e->r[i].a;
			else if ((error = push_range(e->ctx, &e->r2, &e->nr2, &e->capr2, e->r[i].a,
			                             e->r[i].b, false)) < 0)
				return error;
			prev_match = e->r[i].m;
		}
		for (i = 0; i < e->nr2 / 2; i++) {
			range t = e->r2[i];

			e->r2[i] = e->r2[e->nr2 - 1 - i];
			e->r2[e->nr2 - 1 - i] = t;
		}
		break;
	}
	return 0;
}

static int push_piece(enc *e, size_t off, size_t len, bool first)
{
	int error;

	if (len == 0)
		return 0; /* tokenizers drops empty splits */
	if ((error = sluice__reserve(e->ctx, (void **)&e->pb, &e->capb, e->nb + 1,
	                             sizeof(*e->pb))) < 0)
		return error;
	e->pb[e->nb].off = off;
	e->pb[e->nb].len = len;
	e->pb[e->nb].first = first;
	e->nb++;
	return 0;
}

/* Split piece p with code; the sub-pieces go to pb. */
static int split_piece(enc *e, piece p, const pcre2_code *code, int behavior, bool invert)
{
	size_t i;
	int error;

	if ((error = split_ranges(e, code, (const char *)e->arena.ptr + p.off, p.len, behavior,
	                          invert)) < 0)
		return error;
	for (i = 0; i < e->nr2; i++) {
		if ((error = push_piece(e, p.off + e->r2[i].a, e->r2[i].b - e->r2[i].a,
		                        p.first && e->r2[i].a == 0)) < 0)
			return error;
	}
	return 0;
}

static int pre_bytelevel(enc *e, const pre_step *st, piece p)
{
	size_t i, j, off;
	int error;

	if (st->prefix_space && e->arena.ptr[p.off] != ' ') {
		/* Copy with the space in front; the copy becomes the piece. */
		if ((error = sluice_buf__grow(e->ctx, &e->arena, p.len + 1)) < 0)
			return error;
		off = e->arena.len;
		e->arena.ptr[off] = ' ';
		memmove(e->arena.ptr + off + 1, e->arena.ptr + p.off, p.len);
		e->arena.len += p.len + 1;
		p.off = off;
		p.len++;
	}
	if (st->use_regex) {
		size_t nb0 = e->nb;

		if ((error = split_piece(e, p, e->tok->gpt2, BEH_ISOLATED, false)) < 0)
			return error;
		/* Map each new sub-piece in place of itself. */
		for (i = nb0; i < e->nb; i++) {
			piece q = e->pb[i];

			if ((error = sluice_buf__grow(e->ctx, &e->arena, 2 * q.len)) < 0)
				return error;
			off = e->arena.len;
			for (j = 0; j < q.len; j++)
				e->arena.len += u8put((char *)e->arena.ptr + e->arena.len,
				                      byte_char(e->arena.ptr[q.off + j]));
			e->pb[i].off = off;
			e->pb[i].len = e->arena.len - off;
		}
		return 0;
	}
	if ((error = sluice_buf__grow(e->ctx, &e->arena, 2 * p.len)) < 0)
		return error;
	off = e->arena.len;
	for (j = 0; j < p.len; j++)
		e->arena.len += u8put((char *)e->arena.ptr + e->arena.len,
		                      byte_char(e->arena.ptr[p.off + j]));
	return push_piece(e, off, e->arena.len - off, p.first);
}

static int pre_metaspace(enc *e, const pre_step *st, piece p)
{
	size_t j, off, spaces = 0, need;
	bool prepend;
	int error;

	for (j = 0; j < p.len; j++)
		spaces += e->arena.ptr[p.off + j] == ' ';
	if (sluice__mul_ovf(&need, spaces, st->replen) < 0 ||
	    sluice__add_ovf(&need, need, p.len + st->replen) < 0)
		return sluice_ctx__error(e->ctx, SLUICE_ENOMEM, "tokenizer: size overflow");
	if ((error = sluice_buf__grow(e->ctx, &e->arena, need)) < 0)
		return error;
	off = e->arena.len;
	for (j = 0; j < p.len; j++) {
		unsigned char c = e->arena.ptr[p.off + j];

		if (c == ' ') {
			memcpy(e->arena.ptr + e->arena.len, st->rep, st->replen);
			e->arena.len += st->replen;
		} else {
			e->arena.ptr[e->arena.len++] = c;
		}
	}
	prepend = st->scheme == SCHEME_ALWAYS || (st->scheme == SCHEME_FIRST && p.first);
	if (prepend && !(e->arena.len - off >= st->replen &&
	                 memcmp(e->arena.ptr + off, st->rep, st->replen) == 0)) {
		memmove(e->arena.ptr + off + st->replen, e->arena.ptr + off, e->arena.len - off);
		memcpy(e->arena.ptr + off, st->rep, st->replen);
		e->arena.len += st->replen;
	}
	p.off = off;
	p.len = e->arena.len - off;
	if (st->split)
		return split_piece(e, p, st->pat, BEH_NEXT, false);
	return push_piece(e, p.off, p.len, p.first);
}

/* ---- BPE ------------------------------------------------------------------------ */

static bool hless(const struct hent *x, const struct hent *y)
{
	return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static int heap_push(enc *e, uint32_t rank, uint32_t new_id, size_t pos)
{
	size_t i;
	int error;

	if ((error = sluice__reserve(e->ctx, (void **)&e->heap, &e->capheap, e->nheap + 1,
	                             sizeof(*e->heap))) < 0)
		return error;
	i = e->nheap++;
	e->heap[i].rank = rank;
	e->heap[i].new_id = new_id;
	e->heap[i].pos = pos;
	while (i > 0 && hless(&e->heap[i], &e->heap[(i - 1) / 2])) {
		struct hent t = e->heap[i];

		e->heap[i] = e->heap[(i - 1) / 2];
		e->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	return 0;
}

static struct hent heap_pop(enc *e)
{
	struct hent top = e->heap[0];
	size_t i = 0;

	e->heap[0] = e->heap[--e->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < e->nheap && hless(&e->heap[l], &e->heap[m]))
			m = l;
		if (r < e->nheap && hless(&e->heap[r], &e->heap[m]))
			m = r;
		if (m == i)
			break;
		{
			struct hent t = e->heap[i];

			e->heap[i] = e->heap[m];
			e->heap[m] = t;
		}
		i = m;
	}
	return top;
}

static int add_symbol(enc *e, size_t *n, uint32_t id, size_t len)
{
	int error;
	size_t cap = e->capsym;

	if (*n + 1 > e->capsym) {
		/* Four parallel arrays grow together. */
		if ((error = sluice__reserve(e->ctx, (void **)&e->sid, &cap, *n + 1,
		                             sizeof(*e->sid))) < 0)
			return error;
		cap = e->capsym;
		if ((error = sluice__reserve(e->ctx, (void **)&e->slen, &cap, *n + 1,
		                             sizeof(*e->slen))) < 0)
			return error;
		cap = e->capsym;
		if ((error = sluice__reserve(e->ctx, (void **)&e->sprev, &cap, *n + 1,
		                             sizeof(*e->sprev))) < 0)
			return error;
		cap = e->capsym;
		if ((error = sluice__reserve(e->ctx, (void **)&e->snext, &cap, *n + 1,
		                             sizeof(*e->snext))) < 0)
			return error;
		e->capsym = cap;
	}
	e->sid[*n] = id;
	e->slen[*n] = len;
	e->sprev[*n] = (ptrdiff_t)*n - 1;
	e->snext[*n] = -1;
	if (*n > 0)
		e->snext[*n - 1] = (ptrdiff_t)*n;
	(*n)++;
	return 0;
}

static int push_id(enc *e, uint32_t id)
{
	int error;

	if ((error = sluice__reserve(e->ctx, (void **)&e->ids, &e->capids, e->nids + 1,
	                             sizeof(*e->ids))) < 0)
		return error;
	e->ids[e->nids++] = id;
	return 0;
}

/* BPE::tokenize on one word (tokenizers' merge_word + Word::merge_all). */
static int bpe_word(enc *e, const char *w, size_t len)
{
	const sluice_tokenizer *tok = e->tok;
	size_t n = 0, i, unk_len = 0;
	bool unk = false;
	int64_t id;
	int error;

	if (tok->ignore_merges && (id = vocab_get(tok, w, len)) >= 0)
		return push_id(e, (uint32_t)id);
	for (i = 0; i < len;) {
		size_t cl = u8len((unsigned char)w[i]), k;

		if ((id = vocab_get(tok, w + i, cl)) >= 0) {
			if (unk && (error = add_symbol(e, &n, tok->unk_id, unk_len)) < 0)
				return error;
			unk = false;
			if ((error = add_symbol(e, &n, (uint32_t)id, cl)) < 0)
				return error;
			i += cl;
			continue;
		}
		if (tok->byte_fallback) {
			for (k = 0; k < cl && tok->byte_id[(unsigned char)w[i + k]] >= 0; k++)
				;
			if (k == cl) {
				/* A pending unk stays pending across fallback bytes, as in
				 * tokenizers. */
				for (k = 0; k < cl; k++) {
					if ((error = add_symbol(
					             e, &n,
					             (uint32_t)
					                     tok->byte_id[(unsigned char)w[i + k]],
					             1)) < 0)
						return error;
				}
				i += cl;
				continue;
			}
		}
		if (tok->has_unk) {
			if (unk && tok->fuse_unk) {
				unk_len += cl;
			} else {
				if (unk && (error = add_symbol(e, &n, tok->unk_id, unk_len)) < 0)
					return error;
				unk = true;
				unk_len = cl;
			}
		}
		/* Without unk_token, tokenizers drops the character. */
		i += cl;
	}
	if (unk && (error = add_symbol(e, &n, tok->unk_id, unk_len)) < 0)
		return error;

	e->nheap = 0;
	for (i = 0; i + 1 < n; i++) {
		const merge_slot *m = merge_get(tok, e->sid[i], e->sid[i + 1]);

		if (m && (error = heap_push(e, m->rank, m->new_id, i)) < 0)
			return error;
	}
	while (e->nheap) {
		struct hent top = heap_pop(e);
		const merge_slot *m;
		ptrdiff_t next, prev;

		if (e->slen[top.pos] == 0 || e->snext[top.pos] < 0)
			continue;
		next = e->snext[top.pos];
		/* Stale entry: the pair has changed since it was queued. */
		m = merge_get(tok, e->sid[top.pos], e->sid[next]);
		if (!m || m->new_id != top.new_id)
			continue;
		e->sid[top.pos] = top.new_id;
		e->slen[top.pos] += e->slen[next];
		e->snext[top.pos] = e->snext[next];
		e->slen[next] = 0;
		if (e->snext[next] >= 0)
			e->sprev[e->snext[next]] = (ptrdiff_t)top.pos;
		prev = e->sprev[top.pos];
		if (prev >= 0 && (m = merge_get(tok, e->sid[prev], e->sid[top.pos])) &&
		    (error = heap_push(e, m->rank, m->new_id, (size_t)prev)) < 0)
			return error;
		next = e->snext[top.pos];
		if (next >= 0 && (m = merge_get(tok, e->sid[top.pos], e->sid[next])) &&
		    (error = heap_push(e, m->rank, m->new_id, top.pos)) < 0)
			return error;
	}
	for (i = 0; i < n; i++) {
		if (e->slen[i] && (error = push_id(e, e->sid[i])) < 0)
			return error;
	}
	return 0;
}

/* ---- the pipeline ---------------------------------------------------------------- */

static int normalize(sluice_ctx *ctx, const sluice_tokenizer *tok, pcre2_match_data *md,
                     const char *s, size_t len, sluice_buf *out)
{
	sluice_buf tmp = {0};
	range *r = NULL;
	size_t nr = 0, capr = 0, i, k;
	int error = 0;

	out->len = 0;
	if ((error = sluice_buf__put(ctx, out, s, len)) < 0)
		goto done;
	for (k = 0; k < tok->nnorm; k++) {
		const norm_step *st = &tok->norm[k];
		sluice_buf t;

		tmp.len = 0;
		if (st->kind == NORM_PREPEND) {
			if (out->len == 0)
				continue;
			if ((error = sluice_buf__put(ctx, &tmp, st->str, st->len)) < 0 ||
			    (error = sluice_buf__put(ctx, &tmp, out->ptr, out->len)) < 0)
				goto done;
		} else {
			if ((error = find_matches(ctx, md, st->pat, (const char *)out->ptr,
			                          out->len, &r, &nr, &capr)) < 0)
				goto done;
			for (i = 0; i < nr; i++) {
				if ((error = r[i].m ? sluice_buf__put(ctx, &tmp, st->str, st->len)
				                    : sluice_buf__put(ctx, &tmp, out->ptr + r[i].a,
				                                      r[i].b - r[i].a)) < 0)
					goto done;
			}
		}
		t = *out;
		*out = tmp;
		tmp = t;
	}
done:
	sluice_buf__dispose(&tmp);
	free(r);
	return error;
}

/* Leftmost-longest added token at or after from; false if none. */
static bool next_added(const sluice_tokenizer *tok, const char *s, size_t len, size_t from,
                       bool normalized, size_t *at, const added_tok **which)
{
	size_t i, k;

	for (i = from; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const added_tok *best = NULL;

		if (!(tok->first_byte[normalized][c >> 3] & (1u << (c & 7))))
			continue;
		for (k = 0; k < tok->nadded; k++) {
			const added_tok *a = &tok->added[k];

			if (a->normalized == normalized && a->len <= len - i &&
			    (!best || a->len > best->len) && memcmp(s + i, a->content, a->len) == 0)
				best = a;
		}
		if (best) {
			*at = i;
			*which = best;
			return true;
		}
	}
	return false;
}

/* Pre-tokenize and BPE one segment of normalized text. */
static int encode_segment(enc *e, const char *s, size_t len, bool first)
{
	const sluice_tokenizer *tok = e->tok;
	size_t k, i;
	int error;

	if (len == 0)
		return 0;
	e->arena.len = 0;
	e->na = 0;
	e->nb = 0;
	if ((error = sluice_buf__put(e->ctx, &e->arena, s, len)) < 0 ||
	    (error = push_piece(e, 0, len, first)) < 0)
		return error;
	for (k = 0; k < tok->npre; k++) {
		const pre_step *st = &tok->pre[k];
		piece *tp;
		size_t tc;

		/* pb holds the current pieces; move them to pa and rebuild pb. */
		tp = e->pa;
		e->pa = e->pb;
		e->pb = tp;
		tc = e->capa;
		e->capa = e->capb;
		e->capb = tc;
		e->na = e->nb;
		e->nb = 0;
		for (i = 0; i < e->na; i++) {
			piece p = e->pa[i];

			if (st->kind == PRE_BYTELEVEL)
				error = pre_bytelevel(e, st, p);
			else if (st->kind == PRE_METASPACE)
				error = pre_metaspace(e, st, p);
			else
				error = split_piece(e, p, st->pat, st->behavior, st->invert);
			if (error < 0)
				return error;
		}
	}
	for (i = 0; i < e->nb; i++) {
		if ((error = bpe_word(e, (const char *)e->arena.ptr + e->pb[i].off, e->pb[i].len)) <
		    0)
			return error;
	}
	return 0;
}

int sluice_tokenizer__encode(sluice_ctx *ctx, uint32_t **out, size_t *nout,
                             const sluice_tokenizer *tok, const char *text, size_t len,
                             bool add_special)
{
	enc e;
	sluice_buf nb = {0};
	const added_tok *a;
	size_t pos = 0, at, k;
	int error = 0;

	*out = NULL;
	*nout = 0;
	memset(&e, 0, sizeof(e));
	e.ctx = ctx;
	e.tok = tok;
	if (!sluice__utf8_valid((const unsigned char *)text, len))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "tokenizer: text is not valid UTF-8");
	if (!(e.md = pcre2_match_data_create(1, NULL)))
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "tokenizer: out of memory");
	if (add_special) {
		for (k = 0; k < tok->nprefix; k++) {
			if ((error = push_id(&e, tok->prefix[k])) < 0)
				goto done;
		}
	}
	while (pos <= len) {
		bool found = next_added(tok, text, len, pos, false, &at, &a);
		size_t end = found ? at : len, npos = 0, nat;
		const added_tok *na;

		/* The raw segment before the token: normalize, then cut on normalized tokens. */
		if (end > pos) {
			if ((error = normalize(ctx, tok, e.md, text + pos, end - pos, &nb)) < 0)
				goto done;
			while (nb.len && npos <= nb.len) {
				bool nfound = next_added(tok, (const char *)nb.ptr, nb.len, npos,
				                         true, &nat, &na);
				size_t nend = nfound ? nat : nb.len;

				if ((error = encode_segment(&e, (const char *)nb.ptr + npos,
				                            nend - npos, pos == 0 && npos == 0)) <
				    0)
					goto done;
				if (!nfound)
					break;
				if ((error = push_id(&e, na->id)) < 0)
					goto done;
				npos = nat + na->len;
			}
		}
		if (!found)
			break;
		if ((error = push_id(&e, a->id)) < 0)
			goto done;
		pos = at + a->len;
	}
	if (add_special) {
		for (k = 0; k < tok->nsuffix; k++) {
			if ((error = push_id(&e, tok->suffix[k])) < 0)
				goto done;
		}
	}
	*out = e.ids;
	*nout = e.nids;
	e.ids = NULL;
done:
	sluice_buf__dispose(&nb);
	sluice_buf__dispose(&e.arena);
	pcre2_match_data_free(e.md);
	free(e.pa);
	free(e.pb);
	free(e.r);
	free(e.r2);
	free(e.ids);
	free(e.sid);
	free(e.slen);
	free(e.sprev);
	free(e.snext);
	free(e.heap);
	return error;
}

/* ---- decoding -------------------------------------------------------------------- */

typedef struct {
	size_t off, len;
} span;

typedef struct {
	sluice_ctx *ctx;
	sluice_buf text; /* token bytes */
	span *t;
	size_t n, cap;
} toklist;

static int tl_add(toklist *l, const void *s, size_t len)
{
	int error;

	/* Keep text.ptr non-NULL so spans of empty tokens index real memory. */
	if ((error = sluice__reserve(l->ctx, (void **)&l->t, &l->cap, l->n + 1, sizeof(*l->t))) <
	            0 ||
	    (error = sluice_buf__grow(l->ctx, &l->text, len + 1)) < 0)
		return error;
	l->t[l->n].off = l->text.len;
	l->t[l->n].len = len;
	l->n++;
	return sluice_buf__put(l->ctx, &l->text, s, len);
}

/* Extend the last token (for steps that build a token piecewise). */
static int tl_append(toklist *l, const void *s, size_t len)
{
	l->t[l->n - 1].len += len;
	return sluice_buf__put(l->ctx, &l->text, s, len);
}

/* Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD. */
static int utf8_lossy(toklist *l, const unsigned char *s, size_t len)
{
	static const char fffd[] = "\xEF\xBF\xBD";
	size_t i = 0;
	int error;

	while (i < len) {
		unsigned char c = s[i];
		size_t need, k;
		unsigned char lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			need = 0;
		} else if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			lo = c == 0xE0 ? 0xA0 : 0x80;
			hi = c == 0xED ? 0x9F : 0xBF;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			lo = c == 0xF0 ? 0x90 : 0x80;
			hi = c == 0xF4 ? 0x8F : 0xBF;
		} else {
			if ((error = tl_append(l, fffd, 3)) < 0)
				return error;
			i++;
			continue;
		}
		for (k = 1; k <= need; k++) {
			unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;

			if (i + k >= len || s[i + k] < lo_k || s[i + k] > hi_k)
				break;
		}
		if (k <= need) {
			if ((error = tl_append(l, fffd, 3)) < 0)
				return error;
			i += k;
			continue;
		}
		if ((error = tl_append(l, s + i, need + 1)) < 0)
			return error;
		i += need + 1;
	}
	return 0;
}

static int byte_token(const unsigned char *s, size_t len)
{
	int v = 0, i;

	/* u8::from_str_radix accepts a leading '+', so "<0x+F>" counts too. */
	if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
		return -1;
	for (i = 3; i < 5; i++) {
		unsigned char c = s[i];

		if (i == 3 && c == '+')
			continue;
		v = v * 16 + (c >= '0' && c <= '9'   ? c - '0'
		              : c >= 'a' && c <= 'f' ? c - 'a' + 10
		              : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                                     : -1000);
	}
	return v < 0 ? -1 : v;
}

static int flush_bytes(toklist *l, sluice_buf *bytes, size_t nbytes)
{
	size_t i;
	int error;

	if (!nbytes)
		return 0;
	if (sluice__utf8_valid(bytes->ptr, bytes->len))
		return tl_add(l, bytes->ptr, bytes->len);
	for (i = 0; i < nbytes; i++) {
		if ((error = tl_add(l, "\xEF\xBF\xBD", 3)) < 0)
			return error;
	}
	return 0;
}

static int decode_step(const dec_step *st, const toklist *in, toklist *out)
{
	sluice_buf bytes = {0};
	size_t i, j, nbytes = 0;
	int error = 0;

	if (st->kind == DEC_BYTELEVEL || st->kind == DEC_FUSE) {
		sluice_buf all = {0};

		for (i = 0; i < in->n && !error; i++) {
			const unsigned char *s = in->text.ptr + in->t[i].off;
			size_t len = in->t[i].len, mark = all.len;
			bool ok = true;

			if (st->kind == DEC_FUSE) {
				error = sluice_buf__put(out->ctx, &all, s, len);
				continue;
			}
			for (j = 0; j < len && ok && !error;) {
				size_t cl = u8len(s[j]);
				int b = char_byte(u8get(s + j, cl));
				unsigned char c = (unsigned char)b;

				ok = b >= 0;
				if (ok)
					error = sluice_buf__put(out->ctx, &all, &c, 1);
				j += cl;
			}
			if (!ok && !error) {
				all.len = mark;
				error = sluice_buf__put(out->ctx, &all, s, len);
			}
		}
		if (!error && (error = tl_add(out, "", 0)) == 0)
			error = st->kind == DEC_FUSE ? tl_append(out, all.ptr, all.len)
			                             : utf8_lossy(out, all.ptr, all.len);
		sluice_buf__dispose(&all);
		return error;
	}
	for (i = 0; i < in->n; i++) {
		const unsigned char *s = in->text.ptr + in->t[i].off;
		size_t len = in->t[i].len;

		switch (st->kind) {
		case DEC_BYTEFALLBACK: {
			int b = byte_token(s, len);
			unsigned char c = (unsigned char)b;

			if (b >= 0) {
				error = sluice_buf__put(out->ctx, &bytes, &c, 1);
				nbytes++;
				break;
			}
			if ((error = flush_bytes(out, &bytes, nbytes)) < 0)
				break;
			bytes.len = 0;
			nbytes = 0;
			error = tl_add(out, s, len);
			break;
		}
		case DEC_METASPACE:
			if ((error = tl_add(out, "", 0)) < 0)
				break;
			for (j = 0; j < len && !error;) {
				if (len - j >= st->replen &&
				    memcmp(s + j, st->rep, st->replen) == 0) {
					if (!(i == 0 && st->scheme != SCHEME_NEVER))
						error = tl_append(out, " ", 1);
					j += st->replen;
				} else {
					size_t cl = u8len(s[j]);

					error = tl_append(out, s + j, cl);
					j += cl;
				}
			}
			break;
		case DEC_REPLACE:
			if ((error = tl_add(out, "", 0)) < 0)
				break;
			for (j = 0; j < len && !error;) {
				if (len - j >= st->fromlen &&
				    memcmp(s + j, st->from, st->fromlen) == 0) {
					error = tl_append(out, st->to, st->tolen);
					j += st->fromlen;
				} else {
					error = tl_append(out, s + j, 1);
					j++;
				}
			}
			break;
		case DEC_STRIP: {
			size_t nchars = 0, start_cut = 0, stop_cut = 0, take, skip, k;

			for (j = 0; j < len; j += u8len(s[j]))
				nchars++;
			for (j = 0; j < len && start_cut < st->start; j += st->replen) {
				if (len - j < st->replen || memcmp(s + j, st->rep, st->replen) != 0)
					break;
				start_cut++;
			}
			for (j = len; j > 0 && stop_cut < st->stop; j -= st->replen) {
				if (j < st->replen ||
				    memcmp(s + j - st->replen, st->rep, st->replen) != 0)
					break;
				stop_cut++;
			}
			/* tokenizers takes (byte length - cuts) chars: a quirk kept on purpose. */
			take = nchars - start_cut;
			if (len >= start_cut + stop_cut && len - start_cut - stop_cut < take)
				take = len - start_cut - stop_cut;
			for (j = 0, skip = 0; skip < start_cut; skip++)
				j += u8len(s[j]);
			for (k = j; take > 0 && k < len; take--)
				k += u8len(s[k]);
			error = tl_add(out, s + j, k - j);
			break;
		}
		}
		if (error < 0)
			break;
	}
	if (!error && st->kind == DEC_BYTEFALLBACK)
		error = flush_bytes(out, &bytes, nbytes);
	sluice_buf__dispose(&bytes);
	return error;
}

int sluice_tokenizer__decode(sluice_ctx *ctx, char **out, size_t *outlen,
                             const sluice_tokenizer *tok, const uint32_t *ids, size_t n,
                             bool skip_special)
{
	toklist a = {ctx, {0}, NULL, 0, 0}, b = {ctx, {0}, NULL, 0, 0}, t;
	sluice_buf res = {0};
	size_t i, k;
	int error = 0;

	*out = NULL;
	*outlen = 0;
	for (i = 0; i < n; i++) {
		const added_tok *found = NULL;

		for (k = 0; k < tok->nadded; k++) {
			if (tok->added[k].id == ids[i]) {
				found = &tok->added[k];
				break;
			}
		}
		if (found) {
			if (!(skip_special && found->special) &&
			    (error = tl_add(&a, found->raw, found->rawlen)) < 0)
				goto done;
		} else if (ids[i] < tok->nid && tok->id_entry[ids[i]]) {
			const vocab_entry *v = &tok->vocab[tok->id_entry[ids[i]] - 1];

			if ((error = tl_add(&a, v->s, v->len)) < 0)
				goto done;
		}
	}
	for (k = 0; k < tok->ndec; k++) {
		b.n = 0;
		b.text.len = 0;
		if ((error = decode_step(&tok->dec[k], &a, &b)) < 0)
			goto done;
		t = a;
		a = b;
		b = t;
	}
	for (i = 0; i < a.n; i++) {
		if ((i > 0 && !tok->has_decoder &&
		     (error = sluice_buf__put(ctx, &res, " ", 1)) < 0) ||
		    (error = sluice_buf__put(ctx, &res, a.text.ptr + a.t[i].off, a.t[i].len)) < 0)
			goto done;
	}
	if ((error = sluice_buf__cstr(ctx, &res)) < 0)
		goto done;
	*out = (char *)res.ptr;
	*outlen = res.len;
	res.ptr = NULL;
done:
	sluice_buf__dispose(&res);
	sluice_buf__dispose(&a.text);
	sluice_buf__dispose(&b.text);
	free(a.t);
	free(b.t);
	return error;
}

const uint32_t *sluice_tokenizer__prefix(const sluice_tokenizer *tok, size_t *n)
{
	*n = tok->nprefix;
	return tok->prefix;
}

const uint32_t *sluice_tokenizer__suffix(const sluice_tokenizer *tok, size_t *n)
{
	*n = tok->nsuffix;
	return tok->suffix;
}

int64_t sluice_tokenizer__token_id(const sluice_tokenizer *tok, const char *s, size_t len)
{
	size_t k;

	for (k = 0; k < tok->nadded; k++) {
		if (tok->added[k].rawlen == len && memcmp(tok->added[k].raw, s, len) == 0)
			return tok->added[k].id;
	}
	return vocab_get(tok, s, len);
}

uint32_t sluice_tokenizer__vocab_size(const sluice_tokenizer *tok)
{
	return tok->size;
}
