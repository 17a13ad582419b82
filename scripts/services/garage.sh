#!/usr/bin/env bash
# Make sure a single-node Garage (a real distributed S3 engine) answers on
# 127.0.0.1:3900 with the test key, as the S3 suites expect. Does nothing when
# something already answers there. Otherwise it installs garage from
# crates.io (`cargo install`, about 10 minutes on two cores) into
# COFFER_TOOLS_DIR (default ~/.cache/coffer-tools) unless it is there already,
# then starts it in the background with its data under that directory, lays
# out the one node, and imports the test key (allowed to create buckets).
#
#   endpoint http://127.0.0.1:3900, region garage
#   access key GK000000000000000000c0ffee, secret key COFFER_GARAGE_SECRET below
set -euo pipefail

PORT=3900
TOOLS=${COFFER_TOOLS_DIR:-${HOME:-/root}/.cache/coffer-tools}
GARAGE_VERSION=2.5.0
BIN=$TOOLS/garage/bin/garage
HOME_DIR=$TOOLS/garage-node
CONF=$HOME_DIR/garage.toml
KEY_ID=GK000000000000000000c0ffee
SECRET=c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ready; then
    exit 0
fi

if [ ! -x "$BIN" ]; then
    echo "garage.sh: installing garage $GARAGE_VERSION from crates.io into $TOOLS/garage (about 10 minutes)" >&2
    mkdir -p "$TOOLS"
    CARGO_TARGET_DIR="$TOOLS/garage-build" cargo install --quiet --locked garage --version "$GARAGE_VERSION" \
        --no-default-features --features bundled-libs,sqlite --root "$TOOLS/garage"
    rm -rf "$TOOLS/garage-build"
fi

mkdir -p "$HOME_DIR/meta" "$HOME_DIR/data"
cat >"$CONF" <<CONF
metadata_dir = "$HOME_DIR/meta"
data_dir = "$HOME_DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "$(printf 'c0ffee%.0s' 1 2 3 4 5 6 7 8 9 10)c0ff"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:3903"
CONF
garage() { "$BIN" -c "$CONF" "$@"; }

nohup "$BIN" -c "$CONF" server >>"$TOOLS/garage.log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
    if garage status >/dev/null 2>&1; then
        break
    fi
    sleep 0.5
done

# A fresh node has no role: give it one (once; the layout is kept in meta/).
if garage status 2>/dev/null | grep -q "NO ROLE ASSIGNED"; then
    node=$(garage node id -q | cut -d@ -f1)
    garage layout assign -z dc1 -c 20G "$node" >/dev/null
    garage layout apply --version "$(( $(garage layout show | sed -n 's/.*Current cluster layout version: \([0-9]*\).*/\1/p') + 1 ))" >/dev/null
fi
if ! garage key info "$KEY_ID" >/dev/null 2>&1; then
    garage key import --yes -n coffer-test "$KEY_ID" "$SECRET" >/dev/null
    garage key allow --create-bucket "$KEY_ID" >/dev/null
fi

for _ in $(seq 1 120); do
    if ready; then
        exit 0
    fi
    sleep 0.5
done
echo "garage.sh: garage did not come up on 127.0.0.1:$PORT (see $TOOLS/garage.log)" >&2
exit 1
