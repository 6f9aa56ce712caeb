-- tools: kvlsm_verify, kvlsm_repair (dry run), SSTable headers and dumps,
-- key histories, and who may call them
CREATE TABLE tl (id int PRIMARY KEY, t text) USING kvlsm WITH (memtable_size = '8MB');
CREATE INDEX tl_t ON tl USING kvlsm_idx (t);
INSERT INTO tl SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT kvlsm_flush('tl'), kvlsm_flush('tl_t');
UPDATE tl SET t = 'changed' WHERE id = 7;
DELETE FROM tl WHERE id = 8;

-- a healthy relation: no problem, nothing to repair
SELECT * FROM kvlsm_verify('tl');
SELECT * FROM kvlsm_verify('tl_t', check_bloom => false);
SELECT action, sstable, detail FROM kvlsm_repair('tl');
SELECT action, sstable, detail FROM kvlsm_repair('tl_t');

-- the header and the entries of the flushed SSTable
SELECT level, entries, data_pages > 0 AS has_data, index_pages, bloom_pages,
       min_seq < max_seq AS seq_range, min_key, max_key, compression
  FROM kvlsm_sstable_header('tl', (SELECT min(id) FROM kvlsm_sstables('tl')));
SELECT key, kind, seq, value_bytes, detail
  FROM kvlsm_sstable_dump('tl', (SELECT min(id) FROM kvlsm_sstables('tl'))) LIMIT 3;
SELECT count(*) AS entries, count(DISTINCT blkno) > 0 AS pages, min(kind), max(kind),
       count(DISTINCT xid::text) AS xids
  FROM kvlsm_sstable_dump('tl', (SELECT min(id) FROM kvlsm_sstables('tl')));
SELECT key, kind, xid IS NULL AS no_xid, value_bytes
  FROM kvlsm_sstable_dump('tl_t', (SELECT min(id) FROM kvlsm_sstables('tl_t')))
  ORDER BY seq LIMIT 2;

-- every version of a key, newest first: by TID or row id for a table, by
-- the first key column for an index
SELECT key, kind, status, detail
  FROM kvlsm_key_history('tl', (SELECT ctid FROM tl WHERE id = 6)::text) ORDER BY seq DESC;
SELECT key, kind, status, detail FROM kvlsm_key_history('tl', '(0,7)') ORDER BY seq DESC;
SELECT key, kind, status, detail FROM kvlsm_key_history('tl', '7') ORDER BY seq DESC;
SELECT count(*) FILTER (WHERE location LIKE 'L% SSTable') AS in_sstables
  FROM kvlsm_key_history('tl', '(0,7)');
SELECT key, kind, status FROM kvlsm_key_history('tl_t', 'v7') ORDER BY seq DESC;
SELECT key, kind FROM kvlsm_key_history('tl_t', 'changed') ORDER BY seq DESC;
SELECT count(*) FROM kvlsm_key_history('tl_t', 'no such value');
SELECT key, kind, status FROM kvlsm_key_history('tl', '(0,1)')
  WHERE (SELECT id FROM tl WHERE ctid = '(0,1)') = 1;

-- bad input
SELECT * FROM kvlsm_sstable_dump('tl', 424242);
SELECT * FROM kvlsm_sstable_header('tl', 0);
SELECT * FROM kvlsm_key_history('tl', '(0,0)');
SELECT * FROM kvlsm_key_history('tl', 'not a key');
SELECT * FROM kvlsm_verify('pg_class');
SELECT * FROM kvlsm_repair('pg_class');

-- the tools are not for PUBLIC, and repair is for the owner only
CREATE ROLE regress_kvlsm_tools;
SET ROLE regress_kvlsm_tools;
SELECT * FROM kvlsm_verify('tl');
SELECT * FROM kvlsm_key_history('tl', '1');
SELECT * FROM kvlsm_repair('tl');
RESET ROLE;
GRANT EXECUTE ON FUNCTION kvlsm_repair(regclass, bool) TO regress_kvlsm_tools;
SET ROLE regress_kvlsm_tools;
SELECT * FROM kvlsm_repair('tl');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION kvlsm_repair(regclass, bool) FROM regress_kvlsm_tools;
DROP ROLE regress_kvlsm_tools;
DROP TABLE tl;
