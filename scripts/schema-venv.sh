#!/usr/bin/env bash
# Creates (or refreshes) the Python venv that holds `schemathesis`, which
# crates/cli/tests/schema_conformance.rs runs against the real server's
# /openapi.json (compat/schema/run.py).
#
#   scripts/schema-venv.sh            # venv in $STRONGROOM_SCHEMA_VENV or ~/.cache/strongroom-schemathesis
#   STRONGROOM_SCHEMA_VENV=/x scripts/schema-venv.sh
#
# Idempotent: a venv that already holds the pinned version is kept, so a test
# runner may call it before every run. It only reaches PyPI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQUIREMENTS="${ROOT}/compat/schema/requirements.txt"
VENV="${STRONGROOM_SCHEMA_VENV:-${HOME}/.cache/strongroom-schemathesis}"
PYTHON="${PYTHON:-python3}"
VERSION="$(sed -n 's/^schemathesis==//p' "${REQUIREMENTS}")"

if [[ -x "${VENV}/bin/python" ]] \
    && [[ "$("${VENV}/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" == "${VERSION}" ]]; then
    echo "schemathesis ${VERSION} already in ${VENV}"
    exit 0
fi

if ! "${PYTHON}" -m venv --help >/dev/null 2>&1; then
    echo "error: ${PYTHON} has no venv module (Debian: apt-get install -y python3-venv)" >&2
    exit 1
fi

# A half-made venv (interrupted install, removed base interpreter) is made again.
if [[ -f "${VENV}/pyvenv.cfg" ]]; then rm -rf "${VENV}"; fi
mkdir -p "$(dirname "${VENV}")"
"${PYTHON}" -m venv "${VENV}"
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${REQUIREMENTS}"
"${VENV}/bin/python" -c 'import schemathesis'
echo "schemathesis ${VERSION} installed in ${VENV}"
