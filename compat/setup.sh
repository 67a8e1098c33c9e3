#!/usr/bin/env bash
# Prepare the Python environment for the compatibility suite: a virtualenv at
# compat/.venv holding the official 1claw SDK (`oneclaw`, pinned in
# compat/requirements.txt). Idempotent: a second run changes nothing.
#
# Needs python3 (>= 3.9) with the venv module (Debian: python3-venv) and PyPI.
#
# Override the interpreter with PYTHON=/path/to/python3.
set -euo pipefail

COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$COMPAT_DIR/.venv"
REQUIREMENTS="$COMPAT_DIR/requirements.txt"
BASE_PYTHON="${PYTHON:-python3}"
SDK_VERSION="0.61.14"

if ! command -v "$BASE_PYTHON" >/dev/null 2>&1; then
    echo "setup.sh: $BASE_PYTHON not found; install Python 3.9+ first" >&2
    exit 1
fi
if ! "$BASE_PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
    echo "setup.sh: $BASE_PYTHON is older than 3.9 (oneclaw needs >= 3.9)" >&2
    exit 1
fi

# A venv whose interpreter no longer runs (half-created, or its base python
# was removed) is thrown away and made again.
if [[ -e "$VENV" ]] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    if ! "$BASE_PYTHON" -m venv "$VENV"; then
        rm -rf "$VENV"
        echo "setup.sh: could not create a virtualenv; on Debian install python3-venv" >&2
        exit 1
    fi
fi

PY="$VENV/bin/python"

if ! "$PY" -c "import importlib.metadata as m, oneclaw; assert m.version('oneclaw') == '$SDK_VERSION'" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
fi

"$PY" -c "import importlib.metadata as m, sys; print(f'compat: prepared {sys.executable} (Python {sys.version.split()[0]}, oneclaw {m.version(\"oneclaw\")})')"
