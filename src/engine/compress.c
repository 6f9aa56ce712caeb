/*-------------------------------------------------------------------------
 *
 * compress.c
 *	  The compression methods of SSTable data blocks (compress.h): lz4
 *	  (LZ4HC for levels 3-12) and zstd behind one pair of functions, so that
 *	  the block builder and the block decoder name no library; and the
 *	  specs the options and GUCs take ("zstd:9").
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
#include <lz4hc.h>
#include <zstd.h>

#include "kvlsm/compress.h"
#include "utils/memutils.h"

static ZSTD_CCtx *zstd_cctx = NULL;
static ZSTD_DCtx *zstd_dctx = NULL;
static void *lz4hc_state = NULL;

/* the name of a spec's method */
const char *
kvlsm_compression_name(int32 spec)
{
	switch (KVLSM_SPEC_METHOD(spec))
	{
		case KVLSM_COMPRESSION_LZ4:
			return "lz4";
		case KVLSM_COMPRESSION_ZSTD:
			return "zstd";
		default:
			return "none";
	}
}

/* a spec as the options take it: "zstd", or "zstd:9" for a chosen level */
char *
kvlsm_compression_spec_name(int32 spec)
{
	if (KVLSM_SPEC_LEVEL(spec) == 0)
		return pstrdup(kvlsm_compression_name(spec));
	return psprintf("%s:%d", kvlsm_compression_name(spec), KVLSM_SPEC_LEVEL(spec));
}

/*
 * Parse "method", "method:N" or "method:level=N" (pg_basebackup's
 * spelling).  On failure returns false with *problem saying why, for an
 * errdetail (palloc'd).
 */
bool
kvlsm_compression_parse(const char *value, int32 *spec, char **problem)
{
	const char *colon = strchr(value, ':');
	int			namelen = colon ? colon - value : strlen(value);
	int			method;
	int			maxlevel;
	int			level = 0;

	if (namelen == 3 && pg_strncasecmp(value, "lz4", 3) == 0)
		method = KVLSM_COMPRESSION_LZ4;
	else if (namelen == 4 && pg_strncasecmp(value, "zstd", 4) == 0)
		method = KVLSM_COMPRESSION_ZSTD;
	else if (namelen == 4 && pg_strncasecmp(value, "none", 4) == 0)
		method = KVLSM_COMPRESSION_NONE;
	else
	{
		*problem = pstrdup("Valid methods are \"lz4\", \"zstd\" and \"none\", optionally followed by a level, as in \"zstd:9\".");
		return false;
	}
	if (colon != NULL)
	{
		const char *num = colon + 1;
		char	   *end;
		long		l;

		if (pg_strncasecmp(num, "level=", 6) == 0)
			num += 6;
		if (method == KVLSM_COMPRESSION_NONE)
		{
			*problem = pstrdup("Method \"none\" takes no level.");
			return false;
		}
		errno = 0;
		l = strtol(num, &end, 10);
		maxlevel = method == KVLSM_COMPRESSION_ZSTD ? KVLSM_ZSTD_MAX_LEVEL : KVLSM_LZ4_MAX_LEVEL;
		if (*num == '\0' || *end != '\0' || errno != 0 || l < 1 || l > maxlevel)
		{
			*problem = psprintf("The level of %s is an integer from 1 to %d.",
								method == KVLSM_COMPRESSION_ZSTD ? "zstd" : "lz4", maxlevel);
			return false;
		}
		level = (int) l;
	}
	*spec = KVLSM_COMPRESSION_SPEC(method, level);
	return true;
}

/*
 * The spec of bottommost tables from the options compression and
 * bottommost_compression (KVLSM_BOTTOM_SAME or spec + 1).
 */
int32
kvlsm_bottom_compression(int32 compression, int32 bottom_option)
{
	return bottom_option == KVLSM_BOTTOM_SAME ? compression : bottom_option - 1;
}

/* the page flag of a block compressed with 'spec' */
uint16
kvlsm_compression_flag(int32 spec)
{
	return KVLSM_SPEC_METHOD(spec) == KVLSM_COMPRESSION_ZSTD ?
		KVLSM_PAGE_FLAG_ZSTD : KVLSM_PAGE_FLAG_LZ4;
}

/* room the compressed form of 'len' bytes may need */
int
kvlsm_compress_bound(int32 spec, int len)
{
	if (KVLSM_SPEC_METHOD(spec) == KVLSM_COMPRESSION_ZSTD)
		return (int) ZSTD_compressBound(len);
	return LZ4_compressBound(len);
}

/*
 * Compress 'len' bytes of 'src' into 'dst' (room for 'cap'); returns the
 * compressed length, or 0 when it did not work (the caller stores the
 * bytes as they are).
 */
int
kvlsm_compress(int32 spec, const char *src, int len, char *dst, int cap)
{
	int			level = KVLSM_SPEC_LEVEL(spec);

	if (KVLSM_SPEC_METHOD(spec) == KVLSM_COMPRESSION_ZSTD)
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
		clen = ZSTD_compressCCtx(zstd_cctx, dst, cap, src, len,
								 level > 0 ? level : KVLSM_ZSTD_DEFAULT_LEVEL);
		return ZSTD_isError(clen) ? 0 : (int) clen;
	}
	if (KVLSM_SPEC_METHOD(spec) == KVLSM_COMPRESSION_LZ4)
	{
		/*
		 * LZ4HC needs a state of its own (about 256kB): kept for the life
		 * of the process, as zstd's context is, since a compaction
		 * compresses thousands of blocks.
		 */
		if (level >= KVLSM_LZ4HC_MIN_LEVEL)
		{
			if (lz4hc_state == NULL)
				lz4hc_state = MemoryContextAlloc(TopMemoryContext, LZ4_sizeofStateHC());
			return Max(LZ4_compress_HC_extStateHC(lz4hc_state, src, dst, len, cap, level), 0);
		}
		return Max(LZ4_compress_default(src, dst, len, cap), 0);
	}
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
