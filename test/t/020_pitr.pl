
# Copyright (c) kvlsm authors
#
# Backup and point-in-time recovery of kvlsm tables (issue 25): a base
# backup (pg_basebackup) taken while clients write kvlsm tables and their
# memtables are flushed and compacted, WAL archiving, then recovery of the
# backup to a recovery_target_lsn and to a recovery_target_time between two
# known commits.  The recovered kvlsm tables hold exactly the rows committed
# before the target (each batch is one transaction: all of it or none), a
# sequential scan, the btree index and the kvlsm_idx index agree, and
# kvlsm_verify finds nothing wrong.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('pitr_primary');
$node->init(has_archiving => 1, allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
kvlsm.memtable_memory = 64MB
max_connections = 30
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION kvlsm;
CREATE TABLE ev (id bigint NOT NULL, batch text NOT NULL, v text) USING kvlsm
  WITH (memtable_size = '1MB');
CREATE UNIQUE INDEX ev_id ON ev (id);
CREATE INDEX ev_batch ON ev USING kvlsm_idx (batch);
INSERT INTO ev SELECT g, 'base', md5(g::text) FROM generate_series(1, 20000) g;
SELECT kvlsm_flush('ev');
});

# writers, flushes and compactions while the base backup runs
my $script = $node->basedir . '/writer.sql';
open my $fh, '>', $script or die;
print $fh q{
\set k random(1, 1000000000)
INSERT INTO ev VALUES (:k + 10000000, 'during', md5(:k::text)) ON CONFLICT DO NOTHING;
};
close $fh;
my $maint = $node->basedir . '/maint.sql';
open $fh, '>', $maint or die;
print $fh q{
SELECT kvlsm_flush('ev');
SELECT pg_sleep(0.2);
SELECT kvlsm_compact('ev');
};
close $fh;
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-T', '8', '-c', '2', '-f', $script, '-d',
		$node->connstr('postgres')
	],
	'>', \$out, '2>', \$err);
my ($mout, $merr) = ('', '');
my $maintain = IPC::Run::start(
	[
		'pgbench', '-n', '-T', '8', '-c', '1', '-f', $maint, '-d',
		$node->connstr('postgres')
	],
	'>', \$mout, '2>', \$merr);
usleep(1_000_000);
$node->backup('during_writes');
$pgbench->finish;
$maintain->finish;
like($out, qr/number of transactions actually processed: [1-9]/,
	'clients wrote while the backup ran');
cmp_ok(
	$node->safe_psql('postgres', q{SELECT flushes + compactions FROM kvlsm_stats('ev')}),
	'>', 2, 'flushes and compactions ran meanwhile');

# Three batches after the backup, each one transaction; the targets fall
# between them.
my $batch = sub {
	my ($name, $lo, $hi) = @_;
	$node->safe_psql('postgres',
		"INSERT INTO ev SELECT g, '$name', md5(g::text) FROM generate_series($lo, $hi) g;"
		  . "UPDATE ev SET v = '$name' WHERE id % 1000 = 0 AND batch = 'base'");
	return;
};
$batch->('b1', 2000001, 2005000);
$node->safe_psql('postgres', q{SELECT kvlsm_flush('ev')});
$batch->('b2', 2005001, 2010000);
my $lsn_after_b2 = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$batch->('b3', 2010001, 2015000);
$node->safe_psql('postgres', q{SELECT kvlsm_flush('ev'); SELECT kvlsm_compact('ev')});
sleep 1;
my $time_after_b3 = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
note "time target: $time_after_b3; b3 committed by xid "
  . $node->safe_psql('postgres', q{SELECT min(xmin::text) FROM ev WHERE batch = 'b3'});
sleep 1;
$batch->('b4', 2015001, 2020000);
$node->safe_psql('postgres', q{SELECT kvlsm_flush('ev')});
$batch->('b5', 2020001, 2025000);

# What the recovered table must hold: the rows of the batches before the
# target, and the 'base' rows that each batch updates as the last of them
# before the target left them.
my %want;
$want{lsn} = $node->safe_psql('postgres',
	q{SELECT count(*), md5(string_agg(id || ':' || CASE WHEN batch = 'base' AND id % 1000 = 0 THEN 'b2' ELSE
	    CASE WHEN batch = 'base' THEN md5(id::text) ELSE v END END, ',' ORDER BY id))
	    FROM ev WHERE batch IN ('base', 'during', 'b1', 'b2')});
$want{time} = $node->safe_psql('postgres',
	q{SELECT count(*), md5(string_agg(id || ':' || CASE WHEN batch = 'base' AND id % 1000 = 0 THEN 'b3' ELSE
	    CASE WHEN batch = 'base' THEN md5(id::text) ELSE v END END, ',' ORDER BY id))
	    FROM ev WHERE batch IN ('base', 'during', 'b1', 'b2', 'b3')});
# make sure the segment holding the last batch is archived (the WAL that
# background work writes after the switch goes to the next segment, which
# is not archived yet: wait for the switched one only)
my $last_segment = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_switch_wal())');
$node->poll_query_until('postgres',
	qq{SELECT last_archived_wal IS NOT NULL AND last_archived_wal >= '$last_segment'
	     FROM pg_stat_archiver})
  or die "archiving did not reach $last_segment";

for my $target ([ 'lsn', "recovery_target_lsn = '$lsn_after_b2'", [qw(b1 b2)], [qw(b3 b4 b5)] ],
	[ 'time', "recovery_target_time = '$time_after_b3'", [qw(b1 b2 b3)], [qw(b4 b5)] ])
{
	my ($kind, $setting, $have, $lack) = @$target;
	my $r = PostgreSQL::Test::Cluster->new("pitr_$kind");
	$r->init_from_backup($node, 'during_writes', has_restoring => 1);
	# archive_mode off: the backup's configuration would archive the
	# promoted node's new timeline into the primary's archive, and the next
	# recovery (recovery_target_timeline 'latest') would follow it
	$r->append_conf('postgresql.conf',
		"$setting\nrecovery_target_action = 'promote'\nrecovery_target_timeline = 'current'\narchive_mode = off\n");
	$r->start;
	$r->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
	  or die "recovery to the $kind target did not end";

	my $batches = $r->safe_psql('postgres',
		q{SELECT string_agg(DISTINCT batch, ',' ORDER BY batch) FROM ev WHERE batch ~ '^b[0-9]'});
	is($batches, join(',', @$have), "$kind target: exactly the batches committed before it");
	for my $b (@$have)
	{
		is($r->safe_psql('postgres', "SELECT count(*) FROM ev WHERE batch = '$b'"),
			'5000', "$kind target: batch $b whole");
	}
	is($r->safe_psql('postgres',
			q{SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM ev}),
		$want{$kind}, "$kind target: every row as it was committed before the target");
	is($r->safe_psql('postgres', q{SELECT count(*) FROM ev WHERE batch = 'during'}),
		$node->safe_psql('postgres', q{SELECT count(*) FROM ev WHERE batch = 'during'}),
		"$kind target: the rows written during the backup are all there");

	# the indexes agree with the table
	my $seq = $r->safe_psql('postgres',
		q{SET enable_indexscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), sum(id) FROM ev WHERE id BETWEEN 1 AND 3000000});
	my $bt = $r->safe_psql('postgres',
		q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), sum(id) FROM ev WHERE id BETWEEN 1 AND 3000000});
	is($bt, $seq, "$kind target: btree index scan = sequential scan");
	for my $b ('base', @$have, @$lack)
	{
		is($r->safe_psql('postgres',
				"SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM ev WHERE batch = '$b'"),
			$r->safe_psql('postgres',
				"SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM ev WHERE batch = '$b'"),
			"$kind target: kvlsm_idx lookup of batch $b = sequential scan");
	}
	is($r->safe_psql('postgres',
			q{SELECT count(*) FROM (SELECT kvlsm_verify('ev') UNION ALL SELECT kvlsm_verify('ev_batch')) x}),
		'0', "$kind target: kvlsm_verify finds nothing wrong");

	# the recovered server takes writes, and they survive a crash
	$r->safe_psql('postgres',
		q{INSERT INTO ev SELECT g, 'after', 'x' FROM generate_series(3000001, 3001000) g;
		  SELECT kvlsm_flush('ev');
		  INSERT INTO ev SELECT g, 'after', 'y' FROM generate_series(3001001, 3002000) g});
	crash_node($r);
	$r->start;
	is($r->safe_psql('postgres', q{SELECT count(*) FROM ev WHERE batch = 'after'}),
		'2000', "$kind target: the promoted server's own writes survive a crash");
	$r->stop;
}

done_testing();
