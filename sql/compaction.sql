-- compaction: options, manual range compaction, garbage collection, freezing
CREATE TABLE c (id int, k int, pad text) USING kvlsm
  WITH (memtable_size = '64kB', compaction_style = 'tiered');
SELECT compaction_style FROM kvlsm_stats('c');
ALTER TABLE c SET (compaction_style = 'leveled');
SELECT compaction_style FROM kvlsm_stats('c');
SELECT * FROM kvlsm_options WHERE relid = 'c'::regclass ORDER BY name;
ALTER TABLE c SET (compaction_style = 'sideways');
ALTER TABLE c RESET (compaction_style);
SELECT compaction_style FROM kvlsm_stats('c');

-- kvlsm_idx indexes take compaction_style through kvlsm_set_option
CREATE INDEX c_k ON c USING kvlsm_idx (k);
SELECT kvlsm_set_option('c_k', 'compaction_style', 'tiered');
SELECT compaction_style FROM kvlsm_stats('c_k');
SELECT kvlsm_set_option('c_k', 'memtable_size', '1MB');
-- and through CREATE INDEX ... WITH and ALTER INDEX
CREATE INDEX c_k2 ON c USING kvlsm_idx (k) WITH (compaction_style = 'tiered');
SELECT compaction_style FROM kvlsm_stats('c_k2');
ALTER INDEX c_k2 SET (compaction_style = 'leveled');
SELECT compaction_style FROM kvlsm_stats('c_k2');
SELECT name, value FROM kvlsm_options WHERE relid = 'c_k2'::regclass;
CREATE INDEX c_k3 ON c USING kvlsm_idx (k) WITH (ttl = '1 day');
CREATE INDEX c_k3 ON c USING kvlsm_idx (k) WITH (fillfactor = 50);
DROP INDEX c_k2;
SELECT count(*) FROM kvlsm_options WHERE relid::text = 'c_k2';

INSERT INTO c SELECT g, g % 997, repeat('x', 50) FROM generate_series(1, 20000) g;
SELECT kvlsm_flush('c'), kvlsm_flush('c_k');

-- range compaction of a table: row ids; of an index: first column values
SELECT kvlsm_compact_range('c', '0', '5000');
SELECT kvlsm_compact_range('c', NULL, '100');
SELECT kvlsm_compact_range('c_k', '10', '20');
SELECT kvlsm_compact_range('c_k', '500', NULL);
SELECT kvlsm_compact_range('c', 'ten', NULL);
SELECT kvlsm_compact_range('c', '-1', NULL);
SELECT kvlsm_compact_range('c_k', 'x', NULL);
SELECT kvlsm_compact_range('c', '9', '1');   -- empty range: nothing to do
SELECT count(*), sum(k) FROM c;
SET enable_seqscan = off;
SELECT count(*), sum(k) FROM c WHERE k >= 0;
RESET enable_seqscan;
-- the levels are consistent: no SSTable lies outside kvlsm_levels
SELECT (SELECT sum(entries) FROM kvlsm_sstables('c')) =
       (SELECT sum(entries) FROM kvlsm_levels('c') WHERE level >= 0) AS consistent;

-- garbage collection: deleted rows of a table without indexes go at once
CREATE TABLE g (id int, pad text) USING kvlsm;
INSERT INTO g SELECT g, repeat('g', 100) FROM generate_series(1, 5000) g;
DELETE FROM g WHERE id <= 4000;
SELECT kvlsm_flush('g');
SELECT kvlsm_compact('g');
SELECT count(*) FROM g;
SELECT sum(entries) AS entries_left FROM kvlsm_sstables('g');
SELECT gc_records_dropped >= 8000 AS dropped FROM kvlsm_stats('g');

-- rolled back inserts are garbage too
BEGIN;
INSERT INTO g SELECT g, 'rolled back' FROM generate_series(1, 1000) g;
ROLLBACK;
SELECT kvlsm_flush('g');
SELECT kvlsm_compact('g');
SELECT sum(entries) AS entries_left FROM kvlsm_sstables('g');

-- freezing: VACUUM FREEZE moves relfrozenxid forward, and the rows stay
CREATE TABLE fz (id int, v text) USING kvlsm;
INSERT INTO fz SELECT g, 'v' || g FROM generate_series(1, 3000) g;
UPDATE fz SET v = v || '!' WHERE id % 3 = 0;
SELECT txid_current() IS NOT NULL;
SELECT txid_current() IS NOT NULL;
SELECT txid_current() IS NOT NULL;
CREATE TEMP TABLE fz_before AS SELECT age(relfrozenxid) AS a FROM pg_class WHERE relname = 'fz';
SELECT a >= 5 AS old_enough FROM fz_before;
VACUUM FREEZE fz;
SELECT age(c.relfrozenxid) < b.a AS relfrozenxid_advanced FROM pg_class c, fz_before b
WHERE c.relname = 'fz';
SELECT count(*), count(*) FILTER (WHERE v LIKE '%!') FROM fz;
-- a plain VACUUM of a young table leaves relfrozenxid alone
CREATE TEMP TABLE fz_after AS SELECT relfrozenxid FROM pg_class WHERE relname = 'fz';
VACUUM fz;
SELECT c.relfrozenxid = a.relfrozenxid AS unchanged FROM pg_class c, fz_after a
WHERE c.relname = 'fz';

DROP TABLE c, g, fz;

-- the file grows in pre-extended units and shrinks only in VACUUM: after
-- every row is deleted and compacted away, VACUUM gives the free tail back
-- (down to the metapage and the two manifest slots), and the table grows
-- again from there; VACUUM (TRUNCATE false) keeps the file as it is
CREATE TABLE sh (id int, v text) USING kvlsm WITH (memtable_size = '1MB');
INSERT INTO sh SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g;
SELECT kvlsm_flush('sh');
SELECT pg_relation_size('sh') / 8192 >= (SELECT sum(pages) FROM kvlsm_sstables('sh')) AS holds_its_sstables;
DELETE FROM sh;
SELECT kvlsm_flush('sh');
SELECT kvlsm_compact('sh');
CREATE TEMP TABLE sh_size AS SELECT pg_relation_size('sh') / 8192 AS blocks;
SELECT blocks > 3 AS grown FROM sh_size;
VACUUM (TRUNCATE false) sh;
SELECT pg_relation_size('sh') / 8192 = blocks AS kept FROM sh_size;
VACUUM sh;
SELECT pg_relation_size('sh') / 8192 AS blocks_after_vacuum, count(*) FROM sh;
SELECT * FROM kvlsm_verify('sh');
INSERT INTO sh SELECT g, repeat('y', 200) FROM generate_series(1, 20000) g;
SELECT kvlsm_flush('sh');
SELECT count(*), min(v) = max(v) AS same FROM sh;
SELECT * FROM kvlsm_verify('sh');
DROP TABLE sh;
