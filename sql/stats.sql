-- stats: kvlsm_stats moves the right way after inserts, flushes, lookups
-- and compactions; kvlsm_stat_all, the compaction history, and the reset
CREATE TABLE st (id int PRIMARY KEY, v text) USING kvlsm WITH (memtable_size = '8MB');
SELECT kvlsm_stats_reset('st');
SELECT bytes_ingested, flushes, compactions, point_lookups, wal_bytes,
       write_amplification, stats_reset IS NOT NULL AS reset_time
  FROM kvlsm_stats('st');

INSERT INTO st SELECT g, 'value ' || g FROM generate_series(1, 2000) g;
SELECT bytes_ingested > 0 AS ingested, memtable_entries, log_bytes_written > 0 AS logged,
       wal_bytes > 0 AS wal, flushes, sstables, unflushed_log_bytes > 0 AS unflushed_log
  FROM kvlsm_stats('st');

SELECT kvlsm_flush('st');
SELECT flushes, sstables, flush_bytes_written > 0 AS flushed, memtable_entries,
       write_amplification > 1 AS wa_above_1, unflushed_log_bytes
  FROM kvlsm_stats('st');

-- point lookups through the btree index (one per TID it returns) probe
-- SSTables and bloom filters
SET enable_seqscan = off;
SELECT v FROM st WHERE id = 1234;
SELECT count(*) FROM st WHERE id IN (1, 500, 1999, 2500, 3000);
RESET enable_seqscan;
SELECT point_lookups >= 4 AS lookups, sstable_probes > 0 AS probes,
       bloom_checks > 0 AS bloom_checked, read_amplification > 0 AS read_amp
  FROM kvlsm_stats('st');

-- two more flushes and a full compaction
INSERT INTO st SELECT g, 'value ' || g FROM generate_series(2001, 4000) g;
SELECT kvlsm_flush('st');
UPDATE st SET v = v || ' updated' WHERE id <= 1000;
SELECT kvlsm_flush('st');
SELECT sstables, compaction_debt_bytes, space_amplification AS space_amp_all_in_l0
  FROM kvlsm_stats('st');
SELECT kvlsm_compact('st');
SELECT compactions >= 1 AS compacted, compaction_bytes_written > 0 AS written,
       compaction_bytes_read > 0 AS read, sstables, compaction_debt_bytes,
       space_amplification, compaction_running
  FROM kvlsm_stats('st');
SELECT relation, from_level, to_level, input_tables, output_tables,
       bytes_in > 0 AS bytes_in, bytes_out > 0 AS bytes_out, records_in, abandoned,
       duration_ms >= 0 AS timed
  FROM kvlsm_compactions WHERE relation = 'st'::regclass
  ORDER BY started_at DESC LIMIT 1;

-- the view: every kvlsm relation of the database, with buffer statistics
SELECT pg_stat_force_next_flush();
SELECT count(*) FROM st;
SELECT relation, access_method, blks_hit + blks_read > 0 AS buffers_used,
       cache_hit_ratio BETWEEN 0 AND 1 AS ratio, flushes, sstables
  FROM kvlsm_stat_all WHERE relation = 'st'::regclass;

-- persistent counters survive in the metapage; the reset zeroes them all
SELECT kvlsm_stats_reset('st');
SELECT bytes_ingested, flush_bytes_written, compaction_bytes_written, flushes,
       compactions, point_lookups, sstable_probes, bloom_checks, wal_bytes,
       write_amplification, read_amplification, sstables
  FROM kvlsm_stats('st');
INSERT INTO st VALUES (5000, 'after the reset');
SELECT bytes_ingested > 0 AS counting_again FROM kvlsm_stats('st');

SELECT kvlsm_stats_reset('pg_class');
CREATE ROLE regress_kvlsm_stats;
SET ROLE regress_kvlsm_stats;
SELECT kvlsm_stats_reset('st');
RESET ROLE;
DROP ROLE regress_kvlsm_stats;
DROP TABLE st;

-- a relation dropped after a monitoring query listed it: the statistics
-- functions return NULL (no levels), as pg_relation_size does, so the
-- query does not fail (monitoring/prometheus/kvlsm-queries.yaml)
CREATE TABLE st_gone (id int) USING kvlsm;
SELECT 'st_gone'::regclass::oid AS gone_oid \gset
DROP TABLE st_gone;
SELECT kvlsm_stats(:gone_oid) IS NULL AS stats_null,
       kvlsm_space(:gone_oid) IS NULL AS space_null,
       (SELECT count(*) FROM kvlsm_levels(:gone_oid)) AS levels;
-- a relation that exists but is no kvlsm relation is still refused
SELECT kvlsm_stats('pg_class'::regclass);
