#!/usr/bin/env bash
# The benchmark driver: kvlsm against heap+btree in the same run on the same
# server, for every workload the project reports on, into bench/RESULTS.md.
#
#   sudo bash bench/bench.sh            # full run (about an hour): bench/YCSB.md (+ plots),
#                                       # then bench/RESULTS.md with everything and the targets
#   sudo bash bench/bench.sh --quick    # smoke run (a few minutes), results under /tmp
#   KVLSM_BENCH_MEMORY_LIMIT=2G sudo bash bench/bench.sh     # the server in a memory cgroup
#                                       # (the full run's default; KVLSM_BENCH_MEMORY_LIMIT= for none)
#   KVLSM_BENCH_HOST=/var/run/postgresql KVLSM_BENCH_PORT=5432 bash bench/bench.sh
#                                       # a given, running server (see bench/lib.sh)
#
# Steps: bench/ycsb.sh (YCSB A-F, closed-loop throughput and open-loop
# latency, both alternated and repeated), bench/space.sh (disk footprint of
# four row shapes, WAL per loaded row, RocksDB), then bench/run.sh (INSERT ...
# SELECT and COPY ingest, TPC-B, point reads, random-key inserts with three
# indexes), whose report takes the YCSB results, the write amplification
# curve of bench/wa.sh and the index benchmark of bench/indexes.sh (those two
# run on their own: sudo bash bench/wa.sh; sudo bash bench/indexes.sh) and
# checks the targets.  Each step starts its own throwaway server unless a
# server is given.  --quick fails when a workload produced no numbers.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
BASE=${KVLSM_BENCH_DIR:-/tmp/kvlsm-bench}
export KVLSM_BENCH_BY=bench/bench.sh

if [ "$QUICK" = 1 ]; then
    KVLSM_BENCH_DIR=$BASE/ycsb KVLSM_BENCH_OUT=$BASE/YCSB.md \
        bash "$TOP/bench/ycsb.sh" --quick
    KVLSM_BENCH_DIR=$BASE/space KVLSM_BENCH_QUICK=1 KVLSM_BENCH_OUT=$BASE/SPACE.md \
        bash "$TOP/bench/space.sh"
    # every row shape measured on both sides
    for shape in kv acc ycsb events; do
        grep -Eq "^\| $shape[: ].*\| [0-9]+\.[0-9]+ \| [0-9]+\.[0-9]+ \| [0-9]+\.[0-9]+ \|" "$BASE/SPACE.md" ||
            { echo "bench: space.sh measured nothing for $shape" >&2; exit 1; }
    done
    for t in kv acc; do
        grep -Eq "^\| $t \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+\.[0-9]+ \|$" "$BASE/SPACE.md" ||
            { echo "bench: space.sh measured no full compaction of $t" >&2; exit 1; }
    done
    KVLSM_BENCH_DIR=$BASE/run KVLSM_BENCH_QUICK=1 KVLSM_BENCH_YCSB=$BASE/YCSB.md \
        KVLSM_BENCH_OUT=$BASE/RESULTS.md bash "$TOP/bench/run.sh"
    echo "bench: quick results in $BASE/RESULTS.md and $BASE/SPACE.md"
else
    # the full run limits the server's memory where the machine allows
    # (lib.sh), so the OS page cache cannot hide misses (an empty
    # KVLSM_BENCH_MEMORY_LIMIT= turns it off)
    export KVLSM_BENCH_MEMORY_LIMIT=${KVLSM_BENCH_MEMORY_LIMIT-2G}
    KVLSM_BENCH_DIR=$BASE/ycsb bash "$TOP/bench/ycsb.sh"
    KVLSM_BENCH_DIR=$BASE/space bash "$TOP/bench/space.sh"
    KVLSM_BENCH_DIR=$BASE/space KVLSM_SPACE_BOTTOMMOST=zstd \
        KVLSM_BENCH_OUT=$TOP/bench/SPACE-bottommost-zstd.md bash "$TOP/bench/space.sh"
    KVLSM_BENCH_DIR=$BASE/run bash "$TOP/bench/run.sh"
    echo "bench: results in $TOP/bench/RESULTS.md, $TOP/bench/YCSB.md and $TOP/bench/SPACE.md"
fi
