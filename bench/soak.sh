#!/usr/bin/env bash
# Soak: one Strongroom server held at half of its measured peak, mixed reads,
# writes, lists and agent logins; resident memory, open files, database and WAL
# size, p50/p99 and errors per window (bench/soak.py says what is checked).
#   bash bench/soak.sh                       # the full run: 30 minutes, 1-minute windows, release build
#   bash bench/soak.sh --short               # CI's: 3 minutes, 20-second windows, debug build
#   bash bench/soak.sh --minutes 60 --out bench/results/soak-60m
# Other flags go to bench/soak.py (--load, --window, --warmup-windows, --concurrency, --mix, --keep).
# Exits non-zero when a request failed or memory/open files grew.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
profile=release
args=()
for a in "$@"; do
    if [ "$a" = --short ]; then
        # Short enough for every CI run; the debug build is the one the tests just built.
        profile=debug
        args+=(--minutes 3 --window 15 --warmup-windows 3 --peak-seconds 8
               --out "${SOAK_OUT:-${TMPDIR:-/tmp}/strongroom-soak-short}")
    else
        args+=("$a")
    fi
done
flag=(--release)
[ "$profile" = debug ] && flag=()
echo "[soak] cargo build ${flag[*]} -p strongroom -p strongroom-loadgen (target dir $CARGO_TARGET_DIR)" >&2
cargo build "${flag[@]}" --quiet -p strongroom -p strongroom-loadgen
exec python3 bench/soak.py --bin-dir "$CARGO_TARGET_DIR/$profile" --profile "$profile" "${args[@]}"
