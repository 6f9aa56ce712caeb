
# Copyright (c) kvlsm authors
#
# A hot standby's long query survives the routine background work of its
# primary (issue 23).  Giving a free file end back takes an
# AccessExclusiveLock, whose WAL record cancels standby queries on the
# relation after max_standby_streaming_delay, hot_standby_feedback or not.
# Heap's autovacuum seldom finds a free end; kvlsm's compactions and moves
# make one all the time.  With kvlsm.background_truncate = auto (the
# default) the workers and autovacuum do not truncate while a standby
# sends hot_standby_feedback: they still compact and move tables down, and
# the file keeps its size until a VACUUM by hand (or the standby goes).
#
# Checked with the same work on the primary (a full compaction, updates,
# flushes; the workers compact, move and, where allowed, truncate;
# autovacuum runs every second) and the same query on the standby (a
# transaction that reads the table, sleeps and reads it again):
#   A. without feedback the workers truncate and the query is cancelled
#      (what the default guards against; it shows the work truncates);
#   B. with feedback the workers move tables but do not truncate, and the
#      query finishes with the right rows;
#   C. a VACUUM by hand still truncates.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
autovacuum_naptime = 1s
autovacuum_vacuum_scale_factor = 0.01
autovacuum_vacuum_insert_scale_factor = 0.01
kvlsm.flush_interval = 0
kvlsm.l0_compaction_trigger = 1000
kvlsm.l0_slowdown_trigger = 1000
kvlsm.l0_stop_trigger = 1000
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kvlsm');
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->append_conf(
	'postgresql.conf', q{
hot_standby_feedback = off
max_standby_streaming_delay = 2s
});
$standby->start;

$node->safe_psql('postgres',
	q{CREATE TABLE t (id int, v text) USING kvlsm WITH (memtable_size = '8MB')});
# twenty flushes of 10,000 rows: twenty level-0 tables in each relation
load_in_flushes($node, 't', 20);
my $expect = $node->safe_psql('postgres', 'SELECT count(*), sum(hashtext(v)) FROM t');
$node->wait_for_catchup($standby);

sub pages
{
	return $node->safe_psql('postgres', "SELECT total_pages FROM kvlsm_space('t')");
}

# the standby's query: holds its lock on t for $secs seconds
sub start_standby_query
{
	my ($secs, $out, $err) = @_;
	my $q = "BEGIN ISOLATION LEVEL REPEATABLE READ;"
	  . " SELECT count(*), sum(hashtext(v)) FROM t;"
	  . " SELECT pg_sleep($secs);"
	  . " SELECT count(*), sum(hashtext(v)) FROM t;"
	  . " COMMIT;";
	my $h = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-d', $standby->connstr('postgres'), '-c', $q
		],
		'>', $out, '2>', $err);
	# the query holds its lock once it has read the table
	$standby->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND wait_event = 'PgSleep'})
	  or die 'the standby query did not start';
	return $h;
}

# the primary's routine work: a full compaction leaves the middle of the
# file free and its outputs at the end; two level-0 tables make a worker
# compact, move tables down and, if allowed, truncate; autovacuum runs.
# Returns the file's size after the full compaction.
sub routine_work
{
	my ($b) = @_;
	$node->safe_psql('postgres', "SELECT kvlsm_compact('t')");
	my $high = pages();
	my $compactions = $node->safe_psql('postgres', "SELECT compactions FROM kvlsm_stats('t')");
	$node->safe_psql('postgres',
		'ALTER SYSTEM SET kvlsm.l0_compaction_trigger = 2; SELECT pg_reload_conf()');
	for my $i (0 .. 1)
	{
		my $m = $b * 2 + $i;
		$node->safe_psql('postgres',
			"UPDATE t SET v = v WHERE id % 50 = $m; SELECT kvlsm_flush('t')");
	}
	$node->poll_query_until('postgres',
		"SELECT compactions > $compactions FROM kvlsm_stats('t')")
	  or die 'no background compaction';
	$node->safe_psql('postgres',
		'ALTER SYSTEM SET kvlsm.l0_compaction_trigger = 1000; SELECT pg_reload_conf()');
	return $high;
}

# A. no feedback: the workers truncate, and that cancels the query.
# Autovacuum stays off t here, so that no VACUUM truncates between the
# full compaction and the measurement of its size (B runs with it).
$node->safe_psql('postgres', 'ALTER TABLE t SET (autovacuum_enabled = off)');
$node->wait_for_catchup($standby);
my ($out, $err) = ('', '');
my $h = start_standby_query(60, \$out, \$err);
my $high = routine_work(0);
ok($node->poll_query_until('postgres',
		"SELECT total_pages < $high FROM kvlsm_space('t')"),
	'A: without feedback the workers truncated the file');
$h->finish;
like($err, qr/conflict with recovery/, 'A: which cancelled the standby query')
  or diag("stdout: $out\nstderr: $err");

$node->safe_psql('postgres', 'ALTER TABLE t RESET (autovacuum_enabled)');
$node->wait_for_catchup($standby);

# B. feedback: the workers move tables but leave the file's end
$standby->append_conf('postgresql.conf', 'hot_standby_feedback = on');
$standby->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_replication WHERE backend_xmin IS NOT NULL"),
	'B: the standby sends feedback');
($out, $err) = ('', '');
my $h2 = start_standby_query(15, \$out, \$err);
my $av = $node->safe_psql('postgres',
	"SELECT coalesce(autovacuum_count, 0) FROM pg_stat_user_tables WHERE relname = 't'");
$high = routine_work(1);
# autovacuum visits t after the updates
ok($node->poll_query_until('postgres',
		"SELECT autovacuum_count > $av FROM pg_stat_user_tables WHERE relname = 't'"),
	'B: autovacuum ran on t meanwhile');
ok($h2->finish, 'B: the standby query finished') or diag("stderr: $err");
is($err, '', 'B: without an error');
chomp $out;
is($out, "$expect\n\n$expect", 'B: and read every row twice');
my $after = pages();
note("B: t had $high pages after the full compaction, has $after");
cmp_ok($after, '>=', $high, 'B: the file kept its size');
my ($free, $total) = split /\|/, $node->safe_psql('postgres',
	"SELECT free_pages, total_pages FROM kvlsm_space('t')");
note("B: $free of $total pages free");

# C. a VACUUM by hand truncates
$node->safe_psql('postgres', 'VACUUM t');
cmp_ok(pages(), '<', $after, 'C: VACUUM by hand gave the free end back');
is($node->safe_psql('postgres', 'SELECT count(*), sum(hashtext(v)) FROM t'),
	$expect, 'C: every row is there');
is($node->safe_psql('postgres', "SELECT count(*) FROM kvlsm_verify('t')"), '0',
	'C: kvlsm_verify finds nothing');
$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT count(*), sum(hashtext(v)) FROM t'),
	$expect, 'C: the standby has every row');

done_testing();
