/*
 * core/cdc.c - gear-hash content-defined chunking.
 */
#include "cdc.h"

/*
 * The gear hash shifts left once per byte, so bit k depends on the last
 * k+1 bytes only: the masks test high bits, giving a window of about 48
 * bytes. 18 bits before the average size and 14 after (FastCDC's
 * normalization level 2 around a 2^16 average).
 */
#define MASK_S (~(uint64_t)0 << (64 - 18))
#define MASK_L (~(uint64_t)0 << (64 - 14))

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void sluice_cdc__init(sluice_cdc *c)
{
	/* "sluice-1" in ASCII; fixed forever, see the header. */
	uint64_t state = 0x736c756963652d31ull;
	int i;

	for (i = 0; i < 256; i++)
		c->gear[i] = splitmix64(&state);
}

size_t sluice_cdc__cut(const sluice_cdc *c, const unsigned char *p, size_t n)
{
	const uint64_t *gear = c->gear;
	size_t i, normal;
	uint64_t fp = 0;

	if (n <= SLUICE_CDC_MIN)
		return n;
	if (n > SLUICE_CDC_MAX)
		n = SLUICE_CDC_MAX;
	normal = n < SLUICE_CDC_AVG ? n : SLUICE_CDC_AVG;
	/* Cut points below MIN are never taken, so the hash starts there. */
	for (i = SLUICE_CDC_MIN; i < normal; i++) {
		fp = (fp << 1) + gear[p[i]];
		if (!(fp & MASK_S))
			return i + 1;
	}
	for (; i < n; i++) {
		fp = (fp << 1) + gear[p[i]];
		if (!(fp & MASK_L))
			return i + 1;
	}
	return n;
}
