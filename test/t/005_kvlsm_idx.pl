
# Copyright (c) kvlsm authors
#
# kvlsm_idx indexes survive a crash of every server process and are
# replicated: index scans on the restarted primary and on a hot standby
# return what sequential scans return.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use KvlsmTest;
use Time::HiRes qw(usleep);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kvlsm'
shared_buffers = 64MB
max_connections = 20
kvlsm.default_memtable_size = '256kB'
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE h (id int, k int, t text);
	CREATE INDEX h_k ON h USING kvlsm_idx (k);
	CREATE UNIQUE INDEX h_id ON h USING kvlsm_idx (id);
	CREATE TABLE kt (id int, k int, t text) USING kvlsm;
	CREATE INDEX kt_kt ON kt USING kvlsm_idx (k, t);
	INSERT INTO h SELECT g, g % 100, 'h' || g FROM generate_series(1, 20000) g;
	INSERT INTO kt SELECT g, g % 100, 'k' || g FROM generate_series(1, 20000) g;
	SELECT kvlsm_flush('h_k'), kvlsm_flush('kt_kt');
	UPDATE h SET k = k + 1000 WHERE id % 7 = 0;
	DELETE FROM kt WHERE id % 5 = 0;
	VACUUM h;
	INSERT INTO h SELECT g, g % 100, 'late' FROM generate_series(20001, 21000) g;
});

my $q = q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*), sum(id) FROM h WHERE k BETWEEN 10 AND 1050;
	SELECT count(*), sum(id) FROM kt WHERE k = 42;
	SELECT count(*) FROM h WHERE id = 20500;
};
my $seq = q{
	SET enable_indexscan = off; SET enable_bitmapscan = off;
	SELECT count(*), sum(id) FROM h WHERE k BETWEEN 10 AND 1050;
	SELECT count(*), sum(id) FROM kt WHERE k = 42;
	SELECT count(*) FROM h WHERE id = 20500;
};
my $before = $primary->safe_psql('postgres', $q);
is($before, $primary->safe_psql('postgres', $seq), 'index scans equal seq scans before the crash');

# a standby from a base backup, streaming
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->safe_psql('postgres', q{
	INSERT INTO h SELECT g, 7, 'after backup' FROM generate_series(30001, 30500) g;
	INSERT INTO kt SELECT g, 42, 'after backup' FROM generate_series(30001, 30100) g;
});
$primary->wait_for_catchup($standby);
my $primary_now = $primary->safe_psql('postgres', $q);
is($standby->safe_psql('postgres', $q), $primary_now, 'standby index scans equal the primary');

# kill -9 every server process, then recover
crash_node($primary);
$primary->start;
is($primary->safe_psql('postgres', $q), $primary_now, 'index scans after crash recovery');
is($primary->safe_psql('postgres', $q), $primary->safe_psql('postgres', $seq),
	'index scans equal seq scans after crash recovery');
my ($ret, $out, $err) = $primary->psql('postgres', 'INSERT INTO h VALUES (20500, 1, \'dup\')');
like($err, qr/duplicate key value violates unique constraint "h_id"/,
	'unique kvlsm_idx index still rejects duplicates after recovery');

done_testing();
