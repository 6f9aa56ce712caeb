/*-------------------------------------------------------------------------
 *
 * compress.h
 *	  Compression of SSTable data blocks: lz4 (the default, fastest) and
 *	  zstd (smaller, for space), chosen per relation (option compression)
 *	  and recorded per block in its first page's flags, so one table may
 *	  hold blocks of both after the option changes.  Owned by
 *	  src/engine/compress.c; used by the block builder and the one block
 *	  decoder (sst_block_builder.c, sst_block.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_COMPRESS_H
#define KVLSM_COMPRESS_H

#include "postgres.h"

#include "kvlsm/page.h"

/* zstd's level for data blocks (fast; blocks are small and compressed often) */
#define KVLSM_ZSTD_LEVEL	3

/* compress.c */
extern const char *kvlsm_compression_name(int method);
extern int	kvlsm_compression_by_name(const char *name);
extern uint16 kvlsm_compression_flag(int method);
extern int	kvlsm_compress_bound(int method, int len);
extern int	kvlsm_compress(int method, const char *src, int len, char *dst, int cap);
extern int	kvlsm_decompress(uint16 flags, const char *src, int len, char *dst, int cap);

#endif							/* KVLSM_COMPRESS_H */
