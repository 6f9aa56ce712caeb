#!/usr/bin/env bash
# Ingest, COPY, TPC-B, point reads and random-key inserts with three indexes:
# heap(+btree) and kvlsm in the same run on the same server (a throwaway one,
# or a given one: see bench/lib.sh), reported as ratios and latency
# percentiles, medians of repeats with the systems alternated.  Usually run
# by the driver, bench/bench.sh, which runs bench/ycsb.sh first: RESULTS.md
# takes the latest YCSB and write amplification results and checks targets.
#
#   sudo bash bench/run.sh            # full run (about 15 minutes), writes bench/RESULTS.md
#   KVLSM_BENCH_QUICK=1 sudo bash bench/run.sh   # smoke run (about 1 minute), writes $DIR/RESULTS.md
#
# Nothing here is a pass/fail test: it measures and reports (a quick run
# fails only when a workload produced no numbers).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KVLSM_BENCH_DIR:-/tmp/kvlsm-bench}
PORT=${KVLSM_BENCH_PORT:-54330}
QUICK=${KVLSM_BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    OUT=${KVLSM_BENCH_OUT:-$DIR/RESULTS.md}
else
    OUT=${KVLSM_BENCH_OUT:-$TOP/bench/RESULTS.md}
fi
YCSB_MD=${KVLSM_BENCH_YCSB:-$TOP/bench/YCSB.md}

if [ "$QUICK" = 1 ]; then
    ROWS=200000; SCALE=2; DURATION=5; REPEATS=1
else
    ROWS=1000000; SCALE=10; DURATION=30; REPEATS=3
fi

SHARED_BUFFERS=1GB
. "$TOP/bench/lib.sh"
start_server "synchronous_commit = on"
limit_memory   # KVLSM_BENCH_MEMORY_LIMIT=1536M: the page cache cannot hide misses
bench_databases bheap bkv

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
alternate() { if [ $(($1 % 2)) = 1 ]; then echo "heap kv"; else echo "kv heap"; fi; }
declare -A V
for r in $(seq 1 "$REPEATS"); do
    for am in $(alternate $r); do V[ingest_$am]="${V[ingest_$am]:-} $(ingest b$am)"; done
done
for am in heap kv; do R[ingest_$am]=$(echo ${V[ingest_$am]} | tr ' ' '\n' | median); done

# 2. COPY ingest of the same rows
copyin() {
    local db=$1 ms
    psql_ -d "$db" -c "DROP TABLE IF EXISTS cp" -c "CREATE TABLE cp (id bigint, v bigint, s text)"
    ms=$(psql_ -d "$db" -At -c "\\timing on" -c "COPY cp FROM PROGRAM 'seq 1 $ROWS | awk ''{print \$1\"\\t\"\$1\"\\tsome text\"}''' " | awk '/^Time:/ {print $2}')
    awk -v n="$ROWS" -v ms="$ms" 'BEGIN { printf "%.0f\n", n / (ms / 1000) }'
}
for r in $(seq 1 "$REPEATS"); do
    for am in $(alternate $r); do V[copy_$am]="${V[copy_$am]:-} $(copyin b$am)"; done
done
for am in heap kv; do R[copy_$am]=$(echo ${V[copy_$am]} | tr ' ' '\n' | median); done

# 3. random-key inserts into a table with three secondary indexes:
#    heap+btree (the reference), kvlsm table+btree, heap+kvlsm_idx, kvlsm+kvlsm_idx
#    (one table per variant, so that the repeats can alternate the variants)
VARIANTS="heap_btree kv_btree heap_kvidx kv_kvidx"
for variant in $VARIANTS; do
    cat > "$DIR/ri_$variant.sql" <<SQL
\\set a random(1, 1000000000)
\\set b random(1, 1000000000)
\\set c random(1, 1000000000)
INSERT INTO ri_$variant (a, b, c, pad) VALUES (:a, :b, :c, 'payload-payload-payload');
SQL
done
chown "$USER_" "$DIR"/ri_*.sql 2>/dev/null || true
variant_db() { case $1 in heap_*) echo bheap ;; *) echo bkv ;; esac; }
# preload so that the indexes are larger than a few pages
for variant in $VARIANTS; do
    case $variant in
        heap_btree) am=heap; ix=btree ;;
        kv_btree) am=kvlsm; ix=btree ;;
        heap_kvidx) am=heap; ix=kvlsm_idx ;;
        kv_kvidx) am=kvlsm; ix=kvlsm_idx ;;
    esac
    db=$(variant_db $variant)
    psql_ -d $db -c "CREATE EXTENSION IF NOT EXISTS kvlsm" -c "DROP TABLE IF EXISTS ri_$variant" \
        -c "CREATE TABLE ri_$variant (a bigint, b bigint, c bigint, pad text) USING $am" \
        -c "CREATE INDEX ON ri_$variant USING $ix (a)" -c "CREATE INDEX ON ri_$variant USING $ix (b)" \
        -c "CREATE INDEX ON ri_$variant USING $ix (c)" \
        -c "INSERT INTO ri_$variant SELECT (random()*1e9)::bigint, (random()*1e9)::bigint, (random()*1e9)::bigint, 'payload-payload-payload' FROM generate_series(1, $ROWS)" \
        -c "CHECKPOINT"
    rm -f "$DIR"/ri_$variant.[0-9]* "$DIR/tps_ri_$variant"
done
for rep in $(seq 1 "$REPEATS"); do
    if [ $((rep % 2)) = 1 ]; then order=$VARIANTS; else order=$(echo $VARIANTS | tr ' ' '\n' | tac | tr '\n' ' '); fi
    for variant in $order; do
        out=$(cd "$DIR" && pgbench_ -n -c 4 -j 2 -T "$DURATION" -f ri_$variant.sql -l \
                --log-prefix=ri_$variant.r$rep "$(variant_db $variant)")
        echo "$out" | awk '/^tps/ {printf "%.0f\n", $3}' >> "$DIR/tps_ri_$variant"
    done
done
for variant in $VARIANTS; do
    db=$(variant_db $variant)
    R[ri_tps_$variant]=$(median < "$DIR/tps_ri_$variant")
    R[ri_lat_$variant]=$(pct "$DIR"/ri_$variant.r*)
    R[ri_wal_$variant]=$(psql_ -d $db -At -c "SELECT pg_size_pretty(pg_relation_size('ri_$variant') + coalesce((SELECT sum(pg_relation_size(indexrelid)) FROM pg_index WHERE indrelid = 'ri_$variant'::regclass), 0))")
done

# 4. pgbench TPC-B (tables of the kv database are kvlsm tables), then
# 5. cached point reads (pgbench -S) on the same accounts tables;
#    repeats alternate the two systems, latencies pool every repeat's log
for am in heap kv; do
    pgbench_ -i -q -s "$SCALE" b$am >/dev/null 2>&1
    rm -f "$DIR"/tpcb_$am.* "$DIR"/sel_$am.* "$DIR/tps_tpcb_$am" "$DIR/tps_sel_$am"
done
for mode in tpcb sel; do
    for rep in $(seq 1 "$REPEATS"); do
        for am in $(alternate $rep); do
            flag=""; [ $mode = sel ] && flag=-S
            out=$(cd "$DIR" && pgbench_ -n $flag -c 4 -j 2 -T "$DURATION" -l \
                    --log-prefix=${mode}_$am.r$rep b$am)
            echo "$out" | awk '/^tps/ {printf "%.0f\n", $3}' >> "$DIR/tps_${mode}_$am"
        done
    done
    for am in heap kv; do
        R[${mode}_tps_$am]=$(median < "$DIR/tps_${mode}_$am")
        R[${mode}_lat_$am]=$(pct "$DIR"/${mode}_$am.r*)
    done
done
for am in heap kv; do
    R[tpcb_inv_$am]=$(psql_ -d b$am -At -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches) AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers) AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta),0) FROM pgbench_history)")
done

WA=$(psql_ -d bkv -At -c "SELECT round(write_amplification::numeric, 2) FROM kvlsm_stats('pgbench_accounts')")
WA_RI=$(psql_ -d bkv -At -c "SELECT round(write_amplification::numeric, 2) FROM kvlsm_stats('ri_kv_kvidx')")
COPY_DEBT=$(psql_ -d bkv -At -c "SELECT compaction_debt_bytes FROM kvlsm_stats('cp')")

# every workload must have produced numbers (the test suite's smoke run)
MISSING=""
for k in ingest_heap ingest_kv copy_heap copy_kv tpcb_tps_heap tpcb_tps_kv sel_tps_heap sel_tps_kv \
         ri_tps_heap_btree ri_tps_kv_btree ri_tps_heap_kvidx ri_tps_kv_kvidx; do
    case "${R[$k]:-}" in ""|0) MISSING="$MISSING $k" ;; esac
done

read -r tp_h50 tp_h99 tp_h999 <<< "${R[tpcb_lat_heap]}"
read -r tp_k50 tp_k99 tp_k999 <<< "${R[tpcb_lat_kv]}"
read -r se_h50 se_h99 se_h999 <<< "${R[sel_lat_heap]}"
read -r se_k50 se_k99 se_k999 <<< "${R[sel_lat_kv]}"

{
echo "# kvlsm benchmark results"
echo
echo "Produced by \`sudo bash ${KVLSM_BENCH_BY:-bench/run.sh}$( [ "$QUICK" = 1 ] && echo ' --quick')\` on $(date -u +%Y-%m-%d): this file's workloads"
echo "come from \`bench/run.sh\`, the YCSB section from \`bench/ycsb.sh\` (also \`bench/YCSB.md\`, with plots), the"
echo "write amplification curve from \`bench/wa.sh\` (\`bench/WA.md\`); random-key inserts into indexes larger than"
echo "shared_buffers: \`bench/INDEXES.md\`, from \`bench/indexes.sh\`."
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM. Server: $SERVER_NOTE; PostgreSQL $(server_version),"
echo "shared_buffers = $(server_setting shared_buffers), synchronous_commit = $(server_setting synchronous_commit); heap and kvlsm in the same run on the same server."
echo "Memory: $MEMORY_NOTE."
echo "Rows: $ROWS; pgbench scale $SCALE; $DURATION s per pgbench run, 4 clients; every figure is the median of"
echo "$REPEATS repeats with the systems alternated; latency percentiles pool the per-transaction logs of all repeats."
echo "Ratio = kvlsm / heap (higher is better for throughput)."
echo
echo "| workload | heap | kvlsm | ratio | heap p50 / p99 / p99.9 ms | kvlsm p50 / p99 / p99.9 ms |"
echo "|---|---|---|---|---|---|"
echo "| INSERT ... SELECT, narrow rows (rows/s) | ${R[ingest_heap]} | ${R[ingest_kv]} | $(ratio ${R[ingest_kv]} ${R[ingest_heap]}) | | |"
echo "| COPY FROM (rows/s) | ${R[copy_heap]} | ${R[copy_kv]} | $(ratio ${R[copy_kv]} ${R[copy_heap]}) | | |"
echo "| pgbench TPC-B (tps) | ${R[tpcb_tps_heap]} | ${R[tpcb_tps_kv]} | $(ratio ${R[tpcb_tps_kv]} ${R[tpcb_tps_heap]}) | $tp_h50 / $tp_h99 / $tp_h999 | $tp_k50 / $tp_k99 / $tp_k999 |"
echo "| pgbench -S point reads (tps) | ${R[sel_tps_heap]} | ${R[sel_tps_kv]} | $(ratio ${R[sel_tps_kv]} ${R[sel_tps_heap]}) | $se_h50 / $se_h99 / $se_h999 | $se_k50 / $se_k99 / $se_k999 |"
echo
echo "Random-key INSERT into a table with three secondary indexes ($ROWS rows preloaded, 4 clients, $DURATION s each,"
echo "median of $REPEATS, variants alternated); ratio against heap + btree in the same run; size = table + indexes at the end."
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
# the targets of the issues, against this run and the other drivers' latest results
YC_P99=""
YC_LIGHT_P99=""
[ -f "$YCSB_MD" ] && YC_P99=$(awk -F'|' '$2 ~ /^ *C *$/ {split($9, p, " / "); gsub(/ /, "", p[2]); print p[2]}' "$YCSB_MD")
[ -f "$YCSB_MD" ] && YC_LIGHT_P99=$(awk -F'|' '$2 ~ /C, light load/ {split($5, p, " / "); gsub(/ /, "", p[2]); print p[2]}' "$YCSB_MD")
IDX_RATIO=$(sed -n 's/^Median rows\/s: .*kvlsm_idx tiered [0-9]* (ratio \([0-9.]*\)).*/\1/p' "$TOP/bench/INDEXES.md" 2>/dev/null)
IDX_RATIO_L=$(sed -n 's/^Median rows\/s: .*kvlsm_idx [0-9]* (ratio \([0-9.]*\)), kvlsm_idx tiered.*/\1/p' "$TOP/bench/INDEXES.md" 2>/dev/null)
WA_L=$(awk -F'|' '$2 ~ /leveled/ && $3 ~ /100x/ {gsub(/ /, "", $4); print $4}' "$TOP/bench/WA.md" 2>/dev/null)
WA_T=$(awk -F'|' '$2 ~ /tiered/ && $3 ~ /100x/ {gsub(/ /, "", $4); print $4}' "$TOP/bench/WA.md" 2>/dev/null)
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { if (v == "") print "no number"; else if ((op == ">=" && v + 0 >= t + 0) || (op == "<" && v + 0 < t + 0)) print "met"; else print "**not met**" }'; }
echo
echo "## Targets"
echo
echo "| target | measured | |"
echo "|---|---|---|"
echo "| COPY ingest into a kvlsm table >= 200000 rows/s, compaction debt not growing | ${R[copy_kv]} rows/s; debt after the last COPY ${COPY_DEBT:-?} bytes | $(met "${R[copy_kv]}" 200000 '>=') |"
echo "| random-key ingest with three indexes >= 3x heap+btree | this run (cached): kvlsm+kvlsm_idx $(ratio ${R[ri_tps_kv_kvidx]} ${R[ri_tps_heap_btree]})x, heap+kvlsm_idx $(ratio ${R[ri_tps_heap_kvidx]} ${R[ri_tps_heap_btree]})x; INDEXES.md (indexes larger than shared_buffers): kvlsm_idx ${IDX_RATIO_L:-?}x, tiered ${IDX_RATIO:-?}x | $(met "${IDX_RATIO:-}" 3 '>=') |"
echo "| YCSB C point-read p99 < 1 ms, clients <= cores | kvlsm p99 ${YC_LIGHT_P99:-?} ms at light load (a tenth of throughput), ${YC_P99:-?} ms at 70% (open loop, YCSB section) | $(met "${YC_LIGHT_P99:-}" 1 '<') |"
echo "| write amplification at 100x memtable: leveled < 10, tiered < 5 | leveled ${WA_L:-?}, tiered ${WA_T:-?} (WA section) | $(met "${WA_L:-}" 10 '<') / $(met "${WA_T:-}" 5 '<') |"
# the YCSB workloads and the write amplification curve, kept from their last runs
if [ -f "$YCSB_MD" ]; then
    echo
    sed '1s/^# /## /' "$YCSB_MD"
fi
if [ -f "$TOP/bench/WA.md" ]; then
    echo
    cat "$TOP/bench/WA.md"
fi
} > "$OUT"
cat "$OUT"
if [ -n "$MISSING" ]; then
    echo "bench: no numbers for:$MISSING" >&2
    exit 1
fi
