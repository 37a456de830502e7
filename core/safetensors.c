/*
 * core/safetensors.c - the safetensors header parser, and recognition of
 * pickle files so their refusal can say what they are.
 *
 * The parser is strict on purpose: a header is accepted only when its
 * tensors tile the data section exactly, so every byte of an accepted file
 * belongs to exactly one tensor and nothing can hide between, under or after
 * them (chunking cuts at these boundaries, DESIGN "Chunking").
 */
#include "safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 4096
/* Longest piece of a tensor name quoted in a message; the rest is elided. */
#define SHOW_MAX 160

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
        [SLUICE_DT_BOOL] = {"BOOL", 1},       [SLUICE_DT_U8] = {"U8", 1},
        [SLUICE_DT_I8] = {"I8", 1},           [SLUICE_DT_F8_E5M2] = {"F8_E5M2", 1},
        [SLUICE_DT_F8_E4M3] = {"F8_E4M3", 1}, [SLUICE_DT_I16] = {"I16", 2},
        [SLUICE_DT_U16] = {"U16", 2},         [SLUICE_DT_F16] = {"F16", 2},
        [SLUICE_DT_BF16] = {"BF16", 2},       [SLUICE_DT_I32] = {"I32", 4},
        [SLUICE_DT_U32] = {"U32", 4},         [SLUICE_DT_F32] = {"F32", 4},
        [SLUICE_DT_F64] = {"F64", 8},         [SLUICE_DT_I64] = {"I64", 8},
        [SLUICE_DT_U64] = {"U64", 8},
};
#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

size_t sluice_safetensors__dtype_size(sluice_dtype dt)
{
	return (size_t)dt < NDTYPES ? dtypes[dt].size : 0;
}

const char *sluice_safetensors__dtype_name(sluice_dtype dt)
{
	return (size_t)dt < NDTYPES ? dtypes[dt].name : "?";
}

static int dtype_lookup(sluice_dtype *out, const char *s)
{
	size_t i;

	for (i = 0; i < NDTYPES; i++) {
		if (strcmp(dtypes[i].name, s) == 0) {
			*out = (sluice_dtype)i;
			return 0;
		}
	}
	return -1;
}

static int mul_u64(uint64_t *out, uint64_t a, uint64_t b)
{
	if (a != 0 && b > UINT64_MAX / a)
		return -1;
	*out = a * b;
	return 0;
}

/*
 * A tensor name quoted for a message. Names come from the file, so control
 * characters (a terminal escape, a newline forging a second message line)
 * are shown as \xNN, and very long names are cut.
 */
static const char *show(char out[SHOW_MAX + 8], const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (; *s && o < SHOW_MAX; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	if (*s) {
		/* Back up to a UTF-8 boundary so the cut does not split a character. */
		while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0 && (unsigned char)out[o - 1] >= 0xc0)
			o--;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

void sluice_safetensors__dispose(sluice_st_header *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->ntensors; i++)
		free(h->tensors[i].name);
	free(h->tensors);
	free(h->metadata);
	memset(h, 0, sizeof(*h));
}

const sluice_st_tensor *sluice_safetensors__find(const sluice_st_header *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->ntensors; i++) {
		if (strcmp(h->tensors[i].name, name) == 0)
			return &h->tensors[i];
	}
	return NULL;
}

/*
 * The checks that need only the first 8 bytes and the file size, shared by
 * _parse and _read so _read can refuse before allocating the header buffer.
 */
static int check_prefix(sluice_ctx *ctx, uint64_t *n_out, const unsigned char *buf, size_t len,
                        uint64_t file_size, const char *name)
{
	uint64_t n;

	if (file_size < 8 || len < 8)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: not a safetensors file: shorter than 8 bytes", name);
	n = sluice__le64(buf);
	if (n > SLUICE_ST_MAX_HEADER)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: safetensors header length %llu exceeds 100 MB limit",
		                         name, (unsigned long long)n);
	if (n < 2)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: safetensors header length %llu is too small (the "
		                         "smallest header, {}, is 2 bytes)",
		                         name, (unsigned long long)n);
	if (8 + n > file_size)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: safetensors header length %llu runs past end of file "
		                         "(file is %llu bytes)",
		                         name, (unsigned long long)n,
		                         (unsigned long long)file_size);
	*n_out = n;
	return SLUICE_OK;
}

static int get_offset(uint64_t *out, json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* One tensor entry: exactly {"dtype", "shape", "data_offsets"}. */
static int parse_tensor(sluice_ctx *ctx, sluice_st_tensor *t, const char *key, json_t *v,
                        const char *name)
{
	char shown[SHOW_MAX + 8];
	json_t *dtype, *shape, *offs, *x;
	const char *k;
	uint64_t numel = 1, nbytes;
	size_t i;

	show(shown, key);
	if (!json_is_object(v))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': entry is not a JSON object", name,
		                         shown);
	json_object_foreach(v, k, x)
	{
		char kshown[SHOW_MAX + 8];
		if (strcmp(k, "dtype") != 0 && strcmp(k, "shape") != 0 &&
		    strcmp(k, "data_offsets") != 0)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: tensor '%s': unknown field '%s' (only dtype, "
			                         "shape and data_offsets are allowed)",
			                         name, shown, show(kshown, k));
	}
	dtype = json_object_get(v, "dtype");
	shape = json_object_get(v, "shape");
	offs = json_object_get(v, "data_offsets");
	if (!dtype || !shape || !offs)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': missing field '%s'", name, shown,
		                         !dtype   ? "dtype"
		                         : !shape ? "shape"
		                                  : "data_offsets");

	if (!json_is_string(dtype))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': dtype is not a string", name, shown);
	if (dtype_lookup(&t->dtype, json_string_value(dtype)) < 0) {
		char dshown[SHOW_MAX + 8];
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': unknown dtype '%s'", name, shown,
		                         show(dshown, json_string_value(dtype)));
	}

	if (!json_is_array(shape))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': shape is not an array", name, shown);
	if (json_array_size(shape) > SLUICE_ST_MAX_DIMS)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': shape has %zu dimensions (at most %d)",
		                         name, shown, json_array_size(shape), SLUICE_ST_MAX_DIMS);
	t->ndim = (unsigned)json_array_size(shape);
	for (i = 0; i < t->ndim; i++) {
		x = json_array_get(shape, i);
		if (!json_is_integer(x))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: tensor '%s': shape[%zu] is not an integer",
			                         name, shown, i);
		if (json_integer_value(x) < 0)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: tensor '%s': shape[%zu] is negative (%lld)",
			                         name, shown, i, (long long)json_integer_value(x));
		t->shape[i] = (uint64_t)json_integer_value(x);
		if (mul_u64(&numel, numel, t->shape[i]) < 0)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: tensor '%s': shape product overflows 64 bits",
			                         name, shown);
	}

	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    get_offset(&t->begin, json_array_get(offs, 0)) < 0 ||
	    get_offset(&t->end, json_array_get(offs, 1)) < 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': data_offsets is not [begin, end] of two "
		                         "non-negative integers",
		                         name, shown);
	if (t->begin > t->end)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: tensor '%s': data_offsets begin %llu is after end %llu", name, shown,
		        (unsigned long long)t->begin, (unsigned long long)t->end);

	if (mul_u64(&nbytes, numel, dtypes[t->dtype].size) < 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: tensor '%s': shape x dtype size overflows 64 bits",
		                         name, shown);
	if (nbytes != t->end - t->begin)
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "%s: tensor '%s': shape x dtype does not match data_offsets "
		        "(%llu elements x %zu bytes of %s = %llu bytes, data_offsets "
		        "[%llu, %llu] span %llu bytes)",
		        name, shown, (unsigned long long)numel, dtypes[t->dtype].size,
		        dtypes[t->dtype].name, (unsigned long long)nbytes,
		        (unsigned long long)t->begin, (unsigned long long)t->end,
		        (unsigned long long)(t->end - t->begin));
	return SLUICE_OK;
}

static int parse_metadata(sluice_ctx *ctx, char **out, json_t *meta, const char *name)
{
	const char *k;
	json_t *v;
	char *s;

	if (!json_is_object(meta))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: __metadata__ is not a JSON object", name);
	json_object_foreach(meta, k, v)
	{
		char kshown[SHOW_MAX + 8];
		if (!json_is_string(v))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: __metadata__ key '%s' is not a string", name,
			                         show(kshown, k));
	}
	if (!(s = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS)))
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "%s: cannot re-encode __metadata__",
		                         name);
	/* Copied so the caller can free() it and the allocation is fault-injectable. */
	*out = sluice__strdup(ctx, s);
	free(s);
	return *out ? SLUICE_OK : SLUICE_ENOMEM;
}

struct order {
	uint64_t begin, end;
	size_t idx;
};

/*
 * Zero-size tensors sort before a tensor starting at the same offset (by
 * end), and ties keep header order (by index), so the order is total and
 * the tiling walk below sees a zero-size tensor where it sits.
 */
static int order_cmp(const void *pa, const void *pb)
{
	const struct order *a = pa, *b = pb;

	if (a->begin != b->begin)
		return a->begin < b->begin ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sort the tensors by begin and check they tile [0, data_len) exactly. */
static int sort_and_tile(sluice_ctx *ctx, sluice_st_header *h, const char *name)
{
	char s1[SHOW_MAX + 8], s2[SHOW_MAX + 8];
	uint64_t data_len = h->file_size - h->data_start, pos = 0;
	sluice_st_tensor *sorted = NULL, *prev = NULL;
	struct order *ord = NULL;
	size_t i;
	int error = SLUICE_OK;

	if (h->ntensors > 0) {
		if (!(ord = sluice__calloc(ctx, h->ntensors, sizeof(*ord))) ||
		    !(sorted = sluice__calloc(ctx, h->ntensors, sizeof(*sorted)))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		for (i = 0; i < h->ntensors; i++) {
			ord[i].begin = h->tensors[i].begin;
			ord[i].end = h->tensors[i].end;
			ord[i].idx = i;
		}
		qsort(ord, h->ntensors, sizeof(*ord), order_cmp);
		for (i = 0; i < h->ntensors; i++)
			sorted[i] = h->tensors[ord[i].idx];
		free(h->tensors);
		h->tensors = sorted;
		sorted = NULL;
	}

	for (i = 0; i < h->ntensors; i++) {
		sluice_st_tensor *t = &h->tensors[i];

		if (t->begin > pos) {
			if (prev)
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: gap of %llu bytes between tensor '%s' (ends at %llu) "
				        "and tensor '%s' (begins at %llu)",
				        name, (unsigned long long)(t->begin - pos),
				        show(s1, prev->name), (unsigned long long)pos,
				        show(s2, t->name), (unsigned long long)t->begin);
			else
				error = sluice_ctx__error(
				        ctx, SLUICE_EINVALID,
				        "%s: gap of %llu bytes at the start of the data section "
				        "before "
				        "tensor '%s' (the first tensor must begin at 0)",
				        name, (unsigned long long)t->begin, show(s1, t->name));
			goto done;
		}
		if (t->begin < pos) {
			/* pos > 0 here, so there is a previous tensor. */
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: overlap between tensor '%s' [%llu, %llu] and tensor '%s' "
			        "[%llu, %llu]",
			        name, show(s1, prev->name), (unsigned long long)prev->begin,
			        (unsigned long long)prev->end, show(s2, t->name),
			        (unsigned long long)t->begin, (unsigned long long)t->end);
			goto done;
		}
		if (t->end > data_len) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: tensor '%s' data_offsets [%llu, %llu] run past end of file "
			        "(data section is %llu bytes)",
			        name, show(s1, t->name), (unsigned long long)t->begin,
			        (unsigned long long)t->end, (unsigned long long)data_len);
			goto done;
		}
		pos = t->end;
		prev = t;
	}
	if (pos != data_len) {
		if (prev)
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: %llu bytes after the last tensor '%s' are not "
			        "part of any tensor",
			        name, (unsigned long long)(data_len - pos), show(s1, prev->name));
		else
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: %llu bytes after the header are not part of "
			                          "any tensor (the header lists none)",
			                          name, (unsigned long long)data_len);
	}
done:
	free(ord);
	free(sorted);
	return error;
}

static int parse_json(sluice_ctx *ctx, sluice_st_header *h, const unsigned char *js, size_t n,
                      const char *name)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	const char *key;
	size_t end;
	int error = SLUICE_OK;

	if (!sluice__utf8_valid(js, n))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: safetensors header is not UTF-8", name);
	/* The reference implementation also refuses anything not starting with '{'. */
	if (js[0] != '{')
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: safetensors header is not a JSON object (it does not "
		                         "begin with '{')",
		                         name);
	/*
	 * The EOF check is off so that jansson reports where the object ended:
	 * the spec allows only 0x20 padding after it, where jansson's own check
	 * would also let tabs and newlines through.
	 */
	root = json_loadb((const char *)js, n, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK,
	                  &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: safetensors header has a duplicate tensor name "
			        "or repeated field: %s (line %d, column %d)",
			        name, jerr.text, jerr.line, jerr.column);
		else
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: safetensors header is not JSON: %s (line %d, "
			        "column %d)",
			        name, jerr.text, jerr.line, jerr.column);
		goto done;
	}
	if (!json_is_object(root)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: safetensors header is not a JSON object", name);
		goto done;
	}
	if (jerr.position < 0 || (size_t)jerr.position > n) {
		error = sluice_ctx__error(ctx, SLUICE_ERROR,
		                          "%s: JSON parser reported an impossible position", name);
		goto done;
	}
	for (end = (size_t)jerr.position; end < n; end++) {
		if (js[end] != ' ') {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: safetensors header has byte 0x%02x after the "
			        "JSON object at offset %zu (only spaces may pad it)",
			        name, js[end], end);
			goto done;
		}
	}

	h->ntensors = 0;
	if ((v = json_object_get(root, "__metadata__")) != NULL &&
	    (error = parse_metadata(ctx, &h->metadata, v, name)) < 0)
		goto done;
	if (json_object_size(root) > (v ? 1 : 0) &&
	    !(h->tensors = sluice__calloc(ctx, json_object_size(root), sizeof(*h->tensors)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	/* jansson keeps keys in document order, which the stable sort relies on. */
	json_object_foreach(root, key, v)
	{
		sluice_st_tensor *t;
		size_t klen = strlen(key);

		if (strcmp(key, "__metadata__") == 0)
			continue;
		if (klen == 0) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: empty tensor name",
			                          name);
			goto done;
		}
		if (klen > MAX_NAME) {
			char shown[SHOW_MAX + 8];
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: tensor '%s': name is %zu bytes (at most %d)",
			                          name, show(shown, key), klen, MAX_NAME);
			goto done;
		}
		t = &h->tensors[h->ntensors];
		if ((error = parse_tensor(ctx, t, key, v, name)) < 0)
			goto done;
		if (!(t->name = sluice__malloc(ctx, klen + 1))) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		memcpy(t->name, key, klen + 1);
		h->ntensors++;
	}
	error = sort_and_tile(ctx, h, name);
done:
	json_decref(root);
	return error;
}

int sluice_safetensors__parse(sluice_ctx *ctx, sluice_st_header *out, const unsigned char *buf,
                              size_t len, uint64_t file_size, const char *name)
{
	sluice_st_header h;
	uint64_t n = 0;
	int error;

	memset(&h, 0, sizeof(h));
	memset(out, 0, sizeof(*out));
	if (!name)
		name = "safetensors buffer";
	if ((error = check_prefix(ctx, &n, buf, len, file_size, name)) < 0)
		return error;
	if (len - 8 < n)
		return sluice_ctx__error(ctx, SLUICE_EUSAGE,
		                         "%s: buffer holds %zu bytes but the header needs %llu",
		                         name, len, (unsigned long long)(8 + n));
	h.header_len = n;
	h.data_start = 8 + n;
	h.file_size = file_size;
	if ((error = parse_json(ctx, &h, buf + 8, (size_t)n, name)) < 0)
		goto done;
	*out = h;
	memset(&h, 0, sizeof(h));
done:
	sluice_safetensors__dispose(&h);
	return error;
}

int sluice_safetensors__read(sluice_ctx *ctx, sluice_st_header *out, int fd, uint64_t file_size,
                             const char *name)
{
	unsigned char prefix[8], *buf = NULL;
	uint64_t n = 0;
	int error;

	memset(out, 0, sizeof(*out));
	if (file_size < 8)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "%s: not a safetensors file: shorter than 8 bytes", name);
	if ((error = sluice_io__pread_all(ctx, fd, prefix, 8, 0, name)) < 0 ||
	    (error = check_prefix(ctx, &n, prefix, 8, file_size, name)) < 0)
		return error;
	/* n <= SLUICE_ST_MAX_HEADER, so 8 + n fits in size_t. */
	if (!(buf = sluice__malloc(ctx, (size_t)(8 + n))))
		return SLUICE_ENOMEM;
	memcpy(buf, prefix, 8);
	if ((error = sluice_io__pread_all(ctx, fd, buf + 8, (size_t)n, 8, name)) < 0)
		goto done;
	error = sluice_safetensors__parse(ctx, out, buf, (size_t)(8 + n), file_size, name);
done:
	free(buf);
	return error;
}

/* memmem without relying on the GNU extension. */
int sluice_safetensors__header(sluice_ctx *ctx, sluice_buf *out, uint64_t *data_len,
                               const sluice_st_spec *t, size_t n, const char *const *meta,
                               size_t nmeta)
{
	json_t *root = json_object(), *m = NULL;
	char *text = NULL;
	uint64_t off = 0;
	size_t len, pad;
	unsigned char n8[8];
	int error = SLUICE_OK;

	if (!root)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
	if (nmeta) {
		if (!(m = json_object()) || json_object_set_new(root, "__metadata__", m) < 0)
			goto nomem;
		for (size_t i = 0; i < nmeta; i++)
			if (json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1])) < 0)
				goto nomem;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t bytes = dtypes[t[i].dtype].size;
		json_t *e, *shape;

		if (!t[i].name[0] || !strcmp(t[i].name, "__metadata__") ||
		    json_object_get(root, t[i].name) || t[i].ndim > SLUICE_ST_MAX_DIMS) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "safetensors: tensor '%s' is repeated, reserved, "
			                          "unnamed or has more than %d dimensions",
			                          t[i].name, SLUICE_ST_MAX_DIMS);
			goto done;
		}
		if (!(shape = json_array()))
			goto nomem;
		for (unsigned d = 0; d < t[i].ndim; d++) {
			if (mul_u64(&bytes, bytes, t[i].shape[d]) < 0 ||
			    t[i].shape[d] > (uint64_t)INT64_MAX) {
				json_decref(shape);
				goto overflow;
			}
			json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
		}
		if (off > UINT64_MAX - bytes || off + bytes > (uint64_t)INT64_MAX) {
			json_decref(shape);
			goto overflow;
		}
		e = json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtypes[t[i].dtype].name, "shape", shape,
		              "data_offsets", (json_int_t)off, (json_int_t)(off + bytes));
		if (!e || json_object_set_new(root, t[i].name, e) < 0)
			goto nomem;
		off += bytes;
	}
	if (!(text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		goto nomem;
	len = strlen(text);
	pad = (8 - (8 + len) % 8) % 8;
	sluice__st64(n8, (uint64_t)(len + pad));
	if ((error = sluice_buf__put(ctx, out, n8, 8)) < 0 ||
	    (error = sluice_buf__put(ctx, out, text, len)) < 0 ||
	    (error = sluice_buf__put(ctx, out, "        ", pad)) < 0)
		goto done;
	*data_len = off;
	goto done;
overflow:
	error = sluice_ctx__error(ctx, SLUICE_EINVALID, "safetensors: tensor sizes overflow");
	goto done;
nomem:
	error = sluice_ctx__error(ctx, SLUICE_ENOMEM,
	                          "out of memory building a safetensors header");
done:
	free(text);
	json_decref(root);
	return error;
}

static bool contains(const unsigned char *buf, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	if (len < n)
		return false;
	for (i = 0; i + n <= len; i++) {
		if (buf[i] == (unsigned char)needle[0] && memcmp(buf + i, needle, n) == 0)
			return true;
	}
	return false;
}

sluice_sniff sluice_safetensors__sniff_pickle(const unsigned char *buf, size_t len)
{
	static const char pkl[] = "data.pkl";
	const size_t pkl_len = sizeof(pkl) - 1;

	/* PROTO opcode (0x80) and a protocol torch and modern Python write. */
	if (len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5)
		return SLUICE_SNIFF_PICKLE;
	if (len >= 30 && memcmp(buf, "PK\x03\x04", 4) == 0) {
		/* Local file header: the name's length is at 26, the name at 30. */
		size_t nlen = (size_t)buf[26] | (size_t)buf[27] << 8;

		if (nlen >= pkl_len && nlen <= len - 30 &&
		    memcmp(buf + 30 + nlen - pkl_len, pkl, pkl_len) == 0)
			return SLUICE_SNIFF_TORCH_ZIP;
		/* Otherwise the pickle may be a later entry, named in the central directory. */
		if (contains(buf, len, pkl))
			return SLUICE_SNIFF_TORCH_ZIP;
	}
	return SLUICE_SNIFF_NONE;
}
