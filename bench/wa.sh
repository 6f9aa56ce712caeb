#!/usr/bin/env bash
# Write amplification of kvlsm's LSMs under a random-key, update-heavy
# workload, for leveled and tiered compaction, as a curve at 10x, 100x and
# 300x the memtable size written.
#
#   sudo bash bench/wa.sh                    # writes bench/WA.md, updates bench/RESULTS.md
#   KVLSM_WA_MULTIPLES="10 100" sudo bash bench/wa.sh
#
# Per LSM (the table and its kvlsm_idx index), from kvlsm_stats:
#   WA = (log pages + flushed SSTables + compaction output) / logical bytes
# and, separately, PostgreSQL WAL bytes per logical byte of both LSMs (every
# page kvlsm writes is also a generic WAL record).  Compaction debt is shown
# as L0 tables and the bytes by which levels exceed their targets at each
# point; it must not grow with the volume written.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KVLSM_WA_DIR:-/tmp/kvlsm-wa}
PORT=${KVLSM_WA_PORT:-54331}
MEMTABLE_KB=${KVLSM_WA_MEMTABLE_KB:-256}
MULTIPLES=${KVLSM_WA_MULTIPLES:-"10 100 300"}
# the preload is about 3 memtables, so the 10x point is reached by updates
ROWS=${KVLSM_WA_ROWS:-$((MEMTABLE_KB * 1024 * 3 / 150))}
BATCH=20

SHARED_BUFFERS=512MB
. "$TOP/bench/lib.sh"
start_server
# every query of this driver runs in database postgres
psql_() { as_user "$BIN/psql" -h "$DIR" -p "$PORT" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
psql_ -c "CREATE EXTENSION kvlsm"

# one transaction: $BATCH single-row updates of random rows (each an index scan)
{
    echo "BEGIN;"
    for i in $(seq 1 $BATCH); do
        echo "\set id$i random(1, $ROWS)"
        echo "UPDATE wa SET v = md5(v) || substr(v, 33) WHERE id = :id$i;"
    done
    echo "COMMIT;"
} > "$DIR/update.sql"
chown "$USER_" "$DIR/update.sql"

OUTWA=${KVLSM_WA_OUT:-$TOP/bench/WA.md}
report() {
echo "## Write amplification: leveled vs. tiered"
echo
echo "Produced by \`sudo bash bench/wa.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores."
echo "A kvlsm table of $ROWS rows (id int, v text of 132 bytes) with a kvlsm_idx index on id;"
echo "4 clients, $BATCH single-row updates of random rows per transaction; memtable_size = ${MEMTABLE_KB}kB"
echo "for both LSMs;"
echo "autovacuum on.  Written = logical bytes ingested by the table's LSM, as a multiple of"
echo "memtable_size.  WA = (log + flush + compaction bytes) / logical bytes, per LSM."
echo "PG WAL = PostgreSQL WAL bytes per logical byte of both LSMs.  Debt = L0 tables /"
echo "bytes above level targets (leveled) or sorted runs (tiered), after each step, not waiting."
echo
echo "| style | written | table WA | index WA | PG WAL / logical | table debt | index debt | tps |"
echo "|---|---|---|---|---|---|---|---|"

for style in leveled tiered; do
    psql_ -c "DROP TABLE IF EXISTS wa" \
          -c "CREATE TABLE wa (id int, v text) USING kvlsm WITH (memtable_size = '${MEMTABLE_KB}kB', compaction_style = '$style')" \
          -c "INSERT INTO wa SELECT g, md5(g::text) || repeat('v', 100) FROM generate_series(1, $ROWS) g" \
          -c "SET kvlsm.default_memtable_size = '${MEMTABLE_KB}kB'" \
          -c "CREATE INDEX wa_id ON wa USING kvlsm_idx (id)" \
          -c "SELECT kvlsm_set_option('wa_id', 'compaction_style', '$style')" \
          -c "CHECKPOINT" >/dev/null
    wal0=$(psql_ -At -c "SELECT pg_current_wal_lsn()")
    for m in $MULTIPLES; do
        target=$((m * MEMTABLE_KB * 1024))
        tx=0; secs=0
        while :; do
            logical=$(psql_ -At -c "SELECT bytes_ingested FROM kvlsm_stats('wa')")
            [ "$logical" -ge "$target" ] && break
            out=$(pgbench_ -n -c 4 -j 2 -T 5 -f "$DIR/update.sql" postgres 2>&1) || {
                echo "pgbench failed: $out" >&2; exit 1; }
            tx=$((tx + $(echo "$out" | awk '/number of transactions actually processed/ {print $6}' | cut -d/ -f1)))
            secs=$((secs + 5))
        done
        row=$(psql_ -At -F ' ' -c "
            WITH t AS (SELECT * FROM kvlsm_stats('wa')), i AS (SELECT * FROM kvlsm_stats('wa_id'))
            SELECT round(t.write_amplification::numeric, 2), round(i.write_amplification::numeric, 2),
                   round((pg_current_wal_lsn() - '$wal0'::pg_lsn) / (t.bytes_ingested + i.bytes_ingested)::numeric, 2)
            FROM t, i")
        debt() {
            if [ "$style" = leveled ]; then
                psql_ -At -c "SELECT (SELECT sstables FROM kvlsm_levels('$1') WHERE level = 0) || ' L0 / ' ||
                    pg_size_pretty(coalesce(sum(greatest(bytes - target_bytes, 0)), 0)) || ' over'
                    FROM kvlsm_levels('$1') WHERE level >= 1 AND target_bytes IS NOT NULL"
            else
                psql_ -At -c "SELECT ((SELECT sstables FROM kvlsm_levels('$1') WHERE level = 0) +
                    (SELECT count(*) FROM kvlsm_levels('$1') WHERE level >= 1 AND sstables > 0)) || ' runs'"
            fi
        }
        set -- $row
        tps=$([ "$secs" -gt 0 ] && echo $((tx / secs)) || echo -)
        echo "| $style | ${m}x | $1 | $2 | $3 | $(debt wa) | $(debt wa_id) | $tps |"
    done
done
echo
echo "Table WA counts the table LSM's own log pages (its write-ahead log); with the"
echo "generic WAL records PostgreSQL writes for every page, the server's total write"
echo "volume per logical byte is the PG WAL column plus the data files themselves."
}
report | tee "$OUTWA.tmp"
mv "$OUTWA.tmp" "$OUTWA"
# RESULTS.md ends with the latest curve (bench/run.sh keeps it there too)
RES=$TOP/bench/RESULTS.md
if [ -f "$RES" ] && [ "$OUTWA" = "$TOP/bench/WA.md" ]; then
    awk '/^## Write amplification: leveled vs. tiered/ {exit} {print}' "$RES" |
        sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$RES.tmp"
    echo >> "$RES.tmp"
    cat "$OUTWA" >> "$RES.tmp"
    mv "$RES.tmp" "$RES"
fi
