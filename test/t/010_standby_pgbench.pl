
# Copyright (c) kvlsm authors
#
# Streaming replication under load (issue 5): four pgbench clients run
# TPC-B on kvlsm tables with kvlsm_idx indexes on the primary, whose small
# memtables make the workers flush and compact all the time, while a hot
# standby keeps checking the TPC-B balance invariant through the kvlsm
# index; the standby is crashed (every process SIGKILLed) in the middle of
# replay and recovers.  Afterwards the standby's contents equal the
# primary's, also after kvlsm_compact_range on the primary, kvlsm_verify
# finds nothing on either, and the relation files of the cleanly stopped
# primary and standby agree page by page (past the shorter file's end only
# never-written pre-extended pages).  The primary runs with
# wal_consistency_checking = 'generic', so the standby's replay compares
# every page a generic WAL record touches with the primary's image.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $primary = PostgreSQL::Test::Cluster->new('pgb_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
shared_buffers = 128MB
max_connections = 30
max_wal_size = 2GB
kvlsm.memtable_memory = 64MB
kvlsm.default_memtable_size = '256kB'
default_table_access_method = kvlsm
wal_consistency_checking = 'generic'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION kvlsm');

my @conn = ('-h', $primary->host, '-p', $primary->port, 'postgres');
# tables and data, no btree primary keys: the kvlsm_idx indexes serve
my ($iout, $ierr) = ('', '');
IPC::Run::run([ 'pgbench', '-i', '-s', '2', '-I', 'dtg', @conn ], '>', \$iout, '2>', \$ierr)
  or die "pgbench -i failed: $ierr";
$primary->safe_psql('postgres', q{
	CREATE INDEX acc_aid ON pgbench_accounts USING kvlsm_idx (aid);
	CREATE INDEX tel_tid ON pgbench_tellers USING kvlsm_idx (tid);
	CREATE INDEX bra_bid ON pgbench_branches USING kvlsm_idx (bid);
	ANALYZE;
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('pgb_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', q{
hot_standby = on
restart_after_crash = on
});
$standby->start;
$primary->wait_for_catchup($standby);

# the standby's query goes through the kvlsm index
# (the tellers' and branches' invariants every time; the 200000 accounts,
# each fetched through the index, every fourth time)
my $check_small = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT abs((SELECT sum(tbalance) FROM pgbench_tellers WHERE tid > 0)
         - (SELECT coalesce(sum(delta), 0) FROM pgbench_history))
     + abs((SELECT sum(bbalance) FROM pgbench_branches WHERE bid > 0)
         - (SELECT coalesce(sum(delta), 0) FROM pgbench_history))};
my $check = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT (SELECT sum(abalance) FROM pgbench_accounts WHERE aid > 0)
     - (SELECT coalesce(sum(delta), 0) FROM pgbench_history)};
like($standby->safe_psql('postgres', q{SET enable_seqscan = off; SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT sum(abalance) FROM pgbench_accounts WHERE aid > 0}),
	qr/Index Scan using acc_aid/, 'the standby query uses the kvlsm_idx index');

my ($bout, $berr) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '24', @conn ],
	'>', \$bout, '2>', \$berr);

my ($queries, $wrong, $errors, $crashed) = (0, 0, 0, 0);
my $first_problem = '';
my $start = time();
while (time() - $start < 22)
{
	if (!$crashed && time() - $start > 9)
	{
		crash_node($standby);
		$standby->start;
		$standby->poll_query_until('postgres', 'SELECT 1', '1')
		  or die 'standby did not come back';
		$crashed = 1;
		next;
	}
	my ($ret, $out, $err) = $standby->psql('postgres', $queries % 4 == 3 ? $check : $check_small);
	$queries++;
	if ($ret != 0)
	{
		$errors++;
		$first_problem ||= "error: $err";
	}
	elsif ($out ne '0')
	{
		$wrong++;
		$first_problem ||= "balance difference $out";
	}
	usleep(20_000);
}
$bench->finish;
like($bout, qr/number of failed transactions: 0 /, 'pgbench: no failed transactions')
  or diag("stdout:\n$bout\nstderr:\n$berr");
ok($bout =~ /number of transactions actually processed: (\d+)/ && $1 > 0,
	'pgbench processed transactions');
is($errors, 0, "no standby query failed ($queries queries)") or diag($first_problem);
is($wrong, 0, 'no standby query saw a broken balance invariant') or diag($first_problem);
ok($crashed, 'the standby was crashed during replay and came back');
my $work = $primary->safe_psql('postgres', q{
	SELECT sum(s.flushes), sum(s.compactions)
	  FROM pg_class c JOIN pg_am a ON a.oid = c.relam, LATERAL kvlsm_stats(c.oid) s
	 WHERE a.amname IN ('kvlsm', 'kvlsm_idx') AND c.relname NOT LIKE 'kvlsm%'});
my ($nflush, $ncompact) = split /\|/, $work;
cmp_ok($nflush, '>', 10, "the primary flushed meanwhile ($nflush)");
cmp_ok($ncompact, '>', 0, "and compacted ($ncompact)");

# contents: the same on both sides after catch-up
my $sum = q{SELECT
  (SELECT md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts),
  (SELECT md5(string_agg(tid || ':' || tbalance, ',' ORDER BY tid)) FROM pgbench_tellers),
  (SELECT md5(string_agg(bid || ':' || bbalance, ',' ORDER BY bid)) FROM pgbench_branches),
  (SELECT count(*) || ':' || coalesce(sum(delta), 0) FROM pgbench_history)};
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $sum), $primary->safe_psql('postgres', $sum),
	'after catch-up the standby holds exactly the primary\'s rows');
is($standby->safe_psql('postgres', $check), '0', 'and the invariant holds there');

$primary->safe_psql('postgres', q{
	SELECT kvlsm_compact_range('pgbench_accounts', '10000', '150000');
	SELECT kvlsm_compact_range('acc_aid', '50000', NULL);
	SELECT kvlsm_compact('pgbench_history');
});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $sum), $primary->safe_psql('postgres', $sum),
	'after kvlsm_compact_range on the primary the standby still agrees');

my $rels = q{SELECT c.relname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
	WHERE a.amname IN ('kvlsm', 'kvlsm_idx')
	  AND (c.relname LIKE 'pgbench%' OR c.relname IN ('acc_aid', 'tel_tid', 'bra_bid')) ORDER BY 1};
my @rels = split /\n/, $primary->safe_psql('postgres', $rels);
is(scalar(@rels), 7, 'four tables and three indexes');
for my $node ($primary, $standby)
{
	my $found = '';
	$found .= $node->safe_psql('postgres',
		"SELECT string_agg(blkno || ' ' || msg, '; ') FROM kvlsm_verify('$_')") for @rels;
	is($found, '', $node->name . ': kvlsm_verify finds nothing');
}

# page by page: stop the primary cleanly (its shutdown checkpoint reaches the
# standby), then the standby, and compare every kvlsm relation file
my %path = map {
	$_ => $primary->safe_psql('postgres', "SELECT pg_relation_filepath('$_')")
} @rels;
my $end = $primary->lsn('insert');
$primary->wait_for_catchup($standby, 'replay', $end);
$primary->stop('fast');
$standby->poll_query_until('postgres',
	"SELECT pg_last_wal_replay_lsn() > '$end'::pg_lsn") or die 'standby did not replay the shutdown';
$standby->stop('fast');

sub read_all
{
	my ($file) = @_;
	my $data = '';
	for (my $seg = 0;; $seg++)
	{
		my $f = $seg ? "$file.$seg" : $file;
		last unless -e $f;
		$data .= slurp_file($f);
	}
	return $data;
}

my $pages = 0;
my @differ;
for my $rel (@rels)
{
	my $p = read_all($primary->data_dir . '/' . $path{$rel});
	my $s = read_all($standby->data_dir . '/' . $path{$rel});
	my $n = (length($p) < length($s) ? length($p) : length($s)) / 8192;

	# The file is pre-extended without WAL (like heap's bulk extension):
	# the primary's may be longer, by pages nothing has written yet.
	my $tail = length($p) > length($s) ? substr($p, length($s)) : substr($s, length($p));
	push @differ, "$rel: primary " . length($p) / 8192 . ' blocks, standby ' . length($s) / 8192
	  . ', and the longer one\'s tail is not all zeros'
	  if $tail =~ /[^\0]/;
	for my $b (0 .. $n - 1)
	{
		$pages++;
		push @differ, "$rel block $b"
		  if substr($p, $b * 8192, 8192) ne substr($s, $b * 8192, 8192);
	}
}
is(scalar(@differ), 0, "primary and standby relation files agree page by page ($pages pages)")
  or diag(join("\n", @differ[ 0 .. ($#differ < 20 ? $#differ : 20) ]));
ok(!$standby->log_contains(qr/inconsistent page found/),
	'wal_consistency_checking found no inconsistent page on the standby');
ok($standby->log_contains(qr/redo starts at/), 'the crashed standby went through recovery')
  if $crashed;

done_testing();
