-- kvlsm_idx: LSM indexes on heap and kvlsm tables give heap+btree's answers
CREATE EXTENSION IF NOT EXISTS kvlsm;
SET kvlsm.default_memtable_size = '64kB';  -- index LSMs flush to SSTables too

CREATE TABLE hx (id int, k int, t text, n numeric, ts timestamptz, u uuid);
INSERT INTO hx SELECT g, (g * 7919) % 1000, 'key' || lpad(((g * 31) % 500)::text, 4, '0'),
       (g % 97) / 7.0, timestamptz '2024-01-01' + g * interval '1 hour',
       md5(g::text)::uuid
FROM generate_series(1, 5000) g;
CREATE INDEX hx_k ON hx USING kvlsm_idx (k);
CREATE INDEX hx_t ON hx USING kvlsm_idx (t);
CREATE INDEX hx_kt ON hx USING kvlsm_idx (k, t DESC);
CREATE INDEX hx_n ON hx USING kvlsm_idx (n);
CREATE INDEX hx_ts ON hx USING kvlsm_idx (ts);
CREATE INDEX hx_u ON hx USING kvlsm_idx (u);

-- the same table with btree indexes is the reference
CREATE TABLE bx AS SELECT * FROM hx;
CREATE INDEX ON bx (k); CREATE INDEX ON bx (t); CREATE INDEX ON bx (n);

SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hx WHERE k = 42;
SELECT array_agg(id ORDER BY id) FROM hx WHERE k = 42;
SELECT array_agg(id ORDER BY id) FROM bx WHERE k = 42;
SELECT count(*), sum(id) FROM hx WHERE k BETWEEN 100 AND 200;
SELECT count(*), sum(id) FROM bx WHERE k BETWEEN 100 AND 200;
SELECT count(*) FROM hx WHERE k > 990;
SELECT count(*) FROM hx WHERE k < 5;
SELECT count(*) FROM hx WHERE t = 'key0042';
SELECT count(*) FROM hx WHERE t >= 'key0490';
SELECT count(*) FROM hx WHERE n = 1.0;
SELECT count(*) FROM bx WHERE n = 1.00;
SELECT count(*) FROM hx WHERE ts >= '2024-06-01' AND ts < '2024-06-02';
SELECT id FROM hx WHERE u = md5('77')::uuid;
-- ordered output comes from the index
EXPLAIN (COSTS OFF) SELECT k FROM hx ORDER BY k LIMIT 5;
SELECT k, id FROM hx ORDER BY k, id LIMIT 5;
SELECT array_agg(k) = (SELECT array_agg(k ORDER BY k) FROM bx) AS same_order
FROM (SELECT k FROM hx ORDER BY k) s;
-- ORDER BY ... DESC reads the index backward
EXPLAIN (COSTS OFF) SELECT k, id FROM hx ORDER BY k DESC LIMIT 3;
SELECT k FROM hx ORDER BY k DESC LIMIT 3;
SELECT array_agg(k) = (SELECT array_agg(k ORDER BY k DESC) FROM bx WHERE k BETWEEN 10 AND 50) AS same_order_backward
FROM (SELECT k FROM hx WHERE k BETWEEN 10 AND 50 ORDER BY k DESC) s;
-- multi-column with DESC: the index order is (k ASC, t DESC)
EXPLAIN (COSTS OFF) SELECT k, t FROM hx WHERE k < 20 ORDER BY k, t DESC;
SELECT array_agg(k || '/' || t) = (SELECT array_agg(k || '/' || t ORDER BY k, t DESC) FROM bx WHERE k < 20)
       AS same_order_desc
FROM (SELECT k, t FROM hx WHERE k < 20 ORDER BY k, t DESC) s;
-- bitmap scans on heap tables
SET enable_indexscan = off;
SET enable_bitmapscan = on;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hx WHERE k = 3 OR k = 5;
SELECT count(*) FROM hx WHERE k = 3 OR k = 5;
SELECT count(*) FROM bx WHERE k = 3 OR k = 5;
RESET enable_indexscan;
SET enable_bitmapscan = off;

-- writes after the build, updates, deletes, NULLs
INSERT INTO hx (id, k, t) SELECT g, g % 13, NULL FROM generate_series(5001, 6000) g;
UPDATE hx SET k = k + 1000 WHERE id % 10 = 0;
DELETE FROM hx WHERE id % 17 = 0;
INSERT INTO bx (id, k, t) SELECT g, g % 13, NULL FROM generate_series(5001, 6000) g;
UPDATE bx SET k = k + 1000 WHERE id % 10 = 0;
DELETE FROM bx WHERE id % 17 = 0;
SELECT count(*), sum(id) FROM hx WHERE k >= 1000;
SELECT count(*), sum(id) FROM bx WHERE k >= 1000;
SELECT count(*) FROM hx WHERE t IS NULL;
SELECT count(*) FROM hx WHERE k = 5 AND t IS NULL;
SELECT count(*) FROM bx WHERE k = 5 AND t IS NULL;
SELECT count(*) FROM hx WHERE k = NULL;

-- VACUUM removes dead entries (tombstones), results stay right
VACUUM hx;
SELECT count(*), sum(id) FROM hx WHERE k >= 1000;
SELECT count(*), sum(k) FROM hx WHERE k BETWEEN 0 AND 100000;
SELECT count(*), sum(k) FROM bx WHERE k BETWEEN 0 AND 100000;

-- kvlsm_idx on a kvlsm table
CREATE TABLE kx (id int, k int, t text) USING kvlsm;
INSERT INTO kx SELECT g, g % 100, 'v' || g FROM generate_series(1, 3000) g;
CREATE INDEX kx_k ON kx USING kvlsm_idx (k);
INSERT INTO kx SELECT g, g % 100, 'w' || g FROM generate_series(3001, 4000) g;
UPDATE kx SET k = 500 WHERE id <= 10;
SELECT count(*) FROM kx WHERE k = 50;
SELECT array_agg(id ORDER BY id) FROM kx WHERE k = 500;
SELECT kvlsm_flush('kx');
SELECT count(*) FROM kx WHERE k BETWEEN 10 AND 19;

-- prefix scans: LIKE 'abc%' becomes an index range on a "C"-collation index
CREATE INDEX hx_t_c ON hx USING kvlsm_idx (t COLLATE "C");
SET enable_bitmapscan = on;
SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hx WHERE t LIKE 'key004%';
SELECT count(*) FROM hx WHERE t LIKE 'key004%';
SELECT count(*) FROM bx WHERE t LIKE 'key004%';
RESET enable_indexscan;
SET enable_bitmapscan = off;

-- unique kvlsm_idx indexes
CREATE TABLE ux (id int, k text, n int) USING kvlsm;
INSERT INTO ux SELECT g, 'k' || g, g % 3 FROM generate_series(1, 1000) g;
CREATE UNIQUE INDEX ux_id ON ux USING kvlsm_idx (id);
INSERT INTO ux VALUES (1001, 'new', 0);
INSERT INTO ux VALUES (500, 'dup', 0);
UPDATE ux SET id = 1 WHERE id = 2;
UPDATE ux SET k = k || '!' WHERE id = 3;           -- same key, new row version: fine
DELETE FROM ux WHERE id = 4;
INSERT INTO ux VALUES (4, 'reinserted', 0);           -- deleted key can come back
BEGIN;
INSERT INTO ux VALUES (2000, 'x', 0);
INSERT INTO ux VALUES (2000, 'y', 0);
ROLLBACK;
INSERT INTO ux VALUES (2000, 'after rollback', 0);
INSERT INTO ux VALUES (NULL, 'null 1', 0), (NULL, 'null 2', 0);
SELECT count(*), count(DISTINCT id) FROM ux WHERE id IS NOT NULL;
CREATE UNIQUE INDEX ux_n ON ux USING kvlsm_idx (n);
CREATE TABLE unn (a int);
CREATE UNIQUE INDEX unn_a ON unn USING kvlsm_idx (a) NULLS NOT DISTINCT;
INSERT INTO unn VALUES (NULL);
INSERT INTO unn VALUES (NULL);
-- PostgreSQL 15 allows UNIQUE / PRIMARY KEY constraints and ON CONFLICT arbiters only on btree
ALTER TABLE ux ADD CONSTRAINT ux_pk PRIMARY KEY USING INDEX ux_id;
INSERT INTO ux VALUES (1, 'c', 0) ON CONFLICT (id) DO NOTHING;
DROP TABLE ux, unn;

-- what kvlsm_idx does not do yet gets clear errors
CREATE INDEX ON hx USING kvlsm_idx (id) WITH (fillfactor = 50);
CREATE TABLE lt (t text);
INSERT INTO lt SELECT string_agg(md5(g::text), '') FROM generate_series(1, 100) g;
CREATE INDEX ON lt USING kvlsm_idx (t);
CREATE TABLE pt (p point);
CREATE INDEX ON pt USING kvlsm_idx (p);

RESET enable_seqscan;
RESET enable_bitmapscan;
DROP TABLE hx, bx, kx, pt, lt;

-- CREATE INDEX CONCURRENTLY, REINDEX (also CONCURRENTLY) and DROP INDEX on a heap table
CREATE TABLE cx (id int, k int);
INSERT INTO cx SELECT g, g % 50 FROM generate_series(1, 2000) g;
CREATE INDEX CONCURRENTLY cx_k ON cx USING kvlsm_idx (k);
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'cx_k'::regclass;
INSERT INTO cx SELECT g, g % 50 FROM generate_series(2001, 2500) g;
DELETE FROM cx WHERE id % 7 = 0;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cx WHERE k = 7;
SELECT count(*), sum(id) FROM cx WHERE k = 7;
SELECT count(*), sum(id) FROM cx WHERE k BETWEEN 10 AND 20;
REINDEX INDEX cx_k;
SELECT count(*), sum(id) FROM cx WHERE k = 7;
REINDEX INDEX CONCURRENTLY cx_k;
SELECT count(*), sum(id) FROM cx WHERE k = 7;
SELECT count(*), sum(id) FROM cx WHERE k BETWEEN 10 AND 20;
CREATE UNIQUE INDEX CONCURRENTLY cx_id ON cx USING kvlsm_idx (id);
INSERT INTO cx VALUES (1, 1);
DROP INDEX CONCURRENTLY cx_id;
DROP INDEX cx_k;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*), sum(id) FROM cx WHERE k = 7;
DROP TABLE cx;

-- entries of a non-unique index enter the memtable in batches (deferred in
-- the inserting backend): its own reads see them at once, a rolled-back
-- savepoint drops them, an error caught in a subtransaction keeps the
-- parent's, and they are all there after commit
CREATE TABLE dq (id int, k int);
CREATE INDEX dq_k ON dq USING kvlsm_idx (k);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
BEGIN;
INSERT INTO dq SELECT g, g % 10 FROM generate_series(1, 50) g;
SELECT count(*) FROM dq WHERE k = 3;
SAVEPOINT s1;
INSERT INTO dq SELECT g, 3 FROM generate_series(100, 120) g;
SELECT count(*) FROM dq WHERE k = 3;
INSERT INTO dq SELECT g, 3 FROM generate_series(1000, 1999) g;   -- more than a batch
ROLLBACK TO s1;
SELECT count(*) FROM dq WHERE k = 3;
INSERT INTO dq SELECT g, 4 FROM generate_series(300, 310) g;
DO $$
BEGIN
    INSERT INTO dq SELECT g, 5 FROM generate_series(400, 409) g;
    PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
    NULL;
END $$;
COMMIT;
SELECT k, count(*) FROM dq WHERE k IN (3, 4, 5) GROUP BY k ORDER BY k;
SELECT count(*) AS problems FROM kvlsm_verify('dq_k');
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT k, count(*) FROM dq WHERE k IN (3, 4, 5) GROUP BY k ORDER BY k;
-- a parallel worker of a later query in the same transaction sees them too
BEGIN;
INSERT INTO dq SELECT g, 6 FROM generate_series(500, 549) g;
SET LOCAL force_parallel_mode = on;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM dq WHERE k = 6;
SELECT count(*) FROM dq WHERE k = 6;
COMMIT;
DROP TABLE dq;

-- the admin functions work on kvlsm_idx indexes too
CREATE TABLE adm (k int);
CREATE INDEX adm_k ON adm USING kvlsm_idx (k);
INSERT INTO adm SELECT generate_series(1, 1000);
SELECT kvlsm_flush('adm_k');
SELECT name, sstables, entries FROM kvlsm_levels('adm_k') WHERE sstables > 0;
SELECT memtable_entries, sstables FROM kvlsm_stats('adm_k');
DROP TABLE adm;

-- ORDER BY ... DESC on an ascending kvlsm_idx index steps down in windows
-- of a few SSTable blocks: a LIMIT reads a few blocks, not the whole range
CREATE TABLE bw (k int, v text);
INSERT INTO bw SELECT g, 'v' || g FROM generate_series(1, 100000) g;
CREATE INDEX bw_k ON bw USING kvlsm_idx (k);
INSERT INTO bw SELECT g, 'm' || g FROM generate_series(100001, 100100) g;  -- memtable too
DELETE FROM bw WHERE k % 1000 = 7;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT k FROM bw ORDER BY k DESC LIMIT 5;
SELECT k FROM bw ORDER BY k DESC LIMIT 5;
SELECT k FROM bw WHERE k < 50010 ORDER BY k DESC LIMIT 4;
SELECT k FROM bw WHERE k BETWEEN 995 AND 1010 ORDER BY k DESC;
SELECT k FROM bw WHERE k <= 3 ORDER BY k DESC;
-- every row once, in order, also across windows
CREATE FUNCTION bw_check(lo int) RETURNS TABLE (n int, descending bool) LANGUAGE plpgsql AS $$
DECLARE r record; prev int;
BEGIN
  n := 0; descending := true;
  FOR r IN SELECT k FROM bw WHERE k > lo ORDER BY k DESC LOOP
    IF prev IS NOT NULL AND r.k >= prev THEN descending := false; END IF;
    prev := r.k; n := n + 1;
  END LOOP;
  RETURN NEXT;
END $$;
SELECT * FROM bw_check(0);
SELECT * FROM bw_check(40000);
-- buffers the scan touches: a window's worth for the LIMIT (with the
-- SSTables' index blocks on a first use), thousands for every row
CREATE FUNCTION bw_blocks(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO j;
  RETURN (j->0->'Plan'->>'Shared Hit Blocks')::int + (j->0->'Plan'->>'Shared Read Blocks')::int;
END $$;
SELECT bw_blocks('SELECT k FROM bw ORDER BY k DESC LIMIT 5') < 500 AS few_blocks,
       bw_blocks('SELECT k FROM bw ORDER BY k DESC') > 3000 AS many_blocks;
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP FUNCTION bw_blocks(text);
DROP FUNCTION bw_check(int);
DROP TABLE bw;
