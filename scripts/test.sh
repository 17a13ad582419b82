#!/usr/bin/env bash
# The whole test suite: unit, conformance, store, crash/multi-process, CLI
# end-to-end and doc tests, on SQLite and on PostgreSQL, and the queue sinks
# against real brokers. Starts (or installs and starts) PostgreSQL on
# 127.0.0.1:5432, NATS with JetStream on :4222, RabbitMQ on :5672 and the moto
# SQS emulator on :5000 first, each only when nothing answers on its port;
# each test creates and drops a database, stream or queue of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services/postgres.sh
scripts/services/nats.sh
scripts/services/rabbitmq.sh
# moto is the project's own process, not a machine service: stop it again
# at the end if this run started it.
if ! (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
    trap 'pkill -f "moto_server -H 127.0.0.1 -p 5000" || true' EXIT
fi
scripts/services/moto.sh
cargo test --workspace --locked "$@"
