#!/usr/bin/env bash
# kvlsm benchmark driver: heap(+btree) and kvlsm in the same run on the same
# throwaway server, reported as ratios and latency percentiles.
#
#   sudo bash bench/run.sh            # full run (about 10 minutes), writes bench/RESULTS.md
#   KVLSM_BENCH_QUICK=1 sudo bash bench/run.sh   # smoke run (about 1 minute)
#
# Nothing here is a pass/fail test: it measures and reports.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KVLSM_BENCH_DIR:-/tmp/kvlsm-bench}
PORT=${KVLSM_BENCH_PORT:-54330}
QUICK=${KVLSM_BENCH_QUICK:-0}
OUT=${KVLSM_BENCH_OUT:-$TOP/bench/RESULTS.md}

if [ "$QUICK" = 1 ]; then
    ROWS=200000; SCALE=2; DURATION=5; ROUNDS=1
else
    ROWS=1000000; SCALE=10; DURATION=30; ROUNDS=3
fi

SHARED_BUFFERS=1GB
. "$TOP/bench/lib.sh"
start_server "synchronous_commit = on"

psql_ -d postgres -c "CREATE DATABASE bheap" -c "CREATE DATABASE bkv"
psql_ -d bkv -c "CREATE EXTENSION kvlsm" -c "ALTER DATABASE bkv SET default_table_access_method = kvlsm"

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }
# percentiles (microseconds) from pgbench per-transaction logs (3rd column)
pct() { # file... -> "p50 p99 p99.9" in ms
    cat "$@" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {
        if (NR == 0) { print "- - -"; exit }
        i50=int(NR*0.50); if (i50<1) i50=1; i99=int(NR*0.99); if (i99<1) i99=1; i999=int(NR*0.999); if (i999<1) i999=1;
        printf "%.2f %.2f %.2f\n", a[i50]/1000, a[i99]/1000, a[i999]/1000 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

declare -A R

# 1. bulk ingest: INSERT ... SELECT generate_series of narrow rows
ingest() { # db am -> rows/s
    local db=$1 ms
    psql_ -d "$db" -c "DROP TABLE IF EXISTS ing" -c "CREATE TABLE ing (id bigint, v bigint)"
    ms=$(psql_ -d "$db" -At -c "\\timing on" -c "INSERT INTO ing SELECT g, g FROM generate_series(1, $ROWS) g" | awk '/^Time:/ {print $2}')
    awk -v n="$ROWS" -v ms="$ms" 'BEGIN { printf "%.0f\n", n / (ms / 1000) }'
}
for am in heap kv; do
    vals=""
    for r in $(seq 1 $ROUNDS); do vals="$vals $(ingest b$am)"; done
    R[ingest_$am]=$(echo $vals | tr ' ' '\n' | median)
done

# 2. COPY ingest of the same rows
copyin() {
    local db=$1 ms
    psql_ -d "$db" -c "DROP TABLE IF EXISTS cp" -c "CREATE TABLE cp (id bigint, v bigint, s text)"
    ms=$(psql_ -d "$db" -At -c "\\timing on" -c "COPY cp FROM PROGRAM 'seq 1 $ROWS | awk ''{print \$1\"\\t\"\$1\"\\tsome text\"}''' " | awk '/^Time:/ {print $2}')
    awk -v n="$ROWS" -v ms="$ms" 'BEGIN { printf "%.0f\n", n / (ms / 1000) }'
}
for am in heap kv; do
    vals=""
    for r in $(seq 1 $ROUNDS); do vals="$vals $(copyin b$am)"; done
    R[copy_$am]=$(echo $vals | tr ' ' '\n' | median)
done

# 3. random-key inserts into a table with three secondary indexes:
#    heap+btree (the reference), kvlsm table+btree, heap+kvlsm_idx, kvlsm+kvlsm_idx
cat > "$DIR/rand_insert.sql" <<'SQL'
\set a random(1, 1000000000)
\set b random(1, 1000000000)
\set c random(1, 1000000000)
INSERT INTO ri (a, b, c, pad) VALUES (:a, :b, :c, 'payload-payload-payload');
SQL
chown "$USER_" "$DIR/rand_insert.sql"
# preload so that the indexes are larger than a few pages
for variant in heap_btree kv_btree heap_kvidx kv_kvidx; do
    case $variant in
        heap_btree) db=bheap; am=heap; ix=btree ;;
        kv_btree) db=bkv; am=kvlsm; ix=btree ;;
        heap_kvidx) db=bheap; am=heap; ix=kvlsm_idx ;;
        kv_kvidx) db=bkv; am=kvlsm; ix=kvlsm_idx ;;
    esac
    psql_ -d bkv -c "SELECT 1" >/dev/null
    psql_ -d $db -c "CREATE EXTENSION IF NOT EXISTS kvlsm" -c "DROP TABLE IF EXISTS ri" \
        -c "CREATE TABLE ri (a bigint, b bigint, c bigint, pad text) USING $am" \
        -c "CREATE INDEX ON ri USING $ix (a)" -c "CREATE INDEX ON ri USING $ix (b)" -c "CREATE INDEX ON ri USING $ix (c)" \
        -c "INSERT INTO ri SELECT (random()*1e9)::bigint, (random()*1e9)::bigint, (random()*1e9)::bigint, 'payload-payload-payload' FROM generate_series(1, $ROWS)" \
        -c "CHECKPOINT"
    rm -f "$DIR"/ri_$variant.[0-9]*
    out=$(cd "$DIR" && pgbench_ -n -c 4 -j 2 -T "$DURATION" -f rand_insert.sql -l --log-prefix=ri_$variant $db)
    R[ri_tps_$variant]=$(echo "$out" | awk '/^tps/ {printf "%.0f", $3}')
    R[ri_lat_$variant]=$(pct "$DIR"/ri_$variant.[0-9]*)
    R[ri_wal_$variant]=$(psql_ -d $db -At -c "SELECT pg_size_pretty(pg_relation_size('ri') + coalesce((SELECT sum(pg_relation_size(indexrelid)) FROM pg_index WHERE indrelid = 'ri'::regclass), 0))")
done

# 4. pgbench TPC-B (tables of the kv database are kvlsm tables)
for am in heap kv; do
    pgbench_ -i -q -s "$SCALE" b$am >/dev/null 2>&1
    rm -f "$DIR"/tpcb_$am.[0-9]*
    out=$(cd "$DIR" && pgbench_ -n -c 4 -j 2 -T "$DURATION" -l --log-prefix=tpcb_$am b$am)
    R[tpcb_tps_$am]=$(echo "$out" | awk '/^tps/ {printf "%.0f", $3}')
    R[tpcb_lat_$am]=$(pct "$DIR"/tpcb_$am.[0-9]*)
    R[tpcb_inv_$am]=$(psql_ -d b$am -At -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches) AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers) AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta),0) FROM pgbench_history)")
done

# 5. cached point reads (pgbench -S) on the same accounts tables
for am in heap kv; do
    rm -f "$DIR"/sel_$am.[0-9]*
    out=$(cd "$DIR" && pgbench_ -n -S -c 4 -j 2 -T "$DURATION" -l --log-prefix=sel_$am b$am)
    R[sel_tps_$am]=$(echo "$out" | awk '/^tps/ {printf "%.0f", $3}')
    R[sel_lat_$am]=$(pct "$DIR"/sel_$am.[0-9]*)
done

WA=$(psql_ -d bkv -At -c "SELECT round(write_amplification::numeric, 2) FROM kvlsm_stats('pgbench_accounts')")
WA_RI=$(psql_ -d bkv -At -c "SELECT round(write_amplification::numeric, 2) FROM kvlsm_stats('ri')")

read -r tp_h50 tp_h99 tp_h999 <<< "${R[tpcb_lat_heap]}"
read -r tp_k50 tp_k99 tp_k999 <<< "${R[tpcb_lat_kv]}"
read -r se_h50 se_h99 se_h999 <<< "${R[sel_lat_heap]}"
read -r se_k50 se_k99 se_k999 <<< "${R[sel_lat_kv]}"

{
echo "# kvlsm benchmark results"
echo
echo "(YCSB-style workloads A-F: \`bench/YCSB.md\`, from \`bench/ycsb.sh\`; write amplification: \`bench/WA.md\`;"
echo "random-key inserts into a heap table with three btree or kvlsm_idx indexes larger than shared_buffers:"
echo "\`bench/INDEXES.md\`, from \`bench/indexes.sh\`.)"
echo
echo "Produced by \`sudo bash bench/run.sh\`$( [ "$QUICK" = 1 ] && echo ' (KVLSM_BENCH_QUICK=1)') on $(date -u +%Y-%m-%d), $(nproc) cores,"
echo "PostgreSQL $($BIN/postgres --version | awk '{print $3}'), shared_buffers = 1GB, one server, heap and kvlsm in the same run."
echo "Rows: $ROWS; pgbench scale $SCALE; $DURATION s per pgbench run, 4 clients; ingest figures are the median of $ROUNDS rounds."
echo "Latencies in ms from pgbench per-transaction logs. Ratio = kvlsm / heap (higher is better for throughput)."
echo
echo "| workload | heap | kvlsm | ratio | heap p50 / p99 / p99.9 | kvlsm p50 / p99 / p99.9 |"
echo "|---|---|---|---|---|---|"
echo "| INSERT ... SELECT, narrow rows (rows/s) | ${R[ingest_heap]} | ${R[ingest_kv]} | $(ratio ${R[ingest_kv]} ${R[ingest_heap]}) | | |"
echo "| COPY FROM (rows/s) | ${R[copy_heap]} | ${R[copy_kv]} | $(ratio ${R[copy_kv]} ${R[copy_heap]}) | | |"
echo "| pgbench TPC-B (tps) | ${R[tpcb_tps_heap]} | ${R[tpcb_tps_kv]} | $(ratio ${R[tpcb_tps_kv]} ${R[tpcb_tps_heap]}) | $tp_h50 / $tp_h99 / $tp_h999 | $tp_k50 / $tp_k99 / $tp_k999 |"
echo "| pgbench -S point reads (tps) | ${R[sel_tps_heap]} | ${R[sel_tps_kv]} | $(ratio ${R[sel_tps_kv]} ${R[sel_tps_heap]}) | $se_h50 / $se_h99 / $se_h999 | $se_k50 / $se_k99 / $se_k999 |"
echo
echo "Random-key INSERT into a table with three secondary indexes ($ROWS rows preloaded, 4 clients, $DURATION s each);"
echo "ratio against heap + btree in the same run; size = table + indexes at the end."
echo
echo "| table + indexes | tps | ratio | p50 / p99 / p99.9 ms | size |"
echo "|---|---|---|---|---|"
for v in heap_btree kv_btree heap_kvidx kv_kvidx; do
    read -r l50 l99 l999 <<< "${R[ri_lat_$v]}"
    echo "| $v | ${R[ri_tps_$v]} | $(ratio ${R[ri_tps_$v]} ${R[ri_tps_heap_btree]}) | $l50 / $l99 / $l999 | ${R[ri_wal_$v]} |"
done
echo
echo "TPC-B balance invariant after the run: heap ${R[tpcb_inv_heap]}, kvlsm ${R[tpcb_inv_kv]} (t = holds)."
echo
echo "Write amplification of the kvlsm tables (log + flush + compaction bytes / bytes ingested,"
echo "from kvlsm_stats): pgbench_accounts $WA, random-key table $WA_RI."
echo
echo "Notes: flush and compaction run in kvlsm's background workers (kvlsm.max_workers = 2), which"
echo "share the machine's cores with the benchmark clients and the server backends."
# the write amplification curve of bench/wa.sh, kept from its last run
if [ -f "$TOP/bench/WA.md" ]; then
    echo
    cat "$TOP/bench/WA.md"
fi
} > "$OUT"
cat "$OUT"
