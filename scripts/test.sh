#!/usr/bin/env bash
# The whole test suite: unit, conformance, store, crash/multi-process, CLI
# end-to-end and doc tests, on SQLite and on PostgreSQL. Starts (or installs
# and starts) PostgreSQL on 127.0.0.1:5432 first when nothing answers there;
# each PostgreSQL test creates and drops a database of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services/postgres.sh
exec cargo test --workspace --locked "$@"
