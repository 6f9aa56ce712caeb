
# Copyright (c) kvlsm authors
#
# Named snapshots (issue 8): a recorded workload (inserts, updates, deletes,
# TTL expiry, flushes, compactions, VACUUM, a restart, a promotion of the
# standby) runs while snapshots are taken and the full contents of each
# table are saved at those points; afterwards every snapshot returns exactly
# the saved contents, through sequential scans and through the kvlsm_idx
# index, on the primary and on the hot standby, before and after a full
# compaction, and on the promoted standby.  Dropping the snapshots lets
# compaction reclaim what they kept.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('ns_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'kvlsm'
kvlsm.default_memtable_size = '256kB'
autovacuum = off
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE a (id int PRIMARY KEY, v text) USING kvlsm;
	CREATE INDEX a_v ON a USING kvlsm_idx (v);
	CREATE TABLE b (id int, payload text) USING kvlsm WITH (ttl = '3s');
	CREATE TABLE big (id int, doc text) USING kvlsm;
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('ns_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

# the full contents of both tables, as one string per table
my $contents_a = q{SELECT count(*) || ':' || coalesce(md5(string_agg(id || '=' || v, ',' ORDER BY id)), '-') FROM a};
my $contents_big = q{SELECT count(*) || ':' || coalesce(md5(string_agg(id || '=' || md5(doc), ',' ORDER BY id)), '-') FROM big};
my $contents_b = q{SELECT count(*) || ':' || coalesce(md5(string_agg(id || '=' || payload, ',' ORDER BY id)), '-') FROM b};
# the same rows of a, fetched through the kvlsm_idx index
my $via_index = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*) || ':' || coalesce(md5(string_agg(id || '=' || v, ',' ORDER BY id)), '-') FROM a WHERE v >= ''};

my %saved;

sub take
{
	my ($name) = @_;
	# the snapshot and the saved contents see the same state: nothing
	# writes between them in this test
	$primary->safe_psql('postgres', "SELECT kvlsm_snapshot_create('$name')");
	$saved{$name} = [ $primary->safe_psql('postgres', $contents_a),
		$primary->safe_psql('postgres', $contents_b),
		$primary->safe_psql('postgres', $contents_big) ];
	note "snapshot $name: a $saved{$name}[0], b $saved{$name}[1]";
	return;
}

sub through
{
	my ($node, $name, $query) = @_;
	return $node->safe_psql('postgres',
		"BEGIN; SELECT kvlsm_snapshot_use('$name') \\gset\n$query; COMMIT;");
}

sub check_all
{
	my ($node, $when) = @_;
	for my $name (sort keys %saved)
	{
		is(through($node, $name, $contents_a), $saved{$name}[0],
			"$when: snapshot $name, table a");
		is(through($node, $name, $contents_b), $saved{$name}[1],
			"$when: snapshot $name, table b (TTL judged at the snapshot's time)");
		is(through($node, $name, $via_index), $saved{$name}[0],
			"$when: snapshot $name, table a through the kvlsm_idx index");
		is(through($node, $name, $contents_big), $saved{$name}[2],
			"$when: snapshot $name, TOASTed values of table big");
	}
	return;
}

# --- the recorded workload ------------------------------------------------
$primary->safe_psql('postgres', q{
	INSERT INTO a SELECT g, 'first ' || g FROM generate_series(1, 6000) g;
	INSERT INTO b SELECT g, 'short-lived ' || g FROM generate_series(1, 800) g;
	INSERT INTO big SELECT g, (SELECT string_agg(md5(g || '/' || i), '') FROM generate_series(1, 1000) i)
	  FROM generate_series(1, 20) g;
});
my $toast = $primary->safe_psql('postgres', q{SELECT reltoastrelid::regclass FROM pg_class WHERE relname = 'big'});
my $values = "SELECT count(DISTINCT chunk_id) FROM $toast";
is($primary->safe_psql('postgres', $values), '20', 'twenty TOASTed values');
take('s1');

# old versions' TOAST values stay while snapshots exist, even through VACUUM
$primary->safe_psql('postgres', q{
	UPDATE big SET doc = (SELECT string_agg(md5(id || '+' || i), '') FROM generate_series(1, 1000) i) WHERE id <= 10;
	DELETE FROM big WHERE id > 15;
	VACUUM big;
	SELECT kvlsm_flush('big');
	SELECT kvlsm_compact('big');
});
is($primary->safe_psql('postgres', $values), '30',
	'with snapshots, no TOAST value of an old version is deleted (20 old + 10 new)');

$primary->safe_psql('postgres', q{
	UPDATE a SET v = 'second ' || id WHERE id % 3 = 0;
	DELETE FROM a WHERE id % 7 = 0;
	INSERT INTO a SELECT g, 'added ' || g FROM generate_series(6001, 7000) g;
	SELECT kvlsm_flush('a');
	VACUUM a;
	SELECT kvlsm_flush('a');
	SELECT kvlsm_compact('a');
});
# b's rows expire: a snapshot taken now sees none of them, s1 still all
sleep(4);
take('s2');
is((split /:/, $saved{s2}[1])[0], '0', 'the rows of b have expired for s2');

$primary->safe_psql('postgres', q{
	UPDATE a SET v = 'third ' || id WHERE id % 5 = 0;
	DELETE FROM a WHERE id BETWEEN 100 AND 1100;
	INSERT INTO b SELECT g, 'second batch ' || g FROM generate_series(1001, 1200) g;
	VACUUM a;
	VACUUM b;
	SELECT kvlsm_flush('a');
	SELECT kvlsm_flush('b');
	SELECT kvlsm_compact('a');
	SELECT kvlsm_compact('b');
});
$primary->restart;
take('s3');
$primary->safe_psql('postgres', q{
	UPDATE a SET v = 'fourth ' || id WHERE id % 2 = 0;
	DELETE FROM a WHERE id > 6500;
	VACUUM a;
	SELECT kvlsm_flush('a');
	SELECT kvlsm_compact('a');
});

is($primary->safe_psql('postgres', 'SELECT count(*) FROM kvlsm_snapshots WHERE usable'), '3',
	'three usable snapshots');
check_all($primary, 'primary');
$primary->wait_for_catchup($standby);
check_all($standby, 'standby');

# a full compaction after VACUUM keeps what the snapshots see
$primary->safe_psql('postgres', q{
	VACUUM a; VACUUM b;
	SELECT kvlsm_flush('a'); SELECT kvlsm_flush('b');
	SELECT kvlsm_compact('a'); SELECT kvlsm_compact('b');
	VACUUM FREEZE a;
});
check_all($primary, 'primary after a full compaction and VACUUM FREEZE');
my $frozen = $primary->safe_psql('postgres',
	q{SELECT age(relfrozenxid) >= (SELECT max(xmin_age) FROM kvlsm_snapshots) FROM pg_class WHERE relname = 'a'});
is($frozen, 't', 'relfrozenxid did not pass the oldest snapshot\'s xmin');
$primary->wait_for_catchup($standby);
check_all($standby, 'standby after the full compaction');

# promotion: the snapshots live on in the new primary
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby did not promote';
check_all($standby, 'promoted standby');
$standby->safe_psql('postgres', q{
	INSERT INTO a VALUES (100000, 'after promotion');
	VACUUM a; SELECT kvlsm_flush('a'); SELECT kvlsm_compact('a');
});
check_all($standby, 'promoted standby after its own compaction');

# dropping the snapshots lets compaction reclaim what they kept
my $before = $standby->safe_psql('postgres', q{SELECT sum(entries) FROM kvlsm_sstables('a')});
$standby->safe_psql('postgres', q{
	SELECT kvlsm_snapshot_drop('s1');
	SELECT kvlsm_snapshot_drop('s2');
	SELECT kvlsm_snapshot_drop('s3');
});
$standby->safe_psql('postgres', q{
	VACUUM a; SELECT kvlsm_flush('a'); SELECT kvlsm_compact('a');
	VACUUM b; SELECT kvlsm_flush('b'); SELECT kvlsm_compact('b');
});
my $after = $standby->safe_psql('postgres', q{SELECT coalesce(sum(entries), 0) FROM kvlsm_sstables('a')});
my $live = $standby->safe_psql('postgres', q{SELECT count(*) FROM a});
cmp_ok($after, '<', $before, "entries fell after the drop ($before -> $after)");
is($after, $live, 'only the live rows are left in a');
$standby->safe_psql('postgres', q{
	VACUUM big; SELECT kvlsm_flush('big'); SELECT kvlsm_compact('big');
});
is($standby->safe_psql('postgres', $values), '15',
	'after the drop, compaction deleted the TOAST values of the dropped versions (15 live)');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM big}), '15', 'and the table has its 15 rows');
is($standby->safe_psql('postgres', q{SELECT coalesce(sum(entries), 0) FROM kvlsm_sstables('b')}),
	$standby->safe_psql('postgres', q{SELECT count(*) FROM b}),
	'and only the live rows of b');
my ($ret, $out, $err) = $standby->psql('postgres', q{BEGIN; SELECT kvlsm_snapshot_use('s1'); ROLLBACK;});
like($err, qr/named snapshot "s1" does not exist/, 'a dropped snapshot is gone');

# a snapshot taken while another transaction has more subtransactions than a
# snapshot's subxid cache holds (64): its xids are expanded at creation,
# since pg_subtrans will be truncated
my $bg = $standby->background_psql('postgres', on_error_stop => 1);
$bg->query_safe('BEGIN');
$bg->query_safe("SAVEPOINT s$_; INSERT INTO a VALUES (" . (200000 + $_) . ", 'sub $_'); RELEASE SAVEPOINT s$_")
  for 1 .. 70;
# a later transaction commits, so the subtransactions fall below the
# snapshot's xmax and must be listed one by one
$standby->safe_psql('postgres', 'SELECT pg_current_xact_id()');
$standby->safe_psql('postgres', "SELECT kvlsm_snapshot_create('ovf')");
cmp_ok($standby->safe_psql('postgres', q{SELECT in_progress FROM kvlsm_snapshots WHERE name = 'ovf'}),
	'>=', 71, 'the overflowed snapshot recorded every subtransaction');
$bg->query_safe('COMMIT');
$bg->quit;
$standby->safe_psql('postgres', q{SELECT kvlsm_flush('a'); SELECT kvlsm_compact('a'); CHECKPOINT});
is($standby->safe_psql('postgres', 'SELECT count(*) FROM a WHERE id > 200000'), '70',
	'the subtransactions\' rows are there now');
is(through($standby, 'ovf', 'SELECT count(*) FROM a WHERE id > 200000'), '0',
	'and invisible through the snapshot taken while they ran');

# kvlsm.snapshot_max_age: a snapshot older than the limit it was created
# under stops pinning anything and cannot be used
$standby->append_conf('postgresql.conf', "kvlsm.snapshot_max_age = 1000\n");
$standby->reload;
$standby->safe_psql('postgres', "SELECT kvlsm_snapshot_create('short')");
is($standby->safe_psql('postgres', q{SELECT usable FROM kvlsm_snapshots WHERE name = 'short'}), 't',
	'a new snapshot is usable');
$standby->safe_psql('postgres',
	'DO $$ BEGIN FOR i IN 1..1100 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$');
is($standby->safe_psql('postgres', q{SELECT usable FROM kvlsm_snapshots WHERE name = 'short'}), 'f',
	'1100 transactions later it is not');
($ret, $out, $err) = $standby->psql('postgres', q{BEGIN; SELECT kvlsm_snapshot_use('short'); ROLLBACK;});
like($err, qr/named snapshot "short" is too old/, 'using it is an error, never a wrong answer');
$standby->safe_psql('postgres', q{
	SELECT kvlsm_snapshot_drop('ovf');
	DELETE FROM a WHERE id > 200000;
	VACUUM a; SELECT kvlsm_flush('a'); SELECT kvlsm_compact('a');
});
is($standby->safe_psql('postgres', q{SELECT coalesce(sum(entries), 0) FROM kvlsm_sstables('a')}),
	$standby->safe_psql('postgres', q{SELECT count(*) FROM a}),
	'the expired snapshot holds nothing back');

done_testing();
