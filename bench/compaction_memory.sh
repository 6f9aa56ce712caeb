#!/usr/bin/env bash
# Memory of a compaction: peak private (anonymous) memory of a backend that
# runs a full compaction of a table of ROWS rows (about 120 bytes each,
# memtable_size 256MB, so the outputs are a couple of hundred MB each).
# Shared buffers are not private memory, so RssAnon of the backend is what
# the compaction itself holds.  Writes the result to stdout.
#
#   sudo bash bench/compaction_memory.sh          # 3M rows
#   KVLSM_MEM_ROWS=1000000 sudo bash bench/compaction_memory.sh
#
# Throwaway local server only (it samples /proc of the backend).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${KVLSM_MEM_DIR:-/tmp/kvlsm-mem}
PORT=${KVLSM_MEM_PORT:-54341}
ROWS=${KVLSM_MEM_ROWS:-3000000}
SHARED_BUFFERS=256MB
unset KVLSM_BENCH_HOST
. "$TOP/bench/lib.sh"
start_server "kvlsm.memtable_memory = 1GB"
sql() { psql_ -d postgres -At -c "$1"; }

sql "CREATE EXTENSION kvlsm"
sql "CREATE TABLE t (id bigint, v text) USING kvlsm WITH (memtable_size = '256MB')"
sql "INSERT INTO t SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
     FROM generate_series(1, $ROWS) g" >/dev/null
sql "SELECT kvlsm_flush('t')" >/dev/null
sql "SELECT kvlsm_flush('t')" >/dev/null
before=$(sql "SELECT count(*) || ' tables, ' || sum(pages) || ' pages' FROM kvlsm_sstables('t')")

# a session that reports its pid, waits a moment, then compacts
out=$(mktemp); chmod 666 "$out"
psql_ -d postgres -At -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(1)" \
      -c "SELECT kvlsm_compact('t')" > "$out" &
client_pid=$!
pid=""
for _ in $(seq 1 100); do
    pid=$(head -1 "$out" 2>/dev/null || true)
    [ -n "$pid" ] && break
    sleep 0.02
done
peak=0
while kill -0 "$client_pid" 2>/dev/null; do
    a=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    if [ -n "$a" ] && [ "$a" -gt "$peak" ]; then peak=$a; fi
    sleep 0.05
done
wait "$client_pid"
rm -f "$out"
after=$(sql "SELECT count(*) || ' tables, largest ' || max(pages) || ' pages ('
             || pg_size_pretty(max(pages)::bigint * 8192) || ')' FROM kvlsm_sstables('t')")
rows=$(sql "SELECT count(*) FROM t")
echo "rows: $rows"
echo "before the compaction: $before"
echo "after: $after"
echo "peak private memory (RssAnon) of the compacting backend: $((peak / 1024)) MB"
