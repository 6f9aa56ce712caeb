
# Copyright (c) kvlsm authors
#
# Crash safety of kvlsm tables:
#  a) concurrent committed inserts survive a crash (kill -9 of every server
#     process) exactly once, while a flusher runs; rows of a transaction that
#     never committed (and was partly flushed to SSTables) never appear, not
#     even after many new xids and another flush;
#  b) a restart (clean and crash) rebuilds the memtable from the log pages;
#  c) a btree index on a kvlsm table agrees with a sequential scan after
#     crash recovery.
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

# --- helpers ---------------------------------------------------------------

sub crash_restart
{
	my ($node) = @_;
	crash_node($node);
	$node->start;
	return;
}

# --- setup -----------------------------------------------------------------

# wal_level = replica, the server's default (the framework's default is
# minimal); section d switches to minimal.
my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
shared_buffers = 128MB
max_connections = 30
kvlsm.memtable_memory = 64MB
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kvlsm');

my $basedir = $node->basedir;

# --- a) concurrent inserts + flushes + crash --------------------------------

$node->safe_psql(
	'postgres', q{
SET kvlsm.default_memtable_size = '256kB';
CREATE TABLE t (id bigint NOT NULL, payload text) USING kvlsm;
CREATE INDEX t_id_idx ON t (id);
});

is( $node->safe_psql(
		'postgres',
		q{SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
		  WHERE c.relname = 't'}),
	'kvlsm',
	't uses kvlsm');

# Writers: each runs a script of autocommit inserts, echoing the id after
# the INSERT (= its COMMIT) returned OK.
my $nwriters = 4;
my $rows_per_script = 40000;
my $payload = 'p';
my (@writers, @wout, @werr);
for my $w (1 .. $nwriters)
{
	my $script = "$basedir/writer_$w.sql";
	open my $fh, '>', $script or die $!;
	for my $i (1 .. $rows_per_script)
	{
		my $id = $w * 1_000_000 + $i;
		print $fh "INSERT INTO t VALUES ($id, '$payload$id');\n\\echo ack $id\n";
	}
	close $fh;
	$wout[$w] = "$basedir/writer_$w.out";
	$werr[$w] = "$basedir/writer_$w.err";
	push @writers, start_psql_script($node, $script, $wout[$w], $werr[$w]);
}

# Flusher: kvlsm_flush() in a loop.
my $fscript = "$basedir/flusher.sql";
open my $ffh, '>', $fscript or die $!;
print $ffh "SELECT kvlsm_flush('t');\n" for 1 .. 50000;
close $ffh;
my $flusher = start_psql_script($node, $fscript, "$basedir/flusher.out",
	"$basedir/flusher.err");

sleep 3;

# While writers and the flusher run, open a transaction with ~2MB of marker
# rows (ids < 0) that never commits.  (It is opened only after a few seconds
# because an open transaction changes what a flush does.)
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe(
	q{INSERT INTO t SELECT -g, repeat('m', 100)
	  FROM generate_series(1, 20000) g});
is($open->query_safe('SELECT count(*) FROM t WHERE id < 0'),
	'20000', 'open transaction sees its own marker rows');

# Flush while it is open: its rows may go to SSTables with its xid.
$node->safe_psql('postgres', "SELECT kvlsm_flush('t')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id < 0'),
	'0', 'marker rows of the open transaction are invisible to others');
note "after flush with open transaction: "
  . $node->safe_psql('postgres',
	"SELECT string_agg(format('L%s:%s sst/%s entries', level, sstables, entries), ', ') FROM kvlsm_levels('t')"
  );


sleep 3;

# Make sure the writers really made progress and nothing failed before the
# crash (an error before the crash would be a bug in itself).
my $acked_before = 0;
for my $w (1 .. $nwriters)
{
	$acked_before += () = slurp_file($wout[$w]) =~ /^ack /mg;
}
note "acknowledged before crash (lower bound, stdout is buffered): $acked_before";
for my $w (1 .. $nwriters)
{
	is(slurp_file($werr[$w]), '', "writer $w had no error before the crash");
}
is(slurp_file("$basedir/flusher.err"), '',
	'flusher had no error before the crash');
my $flushes_before = $node->safe_psql('postgres',
	"SELECT flushes FROM kvlsm_stats('t')");
cmp_ok($flushes_before, '>', 2, "several flushes happened ($flushes_before)");

crash_node($node);

# Reap the clients (they fail once the server is gone).
for my $h (@writers, $flusher)
{
	eval { $h->finish; };
}
eval { $open->{run}->kill_kill; };

$node->start;

# Collect acknowledged ids; the next id of each writer may or may not be
# there (in flight at the crash), no other id may.
my %acked;
my %maybe;
for my $w (1 .. $nwriters)
{
	my $last = $w * 1_000_000;
	for my $line (split /\n/, slurp_file($wout[$w]))
	{
		next unless $line =~ /^ack (\d+)$/;
		$acked{$1} = 1;
		$last = $1 if $1 > $last;
	}
	$maybe{ $last + 1 } = 1;
}
my $nacked = scalar keys %acked;
cmp_ok($nacked, '>', 100, "writers got commits acknowledged ($nacked)");

my %present;
my $dups = 0;
for my $id (split /\n/,
	$node->safe_psql('postgres', 'SELECT id FROM t WHERE id > 0'))
{
	$dups++ if $present{$id}++;
}
is($dups, 0, 'no row is present twice after crash');
my @missing = grep { !$present{$_} } sort { $a <=> $b } keys %acked;
is(scalar(@missing), 0, 'every acknowledged row survived the crash')
  or diag("missing ids (first 20): @missing[0 .. ($#missing < 19 ? $#missing : 19)]");
my @extra = grep { !$acked{$_} && !$maybe{$_} } keys %present;
is(scalar(@extra), 0, 'no row that was never sent appears')
  or diag("unexpected ids: @extra[0 .. ($#extra < 19 ? $#extra : 19)]");

is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM t WHERE id < 0}),
	'0',
	'rows of the never-committed transaction are absent after crash');

# c) the btree index agrees with a sequential scan after recovery.
my $seq = $node->safe_psql(
	'postgres', q{
SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;
SELECT count(*), coalesce(sum(id), 0), count(payload) FROM t WHERE id > -1000000000});
my $idxplan = $node->safe_psql(
	'postgres', q{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;
EXPLAIN (COSTS OFF) SELECT count(*), coalesce(sum(id), 0), count(payload) FROM t WHERE id > -1000000000});
like($idxplan, qr/Index Scan using t_id_idx/, 'plan uses the btree index');
my $idx = $node->safe_psql(
	'postgres', q{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;
SELECT count(*), coalesce(sum(id), 0), count(payload) FROM t WHERE id > -1000000000});
is($idx, $seq, 'index scan equals seq scan after crash recovery');
my $seqcount = (split /\|/, $seq)[0];
is($seqcount, scalar(keys %present), 'seq scan count matches the id list');

# Point lookups through the index for a sample of acknowledged ids.
my @sample = (sort { $a <=> $b } keys %acked)[0 .. 49];
@sample = grep { defined } @sample;
push @sample, grep { defined } (sort { $b <=> $a } keys %acked)[0 .. 49];
my $inlist = join(',', @sample);
is( $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM t WHERE id IN ($inlist) AND payload = '$payload' || id}),
	scalar(@sample),
	'index point lookups find acknowledged rows with the right payload');
is( $node->safe_psql(
		'postgres', q{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM t WHERE id < 0}),
	'0',
	'index scan does not return the uncommitted marker rows');

# Many new xids, then another flush: the dead transaction must stay dead.
$node->safe_psql(
	'postgres', q{
CREATE PROCEDURE burn_xids(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    PERFORM txid_current();
    COMMIT;
  END LOOP;
END $$;
CALL burn_xids(5000);
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id < 0'),
	'0', 'marker rows absent after 5000 new xids');
$node->safe_psql('postgres', "SELECT kvlsm_flush('t')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id < 0'),
	'0', 'marker rows absent after 5000 new xids and a flush');
is( $node->safe_psql(
		'postgres', q{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM t WHERE id < 0}),
	'0',
	'marker rows absent through the index after xids and flush');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id > 0'),
	$seqcount, 'committed rows unchanged after xids and flush');

# The table still takes writes, and they survive one more crash.
$node->safe_psql('postgres',
	q{INSERT INTO t SELECT 9000000 + g, 'after' FROM generate_series(1, 1000) g});
$node->safe_psql('postgres', "SELECT kvlsm_compact('t')");
crash_restart($node);
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id > 0'),
	$seqcount + 1000, 'rows written after recovery survive a second crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id < 0'),
	'0', 'marker rows still absent after a second crash');

# --- b) the memtable is rebuilt from log pages ------------------------------

$node->safe_psql(
	'postgres', q{
SET kvlsm.default_memtable_size = '16MB';
CREATE TABLE m (id int, v text) USING kvlsm;
INSERT INTO m SELECT g, 'v' || g FROM generate_series(1, 3000) g;
UPDATE m SET v = 'u' || id WHERE id % 10 = 0;
DELETE FROM m WHERE id % 7 = 0;
});
my $m_expect = $node->safe_psql('postgres',
	q{SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE 'u%') FROM m});
is( $m_expect,
	$node->safe_psql(
		'postgres',
		q{SELECT count(*), sum(g), count(*) FILTER (WHERE g % 10 = 0)
		  FROM generate_series(1, 3000) g WHERE g % 7 <> 0}),
	'memtable-only table has the expected contents');
is( $node->safe_psql(
		'postgres', q{SELECT sstables FROM kvlsm_stats('m')}),
	'0',
	'nothing of m was flushed');

$node->restart;
is($node->safe_psql('postgres', q{SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE 'u%') FROM m}),
	$m_expect, 'memtable-only rows intact after a clean restart');
cmp_ok($node->safe_psql('postgres', q{SELECT memtable_entries FROM kvlsm_stats('m')}),
	'>', 0, 'memtable rebuilt from log pages after a clean restart');

$node->safe_psql('postgres',
	q{INSERT INTO m SELECT g, 'w' || g FROM generate_series(3001, 3500) g});
$m_expect = $node->safe_psql('postgres',
	q{SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE 'u%') FROM m});

crash_restart($node);
is($node->safe_psql('postgres', q{SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE 'u%') FROM m}),
	$m_expect, 'memtable-only rows intact after a crash restart');
cmp_ok($node->safe_psql('postgres', q{SELECT memtable_entries FROM kvlsm_stats('m')}),
	'>', 0, 'memtable rebuilt from log pages after a crash restart');

# A flush after recovery puts the recovered rows into an SSTable.
$node->safe_psql('postgres', "SELECT kvlsm_flush('m')");
is($node->safe_psql('postgres', q{SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE 'u%') FROM m}),
	$m_expect, 'recovered rows intact after a flush');
cmp_ok($node->safe_psql('postgres', q{SELECT sstables FROM kvlsm_stats('m')}),
	'>', 0, 'flush after recovery wrote an SSTable');

# Rows of STORAGE plain columns larger than a page: each is one record that
# spans log pages; recovery joins the pieces again, also for the last record
# before the crash.
$node->safe_psql('postgres', $big_val_sql);
$node->safe_psql(
	'postgres', q{
SET kvlsm.default_memtable_size = '16MB';
CREATE TABLE big (id int, b text) USING kvlsm;
ALTER TABLE big ALTER COLUMN b SET STORAGE plain;
INSERT INTO big SELECT g, big_val(g, CASE WHEN g % 3 = 0 THEN 20 ELSE 8060 + g % 60 END)
  FROM generate_series(1, 40) g;
UPDATE big SET b = big_val(id + 100, 8128) WHERE id % 4 = 0;
DELETE FROM big WHERE id % 9 = 0;
INSERT INTO big VALUES (1000, big_val(1000, 8127));
});
my $big_query =
  q{SELECT count(*), sum(length(b)), bool_and(b IN (big_val(id, length(b)), big_val(id + 100, length(b))))
	FROM big};
my $big_expect = $node->safe_psql('postgres', $big_query);
like($big_expect, qr/^37\|\d+\|t$/, 'large rows: inserted, updated and deleted as asked');
crash_restart($node);
is($node->safe_psql('postgres', $big_query), $big_expect, 'large rows intact after a crash restart');
is($node->safe_psql('postgres', q{SELECT sstables FROM kvlsm_stats('big')}),
	'0', 'large rows: recovered from log pages alone');
$node->safe_psql('postgres', "SELECT kvlsm_flush('big')");
is($node->safe_psql('postgres', $big_query), $big_expect, 'large rows intact after a flush');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_verify('big')}),
	'0', 'large rows: kvlsm_verify finds nothing wrong');
crash_restart($node);
is($node->safe_psql('postgres', q{SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE 'u%') FROM m}),
	$m_expect, 'flushed rows intact after another crash');

# --- d) wal_level = minimal: created (or truncated) and loaded in one
#        transaction, like pgbench -i does -----------------------------------

$node->append_conf('postgresql.conf', qq{wal_level = minimal\nmax_wal_senders = 0\n});
$node->restart;
is($node->safe_psql('postgres', 'SHOW wal_level'),
	'minimal', 'node runs with wal_level = minimal');

# Run a query that may fail; report the error as a test failure instead of
# dying, so that the remaining checks still run.
sub query_or_error
{
	my ($node, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return $ret == 0 ? $out : "ERROR: $err";
}

$node->safe_psql(
	'postgres', q{
BEGIN;
SET LOCAL kvlsm.default_memtable_size = '1MB';
CREATE TABLE wm (id int PRIMARY KEY, bal int, filler text) USING kvlsm;
INSERT INTO wm SELECT g, 0, repeat('f', 80) FROM generate_series(1, 100000) g;
COMMIT;
});
$node->safe_psql('postgres', 'UPDATE wm SET bal = 1 WHERE id % 100 = 0');
crash_restart($node);
is(query_or_error($node, 'SELECT count(*), sum(bal) FROM wm'),
	'100000|1000',
	'wal_level = minimal: table created and loaded in one transaction survives a crash');

$node->safe_psql(
	'postgres', q{
BEGIN;
TRUNCATE wm;
INSERT INTO wm SELECT g, 2, repeat('f', 80) FROM generate_series(1, 50000) g;
COMMIT;
});
crash_restart($node);
is(query_or_error($node, 'SELECT count(*), sum(bal) FROM wm'),
	'50000|100000',
	'wal_level = minimal: table truncated and loaded in one transaction survives a crash');
is( query_or_error(
		$node, q{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM wm WHERE id BETWEEN 1 AND 50000}),
	'50000',
	'wal_level = minimal: primary key index agrees after the crash');

$node->stop;
done_testing();
