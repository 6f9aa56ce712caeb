-- Rows larger than a page.  With STORAGE plain columns a row of up to
-- MaxHeapTupleSize bytes stays one record, which spans log pages while in
-- the memtable and SSTable data pages once flushed; a larger row gets
-- heap's error.  Every change is made to a heap twin, and the two must
-- always hold the same rows.
-- len characters of 94 printable ones, hashed from g: lz4 finds little to
-- compress in them
CREATE FUNCTION lr_val(g int, len int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT string_agg(chr(33 + (hashint4(g * 10000 + i) & 2147483647) % 94), '' ORDER BY i)
     FROM generate_series(1, len) i $$;
CREATE TABLE lr (id int PRIMARY KEY, b text) USING kvlsm WITH (memtable_size = '8MB');
CREATE TABLE lr_h (id int PRIMARY KEY, b text) USING heap;
ALTER TABLE lr ALTER COLUMN b SET STORAGE plain;
ALTER TABLE lr_h ALTER COLUMN b SET STORAGE plain;
CREATE INDEX lr_prefix ON lr USING kvlsm_idx (left(b, 12));
CREATE VIEW lr_diff AS
  SELECT (SELECT count(*) FROM lr) AS rows, (SELECT sum(length(b)) FROM lr) AS bytes,
         (SELECT count(*) FROM (SELECT * FROM lr EXCEPT SELECT * FROM lr_h) x) AS only_kvlsm,
         (SELECT count(*) FROM (SELECT * FROM lr_h EXCEPT SELECT * FROM lr) x) AS only_heap;

-- small rows, rows that fit a page, and rows of 8060-8128 characters
-- (records of more than a page: heap's largest tuples)
INSERT INTO lr SELECT g, lr_val(g, CASE g % 4 WHEN 0 THEN 100 WHEN 1 THEN 7000
                                   ELSE 8060 + (g * 37) % 69 END)
  FROM generate_series(1, 40) g;
INSERT INTO lr_h SELECT * FROM lr;
SELECT * FROM lr_diff;
SELECT id, length(b), b = lr_val(id, length(b)) AS intact FROM lr WHERE id IN (2, 3, 4, 5) ORDER BY id;

-- the largest row heap takes fits; one byte more gets heap's error, on both
INSERT INTO lr VALUES (100, lr_val(100, 8128));
INSERT INTO lr_h VALUES (100, lr_val(100, 8128));
INSERT INTO lr VALUES (101, lr_val(101, 8129));
INSERT INTO lr_h VALUES (101, lr_val(101, 8129));
UPDATE lr SET b = b || 'x' WHERE id = 100;
UPDATE lr_h SET b = b || 'x' WHERE id = 100;

-- updates to and from large rows, deletes, a rolled back large insert
UPDATE lr SET b = lr_val(id + 500, 8100) WHERE id % 4 = 0;
UPDATE lr_h SET b = lr_val(id + 500, 8100) WHERE id % 4 = 0;
UPDATE lr SET b = 'small' || id WHERE id % 4 = 1;
UPDATE lr_h SET b = 'small' || id WHERE id % 4 = 1;
DELETE FROM lr WHERE id % 10 = 3;
DELETE FROM lr_h WHERE id % 10 = 3;
BEGIN;
INSERT INTO lr VALUES (102, lr_val(102, 8110));
ROLLBACK;
SELECT * FROM lr_diff;

-- flushed: the large records are SSTable data blocks spanning pages
SELECT kvlsm_flush('lr'), kvlsm_flush('lr_prefix');
SELECT * FROM lr_diff;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT id, length(b), b = lr_val(id + 500, 8100) AS intact FROM lr WHERE id = 8;
EXPLAIN (COSTS OFF) SELECT id FROM lr WHERE left(b, 12) = left(lr_val(508, 8100), 12);
SELECT id FROM lr WHERE left(b, 12) = left(lr_val(508, 8100), 12);
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT * FROM kvlsm_verify('lr');

-- more of them, a second SSTable, a compaction that rewrites the spans
INSERT INTO lr SELECT g, lr_val(g, 8070 + g % 50) FROM generate_series(200, 230) g;
INSERT INTO lr_h SELECT g, lr_val(g, 8070 + g % 50) FROM generate_series(200, 230) g;
UPDATE lr SET b = lr_val(id, 8127) WHERE id BETWEEN 10 AND 20;
UPDATE lr_h SET b = lr_val(id, 8127) WHERE id BETWEEN 10 AND 20;
SELECT kvlsm_flush('lr');
SELECT kvlsm_compact('lr');
SELECT * FROM lr_diff;
SELECT * FROM kvlsm_verify('lr');

-- an SSTable of large rows only has a two-page data block per row, with
-- compression off and with lz4 (which cannot shrink these rows to a page);
-- 8125 characters make a row just over what one page holds
CREATE TABLE lr2 (id int, b text) USING kvlsm WITH (compression = none);
ALTER TABLE lr2 ALTER COLUMN b SET STORAGE plain;
CREATE TABLE lr3 (id int, b text) USING kvlsm WITH (compression = lz4);
ALTER TABLE lr3 ALTER COLUMN b SET STORAGE plain;
INSERT INTO lr2 SELECT g, lr_val(g, 8125) FROM generate_series(1, 10) g;
INSERT INTO lr3 SELECT g, lr_val(g, 8125) FROM generate_series(1, 10) g;
SELECT kvlsm_flush('lr2'), kvlsm_flush('lr3');
SELECT entries, data_pages, compression
  FROM kvlsm_sstable_header('lr2', (SELECT min(id) FROM kvlsm_sstables('lr2')));
SELECT entries, data_pages
  FROM kvlsm_sstable_header('lr3', (SELECT min(id) FROM kvlsm_sstables('lr3')));
SELECT count(*) AS entries, count(DISTINCT blkno) AS blocks, min(value_bytes) > 8125 AS large
  FROM kvlsm_sstable_dump('lr2', (SELECT min(id) FROM kvlsm_sstables('lr2')));
SELECT count(*), bool_and(b = lr_val(id, 8125)) FROM lr2;
SELECT count(*), bool_and(b = lr_val(id, 8125)) FROM lr3;
SELECT * FROM kvlsm_verify('lr2');
-- a repetitive large row compresses into one page
INSERT INTO lr2 VALUES (11, repeat('ab', 4050));
TRUNCATE lr3;
INSERT INTO lr3 VALUES (11, repeat('ab', 4050));
SELECT kvlsm_flush('lr3');
SELECT entries, data_pages
  FROM kvlsm_sstable_header('lr3', (SELECT min(id) FROM kvlsm_sstables('lr3')));
SELECT length(b) FROM lr3;

DROP TABLE lr, lr_h, lr2, lr3 CASCADE;
DROP FUNCTION lr_val(int, int);
