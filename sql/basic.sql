-- basic kvlsm table behaviour: create, write, read, flush, restart-free checks
CREATE EXTENSION IF NOT EXISTS kvlsm;  -- pg_regress --load-extension created it
SELECT amname, amtype FROM pg_am WHERE amname = 'kvlsm';

CREATE TABLE kv (id int, val text) USING kvlsm;
INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT count(*), sum(id), min(val), max(val) FROM kv;

-- reads merge the memtable with SSTables
SELECT kvlsm_flush('kv');
SELECT name, level, sstables, entries FROM kvlsm_levels('kv') ORDER BY level;
INSERT INTO kv SELECT g, 'w' || g FROM generate_series(1001, 1500) g;
UPDATE kv SET val = 'updated' WHERE id % 100 = 0;
DELETE FROM kv WHERE id % 7 = 0;
SELECT count(*), sum(id), count(*) FILTER (WHERE val = 'updated') FROM kv;
SELECT kvlsm_flush('kv');
SELECT count(*), sum(id), count(*) FILTER (WHERE val = 'updated') FROM kv;

-- several flushes, then a compaction that merges all SSTables into one
INSERT INTO kv VALUES (5000, 'a');
SELECT kvlsm_flush('kv');
INSERT INTO kv VALUES (5001, 'b');
SELECT kvlsm_flush('kv');
SELECT sum(sstables) AS sstables_before FROM kvlsm_levels('kv') WHERE level >= 0;
SELECT kvlsm_compact('kv');
SELECT name, level, sstables FROM kvlsm_levels('kv') WHERE level >= 0 ORDER BY level;
SELECT count(*), sum(id), count(*) FILTER (WHERE val = 'updated') FROM kv;

-- reused extents: more flushes after the compaction freed the old ones
INSERT INTO kv SELECT g, 'z' FROM generate_series(6000, 7000) g;
SELECT kvlsm_flush('kv');
SELECT count(*), sum(id) FROM kv;

-- btree index on a kvlsm table
CREATE INDEX kv_id ON kv (id);
SET enable_seqscan = off;
SELECT * FROM kv WHERE id = 43;
SELECT * FROM kv WHERE id BETWEEN 95 AND 101 ORDER BY id;
SELECT count(*) FROM kv WHERE id > 1400;
RESET enable_seqscan;

-- TID scans and ctid round trip
SELECT count(*) FROM kv WHERE ctid = (SELECT ctid FROM kv WHERE id = 43);
SELECT id FROM kv WHERE ctid IN (SELECT ctid FROM kv WHERE id IN (1, 2, 3)) ORDER BY id;

-- stats are there and write amplification is computed
SELECT sstables >= 1 AS has_sstables, write_amplification > 0 AS wa_positive,
       bytes_ingested > 0 AS ingested
FROM kvlsm_stats('kv');

-- compression none works the same
CREATE TABLE kvn (id int, val text) USING kvlsm WITH (compression = 'none');
INSERT INTO kvn SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;
SELECT kvlsm_flush('kvn');
SELECT count(*), sum(length(val)) FROM kvn;

-- lz4 pages shrink repetitive data
CREATE TABLE kvz (id int, val text) USING kvlsm WITH (compression = 'lz4');
INSERT INTO kvz SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;
SELECT kvlsm_flush('kvz');
SELECT count(*), sum(length(val)) FROM kvz;
SELECT (SELECT sum(pages) FROM kvlsm_levels('kvz')) < (SELECT sum(pages) FROM kvlsm_levels('kvn')) AS lz4_smaller;

-- zstd: hex digits (4 bits of information in 8) shrink with zstd's entropy
-- coding, hardly with lz4; both read back the same
CREATE TABLE kvh4 (id int, val text) USING kvlsm WITH (compression = 'lz4');
CREATE TABLE kvhz (id int, val text) USING kvlsm WITH (compression = 'zstd');
INSERT INTO kvh4 SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 5000) g;
INSERT INTO kvhz SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 5000) g;
SELECT kvlsm_flush('kvh4'), kvlsm_flush('kvhz');
SELECT compression FROM kvlsm_stats('kvhz');
SELECT compression FROM kvlsm_sstable_header('kvhz', (SELECT min(id) FROM kvlsm_sstables('kvhz')));
SELECT (SELECT sum(pages) FROM kvlsm_levels('kvhz')) * 4 < (SELECT sum(pages) FROM kvlsm_levels('kvh4')) * 3
  AS zstd_a_quarter_smaller;
SELECT (SELECT sum(hashtext(val)) FROM kvhz) = (SELECT sum(hashtext(val)) FROM kvh4) AS same_rows,
       (SELECT count(*) FROM kvhz WHERE val = md5(id::text) || md5((-id)::text)) AS zstd_rows_intact;
SELECT count(*) FROM kvlsm_verify('kvhz');
-- the option changes: new tables use lz4, old zstd blocks still read, and a
-- compaction rewrites them all with lz4
ALTER TABLE kvhz SET (compression = 'lz4');
UPDATE kvhz SET val = val WHERE id <= 100;
SELECT kvlsm_flush('kvhz');
SELECT count(*), sum(hashtext(val)) = (SELECT sum(hashtext(val)) FROM kvh4) AS same FROM kvhz;
SELECT kvlsm_compact('kvhz');
SELECT compression FROM kvlsm_sstable_header('kvhz', (SELECT max(id) FROM kvlsm_sstables('kvhz')));
SELECT count(*), sum(hashtext(val)) = (SELECT sum(hashtext(val)) FROM kvh4) AS same FROM kvhz;
SELECT count(*) FROM kvlsm_verify('kvhz');

-- a temporary kvlsm table lives in local buffers
CREATE TEMP TABLE tkv (id int, val text) USING kvlsm;
INSERT INTO tkv SELECT g, 't' FROM generate_series(1, 3000) g;
SELECT kvlsm_flush('tkv');
DELETE FROM tkv WHERE id <= 1000;
SELECT count(*), sum(id) FROM tkv;

-- unlogged kvlsm table
CREATE UNLOGGED TABLE ukv (id int) USING kvlsm;
INSERT INTO ukv SELECT generate_series(1, 100);
SELECT count(*) FROM ukv;

-- kvlsm functions refuse other relations
CREATE TABLE plain (id int);
SELECT kvlsm_flush('plain');
SELECT * FROM kvlsm_stats('plain');

DROP TABLE kv, kvn, kvz, tkv, ukv, plain;

-- dropped and truncated relations give their memtable memory back
SELECT attached_relations AS attached_before FROM kvlsm_memory() \gset
CREATE TABLE kvdrop (id int, v text) USING kvlsm;
INSERT INTO kvdrop SELECT g, repeat('d', 500) FROM generate_series(1, 2000) g;
SELECT arena_free_bytes AS free_with_table FROM kvlsm_memory() \gset
TRUNCATE kvdrop;
INSERT INTO kvdrop VALUES (1, 'x');
DROP TABLE kvdrop;
SELECT attached_relations = :attached_before AS entries_released,
       arena_free_bytes > :free_with_table + 500000 AS memory_released
FROM kvlsm_memory();
BEGIN;
CREATE TABLE kvdrop2 (id int) USING kvlsm;
INSERT INTO kvdrop2 VALUES (1);
ROLLBACK;
SELECT attached_relations = :attached_before AS rolled_back_create_released FROM kvlsm_memory();
CREATE TABLE kvkeep (id int) USING kvlsm;
INSERT INTO kvkeep VALUES (1);
BEGIN;
DROP TABLE kvkeep;
ROLLBACK;
SELECT * FROM kvkeep;
DROP TABLE kvkeep;

-- a memtable larger than the shared arena is flushed when the arena runs short
CREATE TABLE hog (id int, pad text) USING kvlsm WITH (memtable_size = '1GB');
INSERT INTO hog SELECT g, repeat('h', 200) FROM generate_series(1, 300000) g;
SELECT count(*), sum(length(pad)) FROM hog;
SELECT sstables > 0 AS flushed_under_pressure FROM kvlsm_stats('hog');
DROP TABLE hog;

-- many one-row flushes and the (background) compactions between them keep every row
-- (an lz4 data page cut at the end of an SSTable once lost its last entries)
CREATE TABLE manyflush (id int, n int, v text) USING kvlsm;
CREATE PROCEDURE manyflush_fill(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    INSERT INTO manyflush VALUES (i, 1, 'x');
    COMMIT;
    PERFORM kvlsm_flush('manyflush');
  END LOOP;
END $$;
CALL manyflush_fill(1500);
SELECT count(*), sum(id) FROM manyflush;
SELECT (SELECT sum(entries) FROM kvlsm_sstables('manyflush')) AS entries_in_sstables,
       compactions > 0 AS compacted FROM kvlsm_stats('manyflush');
DROP TABLE manyflush;
DROP PROCEDURE manyflush_fill;
