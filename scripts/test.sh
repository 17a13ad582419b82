#!/usr/bin/env bash
# The whole test suite: unit, conformance, store, crash/multi-process, CLI
# end-to-end and doc tests, on SQLite and on PostgreSQL, the queue sinks
# against real brokers, and the object-store backends against real servers;
# then the default build's refusals of what it leaves out, and a short run
# of each fuzz target. Arguments go to the first `cargo test` only, and
# skip the other two.
# Starts (or installs and starts) PostgreSQL on 127.0.0.1:5432, NATS with
# JetStream on :4222, RabbitMQ on :5672, the moto S3/SQS emulator on :5000,
# Garage (S3) on :3900, Azurite (Azure Blob) on :10000 and ClickHouse (HTTP)
# on :8123 first, each only when nothing answers on its port; each test
# creates and drops a database, stream, queue, bucket or container of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services/postgres.sh
scripts/services/nats.sh
scripts/services/rabbitmq.sh
# moto, Garage, Azurite and ClickHouse are the project's own processes, not machine
# services: stop each again at the end if this run started it.
stop=()
port_silent() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_silent 5000 && stop+=("moto_server -H 127.0.0.1 -p 5000")
port_silent 3900 && stop+=("garage-node/garage.toml server")
port_silent 10000 && stop+=("azurite-blob --blobHost 127.0.0.1")
port_silent 8123 && stop+=("clickhouse-server --config-file=")
cleanup() {
    for pattern in "${stop[@]}"; do
        pkill -f "$pattern" || true
    done
}
trap cleanup EXIT
scripts/services/moto.sh
scripts/services/garage.sh
scripts/services/azurite.sh
scripts/services/clients.sh
scripts/services/clickhouse.sh
# Every cargo feature on: the queue sinks, Azure and PostgreSQL are features.
cargo test --workspace --locked --all-features "$@"
if [ $# -eq 0 ]; then
    # The default build: what it leaves out is refused with one line naming its feature.
    cargo test -p coffer-cli --locked --test features
    # A short run of each fuzz target (scripts/fuzz.sh runs them longer).
    scripts/fuzz.sh "${COFFER_FUZZ_SECONDS:-15}"
fi
