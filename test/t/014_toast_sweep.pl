
# Copyright (c) kvlsm authors
#
# TOAST values of the rows a compaction drops are deleted after its install,
# by the compacting transaction (issue 4).  A crash between the install and
# the commit used to leave them behind for good; the install now names the
# deleting transaction in the metapage, and the next compaction sweeps the
# values nothing refers to any more: those, and never a value a row version
# still refers to.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('toastsweep');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kvlsm'
restart_after_crash = on
autovacuum = off
});
$node->start;

# 20 rows with out-of-line values (6.4 kB, stored external uncompressed)
$node->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE t (id int, big text) USING kvlsm;
	ALTER TABLE t ALTER big SET STORAGE EXTERNAL;
	INSERT INTO t SELECT g, repeat(md5(g::text), 200) FROM generate_series(1, 20) g;
});
my $toast = $node->safe_psql('postgres',
	"SELECT reltoastrelid::regclass FROM pg_class WHERE oid = 't'::regclass");
my $values_sql = "SELECT count(DISTINCT chunk_id) FROM $toast";
is($node->safe_psql('postgres', $values_sql), '20', 'one TOAST value per row');

# A DELETE under a named snapshot leaves its rows' values to the compaction
# that drops the rows (the snapshot could still read them).
sub delete_deferred
{
	my ($cond) = @_;
	$node->safe_psql('postgres', q{SELECT name FROM kvlsm_snapshot_create('s')});
	$node->safe_psql('postgres', "DELETE FROM t WHERE $cond");
	$node->safe_psql('postgres', q{SELECT kvlsm_snapshot_drop('s')});
	$node->safe_psql('postgres', q{SELECT kvlsm_flush('t')});
	return;
}

# first without a crash: the compaction deletes the values and commits
delete_deferred('id <= 5');
is($node->safe_psql('postgres', $values_sql), '20',
	'deferred: the deleted rows keep their values until compaction');
$node->safe_psql('postgres', q{SELECT kvlsm_compact_range('t')});
is($node->safe_psql('postgres', $values_sql), '15',
	'the compaction that dropped the rows deleted their values');

# Rows 6..10 deleted the same way; then a snapshot 'keep' is taken and rows
# 16..20 are deleted while it exists (so compaction must keep them, and
# their values, for it).
delete_deferred('id <= 10');
$node->safe_psql('postgres', q{SELECT name FROM kvlsm_snapshot_create('keep')});
$node->safe_psql('postgres', 'DELETE FROM t WHERE id >= 16');
$node->safe_psql('postgres', q{SELECT kvlsm_flush('t')});

# the compacting process dies after the install, before its commit
my $offset = -s $node->logfile;
$node->safe_psql('postgres',
	q{SELECT kvlsm_arm_crash_point('compaction-toast-before-commit')});
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT kvlsm_compact_range('t')});
isnt($ret, 0, 'the compaction was cut off');
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'server did not come back';
ok($node->log_contains(qr/kvlsm crash point "compaction-toast-before-commit" reached/, $offset),
	'it was the crash point after the install that fired');
is($node->safe_psql('postgres', 'SELECT count(*), min(id), max(id) FROM t'), '5|11|15',
	'rows 11..15 are current');
is($node->safe_psql('postgres', $values_sql), '15',
	'the values of rows 6..10 were left behind (their deleting transaction never committed)');

# the next compaction sweeps them first, and only them
$node->safe_psql('postgres',
	q{INSERT INTO t VALUES (100, 'small'); SELECT kvlsm_flush('t'); SELECT kvlsm_compact_range('t')});
ok($node->log_contains(qr/kvlsm: swept 5 TOAST values of "t"/, $offset),
	'the next compaction swept five values');
is($node->safe_psql('postgres', $values_sql), '10',
	'rows 11..20 keep theirs');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM t WHERE big = repeat(md5(id::text), 200)'),
	'5', 'the current rows read their values');
is($node->safe_psql('postgres', q{
	BEGIN;
	SELECT kvlsm_snapshot_use('keep');
	SELECT count(*) FROM t WHERE big = repeat(md5(id::text), 200);
	COMMIT;}),
	"\n10", "snapshot 'keep' reads rows 11..20 with their values");
is($node->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('t')}), '0',
	'kvlsm_verify finds nothing');

# once 'keep' goes, compaction drops rows 16..20 and deletes their values,
# and commits: no further sweep
$offset = -s $node->logfile;
$node->safe_psql('postgres', q{SELECT kvlsm_snapshot_drop('keep')});
$node->safe_psql('postgres', q{SELECT kvlsm_compact_range('t')});
is($node->safe_psql('postgres', $values_sql), '5', "rows 16..20's values deleted");
$node->safe_psql('postgres',
	q{INSERT INTO t VALUES (101, 'small'); SELECT kvlsm_flush('t'); SELECT kvlsm_compact_range('t')});
ok(!$node->log_contains(qr/kvlsm: swept/, $offset),
	'no sweep when the deleting transactions committed');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM t WHERE big = repeat(md5(id::text), 200)'),
	'5', 'the current rows still read their values');

$node->stop;
done_testing();
