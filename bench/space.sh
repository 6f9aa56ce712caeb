#!/usr/bin/env bash
# Disk footprint (issue 23): the same rows in heap(+btree) and in kvlsm
# (+kvlsm_idx) on the same throwaway server, after background work and a
# plain VACUUM only (what autovacuum does), no manual compaction; plus the
# WAL each load wrote per row, the free-page share of every kvlsm file
# (kvlsm_space), and RocksDB (db_bench fillrandom, Debian's rocksdb-tools)
# storing the same key-value rows.
#
#   sudo bash bench/space.sh                 # 1M rows, writes bench/SPACE.md
#   KVLSM_BENCH_QUICK=1 sudo bash bench/space.sh   # 100k rows, $DIR/SPACE.md
#   KVLSM_SPACE_COMPRESSION=zstd KVLSM_BENCH_OUT=bench/SPACE-zstd.md sudo bash bench/space.sh
#                                  # kvlsm compressing with zstd instead of lz4
#   KVLSM_SPACE_BOTTOMMOST=zstd KVLSM_BENCH_OUT=bench/SPACE-bottommost-zstd.md sudo bash bench/space.sh
#                                  # lz4, but zstd for the bottommost tables
#
# Workloads:
#   kv    1M rows: 16-byte random key, 100-byte value (half of it
#         compressible, as db_bench's default --compression_ratio=0.5), an
#         index on the key; loaded with INSERT ... SELECT
#   acc   pgbench_accounts-like rows (aid, bid, abalance, filler char(84))
#         with a unique index on aid; loaded with COPY
#   churn acc after five rounds of updating a fifth of the rows, each
#         followed by VACUUM; the sizes after every round are plotted
#         (bench/space-churn.png, full runs)
#   ycsb  YCSB's usertable: a 24-byte key with a unique index, ten text
#         fields of 100 random characters; a tenth as many rows
#   events an event log: bigint id, timestamptz, a short text kind and a
#         jsonb payload, an index on the time; loaded with INSERT ... SELECT
# At the end, a full compaction (kvlsm_compact) of kv and acc measures the
# extra room one needs: how much the file grew against the output's size.
# Nothing here is a pass/fail test: it measures and reports.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KVLSM_BENCH_DIR:-/tmp/kvlsm-space}
PORT=${KVLSM_BENCH_PORT:-54331}
QUICK=${KVLSM_BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    ROWS=100000
    OUT=${KVLSM_BENCH_OUT:-$DIR/SPACE.md}
else
    ROWS=1000000
    OUT=${KVLSM_BENCH_OUT:-$TOP/bench/SPACE.md}
fi
SHARED_BUFFERS=1GB
. "$TOP/bench/lib.sh"
# issue 23's relocation and truncation (kvlsm.space_reclaim, on by default);
# KVLSM_SPACE_RECLAIM=off measures without them
RECLAIM=${KVLSM_SPACE_RECLAIM:-on}
start_server "synchronous_commit = on
autovacuum = off
kvlsm.space_reclaim = $RECLAIM"
bench_databases sheap skv
psql_ -d postgres -c "CREATE DATABASE sheap" -c "CREATE DATABASE skv"
psql_ -d skv -c "CREATE EXTENSION kvlsm"
# KVLSM_SPACE_COMPRESSION=zstd: the kvlsm tables and indexes compress with zstd
COMPRESSION=${KVLSM_SPACE_COMPRESSION:-lz4}
psql_ -d skv -c "ALTER DATABASE skv SET kvlsm.default_compression = '$COMPRESSION'"
# KVLSM_SPACE_BOTTOMMOST=zstd: the bottommost tables take zstd (option
# bottommost_compression); "same" (the default) compresses them as the rest
BOTTOM=${KVLSM_SPACE_BOTTOMMOST:-same}
psql_ -d skv -c "ALTER DATABASE skv SET kvlsm.default_bottommost_compression = '$BOTTOM'"
CODECS=$COMPRESSION
[ "$BOTTOM" = same ] || CODECS="$COMPRESSION, bottommost $BOTTOM"

# background work done: no kvlsm relation of the database has work pending
# or running, twice in a row a second apart (at most ten minutes)
settle() {
    local db=$1 quiet=0 i busy
    # a database without kvlsm has no background work of ours
    [ "$(psql_ -d "$db" -At -c "SELECT count(*) FROM pg_extension WHERE extname = 'kvlsm'")" = 1 ] || return 0
    for i in $(seq 1 600); do
        busy=$(psql_ -d "$db" -At -c "
            SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam,
                   LATERAL kvlsm_stats(c.oid::regclass) s
             WHERE a.amname IN ('kvlsm', 'kvlsm_idx')
               AND (s.background_work_pending OR s.compaction_running OR s.jobs_queued > 0)")
        if [ "$busy" = 0 ]; then quiet=$((quiet + 1)); else quiet=0; fi
        [ "$quiet" -ge 2 ] && return 0
        sleep 1
    done
    echo "space: background work did not settle in $db" >&2
}

lsn() { psql_ -d "$1" -At -c "SELECT pg_current_wal_insert_lsn()"; }
wal_since() { psql_ -d "$1" -At -c "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$2')"; }
size_of() { psql_ -d "$1" -At -c "SELECT pg_total_relation_size('$2')"; }
# free pages / all pages over the table and its indexes (kvlsm only)
free_share() {
    psql_ -d skv -At -c "
        SELECT round(100.0 * sum(s.free_pages + s.unreferenced_pages) / nullif(sum(s.total_pages), 0), 1)
          FROM pg_class c JOIN pg_am a ON a.oid = c.relam, LATERAL kvlsm_space(c.oid::regclass) s
         WHERE a.amname IN ('kvlsm', 'kvlsm_idx')
           AND (c.oid = '$1'::regclass
                OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = '$1'::regclass))"
}

# where a kvlsm relation's pages are: kvlsm_space, and how far the live
# SSTables reach (pages past them are a free tail VACUUM can give back)
LAYOUT=""
layout() {
    LAYOUT="$LAYOUT$(psql_ -d skv -At -F ' | ' -c "
        SELECT '| $1 | ' || c.relname, s.total_pages, s.sstable_pages, s.free_pages,
               s.log_pages + s.log_reserve_pages, s.quarantined_pages + s.pending_pages,
               s.unreferenced_pages,
               (SELECT coalesce(max(t.start_block + t.pages), 0) FROM kvlsm_sstables(c.oid::regclass) t) || ' |'
          FROM pg_class c JOIN pg_am a ON a.oid = c.relam, LATERAL kvlsm_space(c.oid::regclass) s
         WHERE a.amname IN ('kvlsm', 'kvlsm_idx')
           AND c.relname IN ('kv', 'kv_k', 'acc', 'acc_aid', 'usertable', 'usertable_key', 'events', 'events_ts')
         ORDER BY c.relname")
"
}

KV_VALUE="repeat(left(md5(random()::text) || md5(random()::text), 50), 2)"
KV_KEY="left(md5(random()::text), 16)"

# YCSB fields: 100 characters from YCSB's alphabet, different per field
YCSB_FIELD="substr(repeat(md5(g::text || '_F') || md5((g + 1)::text || 'F_'), 2), 1, 100)"
YCSB_ROWS=$((ROWS / 10))

declare -A SIZE WAL FREE CHURN
# the accounts rows as pgbench -i makes them (blank filler), for COPY
seq 1 "$ROWS" | awk '{ printf "%d\t%d\t0\t\n", $1, int(($1 - 1) / 100000) + 1 }' >"$DIR/acc.tsv"
chown "$USER_" "$DIR/acc.tsv" 2>/dev/null || true
for sys in heap kvlsm; do
    if [ "$sys" = heap ]; then db=sheap; using=""; iusing="btree"
    else db=skv; using="USING kvlsm"; iusing="kvlsm_idx"; fi

    psql_ -d "$db" -c "CREATE TABLE kv (k text, v text) $using" \
        -c "CREATE INDEX kv_k ON kv USING $iusing (k)"
    start=$(lsn "$db")
    psql_ -d "$db" -c "INSERT INTO kv SELECT $KV_KEY, $KV_VALUE FROM generate_series(1, $ROWS)"
    WAL[kv,$sys]=$(wal_since "$db" "$start")

    psql_ -d "$db" -c "CREATE TABLE acc (aid int, bid int, abalance int, filler char(84)) $using" \
        -c "CREATE UNIQUE INDEX acc_aid ON acc USING $iusing (aid)"
    start=$(lsn "$db")
    psql_ -d "$db" -c "\copy acc FROM '$DIR/acc.tsv'"
    WAL[acc,$sys]=$(wal_since "$db" "$start")

    psql_ -d "$db" -c "CREATE TABLE usertable (ycsb_key varchar(255), $(for f in 0 1 2 3 4 5 6 7 8 9; do printf 'field%d text, ' $f; done | sed 's/, $//')) $using" \
        -c "CREATE UNIQUE INDEX usertable_key ON usertable USING $iusing (ycsb_key)"
    start=$(lsn "$db")
    psql_ -d "$db" -c "INSERT INTO usertable SELECT 'user' || lpad((hashint4(g) & 2147483647)::text || g, 20, '0'), $(for f in 0 1 2 3 4 5 6 7 8 9; do printf '%s, ' "${YCSB_FIELD//_F/$f}"; done | sed 's/, $//') FROM generate_series(1, $YCSB_ROWS) g"
    WAL[ycsb,$sys]=$(wal_since "$db" "$start")

    psql_ -d "$db" -c "CREATE TABLE events (id bigint, ts timestamptz, kind text, payload jsonb) $using" \
        -c "CREATE INDEX events_ts ON events USING $iusing (ts)"
    start=$(lsn "$db")
    psql_ -d "$db" -c "INSERT INTO events SELECT g, timestamptz '2026-01-01' + g * interval '37 ms',
                             (ARRAY['click', 'view', 'purchase', 'login'])[1 + g % 4],
                             jsonb_build_object('user', g % 50000, 'session', md5((g / 20)::text),
                                                'amount', round((g % 1000) / 7.0, 2), 'ok', g % 9 <> 0)
                        FROM generate_series(1, $ROWS) g"
    WAL[events,$sys]=$(wal_since "$db" "$start")

    settle "$db"
    psql_ -d "$db" -c "VACUUM kv" -c "VACUUM acc" -c "VACUUM usertable" -c "VACUUM events"
    settle "$db"
    for t in kv acc usertable events; do SIZE[$t,$sys]=$(size_of "$db" $t); done
    if [ "$sys" = kvlsm ]; then
        for t in kv acc usertable events; do FREE[$t]=$(free_share $t); done
        layout "loaded"
    fi

    CHURN[0,$sys]=${SIZE[acc,$sys]}
    for r in 0 1 2 3 4; do
        psql_ -d "$db" -c "UPDATE acc SET abalance = abalance + 1 WHERE aid % 5 = $r"
        settle "$db"
        psql_ -d "$db" -c "VACUUM acc"
        CHURN[$((r + 1)),$sys]=$(size_of "$db" acc)
    done
    settle "$db"
    psql_ -d "$db" -c "VACUUM acc"
    SIZE[churn,$sys]=$(size_of "$db" acc)
    if [ "$sys" = kvlsm ]; then FREE[churn]=$(free_share acc); layout "after churn"; fi
done

# the extra room a full compaction needs: the growth of the file (which
# nothing shrinks during the compaction: VACUUM does, and autovacuum is
# off) against the size of the output
declare -A ROOM
for t in kv acc; do
    # its memtable flushed first (a small table may hold every row there)
    psql_ -d skv -c "SELECT kvlsm_flush('$t')" >/dev/null
    settle skv
    before=$(psql_ -d skv -At -c "SELECT pg_relation_size('$t') / 8192")
    psql_ -d skv -c "SELECT kvlsm_compact('$t')" >/dev/null
    after=$(psql_ -d skv -At -c "SELECT pg_relation_size('$t') / 8192")
    output=$(psql_ -d skv -At -c "SELECT coalesce(sum(pages), 0) FROM kvlsm_sstables('$t')")
    ROOM[$t]="$before $after $output"
done

# the size of acc after every round of churn, plotted (full runs)
for r in 0 1 2 3 4 5; do echo "$r ${CHURN[$r,heap]} ${CHURN[$r,kvlsm]}"; done >"$DIR/churn.dat"
PLOT=""
if [ "$QUICK" = 0 ]; then
    command -v gnuplot >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null 2>&1 || true
    if command -v gnuplot >/dev/null 2>&1; then
        PLOT="$(dirname "$OUT")/space-churn$([ "$COMPRESSION" = lz4 ] || echo "-$COMPRESSION")$([ "$BOTTOM" = same ] || echo "-bottommost-$BOTTOM").png"
        gnuplot <<GP || { echo "space: gnuplot failed; no plot" >&2; PLOT=""; }
set terminal png size 900,500 noenhanced
set output "$PLOT"
set title "acc + its index ($ROWS rows): size after each round of updating a fifth of the rows, then VACUUM"
set key left bottom
set xlabel "round"
set ylabel "MB"
set yrange [0:*]
plot "$DIR/churn.dat" using 1:(\$2/1048576) with linespoints title "heap + btree", \
     "$DIR/churn.dat" using 1:(\$3/1048576) with linespoints title "kvlsm + kvlsm_idx ($CODECS)"
GP
    fi
fi

# RocksDB with the same key-value rows, with lz4 and with zstd (Debian's
# db_bench has no option for its bottommost_compression)
declare -A ROCKS ROCKS_SST
command -v db_bench >/dev/null 2>&1 || apt-get install -y -qq rocksdb-tools >/dev/null 2>&1 || true
for codec in lz4 zstd; do
    ROCKS[$codec]="not measured (db_bench not available)"
    command -v db_bench >/dev/null 2>&1 || continue
    rm -rf "$DIR/rocksdb"
    db_bench --benchmarks=fillrandom --num="$ROWS" --key_size=16 --value_size=100 \
        --compression_type=$codec --db="$DIR/rocksdb" --disable_wal=false >"$DIR/db_bench.log" 2>&1 &&
        ROCKS[$codec]=$(du -sb --exclude='LOG*' "$DIR/rocksdb" | cut -f1) &&
        ROCKS_SST[$codec]=$(find "$DIR/rocksdb" -name '*.sst' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') || true
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mb() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1048576 }'; }

{
    echo "# Disk footprint: kvlsm against heap + btree"
    echo
    echo "Command: \`$([ "$COMPRESSION" != lz4 ] && echo "KVLSM_SPACE_COMPRESSION=$COMPRESSION ")$([ "$BOTTOM" != same ] && echo "KVLSM_SPACE_BOTTOMMOST=$BOTTOM ")sudo bash bench/space.sh\`$([ "$QUICK" = 1 ] && echo " (KVLSM_BENCH_QUICK=1)"); $(date -u +%Y-%m-%d), kvlsm compression $CODECS,"
    echo "PostgreSQL $(server_version), $ROWS rows per table, $SERVER_NOTE; autovacuum off, a plain VACUUM"
    echo "where the table says so, background flush and compaction only (no kvlsm_compact);"
    echo "kvlsm.space_reclaim = $RECLAIM (VACUUM and the workers move SSTables down and truncate; the default)."
    echo
    echo "| rows | heap + btree (MB) | kvlsm + kvlsm_idx (MB) | kvlsm / heap | free pages in kvlsm files |"
    echo "|---|---|---|---|---|"
    echo "| kv: 16-byte key, 100-byte value, index on key | $(mb "${SIZE[kv,heap]}") | $(mb "${SIZE[kv,kvlsm]}") | $(ratio "${SIZE[kv,kvlsm]}" "${SIZE[kv,heap]}") | ${FREE[kv]}% |"
    echo "| acc: pgbench_accounts-like, unique index on aid | $(mb "${SIZE[acc,heap]}") | $(mb "${SIZE[acc,kvlsm]}") | $(ratio "${SIZE[acc,kvlsm]}" "${SIZE[acc,heap]}") | ${FREE[acc]}% |"
    echo "| acc after 5 x (update a fifth, VACUUM) | $(mb "${SIZE[churn,heap]}") | $(mb "${SIZE[churn,kvlsm]}") | $(ratio "${SIZE[churn,kvlsm]}" "${SIZE[churn,heap]}") | ${FREE[churn]}% |"
    echo "| ycsb: usertable, $YCSB_ROWS rows of ten 100-byte fields, unique index on the key | $(mb "${SIZE[usertable,heap]}") | $(mb "${SIZE[usertable,kvlsm]}") | $(ratio "${SIZE[usertable,kvlsm]}" "${SIZE[usertable,heap]}") | ${FREE[usertable]}% |"
    echo "| events: bigint, timestamptz, text, jsonb; index on the time | $(mb "${SIZE[events,heap]}") | $(mb "${SIZE[events,kvlsm]}") | $(ratio "${SIZE[events,kvlsm]}" "${SIZE[events,heap]}") | ${FREE[events]}% |"
    echo
    echo "Size of acc + its index after each round of churn (MB; round 0 is after the load and VACUUM):"
    echo
    echo "| round | heap + btree | kvlsm + kvlsm_idx | kvlsm / heap |"
    echo "|---|---|---|---|"
    for r in 0 1 2 3 4 5; do
        echo "| $r | $(mb "${CHURN[$r,heap]}") | $(mb "${CHURN[$r,kvlsm]}") | $(ratio "${CHURN[$r,kvlsm]}" "${CHURN[$r,heap]}") |"
    done
    [ -n "$PLOT" ] && echo && echo "![size during churn]($(basename "$PLOT"))"
    echo
    echo "WAL written by the load, bytes per row:"
    echo
    echo "| load | heap + btree | kvlsm + kvlsm_idx | kvlsm / heap |"
    echo "|---|---|---|---|"
    for w in kv acc ycsb events; do
        n=$ROWS; [ "$w" = ycsb ] && n=$YCSB_ROWS
        h=$(awk -v a="${WAL[$w,heap]}" -v n="$n" 'BEGIN { printf "%.0f", a / n }')
        k=$(awk -v a="${WAL[$w,kvlsm]}" -v n="$n" 'BEGIN { printf "%.0f", a / n }')
        case $w in
            kv) label="kv, INSERT ... SELECT" ;;
            acc) label="acc, COPY" ;;
            ycsb) label="ycsb, INSERT ... SELECT" ;;
            events) label="events, INSERT ... SELECT" ;;
        esac
        echo "| $label | $h | $k | $(ratio "$k" "$h") |"
    done
    echo
    echo "Where the pages of the kvlsm files are (\`kvlsm_space\`; \"SSTables reach\" is the end of the highest"
    echo "live SSTable: pages past it are a free tail that VACUUM can give back):"
    echo
    echo "| when | relation | pages | SSTable | free | log + reserve | quarantined + pending | unreferenced | SSTables reach |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s' "$LAYOUT"
    echo
    echo "The extra room a full compaction (\`kvlsm_compact\`, after the churn) needed: how much the"
    echo "file grew, against the size of the output (at most 1.0 is the target):"
    echo
    echo "| table | pages before | pages after | output pages | growth / output |"
    echo "|---|---|---|---|---|"
    for t in kv acc; do
        read -r b a o <<<"${ROOM[$t]}"
        echo "| $t | $b | $a | $o | $(ratio $((a > b ? a - b : 0)) "$o") |"
    done
    echo
    for codec in lz4 zstd; do
        if [[ "${ROCKS[$codec]}" =~ ^[0-9]+$ ]]; then
            echo "RocksDB (\`db_bench --benchmarks=fillrandom --num=$ROWS --key_size=16 --value_size=100"
            echo "--compression_type=$codec\`): $(mb "${ROCKS[$codec]}") MB with its write-ahead log and manifest (info logs"
            echo "excluded), of which SSTables $(mb "${ROCKS_SST[$codec]}") MB; kvlsm's kv table + index / RocksDB $codec: $(ratio "${SIZE[kv,kvlsm]}" "${ROCKS[$codec]}")."
        else
            echo "RocksDB $codec: ${ROCKS[$codec]}."
        fi
        echo
    done
    echo "(kvlsm's files hold its log pages too; RocksDB's WAL is separate files, counted here.)"
} >"$OUT"
cat "$OUT"
