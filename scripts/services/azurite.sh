#!/usr/bin/env bash
# Make sure the Azure Storage emulator (Azurite) answers on 127.0.0.1:10000
# (blob service), as the Azure suites expect. Does nothing when something
# already answers there. Otherwise it installs azurite from the npm registry
# into COFFER_TOOLS_DIR (default ~/.cache/coffer-tools) unless it is there
# already, and starts its blob service in the background with its data under
# that directory. It uses the emulator's well-known account (devstoreaccount1).
set -euo pipefail

PORT=10000
TOOLS=${COFFER_TOOLS_DIR:-${HOME:-/root}/.cache/coffer-tools}
DIR=$TOOLS/azurite
BIN=$DIR/node_modules/.bin/azurite-blob
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ready; then
    exit 0
fi

if [ ! -x "$BIN" ]; then
    echo "azurite.sh: installing azurite from npm into $DIR" >&2
    mkdir -p "$DIR"
    (cd "$DIR" && npm install --silent --no-audit --no-fund azurite@3 >/dev/null)
fi
mkdir -p "$DIR/data"
nohup "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$DIR/data" --disableTelemetry --skipApiVersionCheck \
    --loose >>"$TOOLS/azurite.log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
    if ready; then
        exit 0
    fi
    sleep 0.5
done
echo "azurite.sh: azurite did not come up on 127.0.0.1:$PORT (see $TOOLS/azurite.log)" >&2
exit 1
