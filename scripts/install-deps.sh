#!/usr/bin/env bash
# Install the Debian packages kvlsm needs and create the unprivileged OS user
# "kvlsm_test" that runs initdb/postgres (they refuse to run as root).
# Idempotent: apt is skipped entirely when every package is already installed.
set -euo pipefail

PACKAGES=(postgresql-15 postgresql-server-dev-15 libpq-dev liblz4-dev libzstd-dev libipc-run-perl build-essential python3)
TEST_USER=kvlsm_test

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must be run as root (e.g. sudo bash $0)" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all packages already installed (${PACKAGES[*]}); skipping apt"
else
    echo "install-deps: installing missing packages: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

if id -u "$TEST_USER" >/dev/null 2>&1; then
    echo "install-deps: OS user $TEST_USER already exists"
else
    echo "install-deps: creating OS user $TEST_USER"
    useradd -m -s /bin/bash "$TEST_USER"
fi
