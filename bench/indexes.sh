#!/usr/bin/env bash
# Random-key inserts into a heap table with three secondary indexes:
# btree against kvlsm_idx, in the same run on the same server, at a size
# where the btree indexes do not fit shared_buffers and with checkpoints
# during the run (so btree pays full-page writes and buffer misses, as it
# would in production).
#
#   sudo bash bench/indexes.sh                          # full run, writes bench/INDEXES.md
#   KVLSM_BENCH_QUICK=1 sudo bash bench/indexes.sh      # smoke run
#
# Settings (environment): KVLSM_BENCH_ROWS (preloaded rows, default 4000000),
# KVLSM_BENCH_DURATION (seconds per timed run, default 150), KVLSM_BENCH_ROUNDS
# (alternating rounds per variant, default 3, so the median is a middle value), KVLSM_BENCH_BATCH (rows per
# INSERT, default 100), KVLSM_BENCH_MEMORY_LIMIT (see lib.sh; the full run
# defaults to 1G, server and page cache together, so the btree indexes,
# which grow to about 1 GB, do not fit memory as they would not on a real
# server whose indexes outgrow its RAM; KVLSM_BENCH_MEMORY_LIMIT= for none).
#
# Each client transaction inserts BATCH rows with random keys in all three
# indexed columns (one INSERT ... SELECT, so aminsert runs once per row and
# index, as under COPY).  Reported per variant: rows/s, WAL bytes per row
# (pg_current_wal_lsn before and after), checkpoints during the run, and
# transaction latency percentiles.  Nothing here is a pass/fail test.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KVLSM_BENCH_DIR:-/tmp/kvlsm-bench-idx}
PORT=${KVLSM_BENCH_PORT:-54332}
QUICK=${KVLSM_BENCH_QUICK:-0}
OUT=${KVLSM_BENCH_OUT:-$TOP/bench/INDEXES.md}
if [ "$QUICK" = 1 ]; then
    ROWS=${KVLSM_BENCH_ROWS:-200000}; DURATION=${KVLSM_BENCH_DURATION:-10}; ROUNDS=${KVLSM_BENCH_ROUNDS:-1}
else
    ROWS=${KVLSM_BENCH_ROWS:-4000000}; DURATION=${KVLSM_BENCH_DURATION:-150}; ROUNDS=${KVLSM_BENCH_ROUNDS:-3}
    export KVLSM_BENCH_MEMORY_LIMIT=${KVLSM_BENCH_MEMORY_LIMIT-1G}
fi
BATCH=${KVLSM_BENCH_BATCH:-100}
CLIENTS=4

SHARED_BUFFERS=128MB
. "$TOP/bench/lib.sh"
# checkpoints every 30 s: a timed run spans several of them
start_server "checkpoint_timeout = 30s
max_wal_size = 2GB
synchronous_commit = on"
limit_memory

psql_ -d postgres -c "CREATE DATABASE bidx" -c "ALTER SYSTEM SET log_checkpoints = on" -c "SELECT pg_reload_conf()" >/dev/null
psql_ -d bidx -c "CREATE EXTENSION kvlsm"

# the same preloaded rows for all; indexes built after the load.  Variants:
# btree, kvlsm_idx (leveled compaction, the default) and kvlsm_idx with
# compaction_style = 'tiered' (less rewriting, more runs for reads to probe)
VARIANTS="btree kvlsm tiered"
for v in $VARIANTS; do
    psql_ -d bidx -c "CREATE TABLE ri_$v (a bigint, b bigint, c bigint, pad text) WITH (autovacuum_enabled = off)"
done
psql_ -d bidx -c "INSERT INTO ri_btree SELECT (random()*1e12)::bigint, (random()*1e12)::bigint, (random()*1e12)::bigint, 'payload-payload-payload' FROM generate_series(1, $ROWS)" \
    -c "INSERT INTO ri_kvlsm SELECT * FROM ri_btree" -c "INSERT INTO ri_tiered SELECT * FROM ri_btree"
for col in a b c; do
    psql_ -d bidx -c "CREATE INDEX ri_btree_$col ON ri_btree USING btree ($col)" \
        -c "CREATE INDEX ri_kvlsm_$col ON ri_kvlsm USING kvlsm_idx ($col)" \
        -c "CREATE INDEX ri_tiered_$col ON ri_tiered USING kvlsm_idx ($col) WITH (compaction_style = 'tiered')"
done
for v in $VARIANTS; do
    psql_ -d bidx -c "VACUUM ANALYZE ri_$v" >/dev/null
done
psql_ -d bidx -c "SELECT kvlsm_flush(indexrelid) FROM pg_index WHERE indrelid IN ('ri_kvlsm'::regclass, 'ri_tiered'::regclass)" -c "CHECKPOINT" >/dev/null

size() { psql_ -d bidx -At -c "SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_index WHERE indrelid = '$1'::regclass"; }
declare -A R
for v in $VARIANTS; do R[${v}_idx_start]=$(size ri_$v); done

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }
pct() { # pgbench logs -> "p50 p99 p99.9" in ms
    cat "$@" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {
        if (NR == 0) { print "- - -"; exit }
        i50=int(NR*0.50); if (i50<1) i50=1; i99=int(NR*0.99); if (i99<1) i99=1; i999=int(NR*0.999); if (i999<1) i999=1;
        printf "%.1f %.1f %.1f\n", a[i50]/1000, a[i99]/1000, a[i999]/1000 }'
}

run() { # variant round
    local v=$1 r=$2 lsn0 lsn1 ck0 ck1 out tps
    cat > "$DIR/ins_$v.sql" <<SQL
INSERT INTO ri_$v SELECT (random()*1e12)::bigint, (random()*1e12)::bigint, (random()*1e12)::bigint, 'payload-payload-payload' FROM generate_series(1, $BATCH);
SQL
    chown "$USER_" "$DIR/ins_$v.sql"
    psql_ -d bidx -c "CHECKPOINT" >/dev/null
    lsn0=$(psql_ -d bidx -At -c "SELECT pg_current_wal_lsn()")
    ck0=$(psql_ -d bidx -At -c "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
    rm -f "$DIR"/log_${v}_$r.[0-9]*
    out=$(cd "$DIR" && pgbench_ -n -c $CLIENTS -j 2 -T "$DURATION" -f ins_$v.sql -l --log-prefix=log_${v}_$r bidx)
    lsn1=$(psql_ -d bidx -At -c "SELECT pg_current_wal_lsn()")
    ck1=$(psql_ -d bidx -At -c "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
    tps=$(echo "$out" | awk '/^tps/ {print $3}')
    R[rows_${v}_$r]=$(awk -v t="$tps" -v b="$BATCH" 'BEGIN { printf "%.0f", t * b }')
    R[walrow_${v}_$r]=$(psql_ -d bidx -At -c "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / ($tps * $BATCH * $DURATION))")
    R[ckpt_${v}_$r]=$((ck1 - ck0))
    R[lat_${v}_$r]=$(pct "$DIR"/log_${v}_$r.[0-9]*)
    echo "bench: $v round $r: ${R[rows_${v}_$r]} rows/s, ${R[walrow_${v}_$r]} WAL bytes/row, ${R[ckpt_${v}_$r]} checkpoints" >&2
}

for r in $(seq 1 $ROUNDS); do
    for v in $VARIANTS; do run $v $r; done
done

for v in $VARIANTS; do
    R[${v}_idx_end]=$(size ri_$v)
    R[count_$v]=$(psql_ -d bidx -At -c "SELECT count(*) FROM ri_$v")
done
# the kvlsm_idx indexes still answer: a sample of rows, each found through every index
R[check]=$(psql_ -d bidx -At -c "SET enable_bitmapscan = off" -c "SET enable_hashjoin = off" -c "SET enable_mergejoin = off" \
    -c "CREATE TEMP TABLE sample AS SELECT a, b, c FROM ri_kvlsm TABLESAMPLE BERNOULLI (0.005)" \
    -c "CREATE TEMP TABLE sample_t AS SELECT a, b, c FROM ri_tiered TABLESAMPLE BERNOULLI (0.005)" \
    -c "SELECT count(*) > 0 AND bool_and((SELECT count(*) FROM ri_kvlsm x WHERE x.a = s.a) > 0 AND (SELECT count(*) FROM ri_kvlsm x WHERE x.b = s.b) > 0 AND (SELECT count(*) FROM ri_kvlsm x WHERE x.c = s.c) > 0) AND (SELECT bool_and((SELECT count(*) FROM ri_tiered x WHERE x.a = t.a) > 0 AND (SELECT count(*) FROM ri_tiered x WHERE x.c = t.c) > 0) FROM sample_t t) FROM sample s")
wa() { psql_ -d bidx -At -c "SELECT string_agg(round(write_amplification::numeric, 1)::text, ' / ' ORDER BY indexrelid) FROM pg_index, kvlsm_stats(indexrelid) WHERE indrelid = '$1'::regclass"; }
WA=$(wa ri_kvlsm)
WA_T=$(wa ri_tiered)

mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1048576 }'; }
{
echo "# Random-key inserts into a heap table with three secondary indexes: btree vs kvlsm_idx"
echo
echo "Produced by \`sudo bash bench/indexes.sh\`$( [ "$QUICK" = 1 ] && echo ' (KVLSM_BENCH_QUICK=1)') on $(date -u +%Y-%m-%d), $(nproc) cores,"
echo "PostgreSQL $($BIN/postgres --version | awk '{print $3}'), shared_buffers = $SHARED_BUFFERS, checkpoint_timeout = 30s,"
echo "max_wal_size = 2GB, synchronous_commit = on; $MEMORY_NOTE."
echo "Three heap tables (a bigint, b bigint, c bigint, pad text) preloaded with the same $ROWS rows of random keys,"
echo "one with three btree indexes, one with three kvlsm_idx indexes, one with three tiered kvlsm_idx indexes (built after"
echo "the load). Each run: $CLIENTS pgbench clients for $DURATION s, each transaction one INSERT of $BATCH rows with random a, b, c; the variants alternate"
echo "($ROUNDS rounds each), with a CHECKPOINT before every run. WAL bytes per row = WAL written during the run / rows inserted."
echo
echo "Index sizes (three indexes) before the runs: btree $(mb ${R[btree_idx_start]}), kvlsm_idx $(mb ${R[kvlsm_idx_start]}), kvlsm_idx tiered $(mb ${R[tiered_idx_start]});"
echo "after: btree $(mb ${R[btree_idx_end]}), kvlsm_idx $(mb ${R[kvlsm_idx_end]}), kvlsm_idx tiered $(mb ${R[tiered_idx_end]})."
echo
echo "| round | variant | rows/s | ratio to btree | WAL bytes/row | checkpoints | p50 / p99 / p99.9 ms per $BATCH-row transaction |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq 1 $ROUNDS); do
    for v in $VARIANTS; do
        read -r l50 l99 l999 <<< "${R[lat_${v}_$r]}"
        echo "| $r | $v | ${R[rows_${v}_$r]} | $(awk -v a=${R[rows_${v}_$r]} -v b=${R[rows_btree_$r]} 'BEGIN { printf "%.2f", a / b }') | ${R[walrow_${v}_$r]} | ${R[ckpt_${v}_$r]} | $l50 / $l99 / $l999 |"
    done
done
for v in $VARIANTS; do
    vals=""
    for r in $(seq 1 $ROUNDS); do vals="$vals ${R[rows_${v}_$r]}"; done
    R[median_$v]=$(echo $vals | tr ' ' '\n' | median)
done
echo
echo "Median rows/s: btree ${R[median_btree]}, kvlsm_idx ${R[median_kvlsm]} (ratio $(awk -v a=${R[median_kvlsm]} -v b=${R[median_btree]} 'BEGIN { printf "%.2f", a / b }')), kvlsm_idx tiered ${R[median_tiered]} (ratio $(awk -v a=${R[median_tiered]} -v b=${R[median_btree]} 'BEGIN { printf "%.2f", a / b }'))."
echo "Rows at the end: btree table ${R[count_btree]}, kvlsm_idx table ${R[count_kvlsm]}, tiered table ${R[count_tiered]}; a 0.005% sample of the rows found through each kvlsm_idx index: ${R[check]}."
echo "Write amplification of the three kvlsm_idx indexes (kvlsm_stats): leveled $WA; tiered $WA_T."
echo
echo "Why the WAL differs: a btree insert into a leaf page first touched since the last checkpoint logs a full"
echo "page image (8 kB); with random keys every leaf page of the three indexes is touched again soon after each"
echo "checkpoint, so btree's WAL per row grows with the index size and the checkpoint frequency. A kvlsm_idx insert"
echo "logs its entry in a batched log page; flushes and compactions then write SSTable pages as full-page"
echo "generic WAL records, once per level an entry passes through, which is what the kvlsm_idx column shows."
} > "$OUT"
cat "$OUT"
