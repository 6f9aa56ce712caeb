-- option ttl: rows end their life ttl after their transaction started
CREATE TABLE tt (id int, v text) USING kvlsm WITH (ttl = '2 seconds');
SELECT name, value FROM kvlsm_options WHERE relid = 'tt'::regclass;
INSERT INTO tt SELECT g, 'x' FROM generate_series(1, 100) g;
SELECT count(*) FROM tt;

-- judged at the snapshot's time: REPEATABLE READ stays repeatable
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM tt;
SELECT pg_sleep(2.5);
SELECT count(*) FROM tt;
COMMIT;
-- a new transaction no longer sees them, nor does an index scan
SELECT count(*) FROM tt;
CREATE INDEX tt_id ON tt (id);
SET enable_seqscan = off;
SELECT count(*) FROM tt WHERE id > 0;
RESET enable_seqscan;

-- compaction reclaims them once VACUUM has removed their index entries
ALTER TABLE tt SET (ttl = '1 hour');
INSERT INTO tt VALUES (1000, 'fresh');
SELECT kvlsm_flush('tt');
SELECT kvlsm_compact('tt');
SELECT sum(entries) AS entries FROM kvlsm_sstables('tt');
VACUUM tt;
SELECT kvlsm_flush('tt');
SELECT kvlsm_compact('tt');
SELECT sum(entries) AS entries FROM kvlsm_sstables('tt');
SELECT id, v FROM tt;
SELECT ttl_rows_dropped > 0 AS ttl_counted FROM kvlsm_stats('tt');

-- the out-of-line values of expired rows go with them (no DELETE ever ran)
CREATE FUNCTION toast_chunks(rel regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s',
                 (SELECT reltoastrelid::regclass FROM pg_class WHERE oid = rel)) INTO n;
  RETURN n;
END $$;
CREATE TABLE tx (id int, big text) USING kvlsm WITH (ttl = '1 second');
INSERT INTO tx SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i)
FROM generate_series(1, 20) g;
SELECT toast_chunks('tx') > 0 AS toasted;
SELECT pg_sleep(1.2);
SELECT count(*) FROM tx;
SELECT kvlsm_flush('tx');
SELECT kvlsm_compact('tx');
SELECT coalesce(sum(entries), 0) AS entries FROM kvlsm_sstables('tx');
SELECT toast_chunks('tx') AS chunks_left;
DROP TABLE tx;
DROP FUNCTION toast_chunks(regclass);

-- expired rows do not block a unique key (dirty snapshots judge them too)
CREATE TABLE tu (id int PRIMARY KEY, v text) USING kvlsm WITH (ttl = '1 second');
INSERT INTO tu VALUES (1, 'old');
INSERT INTO tu VALUES (1, 'dup');
SELECT pg_sleep(1.5);
INSERT INTO tu VALUES (1, 'new');
SELECT * FROM tu;

-- foreign keys and TTL do not mix
CREATE TABLE child (pid int REFERENCES tu (id));
CREATE TABLE child (pid int);
ALTER TABLE child ADD FOREIGN KEY (pid) REFERENCES tu (id);
ALTER TABLE child ADD COLUMN pid2 int REFERENCES tu (id);
CREATE TABLE p2 (id int PRIMARY KEY) USING kvlsm;
ALTER TABLE child ADD FOREIGN KEY (pid) REFERENCES p2 (id);
ALTER TABLE p2 SET (ttl = '1 day');

-- bad values, and turning it off
ALTER TABLE tt SET (ttl = '-1 day');
ALTER TABLE tt SET (ttl = 'banana');
CREATE TABLE th (id int) WITH (ttl = '1 day');
ALTER TABLE tu RESET (ttl);
SELECT name, value FROM kvlsm_options WHERE relid = 'tu'::regclass;
INSERT INTO tu VALUES (2, 'forever');
SELECT pg_sleep(1.2);
SELECT * FROM tu ORDER BY id;

DROP TABLE tt, tu, child, p2;
