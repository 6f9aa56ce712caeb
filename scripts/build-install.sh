#!/usr/bin/env bash
# Copy the source tree to a scratch directory owned by kvlsm_test, build it
# there as kvlsm_test and install it into PostgreSQL 15 as root.
# The real checkout is never chowned (git would then refuse it as "dubious").
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$SCRIPT_DIR/.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
TEST_USER=kvlsm_test
BUILD_DIR=${KVLSM_BUILD_DIR:-/tmp/kvlsm-build}

bash "$SCRIPT_DIR/install-deps.sh"

case "$BUILD_DIR" in
    /|""|"$TOP"|"$TOP"/*)
        echo "build-install: refusing to use build dir '$BUILD_DIR'" >&2
        exit 1 ;;
esac

echo "build-install: copying sources from $TOP to $BUILD_DIR"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"

git_top() { git -c safe.directory="$TOP" -C "$TOP" "$@"; }

if command -v git >/dev/null 2>&1 &&
   [ "$(git_top rev-parse --is-inside-work-tree 2>/dev/null || true)" = "true" ]; then
    # Tracked files plus untracked, non-ignored files; skip deleted paths and
    # gitlinks (directories).
    git_top ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [ -L "$TOP/$f" ] || [ -f "$TOP/$f" ]; then
                printf '%s\0' "$f"
            fi
        done |
        sort -zu |
        tar -C "$TOP" --null --no-recursion -T - -cf - |
        tar -C "$BUILD_DIR" -xf -
else
    echo "build-install: $TOP is not a git checkout; copying everything except .git"
    (cd "$TOP" && tar --exclude=./.git -cf - .) | tar -C "$BUILD_DIR" -xf -
fi

chown -R "$TEST_USER": "$BUILD_DIR"

echo "build-install: building as $TEST_USER"
(cd "$BUILD_DIR" &&
    runuser -u "$TEST_USER" -- env HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)" \
        make -C "$BUILD_DIR" PG_CONFIG="$PG_CONFIG" -j2)

echo "build-install: installing as root"
make -C "$BUILD_DIR" PG_CONFIG="$PG_CONFIG" install

echo "build-install: done; build dir: $BUILD_DIR"
