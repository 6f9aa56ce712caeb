/*-------------------------------------------------------------------------
 *
 * sst_builder.h
 *	  Inside the SSTable builder: its state, shared by the files that make
 *	  an SSTable.  Only those include this header; everyone else sees
 *	  KvlsmSstBuilder as opaque and uses the functions in sstable.h.
 *
 *	  sst_block_builder.c  packs entries into data blocks and cuts a
 *	                       finished block into page images
 *	  sst_builder.c        the table: begin, add, and finish (header,
 *	                       index and bloom filter pages laid out)
 *	  sst_writer.c         writing the pages (generic WAL, the rate
 *	                       limiter), streaming into a reservation
 *
 * A builder lives in its own memory context, deleted by
 * kvlsm_sst_builder_write.  Pages are written only by sst_writer.c, four
 * full images per generic WAL record; no lock is held between calls.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KVLSM_SST_BUILDER_H
#define KVLSM_SST_BUILDER_H

#include "postgres.h"

#include "access/generic_xlog.h"
#include "lib/stringinfo.h"
#include "storage/bufmgr.h"

#include "kvlsm/sstable.h"

struct KvlsmSstBuilder
{
	Relation	rel;
	bool		compaction;		/* writes wait for the rate limiter */
	BufferAccessStrategy strategy;	/* compaction outputs: a bulk-write ring */
	uint32		charged;		/* pages already taken from the limiter */
	uint64		id;
	int			level;
	int			compression;
	int			bloom_bits_per_key;
	const KvlsmKeyOps *ops;		/* its bloom_hash, if any, hashes keys */
	MemoryContext cxt;

	/* current data page payload */
	char	   *payload;
	uint32		payload_len;
	uint32		page_items;
	char	   *lastkey;
	int			lastkeylen;
	uint32		payload_max;	/* uncompressed bytes a page may take */
	/* lz4: the longest prefix of the payload known to fit compressed */
	uint32		fit_len;
	uint32		fit_items;
	char	   *fit_lastkey;
	int			fit_lastkeylen;
	uint32		next_trial;
	char	   *trialbuf;
	int			page_trials;	/* trial compressions of the current page */
	uint32		trial_len;		/* trialbuf holds payload [0, trial_len)... */
	int			trial_clen;		/* ...compressed to this many bytes */

	/* finished data pages */
	char	  **pages;
	uint32		npages;
	uint32		maxpages;

	/* index: first key of every data page */
	StringInfoData index;		/* entries: uint16 keylen, key */
	uint32		index_entries;

	uint64	   *hashes;
	uint32		nhashes;
	uint32		maxhashes;

	char	   *minkey;
	int			minkeylen;
	char	   *maxkey;
	int			maxkeylen;
	uint64		minseq;
	uint64		maxseq;
	uint64		nbytes;
	uint32		nentries;

	/* laid-out extent */
	char	  **extent;
	uint32		extent_pages;

	/*
	 * Streaming (compaction outputs): data pages go to the reserved extent
	 * [stream_start, stream_start + stream_pages) as they are made, from
	 * its second page on; pages[] keeps only those not written yet, from
	 * 'written' on.  The header, index and filter pages follow at the end.
	 */
	bool		stream;
	BlockNumber stream_start;
	uint32		stream_pages;
	uint32		written;
	uint32		total_pages;	/* of the finished table */
};

/* data pages a streaming builder collects before writing: a record's worth */
#define KVLSM_SST_STREAM_BATCH MAX_GENERIC_XLOG_PAGES

/* sst_block_builder.c */
extern void kvlsm_sst_place_entry(KvlsmSstBuilder *b, const char *key,
								  int keylen, uint64 seq, uint16 flags,
								  const char *val, int vallen);
extern void kvlsm_sst_finish_data_page(KvlsmSstBuilder *b);

/* sst_writer.c */
extern void kvlsm_sst_stream_out(KvlsmSstBuilder *b);

#endif							/* KVLSM_SST_BUILDER_H */
