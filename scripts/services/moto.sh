#!/usr/bin/env bash
# Make sure an SQS emulator (moto's server) answers on 127.0.0.1:5000, as the
# queue sink tests expect. Does nothing when something already answers there.
# Otherwise it installs moto[server] from PyPI into a virtual environment
# outside the clone (COFFER_TOOLS_DIR, default ~/.cache/coffer-tools), unless
# it is there already, and starts it in the background, logging to
# moto.log beside the environment.
set -euo pipefail

PORT=5000
TOOLS=${COFFER_TOOLS_DIR:-${HOME:-/root}/.cache/coffer-tools}
VENV=$TOOLS/moto-venv
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ready; then
    exit 0
fi

if [ ! -x "$VENV/bin/moto_server" ]; then
    echo "moto.sh: installing moto[server] into $VENV" >&2
    mkdir -p "$TOOLS"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's python3 keeps venv in a package of its own.
        as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get update -qq
        as_root apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
fi
nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >>"$TOOLS/moto.log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
    if ready; then
        exit 0
    fi
    sleep 0.5
done
echo "moto.sh: moto did not come up on 127.0.0.1:$PORT (see $TOOLS/moto.log)" >&2
exit 1
