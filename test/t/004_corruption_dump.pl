
# Copyright (c) kvlsm authors
#
# A corrupted SSTable page is reported with the relation and block, never
# read as data; per-table options survive pg_dump / pg_restore.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('corrupt');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'kvlsm'\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE t (id int, v text) USING kvlsm WITH (compression = 'none', memtable_size = '1MB');
	INSERT INTO t SELECT g, 'value ' || g FROM generate_series(1, 2000) g;
	SELECT kvlsm_flush('t');
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '2000', 'rows before corruption');

my $start = $node->safe_psql('postgres', 'SELECT min(start_block) FROM kvlsm_sstables(\'t\')');
my $path = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t')});
my $datablk = $start + 1;    # first data page after the SSTable header
$node->stop;

# flip bytes in the middle of the data page, leaving the page header alone
open my $fh, '+<', $path or die "open $path: $!";
binmode $fh;
seek($fh, $datablk * 8192 + 2000, 0) or die;
print $fh ("\xde\xad\xbe\xef" x 8);
close $fh;

$node->start;
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM t');
isnt($ret, 0, 'scan of a corrupted SSTable fails');
like($err, qr/kvlsm relation "t" block $datablk: checksum mismatch in SSTable data page/,
	'error names the relation, the block and the page kind');
unlike($out, qr/^\d+$/, 'no row count is returned from corrupted data');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server still answers');

# pg_dump / pg_restore keep the per-table options
$node->safe_psql('postgres', q{
	CREATE DATABASE src;
});
$node->safe_psql('src', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE keep (id int, v text) USING kvlsm WITH (compression = 'none', memtable_size = '3MB');
	ALTER TABLE keep SET (memtable_size = '5MB');
	INSERT INTO keep SELECT g, 'k' || g FROM generate_series(1, 500) g;
	SELECT kvlsm_flush('keep');
	INSERT INTO keep VALUES (501, 'in the memtable');
});
my $dump = $node->basedir . '/src.dump';
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump of a database with kvlsm tables');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(
	[ 'pg_restore', '-d', $node->connstr('dst'), $dump ],
	'pg_restore');
is($node->safe_psql('dst', 'SELECT count(*), sum(id) FROM keep'), '501|125751',
	'restored rows');
is($node->safe_psql('dst', q{SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'keep'}),
	'kvlsm', 'restored table is a kvlsm table');
is($node->safe_psql('dst', q{SELECT compression, memtable_size FROM kvlsm_stats('keep')}),
	'none|5242880', 'restored table has its options in its metapage');

done_testing();
