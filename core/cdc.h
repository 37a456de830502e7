/*
 * core/cdc.h - content-defined chunking (a FastCDC-style gear hash with
 * normalized chunking), private to core/chunkstore.c and its tests.
 */
#ifndef SLUICE_CORE_CDC_H
#define SLUICE_CORE_CDC_H

#include "internal.h"

#define SLUICE_CDC_MIN (16u * 1024)
#define SLUICE_CDC_AVG (64u * 1024)
#define SLUICE_CDC_MAX (256u * 1024)
#define SLUICE_FIXED_CHUNK (64u * 1024)

typedef struct {
	uint64_t gear[256];
} sluice_cdc;

/*
 * Fill the gear table. It is generated from a fixed splitmix64 seed, so
 * chunk boundaries (and hence dedup across versions and machines) never
 * change; changing the seed or masks would re-chunk every stored file.
 */
void sluice_cdc__init(sluice_cdc *c);

/*
 * Length of the next chunk at the start of p[0..n): n if n <= MIN, at
 * most MAX, otherwise where the gear hash first hits the mask (a harder
 * mask before AVG, an easier one after, which narrows the size spread).
 */
size_t sluice_cdc__cut(const sluice_cdc *c, const unsigned char *p, size_t n);

#endif
