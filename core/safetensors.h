/*
 * core/safetensors.h - the safetensors header parser, and recognition of
 * pickle files so their refusal can say what they are.
 *
 * Format (huggingface/safetensors): u64 little-endian N, then N bytes of
 * UTF-8 JSON (an object; may end in 0x20 padding), then the data section.
 * Each tensor entry is {"dtype": ..., "shape": [...], "data_offsets":
 * [begin, end]} relative to the data section; "__metadata__" is an optional
 * object of string values. The parser accepts only headers where the
 * tensors tile the data section exactly: no gaps, no overlaps, nothing after
 * the last tensor, and each tensor's byte length is product(shape) x size of
 * its dtype.
 */
#ifndef SLUICE_CORE_SAFETENSORS_H
#define SLUICE_CORE_SAFETENSORS_H

#include "internal.h"

/* The largest header accepted: 100 MB, the reference implementation's limit. */
#define SLUICE_ST_MAX_HEADER (100u * 1000u * 1000u)
#define SLUICE_ST_MAX_DIMS 8

typedef enum {
	SLUICE_DT_BOOL,
	SLUICE_DT_U8,
	SLUICE_DT_I8,
	SLUICE_DT_F8_E5M2,
	SLUICE_DT_F8_E4M3,
	SLUICE_DT_I16,
	SLUICE_DT_U16,
	SLUICE_DT_F16,
	SLUICE_DT_BF16,
	SLUICE_DT_I32,
	SLUICE_DT_U32,
	SLUICE_DT_F32,
	SLUICE_DT_F64,
	SLUICE_DT_I64,
	SLUICE_DT_U64
} sluice_dtype;

typedef struct {
	char *name; /* tensor name, NUL-terminated UTF-8 */
	sluice_dtype dtype;
	unsigned ndim;
	uint64_t shape[SLUICE_ST_MAX_DIMS];
	uint64_t begin, end; /* data_offsets, relative to the data section */
} sluice_st_tensor;

typedef struct {
	uint64_t header_len; /* N */
	uint64_t data_start; /* 8 + N: file offset of the data section */
	uint64_t file_size;
	size_t ntensors;
	sluice_st_tensor *tensors; /* sorted by begin (= file order) */
	char *metadata;            /* "__metadata__" re-encoded as compact JSON, or NULL */
} sluice_st_header;

/* Bytes per element of a dtype. */
size_t sluice_safetensors__dtype_size(sluice_dtype dt);
/* The dtype's name as written in headers ("BF16"). */
const char *sluice_safetensors__dtype_name(sluice_dtype dt);

/*
 * Parse a header. buf holds the file's first len bytes; len must be at least
 * 8 + N (the caller reads the u64 first, see sluice_safetensors__read).
 * file_size is the whole file's size, used to check the data section.
 * name (a path, for messages) is named in every error. Returns 0, or
 * SLUICE_EINVALID with a message naming the file, the tensor and the rule;
 * SLUICE_ENOMEM; SLUICE_EUSAGE if len < 8 + N. On failure *out is zeroed.
 */
int sluice_safetensors__parse(sluice_ctx *ctx, sluice_st_header *out, const unsigned char *buf,
                              size_t len, uint64_t file_size, const char *name);

/*
 * Read and parse the header of an open file of the given size. N is checked
 * against the limit and file_size before the header buffer is allocated.
 * Returns as _parse, or SLUICE_EIO / SLUICE_ECORRUPT (file shorter than
 * file_size) from the read.
 */
int sluice_safetensors__read(sluice_ctx *ctx, sluice_st_header *out, int fd, uint64_t file_size,
                             const char *name);

/* Release what a parsed header holds; accepts a zeroed struct. */
void sluice_safetensors__dispose(sluice_st_header *h);

/* Tensor by name (binary search is not required; linear is fine), or NULL. */
const sluice_st_tensor *sluice_safetensors__find(const sluice_st_header *h, const char *name);

/* One tensor of a safetensors file to be written. */
typedef struct {
	const char *name;
	sluice_dtype dtype;
	unsigned ndim;
	uint64_t shape[SLUICE_ST_MAX_DIMS];
} sluice_st_spec;

/*
 * Append to out the first bytes of a safetensors file holding t[0..n) in
 * that order, packed with no gaps (each tensor's bytes follow the previous
 * one's): u64 N, then N bytes of compact JSON with "__metadata__" first
 * (when nmeta > 0: meta holds nmeta key, value pairs of strings) and the
 * tensors in the given order, padded with spaces so the data section starts
 * at a multiple of 8 (the reference writer aligns it the same way). The
 * bytes depend only on the arguments. *data_len receives the size of the
 * data section the caller must write after them. Returns 0, SLUICE_EINVALID
 * (a repeated or empty name, ndim over SLUICE_ST_MAX_DIMS, a size that
 * overflows) or SLUICE_ENOMEM.
 */
int sluice_safetensors__header(sluice_ctx *ctx, sluice_buf *out, uint64_t *data_len,
                               const sluice_st_spec *t, size_t n, const char *const *meta,
                               size_t nmeta);

typedef enum {
	SLUICE_SNIFF_NONE = 0,
	SLUICE_SNIFF_PICKLE = 1,   /* a raw pickle stream, protocol 2-5 */
	SLUICE_SNIFF_TORCH_ZIP = 2 /* a zip archive holding a pickle (torch.save) */
} sluice_sniff;

/*
 * Recognise pickle content to name it in a refusal. Only called on bytes
 * that have already failed to parse as what they claimed to be: acceptance
 * is decided by what parses, never by the first bytes.
 */
sluice_sniff sluice_safetensors__sniff_pickle(const unsigned char *buf, size_t len);

#endif
