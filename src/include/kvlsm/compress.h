/*-------------------------------------------------------------------------
 *
 * compress.h
 *	  Compression of SSTable data blocks: lz4 (the default, fastest) and
 *	  zstd (smaller, for space), each with a level, chosen per relation for
 *	  the bottommost level (option bottommost_compression) and the levels
 *	  above it (option compression), and recorded per block in its first
 *	  page's flags, so one table holds blocks of both.  Owned by
 *	  src/engine/compress.c; used by the block builder and the one block
 *	  decoder (sst_block_builder.c, sst_block.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_COMPRESS_H
#define KVLSM_COMPRESS_H

#include "postgres.h"

#include "kvlsm/page.h"

/*
 * A compression "spec" is a method and a level in one int32: the method
 * (KvlsmCompression) in the low byte, the level above it, 0 meaning the
 * method's default.  The metapage keeps specs, so a file written before
 * levels existed (a bare method) reads as that method at its default
 * level.  Levels follow PostgreSQL's own compression specifications
 * (pg_basebackup --compress): zstd 1-22, default 3 (fast: data blocks are
 * small and compressed often); lz4 1-12, where 1 and 2 are plain lz4 and
 * 3-12 lz4's high-compression mode (LZ4HC), which reads back as fast.
 */
#define KVLSM_COMPRESSION_SPEC(method, level)	((int32) ((method) | ((level) << 8)))
#define KVLSM_SPEC_METHOD(spec)		((spec) & 0xFF)
#define KVLSM_SPEC_LEVEL(spec)		((spec) >> 8)

#define KVLSM_ZSTD_DEFAULT_LEVEL	3
#define KVLSM_ZSTD_MAX_LEVEL		22
#define KVLSM_LZ4_MAX_LEVEL			12
#define KVLSM_LZ4HC_MIN_LEVEL		3

/*
 * The bottommost_compression option in the metapage: 0 means "as the
 * option compression" (and is what files from before the option hold),
 * else the spec + 1.
 */
#define KVLSM_BOTTOM_SAME			0

/* compress.c */
extern const char *kvlsm_compression_name(int32 spec);
extern char *kvlsm_compression_spec_name(int32 spec);
extern bool kvlsm_compression_parse(const char *value, int32 *spec, char **problem);
extern int32 kvlsm_bottom_compression(int32 compression, int32 bottom_option);
extern uint16 kvlsm_compression_flag(int32 spec);
extern int	kvlsm_compress_bound(int32 spec, int len);
extern int	kvlsm_compress(int32 spec, const char *src, int len, char *dst, int cap);
extern int	kvlsm_decompress(uint16 flags, const char *src, int len, char *dst, int cap);

#endif							/* KVLSM_COMPRESS_H */
