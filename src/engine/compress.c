/*-------------------------------------------------------------------------
 *
 * compress.c
 *	  The compression methods of SSTable data blocks (compress.h): lz4 and
 *	  zstd behind one pair of functions, so that the block builder and the
 *	  block decoder name no library.
 *
 * A block is stored compressed only when that saves bytes; its first page
 * then carries KVLSM_PAGE_FLAG_LZ4 or KVLSM_PAGE_FLAG_ZSTD, which is all a
 * reader needs.  zstd keeps one compression context per backend (its
 * allocation costs more than compressing a block); it lives outside any
 * memory context, in zstd's own allocator, for the life of the process.
 *
 * Callers: sst_block_builder.c and sst_builder.c (compress, bound),
 * sst_block.c (decompress), the option code (names).  No locks, no WAL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <lz4.h>
#include <zstd.h>

#include "kvlsm/compress.h"

static ZSTD_CCtx *zstd_cctx = NULL;
static ZSTD_DCtx *zstd_dctx = NULL;

const char *
kvlsm_compression_name(int method)
{
	switch (method)
	{
		case KVLSM_COMPRESSION_LZ4:
			return "lz4";
		case KVLSM_COMPRESSION_ZSTD:
			return "zstd";
		default:
			return "none";
	}
}

/* the method of a name (any case), or -1 */
int
kvlsm_compression_by_name(const char *name)
{
	if (pg_strcasecmp(name, "lz4") == 0)
		return KVLSM_COMPRESSION_LZ4;
	if (pg_strcasecmp(name, "zstd") == 0)
		return KVLSM_COMPRESSION_ZSTD;
	if (pg_strcasecmp(name, "none") == 0)
		return KVLSM_COMPRESSION_NONE;
	return -1;
}

/* the page flag of a block compressed with 'method' */
uint16
kvlsm_compression_flag(int method)
{
	return method == KVLSM_COMPRESSION_ZSTD ? KVLSM_PAGE_FLAG_ZSTD : KVLSM_PAGE_FLAG_LZ4;
}

/* room the compressed form of 'len' bytes may need */
int
kvlsm_compress_bound(int method, int len)
{
	if (method == KVLSM_COMPRESSION_ZSTD)
		return (int) ZSTD_compressBound(len);
	return LZ4_compressBound(len);
}

/*
 * Compress 'len' bytes of 'src' into 'dst' (room for 'cap'); returns the
 * compressed length, or 0 when it did not work (the caller stores the
 * bytes as they are).
 */
int
kvlsm_compress(int method, const char *src, int len, char *dst, int cap)
{
	if (method == KVLSM_COMPRESSION_ZSTD)
	{
		size_t		clen;

		if (zstd_cctx == NULL)
		{
			zstd_cctx = ZSTD_createCCtx();
			if (zstd_cctx == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory"),
						 errdetail("Could not create a zstd compression context.")));
		}
		clen = ZSTD_compressCCtx(zstd_cctx, dst, cap, src, len, KVLSM_ZSTD_LEVEL);
		return ZSTD_isError(clen) ? 0 : (int) clen;
	}
	if (method == KVLSM_COMPRESSION_LZ4)
		return Max(LZ4_compress_default(src, dst, len, cap), 0);
	return 0;
}

/*
 * Decompress a block stored with page flags 'flags' into 'dst' (room for
 * 'cap'); returns its length, or -1 if the bytes do not decompress.
 */
int
kvlsm_decompress(uint16 flags, const char *src, int len, char *dst, int cap)
{
	if (flags & KVLSM_PAGE_FLAG_ZSTD)
	{
		size_t		dlen;

		if (zstd_dctx == NULL)
		{
			zstd_dctx = ZSTD_createDCtx();
			if (zstd_dctx == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory"),
						 errdetail("Could not create a zstd decompression context.")));
		}
		dlen = ZSTD_decompressDCtx(zstd_dctx, dst, cap, src, len);
		return ZSTD_isError(dlen) ? -1 : (int) dlen;
	}
	return LZ4_decompress_safe(src, dst, len, cap);
}
