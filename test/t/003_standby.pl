
# Copyright (c) kvlsm authors
#
# Streaming replication of kvlsm tables (with wal_consistency_checking =
# 'generic' on the primary, so the standby's replay, and the promoted
# standby's crash recovery, compare every generic WAL page with the
# primary's image): a hot standby returns the primary's
# results (memtable rows, SSTable rows, index lookups) before and after more
# DML, flushes and compactions; it refuses writes; with synchronous
# replication, every acknowledged commit survives a crash of the primary
# and the promoted standby takes writes.
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

# Queries whose results must be equal on primary and standby.
my @compare = (
	[ 'count and sums', q{SELECT count(*), sum(id), sum(n), count(DISTINCT id) FROM r} ],
	[
		'contents digest',
		q{SELECT md5(string_agg(id || ':' || n || ':' || v, ',' ORDER BY id)) FROM r}
	],
	[
		'index point lookups',
		q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT string_agg(id || ':' || n, ',' ORDER BY id) FROM r
		   WHERE id IN (1, 7, 500, 4999, 12345, 20001, 24999, 30003, 39999)}
	],
	[
		'index range scan',
		q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), sum(n) FROM r WHERE id BETWEEN 100 AND 30000}
	],
	[
		'rows larger than a page',
		q{SELECT count(*), sum(length(b)), md5(string_agg(id || ':' || md5(b), ',' ORDER BY id))
		  FROM big}
	],
);

sub compare_nodes
{
	my ($name, $primary, $standby) = @_;
	for my $c (@compare)
	{
		my ($what, $sql) = @$c;
		my $p = $primary->safe_psql('postgres', $sql);
		my ($ret, $s, $err) = $standby->psql('postgres', $sql);
		is($ret == 0 ? $s : "ERROR: $err", $p, "$name: $what equal on standby");
	}
	# the index path really is an index scan on the standby
	like(
		$standby->safe_psql(
			'postgres', q{SET enable_seqscan = off; SET enable_bitmapscan = off;
			  EXPLAIN (COSTS OFF) SELECT count(*), sum(n) FROM r WHERE id BETWEEN 100 AND 30000}),
		qr/Index Scan using r_id_idx/,
		"$name: standby plan uses the btree index");
	return;
}

# --- primary and hot standby -------------------------------------------------

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
shared_buffers = 128MB
max_connections = 30
kvlsm.memtable_memory = 64MB
wal_consistency_checking = 'generic'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION kvlsm');

$primary->safe_psql('postgres', $big_val_sql);
$primary->safe_psql(
	'postgres', q{
CREATE TABLE r (id int NOT NULL, n int, v text) USING kvlsm;
INSERT INTO r SELECT g, g % 97, 'v' || g FROM generate_series(1, 20000) g;
UPDATE r SET n = n + 1000 WHERE id % 5 = 0;
SELECT kvlsm_flush('r');
INSERT INTO r SELECT g, g % 89, 'w' || g FROM generate_series(20001, 25000) g;
UPDATE r SET n = n + 2000 WHERE id % 11 = 0;
DELETE FROM r WHERE id % 13 = 0;
CREATE INDEX r_id_idx ON r (id);
-- rows of STORAGE plain columns larger than a page: records spanning log
-- pages (memtable) and SSTable data pages (flushed), replayed on the
-- standby with every page image checked
CREATE TABLE big (id int NOT NULL, b text) USING kvlsm;
ALTER TABLE big ALTER COLUMN b SET STORAGE plain;
INSERT INTO big SELECT g, big_val(g, CASE WHEN g % 3 = 0 THEN 50 ELSE 8060 + g % 60 END)
  FROM generate_series(1, 30) g;
SELECT kvlsm_flush('big');
INSERT INTO big SELECT g, big_val(g, 8000 + g % 128) FROM generate_series(31, 60) g;
UPDATE big SET b = big_val(id + 100, 8128) WHERE id % 4 = 0;
});
my $st = $primary->safe_psql('postgres',
	q{SELECT sstables, memtable_entries FROM kvlsm_stats('r')});
my ($nsst, $nmem) = split /\|/, $st;
cmp_ok($nsst, '>', 0, 'primary: some rows are in SSTables');
cmp_ok($nmem, '>', 0, 'primary: some rows are only in the memtable');

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->append_conf('postgresql.conf', q{hot_standby = on});
$standby->start;

$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'standby is in recovery');
compare_nodes('after backup', $primary, $standby);

# --- more DML, a flush and a compaction ---------------------------------------

$primary->safe_psql(
	'postgres', q{
INSERT INTO r SELECT g, g % 83, 'x' || g FROM generate_series(25001, 35000) g;
UPDATE r SET n = n + 3000, v = v || '-u' WHERE id % 3 = 0;
DELETE FROM r WHERE id % 7 = 0;
SELECT kvlsm_flush('r');
INSERT INTO r SELECT g, 1, 'y' || g FROM generate_series(35001, 37000) g;
SELECT kvlsm_flush('r');
SELECT kvlsm_compact('r');
INSERT INTO r SELECT g, 2, 'z' || g FROM generate_series(37001, 40000) g;
UPDATE r SET n = -n WHERE id BETWEEN 30000 AND 30100;
DELETE FROM r WHERE id BETWEEN 38000 AND 38100;
INSERT INTO big SELECT g, big_val(g, 8100) FROM generate_series(61, 80) g;
SELECT kvlsm_flush('big');
SELECT kvlsm_compact('big');
UPDATE big SET b = big_val(id + 200, 8090) WHERE id % 5 = 0;
DELETE FROM big WHERE id % 7 = 0;
});
cmp_ok($primary->safe_psql('postgres', q{SELECT compactions FROM kvlsm_stats('r')}),
	'>', 0, 'primary: a compaction happened');
$primary->wait_for_catchup($standby);
compare_nodes('after DML, flush and compaction', $primary, $standby);

# --- the standby refuses writes -----------------------------------------------

for my $w (
	[ 'INSERT', q{INSERT INTO r VALUES (-1, -1, 'standby')} ],
	[ 'UPDATE', q{UPDATE r SET n = 0 WHERE id = 1} ],
	[ 'DELETE', q{DELETE FROM r WHERE id = 1} ])
{
	my ($ret, $out, $err) = $standby->psql('postgres', $w->[1]);
	isnt($ret, 0, "standby: $w->[0] fails");
	like($err, qr/cannot execute \w+ in a read-only transaction/,
		"standby: $w->[0] fails as read-only");
}
{
	my ($ret, $out, $err) =
	  $standby->psql('postgres', q{SELECT kvlsm_flush('r')});
	isnt($ret, 0, 'standby: kvlsm_flush fails during recovery');
	note "kvlsm_flush on standby: $err";
}
compare_nodes('after refused writes on the standby', $primary, $standby);

# --- synchronous replication, crash of the primary, promotion ----------------

$primary->append_conf('postgresql.conf', q{synchronous_standby_names = '*'});
$primary->reload;
$primary->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'})
  or die 'standby did not become synchronous';

# remote_apply: visible on the standby as soon as the commit returns.
$primary->safe_psql(
	'postgres', q{
SET synchronous_commit = remote_apply;
INSERT INTO r SELECT g, 3, 'ra' || g FROM generate_series(40001, 41000) g;
});
is( $standby->safe_psql(
		'postgres', q{SELECT count(*) FROM r WHERE id BETWEEN 40001 AND 41000}),
	'1000',
	'remote_apply: committed rows visible on the standby at once');
is( $standby->safe_psql(
		'postgres', q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*) FROM r WHERE id BETWEEN 40001 AND 41000}),
	'1000',
	'remote_apply: committed rows visible through the index on the standby');

# Concurrent synchronous (synchronous_commit = on) writers and a flusher;
# record what was acknowledged, then crash the primary.
my $basedir = $primary->basedir;
my $nwriters = 3;
my (@writers, @wout, @werr);
for my $w (1 .. $nwriters)
{
	my $script = "$basedir/swriter_$w.sql";
	open my $fh, '>', $script or die $!;
	print $fh "SET synchronous_commit = on;\n";
	for my $i (1 .. 20000)
	{
		my $id = 100_000 * $w + $i;
		print $fh "INSERT INTO r VALUES ($id, $w, 'sync$id');\n\\echo ack $id\n";
	}
	close $fh;
	$wout[$w] = "$basedir/swriter_$w.out";
	$werr[$w] = "$basedir/swriter_$w.err";
	push @writers, start_psql_script($primary, $script, $wout[$w], $werr[$w]);
}
my $fscript = "$basedir/sflusher.sql";
open my $ffh, '>', $fscript or die $!;
print $ffh "SELECT kvlsm_flush('r');\nSELECT pg_sleep(0.2);\n" for 1 .. 1000;
close $ffh;
my $flusher = start_psql_script($primary, $fscript, "$basedir/sflusher.out",
	"$basedir/sflusher.err");

sleep 5;
for my $w (1 .. $nwriters)
{
	is(slurp_file($werr[$w]), '', "sync writer $w had no error before the crash");
}
is(slurp_file("$basedir/sflusher.err"), '', 'flusher had no error before the crash');

crash_node($primary);
for my $h (@writers, $flusher)
{
	eval { $h->finish; };
}

my %acked;
my %maybe;
for my $w (1 .. $nwriters)
{
	my $last = 100_000 * $w;
	for my $line (split /\n/, slurp_file($wout[$w]))
	{
		next unless $line =~ /^ack (\d+)$/;
		$acked{$1} = 1;
		$last = $1 if $1 > $last;
	}
	$maybe{ $last + 1 } = 1;
}
my $nacked = scalar keys %acked;
cmp_ok($nacked, '>', 50, "synchronous commits were acknowledged ($nacked)");

$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby was not promoted';

my %present;
my $dups = 0;
for my $id (split /\n/,
	$standby->safe_psql('postgres', 'SELECT id FROM r WHERE id > 100000'))
{
	$dups++ if $present{$id}++;
}
is($dups, 0, 'promoted standby: no synchronous row is present twice');
my @missing = grep { !$present{$_} } sort { $a <=> $b } keys %acked;
is(scalar(@missing), 0,
	'promoted standby: every acknowledged synchronous commit is there')
  or diag("missing ids (first 20): @missing[0 .. ($#missing < 19 ? $#missing : 19)]");
my @extra = grep { !$acked{$_} && !$maybe{$_} } keys %present;
is(scalar(@extra), 0, 'promoted standby: no row that was never sent')
  or diag("unexpected ids: @extra[0 .. ($#extra < 19 ? $#extra : 19)]");
is( $standby->safe_psql(
		'postgres', q{SELECT count(*) FROM r WHERE id BETWEEN 40001 AND 41000}),
	'1000',
	'promoted standby: remote_apply rows there');

# index and seq scan agree on the promoted standby
my $q = q{SELECT count(*), sum(id), sum(n) FROM r WHERE id > 0};
my $seq = $standby->safe_psql('postgres',
	"SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off; $q");
my $idx = $standby->safe_psql('postgres',
	"SET enable_seqscan = off; SET enable_bitmapscan = off; $q");
is($idx, $seq, 'promoted standby: index scan equals seq scan');

# --- the promoted standby takes writes ------------------------------------------

my $before = $standby->safe_psql('postgres', 'SELECT count(*) FROM r');
$standby->safe_psql(
	'postgres', q{
INSERT INTO r SELECT g, 4, 'np' || g FROM generate_series(500001, 502000) g;
UPDATE r SET n = 999 WHERE id BETWEEN 500001 AND 500500;
DELETE FROM r WHERE id BETWEEN 501501 AND 502000;
SELECT kvlsm_flush('r');
INSERT INTO r SELECT g, 5, 'nq' || g FROM generate_series(502001, 503000) g;
});
is($standby->safe_psql('postgres', 'SELECT count(*) FROM r'),
	$before + 2000 - 500 + 1000, 'promoted standby: insert, delete and flush work');
is( $standby->safe_psql(
		'postgres', q{SELECT count(*) FROM r WHERE n = 999 AND id BETWEEN 500001 AND 500500}),
	'500',
	'promoted standby: update works');
$standby->safe_psql('postgres', q{SELECT kvlsm_compact('r')});
is( $standby->safe_psql(
		'postgres', q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), sum(n) FROM r WHERE id BETWEEN 500001 AND 503000}),
	'2500|' . (500 * 999 + 1000 * 4 + 1000 * 5),
	'promoted standby: index lookups after flush and compaction');

# and it keeps those rows across a crash of its own
my $all = $standby->safe_psql('postgres',
	q{SELECT count(*), sum(id), sum(n) FROM r});
crash_node($standby);
$standby->start;
is($standby->safe_psql('postgres', q{SELECT count(*), sum(id), sum(n) FROM r}),
	$all, 'promoted standby: contents intact after a crash');

$standby->stop;
done_testing();
