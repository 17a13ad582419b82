#!/usr/bin/env bash
# The whole test suite: unit, conformance, store, crash/multi-process, CLI
# end-to-end and doc tests. Needs only a Rust toolchain; no services yet.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace --locked "$@"
