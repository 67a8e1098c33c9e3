#!/usr/bin/env bash
# Creates a throwaway SoftHSM2 token for the `pkcs11` key provider and prints
# the environment to use it:
#
#   eval "$(scripts/softhsm-token.sh /tmp/hsm strongroom 1234)"
#
# DIR gets its own softhsm2.conf and tokens/ directory, so nothing touches the
# system token store (/var/lib/softhsm, group softhsm). DIR must not already
# hold a token. The SO PIN is random and discarded: the token is for tests and
# benchmarks, not for keeping. The user PIN appears on softhsm2-util's command
# line, so use a throwaway PIN.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 DIR LABEL PIN" >&2
    exit 2
fi
dir=$1 label=$2 pin=$3

if ! command -v softhsm2-util >/dev/null 2>&1; then
    echo "softhsm2-util not found: install softhsm2 (Debian/Ubuntu: apt-get install -y softhsm2)" >&2
    exit 1
fi
if [ ${#label} -gt 32 ] || [ -z "$label" ]; then
    echo "LABEL must be 1 to 32 characters" >&2
    exit 2
fi
case $label$dir in
*[[:cntrl:]]*)
    echo "LABEL and DIR must not contain control characters" >&2
    exit 2
    ;;
esac
if [ ${#pin} -lt 4 ]; then
    echo "PIN must be at least 4 characters (SoftHSM2's minimum)" >&2
    exit 2
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -e "$dir/tokens" ] && [ -n "$(ls -A "$dir/tokens")" ]; then
    echo "$dir/tokens already holds a token; use a fresh DIR" >&2
    exit 1
fi
mkdir -p "$dir/tokens"
chmod 700 "$dir" "$dir/tokens"

conf=$dir/softhsm2.conf
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir" >"$conf"

so_pin=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
SOFTHSM2_CONF=$conf softhsm2-util --init-token --free --label "$label" \
    --pin "$pin" --so-pin "$so_pin" >/dev/null

module=/usr/lib/softhsm/libsofthsm2.so
[ -e "$module" ] || module=$(find /usr/lib /usr/local/lib -name libsofthsm2.so -print -quit 2>/dev/null || true)

printf '# SoftHSM2 token "%s" in %s (pkcs11 module %s)\n' "$label" "$dir" "$module"
printf 'export SOFTHSM2_CONF=%q\n' "$conf"
printf 'export STRONGROOM_PKCS11_PIN=%q\n' "$pin"
