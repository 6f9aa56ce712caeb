/*-------------------------------------------------------------------------
 *
 * recordcodec.c
 *	  The stored form of a row record (kvlsm/table.h: KvlsmRowRecord and,
 *	  for an INSERT, the row version's tuple): encoding, decoding, and the
 *	  one change made in place (freezing an xid).
 *
 * Until 0.3 a record was the 32-byte KvlsmRowRecord struct followed by a
 * whole MinimalTuple: most of the struct's fields are zero in most records
 * (successor, expires, spec_token, lockmode, flags), and the tuple's first
 * ten bytes (t_len and padding) are implied by the value's length.  That
 * was 42 bytes a heap tuple does not spend (issue 23).  Records are now
 * written lean:
 *
 *	byte 0		KVLSM_REC_LEAN | which optional fields follow (LEAN_HAS_*)
 *				| kind (3 bits)
 *	bytes 1-4	xid, 4 bytes (fixed, so that freezing rewrites it in place)
 *	varint		cid
 *	LOCK		lockmode (1 byte)
 *	optional	flags (varint), spec_token (varint), successor (varint),
 *				expires (8 bytes)
 *	INSERT		the tuple from t_infomask2 on (a MinimalTuple without
 *				t_len and its padding)
 *
 * An INSERT thus costs 6 bytes of record (xid, cid < 128) and the tuple's
 * 6 bytes before its data, and the SSTable entry 16 bytes of header and 8
 * of key: 36 bytes, where heap spends 28 (a 24-byte tuple header and a
 * 4-byte line pointer); issue 23 asks for no more than heap's plus 8.
 *
 * A record of the old form begins with its bare kind (1-6), so both forms
 * are told apart by the first byte and old files are read as they are, with
 * no format version to check: compaction carries old records over as they
 * are, and a rewrite (VACUUM FULL, CLUSTER, ALTER TABLE) writes them lean.
 * Everything is stored unaligned and copied out byte by byte.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"

#include "kvlsm/table.h"

#define LEAN_KIND_MASK		0x07
#define LEAN_HAS_FLAGS		0x08
#define LEAN_HAS_SPEC		0x10
#define LEAN_HAS_SUCCESSOR	0x20
#define LEAN_HAS_EXPIRES	0x40
#define LEAN_XID_OFFSET		1
#define LEAN_FIXED_SIZE		(LEAN_XID_OFFSET + sizeof(TransactionId))

StaticAssertDecl(KVLSM_REC_PURGE <= LEAN_KIND_MASK, "a kind fits three bits");

/* the old form: the struct, then a whole MinimalTuple */
#define OLD_HEADER_SIZE		32

StaticAssertDecl(sizeof(KvlsmRowRecord) == OLD_HEADER_SIZE,
				 "records written before 0.3 begin with the 32-byte struct");

/*
 * GUC kvlsm.write_old_records (superuser, for tests): write records in the
 * form of 0.2 and older, so that the reading of files an older kvlsm wrote
 * is tested against the code that reads them today (sql/records.sql).
 */
bool		kvlsm_write_old_records = false;

static char *
put_varint(char *p, uint64 v)
{
	while (v >= 0x80)
	{
		*p++ = (char) ((v & 0x7F) | 0x80);
		v >>= 7;
	}
	*p++ = (char) v;
	return p;
}

/* false if the varint runs past 'end' or past 64 bits */
static bool
get_varint(const char **pp, const char *end, uint64 *v)
{
	const char *p = *pp;
	uint64		r = 0;
	int			shift;

	for (shift = 0; shift < 64; shift += 7)
	{
		uint8		b;

		if (p >= end)
			return false;
		b = (uint8) *p++;
		r |= (uint64) (b & 0x7F) << shift;
		if ((b & 0x80) == 0)
		{
			*pp = p;
			*v = r;
			return true;
		}
	}
	return false;
}

/*
 * The stored form of 'rr' and, for an INSERT, of 'mtup', in palloc'd
 * bytes; *len is their length.
 */
char *
kvlsm_encode_row_record(const KvlsmRowRecord *rr, MinimalTuple mtup, int *len)
{
	uint32		bodylen = mtup ? mtup->t_len - MINIMAL_TUPLE_DATA_OFFSET : 0;
	char	   *buf;
	char	   *p;
	uint8		has = 0;

	Assert(rr->kind > 0 && rr->kind <= LEAN_KIND_MASK);
	if (kvlsm_write_old_records)
	{
		*len = OLD_HEADER_SIZE + (mtup ? mtup->t_len : 0);
		buf = palloc(*len);
		memcpy(buf, rr, OLD_HEADER_SIZE);
		if (mtup)
			memcpy(buf + OLD_HEADER_SIZE, mtup, mtup->t_len);
		return buf;
	}
	/* fixed part, cid, lockmode, flags, spec_token, successor, expires */
	buf = p = palloc(LEAN_FIXED_SIZE + 5 + 3 + 1 + 5 + 10 + 8 + bodylen);
	has |= rr->flags ? LEAN_HAS_FLAGS : 0;
	has |= rr->spec_token ? LEAN_HAS_SPEC : 0;
	has |= rr->successor ? LEAN_HAS_SUCCESSOR : 0;
	has |= rr->expires ? LEAN_HAS_EXPIRES : 0;
	*p++ = (char) (KVLSM_REC_LEAN | has | rr->kind);
	memcpy(p, &rr->xid, sizeof(TransactionId));
	p += sizeof(TransactionId);
	p = put_varint(p, rr->cid);
	if (rr->kind == KVLSM_REC_LOCK)
		*p++ = (char) rr->lockmode;
	if (has & LEAN_HAS_FLAGS)
		p = put_varint(p, rr->flags);
	if (has & LEAN_HAS_SPEC)
		p = put_varint(p, rr->spec_token);
	if (has & LEAN_HAS_SUCCESSOR)
		p = put_varint(p, rr->successor);
	if (has & LEAN_HAS_EXPIRES)
	{
		memcpy(p, &rr->expires, sizeof(TimestampTz));
		p += sizeof(TimestampTz);
	}
	if (mtup)
	{
		memcpy(p, (char *) mtup + MINIMAL_TUPLE_DATA_OFFSET, bodylen);
		p += bodylen;
	}
	*len = p - buf;
	return buf;
}

/*
 * Decode a stored record of either form into *rr and, for an INSERT, point
 * *body at its tuple's bytes from t_infomask2 on (*bodylen of them); other
 * kinds get NULL and 0.  Returns false if the bytes are no record.
 */
bool
kvlsm_decode_row_record(const char *val, uint32 vallen, KvlsmRowRecord *rr,
						const char **body, uint32 *bodylen)
{
	const char *end = val + vallen;
	const char *p;
	uint8		has;
	uint64		v;

	*body = NULL;
	*bodylen = 0;
	if (vallen < 1)
		return false;
	if (((uint8) val[0] & KVLSM_REC_LEAN) == 0)
	{
		/* the form written before 0.3 */
		if (vallen < OLD_HEADER_SIZE)
			return false;
		memcpy(rr, val, OLD_HEADER_SIZE);
		if (rr->kind == KVLSM_REC_INSERT)
		{
			if (vallen < OLD_HEADER_SIZE + offsetof(MinimalTupleData, t_bits))
				return false;
			*body = val + OLD_HEADER_SIZE + MINIMAL_TUPLE_DATA_OFFSET;
			*bodylen = vallen - OLD_HEADER_SIZE - MINIMAL_TUPLE_DATA_OFFSET;
		}
		return true;
	}

	if (vallen < LEAN_FIXED_SIZE + 1)
		return false;
	memset(rr, 0, sizeof(*rr));
	rr->kind = (uint8) val[0] & LEAN_KIND_MASK;
	has = (uint8) val[0];
	if (rr->kind == 0 || rr->kind > KVLSM_REC_PURGE)
		return false;
	memcpy(&rr->xid, val + LEAN_XID_OFFSET, sizeof(TransactionId));
	p = val + LEAN_FIXED_SIZE;
	if (!get_varint(&p, end, &v) || v > PG_UINT32_MAX)
		return false;
	rr->cid = (CommandId) v;
	if (rr->kind == KVLSM_REC_LOCK)
	{
		if (p >= end)
			return false;
		rr->lockmode = (uint8) *p++;
	}
	if (has & LEAN_HAS_FLAGS)
	{
		if (!get_varint(&p, end, &v) || v > PG_UINT16_MAX)
			return false;
		rr->flags = (uint16) v;
	}
	if (has & LEAN_HAS_SPEC)
	{
		if (!get_varint(&p, end, &v) || v > PG_UINT32_MAX)
			return false;
		rr->spec_token = (uint32) v;
	}
	if (has & LEAN_HAS_SUCCESSOR)
	{
		if (!get_varint(&p, end, &v))
			return false;
		rr->successor = v;
	}
	if (has & LEAN_HAS_EXPIRES)
	{
		if (end - p < (ptrdiff_t) sizeof(TimestampTz))
			return false;
		memcpy(&rr->expires, p, sizeof(TimestampTz));
		p += sizeof(TimestampTz);
	}
	if (rr->kind == KVLSM_REC_INSERT)
	{
		if (end - p < (ptrdiff_t) (offsetof(MinimalTupleData, t_bits) - MINIMAL_TUPLE_DATA_OFFSET))
			return false;
		*body = p;
		*bodylen = end - p;
	}
	else if (p != end)
		return false;
	return true;
}

/* as kvlsm_decode_row_record, raising an error naming the row if it fails */
void
kvlsm_read_row_record(uint64 rowid, const char *val, uint32 vallen,
					  KvlsmRowRecord *rr, const char **body, uint32 *bodylen)
{
	if (!kvlsm_decode_row_record(val, vallen, rr, body, bodylen))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvlsm row %llu has a malformed record of %u bytes",
						(unsigned long long) rowid, vallen)));
}

/* rewrite the xid of a stored record in place (freezing) */
void
kvlsm_row_record_set_xid(char *val, TransactionId xid)
{
	if (((uint8) val[0] & KVLSM_REC_LEAN) == 0)
		memcpy(val + offsetof(KvlsmRowRecord, xid), &xid, sizeof(xid));
	else
		memcpy(val + LEAN_XID_OFFSET, &xid, sizeof(xid));
}

/* a palloc'd MinimalTuple from a stored tuple body */
MinimalTuple
kvlsm_body_to_minimal_tuple(const char *body, uint32 bodylen)
{
	MinimalTuple mt = palloc(bodylen + MINIMAL_TUPLE_DATA_OFFSET);

	memset(mt, 0, MINIMAL_TUPLE_DATA_OFFSET);
	mt->t_len = bodylen + MINIMAL_TUPLE_DATA_OFFSET;
	memcpy((char *) mt + MINIMAL_TUPLE_DATA_OFFSET, body, bodylen);
	return mt;
}

/* does the stored tuple body say the row has out-of-line (TOAST) values? */
bool
kvlsm_body_has_external(const char *body, uint32 bodylen)
{
	uint16		infomask;
	const Size	at = offsetof(MinimalTupleData, t_infomask) - MINIMAL_TUPLE_DATA_OFFSET;

	if (bodylen < at + sizeof(uint16))
		return false;
	memcpy(&infomask, body + at, sizeof(uint16));
	return (infomask & HEAP_HASEXTERNAL) != 0;
}
