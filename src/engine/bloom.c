/*-------------------------------------------------------------------------
 *
 * bloom.c
 *	  Bloom filters of SSTables: key hashes, the filter's shape, and
 *	  setting and testing a key's bits.  See bloom.h.
 *
 * Pure functions on memory: no locks, no WAL, no I/O.  Called by the
 * SSTable builder (sst_builder.c) and walker (sst_walk.c); the reader
 * (sst_reader.c) probes filter pages in place with kvlsm_bloom_bit.
 * kvlsm_key_hash is also the table AM's row-id hash (rowrecord.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "kvlsm/bloom.h"

uint64
kvlsm_key_hash(const char *key, int keylen)
{
	return hash_bytes_extended((const unsigned char *) key, keylen, 0x6b766c73);
}

/* the hash a key enters bloom filters with; false: it enters none */
bool
kvlsm_bloom_key_hash(const KvlsmKeyOps *ops, const char *key, int keylen,
					 uint64 *h)
{
	if (ops != NULL && ops->bloom_hash != NULL)
		return ops->bloom_hash(key, keylen, ops->arg, h);
	*h = kvlsm_key_hash(key, keylen);
	return true;
}

/*
 * The size in bits (a multiple of 8, at least 64) and the number of probes
 * of a filter for 'nhashes' distinct hashes at 'bits_per_key' bits each.
 */
void
kvlsm_bloom_filter_shape(uint32 nhashes, int bits_per_key, uint32 *nbits,
						 int *k)
{
	*nbits = Max(64, nhashes * (uint32) bits_per_key);
	*nbits = TYPEALIGN(8, *nbits);
	*k = (int) (bits_per_key * 0.69);
	*k = Max(1, Min(*k, 30));
}

void
kvlsm_bloom_set(char *bits, uint32 nbits, uint64 h, int k)
{
	int			i;

	for (i = 0; i < k; i++)
	{
		uint32		bit = kvlsm_bloom_bit(h, i, nbits);

		bits[bit / 8] |= (1 << (bit % 8));
	}
}

bool
kvlsm_bloom_test(const char *bits, uint32 nbits, uint64 h, int k)
{
	int			i;

	for (i = 0; i < k; i++)
	{
		uint32		bit = kvlsm_bloom_bit(h, i, nbits);

		if ((bits[bit / 8] & (1 << (bit % 8))) == 0)
			return false;
	}
	return true;
}
