#!/usr/bin/env bash
# Make sure a NATS server with JetStream answers on 127.0.0.1:4222, as the
# queue sink tests expect. Does nothing when something already answers there.
# Otherwise it starts the installed nats-server (installing it from Debian's
# packages first if missing), listening on 127.0.0.1 only, with JetStream
# storage in /var/lib/nats-server. Installing needs root (or sudo).
set -euo pipefail

PORT=4222
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ready; then
    exit 0
fi

if [ ! -x /usr/sbin/nats-server ]; then
    echo "nats.sh: installing nats-server from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq nats-server >/dev/null
fi
as_root mkdir -p /var/lib/nats-server
as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p "$PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
for _ in $(seq 1 60); do
    if ready; then
        exit 0
    fi
    sleep 0.5
done
echo "nats.sh: NATS did not come up on 127.0.0.1:$PORT (see /var/log/nats-server.log)" >&2
exit 1
