
# Copyright (c) kvlsm authors
#
# kvlsmctl, the admin CLI: every subcommand against a test cluster, as a
# table and as JSON, connection options and environment, and its errors.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('ctl');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'kvlsm'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION kvlsm;
	CREATE TABLE t (id int PRIMARY KEY, v text) USING kvlsm WITH (memtable_size = '1MB');
	CREATE INDEX t_v ON t USING kvlsm_idx (v);
	INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20000) g;
	SELECT kvlsm_flush('t');
	UPDATE t SET v = 'changed' WHERE id = 3;
});

# run kvlsmctl with the node's connection options; returns (exit code, stdout, stderr)
sub ctl
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kvlsmctl', '-h', $node->host, '-p', $node->port, '-d', 'postgres', @args ],
		'>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

my ($rc, $out, $err);

($rc, $out) = ctl('--help');
like($out, qr/Usage:.*key-history REL KEY/s, '--help lists the commands');

($rc, $out, $err) = ctl('stats');
is($rc, 0, 'stats runs') or diag($err);
like($out, qr/^ relation\s+\| access_method .*\n-+\+/m, 'stats prints a table with a header');
# kvlsmctl runs with an empty search_path, so listings show relations
# schema-qualified
like($out, qr/^ public\.t\s+\| kvlsm\s+\|/m, 'stats lists the table');
like($out, qr/^ public\.t_v\s+\| kvlsm_idx\s+\|/m, 'and the index');

($rc, $out) = ctl('--json', 'stats', 't');
like($out, qr/^\[\{"relation":"t",.*"flushes":\d+/, 'stats REL --json is a JSON array of objects');

($rc, $out) = ctl('levels', 't');
like($out, qr/^ L0\s+\|\s+0 \|/m, 'levels shows L0');

($rc, $out) = ctl('--json', 'sstables', 't');
like($out, qr/"state":"live"/, 'sstables --json');

($rc, $out) = ctl('space', 't');
like($out, qr/unreferenced_pages/, 'space');

($rc, $out) = ctl('flush', 't');
is($out, "t: flush done\n", 'flush');

($rc, $out) = ctl('compact', 't');
is($out, "t: compaction done\n", 'compact');
is($node->safe_psql('postgres', q{SELECT count(*) FROM kvlsm_levels('t') WHERE level = 0 AND sstables > 0}),
	'0', 'the compaction emptied L0');
($rc, $out) = ctl('compact', 't_v', 'v1', 'v2');
is($out, "t_v: compaction of the range done\n", 'compact REL LOWER UPPER');
($rc, $out) = ctl('compact', 't', '100', '');
is($rc, 0, 'an empty bound is open');

($rc, $out) = ctl('compactions', 't');
like($out, qr/^ public\.t\s+\| \d{4}-\d\d-\d\d .*\|\s+0 \|\s+\d \|/m, 'compactions lists the compaction of t');
($rc, $out) = ctl('--json', 'compactions');
like($out, qr/^\[\{"relation":"public\.t","started_at":"[^"]+","duration_ms":[\d.]+,"from_level":0,/, 'compactions --json, all relations');

($rc, $out) = ctl('verify', 't');
is($rc, 0, 'verify exits 0 on a healthy relation');
is($out, "t: no problem found\n", 'and says so');
($rc, $out) = ctl('--json', 'verify', 't_v');
is($out, "[]\n", 'verify --json: an empty array');

my $sst = $node->safe_psql('postgres', q{SELECT min(id) FROM kvlsm_sstables('t')});
($rc, $out) = ctl('dump', 't', $sst);
like($out, qr/^ id\s+\| level .*compression/m, 'dump prints the header');
like($out, qr/^\s+\d+ \| \d+ tid \(\d+,\d+\)\s+\| insert\s+\|/m, 'and the entries');
($rc, $out) = ctl('--json', 'dump', 't', $sst);
like($out, qr/^\[\{"id":$sst,.*\n\[\{"blkno":/s, 'dump --json: header and entries');

($rc, $out) = ctl('key-history', 't', '(0,3)');
like($out, qr/\| delete\s+\|.*committed.*\n.*\| insert\s+\|/, 'key-history: the delete, then the insert');
($rc, $out) = ctl('--json', 'key-history', 't_v', 'changed');
like($out, qr/"kind":"put"/, 'key-history of an index key, JSON');

($rc, $out) = ctl('workers');
like($out, qr/^ pid\s+\| datid/m, 'workers');

($rc, $out) = ctl('top', 't', '-n', '3', '-i', '0.2');
my @lines = split /\n/, $out;
is(scalar(@lines), 3, 'top -n 3 prints a header and two samples');
like($lines[1], qr/^t\s+\d+\s+\d+\.\d\d/, 'a sample line');
($rc, $out) = ctl('--json', 'top', 't', '-n', '2', '-i', '0.2');
like($out, qr/^\{"relation": "t", "ingest_bytes_per_s": \d+/, 'top --json');

# environment instead of options
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'kvlsmctl', 'levels', 't' ], '>', \$o, '2>', \$e);
	like($o, qr/^ L1/m, 'PGHOST/PGPORT/PGDATABASE are honoured');
}

# errors
($rc, $out, $err) = ctl('bogus');
is($rc, 2, 'unknown command: exit 2');
like($err, qr/unknown command "bogus"/, 'and a message');
($rc, $out, $err) = ctl('levels');
like($err, qr/levels needs 1 argument/, 'missing argument');
($rc, $out, $err) = ctl('levels', 'nosuch');
is($rc, 1, 'server error: exit 1');
like($err, qr/relation "nosuch" does not exist/, 'the server\'s message');
($rc, $out, $err) = ctl('dump', 't', '999999');
like($err, qr/SSTable 999999 is not in the manifest of "t"/, 'dump of an unknown SSTable');
($rc, $out, $err) = ctl('levels', "t'; DROP TABLE t; --");
like($err, qr/invalid name syntax/, 'arguments are parameters, not SQL');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '20000', 'the table is still there');

# a damaged relation: verify lists the problem and exits 3
my $blk = $node->safe_psql('postgres', q{SELECT min(start_block) + 1 FROM kvlsm_sstables('t')});
my $path = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t')});
$node->stop;
open my $fh, '+<', $path or die;
binmode $fh;
seek($fh, $blk * 8192 + 1500, 0);
print $fh ("\xff" x 16);
close $fh;
$node->start;
($rc, $out) = ctl('verify', 't');
is($rc, 3, 'verify exits 3 when it finds problems');
like($out, qr/^\s+$blk \|.*checksum mismatch/m, 'and prints them');

done_testing();
