\echo Use "CREATE EXTENSION kvlsm" to load this file. \quit

CREATE FUNCTION kvlsm_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'kvlsm_tableam_handler'
LANGUAGE C STRICT;

CREATE ACCESS METHOD kvlsm TYPE TABLE HANDLER kvlsm_tableam_handler;
COMMENT ON ACCESS METHOD kvlsm IS 'log-structured merge tree table storage';

CREATE FUNCTION kvlsm_flush(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_flush_sql'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_compact(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_compact_sql'
LANGUAGE C STRICT;

-- merge the SSTables holding keys in [lower, upper] (row ids of a table,
-- values of an index's first column; NULL = unbounded) and wait for it
CREATE FUNCTION kvlsm_compact_range(rel regclass, lower text DEFAULT NULL,
    upper text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_compact_range_sql'
LANGUAGE C CALLED ON NULL INPUT;

CREATE FUNCTION kvlsm_workers(OUT pid int, OUT datid oid, OUT busy bool,
    OUT jobs_done bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_workers'
LANGUAGE C STRICT;

-- testing aid: the next process that reaches the named point kills itself
CREATE FUNCTION kvlsm_arm_crash_point(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_arm_crash_point'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION kvlsm_arm_crash_point(text) FROM PUBLIC;

CREATE FUNCTION kvlsm_set_option(rel regclass, name text, value text)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_set_option'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_levels(rel regclass,
    OUT name text, OUT level int, OUT sstables int, OUT entries bigint,
    OUT pages bigint, OUT bytes bigint, OUT target_bytes bigint,
    OUT min_key text, OUT max_key text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_levels'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_sstables(rel regclass,
    OUT id bigint, OUT level int, OUT start_block bigint, OUT pages bigint,
    OUT entries bigint, OUT min_seq bigint, OUT max_seq bigint,
    OUT min_key text, OUT max_key text, OUT bytes bigint, OUT state text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_sstables'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_stats(rel regclass,
    OUT memtable_bytes bigint, OUT memtable_entries bigint,
    OUT frozen_memtables int, OUT sstables int,
    OUT bytes_ingested bigint, OUT log_bytes_written bigint,
    OUT flush_bytes_written bigint, OUT compaction_bytes_written bigint,
    OUT write_amplification float8,
    OUT flushes bigint, OUT compactions bigint,
    OUT point_lookups bigint, OUT sstable_probes bigint,
    OUT bloom_checks bigint, OUT bloom_useful bigint,
    OUT log_pages_written bigint, OUT log_appends bigint,
    OUT rowid_high_water bigint, OUT relation_bytes bigint,
    OUT incarnation bigint, OUT compression text, OUT memtable_size bigint,
    OUT compaction_style text,
    OUT worker_flushes bigint, OUT foreground_flushes bigint,
    OUT worker_compactions bigint, OUT foreground_compactions bigint,
    OUT compactions_abandoned bigint, OUT compaction_bytes_read bigint,
    OUT gc_records_dropped bigint,
    OUT write_stalls bigint, OUT write_slowdowns bigint, OUT stall_ms float8,
    OUT background_work_pending bool, OUT compaction_running bool,
    OUT compaction_debt_bytes bigint, OUT space_amplification float8,
    OUT bloom_false_positives bigint, OUT read_amplification float8,
    OUT wal_bytes bigint, OUT pages_reclaimed bigint, OUT stats_reset timestamptz,
    OUT unflushed_log_bytes bigint, OUT ttl_rows_dropped bigint, OUT jobs_queued int)
RETURNS record
AS 'MODULE_PATHNAME', 'kvlsm_stats'
LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION kvlsm_flush(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_compact(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_compact_range(regclass, text, text) FROM PUBLIC;

CREATE FUNCTION kvlsm_space(rel regclass,
    OUT total_pages bigint, OUT sstable_pages bigint, OUT pending_pages bigint,
    OUT quarantined_pages bigint, OUT free_pages bigint, OUT log_pages bigint,
    OUT log_reserve_pages bigint, OUT unreferenced_pages bigint,
    OUT pages_reclaimed bigint, OUT manifest_block int,
    OUT manifest_continuation_pages bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'kvlsm_space'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_stats_reset(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_stats_reset'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION kvlsm_stats_reset(regclass) FROM PUBLIC;

-- Every kvlsm table and kvlsm_idx index of the database with its counters
-- and PostgreSQL's buffer statistics for it (shared buffers are kvlsm's
-- block cache, so their hit ratio is its cache hit ratio).
CREATE VIEW kvlsm_stat_all AS
SELECT c.oid::regclass AS relation, a.amname AS access_method,
       pg_stat_get_blocks_hit(c.oid) AS blks_hit,
       pg_stat_get_blocks_fetched(c.oid) - pg_stat_get_blocks_hit(c.oid) AS blks_read,
       CASE WHEN pg_stat_get_blocks_fetched(c.oid) > 0
            THEN pg_stat_get_blocks_hit(c.oid)::float8 / pg_stat_get_blocks_fetched(c.oid)
       END AS cache_hit_ratio,
       s.*
  FROM pg_class c
  JOIN pg_am a ON a.oid = c.relam
  CROSS JOIN LATERAL kvlsm_stats(c.oid) s
 WHERE a.amname IN ('kvlsm', 'kvlsm_idx')
   AND c.relkind IN ('r', 'm', 'i')
   AND c.relpersistence <> 't';

-- The recent compactions (a ring of the last 512 of the server, kept in
-- shared memory, empty after a restart).
CREATE FUNCTION kvlsm_compaction_history(
    OUT relid oid, OUT started_at timestamptz, OUT duration_ms float8,
    OUT from_level int, OUT to_level int, OUT input_tables int, OUT output_tables int,
    OUT bytes_in bigint, OUT bytes_out bigint, OUT records_in bigint,
    OUT records_dropped bigint, OUT bottommost bool, OUT freezing bool,
    OUT by_worker bool, OUT abandoned bool)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_compaction_history'
LANGUAGE C STRICT;

CREATE VIEW kvlsm_compactions AS
SELECT relid::regclass AS relation, started_at, duration_ms, from_level, to_level,
       input_tables, output_tables, bytes_in, bytes_out, records_in, records_dropped,
       bottommost, freezing, by_worker, abandoned
  FROM kvlsm_compaction_history();

-- Verification and repair (src/admin/verify.c), in the manner of amcheck
-- and pg_surgery; not for PUBLIC.
CREATE FUNCTION kvlsm_verify(rel regclass, check_bloom bool DEFAULT true,
    OUT blkno bigint, OUT sstable bigint, OUT level int, OUT msg text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_verify'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_repair(rel regclass, dry_run bool DEFAULT true,
    OUT action text, OUT sstable bigint, OUT level int,
    OUT start_block bigint, OUT pages bigint, OUT entries bigint,
    OUT min_key text, OUT max_key text, OUT min_seq bigint, OUT max_seq bigint,
    OUT min_xid xid, OUT max_xid xid, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_repair'
LANGUAGE C STRICT;

-- Live debugging (src/admin/inspect.c); not for PUBLIC: they show data
-- without the privilege checks of a query.
CREATE FUNCTION kvlsm_sstable_header(rel regclass, sstable bigint,
    OUT id bigint, OUT level int, OUT start_block bigint, OUT pages bigint,
    OUT entries bigint, OUT data_pages bigint, OUT index_pages bigint,
    OUT bloom_pages bigint, OUT bloom_bits bigint, OUT bloom_hashes int,
    OUT min_seq bigint, OUT max_seq bigint, OUT min_key text, OUT max_key text,
    OUT compression text)
RETURNS record
AS 'MODULE_PATHNAME', 'kvlsm_sstable_header'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_sstable_dump(rel regclass, sstable bigint,
    OUT blkno bigint, OUT key text, OUT kind text, OUT xid xid,
    OUT seq bigint, OUT value_bytes int, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_sstable_dump'
LANGUAGE C STRICT;

CREATE FUNCTION kvlsm_key_history(rel regclass, key text,
    OUT location text, OUT sstable bigint, OUT level int, OUT key text,
    OUT kind text, OUT xid xid, OUT status text, OUT seq bigint,
    OUT value_bytes int, OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_key_history'
LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION kvlsm_sstable_header(regclass, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_sstable_dump(regclass, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_key_history(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_verify(regclass, bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_repair(regclass, bool) FROM PUBLIC;

CREATE FUNCTION kvlsm_memory(OUT arena_bytes bigint, OUT arena_free_bytes bigint,
    OUT attached_relations bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'kvlsm_memory'
LANGUAGE C STRICT;

-- Per-table options, kept here so that pg_dump preserves them: the utility
-- hook and kvlsm_set_option() record every option they store in a table's
-- metapage; on restore the rows come back and the trigger re-applies them.
CREATE TABLE kvlsm_options (
    relid regclass NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (relid, name)
) USING heap;  -- not the session's default_table_access_method, which may be kvlsm
SELECT pg_catalog.pg_extension_config_dump('kvlsm_options', '');
GRANT SELECT ON kvlsm_options TO PUBLIC;

CREATE FUNCTION kvlsm_options_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'kvlsm_options_trigger'
LANGUAGE C;

CREATE TRIGGER kvlsm_options_apply AFTER INSERT OR UPDATE ON kvlsm_options
FOR EACH ROW EXECUTE FUNCTION kvlsm_options_trigger();

-- The kvlsm_idx index access method and its operator classes.  Ordering is
-- btree's: operator strategies 1-5 are the btree operators (so the planner
-- can use the index for ORDER BY) and support function 1 is the btree
-- comparison function.
CREATE FUNCTION kvlsm_idx_handler(internal)
RETURNS index_am_handler
AS 'MODULE_PATHNAME', 'kvlsm_idx_handler'
LANGUAGE C STRICT;

CREATE ACCESS METHOD kvlsm_idx TYPE INDEX HANDLER kvlsm_idx_handler;
COMMENT ON ACCESS METHOD kvlsm_idx IS 'log-structured merge tree index';

-- Types that compare with each other share a family, with the cross-type
-- operators btree has (an int8 column against an int4 constant, a date
-- column against a timestamp): the planner uses an index only for
-- operators of its family.
CREATE OPERATOR FAMILY integer_ops USING kvlsm_idx;
CREATE OPERATOR CLASS int2_ops DEFAULT FOR TYPE int2 USING kvlsm_idx FAMILY integer_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 btint2cmp(int2, int2);
CREATE OPERATOR CLASS int4_ops DEFAULT FOR TYPE int4 USING kvlsm_idx FAMILY integer_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 btint4cmp(int4, int4);
CREATE OPERATOR CLASS int8_ops DEFAULT FOR TYPE int8 USING kvlsm_idx FAMILY integer_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 btint8cmp(int8, int8);
ALTER OPERATOR FAMILY integer_ops USING kvlsm_idx ADD
    OPERATOR 1 < (int2, int4), OPERATOR 2 <= (int2, int4), OPERATOR 3 = (int2, int4), OPERATOR 4 >= (int2, int4), OPERATOR 5 > (int2, int4),
    FUNCTION 1 (int2, int4) btint24cmp(int2, int4),
    OPERATOR 1 < (int2, int8), OPERATOR 2 <= (int2, int8), OPERATOR 3 = (int2, int8), OPERATOR 4 >= (int2, int8), OPERATOR 5 > (int2, int8),
    FUNCTION 1 (int2, int8) btint28cmp(int2, int8),
    OPERATOR 1 < (int4, int2), OPERATOR 2 <= (int4, int2), OPERATOR 3 = (int4, int2), OPERATOR 4 >= (int4, int2), OPERATOR 5 > (int4, int2),
    FUNCTION 1 (int4, int2) btint42cmp(int4, int2),
    OPERATOR 1 < (int4, int8), OPERATOR 2 <= (int4, int8), OPERATOR 3 = (int4, int8), OPERATOR 4 >= (int4, int8), OPERATOR 5 > (int4, int8),
    FUNCTION 1 (int4, int8) btint48cmp(int4, int8),
    OPERATOR 1 < (int8, int2), OPERATOR 2 <= (int8, int2), OPERATOR 3 = (int8, int2), OPERATOR 4 >= (int8, int2), OPERATOR 5 > (int8, int2),
    FUNCTION 1 (int8, int2) btint82cmp(int8, int2),
    OPERATOR 1 < (int8, int4), OPERATOR 2 <= (int8, int4), OPERATOR 3 = (int8, int4), OPERATOR 4 >= (int8, int4), OPERATOR 5 > (int8, int4),
    FUNCTION 1 (int8, int4) btint84cmp(int8, int4);
CREATE OPERATOR FAMILY float_ops USING kvlsm_idx;
CREATE OPERATOR CLASS float4_ops DEFAULT FOR TYPE float4 USING kvlsm_idx FAMILY float_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 btfloat4cmp(float4, float4);
CREATE OPERATOR CLASS float8_ops DEFAULT FOR TYPE float8 USING kvlsm_idx FAMILY float_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 btfloat8cmp(float8, float8);
ALTER OPERATOR FAMILY float_ops USING kvlsm_idx ADD
    OPERATOR 1 < (float4, float8), OPERATOR 2 <= (float4, float8), OPERATOR 3 = (float4, float8), OPERATOR 4 >= (float4, float8), OPERATOR 5 > (float4, float8),
    FUNCTION 1 (float4, float8) btfloat48cmp(float4, float8),
    OPERATOR 1 < (float8, float4), OPERATOR 2 <= (float8, float4), OPERATOR 3 = (float8, float4), OPERATOR 4 >= (float8, float4), OPERATOR 5 > (float8, float4),
    FUNCTION 1 (float8, float4) btfloat84cmp(float8, float4);
CREATE OPERATOR CLASS numeric_ops DEFAULT FOR TYPE numeric USING kvlsm_idx AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 numeric_cmp(numeric, numeric);
CREATE OPERATOR CLASS text_ops DEFAULT FOR TYPE text USING kvlsm_idx AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 bttextcmp(text, text);
CREATE OPERATOR CLASS bpchar_ops DEFAULT FOR TYPE bpchar USING kvlsm_idx AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 bpcharcmp(bpchar, bpchar);
CREATE OPERATOR CLASS bytea_ops DEFAULT FOR TYPE bytea USING kvlsm_idx AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 byteacmp(bytea, bytea);
CREATE OPERATOR CLASS uuid_ops DEFAULT FOR TYPE uuid USING kvlsm_idx AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 uuid_cmp(uuid, uuid);
CREATE OPERATOR FAMILY datetime_ops USING kvlsm_idx;
CREATE OPERATOR CLASS date_ops DEFAULT FOR TYPE date USING kvlsm_idx FAMILY datetime_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 date_cmp(date, date);
CREATE OPERATOR CLASS timestamp_ops DEFAULT FOR TYPE timestamp USING kvlsm_idx FAMILY datetime_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 timestamp_cmp(timestamp, timestamp);
CREATE OPERATOR CLASS timestamptz_ops DEFAULT FOR TYPE timestamptz USING kvlsm_idx FAMILY datetime_ops AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 timestamptz_cmp(timestamptz, timestamptz);
ALTER OPERATOR FAMILY datetime_ops USING kvlsm_idx ADD
    OPERATOR 1 < (date, timestamp), OPERATOR 2 <= (date, timestamp), OPERATOR 3 = (date, timestamp), OPERATOR 4 >= (date, timestamp), OPERATOR 5 > (date, timestamp),
    FUNCTION 1 (date, timestamp) date_cmp_timestamp(date, timestamp),
    OPERATOR 1 < (date, timestamptz), OPERATOR 2 <= (date, timestamptz), OPERATOR 3 = (date, timestamptz), OPERATOR 4 >= (date, timestamptz), OPERATOR 5 > (date, timestamptz),
    FUNCTION 1 (date, timestamptz) date_cmp_timestamptz(date, timestamptz),
    OPERATOR 1 < (timestamp, date), OPERATOR 2 <= (timestamp, date), OPERATOR 3 = (timestamp, date), OPERATOR 4 >= (timestamp, date), OPERATOR 5 > (timestamp, date),
    FUNCTION 1 (timestamp, date) timestamp_cmp_date(timestamp, date),
    OPERATOR 1 < (timestamp, timestamptz), OPERATOR 2 <= (timestamp, timestamptz), OPERATOR 3 = (timestamp, timestamptz), OPERATOR 4 >= (timestamp, timestamptz), OPERATOR 5 > (timestamp, timestamptz),
    FUNCTION 1 (timestamp, timestamptz) timestamp_cmp_timestamptz(timestamp, timestamptz),
    OPERATOR 1 < (timestamptz, date), OPERATOR 2 <= (timestamptz, date), OPERATOR 3 = (timestamptz, date), OPERATOR 4 >= (timestamptz, date), OPERATOR 5 > (timestamptz, date),
    FUNCTION 1 (timestamptz, date) timestamptz_cmp_date(timestamptz, date),
    OPERATOR 1 < (timestamptz, timestamp), OPERATOR 2 <= (timestamptz, timestamp), OPERATOR 3 = (timestamptz, timestamp), OPERATOR 4 >= (timestamptz, timestamp), OPERATOR 5 > (timestamptz, timestamp),
    FUNCTION 1 (timestamptz, timestamp) timestamptz_cmp_timestamp(timestamptz, timestamp);
CREATE OPERATOR CLASS bool_ops DEFAULT FOR TYPE bool USING kvlsm_idx AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 btboolcmp(bool, bool);
CREATE OPERATOR CLASS oid_ops DEFAULT FOR TYPE oid USING kvlsm_idx AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 btoidcmp(oid, oid);

-- text_pattern_ops: bytewise order whatever the collation (btree's
-- text_pattern_ops operators), and LIKE as strategy 6, which the index
-- answers with the range of the pattern's literal prefix: LIKE 'abc%' on a
-- column of any collation becomes an index range scan.
CREATE OPERATOR CLASS text_pattern_ops FOR TYPE text USING kvlsm_idx AS
    OPERATOR 1 ~<~, OPERATOR 2 ~<=~, OPERATOR 3 =, OPERATOR 4 ~>=~, OPERATOR 5 ~>~,
    OPERATOR 6 ~~ (text, text),
    FUNCTION 1 bttext_pattern_cmp(text, text);

-- Named snapshots (src/table/snapshots.c): durable copies of an MVCC
-- snapshot that keep every version they can see until they are dropped,
-- and time-travel reads of kvlsm tables through them.  The catalog is a
-- plain table so that it survives restarts and replicates; it is not
-- dumped (a restored database has none of the versions a snapshot needs).
CREATE TABLE kvlsm_named_snapshot (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    created_by regrole NOT NULL,
    snap_xmin xid8 NOT NULL,
    snap_xmax xid8 NOT NULL,
    xip xid8[] NOT NULL,        -- every xid in progress for it, subtransactions included
    expires_xid xid8 NOT NULL   -- unusable, and no longer pinning, once the next xid reaches it
) USING heap;
REVOKE ALL ON kvlsm_named_snapshot FROM PUBLIC;
GRANT SELECT ON kvlsm_named_snapshot TO PUBLIC;  -- names and xids; using one still needs ownership of the table

CREATE FUNCTION kvlsm_snapshot_create(name text,
    OUT name text, OUT xmin xid8, OUT created_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'kvlsm_snapshot_create'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION kvlsm_snapshot_drop(name text)
RETURNS bool
AS 'MODULE_PATHNAME', 'kvlsm_snapshot_drop'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION kvlsm_snapshot_use(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'kvlsm_snapshot_use'
LANGUAGE C STRICT VOLATILE;

-- Row-level security policies that read tables see current data while a
-- named snapshot is in use: the planner wraps each such policy qual as
-- kvlsm_rls_scope(kvlsm_rls_enter(), qual), and scans that start while the
-- scope is open use the transaction's own snapshot.  Internal: every role
-- that queries a table with such a policy executes them, so they stay
-- PUBLIC; a scope closes only with the token that opened it.
CREATE FUNCTION kvlsm_rls_enter()
RETURNS bigint
AS 'MODULE_PATHNAME', 'kvlsm_rls_enter'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION kvlsm_rls_scope(token bigint, result boolean)
RETURNS boolean
AS 'MODULE_PATHNAME', 'kvlsm_rls_scope'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION kvlsm_rls_enter() IS 'internal: opens a current-data scope for a row-level security policy while time travelling';
COMMENT ON FUNCTION kvlsm_rls_scope(bigint, boolean) IS 'internal: closes the scope kvlsm_rls_enter() opened and returns the policy''s result';

-- a snapshot pins garbage database-wide: creating and dropping them is not
-- for PUBLIC; using one is, on tables the user owns
REVOKE ALL ON FUNCTION kvlsm_snapshot_create(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kvlsm_snapshot_drop(text) FROM PUBLIC;

-- what a snapshot keeps alive: per kvlsm table, the row versions it sees
-- that nothing else keeps any more, and their bytes; reads every version
-- of every kvlsm table (like pgstattuple)
CREATE FUNCTION kvlsm_snapshot_retained(name text,
    OUT relation regclass, OUT row_versions bigint, OUT bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kvlsm_snapshot_retained'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION kvlsm_snapshot_retained(text) FROM PUBLIC;

-- the latest kvlsm_snapshot_retained() total of a snapshot since the
-- server started (NULL if none)
CREATE FUNCTION kvlsm_snapshot_retained_estimate(name text,
    OUT bytes bigint, OUT estimated_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'kvlsm_snapshot_retained_estimate'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW kvlsm_snapshots AS
SELECT s.name, s.created_at, s.created_by, s.snap_xmin AS xmin, s.snap_xmax AS xmax,
       cardinality(s.xip) AS in_progress,
       age(s.snap_xmin::text::xid) AS xmin_age,
       pg_snapshot_xmax(pg_current_snapshot()) < s.expires_xid AS usable,
       e.bytes AS retained_bytes, e.estimated_at AS retained_estimated_at
  FROM kvlsm_named_snapshot s
  LEFT JOIN LATERAL kvlsm_snapshot_retained_estimate(s.name) e ON true;
