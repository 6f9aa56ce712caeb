#!/usr/bin/env bash
# YCSB-style workloads A-F on heap+btree and on kvlsm (+btree primary key),
# in the same run on the same throwaway server, alternating the two systems.
#
#   sudo bash bench/ycsb.sh            # full run (about 27 minutes), writes bench/YCSB.md
#   KVLSM_BENCH_MEMORY_LIMIT=1536M sudo bash bench/ycsb.sh   # the server in a memory cgroup
#   sudo bash bench/ycsb.sh --quick    # smoke run (about 2 minutes), writes $DIR/YCSB.md
#
# Keys are chosen with random_zipfian(s = 1.01) wrapped in permute(), so the
# hot keys are scattered over the key space.  For every workload each system
# first runs closed-loop (as fast as it can: throughput), then both run
# open-loop at the same fixed rate (pgbench -R, 70% of the slower system's
# throughput), and the latency percentiles come from pgbench's
# per-transaction logs, which count from the scheduled start, so a stall
# shows up as latency instead of being hidden by coordinated omission.
# Medians over the repeats; the order of the two systems alternates.
# Nothing here is a pass/fail test, except that --quick fails when a
# workload produced no numbers (the test suite runs it as a smoke test).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KVLSM_BENCH_DIR:-/tmp/kvlsm-ycsb}
PORT=${KVLSM_BENCH_PORT:-54331}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

if [ "$QUICK" = 1 ]; then
    RECORDS=20000; DURATION=3; REPEATS=1; CLIENTS=2
    OUT=${KVLSM_BENCH_OUT:-$DIR/YCSB.md}
    CKPT=5min
else
    RECORDS=500000; DURATION=30; REPEATS=3; CLIENTS=2
    OUT=${KVLSM_BENCH_OUT:-$TOP/bench/YCSB.md}
    CKPT=30s        # runs of 2 x 30 s span at least two checkpoints
fi

SHARED_BUFFERS=1GB
. "$TOP/bench/lib.sh"
start_server "checkpoint_timeout = $CKPT
synchronous_commit = on"
limit_memory   # KVLSM_BENCH_MEMORY_LIMIT=1536M: the page cache cannot hide misses
bench_databases yheap ykv

psql_ -d postgres -c "CREATE DATABASE yheap" -c "CREATE DATABASE ykv"
psql_ -d ykv -c "CREATE EXTENSION kvlsm" -c "ALTER DATABASE ykv SET default_table_access_method = kvlsm"

# ---- schema and load ---------------------------------------------------------
load_secs() { # db -> seconds to load
    local db=$1 t0 t1
    psql_ -d "$db" -c "CREATE TABLE usertable (ycsb_key bigint PRIMARY KEY,
        field0 text, field1 text, field2 text, field3 text, field4 text,
        field5 text, field6 text, field7 text, field8 text, field9 text)"
    t0=$(date +%s.%N)
    psql_ -d "$db" -c "INSERT INTO usertable SELECT g,
        repeat(md5(g::text), 3), repeat(md5((g+1)::text), 3), repeat(md5((g+2)::text), 3),
        repeat(md5((g+3)::text), 3), repeat(md5((g+4)::text), 3), repeat(md5((g+5)::text), 3),
        repeat(md5((g+6)::text), 3), repeat(md5((g+7)::text), 3), repeat(md5((g+8)::text), 3),
        repeat(md5((g+9)::text), 3)
        FROM generate_series(1, $RECORDS) g"
    t1=$(date +%s.%N)
    psql_ -d "$db" -c "CREATE SEQUENCE ycsb_seq START $((RECORDS + 1))" -c "ANALYZE usertable"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }'
}
LOAD_heap=$(load_secs yheap)
LOAD_kv=$(load_secs ykv)

# ---- pgbench scripts ---------------------------------------------------------
S=$DIR/scripts; mkdir -p "$S"
KEY='\set z random_zipfian(1, :n, 1.01)
\set k permute(:z - 1, :n) + 1'
cat > "$S/read.sql" <<EOF
$KEY
SELECT * FROM usertable WHERE ycsb_key = :k;
EOF
cat > "$S/update.sql" <<EOF
$KEY
UPDATE usertable SET field3 = md5(random()::text) WHERE ycsb_key = :k;
EOF
cat > "$S/insert.sql" <<'EOF'
INSERT INTO usertable SELECT nextval('ycsb_seq'), md5(random()::text), md5(random()::text),
  md5(random()::text), md5(random()::text), md5(random()::text), md5(random()::text),
  md5(random()::text), md5(random()::text), md5(random()::text), md5(random()::text);
EOF
cat > "$S/read_latest.sql" <<'EOF'
\set off random_zipfian(0, 1000, 1.01)
SELECT * FROM usertable WHERE ycsb_key = (SELECT last_value FROM ycsb_seq) - :off;
EOF
cat > "$S/scan.sql" <<EOF
$KEY
\set len random(1, 100)
SELECT * FROM usertable WHERE ycsb_key >= :k ORDER BY ycsb_key LIMIT :len;
EOF
cat > "$S/rmw.sql" <<EOF
$KEY
BEGIN;
SELECT field5 FROM usertable WHERE ycsb_key = :k;
UPDATE usertable SET field5 = md5(random()::text) WHERE ycsb_key = :k;
COMMIT;
EOF
chown -R "$USER_" "$S"

declare -A MIX=(
    [A]="read.sql@50 update.sql@50"
    [B]="read.sql@95 update.sql@5"
    [C]="read.sql@100"
    [D]="read_latest.sql@95 insert.sql@5"
    [E]="scan.sql@95 insert.sql@5"
    [F]="read.sql@50 rmw.sql@50"
)
declare -A DESC=(
    [A]="50% read, 50% update"
    [B]="95% read, 5% update"
    [C]="100% read"
    [D]="95% read latest, 5% insert"
    [E]="95% short scan (1-100 rows), 5% insert"
    [F]="50% read, 50% read-modify-write"
)

pgb_args() { # workload -> -f args
    local a=()
    for s in ${MIX[$1]}; do a+=(-f "$S/$s"); done
    echo "${a[@]}"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
wal_lsn() { psql_ -d postgres -At -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }

# closed loop: tps, and WAL bytes per transaction; per-second aggregates
# of the run go to $DIR/agg_<db>_<workload> (the last repeat's are plotted)
closed() { # db workload -> "tps walbytes_per_tx"
    local db=$1 w=$2 out w0 w1 n aggdir=$DIR/agg_${1}_$2
    rm -rf "$aggdir"; mkdir -p "$aggdir"; chown "$USER_" "$aggdir"
    w0=$(wal_lsn)
    out=$(cd "$aggdir" && pgbench_ -n -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" -l --aggregate-interval=1 \
            --log-prefix="$aggdir/agg" -D n="$RECORDS" $(pgb_args "$w") "$db" 2>&1) || {
        echo "$out" >&2; echo "0 0"; return; }
    w1=$(wal_lsn)
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    awk -v t="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)" -v w="$((w1 - w0))" -v n="${n:-0}" \
        'BEGIN { printf "%.0f %.0f\n", t, (n > 0 ? w / n : 0) }'
}

# open loop at a fixed rate: p50 p99 p99.9 (ms) and achieved tps
open_loop() { # db workload rate -> "p50 p99 p999 tps"
    local db=$1 w=$2 rate=$3 logdir out
    logdir=$DIR/log_${db}_$w; rm -rf "$logdir"; mkdir -p "$logdir"; chown "$USER_" "$logdir"
    out=$(cd "$logdir" && pgbench_ -n -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" -R "$rate" -l \
            --log-prefix="$logdir/tx" -D n="$RECORDS" $(pgb_args "$w") "$db" 2>&1) || {
        echo "$out" >&2; echo "- - - 0"; return; }
    cat "$logdir"/tx* 2>/dev/null | awk '{print $3}' | sort -n | awk -v tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)" '
        {a[NR]=$1} END {
        if (NR == 0) { print "- - - 0"; exit }
        i50=int(NR*0.50); if (i50<1) i50=1; i99=int(NR*0.99); if (i99<1) i99=1; i999=int(NR*0.999); if (i999<1) i999=1;
        printf "%.3f %.3f %.3f %.0f\n", a[i50]/1000, a[i99]/1000, a[i999]/1000, tps }'
}

# warm both systems' caches (not measured)
for db in yheap ykv; do
    pgbench_ -n -c "$CLIENTS" -T "$DURATION" -D n="$RECORDS" -f "$S/read.sql" "$db" >/dev/null 2>&1 || true
done

declare -A TPS WALTX P50 P99 P999 OTPS RATE
FAILED=0
for w in A B C D E F; do
    for sys in heap kv; do : > "$DIR/tps_${sys}_$w"; : > "$DIR/wal_${sys}_$w"; done
    for rep in $(seq 1 "$REPEATS"); do
        if [ $((rep % 2)) = 1 ]; then order="heap kv"; else order="kv heap"; fi
        for sys in $order; do
            read -r t wb < <(closed "y$sys" "$w")
            echo "$t" >> "$DIR/tps_${sys}_$w"; echo "$wb" >> "$DIR/wal_${sys}_$w"
        done
    done
    for sys in heap kv; do
        TPS[${sys}_$w]=$(median < "$DIR/tps_${sys}_$w")
        WALTX[${sys}_$w]=$(median < "$DIR/wal_${sys}_$w")
    done
    th=${TPS[heap_$w]}; tk=${TPS[kv_$w]}
    lo=$(( th < tk ? th : tk ))
    RATE[$w]=$(( lo * 7 / 10 )); [ "${RATE[$w]}" -ge 1 ] || RATE[$w]=1
    # open loop: as many repeats, alternated; the median of each percentile
    for sys in heap kv; do : > "$DIR/ol_${sys}_$w"; done
    for rep in $(seq 1 "$REPEATS"); do
        if [ $((rep % 2)) = 1 ]; then order="heap kv"; else order="kv heap"; fi
        for sys in $order; do
            open_loop "y$sys" "$w" "${RATE[$w]}" >> "$DIR/ol_${sys}_$w"
        done
    done
    for sys in heap kv; do
        a=$(awk '$1 != "-" {print $1}' "$DIR/ol_${sys}_$w" | median)
        b=$(awk '$2 != "-" {print $2}' "$DIR/ol_${sys}_$w" | median)
        c=$(awk '$3 != "-" {print $3}' "$DIR/ol_${sys}_$w" | median)
        d=$(awk '{print $4}' "$DIR/ol_${sys}_$w" | median)
        if grep -q '^-' "$DIR/ol_${sys}_$w"; then a=-; fi
        P50[${sys}_$w]=$a; P99[${sys}_$w]=$b; P999[${sys}_$w]=$c; OTPS[${sys}_$w]=$d
        if [ "${TPS[${sys}_$w]}" = 0 ] || [ "$a" = "-" ]; then
            echo "ycsb: workload $w on $sys produced no numbers" >&2; FAILED=1
        fi
    done
    echo "ycsb: $w done: heap ${TPS[heap_$w]} tps, kvlsm ${TPS[kv_$w]} tps; p99 at ${RATE[$w]}/s: heap ${P99[heap_$w]} ms, kvlsm ${P99[kv_$w]} ms"
done

# point reads at light load (a tenth of the slower system's throughput):
# what a cached read costs when the server is not queueing, next to the
# 70% runs above, where on a small machine both systems queue
LIGHT_RATE=$(( RATE[C] / 7 )); [ "$LIGHT_RATE" -ge 1 ] || LIGHT_RATE=1
for sys in heap kv; do : > "$DIR/light_${sys}"; done
for rep in $(seq 1 "$REPEATS"); do
    if [ $((rep % 2)) = 1 ]; then order="heap kv"; else order="kv heap"; fi
    for sys in $order; do
        open_loop "y$sys" C "$LIGHT_RATE" >> "$DIR/light_${sys}"
    done
done
declare -A LIGHT
for sys in heap kv; do
    LIGHT[$sys]="$(awk '$1 != "-" {print $1}' "$DIR/light_$sys" | median) / $(awk '$2 != "-" {print $2}' "$DIR/light_$sys" | median) / $(awk '$3 != "-" {print $3}' "$DIR/light_$sys" | median)"
done
echo "ycsb: C at light load ($LIGHT_RATE/s): heap ${LIGHT[heap]} ms, kvlsm ${LIGHT[kv]} ms"

# space, HOT updates, write amplification
SPACE_heap=$(psql_ -d yheap -At -c "SELECT pg_total_relation_size('usertable')")
SPACE_kv=$(psql_ -d ykv -At -c "SELECT pg_total_relation_size('usertable')")
HOT=$(psql_ -d yheap -At -c "SELECT CASE WHEN n_tup_upd > 0 THEN round(100.0 * n_tup_hot_upd / n_tup_upd, 1) END FROM pg_stat_user_tables WHERE relname = 'usertable'")
WA=$(psql_ -d ykv -At -c "SELECT round(write_amplification::numeric, 2) FROM kvlsm_stats('usertable')")

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
{
    echo "# YCSB-style workloads: kvlsm vs heap+btree"
    echo
    echo "Produced by \`sudo bash bench/ycsb.sh$([ "$QUICK" = 1 ] && echo ' --quick')\` on $(date -u +%Y-%m-%d)"
    echo "($(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, PostgreSQL $(server_version),"
    echo "shared_buffers = $(server_setting shared_buffers), synchronous_commit = $(server_setting synchronous_commit),"
    echo "checkpoint_timeout = $(server_setting checkpoint_timeout); server: $SERVER_NOTE)."
    echo
    echo "$RECORDS records of 10 text fields (about 1 kB a row), primary key btree index on both."
    echo "$CLIENTS clients (no more than the cores). Keys: \`permute(random_zipfian(1, n, 1.01))\`."
    echo "Throughput: closed-loop runs of ${DURATION} s, median of $REPEATS, systems alternated."
    echo "Latency: open-loop runs of ${DURATION} s at the same rate for both (70% of the slower"
    echo "system's throughput), percentiles of pgbench's per-transaction log, measured from each"
    echo "transaction's scheduled start; median of $REPEATS such runs per system, alternated. Memory: $MEMORY_NOTE."
    [ -n "${KVLSM_BENCH_MEMORY_LIMIT:-}" ] ||
        echo "The data fits in shared buffers and the OS page cache: these are cached-read numbers."
    echo
    echo "| workload | mix | heap tps | kvlsm tps | kvlsm/heap | rate | heap p50 / p99 / p99.9 ms | kvlsm p50 / p99 / p99.9 ms | WAL bytes/tx heap | WAL bytes/tx kvlsm |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for w in A B C D E F; do
        echo "| $w | ${DESC[$w]} | ${TPS[heap_$w]} | ${TPS[kv_$w]} | $(ratio "${TPS[kv_$w]}" "${TPS[heap_$w]}") | ${RATE[$w]}/s |" \
             "${P50[heap_$w]} / ${P99[heap_$w]} / ${P999[heap_$w]} | ${P50[kv_$w]} / ${P99[kv_$w]} / ${P999[kv_$w]} |" \
             "${WALTX[heap_$w]} | ${WALTX[kv_$w]} |"
    done
    echo
    echo "Point reads at light load: workload C open loop at a tenth of the slower system's throughput,"
    echo "$REPEATS runs per system, alternated, median of each percentile."
    echo
    echo "| load | rate | heap p50 / p99 / p99.9 ms | kvlsm p50 / p99 / p99.9 ms |"
    echo "|---|---|---|---|"
    echo "| C, light load | ${LIGHT_RATE}/s | ${LIGHT[heap]} | ${LIGHT[kv]} |"
    echo
    echo "Load of $RECORDS rows (INSERT ... SELECT): heap ${LOAD_heap} s, kvlsm ${LOAD_kv} s."
    echo "Space after all workloads (table and indexes): heap $(mb "$SPACE_heap") MB, kvlsm $(mb "$SPACE_kv") MB."
    echo "Heap HOT updates: ${HOT:-?}% of updates. kvlsm write amplification: ${WA:-?}."
} > "$OUT"
chown "$USER_" "$OUT" 2>/dev/null || true

# plots (full runs): throughput over time of the last closed-loop repeat, and
# the open-loop latency percentiles, next to the results
if [ "$QUICK" = 0 ]; then
    command -v gnuplot >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null 2>&1 || true
fi
if [ "$QUICK" = 0 ] && command -v gnuplot >/dev/null 2>&1; then
    PLOTDIR=$(dirname "$OUT")
    for w in A B C D E F; do
        for sys in heap kv; do
            # interval_start num_transactions ... summed over the clients' files
            cat "$DIR/agg_y${sys}_$w"/agg* 2>/dev/null | awk '{n[$1] += $2} END {for (t in n) print t, n[t]}' |
                sort -n | awk 'NR == 1 {t0 = $1} {print $1 - t0, $2}' > "$DIR/ts_${sys}_$w.dat"
        done
        echo "$w ${P50[heap_$w]} ${P99[heap_$w]} ${P999[heap_$w]} ${P50[kv_$w]} ${P99[kv_$w]} ${P999[kv_$w]}"
    done > "$DIR/lat.dat"
    gnuplot <<GP || echo "ycsb: gnuplot failed; no plots" >&2
set terminal png size 1400,900
set output "$PLOTDIR/ycsb-throughput.png"
set multiplot layout 2,3 title "YCSB throughput over time (closed loop, last repeat; tx/s)"
$(for w in A B C D E F; do printf 'set title "%s"\nset xlabel "s"\nplot "%s" using 1:2 with lines title "heap", "%s" using 1:2 with lines title "kvlsm"\n' "$w" "$DIR/ts_heap_$w.dat" "$DIR/ts_kv_$w.dat"; done)
unset multiplot
set output "$PLOTDIR/ycsb-latency.png"
unset xlabel
set title "YCSB open-loop latency percentiles (ms, log scale; same rate for both)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set logscale y
set key top left
plot "$DIR/lat.dat" using 2:xtic(1) title "heap p50", "" using 3 title "heap p99", "" using 4 title "heap p99.9", \
     "" using 5 title "kvlsm p50", "" using 6 title "kvlsm p99", "" using 7 title "kvlsm p99.9"
GP
    {
        echo
        echo "Plots: \`ycsb-throughput.png\` (throughput over time) and \`ycsb-latency.png\` (latency percentiles)."
    } >> "$OUT"
fi
cat "$OUT"
exit $FAILED
