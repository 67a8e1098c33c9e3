#!/usr/bin/env bash
# Creates (or refreshes) the Python venv that holds `drongo`, a Cloud KMS REST
# stand-in used by crates/kms/tests/gcp_drongo.rs.
#
#   scripts/drongo-venv.sh            # venv in $STRONGROOM_DRONGO_VENV or ~/.cache/strongroom-drongo
#   STRONGROOM_DRONGO_VENV=/x scripts/drongo-venv.sh
#
# Then run the test with the same variable (or none, for the default path):
#
#   cargo test -p strongroom-kms --features gcp --test gcp_drongo
#
# The script is idempotent: an existing venv with drongo installed is kept, so
# a test runner may call it before every run. It only reaches PyPI.
set -euo pipefail

DRONGO_VERSION="${DRONGO_VERSION:-0.8.0}"
VENV="${STRONGROOM_DRONGO_VENV:-${HOME}/.cache/strongroom-drongo}"
PYTHON="${PYTHON:-python3}"

if [[ -x "${VENV}/bin/drongo" ]] \
    && "${VENV}/bin/python" -c 'import google_crc32c' 2>/dev/null \
    && [[ "$("${VENV}/bin/python" -m pip show drongo 2>/dev/null | sed -n 's/^Version: //p')" == "${DRONGO_VERSION}" ]]; then
    echo "drongo ${DRONGO_VERSION} already in ${VENV}"
    exit 0
fi

if ! "${PYTHON}" -m venv --help >/dev/null 2>&1; then
    echo "error: ${PYTHON} has no venv module (Debian: apt-get install -y python3-venv)" >&2
    exit 1
fi

mkdir -p "$(dirname "${VENV}")"
"${PYTHON}" -m venv "${VENV}"
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "drongo==${DRONGO_VERSION}" google-crc32c
"${VENV}/bin/drongo" --help >/dev/null
echo "drongo ${DRONGO_VERSION} installed in ${VENV}"
