#!/usr/bin/env bash
# Fuzz the parsers and validators that take user input, each for a bounded
# time, and report what was found.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs from fuzz/fuzz_targets (default
# all: key, metadata, range, config, search_words). Each target runs with the
# committed seeds (fuzz/seeds/TARGET) and a working corpus that grows across
# runs (fuzz/corpus/TARGET); an input that makes a target fail is saved under
# fuzz/artifacts/TARGET, and the run ends with exit 1. Replay one with
# `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...` (same flags as below).
#
# cargo-fuzz (libFuzzer) is installed from crates.io into
# COFFER_TOOLS_DIR/cargo-fuzz (default ~/.cache/coffer-tools) the first time.
# It is meant for a nightly toolchain; on stable, RUSTC_BOOTSTRAP=1 lets rustc
# take the few unstable flags it passes, and `--sanitizer none` drops
# AddressSanitizer (which needs a nightly standard library, and which safe
# Rust gains little from): panics, failed assertions and integer overflows
# (debug assertions are on) are what the targets look for.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH=${1:-60}
shift || true
CARGO_FUZZ_VERSION=0.13.2
TOOLS=${COFFER_TOOLS_DIR:-${HOME:-/root}/.cache/coffer-tools}
if ! [ -x "$TOOLS/cargo-fuzz/bin/cargo-fuzz" ]; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io into $TOOLS/cargo-fuzz" >&2
    CARGO_TARGET_DIR="$TOOLS/cargo-fuzz-build" cargo install --quiet --locked cargo-fuzz \
        --version "$CARGO_FUZZ_VERSION" --root "$TOOLS/cargo-fuzz"
    rm -rf "$TOOLS/cargo-fuzz-build"
fi
export PATH="$TOOLS/cargo-fuzz/bin:$PATH"
export RUSTC_BOOTSTRAP=1
# Beside the caller's build (CI caches it between runs), else in fuzz/target.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz"
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(key metadata range config search_words)
fi
flags=(--sanitizer none --debug-assertions)

started=$(date +%s)
# Every target at once: they share one build of coffer.
cargo fuzz build "${flags[@]}"
echo "fuzz.sh: built in $(($(date +%s) - started)) s" >&2

failed=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    log=$(mktemp)
    if cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        found="nothing"
    else
        found="FAILURE: $(grep -m1 -E 'panicked|ERROR:|Test unit written' "$log" || echo "exit $?")"
        failed=1
        tail -n 40 "$log" >&2
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    summary+=("$(printf '%-13s %5s s %12s runs  %s' "$target" "$SECONDS_EACH" "$runs" "$found")")
    rm -f "$log"
done
echo "fuzz.sh: TARGET        TIME          RUNS  FOUND"
printf 'fuzz.sh: %s\n' "${summary[@]}"
exit "$failed"
