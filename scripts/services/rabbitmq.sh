#!/usr/bin/env bash
# Make sure RabbitMQ answers on 127.0.0.1:5672 with the default guest/guest
# user, as the queue sink tests expect. Does nothing when something already
# answers there. Otherwise it starts the installed broker, or installs it from
# Debian's packages first, configured to listen on 127.0.0.1 only (AMQP,
# Erlang distribution and epmd alike). Installing needs root (or sudo).
set -euo pipefail

PORT=5672
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ready; then
    exit 0
fi

if [ ! -x /usr/sbin/rabbitmq-server ]; then
    echo "rabbitmq.sh: installing rabbitmq-server from Debian's packages" >&2
    # Loopback only, written before the package so its first start uses it;
    # --force-confold keeps these files over the package's own.
    as_root mkdir -p /etc/rabbitmq
    printf '%s\n' 'NODENAME=rabbit@localhost' 'ERL_EPMD_ADDRESS=127.0.0.1' \
        'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"' |
        as_root tee /etc/rabbitmq/rabbitmq-env.conf >/dev/null
    echo "listeners.tcp.local = 127.0.0.1:$PORT" | as_root tee /etc/rabbitmq/rabbitmq.conf >/dev/null
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq -o Dpkg::Options::=--force-confold rabbitmq-server >/dev/null
fi
if ! ready; then
    # The package may have started it already; a second start only complains.
    as_root rabbitmq-server -detached >/dev/null 2>&1 || true
fi
for _ in $(seq 1 120); do
    if ready; then
        exit 0
    fi
    sleep 0.5
done
echo "rabbitmq.sh: RabbitMQ did not come up on 127.0.0.1:$PORT (see /var/log/rabbitmq/)" >&2
exit 1
