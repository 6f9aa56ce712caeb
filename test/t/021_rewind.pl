
# Copyright (c) kvlsm authors
#
# pg_rewind of a diverged kvlsm primary (issue 25).  A standby is promoted
# while the old primary keeps writing kvlsm tables on its own timeline:
# rows, flushes and a compaction, so its log pages, manifests and SSTables
# differ from the new primary's.  pg_rewind copies every block the old
# primary's WAL changed after the fork (generic WAL records carry ordinary
# block references) from the new primary; the old primary then follows the
# new one as a standby.  Its kvlsm state must be exactly the new primary's:
# the same rows (none of its own diverged writes), the same SSTables (ids,
# levels, places), incarnations and memtable contents, and it keeps
# following new writes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;

my $conf = q{
shared_preload_libraries = 'kvlsm'
kvlsm.memtable_memory = 64MB
wal_log_hints = on
wal_keep_size = 1GB
};

my $a = PostgreSQL::Test::Cluster->new('rw_a');
$a->init(allows_streaming => 1);
$a->append_conf('postgresql.conf', $conf);
$a->start;
$a->safe_psql(
	'postgres', q{
CREATE EXTENSION kvlsm;
CREATE TABLE acc (id int NOT NULL, bal int NOT NULL, note text) USING kvlsm
  WITH (memtable_size = '1MB');
CREATE UNIQUE INDEX acc_id ON acc (id);
CREATE INDEX acc_note ON acc USING kvlsm_idx (note);
INSERT INTO acc SELECT g, 0, 'n' || (g % 100) FROM generate_series(1, 30000) g;
SELECT kvlsm_flush('acc');
UPDATE acc SET bal = bal + 1 WHERE id % 3 = 0;
});
$a->backup('b');
my $b = PostgreSQL::Test::Cluster->new('rw_b');
$b->init_from_backup($a, 'b', has_streaming => 1);
$b->append_conf('postgresql.conf', 'hot_standby = on');
$b->start;
$a->wait_for_catchup($b);

# the fork: b is promoted, a goes on writing on its own
$b->promote;
$b->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
$a->safe_psql(
	'postgres', q{
INSERT INTO acc SELECT g, -1, 'lost' FROM generate_series(30001, 36000) g;
UPDATE acc SET bal = -100 WHERE id % 7 = 0;
DELETE FROM acc WHERE id % 11 = 0;
SELECT kvlsm_flush('acc');
SELECT kvlsm_compact('acc');
INSERT INTO acc SELECT g, -2, 'lost' FROM generate_series(36001, 37000) g;
});
$b->safe_psql(
	'postgres', q{
INSERT INTO acc SELECT g, 5, 'kept' FROM generate_series(40001, 45000) g;
UPDATE acc SET bal = bal + 10 WHERE id % 5 = 0;
SELECT kvlsm_flush('acc');
INSERT INTO acc SELECT g, 6, 'kept' FROM generate_series(45001, 46000) g;
DELETE FROM acc WHERE id % 13 = 0;
});
isnt(
	$a->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM kvlsm_sstables('acc')}),
	$b->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM kvlsm_sstables('acc')}),
	'the two nodes have diverged SSTables');
$a->stop('fast');

# pg_rewind copies the source's configuration files too: keep a's own
# (its port), as PostgreSQL's RewindTest does
my $tmp = PostgreSQL::Test::Utils::tempdir;
system('cp', $a->data_dir . '/postgresql.conf', "$tmp/a.conf") == 0 or die;
command_ok(
	[
		'pg_rewind', '--target-pgdata', $a->data_dir,
		'--source-server', $b->connstr('postgres'),
		'--no-sync', '--debug'
	],
	'pg_rewind of the old primary');
system('cp', "$tmp/a.conf", $a->data_dir . '/postgresql.conf') == 0 or die;
$a->append_conf('postgresql.conf', 'hot_standby = on');
$a->enable_streaming($b);
$a->start;
$b->safe_psql('postgres',
	q{INSERT INTO acc SELECT g, 7, 'after' FROM generate_series(50001, 51000) g});
$b->wait_for_catchup($a);

my @compare = (
	[ 'rows', q{SELECT count(*), sum(bal), md5(string_agg(id || ':' || bal || ':' || note, ',' ORDER BY id)) FROM acc} ],
	[ 'no diverged row', q{SELECT count(*) FROM acc WHERE note = 'lost' OR bal < 0} ],
	[
		'btree lookups',
		q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), sum(bal) FROM acc WHERE id BETWEEN 20000 AND 50500}
	],
	[
		'kvlsm_idx lookups',
		q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), sum(id) FROM acc WHERE note IN ('kept', 'lost', 'n7', 'after')}
	],
	[ 'SSTables', q{SELECT string_agg(id || '@' || level || ':' || start_block || '+' || pages, ',' ORDER BY id) FROM kvlsm_sstables('acc')} ],
	[ 'index SSTables', q{SELECT string_agg(id || '@' || level || ':' || start_block || '+' || pages, ',' ORDER BY id) FROM kvlsm_sstables('acc_note')} ],
	[ 'incarnation', q{SELECT incarnation FROM kvlsm_stats('acc')} ],
	[ 'memtable', q{SELECT memtable_entries, sstables FROM kvlsm_stats('acc')} ],
);
for my $c (@compare)
{
	my ($what, $sql) = @$c;
	is($a->safe_psql('postgres', $sql), $b->safe_psql('postgres', $sql),
		"rewound node = new primary: $what");
}
is($a->safe_psql('postgres', q{SELECT count(*) FROM acc WHERE note = 'lost'}),
	'0', 'the old primary lost its diverged writes');
is($a->safe_psql('postgres', q{SELECT count(*) FROM acc WHERE note = 'after'}),
	'1000', 'the rewound node follows the new primary');
is($a->safe_psql('postgres',
		q{SELECT count(*) FROM (SELECT kvlsm_verify('acc') UNION ALL SELECT kvlsm_verify('acc_note')) x}),
	'0', 'kvlsm_verify on the rewound node finds nothing wrong');

# the rewound node, promoted in turn, writes and survives a crash
$b->stop('fast');
$a->promote;
$a->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
$a->safe_psql('postgres',
	q{INSERT INTO acc SELECT g, 8, 'again' FROM generate_series(60001, 61000) g;
	  SELECT kvlsm_flush('acc'); SELECT kvlsm_compact('acc');
	  INSERT INTO acc SELECT g, 9, 'again' FROM generate_series(61001, 61500) g});
crash_node($a);
$a->start;
is($a->safe_psql('postgres', q{SELECT count(*), sum(bal) FROM acc WHERE note = 'again'}),
	'1500|12500', 'writes after a second promotion survive a crash');
is($a->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('acc')}), '0',
	'and verify clean');
$a->stop;

done_testing();
