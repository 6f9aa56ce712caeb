-- records: the lean stored form of row records (issue 23), and the form of
-- kvlsm 0.2 and older, which files written before keep and which is read
-- as it is (kvlsm.write_old_records writes it, for this test)
CREATE TABLE rec (id int PRIMARY KEY, t text, n int) USING kvlsm WITH (memtable_size = '8MB');
CREATE INDEX rec_t ON rec USING kvlsm_idx (t);

-- rows written as kvlsm 0.2 wrote them: inserts, updates, deletes, a row lock
SET kvlsm.write_old_records = on;
INSERT INTO rec SELECT g, 'old ' || g, g FROM generate_series(1, 100) g;
UPDATE rec SET n = -n WHERE id <= 10;
DELETE FROM rec WHERE id BETWEEN 91 AND 100;
BEGIN;
SELECT id FROM rec WHERE id = 20 FOR UPDATE;
COMMIT;
SELECT kvlsm_flush('rec');
RESET kvlsm.write_old_records;

-- the same in the lean form, and lean records over rows written old
INSERT INTO rec SELECT g, 'new ' || g, g FROM generate_series(101, 200) g;
UPDATE rec SET n = -n WHERE id BETWEEN 101 AND 110;
DELETE FROM rec WHERE id BETWEEN 191 AND 200;
UPDATE rec SET t = 'moved ' || id WHERE id BETWEEN 21 AND 30;
DELETE FROM rec WHERE id BETWEEN 31 AND 35;
SELECT kvlsm_flush('rec');

-- the two SSTables: old records carry a 32-byte header and a whole
-- MinimalTuple; lean ones 6 bytes or more and the tuple from t_infomask2 on
SELECT s.rank, d.kind, count(*), min(d.value_bytes), max(d.value_bytes)
  FROM (SELECT id, rank() OVER (ORDER BY id) FROM kvlsm_sstables('rec')) s,
       kvlsm_sstable_dump('rec', s.id) d
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT key, kind, value_bytes, detail FROM kvlsm_sstable_dump('rec',
    (SELECT min(id) FROM kvlsm_sstables('rec'))) WHERE key LIKE '0 %';

CREATE FUNCTION rec_check() RETURNS TABLE (rows bigint, sum_n bigint, old bigint, moved bigint, new bigint)
LANGUAGE sql AS $$
  SELECT count(*), sum(n), count(*) FILTER (WHERE t LIKE 'old%'),
         count(*) FILTER (WHERE t LIKE 'moved%'), count(*) FILTER (WHERE t LIKE 'new%')
    FROM rec $$;
SELECT * FROM rec_check();
SET enable_seqscan = off;
SELECT id, t, n FROM rec WHERE t IN ('old 5', 'moved 25', 'new 105', 'old 33', 'old 95') ORDER BY id;
SELECT id, t, n FROM rec WHERE id IN (5, 20, 25, 33, 95, 105, 195) ORDER BY id;
RESET enable_seqscan;

-- compaction merges both forms; freezing rewrites the xid of either in place
SELECT kvlsm_compact('rec');
SELECT * FROM rec_check();
VACUUM (FREEZE) rec;
SELECT * FROM rec_check();
SELECT count(DISTINCT xid::text) AS xids, min(xid::text) AS frozen
  FROM kvlsm_sstables('rec') s, kvlsm_sstable_dump('rec', s.id) d;
SELECT count(*) AS problems FROM kvlsm_verify('rec');
UPDATE rec SET n = n + 1000 WHERE id IN (5, 105);
SELECT id, t, n FROM rec WHERE id IN (5, 105) ORDER BY id;

-- only a superuser may write the old form
CREATE ROLE rec_user;
SET ROLE rec_user;
SET kvlsm.write_old_records = on;
RESET ROLE;
DROP ROLE rec_user;
DROP FUNCTION rec_check();
DROP TABLE rec;
