-- per-table options and the errors users get
CREATE EXTENSION IF NOT EXISTS kvlsm;
CREATE TABLE o1 (id int) USING kvlsm WITH (compression = 'none', memtable_size = '1MB');
ALTER TABLE o1 SET (memtable_size = '2MB', compression = 'lz4');
ALTER TABLE o1 RESET (compression);
SELECT kvlsm_set_option('o1', 'memtable_size', '256kB');
SELECT compression, memtable_size FROM kvlsm_stats('o1');
-- bad values
CREATE TABLE o2 (id int) USING kvlsm WITH (compression = 'brotli');
CREATE TABLE o2 (id int) USING kvlsm WITH (memtable_size = '1kB');
CREATE TABLE o2 (id int) USING kvlsm WITH (nonsense = 1);
CREATE TABLE o2 (id int) USING heap WITH (compression = 'lz4');
SELECT kvlsm_set_option('o1', 'colour', 'blue');
ALTER TABLE o1 SET (compression = 'gzip');
-- heap options still work on heap tables, and kvlsm options mix with them
CREATE TABLE o3 (id int) WITH (fillfactor = 50);
ALTER TABLE o3 SET (compression = 'lz4');
-- unsupported operations give clear errors
CREATE INDEX ON o1 USING brin (id);
CREATE TABLE o4 (a int[]) USING kvlsm;
CREATE INDEX ON o4 USING gin (a);
CREATE TABLE o4p (a int[], k int) PARTITION BY RANGE (k);
CREATE TABLE o4p1 PARTITION OF o4p FOR VALUES FROM (0) TO (10) USING kvlsm;
CREATE INDEX ON o4p USING gin (a);
DROP TABLE o4p;
-- TABLESAMPLE samples TID blocks (SYSTEM) or TIDs (BERNOULLI); deleted rows are never returned
CREATE TABLE osamp (id int, v text) USING kvlsm;
INSERT INTO osamp SELECT g, 'x' FROM generate_series(1, 100000) g;
DELETE FROM osamp WHERE id % 3 = 0;
SELECT count(*) FROM osamp TABLESAMPLE SYSTEM (100);
SELECT count(*) FROM osamp TABLESAMPLE BERNOULLI (100);
SELECT count(*) FROM osamp TABLESAMPLE SYSTEM (0);
SELECT count(*) BETWEEN 2000 AND 12000 AS plausible FROM osamp TABLESAMPLE SYSTEM (10) REPEATABLE (3);
SELECT count(*) BETWEEN 5000 AND 8400 AS plausible FROM osamp TABLESAMPLE BERNOULLI (10) REPEATABLE (3);
SELECT (SELECT array_agg(id ORDER BY id) FROM osamp TABLESAMPLE BERNOULLI (5) REPEATABLE (7)) =
       (SELECT array_agg(id ORDER BY id) FROM osamp TABLESAMPLE BERNOULLI (5) REPEATABLE (7)) AS repeatable,
       (SELECT array_agg(id ORDER BY id) FROM osamp TABLESAMPLE SYSTEM (5) REPEATABLE (7)) =
       (SELECT array_agg(id ORDER BY id) FROM osamp TABLESAMPLE SYSTEM (5) REPEATABLE (7)) AS repeatable_system;
SELECT count(*) FROM osamp TABLESAMPLE BERNOULLI (50) WHERE id % 3 = 0;
SELECT count(*) = 0 AS all_sampled_rows_exist
FROM (SELECT id FROM osamp TABLESAMPLE SYSTEM (30)) s LEFT JOIN osamp USING (id) WHERE osamp.id IS NULL;
DROP TABLE osamp;
-- a row wider than a page after TOAST (STORAGE plain) is stored as heap
-- would store it; one wider than heap takes gets heap's error
CREATE TABLE owide (a bigint, b bigint, c bigint, d bigint, e bigint, f bigint, g bigint, h bigint,
  c1 char(2000), c2 char(2000), c3 char(2000), c4 char(2000), c5 char(100)) USING kvlsm;
ALTER TABLE owide ALTER c1 SET STORAGE plain, ALTER c2 SET STORAGE plain,
  ALTER c3 SET STORAGE plain, ALTER c4 SET STORAGE plain, ALTER c5 SET STORAGE plain;
INSERT INTO owide (a, c1, c2, c3, c4) VALUES (1, 'x', 'y', 'z', 'w');
INSERT INTO owide VALUES (2, 2, 2, 2, 2, 2, 2, 2, 'x', 'y', 'z', 'w', 'v');
SELECT a, length(c4), c4 = 'w' AS intact FROM owide;
-- parallel scans split the row id space between workers
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
INSERT INTO o1 SELECT generate_series(1, 10000);
EXPLAIN (COSTS OFF) SELECT count(*) FROM o1;
SELECT count(*), sum(id) FROM o1;
SET max_parallel_maintenance_workers = 2;
CREATE INDEX o1_id ON o1 (id);
RESET max_parallel_maintenance_workers;
SET enable_seqscan = off;
SELECT count(*) FROM o1 WHERE id BETWEEN 100 AND 199;
RESET enable_seqscan;
-- scroll cursors move both ways, as on heap
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT * FROM o1 WHERE o1 IS NOT NULL;
FETCH 3 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH LAST FROM c;
FETCH BACKWARD 2 FROM c;
FETCH ABSOLUTE 5000 FROM c;
FETCH RELATIVE -1 FROM c;
ROLLBACK;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP TABLE o1, o3, o4, owide;

-- options are recorded where pg_dump keeps them, and re-applied from there
CREATE TABLE o5 (id int) USING kvlsm WITH (compression = 'none', memtable_size = '4MB');
ALTER TABLE o5 SET (memtable_size = '8MB');
SELECT relid, name, value FROM kvlsm_options WHERE relid = 'o5'::regclass ORDER BY name;
SELECT compression, memtable_size FROM kvlsm_stats('o5');
-- what a restore does: the rows come back and the trigger applies them
DELETE FROM kvlsm_options WHERE relid = 'o5'::regclass;
INSERT INTO kvlsm_options VALUES ('o5', 'compression', 'lz4');
INSERT INTO kvlsm_options VALUES ('o5', 'memtable_size', 'huge');
INSERT INTO kvlsm_options VALUES ('o5', 'memtable_size', '1MB');
SELECT compression, memtable_size FROM kvlsm_stats('o5');
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'kvlsm';
DROP TABLE o5;
SELECT count(*) AS options_of_dropped_tables FROM kvlsm_options WHERE relid::oid NOT IN (SELECT oid FROM pg_class);

-- options change the metapage when the transaction commits: a rollback,
-- or a rollback to a savepoint, leaves them as they were
CREATE TABLE otx (id int) USING kvlsm;
BEGIN;
ALTER TABLE otx SET (ttl = '1 second', compression = none, memtable_size = '2MB');
ROLLBACK;
SELECT compression, memtable_size FROM kvlsm_stats('otx');
SELECT count(*) AS recorded FROM kvlsm_options WHERE relid = 'otx'::regclass;
INSERT INTO otx VALUES (1);
SELECT pg_sleep(1.2);
SELECT count(*) AS rows_kept_without_ttl FROM otx;
BEGIN;
ALTER TABLE otx SET (memtable_size = '2MB');
SAVEPOINT s;
SELECT kvlsm_set_option('otx', 'compression', 'none');
ROLLBACK TO s;
SAVEPOINT s2;
ALTER TABLE otx SET (compaction_style = tiered);
RELEASE s2;
-- not yet: at commit
SELECT compression, memtable_size, compaction_style FROM kvlsm_stats('otx');
COMMIT;
SELECT compression, memtable_size, compaction_style FROM kvlsm_stats('otx');
SELECT name, value FROM kvlsm_options WHERE relid = 'otx'::regclass ORDER BY name;
-- a table made in the transaction takes them at once (an abort drops it)
BEGIN;
CREATE TABLE otx2 (id int) USING kvlsm WITH (compression = none);
SELECT compression FROM kvlsm_stats('otx2');
ROLLBACK;
-- a ttl set but not yet committed still keeps foreign keys away
CREATE TABLE opk (id int PRIMARY KEY) USING kvlsm;
BEGIN;
ALTER TABLE opk SET (ttl = '1 day');
CREATE TABLE ofk (id int REFERENCES opk);
ROLLBACK;
BEGIN;
ALTER TABLE opk SET (ttl = '1 day');
ALTER TABLE opk RESET (ttl);
CREATE TABLE ofk (id int REFERENCES opk);
COMMIT;
DROP TABLE ofk, opk, otx;
