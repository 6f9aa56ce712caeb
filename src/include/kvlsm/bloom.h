/*-------------------------------------------------------------------------
 *
 * bloom.h
 *	  Bloom filters of SSTables: the hash a key enters a filter with, the
 *	  filter's shape (bits and probes for a number of keys), and setting
 *	  and testing a key's bits.  Owned by src/engine/bloom.c.
 *
 * A filter is a plain bit array of nbits bits (a multiple of 8); a key's
 * hash sets or tests k bits chosen by double hashing with the hash's two
 * halves (kvlsm_bloom_bit).  The bit positions are part of the on-disk
 * format of SSTable bloom filter pages: changing them makes every stored
 * filter answer "absent" for keys it holds.
 *
 * No locks, no WAL, no I/O: the SSTable builder (sst_builder.c) fills a
 * filter in memory, the reader (sst_reader.c) probes the bits of filter
 * pages in shared buffers, and the walker (sst_walk.c) tests a copy.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_BLOOM_H
#define KVLSM_BLOOM_H

#include "postgres.h"

#include "kvlsm/lsm.h"

/* the i-th filter bit of a hash: double hashing with its two halves */
static inline uint32
kvlsm_bloom_bit(uint64 h, uint32 i, uint32 nbits)
{
	return ((uint32) h + i * ((uint32) (h >> 32) | 1)) % nbits;
}

/* bloom.c */
extern uint64 kvlsm_key_hash(const char *key, int keylen);
extern bool kvlsm_bloom_key_hash(const KvlsmKeyOps *ops, const char *key,
								 int keylen, uint64 *h);
extern void kvlsm_bloom_filter_shape(uint32 nhashes, int bits_per_key,
									 uint32 *nbits, int *k);
extern void kvlsm_bloom_set(char *bits, uint32 nbits, uint64 h, int k);
extern bool kvlsm_bloom_test(const char *bits, uint32 nbits, uint64 h, int k);

#endif							/* KVLSM_BLOOM_H */
