#!/usr/bin/env bash
# The layering rules of kvlsm (issue 22, ../shared/CONVENTIONS.md), checked:
#   1. src/engine/*.c includes no header of an upper layer (table, index,
#      worker, admin, snapshots), not the GUC header kvlsm/kvlsm.h, and not
#      nbtree's WAL record (access/nbtxlog.h);
#   2. no source file under src/ is longer than 1,500 lines;
#   3. at most three functions are longer than 150 lines;
#   4. no "extern" declaration in a .c file (headers declare).
# Every violation must be listed in test/layers-known (the debt still to
# pay, which only shrinks): a new one fails the check, and a listed one that
# is gone is reported so that its line can be deleted.
# Usage: scripts/check-layers.sh [--list]   (--list prints all violations)
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KNOWN="$TOP/test/layers-known"
cd "$TOP"

violations() {
    local f
    # 1. engine includes
    for f in src/engine/*.c; do
        grep -nE '#include "kvlsm/(table|index|worker|admin|snapshots|kvlsm)\.h"|#include "access/nbtxlog\.h"' "$f" |
            sed -E "s|^[0-9]+:#include \"([^\"]+)\".*|include $f \1|" || true
    done
    # 2. long files
    for f in $(find src -name '*.c' -o -name '*.h' | sort); do
        local n
        n=$(wc -l <"$f")
        if [ "$n" -gt 1500 ]; then echo "long-file $f"; fi
    done
    # 3. long functions: PostgreSQL layout puts a function's braces alone
    # at the start of a line; the name is on the line before the "{"
    for f in $(find src -name '*.c' | sort); do
        awk -v file="$f" '
            /^[A-Za-z_][A-Za-z0-9_]*\(/ { split($0, a, "("); name = a[1] }
            /^\{/ { start = NR; fn = name }
            /^\}/ && start { if (NR - start > 150) print "long-function " file " " fn; start = 0 }
        ' "$f"
    done
    # 4. extern in .c files
    for f in $(find src -name '*.c' | sort); do
        grep -nE '^extern ' "$f" | sed -E "s|^[0-9]+:extern [^(]* \**([A-Za-z_0-9]+)\(.*|extern $f \1|" || true
    done
}

current=$(violations | sort -u)
if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "$current"
    exit 0
fi
known=$({ grep -vE '^(#|$)' "$KNOWN" || true; } | sort -u)
nfunc=$(printf '%s\n' "$current" | grep -c '^long-function ' || true)

new=$(comm -23 <(printf '%s\n' "$current") <(printf '%s\n' "$known") | grep -v '^$' || true)
fixed=$(comm -13 <(printf '%s\n' "$current") <(printf '%s\n' "$known") | grep -v '^$' || true)

rc=0
if [ -n "$new" ]; then
    echo "check-layers: new violations of the layering rules (see scripts/check-layers.sh):"
    printf '  %s\n' $'\n'"$new" | sed '/^  $/d'
    rc=1
fi
if [ -n "$fixed" ]; then
    echo "check-layers: fixed, delete from test/layers-known:"
    printf '%s\n' "$fixed" | sed 's/^/  /'
fi
total=$(printf '%s\n' "$current" | grep -c . || true)
echo "check-layers: $total known violations left ($nfunc functions over 150 lines; the goal is at most 3 and no other violation)"
exit $rc
